//! mdp's metadata schema (`mdp_meta` by default): run history, per-stream state, check results.
//!
//! It lives in the warehouse, beside the data, so that state commits in the same transaction as the
//! data it describes and travels with it. mdp creates and migrates it itself: [`MIGRATIONS`] is an
//! append-only list, each applied once in its own transaction and recorded in `schema_version`.
//! Tables are declared once as [`TableSchema`]s and rendered by each dialect, so both adapters get
//! the same schema. All timestamps are UTC.

use chrono::{NaiveDate, NaiveDateTime, Utc};

use mdp_core::TaskState;

use crate::dialect::{Condition, Literal, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lock::LockHolder;
use crate::rows::{Row, Rows};
use crate::types::{ColumnDef, ColumnType, TableSchema};
use crate::Warehouse;

/// One step of the metadata schema's history.
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    /// The tables this version creates.
    pub tables: fn() -> Vec<(&'static str, TableSchema)>,
}

/// Every migration, oldest first. Append only: never edit a released entry.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, description: "run history, stream state, check results", tables: tables_v1 },
    Migration {
        version: 2,
        description: "task instances of orchestrated runs, scheduled fire times",
        tables: tables_v2,
    },
    // Named by a constant: readers of `incidents` check for it, since a warehouse may be older than mdp.
    Migration { version: INCIDENTS_VERSION, description: "alert incidents", tables: tables_v3 },
];

/// The metadata version that added `incidents`.
pub const INCIDENTS_VERSION: i64 = 3;

/// The metadata version this build of mdp writes.
pub fn current_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const VERSION_TABLE: &str = "schema_version";
pub const RUNS: &str = "runs";
pub const STREAM_STATE: &str = "stream_state";
pub const CHECK_RESULTS: &str = "check_results";
pub const TASK_INSTANCES: &str = "task_instances";
pub const SCHEDULED_RUNS: &str = "scheduled_runs";
pub const INCIDENTS: &str = "incidents";

fn version_table() -> TableSchema {
    use ColumnType::*;
    TableSchema::new(vec![
        ColumnDef::new("version", Int64).not_null(),
        ColumnDef::new("description", Text),
        ColumnDef::new("applied_at", Timestamp),
        ColumnDef::new("mdp_version", Text),
    ])
    .with_primary_key(&["version"])
}

fn tables_v1() -> Vec<(&'static str, TableSchema)> {
    use ColumnType::*;
    vec![
        (
            RUNS,
            TableSchema::new(vec![
                ColumnDef::new("run_id", Text).not_null(),
                ColumnDef::new("command", Text),
                ColumnDef::new("status", Text).not_null(),
                ColumnDef::new("started_at", Timestamp).not_null(),
                ColumnDef::new("finished_at", Timestamp),
                ColumnDef::new("pid", Int64),
                ColumnDef::new("host", Text),
                ColumnDef::new("mdp_version", Text),
                ColumnDef::new("error", Text),
            ])
            .with_primary_key(&["run_id"]),
        ),
        (
            STREAM_STATE,
            TableSchema::new(vec![
                ColumnDef::new("source", Text).not_null(),
                ColumnDef::new("stream", Text).not_null(),
                ColumnDef::new("account_id", Text).not_null(),
                ColumnDef::new("cursor_date", Date),
                ColumnDef::new("last_window_start", Date),
                ColumnDef::new("last_window_end", Date),
                ColumnDef::new("last_run_id", Text),
                ColumnDef::new("rows_loaded", Int64),
                ColumnDef::new("updated_at", Timestamp),
            ])
            .with_primary_key(&["source", "stream", "account_id"]),
        ),
        (
            CHECK_RESULTS,
            TableSchema::new(vec![
                ColumnDef::new("run_id", Text).not_null(),
                ColumnDef::new("check_name", Text).not_null(),
                ColumnDef::new("check_kind", Text),
                ColumnDef::new("relation", Text),
                ColumnDef::new("status", Text).not_null(),
                ColumnDef::new("observed", Text),
                ColumnDef::new("expected", Text),
                ColumnDef::new("failing_rows", Int64),
                ColumnDef::new("message", Text),
                ColumnDef::new("sample_query", Text),
                ColumnDef::new("executed_at", Timestamp).not_null(),
            ]),
        ),
    ]
}

fn tables_v2() -> Vec<(&'static str, TableSchema)> {
    use ColumnType::*;
    vec![
        (
            TASK_INSTANCES,
            TableSchema::new(vec![
                ColumnDef::new("run_id", Text).not_null(),
                ColumnDef::new("task_id", Text).not_null(),
                ColumnDef::new("kind", Text),
                ColumnDef::new("state", Text).not_null(),
                ColumnDef::new("attempts", Int64).not_null(),
                ColumnDef::new("started_at", Timestamp),
                ColumnDef::new("finished_at", Timestamp),
                ColumnDef::new("rows", Int64),
                ColumnDef::new("error", Text),
                ColumnDef::new("log", Text),
            ])
            .with_primary_key(&["run_id", "task_id"]),
        ),
        (
            // One row per (job, fire time) ever started: the primary key makes a fire time run once.
            SCHEDULED_RUNS,
            TableSchema::new(vec![
                ColumnDef::new("job", Text).not_null(),
                ColumnDef::new("scheduled_for", Timestamp).not_null(),
                ColumnDef::new("run_id", Text).not_null(),
                ColumnDef::new("claimed_at", Timestamp).not_null(),
            ])
            .with_primary_key(&["job", "scheduled_for"]),
        ),
    ]
}

fn tables_v3() -> Vec<(&'static str, TableSchema)> {
    use ColumnType::*;
    vec![(
        // One row per incident: a run or check that turned red, until it is green again. A key has
        // at most one open incident; a resolved one stays as history.
        INCIDENTS,
        TableSchema::new(vec![
            ColumnDef::new("incident_id", Text).not_null(),
            ColumnDef::new("incident_key", Text).not_null(),
            ColumnDef::new("kind", Text).not_null(),
            ColumnDef::new("subject", Text).not_null(),
            ColumnDef::new("status", Text).not_null(),
            ColumnDef::new("opened_at", Timestamp).not_null(),
            ColumnDef::new("resolved_at", Timestamp),
            ColumnDef::new("opened_run_id", Text),
            ColumnDef::new("last_seen_run_id", Text),
            ColumnDef::new("last_status", Text),
            ColumnDef::new("message", Text),
            ColumnDef::new("updated_at", Timestamp),
        ])
        .with_primary_key(&["incident_id"]),
    )]
}

