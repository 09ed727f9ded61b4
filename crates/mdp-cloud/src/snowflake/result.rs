//! A statement's result as Arrow record batches.
//!
//! The `rowtype` decides each column's Arrow type, so every part of a result (inline row set,
//! chunks) has the same schema whatever encoding the server chose:
//!
//! | Snowflake type | Arrow |
//! |---|---|
//! | `fixed`, scale 0, precision ≤ 18 | Int64 |
//! | `fixed`, otherwise | Decimal128(38, scale): exact, never a float |
//! | `real` | Float64 |
//! | `boolean` | Boolean |
//! | `date` | Date32 |
//! | `timestamp_ntz` / `_ltz` / `_tz` | Timestamp(µs) in UTC |
//! | `text`, `variant`, `object`, `array`, `time`, others | Utf8 |
//!
//! Arrow row sets come as an IPC stream (base64 inline; raw, maybe gzipped, in chunks). Snowflake
//! sends a `fixed` column with a scale as integers to divide by 10^scale, or as Decimal128 when wide;
//! timestamps as a struct of epoch seconds and nanoseconds, or as one integer scaled by 10^scale. JSON
//! row sets hold strings: numbers as decimal text, dates as days since 1970 (or ISO text), timestamps
//! as seconds with a fraction (`1767323045.123456000`, a time-zone offset after a blank for `_tz`).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, StructArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Int64Type, Int8Type, Schema, SchemaRef, TimeUnit};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::{protocol, unreachable_error};
use crate::error::CloudError;
use crate::text::parse_decimal;

/// A column of a result, as Snowflake describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct RowType {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub scale: Option<i64>,
    #[serde(default)]
    pub precision: Option<i64>,
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

impl RowType {
    fn scale(&self) -> i64 {
        self.scale.unwrap_or(0)
    }

    /// The Arrow type this column is read into.
    pub fn arrow_type(&self) -> DataType {
        match self.kind.to_ascii_lowercase().as_str() {
            "fixed" if self.scale() == 0 && self.precision.unwrap_or(38) <= 18 => DataType::Int64,
            "fixed" => DataType::Decimal128(38, self.scale().clamp(0, 37) as i8),
            "real" | "float" | "double" => DataType::Float64,
            "boolean" => DataType::Boolean,
            "date" => DataType::Date32,
            "timestamp_ntz" | "timestamp_ltz" | "timestamp_tz" | "timestamp" => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            _ => DataType::Utf8,
        }
    }
}

/// Where one chunk of a large result is.
#[derive(Debug, Clone, Deserialize)]
struct Chunk {
    url: String,
    #[serde(rename = "rowCount", default)]
    row_count: u64,
}

/// A statement's result: its schema, the rows that came with the answer, and the chunks still to
/// fetch (one at a time, as the caller reads).
pub struct QueryResult {
    pub query_id: Option<String>,
    pub schema: SchemaRef,
    columns: Vec<RowType>,
    format: Format,
    inline: VecDeque<RecordBatch>,
    chunks: VecDeque<Chunk>,
    chunk_headers: Vec<(String, String)>,
    http: reqwest::Client,
}

impl std::fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryResult")
            .field("query_id", &self.query_id)
            .field("schema", &self.schema)
            .field("chunks", &self.chunks.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Arrow,
    Json,
}

