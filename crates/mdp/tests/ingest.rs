//! `mdp ingest` end to end, over real HTTP against `mdp sandbox`, into DuckDB: exact reconciliation
//! with the sandbox's ground truth, idempotent re-runs, restatements, a SIGKILL mid-ingest, clearly
//! reported failures, and no token anywhere.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A fingerprint of every raw table's content, load metadata (run, time, window) excluded.
fn fingerprint(project: &Path) -> Vec<(String, String)> {
    let tables =
        query(project, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY 1");
    tables
        .into_iter()
        .map(|t| {
            let name = t[0].clone().unwrap();
            let rows = query(
                project,
                &format!(
                    "SELECT count(*) || ':' || coalesce(md5(string_agg(CAST(r AS VARCHAR), '|' ORDER BY CAST(r AS VARCHAR))), '') \
                     FROM (SELECT COLUMNS(lambda c: NOT starts_with(c, '_mdp_') OR c IN ('_mdp_payload', '_mdp_snapshot_date')) FROM raw.\"{name}\") r"
                ),
            );
            (name, rows[0][0].clone().unwrap())
        })
        .collect()
}

#[test]
fn an_ingest_reconciles_exactly_and_a_rerun_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("rows/s"), "prints a summary:\n{}", text(&out));
    assert_matches_truth(&project, &sandbox, &PLATFORMS);
    let first = fingerprint(&project);
    assert!(first.len() >= 4 * 5, "raw tables per platform and stream: {first:?}");

    // The same windows again: identical raw tables (the look-back re-reads the last 30 days).
    let out = ingest(&project, &["--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints the report");
    assert!(report["rows"].as_u64().unwrap() > 0);
    assert_eq!(fingerprint(&project), first, "re-ingesting the same windows leaves identical raw tables");

    // A restatement: the next incremental run picks up the new conversions, with no duplicates.
    post_json(&format!("{}/_sandbox/restate", sandbox.url), serde_json::json!({}));
    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_matches_truth(&project, &sandbox, &PLATFORMS);
    assert_ne!(fingerprint(&project), first, "restated conversions arrived");

    // No token value in the warehouse: raw tables, metadata, run history.
    let relations = query(&project, "SELECT table_schema, table_name FROM information_schema.tables");
    for r in relations {
        let (schema, table) = (r[0].clone().unwrap(), r[1].clone().unwrap());
        let hits = query(
            &project,
            &format!("SELECT count(*) FROM \"{schema}\".\"{table}\" t WHERE CAST(t AS VARCHAR) LIKE '%{TOKEN}%'"),
        );
        assert_eq!(hits[0][0].as_deref(), Some("0"), "token found in {schema}.{table}");
    }
}

#[test]
fn failures_are_reported_with_platform_account_and_window_and_keep_other_data() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    // TikTok's token expires for the rest of this run.
    post_json(
        &format!("{}/_sandbox/faults", sandbox.url),
        serde_json::json!({"platform": "tiktok_ads", "kind": "unauthorized", "count": 1000}),
    );
    let out = mdp().args(["-v", "ingest"]).current_dir(&project).output().unwrap();
    let message = text(&out);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("tiktok_ads") && message.contains("access token was refused"), "{message}");
    assert!(!message.contains(TOKEN), "the token never appears in output or logs");
    // The other platforms loaded.
    let rows = query(&project, "SELECT count(*) FROM raw.meta_ads__ad_daily");
    assert_ne!(rows[0][0].as_deref(), Some("0"));
    let runs = query(&project, "SELECT status, error FROM mdp_meta.runs WHERE command = 'ingest'");
    assert_eq!(runs[0][0].as_deref(), Some("failed"));
    assert!(runs[0][1].as_deref().unwrap().contains("tiktok_ads"), "{runs:?}");
}

