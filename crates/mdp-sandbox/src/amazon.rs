//! Amazon Ads (Sponsored Products), written from Amazon's public reference, not from mdp's spec of it:
//! - `GET /v2/profiles` and `/v2/profiles/{profileId}`: `{profileId (number), countryCode, currencyCode,
//!   timezone (IANA), accountInfo{marketplaceStringId, id, type, name, validPaymentMethod}}`; no scope.
//! - Every other call needs `Authorization: Bearer`, `Amazon-Advertising-API-ClientId` and
//!   `Amazon-Advertising-API-Scope: <profileId>` (401 `{code, details}` without a known one).
//! - Entity lists `POST /sp/campaigns/list`, `/sp/adGroups/list`, `/sp/productAds/list` with their own
//!   media types (`application/vnd.spCampaign.v3+json`, …; 415 otherwise), body `{maxResults, nextToken,
//!   stateFilter{include}}`, answering `{campaigns|adGroups|productAds: […], totalResults, nextToken}`;
//!   ids are strings, states `ENABLED`/`PAUSED`/`ARCHIVED`; a product ad has an ASIN, no name.
//! - Reports v3, asynchronous: `POST /reporting/reports` (`application/vnd.createasyncreportrequest.v3+json`)
//!   with `{name, startDate, endDate, configuration{adProduct, reportTypeId, groupBy, columns, timeUnit,
//!   format}}` answers the report object `{reportId, status: PENDING, url: null, …}`; at most 31 days,
//!   95 days back; the same request again answers **425** `{code: "425", detail: "The Request is a
//!   duplicate of : <reportId>"}`. `GET /reporting/reports/{id}` moves PENDING → PROCESSING → COMPLETED
//!   (one step a poll here; minutes to hours at Amazon) and then carries `url`, a presigned storage URL
//!   (an hour) of a **gzip JSON array** whose ids are numbers and money is in the profile's currency units.
//!   The storage refuses a request that also carries an `Authorization` header (400), and an expired URL
//!   (403).
//!
//! Errors are `{code, details}` (v2), `{code, message}` (sp v3) or `{code, detail}` (reporting v3), as
//! Amazon's own differ. Rate limiting is HTTP 429 with `Retry-After`.

use std::io::Write as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind, Refusal};
use crate::world::{mix, Account, Status};
use crate::Sandbox;

pub const NAME: &str = "amazon_ads";

/// Amazon Ads' platform, as mdp names it (a platform of a connector spec).
pub fn platform() -> Platform {
    Platform::Declared(mdp_core::DeclaredPlatform::intern(NAME))
}

const MAX_REPORT_DAYS: i64 = 31;
const RETENTION_DAYS: u64 = 95;
const REPORT_MEDIA_TYPE: &str = "application/vnd.createasyncreportrequest.v3+json";
/// The columns of `spAdvertisedProduct` the sandbox serves.
const COLUMNS: &[&str] = &[
    "date",
    "campaignId",
    "campaignName",
    "adGroupId",
    "adGroupName",
    "adId",
    "advertisedAsin",
    "impressions",
    "clicks",
    "cost",
    "purchases7d",
    "sales7d",
    "campaignBudgetCurrencyCode",
];

/// Amazon's report jobs (see [`crate::jobs`]).
pub type Reports = crate::jobs::Reports<Job>;

impl crate::jobs::ReportJob for Job {
    fn account(&self) -> &str {
        &self.profile
    }
}

/// One report Amazon is making.
#[derive(Debug, Clone)]
pub struct Job {
    profile: String,
    /// The request that made it: an identical one is a duplicate.
    request: Value,
    start: NaiveDate,
    end: NaiveDate,
    columns: Vec<String>,
    polls: u32,
    fails: bool,
    created_at: String,
    /// An hour after it was made, as Amazon's URLs last.
    url_expires_at: String,
}

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/v2/profiles", get(profiles))
        .route("/v2/profiles/{profile}", get(profile))
        .route("/sp/campaigns/list", post(|s, h, b| list(s, h, b, Level::Campaign)))
        .route("/sp/adGroups/list", post(|s, h, b| list(s, h, b, Level::AdGroup)))
        .route("/sp/productAds/list", post(|s, h, b| list(s, h, b, Level::Ad)))
        .route("/reporting/reports", post(create_report))
        .route("/reporting/reports/{id}", get(report_status))
        .route("/_sandbox/amazon/reports/{file}", get(download))
}

