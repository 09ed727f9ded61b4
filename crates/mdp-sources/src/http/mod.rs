//! The shared HTTP driver every connector uses: one client with timeouts, retries with exponential
//! backoff and jitter, `Retry-After`, and a per-platform classifier that knows the API's error
//! envelope (including "HTTP 200 with an error in the body", TikTok's way).
//!
//! A connector describes its platform's API once, as a [`ReportApi`] (`api.rs`): where requests go and
//! which headers authenticate them ([`Endpoint`], built by [`ApiHeader`]s), the request of a page, how a
//! page is read (rows and the next cursor), how an answer is classified. The driver owns the rest: the
//! one paging loop ([`Pages`], `paging.rs`), retries, and the wording of the errors every platform
//! shares ([`SourceError::SunsetVersion`], [`SourceError::NotFound`], malformed pages).
//!
//! Secrets: connectors put tokens in headers marked sensitive, never in URLs (URLs appear in errors
//! and logs); this module never logs headers or bodies.

mod api;
mod pace;
mod paging;

pub use api::{ApiHeader, Endpoint, HeaderSource, HttpRequest, Page, ReportApi};
pub use pace::Pacer;
pub use paging::{Pages, ROWS_PER_SEND};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mdp_core::Platform;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::Value;

use crate::error::SourceError;

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub request_timeout: Duration,
    /// The longest wait a platform's own rate-limit answer is honoured for (its `Retry-After`, a reset
    /// time: X's windows are 15 minutes), where other waits stop at `max_delay`.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            max_rate_limit_wait: Duration::from_secs(15 * 60),
        }
    }
}

/// Counters of one ingest, shared by every request (progress bars and the summary read them).
#[derive(Debug, Default)]
pub struct ReadStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rows: AtomicU64,
}

impl ReadStats {
    pub fn add_rows(&self, n: usize) {
        self.rows.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// What a platform's classifier makes of one answer.
#[derive(Debug)]
pub enum Verdict {
    /// A good answer.
    Done(Value),
    /// Worth another try (after `after` if the platform said so).
    Retry { after: Option<Duration>, error: SourceError },
    /// Final.
    Fail(SourceError),
    /// The platform said, in its documented way, that the requested API version is not served (sunset
    /// or unknown). The driver words it as [`SourceError::SunsetVersion`] with the configured and default
    /// versions; the text is the platform's own message.
    SunsetVersion(String),
    /// The requested path does not exist (HTTP 404 with no version error). The driver words it as
    /// [`SourceError::NotFound`] with the path; the text is the platform's own message.
    NotFound(String),
}

/// The answer as the classifier sees it: status, headers, and the body parsed as JSON (or why not).
#[derive(Debug)]
pub struct Answer<'a> {
    pub status: StatusCode,
    pub headers: &'a HeaderMap,
    pub json: Result<Value, String>,
}

impl Answer<'_> {
    /// `Retry-After` in seconds, if sent.
    pub fn retry_after(&self) -> Option<Duration> {
        retry_after(self.headers)
    }

    /// The body, shortened, for error messages (or why it is not JSON).
    pub fn detail(&self) -> String {
        match &self.json {
            Ok(v) => v.to_string().chars().take(300).collect::<String>(),
            Err(e) => e.clone(),
        }
    }

