//! The one paging loop: request a page, read it, follow its cursor, until the last page.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use super::{Accept, HttpDriver, HttpRequest, Page, ReportApi};
use crate::error::SourceError;
use crate::source::{emit, ReadContext, Sink};

/// Most records [`Pages::send_next`] converts before sending them on.
pub const ROWS_PER_SEND: usize = 8192;

/// A paged read in progress ([`HttpDriver::pages`]). Each [`Pages::next_page`] sends one request (with the
/// driver's retries) and converts that page's rows; the caller sends them on before asking for the
/// next, so a read never holds more than a page unless it chooses to.
///
/// A page the API's `parse_page` cannot read is [`SourceError::Malformed`] naming the platform and the
/// path; a cursor that repeats an earlier one is refused the same way (it would loop for ever).
pub struct Pages<'d, A: ReportApi> {
    driver: &'d HttpDriver,
    api: Arc<A>,
    query: A::Query,
    /// The cursor of the page to read next: `Some(None)` before the first page, `None` after the last.
    next: Option<Option<A::Cursor>>,
    seen: HashSet<A::Cursor>,
    pages_read: usize,
}

impl<'d, A: ReportApi> Pages<'d, A> {
    pub(super) fn new(driver: &'d HttpDriver, api: Arc<A>, query: A::Query) -> Self {
        Pages { driver, api, query, next: Some(None), seen: HashSet::new(), pages_read: 0 }
    }

    /// The next page's rows (each the API's own JSON text of the row) through `convert`, or `None`
    /// after the last page.
    pub async fn next_page<T>(
        &mut self,
        mut convert: impl FnMut(&str) -> Result<T, SourceError>,
    ) -> Result<Option<Vec<T>>, SourceError> {
        let Some(fetched) = self.fetch().await? else { return Ok(None) };
        let (body, rows) = self.read(fetched)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(convert(&body[row])?);
        }
        Ok(Some(out))
    }

    /// The next page's text and where its rows are in it, or `None` after the last page: for a reader
    /// that keeps several answers' rows borrowed at once (LinkedIn merges one row from several answers).
    pub async fn next_text(&mut self) -> Result<Option<(String, Vec<Range<usize>>)>, SourceError> {
        let Some(fetched) = self.fetch().await? else { return Ok(None) };
        self.read(fetched).map(Some)
    }

    /// Read the next page and send its rows through `convert` to `out`, [`ROWS_PER_SEND`] at a time
    /// (a large page is not converted whole before the loader sees any of it). `false` after the last
    /// page.
    pub async fn send_next<T: Send>(
        &mut self,
        ctx: &ReadContext,
        out: &Sink<T>,
        mut convert: impl FnMut(&str) -> Result<T, SourceError>,
    ) -> Result<bool, SourceError> {
        let Some(fetched) = self.fetch().await? else { return Ok(false) };
        let (body, rows) = self.read(fetched)?;
        for chunk in rows.chunks(ROWS_PER_SEND) {
            let records =
                chunk.iter().map(|row| convert(&body[row.clone()])).collect::<Result<Vec<T>, SourceError>>()?;
            emit(out, ctx, records).await?;
        }
        Ok(true)
    }

    /// Send the next page's request; the page is read (rows located, next cursor) as it arrives.
    async fn fetch(&mut self) -> Result<Option<Fetched<A::Cursor>>, SourceError> {
        let Some(cursor) = self.next.take() else { return Ok(None) };
        let request = self.api.request(&self.query, cursor.as_ref());
        let accept: Accept<Result<PageIndex<A::Cursor>, String>> = {
            let (api, query, cursor) = (self.api.clone(), self.query.clone(), cursor.clone());
            Arc::new(move |body: &str| {
                api.parse_page(&query, cursor.as_ref(), body).ok().map(|page| PageIndex::of(body, page))
            })
        };
        let (body, index) = self.driver.text(self.api.as_ref(), &request, accept).await?;
        // A body the classifier passed without `accept` taking it is read again here, for its error.
        let index = index.unwrap_or_else(|| {
            self.api.parse_page(&self.query, cursor.as_ref(), &body).and_then(|page| PageIndex::of(&body, page))
        });
        Ok(Some(Fetched { body, request, cursor, index }))
    }

    /// A fetched page's text and where its rows are; remembers where the next one starts.
    fn read(&mut self, fetched: Fetched<A::Cursor>) -> Result<(String, Vec<Range<usize>>), SourceError> {
        let Fetched { body, request, cursor, index } = fetched;
        let endpoint = self.api.endpoint();
        let malformed = |reason: String| {
            SourceError::malformed(endpoint.platform(), format!("{}: {reason}", endpoint.path_of(&request)))
        };
        let number = self.pages_read + 1;
        let page = index.map_err(|reason| malformed(format!("page {number} is not readable: {reason}")))?;
        self.pages_read = number;
        if let Some(next) = page.next {
            if let Some(current) = cursor {
                self.seen.insert(current);
            }
            if self.seen.contains(&next) {
                return Err(malformed(format!(
                    "the cursor after page {number} repeats an earlier page's; the API is looping"
                )));
            }
            self.next = Some(Some(next));
        }
        Ok((body, page.rows))
    }

    /// Every remaining page's rows, in order.
    pub async fn collect<T>(
        mut self,
        mut convert: impl FnMut(&str) -> Result<T, SourceError>,
    ) -> Result<Vec<T>, SourceError> {
        let mut all = Vec::new();
        while let Some(rows) = self.next_page(&mut convert).await? {
            all.extend(rows);
        }
        Ok(all)
    }
}