/// A row of `incidents`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRecord {
    pub incident_id: String,
    /// What is red, e.g. `run:pipeline`, `run:schedule:daily`, `check:freshness.google_ads.ad_daily`.
    pub incident_key: String,
    /// `run` or `check`.
    pub kind: String,
    /// The job, command or check name.
    pub subject: String,
    /// `open` or `resolved`.
    pub status: String,
    pub opened_at: NaiveDateTime,
    pub resolved_at: Option<NaiveDateTime>,
    pub opened_run_id: Option<String>,
    pub last_seen_run_id: Option<String>,
    /// The latest status seen: a run's `failed` / `success`, a check's `fail` / `warn` / `error` / `pass`.
    pub last_status: Option<String>,
    pub message: Option<String>,
}

/// A row of `check_results`, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResultRecord {
    pub check_name: String,
    pub check_kind: Option<String>,
    pub status: String,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub message: Option<String>,
}

/// One task of an orchestrated run, for `task_instances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub run_id: String,
    pub task_id: String,
    pub kind: String,
    /// `running`, `success`, `failed`, `upstream_failed`, `skipped`.
    pub state: String,
    pub attempts: i64,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub rows: Option<i64>,
    pub error: Option<String>,
    pub log: Option<String>,
}

/// The state of a run in `runs.status` (one vocabulary, defined in `mdp-core`).
pub use mdp_core::RunStatus;

/// A row of `runs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// The cursor of one stream for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCursor {
    pub source: String,
    pub stream: String,
    pub account_id: String,
    pub cursor_date: Option<NaiveDate>,
    pub last_run_id: Option<String>,
}

/// One check outcome for `check_results`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult<'a> {
    pub run_id: &'a str,
    pub check_name: &'a str,
    pub check_kind: &'a str,
    pub relation: Option<&'a str>,
    pub status: &'a str,
    pub observed: Option<&'a str>,
    pub expected: Option<&'a str>,
    pub failing_rows: Option<i64>,
    pub message: Option<&'a str>,
    pub sample_query: Option<&'a str>,
}

/// Reads and writes the metadata schema of one warehouse.
pub struct Metadata<'w> {
    warehouse: &'w dyn Warehouse,
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

impl<'w> Metadata<'w> {
    pub fn new(warehouse: &'w dyn Warehouse) -> Self {
        Metadata { warehouse }
    }

    fn table(&self, name: &str) -> TableRef {
        TableRef::new(self.warehouse.metadata_schema(), name)
    }

    fn qualified(&self, name: &str) -> Result<String> {
        self.warehouse.dialect().qualified(&self.table(name))
    }

    fn lit(&self, value: Literal<'_>) -> Result<String> {
        self.warehouse.dialect().literal(&value)
    }

    fn opt_text(&self, value: Option<&str>) -> Result<String> {
        self.lit(value.map_or(Literal::Null, Literal::Text))
    }

    /// The applied metadata version, or `None` when the schema was never created.
    pub async fn version(&self) -> Result<Option<i64>> {
        if !self.warehouse.exists(&self.table(VERSION_TABLE)).await? {
            return Ok(None);
        }
        let sql =
            format!("SELECT {} FROM {}", self.aliased("max(version)", "version")?, self.qualified(VERSION_TABLE)?);
        Ok(self.named_rows(&sql).await?.decode_first(|r| r.opt_i64("version"))?.flatten())
    }

