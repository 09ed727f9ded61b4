//! The `checks:` section of `mdp.yml`: the settings of the monitors `mdp check` runs.
//!
//! Every key has a default, so a project without the section gets freshness, volume, spend anomaly,
//! zero-spend and schema-drift monitors with sensible thresholds, and no KPI targets:
//!
//! ```yaml
//! checks:
//!   freshness:
//!     warn_after_days: 1        # reporting date lag: warn when the latest row is more than 1 day behind the account's today
//!     error_after_days: 3
//!     warn_after_hours: 36      # load age: hours since the stream last loaded
//!     error_after_hours: 72
//!     overrides:
//!       - { source: linkedin_ads, warn_after_days: 3, error_after_days: 5 }
//!   volume: { weeks: 4, days: 7, warn: 0.5, fail: 0.8, min_history: 2 }
//!   spend_anomaly: { window_days: 28, days: 7, warn: 3.5, fail: 5.0, min_history: 14 }
//!   zero_spend: { window_days: 28, days: 7, min_share: 0.8, min_history: 14 }
//!   schema_drift: { enabled: true, severity: warn }
//!   kpi_targets:
//!     - { name: cpa_google, metric: cpa, max: 40, level: campaign, platform: google_ads, window_days: 7 }
//!     - { name: roas_floor, metric: roas, min: 2 }
//! ```

use mdp_core::Platform;
use serde::Deserialize;

use crate::config::SourceConfig;
use crate::diagnostic::{Diagnostic, DiagnosticBuilder};

/// Settings of the monitors `mdp check` runs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksConfig {
    /// How far behind each daily stream may be (reporting date and load time).
    #[serde(default)]
    pub freshness: FreshnessConfig,
    /// Rows per stream, account and reporting day against the same weekday of the trailing weeks.
    #[serde(default)]
    pub volume: VolumeConfig,
    /// Robust z-score of each account's daily spend against its trailing window.
    #[serde(default)]
    pub spend_anomaly: SpendAnomalyConfig,
    /// Accounts that usually spend and spent nothing on a day.
    #[serde(default)]
    pub zero_spend: ZeroSpendConfig,
    /// Fields that appear in or vanish from the raw payloads compared with earlier loads.
    #[serde(default)]
    pub schema_drift: SchemaDriftConfig,
    /// KPI targets (CPA at most 40, ROAS at least 2, …), reported as warnings by default.
    #[serde(default)]
    pub kpi_targets: Vec<KpiTarget>,
}

/// How a breach is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Warn,
    Fail,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warn => "warn",
            Severity::Fail => "fail",
        }
    }
}

/// Freshness thresholds; `overrides` replace some of them for a source or one of its streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Warn when the latest reporting date is more than this many days behind the account's today (default 1).
    #[serde(default = "default_warn_days")]
    pub warn_after_days: u32,
    /// Fail when it is more than this many days behind (default 3).
    #[serde(default = "default_error_days")]
    pub error_after_days: u32,
    /// Warn when the stream last loaded more than this many hours ago (default 36).
    #[serde(default = "default_warn_hours")]
    pub warn_after_hours: u32,
    /// Fail when it last loaded more than this many hours ago (default 72).
    #[serde(default = "default_error_hours")]
    pub error_after_hours: u32,
    /// Per source (and optionally per stream) thresholds; the most specific match wins.
    #[serde(default)]
    pub overrides: Vec<FreshnessOverride>,
}

impl Default for FreshnessConfig {
    fn default() -> Self {
        FreshnessConfig {
            enabled: true,
            warn_after_days: default_warn_days(),
            error_after_days: default_error_days(),
            warn_after_hours: default_warn_hours(),
            error_after_hours: default_error_hours(),
            overrides: Vec::new(),
        }
    }
}

/// Freshness thresholds for one source, or one stream of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessOverride {
    /// The source's `name` (default: its platform).
    pub source: String,
    /// A stream of that source, e.g. `ad_daily` (default: all its streams).
    #[serde(default)]
    pub stream: Option<String>,
    #[serde(default)]
    pub warn_after_days: Option<u32>,
    #[serde(default)]
    pub error_after_days: Option<u32>,
    #[serde(default)]
    pub warn_after_hours: Option<u32>,
    #[serde(default)]
    pub error_after_hours: Option<u32>,
}

/// Freshness thresholds that apply to one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FreshnessThresholds {
    pub warn_after_days: u32,
    pub error_after_days: u32,
    pub warn_after_hours: u32,
    pub error_after_hours: u32,
}

