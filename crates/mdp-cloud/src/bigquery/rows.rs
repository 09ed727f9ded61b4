//! BigQuery's JSON rows (`rows[].f[].v`, every scalar a string) as Arrow record batches, typed by the
//! answer's `schema.fields`.
//!
//! | BigQuery | Arrow |
//! |---|---|
//! | INTEGER / INT64 | Int64 |
//! | FLOAT / FLOAT64 | Float64 (`NaN`, `Infinity`, `-Infinity` too) |
//! | NUMERIC | Decimal128(38, 9), read exactly from its decimal text |
//! | BIGNUMERIC | Utf8: its exact decimal text (76 digits do not fit a Decimal128) |
//! | BOOLEAN / BOOL | Boolean |
//! | DATE | Date32 |
//! | DATETIME | Timestamp(µs), no zone |
//! | TIMESTAMP | Timestamp(µs, UTC): int64 microseconds (`useInt64Timestamp`) or the legacy float seconds |
//! | TIME | Time64(µs) |
//! | BYTES | Binary (the API sends base64) |
//! | STRING, JSON, GEOGRAPHY, INTERVAL, RANGE | Utf8 |
//! | RECORD / STRUCT, or mode REPEATED | Utf8: the value as JSON text |

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, PrimitiveArray, PrimitiveBuilder, RecordBatch, RecordBatchOptions,
    StringBuilder,
};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Decimal128Type, Field, Float64Type, Int64Type, Schema, SchemaRef,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use crate::error::CloudError;
use crate::text::parse_decimal;

/// NUMERIC's precision and scale: 38 digits, 9 after the point.
pub const NUMERIC: (u8, i8) = (38, 9);

/// A column of an answer's schema (or a table's).
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct FieldSchema {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldSchema>,
}

impl FieldSchema {
    fn repeated(&self) -> bool {
        self.mode.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("REPEATED"))
    }

    pub fn nullable(&self) -> bool {
        !self.mode.as_deref().is_some_and(|m| m.eq_ignore_ascii_case("REQUIRED"))
    }

    /// The type's canonical name (`INTEGER` → `INT64`, `RECORD` → `STRUCT`, …).
    pub fn canonical_type(&self) -> String {
        canonical(&self.field_type).to_string()
    }

    pub fn arrow_type(&self) -> DataType {
        if self.repeated() {
            return DataType::Utf8;
        }
        match canonical(&self.field_type) {
            "INT64" => DataType::Int64,
            "FLOAT64" => DataType::Float64,
            "NUMERIC" => DataType::Decimal128(NUMERIC.0, NUMERIC.1),
            "BOOL" => DataType::Boolean,
            "DATE" => DataType::Date32,
            "DATETIME" => DataType::Timestamp(TimeUnit::Microsecond, None),
            "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "TIME" => DataType::Time64(TimeUnit::Microsecond),
            "BYTES" => DataType::Binary,
            _ => DataType::Utf8,
        }
    }
}

fn canonical(name: &str) -> &str {
    match name.to_ascii_uppercase().as_str() {
        "INTEGER" | "INT64" => "INT64",
        "FLOAT" | "FLOAT64" => "FLOAT64",
        "NUMERIC" | "DECIMAL" => "NUMERIC",
        "BIGNUMERIC" | "BIGDECIMAL" => "BIGNUMERIC",
        "BOOLEAN" | "BOOL" => "BOOL",
        "RECORD" | "STRUCT" => "STRUCT",
        "DATE" => "DATE",
        "DATETIME" => "DATETIME",
        "TIMESTAMP" => "TIMESTAMP",
        "TIME" => "TIME",
        "BYTES" => "BYTES",
        "JSON" => "JSON",
        "GEOGRAPHY" => "GEOGRAPHY",
        "INTERVAL" => "INTERVAL",
        _ => "STRING",
    }
}

/// The Arrow schema of an answer's fields.
pub fn schema_of(fields: &[FieldSchema]) -> SchemaRef {
    Arc::new(Schema::new(fields.iter().map(|f| Field::new(&f.name, f.arrow_type(), true)).collect::<Vec<_>>()))
}

fn protocol(message: String) -> CloudError {
    CloudError::Protocol { service: "BigQuery", message }
}

/// A cell's `v`: a string, null, or (records, arrays) nested JSON.
fn cell(row: &Value, index: usize) -> Option<&Value> {
    row.get("f").and_then(|f| f.get(index)).and_then(|c| c.get("v")).filter(|v| !v.is_null())
}

