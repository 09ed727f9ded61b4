//! The sandbox: faithful imitations of the ad platforms' reporting APIs on localhost.
//!
//! `mdp sandbox`, `mdp demo` and the tests run the real connectors against it over real HTTP: the
//! sandbox replaces the network, never the connector code. Each platform module follows its public API
//! reference — paths, parameters, required headers, envelopes, pagination, string-encoded numbers,
//! error shapes and rate-limit answers — over one deterministic [`World`].
//!
//! Control endpoints under `/_sandbox/` (not part of any platform):
//! - `GET  /_sandbox/accounts` — the account ids per platform (to write a project file);
//! - `GET  /_sandbox/truth?platform=P&account_id=A&start=D&end=D` — exact daily totals (ground truth);
//! - `POST /_sandbox/restate` — advance the data version: the last days' conversions change;
//! - `POST /_sandbox/faults` — queue faults, e.g. `{"platform":"tiktok_ads","kind":"rate_limit","retry_after_secs":1}`;
//! - `/_sandbox/oauth…` — token lifetimes, rotation, grants and revocation (see [`oauth`]).
//!
//! Architecture invariant: the sandbox shares no code with the connectors (it must not agree with a
//! connector's mistakes); it renders every API from the world independently.

#![allow(
    clippy::result_large_err,
    reason = "handlers return the HTTP answer to send as their error: an axum Response, large by design"
)]

pub mod amazon;
pub mod conversions;
pub mod faults;
pub mod google;
pub mod jobs;
mod json;
pub mod linkedin;
pub mod meta;
pub mod microsoft;
pub mod oauth;
pub mod pinterest;
pub mod reddit;
pub mod service_account;
pub mod snapchat;
pub mod tiktok;
pub mod world;
pub mod x_ads;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::NaiveDate;
use mdp_core::{Platform, SourceOptions};
use serde::Deserialize;
use serde_json::json;

pub use faults::{Fault, FaultKind, Faults};
pub use oauth::{OAuthServer, OAuthSettings, TokenCheck};
pub use world::{Metrics, Scale, World};

/// Shared state of a running sandbox.
#[derive(Debug)]
pub struct Sandbox {
    pub world: World,
    version: AtomicU64,
    pub faults: Faults,
    /// The platforms' token endpoints: issued tokens, their expiry, rotation, revocation.
    pub oauth: OAuthServer,
    requests: AtomicU64,
    /// Report fields a platform no longer serves (renamed or deprecated), refused as it refuses an
    /// unknown field: (platform, field as the API names it).
    retired: std::sync::Mutex<Vec<(Platform, String)>>,
    /// Amazon Ads', Pinterest's and Microsoft Advertising's report jobs (the imitated platforms whose
    /// reports are asynchronous).
    pub amazon: amazon::Reports,
    pub pinterest: pinterest::Reports,
    pub microsoft: microsoft::Reports,
    /// X's users' synchronous stats requests in the current rate-limit window.
    pub x: x_ads::RateLimits,
}

impl Sandbox {
    pub fn new(world: World) -> Arc<Sandbox> {
        Arc::new(Sandbox {
            world,
            version: AtomicU64::new(0),
            faults: Faults::default(),
            oauth: OAuthServer::default(),
            requests: AtomicU64::new(0),
            retired: Default::default(),
            amazon: Default::default(),
            pinterest: Default::default(),
            microsoft: Default::default(),
            x: Default::default(),
        })
    }

    /// The current data version (0 until the first restatement).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::SeqCst)
    }

    /// Advance the data version: the last [`world::RESTATED_DAYS`] days' conversions change.
    pub fn restate(&self) -> u64 {
        self.version.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// From now on `platform` refuses `field` in report requests, as it refuses a field it does not know
    /// (a deprecated or renamed metric).
    pub fn retire_field(&self, platform: Platform, field: &str) {
        self.retired.lock().expect("retired fields").push((platform, field.to_string()));
    }

    /// The first of `fields` that `platform` has retired.
    pub(crate) fn retired_field<'f>(
        &self,
        platform: Platform,
        fields: impl IntoIterator<Item = &'f str>,
    ) -> Option<&'f str> {
        let retired = self.retired.lock().expect("retired fields");
        fields.into_iter().find(|field| retired.iter().any(|(p, f)| *p == platform && f == field))
    }

    /// Requests served so far (platform endpoints only).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    /// Exact totals of an account per day in `start..=end`.
    pub fn truth(
        &self,
        platform: Platform,
        account_id: &str,
        start: NaiveDate,
        end: NaiveDate,
    ) -> Option<Vec<(NaiveDate, Metrics)>> {
        let account = self.world.account(platform, account_id)?;
        let version = self.version();
        Some(start.iter_days().take_while(|d| *d <= end).map(|d| (d, self.world.truth(account, d, version))).collect())
    }

    /// Exact conversions and conversion value (micros) of an account per day in `start..=end`, as a
    /// source configured with `options` counts them (its conversion definition).
    pub fn conversion_truth(
        &self,
        account_id: &str,
        start: NaiveDate,
        end: NaiveDate,
        options: &SourceOptions,
    ) -> Option<Vec<(NaiveDate, i64, i64)>> {
        let account = self.world.account(options.platform(), account_id)?;
        let version = self.version();
        Some(
            start
                .iter_days()
                .take_while(|d| *d <= end)
                .map(|d| {
                    let (count, value) = self.world.conversion_truth(account, d, version, options);
                    (d, count, value)
                })
                .collect(),
        )
    }
}

