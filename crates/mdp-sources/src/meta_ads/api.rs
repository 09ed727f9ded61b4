//! The Graph API as the shared driver reads it: `GET /{version}/{node or edge}` with the token in
//! `Authorization: Bearer` (never in the URL), cursor paging on `paging.cursors.after` with our own URL
//! rather than `paging.next` (which can carry the token and points at Meta's host, not a configured proxy
//! or sandbox). Paging ends when `next` is absent or a page is empty.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::SourceError;
use crate::http::{Answer, ApiHeader, Endpoint, HttpRequest, Page, ReportApi, Verdict};
use crate::source::SourceSettings;

/// A node or edge and its parameters (`limit` and `after` are added per page).
#[derive(Debug, Clone)]
pub(super) struct Edge {
    pub path: String,
    pub params: Vec<(&'static str, String)>,
}

#[derive(Debug)]
pub(super) struct MetaApi {
    endpoint: Endpoint,
    page_size: u32,
}

impl MetaApi {
    pub(super) fn new(settings: &SourceSettings, page_size: u32) -> Result<MetaApi, SourceError> {
        let endpoint =
            Endpoint::new(settings, &format!("/{}", settings.api_version), &[ApiHeader::bearer("access_token")])?;
        Ok(MetaApi { endpoint, page_size })
    }
}

impl ReportApi for MetaApi {
    type Query = Edge;
    /// `paging.cursors.after`.
    type Cursor = String;

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, edge: &Edge, after: Option<&String>) -> HttpRequest {
        let request = HttpRequest::get(edge.path.clone())
            .with_query(edge.params.clone())
            .param("limit", self.page_size.to_string());
        match after {
            Some(after) => request.param("after", after.clone()),
            None => request,
        }
    }

    fn parse_page<'a>(&self, _: &Edge, _: Option<&String>, body: &'a str) -> Result<Page<'a, String>, String> {
        let page: RawPage<'a> = serde_json::from_str(body).map_err(|e| format!("unreadable page ({e})"))?;
        if page.error.is_some() {
            return Err("the answer is an error".into());
        }
        let rows = page.data.ok_or("the answer has no data array")?;
        let paging = page.paging.unwrap_or_default();
        let next = match (paging.next, paging.cursors.and_then(|c| c.after)) {
            (Some(_), Some(after)) if !rows.is_empty() => Some(after),
            _ => None,
        };
        Ok(Page { rows, next })
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        super::classify::classify(answer)
    }
}

/// A page of an edge, read without building a `Value` tree: its rows stay borrowed text.
#[derive(Deserialize)]
struct RawPage<'a> {
    #[serde(borrow, default)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    paging: Option<Paging>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
struct Paging {
    #[serde(default)]
    cursors: Option<Cursors>,
    #[serde(default)]
    next: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Cursors {
    #[serde(default)]
    after: Option<String>,
}
