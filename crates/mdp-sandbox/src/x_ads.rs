//! X Ads API v12 (docs.x.com/x-ads-api), written from its public reference, not from mdp's spec of it:
//! - Every request is signed with **OAuth 1.0a** (HMAC-SHA1, RFC 5849) in `Authorization: OAuth …`. The
//!   sandbox checks the signature with its own code: the consumer secret of consumer key `K` is
//!   `K-secret`, the token secret of token `T` is `T-secret` (the sandbox's convention, as its OAuth 2
//!   apps' client secrets are `<client_id>-secret`). A bad or missing signature is HTTP 401
//!   `UNAUTHORIZED_ACCESS`.
//! - `GET /12/accounts/{id}`: `{request, data: {id, name, timezone (IANA), timezone_switch_at,
//!   approval_status, deleted, …}}`: **no currency**. The currency is the funding instruments'
//!   (`GET /12/accounts/{id}/funding_instruments`, `data[].currency`).
//! - Entity lists `GET /12/accounts/{id}/campaigns`, `…/line_items` (ad groups, with `campaign_id`),
//!   `…/promoted_tweets` (ads, with `line_item_id` and `tweet_id`; **no name**): `{request, data,
//!   next_cursor}`, `count` 1..=1000 (default 200) and `cursor`; `next_cursor` is null on the last page.
//!   Deleted entities are listed only with `with_deleted=true`.
//! - Active entities `GET /12/stats/accounts/{id}/active_entities?entity=PROMOTED_TWEET&start_time&
//!   end_time`: the entities with activity in the range (whole hours, at most 90 days), with their
//!   `activity_start_time`, `activity_end_time` and `placements`; not paged.
//! - Stats `GET /12/stats/accounts/{id}?entity=PROMOTED_TWEET&entity_ids=(at most 20)&granularity=DAY&
//!   metric_groups=ENGAGEMENT,BILLING,WEB_CONVERSION&placement=ALL_ON_TWITTER&start_time&end_time`:
//!   `{data_type: stats, time_series_length, data: [{id, id_data: [{segment: null, metrics}]}], request}`.
//!   Each metric is an **array with a value per day** from `start_time`, or `null` when the entity has
//!   no data for it in the whole range. `conversion_purchases` is an object of such arrays (`metric`,
//!   `sale_amount`, `order_quantity`, …). Money (`billed_charge_local_micro`, `sale_amount`) is in
//!   micros of the account's currency.
//! - With DAY granularity, **`start_time` and `end_time` must be midnights of the account's time zone
//!   written with the offset the zone has today, not the offset of the day in question**; otherwise
//!   HTTP 400 `INVALID_TIME_WINDOW`. The range is at most 7 days (and an hour, for DST).
//! - Errors: `{errors: [{code, message, parameter?}], request: {params}}` with the HTTP status. Stats
//!   requests count against 250 per 15 minutes per user: every answer carries `x-rate-limit-limit`,
//!   `x-rate-limit-remaining` and `x-rate-limit-reset` (Unix seconds), and past the limit the answer is
//!   HTTP 429 `TOO_MANY_REQUESTS`, to be retried at the reset, not before. Versions before 11 answer
//!   `INVALID` "Version N is not available".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use chrono::{DateTime, FixedOffset, NaiveDate, Offset, TimeZone, Timelike, Utc};
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind, Refusal};
use crate::world::{Account, Status};
use crate::Sandbox;

pub const NAME: &str = "x_ads";

/// X's platform, as mdp names it (a platform of a connector spec).
pub fn platform() -> Platform {
    Platform::Declared(mdp_core::DeclaredPlatform::intern(NAME))
}

/// The most ids one stats request may name.
pub const MAX_ENTITY_IDS: usize = 20;
/// The longest DAY range of a synchronous stats request, in days (plus an hour for a DST change).
pub const MAX_STATS_DAYS: i64 = 7;
/// Synchronous stats requests one user may send in [`RATE_WINDOW_SECS`].
pub const STATS_PER_WINDOW: u32 = 250;
pub const RATE_WINDOW_SECS: i64 = 15 * 60;
/// How far an OAuth timestamp may be from the server's clock.
const CLOCK_SKEW_SECS: i64 = 300;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/{version}/accounts/{account}", get(ad_account))
        .route("/{version}/accounts/{account}/funding_instruments", get(|s, p, r| list(s, p, r, Level::Funding)))
        .route("/{version}/accounts/{account}/campaigns", get(|s, p, r| list(s, p, r, Level::Campaign)))
        .route("/{version}/accounts/{account}/line_items", get(|s, p, r| list(s, p, r, Level::LineItem)))
        .route("/{version}/accounts/{account}/promoted_tweets", get(|s, p, r| list(s, p, r, Level::PromotedTweet)))
        .route("/{version}/stats/accounts/{account}", get(stats))
        .route("/{version}/stats/accounts/{account}/active_entities", get(active_entities))
}

