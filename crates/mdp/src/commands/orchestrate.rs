//! `mdp pipeline | backfill | schedule | runs | airflow export`: orchestrated runs of ingest → build → test.
//!
//! Every orchestrated run is one run session (the writer lock, a `runs` row) executing a DAG of tasks
//! (`mdp_orchestrator::pipeline`), each task's state recorded in `task_instances` as it changes.
//! Ctrl-C / SIGTERM stop starting tasks; running tasks finish their attempt (each ingest window and
//! each model commits whole or not at all), the rest are recorded as skipped.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use mdp_core::{TaskId, TaskKind};
use mdp_orchestrator::dag::{self, DagOutcome, ExecuteOptions, TaskRunner, TaskState, TokioSleeper};
use mdp_orchestrator::ingest::IngestOptions;
use mdp_orchestrator::pipeline::{self, IngestTask, PipelinePlan, PipelineRunner, Recorder, TaskPolicy};
use mdp_project::{JobConfig, ScheduleConfig};
use mdp_sources::http::{HttpDriver, RetryPolicy};
use mdp_sources::ReadContext;
use mdp_transform::run::{Command, NodeRunner, RunOptions};
use mdp_transform::selector::{select, Selection};
use mdp_warehouse::meta::Metadata;

use crate::cli::{
    AirflowArgs, AirflowCommand, AirflowGranularity, BackfillArgs, GlobalArgs, PipelineArgs, RunsArgs, RunsCommand,
    ScheduleArgs, TaskArgs, TransformArgs,
};
use crate::commands::{ingest, transform};
use crate::context::ProjectContext;
use crate::monitoring;

/// What one orchestrated run does.
struct RunRequest {
    /// Recorded as the run's command, e.g. `pipeline`, `backfill`, `schedule:daily`.
    command: String,
    ingest: Vec<IngestTask>,
    build: bool,
    select: Vec<String>,
    tasks: TaskArgs,
    /// A scheduled fire time to claim inside the run (it runs once, never twice).
    fire_time: Option<(String, DateTime<Utc>)>,
    /// Run only these task ids (`mdp pipeline --task`), without the tasks upstream of them.
    only_tasks: Vec<String>,
}

/// Retries and timeouts: the command line, else mdp.yml's `schedule:`, else mdp's defaults.
fn policy(schedule: Option<&ScheduleConfig>, args: &TaskArgs) -> TaskPolicy {
    let defaults = TaskPolicy::default();
    TaskPolicy {
        retries: args.retries.or(schedule.map(|s| s.retries)).unwrap_or(defaults.retries),
        retry_delay: args
            .retry_delay
            .or(schedule.map(|s| s.retry_delay_seconds))
            .map_or(defaults.retry_delay, Duration::from_secs),
        timeout: args.timeout.or(schedule.and_then(|s| s.task_timeout_seconds)).map(Duration::from_secs),
        ..defaults
    }
}

/// Ctrl-C and SIGTERM set the flag (the executor then starts nothing more).
fn cancel_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("stopping: running tasks finish their current attempt, nothing new starts");
        set.store(true, Ordering::SeqCst);
    });
    flag
}

