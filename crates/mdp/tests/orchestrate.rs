//! Orchestrated runs end to end against the sandbox: `mdp pipeline` as a DAG of recorded tasks, a
//! failing platform that blocks only its own readers, retries, `--partial`, a backfill that equals a
//! single ingest, the scheduler's fire times (never twice, catch-up), a killed run recovered, and the
//! Airflow export.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn run(project: &Path, args: &[&str]) -> std::process::Output {
    mdp().args(args).current_dir(project).output().unwrap()
}

/// The tasks of a run as (task, state, attempts), from `task_instances`.
fn tasks(project: &Path, run_id: &str) -> Vec<(String, String, i64)> {
    query(
        project,
        &format!(
            "SELECT task_id, state, CAST(attempts AS VARCHAR) FROM mdp_meta.task_instances WHERE run_id = '{run_id}' ORDER BY task_id"
        ),
    )
    .into_iter()
    .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap(), r[2].as_deref().unwrap().parse().unwrap()))
    .collect()
}

/// The tasks whose id starts with `prefix` (e.g. every account of `ingest.google_ads.`).
fn with_prefix<'a>(tasks: &'a [(String, String, i64)], prefix: &str) -> Vec<&'a (String, String, i64)> {
    let found: Vec<_> = tasks.iter().filter(|t| t.0.starts_with(prefix)).collect();
    assert!(!found.is_empty(), "no task {prefix}… in {tasks:?}");
    found
}

fn state<'a>(tasks: &'a [(String, String, i64)], id: &str) -> &'a str {
    &tasks.iter().find(|t| t.0 == id).unwrap_or_else(|| panic!("no task {id} in {tasks:?}")).1
}

#[test]
fn a_pipeline_runs_every_task_records_it_and_runs_show_lists_it() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    let out = run(&project, &["pipeline", "--retry-delay", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = run_id(&out);
    let t = tasks(&project, &id);
    for platform in PLATFORMS {
        let ingests = with_prefix(&t, &format!("ingest.{platform}."));
        assert_eq!(ingests.len(), 2, "one ingest task per account: {ingests:?}");
        assert!(ingests.iter().all(|i| i.1 == "success"), "{ingests:?}");
    }
    assert_eq!(state(&t, "model.mdp_marketing.fct_account_performance_daily"), "success");
    assert_eq!(state(&t, "test.mdp_marketing.reconcile_account_mart_with_raw"), "success");
    assert!(t.len() > 200, "every model and test is a task: {}", t.len());
    assert!(t.iter().all(|(_, s, a)| s == "success" && *a == 1), "{t:?}");
    let compiled = project.join("target/compiled/mdp_marketing/models/marts/fct_account_performance_daily.sql");
    assert!(compiled.is_file(), "each node's compiled SQL is written, as by mdp build");

    let out = run(&project, &["runs"]);
    assert!(text(&out).contains(&id) && text(&out).contains("pipeline"), "{}", text(&out));
    let out = run(&project, &["runs", "show", &id]);
    let shown = text(&out);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("ingest.meta_ads") && shown.contains("rows in"), "tasks with their logs:\n{shown}");
}