/// Each user's stats requests in the current 15-minute window: token → (window start, count).
#[derive(Debug, Default)]
pub struct RateLimits {
    users: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimits {
    /// Count one stats request of `token` at `now` (Unix seconds): (remaining, reset), or `Err(reset)`
    /// past the limit.
    fn take(&self, token: &str, now: i64) -> Result<(u32, i64), i64> {
        let mut users = self.users.lock().expect("rate limits lock");
        let (start, count) = users.entry(token.to_string()).or_insert((now, 0));
        if now >= *start + RATE_WINDOW_SECS {
            (*start, *count) = (now, 0);
        }
        let reset = *start + RATE_WINDOW_SECS;
        if *count >= STATS_PER_WINDOW {
            return Err(reset);
        }
        *count += 1;
        Ok((STATS_PER_WINDOW - *count, reset))
    }
}

/// One request as the handlers see it: what the signature covers, and its parameters.
struct Request {
    headers: HeaderMap,
    path: String,
    raw_query: String,
    params: HashMap<String, String>,
}

type Parts = (HeaderMap, Uri, RawQuery);

fn request((headers, uri, RawQuery(raw)): Parts) -> Request {
    let raw_query = raw.unwrap_or_default();
    let params = serde_urlencoded::from_str::<Vec<(String, String)>>(&raw_query).unwrap_or_default();
    Request { headers, path: uri.path().to_string(), raw_query, params: params.into_iter().collect() }
}

fn params_echo(params: &HashMap<String, String>) -> Value {
    let mut echo = serde_json::Map::new();
    let mut names: Vec<&String> = params.keys().collect();
    names.sort();
    for name in names {
        echo.insert(name.clone(), json!(params[name]));
    }
    Value::Object(echo)
}

fn error_with(status: StatusCode, errors: Value, params: &HashMap<String, String>) -> Response {
    let body = json!({ "errors": errors, "request": { "params": params_echo(params) } });
    (status, axum::Json(body)).into_response()
}

fn error(status: StatusCode, code: &str, message: &str, params: &HashMap<String, String>) -> Response {
    error_with(status, json!([{ "code": code, "message": message }]), params)
}

fn invalid(parameter: &str, message: &str, params: &HashMap<String, String>) -> Response {
    let errors = json!([{ "code": "INVALID_PARAMETER", "message": message, "parameter": parameter }]);
    error_with(StatusCode::BAD_REQUEST, errors, params)
}

/// RFC 3986 percent-encoding of OAuth 1.0a: every byte but the unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The fields of an `Authorization: OAuth k="v", …` header, decoded.
fn oauth_fields(header: &str) -> Option<HashMap<String, String>> {
    let rest = header.strip_prefix("OAuth ")?;
    let mut fields = HashMap::new();
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=')?;
        let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
        let decoded: String =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={value}")).ok()?.pop().map(|(_, v)| v)?;
        fields.insert(key.trim().to_string(), decoded);
    }
    Some(fields)
}

/// The HMAC-SHA1 signature of a request (RFC 5849 §3.4): the method, the URL without its query, and
/// every query and `oauth_` parameter but the signature, encoded, sorted and joined.
pub fn signature(
    method: &str,
    url: &str,
    query: &[(String, String)],
    oauth: &HashMap<String, String>,
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .chain(oauth.iter().filter(|(k, _)| *k != "oauth_signature").map(|(k, v)| (encode(k), encode(v))))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let base = format!("{}&{}&{}", method, encode(url), encode(&joined.join("&")));
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}&{}", encode(consumer_secret), encode(token_secret)).as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, base.as_bytes()).as_ref())
}