    /// Bring the schema to [`current_version`]. Callers hold the writer lock.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let d = self.warehouse.dialect();
        let schema = self.warehouse.metadata_schema();
        self.warehouse
            .execute(&format!(
                "{};\n{}",
                d.create_schema_sql(schema)?,
                d.create_table_sql(&self.table(VERSION_TABLE), &version_table())?
            ))
            .await?;
        let found = self.version().await?.unwrap_or(0);
        if found > current_version() {
            return Err(WarehouseError::MetadataTooNew { found, known: current_version() });
        }
        let mut applied = Vec::new();
        for migration in MIGRATIONS.iter().filter(|m| m.version > found) {
            let mut statements = Vec::new();
            for (name, table) in (migration.tables)() {
                statements.push(d.create_table_sql(&self.table(name), &table)?);
            }
            statements.push(format!(
                "INSERT INTO {} (version, description, applied_at, mdp_version) VALUES ({}, {}, {}, {})",
                self.qualified(VERSION_TABLE)?,
                migration.version,
                self.lit(Literal::Text(migration.description))?,
                self.lit(Literal::Timestamp(now()))?,
                self.lit(Literal::Text(env!("CARGO_PKG_VERSION")))?
            ));
            let mut tx = self.warehouse.begin().await?;
            tx.execute(&statements.join(";\n")).await?;
            tx.commit().await?;
            tracing::info!(version = migration.version, "migrated metadata schema");
            applied.push(migration.version);
        }
        Ok(applied)
    }

    /// Record the start of a run.
    pub async fn start_run(&self, holder: &LockHolder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (run_id, command, status, started_at, pid, host, mdp_version) VALUES ({}, {}, {}, {}, {}, {}, {})",
            self.qualified(RUNS)?,
            self.lit(Literal::Text(&holder.run_id))?,
            self.lit(Literal::Text(&holder.command))?,
            self.lit(Literal::Text(RunStatus::Running.as_str()))?,
            self.lit(Literal::Timestamp(holder.since.naive_utc()))?,
            holder.pid,
            self.lit(Literal::Text(&holder.host))?,
            self.lit(Literal::Text(env!("CARGO_PKG_VERSION")))?
        );
        self.warehouse.execute(&sql).await
    }

    /// Record the end of a run.
    pub async fn finish_run(&self, run_id: &str, status: RunStatus, error: Option<&str>) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET status = {}, finished_at = {}, error = {} WHERE run_id = {}",
            self.qualified(RUNS)?,
            self.lit(Literal::Text(status.as_str()))?,
            self.lit(Literal::Timestamp(now()))?,
            self.opt_text(error)?,
            self.lit(Literal::Text(run_id))?
        );
        self.warehouse.execute(&sql).await
    }

    /// A writer died holding the lock: mark its run failed (recording it if it never got that far).
    pub async fn mark_run_abandoned(&self, stale: &LockHolder, detected_by: &LockHolder) -> Result<()> {
        let message = format!(
            "the mdp process (pid {} on {}) stopped without finishing; stale lock found by run {} at {}",
            stale.pid,
            stale.host,
            detected_by.run_id,
            detected_by.since.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let exists = format!(
            "SELECT {} FROM {} WHERE run_id = {}",
            self.aliased("count(*)", "runs")?,
            self.qualified(RUNS)?,
            self.lit(Literal::Text(&stale.run_id))?
        );
        if self.named_rows(&exists).await?.decode_first(|r| r.i64("runs"))? == Some(0) {
            self.start_run(stale).await?;
        }
        self.fail_running_tasks(&stale.run_id, &message).await?;
        self.finish_run(&stale.run_id, RunStatus::Failed, Some(&message)).await
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.runs_where("TRUE", limit).await
    }

    /// The runs whose id starts with `prefix` (what a user types from `mdp runs`), newest first.
    pub async fn runs_with_prefix(&self, prefix: &str) -> Result<Vec<RunRecord>> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        self.runs_where(&format!("run_id LIKE {}", self.lit(Literal::Text(&pattern))?), 2).await
    }

    async fn runs_where(&self, condition: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT run_id, command, status, {}, {}, error FROM {} r WHERE {condition} \
             ORDER BY r.started_at DESC LIMIT {limit}",
            self.aliased(&d.cast_to_text("r.started_at"), "started_at")?,
            self.aliased(&d.cast_to_text("r.finished_at"), "finished_at")?,
            self.qualified(RUNS)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(RunRecord {
                run_id: r.text("run_id")?,
                command: r.opt_text("command")?.unwrap_or_default(),
                status: r.text("status")?,
                started_at: r.text("started_at")?,
                finished_at: r.opt_text("finished_at")?,
                error: r.opt_text("error")?,
            })
        })
    }

    /// The SQL that upserts a stream's cursor. Run it in the transaction that writes the window, so
    /// the data and the cursor commit together.
    pub fn set_cursor_sql(
        &self,
        cursor: &StreamCursor,
        window: (NaiveDate, NaiveDate),
        rows_loaded: i64,
    ) -> Result<String> {
        let d = self.warehouse.dialect();
        let cursor_date = cursor.cursor_date.map_or(Literal::Null, Literal::Date);
        let source = format!(
            "(SELECT {} AS source, {} AS stream, {} AS account_id, {} AS cursor_date, {} AS last_window_start, \
             {} AS last_window_end, {} AS last_run_id, {} AS rows_loaded, {} AS updated_at)",
            self.lit(Literal::Text(&cursor.source))?,
            self.lit(Literal::Text(&cursor.stream))?,
            self.lit(Literal::Text(&cursor.account_id))?,
            self.lit(cursor_date)?,
            self.lit(Literal::Date(window.0))?,
            self.lit(Literal::Date(window.1))?,
            self.opt_text(cursor.last_run_id.as_deref())?,
            d.cast(&rows_loaded.to_string(), ColumnType::Int64),
            self.lit(Literal::Timestamp(now()))?
        );
        let key = ["source", "stream", "account_id"].map(String::from);
        let update =
            ["cursor_date", "last_window_start", "last_window_end", "last_run_id", "rows_loaded", "updated_at"]
                .map(String::from);
        d.merge_sql(&self.table(STREAM_STATE), &source, &key, &update)
    }

    /// The cursor of a stream for an account, if it was ever loaded.
    pub async fn cursor(&self, source: &str, stream: &str, account_id: &str) -> Result<Option<StreamCursor>> {
        let sql = format!(
            "SELECT {}, last_run_id FROM {} WHERE source = {} AND stream = {} AND account_id = {}",
            self.aliased(&self.warehouse.dialect().cast_to_text("cursor_date"), "cursor_date")?,
            self.qualified(STREAM_STATE)?,
            self.lit(Literal::Text(source))?,
            self.lit(Literal::Text(stream))?,
            self.lit(Literal::Text(account_id))?
        );
        self.named_rows(&sql).await?.decode_first(|r| {
            Ok(StreamCursor {
                source: source.to_string(),
                stream: stream.to_string(),
                account_id: account_id.to_string(),
                cursor_date: r.opt_date("cursor_date")?,
                last_run_id: r.opt_text("last_run_id")?,
            })
        })
    }

    /// Insert or replace task instances (their latest states), in one statement. Each task may
    /// appear once.
    pub async fn record_tasks(&self, tasks: &[TaskRecord]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let d = self.warehouse.dialect();
        let ts = |v: Option<NaiveDateTime>| -> Result<String> {
            Ok(d.cast(&self.lit(v.map_or(Literal::Null, Literal::Timestamp))?, ColumnType::Timestamp))
        };
        let mut rows = Vec::with_capacity(tasks.len());
        for t in tasks {
            rows.push(format!(
                "SELECT {} AS run_id, {} AS task_id, {} AS kind, {} AS state, {} AS attempts, \
                 {} AS started_at, {} AS finished_at, {} AS rows, {} AS error, {} AS log",
                self.lit(Literal::Text(&t.run_id))?,
                self.lit(Literal::Text(&t.task_id))?,
                self.lit(Literal::Text(&t.kind))?,
                self.lit(Literal::Text(&t.state))?,
                d.cast(&t.attempts.to_string(), ColumnType::Int64),
                ts(t.started_at)?,
                ts(t.finished_at)?,
                d.cast(&self.lit(t.rows.map_or(Literal::Null, Literal::Int))?, ColumnType::Int64),
                d.cast_to_text(&self.opt_text(t.error.as_deref())?),
                d.cast_to_text(&self.opt_text(t.log.as_deref())?),
            ));
        }
        let source = format!("({})", rows.join(" UNION ALL "));
        let key = ["run_id", "task_id"].map(String::from);
        let update =
            ["kind", "state", "attempts", "started_at", "finished_at", "rows", "error", "log"].map(String::from);
        let sql = self.warehouse.dialect().merge_sql(&self.table(TASK_INSTANCES), &source, &key, &update)?;
        self.warehouse.execute(&sql).await
    }

    /// The task instances of a run, in start order.
    pub async fn tasks_of_run(&self, run_id: &str) -> Result<Vec<TaskRecord>> {
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT task_id, kind, state, attempts, {}, {}, rows, error, log FROM {} t WHERE run_id = {} \
             ORDER BY t.started_at, t.task_id",
            self.aliased(&d.cast_to_text("t.started_at"), "started_at")?,
            self.aliased(&d.cast_to_text("t.finished_at"), "finished_at")?,
            self.qualified(TASK_INSTANCES)?,
            self.lit(Literal::Text(run_id))?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(TaskRecord {
                run_id: run_id.to_string(),
                task_id: r.text("task_id")?,
                kind: r.opt_text("kind")?.unwrap_or_default(),
                state: r.text("state")?,
                attempts: r.i64("attempts")?,
                started_at: r.opt_timestamp("started_at")?,
                finished_at: r.opt_timestamp("finished_at")?,
                rows: r.opt_i64("rows")?,
                error: r.opt_text("error")?,
                log: r.opt_text("log")?,
            })
        })
    }

    /// Mark the tasks still `running` in a run that ended (a killed process) as failed.
    pub async fn fail_running_tasks(&self, run_id: &str, why: &str) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET state = {}, error = {}, finished_at = {} WHERE run_id = {} AND state = {}",
            self.qualified(TASK_INSTANCES)?,
            self.lit(Literal::Text(TaskState::Failed.as_str()))?,
            self.lit(Literal::Text(why))?,
            self.lit(Literal::Timestamp(now()))?,
            self.lit(Literal::Text(run_id))?,
            self.lit(Literal::Text(TaskState::Running.as_str()))?
        );
        self.warehouse.execute(&sql).await
    }

    /// Claim a job's fire time for a run; false when it was claimed before (it ran or runs already).
    pub async fn claim_fire_time(&self, job: &str, scheduled_for: NaiveDateTime, run_id: &str) -> Result<bool> {
        let table = self.qualified(SCHEDULED_RUNS)?;
        let job_lit = self.lit(Literal::Text(job))?;
        let at = self.lit(Literal::Timestamp(scheduled_for))?;
        let claims = self.aliased("count(*)", "claims")?;
        let exists = format!("SELECT {claims} FROM {table} WHERE job = {job_lit} AND scheduled_for = {at}");
        if self.named_rows(&exists).await?.decode_first(|r| r.i64("claims"))? != Some(0) {
            return Ok(false);
        }
        let insert = format!(
            "INSERT INTO {table} (job, scheduled_for, run_id, claimed_at) VALUES ({job_lit}, {at}, {}, {})",
            self.lit(Literal::Text(run_id))?,
            self.lit(Literal::Timestamp(now()))?
        );
        // Claims are made under the writer lock, so nothing can claim between the check and this
        // insert (and the primary key would refuse it).
        self.warehouse.execute(&insert).await?;
        Ok(true)
    }

    /// The latest fire time of a job that was claimed.
    pub async fn last_fire_time(&self, job: &str) -> Result<Option<NaiveDateTime>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE job = {}",
            self.aliased(&self.warehouse.dialect().cast_to_text("max(scheduled_for)"), "scheduled_for")?,
            self.qualified(SCHEDULED_RUNS)?,
            self.lit(Literal::Text(job))?
        );
        Ok(self.named_rows(&sql).await?.decode_first(|r| r.opt_timestamp("scheduled_for"))?.flatten())
    }

    /// One run by its exact id.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let condition = format!("run_id = {}", self.lit(Literal::Text(run_id))?);
        Ok(self.runs_where(&condition, 1).await?.pop())
    }

    /// The check results recorded by a run (the last one per check name when a run recorded several).
    pub async fn check_results_of_run(&self, run_id: &str) -> Result<Vec<CheckResultRecord>> {
        let sql = format!(
            "SELECT check_name, check_kind, status, observed, expected, message FROM {} WHERE run_id = {} \
             ORDER BY executed_at, check_name",
            self.qualified(CHECK_RESULTS)?,
            self.lit(Literal::Text(run_id))?
        );
        let records = self.named_rows(&sql).await?.decode(|r| {
            Ok(CheckResultRecord {
                check_name: r.text("check_name")?,
                check_kind: r.opt_text("check_kind")?,
                status: r.text("status")?,
                observed: r.opt_text("observed")?,
                expected: r.opt_text("expected")?,
                message: r.opt_text("message")?,
            })
        })?;
        let mut out: Vec<CheckResultRecord> = Vec::new();
        for record in records {
            out.retain(|earlier| earlier.check_name != record.check_name);
            out.push(record);
        }
        Ok(out)
    }

    /// The open incidents, oldest first.
    pub async fn open_incidents(&self) -> Result<Vec<IncidentRecord>> {
        self.incidents_where(&format!("status = {}", self.lit(Literal::Text("open"))?), None).await
    }

    /// The most recent incidents (open or resolved), newest first.
    pub async fn recent_incidents(&self, limit: usize) -> Result<Vec<IncidentRecord>> {
        self.incidents_where("TRUE", Some(limit)).await
    }

    async fn incidents_where(&self, condition: &str, newest_first: Option<usize>) -> Result<Vec<IncidentRecord>> {
        let order = match newest_first {
            Some(limit) => format!("ORDER BY i.opened_at DESC, i.incident_id LIMIT {limit}"),
            None => "ORDER BY i.opened_at, i.incident_id".to_string(),
        };
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT incident_id, incident_key, kind, subject, status, {}, {}, opened_run_id, last_seen_run_id, \
             last_status, message FROM {} i WHERE {condition} {order}",
            self.aliased(&d.cast_to_text("i.opened_at"), "opened_at")?,
            self.aliased(&d.cast_to_text("i.resolved_at"), "resolved_at")?,
            self.qualified(INCIDENTS)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(IncidentRecord {
                incident_id: r.text("incident_id")?,
                incident_key: r.text("incident_key")?,
                kind: r.text("kind")?,
                subject: r.text("subject")?,
                status: r.text("status")?,
                opened_at: r.opt_timestamp("opened_at")?.unwrap_or_default(),
                resolved_at: r.opt_timestamp("resolved_at")?,
                opened_run_id: r.opt_text("opened_run_id")?,
                last_seen_run_id: r.opt_text("last_seen_run_id")?,
                last_status: r.opt_text("last_status")?,
                message: r.opt_text("message")?,
            })
        })
    }

    /// Insert or update incidents (by `incident_id`), in one statement.
    pub async fn save_incidents(&self, incidents: &[IncidentRecord]) -> Result<()> {
        if incidents.is_empty() {
            return Ok(());
        }
        let d = self.warehouse.dialect();
        let ts = |v: Option<NaiveDateTime>| -> Result<String> {
            Ok(d.cast(&self.lit(v.map_or(Literal::Null, Literal::Timestamp))?, ColumnType::Timestamp))
        };
        let text = |v: Option<&str>| -> Result<String> { Ok(d.cast_to_text(&self.opt_text(v)?)) };
        let mut rows = Vec::with_capacity(incidents.len());
        for i in incidents {
            rows.push(format!(
                "SELECT {} AS incident_id, {} AS incident_key, {} AS kind, {} AS subject, {} AS status, \
                 {} AS opened_at, {} AS resolved_at, {} AS opened_run_id, {} AS last_seen_run_id, \
                 {} AS last_status, {} AS message, {} AS updated_at",
                self.lit(Literal::Text(&i.incident_id))?,
                self.lit(Literal::Text(&i.incident_key))?,
                self.lit(Literal::Text(&i.kind))?,
                self.lit(Literal::Text(&i.subject))?,
                self.lit(Literal::Text(&i.status))?,
                ts(Some(i.opened_at))?,
                ts(i.resolved_at)?,
                text(i.opened_run_id.as_deref())?,
                text(i.last_seen_run_id.as_deref())?,
                text(i.last_status.as_deref())?,
                text(i.message.as_deref())?,
                ts(Some(now()))?,
            ));
        }
        let source = format!("({})", rows.join(" UNION ALL "));
        let key = ["incident_id"].map(String::from);
        let update = [
            "incident_key",
            "kind",
            "subject",
            "status",
            "opened_at",
            "resolved_at",
            "opened_run_id",
            "last_seen_run_id",
            "last_status",
            "message",
            "updated_at",
        ]
        .map(String::from);
        let sql = self.warehouse.dialect().merge_sql(&self.table(INCIDENTS), &source, &key, &update)?;
        self.warehouse.execute(&sql).await
    }

    /// Store many check outcomes, a few hundred rows per `INSERT` (one round trip each).
    pub async fn record_checks(&self, results: &[CheckResult<'_>]) -> Result<()> {
        let executed_at = self.lit(Literal::Timestamp(now()))?;
        for chunk in results.chunks(250) {
            let mut rows = Vec::with_capacity(chunk.len());
            for r in chunk {
                rows.push(format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {executed_at})",
                    self.lit(Literal::Text(r.run_id))?,
                    self.lit(Literal::Text(r.check_name))?,
                    self.lit(Literal::Text(r.check_kind))?,
                    self.opt_text(r.relation)?,
                    self.lit(Literal::Text(r.status))?,
                    self.opt_text(r.observed)?,
                    self.opt_text(r.expected)?,
                    self.lit(r.failing_rows.map_or(Literal::Null, Literal::Int))?,
                    self.opt_text(r.message)?,
                    self.opt_text(r.sample_query)?,
                ));
            }
            let sql = format!(
                "INSERT INTO {} (run_id, check_name, check_kind, relation, status, observed, expected, failing_rows, \
                 message, sample_query, executed_at) VALUES {}",
                self.qualified(CHECK_RESULTS)?,
                rows.join(", ")
            );
            self.warehouse.execute(&sql).await?;
        }
        Ok(())
    }

    /// Store one check outcome.
    pub async fn record_check(&self, result: &CheckResult<'_>) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (run_id, check_name, check_kind, relation, status, observed, expected, failing_rows, \
             message, sample_query, executed_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            self.qualified(CHECK_RESULTS)?,
            self.lit(Literal::Text(result.run_id))?,
            self.lit(Literal::Text(result.check_name))?,
            self.lit(Literal::Text(result.check_kind))?,
            self.opt_text(result.relation)?,
            self.lit(Literal::Text(result.status))?,
            self.opt_text(result.observed)?,
            self.opt_text(result.expected)?,
            self.lit(result.failing_rows.map_or(Literal::Null, Literal::Int))?,
            self.opt_text(result.message)?,
            self.opt_text(result.sample_query)?,
            self.lit(Literal::Timestamp(now()))?
        );
        self.warehouse.execute(&sql).await
    }
}

