//! `mdp check` end to end: ingest from the sandbox and build the marts, then the monitors pass on
//! healthy data; made unhealthy through `mdp sql` (one day's spend multiplied, a day's rows deleted,
//! a field added to the latest payloads, "today" moved ahead), the right check fails or warns with
//! the right observed and expected values and a sample query that returns the rows; a KPI target
//! breach warns; the transform's tests land in the same `check_results`. On DuckDB and Postgres.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use mdp_warehouse::{connect, string_rows, Access, ConnectOptions};
use serde_json::Value;

fn build(project: &Path) -> Output {
    mdp().arg("build").current_dir(project).output().unwrap()
}

fn sql(project: &Path, statement: &str) {
    let out = mdp().args(["sql", statement]).current_dir(project).output().unwrap();
    assert!(out.status.success(), "{statement}\n{}", text(&out));
}

/// `mdp check --json` with extra arguments: (exit code, the JSON report).
fn check(project: &Path, extra: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut command = mdp();
    command.args(["check", "--json"]).args(extra).current_dir(project);
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("mdp check --json printed JSON ({e}):\n{}", text(&out)));
    (out.status.code().unwrap(), json)
}

fn checks<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["checks"].as_array().unwrap().iter().filter(|c| c["check_kind"] == kind).collect()
}

fn named<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check_name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn status(c: &Value) -> &str {
    c["status"].as_str().unwrap()
}

