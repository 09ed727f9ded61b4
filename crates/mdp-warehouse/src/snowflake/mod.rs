//! The Snowflake adapter, over the connector protocol ([`mdp_cloud::snowflake`]).
//!
//! - Statements: Snowflake takes one per request, so `execute` splits SQL text client-side (as
//!   dbt-snowflake does) and runs the statements in order on the warehouse's session.
//! - Transactions: each one is a session of its own (Snowflake's unit of transaction) between `BEGIN`
//!   and `COMMIT`; closing the session rolls back what was not committed. Snowflake commits before
//!   every DDL statement, which the [`Dialect`] says (`transactional_ddl`): the replace-by-window of an
//!   ingest is DML only (`DELETE` + `INSERT`) and stays atomic.
//! - Bulk loads: batches become multi-row `INSERT INTO t (…) SELECT … FROM VALUES (…), (…)` statements
//!   of up to 16,384 rows and about 1 MB of text, each value an exact string literal cast to its
//!   column's type, JSON parsed into `VARIANT`. Never a row per statement.
//! - DDL inside a transaction: Snowflake commits the open transaction before a DDL statement and runs
//!   the rest outside any transaction. The adapter makes that explicit and keeps the rest atomic: it
//!   commits, runs the DDL, and begins again, so what follows the DDL still commits or rolls back
//!   together (and the fakesnow stand-in, which cannot run DDL inside a transaction, behaves the same).
//! - The writer lock is a lease ([`crate::lease`]): Snowflake has no lock its server drops when a
//!   client dies.
//! - Money: `NUMBER(p, s)` columns read back as Arrow Decimal128, never floats.

mod dialect;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::StreamExt;
use mdp_cloud::snowflake::{Session, Snowflake, SnowflakeConfig, MAX_VALUES_ROWS};
use mdp_cloud::text;
use mdp_cloud::{split_statements, CloudError};

pub use dialect::SnowflakeDialect;

use crate::cloud::{self, Runner};
use crate::dialect::{Dialect, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lease::{self, Lease};
use crate::lock::LockHolder;
use crate::{Access, BatchStream, Transaction, Warehouse};

const ENGINE: &str = "snowflake";

/// The text of one load statement, at most (Snowflake takes statements of up to 1 MB).
const MAX_STATEMENT_BYTES: usize = 900_000;

pub struct SnowflakeWarehouse {
    account: Snowflake,
    session: Arc<Session>,
    display: String,
    metadata_schema: String,
    lease: Option<Lease>,
}

impl SnowflakeWarehouse {
    pub(crate) async fn open(
        config: &SnowflakeConfig,
        metadata_schema: &str,
        lease_length: Duration,
        access: &Access,
    ) -> Result<(Self, Option<LockHolder>)> {
        let display = format!("{}/{} as {}", config.account, config.database, config.user);
        let account = Snowflake::new(config.clone())
            .map_err(|e| WarehouseError::Connect { target: display.clone(), message: e.to_string() })?;
        // The warehouse's own session holds no transaction: it signs in again if Snowflake expires it.
        let session = account
            .login()
            .await
            .map_err(|e| WarehouseError::Connect { target: display.clone(), message: e.to_string() })?
            .renewing();
        let mut warehouse = SnowflakeWarehouse {
            account,
            session: Arc::new(session),
            display,
            metadata_schema: metadata_schema.to_string(),
            lease: None,
        };
        let stale = match access {
            Access::Read => None,
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
        WarehouseError::Connect { target: self.display.clone(), message: e.to_string() }
    }
}

/// Statements Snowflake never runs inside a transaction (it commits before them).
const DDL: &[&str] = &["CREATE", "ALTER", "DROP", "TRUNCATE", "COMMENT", "UNDROP"];

/// Runs statements on one session.
struct OnSession<'a> {
    session: &'a Session,
    target: &'a str,
}

impl Runner for OnSession<'_> {
    type Answer = mdp_cloud::snowflake::QueryResult;
    fn engine(&self) -> &'static str {
        ENGINE
    }
    fn target(&self) -> &str {
        self.target
    }
    async fn run(&self, statement: &str) -> Result<Self::Answer> {
        self.session.execute(statement).await.map_err(|e| crate::cloud_error(ENGINE, e, statement, self.target))
    }
}

