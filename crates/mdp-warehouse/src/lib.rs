//! The warehouse layer: the only part of mdp that speaks SQL to a database.
//!
//! A [`Warehouse`] runs statements, streams query results as Arrow record batches, bulk-loads
//! record batches (DuckDB appender, Postgres binary `COPY`), runs several operations in one
//! [`Transaction`], introspects relations and columns, and supplies its SQL [`Dialect`] to the layers
//! above. Adapters: embedded DuckDB ([`duckdb`]), Postgres ([`postgres`]), and Snowflake ([`snowflake`]) and
//! BigQuery ([`bigquery`]) over the HTTP clients of `mdp-cloud`.
//!
//! [`connect`] opens a warehouse for reading or for writing. A writer holds the warehouse's writer
//! lock ([`lock`]) and brings the metadata schema ([`meta`]) up to date before anything else runs.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mdp_warehouse::WarehouseError> {
//! use mdp_warehouse::{connect, Access, ConnectOptions, LockHolder};
//! let options = ConnectOptions::duckdb("warehouse.duckdb");
//! let opened = connect(&options, Access::Write(LockHolder::current("run-1", "ingest"))).await?;
//! let batches = opened.warehouse.query_all("SELECT 42 AS answer").await?;
//! opened.warehouse.close().await?;
//! # Ok(()) }
//! ```
//!
//! Architecture invariant: nothing here knows about ad platforms, projects or models; the crate
//! takes connection options and SQL, and gives back batches.

pub mod bigquery;
mod cloud;
pub mod dialect;
pub mod duckdb;
pub mod error;
pub mod lease;
pub mod lock;
pub mod meta;
pub mod postgres;
pub mod rows;
pub mod snowflake;
pub mod types;

use std::path::PathBuf;

use arrow::array::{Array, RecordBatch};
use arrow::datatypes::DataType;
use async_trait::async_trait;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};

pub use crate::bigquery::BigQueryDialect;
pub use crate::dialect::{
    Comparison, Condition, DatePart, Dialect, DuckDbDialect, Literal, PostgresDialect, SeedCsv, TableRef,
};
pub use crate::error::{Result, WarehouseError};
pub use crate::lock::LockHolder;
pub use crate::snowflake::SnowflakeDialect;
pub use crate::types::{ColumnDef, ColumnType, TableSchema};
pub use mdp_cloud::bigquery::{BigQueryAuth, BigQueryConfig};
pub use mdp_cloud::snowflake::{SnowflakeAuth, SnowflakeConfig};
use mdp_cloud::CloudError;

/// A stream of record batches (query results, data to load).
pub type BatchStream = BoxStream<'static, Result<RecordBatch>>;

/// Turn an iterator of batches into a [`BatchStream`].
pub fn batch_stream<I>(batches: I) -> BatchStream
where
    I: IntoIterator<Item = RecordBatch>,
    I::IntoIter: Send + 'static,
{
    futures::stream::iter(batches.into_iter().map(Ok)).boxed()
}

/// A table or view found by introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub table: TableRef,
    pub kind: RelationKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationKind {
    Table,
    View,
}

/// A column found by introspection; `data_type` is the engine's own spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