fn error(status: StatusCode, key: &str, message: &str) -> Response {
    (status, axum::Json(json!({"code": status.as_u16().to_string(), key: message}))).into_response()
}

fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    let text = body.to_string();
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    (StatusCode::OK, [("content-type", "application/json")], text).into_response()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// Checks every call shares (token, client id, injected faults) and, for `scoped` calls, the profile
/// scope. `Ok` carries the profile and a fault that shapes the answer.
async fn guard<'s>(
    sandbox: &'s Sandbox,
    headers: &HeaderMap,
    scoped: bool,
) -> Result<(Option<&'s Account>, Option<FaultKind>), Response> {
    sandbox.count_request();
    let unauthorized = |details: &str| error(StatusCode::UNAUTHORIZED, "details", details);
    let Some(token) = header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(unauthorized("Not authorized to access this advertising resource."));
    };
    if sandbox.oauth.check(platform(), token) == crate::TokenCheck::Expired {
        return Err(unauthorized("Not authorized to access this advertising resource."));
    }
    if header(headers, "amazon-advertising-api-clientid").is_none() {
        return Err(error(StatusCode::BAD_REQUEST, "details", "Amazon-Advertising-API-ClientId header is missing"));
    }
    let account = match (scoped, header(headers, "amazon-advertising-api-scope")) {
        (false, _) => None,
        (true, None) => return Err(unauthorized("Scope header is missing")),
        (true, Some(scope)) => match sandbox.world.account(platform(), scope) {
            Some(account) => Some(account),
            None => return Err(unauthorized("No matching advertiser found for scope")),
        },
    };
    let fault = sandbox
        .faults
        .apply(platform(), |refusal| match refusal {
            Refusal::Unauthorized => unauthorized("Not authorized to access this advertising resource."),
            Refusal::RateLimit { retry_after_secs } => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                axum::Json(json!({"code": "429", "details": "Too Many Requests"})),
            )
                .into_response(),
            Refusal::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "details", "Internal Server Error"),
        })
        .await?;
    Ok((account, fault))
}

fn country(account: &Account) -> (&'static str, &'static str) {
    match account.currency {
        "JPY" => ("JP", "A1VC38T7YXB528"),
        "GBP" => ("UK", "A1F83G8C2ARO7P"),
        "EUR" => ("DE", "A1PA6795UKMFR9"),
        _ => ("US", "ATVPDKIKX0DER"),
    }
}

fn profile_json(account: &Account) -> Value {
    let (country, marketplace) = country(account);
    json!({
        "profileId": account.id.parse::<u64>().unwrap_or_default(),
        "countryCode": country,
        "currencyCode": account.currency,
        "dailyBudget": 999_999_999.0,
        "timezone": account.timezone,
        "accountInfo": {
            "marketplaceStringId": marketplace, "id": format!("A{}", account.id), "type": "seller",
            "name": account.name, "validPaymentMethod": true,
        },
    })
}

async fn profiles(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap) -> Response {
    let fault = match guard(&sandbox, &headers, false).await {
        Ok((_, fault)) => fault,
        Err(answer) => return answer,
    };
    let all: Vec<Value> = sandbox.world.accounts(platform()).map(profile_json).collect();
    finish(Value::Array(all), fault)
}

async fn profile(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let fault = match guard(&sandbox, &headers, false).await {
        Ok((_, fault)) => fault,
        Err(answer) => return answer,
    };
    match sandbox.world.account(platform(), &id) {
        Some(account) => finish(profile_json(account), fault),
        None => error(StatusCode::NOT_FOUND, "details", &format!("Profile {id} not found")),
    }
}

fn state(status: Status) -> &'static str {
    match status {
        Status::Active => "ENABLED",
        Status::Paused => "PAUSED",
        Status::Removed => "ARCHIVED",
    }
}