#[test]
fn a_metric_the_platform_retired_is_dropped_with_a_warning_and_loads_as_null() {
    let sandbox = start_sandbox();
    post_json(
        &format!("{}/_sandbox/retire_field", sandbox.url),
        serde_json::json!({"platform": "tiktok_ads", "field": "likes"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), &sandbox);
    let out = ingest(&project, &["--source", "tiktok_ads"]);
    assert!(out.status.success(), "an optional metric does not fail the run:\n{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("refused the optional field `likes`") && log.contains("skip_fields"),
        "the warning names the field and the option:\n{log}"
    );
    assert_eq!(log.matches("refused the optional field").count(), 1, "one warning per source and run:\n{log}");
    let counts = query(&project, "SELECT count(*), count(likes), count(comments) FROM raw.tiktok_ads__ad_daily");
    let [rows, likes, comments] = [0, 1, 2].map(|i| counts[0][i].clone().unwrap().parse::<i64>().unwrap());
    assert!(rows > 0 && likes == 0 && comments == rows, "likes NULL, the rest read: {counts:?}");
    assert_matches_truth(&project, &sandbox, &["tiktok_ads"]);

    // Skipped by configuration: not asked for, no warning.
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file)
        .unwrap()
        .replace("  - platform: tiktok_ads\n", "  - platform: tiktok_ads\n    options: { skip_fields: [likes] }\n");
    std::fs::write(&file, config).unwrap();
    let out = ingest(&project, &["--source", "tiktok_ads"]);
    assert!(out.status.success() && !text(&out).contains("refused the optional field"), "{}", text(&out));
}

#[test]
fn a_sigkill_mid_ingest_then_a_rerun_ends_identical_to_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let reference = project(&tmp.path().join("reference"), &sandbox);
    let out = ingest(&reference, &[]);
    assert!(out.status.success(), "{}", text(&out));

    let killed = project(&tmp.path().join("killed"), &sandbox);
    // Slow the next 200 answers by 0.1 s (~5 s over 4 concurrent accounts): the run is surely mid-way when killed.
    post_json(
        &format!("{}/_sandbox/faults", sandbox.url),
        serde_json::json!({"kind": "slow", "millis": 100, "count": 200}),
    );
    let mut child =
        mdp().arg("ingest").current_dir(&killed).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        assert!(child.try_wait().unwrap().is_none(), "the slowed ingest should still be running");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let out = ingest(&killed, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("stale"), "the rerun notices the killed run:\n{}", text(&out));
    assert_eq!(fingerprint(&killed), fingerprint(&reference));
}

#[test]
fn the_demo_ingests_builds_the_marts_reconciles_and_reruns_incrementally() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    for run in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_mdp")).arg("demo").arg(&dir).output().unwrap();
        let message = text(&out);
        assert!(out.status.success(), "run {run}:\n{message}");
        assert!(
            message.contains(
                "reconciliation of main_marts.fct_account_performance_daily with the sandbox's ground truth: \
                 720 account-days, 0 difference(s)"
            ),
            "{message}"
        );
        assert!(
            message.lines().any(|l| l.starts_with("build: ")
                && l.contains("tests passed")
                && !l.contains("failed")
                && !l.contains("skipped")),
            "every model built and every test (reconciliation included) passed:\n{message}"
        );
        for platform in PLATFORMS {
            assert!(
                message
                    .lines()
                    .any(|l| l.starts_with(platform) && !l.contains("ROAS") && l.split_whitespace().count() == 10),
                "KPI row for {platform}:\n{message}"
            );
        }
        assert!(message.contains("monitors: 71 checks"), "the demo runs every monitor:\n{message}");
    }
    // The monitors' results are recorded with the demo's runs: fresh data, no schema drift.
    let rows = query(
        &dir,
        "SELECT check_kind, status, count(*) FROM mdp_meta.check_results GROUP BY check_kind, status ORDER BY 1, 2",
    );
    let count = |kind: &str, status: &str| {
        rows.iter()
            .find(|r| r[0].as_deref() == Some(kind) && r[1].as_deref() == Some(status))
            .and_then(|r| r[2].as_deref()?.parse::<usize>().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("freshness", "pass"), 2 * 10, "every daily stream fresh, by date and by load time: {rows:?}");
    assert_eq!(count("schema_drift", "pass"), 2 * 21, "{rows:?}");
    let config = std::fs::read_to_string(dir.join("mdp.yml")).unwrap();
    assert!(!config.contains("sandbox-demo-token"), "the demo references its token file, never the value");
}

