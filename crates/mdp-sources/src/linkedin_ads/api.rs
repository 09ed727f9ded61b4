//! The LinkedIn Marketing API as the shared driver reads it: `GET {base}/rest/{path}` with
//! `Authorization: Bearer <token>` (sensitive), `LinkedIn-Version: YYYYMM` (`api_version`) and
//! `X-Restli-Protocol-Version: 2.0.0` on every request; Rest.li query strings are written by hand (see
//! `report.rs`); the finders page by cursor (`pageSize`, `pageToken` ← `metadata.nextPageToken`).
//!
//! Errors are `{"status","serviceErrorCode","code","message"}`: 401 → [`SourceError::Auth`], 429 →
//! retried (honouring `Retry-After` when sent), 5xx → retried, 426 `NONEXISTENT_VERSION` (LinkedIn's
//! word for a sunset or unknown `LinkedIn-Version`) → a sunset, 404 → not found.

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::report::encode_leaf;
use super::PLATFORM;
use crate::error::SourceError;
use crate::http::{Answer, ApiHeader, Endpoint, HeaderSource, HttpRequest, Page, ReportApi, Verdict};
use crate::source::SourceSettings;

const PAGE_SIZE: usize = 100;
/// Conversion rules per page (`conversions?q=account` pages by `start`/`count`).
const RULES_PAGE: usize = 100;

/// Every status of each finder, asked for explicitly: paused, archived and cancelled entities keep history.
const GROUP_STATUSES: &str = "List(ACTIVE,PAUSED,ARCHIVED,CANCELED,DRAFT,PENDING_DELETION,REMOVED)";
const CAMPAIGN_STATUSES: &str = "List(ACTIVE,PAUSED,ARCHIVED,COMPLETED,CANCELED,DRAFT,PENDING_DELETION,REMOVED)";
const CREATIVE_STATUSES: &str = "List(ACTIVE,PAUSED,ARCHIVED,CANCELED,DRAFT,PENDING_DELETION,REMOVED)";

/// Which finder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finder {
    CampaignGroups,
    Campaigns,
    Creatives,
}

impl Finder {
    pub(super) fn path_and_query(self, account_id: &str) -> String {
        match self {
            Finder::CampaignGroups => {
                format!("adAccounts/{account_id}/adCampaignGroups?q=search&search=(status:(values:{GROUP_STATUSES}))")
            }
            Finder::Campaigns => {
                format!("adAccounts/{account_id}/adCampaigns?q=search&search=(status:(values:{CAMPAIGN_STATUSES}))")
            }
            Finder::Creatives => {
                format!("adAccounts/{account_id}/creatives?q=criteria&intendedStatuses={CREATIVE_STATUSES}")
            }
        }
    }
}

/// One finder of one account, read page by page.
#[derive(Debug, Clone)]
pub(super) struct FinderQuery {
    pub finder: Finder,
    pub account_id: String,
}

/// What one read asks for: a finder (paged by token), an account's conversion rules (paged by
/// `start`/`count`: the cursor is the next start), or one `adAnalytics` request (no paging: its path
/// and Rest.li query string, see `report.rs`).
#[derive(Debug, Clone)]
pub(super) enum Query {
    Finder(FinderQuery),
    ConversionRules { account_id: String },
    Analytics(String),
}

impl From<FinderQuery> for Query {
    fn from(query: FinderQuery) -> Self {
        Query::Finder(query)
    }
}

#[derive(Debug)]
pub(super) struct LinkedInApi {
    endpoint: Endpoint,
}

impl LinkedInApi {
    pub(super) fn new(settings: &SourceSettings) -> Result<LinkedInApi, SourceError> {
        let headers = [
            ApiHeader::bearer("access_token"),
            ApiHeader { name: "linkedin-version".into(), value: HeaderSource::ApiVersion },
            ApiHeader::text("x-restli-protocol-version", "2.0.0"),
        ];
        Ok(LinkedInApi { endpoint: Endpoint::new(settings, "/rest", &headers)? })
    }
}

