//! The pipeline: ingest → transform → tests as one DAG of tasks, derived from the project.
//!
//! Tasks: one `ingest.<source>` per source (or one per source and date window for a backfill, chained
//! so the windows of a source load in order), then every model, seed and test node the selection
//! builds, with dbt's `build` edges, and optionally a last `checks` task whose runner the caller
//! supplies (the CLI plugs in the monitors: the orchestrator does not depend on them). Ids are
//! spelled by [`mdp_core::TaskId`], kinds by [`TaskKind`]. Dependencies are exact: a node that reads a raw table
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
use mdp_core::task::{CHECKS_TASK_ID, DEFAULT_TASK_MAX_RETRY_DELAY, DEFAULT_TASK_RETRIES, DEFAULT_TASK_RETRY_DELAY};
use mdp_core::{RunId, TaskId};
use mdp_sources::ReadContext;
use mdp_transform::manifest::ResourceType;
use mdp_transform::run::{NodeRunner, NodeStatus};
use mdp_transform::Parsed;
use mdp_warehouse::meta::{Metadata, TaskRecord};
use mdp_warehouse::Warehouse;

use crate::dag::{
    BoxFuture, Dag, DagError, Task, TaskError, TaskKind, TaskObserver, TaskOutcome, TaskOutput, TaskRunner, TaskState,
};
use crate::ingest::{Ingest, IngestOptions, SourceJob};

/// The dbt source name under which the raw tables are declared (mdp's marketing package).
pub const RAW_SOURCE: &str = "mdp_raw";

/// Retries and timeouts of every task (retries apply to retryable failures only).
#[derive(Debug, Clone)]
pub struct TaskPolicy {
    pub retries: u32,
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    pub timeout: Option<Duration>,
}

