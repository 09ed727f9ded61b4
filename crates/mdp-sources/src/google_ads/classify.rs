//! What a Google Ads answer means. Errors are `google.rpc.Status` bodies whose `GoogleAdsFailure` error
//! code and message are reported, at the top of the body or (searchStream, after HTTP 200) as an element
//! of the streamed array. 429 honours `Retry-After` / `retryDelay` but gives up at once on a quota that
//! resets in hours. The sunset signals are Google's own: the `UNSUPPORTED_VERSION` request error, gRPC's
//! `UNIMPLEMENTED`, and the front end's HTML 404 for a version path it no longer routes; a JSON
//! `NOT_FOUND` error is a missing resource, not a sunset.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::PLATFORM;
use crate::error::SourceError;
use crate::http::{Answer, Verdict};

/// A rate limit whose quota resets further away than this (the daily operations quota) is not
/// waited for: retrying would only burn attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

pub(super) fn classify(answer: Answer<'_>) -> Verdict {
    let header_delay = answer.retry_after();
    let status = answer.status;
    // A Google error body, at the top or (searchStream) as an element of the streamed array.
    let error = match &answer.json {
        Ok(Value::Array(batches)) => batches.iter().find_map(|b| b.get("error")).cloned(),
        Ok(v) => v.get("error").filter(|e| e.is_object()).cloned(),
        Err(_) => None,
    };
    if let Some(error) = error {
        return error_verdict(status, &error, header_delay);
    }
    match status {
        // Google's front end answers an HTML page (not a Google error body) for a path it does not
        // route: under `/{version}/`, a version that is no longer served.
        StatusCode::NOT_FOUND if answer.json.is_err() => Verdict::SunsetVersion(
            "HTTP 404 Not Found (an HTML page): Google no longer serves this version's paths (if the version is \
             current, check that base_url points at the Google Ads API)"
                .into(),
        ),
        StatusCode::NOT_IMPLEMENTED => Verdict::SunsetVersion("HTTP 501 Not Implemented".into()),
        _ => answer.standard(PLATFORM),
    }
}

fn error_verdict(http: StatusCode, error: &Value, header_delay: Option<Duration>) -> Verdict {
    let e = GoogleError::parse(error, http);
    let label = e.label();
    let message = e.describe();
    if e.has_code("UNSUPPORTED_VERSION") || e.status == "UNIMPLEMENTED" {
        return Verdict::SunsetVersion(format!("{label}: {message}"));
    }
    if e.code == 404 || e.status == "NOT_FOUND" {
        return Verdict::NotFound(format!("{label}: {message}"));
    }
    if e.code == 401 || e.status == "UNAUTHENTICATED" {
        return Verdict::Fail(SourceError::Auth { platform: PLATFORM, code: label, message });
    }
    if e.code == 429 || e.status == "RESOURCE_EXHAUSTED" || e.kinds().any(|k| k == "quotaError") {
        let after = header_delay.or(e.retry_delay);
        if after.is_some_and(|d| d > LONGEST_WAIT) {
            // The daily operations quota: it resets on Google's schedule, not in seconds.
            let wait = after.map_or(0, |d| d.as_secs());
            return Verdict::Fail(SourceError::RateLimited {
                platform: PLATFORM,
                attempts: 1,
                code: label,
                message: format!("{message}; the quota resets in {wait} s"),
            });
        }
        return Verdict::Retry {
            after,
            error: SourceError::RateLimited { platform: PLATFORM, attempts: 0, code: label, message },
        };
    }
    if e.code >= 500 || matches!(e.status.as_str(), "INTERNAL" | "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "ABORTED") {
        return Verdict::Retry {
            after: header_delay,
            error: SourceError::Transport { platform: PLATFORM, attempts: 0, message: format!("{label}: {message}") },
        };
    }
    Verdict::Fail(SourceError::Platform { platform: PLATFORM, code: label, message })
}

