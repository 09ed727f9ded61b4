//! TikTok Business API v1.3, as documented at business-api.tiktok.com/portal/docs:
//! `report/integrated/get/` (synchronous reports), `advertiser/info/`, `campaign/get/`, `adgroup/get/`,
//! `ad/get/`. Auth by the `Access-Token` header. Every answer is HTTP 200 with the
//! `{code, message, request_id, data}` envelope; errors have a non-zero `code`. Array parameters are
//! JSON-encoded in the query string; numbers are strings; report dates read `YYYY-MM-DD 00:00:00`;
//! page paging (`page`, `page_size` ≤ 1000, `page_info.total_page`); daily reports cover ≤ 30 days.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::NaiveDate;
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind, Refusal};
use crate::json::{into_text, json_key, json_str};
use crate::world::{zero_decimal, Status};
use crate::Sandbox;

const PLATFORM: Platform = Platform::TikTokAds;
pub const SUPPORTED_VERSIONS: &[&str] = &["v1.3"];
const MAX_PAGE_SIZE: usize = 1000;
const MAX_DAILY_RANGE_DAYS: i64 = 30;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/open_api/{version}/report/integrated/get/", get(report))
        .route("/open_api/{version}/advertiser/info/", get(advertiser_info))
        .route("/open_api/{version}/campaign/get/", get(|s, v, h, q| entities(s, v, h, q, Level::Campaign)))
        .route("/open_api/{version}/adgroup/get/", get(|s, v, h, q| entities(s, v, h, q, Level::AdGroup)))
        .route("/open_api/{version}/ad/get/", get(|s, v, h, q| entities(s, v, h, q, Level::Ad)))
}

type Params = Query<HashMap<String, String>>;

fn envelope(code: i64, message: &str, data: Value) -> Response {
    let body = json!({"code": code, "message": message, "request_id": "2026sandbox0000000000", "data": data});
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error(code: i64, message: &str) -> Response {
    envelope(code, message, json!({}))
}

/// Checks every request shares: version, token, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, version: &str, headers: &HeaderMap) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    if !SUPPORTED_VERSIONS.contains(&version) {
        let body = json!({"code": 40404, "message": format!("API version {version} is not available; supported: v1.3"), "data": {}});
        return Err((StatusCode::NOT_FOUND, axum::Json(body)).into_response());
    }
    let token = headers.get("Access-Token").and_then(|v| v.to_str().ok()).unwrap_or("");
    if token.is_empty() {
        return Err(error(40104, "Access token is null, please add Access-Token in the request header."));
    }
    sandbox
        .faults
        .apply(PLATFORM, |refusal| match refusal {
            Refusal::Unauthorized => error(40105, "The access token is invalid or has expired. Please re-authorize."),
            Refusal::RateLimit { .. } => error(
                40100,
                "Too many requests: requests from this app are temporarily restricted due to rate limits, please retry later.",
            ),
            Refusal::ServerError => error(50000, "System error. Please try again later."),
        })
        .await
}

/// Apply a body-level fault to a successful answer.
fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    let text = body.to_string();
    match fault {
        Some(FaultKind::TruncatedJson) => {
            (StatusCode::OK, [("content-type", "application/json")], truncate(&text)).into_response()
        }
        _ => (StatusCode::OK, [("content-type", "application/json")], text).into_response(),
    }
}

fn ok(data: Value, fault: Option<FaultKind>) -> Response {
    finish(json!({"code": 0, "message": "OK", "request_id": "2026sandbox0000000000", "data": data}), fault)
}

/// A JSON-encoded array parameter: `["a","b"]`.
fn json_list(params: &HashMap<String, String>, name: &str) -> Result<Vec<String>, Response> {
    let raw = params.get(name).ok_or_else(|| error(40002, &format!("{name}: Missing data for required field.")))?;
    serde_json::from_str::<Vec<String>>(raw).map_err(|_| error(40002, &format!("{name}: Not a valid list.")))
}

fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let page = params
        .get("page")
        .map_or(Ok(1), |p| p.parse::<usize>())
        .map_err(|_| error(40002, "page: Not a valid integer."))?;
    let size = params
        .get("page_size")
        .map_or(Ok(10), |p| p.parse::<usize>())
        .map_err(|_| error(40002, "page_size: Not a valid integer."))?;
    if page == 0 || size == 0 || size > MAX_PAGE_SIZE {
        return Err(error(40002, "page_size: Must be between 1 and 1000."));
    }
    Ok((page, size))
}

