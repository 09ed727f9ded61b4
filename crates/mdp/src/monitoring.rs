//! What every writing command does around its run: alerts after it (incidents and notifiers,
//! `mdp_monitor::alerts`), OpenLineage events for its ingest and model tasks
//! (`mdp_monitor::lineage`), and the pipeline's `checks` task ([`ChecksTask`]). The orchestrator
//! depends on none of the monitoring: it hands task state changes to a listener ([`LineageTasks`])
//! and runs the checks task through the runner this module plugs in.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use mdp_monitor::alerts::{self, AlertContext};
use mdp_monitor::checks::{CheckContext, CheckFilter};
use mdp_monitor::lineage::{Emitter, IngestJob, RunLineage, Sink, WarehouseNamespace};
use mdp_orchestrator::dag::{BoxFuture, Task, TaskError, TaskObserver, TaskOutcome, TaskOutput, TaskRunner, TaskState};
use mdp_orchestrator::ingest::SourceJob;
use mdp_orchestrator::pipeline::IngestTask;
use mdp_orchestrator::RunSession;
use mdp_project::{Project, SecretRef};
use mdp_warehouse::{ConnectOptions, Warehouse};

/// The longest a finished run waits for its lineage events to be sent.
const LINEAGE_DRAIN: Duration = Duration::from_secs(10);

/// Update incidents from a finished run (its outcome recorded, the lock still held) and notify the
/// project's notifiers. Never fails the run: problems are warnings; a line on stderr says what was
/// announced.
pub async fn alert_after_run(warehouse: &dyn Warehouse, project: &Project, run_id: &str) {
    let resolve = |reference: &SecretRef| reference.resolve(&project.root);
    let context = AlertContext {
        project: project.config.name.as_str(),
        project_root: &project.root,
        config: project.config.alerts.as_ref(),
        resolve: &resolve,
    };
    let report = alerts::after_run(warehouse, &context, run_id).await;
    if let Some(line) = report.summary() {
        eprintln!("{line}");
    }
}

/// [`RunSession::finish`] with alerts in between: record the outcome, process alerts under the
/// same lock, release it. For every command that writes (`mdp check` included).
pub async fn finish_run(session: RunSession, project: &Project, error: Option<&str>) -> Result<()> {
    let recorded = session.record_outcome(error).await;
    if recorded.is_ok() {
        alert_after_run(session.warehouse.as_ref(), project, &session.run_id.to_string()).await;
    }
    let closed = session.close().await;
    recorded.and(closed)?;
    Ok(())
}

/// The lineage emitter of the project (`None` without a `lineage:` section).
pub fn lineage_emitter(project: &Project) -> Option<Emitter> {
    let config = project.config.lineage.as_ref()?;
    let api_key = match &config.api_key {
        None => None,
        Some(reference) => match reference.resolve(&project.root) {
            Ok(key) => Some(key),
            Err(e) => {
                tracing::warn!(
                    "lineage: the api key ({}) cannot be read: {e}; events are sent without it",
                    reference.describe()
                );
                None
            }
        },
    };
    Some(Emitter::start(Sink {
        file: config.file.as_ref().map(|file| project.root.join(file)),
        url: config.post_url(),
        api_key,
        timeout: Duration::from_secs(config.timeout_seconds),
    }))
}

/// Wait (a bounded time) for the events to be sent.
pub async fn finish_lineage(emitter: Option<Emitter>) {
    if let Some(emitter) = emitter {
        emitter.finish(LINEAGE_DRAIN).await;
    }
}

/// The OpenLineage namespace of the project's jobs.
pub fn lineage_namespace(project: &Project) -> String {
    project.config.lineage.as_ref().and_then(|l| l.namespace.clone()).unwrap_or_else(|| project.config.name.to_string())
}

/// The lineage of one run, when the project has a `lineage:` section.
pub fn run_lineage<'a>(
    emitter: Option<&'a Emitter>,
    project: &Project,
    warehouse: &'a dyn Warehouse,
    options: &ConnectOptions,
    run_id: &str,
    command: &str,
) -> Option<RunLineage<'a>> {
    let emitter = emitter?;
    Some(RunLineage::new(
        emitter,
        warehouse,
        WarehouseNamespace::of(options),
        lineage_namespace(project),
        run_id,
        &alerts::run_subject(command),
    ))
}

