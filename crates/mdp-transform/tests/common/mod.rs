//! Shared helpers: copy a fixture project, run commands on DuckDB or Postgres, read tables back.

#![allow(dead_code, reason = "each test file uses a different part of the helpers")]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use indexmap::IndexMap;
use mdp_transform::run::{Command, Quiet, RunOptions, RunResults};
use mdp_transform::selector::{select, Selection};
use mdp_transform::{LoadOptions, Parsed, Target, TargetKind};
use mdp_warehouse::{connect, string_rows, Access, ConnectOptions, LockHolder, TableRef};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// The test server's URL, or `None` (with a notice) to skip a Postgres test; a failure instead when
/// `MDP_TEST_REQUIRE_POSTGRES=1`, so that a machine with a server never passes these tests vacuously.
pub fn postgres_url(what: &str) -> Option<String> {
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

/// Which warehouse a test project runs on.
pub enum Backend {
    DuckDb,
    Postgres { url: String, schema: String },
}

/// A fixture copied into a temporary folder, with its own warehouse.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
}

fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{prefix}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "expected" || name == "target" {
            continue;
        }
        let dest = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

impl TestProject {
    /// Copy `fixture` to a temp dir; DuckDB uses `<tmp>/test.duckdb` through a rewritten profiles.yml.
    pub fn duckdb(fixture_name: &str) -> TestProject {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture(fixture_name), dir.path());
        let project = std::fs::read_to_string(dir.path().join("dbt_project.yml")).unwrap();
        let profile = project.lines().find_map(|l| l.strip_prefix("profile:")).map(|p| p.trim().to_string()).unwrap();
        let db = dir.path().join("test.duckdb");
        std::fs::write(
            dir.path().join("profiles.yml"),
            format!("{profile}:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{}'\n      schema: main\n      threads: 4\n", db.display()),
        )
        .unwrap();
        TestProject { dir, backend: Backend::DuckDb }
    }

    /// Copy `fixture` for Postgres, in a schema of its own; `None` without `MDP_TEST_POSTGRES_URL`
    /// (a failure with `MDP_TEST_REQUIRE_POSTGRES=1`: see [`postgres_url`]).
    pub fn postgres(fixture_name: &str) -> Option<TestProject> {
        let url = postgres_url("Postgres transform test")?;
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixture(fixture_name), dir.path());
        std::fs::remove_file(dir.path().join("profiles.yml")).unwrap();
        Some(TestProject { dir, backend: Backend::Postgres { url, schema: unique("tr") } })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn connect_options(&self) -> ConnectOptions {
        match &self.backend {
            Backend::DuckDb => ConnectOptions::duckdb(self.path().join("test.duckdb")),
            Backend::Postgres { url, schema } => {
                ConnectOptions::postgres(url.clone(), "test server").with_metadata_schema(format!("{schema}_meta"))
            }
        }
    }

    /// The default schema models land in.
    pub fn schema(&self) -> String {
        match &self.backend {
            Backend::DuckDb => "main".into(),
            Backend::Postgres { schema, .. } => schema.clone(),
        }
    }

    pub fn load(&self, vars: &str) -> Result<Parsed, mdp_transform::TransformError> {
        let vars: IndexMap<String, serde_json::Value> =
            if vars.is_empty() { IndexMap::new() } else { serde_yaml::from_str(vars).unwrap() };
        let fallback_target = match &self.backend {
            Backend::DuckDb => None,
            Backend::Postgres { schema, .. } => Some(Target {
                profile_name: "test".into(),
                // As the fixtures' profiles.yml name their Postgres output (dbt-postgres' runs).
                name: "pg".into(),
                schema: schema.clone(),
                database: "test".into(),
                threads: 4,
                kind: TargetKind::Preset(self.connect_options()),
            }),
        };
        mdp_transform::load(&LoadOptions {
            project_dir: self.path().to_path_buf(),
            profiles_dir: None,
            target: None,
            vars,
            fallback_target,
            implicit_project_name: None,
            packages: Vec::new(),
        })
    }

    /// Run a command like the CLI does: select, take the writer lock, execute, write artifacts.
    pub async fn run(
        &self,
        command: Command,
        select_args: &[&str],
        vars: &str,
        full_refresh: bool,
    ) -> (Parsed, RunResults) {
        let parsed = self.load(vars).unwrap_or_else(|e| panic!("parse failed: {e}"));
        let selection = Selection { select: select_args.iter().map(|s| s.to_string()).collect(), ..Selection::all() };
        let ids = select(&parsed.manifest, &parsed.graph, &selection).unwrap();
        let options = RunOptions { command, threads: 4, full_refresh, target_dir: Some(self.path().join("target")) };
        let opened = connect(&self.connect_options(), Access::Write(LockHolder::current("test-run", command.as_str())))
            .await
            .unwrap();
        let results =
            mdp_transform::run::execute(&parsed, opened.warehouse.as_ref(), &ids, &options, &Quiet).await.unwrap();
        let manifest = mdp_transform::artifacts::manifest_json(&parsed);
        mdp_transform::artifacts::write(&self.path().join("target"), "manifest.json", &manifest).unwrap();
        let rr = mdp_transform::artifacts::run_results_json(&parsed, command, &results, serde_json::json!({}));
        mdp_transform::artifacts::write(&self.path().join("target"), "run_results.json", &rr).unwrap();
        opened.warehouse.close().await.unwrap();
        (parsed, results)
    }

    /// Every row of a table as text (NULL as None), sorted.
    pub async fn rows(&self, schema: &str, table: &str) -> (Vec<String>, Vec<Vec<Option<String>>>) {
        let opened = connect(&self.connect_options(), Access::Read).await.unwrap();
        let wh = opened.warehouse;
        let columns = wh.columns(&TableRef::new(schema, table)).await.unwrap();
        assert!(!columns.is_empty(), "{schema}.{table} does not exist");
        let d = wh.dialect();
        let select: Vec<String> =
            columns.iter().map(|c| format!("cast({} as varchar)", d.quote_identifier(&c.name).unwrap())).collect();
        let sql = format!("select {} from {}", select.join(", "), d.qualified(&TableRef::new(schema, table)).unwrap());
        let mut rows = string_rows(&wh.query_all(&sql).await.unwrap()).unwrap();
        rows.sort();
        (columns.into_iter().map(|c| c.name).collect(), rows)
    }

    pub async fn sql(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let opened = connect(&self.connect_options(), Access::Read).await.unwrap();
        string_rows(&opened.warehouse.query_all(sql).await.unwrap()).unwrap()
    }

    /// Drop the test's schemas on Postgres.
    pub async fn cleanup(&self) {
        if let Backend::Postgres { schema, .. } = &self.backend {
            drop_schemas(self.connect_options(), schema.clone()).await;
        }
    }
}

/// Drop every schema whose name starts with `prefix` (the test's own, `_staging`, `_meta`, …).
async fn drop_schemas(options: ConnectOptions, prefix: String) {
    let Ok(opened) = connect(&options, Access::Read).await else { return };
    let sql = format!(
        "select cast(schema_name as varchar) from information_schema.schemata where schema_name like '{prefix}%'"
    );
    let rows = match opened.warehouse.query_all(&sql).await {
        Ok(batches) => string_rows(&batches).unwrap_or_default(),
        Err(_) => return,
    };
    for r in rows {
        if let Some(s) = r[0].clone() {
            let _ = opened.warehouse.execute(&format!("drop schema if exists \"{s}\" cascade")).await;
        }
    }
}

/// A failed Postgres test still removes its schemas, so a red run leaves the shared server clean.
impl Drop for TestProject {
    fn drop(&mut self) {
        if let Backend::Postgres { schema, .. } = &self.backend {
            let (options, prefix) = (self.connect_options(), schema.clone());
            let _ = std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    rt.block_on(drop_schemas(options, prefix));
                }
            })
            .join();
        }
    }
}