impl FreshnessConfig {
    /// The thresholds of `source`'s `stream`: the defaults, then the source's override, then the stream's.
    pub fn thresholds(&self, source: &str, stream: &str) -> FreshnessThresholds {
        let mut t = FreshnessThresholds {
            warn_after_days: self.warn_after_days,
            error_after_days: self.error_after_days,
            warn_after_hours: self.warn_after_hours,
            error_after_hours: self.error_after_hours,
        };
        let source_wide = self.overrides.iter().filter(|o| o.source == source && o.stream.is_none());
        let stream_specific =
            self.overrides.iter().filter(|o| o.source == source && o.stream.as_deref() == Some(stream));
        for o in source_wide.chain(stream_specific) {
            t.warn_after_days = o.warn_after_days.unwrap_or(t.warn_after_days);
            t.error_after_days = o.error_after_days.unwrap_or(t.error_after_days);
            t.warn_after_hours = o.warn_after_hours.unwrap_or(t.warn_after_hours);
            t.error_after_hours = o.error_after_hours.unwrap_or(t.error_after_hours);
        }
        t
    }
}

/// Volume bands: the relative deviation of a day's rows from the same weekday's baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Trailing weeks whose same weekday forms the baseline (default 4).
    #[serde(default = "default_weeks")]
    pub weeks: u32,
    /// Complete days checked, ending yesterday (default 7; today is still loading).
    #[serde(default = "default_days")]
    pub days: u32,
    /// Warn at this relative deviation from the baseline (default 0.5: half or one and a half times).
    #[serde(default = "default_volume_warn")]
    pub warn: f64,
    /// Fail at this relative deviation (default 0.8).
    #[serde(default = "default_volume_fail")]
    pub fail: f64,
    /// Same-weekday days of history needed before a day is judged (default 2).
    #[serde(default = "default_volume_min_history")]
    pub min_history: u32,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        VolumeConfig {
            enabled: true,
            weeks: default_weeks(),
            days: default_days(),
            warn: default_volume_warn(),
            fail: default_volume_fail(),
            min_history: default_volume_min_history(),
        }
    }
}

/// Spend anomalies: robust z = 0.6745·(x − median)/MAD of an account's daily spend over its trailing window.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendAnomalyConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Days before each checked day that form its baseline (default 28).
    #[serde(default = "default_window")]
    pub window_days: u32,
    /// Complete days checked, ending yesterday (default 7).
    #[serde(default = "default_days")]
    pub days: u32,
    /// Warn at |z| ≥ this (default 3.5, Iglewicz and Hoaglin's outlier bound).
    #[serde(default = "default_z_warn")]
    pub warn: f64,
    /// Fail at |z| ≥ this (default 5).
    #[serde(default = "default_z_fail")]
    pub fail: f64,
    /// Days of history in the window needed before a day is judged (default 14).
    #[serde(default = "default_min_history")]
    pub min_history: u32,
}

impl Default for SpendAnomalyConfig {
    fn default() -> Self {
        SpendAnomalyConfig {
            enabled: true,
            window_days: default_window(),
            days: default_days(),
            warn: default_z_warn(),
            fail: default_z_fail(),
            min_history: default_min_history(),
        }
    }
}

/// Zero-spend days of accounts that usually spend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroSpendConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Days before each checked day looked at (default 28).
    #[serde(default = "default_window")]
    pub window_days: u32,
    /// Complete days checked, ending yesterday (default 7).
    #[serde(default = "default_days")]
    pub days: u32,
    /// An account "usually spends" when it spent on at least this share of its trailing days (default 0.8).
    #[serde(default = "default_min_share")]
    pub min_share: f64,
    /// Days of history needed before a day is judged (default 14).
    #[serde(default = "default_min_history")]
    pub min_history: u32,
    /// How a zero-spend day is reported (default fail: money stopped flowing, or data is missing).
    #[serde(default = "default_fail")]
    pub severity: Severity,
}

impl Default for ZeroSpendConfig {
    fn default() -> Self {
        ZeroSpendConfig {
            enabled: true,
            window_days: default_window(),
            days: default_days(),
            min_share: default_min_share(),
            min_history: default_min_history(),
            severity: default_fail(),
        }
    }
}

/// Schema drift of the raw payloads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaDriftConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How drift is reported (default warn: the payload keeps every field, nothing is lost).
    #[serde(default)]
    pub severity: Severity,
}

impl Default for SchemaDriftConfig {
    fn default() -> Self {
        SchemaDriftConfig { enabled: true, severity: Severity::Warn }
    }
}

