//! Pinterest API v5 (developers.pinterest.com/docs/api/v5), written from its public reference, not from
//! mdp's spec of it:
//! - `GET /v5/ad_accounts/{id}`: `{id, name, owner{username, id}, country, currency, permissions, …}`; an ad
//!   account has no time zone: analytics dates are UTC days.
//! - Entity lists `GET /v5/ad_accounts/{id}/campaigns`, `…/ad_groups`, `…/ads`: `{items: […], bookmark}`,
//!   `page_size` 1..=250 (default 25), the next page asked for with `bookmark`; statuses `ACTIVE`, `PAUSED`,
//!   `ARCHIVED`; ids are strings.
//! - Asynchronous reports: `POST /v5/ad_accounts/{id}/reports` with `{start_date, end_date, granularity,
//!   level, columns, report_format, click_window_days, view_window_days, …}` answers `{report_status:
//!   IN_PROGRESS, token, message}`; `GET /v5/ad_accounts/{id}/reports?token=` answers `{report_status,
//!   url, size}`, `FINISHED` with a storage URL (5 minutes) of the file. A JSON file is **an object keyed
//!   by the entity** (the ad at level AD), each key holding that entity's rows (`DATE`, ids, metrics).
//!   At most 186 days a report and 914 days back. Money columns `*_IN_MICRO_DOLLAR` are micros of the ad
//!   account's currency.
//!
//! Auth: `Authorization: Bearer`; `POST /v5/oauth/token` renews it (the app as HTTP Basic; continuous
//! refresh tokens rotate). Errors are `{code, message}` with the HTTP status; rate limiting is HTTP 429
//! with `{code: 8}`.

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
use crate::world::{mix, Account, Status};
use crate::Sandbox;

pub const NAME: &str = "pinterest_ads";

/// Pinterest's platform, as mdp names it (a platform of a connector spec).
pub fn platform() -> Platform {
    Platform::Declared(mdp_core::DeclaredPlatform::intern(NAME))
}

const MAX_REPORT_DAYS: i64 = 186;
const RETENTION_DAYS: u64 = 914;
const PAGE_SIZES: std::ops::RangeInclusive<usize> = 1..=250;
/// The report columns the sandbox serves.
const COLUMNS: &[&str] = &[
    "AD_ID",
    "AD_GROUP_ID",
    "CAMPAIGN_ID",
    "AD_ACCOUNT_ID",
    "PAID_IMPRESSION",
    "CLICKTHROUGH_1",
    "SPEND_IN_MICRO_DOLLAR",
    "TOTAL_CHECKOUT",
    "TOTAL_CHECKOUT_VALUE_IN_MICRO_DOLLAR",
];

/// Pinterest's report jobs (see [`crate::jobs`]).
pub type Reports = crate::jobs::Reports<Job>;

impl crate::jobs::ReportJob for Job {
    fn account(&self) -> &str {
        &self.account
    }
}

/// One report Pinterest is making.
#[derive(Debug, Clone)]
pub struct Job {
    account: String,
    start: NaiveDate,
    end: NaiveDate,
    columns: Vec<String>,
    polls: u32,
    fails: bool,
}

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/{version}/ad_accounts/{account}", get(ad_account))
        .route("/{version}/ad_accounts/{account}/campaigns", get(|s, p, h, q| list(s, p, h, q, Level::Campaign)))
        .route("/{version}/ad_accounts/{account}/ad_groups", get(|s, p, h, q| list(s, p, h, q, Level::AdGroup)))
        .route("/{version}/ad_accounts/{account}/ads", get(|s, p, h, q| list(s, p, h, q, Level::Ad)))
        .route("/{version}/ad_accounts/{account}/reports", get(report_status).post(create_report))
        .route("/_sandbox/pinterest/reports/{file}", get(download))
}

type Params = Query<HashMap<String, String>>;

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, axum::Json(json!({"code": code, "message": message}))).into_response()
}