impl QueryResult {
    pub(super) async fn from_response(data: Value, http: reqwest::Client) -> Result<QueryResult, CloudError> {
        let columns: Vec<RowType> = serde_json::from_value(data.get("rowtype").cloned().unwrap_or(Value::Null))
            .map_err(|e| protocol(format!("the result's rowtype does not parse: {e}")))?;
        let schema = schema_of(&columns);
        let format = match data.get("queryResultFormat").and_then(Value::as_str) {
            Some("arrow") => Format::Arrow,
            _ => Format::Json,
        };
        let mut inline = VecDeque::new();
        match format {
            Format::Arrow => {
                let text = data.get("rowsetBase64").and_then(Value::as_str).unwrap_or_default();
                if !text.is_empty() {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(text)
                        .map_err(|e| protocol(format!("rowsetBase64 is not base64: {e}")))?;
                    inline.extend(decode_arrow(&columns, &schema, &bytes)?);
                }
            }
            Format::Json => {
                if let Some(Value::Array(rows)) = data.get("rowset") {
                    if !rows.is_empty() {
                        inline.push_back(decode_json(&columns, &schema, rows)?);
                    }
                }
            }
        }
        let chunks: VecDeque<Chunk> = match data.get("chunks") {
            Some(chunks) if !chunks.is_null() => serde_json::from_value(chunks.clone())
                .map_err(|e| protocol(format!("the result's chunk list does not parse: {e}")))?,
            _ => VecDeque::new(),
        };
        let mut chunk_headers = Vec::new();
        if let Some(Value::Object(headers)) = data.get("chunkHeaders") {
            for (k, v) in headers {
                chunk_headers.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
            }
        } else if let Some(qrmk) = data.get("qrmk").and_then(Value::as_str) {
            // Chunks encrypted with a customer key on S3: the key comes with the result.
            chunk_headers.push(("x-amz-server-side-encryption-customer-algorithm".into(), "AES256".into()));
            chunk_headers.push(("x-amz-server-side-encryption-customer-key".into(), qrmk.to_string()));
        }
        Ok(QueryResult {
            query_id: data.get("queryId").and_then(Value::as_str).map(str::to_string),
            schema,
            columns,
            format,
            inline,
            chunks,
            chunk_headers,
            http,
        })
    }

    /// The next batch, fetching the next chunk when the ones at hand are read; `None` at the end.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, CloudError> {
        loop {
            if let Some(batch) = self.inline.pop_front() {
                if batch.num_rows() > 0 {
                    return Ok(Some(batch));
                }
                continue;
            }
            let Some(chunk) = self.chunks.pop_front() else { return Ok(None) };
            self.inline.extend(self.fetch_chunk(&chunk).await?);
        }
    }

    /// Every remaining batch (for small results).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>, CloudError> {
        let mut out = Vec::new();
        while let Some(batch) = self.next_batch().await? {
            out.push(batch);
        }
        Ok(out)
    }

    async fn fetch_chunk(&self, chunk: &Chunk) -> Result<Vec<RecordBatch>, CloudError> {
        let mut request = self.http.get(&chunk.url);
        for (k, v) in &self.chunk_headers {
            request = request.header(k, v);
        }
        let response = request.send().await.map_err(|e| unreachable_error("fetching a result chunk", &e))?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("fetching a result chunk of {} rows answered HTTP {status}", chunk.row_count);
            return Err(if status.is_server_error() { CloudError::Unavailable(message) } else { protocol(message) });
        }
        let mut bytes = response.bytes().await.map_err(|e| unreachable_error("fetching a result chunk", &e))?.to_vec();
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut plain = Vec::new();
            flate2::read::MultiGzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .map_err(|e| protocol(format!("a gzipped result chunk does not unzip: {e}")))?;
            bytes = plain;
        }
        match self.format {
            Format::Arrow => decode_arrow(&self.columns, &self.schema, &bytes),
            Format::Json => {
                // A JSON chunk is the rows without the enclosing brackets: `["a","1"],["b","2"]`.
                let mut text = Vec::with_capacity(bytes.len() + 2);
                text.push(b'[');
                text.extend_from_slice(&bytes);
                text.push(b']');
                let rows: Vec<Value> = serde_json::from_slice(&text)
                    .map_err(|e| protocol(format!("a JSON result chunk does not parse: {e}")))?;
                Ok(vec![decode_json(&self.columns, &self.schema, &rows)?])
            }
        }
    }
}

/// The Arrow schema of a rowtype.
pub fn schema_of(columns: &[RowType]) -> SchemaRef {
    Arc::new(Schema::new(columns.iter().map(|c| Field::new(&c.name, c.arrow_type(), true)).collect::<Vec<Field>>()))
}

