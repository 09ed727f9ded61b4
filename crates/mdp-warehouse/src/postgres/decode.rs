//! Postgres rows → Arrow record batches, column by column.
//!
//! NUMERIC arrives as exact decimal text (Utf8): Postgres numerics carry a per-value scale that no
//! fixed Arrow decimal type can hold without rounding, and money must never be rounded silently.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use tokio_postgres::types::Type;
use tokio_postgres::{Column, Row};

use crate::error::{Result, WarehouseError};

/// Rows per emitted batch.
pub(crate) const BATCH_ROWS: usize = 8192;

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Numeric,
    Text,
    Json,
    Date,
    Timestamp,
    TimestampTz,
}

fn kind_of(ty: &Type) -> Option<Kind> {
    Some(match *ty {
        Type::BOOL => Kind::Bool,
        Type::INT2 => Kind::Int16,
        Type::INT4 => Kind::Int32,
        Type::INT8 => Kind::Int64,
        Type::FLOAT4 => Kind::Float32,
        Type::FLOAT8 => Kind::Float64,
        Type::NUMERIC => Kind::Numeric,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => Kind::Text,
        Type::JSON | Type::JSONB => Kind::Json,
        Type::DATE => Kind::Date,
        Type::TIMESTAMP => Kind::Timestamp,
        Type::TIMESTAMPTZ => Kind::TimestampTz,
        _ => return None,
    })
}

/// Accumulates rows of one result set into batches.
pub(crate) struct RowDecoder {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    builders: Vec<Box<dyn ArrayBuilder>>,
    rows: usize,
}

impl RowDecoder {
    pub(crate) fn new(columns: &[Column]) -> Result<Self> {
        let mut fields = Vec::with_capacity(columns.len());
        let mut kinds = Vec::with_capacity(columns.len());
        for column in columns {
            let kind = kind_of(column.type_()).ok_or_else(|| WarehouseError::Unsupported {
                engine: "postgres",
                what: format!(
                    "reading column {:?} of type {}; cast it in the query, e.g. CAST({:?} AS text)",
                    column.name(),
                    column.type_(),
                    column.name()
                ),
            })?;
            let data_type = match kind {
                Kind::Bool => DataType::Boolean,
                Kind::Int16 | Kind::Int32 => DataType::Int32,
                Kind::Int64 => DataType::Int64,
                Kind::Float32 | Kind::Float64 => DataType::Float64,
                Kind::Numeric | Kind::Text | Kind::Json => DataType::Utf8,
                Kind::Date => DataType::Date32,
                Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
                Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            };
            fields.push(Field::new(column.name(), data_type, true));
            kinds.push(kind);
        }
        let schema = Arc::new(Schema::new(fields));
        let mut decoder = RowDecoder { schema, kinds, builders: Vec::new(), rows: 0 };
        decoder.builders = decoder.new_builders();
        Ok(decoder)
    }

    fn new_builders(&self) -> Vec<Box<dyn ArrayBuilder>> {
        self.kinds
            .iter()
            .map(|k| -> Box<dyn ArrayBuilder> {
                match k {
                    Kind::Bool => Box::new(BooleanBuilder::new()),
                    Kind::Int16 | Kind::Int32 => Box::new(Int32Builder::new()),
                    Kind::Int64 => Box::new(Int64Builder::new()),
                    Kind::Float32 | Kind::Float64 => Box::new(Float64Builder::new()),
                    Kind::Numeric | Kind::Text | Kind::Json => Box::new(StringBuilder::new()),
                    Kind::Date => Box::new(Date32Builder::new()),
                    Kind::Timestamp => Box::new(TimestampMicrosecondBuilder::new()),
                    Kind::TimestampTz => Box::new(TimestampMicrosecondBuilder::new().with_timezone("UTC")),
                }
            })
            .collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn push(&mut self, row: &Row) -> Result<()> {
        for (i, kind) in self.kinds.iter().enumerate() {
            let b = &mut self.builders[i];
            let err = |e: tokio_postgres::Error| WarehouseError::Internal(format!("decoding column {i}: {e}"));
            macro_rules! put {
                ($builder:ty, $value:expr) => {
                    b.as_any_mut().downcast_mut::<$builder>().expect("builder matches kind").append_option($value)
                };
            }
            match kind {
                Kind::Bool => put!(BooleanBuilder, row.try_get::<_, Option<bool>>(i).map_err(err)?),
                Kind::Int16 => put!(Int32Builder, row.try_get::<_, Option<i16>>(i).map_err(err)?.map(i32::from)),
                Kind::Int32 => put!(Int32Builder, row.try_get::<_, Option<i32>>(i).map_err(err)?),
                Kind::Int64 => put!(Int64Builder, row.try_get::<_, Option<i64>>(i).map_err(err)?),
                Kind::Float32 => put!(Float64Builder, row.try_get::<_, Option<f32>>(i).map_err(err)?.map(f64::from)),
                Kind::Float64 => put!(Float64Builder, row.try_get::<_, Option<f64>>(i).map_err(err)?),
                Kind::Numeric => put!(
                    StringBuilder,
                    row.try_get::<_, Option<rust_decimal::Decimal>>(i)
                        .map_err(|e| WarehouseError::Unsupported {
                            engine: "postgres",
                            what: format!(
                                "numeric values beyond 28 significant digits ({e}); cast to text in the query"
                            ),
                        })?
                        .map(|d| d.to_string())
                ),
                Kind::Text => put!(StringBuilder, row.try_get::<_, Option<String>>(i).map_err(err)?),
                Kind::Json => put!(
                    StringBuilder,
                    row.try_get::<_, Option<serde_json::Value>>(i).map_err(err)?.map(|v| v.to_string())
                ),
                Kind::Date => put!(
                    Date32Builder,
                    row.try_get::<_, Option<NaiveDate>>(i)
                        .map_err(err)?
                        .map(|d| { (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days() as i32 })
                ),
                Kind::Timestamp => put!(
                    TimestampMicrosecondBuilder,
                    row.try_get::<_, Option<NaiveDateTime>>(i).map_err(err)?.map(|t| t.and_utc().timestamp_micros())
                ),
                Kind::TimestampTz => put!(
                    TimestampMicrosecondBuilder,
                    row.try_get::<_, Option<DateTime<Utc>>>(i).map_err(err)?.map(|t| t.timestamp_micros())
                ),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// The rows pushed since the last call, as one batch.
    pub(crate) fn finish_batch(&mut self) -> Result<RecordBatch> {
        let fresh = self.new_builders();
        let columns: Vec<ArrayRef> =
            std::mem::replace(&mut self.builders, fresh).into_iter().map(|mut b| b.finish()).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| WarehouseError::Internal(e.to_string()))
    }
}
