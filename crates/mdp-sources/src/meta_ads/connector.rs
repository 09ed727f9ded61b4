//! The Meta Marketing API connector: the ad account node (`act_<id>`), its `campaigns`, `adsets` and
//! `ads` edges, and synchronous `insights` at `level=ad` with `time_increment=1` (one row per ad and day).
//!
//! Traps handled:
//! - the token goes in `Authorization: Bearer` (marked sensitive), never in the URL; paging follows
//!   `paging.cursors.after` on our own URL rather than `paging.next` (which can carry the token and
//!   points at Meta's host, not a configured proxy or sandbox);
//! - accounts may be configured as `123` or `act_123`; the path uses `act_123`, records use `123`;
//! - errors come as `{"error":{code, error_subcode, message}}`, mostly on HTTP 400: 190/102/104 are
//!   auth; 4, 17, 32, 613 and 80000–80014 are rate limits (retried after
//!   `estimated_time_to_regain_access` from `X-Business-Use-Case-Usage` when given, else backoff);
//!   1 and 2 (or `is_transient`) are retried; 2635 is a deprecated API version;
//!   1 "Please reduce the amount of data" splits the date range in half and tries again;
//! - `level=ad` insights of an account leave out deleted and archived ads unless filtered on
//!   `ad.effective_status`, so every status is requested (removed ads keep their history); the entity
//!   edges likewise get `effective_status` with every status;
//! - numbers are strings; rows without delivery are absent;
//! - conversions and their value come from the `actions` / `action_values` arrays, summing only the
//!   action types configured as conversions (`options.conversion_action_types`, Fivetran's defaults),
//!   so overlapping types Meta reports side by side (`purchase`, `omni_purchase`,
//!   `offsite_conversion.fb_pixel_purchase`) are not counted twice unless configured so;
//! - `clicks` is Meta's all-clicks count (like the other platforms' clicks); `inline_link_clicks`
//!   (Fivetran's choice) stays in the payload;
//! - an expired or invalid `after` cursor (code 2642) restarts that window part's paging from the first
//!   page, once; each part's records are held until it is complete, so a restart never duplicates rows.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use mdp_core::{DateWindow, Platform};
use reqwest::header::{HeaderMap, AUTHORIZATION};
use rust_decimal::Decimal;
use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::error::SourceError;
use crate::http::{Answer, Verdict};
use crate::record::{EntityRecord, PerformanceRecord};
use crate::source::{
    emit, AccountInfo, ReadContext, Sink, Source, SourceSettings, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
};

const PLATFORM: Platform = Platform::MetaAds;
/// Rows per page (`limit`); `options.page_size` lowers it (Meta suggests smaller pages on timeouts).
const MAX_PAGE_SIZE: u64 = 500;

/// Daily insights; window parts stay within 10 days: large daily ranges time out or are refused, and
/// a part's records are held until its paging completes.
pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: 10,
    description: "ad × day: spend, impressions, clicks, conversions and value (configured action types), video views, reactions, comments, shares",
};

pub(crate) const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY];

/// The action types counted as conversions when `options.conversion_action_types` is not set
/// (Fivetran's defaults).
pub const DEFAULT_CONVERSION_ACTION_TYPES: &[&str] = &[
    "onsite_conversion.purchase",
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_purchase",
    "offsite_conversion.fb_pixel_lead",
    "offsite_conversion.fb_pixel_custom",
];

const INSIGHTS_FIELDS: &str = "account_id,account_currency,campaign_id,adset_id,ad_id,date_start,date_stop,impressions,clicks,inline_link_clicks,spend,actions,action_values,inline_post_engagement";

/// Every `effective_status`, so deleted and archived objects are read too.
const ALL_EFFECTIVE_STATUSES: &[&str] = &[
    "ACTIVE",
    "PAUSED",
    "DELETED",
    "PENDING_REVIEW",
    "DISAPPROVED",
    "PREAPPROVED",
    "PENDING_BILLING_INFO",
    "CAMPAIGN_PAUSED",
    "ARCHIVED",
    "ADSET_PAUSED",
    "IN_PROCESS",
    "WITH_ISSUES",
];

/// Engagement action types mapped to the standard columns.
const VIDEO_VIEW: &str = "video_view";
const LIKE: &str = "post_reaction";
const COMMENT: &str = "comment";
const SHARE: &str = "post";

