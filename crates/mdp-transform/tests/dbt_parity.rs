//! Parity with dbt-core: mdp builds the fixture projects and every table must equal, row for row
//! and column for column, what dbt-core 1.10 + dbt-duckdb built from the same files
//! (`tests/fixtures/*/expected/`, written by `scripts/dbt-parity`; the steps below mirror it).
//! The same projects then run on Postgres and must hold the same rows.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::TestProject;
use mdp_transform::run::{Command, NodeStatus};

/// A table as text: header and sorted rows (NULL as None).
type Table = (Vec<String>, Vec<Vec<Option<String>>>);

/// The expected tables of a fixture: "schema.table" → (header, sorted rows), plus column types.
struct Expected {
    tables: BTreeMap<String, Table>,
    columns: Vec<Vec<String>>,
}

fn read_csv(path: &Path) -> Table {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_path(path).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    for record in reader.records() {
        let record = record.unwrap();
        // DuckDB's CSV writer leaves NULL empty (and an empty string quoted, which reads the same).
        rows.push(record.iter().map(|v| if v.is_empty() { None } else { Some(v.to_string()) }).collect());
    }
    rows.sort();
    (header, rows)
}

fn expected(fixture: &str) -> Expected {
    let dir = common::fixture(fixture).join("expected");
    let mut tables = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        // `_columns.csv`, `_unique_ids.txt`: not tables.
        if !name.starts_with('_') {
            tables.insert(name, read_csv(&path));
        }
    }
    let (_, columns) = read_csv(&dir.join("_columns.csv"));
    Expected {
        tables,
        columns: columns.into_iter().map(|r| r.into_iter().map(|v| v.unwrap_or_default()).collect()).collect(),
    }
}