/// A connected warehouse.
///
/// Few required methods; introspection has standard `information_schema` defaults.
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// The SQL dialect of this warehouse.
    fn dialect(&self) -> &dyn Dialect;

    /// A human description without secrets, e.g. `duckdb /p/warehouse.duckdb`.
    fn describe(&self) -> String;

    /// The schema mdp's metadata lives in.
    fn metadata_schema(&self) -> &str;

    /// Run one or more `;`-separated statements, outside any explicit transaction.
    async fn execute(&self, sql: &str) -> Result<()>;

    /// Run a query and stream its result.
    async fn query(&self, sql: &str) -> Result<BatchStream>;

    /// Start a transaction: everything done through it commits or rolls back together.
    async fn begin(&self) -> Result<Box<dyn Transaction>>;

    /// Another handle on this warehouse, on connections of its own and holding no lock: for work
    /// that blocks a thread on its queries while this handle goes on being used (a model's Jinja
    /// reading the warehouse while the run that builds it goes on). Its queries never wait behind
    /// this handle's: a Postgres connection answers in order, and a result another node has not read
    /// yet would hold up the answer the blocked thread waits for. Closing it releases nothing; the
    /// original keeps the lock.
    async fn session(&self) -> Result<std::sync::Arc<dyn Warehouse>>;

    /// Release the writer lock cleanly and close. Dropping without `close` is safe but a Postgres
    /// writer then leaves its lock details behind, reported as stale by the next writer.
    async fn close(self: Box<Self>) -> Result<()>;

    /// Fails with [`WarehouseError::Locked`] (or `LockedUnknownHolder`) while another process holds the
    /// writer lock, so a reader (`mdp doctor`) can tell the truth about a busy warehouse. Readers take no
    /// lock; a DuckDB reader cannot even open a locked file (`connect` reports the holder), hence the
    /// default: no other writer to see.
    async fn check_no_other_writer(&self) -> Result<()> {
        Ok(())
    }

    /// A bulk ingest starts (`true`) or has ended (`false`). An embedded engine, which shares the
    /// process with the ingest, bounds its buffer memory while one runs, unless the user set a limit;
    /// a server warehouse has nothing to do (the default).
    async fn ingest_mode(&self, _on: bool) -> Result<()> {
        Ok(())
    }

    /// Make what was loaded durable in the warehouse's own files (an embedded engine folds its
    /// write-ahead log into the database file); a server warehouse has nothing to do (the default).
    async fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    /// Run a query and collect every batch (for small results).
    async fn query_all(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        self.query(sql).await?.try_collect().await
    }

    /// Bulk-load batches into an existing table in one transaction; returns the rows loaded.
    async fn bulk_load(&self, table: &TableRef, batches: BatchStream) -> Result<u64> {
        let mut tx = self.begin().await?;
        let rows = tx.bulk_load(table, batches).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Tables and views, in one schema or in all non-system schemas.
    async fn relations(&self, schema: Option<&str>) -> Result<Vec<Relation>> {
        let d = self.dialect();
        let filter = match schema {
            Some(s) => format!("table_schema = {}", d.string_literal(s)?),
            None => "table_schema NOT IN ('information_schema', 'pg_catalog')".to_string(),
        };
        // information_schema's columns have their own types (Postgres: `sql_identifier`): read as text.
        let text = |column: &str| -> Result<String> {
            Ok(format!("{} AS {}", d.cast_to_text(column), d.quote_identifier(column)?))
        };
        let sql = format!(
            "SELECT {}, {}, {} FROM information_schema.tables WHERE {filter} ORDER BY 1, 2",
            text("table_schema")?,
            text("table_name")?,
            text("table_type")?
        );
        decode_relations(self.query_all(&sql).await?)
    }

    /// The columns of a table or view in order; empty when it does not exist.
    async fn columns(&self, table: &TableRef) -> Result<Vec<ColumnInfo>> {
        let d = self.dialect();
        let text = |column: &str| -> Result<String> {
            Ok(format!("{} AS {}", d.cast_to_text(column), d.quote_identifier(column)?))
        };
        let sql = format!(
            "SELECT {}, {}, {} FROM information_schema.columns WHERE table_schema = {} AND table_name = {} \
             ORDER BY ordinal_position",
            text("column_name")?,
            text("data_type")?,
            text("is_nullable")?,
            d.string_literal(&table.schema)?,
            d.string_literal(&table.name)?
        );
        rows::Rows::new(self.query_all(&sql).await?).decode(|r| {
            Ok(ColumnInfo {
                name: r.text("column_name")?,
                data_type: r.text("data_type")?,
                nullable: r.opt_text("is_nullable")?.as_deref() == Some("YES"),
            })
        })
    }

    /// Whether a table or view exists.
    async fn exists(&self, table: &TableRef) -> Result<bool> {
        Ok(!self.columns(table).await?.is_empty())
    }

    /// Create `table` (and its schema) from a declared schema, if it does not exist yet; a table made
    /// by an older mdp gets the declared columns it lacks (appended, nullable: its rows hold NULL there).
    /// Returns the columns added.
    async fn create_table(&self, table: &TableRef, schema: &TableSchema) -> Result<Vec<String>> {
        let d = self.dialect();
        let existing = self.columns(table).await?;
        if existing.is_empty() {
            let sql = format!("{};\n{}", d.create_schema_sql(&table.schema)?, d.create_table_sql(table, schema)?);
            self.execute(&sql).await?;
            return Ok(Vec::new());
        }
        let mut missing = Vec::new();
        for column in &schema.columns {
            if !existing.iter().any(|known| known.name == column.name) {
                if !column.nullable {
                    return Err(WarehouseError::Internal(format!(
                        "{table} lacks the NOT NULL column {}: a new required column needs a migration",
                        column.name
                    )));
                }
                missing.push(column.clone());
            }
        }
        if !missing.is_empty() {
            self.add_columns(table, &missing).await?;
        }
        Ok(missing.into_iter().map(|c| c.name).collect())
    }

    /// Append nullable `columns` to an existing table (rows already there get NULL).
    async fn add_columns(&self, table: &TableRef, columns: &[ColumnDef]) -> Result<()> {
        for column in columns {
            self.execute(&self.dialect().add_column_sql(table, column)?).await?;
        }
        Ok(())
    }

    /// How many rows a table holds and the exact sums of `sum_columns` (name and type, in their
    /// order, as the engine prints them; `None` for an empty table), in one query.
    async fn table_totals(&self, table: &TableRef, sum_columns: &[(&str, ColumnType)]) -> Result<TableTotals> {
        let d = self.dialect();
        let mut columns = vec![format!("count(*) AS {}", d.quote_identifier("rows")?)];
        for (i, (column, ty)) in sum_columns.iter().enumerate() {
            let sum = d.cast_to_text(&d.sum_exact(&d.quote_identifier(column)?, *ty));
            columns.push(format!("{sum} AS {}", d.quote_identifier(&format!("sum_{i}"))?));
        }
        let sql = format!("SELECT {} FROM {}", columns.join(", "), d.qualified(table)?);
        rows::Rows::new(self.query_all(&sql).await?)
            .decode_first(|r| {
                Ok(TableTotals {
                    rows: u64::try_from(r.i64("rows")?).unwrap_or(0),
                    sums: (0..sum_columns.len()).map(|i| r.opt_text(&format!("sum_{i}"))).collect::<Result<_>>()?,
                })
            })?
            .ok_or_else(|| WarehouseError::Internal(format!("counting the rows of {table} returned no row")))
    }
}

