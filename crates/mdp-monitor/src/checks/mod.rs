//! The monitors of `mdp check`, one module each: [`freshness`], [`volume`], [`spend`] (spend
//! anomalies and zero-spend days), [`schema_drift`], [`kpi`], [`api_version`] (the platforms' announced
//! sunsets, no query), [`conversion_definition`] (history loaded with another conversion definition);
//! and [`transform_tests`], which turns the
//! transform's schema and reconciliation tests into results of the same shape.
//!
//! Each monitor renders its statements with pure `*_sql(dialect, …)` functions through the
//! warehouse's [`Dialect`] (quoting, literals, casts, medians, JSON keys, date maths; aggregates are
//! computed in the warehouse and only small per-day or per-entity summaries come back; the statements
//! are golden-tested per dialect), decodes the rows by column name into small structs
//! ([`mdp_warehouse::rows`]), reads mdp's metadata through [`mdp_warehouse::meta`], then decides
//! pass / warn / fail with pure functions that have unit tests. KPIs and the marts are the marketing
//! package's ([`mdp_marketing::kpi`], [`mdp_marketing::marts`]). A monitor whose input does not exist
//! yet (no raw table, marts not built) reports `skipped` with what to run; one whose SQL fails
//! reports `error`; neither stops the others.
//!
//! [`run_checks`] runs them all; [`record`] stores outcomes in the metadata schema's
//! `check_results` with the run id, where the alerts and the web UI read them.

pub mod api_version;
pub mod conversion_definition;
pub mod freshness;
#[cfg(test)]
mod golden;
pub mod kpi;
pub mod schema_drift;
pub mod spend;
pub mod transform_tests;
pub mod volume;

use std::collections::HashSet;

use chrono::{NaiveDate, NaiveDateTime};
use mdp_project::checks::ChecksConfig;
use mdp_warehouse::meta::{CheckResult, Metadata};
use mdp_warehouse::rows::{fetch, FromRow};
use mdp_warehouse::{Dialect, Literal, TableRef, Warehouse, WarehouseError};
use serde::Serialize;

/// What a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Freshness,
    Volume,
    SpendAnomaly,
    ZeroSpend,
    SchemaDrift,
    KpiTarget,
    /// Whether a source's API version is served, and for how long (the platform's announced sunset).
    ApiVersion,
    /// Whether a stream's history was loaded with the source's current conversion definition.
    ConversionDefinition,
    /// A schema (or singular) test of the transform project.
    Test,
    /// One of the marketing package's reconciliation tests (marts against the raw layer).
    Reconciliation,
}

impl CheckKind {
    /// Every monitor `mdp check` runs (tests come from `mdp build` / `mdp test` / `mdp pipeline`).
    pub const MONITORS: [CheckKind; 8] = [
        CheckKind::Freshness,
        CheckKind::Volume,
        CheckKind::SpendAnomaly,
        CheckKind::ZeroSpend,
        CheckKind::SchemaDrift,
        CheckKind::KpiTarget,
        CheckKind::ApiVersion,
        CheckKind::ConversionDefinition,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Freshness => "freshness",
            CheckKind::Volume => "volume",
            CheckKind::SpendAnomaly => "spend_anomaly",
            CheckKind::ZeroSpend => "zero_spend",
            CheckKind::SchemaDrift => "schema_drift",
            CheckKind::KpiTarget => "kpi_target",
            CheckKind::ApiVersion => "api_version",
            CheckKind::ConversionDefinition => "conversion_definition",
            CheckKind::Test => "test",
            CheckKind::Reconciliation => "reconciliation",
        }
    }

    pub fn parse(s: &str) -> Option<CheckKind> {
        [CheckKind::Test, CheckKind::Reconciliation].into_iter().chain(CheckKind::MONITORS).find(|k| k.as_str() == s)
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
    /// The check could not run (its query failed).
    Error,
    /// Nothing to judge yet (no data, not enough history, marts not built).
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Error => "error",
            CheckStatus::Skipped => "skipped",
        }
    }

    /// Badness, for "the worst of": skipped and pass 0, warn 1, fail 2, error 3.
    pub fn rank(self) -> u8 {
        match self {
            CheckStatus::Pass | CheckStatus::Skipped => 0,
            CheckStatus::Warn => 1,
            CheckStatus::Fail => 2,
            CheckStatus::Error => 3,
        }
    }

    /// Whether `mdp check` exits non-zero for it.
    pub fn is_failure(self) -> bool {
        matches!(self, CheckStatus::Fail | CheckStatus::Error)
    }

    /// The worse of two statuses.
    pub fn worst(self, other: CheckStatus) -> CheckStatus {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

impl std::str::FromStr for CheckStatus {
    type Err = mdp_core::UnknownWordError;

    /// A status as stored in `check_results.status` (the words of [`CheckStatus::as_str`]).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const ALL: [CheckStatus; 5] =
            [CheckStatus::Pass, CheckStatus::Warn, CheckStatus::Fail, CheckStatus::Error, CheckStatus::Skipped];
        ALL.into_iter().find(|s| s.as_str() == text).ok_or_else(|| mdp_core::UnknownWordError {
            vocabulary: "check status",
            given: text.to_string(),
            expected: ALL.map(CheckStatus::as_str).join(", "),
        })
    }
}

