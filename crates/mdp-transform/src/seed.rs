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

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use indexmap::IndexMap;

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
/// `column_types` config (column name → SQL type), `dialect` the target: `"duckdb"` or `"postgres"`.
pub fn read_seed(
    path: &Path,
    embedded: Option<&str>,
    delimiter: u8,
    column_types: &IndexMap<String, String>,
    dialect: &str,
) -> Result<SeedData, SeedError> {
    let dialect = match dialect.to_ascii_lowercase().as_str() {
        "duckdb" => Dialect::DuckDb,
        "postgres" | "postgresql" => Dialect::Postgres,
        other => {
            return Err(SeedError::Config {
                path: path.to_path_buf(),
                message: format!("unknown target dialect {other:?}; seeds can be loaded into duckdb or postgres"),
            })
        }
    };
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
                if dialect == Dialect::DuckDb && names.len() > 1 {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    DuckDb,
    Postgres,
}

/// What every error needs: the file and the target.
struct Ctx<'a> {
    path: &'a Path,
    dialect: Dialect,
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
        let mut reader = CsvReader::new(file, delimiter, self.dialect == Dialect::Postgres);
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

// ---------------------------------------------------------------------------------------------
// CSV parsing, as Python's csv module (excel dialect) parses a file opened with universal newlines.
// ---------------------------------------------------------------------------------------------

/// One record read by [`CsvReader::read_record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rec {
    /// A line with nothing on it (Python's csv module returns `[]`).
    Blank { line: u64 },
    /// A record whose fields are in the reader; `line` is where it starts.
    Fields { line: u64 },
}

