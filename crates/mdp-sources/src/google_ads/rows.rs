//! Reading Google's rows: report rows through borrowed typed structs (int64 as strings, doubles as
//! numbers, omitted fields as zero), entity rows from their nested JSON.

use chrono::NaiveDate;
use mdp_core::GoogleConversionMetric;
use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::PLATFORM;
use crate::error::SourceError;
use crate::record::{EntityRecord, PerformanceRecord};

/// The value at a nested path of a row, e.g. `["adGroupAd", "ad", "id"]`.
fn at<'a>(row: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(row, |v, key| &v[*key])
}

pub(super) fn text(row: &Value, path: &[&str]) -> Option<String> {
    crate::json::text(at(row, path))
}

pub(super) fn entity_record(stream: &str, account_id: &str, row: Value) -> Result<EntityRecord, SourceError> {
    let (id_path, name_path, status_path): (&[&str], &[&str], &[&str]) = match stream {
        "campaigns" => (&["campaign", "id"], &["campaign", "name"], &["campaign", "status"]),
        "ad_groups" => (&["adGroup", "id"], &["adGroup", "name"], &["adGroup", "status"]),
        _ => (&["adGroupAd", "ad", "id"], &["adGroupAd", "ad", "name"], &["adGroupAd", "status"]),
    };
    let id = text(&row, id_path)
        .ok_or_else(|| SourceError::malformed(PLATFORM, format!("{stream} row without {}", id_path.join("."))))?;
    Ok(EntityRecord {
        account_id: account_id.to_string(),
        id,
        name: text(&row, name_path),
        status: text(&row, status_path),
        campaign_id: if stream == "campaigns" { None } else { text(&row, &["campaign", "id"]) },
        ad_group_id: if stream == "ads" { text(&row, &["adGroup", "id"]) } else { None },
        currency: None,
        timezone: None,
        payload: row.to_string(),
    })
}

/// One batch of a searchStream answer, its rows kept as borrowed text.
#[derive(Deserialize)]
pub(super) struct RawBatch<'a> {
    #[serde(borrow, default)]
    pub(super) results: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    pub(super) error: Option<IgnoredAny>,
}

/// The fields of a report row mdp reads (camelCase, nested as Google sends them).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportRow<'a> {
    #[serde(borrow, default)]
    campaign: Option<WithId<'a>>,
    #[serde(borrow, default)]
    ad_group: Option<WithId<'a>>,
    #[serde(borrow, default)]
    ad_group_ad: Option<AdGroupAd<'a>>,
    #[serde(borrow, default)]
    metrics: Option<ReportMetrics<'a>>,
    #[serde(borrow, default)]
    segments: Option<Segments<'a>>,
}

#[derive(Deserialize)]
struct WithId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AdGroupAd<'a> {
    #[serde(borrow, default)]
    ad: Option<WithId<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportMetrics<'a> {
    #[serde(borrow, default)]
    impressions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    clicks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cost_micros: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conversions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conversions_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    all_conversions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    all_conversions_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    video_views: Option<&'a RawValue>,
    #[serde(borrow, default)]
    video_trueview_views: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Segments<'a> {
    #[serde(borrow, default)]
    date: Option<&'a RawValue>,
}

/// A report row read through [`ReportRow`], with the API's own text of the row as payload. int64
/// fields arrive as strings, doubles as numbers; omitted fields are zero.
pub(super) fn performance_record(
    account_id: &str,
    ad_level: bool,
    conversions: GoogleConversionMetric,
    raw: &str,
) -> Result<PerformanceRecord, SourceError> {
    use crate::json::{scalar, Scalar};
    let row: ReportRow<'_> =
        serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("report row: {e}")))?;
    let id = |w: &Option<WithId<'_>>| w.as_ref().and_then(|w| scalar(w.id).text());
    let day = match row.segments.as_ref().map(|s| scalar(s.date)) {
        Some(Scalar::Str(day)) => day,
        _ => return Err(SourceError::malformed(PLATFORM, "report row without segments.date")),
    };
    let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|_| SourceError::malformed(PLATFORM, format!("segments.date {day:?} is not a date")))?;
    let campaign_id =
        id(&row.campaign).ok_or_else(|| SourceError::malformed(PLATFORM, "report row without campaign.id"))?;
    let (ad_group_id, ad_id) = if ad_level {
        let ad = row.ad_group_ad.as_ref().and_then(|a| id(&a.ad));
        let ad_id = ad.ok_or_else(|| SourceError::malformed(PLATFORM, "ad report row without ad_group_ad.ad.id"))?;
        (id(&row.ad_group), Some(ad_id))
    } else {
        (None, None)
    };
    let none = ReportMetrics {
        impressions: None,
        clicks: None,
        cost_micros: None,
        conversions: None,
        conversions_value: None,
        all_conversions: None,
        all_conversions_value: None,
        video_views: None,
        video_trueview_views: None,
    };
    let m = row.metrics.as_ref().unwrap_or(&none);
    // `metrics.video_views` until v21, `metrics.video_trueview_views` from v22.
    let video = scalar(m.video_trueview_views.or(m.video_views));
    let (count_field, value_field) = conversions.fields();
    let (count, value) = match conversions {
        GoogleConversionMetric::Conversions => (m.conversions, m.conversions_value),
        GoogleConversionMetric::AllConversions => (m.all_conversions, m.all_conversions_value),
    };
    let mut notes = crate::json::Normalized::default();
    let mut record = PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: Some(campaign_id),
        ad_group_id,
        ad_id,
        impressions: scalar(m.impressions).integer(PLATFORM, format_args!("metrics.impressions"))?,
        clicks: scalar(m.clicks).integer(PLATFORM, format_args!("metrics.clicks"))?,
        spend: Decimal::new(scalar(m.cost_micros).integer(PLATFORM, format_args!("metrics.cost_micros"))?, 6),
        conversions: scalar(count).decimal(PLATFORM, format_args!("{count_field}"), &mut notes)?,
        conversion_value: scalar(value).decimal(PLATFORM, format_args!("{value_field}"), &mut notes)?,
        video_views: Some(video.integer(PLATFORM, format_args!("metrics.video_views"))?),
        likes: None,
        comments: None,
        shares: None,
        payload: String::new(),
    };
    record.payload = notes.into_payload(raw.to_string());
    Ok(record)
}

