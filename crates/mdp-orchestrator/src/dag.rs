//! A DAG of tasks and the executor that runs it: bounded concurrency, retries with exponential
//! backoff, per-task timeouts, and one clear final state per task.
//!
//! The executor knows nothing of what a task does: a [`TaskRunner`] runs one attempt and says whether
//! its failure is worth retrying ([`TaskError`]: an expired token is not, a rate limit is), a
//! [`TaskObserver`] hears every state change (the pipeline records them in `task_instances`). A task
//! runs when all its upstream tasks succeeded; when one failed, it ends `upstream_failed` without
//! running — unless the task is marked `tolerate_upstream_failure` (a mart that may run with the
//! platforms that succeeded: the run is then flagged partial). Cancellation (Ctrl-C / SIGTERM) stops
//! starting tasks; running ones finish their current attempt, the rest end `skipped`.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::StreamExt;
pub use mdp_core::task::{DEFAULT_TASK_MAX_RETRY_DELAY, DEFAULT_TASK_RETRY_DELAY};
pub use mdp_core::{TaskKind, TaskState};
use serde::Serialize;

/// One task of a DAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Task {
    /// Unique in its DAG, e.g. `ingest.google_ads`, `model.mdp_marketing.fct_ad_performance_daily`.
    pub id: String,
    /// What runs it.
    pub kind: TaskKind,
    pub upstream: Vec<String>,
    /// Retries after the first attempt (0: one attempt).
    pub retries: u32,
    /// Delay before the first retry; doubles with each further retry, up to `max_retry_delay`.
    pub retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// An attempt running longer is cancelled and counts as failed.
    pub timeout: Option<Duration>,
    /// Run even when an upstream task failed (partial results, flagged).
    pub tolerate_upstream_failure: bool,
}

impl Task {
    /// A task with one attempt (no retries) and no timeout.
    pub fn new(id: impl Into<String>, kind: TaskKind, upstream: Vec<String>) -> Task {
        Task {
            id: id.into(),
            kind,
            upstream,
            retries: 0,
            retry_delay: DEFAULT_TASK_RETRY_DELAY,
            max_retry_delay: DEFAULT_TASK_MAX_RETRY_DELAY,
            timeout: None,
            tolerate_upstream_failure: false,
        }
    }

    /// The delay before retry number `retry` (1 = the first retry): exponential, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.retry_delay.saturating_mul(factor).min(self.max_retry_delay)
    }
}

/// What one successful attempt reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOutput {
    pub rows: Option<i64>,
    /// A short log of the attempt (kept in `task_instances.log`).
    pub log: String,
}

/// Why an attempt failed, and whether another attempt may succeed. Only retryable errors are
/// retried: an expired token, a wrong setting or a SQL syntax error fail the same way every time,
/// so they end the task at once; a rate limit, a lost connection or a timeout may pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    pub message: String,
    pub retryable: bool,
}

impl TaskError {
    /// A failure that may pass (rate limited, unreachable, busy, timed out).
    pub fn retryable(message: impl Into<String>) -> TaskError {
        TaskError { message: message.into(), retryable: true }
    }

    /// A failure that needs someone to act first (credentials, configuration, bad SQL, a failed test).
    pub fn permanent(message: impl Into<String>) -> TaskError {
        TaskError { message: message.into(), retryable: false }
    }
}

impl std::fmt::Display for TaskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TaskError {}

/// The outcome of a task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskOutcome {
    pub id: String,
    pub state: TaskState,
    pub attempts: u32,
    pub rows: Option<i64>,
    /// The last attempt's error, or the failed upstream task.
    pub error: Option<String>,
    pub log: String,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub seconds: f64,
}

/// The result of a DAG run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DagOutcome {
    pub tasks: Vec<TaskOutcome>,
    /// Some task ran although an upstream task failed.
    pub partial: bool,
    pub cancelled: bool,
}

impl DagOutcome {
    pub fn success(&self) -> bool {
        !self.cancelled && self.tasks.iter().all(|t| t.state == TaskState::Success)
    }

    pub fn count(&self, state: TaskState) -> usize {
        self.tasks.iter().filter(|t| t.state == state).count()
    }

