//! What a user of `mdp build` relies on: incremental runs, full refresh, failure handling, errors
//! that point at the problem, artifacts. On DuckDB, and on Postgres when a server is available.

mod common;

use common::TestProject;
use mdp_transform::run::{Command, NodeStatus};

fn status_of(results: &mdp_transform::run::RunResults, name_part: &str) -> NodeStatus {
    results
        .results
        .iter()
        .find(|r| r.unique_id.ends_with(name_part))
        .unwrap_or_else(|| panic!("no result for {name_part}"))
        .status
}

fn append_seed_rows(project: &TestProject, rows: &str) {
    let path = project.path().join("seeds/raw_spend.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(rows);
    std::fs::write(path, text).unwrap();
}

async fn incremental_merges_refreshes_and_is_idempotent(project: TestProject) {
    let schema = project.schema();
    let (_, built) = project.run(Command::Build, &[], "", false).await;
    assert!(
        built.success(),
        "{:?}",
        built.results.iter().map(|r| (&r.unique_id, r.status, &r.message)).collect::<Vec<_>>()
    );
    let (_, first) = project.rows(&schema, "fct_spend_incremental").await;
    assert_eq!(first.len(), 8);

    // New day, and a restated day inside the look-back window: merged on (report_date, campaign_id).
    let text = std::fs::read_to_string(project.path().join("seeds/raw_spend.csv")).unwrap();
    std::fs::write(
        project.path().join("seeds/raw_spend.csv"),
        text.replace("2026-06-03,meta_ads,m-1,USD,70.00", "2026-06-03,meta_ads,m-1,USD,75.00"),
    )
    .unwrap();
    append_seed_rows(&project, "2026-06-04,google_ads,g-1,EUR,99.00,9000,250,9,300.00\n");
    let (_, seeded) = project.run(Command::Seed, &["raw_spend"], "", false).await;
    assert!(seeded.success());
    let (_, second) = project
        .run(Command::Run, &["fct_spend_incremental"], "{batch: second, incremental_lookback_days: 1}", false)
        .await;
    assert!(second.success(), "{:?}", second.results[0].message);
    let (cols, rows) = project.rows(&schema, "fct_spend_incremental").await;
    assert_eq!(rows.len(), 9, "one new row, restated rows replaced, none duplicated");
    let batch = cols.iter().position(|c| c == "batch").unwrap();
    let spend = cols.iter().position(|c| c == "spend").unwrap();
    let restated =
        rows.iter().find(|r| r[0].as_deref() == Some("2026-06-03") && r[1].as_deref() == Some("m-1")).unwrap();
    assert!(restated[spend].as_deref().unwrap().starts_with("75"), "restated spend merged: {restated:?}");
    assert_eq!(restated[batch].as_deref(), Some("second"));
    let untouched =
        rows.iter().find(|r| r[0].as_deref() == Some("2026-06-01") && r[1].as_deref() == Some("g-1")).unwrap();
    assert_eq!(untouched[batch].as_deref(), Some("initial"), "rows before the look-back window are kept as they were");

    // Rerunning the same input changes nothing.
    project.run(Command::Run, &["fct_spend_incremental"], "{batch: second, incremental_lookback_days: 1}", false).await;
    let (_, again) = project.rows(&schema, "fct_spend_incremental").await;
    assert_eq!(again, rows, "an incremental rerun is idempotent");

    // A new column is appended (on_schema_change: append_new_columns); old rows get NULL.
    let model = project.path().join("models/marts/fct_spend_incremental.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(&model, sql.replace("    clicks,\n", "    clicks,\n    impressions,\n")).unwrap();
    let (_, widened) = project
        .run(Command::Run, &["fct_spend_incremental"], "{batch: third, incremental_lookback_days: 1}", false)
        .await;
    assert!(widened.success(), "{}", widened.results[0].message);
    let (cols, rows) = project.rows(&schema, "fct_spend_incremental").await;
    let impressions = cols.iter().position(|c| c == "impressions").expect("column appended");
    assert!(rows.iter().any(|r| r[impressions].is_none()), "old rows have no value for the new column");
    assert!(rows.iter().any(|r| r[impressions].is_some()), "new rows do");

    // --full-refresh rebuilds from scratch.
    let (_, refreshed) = project.run(Command::Run, &["fct_spend_incremental"], "{batch: rebuilt}", true).await;
    assert!(refreshed.success());
    let (cols, rows) = project.rows(&schema, "fct_spend_incremental").await;
    let batch = cols.iter().position(|c| c == "batch").unwrap();
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|r| r[batch].as_deref() == Some("rebuilt")), "every row rebuilt");
    project.cleanup().await;
}

