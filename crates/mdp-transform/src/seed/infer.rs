//! Type inference: agate's `TypeTester` with dbt's type list, and the SQL type dbt gives each result.

use arrow::datatypes::{DataType, TimeUnit};

use super::agate::{
    parse_bool, parse_date, parse_datetime, parse_iso_datetime, parse_number, Num, Parsed, DECIMAL_PRECISION,
};

const NUMBER: u8 = 1;
const DATE: u8 = 2;
const DATETIME: u8 = 4;
const ISO_DATETIME: u8 = 8;
const BOOLEAN: u8 = 16;

/// The type a column is loaded as.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Kind {
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
    pub(super) fn arrow_type(&self) -> DataType {
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
    pub(super) fn sql_type(&self) -> &str {
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
pub(super) struct Inference {
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
    pub(super) fn new(forced: bool) -> Self {
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

    pub(super) fn observe(&mut self, value: &str) {
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
    pub(super) fn resolve(&self, sql_override: Option<&str>) -> Kind {
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