    /// The classification every JSON API shares; platforms call it for what they do not special-case.
    /// A 404 is [`Verdict::NotFound`]: only a platform's own classifier knows its sunset signal.
    pub fn standard(self, platform: Platform) -> Verdict {
        let status = self.status;
        let retry_after = self.retry_after();
        let detail = self.detail();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let error = SourceError::RateLimited { platform, attempts: 0, code: "429".into(), message: detail };
            return Verdict::Retry { after: retry_after, error };
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            let error = SourceError::Transport { platform, attempts: 0, message: format!("HTTP {status}: {detail}") };
            return Verdict::Retry { after: retry_after, error };
        }
        if status == StatusCode::UNAUTHORIZED {
            return Verdict::Fail(SourceError::Auth { platform, code: status.as_u16().to_string(), message: detail });
        }
        if status == StatusCode::NOT_FOUND {
            return Verdict::NotFound(if self.json.is_ok() { detail } else { format!("HTTP {status}") });
        }
        if !status.is_success() {
            return Verdict::Fail(SourceError::Platform {
                platform,
                code: status.as_u16().to_string(),
                message: detail,
            });
        }
        match self.json {
            Ok(v) => Verdict::Done(v),
            // A 200 whose body does not parse was most likely cut short: try again.
            Err(e) => Verdict::Retry { after: None, error: SourceError::malformed(platform, e) },
        }
    }
}

/// The shared client. Cheap to clone.
/// One request the driver sent and what came back, for a dry run's transcript (`mdp connector test`).
/// The URL carries no credential (they travel in headers, which are never shown).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: String,
    /// The path and query string.
    pub url: String,
    /// The JSON body sent, if any.
    pub body: Option<String>,
    /// `None` when no answer came (a transport error).
    pub status: Option<u16>,
    pub bytes: usize,
    pub millis: u128,
    pub attempt: u32,
    /// The first characters of the answer.
    pub preview: String,
}

/// Called with every exchange of a driver that has one.
pub type Trace = Arc<dyn Fn(&Exchange) + Send + Sync>;

#[derive(Clone)]
pub struct HttpDriver {
    client: reqwest::Client,
    policy: RetryPolicy,
    pub stats: Arc<ReadStats>,
    trace: Option<Trace>,
}