/// Numbers compare by value (Postgres prints `0` where DuckDB prints `0.0`); the rest as text.
fn normalize(rows: &[Vec<Option<String>>], numeric_loose: bool) -> Vec<Vec<Option<String>>> {
    let mut out: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    let v = v.as_ref().filter(|v| !v.is_empty())?;
                    if numeric_loose {
                        if let Ok(f) = v.parse::<f64>() {
                            return Some(format!("{:.9}", f));
                        }
                    }
                    Some(v.clone())
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

async fn assert_tables_match(
    project: &TestProject,
    fixture: &str,
    schema_of: impl Fn(&str) -> String,
    numeric_loose: bool,
) {
    let exp = expected(fixture);
    for (name, (header, rows)) in &exp.tables {
        let (schema, table) = name.split_once('.').unwrap();
        let (columns, actual) = project.rows(&schema_of(schema), table).await;
        assert_eq!(&columns, header, "{fixture}: columns of {name}");
        assert_eq!(
            normalize(&actual, numeric_loose),
            normalize(rows, numeric_loose),
            "{fixture}: rows of {name} differ from dbt-core's"
        );
    }
}

/// The nodes' unique ids and checksums are dbt-core's (a generic test's id carries dbt's hash of its
/// arguments; a file's checksum is the sha256 dbt computes), so that manifests and `--state`
/// comparisons agree with dbt's.
fn assert_ids_match(parsed: &mdp_transform::Parsed, fixture: &str) {
    let expected = std::fs::read_to_string(common::fixture(fixture).join("expected/_nodes.txt")).unwrap();
    // dbt lists its run hooks as `operation.` nodes; mdp runs them as hooks.
    let expected: Vec<&str> = expected.lines().filter(|id| !id.starts_with("operation.")).collect();
    let mut actual: Vec<String> = parsed
        .manifest
        .nodes
        .values()
        .filter(|n| n.resource_type != mdp_transform::manifest::ResourceType::Source)
        .map(|n| format!("{} {}", n.unique_id, n.checksum))
        .collect();
    actual.sort();
    assert_eq!(actual, expected, "{fixture}: node ids or checksums differ from dbt-core's");
}

async fn assert_types_match(project: &TestProject, fixture: &str) {
    let exp = expected(fixture);
    let actual = project
        .sql(
            "select cast(table_schema as varchar), cast(table_name as varchar), cast(column_name as varchar), cast(data_type as varchar) \
             from information_schema.columns where table_schema not in ('information_schema', 'pg_catalog', 'mdp_meta') \
             order by 1, 2, ordinal_position",
        )
        .await;
    let mut actual: Vec<Vec<String>> =
        actual.into_iter().map(|r| r.into_iter().map(|v| v.unwrap_or_default()).collect()).collect();
    actual.sort();
    assert_eq!(actual, exp.columns, "{fixture}: relations and column types differ from dbt-core's");
}

fn assert_all_ok(results: &mdp_transform::run::RunResults, allowed_warnings: usize) {
    let bad: Vec<String> = results
        .results
        .iter()
        .filter(|r| !matches!(r.status, NodeStatus::Success | NodeStatus::Pass | NodeStatus::Warn))
        .map(|r| format!("{} {}: {}", r.unique_id, r.status.as_str(), r.message))
        .collect();
    assert!(bad.is_empty(), "nodes did not succeed:\n{}", bad.join("\n"));
    assert_eq!(results.count(NodeStatus::Warn), allowed_warnings, "warnings");
}

/// dbt's adapter conformance project: seed, run, test, then an incremental run on more rows.
async fn adapter_basic(project: &TestProject) {
    let (_, seeded) = project.run(Command::Seed, &[], "", false).await;
    assert_all_ok(&seeded, 0);
    assert_eq!(seeded.results.len(), 2);
    let (_, ran) = project.run(Command::Run, &[], "", false).await;
    assert_all_ok(&ran, 0);
    assert_eq!(
        ran.results.len(),
        5,
        "view, table, swappable, incremental, view on ephemeral (the ephemeral is inlined)"
    );
    let (_, tested) = project.run(Command::Test, &[], "", false).await;
    assert_all_ok(&tested, 0);
    assert_eq!(tested.results.len(), 5);
    let (_, incr) = project.run(Command::Run, &["incremental"], "{seed_name: added}", false).await;
    assert_all_ok(&incr, 0);
    assert_eq!(incr.results[0].rows_affected, Some(10), "the second run inserts only the 10 new ids");
}

/// The feature fixture: build, then an incremental run with a new batch var.
async fn features(project: &TestProject) {
    let (_, built) = project.run(Command::Build, &[], "", false).await;
    assert_all_ok(&built, 2);
    let (_, incr) = project.run(Command::Run, &["fct_spend_incremental"], "{batch: second}", false).await;
    assert_all_ok(&incr, 0);
}

/// Three local packages (a dbt_utils-style one, a vendor's, an adapter shim) beside a project that
/// calls them as `package.macro()`, configures and disables their models, scopes their vars and
/// orders their dispatch; read where packages.yml points (DuckDB) or from dbt_packages/ as
/// `mdp deps` leaves them (Postgres).
async fn packages(project: &TestProject, install_first: bool) {
    if install_first {
        let root = mdp_transform::DbtProject::load(project.path()).unwrap();
        let outcomes = mdp_transform::packages::install_local(&root).unwrap();
        assert_eq!(outcomes.len(), 3, "{outcomes:?}");
        assert!(project.path().join("dbt_packages/fx_utils/dbt_project.yml").is_file());
    }
    let (parsed, built) = project.run(Command::Build, &[], "", false).await;
    assert_all_ok(&built, 0);
    assert_eq!(built.results.len(), 13, "1 seed, 5 models (vendor_disabled is disabled by the root project), 7 tests");
    let vendor_model = &parsed.manifest.nodes["model.fx_vendor.stg_fx_vendor_spend"];
    let shown = if install_first { "dbt_packages/fx_vendor" } else { "fixture_packages/fx_vendor" };
    assert_eq!(vendor_model.original_file_path, Path::new(shown).join("models/staging/stg_fx_vendor_spend.sql"));
    assert!(parsed.manifest.disabled.contains_key("model.fx_vendor.vendor_disabled"));
}

#[tokio::test]
async fn packages_project_matches_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("packages");
    assert_ids_match(&project.load("").unwrap(), "packages");
    packages(&project, false).await;
    assert_tables_match(&project, "packages", |s| s.to_string(), false).await;
    assert_types_match(&project, "packages").await;
}

