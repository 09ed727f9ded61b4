//! Postgres binary `COPY` encoding of Arrow record batches: the fast bulk-load path.
//!
//! Each batch column is matched to its target column's type once; rows are then framed as binary
//! COPY tuples straight from the Arrow buffers, with no per-row allocation.

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, TimeUnit};
use bytes::{BufMut, BytesMut};
use postgres_types::{ToSql, Type};

use crate::error::{Result, WarehouseError};

/// Days from 1970-01-01 (Arrow) to 2000-01-01 (Postgres).
const PG_EPOCH_DAYS: i32 = 10_957;
/// Microseconds from 1970-01-01 to 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The binary COPY file header: signature, flags, header extension length.
pub(crate) fn header(buf: &mut BytesMut) {
    buf.put_slice(b"PGCOPY\n\xff\r\n\0");
    buf.put_i32(0);
    buf.put_i32(0);
}

/// The binary COPY trailer.
pub(crate) fn trailer(buf: &mut BytesMut) {
    buf.put_i16(-1);
}

/// How one batch column is written, decided from the Arrow type and the target column's `udt_name`.
enum Encoder<'a> {
    Text(&'a StringArray),
    Jsonb(&'a StringArray),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float64(&'a Float64Array),
    Bool(&'a BooleanArray),
    Date(&'a Date32Array),
    Timestamp(&'a TimestampMicrosecondArray),
    Numeric(&'a Decimal128Array, u32),
}

/// The Postgres `udt_name`s a batch column of `data_type` may be copied into.
pub(crate) fn compatible_udts(data_type: &DataType) -> &'static [&'static str] {
    match data_type {
        DataType::Utf8 => &["text", "varchar", "bpchar", "json", "jsonb"],
        DataType::Int32 => &["int4"],
        DataType::Int64 => &["int8"],
        DataType::Float64 => &["float8"],
        DataType::Boolean => &["bool"],
        DataType::Date32 => &["date"],
        DataType::Timestamp(TimeUnit::Microsecond, None) => &["timestamp"],
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => &["timestamptz"],
        DataType::Decimal128(_, s) if *s >= 0 => &["numeric"],
        _ => &[],
    }
}

fn downcast<T: 'static>(column: &ArrayRef) -> Result<&T> {
    column.as_any().downcast_ref::<T>().ok_or_else(|| WarehouseError::Internal("arrow array type mismatch".into()))
}

/// Encode `batch` (columns already checked against `udts`) as binary COPY tuples into `buf`.
pub(crate) fn encode_batch(batch: &RecordBatch, udts: &[String], buf: &mut BytesMut) -> Result<()> {
    let mut encoders = Vec::with_capacity(batch.num_columns());
    for (column, udt) in batch.columns().iter().zip(udts) {
        encoders.push(match (column.data_type(), udt.as_str()) {
            (DataType::Utf8, "jsonb") => Encoder::Jsonb(downcast(column)?),
            (DataType::Utf8, _) => Encoder::Text(downcast(column)?),
            (DataType::Int32, _) => Encoder::Int32(downcast(column)?),
            (DataType::Int64, _) => Encoder::Int64(downcast(column)?),
            (DataType::Float64, _) => Encoder::Float64(downcast(column)?),
            (DataType::Boolean, _) => Encoder::Bool(downcast(column)?),
            (DataType::Date32, _) => Encoder::Date(downcast(column)?),
            (DataType::Timestamp(TimeUnit::Microsecond, _), _) => Encoder::Timestamp(downcast(column)?),
            (DataType::Decimal128(_, s), _) => Encoder::Numeric(downcast(column)?, *s as u32),
            (other, _) => return Err(WarehouseError::Internal(format!("no COPY encoder for {other}"))),
        });
    }
    let field_count = i16::try_from(encoders.len()).map_err(|_| WarehouseError::Internal("too many columns".into()))?;
    buf.reserve(batch.num_rows() * (2 + encoders.len() * 12));
    for row in 0..batch.num_rows() {
        buf.put_i16(field_count);
        for encoder in &encoders {
            encode_value(encoder, row, buf)?;
        }
    }
    Ok(())
}

fn encode_value(encoder: &Encoder<'_>, row: usize, buf: &mut BytesMut) -> Result<()> {
    macro_rules! null_or {
        ($array:expr, $body:expr) => {
            if $array.is_null(row) {
                buf.put_i32(-1);
                return Ok(());
            } else {
                $body
            }
        };
    }
    match encoder {
        Encoder::Text(a) => null_or!(a, {
            let v = a.value(row).as_bytes();
            buf.put_i32(len(v.len())?);
            buf.put_slice(v);
        }),
        Encoder::Jsonb(a) => null_or!(a, {
            let v = a.value(row).as_bytes();
            buf.put_i32(len(v.len() + 1)?);
            buf.put_u8(1); // jsonb binary format version
            buf.put_slice(v);
        }),
        Encoder::Int32(a) => null_or!(a, {
            buf.put_i32(4);
            buf.put_i32(a.value(row));
        }),
        Encoder::Int64(a) => null_or!(a, {
            buf.put_i32(8);
            buf.put_i64(a.value(row));
        }),
        Encoder::Float64(a) => null_or!(a, {
            buf.put_i32(8);
            buf.put_f64(a.value(row));
        }),
        Encoder::Bool(a) => null_or!(a, {
            buf.put_i32(1);
            buf.put_u8(u8::from(a.value(row)));
        }),
        Encoder::Date(a) => null_or!(a, {
            buf.put_i32(4);
            buf.put_i32(a.value(row) - PG_EPOCH_DAYS);
        }),
        Encoder::Timestamp(a) => null_or!(a, {
            buf.put_i32(8);
            buf.put_i64(a.value(row) - PG_EPOCH_MICROS);
        }),
        Encoder::Numeric(a, scale) => null_or!(a, {
            let decimal = rust_decimal::Decimal::try_from_i128_with_scale(a.value(row), *scale).map_err(|e| {
                WarehouseError::Internal(format!("decimal {} (scale {scale}) does not fit: {e}", a.value(row)))
            })?;
            let length_at = buf.len();
            buf.put_i32(0);
            decimal
                .to_sql(&Type::NUMERIC, buf)
                .map_err(|e| WarehouseError::Internal(format!("cannot encode numeric: {e}")))?;
            let written = len(buf.len() - length_at - 4)?;
            buf[length_at..length_at + 4].copy_from_slice(&written.to_be_bytes());
        }),
    }
    Ok(())
}

fn len(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| WarehouseError::Internal("value larger than 2 GiB".into()))
}
