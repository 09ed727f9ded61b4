//! A declared API as the shared driver reads it: the request of each page (the paginator's cursor
//! added), where a page's records are and where the next page starts, and the spec's error rules.

use std::sync::Arc;
use std::time::Duration;

use mdp_spec::model::{CursorIn, Decoder, ErrorAction, ErrorRule, Paginator};
use serde_json::value::RawValue;

use super::row::{at, records};
use crate::error::SourceError;
use crate::http::{Answer, Endpoint, HttpRequest, Page, ReportApi, Verdict};
use crate::json::scalar;

/// How one stream's answers are read.
#[derive(Debug)]
pub(crate) struct Reading {
    pub(crate) paginator: Paginator,
    pub(crate) decoder: Decoder,
    pub(crate) records: String,
}

/// One paged read: the first page's request and how its answers are read.
#[derive(Debug, Clone)]
pub(crate) struct Read {
    pub(crate) request: HttpRequest,
    pub(crate) reading: Arc<Reading>,
}

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Cursor {
    Token(String),
    Url(String),
    Number(u64),
}

#[derive(Debug)]
pub(crate) struct DeclaredApi {
    pub(crate) endpoint: Endpoint,
    pub(crate) rules: Vec<ErrorRule>,
    /// Headers of a rate-limited answer with the Unix time to retry at (`rate_limit.reset_headers`).
    pub(crate) reset_headers: Vec<String>,
}

impl DeclaredApi {
    /// How long until the retry time the answer's first reset header gives (zero when it is past).
    fn reset_wait(&self, answer: &Answer<'_>) -> Option<Duration> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
        self.reset_headers.iter().find_map(|name| {
            let at = answer.headers.get(name.as_str())?.to_str().ok()?.trim().parse::<u64>().ok()?;
            Some(Duration::from_secs(at.saturating_sub(now)))
        })
    }
}

