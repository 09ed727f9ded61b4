//! The `insights` edge: the query's parameters checked as Meta checks them, and its daily rows
//! rendered (every number a string, conversions under overlapping action types).

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{Months, NaiveDate};
use serde_json::Value;

use super::paging::{decode_cursor_at, fingerprint, page_body, page_window};
use super::{
    ad_effective_status, bad_param, error, fields, money, status_list, EFFECTIVE_STATUSES, INSIGHTS_FIELDS,
    MAX_MONTHS_BACK, MAX_QUERY_CELLS,
};
use crate::conversions::{meta_action, META_LEAD_TYPES, META_PURCHASE_TYPES};
use crate::json::{json_int, json_key, json_str};
use crate::world::{Account, Metrics, Unit};
use crate::Sandbox;
use mdp_core::platforms::meta_ads::ATTRIBUTION_WINDOWS;

/// One page of an insights query: only the page's rows (and one more, to know whether there is a next
/// page) are computed and rendered; an `after` cursor this sandbox wrote says at which (day, ad) the
/// page starts, so the rows before it are not computed again.
pub(super) fn insights_page(
    sandbox: &Sandbox,
    account: &Account,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
) -> Result<Vec<u8>, Response> {
    let query = insights_query(sandbox, account, params)?;
    let (start, limit) = page_window(params, query.print)?;
    let resume = params.get("after").and_then(|after| decode_cursor_at(after, query.print)).and_then(|(_, at)| at);
    let version = sandbox.version();
    let mut data = Vec::with_capacity(limit * 600);
    // Rows with delivery seen so far: the cursor's position is the row at `start`.
    let (mut index, (first_day, first_unit)) = match resume {
        Some(at) => (start, at),
        None => (0, (0, 0)),
    };
    let mut more = None;
    let days = query.since.iter_days().take_while(|d| *d <= query.until).enumerate().skip(first_day);
    'days: for (d, day) in days {
        let skip = if d == first_day { first_unit } else { 0 };
        for (u, unit) in query.units.iter().enumerate().skip(skip) {
            let m = sandbox.world.unit_metrics(account, unit, day, version);
            if m.is_zero() {
                continue; // Meta leaves out rows without delivery
            }
            if index >= start.saturating_add(limit) {
                more = Some((d, u));
                break 'days;
            }
            if index >= start {
                if index > start {
                    data.push(b',');
                }
                insights_row(&mut data, account, unit, day, &m, &query.fields, &query.windows);
            }
            index += 1;
        }
    }
    let start = start.min(index);
    let end = start.saturating_add(limit).min(index);
    Ok(page_body(&data, start, end, more.is_some(), more, query.print, headers, path, raw_query))
}

/// What an insights query selects: its days, ads, fields (each once; dates come last) and cursor fingerprint.
struct InsightsQuery<'a> {
    since: NaiveDate,
    until: NaiveDate,
    units: Vec<Unit<'a>>,
    fields: Vec<String>,
    /// `action_attribution_windows`: each action also carries its value in these windows.
    windows: Vec<String>,
    print: u64,
}

