//! Ingest: read every configured source into the raw layer, incrementally and idempotently.
//!
//! For each source and account: the account's facts and today's entity snapshots (replaced per
//! account and snapshot day, so name history accrues day by day), then each daily stream by date
//! window. A window is written by **replace-by-window** in one transaction: delete the stream's rows of
//! that account and date range, load what the API returned, advance the stream's cursor, commit. Re-running
//! any window gives the same table; a crash leaves the last committed window; the next run resumes
//! from the cursor and re-reads the look-back window, where platforms restate late conversions.
//!
//! Windows are planned per account in the account's time zone ("today" there is provisional and re-read),
//! split to each API's limit, and read in order; accounts run concurrently up to `concurrency`.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Date32Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{Days, NaiveDate, Utc};
use futures::StreamExt;
use mdp_core::{DateWindow, RunId};
use mdp_sources::record::{
    entity_batch, entity_schema, performance_batch, performance_schema, EntityRecord, PerformanceRecord,
};
use mdp_sources::source::ACCOUNTS;
use mdp_sources::{AccountInfo, ReadContext, Source, SourceError, StreamKind, StreamSpec};
use mdp_warehouse::meta::{Metadata, StreamCursor};
use mdp_warehouse::{
    BatchStream, ColumnDef, ColumnType, Condition, Literal, TableRef, TableSchema, Warehouse, WarehouseError,
};
use serde::Serialize;

/// The schema raw tables live in.
pub const RAW_SCHEMA: &str = "raw";

/// Records per batch handed to the warehouse.
const BATCH_RECORDS: usize = 8192;

/// The raw table of a source's stream: `raw.<source>__<stream>`.
pub fn raw_table(source_name: &str, stream: &str) -> TableRef {
    TableRef::new(RAW_SCHEMA, format!("{source_name}__{stream}"))
}

/// One source to ingest, with its loading settings.
pub struct SourceJob {
    pub source: Box<dyn Source>,
    pub lookback_days: u32,
    pub start_date: Option<NaiveDate>,
}

/// What to ingest and how.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Explicit range (a backfill); otherwise cursor + look-back up to today.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Ignore cursors: reload from the start date and drop the account's older rows.
    pub full_refresh: bool,
    /// Accounts read at the same time.
    pub concurrency: usize,
    /// "Today" for every account (tests, demos pinned to a date); otherwise each account's own today.
    pub today: Option<NaiveDate>,
    /// Only these accounts of each source (one orchestrated task per account); `None`: every account.
    pub accounts: Option<Vec<String>>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { from: None, to: None, full_refresh: false, concurrency: 4, today: None, accounts: None }
    }
}

