//! LinkedIn Marketing API (versioned `/rest/` endpoints), as documented at
//! learn.microsoft.com/linkedin/marketing: `adAnalytics` (finders `q=analytics` and, for conversions per
//! rule, `q=statistics`), `adAccounts/{id}`, the account's `adCampaignGroups` (`q=search`), `adCampaigns`
//! (`q=search`) and `creatives` (`q=criteria`) finders, and its conversion rules (`conversions?q=account`).
//!
//! What it checks, as LinkedIn does:
//! - headers: `Authorization: Bearer …` (else 401 `INVALID_ACCESS_TOKEN`), `LinkedIn-Version: YYYYMM` in
//!   [`SUPPORTED_VERSIONS`] (missing: 400 `VERSION_MISSING`; sunset or unknown: HTTP 426
//!   `NONEXISTENT_VERSION` "Requested version 20240101 is not active"), `X-Restli-Protocol-Version: 2.0.0`
//!   (else 400: Rest.li 1.0 cannot read `List(…)`);
//! - the query string in Rest.li 2.0 syntax, parsed by hand and strictly: `List(a,b)` and `(k:v,…)`
//!   are literal punctuation, leaves (URNs) are percent-encoded;
//! - `adAnalytics`: `q=analytics`, `pivot=CREATIVE`, `timeGranularity=DAILY`,
//!   `dateRange=(start:(year:…,month:…,day:…),end:(…))`, `accounts=List(urn%3Ali%3AsponsoredAccount%3A…)`,
//!   and `fields` of at most [`MAX_FIELDS`] names — `dateRange` and `pivotValues` count — else HTTP 400,
//!   so a connector must split its metric list and merge the answers.
//!
//! What it answers: no pagination for `adAnalytics` (`paging` without links), only the fields asked for
//! (no `pivotValues` unless requested), one element per creative and UTC day with any activity (none
//! for idle days: an empty `elements`), an unknown or unreadable account gives an empty answer (as
//! LinkedIn does); money as decimal strings (`costInLocalCurrency`, `costInUsd`,
//! `conversionValueInLocalCurrency`), counts as JSON integers. The finders page by cursor
//! (`pageSize` ≤ 1000, default 100; `pageToken` ← `metadata.nextPageToken`, absent on the last page).
//! Errors have LinkedIn's shape `{"status":…,"serviceErrorCode":…,"code":…,"message":…}`.
//!
//! Hierarchy: the world's campaign is a LinkedIn campaign group, its ad group a LinkedIn campaign, its
//! ad a creative (`urn:li:sponsoredCreative:{id}`). LinkedIn ad accounts carry no time zone: report
//! days are UTC days.

mod analytics;
mod restli;

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind};
use crate::world::{zero_decimal, Account, Status};
use crate::Sandbox;
use analytics::analytics;
use restli::{param, parse_restli, percent_decode, query_pairs};

const PLATFORM: Platform = Platform::LinkedInAds;
pub const SUPPORTED_VERSIONS: &[&str] =
    &["202601", "202602", "202603", "202604", "202605", "202606", "202607", "202608", "202609", "202610", "202611"];
/// Most fields one `adAnalytics` request may name (LinkedIn: 20; `dateRange` and `pivotValues` count).
pub const MAX_FIELDS: usize = 20;
const MAX_PAGE_SIZE: usize = 1000;
const DEFAULT_PAGE_SIZE: usize = 100;

/// Every metric the sandbox serves (a subset of LinkedIn's list).
const METRICS: &[&str] = &[
    "impressions",
    "clicks",
    "landingPageClicks",
    "costInLocalCurrency",
    "costInUsd",
    "externalWebsiteConversions",
    "externalWebsitePostClickConversions",
    "externalWebsitePostViewConversions",
    "conversionValueInLocalCurrency",
    "oneClickLeads",
    "oneClickLeadFormOpens",
    "videoViews",
    "videoStarts",
    "videoCompletions",
    "likes",
    "comments",
    "shares",
    "reactions",
    "follows",
    "otherEngagements",
    "totalEngagements",
    "companyPageClicks",
    "actionClicks",
    "approximateMemberReach",
];

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/rest/adAnalytics", get(analytics))
        .route("/rest/adAccounts/{id}", get(ad_account))
        .route("/rest/adAccounts/{id}/adCampaignGroups", get(|s, p, h, q| finder(s, p, h, q, Level::CampaignGroup)))
        .route("/rest/adAccounts/{id}/adCampaigns", get(|s, p, h, q| finder(s, p, h, q, Level::Campaign)))
        .route("/rest/adAccounts/{id}/creatives", get(|s, p, h, q| finder(s, p, h, q, Level::Creative)))
        .route("/rest/conversions", get(conversion_rules))
}