fn text<'a>(value: &'a Value, field: &FieldSchema) -> Result<&'a str, CloudError> {
    value.as_str().ok_or_else(|| protocol(format!("column {:?}: expected a string value, got {value}", field.name)))
}

/// A nested value (`{"f": [...]}` records, `[{"v": ...}]` arrays) as plain JSON.
fn plain_json(value: &Value, field: &FieldSchema, repeated: bool) -> Value {
    if repeated {
        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
        return Value::Array(
            items
                .iter()
                .map(|item| match item.get("v") {
                    Some(v) if !v.is_null() => plain_json(v, field, false),
                    _ => Value::Null,
                })
                .collect(),
        );
    }
    if canonical(&field.field_type) == "STRUCT" {
        let mut object = serde_json::Map::new();
        for (i, sub) in field.fields.iter().enumerate() {
            let v = value.get("f").and_then(|f| f.get(i)).and_then(|c| c.get("v")).cloned().unwrap_or(Value::Null);
            let plain = if v.is_null() { Value::Null } else { plain_json(&v, sub, sub.repeated()) };
            object.insert(sub.name.clone(), plain);
        }
        return Value::Object(object);
    }
    value.clone()
}

fn parse_float(text: &str) -> Option<f64> {
    match text {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

fn parse_date(text: &str) -> Option<i32> {
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32)
}

fn parse_datetime(text: &str) -> Option<i64> {
    let parsed = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(parsed.and_utc().timestamp_micros())
}

/// int64 microseconds, or the legacy `1.767323045123456E9` seconds.
fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(micros) = text.parse::<i64>() {
        return Some(micros);
    }
    parse_decimal(text, 6).and_then(|v| i64::try_from(v).ok())
}

fn parse_time(text: &str) -> Option<i64> {
    let time = chrono::NaiveTime::parse_from_str(text, "%H:%M:%S%.f").ok()?;
    Some(
        i64::from(chrono::Timelike::num_seconds_from_midnight(&time)) * 1_000_000
            + i64::from(chrono::Timelike::nanosecond(&time) / 1_000),
    )
}

/// A column of a primitive Arrow type, each cell's text read by `parse`.
fn primitive<'a, T: ArrowPrimitiveType>(
    field: &FieldSchema,
    cells: impl Iterator<Item = Option<&'a Value>>,
    parse: impl Fn(&str) -> Option<T::Native>,
) -> Result<PrimitiveArray<T>, CloudError> {
    let mut b = PrimitiveBuilder::<T>::new();
    for v in cells {
        match v {
            Some(v) => {
                let t = text(v, field)?;
                b.append_value(parse(t).ok_or_else(|| bad(field, t))?);
            }
            None => b.append_null(),
        }
    }
    Ok(b.finish())
}

fn bad(field: &FieldSchema, value: &str) -> CloudError {
    protocol(format!("column {:?} ({}): cannot read {value:?}", field.name, field.field_type))
}