#[test]
fn a_failing_platform_blocks_only_its_readers_a_refused_token_is_not_retried_and_partial_runs_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    // TikTok rejects the token for good: its ingest fails at its first attempt (a refused token fails
    // the same way again, so `--retries` does not apply), its staging models and the marts that union
    // every platform do not run; the other platforms' staging models do.
    post_json(
        &format!("{}/_sandbox/faults", sandbox.url),
        serde_json::json!({"platform": "tiktok_ads", "kind": "unauthorized", "count": 1000}),
    );
    let out = run(&project, &["pipeline", "--retries", "1", "--retry-delay", "0"]);
    assert!(!out.status.success(), "{}", text(&out));
    let t = tasks(&project, &run_id(&out));
    for ingest in with_prefix(&t, "ingest.tiktok_ads.") {
        assert_eq!((ingest.1.as_str(), ingest.2), ("failed", 1), "not retried: {ingest:?}");
    }
    assert_eq!(state(&t, "model.mdp_marketing.stg_tiktok_ads__ad_daily"), "upstream_failed");
    assert_eq!(state(&t, "model.mdp_marketing.stg_meta_ads__ad_daily"), "success");
    assert!(with_prefix(&t, "ingest.google_ads.").iter().all(|i| i.1 == "success"));
    assert_eq!(state(&t, "model.mdp_marketing.fct_account_performance_daily"), "upstream_failed");
    let log = text(&out);
    assert!(
        log.lines().any(|l| l.starts_with("ingest.tiktok_ads.") && l.ends_with("failed after 1 attempt(s):")),
        "{log}"
    );
    assert!(log.contains("tiktok_ads: the access token was refused") && log.contains("renew the token"), "{log}");

    // With --partial the marts are built from what was loaded, and the run says it is partial.
    let out = run(&project, &["pipeline", "--retries", "0", "--partial"]);
    let log = text(&out);
    assert!(!out.status.success(), "a partial run is not a success:\n{log}");
    assert!(log.contains("PARTIAL"), "{log}");
    let t = tasks(&project, &run_id(&out));
    assert_eq!(state(&t, "model.mdp_marketing.fct_account_performance_daily"), "success");
}

#[test]
fn a_platform_failing_longer_than_the_http_retries_is_retried_as_a_task() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    // Six server errors in a row outlast the HTTP client's six attempts: the first Google ingest task
    // fails with a transport error, which may pass, so the task runs again (and succeeds).
    post_json(
        &format!("{}/_sandbox/faults", sandbox.url),
        serde_json::json!({"platform": "google_ads", "kind": "server_error", "count": 6}),
    );
    let args = ["pipeline", "--no-build", "--source", "google_ads", "--concurrency", "1", "--retries", "1"];
    let out = run(&project, &[&args[..], &["--retry-delay", "0"]].concat());
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let t = tasks(&project, &run_id(&out));
    let mut attempts: Vec<i64> = with_prefix(&t, "ingest.google_ads.").iter().map(|i| i.2).collect();
    attempts.sort();
    assert_eq!(attempts, [1, 2], "the account that ran first was retried once: {t:?}");
    assert!(t.iter().all(|i| i.1 == "success"), "{t:?}");
    assert!(log.contains("1 retried"), "{log}");
}

#[test]
fn pipeline_task_re_runs_only_the_named_tasks_and_names_a_mistyped_one() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    let out = run(&project, &["pipeline", "--retry-delay", "0"]);
    assert!(out.status.success(), "{}", text(&out));
    let first = tasks(&project, &run_id(&out));
    let ingest = with_prefix(&first, "ingest.tiktok_ads.")[0].0.clone();
    let staging = "model.mdp_marketing.stg_tiktok_ads__ad_daily";

    let out = run(&project, &["pipeline", "--task", &ingest, "--task", staging]);
    assert!(out.status.success(), "{}", text(&out));
    let again = tasks(&project, &run_id(&out));
    let ids: Vec<&str> = again.iter().map(|t| t.0.as_str()).collect();
    assert_eq!(ids, vec![ingest.as_str(), staging], "only the named tasks run");
    assert!(again.iter().all(|t| t.1 == "success"), "{again:?}");

    let out = run(&project, &["pipeline", "--task", "model.mdp_marketing.stg_tiktok_ads__ad_dialy"]);
    assert!(!out.status.success());
    let log = text(&out);
    assert!(log.contains("did you mean `model.mdp_marketing.stg_tiktok_ads__ad_daily`"), "{log}");
}