/// `conversions?q=account&account=urn%3Ali%3AsponsoredAccount%3A…`: the account's conversion rules,
/// paged by `start` and `count` (the older Rest.li paging this finder keeps), `paging.total` set.
async fn conversion_rules(
    State(sandbox): State<Arc<Sandbox>>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let fault = match guard(&sandbox, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pairs = match query_pairs(raw.as_deref()) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    if param(&pairs, "q") != Some("account") {
        return bad_request("q: this finder is q=account");
    }
    let account_urn = match param(&pairs, "account").map(percent_decode) {
        Some(Ok(urn)) => urn,
        Some(Err(e)) => return bad_request(&e),
        None => return bad_request("account: required, e.g. urn%3Ali%3AsponsoredAccount%3A123"),
    };
    let Some(id) = account_urn.strip_prefix("urn:li:sponsoredAccount:") else {
        return bad_request(&format!("account: {account_urn} is not a sponsoredAccount URN"));
    };
    let Some(account) = sandbox.world.account(PLATFORM, id) else {
        return li_error(StatusCode::NOT_FOUND, "NOT_FOUND", Some(100), &format!("Not found: {account_urn}"));
    };
    let number = |name: &str, default: usize| param(&pairs, name).map_or(Ok(default), |v| v.parse::<usize>());
    let (Ok(start), Ok(count)) = (number("start", 0), number("count", 10)) else {
        return bad_request("start and count must be numbers");
    };
    if count == 0 || count > MAX_PAGE_SIZE {
        return bad_request("count must be between 1 and 1000");
    }
    let rules: Vec<Value> = crate::conversions::LinkedInRule::ALL
        .into_iter()
        .map(|rule| {
            json!({
                "id": numeric(rule.id()), "name": rule.name(), "type": rule.kind(),
                "account": format!("urn:li:sponsoredAccount:{}", account.id), "enabled": true,
                "attributionType": "LAST_TOUCH_BY_CAMPAIGN", "postClickAttributionWindowSize": 30,
                "viewThroughAttributionWindowSize": 7, "conversionMethod": "INSIGHT_TAG", "valueType": "DYNAMIC",
                "created": 1_767_225_600_000_i64, "lastModified": 1_767_225_600_000_i64,
            })
        })
        .collect();
    let page: Vec<Value> = rules.iter().skip(start).take(count).cloned().collect();
    let body = json!({"elements": page, "paging": {"start": start, "count": count, "total": rules.len(), "links": []}});
    finish(body, fault)
}

// ---------------------------------------------------------------------------------------------
// Envelopes, guard, faults
// ---------------------------------------------------------------------------------------------

fn li_error(status: StatusCode, code: &str, service_error_code: Option<i64>, message: &str) -> Response {
    let mut body = json!({"status": status.as_u16(), "code": code, "message": message});
    if let Some(service) = service_error_code {
        body["serviceErrorCode"] = json!(service);
    }
    (status, [("x-restli-protocol-version", "2.0.0")], axum::Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    li_error(StatusCode::BAD_REQUEST, "ILLEGAL_ARGUMENT", Some(100), message)
}

/// Checks every request shares: version, token, protocol, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, headers: &HeaderMap) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(version) = header("linkedin-version") else {
        return Err(li_error(
            StatusCode::BAD_REQUEST,
            "VERSION_MISSING",
            None,
            "A version must be present. Please specify a version by adding the LinkedIn-Version header.",
        ));
    };
    if !SUPPORTED_VERSIONS.contains(&version) {
        // LinkedIn names the version as a day: 202401 → "20240101".
        let named = if version.len() == 6 && version.bytes().all(|b| b.is_ascii_digit()) {
            format!("{version}01")
        } else {
            version.to_string()
        };
        return Err(li_error(
            StatusCode::UPGRADE_REQUIRED,
            "NONEXISTENT_VERSION",
            None,
            &format!("Requested version {named} is not active"),
        ));
    }
    let token = header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
    if token.is_empty() {
        return Err(li_error(StatusCode::UNAUTHORIZED, "INVALID_ACCESS_TOKEN", Some(65600), "Invalid access token"));
    }
    if sandbox.oauth.check(PLATFORM, token) == crate::TokenCheck::Expired {
        let message = "The token used in the request has expired";
        return Err(li_error(StatusCode::UNAUTHORIZED, "EXPIRED_ACCESS_TOKEN", Some(65601), message));
    }
    if header("x-restli-protocol-version") != Some("2.0.0") {
        return Err(bad_request(
            "Invalid query parameters passed to request (send X-Restli-Protocol-Version: 2.0.0 for Rest.li 2.0 syntax)",
        ));
    }
    match sandbox.faults.take(PLATFORM, false) {
        Some(FaultKind::Unauthorized) => {
            Err(li_error(StatusCode::UNAUTHORIZED, "INVALID_ACCESS_TOKEN", Some(65600), "Invalid access token"))
        }
        Some(FaultKind::RateLimit { retry_after_secs }) => {
            let body = json!({
                "status": 429, "serviceErrorCode": 101, "code": "TOO_MANY_REQUESTS",
                "message": "Resource level throttle APPLICATION DAY limit for calls to this resource is reached.",
            });
            Err((StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], axum::Json(body))
                .into_response())
        }
        Some(FaultKind::ServerError) => {
            if sandbox.requests().is_multiple_of(2) {
                Err(li_error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", None, "Service Unavailable"))
            } else {
                Err(li_error(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR", None, "Internal Server Error"))
            }
        }
        Some(FaultKind::Slow { millis }) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            Ok(None)
        }
        other => Ok(other),
    }
}

/// Send a successful answer, applying a body-level fault.
fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    finish_text(body.to_string(), fault)
}

