//! Google Ads API (REST), as documented at developers.google.com/google-ads/api/rest:
//! `POST /{version}/customers/{customer_id}/googleAds:searchStream` with a JSON body `{"query": GAQL}`.
//!
//! Auth by `Authorization: Bearer <token>`; `developer-token` and `login-customer-id` are optional
//! headers (checked when sent). The answer is a JSON **array of batches**
//! `[{"results": [GoogleAdsRow…], "fieldMask": "…", "requestId": "…"}]`, at most 10,000 rows a batch;
//! rows are nested lowerCamelCase with `resourceName`s; int64 values (ids, impressions, clicks,
//! costMicros) are JSON strings, doubles (conversions, conversionsValue) JSON numbers; zero-valued
//! fields are omitted (proto3 JSON); rows whose metrics are all zero are not returned. Performance Max
//! campaigns have no ad groups or ads: their spend appears only in `FROM campaign` (and `customer`)
//! reports. Errors are `google.rpc.Status` bodies with a `GoogleAdsFailure` in `details`; a version
//! that is sunset (or never existed) is not routed at all: the front end answers an HTML 404.
//! `metrics.video_views` became `metrics.video_trueview_views` in v22.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::{Days, NaiveDate};
use mdp_core::Platform;
use serde_json::{json, Map, Value};

use crate::faults::{truncate, FaultKind};
use crate::world::{Account, Ad, AdGroup, Campaign, Metrics, Status, HISTORY_DAYS};
use crate::Sandbox;

const PLATFORM: Platform = Platform::GoogleAds;
pub const SUPPORTED_VERSIONS: &[&str] = &["v20", "v21", "v22"];
/// searchStream batches hold at most this many rows.
const BATCH_ROWS: usize = 10_000;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new().route("/{version}/customers/{customer_id}/googleAds:searchStream", post(search_stream))
}

/// A `google.rpc.Status` error with one `GoogleAdsFailure` error in its details.
fn failure(version: &str, http: StatusCode, status: &str, kind: &str, code: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": http.as_u16(),
        "message": status_message(status),
        "status": status,
        "details": [{
            "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
            "errors": [{"errorCode": {kind: code}, "message": message}],
            "requestId": "sandboxErrReq0001",
        }],
    }});
    (http, [("content-type", "application/json; charset=UTF-8")], body.to_string()).into_response()
}

fn status_message(status: &str) -> &'static str {
    match status {
        "UNAUTHENTICATED" => {
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."
        }
        "RESOURCE_EXHAUSTED" => "Resource has been exhausted (e.g. check quota).",
        "UNAVAILABLE" => "The service is currently unavailable.",
        "PERMISSION_DENIED" => "The caller does not have permission",
        _ => "Request contains an invalid argument.",
    }
}

fn invalid_query(version: &str, e: &QueryError) -> Response {
    failure(version, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "queryError", e.code, &e.message)
}

/// What Google's front end answers for a path it does not route (a sunset or unknown version).
fn not_found(path: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not found on this server.  \
         <ins>That’s all we know.</ins>\n"
    );
    (StatusCode::NOT_FOUND, [("content-type", "text/html; charset=UTF-8")], html).into_response()
}