fn page_of<T: Clone>(items: &[T], page: usize, size: usize) -> (Vec<T>, Value) {
    let total_page = items.len().div_ceil(size).max(1);
    let start = ((page - 1) * size).min(items.len());
    let end = (start + size).min(items.len());
    (
        items[start..end].to_vec(),
        json!({"page": page, "page_size": size, "total_number": items.len(), "total_page": total_page}),
    )
}

/// Money as TikTok writes it: a string with the currency's decimals.
fn money(micros: i64, currency: &str) -> String {
    if zero_decimal(currency) {
        format!("{}", micros / 1_000_000)
    } else {
        format!("{:.2}", rust_decimal::Decimal::new(micros, 6))
    }
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Active => "ENABLE",
        Status::Paused | Status::Removed => "DISABLE",
    }
}

fn secondary_status(prefix: &str, status: Status) -> String {
    match status {
        Status::Active => format!("{prefix}_STATUS_ENABLE"),
        Status::Paused => format!("{prefix}_STATUS_DISABLE"),
        Status::Removed => format!("{prefix}_STATUS_DELETE"),
    }
}

async fn advertiser_info(
    State(sandbox): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let ids = match json_list(&params, "advertiser_ids") {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    let mut list = Vec::new();
    for id in ids {
        let Some(a) = sandbox.world.account(PLATFORM, &id) else {
            return error(40002, &format!("advertiser_ids: advertiser {id} does not exist or you have no permission"));
        };
        list.push(json!({
            "advertiser_id": a.id, "name": a.name, "currency": a.currency, "timezone": a.timezone,
            "display_timezone": a.timezone, "status": "STATUS_ENABLE", "role": "ROLE_ADVERTISER",
        }));
    }
    ok(json!({"list": list}), fault)
}

#[derive(Clone, Copy)]
enum Level {
    Campaign,
    AdGroup,
    Ad,
}

async fn entities(
    State(sandbox): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
    level: Level,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(account) = params.get("advertiser_id").and_then(|id| sandbox.world.account(PLATFORM, id)) else {
        return error(40002, "advertiser_id: advertiser does not exist or you have no permission");
    };
    let (page, size) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut items = Vec::new();
    for c in &account.campaigns {
        match level {
            Level::Campaign => items.push(json!({
                "advertiser_id": account.id, "campaign_id": c.id, "campaign_name": c.name,
                "operation_status": status_name(c.status), "secondary_status": secondary_status("CAMPAIGN", c.status),
                "objective_type": "CONVERSIONS", "budget": "500.00", "create_time": "2026-01-01 00:00:00",
            })),
            Level::AdGroup => {
                for g in &c.ad_groups {
                    items.push(json!({
                        "advertiser_id": account.id, "campaign_id": c.id, "adgroup_id": g.id, "adgroup_name": g.name,
                        "operation_status": status_name(g.status), "secondary_status": secondary_status("ADGROUP", g.status),
                    }));
                }
            }
            Level::Ad => {
                for g in &c.ad_groups {
                    for ad in &g.ads {
                        items.push(json!({
                            "advertiser_id": account.id, "campaign_id": c.id, "adgroup_id": g.id, "ad_id": ad.id,
                            "ad_name": ad.name, "operation_status": status_name(ad.status),
                            "secondary_status": secondary_status("AD", ad.status),
                        }));
                    }
                }
            }
        }
    }
    let (list, page_info) = page_of(&items, page, size);
    ok(json!({"list": list, "page_info": page_info}), fault)
}

async fn report(
    State(sandbox): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(account) = params.get("advertiser_id").and_then(|id| sandbox.world.account(PLATFORM, id)) else {
        return error(40002, "advertiser_id: advertiser does not exist or you have no permission");
    };
    if params.get("report_type").map(String::as_str) != Some("BASIC") {
        return error(40002, "report_type: only BASIC is served by this endpoint in the sandbox");
    }
    if params.get("data_level").map(String::as_str) != Some("AUCTION_AD") {
        return error(40002, "data_level: the sandbox serves AUCTION_AD reports");
    }
    let (dimensions, metrics) = match (json_list(&params, "dimensions"), json_list(&params, "metrics")) {
        (Ok(d), Ok(m)) => (d, m),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    if dimensions != ["ad_id", "stat_time_day"] {
        return error(40002, "dimensions: the sandbox serves [\"ad_id\",\"stat_time_day\"]");
    }
    let date = |name: &str| params.get(name).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let (Some(start), Some(end)) = (date("start_date"), date("end_date")) else {
        return error(40002, "start_date, end_date: required, format YYYY-MM-DD");
    };
    if end < start {
        return error(40002, "end_date: must not be earlier than start_date");
    }
    if (end - start).num_days() + 1 > MAX_DAILY_RANGE_DAYS {
        return error(40002, "The time range of daily reports (stat_time_day) cannot exceed 30 days.");
    }
    let (page, size) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let version_now = sandbox.version();
    let world = &sandbox.world;
    // A metric named twice is one key; an unknown one fails the request once a row is rendered.
    let mut once: Vec<&str> = Vec::new();
    for metric in &metrics {
        if !once.contains(&metric.as_str()) {
            once.push(metric);
        }
    }
    let retired = sandbox.retired_field(PLATFORM, metrics.iter().map(String::as_str)).map(str::to_string);
    let invalid = metrics.iter().find(|m| Some(m.as_str()) == retired.as_deref()).or_else(|| {
        metrics.iter().find(|m| {
            crate::conversions::tiktok_metric(&Default::default(), m).is_none()
                && !matches!(
                    m.as_str(),
                    "spend"
                        | "impressions"
                        | "clicks"
                        | "video_play_actions"
                        | "likes"
                        | "comments"
                        | "shares"
                        | "campaign_id"
                        | "campaign_name"
                        | "adgroup_id"
                        | "adgroup_name"
                        | "ad_name"
                        | "currency"
                )
        })
    });
    // Rows are counted for page_info, but only the requested page is rendered.
    let (first, last) = ((page - 1) * size, page * size);
    let mut index = 0usize;
    let mut list: Vec<u8> = Vec::with_capacity(size.min(MAX_PAGE_SIZE) * 300);
    let units: Vec<_> = world.units(account).filter(|u| u.ad.is_some()).collect();
    for day in start.iter_days().take_while(|d| *d <= end) {
        for unit in &units {
            let (Some(group), Some(ad)) = (unit.ad_group, unit.ad) else { continue };
            let m = world.unit_metrics(account, unit, day, version_now);
            if m.is_zero() {
                continue; // TikTok leaves out rows whose metrics are all zero
            }
            index += 1;
            if index <= first || index > last {
                continue;
            }
            if let Some(other) = invalid {
                return error(40002, &format!("metrics: {other} is not a valid metric"));
            }
            if index > first + 1 {
                list.push(b',');
            }
            list.extend_from_slice(b"{\"dimensions\":{\"ad_id\":");
            json_str(&mut list, &ad.id);
            {
                use std::io::Write;
                write!(list, ",\"stat_time_day\":\"{day} 00:00:00\"}},\"metrics\":{{").expect("writing to a Vec");
            }
            for (i, metric) in once.iter().enumerate() {
                if i > 0 {
                    list.push(b',');
                }
                json_key(&mut list, metric);
                let v: Cow<'_, str> = match *metric {
                    "spend" => money(m.spend_micros, account.currency).into(),
                    "impressions" => m.impressions.to_string().into(),
                    "clicks" => m.clicks.to_string().into(),
                    "total_purchase_value" | "total_complete_payment_rate" | "total_sales_lead_value" => {
                        let value = crate::conversions::tiktok_metric(&m, metric).unwrap_or_default();
                        money(value, account.currency).into()
                    }
                    "video_play_actions" => m.video_views.to_string().into(),
                    "likes" => m.likes.to_string().into(),
                    "comments" => m.comments.to_string().into(),
                    "shares" => m.shares.to_string().into(),
                    "campaign_id" => unit.campaign.id.as_str().into(),
                    "campaign_name" => unit.campaign.name.as_str().into(),
                    "adgroup_id" => group.id.as_str().into(),
                    "adgroup_name" => group.name.as_str().into(),
                    "ad_name" => ad.name.as_str().into(),
                    "currency" => account.currency.into(),
                    // Conversion counts; unknown metrics failed above.
                    other => crate::micros_to_decimal(crate::conversions::tiktok_metric(&m, other).unwrap_or_default())
                        .into(),
                };
                json_str(&mut list, &v);
            }
            list.extend_from_slice(b"}}");
        }
    }
    let total_page = index.div_ceil(size).max(1);
    let mut body: Vec<u8> = Vec::with_capacity(list.len() + 256);
    body.extend_from_slice(
        b"{\"code\":0,\"message\":\"OK\",\"request_id\":\"2026sandbox0000000000\",\"data\":{\"list\":[",
    );
    body.extend_from_slice(&list);
    {
        use std::io::Write;
        write!(
            body,
            "],\"page_info\":{{\"page\":{page},\"page_size\":{size},\"total_number\":{index},\"total_page\":{total_page}}}}}}}"
        )
        .expect("writing to a Vec");
    }
    let text = into_text(body);
    match fault {
        Some(FaultKind::TruncatedJson) => {
            (StatusCode::OK, [("content-type", "application/json")], truncate(&text)).into_response()
        }
        _ => (StatusCode::OK, [("content-type", "application/json")], text).into_response(),
    }
}
