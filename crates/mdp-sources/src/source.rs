//! The connector interface: what every platform implements, and what it gets from the runtime.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mdp_core::{DateWindow, Platform, SourceOptions};
pub use mdp_core::{StreamKind, StreamSpec, ACCOUNTS, ADS, AD_GROUPS, CAMPAIGNS};

use crate::error::SourceError;
use crate::http::HttpDriver;
use crate::record::{EntityRecord, PerformanceRecord};

/// A credential's value, and the file it was read from when it was (so that a rotated refresh token can
/// be saved back). Printing it shows `***`; [`Credential::expose`] is for the one header or form field
/// that sends it.
#[derive(Clone)]
pub struct Credential {
    value: String,
    file: Option<std::path::PathBuf>,
}

impl Credential {
    pub fn new(value: impl Into<String>) -> Self {
        Credential { value: value.into(), file: None }
    }
    /// The same credential, read from `path` (absolute, or relative to the working directory).
    pub fn with_file(mut self, path: std::path::PathBuf) -> Self {
        self.file = Some(path);
        self
    }
    pub fn expose(&self) -> &str {
        &self.value
    }
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_deref()
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A source's settings, validated by the project file and with credentials resolved.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    /// The source's name in mdp.yml (names its raw tables).
    pub name: String,
    pub platform: Platform,
    /// Scheme and host (and optional path prefix) of the API, without a trailing slash.
    pub base_url: String,
    pub api_version: String,
    pub accounts: Vec<String>,
    pub credentials: BTreeMap<String, Credential>,
    /// Where access tokens are refreshed (`oauth.token_url`), when not at the platform's own endpoint.
    pub token_url: Option<String>,
    /// The platform's typed options (e.g. Meta's conversion action types), validated when mdp.yml loaded.
    pub options: SourceOptions,
}

impl SourceSettings {
    /// A configuration error of this source (names the source, as mdp.yml does).
    pub fn config_error(&self, message: impl Into<String>) -> SourceError {
        SourceError::Config { source_name: self.name.clone(), message: message.into() }
    }

    /// A required credential, or a configuration error naming it.
    pub fn credential(&self, name: &str) -> Result<&Credential, SourceError> {
        self.credentials.get(name).ok_or_else(|| {
            self.config_error(format!("credential `{name}` is not configured (add it under credentials: in mdp.yml)"))
        })
    }

    /// The API base URL without a trailing slash.
    pub fn base(&self) -> &str {
        self.base_url.trim_end_matches('/')
    }
}

/// What the runtime gives a connector: the shared HTTP driver (and its counters).
#[derive(Debug, Clone)]
pub struct ReadContext {
    pub http: HttpDriver,
}

/// Where a connector sends records, a page at a time.
pub type Sink<T> = tokio::sync::mpsc::Sender<Vec<T>>;

/// Send one page of records; a closed channel means the loader gave up.
pub async fn emit<T: Send>(sink: &Sink<T>, ctx: &ReadContext, records: Vec<T>) -> Result<(), SourceError> {
    if records.is_empty() {
        return Ok(());
    }
    ctx.http.stats.add_rows(records.len());
    sink.send(records).await.map_err(|_| SourceError::Cancelled)
}

/// An account as the platform describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountInfo {
    pub id: String,
    pub currency: String,
    /// IANA name; the zone the platform's report dates are in (UTC for LinkedIn reports).
    pub timezone: String,
    /// The `accounts` stream's record.
    pub record: EntityRecord,
}

impl AccountInfo {
    /// An account and its `accounts` record (which repeats id, currency and time zone).
    pub fn new(
        id: String,
        name: Option<String>,
        status: Option<String>,
        currency: String,
        timezone: String,
        payload: String,
    ) -> Self {
        let record = EntityRecord {
            account_id: id.clone(),
            id: id.clone(),
            name,
            status,
            campaign_id: None,
            ad_group_id: None,
            currency: Some(currency.clone()),
            timezone: Some(timezone.clone()),
            payload,
        };
        AccountInfo { id, currency, timezone, record }
    }
}

/// A configured connector for one source.
///
/// Few required methods: the account's facts, entity snapshots, and daily performance. Each reads
/// through `ctx.http` and sends pages to the sink as they arrive (never the whole window at once).
#[async_trait]
pub trait Source: Send + Sync {
    fn settings(&self) -> &SourceSettings;

    /// The streams this platform has, entity streams first.
    fn streams(&self) -> &'static [StreamSpec];

    /// The account's currency, time zone and record (the `accounts` stream).
    async fn account(&self, account_id: &str, ctx: &ReadContext) -> Result<AccountInfo, SourceError>;

    /// Today's entities of an entity stream.
    async fn read_entities(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        ctx: &ReadContext,
        out: &Sink<EntityRecord>,
    ) -> Result<(), SourceError>;

    /// The daily rows of `window` (inclusive) for a daily stream. Performance is never filtered by
    /// an entity's current status: paused and removed ads keep their history.
    async fn read_daily(
        &self,
        stream: &StreamSpec,
        account: &AccountInfo,
        window: DateWindow,
        ctx: &ReadContext,
        out: &Sink<PerformanceRecord>,
    ) -> Result<(), SourceError>;
}