/// A row of `stream_state`: where a stream of an account stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    pub source: String,
    pub stream: String,
    pub account_id: String,
    pub cursor_date: Option<NaiveDate>,
    pub last_window_start: Option<NaiveDate>,
    pub last_window_end: Option<NaiveDate>,
    pub last_run_id: Option<String>,
    pub rows_loaded: Option<i64>,
    /// When the state last moved (UTC): a load that found no rows still moves it.
    pub updated_at: Option<NaiveDateTime>,
}

impl crate::rows::FromRow for StreamState {
    fn from_row(row: &crate::rows::Row<'_>) -> Result<Self> {
        Ok(StreamState {
            source: row.text("source")?,
            stream: row.text("stream")?,
            account_id: row.text("account_id")?,
            cursor_date: row.opt_date("cursor_date")?,
            last_window_start: row.opt_date("last_window_start")?,
            last_window_end: row.opt_date("last_window_end")?,
            last_run_id: row.opt_text("last_run_id")?,
            rows_loaded: row.opt_i64("rows_loaded")?,
            updated_at: row.opt_timestamp("updated_at")?,
        })
    }
}

impl Metadata<'_> {
    /// The statement of [`Metadata::stream_states`].
    pub fn stream_states_sql(&self) -> Result<String> {
        Ok(format!(
            "SELECT source, stream, account_id, cursor_date, last_window_start, last_window_end, last_run_id, \
             rows_loaded, updated_at FROM {} ORDER BY source, stream, account_id",
            self.qualified(STREAM_STATE)?
        ))
    }

    /// Every stream's state per account, by source, stream and account; none when nothing was
    /// ever loaded (or the metadata schema does not exist: readers never create it).
    pub async fn stream_states(&self) -> Result<Vec<StreamState>> {
        if !self.warehouse.exists(&self.table(STREAM_STATE)).await? {
            return Ok(Vec::new());
        }
        crate::rows::fetch(self.warehouse, &self.stream_states_sql()?).await
    }
}

