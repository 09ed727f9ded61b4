//! Snapchat Marketing API v1 (developers.snap.com/api/marketing-api/Ads-API), written from its public
//! reference, not from mdp's spec of it:
//! - `GET /v1/adaccounts/{id}`: `{request_status, adaccounts: [{sub_request_status, adaccount: {id, name,
//!   currency, timezone (IANA), status, …}}]}`.
//! - Entity lists `GET /v1/adaccounts/{id}/campaigns`, `…/adsquads`, `…/ads`: each entity wrapped in its
//!   own object (`{sub_request_status, campaign: {…}}`), `limit` 50..=1000 a page and `paging.next_link`,
//!   the next page's full URL with a `cursor`. An ad names its ad squad (`ad_squad_id`), not its campaign.
//! - Stats `GET /v1/adaccounts/{id}/stats?granularity=DAY&breakdown=ad&fields=…&start_time&end_time`:
//!   `timeseries_stats[0].timeseries_stat` holds `breakdown_stats.ad[]`, each ad with `timeseries[]` of
//!   `{start_time, end_time, stats{…}}` days. With DAY granularity **start and end must be midnights of
//!   the ad account's time zone, with the offset of that day** (DST-correct), and the range at most 32
//!   days. `omit_empty=true` leaves out days (and ads) without delivery. Money (`spend`,
//!   `conversion_purchases_value`) is in micros of the account's currency.
//!
//! Auth: `Authorization: Bearer` (tokens live 30 minutes). Errors are `{request_status: "ERROR",
//! request_id, debug_message, display_message, error_code}` with the HTTP status; rate limiting is HTTP
//! 429 without a documented wait.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Timelike};
use mdp_core::Platform;
use serde_json::{json, Value};

use crate::faults::{truncate, FaultKind, Refusal};
use crate::world::{Account, Status};
use crate::Sandbox;

pub const NAME: &str = "snapchat_ads";

/// Snapchat's platform, as mdp names it (a platform of a connector spec).
pub fn platform() -> Platform {
    Platform::Declared(mdp_core::DeclaredPlatform::intern(NAME))
}

/// The longest range a DAY-granularity stats request may ask for.
pub const MAX_DAY_RANGE: i64 = 32;
const LIMITS: std::ops::RangeInclusive<usize> = 50..=1000;
/// The stats fields the sandbox serves.
const FIELDS: &[&str] = &["impressions", "swipes", "spend", "conversion_purchases", "conversion_purchases_value"];

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route("/{version}/adaccounts/{account}", get(ad_account))
        .route("/{version}/adaccounts/{account}/campaigns", get(|s, p, h, q| list(s, p, h, q, Level::Campaign)))
        .route("/{version}/adaccounts/{account}/adsquads", get(|s, p, h, q| list(s, p, h, q, Level::AdSquad)))
        .route("/{version}/adaccounts/{account}/ads", get(|s, p, h, q| list(s, p, h, q, Level::Ad)))
        .route("/{version}/adaccounts/{account}/stats", get(stats))
}

type Params = Query<HashMap<String, String>>;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({
        "request_status": "ERROR",
        "request_id": REQUEST_ID,
        "debug_message": message,
        "display_message": "We're sorry, but the data provided in the request is incomplete or incorrect",
        "error_code": code,
    });
    (status, axum::Json(body)).into_response()
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "E1008", message)
}

/// Checks every request shares: version, token, injected faults. `Err` is the answer to send.
async fn guard(sandbox: &Sandbox, version: &str, headers: &HeaderMap) -> Result<Option<FaultKind>, Response> {
    sandbox.count_request();
    if version != "v1" {
        return Err(error(StatusCode::NOT_FOUND, "E3003", &format!("No API version {version}; the Ads API is /v1")));
    }
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = bearer.filter(|token| !token.is_empty()) else {
        return Err(error(StatusCode::UNAUTHORIZED, "E3001", "Unauthorized: no access token"));
    };
    if sandbox.oauth.check(platform(), token) == crate::TokenCheck::Expired {
        return Err(error(StatusCode::UNAUTHORIZED, "E3001", "Unauthorized: the access token has expired"));
    }
    sandbox
        .faults
        .apply(platform(), |refusal| match refusal {
            Refusal::Unauthorized => error(StatusCode::UNAUTHORIZED, "E3001", "Unauthorized"),
            Refusal::RateLimit { .. } => error(StatusCode::TOO_MANY_REQUESTS, "E3004", "Too many requests"),
            Refusal::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "E1001", "An internal error has occurred"),
        })
        .await
}

