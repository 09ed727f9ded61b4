//! Small query results decoded into named structs, by column name.
//!
//! The layers above never read a result positionally (`r[3]`) or cast values to text in SQL to read
//! them back: a struct implements [`FromRow`] by asking a [`Row`] for its columns by name, and the
//! accessors read each engine's Arrow types as they come (DuckDB's `Decimal128` and `HUGEINT` sums,
//! Postgres' exact NUMERIC text, `Date32`, timestamps of any unit) into Rust values:
//!
//! ```no_run
//! # async fn demo(warehouse: &dyn mdp_warehouse::Warehouse) -> mdp_warehouse::Result<()> {
//! use mdp_warehouse::rows::{fetch, FromRow, Row};
//!
//! struct Latest { account_id: String, latest: Option<chrono::NaiveDate>, rows: i64 }
//!
//! impl FromRow for Latest {
//!     fn from_row(row: &Row<'_>) -> mdp_warehouse::Result<Self> {
//!         Ok(Latest { account_id: row.text("account_id")?, latest: row.opt_date("latest")?, rows: row.i64("rows")? })
//!     }
//! }
//!
//! let latest: Vec<Latest> =
//!     fetch(warehouse, "SELECT account_id, max(date) AS latest, count(*) AS rows FROM t GROUP BY account_id").await?;
//! # Ok(()) }
//! ```
//!
//! A column the query does not return, or a value of a type that cannot become the asked-for Rust
//! type, is an error naming the column and the type found: a bug in the query, never a silent default.

use std::str::FromStr;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Date64Array, Decimal128Array, Float32Array, Float64Array,
    Int16Array, Int32Array, Int64Array, Int8Array, RecordBatch, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::error::{Result, WarehouseError};
use crate::Warehouse;

/// A value that can be built from one result row.
pub trait FromRow: Sized {
    fn from_row(row: &Row<'_>) -> Result<Self>;
}

/// Decode every row of `batches` into `T`.
pub fn decode<T: FromRow>(batches: &[RecordBatch]) -> Result<Vec<T>> {
    decode_with(batches, T::from_row)
}

/// Decode every row of `batches` with a function (for a struct whose decoding needs more than the row).
pub fn decode_with<T>(batches: &[RecordBatch], decode: impl Fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for batch in batches {
        for index in 0..batch.num_rows() {
            out.push(decode(&Row { batch, index })?);
        }
    }
    Ok(out)
}

/// The first row of `batches` decoded with a function, if there is one.
pub fn decode_first_with<T>(batches: &[RecordBatch], decode: impl Fn(&Row<'_>) -> Result<T>) -> Result<Option<T>> {
    let Some(batch) = batches.iter().find(|b| b.num_rows() > 0) else {
        return Ok(None);
    };
    decode(&Row { batch, index: 0 }).map(Some)
}

/// A small result kept whole, to decode by column name with a function per row.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    batches: Vec<RecordBatch>,
}

impl Rows {
    pub fn new(batches: Vec<RecordBatch>) -> Rows {
        Rows { batches }
    }

    /// Decode every row with `decode`.
    pub fn decode<T>(&self, decode: impl Fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
        decode_with(&self.batches, decode)
    }

    /// Decode the first row, if there is one.
    pub fn decode_first<T>(&self, decode: impl Fn(&Row<'_>) -> Result<T>) -> Result<Option<T>> {
        decode_first_with(&self.batches, decode)
    }
}

/// Run a query and decode its (small) result into `T`.
pub async fn fetch<T: FromRow>(warehouse: &dyn Warehouse, sql: &str) -> Result<Vec<T>> {
    decode(&warehouse.query_all(sql).await?)
}

/// Run a query and decode its first row, if any.
pub async fn fetch_one<T: FromRow>(warehouse: &dyn Warehouse, sql: &str) -> Result<Option<T>> {
    Ok(fetch(warehouse, sql).await?.into_iter().next())
}

/// One row of a result, read by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

fn mismatch(name: &str, wanted: &str, found: &DataType, detail: impl std::fmt::Display) -> WarehouseError {
    WarehouseError::Internal(format!("result column {name:?} ({found}) cannot be read as {wanted}{detail}"))
}

impl<'a> Row<'a> {
    /// The column `name` (exact, else case-insensitive: Postgres folds unquoted aliases to lower case).
    fn column(&self, name: &str) -> Result<&'a ArrayRef> {
        let schema = self.batch.schema_ref();
        let index = schema
            .index_of(name)
            .ok()
            .or_else(|| schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(name)))
            .ok_or_else(|| {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                WarehouseError::Internal(format!(
                    "the query returned no column {name:?} (its columns: {})",
                    names.join(", ")
                ))
            })?;
        Ok(self.batch.column(index))
    }