/// Checks every request shares: version, token, headers, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, version: &str, customer_id: &str, headers: &HeaderMap) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(not_found(&format!("/{version}/customers/{customer_id}/googleAds:searchStream")));
    }
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let token = header("authorization").and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("");
    if token.is_empty() {
        let body = json!({"error": {
            "code": 401,
            "message": "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            "status": "UNAUTHENTICATED",
        }});
        return Err((StatusCode::UNAUTHORIZED, [("content-type", "application/json; charset=UTF-8")], body.to_string()).into_response());
    }
    if header("developer-token").is_some_and(str::is_empty) {
        return Err(failure(version, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "authenticationError", "DEVELOPER_TOKEN_INVALID", "The developer token is not valid."));
    }
    if let Some(login) = header("login-customer-id") {
        if login.is_empty() || !login.bytes().all(|b| b.is_ascii_digit()) {
            return Err(failure(
                version,
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "headerError",
                "INVALID_LOGIN_CUSTOMER_ID",
                "The login customer ID could not be validated: digits only, without dashes.",
            ));
        }
    }
    match sandbox.faults.take(PLATFORM, false) {
        Some(FaultKind::Unauthorized) => Err(failure(
            version,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authenticationError",
            "OAUTH_TOKEN_EXPIRED",
            "Oauth token in the header has expired.",
        )),
        Some(FaultKind::RateLimit { retry_after_secs }) => {
            let body = json!({"error": {
                "code": 429,
                "message": status_message("RESOURCE_EXHAUSTED"),
                "status": "RESOURCE_EXHAUSTED",
                "details": [{
                    "@type": format!("type.googleapis.com/google.ads.googleads.{version}.errors.GoogleAdsFailure"),
                    "errors": [{
                        "errorCode": {"quotaError": "RESOURCE_TEMPORARILY_EXHAUSTED"},
                        "message": "Too many requests. Retry in 30 seconds.",
                        "details": {"quotaErrorDetails": {"rateScope": "ACCOUNT", "rateName": "Requests per service per method", "retryDelay": format!("{retry_after_secs}s")}},
                    }],
                    "requestId": "sandboxErrReq0002",
                }],
            }});
            Err((
                StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "application/json; charset=UTF-8".to_string()), ("retry-after", retry_after_secs.to_string())],
                body.to_string(),
            )
                .into_response())
        }
        Some(FaultKind::ServerError) => Err(failure(
            version,
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "internalError",
            "TRANSIENT_ERROR",
            "The service encountered a transient error. Please retry.",
        )),
        Some(FaultKind::Slow { millis }) => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            Ok(None)
        }
        other => Ok(other),
    }
}

async fn search_stream(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, customer_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = match guard(&sandbox, &version, &customer_id, &headers).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !customer_id.bytes().all(|b| b.is_ascii_digit()) || customer_id.is_empty() {
        return failure(&version, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "requestError", "INVALID_CUSTOMER_ID", "Invalid customer ID: digits only, without dashes.");
    }
    let Some(account) = sandbox.world.account(PLATFORM, &customer_id) else {
        return failure(
            &version,
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "authorizationError",
            "USER_PERMISSION_DENIED",
            "User doesn't have permission to access customer. Note: If you're accessing a client customer, the manager's customer id must be set in the 'login-customer-id' header.",
        );
    };
    let query = match serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["query"].as_str().map(str::to_string)) {
        Some(q) => q,
        None => {
            return failure(&version, StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "requestError", "REQUIRED_FIELD_MISSING", "The request body must be JSON with a `query` string.")
        }
    };
    let query = match parse_query(&query, &version) {
        Ok(q) => q,
        Err(e) => return invalid_query(&version, &e),
    };
    let rows = render(&sandbox, account, &query);
    let field_mask: Vec<String> = query.fields.iter().map(|f| camel_path(f).join(".")).collect();
    let field_mask = field_mask.join(",");
    let request_id = format!("sandboxReq{:08}", sandbox.requests());
    let mut batches: Vec<Value> = rows
        .chunks(BATCH_ROWS)
        .map(|chunk| json!({"results": chunk, "fieldMask": field_mask, "requestId": request_id}))
        .collect();
    if batches.is_empty() {
        batches.push(json!({"fieldMask": field_mask, "requestId": request_id}));
    }
    if let Some(last) = batches.last_mut() {
        last["queryResourceConsumption"] = Value::String((rows.len() as u64 * 3 + 40).to_string());
    }
    let text = Value::Array(batches).to_string();
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    (StatusCode::OK, [("content-type", "application/json; charset=UTF-8")], text).into_response()
}

// ---------------------------------------------------------------------------------------------------
// GAQL, minimally but strictly.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Customer,
    Campaign,
    AdGroup,
    AdGroupAd,
}