#[derive(Debug)]
pub struct MetaAds {
    settings: SourceSettings,
    conversion_types: Vec<String>,
    page_size: u64,
}

/// `123` or `act_123` → `123`; `None` when it is not an ad account id.
pub fn normalize_account_id(id: &str) -> Option<String> {
    let id = id.trim();
    let digits = id.strip_prefix("act_").unwrap_or(id);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_string())
}

impl MetaAds {
    pub fn new(settings: SourceSettings) -> Result<MetaAds, SourceError> {
        settings.credential("access_token")?;
        let config = |message: String| settings.config_error(message);
        for account in &settings.accounts {
            if normalize_account_id(account).is_none() {
                return Err(config(format!(
                    "account `{account}` is not a Meta ad account id (digits, optionally prefixed with act_)"
                )));
            }
        }
        let conversion_types = match settings.options.get("conversion_action_types") {
            None | Some(Value::Null) => DEFAULT_CONVERSION_ACTION_TYPES.iter().map(|t| t.to_string()).collect(),
            Some(Value::Array(items)) => {
                let mut types: Vec<String> = Vec::new();
                for item in items {
                    let t = item.as_str().map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
                        config(format!("options.conversion_action_types: {item} is not an action type name"))
                    })?;
                    if !types.iter().any(|known| known == t) {
                        types.push(t.to_string());
                    }
                }
                if types.is_empty() {
                    return Err(config("options.conversion_action_types is empty: list the action types that count as conversions, or leave it out for the defaults".into()));
                }
                types
            }
            Some(other) => {
                return Err(config(format!(
                    "options.conversion_action_types must be a list of action types, got {other}"
                )))
            }
        };
        let page_size = match settings.options.get("page_size") {
            None | Some(Value::Null) => MAX_PAGE_SIZE,
            Some(v) => v.as_u64().filter(|n| (1..=MAX_PAGE_SIZE).contains(n)).ok_or_else(|| {
                config(format!("options.page_size must be a number from 1 to {MAX_PAGE_SIZE}, got {v}"))
            })?,
        };
        Ok(MetaAds { settings, conversion_types, page_size })
    }

    /// The action types this source counts as conversions.
    pub fn conversion_action_types(&self) -> &[String] {
        &self.conversion_types
    }

    fn node(&self, account_id: &str) -> Result<String, SourceError> {
        normalize_account_id(account_id)
            .map(|id| format!("act_{id}"))
            .ok_or_else(|| self.settings.config_error(format!("account `{account_id}` is not a Meta ad account id")))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}/{path}", self.settings.base(), self.settings.api_version)
    }

    async fn get(&self, ctx: &ReadContext, path: &str, query: &[(&str, String)]) -> Result<Value, SourceError> {
        let token = self.settings.credential("access_token")?;
        let header =
            crate::json::sensitive_header(&self.settings.name, "access_token", &format!("Bearer {}", token.expose()))?;
        let url = self.url(path);
        ctx.http
            .send(
                PLATFORM,
                |client| client.get(&url).header(AUTHORIZATION, header.clone()).query(query),
                |a| self.classify(a),
            )
            .await
    }

    /// One page of an edge, as text: a page with a `data` array and no `error` is not parsed into a
    /// `Value` tree but read with borrowed, typed structs (see [`RawPage`]).
    async fn get_page(&self, ctx: &ReadContext, path: &str, query: &[(&str, String)]) -> Result<String, SourceError> {
        let token = self.settings.credential("access_token")?;
        let header =
            crate::json::sensitive_header(&self.settings.name, "access_token", &format!("Bearer {}", token.expose()))?;
        let url = self.url(path);
        ctx.http
            .send_text(
                PLATFORM,
                |client| client.get(&url).header(AUTHORIZATION, header.clone()).query(query),
                |a| self.classify(a),
                |text| serde_json::from_str::<RawPage<'_>>(text).is_ok_and(|p| p.error.is_none() && p.data.is_some()),
            )
            .await
    }

    fn classify(&self, answer: Answer<'_>) -> Verdict {
        if let Ok(body) = &answer.json {
            if body.get("error").is_some_and(Value::is_object) {
                return classify_error(
                    &self.settings.api_version,
                    answer.status,
                    answer.headers,
                    answer.retry_after(),
                    &body["error"],
                );
            }
        }
        answer.standard(PLATFORM)
    }

    /// Every item of a cursor-paged edge, each converted as its page arrives (records with compact
    /// payloads take a fraction of a page's parsed JSON) and held until the paging is complete. An
    /// expired or invalid cursor restarts the paging from the first page, once (the items read before
    /// it are dropped, so nothing is duplicated).
    async fn all_pages<T>(
        &self,
        ctx: &ReadContext,
        path: &str,
        query: &[(&str, String)],
        convert: impl Fn(&RawValue) -> Result<T, SourceError>,
    ) -> Result<Vec<T>, SourceError> {
        let mut restarted = false;
        loop {
            match self.pages(ctx, path, query, &convert).await {
                Err(error) if is_invalid_cursor(&error) && !restarted => {
                    tracing::info!(platform = %PLATFORM, %path, "the page cursor expired; reading from the first page again");
                    restarted = true;
                }
                other => return other,
            }
        }
    }

    async fn pages<T>(
        &self,
        ctx: &ReadContext,
        path: &str,
        query: &[(&str, String)],
        convert: &impl Fn(&RawValue) -> Result<T, SourceError>,
    ) -> Result<Vec<T>, SourceError> {
        let mut items = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = query.to_vec();
            q.push(("limit", self.page_size.to_string()));
            if let Some(cursor) = &after {
                q.push(("after", cursor.clone()));
            }
            let text = self.get_page(ctx, path, &q).await?;
            let page: RawPage<'_> = serde_json::from_str(&text)
                .map_err(|e| SourceError::malformed(PLATFORM, format!("{path}: unreadable page ({e})")))?;
            let Some(data) = page.data else {
                return Err(SourceError::malformed(PLATFORM, format!("{path}: the answer has no data array")));
            };
            let empty = data.is_empty();
            items.reserve(data.len());
            for item in data {
                items.push(convert(item)?);
            }
            let paging = page.paging.unwrap_or_default();
            let next_cursor = paging.cursors.and_then(|c| c.after);
            // Paging ends when `next` is absent; an empty page or a cursor that does not move ends it too.
            if paging.next.is_none() || empty || next_cursor.is_none() || next_cursor == after {
                return Ok(items);
            }
            after = next_cursor;
        }
    }

    fn insights_query(&self, part: DateWindow) -> Vec<(&'static str, String)> {
        let filtering = json!([{"field": "ad.effective_status", "operator": "IN", "value": ALL_EFFECTIVE_STATUSES}]);
        vec![
            ("level", "ad".to_string()),
            ("fields", INSIGHTS_FIELDS.to_string()),
            ("time_range", json!({"since": part.start().to_string(), "until": part.end().to_string()}).to_string()),
            ("time_increment", "1".to_string()),
            ("filtering", filtering.to_string()),
            ("use_unified_attribution_setting", "true".to_string()),
        ]
    }
}

