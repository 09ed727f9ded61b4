//! Meta Marketing API (Graph API) v22–v24, as documented at developers.facebook.com/docs/marketing-api:
//! the ad account node `GET /{version}/act_{id}`, its edges `insights` (synchronous, `level=ad`,
//! `time_increment=1`), `campaigns`, `adsets` and `ads`.
//!
//! What it imitates:
//! - auth by `Authorization: Bearer <token>` (or the `access_token` query parameter); none → code 104;
//! - versions in the path; an old one → `(#2635) You are calling a deprecated version of the Ads API`;
//! - errors as `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`, mostly on HTTP 400:
//!   190/463 expired token, 17 and 80000 rate limits (with `X-Business-Use-Case-Usage`), 2 on HTTP 500,
//!   2642 "Invalid cursors values", 1 "Please reduce the amount of data" for oversized queries;
//! - every number a string; rows with no delivery left out; `actions` / `action_values` arrays where
//!   conversions appear under several overlapping types (`offsite_conversion.fb_pixel_purchase`,
//!   `purchase`, `omni_purchase`) next to engagement actions that are not conversions;
//! - `level=ad` insights of the account leave out DELETED and ARCHIVED ads unless the query filters on
//!   `ad.effective_status` (they keep their history); entity edges likewise unless `effective_status`
//!   lists those statuses;
//! - cursor paging: `limit` (default 25, at most 500 here), opaque `after`/`before` cursors bound to
//!   the query, `paging.next` only when there is more.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Months, NaiveDate};
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind};
use crate::google::{into_text, json_int, json_key, json_str};
use crate::world::{mix, zero_decimal, Account, Metrics, Status, Unit};
use crate::Sandbox;

const PLATFORM: Platform = Platform::MetaAds;
pub const SUPPORTED_VERSIONS: &[&str] = &["v22.0", "v23.0", "v24.0"];
const LATEST_VERSION: &str = "v24.0";
const DEFAULT_LIMIT: usize = 25;
const MAX_LIMIT: usize = 500;
/// Days × ads one synchronous insights query may cover before Meta asks to reduce the data.
const MAX_QUERY_CELLS: usize = 20_000;
/// `date_preset=maximum` reaches 37 months back; so does `time_range`.
const MAX_MONTHS_BACK: u32 = 37;

/// Every `effective_status` Meta knows for campaigns, ad sets and ads.
pub const EFFECTIVE_STATUSES: &[&str] = &[
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "CAMPAIGN_PAUSED",
    "ARCHIVED",
    "ADSET_PAUSED",
    "IN_PROCESS",
    "WITH_ISSUES",
];

const INSIGHTS_FIELDS: &[&str] = &[
    "account_id",
    "account_name",
    "account_currency",
    "campaign_id",
    "campaign_name",
    "adset_id",
    "adset_name",
    "ad_id",
    "ad_name",
    "date_start",
    "date_stop",
    "impressions",
    "reach",
    "frequency",
    "clicks",
    "inline_link_clicks",
    "spend",
    "cpc",
    "cpm",
    "ctr",
    "actions",
    "action_values",
    "video_play_actions",
    "inline_post_engagement",
];

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new().route("/{version}/{node}", get(node)).route("/{version}/{node}/{edge}", get(edge))
}

type Params = Query<HashMap<String, String>>;

/// An error in the Graph API's shape.
fn error(status: StatusCode, code: i64, subcode: Option<i64>, message: &str) -> Response {
    let mut body =
        json!({"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AmdpSandboxTrace00000"});
    if let Some(subcode) = subcode {
        body["error_subcode"] = json!(subcode);
    }
    if matches!(code, 1 | 2 | 4 | 17 | 32 | 613) || (80000..=80014).contains(&code) {
        body["is_transient"] = json!(true);
    }
    let mut response = (status, axum::Json(json!({"error": body}))).into_response();
    if code == 190 || code == 104 {
        // Graph answers token errors with a WWW-Authenticate header too.
        let value = format!("OAuth \"Facebook Platform\" \"invalid_token\" \"{message}\"");
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert("www-authenticate", v);
        }
    }
    response
}