/// A `google.rpc.Status` error with its `GoogleAdsFailure` details.
#[derive(Debug, Default)]
struct GoogleError {
    code: u16,
    status: String,
    message: String,
    /// (error kind, value, message), e.g. ("authenticationError", "OAUTH_TOKEN_EXPIRED", "…").
    failures: Vec<(String, String, String)>,
    request_id: Option<String>,
    retry_delay: Option<Duration>,
}

impl GoogleError {
    fn parse(error: &Value, http: StatusCode) -> GoogleError {
        let mut e = GoogleError {
            code: error["code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(http.as_u16()),
            status: error["status"].as_str().unwrap_or("").to_string(),
            message: error["message"].as_str().unwrap_or("").to_string(),
            ..GoogleError::default()
        };
        for detail in error["details"].as_array().into_iter().flatten() {
            if let Some(id) = detail["requestId"].as_str() {
                e.request_id = Some(id.to_string());
            }
            for failure in detail["errors"].as_array().into_iter().flatten() {
                let (kind, value) = failure["errorCode"]
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .unwrap_or_default();
                let message = failure["message"].as_str().unwrap_or("").to_string();
                e.failures.push((kind, value, message));
                if let Some(delay) = failure["details"]["quotaErrorDetails"]["retryDelay"].as_str().and_then(duration) {
                    e.retry_delay = Some(delay);
                }
            }
            // google.rpc.RetryInfo, should it come separately.
            if let Some(delay) = detail["retryDelay"].as_str().and_then(duration) {
                e.retry_delay = Some(delay);
            }
        }
        e
    }

    fn kinds(&self) -> impl Iterator<Item = &str> {
        self.failures.iter().map(|(kind, _, _)| kind.as_str())
    }

    fn has_code(&self, value: &str) -> bool {
        self.failures.iter().any(|(_, v, _)| v == value)
    }

    /// `authenticationError.OAUTH_TOKEN_EXPIRED`, else the status, else the HTTP code.
    fn label(&self) -> String {
        match self.failures.first() {
            Some((kind, value, _)) if !kind.is_empty() => format!("{kind}.{value}"),
            _ if !self.status.is_empty() => self.status.clone(),
            _ => self.code.to_string(),
        }
    }

    /// Google's messages (the failures' first, then the status message), the status and request id.
    fn describe(&self) -> String {
        let mut parts: Vec<String> =
            self.failures.iter().map(|(_, _, m)| m.clone()).filter(|m| !m.is_empty()).collect();
        if parts.is_empty() || !self.message.is_empty() && !parts.contains(&self.message) {
            parts.push(self.message.clone());
        }
        let mut text = parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join("; ");
        text.push_str(&format!(" (HTTP {}", self.code));
        if !self.status.is_empty() {
            text.push_str(&format!(" {}", self.status));
        }
        if let Some(id) = &self.request_id {
            text.push_str(&format!(", request {id}"));
        }
        text.push(')');
        text
    }
}

/// A protobuf JSON duration: `"30s"`, `"1.5s"`.
fn duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

    use super::*;

