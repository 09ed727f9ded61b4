//! The embedded DuckDB adapter: a database file in the project, zero set-up.
//!
//! DuckDB calls block, so each runs on tokio's blocking pool on its own connection cloned from the
//! database handle (DuckDB connections to one database may work concurrently; writes are MVCC).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use async_trait::async_trait;
use futures::StreamExt;

use crate::dialect::{Dialect, DuckDbDialect, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lock::{lock_file_path, FileLock, LockHolder};
use crate::{Access, BatchStream, Transaction, Warehouse};

const ENGINE: &str = "duckdb";

/// Batches in flight between the async side and a blocking DuckDB thread.
const CHANNEL_DEPTH: usize = 4;

/// Rows a bulk load hands from DuckDB's appender to the table at a time (the appender would otherwise
/// keep up to 204,800 rows in memory that its memory limit does not count).
const APPENDER_FLUSH_ROWS: usize = 32_768;

/// DuckDB's buffer pool while an ingest runs, when the target sets no `memory_limit`. By default DuckDB
/// may keep 80% of RAM of table blocks cached, and an ingest touches every block it writes: the ingest
/// process then grows with the data (1.2–1.3 GiB for 1 M raw rows). Capped, written blocks are evicted
/// instead (they are on disk), and the process stays small; models and checks run uncapped afterwards.
pub const INGEST_MEMORY_LIMIT: &str = "160MB";

pub struct DuckDbWarehouse {
    /// The handle every operation clones its own connection from.
    root: Arc<Mutex<duckdb::Connection>>,
    /// Idle connections for `execute` / `query_all`: a new connection costs DuckDB ~0.7 ms of setup
    /// on its first statement, which dominated runs of many small statements (a model build).
    idle: Arc<Mutex<Vec<duckdb::Connection>>>,
    path: PathBuf,
    metadata_schema: String,
    lock: Option<FileLock>,
    /// The target's `memory_limit`, if it set one (then an ingest keeps it).
    memory_limit: Option<String>,
    /// Ingests running now (see `ingest_mode`).
    ingests: AtomicUsize,
}

/// Run a query to completion and collect its batches.
fn query_materialized(conn: &duckdb::Connection, sql: &str) -> Result<Vec<RecordBatch>> {
    let mut stmt = conn.prepare(sql).map_err(|e| db_error(e, sql))?;
    let batches: Vec<RecordBatch> = stmt.query_arrow([]).map_err(|e| db_error(e, sql))?.collect();
    Ok(batches)
}

fn db_error(e: duckdb::Error, sql: &str) -> WarehouseError {
    WarehouseError::sql(ENGINE, e, sql)
}

/// DuckDB's answer when another process has the file open.
fn is_file_lock_conflict(e: &duckdb::Error) -> bool {
    let message = e.to_string();
    message.contains("Could not set lock on file") || message.contains("Conflicting lock")
}

fn join_error(e: tokio::task::JoinError) -> WarehouseError {
    WarehouseError::Internal(format!("a DuckDB worker thread failed: {e}"))
}

impl DuckDbWarehouse {
    /// Open (creating if needed) the database at `path`. Writers take the lock file first, because
    /// DuckDB itself lets only one process open a file for writing and would answer a second one
    /// with an opaque I/O error.
    pub(crate) async fn open(
        path: &Path,
        metadata_schema: &str,
        memory_limit: Option<&str>,
        access: &Access,
    ) -> Result<(Self, Option<LockHolder>)> {
        let lock_path = lock_file_path(path);
        let (lock, stale) = match access {
            Access::Write(holder) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| WarehouseError::Io {
                        context: format!("cannot create directory {}", parent.display()),
                        source,
                    })?;
                }
                let acquired = FileLock::acquire(&lock_path, holder)?;
                (Some(acquired.guard), acquired.stale)
            }
            Access::Read => {
                if let Some(holder) = FileLock::holder(&lock_path)? {
                    return Err(WarehouseError::Locked { holder });
                }
                (None, None)
            }
        };
        let read_only = matches!(access, Access::Read);
        // A reader of another process (`mdp serve`, `mdp sql --read-only`) may hold the file for the
        // length of one request: DuckDB then refuses a writer with "Could not set lock on file". The
        // writer already holds mdp's lock, so no new reader can start; it waits for the one that runs.
        let mut delay = std::time::Duration::from_millis(50);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let conn = loop {
            let owned_path = path.to_path_buf();
            let memory_limit = memory_limit.map(str::to_string);
            let opened = tokio::task::spawn_blocking(move || {
                let mut config = duckdb::Config::default();
                if read_only {
                    config = config.access_mode(duckdb::AccessMode::ReadOnly)?;
                }
                if let Some(limit) = &memory_limit {
                    config = config.max_memory(limit)?;
                }
                duckdb::Connection::open_with_flags(&owned_path, config)
            })
            .await
            .map_err(join_error)?;
            match opened {
                Ok(conn) => break conn,
                Err(e) if !read_only && is_file_lock_conflict(&e) && std::time::Instant::now() < deadline => {
                    tracing::debug!("{} is open in another process; retrying in {delay:?}", path.display());
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(1));
                }
                Err(e) => {
                    return Err(WarehouseError::Connect {
                        target: format!("duckdb {}", path.display()),
                        message: e.to_string(),
                    })
                }
            }
        };
        Ok((
            DuckDbWarehouse {
                root: Arc::new(Mutex::new(conn)),
                idle: Arc::new(Mutex::new(Vec::new())),
                path: path.to_path_buf(),
                metadata_schema: metadata_schema.to_string(),
                lock,
                memory_limit: memory_limit.map(str::to_string),
                ingests: AtomicUsize::new(0),
            },
            stale,
        ))
    }

    fn connection(&self) -> Result<duckdb::Connection> {
        let root = self.root.lock().map_err(|_| WarehouseError::Internal("DuckDB handle poisoned".into()))?;
        root.try_clone().map_err(|e| WarehouseError::Connect { target: self.describe(), message: e.to_string() })
    }

    /// Run a blocking closure on an idle connection (or a new one), then put it back. A connection
    /// is only returned when the closure succeeded, so none carries a failed statement's state.
    async fn with_connection<T: Send + 'static>(
        &self,
        f: impl FnOnce(&duckdb::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        const MAX_IDLE: usize = 16;
        let pooled = self.idle.lock().map_err(|_| WarehouseError::Internal("DuckDB pool poisoned".into()))?.pop();
        let conn = match pooled {
            Some(c) => c,
            None => self.connection()?,
        };
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            if result.is_ok() {
                if let Ok(mut pool) = idle.lock() {
                    if pool.len() < MAX_IDLE {
                        pool.push(conn);
                    }
                }
            }
            result
        })
        .await
        .map_err(join_error)?
    }
}