    pub fn get(&self, id: &str) -> Option<&TaskOutcome> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// A boxed future (not `Send`: the executor polls its tasks on the calling task).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Runs one attempt of a task.
pub trait TaskRunner: Send + Sync {
    fn run<'a>(&'a self, task: &'a Task, attempt: u32) -> BoxFuture<'a, Result<TaskOutput, TaskError>>;
}

/// Hears state changes (to record them); the default hears nothing.
pub trait TaskObserver: Send + Sync {
    fn changed<'a>(&'a self, _task: &'a Task, _outcome: &'a TaskOutcome) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// The observer that records nothing.
pub struct NoObserver;
impl TaskObserver for NoObserver {}

/// Why a DAG cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DagError {
    #[error("task `{0}` is listed twice")]
    Duplicate(String),
    #[error("task `{task}` waits for `{upstream}`, which is not a task of this DAG")]
    UnknownUpstream { task: String, upstream: String },
    #[error("the tasks form a cycle: {0}")]
    Cycle(String),
}

/// Tasks and their dependencies, checked: unique ids, known upstreams, no cycle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dag {
    pub tasks: Vec<Task>,
}

impl Dag {
    pub fn new(tasks: Vec<Task>) -> Result<Dag, DagError> {
        let mut index = HashMap::new();
        for (i, t) in tasks.iter().enumerate() {
            if index.insert(t.id.as_str(), i).is_some() {
                return Err(DagError::Duplicate(t.id.clone()));
            }
        }
        for t in &tasks {
            for u in &t.upstream {
                if !index.contains_key(u.as_str()) {
                    return Err(DagError::UnknownUpstream { task: t.id.clone(), upstream: u.clone() });
                }
            }
        }
        // Kahn's algorithm; what is left over is on a cycle.
        let mut waiting: Vec<usize> = tasks.iter().map(|t| t.upstream.len()).collect();
        let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); tasks.len()];
        for (i, t) in tasks.iter().enumerate() {
            for u in &t.upstream {
                downstream[index[u.as_str()]].push(i);
            }
        }
        let mut ready: Vec<usize> = (0..tasks.len()).filter(|i| waiting[*i] == 0).collect();
        let mut seen = 0;
        while let Some(i) = ready.pop() {
            seen += 1;
            for &d in &downstream[i] {
                waiting[d] -= 1;
                if waiting[d] == 0 {
                    ready.push(d);
                }
            }
        }
        if seen < tasks.len() {
            let on_cycle: Vec<&str> =
                tasks.iter().enumerate().filter(|(i, _)| waiting[*i] > 0).map(|(_, t)| t.id.as_str()).collect();
            return Err(DagError::Cycle(on_cycle.join(", ")));
        }
        Ok(Dag { tasks })
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// Sleeps between retries (tests inject one that does not wait).
pub trait Sleeper: Send + Sync {
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()>;
}

/// Real time.
pub struct TokioSleeper;
impl Sleeper for TokioSleeper {
    fn sleep(&self, duration: Duration) -> BoxFuture<'_, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// How to run a DAG.
pub struct ExecuteOptions<'a> {
    /// Tasks running at once.
    pub concurrency: usize,
    pub sleeper: &'a dyn Sleeper,
    /// Set to stop starting tasks (Ctrl-C / SIGTERM).
    pub cancel: Arc<AtomicBool>,
}