/// Read an Arrow IPC stream and convert each column to the schema's type.
pub fn decode_arrow(columns: &[RowType], schema: &SchemaRef, bytes: &[u8]) -> Result<Vec<RecordBatch>, CloudError> {
    let bytes = with_nullable_fields(bytes)?;
    let reader = arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(&bytes[..]), None)
        .map_err(|e| protocol(format!("the Arrow row set does not read: {e}")))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| protocol(format!("the Arrow row set does not read: {e}")))?;
        if batch.num_columns() != columns.len() {
            return Err(protocol(format!(
                "the Arrow row set has {} columns, the rowtype {}",
                batch.num_columns(),
                columns.len()
            )));
        }
        let converted: Vec<ArrayRef> = (columns.iter().zip(batch.columns()))
            .map(|(column, array)| convert_arrow(column, array))
            .collect::<Result<_, _>>()?;
        out.push(
            RecordBatch::try_new(schema.clone(), converted)
                .map_err(|e| protocol(format!("the Arrow row set does not fit its rowtype: {e}")))?,
        );
    }
    Ok(out)
}

/// The stream with its schema message rewritten so that every field, nested ones included, is
/// nullable. A row set may declare a struct's children (a timestamp's `epoch` and `fraction`) not
/// nullable and still hold nulls in them under a valid struct row (the fakesnow stand-in does), which
/// Arrow refuses to read; nullability changes nothing else about the data.
fn with_nullable_fields(bytes: &[u8]) -> Result<Vec<u8>, CloudError> {
    let bad = |what: String| protocol(format!("the Arrow row set does not read: {what}"));
    let word = |at: usize| -> Option<i32> { Some(i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?)) };
    // An encapsulated message: [0xFFFFFFFF] (since Arrow 0.15), its metadata's length, the metadata.
    let start = if word(0) == Some(-1) { 4 } else { 0 };
    let Some(length) = word(start).and_then(|l| usize::try_from(l).ok()) else {
        return Ok(bytes.to_vec());
    };
    let metadata = bytes.get(start + 4..start + 4 + length).ok_or_else(|| bad("a truncated schema".into()))?;
    let message = arrow_ipc::root_as_message(metadata).map_err(|e| bad(e.to_string()))?;
    let Some(fb_schema) = message.header_as_schema() else {
        return Ok(bytes.to_vec());
    };
    let schema = arrow_ipc::convert::try_fb_to_schema(fb_schema).map_err(|e| bad(e.to_string()))?;
    let rest = &bytes[start + 4 + length + usize::try_from(message.bodyLength()).unwrap_or(0)..];
    fn relax(field: &Field) -> Field {
        let data_type = match field.data_type() {
            DataType::Struct(children) => {
                DataType::Struct(children.iter().map(|c| relax(c)).collect::<Vec<Field>>().into())
            }
            other => other.clone(),
        };
        field.clone().with_data_type(data_type).with_nullable(true)
    }
    let relaxed = Schema::new_with_metadata(
        schema.fields().iter().map(|f| relax(f)).collect::<Vec<Field>>(),
        schema.metadata().clone(),
    );
    let options = arrow_ipc::writer::IpcWriteOptions::default();
    let encoded = arrow_ipc::writer::IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        &relaxed,
        &mut arrow_ipc::writer::DictionaryTracker::new(false),
        &options,
    );
    let mut out = Vec::with_capacity(bytes.len() + 64);
    arrow_ipc::writer::write_message(&mut out, encoded, &options).map_err(|e| bad(e.to_string()))?;
    out.extend_from_slice(rest);
    Ok(out)
}

