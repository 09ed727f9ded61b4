//! The alerts glue over a real warehouse (DuckDB, and Postgres when `MDP_TEST_POSTGRES_URL` is set):
//! runs and check results recorded in the metadata schema become incidents, each announced once when
//! it opens and once when it resolves.

use std::path::Path;

use mdp_monitor::alerts::{after_run, AlertContext};
use mdp_project::alerts::{AlertEvent, AlertsConfig, NotifierConfig, NotifierKind};
use mdp_project::{Secret, SecretError, SecretRef};
use mdp_warehouse::meta::{CheckResult, Metadata, RunStatus};
use mdp_warehouse::{connect, Access, ConnectOptions, LockHolder, Warehouse};

fn no_secrets(reference: &SecretRef) -> Result<Secret, SecretError> {
    Err(SecretError::EnvNotSet { name: reference.describe() })
}

/// Records a run (and its checks) like a command would, then runs the alerts; returns the lines the
/// command hook appended since the last call.
async fn run(
    w: &dyn Warehouse,
    dir: &Path,
    run_id: &str,
    failed: bool,
    checks: &[(&str, &str)],
    seen: &mut usize,
) -> Vec<String> {
    let m = Metadata::new(w);
    m.start_run(&LockHolder::current(run_id, "schedule:daily")).await.unwrap();
    for (name, status) in checks {
        m.record_check(&CheckResult {
            run_id,
            check_name: name,
            check_kind: "volume",
            relation: None,
            status,
            observed: Some("10"),
            expected: Some(">= 100"),
            failing_rows: None,
            message: Some("rows fell"),
            sample_query: None,
        })
        .await
        .unwrap();
    }
    let (status, error) = if failed { (RunStatus::Failed, Some("1 failed")) } else { (RunStatus::Success, None) };
    m.finish_run(run_id, status, error).await.unwrap();
    let config = AlertsConfig {
        notifiers: vec![NotifierConfig {
            name: "log".into(),
            kind: NotifierKind::Command,
            url: None,
            command: vec!["sh".into(), "-c".into(), "echo \"$MDP_ALERT_EVENT $MDP_ALERT_KEY\" >> alerts.log".into()],
            on: AlertEvent::all(),
            timeout_seconds: 10,
        }],
    };
    let context = AlertContext { project: "demo", project_root: dir, config: Some(&config), resolve: &no_secrets };
    let report = after_run(w, &context, run_id).await;
    assert!(report.failed.is_empty(), "{report:?}");
    let lines: Vec<String> =
        std::fs::read_to_string(dir.join("alerts.log")).unwrap_or_default().lines().map(str::to_string).collect();
    // Deliveries run side by side: compare them in a fixed order.
    let mut new = lines[*seen..].to_vec();
    new.sort();
    *seen = lines.len();
    new
}

async fn incidents_open_once_and_resolve_once(options: ConnectOptions, dir: &Path) {
    let opened = connect(&options, Access::Write(LockHolder::current("setup", "test"))).await.unwrap();
    let w = opened.warehouse.as_ref();
    let mut seen = 0;
    let volume = "volume.google_ads";
    assert_eq!(
        run(w, dir, "r1", true, &[(volume, "warn")], &mut seen).await,
        ["check_warned check:volume.google_ads", "run_failed run:schedule:daily"]
    );
    assert_eq!(
        run(w, dir, "r2", true, &[(volume, "fail")], &mut seen).await,
        ["check_failed check:volume.google_ads"],
        "the run stays red silently; the warning became a failure"
    );
    assert!(run(w, dir, "r3", true, &[(volume, "fail")], &mut seen).await.is_empty());
    assert_eq!(
        run(w, dir, "r4", false, &[(volume, "pass")], &mut seen).await,
        ["recovered check:volume.google_ads", "recovered run:schedule:daily"]
    );
    assert!(run(w, dir, "r5", false, &[(volume, "pass")], &mut seen).await.is_empty());
    assert_eq!(run(w, dir, "r6", true, &[], &mut seen).await, ["run_failed run:schedule:daily"]);

    let m = Metadata::new(w);
    let open = m.open_incidents().await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].incident_key.as_str(), open[0].opened_run_id.as_deref()), ("run:schedule:daily", Some("r6")));
    let all = m.recent_incidents(10).await.unwrap();
    assert_eq!(all.len(), 3);
    let check = all.iter().find(|i| i.kind == "check").unwrap();
    assert_eq!(check.status, "resolved");
    assert_eq!(check.opened_run_id.as_deref(), Some("r1"));
    assert_eq!(check.last_seen_run_id.as_deref(), Some("r4"));
    assert_eq!(check.last_status.as_deref(), Some("pass"));
    assert!(check.resolved_at.is_some_and(|r| r >= check.opened_at));
    assert_eq!(check.message.as_deref(), Some("rows fell"));
    if let ConnectOptions::Postgres { .. } = &options {
        let d = w.dialect();
        w.execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", d.quote_identifier(w.metadata_schema()).unwrap()))
            .await
            .unwrap();
    }
    opened.warehouse.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    incidents_open_once_and_resolve_once(ConnectOptions::duckdb(dir.path().join("w.duckdb")), dir.path()).await;
}

/// The test server's URL, or `None` (with a notice) to skip a Postgres test; a failure instead when
/// `MDP_TEST_REQUIRE_POSTGRES=1`, so that a machine with a server never passes these tests vacuously.
fn postgres_url(what: &str) -> Option<String> {
    match std::env::var("MDP_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("MDP_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") => panic!(
            "MDP_TEST_REQUIRE_POSTGRES=1 but MDP_TEST_POSTGRES_URL is not set, so the {what} cannot run: set it to \
             the test server's URL (e.g. postgres://postgres@127.0.0.1:5432/test), or unset MDP_TEST_REQUIRE_POSTGRES \
             to skip the Postgres variants"
        ),
        _ => {
            eprintln!("NOTICE: skipping the {what}: MDP_TEST_POSTGRES_URL is not set (.ci/run sets it)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    let Some(url) = postgres_url("Postgres incidents test") else { return };
    let dir = tempfile::tempdir().unwrap();
    let schema = format!("mdp_meta_incidents_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let options = ConnectOptions::postgres(url, "test server").with_metadata_schema(schema);
    incidents_open_once_and_resolve_once(options, dir.path()).await;
}