fn bad_param(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 100, None, &format!("(#100) {message}"))
}

fn invalid_cursor() -> Response {
    error(StatusCode::BAD_REQUEST, 2642, None, "(#2642) Invalid cursors values")
}

/// Checks every request shares: version, token, injected faults. `Err` is the answer to send.
async fn guard(
    sandbox: &Sandbox,
    version: &str,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    insights: bool,
) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    if !SUPPORTED_VERSIONS.contains(&version) {
        let message =
            format!("(#2635) You are calling a deprecated version of the Ads API. Please update to the latest version: {LATEST_VERSION}.");
        return Err(error(StatusCode::BAD_REQUEST, 2635, None, &message));
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("OAuth ")))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let query_token = params.get("access_token").map(String::as_str).filter(|t| !t.is_empty());
    if bearer.is_none() && query_token.is_none() {
        return Err(error(StatusCode::BAD_REQUEST, 104, None, "An access token is required to request this resource."));
    }
    let has_cursor = params.contains_key("after") || params.contains_key("before");
    match sandbox.faults.take(PLATFORM, has_cursor) {
        Some(FaultKind::Unauthorized) => Err(error(
            StatusCode::BAD_REQUEST,
            190,
            Some(463),
            "Error validating access token: Session has expired on Monday, 29-Jun-26 10:00:00 PDT. The current time is Tuesday, 30-Jun-26 09:00:00 PDT.",
        )),
        Some(FaultKind::RateLimit { retry_after_secs }) => {
            let minutes = retry_after_secs.div_ceil(60);
            let usage = json!({"0": [{"type": if insights { "ads_insights" } else { "ads_management" },
                "call_count": 100, "total_cputime": 41, "total_time": 57, "estimated_time_to_regain_access": minutes}]});
            let mut response = if insights {
                error(
                    StatusCode::BAD_REQUEST,
                    80000,
                    Some(2446079),
                    "There have been too many calls from this ad-account. Wait a bit and try again. For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
                )
            } else {
                error(StatusCode::BAD_REQUEST, 17, Some(2446079), "(#17) User request limit reached")
            };
            if let Ok(v) = HeaderValue::from_str(&usage.to_string()) {
                response.headers_mut().insert("x-business-use-case-usage", v);
            }
            if insights {
                response.headers_mut().insert(
                    "x-fb-ads-insights-throttle",
                    HeaderValue::from_static(r#"{"app_id_util_pct":100,"acc_id_util_pct":100,"ads_api_access_tier":"standard_access"}"#),
                );
            }
            Err(response)
        }
        Some(FaultKind::ServerError) => Err(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            2,
            None,
            "An unexpected error has occurred. Please retry your request later.",
        )),
        Some(FaultKind::ExpiredCursor) => Err(invalid_cursor()),
        Some(FaultKind::Slow { millis }) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            Ok(None)
        }
        other => Ok(other),
    }
}

/// A successful answer, with a body-level fault applied.
fn finish(body: Value, fault: Option<FaultKind>, insights: bool) -> Response {
    finish_text(body.to_string(), fault, insights)
}

/// [`finish`] for a body already written.
fn finish_text(text: String, fault: Option<FaultKind>, insights: bool) -> Response {
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    let mut response = (StatusCode::OK, [("content-type", "application/json; charset=UTF-8")], text).into_response();
    if insights {
        response.headers_mut().insert(
            "x-fb-ads-insights-throttle",
            HeaderValue::from_static(
                r#"{"app_id_util_pct":1,"acc_id_util_pct":2,"ads_api_access_tier":"standard_access"}"#,
            ),
        );
    }
    response
}

/// The account of a node `act_<id>`.
fn ad_account<'a>(sandbox: &'a Sandbox, node: &str) -> Result<&'a Account, Response> {
    let unsupported = || {
        error(
            StatusCode::BAD_REQUEST,
            100,
            Some(33),
            &format!("Unsupported get request. Object with ID '{node}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"),
        )
    };
    let id = node.strip_prefix("act_").ok_or_else(unsupported)?;
    sandbox.world.account(PLATFORM, id).ok_or_else(unsupported)
}

