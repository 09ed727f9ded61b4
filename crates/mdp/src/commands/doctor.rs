//! `mdp doctor`: is this project ready to run, and if not, what to fix.
//!
//! Checks, in order: the project file, the warehouse target and its connection, whether a writer holds
//! the warehouse, the metadata schema's version, and every enabled source's credentials (present or
//! not — a value is never printed). Exits 1 when anything must be fixed, else 75 (as every command
//! does) when a writer holds the warehouse, so a script can wait for it; 0 when all is well.

use std::process::ExitCode;

use anyhow::Result;
use mdp_project::{Project, SecretRef, SourceConfig};
use mdp_warehouse::meta::{current_version, Metadata};
use mdp_warehouse::{connect, Access, ConnectOptions, WarehouseError};

use crate::cli::GlobalArgs;
use crate::context::connect_options;
use crate::EXIT_LOCKED;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    /// Another process is writing to the warehouse: nothing to fix, but not ready either.
    Locked,
    Fail,
}

#[derive(Default)]
struct Report {
    lines: Vec<(Level, String, String)>,
}

impl Report {
    fn add(&mut self, level: Level, what: impl Into<String>, message: impl Into<String>) {
        let (what, message) = (what.into(), message.into());
        let mark = match level {
            Level::Ok => "✓",
            Level::Warn => "!",
            Level::Locked => "⧗",
            Level::Fail => "✗",
        };
        println!("  {mark} {what:<22} {}", message.replace('\n', "\n                           "));
        self.lines.push((level, what, message));
    }
    fn ok(&mut self, what: impl Into<String>, message: impl Into<String>) {
        self.add(Level::Ok, what, message)
    }
    fn warn(&mut self, what: impl Into<String>, message: impl Into<String>) {
        self.add(Level::Warn, what, message)
    }
    fn fail(&mut self, what: impl Into<String>, message: impl Into<String>) {
        self.add(Level::Fail, what, message)
    }
    fn locked(&mut self, what: impl Into<String>, message: impl Into<String>) {
        self.add(Level::Locked, what, message)
    }

    fn finish(&self) -> ExitCode {
        let count = |level| self.lines.iter().filter(|(l, _, _)| *l == level).count();
        let (fails, warns, locked) = (count(Level::Fail), count(Level::Warn), count(Level::Locked));
        println!();
        let warnings = if warns > 0 { format!(", {warns} warning(s)") } else { String::new() };
        if fails > 0 {
            println!("{fails} problem(s) to fix (marked ✗ above)");
            ExitCode::from(1)
        } else if locked > 0 {
            println!(
                "busy: the warehouse is locked by a running writer (marked ⧗ above); {} checks passed{warnings}; \
                 run `mdp doctor` again once it finishes",
                self.lines.len() - warns - locked
            );
            ExitCode::from(EXIT_LOCKED)
        } else {
            println!("healthy: {} checks passed{warnings}", self.lines.len() - warns);
            ExitCode::SUCCESS
        }
    }
}

pub async fn run(global: &GlobalArgs) -> Result<ExitCode> {
    println!("mdp doctor: {}", global.project_dir.display());
    let mut report = Report::default();

    let project = match Project::load(&global.project_dir) {
        Ok(project) => project,
        Err(e) => {
            report.fail("project file", e.to_string());
            return Ok(report.finish());
        }
    };
    let config = &project.config;
    report.ok(
        "project file",
        format!(
            "{} is valid: project '{}', reporting in {} ({})",
            project.file.display(),
            config.name.as_str(),
            config.reporting.currency.as_str(),
            config.reporting.timezone
        ),
    );

    match project.target(global.target.as_deref()) {
        Err(e) => report.fail("warehouse target", e.to_string()),
        Ok((name, target)) => match connect_options(&project, target) {
            Err(e) => report.fail("warehouse target", format!("target '{name}': {e:#}")),
            Ok(options) => check_warehouse(&mut report, name, &options).await,
        },
    }

    if config.sources.is_empty() {
        report.ok("sources", "none configured yet: add one under `sources:` in mdp.yml");
    }
    for source in &config.sources {
        if check_source(&mut report, &project, source) {
            check_token(&mut report, &project, source).await;
        }
    }
    match crate::commands::orchestrate::describe_schedule(&project) {
        None => {}
        Some(Ok(jobs)) => report.ok("schedule", jobs),
        Some(Err(e)) => report.fail("schedule", format!("{e:#}")),
    }
    check_alerts_and_lineage(&mut report, &project);
    Ok(report.finish())
}