/// A fetched page: its text, the request (for error messages), its cursor, and where its rows are.
struct Fetched<C> {
    body: String,
    request: HttpRequest,
    cursor: Option<C>,
    index: Result<PageIndex<C>, String>,
}

/// Where a page's rows are in its text, and the next page's cursor: a [`Page`] without the borrow, so
/// the page is parsed once (on the blocking pool, as it arrives) and its rows are read from the text.
struct PageIndex<C> {
    rows: Vec<Range<usize>>,
    next: Option<C>,
}

impl<C> PageIndex<C> {
    /// `Err` if a row is not a part of `body` (a `parse_page` must return rows borrowed from it).
    fn of(body: &str, page: Page<'_, C>) -> Result<Self, String> {
        let start = body.as_ptr() as usize;
        let rows = page
            .rows
            .iter()
            .map(|row| {
                let offset = (row.get().as_ptr() as usize).checked_sub(start);
                let range = offset.map(|o| o..o + row.get().len());
                range
                    .filter(|r| r.end <= body.len())
                    .ok_or_else(|| "internal: a row is not part of the page".to_string())
            })
            .collect::<Result<_, _>>()?;
        Ok(PageIndex { rows, next: page.next })
    }
}

#[cfg(test)]
mod tests {
    //! The loop against a scripted HTTP server (a thread answering canned bodies by path and query).

    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use mdp_core::{Platform, SourceOptions};
    use serde::Deserialize;
    use serde_json::value::RawValue;

    use super::*;
    use crate::http::{Answer, ApiHeader, Endpoint, HttpRequest, Page, RetryPolicy, Verdict};
    use crate::source::{Credential, SourceSettings};

