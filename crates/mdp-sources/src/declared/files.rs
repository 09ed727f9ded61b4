//! Report files as platforms hand them over: compressed (gzip, or a zip archive of one file: Microsoft
//! Advertising's) and written as JSON or as CSV, whose rows are turned into JSON records so that the
//! spec's fields read them like any other answer.

use std::io::Read as _;

use mdp_spec::model::{Compression, CsvDef};

/// The file's text, decompressed.
pub(crate) fn decompress(file: Vec<u8>, compression: Compression) -> Result<String, String> {
    let bytes = match compression {
        Compression::None => file,
        Compression::Gzip => {
            let mut out = Vec::with_capacity(file.len() * 8);
            flate2::read::MultiGzDecoder::new(file.as_slice())
                .read_to_end(&mut out)
                .map_err(|e| format!("it is not gzip ({e}); check the spec's job.compression"))?;
            out
        }
        Compression::Zip => unzip(&file).map_err(|e| format!("{e}; check the spec's job.compression"))?,
    };
    String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8 text ({e})"))
}

fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    bytes.get(at..at + 2).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

const END_OF_DIRECTORY: &[u8] = b"PK\x05\x06";
const DIRECTORY_ENTRY: &[u8] = b"PK\x01\x02";
const LOCAL_HEADER: &[u8] = b"PK\x03\x04";

/// The one file of a zip archive (stored or deflated), found through the central directory (local
/// headers may leave sizes to a trailing descriptor) and checked against its CRC-32.
///
/// Written here on `flate2`, which mdp already builds, rather than taking the `zip` crate: a report is
/// one entry, and a crate whose features reach `flate2` could change what the bundled DuckDB's build
/// script is compiled with, and with it rebuild DuckDB (half an hour on 2 cores).
fn unzip(archive: &[u8]) -> Result<Vec<u8>, String> {
    let bad = |what: &str| format!("it is not a zip archive mdp can read ({what})");
    // The end-of-directory record is the last 22 bytes, before a comment of up to 64 KiB.
    let search_from = archive.len().saturating_sub(22 + 65_535);
    let end = archive[search_from..]
        .windows(4)
        .rposition(|w| w == END_OF_DIRECTORY)
        .map(|i| search_from + i)
        .ok_or_else(|| bad("no end-of-directory record"))?;
    let entries = u16_at(archive, end + 10).ok_or_else(|| bad("a cut end record"))?;
    if entries != 1 {
        return Err(format!("the zip archive holds {entries} files; a report archive holds one"));
    }
    let entry = u32_at(archive, end + 16).ok_or_else(|| bad("a cut end record"))?;
    if archive.get(entry..entry + 4) != Some(DIRECTORY_ENTRY) {
        return Err(bad("no directory entry where the end record points"));
    }
    let field = |at: usize, wide: bool| {
        if wide { u32_at(archive, entry + at) } else { u16_at(archive, entry + at) }
            .ok_or_else(|| bad("a cut directory entry"))
    };
    let (method, crc, packed, size) = (field(10, false)?, field(16, true)?, field(20, true)?, field(24, true)?);
    if packed == 0xffff_ffff || size == 0xffff_ffff {
        return Err(bad("ZIP64, for files over 4 GB"));
    }
    let local = field(42, true)?;
    if archive.get(local..local + 4) != Some(LOCAL_HEADER) {
        return Err(bad("no file where the directory points"));
    }
    let name = u16_at(archive, local + 26).ok_or_else(|| bad("a cut file header"))?;
    let extra = u16_at(archive, local + 28).ok_or_else(|| bad("a cut file header"))?;
    let start = local + 30 + name + extra;
    let data = archive.get(start..start + packed).ok_or_else(|| bad("the file is cut short"))?;
    let out = match method {
        0 => data.to_vec(),
        8 => {
            let mut out = Vec::with_capacity(size);
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut out).map_err(|e| bad(&e.to_string()))?;
            out
        }
        other => return Err(format!("the zip archive's file is compressed with method {other}; mdp reads 0 and 8")),
    };
    let mut check = flate2::Crc::new();
    check.update(&out);
    if out.len() != size || check.sum() as usize != crc {
        return Err(bad("the file's size or CRC-32 does not match: a damaged download"));
    }
    Ok(out)
}

