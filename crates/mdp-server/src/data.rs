//! Reading the warehouse for pages, the API and metrics.
//!
//! Each request opens the warehouse read-only ([`Reader::open`]) and drops it when it is done:
//! DuckDB lets one process write a file, and a reader that kept it open would block the next run.
//! While a run writes, opening fails with [`DataError::Busy`], which pages turn into an
//! auto-refreshing notice and the API into a 503.
//!
//! Metadata (runs, tasks, check results, stream state, incidents) is read only through
//! [`mdp_warehouse::meta::Metadata`], which composes its SQL and decodes its rows by column name. The
//! marts' KPI queries are composed here with every identifier quoted and every value rendered by the
//! warehouse's [`Dialect`], so they run on DuckDB and Postgres alike.

use chrono::{NaiveDate, NaiveDateTime};
use mdp_core::{RunStatus, TaskId, TaskKind, TaskState};
use mdp_marketing::kpi::{Component, Currency, Kpi};
use mdp_monitor::checks::CheckStatus;
use mdp_warehouse::meta::{CheckHistoryFilter, Metadata, RunCount, TaskCount, TaskDurations, TaskRecord};
use mdp_warehouse::rows::{decode_with, Row};
use mdp_warehouse::{connect, Access, ConnectOptions, Dialect, Literal, TableRef, Warehouse, WarehouseError};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

/// Why data could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A run holds the warehouse (DuckDB allows no readers then): try again in a moment.
    #[error("{0}")]
    Busy(String),
    /// Nothing to show yet (no warehouse file, no metadata, marts not built).
    #[error("{0}")]
    Empty(String),
    /// Anything else: the message says what failed.
    #[error("{0}")]
    Failed(String),
}

impl From<WarehouseError> for DataError {
    fn from(e: WarehouseError) -> Self {
        match &e {
            WarehouseError::Locked { holder } => DataError::Busy(format!(
                "run {} (`mdp {}`) is writing to the warehouse since {}",
                holder.run_id,
                holder.command,
                holder.since.format("%H:%M:%S UTC")
            )),
            WarehouseError::LockedUnknownHolder { .. } => {
                DataError::Busy("a run is starting to write to the warehouse".into())
            }
            // DuckDB's own file lock: a writer opened the file between our lock check and our open.
            WarehouseError::Connect { message, .. } if message.contains("lock") || message.contains("Conflicting") => {
                DataError::Busy("a run is writing to the warehouse".into())
            }
            _ => DataError::Failed(e.to_string()),
        }
    }
}

pub type DataResult<T> = Result<T, DataError>;

/// A read-only warehouse for the length of one request.
pub struct Reader {
    warehouse: Box<dyn Warehouse>,
}

/// A row of `check_results`.
pub use mdp_warehouse::meta::StoredCheckResult as CheckRow;

/// One (source, stream) of `stream_state`, its accounts folded: the most behind account counts.
#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    pub source: String,
    pub stream: String,
    pub accounts: usize,
    /// The oldest cursor among the accounts (complete data up to this day).
    pub cursor_date: Option<NaiveDate>,
    /// The last time any account of the stream was loaded (UTC).
    pub last_loaded_at: Option<NaiveDateTime>,
    /// Rows of the last loaded window, summed over accounts.
    pub last_window_rows: i64,
    /// Days between the oldest cursor and today.
    pub days_behind: Option<i64>,
}

/// A run as pages and the API show it: the metadata's record as it is.
pub use mdp_warehouse::meta::RunRecord as Run;

/// A task instance as pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Task {
    pub task_id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i64,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub duration_seconds: Option<f64>,
    pub rows: Option<i64>,
    pub error: Option<String>,
    pub log: Option<String>,
}

impl From<TaskRecord> for Task {
    fn from(t: TaskRecord) -> Self {
        let duration_seconds = match (t.started_at, t.finished_at) {
            (Some(s), Some(f)) => Some((f - s).num_milliseconds() as f64 / 1000.0),
            _ => None,
        };
        Task {
            task_id: t.task_id,
            kind: t.kind,
            state: t.state,
            attempts: t.attempts,
            started_at: t.started_at,
            finished_at: t.finished_at,
            duration_seconds,
            rows: t.rows,
            error: t.error,
            log: t.log,
        }
    }
}

/// Filters of the check history.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct CheckFilter {
    pub status: Option<String>,
    pub kind: Option<String>,
    pub limit: Option<usize>,
}