/// Relations from rows of `table_schema`, `table_name` and `table_type` (`VIEW` for a view).
pub(crate) fn decode_relations(batches: Vec<RecordBatch>) -> Result<Vec<Relation>> {
    rows::Rows::new(batches).decode(|r| {
        Ok(Relation {
            table: TableRef::new(r.text("table_schema")?, r.text("table_name")?),
            kind: if r.opt_text("table_type")?.as_deref() == Some("VIEW") {
                RelationKind::View
            } else {
                RelationKind::Table
            },
        })
    })
}

/// What [`Warehouse::table_totals`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableTotals {
    pub rows: u64,
    /// One per summed column, in the order asked.
    pub sums: Vec<Option<String>>,
}

/// Operations that commit or roll back together (e.g. replace a date window and advance the cursor).
///
/// Dropping a transaction without [`Transaction::commit`] rolls it back.
#[async_trait]
pub trait Transaction: Send {
    async fn execute(&mut self, sql: &str) -> Result<()>;
    async fn query_all(&mut self, sql: &str) -> Result<Vec<RecordBatch>>;
    async fn bulk_load(&mut self, table: &TableRef, batches: BatchStream) -> Result<u64>;
    async fn commit(self: Box<Self>) -> Result<()>;
    async fn rollback(self: Box<Self>) -> Result<()>;
}