#[tokio::test]
async fn incremental_models_merge_refresh_and_rerun_idempotently_on_duckdb() {
    incremental_merges_refreshes_and_is_idempotent(TestProject::duckdb("features")).await;
}

#[tokio::test]
async fn incremental_models_merge_refresh_and_rerun_idempotently_on_postgres() {
    if let Some(p) = TestProject::postgres("features") {
        incremental_merges_refreshes_and_is_idempotent(p).await;
    }
}

#[tokio::test]
async fn build_reports_warnings_applies_configs_and_writes_artifacts() {
    let project = TestProject::duckdb("features");
    let (parsed, built) = project.run(Command::Build, &[], "", false).await;
    assert!(built.success());
    // Severity warn: reported, not failed.
    assert_eq!(status_of(&built, "zero_spend_days"), NodeStatus::Warn);
    let ctr = built.results.iter().find(|r| r.unique_id.contains("ctr_defined_where_impressions")).unwrap();
    assert_eq!((ctr.status, ctr.failures), (NodeStatus::Warn, Some(1)));
    // Folder config +schema, alias, ephemeral inlined, disabled model absent.
    let stg = parsed.manifest.nodes.values().find(|n| n.name == "stg_campaigns").unwrap();
    assert_eq!(
        stg.relation.as_ref().map(|r| (r.schema.as_str(), r.identifier.as_str())),
        Some(("main_staging", "campaigns_clean"))
    );
    assert!(parsed.manifest.nodes.values().all(|n| n.name != "disabled_model"));
    assert!(parsed.manifest.disabled.values().any(|n| n.name == "disabled_model"));
    assert!(built.results.iter().all(|r| !r.unique_id.ends_with("int_spend_reporting")), "ephemerals do not run");
    let compiled =
        std::fs::read_to_string(project.path().join("target/compiled/features/models/marts/fct_campaign_daily.sql"))
            .unwrap();
    assert!(compiled.trim_start().starts_with("with __dbt__cte__int_spend_reporting as ("), "{compiled}");
    // Post-hook ran.
    assert_eq!(
        project.sql("select model_name from main.hook_log").await,
        vec![vec![Some("fct_campaign_daily".to_string())]]
    );
    // Docs block rendered into the description.
    let stg_spend = parsed.manifest.nodes.values().find(|n| n.name == "stg_spend").unwrap();
    assert!(stg_spend.description.starts_with("Daily spend per platform"));
    // Artifacts a dbt tool can read.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.path().join("target/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["metadata"]["dbt_schema_version"], "https://schemas.getdbt.com/dbt/manifest/v12.json");
    assert_eq!(manifest["nodes"]["model.features.fct_campaign_daily"]["config"]["materialized"], "table");
    assert!(manifest["sources"]["source.features.seeds.raw_spend"].is_object());
    let deps = manifest["parent_map"]["model.features.stg_spend"].as_array().unwrap();
    assert!(
        deps.iter().any(|d| d == "source.features.seeds.raw_spend")
            && deps.iter().any(|d| d == "seed.features.raw_spend")
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.path().join("target/run_results.json")).unwrap())
            .unwrap();
    let statuses: Vec<&str> =
        results["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.len(), built.results.len());
    assert_eq!(statuses.iter().filter(|s| **s == "warn").count(), 2);
}

