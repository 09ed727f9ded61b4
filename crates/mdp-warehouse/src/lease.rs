//! The writer lock of a warehouse that has no lock a dead process drops by itself (Snowflake,
//! BigQuery: no advisory locks, no connection whose end the server sees): a **lease** in a one-row
//! table of the metadata schema.
//!
//! - Taking it is one conditional `UPDATE` (the row is free, or its lease has run out) followed by a
//!   read of who holds it now: the statement is atomic, so of two writers only one finds its own
//!   token there.
//! - The holder renews the lease every quarter of its length from a session of its own while it
//!   runs; a clean close frees the row.
//! - A killed writer stops renewing. Until its lease runs out (2 minutes by default) a new writer is
//!   told who holds it (retryable); after that it takes over and reports the dead run's details as a
//!   *stale* lock, so that run is marked failed, as with the other adapters.
//!
//! Times are the writers' clocks in UTC: hosts whose clocks differ by more than the renewal margin
//! (¾ of the lease) could take a live lease; keep clocks synchronised (NTP), as any lease needs.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};

use crate::dialect::{Condition, Literal, TableRef};
use crate::error::{Result, WarehouseError};
use crate::lock::LockHolder;
use crate::rows::Rows;
use crate::types::{ColumnDef, ColumnType, TableSchema};
use crate::Warehouse;

/// The table that holds the lease (not versioned: the lock must work before migrations run).
const LEASE_TABLE: &str = "writer_lease";

/// The default length of a lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// A lease this process holds; dropping it stops renewing (the lease then runs out).
#[derive(Debug)]
pub struct Lease {
    token: String,
    renewer: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// The lease row as read.
#[derive(Debug)]
struct Row {
    holder: Option<LockHolder>,
    token: Option<String>,
    expires_at: Option<NaiveDateTime>,
}

impl Row {
    fn live(&self, now: NaiveDateTime) -> bool {
        self.token.is_some() && self.expires_at.is_some_and(|at| at > now)
    }
}

fn table(metadata_schema: &str) -> TableRef {
    TableRef::new(metadata_schema, LEASE_TABLE)
}

async fn read(w: &dyn Warehouse, metadata_schema: &str) -> Result<Option<Row>> {
    let d = w.dialect();
    let t = table(metadata_schema);
    if !w.exists(&t).await? {
        return Ok(None);
    }
    let sql = format!(
        "SELECT holder, token, expires_at FROM {} WHERE {}",
        d.qualified(&t)?,
        d.conditions_sql(&[Condition::eq("id", Literal::Int(1))])?
    );
    let rows = Rows::new(w.query_all(&sql).await?).decode_first(|r| {
        Ok(Row {
            holder: r.opt_text("holder")?.and_then(|json| serde_json::from_str(&json).ok()),
            token: r.opt_text("token")?,
            expires_at: r.opt_timestamp("expires_at")?,
        })
    })?;
    Ok(rows)
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

fn until(length: Duration) -> NaiveDateTime {
    now() + chrono::Duration::from_std(length).unwrap_or(chrono::Duration::seconds(120))
}

/// Take the lease for `holder`, or fail with who holds it. Returns the lease and the details of a
/// writer whose lease ran out without a clean close (a stale lock).
pub async fn acquire(
    w: &dyn Warehouse,
    renewer: Arc<dyn Warehouse>,
    metadata_schema: &str,
    holder: &LockHolder,
    length: Duration,
) -> Result<(Lease, Option<LockHolder>)> {
    let d = w.dialect();
    let t = table(metadata_schema);
    let schema = TableSchema::new(vec![
        ColumnDef::new("id", ColumnType::Int32).not_null(),
        ColumnDef::new("holder", ColumnType::Text),
        ColumnDef::new("token", ColumnType::Text),
        ColumnDef::new("expires_at", ColumnType::Timestamp),
    ]);
    w.create_table(&t, &schema).await?;
    // The lease's one row, if missing. Not a MERGE: the Snowflake stand-in runs every MERGE through one
    // shared scratch table, so two writers opening at once made one of them fail.
    let (q, id) = (d.qualified(&t)?, d.quote_identifier("id")?);
    // (A FROM clause: BigQuery refuses a WHERE without one.)
    w.execute(&format!(
        "INSERT INTO {q} ({id}) SELECT 1 FROM (SELECT 1 AS one) AS seed WHERE NOT EXISTS (SELECT 1 FROM {q} WHERE {id} = 1)"
    ))
    .await?;
    let before = read(w, metadata_schema).await?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let json = serde_json::to_string(holder).map_err(|e| WarehouseError::Internal(e.to_string()))?;
    let take = format!(
        "UPDATE {} SET holder = {}, token = {}, expires_at = {} WHERE id = 1 AND (token IS NULL OR expires_at < {})",
        d.qualified(&t)?,
        d.string_literal(&json)?,
        d.string_literal(&token)?,
        d.literal(&Literal::Timestamp(until(length)))?,
        d.literal(&Literal::Timestamp(now()))?,
    );
    w.execute(&take).await?;
    let after = read(w, metadata_schema).await?;
    let held = after.as_ref().and_then(|r| r.token.as_deref()) == Some(token.as_str());
    if !held {
        return Err(match after.and_then(|r| r.holder) {
            Some(holder) => WarehouseError::Locked { holder },
            None => WarehouseError::LockedUnknownHolder { lock: format!("the lease in {t}") },
        });
    }
    // The row held a writer's details that it never cleared: that writer died.
    let stale = before.filter(|r| r.token.is_some()).and_then(|r| r.holder);
    let renew_token = token.clone();
    let renew_sql = move |d: &dyn crate::Dialect| -> Result<String> {
        Ok(format!(
            "UPDATE {} SET expires_at = {} WHERE id = 1 AND token = {}",
            d.qualified(&t)?,
            d.literal(&Literal::Timestamp(until(length)))?,
            d.string_literal(&renew_token)?
        ))
    };
    let renewer = tokio::spawn({
        let every = length / 4;
        async move {
            loop {
                tokio::time::sleep(every).await;
                let result = match renew_sql(renewer.dialect()) {
                    Ok(sql) => renewer.execute(&sql).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "could not renew the warehouse's writer lease; retrying");
                }
            }
        }
    });
    Ok((Lease { token, renewer }, stale))
}

/// Free the lease (a clean close: the next writer finds no stale lock).
pub async fn release(w: &dyn Warehouse, metadata_schema: &str, lease: Lease) -> Result<()> {
    lease.renewer.abort();
    let d = w.dialect();
    let t = table(metadata_schema);
    let sql = format!(
        "UPDATE {} SET holder = NULL, token = NULL, expires_at = NULL WHERE id = 1 AND token = {}",
        d.qualified(&t)?,
        d.string_literal(&lease.token)?
    );
    match w.execute(&sql).await {
        Ok(()) => Ok(()),
        // The metadata schema was dropped while we ran: nothing left to free.
        Err(_) if !w.exists(&t).await.unwrap_or(true) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Fail with the holder while another writer's lease is live (`mine` is this process's own lease).
pub async fn check_no_other_writer(w: &dyn Warehouse, metadata_schema: &str, mine: Option<&Lease>) -> Result<()> {
    let Some(row) = read(w, metadata_schema).await? else { return Ok(()) };
    if !row.live(now()) || mine.is_some_and(|lease| row.token.as_deref() == Some(lease.token.as_str())) {
        return Ok(());
    }
    Err(match row.holder {
        Some(holder) => WarehouseError::Locked { holder },
        None => WarehouseError::LockedUnknownHolder { lock: format!("the lease in {}", table(metadata_schema)) },
    })
}