fn convert_arrow(column: &RowType, array: &ArrayRef) -> Result<ArrayRef, CloudError> {
    let target = column.arrow_type();
    let bad = |what: &str| protocol(format!("column {:?} ({}) came as {what}", column.name, column.kind));
    let scale = column.scale();
    match (&target, array.data_type()) {
        (DataType::Decimal128(_, s), DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64) => {
            // Integers holding value × 10^scale.
            let mut b = Decimal128Builder::with_capacity(array.len());
            for i in 0..array.len() {
                if array.is_null(i) {
                    b.append_null();
                } else {
                    b.append_value(int_at(array, i).ok_or_else(|| bad("a non-integer"))? as i128);
                }
            }
            Ok(Arc::new(b.finish().with_precision_and_scale(38, *s).map_err(|e| bad(&e.to_string()))?))
        }
        (DataType::Timestamp(..), DataType::Struct(_)) => {
            // {epoch seconds, fraction nanoseconds[, time zone]}.
            let s: &StructArray = array.as_struct();
            let epoch = s.column_by_name("epoch").ok_or_else(|| bad("a struct without epoch"))?;
            let fraction = s.column_by_name("fraction");
            let mut b = TimestampMicrosecondBuilder::with_capacity(array.len());
            for i in 0..array.len() {
                if array.is_null(i) || epoch.is_null(i) {
                    b.append_null();
                    continue;
                }
                let seconds = int_at(epoch, i).ok_or_else(|| bad("a non-integer epoch"))?;
                let nanos = fraction.and_then(|f| int_at(f, i)).unwrap_or(0);
                b.append_value(seconds * 1_000_000 + nanos / 1_000);
            }
            Ok(Arc::new(b.finish()))
        }
        (DataType::Timestamp(..), DataType::Int64 | DataType::Int32) => {
            // One integer: seconds × 10^scale.
            let mut b = TimestampMicrosecondBuilder::with_capacity(array.len());
            for i in 0..array.len() {
                match int_at(array, i) {
                    Some(v) if !array.is_null(i) => b.append_value(rescale(v, scale, 6)),
                    _ => b.append_null(),
                }
            }
            Ok(Arc::new(b.finish()))
        }
        (_, from) if from == &target => Ok(array.clone()),
        _ => arrow::compute::cast(array, &target).map_err(|e| bad(&format!("{} ({e})", array.data_type()))),
    }
}