/// The user (access token) of a correctly signed request; `Err` is the 401 to send.
fn authenticate(request: &Request) -> Result<String, Response> {
    let unauthorized = || {
        error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED_ACCESS",
            "This request is not properly authenticated",
            &request.params,
        )
    };
    let header = request.headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or_else(unauthorized)?;
    let oauth = oauth_fields(header).ok_or_else(unauthorized)?;
    let field = |name: &str| oauth.get(name).filter(|v| !v.is_empty()).cloned();
    let (Some(consumer_key), Some(token), Some(given), Some(timestamp)) = (
        field("oauth_consumer_key"),
        field("oauth_token"),
        field("oauth_signature"),
        field("oauth_timestamp").and_then(|t| t.parse::<i64>().ok()),
    ) else {
        return Err(unauthorized());
    };
    if field("oauth_signature_method").as_deref() != Some("HMAC-SHA1") || field("oauth_nonce").is_none() {
        return Err(unauthorized());
    }
    if (Utc::now().timestamp() - timestamp).abs() > CLOCK_SKEW_SECS {
        return Err(unauthorized());
    }
    let host = request.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let url = format!("http://{}{}", host.to_ascii_lowercase(), request.path);
    let query = serde_urlencoded::from_str::<Vec<(String, String)>>(&request.raw_query).unwrap_or_default();
    let expected =
        signature("GET", &url, &query, &oauth, &format!("{consumer_key}-secret"), &format!("{token}-secret"));
    // Compared in constant time: a signature is a secret's proof.
    let differ = expected.len() != given.len()
        || expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
    if differ {
        return Err(unauthorized());
    }
    Ok(token)
}

/// Checks every request shares: version, signature, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, version: &str, request: &Request) -> Result<(String, Option<FaultKind>), Response> {
    sandbox.count_request();
    let params = &request.params;
    match version.parse::<u32>() {
        Ok(11 | 12) => {}
        Ok(old) if old < 11 => {
            let message = format!("Version {old}.0 is not available.");
            return Err(error(StatusCode::BAD_REQUEST, "INVALID", &message, params));
        }
        _ => return Err(error(StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND", "Sorry, that page does not exist", params)),
    }
    let user = authenticate(request)?;
    let fault = sandbox
        .faults
        .apply(platform(), |refusal| match refusal {
            Refusal::Unauthorized => error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED_ACCESS",
                "This request is not properly authenticated",
                params,
            ),
            Refusal::RateLimit { retry_after_secs } => {
                let reset = Utc::now().timestamp() + retry_after_secs as i64;
                too_many(reset, params)
            }
            Refusal::ServerError => {
                error(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", "Service unavailable", params)
            }
        })
        .await?;
    Ok((user, fault))
}

fn too_many(reset: i64, params: &HashMap<String, String>) -> Response {
    let mut answer = error(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "Rate limit exceeded", params);
    let headers = answer.headers_mut();
    headers.insert("x-rate-limit-limit", STATS_PER_WINDOW.into());
    headers.insert("x-rate-limit-remaining", 0.into());
    headers.insert("x-rate-limit-reset", reset.into());
    answer
}

fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    let text = body.to_string();
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    (StatusCode::OK, [("content-type", "application/json;charset=utf-8")], text).into_response()
}

fn account<'s>(sandbox: &'s Sandbox, id: &str, params: &HashMap<String, String>) -> Result<&'s Account, Response> {
    sandbox
        .world
        .account(platform(), id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("Account {id} was not found"), params))
}

/// What every handler starts from: its request, guarded (version, signature, faults), and its account.
struct Opened<'s> {
    request: Request,
    user: String,
    fault: Option<FaultKind>,
    account: &'s Account,
}

async fn open<'s>(sandbox: &'s Sandbox, version: &str, id: &str, parts: Parts) -> Result<Opened<'s>, Response> {
    let request = request(parts);
    let (user, fault) = guard(sandbox, version, &request).await?;
    let account = account(sandbox, id, &request.params)?;
    Ok(Opened { request, user, fault, account })
}

async fn ad_account(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let Opened { fault, account, .. } = match open(&sandbox, &version, &id, parts).await {
        Ok(opened) => opened,
        Err(answer) => return answer,
    };
    let data = json!({
        "name": account.name, "business_name": null, "timezone": account.timezone,
        "timezone_switch_at": "2025-11-03T08:00:00Z", "id": account.id,
        "created_at": "2025-11-03T17:42:09Z", "updated_at": "2026-02-06T16:51:04Z",
        "industry_type": "RETAIL", "business_id": null, "approval_status": "ACCEPTED", "deleted": false,
    });
    finish(json!({ "request": { "params": { "account_id": account.id } }, "data": data }), fault)
}

