//! The command line: every command and flag, with the help text users see.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// mdp — the marketing data platform: ingest ad platforms, transform, test and monitor, in one binary.
#[derive(Debug, Parser)]
#[command(name = "mdp", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The project directory (the one holding mdp.yml).
    #[arg(long, short = 'C', global = true, env = "MDP_PROJECT_DIR", default_value = ".")]
    pub project_dir: PathBuf,

    /// The warehouse target from mdp.yml to use (default: `warehouse.default`).
    #[arg(long, short = 't', global = true, env = "MDP_TARGET")]
    pub target: Option<String>,

    /// More log output on stderr (-v info, -vv debug). `MDP_LOG` takes precedence.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The offline demo: start the sandbox, create a project with all four platforms, ingest ~90 days, build and test the marketing marts, reconcile, print KPIs.
    Demo(DemoArgs),
    /// Create a new project: mdp.yml, models/, seeds/, macros/, tests/ and a .gitignore.
    Init(InitArgs),
    /// Check the project file, the warehouse, its metadata and the sources' credentials; say what to fix.
    Doctor,
    /// Authorize mdp on a platform (OAuth in the browser, loopback redirect) and write the source's refresh token file.
    Auth(AuthArgs),
    /// Connector specs (YAML platforms of connectors/): `mdp connector test PLATFORM` dry-runs one account and window.
    Connector(ConnectorArgs),
    /// Create or upgrade mdp's metadata schema in the warehouse (every writing command also does this).
    Migrate,
    /// Ingest the ad platforms into the raw layer: incremental (cursor + look-back), or a --from/--to backfill.
    Ingest(IngestArgs),
    /// Serve imitations of the ad platforms' APIs on 127.0.0.1 (for demos, tests and trying mdp offline).
    Sandbox(SandboxArgs),
    /// Run SQL against the warehouse and print the result (takes the writer lock unless --read-only).
    Sql(SqlArgs),
    /// Render models and tests to SQL in target/compiled (no database changes); prints the SQL of a single selected model.
    Compile(TransformArgs),
    /// Build the selected models (views, tables, incremental, ephemeral) in DAG order.
    Run(TransformArgs),
    /// Run the selected data tests (schema.yml generic tests and tests/*.sql).
    Test(TransformArgs),
    /// Load seeds/*.csv into tables.
    Seed(TransformArgs),
    /// Record what changed in the selected snapshots (`{% snapshot %}` blocks): type-2 history tables as dbt's.
    Snapshot(TransformArgs),
    /// Seeds, snapshots, models and tests together in DAG order; a failed node (or failing test) skips what depends on it.
    Build(TransformArgs),
    /// List the project's nodes matching a selection.
    Ls(LsArgs),
    /// Install the `local:` packages of packages.yml into dbt_packages/ (hub and git packages need `dbt deps`).
    Deps,
    /// Ingest → build → test now, as one DAG of tasks with retries and timeouts, recorded in the run history.
    Pipeline(PipelineArgs),
    /// Re-load a date range (windows in order per account, accounts and sources side by side), then rebuild the models.
    Backfill(BackfillArgs),
    /// Run the jobs of mdp.yml's `schedule:` on their cron schedules, in the foreground (for systemd or a container).
    Schedule(ScheduleArgs),
    /// Recent runs (`mdp runs`), or one run's tasks, timings, errors and logs (`mdp runs show ID`).
    Runs(RunsArgs),
    /// Run the monitors (freshness, volume, spend anomalies, zero spend, schema drift, KPI targets, API versions, conversion definitions) and record their results.
    Check(CheckArgs),
    /// Serve the web UI (overview, runs, lineage, checks, KPI dashboard), its API and Prometheus /metrics.
    Serve(ServeArgs),
    /// Documentation of the project: `mdp docs generate` writes a static site (models, columns, tests, sources, lineage).
    Docs(DocsArgs),
    /// Export mdp's DAG for Apache Airflow: `mdp airflow export [--out dags/]`.
    Airflow(AirflowArgs),
    /// Measure: `bench` bulk-loads 1 M rows into each adapter; `bench ingest` ingests 1 M+ rows from the sandbox and builds the marts; `bench transform` a 1000-model project; `bench scheduler` 1000 no-op tasks.
    Bench(BenchArgs),
}

