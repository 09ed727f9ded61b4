//! `adAnalytics`: the request checked as LinkedIn checks it, and one element per creative and UTC day
//! with activity, with only the fields asked for: `q=analytics&pivot=CREATIVE`, or
//! `q=statistics&pivots=List(CREATIVE,CONVERSION)` — one element per creative, conversion rule and day
//! with conversions, `pivotValues` in the order of `pivots` (`urn:lla:llaPartnerConversion:{id}` for a
//! rule). LinkedIn does not document what delivery metrics mean per conversion rule; the sandbox
//! refuses them beside the CONVERSION pivot, so no connector comes to rely on them.

use std::io::Write;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{Datelike, NaiveDate};

use super::restli::{param, parse_accounts, parse_date_range, parse_restli, percent_decode, query_pairs};
use super::{bad_request, finish_text, guard, money, money_as_printed, usd_micros, MAX_FIELDS, METRICS, PLATFORM};
use crate::conversions::{linkedin_value, LinkedInRule};
use crate::json::{into_text, json_int, json_key, json_str};
use crate::world::Metrics;
use crate::Sandbox;

pub(super) async fn analytics(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let fault = match guard(&sandbox, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let request = match AnalyticsRequest::parse(raw.as_deref(), sandbox.world.today) {
        Ok(r) => r,
        Err(e) => return bad_request(&e),
    };
    if let Some(field) = sandbox.retired_field(PLATFORM, request.fields.iter().map(String::as_str)) {
        return bad_request(&format!("fields: {field} is not a valid field of AdAnalytics"));
    }
    let version = sandbox.version();
    let world = &sandbox.world;
    let by_rule = request.pivots.contains(&Pivot::Conversion);
    let mut elements: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut count = 0usize;
    for account_id in &request.accounts {
        // LinkedIn answers an empty report for accounts the token cannot read.
        let Some(account) = world.account(PLATFORM, account_id) else { continue };
        let units: Vec<_> = world.units(account).filter(|u| u.ad.is_some()).collect();
        for day in request.start.iter_days().take_while(|d| *d <= request.end) {
            for unit in &units {
                let Some(ad) = unit.ad else { continue };
                let m = world.unit_metrics(account, unit, day, version);
                if m.is_zero() {
                    continue; // no activity, no element
                }
                // One row per creative-day, or one per conversion rule with conversions on it.
                let rows: Vec<Option<LinkedInRule>> = if by_rule {
                    LinkedInRule::ALL
                        .into_iter()
                        .filter(|rule| rule.metric(&m, "externalWebsiteConversions").unwrap_or(0) > 0)
                        .map(Some)
                        .collect()
                } else {
                    vec![None]
                };
                for rule in rows {
                    if count > 0 {
                        elements.push(b',');
                    }
                    count += 1;
                    write_element(&mut elements, &request, day, ad.id.as_str(), rule, &m, account.currency);
                }
            }
        }
    }
    let mut body: Vec<u8> = Vec::with_capacity(elements.len() + 128);
    body.extend_from_slice(b"{\"elements\":[");
    body.extend_from_slice(&elements);
    write!(body, "],\"paging\":{{\"start\":0,\"count\":{count},\"links\":[]}}}}").expect("writing to a Vec");
    finish_text(into_text(body), fault)
}

/// Write one element: the fields asked for, in their order.
fn write_element(
    elements: &mut Vec<u8>,
    request: &AnalyticsRequest,
    day: NaiveDate,
    creative: &str,
    rule: Option<LinkedInRule>,
    m: &Metrics,
    currency: &str,
) {
    elements.push(b'{');
    for (i, field) in request.fields.iter().enumerate() {
        if i > 0 {
            elements.push(b',');
        }
        json_key(elements, field);
        match field.as_str() {
            "dateRange" => {
                let (y, mo, d) = (day.year(), day.month(), day.day());
                write!(
                    elements,
                    "{{\"start\":{{\"year\":{y},\"month\":{mo},\"day\":{d}}},\"end\":{{\"year\":{y},\"month\":{mo},\"day\":{d}}}}}"
                )
                .expect("writing to a Vec");
            }
            "pivotValues" => {
                elements.push(b'[');
                for (i, pivot) in request.pivots.iter().enumerate() {
                    if i > 0 {
                        elements.push(b',');
                    }
                    let urn = match (pivot, rule) {
                        (Pivot::Creative, _) => format!("urn:li:sponsoredCreative:{creative}"),
                        (Pivot::Conversion, Some(rule)) => format!("urn:lla:llaPartnerConversion:{}", rule.id()),
                        (Pivot::Conversion, None) => unreachable!("rows of the CONVERSION pivot have a rule"),
                    };
                    json_str(elements, &urn);
                }
                elements.push(b']');
            }
            metric => {
                let ok = match rule {
                    Some(rule) => write_rule_metric(elements, metric, rule, m),
                    None => write_metric(elements, metric, m, currency),
                };
                debug_assert!(ok, "fields were validated");
            }
        }
    }
    elements.push(b'}');
}

/// A conversion field of one rule's row.
fn write_rule_metric(buf: &mut Vec<u8>, name: &str, rule: LinkedInRule, m: &Metrics) -> bool {
    if name == "conversionValueInLocalCurrency" {
        json_str(buf, &crate::micros_to_decimal(rule.value(m)));
        return true;
    }
    match rule.metric(m, name) {
        Some(n) => {
            json_int(buf, n);
            true
        }
        None => false,
    }
}

/// Write one metric of one creative-day, as LinkedIn renders it (counts as JSON integers, money as
/// strings); `false`: not a metric the sandbox serves.
fn write_metric(buf: &mut Vec<u8>, name: &str, m: &Metrics, currency: &str) -> bool {
    if let Some(n) = crate::conversions::linkedin_metric(m, name) {
        json_int(buf, n);
        return true;
    }
    let n = match name {
        "impressions" => m.impressions,
        "clicks" | "landingPageClicks" => m.clicks,
        "costInLocalCurrency" => {
            json_str(buf, &money_as_printed(m.spend_micros, currency));
            return true;
        }
        "costInUsd" => {
            json_str(buf, &money(usd_micros(m.spend_micros, currency), "USD"));
            return true;
        }
        "conversionValueInLocalCurrency" => {
            json_str(buf, &crate::micros_to_decimal(linkedin_value(m, &LinkedInRule::ALL)));
            return true;
        }
        "oneClickLeadFormOpens" => m.leads * 3,
        "actionClicks" | "otherEngagements" => 0,
        "videoViews" | "videoStarts" => m.video_views,
        "videoCompletions" => m.video_views / 4,
        "likes" | "reactions" => m.likes,
        "comments" => m.comments,
        "shares" => m.shares,
        "follows" => m.clicks / 100,
        "totalEngagements" => m.clicks + m.likes + m.comments + m.shares + m.clicks / 100,
        "companyPageClicks" => m.clicks / 50,
        "approximateMemberReach" => m.impressions * 2 / 3,
        _ => return false,
    };
    json_int(buf, n);
    true
}

/// What a report row is per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pivot {
    Creative,
    Conversion,
}

