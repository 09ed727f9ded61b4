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
pub const MIGRATIONS: &[Migration] =
    &[Migration { version: 1, description: "run history, stream state, check results", tables: tables_v1 }];

/// The metadata version this build of mdp writes.
pub fn current_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

const VERSION_TABLE: &str = "schema_version";
pub const RUNS: &str = "runs";
pub const STREAM_STATE: &str = "stream_state";
pub const CHECK_RESULTS: &str = "check_results";

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

/// The state of a run in `runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Success,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Success => "success",
            RunStatus::Failed => "failed",
        }
    }
}

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
        self.finish_run(&stale.run_id, RunStatus::Failed, Some(&message)).await
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let sql = format!(
            "SELECT run_id, command, status, CAST(started_at AS VARCHAR), CAST(finished_at AS VARCHAR), error \
             FROM {} ORDER BY started_at DESC LIMIT {limit}",
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
