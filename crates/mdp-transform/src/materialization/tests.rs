//! Golden SQL: the exact statements of every materialization and strategy, in order, on DuckDB and
//! Postgres. A change of SQL shows here as a diff.
//!
//! Each statement is one entry `[where effect] sql`: `tx` runs in the node's transaction, `own` on
//! its own; `rows` reads the row count from the statement's answer, `count` is a row-count query.

use arrow::datatypes::DataType;
use mdp_warehouse::{ColumnInfo, Dialect, DuckDbDialect, PostgresDialect, RelationKind, TableRef};

use super::*;
use crate::compile::CompiledNode;
use crate::config::NodeConfig;
use crate::seed::SeedColumn;

const DUCK: &dyn Dialect = &DuckDbDialect;
const PG: &dyn Dialect = &PostgresDialect;

fn show_statement(s: &Statement) -> String {
    let place = if s.in_transaction { "tx" } else { "own" };
    let effect = match s.effect {
        Effect::Change => "",
        Effect::ChangeCountingRows => " rows",
        Effect::CountRows => " count",
    };
    format!("[{place}{effect}] {}", s.sql)
}

/// The plan as text; an incremental run's second half is planned from `new_cols` / `old_cols`.
fn show(plan: &Plan, d: &dyn Dialect, new_cols: &[&str], old_cols: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for step in &plan.steps {
        match step {
            Step::Run(s) => out.push(show_statement(s)),
            Step::Reconcile(r) => {
                out.push(format!("[{}] read the columns of {} and {}", place(r.in_transaction), r.new_rows, r.target));
                let statements = r.statements(d, &columns(new_cols), &columns(old_cols)).expect("reconcile plans");
                out.extend(statements.iter().map(show_statement));
            }
            Step::Load { into, file, in_transaction } => {
                out.push(format!("[{}] load {file} into {into}", place(*in_transaction)))
            }
            Step::Snapshot(m) => out.push(format!("[{}] snapshot merge into {}", place(m.in_transaction), m.target)),
        }
    }
    out
}

fn place(in_transaction: bool) -> &'static str {
    if in_transaction {
        "tx"
    } else {
        "own"
    }
}

/// `name type` pairs as read from information_schema.
fn columns(cols: &[&str]) -> Vec<ColumnInfo> {
    cols.iter()
        .map(|c| {
            let (name, ty) = c.split_once(' ').unwrap_or((c, "INTEGER"));
            ColumnInfo { name: name.into(), data_type: ty.into(), nullable: true }
        })
        .collect()
}

fn compiled(sql: &str, is_incremental: bool) -> CompiledNode {
    CompiledNode {
        unique_id: "model.p.m".into(),
        sql: sql.into(),
        is_incremental,
        pre_hooks: Vec::new(),
        post_hooks: Vec::new(),
    }
}

const SQL: &str = "select 1 as id, 'a' as v";

fn plan_model(
    d: &dyn Dialect,
    config: &NodeConfig,
    compiled: &CompiledNode,
    existing: Option<RelationKind>,
) -> Result<Plan> {
    let model = Model { name: "m", config, relation: TableRef::new("s", "m"), compiled, existing };
    Materialization::of(config)?.plan(&model, d)
}

fn model(d: &dyn Dialect, materialized: &str, existing: Option<RelationKind>) -> Vec<String> {
    let config = NodeConfig::defaults(materialized);
    let plan = plan_model(d, &config, &compiled(SQL, false), existing).unwrap();
    show(&plan, d, &[], &[])
}

/// An incremental run (the table exists) with `strategy`, `unique_key` and `on_schema_change`.
fn incremental(
    d: &dyn Dialect,
    strategy: Option<&str>,
    key: &[&str],
    on_schema_change: &str,
    new_cols: &[&str],
    old_cols: &[&str],
) -> Result<Vec<String>> {
    let mut config = NodeConfig::defaults("incremental");
    config.incremental_strategy = strategy.map(str::to_string);
    config.unique_key = key.iter().map(|k| k.to_string()).collect();
    config.on_schema_change = on_schema_change.into();
    let plan = plan_model(d, &config, &compiled(SQL, true), Some(RelationKind::Table))?;
    let mut out = Vec::new();
    for step in &plan.steps {
        match step {
            Step::Run(s) => out.push(show_statement(s)),
            Step::Reconcile(r) => {
                out.push(format!("[{}] read the columns of {} and {}", place(r.in_transaction), r.new_rows, r.target));
                let statements = r.statements(d, &columns(new_cols), &columns(old_cols))?;
                out.extend(statements.iter().map(show_statement));
            }
            Step::Load { .. } | Step::Snapshot(_) => unreachable!("models load nothing and snapshot nothing"),
        }
    }
    Ok(out)
}

