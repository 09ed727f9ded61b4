//! Meta Marketing API (Graph API) v25–v27, as documented at developers.facebook.com/docs/marketing-api:
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

mod entities;
mod insights;
mod paging;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind};
use crate::json::into_text;
use crate::world::{zero_decimal, Account, Status, Unit};
use crate::Sandbox;
use entities::entity_rows;
use insights::insights_page;
pub use paging::{decode_cursor, encode_cursor};
use paging::{page_body, page_window};

const PLATFORM: Platform = Platform::MetaAds;
pub const SUPPORTED_VERSIONS: &[&str] = &["v25.0", "v26.0", "v27.0"];
const LATEST_VERSION: &str = "v27.0";
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
    if node == "debug_token" {
        return debug_token(&sandbox, &params);
    }
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
            Ok(page_body(&data, start, end, end < items.len(), None, print, &headers, &path, raw_query.as_deref()))
        }),
        _ => Err(error(StatusCode::BAD_REQUEST, 2500, None, &format!("Unknown path components: /{edge}"))),
    };
    match paged {
        Ok(body) => finish_text(into_text(body), fault, insights),
        Err(r) => r,
    }
}

/// `GET /{version}/debug_token?input_token=…`: what Meta says about a token — a system user's that
/// never expires (`expires_at: 0`), unless the sandbox's OAuth settings give it a lifetime.
fn debug_token(sandbox: &Sandbox, params: &HashMap<String, String>) -> Response {
    let Some(token) = params.get("input_token").filter(|t| !t.is_empty()) else {
        return bad_param("The parameter input_token is required");
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (kind, expires_at) = match sandbox.oauth.settings().meta_token_expires_in_days {
        None => ("SYSTEM_USER", 0),
        Some(days) => ("USER", now + u64::from(days) * 86_400),
    };
    let valid = expires_at == 0 || expires_at > now;
    let mut data = json!({
        "app_id": "100000000000001",
        "type": kind,
        "application": "mdp sandbox",
        "data_access_expires_at": 0,
        "expires_at": expires_at,
        "is_valid": valid,
        "issued_at": now.saturating_sub(86_400),
        "scopes": ["ads_read", "read_insights"],
        "user_id": format!("{}", token.len() * 7919),
    });
    if !valid {
        data["error"] =
            json!({"code": 190, "message": "Error validating access token: Session has expired.", "subcode": 463});
    }
    axum::Json(json!({ "data": data })).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{Scale, World};
    use crate::{Fault, Sandbox};
    use chrono::NaiveDate;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
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
        let path = format!("/v25.0/act_{}/insights", account.id);
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
        let response = reqwest::get(format!("http://{addr}/v25.0/act_{id}")).await.unwrap();
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], 104);
        let (status, body) = get(addr, &format!("/v25.0/act_{id}"), &[("fields", "currency,timezone_name")]).await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], json!(format!("act_{id}")));
        let (_, body) = get(addr, &format!("/v25.0/act_{id}/insights"), &[("level", "campaign")]).await;
        assert_eq!(body["error"]["code"], 100);
        sandbox.faults.push(Fault {
            platform: Some(PLATFORM),
            kind: FaultKind::RateLimit { retry_after_secs: 90 },
            count: 1,
        });
        let response = reqwest::Client::new()
            .get(format!("http://{addr}/v25.0/act_{id}/campaigns"))
            .bearer_auth("t")
            .send()
            .await
            .unwrap();
        let usage: Value =
            serde_json::from_str(response.headers()["x-business-use-case-usage"].to_str().unwrap()).unwrap();
        assert_eq!(usage["0"][0]["estimated_time_to_regain_access"], 2);
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["code"], 17);
    }
}