enum Tok {
    Byte(u8),
    /// A line break: `\n`, `\r\n` or `\r`.
    Newline(&'static [u8]),
    Eof,
}

#[derive(Clone, Copy)]
enum State {
    StartField,
    InField,
    InQuoted,
    QuoteInQuoted,
}

/// Bytes read from the file at a time.
const CHUNK: usize = 64 * 1024;

struct CsvReader<R> {
    input: R,
    chunk: Vec<u8>,
    pos: usize,
    len: usize,
    delimiter: u8,
    /// Line breaks inside quoted fields become `\n` (Python's universal newlines) instead of being kept.
    translate_newlines: bool,
    /// The line the next record starts on.
    line: u64,
    /// The current record's bytes and the end of each field in them.
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: Read> CsvReader<R> {
    fn new(input: R, delimiter: u8, translate_newlines: bool) -> Self {
        CsvReader {
            input,
            chunk: vec![0; CHUNK],
            pos: 0,
            len: 0,
            delimiter,
            translate_newlines,
            line: 1,
            bytes: Vec::new(),
            ends: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Is there another byte? Refills the chunk when needed.
    fn fill(&mut self) -> io::Result<bool> {
        if self.pos < self.len {
            return Ok(true);
        }
        loop {
            match self.input.read(&mut self.chunk) {
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn skip_bom(&mut self) -> io::Result<()> {
        const BOM: &[u8] = b"\xef\xbb\xbf";
        // Gather up to three bytes (a read may return fewer), then put back what is not a BOM.
        let mut head = Vec::with_capacity(3);
        while head.len() < 3 && self.fill()? {
            head.push(self.chunk[self.pos]);
            self.pos += 1;
        }
        if head != BOM {
            let mut data = head;
            data.extend_from_slice(&self.chunk[self.pos..self.len]);
            self.len = data.len();
            self.pos = 0;
            data.resize(data.len().max(CHUNK), 0);
            self.chunk = data;
        }
        Ok(())
    }

    fn next_tok(&mut self) -> io::Result<Tok> {
        if !self.fill()? {
            return Ok(Tok::Eof);
        }
        let b = self.chunk[self.pos];
        self.pos += 1;
        match b {
            b'\n' => Ok(Tok::Newline(b"\n")),
            b'\r' => {
                if self.fill()? && self.chunk[self.pos] == b'\n' {
                    self.pos += 1;
                    Ok(Tok::Newline(b"\r\n"))
                } else {
                    Ok(Tok::Newline(b"\r"))
                }
            }
            _ => Ok(Tok::Byte(b)),
        }
    }

    fn end_field(&mut self) {
        self.ends.push(self.bytes.len());
    }

    /// Read the next record; `None` at the end of the file.
    fn read_record(&mut self) -> io::Result<Option<Rec>> {
        self.bytes.clear();
        self.ends.clear();
        let line = self.line;
        let first = match self.next_tok()? {
            Tok::Eof => return Ok(None),
            Tok::Newline(_) => {
                self.line += 1;
                return Ok(Some(Rec::Blank { line }));
            }
            tok => tok,
        };
        let mut pending = Some(first);
        let mut state = State::StartField;
        loop {
            let tok = match pending.take() {
                Some(tok) => tok,
                None => self.next_tok()?,
            };
            // A line break or the end of the file ends the record, except inside quotes.
            let end = match tok {
                Tok::Newline(raw) => match state {
                    State::InQuoted => {
                        self.line += 1;
                        if self.translate_newlines {
                            self.bytes.push(b'\n');
                        } else {
                            self.bytes.extend_from_slice(raw);
                        }
                        continue;
                    }
                    _ => {
                        self.line += 1;
                        true
                    }
                },
                Tok::Eof => true,
                Tok::Byte(_) => false,
            };
            if end {
                self.end_field();
                return Ok(Some(Rec::Fields { line }));
            }
            let Tok::Byte(b) = tok else { unreachable!("line breaks and the end of the file are handled above") };
            state = match state {
                State::StartField if b == b'"' => State::InQuoted,
                State::StartField | State::InField if b == self.delimiter => {
                    self.end_field();
                    State::StartField
                }
                State::StartField | State::InField => {
                    self.bytes.push(b);
                    State::InField
                }
                State::InQuoted if b == b'"' => State::QuoteInQuoted,
                State::InQuoted => {
                    self.bytes.push(b);
                    State::InQuoted
                }
                State::QuoteInQuoted if b == b'"' => {
                    self.bytes.push(b'"');
                    State::InQuoted
                }
                State::QuoteInQuoted if b == self.delimiter => {
                    self.end_field();
                    State::StartField
                }
                // `"ab"cd` is `abcd` (Python's csv is not strict).
                State::QuoteInQuoted => {
                    self.bytes.push(b);
                    State::InField
                }
            };
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Type inference: agate's TypeTester with dbt's type list.
// ---------------------------------------------------------------------------------------------

const NUMBER: u8 = 1;
const DATE: u8 = 2;
const DATETIME: u8 = 4;
const ISO_DATETIME: u8 = 8;
const BOOLEAN: u8 = 16;

/// Python's `decimal` context precision, which agate's `Number.cast` rounds to (`Decimal(d) * sign`).
const DECIMAL_PRECISION: usize = 28;

/// The type a column is loaded as.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// Set in `column_types`: loaded as text, cast in SQL.
    Override(String),
    Int32,
    Int64,
    Float64,
    Date,
    /// agate `DateTime` with dbt's `%Y-%m-%d %H:%M:%S` format.
    DateTime,
    /// dbt's `ISODateTime`.
    IsoDateTime,
    Boolean,
    Text,
}

impl Kind {
    fn arrow_type(&self) -> DataType {
        match self {
            Kind::Override(_) | Kind::Text => DataType::Utf8,
            Kind::Int32 => DataType::Int32,
            Kind::Int64 => DataType::Int64,
            Kind::Float64 => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::DateTime | Kind::IsoDateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Boolean => DataType::Boolean,
        }
    }

    /// The SQL type, spelled as `SQLAdapter.convert_*_type` spells it (dbt-postgres and dbt-duckdb).
    fn sql_type(&self) -> &str {
        match self {
            Kind::Override(sql) => sql,
            Kind::Int32 => "integer",
            Kind::Int64 => "bigint",
            Kind::Float64 => "float8",
            Kind::Date => "date",
            Kind::DateTime | Kind::IsoDateTime => "timestamp without time zone",
            Kind::Boolean => "boolean",
            Kind::Text => "text",
        }
    }
}

/// Whether one agate type's `cast` accepts a value.
type Accepts = fn(&str) -> bool;

/// One column's surviving hypotheses and what its numbers look like.
struct Inference {
    forced: bool,
    /// Any data row seen: dbt's `Integer` accepts only Python ints and `None`, never a CSV string,
    /// so it survives only in a column without rows.
    any_row: bool,
    alive: u8,
    /// agate `MaxPrecision` state: the most whole and decimal places of any finite number.
    max_whole: i64,
    max_decimals: i64,
    fits_i32: bool,
    fits_i64: bool,
    non_finite: bool,
}

impl Inference {
    fn new(forced: bool) -> Self {
        Inference {
            forced,
            any_row: false,
            alive: NUMBER | DATE | DATETIME | ISO_DATETIME | BOOLEAN,
            max_whole: 1,
            max_decimals: 0,
            fits_i32: true,
            fits_i64: true,
            non_finite: false,
        }
    }

    fn observe(&mut self, value: &str) {
        self.any_row = true;
        if self.forced || self.alive == 0 {
            return;
        }
        if self.alive & NUMBER != 0 {
            match parse_number(value, true) {
                Parsed::Null => {}
                Parsed::Invalid => self.alive &= !NUMBER,
                Parsed::Value(Num::NaN | Num::Inf { .. }) => self.non_finite = true,
                Parsed::Value(Num::Finite(d)) => {
                    let exponent_places = -d.exp;
                    let whole_places = d.digits.len().max(1) as i64 - exponent_places;
                    self.max_whole = self.max_whole.max(whole_places);
                    self.max_decimals = self.max_decimals.max(exponent_places);
                    let int = d.to_i128();
                    self.fits_i32 &= int.is_some_and(|v| i32::try_from(v).is_ok());
                    self.fits_i64 &= int.is_some_and(|v| i64::try_from(v).is_ok());
                }
            }
        }
        let checks: [(u8, Accepts); 4] = [
            (DATE, |v| !matches!(parse_date(v), Parsed::Invalid)),
            (DATETIME, |v| !matches!(parse_datetime(v), Parsed::Invalid)),
            (ISO_DATETIME, |v| !matches!(parse_iso_datetime(v), Parsed::Invalid)),
            (BOOLEAN, |v| !matches!(parse_bool(v), Parsed::Invalid)),
        ];
        for (flag, accepts) in checks {
            if self.alive & flag != 0 && !accepts(value) {
                self.alive &= !flag;
            }
        }
    }

    /// The first surviving type in dbt's order: Integer, Number, Date, DateTime, ISODateTime, Boolean, Text.
    fn resolve(&self, sql_override: Option<&str>) -> Kind {
        if let Some(sql) = sql_override {
            return Kind::Override(sql.to_string());
        }
        if !self.any_row {
            return Kind::Int32; // dbt's Integer → `integer`
        }
        if self.alive & NUMBER != 0 {
            // agate's max_precision caps whole + decimal places at the context precision.
            let decimals = if self.max_whole + self.max_decimals > DECIMAL_PRECISION as i64 {
                DECIMAL_PRECISION as i64 - self.max_whole
            } else {
                self.max_decimals
            };
            // dbt: `float8` if decimals else `integer`. Wider integers and non-finite values would make
            // dbt's load fail; they get a type that holds them instead.
            return if decimals != 0 || self.non_finite {
                Kind::Float64
            } else if self.fits_i32 {
                Kind::Int32
            } else if self.fits_i64 {
                Kind::Int64
            } else {
                Kind::Float64
            };
        }
        if self.alive & DATE != 0 {
            Kind::Date
        } else if self.alive & DATETIME != 0 {
            Kind::DateTime
        } else if self.alive & ISO_DATETIME != 0 {
            Kind::IsoDateTime
        } else if self.alive & BOOLEAN != 0 {
            Kind::Boolean
        } else {
            Kind::Text
        }
    }
}

/// A value as one agate type's `cast` sees it.
#[derive(Debug, Clone, PartialEq)]
enum Parsed<T> {
    Null,
    Value(T),
    /// `cast` raises `CastError`: the column cannot be this type.
    Invalid,
}

/// Python's `str.strip()`: Unicode whitespace plus the ASCII separators `\x1c`–`\x1f`.
fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// dbt's null values for every type: `null` and the empty string (compared after `strip().lower()`).
fn is_null_word(stripped: &str) -> bool {
    stripped.is_empty() || stripped.eq_ignore_ascii_case("null")
}

// ----- numbers -----

/// A finite decimal, normalised: `digits × 10^exp`, no leading or trailing zeros in `digits`
/// (empty for zero).
#[derive(Debug, Clone, PartialEq)]
struct Dec {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

#[derive(Debug, Clone, PartialEq)]
enum Num {
    Finite(Dec),
    NaN,
    Inf { neg: bool },
}

impl Dec {
    /// The value as an integer, rounded half away from zero when it has decimals; `None` when it
    /// does not fit an i128.
    fn to_i128(&self) -> Option<i128> {
        if self.digits.is_empty() {
            return Some(0);
        }
        let (keep, round_up) = if self.exp >= 0 {
            (self.digits.len(), false)
        } else {
            let drop = usize::try_from(-self.exp).ok()?;
            if drop > self.digits.len() {
                (0, false) // below 0.1: rounds to 0
            } else {
                let keep = self.digits.len() - drop;
                (keep, self.digits[keep] >= b'5')
            }
        };
        let mut v: i128 = 0;
        for &d in &self.digits[..keep] {
            v = v.checked_mul(10)?.checked_add(i128::from(d - b'0'))?;
        }
        if self.exp > 0 {
            v = v.checked_mul(10i128.checked_pow(u32::try_from(self.exp).ok()?)?)?;
        }
        if round_up {
            v = v.checked_add(1)?;
        }
        Some(if self.neg { -v } else { v })
    }

    fn to_f64(&self) -> f64 {
        if self.digits.is_empty() {
            return if self.neg { -0.0 } else { 0.0 };
        }
        let digits = std::str::from_utf8(&self.digits).unwrap_or("0");
        let text = format!("{}{digits}e{}", if self.neg { "-" } else { "" }, self.exp);
        text.parse().unwrap_or(f64::NAN)
    }
}

/// Currency symbols agate's `Number` strips (`agate.data_types.number.DEFAULT_CURRENCY_SYMBOLS`).
const CURRENCY_SYMBOLS: [char; 19] =
    ['؋', '$', 'ƒ', '៛', '¥', '₡', '₱', '£', '€', '¢', '﷼', '₪', '₩', '₭', '₮', '₦', '฿', '₤', '₫'];

/// agate `Number.cast` (en_US): strip, null values, `%`, a leading `-`, currency symbols, `,`
/// grouping, then Python's `Decimal`. With `round`, the result is rounded to 28 significant digits
/// as `Decimal(d) * sign` rounds it.
fn parse_number(value: &str, round: bool) -> Parsed<Num> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    let d = d.trim_matches('%');
    let (neg, mut d) = match d.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, d),
    };
    for symbol in CURRENCY_SYMBOLS {
        d = d.trim_matches(symbol);
    }
    let cleaned: String = d.chars().filter(|&c| c != ',').collect();
    match py_decimal(&cleaned, round) {
        Some(Num::Finite(mut dec)) => {
            dec.neg ^= neg;
            Parsed::Value(Num::Finite(dec))
        }
        Some(Num::Inf { neg: inner }) => Parsed::Value(Num::Inf { neg: inner ^ neg }),
        Some(Num::NaN) => Parsed::Value(Num::NaN),
        None => Parsed::Invalid,
    }
}

/// Python's `Decimal(str)`: surrounding whitespace and underscores ignored, optional sign, digits
/// with an optional point, optional exponent; `inf`, `infinity`, `nan` in any case. A signalling
/// `snan` is rejected (agate's multiplication by the sign raises on it).
fn py_decimal(s: &str, round: bool) -> Option<Num> {
    let without_underscores: String = s.chars().filter(|&c| c != '_').collect();
    let s = py_strip(&without_underscores);
    let (neg, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Num::Inf { neg });
    }
    if let Some(payload) = lower.strip_prefix("nan") {
        return payload.bytes().all(|b| b.is_ascii_digit()).then_some(Num::NaN);
    }
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut coefficient: Vec<u8> = Vec::with_capacity(bytes.len());
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        coefficient.push(bytes[i]);
        i += 1;
    }
    let mut frac_len: i64 = 0;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            coefficient.push(bytes[i]);
            frac_len += 1;
            i += 1;
        }
    }
    if coefficient.is_empty() {
        return None;
    }
    let mut exp: i64 = 0;
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        let exp_neg = match bytes.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            exp = exp.saturating_mul(10).saturating_add(i64::from(bytes[i] - b'0'));
            i += 1;
        }
        if i == start {
            return None;
        }
        if exp_neg {
            exp = -exp;
        }
    }
    if i != bytes.len() {
        return None;
    }
    let mut exp = exp.saturating_sub(frac_len);
    let lead = coefficient.iter().take_while(|&&b| b == b'0').count();
    coefficient.drain(..lead);
    if round && coefficient.len() > DECIMAL_PRECISION {
        exp = exp.saturating_add(round_half_even(&mut coefficient, DECIMAL_PRECISION));
    }
    let trail = coefficient.iter().rev().take_while(|&&b| b == b'0').count();
    coefficient.truncate(coefficient.len() - trail);
    if coefficient.is_empty() {
        exp = 0;
    } else {
        exp = exp.saturating_add(trail as i64);
    }
    Some(Num::Finite(Dec { neg, digits: coefficient, exp }))
}

/// Round the digit string `digits` (no leading zeros) to `keep` digits, half to even; returns how
/// much the exponent grows.
fn round_half_even(digits: &mut Vec<u8>, keep: usize) -> i64 {
    let dropped = digits.len() - keep;
    let first = digits[keep];
    let rest_nonzero = digits[keep + 1..].iter().any(|&b| b != b'0');
    let last_odd = (digits[keep - 1] - b'0') % 2 == 1;
    let up = first > b'5' || (first == b'5' && (rest_nonzero || last_odd));
    digits.truncate(keep);
    let mut grow = dropped as i64;
    if up {
        let mut i = keep;
        loop {
            if i == 0 {
                // 999… → 1000…: one digit more than kept, so drop the last zero.
                digits.insert(0, b'1');
                digits.truncate(keep);
                grow += 1;
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    grow
}

// ----- booleans -----

/// agate `Boolean.cast` with dbt's values: commas removed, strip, `true` / `false` in any case.
fn parse_bool(value: &str) -> Parsed<bool> {
    let without_commas: String = value.chars().filter(|&c| c != ',').collect();
    let d = py_strip(&without_commas);
    if is_null_word(d) {
        Parsed::Null
    } else if d.eq_ignore_ascii_case("true") {
        Parsed::Value(true)
    } else if d.eq_ignore_ascii_case("false") {
        Parsed::Value(false)
    } else {
        Parsed::Invalid
    }
}

// ----- dates and times: Python's strptime -----

/// Candidates for a strptime directive at the start of `s`, in the order of the directive's regex
/// alternatives: (value, length).
type Cands = [Option<(u32, usize)>; 5];

fn digit(b: Option<&u8>, range: std::ops::RangeInclusive<u8>) -> Option<u32> {
    b.filter(|b| range.contains(b)).map(|b| u32::from(b - b'0'))
}

fn two(s: &[u8], first: std::ops::RangeInclusive<u8>, second: std::ops::RangeInclusive<u8>) -> Option<(u32, usize)> {
    Some((digit(s.first(), first)? * 10 + digit(s.get(1), second)?, 2))
}

fn one(s: &[u8], range: std::ops::RangeInclusive<u8>) -> Option<(u32, usize)> {
    Some((digit(s.first(), range)?, 1))
}

/// `%m`: `1[0-2]|0[1-9]|[1-9]`
fn month_cands(s: &[u8]) -> Cands {
    [two(s, b'1'..=b'1', b'0'..=b'2'), two(s, b'0'..=b'0', b'1'..=b'9'), one(s, b'1'..=b'9'), None, None]
}

/// `%d`: `3[01]|[12]\d|0[1-9]|[1-9]| [1-9]`
fn day_cands(s: &[u8]) -> Cands {
    let space_digit = if s.first() == Some(&b' ') { one(&s[1..], b'1'..=b'9').map(|(v, _)| (v, 2)) } else { None };
    [
        two(s, b'3'..=b'3', b'0'..=b'1'),
        two(s, b'1'..=b'2', b'0'..=b'9'),
        two(s, b'0'..=b'0', b'1'..=b'9'),
        one(s, b'1'..=b'9'),
        space_digit,
    ]
}

/// `%H`: `2[0-3]|[0-1]\d|\d`
fn hour_cands(s: &[u8]) -> Cands {
    [two(s, b'2'..=b'2', b'0'..=b'3'), two(s, b'0'..=b'1', b'0'..=b'9'), one(s, b'0'..=b'9'), None, None]
}

/// `%M`: `[0-5]\d|\d`
fn minute_cands(s: &[u8]) -> Cands {
    [two(s, b'0'..=b'5', b'0'..=b'9'), one(s, b'0'..=b'9'), None, None, None]
}

/// `%S`: `6[0-1]|[0-5]\d|\d`
fn second_cands(s: &[u8]) -> Cands {
    [two(s, b'6'..=b'6', b'0'..=b'1'), two(s, b'0'..=b'5', b'0'..=b'9'), one(s, b'0'..=b'9'), None, None]
}

/// The first candidate after which `rest` holds; strptime's regex backtracks the same way.
fn pick(s: &[u8], cands: Cands, rest: impl Fn(&[u8]) -> bool) -> Option<(u32, &[u8])> {
    cands.into_iter().flatten().find(|&(_, len)| rest(&s[len..])).map(|(v, len)| (v, &s[len..]))
}

/// `%Y-%m-` then the day's candidates: (year, month, text from the day on).
fn year_month(s: &[u8]) -> Option<(i32, u32, &[u8])> {
    if s.len() < 5 || !s[..4].iter().all(u8::is_ascii_digit) || s[4] != b'-' {
        return None;
    }
    let year = s[..4].iter().fold(0i32, |acc, b| acc * 10 + i32::from(b - b'0'));
    let (month, rest) = pick(&s[5..], month_cands(&s[5..]), |r| r.first() == Some(&b'-'))?;
    Some((year, month, &rest[1..]))
}

/// A date as Python's `datetime` accepts it (years 1–9999).
fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    if !(1..=9999).contains(&year) {
        return None;
    }
    NaiveDate::from_ymd_opt(year, month, day)
}

/// agate `Date` with dbt's `date_format="%Y-%m-%d"` (`datetime.strptime`).
fn parse_date(value: &str) -> Parsed<NaiveDate> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    strptime_date(d.as_bytes()).map_or(Parsed::Invalid, Parsed::Value)
}

fn strptime_date(d: &[u8]) -> Option<NaiveDate> {
    let (year, month, rest) = year_month(d)?;
    // The last directive takes its first matching alternative; the rest must then be empty.
    let (day, rest) = pick(rest, day_cands(rest), |_| true)?;
    if !rest.is_empty() {
        return None;
    }
    ymd(year, month, day)
}

/// agate `DateTime` with dbt's `datetime_format="%Y-%m-%d %H:%M:%S"` (the space matches any run of
/// whitespace, as in strptime).
fn parse_datetime(value: &str) -> Parsed<NaiveDateTime> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    strptime_datetime(d.as_bytes()).map_or(Parsed::Invalid, Parsed::Value)
}

fn strptime_datetime(d: &[u8]) -> Option<NaiveDateTime> {
    // strptime turns the format's space into `\s+`.
    let is_space = |b: &u8| b.is_ascii_whitespace() || *b == 0x0b;
    let (year, month, rest) = year_month(d)?;
    let (day, rest) = pick(rest, day_cands(rest), |r| r.first().is_some_and(is_space))?;
    let rest = &rest[rest.iter().take_while(|b| is_space(b)).count()..];
    let (hour, rest) = pick(rest, hour_cands(rest), |r| r.first() == Some(&b':'))?;
    let (minute, rest) = pick(&rest[1..], minute_cands(&rest[1..]), |r| r.first() == Some(&b':'))?;
    let (second, rest) = pick(&rest[1..], second_cands(&rest[1..]), |_| true)?;
    if !rest.is_empty() {
        return None;
    }
    Some(ymd(year, month, day)?.and_time(NaiveTime::from_hms_opt(hour, minute, second)?))
}

// ----- ISO 8601: the `isodate` package -----

/// A datetime from `isodate.parse_datetime`: the wall-clock time and the UTC offset in seconds, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
struct IsoDateTime {
    local: NaiveDateTime,
    offset_seconds: Option<i64>,
}

/// dbt's `ISODateTime.cast`: strip, null values, then `isodate.parse_datetime` (exactly one `T`).
fn parse_iso_datetime(value: &str) -> Parsed<IsoDateTime> {
    let d = py_strip(value);
    if is_null_word(d) {
        return Parsed::Null;
    }
    isodate_datetime(d).map_or(Parsed::Invalid, Parsed::Value)
}

fn isodate_datetime(d: &str) -> Option<IsoDateTime> {
    let mut parts = d.split('T');
    let (date, time) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let date = iso_date(date.as_bytes())?;
    let (time, offset_seconds) = iso_time(time.as_bytes())?;
    Some(IsoDateTime { local: date.and_time(time), offset_seconds })
}

/// Match `s` against `template` (`#` a digit, anything else itself); the digit runs' values.
fn template(s: &[u8], template: &str) -> Option<Vec<u32>> {
    let t = template.as_bytes();
    if s.len() != t.len() {
        return None;
    }
    let mut groups = Vec::new();
    let mut current: Option<u32> = None;
    for (&c, &p) in s.iter().zip(t) {
        if p == b'#' {
            if !c.is_ascii_digit() {
                return None;
            }
            current = Some(current.unwrap_or(0) * 10 + u32::from(c - b'0'));
        } else {
            if c != p {
                return None;
            }
            groups.extend(current.take());
        }
    }
    groups.extend(current);
    Some(groups)
}

/// `isodate.parse_date` with 4-digit years, tried in isodate's order.
fn iso_date(s: &[u8]) -> Option<NaiveDate> {
    let days = |date: NaiveDate, n: i64| {
        date.checked_add_signed(chrono::Duration::days(n)).filter(|d| (1..=9999).contains(&d.year()))
    };
    // Python: date(year, int(month) or 1, day) — a month of 00 means January.
    let calendar = |y: u32, m: u32, d: u32| ymd(y as i32, if m == 0 { 1 } else { m }, d);
    let week = |y: u32, w: u32, d: u32| {
        let jan1 = ymd(y as i32, 1, 1)?;
        let weeks = i64::from(w) - i64::from(jan1.iso_week().week() == 1);
        days(jan1, weeks * 7 - i64::from(jan1.weekday().number_from_monday()) + i64::from(d))
    };
    let ordinal = |y: u32, d: u32| days(ymd(y as i32, 1, 1)?, i64::from(d) - 1);
    if let Some(g) = template(s, "####-##-##").or_else(|| template(s, "########")) {
        // The basic form is one digit run: split it.
        let (y, m, d) = if g.len() == 3 { (g[0], g[1], g[2]) } else { (g[0] / 10_000, g[0] / 100 % 100, g[0] % 100) };
        return calendar(y, m, d);
    }
    if let Some(g) = template(s, "####-W##-#") {
        return week(g[0], g[1], g[2]);
    }
    if let Some(g) = template(s, "####W###") {
        return week(g[0], g[1] / 10, g[1] % 10);
    }
    if let Some(g) = template(s, "####-###") {
        return ordinal(g[0], g[1]);
    }
    if let Some(g) = template(s, "#######") {
        return ordinal(g[0] / 1000, g[0] % 1000);
    }
    if let Some(g) = template(s, "####-W##") {
        return week(g[0], g[1], 1);
    }
    if let Some(g) = template(s, "####W##") {
        return week(g[0], g[1], 1);
    }
    if let Some(g) = template(s, "####-##") {
        return calendar(g[0], g[1], 1);
    }
    if let Some(g) = template(s, "######") {
        return calendar(g[0] / 100, g[0] % 100, 1);
    }
    if let Some(g) = template(s, "####") {
        return ymd(g[0] as i32, 1, 1);
    }
    if let Some(g) = template(s, "##") {
        return ymd(g[0] as i32 * 100 + 1, 1, 1);
    }
    None
}

/// `isodate.parse_time`: `hh:mm:ss`, `hhmmss`, `hh:mm`, `hhmm`, `hh`, the last component with an
/// optional `.`/`,` fraction, then an optional `Z`, `±hh`, `±hhmm` or `±hh:mm`.
fn iso_time(s: &[u8]) -> Option<(NaiveTime, Option<i64>)> {
    #[derive(Clone, Copy)]
    enum Last {
        Second,
        Minute,
        Hour,
    }
    let forms: [(&str, Last); 5] = [
        ("##:##:##", Last::Second),
        ("######", Last::Second),
        ("##:##", Last::Minute),
        ("####", Last::Minute),
        ("##", Last::Hour),
    ];
    for (form, last) in forms {
        let Some(head) = s.get(..form.len()) else { continue };
        let Some(groups) = template(head, form) else { continue };
        let mut rest = &s[form.len()..];
        // Optional fraction: a separator and at least one digit.
        let mut fraction: &[u8] = &[];
        if matches!(rest.first(), Some(b'.' | b',')) {
            let n = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            if n > 0 {
                fraction = &rest[1..=n];
                rest = &rest[n + 1..];
            }
        }
        let Some(offset) = iso_offset(rest) else { continue };
        // The first form that matches decides; a value out of range makes the whole parse fail.
        let (hour, minute, second) = match (groups.len(), last) {
            (3, _) => (groups[0], groups[1], groups[2]),
            (2, _) => (groups[0], groups[1], 0),
            (1, Last::Second) => (groups[0] / 10_000, groups[0] / 100 % 100, groups[0] % 100),
            (1, Last::Minute) => (groups[0] / 100, groups[0] % 100, 0),
            _ => (groups[0], 0, 0),
        };
        let time = match last {
            // Seconds: the fraction floored to microseconds.
            Last::Second => {
                let micros = fraction
                    .iter()
                    .chain(std::iter::repeat(&b'0'))
                    .take(6)
                    .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'));
                NaiveTime::from_hms_micro_opt(hour, minute, second, micros)
            }
            // Minutes: fraction × 60 s floored to microseconds.
            Last::Minute => {
                let (total, _) = scale_fraction(fraction, 60_000_000);
                let total = u32::try_from(total).ok()?;
                NaiveTime::from_hms_micro_opt(hour, minute, total / 1_000_000, total % 1_000_000)
            }
            // Hours: fraction × 3600 s; isodate rounds the microseconds half to even and fails at 1 s.
            Last::Hour => {
                let (floor, half) = scale_fraction(fraction, 3_600_000_000);
                let floor = u32::try_from(floor).ok()?;
                let mut micros = floor % 1_000_000;
                match half {
                    std::cmp::Ordering::Greater => micros += 1,
                    std::cmp::Ordering::Equal if micros % 2 == 1 => micros += 1,
                    _ => {}
                }
                if micros >= 1_000_000 {
                    return None;
                }
                NaiveTime::from_hms_micro_opt(hour, floor / 60_000_000, floor / 1_000_000 % 60, micros)
            }
        };
        return Some((time?, offset));
    }
    None
}

/// `0.fraction × unit`: its floor, and how the remainder compares with one half.
fn scale_fraction(fraction: &[u8], unit: u128) -> (u128, std::cmp::Ordering) {
    let digits = &fraction[..fraction.len().min(20)];
    let numerator = digits.iter().fold(0u128, |acc, b| acc * 10 + u128::from(b - b'0'));
    let denominator = 10u128.pow(digits.len() as u32);
    let scaled = numerator * unit;
    (scaled / denominator, (2 * (scaled % denominator)).cmp(&denominator))
}

/// isodate's time zone: empty (none), `Z`, `±hh`, `±hhmm`, `±hh:mm`. `Some(None)` for no zone.
fn iso_offset(s: &[u8]) -> Option<Option<i64>> {
    match s {
        [] => Some(None),
        [b'Z'] => Some(Some(0)),
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let g = template(rest, "##").or_else(|| template(rest, "####")).or_else(|| template(rest, "##:##"))?;
            let (h, m) = match g.as_slice() {
                [h] if rest.len() == 2 => (*h, 0),
                [hm] => (hm / 100, hm % 100),
                [h, m] => (*h, *m),
                _ => return None,
            };
            let seconds = i64::from(h) * 3600 + i64::from(m) * 60;
            Some(Some(if *sign == b'-' { -seconds } else { seconds }))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Building the columns.
// ---------------------------------------------------------------------------------------------

enum ColumnBuilder {
    Text(StringBuilder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    Boolean(BooleanBuilder),
}

/// `NaiveDate::num_days_from_ce` of 1970-01-01, Arrow's day 0.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl ColumnBuilder {
    fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Override(_) | Kind::Text => ColumnBuilder::Text(StringBuilder::new()),
            Kind::Int32 => ColumnBuilder::Int32(Int32Builder::new()),
            Kind::Int64 => ColumnBuilder::Int64(Int64Builder::new()),
            Kind::Float64 => ColumnBuilder::Float64(Float64Builder::new()),
            Kind::Date => ColumnBuilder::Date(Date32Builder::new()),
            Kind::DateTime => ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new(), false),
            Kind::IsoDateTime => ColumnBuilder::Timestamp(TimestampMicrosecondBuilder::new(), true),
            Kind::Boolean => ColumnBuilder::Boolean(BooleanBuilder::new()),
        }
    }