impl Resource {
    fn parse(name: &str) -> Option<Resource> {
        match name {
            "customer" => Some(Resource::Customer),
            "campaign" => Some(Resource::Campaign),
            "ad_group" => Some(Resource::AdGroup),
            "ad_group_ad" => Some(Resource::AdGroupAd),
            _ => None,
        }
    }
    /// How deep the resource sits: customer < campaign < ad group < ad.
    fn depth(self) -> u8 {
        match self {
            Resource::Customer => 0,
            Resource::Campaign => 1,
            Resource::AdGroup => 2,
            Resource::AdGroupAd => 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub fields: Vec<String>,
    pub resource: Resource,
    /// Inclusive bounds from `segments.date` conditions.
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The `QueryError` enum value.
    pub code: &'static str,
    pub message: String,
}

fn qerr(code: &'static str, message: impl Into<String>) -> QueryError {
    QueryError { code, message: message.into() }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    Num(String),
    Op(String),
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            tokens.push(Tok::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            tokens.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c == '\'' || c == '"' {
            let start = i + 1;
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += 1;
            }
            if i >= chars.len() {
                return Err(qerr("UNEXPECTED_END_OF_QUERY", "Error in query: unterminated string literal."));
            }
            tokens.push(Tok::Str(chars[start..i].iter().collect()));
            i += 1;
        } else if c == ',' {
            tokens.push(Tok::Comma);
            i += 1;
        } else if matches!(c, '<' | '>' | '=' | '!') {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if matches!(two.as_str(), ">=" | "<=" | "!=") {
                tokens.push(Tok::Op(two));
                i += 2;
            } else if c == '!' {
                return Err(qerr("BAD_SYMBOL", "Error in query: unexpected '!'."));
            } else {
                tokens.push(Tok::Op(c.to_string()));
                i += 1;
            }
        } else {
            return Err(qerr("BAD_SYMBOL", format!("Error in query: unexpected input '{c}'.")));
        }
    }
    Ok(tokens)
}

fn is_keyword(tok: Option<&Tok>, keyword: &str) -> bool {
    matches!(tok, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
}

/// The metrics the sandbox serves, by API version (v22 renamed the video view metric).
fn metric_known(name: &str, version: &str) -> Result<(), &'static str> {
    let major: u32 = version.trim_start_matches('v').parse().unwrap_or(0);
    match name {
        "impressions" | "clicks" | "cost_micros" | "conversions" | "conversions_value" | "view_through_conversions" => Ok(()),
        "video_views" if major < 22 => Ok(()),
        "video_trueview_views" if major >= 22 => Ok(()),
        _ => Err("UNRECOGNIZED_FIELD"),
    }
}

/// Whether `field` can be selected with `resource` in FROM.
fn check_field(field: &str, resource: Resource, version: &str) -> Result<(), QueryError> {
    if field == "segments.date" {
        return Ok(());
    }
    if let Some(metric) = field.strip_prefix("metrics.") {
        return metric_known(metric, version).map_err(|code| qerr(code, format!("Error in query: unrecognized field '{field}'.")));
    }
    let (owner, known) = match field.split_once('.') {
        Some(("customer", rest)) => (Resource::Customer, matches!(rest, "id" | "descriptive_name" | "currency_code" | "time_zone" | "resource_name")),
        Some(("campaign", rest)) => {
            (Resource::Campaign, matches!(rest, "id" | "name" | "status" | "resource_name" | "advertising_channel_type"))
        }
        Some(("ad_group", rest)) => (Resource::AdGroup, matches!(rest, "id" | "name" | "status" | "resource_name" | "campaign")),
        Some(("ad_group_ad", rest)) => {
            (Resource::AdGroupAd, matches!(rest, "ad.id" | "ad.name" | "ad.type" | "ad.resource_name" | "status" | "resource_name" | "ad_group"))
        }
        _ => return Err(qerr("UNRECOGNIZED_FIELD", format!("Error in query: unrecognized field '{field}'."))),
    };
    if !known {
        return Err(qerr("UNRECOGNIZED_FIELD", format!("Error in query: unrecognized field '{field}'.")));
    }
    if owner.depth() > resource.depth() {
        return Err(qerr(
            "PROHIBITED_FIELD_IN_SELECT_CLAUSE",
            format!("Error in query: '{field}' cannot be selected when the FROM clause is a higher-level resource."),
        ));
    }
    Ok(())
}

fn date_literal(tok: Option<&Tok>) -> Result<NaiveDate, QueryError> {
    match tok {
        Some(Tok::Str(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| qerr("INVALID_DATE_FORMAT", format!("Error in query: '{s}' is not a date in the format YYYY-MM-DD."))),
        _ => Err(qerr("BAD_VALUE", "Error in query: expected a quoted date 'YYYY-MM-DD'.")),
    }
}

/// Parse `SELECT … FROM … [WHERE segments.date …] [ORDER BY …] [LIMIT n]`.
pub fn parse_query(text: &str, version: &str) -> Result<Query, QueryError> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    if !is_keyword(tokens.first(), "SELECT") {
        return Err(qerr("EXPECTED_SELECT", "Error in query: expected SELECT."));
    }
    pos += 1;
    let mut fields: Vec<String> = Vec::new();
    loop {
        match tokens.get(pos) {
            Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("FROM") => fields.push(w.clone()),
            _ => return Err(qerr("UNEXPECTED_INPUT", "Error in query: expected a field name in the SELECT clause.")),
        }
        pos += 1;
        if tokens.get(pos) == Some(&Tok::Comma) {
            pos += 1;
            continue;
        }
        break;
    }
    if !is_keyword(tokens.get(pos), "FROM") {
        return Err(qerr("EXPECTED_FROM", "Error in query: expected FROM."));
    }
    pos += 1;
    let resource = match tokens.get(pos) {
        Some(Tok::Word(w)) => Resource::parse(w).ok_or_else(|| {
            qerr("PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE", format!("Error in query: '{w}' cannot be used in the FROM clause (the sandbox serves customer, campaign, ad_group, ad_group_ad)."))
        })?,
        _ => return Err(qerr("UNEXPECTED_END_OF_QUERY", "Error in query: expected a resource after FROM.")),
    };
    pos += 1;
    for field in &fields {
        check_field(field, resource, version)?;
    }
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    if is_keyword(tokens.get(pos), "WHERE") {
        pos += 1;
        loop {
            match tokens.get(pos) {
                Some(Tok::Word(w)) if w == "segments.date" => {}
                Some(Tok::Word(w)) => {
                    check_field(w, resource, version)?;
                    return Err(qerr("PROHIBITED_FIELD_IN_WHERE_CLAUSE", format!("Error in query: the sandbox filters only on segments.date, not '{w}'.")));
                }
                _ => return Err(qerr("UNEXPECTED_INPUT", "Error in query: expected a condition after WHERE/AND.")),
            }
            pos += 1;
            match tokens.get(pos) {
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("BETWEEN") => {
                    let a = date_literal(tokens.get(pos + 1))?;
                    if !is_keyword(tokens.get(pos + 2), "AND") {
                        return Err(qerr("EXPECTED_AND", "Error in query: expected AND in BETWEEN."));
                    }
                    let b = date_literal(tokens.get(pos + 3))?;
                    starts.push(a);
                    ends.push(b);
                    pos += 4;
                }
                Some(Tok::Op(op)) => {
                    let d = date_literal(tokens.get(pos + 1))?;
                    match op.as_str() {
                        ">=" => starts.push(d),
                        ">" => starts.push(d + Days::new(1)),
                        "<=" => ends.push(d),
                        "<" => ends.push(d - Days::new(1)),
                        "=" => {
                            starts.push(d);
                            ends.push(d);
                        }
                        _ => return Err(qerr("BAD_OPERATOR", format!("Error in query: operator {op} is not supported on segments.date."))),
                    }
                    pos += 2;
                }
                _ => return Err(qerr("BAD_OPERATOR", "Error in query: expected BETWEEN, =, <, <=, > or >= after segments.date.")),
            }
            if is_keyword(tokens.get(pos), "AND") {
                pos += 1;
                continue;
            }
            break;
        }
    }
    // Several conditions intersect.
    let start = starts.into_iter().max();
    let end = ends.into_iter().min();
    if is_keyword(tokens.get(pos), "ORDER") {
        if !is_keyword(tokens.get(pos + 1), "BY") {
            return Err(qerr("EXPECTED_BY", "Error in query: expected BY after ORDER."));
        }
        pos += 2;
        loop {
            match tokens.get(pos) {
                Some(Tok::Word(w)) => check_field(w, resource, version)?,
                _ => return Err(qerr("UNEXPECTED_INPUT", "Error in query: expected a field in ORDER BY.")),
            }
            pos += 1;
            if is_keyword(tokens.get(pos), "ASC") || is_keyword(tokens.get(pos), "DESC") {
                pos += 1;
            }
            if tokens.get(pos) == Some(&Tok::Comma) {
                pos += 1;
                continue;
            }
            break;
        }
    }
    let mut limit = None;
    if is_keyword(tokens.get(pos), "LIMIT") {
        match tokens.get(pos + 1) {
            Some(Tok::Num(n)) => limit = Some(n.parse().map_err(|_| qerr("BAD_LIMIT_VALUE", "Error in query: bad LIMIT."))?),
            _ => return Err(qerr("BAD_LIMIT_VALUE", "Error in query: LIMIT needs a number.")),
        }
        pos += 2;
    }
    if pos < tokens.len() {
        return Err(qerr("UNEXPECTED_INPUT", format!("Error in query: unexpected input {:?}.", tokens[pos])));
    }
    if fields.iter().any(|f| f == "segments.date") && (start.is_none() || end.is_none()) {
        return Err(qerr(
            "EXPECTED_FILTERS_ON_DATE_RANGE",
            "Error in query: a finite date range on segments.date is required in the WHERE clause when segments.date is selected.",
        ));
    }
    Ok(Query { fields, resource, start, end, limit })
}

// ---------------------------------------------------------------------------------------------------
// Rendering rows from the world.

fn camel(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut upper = false;
    for c in segment.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn camel_path(field: &str) -> Vec<String> {
    field.split('.').map(camel).collect()
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Active => "ENABLED",
        Status::Paused => "PAUSED",
        Status::Removed => "REMOVED",
    }
}

/// One row's entities, day and metrics.
struct Row<'a> {
    account: &'a Account,
    campaign: Option<&'a Campaign>,
    ad_group: Option<&'a AdGroup>,
    ad: Option<&'a Ad>,
    date: Option<NaiveDate>,
    metrics: Metrics,
}

