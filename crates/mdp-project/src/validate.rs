//! Checks across fields, after parsing: each problem becomes a [`Diagnostic`], and all are reported at
//! once. Pure: no files, no environment.

use std::collections::BTreeMap;

use crate::config::{ProjectConfig, SourceConfig};
use crate::diagnostic::{closest, Diagnostic, DiagnosticBuilder};
use crate::locate::Outline;
use crate::target::{PostgresUrl, TargetConfig};

/// The range accepted for `lookback_days`: re-reading more than about 13 months is a backfill, not a
/// look-back, and most platforms keep no more history than that at daily grain.
pub const LOOKBACK_DAYS_RANGE: std::ops::RangeInclusive<u32> = 0..=400;

pub(crate) fn validate(
    config: &ProjectConfig,
    raw_text: &str,
    outline: &Outline,
    diagnostics: &DiagnosticBuilder<'_>,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    validate_warehouse(config, raw_text, outline, diagnostics, &mut problems);
    validate_source_names(&config.sources, outline, diagnostics, &mut problems);
    for (index, source) in config.sources.iter().enumerate() {
        validate_source(index, source, diagnostics, &mut problems);
    }
    if let Some(alerts) = &config.alerts {
        crate::alerts::validate_alerts(alerts, raw_text, outline, diagnostics, &mut problems);
    }
    if let Some(lineage) = &config.lineage {
        crate::alerts::validate_lineage(lineage, diagnostics, &mut problems);
    }
    if let Some(checks) = &config.checks {
        crate::checks::validate(checks, &config.sources, diagnostics, &mut problems);
    }
    problems.sort_by_key(|problem| (problem.line, problem.column));
    problems
}

fn validate_warehouse(
    config: &ProjectConfig,
    raw_text: &str,
    outline: &Outline,
    diagnostics: &DiagnosticBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let warehouse = &config.warehouse;
    let names: Vec<&str> = warehouse.targets.keys().map(|name| name.as_str()).collect();
    if names.is_empty() {
        problems.push(diagnostics.at_key(
            "warehouse.targets",
            "define at least one target, e.g. `local: { type: duckdb, path: warehouse.duckdb }`",
        ));
    } else if !warehouse.targets.contains_key(warehouse.default.as_str()) {
        let suggestion = closest(warehouse.default.as_str(), names.iter().copied())
            .map(|name| format!("did you mean '{name}'? "))
            .unwrap_or_default();
        problems.push(diagnostics.at_key(
            "warehouse.default",
            format!("no target named '{}'; {suggestion}the targets are: {}", warehouse.default, names.join(", ")),
        ));
    }
    for (name, target) in &warehouse.targets {
        let TargetConfig::Postgres(postgres) = target else {
            continue;
        };
        let key = format!("warehouse.targets.{name}.url");
        let Some(url) = PostgresUrl::parse(&postgres.url) else {
            // Never echo the url: it may hold a password.
            problems.push(diagnostics.at_key(key, "expected a url such as postgres://user@host:5432/database"));
            continue;
        };
        if postgres.password.is_some() && url.user.is_none() {
            problems.push(diagnostics.at_key(
                key.clone(),
                "a password is configured but the url names no user: write postgres://USER@host/database",
            ));
        }
        // A password typed into mdp.yml would be committed; one from `${VAR}` is fine.
        let written_value =
            outline.find(&key).and_then(|position| raw_text.lines().nth(position.line - 1)).unwrap_or_default();
        if url.password.is_some() && !written_value.contains("${") {
            problems.push(diagnostics.at_key(
                key,
                "the url contains a password written inline; move it to `password: { env: PGPASSWORD }`, \
                 or put the whole url in an environment variable: `url: ${MDP_POSTGRES_URL}`",
            ));
        }
    }
}

fn validate_source_names(
    sources: &[SourceConfig],
    outline: &Outline,
    diagnostics: &DiagnosticBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let mut indexes_by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, source) in sources.iter().enumerate() {
        indexes_by_name.entry(source.name.as_str()).or_default().push(index);
    }
    for (name, indexes) in indexes_by_name.into_iter().filter(|(_, indexes)| indexes.len() > 1) {
        for &index in &indexes {
            let others: Vec<String> =
                indexes.iter().filter(|&&other| other != index).map(|other| format!("sources[{other}]")).collect();
            let key = format!("sources[{index}].name");
            let defaulted = if outline.find(&key).is_none() { " (the default: the platform's name)" } else { "" };
            problems.push(diagnostics.at_key(
                key,
                format!(
                    "duplicate source name '{name}'{defaulted}, also used by {}; give each source a distinct `name:`",
                    others.join(", ")
                ),
            ));
        }
    }
}

