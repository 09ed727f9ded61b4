//! dbt seeds: a seed CSV read into Arrow batches, with the column types dbt-core 1.10 would create.
//!
//! dbt-core reads a seed with agate (`dbt_common/clients/agate_helper.py`, `from_csv` and
//! `build_type_tester`) and the adapter maps each agate type to SQL (`SQLAdapter.convert_*_type`,
//! shared by dbt-postgres and dbt-duckdb). This module reproduces that inference:
//!
//! agate tests these types in this order and keeps the first one every value of the column accepts
//! (values are trimmed of surrounding whitespace first):
//!
//! 1. dbt's `Integer` accepts only Python ints, never a CSV string: it survives only in a column with
//!    no rows at all (a header-only file) → `integer` (Int32).
//! 2. `Number`: decimals, `+5`, `007`, `1,234`, `$5`, `5%`, `1e3`, `1_000`, `nan`, `inf` →
//!    `integer` (Int32) when no value has decimals once normalised (`1.0` and `1e3` are integral),
//!    otherwise `float8` (Float64).
//! 3. `Date` with `%Y-%m-%d`: `2020-01-05`, `2020-1-5` → `date` (Date32).
//! 4. `DateTime` with `%Y-%m-%d %H:%M:%S`: `2020-01-05 10:00:00`, no fractional seconds →
//!    `timestamp without time zone` (Timestamp(µs)).
//! 5. `ISODateTime` (the `isodate` package, exactly one `T`): `2020-01-05T10:00:00.5+02:00`,
//!    `20200105T1000` → `timestamp without time zone` (Timestamp(µs)).
//! 6. `Boolean`: `true` / `false` in any case (not `yes`, `t` or `1`) → `boolean` (Boolean).
//! 7. `Text` → `text` (Utf8).
//!
//! Empty fields and `null` (any case, surrounding whitespace ignored) are NULL for inference, so a
//! column of only NULLs is a `Number` without decimals: `integer`. Columns named in the seed's
//! `column_types` config are not inferred: they get exactly that SQL type and are read as text
//! (`cast_needed`), for the caller to `CAST` in SQL.
//!
//! Values follow what each adapter's seed load leaves in the table:
//! - **duckdb**: dbt-duckdb loads the file with DuckDB's own `COPY ... (FORMAT CSV)`, so text keeps
//!   `null` spellings and whitespace-only values (only an empty field is NULL), blank lines are
//!   skipped (in a one-column file they are NULLs), quoted line breaks are kept byte for byte, and a
//!   timestamp's UTC offset is dropped (DuckDB keeps the wall-clock time).
//! - **postgres**: dbt inserts agate's parsed values, so text that is empty or `null` after trimming
//!   is NULL, line breaks are `\n` (Python's universal newlines), a blank line is a row of NULLs,
//!   a timestamp with an offset is converted to UTC (the server's default `TimeZone`), and
//!   `inf`/`-inf` become `NaN` (psycopg2 sends every non-finite `Decimal` as `'NaN'`).
//!
//! Where dbt-core fails to load a seed, this reader is deliberately more lenient rather than failing:
//! integral columns beyond 32 bits become `bigint` (Int64), or `float8` beyond 64 bits or with
//! `nan`/`inf`; in DuckDB a non-text column's `null` spelling or `$1,000`-style number (which
//! DuckDB's CSV parser rejects) is read the way agate reads it.
//!
//! The file is parsed the way Python's `csv` module (excel dialect) parses it: `"` quotes, doubled
//! quotes inside quotes, quotes only special at the start of a field, `\n`, `\r\n` and `\r` all end a
//! line. It is read twice, so memory stays bounded by one batch: the first pass infers the types,
//! the second builds batches of up to [`BATCH_ROWS`] rows.

mod agate;
mod builder;
mod csv;
mod infer;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use indexmap::IndexMap;