/// [`finish`] for a body already written.
fn finish_text(text: String, fault: Option<FaultKind>) -> Response {
    let text = match fault {
        Some(FaultKind::TruncatedJson) => truncate(&text),
        _ => text,
    };
    (StatusCode::OK, [("content-type", "application/json"), ("x-restli-protocol-version", "2.0.0")], text)
        .into_response()
}

/// Money as LinkedIn writes it: a decimal string, whole units for zero-decimal currencies.
fn money(micros: i64, currency: &str) -> String {
    if zero_decimal(currency) {
        format!("{}", micros / 1_000_000)
    } else {
        format!("{:.2}", rust_decimal::Decimal::new(micros, 6))
    }
}

/// Money as LinkedIn prints some of it: the binary double nearest the amount, written to 20 significant
/// digits (`"5.6299999999999998934"` for 5.63). About a quarter of the cost values come out so,
/// deterministically, so that every ingest meets them.
fn money_as_printed(micros: i64, currency: &str) -> String {
    let exact = money(micros, currency);
    if (micros / 10_000) % 4 != 3 {
        return exact;
    }
    let double: f64 = exact.parse().expect("money() writes a decimal");
    let int_digits = format!("{}", double.abs().trunc()).len();
    format!("{double:.*}", 20usize.saturating_sub(int_digits))
}

/// Cost in USD at the sandbox's fixed rates (payload only; nothing reconciles against it).
fn usd_micros(micros: i64, currency: &str) -> i64 {
    let (num, den) = match currency {
        "USD" => (1, 1),
        "EUR" => (108, 100),
        "GBP" => (127, 100),
        "JPY" => (67, 10_000),
        _ => (1, 1),
    };
    (micros * num / den) / 10_000 * 10_000
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Active => "ACTIVE",
        Status::Paused => "PAUSED",
        Status::Removed => "ARCHIVED",
    }
}

fn numeric(id: &str) -> Value {
    id.parse::<u64>().map_or_else(|_| json!(id), |n| json!(n))
}

// ---------------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------------

async fn ad_account(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let fault = match guard(&sandbox, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(account) = sandbox.world.account(PLATFORM, &id) else {
        return li_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some(100),
            &format!("Not found: urn:li:sponsoredAccount:{id}"),
        );
    };
    let body = json!({
        "id": numeric(&account.id),
        "name": account.name,
        "currency": account.currency,
        "status": "ACTIVE",
        "type": "BUSINESS",
        "reference": format!("urn:li:organization:{}", 10_000 + numeric_suffix(&account.id)),
        "test": false,
        "servingStatuses": ["RUNNABLE"],
        "notifiedOnCampaignOptimization": false,
        "notifiedOnCreativeApproval": false,
        "notifiedOnCreativeRejection": false,
        "notifiedOnEndOfCampaign": false,
        "notifiedOnNewFeaturesEnabled": false,
        "version": {"versionTag": "4"},
    });
    finish(body, fault)
}