/// The ASIN of an ad (a product ad advertises one product).
fn asin(ad_id: &str) -> String {
    format!("B0{:08X}", mix(ad_id.bytes().fold(0u64, |h, b| h.wrapping_mul(31) + u64::from(b))) % 0xFFFF_FFFF)
}

#[derive(Clone, Copy)]
enum Level {
    Campaign,
    AdGroup,
    Ad,
}

impl Level {
    fn media_type(self) -> &'static str {
        match self {
            Level::Campaign => "application/vnd.spCampaign.v3+json",
            Level::AdGroup => "application/vnd.spAdGroup.v3+json",
            Level::Ad => "application/vnd.spProductAd.v3+json",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Level::Campaign => "campaigns",
            Level::AdGroup => "adGroups",
            Level::Ad => "productAds",
        }
    }
}

async fn list(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: String, level: Level) -> Response {
    let (account, fault) = match guard(&sandbox, &headers, true).await {
        Ok((Some(account), fault)) => (account, fault),
        Ok((None, _)) => unreachable!("a scoped call has its profile"),
        Err(answer) => return answer,
    };
    if header(&headers, "content-type") != Some(level.media_type()) {
        let message = format!("Content-Type must be {}", level.media_type());
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "message", &message);
    }
    let request: Value = if body.trim().is_empty() {
        json!({})
    } else {
        match serde_json::from_str(&body) {
            Ok(request) => request,
            Err(_) => return error(StatusCode::BAD_REQUEST, "message", "The request body is not valid JSON"),
        }
    };
    let size = request["maxResults"].as_u64().unwrap_or(100) as usize;
    if !(1..=5000).contains(&size) {
        return error(StatusCode::BAD_REQUEST, "message", "maxResults must be between 1 and 5000");
    }
    let offset = match request["nextToken"].as_str() {
        None => 0,
        Some(token) => match token.strip_prefix("nt-").and_then(|t| t.parse::<usize>().ok()) {
            Some(offset) => offset,
            None => return error(StatusCode::BAD_REQUEST, "message", "Invalid nextToken"),
        },
    };
    let included: Option<Vec<String>> = request["stateFilter"]["include"]
        .as_array()
        .map(|states| states.iter().filter_map(|s| s.as_str().map(str::to_ascii_uppercase)).collect());
    let keep = |status: Status| included.as_ref().is_none_or(|states| states.iter().any(|s| s == state(status)));
    let mut items = Vec::new();
    for c in &account.campaigns {
        match level {
            Level::Campaign if keep(c.status) => items.push(json!({
                "campaignId": c.id, "name": c.name, "state": state(c.status), "targetingType": "MANUAL",
                "startDate": "2026-01-01", "budget": {"budgetType": "DAILY", "budget": 50.0},
            })),
            Level::Campaign => {}
            Level::AdGroup => items.extend(c.ad_groups.iter().filter(|g| keep(g.status)).map(|g| {
                json!({"adGroupId": g.id, "campaignId": c.id, "name": g.name, "state": state(g.status), "defaultBid": 0.75})
            })),
            Level::Ad => {
                for g in &c.ad_groups {
                    items.extend(g.ads.iter().filter(|ad| keep(ad.status)).map(|ad| {
                        json!({
                            "adId": ad.id, "adGroupId": g.id, "campaignId": c.id, "state": state(ad.status),
                            "asin": asin(&ad.id),
                        })
                    }));
                }
            }
        }
    }
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    let mut answer = json!({ level.key(): page, "totalResults": total });
    if offset + size < total {
        answer["nextToken"] = json!(format!("nt-{}", offset + size));
    }
    finish(answer, fault)
}

fn report_json(id: &str, job: &Job, status: &str, url: Option<String>) -> Value {
    json!({
        "reportId": id, "name": job.request["name"], "status": status,
        "startDate": job.start.to_string(), "endDate": job.end.to_string(),
        "configuration": job.request["configuration"],
        "createdAt": job.created_at, "updatedAt": job.created_at,
        "generatedAt": if url.is_some() { json!(job.created_at) } else { Value::Null },
        "failureReason": if status == "FAILED" {
            json!("Report generation failed due to an internal error. Please retry.")
        } else {
            Value::Null
        },
        "fileSize": if url.is_some() { json!(1024) } else { Value::Null },
        "urlExpiresAt": if url.is_some() { json!(job.url_expires_at) } else { Value::Null },
        "url": url,
    })
}