#[test]
fn a_backfill_over_30_days_equals_a_single_ingest_of_those_days() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let a = project(&tmp.path().join("a"), &sandbox);
    let b = project(&tmp.path().join("b"), &sandbox);
    let out = run(&a, &["backfill", "--from", "2026-05-20", "--to", "2026-06-18", "--window-days", "7", "--no-build"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = tasks(&a, &run_id(&out));
    assert_eq!(t.len(), 4 * 2 * 5, "4 sources × 2 accounts × 5 windows of ≤ 7 days: {t:?}");
    let out = ingest(&b, &["--from", "2026-05-20", "--to", "2026-06-18"]);
    assert!(out.status.success(), "{}", text(&out));
    for platform in PLATFORMS {
        let stream = if platform == "google_ads" { "campaign_daily" } else { "ad_daily" };
        let sql = format!(
            "SELECT count(*), CAST(sum(spend) AS VARCHAR), CAST(sum(conversions) AS VARCHAR), CAST(min(date) AS VARCHAR), \
             CAST(max(date) AS VARCHAR), count(DISTINCT (account_id, date, campaign_id, ad_id)) FROM raw.{platform}__{stream}"
        );
        let (qa, qb) = (query(&a, &sql), query(&b, &sql));
        assert_eq!(qa, qb, "{platform}: backfill vs single ingest");
        assert_eq!(qa[0][0], qa[0][5], "{platform}: no duplicated rows");
    }
}

fn with_schedule(project: &Path, jobs: &str) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{config}schedule:\n  timezone: UTC\n  retries: 0\n{jobs}")).unwrap();
}

fn schedule_once(project: &Path, now: &str) -> String {
    let out = mdp().args(["schedule", "--once"]).env("MDP_NOW", now).current_dir(project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    text(&out)
}

fn scheduled(project: &Path) -> Vec<String> {
    query(project, "SELECT CAST(scheduled_for AS VARCHAR) FROM mdp_meta.scheduled_runs ORDER BY 1")
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect()
}

#[test]
fn scheduled_jobs_run_at_their_fire_times_once_and_catch_up_as_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    with_schedule(
        &project,
        "  catchup: all\n  jobs:\n    - name: ingest_google\n      cron: \"0 */2 * * *\"\n      run: ingest\n      sources: [google_ads]\n",
    );
    // `mdp doctor` checks the schedule; a bad cron expression is named with its job.
    let out = run(&project, &["doctor"]);
    assert!(text(&out).contains("1 job(s) in UTC: ingest_google next at"), "{}", text(&out));
    // A job that never ran runs its latest fire time.
    schedule_once(&project, "2026-06-30T06:00:30Z");
    assert_eq!(scheduled(&project), ["2026-06-30 06:00:00"]);
    // Nothing is due again until the next fire time, and a fire time never runs twice.
    schedule_once(&project, "2026-06-30T07:59:00Z");
    schedule_once(&project, "2026-06-30T06:10:00Z");
    assert_eq!(scheduled(&project).len(), 1);
    // Down from 06:00 to 12:00:30 with catch-up `all`: 08:00, 10:00 and 12:00 run, oldest first.
    let log = schedule_once(&project, "2026-06-30T12:00:30Z");
    assert_eq!(
        scheduled(&project),
        ["2026-06-30 06:00:00", "2026-06-30 08:00:00", "2026-06-30 10:00:00", "2026-06-30 12:00:00"]
    );
    assert_eq!(log.matches("details: mdp runs show").count(), 3, "{log}");
    let runs = query(
        &project,
        "SELECT count(*) FROM mdp_meta.runs WHERE command = 'schedule:ingest_google' AND status = 'success'",
    );
    assert_eq!(runs[0][0].as_deref(), Some("4"));

    // With catch-up `latest`, only the last missed fire time runs.
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap().replace("catchup: all", "catchup: latest");
    std::fs::write(&file, config).unwrap();
    schedule_once(&project, "2026-06-30T18:00:30Z");
    assert_eq!(scheduled(&project).last().map(String::as_str), Some("2026-06-30 18:00:00"));
    assert_eq!(scheduled(&project).len(), 5, "14:00 and 16:00 were skipped");
}

