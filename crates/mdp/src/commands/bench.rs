//! `mdp bench`: bulk-load synthetic ad-performance rows into each adapter; print rows/s and peak memory.
//!
//! Rows are generated batch by batch while loading (never all in memory), so the figures show the
//! loader's own footprint. With `--adapter all` each adapter runs in a child process of its own, so
//! the peak resident memory reported is that adapter's alone.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use arrow::array::{ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use futures::StreamExt;
use mdp_warehouse::{connect, Access, ColumnDef, ColumnType, ConnectOptions, LockHolder, TableRef, TableSchema};

use crate::cli::{BenchAdapter, BenchArgs, BenchWhat};

const BENCH_SCHEMA: &str = "mdp_bench";
const BENCH_METADATA_SCHEMA: &str = "mdp_bench_meta";
const PLATFORMS: [&str; 4] = ["google_ads", "meta_ads", "tiktok_ads", "linkedin_ads"];
const CURRENCIES: [&str; 4] = ["USD", "EUR", "GBP", "JPY"];

pub async fn run(args: BenchArgs) -> Result<()> {
    if args.what == BenchWhat::Ingest {
        return ingest(&args).await;
    }
    if args.what == BenchWhat::Transform {
        return transform(&args).await;
    }
    if args.what == BenchWhat::Scheduler {
        return scheduler(&args).await;
    }
    if args.what == BenchWhat::Connector {
        return connector(&args).await;
    }
    match args.adapter {
        BenchAdapter::All => run_children(&args),
        BenchAdapter::Duckdb => {
            let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
            let path = args.duckdb_path.clone().unwrap_or_else(|| dir.path().join("bench.duckdb"));
            let options = ConnectOptions::duckdb(path).with_metadata_schema(BENCH_METADATA_SCHEMA);
            measure("duckdb", &options, &args).await
        }
        BenchAdapter::Postgres => {
            let Some(url) = postgres_url(&args) else {
                println!("postgres  skipped: no server given (--postgres-url, MDP_BENCH_POSTGRES_URL or MDP_TEST_POSTGRES_URL)");
                return Ok(());
            };
            let options = ConnectOptions::postgres(url, "bench server").with_metadata_schema(BENCH_METADATA_SCHEMA);
            measure("postgres", &options, &args).await
        }
        BenchAdapter::Snowflake => {
            let Some(url) = snowflake_url(&args) else {
                println!("snowflake skipped: no address given (--snowflake-url, MDP_BENCH_SNOWFLAKE_URL or MDP_TEST_SNOWFLAKE_URL)");
                return Ok(());
            };
            let config = mdp_warehouse::SnowflakeConfig {
                account: "mdp_bench".into(),
                user: "mdp".into(),
                auth: mdp_warehouse::SnowflakeAuth::Password(std::env::var("SNOWFLAKE_PASSWORD").unwrap_or_default()),
                // Not the bench schema's name: fakesnow (DuckDB) confuses a schema with a database of the same name.
                database: "MDP_BENCH_DB".into(),
                schema: None,
                warehouse: None,
                role: None,
                base_url: Some(url),
            };
            let options = ConnectOptions::snowflake(config).with_metadata_schema(BENCH_METADATA_SCHEMA);
            measure("snowflake", &options, &args).await
        }
        BenchAdapter::Bigquery => {
            let Some(url) = bigquery_url(&args) else {
                println!("bigquery  skipped: no address given (--bigquery-url, MDP_BENCH_BIGQUERY_URL or MDP_TEST_BIGQUERY_URL)");
                return Ok(());
            };
            let mut config =
                mdp_warehouse::BigQueryConfig::new("mdp-bench", BENCH_SCHEMA, mdp_warehouse::BigQueryAuth::None);
            config.base_url = Some(url);
            let options = ConnectOptions::bigquery(config).with_metadata_schema(BENCH_METADATA_SCHEMA);
            measure("bigquery", &options, &args).await
        }
    }
}

fn bigquery_url(args: &BenchArgs) -> Option<String> {
    args.bigquery_url.clone().or_else(|| std::env::var("MDP_TEST_BIGQUERY_URL").ok()).filter(|u| !u.is_empty())
}

fn snowflake_url(args: &BenchArgs) -> Option<String> {
    args.snowflake_url.clone().or_else(|| std::env::var("MDP_TEST_SNOWFLAKE_URL").ok()).filter(|u| !u.is_empty())
}

fn postgres_url(args: &BenchArgs) -> Option<String> {
    args.postgres_url.clone().or_else(|| std::env::var("MDP_TEST_POSTGRES_URL").ok()).filter(|u| !u.is_empty())
}