fn date(value: &Value, what: &str) -> Result<NaiveDate, String> {
    let text = value.as_str().ok_or_else(|| format!("{what} is required"))?;
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| format!("{what} {text:?} is not a date (YYYY-MM-DD)"))
}

/// A create request's problem, as Amazon words it, or the report's dates and columns.
fn check_report(sandbox: &Sandbox, request: &Value) -> Result<(NaiveDate, NaiveDate, Vec<String>), String> {
    let configuration = &request["configuration"];
    let text = |key: &str| configuration[key].as_str().unwrap_or_default();
    if text("adProduct") != "SPONSORED_PRODUCTS" {
        return Err(format!("adProduct {:?} is not served by this sandbox (SPONSORED_PRODUCTS)", text("adProduct")));
    }
    if text("reportTypeId") != "spAdvertisedProduct" {
        return Err(format!(
            "reportTypeId {:?} is not served by this sandbox (spAdvertisedProduct)",
            text("reportTypeId")
        ));
    }
    if configuration["groupBy"] != json!(["advertiser"]) {
        return Err("spAdvertisedProduct groups by [\"advertiser\"]".into());
    }
    if text("format") != "GZIP_JSON" {
        return Err("format must be GZIP_JSON".into());
    }
    let columns: Vec<String> = configuration["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let retired = sandbox.retired_field(platform(), columns.iter().map(String::as_str));
    if let Some(bad) = columns.iter().find(|c| !COLUMNS.contains(&c.as_str()) || Some(c.as_str()) == retired) {
        return Err(format!("Invalid column: {bad}"));
    }
    match text("timeUnit") {
        "DAILY" if !columns.iter().any(|c| c == "date") => return Err("DAILY reports need the date column".into()),
        "DAILY" => {}
        other => return Err(format!("timeUnit {other:?}: the sandbox serves DAILY")),
    }
    let (start, end) = (date(&request["startDate"], "startDate")?, date(&request["endDate"], "endDate")?);
    if end < start {
        return Err("endDate must not be before startDate".into());
    }
    if (end - start).num_days() + 1 > MAX_REPORT_DAYS {
        return Err(format!("The report date range cannot exceed {MAX_REPORT_DAYS} days"));
    }
    if start < sandbox.world.today - chrono::Days::new(RETENTION_DAYS) {
        return Err(format!("startDate {start} is more than {RETENTION_DAYS} days ago"));
    }
    Ok((start, end, columns))
}

async fn create_report(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: String) -> Response {
    let (account, fault) = match guard(&sandbox, &headers, true).await {
        Ok((Some(account), fault)) => (account, fault),
        Ok((None, _)) => unreachable!("a scoped call has its profile"),
        Err(answer) => return answer,
    };
    if header(&headers, "content-type") != Some(REPORT_MEDIA_TYPE) {
        let message = format!("Content-Type must be {REPORT_MEDIA_TYPE}");
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "detail", &message);
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "detail", "The request body is not valid JSON");
    };
    let (start, end, columns) = match check_report(&sandbox, &request) {
        Ok(checked) => checked,
        Err(message) => return error(StatusCode::BAD_REQUEST, "detail", &message),
    };
    let reports = &sandbox.amazon;
    let mut jobs = reports.jobs.lock().expect("reports lock");
    if let Some((id, _)) =
        jobs.iter().find(|(_, job)| job.profile == account.id && job.request == request && !job.fails)
    {
        let detail = format!("The Request is a duplicate of : {id}");
        let body = json!({"code": "425", "detail": detail}).to_string();
        // A dropped connection cuts an error answer short as well.
        let body = if fault == Some(FaultKind::TruncatedJson) { truncate(&body) } else { body };
        let status = StatusCode::from_u16(425).expect("425 is a status");
        return (status, [("content-type", "application/json")], body).into_response();
    }
    let (n, fails) = reports.create();
    let h = mix(sandbox.world.seed ^ n);
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        (h >> 12) & 0xfff,
        mix(h) & 0xffff_ffff_ffff
    );
    let job = Job {
        profile: account.id.clone(),
        request,
        start,
        end,
        columns,
        polls: 0,
        fails,
        created_at: format!("{}T12:00:00.000Z", sandbox.world.today),
        url_expires_at: format!("{}T13:00:00.000Z", sandbox.world.today),
    };
    let answer = report_json(&id, &job, "PENDING", None);
    jobs.insert(id, job);
    finish(answer, fault)
}