/// On a server warehouse (a project pointed there, `run` running `mdp` in it): start from an empty raw
/// schema, ingest, reconcile exactly with the sandbox's truth, ingest again, reconcile again, and find
/// no duplicated row (`distinct_key` spells `account_id|date|ad_id` in the engine's SQL).
fn ingest_reconciles_and_reruns(
    project: &Path,
    sandbox: &SandboxProcess,
    run: impl Fn(&[&str]) -> std::process::Output,
    reset: &str,
    distinct_key: &str,
) {
    let out = run(&["sql", reset]);
    assert!(out.status.success(), "{}", text(&out));
    for _ in 0..2 {
        let out = run(&["ingest"]);
        assert!(out.status.success(), "{}", text(&out));
        assert_matches_truth(project, sandbox, &PLATFORMS);
    }
    let counts =
        query(project, &format!("SELECT count(*), count(DISTINCT {distinct_key}) FROM raw.meta_ads__ad_daily"));
    assert_eq!(counts[0][0], counts[0][1], "no duplicated rows after a rerun");
}

#[test]
fn postgres_ingest_reconciles_exactly_and_reruns_idempotently() {
    if postgres_url("Postgres ingest test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    use_postgres(&project, "mdp_meta_ingest_test");
    let run = |args: &[&str]| mdp().args(args).current_dir(&project).output().unwrap();
    // The raw schema is shared in the test database: start from a clean one.
    ingest_reconciles_and_reruns(
        &project,
        &sandbox,
        run,
        "DROP SCHEMA IF EXISTS raw CASCADE",
        "(account_id, date, ad_id)",
    );
    let _ = run(&["sql", "DROP SCHEMA raw CASCADE; DROP SCHEMA mdp_meta_ingest_test CASCADE"]);
}

#[test]
fn bigquery_ingest_reconciles_exactly_and_reruns_idempotently() {
    if bigquery_url("BigQuery ingest test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    // A metadata dataset of this run's own: the stand-in keeps its datasets while it runs.
    let metadata = format!("mdp_meta_ingest_{}", std::process::id());
    use_bigquery(&project, &metadata);
    let run = |args: &[&str]| mdp().args(args).current_dir(&project).output().unwrap();
    let reset = "DROP SCHEMA IF EXISTS raw CASCADE";
    let key = "CONCAT(account_id, '|', CAST(date AS STRING), '|', ad_id)";
    ingest_reconciles_and_reruns(&project, &sandbox, run, reset, key);
    let staged = query(
        &project,
        "SELECT count(*) FROM raw.INFORMATION_SCHEMA.TABLES WHERE STARTS_WITH(table_name, '_mdp_stage_')",
    );
    assert_eq!(staged[0][0].as_deref(), Some("0"), "every staging table was deleted after its window");
    let _ = run(&["sql", &format!("{reset}; DROP SCHEMA IF EXISTS {metadata} CASCADE")]);
}

#[test]
fn snowflake_ingest_reconciles_exactly_and_reruns_idempotently() {
    if snowflake_url("Snowflake ingest test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    let metadata = format!("mdp_meta_ingest_{}", std::process::id());
    use_snowflake(&project, &metadata);
    let run = |args: &[&str]| {
        mdp().args(args).env("MDP_TEST_SNOWFLAKE_PASSWORD", "any").current_dir(&project).output().unwrap()
    };
    let reset = "DROP SCHEMA IF EXISTS \"raw\" CASCADE";
    let key = "account_id || '|' || CAST(date AS VARCHAR) || '|' || ad_id";
    ingest_reconciles_and_reruns(&project, &sandbox, run, reset, key);
    let _ = run(&["sql", &format!("{reset}; DROP SCHEMA IF EXISTS \"{metadata}\" CASCADE")]);
}