fn insights_query<'a>(
    sandbox: &'a Sandbox,
    account: &'a Account,
    params: &HashMap<String, String>,
) -> Result<InsightsQuery<'a>, Response> {
    let param = |name: &str| params.get(name).map(String::as_str);
    if param("level") != Some("ad") {
        return Err(bad_param("The sandbox serves level=ad insights only (param level)"));
    }
    if param("time_increment") != Some("1") {
        return Err(bad_param("The sandbox serves daily insights only: time_increment must be 1"));
    }
    if param("date_preset").is_some() {
        return Err(bad_param("The sandbox serves time_range queries, not date_preset"));
    }
    if let Some(b) = param("breakdowns") {
        if b != "[]" && !b.is_empty() {
            return Err(bad_param("The sandbox serves no breakdowns"));
        }
    }
    if let Some(v) = param("use_unified_attribution_setting") {
        if v != "true" && v != "false" {
            return Err(bad_param("Param use_unified_attribution_setting must be a boolean"));
        }
    }
    let fields = fields(params, INSIGHTS_FIELDS, "AdsInsights")?;
    if let Some(field) = sandbox.retired_field(super::PLATFORM, fields.iter().map(String::as_str)) {
        return Err(bad_param(&format!("Tried accessing nonexisting field ({field}) on node type (AdsInsights)")));
    }
    let windows = attribution_windows(param("action_attribution_windows"))?;
    let raw_range =
        param("time_range").ok_or_else(|| bad_param("The sandbox needs a time_range (JSON with since and until)"))?;
    let range: Value =
        serde_json::from_str(raw_range).map_err(|_| bad_param("param time_range must be a JSON object"))?;
    let date = |key: &str| range[key].as_str().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(since), Some(until)) = (date("since"), date("until")) else {
        return Err(bad_param(
            "param time_range must be an object with 'since' and 'until' dates formatted YYYY-MM-DD",
        ));
    };
    if until < since {
        return Err(bad_param("param time_range: since must be on or before until"));
    }
    let today = sandbox.world.today;
    if today.checked_sub_months(Months::new(MAX_MONTHS_BACK)).is_some_and(|limit| since < limit) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            3018,
            None,
            "(#3018) The start date of the time range cannot be beyond 37 months from the current date",
        ));
    }
    // Which ads: without a filter, `level=ad` leaves out deleted and archived ads.
    let mut wanted: Vec<String> =
        EFFECTIVE_STATUSES.iter().filter(|s| !matches!(**s, "DELETED" | "ARCHIVED")).map(|s| s.to_string()).collect();
    if let Some(raw) = param("filtering") {
        let filters: Value =
            serde_json::from_str(raw).map_err(|_| bad_param("param filtering must be a JSON array"))?;
        for f in filters.as_array().ok_or_else(|| bad_param("param filtering must be a JSON array"))? {
            let field = f["field"].as_str().unwrap_or_default();
            let op = f["operator"].as_str().unwrap_or_default();
            if field != "ad.effective_status" || op != "IN" {
                return Err(bad_param(&format!(
                    "Filtering field {field} with operation {op} is not supported by the sandbox"
                )));
            }
            wanted = status_list(&f["value"], "filtering.value")?;
        }
    }
    let units: Vec<Unit<'_>> = sandbox
        .world
        .units(account)
        .filter(|u| u.ad.is_some() && wanted.iter().any(|w| w == ad_effective_status(u)))
        .collect();
    let days = (until - since).num_days() as usize + 1;
    if days * units.len() > MAX_QUERY_CELLS {
        return Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            1,
            Some(99),
            "Please reduce the amount of data you're asking for, then retry your request",
        ));
    }
    let print = fingerprint(&[
        &account.id,
        "insights",
        param("fields").unwrap_or(""),
        raw_range,
        param("filtering").unwrap_or(""),
        param("level").unwrap_or(""),
        param("action_attribution_windows").unwrap_or(""),
    ]);
    // A field named twice is one key of the row; the dates are always written, last.
    let mut once: Vec<String> = Vec::new();
    for f in fields {
        if f != "date_start" && f != "date_stop" && !once.contains(&f) {
            once.push(f);
        }
    }
    Ok(InsightsQuery { since, until, units, fields: once, windows, print })
}

/// `action_attribution_windows`: a JSON array of windows. `default` is the ad set's setting (the
/// entries' `value`); 7d_view and 28d_view are accepted but, since 2026-01-12, no longer returned.
fn attribution_windows(raw: Option<&str>) -> Result<Vec<String>, Response> {
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let list: Vec<String> = serde_json::from_str(raw)
        .map_err(|_| bad_param("param action_attribution_windows must be a JSON array of strings"))?;
    let mut windows = Vec::new();
    for window in list {
        match window.as_str() {
            "default" | "7d_view" | "28d_view" => {}
            known if ATTRIBUTION_WINDOWS.contains(&known) => windows.push(window),
            other => {
                return Err(bad_param(&format!(
                    "Param action_attribution_windows[{other}] must be one of {{1d_view, 7d_view, 28d_view, 1d_click, \
                     7d_click, 28d_click, 1d_ev, dda, default}}"
                )))
            }
        }
    }
    Ok(windows)
}

