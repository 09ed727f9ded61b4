//! `mdp connector test` (a dry run of one source: every request, a summary of each answer, the first
//! records) and `mdp connector list`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use mdp_core::{DateWindow, Platform, StreamKind};
use mdp_project::Project;
use mdp_sources::http::{Exchange, HttpDriver, RetryPolicy};
use mdp_sources::record::{EntityRecord, PerformanceRecord};
use mdp_sources::ReadContext;

use crate::cli::{ConnectorArgs, ConnectorCommand, GlobalArgs};

pub async fn run(global: &GlobalArgs, args: ConnectorArgs) -> Result<ExitCode> {
    match args.command {
        ConnectorCommand::List => list(global),
        ConnectorCommand::Test { source, account, from, to, records } => {
            test(global, &source, account, from, to, records).await
        }
    }
}

fn list(global: &GlobalArgs) -> Result<ExitCode> {
    // The project's own specs, when there is a project here.
    let dir = global.project_dir.join(mdp_project::CONNECTORS_DIR);
    mdp_spec::load_dir(&dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", row("platform", "connector", "API reference"));
    for platform in Platform::known() {
        let kind = mdp_core::kind(platform);
        let (how, api) = match mdp_spec::get(platform) {
            Some(loaded) => (format!("spec {}", loaded.file.display()), loaded.spec.docs_url.clone()),
            None => ("built-in".to_string(), kind.docs_url.to_string()),
        };
        println!("{}", row(platform.as_str(), &how, &api));
    }
    Ok(ExitCode::SUCCESS)
}

fn row(platform: &str, connector: &str, api: &str) -> String {
    format!("{platform:<16} {connector:<40} {api}")
}

async fn test(
    global: &GlobalArgs,
    name: &str,
    account: Option<String>,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
    shown: usize,
) -> Result<ExitCode> {
    let project = Project::load(&global.project_dir)?;
    let config = project
        .source(name)
        .or_else(|| project.config.sources.iter().find(|s| s.platform.as_str() == name))
        .with_context(|| {
        let names: Vec<&str> = project.config.sources.iter().map(|s| s.name.as_str()).collect();
        format!(
            "no source or platform named '{name}' in {}; its sources are: {}",
            project.file.display(),
            names.join(", ")
        )
    })?;
    let settings = super::ingest::settings(&project, config)?;
    let account = match account {
        Some(account) if !settings.accounts.contains(&account) => {
            bail!("--account {account}: source '{}' does not list it under `accounts:`", settings.name)
        }
        Some(account) => account,
        None => settings.accounts.first().cloned().context("the source lists no accounts")?,
    };
    // Yesterday by default, or the platform's latest day when its data lags more.
    let lag = i64::from(mdp_core::kind(settings.platform).lag_days.max(1));
    let to = to.unwrap_or_else(|| chrono::Utc::now().date_naive() - chrono::Duration::days(lag));
    let from = from.unwrap_or(to - chrono::Duration::days(2));
    let window = DateWindow::new(from, to).map_err(|e| anyhow::anyhow!("--from/--to: {e}"))?;
    println!("{} ({}), account {account}, window {window}", settings.name, settings.platform);
    if let Some(loaded) = mdp_spec::get(settings.platform) {
        println!("spec: {}", loaded.file.display());
    }

    let trace = Arc::new(|exchange: &Exchange| {
        let status = exchange.status.map_or("no answer".to_string(), |s| s.to_string());
        let retry = if exchange.attempt > 1 { format!(" (attempt {})", exchange.attempt) } else { String::new() };
        println!("  → {} {}{retry}", exchange.method, exchange.url);
        if let Some(body) = &exchange.body {
            println!("    body: {}", one_line(body, 300));
        }
        println!(
            "  ← {status}, {} bytes, {} ms: {}",
            exchange.bytes,
            exchange.millis,
            one_line(&exchange.preview, 160)
        );
    });
    let http = HttpDriver::new(RetryPolicy { max_attempts: 2, ..RetryPolicy::default() })
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?
        .with_trace(trace);
    let ctx = ReadContext { http };
    let source = mdp_sources::configure(settings)?;

    println!("\naccount:");
    let info = source.account(&account, &ctx).await?;
    println!(
        "  id {}, name {}, currency {}, time zone {}",
        info.id,
        info.record.name.as_deref().unwrap_or("-"),
        info.currency,
        info.timezone
    );
    let mut failed = false;
    for stream in source.streams() {
        println!("\n{}:", stream.name);
        let result = match stream.kind {
            StreamKind::Entity => {
                let (out, printed) = printer(shown, show_entity);
                let result = source.read_entities(stream, &info, &ctx, &out).await;
                drop(out);
                finish(printed, result).await
            }
            StreamKind::Daily => {
                let (out, printed) = printer(shown, show_performance);
                let result = source.read_daily(stream, &info, window, &ctx, &out).await;
                drop(out);
                finish(printed, result).await
            }
        };
        if let Err(error) = result {
            println!("  error: {error}");
            failed = true;
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// A sink whose records are counted, the first `shown` printed as they arrive.
fn printer<T: Send + 'static>(
    shown: usize,
    show: fn(&T) -> String,
) -> (mdp_sources::Sink<T>, tokio::task::JoinHandle<usize>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<T>>(4);
    let printed = tokio::spawn(async move {
        let mut count = 0usize;
        while let Some(page) = rx.recv().await {
            for record in &page {
                if count < shown {
                    println!("  {}", show(record));
                }
                count += 1;
            }
        }
        count
    });
    (tx, printed)
}

/// The count line once the sink is closed, and the read's outcome.
async fn finish(
    printed: tokio::task::JoinHandle<usize>,
    result: Result<(), mdp_sources::SourceError>,
) -> Result<(), mdp_sources::SourceError> {
    let count = printed.await.unwrap_or(0);
    println!("  {count} record(s)");
    result
}

fn show_entity(record: &EntityRecord) -> String {
    format!(
        "id {} {:?} status {} campaign {} ad group {}",
        record.id,
        record.name.as_deref().unwrap_or("-"),
        record.status.as_deref().unwrap_or("-"),
        record.campaign_id.as_deref().unwrap_or("-"),
        record.ad_group_id.as_deref().unwrap_or("-"),
    )
}

fn show_performance(record: &PerformanceRecord) -> String {
    format!(
        "{} ad {} (campaign {}, ad group {}): impressions {}, clicks {}, spend {}, conversions {}, value {}",
        record.date.map(|d| d.to_string()).unwrap_or_default(),
        record.ad_id.as_deref().unwrap_or("-"),
        record.campaign_id.as_deref().unwrap_or("-"),
        record.ad_group_id.as_deref().unwrap_or("-"),
        record.impressions,
        record.clicks,
        record.spend.normalize(),
        record.conversions.normalize(),
        record.conversion_value.normalize(),
    )
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        format!("{}…", flat.chars().take(max).collect::<String>())
    } else {
        flat
    }
}