/// What an ingest says while it runs, for progress displays.
#[derive(Debug, Clone, Copy)]
pub enum IngestEvent<'a> {
    /// A stream of an account starts; `windows` is how many windows it will load (1 for entity snapshots).
    StreamStarted { source: &'a str, account: &'a str, stream: &'a str, windows: usize },
    /// One window was committed.
    WindowLoaded { source: &'a str, account: &'a str, stream: &'a str, rows: u64 },
    /// The stream is done (or failed).
    StreamFinished { source: &'a str, account: &'a str, stream: &'a str, rows: u64, failed: bool },
}

/// Receives [`IngestEvent`]s (a terminal's progress bars; nothing by default).
pub trait IngestObserver: Send + Sync {
    fn event(&self, event: IngestEvent<'_>);
}

/// The observer that ignores everything.
struct Silent;

impl IngestObserver for Silent {
    fn event(&self, _: IngestEvent<'_>) {}
}

/// The outcome of one stream of one account.
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub source: String,
    pub platform: String,
    pub account_id: String,
    pub stream: String,
    pub windows: usize,
    pub rows: u64,
    pub seconds: f64,
    /// The failure, naming platform, account and window, with the API's own code and message.
    pub error: Option<String>,
    /// Whether the failure may pass on a later attempt (rate limited, unreachable, a lock conflict):
    /// see [`SourceError::is_retryable`] and [`WarehouseError::is_retryable`].
    #[serde(skip)]
    pub retryable: bool,
}

/// The outcome of an ingest.
#[derive(Debug, Clone, Serialize, Default)]
pub struct IngestReport {
    pub run_id: String,
    pub streams: Vec<StreamReport>,
    pub requests: u64,
    pub retries: u64,
    pub rows: u64,
    pub seconds: f64,
}

impl IngestReport {
    pub fn failures(&self) -> impl Iterator<Item = &StreamReport> {
        self.streams.iter().filter(|s| s.error.is_some())
    }
}

/// Why an ingest step failed.
#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("{0}")]
    Warehouse(#[from] WarehouseError),
    #[error("{0}")]
    Other(String),
}

impl StepError {
    fn is_retryable(&self) -> bool {
        match self {
            StepError::Source(e) => e.is_retryable(),
            StepError::Warehouse(e) => e.is_retryable(),
            StepError::Other(_) => false,
        }
    }
}

/// The raw daily column naming the conversion definition a row was loaded with.
pub const CONVERSION_DEFINITION: &str = "_mdp_conversion_definition";

/// The load-metadata columns appended to every raw row.
fn load_columns(kind: StreamKind) -> Vec<Field> {
    let mut fields = vec![
        Field::new("_mdp_run_id", DataType::Utf8, false),
        Field::new("_mdp_extracted_at", DataType::Timestamp(TimeUnit::Microsecond, None), false),
    ];
    match kind {
        StreamKind::Daily => {
            fields.push(Field::new("_mdp_window_start", DataType::Date32, false));
            fields.push(Field::new("_mdp_window_end", DataType::Date32, false));
            // What the source counted as a conversion (`SourceOptions::conversion_definition`); NULL in
            // rows loaded before mdp recorded it. Last, so an older table gains it by ALTER TABLE.
            fields.push(Field::new(CONVERSION_DEFINITION, DataType::Utf8, true));
        }
        StreamKind::Entity => fields.push(Field::new("_mdp_snapshot_date", DataType::Date32, false)),
    }
    fields
}

fn raw_arrow_schema(kind: StreamKind) -> SchemaRef {
    let base = match kind {
        StreamKind::Daily => performance_schema(),
        StreamKind::Entity => entity_schema(),
    };
    let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.extend(load_columns(kind));
    Arc::new(Schema::new(fields))
}

/// The raw table's declared schema (for `CREATE TABLE`).
pub fn raw_table_schema(kind: StreamKind) -> TableSchema {
    let columns = raw_arrow_schema(kind)
        .fields()
        .iter()
        .map(|f| {
            let ty = ColumnType::from_arrow_field(f).expect("raw columns use supported types");
            let column = ColumnDef::new(f.name(), ty);
            if f.is_nullable() {
                column
            } else {
                column.not_null()
            }
        })
        .collect();
    TableSchema::new(columns)
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid")).num_days() as i32
}

/// Append the load-metadata columns to a batch of records.
fn with_load_columns(
    batch: RecordBatch,
    kind: StreamKind,
    run_id: &str,
    extracted_at: i64,
    dates: (NaiveDate, NaiveDate),
    definition: &str,
) -> Result<RecordBatch, StepError> {
    let n = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![run_id; n])));
    columns.push(Arc::new(TimestampMicrosecondArray::from(vec![extracted_at; n])));
    match kind {
        StreamKind::Daily => {
            columns.push(Arc::new(Date32Array::from(vec![days_since_epoch(dates.0); n])));
            columns.push(Arc::new(Date32Array::from(vec![days_since_epoch(dates.1); n])));
            columns.push(Arc::new(StringArray::from(vec![definition; n])));
        }
        StreamKind::Entity => columns.push(Arc::new(Date32Array::from(vec![days_since_epoch(dates.0); n]))),
    }
    RecordBatch::try_new(raw_arrow_schema(kind), columns).map_err(|e| StepError::Other(e.to_string()))
}

