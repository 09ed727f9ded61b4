//! The BigQuery adapter, over the REST API v2 client of `mdp-cloud`.
//!
//! - Schemas are datasets; tables are addressed `` `dataset`.`table` `` in the configured project, where
//!   jobs run.
//! - Statements: SQL text is split into statements, each one query job (`jobs.query`); a query's
//!   result streams page by page.
//! - Transactions: BigQuery has no transaction that spans requests outside a session, and its local
//!   stand-in has no sessions. A transaction here is **one script run at commit**: its DML is held
//!   back and committed as `BEGIN TRANSACTION; …; COMMIT TRANSACTION;`, which BigQuery runs
//!   atomically (a failing statement rolls the whole script back). DDL stands alone in BigQuery
//!   (`transactional_ddl` is false): a DDL statement, and a read, inside a transaction first commit
//!   what was held back, then run on their own, so a read sees the transaction's writes.
//!   Dropping or rolling back a transaction sends nothing.
//! - Bulk loads: a load job of newline-delimited JSON (a resumable upload, 8 MiB chunks) into a
//!   staging table `_mdp_stage_<uuid>` beside the target, created with the target's column types and
//!   a day's expiry; the transaction's script then inserts it into the target, and the staging table
//!   is deleted after commit or rollback. The replace-by-window of an ingest (`DELETE` the window,
//!   load, move the cursor) is thus one script: a crash before commit leaves the window's previous
//!   rows and cursor, and at worst a staging table that expires within a day.
//! - Introspection reads the REST API (`tables.get`, `tables.list`, `datasets.list`): a missing
//!   dataset is an empty answer there, where `INFORMATION_SCHEMA` would fail.
//! - Writes that collide with a concurrent one (`concurrent update`) are retried: a statement or a
//!   script is atomic, so running it again is safe.
//! - The writer lock is a lease ([`crate::lease`]), as on Snowflake.
//! - Money: NUMERIC columns read back as Arrow Decimal128(38, 9), never floats.

mod dialect;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::StreamExt;
use mdp_cloud::bigquery::{BigQuery, BigQueryConfig, FieldSchema, TableId, WriteDisposition};
use mdp_cloud::{split_statements, text, CloudError};

pub use dialect::BigQueryDialect;