    fn classify(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Verdict {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let json = serde_json::from_str::<Value>(body).map_err(|e| e.to_string());
        super::classify(Answer { status: StatusCode::from_u16(status).unwrap(), headers: &map, json })
    }

    const EXPIRED: &str = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED",
        "details":[{"@type":"type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
        "errors":[{"errorCode":{"authenticationError":"OAUTH_TOKEN_EXPIRED"},"message":"Oauth token in the header has expired."}],"requestId":"r1"}]}}"#;

    #[test]
    fn errors_carry_googles_error_code_and_message() {
        match classify(401, EXPIRED, &[]) {
            Verdict::Fail(SourceError::Auth { code, message, .. }) => {
                assert_eq!(code, "authenticationError.OAUTH_TOKEN_EXPIRED");
                assert!(message.contains("has expired") && message.contains("r1"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let denied = r#"{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED",
            "details":[{"errors":[{"errorCode":{"authorizationError":"DEVELOPER_TOKEN_NOT_APPROVED"},"message":"The developer token is only approved for use with test accounts."}]}]}}"#;
        match classify(403, denied, &[]) {
            Verdict::Fail(SourceError::Platform { code, message, .. }) => {
                assert_eq!(code, "authorizationError.DEVELOPER_TOKEN_NOT_APPROVED");
                assert!(message.contains("test accounts"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rate_limits_wait_as_told_and_daily_quotas_are_not_waited_for() {
        let body = |delay: &str| {
            format!(
                r#"{{"error":{{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED",
                "details":[{{"errors":[{{"errorCode":{{"quotaError":"RESOURCE_EXHAUSTED"}},"message":"Too many requests.",
                "details":{{"quotaErrorDetails":{{"rateScope":"DEVELOPER","retryDelay":"{delay}"}}}}}}]}}]}}}}"#
            )
        };
        match classify(429, &body("30s"), &[]) {
            Verdict::Retry { after, error: SourceError::RateLimited { code, .. } } => {
                assert_eq!(after, Some(Duration::from_secs(30)));
                assert_eq!(code, "quotaError.RESOURCE_EXHAUSTED");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(classify(429, &body("30s"), &[("retry-after", "2")]), Verdict::Retry { after: Some(d), .. } if d == Duration::from_secs(2))
        );
        assert!(matches!(classify(429, &body("43200s"), &[]), Verdict::Fail(SourceError::RateLimited { .. })));
    }

    #[test]
    fn server_errors_and_cut_bodies_are_retried() {
        let unavailable =
            r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#;
        assert!(matches!(classify(503, unavailable, &[]), Verdict::Retry { error: SourceError::Transport { .. }, .. }));
        assert!(matches!(
            classify(200, r#"[{"results":[{"campaign""#, &[]),
            Verdict::Retry { error: SourceError::Malformed { .. }, .. }
        ));
        assert!(matches!(classify(502, "<html>Bad Gateway</html>", &[]), Verdict::Retry { .. }));
    }

    #[test]
    fn an_error_inside_the_stream_is_not_a_success() {
        let body = r#"[{"results":[{"campaign":{"id":"1"}}],"fieldMask":"campaign.id","requestId":"a"},
            {"error":{"code":500,"message":"Internal error encountered.","status":"INTERNAL"}}]"#;
        assert!(matches!(classify(200, body, &[]), Verdict::Retry { error: SourceError::Transport { .. }, .. }));
        let body = format!("[{{\"results\":[]}},{EXPIRED}]");
        assert!(matches!(classify(200, &body, &[]), Verdict::Fail(SourceError::Auth { .. })));
    }

    #[test]
    fn a_sunset_is_what_google_says_is_one_and_a_missing_resource_is_not() {
        let html = "<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>";
        assert!(matches!(classify(404, html, &[]), Verdict::SunsetVersion(_)), "the front end no longer routes it");
        let unsupported = r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"bad",
            "details":[{"errors":[{"errorCode":{"requestError":"UNSUPPORTED_VERSION"},"message":"Version v16 is deprecated."}]}]}}"#;
        match classify(400, unsupported, &[]) {
            Verdict::SunsetVersion(message) => assert!(message.contains("Version v16 is deprecated"), "{message}"),
            other => panic!("{other:?}"),
        }
        let missing = r#"{"error":{"code":404,"status":"NOT_FOUND","message":"Requested entity was not found."}}"#;
        match classify(404, missing, &[]) {
            Verdict::NotFound(message) => assert!(message.contains("Requested entity was not found"), "{message}"),
            other => panic!("a JSON NOT_FOUND is Google naming a missing resource: {other:?}"),
        }
        assert!(matches!(classify(200, "[]", &[]), Verdict::Done(Value::Array(_))));
    }
}