/// Run one request as a run session; returns the run id and the outcome (None: the fire time had
/// already been claimed, nothing ran).
async fn orchestrate(
    global: &GlobalArgs,
    context: &ProjectContext,
    request: &RunRequest,
    cancel: Arc<AtomicBool>,
) -> Result<Option<(String, DagOutcome)>> {
    let schedule = context.project.config.schedule.as_ref();
    let mut sources: Vec<String> = request.ingest.iter().map(|t| t.source.clone()).collect();
    sources.dedup();
    let jobs = ingest::jobs(&context.project, &sources)?;
    let parsed = if request.build {
        Some(transform::load(global, &TransformArgs { select: request.select.clone(), ..TransformArgs::default() })?)
    } else {
        None
    };
    let session = context.start_run(&request.command).await?;
    let run_id = session.run_id.to_string();
    if let Some((job, at)) = &request.fire_time {
        let claimed = Metadata::new(session.warehouse.as_ref()).claim_fire_time(job, at.naive_utc(), &run_id).await?;
        if !claimed {
            session.finish(None).await?;
            return Ok(None);
        }
    }
    let concurrency = request.tasks.concurrency.or(schedule.map(|s| s.concurrency)).unwrap_or(4).max(1);
    let emitter = monitoring::lineage_emitter(&context.project);
    let lineage = monitoring::run_lineage(
        emitter.as_ref(),
        &context.project,
        session.warehouse.as_ref(),
        &context.options,
        &run_id,
        &request.command,
    )
    .map(|lineage| {
        let lineage = match &parsed {
            Some(parsed) => lineage.with_project(parsed),
            None => lineage,
        };
        monitoring::ingest_jobs(&jobs, &request.ingest)
            .into_iter()
            .fold(lineage, |lineage, (task_id, job)| lineage.with_ingest(task_id, job))
    });
    if let Some(lineage) = &lineage {
        lineage.run_started(Utc::now());
    }
    let lineage_tasks = lineage.as_ref().map(monitoring::LineageTasks);
    let outcome = async {
        let node_runner = match &parsed {
            Some(parsed) => {
                let options = RunOptions {
                    command: Command::Build,
                    threads: concurrency,
                    full_refresh: false,
                    target_dir: Some(parsed.project.root.join(&parsed.project.target_path)),
                };
                Some(NodeRunner::new(parsed, session.warehouse.as_ref(), options).await?)
            }
            None => None,
        };
        let nodes = match (&parsed, &node_runner) {
            (Some(parsed), Some(runner)) => {
                let selection = Selection { select: request.select.clone(), ..Selection::all() };
                runner.plan(&select(&parsed.manifest, &parsed.graph, &selection)?)
            }
            _ => Vec::new(),
        };
        let (ingest, nodes) = only_tasks(&request.only_tasks, request.ingest.clone(), nodes)?;
        let plan = PipelinePlan {
            ingest: ingest.clone(),
            nodes,
            policy: policy(schedule, &request.tasks),
            partial: request.tasks.partial || schedule.is_some_and(|s| s.partial),
            // Runs that load today's data and build end with the monitors (a backfill loads the past:
            // its freshness says nothing; `--task` re-runs exactly the tasks named).
            checks: request.build
                && !request.ingest.is_empty()
                && !request.command.starts_with("backfill")
                && request.only_tasks.is_empty(),
        };
        let checks_task = plan.checks.then(|| {
            let marts = parsed.as_ref().and_then(mdp_monitor::checks::Marts::from_parsed);
            let mut ctx = crate::commands::check::check_context(context, marts, request.tasks.today);
            // The sources this run loaded (`--source`): the others may be stale on purpose.
            ctx.sources.retain(|s| sources.contains(&s.name));
            monitoring::ChecksTask { warehouse: session.warehouse.as_ref(), run_id: &run_id, context: ctx }
        });
        let dag = pipeline::dag(&plan, parsed.as_ref())?;
        let http = HttpDriver::new(RetryPolicy::default())
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        let runner = PipelineRunner {
            warehouse: session.warehouse.as_ref(),
            run_id: &session.run_id,
            ctx: ReadContext { http },
            ingest_options: IngestOptions { today: request.tasks.today, ..IngestOptions::default() },
            jobs: jobs.iter().map(|j| (j.source.settings().name.clone(), j)).collect(),
            ingest_tasks: ingest.iter().map(|t| (t.task_id(), t.clone())).collect(),
            nodes: node_runner.as_ref(),
            checks: checks_task.as_ref().map(|t| t as &dyn TaskRunner),
        };
        // Ingest tasks run side by side: their raw tables are created first, one after another.
        let failed = if ingest.is_empty() {
            Vec::new()
        } else {
            mdp_orchestrator::ingest::Ingest::new(
                session.warehouse.as_ref(),
                &session.run_id,
                runner.ctx.clone(),
                runner.ingest_options.clone(),
            )
            .create_tables(&jobs)
            .await
        };
        if let Some(first) = failed.first() {
            bail!("{}", first.error.clone().unwrap_or_default());
        }
        let mut recorder = Recorder::new(session.warehouse.as_ref(), run_id.clone(), true);
        if let Some(listener) = &lineage_tasks {
            recorder = recorder.with_listener(listener);
        }
        eprintln!("run {run_id} ({}): {} tasks, {concurrency} at a time", request.command, dag.tasks.len());
        let options = ExecuteOptions { concurrency, sleeper: &TokioSleeper, cancel };
        let outcome = dag::execute(&dag, &runner, &recorder, &options).await;
        recorder.flush().await;
        if let (Some(parsed), Some(nodes)) = (&parsed, &node_runner) {
            // Tests feed the same `check_results` as `mdp check`'s monitors.
            let checks = mdp_monitor::checks::transform_tests::outcomes(parsed, &nodes.take_test_results());
            if let Err(e) = mdp_monitor::checks::record(session.warehouse.as_ref(), &run_id, &checks).await {
                eprintln!("warning: cannot record the test results in the check results: {e}");
            }
        }
        anyhow::Ok(outcome)
    }
    .await;
    let error = match &outcome {
        Err(e) => Some(format!("{e:#}")),
        Ok(o) if o.cancelled => Some("stopped by a signal before every task ran".to_string()),
        Ok(o) if !o.success() => Some(summary(o)),
        Ok(_) => None,
    };
    if let Some(lineage) = &lineage {
        lineage.run_finished(Utc::now(), error.as_deref());
    }
    // `lineage` borrows the session's warehouse: its last use is above.
    monitoring::finish_run(session, &context.project, error.as_deref())
        .await
        .context("cannot record the run's outcome")?;
    monitoring::finish_lineage(emitter).await;
    Ok(Some((run_id, outcome?)))
}

