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

use crate::cli::{BenchAdapter, BenchArgs};

const BENCH_SCHEMA: &str = "mdp_bench";
const BENCH_METADATA_SCHEMA: &str = "mdp_bench_meta";
const PLATFORMS: [&str; 4] = ["google_ads", "meta_ads", "tiktok_ads", "linkedin_ads"];
const CURRENCIES: [&str; 4] = ["USD", "EUR", "GBP", "JPY"];

pub async fn run(args: BenchArgs) -> Result<()> {
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
    }
}

fn postgres_url(args: &BenchArgs) -> Option<String> {
    args.postgres_url.clone().or_else(|| std::env::var("MDP_TEST_POSTGRES_URL").ok()).filter(|u| !u.is_empty())
}

/// Re-run this binary once per adapter so each gets its own peak-memory figure.
fn run_children(args: &BenchArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the mdp executable")?;
    println!("loading {} ad-performance rows per adapter, {} rows per batch", args.rows, args.batch_rows);
    for adapter in ["duckdb", "postgres"] {
        let mut command = std::process::Command::new(&exe);
        command.args(["bench", "--adapter", adapter, "--rows", &args.rows.to_string()]);
        command.args(["--batch-rows", &args.batch_rows.to_string()]);
        if let Some(path) = &args.duckdb_path {
            command.arg("--duckdb-path").arg(path);
        }
        if let Some(url) = postgres_url(args) {
            command.env("MDP_BENCH_POSTGRES_URL", url);
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
        Ids { accounts: make("acc", 40), campaigns: make("cmp", 400), ad_groups: make("adg", 2_000), ads: make("ad", 10_000) }
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
    w.execute(&format!("DROP TABLE IF EXISTS {}", d.qualified(&table)?)).await?;
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

    let check = mdp_warehouse::string_rows(
        &w.query_all(&format!("SELECT CAST(count(*) AS BIGINT), CAST(sum(spend) AS VARCHAR) FROM {}", d.qualified(&table)?))
            .await?,
    )?;
    anyhow::ensure!(
        check[0][0].as_deref() == Some(&rows.to_string()),
        "{label}: loaded {loaded} rows but the table holds {:?}",
        check[0][0]
    );
    println!(
        "{label:<9} {loaded} rows in {:.2} s = {:>9.0} rows/s | peak RSS {} MiB (before load {} MiB) | sum(spend) {}",
        elapsed.as_secs_f64(),
        loaded as f64 / elapsed.as_secs_f64(),
        memory_kib("VmHWM").map_or("?".into(), |k| (k / 1024).to_string()),
        rss_before.map_or("?".into(), |k| (k / 1024).to_string()),
        check[0][1].as_deref().unwrap_or("?"),
    );
    let cleanup = format!(
        "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE",
        d.quote_identifier(BENCH_SCHEMA)?,
        d.quote_identifier(BENCH_METADATA_SCHEMA)?
    );
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
