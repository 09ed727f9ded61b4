//! Reddit Ads API v3 (ads-api.reddit.com/docs/v3), written from its public reference, not from mdp's
//! spec of it: `GET /api/v3/ad_accounts/{id}` (`{data: {id, name, currency, time_zone_id, …}}`), the
//! entity lists `…/campaigns`, `…/ad_groups`, `…/ads` (`{data: […], pagination: {next_url}}`, `page.size`
//! ≤ 1000 with a `page.token`), and the synchronous report `POST …/reports` with a JSON body
//! `{data: {breakdowns, fields, starts_at, ends_at, time_zone_id}}` answering
//! `{data: {metrics: […]}, pagination: {next_url}}`. At most 3 breakdowns; `starts_at` / `ends_at` are
//! RFC 3339 and must fall on the hour; `DATE` rows are days of `time_zone_id`, from `starts_at`'s day to
//! the day before `ends_at`'s. Money: `spend` in micros of the account currency, `*_total_value` in
//! cents. Auth: `Authorization: Bearer`. v2 answers 410 Gone (sunset 2025-09-30). Errors:
//! `{error: {code, message}}` with the HTTP status; rate limiting is HTTP 429.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Timelike};
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind, Refusal};
use crate::world::{Account, Status};
use crate::Sandbox;

/// Reddit's platform, as mdp names it (a platform of a connector spec, not a built-in one).
pub fn platform() -> Platform {
    Platform::Declared(mdp_core::DeclaredPlatform::intern(NAME))
}

pub const NAME: &str = "reddit_ads";
const MAX_PAGE_SIZE: usize = 1000;
const MAX_BREAKDOWNS: usize = 3;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/api/{version}/ad_accounts/{account}", get(ad_account))
        .route("/api/{version}/ad_accounts/{account}/campaigns", get(|s, p, h, q| list(s, p, h, q, Level::Campaign)))
        .route("/api/{version}/ad_accounts/{account}/ad_groups", get(|s, p, h, q| list(s, p, h, q, Level::AdGroup)))
        .route("/api/{version}/ad_accounts/{account}/ads", get(|s, p, h, q| list(s, p, h, q, Level::Ad)))
        .route("/api/{version}/ad_accounts/{account}/reports", post(report))
}

type Params = Query<HashMap<String, String>>;

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({"error": {"code": status.as_u16(), "message": message}}))).into_response()
}

/// Checks every request shares: version, token, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, version: &str, headers: &HeaderMap) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    if version.starts_with("v2") {
        return Err(error(StatusCode::GONE, "Ads API v2 was sunset on 2025-09-30; use /api/v3"));
    }
    if version != "v3" {
        return Err(error(StatusCode::NOT_FOUND, &format!("no API version {version}")));
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer.filter(|token| !token.is_empty()) else {
        return Err(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    };
    // A token issued by the sandbox's token endpoint lives an hour (or as /_sandbox/oauth sets).
    if sandbox.oauth.check(platform(), token) == crate::TokenCheck::Expired {
        return Err(error(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    sandbox
        .faults
        .apply(platform(), |refusal| match refusal {
            Refusal::Unauthorized => error(StatusCode::UNAUTHORIZED, "Unauthorized"),
            Refusal::RateLimit { .. } => error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests"),
            Refusal::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        })
        .await
}

fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    let text = body.to_string();
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    (StatusCode::OK, [("content-type", "application/json")], text).into_response()
}

fn account<'s>(sandbox: &'s Sandbox, id: &str) -> Result<&'s Account, Response> {
    sandbox
        .world
        .account(platform(), id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, &format!("ad account {id} not found")))
}

async fn ad_account(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let account = match account(&sandbox, &id) {
        Ok(account) => account,
        Err(answer) => return answer,
    };
    let data = json!({
        "id": account.id, "name": account.name, "currency": account.currency, "time_zone_id": account.timezone,
        "type": "MANAGED", "business_id": "b2-sandbox", "admin_approval": "APPROVED",
    });
    finish(json!({"data": data}), fault)
}

fn configured_status(status: Status) -> &'static str {
    match status {
        Status::Active => "ACTIVE",
        Status::Paused => "PAUSED",
        Status::Removed => "ARCHIVED",
    }
}

/// `page.size` and `page.token` (an offset in the sandbox; opaque to clients).
fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let size = params.get("page.size").map_or(Ok(100), |s| s.parse::<usize>());
    let size = size.ok().filter(|s| (1..=MAX_PAGE_SIZE).contains(s));
    let Some(size) = size else {
        return Err(error(StatusCode::BAD_REQUEST, "page.size must be between 1 and 1000"));
    };
    let offset = match params.get("page.token") {
        None => 0,
        Some(token) => token
            .strip_prefix("pt_")
            .and_then(|t| t.parse::<usize>().ok())
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, "invalid page.token"))?,
    };
    Ok((offset, size))
}