/// A row of `check_results` with every column, as pages, the API and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredCheckResult {
    pub run_id: String,
    pub check_name: String,
    pub check_kind: Option<String>,
    pub relation: Option<String>,
    pub status: String,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub failing_rows: Option<i64>,
    pub message: Option<String>,
    pub sample_query: Option<String>,
    /// As the engine prints the timestamp (UTC), e.g. `2026-06-30 10:00:00.123456`.
    pub executed_at: String,
}

/// Which check results [`Metadata::check_history`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckHistoryFilter<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// The newest this many.
    pub limit: usize,
}

/// The distinct check kinds and statuses recorded (the check history's filter menus).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckFacets {
    pub kinds: Vec<String>,
    pub statuses: Vec<String>,
}

/// One (source, stream) of `stream_state`, its accounts folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFreshness {
    pub source: String,
    pub stream: String,
    pub accounts: i64,
    /// The oldest cursor among the accounts: data is complete up to this day for every account.
    pub oldest_cursor: Option<NaiveDate>,
    /// The last time any account of the stream was loaded (UTC).
    pub last_loaded_at: Option<NaiveDateTime>,
    /// Rows of each account's last loaded window, summed.
    pub last_window_rows: i64,
}

/// How many runs have a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    pub status: String,
    pub runs: i64,
}

