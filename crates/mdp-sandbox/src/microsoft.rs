//! Microsoft Advertising API v13 over REST (learn.microsoft.com/advertising; SOAP is deprecated on
//! 2027-01-31), written from its public reference, not from mdp's spec of it. Every operation is a POST
//! with a JSON body, on the host of its service:
//! - Customer Management `POST /CustomerManagement/v13/Account/Query` `{AccountId}` → `{Account: {Id, Name,
//!   CurrencyCode, TimeZone (Microsoft's names: EasternTimeUSCanada, …), AccountLifeCycleStatus, …}}`.
//! - Campaign Management `POST /CampaignManagement/v13/Campaigns/QueryByAccountId` `{AccountId,
//!   CampaignType}` → `{Campaigns, PartialErrors}`; `AdGroups/QueryByCampaignId` `{CampaignId}` →
//!   `{AdGroups}` (an ad group does not name its campaign); `Ads/QueryByAdGroupId` `{AdGroupId, AdTypes}`
//!   → `{Ads}` (a responsive search ad has no name: its headlines). Ids are numbers as JSON numbers.
//! - Reporting `POST /Reporting/v13/GenerateReport/Submit` `{ReportRequest: {Type:
//!   AdPerformanceReportRequest, Format: Csv, FormatVersion: "2.0", Aggregation: Daily, Columns, Scope:
//!   {AccountIds}, Time: {CustomDateRangeStart/End: {Day, Month, Year}, ReportTimeZone}, ExcludeReportHeader,
//!   ExcludeReportFooter, ExcludeColumnHeaders, …}}` → `{ReportRequestId}`; `GenerateReport/Poll`
//!   `{ReportRequestId}` → `{ReportRequestStatus: {Status: Pending|Success|Error, ReportDownloadUrl}}`; the
//!   URL (5 minutes) is of a **zip archive holding one CSV file** (UTF-8 with a byte order mark), and
//!   null when the report has no rows. Money is in the account's currency, as decimals.
//!
//! Headers: `Authorization: Bearer`, `DeveloperToken`, `CustomerAccountId` (and `CustomerId`, not checked
//! here). Errors: `{TrackingId, Type, Errors: [{Code, ErrorCode, Message}]}` with the HTTP status; 105
//! InvalidCredentials (401), 117 CallRateExceeded (429 here), 207 ConcurrentRequestOverLimit. The sandbox
//! reports days in the account's own time zone only, and refuses another `ReportTimeZone`.

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

pub const NAME: &str = "microsoft_ads";

/// Microsoft Advertising's platform, as mdp names it (a platform of a connector spec).
pub fn platform() -> Platform {
    Platform::Declared(mdp_core::DeclaredPlatform::intern(NAME))
}

/// The columns of the ad performance report the sandbox serves.
const COLUMNS: &[&str] = &[
    "TimePeriod",
    "AccountId",
    "CampaignId",
    "CampaignName",
    "AdGroupId",
    "AdGroupName",
    "AdId",
    "Impressions",
    "Clicks",
    "Spend",
    "Conversions",
    "Revenue",
    "CurrencyCode",
];

/// Microsoft's name of an IANA zone the world uses.
fn zone_name(timezone: &str) -> &'static str {
    match timezone {
        "America/New_York" => "EasternTimeUSCanada",
        "Europe/Berlin" => "AmsterdamBerlinBernRomeStockholmVienna",
        _ => "GreenwichMeanTimeDublinEdinburghLisbonLondon",
    }
}

/// Microsoft's report jobs (see [`crate::jobs`]).
pub type Reports = crate::jobs::Reports<Job>;

impl crate::jobs::ReportJob for Job {
    fn account(&self) -> &str {
        &self.account
    }
}