/// Graph API error → verdict.
fn classify_error(
    version: &str,
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
        2635 => Verdict::Fail(SourceError::SunsetVersion {
            platform: PLATFORM,
            version: version.to_string(),
            default: crate::kind(PLATFORM).default_api_version.into(),
            message,
        }),
        _ if text.contains("deprecated version") => Verdict::Fail(SourceError::SunsetVersion {
            platform: PLATFORM,
            version: version.to_string(),
            default: crate::kind(PLATFORM).default_api_version.into(),
            message,
        }),
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
fn is_too_much_data(error: &SourceError) -> bool {
    matches!(error, SourceError::Platform { code, message, .. } if (code == "1" || code.starts_with("1/")) && is_too_much_data_message(message))
}

/// "(#2642) Invalid cursors values": the `after` cursor expired or is not valid.
fn is_invalid_cursor(error: &SourceError) -> bool {
    matches!(error, SourceError::Platform { code, .. } if code == "2642" || code.starts_with("2642/"))
}

fn text(v: &Value, key: &str) -> Option<String> {
    crate::json::text(&v[key])
}

fn parse_decimal(value: &Value, what: &str) -> Result<Decimal, SourceError> {
    crate::json::decimal(PLATFORM, what, value)
}

fn to_integer(d: Decimal, what: &str) -> Result<i64, SourceError> {
    crate::json::whole_number(PLATFORM, what, d)
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

/// The fields of an insights row mdp reads; every other field stays in the payload.
#[derive(Deserialize)]
struct InsightsRow<'a> {
    #[serde(borrow, default)]
    date_start: Option<&'a RawValue>,
    #[serde(borrow, default)]
    date_stop: Option<&'a RawValue>,
    #[serde(borrow, default)]
    campaign_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    adset_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    ad_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    impressions: Option<&'a RawValue>,
    #[serde(borrow, default)]
    clicks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    spend: Option<&'a RawValue>,
    #[serde(borrow, default)]
    actions: Option<Vec<RawAction<'a>>>,
    #[serde(borrow, default)]
    action_values: Option<Vec<RawAction<'a>>>,
}

#[derive(Deserialize)]
struct RawAction<'a> {
    #[serde(borrow, default)]
    action_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
}