#[cfg(test)]
#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use super::*;

    const PRIMARY: GoogleConversionMetric = GoogleConversionMetric::Conversions;

    #[test]
    fn all_conversions_are_read_from_their_own_columns_when_configured() {
        let row = json!({"campaign": {"id": "9"}, "segments": {"date": "2026-06-02"},
            "metrics": {"conversions": 2.0, "conversionsValue": 80.0, "allConversions": 3.5, "allConversionsValue": 85.25}});
        let all = performance_record("1", false, GoogleConversionMetric::AllConversions, &raw(row.clone())).unwrap();
        assert_eq!((all.conversions, all.conversion_value), (dec("3.5"), dec("85.25")));
        let primary = performance_record("1", false, PRIMARY, &raw(row)).unwrap();
        assert_eq!((primary.conversions, primary.conversion_value), (dec("2"), dec("80")));
    }

    fn raw(row: Value) -> String {
        row.to_string()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn ad_rows_parse_string_int64_exact_doubles_and_micros() {
        let row = json!({
            "campaign": {"resourceName": "customers/1/campaigns/2", "id": "2"},
            "adGroup": {"resourceName": "customers/1/adGroups/3", "id": "3"},
            "adGroupAd": {"resourceName": "customers/1/adGroupAds/3~4", "ad": {"resourceName": "customers/1/ads/4", "id": "4"}},
            "metrics": {"impressions": "100", "clicks": "5", "costMicros": "1230000", "conversions": 1.5, "conversionsValue": 45.67, "videoViews": "30"},
            "segments": {"date": "2026-06-01"}
        });
        let r = performance_record("1", true, PRIMARY, &raw(row)).unwrap();
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2026, 6, 1));
        assert_eq!((r.impressions, r.clicks), (100, 5));
        assert_eq!(r.spend, dec("1.23"));
        assert_eq!(r.conversions, dec("1.5"));
        assert_eq!(r.conversion_value, dec("45.67"));
        assert_eq!(
            (r.campaign_id.as_deref(), r.ad_group_id.as_deref(), r.ad_id.as_deref()),
            (Some("2"), Some("3"), Some("4"))
        );
        assert_eq!((r.video_views, r.likes), (Some(30), None));
    }

    #[test]
    fn omitted_zero_metrics_read_as_zero() {
        let row = json!({"campaign": {"id": "9"}, "metrics": {"impressions": "250", "conversions": 2.0}, "segments": {"date": "2026-06-02"}});
        let r = performance_record("1", false, PRIMARY, &raw(row)).unwrap();
        assert_eq!((r.impressions, r.clicks, r.spend), (250, 0, Decimal::ZERO));
        assert_eq!(r.conversions, dec("2"));
        assert_eq!(r.conversion_value, Decimal::ZERO);
        assert_eq!((r.ad_group_id, r.ad_id, r.video_views), (None, None, Some(0)));
    }

    #[test]
    fn doubles_never_pick_up_float_noise() {
        let row = json!({"campaign": {"id": "9"}, "metrics": {"conversions": 0.1, "conversionsValue": 1e-7}, "segments": {"date": "2026-06-02"}});
        let r = performance_record("1", false, PRIMARY, &raw(row)).unwrap();
        assert_eq!(r.conversions, dec("0.1"));
        assert_eq!(r.conversion_value, dec("0.0000001"));
    }

    #[test]
    fn a_bad_metric_is_reported_not_zeroed() {
        let row =
            json!({"campaign": {"id": "9"}, "metrics": {"costMicros": "12.5"}, "segments": {"date": "2026-06-02"}});
        assert!(matches!(performance_record("1", false, PRIMARY, &raw(row)), Err(SourceError::Malformed { .. })));
    }

    #[test]
    fn entities_read_nested_ids_and_parents() {
        let row = json!({"adGroupAd": {"ad": {"id": "4", "name": "Ad"}, "status": "REMOVED"}, "adGroup": {"id": "3"}, "campaign": {"id": "2"}});
        let e = entity_record("ads", "1", row).unwrap();
        assert_eq!((e.id.as_str(), e.status.as_deref()), ("4", Some("REMOVED")));
        assert_eq!((e.campaign_id.as_deref(), e.ad_group_id.as_deref()), (Some("2"), Some("3")));
    }
}
