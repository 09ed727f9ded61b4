//! Reading Meta's rows: insights rows through borrowed typed structs (numbers are strings; conversions
//! and their value are the sums of the configured action types in `actions` / `action_values`), entity
//! rows from their JSON.

use std::borrow::Cow;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::PLATFORM;
use crate::error::SourceError;
use crate::json::Normalized;
use crate::record::{EntityRecord, PerformanceRecord};
use mdp_core::MetaAdsOptions;

/// Engagement action types mapped to the standard columns.
const VIDEO_VIEW: &str = "video_view";
const LIKE: &str = "post_reaction";
const COMMENT: &str = "comment";
const SHARE: &str = "post";

pub(super) fn text(v: &Value, key: &str) -> Option<String> {
    crate::json::text(&v[key])
}

fn to_integer(d: Decimal, what: &str) -> Result<i64, SourceError> {
    crate::json::whole_number(PLATFORM, what, d)
}

/// The fields of an insights row mdp reads; every other field stays in the payload.
#[derive(Deserialize)]
struct InsightsRow<'a> {
    #[serde(borrow, default)]
    date_start: Option<&'a RawValue>,
    #[serde(borrow, default)]
    date_stop: Option<&'a RawValue>,
    #[serde(borrow, default)]
    campaign_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    adset_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ad_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    impressions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    clicks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spend: Option<&'a RawValue>,
    #[serde(borrow, default)]
    actions: Option<Vec<RawAction<'a>>>,
    #[serde(borrow, default)]
    action_values: Option<Vec<RawAction<'a>>>,
}

#[derive(Deserialize)]
struct RawAction<'a> {
    #[serde(borrow, default)]
    action_type: Option<Cow<'a, str>>,
    /// Under each ad set's own attribution setting.
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    // The value in each attribution window asked for with `action_attribution_windows` (absent: zero).
    #[serde(borrow, default, rename = "1d_click")]
    click_1d: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "7d_click")]
    click_7d: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "28d_click")]
    click_28d: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "1d_view")]
    view_1d: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "1d_ev")]
    engaged_view_1d: Option<&'a RawValue>,
}

impl<'a> RawAction<'a> {
    /// The values to add up: `value`, or one per window (each named as it is in the row).
    fn values(&self, windows: &[String]) -> Vec<(Option<&'a RawValue>, &'static str)> {
        if windows.is_empty() {
            return vec![(self.value, "value")];
        }
        windows
            .iter()
            .filter_map(|window| match window.as_str() {
                "1d_click" => Some((self.click_1d, "1d_click")),
                "7d_click" => Some((self.click_7d, "7d_click")),
                "28d_click" => Some((self.click_28d, "28d_click")),
                "1d_view" => Some((self.view_1d, "1d_view")),
                "1d_ev" => Some((self.engaged_view_1d, "1d_ev")),
                _ => None, // refused when mdp.yml loaded
            })
            .collect()
    }
}