fn sum_raw_actions(
    list: Option<&[RawAction<'_>]>,
    name: &str,
    types: &[impl AsRef<str>],
) -> Result<Decimal, SourceError> {
    let mut total = Decimal::ZERO;
    for action in list.unwrap_or_default() {
        let Some(action_type) = action.action_type.as_deref() else { continue };
        if types.iter().any(|t| t.as_ref() == action_type) {
            total += parse_decimal(&crate::json::raw_scalar(action.value), &format!("{name}[{action_type}]"))?;
        }
    }
    Ok(total)
}

/// An insights row read through [`InsightsRow`]; the payload is the API's own text of the row.
/// Conversions and their value are the sums of the configured action types (each entry counts once,
/// so overlapping types only add up if both are configured).
fn performance_record(
    account_id: &str,
    raw: &RawValue,
    conversion_types: &[String],
) -> Result<PerformanceRecord, SourceError> {
    let row: InsightsRow<'_> =
        serde_json::from_str(raw.get()).map_err(|e| SourceError::malformed(PLATFORM, format!("insights row: {e}")))?;
    let day = crate::json::text(&crate::json::raw_scalar(row.date_start))
        .ok_or_else(|| SourceError::malformed(PLATFORM, "insights row without date_start"))?;
    let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
        .map_err(|_| SourceError::malformed(PLATFORM, format!("date_start {day:?} is not a date")))?;
    if let Some(stop) = crate::json::text(&crate::json::raw_scalar(row.date_stop)) {
        if stop != day {
            return Err(SourceError::malformed(
                PLATFORM,
                format!("a daily row spans {day}..{stop} (time_increment=1 was not applied)"),
            ));
        }
    }
    let actions = row.actions.as_deref();
    let count = |action_type: &str| to_integer(sum_raw_actions(actions, "actions", &[action_type])?, action_type);
    Ok(PerformanceRecord {
        date: Some(date),
        account_id: account_id.to_string(),
        campaign_id: crate::json::text(&crate::json::raw_scalar(row.campaign_id)),
        ad_group_id: crate::json::text(&crate::json::raw_scalar(row.adset_id)),
        ad_id: crate::json::text(&crate::json::raw_scalar(row.ad_id)),
        impressions: crate::json::integer(PLATFORM, "impressions", &crate::json::raw_scalar(row.impressions))?,
        clicks: crate::json::integer(PLATFORM, "clicks", &crate::json::raw_scalar(row.clicks))?,
        spend: parse_decimal(&crate::json::raw_scalar(row.spend), "spend")?,
        conversions: sum_raw_actions(actions, "actions", conversion_types)?,
        conversion_value: sum_raw_actions(row.action_values.as_deref(), "action_values", conversion_types)?,
        video_views: Some(count(VIDEO_VIEW)?),
        likes: Some(count(LIKE)?),
        comments: Some(count(COMMENT)?),
        shares: Some(count(SHARE)?),
        payload: raw.get().to_string(),
    })
}

/// `account_status` numbers as Meta documents them.
fn account_status_name(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "ACTIVE",
        2 => "DISABLED",
        3 => "UNSETTLED",
        7 => "PENDING_RISK_REVIEW",
        8 => "PENDING_SETTLEMENT",
        9 => "IN_GRACE_PERIOD",
        100 => "PENDING_CLOSURE",
        101 => "CLOSED",
        201 => "ANY_ACTIVE",
        202 => "ANY_CLOSED",
        _ => return None,
    })
}

#[async_trait]
impl Source for MetaAds {
    fn settings(&self) -> &SourceSettings {
        &self.settings
    }