/// Notifiers whose url cannot be read are skipped by runs: say so (never showing more of a url than
/// its scheme and host).
fn check_alerts_and_lineage(report: &mut Report, project: &Project) {
    use mdp_project::alerts::{redact_url, NotifierKind, UrlRef};
    for notifier in project.config.alerts.iter().flat_map(|a| &a.notifiers) {
        let what = format!("notifier {}", notifier.name);
        let events: Vec<&str> = notifier.on.iter().map(|e| e.as_str()).collect();
        let kind = match notifier.kind {
            NotifierKind::Webhook => "webhook",
            NotifierKind::Slack => "slack",
            NotifierKind::Command => "command",
        };
        match &notifier.url {
            _ if notifier.kind == NotifierKind::Command => {
                report.ok(what, format!("{kind} `{}` on {}", notifier.command.join(" "), events.join(", ")))
            }
            Some(UrlRef::Plain(url)) => {
                report.ok(what, format!("{kind} to {} on {}", redact_url(url), events.join(", ")))
            }
            Some(UrlRef::Secret(reference)) => match reference.resolve(&project.root) {
                Ok(url) => report.ok(
                    what,
                    format!(
                        "{kind} to {} ({}) on {}",
                        redact_url(url.expose_secret()),
                        reference.describe(),
                        events.join(", ")
                    ),
                ),
                Err(e) => report
                    .warn(what, format!("url: {e}: {}; until then runs skip this notifier", how_to_provide(reference))),
            },
            None => {}
        }
    }
    if let Some(lineage) = &project.config.lineage {
        let mut sinks = Vec::new();
        if let Some(file) = &lineage.file {
            sinks.push(format!("file {}", file.display()));
        }
        if let Some(url) = lineage.post_url() {
            sinks.push(format!("POST {}", redact_url(&url)));
        }
        match &lineage.api_key {
            Some(reference) if reference.resolve(&project.root).is_err() => report.warn(
                "lineage",
                format!(
                    "OpenLineage events to {}; the api key ({}) cannot be read: {}",
                    sinks.join(" and "),
                    reference.describe(),
                    how_to_provide(reference)
                ),
            ),
            _ => report.ok("lineage", format!("OpenLineage events to {}", sinks.join(" and "))),
        }
    }
}

async fn check_warehouse(report: &mut Report, target_name: &str, options: &ConnectOptions) {
    if let ConnectOptions::DuckDb { path, .. } = options {
        if !path.exists() {
            report.ok(
                "warehouse",
                format!(
                    "duckdb {} (target '{target_name}'): not created yet; the first writing command creates it",
                    path.display()
                ),
            );
            report.ok(
                "metadata",
                format!("will be created at version {} (`mdp migrate` does it now)", current_version()),
            );
            return;
        }
    }
    let warehouse = match connect(options, Access::Read).await {
        Ok(opened) => opened.warehouse,
        // DuckDB: a reader cannot open the file while a writer holds it.
        Err(e @ (WarehouseError::Locked { .. } | WarehouseError::LockedUnknownHolder { .. })) => {
            report.locked("warehouse", format!("target '{target_name}': {e}"));
            report.warn("metadata", "not checked: the warehouse cannot be read while a writer holds it");
            return;
        }
        Err(e) => {
            let hint = match options {
                ConnectOptions::DuckDb { .. } => "check the file's permissions, or that it is a DuckDB database",
                ConnectOptions::Postgres { .. } => {
                    "check that the server is running and the target's url (user, host, port, database) is right"
                }
                ConnectOptions::Snowflake { .. } => {
                    "check the target's account, user and credentials (password or private key file), and that the \
                     user may use its database, warehouse and role"
                }
                ConnectOptions::BigQuery { .. } => {
                    "check the target's project and credentials (keyfile, token, or `gcloud auth application-default \
                     login`), and that they may run jobs in the project (roles/bigquery.jobUser) and write its datasets \
                     (roles/bigquery.dataEditor)"
                }
            };
            report.fail("warehouse", format!("target '{target_name}': {e}\n{hint}"));
            return;
        }
    };
    // Postgres: readers connect while a writer runs; ask whether one does.
    match warehouse.check_no_other_writer().await {
        Ok(()) => report.ok("warehouse", format!("{} (target '{target_name}'): connected", warehouse.describe())),
        Err(e @ (WarehouseError::Locked { .. } | WarehouseError::LockedUnknownHolder { .. })) => {
            report.locked("warehouse", format!("{} (target '{target_name}'): connected, but {e}", warehouse.describe()))
        }
        Err(e) => report.warn(
            "warehouse",
            format!(
                "{} (target '{target_name}'): connected; cannot tell whether a writer runs: {e}",
                warehouse.describe()
            ),
        ),
    }
    match Metadata::new(warehouse.as_ref()).version().await {
        Ok(None) => report.ok(
            "metadata",
            format!(
                "schema '{}' not created yet: the first writing command (or `mdp migrate`) creates it",
                warehouse.metadata_schema()
            ),
        ),
        Ok(Some(v)) if v == current_version() => {
            report.ok("metadata", format!("schema '{}' at version {v} (current)", warehouse.metadata_schema()))
        }
        Ok(Some(v)) if v < current_version() => report.warn(
            "metadata",
            format!(
                "schema at version {v}, this mdp writes {}: the next writing command (or `mdp migrate`) upgrades it",
                current_version()
            ),
        ),
        Ok(Some(v)) => report.fail(
            "metadata",
            format!("schema at version {v}, newer than this mdp knows ({}): upgrade mdp", current_version()),
        ),
        Err(e) => report.fail("metadata", format!("cannot read the metadata version: {e}")),
    }
    if let Err(e) = warehouse.close().await {
        report.warn("warehouse", format!("closing the connection failed: {e}"));
    }
}