/// A KPI the marts can compute, from summed components in the reporting currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KpiMetric {
    /// spend / conversions.
    Cpa,
    /// conversion value / spend.
    Roas,
    /// clicks / impressions.
    Ctr,
    /// spend / clicks.
    Cpc,
    /// spend / impressions × 1000.
    Cpm,
    /// conversions / clicks.
    ConversionRate,
}

impl KpiMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            KpiMetric::Cpa => "cpa",
            KpiMetric::Roas => "roas",
            KpiMetric::Ctr => "ctr",
            KpiMetric::Cpc => "cpc",
            KpiMetric::Cpm => "cpm",
            KpiMetric::ConversionRate => "conversion_rate",
        }
    }

    /// Whether the KPI is an amount of money (in the reporting currency).
    pub fn is_money(self) -> bool {
        matches!(self, KpiMetric::Cpa | KpiMetric::Cpc | KpiMetric::Cpm)
    }
}

/// The grain a KPI target is judged at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KpiLevel {
    #[default]
    Campaign,
    Account,
    Platform,
}

impl KpiLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            KpiLevel::Campaign => "campaign",
            KpiLevel::Account => "account",
            KpiLevel::Platform => "platform",
        }
    }
}

/// One KPI target: each campaign (account, platform) whose KPI over the window is above `max` or
/// below `min` breaches it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KpiTarget {
    /// Unique among targets (default: `<metric>_<level>[_<platform>]`).
    #[serde(default)]
    pub name: Option<String>,
    pub metric: KpiMetric,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub level: KpiLevel,
    /// Only this platform's rows (default: every platform).
    #[serde(default)]
    pub platform: Option<Platform>,
    /// Complete days summed, ending yesterday (default 7).
    #[serde(default = "default_days")]
    pub window_days: u32,
    /// How a breach is reported (default warn).
    #[serde(default)]
    pub severity: Severity,
}

impl KpiTarget {
    /// The target's name, or the default made of metric, level and platform.
    pub fn display_name(&self) -> String {
        match &self.name {
            Some(name) => name.clone(),
            None => {
                let mut name = format!("{}_{}", self.metric.as_str(), self.level.as_str());
                if let Some(p) = self.platform {
                    name.push('_');
                    name.push_str(p.as_str());
                }
                name
            }
        }
    }
}

fn yes() -> bool {
    true
}
fn default_warn_days() -> u32 {
    1
}
fn default_error_days() -> u32 {
    3
}
fn default_warn_hours() -> u32 {
    36
}
fn default_error_hours() -> u32 {
    72
}
fn default_weeks() -> u32 {
    4
}
fn default_days() -> u32 {
    7
}
fn default_volume_warn() -> f64 {
    0.5
}
fn default_volume_fail() -> f64 {
    0.8
}
fn default_volume_min_history() -> u32 {
    2
}
fn default_window() -> u32 {
    28
}
fn default_z_warn() -> f64 {
    3.5
}
fn default_z_fail() -> f64 {
    5.0
}
fn default_min_history() -> u32 {
    14
}
fn default_min_share() -> f64 {
    0.8
}
fn default_fail() -> Severity {
    Severity::Fail
}

