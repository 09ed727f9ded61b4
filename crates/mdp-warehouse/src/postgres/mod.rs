//! The Postgres adapter, over tokio-postgres.
//!
//! The writer lock is a session advisory lock held by the main connection: Postgres releases it by
//! itself when that connection dies. Each transaction runs on a connection of its own, so that
//! statements of concurrent work can never slip into it.

mod copy;
mod decode;
pub mod tls;

use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::dialect::{Dialect, PostgresDialect, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lock::{advisory_lock_key, LockHolder};
use crate::{Access, BatchStream, Transaction, Warehouse};

use decode::{RowDecoder, BATCH_ROWS};

const ENGINE: &str = "postgres";

/// Bytes buffered before a COPY chunk is sent to the server.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// The table that records who holds the writer lock (not versioned: the lock must work before any
/// migration runs, since migrations run under it).
const LOCK_TABLE: &str = "writer_lock";

pub struct PostgresWarehouse {
    client: Arc<Client>,
    endpoint: Endpoint,
    display: String,
    metadata_schema: String,
    holder: Option<LockHolder>,
}

/// The database's own message, with detail and hint when it gives them.
fn pg_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                m.push_str(&format!("; detail: {detail}"));
            }
            if let Some(hint) = db.hint() {
                m.push_str(&format!("; hint: {hint}"));
            }
            m
        }
        None => e.to_string(),
    }
}

fn pg_error(e: tokio_postgres::Error, sql: &str) -> WarehouseError {
    WarehouseError::sql(ENGINE, pg_message(&e), sql)
}

/// Where and how to connect: the connection string as tokio-postgres reads it (libpq's TLS
/// parameters taken out) and the TLS connector built from them.
#[derive(Clone)]
struct Endpoint {
    config: String,
    tls: MakeRustlsConnect,
    mode: tls::SslMode,
}

impl Endpoint {
    fn new(connection_string: &str, display: &str) -> Result<Endpoint> {
        let refused = |message: String| WarehouseError::Connect { target: display.to_string(), message };
        let (config, settings) = tls::split(connection_string).map_err(refused)?;
        let tls = tls::connector(&settings).map_err(refused)?;
        Ok(Endpoint { config, tls, mode: settings.mode })
    }
}

async fn connect_client(endpoint: &Endpoint, display: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(&endpoint.config, endpoint.tls.clone()).await.map_err(|e| {
        let mut message = pg_message(&e);
        if let Some(source) = std::error::Error::source(&e) {
            // rustls' reason (an unknown CA, a name mismatch) is in the source, not the message.
            if !message.contains(&source.to_string()) {
                message = format!("{message}: {source}");
            }
        }
        WarehouseError::Connect { target: format!("{display} (sslmode={})", endpoint.mode), message }
    })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection ended");
        }
    });
    // String literals rendered by the dialect rely on standard-conforming strings.
    client
        .batch_execute("SET standard_conforming_strings = on; SET client_min_messages = warning")
        .await
        .map_err(|e| pg_error(e, "SET standard_conforming_strings = on"))?;
    // If this process dies mid-query, let the server notice within seconds and end the session (and
    // with it the writer lock) instead of finishing a long query for nobody. Postgres 14+; older
    // servers refuse the setting, and then only notice when they next write to the socket.
    if let Err(e) = client.batch_execute("SET client_connection_check_interval = '2s'").await {
        tracing::debug!(error = %e, "server does not support client_connection_check_interval");
    }
    Ok(client)
}

impl PostgresWarehouse {
    pub(crate) async fn open(
        connection_string: &str,
        display: &str,
        metadata_schema: &str,
        access: &Access,
    ) -> Result<(Self, Option<LockHolder>)> {
        let endpoint = Endpoint::new(connection_string, display)?;
        let client = connect_client(&endpoint, display).await?;
        let mut warehouse = PostgresWarehouse {
            client: Arc::new(client),
            endpoint,
            display: display.to_string(),
            metadata_schema: metadata_schema.to_string(),
            holder: None,
        };
        let stale = match access {
            Access::Read => None,
            Access::Write(holder) => warehouse.acquire_lock(holder).await?,
        };
        Ok((warehouse, stale))
    }

    fn lock_table(&self) -> Result<String> {
        PostgresDialect.qualified(&TableRef::new(&self.metadata_schema, LOCK_TABLE))
    }

    async fn read_lock_holder(&self) -> Result<Option<LockHolder>> {
        let sql = format!("SELECT holder FROM {} WHERE id = 1", self.lock_table()?);
        match self.client.query_opt(&sql, &[]).await {
            Ok(Some(row)) => {
                let text: String = row.try_get(0).map_err(|e| pg_error(e, &sql))?;
                Ok(serde_json::from_str(&text).ok())
            }
            Ok(None) => Ok(None),
            // The table does not exist yet: a first writer is still setting up.
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
            Err(e) => Err(pg_error(e, &sql)),
        }
    }