    /// Serves `answer(path_and_query) -> (status, body)` until the test ends; returns the base URL.
    fn serve(answer: impl Fn(&str) -> (u16, String) + Send + 'static) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap();
                    }
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let target = request_line.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = answer(&target);
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        base
    }

    /// A cursor-paged API: `{"items": [...], "next": "<cursor>"}`, the cursor sent as `?after=`.
    struct FakeApi {
        endpoint: Endpoint,
    }

    #[derive(Deserialize)]
    struct FakePage<'a> {
        #[serde(borrow)]
        items: Vec<&'a RawValue>,
        #[serde(default)]
        next: Option<String>,
    }

    impl ReportApi for FakeApi {
        type Query = &'static str;
        type Cursor = String;

        fn endpoint(&self) -> &Endpoint {
            &self.endpoint
        }

        fn request(&self, query: &&'static str, cursor: Option<&String>) -> HttpRequest {
            let request = HttpRequest::get(*query);
            match cursor {
                Some(after) => request.param("after", after.clone()),
                None => request,
            }
        }

        fn parse_page<'a>(
            &self,
            _: &&'static str,
            _: Option<&String>,
            body: &'a str,
        ) -> Result<Page<'a, String>, String> {
            let page: FakePage<'a> = serde_json::from_str(body).map_err(|e| e.to_string())?;
            Ok(Page { rows: page.items, next: page.next })
        }

        fn classify(&self, answer: Answer<'_>) -> Verdict {
            answer.standard(Platform::TikTokAds)
        }
    }

    fn api(base: String) -> Arc<FakeApi> {
        let settings = SourceSettings {
            name: "fake".into(),
            platform: Platform::TikTokAds,
            base_url: base,
            api_version: "v1".into(),
            accounts: vec![],
            credentials: [("access_token".to_string(), Credential::new("secret"))].into_iter().collect(),
            token_url: None,
            options: SourceOptions::defaults(Platform::TikTokAds),
        };
        let endpoint = Endpoint::new(&settings, "/api/v1", &[ApiHeader::bearer("access_token")]).unwrap();
        Arc::new(FakeApi { endpoint })
    }

    fn driver() -> HttpDriver {
        HttpDriver::new(RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            request_timeout: Duration::from_secs(5),
            max_rate_limit_wait: Duration::from_millis(5),
        })
        .unwrap()
    }

    fn number(raw: &str) -> Result<u32, SourceError> {
        Ok(raw.parse().unwrap())
    }

    #[tokio::test]
    async fn pages_are_followed_to_the_last() {
        let base = serve(|target| match target {
            "/api/v1/items" => (200, r#"{"items": [1, 2], "next": "b"}"#.into()),
            "/api/v1/items?after=b" => (200, r#"{"items": [3], "next": "c"}"#.into()),
            "/api/v1/items?after=c" => (200, r#"{"items": [4]}"#.into()),
            _ => (404, "{}".into()),
        });
        let driver = driver();
        let mut pages = driver.pages(&api(base), "items");
        assert_eq!(pages.next_page(number).await.unwrap(), Some(vec![1, 2]), "one page at a time");
        assert_eq!(pages.collect(number).await.unwrap(), vec![3, 4]);
        assert_eq!(driver.stats.requests.load(std::sync::atomic::Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_repeated_cursor_is_refused() {
        let base = serve(|target| match target {
            "/api/v1/items" => (200, r#"{"items": [1], "next": "b"}"#.into()),
            "/api/v1/items?after=b" => (200, r#"{"items": [2], "next": "c"}"#.into()),
            _ => (200, r#"{"items": [3], "next": "b"}"#.into()),
        });
        let error = driver().pages(&api(base), "items").collect(number).await.unwrap_err();
        match &error {
            SourceError::Malformed { platform: Platform::TikTokAds, message } => {
                assert!(message.starts_with("/api/v1/items: "), "{message}");
                assert!(message.contains("after page 3 repeats an earlier page's"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_malformed_page_names_the_platform_and_path() {
        let base = serve(|target| match target {
            "/api/v1/items" => (200, r#"{"items": [1], "next": "b"}"#.into()),
            _ => (200, r#"{"rows": []}"#.into()),
        });
        let error = driver().pages(&api(base), "items").collect(number).await.unwrap_err();
        assert!(matches!(error, SourceError::Malformed { platform: Platform::TikTokAds, .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.starts_with(
                "tiktok_ads: malformed response: /api/v1/items: page 2 is not readable: missing field `items`"
            ),
            "{text}"
        );
        assert!(!text.contains("after=") && !text.contains("secret"), "no query string, no token: {text}");
    }

    #[tokio::test]
    async fn a_plain_404_is_not_found_with_the_path() {
        let base = serve(|_| (404, r#"{"message": "no such thing"}"#.into()));
        let error = driver().pages(&api(base), "accounts/17/items").collect(number).await.unwrap_err();
        assert!(matches!(error, SourceError::NotFound { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("/api/v1/accounts/17/items"), "{text}");
        assert!(!text.contains("sunset"), "{text}");
    }
}