/// One report Microsoft is making.
#[derive(Debug, Clone)]
pub struct Job {
    account: String,
    start: NaiveDate,
    end: NaiveDate,
    columns: Vec<String>,
    header: bool,
    footer: bool,
    polls: u32,
    fails: bool,
}

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/CustomerManagement/{version}/Account/Query", post(account_query))
        .route(
            "/CampaignManagement/{version}/Campaigns/QueryByAccountId",
            post(|s, p, h, b| list(s, p, h, b, Level::Campaign)),
        )
        .route(
            "/CampaignManagement/{version}/AdGroups/QueryByCampaignId",
            post(|s, p, h, b| list(s, p, h, b, Level::AdGroup)),
        )
        .route("/CampaignManagement/{version}/Ads/QueryByAdGroupId", post(|s, p, h, b| list(s, p, h, b, Level::Ad)))
        .route("/Reporting/{version}/GenerateReport/Submit", post(submit))
        .route("/Reporting/{version}/GenerateReport/Poll", post(poll))
        .route("/_sandbox/microsoft/reports/{file}", get(download))
}

fn error(status: StatusCode, code: u32, error_code: &str, message: &str) -> Response {
    let body = json!({
        "TrackingId": "6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f", "Type": "ApplicationFault",
        "Errors": [{"Code": code, "ErrorCode": error_code, "Message": message}],
    });
    (status, axum::Json(body)).into_response()
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 100, "InvalidRequest", message)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

/// Checks every operation shares (version, token, developer token, the account the call acts on when
/// `scoped`, faults) and its JSON body. `Ok` carries the account, the body and a fault shaping the answer.
async fn guard<'s>(
    sandbox: &'s Sandbox,
    version: &str,
    headers: &HeaderMap,
    body: &str,
    scoped: bool,
) -> Result<(Option<&'s Account>, Value, Option<FaultKind>), Response> {
    sandbox.count_request();
    if version != "v13" {
        return Err(error(StatusCode::NOT_FOUND, 404, "NotFound", &format!("No API version {version}: use v13")));
    }
    let unauthorized = || {
        error(
            StatusCode::UNAUTHORIZED,
            105,
            "InvalidCredentials",
            "Authentication failed. Either supplied credentials are invalid or the account is inactive.",
        )
    };
    let Some(token) = header(headers, "authorization").and_then(|v| v.strip_prefix("Bearer ")) else {
        return Err(unauthorized());
    };
    if sandbox.oauth.check(platform(), token) == crate::TokenCheck::Expired {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            109,
            "AuthenticationTokenExpired",
            "The OAuth access token has expired.",
        ));
    }
    if header(headers, "developertoken").is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            106,
            "UserIsNotAuthorized",
            "The DeveloperToken header is missing.",
        ));
    }
    let account = match (scoped, header(headers, "customeraccountid")) {
        (false, _) => None,
        (true, None) => return Err(invalid("The CustomerAccountId header is required for this operation.")),
        (true, Some(id)) => match sandbox.world.account(platform(), id) {
            Some(account) => Some(account),
            None => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    1102,
                    "InvalidAccountId",
                    "The account identifier is not valid.",
                ))
            }
        },
    };
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return Err(invalid("The request body is not valid JSON."));
    };
    let fault = sandbox
        .faults
        .apply(platform(), |refusal| match refusal {
            Refusal::Unauthorized => unauthorized(),
            Refusal::RateLimit { .. } => error(StatusCode::TOO_MANY_REQUESTS, 117, "CallRateExceeded", "You have exceeded the number of calls that you are allowed to make in a given time period. Please wait for at least 60 seconds and try again."),
            Refusal::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, 0, "InternalError", "An internal error has occurred."),
        })
        .await?;
    Ok((account, body, fault))
}

/// [`guard`] for an operation on the `CustomerAccountId` header's account.
async fn scoped<'s>(
    sandbox: &'s Sandbox,
    version: &str,
    headers: &HeaderMap,
    body: &str,
) -> Result<(&'s Account, Value, Option<FaultKind>), Response> {
    match guard(sandbox, version, headers, body, true).await? {
        (Some(account), body, fault) => Ok((account, body, fault)),
        (None, ..) => unreachable!("a scoped call has its account"),
    }
}

fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    let text = body.to_string();
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    (StatusCode::OK, [("content-type", "application/json")], text).into_response()
}

/// An id as Microsoft writes it in JSON: a number.
fn number(id: &str) -> Value {
    json!(id.parse::<u64>().unwrap_or_default())
}

/// An id read from a request body, a number or a string of digits.
fn id_in(body: &Value, key: &str) -> Option<String> {
    match &body[key] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => Some(s.clone()),
        _ => None,
    }
}

async fn account_query(
    State(sandbox): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (_, body, fault) = match guard(&sandbox, &version, &headers, &body, false).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let Some(account) = id_in(&body, "AccountId").and_then(|id| sandbox.world.account(platform(), &id)) else {
        return error(StatusCode::BAD_REQUEST, 1102, "InvalidAccountId", "The account identifier is not valid.");
    };
    let answer = json!({"Account": {
        "Id": number(&account.id), "Name": account.name, "Number": format!("F1{:06}", mix(number(&account.id).as_u64().unwrap_or(0)) % 1_000_000),
        "CurrencyCode": account.currency, "TimeZone": zone_name(account.timezone),
        "AccountLifeCycleStatus": "Active", "Language": "English", "PauseReason": null,
    }});
    finish(answer, fault)
}

fn status(status: Status) -> &'static str {
    match status {
        Status::Active => "Active",
        Status::Paused => "Paused",
        Status::Removed => "Deleted",
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
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
    level: Level,
) -> Response {
    let (account, body, fault) = match scoped(&sandbox, &version, &headers, &body).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let answer = match level {
        Level::Campaign => {
            if id_in(&body, "AccountId").as_deref() != Some(account.id.as_str()) {
                return invalid("AccountId must be the CustomerAccountId header's account.");
            }
            if body["CampaignType"].as_str().is_none_or(|t| !t.split_whitespace().any(|t| t == "Search")) {
                return invalid("CampaignType must include Search (the sandbox's campaigns are search campaigns).");
            }
            let campaigns: Vec<Value> = account
                .campaigns
                .iter()
                .map(|c| {
                    json!({"Id": number(&c.id), "Name": c.name, "Status": status(c.status), "CampaignType": "Search",
                                "BudgetType": "DailyBudgetStandard", "TimeZone": zone_name(account.timezone)})
                })
                .collect();
            json!({"Campaigns": campaigns, "PartialErrors": null})
        }
        Level::AdGroup => {
            let Some(campaign) =
                id_in(&body, "CampaignId").and_then(|id| account.campaigns.iter().find(|c| c.id == id))
            else {
                return error(
                    StatusCode::BAD_REQUEST,
                    1100,
                    "CampaignIdInvalid",
                    "The campaign identifier is not valid.",
                );
            };
            let groups: Vec<Value> = campaign
                .ad_groups
                .iter()
                .map(|g| json!({"Id": number(&g.id), "Name": g.name, "Status": status(g.status), "Network": "OwnedAndOperatedAndSyndicatedSearch"}))
                .collect();
            json!({"AdGroups": groups, "PartialErrors": null})
        }
        Level::Ad => {
            let group = id_in(&body, "AdGroupId")
                .and_then(|id| account.campaigns.iter().flat_map(|c| &c.ad_groups).find(|g| g.id == id));
            let Some(group) = group else {
                return error(
                    StatusCode::BAD_REQUEST,
                    1201,
                    "AdGroupIdInvalid",
                    "The ad group identifier is not valid.",
                );
            };
            if body["AdTypes"].as_array().is_none_or(|types| types.is_empty()) {
                return invalid("AdTypes is required.");
            }
            let ads: Vec<Value> = group
                .ads
                .iter()
                .map(|ad| {
                    json!({"Id": number(&ad.id), "Type": "ResponsiveSearch", "Status": status(ad.status),
                           "Headlines": [{"Asset": {"Text": ad.name, "Type": "TextAsset"}, "PinnedField": null}],
                           "FinalUrls": [format!("https://shop.example/{}", ad.id)]})
                })
                .collect();
            json!({"Ads": ads, "PartialErrors": null})
        }
    };
    finish(answer, fault)
}