fn lines(text: &[&str]) -> Vec<String> {
    text.iter().map(|s| s.to_string()).collect()
}

#[test]
fn view_on_duckdb_is_one_create_or_replace_unless_a_table_is_in_the_way() {
    let create = "[own] create or replace view \"s\".\"m\" as (\nselect 1 as id, 'a' as v\n)";
    assert_eq!(model(DUCK, "view", None), lines(&[create]));
    assert_eq!(model(DUCK, "view", Some(RelationKind::View)), lines(&[create]));
    assert_eq!(
        model(DUCK, "view", Some(RelationKind::Table)),
        lines(&[
            "[tx] drop table if exists \"s\".\"m\"",
            "[tx] create view \"s\".\"m\" as (\nselect 1 as id, 'a' as v\n)",
        ])
    );
}

#[test]
fn view_on_postgres_drops_and_creates_in_one_transaction() {
    let create = "[tx] create view \"s\".\"m\" as (\nselect 1 as id, 'a' as v\n)";
    assert_eq!(model(PG, "view", None), lines(&[create]));
    assert_eq!(
        model(PG, "view", Some(RelationKind::View)),
        lines(&["[tx] drop view if exists \"s\".\"m\" cascade", create])
    );
    assert_eq!(
        model(PG, "view", Some(RelationKind::Table)),
        lines(&["[tx] drop table if exists \"s\".\"m\" cascade", create])
    );
}

#[test]
fn table_on_duckdb_is_one_create_or_replace_that_counts_its_rows() {
    let create = "[own rows] create or replace table \"s\".\"m\" as (\nselect 1 as id, 'a' as v\n)";
    assert_eq!(model(DUCK, "table", None), lines(&[create]));
    assert_eq!(model(DUCK, "table", Some(RelationKind::Table)), lines(&[create]));
    assert_eq!(
        model(DUCK, "table", Some(RelationKind::View)),
        lines(&[
            "[tx] drop view if exists \"s\".\"m\"",
            "[tx] create table \"s\".\"m\" as (\nselect 1 as id, 'a' as v\n)",
            "[tx count] select cast(count(*) as varchar) from \"s\".\"m\"",
        ])
    );
}

#[test]
fn table_on_postgres_is_built_beside_and_renamed_over_in_one_transaction() {
    let build = [
        "[tx] drop table if exists \"s\".\"m__dbt_tmp\"",
        "[tx] create table \"s\".\"m__dbt_tmp\" as (\nselect 1 as id, 'a' as v\n)",
    ];
    let swap = [
        "[tx] alter table \"s\".\"m__dbt_tmp\" rename to \"m\"",
        "[tx count] select cast(count(*) as varchar) from \"s\".\"m\"",
    ];
    assert_eq!(model(PG, "table", None), lines(&[&build[..], &swap[..]].concat()));
    for (kind, drop) in [
        (RelationKind::Table, "[tx] drop table if exists \"s\".\"m\" cascade"),
        (RelationKind::View, "[tx] drop view if exists \"s\".\"m\" cascade"),
    ] {
        assert_eq!(model(PG, "table", Some(kind)), lines(&[&build[..], &[drop], &swap[..]].concat()));
    }
}

#[test]
fn incremental_first_run_and_full_refresh_build_a_table() {
    for d in [DUCK, PG] {
        for existing in [None, Some(RelationKind::Table), Some(RelationKind::View)] {
            assert_eq!(model(d, "incremental", existing), model(d, "table", existing), "{} {existing:?}", d.name());
        }
    }
}

/// The first half of every incremental run: the new rows into `m__dbt_tmp`, then the columns.
const STAGE: [&str; 3] = [
    "[tx] drop table if exists \"s\".\"m__dbt_tmp\"",
    "[tx] create table \"s\".\"m__dbt_tmp\" as (\nselect 1 as id, 'a' as v\n)",
    "[tx] read the columns of s.m__dbt_tmp and s.m",
];
const FINISH: [&str; 2] =
    ["[tx count] select cast(count(*) as varchar) from \"s\".\"m__dbt_tmp\"", "[tx] drop table \"s\".\"m__dbt_tmp\""];

fn staged(middle: &[&str]) -> Vec<String> {
    lines(&[&STAGE[..], middle, &FINISH[..]].concat())
}

