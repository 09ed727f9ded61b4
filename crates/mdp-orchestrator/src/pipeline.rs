//! The pipeline: ingest → transform → tests as one DAG of tasks, derived from the project.
//!
//! Tasks: one `ingest.<source>` per source (or one per source and date window for a backfill, chained
//! so the windows of a source load in order), then every model, seed and test node the selection
//! builds, with dbt's `build` edges. Dependencies are exact: a node that reads a raw table
//! `source('mdp_raw', '<source>__<stream>')` waits for that source's ingest only, so one failing
//! platform does not block the others' staging models; a mart that unions every platform waits for
//! all of them. With `partial`, the nodes that read a source run even when its ingest failed (on the
//! data loaded before), and the run is flagged partial.
//!
//! Each task's state changes are written to `task_instances` as they happen, so a run killed midway
//! leaves its record: the next writer's stale-lock recovery marks the still-running tasks failed.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use mdp_core::RunId;
use mdp_sources::ReadContext;
use mdp_transform::manifest::ResourceType;
use mdp_transform::run::{NodeRunner, NodeStatus};
use mdp_transform::Parsed;
use mdp_warehouse::meta::{Metadata, TaskRecord};
use mdp_warehouse::Warehouse;

use crate::dag::{BoxFuture, Dag, DagError, Task, TaskObserver, TaskOutcome, TaskOutput, TaskRunner, TaskState};
use crate::ingest::{Ingest, IngestOptions, SourceJob};

/// The dbt source name under which the raw tables are declared (mdp's marketing package).
pub const RAW_SOURCE: &str = "mdp_raw";

/// Retries and timeouts of every task.
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    pub retries: u32,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub timeout: Option<Duration>,
}

impl Default for TaskPolicy {
    fn default() -> Self {
        TaskPolicy {
            retries: 2,
            retry_delay: Duration::from_secs(30),
            max_retry_delay: Duration::from_secs(600),
            timeout: None,
        }
    }
}

/// An ingest task: one account of a source (or every account), optionally restricted to a date
/// window (a backfill).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestTask {
    pub source: String,
    pub account: Option<String>,
    pub window: Option<(NaiveDate, NaiveDate)>,
}

impl IngestTask {
    /// `ingest.<source>[.<account>][.<from>_<to>]`.
    pub fn task_id(&self) -> String {
        let mut id = format!("ingest.{}", self.source);
        if let Some(account) = &self.account {
            id.push('.');
            id.push_str(account);
        }
        if let Some((from, to)) = self.window {
            id.push_str(&format!(".{from}_{to}"));
        }
        id
    }
}

/// What a pipeline run does.
#[derive(Debug, Clone, Default)]
pub struct PipelinePlan {
    pub ingest: Vec<IngestTask>,
    /// Transform nodes that run, each with the nodes it waits for (from [`NodeRunner::plan`]).
    pub nodes: Vec<(String, Vec<String>)>,
    pub policy: TaskPolicy,
    /// Run the readers of a source whose ingest failed, on the data loaded before (flagged partial).
    pub partial: bool,
    /// End with a `checks` task that runs `mdp check`'s monitors once everything else succeeded.
    pub checks: bool,
}

/// The id of the monitors' task.
pub const CHECKS_TASK: &str = "checks";

/// `from..=to` in consecutive windows of `days` days.
pub fn windows(from: NaiveDate, to: NaiveDate, days: u32) -> Vec<(NaiveDate, NaiveDate)> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = (start + chrono::Days::new(u64::from(days.max(1)) - 1)).min(to);
        out.push((start, end));
        start = end + chrono::Days::new(1);
    }
    out
}