fn day_of(value: &Value, what: &str) -> Result<NaiveDate, String> {
    let part = |key: &str| value[key].as_u64().and_then(|n| u32::try_from(n).ok());
    match (part("Year"), part("Month"), part("Day")) {
        (Some(y), Some(m), Some(d)) => {
            NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(|| format!("{what} is not a date"))
        }
        _ => Err(format!("{what} needs Day, Month and Year")),
    }
}

/// A submit request's problem, or the job it makes.
fn check_report(sandbox: &Sandbox, account: &Account, body: &Value) -> Result<Job, String> {
    let request = &body["ReportRequest"];
    let text = |key: &str| request[key].as_str().unwrap_or_default();
    if text("Type") != "AdPerformanceReportRequest" {
        return Err(format!("Type {:?}: the sandbox serves AdPerformanceReportRequest", text("Type")));
    }
    if text("Format") != "Csv" {
        return Err("Format must be Csv".into());
    }
    if text("Aggregation") != "Daily" {
        return Err("the sandbox serves Aggregation Daily".into());
    }
    if request["ExcludeColumnHeaders"].as_bool() == Some(true) {
        return Err("the sandbox writes column headers (ExcludeColumnHeaders: false)".into());
    }
    let columns: Vec<String> = request["Columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let retired = sandbox.retired_field(platform(), columns.iter().map(String::as_str));
    if let Some(bad) = columns.iter().find(|c| !COLUMNS.contains(&c.as_str()) || Some(c.as_str()) == retired) {
        return Err(format!("Invalid column: {bad}"));
    }
    if !columns.iter().any(|c| c == "TimePeriod") {
        return Err("Daily reports need the TimePeriod column".into());
    }
    let scope: Vec<String> = request["Scope"]["AccountIds"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_u64().map(|n| n.to_string()).or_else(|| id.as_str().map(String::from)))
                .collect()
        })
        .unwrap_or_default();
    if scope != [account.id.clone()] {
        return Err("Scope.AccountIds must be the CustomerAccountId header's account".into());
    }
    let time = &request["Time"];
    let (start, end) = (
        day_of(&time["CustomDateRangeStart"], "CustomDateRangeStart")?,
        day_of(&time["CustomDateRangeEnd"], "CustomDateRangeEnd")?,
    );
    if end < start {
        return Err("CustomDateRangeEnd is before CustomDateRangeStart".into());
    }
    let zone = zone_name(account.timezone);
    if time["ReportTimeZone"].as_str() != Some(zone) {
        return Err(format!("the sandbox reports days in the account's own time zone: ReportTimeZone {zone}"));
    }
    Ok(Job {
        account: account.id.clone(),
        start,
        end,
        columns,
        header: request["ExcludeReportHeader"].as_bool() != Some(true),
        footer: request["ExcludeReportFooter"].as_bool() != Some(true),
        polls: 0,
        fails: false,
    })
}

async fn submit(
    State(sandbox): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (account, body, fault) = match scoped(&sandbox, &version, &headers, &body).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let mut job = match check_report(&sandbox, account, &body) {
        Ok(job) => job,
        Err(message) => return error(StatusCode::BAD_REQUEST, 2001, "InvalidReportRequest", &message),
    };
    let reports = &sandbox.microsoft;
    let (n, fails) = reports.create();
    job.fails = fails;
    let id = format!("{}{:06}", 3_000_000_000u64 + mix(sandbox.world.seed ^ n) % 1_000_000_000, n);
    reports.jobs.lock().expect("reports lock").insert(id.clone(), job);
    finish(json!({"ReportRequestId": id}), fault)
}