#[async_trait]
impl Warehouse for DuckDbWarehouse {
    fn dialect(&self) -> &dyn Dialect {
        &DuckDbDialect
    }

    fn describe(&self) -> String {
        format!("duckdb {}", self.path.display())
    }

    fn metadata_schema(&self) -> &str {
        &self.metadata_schema
    }

    async fn session(&self) -> Result<Arc<dyn Warehouse>> {
        // Each query takes a connection of the pool, so a second handle on the pool is enough.
        Ok(Arc::new(DuckDbWarehouse {
            root: self.root.clone(),
            idle: self.idle.clone(),
            path: self.path.clone(),
            metadata_schema: self.metadata_schema.clone(),
            lock: None,
            memory_limit: self.memory_limit.clone(),
            ingests: AtomicUsize::new(0),
        }))
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.with_connection(move |c| c.execute_batch(&sql).map_err(|e| db_error(e, &sql))).await
    }

    async fn query(&self, sql: &str) -> Result<BatchStream> {
        let conn = self.connection()?;
        Ok(stream_query(conn, sql.to_string()).await?.0)
    }

    /// Small results: a materialized query, much cheaper than DuckDB's streaming result for
    /// statements that take a millisecond (tests, `CREATE TABLE … AS`, metadata reads).
    async fn query_all(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let sql = sql.to_string();
        self.with_connection(move |c| query_materialized(c, &sql)).await
    }