/// What to do to provide a secret.
fn how_to_provide(reference: &SecretRef) -> String {
    match reference {
        SecretRef::Env(name) => format!("export {name}=<value> before running mdp"),
        SecretRef::File(path) => format!("write the value into {} (relative to the project)", path.display()),
    }
}

/// Whether the source's credentials are present; says what is missing. Returns whether every
/// configured credential could be read (then its token is checked).
fn check_source(report: &mut Report, project: &Project, source: &SourceConfig) -> bool {
    let what = format!("source {}", source.name.as_str());
    if !source.enabled {
        report.ok(what, format!("{}: disabled (credentials not checked)", source.platform));
        return false;
    }
    let kind = mdp_sources::kind(source.platform);
    let mut present = Vec::new();
    let mut readable = true;
    // On a platform that refreshes tokens, the unused alternative (a fixed token, or the refresh set) is
    // not worth a line.
    let alternatives = [
        mdp_core::ACCESS_TOKEN,
        mdp_core::CLIENT_ID,
        mdp_core::CLIENT_SECRET,
        mdp_core::REFRESH_TOKEN,
        mdp_core::SERVICE_ACCOUNT_KEY,
    ];
    for spec in kind.credentials {
        let label = if spec.required { spec.name.to_string() } else { format!("{} (optional)", spec.name) };
        match source.credentials.get(spec.name) {
            None if kind.oauth.is_some() && alternatives.contains(&spec.name) => {}
            None if spec.required => report.fail(
                &what,
                format!(
                    "credential {label} is not configured: add `{}: {{ env: VAR_NAME }}` under credentials\n({})",
                    spec.name, spec.description
                ),
            ),
            None => report.ok(&what, format!("credential {label} not configured")),
            Some(reference) => match reference.resolve(&project.root) {
                Ok(_) => present.push(format!("{} ({})", spec.name, reference.describe())),
                Err(e) if spec.required || alternatives.contains(&spec.name) => {
                    readable = false;
                    report.fail(&what, format!("credential {label}: {e}: {}", how_to_provide(reference)))
                }
                Err(e) => {
                    readable = false;
                    report.warn(&what, format!("credential {label}: {e}: {}", how_to_provide(reference)))
                }
            },
        }
    }
    // The API version watch (the checks repeat it after every pipeline).
    let today = std::env::var("MDP_TODAY")
        .ok()
        .and_then(|day| day.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().date_naive());
    match kind.version_watch(&source.api_version, today) {
        mdp_core::VersionWatch::Current { sunset } => report.ok(
            &what,
            match sunset {
                Some(sunset) => format!("API version {} is served until {sunset}", source.api_version),
                None => format!("API version {}: no sunset announced", source.api_version),
            },
        ),
        mdp_core::VersionWatch::Sunset { .. } => {
            report.fail(&what, kind.version_warning(&source.api_version, today).unwrap_or_default())
        }
        mdp_core::VersionWatch::Soon { .. } | mdp_core::VersionWatch::Unknown => {
            report.warn(&what, kind.version_warning(&source.api_version, today).unwrap_or_default())
        }
    }
    if !present.is_empty() {
        report.ok(
            &what,
            format!(
                "{}, {} account(s): credentials present: {}",
                source.platform,
                source.accounts.len(),
                present.join(", ")
            ),
        );
    }
    readable
}