use builder::ColumnBuilder;
use csv::{CsvReader, Rec};
use infer::{Inference, Kind};
pub use mdp_warehouse::SeedCsv;

/// Rows per Arrow batch.
pub const BATCH_ROWS: usize = 8192;

/// A seed column: its name, the Arrow type it is loaded as, and its final SQL type on the target.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedColumn {
    /// The name as written in the header (an empty name becomes agate's letter name, `a`, `b`, ...;
    /// a repeated name gets `_2`, `_3`, ...).
    pub name: String,
    /// The type of this column in [`SeedData::batches`].
    pub arrow_type: DataType,
    /// The column's type in the created table, spelled as dbt spells it (`integer`, `float8`, ...).
    pub sql_type: String,
    /// The batches carry this column as text: the caller loads it as text and `CAST`s it to `sql_type`
    /// (columns set in the seed's `column_types` config).
    pub cast_needed: bool,
}

/// A seed file read into Arrow batches.
#[derive(Debug, Clone)]
pub struct SeedData {
    /// The columns in file order.
    pub columns: Vec<SeedColumn>,
    /// The rows, in file order, in batches of at most [`BATCH_ROWS`] rows; no batch when there are no rows.
    pub batches: Vec<RecordBatch>,
    /// The number of rows over all batches.
    pub rows: usize,
}

/// A seed file that cannot be read. Lines are 1-based and the header is line 1.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The file cannot be opened or read.
    #[error("seed {}: cannot read the file: {source}; check that it exists and is readable", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file has no header line.
    #[error("seed {}: the file is empty; its first line must be a header naming the columns", path.display())]
    Empty { path: PathBuf },
    /// A field is not valid UTF-8.
    #[error("seed {}, line {line}, column {column}: the text is not valid UTF-8; save the file as UTF-8", path.display())]
    Utf8 { path: PathBuf, line: u64, column: String },
    /// A row has more or fewer fields than the header.
    #[error("seed {}, line {line}: the row has {found} fields but the header (line 1) has {expected} columns; {hint}", path.display())]
    FieldCount { path: PathBuf, line: u64, expected: usize, found: usize, hint: String },
    /// The reader cannot work with these settings (delimiter, dialect).
    #[error("seed {}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    /// A value no longer matches the type inferred in the first pass: the file changed while it was read.
    #[error(
        "seed {}, line {line}, column {column}: the value {value:?} is not a {expected} as it was when the types \
         were inferred; the file changed while it was being read, run again once nothing is writing it",
        path.display()
    )]
    Changed { path: PathBuf, line: u64, column: String, value: String, expected: &'static str },
    /// Building an Arrow batch failed.
    #[error("seed {}: cannot build an Arrow batch ending at line {line}: {source}", path.display())]
    Arrow {
        path: PathBuf,
        line: u64,
        #[source]
        source: arrow::error::ArrowError,
    },
}