#[derive(Clone, Copy)]
enum Level {
    Funding,
    Campaign,
    LineItem,
    PromotedTweet,
}

fn entity_status(status: Status) -> &'static str {
    match status {
        Status::Active => "ACTIVE",
        // A deleted entity keeps its last status, with `deleted: true`.
        Status::Paused | Status::Removed => "PAUSED",
    }
}

/// A promoted tweet's tweet: a 19-digit id derived from the promoted tweet's.
fn tweet_id(promoted_tweet: &str) -> String {
    let h =
        promoted_tweet.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("{}", 1_700_000_000_000_000_000 + h % 99_999_999_999_999_999)
}

/// `count` (1..=1000, default 200) and `cursor` (an offset in the sandbox; opaque to clients).
fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), Response> {
    let count = match params.get("count") {
        None => 200,
        Some(text) => match text.parse::<usize>() {
            Ok(count) if (1..=1000).contains(&count) => count,
            _ => {
                return Err(invalid(
                    "count",
                    &format!("Expected an integer between 1 and 1000, got {text:?} for count"),
                    params,
                ))
            }
        },
    };
    let offset = match params.get("cursor") {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix("c")
            .and_then(|c| usize::from_str_radix(c, 36).ok())
            .ok_or_else(|| invalid("cursor", "Invalid cursor", params))?,
    };
    Ok((offset, count))
}

async fn list(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    parts: Parts,
    level: Level,
) -> Response {
    let Opened { request, fault, account, .. } = match open(&sandbox, &version, &id, parts).await {
        Ok(opened) => opened,
        Err(answer) => return answer,
    };
    let params = &request.params;
    let (offset, count) = match paging(params) {
        Ok(paging) => paging,
        Err(answer) => return answer,
    };
    let with_deleted = params.get("with_deleted").is_some_and(|v| v == "true");
    let funding = format!("{}f", &account.id[..account.id.len().min(4)]);
    let mut items = Vec::new();
    if let Level::Funding = level {
        items.push((
            false,
            json!({
                "id": funding, "account_id": account.id, "type": "CREDIT_CARD", "description": "Visa ending in 0650",
                "currency": account.currency, "entity_status": "ACTIVE", "able_to_fund": true, "deleted": false,
                "start_time": "2025-11-03T17:45:04Z", "end_time": null, "credit_limit_local_micro": null,
                "created_at": "2025-11-03T17:45:04Z", "updated_at": "2026-01-05T00:25:13Z",
            }),
        ));
    }
    for c in &account.campaigns {
        let deleted = c.status == Status::Removed;
        match level {
            Level::Funding => {}
            Level::Campaign => items.push((deleted, json!({
                "id": c.id, "name": c.name, "entity_status": entity_status(c.status), "funding_instrument_id": funding,
                "currency": account.currency, "daily_budget_amount_local_micro": 50_000_000,
                "budget_optimization": "CAMPAIGN", "servable": c.status == Status::Active, "deleted": deleted,
                "created_at": "2025-12-01T10:00:00Z", "updated_at": "2026-01-15T08:30:00Z",
            }))),
            Level::LineItem => {
                for g in &c.ad_groups {
                    items.push((deleted || g.status == Status::Removed, json!({
                        "id": g.id, "name": g.name, "campaign_id": c.id, "entity_status": entity_status(g.status),
                        "placements": ["ALL_ON_TWITTER"], "objective": "WEBSITE_CLICKS", "product_type": "PROMOTED_TWEETS",
                        "currency": account.currency, "bid_strategy": "AUTO", "funding_instrument_id": funding,
                        "deleted": deleted || g.status == Status::Removed,
                        "created_at": "2025-12-01T10:05:00Z", "updated_at": "2026-01-15T08:30:00Z",
                    })));
                }
            }
            Level::PromotedTweet => {
                for g in &c.ad_groups {
                    for ad in &g.ads {
                        let deleted = ad.status == Status::Removed;
                        items.push((deleted, json!({
                            "id": ad.id, "line_item_id": g.id, "tweet_id": tweet_id(&ad.id),
                            "entity_status": entity_status(ad.status), "approval_status": "ACCEPTED", "deleted": deleted,
                            "created_at": "2025-12-01T10:10:00Z", "updated_at": "2026-01-15T08:30:00Z",
                        })));
                    }
                }
            }
        }
    }
    let items: Vec<Value> =
        items.into_iter().filter(|(deleted, _)| with_deleted || !deleted).map(|(_, item)| item).collect();
    let page: Vec<Value> = items.iter().skip(offset).take(count).cloned().collect();
    let next = (offset + count < items.len()).then(|| format!("c{}", radix36(offset + count)));
    finish(json!({ "request": { "params": params_echo(params) }, "next_cursor": next, "data": page }), fault)
}

