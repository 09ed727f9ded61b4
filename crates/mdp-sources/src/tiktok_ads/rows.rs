//! Reading TikTok's rows: report rows through borrowed typed structs (numbers are strings, dates read
//! `YYYY-MM-DD 00:00:00`), entity rows from their JSON.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::PLATFORM;
use crate::error::SourceError;
use crate::record::{EntityRecord, PerformanceRecord};
use mdp_core::TikTokAdsOptions;
use rust_decimal::Decimal;

fn text(v: &Value, key: &str) -> Option<String> {
    crate::json::text(&v[key])
}

/// An item of `campaign/get/`, `adgroup/get/` or `ad/get/`.
pub(super) fn entity_record(
    path: &str,
    id_key: &str,
    name_key: &str,
    account_id: &str,
    raw: &str,
) -> Result<EntityRecord, SourceError> {
    let item: Value =
        serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("{path} item: {e}")))?;
    Ok(EntityRecord {
        account_id: account_id.to_string(),
        id: text(&item, id_key)
            .ok_or_else(|| SourceError::malformed(PLATFORM, format!("{path} item without {id_key}")))?,
        name: text(&item, name_key),
        // secondary_status tells deleted from disabled; operation_status does not.
        status: text(&item, "secondary_status").or_else(|| text(&item, "operation_status")),
        campaign_id: if id_key == "campaign_id" { None } else { text(&item, "campaign_id") },
        ad_group_id: if id_key == "ad_id" { text(&item, "adgroup_id") } else { None },
        currency: None,
        timezone: None,
        payload: raw.to_string(),
    })
}

/// The fields of a report row mdp reads; the rest stays in the payload.
#[derive(Deserialize)]
struct ReportRow<'a> {
    #[serde(borrow)]
    dimensions: ReportDimensions<'a>,
    #[serde(borrow)]
    metrics: ReportMetrics<'a>,
}

#[derive(Deserialize)]
struct ReportDimensions<'a> {
    #[serde(borrow, default)]
    ad_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stat_time_day: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ReportMetrics<'a> {
    #[serde(borrow, default)]
    campaign_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    adgroup_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spend: Option<&'a RawValue>,
    #[serde(borrow, default)]
    impressions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    clicks: Option<&'a RawValue>,
    // The conversion metrics a source may be configured with (`TikTokAdsOptions`).
    #[serde(borrow, default)]
    conversion: Option<&'a RawValue>,
    #[serde(borrow, default)]
    real_time_conversion: Option<&'a RawValue>,
    #[serde(borrow, default)]
    complete_payment: Option<&'a RawValue>,
    #[serde(borrow, default)]
    form: Option<&'a RawValue>,
    #[serde(borrow, default)]
    total_purchase_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    total_complete_payment_rate: Option<&'a RawValue>,
    #[serde(borrow, default)]
    total_sales_lead_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    video_play_actions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    likes: Option<&'a RawValue>,
    #[serde(borrow, default)]
    comments: Option<&'a RawValue>,
    #[serde(borrow, default)]
    shares: Option<&'a RawValue>,
}

impl<'a> ReportMetrics<'a> {
    /// One of the conversion metrics by name (the names `TikTokAdsOptions` accepts).
    fn conversion_metric(&self, name: &str) -> Option<&'a RawValue> {
        match name {
            "conversion" => self.conversion,
            "real_time_conversion" => self.real_time_conversion,
            "complete_payment" => self.complete_payment,
            "form" => self.form,
            "total_purchase_value" => self.total_purchase_value,
            "total_complete_payment_rate" => self.total_complete_payment_rate,
            "total_sales_lead_value" => self.total_sales_lead_value,
            _ => None,
        }
    }
}