/// Where a warehouse is.
#[derive(Clone)]
pub enum ConnectOptions {
    DuckDb {
        path: PathBuf,
        metadata_schema: String,
        /// DuckDB's buffer-pool cap (e.g. `512MB`); DuckDB's default is 80% of RAM.
        memory_limit: Option<String>,
    },
    Postgres {
        /// A libpq-style URL or key=value string; may hold a password, so never printed.
        connection_string: String,
        /// What to show instead of the connection string.
        display: String,
        metadata_schema: String,
    },
    Snowflake {
        /// Account, user, credentials (never printed), database, schema, warehouse, role.
        config: SnowflakeConfig,
        metadata_schema: String,
        /// How long a writer's lease lasts without renewal (see [`lease`]).
        lease: std::time::Duration,
    },
    BigQuery {
        /// Project, dataset, location, credentials (never printed).
        config: BigQueryConfig,
        metadata_schema: String,
        /// How long a writer's lease lasts without renewal (see [`lease`]).
        lease: std::time::Duration,
    },
}

impl std::fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectOptions::DuckDb { path, metadata_schema, memory_limit } => f
                .debug_struct("DuckDb")
                .field("path", path)
                .field("metadata_schema", metadata_schema)
                .field("memory_limit", memory_limit)
                .finish(),
            ConnectOptions::Postgres { display, metadata_schema, .. } => f
                .debug_struct("Postgres")
                .field("display", display)
                .field("metadata_schema", metadata_schema)
                .finish_non_exhaustive(),
            ConnectOptions::Snowflake { config, metadata_schema, lease } => f
                .debug_struct("Snowflake")
                .field("config", config)
                .field("metadata_schema", metadata_schema)
                .field("lease", lease)
                .finish(),
            ConnectOptions::BigQuery { config, metadata_schema, lease } => f
                .debug_struct("BigQuery")
                .field("config", config)
                .field("metadata_schema", metadata_schema)
                .field("lease", lease)
                .finish(),
        }
    }
}

/// The default metadata schema name.
pub const DEFAULT_METADATA_SCHEMA: &str = "mdp_meta";

impl ConnectOptions {
    pub fn duckdb(path: impl Into<PathBuf>) -> Self {
        ConnectOptions::DuckDb {
            path: path.into(),
            metadata_schema: DEFAULT_METADATA_SCHEMA.to_string(),
            memory_limit: None,
        }
    }
    pub fn postgres(connection_string: impl Into<String>, display: impl Into<String>) -> Self {
        ConnectOptions::Postgres {
            connection_string: connection_string.into(),
            display: display.into(),
            metadata_schema: DEFAULT_METADATA_SCHEMA.to_string(),
        }
    }
    pub fn snowflake(config: SnowflakeConfig) -> Self {
        ConnectOptions::Snowflake {
            config,
            metadata_schema: DEFAULT_METADATA_SCHEMA.to_string(),
            lease: lease::DEFAULT_LEASE,
        }
    }
    pub fn bigquery(config: BigQueryConfig) -> Self {
        ConnectOptions::BigQuery {
            config,
            metadata_schema: DEFAULT_METADATA_SCHEMA.to_string(),
            lease: lease::DEFAULT_LEASE,
        }
    }
    /// How long a writer's lease lasts without renewal, on warehouses locked by a lease (no effect
    /// on DuckDB and Postgres, whose locks end with their process).
    pub fn with_lease(mut self, length: std::time::Duration) -> Self {
        if let ConnectOptions::Snowflake { lease, .. } | ConnectOptions::BigQuery { lease, .. } = &mut self {
            *lease = length;
        }
        self
    }
    /// Cap DuckDB's buffer pool (no effect on Postgres).
    pub fn with_memory_limit(mut self, limit: impl Into<String>) -> Self {
        if let ConnectOptions::DuckDb { memory_limit, .. } = &mut self {
            *memory_limit = Some(limit.into());
        }
        self
    }

    pub fn with_metadata_schema(mut self, schema: impl Into<String>) -> Self {
        match &mut self {
            ConnectOptions::DuckDb { metadata_schema, .. }
            | ConnectOptions::Postgres { metadata_schema, .. }
            | ConnectOptions::Snowflake { metadata_schema, .. }
            | ConnectOptions::BigQuery { metadata_schema, .. } => *metadata_schema = schema.into(),
        }
        self
    }
}