fn radix36(mut n: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[n % 36]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii digits")
}

/// X's offset rule: the account's UTC offset **now**, used for every day's midnight.
fn offset_now(zone: chrono_tz::Tz, now: DateTime<Utc>) -> FixedOffset {
    zone.offset_from_utc_datetime(&now.naive_utc()).fix()
}

/// A time parameter (ISO 8601 with `Z` or an offset) in whole hours.
fn time(params: &HashMap<String, String>, name: &str) -> Result<DateTime<FixedOffset>, Response> {
    let text = params.get(name).ok_or_else(|| {
        let errors =
            json!([{ "code": "MISSING_PARAMETER", "message": format!("{name} is missing"), "parameter": name }]);
        error_with(StatusCode::BAD_REQUEST, errors, params)
    })?;
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| invalid(name, &format!("Expected time, got {text:?} for {name}"), params))?;
    if (at.minute(), at.second(), at.nanosecond()) != (0, 0, 0) {
        return Err(invalid(name, "Time cannot be fractional hours", params));
    }
    Ok(at)
}

/// The account-local day a DAY bound opens: it must be a midnight written with today's offset.
pub fn day_bound(at: DateTime<FixedOffset>, zone: chrono_tz::Tz, now: DateTime<Utc>) -> Option<NaiveDate> {
    let local = at.with_timezone(&offset_now(zone, now));
    (local.hour() == 0).then(|| local.date_naive())
}

fn time_window(message: &str, params: &HashMap<String, String>) -> Response {
    let errors = json!([{ "code": "INVALID_TIME_WINDOW", "message": message, "parameter": "" }]);
    error_with(StatusCode::BAD_REQUEST, errors, params)
}

async fn active_entities(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let Opened { request, fault, account, .. } = match open(&sandbox, &version, &id, parts).await {
        Ok(opened) => opened,
        Err(answer) => return answer,
    };
    let params = &request.params;
    if params.get("entity").map(String::as_str) != Some("PROMOTED_TWEET") {
        return invalid("entity", "the sandbox serves entity=PROMOTED_TWEET", params);
    }
    let (start, end) = match (time(params, "start_time"), time(params, "end_time")) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    if end <= start || end - start > chrono::Duration::days(90) {
        return time_window("The end_time must be after the start_time and at most 90 days after it", params);
    }
    let zone: chrono_tz::Tz = account.timezone.parse().expect("the world's zones are IANA names");
    let offset = offset_now(zone, Utc::now());
    // The local days the range touches.
    let first = start.with_timezone(&offset).date_naive();
    let last = (end - chrono::Duration::seconds(1)).with_timezone(&offset).date_naive();
    let world = &sandbox.world;
    let version_now = sandbox.version();
    let mut data = Vec::new();
    for unit in world.units(account) {
        let Some(ad) = unit.ad else { continue };
        let active: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter(|d| !world.unit_metrics(account, &unit, *d, version_now).is_zero())
            .collect();
        let (Some(from), Some(to)) = (active.first(), active.last()) else { continue };
        let at = |day: NaiveDate, hour: u32| {
            let local = day.and_hms_opt(hour, 17, 5).expect("a valid time");
            offset
                .from_local_datetime(&local)
                .single()
                .expect("a fixed offset")
                .with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };
        data.push(json!({
            "entity_id": ad.id, "activity_start_time": at(*from, 6), "activity_end_time": at(*to, 21),
            "placements": ["ALL_ON_TWITTER"],
        }));
    }
    finish(json!({ "request": { "params": params_echo(params) }, "data": data }), fault)
}

const METRIC_GROUPS: &[&str] = &["ENGAGEMENT", "BILLING", "WEB_CONVERSION"];