/// A CSV file's rows as a JSON array of objects keyed by the column row (every value a string; an empty
/// cell is left out, as a missing field). `skip_lines` lines come before the column row (a report's
/// title lines), `skip_footer_lines` after the last row (a copyright line); a byte order mark is ignored.
pub(crate) fn csv_as_json(text: &str, def: &CsvDef) -> Result<String, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<&str> = text.lines().skip(def.skip_lines).collect();
    while lines.last().is_some_and(|line| line.trim().is_empty()) {
        lines.pop();
    }
    lines.truncate(lines.len().saturating_sub(def.skip_footer_lines));
    let body = lines.join("\n");
    let delimiter = *def.delimiter.as_bytes().first().unwrap_or(&b',');
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(body.as_bytes());
    let columns = reader.headers().map_err(|e| format!("its column row is not CSV ({e})"))?.clone();
    if columns.is_empty() {
        return Err("it has no column row".into());
    }
    let mut json = String::with_capacity(body.len() * 2);
    json.push('[');
    for (i, row) in reader.records().enumerate() {
        let row = row.map_err(|e| format!("row {} is not CSV ({e})", i + 1))?;
        if row.len() != columns.len() {
            return Err(format!("row {} has {} values for {} columns", i + 1, row.len(), columns.len()));
        }
        if i > 0 {
            json.push(',');
        }
        let object: serde_json::Map<String, serde_json::Value> = columns
            .iter()
            .zip(row.iter())
            .filter(|(_, value)| !value.is_empty())
            .map(|(column, value)| (column.to_string(), serde_json::Value::String(value.to_string())))
            .collect();
        json.push_str(&serde_json::Value::Object(object).to_string());
    }
    json.push(']');
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zip archive made by Python's `zipfile` (deflated), of `report.csv` holding "a,b\n1,2\n".
    const PYTHON_ZIP: &str = "UEsDBBQAAAAIAAAAYV17B5cKCgAAAAgAAAAKAAAAcmVwb3J0LmNzdkvUSeIy1DHiAgBQSwECFAMUAAAACAAAAGFdeweXCgoAAAAIAAAACgAAAAAAAAAAAAAAgAEAAAAAcmVwb3J0LmNzdlBLBQYAAAAAAQABADgAAAAyAAAAAAA=";

    #[test]
    fn a_zip_archive_of_one_file_is_read_and_checked() {
        use base64::Engine;
        let archive = base64::engine::general_purpose::STANDARD.decode(PYTHON_ZIP).unwrap();
        assert_eq!(decompress(archive.clone(), Compression::Zip).unwrap(), "a,b\n1,2\n");
        // A damaged byte of the compressed data is caught (by inflate or by the CRC).
        let mut damaged = archive.clone();
        damaged[40] ^= 0x55;
        assert!(decompress(damaged, Compression::Zip).is_err());
        let error = decompress(b"a,b\n1,2\n".to_vec(), Compression::Zip).unwrap_err();
        assert!(error.contains("not a zip archive") && error.contains("job.compression"), "{error}");
        let error = decompress(archive[..archive.len() - 30].to_vec(), Compression::Zip).unwrap_err();
        assert!(error.contains("not a zip archive"), "{error}");
    }

    #[test]
    fn gzip_files_are_decompressed_and_bad_ones_named() {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(br#"[{"date":"2026-11-01"}]"#).unwrap();
        let file = gz.finish().unwrap();
        assert_eq!(decompress(file, Compression::Gzip).unwrap(), r#"[{"date":"2026-11-01"}]"#);
        let error = decompress(b"[]".to_vec(), Compression::Gzip).unwrap_err();
        assert!(error.contains("not gzip") && error.contains("job.compression"), "{error}");
        assert_eq!(decompress(b"[]".to_vec(), Compression::None).unwrap(), "[]");
    }

    #[test]
    fn csv_rows_become_records_keyed_by_the_column_row() {
        let def = CsvDef { skip_lines: 2, skip_footer_lines: 1, delimiter: ",".into() };
        let text = "\u{feff}\"Report Name: Ads\"\n\"Report Time: 2026-11-01\"\n\"TimePeriod\",\"AdId\",\"Spend\",\"Revenue\"\n\
                    \"2026-11-01\",\"42\",\"1.50\",\"\"\n\"2026-11-01\",\"43\",\"1,234.5\",\"9\"\n\n\"©2026 Microsoft Corporation. All rights reserved. \"\n";
        let json: serde_json::Value = serde_json::from_str(&csv_as_json(text, &def).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"TimePeriod": "2026-11-01", "AdId": "42", "Spend": "1.50"},
                {"TimePeriod": "2026-11-01", "AdId": "43", "Spend": "1,234.5", "Revenue": "9"},
            ])
        );
        let plain = CsvDef { skip_lines: 0, skip_footer_lines: 0, delimiter: ",".into() };
        assert_eq!(csv_as_json("a,b\n", &plain).unwrap(), "[]");
        let error = csv_as_json("a,b\n1,2,3\n", &plain).unwrap_err();
        assert!(error.contains("row 1 has 3 values for 2 columns"), "{error}");
        let tabs = CsvDef { skip_lines: 0, skip_footer_lines: 0, delimiter: "\t".into() };
        let json: serde_json::Value = serde_json::from_str(&csv_as_json("a\tb\n1\t2\n", &tabs).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!([{"a": "1", "b": "2"}]));
    }
}
