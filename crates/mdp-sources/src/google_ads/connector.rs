//! The Google Ads API connector: every read is one GAQL query through REST
//! `POST /{version}/customers/{customer_id}/googleAds:searchStream`, body `{"query": "<GAQL>"}`.
//!
//! - account: `FROM customer` (id, descriptive name, currency, time zone);
//! - entities: `FROM campaign`, `FROM ad_group`, `FROM ad_group_ad` (removed ones included);
//! - daily: `ad_daily` (`FROM ad_group_ad`) and `campaign_daily` (`FROM campaign`), by `segments.date`.
//!
//! Traps handled: the answer is a JSON array of batches (an error may arrive as an element of the
//! array after HTTP 200); int64 values (ids, impressions, clicks, cost_micros) are JSON strings and
//! doubles (conversions, value) JSON numbers, read from their text into exact decimals, never through
//! float arithmetic; zero-valued fields are omitted (a missing metric is 0); money is `cost_micros`
//! (÷ 1e6 exactly); Performance Max campaigns have no ad rows, so `campaign_daily` carries their spend;
//! performance is never filtered by status; customer ids lose their dashes (`123-456-7890`); the
//! `developer-token` header is sent only when configured and `login-customer-id` (manager accounts)
//! only when the option is set; errors are `google.rpc.Status` bodies whose `GoogleAdsFailure` error
//! code and message are reported; 429 honours `Retry-After` / `retryDelay` but gives up at once on a
//! quota that resets in hours; a sunset version is not routed (HTTP 404); `metrics.video_views` was
//! renamed `metrics.video_trueview_views` in v22.

use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use mdp_core::{DateWindow, Platform};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::SourceError;
use crate::http::{Answer, Verdict};
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{
    emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
};

const PLATFORM: Platform = Platform::GoogleAds;

/// The API has no hard limit on a report's date range; 30 days keeps each answer (one JSON body, parsed
/// whole) to a few megabytes.
const MAX_WINDOW_DAYS: u32 = 10;

/// A rate limit whose quota resets further away than this (the daily operations quota) is not
/// waited for: retrying would only burn attempts.
const LONGEST_WAIT: Duration = Duration::from_secs(15 * 60);

pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: MAX_WINDOW_DAYS,
    description: "ad × day (ad_group_ad): spend, impressions, clicks, conversions, conversion value, video views",
};

/// Campaign × day: the only grain at which Performance Max campaigns report (they have no ad rows).
pub const CAMPAIGN_DAILY: StreamSpec = StreamSpec {
    name: "campaign_daily",
    kind: StreamKind::Daily,
    max_window_days: MAX_WINDOW_DAYS,
    description: "campaign × day: all of a campaign's spend, including Performance Max campaigns that have no ad rows",
};

pub(crate) const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY, CAMPAIGN_DAILY];

#[derive(Debug)]
pub struct GoogleAds {
    settings: SourceSettings,
    /// Digits only, when acting through a manager account.
    login_customer_id: Option<String>,
}

impl GoogleAds {
    pub fn new(settings: SourceSettings) -> Result<GoogleAds, SourceError> {
        settings.credential("access_token")?;
        let config_error = |message: String| settings.config_error(message);
        let login_customer_id = match &settings.options["login_customer_id"] {
            Value::Null => None,
            Value::String(s) => {
                Some(customer_id(s).map_err(|m| config_error(format!("options.login_customer_id: {m}")))?)
            }
            Value::Number(n) => {
                Some(customer_id(&n.to_string()).map_err(|m| config_error(format!("options.login_customer_id: {m}")))?)
            }
            other => return Err(config_error(format!("options.login_customer_id must be a customer id, not {other}"))),
        };
        for account in &settings.accounts {
            customer_id(account).map_err(|m| config_error(format!("account {account:?}: {m}")))?;
        }
        Ok(GoogleAds { settings, login_customer_id })
    }

