//! What connectors emit: entity snapshots and daily performance rows, in one shape for every platform,
//! each with the platform's own record kept whole as JSON.
//!
//! The typed columns are the raw layer's keys and the standard metrics, exact (money and conversions as
//! decimals, never floats); the payload keeps every field the API sent, so staging can extract more and
//! a schema change never loses data.

use std::sync::Arc;

use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// Scale of every decimal column in the raw layer (money, conversions).
pub const DECIMAL_SCALE: u32 = 9;
/// Precision of every decimal column in the raw layer.
pub const DECIMAL_PRECISION: u8 = 38;
/// Arrow field metadata marking JSON text (the warehouse maps it to JSON / jsonb).
const JSON_METADATA: (&str, &str) = ("mdp.logical_type", "json");

/// One entity (account, campaign, ad group or ad) as the API describes it today.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRecord {
    pub account_id: String,
    pub id: String,
    pub name: Option<String>,
    /// The platform's own status word (ENABLED, PAUSED, ACTIVE, DISABLE, …).
    pub status: Option<String>,
    pub campaign_id: Option<String>,
    pub ad_group_id: Option<String>,
    /// Accounts only.
    pub currency: Option<String>,
    /// Accounts only: IANA time zone.
    pub timezone: Option<String>,
    /// The platform's own record as compact JSON text, made when the record is built so a page's parsed
    /// `serde_json::Value` trees are freed at once (they take several times the text's memory).
    pub payload: String,
}

/// One day of one ad (or campaign, where that is the finest grain) of one account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PerformanceRecord {
    /// The platform's reporting date (account time zone; UTC for LinkedIn).
    pub date: Option<NaiveDate>,
    pub account_id: String,
    pub campaign_id: Option<String>,
    pub ad_group_id: Option<String>,
    pub ad_id: Option<String>,
    pub impressions: i64,
    pub clicks: i64,
    pub spend: Decimal,
    pub conversions: Decimal,
    pub conversion_value: Decimal,
    pub video_views: Option<i64>,
    pub likes: Option<i64>,
    pub comments: Option<i64>,
    pub shares: Option<i64>,
    /// The platform's own record as compact JSON text, made when the record is built so a page's parsed
    /// `serde_json::Value` trees are freed at once (they take several times the text's memory).
    pub payload: String,
}

fn json_field(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
        .with_metadata(std::collections::HashMap::from([(JSON_METADATA.0.to_string(), JSON_METADATA.1.to_string())]))
}

fn decimal_type() -> DataType {
    DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE as i8)
}

/// The columns of an entity stream's raw rows (before the loader's `_mdp_*` columns).
pub fn entity_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, false),
        Field::new("id", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("campaign_id", DataType::Utf8, true),
        Field::new("ad_group_id", DataType::Utf8, true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("timezone", DataType::Utf8, true),
        json_field("_mdp_payload"),
    ]))
}

/// The columns of a daily performance stream's raw rows.
pub fn performance_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("date", DataType::Date32, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("campaign_id", DataType::Utf8, true),
        Field::new("ad_group_id", DataType::Utf8, true),
        Field::new("ad_id", DataType::Utf8, true),
        Field::new("impressions", DataType::Int64, false),
        Field::new("clicks", DataType::Int64, false),
        Field::new("spend", decimal_type(), false),
        Field::new("conversions", decimal_type(), false),
        Field::new("conversion_value", decimal_type(), false),
        Field::new("video_views", DataType::Int64, true),
        Field::new("likes", DataType::Int64, true),
        Field::new("comments", DataType::Int64, true),
        Field::new("shares", DataType::Int64, true),
        json_field("_mdp_payload"),
    ]))
}

/// A decimal as an i128 at [`DECIMAL_SCALE`]; `None` when it has more decimals than the raw layer
/// keeps (the caller reports that rather than rounding money).
pub fn decimal_to_i128(value: Decimal) -> Option<i128> {
    if value.scale() > DECIMAL_SCALE {
        let rounded = value.round_dp(DECIMAL_SCALE);
        if rounded != value {
            return None;
        }
        return decimal_to_i128(rounded);
    }
    let factor = 10i128.pow(DECIMAL_SCALE - value.scale());
    value.mantissa().checked_mul(factor)
}

