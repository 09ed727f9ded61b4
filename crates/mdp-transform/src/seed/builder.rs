//! Building the Arrow columns from a seed's values, in the types inferred by the first pass.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use chrono::Datelike;

use super::agate::{
    is_null_word, parse_bool, parse_date, parse_datetime, parse_iso_datetime, parse_number, py_strip, Num, Parsed,
};
use super::infer::Kind;
use mdp_warehouse::SeedCsv;

pub(super) enum ColumnBuilder {
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
    pub(super) fn new(kind: &Kind) -> Self {
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

    pub(super) fn append_null(&mut self) {
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
    pub(super) fn append(&mut self, value: &str, dialect: SeedCsv) -> Result<(), &'static str> {
        match self {
            ColumnBuilder::Text(b) => {
                let null = match dialect {
                    // DuckDB's CSV reader: only an empty field (quoted or not) is NULL.
                    SeedCsv::DuckDb => value.is_empty(),
                    // agate's Text: empty or `null` after strip().lower().
                    SeedCsv::Agate => is_null_word(py_strip(value)),
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
                let postgres = dialect == SeedCsv::Agate;
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
                            (SeedCsv::DuckDb, _) | (_, None) => v.local,
                            // Postgres converts a timestamptz to the session zone, UTC by default.
                            (SeedCsv::Agate, Some(offset)) => v.local - chrono::Duration::seconds(offset),
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

    pub(super) fn finish(&mut self) -> ArrayRef {
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
