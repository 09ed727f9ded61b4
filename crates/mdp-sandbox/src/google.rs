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
use serde_json::{json, Value};

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
async fn guard(
    sandbox: &Sandbox,
    version: &str,
    customer_id: &str,
    headers: &HeaderMap,
) -> Result<Option<FaultKind>, Response> {
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
        return Err((
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json; charset=UTF-8")],
            body.to_string(),
        )
            .into_response());
    }
    if header("developer-token").is_some_and(str::is_empty) {
        return Err(failure(
            version,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authenticationError",
            "DEVELOPER_TOKEN_INVALID",
            "The developer token is not valid.",
        ));
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
                [
                    ("content-type", "application/json; charset=UTF-8".to_string()),
                    ("retry-after", retry_after_secs.to_string()),
                ],
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
        return failure(
            &version,
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "requestError",
            "INVALID_CUSTOMER_ID",
            "Invalid customer ID: digits only, without dashes.",
        );
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
    let query = match serde_json::from_slice::<Value>(&body).ok().and_then(|v| v["query"].as_str().map(str::to_string))
    {
        Some(q) => q,
        None => {
            return failure(
                &version,
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "requestError",
                "REQUIRED_FIELD_MISSING",
                "The request body must be JSON with a `query` string.",
            )
        }
    };
    let query = match parse_query(&query, &version) {
        Ok(q) => q,
        Err(e) => return invalid_query(&version, &e),
    };
    let field_mask: Vec<String> = query.fields.iter().map(|f| camel_path(f).join(".")).collect();
    let field_mask = field_mask.join(",");
    let request_id = format!("sandboxReq{:08}", sandbox.requests());
    // The array of batches is written straight into one buffer, row by row.
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    buf.push(b'[');
    let batch_tail = |buf: &mut Vec<u8>| {
        buf.extend_from_slice(b",\"fieldMask\":");
        json_str(buf, &field_mask);
        buf.extend_from_slice(b",\"requestId\":");
        json_str(buf, &request_id);
    };
    let mut count = 0usize;
    render(&sandbox, account, &query, &mut buf, |buf: &mut Vec<u8>| {
        if count.is_multiple_of(BATCH_ROWS) {
            if count > 0 {
                buf.push(b']');
                batch_tail(buf);
                buf.extend_from_slice(b"},");
            }
            buf.extend_from_slice(b"{\"results\":[");
        } else {
            buf.push(b',');
        }
        count += 1;
    });
    if count == 0 {
        buf.push(b'{');
        buf.extend_from_slice(b"\"fieldMask\":");
        json_str(&mut buf, &field_mask);
        buf.extend_from_slice(b",\"requestId\":");
        json_str(&mut buf, &request_id);
    } else {
        buf.push(b']');
        batch_tail(&mut buf);
    }
    buf.extend_from_slice(b",\"queryResourceConsumption\":");
    json_str(&mut buf, &(count as u64 * 3 + 40).to_string());
    buf.extend_from_slice(b"}]");
    let text = into_text(buf);
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
        "impressions" | "clicks" | "cost_micros" | "conversions" | "conversions_value" | "view_through_conversions" => {
            Ok(())
        }
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
        return metric_known(metric, version)
            .map_err(|code| qerr(code, format!("Error in query: unrecognized field '{field}'.")));
    }
    let (owner, known) = match field.split_once('.') {
        Some(("customer", rest)) => (
            Resource::Customer,
            matches!(rest, "id" | "descriptive_name" | "currency_code" | "time_zone" | "resource_name"),
        ),
        Some(("campaign", rest)) => (
            Resource::Campaign,
            matches!(rest, "id" | "name" | "status" | "resource_name" | "advertising_channel_type"),
        ),
        Some(("ad_group", rest)) => {
            (Resource::AdGroup, matches!(rest, "id" | "name" | "status" | "resource_name" | "campaign"))
        }
        Some(("ad_group_ad", rest)) => (
            Resource::AdGroupAd,
            matches!(
                rest,
                "ad.id" | "ad.name" | "ad.type" | "ad.resource_name" | "status" | "resource_name" | "ad_group"
            ),
        ),
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
        Some(Tok::Str(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
            qerr("INVALID_DATE_FORMAT", format!("Error in query: '{s}' is not a date in the format YYYY-MM-DD."))
        }),
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
                    return Err(qerr(
                        "PROHIBITED_FIELD_IN_WHERE_CLAUSE",
                        format!("Error in query: the sandbox filters only on segments.date, not '{w}'."),
                    ));
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
                        _ => {
                            return Err(qerr(
                                "BAD_OPERATOR",
                                format!("Error in query: operator {op} is not supported on segments.date."),
                            ))
                        }
                    }
                    pos += 2;
                }
                _ => {
                    return Err(qerr(
                        "BAD_OPERATOR",
                        "Error in query: expected BETWEEN, =, <, <=, > or >= after segments.date.",
                    ))
                }
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
            Some(Tok::Num(n)) => {
                limit = Some(n.parse().map_err(|_| qerr("BAD_LIMIT_VALUE", "Error in query: bad LIMIT."))?)
            }
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