/// Start `args` with slow sandbox answers, and signal it once it holds the warehouse for a while.
fn start_then_signal(
    project: &Path,
    sandbox: &SandboxProcess,
    args: &[&str],
    now: &str,
    signal: &str,
) -> std::process::Output {
    post_json(
        &format!("{}/_sandbox/faults", sandbox.url),
        serde_json::json!({"kind": "slow", "millis": 500, "count": 200}),
    );
    let child = mdp()
        .args(args)
        .env("MDP_NOW", now)
        .current_dir(project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The writer lock's file names its holder while the run holds the warehouse; the slow answers
    // keep it busy for many seconds after that.
    let lock = project.join("warehouse.duckdb.mdp-lock");
    let clock = Instant::now();
    while clock.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
        if std::fs::read_to_string(&lock).is_ok_and(|held| held.contains(&format!("{}", child.id()))) {
            std::thread::sleep(Duration::from_millis(1500));
            break;
        }
    }
    let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
    child.wait_with_output().unwrap()
}

fn assert_no_duplicates(project: &Path) {
    for platform in PLATFORMS {
        let counts = query(
            project,
            &format!(
                "SELECT count(*), count(DISTINCT (account_id, date, campaign_id, ad_id)) FROM raw.{platform}__ad_daily"
            ),
        );
        assert_eq!(counts[0][0], counts[0][1], "{platform}: no duplicated rows");
    }
}

#[test]
fn a_killed_scheduler_leaves_consistent_records_and_no_duplicates_and_sigterm_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    with_schedule(&project, "  jobs:\n    - name: hourly\n      cron: \"0 * * * *\"\n      run: ingest\n");
    // The first ingest creates the metadata the test watches.
    let out = run(&project, &["pipeline", "--no-build", "--source", "google_ads"]);
    assert!(out.status.success(), "{}", text(&out));

    // kill -9 mid-run: the next scheduler start finds the stale lock, marks the run and its running
    // tasks failed, and does not run the claimed fire time twice.
    start_then_signal(&project, &sandbox, &["schedule", "--once"], "2026-06-30T06:00:30Z", "-9");
    // Restarted before the next fire time: the claimed 06:00 does not run again.
    schedule_once(&project, "2026-06-30T06:10:00Z");
    let runs = query(&project, "SELECT count(*) FROM mdp_meta.runs WHERE command = 'schedule:hourly'");
    assert_eq!(runs[0][0].as_deref(), Some("1"), "the fire time ran once");
    // At 07:00 the next run finds the stale lock, records the killed run and its running tasks as
    // failed, and loads the look-back window whole again.
    let log = schedule_once(&project, "2026-06-30T07:00:30Z");
    assert!(log.contains("stale"), "{log}");
    let runs =
        query(&project, "SELECT status FROM mdp_meta.runs WHERE command = 'schedule:hourly' ORDER BY started_at");
    let runs: Vec<Option<String>> = runs.into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(runs, [Some("failed".to_string()), Some("success".to_string())]);
    let running = query(&project, "SELECT count(*) FROM mdp_meta.task_instances WHERE state = 'running'");
    assert_eq!(running[0][0].as_deref(), Some("0"), "no task is left running");
    assert_no_duplicates(&project);

    // SIGTERM: running tasks finish their attempt, nothing new starts, the run is recorded as stopped.
    let out = start_then_signal(&project, &sandbox, &["pipeline"], "2026-06-30T08:00:30Z", "-TERM");
    assert!(!out.status.success());
    assert!(text(&out).contains("stopping"), "{}", text(&out));
    let last = query(
        &project,
        "SELECT status, error FROM mdp_meta.runs WHERE command = 'pipeline' ORDER BY started_at DESC LIMIT 1",
    );
    assert_eq!(last[0][0].as_deref(), Some("failed"));
    assert!(last[0][1].as_deref().unwrap_or("").contains("stopped by a signal"), "{last:?}");
    let states = query(&project, "SELECT DISTINCT state FROM mdp_meta.task_instances WHERE state NOT IN ('success', 'skipped', 'upstream_failed')");
    assert!(states.is_empty(), "tasks end success or skipped: {states:?}");
    assert_no_duplicates(&project);
}