/// The DAG of a plan: ingest tasks (the windows of a source's account chained in date order), then
/// the nodes, each waiting for its upstream nodes and for the ingest of every source it reads.
pub fn dag(plan: &PipelinePlan, parsed: Option<&Parsed>) -> Result<Dag, DagError> {
    let policy = |mut t: Task| {
        t.retries = plan.policy.retries;
        t.retry_delay = plan.policy.retry_delay;
        t.max_retry_delay = plan.policy.max_retry_delay;
        t.timeout = plan.policy.timeout;
        t
    };
    let mut tasks = Vec::new();
    // The last ingest task of each (source, account): a window waits for the one before, and the
    // readers of a source wait for the last task of each of its accounts.
    let mut last_of: HashMap<(&str, Option<&str>), String> = HashMap::new();
    for ingest in &plan.ingest {
        let key = (ingest.source.as_str(), ingest.account.as_deref());
        let upstream: Vec<String> = last_of.get(&key).cloned().into_iter().collect();
        let id = ingest.task_id();
        tasks.push(policy(Task::new(id.clone(), "ingest", upstream)));
        last_of.insert(key, id);
    }
    let mut last_of_source: HashMap<&str, Vec<String>> = HashMap::new();
    for ingest in &plan.ingest {
        let id = &last_of[&(ingest.source.as_str(), ingest.account.as_deref())];
        let ids = last_of_source.entry(ingest.source.as_str()).or_default();
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    for (id, deps) in &plan.nodes {
        let mut upstream = deps.clone();
        let mut reads_ingested = false;
        if let Some(parsed) = parsed {
            let node = &parsed.manifest.nodes[id];
            for dep in &node.depends_on {
                let Some(source) = parsed.manifest.nodes.get(dep).and_then(|n| n.source.as_ref()) else { continue };
                if source.source_name != RAW_SOURCE {
                    continue;
                }
                let table = &parsed.manifest.nodes[dep].name;
                if let Some(ingests) = last_of_source
                    .iter()
                    .find(|(name, _)| table.strip_prefix(**name).is_some_and(|rest| rest.starts_with("__")))
                    .map(|(_, ids)| ids)
                {
                    for ingest in ingests {
                        if !upstream.contains(ingest) {
                            upstream.push(ingest.clone());
                        }
                    }
                    reads_ingested = true;
                }
            }
        }
        let kind = parsed.map_or("node", |p| p.manifest.nodes[id].resource_type.as_str());
        let mut task = policy(Task::new(id.clone(), kind, upstream));
        if kind == ResourceType::Test.as_str() {
            // A failing test is a result, not a flaky failure: no retries.
            task.retries = 0;
        }
        task.tolerate_upstream_failure = plan.partial && reads_ingested;
        tasks.push(task);
    }
    if plan.checks {
        // After the tasks nothing else waits for (so after all of them).
        let waited_for: std::collections::HashSet<&str> =
            tasks.iter().flat_map(|t| t.upstream.iter().map(String::as_str)).collect();
        let last: Vec<String> =
            tasks.iter().filter(|t| !waited_for.contains(t.id.as_str())).map(|t| t.id.clone()).collect();
        // A failing check is a result, not a flaky failure: no retries.
        let mut task = policy(Task::new(CHECKS_TASK, CHECKS_TASK, last));
        task.retries = 0;
        tasks.push(task);
    }
    Dag::new(tasks)
}

/// Runs the pipeline's tasks against one warehouse (the run session's).
pub struct PipelineRunner<'a> {
    pub warehouse: &'a dyn Warehouse,
    pub run_id: &'a RunId,
    pub ctx: ReadContext,
    /// Ingest settings shared by every ingest task (`today`, concurrency, full refresh).
    pub ingest_options: IngestOptions,
    pub jobs: HashMap<String, &'a SourceJob>,
    /// The ingest tasks by id (their windows).
    pub ingest_tasks: HashMap<String, IngestTask>,
    pub nodes: Option<&'a NodeRunner<'a>>,
    /// What the `checks` task needs (see [`PipelinePlan::checks`]).
    pub checks: Option<&'a mdp_monitor::checks::CheckContext>,
}