/// One platform on one day, from the platform mart. Amounts are exact decimals (JSON: strings).
#[derive(Debug, Clone, Serialize)]
pub struct PlatformDay {
    pub date: String,
    pub platform: String,
    pub reporting_currency: String,
    pub spend: Decimal,
    pub conversions: Decimal,
    pub conversion_value: Decimal,
    /// ROAS (`conversion_value / spend`), `None` on zero spend.
    pub roas: Option<f64>,
}

/// Reporting-currency totals over the range (exact decimals as the warehouse sums them).
#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub reporting_currency: String,
    pub spend: Decimal,
    pub conversion_value: Decimal,
    pub conversions: Decimal,
    pub clicks: i64,
    pub impressions: i64,
    pub cpa: Option<f64>,
    pub roas: Option<f64>,
}

/// One campaign over the range, from the campaign mart.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignRow {
    pub platform: String,
    pub campaign_id: String,
    pub campaign_name: String,
    pub account_name: String,
    pub reporting_currency: String,
    pub spend: Decimal,
    pub conversions: Decimal,
    pub conversion_value: Decimal,
    pub clicks: i64,
    pub cpa: Option<f64>,
    pub roas: Option<f64>,
}

/// How the campaign table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CampaignSort {
    Cpa,
    #[default]
    Roas,
    Spend,
    Conversions,
}

impl CampaignSort {
    pub fn parse(value: Option<&str>) -> CampaignSort {
        match value {
            Some("cpa") => CampaignSort::Cpa,
            Some("spend") => CampaignSort::Spend,
            Some("conversions") => CampaignSort::Conversions,
            _ => CampaignSort::Roas,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignSort::Cpa => "cpa",
            CampaignSort::Roas => "roas",
            CampaignSort::Spend => "spend",
            CampaignSort::Conversions => "conversions",
        }
    }
}

/// Aggregates of the metadata for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct MetricsData {
    pub runs_by_status: Vec<RunCount>,
    pub tasks_by_kind_state: Vec<TaskCount>,
    /// Per kind, how many finished tasks took at most each of [`DURATION_BUCKETS`].
    pub durations: Vec<TaskDurations>,
    /// Rows loaded by successful ingest tasks, by source, summed over every run.
    pub ingested_rows: Vec<SourceRows>,
    pub freshness: Vec<Freshness>,
    pub latest_checks: Vec<CheckRow>,
    pub last_success: Option<NaiveDateTime>,
}

/// Rows a source's successful ingest tasks loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRows {
    pub source: String,
    pub rows: i64,
}

/// Upper bounds (seconds) of the task-duration histogram.
pub const DURATION_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// A sum the warehouse computed, exact (`0` for the sum over no rows, which SQL gives as NULL).
fn sum_of(row: &Row<'_>, name: &str) -> mdp_warehouse::Result<Decimal> {
    Ok(row.opt_decimal(name)?.unwrap_or_default())
}

/// A KPI from reporting-currency sums, by the marketing package's definition (`None`: undefined).
fn kpi(kpi: Kpi, sum: impl Fn(Component) -> Decimal) -> Option<f64> {
    kpi.formula().evaluate_decimal(sum).and_then(|v| v.to_f64())
}

impl Reader {
    /// Open the warehouse for this request. A DuckDB file that does not exist yet is
    /// [`DataError::Empty`] (never created by a reader).
    pub async fn open(options: &ConnectOptions) -> DataResult<Reader> {
        if let ConnectOptions::DuckDb { path, .. } = options {
            if !path.exists() {
                return Err(DataError::Empty(format!(
                    "the warehouse {} does not exist yet: run `mdp pipeline` (or use the button on the Actions page)",
                    path.display()
                )));
            }
        }
        let opened = connect(options, Access::Read).await?;
        Ok(Reader { warehouse: opened.warehouse })
    }

    fn dialect(&self) -> &dyn Dialect {
        self.warehouse.dialect()
    }