async fn poll(
    State(sandbox): State<Arc<Sandbox>>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let (account, body, fault) = match scoped(&sandbox, &version, &headers, &body).await {
        Ok(checked) => checked,
        Err(answer) => return answer,
    };
    let id = body["ReportRequestId"].as_str().unwrap_or_default().to_string();
    let mut jobs = sandbox.microsoft.jobs.lock().expect("reports lock");
    let Some(job) = jobs.get_mut(&id).filter(|job| job.account == account.id) else {
        return error(
            StatusCode::BAD_REQUEST,
            2100,
            "ReportingServiceInvalidReportId",
            "The report request identifier is not valid.",
        );
    };
    job.polls += 1;
    let status = match job.polls {
        1 => json!({"Status": "Pending", "ReportDownloadUrl": null}),
        _ if job.fails => json!({"Status": "Error", "ReportDownloadUrl": null}),
        // A report without rows has no file.
        _ if !has_rows(&sandbox, account, job) => json!({"Status": "Success", "ReportDownloadUrl": null}),
        _ => {
            let host = header(&headers, "host").unwrap_or("127.0.0.1");
            let signature = format!("{:016x}", mix(sandbox.world.seed ^ u64::from(job.polls)));
            let url = format!(
                "http://{host}/_sandbox/microsoft/reports/{id}.zip?sv=2023-01-03&se=5m&sr=b&sp=r&sig={signature}"
            );
            json!({"Status": "Success", "ReportDownloadUrl": url})
        }
    };
    finish(json!({"ReportRequestStatus": status}), fault)
}

/// The storage's answer for a file it does not hold.
const NO_FILE: (&str, &str) = ("BlobNotFound", "The specified blob does not exist.");

async fn download(State(sandbox): State<Arc<Sandbox>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    let id = file.trim_end_matches(".zip");
    let (job, account) = match sandbox.microsoft.to_download(&headers, id, NO_FILE, &sandbox.world, platform()) {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let csv = report_csv(&sandbox, account, &job);
    (StatusCode::OK, [("content-type", "application/zip")], zip_one(&format!("{id}.csv"), csv.as_bytes()))
        .into_response()
}

/// Money as Microsoft's CSV writes it: the currency's decimals, no thousands separator (FormatVersion 2.0).
fn money(micros: i64) -> String {
    rust_decimal::Decimal::new(micros, 6).normalize().to_string()
}

/// Whether the report has a row: any ad delivering on any of its days (the file is made at download).
fn has_rows(sandbox: &Sandbox, account: &Account, job: &Job) -> bool {
    let (world, version) = (&sandbox.world, sandbox.version());
    job.start.iter_days().take_while(|d| *d <= job.end).any(|day| {
        world
            .units(account)
            .any(|unit| unit.ad.is_some() && !world.unit_metrics(account, &unit, day, version).is_zero())
    })
}

fn report_rows(sandbox: &Sandbox, account: &Account, job: &Job) -> Vec<Vec<String>> {
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
            let row = job
                .columns
                .iter()
                .map(|column| match column.as_str() {
                    "TimePeriod" => day.to_string(),
                    "AccountId" => account.id.clone(),
                    "CampaignId" => unit.campaign.id.clone(),
                    "CampaignName" => unit.campaign.name.clone(),
                    "AdGroupId" => group.id.clone(),
                    "AdGroupName" => group.name.clone(),
                    "AdId" => ad.id.clone(),
                    "Impressions" => m.impressions.to_string(),
                    "Clicks" => m.clicks.to_string(),
                    "Spend" => money(m.spend_micros),
                    "Conversions" => (m.conversions_micros / 1_000_000).to_string(),
                    "Revenue" => money(m.conversion_value_micros),
                    _ => account.currency.to_string(),
                })
                .collect();
            rows.push(row);
        }
    }
    rows
}