    fn headers(&self) -> Result<HeaderMap, SourceError> {
        let name = &self.settings.name;
        let mut headers = HeaderMap::new();
        let token = self.settings.credential("access_token")?;
        headers.insert(
            AUTHORIZATION,
            crate::json::sensitive_header(name, "access_token", &format!("Bearer {}", token.expose()))?,
        );
        // Optional: only sent when configured.
        if let Some(developer_token) = self.settings.credentials.get("developer_token") {
            let value = crate::json::sensitive_header(name, "developer_token", developer_token.expose())?;
            headers.insert(HeaderName::from_static("developer-token"), value);
        }
        if let Some(login) = &self.login_customer_id {
            let value = HeaderValue::from_str(login).map_err(|_| SourceError::Config {
                source_name: name.clone(),
                message: "login_customer_id contains characters not allowed in an HTTP header".into(),
            })?;
            headers.insert(HeaderName::from_static("login-customer-id"), value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(headers)
    }

    /// Run one GAQL query; the batches of the stream, in order.
    async fn search(&self, ctx: &ReadContext, customer: &str, query: &str) -> Result<Vec<Value>, SourceError> {
        let customer = customer_id(customer).map_err(|message| self.settings.config_error(message))?;
        let url = format!(
            "{}/{}/customers/{customer}/googleAds:searchStream",
            self.settings.base(),
            self.settings.api_version
        );
        let headers = self.headers()?;
        let body = serde_json::json!({ "query": query }).to_string();
        let value = ctx
            .http
            .send(
                PLATFORM,
                |client| client.post(&url).headers(headers.clone()).body(body.clone()),
                |a| self.classify(a),
            )
            .await?;
        match value {
            Value::Array(batches) => Ok(batches),
            other => Err(SourceError::malformed(
                PLATFORM,
                format!("searchStream answered {} instead of an array of batches", kind_of(&other)),
            )),
        }
    }

    /// A searchStream answer as text when it is a clean array of batches (no error element): report
    /// rows are then read as borrowed typed rows ([`RawBatch`]) instead of a `Value` tree.
    async fn search_text(&self, ctx: &ReadContext, customer: &str, query: &str) -> Result<String, SourceError> {
        let customer = customer_id(customer).map_err(|message| self.settings.config_error(message))?;
        let url = format!(
            "{}/{}/customers/{customer}/googleAds:searchStream",
            self.settings.base(),
            self.settings.api_version
        );
        let headers = self.headers()?;
        let body = serde_json::json!({ "query": query }).to_string();
        ctx.http
            .send_text(
                PLATFORM,
                |client| client.post(&url).headers(headers.clone()).body(body.clone()),
                |a| self.classify(a),
                |text| {
                    serde_json::from_str::<Vec<RawBatch<'_>>>(text)
                        .is_ok_and(|batches| batches.iter().all(|b| b.error.is_none()))
                },
            )
            .await
    }

    fn sunset(&self, message: String) -> SourceError {
        SourceError::SunsetVersion {
            platform: PLATFORM,
            version: self.settings.api_version.clone(),
            default: crate::kind(PLATFORM).default_api_version.into(),
            message,
        }
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        let header_delay = answer.retry_after();
        let status = answer.status;
        // A Google error body, at the top or (searchStream) as an element of the streamed array.
        let error = match &answer.json {
            Ok(Value::Array(batches)) => batches.iter().find_map(|b| b.get("error")).cloned(),
            Ok(v) => v.get("error").filter(|e| e.is_object()).cloned(),
            Err(_) => None,
        };
        if let Some(error) = error {
            return self.error_verdict(status, &error, header_delay);
        }
        if status == StatusCode::NOT_FOUND {
            // A sunset version is not routed at all: Google's front end answers an HTML 404.
            return Verdict::Fail(self.sunset(format!(
                "HTTP 404 Not Found for googleAds:searchStream under /{}/ (the version is not served)",
                self.settings.api_version
            )));
        }
        if status == StatusCode::NOT_IMPLEMENTED {
            return Verdict::Fail(self.sunset("HTTP 501 Not Implemented".into()));
        }
        match answer.json {
            Ok(Value::Array(batches)) if status.is_success() => Verdict::Done(Value::Array(batches)),
            // A single batch object (not what searchStream sends, but unambiguous).
            Ok(Value::Object(batch)) if status.is_success() => Verdict::Done(Value::Array(vec![Value::Object(batch)])),
            Ok(other) if status.is_success() => Verdict::Fail(SourceError::malformed(
                PLATFORM,
                format!("searchStream answered {} instead of an array of batches", kind_of(&other)),
            )),
            json => Answer { status, headers: answer.headers, json }.standard(PLATFORM),
        }
    }

    fn error_verdict(&self, http: StatusCode, error: &Value, header_delay: Option<Duration>) -> Verdict {
        let e = GoogleError::parse(error, http);
        let label = e.label();
        let message = e.describe();
        if e.has_code("UNSUPPORTED_VERSION") || e.status == "UNIMPLEMENTED" || e.code == 404 {
            return Verdict::Fail(self.sunset(format!("{label}: {message}")));
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
                error: SourceError::Transport {
                    platform: PLATFORM,
                    attempts: 0,
                    message: format!("{label}: {message}"),
                },
            };
        }
        Verdict::Fail(SourceError::Platform { platform: PLATFORM, code: label, message })
    }
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

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A customer id as the URL wants it: digits only (`123-456-7890` → `1234567890`).
fn customer_id(raw: &str) -> Result<String, String> {
    let digits: String = raw.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a Google Ads customer id is 10 digits like 123-456-7890, not {raw:?}"));
    }
    Ok(digits)
}

/// The value at a nested path of a row, e.g. `["adGroupAd", "ad", "id"]`.
fn at<'a>(row: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(row, |v, key| &v[*key])
}