    fn append_null(&mut self) {
        match self {
            ColumnBuilder::Text(b) => b.append_null(),
            ColumnBuilder::Int32(b) => b.append_null(),
            ColumnBuilder::Int64(b) => b.append_null(),
            ColumnBuilder::Float64(b) => b.append_null(),
            ColumnBuilder::Date(b) => b.append_null(),
            ColumnBuilder::Timestamp(b, _) => b.append_null(),
            ColumnBuilder::Boolean(b) => b.append_null(),
        }
    }

    /// Append one field; `Err` names the type the value no longer parses as.
    fn append(&mut self, value: &str, dialect: Dialect) -> Result<(), &'static str> {
        match self {
            ColumnBuilder::Text(b) => {
                let null = match dialect {
                    // DuckDB's CSV reader: only an empty field (quoted or not) is NULL.
                    Dialect::DuckDb => value.is_empty(),
                    // agate's Text: empty or `null` after strip().lower().
                    Dialect::Postgres => is_null_word(py_strip(value)),
                };
                if null {
                    b.append_null();
                } else {
                    b.append_value(value);
                }
            }
            ColumnBuilder::Int32(b) => match int_value(value, "integer")? {
                Some(v) => b.append_value(i32::try_from(v).map_err(|_| "32-bit integer")?),
                None => b.append_null(),
            },
            ColumnBuilder::Int64(b) => match int_value(value, "integer")? {
                Some(v) => b.append_value(i64::try_from(v).map_err(|_| "64-bit integer")?),
                None => b.append_null(),
            },
            ColumnBuilder::Float64(b) => {
                // Postgres receives agate's Decimal (rounded to 28 digits); DuckDB parses the text itself.
                let postgres = dialect == Dialect::Postgres;
                match parse_number(value, postgres) {
                    Parsed::Null => b.append_null(),
                    Parsed::Invalid => return Err("number"),
                    Parsed::Value(Num::Finite(d)) => {
                        let v = d.to_f64();
                        // numeric has no negative zero.
                        b.append_value(if postgres && v == 0.0 { 0.0 } else { v });
                    }
                    Parsed::Value(Num::NaN) => b.append_value(f64::NAN),
                    // psycopg2 sends every non-finite Decimal as 'NaN'.
                    Parsed::Value(Num::Inf { .. }) if postgres => b.append_value(f64::NAN),
                    Parsed::Value(Num::Inf { neg }) => {
                        b.append_value(if neg { f64::NEG_INFINITY } else { f64::INFINITY })
                    }
                }
            }
            ColumnBuilder::Date(b) => match parse_date(value) {
                Parsed::Null => b.append_null(),
                Parsed::Value(d) => b.append_value(d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE),
                Parsed::Invalid => return Err("date (YYYY-MM-DD)"),
            },
            ColumnBuilder::Timestamp(b, iso) => {
                let parsed = if *iso {
                    match parse_iso_datetime(value) {
                        Parsed::Null => None,
                        Parsed::Value(v) => Some(match (dialect, v.offset_seconds) {
                            // DuckDB's cast to TIMESTAMP keeps the wall-clock time.
                            (Dialect::DuckDb, _) | (_, None) => v.local,
                            // Postgres converts a timestamptz to the session zone, UTC by default.
                            (Dialect::Postgres, Some(offset)) => v.local - chrono::Duration::seconds(offset),
                        }),
                        Parsed::Invalid => return Err("ISO 8601 timestamp"),
                    }
                } else {
                    match parse_datetime(value) {
                        Parsed::Null => None,
                        Parsed::Value(v) => Some(v),
                        Parsed::Invalid => return Err("timestamp (YYYY-MM-DD HH:MM:SS)"),
                    }
                };
                match parsed {
                    Some(ts) => b.append_value(ts.and_utc().timestamp_micros()),
                    None => b.append_null(),
                }
            }
            ColumnBuilder::Boolean(b) => match parse_bool(value) {
                Parsed::Null => b.append_null(),
                Parsed::Value(v) => b.append_value(v),
                Parsed::Invalid => return Err("boolean (true or false)"),
            },
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
            ColumnBuilder::Int32(b) => Arc::new(b.finish()),
            ColumnBuilder::Int64(b) => Arc::new(b.finish()),
            ColumnBuilder::Float64(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::Timestamp(b, _) => Arc::new(b.finish()),
            ColumnBuilder::Boolean(b) => Arc::new(b.finish()),
        }
    }
}