/// How the tasks of an orchestrated run behave.
#[derive(Debug, Args, Clone, Default)]
pub struct TaskArgs {
    /// Tasks running at once (default: mdp.yml `schedule.concurrency`, else 4).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Retries of a failed task whose error may pass: a rate limit, a lost connection, a timeout (not a
    /// refused token or bad SQL). Default: `schedule.retries`, else 2.
    #[arg(long)]
    pub retries: Option<u32>,
    /// Seconds before the first retry, doubling after (default: `schedule.retry_delay_seconds`, else 60).
    #[arg(long)]
    pub retry_delay: Option<u64>,
    /// Seconds after which a task attempt is cancelled and fails (default: `schedule.task_timeout_seconds`).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// Build the models of platforms whose ingest succeeded when another failed (the run is flagged partial).
    #[arg(long)]
    pub partial: bool,
    /// "Today" for every account (tests, reproducible runs).
    #[arg(long, env = "MDP_TODAY", hide = true)]
    pub today: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Only these sources (default: every enabled source).
    #[arg(long = "source", short = 's')]
    pub sources: Vec<String>,
    /// Only these models (dbt selection syntax; default: every node).
    #[arg(long, num_args = 1..)]
    pub select: Vec<String>,
    /// Skip the ingest (build and test only).
    #[arg(long)]
    pub no_ingest: bool,
    /// Skip the build (ingest only).
    #[arg(long)]
    pub no_build: bool,
    /// Run only these tasks, by id as `mdp runs show` lists them (e.g. `ingest.google_ads.1234567890` or
    /// `model.mdp_marketing.fct_ad_performance_daily`): re-runs a failed task without its upstream tasks.
    #[arg(long = "task", value_name = "TASK_ID")]
    pub only_tasks: Vec<String>,
    #[command(flatten)]
    pub tasks: TaskArgs,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// First day to re-load.
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// Last day to re-load.
    #[arg(long)]
    pub to: chrono::NaiveDate,
    /// Only these sources (default: every enabled source).
    #[arg(long = "source", short = 's')]
    pub sources: Vec<String>,
    /// Days per window (each window is one task, replaced whole).
    #[arg(long, default_value_t = 7)]
    pub window_days: u32,
    /// Do not rebuild the models afterwards.
    #[arg(long)]
    pub no_build: bool,
    #[command(flatten)]
    pub tasks: TaskArgs,
}

