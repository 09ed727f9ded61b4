//! The TikTok Business API as the shared driver reads it: `GET /open_api/{version}/{path}` with the token
//! in the `Access-Token` header, array parameters as JSON in the query string, page-number paging
//! (`page`, `page_size` ≤ 1000, `data.page_info.total_page`), and errors as HTTP 200 with a non-zero
//! `code` in the envelope.

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::PLATFORM;
use crate::error::SourceError;
use crate::http::{Answer, ApiHeader, Endpoint, HttpRequest, Page, ReportApi, Verdict};
use crate::source::SourceSettings;

const PAGE_SIZE: usize = 1000;

/// A paged list endpoint and its parameters (`page` and `page_size` are added per page).
#[derive(Debug, Clone)]
pub(super) struct List {
    pub path: &'static str,
    pub params: Vec<(&'static str, String)>,
}

#[derive(Debug)]
pub(super) struct TikTokApi {
    endpoint: Endpoint,
}

impl TikTokApi {
    pub(super) fn new(settings: &SourceSettings) -> Result<TikTokApi, SourceError> {
        let prefix = format!("/open_api/{}", settings.api_version);
        let endpoint = Endpoint::new(settings, &prefix, &[ApiHeader::credential("access-token", "access_token")])?;
        Ok(TikTokApi { endpoint })
    }
}

impl ReportApi for TikTokApi {
    type Query = List;
    /// The page number, from 1.
    type Cursor = u64;

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, list: &List, page: Option<&u64>) -> HttpRequest {
        HttpRequest::get(list.path)
            .with_query(list.params.clone())
            .param("page", page.copied().unwrap_or(1).to_string())
            .param("page_size", PAGE_SIZE.to_string())
    }

    fn parse_page<'a>(&self, _: &List, page: Option<&u64>, body: &'a str) -> Result<Page<'a, u64>, String> {
        let answer: ListPage<'a> = serde_json::from_str(body).map_err(|e| format!("unreadable page ({e})"))?;
        if answer.code != 0 {
            return Err(format!("the envelope's code is {}", answer.code));
        }
        let data = answer.data.ok_or("the answer has no data")?;
        let page = page.copied().unwrap_or(1);
        let total_page = data.page_info.and_then(|p| p.total_page).unwrap_or(1);
        Ok(Page { rows: data.list, next: (page < total_page).then_some(page + 1) })
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        classify(answer)
    }
}

fn classify(answer: Answer<'_>) -> Verdict {
    if answer.status == StatusCode::NOT_FOUND {
        let message = answer.json.as_ref().ok().and_then(|v| v["message"].as_str()).unwrap_or("").to_string();
        // Only TikTok's own word makes a 404 a version problem; any other 404 is a path not found.
        if message.to_ascii_lowercase().contains("version") {
            return Verdict::SunsetVersion(message);
        }
        return answer.standard(PLATFORM);
    }
    let verdict = answer.standard(PLATFORM);
    let Verdict::Done(body) = verdict else { return verdict };
    let code = body["code"].as_i64().unwrap_or(-1);
    let message = body["message"].as_str().unwrap_or("").to_string();
    match code {
        0 => Verdict::Done(body),
        // Rate limited: "requests from this app are temporarily restricted".
        40100 | 40133 => Verdict::Retry {
            after: None,
            error: SourceError::RateLimited { platform: PLATFORM, attempts: 0, code: code.to_string(), message },
        },
        // System errors and maintenance: transient.
        50000 | 50002 | 51021 | 60001 => Verdict::Retry {
            after: None,
            error: SourceError::Transport {
                platform: PLATFORM,
                attempts: 0,
                message: format!("code {code}: {message}"),
            },
        },
        40001 | 40104 | 40105 => {
            Verdict::Fail(SourceError::Auth { platform: PLATFORM, code: code.to_string(), message })
        }
        _ => Verdict::Fail(SourceError::Platform { platform: PLATFORM, code: code.to_string(), message }),
    }
}

/// A page of a list (report rows, entities), read without building a `Value` tree: its rows stay borrowed text.
#[derive(Deserialize)]
struct ListPage<'a> {
    code: i64,
    #[serde(borrow, default)]
    data: Option<ListData<'a>>,
}

#[derive(Deserialize)]
struct ListData<'a> {
    #[serde(borrow)]
    list: Vec<&'a RawValue>,
    #[serde(default)]
    page_info: Option<PageInfo>,
}

#[derive(Deserialize)]
struct PageInfo {
    #[serde(default)]
    total_page: Option<u64>,
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;
    use serde_json::Value;

    use super::*;

    fn classify(status: u16, body: &str) -> Verdict {
        let json = serde_json::from_str::<Value>(body).map_err(|e| e.to_string());
        super::classify(Answer { status: StatusCode::from_u16(status).unwrap(), headers: &HeaderMap::new(), json })
    }

    #[test]
    fn errors_in_the_envelope_are_classified() {
        assert!(matches!(classify(200, r#"{"code": 0, "data": {}}"#), Verdict::Done(_)));
        assert!(matches!(classify(200, r#"{"code": 40100, "message": "slow down"}"#), Verdict::Retry { .. }));
        assert!(matches!(
            classify(200, r#"{"code": 40105, "message": "expired"}"#),
            Verdict::Fail(SourceError::Auth { .. })
        ));
        assert!(matches!(
            classify(200, r#"{"code": 40002, "message": "bad"}"#),
            Verdict::Fail(SourceError::Platform { .. })
        ));
    }

    #[test]
    fn a_404_is_a_sunset_only_when_tiktok_says_the_version_is_gone() {
        let gone = r#"{"code": 40404, "message": "API version v1.2 is not available; supported: v1.3", "data": {}}"#;
        assert!(matches!(classify(404, gone), Verdict::SunsetVersion(m) if m.contains("v1.2")));
        assert!(matches!(classify(404, "<html>Not Found</html>"), Verdict::NotFound(_)));
        assert!(matches!(classify(404, r#"{"code": 40404, "message": "Not found"}"#), Verdict::NotFound(_)));
    }
}
