//! `mdp ingest`: read the enabled sources into the raw layer.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use mdp_orchestrator::ingest::{Ingest, IngestEvent, IngestObserver, IngestOptions, IngestReport, SourceJob};
use mdp_orchestrator::pipeline::IngestTask;
use mdp_project::{Project, SecretRef, SourceConfig};
use mdp_sources::http::{HttpDriver, RetryPolicy};
use mdp_sources::{Credential, ReadContext, SourceSettings};

use crate::cli::{GlobalArgs, IngestArgs};
use crate::context::ProjectContext;
use crate::monitoring;

pub async fn run(global: &GlobalArgs, args: IngestArgs) -> Result<ExitCode> {
    let context = ProjectContext::load(global)?;
    let jobs = jobs(&context.project, &args.sources)?;
    if jobs.is_empty() {
        bail!(
            "no enabled sources in {}: add one under `sources:` (or set `enabled: true`)",
            context.project.file.display()
        );
    }
    if let (Some(from), Some(to)) = (args.from, args.to) {
        anyhow::ensure!(from <= to, "--from {from} is after --to {to}");
    }
    for account in &args.accounts {
        if !jobs.iter().any(|j| j.source.settings().accounts.contains(account)) {
            bail!("--account {account}: no selected source lists this account in mdp.yml");
        }
    }
    let http =
        HttpDriver::new(RetryPolicy::default()).map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    let ctx = ReadContext { http: http.clone() };
    let session = context.start_run("ingest").await?;
    let options = IngestOptions {
        from: args.from,
        to: args.to,
        full_refresh: args.full_refresh,
        concurrency: args.concurrency,
        today: args.today,
        accounts: (!args.accounts.is_empty()).then(|| args.accounts.clone()),
    };
    let progress = (!args.json && std::io::stderr().is_terminal()).then(|| StreamBars::new(&http));
    let mut ingest = Ingest::new(session.warehouse.as_ref(), &session.run_id, ctx, options);
    if let Some(bars) = &progress {
        ingest = ingest.with_observer(bars);
    }
    let started = chrono::Utc::now();
    let report = ingest.run(&jobs).await;
    if let Some(bars) = progress {
        bars.finish();
    }
    let failures: Vec<String> = report.failures().filter_map(|s| s.error.clone()).collect();
    let error = (!failures.is_empty()).then(|| failures.join("\n"));
    let emitter = monitoring::lineage_emitter(&context.project);
    let run_id = session.run_id.to_string();
    if let Some(lineage) = monitoring::run_lineage(
        emitter.as_ref(),
        &context.project,
        session.warehouse.as_ref(),
        &context.options,
        &run_id,
        "ingest",
    ) {
        // One job per account, as the pipeline's tasks; reported once the ingest is over.
        let tasks: Vec<IngestTask> = jobs
            .iter()
            .flat_map(|job| {
                let settings = job.source.settings();
                settings
                    .accounts
                    .iter()
                    .filter(|a| args.accounts.is_empty() || args.accounts.contains(a))
                    .map(|a| IngestTask { source: settings.name.clone(), account: Some(a.clone()), window: None })
                    .collect::<Vec<_>>()
            })
            .collect();
        let lineage = monitoring::ingest_jobs(&jobs, &tasks)
            .into_iter()
            .fold(lineage, |lineage, (task_id, job)| lineage.with_ingest(task_id, job));
        lineage.run_started(started);
        for task in &tasks {
            let errors: Vec<&str> = report
                .failures()
                .filter(|s| s.source == task.source && Some(&s.account_id) == task.account.as_ref())
                .filter_map(|s| s.error.as_deref())
                .collect();
            let id = task.task_id();
            lineage.task_started(&id, started);
            let task_error = (!errors.is_empty()).then(|| errors.join("\n"));
            lineage.task_finished(&id, chrono::Utc::now(), task_error.as_deref()).await;
        }
        lineage.run_finished(chrono::Utc::now(), error.as_deref());
    }
    let definitions = definition_warnings(&context, session.warehouse.as_ref(), &jobs, args.today).await;
    monitoring::finish_run(session, &context.project, error.as_deref()).await?;
    monitoring::finish_lineage(emitter).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    for warning in definitions {
        eprintln!("warning: {warning}");
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "\n{} stream(s) failed; committed windows are kept and the next run resumes from each cursor:",
            failures.len()
        );
        for failure in &failures {
            eprintln!("  error: {failure}");
        }
        Ok(ExitCode::from(1))
    }
}

