//! mdp's metadata schema (`mdp_meta` by default): run history, per-stream state, check results.
//!
//! It lives in the warehouse, beside the data, so that state commits in the same transaction as the
//! data it describes and travels with it. mdp creates and migrates it itself: [`MIGRATIONS`] is an
//! append-only list, each applied once in its own transaction and recorded in `schema_version`.
//! Tables are declared once as [`TableSchema`]s and rendered by each dialect, so both adapters get
//! the same schema. All timestamps are UTC.

use chrono::{NaiveDate, NaiveDateTime, Utc};

use crate::dialect::{Literal, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lock::LockHolder;
use crate::types::{ColumnDef, ColumnType, TableSchema};
use crate::{string_rows, Warehouse};

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
        let sql = format!("SELECT CAST(max(version) AS BIGINT) FROM {}", self.qualified(VERSION_TABLE)?);
        let rows = string_rows(&self.warehouse.query_all(&sql).await?)?;
        Ok(rows.first().and_then(|r| r[0].as_deref()).and_then(|v| v.parse().ok()))
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
            "SELECT count(*) FROM {} WHERE run_id = {}",
            self.qualified(RUNS)?,
            self.lit(Literal::Text(&stale.run_id))?
        );
        let rows = string_rows(&self.warehouse.query_all(&exists).await?)?;
        if rows.first().and_then(|r| r[0].as_deref()) == Some("0") {
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
        let sql = format!(
            "SELECT run_id, command, status, CAST(started_at AS VARCHAR), CAST(finished_at AS VARCHAR), error \
             FROM {} WHERE {condition} ORDER BY started_at DESC LIMIT {limit}",
            self.qualified(RUNS)?
        );
        Ok(string_rows(&self.warehouse.query_all(&sql).await?)?
            .into_iter()
            .map(|r| RunRecord {
                run_id: r[0].clone().unwrap_or_default(),
                command: r[1].clone().unwrap_or_default(),
                status: r[2].clone().unwrap_or_default(),
                started_at: r[3].clone().unwrap_or_default(),
                finished_at: r[4].clone(),
                error: r[5].clone(),
            })
            .collect())
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
             {} AS last_window_end, {} AS last_run_id, CAST({rows_loaded} AS BIGINT) AS rows_loaded, {} AS updated_at)",
            self.lit(Literal::Text(&cursor.source))?,
            self.lit(Literal::Text(&cursor.stream))?,
            self.lit(Literal::Text(&cursor.account_id))?,
            self.lit(cursor_date)?,
            self.lit(Literal::Date(window.0))?,
            self.lit(Literal::Date(window.1))?,
            self.opt_text(cursor.last_run_id.as_deref())?,
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
            "SELECT CAST(cursor_date AS VARCHAR), last_run_id FROM {} WHERE source = {} AND stream = {} AND account_id = {}",
            self.qualified(STREAM_STATE)?,
            self.lit(Literal::Text(source))?,
            self.lit(Literal::Text(stream))?,
            self.lit(Literal::Text(account_id))?
        );
        let rows = string_rows(&self.warehouse.query_all(&sql).await?)?;
        Ok(rows.into_iter().next().map(|r| StreamCursor {
            source: source.to_string(),
            stream: stream.to_string(),
            account_id: account_id.to_string(),
            cursor_date: r[0].as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
            last_run_id: r[1].clone(),
        }))
    }

    /// Insert or replace task instances (their latest states), in one statement. Each task may
    /// appear once.
    pub async fn record_tasks(&self, tasks: &[TaskRecord]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let ts = |v: Option<NaiveDateTime>| self.lit(v.map_or(Literal::Null, Literal::Timestamp));
        let mut rows = Vec::with_capacity(tasks.len());
        for t in tasks {
            rows.push(format!(
                "SELECT {} AS run_id, {} AS task_id, {} AS kind, {} AS state, CAST({} AS BIGINT) AS attempts, \
                 CAST({} AS TIMESTAMP) AS started_at, CAST({} AS TIMESTAMP) AS finished_at, CAST({} AS BIGINT) AS rows, \
                 CAST({} AS VARCHAR) AS error, CAST({} AS VARCHAR) AS log",
                self.lit(Literal::Text(&t.run_id))?,
                self.lit(Literal::Text(&t.task_id))?,
                self.lit(Literal::Text(&t.kind))?,
                self.lit(Literal::Text(&t.state))?,
                t.attempts,
                ts(t.started_at)?,
                ts(t.finished_at)?,
                self.lit(t.rows.map_or(Literal::Null, Literal::Int))?,
                self.opt_text(t.error.as_deref())?,
                self.opt_text(t.log.as_deref())?,
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
        let sql = format!(
            "SELECT task_id, kind, state, CAST(attempts AS VARCHAR), CAST(started_at AS VARCHAR), CAST(finished_at AS VARCHAR), \
             CAST(rows AS VARCHAR), error, log FROM {} WHERE run_id = {} ORDER BY started_at, task_id",
            self.qualified(TASK_INSTANCES)?,
            self.lit(Literal::Text(run_id))?
        );
        let parse_ts = |v: &Option<String>| {
            v.as_deref().and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok())
        };
        Ok(string_rows(&self.warehouse.query_all(&sql).await?)?
            .into_iter()
            .map(|r| TaskRecord {
                run_id: run_id.to_string(),
                task_id: r[0].clone().unwrap_or_default(),
                kind: r[1].clone().unwrap_or_default(),
                state: r[2].clone().unwrap_or_default(),
                attempts: r[3].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0),
                started_at: parse_ts(&r[4]),
                finished_at: parse_ts(&r[5]),
                rows: r[6].as_deref().and_then(|v| v.parse().ok()),
                error: r[7].clone(),
                log: r[8].clone(),
            })
            .collect())
    }

    /// Mark the tasks still `running` in a run that ended (a killed process) as failed.
    pub async fn fail_running_tasks(&self, run_id: &str, why: &str) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET state = 'failed', error = {}, finished_at = {} WHERE run_id = {} AND state = 'running'",
            self.qualified(TASK_INSTANCES)?,
            self.lit(Literal::Text(why))?,
            self.lit(Literal::Timestamp(now()))?,
            self.lit(Literal::Text(run_id))?
        );
        self.warehouse.execute(&sql).await
    }

    /// Claim a job's fire time for a run; false when it was claimed before (it ran or runs already).
    pub async fn claim_fire_time(&self, job: &str, scheduled_for: NaiveDateTime, run_id: &str) -> Result<bool> {
        let table = self.qualified(SCHEDULED_RUNS)?;
        let job_lit = self.lit(Literal::Text(job))?;
        let at = self.lit(Literal::Timestamp(scheduled_for))?;
        let exists = format!("SELECT count(*) FROM {table} WHERE job = {job_lit} AND scheduled_for = {at}");
        if string_rows(&self.warehouse.query_all(&exists).await?)?.first().and_then(|r| r[0].as_deref()) != Some("0") {
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
            "SELECT CAST(max(scheduled_for) AS VARCHAR) FROM {} WHERE job = {}",
            self.qualified(SCHEDULED_RUNS)?,
            self.lit(Literal::Text(job))?
        );
        let rows = string_rows(&self.warehouse.query_all(&sql).await?)?;
        Ok(rows
            .first()
            .and_then(|r| r[0].as_deref())
            .and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok()))
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
        let mut out: Vec<CheckResultRecord> = Vec::new();
        for r in string_rows(&self.warehouse.query_all(&sql).await?)? {
            let record = CheckResultRecord {
                check_name: r[0].clone().unwrap_or_default(),
                check_kind: r[1].clone(),
                status: r[2].clone().unwrap_or_default(),
                observed: r[3].clone(),
                expected: r[4].clone(),
                message: r[5].clone(),
            };
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
            Some(limit) => format!("ORDER BY opened_at DESC, incident_id LIMIT {limit}"),
            None => "ORDER BY opened_at, incident_id".to_string(),
        };
        let sql = format!(
            "SELECT incident_id, incident_key, kind, subject, status, CAST(opened_at AS VARCHAR), \
             CAST(resolved_at AS VARCHAR), opened_run_id, last_seen_run_id, last_status, message FROM {} \
             WHERE {condition} {order}",
            self.qualified(INCIDENTS)?
        );
        let parse_ts = |v: &Option<String>| {
            v.as_deref().and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok())
        };
        Ok(string_rows(&self.warehouse.query_all(&sql).await?)?
            .into_iter()
            .map(|r| IncidentRecord {
                incident_id: r[0].clone().unwrap_or_default(),
                incident_key: r[1].clone().unwrap_or_default(),
                kind: r[2].clone().unwrap_or_default(),
                subject: r[3].clone().unwrap_or_default(),
                status: r[4].clone().unwrap_or_default(),
                opened_at: parse_ts(&r[5]).unwrap_or_default(),
                resolved_at: parse_ts(&r[6]),
                opened_run_id: r[7].clone(),
                last_seen_run_id: r[8].clone(),
                last_status: r[9].clone(),
                message: r[10].clone(),
            })
            .collect())
    }

    /// Insert or update incidents (by `incident_id`), in one statement.
    pub async fn save_incidents(&self, incidents: &[IncidentRecord]) -> Result<()> {
        if incidents.is_empty() {
            return Ok(());
        }
        let ts = |v: Option<NaiveDateTime>| self.lit(v.map_or(Literal::Null, Literal::Timestamp));
        let mut rows = Vec::with_capacity(incidents.len());
        for i in incidents {
            rows.push(format!(
                "SELECT {} AS incident_id, {} AS incident_key, {} AS kind, {} AS subject, {} AS status, \
                 CAST({} AS TIMESTAMP) AS opened_at, CAST({} AS TIMESTAMP) AS resolved_at, \
                 CAST({} AS VARCHAR) AS opened_run_id, CAST({} AS VARCHAR) AS last_seen_run_id, \
                 CAST({} AS VARCHAR) AS last_status, CAST({} AS VARCHAR) AS message, CAST({} AS TIMESTAMP) AS updated_at",
                self.lit(Literal::Text(&i.incident_id))?,
                self.lit(Literal::Text(&i.incident_key))?,
                self.lit(Literal::Text(&i.kind))?,
                self.lit(Literal::Text(&i.subject))?,
                self.lit(Literal::Text(&i.status))?,
                ts(Some(i.opened_at))?,
                ts(i.resolved_at)?,
                self.opt_text(i.opened_run_id.as_deref())?,
                self.opt_text(i.last_seen_run_id.as_deref())?,
                self.opt_text(i.last_status.as_deref())?,
                self.opt_text(i.message.as_deref())?,
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