fn text(row: &Value, path: &[&str]) -> Option<String> {
    crate::json::text(at(row, path))
}

/// `metrics.video_views` until v21, `metrics.video_trueview_views` from v22.
fn video_metric(api_version: &str) -> &'static str {
    let major: u32 =
        api_version.trim_start_matches(['v', 'V']).split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major >= 22 {
        "video_trueview_views"
    } else {
        "video_views"
    }
}

/// The GAQL of a daily stream over `window`.
fn daily_query(stream: &str, api_version: &str, window: DateWindow) -> Option<String> {
    let (dimensions, resource) = match stream {
        "ad_daily" => ("campaign.id, ad_group.id, ad_group_ad.ad.id", "ad_group_ad"),
        "campaign_daily" => ("campaign.id, campaign.advertising_channel_type", "campaign"),
        _ => return None,
    };
    Some(format!(
        "SELECT {dimensions}, segments.date, metrics.impressions, metrics.clicks, metrics.cost_micros, \
         metrics.conversions, metrics.conversions_value, metrics.{} FROM {resource} \
         WHERE segments.date BETWEEN '{}' AND '{}'",
        video_metric(api_version),
        window.start(),
        window.end()
    ))
}

fn rows(batches: Vec<Value>) -> impl Iterator<Item = Vec<Value>> {
    batches.into_iter().map(|mut batch| match batch["results"].take() {
        Value::Array(results) => results,
        _ => Vec::new(),
    })
}

#[async_trait]
impl Source for GoogleAds {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        STREAMS
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let query =
            "SELECT customer.id, customer.descriptive_name, customer.currency_code, customer.time_zone FROM customer";
        let batches = self.search(ctx, account_id, query).await?;
        let row = rows(batches).flatten().next().ok_or_else(|| SourceError::Platform {
            platform: PLATFORM,
            code: "not_found".into(),
            message: format!("customer {account_id} returned no row"),
        })?;
        let currency = text(&row, &["customer", "currencyCode"])
            .ok_or_else(|| SourceError::malformed(PLATFORM, "customer without currency_code"))?;
        let timezone = text(&row, &["customer", "timeZone"])
            .ok_or_else(|| SourceError::malformed(PLATFORM, "customer without time_zone"))?;
        let id = customer_id(account_id).map_err(|message| self.settings.config_error(message))?;
        Ok(AccountInfo::new(
            id,
            text(&row, &["customer", "descriptiveName"]),
            None,
            currency,
            timezone,
            row.to_string(),
        ))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let query = match stream.name {
            "campaigns" => "SELECT campaign.id, campaign.name, campaign.status, campaign.advertising_channel_type FROM campaign",
            "ad_groups" => "SELECT ad_group.id, ad_group.name, ad_group.status, campaign.id FROM ad_group",
            "ads" => "SELECT ad_group_ad.ad.id, ad_group_ad.ad.name, ad_group_ad.status, ad_group.id, campaign.id FROM ad_group_ad",
            other => return Err(self.settings.config_error(format!("no entity stream {other}"))),
        };
        let batches = self.search(ctx, &account.id, query).await?;
        for batch in rows(batches) {
            let records: Result<Vec<EntityRecord>, SourceError> =
                batch.into_iter().map(|row| entity_record(stream.name, &account.id, row)).collect();
            emit(out, ctx, records?).await?;
        }
        Ok(())
    }

    async fn read_daily(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        window: DateWindow,
        ctx: &ReadContext,
        out: &Sink<PerformanceRecord>,
    ) -> Result<(), SourceError> {
        let ad_level = match stream.name {
            "ad_daily" => true,
            "campaign_daily" => false,
            other => return Err(self.settings.config_error(format!("no daily stream {other}"))),
        };
        for part in window.split(stream.max_window_days.max(1)) {
            let query = daily_query(stream.name, &self.settings.api_version, part).expect("a daily stream");
            let text = self.search_text(ctx, &account.id, &query).await?;
            let batches: Vec<RawBatch<'_>> = serde_json::from_str(&text)
                .map_err(|e| SourceError::malformed(PLATFORM, format!("unreadable searchStream answer ({e})")))?;
            for batch in batches {
                let records: Result<Vec<PerformanceRecord>, SourceError> = batch
                    .results
                    .unwrap_or_default()
                    .into_iter()
                    .map(|row| performance_record(&account.id, ad_level, row))
                    .collect();
                emit(out, ctx, records?).await?;
            }
        }
        Ok(())
    }
}