fn fields(params: &HashMap<String, String>, known: &[&str], node_type: &str) -> Result<Vec<String>, Response> {
    let raw = params.get("fields").map(String::as_str).unwrap_or("id");
    let mut out = Vec::new();
    for field in raw.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        if !known.contains(&field) {
            return Err(bad_param(&format!("Tried accessing nonexisting field ({field}) on node type ({node_type})")));
        }
        out.push(field.to_string());
    }
    Ok(out)
}

/// Money as Meta writes it: a string with the currency's decimals.
fn money(micros: i64, currency: &str) -> String {
    if zero_decimal(currency) {
        format!("{}", micros / 1_000_000)
    } else {
        format!("{:.2}", rust_decimal::Decimal::new(micros, 6))
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Active => "ACTIVE",
        Status::Paused => "PAUSED",
        Status::Removed => "DELETED",
    }
}

/// An object's effective status: its own, unless a parent is paused.
fn effective(own: Status, parents: &[(Status, &'static str)]) -> &'static str {
    if own != Status::Active {
        return status_name(own);
    }
    for (status, paused_word) in parents {
        if *status != Status::Active {
            return paused_word;
        }
    }
    "ACTIVE"
}

fn ad_effective_status(unit: &Unit<'_>) -> &'static str {
    let (Some(group), Some(ad)) = (unit.ad_group, unit.ad) else { return status_name(unit.campaign.status) };
    effective(ad.status, &[(unit.campaign.status, "CAMPAIGN_PAUSED"), (group.status, "ADSET_PAUSED")])
}

fn status_list(raw: &Value, what: &str) -> Result<Vec<String>, Response> {
    let list = raw.as_array().ok_or_else(|| bad_param(&format!("{what} must be an array of statuses")))?;
    let mut out = Vec::new();
    for v in list {
        let s = v.as_str().unwrap_or_default();
        if !EFFECTIVE_STATUSES.contains(&s) {
            return Err(bad_param(&format!(
                "{what}[{s}] must be one of the following values: {}",
                EFFECTIVE_STATUSES.join(", ")
            )));
        }
        out.push(s.to_string());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------
// Cursors: opaque base64url of "offset:query fingerprint", so a cursor of one query fails on another.

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let digits: Option<Vec<u32>> = text.bytes().map(|c| B64.iter().position(|b| *b == c).map(|p| p as u32)).collect();
    for chunk in digits?.chunks(4) {
        if chunk.len() < 2 {
            return None;
        }
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, d)| n | (d << (18 - 6 * i)));
        for i in 0..chunk.len() - 1 {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

pub fn encode_cursor(offset: usize, fingerprint: u64) -> String {
    b64_encode(format!("{offset}:{:x}", fingerprint & 0xFFFF_FFFF).as_bytes())
}

pub fn decode_cursor(cursor: &str, fingerprint: u64) -> Option<usize> {
    let text = String::from_utf8(b64_decode(cursor)?).ok()?;
    let (offset, print) = text.split_once(':')?;
    (print == format!("{:x}", fingerprint & 0xFFFF_FFFF)).then(|| offset.parse().ok())?
}

fn fingerprint(parts: &[&str]) -> u64 {
    parts.iter().flat_map(|p| p.bytes().chain([0u8])).fold(mix(7), |h, b| mix(h ^ u64::from(b)))
}

/// The first index and the size of the page a request asks for.
fn page_window(params: &HashMap<String, String>, print: u64) -> Result<(usize, usize), Response> {
    let limit = match params.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l.parse::<usize>().map_err(|_| bad_param("Param limit must be a non-negative integer"))?,
    };
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad_param(&format!("Param limit must be between 1 and {MAX_LIMIT} in this sandbox")));
    }
    let start = match (params.get("after"), params.get("before")) {
        (Some(after), _) => decode_cursor(after, print).ok_or_else(invalid_cursor)? + 1,
        (None, Some(before)) => {
            let b = decode_cursor(before, print).ok_or_else(invalid_cursor)?;
            b.saturating_sub(limit)
        }
        (None, None) => 0,
    };
    Ok((start, limit))
}

/// The page body with Graph paging: `data` holds the page's rendered items, comma-separated, items
/// `start..end`; `more` whether items follow; `next` rebuilt from the request with the new cursor.
#[allow(clippy::too_many_arguments)]
fn page_body(
    data: &[u8],
    start: usize,
    end: usize,
    more: bool,
    print: u64,
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
) -> Vec<u8> {
    if start >= end {
        return br#"{"data":[]}"#.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() + 512);
    out.extend_from_slice(b"{\"data\":[");
    out.extend_from_slice(data);
    out.extend_from_slice(b"],\"paging\":{\"cursors\":{\"before\":");
    json_str(&mut out, &encode_cursor(start, print));
    out.extend_from_slice(b",\"after\":");
    json_str(&mut out, &encode_cursor(end - 1, print));
    out.push(b'}');
    if more {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("graph.facebook.com");
        let kept: Vec<&str> = raw_query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("after=") && !p.starts_with("before="))
            .collect();
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        out.extend_from_slice(b",\"next\":");
        json_str(&mut out, &format!("http://{host}{path}?{query}after={}", encode_cursor(end - 1, print)));
    }
    if start > 0 {
        out.extend_from_slice(b",\"previous\":");
        json_str(&mut out, &format!("http://graph.facebook.com{path}?before={}", encode_cursor(start, print)));
    }
    out.extend_from_slice(b"}}");
    out
}

// ---------------------------------------------------------------------------------------------------

async fn node(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, node)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers, &params, false).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let account = match ad_account(&sandbox, &node) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let known = [
        "id",
        "account_id",
        "name",
        "currency",
        "timezone_name",
        "account_status",
        "business_country_code",
        "disable_reason",
    ];
    let fields = match fields(&params, &known, "AdAccount") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut out = serde_json::Map::new();
    for f in fields {
        let v = match f.as_str() {
            "id" => json!(format!("act_{}", account.id)),
            "account_id" => json!(account.id),
            "name" => json!(account.name),
            "currency" => json!(account.currency),
            "timezone_name" => json!(account.timezone),
            "account_status" => json!(1),
            "business_country_code" => json!("DE"),
            _ => json!(0),
        };
        out.insert(f, v);
    }
    out.entry("id").or_insert_with(|| json!(format!("act_{}", account.id)));
    finish(Value::Object(out), fault, false)
}

async fn edge(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, node, edge)): Path<(String, String, String)>,
    headers: HeaderMap,
    Query(params): Params,
    RawQuery(raw_query): RawQuery,
) -> Response {
    let insights = edge == "insights";
    let fault = match guard(&sandbox, &version, &headers, &params, insights).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let account = match ad_account(&sandbox, &node) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let path = format!("/{version}/{node}/{edge}");
    let paged = match edge.as_str() {
        "insights" => insights_page(&sandbox, account, &params, &headers, &path, raw_query.as_deref()),
        "campaigns" | "adsets" | "ads" => entity_rows(account, &edge, &params).and_then(|(items, print)| {
            let (start, limit) = page_window(&params, print)?;
            let start = start.min(items.len());
            let end = (start + limit).min(items.len());
            let mut data = Vec::new();
            for (i, item) in items[start..end].iter().enumerate() {
                if i > 0 {
                    data.push(b',');
                }
                serde_json::to_writer(&mut data, item).expect("writing JSON to a Vec");
            }
            Ok(page_body(&data, start, end, end < items.len(), print, &headers, &path, raw_query.as_deref()))
        }),
        _ => Err(error(StatusCode::BAD_REQUEST, 2500, None, &format!("Unknown path components: /{edge}"))),
    };
    match paged {
        Ok(body) => finish_text(into_text(body), fault, insights),
        Err(r) => r,
    }
}

