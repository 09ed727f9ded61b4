//! What a Graph API answer means. Errors come as `{"error":{code, error_subcode, message}}`, mostly on
//! HTTP 400: 190/102/104 are auth; 4, 17, 32, 613 and 80000–80014 are rate limits (retried after
//! `estimated_time_to_regain_access` from `X-Business-Use-Case-Usage` when given, else backoff); 1 and 2
//! (or `is_transient`) are retried; 2635 is Meta's deprecated-version error (the sunset signal); 100/33
//! is an object that does not exist (or that the token cannot see); 1 "Please reduce the amount of data"
//! is final here: the connector splits the date range; 2642 is an expired cursor.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::PLATFORM;
use crate::error::SourceError;
use crate::http::{Answer, Verdict};

pub(super) fn classify(answer: Answer<'_>) -> Verdict {
    if let Ok(body) = &answer.json {
        if body.get("error").is_some_and(Value::is_object) {
            return classify_error(answer.status, answer.headers, answer.retry_after(), &body["error"]);
        }
    }
    answer.standard(PLATFORM)
}

/// Graph API error → verdict.
fn classify_error(
    status: reqwest::StatusCode,
    headers: &HeaderMap,
    retry_after: Option<Duration>,
    error: &Value,
) -> Verdict {
    let code = error["code"].as_i64().unwrap_or(-1);
    let subcode = error["error_subcode"].as_i64();
    let text = error["message"].as_str().unwrap_or("").to_string();
    let message = match error["fbtrace_id"].as_str() {
        Some(trace) => format!("{text} (fbtrace_id {trace})"),
        None => text.clone(),
    };
    let code_text = match subcode {
        Some(sub) => format!("{code}/{sub}"),
        None => code.to_string(),
    };
    let transient = || SourceError::Transport {
        platform: PLATFORM,
        attempts: 0,
        message: format!("HTTP {status}, code {code_text}: {message}"),
    };
    match code {
        // "(#2635) You are calling a deprecated version of the Ads API."
        2635 => Verdict::SunsetVersion(message),
        _ if text.contains("deprecated version") => Verdict::SunsetVersion(message),
        // "(#100) Unsupported get request. Object with ID … does not exist, cannot be loaded due to
        // missing permissions, or does not support this operation."
        100 if subcode == Some(33) => Verdict::NotFound(format!("code {code_text}: {message}")),
        190 | 102 | 104 => Verdict::Fail(SourceError::Auth { platform: PLATFORM, code: code_text, message }),
        4 | 17 | 32 | 613 | 80000..=80014 => Verdict::Retry {
            after: regain_access(headers).or(retry_after),
            error: SourceError::RateLimited { platform: PLATFORM, attempts: 0, code: code_text, message },
        },
        1 if is_too_much_data_message(&text) => {
            Verdict::Fail(SourceError::Platform { platform: PLATFORM, code: code_text, message })
        }
        1 | 2 => Verdict::Retry { after: retry_after, error: transient() },
        _ if error["is_transient"].as_bool() == Some(true) || status.is_server_error() => {
            Verdict::Retry { after: retry_after, error: transient() }
        }
        _ => Verdict::Fail(SourceError::Platform { platform: PLATFORM, code: code_text, message }),
    }
}

/// `estimated_time_to_regain_access` (minutes) from `X-Business-Use-Case-Usage`, if any is positive.
fn regain_access(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get("x-business-use-case-usage")?.to_str().ok()?;
    let usage: Value = serde_json::from_str(raw).ok()?;
    let minutes = usage
        .as_object()?
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|entry| entry["estimated_time_to_regain_access"].as_u64())
        .max()?;
    (minutes > 0).then(|| Duration::from_secs(minutes * 60))
}

fn is_too_much_data_message(message: &str) -> bool {
    message.to_ascii_lowercase().contains("reduce the amount of data")
}

/// Meta's answer to an oversized query: split it.
pub(super) fn is_too_much_data(error: &SourceError) -> bool {
    matches!(error, SourceError::Platform { code, message, .. } if (code == "1" || code.starts_with("1/")) && is_too_much_data_message(message))
}

/// "(#2642) Invalid cursors values": the `after` cursor expired or is not valid.
pub(super) fn is_invalid_cursor(error: &SourceError) -> bool {
    matches!(error, SourceError::Platform { code, .. } if code == "2642" || code.starts_with("2642/"))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn verdict(status: u16, headers: HeaderMap, error: Value) -> Verdict {
        classify_error(reqwest::StatusCode::from_u16(status).unwrap(), &headers, None, &error)
    }

    #[test]
    fn graph_errors_are_classified() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-business-use-case-usage",
            HeaderValue::from_static(
                r#"{"123":[{"type":"ads_insights","call_count":100,"estimated_time_to_regain_access":3}]}"#,
            ),
        );
        match verdict(400, headers, json!({"code": 80000, "error_subcode": 2446079, "message": "too many calls"})) {
            Verdict::Retry { after, error: SourceError::RateLimited { code, .. } } => {
                assert_eq!(after, Some(Duration::from_secs(180)));
                assert_eq!(code, "80000/2446079");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verdict(400, HeaderMap::new(), json!({"code": 17})),
            Verdict::Retry { after: None, error: SourceError::RateLimited { .. } }
        ));
        assert!(matches!(
            verdict(400, HeaderMap::new(), json!({"code": 190, "error_subcode": 463})),
            Verdict::Fail(SourceError::Auth { .. })
        ));
        assert!(matches!(
            verdict(
                400,
                HeaderMap::new(),
                json!({"code": 2635, "message": "(#2635) You are calling a deprecated version of the Ads API."})
            ),
            Verdict::SunsetVersion(_)
        ));
        match verdict(
            400,
            HeaderMap::new(),
            json!({"code": 100, "error_subcode": 33, "message": "Unsupported get request. Object with ID 'act_9' does not exist"}),
        ) {
            Verdict::NotFound(message) => {
                assert!(message.contains("100/33") && message.contains("does not exist"), "{message}")
            }
            other => panic!("an object that does not exist is not a sunset: {other:?}"),
        }
        assert!(matches!(
            verdict(500, HeaderMap::new(), json!({"code": 2, "is_transient": true})),
            Verdict::Retry { error: SourceError::Transport { .. }, .. }
        ));
        match verdict(
            500,
            HeaderMap::new(),
            json!({"code": 1, "message": "Please reduce the amount of data you're asking for, then retry your request"}),
        ) {
            Verdict::Fail(e) => assert!(is_too_much_data(&e)),
            other => panic!("{other:?}"),
        }
        match verdict(400, HeaderMap::new(), json!({"code": 2642, "message": "(#2642) Invalid cursors values"})) {
            Verdict::Fail(e) => assert!(is_invalid_cursor(&e)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            verdict(400, HeaderMap::new(), json!({"code": 100, "message": "(#100) bad param"})),
            Verdict::Fail(SourceError::Platform { .. })
        ));
    }
}