#[tokio::test]
async fn packages_project_holds_the_same_rows_on_postgres() {
    let Some(project) = TestProject::postgres("packages") else { return };
    packages(&project, true).await;
    let base = project.schema();
    assert_tables_match(&project, "packages", |s| s.replacen("main", &base, 1), true).await;
    project.cleanup().await;
}

/// Models whose Jinja queries the warehouse while they compile (the patterns of dbt_utils' star,
/// get_column_values, union_relations with its `_is_relation` check and dict keyed by relation;
/// `{% call statement %}` with load_result; get_relation): they compile when they run, after the seeds
/// they read were loaded. Also `modules.re` (slugify) and a test's `fail_calc`.
async fn introspection(project: &TestProject) {
    let (parsed, built) = project.run(Command::Build, &[], "", false).await;
    assert_all_ok(&built, 0);
    assert_eq!(built.results.len(), 10, "2 seeds, 5 models, 3 tests");
    let introspective: Vec<&str> =
        parsed.manifest.nodes.values().filter(|n| n.introspective).map(|n| n.name.as_str()).collect();
    assert_eq!(introspective.len(), 4, "every model but `slugs` queries the warehouse: {introspective:?}");
    let pivot = std::fs::read_to_string(project.path().join("target/compiled/introspection/models/channel_pivot.sql"))
        .expect("the compiled SQL is written when the node compiles");
    assert!(pivot.contains("as video_amount"), "{pivot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_project_matches_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("introspection");
    assert_ids_match(&project.load("").unwrap(), "introspection");
    introspection(&project).await;
    assert_tables_match(&project, "introspection", |s| s.to_string(), false).await;
    assert_types_match(&project, "introspection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_project_holds_the_same_rows_on_postgres() {
    let Some(project) = TestProject::postgres("introspection") else { return };
    introspection(&project).await;
    let base = project.schema();
    assert_tables_match(&project, "introspection", |s| s.replacen("main", &base, 1), true).await;
    project.cleanup().await;
}

#[tokio::test]
async fn dbt_adapter_basic_matches_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("dbt_adapter_basic");
    assert_ids_match(&project.load("").unwrap(), "dbt_adapter_basic");
    adapter_basic(&project).await;
    assert_tables_match(&project, "dbt_adapter_basic", |s| s.to_string(), false).await;
    assert_types_match(&project, "dbt_adapter_basic").await;
}

#[tokio::test]
async fn features_project_matches_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("features");
    assert_ids_match(&project.load("").unwrap(), "features");
    features(&project).await;
    assert_tables_match(&project, "features", |s| s.to_string(), false).await;
    assert_types_match(&project, "features").await;
}

#[tokio::test]
async fn dbt_adapter_basic_holds_the_same_rows_on_postgres() {
    let Some(project) = TestProject::postgres("dbt_adapter_basic") else { return };
    adapter_basic(&project).await;
    let base = project.schema();
    assert_tables_match(&project, "dbt_adapter_basic", |s| s.replacen("main", &base, 1), true).await;
    project.cleanup().await;
}

#[tokio::test]
async fn features_project_holds_the_same_rows_on_postgres() {
    let Some(project) = TestProject::postgres("features") else { return };
    features(&project).await;
    let base = project.schema();
    assert_tables_match(&project, "features", |s| s.replacen("main", &base, 1), true).await;
    project.cleanup().await;
}