/// A report row read through [`ReportRow`], with the API's own text of the row as payload; conversions
/// and their value are the metrics `conversions` names (no value metric: zero).
pub(super) fn performance_record(
    account_id: &str,
    raw: &str,
    conversions: &TikTokAdsOptions,
) -> Result<PerformanceRecord, SourceError> {
    use crate::json::scalar;
    let row: ReportRow<'_> =
        serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("report row: {e}")))?;
    let (d, m) = (&row.dimensions, &row.metrics);
    let day = match scalar(d.stat_time_day) {
        crate::json::Scalar::Str(day) => day,
        _ => return Err(SourceError::malformed(PLATFORM, "report row without stat_time_day")),
    };
    let date = NaiveDate::parse_from_str(day.get(..10).unwrap_or(&day), "%Y-%m-%d")
        .map_err(|_| SourceError::malformed(PLATFORM, format!("stat_time_day {day:?} is not a date")))?;
    let mut notes = crate::json::Normalized::default();
    let mut metric = |name: &str, raw| scalar(raw).decimal(PLATFORM, format_args!("metrics.{name}"), &mut notes);
    let count = |name: &str, raw| scalar(raw).integer(PLATFORM, format_args!("metrics.{name}"));
    let mut record = PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: scalar(m.campaign_id).text(),
        ad_group_id: scalar(m.adgroup_id).text(),
        ad_id: scalar(d.ad_id).text(),
        impressions: count("impressions", m.impressions)?,
        clicks: count("clicks", m.clicks)?,
        spend: metric("spend", m.spend)?,
        conversions: metric(&conversions.conversion_metric, m.conversion_metric(&conversions.conversion_metric))?,
        conversion_value: match conversions.conversion_value_metric.as_deref() {
            Some(name) => metric(name, m.conversion_metric(name))?,
            None => Decimal::ZERO,
        },
        video_views: Some(count("video_play_actions", m.video_play_actions)?),
        likes: Some(count("likes", m.likes)?),
        comments: Some(count("comments", m.comments)?),
        shares: Some(count("shares", m.shares)?),
        payload: String::new(),
    };
    record.payload = notes.into_payload(raw.to_string());
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(row: Value) -> String {
        row.to_string()
    }
    use std::str::FromStr;

    use rust_decimal::Decimal;

    #[test]
    fn report_rows_parse_string_numbers_and_dates() {
        let row = serde_json::json!({
            "dimensions": {"ad_id": "17", "stat_time_day": "2026-06-01 00:00:00"},
            "metrics": {"campaign_id": "1", "adgroup_id": "2", "spend": "12.34", "impressions": "1000", "clicks": "10",
                        "conversion": "1.5", "total_purchase_value": "45.00", "video_play_actions": "300",
                        "likes": "2", "comments": "0", "shares": "1"}
        });
        let r = performance_record("adv", &raw(row), &TikTokAdsOptions::default()).unwrap();
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2026, 6, 1));
        assert_eq!((r.impressions, r.clicks), (1000, 10));
        assert_eq!(r.spend, Decimal::from_str("12.34").unwrap());
        assert_eq!(r.conversions, Decimal::from_str("1.5").unwrap());
        assert_eq!((r.ad_id.as_deref(), r.ad_group_id.as_deref()), (Some("17"), Some("2")));
    }

    #[test]
    fn the_configured_metric_pair_is_read() {
        let row = serde_json::json!({
            "dimensions": {"ad_id": "17", "stat_time_day": "2026-06-01 00:00:00"},
            "metrics": {"spend": "1", "impressions": "10", "clicks": "1", "conversion": "4", "total_purchase_value": "40.00",
                        "complete_payment": "3", "total_complete_payment_rate": "30.50", "form": "2"}
        });
        let pair = |count: &str, value: Option<&str>| TikTokAdsOptions {
            conversion_metric: count.to_string(),
            conversion_value_metric: value.map(str::to_string),
            ..Default::default()
        };
        let payments = performance_record(
            "adv",
            &raw(row.clone()),
            &pair("complete_payment", Some("total_complete_payment_rate")),
        )
        .unwrap();
        assert_eq!(
            (payments.conversions, payments.conversion_value),
            (Decimal::from(3), Decimal::from_str("30.5").unwrap())
        );
        let forms = performance_record("adv", &raw(row), &pair("form", None)).unwrap();
        assert_eq!((forms.conversions, forms.conversion_value), (Decimal::from(2), Decimal::ZERO));
    }

    #[test]
    fn a_non_number_metric_is_reported_not_zeroed() {
        let row = serde_json::json!({"dimensions": {"ad_id": "1", "stat_time_day": "2026-06-01 00:00:00"}, "metrics": {"spend": "abc"}});
        assert!(matches!(
            performance_record("adv", &raw(row), &TikTokAdsOptions::default()),
            Err(SourceError::Malformed { .. })
        ));
    }
}