impl ReportApi for DeclaredApi {
    type Query = Read;
    type Cursor = Cursor;

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, read: &Read, cursor: Option<&Cursor>) -> HttpRequest {
        let request = read.request.clone();
        match (&read.reading.paginator, cursor) {
            // The same request (method and body: a POST report pages by POSTing again) at the API's URL, whose
            // query string is its own.
            (_, Some(Cursor::Url(url))) => HttpRequest { path: url.clone(), query: Vec::new(), ..request },
            (Paginator::Cursor { param, location: CursorIn::Query, .. }, Some(Cursor::Token(token))) => {
                request.param(param.clone(), token.clone())
            }
            (Paginator::Cursor { param, location: CursorIn::Body, .. }, Some(Cursor::Token(token))) => {
                // Validated: the request has a JSON object body; the token is one more field of it.
                let mut body: serde_json::Map<String, serde_json::Value> =
                    request.json_body.as_deref().and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
                body.insert(param.clone(), serde_json::Value::String(token.clone()));
                HttpRequest { json_body: Some(serde_json::Value::Object(body).to_string()), ..request }
            }
            (Paginator::Page { param, start, size, size_param, .. }, cursor) => {
                let page = match cursor {
                    Some(Cursor::Number(n)) => *n,
                    _ => *start,
                };
                let request = request.param(param.clone(), page.to_string());
                match size_param {
                    Some(name) => request.param(name.clone(), size.to_string()),
                    None => request,
                }
            }
            (Paginator::Offset { param, limit_param, limit }, cursor) => {
                let offset = match cursor {
                    Some(Cursor::Number(n)) => *n,
                    _ => 0,
                };
                request.param(param.clone(), offset.to_string()).param(limit_param.clone(), limit.to_string())
            }
            _ => request,
        }
    }

    fn parse_page<'a>(&self, read: &Read, cursor: Option<&Cursor>, body: &'a str) -> Result<Page<'a, Cursor>, String> {
        let reading = &read.reading;
        if reading.decoder == Decoder::Jsonl {
            let rows = body
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .map(|(i, line)| {
                    serde_json::from_str::<&RawValue>(line).map_err(|e| format!("line {} is not JSON: {e}", i + 1))
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Page { rows, next: None });
        }
        let root: &'a RawValue =
            serde_json::from_str(body).map_err(|e| format!("the body is not JSON ({e}); {} bytes", body.len()))?;
        let rows = records(root, &reading.records)?;
        let next = match &reading.paginator {
            Paginator::None => None,
            Paginator::Cursor { cursor: path, .. } => {
                scalar(at(root, path)?).text().filter(|token| !token.is_empty()).map(Cursor::Token)
            }
            Paginator::NextUrl { next_url } => match scalar(at(root, next_url)?).text().filter(|url| !url.is_empty()) {
                Some(url) if self.endpoint.under_root(&url) => Some(Cursor::Url(url)),
                Some(url) => {
                    let host = url.split('/').take(3).collect::<Vec<_>>().join("/");
                    return Err(format!(
                        "the next page's URL is on {host}, not under the source's base_url; mdp sends credentials \
                         nowhere else (set base_url to the API's root)"
                    ));
                }
                None => None,
            },
            Paginator::Page { start, size, total_pages, .. } => {
                let current = match cursor {
                    Some(Cursor::Number(n)) => *n,
                    _ => *start,
                };
                let total = match total_pages {
                    Some(path) => scalar(at(root, path)?).text().and_then(|t| t.parse::<u64>().ok()),
                    None => None,
                };
                let last = (rows.len() as u64) < *size || total.is_some_and(|total| current >= total);
                (!last).then_some(Cursor::Number(current + 1))
            }
            Paginator::Offset { limit, .. } => {
                let current = match cursor {
                    Some(Cursor::Number(n)) => *n,
                    _ => 0,
                };
                ((rows.len() as u64) >= *limit).then_some(Cursor::Number(current + limit))
            }
        };
        Ok(Page { rows, next })
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        let platform = self.endpoint.platform();
        for rule in &self.rules {
            if !matches(rule, &answer) {
                continue;
            }
            let message = rule
                .message_path
                .as_deref()
                .and_then(|path| answer.json.as_ref().ok().and_then(|json| value_at(json, path)))
                .unwrap_or_else(|| answer.detail());
            let code = rule
                .body_path
                .as_deref()
                .and_then(|path| answer.json.as_ref().ok().and_then(|json| value_at(json, path)))
                .unwrap_or_else(|| answer.status.as_u16().to_string());
            // The body's own wait: a number of seconds, or the first number in its text.
            let said = rule.wait_path.as_deref().and_then(|path| {
                let text = answer.json.as_ref().ok().and_then(|json| value_at(json, path))?;
                let digits: String =
                    text.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
                digits.parse::<u64>().ok().map(Duration::from_secs)
            });
            let after = answer
                .retry_after()
                .or_else(|| self.reset_wait(&answer))
                .or(said)
                .or(rule.wait_seconds.map(Duration::from_secs));
            return match rule.action {
                ErrorAction::Retry => Verdict::Retry {
                    after,
                    error: SourceError::Transport { platform, attempts: 0, message: format!("{code}: {message}") },
                },
                ErrorAction::RateLimited => {
                    Verdict::Retry { after, error: SourceError::RateLimited { platform, attempts: 0, code, message } }
                }
                ErrorAction::Auth => Verdict::Fail(SourceError::Auth { platform, code, message }),
                ErrorAction::Sunset => Verdict::SunsetVersion(message),
                ErrorAction::Fail => Verdict::Fail(SourceError::Platform { platform, code, message }),
                ErrorAction::Success => match answer.json {
                    Ok(json) => Verdict::Done(json),
                    // As for a 200: a body that does not parse was most likely cut short.
                    Err(e) => Verdict::Retry { after: None, error: SourceError::malformed(platform, e) },
                },
            };
        }
        // A refusal without Retry-After waits for the reset header's time (read only then: most answers are
        // pages).
        let reset = (answer.status == reqwest::StatusCode::TOO_MANY_REQUESTS && !self.reset_headers.is_empty())
            .then(|| self.reset_wait(&answer))
            .flatten();
        match answer.standard(platform) {
            Verdict::Retry { after: None, error: error @ SourceError::RateLimited { .. } } => {
                Verdict::Retry { after: reset, error }
            }
            verdict => verdict,
        }
    }
}

