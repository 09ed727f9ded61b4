//! The `mdp` binary end to end: real processes, real files, a real Postgres when one is given.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn mdp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mdp"));
    command.env_remove("MDP_PROJECT_DIR").env_remove("MDP_TARGET").env_remove("MDP_LOG");
    command
}

fn run(args: &[&str], dir: &Path) -> Output {
    mdp().args(args).current_dir(dir).output().expect("mdp runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn init_project(root: &Path) -> PathBuf {
    let out = run(&["init", "demo"], root);
    assert!(out.status.success(), "{}", text(&out));
    root.join("demo")
}

#[test]
fn help_lists_every_command_with_its_help_and_version_prints() {
    let out = run(&["--help"], Path::new("."));
    assert!(out.status.success());
    let help = text(&out);
    for (command, words) in [
        ("init", "Create a new project"),
        ("doctor", "Check the project file"),
        ("migrate", "metadata schema"),
        ("sql", "Run SQL"),
        ("bench", "Measure"),
        ("ingest", "Ingest the ad platforms into the raw layer"),
        ("sandbox", "imitations of the ad platforms' APIs"),
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(command))
            .unwrap_or_else(|| panic!("{command} in\n{help}"));
        assert!(line.contains(words), "{command}'s help line says what it does: {line}");
    }
    let version = text(&run(&["--version"], Path::new(".")));
    assert_eq!(version.trim(), format!("mdp {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn init_then_doctor_reports_a_healthy_project() {
    let tmp = tempfile::tempdir().unwrap();
    let project = init_project(tmp.path());
    for path in ["mdp.yml", "models", "seeds", "macros", "tests", ".gitignore"] {
        assert!(project.join(path).exists(), "init creates {path}");
    }
    let gitignore = std::fs::read_to_string(project.join(".gitignore")).unwrap();
    assert!(gitignore.contains("warehouse.duckdb") && gitignore.contains("target/"), "{gitignore}");

    let out = run(&["doctor"], &project);
    assert!(out.status.success(), "doctor must pass on a fresh project:\n{}", text(&out));
    assert!(text(&out).contains("healthy"), "{}", text(&out));

    // After the first write the warehouse and its metadata exist, and doctor says so.
    let out = run(&["migrate"], &project);
    assert!(out.status.success(), "{}", text(&out));
    assert!(project.join("warehouse.duckdb").exists());
    let out = run(&["doctor"], &project);
    assert!(out.status.success(), "{}", text(&out));
    let current = format!("version {} (current)", mdp_warehouse::meta::current_version());
    assert!(text(&out).contains(&current), "{}", text(&out));

    let again = run(&["init", "demo"], tmp.path());
    assert!(!again.status.success(), "init must not overwrite a project");
    assert!(text(&again).contains("mdp.yml"), "{}", text(&again));
}

#[test]
fn an_invalid_project_file_fails_with_file_line_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let project = init_project(tmp.path());
    let file = project.join("mdp.yml");
    let original = std::fs::read_to_string(&file).unwrap();
    let broken = original.replacen("currency: USD", "currency: dollars", 1);
    assert_ne!(broken, original, "the scaffold sets a reporting currency");
    std::fs::write(&file, &broken).unwrap();
    let line = broken.lines().position(|l| l.contains("currency: dollars")).unwrap() + 1;
    let out = run(&["doctor"], &project);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let message = text(&out);
    assert!(message.contains(&format!("mdp.yml:{line}:")), "names the line {line}:\n{message}");
    assert!(message.contains("currency") && message.contains("ISO 4217"), "{message}");
}

#[test]
fn doctor_names_missing_credentials_and_never_prints_present_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let project = init_project(tmp.path());
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap().replacen("enabled: false", "enabled: true", 1);
    std::fs::write(&file, config).unwrap();
    let out = mdp()
        .args(["doctor"])
        .current_dir(&project)
        .env("GOOGLE_ADS_ACCESS_TOKEN", "ya29.SUPER-SECRET-TOKEN")
        .env_remove("GOOGLE_ADS_DEVELOPER_TOKEN")
        .output()
        .unwrap();
    let message = text(&out);
    assert!(!message.contains("SUPER-SECRET"), "a secret leaked:\n{message}");
    assert!(message.contains("GOOGLE_ADS_ACCESS_TOKEN"), "{message}");
    // The developer token is optional for Google Ads: reported, but not a failure.
    assert!(message.contains("GOOGLE_ADS_DEVELOPER_TOKEN"), "{message}");
    assert!(out.status.success(), "only optional credentials are missing:\n{message}");

    let out = mdp().args(["doctor"]).current_dir(&project).env_remove("GOOGLE_ADS_ACCESS_TOKEN").output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("export GOOGLE_ADS_ACCESS_TOKEN"), "says what to do:\n{}", text(&out));
}

/// A writer that runs until killed: a query that takes far longer than the test.
fn long_writer(project: &Path, sql: &str) -> Child {
    mdp()
        .args(["sql", sql])
        .current_dir(project)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the long writer")
}

fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two real processes: the second writer is refused with the first one's run, time and pid; after a
/// `kill -9` the next writer detects the stale lock and the killed run is marked failed.
fn check_lock_contention_and_kill(project: &Path, schema: &str, slow_sql: &str, lock_visible: impl Fn() -> bool) {
    let mut first = long_writer(project, slow_sql);
    wait_until("the first writer to take the lock", &lock_visible);

    let out = run(&["migrate"], project);
    let message = text(&out);
    assert_eq!(out.status.code(), Some(75), "a second writer gets the lock error:\n{message}");
    assert!(message.contains("locked by run"), "{message}");
    assert!(message.contains(&format!("(pid {} on", first.id())), "names the holder's pid:\n{message}");
    assert!(message.contains(" since "), "{message}");

    // `mdp doctor` tells the truth: the warehouse is locked (not ✓), by whom, since when, what to do.
    let out = run(&["doctor"], project);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(75), "doctor exits as every command does on a locked warehouse:\n{report}");
    assert!(report.contains("⧗ warehouse") && report.contains("locked by run"), "{report}");
    assert!(report.contains(&format!("(pid {} on", first.id())) && report.contains(" since "), "{report}");
    assert!(report.contains("wait for it to finish"), "says what to do:\n{report}");
    assert!(!report.contains("✓ warehouse"), "{report}");
    assert!(report.contains("run `mdp doctor` again once it finishes"), "{report}");

    first.kill().unwrap(); // SIGKILL: no destructor, no clean release
    first.wait().unwrap();

    let mut attempts = 0;
    let out = loop {
        let out = run(&["migrate"], project);
        // Postgres drops a dead session's advisory lock as soon as it notices the closed socket.
        if out.status.code() == Some(75) && attempts < 150 {
            attempts += 1;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        break out;
    };
    assert!(out.status.success(), "the next writer proceeds:\n{}", text(&out));
    assert!(text(&out).contains("stale"), "and reports the stale lock:\n{}", text(&out));

    let query = format!("SELECT status, error FROM {schema}.runs WHERE command = 'sql'");
    let out = run(&["sql", "--read-only", &query], project);
    let runs = text(&out);
    assert!(out.status.success(), "{runs}");
    assert!(runs.contains("failed") && runs.contains("stopped without finishing"), "{runs}");

    let out = run(&["doctor"], project);
    assert!(out.status.success(), "with no writer left the warehouse is healthy again:\n{}", text(&out));
    assert!(text(&out).contains("✓ warehouse"), "{}", text(&out));
}

/// Point the project at `schema` for its metadata (and, for Postgres, at a server).
fn configure_warehouse(project: &Path, schema: &str, postgres: bool) {
    let file = project.join("mdp.yml");
    let mut config = std::fs::read_to_string(&file).unwrap();
    assert!(config.contains("metadata_schema: mdp_meta\n"), "the scaffold names the metadata schema");
    config = config.replacen("metadata_schema: mdp_meta\n", &format!("metadata_schema: {schema}\n"), 1);
    if postgres {
        config = config.replacen("  default: local\n", "  default: pg\n", 1).replacen(
            "  targets:\n",
            "  targets:\n    pg:\n      type: postgres\n      url: ${MDP_TEST_POSTGRES_URL}\n",
            1,
        );
    }
    std::fs::write(&file, config).unwrap();
}

#[test]
fn duckdb_second_writer_gets_the_lock_error_and_a_killed_writer_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let project = init_project(tmp.path());
    configure_warehouse(&project, "mdp_meta_cli", false);
    let lock_file = project.join("warehouse.duckdb.mdp-lock");
    check_lock_contention_and_kill(
        &project,
        "mdp_meta_cli",
        "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range < 0",
        || std::fs::read_to_string(&lock_file).map(|s| s.contains("\"command\":\"sql\"")).unwrap_or(false),
    );
}

#[test]
fn postgres_second_writer_gets_the_lock_error_and_a_killed_writer_is_detected() {
    if common::postgres_url("Postgres CLI test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let project = init_project(tmp.path());
    let schema = format!("mdp_meta_cli_{}", std::process::id());
    configure_warehouse(&project, &schema, true);

    let out = run(&["doctor"], &project);
    assert!(out.status.success(), "{}", text(&out));

    let holder_query = format!("SELECT count(*) AS holders FROM {schema}.writer_lock");
    check_lock_contention_and_kill(&project, &schema, "SELECT 1 AS slept FROM pg_sleep(300)", || {
        let out = run(&["sql", "--read-only", &holder_query], &project);
        out.status.success() && text(&out).contains("| 1 ")
    });
    // Dropping the metadata schema under a running writer makes that run unable to record its end:
    // the command reports it, and the schema is gone, which is all this cleanup needs.
    let _ = run(&["sql", &format!("DROP SCHEMA {schema} CASCADE")], &project);
}