/// Checks every request shares: version, token, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, version: &str, headers: &HeaderMap) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    if version != "v5" {
        return Err(error(StatusCode::NOT_FOUND, 404, &format!("No API version {version}: the API is /v5")));
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let unauthorized = || error(StatusCode::UNAUTHORIZED, 2, "Authentication failed.");
    let Some(token) = bearer.filter(|token| !token.is_empty()) else {
        return Err(unauthorized());
    };
    if sandbox.oauth.check(platform(), token) == crate::TokenCheck::Expired {
        return Err(unauthorized());
    }
    sandbox
        .faults
        .apply(platform(), |refusal| match refusal {
            Refusal::Unauthorized => unauthorized(),
            Refusal::RateLimit { .. } => {
                error(StatusCode::TOO_MANY_REQUESTS, 8, "You have exceeded your rate limit. Try again later.")
            }
            Refusal::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, 1, "Internal error"),
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
        .ok_or_else(|| error(StatusCode::NOT_FOUND, 2404, &format!("Ad account {id} not found.")))
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
    let country = if account.currency == "GBP" { "GB" } else { "US" };
    let body = json!({
        "id": account.id, "name": account.name, "owner": {"username": "sandbox_brand", "id": "549755885175"},
        "country": country, "currency": account.currency, "permissions": ["ADMIN"],
        "created_time": 1_735_689_600, "updated_time": 1_767_225_600,
    });
    finish(body, fault)
}

fn status(status: Status) -> &'static str {
    match status {
        Status::Active => "ACTIVE",
        Status::Paused => "PAUSED",
        Status::Removed => "ARCHIVED",
    }
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
    let account = match account(&sandbox, &id) {
        Ok(account) => account,
        Err(answer) => return answer,
    };
    let size = params.get("page_size").map_or(Ok(25), |s| s.parse::<usize>());
    let Some(size) = size.ok().filter(|s| PAGE_SIZES.contains(s)) else {
        return error(StatusCode::BAD_REQUEST, 1, "page_size must be between 1 and 250");
    };
    // A bookmark is opaque to clients: an offset here.
    let offset = match params.get("bookmark").map(|b| b.strip_prefix("bm").and_then(|n| n.parse::<usize>().ok())) {
        None => 0,
        Some(Some(offset)) => offset,
        Some(None) => return error(StatusCode::BAD_REQUEST, 1, "Invalid bookmark"),
    };
    let mut items = Vec::new();
    for c in &account.campaigns {
        match level {
            Level::Campaign => items.push(json!({
                "id": c.id, "ad_account_id": account.id, "name": c.name, "status": status(c.status),
                "objective_type": "WEB_CONVERSION", "created_time": 1_735_689_600,
            })),
            Level::AdGroup => items.extend(c.ad_groups.iter().map(|g| {
                json!({"id": g.id, "ad_account_id": account.id, "campaign_id": c.id, "name": g.name,
                       "status": status(g.status), "billable_event": "CLICKTHROUGH"})
            })),
            Level::Ad => {
                for g in &c.ad_groups {
                    items.extend(g.ads.iter().map(|ad| {
                        json!({"id": ad.id, "ad_account_id": account.id, "campaign_id": c.id, "ad_group_id": g.id,
                               "name": ad.name, "status": status(ad.status), "creative_type": "REGULAR",
                               "pin_id": format!("9{}", ad.id)})
                    }));
                }
            }
        }
    }
    let bookmark = (offset + size < items.len()).then(|| format!("bm{}", offset + size));
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    finish(json!({"items": page, "bookmark": bookmark}), fault)
}

fn date(value: &Value, what: &str) -> Result<NaiveDate, String> {
    let text = value.as_str().ok_or_else(|| format!("{what} is required"))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("{what} {text:?} is not a date (YYYY-MM-DD)"))
}

/// A create request's problem, or the report's dates and columns.
fn check_report(sandbox: &Sandbox, request: &Value) -> Result<(NaiveDate, NaiveDate, Vec<String>), String> {
    let text = |key: &str| request[key].as_str().unwrap_or_default();
    if text("granularity") != "DAY" {
        return Err(format!("granularity {:?}: the sandbox serves DAY", text("granularity")));
    }
    if text("level") != "AD" {
        return Err(format!("level {:?}: the sandbox serves AD", text("level")));
    }
    if text("report_format") != "JSON" {
        return Err(format!("report_format {:?}: the sandbox serves JSON", text("report_format")));
    }
    let columns: Vec<String> = request["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if columns.is_empty() {
        return Err("columns is required".into());
    }
    let retired = sandbox.retired_field(platform(), columns.iter().map(String::as_str));
    if let Some(bad) = columns.iter().find(|c| !COLUMNS.contains(&c.as_str()) || Some(c.as_str()) == retired) {
        return Err(format!("Invalid column: {bad}"));
    }
    let (start, end) = (date(&request["start_date"], "start_date")?, date(&request["end_date"], "end_date")?);
    if end < start {
        return Err("end_date must not be before start_date".into());
    }
    if (end - start).num_days() + 1 > MAX_REPORT_DAYS {
        return Err(format!("Reports can span at most {MAX_REPORT_DAYS} days"));
    }
    if start < sandbox.world.today - chrono::Days::new(RETENTION_DAYS) {
        return Err(format!("start_date {start} is more than {RETENTION_DAYS} days ago"));
    }
    Ok((start, end, columns))
}