fn describe(cs: &[&Value]) -> String {
    cs.iter()
        .map(|c| {
            format!("{} {}: {} | {} | {}", c["status"], c["check_name"], c["observed"], c["expected"], c["message"])
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first account id of a platform in the sandbox.
fn account(sandbox: &SandboxProcess, platform: &str) -> String {
    let accounts = get_json(&format!("{}/_sandbox/accounts", sandbox.url));
    accounts["accounts"][platform][0]["id"].as_str().unwrap().to_string()
}

const KPI_SECTION: &str = "checks:\n  kpi_targets:\n    - { name: cpa_cap, metric: cpa, max: 0.01, level: campaign, window_days: 7 }\n    - { name: ctr_floor, metric: ctr, min: 0, level: account }\n";

fn add_checks_section(project: &Path) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{config}{KPI_SECTION}")).unwrap();
}

/// Healthy data: no monitor fails; the KPI target that every campaign breaches warns, with a sample
/// query that lists exactly the breaching campaigns. Returns the run's report.
fn assert_healthy(project: &Path, run_sql: &dyn Fn(&str) -> Vec<Vec<Option<String>>>) -> Value {
    let (code, report) = check(project, &[], &[]);
    let all: Vec<&Value> = report["checks"].as_array().unwrap().iter().collect();
    let bad: Vec<&Value> = all.iter().copied().filter(|c| matches!(status(c), "fail" | "error")).collect();
    assert!(bad.is_empty(), "healthy data: nothing fails\n{}", describe(&bad));
    assert_eq!(code, 0, "{report:#}");
    for kind in ["freshness", "volume", "spend_anomaly", "zero_spend", "schema_drift", "kpi_target"] {
        assert!(!checks(&report, kind).is_empty(), "{kind} ran");
    }
    // Every configured account of every platform: one freshness result per daily stream, all fresh.
    let fresh = checks(&report, "freshness");
    assert!(fresh.iter().all(|c| status(c) == "pass"), "{}", describe(&fresh));
    assert!(fresh.len() >= 8, "2 accounts × 4 platforms at least: {}", fresh.len());
    for c in checks(&report, "spend_anomaly").iter().chain(checks(&report, "volume").iter()) {
        assert!(matches!(status(c), "pass" | "warn"), "{}", describe(&[c]));
    }
    // The impossible CPA cap warns (never fails: KPI targets are warnings by default).
    let cpa = named(&report, "kpi_target.cpa_cap");
    assert_eq!(status(cpa), "warn", "{cpa:#}");
    let breaching = cpa["failing_rows"].as_i64().unwrap();
    assert!(breaching > 0);
    assert!(cpa["expected"].as_str().unwrap().contains("at most 0.01 USD"), "{cpa:#}");
    let rows = run_sql(cpa["sample_query"].as_str().unwrap());
    assert_eq!(rows.len() as i64, breaching, "the sample query lists the breaching campaigns");
    assert_eq!(status(named(&report, "kpi_target.ctr_floor")), "pass");
    report
}

/// Rows of a query on the project's DuckDB warehouse.
fn duck(project: &Path) -> impl Fn(&str) -> Vec<Vec<Option<String>>> + '_ {
    move |sql: &str| query(project, sql)
}

#[test]
fn duckdb_monitors_pass_on_healthy_data_and_catch_each_kind_of_breakage() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    add_checks_section(&project);

    // Before anything is loaded: the monitors say what to run, they do not crash.
    let (code, report) = check(&project, &[], &[]);
    assert_eq!(code, 1, "never-loaded streams fail freshness");
    let f = checks(&report, "freshness");
    assert!(
        f.iter().all(|c| status(c) == "fail" && c["observed"].as_str().unwrap().contains("never")),
        "{}",
        describe(&f)
    );
    assert!(f[0]["message"].as_str().unwrap().contains("mdp ingest --source"), "{}", describe(&f));
    let spend = named(&report, "spend_anomaly");
    assert_eq!(status(spend), "skipped");
    assert!(spend["message"].as_str().unwrap().contains("mdp build"), "{spend:#}");

    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = build(&project);
    assert!(out.status.success(), "{}", text(&out));

    // The build's tests are in check_results: schema tests as `test`, the package's reconciliations
    // as `reconciliation`, each with its compiled query.
    let stored = query(
        &project,
        "SELECT r.check_kind, r.status, count(*), count(r.sample_query) FROM mdp_meta.check_results r \
         JOIN mdp_meta.runs USING (run_id) WHERE command = 'build' GROUP BY r.check_kind, r.status ORDER BY 1, 2",
    );
    let find = |kind: &str| stored.iter().find(|r| r[0].as_deref() == Some(kind)).cloned();
    let tests = find("test").unwrap_or_else(|| panic!("{stored:?}"));
    assert_eq!(tests[1].as_deref(), Some("pass"));
    assert!(tests[2].as_deref().unwrap().parse::<i64>().unwrap() > 100, "{stored:?}");
    assert_eq!(tests[2], tests[3], "every test has its query");
    let reconciliations = find("reconciliation").unwrap_or_else(|| panic!("{stored:?}"));
    assert_eq!(reconciliations[1].as_deref(), Some("pass"));
    assert_eq!(reconciliations[2].as_deref(), Some("4"), "{stored:?}");

    let run = duck(&project);
    let report = assert_healthy(&project, &run);
    let meta = account(&sandbox, "meta_ads");
    let meta_breaches_before =
        named(&report, &format!("spend_anomaly.meta_ads.{meta}"))["failing_rows"].as_i64().unwrap();
    // A single load: no earlier payloads to drift from.
    let drift = checks(&report, "schema_drift");
    assert!(drift.iter().all(|c| matches!(status(c), "pass" | "skipped")), "{}", describe(&drift));
    // The results are stored under the run, one row each.
    let run_id = report["run_id"].as_str().unwrap();
    let stored = query(
        &project,
        &format!("SELECT count(*), count(DISTINCT check_name) FROM mdp_meta.check_results WHERE run_id = '{run_id}'"),
    );
    let n = report["checks"].as_array().unwrap().len().to_string();
    assert_eq!(stored[0], [Some(n.clone()), Some(n)]);
    let command = query(&project, &format!("SELECT command, status FROM mdp_meta.runs WHERE run_id = '{run_id}'"));
    assert_eq!(command[0], [Some("check".into()), Some("success".into())]);

    // A second (incremental) load, by `mdp pipeline`: it ends with a `checks` task, whose results
    // are stored under the pipeline's run beside its tests'.
    let out = mdp().args(["pipeline", "--retry-delay", "0"]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let pipeline = query(&project, "SELECT run_id FROM mdp_meta.runs WHERE command = 'pipeline'");
    let pipeline = pipeline[0][0].clone().unwrap();
    let task = query(
        &project,
        &format!("SELECT state, log FROM mdp_meta.task_instances WHERE run_id = '{pipeline}' AND task_id = 'checks'"),
    );
    assert_eq!(task[0][0].as_deref(), Some("success"), "{task:?}");
    assert!(task[0][1].as_deref().unwrap().contains(" checks, "), "{task:?}");
    let kinds: Vec<String> = query(
        &project,
        &format!("SELECT DISTINCT check_kind FROM mdp_meta.check_results WHERE run_id = '{pipeline}' ORDER BY 1"),
    )
    .into_iter()
    .map(|r| r[0].clone().unwrap())
    .collect();
    assert_eq!(
        kinds,
        [
            "api_version",
            "conversion_definition",
            "freshness",
            "kpi_target",
            "reconciliation",
            "schema_drift",
            "spend_anomaly",
            "test",
            "volume",
            "zero_spend"
        ]
    );
    // Still no drift, now judged against the first load.
    let (code, report) = check(&project, &["--kind", "schema_drift"], &[]);
    assert_eq!(code, 0);
    let drift = checks(&report, "schema_drift");
    assert!(drift.iter().all(|c| status(c) == "pass"), "{}", describe(&drift));
    assert!(drift.iter().any(|c| c["failing_rows"] == 0 && c["expected"].as_str().unwrap().contains("fields")));
    assert_eq!(report["checks"].as_array().unwrap().len(), drift.len(), "--kind keeps only that kind");

    // Schema drift: a field appears in the latest load's TikTok payloads.
    sql(
        &project,
        "UPDATE raw.tiktok_ads__ad_daily SET _mdp_payload = json_merge_patch(_mdp_payload, '{\"new_metric\": 1}') \
         WHERE _mdp_run_id = (SELECT _mdp_run_id FROM raw.tiktok_ads__ad_daily ORDER BY _mdp_extracted_at DESC LIMIT 1)",
    );
    let (code, report) = check(&project, &["--select", "schema_drift.tiktok_ads"], &[]);
    assert_eq!(code, 0, "drift warns");
    let c = named(&report, "schema_drift.tiktok_ads.ad_daily");
    assert_eq!(status(c), "warn", "{c:#}");
    assert_eq!(c["observed"], "appeared: new_metric; vanished: none");
    assert_eq!(c["failing_rows"], 1);
    assert_eq!(status(named(&report, "schema_drift.tiktok_ads.campaigns")), "pass");
    let rows = run(c["sample_query"].as_str().unwrap());
    assert_eq!(rows, [[Some("new_metric".to_string()), Some("1".to_string()), Some("0".to_string())]]);

    // Spend anomaly: one Meta account's spend on 2026-06-28 multiplied by 20.
    sql(
        &project,
        &format!("UPDATE raw.meta_ads__ad_daily SET spend = spend * 20 WHERE account_id = '{meta}' AND date = DATE '2026-06-28'"),
    );
    // Volume and zero spend: one Google account's 2026-06-27 rows deleted.
    let google = account(&sandbox, "google_ads");
    for stream in ["campaign_daily", "ad_daily"] {
        sql(
            &project,
            &format!("DELETE FROM raw.google_ads__{stream} WHERE account_id = '{google}' AND date = DATE '2026-06-27'"),
        );
    }
    let out = build(&project);
    assert!(out.status.success(), "{}", text(&out));
    let (code, report) = check(&project, &[], &[]);
    assert_eq!(code, 1, "failures exit 1");

    let c = named(&report, &format!("spend_anomaly.meta_ads.{meta}"));
    assert_eq!(status(c), "fail", "{c:#}");
    assert!(c["observed"].as_str().unwrap().starts_with("2026-06-28: spend "), "{c:#}");
    assert_eq!(c["failing_rows"].as_i64(), Some(meta_breaches_before + 1), "one more anomalous day: {c:#}");
    let expected = c["expected"].as_str().unwrap();
    assert!(expected.contains("of the 28 days before") && expected.contains("fail at |z| ≥ 5"), "{c:#}");
    let rows = run(c["sample_query"].as_str().unwrap());
    let day = rows.iter().find(|r| r[0].as_deref() == Some("2026-06-28")).expect("the sample shows the day");
    let raw_spend = run(&format!(
        "SELECT CAST(sum(spend) AS VARCHAR) FROM raw.meta_ads__ad_daily WHERE account_id = '{meta}' AND date = DATE '2026-06-28'"
    ));
    assert_eq!(
        day[1].as_deref().map(|s| s.parse::<f64>().unwrap()),
        raw_spend[0][0].as_deref().map(|s| s.parse::<f64>().unwrap()),
        "the sample query shows the multiplied spend"
    );
    // Other accounts are not dragged in.
    let other = checks(&report, "spend_anomaly");
    assert!(other
        .iter()
        .filter(|c| c["check_name"] != format!("spend_anomaly.meta_ads.{meta}"))
        .all(|c| status(c) != "fail"));

    let c = named(&report, &format!("volume.google_ads.campaign_daily.{google}"));
    assert_eq!(status(c), "fail", "{c:#}");
    assert!(
        c["observed"].as_str().unwrap().starts_with("2026-06-27 (Saturday): 0 rows (100% from the baseline)"),
        "{c:#}"
    );
    assert!(c["expected"].as_str().unwrap().contains("median of 4 earlier Saturdays"), "{c:#}");
    let rows = run(c["sample_query"].as_str().unwrap());
    assert!(rows.iter().all(|r| r[0].as_deref() != Some("2026-06-27")), "the sample shows the gap");
    assert!(rows.iter().any(|r| r[0].as_deref() == Some("2026-06-20")));

    let c = named(&report, &format!("zero_spend.google_ads.{google}"));
    assert_eq!(status(c), "fail", "{c:#}");
    assert_eq!(c["observed"], "no spend on 2026-06-27 (no row)");
    assert_eq!(c["failing_rows"], 1);

    // The table output says the same, for people.
    let out = mdp().arg("check").current_dir(&project).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    let line = table.lines().find(|l| l.contains(&format!("spend_anomaly.meta_ads.{meta}"))).unwrap();
    assert!(line.starts_with("FAIL"), "{table}");
    assert!(text(&out).contains(" fail, "), "the summary counts failures: {}", text(&out));

    // Freshness: ten days later, nothing new was loaded.
    let (code, report) = check(&project, &["--kind", "freshness"], &[("MDP_TODAY", "2026-07-10")]);
    assert_eq!(code, 1);
    let c = named(&report, &format!("freshness.google_ads.campaign_daily.{google}"));
    assert_eq!(status(c), "fail");
    assert!(
        c["observed"].as_str().unwrap().starts_with("latest date 2026-06-30 (10 days behind 2026-07-10); last loaded "),
        "{c:#}"
    );
    assert!(c["expected"].as_str().unwrap().starts_with("at most 1 day behind (fail after 3)"), "{c:#}");
    let rows = run(c["sample_query"].as_str().unwrap());
    assert_eq!(rows[0][1].as_deref(), Some("2026-06-30"));
    // Three days later only warns.
    let (code, report) =
        check(&project, &["--select", "freshness.google_ads.campaign_daily"], &[("MDP_TODAY", "2026-07-02")]);
    assert_eq!(code, 0);
    assert!(checks(&report, "freshness").iter().all(|c| status(c) == "warn"), "{report:#}");

    // Bad arguments are refused with the list of kinds.
    let out = mdp().args(["check", "--kind", "freshnes"]).current_dir(&project).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("expected one of freshness, volume"), "{}", text(&out));
}