#[test]
fn incremental_append_inserts_the_common_columns() {
    let insert = "[tx] insert into \"s\".\"m\" (\"id\", \"v\") select \"id\", \"v\" from \"s\".\"m__dbt_tmp\"";
    for d in [DUCK, PG] {
        // No unique_key: append by default.
        assert_eq!(incremental(d, None, &[], "ignore", &["id", "v"], &["id", "v"]).unwrap(), staged(&[insert]));
        assert_eq!(
            incremental(d, Some("append"), &["id"], "ignore", &["id", "v"], &["id", "v"]).unwrap(),
            staged(&[insert])
        );
    }
}

#[test]
fn incremental_delete_insert_deletes_the_matching_keys_first() {
    for d in [DUCK, PG] {
        // With a unique_key: delete+insert by default.
        let expected = staged(&[
            "[tx] delete from \"s\".\"m\" where exists (select 1 from \"s\".\"m__dbt_tmp\" \
             where \"s\".\"m__dbt_tmp\".\"id\" = \"s\".\"m\".\"id\" and \"s\".\"m__dbt_tmp\".\"day\" = \"s\".\"m\".\"day\")",
            "[tx] insert into \"s\".\"m\" (\"id\", \"day\", \"v\") select \"id\", \"day\", \"v\" from \"s\".\"m__dbt_tmp\"",
        ]);
        let cols = ["id", "day", "v"];
        assert_eq!(incremental(d, None, &["id", "day"], "ignore", &cols, &cols).unwrap(), expected);
        assert_eq!(incremental(d, Some("delete+insert"), &["id", "day"], "ignore", &cols, &cols).unwrap(), expected);
    }
}

#[test]
fn incremental_merge_updates_the_other_columns() {
    for d in [DUCK, PG] {
        assert_eq!(
            incremental(d, Some("merge"), &["id"], "ignore", &["id", "v", "w"], &["id", "v", "w"]).unwrap(),
            staged(&["[tx] MERGE INTO \"s\".\"m\" AS t USING \"s\".\"m__dbt_tmp\" AS s ON t.\"id\" = s.\"id\" \
                 WHEN MATCHED THEN UPDATE SET \"v\" = s.\"v\", \"w\" = s.\"w\" \
                 WHEN NOT MATCHED THEN INSERT (\"id\", \"v\", \"w\") VALUES (s.\"id\", s.\"v\", s.\"w\")"])
        );
    }
}

#[test]
fn incremental_schema_changes_follow_on_schema_change() {
    let new_cols = ["id", "w VARCHAR"];
    let old_cols = ["id", "v"];
    for d in [DUCK, PG] {
        // ignore: the new column is not loaded, the removed one gets NULL.
        assert_eq!(
            incremental(d, None, &[], "ignore", &new_cols, &old_cols).unwrap(),
            staged(&["[tx] insert into \"s\".\"m\" (\"id\") select \"id\" from \"s\".\"m__dbt_tmp\""])
        );
        assert_eq!(
            incremental(d, None, &[], "append_new_columns", &new_cols, &old_cols).unwrap(),
            staged(&[
                "[tx] alter table \"s\".\"m\" add column \"w\" VARCHAR",
                "[tx] insert into \"s\".\"m\" (\"id\", \"w\") select \"id\", \"w\" from \"s\".\"m__dbt_tmp\"",
            ])
        );
        assert_eq!(
            incremental(d, None, &[], "sync_all_columns", &new_cols, &old_cols).unwrap(),
            staged(&[
                "[tx] alter table \"s\".\"m\" add column \"w\" VARCHAR",
                "[tx] alter table \"s\".\"m\" drop column \"v\"",
                "[tx] insert into \"s\".\"m\" (\"id\", \"w\") select \"id\", \"w\" from \"s\".\"m__dbt_tmp\"",
            ])
        );
        let err = incremental(d, None, &[], "fail", &new_cols, &old_cols).unwrap_err().to_string();
        assert_eq!(
            err,
            "the columns of m changed (added: [w], removed: [v]) and on_schema_change is `fail`; \
             set on_schema_change to append_new_columns or sync_all_columns, or run with --full-refresh"
        );
        // Names differing only in case are the same column.
        assert!(incremental(d, None, &[], "fail", &["ID"], &["id"]).is_ok());
    }
}

#[test]
fn incremental_strategies_are_checked_on_incremental_runs() {
    let err = incremental(DUCK, Some("bad_strategy"), &[], "ignore", &[], &[]).unwrap_err().to_string();
    assert_eq!(err, "invalid incremental strategy `bad_strategy`; expected one of: append, delete+insert, merge");
    let err = incremental(PG, Some("merge"), &[], "ignore", &[], &[]).unwrap_err().to_string();
    assert_eq!(err, "incremental strategy `merge` needs a `unique_key` config");
    // The first run builds a table, whatever the strategy says (as before).
    let mut config = NodeConfig::defaults("incremental");
    config.incremental_strategy = Some("bad_strategy".into());
    assert!(plan_model(DUCK, &config, &compiled(SQL, false), None).is_ok());
}

