//! `mdp check`: run the monitors (freshness, volume, spend anomalies, zero spend, schema drift, KPI
//! targets) in a run session, record every result in `check_results`, print them.
//!
//! Exit code 1 when any check fails or errors; warnings and skipped checks exit 0.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use mdp_monitor::checks::{
    self, CheckContext, CheckFilter, CheckKind, CheckOutcome, CheckStatus, Marts, SourceInfo, StreamInfo,
};
use mdp_sources::StreamKind;

use crate::cli::{CheckArgs, GlobalArgs, TransformArgs};
use crate::commands::transform;
use crate::context::ProjectContext;

/// What the monitors need to know about the project: its sources' accounts and raw tables, where
/// the marts are (when the transform project loads), the reporting currency and time zone.
pub(crate) fn check_context(
    context: &ProjectContext,
    marts: Option<Marts>,
    today: Option<chrono::NaiveDate>,
) -> CheckContext {
    let config = &context.project.config;
    let sources = config
        .sources
        .iter()
        .filter(|s| s.enabled)
        .map(|s| source_info(s.name.as_str(), &s.options, &s.api_version, s.accounts.clone()))
        .collect::<Vec<_>>();
    CheckContext {
        config: config.checks.clone().unwrap_or_default(),
        sources,
        marts,
        today,
        reporting_timezone: config.reporting.timezone,
        reporting_currency: config.reporting.currency.to_string(),
        now: chrono::Utc::now().naive_utc(),
    }
}

/// A source as the monitors see it: its accounts, and the raw table of each of its platform's streams.
pub(crate) fn source_info(
    name: &str,
    options: &mdp_core::SourceOptions,
    api_version: &str,
    accounts: Vec<String>,
) -> SourceInfo {
    let raw = |stream: &str| mdp_orchestrator::ingest::raw_table(name, stream);
    let platform = options.platform();
    SourceInfo {
        name: name.to_string(),
        platform: platform.as_str().to_string(),
        api_version: api_version.to_string(),
        conversion_definition: options.conversion_definition(),
        accounts,
        streams: mdp_sources::kind(platform)
            .streams
            .iter()
            .map(|spec| StreamInfo {
                name: spec.name.to_string(),
                daily: spec.kind == StreamKind::Daily,
                table: raw(spec.name),
            })
            .collect(),
        accounts_table: Some(raw(mdp_sources::source::ACCOUNTS.name)),
    }
}

pub async fn run(global: &GlobalArgs, args: CheckArgs) -> Result<ExitCode> {
    let clock = Instant::now();
    let mut kinds = Vec::new();
    for k in &args.kinds {
        match CheckKind::parse(k).filter(|k| CheckKind::MONITORS.contains(k)) {
            Some(kind) => kinds.push(kind),
            None => bail!(
                "--kind {k}: expected one of {} (test and reconciliation results come from `mdp build` / `mdp test`)",
                CheckKind::MONITORS.map(CheckKind::as_str).join(", ")
            ),
        }
    }
    let filter = CheckFilter { kinds, select: args.select.clone() };
    let context = ProjectContext::load(global)?;
    let marts = if context.project.config.sources.iter().any(|s| s.enabled) {
        match transform::load(global, &TransformArgs::default()) {
            Ok(parsed) => Marts::from_parsed(&parsed),
            Err(e) => {
                eprintln!("warning: cannot load the models ({e:#}); the spend and KPI checks are skipped");
                None
            }
        }
    } else {
        None
    };
    let ctx = check_context(&context, marts, args.today);
    let session = context.start_run("check").await?;
    let run_id = session.run_id.to_string();
    let outcome = async {
        let outcomes = checks::run_checks(session.warehouse.as_ref(), &ctx, &filter).await?;
        checks::record(session.warehouse.as_ref(), &run_id, &outcomes)
            .await
            .context("cannot record the check results")?;
        anyhow::Ok(outcomes)
    }
    .await;
    let failed = outcome.as_ref().map(|o| o.iter().filter(|c| c.status.is_failure()).count()).unwrap_or(0);
    let error = match &outcome {
        Err(e) => Some(format!("{e:#}")),
        Ok(_) if failed > 0 => Some(format!("{failed} check(s) failed")),
        Ok(_) => None,
    };
    // Records the outcome, turns this run's results into incidents (notifying once per incident and
    // once on recovery), then releases the lock.
    crate::monitoring::finish_run(session, &context.project, error.as_deref())
        .await
        .context("cannot record the run's outcome")?;
    let outcomes = outcome?;
    let seconds = clock.elapsed().as_secs_f64();
    if args.json {
        let json = serde_json::json!({
            "run_id": run_id,
            "seconds": seconds,
            "summary": counts(&outcomes).into_iter().collect::<std::collections::BTreeMap<_, _>>(),
            "checks": outcomes,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        print_table(&outcomes);
        let summary: Vec<String> = counts(&outcomes).into_iter().map(|(k, n)| format!("{n} {k}")).collect();
        eprintln!(
            "\n{} checks: {} in {seconds:.2}s (run {run_id}; results in check_results)",
            outcomes.len(),
            summary.join(", ")
        );
        if outcomes.is_empty() {
            eprintln!("nothing matched the filters: see `mdp check --help`");
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn counts(outcomes: &[CheckOutcome]) -> Vec<(&'static str, usize)> {
    [CheckStatus::Pass, CheckStatus::Warn, CheckStatus::Fail, CheckStatus::Error, CheckStatus::Skipped]
        .into_iter()
        .map(|s| (s.as_str(), outcomes.iter().filter(|o| o.status == s).count()))
        .collect()
}

/// One line per check (status, name, observed vs expected); the message under each that is not a pass.
fn print_table(outcomes: &[CheckOutcome]) {
    let width = outcomes.iter().map(|o| o.check_name.len()).max().unwrap_or(10).min(60);
    println!("{:<7} {:<width$}  OBSERVED  (EXPECTED)", "STATUS", "CHECK");
    for o in outcomes {
        let observed = o.observed.as_deref().unwrap_or("-");
        let expected = o.expected.as_deref().map(|e| format!("  ({e})")).unwrap_or_default();
        println!("{:<7} {:<width$}  {observed}{expected}", o.status.as_str().to_uppercase(), o.check_name);
        if o.status != CheckStatus::Pass {
            println!("{:<7} {:<width$}  {}", "", "", o.message);
            if let Some(q) = o.sample_query.as_deref().filter(|_| o.status.rank() > 0) {
                // One line, for `mdp sql '…'` (`--json` has every query).
                println!("{:<7} {:<width$}  rows: {}", "", "", q.split_whitespace().collect::<Vec<_>>().join(" "));
            }
        }
    }
}