/// Read the seed at `path` (or its `embedded` text: a seed shipped inside the binary): infer each column's type as dbt-core does, then load the rows.
///
/// `delimiter` is the seed's `delimiter` config (`b','` by default), `column_types` its
/// `column_types` config (column name → SQL type), `dialect` how the target's dbt adapter reads a CSV.
pub fn read_seed(
    path: &Path,
    embedded: Option<&str>,
    delimiter: u8,
    column_types: &IndexMap<String, String>,
    dialect: SeedCsv,
) -> Result<SeedData, SeedError> {
    if matches!(delimiter, b'"' | b'\n' | b'\r') || !delimiter.is_ascii() {
        return Err(SeedError::Config {
            path: path.to_path_buf(),
            message: format!(
                "the delimiter {:?} cannot separate fields (it must be an ASCII character other than a quote or a \
                 line break); set the seed's `delimiter` config to the character between the values, e.g. \",\"",
                char::from(delimiter)
            ),
        });
    }
    let ctx = Ctx { path, dialect, embedded };

    // Pass 1: header and type inference.
    let mut reader = ctx.open(delimiter)?;
    let names = match reader.read_record().map_err(|e| ctx.io(e))? {
        Some(Rec::Fields { line }) => header_names(&ctx, &reader, line)?,
        // A blank first line is not a header: Python's csv module would return no column names.
        Some(Rec::Blank { .. }) | None => return Err(SeedError::Empty { path: path.to_path_buf() }),
    };
    let mut inference: Vec<Inference> =
        names.iter().map(|name| Inference::new(column_types.contains_key(name.as_str()))).collect();
    for key in column_types.keys() {
        if !names.iter().any(|n| n == key) {
            tracing::warn!(seed = %path.display(), column = %key, "column_types names a column the seed does not have");
        }
    }
    while let Some(rec) = reader.read_record().map_err(|e| ctx.io(e))? {
        let Rec::Fields { line } = rec else { continue };
        check_field_count(&ctx, &reader, &names, line)?;
        for (i, inf) in inference.iter_mut().enumerate() {
            inf.observe(field_str(&ctx, &reader, &names, line, i)?);
        }
    }
    drop(reader);
    let kinds: Vec<Kind> = inference
        .iter()
        .zip(&names)
        .map(|(inf, name)| inf.resolve(column_types.get(name.as_str()).map(String::as_str)))
        .collect();
    let columns: Vec<SeedColumn> = names
        .iter()
        .zip(&kinds)
        .map(|(name, kind)| SeedColumn {
            name: name.clone(),
            arrow_type: kind.arrow_type(),
            sql_type: kind.sql_type().to_string(),
            cast_needed: matches!(kind, Kind::Override(_)),
        })
        .collect();
    let schema = Arc::new(Schema::new(
        columns.iter().map(|c| Field::new(c.name.clone(), c.arrow_type.clone(), true)).collect::<Vec<_>>(),
    ));

    // Pass 2: values.
    let mut reader = ctx.open(delimiter)?;
    reader.read_record().map_err(|e| ctx.io(e))?; // the header
    let mut builders: Vec<ColumnBuilder> = kinds.iter().map(ColumnBuilder::new).collect();
    let mut batches = Vec::new();
    let mut rows = 0usize;
    let mut in_batch = 0usize;
    let mut last_line = 1;
    while let Some(rec) = reader.read_record().map_err(|e| ctx.io(e))? {
        match rec {
            Rec::Blank { line } => {
                // Python's csv module returns `[]` for a blank line and agate pads it with NULLs.
                // DuckDB's CSV reader skips it, unless the file has one column: then it is an empty
                // field, NULL as well.
                if dialect == SeedCsv::DuckDb && names.len() > 1 {
                    continue;
                }
                last_line = line;
                builders.iter_mut().for_each(ColumnBuilder::append_null);
            }
            Rec::Fields { line } => {
                last_line = line;
                check_field_count(&ctx, &reader, &names, line)?;
                for (i, builder) in builders.iter_mut().enumerate() {
                    let value = field_str(&ctx, &reader, &names, line, i)?;
                    builder.append(value, dialect).map_err(|expected| SeedError::Changed {
                        path: path.to_path_buf(),
                        line,
                        column: names[i].clone(),
                        value: value.to_string(),
                        expected,
                    })?;
                }
            }
        }
        rows += 1;
        in_batch += 1;
        if in_batch == BATCH_ROWS {
            batches.push(finish_batch(&ctx, &schema, &mut builders, last_line)?);
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        batches.push(finish_batch(&ctx, &schema, &mut builders, last_line)?);
    }
    Ok(SeedData { columns, batches, rows })
}

/// What every error needs: the file and the target.
struct Ctx<'a> {
    path: &'a Path,
    dialect: SeedCsv,
    embedded: Option<&'a str>,
}

/// The bytes a seed is read from: its file, or its text when shipped inside the binary.
type Input<'a> = Box<dyn Read + 'a>;

