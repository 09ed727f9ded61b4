//! `mdp build | run | test | seed | compile | ls` on a dbt project, as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mdp(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mdp"))
        .args(args)
        .current_dir(dir)
        .env_remove("MDP_PROJECT_DIR")
        .env_remove("MDP_TARGET")
        .env_remove("DBT_PROFILES_DIR")
        .output()
        .expect("mdp runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == "expected" {
            continue;
        }
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// The dbt adapter conformance fixture in a temp dir; its profile's DuckDB path is relative to the
/// working directory, as in dbt-duckdb.
fn project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("basic");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../mdp-transform/tests/fixtures/dbt_adapter_basic"), &dir);
    (tmp, dir)
}

#[test]
fn seed_run_test_then_build_on_a_dbt_project() {
    let (_tmp, dir) = project();
    let out = mdp(&dir, &["seed"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("PASS=2 WARN=0 ERROR=0 SKIP=0 TOTAL=2"), "{}", text(&out));
    assert!(
        dir.join("adapter_basic.duckdb").exists(),
        "the profile's relative path is taken from the working directory"
    );

    let out = mdp(&dir, &["run", "--threads", "2"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("table model main.table_model"), "{}", text(&out));

    let out = mdp(&dir, &["test"]);
    assert!(out.status.success(), "{}", text(&out));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("target/run_results.json")).unwrap()).unwrap();
    let statuses: Vec<&str> =
        results["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["pass"; 5]);
    assert_eq!(results["args"]["which"], "test");
}

#[test]
fn compile_prints_a_single_model_and_changes_nothing() {
    let (_tmp, dir) = project();
    let out = mdp(&dir, &["compile", "-s", "view_on_ephemeral"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("with __dbt__cte__ephemeral as ("), "{stdout}");
    assert!(stdout.contains(r#"from "main"."base""#), "{stdout}");
    assert!(dir.join("target/compiled/adapter_basic/models/view_on_ephemeral.sql").exists());
    assert!(dir.join("target/manifest.json").exists());
    assert!(!dir.join("adapter_basic.duckdb").exists(), "compile does not create the database");
}

#[test]
fn ls_lists_a_selection() {
    let (_tmp, dir) = project();
    let out = mdp(&dir, &["ls", "-s", "+view_on_ephemeral", "--resource-type", "model", "seed", "--output", "name"]);
    assert!(out.status.success(), "{}", text(&out));
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    names.sort();
    assert_eq!(names, vec!["base", "ephemeral", "view_on_ephemeral"]);
}

#[test]
fn a_failing_test_fails_the_build_with_its_name() {
    let (_tmp, dir) = project();
    std::fs::write(dir.join("tests/failing.sql"), "select * from (select 1 as id) as t where id = 1\n").unwrap();
    // The models read the seeds as a source (no edge to the seed), so, as with dbt, seed first.
    assert!(mdp(&dir, &["seed"]).status.success());
    let out = mdp(&dir, &["build"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("test.adapter_basic.failing"), "{}", text(&out));
    assert!(text(&out).contains("ERROR=1"), "{}", text(&out));
}

#[test]
fn profiles_dir_target_and_vars_flags_are_honoured() {
    let (tmp, dir) = project();
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    let db = tmp.path().join("elsewhere.duckdb");
    std::fs::write(
        profiles.join("profiles.yml"),
        format!("adapter_basic:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: /nonexistent/dir/x.duckdb\n    other:\n      type: duckdb\n      path: '{}'\n      schema: analytics\n", db.display()),
    )
    .unwrap();
    let out = mdp(&dir, &["seed", "--profiles-dir", profiles.to_str().unwrap(), "-t", "other"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mdp(
        &dir,
        &[
            "run",
            "--profiles-dir",
            profiles.to_str().unwrap(),
            "-t",
            "other",
            "-s",
            "swappable",
            "--vars",
            "{materialized_var: view}",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("view model analytics.swappable"), "{}", text(&out));
    assert!(db.exists());

    let out = mdp(&dir, &["run", "--profiles-dir", profiles.to_str().unwrap(), "-t", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no target `nope` (targets: dev, other)"), "{}", text(&out));
}

#[test]
fn an_mdp_project_builds_its_models_on_its_own_warehouse() {
    let tmp = tempfile::tempdir().unwrap();
    let out = mdp(tmp.path(), &["init", "shop"]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = tmp.path().join("shop");
    std::fs::write(dir.join("seeds/budgets.csv"), "platform,monthly_budget\ngoogle_ads,1000\nmeta_ads,750.5\n")
        .unwrap();
    std::fs::write(
        dir.join("models/total_budget.sql"),
        "{{ config(materialized='table') }}\nselect sum(monthly_budget) as total from {{ ref('budgets') }}\n",
    )
    .unwrap();
    let out = mdp(&dir, &["build"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mdp(&dir, &["sql", "--read-only", "select total from main.total_budget"]);
    assert!(text(&out).contains("1750.5"), "the model is in mdp.yml's warehouse: {}", text(&out));
}

fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../mdp-transform/tests/fixtures").join(name), &dir);
    (tmp, dir)
}

#[test]
fn deps_installs_local_packages_and_build_uses_them() {
    let (_tmp, dir) = fixture("packages");
    let out = mdp(&dir, &["deps"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("installed fx_utils from fixture_packages/fx_utils into dbt_packages/fx_utils"),
        "{}",
        text(&out)
    );
    assert!(dir.join("dbt_packages/fx_vendor/dbt_project.yml").is_file());
    let out = mdp(&dir, &["deps"]);
    assert!(text(&out).contains("fx_utils: installed"), "a second run has nothing to do: {}", text(&out));

    let out = mdp(&dir, &["build"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("PASS=13 WARN=0 ERROR=0 SKIP=0 TOTAL=13"), "{}", text(&out));
    let out = mdp(&dir, &["ls", "--select", "package:fx_vendor"]);
    assert!(text(&out).contains("fx_vendor.fx_vendor_report"), "{}", text(&out));
    assert!(!text(&out).contains("vendor_disabled"), "disabled by the root project: {}", text(&out));

    // A hub package that is declared but not installed: deps and build say what to do.
    let packages = std::fs::read_to_string(dir.join("packages.yml")).unwrap();
    std::fs::write(
        dir.join("packages.yml"),
        format!("{packages}  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"),
    )
    .unwrap();
    let out = mdp(&dir, &["deps"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("packages.yml:5: `package: dbt-labs/dbt_utils` is not installed")
            && text(&out).contains("dbt deps"),
        "{}",
        text(&out)
    );
    let out = mdp(&dir, &["build"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("packages.yml:5: package `package: dbt-labs/dbt_utils` is not installed in dbt_packages/"),
        "{}",
        text(&out)
    );
}

#[test]
fn models_that_query_the_warehouse_compile_against_it() {
    let (_tmp, dir) = fixture("introspection");
    // Before anything is built, compile cannot answer the queries: it says which node and why.
    let out = mdp(&dir, &["compile", "-s", "channel_pivot"]);
    assert!(!out.status.success(), "{}", text(&out));
    let out = mdp(&dir, &["build"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = mdp(&dir, &["compile", "-s", "channel_pivot"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("as video_amount") && stdout.contains("3 as channel_count"), "{stdout}");
}

/// A pull request's CI: production's artifacts as --state, only what changed built, the rest read from production.
#[test]
fn state_selection_and_defer_build_only_what_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("shop");
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("dbt_project.yml", "name: shop\nprofile: shop\nmodels:\n  shop:\n    +materialized: table\n");
    write(
        "profiles.yml",
        "shop:\n  target: dev\n  outputs:\n    prod:\n      type: duckdb\n      path: shop.duckdb\n      schema: prod\n    dev:\n      type: duckdb\n      path: shop.duckdb\n      schema: dev\n",
    );
    write("macros/cents.sql", "{% macro cents(x) %}({{ x }}) * 100{% endmacro %}");
    write("models/orders.sql", "select 1 as id, 2.5 as amount union all select 2, 4.0");
    write("models/order_cents.sql", "select id, {{ cents('amount') }} as cents from {{ ref('orders') }}");
    write("models/order_count.sql", "select count(*) as n from {{ ref('orders') }}");
    write(
        "models/schema.yml",
        "version: 2\nmodels:\n  - name: order_cents\n    columns:\n      - name: id\n        data_tests: [unique]\n",
    );

    let out = mdp(&dir, &["build", "--target", "prod"]);
    assert!(out.status.success(), "{}", text(&out));
    let state = dir.join("prod-state");
    std::fs::create_dir_all(&state).unwrap();
    for file in ["manifest.json", "run_results.json"] {
        std::fs::copy(dir.join("target").join(file), state.join(file)).unwrap();
    }
    let ls = |select: &str| -> String {
        let out = mdp(&dir, &["ls", "--state", "prod-state", "--resource-type", "model", "--select", select]);
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).lines().map(str::trim).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(ls("state:modified"), "", "nothing changed yet");
    assert_eq!(ls("result:success"), "shop.order_cents shop.order_count shop.orders");

    // A body change, a config change, a changed macro and a new model, each found by its own check.
    write("models/order_count.sql", "select count(*) as n, sum(amount) as amount from {{ ref('orders') }}");
    write(
        "models/orders.sql",
        "{{ config(materialized='view') }}select 1 as id, 2.5 as amount union all select 2, 4.0",
    );
    write("macros/cents.sql", "{% macro cents(x) %}cast(({{ x }}) * 100 as integer){% endmacro %}");
    write("models/big_orders.sql", "select * from {{ ref('orders') }} where amount > 3");
    assert_eq!(ls("state:modified.body"), "shop.order_count shop.orders");
    assert_eq!(ls("state:modified.configs"), "shop.orders");
    assert_eq!(ls("state:modified.macros"), "shop.order_cents");
    assert_eq!(ls("state:new"), "shop.big_orders");
    assert_eq!(ls("state:modified"), "shop.big_orders shop.order_cents shop.order_count shop.orders");

    // Only the changed count in dev; what it reads comes from production.
    write("models/orders.sql", "select 1 as id, 2.5 as amount union all select 2, 4.0");
    write("macros/cents.sql", "{% macro cents(x) %}({{ x }}) * 100{% endmacro %}");
    std::fs::remove_file(dir.join("models/big_orders.sql")).unwrap();
    let out = mdp(&dir, &["build", "--select", "state:modified", "--state", "prod-state", "--defer"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("PASS=1 WARN=0 ERROR=0 SKIP=0 TOTAL=1"), "{}", text(&out));
    let compiled = std::fs::read_to_string(dir.join("target/compiled/shop/models/order_count.sql")).unwrap();
    assert!(compiled.contains(r#"from "prod"."orders""#), "{compiled}");
    // Without --defer the ref is the dev relation, which this target never built.
    let out = mdp(&dir, &["build", "--select", "state:modified", "--state", "prod-state"]);
    assert!(!out.status.success(), "{}", text(&out));

    let out = mdp(&dir, &["ls", "--select", "state:modified"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("pass --state DIR"), "{}", text(&out));
}