/// One entry of `actions` / `action_values`: its type, its value under each ad set's own attribution
/// setting, and its value in each requested window (zero windows are left out, as Meta does).
struct Action {
    action_type: &'static str,
    value: String,
    windows: Vec<(&'static str, String)>,
}

/// Write an array of `{"action_type", "value", <window>...}` objects.
fn write_actions(buf: &mut Vec<u8>, list: &[Action]) {
    buf.push(b'[');
    for (i, action) in list.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"action_type\":");
        json_str(buf, action.action_type);
        buf.extend_from_slice(b",\"value\":");
        json_str(buf, &action.value);
        for (window, value) in &action.windows {
            buf.push(b',');
            json_key(buf, window);
            json_str(buf, value);
        }
        buf.push(b'}');
    }
    buf.push(b']');
}

/// The `actions` of a row: purchases under three overlapping types (a pixel purchase is also a
/// `purchase` and an `omni_purchase`), leads under two, each with its requested attribution windows,
/// plus engagement actions that are not conversions.
fn actions(m: &Metrics, windows: &[String]) -> Vec<Action> {
    let link_clicks = link_clicks(m);
    let engagement = m.likes + m.comments + m.shares + link_clicks;
    let mut out = Vec::new();
    let count = |out: &mut Vec<Action>, action_type: &'static str, n: i64| {
        if n > 0 {
            out.push(Action { action_type, value: n.to_string(), windows: Vec::new() });
        }
    };
    count(&mut out, "comment", m.comments);
    count(&mut out, "link_click", link_clicks);
    count(&mut out, "post", m.shares);
    count(&mut out, "post_reaction", m.likes);
    count(&mut out, "video_view", m.video_views);
    count(&mut out, "post_engagement", engagement + m.video_views);
    count(&mut out, "page_engagement", engagement + m.video_views);
    count(&mut out, "landing_page_view", link_clicks * 9 / 10);
    conversions(&mut out, m, windows, |(count, _)| count.to_string(), |_| true);
    out
}

/// The conversion entries (purchases, then leads) of `actions` (`render` picks the count) or of
/// `action_values` (the value, in the account's currency).
fn conversions(
    out: &mut Vec<Action>,
    m: &Metrics,
    windows: &[String],
    render: impl Fn((i64, i64)) -> String,
    keep: impl Fn((i64, i64)) -> bool,
) {
    for &action_type in META_PURCHASE_TYPES.iter().chain(META_LEAD_TYPES) {
        let default = meta_action(m, action_type, None);
        if default.0 == 0 || !keep(default) {
            continue;
        }
        let windows = windows
            .iter()
            .filter_map(|window| {
                let name = ATTRIBUTION_WINDOWS.iter().find(|w| **w == window.as_str())?;
                let counted = meta_action(m, action_type, Some(name));
                (counted.0 > 0).then(|| (*name, render(counted)))
            })
            .collect();
        out.push(Action { action_type, value: render(default), windows });
    }
}

fn link_clicks(m: &Metrics) -> i64 {
    m.clicks - m.clicks / 10
}

/// Write a number as Meta does: a JSON string.
fn num_str(buf: &mut Vec<u8>, n: i64) {
    buf.push(b'"');
    json_int(buf, n);
    buf.push(b'"');
}

fn fmt_str(buf: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    buf.push(b'"');
    buf.write_fmt(args).expect("writing to a Vec");
    buf.push(b'"');
}