use crate::cloud::{self, Runner};
use crate::dialect::{Dialect, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lease::{self, Lease};
use crate::lock::LockHolder;
use crate::{Access, BatchStream, ColumnInfo, Relation, RelationKind, Transaction, Warehouse};

const ENGINE: &str = "bigquery";

/// Attempts of a statement or script that collided with a concurrent write.
const CONFLICT_ATTEMPTS: u32 = 5;

pub struct BigQueryWarehouse {
    client: BigQuery,
    display: String,
    metadata_schema: String,
    lease: Option<Lease>,
}

impl BigQueryWarehouse {
    pub(crate) async fn open(
        config: &BigQueryConfig,
        metadata_schema: &str,
        lease_length: Duration,
        access: &Access,
    ) -> Result<(Self, Option<LockHolder>)> {
        let display = format!("{}.{}", config.project, config.dataset);
        let client = BigQuery::new(config.clone())
            .map_err(|e| WarehouseError::Connect { target: display.clone(), message: e.to_string() })?;
        let mut warehouse =
            BigQueryWarehouse { client, display, metadata_schema: metadata_schema.to_string(), lease: None };
        let stale = match access {
            Access::Read => {
                // Reach the API (and get a token) now, so a bad address or credentials fail here; a
                // writer's lease does that anyway.
                warehouse.client.query("SELECT 1").await.map_err(|e| warehouse.connect_error(e))?;
                None
            }
            Access::Write(holder) => {
                let renewer = warehouse.session().await?;
                let (lease, stale) = lease::acquire(&warehouse, renewer, metadata_schema, holder, lease_length).await?;
                warehouse.lease = Some(lease);
                stale
            }
        };
        Ok((warehouse, stale))
    }

    fn connect_error(&self, e: CloudError) -> WarehouseError {
        WarehouseError::Connect {
            target: format!("{} as {}", self.display, self.client.principal()),
            message: e.to_string(),
        }
    }
}

/// Run one statement or script; a collision with a concurrent write (what [`WarehouseError::is_retryable`]
/// calls a transient SQL error on BigQuery) is retried. Unreachable-service errors were already retried
/// by the client.
async fn run(client: &BigQuery, sql: &str, target: &str) -> Result<mdp_cloud::bigquery::QueryResult> {
    let mut wait = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match client.query(sql).await.map_err(|e| crate::cloud_error(ENGINE, e, sql, target)) {
            Err(e @ WarehouseError::Sql { .. }) if e.is_retryable() && attempt < CONFLICT_ATTEMPTS => {
                tracing::info!(attempt, error = %e, "a BigQuery write collided with another; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Runs statements as query jobs.
struct Jobs<'a> {
    client: &'a BigQuery,
    target: &'a str,
}

impl Runner for Jobs<'_> {
    type Answer = mdp_cloud::bigquery::QueryResult;
    fn engine(&self) -> &'static str {
        ENGINE
    }
    fn target(&self) -> &str {
        self.target
    }
    async fn run(&self, statement: &str) -> Result<Self::Answer> {
        run(self.client, statement, self.target).await
    }
}

fn table_id(table: &TableRef) -> TableId {
    TableId::new(&table.schema, &table.name)
}

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    fn dialect(&self) -> &dyn Dialect {
        &BigQueryDialect
    }

    fn describe(&self) -> String {
        format!("bigquery {} ({})", self.display, self.client.base_url())
    }

    fn metadata_schema(&self) -> &str {
        &self.metadata_schema
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        cloud::run_all(&Jobs { client: &self.client, target: &self.display }, sql).await
    }

    async fn query(&self, sql: &str) -> Result<BatchStream> {
        cloud::query_stream(&Jobs { client: &self.client, target: &self.display }, sql).await
    }

    async fn session(&self) -> Result<Arc<dyn Warehouse>> {
        Ok(Arc::new(BigQueryWarehouse {
            client: self.client.clone(),
            display: self.display.clone(),
            metadata_schema: self.metadata_schema.clone(),
            lease: None,
        }))
    }

    async fn relations(&self, schema: Option<&str>) -> Result<Vec<Relation>> {
        let datasets = match schema {
            Some(s) => vec![s.to_string()],
            None => self.client.datasets().await.map_err(|e| self.connect_error(e))?,
        };
        let mut out = Vec::new();
        for dataset in datasets {
            for table in self.client.tables(&dataset).await.map_err(|e| self.connect_error(e))? {
                let kind = if table.kind.contains("VIEW") { RelationKind::View } else { RelationKind::Table };
                out.push(Relation { table: TableRef::new(table.id.dataset, table.id.table), kind });
            }
        }
        out.sort_by(|a, b| (&a.table.schema, &a.table.name).cmp(&(&b.table.schema, &b.table.name)));
        Ok(out)
    }

    async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>> {
        let info = self.client.table(&table_id(table)).await.map_err(|e| self.connect_error(e))?;
        Ok(info
            .map(|t| {
                t.fields
                    .iter()
                    .map(|f| ColumnInfo { name: f.name.clone(), data_type: f.canonical_type(), nullable: f.nullable() })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `ALTER TABLE … ADD COLUMN`, then the table's schema as the REST API reports it set to match:
    /// bqemulator applies the statement to its storage but not to the schema `tables.get` answers
    /// with (real BigQuery updates both; the patch then changes nothing).
    async fn add_columns(&self, table: &TableRef, columns: &[crate::ColumnDef]) -> Result<()> {
        let d = BigQueryDialect;
        for column in columns {
            self.execute(&d.add_column_sql(table, column)?).await?;
        }
        let id = table_id(table);
        let cloud = |e: CloudError| crate::cloud_error(ENGINE, e, "tables.patch", &self.display);
        let Some(info) = self.client.table(&id).await.map_err(cloud)? else { return Ok(()) };
        let mut fields = info.fields;
        let before = fields.len();
        for column in columns {
            if !fields.iter().any(|f| f.name == column.name) {
                fields.push(FieldSchema {
                    name: column.name.clone(),
                    field_type: d.column_type(column.ty).split('(').next().unwrap_or_default().to_string(),
                    mode: Some("NULLABLE".into()),
                    fields: Vec::new(),
                });
            }
        }
        if fields.len() > before {
            self.client.patch_schema(&id, &fields).await.map_err(cloud)?;
        }
        Ok(())
    }

    async fn check_no_other_writer(&self) -> Result<()> {
        lease::check_no_other_writer(self, &self.metadata_schema, self.lease.as_ref()).await
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Ok(Box::new(BigQueryTransaction {
            client: self.client.clone(),
            display: self.display.clone(),
            pending: Vec::new(),
            stages: Vec::new(),
        }))
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(lease) = self.lease.take() {
            lease::release(self.as_ref(), &self.metadata_schema, lease).await?;
        }
        Ok(())
    }
}

/// A transaction: DML held back and run as one script at commit (see the module's documentation).
struct BigQueryTransaction {
    client: BigQuery,
    display: String,
    /// Statements to commit together.
    pending: Vec<String>,
    /// Staging tables to delete when the transaction ends.
    stages: Vec<TableId>,
}

/// Statements BigQuery never runs inside a transaction.
const DDL: &[&str] = &["CREATE", "ALTER", "DROP", "TRUNCATE"];

impl BigQueryTransaction {
    /// Commit what is held back, as one atomic script.
    async fn flush(&mut self) -> Result<()> {
        let script = match self.pending.len() {
            0 => return Ok(()),
            1 => self.pending[0].clone(),
            _ => format!("BEGIN TRANSACTION;\n{};\nCOMMIT TRANSACTION;", self.pending.join(";\n")),
        };
        run(&self.client, &script, &self.display).await?;
        self.pending.clear();
        Ok(())
    }

    /// Delete the staging tables (a failure is only logged: they expire within a day).
    async fn drop_stages(&mut self) {
        for stage in self.stages.drain(..) {
            if let Err(e) = self.client.delete_table(&stage).await {
                tracing::warn!(table = %format!("{}.{}", stage.dataset, stage.table), error = %e,
                    "could not delete a staging table; it expires within a day");
            }
        }
    }
}

impl Drop for BigQueryTransaction {
    fn drop(&mut self) {
        if self.stages.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, stages) = (self.client.clone(), std::mem::take(&mut self.stages));
            runtime.spawn(async move {
                for stage in stages {
                    let _ = client.delete_table(&stage).await;
                }
            });
        }
    }
}

#[async_trait]
impl Transaction for BigQueryTransaction {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        for statement in split_statements(sql) {
            if cloud::starts_with_keyword(statement, DDL) {
                self.flush().await?;
                run(&self.client, statement, &self.display).await?;
            } else {
                self.pending.push(statement.to_string());
            }
        }
        Ok(())
    }

    async fn query_all(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        self.flush().await?;
        cloud::query_stream(&Jobs { client: &self.client, target: &self.display }, sql).await?.try_collect().await
    }

    async fn bulk_load(&mut self, table: &TableRef, mut batches: BatchStream) -> Result<u64> {
        let d = BigQueryDialect;
        let load_error = |message: String| WarehouseError::Load { table: table.to_string(), message };
        let Some(first) = batches.next().await.transpose()? else {
            return Ok(0);
        };
        let schema = first.schema();
        let target = self
            .client
            .table(&table_id(table))
            .await
            .map_err(|e| crate::cloud_error(ENGINE, e, "tables.get", &self.display))?
            .ok_or_else(|| load_error("the table does not exist".into()))?;
        // The staging table has the target's types for the batch's columns.
        let mut fields = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let known = target.fields.iter().find(|f| &f.name == field.name()).ok_or_else(|| {
                load_error(format!(
                    "the table has no column {:?} (batch columns must exist in the table)",
                    field.name()
                ))
            })?;
            fields.push(FieldSchema { mode: None, ..known.clone() });
        }
        let kinds: Vec<ValueKind> = fields.iter().map(|f| ValueKind::of(&f.canonical_type())).collect();
        let keys: Vec<String> = fields.iter().map(|f| serde_json::to_string(&f.name).unwrap_or_default()).collect();
        let stage = TableId::new(&table.schema, format!("_mdp_stage_{}", uuid::Uuid::new_v4().simple()));
        let cloud = |e: CloudError| crate::cloud_error(ENGINE, e, &format!("load into {table}"), &self.display);
        self.client.create_table(&stage, &fields, Some(Duration::from_secs(24 * 3600))).await.map_err(cloud)?;
        self.stages.push(stage.clone());
        let mut load = self.client.load(&stage, &fields, WriteDisposition::Append).await.map_err(cloud)?;
        let mut line = Vec::with_capacity(1024);
        let mut next = Some(first);
        while let Some(batch) = next.take() {
            if batch.schema().fields() != schema.fields() {
                return Err(load_error("all batches of one load must have the same columns".into()));
            }
            let columns = text::column_texts(&batch).map_err(|e| load_error(e.to_string()))?;
            for row in 0..batch.num_rows() {
                line.clear();
                line.push(b'{');
                let mut first_value = true;
                for (i, column) in columns.iter().enumerate() {
                    let Some(value) = &column[row] else { continue };
                    if !first_value {
                        line.push(b',');
                    }
                    first_value = false;
                    line.extend_from_slice(keys[i].as_bytes());
                    line.push(b':');
                    kinds[i].write(value, &mut line);
                }
                line.push(b'}');
                load.push_row(&line).await.map_err(cloud)?;
            }
            next = batches.next().await.transpose()?;
        }
        let rows = load.finish().await.map_err(cloud)?;
        let names: Vec<String> = fields.iter().map(|f| f.name.clone()).collect();
        let list = d.quote_list(&names)?;
        self.pending.push(format!(
            "INSERT INTO {} ({list}) SELECT {list} FROM {}",
            d.qualified(table)?,
            d.qualified(&TableRef::new(&stage.dataset, &stage.table))?
        ));
        Ok(rows)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let outcome = self.flush().await;
        self.drop_stages().await;
        outcome
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.pending.clear();
        self.drop_stages().await;
        Ok(())
    }
}

/// How a value is written in a row of newline-delimited JSON, by its column's BigQuery type.
#[derive(Debug, Clone, Copy)]
enum ValueKind {
    /// INT64, BOOL: the text as a JSON number or boolean.
    Bare,
    /// FLOAT64: a number, or `"NaN"`/`"Infinity"` as strings.
    Float,
    /// JSON: the document itself.
    Json,
    /// Everything else (STRING, NUMERIC as its exact digits, DATE, DATETIME, …): a JSON string.
    Quoted,
}

impl ValueKind {
    fn of(canonical: &str) -> ValueKind {
        match canonical {
            "INT64" | "BOOL" => ValueKind::Bare,
            "FLOAT64" => ValueKind::Float,
            "JSON" => ValueKind::Json,
            _ => ValueKind::Quoted,
        }
    }

    fn write(self, value: &str, out: &mut Vec<u8>) {
        let quoted = |value: &str, out: &mut Vec<u8>| {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
        };
        match self {
            ValueKind::Bare | ValueKind::Json => out.extend_from_slice(value.as_bytes()),
            ValueKind::Float => match value {
                "NaN" => quoted("NaN", out),
                "inf" => quoted("Infinity", out),
                "-inf" => quoted("-Infinity", out),
                v => out.extend_from_slice(v.as_bytes()),
            },
            ValueKind::Quoted => quoted(value, out),
        }
    }
}