/// How many task instances have a kind and a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCount {
    /// Empty when the task recorded none.
    pub kind: String,
    pub state: String,
    pub tasks: i64,
}

/// The durations of the finished task instances of one kind, as a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDurations {
    /// Empty when the task recorded none.
    pub kind: String,
    pub tasks: i64,
    pub total_seconds: f64,
    /// Tasks that took at most each bound passed to [`Metadata::task_durations`], in its order.
    pub at_most: Vec<i64>,
}

/// The rows a task loaded, summed over every run it ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRows {
    pub task_id: String,
    pub rows: i64,
}

/// Read-only summaries of the metadata for pages, the API and `/metrics`. Every statement is
/// composed here through the warehouse's dialect (names quoted, values literals, engine casts) and
/// every row is read by column name.
impl<'w> Metadata<'w> {
    fn quoted(&self, ident: &str) -> Result<String> {
        self.warehouse.dialect().quote_identifier(ident)
    }

    /// `<expr> AS "<alias>"`.
    fn aliased(&self, expr: &str, alias: &str) -> Result<String> {
        Ok(format!("{expr} AS {}", self.quoted(alias)?))
    }

    async fn named_rows(&self, sql: &str) -> Result<Rows> {
        Ok(Rows::new(self.warehouse.query_all(sql).await?))
    }

    /// The select list of a [`StoredCheckResult`] read from `check_results` under `alias`.
    fn stored_check_columns(&self, alias: &str) -> Result<String> {
        let d = self.warehouse.dialect();
        let mut columns = Vec::new();
        for name in [
            "run_id",
            "check_name",
            "check_kind",
            "relation",
            "status",
            "observed",
            "expected",
            "failing_rows",
            "message",
            "sample_query",
        ] {
            columns.push(self.aliased(&format!("{alias}.{}", self.quoted(name)?), name)?);
        }
        let executed_at = format!("{alias}.{}", self.quoted("executed_at")?);
        columns.push(self.aliased(&d.cast_to_text(&executed_at), "executed_at")?);
        Ok(columns.join(", "))
    }

    fn stored_check(row: &Row<'_>) -> Result<StoredCheckResult> {
        Ok(StoredCheckResult {
            run_id: row.text("run_id")?,
            check_name: row.text("check_name")?,
            check_kind: row.opt_text("check_kind")?,
            relation: row.opt_text("relation")?,
            status: row.text("status")?,
            observed: row.opt_text("observed")?,
            expected: row.opt_text("expected")?,
            failing_rows: row.opt_i64("failing_rows")?,
            message: row.opt_text("message")?,
            sample_query: row.opt_text("sample_query")?,
            executed_at: row.text("executed_at")?,
        })
    }

    /// The latest result of every check (by `check_name`), by check name. Two results of one check
    /// recorded at the same instant are both returned.
    pub async fn latest_check_results(&self) -> Result<Vec<StoredCheckResult>> {
        let table = self.qualified(CHECK_RESULTS)?;
        let (name, at, latest) = (self.quoted("check_name")?, self.quoted("executed_at")?, self.quoted("latest")?);
        let sql = format!(
            "SELECT {columns} FROM {table} c JOIN (SELECT {name}, max({at}) AS {latest} FROM {table} GROUP BY {name}) l \
             ON c.{name} = l.{name} AND c.{at} = l.{latest} ORDER BY c.{name}",
            columns = self.stored_check_columns("c")?
        );
        self.named_rows(&sql).await?.decode(Self::stored_check)
    }

    /// Check results, newest first, filtered by status and kind.
    pub async fn check_history(&self, filter: &CheckHistoryFilter<'_>) -> Result<Vec<StoredCheckResult>> {
        let mut conditions = Vec::new();
        if let Some(status) = filter.status {
            conditions.push(Condition::eq("status", Literal::Text(status)));
        }
        if let Some(kind) = filter.kind {
            conditions.push(Condition::eq("check_kind", Literal::Text(kind)));
        }
        let sql = format!(
            "SELECT {} FROM {} c WHERE {} ORDER BY c.{} DESC, c.{} LIMIT {}",
            self.stored_check_columns("c")?,
            self.qualified(CHECK_RESULTS)?,
            self.warehouse.dialect().conditions_sql(&conditions)?,
            self.quoted("executed_at")?,
            self.quoted("check_name")?,
            filter.limit
        );
        self.named_rows(&sql).await?.decode(Self::stored_check)
    }

