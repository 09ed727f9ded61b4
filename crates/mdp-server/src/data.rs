//! Reading the warehouse for pages, the API and metrics.
//!
//! Each request opens the warehouse read-only ([`Reader::open`]) and drops it when it is done:
//! DuckDB lets one process write a file, and a reader that kept it open would block the next run.
//! While a run writes, opening fails with [`DataError::Busy`], which pages turn into an
//! auto-refreshing notice and the API into a 503.
//!
//! Metadata is read through [`mdp_warehouse::meta::Metadata`] where it has a method; the rest of the
//! SQL is composed here with every identifier quoted and every value rendered by the warehouse's
//! [`Dialect`], so it runs on DuckDB and Postgres alike.

use chrono::{NaiveDate, NaiveDateTime};
use mdp_core::{RunStatus, TaskId, TaskKind, TaskState};
use mdp_marketing::kpi::{Component, Currency, Kpi};
use mdp_monitor::checks::CheckStatus;
use mdp_warehouse::meta::{self, Metadata, RunRecord, TaskRecord};
use mdp_warehouse::{
    connect, string_rows, Access, ConnectOptions, Dialect, Literal, TableRef, Warehouse, WarehouseError,
};
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
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    pub run_id: String,
    pub check_name: String,
    pub check_kind: Option<String>,
    pub relation: Option<String>,
    pub status: String,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub failing_rows: Option<i64>,
    pub message: Option<String>,
    pub sample_query: Option<String>,
    pub executed_at: String,
}

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

/// A run as pages and the API show it.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub run_id: String,
    pub command: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

impl From<RunRecord> for Run {
    fn from(r: RunRecord) -> Self {
        Run {
            run_id: r.run_id,
            command: r.command,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            error: r.error,
        }
    }
}

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
    pub spend: String,
    pub conversion_value: String,
    pub conversions: String,
    pub clicks: String,
    pub impressions: String,
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
    pub spend: String,
    pub conversions: String,
    pub conversion_value: String,
    pub clicks: String,
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
    pub runs_by_status: Vec<(String, f64)>,
    pub tasks_by_kind_state: Vec<(String, String, f64)>,
    /// kind → (count, sum of seconds, cumulative counts per [`DURATION_BUCKETS`]).
    pub durations: Vec<(String, f64, f64, Vec<f64>)>,
    /// (source, rows) of ingest tasks, summed over every run.
    pub ingested_rows: Vec<(String, f64)>,
    pub freshness: Vec<Freshness>,
    pub latest_checks: Vec<CheckRow>,
    pub last_success: Option<NaiveDateTime>,
}

/// Upper bounds (seconds) of the task-duration histogram.
pub const DURATION_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