#[tokio::test]
async fn a_failing_model_skips_its_dependents_and_names_the_compiled_sql() {
    let project = TestProject::duckdb("features");
    std::fs::write(
        project.path().join("models/staging/stg_campaigns.sql"),
        "select campaign_id, no_such_column from {{ ref('campaigns') }}",
    )
    .unwrap();
    let (_, built) = project.run(Command::Build, &[], "", false).await;
    assert!(!built.success());
    let failed = built.results.iter().find(|r| r.unique_id == "model.features.stg_campaigns").unwrap();
    assert_eq!(failed.status, NodeStatus::Error);
    assert!(failed.message.contains("no_such_column"), "the database's message: {}", failed.message);
    assert!(failed.message.contains("target/compiled/features/models/staging/stg_campaigns.sql"), "{}", failed.message);
    assert_eq!(status_of(&built, "model.features.fct_campaign_daily"), NodeStatus::Skipped);
    assert_eq!(status_of(&built, "model.features.platform_totals"), NodeStatus::Skipped);
    // Unrelated branches still build.
    assert_eq!(status_of(&built, "model.features.fct_spend_incremental"), NodeStatus::Success);
}

#[tokio::test]
async fn a_failing_test_skips_the_models_downstream_in_build() {
    let project = TestProject::duckdb("features");
    // Make stg_spend's accepted_values test fail.
    let yml = project.path().join("models/staging/_staging.yml");
    std::fs::write(
        &yml,
        std::fs::read_to_string(&yml).unwrap().replace("'tiktok_ads', 'linkedin_ads'", "'linkedin_ads'"),
    )
    .unwrap();
    let (_, built) = project.run(Command::Build, &[], "", false).await;
    let test = built.results.iter().find(|r| r.unique_id.contains("accepted_values_stg_spend_platform")).unwrap();
    assert_eq!(test.status, NodeStatus::Fail);
    assert_eq!(test.failures, Some(1), "one platform value is not accepted");
    assert_eq!(status_of(&built, "model.features.fct_spend_incremental"), NodeStatus::Skipped);
    assert_eq!(status_of(&built, "model.features.stg_campaigns"), NodeStatus::Success);
}

fn load_error(project: &TestProject) -> String {
    project.load("").err().map(|e| e.to_string()).expect("the project should not load")
}

#[test]
fn jinja_errors_name_file_line_and_column() {
    let project = TestProject::duckdb("features");
    std::fs::write(project.path().join("models/marts/broken.sql"), "select 1 as a,\n  {{ ref('stg_spend' }} as b\n")
        .unwrap();
    let err = load_error(&project);
    assert!(err.starts_with("models/marts/broken.sql:2:"), "{err}");
}

#[test]
fn unknown_refs_suggest_the_closest_model() {
    let project = TestProject::duckdb("features");
    std::fs::write(project.path().join("models/marts/typo.sql"), "select * from {{ ref('stg_spnd') }}").unwrap();
    let err = load_error(&project);
    assert!(
        err.contains("models/marts/typo.sql")
            && err.contains("`stg_spnd`")
            && err.contains("did you mean `stg_spend`?"),
        "{err}"
    );
}

#[test]
fn dependency_cycles_are_listed() {
    let project = TestProject::duckdb("features");
    std::fs::write(project.path().join("models/a_loop.sql"), "select * from {{ ref('b_loop') }}").unwrap();
    std::fs::write(project.path().join("models/b_loop.sql"), "select * from {{ ref('a_loop') }}").unwrap();
    let err = load_error(&project);
    assert!(
        err.contains("dependency cycle: model.features.a_loop -> model.features.b_loop -> model.features.a_loop")
            || err
                .contains("dependency cycle: model.features.b_loop -> model.features.a_loop -> model.features.b_loop"),
        "{err}"
    );
}

#[test]
fn required_vars_and_unknown_tests_are_explained() {
    let project = TestProject::duckdb("features");
    std::fs::write(project.path().join("models/needs_var.sql"), "select {{ var('no_such_var') }} as x").unwrap();
    let err = load_error(&project);
    assert!(err.contains("models/needs_var.sql:1:") && err.contains("required var 'no_such_var'"), "{err}");

    let project = TestProject::duckdb("features");
    let yml = project.path().join("models/marts/_marts.yml");
    std::fs::write(&yml, std::fs::read_to_string(&yml).unwrap().replace("- non_negative", "- non_negativ")).unwrap();
    let err = load_error(&project);
    assert!(err.contains("_marts.yml") && err.contains("unknown test `non_negativ`"), "{err}");
}