fn entity_record(stream: &str, account_id: &str, row: Value) -> Result<EntityRecord, SourceError> {
    let (id_path, name_path, status_path): (&[&str], &[&str], &[&str]) = match stream {
        "campaigns" => (&["campaign", "id"], &["campaign", "name"], &["campaign", "status"]),
        "ad_groups" => (&["adGroup", "id"], &["adGroup", "name"], &["adGroup", "status"]),
        _ => (&["adGroupAd", "ad", "id"], &["adGroupAd", "ad", "name"], &["adGroupAd", "status"]),
    };
    let id = text(&row, id_path)
        .ok_or_else(|| SourceError::malformed(PLATFORM, format!("{stream} row without {}", id_path.join("."))))?;
    Ok(EntityRecord {
        account_id: account_id.to_string(),
        id,
        name: text(&row, name_path),
        status: text(&row, status_path),
        campaign_id: if stream == "campaigns" { None } else { text(&row, &["campaign", "id"]) },
        ad_group_id: if stream == "ads" { text(&row, &["adGroup", "id"]) } else { None },
        currency: None,
        timezone: None,
        payload: row.to_string(),
    })
}

/// One batch of a searchStream answer, its rows kept as borrowed text.
#[derive(Deserialize)]
struct RawBatch<'a> {
    #[serde(borrow, default)]
    results: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

/// The fields of a report row mdp reads (camelCase, nested as Google sends them).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportRow<'a> {
    #[serde(borrow, default)]
    campaign: Option<WithId<'a>>,
    #[serde(borrow, default)]
    ad_group: Option<WithId<'a>>,
    #[serde(borrow, default)]
    ad_group_ad: Option<AdGroupAd<'a>>,
    #[serde(borrow, default)]
    metrics: Option<ReportMetrics<'a>>,
    #[serde(borrow, default)]
    segments: Option<Segments<'a>>,
}

#[derive(Deserialize)]
struct WithId<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct AdGroupAd<'a> {
    #[serde(borrow, default)]
    ad: Option<WithId<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportMetrics<'a> {
    #[serde(borrow, default)]
    impressions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    clicks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cost_micros: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conversions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    conversions_value: Option<&'a RawValue>,
    #[serde(borrow, default)]
    video_views: Option<&'a RawValue>,
    #[serde(borrow, default)]
    video_trueview_views: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Segments<'a> {
    #[serde(borrow, default)]
    date: Option<&'a RawValue>,
}