#[async_trait]
impl Warehouse for SnowflakeWarehouse {
    fn dialect(&self) -> &dyn Dialect {
        &SnowflakeDialect
    }

    fn describe(&self) -> String {
        format!("snowflake {} ({})", self.display, self.account.base_url())
    }

    fn metadata_schema(&self) -> &str {
        &self.metadata_schema
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        cloud::run_all(&OnSession { session: &self.session, target: &self.display }, sql).await
    }

    async fn query(&self, sql: &str) -> Result<BatchStream> {
        cloud::query_stream(&OnSession { session: &self.session, target: &self.display }, sql).await
    }

    async fn session(&self) -> Result<Arc<dyn Warehouse>> {
        let session = self.account.login().await.map_err(|e| self.connect_error(e))?.renewing();
        Ok(Arc::new(SnowflakeWarehouse {
            account: self.account.clone(),
            session: Arc::new(session),
            display: self.display.clone(),
            metadata_schema: self.metadata_schema.clone(),
            lease: None,
        }))
    }

    /// Tables and views: Snowflake lists views in `information_schema.tables` too, fakesnow only in
    /// `information_schema.views`; reading tables that are not views and the views gives both the
    /// same answer.
    async fn relations(&self, schema: Option<&str>) -> Result<Vec<crate::Relation>> {
        let d = SnowflakeDialect;
        let filter = match schema {
            Some(s) => format!("table_schema = {}", d.string_literal(s)?),
            None => "table_schema <> 'INFORMATION_SCHEMA'".to_string(),
        };
        let sql = format!(
            "SELECT table_schema, table_name, 'BASE TABLE' AS table_type FROM information_schema.tables \
             WHERE {filter} AND table_type <> 'VIEW' \
             UNION ALL SELECT table_schema, table_name, 'VIEW' AS table_type FROM information_schema.views \
             WHERE {filter} ORDER BY 1, 2"
        );
        crate::decode_relations(self.query_all(&sql).await?)
    }

    async fn check_no_other_writer(&self) -> Result<()> {
        lease::check_no_other_writer(self, &self.metadata_schema, self.lease.as_ref()).await
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let session = self.account.login().await.map_err(|e| self.connect_error(e))?;
        session.execute("BEGIN").await.map_err(|e| crate::cloud_error(ENGINE, e, "BEGIN", &self.display))?;
        Ok(Box::new(SnowflakeTransaction { session: Some(Arc::new(session)), display: self.display.clone() }))
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        if let Some(lease) = self.lease.take() {
            lease::release(self.as_ref(), &self.metadata_schema, lease).await?;
        }
        self.session.close().await.map_err(|e| self.connect_error(e))
    }
}

/// A transaction on a session of its own; dropping it ends the session, which rolls back.
struct SnowflakeTransaction {
    session: Option<Arc<Session>>,
    display: String,
}

impl SnowflakeTransaction {
    fn session(&self) -> Result<&Arc<Session>> {
        self.session.as_ref().ok_or_else(|| WarehouseError::Internal("the transaction has ended".into()))
    }

    async fn end(&mut self, statement: &str) -> Result<()> {
        let session =
            self.session.take().ok_or_else(|| WarehouseError::Internal("the transaction has ended".into()))?;
        let outcome = session
            .execute(statement)
            .await
            .map(|_| ())
            .map_err(|e| crate::cloud_error(ENGINE, e, statement, &self.display));
        let _ = session.close().await;
        outcome
    }
}

impl Drop for SnowflakeTransaction {
    fn drop(&mut self) {
        // Not committed: end the session, which rolls its transaction back, instead of leaving it
        // (and its locks) open until Snowflake times the session out.
        if let (Some(session), Ok(runtime)) = (self.session.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(async move {
                let _ = session.close().await;
            });
        }
    }
}