    async fn ingest_mode(&self, on: bool) -> Result<()> {
        if self.memory_limit.is_some() || self.lock.is_none() {
            return Ok(()); // the user's limit stands; a reader loads nothing
        }
        // Ingests may overlap (one orchestrated task per account): the first caps, the last lifts.
        if on {
            if self.ingests.fetch_add(1, Ordering::SeqCst) == 0 {
                self.execute(&format!("SET memory_limit = '{INGEST_MEMORY_LIMIT}'")).await?;
            }
            return Ok(());
        }
        if self.ingests.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Ok(());
        }
        // Write what the ingest left in the WAL while still capped, then lift the cap either way.
        let checkpoint = self.checkpoint().await;
        self.execute("RESET memory_limit").await?;
        checkpoint
    }

    async fn checkpoint(&self) -> Result<()> {
        self.execute("CHECKPOINT").await
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let conn = self.connection()?;
        let conn = tokio::task::spawn_blocking(move || {
            conn.execute_batch("BEGIN TRANSACTION").map_err(|e| db_error(e, "BEGIN TRANSACTION"))?;
            Ok::<_, WarehouseError>(conn)
        })
        .await
        .map_err(join_error)??;
        Ok(Box::new(DuckDbTransaction { conn: Some(conn) }))
    }

    async fn close(self: Box<Self>) -> Result<()> {
        // Checkpoint so the next process opens a compact file without replaying the WAL.
        let writer = self.lock.is_some();
        if writer {
            self.execute("CHECKPOINT").await?;
        }
        drop(self);
        Ok(())
    }
}

/// Run `sql` on `conn` in a blocking thread, sending batches back as they are produced. Returns the
/// stream and, once the stream ends, the connection back through the join handle.
async fn stream_query(
    conn: duckdb::Connection,
    sql: String,
) -> Result<(BatchStream, tokio::task::JoinHandle<duckdb::Connection>)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(CHANNEL_DEPTH);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<()>>();
    let handle = tokio::task::spawn_blocking(move || {
        {
            let mut ready = Some(ready_tx);
            let result = (|| {
                let mut stmt = conn.prepare(&sql).map_err(|e| db_error(e, &sql))?;
                let stream = stmt.stream_arrow([]).map_err(|e| db_error(e, &sql))?;
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(()));
                }
                for batch in stream {
                    let item = batch.map_err(|e| db_error(e, &sql));
                    let failed = item.is_err();
                    if tx.blocking_send(item).is_err() || failed {
                        break; // the reader went away, or we reported the error
                    }
                }
                Ok(())
            })();
            if let (Some(r), Err(e)) = (ready.take(), result) {
                let _ = r.send(Err(e));
            }
        }
        conn
    });
    // Statement errors (bad SQL) surface from `query` itself, not from the first poll of the stream.
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(WarehouseError::Internal("DuckDB query thread ended early".into())),
    }
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed();
    Ok((stream, handle))
}

/// A transaction on its own DuckDB connection. Dropping it closes the connection, which rolls back.
struct DuckDbTransaction {
    conn: Option<duckdb::Connection>,
}

impl DuckDbTransaction {
    async fn run<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&duckdb::Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.take().ok_or_else(|| WarehouseError::Internal("transaction already finished".into()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = f(&conn);
            (conn, result)
        })
        .await
        .map_err(join_error)?;
        self.conn = Some(conn);
        result
    }
}