/// The `conversion_definition` check of the ingested sources: days still counted by a definition the
/// source no longer has, with the backfill that reloads them (a changed definition applies to the
/// windows loaded from then on).
async fn definition_warnings(
    context: &ProjectContext,
    warehouse: &dyn mdp_warehouse::Warehouse,
    jobs: &[SourceJob],
    today: Option<chrono::NaiveDate>,
) -> Vec<String> {
    use mdp_monitor::checks::{run_checks, CheckFilter, CheckKind, CheckStatus};
    let mut ctx = crate::commands::check::check_context(context, None, today);
    ctx.sources.retain(|s| jobs.iter().any(|j| j.source.settings().name == s.name));
    let filter = CheckFilter { kinds: vec![CheckKind::ConversionDefinition], select: Vec::new() };
    match run_checks(warehouse, &ctx, &filter).await {
        Ok(outcomes) => outcomes
            .into_iter()
            .filter(|o| o.status == CheckStatus::Warn)
            .map(|o| format!("{}: {}", o.check_name.trim_start_matches("conversion_definition."), o.message))
            .collect(),
        Err(e) => vec![format!("could not compare the loaded conversion definitions: {e}")],
    }
}

/// The enabled sources (or the ones named), as connectors with their loading settings.
pub(crate) fn jobs(project: &Project, only: &[String]) -> Result<Vec<SourceJob>> {
    for name in only {
        match project.source(name) {
            None => bail!("no source named '{name}' in {}", project.file.display()),
            Some(s) if !s.enabled => {
                bail!("source '{name}' is disabled in {}: set `enabled: true`", project.file.display())
            }
            Some(_) => {}
        }
    }
    project
        .enabled_sources()
        .filter(|s| only.is_empty() || only.iter().any(|n| n == s.name.as_str()))
        .map(|s| {
            // A version the platform has sunset fails every request: say why before the errors do.
            let today = chrono::Utc::now().date_naive();
            if let Some(warning) = mdp_sources::kind(s.platform).version_warning(&s.api_version, today) {
                tracing::warn!(source = s.name.as_str(), "{warning}");
            }
            let settings = settings(project, s)?;
            let source = mdp_sources::configure(settings).with_context(|| format!("source '{}'", s.name.as_str()))?;
            Ok(SourceJob { source, lookback_days: s.lookback_days, start_date: s.start_date })
        })
        .collect()
}

pub(crate) fn settings(project: &Project, source: &SourceConfig) -> Result<SourceSettings> {
    let mut credentials = BTreeMap::new();
    for (name, reference) in &source.credentials {
        match reference.resolve(&project.root) {
            Ok(secret) => {
                let credential = Credential::new(secret.expose_secret());
                // A file's path goes along, so that a refresh token the platform rotates is saved back.
                let credential = match reference {
                    SecretRef::File(path) => credential.with_file(project.root.join(path)),
                    SecretRef::Env(_) => credential,
                };
                credentials.insert(name.clone(), credential);
            }
            Err(e) => {
                let required = mdp_sources::kind(source.platform).credential(name).is_some_and(|c| c.required);
                if required {
                    bail!(
                        "source '{}': credential {name} ({}): {e}; `mdp doctor` lists what is missing",
                        source.name.as_str(),
                        reference.describe()
                    );
                }
            }
        }
    }
    Ok(SourceSettings {
        name: source.name.as_str().to_string(),
        platform: source.platform,
        base_url: source.base_url.clone(),
        api_version: source.api_version.clone(),
        accounts: source.accounts.clone(),
        credentials,
        // Only a written override: a service account's grant goes to its key's `token_uri` otherwise.
        token_url: source
            .oauth
            .as_ref()
            .filter(|oauth| mdp_core::kind(source.platform).oauth.is_none_or(|spec| oauth.token_url != spec.token_url))
            .map(|oauth| oauth.token_url.clone()),
        options: source.options.clone(),
    })
}