fn matches(rule: &ErrorRule, answer: &Answer<'_>) -> bool {
    if !rule.status.is_empty() && !rule.status.contains(&answer.status.as_u16()) {
        return false;
    }
    let Some(path) = &rule.body_path else { return true };
    let Some(value) = answer.json.as_ref().ok().and_then(|json| value_at(json, path)) else { return false };
    let equals = rule.equals.is_empty() || rule.equals.contains(&value);
    let not_equals = !rule.not_equals.contains(&value);
    let contains = rule.contains.as_ref().is_none_or(|needle| value.contains(needle.as_str()));
    equals && not_equals && contains
}

/// The text of the value at `path` in a parsed answer (a string as is, anything else as JSON); `None`
/// when missing or null.
pub(super) fn value_at(json: &serde_json::Value, path: &str) -> Option<String> {
    let mut current = json;
    for segment in path.split('.') {
        current = match current {
            serde_json::Value::Object(object) => object.get(segment)?,
            serde_json::Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match current {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use mdp_core::{Platform, SourceOptions};

    use super::*;
    use crate::source::SourceSettings;

    fn api(base: &str) -> DeclaredApi {
        let settings = SourceSettings {
            name: "t".into(),
            platform: Platform::TikTokAds,
            base_url: base.into(),
            api_version: "v1".into(),
            accounts: vec!["1".into()],
            credentials: BTreeMap::new(),
            token_url: None,
            options: SourceOptions::defaults(Platform::TikTokAds),
        };
        DeclaredApi {
            endpoint: Endpoint::new(&settings, "", &[]).unwrap(),
            rules: Vec::new(),
            reset_headers: Vec::new(),
        }
    }

    fn read(paginator: &str, records: &str) -> Read {
        Read {
            request: HttpRequest::get("/v1/report"),
            reading: Arc::new(Reading {
                paginator: serde_yaml::from_str(paginator).unwrap(),
                decoder: Decoder::Json,
                records: records.into(),
            }),
        }
    }

    fn params(request: &HttpRequest) -> Vec<String> {
        request.query.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn a_body_cursor_is_sent_back_until_it_is_empty() {
        let api = api("http://api.test");
        let read = read("{type: cursor, cursor: paging.after, param: after}", "data");
        let page = api.parse_page(&read, None, r#"{"data":[{"a":1},{"a":2}],"paging":{"after":"x9"}}"#).unwrap();
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.next, Some(Cursor::Token("x9".into())));
        assert_eq!(params(&api.request(&read, page.next.as_ref())), ["after=x9"]);
        let last = api.parse_page(&read, page.next.as_ref(), r#"{"data":[],"paging":{"after":""}}"#).unwrap();
        assert_eq!(last.next, None);
    }

    #[test]
    fn a_next_url_must_stay_under_the_base_url() {
        let api = api("http://api.test");
        let read = read("{type: next_url, next_url: pagination.next_url}", "data.metrics");
        let body = r#"{"data":{"metrics":[{}]},"pagination":{"next_url":"http://api.test/v1/report?page=2"}}"#;
        let page = api.parse_page(&read, None, body).unwrap();
        let next = api.request(&read, page.next.as_ref());
        assert_eq!(api.endpoint.url(&next), "http://api.test/v1/report?page=2");
        let elsewhere = r#"{"data":{"metrics":[]},"pagination":{"next_url":"http://evil.test/steal"}}"#;
        let error = api.parse_page(&read, None, elsewhere).unwrap_err();
        assert!(error.contains("http://evil.test") && error.contains("sends credentials nowhere else"), "{error}");
        // A look-alike host is not under the root either.
        let lookalike = r#"{"data":{"metrics":[]},"pagination":{"next_url":"http://api.test.evil/x"}}"#;
        assert!(api.parse_page(&read, None, lookalike).is_err());
    }

    #[test]
    fn pages_and_offsets_stop_at_a_short_page_or_the_total() {
        let api = api("http://api.test");
        let read_pages =
            read("{type: page, param: page, size: 2, size_param: per_page, total_pages: meta.pages}", "items");
        assert_eq!(params(&api.request(&read_pages, None)), ["page=1", "per_page=2"]);
        let full = api.parse_page(&read_pages, None, r#"{"items":[1,2],"meta":{"pages":3}}"#).unwrap();
        assert_eq!(full.next, Some(Cursor::Number(2)));
        let at_total =
            api.parse_page(&read_pages, Some(&Cursor::Number(3)), r#"{"items":[1,2],"meta":{"pages":3}}"#).unwrap();
        assert_eq!(at_total.next, None, "page 3 of 3 is the last even when full");
        let read_offsets = read("{type: offset, param: offset, limit_param: limit, limit: 2}", "");
        let full = api.parse_page(&read_offsets, None, "[1,2]").unwrap();
        assert_eq!(params(&api.request(&read_offsets, full.next.as_ref())), ["offset=2", "limit=2"]);
        assert_eq!(api.parse_page(&read_offsets, Some(&Cursor::Number(2)), "[3]").unwrap().next, None);
    }

    #[test]
    fn a_refusal_waits_until_the_reset_time_the_platform_gives() {
        let mut api = api("http://api.test");
        api.reset_headers = vec!["x-account-rate-limit-reset".into(), "x-rate-limit-reset".into()];
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-rate-limit-reset", (now + 600).into());
        fn refused(headers: &reqwest::header::HeaderMap) -> Answer<'_> {
            Answer {
                status: reqwest::StatusCode::TOO_MANY_REQUESTS,
                headers,
                json: Ok(serde_json::json!({"errors": [{"code": "TOO_MANY_REQUESTS"}]})),
            }
        }
        let after = |verdict| match verdict {
            Verdict::Retry { after, error: SourceError::RateLimited { .. } } => after,
            other => panic!("a 429 is a rate limit: {other:?}"),
        };
        let waited = after(api.classify(refused(&headers))).expect("a wait from the header");
        assert!((598..=600).contains(&waited.as_secs()), "{waited:?}");
        // The account's own limit wins when both are sent; a reset in the past is no wait.
        headers.insert("x-account-rate-limit-reset", (now - 5).into());
        assert_eq!(after(api.classify(refused(&headers))), Some(Duration::ZERO));
        // Retry-After, when sent, is read first.
        headers.insert("retry-after", 7.into());
        assert_eq!(after(api.classify(refused(&headers))), Some(Duration::from_secs(7)));
        api.reset_headers.clear();
        headers.remove("retry-after");
        assert_eq!(after(api.classify(refused(&headers))), None, "no reset headers named: backoff");
    }

    #[test]
    fn error_rules_classify_before_http_and_an_envelope_is_no_page() {
        let mut api = api("http://api.test");
        api.rules = serde_yaml::from_str(
            "- {status: [200], body_path: error.code, equals: ['17'], action: rate_limited, wait_seconds: 3, \
                wait_path: error.message}\n\
             - {status: [200], body_path: error.code, action: fail, message_path: error.message}",
        )
        .unwrap();
        let headers = reqwest::header::HeaderMap::new();
        let answer = |body: &str| Answer {
            status: reqwest::StatusCode::OK,
            headers: &headers,
            json: Ok(serde_json::from_str(body).unwrap()),
        };
        match api.classify(answer(r#"{"error":{"code":17,"message":"slow down"}}"#)) {
            Verdict::Retry { after, error: SourceError::RateLimited { .. } } => {
                assert_eq!(after, Some(Duration::from_secs(3)), "no number in the body: the rule's wait")
            }
            other => panic!("{other:?}"),
        }
        // A wait the body says, in its text, comes first.
        match api.classify(answer(r#"{"error":{"code":17,"message":"Retry in 42 seconds."}}"#)) {
            Verdict::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(42))),
            other => panic!("{other:?}"),
        }
        match api.classify(answer(r#"{"error":{"code":"X","message":"no access"}}"#)) {
            Verdict::Fail(SourceError::Platform { code, message, .. }) => {
                assert_eq!((code.as_str(), message.as_str()), ("X", "no access"))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(api.classify(answer(r#"{"data":[]}"#)), Verdict::Done(_)));
        // The same envelope is not read as a page of no records.
        let read = read("{type: none}", "data");
        assert!(api.parse_page(&read, None, r#"{"error":{"code":"X"}}"#).unwrap_err().contains("no `data`"));
    }
}