    /// The distinct check kinds and statuses recorded, sorted.
    pub async fn check_facets(&self) -> Result<CheckFacets> {
        let table = self.qualified(CHECK_RESULTS)?;
        let mut distinct = Vec::new();
        for column in ["check_kind", "status"] {
            let c = self.quoted(column)?;
            let sql = format!(
                "SELECT DISTINCT {} FROM {table} WHERE {c} IS NOT NULL ORDER BY {}",
                self.aliased(&c, "value")?,
                self.quoted("value")?
            );
            distinct.push(self.named_rows(&sql).await?.decode(|r| r.text("value"))?);
        }
        let statuses = distinct.pop().unwrap_or_default();
        let kinds = distinct.pop().unwrap_or_default();
        Ok(CheckFacets { kinds, statuses })
    }

    /// Every stream of `stream_state` with its accounts folded, by source and stream.
    pub async fn stream_freshness(&self) -> Result<Vec<StreamFreshness>> {
        let d = self.warehouse.dialect();
        let (source, stream) = (self.quoted("source")?, self.quoted("stream")?);
        let sql = format!(
            "SELECT {}, {}, {}, {}, {}, {} FROM {} GROUP BY {source}, {stream} ORDER BY {source}, {stream}",
            self.aliased(&source, "source")?,
            self.aliased(&stream, "stream")?,
            self.aliased("count(*)", "accounts")?,
            self.aliased(&d.cast_to_text(&format!("min({})", self.quoted("cursor_date")?)), "oldest_cursor")?,
            self.aliased(&d.cast_to_text(&format!("max({})", self.quoted("updated_at")?)), "last_loaded_at")?,
            self.aliased(&format!("sum({})", self.quoted("rows_loaded")?), "last_window_rows")?,
            self.qualified(STREAM_STATE)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(StreamFreshness {
                source: r.text("source")?,
                stream: r.text("stream")?,
                accounts: r.i64("accounts")?,
                oldest_cursor: r.opt_date("oldest_cursor")?,
                last_loaded_at: r.opt_timestamp("last_loaded_at")?,
                last_window_rows: r.opt_i64("last_window_rows")?.unwrap_or(0),
            })
        })
    }

    /// Runs in the run history by status, by status.
    pub async fn runs_by_status(&self) -> Result<Vec<RunCount>> {
        let status = self.quoted("status")?;
        let sql = format!(
            "SELECT {}, {} FROM {} GROUP BY {status} ORDER BY {status}",
            self.aliased(&status, "status")?,
            self.aliased("count(*)", "runs")?,
            self.qualified(RUNS)?
        );
        self.named_rows(&sql).await?.decode(|r| Ok(RunCount { status: r.text("status")?, runs: r.i64("runs")? }))
    }

    /// Task instances by kind and state, in that order.
    pub async fn tasks_by_kind_and_state(&self) -> Result<Vec<TaskCount>> {
        let (kind, state) = (self.quoted("kind")?, self.quoted("state")?);
        let sql = format!(
            "SELECT {}, {}, {} FROM {} GROUP BY {kind}, {state} ORDER BY {kind}, {state}",
            self.aliased(&kind, "kind")?,
            self.aliased(&state, "state")?,
            self.aliased("count(*)", "tasks")?,
            self.qualified(TASK_INSTANCES)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(TaskCount {
                kind: r.opt_text("kind")?.unwrap_or_default(),
                state: r.text("state")?,
                tasks: r.i64("tasks")?,
            })
        })
    }

    /// A histogram of the durations of finished task instances per kind: how many took at most each
    /// of `bounds` (seconds, finite), their count and total.
    pub async fn task_durations(&self, bounds: &[f64]) -> Result<Vec<TaskDurations>> {
        let d = self.warehouse.dialect();
        let (k, seconds) = (self.quoted("k")?, self.quoted("d")?);
        let mut columns = vec![
            self.aliased(&k, "kind")?,
            self.aliased("count(*)", "tasks")?,
            self.aliased(&format!("sum({seconds})"), "total_seconds")?,
        ];
        for (i, bound) in bounds.iter().enumerate() {
            if !bound.is_finite() {
                return Err(WarehouseError::Internal(format!("histogram bound {bound} is not a finite number")));
            }
            columns.push(
                self.aliased(&format!("sum(CASE WHEN {seconds} <= {bound} THEN 1 ELSE 0 END)"), &format!("le_{i}"))?,
            );
        }
        let (started, finished) = (self.quoted("started_at")?, self.quoted("finished_at")?);
        let sql = format!(
            "SELECT {} FROM (SELECT {} AS {k}, {} AS {seconds} FROM {} WHERE {started} IS NOT NULL AND {finished} IS NOT NULL) t \
             GROUP BY {k} ORDER BY {k}",
            columns.join(", "),
            self.quoted("kind")?,
            d.seconds_between(&started, &finished),
            self.qualified(TASK_INSTANCES)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(TaskDurations {
                kind: r.opt_text("kind")?.unwrap_or_default(),
                tasks: r.i64("tasks")?,
                total_seconds: r.opt_f64("total_seconds")?.unwrap_or(0.0),
                at_most: (0..bounds.len()).map(|i| r.i64(&format!("le_{i}"))).collect::<Result<_>>()?,
            })
        })
    }

    /// The rows each task of `kind` in `state` loaded, summed over every run it ran in.
    pub async fn task_rows(&self, kind: &str, state: &str) -> Result<Vec<TaskRows>> {
        let task_id = self.quoted("task_id")?;
        let conditions = [Condition::eq("kind", Literal::Text(kind)), Condition::eq("state", Literal::Text(state))];
        let sql = format!(
            "SELECT {}, {} FROM {} WHERE {} GROUP BY {task_id} ORDER BY {task_id}",
            self.aliased(&task_id, "task_id")?,
            self.aliased(&format!("sum({})", self.quoted("rows")?), "rows")?,
            self.qualified(TASK_INSTANCES)?,
            self.warehouse.dialect().conditions_sql(&conditions)?
        );
        self.named_rows(&sql)
            .await?
            .decode(|r| Ok(TaskRows { task_id: r.text("task_id")?, rows: r.opt_i64("rows")?.unwrap_or(0) }))
    }

    /// When the last run with `status` finished (UTC), if one did.
    pub async fn last_run_finished(&self, status: RunStatus) -> Result<Option<NaiveDateTime>> {
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            self.aliased(&d.cast_to_text(&format!("max({})", self.quoted("finished_at")?)), "finished_at")?,
            self.qualified(RUNS)?,
            d.conditions_sql(&[Condition::eq("status", Literal::Text(status.as_str()))])?
        );
        Ok(self.named_rows(&sql).await?.decode_first(|r| r.opt_timestamp("finished_at"))?.flatten())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::dialect::{Dialect, DuckDbDialect, PostgresDialect};
    use crate::{BatchStream, Transaction};

    /// A warehouse that answers every query with no rows and remembers the SQL it was given.
    struct Recorder {
        dialect: Box<dyn Dialect>,
        sql: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Warehouse for Recorder {
        fn dialect(&self) -> &dyn Dialect {
            self.dialect.as_ref()
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
        fn metadata_schema(&self) -> &str {
            "mdp_meta"
        }
        async fn execute(&self, sql: &str) -> Result<()> {
            self.sql.lock().unwrap().push(sql.to_string());
            Ok(())
        }
        async fn query(&self, sql: &str) -> Result<BatchStream> {
            self.sql.lock().unwrap().push(sql.to_string());
            Ok(crate::batch_stream(Vec::new()))
        }
        async fn begin(&self) -> Result<Box<dyn Transaction>> {
            Err(WarehouseError::Internal("the recorder has no transactions".into()))
        }
        async fn close(self: Box<Self>) -> Result<()> {
            Ok(())
        }
    }

    /// The statements a metadata read sends, on DuckDB and on Postgres.
    fn rendered<F>(read: F) -> [Vec<String>; 2]
    where
        F: for<'a, 'w> Fn(&'a Metadata<'w>) -> futures::future::BoxFuture<'a, ()>,
    {
        [Box::new(DuckDbDialect) as Box<dyn Dialect>, Box::new(PostgresDialect)].map(|dialect| {
            let recorder = Recorder { dialect, sql: Mutex::new(Vec::new()) };
            futures::executor::block_on(read(&Metadata::new(&recorder)));
            recorder.sql.into_inner().unwrap()
        })
    }

    #[test]
    fn stream_freshness_casts_with_each_engines_text_type() {
        let [duckdb, postgres] =
            rendered(|m| Box::pin(async move { assert!(m.stream_freshness().await.unwrap().is_empty()) }));
        let expected = |text: &str| {
            format!(
                "SELECT \"source\" AS \"source\", \"stream\" AS \"stream\", count(*) AS \"accounts\", \
                 CAST(min(\"cursor_date\") AS {text}) AS \"oldest_cursor\", CAST(max(\"updated_at\") AS {text}) AS \"last_loaded_at\", \
                 sum(\"rows_loaded\") AS \"last_window_rows\" FROM \"mdp_meta\".\"stream_state\" \
                 GROUP BY \"source\", \"stream\" ORDER BY \"source\", \"stream\""
            )
        };
        assert_eq!(duckdb, [expected("VARCHAR")]);
        assert_eq!(postgres, [expected("text")]);
    }

    #[test]
    fn task_durations_bucket_seconds_computed_by_the_dialect() {
        let [duckdb, postgres] =
            rendered(|m| Box::pin(async move { assert!(m.task_durations(&[0.5, 60.0]).await.unwrap().is_empty()) }));
        let expected = |double: &str| {
            format!(
                "SELECT \"k\" AS \"kind\", count(*) AS \"tasks\", sum(\"d\") AS \"total_seconds\", \
                 sum(CASE WHEN \"d\" <= 0.5 THEN 1 ELSE 0 END) AS \"le_0\", sum(CASE WHEN \"d\" <= 60 THEN 1 ELSE 0 END) AS \"le_1\" \
                 FROM (SELECT \"kind\" AS \"k\", CAST(EXTRACT(EPOCH FROM \"finished_at\") - EXTRACT(EPOCH FROM \"started_at\") AS {double}) AS \"d\" \
                 FROM \"mdp_meta\".\"task_instances\" WHERE \"started_at\" IS NOT NULL AND \"finished_at\" IS NOT NULL) t \
                 GROUP BY \"k\" ORDER BY \"k\""
            )
        };
        assert_eq!(duckdb, [expected("DOUBLE")]);
        assert_eq!(postgres, [expected("double precision")]);
        let [refused, _] = rendered(|m| Box::pin(async move { assert!(m.task_durations(&[f64::NAN]).await.is_err()) }));
        assert!(refused.is_empty(), "nothing is sent for a bound that is not a number");
    }

    #[test]
    fn check_history_filters_are_literals_never_spliced_text() {
        let [duckdb, postgres] = rendered(|m| {
            Box::pin(async move {
                let filter = CheckHistoryFilter { status: Some("fail' OR '1'='1"), kind: Some("volume"), limit: 50 };
                assert!(m.check_history(&filter).await.unwrap().is_empty());
            })
        });
        let expected = |text: &str| {
            format!(
                "SELECT c.\"run_id\" AS \"run_id\", c.\"check_name\" AS \"check_name\", c.\"check_kind\" AS \"check_kind\", \
                 c.\"relation\" AS \"relation\", c.\"status\" AS \"status\", c.\"observed\" AS \"observed\", \
                 c.\"expected\" AS \"expected\", c.\"failing_rows\" AS \"failing_rows\", c.\"message\" AS \"message\", \
                 c.\"sample_query\" AS \"sample_query\", CAST(c.\"executed_at\" AS {text}) AS \"executed_at\" \
                 FROM \"mdp_meta\".\"check_results\" c WHERE \"status\" = 'fail'' OR ''1''=''1' AND \"check_kind\" = 'volume' \
                 ORDER BY c.\"executed_at\" DESC, c.\"check_name\" LIMIT 50"
            )
        };
        assert_eq!(duckdb, [expected("VARCHAR")]);
        assert_eq!(postgres, [expected("text")]);
    }
}