/// The access token's kind and expiry: a refresh token is exchanged once (as a run would), so a revoked
/// one shows here rather than at 3 a.m.; a fixed token's known lifetime is stated.
/// Days before a Meta token's expiry from which `mdp doctor` warns (a user token lives 60 days).
const META_TOKEN_WARNING_DAYS: i64 = 14;

/// A Meta access token as Meta describes it (`debug_token`): a system user's that never expires is
/// fine; one that expires warns two weeks ahead; an invalid or expired one fails.
async fn check_meta_token(report: &mut Report, what: &str, settings: mdp_sources::SourceSettings) {
    let describe = async {
        let source = mdp_sources::meta_ads::MetaAds::new(settings).map_err(|e| e.to_string())?;
        let http = mdp_sources::http::HttpDriver::new(mdp_sources::http::RetryPolicy::default())?;
        source.token_info(&mdp_sources::ReadContext { http }).await.map_err(|e| e.to_string())
    };
    let info = match describe.await {
        Ok(info) => info,
        Err(e) => return report.warn(what, format!("access token: Meta's debug_token could not describe it ({e})")),
    };
    let kind = info.kind.as_deref().unwrap_or("unknown kind").to_lowercase().replace('_', " ");
    let now = chrono::Utc::now();
    match info.expires_at {
        _ if !info.is_valid => report.fail(
            what,
            format!(
                "access token: Meta says this {kind} token is not valid (expired or revoked): make a new one, \
                     preferably a system user's (Business Settings → System users)"
            ),
        ),
        None => report.ok(what, format!("access token: a {kind} token that does not expire")),
        Some(at) => {
            let days = (at - now).num_days();
            let message =
                format!("access token: a {kind} token that expires {} ({days} days)", at.format("%Y-%m-%d %H:%M UTC"));
            if days < META_TOKEN_WARNING_DAYS {
                report.warn(what, format!("{message}: renew it, or use a system user's token that does not expire"))
            } else {
                report.ok(what, message)
            }
        }
    }
}

async fn check_token(report: &mut Report, project: &Project, source: &SourceConfig) {
    let what = format!("source {}", source.name.as_str());
    let kind = mdp_sources::kind(source.platform);
    let settings = match crate::commands::ingest::settings(project, source) {
        Ok(settings) => settings,
        Err(e) => return report.fail(&what, format!("{e:#}")),
    };
    let tokens = match mdp_sources::auth::OAuthTokens::from_settings(&settings) {
        Ok(tokens) => tokens,
        Err(e) => return report.fail(&what, e.to_string()),
    };
    let Some(tokens) = tokens else {
        let lifetime = kind.oauth.map(|oauth| format!("; {}", oauth.lifetimes)).unwrap_or_default();
        let message = format!("access token: a fixed `access_token`{lifetime}");
        if source.platform == mdp_core::Platform::MetaAds {
            return check_meta_token(report, &what, settings).await;
        }
        if source.platform == mdp_core::Platform::GoogleAds {
            // An hour is shorter than any schedule.
            return report.warn(
                &what,
                format!(
                    "{message}: scheduled runs need client_id, client_secret and refresh_token (see `mdp auth`), or \
                     a service_account_key"
                ),
            );
        }
        return report.ok(&what, message);
    };
    match tokens.check().await {
        Ok(expires_at) => {
            let expiry = match expires_at {
                Some(at) => format!("the access token expires {}", at.format("%Y-%m-%d %H:%M UTC")),
                None => "the platform gave no expiry".to_string(),
            };
            report.ok(
                &what,
                format!(
                    "access token: {} at {}; {expiry}",
                    tokens.grant_description(),
                    mdp_project::alerts::redact_url(tokens.token_url())
                ),
            )
        }
        Err(e) => report.fail(&what, format!("access token: {e}")),
    }
}