/// Transform nodes to run, each with the nodes it waits for.
type NodePlan = Vec<(String, Vec<String>)>;

/// Keep only the requested tasks (all when none are named), dropping the edges to tasks that do not
/// run: a re-run of a failed task starts from what its upstream tasks left in the warehouse.
fn only_tasks(ids: &[String], ingest: Vec<IngestTask>, nodes: NodePlan) -> Result<(Vec<IngestTask>, NodePlan)> {
    if ids.is_empty() {
        return Ok((ingest, nodes));
    }
    let known: Vec<String> =
        ingest.iter().map(IngestTask::task_id).chain(nodes.iter().map(|(id, _)| id.clone())).collect();
    for id in ids {
        if !known.contains(id) {
            let suggestion = known
                .iter()
                .map(|k| (strsim::jaro_winkler(k, id), k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            bail!(
                "no task `{id}` in this pipeline{suggestion}: task ids are listed by `mdp runs show RUN_ID`; \
                 a windowed backfill task is re-run with `mdp backfill`"
            );
        }
    }
    let ingest: Vec<IngestTask> = ingest.into_iter().filter(|t| ids.contains(&t.task_id())).collect();
    let nodes = nodes
        .into_iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|(id, deps)| {
            let deps = deps.into_iter().filter(|d| ids.contains(d)).collect();
            (id, deps)
        })
        .collect();
    Ok((ingest, nodes))
}

fn summary(o: &DagOutcome) -> String {
    let mut parts: Vec<String> = [TaskState::Success, TaskState::Failed, TaskState::UpstreamFailed, TaskState::Skipped]
        .iter()
        .map(|s| format!("{} {}", o.count(*s), s.as_str()))
        .collect();
    let retried = o.tasks.iter().filter(|t| t.attempts > 1).count();
    if retried > 0 {
        parts.push(format!("{retried} retried"));
    }
    if o.partial {
        parts.push("PARTIAL: some models ran on data whose ingest failed".into());
    }
    parts.join(", ")
}

fn report(run_id: &str, outcome: &DagOutcome, clock: Instant) -> ExitCode {
    eprintln!("\nrun {run_id}: {} in {:.1}s", summary(outcome), clock.elapsed().as_secs_f64());
    for t in outcome.tasks.iter().filter(|t| t.state == TaskState::Failed) {
        eprintln!(
            "\n{} failed after {} attempt(s):\n  {}",
            t.id,
            t.attempts,
            t.error.as_deref().unwrap_or("").replace('\n', "\n  ")
        );
    }
    eprintln!("details: mdp runs show {run_id}");
    if outcome.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One ingest task per account of each selected source: a failing account is retried alone and
/// the accounts of a source load side by side.
fn ingest_tasks(context: &ProjectContext, only: &[String]) -> Result<Vec<IngestTask>> {
    let jobs = ingest::jobs(&context.project, only)?;
    if jobs.is_empty() {
        bail!(
            "no enabled sources in {}: add one under `sources:` (or set `enabled: true`)",
            context.project.file.display()
        );
    }
    let mut tasks = Vec::new();
    for job in &jobs {
        let settings = job.source.settings();
        for account in &settings.accounts {
            tasks.push(IngestTask { source: settings.name.clone(), account: Some(account.clone()), window: None });
        }
    }
    Ok(tasks)
}

pub async fn pipeline(global: &GlobalArgs, args: PipelineArgs) -> Result<ExitCode> {
    let clock = Instant::now();
    let context = ProjectContext::load(global)?;
    let ingest = if args.no_ingest { Vec::new() } else { ingest_tasks(&context, &args.sources)? };
    let command = if args.only_tasks.is_empty() {
        "pipeline".to_string()
    } else {
        format!("pipeline --task {}", args.only_tasks.join(" --task "))
    };
    // Only ingest tasks named: no need to parse the project.
    let names_a_node = |t: &String| t.parse::<TaskId>().map_or(true, |id| id.kind() != TaskKind::Ingest);
    let build = !args.no_build && (args.only_tasks.is_empty() || args.only_tasks.iter().any(names_a_node));
    let request = RunRequest {
        command,
        ingest,
        build,
        select: args.select,
        tasks: args.tasks,
        fire_time: None,
        only_tasks: args.only_tasks,
    };
    let (run_id, outcome) = orchestrate(global, &context, &request, cancel_on_signals()).await?.expect("not claimed");
    Ok(report(&run_id, &outcome, clock))
}

pub async fn backfill(global: &GlobalArgs, args: BackfillArgs) -> Result<ExitCode> {
    let clock = Instant::now();
    anyhow::ensure!(args.from <= args.to, "--from {} is after --to {}", args.from, args.to);
    let context = ProjectContext::load(global)?;
    let mut ingest = Vec::new();
    for task in ingest_tasks(&context, &args.sources)? {
        for window in pipeline::windows(args.from, args.to, args.window_days) {
            ingest.push(IngestTask { window: Some(window), ..task.clone() });
        }
    }
    let request = RunRequest {
        command: format!("backfill {}..{}", args.from, args.to),
        ingest,
        build: !args.no_build,
        select: Vec::new(),
        tasks: args.tasks,
        fire_time: None,
        only_tasks: Vec::new(),
    };
    let (run_id, outcome) = orchestrate(global, &context, &request, cancel_on_signals()).await?.expect("not claimed");
    Ok(report(&run_id, &outcome, clock))
}

/// A job of the project file, ready to schedule.
struct Job {
    config: JobConfig,
    cron: mdp_orchestrator::cron::CronSchedule,
}

fn jobs_of(schedule: &ScheduleConfig) -> Result<Vec<Job>> {
    let mut out = Vec::new();
    for config in &schedule.jobs {
        let cron = config
            .cron
            .parse::<mdp_orchestrator::cron::CronSchedule>()
            .map_err(|e| anyhow::anyhow!("mdp.yml: schedule.jobs `{}`: {e}", config.name))?;
        anyhow::ensure!(
            matches!(config.run.as_str(), "ingest" | "build" | "pipeline"),
            "mdp.yml: schedule.jobs `{}`: run `{}` is not one of ingest, build, pipeline",
            config.name,
            config.run
        );
        out.push(Job { config: config.clone(), cron });
    }
    anyhow::ensure!(
        !out.is_empty(),
        "mdp.yml: `schedule:` has no `jobs:`; add one, e.g. `- {{name: daily, cron: \"0 6 * * *\"}}`"
    );
    Ok(out)
}

/// The time zone the schedule's cron expressions are read in.
fn schedule_tz(project: &mdp_project::Project) -> Result<chrono_tz::Tz> {
    match project.config.schedule.as_ref().and_then(|s| s.timezone.as_deref()) {
        Some(name) => name.parse().map_err(|_| {
            anyhow::anyhow!("mdp.yml: schedule.timezone `{name}` is not an IANA time zone such as Europe/Berlin")
        }),
        None => Ok(project.config.reporting.timezone),
    }
}

/// For `mdp doctor`: the schedule's jobs with their next fire times, or what is wrong with it
/// (`None` without a `schedule:` section).
pub(crate) fn describe_schedule(project: &mdp_project::Project) -> Option<Result<String>> {
    let schedule = project.config.schedule.as_ref()?;
    Some((|| {
        let jobs = jobs_of(schedule)?;
        let tz = schedule_tz(project)?;
        let _: mdp_orchestrator::cron::Catchup =
            schedule.catchup.parse().map_err(|e| anyhow::anyhow!("mdp.yml: schedule.catchup: {e}"))?;
        let next: Vec<String> = jobs
            .iter()
            .map(|j| match j.cron.next_after(Utc::now(), tz) {
                Some(at) => format!("{} next at {}", j.config.name, at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")),
                None => format!("{} never fires", j.config.name),
            })
            .collect();
        Ok(format!("{} job(s) in {tz}: {}", jobs.len(), next.join("; ")))
    })())
}

pub async fn schedule(global: &GlobalArgs, args: ScheduleArgs) -> Result<ExitCode> {
    let context = ProjectContext::load(global)?;
    let schedule = context
        .project
        .config
        .schedule
        .clone()
        .context("mdp.yml has no `schedule:` section: add jobs, e.g.\nschedule:\n  jobs:\n    - name: daily\n      cron: \"0 6 * * *\"")?;
    let jobs = jobs_of(&schedule)?;
    let tz = schedule_tz(&context.project)?;
    let catchup: mdp_orchestrator::cron::Catchup =
        schedule.catchup.parse().map_err(|e| anyhow::anyhow!("mdp.yml: schedule.catchup: {e}"))?;
    let cancel = cancel_on_signals();
    let clock_now = || args.now.unwrap_or_else(Utc::now);
    eprintln!(
        "scheduler: {} job(s) in {tz}, catch-up {}: {}",
        jobs.len(),
        schedule.catchup,
        jobs.iter().map(|j| format!("{} `{}`", j.config.name, j.cron)).collect::<Vec<_>>().join(", ")
    );
    let mut failures = 0;
    loop {
        let now = clock_now();
        let last = last_fire_times(&context, &jobs).await;
        for job in &jobs {
            // A job that never ran runs its latest fire time once (no catch-up of its whole history).
            let due = match last.get(job.config.name.as_str()).copied().flatten() {
                Some(since) => mdp_orchestrator::cron::due(&job.cron, tz, Some(since), now, catchup),
                None => job.cron.last_fire_in(now - chrono::Duration::days(31), now, tz).into_iter().collect(),
            };
            for fire in due {
                if cancel.load(Ordering::SeqCst) {
                    break;
                }
                let clock = Instant::now();
                let request = job_request(&context, job, fire)?;
                match orchestrate(global, &context, &request, cancel.clone()).await {
                    Ok(Some((run_id, outcome))) => {
                        if report(&run_id, &outcome, clock) != ExitCode::SUCCESS {
                            failures += 1;
                        }
                    }
                    Ok(None) => eprintln!("job {} at {fire}: already ran (claimed by an earlier run)", job.config.name),
                    Err(e) => {
                        failures += 1;
                        eprintln!("job {} at {fire}: {e:#}; it will be tried again at the next check", job.config.name);
                    }
                }
            }
        }
        if args.once || cancel.load(Ordering::SeqCst) {
            break;
        }
        let next = jobs.iter().filter_map(|j| j.cron.next_after(clock_now(), tz)).min();
        let wait = next
            .map(|n| (n - clock_now()).to_std().unwrap_or_default())
            .unwrap_or(Duration::from_secs(args.poll_seconds))
            .min(Duration::from_secs(args.poll_seconds.max(1)));
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !cancel.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(200).min(deadline - Instant::now())).await;
        }
        if cancel.load(Ordering::SeqCst) {
            break;
        }
    }
    eprintln!("scheduler stopped");
    Ok(if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The last claimed fire time of each job (none when the warehouse has no history yet).
async fn last_fire_times(context: &ProjectContext, jobs: &[Job]) -> HashMap<String, Option<DateTime<Utc>>> {
    let mut out = HashMap::new();
    let Ok(reader) = context.open_reader().await else { return out };
    let meta = Metadata::new(reader.as_ref());
    for job in jobs {
        let last = meta.last_fire_time(job.config.name.as_str()).await.ok().flatten().map(|t| t.and_utc());
        out.insert(job.config.name.to_string(), last);
    }
    let _ = reader.close().await;
    out
}

fn job_request(context: &ProjectContext, job: &Job, fire: DateTime<Utc>) -> Result<RunRequest> {
    let run = job.config.run.as_str();
    let ingest = if run == "build" { Vec::new() } else { ingest_tasks(context, &job.config.sources)? };
    Ok(RunRequest {
        command: format!("schedule:{}", job.config.name),
        ingest,
        build: run != "ingest",
        select: job.config.select.clone(),
        tasks: TaskArgs::default(),
        fire_time: Some((job.config.name.to_string(), fire)),
        only_tasks: Vec::new(),
    })
}

pub async fn runs(global: &GlobalArgs, args: RunsArgs) -> Result<ExitCode> {
    let context = ProjectContext::load(global)?;
    let reader = context.open_reader().await?;
    let meta = Metadata::new(reader.as_ref());
    match args.command {
        None => {
            println!(
                "{:<38} {:<26} {:<8} {:<20} {:<20} error",
                "run", "command", "status", "started (UTC)", "finished"
            );
            for r in meta.recent_runs(args.limit).await? {
                println!(
                    "{:<38} {:<26} {:<8} {:<20} {:<20} {}",
                    r.run_id,
                    r.command,
                    r.status,
                    r.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                    r.finished_at.map_or(String::new(), |f| f.format("%Y-%m-%d %H:%M:%S").to_string()),
                    r.error.as_deref().and_then(|e| e.lines().next()).unwrap_or("")
                );
            }
        }
        Some(RunsCommand::Show { id }) => {
            let mut found = meta.runs_with_prefix(&id).await?;
            anyhow::ensure!(found.len() < 2, "more than one run starts with {id}: give more of its id");
            let run = found.pop().with_context(|| format!("no run {id}: `mdp runs` lists the recent ones"))?;
            println!("run {} — {} — {}", run.run_id, run.command, run.status);
            let finished = run.finished_at.map_or("-".to_string(), |f| format!("{f} UTC"));
            println!("started {} UTC  finished {finished}", run.started_at);
            if let Some(e) = &run.error {
                println!("error: {e}");
            }
            let tasks = meta.tasks_of_run(&run.run_id).await?;
            if tasks.is_empty() {
                println!("(no task records: a run of a single command)");
            }
            println!("\n{:<60} {:<16} {:>8} {:>9} {:>10}", "task", "state", "attempts", "seconds", "rows");
            for t in &tasks {
                let seconds = match (t.started_at, t.finished_at) {
                    (Some(s), Some(f)) => format!("{:.2}", (f - s).num_milliseconds() as f64 / 1000.0),
                    _ => "-".into(),
                };
                println!(
                    "{:<60} {:<16} {:>8} {:>9} {:>10}",
                    t.task_id,
                    t.state,
                    t.attempts,
                    seconds,
                    t.rows.map_or("-".to_string(), |r| r.to_string())
                );
                if let Some(e) = &t.error {
                    println!("    error: {}", e.replace('\n', "\n           "));
                }
                if let Some(log) = &t.log {
                    for line in log.lines().take(20) {
                        println!("    | {line}");
                    }
                }
            }
        }
    }
    let _ = reader.close().await;
    Ok(ExitCode::SUCCESS)
}

pub fn airflow(global: &GlobalArgs, args: AirflowArgs) -> Result<ExitCode> {
    let AirflowCommand::Export { out, granularity, mdp } = args.command;
    let context = ProjectContext::load(global)?;
    let parsed = transform::load(global, &TransformArgs::default())?;
    let project_dir = std::fs::canonicalize(&global.project_dir).unwrap_or(global.project_dir.clone());
    let schedule = context.project.config.schedule.clone();
    let tz = schedule_tz(&context.project)?;
    let policy = policy(schedule.as_ref(), &TaskArgs::default());
    // One DAG per job (its own schedule and selection), or one manual `pipeline` DAG.
    let jobs: Vec<ExportJob> = match &schedule {
        Some(s) if !s.jobs.is_empty() => s
            .jobs
            .iter()
            .map(|j| ExportJob {
                name: j.name.to_string(),
                cron: Some(j.cron.clone()),
                run: j.run.clone(),
                sources: j.sources.clone(),
                select: j.select.clone(),
            })
            .collect(),
        _ => vec![ExportJob {
            name: "pipeline".into(),
            cron: None,
            run: "pipeline".into(),
            sources: Vec::new(),
            select: Vec::new(),
        }],
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for ExportJob { name, cron, run, sources, select: selection } in jobs {
        let ingest = if run == "build" { Vec::new() } else { ingest_tasks(&context, &sources)? };
        let nodes = if run == "ingest" {
            Vec::new()
        } else {
            let ids = select(&parsed.manifest, &parsed.graph, &Selection { select: selection, ..Selection::all() })?;
            mdp_transform::run::plan_build(&parsed, &ids)
        };
        let plan = PipelinePlan { ingest, nodes, policy: policy.clone(), partial: false, checks: false };
        let dag = pipeline::dag(&plan, Some(&parsed))?;
        let ingest_args: HashMap<String, Vec<String>> = plan
            .ingest
            .iter()
            .map(|t| {
                let mut args = vec!["ingest".to_string(), "--source".into(), t.source.clone()];
                if let Some(account) = &t.account {
                    args.extend(["--account".to_string(), account.clone()]);
                }
                (t.task_id(), args)
            })
            .collect();
        let tasks = airflow_tasks(&dag, &parsed, &ingest_args, granularity, &policy)?;
        let export = mdp_orchestrator::airflow::ExportDag {
            dag_id: format!("mdp_{}__{name}", context.project.config.name),
            description: format!(
                "mdp project {} — job {name} (generated by `mdp airflow export`)",
                context.project.config.name
            ),
            schedule: cron,
            timezone: tz.name().to_string(),
            start_date: chrono::Utc::now().date_naive(),
            catchup: false,
            max_active_runs: 1,
            project_dir: project_dir.display().to_string(),
            mdp_executable: mdp.clone(),
            tasks,
        };
        let text = mdp_orchestrator::airflow::render(&export).map_err(|e| anyhow::anyhow!("{e}"))?;
        let file = out.join(format!("{}.py", export.dag_id));
        std::fs::write(&file, text).with_context(|| format!("cannot write {}", file.display()))?;
        println!("wrote {} ({} tasks)", file.display(), export.tasks.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// A job to export as one Airflow DAG.
struct ExportJob {
    name: String,
    cron: Option<String>,
    run: String,
    sources: Vec<String>,
    select: Vec<String>,
}

/// An Airflow task id: letters, digits, `_`, `.` and `-`.
fn airflow_id(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '_' }).collect()
}

/// The Airflow tasks for a DAG: one per task (`node`), or per source ingest and per model layer (`layer`).
fn airflow_tasks(
    dag: &mdp_orchestrator::dag::Dag,
    parsed: &mdp_transform::Parsed,
    ingest_args: &HashMap<String, Vec<String>>,
    granularity: AirflowGranularity,
    policy: &TaskPolicy,
) -> Result<Vec<mdp_orchestrator::airflow::ExportTask>> {
    use mdp_transform::manifest::ResourceType;
    let task = |id: String, args: Vec<String>, upstream: Vec<String>, group: Option<String>| {
        mdp_orchestrator::airflow::ExportTask {
            task_id: id,
            args,
            upstream,
            retries: policy.retries,
            retry_delay_seconds: policy.retry_delay.as_secs(),
            retry_exponential_backoff: true,
            timeout_seconds: policy.timeout.map(|t| t.as_secs()),
            group,
        }
    };
    // What each mdp task becomes in Airflow (an id, and the command for it).
    let of_model = |n: &mdp_transform::manifest::Node| n.fqn[..n.fqn.len() - 1].join(".");
    let mut owner: HashMap<&str, String> = HashMap::new();
    let mut commands: indexmap::IndexMap<String, (Vec<String>, Option<String>)> = indexmap::IndexMap::new();
    for t in &dag.tasks {
        let (id, args, group) = if t.kind == TaskKind::Ingest {
            let args = ingest_args.get(&t.id).cloned().with_context(|| format!("no ingest task {}", t.id))?;
            (airflow_id(&t.id), args, Some("ingest".to_string()))
        } else {
            let node = &parsed.manifest.nodes[&t.id];
            match granularity {
                AirflowGranularity::Node => {
                    let verb = match node.resource_type {
                        ResourceType::Seed => "seed",
                        ResourceType::Test => "test",
                        ResourceType::Snapshot => "snapshot",
                        _ => "run",
                    };
                    // Airflow group ids cannot hold dots.
                    (
                        airflow_id(&t.id),
                        vec![verb.into(), "--select".into(), node.name.clone()],
                        Some(of_model(node).replace('.', "__")),
                    )
                }
                AirflowGranularity::Layer => {
                    // Seeds, a model folder, singular tests: one `mdp build --select …` each; a generic
                    // test goes with the models it tests (build's eager selection runs it there).
                    let layer_of = |n: &mdp_transform::manifest::Node| match n.resource_type {
                        ResourceType::Seed => format!("package:{},resource_type:seed", n.package),
                        ResourceType::Snapshot => format!("package:{},resource_type:snapshot", n.package),
                        _ => of_model(n),
                    };
                    let selector = match node.resource_type {
                        // A test goes with its most downstream parent (so no layer waits for a later one).
                        ResourceType::Test => node
                            .depends_on
                            .iter()
                            .filter_map(|p| parsed.manifest.nodes.get(p))
                            .filter(|p| matches!(p.resource_type, ResourceType::Model | ResourceType::Seed))
                            .max_by_key(|p| parsed.graph.ancestors(&p.unique_id, None).len())
                            .map(layer_of)
                            .unwrap_or_else(|| format!("package:{},test_type:singular", node.package)),
                        _ => layer_of(node),
                    };
                    (
                        format!("build.{}", airflow_id(&selector.replace([':', ','], "."))),
                        vec!["build".into(), "--select".into(), selector],
                        None,
                    )
                }
            }
        };
        owner.insert(&t.id, id.clone());
        commands.entry(id).or_insert((args, group));
    }
    // An Airflow task waits for the owners of its mdp tasks' upstream tasks (sorted, not itself).
    let mut upstream: HashMap<&str, std::collections::BTreeSet<&str>> = HashMap::new();
    for t in &dag.tasks {
        let me = owner[t.id.as_str()].as_str();
        for u in &t.upstream {
            let theirs = owner[u.as_str()].as_str();
            if theirs != me {
                upstream.entry(me).or_default().insert(theirs);
            }
        }
    }
    let out = commands
        .iter()
        .map(|(id, (args, group))| {
            let up = upstream.get(id.as_str()).map(|u| u.iter().map(|s| s.to_string()).collect()).unwrap_or_default();
            task(id.clone(), args.clone(), up, group.clone())
        })
        .collect();
    Ok(out)
}