impl Ctx<'_> {
    fn io(&self, source: io::Error) -> SeedError {
        SeedError::Io { path: self.path.to_path_buf(), source }
    }

    /// Open the file, past a UTF-8 byte order mark (dbt strips one too).
    fn open(&self, delimiter: u8) -> Result<CsvReader<Input<'_>>, SeedError> {
        let file: Input<'_> = match self.embedded {
            Some(text) => Box::new(text.as_bytes()),
            None => Box::new(File::open(self.path).map_err(|e| self.io(e))?),
        };
        let mut reader = CsvReader::new(file, delimiter, self.dialect == SeedCsv::Agate);
        reader.skip_bom().map_err(|e| self.io(e))?;
        Ok(reader)
    }
}

/// The header's column names, as agate names them: an empty name becomes the column's letter name
/// (`a`, `b`, ..., `aa`), a repeated name gets `_2`, `_3`, ...
fn header_names(ctx: &Ctx<'_>, reader: &CsvReader<Input<'_>>, line: u64) -> Result<Vec<String>, SeedError> {
    let mut names: Vec<String> = Vec::with_capacity(reader.len());
    for i in 0..reader.len() {
        let raw = std::str::from_utf8(reader.field(i)).map_err(|_| SeedError::Utf8 {
            path: ctx.path.to_path_buf(),
            line,
            column: format!("{} of the header", i + 1),
        })?;
        // Column names come from agate in both dialects, so always with Python's newlines.
        let base = if raw.is_empty() { letter_name(i) } else { universal_newlines(raw) };
        let mut name = base.clone();
        let mut duplicates = 0;
        while names.contains(&name) {
            name = format!("{base}_{}", duplicates + 2);
            duplicates += 1;
        }
        names.push(name);
    }
    Ok(names)
}

/// agate's `letter_name`: 0 → `a`, 25 → `z`, 26 → `aa`.
fn letter_name(index: usize) -> String {
    let letter = char::from(b'a' + (index % 26) as u8);
    std::iter::repeat_n(letter, index / 26 + 1).collect()
}

fn universal_newlines(s: &str) -> String {
    if s.contains('\r') {
        s.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        s.to_string()
    }
}

fn check_field_count(
    ctx: &Ctx<'_>,
    reader: &CsvReader<Input<'_>>,
    names: &[String],
    line: u64,
) -> Result<(), SeedError> {
    let found = reader.len();
    let expected = names.len();
    if found == expected {
        return Ok(());
    }
    let hint = if found > expected {
        format!(
            "field {} has no column (after column {:?}); remove the extra fields, or quote values that contain the \
             delimiter",
            expected + 1,
            names[expected - 1]
        )
    } else {
        format!(
            "column {:?} has no value; add the missing fields (write an empty field for a NULL, e.g. `1,,3`)",
            names[found]
        )
    };
    Err(SeedError::FieldCount { path: ctx.path.to_path_buf(), line, expected, found, hint })
}

fn field_str<'r>(
    ctx: &Ctx<'_>,
    reader: &'r CsvReader<Input<'_>>,
    names: &[String],
    line: u64,
    i: usize,
) -> Result<&'r str, SeedError> {
    std::str::from_utf8(reader.field(i)).map_err(|_| SeedError::Utf8 {
        path: ctx.path.to_path_buf(),
        line,
        column: format!("{:?}", names[i]),
    })
}

fn finish_batch(
    ctx: &Ctx<'_>,
    schema: &Arc<Schema>,
    builders: &mut [ColumnBuilder],
    line: u64,
) -> Result<RecordBatch, SeedError> {
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(ColumnBuilder::finish).collect();
    RecordBatch::try_new(schema.clone(), arrays).map_err(|source| SeedError::Arrow {
        path: ctx.path.to_path_buf(),
        line,
        source,
    })
}