/// One page of an insights query: only the rows up to the page's end (and one more, to know whether
/// there is a next page) are computed, and only the page's rows are rendered.
fn insights_page(
    sandbox: &Sandbox,
    account: &Account,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    path: &str,
    raw_query: Option<&str>,
) -> Result<Vec<u8>, Response> {
    let query = insights_query(sandbox, account, params)?;
    let (start, limit) = page_window(params, query.print)?;
    let version = sandbox.version();
    let mut data = Vec::with_capacity(limit * 600);
    let mut index = 0usize; // rows with delivery seen so far
    let mut more = false;
    'days: for day in query.since.iter_days().take_while(|d| *d <= query.until) {
        for unit in &query.units {
            let m = sandbox.world.unit_metrics(account, unit, day, version);
            if m.is_zero() {
                continue; // Meta leaves out rows without delivery
            }
            if index >= start.saturating_add(limit) {
                more = true;
                break 'days;
            }
            if index >= start {
                if index > start {
                    data.push(b',');
                }
                insights_row(&mut data, account, unit, day, &m, &query.fields);
            }
            index += 1;
        }
    }
    let start = start.min(index);
    let end = start.saturating_add(limit).min(index);
    Ok(page_body(&data, start, end, more, query.print, headers, path, raw_query))
}