/// The fields that mean something per conversion rule.
const CONVERSION_FIELDS: &[&str] = &[
    "externalWebsiteConversions",
    "externalWebsitePostClickConversions",
    "externalWebsitePostViewConversions",
    "conversionValueInLocalCurrency",
];

/// A parsed, validated `adAnalytics` request.
#[derive(Debug, PartialEq)]
pub(crate) struct AnalyticsRequest {
    /// In the order of `pivots` (the order of `pivotValues`).
    pub pivots: Vec<Pivot>,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub accounts: Vec<String>,
    pub fields: Vec<String>,
}

impl AnalyticsRequest {
    pub(crate) fn parse(raw: Option<&str>, today: NaiveDate) -> Result<AnalyticsRequest, String> {
        let pairs = query_pairs(raw)?;
        let decoded = |name: &str| param(&pairs, name).map(percent_decode).transpose();
        let pivots = match decoded("q")?.as_deref() {
            Some("analytics") => {
                if param(&pairs, "pivots").is_some() {
                    return Err(
                        "pivots: q=analytics takes one pivot (pivot=…); q=statistics takes pivots=List(…)".into()
                    );
                }
                if decoded("pivot")?.as_deref() != Some("CREATIVE") {
                    return Err("pivot: the sandbox serves pivot=CREATIVE with q=analytics".into());
                }
                vec![Pivot::Creative]
            }
            Some("statistics") => {
                if param(&pairs, "pivot").is_some() {
                    return Err("pivot: q=statistics takes pivots=List(…) (up to 3)".into());
                }
                let raw = param(&pairs, "pivots")
                    .ok_or("pivots: required with q=statistics, e.g. List(CREATIVE,CONVERSION)")?;
                let list = parse_restli(raw)?;
                let names: Vec<&str> =
                    list.as_list().ok_or("pivots must be List(…)")?.iter().filter_map(|p| p.as_str()).collect();
                let pivots: Vec<Pivot> = names
                    .iter()
                    .map(|name| match *name {
                        "CREATIVE" => Ok(Pivot::Creative),
                        "CONVERSION" => Ok(Pivot::Conversion),
                        other => Err(format!("pivots: the sandbox serves CREATIVE and CONVERSION, not {other}")),
                    })
                    .collect::<Result<_, _>>()?;
                if pivots.len() != 2 || !pivots.contains(&Pivot::Creative) || !pivots.contains(&Pivot::Conversion) {
                    return Err("pivots: the sandbox serves q=statistics with pivots=List(CREATIVE,CONVERSION)".into());
                }
                pivots
            }
            _ => return Err("q: required, q=analytics or q=statistics".into()),
        };
        if decoded("timeGranularity")?.as_deref() != Some("DAILY") {
            return Err("timeGranularity: the sandbox serves timeGranularity=DAILY".into());
        }
        let (start, end) = parse_date_range(param(&pairs, "dateRange").ok_or("dateRange: required")?, today)?;
        let accounts = parse_accounts(param(&pairs, "accounts").ok_or("accounts: required")?)?;
        let fields: Vec<String> = match param(&pairs, "fields") {
            // Without `fields` LinkedIn returns impressions and clicks only.
            None => vec!["impressions".into(), "clicks".into()],
            Some(raw) => raw.split(',').map(percent_decode).collect::<Result<_, _>>()?,
        };
        if fields.len() > MAX_FIELDS {
            return Err(format!(
                "Too many fields requested: {} (at most {MAX_FIELDS}, dateRange and pivotValues included); split the request",
                fields.len()
            ));
        }
        for (i, field) in fields.iter().enumerate() {
            if fields[..i].contains(field) {
                return Err(format!("fields: {field} is requested twice"));
            }
            if field != "dateRange" && field != "pivotValues" && !METRICS.contains(&field.as_str()) {
                return Err(format!("fields: {field} is not a valid field of AdAnalytics"));
            }
            let key = field == "dateRange" || field == "pivotValues";
            if pivots.contains(&Pivot::Conversion) && !key && !CONVERSION_FIELDS.contains(&field.as_str()) {
                return Err(format!(
                    "fields: {field} is not served per conversion (the sandbox serves {} with the CONVERSION pivot)",
                    CONVERSION_FIELDS.join(", ")
                ));
            }
        }
        Ok(AnalyticsRequest { pivots, start, end, accounts, fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    #[test]
    fn analytics_requests_are_checked_like_linkedin() {
        let base = "q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:(year:2026,month:6,day:1),end:(year:2026,month:6,day:2))&accounts=List(urn%3Ali%3AsponsoredAccount%3A9)";
        let ok = AnalyticsRequest::parse(
            Some(&format!("{base}&fields=dateRange,pivotValues,impressions,costInLocalCurrency")),
            today(),
        )
        .unwrap();
        assert_eq!(ok.fields, ["dateRange", "pivotValues", "impressions", "costInLocalCurrency"]);
        assert_eq!(ok.accounts, ["9"]);
        let twenty_one: Vec<&str> =
            ["dateRange", "pivotValues"].into_iter().chain(METRICS.iter().copied().take(19)).collect();
        let error =
            AnalyticsRequest::parse(Some(&format!("{base}&fields={}", twenty_one.join(","))), today()).unwrap_err();
        assert!(error.contains("Too many fields"), "{error}");
        let twenty = &twenty_one[..20];
        assert!(AnalyticsRequest::parse(Some(&format!("{base}&fields={}", twenty.join(","))), today()).is_ok());
        assert!(AnalyticsRequest::parse(Some(&format!("{base}&fields=spend")), today()).is_err(), "unknown field");
        assert!(AnalyticsRequest::parse(Some(&base.replace("CREATIVE", "CAMPAIGN")), today()).is_err());
        assert!(AnalyticsRequest::parse(Some(&base.replace("DAILY", "ALL")), today()).is_err());
        assert!(AnalyticsRequest::parse(Some(&format!("{base}&q=analytics")), today()).is_err(), "repeated parameter");

        let statistics = base.replace("q=analytics&pivot=CREATIVE", "q=statistics&pivots=List(CREATIVE,CONVERSION)");
        let by_rule = AnalyticsRequest::parse(
            Some(&format!("{statistics}&fields=dateRange,pivotValues,externalWebsiteConversions")),
            today(),
        )
        .unwrap();
        assert_eq!(by_rule.pivots, [Pivot::Creative, Pivot::Conversion]);
        let delivery = AnalyticsRequest::parse(Some(&format!("{statistics}&fields=impressions")), today()).unwrap_err();
        assert!(delivery.contains("not served per conversion"), "{delivery}");
        let single = base.replace("pivot=CREATIVE", "pivot=CONVERSION");
        assert!(AnalyticsRequest::parse(Some(&single), today()).is_err(), "q=analytics serves CREATIVE only");
        let mixed = statistics.replace("pivots=", "pivot=CREATIVE&pivots=");
        assert!(AnalyticsRequest::parse(Some(&mixed), today()).unwrap_err().contains("q=statistics takes pivots"));
    }
}
