//! The Google Ads REST API as the shared driver reads it: every read is one GAQL query through
//! `POST /{version}/customers/{customer_id}/googleAds:searchStream`, body `{"query": "<GAQL>"}`, whose
//! answer is a JSON array of batches in one body (no page cursor).

use serde_json::value::RawValue;

use super::rows::RawBatch;
use crate::error::SourceError;
use crate::http::{Answer, ApiHeader, Endpoint, HttpRequest, Page, ReportApi, Verdict};
use crate::source::SourceSettings;

/// One GAQL query of one customer.
#[derive(Debug, Clone)]
pub(super) struct Search {
    /// Digits only.
    pub customer: String,
    pub gaql: String,
}

#[derive(Debug)]
pub(super) struct GoogleApi {
    endpoint: Endpoint,
}

impl GoogleApi {
    /// `Authorization: Bearer`, `developer-token` only when configured, `login-customer-id` only when
    /// the option is set (acting through a manager account).
    pub(super) fn new(settings: &SourceSettings, login_customer_id: Option<&str>) -> Result<GoogleApi, SourceError> {
        let mut headers =
            vec![ApiHeader::bearer("access_token"), ApiHeader::credential("developer-token", "developer_token")];
        if let Some(login) = login_customer_id {
            headers.push(ApiHeader::text("login-customer-id", login));
        }
        let endpoint = Endpoint::new(settings, &format!("/{}", settings.api_version), &headers)?;
        Ok(GoogleApi { endpoint })
    }
}

impl ReportApi for GoogleApi {
    type Query = Search;
    /// searchStream answers in one body: there is never a next page.
    type Cursor = ();

    fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn request(&self, search: &Search, _: Option<&()>) -> HttpRequest {
        let body = serde_json::json!({ "query": search.gaql }).to_string();
        HttpRequest::post_json(format!("customers/{}/googleAds:searchStream", search.customer), body)
    }

    /// The rows of every batch, in order. A batch that is an error (possible after HTTP 200) makes the
    /// answer not a page: it is classified instead.
    fn parse_page<'a>(&self, _: &Search, _: Option<&()>, body: &'a str) -> Result<Page<'a, ()>, String> {
        let batches: Vec<RawBatch<'a>> = if body.trim_start().starts_with('{') {
            // A single batch object: not what searchStream sends, but unambiguous.
            vec![serde_json::from_str(body).map_err(|e| format!("unreadable batch ({e})"))?]
        } else {
            serde_json::from_str(body)
                .map_err(|e| format!("searchStream answered something other than an array of batches ({e})"))?
        };
        if batches.iter().any(|batch| batch.error.is_some()) {
            return Err("the stream holds an error".into());
        }
        let rows: Vec<&'a RawValue> = batches.into_iter().flat_map(|batch| batch.results.unwrap_or_default()).collect();
        Ok(Page { rows, next: None })
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        super::classify::classify(answer)
    }
}