/// Re-run this binary once per adapter so each gets its own peak-memory figure.
fn run_children(args: &BenchArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the mdp executable")?;
    println!("loading {} ad-performance rows per adapter, {} rows per batch", args.rows, args.batch_rows);
    // The cloud stand-ins only when their address is given: they load far slower than the others.
    let snowflake = args.snowflake_url.clone().filter(|u| !u.is_empty());
    let bigquery = args.bigquery_url.clone().filter(|u| !u.is_empty());
    let mut adapters = vec!["duckdb", "postgres"];
    adapters.extend(snowflake.as_ref().map(|_| "snowflake"));
    adapters.extend(bigquery.as_ref().map(|_| "bigquery"));
    for adapter in adapters {
        let mut command = std::process::Command::new(&exe);
        command.args(["bench", "--adapter", adapter, "--rows", &args.rows.to_string()]);
        command.args(["--batch-rows", &args.batch_rows.to_string()]);
        if let Some(path) = &args.duckdb_path {
            command.arg("--duckdb-path").arg(path);
        }
        if let Some(url) = postgres_url(args) {
            command.env("MDP_BENCH_POSTGRES_URL", url);
        }
        if let Some(url) = &snowflake {
            command.env("MDP_BENCH_SNOWFLAKE_URL", url);
        }
        if let Some(url) = &bigquery {
            command.env("MDP_BENCH_BIGQUERY_URL", url);
        }
        let status = command.status().with_context(|| format!("cannot run the {adapter} benchmark"))?;
        anyhow::ensure!(status.success(), "the {adapter} benchmark failed ({status})");
    }
    Ok(())
}

fn table_schema() -> TableSchema {
    use ColumnType::*;
    TableSchema::new(vec![
        ColumnDef::new("date", Date),
        ColumnDef::new("platform", Text),
        ColumnDef::new("account_id", Text),
        ColumnDef::new("campaign_id", Text),
        ColumnDef::new("ad_group_id", Text),
        ColumnDef::new("ad_id", Text),
        ColumnDef::new("impressions", Int64),
        ColumnDef::new("clicks", Int64),
        ColumnDef::new("spend", Decimal(18, 6)),
        ColumnDef::new("conversions", Decimal(18, 6)),
        ColumnDef::new("conversion_value", Decimal(18, 6)),
        ColumnDef::new("currency", Text),
    ])
}

/// Entity ids, made once so that generating rows costs little next to loading them.
struct Ids {
    accounts: Vec<String>,
    campaigns: Vec<String>,
    ad_groups: Vec<String>,
    ads: Vec<String>,
}

impl Ids {
    fn new() -> Ids {
        let make = |prefix: &str, n: u64| (0..n).map(|i| format!("{prefix}-{i}")).collect();
        Ids {
            accounts: make("acc", 40),
            campaigns: make("cmp", 400),
            ad_groups: make("adg", 2_000),
            ads: make("ad", 10_000),
        }
    }
}

/// Deterministic synthetic rows `start..end`: 4 platforms, 40 accounts, 10k ads, ~90 days.
fn synthetic_batch(schema: &arrow::datatypes::SchemaRef, ids: &Ids, start: u64, end: u64) -> RecordBatch {
    let n = (end - start) as usize;
    let mut date = Vec::with_capacity(n);
    let (mut platform, mut currency) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut account, mut campaign, mut ad_group, mut ad) =
        (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut impressions, mut clicks) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut spend, mut conversions, mut value) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
    for i in start..end {
        let a = (i % 10_000) as usize;
        let p = a % 4;
        let mix = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40; // cheap deterministic noise
        date.push(20_454 + (i / 10_000 % 90) as i32);
        platform.push(PLATFORMS[p]);
        currency.push(CURRENCIES[p]);
        account.push(ids.accounts[a % 40].as_str());
        campaign.push(ids.campaigns[a % 400].as_str());
        ad_group.push(ids.ad_groups[a % 2_000].as_str());
        ad.push(ids.ads[a].as_str());
        let imps = 100 + (mix % 10_000) as i64;
        let clk = imps / (20 + (mix % 30) as i64);
        impressions.push(imps);
        clicks.push(clk);
        spend.push(i128::from(clk) * (250_000 + (mix % 1_000_000) as i128));
        conversions.push(i128::from(clk / 10) * 1_000_000);
        value.push(i128::from(clk / 10) * 45_500_000);
    }
    let decimal = |v: Vec<i128>| -> ArrayRef {
        Arc::new(Decimal128Array::from(v).with_precision_and_scale(18, 6).expect("valid decimal precision"))
    };
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Date32Array::from(date)),
        Arc::new(StringArray::from(platform)),
        Arc::new(StringArray::from(account)),
        Arc::new(StringArray::from(campaign)),
        Arc::new(StringArray::from(ad_group)),
        Arc::new(StringArray::from(ad)),
        Arc::new(Int64Array::from(impressions)),
        Arc::new(Int64Array::from(clicks)),
        decimal(spend),
        decimal(conversions),
        decimal(value),
        Arc::new(StringArray::from(currency)),
    ];
    RecordBatch::try_new(schema.clone(), columns).expect("synthetic batch matches its schema")
}