impl std::fmt::Debug for HttpDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDriver").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl HttpDriver {
    pub fn new(policy: RetryPolicy) -> Result<HttpDriver, String> {
        let client = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .connect_timeout(Duration::from_secs(20))
            .user_agent(concat!("mdp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(HttpDriver { client, policy, stats: Arc::new(ReadStats::default()), trace: None })
    }

    /// The same driver, calling `trace` with every exchange.
    pub fn with_trace(mut self, trace: Trace) -> HttpDriver {
        self.trace = Some(trace);
        self
    }

    fn traced(
        &self,
        request: &HttpRequest,
        url: &str,
        attempt: u32,
        started: std::time::Instant,
        answer: Option<(u16, &[u8])>,
    ) {
        let Some(trace) = &self.trace else { return };
        let mut shown =
            url.split_once("://").map_or(url, |(_, rest)| rest.find('/').map_or(rest, |i| &rest[i..])).to_string();
        if !request.query.is_empty() {
            let query: Vec<String> = request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            shown.push(if shown.contains('?') { '&' } else { '?' });
            shown.push_str(&query.join("&"));
        }
        let (status, body) = answer.map_or((None, &[][..]), |(status, body)| (Some(status), body));
        trace(&Exchange {
            method: request.method.to_string(),
            url: shown,
            body: request.json_body.clone(),
            status,
            bytes: body.len(),
            millis: started.elapsed().as_millis(),
            attempt,
            preview: preview(body),
        });
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn policy(&self) -> RetryPolicy {
        self.policy
    }

    /// Send one request of `api` and return its answer as a JSON tree, once `api`'s classifier calls
    /// it good (retrying what it calls transient). For small answers: an account, a token check.
    pub async fn json<A: ReportApi>(&self, api: &A, request: &HttpRequest) -> Result<Value, SourceError> {
        match self.exchange::<()>(api.endpoint(), request, |answer| api.classify(answer), None).await? {
            Body::Json(value) => Ok(value),
            Body::Text(..) => {
                Err(SourceError::malformed(api.endpoint().platform(), "internal: an unrequested raw body"))
            }
        }
    }

    /// Read `query` of `api` page by page (see [`Pages`]).
    pub fn pages<A: ReportApi>(&self, api: &Arc<A>, query: A::Query) -> Pages<'_, A> {
        Pages::new(self, api.clone(), query)
    }

    /// Like [`HttpDriver::json`], but a successful body that `accept` reads as data is returned as text
    /// with what `accept` made of it (e.g. where each row of the page is), without being parsed into a
    /// `Value` tree: the caller reads rows with borrowed, typed structs (large report pages). The page is
    /// parsed once, on the blocking pool. Anything else — an error status, a body `accept` rejects, a
    /// body cut short — goes through the classifier exactly as `json` does, with the same retries (the
    /// text is then the classified body, with no reading).
    pub(crate) async fn text<A: ReportApi, T: Send + 'static>(
        &self,
        api: &A,
        request: &HttpRequest,
        accept: Accept<T>,
    ) -> Result<(String, Option<T>), SourceError> {
        match self.exchange(api.endpoint(), request, |answer| api.classify(answer), Some(accept)).await? {
            Body::Text(text, read) => Ok((text, Some(read))),
            Body::Json(value) => Ok((value.to_string(), None)),
        }
    }

    async fn exchange<T: Send + 'static>(
        &self,
        endpoint: &Endpoint,
        request: &HttpRequest,
        classify: impl Fn(Answer<'_>) -> Verdict,
        accept: Option<Accept<T>>,
    ) -> Result<Body<T>, SourceError> {
        let platform = endpoint.platform();
        let url = endpoint.url(request);
        let mut attempt = 0u32;
        // A refreshed token the platform refuses is refreshed once; a second refusal is final.
        let mut refreshed_after_refusal = false;
        loop {
            attempt += 1;
            let token = endpoint.current_token(&self.client).await?;
            if let Some(pacer) = endpoint.pacer() {
                pacer.acquire().await;
            }
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let verdict = match endpoint.build(&self.client, &url, request, token.as_ref())?.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.bytes().await;
                    if let Ok(body) = &body {
                        self.traced(request, &url, attempt, started, Some((status.as_u16(), body)));
                    }
                    match body {
                        Ok(body) => match (&accept, status.is_success()) {
                            (Some(accept), true) => match accepted_text(body, accept.clone()).await {
                                Ok((text, read)) => return Ok(Body::Text(text, read)),
                                Err(body) => {
                                    classify(Answer { status, headers: &headers, json: parse_json(body).await })
                                }
                            },
                            _ => classify(Answer { status, headers: &headers, json: parse_json(body).await }),
                        },
                        Err(e) => Verdict::Retry {
                            after: None,
                            error: SourceError::Transport { platform, attempts: attempt, message: without_url(&e) },
                        },
                    }
                }
                Err(e) => {
                    self.traced(request, &url, attempt, started, None);
                    Verdict::Retry {
                        after: None,
                        error: SourceError::Transport { platform, attempts: attempt, message: without_url(&e) },
                    }
                }
            };
            match verdict {
                Verdict::Done(value) => return Ok(Body::Json(value)),
                Verdict::Fail(SourceError::Auth { .. }) if !refreshed_after_refusal && token.is_some() => {
                    refreshed_after_refusal = true;
                    endpoint.token_refused(&self.client, token.as_ref().expect("checked")).await?;
                    attempt -= 1;
                }
                Verdict::Fail(error) => return Err(error),
                Verdict::SunsetVersion(message) => return Err(endpoint.sunset(message)),
                Verdict::NotFound(message) => {
                    return Err(SourceError::NotFound { platform, path: endpoint.path_of(request), message })
                }
                Verdict::Retry { after, error } => {
                    if attempt >= self.policy.max_attempts {
                        return Err(with_attempts(error, attempt));
                    }
                    let delay = self.delay(attempt, after, &error);
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%platform, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Fetch a file an asynchronous report made (the URL its job gave), retrying transport errors,
    /// 429 and 5xx. It carries none of the endpoint's headers (a presigned storage URL refuses them, and
    /// credentials go nowhere but the API) unless `with_credentials` and the URL is under the endpoint's
    /// root. Any other 4xx is returned with its status: the caller decides (an expired URL is asked for
    /// again). Neither errors nor traces show the URL's query string (a presigned URL's signature).
    pub async fn download(
        &self,
        endpoint: &Endpoint,
        url: &str,
        with_credentials: bool,
    ) -> Result<(StatusCode, Vec<u8>), SourceError> {
        let platform = endpoint.platform();
        let request = HttpRequest::get(url);
        let shown = match url.split_once('?') {
            Some((path, _)) => format!("{path}?…"),
            None => url.to_string(),
        };
        let shown_request = HttpRequest::get(&shown);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let started = std::time::Instant::now();
            let builder = if with_credentials && endpoint.under_root(url) {
                let token = endpoint.current_token(&self.client).await?;
                endpoint.build(&self.client, url, &request, token.as_ref())?
            } else {
                self.client.get(url)
            };
            let (error, after) = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let after = retry_after(response.headers());
                    match response.bytes().await {
                        Ok(body) => {
                            self.traced(&shown_request, &shown, attempt, started, Some((status.as_u16(), &body)));
                            let transient = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                            if !transient {
                                return Ok((status, body.to_vec()));
                            }
                            let message = format!("the report file answered HTTP {status}");
                            (SourceError::Transport { platform, attempts: attempt, message }, after)
                        }
                        Err(e) => {
                            (SourceError::Transport { platform, attempts: attempt, message: without_url(&e) }, None)
                        }
                    }
                }
                Err(e) => {
                    self.traced(&shown_request, &shown, attempt, started, None);
                    (SourceError::Transport { platform, attempts: attempt, message: without_url(&e) }, None)
                }
            };
            if attempt >= self.policy.max_attempts {
                return Err(with_attempts(error, attempt));
            }
            let delay = after.unwrap_or_else(|| self.backoff(attempt)).min(self.policy.max_delay);
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%platform, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying a report download");
            tokio::time::sleep(delay).await;
        }
    }

    /// The wait before retry `attempt`: the platform's own (`after`), up to `max_rate_limit_wait` for a
    /// rate limit and `max_delay` otherwise, or the backoff.
    fn delay(&self, attempt: u32, after: Option<Duration>, error: &SourceError) -> Duration {
        match (after, error) {
            (Some(after), SourceError::RateLimited { .. }) => {
                after.min(self.policy.max_rate_limit_wait.max(self.policy.max_delay))
            }
            (Some(after), _) => after.min(self.policy.max_delay),
            (None, _) => self.backoff(attempt),
        }
    }

    /// Exponential backoff with full jitter: uniform in [base·2^(n-1)/2, base·2^(n-1)].
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.policy.base_delay.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.policy.max_delay);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let fraction = 0.5 + f64::from(nanos % 1000) / 2000.0;
        ceiling.mul_f64(fraction)
    }
}