fn entity_rows(account: &Account, edge: &str, params: &HashMap<String, String>) -> Result<(Vec<Value>, u64), Response> {
    let (node_type, known): (&str, &[&str]) = match edge {
        "campaigns" => (
            "Campaign",
            &[
                "id",
                "name",
                "status",
                "effective_status",
                "configured_status",
                "objective",
                "account_id",
                "created_time",
            ],
        ),
        "adsets" => {
            ("AdSet", &["id", "name", "status", "effective_status", "configured_status", "campaign_id", "account_id"])
        }
        _ => (
            "Ad",
            &["id", "name", "status", "effective_status", "configured_status", "campaign_id", "adset_id", "account_id"],
        ),
    };
    let fields = fields(params, known, node_type)?;
    // Without `effective_status`, edges leave out archived and deleted objects.
    let wanted = match params.get("effective_status") {
        Some(raw) => {
            let v: Value =
                serde_json::from_str(raw).map_err(|_| bad_param("param effective_status must be a JSON array"))?;
            status_list(&v, "effective_status")?
        }
        None => EFFECTIVE_STATUSES
            .iter()
            .filter(|s| !matches!(**s, "DELETED" | "ARCHIVED"))
            .map(|s| s.to_string())
            .collect(),
    };
    let mut items = Vec::new();
    let mut push =
        |id: &str, name: &str, status: Status, eff: &str, campaign_id: Option<&str>, adset_id: Option<&str>| {
            if !wanted.iter().any(|w| w == eff) {
                return;
            }
            let mut o = serde_json::Map::new();
            for f in &fields {
                let v = match f.as_str() {
                    "id" => json!(id),
                    "name" => json!(name),
                    "status" | "configured_status" => json!(status_name(status)),
                    "effective_status" => json!(eff),
                    "objective" => json!("OUTCOME_SALES"),
                    "account_id" => json!(account.id),
                    "created_time" => json!("2026-01-05T10:00:00+0100"),
                    "campaign_id" => json!(campaign_id),
                    "adset_id" => json!(adset_id),
                    _ => Value::Null,
                };
                o.insert(f.clone(), v);
            }
            o.entry("id").or_insert_with(|| json!(id));
            items.push(Value::Object(o));
        };
    for c in &account.campaigns {
        match edge {
            "campaigns" => push(&c.id, &c.name, c.status, status_name(c.status), None, None),
            "adsets" => {
                for g in &c.ad_groups {
                    let eff = effective(g.status, &[(c.status, "CAMPAIGN_PAUSED")]);
                    push(&g.id, &g.name, g.status, eff, Some(&c.id), None);
                }
            }
            _ => {
                for g in &c.ad_groups {
                    for ad in &g.ads {
                        let eff = effective(ad.status, &[(c.status, "CAMPAIGN_PAUSED"), (g.status, "ADSET_PAUSED")]);
                        push(&ad.id, &ad.name, ad.status, eff, Some(&c.id), Some(&g.id));
                    }
                }
            }
        }
    }
    let print = fingerprint(&[
        &account.id,
        edge,
        params.get("fields").map_or("", String::as_str),
        params.get("effective_status").map_or("", String::as_str),
    ]);
    Ok((items, print))
}