#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Check what is due once and run it, then exit (for cron-driven setups and tests).
    #[arg(long)]
    pub once: bool,
    /// Seconds between checks for due jobs.
    #[arg(long, default_value_t = 30)]
    pub poll_seconds: u64,
    /// Pretend the time is this (RFC 3339), for tests and dry runs of a schedule; implies nothing else.
    #[arg(long, env = "MDP_NOW", hide = true)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: Option<RunsCommand>,
    /// How many runs to list.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its tasks with state, attempts, timings, rows, errors and logs.
    Show {
        /// The run id (from `mdp runs`).
        id: String,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only monitors of these kinds: freshness, volume, spend_anomaly, zero_spend, schema_drift, kpi_target.
    #[arg(long = "kind", short = 'k')]
    pub kinds: Vec<String>,
    /// Only checks whose name starts with this, e.g. `freshness.google_ads` (repeatable).
    #[arg(long, short = 's')]
    pub select: Vec<String>,
    /// Print the results as JSON on stdout (for machines) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Pretend today is this date in every account (reproducible checks against a pinned sandbox).
    #[arg(long, env = "MDP_TODAY", hide = true)]
    pub today: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Beyond loopback (e.g. 0.0.0.0:8080), actions need the token and are
    /// disabled without one; the pages stay read-only.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: std::net::SocketAddr,
    /// File whose first line is the token that actions need (else MDP_SERVE_TOKEN). Never logged.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// "Today" for freshness (tests, reproducible demos).
    #[arg(long, env = "MDP_TODAY", hide = true)]
    pub today: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct DocsArgs {
    #[command(subcommand)]
    pub command: DocsCommand,
}

#[derive(Debug, Subcommand)]
pub enum DocsCommand {
    /// Write the documentation site (index with the lineage graph, a page per model, seed and source, docs.json).
    Generate {
        /// The folder for the site (default: target/docs in the project folder). Its files are replaced.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Variables for `var()`, as YAML or JSON (as for `mdp compile`).
        #[arg(long)]
        vars: Option<String>,
        /// Where profiles.yml is, for a dbt project (default: DBT_PROFILES_DIR, the project folder, then ~/.dbt).
        #[arg(long, env = "DBT_PROFILES_DIR")]
        profiles_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct ConnectorArgs {
    #[command(subcommand)]
    pub command: ConnectorCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// Dry-run a source: its account, each entity stream and one window of daily rows, printing every request,
    /// a summary of each answer and the first records mapped. Writes nothing.
    Test {
        /// A source of mdp.yml (its `name:`), or a platform (its first source in mdp.yml).
        source: String,
        /// The account to read (default: the source's first).
        #[arg(long)]
        account: Option<String>,
        /// First day of the window (default: 3 days before --to).
        #[arg(long)]
        from: Option<chrono::NaiveDate>,
        /// Last day of the window (default: yesterday, UTC).
        #[arg(long)]
        to: Option<chrono::NaiveDate>,
        /// Records printed per stream.
        #[arg(long, default_value_t = 3)]
        records: usize,
    },
    /// The platforms mdp can read: built-in connectors and specs (the project's connectors/ included).
    List,
}

#[derive(Debug, Args)]
pub struct AirflowArgs {
    #[command(subcommand)]
    pub command: AirflowCommand,
}

#[derive(Debug, Subcommand)]
pub enum AirflowCommand {
    /// Write one Airflow DAG file per scheduled job (or one `pipeline` DAG without jobs).
    Export {
        /// The folder for the DAG files (Airflow's dags/ folder).
        #[arg(long, default_value = "dags")]
        out: PathBuf,
        /// One Airflow task per model and test (`node`, the default) or per layer (`layer`).
        #[arg(long, value_enum, default_value_t = AirflowGranularity::Node)]
        granularity: AirflowGranularity,
        /// The mdp executable the tasks call (default: `mdp` on the worker's PATH).
        #[arg(long, default_value = "mdp")]
        mdp: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AirflowGranularity {
    Node,
    Layer,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to create (or reuse) the demo project.
    #[arg(default_value = "mdp-demo")]
    pub dir: PathBuf,
    /// Days of history to load on the first run.
    #[arg(long, default_value_t = 90)]
    pub days: u64,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to create the project in (created if missing; must not hold an mdp.yml yet).
    pub dir: PathBuf,
    /// Project name (default: the directory's name, lower-cased, non-alphanumerics as `_`).
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Only these sources (names from mdp.yml); default: every enabled source.
    #[arg(long = "source", short = 's')]
    pub sources: Vec<String>,
    /// Only these accounts (as listed under the sources in mdp.yml); default: every account.
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// First day to load (a backfill); with --to, ignores the cursor.
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day to load (default: today in each account's time zone).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Reload from each source's start date (or look-back) and drop older raw rows of its accounts.
    #[arg(long)]
    pub full_refresh: bool,
    /// Accounts read at the same time.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Print the run's report as JSON on stdout (for machines) instead of the summary table.
    #[arg(long)]
    pub json: bool,
    /// Pretend today is this date in every account (demos and tests against a pinned sandbox).
    #[arg(long, env = "MDP_TODAY", hide = true)]
    pub today: Option<chrono::NaiveDate>,
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// The source in mdp.yml to authorize (its `name:`, by default the platform's name, e.g. google_ads).
    pub source: String,
    /// Port on 127.0.0.1 for the browser's redirect (0: any free port). Platforms that match redirect URIs
    /// exactly (LinkedIn) need a fixed port registered as `http://127.0.0.1:PORT/` in the app's settings.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Write the refresh token to this file instead of the one the source's `refresh_token` names.
    #[arg(long)]
    pub output: Option<std::path::PathBuf>,
    /// Seconds to wait for the browser's redirect.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Port on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// Seed of the generated data: the same seed serves the same numbers.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The sandbox's "today" (default: the real date).
    #[arg(long)]
    pub today: Option<chrono::NaiveDate>,
    /// Ads per ad group (more ads, more rows; 2 by default).
    #[arg(long, default_value_t = 2)]
    pub ads_per_ad_group: usize,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// The SQL to run. A query prints its rows; other statements print "ok".
    pub sql: String,
    /// Open the warehouse for reading only (no lock, no metadata migration).
    #[arg(long)]
    pub read_only: bool,
    /// Print at most this many rows.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchAdapter {
    All,
    Duckdb,
    Postgres,
    /// A Snowflake account's API address (`--snowflake-url`; the fakesnow stand-in, say).
    Snowflake,
    /// A BigQuery API address (`--bigquery-url`; the bqemulator stand-in, say).
    Bigquery,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchWhat {
    /// Bulk-load synthetic rows into each warehouse adapter.
    Warehouse,
    /// Ingest from the sandbox (run as a separate process) into a temporary DuckDB, end to end.
    Ingest,
    /// Generate a synthetic dbt project of --models layered models (2 tests each); time compile and build on DuckDB.
    Transform,
    /// Run a DAG of --models no-op tasks through the scheduler's executor; report the overhead per task.
    Scheduler,
    /// Read TikTok's daily rows from the sandbox with the hand-written connector and with the same API written as a
    /// connector spec, then Amazon Ads' through its asynchronous report jobs (no warehouse): rows/s and CPU per row.
    Connector,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum, default_value_t = BenchWhat::Warehouse)]
    pub what: BenchWhat,
    /// Rows to load per adapter (warehouse), or at least this many daily rows to ingest (ingest).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Models in the synthetic project (transform).
    #[arg(long, default_value_t = 1000)]
    pub models: usize,
    /// Threads for the build (transform).
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    /// Keep the synthetic project here instead of a temporary folder (transform), e.g. to run dbt on it.
    #[arg(long)]
    pub project_out: Option<PathBuf>,
    /// Rows per record batch.
    #[arg(long, default_value_t = 65_536)]
    pub batch_rows: usize,
    /// Which adapters to measure; `all` runs each in its own process so peak memory is per adapter.
    #[arg(long, value_enum, default_value_t = BenchAdapter::All)]
    pub adapter: BenchAdapter,
    /// Postgres server to measure (default: MDP_BENCH_POSTGRES_URL or MDP_TEST_POSTGRES_URL; skipped if none).
    #[arg(long, env = "MDP_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Snowflake API address to measure (default: MDP_BENCH_SNOWFLAKE_URL or MDP_TEST_SNOWFLAKE_URL, e.g. a
    /// local fakesnow; skipped if none). It signs in with user `mdp` and the password in SNOWFLAKE_PASSWORD.
    #[arg(long, env = "MDP_BENCH_SNOWFLAKE_URL")]
    pub snowflake_url: Option<String>,
    /// BigQuery API address to measure (default: MDP_BENCH_BIGQUERY_URL or MDP_TEST_BIGQUERY_URL, e.g. a local
    /// bqemulator; skipped if none). Project `mdp-bench`, no credentials (a stand-in takes none).
    #[arg(long, env = "MDP_BENCH_BIGQUERY_URL")]
    pub bigquery_url: Option<String>,
    /// DuckDB file to load into (default: a temporary file, deleted afterwards).
    #[arg(long)]
    pub duckdb_path: Option<PathBuf>,
}

/// Flags shared by compile, run, test, seed and build (dbt's names).
#[derive(Debug, Args, Clone, Default)]
pub struct TransformArgs {
    /// Nodes to include: names, `tag:x`, `path:models/staging`, `source:raw`, `+model`, `model+`, `2+model`, `@model`, `a,b` (intersection).
    #[arg(long, short = 's', alias = "models", short_alias = 'm', num_args = 1..)]
    pub select: Vec<String>,
    /// Nodes to leave out (same syntax as --select).
    #[arg(long, num_args = 1..)]
    pub exclude: Vec<String>,
    /// How many nodes to build at once (default: the profile target's `threads`).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Variables for `var()`, as YAML or JSON: `--vars '{start_date: 2026-01-01}'`.
    #[arg(long)]
    pub vars: Option<String>,
    /// Rebuild incremental models (and reload seeds) from scratch.
    #[arg(long)]
    pub full_refresh: bool,
    /// Where profiles.yml is (default: DBT_PROFILES_DIR, the project folder, then ~/.dbt).
    #[arg(long, env = "DBT_PROFILES_DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// An earlier run to compare with (its target/ folder: manifest.json, run_results.json), for
    /// `state:modified`, `state:new`, `result:error`, … and --defer.
    #[arg(long, env = "DBT_STATE")]
    pub state: Option<PathBuf>,
    /// Refs to nodes not selected that this target has not built read --state's relations instead
    /// (production's, usually): a pull request builds only what changed.
    #[arg(long, requires = "state")]
    pub defer: bool,
    /// With --defer: read --state's relations even where this target has its own.
    #[arg(long, requires = "defer")]
    pub favor_state: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub common: TransformArgs,
    /// Only these resource types: model, seed, test, source.
    #[arg(long = "resource-type", alias = "resource-types", num_args = 1..)]
    pub resource_type: Vec<String>,
    /// What to print per node.
    #[arg(long, short = 'o', value_enum, default_value_t = LsOutput::Selector)]
    pub output: LsOutput,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LsOutput {
    /// package.folder.name, usable in --select.
    Selector,
    Name,
    Path,
    Json,
}