impl ReportApi for LinkedInApi {
    type Query = Query;
    /// `metadata.nextPageToken`.
    type Cursor = String;

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, query: &Query, token: Option<&String>) -> HttpRequest {
        let query = match query {
            Query::Finder(finder) => finder,
            Query::Analytics(path_and_query) => return HttpRequest::get(path_and_query.clone()),
            Query::ConversionRules { account_id } => {
                let account = encode_leaf(&format!("urn:li:sponsoredAccount:{account_id}"));
                let start = token.map_or("0", String::as_str);
                return HttpRequest::get(format!(
                    "conversions?q=account&account={account}&start={start}&count={RULES_PAGE}"
                ));
            }
        };
        let mut path = format!("{}&pageSize={PAGE_SIZE}", query.finder.path_and_query(&query.account_id));
        if let Some(token) = token {
            path.push_str("&pageToken=");
            path.push_str(&encode_leaf(token));
        }
        HttpRequest::get(path)
    }

    fn parse_page<'a>(&self, query: &Query, token: Option<&String>, body: &'a str) -> Result<Page<'a, String>, String> {
        let page: FinderPage<'a> = serde_json::from_str(body).map_err(|e| format!("unreadable page ({e})"))?;
        let rows = page.elements.ok_or("the answer has no elements")?;
        let next = match query {
            Query::Finder(_) => page.metadata.and_then(|m| m.next_page_token).filter(|token| !token.is_empty()),
            Query::ConversionRules { .. } => {
                let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
                let next = start + rows.len();
                let more = match page.paging.and_then(|p| p.total) {
                    Some(total) => next < total,
                    None => rows.len() == RULES_PAGE,
                };
                (more && !rows.is_empty()).then(|| next.to_string())
            }
            Query::Analytics(_) => None,
        };
        Ok(Page { rows, next })
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        classify(answer)
    }
}

/// A finder page, its elements kept as borrowed text.
#[derive(Deserialize)]
struct FinderPage<'a> {
    #[serde(borrow, default)]
    elements: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    metadata: Option<FinderMetadata>,
    #[serde(default)]
    paging: Option<Paging>,
}

/// The `start`/`count` paging of the older finders; `total` when the API counts.
#[derive(Deserialize)]
struct Paging {
    #[serde(default)]
    total: Option<usize>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FinderMetadata {
    #[serde(default)]
    next_page_token: Option<String>,
}

fn classify(answer: Answer<'_>) -> Verdict {
    let status = answer.status;
    let body = answer.json.as_ref().ok();
    let code = body
        .and_then(|b| {
            b["code"].as_str().map(str::to_string).or_else(|| b["serviceErrorCode"].as_i64().map(|c| c.to_string()))
        })
        .unwrap_or_else(|| status.as_u16().to_string());
    let message = body.and_then(|b| b["message"].as_str()).unwrap_or("").to_string();
    if status == StatusCode::UPGRADE_REQUIRED || code == "NONEXISTENT_VERSION" || code == "VERSION_MISSING" {
        return Verdict::SunsetVersion(message);
    }
    if status == StatusCode::UNAUTHORIZED {
        return Verdict::Fail(SourceError::Auth { platform: PLATFORM, code, message });
    }
    if status == StatusCode::NOT_FOUND {
        return Verdict::NotFound(format!("{code}: {message}"));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let code =
            body.and_then(|b| b["serviceErrorCode"].as_i64()).map_or_else(|| "429".to_string(), |c| c.to_string());
        let error = SourceError::RateLimited { platform: PLATFORM, attempts: 0, code, message };
        return Verdict::Retry { after: answer.retry_after(), error };
    }
    if status.is_client_error() && status != StatusCode::REQUEST_TIMEOUT {
        return Verdict::Fail(SourceError::Platform {
            platform: PLATFORM,
            code: format!("{} {code}", status.as_u16()),
            message,
        });
    }
    match answer.standard(PLATFORM) {
        Verdict::Done(body) if !body.is_object() => {
            Verdict::Retry { after: None, error: SourceError::malformed(PLATFORM, "the answer is not a JSON object") }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderMap;
    use serde_json::{json, Value};

    use super::*;

    fn classify(status: u16, body: Value) -> Verdict {
        super::classify(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers: &HeaderMap::new(),
            json: Ok(body),
        })
    }

    #[test]
    fn a_sunset_is_linkedins_version_error_and_a_404_is_not_found() {
        let sunset = json!({"status": 426, "code": "NONEXISTENT_VERSION", "message": "Requested version 20240101 is not active"});
        assert!(matches!(classify(426, sunset), Verdict::SunsetVersion(m) if m.contains("20240101")));
        let missing = json!({"status": 404, "serviceErrorCode": 100, "code": "NOT_FOUND", "message": "Not found: urn:li:sponsoredAccount:9"});
        assert!(matches!(classify(404, missing), Verdict::NotFound(m) if m.contains("NOT_FOUND: Not found")));
        assert!(matches!(classify(401, json!({"message": "expired"})), Verdict::Fail(SourceError::Auth { .. })));
        assert!(matches!(classify(429, json!({"serviceErrorCode": 101})), Verdict::Retry { .. }));
        assert!(matches!(classify(200, json!([])), Verdict::Retry { error: SourceError::Malformed { .. }, .. }));
    }

    #[test]
    fn every_finder_asks_for_every_status() {
        assert!(Finder::Campaigns.path_and_query("1").contains("search=(status:(values:List(ACTIVE,PAUSED,ARCHIVED,"));
        assert!(Finder::Creatives.path_and_query("1").contains("intendedStatuses=List(ACTIVE,PAUSED,ARCHIVED,"));
    }
}