/// A dialect without `MERGE`, transactional DDL or `CREATE OR REPLACE` (what the capabilities change).
#[derive(Debug)]
struct Minimal;

impl Dialect for Minimal {
    fn name(&self) -> &'static str {
        "minimal"
    }
    fn column_type(&self, ty: mdp_warehouse::ColumnType) -> String {
        PostgresDialect.column_type(ty)
    }
    fn date_add_days(&self, date_expr: &str, days: i64) -> String {
        PostgresDialect.date_add_days(date_expr, days)
    }
    fn json_object_keys(&self, expr: &str) -> String {
        PostgresDialect.json_object_keys(expr)
    }
    fn json_type(&self, expr: &str) -> String {
        PostgresDialect.json_type(expr)
    }
    fn transactional_ddl(&self) -> bool {
        false
    }
    fn supports_merge(&self) -> bool {
        false
    }
}

#[test]
fn capabilities_decide_transactions_and_strategies() {
    // Without transactional DDL every statement stands alone.
    assert!(model(&Minimal, "table", Some(RelationKind::Table)).iter().all(|s| s.starts_with("[own")));
    let err = incremental(&Minimal, Some("merge"), &["id"], "ignore", &[], &[]).unwrap_err().to_string();
    assert_eq!(err, "incremental strategy `merge` is not supported on minimal; use delete+insert");
}

#[test]
fn hooks_run_on_their_own_around_the_build() {
    let config = NodeConfig::defaults("table");
    let mut node = compiled(SQL, false);
    node.pre_hooks = vec!["insert into audit values ('start')".into()];
    node.post_hooks = vec!["grant select on \"s\".\"m\" to reporter".into(), "analyze \"s\".\"m\"".into()];
    let plan = plan_model(PG, &config, &node, None).unwrap();
    let shown = show(&plan, PG, &[], &[]);
    assert_eq!(shown.first().unwrap(), "[own] insert into audit values ('start')");
    assert_eq!(
        shown[shown.len() - 2..],
        lines(&["[own] grant select on \"s\".\"m\" to reporter", "[own] analyze \"s\".\"m\""])
    );
    assert!(shown[1..shown.len() - 2].iter().all(|s| s.starts_with("[tx")), "{shown:#?}");
}

#[test]
fn ephemeral_plans_nothing_and_unknown_materializations_are_refused() {
    let config = NodeConfig::defaults("ephemeral");
    let plan = plan_model(DUCK, &config, &compiled(SQL, false), None).unwrap();
    assert!(plan.steps.is_empty());
    assert_eq!(plan.report.message(None), "EPHEMERAL");
    let err = plan_model(DUCK, &NodeConfig::defaults("snapshot"), &compiled(SQL, false), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown materialization `snapshot`; mdp builds view, table, incremental and ephemeral models"
    );
}

#[test]
fn reports_say_what_was_built() {
    assert_eq!(Report::CreateView.message(None), "CREATE VIEW");
    assert_eq!(Report::Select.message(Some(42)), "SELECT 42");
    assert_eq!(Report::Select.message(None), "CREATE TABLE");
    assert_eq!(Report::Insert.message(Some(7)), "INSERT 7");
}

fn seed_column(name: &str, sql_type: &str, cast_needed: bool) -> SeedColumn {
    SeedColumn { name: name.into(), arrow_type: DataType::Utf8, sql_type: sql_type.into(), cast_needed }
}

fn seed(
    d: &dyn Dialect,
    columns: &[SeedColumn],
    existing: Option<RelationKind>,
    existing_columns: &[&str],
    full_refresh: bool,
) -> Vec<String> {
    let existing_columns: Vec<String> = existing_columns.iter().map(|c| c.to_string()).collect();
    let seed = Seed {
        relation: TableRef::new("s", "fx"),
        file: "seeds/fx.csv".into(),
        columns,
        existing,
        existing_columns: &existing_columns,
        full_refresh,
    };
    let plan = plan_seed(&seed, d).unwrap();
    assert_eq!(plan.report, Report::Insert);
    show(&plan, d, &[], &[])
}

