//! Parity with dbt-core: mdp builds the fixture projects and every table must equal, row for row
//! and column for column, what dbt-core 1.10 + dbt-duckdb built from the same files
//! (`tests/fixtures/*/expected/`, written by `scripts/dbt-parity`; the steps below mirror it).
//! The same projects then run on Postgres, where every table and column type must equal what
//! dbt-core 1.10 + dbt-postgres built (`expected_pg/`).

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
    expected_in(fixture, "expected")
}

/// What dbt-core built: `expected` (dbt-duckdb) or `expected_pg` (dbt-postgres).
fn expected_in(fixture: &str, folder: &str) -> Expected {
    let dir = common::fixture(fixture).join(folder);
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

/// How rows compare.
#[derive(Debug, Clone, Copy, Default)]
struct Compare {
    /// Numbers compare by value (Postgres prints `0` where DuckDB prints `0.0`); the rest as text.
    numeric_loose: bool,
    /// Times a run took from the clock (snapshots: `check` without `updated_at`, hard deletes)
    /// differ between dbt's run and ours: a timestamp after 2025 and before 9999 (the fixtures'
    /// data is of 2024, `dbt_valid_to_current` is 9999-12-31) reads `<run time>`, and the hashes
    /// (`dbt_scd_id`) of a row holding one read `<hash of run time>`.
    mask_clock: bool,
}

fn is_run_time(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[10] == b' '
        && v.get(..4).and_then(|y| y.parse::<u32>().ok()).is_some_and(|year| (2025..9999).contains(&year))
}

fn is_md5(v: &str) -> bool {
    v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit())
}