fn int_value(value: &str, expected: &'static str) -> Result<Option<i128>, &'static str> {
    match parse_number(value, true) {
        Parsed::Null => Ok(None),
        Parsed::Value(Num::Finite(d)) => d.to_i128().map(Some).ok_or(expected),
        Parsed::Value(_) | Parsed::Invalid => Err(expected),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Array, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use std::io::Write as _;

    fn file(content: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::Builder::new().suffix(".csv").tempfile().expect("temp file");
        f.write_all(content).expect("write seed");
        f
    }

    fn read_with(content: &str, dialect: &str, overrides: &[(&str, &str)]) -> Result<SeedData, SeedError> {
        let f = file(content.as_bytes());
        let types: IndexMap<String, String> = overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        read_seed(f.path(), None, b',', &types, dialect)
    }

    fn read(content: &str, dialect: &str) -> SeedData {
        read_with(content, dialect, &[]).expect("seed reads")
    }

    /// (sql type, arrow type) of every column.
    fn types(data: &SeedData) -> Vec<(&str, DataType)> {
        data.columns.iter().map(|c| (c.sql_type.as_str(), c.arrow_type.clone())).collect()
    }

    fn sql_types(content: &str) -> Vec<String> {
        read(content, "duckdb").columns.into_iter().map(|c| c.sql_type).collect()
    }

    /// Column `i` over all batches, each value rendered (`None` for NULL).
    fn values(data: &SeedData, i: usize) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for batch in &data.batches {
            let a = batch.column(i);
            for row in 0..a.len() {
                if a.is_null(row) {
                    out.push(None);
                    continue;
                }
                let any = a.as_any();
                let v = match a.data_type() {
                    DataType::Utf8 => any.downcast_ref::<StringArray>().unwrap().value(row).to_string(),
                    DataType::Int32 => any.downcast_ref::<Int32Array>().unwrap().value(row).to_string(),
                    DataType::Int64 => any.downcast_ref::<Int64Array>().unwrap().value(row).to_string(),
                    DataType::Float64 => format!("{:?}", any.downcast_ref::<Float64Array>().unwrap().value(row)),
                    DataType::Boolean => any.downcast_ref::<BooleanArray>().unwrap().value(row).to_string(),
                    DataType::Date32 => {
                        any.downcast_ref::<Date32Array>().unwrap().value_as_date(row).unwrap().to_string()
                    }
                    DataType::Timestamp(TimeUnit::Microsecond, None) => any
                        .downcast_ref::<TimestampMicrosecondArray>()
                        .unwrap()
                        .value_as_datetime(row)
                        .unwrap()
                        .to_string(),
                    other => panic!("unexpected type {other}"),
                };
                out.push(Some(v));
            }
        }
        out
    }

    fn vals(items: &[Option<&str>]) -> Vec<Option<String>> {
        items.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn ts() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    }

    #[test]
    fn integers_are_32_bit_integer() {
        let data = read("v\n1\n2\n-3\n007\n+5\n 6 \n1_000\n", "duckdb");
        assert_eq!(types(&data), vec![("integer", DataType::Int32)]);
        assert!(!data.columns[0].cast_needed);
        assert_eq!(
            values(&data, 0),
            vals(&[Some("1"), Some("2"), Some("-3"), Some("7"), Some("5"), Some("6"), Some("1000")])
        );
    }

    #[test]
    fn integral_decimals_and_exponents_are_integer() {
        // agate normalises the Decimal before counting places: 1.0, 2.00 and 1e3 have none.
        let data = read("v\n1.0\n2.00\n3\n1e3\n2E2\n-0\n", "duckdb");
        assert_eq!(types(&data), vec![("integer", DataType::Int32)]);
        assert_eq!(values(&data, 0), vals(&[Some("1"), Some("2"), Some("3"), Some("1000"), Some("200"), Some("0")]));
        // More than 28 significant digits are rounded away, as Python's decimal context does.
        assert_eq!(sql_types("v\n1.00000000000000000000000000001\n"), vec!["integer"]);
    }

    #[test]
    fn any_decimal_makes_float8() {
        let data = read("v\n1.5\n2\n-0.25\n1e-2\n", "duckdb");
        assert_eq!(types(&data), vec![("float8", DataType::Float64)]);
        assert_eq!(values(&data, 0), vals(&[Some("1.5"), Some("2.0"), Some("-0.25"), Some("0.01")]));
    }

    #[test]
    fn agate_number_formats() {
        // Currency symbols, percent signs and `,` grouping are stripped (dbt-postgres loads these values).
        let data = read("v\n\"$1,000\"\n5%\n-$3\n\"1,2,3\"\n€5€\n--5\n", "postgres");
        assert_eq!(types(&data), vec![("integer", DataType::Int32)]);
        assert_eq!(values(&data, 0), vals(&[Some("1000"), Some("5"), Some("-3"), Some("123"), Some("5"), Some("5")]));
        assert_eq!(sql_types("v\n\"1,234.5\"\n"), vec!["float8"]);
        // Not numbers.
        assert_eq!(sql_types("v\n(5)\n"), vec!["text"]);
        assert_eq!(sql_types("v\n-%5\n"), vec!["text"]);
        assert_eq!(sql_types("v\n+-5\n"), vec!["text"]);
        assert_eq!(sql_types("v\nsNaN\n"), vec!["text"]);
        assert_eq!(sql_types("v\n1 000\n"), vec!["text"]);
    }

    #[test]
    fn wide_integers_widen_instead_of_failing() {
        // dbt-core creates `integer` and the load fails; we keep the values.
        let data = read("v\n3000000000\n1\n", "duckdb");
        assert_eq!(types(&data), vec![("bigint", DataType::Int64)]);
        assert_eq!(values(&data, 0), vals(&[Some("3000000000"), Some("1")]));
        assert_eq!(sql_types("v\n-2147483648\n2147483647\n"), vec!["integer"]);
        assert_eq!(sql_types("v\n2147483648\n"), vec!["bigint"]);
        assert_eq!(sql_types("v\n100000000000000000000\n"), vec!["float8"]);
    }

    #[test]
    fn non_finite_numbers() {
        let content = "v\n1.5\nnan\ninf\n-Infinity\n";
        let duck = read(content, "duckdb");
        assert_eq!(types(&duck), vec![("float8", DataType::Float64)]);
        assert_eq!(values(&duck, 0), vals(&[Some("1.5"), Some("NaN"), Some("inf"), Some("-inf")]));
        // psycopg2 sends every non-finite Decimal as 'NaN'.
        let pg = read(content, "postgres");
        assert_eq!(values(&pg, 0), vals(&[Some("1.5"), Some("NaN"), Some("NaN"), Some("NaN")]));
    }

    #[test]
    fn booleans_are_only_true_and_false() {
        let data = read("v\ntrue\nFalse\nTRUE\n\n", "postgres");
        assert_eq!(types(&data), vec![("boolean", DataType::Boolean)]);
        assert_eq!(values(&data, 0), vals(&[Some("true"), Some("false"), Some("true"), None]));
        assert_eq!(sql_types("v\n1\n0\n"), vec!["integer"]);
        assert_eq!(sql_types("v\nyes\nno\n"), vec!["text"]);
        assert_eq!(sql_types("v\nt\nf\n"), vec!["text"]);
        // agate removes commas before matching.
        let data = read("v\n\"t,rue\"\n\",\"\n", "postgres");
        assert_eq!(values(&data, 0), vals(&[Some("true"), None]));
    }

    #[test]
    fn dates() {
        let data = read("v\n2020-01-05\n2020-1-6\n 2021-12-31 \n2020-01- 7\nnull\n", "duckdb");
        assert_eq!(types(&data), vec![("date", DataType::Date32)]);
        assert_eq!(
            values(&data, 0),
            vals(&[Some("2020-01-05"), Some("2020-01-06"), Some("2021-12-31"), Some("2020-01-07"), None])
        );
        for text in ["2020/01/05", "2020-02-30", "0000-01-01", "2020-13-01", "20-01-01", "2020-01-05x"] {
            assert_eq!(sql_types(&format!("v\n{text}\n")), vec!["text"], "{text}");
        }
    }

    #[test]
    fn datetimes_with_dbt_format() {
        let data = read("v\n2020-01-05 10:00:00\n2020-01-06 11:30:15\n2020-01-07 0:0:0\n2020-01-08\t1:2:3\n", "duckdb");
        assert_eq!(types(&data), vec![("timestamp without time zone", ts())]);
        assert_eq!(
            values(&data, 0),
            vals(&[
                Some("2020-01-05 10:00:00"),
                Some("2020-01-06 11:30:15"),
                Some("2020-01-07 00:00:00"),
                Some("2020-01-08 01:02:03")
            ])
        );
        // No fractional seconds in dbt's format, and a space-separated value is not ISO 8601.
        assert_eq!(sql_types("v\n2020-01-05 10:00:00.5\n"), vec!["text"]);
        assert_eq!(sql_types("v\n2020-01-05 10:00:60\n"), vec!["text"]);
        assert_eq!(sql_types("v\n2020-01-05 24:00:00\n"), vec!["text"]);
        assert_eq!(sql_types("v\n10:00:00\n"), vec!["text"]);
    }

    #[test]
    fn iso_datetimes() {
        let data = read(
            "v\n2020-01-05T10:00:00\n2020-01-06T11:30:15.1234567\n2020-01-07T00:00\n20200105T100000\n2020-01-05T10\n",
            "postgres",
        );
        assert_eq!(types(&data), vec![("timestamp without time zone", ts())]);
        assert_eq!(
            values(&data, 0),
            vals(&[
                Some("2020-01-05 10:00:00"),
                Some("2020-01-06 11:30:15.123456"),
                Some("2020-01-07 00:00:00"),
                Some("2020-01-05 10:00:00"),
                Some("2020-01-05 10:00:00")
            ])
        );
    }

    #[test]
    fn iso_offsets_per_dialect() {
        let content = "v\n2020-01-05T10:00:00Z\n2020-01-05T10:00:00+02:00\n2020-01-05T1000-0530\n";
        // dbt-duckdb's COPY keeps the wall-clock time.
        let duck = read(content, "duckdb");
        assert_eq!(
            values(&duck, 0),
            vals(&[Some("2020-01-05 10:00:00"), Some("2020-01-05 10:00:00"), Some("2020-01-05 10:00:00")])
        );
        // Postgres converts the timestamptz to UTC.
        let pg = read(content, "postgres");
        assert_eq!(
            values(&pg, 0),
            vals(&[Some("2020-01-05 10:00:00"), Some("2020-01-05 08:00:00"), Some("2020-01-05 15:30:00")])
        );
    }

    #[test]
    fn isodate_forms() {
        // Expected values from isodate 0.7.2 through dbt's ISODateTime.cast.
        let cases = [
            ("2020-W01-1T00:00", "2019-12-30 00:00:00"),
            ("2020W011T00", "2019-12-30 00:00:00"),
            ("2020-032T12", "2020-02-01 12:00:00"),
            ("2020032T12", "2020-02-01 12:00:00"),
            ("2020-W53T00", "2020-12-28 00:00:00"),
            ("2020-01T10:30", "2020-01-01 10:30:00"),
            ("202001T10", "2020-01-01 10:00:00"),
            ("2020T10", "2020-01-01 10:00:00"),
            ("20T10", "2001-01-01 10:00:00"),
            ("2020-00-05T10:00", "2020-01-05 10:00:00"),
            ("2020-01-05T10.5", "2020-01-05 10:30:00"),
            ("2020-01-05T10:30.5", "2020-01-05 10:30:30"),
            ("2020-01-05T10:00:00,5Z", "2020-01-05 10:00:00.500"),
        ];
        for (input, expected) in cases {
            let Parsed::Value(v) = parse_iso_datetime(input) else { panic!("{input} should parse") };
            assert_eq!(v.local.to_string(), expected, "{input}");
        }
        for input in
            ["2020-01-05T10.9999999999", "2020-01-05T10:00:60", "2020-01-05", "2020-01-05T10:00T", "2020-01-05t10"]
        {
            assert_eq!(parse_iso_datetime(input), Parsed::Invalid, "{input}");
        }
    }

    #[test]
    fn number_parsing_matches_agate() {
        let int = |s: &str| match parse_number(s, true) {
            Parsed::Value(Num::Finite(d)) => d.to_i128(),
            _ => None,
        };
        assert_eq!(int("- 5"), Some(-5));
        assert_eq!(int("%-5"), Some(-5));
        assert_eq!(int("5%%"), Some(5));
        assert_eq!(int(".5"), Some(1)); // rounded, only for the integer view
        assert_eq!(parse_number("null", true), Parsed::Null);
        assert_eq!(parse_number(" NULL ", true), Parsed::Null);
        assert_eq!(parse_number("nan5", true), Parsed::Value(Num::NaN));
        // 29 nines round half to even into 1E+29.
        let Parsed::Value(Num::Finite(d)) = parse_number("99999999999999999999999999995", true) else { panic!() };
        assert_eq!((d.digits.as_slice(), d.exp), (&b"1"[..], 29));
        let Parsed::Value(Num::Finite(d)) = parse_number("1.00000000000000000000000000015", true) else { panic!() };
        assert_eq!((d.digits.as_slice(), d.exp), (&b"1"[..], 0));
    }

    #[test]
    fn mixed_columns_fall_back_to_text() {
        let data = read(
            "a,b,c,d\n1,2020-01-05,true,2020-01-05T10:00:00\na,2020-01-05 10:00:00,1,2020-01-05 10:00:00\n",
            "duckdb",
        );
        assert_eq!(
            types(&data),
            vec![
                ("text", DataType::Utf8),
                ("text", DataType::Utf8),
                ("text", DataType::Utf8),
                ("text", DataType::Utf8)
            ]
        );
        assert_eq!(values(&data, 0), vals(&[Some("1"), Some("a")]));
        assert_eq!(sql_types("v\n1\na\n2.5\n"), vec!["text"]);
    }

    #[test]
    fn nulls_do_not_decide_the_type() {
        let data = read("v,w,x\n1,,\n,null,\n3,,\n", "postgres");
        // An all-NULL column is agate Number without decimals: `integer`.
        assert_eq!(types(&data), vec![("integer", DataType::Int32); 3]);
        assert_eq!(values(&data, 0), vals(&[Some("1"), None, Some("3")]));
        assert_eq!(values(&data, 1), vals(&[None, None, None]));
    }

    #[test]
    fn text_nulls_per_dialect() {
        let content = "v\nabc\n\" spaced \"\n  \n\n\"\"\nnull\nNULL\n Null \n";
        // DuckDB's CSV reader: only empty fields are NULL.
        let duck = read(content, "duckdb");
        assert_eq!(types(&duck), vec![("text", DataType::Utf8)]);
        // The blank line of a one-column file is an empty field.
        assert_eq!(
            values(&duck, 0),
            vals(&[Some("abc"), Some(" spaced "), Some("  "), None, None, Some("null"), Some("NULL"), Some(" Null ")])
        );
        // agate: empty or `null` after strip and lower; the blank line is a row of NULLs.
        let pg = read(content, "postgres");
        assert_eq!(values(&pg, 0), vals(&[Some("abc"), Some(" spaced "), None, None, None, None, None, None]));
    }

    #[test]
    fn column_types_override() {
        let content = "a,b,c,d\nx,5,1.234,2020-01-05\ny,,null,\n";
        let f = file(content.as_bytes());
        let mut types_config = IndexMap::new();
        types_config.insert("a".to_string(), "varchar(10)".to_string());
        types_config.insert("c".to_string(), "numeric(10,2)".to_string());
        types_config.insert("missing".to_string(), "int".to_string());
        let pg = read_seed(f.path(), None, b',', &types_config, "postgres").unwrap();
        assert_eq!(
            pg.columns,
            vec![
                SeedColumn {
                    name: "a".into(),
                    arrow_type: DataType::Utf8,
                    sql_type: "varchar(10)".into(),
                    cast_needed: true
                },
                SeedColumn {
                    name: "b".into(),
                    arrow_type: DataType::Int32,
                    sql_type: "integer".into(),
                    cast_needed: false
                },
                SeedColumn {
                    name: "c".into(),
                    arrow_type: DataType::Utf8,
                    sql_type: "numeric(10,2)".into(),
                    cast_needed: true
                },
                SeedColumn {
                    name: "d".into(),
                    arrow_type: DataType::Date32,
                    sql_type: "date".into(),
                    cast_needed: false
                },
            ]
        );
        assert_eq!(values(&pg, 2), vals(&[Some("1.234"), None]));
        let duck = read_seed(f.path(), None, b',', &types_config, "duckdb").unwrap();
        assert_eq!(values(&duck, 2), vals(&[Some("1.234"), Some("null")]));
        // A forced column is text even when every value is a number.
        let data = read_with("a\n1\n2\n", "duckdb", &[("a", "bigint")]).unwrap();
        assert_eq!(types(&data), vec![("bigint", DataType::Utf8)]);
        assert_eq!(values(&data, 0), vals(&[Some("1"), Some("2")]));
    }

    #[test]
    fn ragged_rows_name_the_line() {
        let err = read_with("a,b\n1,2\n3\n", "duckdb", &[]).unwrap_err();
        let SeedError::FieldCount { line, expected, found, .. } = &err else { panic!("{err}") };
        assert_eq!((*line, *expected, *found), (3, 2, 1));
        let message = err.to_string();
        assert!(message.contains(", line 3:") && message.contains("column \"b\" has no value"), "{message}");

        let err = read_with("a,b\n1,2\n\n\"x\ny\",2\n4,5,6\n", "postgres", &[]).unwrap_err();
        let SeedError::FieldCount { line, found, .. } = &err else { panic!("{err}") };
        assert_eq!((*line, *found), (6, 3));
        assert!(err.to_string().contains("after column \"b\""), "{err}");
    }

    #[test]
    fn bom_is_stripped() {
        let f = file(b"\xef\xbb\xbfid,name\n1,x\n");
        let data = read_seed(f.path(), None, b',', &IndexMap::new(), "duckdb").unwrap();
        assert_eq!(data.columns[0].name, "id");
        assert_eq!(types(&data), vec![("integer", DataType::Int32), ("text", DataType::Utf8)]);
        assert_eq!(values(&data, 0), vals(&[Some("1")]));
    }

    #[test]
    fn header_only_has_no_rows() {
        // dbt-core creates `integer` columns for a header-only seed (its Integer type survives with no rows).
        for content in ["a,b\n", "a,b", "a,b\r\n"] {
            let data = read(content, "duckdb");
            assert_eq!(data.rows, 0);
            assert!(data.batches.is_empty());
            assert_eq!(types(&data), vec![("integer", DataType::Int32), ("integer", DataType::Int32)]);
        }
        let data = read_with("a,b\n", "postgres", &[("b", "text")]).unwrap();
        assert_eq!(types(&data), vec![("integer", DataType::Int32), ("text", DataType::Utf8)]);
    }

    #[test]
    fn empty_file_is_an_error() {
        for content in ["", "\u{feff}", "\n"] {
            let err = read_with(content, "duckdb", &[]).unwrap_err();
            assert!(matches!(err, SeedError::Empty { .. }), "{err}");
        }
    }

    #[test]
    fn header_names_as_agate_names_them() {
        let data = read("a,a,,B,MyCol,other Col\n1,2,3,4,5,6\n", "duckdb");
        let names: Vec<&str> = data.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["a", "a_2", "c", "B", "MyCol", "other Col"]);
        assert_eq!(letter_name(27), "bb");
    }

    #[test]
    fn blank_lines_per_dialect() {
        let content = "a,b\n1,2\n\n3,4\n\n";
        let duck = read(content, "duckdb");
        assert_eq!(duck.rows, 2);
        assert_eq!(values(&duck, 0), vals(&[Some("1"), Some("3")]));
        // dbt-postgres inserts a row of NULLs for each blank line.
        let pg = read(content, "postgres");
        assert_eq!(pg.rows, 4);
        assert_eq!(values(&pg, 1), vals(&[Some("2"), None, Some("4"), None]));
        assert_eq!(types(&pg), vec![("integer", DataType::Int32); 2]);
        // In a one-column file DuckDB reads a blank line as an empty field: NULL.
        let single = "v\n1\n\n2\n\n";
        for dialect in ["duckdb", "postgres"] {
            assert_eq!(values(&read(single, dialect), 0), vals(&[Some("1"), None, Some("2"), None]), "{dialect}");
        }
    }

    #[test]
    fn line_breaks_and_quotes() {
        let content = "a,b\r\n1,\"line1\r\nline2\"\r\n2,\"say \"\"hi\"\"\"\r\n3,\"ab\"cd\r\n";
        let duck = read(content, "duckdb");
        assert_eq!(values(&duck, 1), vals(&[Some("line1\r\nline2"), Some("say \"hi\""), Some("abcd")]));
        // Python reads the file with universal newlines.
        let pg = read(content, "postgres");
        assert_eq!(values(&pg, 1), vals(&[Some("line1\nline2"), Some("say \"hi\""), Some("abcd")]));
        // Lone CR line ends.
        let data = read("a,b\r1,x\r2,y\r", "duckdb");
        assert_eq!(values(&data, 0), vals(&[Some("1"), Some("2")]));
    }

    #[test]
    fn other_delimiters() {
        let f = file(b"a;b\n1;x,y\n2;z\n");
        let data = read_seed(f.path(), None, b';', &IndexMap::new(), "duckdb").unwrap();
        assert_eq!(types(&data), vec![("integer", DataType::Int32), ("text", DataType::Utf8)]);
        assert_eq!(values(&data, 1), vals(&[Some("x,y"), Some("z")]));
        let err = read_seed(f.path(), None, b'"', &IndexMap::new(), "duckdb").unwrap_err();
        assert!(matches!(err, SeedError::Config { .. }), "{err}");
        let err = read_seed(f.path(), None, b',', &IndexMap::new(), "sqlite").unwrap_err();
        assert!(err.to_string().contains("unknown target dialect"), "{err}");
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let f = file(b"a,b\n1,x\n2,\xff\n");
        let err = read_seed(f.path(), None, b',', &IndexMap::new(), "duckdb").unwrap_err();
        let SeedError::Utf8 { line, column, .. } = &err else { panic!("{err}") };
        assert_eq!((*line, column.as_str()), (3, "\"b\""));
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = read_seed(Path::new("/nonexistent/seed.csv"), None, b',', &IndexMap::new(), "duckdb").unwrap_err();
        assert!(matches!(err, SeedError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/seed.csv"), "{err}");
    }

    #[test]
    fn large_files_are_batched() {
        let mut content = String::from("id,amount,day\n");
        for i in 0..20_000 {
            content.push_str(&format!("{i},{}.5,2020-01-{:02}\n", i % 100, i % 28 + 1));
        }
        let data = read(&content, "postgres");
        assert_eq!(data.rows, 20_000);
        let sizes: Vec<usize> = data.batches.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(sizes, vec![8192, 8192, 3616]);
        assert_eq!(
            types(&data),
            vec![("integer", DataType::Int32), ("float8", DataType::Float64), ("date", DataType::Date32)]
        );
        let ids = values(&data, 0);
        assert_eq!((ids[0].as_deref(), ids[19_999].as_deref()), (Some("0"), Some("19999")));
        assert_eq!(data.batches[0].schema().field(0).name(), "id");
    }

    #[test]
    fn csv_reader_reports_start_lines() {
        let mut r = CsvReader::new(&b"h\n\n\"a\nb\"\nc"[..], b',', true);
        let mut seen = Vec::new();
        while let Some(rec) = r.read_record().unwrap() {
            seen.push(rec);
        }
        assert_eq!(
            seen,
            vec![Rec::Fields { line: 1 }, Rec::Blank { line: 2 }, Rec::Fields { line: 3 }, Rec::Fields { line: 5 }]
        );
    }
}