impl From<mdp_project::checks::Severity> for CheckStatus {
    fn from(s: mdp_project::checks::Severity) -> Self {
        match s {
            mdp_project::checks::Severity::Warn => CheckStatus::Warn,
            mdp_project::checks::Severity::Fail => CheckStatus::Fail,
        }
    }
}

/// One check's result, as stored in `check_results`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckOutcome {
    /// Stable across runs, e.g. `freshness.google_ads.campaign_daily.1234567890`.
    pub check_name: String,
    pub check_kind: CheckKind,
    /// The relation looked at, `schema.name`.
    pub relation: Option<String>,
    pub status: CheckStatus,
    pub observed: Option<String>,
    pub expected: Option<String>,
    /// Rows (days, fields, entities) that breach the check.
    pub failing_rows: Option<i64>,
    /// What was checked, the numbers, and what to do.
    pub message: String,
    /// A query to paste into `mdp sql` that shows the rows behind the result.
    pub sample_query: Option<String>,
}

impl CheckOutcome {
    fn new(kind: CheckKind, name: impl Into<String>, status: CheckStatus, message: impl Into<String>) -> Self {
        CheckOutcome {
            check_name: name.into(),
            check_kind: kind,
            relation: None,
            status,
            observed: None,
            expected: None,
            failing_rows: None,
            message: message.into(),
            sample_query: None,
        }
    }

    /// A monitor's query failed.
    fn error(kind: CheckKind, name: impl Into<String>, relation: Option<&TableRef>, error: &WarehouseError) -> Self {
        let mut o = CheckOutcome::new(
            kind,
            name,
            CheckStatus::Error,
            format!("the {} check could not run: {error}", kind.as_str()),
        );
        o.relation = relation.map(|t| t.to_string());
        o
    }
}

/// A stream of a source, with its raw table.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub name: String,
    /// Daily performance rows (a `date` column); otherwise an entity snapshot.
    pub daily: bool,
    pub table: TableRef,
}

/// A configured source: its accounts and streams.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    /// The source's name in mdp.yml.
    pub name: String,
    pub platform: String,
    /// The API version the source requests (`api_version`, or the platform's default).
    pub api_version: String,
    /// What the source counts as a conversion (`SourceOptions::conversion_definition`).
    pub conversion_definition: String,
    pub accounts: Vec<String>,
    pub streams: Vec<StreamInfo>,
    /// The `accounts` snapshot table (account time zones), if the source has one.
    pub accounts_table: Option<TableRef>,
}

/// Where the marketing marts are (from the parsed project): defined by the marketing package.
pub use mdp_marketing::Marts;

