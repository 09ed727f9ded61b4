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
        if name != "_columns" {
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

#[tokio::test]
async fn dbt_adapter_basic_matches_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("dbt_adapter_basic");
    adapter_basic(&project).await;
    assert_tables_match(&project, "dbt_adapter_basic", |s| s.to_string(), false).await;
    assert_types_match(&project, "dbt_adapter_basic").await;
}

#[tokio::test]
async fn features_project_matches_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("features");
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