/// A report row read through [`ReportRow`], with the API's own text of the row as payload. int64
/// fields arrive as strings, doubles as numbers; omitted fields are zero.
fn performance_record(account_id: &str, ad_level: bool, raw: &RawValue) -> Result<PerformanceRecord, SourceError> {
    use crate::json::{decimal, integer, raw_scalar as v, text as text_of};
    let row: ReportRow<'_> =
        serde_json::from_str(raw.get()).map_err(|e| SourceError::malformed(PLATFORM, format!("report row: {e}")))?;
    let id = |w: &Option<WithId<'_>>| w.as_ref().and_then(|w| text_of(&v(w.id)));
    let day = row
        .segments
        .as_ref()
        .and_then(|s| text_of(&v(s.date)))
        .ok_or_else(|| SourceError::malformed(PLATFORM, "report row without segments.date"))?;
    let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|_| SourceError::malformed(PLATFORM, format!("segments.date {day:?} is not a date")))?;
    let campaign_id =
        id(&row.campaign).ok_or_else(|| SourceError::malformed(PLATFORM, "report row without campaign.id"))?;
    let (ad_group_id, ad_id) = if ad_level {
        let ad = row.ad_group_ad.as_ref().and_then(|a| id(&a.ad));
        let ad_id = ad.ok_or_else(|| SourceError::malformed(PLATFORM, "ad report row without ad_group_ad.ad.id"))?;
        (id(&row.ad_group), Some(ad_id))
    } else {
        (None, None)
    };
    let none = ReportMetrics {
        impressions: None,
        clicks: None,
        cost_micros: None,
        conversions: None,
        conversions_value: None,
        video_views: None,
        video_trueview_views: None,
    };
    let m = row.metrics.as_ref().unwrap_or(&none);
    // `metrics.video_views` until v21, `metrics.video_trueview_views` from v22.
    let video = v(m.video_trueview_views.or(m.video_views));
    Ok(PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: Some(campaign_id),
        ad_group_id,
        ad_id,
        impressions: integer(PLATFORM, "metrics.impressions", &v(m.impressions))?,
        clicks: integer(PLATFORM, "metrics.clicks", &v(m.clicks))?,
        spend: Decimal::new(integer(PLATFORM, "metrics.cost_micros", &v(m.cost_micros))?, 6),
        conversions: decimal(PLATFORM, "metrics.conversions", &v(m.conversions))?,
        conversion_value: decimal(PLATFORM, "metrics.conversions_value", &v(m.conversions_value))?,
        video_views: Some(integer(PLATFORM, "metrics.video_views", &video)?),
        likes: None,
        comments: None,
        shares: None,
        payload: raw.get().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(row: Value) -> Box<RawValue> {
        RawValue::from_string(row.to_string()).unwrap()
    }
    use serde_json::json;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn connector() -> GoogleAds {
        let settings = SourceSettings {
            name: "google".into(),
            platform: PLATFORM,
            base_url: "http://localhost".into(),
            api_version: "v21".into(),
            accounts: vec!["123-456-7890".into()],
            credentials: [("access_token".to_string(), crate::Credential::new("secret-token"))].into_iter().collect(),
            options: json!({"login_customer_id": "111-222-3333"}),
        };
        GoogleAds::new(settings).unwrap()
    }

    fn classify(status: u16, body: &str, headers: &[(&'static str, &str)]) -> Verdict {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        let json = serde_json::from_str::<Value>(body).map_err(|e| e.to_string());
        connector().classify(Answer { status: StatusCode::from_u16(status).unwrap(), headers: &map, json })
    }

    #[test]
    fn ad_rows_parse_string_int64_exact_doubles_and_micros() {
        let row = json!({
            "campaign": {"resourceName": "customers/1/campaigns/2", "id": "2"},
            "adGroup": {"resourceName": "customers/1/adGroups/3", "id": "3"},
            "adGroupAd": {"resourceName": "customers/1/adGroupAds/3~4", "ad": {"resourceName": "customers/1/ads/4", "id": "4"}},
            "metrics": {"impressions": "100", "clicks": "5", "costMicros": "1230000", "conversions": 1.5, "conversionsValue": 45.67, "videoViews": "30"},
            "segments": {"date": "2026-06-01"}
        });
        let r = performance_record("1", true, &raw(row)).unwrap();
        assert_eq!(r.date, NaiveDate::from_ymd_opt(2026, 6, 1));
        assert_eq!((r.impressions, r.clicks), (100, 5));
        assert_eq!(r.spend, dec("1.23"));
        assert_eq!(r.conversions, dec("1.5"));
        assert_eq!(r.conversion_value, dec("45.67"));
        assert_eq!(
            (r.campaign_id.as_deref(), r.ad_group_id.as_deref(), r.ad_id.as_deref()),
            (Some("2"), Some("3"), Some("4"))
        );
        assert_eq!((r.video_views, r.likes), (Some(30), None));
    }

    #[test]
    fn omitted_zero_metrics_read_as_zero() {
        let row = json!({"campaign": {"id": "9"}, "metrics": {"impressions": "250", "conversions": 2.0}, "segments": {"date": "2026-06-02"}});
        let r = performance_record("1", false, &raw(row)).unwrap();
        assert_eq!((r.impressions, r.clicks, r.spend), (250, 0, Decimal::ZERO));
        assert_eq!(r.conversions, dec("2"));
        assert_eq!(r.conversion_value, Decimal::ZERO);
        assert_eq!((r.ad_group_id, r.ad_id, r.video_views), (None, None, Some(0)));
    }

    #[test]
    fn doubles_never_pick_up_float_noise() {
        let row = json!({"campaign": {"id": "9"}, "metrics": {"conversions": 0.1, "conversionsValue": 1e-7}, "segments": {"date": "2026-06-02"}});
        let r = performance_record("1", false, &raw(row)).unwrap();
        assert_eq!(r.conversions, dec("0.1"));
        assert_eq!(r.conversion_value, dec("0.0000001"));
    }

    #[test]
    fn a_bad_metric_is_reported_not_zeroed() {
        let row =
            json!({"campaign": {"id": "9"}, "metrics": {"costMicros": "12.5"}, "segments": {"date": "2026-06-02"}});
        assert!(matches!(performance_record("1", false, &raw(row)), Err(SourceError::Malformed { .. })));
    }

    #[test]
    fn entities_read_nested_ids_and_parents() {
        let row = json!({"adGroupAd": {"ad": {"id": "4", "name": "Ad"}, "status": "REMOVED"}, "adGroup": {"id": "3"}, "campaign": {"id": "2"}});
        let e = entity_record("ads", "1", row).unwrap();
        assert_eq!((e.id.as_str(), e.status.as_deref()), ("4", Some("REMOVED")));
        assert_eq!((e.campaign_id.as_deref(), e.ad_group_id.as_deref()), (Some("2"), Some("3")));
    }

    #[test]
    fn queries_follow_the_version_and_window() {
        let window = DateWindow::new(
            NaiveDate::from_ymd_opt(2026, 6, 1).unwrap(),
            NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(),
        )
        .unwrap();
        let q = daily_query("ad_daily", "v21", window).unwrap();
        assert!(q.contains("FROM ad_group_ad WHERE segments.date BETWEEN '2026-06-01' AND '2026-06-30'"), "{q}");
        assert!(q.contains("metrics.video_views"));
        assert!(daily_query("campaign_daily", "v22", window)
            .unwrap()
            .contains("metrics.video_trueview_views FROM campaign"));
        assert!(!q.contains("status"), "performance is never filtered by status");
    }

    #[test]
    fn customer_ids_lose_their_dashes() {
        assert_eq!(customer_id("123-456-7890").unwrap(), "1234567890");
        assert!(customer_id("act_123").is_err());
        assert_eq!(connector().login_customer_id.as_deref(), Some("1112223333"));
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
    fn a_sunset_version_is_said() {
        let html = "<!DOCTYPE html><title>Error 404 (Not Found)!!1</title>";
        assert!(matches!(classify(404, html, &[]), Verdict::Fail(SourceError::SunsetVersion { .. })));
        let unsupported = r#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"bad",
            "details":[{"errors":[{"errorCode":{"requestError":"UNSUPPORTED_VERSION"},"message":"Version v16 is deprecated."}]}]}}"#;
        assert!(matches!(classify(400, unsupported, &[]), Verdict::Fail(SourceError::SunsetVersion { .. })));
        assert!(matches!(classify(200, "[]", &[]), Verdict::Done(Value::Array(_))));
    }

    #[test]
    fn headers_are_sensitive_and_developer_token_is_optional() {
        let c = connector();
        let headers = c.headers().unwrap();
        assert!(headers[AUTHORIZATION].is_sensitive());
        assert!(!headers.contains_key("developer-token"), "not configured, not sent");
        assert_eq!(headers["login-customer-id"], "1112223333");
        assert!(!format!("{c:?}").contains("secret-token"));
    }
}