    /// Whether another session of this database holds the writer's advisory lock, read from
    /// `pg_locks` (trying the lock, even shared, could make a starting writer fail).
    async fn writer_lock_held_elsewhere(&self) -> Result<bool> {
        const SQL: &str = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
             AND pid <> pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = $1 \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        let key = advisory_lock_key(&self.metadata_schema);
        let row = self.client.query_one(SQL, &[&key]).await.map_err(|e| pg_error(e, SQL))?;
        let holders: i64 = row.try_get(0).map_err(|e| pg_error(e, SQL))?;
        Ok(holders > 0)
    }

    async fn acquire_lock(&mut self, holder: &LockHolder) -> Result<Option<LockHolder>> {
        let key = advisory_lock_key(&self.metadata_schema);
        let got: bool = self
            .client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| pg_error(e, "SELECT pg_try_advisory_lock($1)"))?
            .get(0);
        if !got {
            return Err(match self.read_lock_holder().await? {
                Some(holder) => WarehouseError::Locked { holder },
                None => {
                    WarehouseError::LockedUnknownHolder { lock: format!("advisory lock {key} on {}", self.display) }
                }
            });
        }
        let d = PostgresDialect;
        let create = format!(
            "{}; CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, holder text NOT NULL)",
            d.create_schema_sql(&self.metadata_schema)?,
            self.lock_table()?
        );
        self.client.batch_execute(&create).await.map_err(|e| pg_error(e, &create))?;
        let stale = self.read_lock_holder().await?;
        let json = serde_json::to_string(holder).map_err(|e| WarehouseError::Internal(e.to_string()))?;
        let write = format!(
            "DELETE FROM {table}; INSERT INTO {table} (id, holder) VALUES (1, {})",
            d.string_literal(&json)?,
            table = self.lock_table()?
        );
        self.client.batch_execute(&write).await.map_err(|e| pg_error(e, &write))?;
        self.holder = Some(holder.clone());
        Ok(stale)
    }
}

#[async_trait]
impl Warehouse for PostgresWarehouse {
    fn dialect(&self) -> &dyn Dialect {
        &PostgresDialect
    }

    fn describe(&self) -> String {
        // The display names the server (never a password); the mode says what TLS protects (`mdp doctor`).
        format!("postgres {}, sslmode={}", self.display, self.endpoint.mode)
    }

    fn metadata_schema(&self) -> &str {
        &self.metadata_schema
    }

    async fn session(&self) -> Result<Arc<dyn Warehouse>> {
        // A connection of its own: one connection answers its queries in order, and a node whose result
        // is half read (its future not polled while another node's Jinja blocks the task they share)
        // would hold up the query that Jinja waits for.
        let client = connect_client(&self.endpoint, &self.display).await?;
        Ok(Arc::new(PostgresWarehouse {
            client: Arc::new(client),
            endpoint: self.endpoint.clone(),
            display: self.display.clone(),
            metadata_schema: self.metadata_schema.clone(),
            holder: None,
        }))
    }

    async fn execute(&self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).await.map_err(|e| pg_error(e, sql))
    }

    async fn query(&self, sql: &str) -> Result<BatchStream> {
        query_stream(self.client.clone(), sql).await
    }

    async fn check_no_other_writer(&self) -> Result<()> {
        if !self.writer_lock_held_elsewhere().await? {
            return Ok(());
        }
        Err(match self.read_lock_holder().await? {
            Some(holder) => WarehouseError::Locked { holder },
            None => WarehouseError::LockedUnknownHolder {
                lock: format!("advisory lock {} on {}", advisory_lock_key(&self.metadata_schema), self.display),
            },
        })
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        let client = connect_client(&self.endpoint, &self.display).await?;
        client.batch_execute("BEGIN").await.map_err(|e| pg_error(e, "BEGIN"))?;
        Ok(Box::new(PostgresTransaction { client: Arc::new(client) }))
    }

    async fn close(self: Box<Self>) -> Result<()> {
        if self.holder.is_some() {
            // Erase the holder so the next writer does not report a stale lock. The table may be gone
            // (someone dropped the metadata schema while we ran): the advisory lock is released anyway.
            let erase = format!("DELETE FROM {}", self.lock_table()?);
            if let Err(e) = self.client.batch_execute(&erase).await {
                if e.code() != Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) {
                    return Err(pg_error(e, &erase));
                }
            }
            let unlock = format!("SELECT pg_advisory_unlock({})", advisory_lock_key(&self.metadata_schema));
            self.client.batch_execute(&unlock).await.map_err(|e| pg_error(e, &unlock))?;
        }
        Ok(())
    }
}