fn validate_source(
    index: usize,
    source: &SourceConfig,
    diagnostics: &DiagnosticBuilder<'_>,
    problems: &mut Vec<Diagnostic>,
) {
    let kind = mdp_core::kind(source.platform);
    let key = |field: &str| format!("sources[{index}].{field}");

    if !LOOKBACK_DAYS_RANGE.contains(&source.lookback_days) {
        problems.push(diagnostics.at_key(
            key("lookback_days"),
            format!(
                "expected a number of days between {} and {}, got {}; use `mdp backfill` to reload older data",
                LOOKBACK_DAYS_RANGE.start(),
                LOOKBACK_DAYS_RANGE.end(),
                source.lookback_days
            ),
        ));
    }
    if !(source.base_url.starts_with("https://") || source.base_url.starts_with("http://")) {
        problems.push(diagnostics.at_key(
            key("base_url"),
            format!("expected an http:// or https:// url such as {}, got '{}'", kind.default_base_url, source.base_url),
        ));
    }
    if source.oauth_unsupported {
        problems.push(diagnostics.at_key(
            key("oauth"),
            format!(
                "{} has no token refresh (its access tokens are long-lived); remove `oauth:` and configure `access_token`",
                kind.name()
            ),
        ));
    }
    for (field, url) in
        source.oauth.iter().flat_map(|o| [("token_url", &o.token_url), ("authorize_url", &o.authorize_url)])
    {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            problems.push(
                diagnostics.at_key(
                    key(&format!("oauth.{field}")),
                    format!("expected an http:// or https:// url, got '{url}'"),
                ),
            );
        }
    }
    for error in &source.option_errors {
        problems.push(diagnostics.at_key(key(&format!("options.{}", error.key)), error.message.clone()));
    }
    if source.accounts.iter().any(|account| account.trim().is_empty()) {
        problems.push(diagnostics.at_key(key("accounts"), "account ids cannot be empty"));
    }
    let known_names: Vec<&str> = kind.credentials.iter().map(|credential| credential.name).collect();
    for name in source.credentials.keys() {
        if kind.credential(name).is_none() {
            let suggestion = closest(name, known_names.iter().copied())
                .map(|known| format!("did you mean '{known}'? "))
                .unwrap_or_default();
            problems.push(diagnostics.at_key(
                key(&format!("credentials.{name}")),
                format!(
                    "{} has no credential '{name}'; {suggestion}its credentials are: {}",
                    kind.name(),
                    known_names.join(", ")
                ),
            ));
        }
    }
    if !source.enabled {
        return;
    }
    if source.accounts.is_empty() {
        problems.push(diagnostics.at_key(
            key("accounts"),
            "an enabled source needs at least one account id, e.g. `accounts: [\"1234567890\"]`, or set `enabled: false`",
        ));
    }
    for required in kind.required_credentials() {
        if !source.credentials.contains_key(required.name) {
            problems.push(diagnostics.at_key(
                key("credentials"),
                format!(
                    "{} needs the credential '{}' ({}); add `{}: {{ env: {}_{} }}` under `credentials:`",
                    kind.name(),
                    required.name,
                    required.description,
                    required.name,
                    source.name.as_str().to_ascii_uppercase(),
                    required.name.to_ascii_uppercase(),
                ),
            ));
        }
    }
    match kind.token_grant(|name| source.credentials.contains_key(name)) {
        Err(problem) => problems.push(diagnostics.at_key(key("credentials"), problem)),
        Ok(grant) => {
            let impersonates = source.options.google_ads().is_some_and(|google| google.impersonated_email.is_some());
            if impersonates && grant != Some(mdp_core::TokenGrant::ServiceAccount) {
                problems.push(
                    diagnostics.at_key(
                        key("options"),
                        "impersonated_email is the user a service account acts as: it needs the credential \
                     `service_account_key` (a user's own refresh token already acts as that user); remove it or \
                     configure the key"
                            .to_string(),
                    ),
                );
            }
        }
    }
}