fn int64(v: i64) -> Option<Value> {
    (v != 0).then(|| Value::String(v.to_string()))
}

fn double(micros: i64) -> Option<Value> {
    // micros / 1e6 is correctly rounded, and JSON prints the shortest text that reads back the same
    // double: 1.5, 45.67.
    (micros != 0).then(|| Value::from(micros as f64 / 1_000_000.0))
}

fn field_value(row: &Row<'_>, field: &str) -> Option<Value> {
    let a = row.account;
    let text = |s: &str| Some(Value::String(s.to_string()));
    let m = &row.metrics;
    match field {
        "customer.id" => text(&a.id),
        "customer.resource_name" => text(&format!("customers/{}", a.id)),
        "customer.descriptive_name" => text(&a.name),
        "customer.currency_code" => text(a.currency),
        "customer.time_zone" => text(a.timezone),
        "campaign.id" => row.campaign.map(|c| Value::String(c.id.clone())),
        "campaign.resource_name" => row.campaign.map(|c| json!(format!("customers/{}/campaigns/{}", a.id, c.id))),
        "campaign.name" => row.campaign.map(|c| Value::String(c.name.clone())),
        "campaign.status" => row.campaign.map(|c| json!(status_name(c.status))),
        "campaign.advertising_channel_type" => row.campaign.map(|c| json!(if c.performance_max { "PERFORMANCE_MAX" } else { "SEARCH" })),
        "ad_group.id" => row.ad_group.map(|g| Value::String(g.id.clone())),
        "ad_group.resource_name" => row.ad_group.map(|g| json!(format!("customers/{}/adGroups/{}", a.id, g.id))),
        "ad_group.name" => row.ad_group.map(|g| Value::String(g.name.clone())),
        "ad_group.status" => row.ad_group.map(|g| json!(status_name(g.status))),
        "ad_group.campaign" => row.campaign.map(|c| json!(format!("customers/{}/campaigns/{}", a.id, c.id))),
        "ad_group_ad.ad.id" => row.ad.map(|ad| Value::String(ad.id.clone())),
        "ad_group_ad.ad.name" => row.ad.map(|ad| Value::String(ad.name.clone())),
        "ad_group_ad.ad.type" => row.ad.map(|_| json!("RESPONSIVE_SEARCH_AD")),
        "ad_group_ad.ad.resource_name" => row.ad.map(|ad| json!(format!("customers/{}/ads/{}", a.id, ad.id))),
        "ad_group_ad.status" => row.ad.map(|ad| json!(status_name(ad.status))),
        "ad_group_ad.resource_name" => match (row.ad_group, row.ad) {
            (Some(g), Some(ad)) => Some(json!(format!("customers/{}/adGroupAds/{}~{}", a.id, g.id, ad.id))),
            _ => None,
        },
        "ad_group_ad.ad_group" => row.ad_group.map(|g| json!(format!("customers/{}/adGroups/{}", a.id, g.id))),
        "segments.date" => row.date.map(|d| Value::String(d.to_string())),
        "metrics.impressions" => int64(m.impressions),
        "metrics.clicks" => int64(m.clicks),
        "metrics.cost_micros" => int64(m.spend_micros),
        "metrics.conversions" => double(m.conversions_micros),
        "metrics.conversions_value" => double(m.conversion_value_micros),
        "metrics.view_through_conversions" => int64(m.view_through_conversions),
        "metrics.video_views" | "metrics.video_trueview_views" => int64(m.video_views),
        _ => None,
    }
}