fn finish(body: Value, fault: Option<FaultKind>) -> Response {
    let text = body.to_string();
    let text = if fault == Some(FaultKind::TruncatedJson) { truncate(&text) } else { text };
    (StatusCode::OK, [("content-type", "application/json")], text).into_response()
}

fn account<'s>(sandbox: &'s Sandbox, id: &str) -> Result<&'s Account, Response> {
    sandbox
        .world
        .account(platform(), id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "E3003", &format!("Resource can not be found: adaccount {id}")))
}

const REQUEST_ID: &str = "5f1e0c2a00ff0c6e3b9d1a7f4c0001737e616473617069736300016275696c64";

async fn ad_account(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let account = match account(&sandbox, &id) {
        Ok(account) => account,
        Err(answer) => return answer,
    };
    let adaccount = json!({
        "id": account.id, "name": account.name, "type": "PARTNER", "status": "ACTIVE",
        "organization_id": "0d5ac1a4-8e0e-4d3b-9f5c-3b1d2f0a7e11", "currency": account.currency,
        "timezone": account.timezone, "advertiser": account.name, "billing_type": "IO",
        "created_at": "2025-11-02T10:00:00.000Z", "updated_at": "2026-01-15T08:30:00.000Z",
    });
    let body = json!({
        "request_status": "SUCCESS", "request_id": REQUEST_ID,
        "adaccounts": [{"sub_request_status": "SUCCESS", "adaccount": adaccount}],
    });
    finish(body, fault)
}

fn status(status: Status) -> &'static str {
    match status {
        Status::Active => "ACTIVE",
        Status::Paused => "PAUSED",
        Status::Removed => "DELETED",
    }
}

/// `limit` and `cursor` (an offset in the sandbox; opaque to clients). No limit: every entity.
fn paging(params: &HashMap<String, String>) -> Result<(usize, Option<usize>), Response> {
    let limit = match params.get("limit") {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if LIMITS.contains(&limit) => Some(limit),
            _ => return Err(bad_request(&format!("limit must be between 50 and 1000, got {text}"))),
        },
    };
    let offset = match params.get("cursor") {
        None => 0,
        Some(cursor) => cursor
            .strip_prefix("snc")
            .and_then(|c| c.parse::<usize>().ok())
            .ok_or_else(|| bad_request("Invalid cursor"))?,
    };
    Ok((offset, limit))
}

/// One page of `items` and the `paging` object: `next_link` is the next page's full URL, same query.
fn page(
    headers: &HeaderMap,
    path: &str,
    params: &HashMap<String, String>,
    items: Vec<Value>,
    (offset, limit): (usize, Option<usize>),
) -> (Vec<Value>, Value) {
    let total = items.len();
    let size = limit.unwrap_or(total.max(1));
    let page: Vec<Value> = items.into_iter().skip(offset).take(size).collect();
    if offset + size >= total {
        return (page, json!({}));
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    let mut query: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k.as_str() != "cursor").map(|(k, v)| (k.clone(), v.clone())).collect();
    query.sort();
    query.push(("cursor".into(), format!("snc{}", offset + size)));
    let query = serde_urlencoded::to_string(&query).expect("text pairs encode");
    (page, json!({"next_link": format!("http://{host}{path}?{query}")}))
}

#[derive(Clone, Copy)]
enum Level {
    Campaign,
    AdSquad,
    Ad,
}

