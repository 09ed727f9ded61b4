//! Runs, their tasks and the scheduler's fire times: `runs`, `task_instances`, `scheduled_runs`.

use super::*;

/// One task of an orchestrated run, for `task_instances`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub run_id: String,
    pub task_id: String,
    pub kind: String,
    /// `running`, `success`, `failed`, `upstream_failed`, `skipped`.
    pub state: String,
    pub attempts: i64,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    pub rows: Option<i64>,
    pub error: Option<String>,
    pub log: Option<String>,
}

/// A row of `runs`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    /// `running`, `success`, `failed` ([`mdp_core::RunStatus`]); kept as stored, so a history written by
    /// another version still lists.
    pub status: String,
    /// UTC.
    pub started_at: NaiveDateTime,
    /// UTC; `None` while the run is running.
    pub finished_at: Option<NaiveDateTime>,
    pub error: Option<String>,
}

/// How many runs have a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunCount {
    pub status: String,
    pub runs: i64,
}

/// How many task instances have a kind and a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskCount {
    /// Empty when the task recorded none.
    pub kind: String,
    pub state: String,
    pub tasks: i64,
}

/// The durations of the finished task instances of one kind, as a histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDurations {
    /// Empty when the task recorded none.
    pub kind: String,
    pub tasks: i64,
    pub total_seconds: f64,
    /// Tasks that took at most each bound passed to [`Metadata::task_durations`], in its order.
    pub at_most: Vec<i64>,
}

/// The rows a task loaded, summed over every run it ran in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRows {
    pub task_id: String,
    pub rows: i64,
}