/// What an insights query selects: its days, ads, fields (each once; dates come last) and cursor fingerprint.
struct InsightsQuery<'a> {
    since: NaiveDate,
    until: NaiveDate,
    units: Vec<Unit<'a>>,
    fields: Vec<String>,
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
    ]);
    // A field named twice is one key of the row; the dates are always written, last.
    let mut once: Vec<String> = Vec::new();
    for f in fields {
        if f != "date_start" && f != "date_stop" && !once.contains(&f) {
            once.push(f);
        }
    }
    Ok(InsightsQuery { since, until, units, fields: once, print })
}

/// Write an array of `{"action_type", "value"}` objects.
fn write_actions(buf: &mut Vec<u8>, list: &[(&str, String)]) {
    buf.push(b'[');
    for (i, (action_type, value)) in list.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        buf.extend_from_slice(b"{\"action_type\":");
        json_str(buf, action_type);
        buf.extend_from_slice(b",\"value\":");
        json_str(buf, value);
        buf.push(b'}');
    }
    buf.push(b']');
}

/// The `actions` of a row: conversions under three overlapping types (a pixel purchase is also a
/// `purchase` and an `omni_purchase`), plus engagement actions that are not conversions.
fn actions(m: &Metrics) -> Vec<(&'static str, String)> {
    let link_clicks = link_clicks(m);
    let engagement = m.likes + m.comments + m.shares + link_clicks;
    let mut out = Vec::new();
    let count = |out: &mut Vec<(&'static str, String)>, t: &'static str, n: i64| {
        if n > 0 {
            out.push((t, n.to_string()));
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
    if m.conversions_micros > 0 {
        let n = crate::micros_to_decimal(m.conversions_micros);
        out.push(("offsite_conversion.fb_pixel_purchase", n.clone()));
        out.push(("omni_purchase", n.clone()));
        out.push(("purchase", n));
    }
    out
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
fn insights_row(buf: &mut Vec<u8>, account: &Account, unit: &Unit<'_>, day: NaiveDate, m: &Metrics, fields: &[String]) {
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
                let a = actions(m);
                if a.is_empty() {
                    buf.truncate(mark);
                    continue;
                }
                write_actions(buf, &a);
            }
            "action_values" => {
                if m.conversion_value_micros == 0 {
                    buf.truncate(mark);
                    continue;
                }
                let v = money(m.conversion_value_micros, account.currency);
                write_actions(
                    buf,
                    &[
                        ("offsite_conversion.fb_pixel_purchase", v.clone()),
                        ("omni_purchase", v.clone()),
                        ("purchase", v),
                    ],
                );
            }
            "video_play_actions" => {
                if m.video_views == 0 {
                    buf.truncate(mark);
                    continue;
                }
                write_actions(buf, &[("video_view", m.video_views.to_string())]);
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
    use crate::world::{Scale, World};
    use crate::{Fault, Sandbox};

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_query() {
        for offset in [0usize, 1, 24, 499, 123_456] {
            let c = encode_cursor(offset, 77);
            assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{c}");
            assert_eq!(decode_cursor(&c, 77), Some(offset));
            assert_eq!(decode_cursor(&c, 78), None, "a cursor of another query is invalid");
        }
        assert_eq!(decode_cursor("not a cursor!", 77), None);
    }

    async fn get(addr: std::net::SocketAddr, path: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("http://{addr}{path}"))
            .bearer_auth("t")
            .query(query)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn insights_page_by_cursor_and_hide_deleted_ads_unless_filtered() {
        let sandbox = Sandbox::new(World::new(42, today(), Scale::default()));
        let (addr, _) = crate::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let account = sandbox.world.accounts(PLATFORM).next().unwrap().clone();
        let path = format!("/v23.0/act_{}/insights", account.id);
        let range = r#"{"since":"2026-06-01","until":"2026-06-10"}"#;
        let all: String = format!(
            r#"[{{"field":"ad.effective_status","operator":"IN","value":{}}}]"#,
            serde_json::to_string(EFFECTIVE_STATUSES).unwrap()
        );
        let base = [
            ("level", "ad"),
            ("time_increment", "1"),
            ("time_range", range),
            ("fields", "ad_id,spend,actions"),
            ("limit", "7"),
        ];

        let mut rows = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = base.to_vec();
            q.push(("filtering", &all));
            if let Some(a) = &after {
                q.push(("after", a));
            }
            let (status, body) = get(addr, &path, &q).await;
            assert_eq!(status, 200, "{body}");
            let data = body["data"].as_array().unwrap();
            assert!(data.len() <= 7);
            rows.extend(data.iter().cloned());
            if body["paging"]["next"].is_null() {
                break;
            }
            after = Some(body["paging"]["cursors"]["after"].as_str().unwrap().to_string());
        }
        let expected: i64 = sandbox
            .truth(
                PLATFORM,
                &account.id,
                NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
                NaiveDate::from_ymd_opt(2026, 6, 10).unwrap(),
            )
            .unwrap()
            .iter()
            .map(|(_, m)| m.spend_micros)
            .sum();
        let got: rust_decimal::Decimal =
            rows.iter().map(|r| r["spend"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap()).sum();
        assert_eq!(got, rust_decimal::Decimal::new(expected, 6), "every row once across pages");
        assert!(rows.iter().all(|r| r["date_start"] == r["date_stop"]));

        // Unfiltered, the deleted ads' history is missing.
        let (_, unfiltered) = get(addr, &path, &[&base[..4], &[("limit", "500")][..]].concat()).await;
        assert!(unfiltered["data"].as_array().unwrap().len() < rows.len());

        // An expired cursor is Meta's 2642; a cursor of another query is too.
        sandbox.faults.push(Fault { platform: Some(PLATFORM), kind: FaultKind::ExpiredCursor, count: 1 });
        let cursor = encode_cursor(6, 1);
        let (status, body) = get(addr, &path, &[&base[..], &[("after", cursor.as_str())][..]].concat()).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(2642)));
        let (status, body) = get(addr, &path, &[&base[..], &[("after", cursor.as_str())][..]].concat()).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(2642)), "bound to its query");
    }

    #[tokio::test]
    async fn errors_have_the_graph_shape() {
        let sandbox = Sandbox::new(World::new(42, today(), Scale::default()));
        let (addr, _) = crate::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let id = sandbox.world.accounts(PLATFORM).next().unwrap().id.clone();
        let (status, body) = get(addr, &format!("/v17.0/act_{id}"), &[]).await;
        assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(2635)));
        let response = reqwest::get(format!("http://{addr}/v23.0/act_{id}")).await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], 104);
        let (status, body) = get(addr, &format!("/v23.0/act_{id}"), &[("fields", "currency,timezone_name")]).await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], json!(format!("act_{id}")));
        let (_, body) = get(addr, &format!("/v23.0/act_{id}/insights"), &[("level", "campaign")]).await;
        assert_eq!(body["error"]["code"], 100);
        sandbox.faults.push(Fault {
            platform: Some(PLATFORM),
            kind: FaultKind::RateLimit { retry_after_secs: 90 },
            count: 1,
        });
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/v23.0/act_{id}/campaigns"))
            .bearer_auth("t")
            .send()
            .await
            .unwrap();
        let usage: Value =
            serde_json::from_str(response.headers()["x-business-use-case-usage"].to_str().unwrap()).unwrap();
        assert_eq!(usage["0"][0]["estimated_time_to_regain_access"], 2);
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], 17);
    }

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
        let a = actions(&m);
        let of = |t: &str| a.iter().find(|(x, _)| *x == t).map(|(_, v)| v.clone());
        assert_eq!(of("offsite_conversion.fb_pixel_purchase").as_deref(), Some("2"));
        assert_eq!(of("purchase").as_deref(), Some("2"));
        assert_eq!(of("post_reaction").as_deref(), Some("3"));
        assert_eq!(of("comment"), None, "zero actions are left out");
    }
}
