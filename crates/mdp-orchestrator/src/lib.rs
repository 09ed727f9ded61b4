//! Runs: every command that writes to the warehouse does so inside a [`RunSession`].
//!
//! A session takes the warehouse's writer lock (one writer at a time), records the run in the
//! metadata schema (`runs`: command, pid, host, start, end, status, error), reports and closes out
//! the run of a writer that was killed mid-run (a stale lock), and on [`RunSession::finish`]
//! records the outcome and releases the lock. Plans, retries, backfills and the scheduler build on
//! this in later work.
//!
//! Architecture invariant: the orchestrator never writes SQL itself; it calls the warehouse
//! layer's metadata API.

pub mod airflow;
pub mod cron;
pub mod dag;
pub mod ingest;
pub mod pipeline;

use mdp_core::RunId;
use mdp_warehouse::meta::{Metadata, RunStatus};
use mdp_warehouse::{connect, Access, ConnectOptions, LockHolder, Warehouse};

pub use mdp_warehouse::WarehouseError;

/// A writing run: holds the writer lock until [`RunSession::finish`].
pub struct RunSession {
    pub run_id: RunId,
    pub warehouse: Box<dyn Warehouse>,
    /// A writer that had died holding the lock; its run is now marked failed.
    pub recovered_stale_lock: Option<LockHolder>,
}

impl std::fmt::Debug for RunSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunSession")
            .field("run_id", &self.run_id)
            .field("warehouse", &self.warehouse.describe())
            .field("recovered_stale_lock", &self.recovered_stale_lock)
            .finish()
    }
}

impl RunSession {
    /// Take the writer lock and record the start of a run of `command`.
    pub async fn start(options: &ConnectOptions, command: &str) -> Result<RunSession, WarehouseError> {
        let run_id = RunId::new();
        let holder = LockHolder::current(run_id.to_string(), command);
        let opened = connect(options, Access::Write(holder.clone())).await?;
        if let Some(stale) = &opened.stale_lock {
            tracing::warn!(
                run_id = %stale.run_id,
                pid = stale.pid,
                host = %stale.host,
                "found a stale writer lock: run {} (pid {} on {}) stopped without finishing; it is marked failed",
                stale.run_id,
                stale.pid,
                stale.host
            );
        }
        if let Err(e) = Metadata::new(opened.warehouse.as_ref()).start_run(&holder).await {
            // Release the lock now: a lease would otherwise keep the next writer out until it runs out.
            if let Err(closing) = opened.warehouse.close().await {
                tracing::warn!(error = %closing, "could not release the writer lock after a failed start");
            }
            return Err(e);
        }
        Ok(RunSession { run_id, warehouse: opened.warehouse, recovered_stale_lock: opened.stale_lock })
    }

    /// Record the outcome (the error's message when `error` is given) and release the lock.
    pub async fn finish(self, error: Option<&str>) -> Result<(), WarehouseError> {
        let recorded = self.record_outcome(error).await;
        let closed = self.close().await;
        recorded.and(closed)
    }

    /// Record the outcome but keep the lock, for work that reads the finished run and writes about
    /// it under the same lock (alerts); then [`RunSession::close`].
    pub async fn record_outcome(&self, error: Option<&str>) -> Result<(), WarehouseError> {
        let status = if error.is_some() { RunStatus::Failed } else { RunStatus::Success };
        Metadata::new(self.warehouse.as_ref()).finish_run(&self.run_id.to_string(), status, error).await
    }

    /// Release the lock (after [`RunSession::record_outcome`]).
    pub async fn close(self) -> Result<(), WarehouseError> {
        self.warehouse.close().await
    }
}