/// Write `s` as a JSON string, with serde_json's escaping.
pub(crate) fn json_str(buf: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *buf, s).expect("writing JSON to a Vec");
}

/// Write `"key":`.
pub(crate) fn json_key(buf: &mut Vec<u8>, key: &str) {
    json_str(buf, key);
    buf.push(b':');
}

/// Write an integer as a JSON number.
pub(crate) fn json_int(buf: &mut Vec<u8>, n: i64) {
    use std::io::Write;
    write!(buf, "{n}").expect("writing to a Vec");
}

/// A body written with the helpers above (always UTF-8).
pub(crate) fn into_text(buf: Vec<u8>) -> String {
    String::from_utf8(buf).expect("JSON bodies are UTF-8")
}

/// An int64 as proto3 JSON writes it: a string, omitted when zero.
fn int64(buf: &mut Vec<u8>, v: i64) -> bool {
    if v == 0 {
        return false;
    }
    buf.push(b'"');
    json_int(buf, v);
    buf.push(b'"');
    true
}

fn double(buf: &mut Vec<u8>, micros: i64) -> bool {
    // micros / 1e6 is correctly rounded, and JSON prints the shortest text that reads back the same
    // double: 1.5, 45.67.
    if micros == 0 {
        return false;
    }
    serde_json::to_writer(&mut *buf, &(micros as f64 / 1_000_000.0)).expect("writing JSON to a Vec");
    true
}

/// A string value: `Some(s)` is written, `None` leaves the field out.
fn text(buf: &mut Vec<u8>, s: Option<&str>) -> bool {
    match s {
        Some(s) => {
            json_str(buf, s);
            true
        }
        None => false,
    }
}

/// Write one field's value; `false` (with nothing written) when the row leaves it out.
fn write_field(buf: &mut Vec<u8>, row: &Row<'_>, field: &str) -> bool {
    let a = row.account;
    let m = &row.metrics;
    match field {
        "customer.id" => text(buf, Some(&a.id)),
        "customer.resource_name" => text(buf, Some(&format!("customers/{}", a.id))),
        "customer.descriptive_name" => text(buf, Some(&a.name)),
        "customer.currency_code" => text(buf, Some(a.currency)),
        "customer.time_zone" => text(buf, Some(a.timezone)),
        "campaign.id" => text(buf, row.campaign.map(|c| c.id.as_str())),
        "campaign.resource_name" | "ad_group.campaign" => {
            text(buf, row.campaign.map(|c| format!("customers/{}/campaigns/{}", a.id, c.id)).as_deref())
        }
        "campaign.name" => text(buf, row.campaign.map(|c| c.name.as_str())),
        "campaign.status" => text(buf, row.campaign.map(|c| status_name(c.status))),
        "campaign.advertising_channel_type" => {
            text(buf, row.campaign.map(|c| if c.performance_max { "PERFORMANCE_MAX" } else { "SEARCH" }))
        }
        "ad_group.id" => text(buf, row.ad_group.map(|g| g.id.as_str())),
        "ad_group.resource_name" | "ad_group_ad.ad_group" => {
            text(buf, row.ad_group.map(|g| format!("customers/{}/adGroups/{}", a.id, g.id)).as_deref())
        }
        "ad_group.name" => text(buf, row.ad_group.map(|g| g.name.as_str())),
        "ad_group.status" => text(buf, row.ad_group.map(|g| status_name(g.status))),
        "ad_group_ad.ad.id" => text(buf, row.ad.map(|ad| ad.id.as_str())),
        "ad_group_ad.ad.name" => text(buf, row.ad.map(|ad| ad.name.as_str())),
        "ad_group_ad.ad.type" => text(buf, row.ad.map(|_| "RESPONSIVE_SEARCH_AD")),
        "ad_group_ad.ad.resource_name" => {
            text(buf, row.ad.map(|ad| format!("customers/{}/ads/{}", a.id, ad.id)).as_deref())
        }
        "ad_group_ad.status" => text(buf, row.ad.map(|ad| status_name(ad.status))),
        "ad_group_ad.resource_name" => match (row.ad_group, row.ad) {
            (Some(g), Some(ad)) => text(buf, Some(&format!("customers/{}/adGroupAds/{}~{}", a.id, g.id, ad.id))),
            _ => false,
        },
        "segments.date" => match row.date {
            Some(d) => {
                use std::io::Write;
                write!(buf, "\"{d}\"").expect("writing to a Vec");
                true
            }
            None => false,
        },
        "metrics.impressions" => int64(buf, m.impressions),
        "metrics.clicks" => int64(buf, m.clicks),
        "metrics.cost_micros" => int64(buf, m.spend_micros),
        "metrics.conversions" => double(buf, m.conversions_micros),
        "metrics.conversions_value" => double(buf, m.conversion_value_micros),
        "metrics.view_through_conversions" => int64(buf, m.view_through_conversions),
        "metrics.video_views" | "metrics.video_trueview_views" => int64(buf, m.video_views),
        _ => false,
    }
}