/// Stream the rows of `sql` as batches of [`BATCH_ROWS`].
async fn query_stream(client: Arc<Client>, sql: &str) -> Result<BatchStream> {
    let statement = client.prepare(sql).await.map_err(|e| pg_error(e, sql))?;
    let decoder = RowDecoder::new(statement.columns())?;
    let rows = client
        .query_raw(&statement, std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>())
        .await
        .map_err(|e| pg_error(e, sql))?;
    let sql = sql.to_string();
    let state = (Box::pin(rows), decoder, client, false);
    let stream = futures::stream::unfold(state, move |(mut rows, mut decoder, client, done)| {
        let sql = sql.clone();
        async move {
            if done {
                return None;
            }
            loop {
                match rows.next().await {
                    Some(Ok(row)) => {
                        if let Err(e) = decoder.push(&row) {
                            return Some((Err(e), (rows, decoder, client, true)));
                        }
                        if decoder.len() >= BATCH_ROWS {
                            let batch = decoder.finish_batch();
                            return Some((batch, (rows, decoder, client, false)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(pg_error(e, &sql)), (rows, decoder, client, true))),
                    None => {
                        if decoder.len() == 0 {
                            return None;
                        }
                        let batch = decoder.finish_batch();
                        return Some((batch, (rows, decoder, client, true)));
                    }
                }
            }
        }
    });
    Ok(stream.boxed())
}

/// A transaction on a dedicated connection; dropping it closes the connection, which rolls back.
struct PostgresTransaction {
    client: Arc<Client>,
}

#[async_trait]
impl Transaction for PostgresTransaction {
    async fn execute(&mut self, sql: &str) -> Result<()> {
        self.client.batch_execute(sql).await.map_err(|e| pg_error(e, sql))
    }

    async fn query_all(&mut self, sql: &str) -> Result<Vec<RecordBatch>> {
        use futures::TryStreamExt;
        query_stream(self.client.clone(), sql).await?.try_collect().await
    }

    async fn bulk_load(&mut self, table: &TableRef, mut batches: BatchStream) -> Result<u64> {
        let d = PostgresDialect;
        let load_error = |message: String| WarehouseError::Load { table: table.to_string(), message };
        let Some(first) = batches.next().await.transpose()? else {
            return Ok(0);
        };
        let schema = first.schema();
        // The target's column types decide the wire encoding (binary COPY is strict about types).
        let udt_sql = format!(
            "SELECT column_name::text, udt_name::text FROM information_schema.columns \
             WHERE table_schema = {} AND table_name = {}",
            d.string_literal(&table.schema)?,
            d.string_literal(&table.name)?
        );
        let target: std::collections::HashMap<String, String> = self
            .client
            .query(&udt_sql, &[])
            .await
            .map_err(|e| pg_error(e, &udt_sql))?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if target.is_empty() {
            return Err(load_error("the table does not exist".into()));
        }
        let mut udts = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let udt = target.get(field.name()).ok_or_else(|| {
                load_error(format!(
                    "the table has no column {:?} (batch columns must exist in the table)",
                    field.name()
                ))
            })?;
            if !copy::compatible_udts(field.data_type()).contains(&udt.as_str()) {
                return Err(load_error(format!(
                    "column {:?} is {udt} in the table but {} in the data",
                    field.name(),
                    field.data_type()
                )));
            }
            udts.push(udt.clone());
        }
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let copy_sql = format!("COPY {} ({}) FROM STDIN (FORMAT binary)", d.qualified(table)?, d.quote_list(&columns)?);
        let sink = self.client.copy_in::<_, bytes::Bytes>(&copy_sql).await.map_err(|e| pg_error(e, &copy_sql))?;
        futures::pin_mut!(sink);
        let mut buf = BytesMut::with_capacity(COPY_CHUNK_BYTES * 2);
        copy::header(&mut buf);
        let mut next = Some(first);
        loop {
            let Some(batch) = next.take() else { break };
            if batch.schema().fields() != schema.fields() {
                return Err(load_error("all batches of one load must have the same columns".into()));
            }
            copy::encode_batch(&batch, &udts, &mut buf)?;
            if buf.len() >= COPY_CHUNK_BYTES {
                sink.send(buf.split().freeze()).await.map_err(|e| pg_error(e, &copy_sql))?;
            }
            next = batches.next().await.transpose()?;
        }
        copy::trailer(&mut buf);
        sink.send(buf.split().freeze()).await.map_err(|e| pg_error(e, &copy_sql))?;
        sink.as_mut().finish().await.map_err(|e| pg_error(e, &copy_sql))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        self.client.batch_execute("COMMIT").await.map_err(|e| pg_error(e, "COMMIT"))
    }

    async fn rollback(self: Box<Self>) -> Result<()> {
        self.client.batch_execute("ROLLBACK").await.map_err(|e| pg_error(e, "ROLLBACK"))
    }
}