#[async_trait]
impl Transaction for SnowflakeTransaction {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        let session = self.session()?.clone();
        for statement in split_statements(sql) {
            let ddl = cloud::starts_with_keyword(statement, DDL);
            if ddl {
                session.execute("COMMIT").await.map_err(|e| crate::cloud_error(ENGINE, e, "COMMIT", &self.display))?;
            }
            session.execute(statement).await.map_err(|e| crate::cloud_error(ENGINE, e, statement, &self.display))?;
            if ddl {
                session.execute("BEGIN").await.map_err(|e| crate::cloud_error(ENGINE, e, "BEGIN", &self.display))?;
            }
        }
        Ok(())
    }

    async fn query_all(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        cloud::query_stream(&OnSession { session: self.session()?, target: &self.display }, sql)
            .await?
            .try_collect()
            .await
    }

    async fn bulk_load(&mut self, table: &TableRef, mut batches: BatchStream) -> Result<u64> {
        let d = SnowflakeDialect;
        let load_error = |message: String| WarehouseError::Load { table: table.to_string(), message };
        let Some(first) = batches.next().await.transpose()? else {
            return Ok(0);
        };
        let schema = first.schema();
        // The target's column types decide each value's cast (VARIANT is parsed from its JSON text).
        let known: std::collections::HashMap<String, String> =
            crate::rows::Rows::new(self.query_all(&d.columns_query(table)?).await?)
                .decode(|r| Ok((r.text("column_name")?, r.text("data_type")?)))?
                .into_iter()
                .collect();
        if known.is_empty() {
            return Err(load_error("the table does not exist".into()));
        }
        let mut names = Vec::with_capacity(schema.fields().len());
        let mut values = Vec::with_capacity(schema.fields().len());
        for (i, field) in schema.fields().iter().enumerate() {
            let data_type = known.get(field.name()).ok_or_else(|| {
                load_error(format!(
                    "the table has no column {:?} (batch columns must exist in the table)",
                    field.name()
                ))
            })?;
            let column = format!("column{}", i + 1);
            let value = match data_type.to_ascii_uppercase().as_str() {
                "VARIANT" | "OBJECT" | "ARRAY" => format!("PARSE_JSON({column})"),
                "TEXT" | "VARCHAR" | "STRING" => column,
                other => {
                    let ty = crate::types::ColumnType::from_arrow_field(field)
                        .map(|t| d.column_type(t))
                        .unwrap_or_else(|| other.to_string());
                    format!("CAST({column} AS {ty})")
                }
            };
            names.push(field.name().clone());
            values.push(value);
        }
        let head = format!(
            "INSERT INTO {} ({}) SELECT {} FROM VALUES ",
            d.qualified(table)?,
            d.quote_list(&names)?,
            values.join(", ")
        );
        let session = self.session()?.clone();
        let mut loaded = 0u64;
        let mut next = Some(first);
        let mut sql = head.clone();
        let mut rows_in_sql = 0usize;
        while let Some(batch) = next.take() {
            if batch.schema().fields() != schema.fields() {
                return Err(load_error("all batches of one load must have the same columns".into()));
            }
            let columns = text::column_texts(&batch).map_err(|e| load_error(e.to_string()))?;
            for row in 0..batch.num_rows() {
                if rows_in_sql > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    match &column[row] {
                        Some(value) => sql.push_str(&d.string_literal(value)?),
                        None => sql.push_str("NULL"),
                    }
                }
                sql.push(')');
                rows_in_sql += 1;
                if rows_in_sql >= MAX_VALUES_ROWS || sql.len() >= MAX_STATEMENT_BYTES {
                    session.execute(&sql).await.map_err(|e| crate::cloud_error(ENGINE, e, &sql, &self.display))?;
                    loaded += rows_in_sql as u64;
                    sql.clone_from(&head);
                    rows_in_sql = 0;
                }
            }
            next = batches.next().await.transpose()?;
        }
        if rows_in_sql > 0 {
            session.execute(&sql).await.map_err(|e| crate::cloud_error(ENGINE, e, &sql, &self.display))?;
            loaded += rows_in_sql as u64;
        }
        Ok(loaded)
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.end("COMMIT").await
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.end("ROLLBACK").await
    }
}
