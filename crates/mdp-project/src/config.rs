//! The typed contents of `mdp.yml`. The doc comments here are the reference for the file's keys.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;
use mdp_core::{OptionError, Platform, SourceOptions};
use serde::Deserialize;

use crate::secret::SecretRef;
use crate::target::TargetConfig;
use crate::values::{deserialize_account_ids, deserialize_optional_date, deserialize_time_zone, Currency, Identifier};

/// The whole project file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The project's name, a lowercase identifier such as `my_marketing`.
    pub name: Identifier,
    pub reporting: ReportingConfig,
    pub warehouse: WarehouseConfig,
    /// The ad accounts to ingest, one entry per platform connection.
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// Jobs `mdp schedule` runs on cron schedules, and the retry and timeout policy of their tasks.
    #[serde(default)]
    pub schedule: Option<ScheduleConfig>,
    /// The monitors of `mdp check`: freshness, volume, spend anomalies, schema drift, KPI targets.
    #[serde(default)]
    pub checks: Option<crate::checks::ChecksConfig>,
    /// Where failed runs and checks are announced: webhooks, Slack, a command.
    #[serde(default)]
    pub alerts: Option<crate::alerts::AlertsConfig>,
    /// Where OpenLineage run events go: a file or an HTTP endpoint.
    #[serde(default)]
    pub lineage: Option<crate::alerts::LineageConfig>,
}

/// The scheduler's settings and jobs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The IANA time zone the cron expressions are read in (default: `reporting.timezone`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Tasks of one run executed at the same time (default 4).
    #[serde(default = "default_schedule_concurrency")]
    pub concurrency: usize,
    /// Fire times missed while the scheduler was down: `latest` (run the last one once, the default),
    /// `all` (each, oldest first) or `none`.
    #[serde(default = "default_catchup")]
    pub catchup: String,
    /// Retries of a task whose failure may pass (a rate limit, a lost connection, a timeout; not a
    /// refused token or bad SQL) (default 2), the first after `retry_delay_seconds` (default 60),
    /// doubling each time up to an hour.
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_retry_delay")]
    pub retry_delay_seconds: u64,
    /// A task attempt running longer is cancelled and fails (default: no limit).
    #[serde(default)]
    pub task_timeout_seconds: Option<u64>,
    /// Build the models of the platforms whose ingest succeeded even when another failed (the run is
    /// flagged partial). Default false: a failed ingest blocks what reads it.
    #[serde(default)]
    pub partial: bool,
    #[serde(default)]
    pub jobs: Vec<JobConfig>,
}

/// One scheduled job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// Unique among jobs, e.g. `hourly_ingest`.
    pub name: Identifier,
    /// A 5-field cron expression (`0 6 * * *`) or `@hourly` / `@daily` / `@weekly` / `@monthly`.
    pub cron: String,
    /// `ingest` (sources only), `build` (models and tests only) or `pipeline` (ingest → build, the default).
    #[serde(default = "default_job_run")]
    pub run: String,
    /// Only these sources (default: every enabled source).
    #[serde(default)]
    pub sources: Vec<String>,
    /// Only these models, dbt selection syntax (default: every node).
    #[serde(default)]
    pub select: Vec<String>,
}

fn default_schedule_concurrency() -> usize {
    4
}

fn default_catchup() -> String {
    "latest".into()
}

fn default_retries() -> u32 {
    mdp_core::task::DEFAULT_TASK_RETRIES
}

fn default_retry_delay() -> u64 {
    mdp_core::task::DEFAULT_TASK_RETRY_DELAY.as_secs()
}

fn default_job_run() -> String {
    "pipeline".into()
}

/// How numbers are reported across platforms.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportingConfig {
    /// Money from every account is converted to this ISO 4217 currency (`spend_reporting`, ...).
    pub currency: Currency,
    /// The IANA time zone of cross-platform reports and of "today" for schedules, e.g. `Europe/Berlin`.
    #[serde(deserialize_with = "deserialize_time_zone")]
    pub timezone: Tz,
}

/// Where data is stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// The target used unless `--target` names another; must be a key of `targets`.
    pub default: Identifier,
    /// Named warehouses, e.g. a local DuckDB file and a production Postgres.
    pub targets: BTreeMap<Identifier, TargetConfig>,
    /// The schema holding mdp's own state: cursors, run history, check results.
    #[serde(default = "default_metadata_schema")]
    pub metadata_schema: Identifier,
}

fn default_metadata_schema() -> Identifier {
    "mdp_meta".parse().expect("a valid identifier")
}