    fn meta(&self) -> Metadata<'_> {
        Metadata::new(self.warehouse.as_ref())
    }

    fn q(&self, ident: &str) -> DataResult<String> {
        Ok(self.dialect().quote_identifier(ident)?)
    }

    fn lit(&self, value: Literal<'_>) -> DataResult<String> {
        Ok(self.dialect().literal(&value)?)
    }

    /// Run a mart query and decode its rows by column name.
    async fn decode<T>(&self, sql: &str, decode: impl Fn(&Row<'_>) -> mdp_warehouse::Result<T>) -> DataResult<Vec<T>> {
        Ok(decode_with(&self.warehouse.query_all(sql).await?, decode)?)
    }

    /// Whether mdp's metadata exists (a warehouse no run has written has none).
    pub async fn has_metadata(&self) -> DataResult<bool> {
        Ok(self.meta().version().await?.is_some())
    }

    async fn require_metadata(&self) -> DataResult<()> {
        if self.has_metadata().await? {
            Ok(())
        } else {
            Err(DataError::Empty("no run has written to this warehouse yet: run `mdp pipeline`".into()))
        }
    }

    pub async fn recent_runs(&self, limit: usize) -> DataResult<Vec<Run>> {
        self.require_metadata().await?;
        Ok(self.meta().recent_runs(limit).await?)
    }

    /// The incidents alerts opened and that have not recovered, oldest first (none while the
    /// metadata predates incidents: readers never migrate).
    pub async fn open_incidents(&self) -> DataResult<Vec<mdp_warehouse::meta::IncidentRecord>> {
        self.require_metadata().await?;
        if self.meta().version().await?.unwrap_or(0) < mdp_warehouse::meta::INCIDENTS_VERSION {
            return Ok(Vec::new());
        }
        Ok(self.meta().open_incidents().await?)
    }

    /// A run by its id (or a unique prefix of it) and its tasks.
    pub async fn run(&self, id: &str) -> DataResult<Option<(Run, Vec<Task>)>> {
        self.require_metadata().await?;
        let mut found = self.meta().runs_with_prefix(id).await?;
        let run = match found.iter().position(|r| r.run_id == id) {
            Some(i) => found.swap_remove(i),
            None if found.len() == 1 => found.remove(0),
            None => return Ok(None),
        };
        let tasks = self.meta().tasks_of_run(&run.run_id).await?.into_iter().map(Task::from).collect();
        Ok(Some((run, tasks)))
    }

    /// The latest result of every check (by `check_name`), failing ones first.
    pub async fn latest_checks(&self) -> DataResult<Vec<CheckRow>> {
        self.require_metadata().await?;
        let mut checks = self.meta().latest_check_results().await?;
        // One row per check even if two results share the latest timestamp.
        checks.dedup_by(|a, b| a.check_name == b.check_name);
        checks.sort_by_key(|c| (status_rank(&c.status), c.check_name.clone()));
        Ok(checks)
    }

    /// Check results, newest first, filtered by status and kind.
    pub async fn check_history(&self, filter: &CheckFilter) -> DataResult<Vec<CheckRow>> {
        self.require_metadata().await?;
        let filter = CheckHistoryFilter {
            status: filter.status.as_deref().filter(|s| !s.is_empty()),
            kind: filter.kind.as_deref().filter(|s| !s.is_empty()),
            limit: filter.limit.unwrap_or(200).clamp(1, 5000),
        };
        Ok(self.meta().check_history(&filter).await?)
    }

    /// The distinct check kinds and statuses recorded (for the filter menus).
    pub async fn check_facets(&self) -> DataResult<(Vec<String>, Vec<String>)> {
        self.require_metadata().await?;
        let facets = self.meta().check_facets().await?;
        Ok((facets.kinds, facets.statuses))
    }

    /// Freshness of every stream (accounts folded), by source and stream.
    pub async fn freshness(&self, today: NaiveDate) -> DataResult<Vec<Freshness>> {
        self.require_metadata().await?;
        Ok(self
            .meta()
            .stream_freshness()
            .await?
            .into_iter()
            .map(|s| Freshness {
                source: s.source,
                stream: s.stream,
                accounts: usize::try_from(s.accounts).unwrap_or(0),
                cursor_date: s.oldest_cursor,
                last_loaded_at: s.last_loaded_at,
                last_window_rows: s.last_window_rows,
                days_behind: s.oldest_cursor.map(|c| (today - c).num_days()),
            })
            .collect())
    }

    /// Aggregates for `/metrics`.
    pub async fn metrics(&self, today: NaiveDate) -> DataResult<MetricsData> {
        if !self.has_metadata().await? {
            return Ok(MetricsData::default());
        }
        let meta = self.meta();
        let mut ingested_rows: Vec<SourceRows> = Vec::new();
        for task in meta.task_rows(TaskKind::Ingest.as_str(), TaskState::Success.as_str()).await? {
            let source = task.task_id.parse::<TaskId>().ok().and_then(|t| t.source().map(str::to_string));
            let source = source.unwrap_or_else(|| "unknown".to_string());
            match ingested_rows.iter_mut().find(|s| s.source == source) {
                Some(entry) => entry.rows += task.rows,
                None => ingested_rows.push(SourceRows { source, rows: task.rows }),
            }
        }
        ingested_rows.sort_by(|a, b| a.source.cmp(&b.source));
        Ok(MetricsData {
            runs_by_status: meta.runs_by_status().await?,
            tasks_by_kind_state: meta.tasks_by_kind_and_state().await?,
            durations: meta.task_durations(DURATION_BUCKETS).await?,
            ingested_rows,
            freshness: self.freshness(today).await?,
            latest_checks: self.latest_checks().await?,
            last_success: meta.last_run_finished(RunStatus::Success).await?,
        })
    }

    async fn require_relation(&self, table: Option<&TableRef>, name: &str) -> DataResult<TableRef> {
        let table = table.ok_or_else(|| {
            DataError::Empty(format!("this project has no model {name}: enable a source so the marketing marts exist"))
        })?;
        if !self.warehouse.exists(table).await? {
            return Err(DataError::Empty(format!(
                "the mart {table} is not built yet: run `mdp pipeline` (or use the button on the Actions page)"
            )));
        }
        Ok(table.clone())
    }

    /// The latest day in the platform mart (the dashboard's default range ends there).
    pub async fn latest_kpi_date(&self, platform_daily: Option<&TableRef>) -> DataResult<Option<NaiveDate>> {
        let table = self.require_relation(platform_daily, crate::catalog::PLATFORM_MART).await?;
        let sql = format!("SELECT max({}) AS latest FROM {}", self.q("date")?, self.dialect().qualified(&table)?);
        Ok(self.decode(&sql, |r| r.opt_date("latest")).await?.into_iter().next().flatten())
    }

    fn range_condition(&self, from: NaiveDate, to: NaiveDate) -> DataResult<String> {
        Ok(format!(
            "{} BETWEEN {} AND {}",
            self.q("date")?,
            self.lit(Literal::Date(from))?,
            self.lit(Literal::Date(to))?
        ))
    }

    /// Spend, conversions and ROAS per platform and day.
    pub async fn platform_days(
        &self,
        platform_daily: Option<&TableRef>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> DataResult<Vec<PlatformDay>> {
        let table = self.require_relation(platform_daily, crate::catalog::PLATFORM_MART).await?;
        let (date, platform, currency) = (self.q("date")?, self.q("platform")?, self.q("reporting_currency")?);
        let sql = format!(
            "SELECT {date} AS day, {platform} AS platform, {currency} AS currency, sum({spend}) AS spend, \
             sum({conversions}) AS conversions, sum({value}) AS conversion_value FROM {t} WHERE {range} \
             GROUP BY {date}, {platform}, {currency} ORDER BY {date}, {platform}",
            spend = self.q("spend_reporting")?,
            conversions = self.q("conversions")?,
            value = self.q("conversion_value_reporting")?,
            t = self.dialect().qualified(&table)?,
            range = self.range_condition(from, to)?
        );
        self.decode(&sql, |r| {
            let (spend, conversions, value) =
                (sum_of(r, "spend")?, sum_of(r, "conversions")?, sum_of(r, "conversion_value")?);
            Ok(PlatformDay {
                date: r.date("day")?.to_string(),
                platform: r.text("platform")?,
                reporting_currency: r.text("currency")?,
                roas: kpi(Kpi::Roas, |c| match c {
                    Component::Spend => spend,
                    Component::ConversionValue => value,
                    _ => Decimal::ZERO,
                }),
                spend,
                conversions,
                conversion_value: value,
            })
        })
        .await
    }

    /// Totals over the range per reporting currency.
    pub async fn totals(
        &self,
        platform_daily: Option<&TableRef>,
        from: NaiveDate,
        to: NaiveDate,
    ) -> DataResult<Vec<Totals>> {
        let table = self.require_relation(platform_daily, crate::catalog::PLATFORM_MART).await?;
        let currency = self.q("reporting_currency")?;
        let mut sums = Vec::new();
        for (column, alias) in [
            ("spend_reporting", "spend"),
            ("conversion_value_reporting", "conversion_value"),
            ("conversions", "conversions"),
            ("clicks", "clicks"),
            ("impressions", "impressions"),
        ] {
            sums.push(format!("sum({}) AS {alias}", self.q(column)?));
        }
        let sql = format!(
            "SELECT {currency} AS currency, {} FROM {} WHERE {} GROUP BY {currency} ORDER BY {currency}",
            sums.join(", "),
            self.dialect().qualified(&table)?,
            self.range_condition(from, to)?
        );
        self.decode(&sql, |r| {
            let totals = Totals {
                reporting_currency: r.text("currency")?,
                spend: sum_of(r, "spend")?,
                conversion_value: sum_of(r, "conversion_value")?,
                conversions: sum_of(r, "conversions")?,
                clicks: r.opt_i64("clicks")?.unwrap_or(0),
                impressions: r.opt_i64("impressions")?.unwrap_or(0),
                cpa: None,
                roas: None,
            };
            let sum = |c: Component| match c {
                Component::Spend => totals.spend,
                Component::ConversionValue => totals.conversion_value,
                Component::Conversions => totals.conversions,
                Component::Clicks => Decimal::from(totals.clicks),
                Component::Impressions => Decimal::from(totals.impressions),
            };
            Ok(Totals { cpa: kpi(Kpi::Cpa, sum), roas: kpi(Kpi::Roas, sum), ..totals.clone() })
        })
        .await
    }

    /// Campaigns over the range with their KPIs, sorted (best first: lowest CPA, highest ROAS).
    pub async fn campaigns(
        &self,
        campaign_daily: Option<&TableRef>,
        from: NaiveDate,
        to: NaiveDate,
        sort: CampaignSort,
        descending: Option<bool>,
        limit: usize,
    ) -> DataResult<Vec<CampaignRow>> {
        let table = self.require_relation(campaign_daily, crate::catalog::CAMPAIGN_MART).await?;
        let d = self.dialect();
        let (platform, id, currency) = (self.q("platform")?, self.q("campaign_id")?, self.q("reporting_currency")?);
        let sum =
            |c: Component| -> DataResult<String> { Ok(format!("sum({})", self.q(&c.column(Currency::Reporting))?)) };
        let spend = sum(Component::Spend)?;
        let conversions = sum(Component::Conversions)?;
        let value = sum(Component::ConversionValue)?;
        let cpa = Kpi::Cpa.sql(d, sum)?;
        let roas = Kpi::Roas.sql(d, sum)?;
        let (key, default_desc) = match sort {
            CampaignSort::Cpa => ("cpa", false),
            CampaignSort::Roas => ("roas", true),
            CampaignSort::Spend => ("spend", true),
            CampaignSort::Conversions => ("conversions", true),
        };
        let direction = if descending.unwrap_or(default_desc) { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT {platform} AS platform, {id} AS campaign_id, max({name}) AS campaign_name, \
             max({account}) AS account_name, {currency} AS currency, {spend} AS spend, \
             {conversions} AS conversions, {value} AS conversion_value, sum({clicks}) AS clicks \
             FROM {t} WHERE {range} GROUP BY {platform}, {id}, {currency} \
             ORDER BY {order} {direction} NULLS LAST, {platform}, {id} LIMIT {limit}",
            name = self.q("campaign_name")?,
            account = self.q("account_name")?,
            clicks = self.q("clicks")?,
            t = d.qualified(&table)?,
            range = self.range_condition(from, to)?,
            order = match key {
                "cpa" => cpa.clone(),
                "roas" => roas.clone(),
                "spend" => spend.clone(),
                _ => conversions.clone(),
            },
        );
        // The KPIs order the rows in SQL (so LIMIT keeps the best); their values come from the exact
        // sums by the same formulas, never through a float cast in SQL.
        self.decode(&sql, |r| {
            let (spend, conversions, value) =
                (sum_of(r, "spend")?, sum_of(r, "conversions")?, sum_of(r, "conversion_value")?);
            let sum = |c: Component| match c {
                Component::Spend => spend,
                Component::ConversionValue => value,
                Component::Conversions => conversions,
                _ => Decimal::ZERO,
            };
            Ok(CampaignRow {
                platform: r.text("platform")?,
                campaign_id: r.text("campaign_id")?,
                campaign_name: r.opt_text("campaign_name")?.unwrap_or_default(),
                account_name: r.opt_text("account_name")?.unwrap_or_default(),
                reporting_currency: r.text("currency")?,
                cpa: kpi(Kpi::Cpa, sum),
                roas: kpi(Kpi::Roas, sum),
                spend,
                conversions,
                conversion_value: value,
                clicks: r.opt_i64("clicks")?.unwrap_or(0),
            })
        })
        .await
    }
}

/// Failing checks sort first: fail/error, then warn, then the rest.
pub fn status_rank(status: &str) -> u8 {
    match status.parse::<CheckStatus>() {
        Ok(CheckStatus::Fail | CheckStatus::Error) => 0,
        Ok(CheckStatus::Warn) => 1,
        Ok(CheckStatus::Pass | CheckStatus::Skipped) | Err(_) => 2,
    }
}