#[test]
fn seeds_create_or_refill_their_table_and_load_in_one_transaction() {
    let cols = [seed_column("day", "date", false), seed_column("rate", "numeric", false)];
    let create = "[tx] create table \"s\".\"fx\" (\"day\" date, \"rate\" numeric)";
    let load = "[tx] load seeds/fx.csv into s.fx";
    for d in [DUCK, PG] {
        assert_eq!(seed(d, &cols, None, &[], false), lines(&[create, load]));
        // The same columns (whatever their case): emptied and refilled, views on it survive.
        assert_eq!(
            seed(d, &cols, Some(RelationKind::Table), &["DAY", "rate"], false),
            lines(&["[tx] delete from \"s\".\"fx\"", load])
        );
    }
    assert!(Seed::needs_existing_columns(Some(RelationKind::Table), false));
    assert!(!Seed::needs_existing_columns(Some(RelationKind::Table), true));
    assert!(!Seed::needs_existing_columns(Some(RelationKind::View), false));
    // Other columns, --full-refresh or a view: replaced.
    for (d, cascade) in [(DUCK, ""), (PG, " cascade")] {
        let drop_table = format!("[tx] drop table if exists \"s\".\"fx\"{cascade}");
        assert_eq!(seed(d, &cols, Some(RelationKind::Table), &["day"], false), lines(&[&drop_table, create, load]));
        assert_eq!(seed(d, &cols, Some(RelationKind::Table), &[], true), lines(&[&drop_table, create, load]));
        let drop_view = format!("[tx] drop view if exists \"s\".\"fx\"{cascade}");
        assert_eq!(seed(d, &cols, Some(RelationKind::View), &[], false), lines(&[&drop_view, create, load]));
    }
}

#[test]
fn seed_columns_with_a_configured_type_are_loaded_as_text_and_cast() {
    let cols = [seed_column("day", "date", true), seed_column("rate", "numeric(10,4)", false)];
    assert_eq!(
        seed(DUCK, &cols, None, &[], false),
        lines(&[
            "[tx] create table \"s\".\"fx\" (\"day\" date, \"rate\" numeric(10,4))",
            "[tx] drop table if exists \"s\".\"fx__mdp_seed\"",
            "[tx] create table \"s\".\"fx__mdp_seed\" (\"day\" VARCHAR, \"rate\" numeric(10,4))",
            "[tx] load seeds/fx.csv into s.fx__mdp_seed",
            "[tx] insert into \"s\".\"fx\" select cast(\"day\" as date), \"rate\" from \"s\".\"fx__mdp_seed\"",
            "[tx] drop table \"s\".\"fx__mdp_seed\"",
        ])
    );
    let pg = seed(PG, &cols, None, &[], false);
    assert_eq!(pg[2], "[tx] create table \"s\".\"fx__mdp_seed\" (\"day\" text, \"rate\" numeric(10,4))");
}

#[test]
fn tests_count_failing_rows_with_their_conditions() {
    let mut config = NodeConfig::defaults("test");
    config.warn_if = "> 10".into();
    config.limit = Some(100);
    let queries = plan_test(&config, "select * from \"s\".\"m\" where id is null").unwrap();
    assert_eq!(
        queries.count,
        "select cast(count(*) as varchar) as failures, \
         cast(case when count(*) > 10 then 1 else 0 end as varchar) as should_warn, \
         cast(case when count(*) != 0 then 1 else 0 end as varchar) as should_error \
         from (\nselect * from \"s\".\"m\" where id is null\nlimit 100\n) dbt_internal_test"
    );
    assert_eq!(
        queries.sample,
        "select * from (\nselect * from \"s\".\"m\" where id is null\n) dbt_internal_test limit 5"
    );
    config.error_if = "!= 0; drop table x".into();
    let err = plan_test(&config, "select 1").unwrap_err().to_string();
    assert_eq!(err, "`!= 0; drop table x` is not a condition like `!= 0` or `> 10`");
}

#[test]
fn plans_quote_every_name() {
    let config = NodeConfig::defaults("table");
    let model = Model {
        name: "m",
        config: &config,
        relation: TableRef::new("my schema", "a\"b"),
        compiled: &compiled(SQL, false),
        existing: None,
    };
    let plan = Materialization::Table.plan(&model, PG).unwrap();
    let shown = show(&plan, PG, &[], &[]);
    assert_eq!(shown[2], "[tx] alter table \"my schema\".\"a\"\"b__dbt_tmp\" rename to \"a\"\"b\"");
    let empty = Model { relation: TableRef::new("s", ""), ..model };
    assert!(Materialization::View.plan(&empty, DUCK).is_err(), "an empty name cannot be quoted");
}