/// How a command uses the warehouse.
#[derive(Debug, Clone)]
pub enum Access {
    /// Reads only: no lock, no migration. DuckDB refuses to open while a writer runs.
    Read,
    /// Writes: takes the writer lock for `LockHolder` and migrates the metadata schema.
    Write(LockHolder),
}

/// A connected warehouse, and what was found when it was opened.
pub struct Opened {
    pub warehouse: Box<dyn Warehouse>,
    /// A writer that died without releasing the lock; its run has been marked failed.
    pub stale_lock: Option<LockHolder>,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened")
            .field("warehouse", &self.warehouse.describe())
            .field("stale_lock", &self.stale_lock)
            .finish()
    }
}

/// Open a warehouse. Writers get the lock and an up-to-date metadata schema, or an error.
pub async fn connect(options: &ConnectOptions, access: Access) -> Result<Opened> {
    let (warehouse, stale_lock): (Box<dyn Warehouse>, Option<LockHolder>) = match options {
        ConnectOptions::DuckDb { path, metadata_schema, memory_limit } => {
            let (w, stale) =
                duckdb::DuckDbWarehouse::open(path, metadata_schema, memory_limit.as_deref(), &access).await?;
            (Box::new(w), stale)
        }
        ConnectOptions::Postgres { connection_string, display, metadata_schema } => {
            let (w, stale) =
                postgres::PostgresWarehouse::open(connection_string, display, metadata_schema, &access).await?;
            (Box::new(w), stale)
        }
        ConnectOptions::Snowflake { config, metadata_schema, lease } => {
            let (w, stale) = snowflake::SnowflakeWarehouse::open(config, metadata_schema, *lease, &access).await?;
            (Box::new(w), stale)
        }
        ConnectOptions::BigQuery { config, metadata_schema, lease } => {
            let (w, stale) = bigquery::BigQueryWarehouse::open(config, metadata_schema, *lease, &access).await?;
            (Box::new(w), stale)
        }
    };
    if let Access::Write(holder) = &access {
        let meta = meta::Metadata::new(warehouse.as_ref());
        let prepared = async {
            meta.migrate().await?;
            if let Some(stale) = &stale_lock {
                meta.mark_run_abandoned(stale, holder).await?;
            }
            Ok::<(), WarehouseError>(())
        }
        .await;
        if let Err(e) = prepared {
            // Release the lock now: a lease would otherwise keep the next writer out until it runs out.
            if let Err(closing) = warehouse.close().await {
                tracing::warn!(error = %closing, "could not release the writer lock after a failed open");
            }
            return Err(e);
        }
    }
    Ok(Opened { warehouse, stale_lock })
}

/// An error of a cloud warehouse's client as the warehouse layer's: a statement the warehouse rejected
/// is an SQL error with the warehouse's own code; anything else (unreachable, credentials, protocol)
/// is a connection error of `target`.
pub(crate) fn cloud_error(engine: &'static str, e: CloudError, sql: &str, target: &str) -> WarehouseError {
    match e {
        CloudError::Sql { code, sql_state, message } => {
            let state = sql_state.map(|s| format!(", SQL state {s}")).unwrap_or_default();
            WarehouseError::sql(engine, format!("{message} (code {code}{state})"), sql)
        }
        CloudError::Unavailable(message) | CloudError::Auth(message) | CloudError::Config(message) => {
            WarehouseError::Connect { target: target.to_string(), message }
        }
        CloudError::Protocol { .. } => WarehouseError::Connect { target: target.to_string(), message: e.to_string() },
    }
}

/// Read every column of small results as optional strings (introspection, metadata reads).
pub fn string_rows(batches: &[RecordBatch]) -> Result<Vec<Vec<Option<String>>>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &DataType::Utf8).map_err(|e| WarehouseError::Internal(e.to_string())))
            .collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| {
                        let strings = c.as_any().downcast_ref::<arrow::array::StringArray>()?;
                        (!strings.is_null(row)).then(|| strings.value(row).to_string())
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}