const EPOCH: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("valid epoch"),
};

fn decimal_array(values: impl Iterator<Item = Decimal>) -> Result<ArrayRef, String> {
    let values: Result<Vec<i128>, String> = values
        .map(|v| decimal_to_i128(v).ok_or_else(|| format!("{v} has more than {DECIMAL_SCALE} decimals")))
        .collect();
    let array = Decimal128Array::from(values?)
        .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE as i8)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(array))
}

/// Entity records as one batch of [`entity_schema`].
pub fn entity_batch(records: &[EntityRecord]) -> Result<RecordBatch, String> {
    let text = |f: &dyn Fn(&EntityRecord) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(records.iter().map(f).collect::<Vec<_>>()))
    };
    let columns: Vec<ArrayRef> = vec![
        text(&|r| Some(r.account_id.as_str())),
        text(&|r| Some(r.id.as_str())),
        text(&|r| r.name.as_deref()),
        text(&|r| r.status.as_deref()),
        text(&|r| r.campaign_id.as_deref()),
        text(&|r| r.ad_group_id.as_deref()),
        text(&|r| r.currency.as_deref()),
        text(&|r| r.timezone.as_deref()),
        Arc::new(StringArray::from(records.iter().map(|r| r.payload.as_str()).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(entity_schema(), columns).map_err(|e| e.to_string())
}

/// Performance records as one batch of [`performance_schema`].
pub fn performance_batch(records: &[PerformanceRecord]) -> Result<RecordBatch, String> {
    let text = |f: &dyn Fn(&PerformanceRecord) -> Option<&str>| -> ArrayRef {
        Arc::new(StringArray::from(records.iter().map(f).collect::<Vec<_>>()))
    };
    let int = |f: &dyn Fn(&PerformanceRecord) -> Option<i64>| -> ArrayRef {
        Arc::new(Int64Array::from(records.iter().map(f).collect::<Vec<_>>()))
    };
    let mut dates = Vec::with_capacity(records.len());
    for r in records {
        let date = r.date.ok_or_else(|| format!("a performance row of account {} has no date", r.account_id))?;
        dates.push((date - EPOCH).num_days() as i32);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(dates)),
        text(&|r| Some(r.account_id.as_str())),
        text(&|r| r.campaign_id.as_deref()),
        text(&|r| r.ad_group_id.as_deref()),
        text(&|r| r.ad_id.as_deref()),
        int(&|r| Some(r.impressions)),
        int(&|r| Some(r.clicks)),
        decimal_array(records.iter().map(|r| r.spend))?,
        decimal_array(records.iter().map(|r| r.conversions))?,
        decimal_array(records.iter().map(|r| r.conversion_value))?,
        int(&|r| r.video_views),
        int(&|r| r.likes),
        int(&|r| r.comments),
        int(&|r| r.shares),
        Arc::new(StringArray::from(records.iter().map(|r| r.payload.as_str()).collect::<Vec<_>>())),
    ];
    RecordBatch::try_new(performance_schema(), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn decimals_keep_every_digit_or_refuse() {
        assert_eq!(decimal_to_i128(Decimal::from_str("12.34").unwrap()), Some(12_340_000_000));
        assert_eq!(decimal_to_i128(Decimal::from_str("1234").unwrap()), Some(1_234_000_000_000));
        assert_eq!(decimal_to_i128(Decimal::from_str("0.000000001").unwrap()), Some(1));
        assert_eq!(decimal_to_i128(Decimal::from_str("0.0000000001").unwrap()), None, "never rounds money");
        assert_eq!(decimal_to_i128(Decimal::from_str("1.50000000000").unwrap()), Some(1_500_000_000));
    }

    #[test]
    fn batches_carry_every_record() {
        let record = PerformanceRecord {
            date: NaiveDate::from_ymd_opt(2026, 1, 2),
            account_id: "1".into(),
            spend: Decimal::from_str("1.25").unwrap(),
            payload: r#"{"a":1}"#.to_string(),
            ..Default::default()
        };
        let batch = performance_batch(&[record.clone(), record]).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), performance_schema());
    }
}