/// The nested shape of a query's rows, worked out once per query: lowerCamelCase keys, each a field
/// or an object of further keys.
#[derive(Debug)]
enum Node {
    Leaf(String, String),
    Object(String, Vec<Node>),
}

fn plan_insert(nodes: &mut Vec<Node>, path: &[String], field: &str) {
    match path {
        [] => {}
        [last] => {
            // A field named twice (or a resource name also selected) keeps one key, as a map would.
            if !nodes.iter().any(|n| matches!(n, Node::Leaf(k, _) | Node::Object(k, _) if k == last)) {
                nodes.push(Node::Leaf(last.clone(), field.to_string()));
            }
        }
        [first, rest @ ..] => {
            let at = nodes.iter().position(|n| matches!(n, Node::Object(k, _) if k == first));
            let at = match at {
                Some(at) => at,
                None => {
                    if nodes.iter().any(|n| matches!(n, Node::Leaf(k, _) if k == first)) {
                        return;
                    }
                    nodes.push(Node::Object(first.clone(), Vec::new()));
                    nodes.len() - 1
                }
            };
            if let Node::Object(_, children) = &mut nodes[at] {
                plan_insert(children, rest, field);
            }
        }
    }
}

fn plan(fields: &[String], resource: Resource) -> Vec<Node> {
    let mut nodes = Vec::new();
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
            plan_insert(&mut nodes, &camel_path(name), name);
        }
    }
    for f in fields {
        plan_insert(&mut nodes, &camel_path(f), f);
    }
    nodes
}

/// Write the members of one object (without braces); objects left empty are left out.
fn write_nodes(buf: &mut Vec<u8>, nodes: &[Node], row: &Row<'_>) -> bool {
    let mut any = false;
    for node in nodes {
        let mark = buf.len();
        if any {
            buf.push(b',');
        }
        let written = match node {
            Node::Leaf(key, field) => {
                json_key(buf, key);
                write_field(buf, row, field)
            }
            Node::Object(key, children) => {
                json_key(buf, key);
                buf.push(b'{');
                let written = write_nodes(buf, children, row);
                buf.push(b'}');
                written
            }
        };
        if written {
            any = true;
        } else {
            buf.truncate(mark);
        }
    }
    any
}

fn render_row(buf: &mut Vec<u8>, row: &Row<'_>, plan: &[Node]) {
    buf.push(b'{');
    write_nodes(buf, plan, row);
    buf.push(b'}');
}