/// Turn pages of records into batches of [`BATCH_RECORDS`] with load columns, on a task of their own
/// that feeds the warehouse's bulk load through a bounded channel.
fn batches_from_pages<T: Send + 'static>(
    mut pages: tokio::sync::mpsc::Receiver<Vec<T>>,
    to_batch: fn(&[T]) -> Result<RecordBatch, String>,
    kind: StreamKind,
    run_id: String,
    table: &TableRef,
    dates: (NaiveDate, NaiveDate),
    definition: String,
) -> BatchStream {
    let extracted_at = Utc::now().timestamp_micros();
    let table = table.to_string();
    // Records that cannot become a batch (e.g. money with more decimals than the raw layer keeps) fail
    // the load with what and where, rather than being rounded or dropped.
    let make_batch = move |records: &[T]| {
        to_batch(records)
            .map_err(StepError::Other)
            .and_then(|b| with_load_columns(b, kind, &run_id, extracted_at, dates, &definition))
            .map_err(|e| WarehouseError::Load { table: table.clone(), message: e.to_string() })
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut pending: Vec<T> = Vec::new();
        while let Some(page) = pages.recv().await {
            pending.extend(page);
            while pending.len() >= BATCH_RECORDS {
                let rest = pending.split_off(BATCH_RECORDS);
                let chunk = std::mem::replace(&mut pending, rest);
                if tx.send(make_batch(&chunk)).await.is_err() {
                    return; // the load failed; its error is reported there
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(make_batch(&pending)).await;
        }
    });
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

/// Runs ingests for one run.
pub struct Ingest<'w> {
    warehouse: &'w dyn Warehouse,
    run_id: String,
    ctx: ReadContext,
    options: IngestOptions,
    observer: &'w dyn IngestObserver,
}

impl<'w> Ingest<'w> {
    pub fn new(warehouse: &'w dyn Warehouse, run_id: &RunId, ctx: ReadContext, options: IngestOptions) -> Self {
        Ingest { warehouse, run_id: run_id.to_string(), ctx, options, observer: &Silent }
    }

    /// Report progress to `observer`.
    pub fn with_observer(mut self, observer: &'w dyn IngestObserver) -> Self {
        self.observer = observer;
        self
    }

    /// Create the raw tables of `jobs` that do not exist yet, one after another (concurrent DDL on
    /// one catalog conflicts, so callers running several ingests at once call this first). Returns
    /// the streams whose table could not be created.
    pub async fn create_tables(&self, jobs: &[SourceJob]) -> Vec<StreamReport> {
        let mut streams = Vec::new();
        for job in jobs {
            let settings = job.source.settings();
            for stream in std::iter::once(&ACCOUNTS).chain(job.source.streams()) {
                if let Err(e) = self.ensure_table(&raw_table(&settings.name, stream.name), stream.kind).await {
                    let mut report = self.report(job, "*", stream.name);
                    report.error =
                        Some(format!("{} stream {}: cannot create its raw table: {e}", settings.platform, stream.name));
                    report.retryable = e.is_retryable();
                    streams.push(report);
                }
            }
        }
        streams
    }

    /// Ingest every job; failures are reported per stream and do not stop the other streams.
    pub async fn run(&self, jobs: &[SourceJob]) -> IngestReport {
        let started = Instant::now();
        let mut streams = self.create_tables(jobs).await;
        if !streams.is_empty() {
            return IngestReport { run_id: self.run_id.clone(), streams, ..IngestReport::default() };
        }
        let mut work = Vec::new();
        for job in jobs {
            for account in &job.source.settings().accounts {
                if self.options.accounts.as_ref().is_some_and(|only| !only.contains(account)) {
                    continue;
                }
                work.push((job, account.clone()));
            }
        }
        let concurrency = self.options.concurrency.max(1);
        // An embedded warehouse bounds its memory while the ingest runs (it shares this process).
        if let Err(e) = self.warehouse.ingest_mode(true).await {
            tracing::warn!(error = %e, "could not bound the warehouse's memory for the ingest");
        }
        let mut results = futures::stream::iter(work.iter().map(|(job, account)| self.account(job, account)))
            .buffer_unordered(concurrency);
        while let Some(reports) = results.next().await {
            streams.extend(reports);
        }
        drop(results);
        if let Err(e) = self.warehouse.ingest_mode(false).await {
            tracing::warn!(error = %e, "could not restore the warehouse's memory limit after the ingest");
        }
        streams.sort_by(|a: &StreamReport, b| {
            (&a.source, &a.account_id, &a.stream).cmp(&(&b.source, &b.account_id, &b.stream))
        });
        let stats = &self.ctx.http.stats;
        IngestReport {
            run_id: self.run_id.clone(),
            rows: streams.iter().map(|s| s.rows).sum(),
            streams,
            requests: stats.requests.load(std::sync::atomic::Ordering::Relaxed),
            retries: stats.retries.load(std::sync::atomic::Ordering::Relaxed),
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    fn report(&self, job: &SourceJob, account: &str, stream: &str) -> StreamReport {
        let settings = job.source.settings();
        StreamReport {
            source: settings.name.clone(),
            platform: settings.platform.to_string(),
            account_id: account.to_string(),
            stream: stream.to_string(),
            windows: 0,
            rows: 0,
            seconds: 0.0,
            error: None,
            retryable: false,
        }
    }

    /// Everything of one account: account facts, entity snapshots, daily streams.
    async fn account(&self, job: &SourceJob, account_id: &str) -> Vec<StreamReport> {
        let source = job.source.as_ref();
        let settings = source.settings();
        let mut reports = Vec::new();
        let mut report = self.report(job, account_id, ACCOUNTS.name);
        let started = Instant::now();
        let account = match source.account(account_id, &self.ctx).await {
            Ok(account) => account,
            Err(e) => {
                report.error = Some(format!("{} account {account_id}: {e}", settings.platform));
                report.retryable = e.is_retryable();
                return vec![report];
            }
        };
        let today = self.options.today.unwrap_or_else(|| today_in(&account.timezone));
        let snapshot = (today, today);
        match self.replace_entities(source, &ACCOUNTS, &account, snapshot, None).await {
            Ok(rows) => {
                report.rows = rows;
                report.windows = 1;
            }
            Err(e) => {
                report.error = Some(format!("{} account {account_id} stream accounts: {e}", settings.platform));
                report.retryable = e.is_retryable();
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        reports.push(report);

        for stream in source.streams() {
            let mut report = self.report(job, account_id, stream.name);
            let started = Instant::now();
            if stream.kind == StreamKind::Entity {
                self.observer.event(IngestEvent::StreamStarted {
                    source: &settings.name,
                    account: account_id,
                    stream: stream.name,
                    windows: 1,
                });
            }
            let outcome = match stream.kind {
                StreamKind::Entity => self
                    .replace_entities(source, stream, &account, snapshot, Some(stream))
                    .await
                    .map(|rows| (1, rows))
                    .map_err(|e| {
                        let message = format!("{} account {account_id} stream {}: {e}", settings.platform, stream.name);
                        (0, 0, message, e.is_retryable())
                    }),
                StreamKind::Daily => self.daily(job, stream, &account, today).await,
            };
            match outcome {
                Ok((windows, rows)) => {
                    report.windows = windows;
                    report.rows = rows;
                }
                Err((windows, rows, e, retryable)) => {
                    report.windows = windows;
                    report.rows = rows;
                    report.error = Some(e);
                    report.retryable = retryable;
                }
            }
            report.seconds = started.elapsed().as_secs_f64();
            self.observer.event(IngestEvent::StreamFinished {
                source: &settings.name,
                account: account_id,
                stream: stream.name,
                rows: report.rows,
                failed: report.error.is_some(),
            });
            reports.push(report);
        }
        reports
    }

    async fn ensure_table(&self, table: &TableRef, kind: StreamKind) -> Result<(), StepError> {
        let added = self.warehouse.create_table(table, &raw_table_schema(kind)).await?;
        if !added.is_empty() {
            tracing::info!(%table, columns = %added.join(", "), "raw table made by an older mdp: columns added (NULL in its rows)");
        }
        Ok(())
    }

    /// Replace today's snapshot of an entity stream for one account.
    async fn replace_entities(
        &self,
        source: &dyn Source,
        stream: &StreamSpec,
        account: &AccountInfo,
        snapshot: (NaiveDate, NaiveDate),
        read: Option<&StreamSpec>,
    ) -> Result<u64, StepError> {
        let settings = source.settings();
        let table = raw_table(&settings.name, stream.name);
        let delete = self.warehouse.dialect().delete_where_sql(
            &table,
            &[
                Condition::eq("account_id", Literal::Text(&account.id)),
                Condition::eq("_mdp_snapshot_date", Literal::Date(snapshot.0)),
            ],
        )?;
        let (tx_pages, rx_pages) = tokio::sync::mpsc::channel::<Vec<EntityRecord>>(4);
        let batches = batches_from_pages(
            rx_pages,
            entity_batch,
            StreamKind::Entity,
            self.run_id.clone(),
            &table,
            snapshot,
            String::new(),
        );
        let mut tx = self.warehouse.begin().await?;
        tx.execute(&delete).await?;
        let reader = async move {
            let result = match read {
                Some(stream) => source.read_entities(stream, account, &self.ctx, &tx_pages).await,
                None => mdp_sources::source::emit(&tx_pages, &self.ctx, vec![account.record.clone()]).await,
            };
            drop(tx_pages);
            result
        };
        let (read_result, load_result) = tokio::join!(reader, tx.bulk_load(&table, batches));
        read_result?;
        let rows = load_result?;
        tx.commit().await?;
        Ok(rows)
    }

    /// The windows of a daily stream for one account, per the cursor, look-back and options.
    async fn plan(
        &self,
        job: &SourceJob,
        stream: &StreamSpec,
        account: &AccountInfo,
        today: NaiveDate,
    ) -> Result<(Vec<DateWindow>, Option<NaiveDate>), StepError> {
        let settings = job.source.settings();
        let cursor = Metadata::new(self.warehouse)
            .cursor(&settings.name, stream.name, &account.id)
            .await?
            .and_then(|c| c.cursor_date);
        // The latest day the platform has: today, or `lag_days` before it.
        let lag = mdp_core::kind(settings.platform).lag_days;
        let today = today.checked_sub_days(Days::new(u64::from(lag))).unwrap_or(today);
        let lookback_start =
            today.checked_sub_days(Days::new(u64::from(job.lookback_days.max(1)) - 1)).unwrap_or(today);
        let (start, end) = match (self.options.from, self.options.to) {
            (Some(from), to) => (from, to.unwrap_or(today)),
            (None, Some(to)) => (job.start_date.unwrap_or(lookback_start), to),
            (None, None) if self.options.full_refresh => (job.start_date.unwrap_or(lookback_start), today),
            (None, None) => {
                let first = job.start_date.unwrap_or(lookback_start);
                let start = match cursor {
                    Some(c) => (c + Days::new(1)).min(lookback_start).max(first.min(lookback_start)),
                    None => first,
                };
                (start, today)
            }
        };
        if end < start {
            return Ok((Vec::new(), cursor));
        }
        let window = DateWindow::new(start, end).map_err(|e| StepError::Other(e.to_string()))?;
        let max_days = if stream.max_window_days == 0 { 30 } else { stream.max_window_days };
        Ok((window.split(max_days), cursor))
    }

    async fn daily(
        &self,
        job: &SourceJob,
        stream: &StreamSpec,
        account: &AccountInfo,
        today: NaiveDate,
    ) -> Result<(usize, u64), (usize, u64, String, bool)> {
        let settings = job.source.settings();
        let describe = |window: Option<&DateWindow>, e: &dyn std::fmt::Display| match window {
            Some(w) => format!("{} account {} stream {} window {w}: {e}", settings.platform, account.id, stream.name),
            None => format!("{} account {} stream {}: {e}", settings.platform, account.id, stream.name),
        };
        let (windows, mut cursor) = match self.plan(job, stream, account, today).await {
            Ok(plan) => plan,
            Err(e) => return Err((0, 0, describe(None, &e), e.is_retryable())),
        };
        let (mut done, mut rows) = (0, 0);
        self.observer.event(IngestEvent::StreamStarted {
            source: &settings.name,
            account: &account.id,
            stream: stream.name,
            windows: windows.len(),
        });
        for (i, window) in windows.iter().enumerate() {
            // A full refresh's first window also removes the account's rows before it.
            let delete_from = if self.options.full_refresh && i == 0 { None } else { Some(window.start()) };
            match self.load_window(job, stream, account, *window, delete_from, cursor).await {
                Ok((loaded, new_cursor)) => {
                    done += 1;
                    rows += loaded;
                    cursor = new_cursor;
                    self.observer.event(IngestEvent::WindowLoaded {
                        source: &settings.name,
                        account: &account.id,
                        stream: stream.name,
                        rows: loaded,
                    });
                }
                Err(e) => return Err((done, rows, describe(Some(window), &e), e.is_retryable())),
            }
        }
        Ok((done, rows))
    }

    /// Replace one window and advance the cursor, in one transaction.
    async fn load_window(
        &self,
        job: &SourceJob,
        stream: &StreamSpec,
        account: &AccountInfo,
        window: DateWindow,
        delete_from: Option<NaiveDate>,
        cursor: Option<NaiveDate>,
    ) -> Result<(u64, Option<NaiveDate>), StepError> {
        let source = job.source.as_ref();
        let settings = source.settings();
        let table = raw_table(&settings.name, stream.name);
        let mut window_rows = vec![Condition::eq("account_id", Literal::Text(&account.id))];
        if let Some(start) = delete_from {
            window_rows.push(Condition::ge("date", Literal::Date(start)));
        }
        window_rows.push(Condition::le("date", Literal::Date(window.end())));
        let delete = self.warehouse.dialect().delete_where_sql(&table, &window_rows)?;
        let new_cursor = Some(cursor.map_or(window.end(), |c| c.max(window.end())));
        let (tx_pages, rx_pages) = tokio::sync::mpsc::channel::<Vec<PerformanceRecord>>(4);
        let batches = batches_from_pages(
            rx_pages,
            performance_batch,
            StreamKind::Daily,
            self.run_id.clone(),
            &table,
            (window.start(), window.end()),
            settings.options.conversion_definition(),
        );
        let reader = async move {
            let result = source.read_daily(stream, account, window, &self.ctx, &tx_pages).await;
            drop(tx_pages);
            result
        };
        let mut tx = self.warehouse.begin().await?;
        tx.execute(&delete).await?;
        let (read_result, load_result) = tokio::join!(reader, tx.bulk_load(&table, batches));
        // A failed read drops the transaction: the window keeps its previous committed rows. A load
        // that failed first stopped the read (`Cancelled`): its own error is the one to report.
        let rows = match (read_result, load_result) {
            (Err(SourceError::Cancelled), Err(load)) => return Err(load.into()),
            (Err(read), _) => return Err(read.into()),
            (Ok(()), load) => load?,
        };
        let cursor_sql = Metadata::new(self.warehouse).set_cursor_sql(
            &StreamCursor {
                source: settings.name.clone(),
                stream: stream.name.to_string(),
                account_id: account.id.clone(),
                cursor_date: new_cursor,
                last_run_id: Some(self.run_id.clone()),
            },
            (window.start(), window.end()),
            i64::try_from(rows).unwrap_or(i64::MAX),
        )?;
        tx.execute(&cursor_sql).await?;
        tx.commit().await?;
        tracing::info!(source = %settings.name, account = %account.id, stream = stream.name, %window, rows, "window loaded");
        Ok((rows, new_cursor))
    }
}

/// Today's date in an IANA time zone (UTC when the zone is unknown).
pub fn today_in(timezone: &str) -> NaiveDate {
    match timezone.parse::<chrono_tz::Tz>() {
        Ok(tz) => Utc::now().with_timezone(&tz).date_naive(),
        Err(_) => {
            tracing::warn!(timezone, "unknown account time zone; using UTC for today");
            Utc::now().date_naive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_tables_are_named_per_source_and_stream() {
        assert_eq!(raw_table("meta_ads", "ad_daily"), TableRef::new("raw", "meta_ads__ad_daily"));
    }

    #[test]
    fn raw_schemas_keep_payload_keys_and_load_metadata() {
        let daily = raw_table_schema(StreamKind::Daily);
        let names: Vec<&str> = daily.columns.iter().map(|c| c.name.as_str()).collect();
        for column in [
            "date",
            "account_id",
            "ad_id",
            "spend",
            "_mdp_payload",
            "_mdp_run_id",
            "_mdp_extracted_at",
            "_mdp_window_start",
            "_mdp_window_end",
            CONVERSION_DEFINITION,
        ] {
            assert!(names.contains(&column), "{column}");
        }
        assert!(daily.columns.iter().any(|c| c.name == "_mdp_payload" && c.ty == ColumnType::Json));
        let entity = raw_table_schema(StreamKind::Entity);
        assert!(entity.columns.iter().any(|c| c.name == "_mdp_snapshot_date"));
    }
}