/// The first characters of an answer, or what it is when it is not text (a report's gzip file).
fn preview(body: &[u8]) -> String {
    let head = &body[..body.len().min(300)];
    if body.starts_with(&[0x1f, 0x8b]) {
        return format!("(gzip, {} bytes)", body.len());
    }
    match std::str::from_utf8(head) {
        Ok(text) => text.to_string(),
        // Cut inside a character: the text up to it.
        Err(e) if e.error_len().is_none() => String::from_utf8_lossy(&head[..e.valid_up_to()]).into_owned(),
        Err(_) => format!("(binary, {} bytes)", body.len()),
    }
}

/// An answer's `Retry-After`, in seconds, if sent.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Reads a successful body as data (see [`HttpDriver::text`]); `None` when it is not.
pub(crate) type Accept<T> = Arc<dyn Fn(&str) -> Option<T> + Send + Sync>;

/// What an exchange returns: a parsed tree, or accepted text with what `accept` read of it.
enum Body<T> {
    Json(Value),
    Text(String, T),
}

/// The body as text with what `accept` read of it, if it is UTF-8 and `accept` takes it (read off the
/// async thread); otherwise the body back, for the classifier.
async fn accepted_text<B, T>(body: B, accept: Accept<T>) -> Result<(String, T), B>
where
    B: AsRef<[u8]> + Into<Vec<u8>> + Send + 'static,
    T: Send + 'static,
{
    let check = move || {
        let read = match std::str::from_utf8(body.as_ref()) {
            Ok(text) => accept(text),
            Err(_) => None,
        };
        match read {
            // UTF-8 was checked above; a body the response alone holds is moved, not copied.
            Some(read) => Ok((String::from_utf8(body.into()).expect("checked UTF-8"), read)),
            None => Err(body),
        }
    };
    tokio::task::spawn_blocking(check).await.expect("the body check does not panic")
}