/// One connection to an ad platform: a set of accounts read with one set of credentials.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique among sources; names the raw tables. Defaults to the platform's name.
    pub name: Identifier,
    pub platform: Platform,
    /// A disabled source is kept in the file but never ingested or checked for credentials.
    pub enabled: bool,
    /// Account ids as the platform writes them; at least one when enabled.
    pub accounts: Vec<String>,
    /// Days re-read on every run because the platform restates them (0 to 400). Defaults per platform.
    pub lookback_days: u32,
    /// The first day a backfill reads.
    pub start_date: Option<NaiveDate>,
    /// The API's scheme and host; override it for the sandbox or a proxy. Defaults per platform.
    pub base_url: String,
    /// The API version mdp requests. Defaults per platform.
    pub api_version: String,
    /// Credential name → where to find it, e.g. `access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }`.
    pub credentials: BTreeMap<String, SecretRef>,
    /// The platform's own settings, typed (e.g. Meta's `conversion_action_types`); the keys each
    /// platform reads are listed in its registry entry (`mdp_core::kind(platform).options`).
    pub options: SourceOptions,
    /// Where access tokens are refreshed and users consent, on a platform that refreshes tokens
    /// (defaults per platform; `oauth:` overrides them for the sandbox or a proxy). `None` elsewhere.
    pub oauth: Option<OAuthUrls>,
    /// `oauth:` was written for a platform without token refresh (reported by validation).
    pub(crate) oauth_unsupported: bool,
    /// The `options:` keys that could not be used, reported by validation with their line.
    pub(crate) option_errors: Vec<OptionError>,
}

/// A source's OAuth 2.0 endpoints (see [`mdp_core::OAuthSpec`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthUrls {
    /// Where refresh and authorization-code grants are posted.
    pub token_url: String,
    /// Where `mdp auth` sends the user's browser to consent.
    pub authorize_url: String,
}

/// `oauth:` as written: either URL may be left to the platform's default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenOAuth {
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
}

/// A source as written, before the platform's defaults fill what was left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenSourceConfig {
    #[serde(default)]
    name: Option<Identifier>,
    platform: Platform,
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    #[serde(default, deserialize_with = "deserialize_account_ids")]
    accounts: Vec<String>,
    #[serde(default)]
    lookback_days: Option<u32>,
    #[serde(default, deserialize_with = "deserialize_optional_date")]
    start_date: Option<NaiveDate>,
    #[serde(default)]
    base_url: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    credentials: BTreeMap<String, SecretRef>,
    #[serde(default)]
    options: BTreeMap<String, serde_yaml::Value>,
    #[serde(default)]
    oauth: Option<WrittenOAuth>,
}

fn enabled_by_default() -> bool {
    true
}

impl From<WrittenSourceConfig> for SourceConfig {
    fn from(written: WrittenSourceConfig) -> Self {
        let kind = mdp_core::kind(written.platform);
        // Parsed here, reported by validation (with file:line) if any key is unusable.
        let (options, option_errors) = match SourceOptions::parse(written.platform, written.options) {
            Ok(options) => (options, Vec::new()),
            Err(errors) => (SourceOptions::defaults(written.platform), errors),
        };
        SourceConfig {
            name: written.name.unwrap_or_else(|| kind.name().parse().expect("platform names are identifiers")),
            platform: written.platform,
            enabled: written.enabled,
            accounts: written.accounts,
            lookback_days: written.lookback_days.unwrap_or(kind.default_lookback_days),
            start_date: written.start_date,
            base_url: written.base_url.unwrap_or_else(|| kind.default_base_url.to_owned()),
            api_version: written.api_version.unwrap_or_else(|| kind.default_api_version.to_owned()),
            credentials: written.credentials,
            options,
            oauth_unsupported: written.oauth.is_some() && kind.oauth.is_none(),
            oauth: kind.oauth.map(|spec| {
                let written = written.oauth.unwrap_or(WrittenOAuth { token_url: None, authorize_url: None });
                OAuthUrls {
                    token_url: written.token_url.unwrap_or_else(|| spec.token_url.to_owned()),
                    authorize_url: written.authorize_url.unwrap_or_else(|| spec.authorize_url.to_owned()),
                }
            }),
            option_errors,
        }
    }
}

// By hand rather than `#[serde(from = ...)]` so the written form stays private.
impl<'de> Deserialize<'de> for SourceConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WrittenSourceConfig::deserialize(deserializer).map(SourceConfig::from)
    }
}
