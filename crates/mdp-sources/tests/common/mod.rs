//! What the connector suites share: the sandbox on a free port, a driver with short retries, and
//! reading a stream into a list.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use mdp_core::DateWindow;
use mdp_sandbox::{Sandbox, Scale, World};
use mdp_sources::http::{HttpDriver, RetryPolicy};
use mdp_sources::record::{EntityRecord, PerformanceRecord};
use mdp_sources::{AccountInfo, ReadContext, Sink, Source, SourceError};

/// The sandbox's pinned "today".
pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
}

/// A sandbox (seed 42) serving on a free port.
pub async fn start_sandbox() -> (Arc<Sandbox>, SocketAddr) {
    let sandbox = Sandbox::new(World::new(42, today(), Scale::default()));
    let (addr, _) = mdp_sandbox::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sandbox, addr)
}

/// A driver that retries quickly (faults are injected on purpose).
pub fn context() -> ReadContext {
    let policy = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        max_rate_limit_wait: Duration::from_secs(2),
    };
    ReadContext { http: HttpDriver::new(policy).unwrap() }
}

/// Every record `read` sends, with its outcome.
async fn collect<T: Send, F>(read: impl FnOnce(Sink<T>) -> F) -> Result<Vec<T>, SourceError>
where
    F: std::future::Future<Output = Result<(), SourceError>>,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let collector = async {
        let mut all = Vec::new();
        while let Some(page) = rx.recv().await {
            all.extend(page);
        }
        all
    };
    let (result, rows) = tokio::join!(read(tx), collector);
    result.map(|()| rows)
}

/// The rows of the daily stream `stream_name` over `window`.
pub async fn collect_daily(
    source: &dyn Source,
    stream_name: &str,
    account: &AccountInfo,
    window: DateWindow,
    ctx: &ReadContext,
) -> Result<Vec<PerformanceRecord>, SourceError> {
    let stream = source.streams().iter().find(|s| s.name == stream_name).unwrap();
    collect(|tx| async move { source.read_daily(stream, account, window, ctx, &tx).await }).await
}

/// Today's entities of the entity stream `stream_name`.
pub async fn collect_entities(
    source: &dyn Source,
    stream_name: &str,
    account: &AccountInfo,
    ctx: &ReadContext,
) -> Result<Vec<EntityRecord>, SourceError> {
    let stream = source.streams().iter().find(|s| s.name == stream_name).unwrap();
    collect(|tx| async move { source.read_entities(stream, account, ctx, &tx).await }).await
}
