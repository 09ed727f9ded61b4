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

mod gaql;
mod render;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind};
use crate::json::{into_text, json_str};
use crate::Sandbox;
pub use gaql::{parse_query, Query, QueryError, Resource};
use render::{camel_path, render};

const PLATFORM: Platform = Platform::GoogleAds;
pub const SUPPORTED_VERSIONS: &[&str] = &["v23", "v24", "v25", "v26"];
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
    if sandbox.oauth.check(PLATFORM, token) == crate::TokenCheck::Expired {
        return Err(failure(
            version,
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "authenticationError",
            "OAUTH_TOKEN_EXPIRED",
            "Oauth token in the header has expired.",
        ));
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
    if let Some(field) = sandbox.retired_field(PLATFORM, query.fields.iter().map(String::as_str)) {
        let e = gaql::QueryError {
            code: "UNRECOGNIZED_FIELD",
            message: format!("Error in query: unrecognized field '{field}'."),
        };
        return invalid_query(&version, &e);
    }
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