async fn report_status(State(sandbox): State<Arc<Sandbox>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let (account, fault) = match guard(&sandbox, &headers, true).await {
        Ok((Some(account), fault)) => (account, fault),
        Ok((None, _)) => unreachable!("a scoped call has its profile"),
        Err(answer) => return answer,
    };
    let mut jobs = sandbox.amazon.jobs.lock().expect("reports lock");
    let Some(job) = jobs.get_mut(&id).filter(|job| job.profile == account.id) else {
        return error(StatusCode::NOT_FOUND, "detail", &format!("Report {id} not found"));
    };
    job.polls += 1;
    let (status, url) = match job.polls {
        1 => ("PROCESSING", None),
        _ if job.fails => ("FAILED", None),
        _ => {
            let host = header(&headers, "host").unwrap_or("127.0.0.1");
            let signature = format!("{:016x}", mix(sandbox.world.seed ^ u64::from(job.polls)));
            let url = format!(
                "http://{host}/_sandbox/amazon/reports/{id}.json.gz?X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
            );
            ("COMPLETED", Some(url))
        }
    };
    finish(report_json(&id, job, status, url), fault)
}

/// The storage's answer for a file it does not hold.
const NO_FILE: (&str, &str) = ("NoSuchKey", "The specified key does not exist.");

async fn download(State(sandbox): State<Arc<Sandbox>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let id = file.trim_end_matches(".json.gz");
    let (job, account) = match sandbox.amazon.to_download(&headers, id, NO_FILE, &sandbox.world, platform()) {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let rows = report_rows(&sandbox, account, &job);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(Value::Array(rows).to_string().as_bytes()).expect("writing to memory");
    let bytes = gz.finish().expect("writing to memory");
    (StatusCode::OK, [("content-type", "application/x-gzip")], bytes).into_response()
}

/// Money in the profile's currency units, as a JSON number (Amazon's are doubles: `12.34`).
fn units(micros: i64) -> Value {
    let decimal = rust_decimal::Decimal::new(micros, 6).normalize();
    serde_json::from_str(&decimal.to_string()).expect("a decimal is a JSON number")
}

fn report_rows(sandbox: &Sandbox, account: &Account, job: &Job) -> Vec<Value> {
    let world = &sandbox.world;
    let version = sandbox.version();
    let mut rows = Vec::new();
    for day in job.start.iter_days().take_while(|d| *d <= job.end) {
        for unit in world.units(account) {
            let (Some(ad), Some(group)) = (unit.ad, unit.ad_group) else { continue };
            let m = world.unit_metrics(account, &unit, day, version);
            if m.is_zero() {
                continue;
            }
            let mut row = serde_json::Map::new();
            for column in &job.columns {
                let number = |id: &str| json!(id.parse::<u64>().unwrap_or_default());
                let value = match column.as_str() {
                    "date" => json!(day.to_string()),
                    "campaignId" => number(&unit.campaign.id),
                    "campaignName" => json!(unit.campaign.name),
                    "adGroupId" => number(&group.id),
                    "adGroupName" => json!(group.name),
                    "adId" => number(&ad.id),
                    "advertisedAsin" => json!(asin(&ad.id)),
                    "impressions" => json!(m.impressions),
                    "clicks" => json!(m.clicks),
                    "cost" => units(m.spend_micros),
                    "purchases7d" => json!(m.conversions_micros / 1_000_000),
                    "sales7d" => units(m.conversion_value_micros),
                    _ => json!(account.currency), // campaignBudgetCurrencyCode
                };
                row.insert(column.clone(), value);
            }
            rows.push(Value::Object(row));
        }
    }
    rows
}