/// The next page's full URL (Reddit's `pagination.next_url`), or null after the last page.
fn next_url(headers: &HeaderMap, path: &str, offset: usize, size: usize, total: usize) -> Value {
    if offset + size >= total {
        return Value::Null;
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    Value::String(format!("http://{host}{path}?page.size={size}&page.token=pt_{}", offset + size))
}

#[derive(Clone, Copy)]
enum Level {
    Campaign,
    AdGroup,
    Ad,
}

async fn list(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
    level: Level,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let (account, (offset, size)) = match (account(&sandbox, &id), paging(&params)) {
        (Ok(account), Ok(paging)) => (account, paging),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let mut items = Vec::new();
    for c in &account.campaigns {
        match level {
            Level::Campaign => items.push(json!({
                "id": c.id, "name": c.name, "ad_account_id": account.id,
                "configured_status": configured_status(c.status), "objective": "CONVERSIONS",
            })),
            Level::AdGroup => items.extend(c.ad_groups.iter().map(|g| {
                json!({"id": g.id, "name": g.name, "campaign_id": c.id, "configured_status": configured_status(g.status)})
            })),
            Level::Ad => {
                for g in &c.ad_groups {
                    items.extend(g.ads.iter().map(|ad| {
                        json!({
                            "id": ad.id, "name": ad.name, "ad_group_id": g.id, "campaign_id": c.id,
                            "configured_status": configured_status(ad.status), "post_id": format!("t3_{}", ad.id),
                        })
                    }));
                }
            }
        }
    }
    let path = format!(
        "/api/{version}/ad_accounts/{id}/{}",
        match level {
            Level::Campaign => "campaigns",
            Level::AdGroup => "ad_groups",
            Level::Ad => "ads",
        }
    );
    let next = next_url(&headers, &path, offset, size, items.len());
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    finish(json!({"data": page, "pagination": {"next_url": next}}), fault)
}

/// The report fields the sandbox serves, and their row keys.
const FIELDS: &[&str] = &[
    "IMPRESSIONS",
    "CLICKS",
    "SPEND",
    "CONVERSION_PURCHASE_CLICKS",
    "CONVERSION_PURCHASE_VIEWS",
    "CONVERSION_PURCHASE_TOTAL_VALUE",
];
const BREAKDOWNS: &[&str] = &["AD_ID", "AD_GROUP_ID", "CAMPAIGN_ID", "DATE", "COUNTRY", "REGION"];

fn day_bound(text: Option<&str>, what: &str, zone: chrono_tz::Tz) -> Result<NaiveDate, Response> {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, &message);
    let text = text.ok_or_else(|| bad(format!("{what} is required")))?;
    let at =
        DateTime::parse_from_rfc3339(text).map_err(|_| bad(format!("{what}: {text:?} is not an RFC 3339 time")))?;
    if at.minute() != 0 || at.second() != 0 || at.nanosecond() != 0 {
        return Err(bad(format!("{what} must be aligned to the hour")));
    }
    let local = at.with_timezone(&zone);
    if local.hour() != 0 {
        return Err(bad(format!("{what}: DATE breakdowns need midnights of time_zone_id, got {local}")));
    }
    Ok(local.date_naive())
}

async fn report(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
    body: String,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let (account, (offset, size)) = match (account(&sandbox, &id), paging(&params)) {
        (Ok(account), Ok(paging)) => (account, paging),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let data = &request["data"];
    let list = |key: &str| -> Vec<String> {
        data[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let (breakdowns, fields) = (list("breakdowns"), list("fields"));
    if breakdowns.len() > MAX_BREAKDOWNS {
        return error(StatusCode::BAD_REQUEST, "at most 3 breakdowns");
    }
    if let Some(unknown) = breakdowns.iter().find(|b| !BREAKDOWNS.contains(&b.as_str())) {
        return error(StatusCode::BAD_REQUEST, &format!("unknown breakdown {unknown}"));
    }
    if breakdowns != ["AD_ID", "DATE"] {
        return error(StatusCode::BAD_REQUEST, "the sandbox serves the breakdowns [AD_ID, DATE]");
    }
    if fields.is_empty() {
        return error(StatusCode::BAD_REQUEST, "fields: at least one field");
    }
    let retired = sandbox.retired_field(platform(), fields.iter().map(String::as_str));
    if let Some(unknown) = fields.iter().find(|f| !FIELDS.contains(&f.as_str()) || Some(f.as_str()) == retired) {
        return error(StatusCode::BAD_REQUEST, &format!("unknown field {unknown}"));
    }
    let zone_name = data["time_zone_id"].as_str().unwrap_or(account.timezone);
    let Ok(zone) = zone_name.parse::<chrono_tz::Tz>() else {
        return error(StatusCode::BAD_REQUEST, &format!("unknown time_zone_id {zone_name}"));
    };
    let (start, end) = match (
        day_bound(data["starts_at"].as_str(), "starts_at", zone),
        day_bound(data["ends_at"].as_str(), "ends_at", zone),
    ) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    if end <= start {
        return error(StatusCode::BAD_REQUEST, "ends_at must be after starts_at");
    }
    let world = &sandbox.world;
    let version_now = sandbox.version();
    let mut rows = Vec::new();
    for day in start.iter_days().take_while(|d| *d < end) {
        for unit in world.units(account) {
            let Some(ad) = unit.ad else { continue };
            let m = world.unit_metrics(account, &unit, day, version_now);
            if m.is_zero() {
                continue; // no delivery, no row
            }
            let mut row = serde_json::Map::new();
            row.insert("ad_id".into(), json!(ad.id));
            row.insert("date".into(), json!(day.to_string()));
            let purchases = m.conversions_micros / 1_000_000;
            for field in &fields {
                let value = match field.as_str() {
                    "IMPRESSIONS" => m.impressions,
                    "CLICKS" => m.clicks,
                    "SPEND" => m.spend_micros,
                    "CONVERSION_PURCHASE_CLICKS" => purchases - m.view_through_conversions,
                    "CONVERSION_PURCHASE_VIEWS" => m.view_through_conversions,
                    _ => m.conversion_value_micros / 10_000, // cents
                };
                row.insert(field.to_ascii_lowercase(), json!(value));
            }
            rows.push(Value::Object(row));
        }
    }
    let path = format!("/api/{version}/ad_accounts/{id}/reports");
    let next = next_url(&headers, &path, offset, size, rows.len());
    let page: Vec<Value> = rows.into_iter().skip(offset).take(size).collect();
    finish(json!({"data": {"metrics": page}, "pagination": {"next_url": next}}), fault)
}