/// What mdp does not build yet is refused at parse, naming the file, the line and the feature, and
/// saying how to build the rest: never skipped silently.
#[test]
fn unsupported_dbt_features_fail_at_parse_naming_file_line_and_feature() {
    // Snapshots: a misconfigured block is refused with its file, line and the config to set.
    let project = TestProject::duckdb("features");
    std::fs::create_dir_all(project.path().join("snapshots")).unwrap();
    let snapshot = |body: &str| {
        std::fs::write(
            project.path().join("snapshots/orders.sql"),
            format!(
                "-- history of orders\n{{% snapshot orders_snapshot %}}\n{body}\nselect 1 as id\n{{% endsnapshot %}}\n"
            ),
        )
        .unwrap();
        load_error(&project)
    };
    let err = snapshot("{{ config(unique_key='id', strategy='timestamp') }}");
    assert!(
        err.starts_with("snapshots/orders.sql")
            && err
                .contains("line 2: snapshot `orders_snapshot`: the `timestamp` strategy needs an `updated_at` config"),
        "{err}"
    );
    let err = snapshot("{{ config(unique_key='id', strategy='my_pkg.my_strategy', updated_at='u') }}");
    assert!(err.contains("custom strategy macros are not supported by mdp"), "{err}");
    std::fs::write(project.path().join("snapshots/orders.sql"), "{% snapshot s %}\nselect 1\n").unwrap();
    let err = load_error(&project);
    assert!(err.contains("line 1: `{% snapshot s %}` has no `{% endsnapshot %}`"), "{err}");

    // Unit tests: what mdp cannot override, and a model that is not there.
    let project = TestProject::duckdb("features");
    let unit = |body: &str| {
        std::fs::write(
            project.path().join("models/marts/_unit.yml"),
            format!("version: 2\n\nunit_tests:\n  - name: t\n    model: fct_campaign_daily\n{body}"),
        )
        .unwrap();
        load_error(&project)
    };
    let err = unit("    expect: {rows: []}\n    overrides:\n      env_vars: {A: b}\n");
    assert!(
        err.starts_with("models/marts/_unit.yml")
            && err.contains("unit test `t`: `overrides.env_vars` is not supported"),
        "{err}"
    );
    let err = unit("    given: [{input: \"ref('nope')\", rows: []}]\n");
    assert!(err.contains("`expect:` gives the rows the model must return"), "{err}");
    std::fs::write(
        project.path().join("models/marts/_unit.yml"),
        "version: 2\n\nunit_tests:\n  - name: t\n    model: fct_campaign_daily\n    expect: {rows: []}\n",
    )
    .unwrap();
    let parsed = project.load("").expect("a well-formed unit test parses");
    assert!(parsed.manifest.nodes.contains_key("unit_test.features.fct_campaign_daily.t"));
    std::fs::write(
        project.path().join("models/marts/_unit.yml"),
        "version: 2\n\nunit_tests:\n  - name: t\n    model: no_such_model\n    expect: {rows: []}\n",
    )
    .unwrap();
    let err = load_error(&project);
    assert!(err.contains("unit test `t`: `no_such_model` is not a model of"), "{err}");

    let project = TestProject::duckdb("features");
    std::fs::write(
        project.path().join("macros/my_mat.sql"),
        "{# a custom one #}\n{%- materialization my_mat, default -%}\n{{ return({'relations': []}) }}\n{%- endmaterialization -%}\n",
    )
    .unwrap();
    // Defined but unused (as dbt_utils 0.x's insert_by_period): the project builds.
    assert!(project.load("").is_ok());
    std::fs::write(project.path().join("models/uses_mat.sql"), "{{ config(materialized='my_mat') }}select 1 as x")
        .unwrap();
    let err = load_error(&project);
    assert!(
        err.contains("`uses_mat` is materialized as `my_mat`, a custom materialization")
            && err.contains("macros/my_mat.sql:2"),
        "{err}"
    );
}