/// Lineage descriptions of ingest tasks, by task id.
pub fn ingest_jobs(jobs: &[SourceJob], tasks: &[IngestTask]) -> HashMap<String, IngestJob> {
    let mut out = HashMap::new();
    for task in tasks {
        let Some(job) = jobs.iter().find(|j| j.source.settings().name == task.source) else { continue };
        let settings = job.source.settings();
        // The tables an ingest writes: `accounts` and the connector's streams.
        let streams = std::iter::once("accounts")
            .chain(mdp_sources::kind(settings.platform).streams.iter().map(|spec| spec.name));
        let tables = streams
            .map(|stream| {
                let table = mdp_orchestrator::ingest::raw_table(&settings.name, stream);
                (table.schema, table.name)
            })
            .collect();
        out.insert(
            task.task_id(),
            IngestJob {
                source: settings.name.clone(),
                platform: settings.platform.to_string(),
                base_url: settings.base_url.clone(),
                accounts: task.account.clone().map_or_else(|| settings.accounts.clone(), |a| vec![a]),
                tables,
            },
        );
    }
    out
}

/// Hands the orchestrator's task state changes to the run's lineage: `START` on a task's first
/// attempt, `COMPLETE` / `FAIL` when it ends.
pub struct LineageTasks<'a>(pub &'a RunLineage<'a>);

impl TaskObserver for LineageTasks<'_> {
    fn changed<'b>(&'b self, task: &'b Task, o: &'b TaskOutcome) -> BoxFuture<'b, ()> {
        Box::pin(async move {
            let at = |t: Option<DateTime<Utc>>| t.unwrap_or_else(Utc::now);
            match o.state {
                TaskState::Running if o.attempts == 1 => self.0.task_started(&task.id, at(o.started_at)),
                TaskState::Success => self.0.task_finished(&task.id, at(o.finished_at), None).await,
                TaskState::Failed => {
                    let error = o.error.as_deref().unwrap_or("failed");
                    self.0.task_finished(&task.id, at(o.finished_at), Some(error)).await
                }
                _ => {}
            }
        })
    }
}

/// The pipeline's `checks` task: `mdp check`'s monitors over what the run loaded and built, their
/// results recorded in `check_results` under the run's id. A failing check fails the task (not
/// retryable: it is a finding, not a flaky failure); a monitor query that could not run is retried
/// when the warehouse says it may pass.
pub struct ChecksTask<'a> {
    pub warehouse: &'a dyn Warehouse,
    pub run_id: &'a str,
    pub context: CheckContext,
}

impl TaskRunner for ChecksTask<'_> {
    fn run<'b>(&'b self, _task: &'b Task, _attempt: u32) -> BoxFuture<'b, Result<TaskOutput, TaskError>> {
        Box::pin(async move {
            let warehouse_error = |what: &str, e: mdp_warehouse::WarehouseError| TaskError {
                message: format!("{what}: {e}"),
                retryable: e.is_retryable(),
            };
            let outcomes = mdp_monitor::checks::run_checks(self.warehouse, &self.context, &CheckFilter::default())
                .await
                .map_err(|e| warehouse_error("the monitors could not run", e))?;
            mdp_monitor::checks::record(self.warehouse, self.run_id, &outcomes)
                .await
                .map_err(|e| warehouse_error("cannot record the check results", e))?;
            let lines: Vec<String> = outcomes
                .iter()
                .filter(|o| o.status.rank() > 0)
                .map(|o| format!("{} {}: {}", o.status.as_str(), o.check_name, o.message))
                .collect();
            let failed = outcomes.iter().filter(|o| o.status.is_failure()).count();
            let summary = format!("{} checks, {} not passing", outcomes.len(), lines.len());
            let log = std::iter::once(summary).chain(lines).collect::<Vec<_>>().join("\n");
            if failed > 0 {
                Err(TaskError::permanent(format!("{failed} check(s) failed (see `mdp check`):\n{log}")))
            } else {
                Ok(TaskOutput { rows: Some(outcomes.len() as i64), log })
            }
        })
    }
}