impl TaskRunner for PipelineRunner<'_> {
    fn run<'b>(&'b self, task: &'b Task, _attempt: u32) -> BoxFuture<'b, Result<TaskOutput, String>> {
        Box::pin(async move {
            if task.kind == "ingest" {
                let spec = self.ingest_tasks.get(&task.id).ok_or_else(|| format!("unknown ingest task {}", task.id))?;
                let job = self.jobs.get(&spec.source).ok_or_else(|| format!("unknown source {}", spec.source))?;
                let mut options = self.ingest_options.clone();
                options.accounts = spec.account.clone().map(|a| vec![a]);
                if let Some((from, to)) = spec.window {
                    options.from = Some(from);
                    options.to = Some(to);
                }
                let report = Ingest::new(self.warehouse, self.run_id, self.ctx.clone(), options)
                    .run(std::slice::from_ref(*job))
                    .await;
                let errors: Vec<String> = report.failures().filter_map(|s| s.error.clone()).collect();
                if !errors.is_empty() {
                    return Err(errors.join("\n"));
                }
                let log = report
                    .streams
                    .iter()
                    .map(|s| {
                        format!("{} {} {}: {} rows in {} windows", s.source, s.account_id, s.stream, s.rows, s.windows)
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                return Ok(TaskOutput { rows: Some(report.rows as i64), log });
            }
            if task.kind == CHECKS_TASK {
                let ctx = self.checks.ok_or("the checks task has no project context")?;
                let filter = mdp_monitor::checks::CheckFilter::default();
                let outcomes = mdp_monitor::checks::run_checks(self.warehouse, ctx, &filter)
                    .await
                    .map_err(|e| format!("the monitors could not run: {e}"))?;
                mdp_monitor::checks::record(self.warehouse, self.run_id.as_str(), &outcomes)
                    .await
                    .map_err(|e| format!("cannot record the check results: {e}"))?;
                let lines: Vec<String> = outcomes
                    .iter()
                    .filter(|o| o.status.rank() > 0)
                    .map(|o| format!("{} {}: {}", o.status.as_str(), o.check_name, o.message))
                    .collect();
                let failed = outcomes.iter().filter(|o| o.status.is_failure()).count();
                let summary = format!("{} checks, {} not passing", outcomes.len(), lines.len());
                let log = std::iter::once(summary).chain(lines).collect::<Vec<_>>().join("\n");
                return if failed > 0 {
                    Err(format!("{failed} check(s) failed (see `mdp check`):\n{log}"))
                } else {
                    Ok(TaskOutput { rows: Some(outcomes.len() as i64), log })
                };
            }
            let nodes = self.nodes.ok_or("no transform project is loaded")?;
            let result = nodes.run(self.warehouse, &task.id).await;
            match result.status {
                NodeStatus::Success | NodeStatus::Pass | NodeStatus::Warn => Ok(TaskOutput {
                    rows: result.rows_affected.map(|r| r as i64),
                    log: format!("{}: {}", result.status.as_str(), result.message),
                }),
                NodeStatus::Error | NodeStatus::Fail | NodeStatus::Skipped => Err(result.message),
            }
        })
    }
}

/// Writes task state changes to `task_instances`: buffered, and flushed as one statement when
/// 200 ms have passed since the last flush (or 256 changes wait), so a thousand quick tasks do not
/// cost a thousand round trips. Call [`Recorder::flush`] when the run ends. A crash loses at most
/// the last unflushed changes; the run is then marked failed by the next writer. Prints one line per
/// finished task when `echo` is set, and passes each change on to a listener if one is set
/// ([`Recorder::with_listener`]).
pub struct Recorder<'a> {
    warehouse: &'a dyn Warehouse,
    run_id: String,
    echo: bool,
    pending: std::sync::Mutex<Vec<TaskRecord>>,
    last_flush: std::sync::Mutex<std::time::Instant>,
    /// Held from taking a batch until it is written, so batches reach the table in the order they
    /// were taken: two flushes in flight could otherwise let a task's earlier `running` land after
    /// its `success` (seen: tasks left `running` in a finished run).
    flushing: tokio::sync::Mutex<()>,
    listener: Option<&'a dyn TaskObserver>,
}

impl<'a> Recorder<'a> {
    pub fn new(warehouse: &'a dyn Warehouse, run_id: impl Into<String>, echo: bool) -> Self {
        Recorder {
            warehouse,
            run_id: run_id.into(),
            echo,
            pending: std::sync::Mutex::new(Vec::new()),
            last_flush: std::sync::Mutex::new(std::time::Instant::now()),
            flushing: tokio::sync::Mutex::new(()),
            listener: None,
        }
    }

