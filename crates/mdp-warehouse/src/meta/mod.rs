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

mod checks;
mod incidents;
mod runs;
mod state;
#[cfg(test)]
mod tests;

pub use checks::{CheckFacets, CheckHistoryFilter, CheckResult, CheckResultRecord, StoredCheckResult};
pub use incidents::IncidentRecord;
pub use runs::{RunCount, RunRecord, TaskCount, TaskDurations, TaskRecord, TaskRows};
pub use state::{StreamCursor, StreamFreshness, StreamState};

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

/// The state of a run in `runs.status` (one vocabulary, defined in `mdp-core`).
pub use mdp_core::RunStatus;

/// Reads and writes the metadata schema of one warehouse.
pub struct Metadata<'w> {
    warehouse: &'w dyn Warehouse,
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// The building blocks every part of the metadata composes its statements with.
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
            if d.transactional_ddl() {
                let mut tx = self.warehouse.begin().await?;
                tx.execute(&statements.join(";\n")).await?;
                tx.commit().await?;
            } else {
                // DDL commits by itself (Snowflake): the tables first, the version row last. A crash
                // in between leaves tables that `IF NOT EXISTS` skips on the next run.
                self.warehouse.execute(&statements.join(";\n")).await?;
            }
            tracing::info!(version = migration.version, "migrated metadata schema");
            applied.push(migration.version);
        }
        Ok(applied)
    }

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
}