async fn measure(label: &str, options: &ConnectOptions, args: &BenchArgs) -> Result<()> {
    let run_id = format!("bench-{}", std::process::id());
    let opened = connect(options, Access::Write(LockHolder::current(&run_id, "bench")))
        .await
        .with_context(|| format!("cannot open the {label} warehouse"))?;
    let w = opened.warehouse;
    let d = w.dialect();
    let table = TableRef::new(BENCH_SCHEMA, "ad_performance");
    w.execute(&d.drop_table_if_exists_sql(&table)?).await?;
    let schema = table_schema();
    w.create_table(&table, &schema).await?;
    let arrow_schema = schema.arrow_schema();
    let rss_before = memory_kib("VmRSS");

    let (rows, batch_rows) = (args.rows, args.batch_rows.max(1) as u64);
    let ids = Arc::new(Ids::new());
    let batches = futures::stream::iter((0..rows).step_by(batch_rows as usize))
        .map(move |start| Ok(synthetic_batch(&arrow_schema, &ids, start, (start + batch_rows).min(rows))))
        .boxed();
    let started = Instant::now();
    let loaded = w.bulk_load(&table, batches).await.with_context(|| format!("{label}: bulk load failed"))?;
    let elapsed = started.elapsed();

    let totals = w.table_totals(&table, &[("spend", ColumnType::Decimal(18, 6))]).await?;
    anyhow::ensure!(totals.rows == rows, "{label}: loaded {loaded} rows but the table holds {}", totals.rows);
    println!(
        "{label:<9} {loaded} rows in {:.2} s = {:>9.0} rows/s | peak RSS {} MiB (before load {} MiB) | sum(spend) {}",
        elapsed.as_secs_f64(),
        loaded as f64 / elapsed.as_secs_f64(),
        memory_kib("VmHWM").map_or("?".into(), |k| (k / 1024).to_string()),
        rss_before.map_or("?".into(), |k| (k / 1024).to_string()),
        totals.sums[0].as_deref().unwrap_or("?"),
    );
    let cleanup =
        format!("{}; {}", d.drop_schema_cascade_sql(BENCH_SCHEMA)?, d.drop_schema_cascade_sql(BENCH_METADATA_SCHEMA)?);
    w.execute(&cleanup).await?;
    w.close().await?;
    Ok(())
}

/// A figure from /proc/self/status (VmHWM: peak resident set; VmRSS: current), in KiB.
fn memory_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (`self` for this one).
/// Clock ticks are 100 per second on Linux (USER_HZ).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// The sandbox's child process, stopped when dropped: a benchmark that fails half-way leaves none behind.
struct SandboxProcess(std::process::Child);