fn normalize(rows: &[Vec<Option<String>>], how: Compare) -> Vec<Vec<Option<String>>> {
    let mut out: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            let clocked = how.mask_clock && r.iter().flatten().any(|v| is_run_time(v));
            r.iter()
                .map(|v| {
                    let v = v.as_ref().filter(|v| !v.is_empty())?;
                    if how.mask_clock && is_run_time(v) {
                        return Some("<run time>".into());
                    }
                    if clocked && is_md5(v) {
                        return Some("<hash of run time>".into());
                    }
                    if how.numeric_loose {
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
    assert_tables_match_as(project, fixture, schema_of, Compare { numeric_loose, ..Compare::default() }).await
}

async fn assert_tables_match_as(
    project: &TestProject,
    fixture: &str,
    schema_of: impl Fn(&str) -> String,
    how: Compare,
) {
    assert_tables_match_in(project, &expected(fixture), fixture, schema_of, how).await
}

async fn assert_tables_match_in(
    project: &TestProject,
    exp: &Expected,
    fixture: &str,
    schema_of: impl Fn(&str) -> String,
    how: Compare,
) {
    for (name, (header, rows)) in &exp.tables {
        let (schema, table) = name.split_once('.').unwrap();
        let (columns, actual) = project.rows(&schema_of(schema), table).await;
        assert_eq!(&columns, header, "{fixture}: columns of {name}");
        assert_eq!(normalize(&actual, how), normalize(rows, how), "{fixture}: rows of {name} differ from dbt-core's");
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
async fn packages_project_matches_dbt_core_on_postgres() {
    let Some(project) = TestProject::postgres("packages") else { return };
    packages(&project, true).await;
    assert_matches_dbt_postgres(&project, "packages", false).await;
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
async fn introspection_project_matches_dbt_core_on_postgres() {
    let Some(project) = TestProject::postgres("introspection") else { return };
    introspection(&project).await;
    assert_matches_dbt_postgres(&project, "introspection", false).await;
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
async fn dbt_adapter_basic_matches_dbt_core_on_postgres() {
    let Some(project) = TestProject::postgres("dbt_adapter_basic") else { return };
    adapter_basic(&project).await;
    assert_matches_dbt_postgres(&project, "dbt_adapter_basic", false).await;
    project.cleanup().await;
}

#[tokio::test]
async fn features_project_matches_dbt_core_on_postgres() {
    let Some(project) = TestProject::postgres("features") else { return };
    features(&project).await;
    assert_matches_dbt_postgres(&project, "features", false).await;
    project.cleanup().await;
}

/// Five snapshots (timestamp; with deleted keys closed; check on two columns of a two-column key
/// with `dbt_valid_to_current`; check on all columns without `updated_at`, whose query gains a
/// column; hard deletes as new records with renamed meta columns) built, then built again on the
/// orders of a later day: changed, unchanged, new, deleted keys, a change `updated_at` does not
/// show, a NULL becoming a value. A third run on the same data changes nothing.
async fn snapshots(project: &TestProject) {
    let (parsed, first) = project.run(Command::Build, &[], "", false).await;
    assert_all_ok(&first, 0);
    assert_eq!(first.results.len(), 13, "1 seed, 6 snapshots (one defined in YAML), 3 models, 3 tests");
    let ts = &parsed.manifest.nodes["snapshot.snapshot_parity.orders_ts"];
    assert!(ts.relation.as_ref().unwrap().schema.ends_with("_history"), "target_schema is used verbatim");
    assert_eq!(ts.config.tags, ["history"], "the snapshots: tree of dbt_project.yml applies");
    let built = |r: &mdp_transform::run::RunResults, id: &str| {
        r.results.iter().find(|x| x.unique_id == id).map(|x| x.message.clone()).unwrap()
    };
    assert_eq!(built(&first, "snapshot.snapshot_parity.orders_ts"), "SNAPSHOT 5");
    let (_, second) = project.run(Command::Build, &[], "{as_of: 2}", false).await;
    assert_all_ok(&second, 0);
    // Changes found: 1 and 6 changed (insert + update each), 4 is new.
    assert_eq!(built(&second, "snapshot.snapshot_parity.orders_ts"), "SNAPSHOT 5");
    let (_, third) = project.run(Command::Snapshot, &[], "{as_of: 2}", false).await;
    assert_all_ok(&third, 0);
    assert_eq!(third.results.len(), 6, "`snapshot` runs the snapshots only");
    for r in &third.results {
        assert_eq!(r.message, "SNAPSHOT 0", "{}: the same data again is no change", r.unique_id);
    }
}

#[tokio::test]
async fn snapshots_match_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("snapshots");
    assert_ids_match(&project.load("").unwrap(), "snapshots");
    snapshots(&project).await;
    let how = Compare { numeric_loose: false, mask_clock: true };
    assert_tables_match_as(&project, "snapshots", |s| s.to_string(), how).await;
    assert_types_match(&project, "snapshots").await;
}

#[tokio::test]
async fn snapshots_match_dbt_core_on_postgres() {
    let Some(project) = TestProject::postgres("snapshots") else { return };
    snapshots(&project).await;
    assert_matches_dbt_postgres(&project, "snapshots", true).await;
    project.cleanup().await;
}

/// dbt unit tests: five on three models (rows as dicts with some columns left out, CSV, SQL, a
/// fixture file, `vars` and `is_incremental` overrides, `this`, a source, no rows), run by
/// `build` before the models they test.
async fn unit_tests(project: &TestProject) {
    let (parsed, built) = project.run(Command::Build, &[], "", false).await;
    assert_all_ok(&built, 0);
    assert_eq!(built.results.len(), 11, "2 seeds, 4 models, 5 unit tests");
    let units: Vec<&str> =
        parsed.manifest.nodes.values().filter(|n| n.is_unit_test()).map(|n| n.name.as_str()).collect();
    assert_eq!(units.len(), 5, "{units:?}");
    let at = |id: &str| built.results.iter().find(|r| r.unique_id == id).unwrap();
    for (test, model) in [
        ("unit_test.unit_parity.customer_orders.revenue_counts_kept_orders", "model.unit_parity.customer_orders"),
        (
            "unit_test.unit_parity.orders_incremental.incremental_run_takes_only_newer_orders",
            "model.unit_parity.orders_incremental",
        ),
    ] {
        assert_eq!(at(test).status, NodeStatus::Pass);
        assert!(at(test).completed_at <= at(model).started_at, "{test} runs before {model} is built");
    }
    let (_, tested) = project.run(Command::Test, &["test_type:unit"], "", false).await;
    assert_eq!(tested.results.len(), 5);
    assert!(tested.results.iter().all(|r| r.status == NodeStatus::Pass));
}

#[tokio::test]
async fn unit_tests_pass_as_in_dbt_core_on_duckdb() {
    let project = TestProject::duckdb("unit_tests");
    assert_ids_match(&project.load("").unwrap(), "unit_tests");
    unit_tests(&project).await;
    assert_tables_match(&project, "unit_tests", |s| s.to_string(), false).await;
    assert_types_match(&project, "unit_tests").await;
}

#[tokio::test]
async fn unit_tests_pass_as_in_dbt_core_on_postgres() {
    let Some(project) = TestProject::postgres("unit_tests") else { return };
    unit_tests(&project).await;
    assert_matches_dbt_postgres(&project, "unit_tests", false).await;
    project.cleanup().await;
}

/// A unit test whose expectation is wrong fails with the rows that differ, and `build` skips its
/// model; nothing it made is left in the warehouse.
#[tokio::test]
async fn a_failing_unit_test_names_the_rows_that_differ_and_skips_its_model() {
    let project = TestProject::duckdb("unit_tests");
    let yml = project.path().join("models/unit_tests.yml");
    let text = std::fs::read_to_string(&yml).unwrap();
    std::fs::write(&yml, text.replace("orders: 2, revenue: 11.25", "orders: 2, revenue: 12.25")).unwrap();
    let (_, built) = project.run(Command::Build, &[], "", false).await;
    let at = |id: &str| built.results.iter().find(|r| r.unique_id == id).unwrap();
    let failed = at("unit_test.unit_parity.customer_orders.revenue_counts_kept_orders");
    assert_eq!(failed.status, NodeStatus::Fail, "{}", failed.message);
    assert!(
        failed.message.contains(
            "- expected, missing: customer_id=1, email=a@b.co, has_valid_email=true, orders=2, revenue=12.25"
        ),
        "{}",
        failed.message
    );
    assert!(
        failed.message.contains("+ returned, not expected: customer_id=1") && failed.message.contains("revenue=11.25"),
        "{}",
        failed.message
    );
    assert_eq!(at("model.unit_parity.customer_orders").status, NodeStatus::Skipped);
    assert_eq!(
        at("unit_test.unit_parity.customer_orders.min_amount_filters_small_orders").status,
        NodeStatus::Pass,
        "another unit test of the same model still runs: {}",
        at("unit_test.unit_parity.customer_orders.min_amount_filters_small_orders").message
    );
    assert_eq!(at("model.unit_parity.payments_by_order").status, NodeStatus::Success, "other models build");
    let scratch =
        project.sql("select count(*) from information_schema.tables where table_name like 'mdp_unit_%'").await;
    assert_eq!(scratch[0][0].as_deref(), Some("0"), "unit tests leave no views behind");
}

/// On Postgres, every table and column type equals what dbt-core 1.10 + dbt-postgres built from
/// the same fixture with the same steps (`expected_pg/`, written by `scripts/dbt-parity`).
async fn assert_matches_dbt_postgres(project: &TestProject, fixture: &str, mask_clock: bool) {
    let exp = expected_in(fixture, "expected_pg");
    let base = project.schema();
    let how = Compare { numeric_loose: false, mask_clock };
    assert_tables_match_in(project, &exp, fixture, |s| s.replacen("main", &base, 1), how).await;
    let actual = project
        .sql(&format!(
            "select cast(table_schema as varchar), cast(table_name as varchar), cast(column_name as varchar), \
             cast(data_type as varchar) from information_schema.columns where table_schema like '{base}%' \
             order by 1, 2, ordinal_position"
        ))
        .await;
    let mut actual: Vec<Vec<String>> = actual
        .into_iter()
        .map(|r| {
            let mut r: Vec<String> = r.into_iter().map(|v| v.unwrap_or_default()).collect();
            r[0] = r[0].replacen(&base, "main", 1);
            r
        })
        .collect();
    // mdp's run history lives in `<schema>_meta`, beside the models.
    actual.retain(|r| r[0] != "main_meta");
    actual.sort();
    assert_eq!(actual, exp.columns, "{fixture}: relations and column types differ from dbt-postgres'");
}