/// Rows of a query on a Postgres database.
fn pg_rows(url: &str, metadata_schema: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    let options = ConnectOptions::postgres(url, "test").with_metadata_schema(metadata_schema);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let opened = connect(&options, Access::Read).await.unwrap();
        let rows = string_rows(&opened.warehouse.query_all(sql).await.unwrap()).unwrap();
        opened.warehouse.close().await.unwrap();
        rows
    })
}

#[test]
fn postgres_spend_anomaly_volume_and_drift_are_computed_in_the_warehouse() {
    let Some(base) = postgres_url("Postgres checks test") else { return };
    // A database of its own: the raw schema is called `raw` in every project.
    let database = "mdp_checks_test";
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let opened = connect(&ConnectOptions::postgres(base.clone(), "test"), Access::Read).await.unwrap();
        let _ = opened.warehouse.execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
        opened.warehouse.execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        opened.warehouse.close().await.unwrap();
    });
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => panic!("MDP_TEST_POSTGRES_URL ends with a database name"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    use_postgres(&project, "mdp_meta");
    std::fs::remove_file(project.join(".pg-metadata-schema")).unwrap();
    add_checks_section(&project);
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap().replace("${MDP_TEST_POSTGRES_URL}", &url);
    std::fs::write(&file, config).unwrap();
    let run = |sql: &str| pg_rows(&url, "mdp_meta", sql);

    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = build(&project);
    assert!(out.status.success(), "{}", text(&out));
    let report = assert_healthy(&project, &run);
    let drift = checks(&report, "schema_drift");
    assert!(drift.iter().all(|c| status(c) == "pass"), "{}", describe(&drift));

    let meta = account(&sandbox, "meta_ads");
    sql(
        &project,
        &format!("UPDATE raw.meta_ads__ad_daily SET spend = spend * 20 WHERE account_id = '{meta}' AND date = DATE '2026-06-28'"),
    );
    let google = account(&sandbox, "google_ads");
    sql(
        &project,
        &format!(
            "DELETE FROM raw.google_ads__campaign_daily WHERE account_id = '{google}' AND date = DATE '2026-06-27'"
        ),
    );
    sql(
        &project,
        "UPDATE raw.linkedin_ads__ad_daily SET _mdp_payload = _mdp_payload - 'pivotValues' \
         WHERE _mdp_run_id = (SELECT _mdp_run_id FROM raw.linkedin_ads__ad_daily ORDER BY _mdp_extracted_at DESC LIMIT 1)",
    );
    let out = build(&project);
    assert!(out.status.success(), "{}", text(&out));
    let (code, report) = check(&project, &[], &[]);
    assert_eq!(code, 1);
    let c = named(&report, &format!("spend_anomaly.meta_ads.{meta}"));
    assert_eq!(status(c), "fail", "{c:#}");
    assert!(c["observed"].as_str().unwrap().starts_with("2026-06-28: spend "), "{c:#}");
    let rows = run(c["sample_query"].as_str().unwrap());
    assert!(rows.iter().any(|r| r[0].as_deref() == Some("2026-06-28")));
    let c = named(&report, &format!("volume.google_ads.campaign_daily.{google}"));
    assert_eq!(status(c), "fail", "{c:#}");
    assert!(c["observed"].as_str().unwrap().starts_with("2026-06-27 (Saturday): 0 rows"), "{c:#}");
    let c = named(&report, "schema_drift.linkedin_ads.ad_daily");
    assert_eq!(status(c), "warn", "{c:#}");
    assert_eq!(c["observed"], "appeared: none; vanished: pivotValues");
    let rows = run(c["sample_query"].as_str().unwrap());
    assert_eq!(rows, [[Some("pivotValues".to_string()), Some("0".to_string()), Some("1".to_string())]]);
    let run_id = report["run_id"].as_str().unwrap();
    let stored = run(&format!(
        "SELECT status FROM mdp_meta.check_results WHERE run_id = '{run_id}' AND check_name = 'spend_anomaly.meta_ads.{meta}'"
    ));
    assert_eq!(stored, [[Some("fail".to_string())]]);

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let opened = connect(&ConnectOptions::postgres(base.clone(), "test"), Access::Read).await.unwrap();
        let _ = opened.warehouse.execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).await;
        opened.warehouse.close().await.unwrap();
    });
}