fn int_at(array: &ArrayRef, i: usize) -> Option<i64> {
    Some(match array.data_type() {
        DataType::Int8 => i64::from(array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => i64::from(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i),
        _ => return None,
    })
}

/// `value` × 10^-from_scale expressed with `to_scale` digits.
fn rescale(value: i64, from_scale: i64, to_scale: i64) -> i64 {
    if from_scale > to_scale {
        value / 10i64.pow((from_scale - to_scale) as u32)
    } else {
        value * 10i64.pow((to_scale - from_scale) as u32)
    }
}

/// Build a batch from JSON rows (arrays of strings or nulls).
pub fn decode_json(columns: &[RowType], schema: &SchemaRef, rows: &[Value]) -> Result<RecordBatch, CloudError> {
    let cell = |row: &Value, i: usize| -> Result<Option<String>, CloudError> {
        match row.get(i) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Ok(Some(other.to_string())),
        }
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (i, column) in columns.iter().enumerate() {
        let bad = |value: &str| {
            protocol(format!("column {:?} ({}) holds {value:?}, which does not read as one", column.name, column.kind))
        };
        let n = rows.len();
        let array: ArrayRef = match column.arrow_type() {
            DataType::Int64 => {
                let mut b = Int64Builder::with_capacity(n);
                for row in rows {
                    match cell(row, i)? {
                        Some(v) => b.append_value(v.trim().parse().map_err(|_| bad(&v))?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Decimal128(_, scale) => {
                let mut b = Decimal128Builder::with_capacity(n);
                for row in rows {
                    match cell(row, i)? {
                        Some(v) => b.append_value(parse_decimal(&v, scale).ok_or_else(|| bad(&v))?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish().with_precision_and_scale(38, scale).map_err(|e| protocol(e.to_string()))?)
            }
            DataType::Float64 => {
                let mut b = Float64Builder::with_capacity(n);
                for row in rows {
                    match cell(row, i)? {
                        Some(v) => b.append_value(v.trim().parse().map_err(|_| bad(&v))?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                for row in rows {
                    match cell(row, i)?.as_deref() {
                        Some("1" | "true" | "TRUE" | "True") => b.append_value(true),
                        Some("0" | "false" | "FALSE" | "False") => b.append_value(false),
                        Some(v) => return Err(bad(v)),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Date32 => {
                let mut b = Date32Builder::with_capacity(n);
                for row in rows {
                    match cell(row, i)? {
                        Some(v) => b.append_value(parse_date(&v).ok_or_else(|| bad(&v))?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            DataType::Timestamp(..) => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(n);
                for row in rows {
                    match cell(row, i)? {
                        Some(v) => b.append_value(parse_timestamp(&v).ok_or_else(|| bad(&v))?),
                        None => b.append_null(),
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                for row in rows {
                    b.append_option(cell(row, i)?);
                }
                Arc::new(b.finish())
            }
        };
        arrays.push(array);
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| protocol(format!("the JSON row set does not fit: {e}")))
}

fn parse_date(text: &str) -> Option<i32> {
    let text = text.trim();
    if text.contains('-') && text.len() >= 10 {
        let date = chrono::NaiveDate::parse_from_str(&text[..10], "%Y-%m-%d").ok()?;
        return Some((date - chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days() as i32);
    }
    text.parse().ok()
}

fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    // `seconds.fraction[ offset]`: the offset (minutes + 1440) only says the zone; the instant is UTC.
    let instant = text.split(' ').next()?;
    // Nanoseconds are cut to the microseconds mdp keeps.
    let instant = match instant.split_once('.') {
        Some((seconds, fraction)) if fraction.len() > 6 => format!("{seconds}.{}", &fraction[..6]),
        _ => instant.to_string(),
    };
    if let Some(micros) = parse_decimal(&instant, 6).and_then(|v| i64::try_from(v).ok()) {
        return Some(micros);
    }
    let parsed = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()?;
    Some(parsed.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_follow_the_rowtype() {
        let columns: Vec<RowType> = serde_json::from_value(serde_json::json!([
            {"name": "N", "type": "fixed", "scale": 0, "precision": 18},
            {"name": "SPEND", "type": "fixed", "scale": 9, "precision": 38},
            {"name": "D", "type": "date"},
            {"name": "TS", "type": "timestamp_tz", "scale": 9},
            {"name": "OK", "type": "boolean"},
            {"name": "V", "type": "variant"},
        ]))
        .unwrap();
        let schema = schema_of(&columns);
        let rows = vec![
            serde_json::json!(["7", "1.5", "20454", "1767323045.123456000 1500", "1", "{\"a\":1}"]),
            serde_json::json!([null, null, "2026-01-02", "2026-01-02 03:04:05.5", "false", null]),
        ];
        let batch = decode_json(&columns, &schema, &rows).unwrap();
        assert_eq!(batch.column(0).as_primitive::<Int64Type>().value(0), 7);
        let spend = batch.column(1).as_primitive::<arrow::datatypes::Decimal128Type>();
        assert_eq!(spend.value(0), 1_500_000_000);
        assert!(spend.is_null(1));
        let dates = batch.column(2).as_primitive::<arrow::datatypes::Date32Type>();
        assert_eq!((dates.value(0), dates.value(1)), (20454, 20455));
        let ts = batch.column(3).as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
        assert_eq!(ts.value(0), 1_767_323_045_123_456, "the instant, whatever zone it was written in");
        assert_eq!(ts.value(1), 1_767_323_045_500_000);
        assert!(batch.column(4).as_boolean().value(0) && !batch.column(4).as_boolean().value(1));
        assert_eq!(batch.column(5).as_string::<i32>().value(0), "{\"a\":1}");
        let bad = decode_json(&columns, &schema, &[serde_json::json!(["x", null, null, null, null, null])]);
        assert!(bad.unwrap_err().to_string().contains("column \"N\" (fixed) holds \"x\""));
    }
}