#[tokio::test]
async fn incremental_strategy_append_and_invalid_strategies() {
    let project = TestProject::duckdb("dbt_adapter_basic");
    std::fs::write(
        project.path().join("models/incremental_append.sql"),
        "{{ config(materialized='incremental', incremental_strategy='append') }}\nselect * from {{ ref('base') }}",
    )
    .unwrap();
    std::fs::write(
        project.path().join("models/incremental_bad.sql"),
        "{{ config(materialized='incremental', incremental_strategy='bad_strategy') }}\nselect * from {{ ref('base') }}",
    )
    .unwrap();
    project.run(Command::Seed, &[], "", false).await;
    project.run(Command::Run, &["incremental_append", "incremental_bad"], "", false).await;
    let (_, second) = project.run(Command::Run, &["incremental_append", "incremental_bad"], "", false).await;
    let (_, rows) = project.rows("main", "incremental_append").await;
    assert_eq!(rows.len(), 20, "append adds every row again");
    let bad = second.results.iter().find(|r| r.unique_id.ends_with("incremental_bad")).unwrap();
    assert_eq!(bad.status, NodeStatus::Error);
    assert!(bad.message.contains("invalid incremental strategy `bad_strategy`"), "{}", bad.message);
}

async fn cross_database_macros(project: TestProject) {
    std::fs::write(
        project.path().join("models/xdb.sql"),
        r#"{{ config(materialized='table') }}
select
    {{ dbt.date_trunc('month', "cast('2026-06-17' as date)") }} as month_start,
    {{ dbt.dateadd('day', 3, "cast('2026-06-17' as date)") }} as plus_three,
    {{ dbt.datediff("cast('2026-06-01' as date)", "cast('2026-06-17' as date)", 'day') }} as days_between,
    {{ datediff("cast('2026-01-15' as date)", "cast('2026-06-17' as date)", 'month') }} as months_between,
    {{ dbt.safe_divide('10.0', '0') }} as div_zero,
    {{ dbt.safe_divide('10.0', '4') }} as div_ok,
    {{ dbt.concat(["'a'", "'b'"]) }} as ab,
    {{ dbt.string_literal("it's") }} as quoted,
    {{ dbt.split_part("'a-b-c'", "'-'", 2) }} as part,
    {{ dbt.safe_cast("'12'", dbt.type_int()) }} as twelve,
    cast(1 as {{ dbt.type_bigint() }}) as one
"#,
    )
    .unwrap();
    let (_, ran) = project.run(Command::Run, &["xdb"], "", false).await;
    assert!(ran.success(), "{}", ran.results[0].message);
    let (cols, rows) = project.rows(&project.schema(), "xdb").await;
    let get = |name: &str| rows[0][cols.iter().position(|c| c == name).unwrap()].clone();
    assert!(get("month_start").unwrap().starts_with("2026-06-01"));
    assert!(get("plus_three").unwrap().starts_with("2026-06-20"));
    assert_eq!(get("days_between").as_deref(), Some("16"));
    assert_eq!(get("months_between").as_deref().map(|v| v.trim_end_matches(".0")), Some("5"));
    assert_eq!(get("div_zero"), None, "safe_divide by zero is NULL");
    assert_eq!(get("div_ok").unwrap().parse::<f64>().unwrap(), 2.5);
    assert_eq!(get("ab").as_deref(), Some("ab"));
    assert_eq!(get("quoted").as_deref(), Some("it's"));
    assert_eq!(get("part").as_deref(), Some("b"));
    assert_eq!(get("twelve").as_deref(), Some("12"));
    assert_eq!(get("one").as_deref(), Some("1"));
    project.cleanup().await;
}

#[tokio::test]
async fn cross_database_macros_give_the_same_answers_on_duckdb() {
    cross_database_macros(TestProject::duckdb("features")).await;
}

#[tokio::test]
async fn cross_database_macros_give_the_same_answers_on_postgres() {
    if let Some(p) = TestProject::postgres("features") {
        cross_database_macros(p).await;
    }
}