/// Everything the monitors need to know about the project and the moment.
#[derive(Debug, Clone)]
pub struct CheckContext {
    pub config: ChecksConfig,
    pub sources: Vec<SourceInfo>,
    /// `None` when the project has no marts (no transform project could be loaded).
    pub marts: Option<Marts>,
    /// "Today" for every account (tests, `MDP_TODAY`); otherwise each account's own today.
    pub today: Option<NaiveDate>,
    /// The reporting time zone: its today ends the windows of volume, spend and KPI checks.
    pub reporting_timezone: chrono_tz::Tz,
    pub reporting_currency: String,
    /// The current time, UTC (injectable for tests).
    pub now: NaiveDateTime,
}

impl CheckContext {
    /// The day the windows end before: today in the reporting time zone (or the injected today).
    pub fn reference_today(&self) -> NaiveDate {
        self.today.unwrap_or_else(|| {
            use chrono::TimeZone;
            self.reporting_timezone.from_utc_datetime(&self.now).date_naive()
        })
    }

    /// Today in an account's time zone (UTC when unknown), or the injected today.
    pub fn account_today(&self, timezone: Option<&str>) -> NaiveDate {
        if let Some(today) = self.today {
            return today;
        }
        let tz: chrono_tz::Tz = timezone.and_then(|t| t.parse().ok()).unwrap_or(chrono_tz::UTC);
        use chrono::TimeZone;
        tz.from_utc_datetime(&self.now).date_naive()
    }
}

/// Which checks to run.
#[derive(Debug, Clone, Default)]
pub struct CheckFilter {
    /// Only these kinds (empty: all).
    pub kinds: Vec<CheckKind>,
    /// Only checks whose name starts with one of these (empty: all).
    pub select: Vec<String>,
}

impl CheckFilter {
    fn wants_kind(&self, kind: CheckKind) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.select.is_empty()
                || self.select.iter().any(|s| {
                    // `volume` selects `volume.…`, `volume.google_ads` selects its checks.
                    let k = kind.as_str();
                    s.starts_with(k) || k.starts_with(s.as_str())
                }))
    }

    /// Whether an outcome passes the filter.
    pub fn wants(&self, outcome: &CheckOutcome) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&outcome.check_kind))
            && (self.select.is_empty() || self.select.iter().any(|s| outcome.check_name.starts_with(s.as_str())))
    }
}

/// Run every monitor the filter selects. Results come back in a stable order (by kind, then name).
/// A failing query becomes an `error` outcome; only a problem with the context itself is an `Err`.
pub async fn run_checks(
    warehouse: &dyn Warehouse,
    ctx: &CheckContext,
    filter: &CheckFilter,
) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let c = &ctx.config;
    // The monitors read different tables: they run side by side (each query on its own connection),
    // and their outcomes keep this order.
    let results = futures::join!(
        when(filter.wants_kind(CheckKind::Freshness) && c.freshness.enabled, freshness::run(warehouse, ctx)),
        when(filter.wants_kind(CheckKind::Volume) && c.volume.enabled, volume::run(warehouse, ctx)),
        when(filter.wants_kind(CheckKind::SpendAnomaly) && c.spend_anomaly.enabled, spend::run_anomaly(warehouse, ctx)),
        when(filter.wants_kind(CheckKind::ZeroSpend) && c.zero_spend.enabled, spend::run_zero_spend(warehouse, ctx)),
        when(filter.wants_kind(CheckKind::SchemaDrift) && c.schema_drift.enabled, schema_drift::run(warehouse, ctx)),
        when(filter.wants_kind(CheckKind::KpiTarget), kpi::run(warehouse, ctx)),
        when(filter.wants_kind(CheckKind::ApiVersion), async { api_version::run(ctx) }),
        when(filter.wants_kind(CheckKind::ConversionDefinition), conversion_definition::run(warehouse, ctx)),
    );
    let mut out = Vec::new();
    for part in [results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7] {
        out.extend(part);
    }
    out.retain(|o| filter.wants(o));
    Ok(out)
}