#[async_trait]
impl Transaction for DuckDbTransaction {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        let sql = sql.to_string();
        self.run(move |c| c.execute_batch(&sql).map_err(|e| db_error(e, &sql))).await
    }

    async fn query_all(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        let sql = sql.to_string();
        self.run(move |c| query_materialized(c, &sql)).await
    }

    async fn bulk_load(&mut self, table: &TableRef, mut batches: BatchStream) -> Result<u64> {
        let conn = self.conn.take().ok_or_else(|| WarehouseError::Internal("transaction already finished".into()))?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(CHANNEL_DEPTH);
        let target = table.clone();
        // The appender runs on a blocking thread and drains the channel; the async side feeds it.
        let worker = tokio::task::spawn_blocking(move || {
            let result = (|| {
                let mut rows = 0u64;
                let mut appender: Option<duckdb::Appender<'_>> = None;
                let mut unflushed = 0usize;
                while let Some(batch) = rx.blocking_recv() {
                    if appender.is_none() {
                        let schema = batch.schema();
                        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                        check_columns_exist(&conn, &target, &columns)?;
                        appender = Some(
                            conn.appender_with_columns_to_db(&target.name, &target.schema, &columns)
                                .map_err(|e| load_error(&target, e))?,
                        );
                    }
                    let batch_rows = batch.num_rows();
                    rows += batch_rows as u64;
                    if let Some(app) = appender.as_mut() {
                        app.append_record_batch(batch).map_err(|e| load_error(&target, e))?;
                        // The appender buffers up to 204,800 rows in memory outside DuckDB's memory
                        // limit (~140 MB of report rows with payloads); handed to the table every
                        // `APPENDER_FLUSH_ROWS`, they go where the limit applies.
                        unflushed += batch_rows;
                        if unflushed >= APPENDER_FLUSH_ROWS {
                            unflushed = 0;
                            app.flush().map_err(|e| load_error(&target, e))?;
                        }
                    }
                }
                if let Some(mut app) = appender {
                    app.flush().map_err(|e| load_error(&target, e))?;
                }
                Ok(rows)
            })();
            (conn, result)
        });
        let mut feed_error = None;
        while let Some(batch) = batches.next().await {
            match batch {
                Ok(batch) => {
                    if tx.send(batch).await.is_err() {
                        break; // the appender failed; its error is reported below
                    }
                }
                Err(e) => {
                    feed_error = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let (conn, result) = worker.await.map_err(join_error)?;
        self.conn = Some(conn);
        match feed_error {
            Some(e) => Err(e),
            None => result,
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.run(|c| c.execute_batch("COMMIT").map_err(|e| db_error(e, "COMMIT"))).await
    }

    async fn rollback(mut self: Box<Self>) -> Result<()> {
        self.run(|c| c.execute_batch("ROLLBACK").map_err(|e| db_error(e, "ROLLBACK"))).await
    }
}

/// Name the first batch column the table lacks (DuckDB's appender only says "must exist").
fn check_columns_exist(conn: &duckdb::Connection, table: &TableRef, columns: &[&str]) -> Result<()> {
    let sql = "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?";
    let mut stmt = conn.prepare(sql).map_err(|e| db_error(e, sql))?;
    let existing: Vec<String> = stmt
        .query_map([&table.schema, &table.name], |row| row.get::<_, String>(0))
        .and_then(|rows| rows.collect())
        .map_err(|e| db_error(e, sql))?;
    if existing.is_empty() {
        return Err(WarehouseError::Load { table: table.to_string(), message: "the table does not exist".into() });
    }
    match columns.iter().find(|c| !existing.iter().any(|e| e == *c)) {
        Some(missing) => Err(WarehouseError::Load {
            table: table.to_string(),
            message: format!("the table has no column {missing:?} (batch columns must exist in the table)"),
        }),
        None => Ok(()),
    }
}

fn load_error(table: &TableRef, e: duckdb::Error) -> WarehouseError {
    WarehouseError::Load { table: table.to_string(), message: e.to_string() }
}
