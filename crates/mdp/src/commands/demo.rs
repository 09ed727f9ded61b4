//! `mdp demo`: the whole offline path a new user can try in one command.
//!
//! Starts the sandbox on a free loopback port, creates (or reuses) a demo project with all four
//! platforms pointed at it, ingests ~90 days incrementally into the project's DuckDB, builds and
//! tests mdp's marketing models (staging → intermediate → marts, with the reconciliation tests of
//! every mart against the raw layer), reconciles the account mart with the sandbox's ground truth to
//! the smallest currency unit, and prints KPIs per platform in the reporting currency. Re-running it
//! is incremental and idempotent, like `mdp ingest` followed by `mdp build`.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;

use std::time::Instant;

use anyhow::{Context, Result};
use chrono::{Days, NaiveDate};
use mdp_core::Platform;
use mdp_marketing::kpi::{Component, Currency, Kpi};
use mdp_marketing::marts::{is_mart, Mart};
use mdp_orchestrator::ingest::{Ingest, IngestOptions};
use mdp_sandbox::{Sandbox, Scale, World};
use mdp_sources::http::{HttpDriver, RetryPolicy};
use mdp_sources::ReadContext;
use mdp_transform::manifest::{Node, ResourceType};
use mdp_transform::run::{Command, NodeResult, NodeStatus, RunObserver, RunOptions};
use mdp_transform::selector::{select, Selection};
use mdp_transform::{artifacts, Parsed};
use mdp_warehouse::rows::{fetch, FromRow, Row};
use mdp_warehouse::{Literal, TableRef, Warehouse, WarehouseError};
use rust_decimal::Decimal;

use crate::cli::{DemoArgs, GlobalArgs, TransformArgs};
use crate::commands::{ingest, transform};
use crate::context::ProjectContext;

const SANDBOX_URL_VAR: &str = "MDP_SANDBOX_URL";
const TOKEN_FILE: &str = ".sandbox-token";

pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<ExitCode> {
    let clock = Instant::now();
    let today = chrono::Utc::now().date_naive();
    let sandbox = Sandbox::new(World::new(42, today, Scale::default()));
    let (addr, _server) = mdp_sandbox::serve(sandbox.clone(), ([127, 0, 0, 1], 0).into())
        .await
        .context("cannot start the sandbox on 127.0.0.1")?;
    let url = format!("http://{addr}");
    println!("sandbox: imitations of the Google Ads, Meta, TikTok and LinkedIn APIs on {url}");

    let start = today - Days::new(args.days.max(1) - 1);
    create_project(&args.dir, &sandbox, start)?;
    let env = |name: &str| if name == SANDBOX_URL_VAR { Some(url.clone()) } else { std::env::var(name).ok() };
    let global = GlobalArgs { project_dir: args.dir.clone(), target: global.target.clone(), verbose: global.verbose };
    let context = ProjectContext::load_with_env(&global, &env)?;
    let jobs = ingest::jobs(&context.project, &[])?;
    println!("project: {} ({} sources, warehouse {})\n", args.dir.display(), jobs.len(), context.target_name);

    let session = context.start_run("demo").await?;
    let http =
        HttpDriver::new(RetryPolicy::default()).map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
    let options = IngestOptions { today: Some(today), ..IngestOptions::default() };
    let report =
        Ingest::new(session.warehouse.as_ref(), &session.run_id, ReadContext { http }, options).run(&jobs).await;
    ingest::print_summary(&report);
    let failures: Vec<String> = report.failures().filter_map(|s| s.error.clone()).collect();

    // The campaign mart's relation, for the hint at the end.
    let mut campaign_mart = None;
    let outcome = async {
        let parsed = transform::load(&global, &TransformArgs::default())?;
        let built = build(&parsed, session.warehouse.as_ref()).await?;
        if !built {
            return anyhow::Ok(false);
        }
        let marts = Marts::of(&parsed)?;
        campaign_mart = Some(marts.campaign.to_string());
        let (days, differences) = reconcile(session.warehouse.as_ref(), &marts, &sandbox, start, today).await?;
        println!(
            "reconciliation of {} with the sandbox's ground truth: {days} account-days, {} difference(s)",
            marts.account,
            differences.len()
        );
        for d in differences.iter().take(10) {
            println!("  {d}");
        }
        print_kpis(session.warehouse.as_ref(), &marts).await?;
        println!("\nmarts: {}", marts.all.join(", "));
        monitor(&context, &parsed, session.warehouse.as_ref(), &session.run_id.to_string(), today).await?;
        anyhow::Ok(differences.is_empty())
    }
    .await;
    let error = match (&outcome, failures.is_empty()) {
        (Err(e), _) => Some(format!("{e:#}")),
        (Ok(false), _) => Some("the marts do not build, pass their tests or reconcile (see above)".to_string()),
        (Ok(true), false) => Some(failures.join("\n")),
        (Ok(true), true) => None,
    };
    session.finish(error.as_deref()).await?;
    let warehouse = match &context.options {
        mdp_warehouse::ConnectOptions::DuckDb { path, .. } => path.display().to_string(),
        mdp_warehouse::ConnectOptions::Postgres { .. }
        | mdp_warehouse::ConnectOptions::Snowflake { .. }
        | mdp_warehouse::ConnectOptions::BigQuery { .. } => format!("target {}", context.target_name),
    };
    match error {
        None => {
            println!("\ndone in {:.1}s; the warehouse is {warehouse}", clock.elapsed().as_secs_f64());
            println!(
                "next: `mdp -C {dir} serve` and open http://127.0.0.1:8080 (runs, checks, lineage, the KPI dashboard)\n      \
                 `mdp -C {dir} sql \"SELECT * FROM {campaigns} ORDER BY spend_reporting DESC LIMIT 10\"`\n      \
                 `mdp -C {dir} check` for every monitor's result, `mdp -C {dir} docs generate` for the docs site\n      \
                 `mdp -C {dir} ls --select tag:marts` to list the marts, `mdp -C {dir} build` after editing models",
                dir = args.dir.display(),
                campaigns = campaign_mart.as_deref().unwrap_or(Mart::CampaignDaily.model_name()),
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Run the monitors on what was loaded and built (as `mdp check` does), record them with the demo's
/// run, and print a summary with what is not green.
async fn monitor(
    context: &ProjectContext,
    parsed: &Parsed,
    warehouse: &dyn Warehouse,
    run_id: &str,
    today: NaiveDate,
) -> Result<()> {
    use mdp_monitor::checks::{self, CheckFilter, CheckStatus};
    let marts = checks::Marts::from_parsed(parsed);
    let ctx = crate::commands::check::check_context(context, marts, Some(today));
    let outcomes = checks::run_checks(warehouse, &ctx, &CheckFilter::default()).await?;
    checks::record(warehouse, run_id, &outcomes).await.context("cannot record the check results")?;
    let count = |status: CheckStatus| outcomes.iter().filter(|o| o.status == status).count();
    println!(
        "\nmonitors: {} checks (freshness, volume, spend anomalies, zero spend, schema drift, KPI targets, API versions, conversion definitions): \
         {} pass, {} warn, {} fail, {} error",
        outcomes.len(),
        count(CheckStatus::Pass),
        count(CheckStatus::Warn),
        count(CheckStatus::Fail),
        count(CheckStatus::Error)
    );
    for o in outcomes.iter().filter(|o| o.status.rank() > 0) {
        println!("  {:<5} {}: {}", o.status.as_str(), o.check_name, o.message);
    }
    Ok(())
}

/// Counts what a build did, and prints only what went wrong.
#[derive(Default)]
struct Tally {
    counts: std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>,
}

impl RunObserver for Tally {
    fn finished(&self, _index: usize, _total: usize, node: &Node, result: &NodeResult) {
        let kind = match (node.resource_type, result.status) {
            (_, NodeStatus::Error | NodeStatus::Fail) => {
                eprintln!("  {:?} {}: {}", result.status, node.name, result.message);
                "failed"
            }
            (_, NodeStatus::Skipped) => "skipped",
            (_, NodeStatus::Warn) => {
                println!("  warning: test {}: {}", node.name, result.message.lines().next().unwrap_or(""));
                "warned"
            }
            (ResourceType::Model, _) => "models",
            (ResourceType::Seed, _) => "seeds",
            (ResourceType::Test, _) => "tests passed",
            (ResourceType::Source, _) => "sources",
            (ResourceType::Snapshot, _) => "snapshots",
        };
        *self.counts.lock().expect("lock").entry(kind).or_default() += 1;
    }
}

/// Build and test every model (the marketing package and the project's own); true when nothing failed.
async fn build(parsed: &Parsed, warehouse: &dyn mdp_warehouse::Warehouse) -> Result<bool> {
    let clock = Instant::now();
    let ids = select(&parsed.manifest, &parsed.graph, &Selection::all())?;
    let target_dir = parsed.project.root.join(&parsed.project.target_path);
    let options =
        RunOptions { command: Command::Build, threads: 4, full_refresh: false, target_dir: Some(target_dir.clone()) };
    let tally = Tally::default();
    let results = mdp_transform::run::execute(parsed, warehouse, &ids, &options, &tally).await?;
    artifacts::write(&target_dir, "manifest.json", &artifacts::manifest_json(parsed))?;
    let run_args = serde_json::json!({"select": [], "threads": options.threads, "target": parsed.target.name});
    artifacts::write(
        &target_dir,
        "run_results.json",
        &artifacts::run_results_json(parsed, Command::Build, &results, run_args),
    )?;
    let counts = tally.counts.into_inner().expect("lock");
    let summary: Vec<String> = counts
        .iter()
        .map(|(kind, n)| match (*n, *kind) {
            (1, "models") => "1 model".to_string(),
            (1, "seeds") => "1 seed".to_string(),
            (1, "tests passed") => "1 test passed".to_string(),
            (n, kind) => format!("{n} {kind}"),
        })
        .collect();
    println!(
        "\nbuild: {} in {:.1}s (staging → intermediate → marts, tests and reconciliation with the raw layer)",
        summary.join(", "),
        clock.elapsed().as_secs_f64()
    );
    Ok(results.success())
}

/// The relations of the marts the demo reads.
struct Marts {
    account: TableRef,
    campaign: TableRef,
    platform: TableRef,
    /// Every mart of the project, `schema.name`.
    all: Vec<String>,
}

impl Marts {
    fn of(parsed: &Parsed) -> Result<Marts> {
        let relation = |mart: Mart| {
            mart.relation(parsed).with_context(|| format!("the project has no model {}", mart.model_name()))
        };
        let all = parsed
            .manifest
            .nodes
            .values()
            .filter(|n| is_mart(n))
            .filter_map(|n| n.relation.as_ref().map(|r| format!("{}.{}", r.schema, r.identifier)))
            .collect();
        Ok(Marts {
            account: relation(Mart::AccountDaily)?,
            campaign: relation(Mart::CampaignDaily)?,
            platform: relation(Mart::PlatformDaily)?,
            all,
        })
    }
}

/// Scaffold the demo project once; its sources point at `${MDP_SANDBOX_URL}` so every run finds the
/// sandbox on whatever port it got.
fn create_project(dir: &Path, sandbox: &Sandbox, start: NaiveDate) -> Result<()> {
    if dir.join(mdp_project::PROJECT_FILE_NAME).exists() {
        return Ok(());
    }
    mdp_project::scaffold(dir, "mdp_demo")?;
    let file = dir.join(mdp_project::PROJECT_FILE_NAME);
    let config = std::fs::read_to_string(&file)?;
    let head = &config[..config.find("sources:").context("the scaffold has a sources section")?];
    let mut sources = String::from(
        "# The demo's sources: every platform, served by `mdp demo`'s sandbox. The token file holds a\n\
         # placeholder the sandbox accepts; real projects reference real tokens the same way.\nsources:\n",
    );
    for platform in Platform::ALL {
        let accounts: Vec<String> = sandbox.world.accounts(platform).map(|a| format!("\"{}\"", a.id)).collect();
        sources.push_str(&format!(
            "  - platform: {platform}\n    accounts: [{}]\n    base_url: ${{{SANDBOX_URL_VAR}:-http://127.0.0.1:8787}}\n    start_date: {start}\n    credentials:\n      access_token: {{ file: {TOKEN_FILE} }}\n",
            accounts.join(", ")
        ));
    }
    std::fs::write(&file, format!("{head}{sources}"))?;
    std::fs::write(dir.join(TOKEN_FILE), "sandbox-demo-token\n")?;
    let gitignore = dir.join(".gitignore");
    let mut ignored = std::fs::read_to_string(&gitignore).unwrap_or_default();
    ignored.push_str(&format!("{TOKEN_FILE}\n"));
    std::fs::write(gitignore, ignored)?;
    Ok(())
}

/// An account's day in the account mart, in the account's currency.
struct AccountDay {
    platform: String,
    account_id: String,
    date: NaiveDate,
    /// impressions, clicks, spend, conversions, conversion value.
    metrics: [Decimal; 5],
}

const RECONCILED: [&str; 5] = ["impressions", "clicks", "spend", "conversions", "conversion_value"];

impl FromRow for AccountDay {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        let mut metrics = [Decimal::ZERO; 5];
        for (m, name) in metrics.iter_mut().zip(RECONCILED) {
            *m = row.opt_decimal(name)?.unwrap_or_default().normalize();
        }
        Ok(AccountDay {
            platform: row.text("platform")?,
            account_id: row.text("account_id")?,
            date: row.date("date")?,
            metrics,
        })
    }
}

/// Compare the account mart's daily totals with the sandbox's ground truth, exactly, in account currency.
async fn reconcile(
    w: &dyn Warehouse,
    marts: &Marts,
    sandbox: &Sandbox,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<(usize, Vec<String>)> {
    let d = w.dialect();
    let q = |c: &str| d.quote_identifier(c);
    let sql = format!(
        "SELECT {}, {}, {date}, {} FROM {} WHERE {date} BETWEEN {} AND {}",
        q("platform")?,
        q("account_id")?,
        RECONCILED.iter().map(|c| q(c)).collect::<Result<Vec<_>, _>>()?.join(", "),
        d.qualified(&marts.account)?,
        d.literal(&Literal::Date(start))?,
        d.literal(&Literal::Date(end))?,
        date = q("date")?,
    );
    let rows: Vec<AccountDay> = fetch(w, &sql).await?;
    let mut by_key = std::collections::HashMap::new();
    for r in rows {
        by_key.insert((r.platform, r.account_id, r.date), r.metrics);
    }
    let (mut days, mut differences) = (0, Vec::new());
    for platform in Platform::ALL {
        for account in sandbox.world.accounts(platform) {
            // The demo's sources count conversions by each platform's default definition.
            let options = mdp_core::SourceOptions::defaults(platform);
            let conversions = sandbox.conversion_truth(&account.id, start, end, &options).unwrap_or_default();
            let truth = sandbox.truth(platform, &account.id, start, end).unwrap_or_default();
            for ((date, truth), (_, conversions, value)) in truth.into_iter().zip(conversions) {
                days += 1;
                let key = (platform.as_str().to_string(), account.id.clone(), date);
                let got = by_key.get(&key).copied().unwrap_or([Decimal::ZERO; 5]);
                let expected = [
                    Decimal::from(truth.impressions),
                    Decimal::from(truth.clicks),
                    Decimal::new(truth.spend_micros, 6).normalize(),
                    Decimal::new(conversions, 6).normalize(),
                    Decimal::new(value, 6).normalize(),
                ];
                for (metric, (g, e)) in RECONCILED.iter().zip(got.iter().zip(expected)) {
                    if *g != e {
                        differences
                            .push(format!("{platform} account {} {date} {metric}: mart {g}, API {e}", account.id));
                    }
                }
            }
        }
    }
    Ok((days, differences))
}

/// A platform's sums over the platform mart, in the reporting currency.
struct PlatformTotals {
    platform: String,
    currency: String,
    first_day: Option<NaiveDate>,
    last_day: Option<NaiveDate>,
    sums: HashMap<Component, Decimal>,
}

impl FromRow for PlatformTotals {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        let mut sums = HashMap::new();
        for c in COMPONENTS {
            sums.insert(c, row.opt_decimal(c.name())?.unwrap_or_default().normalize());
        }
        Ok(PlatformTotals {
            platform: row.text("platform")?,
            currency: row.opt_text("reporting_currency")?.unwrap_or_default(),
            first_day: row.opt_date("first_day")?,
            last_day: row.opt_date("last_day")?,
            sums,
        })
    }
}

const COMPONENTS: [Component; 5] =
    [Component::Spend, Component::Impressions, Component::Clicks, Component::Conversions, Component::ConversionValue];

/// KPIs per platform and in total, in the reporting currency, from summed components (never averaged ratios).
async fn print_kpis(w: &dyn Warehouse, marts: &Marts) -> Result<()> {
    let d = w.dialect();
    let q = |c: &str| d.quote_identifier(c);
    let mut sums = Vec::new();
    for c in COMPONENTS {
        sums.push(format!("sum({}) AS {}", q(&c.column(Currency::Reporting))?, q(c.name())?));
    }
    let (platform, date) = (q("platform")?, q("date")?);
    let sql = format!(
        "SELECT {platform} AS platform, max({}) AS reporting_currency, {}, min({date}) AS first_day, \
         max({date}) AS last_day FROM {} GROUP BY {platform} ORDER BY {platform}",
        q("reporting_currency")?,
        sums.join(", "),
        d.qualified(&marts.platform)?
    );
    let rows: Vec<PlatformTotals> = fetch(w, &sql).await?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        println!("\nno performance rows yet");
        return Ok(());
    };
    let day = |d: Option<NaiveDate>| d.map_or("?".to_string(), |d| d.to_string());
    println!(
        "\nKPIs {} to {}, in {} (the reporting currency), from {}:",
        day(first.first_day),
        day(last.last_day),
        first.currency,
        marts.platform
    );
    println!(
        "{:<13} {:>14} {:>13} {:>11} {:>11} {:>14} {:>7} {:>7} {:>8} {:>6}",
        "platform", "spend", "impressions", "clicks", "conversions", "revenue", "CTR %", "CPC", "CPA", "ROAS"
    );
    let line = |label: &str, sums: &HashMap<Component, Decimal>| {
        let sum = |c: Component| sums.get(&c).copied().unwrap_or_default();
        let kpi = |k: Kpi, display_scale: u32| match k.formula().evaluate_decimal(sum) {
            Some(v) => (v * Decimal::from(display_scale)).round_dp(2).to_string(),
            None => "-".to_string(),
        };
        println!(
            "{:<13} {:>14} {:>13} {:>11} {:>11} {:>14} {:>7} {:>7} {:>8} {:>6}",
            label,
            sum(Component::Spend).round_dp(2),
            sum(Component::Impressions),
            sum(Component::Clicks),
            sum(Component::Conversions).round_dp(1),
            sum(Component::ConversionValue).round_dp(2),
            kpi(Kpi::Ctr, 100),
            kpi(Kpi::Cpc, 1),
            kpi(Kpi::Cpa, 1),
            kpi(Kpi::Roas, 1),
        );
    };
    let mut total: HashMap<Component, Decimal> = HashMap::new();
    for r in &rows {
        for (c, v) in &r.sums {
            *total.entry(*c).or_default() += *v;
        }
        line(&r.platform, &r.sums);
    }
    line("all platforms", &total);
    Ok(())
}