fn parse_ts(value: Option<&str>) -> Option<NaiveDateTime> {
    value.and_then(|s| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").ok())
}

fn num(value: &Option<String>) -> f64 {
    value.as_deref().and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

fn text(value: &Option<String>) -> String {
    value.clone().unwrap_or_default()
}

/// An exact decimal the warehouse summed (0 when NULL or unreadable).
fn decimal(value: &Option<String>) -> Decimal {
    value.as_deref().and_then(|v| v.parse().ok()).unwrap_or_default()
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

    fn meta_table(&self, name: &str) -> DataResult<String> {
        Ok(self.dialect().qualified(&TableRef::new(self.warehouse.metadata_schema(), name))?)
    }

    async fn rows(&self, sql: &str) -> DataResult<Vec<Vec<Option<String>>>> {
        Ok(string_rows(&self.warehouse.query_all(sql).await?)?)
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
        Ok(self.meta().recent_runs(limit).await?.into_iter().map(Run::from).collect())
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
        Ok(Some((run.into(), tasks)))
    }

    fn check_columns(&self, alias: &str) -> DataResult<String> {
        let cols = [
            "run_id",
            "check_name",
            "check_kind",
            "relation",
            "status",
            "observed",
            "expected",
            "failing_rows",
            "message",
            "sample_query",
        ];
        let mut parts = Vec::new();
        for c in cols {
            let col = format!("{alias}.{}", self.q(c)?);
            parts.push(if c == "failing_rows" { format!("CAST({col} AS VARCHAR)") } else { col });
        }
        parts.push(format!("CAST({alias}.{} AS VARCHAR)", self.q("executed_at")?));
        Ok(parts.join(", "))
    }

    fn check_rows(rows: Vec<Vec<Option<String>>>) -> Vec<CheckRow> {
        rows.into_iter()
            .map(|r| CheckRow {
                run_id: text(&r[0]),
                check_name: text(&r[1]),
                check_kind: r[2].clone(),
                relation: r[3].clone(),
                status: text(&r[4]),
                observed: r[5].clone(),
                expected: r[6].clone(),
                failing_rows: r[7].as_deref().and_then(|v| v.parse().ok()),
                message: r[8].clone(),
                sample_query: r[9].clone(),
                executed_at: text(&r[10]),
            })
            .collect()
    }

    /// The latest result of every check (by `check_name`), failing ones first.
    pub async fn latest_checks(&self) -> DataResult<Vec<CheckRow>> {
        self.require_metadata().await?;
        let table = self.meta_table(meta::CHECK_RESULTS)?;
        let (name, at) = (self.q("check_name")?, self.q("executed_at")?);
        let sql = format!(
            "SELECT {cols} FROM {table} c JOIN (SELECT {name}, max({at}) AS latest FROM {table} GROUP BY {name}) l \
             ON c.{name} = l.{name} AND c.{at} = l.latest ORDER BY c.{name}",
            cols = self.check_columns("c")?
        );
        let mut checks = Self::check_rows(self.rows(&sql).await?);
        // One row per check even if two results share the latest timestamp.
        checks.dedup_by(|a, b| a.check_name == b.check_name);
        checks.sort_by_key(|c| (status_rank(&c.status), c.check_name.clone()));
        Ok(checks)
    }

    /// Check results, newest first, filtered by status and kind.
    pub async fn check_history(&self, filter: &CheckFilter) -> DataResult<Vec<CheckRow>> {
        self.require_metadata().await?;
        let mut conditions = vec!["TRUE".to_string()];
        if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
            conditions.push(format!("c.{} = {}", self.q("status")?, self.lit(Literal::Text(status))?));
        }
        if let Some(kind) = filter.kind.as_deref().filter(|s| !s.is_empty()) {
            conditions.push(format!("c.{} = {}", self.q("check_kind")?, self.lit(Literal::Text(kind))?));
        }
        let limit = filter.limit.unwrap_or(200).clamp(1, 5000);
        let sql = format!(
            "SELECT {} FROM {} c WHERE {} ORDER BY c.{} DESC, c.{} LIMIT {limit}",
            self.check_columns("c")?,
            self.meta_table(meta::CHECK_RESULTS)?,
            conditions.join(" AND "),
            self.q("executed_at")?,
            self.q("check_name")?
        );
        Ok(Self::check_rows(self.rows(&sql).await?))
    }

    /// The distinct check kinds and statuses recorded (for the filter menus).
    pub async fn check_facets(&self) -> DataResult<(Vec<String>, Vec<String>)> {
        self.require_metadata().await?;
        let table = self.meta_table(meta::CHECK_RESULTS)?;
        let mut out = Vec::new();
        for col in ["check_kind", "status"] {
            let c = self.q(col)?;
            let sql = format!("SELECT DISTINCT {c} FROM {table} WHERE {c} IS NOT NULL ORDER BY {c}");
            out.push(self.rows(&sql).await?.into_iter().filter_map(|r| r[0].clone()).collect());
        }
        let statuses = out.pop().unwrap_or_default();
        let kinds = out.pop().unwrap_or_default();
        Ok((kinds, statuses))
    }

    /// Freshness of every stream (accounts folded), by source and stream.
    pub async fn freshness(&self, today: NaiveDate) -> DataResult<Vec<Freshness>> {
        self.require_metadata().await?;
        let sql = format!(
            "SELECT {s}, {st}, CAST(count(*) AS VARCHAR), CAST(min({c}) AS VARCHAR), CAST(max({u}) AS VARCHAR), \
             CAST(sum({r}) AS VARCHAR) FROM {t} GROUP BY {s}, {st} ORDER BY {s}, {st}",
            s = self.q("source")?,
            st = self.q("stream")?,
            c = self.q("cursor_date")?,
            u = self.q("updated_at")?,
            r = self.q("rows_loaded")?,
            t = self.meta_table(meta::STREAM_STATE)?
        );
        Ok(self
            .rows(&sql)
            .await?
            .into_iter()
            .map(|r| {
                let cursor_date = r[3].as_deref().and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
                Freshness {
                    source: text(&r[0]),
                    stream: text(&r[1]),
                    accounts: num(&r[2]) as usize,
                    cursor_date,
                    last_loaded_at: parse_ts(r[4].as_deref()),
                    last_window_rows: num(&r[5]) as i64,
                    days_behind: cursor_date.map(|c| (today - c).num_days()),
                }
            })
            .collect())
    }

    /// Aggregates for `/metrics`.
    pub async fn metrics(&self, today: NaiveDate) -> DataResult<MetricsData> {
        if !self.has_metadata().await? {
            return Ok(MetricsData::default());
        }
        let runs = self.meta_table(meta::RUNS)?;
        let tasks = self.meta_table(meta::TASK_INSTANCES)?;
        let (status, kind, state) = (self.q("status")?, self.q("kind")?, self.q("state")?);
        let runs_by_status = self
            .rows(&format!(
                "SELECT {status}, CAST(count(*) AS VARCHAR) FROM {runs} GROUP BY {status} ORDER BY {status}"
            ))
            .await?
            .into_iter()
            .map(|r| (text(&r[0]), num(&r[1])))
            .collect();
        let tasks_by_kind_state = self
            .rows(&format!(
                "SELECT {kind}, {state}, CAST(count(*) AS VARCHAR) FROM {tasks} GROUP BY {kind}, {state} ORDER BY {kind}, {state}"
            ))
            .await?
            .into_iter()
            .map(|r| (text(&r[0]), text(&r[1]), num(&r[2])))
            .collect();
        let (started, finished) = (self.q("started_at")?, self.q("finished_at")?);
        let seconds =
            format!("CAST(EXTRACT(EPOCH FROM {finished}) - EXTRACT(EPOCH FROM {started}) AS DOUBLE PRECISION)");
        let mut buckets = Vec::new();
        for bound in DURATION_BUCKETS {
            buckets.push(format!("CAST(sum(CASE WHEN d <= {bound} THEN 1 ELSE 0 END) AS VARCHAR)"));
        }
        let durations = self
            .rows(&format!(
                "SELECT k, CAST(count(*) AS VARCHAR), CAST(sum(d) AS VARCHAR), {} FROM \
                 (SELECT {kind} AS k, {seconds} AS d FROM {tasks} WHERE {started} IS NOT NULL AND {finished} IS NOT NULL) t \
                 GROUP BY k ORDER BY k",
                buckets.join(", ")
            ))
            .await?
            .into_iter()
            .map(|r| (text(&r[0]), num(&r[1]), num(&r[2]), r[3..].iter().map(num).collect()))
            .collect();
        let mut ingested: Vec<(String, f64)> = Vec::new();
        let (task_id, rows) = (self.q("task_id")?, self.q("rows")?);
        for r in self
            .rows(&format!(
                "SELECT {task_id}, CAST(sum({rows}) AS VARCHAR) FROM {tasks} WHERE {kind} = {} AND {state} = {} \
                 GROUP BY {task_id}",
                self.lit(Literal::Text(TaskKind::Ingest.as_str()))?,
                self.lit(Literal::Text(TaskState::Success.as_str()))?
            ))
            .await?
        {
            let id = text(&r[0]);
            let source = id.parse::<TaskId>().ok().and_then(|t| t.source().map(str::to_string));
            let source = source.unwrap_or_else(|| "unknown".to_string());
            match ingested.iter_mut().find(|(s, _)| *s == source) {
                Some(entry) => entry.1 += num(&r[1]),
                None => ingested.push((source, num(&r[1]))),
            }
        }
        ingested.sort_by(|a, b| a.0.cmp(&b.0));
        let last_success = self
            .rows(&format!(
                "SELECT CAST(max({finished}) AS VARCHAR) FROM {runs} WHERE {status} = {}",
                self.lit(Literal::Text(RunStatus::Success.as_str()))?
            ))
            .await?
            .first()
            .and_then(|r| parse_ts(r[0].as_deref()));
        Ok(MetricsData {
            runs_by_status,
            tasks_by_kind_state,
            durations,
            ingested_rows: ingested,
            freshness: self.freshness(today).await?,
            latest_checks: self.latest_checks().await?,
            last_success,
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
        let sql =
            format!("SELECT CAST(max({}) AS VARCHAR) FROM {}", self.q("date")?, self.dialect().qualified(&table)?);
        Ok(self
            .rows(&sql)
            .await?
            .first()
            .and_then(|r| r[0].as_deref())
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()))
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
            "SELECT CAST({date} AS VARCHAR), {platform}, {currency}, CAST(sum({spend}) AS VARCHAR), \
             CAST(sum({conversions}) AS VARCHAR), CAST(sum({value}) AS VARCHAR) FROM {t} WHERE {range} \
             GROUP BY {date}, {platform}, {currency} ORDER BY {date}, {platform}",
            spend = self.q("spend_reporting")?,
            conversions = self.q("conversions")?,
            value = self.q("conversion_value_reporting")?,
            t = self.dialect().qualified(&table)?,
            range = self.range_condition(from, to)?
        );
        Ok(self
            .rows(&sql)
            .await?
            .into_iter()
            .map(|r| {
                let (spend, conversions, value) = (decimal(&r[3]), decimal(&r[4]), decimal(&r[5]));
                PlatformDay {
                    date: text(&r[0]),
                    platform: text(&r[1]),
                    reporting_currency: text(&r[2]),
                    roas: kpi(Kpi::Roas, |c| match c {
                        Component::Spend => spend,
                        Component::ConversionValue => value,
                        _ => Decimal::ZERO,
                    }),
                    spend,
                    conversions,
                    conversion_value: value,
                }
            })
            .collect())
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
        for c in ["spend_reporting", "conversion_value_reporting", "conversions", "clicks", "impressions"] {
            sums.push(format!("CAST(sum({}) AS VARCHAR)", self.q(c)?));
        }
        let sql = format!(
            "SELECT {currency}, {} FROM {} WHERE {} GROUP BY {currency} ORDER BY {currency}",
            sums.join(", "),
            self.dialect().qualified(&table)?,
            self.range_condition(from, to)?
        );
        Ok(self
            .rows(&sql)
            .await?
            .into_iter()
            .map(|r| {
                let sum = |c: Component| match c {
                    Component::Spend => decimal(&r[1]),
                    Component::ConversionValue => decimal(&r[2]),
                    Component::Conversions => decimal(&r[3]),
                    Component::Clicks => decimal(&r[4]),
                    Component::Impressions => decimal(&r[5]),
                };
                Totals {
                    reporting_currency: text(&r[0]),
                    spend: text(&r[1]),
                    conversion_value: text(&r[2]),
                    conversions: text(&r[3]),
                    clicks: text(&r[4]),
                    impressions: text(&r[5]),
                    cpa: kpi(Kpi::Cpa, sum),
                    roas: kpi(Kpi::Roas, sum),
                }
            })
            .collect())
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
            "SELECT {platform}, {id}, max({name}), max({account}), {currency}, CAST({spend} AS VARCHAR) AS spend, \
             CAST({conversions} AS VARCHAR) AS conversions, CAST({value} AS VARCHAR), CAST(sum({clicks}) AS VARCHAR), \
             CAST({cpa} AS DOUBLE PRECISION) AS cpa, CAST({roas} AS DOUBLE PRECISION) AS roas \
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
        Ok(self
            .rows(&sql)
            .await?
            .into_iter()
            .map(|r| CampaignRow {
                platform: text(&r[0]),
                campaign_id: text(&r[1]),
                campaign_name: text(&r[2]),
                account_name: text(&r[3]),
                reporting_currency: text(&r[4]),
                spend: text(&r[5]),
                conversions: text(&r[6]),
                conversion_value: text(&r[7]),
                clicks: text(&r[8]),
                cpa: r[9].as_deref().and_then(|v| v.parse().ok()),
                roas: r[10].as_deref().and_then(|v| v.parse().ok()),
            })
            .collect())
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