fn insert_path(object: &mut Map<String, Value>, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            object.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let child = object.entry(first.clone()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(child) = child {
                insert_path(child, rest, value);
            }
        }
    }
}

fn render_row(row: &Row<'_>, fields: &[String], resource: Resource) -> Value {
    let mut object = Map::new();
    // The FROM resource, and every resource whose fields are selected, carry their resource name.
    let owners = [
        (Resource::Customer, "customer", "customer.resource_name"),
        (Resource::Campaign, "campaign", "campaign.resource_name"),
        (Resource::AdGroup, "ad_group", "ad_group.resource_name"),
        (Resource::AdGroupAd, "ad_group_ad", "ad_group_ad.resource_name"),
    ];
    for (owner, prefix, name) in owners {
        let selected = fields.iter().any(|f| f.split('.').next() == Some(prefix));
        if owner == resource || selected {
            if let Some(v) = field_value(row, name) {
                insert_path(&mut object, &camel_path(name), v);
            }
        }
    }
    for f in fields {
        if let Some(v) = field_value(row, f) {
            insert_path(&mut object, &camel_path(f), v);
        }
    }
    Value::Object(object)
}

fn render(sandbox: &Sandbox, account: &Account, query: &Query) -> Vec<Value> {
    let world = &sandbox.world;
    let version = sandbox.version();
    // The entities of the FROM resource.
    let mut entities: Vec<(Option<&Campaign>, Option<&AdGroup>, Option<&Ad>)> = Vec::new();
    match query.resource {
        Resource::Customer => entities.push((None, None, None)),
        Resource::Campaign => entities.extend(account.campaigns.iter().map(|c| (Some(c), None, None))),
        Resource::AdGroup => {
            entities.extend(account.campaigns.iter().flat_map(|c| c.ad_groups.iter().map(move |g| (Some(c), Some(g), None))))
        }
        Resource::AdGroupAd => entities.extend(account.campaigns.iter().flat_map(|c| {
            c.ad_groups.iter().flat_map(move |g| g.ads.iter().map(move |ad| (Some(c), Some(g), Some(ad))))
        })),
    }
    let with_metrics = query.fields.iter().any(|f| f.starts_with("metrics.") || f == "segments.date");
    let segmented = query.fields.iter().any(|f| f == "segments.date");
    let mut rows = Vec::new();
    let units: Vec<_> = world.units(account).collect();
    let metrics_of = |entity: &(Option<&Campaign>, Option<&AdGroup>, Option<&Ad>), day: NaiveDate| {
        let mut total = Metrics::default();
        for unit in &units {
            let belongs = match entity {
                (_, _, Some(ad)) => unit.ad.is_some_and(|u| u.id == ad.id),
                (_, Some(g), None) => unit.ad_group.is_some_and(|u| u.id == g.id),
                (Some(c), None, None) => unit.campaign.id == c.id,
                _ => true,
            };
            if belongs {
                total.add(&world.unit_metrics(account, unit, day, version));
            }
        }
        total
    };
    for entity in &entities {
        let (campaign, ad_group, ad) = *entity;
        if !with_metrics {
            rows.push(render_row(&Row { account, campaign, ad_group, ad, date: None, metrics: Metrics::default() }, &query.fields, query.resource));
            continue;
        }
        let start = query.start.unwrap_or(world.today - Days::new(HISTORY_DAYS)).max(world.today - Days::new(HISTORY_DAYS + 30));
        let end = query.end.unwrap_or(world.today).min(world.today);
        let days = start.iter_days().take_while(|d| *d <= end);
        if segmented {
            for day in days {
                let metrics = metrics_of(entity, day);
                if metrics.is_zero() {
                    continue; // rows without delivery are not returned
                }
                rows.push(render_row(&Row { account, campaign, ad_group, ad, date: Some(day), metrics }, &query.fields, query.resource));
            }
        } else {
            let mut metrics = Metrics::default();
            for day in days {
                metrics.add(&metrics_of(entity, day));
            }
            if !metrics.is_zero() {
                rows.push(render_row(&Row { account, campaign, ad_group, ad, date: None, metrics }, &query.fields, query.resource));
            }
        }
    }
    if let Some(limit) = query.limit {
        rows.truncate(limit);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn parses_a_daily_report_query() {
        let q = parse_query(
            "SELECT campaign.id, ad_group.id, ad_group_ad.ad.id, segments.date, metrics.cost_micros, metrics.conversions\n\
             FROM ad_group_ad WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-30' ORDER BY segments.date LIMIT 5",
            "v21",
        )
        .unwrap();
        assert_eq!(q.resource, Resource::AdGroupAd);
        assert_eq!(q.fields.len(), 6);
        assert_eq!((q.start, q.end), (Some(date("2026-06-01")), Some(date("2026-06-30"))));
        assert_eq!(q.limit, Some(5));
    }

    #[test]
    fn comparison_operators_narrow_the_range_and_keywords_ignore_case() {
        let q = parse_query(
            "select campaign.id, segments.date, metrics.clicks from campaign where segments.date >= '2026-06-01' and segments.date < '2026-06-11'",
            "v21",
        )
        .unwrap();
        assert_eq!((q.start, q.end), (Some(date("2026-06-01")), Some(date("2026-06-10"))));
    }

    #[test]
    fn rejects_what_google_rejects() {
        let code = |q: &str| parse_query(q, "v21").unwrap_err().code;
        assert_eq!(code("SELECT campaign.id FROM keyword_view"), "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE");
        assert_eq!(code("SELECT campaign.budget FROM campaign"), "UNRECOGNIZED_FIELD");
        assert_eq!(code("SELECT ad_group.id FROM campaign"), "PROHIBITED_FIELD_IN_SELECT_CLAUSE");
        assert_eq!(code("SELECT campaign.id, segments.date, metrics.clicks FROM campaign"), "EXPECTED_FILTERS_ON_DATE_RANGE");
        assert_eq!(code("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-06-01' '2026-06-02'"), "EXPECTED_AND");
        assert_eq!(code("SELECT campaign.id FROM campaign WHERE segments.date = '06/01/2026'"), "INVALID_DATE_FORMAT");
        assert_eq!(code("campaign.id FROM campaign"), "EXPECTED_SELECT");
        assert_eq!(code("SELECT campaign.id campaign"), "EXPECTED_FROM");
    }

    #[test]
    fn the_video_view_metric_was_renamed_in_v22() {
        assert!(parse_query("SELECT metrics.video_views FROM campaign", "v21").is_ok());
        assert_eq!(parse_query("SELECT metrics.video_views FROM campaign", "v22").unwrap_err().code, "UNRECOGNIZED_FIELD");
        assert!(parse_query("SELECT metrics.video_trueview_views FROM campaign", "v22").is_ok());
    }

    #[test]
    fn rows_are_nested_camel_case_with_strings_for_int64_and_no_zero_fields() {
        let world = crate::World::new(1, date("2026-06-30"), crate::Scale::default());
        let account = world.accounts(PLATFORM).next().unwrap();
        let campaign = &account.campaigns[0];
        let metrics = Metrics { impressions: 100, clicks: 0, spend_micros: 1_230_000, conversions_micros: 1_500_000, ..Metrics::default() };
        let row = Row { account, campaign: Some(campaign), ad_group: None, ad: None, date: Some(date("2026-06-01")), metrics };
        let fields: Vec<String> =
            ["campaign.id", "segments.date", "metrics.impressions", "metrics.clicks", "metrics.cost_micros", "metrics.conversions"]
                .map(String::from)
                .to_vec();
        let v = render_row(&row, &fields, Resource::Campaign);
        assert_eq!(v["campaign"]["id"], json!(campaign.id));
        assert_eq!(v["campaign"]["resourceName"], json!(format!("customers/{}/campaigns/{}", account.id, campaign.id)));
        assert_eq!(v["metrics"]["impressions"], json!("100"));
        assert_eq!(v["metrics"]["costMicros"], json!("1230000"));
        assert_eq!(v["metrics"]["conversions"], json!(1.5));
        assert!(v["metrics"].get("clicks").is_none(), "zero fields are omitted");
        assert_eq!(v["segments"]["date"], json!("2026-06-01"));
    }
}
