//! `mdp demo`: the whole offline path a new user can try in one command.
//!
//! Starts the sandbox on a free loopback port, creates (or reuses) a demo project with all four
//! platforms pointed at it, ingests ~90 days incrementally into the project's DuckDB, reconciles the
//! raw layer with the sandbox's ground truth to the smallest currency unit, and prints KPIs per
//! platform and currency. Re-running it is incremental and idempotent, like any `mdp ingest`.
//! (The harmonized models and marts join this demo with the transformation engine.)

use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result};
use chrono::{Days, NaiveDate};
use mdp_core::Platform;
use mdp_orchestrator::ingest::{raw_table, Ingest, IngestOptions};
use mdp_sandbox::{Sandbox, Scale, World};
use mdp_sources::http::{HttpDriver, RetryPolicy};
use mdp_sources::ReadContext;
use mdp_warehouse::{string_rows, Literal, Warehouse};
use rust_decimal::Decimal;

use crate::cli::{DemoArgs, GlobalArgs};
use crate::commands::ingest;
use crate::context::ProjectContext;

const SANDBOX_URL_VAR: &str = "MDP_SANDBOX_URL";
const TOKEN_FILE: &str = ".sandbox-token";

pub async fn run(global: &GlobalArgs, args: DemoArgs) -> Result<ExitCode> {
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

    let outcome = async {
        let (days, differences) = reconcile(session.warehouse.as_ref(), &sandbox, start, today).await?;
        println!(
            "\nreconciliation with the sandbox's ground truth: {days} account-days, {} difference(s)",
            differences.len()
        );
        for d in differences.iter().take(10) {
            println!("  {d}");
        }
        print_kpis(session.warehouse.as_ref()).await?;
        anyhow::Ok(differences.is_empty())
    }
    .await;
    let error = match (&outcome, failures.is_empty()) {
        (Err(e), _) => Some(format!("{e:#}")),
        (Ok(false), _) => Some("the raw layer does not reconcile with the sandbox".to_string()),
        (Ok(true), false) => Some(failures.join("\n")),
        (Ok(true), true) => None,
    };
    session.finish(error.as_deref()).await?;
    match error {
        None => {
            println!("\nnext: `mdp -C {} sql \"SELECT * FROM raw.meta_ads__ad_daily LIMIT 5\"`", args.dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
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

/// The stream that carries all of a platform's spend: Google's campaign level (it includes
/// Performance Max, which has no ad-level rows); the ad level elsewhere.
fn spend_stream(platform: Platform) -> &'static str {
    if platform == Platform::GoogleAds {
        "campaign_daily"
    } else {
        "ad_daily"
    }
}

fn decimal(value: &Option<String>) -> Decimal {
    value.as_deref().and_then(|v| Decimal::from_str(v).ok()).unwrap_or_default().normalize()
}

/// Compare the raw layer's daily totals per account with the sandbox's ground truth, exactly.
async fn reconcile(
    w: &dyn Warehouse,
    sandbox: &Sandbox,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<(usize, Vec<String>)> {
    let d = w.dialect();
    let (mut days, mut differences) = (0, Vec::new());
    for platform in Platform::ALL {
        let sql = format!(
            "SELECT account_id, CAST(date AS VARCHAR), CAST(sum(impressions) AS VARCHAR), CAST(sum(clicks) AS VARCHAR), \
             CAST(sum(spend) AS VARCHAR), CAST(sum(conversions) AS VARCHAR), CAST(sum(conversion_value) AS VARCHAR) \
             FROM {} WHERE date BETWEEN {} AND {} GROUP BY 1, 2",
            d.qualified(&raw_table(platform.as_str(), spend_stream(platform)))?,
            d.literal(&Literal::Date(start))?,
            d.literal(&Literal::Date(end))?
        );
        let rows = string_rows(&w.query_all(&sql).await?)?;
        for account in sandbox.world.accounts(platform) {
            for (date, truth) in sandbox.truth(platform, &account.id, start, end).unwrap_or_default() {
                days += 1;
                let day = date.to_string();
                let got = rows
                    .iter()
                    .find(|r| r[0].as_deref() == Some(account.id.as_str()) && r[1].as_deref() == Some(day.as_str()));
                let got = got.map_or([Decimal::ZERO; 5], |r| {
                    [decimal(&r[2]), decimal(&r[3]), decimal(&r[4]), decimal(&r[5]), decimal(&r[6])]
                });
                let expected = [
                    Decimal::from(truth.impressions),
                    Decimal::from(truth.clicks),
                    Decimal::new(truth.spend_micros, 6).normalize(),
                    Decimal::new(truth.conversions_micros, 6).normalize(),
                    Decimal::new(truth.conversion_value_micros, 6).normalize(),
                ];
                for (metric, (g, e)) in ["impressions", "clicks", "spend", "conversions", "conversion_value"]
                    .iter()
                    .zip(got.iter().zip(expected))
                {
                    if *g != e {
                        differences.push(format!("{platform} account {} {day} {metric}: raw {g}, API {e}", account.id));
                    }
                }
            }
        }
    }
    Ok((days, differences))
}

/// KPIs per platform and account currency, from summed components (never averaged ratios).
async fn print_kpis(w: &dyn Warehouse) -> Result<()> {
    let d = w.dialect();
    println!(
        "\n{:<13} {:<4} {:>14} {:>12} {:>10} {:>11} {:>14} {:>7} {:>8} {:>8} {:>6}",
        "platform", "cur", "spend", "impressions", "clicks", "conversions", "revenue", "CTR %", "CPC", "CPA", "ROAS"
    );
    for platform in Platform::ALL {
        let facts = d.qualified(&raw_table(platform.as_str(), spend_stream(platform)))?;
        let accounts = d.qualified(&raw_table(platform.as_str(), "accounts"))?;
        let sql = format!(
            "SELECT a.currency, CAST(sum(f.spend) AS VARCHAR), CAST(sum(f.impressions) AS VARCHAR), CAST(sum(f.clicks) AS VARCHAR), \
             CAST(sum(f.conversions) AS VARCHAR), CAST(sum(f.conversion_value) AS VARCHAR) \
             FROM {facts} f JOIN (SELECT DISTINCT account_id, currency FROM {accounts}) a ON a.account_id = f.account_id \
             GROUP BY a.currency ORDER BY a.currency"
        );
        for r in string_rows(&w.query_all(&sql).await?)? {
            let [spend, impressions, clicks, conversions, revenue] = [&r[1], &r[2], &r[3], &r[4], &r[5]].map(decimal);
            let ratio = |n: Decimal, m: Decimal, scale: Decimal| {
                if m.is_zero() {
                    "-".to_string()
                } else {
                    (n * scale / m).round_dp(2).to_string()
                }
            };
            println!(
                "{:<13} {:<4} {:>14} {:>12} {:>10} {:>11} {:>14} {:>7} {:>8} {:>8} {:>6}",
                platform.as_str(),
                r[0].as_deref().unwrap_or("?"),
                spend.round_dp(2),
                impressions,
                clicks,
                conversions.round_dp(1),
                revenue.round_dp(2),
                ratio(clicks, impressions, Decimal::from(100)),
                ratio(spend, clicks, Decimal::ONE),
                ratio(spend, conversions, Decimal::ONE),
                ratio(revenue, spend, Decimal::ONE),
            );
        }
    }
    Ok(())
}