async fn create_report(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let account = match account(&sandbox, &id) {
        Ok(account) => account,
        Err(answer) => return answer,
    };
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, 1, "The request body is not valid JSON");
    };
    let (start, end, columns) = match check_report(&sandbox, &request) {
        Ok(checked) => checked,
        Err(message) => return error(StatusCode::BAD_REQUEST, 1, &message),
    };
    let reports = &sandbox.pinterest;
    let (n, fails) = reports.create();
    let token = format!("{:016x}{:08x}", mix(sandbox.world.seed ^ n), n);
    let job = Job { account: account.id.clone(), start, end, columns, polls: 0, fails };
    reports.jobs.lock().expect("reports lock").insert(token.clone(), job);
    finish(json!({"report_status": "IN_PROGRESS", "token": token, "message": null}), fault)
}

async fn report_status(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let Some(token) = params.get("token") else {
        return error(StatusCode::BAD_REQUEST, 1, "token is required");
    };
    let mut jobs = sandbox.pinterest.jobs.lock().expect("reports lock");
    let Some(job) = jobs.get_mut(token).filter(|job| job.account == id) else {
        return finish(json!({"report_status": "DOES_NOT_EXIST", "url": null, "size": null}), fault);
    };
    job.polls += 1;
    let answer = match job.polls {
        1 => json!({"report_status": "IN_PROGRESS", "url": null, "size": null}),
        _ if job.fails => json!({"report_status": "FAILED", "url": null, "size": null}),
        _ => {
            let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            let signature = format!("{:016x}", mix(sandbox.world.seed ^ u64::from(job.polls)));
            let url = format!(
                "http://{host}/_sandbox/pinterest/reports/{token}.json?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
            );
            json!({"report_status": "FINISHED", "url": url, "size": 2048})
        }
    };
    finish(answer, fault)
}

/// The storage's answer for a file it does not hold.
const NO_FILE: (&str, &str) = ("NoSuchKey", "The specified key does not exist.");

async fn download(State(sandbox): State<Arc<Sandbox>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let id = file.trim_end_matches(".json");
    let (job, account) = match sandbox.pinterest.to_download(&headers, id, NO_FILE, &sandbox.world, platform()) {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let file = Value::Object(report_file(&sandbox, account, &job)).to_string();
    (StatusCode::OK, [("content-type", "application/json")], file).into_response()
}

/// The report file: each ad's rows under its id, a row per day with delivery.
fn report_file(sandbox: &Sandbox, account: &Account, job: &Job) -> serde_json::Map<String, Value> {
    let world = &sandbox.world;
    let version = sandbox.version();
    let mut by_ad = serde_json::Map::new();
    for unit in world.units(account) {
        let (Some(ad), Some(group)) = (unit.ad, unit.ad_group) else { continue };
        let mut rows = Vec::new();
        for day in job.start.iter_days().take_while(|d| *d <= job.end) {
            let m = world.unit_metrics(account, &unit, day, version);
            if m.is_zero() {
                continue;
            }
            let mut row = serde_json::Map::new();
            row.insert("DATE".into(), json!(day.to_string()));
            for column in &job.columns {
                let value = match column.as_str() {
                    "AD_ID" => json!(ad.id),
                    "AD_GROUP_ID" => json!(group.id),
                    "CAMPAIGN_ID" => json!(unit.campaign.id),
                    "AD_ACCOUNT_ID" => json!(account.id),
                    "PAID_IMPRESSION" => json!(m.impressions),
                    "CLICKTHROUGH_1" => json!(m.clicks),
                    "SPEND_IN_MICRO_DOLLAR" => json!(m.spend_micros),
                    "TOTAL_CHECKOUT" => json!(m.conversions_micros / 1_000_000),
                    _ => json!(m.conversion_value_micros), // TOTAL_CHECKOUT_VALUE_IN_MICRO_DOLLAR
                };
                row.insert(column.clone(), value);
            }
            rows.push(Value::Object(row));
        }
        if !rows.is_empty() {
            by_ad.insert(ad.id.clone(), Value::Array(rows));
        }
    }
    by_ad
}