async fn stats(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    parts: Parts,
) -> Response {
    let Opened { request, user, fault, account } = match open(&sandbox, &version, &id, parts).await {
        Ok(opened) => opened,
        Err(answer) => return answer,
    };
    let params = &request.params;
    let (remaining, reset) = match sandbox.x.take(&user, Utc::now().timestamp()) {
        Ok(counted) => counted,
        Err(reset) => return too_many(reset, params),
    };
    let mut answer = stats_answer(&sandbox, account, params, fault);
    let headers = answer.headers_mut();
    headers.insert("x-rate-limit-limit", STATS_PER_WINDOW.into());
    headers.insert("x-rate-limit-remaining", remaining.into());
    headers.insert("x-rate-limit-reset", reset.into());
    answer
}

fn stats_answer(
    sandbox: &Sandbox,
    account: &Account,
    params: &HashMap<String, String>,
    fault: Option<FaultKind>,
) -> Response {
    for (name, expected) in [("entity", "PROMOTED_TWEET"), ("granularity", "DAY")] {
        if params.get(name).map(String::as_str) != Some(expected) {
            return invalid(name, &format!("the sandbox serves {name}={expected}"), params);
        }
    }
    let placement = params.get("placement").map(String::as_str).unwrap_or_default();
    if !["ALL_ON_TWITTER", "PUBLISHER_NETWORK", "SPOTLIGHT", "TREND"].contains(&placement) {
        return invalid("placement", &format!("Expected enum value, got {placement:?} for placement"), params);
    }
    let groups: Vec<&str> = params.get("metric_groups").map(|g| g.split(',').collect()).unwrap_or_default();
    if groups.is_empty() {
        let errors = json!([{ "code": "MISSING_PARAMETER", "message": "metric_groups is missing", "parameter": "metric_groups" }]);
        return error_with(StatusCode::BAD_REQUEST, errors, params);
    }
    let retired = sandbox.retired_field(platform(), groups.iter().copied());
    if let Some(unknown) = groups.iter().find(|g| !METRIC_GROUPS.contains(g) || Some(**g) == retired) {
        return invalid("metric_groups", &format!("Expected enum value, got {unknown:?} for metric_groups"), params);
    }
    let ids: Vec<&str> =
        params.get("entity_ids").map(|i| i.split(',').filter(|i| !i.is_empty()).collect()).unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_ENTITY_IDS {
        return invalid("entity_ids", &format!("Expected 1 to {MAX_ENTITY_IDS} entity_ids, got {}", ids.len()), params);
    }
    let (start, end) = match (time(params, "start_time"), time(params, "end_time")) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let zone: chrono_tz::Tz = account.timezone.parse().expect("the world's zones are IANA names");
    let now = Utc::now();
    let misaligned = json!({ "code": "INVALID_TIME_WINDOW", "message": "Expect time to be midnight in the account's local timezone for day granularity", "parameter": "" });
    let (first, after) = match (day_bound(start, zone, now), day_bound(end, zone, now)) {
        (Some(first), Some(after)) => (first, after),
        (start_ok, end_ok) => {
            let errors: Vec<Value> =
                [start_ok, end_ok].iter().filter(|d| d.is_none()).map(|_| misaligned.clone()).collect();
            return error_with(StatusCode::BAD_REQUEST, Value::Array(errors), params);
        }
    };
    if after <= first {
        return time_window("The end_time must be after the start_time", params);
    }
    if end - start > chrono::Duration::days(MAX_STATS_DAYS) + chrono::Duration::hours(1) {
        return time_window("The end_time can be a maximum of 7.days+1.hours after the start_time", params);
    }
    let days: Vec<NaiveDate> = first.iter_days().take_while(|d| *d < after).collect();
    let world = &sandbox.world;
    let version_now = sandbox.version();
    let mut data = Vec::new();
    for wanted in &ids {
        let Some(unit) = world.units(account).find(|u| u.ad.is_some_and(|ad| ad.id == *wanted)) else {
            return invalid(
                "entity_ids",
                &format!("{wanted} is not a promoted tweet of account {}", account.id),
                params,
            );
        };
        // Only the placement the world's ads deliver on has numbers; another has none.
        let metrics: Vec<_> = days
            .iter()
            .map(|d| {
                if placement == "ALL_ON_TWITTER" {
                    world.unit_metrics(account, &unit, *d, version_now)
                } else {
                    Default::default()
                }
            })
            .collect();
        // An array per metric, or null when the entity has no data for it in the whole range.
        let series = |values: Vec<i64>| if values.iter().all(|v| *v == 0) { Value::Null } else { json!(values) };
        let column = |f: fn(&crate::world::Metrics) -> i64| series(metrics.iter().map(f).collect());
        let mut out = serde_json::Map::new();
        if groups.contains(&"ENGAGEMENT") {
            out.insert("impressions".into(), column(|m| m.impressions));
            out.insert("clicks".into(), column(|m| m.clicks));
            out.insert("url_clicks".into(), column(|m| m.clicks));
            out.insert("engagements".into(), column(|m| m.clicks + m.likes + m.shares + m.comments));
            out.insert("likes".into(), column(|m| m.likes));
            out.insert("retweets".into(), column(|m| m.shares));
            out.insert("replies".into(), column(|m| m.comments));
        }
        if groups.contains(&"BILLING") {
            out.insert("billed_charge_local_micro".into(), column(|m| m.spend_micros));
            out.insert("billed_engagements".into(), column(|m| m.clicks));
        }
        if groups.contains(&"WEB_CONVERSION") {
            let purchases = column(|m| m.conversions_micros / 1_000_000);
            let value = match purchases {
                Value::Null => Value::Null,
                _ => json!({
                    "metric": purchases,
                    "sale_amount": column(|m| m.conversion_value_micros),
                    "order_quantity": purchases,
                    "post_engagement": purchases,
                    "post_view": json!(vec![0; days.len()]),
                    "assisted": json!(vec![0; days.len()]),
                }),
            };
            out.insert("conversion_purchases".into(), value);
            out.insert("conversion_sign_ups".into(), Value::Null);
            out.insert("conversion_site_visits".into(), Value::Null);
        }
        data.push(json!({ "id": wanted, "id_data": [{ "segment": null, "metrics": out }] }));
    }
    let mut echo = params_echo(params);
    echo["entity_ids"] = json!(ids);
    echo["metric_groups"] = json!(groups);
    echo["start_time"] = json!(start.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    echo["end_time"] = json!(end.with_timezone(&Utc).format("%Y-%m-%dT%H:%M:%SZ").to_string());
    let body = json!({
        "data_type": "stats", "time_series_length": days.len(), "data": data,
        "request": { "params": echo },
    });
    finish(body, fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_bound_is_a_midnight_with_the_offset_the_zone_has_today() {
        let los_angeles: chrono_tz::Tz = "America/Los_Angeles".parse().unwrap();
        let december = Utc.with_ymd_and_hms(2026, 12, 7, 18, 0, 0).unwrap();
        let july_1 = NaiveDate::from_ymd_opt(2026, 7, 1).unwrap();
        // In December the zone is at -08:00: a July day starts at 08:00Z for X, though that day's own
        // midnight is 07:00Z.
        let x = DateTime::parse_from_rfc3339("2026-07-01T00:00:00-08:00").unwrap();
        assert_eq!(day_bound(x, los_angeles, december), Some(july_1));
        let own_offset = DateTime::parse_from_rfc3339("2026-07-01T00:00:00-07:00").unwrap();
        assert_eq!(day_bound(own_offset, los_angeles, december), None);
        // In July, the day's own offset is today's.
        let july = Utc.with_ymd_and_hms(2026, 7, 15, 18, 0, 0).unwrap();
        assert_eq!(day_bound(own_offset, los_angeles, july), Some(july_1));
    }

    #[test]
    fn the_signature_is_x_documented_example() {
        // X's worked example ("Creating a signature"): POST https://api.twitter.com/1.1/statuses/update.json.
        let oauth: HashMap<String, String> = [
            ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
            ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "1318622958"),
            ("oauth_token", "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
            ("oauth_version", "1.0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let params = vec![
            ("include_entities".to_string(), "true".to_string()),
            ("status".to_string(), "Hello Ladies + Gentlemen, a signed OAuth request!".to_string()),
        ];
        let signed = signature(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
            &oauth,
            "kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw",
            "LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE",
        );
        assert_eq!(signed, "hCtSmYh+iHYCEqBWrE7C7hYmtUk=");
    }

    #[test]
    fn a_user_has_250_stats_requests_a_window() {
        let limits = RateLimits::default();
        for n in 0..STATS_PER_WINDOW {
            assert_eq!(limits.take("u", 1000), Ok((STATS_PER_WINDOW - n - 1, 1000 + RATE_WINDOW_SECS)));
        }
        assert_eq!(limits.take("u", 1001), Err(1000 + RATE_WINDOW_SECS));
        assert!(limits.take("another user", 1001).is_ok());
        assert!(limits.take("u", 1000 + RATE_WINDOW_SECS).is_ok(), "a new window");
    }
}