/// Progress in a terminal: a line of totals (rows, requests, retries) and one bar per running stream
/// (windows loaded, rows so far). Finished streams leave the screen; the summary lists them all.
struct StreamBars {
    multi: indicatif::MultiProgress,
    totals: indicatif::ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
    bars: Mutex<HashMap<String, (indicatif::ProgressBar, u64)>>,
}

impl StreamBars {
    fn new(http: &HttpDriver) -> StreamBars {
        let multi = indicatif::MultiProgress::new();
        let totals = multi.add(indicatif::ProgressBar::new_spinner());
        totals.set_style(
            indicatif::ProgressStyle::with_template("{spinner} ingesting: {msg} [{elapsed}]").expect("valid template"),
        );
        let stats = http.stats.clone();
        let ticking = totals.clone();
        let ticker = tokio::spawn(async move {
            loop {
                ticking.set_message(format!(
                    "{} rows, {} requests, {} retries",
                    stats.rows.load(Ordering::Relaxed),
                    stats.requests.load(Ordering::Relaxed),
                    stats.retries.load(Ordering::Relaxed)
                ));
                ticking.tick();
                tokio::time::sleep(Duration::from_millis(120)).await;
            }
        });
        StreamBars { multi, totals, ticker, bars: Mutex::new(HashMap::new()) }
    }

    fn finish(self) {
        self.ticker.abort();
        self.totals.finish_and_clear();
        let _ = self.multi.clear();
    }
}

impl IngestObserver for StreamBars {
    fn event(&self, event: IngestEvent<'_>) {
        let Ok(mut bars) = self.bars.lock() else { return };
        match event {
            IngestEvent::StreamStarted { source, account, stream, windows } => {
                let bar = self.multi.add(indicatif::ProgressBar::new(windows as u64));
                bar.set_style(
                    indicatif::ProgressStyle::with_template("  {prefix:<44} {bar:20} {pos}/{len} windows, {msg}")
                        .expect("valid template"),
                );
                bar.set_prefix(format!("{source} {account} {stream}"));
                bar.set_message("0 rows");
                bars.insert(format!("{source}/{account}/{stream}"), (bar, 0));
            }
            IngestEvent::WindowLoaded { source, account, stream, rows } => {
                if let Some((bar, total)) = bars.get_mut(&format!("{source}/{account}/{stream}")) {
                    *total += rows;
                    bar.inc(1);
                    bar.set_message(format!("{total} rows"));
                }
            }
            IngestEvent::StreamFinished { source, account, stream, .. } => {
                if let Some((bar, _)) = bars.remove(&format!("{source}/{account}/{stream}")) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
        }
    }
}

pub(crate) fn print_summary(report: &IngestReport) {
    println!(
        "{:<14} {:<22} {:<12} {:>8} {:>10} {:>8}  status",
        "source", "account", "stream", "windows", "rows", "seconds"
    );
    for s in &report.streams {
        let status = if s.error.is_some() { "FAILED" } else { "ok" };
        println!(
            "{:<14} {:<22} {:<12} {:>8} {:>10} {:>8.2}  {status}",
            s.source, s.account_id, s.stream, s.windows, s.rows, s.seconds
        );
    }
    println!(
        "\nrun {}: {} rows in {:.2} s ({:.0} rows/s), {} requests, {} retries",
        report.run_id,
        report.rows,
        report.seconds,
        report.rows as f64 / report.seconds.max(1e-9),
        report.requests,
        report.retries
    );
}