/// `MDP_TEST_REQUIRE_AIRFLOW=1` (`.ci/run` sets it when it installed Airflow): the Airflow checks must
/// run, a missing interpreter is a failure instead of a notice.
fn require_airflow() -> bool {
    std::env::var("MDP_TEST_REQUIRE_AIRFLOW").as_deref() == Ok("1")
}

#[test]
fn the_airflow_export_is_python_with_the_tasks_and_dependencies_of_the_dag() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    with_schedule(&project, "  jobs:\n    - name: daily\n      cron: \"0 6 * * *\"\n");
    let out = run(&project, &["airflow", "export", "--out", "dags"]);
    assert!(out.status.success(), "{}", text(&out));
    let file = project.join("dags/mdp_project__daily.py");
    let py = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}\n{}", file.display(), text(&out)));
    assert!(py.contains("\"0 6 * * *\"") || py.contains("'0 6 * * *'"), "the schedule is carried over");
    assert!(py.contains("ingest.google_ads") && py.contains("model.mdp_marketing.stg_google_ads__ad_daily"));
    let check =
        Command::new("python3").args(["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())"]).arg(&file).output();
    match check {
        Ok(o) => assert!(o.status.success(), "valid Python: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) if require_airflow() => panic!("MDP_TEST_REQUIRE_AIRFLOW=1 but python3 cannot run: {e}"),
        Err(_) => eprintln!("NOTICE: python3 not found; the Python syntax check was skipped"),
    }
    let out = run(&project, &["airflow", "export", "--out", "dags_layers", "--granularity", "layer"]);
    assert!(out.status.success(), "{}", text(&out));
    let py = std::fs::read_to_string(project.join("dags_layers/mdp_project__daily.py")).unwrap();
    assert!(py.contains("build.mdp_marketing.staging.google_ads"), "{py}");

    // Apache Airflow itself imports both files (`.ci/run` installs it in a venv when it can).
    let Ok(python) = std::env::var("MDP_TEST_AIRFLOW_PYTHON") else {
        assert!(
            !require_airflow(),
            "MDP_TEST_REQUIRE_AIRFLOW=1 but MDP_TEST_AIRFLOW_PYTHON is not set, so Apache Airflow cannot import the \
             exported DAGs: set it to the python of a venv with apache-airflow installed (.ci/run makes one), or \
             unset MDP_TEST_REQUIRE_AIRFLOW"
        );
        eprintln!("NOTICE: MDP_TEST_AIRFLOW_PYTHON is not set; the files were not imported by Apache Airflow");
        return;
    };
    let script = r#"
import json, sys
from airflow.models import DagBag
out = {}
for folder in sys.argv[1:]:
    bag = DagBag(folder, include_examples=False)
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["mdp_project__daily"]
    out[folder] = {
        "tasks": len(dag.tasks),
        "schedule": str(dag.schedule_interval),
        "downstream": sorted(next(t for t in dag.tasks if t.task_id.startswith("ingest.google_ads.")).downstream_task_ids),
        "retries": next(t for t in dag.tasks if t.task_id.startswith("ingest.google_ads.")).retries,
    }
print(json.dumps(out))
"#;
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .args(["-c", script])
        .arg(project.join("dags"))
        .arg(project.join("dags_layers"))
        .env("AIRFLOW_HOME", home.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "Airflow imports the DAGs: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let nodes = &seen[project.join("dags").to_str().unwrap()];
    let layers = &seen[project.join("dags_layers").to_str().unwrap()];
    assert_eq!(nodes["schedule"], "0 6 * * *");
    assert!(nodes["tasks"].as_u64().unwrap() > 200, "{nodes}");
    assert_eq!(nodes["retries"], 0, "the schedule's `retries: 0` is carried over");
    let downstream: Vec<&str> = nodes["downstream"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(downstream.contains(&"model.mdp_marketing.stg_google_ads__ad_daily"), "{downstream:?}");
    assert!(
        !downstream.iter().any(|d| d.contains("meta_ads")),
        "Google's ingest feeds Google's models only: {downstream:?}"
    );
    assert!(layers["tasks"].as_u64().unwrap() < 20, "{layers}");
}