/// A monitor's outcomes, or none when it is not wanted (its future is then never polled).
async fn when(wanted: bool, run: impl std::future::Future<Output = Vec<CheckOutcome>>) -> Vec<CheckOutcome> {
    if wanted {
        run.await
    } else {
        Vec::new()
    }
}

/// Store outcomes in `check_results` under `run_id` (batched inserts).
pub async fn record(warehouse: &dyn Warehouse, run_id: &str, outcomes: &[CheckOutcome]) -> Result<(), WarehouseError> {
    let rows: Vec<CheckResult<'_>> = outcomes
        .iter()
        .map(|o| CheckResult {
            run_id,
            check_name: &o.check_name,
            check_kind: o.check_kind.as_str(),
            relation: o.relation.as_deref(),
            status: o.status.as_str(),
            observed: o.observed.as_deref(),
            expected: o.expected.as_deref(),
            failing_rows: o.failing_rows,
            message: Some(&o.message),
            sample_query: o.sample_query.as_deref(),
        })
        .collect();
    Metadata::new(warehouse).record_checks(&rows).await
}

// --- small helpers shared by the monitors ---

/// Run a monitor's query and decode its rows by column name.
async fn rows<T: FromRow>(warehouse: &dyn Warehouse, sql: &str) -> Result<Vec<T>, WarehouseError> {
    fetch(warehouse, sql).await
}

fn text(d: &dyn Dialect, value: &str) -> Result<String, WarehouseError> {
    d.literal(&Literal::Text(value))
}

fn date(d: &dyn Dialect, value: NaiveDate) -> Result<String, WarehouseError> {
    d.literal(&Literal::Date(value))
}

fn q(d: &dyn Dialect, ident: &str) -> Result<String, WarehouseError> {
    d.quote_identifier(ident)
}

/// The relations that exist (one introspection query), to look tables up in.
type Existing = HashSet<TableRef>;

async fn existing(warehouse: &dyn Warehouse) -> Result<Existing, WarehouseError> {
    Ok(warehouse.relations(None).await?.into_iter().map(|r| r.table).collect())
}

fn exists(found: &Existing, table: &TableRef) -> bool {
    found.contains(table)
}

/// A number for a message: at most two decimals, no trailing zeros.
fn num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "∞".into() } else { "-∞".into() };
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// The days `[today − days, today − 1]`, oldest first (today is still loading).
fn complete_days(today: NaiveDate, days: u32) -> Vec<NaiveDate> {
    (1..=i64::from(days)).rev().map(|k| today - chrono::Duration::days(k)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_orders_error_over_fail_over_warn() {
        assert_eq!(CheckStatus::Pass.worst(CheckStatus::Warn), CheckStatus::Warn);
        assert_eq!(CheckStatus::Fail.worst(CheckStatus::Warn), CheckStatus::Fail);
        assert_eq!(CheckStatus::Fail.worst(CheckStatus::Error), CheckStatus::Error);
        assert_eq!(CheckStatus::Skipped.worst(CheckStatus::Pass), CheckStatus::Skipped);
        assert!(!CheckStatus::Warn.is_failure() && CheckStatus::Error.is_failure());
    }

    #[test]
    fn kinds_round_trip_and_filters_select_by_prefix() {
        for k in CheckKind::MONITORS {
            assert_eq!(CheckKind::parse(k.as_str()), Some(k));
        }
        let f = CheckFilter { kinds: vec![], select: vec!["volume.google_ads".into()] };
        assert!(f.wants_kind(CheckKind::Volume));
        assert!(!f.wants_kind(CheckKind::Freshness));
        let mut o = CheckOutcome::new(CheckKind::Volume, "volume.google_ads.ad_daily.1", CheckStatus::Pass, "");
        assert!(f.wants(&o));
        o.check_name = "volume.meta_ads.ad_daily.1".into();
        assert!(!f.wants(&o));
    }

    #[test]
    fn complete_days_end_yesterday() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(complete_days(d("2026-06-30"), 3), [d("2026-06-27"), d("2026-06-28"), d("2026-06-29")]);
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(40.0), "40");
        assert_eq!(num(f64::INFINITY), "∞");
    }
}