    /// Whether the column `name` is NULL in this row.
    pub fn is_null(&self, name: &str) -> Result<bool> {
        Ok(self.column(name)?.is_null(self.index))
    }

    fn required<T>(name: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| {
            WarehouseError::Internal(format!("result column {name:?} is NULL where a value is required"))
        })
    }

    /// Text; any other type is rendered as Arrow displays it (numbers, dates as `YYYY-MM-DD`).
    pub fn opt_text(&self, name: &str) -> Result<Option<String>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        let i = self.index;
        Ok(Some(match c.data_type() {
            DataType::Utf8 => c.as_string::<i32>().value(i).to_string(),
            DataType::LargeUtf8 => c.as_string::<i64>().value(i).to_string(),
            DataType::Utf8View => c.as_string_view().value(i).to_string(),
            other => arrow::util::display::array_value_to_string(c, i).map_err(|e| mismatch(name, "text", other, e))?,
        }))
    }

    /// Text that must not be NULL.
    pub fn text(&self, name: &str) -> Result<String> {
        Self::required(name, self.opt_text(name)?)
    }

    /// An exact decimal: DECIMAL columns, Postgres NUMERIC (exact text), integers. Floats are refused:
    /// money never passes through a float.
    pub fn opt_decimal(&self, name: &str) -> Result<Option<Decimal>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        let i = self.index;
        let ty = c.data_type();
        let value = match ty {
            DataType::Decimal128(_, scale) => {
                let raw = c.as_any().downcast_ref::<Decimal128Array>().expect("type checked").value(i);
                let scale = u32::try_from(*scale).map_err(|_| mismatch(name, "a decimal", ty, ": negative scale"))?;
                Decimal::try_from_i128_with_scale(raw, scale).map_err(|e| mismatch(name, "a decimal", ty, e))?
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = self.text(name)?;
                Decimal::from_str(text.trim())
                    .or_else(|_| Decimal::from_scientific(text.trim()))
                    .map_err(|e| mismatch(name, "a decimal", ty, format!(": {text:?}: {e}")))?
            }
            _ => match self.integer(name, c)? {
                Some(v) => Decimal::from(v),
                None => return Err(mismatch(name, "an exact decimal", ty, "")),
            },
        };
        Ok(Some(value))
    }

    /// An exact decimal that must not be NULL.
    pub fn decimal(&self, name: &str) -> Result<Decimal> {
        Self::required(name, self.opt_decimal(name)?)
    }

    /// Integer columns of any width, as i64 (`None` when the type is not an integer).
    fn integer(&self, name: &str, c: &ArrayRef) -> Result<Option<i64>> {
        let i = self.index;
        macro_rules! int {
            ($t:ty) => {
                c.as_any().downcast_ref::<$t>().expect("type checked").value(i)
            };
        }
        let ty = c.data_type();
        let overflow = |_| mismatch(name, "a 64-bit integer", ty, ": out of range");
        Ok(Some(match ty {
            DataType::Int8 => i64::from(int!(Int8Array)),
            DataType::Int16 => i64::from(int!(Int16Array)),
            DataType::Int32 => i64::from(int!(Int32Array)),
            DataType::Int64 => int!(Int64Array),
            DataType::UInt8 => i64::from(int!(UInt8Array)),
            DataType::UInt16 => i64::from(int!(UInt16Array)),
            DataType::UInt32 => i64::from(int!(UInt32Array)),
            DataType::UInt64 => i64::try_from(int!(UInt64Array)).map_err(overflow)?,
            _ => return Ok(None),
        }))
    }

    /// A whole number: integer columns, and decimals or numeric text without a fraction (DuckDB sums
    /// BIGINTs into HUGEINT, Postgres into NUMERIC).
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        if let Some(v) = self.integer(name, c)? {
            return Ok(Some(v));
        }
        let ty = c.data_type();
        match ty {
            DataType::Decimal128(..) | DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let d = self.decimal(name)?;
                if !d.fract().is_zero() {
                    return Err(mismatch(name, "a whole number", ty, format!(": {d}")));
                }
                d.to_i64().map(Some).ok_or_else(|| mismatch(name, "a 64-bit integer", ty, format!(": {d}")))
            }
            _ => Err(mismatch(name, "a whole number", ty, "")),
        }
    }

    /// A whole number that must not be NULL.
    pub fn i64(&self, name: &str) -> Result<i64> {
        Self::required(name, self.opt_i64(name)?)
    }

    /// A floating-point number, from floats, integers, decimals or numeric text (statistics and
    /// ratios; amounts of money are read with [`Row::decimal`]).
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        let i = self.index;
        let ty = c.data_type();
        Ok(Some(match ty {
            DataType::Float64 => c.as_any().downcast_ref::<Float64Array>().expect("type checked").value(i),
            DataType::Float32 => f64::from(c.as_any().downcast_ref::<Float32Array>().expect("type checked").value(i)),
            DataType::Decimal128(_, scale) => {
                let raw = c.as_any().downcast_ref::<Decimal128Array>().expect("type checked").value(i);
                match u32::try_from(*scale).ok().and_then(|s| Decimal::try_from_i128_with_scale(raw, s).ok()) {
                    Some(d) => d.to_f64().unwrap_or(f64::NAN),
                    None => raw as f64 / 10f64.powi(i32::from(*scale)),
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = self.text(name)?;
                text.trim().parse().map_err(|e| mismatch(name, "a number", ty, format!(": {text:?}: {e}")))?
            }
            _ => match self.integer(name, c)? {
                Some(v) => v as f64,
                None => return Err(mismatch(name, "a number", ty, "")),
            },
        }))
    }

    /// A floating-point number that must not be NULL.
    pub fn f64(&self, name: &str) -> Result<f64> {
        Self::required(name, self.opt_f64(name)?)
    }

    /// A boolean (booleans, or integers 0 / 1).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        if let Some(b) = c.as_any().downcast_ref::<BooleanArray>() {
            return Ok(Some(b.value(self.index)));
        }
        match self.integer(name, c)? {
            Some(0) => Ok(Some(false)),
            Some(1) => Ok(Some(true)),
            _ => Err(mismatch(name, "a boolean", c.data_type(), "")),
        }
    }

    /// A calendar date: DATE columns, timestamps (their date), `YYYY-MM-DD…` text.
    pub fn opt_date(&self, name: &str) -> Result<Option<NaiveDate>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        let i = self.index;
        let ty = c.data_type();
        Ok(Some(match ty {
            DataType::Date32 => {
                let days = c.as_any().downcast_ref::<Date32Array>().expect("type checked").value(i);
                NaiveDate::from_ymd_opt(1970, 1, 1)
                    .and_then(|epoch| epoch.checked_add_signed(chrono::Duration::days(i64::from(days))))
                    .ok_or_else(|| mismatch(name, "a date", ty, format!(": day {days} out of range")))?
            }
            DataType::Date64 => {
                let ms = c.as_any().downcast_ref::<Date64Array>().expect("type checked").value(i);
                DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| mismatch(name, "a date", ty, ": out of range"))?
                    .date_naive()
            }
            DataType::Timestamp(..) => self.timestamp(name)?.date(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = self.text(name)?;
                text.get(..10)
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .ok_or_else(|| mismatch(name, "a date", ty, format!(": {text:?}")))?
            }
            _ => return Err(mismatch(name, "a date", ty, "")),
        }))
    }

    /// A date that must not be NULL.
    pub fn date(&self, name: &str) -> Result<NaiveDate> {
        Self::required(name, self.opt_date(name)?)
    }

    /// A timestamp, UTC (mdp stores every timestamp in UTC): TIMESTAMP columns of any unit, with or
    /// without a time zone, DATE (midnight), ISO text.
    pub fn opt_timestamp(&self, name: &str) -> Result<Option<NaiveDateTime>> {
        let c = self.column(name)?;
        if c.is_null(self.index) {
            return Ok(None);
        }
        let i = self.index;
        let ty = c.data_type();
        Ok(Some(match ty {
            DataType::Timestamp(unit, _) => {
                use arrow::datatypes::{
                    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
                };
                let at = match unit {
                    TimeUnit::Second => DateTime::from_timestamp(c.as_primitive::<TimestampSecondType>().value(i), 0),
                    TimeUnit::Millisecond => {
                        DateTime::from_timestamp_millis(c.as_primitive::<TimestampMillisecondType>().value(i))
                    }
                    TimeUnit::Microsecond => {
                        DateTime::from_timestamp_micros(c.as_primitive::<TimestampMicrosecondType>().value(i))
                    }
                    TimeUnit::Nanosecond => {
                        Some(DateTime::from_timestamp_nanos(c.as_primitive::<TimestampNanosecondType>().value(i)))
                    }
                };
                at.ok_or_else(|| mismatch(name, "a timestamp", ty, ": out of range"))?.naive_utc()
            }
            DataType::Date32 | DataType::Date64 => self.date(name)?.and_time(chrono::NaiveTime::MIN),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let text = self.text(name)?;
                let s = text.trim();
                NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f"))
                    .or_else(|_| DateTime::parse_from_rfc3339(s).map(|t| t.naive_utc()))
                    .map_err(|e| mismatch(name, "a timestamp", ty, format!(": {text:?}: {e}")))?
            }
            _ => return Err(mismatch(name, "a timestamp", ty, "")),
        }))
    }

    /// A timestamp that must not be NULL.
    pub fn timestamp(&self, name: &str) -> Result<NaiveDateTime> {
        Self::required(name, self.opt_timestamp(name)?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Decimal128Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    #[derive(Debug, PartialEq)]
    struct Day {
        account: String,
        day: NaiveDate,
        spend: Option<Decimal>,
        rows: i64,
        share: f64,
    }

    impl FromRow for Day {
        fn from_row(row: &Row<'_>) -> Result<Self> {
            Ok(Day {
                account: row.text("account_id")?,
                day: row.date("day")?,
                spend: row.opt_decimal("spend")?,
                rows: row.i64("rows")?,
                share: row.f64("share")?,
            })
        }
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn duckdb_types_decode_by_name_in_any_column_order() {
        // DuckDB: DECIMAL(38,6) sums, HUGEINT counts as Decimal128(38,0), Date32.
        let b = batch(vec![
            ("rows", Arc::new(Decimal128Array::from(vec![Some(12), Some(3)]).with_precision_and_scale(38, 0).unwrap())),
            ("share", Arc::new(Float64Array::from(vec![0.5, 1.0]))),
            ("DAY", Arc::new(Date32Array::from(vec![20_634, 20_635]))),
            (
                "spend",
                Arc::new(Decimal128Array::from(vec![Some(12_345_670), None]).with_precision_and_scale(38, 6).unwrap()),
            ),
            ("account_id", Arc::new(StringArray::from(vec!["a'1", "b"]))),
        ]);
        let rows: Vec<Day> = decode(&[b]).unwrap();
        assert_eq!(
            rows,
            [
                Day {
                    account: "a'1".into(),
                    day: d("2026-06-30"),
                    spend: Some(Decimal::new(1_234_567, 5)),
                    rows: 12,
                    share: 0.5
                },
                Day { account: "b".into(), day: d("2026-07-01"), spend: None, rows: 3, share: 1.0 },
            ]
        );
        assert_eq!(rows[0].spend.unwrap().to_string(), "12.345670", "the scale is kept: exact, never rounded");
    }

    #[test]
    fn postgres_numeric_text_decodes_exactly() {
        // Postgres: NUMERIC arrives as exact text, bigint as Int64, date as Date32.
        let b = batch(vec![
            ("account_id", Arc::new(StringArray::from(vec!["x"]))),
            ("day", Arc::new(StringArray::from(vec!["2026-06-30"]))),
            ("spend", Arc::new(StringArray::from(vec!["0.1000000000000000000001"]))),
            ("rows", Arc::new(StringArray::from(vec!["42"]))),
            ("share", Arc::new(StringArray::from(vec!["0.25"]))),
        ]);
        let rows: Vec<Day> = decode(&[b]).unwrap();
        assert_eq!(rows[0].spend.unwrap().to_string(), "0.1000000000000000000001");
        assert_eq!((rows[0].rows, rows[0].share, rows[0].day), (42, 0.25, d("2026-06-30")));
    }

    #[test]
    fn timestamps_of_any_unit_and_text_read_as_utc() {
        let at = d("2026-06-30").and_hms_micro_opt(6, 5, 4, 123_456).unwrap();
        let b = batch(vec![
            (
                "a",
                Arc::new(TimestampMicrosecondArray::from(vec![at.and_utc().timestamp_micros()]).with_timezone("UTC")),
            ),
            ("b", Arc::new(StringArray::from(vec!["2026-06-30 06:05:04.123456"]))),
            ("c", Arc::new(Date32Array::from(vec![20_634]))),
        ]);
        let row = Row { batch: &b, index: 0 };
        assert_eq!(row.timestamp("a").unwrap(), at);
        assert_eq!(row.timestamp("b").unwrap(), at);
        assert_eq!(row.date("a").unwrap(), d("2026-06-30"));
        assert_eq!(row.timestamp("c").unwrap(), d("2026-06-30").and_hms_opt(0, 0, 0).unwrap());
        assert_eq!(row.text("c").unwrap(), "2026-06-30");
    }

    #[test]
    fn a_missing_column_a_null_value_or_a_wrong_type_is_an_error_that_names_the_column() {
        let b = batch(vec![
            ("n", Arc::new(Float64Array::from(vec![Some(1.5)]))),
            ("t", Arc::new(StringArray::from(vec![None::<&str>]))),
        ]);
        let row = Row { batch: &b, index: 0 };
        let missing = row.text("account_id").unwrap_err().to_string();
        assert!(missing.contains("\"account_id\"") && missing.contains("n, t"), "{missing}");
        assert!(row.text("t").unwrap_err().to_string().contains("\"t\" is NULL"));
        assert_eq!(row.opt_text("t").unwrap(), None);
        let float_money = row.decimal("n").unwrap_err().to_string();
        assert!(
            float_money.contains("\"n\"") && float_money.contains("Float64"),
            "money never from a float: {float_money}"
        );
        assert!(row.i64("n").is_err(), "1.5 is not a whole number");
        assert!(row.date("n").is_err());
    }
}