/// The sandbox's HTTP application: every platform's routes plus the control endpoints.
pub fn app(sandbox: Arc<Sandbox>) -> Router {
    Router::new()
        .route("/_sandbox/accounts", get(accounts))
        .route("/_sandbox/truth", get(truth))
        .route("/_sandbox/restate", post(restate))
        .route("/_sandbox/faults", post(push_faults))
        .route("/_sandbox/retire_field", post(retire_field))
        .merge(google::routes())
        .merge(meta::routes())
        .merge(tiktok::routes())
        .merge(linkedin::routes())
        .merge(reddit::routes())
        .merge(amazon::routes())
        .merge(snapchat::routes())
        .merge(pinterest::routes())
        .merge(microsoft::routes())
        .merge(x_ads::routes())
        .merge(oauth::routes())
        .with_state(sandbox)
}

/// Bind `addr` (port 0 for any free port) and serve in the background; returns the bound address.
pub async fn serve(
    sandbox: Arc<Sandbox>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = app(sandbox);
    let handle = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "sandbox server stopped");
        }
    });
    Ok((bound, handle))
}

async fn accounts(State(sandbox): State<Arc<Sandbox>>) -> Json<serde_json::Value> {
    let mut by_platform = serde_json::Map::new();
    for platform in world::imitated() {
        let accounts: Vec<_> = sandbox
            .world
            .accounts(platform)
            .map(|a| json!({"id": a.id, "name": a.name, "currency": a.currency, "timezone": a.timezone}))
            .collect();
        by_platform.insert(platform.as_str().to_string(), accounts.into());
    }
    Json(json!({"today": sandbox.world.today.to_string(), "version": sandbox.version(), "accounts": by_platform}))
}

#[derive(Deserialize)]
struct TruthQuery {
    platform: Platform,
    account_id: String,
    start: NaiveDate,
    end: NaiveDate,
    /// The source's `options:` as a JSON object: conversions are counted by its conversion definition
    /// (default: the platform's default definition).
    options: Option<String>,
}

/// Micros as an exact decimal string with 6 places.
pub fn micros_to_decimal(micros: i64) -> String {
    rust_decimal::Decimal::new(micros, 6).normalize().to_string()
}

async fn truth(State(sandbox): State<Arc<Sandbox>>, Query(q): Query<TruthQuery>) -> Response {
    let options = match q.options.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        None => SourceOptions::defaults(q.platform),
        Some(Ok(serde_json::Value::Object(map))) => match SourceOptions::parse(q.platform, map) {
            Ok(options) => options,
            Err(errors) => {
                let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
                return (StatusCode::BAD_REQUEST, messages.join("; ")).into_response();
            }
        },
        Some(_) => return (StatusCode::BAD_REQUEST, "options must be a JSON object").into_response(),
    };
    let (Some(days), Some(conversions)) = (
        sandbox.truth(q.platform, &q.account_id, q.start, q.end),
        sandbox.conversion_truth(&q.account_id, q.start, q.end, &options),
    ) else {
        return (StatusCode::NOT_FOUND, format!("no {} account {}", q.platform, q.account_id)).into_response();
    };
    let days: Vec<_> = days
        .into_iter()
        .zip(conversions)
        .map(|((date, m), (_, conversions, value))| {
            json!({
                "date": date.to_string(),
                "impressions": m.impressions,
                "clicks": m.clicks,
                "spend": micros_to_decimal(m.spend_micros),
                "conversions": micros_to_decimal(conversions),
                "conversion_value": micros_to_decimal(value),
            })
        })
        .collect();
    Json(json!({
        "platform": q.platform,
        "account_id": q.account_id,
        "version": sandbox.version(),
        "conversion_definition": options.conversion_definition(),
        "days": days,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct RetireField {
    platform: Platform,
    field: String,
}

async fn retire_field(State(sandbox): State<Arc<Sandbox>>, Json(r): Json<RetireField>) -> Json<serde_json::Value> {
    sandbox.retire_field(r.platform, &r.field);
    Json(json!({"retired": {"platform": r.platform, "field": r.field}}))
}

async fn restate(State(sandbox): State<Arc<Sandbox>>) -> Json<serde_json::Value> {
    Json(json!({"version": sandbox.restate()}))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Fault),
    Many(Vec<Fault>),
}

async fn push_faults(State(sandbox): State<Arc<Sandbox>>, Json(faults): Json<OneOrMany>) -> Json<serde_json::Value> {
    let faults = match faults {
        OneOrMany::One(f) => vec![f],
        OneOrMany::Many(f) => f,
    };
    for fault in faults {
        sandbox.faults.push(fault);
    }
    Json(json!({"pending": sandbox.faults.pending()}))
}