impl SandboxProcess {
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The sandbox in a process of its own (its CPU and memory are not the measured process's), with
/// `ads_per_ad_group` ads per ad group: the child and its address.
fn start_sandbox_process(today: chrono::NaiveDate, ads_per_ad_group: u64) -> Result<(SandboxProcess, String)> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("cannot find the mdp executable")?;
    let mut child = std::process::Command::new(exe)
        .args([
            "sandbox",
            "--port",
            "0",
            "--today",
            &today.to_string(),
            "--ads-per-ad-group",
            &ads_per_ad_group.to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("cannot start the sandbox")?;
    let stdout = child.stdout.take();
    let sandbox = SandboxProcess(child);
    let mut stdout = std::io::BufReader::new(stdout.context("sandbox stdout")?);
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .context("the sandbox did not print its address")?
        .to_string();
    Ok((sandbox, url))
}

/// `mdp bench ingest`: the sandbox in a child process (so its memory is not counted), every platform,
/// a history long enough for `--rows` daily rows, ingested end to end into a temporary DuckDB.
async fn ingest(args: &BenchArgs) -> Result<()> {
    use mdp_orchestrator::ingest::{Ingest, IngestOptions, SourceJob};
    use mdp_sources::http::{HttpDriver, RetryPolicy};
    use mdp_sources::{Credential, ReadContext, SourceSettings};

    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date");
    let history_days = 165u64;
    // Per ad of each ad group: 2 accounts × 3 campaigns × 2 ad groups on Meta, TikTok and LinkedIn, one
    // campaign fewer with ads on Google (its third is Performance Max); ~11 of 12 days deliver.
    let rows_per_ad_slot = (3 * 12 + 8) * history_days * 11 / 12;
    let ads_per_ad_group = args.rows.div_ceil(rows_per_ad_slot * 97 / 100).max(1); // 3% margin: days vary
    let (sandbox, url) = start_sandbox_process(today, ads_per_ad_group)?;
    let accounts: serde_json::Value = reqwest_get_json(&format!("{url}/_sandbox/accounts")).await?;

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let mut options = ConnectOptions::duckdb(dir.path().join("bench.duckdb"));
    if let Ok(limit) = std::env::var("MDP_BENCH_DUCKDB_MEMORY_LIMIT") {
        options = options.with_memory_limit(limit);
    }
    let session = mdp_orchestrator::RunSession::start(&options, "bench").await?;
    let http = HttpDriver::new(RetryPolicy::default()).map_err(|e| anyhow::anyhow!(e))?;
    let mut jobs = Vec::new();
    for platform in mdp_core::Platform::ALL {
        let kind = mdp_sources::kind(platform);
        let ids = accounts["accounts"][platform.as_str()].as_array().context("sandbox accounts")?;
        let settings = SourceSettings {
            name: platform.as_str().to_string(),
            platform,
            base_url: url.clone(),
            api_version: kind.default_api_version.to_string(),
            accounts: ids.iter().filter_map(|a| a["id"].as_str().map(String::from)).collect(),
            credentials: kind
                .credentials
                .iter()
                .filter(|c| {
                    ![
                        mdp_core::CLIENT_ID,
                        mdp_core::CLIENT_SECRET,
                        mdp_core::REFRESH_TOKEN,
                        mdp_core::SERVICE_ACCOUNT_KEY,
                    ]
                    .contains(&c.name)
                })
                .map(|c| (c.name.to_string(), Credential::new("bench-token")))
                .collect(),
            token_url: None,
            options: mdp_sources::SourceOptions::defaults(platform),
        };
        jobs.push(SourceJob { source: mdp_sources::configure(settings)?, lookback_days: 30, start_date: None });
    }
    let ingest_options = IngestOptions {
        from: Some(today - chrono::Days::new(history_days - 1)),
        to: Some(today),
        full_refresh: false,
        concurrency: std::env::var("MDP_BENCH_CONCURRENCY").ok().and_then(|c| c.parse().ok()).unwrap_or(4),
        today: Some(today),
        accounts: None,
    };
    let rss_before = memory_kib("VmRSS");
    let sandbox_pid = sandbox.pid();
    let cpu_before = (cpu_seconds("self"), cpu_seconds(&sandbox_pid));
    let start = std::time::Instant::now();
    let report =
        Ingest::new(session.warehouse.as_ref(), &session.run_id, ReadContext { http }, ingest_options).run(&jobs).await;
    // Until the rows are in the database file: an ingest that left them in DuckDB's WAL defers work.
    session.warehouse.checkpoint().await?;
    let seconds = start.elapsed().as_secs_f64();
    let cpu = (
        cpu_seconds("self").zip(cpu_before.0).map(|(after, before)| after - before),
        cpu_seconds(&sandbox_pid).zip(cpu_before.1).map(|(after, before)| after - before),
    );
    let failures: Vec<String> = report.failures().filter_map(|s| s.error.clone()).collect();
    session.finish(failures.first().map(String::as_str)).await?;
    drop(sandbox);
    anyhow::ensure!(failures.is_empty(), "ingest failed: {}", failures.join("; "));
    let daily: u64 = report.streams.iter().filter(|s| s.stream.ends_with("_daily")).map(|s| s.rows).sum();
    for platform in mdp_core::Platform::ALL {
        let streams = report.streams.iter().filter(|s| s.platform == platform.as_str() && s.stream.ends_with("_daily"));
        let (rows, seconds) = streams.fold((0, 0.0), |(r, t), s| (r + s.rows, t + s.seconds));
        println!("  {platform:<13} {rows:>8} daily rows, {seconds:>6.2} s of stream time");
    }
    println!(
        "ingest    {} rows ({} daily rows, 4 platforms, 8 accounts, {} days) in {:.2} s = {:>8.0} rows/s | {} requests, {} retries | peak RSS {} MiB (before {} MiB; sandbox in its own process)",
        report.rows,
        daily,
        history_days,
        seconds,
        report.rows as f64 / seconds,
        report.requests,
        report.retries,
        memory_kib("VmHWM").map_or("?".into(), |k| (k / 1024).to_string()),
        rss_before.map_or("?".into(), |k| (k / 1024).to_string()),
    );
    let per_row = |seconds: f64| seconds * 1e6 / report.rows.max(1) as f64;
    if let (Some(client), Some(server)) = cpu {
        println!(
            "          CPU: mdp {client:.1} s ({:.1} µs/row), sandbox {server:.1} s ({:.1} µs/row); both share this machine's {} cores",
            per_row(client),
            per_row(server),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
    }
    if std::env::var_os("MDP_BENCH_INGEST_ONLY").is_some() {
        return Ok(());
    }
    let sources = jobs
        .iter()
        .map(|j| {
            let settings = j.source.settings();
            crate::commands::check::source_info(
                &settings.name,
                &settings.options,
                &settings.api_version,
                settings.accounts.clone(),
            )
        })
        .collect();
    marketing_build(&options, dir.path(), args.threads, sources, today).await
}

/// The marketing models (staging → marts, every test and the reconciliation) on what the ingest
/// loaded: how long the warehouse takes to turn the raw layer into trusted marts.
async fn marketing_build(
    options: &ConnectOptions,
    dir: &std::path::Path,
    threads: usize,
    monitored: Vec<mdp_monitor::checks::SourceInfo>,
    today: chrono::NaiveDate,
) -> Result<()> {
    use mdp_transform::run::{Command, Quiet, RunOptions};
    use mdp_transform::selector::{select, Selection};

    let sources: Vec<_> =
        mdp_core::Platform::ALL.iter().map(|p| crate::commands::transform::source_tables(p.as_str(), *p)).collect();
    let package = mdp_marketing::package(&sources, "USD", mdp_orchestrator::ingest::RAW_SCHEMA)?
        .context("four sources make a package")?;
    let target = mdp_transform::Target {
        profile_name: "bench".into(),
        name: "bench".into(),
        schema: "main".into(),
        database: "bench".into(),
        threads,
        kind: mdp_transform::TargetKind::Preset(options.clone()),
    };
    let project = mdp_transform::DbtProject::implicit(dir, "bench");
    let parsed = mdp_transform::parse::parse_with_packages(project, vec![package], target, Default::default())?;
    let ids = select(&parsed.manifest, &parsed.graph, &Selection::all())?;
    // Reset the peak-RSS mark (Linux), so the figure below is the build's, not the ingest's.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = std::time::Instant::now();
    let session = mdp_orchestrator::RunSession::start(options, "bench marketing").await?;
    let run_options = RunOptions { command: Command::Build, threads, full_refresh: false, target_dir: None };
    let results = mdp_transform::run::execute(&parsed, session.warehouse.as_ref(), &ids, &run_options, &Quiet).await?;
    let ad_rows =
        session.warehouse.table_totals(&TableRef::new("main_marts", "fct_ad_performance_daily"), &[]).await?.rows;
    session.finish(None).await?;
    let seconds = start.elapsed().as_secs_f64();
    anyhow::ensure!(results.success(), "the marketing build failed on the benchmark's data");
    let count = |t: mdp_transform::manifest::ResourceType| {
        results.results.iter().filter(|r| parsed.manifest.nodes[&r.unique_id].resource_type == t).count()
    };
    println!(
        "marts     {} models + {} tests (reconciliation included) on {} ad-day rows in {seconds:.2} s, {threads} threads | peak RSS {} MiB",
        count(mdp_transform::manifest::ResourceType::Model),
        count(mdp_transform::manifest::ResourceType::Test),
        ad_rows,
        memory_kib("VmHWM").map_or("?".into(), |k| (k / 1024).to_string()),
    );

    // The monitors of `mdp check` on the same data: statistics pushed down to DuckDB.
    let context = mdp_monitor::checks::CheckContext {
        config: Default::default(),
        sources: monitored,
        marts: mdp_monitor::checks::Marts::from_parsed(&parsed),
        today: Some(today),
        reporting_timezone: chrono_tz::UTC,
        reporting_currency: "USD".into(),
        now: chrono::Utc::now().naive_utc(),
    };
    let start = std::time::Instant::now();
    let reader = mdp_warehouse::connect(options, mdp_warehouse::Access::Read).await?.warehouse;
    let outcomes =
        mdp_monitor::checks::run_checks(reader.as_ref(), &context, &mdp_monitor::checks::CheckFilter::default())
            .await?;
    let seconds = start.elapsed().as_secs_f64();
    let errors: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.status == mdp_monitor::checks::CheckStatus::Error)
        .map(|o| o.message.as_str())
        .collect();
    anyhow::ensure!(errors.is_empty(), "monitors could not run: {}", errors.join("; "));
    println!(
        "checks    {} monitors (freshness, volume, spend anomaly, zero spend, schema drift, KPI targets, API versions, conversion definitions) on the raw layer and marts in {seconds:.2} s",
        outcomes.len()
    );
    Ok(())
}

/// `mdp bench scheduler`: `--models` no-op tasks in 10 layers (each task waits for two of the layer
/// before) through the executor, without and with recording every state change in `task_instances`
/// of a fresh DuckDB: the scheduler's own cost per task.
async fn scheduler(args: &BenchArgs) -> Result<()> {
    use mdp_orchestrator::dag::{
        self, BoxFuture, Dag, ExecuteOptions, NoObserver, Task, TaskError, TaskKind, TaskOutput, TaskRunner,
    };

    struct Noop;
    impl TaskRunner for Noop {
        fn run<'a>(&'a self, _task: &'a Task, _attempt: u32) -> BoxFuture<'a, Result<TaskOutput, TaskError>> {
            Box::pin(async { Ok(TaskOutput::default()) })
        }
    }
    let n = args.models.max(10);
    let per_layer = n / 10;
    let tasks: Vec<Task> = (0..n)
        .map(|i| {
            let layer = i / per_layer;
            let mut upstream = Vec::new();
            if layer > 0 {
                let prev = (layer - 1) * per_layer;
                upstream.push(format!("t{}", prev + i % per_layer));
                upstream.push(format!("t{}", prev + (i * 7 + 3) % per_layer));
                upstream.dedup();
            }
            Task::new(format!("t{i}"), TaskKind::Noop, upstream)
        })
        .collect();
    let dag = Dag::new(tasks).map_err(|e| anyhow::anyhow!(e))?;
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let options = ExecuteOptions { concurrency: args.threads, sleeper: &dag::TokioSleeper, cancel };

    let start = Instant::now();
    let outcome = dag::execute(&dag, &Noop, &NoObserver, &options).await;
    let bare = start.elapsed().as_secs_f64();
    anyhow::ensure!(outcome.success(), "no-op tasks failed");

    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let db = ConnectOptions::duckdb(dir.path().join("bench.duckdb"));
    let session = mdp_orchestrator::RunSession::start(&db, "bench scheduler").await?;
    let recorder =
        mdp_orchestrator::pipeline::Recorder::new(session.warehouse.as_ref(), session.run_id.to_string(), false);
    let start = Instant::now();
    let outcome = dag::execute(&dag, &Noop, &recorder, &options).await;
    recorder.flush().await;
    let recorded = start.elapsed().as_secs_f64();
    session.finish(None).await?;
    anyhow::ensure!(outcome.success(), "no-op tasks failed");
    println!(
        "scheduler {n} no-op tasks, {} at a time: {:.3} ms per task in the executor; {:.2} ms per task recording \
         every state change (running, success) in task_instances on DuckDB (batched: one statement per 200 ms)",
        args.threads,
        bare * 1000.0 / n as f64,
        recorded * 1000.0 / n as f64
    );
    Ok(())
}

/// The TikTok API written as a connector spec (the test suite checks it reads the same records as the
/// hand-written connector).
const TIKTOK_SPEC: &str = include_str!("../../../mdp-sources/tests/fixtures/tiktok_spec_ads.yml");

/// `mdp bench connector`: TikTok's daily rows of both sandbox accounts over 165 days, read by the
/// hand-written connector and by the spec, records counted and dropped (no warehouse): what the
/// declarative engine costs against Rust written for the API. Then the built-in specs whose reports are
/// asynchronous jobs (Amazon, Pinterest, Microsoft) over 93 days: their files gzipped JSON, JSON keyed by
/// ad, and zipped CSV. Then X's signed, batched, per-day-array stats over a week.
async fn connector(args: &BenchArgs) -> Result<()> {
    use mdp_sources::http::{HttpDriver, RetryPolicy};
    use mdp_sources::{Credential, SourceSettings};

    let today = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date");
    let history_days = 165u64;
    // TikTok: 2 accounts × 3 campaigns × 2 ad groups per ad slot, ~11 of 12 days deliver.
    let ads_per_ad_group = args.rows.div_ceil(12 * history_days * 11 / 12).max(1);
    let (sandbox, url) = start_sandbox_process(today, ads_per_ad_group)?;
    let accounts: serde_json::Value = reqwest_get_json(&format!("{url}/_sandbox/accounts")).await?;
    let ids: Vec<String> = accounts["accounts"]["tiktok_ads"]
        .as_array()
        .context("sandbox accounts")?
        .iter()
        .filter_map(|a| a["id"].as_str().map(String::from))
        .collect();
    let file = std::path::PathBuf::from("<bench>/tiktok_spec_ads.yml");
    let (spec, lines) = mdp_spec::parse(&file, TIKTOK_SPEC).map_err(|e| anyhow::anyhow!("{e}"))?;
    let declared = mdp_spec::register(spec, file, lines).platform();
    let window = mdp_core::DateWindow::new(today - chrono::Days::new(history_days - 1), today)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sandbox_pid = sandbox.pid();
    for (label, platform) in [("hand-written", mdp_core::Platform::TikTokAds), ("spec", declared)] {
        let settings = SourceSettings {
            name: platform.as_str().to_string(),
            platform,
            base_url: url.clone(),
            api_version: "v1.3".into(),
            accounts: ids.clone(),
            credentials: [("access_token".to_string(), Credential::new("bench-token"))].into(),
            token_url: None,
            options: mdp_sources::SourceOptions::defaults(platform),
        };
        let source = mdp_sources::configure(settings)?;
        let http = HttpDriver::new(RetryPolicy::default()).map_err(|e| anyhow::anyhow!(e))?;
        let read = read_daily_measured(source.as_ref(), window, &http, &sandbox_pid).await?;
        println!(
            "{label:<13} {} TikTok daily rows ({history_days} days, 2 accounts) in {:.2} s = {:>8.0} rows/s | {}",
            read.rows,
            read.seconds,
            read.rows as f64 / read.seconds,
            read.costs
        );
    }

    // The built-in specs whose reports are asynchronous jobs, over 93 days: Amazon (gzipped JSON, up to
    // 31 days a report), Pinterest (a JSON object keyed by ad, up to 186 days) and Microsoft (a zip archive of
    // one CSV file, up to 92 days). Waits between polls are capped at 1 s here (the specs' 5-15 s would time
    // the sleeping): the CPU per row is the figure that matters.
    let jobs: [(&str, &str, u64, &str, &[&str]); 3] = [
        ("amazon_ads", "v3", 3, "gzip JSON", &["client_id"]),
        ("pinterest_ads", "v5", 1, "JSON by ad", &[]),
        ("microsoft_ads", "v13", 2, "zip CSV", &["developer_token"]),
    ];
    let window = mdp_core::DateWindow::new(today - chrono::Days::new(92), today).map_err(|e| anyhow::anyhow!("{e}"))?;
    for (name, api_version, reports_per_account, file, more) in jobs {
        let ids: Vec<String> = accounts["accounts"][name]
            .as_array()
            .context("sandbox accounts")?
            .iter()
            .filter_map(|a| a["id"].as_str().map(String::from))
            .collect();
        let platform: mdp_core::Platform = name.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut credentials: std::collections::BTreeMap<String, Credential> =
            [("access_token".to_string(), Credential::new("bench-token"))].into();
        for credential in more {
            credentials.insert(credential.to_string(), Credential::new("bench-credential"));
        }
        let settings = SourceSettings {
            name: name.to_string(),
            platform,
            base_url: url.clone(),
            api_version: api_version.into(),
            accounts: ids.clone(),
            credentials,
            token_url: None,
            options: mdp_sources::SourceOptions::defaults(platform),
        };
        let source = mdp_sources::configure(settings)?;
        let policy = RetryPolicy { max_delay: std::time::Duration::from_secs(1), ..RetryPolicy::default() };
        let http = HttpDriver::new(policy).map_err(|e| anyhow::anyhow!(e))?;
        let read = read_daily_measured(source.as_ref(), window, &http, &sandbox_pid).await?;
        println!(
            "{:<13} {} {name} daily rows (93 days, {} accounts, {} report jobs, {file}) in {:.2} s (waits included) | {}",
            "spec (async)",
            read.rows,
            ids.len(),
            ids.len() as u64 * reports_per_account,
            read.seconds,
            read.costs
        );
    }

    // X: synchronous stats of at most 20 promoted tweets a request, metrics as arrays by day, every
    // request signed (OAuth 1.0a). One account over one 7-day window keeps the requests under X's 250
    // per 15 minutes, which the spec paces and the sandbox enforces.
    let name = "x_ads";
    let platform: mdp_core::Platform = name.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
    let id = accounts["accounts"][name][0]["id"].as_str().context("sandbox accounts")?.to_string();
    let credentials = [
        ("consumer_key", "bench-app"),
        ("consumer_secret", "bench-app-secret"),
        ("access_token", "bench-user"),
        ("access_token_secret", "bench-user-secret"),
    ]
    .map(|(name, value)| (name.to_string(), Credential::new(value)))
    .into();
    let settings = SourceSettings {
        name: name.to_string(),
        platform,
        base_url: url.clone(),
        api_version: "12".into(),
        accounts: vec![id],
        credentials,
        token_url: None,
        options: mdp_sources::SourceOptions::defaults(platform),
    };
    let source = mdp_sources::configure(settings)?;
    let http = HttpDriver::new(RetryPolicy::default()).map_err(|e| anyhow::anyhow!(e))?;
    let week = mdp_core::DateWindow::new(today - chrono::Days::new(6), today).map_err(|e| anyhow::anyhow!("{e}"))?;
    let read = read_daily_measured(source.as_ref(), week, &http, &sandbox_pid).await?;
    println!(
        "{:<13} {} {name} daily rows (7 days, 1 account, 20 ids a request, signed) in {:.2} s = {:>8.0} rows/s | {}",
        "spec (sync)",
        read.rows,
        read.seconds,
        read.rows as f64 / read.seconds,
        read.costs
    );
    drop(sandbox);
    Ok(())
}

/// What reading a source's daily rows took.
struct Measured {
    rows: usize,
    seconds: f64,
    /// Requests sent and CPU seconds of mdp and of the sandbox process, as printed.
    costs: String,
}

/// Read the daily rows of every account of `source` over `window` (counted and dropped), timing the wall
/// clock and the CPU of this process and of the sandbox's.
async fn read_daily_measured(
    source: &dyn mdp_sources::Source,
    window: mdp_core::DateWindow,
    http: &mdp_sources::http::HttpDriver,
    sandbox_pid: &str,
) -> Result<Measured> {
    let ctx = mdp_sources::ReadContext { http: http.clone() };
    let stream = source.streams().iter().find(|s| s.name == "ad_daily").context("an ad_daily stream")?;
    let cpu_before = (cpu_seconds("self"), cpu_seconds(sandbox_pid));
    let start = std::time::Instant::now();
    let mut rows = 0usize;
    for id in &source.settings().accounts {
        let account = source.account(id, &ctx).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<mdp_sources::record::PerformanceRecord>>(4);
        let counter = tokio::spawn(async move {
            let mut n = 0usize;
            while let Some(page) = rx.recv().await {
                n += page.len();
            }
            n
        });
        source.read_daily(stream, &account, window, &ctx, &tx).await?;
        drop(tx);
        rows += counter.await?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self").zip(cpu_before.0).map(|(after, before)| after - before);
    let server = cpu_seconds(sandbox_pid).zip(cpu_before.1).map(|(after, before)| after - before);
    let costs = format!(
        "{} requests | CPU: mdp {}, sandbox {}",
        http.stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        cpu.map_or("?".into(), |c| format!("{c:.2} s ({:.2} µs/row)", c * 1e6 / rows.max(1) as f64)),
        server.map_or("?".into(), |c| format!("{c:.2} s")),
    );
    Ok(Measured { rows, seconds, costs })
}

async fn reqwest_get_json(url: &str) -> Result<serde_json::Value> {
    let http = mdp_sources::http::HttpDriver::new(mdp_sources::http::RetryPolicy::default())
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(http.client().get(url).send().await?.error_for_status()?.json().await?)
}

/// `mdp bench transform`: a synthetic dbt project of `--models` layered models with two schema tests
/// each; times parse + compile of every node (no database), then a full `build` on a fresh DuckDB.
async fn transform(args: &BenchArgs) -> Result<()> {
    use mdp_transform::run::{Command, Quiet, RunOptions};
    use mdp_transform::selector::{select, Selection};

    // The scratch project goes in the working directory, not /tmp: creating thousands of small
    // files (target/compiled, target/run) in a busy /tmp measured 10x slower here than elsewhere
    // on the same disk, which would time the file system, not mdp.
    let tmp = tempfile::Builder::new()
        .prefix(".mdp-bench-")
        .tempdir_in(".")
        .context("cannot create a scratch directory here")?;
    let dir = args.project_out.clone().unwrap_or_else(|| tmp.path().join("synth"));
    let summary = mdp_transform::synth::write_project(&dir, &mdp_transform::synth::SynthSpec::new(args.models))
        .with_context(|| format!("cannot write the synthetic project to {}", dir.display()))?;
    let db = dir.join("bench.duckdb");
    let _ = std::fs::remove_file(&db);
    // `--adapter postgres` builds on the Postgres server instead (in schema mdp_bench_synth, dropped
    // before and after); the default and `all` measure the embedded DuckDB.
    let postgres = match args.adapter {
        BenchAdapter::Postgres => Some(
            postgres_url(args)
                .context("--adapter postgres needs --postgres-url, MDP_BENCH_POSTGRES_URL or MDP_TEST_POSTGRES_URL")?,
        ),
        _ => None,
    };
    let (schema, kind, warehouse_name) = match &postgres {
        Some(url) => (
            "mdp_bench_synth",
            mdp_transform::TargetKind::Preset(
                ConnectOptions::postgres(url.clone(), "bench server").with_metadata_schema(BENCH_METADATA_SCHEMA),
            ),
            "Postgres",
        ),
        None => ("main", mdp_transform::TargetKind::DuckDb { path: db.clone() }, "DuckDB"),
    };
    let target = mdp_transform::Target {
        profile_name: "synth".into(),
        name: "bench".into(),
        schema: schema.into(),
        database: "bench".into(),
        threads: args.threads,
        kind,
    };
    let drop_schema = || async {
        if postgres.is_some() {
            let opened = mdp_warehouse::connect(&target.connect_options(), mdp_warehouse::Access::Read).await?;
            opened.warehouse.execute(&opened.warehouse.dialect().drop_schema_cascade_sql(schema)?).await?;
        }
        anyhow::Ok(())
    };
    drop_schema().await?;
    println!(
        "synthetic project: {} models, {} tests, {} seed(s) in {}",
        summary.models,
        summary.tests,
        summary.seeds,
        dir.display()
    );

    // Compile: parse (render every node once, build the DAG) + compile (render with relations).
    let mut best = f64::MAX;
    let mut best_parse = f64::MAX;
    let mut parsed = None;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let project = mdp_transform::DbtProject::load(&dir)?;
        let p = mdp_transform::parse::parse(project, target.clone(), Default::default())?;
        best_parse = best_parse.min(start.elapsed().as_secs_f64());
        let ids: Vec<String> = p.manifest.nodes.keys().cloned().collect();
        let options =
            RunOptions { command: Command::Build, threads: args.threads, full_refresh: false, target_dir: None };
        let compiled = mdp_transform::run::compile_nodes(&p, &ids, &Default::default(), &options);
        anyhow::ensure!(compiled.values().all(|c| c.is_ok()), "the synthetic project failed to compile");
        best = best.min(start.elapsed().as_secs_f64());
        parsed = Some(p);
    }
    let parsed = parsed.expect("three rounds ran");
    println!(
        "compile   {:>8.1} ms  (parse + render + DAG + compile of {} nodes; best of 3; parse alone {:.1} ms)",
        best * 1000.0,
        parsed.manifest.nodes.len(),
        best_parse * 1000.0
    );

    // Build on a fresh DuckDB.
    let rss_before = memory_kib("VmRSS");
    let start = std::time::Instant::now();
    let opened = mdp_warehouse::connect(
        &target.connect_options(),
        mdp_warehouse::Access::Write(mdp_warehouse::LockHolder::current("bench", "bench transform")),
    )
    .await?;
    let ids = select(&parsed.manifest, &parsed.graph, &Selection::all())?;
    let options = RunOptions {
        command: Command::Build,
        threads: args.threads,
        full_refresh: false,
        target_dir: Some(dir.join("target")),
    };
    let results = mdp_transform::run::execute(&parsed, opened.warehouse.as_ref(), &ids, &options, &Quiet).await?;
    opened.warehouse.close().await?;
    let elapsed = start.elapsed().as_secs_f64();
    let mut per_kind: std::collections::BTreeMap<&str, (usize, f64)> = Default::default();
    for r in &results.results {
        let e = per_kind.entry(parsed.manifest.nodes[&r.unique_id].resource_type.as_str()).or_default();
        e.0 += 1;
        e.1 += r.execution_time;
    }
    let failed: Vec<String> = results
        .results
        .iter()
        .filter(|r| !r.status.lets_dependents_run())
        .map(|r| format!("{}: {}", r.unique_id, r.message))
        .collect();
    anyhow::ensure!(failed.is_empty(), "the synthetic build failed:\n{}", failed.join("\n"));
    drop_schema().await?;
    println!(
        "build     {:>8.2} s   ({} nodes: {} models + {} tests + seeds, {} threads, {warehouse_name}; peak RSS {} MiB, {} MiB before)",
        elapsed,
        results.results.len(),
        summary.models,
        summary.tests,
        args.threads,
        memory_kib("VmHWM").map_or("?".into(), |k| (k / 1024).to_string()),
        rss_before.map_or("?".into(), |k| (k / 1024).to_string()),
    );
    for (kind, (n, secs)) in per_kind {
        println!(
            "          {kind:<6} {n:>5} nodes, {:.2} ms per node inside the warehouse call",
            secs * 1000.0 / n as f64
        );
    }
    Ok(())
}