impl Default for TaskPolicy {
    /// mdp's defaults (`mdp_core::task`): what mdp.yml's `schedule:` and the command line override.
    fn default() -> Self {
        TaskPolicy {
            retries: DEFAULT_TASK_RETRIES,
            retry_delay: DEFAULT_TASK_RETRY_DELAY,
            max_retry_delay: DEFAULT_TASK_MAX_RETRY_DELAY,
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
    /// Its identity: `ingest.<source>[.<account>][.<from>_<to>]`.
    pub fn id(&self) -> TaskId {
        TaskId::Ingest { source: self.source.clone(), account: self.account.clone(), window: self.window }
    }

    /// Its id as the DAG and `task_instances` spell it.
    pub fn task_id(&self) -> String {
        self.id().to_string()
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
pub const CHECKS_TASK: &str = CHECKS_TASK_ID;

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
        tasks.push(policy(Task::new(id.clone(), TaskKind::Ingest, upstream)));
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
        // Without a parsed project (unit tests of the DAG's shape) a node counts as a model.
        let kind = parsed.map_or(TaskKind::Model, |p| node_kind(&p.manifest.nodes[id]));
        let mut task = policy(Task::new(id.clone(), kind, upstream));
        if matches!(kind, TaskKind::Test | TaskKind::UnitTest) {
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
        let mut task = policy(Task::new(CHECKS_TASK, TaskKind::Checks, last));
        task.retries = 0;
        tasks.push(task);
    }
    Dag::new(tasks)
}

/// The task kind of a dbt node the pipeline runs.
fn node_kind(node: &mdp_transform::manifest::Node) -> TaskKind {
    if node.is_unit_test() {
        return TaskKind::UnitTest;
    }
    match node.resource_type {
        ResourceType::Seed => TaskKind::Seed,
        ResourceType::Test => TaskKind::Test,
        ResourceType::Snapshot => TaskKind::Snapshot,
        // Sources never run (`plan_build` leaves them out).
        ResourceType::Model | ResourceType::Source => TaskKind::Model,
    }
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
    /// Runs the `checks` task (see [`PipelinePlan::checks`]): the caller's monitors.
    pub checks: Option<&'a dyn TaskRunner>,
}

impl PipelineRunner<'_> {
    /// One ingest task: its source, account and window. Fails retryably only when every failed
    /// stream may pass on a later attempt (a permanent failure would fail the retry anyway).
    async fn ingest(&self, task: &Task) -> Result<TaskOutput, TaskError> {
        let spec = (self.ingest_tasks.get(&task.id))
            .ok_or_else(|| TaskError::permanent(format!("unknown ingest task {}", task.id)))?;
        let job = self
            .jobs
            .get(&spec.source)
            .ok_or_else(|| TaskError::permanent(format!("unknown source {}", spec.source)))?;
        let mut options = self.ingest_options.clone();
        options.accounts = spec.account.clone().map(|a| vec![a]);
        if let Some((from, to)) = spec.window {
            options.from = Some(from);
            options.to = Some(to);
        }
        let report =
            Ingest::new(self.warehouse, self.run_id, self.ctx.clone(), options).run(std::slice::from_ref(*job)).await;
        let errors: Vec<String> = report.failures().filter_map(|s| s.error.clone()).collect();
        if !errors.is_empty() {
            let retryable = report.failures().all(|s| s.retryable);
            return Err(TaskError { message: errors.join("\n"), retryable });
        }
        let log = report
            .streams
            .iter()
            .map(|s| format!("{} {} {}: {} rows in {} windows", s.source, s.account_id, s.stream, s.rows, s.windows))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(TaskOutput { rows: Some(report.rows as i64), log })
    }

    /// One model, seed or test.
    async fn node(&self, task: &Task) -> Result<TaskOutput, TaskError> {
        let nodes = self.nodes.ok_or_else(|| TaskError::permanent("no transform project is loaded"))?;
        let result = nodes.run(self.warehouse, &task.id).await;
        match result.status {
            NodeStatus::Success | NodeStatus::Pass | NodeStatus::Warn => Ok(TaskOutput {
                rows: result.rows_affected.map(|r| r as i64),
                log: format!("{}: {}", result.status.as_str(), result.message),
            }),
            NodeStatus::Error | NodeStatus::Fail | NodeStatus::Skipped => {
                Err(TaskError { message: result.message, retryable: result.retryable })
            }
        }
    }
}

impl TaskRunner for PipelineRunner<'_> {
    fn run<'b>(&'b self, task: &'b Task, attempt: u32) -> BoxFuture<'b, Result<TaskOutput, TaskError>> {
        Box::pin(async move {
            match task.kind {
                TaskKind::Ingest => self.ingest(task).await,
                TaskKind::Model | TaskKind::Seed | TaskKind::Test | TaskKind::Snapshot | TaskKind::UnitTest => {
                    self.node(task).await
                }
                TaskKind::Checks => match self.checks {
                    Some(checks) => checks.run(task, attempt).await,
                    None => Err(TaskError::permanent("the pipeline has a checks task but no runner for it")),
                },
                TaskKind::Noop => Ok(TaskOutput::default()),
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
                kind: task.kind.as_str().to_string(),
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
        assert_eq!((checks.kind, checks.retries), (TaskKind::Checks, 0));
        assert_eq!(dag.task("ingest.google_ads").unwrap().kind, TaskKind::Ingest);
        assert!(dag.task(CHECKS_TASK).is_some());
        let without = super::dag(&PipelinePlan { checks: false, ..plan }, None).unwrap();
        assert!(without.task(CHECKS_TASK).is_none());
    }

    /// Fails its first attempt retryably, then passes; counts attempts.
    struct FlakyChecks(std::sync::atomic::AtomicU32);
    impl TaskRunner for FlakyChecks {
        fn run<'a>(&'a self, _task: &'a Task, attempt: u32) -> BoxFuture<'a, Result<TaskOutput, TaskError>> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Box::pin(async move {
                if attempt == 1 {
                    Err(TaskError::retryable("the warehouse is busy"))
                } else {
                    Ok(TaskOutput { rows: Some(3), log: "3 checks, 0 not passing".into() })
                }
            })
        }
    }

    struct NoWait;
    impl crate::dag::Sleeper for NoWait {
        fn sleep(&self, _: Duration) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[tokio::test]
    async fn tasks_run_by_kind_the_checks_task_through_the_injected_runner_and_retry_only_what_may_pass() {
        let tmp = tempfile::tempdir().unwrap();
        let options = mdp_warehouse::ConnectOptions::duckdb(tmp.path().join("w.duckdb"));
        let session = crate::RunSession::start(&options, "test").await.unwrap();
        let plan = PipelinePlan {
            ingest: vec![IngestTask { source: "nowhere".into(), account: None, window: None }],
            checks: true,
            ..PipelinePlan::default()
        };
        let mut dag = dag(&plan, None).unwrap();
        dag.tasks[1].upstream.clear(); // the checks task runs although the ingest fails
        assert!(dag.tasks.iter().all(|t| t.retries == 2 || t.kind == TaskKind::Checks));
        dag.tasks[1].retries = 1;
        let checks = FlakyChecks(std::sync::atomic::AtomicU32::new(0));
        let runner = PipelineRunner {
            warehouse: session.warehouse.as_ref(),
            run_id: &session.run_id,
            ctx: ReadContext { http: mdp_sources::http::HttpDriver::new(Default::default()).unwrap() },
            ingest_options: IngestOptions::default(),
            jobs: HashMap::new(),
            ingest_tasks: HashMap::new(),
            nodes: None,
            checks: Some(&checks),
        };
        let options = crate::dag::ExecuteOptions { concurrency: 1, sleeper: &NoWait, cancel: Default::default() };
        let out = crate::dag::execute(&dag, &runner, &crate::dag::NoObserver, &options).await;
        let ingest = out.get("ingest.nowhere").unwrap();
        assert_eq!((ingest.state, ingest.attempts), (TaskState::Failed, 1), "a task mdp cannot run is not retried");
        assert_eq!(ingest.error.as_deref(), Some("unknown ingest task ingest.nowhere"));
        let checks_outcome = out.get(CHECKS_TASK).unwrap();
        assert_eq!((checks_outcome.state, checks_outcome.attempts), (TaskState::Success, 2));
        assert_eq!(checks.0.load(std::sync::atomic::Ordering::SeqCst), 2);
        session.finish(None).await.unwrap();
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