/// The report's CSV text: a byte order mark, the report header (unless excluded), the column row, the
/// rows, the copyright footer (unless excluded); every value quoted.
fn report_csv(sandbox: &Sandbox, account: &Account, job: &Job) -> String {
    let quote = |values: &[String]| {
        values.iter().map(|v| format!("\"{}\"", v.replace('"', "\"\""))).collect::<Vec<_>>().join(",")
    };
    let rows = report_rows(sandbox, account, job);
    let mut text = String::from("\u{feff}");
    if job.header {
        for line in [
            "Report Name: mdp".to_string(),
            format!("Report Time: {}/{}", job.start, job.end),
            format!("Time Zone: {}", zone_name(account.timezone)),
            "Last Completed Available Day: ".to_string(),
            "Last Completed Available Hour: ".to_string(),
            "Report Aggregation: Daily".to_string(),
            "Report Filter: ".to_string(),
            "Potential Incomplete Data: false".to_string(),
            format!("Rows: {}", rows.len()),
            String::new(),
        ] {
            text.push_str(&quote(&[line]));
            text.push_str("\r\n");
        }
    }
    text.push_str(&quote(&job.columns));
    text.push_str("\r\n");
    for row in &rows {
        text.push_str(&quote(row));
        text.push_str("\r\n");
    }
    if job.footer {
        text.push_str("\r\n\"©2026 Microsoft Corporation. All rights reserved. \"\r\n");
    }
    text
}

/// A zip archive of one deflated file, as Microsoft's storage serves a report (written here, apart from
/// mdp's reader of them).
fn zip_one(name: &str, content: &[u8]) -> Vec<u8> {
    let mut deflate = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflate.write_all(content).expect("writing to memory");
    let packed = deflate.finish().expect("writing to memory");
    let mut crc = flate2::Crc::new();
    crc.update(content);
    let (crc, packed_len, size, name_len) = (crc.sum(), packed.len() as u32, content.len() as u32, name.len() as u16);
    let mut zip = Vec::with_capacity(packed.len() + 128);
    // Local file header: version 2.0, no flags, deflate, a fixed time (12:00, 2026-01-01).
    zip.extend_from_slice(b"PK\x03\x04");
    for half in [20u16, 0, 8, 0x6000, 0x5c21] {
        zip.extend_from_slice(&half.to_le_bytes());
    }
    for word in [crc, packed_len, size] {
        zip.extend_from_slice(&word.to_le_bytes());
    }
    zip.extend_from_slice(&name_len.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip.extend_from_slice(name.as_bytes());
    zip.extend_from_slice(&packed);
    let directory = zip.len() as u32;
    zip.extend_from_slice(b"PK\x01\x02");
    for half in [20u16, 20, 0, 8, 0x6000, 0x5c21] {
        zip.extend_from_slice(&half.to_le_bytes());
    }
    for word in [crc, packed_len, size] {
        zip.extend_from_slice(&word.to_le_bytes());
    }
    for half in [name_len, 0, 0, 0, 0] {
        zip.extend_from_slice(&half.to_le_bytes());
    }
    zip.extend_from_slice(&0u32.to_le_bytes()); // external attributes
    zip.extend_from_slice(&0u32.to_le_bytes()); // the local header's offset
    zip.extend_from_slice(name.as_bytes());
    let directory_len = zip.len() as u32 - directory;
    zip.extend_from_slice(b"PK\x05\x06");
    for half in [0u16, 0, 1, 1] {
        zip.extend_from_slice(&half.to_le_bytes());
    }
    zip.extend_from_slice(&directory_len.to_le_bytes());
    zip.extend_from_slice(&directory.to_le_bytes());
    zip.extend_from_slice(&0u16.to_le_bytes());
    zip
}