async fn list(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
    level: Level,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let (account, paging) = match (account(&sandbox, &id), paging(&params)) {
        (Ok(account), Ok(paging)) => (account, paging),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    let (plural, singular) = match level {
        Level::Campaign => ("campaigns", "campaign"),
        Level::AdSquad => ("adsquads", "adsquad"),
        Level::Ad => ("ads", "ad"),
    };
    let mut items = Vec::new();
    for c in &account.campaigns {
        let entity = match level {
            Level::Campaign => vec![json!({
                "id": c.id, "name": c.name, "ad_account_id": account.id, "status": status(c.status),
                "objective": "WEB_CONVERSION", "start_time": "2025-12-01T00:00:00.000Z",
            })],
            Level::AdSquad => c
                .ad_groups
                .iter()
                .map(|g| {
                    json!({"id": g.id, "name": g.name, "campaign_id": c.id, "status": status(g.status),
                           "type": "SNAP_ADS", "placement": "SNAP_ADS", "billing_event": "IMPRESSION"})
                })
                .collect(),
            Level::Ad => c
                .ad_groups
                .iter()
                .flat_map(|g| {
                    g.ads.iter().map(|ad| {
                        json!({"id": ad.id, "name": ad.name, "ad_squad_id": g.id, "status": status(ad.status),
                               "type": "SNAP_AD", "review_status": "APPROVED",
                               "creative_id": format!("cr-{}", ad.id)})
                    })
                })
                .collect(),
        };
        items.extend(entity.into_iter().map(|e| json!({"sub_request_status": "SUCCESS", singular: e})));
    }
    let path = format!("/{version}/adaccounts/{id}/{plural}");
    let (items, paging) = page(&headers, &path, &params, items, paging);
    finish(json!({"request_status": "SUCCESS", "request_id": REQUEST_ID, "paging": paging, plural: items}), fault)
}

/// Snap's time format: milliseconds and the offset (`2026-03-29T00:00:00.000+01:00`).
fn snap_time(at: DateTime<FixedOffset>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// The local midnight that starts `day` in `zone`.
fn midnight(zone: chrono_tz::Tz, day: NaiveDate) -> DateTime<FixedOffset> {
    let naive = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    let local = zone
        .from_local_datetime(&naive)
        .earliest()
        .or_else(|| zone.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest())
        .expect("a day has a first instant");
    local.fixed_offset()
}

/// A DAY bound: an ISO 8601 time that is a midnight of the account's zone. Snap refuses a time whose
/// offset is not the zone's on that day (today's offset used for a day across a DST change).
fn day_bound(text: Option<&String>, what: &str, zone: chrono_tz::Tz) -> Result<NaiveDate, Response> {
    let text = text.ok_or_else(|| bad_request(&format!("{what} is required for DAY granularity")))?;
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|_| bad_request(&format!("{what}: {text:?} is not an ISO 8601 time with an offset")))?;
    let local = at.with_timezone(&zone);
    if (local.hour(), local.minute(), local.second(), local.nanosecond()) != (0, 0, 0, 0) {
        return Err(bad_request(&format!(
            "Unsupported Stats Query: Timeseries queries with DAY granularity must have a {what} that is the \
             start of a day (00:00:00) in the ad account's timezone. This account's timezone is: {zone}"
        )));
    }
    Ok(local.date_naive())
}

async fn stats(
    State(sandbox): State<Arc<Sandbox>>,
    Path((version, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let fault = match guard(&sandbox, &version, &headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let (account, paging) = match (account(&sandbox, &id), paging(&params)) {
        (Ok(account), Ok(paging)) => (account, paging),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    if params.get("granularity").map(String::as_str) != Some("DAY") {
        return bad_request("the sandbox serves granularity=DAY");
    }
    if params.get("breakdown").map(String::as_str) != Some("ad") {
        return bad_request("the sandbox serves breakdown=ad");
    }
    let fields: Vec<&str> = params.get("fields").map(|f| f.split(',').map(str::trim).collect()).unwrap_or_default();
    if fields.is_empty() {
        return bad_request("fields is required");
    }
    let retired = sandbox.retired_field(platform(), fields.iter().copied());
    if let Some(unknown) = fields.iter().find(|f| !FIELDS.contains(f) || Some(**f) == retired) {
        return bad_request(&format!("Invalid stats field: {unknown}"));
    }
    let zone: chrono_tz::Tz = account.timezone.parse().expect("the world's zones are IANA names");
    let (start, end) = match (
        day_bound(params.get("start_time"), "start_time", zone),
        day_bound(params.get("end_time"), "end_time", zone),
    ) {
        (Ok(start), Ok(end)) => (start, end),
        (Err(answer), _) | (_, Err(answer)) => return answer,
    };
    if end <= start {
        return bad_request("end_time must be after start_time");
    }
    if (end - start).num_days() > MAX_DAY_RANGE {
        return bad_request(
            "Unsupported Stats Query: Timeseries queries with DAY granularity cannot query time intervals of \
             more than 32 days",
        );
    }
    let omit_empty = params.get("omit_empty").is_some_and(|v| v == "true");
    let world = &sandbox.world;
    let version_now = sandbox.version();
    let mut ads = Vec::new();
    for unit in world.units(account) {
        let Some(ad) = unit.ad else { continue };
        let mut days = Vec::new();
        for day in start.iter_days().take_while(|d| *d < end) {
            let m = world.unit_metrics(account, &unit, day, version_now);
            if omit_empty && m.is_zero() {
                continue;
            }
            let mut stats = serde_json::Map::new();
            for field in &fields {
                let value = match *field {
                    "impressions" => m.impressions,
                    "swipes" => m.clicks,
                    "spend" => m.spend_micros,
                    "conversion_purchases" => m.conversions_micros / 1_000_000,
                    _ => m.conversion_value_micros,
                };
                stats.insert((*field).to_string(), json!(value));
            }
            let next = day.succ_opt().expect("a next day");
            days.push(json!({
                "start_time": snap_time(midnight(zone, day)), "end_time": snap_time(midnight(zone, next)),
                "stats": stats,
            }));
        }
        if omit_empty && days.is_empty() {
            continue;
        }
        ads.push(json!({
            "id": ad.id, "type": "AD", "granularity": "DAY",
            "start_time": snap_time(midnight(zone, start)), "end_time": snap_time(midnight(zone, end)),
            "timeseries": days,
        }));
    }
    let path = format!("/{version}/adaccounts/{id}/stats");
    let (ads, paging) = page(&headers, &path, &params, ads, paging);
    // Days before yesterday are final; later ones may still change.
    let finalized = snap_time(midnight(zone, world.today - chrono::Days::new(1)));
    let stat = json!({
        "id": account.id, "type": "AD_ACCOUNT", "granularity": "DAY",
        "start_time": snap_time(midnight(zone, start)), "end_time": snap_time(midnight(zone, end)),
        "finalized_data_end_time": finalized,
        "breakdown_stats": {"ad": ads},
    });
    let body = json!({
        "request_status": "SUCCESS", "request_id": REQUEST_ID, "paging": paging,
        "timeseries_stats": [{"sub_request_status": "SUCCESS", "timeseries_stat": stat}],
    });
    finish(body, fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_bound_must_carry_the_offset_of_its_own_day() {
        let berlin: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        // Summer time starts on 2026-03-29: that day's midnight is still +01:00, the next day's +02:00.
        let day = NaiveDate::from_ymd_opt(2026, 3, 30).unwrap();
        assert_eq!(snap_time(midnight(berlin, day)), "2026-03-30T00:00:00.000+02:00");
        assert_eq!(day_bound(Some(&"2026-03-30T00:00:00+02:00".into()), "start_time", berlin).ok(), Some(day));
        // Today's offset in winter, used for a summer day: 01:00 local, refused.
        assert!(day_bound(Some(&"2026-03-30T00:00:00+01:00".into()), "start_time", berlin).is_err());
        assert!(day_bound(Some(&"2026-03-30".into()), "start_time", berlin).is_err());
    }
}