/// The sum of the listed actions' values (`value`, or the values in `windows`). With `notes`, values
/// are amounts (read as [`Scalar::decimal`](crate::json::Scalar::decimal) reads them); without,
/// counts (exact as written).
fn sum_raw_actions(
    list: Option<&[RawAction<'_>]>,
    name: &str,
    types: &[impl AsRef<str>],
    windows: &[String],
    mut notes: Option<&mut Normalized>,
) -> Result<Decimal, SourceError> {
    let mut total = Decimal::ZERO;
    for action in list.unwrap_or_default() {
        let Some(action_type) = action.action_type.as_deref() else { continue };
        if types.iter().any(|t| t.as_ref() == action_type) {
            for (value, key) in action.values(windows) {
                let value = crate::json::scalar(value);
                let what = format_args!("{name}[{action_type}].{key}");
                total += match notes.as_deref_mut() {
                    Some(notes) => value.decimal(PLATFORM, what, notes)?,
                    None => value.count_decimal(PLATFORM, what)?,
                };
            }
        }
    }
    Ok(total)
}

/// An insights row read through [`InsightsRow`]; the payload is the API's own text of the row.
/// Conversions and their value are the sums of the configured action types (each entry counts once,
/// so overlapping types only add up if both are configured), in the configured attribution windows.
pub(super) fn performance_record(
    account_id: &str,
    raw: &str,
    conversions: &MetaAdsOptions,
) -> Result<PerformanceRecord, SourceError> {
    let (conversion_types, windows) = (&conversions.conversion_action_types, &conversions.attribution_windows);
    let row: InsightsRow<'_> =
        serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("insights row: {e}")))?;
    use crate::json::{scalar, Scalar};
    let Scalar::Str(day) = scalar(row.date_start) else {
        return Err(SourceError::malformed(PLATFORM, "insights row without date_start"));
    };
    let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|_| SourceError::malformed(PLATFORM, format!("date_start {day:?} is not a date")))?;
    if let Scalar::Str(stop) = scalar(row.date_stop) {
        if stop != day {
            return Err(SourceError::malformed(
                PLATFORM,
                format!("a daily row spans {day}..{stop} (time_increment=1 was not applied)"),
            ));
        }
    }
    let actions = row.actions.as_deref();
    let count =
        |action_type: &str| to_integer(sum_raw_actions(actions, "actions", &[action_type], &[], None)?, action_type);
    let mut notes = Normalized::default();
    let mut record = PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: scalar(row.campaign_id).text(),
        ad_group_id: scalar(row.adset_id).text(),
        ad_id: scalar(row.ad_id).text(),
        impressions: scalar(row.impressions).integer(PLATFORM, format_args!("impressions"))?,
        clicks: scalar(row.clicks).integer(PLATFORM, format_args!("clicks"))?,
        spend: scalar(row.spend).decimal(PLATFORM, format_args!("spend"), &mut notes)?,
        conversions: sum_raw_actions(actions, "actions", conversion_types, windows, Some(&mut notes))?,
        conversion_value: sum_raw_actions(
            row.action_values.as_deref(),
            "action_values",
            conversion_types,
            windows,
            Some(&mut notes),
        )?,
        video_views: Some(count(VIDEO_VIEW)?),
        likes: Some(count(LIKE)?),
        comments: Some(count(COMMENT)?),
        shares: Some(count(SHARE)?),
        payload: String::new(),
    };
    record.payload = notes.into_payload(raw.to_string());
    Ok(record)
}

/// `account_status` numbers as Meta documents them.
pub(super) fn account_status_name(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "ACTIVE",
        2 => "DISABLED",
        3 => "UNSETTLED",
        7 => "PENDING_RISK_REVIEW",
        8 => "PENDING_SETTLEMENT",
        9 => "IN_GRACE_PERIOD",
        100 => "PENDING_CLOSURE",
        101 => "CLOSED",
        201 => "ANY_ACTIVE",
        202 => "ANY_CLOSED",
        _ => return None,
    })
}