    fn streams(&self) -> &'static [StreamSpec] {
        STREAMS
    }

    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError> {
        let node = self.node(account_id)?;
        let id = node.trim_start_matches("act_").to_string();
        let fields = "id,account_id,name,currency,timezone_name,account_status".to_string();
        let info = self.get(ctx, &node, &[("fields", fields)]).await?;
        let currency =
            text(&info, "currency").ok_or_else(|| SourceError::malformed(PLATFORM, "ad account without currency"))?;
        let timezone = text(&info, "timezone_name")
            .ok_or_else(|| SourceError::malformed(PLATFORM, "ad account without timezone_name"))?;
        let status = info["account_status"]
            .as_i64()
            .map(|c| account_status_name(c).map_or_else(|| c.to_string(), str::to_string));
        Ok(AccountInfo::new(id, text(&info, "name"), status, currency, timezone, info.to_string()))
    }

    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError> {
        let (edge, fields) = match stream.name {
            "campaigns" => ("campaigns", "id,name,status,effective_status,configured_status,objective,created_time"),
            "ad_groups" => ("adsets", "id,name,status,effective_status,campaign_id"),
            "ads" => ("ads", "id,name,status,effective_status,campaign_id,adset_id"),
            other => return Err(self.settings.config_error(format!("no entity stream {other}"))),
        };
        let path = format!("{}/{edge}", self.node(&account.id)?);
        let query = [
            ("fields", fields.to_string()),
            // Edges leave out archived and deleted objects unless asked for them.
            ("effective_status", serde_json::to_string(ALL_EFFECTIVE_STATUSES).expect("strings serialize")),
        ];
        let records = self
            .all_pages(ctx, &path, &query, |raw| {
                let item: Value = serde_json::from_str(raw.get())
                    .map_err(|e| SourceError::malformed(PLATFORM, format!("{edge} item: {e}")))?;
                Ok(EntityRecord {
                    account_id: account.id.clone(),
                    id: text(&item, "id")
                        .ok_or_else(|| SourceError::malformed(PLATFORM, format!("{edge} item without id")))?,
                    name: text(&item, "name"),
                    // The object's own status (ACTIVE/PAUSED/DELETED/ARCHIVED); effective_status stays in the payload.
                    status: text(&item, "status").or_else(|| text(&item, "effective_status")),
                    campaign_id: if edge == "campaigns" { None } else { text(&item, "campaign_id") },
                    ad_group_id: if edge == "ads" { text(&item, "adset_id") } else { None },
                    currency: None,
                    timezone: None,
                    payload: raw.get().to_string(),
                })
            })
            .await?;
        emit(out, ctx, records).await?;
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
        if stream.name != AD_DAILY.name {
            return Err(self.settings.config_error(format!("no daily stream {}", stream.name)));
        }
        let path = format!("{}/insights", self.node(&account.id)?);
        let mut parts: VecDeque<DateWindow> = window.split(AD_DAILY.max_window_days).into();
        while let Some(part) = parts.pop_front() {
            let convert = |raw: &RawValue| performance_record(&account.id, raw, &self.conversion_types);
            let records = match self.all_pages(ctx, &path, &self.insights_query(part), convert).await {
                Ok(records) => records,
                Err(error) if is_too_much_data(&error) && part.days() > 1 => {
                    // Meta could not compute this much at once: read the two halves instead.
                    tracing::info!(platform = %PLATFORM, %part, "Meta asked for less data; splitting the date range");
                    for half in part.split(part.days().div_ceil(2)).into_iter().rev() {
                        parts.push_front(half);
                    }
                    continue;
                }
                Err(error) => return Err(error),
            };
            emit(out, ctx, records).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use reqwest::header::HeaderValue;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::Days;
    use mdp_sandbox::{Fault, FaultKind, Sandbox, Scale, World};

    use super::*;

    fn raw(row: Value) -> Box<RawValue> {
        RawValue::from_string(row.to_string()).unwrap()
    }
    use crate::http::{HttpDriver, RetryPolicy};
    use crate::Credential;

    fn row() -> Value {
        json!({
            "account_id": "1", "campaign_id": "2", "adset_id": "3", "ad_id": "4",
            "date_start": "2026-06-01", "date_stop": "2026-06-01",
            "impressions": "1000", "clicks": "10", "inline_link_clicks": "9", "spend": "12.34",
            "actions": [
                {"action_type": "link_click", "value": "9"},
                {"action_type": "post_reaction", "value": "3"},
                {"action_type": "comment", "value": "1"},
                {"action_type": "post", "value": "2"},
                {"action_type": "video_view", "value": "300"},
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "2"},
                {"action_type": "purchase", "value": "2"},
                {"action_type": "omni_purchase", "value": "2"},
                {"action_type": "offsite_conversion.fb_pixel_lead", "value": "1", "7d_click": "1"}
            ],
            "action_values": [
                {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "90.5"},
                {"action_type": "purchase", "value": "90.5"},
                {"action_type": "omni_purchase", "value": "90.5"}
            ]
        })
    }

    fn defaults() -> Vec<String> {
        DEFAULT_CONVERSION_ACTION_TYPES.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn conversions_sum_only_the_configured_action_types() {
        let r = performance_record("1", &raw(row()), &defaults()).unwrap();
        assert_eq!(
            r.conversions,
            Decimal::from(3),
            "pixel purchase + pixel lead, not purchase/omni_purchase/link_click"
        );
        assert_eq!(r.conversion_value, Decimal::from_str("90.5").unwrap());
        assert_eq!((r.impressions, r.clicks), (1000, 10), "clicks are all clicks, not inline_link_clicks");
        assert_eq!(r.spend, Decimal::from_str("12.34").unwrap());
        assert_eq!((r.video_views, r.likes, r.comments, r.shares), (Some(300), Some(3), Some(1), Some(2)));
        assert_eq!((r.ad_group_id.as_deref(), r.ad_id.as_deref()), (Some("3"), Some("4")));

        let omni = vec!["omni_purchase".to_string()];
        let r = performance_record("1", &raw(row()), &omni).unwrap();
        assert_eq!((r.conversions, r.conversion_value), (Decimal::from(2), Decimal::from_str("90.5").unwrap()));

        let mut bare = row();
        bare.as_object_mut().unwrap().remove("actions");
        bare.as_object_mut().unwrap().remove("action_values");
        let r = performance_record("1", &raw(bare), &defaults()).unwrap();
        assert_eq!((r.conversions, r.video_views), (Decimal::ZERO, Some(0)), "absent arrays mean none");
    }

    #[test]
    fn malformed_rows_are_reported_not_zeroed() {
        let mut bad = row();
        bad["spend"] = json!("abc");
        assert!(matches!(performance_record("1", &raw(bad), &defaults()), Err(SourceError::Malformed { .. })));
        let mut span = row();
        span["date_stop"] = json!("2026-06-30");
        assert!(matches!(performance_record("1", &raw(span), &defaults()), Err(SourceError::Malformed { .. })));
    }

    fn settings(options: Value) -> SourceSettings {
        SourceSettings {
            name: "meta".into(),
            platform: PLATFORM,
            base_url: "https://graph.facebook.com".into(),
            api_version: "v23.0".into(),
            accounts: vec!["act_123".into(), "456".into()],
            credentials: BTreeMap::from([("access_token".to_string(), Credential::new("secret-token"))]),
            options,
        }
    }

    #[test]
    fn options_and_account_ids_are_checked() {
        let source = MetaAds::new(settings(json!({}))).unwrap();
        assert_eq!(source.conversion_action_types(), defaults().as_slice());
        assert_eq!(source.node("act_123").unwrap(), "act_123");
        assert_eq!(source.node("456").unwrap(), "act_456");
        let custom =
            MetaAds::new(settings(json!({"conversion_action_types": ["purchase", "purchase", "lead"]}))).unwrap();
        assert_eq!(custom.conversion_action_types(), ["purchase", "lead"], "deduplicated");
        for bad in [
            json!({"conversion_action_types": "purchase"}),
            json!({"conversion_action_types": []}),
            json!({"page_size": 0}),
        ] {
            assert!(matches!(MetaAds::new(settings(bad)), Err(SourceError::Config { .. })));
        }
        let mut wrong = settings(json!({}));
        wrong.accounts = vec!["acct-1".into()];
        assert!(matches!(MetaAds::new(wrong), Err(SourceError::Config { .. })));
    }

    fn verdict(status: u16, headers: HeaderMap, error: Value) -> Verdict {
        classify_error("v23.0", reqwest::StatusCode::from_u16(status).unwrap(), &headers, None, &error)
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
            Verdict::Fail(SourceError::SunsetVersion { .. })
        ));
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

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    async fn sandboxed(scale: Scale, options: Value) -> (Arc<Sandbox>, MetaAds, ReadContext) {
        let sandbox = Sandbox::new(World::new(42, today(), scale));
        let (addr, _) = mdp_sandbox::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let mut s = settings(options);
        s.base_url = format!("http://{addr}");
        s.accounts = sandbox.world.accounts(PLATFORM).map(|a| format!("act_{}", a.id)).collect();
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
            request_timeout: Duration::from_secs(20),
        };
        (sandbox, MetaAds::new(s).unwrap(), ReadContext { http: HttpDriver::new(policy).unwrap() })
    }

    async fn daily(
        source: &MetaAds,
        account: &AccountInfo,
        window: DateWindow,
        ctx: &ReadContext,
    ) -> Result<Vec<PerformanceRecord>, SourceError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        let result = source.read_daily(&AD_DAILY, account, window, ctx, &tx).await;
        drop(tx);
        let mut rows = Vec::new();
        while let Some(page) = rx.recv().await {
            rows.extend(page);
        }
        result.map(|()| rows)
    }

    fn keys(rows: &[PerformanceRecord]) -> Vec<(NaiveDate, String)> {
        let mut k: Vec<_> = rows.iter().map(|r| (r.date.unwrap(), r.ad_id.clone().unwrap())).collect();
        k.sort();
        k
    }

    #[tokio::test]
    async fn an_expired_cursor_restarts_the_part_once_without_duplicates() {
        let (sandbox, source, ctx) = sandboxed(Scale::default(), json!({"page_size": 25})).await;
        let account = source.account(&source.settings.accounts[0], &ctx).await.unwrap();
        assert!(!account.id.starts_with("act_"), "records carry the numeric id");
        let window = DateWindow::new(today() - Days::new(9), today()).unwrap();
        let clean = daily(&source, &account, window, &ctx).await.unwrap();
        assert!(clean.len() > 50, "several pages");

        sandbox.faults.push(Fault { platform: Some(PLATFORM), kind: FaultKind::ExpiredCursor, count: 1 });
        let rows = daily(&source, &account, window, &ctx).await.unwrap();
        assert!(sandbox.faults.injected().contains(&(PLATFORM, FaultKind::ExpiredCursor)));
        assert_eq!(keys(&rows), keys(&clean), "same rows, none twice");

        sandbox.faults.push(Fault { platform: Some(PLATFORM), kind: FaultKind::ExpiredCursor, count: 2 });
        let error = daily(&source, &account, window, &ctx).await.unwrap_err();
        assert!(is_invalid_cursor(&error), "restarts once only: {error}");
    }

    #[tokio::test]
    async fn oversized_queries_are_split_and_deleted_ads_are_read() {
        let scale = Scale { campaigns_per_account: 10, ad_groups_per_campaign: 10, ads_per_ad_group: 10 };
        let (sandbox, source, ctx) = sandboxed(scale, json!({})).await;
        let account = source.account(&source.settings.accounts[1], &ctx).await.unwrap();
        let window = DateWindow::new(today() - Days::new(29), today()).unwrap();
        let rows = daily(&source, &account, window, &ctx).await.unwrap();
        let truth = sandbox.truth(PLATFORM, &account.id, window.start(), window.end()).unwrap();
        let spend: Decimal = rows.iter().map(|r| r.spend).sum();
        let truth_spend: i64 = truth.iter().map(|(_, m)| m.spend_micros).sum();
        assert_eq!(spend, Decimal::new(truth_spend, 6));
        let conversions: Decimal = rows.iter().map(|r| r.conversions).sum();
        let truth_conversions: i64 = truth.iter().map(|(_, m)| m.conversions_micros).sum();
        assert_eq!(conversions, Decimal::new(truth_conversions, 6), "purchase/omni_purchase not double counted");

        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        source.read_entities(&ADS, &account, &ctx, &tx).await.unwrap();
        drop(tx);
        let mut ads = Vec::new();
        while let Some(page) = rx.recv().await {
            ads.extend(page);
        }
        assert!(ads.iter().any(|a| a.status.as_deref() == Some("DELETED")), "deleted ads are listed");
        assert!(ads.iter().all(|a| a.campaign_id.is_some() && a.ad_group_id.is_some()));
    }
}