/// Write the query's rows into `buf`, calling `before_row` ahead of each (for separators).
fn render(
    sandbox: &Sandbox,
    account: &Account,
    query: &Query,
    buf: &mut Vec<u8>,
    mut before_row: impl FnMut(&mut Vec<u8>),
) {
    let world = &sandbox.world;
    let version = sandbox.version();
    let plan = plan(&query.fields, query.resource);
    let limit = query.limit.unwrap_or(usize::MAX);
    let mut count = 0usize;
    let mut emit = |buf: &mut Vec<u8>, row: &Row<'_>| {
        if count >= limit {
            return;
        }
        count += 1;
        before_row(buf);
        render_row(buf, row, &plan);
    };
    // The entities of the FROM resource.
    let mut entities: Vec<(Option<&Campaign>, Option<&AdGroup>, Option<&Ad>)> = Vec::new();
    match query.resource {
        Resource::Customer => entities.push((None, None, None)),
        Resource::Campaign => entities.extend(account.campaigns.iter().map(|c| (Some(c), None, None))),
        Resource::AdGroup => entities
            .extend(account.campaigns.iter().flat_map(|c| c.ad_groups.iter().map(move |g| (Some(c), Some(g), None)))),
        Resource::AdGroupAd => entities.extend(account.campaigns.iter().flat_map(|c| {
            c.ad_groups.iter().flat_map(move |g| g.ads.iter().map(move |ad| (Some(c), Some(g), Some(ad))))
        })),
    }
    let with_metrics = query.fields.iter().any(|f| f.starts_with("metrics.") || f == "segments.date");
    let segmented = query.fields.iter().any(|f| f == "segments.date");
    let units: Vec<_> = world.units(account).collect();
    for entity in &entities {
        let (campaign, ad_group, ad) = *entity;
        if !with_metrics {
            emit(buf, &Row { account, campaign, ad_group, ad, date: None, metrics: Metrics::default() });
            continue;
        }
        // The units an entity's metrics add up, worked out once per entity.
        let members: Vec<_> = units
            .iter()
            .filter(|unit| match entity {
                (_, _, Some(ad)) => unit.ad.is_some_and(|u| u.id == ad.id),
                (_, Some(g), None) => unit.ad_group.is_some_and(|u| u.id == g.id),
                (Some(c), None, None) => unit.campaign.id == c.id,
                _ => true,
            })
            .collect();
        let metrics_of = |day: NaiveDate| {
            let mut total = Metrics::default();
            for unit in &members {
                total.add(&world.unit_metrics(account, unit, day, version));
            }
            total
        };
        let start = query
            .start
            .unwrap_or(world.today - Days::new(HISTORY_DAYS))
            .max(world.today - Days::new(HISTORY_DAYS + 30));
        let end = query.end.unwrap_or(world.today).min(world.today);
        let days = start.iter_days().take_while(|d| *d <= end);
        if segmented {
            for day in days {
                let metrics = metrics_of(day);
                if metrics.is_zero() {
                    continue; // rows without delivery are not returned
                }
                emit(buf, &Row { account, campaign, ad_group, ad, date: Some(day), metrics });
            }
        } else {
            let mut metrics = Metrics::default();
            for day in days {
                metrics.add(&metrics_of(day));
            }
            if !metrics.is_zero() {
                emit(buf, &Row { account, campaign, ad_group, ad, date: None, metrics });
            }
        }
    }
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
        assert_eq!(
            code("SELECT campaign.id, segments.date, metrics.clicks FROM campaign"),
            "EXPECTED_FILTERS_ON_DATE_RANGE"
        );
        assert_eq!(
            code("SELECT campaign.id FROM campaign WHERE segments.date BETWEEN '2026-06-01' '2026-06-02'"),
            "EXPECTED_AND"
        );
        assert_eq!(code("SELECT campaign.id FROM campaign WHERE segments.date = '06/01/2026'"), "INVALID_DATE_FORMAT");
        assert_eq!(code("campaign.id FROM campaign"), "EXPECTED_SELECT");
        assert_eq!(code("SELECT campaign.id campaign"), "EXPECTED_FROM");
    }

    #[test]
    fn the_video_view_metric_was_renamed_in_v22() {
        assert!(parse_query("SELECT metrics.video_views FROM campaign", "v21").is_ok());
        assert_eq!(
            parse_query("SELECT metrics.video_views FROM campaign", "v22").unwrap_err().code,
            "UNRECOGNIZED_FIELD"
        );
        assert!(parse_query("SELECT metrics.video_trueview_views FROM campaign", "v22").is_ok());
    }

    #[test]
    fn rows_are_nested_camel_case_with_strings_for_int64_and_no_zero_fields() {
        let world = crate::World::new(1, date("2026-06-30"), crate::Scale::default());
        let account = world.accounts(PLATFORM).next().unwrap();
        let campaign = &account.campaigns[0];
        let metrics = Metrics {
            impressions: 100,
            clicks: 0,
            spend_micros: 1_230_000,
            conversions_micros: 1_500_000,
            ..Metrics::default()
        };
        let row = Row {
            account,
            campaign: Some(campaign),
            ad_group: None,
            ad: None,
            date: Some(date("2026-06-01")),
            metrics,
        };
        let fields: Vec<String> = [
            "campaign.id",
            "segments.date",
            "metrics.impressions",
            "metrics.clicks",
            "metrics.cost_micros",
            "metrics.conversions",
        ]
        .map(String::from)
        .to_vec();
        let mut buf = Vec::new();
        render_row(&mut buf, &row, &plan(&fields, Resource::Campaign));
        let v: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["campaign"]["id"], json!(campaign.id));
        assert_eq!(v["campaign"]["resourceName"], json!(format!("customers/{}/campaigns/{}", account.id, campaign.id)));
        assert_eq!(v["metrics"]["impressions"], json!("100"));
        assert_eq!(v["metrics"]["costMicros"], json!("1230000"));
        assert_eq!(v["metrics"]["conversions"], json!(1.5));
        assert!(v["metrics"].get("clicks").is_none(), "zero fields are omitted");
        assert_eq!(v["segments"]["date"], json!("2026-06-01"));
    }
}