impl Metadata<'_> {
    /// Record the start of a run.
    pub async fn start_run(&self, holder: &LockHolder) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (run_id, command, status, started_at, pid, host, mdp_version) VALUES ({}, {}, {}, {}, {}, {}, {})",
            self.qualified(RUNS)?,
            self.lit(Literal::Text(&holder.run_id))?,
            self.lit(Literal::Text(&holder.command))?,
            self.lit(Literal::Text(RunStatus::Running.as_str()))?,
            self.lit(Literal::Timestamp(holder.since.naive_utc()))?,
            holder.pid,
            self.lit(Literal::Text(&holder.host))?,
            self.lit(Literal::Text(env!("CARGO_PKG_VERSION")))?
        );
        self.warehouse.execute(&sql).await
    }

    /// Record the end of a run.
    pub async fn finish_run(&self, run_id: &str, status: RunStatus, error: Option<&str>) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET status = {}, finished_at = {}, error = {} WHERE run_id = {}",
            self.qualified(RUNS)?,
            self.lit(Literal::Text(status.as_str()))?,
            self.lit(Literal::Timestamp(now()))?,
            self.opt_text(error)?,
            self.lit(Literal::Text(run_id))?
        );
        self.warehouse.execute(&sql).await
    }

    /// A writer died holding the lock: mark its run failed (recording it if it never got that far).
    pub async fn mark_run_abandoned(&self, stale: &LockHolder, detected_by: &LockHolder) -> Result<()> {
        let message = format!(
            "the mdp process (pid {} on {}) stopped without finishing; stale lock found by run {} at {}",
            stale.pid,
            stale.host,
            detected_by.run_id,
            detected_by.since.format("%Y-%m-%d %H:%M:%S UTC")
        );
        let exists = format!(
            "SELECT {} FROM {} WHERE run_id = {}",
            self.aliased("count(*)", "runs")?,
            self.qualified(RUNS)?,
            self.lit(Literal::Text(&stale.run_id))?
        );
        if self.named_rows(&exists).await?.decode_first(|r| r.i64("runs"))? == Some(0) {
            self.start_run(stale).await?;
        }
        self.fail_running_tasks(&stale.run_id, &message).await?;
        self.finish_run(&stale.run_id, RunStatus::Failed, Some(&message)).await
    }

    /// The most recent runs, newest first.
    pub async fn recent_runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        self.runs_where("TRUE", limit).await
    }

    /// The runs whose id starts with `prefix` (what a user types from `mdp runs`), newest first.
    pub async fn runs_with_prefix(&self, prefix: &str) -> Result<Vec<RunRecord>> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        self.runs_where(&format!("run_id LIKE {}", self.lit(Literal::Text(&pattern))?), 2).await
    }

    async fn runs_where(&self, condition: &str, limit: usize) -> Result<Vec<RunRecord>> {
        let sql = format!(
            "SELECT run_id, command, status, started_at, finished_at, error FROM {} r WHERE {condition} \
             ORDER BY r.started_at DESC LIMIT {limit}",
            self.qualified(RUNS)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(RunRecord {
                run_id: r.text("run_id")?,
                command: r.opt_text("command")?.unwrap_or_default(),
                status: r.text("status")?,
                started_at: r.timestamp("started_at")?,
                finished_at: r.opt_timestamp("finished_at")?,
                error: r.opt_text("error")?,
            })
        })
    }

    /// Insert or replace task instances (their latest states), in one statement. Each task may
    /// appear once.
    pub async fn record_tasks(&self, tasks: &[TaskRecord]) -> Result<()> {
        if tasks.is_empty() {
            return Ok(());
        }
        let d = self.warehouse.dialect();
        let ts = |v: Option<NaiveDateTime>| -> Result<String> {
            Ok(d.cast(&self.lit(v.map_or(Literal::Null, Literal::Timestamp))?, ColumnType::Timestamp))
        };
        let mut rows = Vec::with_capacity(tasks.len());
        for t in tasks {
            rows.push(format!(
                "SELECT {} AS run_id, {} AS task_id, {} AS kind, {} AS state, {} AS attempts, \
                 {} AS started_at, {} AS finished_at, {} AS rows, {} AS error, {} AS log",
                self.lit(Literal::Text(&t.run_id))?,
                self.lit(Literal::Text(&t.task_id))?,
                self.lit(Literal::Text(&t.kind))?,
                self.lit(Literal::Text(&t.state))?,
                d.cast(&t.attempts.to_string(), ColumnType::Int64),
                ts(t.started_at)?,
                ts(t.finished_at)?,
                d.cast(&self.lit(t.rows.map_or(Literal::Null, Literal::Int))?, ColumnType::Int64),
                d.cast_to_text(&self.opt_text(t.error.as_deref())?),
                d.cast_to_text(&self.opt_text(t.log.as_deref())?),
            ));
        }
        let source = format!("({})", rows.join(" UNION ALL "));
        let key = ["run_id", "task_id"].map(String::from);
        let update =
            ["kind", "state", "attempts", "started_at", "finished_at", "rows", "error", "log"].map(String::from);
        let sql = self.warehouse.dialect().merge_sql(&self.table(TASK_INSTANCES), &source, &key, &update)?;
        self.warehouse.execute(&sql).await
    }

    /// The task instances of a run, in start order.
    pub async fn tasks_of_run(&self, run_id: &str) -> Result<Vec<TaskRecord>> {
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT task_id, kind, state, attempts, {}, {}, rows, error, log FROM {} t WHERE run_id = {} \
             ORDER BY t.started_at, t.task_id",
            self.aliased(&d.cast_to_text("t.started_at"), "started_at")?,
            self.aliased(&d.cast_to_text("t.finished_at"), "finished_at")?,
            self.qualified(TASK_INSTANCES)?,
            self.lit(Literal::Text(run_id))?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(TaskRecord {
                run_id: run_id.to_string(),
                task_id: r.text("task_id")?,
                kind: r.opt_text("kind")?.unwrap_or_default(),
                state: r.text("state")?,
                attempts: r.i64("attempts")?,
                started_at: r.opt_timestamp("started_at")?,
                finished_at: r.opt_timestamp("finished_at")?,
                rows: r.opt_i64("rows")?,
                error: r.opt_text("error")?,
                log: r.opt_text("log")?,
            })
        })
    }

    /// Mark the tasks still `running` in a run that ended (a killed process) as failed.
    pub async fn fail_running_tasks(&self, run_id: &str, why: &str) -> Result<()> {
        let sql = format!(
            "UPDATE {} SET state = {}, error = {}, finished_at = {} WHERE run_id = {} AND state = {}",
            self.qualified(TASK_INSTANCES)?,
            self.lit(Literal::Text(TaskState::Failed.as_str()))?,
            self.lit(Literal::Text(why))?,
            self.lit(Literal::Timestamp(now()))?,
            self.lit(Literal::Text(run_id))?,
            self.lit(Literal::Text(TaskState::Running.as_str()))?
        );
        self.warehouse.execute(&sql).await
    }

    /// Claim a job's fire time for a run; false when it was claimed before (it ran or runs already).
    pub async fn claim_fire_time(&self, job: &str, scheduled_for: NaiveDateTime, run_id: &str) -> Result<bool> {
        let table = self.qualified(SCHEDULED_RUNS)?;
        let job_lit = self.lit(Literal::Text(job))?;
        let at = self.lit(Literal::Timestamp(scheduled_for))?;
        let claims = self.aliased("count(*)", "claims")?;
        let exists = format!("SELECT {claims} FROM {table} WHERE job = {job_lit} AND scheduled_for = {at}");
        if self.named_rows(&exists).await?.decode_first(|r| r.i64("claims"))? != Some(0) {
            return Ok(false);
        }
        let insert = format!(
            "INSERT INTO {table} (job, scheduled_for, run_id, claimed_at) VALUES ({job_lit}, {at}, {}, {})",
            self.lit(Literal::Text(run_id))?,
            self.lit(Literal::Timestamp(now()))?
        );
        // Claims are made under the writer lock, so nothing can claim between the check and this
        // insert (and the primary key would refuse it).
        self.warehouse.execute(&insert).await?;
        Ok(true)
    }

    /// The latest fire time of a job that was claimed.
    pub async fn last_fire_time(&self, job: &str) -> Result<Option<NaiveDateTime>> {
        let sql = format!(
            "SELECT {} FROM {} WHERE job = {}",
            self.aliased(&self.warehouse.dialect().cast_to_text("max(scheduled_for)"), "scheduled_for")?,
            self.qualified(SCHEDULED_RUNS)?,
            self.lit(Literal::Text(job))?
        );
        Ok(self.named_rows(&sql).await?.decode_first(|r| r.opt_timestamp("scheduled_for"))?.flatten())
    }

    /// One run by its exact id.
    pub async fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        let condition = format!("run_id = {}", self.lit(Literal::Text(run_id))?);
        Ok(self.runs_where(&condition, 1).await?.pop())
    }

    /// Runs in the run history by status, by status.
    pub async fn runs_by_status(&self) -> Result<Vec<RunCount>> {
        let status = self.quoted("status")?;
        let sql = format!(
            "SELECT {}, {} FROM {} GROUP BY {status} ORDER BY {status}",
            self.aliased(&status, "status")?,
            self.aliased("count(*)", "runs")?,
            self.qualified(RUNS)?
        );
        self.named_rows(&sql).await?.decode(|r| Ok(RunCount { status: r.text("status")?, runs: r.i64("runs")? }))
    }

    /// Task instances by kind and state, in that order.
    pub async fn tasks_by_kind_and_state(&self) -> Result<Vec<TaskCount>> {
        let (kind, state) = (self.quoted("kind")?, self.quoted("state")?);
        let sql = format!(
            "SELECT {}, {}, {} FROM {} GROUP BY {kind}, {state} ORDER BY {kind}, {state}",
            self.aliased(&kind, "kind")?,
            self.aliased(&state, "state")?,
            self.aliased("count(*)", "tasks")?,
            self.qualified(TASK_INSTANCES)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(TaskCount {
                kind: r.opt_text("kind")?.unwrap_or_default(),
                state: r.text("state")?,
                tasks: r.i64("tasks")?,
            })
        })
    }

    /// A histogram of the durations of finished task instances per kind: how many took at most each
    /// of `bounds` (seconds, finite), their count and total.
    pub async fn task_durations(&self, bounds: &[f64]) -> Result<Vec<TaskDurations>> {
        let d = self.warehouse.dialect();
        let (k, seconds) = (self.quoted("k")?, self.quoted("d")?);
        let mut columns = vec![
            self.aliased(&k, "kind")?,
            self.aliased("count(*)", "tasks")?,
            self.aliased(&format!("sum({seconds})"), "total_seconds")?,
        ];
        for (i, bound) in bounds.iter().enumerate() {
            if !bound.is_finite() {
                return Err(WarehouseError::Internal(format!("histogram bound {bound} is not a finite number")));
            }
            columns.push(
                // count, not sum: a whole number on every engine (fakesnow sums as DOUBLE).
                self.aliased(&format!("count(CASE WHEN {seconds} <= {bound} THEN 1 END)"), &format!("le_{i}"))?,
            );
        }
        let (started, finished) = (self.quoted("started_at")?, self.quoted("finished_at")?);
        let sql = format!(
            "SELECT {} FROM (SELECT {} AS {k}, {} AS {seconds} FROM {} WHERE {started} IS NOT NULL AND {finished} IS NOT NULL) t \
             GROUP BY {k} ORDER BY {k}",
            columns.join(", "),
            self.quoted("kind")?,
            d.seconds_between(&started, &finished),
            self.qualified(TASK_INSTANCES)?
        );
        self.named_rows(&sql).await?.decode(|r| {
            Ok(TaskDurations {
                kind: r.opt_text("kind")?.unwrap_or_default(),
                tasks: r.i64("tasks")?,
                total_seconds: r.opt_f64("total_seconds")?.unwrap_or(0.0),
                at_most: (0..bounds.len()).map(|i| r.i64(&format!("le_{i}"))).collect::<Result<_>>()?,
            })
        })
    }

    /// The rows each task of `kind` in `state` loaded, summed over every run it ran in.
    pub async fn task_rows(&self, kind: &str, state: &str) -> Result<Vec<TaskRows>> {
        let task_id = self.quoted("task_id")?;
        let conditions = [Condition::eq("kind", Literal::Text(kind)), Condition::eq("state", Literal::Text(state))];
        let sql = format!(
            "SELECT {}, {} FROM {} WHERE {} GROUP BY {task_id} ORDER BY {task_id}",
            self.aliased(&task_id, "task_id")?,
            self.aliased(&self.warehouse.dialect().sum_exact(&self.quoted("rows")?, ColumnType::Int64), "rows")?,
            self.qualified(TASK_INSTANCES)?,
            self.warehouse.dialect().conditions_sql(&conditions)?
        );
        self.named_rows(&sql)
            .await?
            .decode(|r| Ok(TaskRows { task_id: r.text("task_id")?, rows: r.opt_i64("rows")?.unwrap_or(0) }))
    }

    /// When the last run with `status` finished (UTC), if one did.
    pub async fn last_run_finished(&self, status: RunStatus) -> Result<Option<NaiveDateTime>> {
        let d = self.warehouse.dialect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {}",
            self.aliased(&d.cast_to_text(&format!("max({})", self.quoted("finished_at")?)), "finished_at")?,
            self.qualified(RUNS)?,
            d.conditions_sql(&[Condition::eq("status", Literal::Text(status.as_str()))])?
        );
        Ok(self.named_rows(&sql).await?.decode_first(|r| r.opt_timestamp("finished_at"))?.flatten())
    }
}