/// Parse a body as JSON. Large bodies are parsed on the blocking pool, so that reading many accounts
/// at once uses every core instead of only the task that polls them all.
async fn parse_json<B: AsRef<[u8]> + Send + 'static>(body: B) -> Result<Value, String> {
    const INLINE_LIMIT: usize = 64 * 1024;
    fn parse(body: &[u8]) -> Result<Value, String> {
        serde_json::from_slice::<Value>(body)
            .map_err(|e| format!("the body is not valid JSON ({e}); {} bytes received", body.len()))
    }
    if body.as_ref().len() <= INLINE_LIMIT {
        return parse(body.as_ref());
    }
    tokio::task::spawn_blocking(move || parse(body.as_ref()))
        .await
        .unwrap_or_else(|e| Err(format!("the JSON parser thread failed: {e}")))
}

fn with_attempts(error: SourceError, attempts: u32) -> SourceError {
    match error {
        SourceError::RateLimited { platform, code, message, .. } => {
            SourceError::RateLimited { platform, attempts, code, message }
        }
        SourceError::Transport { platform, message, .. } => SourceError::Transport { platform, attempts, message },
        SourceError::Malformed { platform, message } => {
            SourceError::Malformed { platform, message: format!("{message} (after {attempts} attempts)") }
        }
        other => other,
    }
}

/// A reqwest error's message without its URL (query strings may carry ids a user considers private).
fn without_url(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_is_waited_out_as_long_as_the_platform_says_up_to_its_own_cap() {
        let policy = RetryPolicy {
            max_delay: Duration::from_secs(60),
            max_rate_limit_wait: Duration::from_secs(900),
            ..RetryPolicy::default()
        };
        let driver = HttpDriver::new(policy).unwrap();
        let limited = SourceError::RateLimited {
            platform: Platform::TikTokAds,
            attempts: 0,
            code: "429".into(),
            message: String::new(),
        };
        let transport = SourceError::Transport { platform: Platform::TikTokAds, attempts: 0, message: String::new() };
        // X's reset in ten minutes: waited, not retried after a minute into the same window.
        assert_eq!(driver.delay(1, Some(Duration::from_secs(600)), &limited), Duration::from_secs(600));
        assert_eq!(driver.delay(1, Some(Duration::from_secs(3600)), &limited), Duration::from_secs(900));
        // A 503's Retry-After stays under the general cap.
        assert_eq!(driver.delay(1, Some(Duration::from_secs(600)), &transport), Duration::from_secs(60));
        assert!(driver.delay(3, None, &limited) <= Duration::from_secs(2), "no wait given: backoff");
    }

    #[test]
    fn a_dry_runs_preview_shows_text_and_names_files() {
        assert_eq!(preview(br#"{"data":[]}"#), r#"{"data":[]}"#);
        // A report file is named, not printed as mojibake.
        assert_eq!(preview(&[0x1f, 0x8b, 8, 0, 0, 0]), "(gzip, 6 bytes)");
        assert_eq!(preview(&[0xff, 0xfe, 0x00, 0x41]), "(binary, 4 bytes)");
        // Text cut inside a character at 300 bytes keeps what came before it.
        let text = format!("{}é", "a".repeat(299));
        assert_eq!(preview(text.as_bytes()), "a".repeat(299));
    }
}