/// Run every task of `dag` in dependency order, in DAG order among the ready ones.
pub async fn execute(
    dag: &Dag,
    runner: &dyn TaskRunner,
    observer: &dyn TaskObserver,
    options: &ExecuteOptions<'_>,
) -> DagOutcome {
    let n = dag.tasks.len();
    let index: HashMap<&str, usize> = dag.tasks.iter().enumerate().map(|(i, t)| (t.id.as_str(), i)).collect();
    let mut waiting: Vec<usize> = dag.tasks.iter().map(|t| t.upstream.len()).collect();
    let mut downstream: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in dag.tasks.iter().enumerate() {
        for u in &t.upstream {
            downstream[index[u.as_str()]].push(i);
        }
    }
    // Ready tasks by DAG position, smallest first.
    let mut ready: std::collections::BTreeSet<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut failed_upstream: HashMap<usize, String> = HashMap::new();
    let mut outcomes: BTreeMap<usize, TaskOutcome> = BTreeMap::new();
    let mut in_flight: FuturesUnordered<BoxFuture<'_, (usize, TaskOutcome)>> = FuturesUnordered::new();
    let mut partial = false;
    let mut cancelled = false;
    let concurrency = options.concurrency.max(1);

    loop {
        while in_flight.len() < concurrency {
            let Some(i) = ready.pop_first() else { break };
            let task = &dag.tasks[i];
            let not_run = |state: TaskState, error: Option<String>| TaskOutcome {
                id: task.id.clone(),
                state,
                attempts: 0,
                rows: None,
                error,
                log: String::new(),
                started_at: None,
                finished_at: None,
                seconds: 0.0,
            };
            if options.cancel.load(Ordering::SeqCst) {
                cancelled = true;
                let outcome =
                    not_run(TaskState::Skipped, Some("the run was cancelled before this task started".into()));
                observer.changed(task, &outcome).await;
                in_flight.push(Box::pin(async move { (i, outcome) }));
                continue;
            }
            if let Some(cause) = failed_upstream.get(&i) {
                if !task.tolerate_upstream_failure {
                    let outcome =
                        not_run(TaskState::UpstreamFailed, Some(format!("upstream task `{cause}` did not succeed")));
                    observer.changed(task, &outcome).await;
                    in_flight.push(Box::pin(async move { (i, outcome) }));
                    continue;
                }
                partial = true;
            }
            in_flight.push(Box::pin(run_task(task, runner, observer, options.sleeper, i)));
        }
        let Some((i, outcome)) = in_flight.next().await else { break };
        if outcome.state != TaskState::Success {
            // Everything downstream learns of the failure (transitively, as each ends upstream_failed),
            // naming the task that actually failed.
            let cause = match outcome.state {
                TaskState::UpstreamFailed => failed_upstream.get(&i).cloned().unwrap_or_else(|| outcome.id.clone()),
                _ => outcome.id.clone(),
            };
            for &d in &downstream[i] {
                failed_upstream.entry(d).or_insert_with(|| cause.clone());
            }
        }
        for &d in &downstream[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
        outcomes.insert(i, outcome);
    }
    DagOutcome { tasks: outcomes.into_values().collect(), partial, cancelled }
}

/// Attempts of one task: retries of retryable failures with backoff, a timeout per attempt (a timeout
/// is retryable); reports each state change.
async fn run_task<'a>(
    task: &'a Task,
    runner: &'a dyn TaskRunner,
    observer: &'a dyn TaskObserver,
    sleeper: &'a dyn Sleeper,
    i: usize,
) -> (usize, TaskOutcome) {
    let clock = Instant::now();
    let mut outcome = TaskOutcome {
        id: task.id.clone(),
        state: TaskState::Running,
        attempts: 0,
        rows: None,
        error: None,
        log: String::new(),
        started_at: Some(chrono::Utc::now()),
        finished_at: None,
        seconds: 0.0,
    };
    loop {
        outcome.attempts += 1;
        outcome.state = TaskState::Running;
        observer.changed(task, &outcome).await;
        let attempt = runner.run(task, outcome.attempts);
        let result = match task.timeout {
            Some(limit) => match tokio::time::timeout(limit, attempt).await {
                Ok(r) => r,
                Err(_) => {
                    Err(TaskError::retryable(format!("timed out after {:.0?} (attempt {})", limit, outcome.attempts)))
                }
            },
            None => attempt.await,
        };
        match result {
            Ok(output) => {
                outcome.state = TaskState::Success;
                outcome.rows = output.rows;
                outcome.log = output.log;
                outcome.error = None;
                break;
            }
            Err(error) => {
                outcome.error = Some(error.message);
                if !error.retryable || outcome.attempts > task.retries {
                    outcome.state = TaskState::Failed;
                    break;
                }
                sleeper.sleep(task.backoff(outcome.attempts)).await;
            }
        }
    }
    outcome.finished_at = Some(chrono::Utc::now());
    outcome.seconds = clock.elapsed().as_secs_f64();
    observer.changed(task, &outcome).await;
    (i, outcome)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Fails a task's first `n` attempts (retryably), fails some for good, sleeps when told, records
    /// the order of starts.
    #[derive(Default)]
    struct Script {
        failures: HashMap<String, u32>,
        permanent: HashMap<String, String>,
        slow: HashMap<String, Duration>,
        started: Mutex<Vec<String>>,
    }

    impl TaskRunner for Script {
        fn run<'a>(&'a self, task: &'a Task, attempt: u32) -> BoxFuture<'a, Result<TaskOutput, TaskError>> {
            Box::pin(async move {
                self.started.lock().unwrap().push(task.id.clone());
                if let Some(d) = self.slow.get(&task.id) {
                    tokio::time::sleep(*d).await;
                }
                if let Some(message) = self.permanent.get(&task.id) {
                    return Err(TaskError::permanent(message.clone()));
                }
                if attempt <= self.failures.get(&task.id).copied().unwrap_or(0) {
                    return Err(TaskError::retryable(format!("attempt {attempt} failed")));
                }
                Ok(TaskOutput { rows: Some(1), log: format!("{} ok", task.id) })
            })
        }
    }

    struct NoWait(Mutex<Vec<Duration>>);
    impl Sleeper for NoWait {
        fn sleep(&self, d: Duration) -> BoxFuture<'_, ()> {
            self.0.lock().unwrap().push(d);
            Box::pin(async {})
        }
    }

    fn dag(edges: &[(&str, &[&str])]) -> Dag {
        Dag::new(
            edges
                .iter()
                .map(|(id, up)| {
                    let mut t = Task::new(*id, TaskKind::Noop, up.iter().map(|s| s.to_string()).collect());
                    t.retries = 2;
                    t.retry_delay = Duration::from_secs(10);
                    t
                })
                .collect(),
        )
        .unwrap()
    }

    async fn run(dag: &Dag, script: &Script, sleeper: &NoWait) -> DagOutcome {
        let options = ExecuteOptions { concurrency: 2, sleeper, cancel: Arc::new(AtomicBool::new(false)) };
        execute(dag, script, &NoObserver, &options).await
    }

    #[tokio::test]
    async fn a_task_failing_twice_then_succeeding_ends_success_after_three_attempts_with_backoff() {
        let d = dag(&[("a", &[]), ("b", &["a"])]);
        let script = Script { failures: HashMap::from([("a".into(), 2)]), ..Default::default() };
        let sleeper = NoWait(Mutex::new(Vec::new()));
        let out = run(&d, &script, &sleeper).await;
        assert!(out.success());
        assert_eq!(out.get("a").unwrap().attempts, 3);
        assert_eq!(out.get("b").unwrap().attempts, 1);
        assert_eq!(*sleeper.0.lock().unwrap(), [Duration::from_secs(10), Duration::from_secs(20)]);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_attempted_once_and_its_message_kept() {
        let d = dag(&[("ingest", &[]), ("model", &["ingest"])]);
        let message = "tiktok_ads: the access token was refused (40105: expired); renew the token";
        let script = Script { permanent: HashMap::from([("ingest".into(), message.into())]), ..Default::default() };
        let sleeper = NoWait(Mutex::new(Vec::new()));
        let out = run(&d, &script, &sleeper).await;
        let ingest = out.get("ingest").unwrap();
        assert_eq!((ingest.state, ingest.attempts), (TaskState::Failed, 1), "retries were allowed: 2");
        assert_eq!(ingest.error.as_deref(), Some(message));
        assert!(sleeper.0.lock().unwrap().is_empty(), "no backoff for an error that will not pass");
        assert_eq!(out.get("model").unwrap().state, TaskState::UpstreamFailed);
    }

    #[tokio::test]
    async fn a_timed_out_attempt_is_retried() {
        let mut d = dag(&[("slow", &[])]);
        d.tasks[0].retries = 1;
        d.tasks[0].timeout = Some(Duration::from_millis(20));
        let script = Script { slow: HashMap::from([("slow".into(), Duration::from_secs(5))]), ..Default::default() };
        let sleeper = NoWait(Mutex::new(Vec::new()));
        let out = run(&d, &script, &sleeper).await;
        assert_eq!((out.get("slow").unwrap().state, out.get("slow").unwrap().attempts), (TaskState::Failed, 2));
        assert_eq!(*sleeper.0.lock().unwrap(), [Duration::from_secs(10)]);
    }

    #[tokio::test]
    async fn a_failure_marks_everything_downstream_upstream_failed_and_spares_the_rest() {
        let d = dag(&[
            ("ingest_a", &[]),
            ("ingest_b", &[]),
            ("stg_a", &["ingest_a"]),
            ("stg_b", &["ingest_b"]),
            ("mart", &["stg_a", "stg_b"]),
        ]);
        let script = Script { failures: HashMap::from([("ingest_a".into(), 9)]), ..Default::default() };
        let out = run(&d, &script, &NoWait(Mutex::new(Vec::new()))).await;
        let state = |id: &str| out.get(id).unwrap().state;
        assert_eq!(state("ingest_a"), TaskState::Failed);
        assert_eq!(out.get("ingest_a").unwrap().attempts, 3);
        assert_eq!(state("stg_a"), TaskState::UpstreamFailed);
        assert_eq!(state("mart"), TaskState::UpstreamFailed);
        assert_eq!(out.get("mart").unwrap().error.as_deref(), Some("upstream task `ingest_a` did not succeed"));
        assert_eq!((state("ingest_b"), state("stg_b")), (TaskState::Success, TaskState::Success));
        assert!(!script.started.lock().unwrap().contains(&"mart".to_string()));
    }

    #[tokio::test]
    async fn a_tolerant_task_runs_after_an_upstream_failure_and_flags_the_run_partial() {
        let mut d = dag(&[("ingest_a", &[]), ("ingest_b", &[]), ("mart", &["ingest_a", "ingest_b"])]);
        d.tasks[2].tolerate_upstream_failure = true;
        let script = Script { failures: HashMap::from([("ingest_a".into(), 9)]), ..Default::default() };
        let out = run(&d, &script, &NoWait(Mutex::new(Vec::new()))).await;
        assert_eq!(out.get("mart").unwrap().state, TaskState::Success);
        assert!(out.partial);
        assert!(!out.success());
    }

    #[tokio::test]
    async fn a_timeout_ends_failed_and_its_dependents_do_not_run() {
        let mut d = dag(&[("slow", &[]), ("after", &["slow"])]);
        d.tasks[0].retries = 0;
        d.tasks[0].timeout = Some(Duration::from_millis(50));
        let script = Script { slow: HashMap::from([("slow".into(), Duration::from_secs(5))]), ..Default::default() };
        let out = run(&d, &script, &NoWait(Mutex::new(Vec::new()))).await;
        let slow = out.get("slow").unwrap();
        assert_eq!(slow.state, TaskState::Failed);
        assert!(slow.error.as_deref().unwrap().starts_with("timed out after"), "{:?}", slow.error);
        assert!(slow.seconds < 2.0);
        assert_eq!(out.get("after").unwrap().state, TaskState::UpstreamFailed);
    }

    #[tokio::test]
    async fn a_cancelled_run_starts_nothing_more() {
        let d = dag(&[("a", &[]), ("b", &["a"])]);
        let options = ExecuteOptions {
            concurrency: 1,
            sleeper: &NoWait(Mutex::new(Vec::new())),
            cancel: Arc::new(AtomicBool::new(true)),
        };
        let out = execute(&d, &Script::default(), &NoObserver, &options).await;
        assert!(out.cancelled);
        assert_eq!(out.count(TaskState::Skipped), 2);
    }

    #[test]
    fn bad_dags_are_refused_with_the_task_named() {
        let t = |id: &str, up: &[&str]| Task::new(id, TaskKind::Noop, up.iter().map(|s| s.to_string()).collect());
        assert_eq!(Dag::new(vec![t("a", &[]), t("a", &[])]).unwrap_err(), DagError::Duplicate("a".into()));
        assert_eq!(
            Dag::new(vec![t("a", &["x"])]).unwrap_err().to_string(),
            "task `a` waits for `x`, which is not a task of this DAG"
        );
        let e = Dag::new(vec![t("a", &["b"]), t("b", &["a"]), t("c", &[])]).unwrap_err();
        assert_eq!(e, DagError::Cycle("a, b".into()));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut t = Task::new("a", TaskKind::Noop, vec![]);
        t.retry_delay = Duration::from_secs(30);
        t.max_retry_delay = Duration::from_secs(100);
        assert_eq!([1, 2, 3, 4].map(|r| t.backoff(r).as_secs()), [30, 60, 100, 100]);
    }
}