/// Decode `rows` (one page of an answer) into a batch of `schema`.
pub fn decode(fields: &[FieldSchema], schema: &SchemaRef, rows: &[Value]) -> Result<RecordBatch, CloudError> {
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (index, field) in fields.iter().enumerate() {
        let bad = |v: &str| bad(field, v);
        let cells = rows.iter().map(|row| cell(row, index));
        let array: ArrayRef = match schema.field(index).data_type() {
            DataType::Int64 => Arc::new(primitive::<Int64Type>(field, cells, |t| t.parse().ok())?),
            DataType::Float64 => Arc::new(primitive::<Float64Type>(field, cells, parse_float)?),
            DataType::Decimal128(p, s) => Arc::new(
                primitive::<Decimal128Type>(field, cells, |t| parse_decimal(t, *s))?
                    .with_precision_and_scale(*p, *s)
                    .map_err(|e| protocol(e.to_string()))?,
            ),
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(rows.len());
                for v in cells {
                    match v {
                        Some(v) => match text(v, field)? {
                            "true" | "TRUE" | "True" => b.append_value(true),
                            "false" | "FALSE" | "False" => b.append_value(false),
                            t => return Err(bad(t)),
                        },
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => Arc::new(primitive::<Date32Type>(field, cells, parse_date)?),
            DataType::Timestamp(_, zone) => {
                let parse = if zone.is_some() { parse_timestamp } else { parse_datetime };
                Arc::new(primitive::<TimestampMicrosecondType>(field, cells, parse)?.with_timezone_opt(zone.clone()))
            }
            DataType::Time64(_) => Arc::new(primitive::<Time64MicrosecondType>(field, cells, parse_time)?),
            DataType::Binary => {
                let mut b = BinaryBuilder::with_capacity(rows.len(), 0);
                for v in cells {
                    match v {
                        Some(v) => {
                            let t = text(v, field)?;
                            let bytes = base64::engine::general_purpose::STANDARD.decode(t).map_err(|_| bad(t))?;
                            b.append_value(bytes);
                        }
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::with_capacity(rows.len(), rows.len() * 16);
                let nested = field.repeated() || canonical(&field.field_type) == "STRUCT";
                for v in cells {
                    match v {
                        Some(v) if nested => b.append_value(plain_json(v, field, field.repeated()).to_string()),
                        Some(v) => b.append_value(text(v, field)?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows.len())),
    )
    .map_err(|e| protocol(format!("the rows do not fit their schema: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use serde_json::json;

    fn field(name: &str, ty: &str) -> FieldSchema {
        FieldSchema { name: name.into(), field_type: ty.into(), mode: None, fields: Vec::new() }
    }

    #[test]
    fn rows_are_typed_by_the_schema_and_money_is_exact() {
        let mut tags = field("tags", "STRING");
        tags.mode = Some("REPEATED".into());
        let mut meta = field("meta", "RECORD");
        meta.fields = vec![field("k", "STRING"), field("n", "INTEGER")];
        let fields = vec![
            field("id", "INTEGER"),
            field("spend", "NUMERIC"),
            field("at", "TIMESTAMP"),
            field("local", "DATETIME"),
            field("day", "DATE"),
            field("f", "FLOAT"),
            field("ok", "BOOLEAN"),
            tags,
            meta,
            field("big", "BIGNUMERIC"),
        ];
        let rows = vec![
            json!({"f": [{"v": "1"}, {"v": "12.345678901"}, {"v": "1767323045123456"}, {"v": "2026-01-02T03:04:05.123456"},
                {"v": "2026-01-02"}, {"v": "NaN"}, {"v": "true"}, {"v": [{"v": "a"}, {"v": "b"}]},
                {"v": {"f": [{"v": "x"}, {"v": "5"}]}}, {"v": "123456789012345678901234567890.12345678901234567890"}]}),
            json!({"f": [{"v": null}, {"v": "-1E-9"}, {"v": "1.767323045123456E9"}, {"v": null}, {"v": null}, {"v": "0.1"},
                {"v": null}, {"v": []}, {"v": null}, {"v": null}]}),
        ];
        let schema = schema_of(&fields);
        let batch = decode(&fields, &schema, &rows).unwrap();
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 1);
        assert!(batch.column(0).is_null(1));
        let spend = batch.column(1).as_primitive::<Decimal128Type>();
        assert_eq!((spend.value(0), spend.value(1)), (12_345_678_901, -1), "NUMERIC exact at scale 9");
        let at = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        assert_eq!((at.value(0), at.value(1)), (1_767_323_045_123_456, 1_767_323_045_123_456));
        assert_eq!(
            batch.column(3).as_primitive::<TimestampMicrosecondType>().value(0),
            chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
                .unwrap()
                .and_hms_micro_opt(3, 4, 5, 123_456)
                .unwrap()
                .and_utc()
                .timestamp_micros()
        );
        assert!(batch.column(5).as_primitive::<arrow::datatypes::Float64Type>().value(0).is_nan());
        assert_eq!(batch.column(7).as_string::<i32>().value(0), r#"["a","b"]"#);
        assert_eq!(batch.column(7).as_string::<i32>().value(1), "[]");
        assert_eq!(batch.column(8).as_string::<i32>().value(0), r#"{"k":"x","n":"5"}"#);
        assert_eq!(
            batch.column(9).as_string::<i32>().value(0),
            "123456789012345678901234567890.12345678901234567890",
            "BIGNUMERIC keeps its digits as text"
        );
    }

    #[test]
    fn a_value_that_does_not_read_as_its_type_is_an_error_naming_the_column() {
        let fields = vec![field("spend", "NUMERIC")];
        let schema = schema_of(&fields);
        let error = decode(&fields, &schema, &[json!({"f": [{"v": "0.0000000001"}]})]).unwrap_err().to_string();
        assert!(error.contains("\"spend\"") && error.contains("0.0000000001"), "{error}");
    }
}