    /// Also tell `listener` of every state change, after it is recorded (the CLI emits lineage events
    /// this way; the orchestrator itself never speaks HTTP).
    pub fn with_listener(mut self, listener: &'a dyn TaskObserver) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Write what is pending.
    pub async fn flush(&self) {
        let _in_order = self.flushing.lock().await;
        let batch = std::mem::take(&mut *self.pending.lock().expect("lock"));
        *self.last_flush.lock().expect("lock") = std::time::Instant::now();
        if let Err(e) = Metadata::new(self.warehouse).record_tasks(&batch).await {
            tracing::warn!(error = %e, tasks = batch.len(), "cannot record task states");
        }
    }
}

impl TaskObserver for Recorder<'_> {
    fn changed<'b>(&'b self, task: &'b Task, o: &'b TaskOutcome) -> BoxFuture<'b, ()> {
        Box::pin(async move {
            let record = TaskRecord {
                run_id: self.run_id.clone(),
                task_id: task.id.clone(),
                kind: task.kind.clone(),
                state: o.state.as_str().to_string(),
                attempts: i64::from(o.attempts),
                started_at: o.started_at.map(|t| t.naive_utc()),
                finished_at: o.finished_at.map(|t| t.naive_utc()),
                rows: o.rows,
                error: o.error.clone(),
                log: (!o.log.is_empty()).then(|| o.log.clone()),
            };
            let due = {
                let mut pending = self.pending.lock().expect("lock");
                // One row per task in a batch: the latest state replaces an earlier one.
                pending.retain(|r| r.task_id != record.task_id);
                pending.push(record);
                pending.len() >= 256
                    || self.last_flush.lock().expect("lock").elapsed() >= std::time::Duration::from_millis(200)
            };
            if due {
                self.flush().await;
            }
            if let Some(listener) = self.listener {
                listener.changed(task, o).await;
            }
            if self.echo && o.state != TaskState::Running {
                let retried = if o.attempts > 1 { format!(", {} attempts", o.attempts) } else { String::new() };
                let error =
                    o.error.as_deref().map(|e| format!(": {}", e.lines().next().unwrap_or(""))).unwrap_or_default();
                eprintln!("  {:<15} {} ({:.2}s{retried}){error}", o.state.as_str(), task.id, o.seconds);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backfill_windows_cover_the_range_in_order() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            windows(d("2026-06-01"), d("2026-06-16"), 7),
            [
                (d("2026-06-01"), d("2026-06-07")),
                (d("2026-06-08"), d("2026-06-14")),
                (d("2026-06-15"), d("2026-06-16"))
            ]
        );
        assert_eq!(windows(d("2026-06-01"), d("2026-06-01"), 7), [(d("2026-06-01"), d("2026-06-01"))]);
    }

    #[test]
    fn the_checks_task_waits_for_every_task_nothing_else_waits_for() {
        let mut plan = PipelinePlan { checks: true, ..PipelinePlan::default() };
        for source in ["google_ads", "meta_ads"] {
            plan.ingest.push(IngestTask { source: source.into(), account: None, window: None });
        }
        plan.nodes = vec![("model.a".into(), vec![]), ("test.a".into(), vec!["model.a".into()])];
        let dag = dag(&plan, None).unwrap();
        let checks = dag.task(CHECKS_TASK).unwrap();
        assert_eq!(checks.upstream, ["ingest.google_ads", "ingest.meta_ads", "test.a"]);
        assert_eq!(checks.retries, 0);
        assert!(dag.task(CHECKS_TASK).is_some());
        let without = super::dag(&PipelinePlan { checks: false, ..plan }, None).unwrap();
        assert!(without.task(CHECKS_TASK).is_none());
    }

    #[test]
    fn a_sources_backfill_windows_are_chained_and_sources_run_side_by_side() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut plan = PipelinePlan::default();
        for source in ["google_ads", "meta_ads"] {
            for account in ["1", "2"] {
                for w in windows(d("2026-06-01"), d("2026-06-14"), 7) {
                    plan.ingest.push(IngestTask {
                        source: source.into(),
                        account: Some(account.into()),
                        window: Some(w),
                    });
                }
            }
        }
        let dag = dag(&plan, None).unwrap();
        let up = |id: &str| dag.task(id).unwrap().upstream.clone();
        assert!(up("ingest.google_ads.1.2026-06-01_2026-06-07").is_empty());
        assert_eq!(up("ingest.google_ads.1.2026-06-08_2026-06-14"), ["ingest.google_ads.1.2026-06-01_2026-06-07"]);
        assert!(up("ingest.google_ads.2.2026-06-01_2026-06-07").is_empty(), "accounts load side by side");
        assert!(up("ingest.meta_ads.1.2026-06-01_2026-06-07").is_empty());
    }
}