/// Cross-field checks of the `checks:` section.
pub(crate) fn validate(
    checks: &ChecksConfig,
    sources: &[SourceConfig],
    diagnostics: &DiagnosticBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let mut push = |key: String, message: String| problems.push(diagnostics.at_key(key, message));
    let f = &checks.freshness;
    let pair = |warn: u32, error: u32, what: &str| {
        (warn > error).then(|| {
            format!("warn_after_{what} ({warn}) is greater than error_after_{what} ({error}); warn must come first")
        })
    };
    if let Some(m) = pair(f.warn_after_days, f.error_after_days, "days") {
        push("checks.freshness.warn_after_days".into(), m);
    }
    if let Some(m) = pair(f.warn_after_hours, f.error_after_hours, "hours") {
        push("checks.freshness.warn_after_hours".into(), m);
    }
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    for (i, o) in f.overrides.iter().enumerate() {
        let key = format!("checks.freshness.overrides[{i}]");
        if !names.contains(&o.source.as_str()) {
            push(
                format!("{key}.source"),
                format!("no source named '{}'; the sources are: {}", o.source, names.join(", ")),
            );
        } else if let Some(stream) = &o.stream {
            let source = sources.iter().find(|s| s.name.as_str() == o.source).expect("found above");
            let streams: Vec<&str> = mdp_core::kind(source.platform)
                .streams
                .iter()
                .filter(|s| s.kind == mdp_core::StreamKind::Daily)
                .map(|s| s.name)
                .collect();
            if !streams.contains(&stream.as_str()) {
                push(
                    format!("{key}.stream"),
                    format!(
                        "source '{}' has no daily stream '{stream}'; its daily streams are: {}",
                        o.source,
                        streams.join(", ")
                    ),
                );
            }
        }
        let t = f.thresholds(&o.source, o.stream.as_deref().unwrap_or(""));
        if let Some(m) = pair(t.warn_after_days, t.error_after_days, "days") {
            push(format!("{key}.warn_after_days"), m);
        }
        if let Some(m) = pair(t.warn_after_hours, t.error_after_hours, "hours") {
            push(format!("{key}.warn_after_hours"), m);
        }
    }

    let v = &checks.volume;
    if !(1..=52).contains(&v.weeks) {
        push("checks.volume.weeks".into(), format!("expected 1 to 52 weeks, got {}", v.weeks));
    }
    check_days(&mut push, "checks.volume.days", v.days);
    check_band(&mut push, "checks.volume", v.warn, v.fail, "a relative deviation such as 0.5 (50%)");
    if v.min_history == 0 || v.min_history > v.weeks {
        push(
            "checks.volume.min_history".into(),
            format!("expected 1 to `weeks` ({}) same-weekday days, got {}", v.weeks, v.min_history),
        );
    }

    let s = &checks.spend_anomaly;
    check_window(&mut push, "checks.spend_anomaly", s.window_days, s.min_history);
    check_days(&mut push, "checks.spend_anomaly.days", s.days);
    check_band(&mut push, "checks.spend_anomaly", s.warn, s.fail, "a robust z-score such as 3.5");

    let z = &checks.zero_spend;
    check_window(&mut push, "checks.zero_spend", z.window_days, z.min_history);
    check_days(&mut push, "checks.zero_spend.days", z.days);
    if !(z.min_share > 0.0 && z.min_share <= 1.0) {
        push(
            "checks.zero_spend.min_share".into(),
            format!("expected a share of days above 0 and at most 1 (e.g. 0.8), got {}", z.min_share),
        );
    }

    let mut seen = std::collections::BTreeMap::new();
    for (i, t) in checks.kpi_targets.iter().enumerate() {
        let key = format!("checks.kpi_targets[{i}]");
        match (t.min, t.max) {
            (None, None) => push(key.clone(), "give `min`, `max` or both, e.g. `{ metric: cpa, max: 40 }`".into()),
            (Some(min), Some(max)) if min > max => {
                push(format!("{key}.min"), format!("min ({min}) is greater than max ({max}): nothing can pass"))
            }
            _ => {}
        }
        for (field, value) in [("min", t.min), ("max", t.max)] {
            if value.is_some_and(|v| !v.is_finite() || v < 0.0) {
                push(format!("{key}.{field}"), format!("expected a number ≥ 0, got {}", value.unwrap_or_default()));
            }
        }
        check_days(&mut push, &format!("{key}.window_days"), t.window_days);
        if let Some(p) = t.platform {
            if !sources.iter().any(|s| s.platform == p && s.enabled) {
                push(format!("{key}.platform"), format!("no enabled source reads {}", p.as_str()));
            }
        }
        let name = t.display_name();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            push(format!("{key}.name"), format!("expected letters, digits, `_` or `-`, got '{name}'"));
        }
        if let Some(first) = seen.insert(name.clone(), i) {
            push(
                format!("{key}.name"),
                format!("duplicate KPI target name '{name}' (also checks.kpi_targets[{first}]); give each a distinct `name:`"),
            );
        }
    }
}

fn check_days(push: &mut impl FnMut(String, String), key: &str, days: u32) {
    if !(1..=366).contains(&days) {
        push(key.to_string(), format!("expected 1 to 366 days, got {days}"));
    }
}

fn check_window(push: &mut impl FnMut(String, String), key: &str, window: u32, min_history: u32) {
    if !(2..=366).contains(&window) {
        push(format!("{key}.window_days"), format!("expected 2 to 366 days, got {window}"));
    } else if min_history == 0 || min_history > window {
        push(
            format!("{key}.min_history"),
            format!("expected 1 to `window_days` ({window}) days of history, got {min_history}"),
        );
    }
}

fn check_band(push: &mut impl FnMut(String, String), key: &str, warn: f64, fail: f64, what: &str) {
    if !(warn.is_finite() && warn > 0.0) {
        push(format!("{key}.warn"), format!("expected {what}, got {warn}"));
    }
    if !(fail.is_finite() && fail > 0.0) {
        push(format!("{key}.fail"), format!("expected {what}, got {fail}"));
    } else if warn > fail {
        push(format!("{key}.warn"), format!("warn ({warn}) is greater than fail ({fail}); warn must come first"));
    }
}