/// Write one insights row; `fields` are unique and hold no dates.
fn insights_row(
    buf: &mut Vec<u8>,
    account: &Account,
    unit: &Unit<'_>,
    day: NaiveDate,
    m: &Metrics,
    fields: &[String],
    windows: &[String],
) {
    let (group, ad) = (unit.ad_group.expect("ad units"), unit.ad.expect("ad units"));
    let reach = (m.impressions * 4 / 5).max(1);
    buf.push(b'{');
    for f in fields {
        let mark = buf.len();
        json_key(buf, f);
        match f.as_str() {
            "account_id" => json_str(buf, &account.id),
            "account_name" => json_str(buf, &account.name),
            "account_currency" => json_str(buf, account.currency),
            "campaign_id" => json_str(buf, &unit.campaign.id),
            "campaign_name" => json_str(buf, &unit.campaign.name),
            "adset_id" => json_str(buf, &group.id),
            "adset_name" => json_str(buf, &group.name),
            "ad_id" => json_str(buf, &ad.id),
            "ad_name" => json_str(buf, &ad.name),
            "impressions" => num_str(buf, m.impressions),
            "reach" => num_str(buf, reach),
            "frequency" => fmt_str(buf, format_args!("{:.6}", m.impressions as f64 / reach as f64)),
            "clicks" => num_str(buf, m.clicks),
            "inline_link_clicks" => num_str(buf, link_clicks(m)),
            "spend" => json_str(buf, &money(m.spend_micros, account.currency)),
            "cpm" => fmt_str(buf, format_args!("{:.6}", m.spend_micros as f64 / 1000.0 / m.impressions.max(1) as f64)),
            "cpc" if m.clicks > 0 => fmt_str(buf, format_args!("{:.6}", m.spend_micros as f64 / 1e6 / m.clicks as f64)),
            "ctr" => fmt_str(buf, format_args!("{:.6}", m.clicks as f64 * 100.0 / m.impressions.max(1) as f64)),
            "actions" => {
                let a = actions(m, windows);
                if a.is_empty() {
                    buf.truncate(mark);
                    continue;
                }
                write_actions(buf, &a);
            }
            "action_values" => {
                let mut values = Vec::new();
                conversions(
                    &mut values,
                    m,
                    windows,
                    |(_, value)| money(value, account.currency),
                    |(_, value)| value > 0,
                );
                if values.is_empty() {
                    buf.truncate(mark);
                    continue;
                }
                write_actions(buf, &values);
            }
            "video_play_actions" => {
                if m.video_views == 0 {
                    buf.truncate(mark);
                    continue;
                }
                write_actions(
                    buf,
                    &[Action { action_type: "video_view", value: m.video_views.to_string(), windows: Vec::new() }],
                );
            }
            "inline_post_engagement" => num_str(buf, m.likes + m.comments + m.shares + link_clicks(m)),
            _ => {
                // cpc without clicks is left out, as Meta does
                buf.truncate(mark);
                continue;
            }
        }
        buf.push(b',');
    }
    buf.extend_from_slice(b"\"date_start\":");
    fmt_str(buf, format_args!("{day}"));
    buf.extend_from_slice(b",\"date_stop\":");
    fmt_str(buf, format_args!("{day}"));
    buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_appear_under_overlapping_types_next_to_engagement() {
        let m = Metrics {
            clicks: 50,
            impressions: 1000,
            conversions_micros: 2_000_000,
            likes: 3,
            video_views: 10,
            ..Default::default()
        };
        let a = actions(&m, &[]);
        let of = |t: &str| a.iter().find(|x| x.action_type == t).map(|x| x.value.clone());
        assert_eq!(of("offsite_conversion.fb_pixel_purchase").as_deref(), Some("2"));
        assert_eq!(of("purchase").as_deref(), Some("2"));
        assert_eq!(of("post_reaction").as_deref(), Some("3"));
        assert_eq!(of("comment"), None, "zero actions are left out");
    }

    #[test]
    fn requested_windows_ride_on_the_conversion_entries_only() {
        let m = Metrics {
            clicks: 80,
            conversions_micros: 4_000_000,
            view_through_conversions: 1,
            late_conversions_micros: 1_000_000,
            price_micros: 10_000_000,
            leads: 2,
            lead_value_micros: 10_000_000,
            ..Default::default()
        };
        let windows = ["1d_click".to_string(), "1d_view".to_string()];
        let a = actions(&m, &windows);
        let of = |t: &str| a.iter().find(|x| x.action_type == t).unwrap();
        assert_eq!(of("purchase").value, "4");
        assert_eq!(of("purchase").windows, [("1d_click", "2".to_string()), ("1d_view", "1".to_string())]);
        assert_eq!(of("lead").windows, [("1d_click", "2".to_string())], "no lead comes from a view");
        assert!(of("link_click").windows.is_empty());
        let mut body = Vec::new();
        write_actions(&mut body, &a[a.len() - 1..]);
        assert_eq!(String::from_utf8(body).unwrap(), r#"[{"action_type":"lead","value":"2","1d_click":"2"}]"#);
        assert!(attribution_windows(Some(r#"["7d_click","bogus"]"#)).is_err());
        assert_eq!(attribution_windows(Some(r#"["7d_view","default","1d_ev"]"#)).unwrap(), ["1d_ev"]);
    }
}