/// An item of the `campaigns`, `adsets` or `ads` edge.
pub(super) fn entity_record(edge: &str, account_id: &str, raw: &str) -> Result<EntityRecord, SourceError> {
    let item: Value =
        serde_json::from_str(raw).map_err(|e| SourceError::malformed(PLATFORM, format!("{edge} item: {e}")))?;
    Ok(EntityRecord {
        account_id: account_id.to_string(),
        id: text(&item, "id").ok_or_else(|| SourceError::malformed(PLATFORM, format!("{edge} item without id")))?,
        name: text(&item, "name"),
        // The object's own status (ACTIVE/PAUSED/DELETED/ARCHIVED); effective_status stays in the payload.
        status: text(&item, "status").or_else(|| text(&item, "effective_status")),
        campaign_id: if edge == "campaigns" { None } else { text(&item, "campaign_id") },
        ad_group_id: if edge == "ads" { text(&item, "adset_id") } else { None },
        currency: None,
        timezone: None,
        payload: raw.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use serde_json::json;

    use super::*;

    fn raw(row: Value) -> String {
        row.to_string()
    }

    fn row() -> Value {
        json!({
            "account_id": "1", "campaign_id": "2", "adset_id": "3", "ad_id": "4",
            "date_start": "2026-06-01", "date_stop": "2026-06-01",
            "impressions": "1000", "clicks": "10", "inline_link_clicks": "9", "spend": "12.34",
            "actions": [
                {"action_type": "link_click", "value": "9"},
                {"action_type": "post_reaction", "value": "3"},
                {"action_type": "comment", "value": "1"},
                {"action_type": "post", "value": "2"},
                {"action_type": "video_view", "value": "300"},
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2"},
                {"action_type": "purchase", "value": "2"},
                {"action_type": "omni_purchase", "value": "2"},
                {"action_type": "offsite_conversion.fb_pixel_lead", "value": "1", "7d_click": "1"}
            ],
            "action_values": [
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "90.5"},
                {"action_type": "purchase", "value": "90.5"},
                {"action_type": "omni_purchase", "value": "90.5"}
            ]
        })
    }

    fn defaults() -> MetaAdsOptions {
        MetaAdsOptions::default()
    }

    #[test]
    fn conversions_sum_only_the_configured_action_types() {
        let r = performance_record("1", &raw(row()), &defaults()).unwrap();
        assert_eq!(
            r.conversions,
            Decimal::from(3),
            "pixel purchase + pixel lead, not purchase/omni_purchase/link_click"
        );
        assert_eq!(r.conversion_value, Decimal::from_str("90.5").unwrap());
        assert_eq!((r.impressions, r.clicks), (1000, 10), "clicks are all clicks, not inline_link_clicks");
        assert_eq!(r.spend, Decimal::from_str("12.34").unwrap());
        assert_eq!((r.video_views, r.likes, r.comments, r.shares), (Some(300), Some(3), Some(1), Some(2)));
        assert_eq!((r.ad_group_id.as_deref(), r.ad_id.as_deref()), (Some("3"), Some("4")));

        let omni = MetaAdsOptions { conversion_action_types: vec!["omni_purchase".to_string()], ..defaults() };
        let r = performance_record("1", &raw(row()), &omni).unwrap();
        assert_eq!((r.conversions, r.conversion_value), (Decimal::from(2), Decimal::from_str("90.5").unwrap()));

        let mut bare = row();
        bare.as_object_mut().unwrap().remove("actions");
        bare.as_object_mut().unwrap().remove("action_values");
        let r = performance_record("1", &raw(bare), &defaults()).unwrap();
        assert_eq!((r.conversions, r.video_views), (Decimal::ZERO, Some(0)), "absent arrays mean none");
    }

    #[test]
    fn attribution_windows_are_summed_per_action_and_absent_windows_are_zero() {
        let row = json!({
            "date_start": "2026-06-01", "date_stop": "2026-06-01", "impressions": "10", "clicks": "1", "spend": "1",
            "actions": [
                {"action_type": "purchase", "value": "5", "7d_click": "3", "1d_view": "2", "1d_click": "2"},
                {"action_type": "lead", "value": "4", "7d_click": "4"},
                {"action_type": "link_click", "value": "9", "7d_click": "9"}
            ],
            "action_values": [{"action_type": "purchase", "value": "50.5", "7d_click": "30.25", "1d_view": "20.25"}]
        });
        let windows = |types: &[&str], windows: &[&str]| MetaAdsOptions {
            conversion_action_types: types.iter().map(|t| t.to_string()).collect(),
            attribution_windows: windows.iter().map(|w| w.to_string()).collect(),
            ..defaults()
        };
        let click_or_view =
            performance_record("1", &raw(row.clone()), &windows(&["purchase", "lead"], &["7d_click", "1d_view"]))
                .unwrap();
        assert_eq!(click_or_view.conversions, Decimal::from(9), "3 + 2 purchases, 4 leads by click, none by view");
        assert_eq!(click_or_view.conversion_value, Decimal::from_str("50.5").unwrap());
        let one_day = performance_record("1", &raw(row.clone()), &windows(&["purchase"], &["1d_click"])).unwrap();
        assert_eq!((one_day.conversions, one_day.conversion_value), (Decimal::from(2), Decimal::ZERO));
        let mut bad = row;
        bad["actions"][0]["7d_click"] = json!("x");
        let error = performance_record("1", &raw(bad), &windows(&["purchase"], &["7d_click"])).unwrap_err().to_string();
        assert!(error.contains("actions[purchase].7d_click"), "{error}");
    }

    #[test]
    fn malformed_rows_are_reported_not_zeroed() {
        let mut bad = row();
        bad["spend"] = json!("abc");
        assert!(matches!(performance_record("1", &raw(bad), &defaults()), Err(SourceError::Malformed { .. })));
        let mut span = row();
        span["date_stop"] = json!("2026-06-30");
        assert!(matches!(performance_record("1", &raw(span), &defaults()), Err(SourceError::Malformed { .. })));
    }
}