fn numeric_suffix(id: &str) -> u64 {
    id.parse::<u64>().unwrap_or(0) % 1000
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    CampaignGroup,
    Campaign,
    Creative,
}

/// The status filter of a finder: `search=(status:(values:List(ACTIVE,…)))` or
/// `intendedStatuses=List(…)` (creatives). `None`: every status.
fn status_filter(pairs: &[(String, String)], level: Level) -> Result<Option<Vec<String>>, String> {
    let list = if level == Level::Creative {
        match param(pairs, "intendedStatuses") {
            Some(raw) => Some(parse_restli(raw)?),
            None => None,
        }
    } else {
        match param(pairs, "search") {
            Some(raw) => {
                let search = parse_restli(raw)?;
                search.get("status").and_then(|s| s.get("values")).cloned()
            }
            None => None,
        }
    };
    let Some(list) = list else { return Ok(None) };
    let items = list.as_list().ok_or("status values must be List(…)")?;
    items
        .iter()
        .map(|i| i.as_str().map(str::to_string).ok_or_else(|| "a status must be a word".to_string()))
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Cursor tokens are opaque to clients; the sandbox hides an offset in one.
fn page_token(offset: usize) -> String {
    format!("{:x}", (offset as u64) ^ 0x5eed_cafe)
}

fn page_offset(token: &str) -> Option<usize> {
    u64::from_str_radix(token, 16).ok().map(|v| (v ^ 0x5eed_cafe) as usize)
}

async fn finder(
    State(sandbox): State<Arc<Sandbox>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    level: Level,
) -> Response {
    let fault = match guard(&sandbox, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let pairs = match query_pairs(raw.as_deref()) {
        Ok(p) => p,
        Err(e) => return bad_request(&e),
    };
    let expected_q = if level == Level::Creative { "criteria" } else { "search" };
    if param(&pairs, "q") != Some(expected_q) {
        return bad_request(&format!("q: this finder is q={expected_q}"));
    }
    let Some(account) = sandbox.world.account(PLATFORM, &id) else {
        return li_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            Some(100),
            &format!("Not found: urn:li:sponsoredAccount:{id}"),
        );
    };
    let size = match param(&pairs, "pageSize").map(str::parse::<usize>) {
        None => DEFAULT_PAGE_SIZE,
        Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
        Some(_) => return bad_request("pageSize must be between 1 and 1000"),
    };
    let offset = match param(&pairs, "pageToken").map(|t| percent_decode(t).ok().and_then(|t| page_offset(&t))) {
        None => 0,
        Some(Some(o)) => o,
        Some(None) => return bad_request("Invalid pageToken"),
    };
    let statuses = match status_filter(&pairs, level) {
        Ok(s) => s,
        Err(e) => return bad_request(&e),
    };
    let items = entity_items(account, level, statuses.as_deref());
    let start = offset.min(items.len());
    let end = (start + size).min(items.len());
    let mut body = json!({"elements": items[start..end].to_vec(), "paging": {"start": 0, "count": size, "links": []}, "metadata": {}});
    if end < items.len() {
        body["metadata"]["nextPageToken"] = json!(page_token(end));
    }
    finish(body, fault)
}

fn entity_items(account: &Account, level: Level, statuses: Option<&[String]>) -> Vec<Value> {
    let wanted = |status: Status| statuses.is_none_or(|s| s.iter().any(|w| w == status_word(status)));
    let account_urn = format!("urn:li:sponsoredAccount:{}", account.id);
    let mut items = Vec::new();
    for c in &account.campaigns {
        let group_urn = format!("urn:li:sponsoredCampaignGroup:{}", c.id);
        match level {
            Level::CampaignGroup => {
                if wanted(c.status) {
                    items.push(json!({
                        "id": numeric(&c.id), "name": c.name, "status": status_word(c.status), "account": account_urn,
                        "test": false, "servingStatuses": ["RUNNABLE"], "backfilled": false,
                        "runSchedule": {"start": 1_767_225_600_000_i64},
                    }));
                }
            }
            Level::Campaign => {
                for g in &c.ad_groups {
                    if wanted(g.status) {
                        items.push(json!({
                            "id": numeric(&g.id), "name": g.name, "status": status_word(g.status), "account": account_urn,
                            "campaignGroup": group_urn, "type": "SPONSORED_UPDATES", "costType": "CPC",
                            "objectiveType": "WEBSITE_CONVERSION", "format": "SINGLE_IMAGE", "locale": {"country": "US", "language": "en"},
                            "dailyBudget": {"amount": "100.00", "currencyCode": account.currency}, "test": false,
                        }));
                    }
                }
            }
            Level::Creative => {
                for g in &c.ad_groups {
                    for ad in &g.ads {
                        if wanted(ad.status) {
                            items.push(json!({
                                "id": format!("urn:li:sponsoredCreative:{}", ad.id), "name": ad.name,
                                "intendedStatus": status_word(ad.status), "isServing": ad.status == Status::Active,
                                "campaign": format!("urn:li:sponsoredCampaign:{}", g.id), "account": account_urn,
                                "content": {"reference": format!("urn:li:share:{}", ad.id)}, "isTest": false,
                            }));
                        }
                    }
                }
            }
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    #[test]
    fn money_and_page_tokens() {
        assert_eq!(money(12_340_000, "EUR"), "12.34");
        assert_eq!(money(5_000_000, "USD"), "5.00");
        assert_eq!(money(1_200_000_000, "JPY"), "1200");
        assert_eq!(money_as_printed(5_630_000, "EUR"), "5.6299999999999998934", "as LinkedIn prints it");
        assert_eq!(money_as_printed(5_640_000, "EUR"), "5.64", "most values are printed exactly");
        assert_eq!(money_as_printed(12_070_000, "USD"), "12.070000000000000284", "some round up");
        for offset in [0, 1, 100, 12_345] {
            assert_eq!(page_offset(&page_token(offset)), Some(offset));
        }
    }

    #[tokio::test]
    async fn serves_reports_entities_and_errors_over_http() {
        let sandbox = Sandbox::new(crate::World::new(3, today(), crate::Scale::default()));
        let account = sandbox.world.accounts(PLATFORM).next().unwrap().clone();
        let (addr, _) = crate::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let client = reqwest::Client::new();
        let get = |path: String, version: &'static str| {
            client
                .get(format!("http://{addr}{path}"))
                .header("Authorization", "Bearer t")
                .header("LinkedIn-Version", version)
                .header("X-Restli-Protocol-Version", "2.0.0")
        };
        let report = format!(
            "/rest/adAnalytics?q=analytics&pivot=CREATIVE&timeGranularity=DAILY&dateRange=(start:(year:2026,month:6,day:20),end:(year:2026,month:6,day:29))&accounts=List(urn%3Ali%3AsponsoredAccount%3A{})&fields=dateRange,pivotValues,impressions,costInLocalCurrency,externalWebsiteConversions",
            account.id
        );
        let body: Value = get(report.clone(), "202603").send().await.unwrap().json().await.unwrap();
        let elements = body["elements"].as_array().unwrap();
        assert!(!elements.is_empty());
        assert!(elements
            .iter()
            .all(|e| e["costInLocalCurrency"].is_string() && e["impressions"].is_i64() && e.get("clicks").is_none()));
        let impressions: i64 = elements.iter().map(|e| e["impressions"].as_i64().unwrap()).sum();
        let truth: i64 = sandbox
            .truth(
                PLATFORM,
                &account.id,
                NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
                NaiveDate::from_ymd_opt(2026, 6, 29).unwrap(),
            )
            .unwrap()
            .iter()
            .map(|(_, m)| m.impressions)
            .sum();
        assert_eq!(impressions, truth);

        let sunset = get(report.clone(), "202401").send().await.unwrap();
        assert_eq!(sunset.status(), 426);
        let body: Value = sunset.json().await.unwrap();
        assert_eq!(body["code"], "NONEXISTENT_VERSION");
        assert_eq!(body["message"], "Requested version 20240101 is not active");

        let unencoded = report.replace("%3A", ":");
        assert_eq!(get(unencoded, "202603").send().await.unwrap().status(), 400);

        // Cursor paging over the creatives.
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!("/rest/adAccounts/{}/creatives?q=criteria&pageSize=5", account.id);
            if let Some(t) = &token {
                path.push_str(&format!("&pageToken={t}"));
            }
            let page: Value = get(path, "202603").send().await.unwrap().json().await.unwrap();
            ids.extend(page["elements"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()));
            match page["metadata"]["nextPageToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(ids.len(), sandbox.world.units(&account).count());

        sandbox.faults.push(crate::Fault { platform: Some(PLATFORM), kind: FaultKind::Unauthorized, count: 1 });
        let refused = get(format!("/rest/adAccounts/{}", account.id), "202603").send().await.unwrap();
        assert_eq!(refused.status(), 401);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["code"], "INVALID_ACCESS_TOKEN");
    }
}
