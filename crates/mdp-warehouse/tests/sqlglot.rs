//! Every statement shape the dialects generate parses with sqlglot, a SQL parser that knows each
//! engine's grammar (`read="bigquery"`, `"snowflake"`, `"duckdb"`, `"postgres"`): a second opinion on
//! the SQL mdp writes for engines the tests can only reach through stand-ins.
//!
//! Runs when `MDP_TEST_SQLGLOT_PYTHON` names a Python with sqlglot (`.ci/run` points it at the
//! bqemulator venv, which has it); without it the test prints a notice and passes, unless
//! `MDP_TEST_REQUIRE_SQLGLOT=1` (`.ci/run` sets it too) makes that a failure.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::NaiveDate;
use mdp_warehouse::{
    BigQueryDialect, ColumnDef, ColumnType, Condition, DatePart, Dialect, DuckDbDialect, Literal, PostgresDialect,
    RelationKind, SnowflakeDialect, TableRef, TableSchema,
};

/// The statements `d` renders: DDL, DML, materialization templates, and a SELECT of every expression.
fn corpus(d: &dyn Dialect) -> Vec<String> {
    use ColumnType::*;
    let t = TableRef::new("raw", "ad performance");
    let tmp = TableRef::new("raw", "ad performance__dbt_tmp");
    let q = |ident: &str| d.quote_identifier(ident).unwrap();
    let schema = TableSchema::new(vec![
        ColumnDef::new("ad_id", Text).not_null(),
        ColumnDef::new("clicks", Int32),
        ColumnDef::new("impressions", Int64),
        ColumnDef::new("spend", Decimal(18, 6)),
        ColumnDef::new("score", Float64),
        ColumnDef::new("active", Boolean),
        ColumnDef::new("date", Date),
        ColumnDef::new("extracted_at", Timestamp),
        ColumnDef::new("payload", Json),
    ])
    .with_primary_key(&["ad_id"]);
    let day = NaiveDate::from_ymd_opt(2026, 6, 30).unwrap();
    let at = day.and_hms_micro_opt(10, 0, 0, 500_000).unwrap();
    let conditions = [
        Condition::eq("account_id", Literal::Text("O'Brien \\ co")),
        Condition::ge("date", Literal::Date(day)),
        Condition::le("extracted_at", Literal::Timestamp(at)),
        Condition::eq("clicks", Literal::Int(-3)),
        Condition::eq("active", Literal::Bool(true)),
    ];
    let keys = vec!["ad_id".to_string()];
    let updates = vec!["clicks".to_string(), "spend".to_string()];
    let query = format!("select * from {}", d.qualified(&t).unwrap());
    let spend = q("spend");
    let date = q("date");
    let at_col = q("extracted_at");
    let payload = q("payload");
    let expressions = [
        d.date_add_days(&date, -7),
        d.date_diff_days(&date, &d.literal(&Literal::Date(day)).unwrap()),
        d.date_trunc(DatePart::Day, &date),
        d.date_trunc(DatePart::Week, &date),
        d.date_trunc(DatePart::Month, &date),
        d.date_trunc(DatePart::Quarter, &date),
        d.date_trunc(DatePart::Year, &date),
        d.safe_divide(&spend, &q("clicks")),
        d.ratio(&q("clicks"), &q("impressions"), 1000),
        d.cast_to_text(&spend),
        d.cast_to_double(&spend),
        d.cast(&q("score"), Decimal(38, 9)),
        d.cast(&q("ad_id"), Int64),
        d.cast(&q("ad_id"), Timestamp),
        d.json_type(&payload),
        d.json_object_keys(&payload),
        d.json_member(&payload, &d.string_literal("name").unwrap()),
        d.snapshot_get_time(),
        d.snapshot_hash_sql(&[q("ad_id"), at_col.clone()]),
        d.seconds_between(&at_col, &d.literal(&Literal::Timestamp(at)).unwrap()),
        d.literal(&Literal::Null).unwrap(),
    ];
    let aggregates = [d.sum_exact(&spend, Decimal(18, 6)), d.sum_exact(&q("clicks"), Int64), d.median(&spend)];
    vec![
        d.create_schema_sql("raw").unwrap(),
        d.create_table_sql(&t, &schema).unwrap(),
        d.add_column_sql(&t, &ColumnDef::new("new column", Decimal(38, 9))).unwrap(),
        d.delete_where_sql(&t, &conditions).unwrap(),
        d.merge_sql(&t, &format!("({query})"), &keys, &updates).unwrap(),
        d.merge_sql(&t, &d.qualified(&tmp).unwrap(), &keys, &[]).unwrap(),
        d.create_table_as_sql(&tmp, &query).unwrap(),
        d.create_or_replace_table_as_sql(&tmp, &query).unwrap(),
        d.create_view_as_sql(&tmp, &query).unwrap(),
        d.create_or_replace_view_as_sql(&tmp, &query).unwrap(),
        d.drop_relation_sql(&tmp, RelationKind::View).unwrap(),
        d.drop_relation_sql(&tmp, RelationKind::Table).unwrap(),
        d.drop_table_if_exists_sql(&tmp).unwrap(),
        d.drop_schema_cascade_sql("raw").unwrap(),
        d.columns_query(&t).unwrap(),
        format!("SELECT {} FROM {}", expressions.join(", "), d.qualified(&t).unwrap()),
        format!("SELECT {} FROM {} GROUP BY {date}", aggregates.join(", "), d.qualified(&t).unwrap()),
    ]
}

/// The statements sqlglot could not parse, with its error.
fn unparsed(python: &str, statements: &[(&str, String)]) -> Vec<String> {
    let script = r#"
import json, sys
import sqlglot
failures = []
for item in json.load(sys.stdin):
    try:
        sqlglot.parse(item["sql"], read=item["dialect"], error_level=sqlglot.ErrorLevel.RAISE)
    except Exception as e:
        failures.append(f"{item['dialect']}: {item['sql']}\n  -> {str(e).splitlines()[0]}")
print(json.dumps(failures))
"#;
    let items: Vec<serde_json::Value> =
        statements.iter().map(|(dialect, sql)| serde_json::json!({"dialect": dialect, "sql": sql})).collect();
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child.stdin.take().unwrap().write_all(serde_json::to_string(&items).unwrap().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "sqlglot's check did not run: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("sqlglot's check answers a JSON list")
}

#[test]
fn every_generated_statement_parses_with_sqlglot_for_its_dialect() {
    let python = match std::env::var("MDP_TEST_SQLGLOT_PYTHON") {
        Ok(python) if !python.is_empty() => python,
        _ if std::env::var("MDP_TEST_REQUIRE_SQLGLOT").as_deref() == Ok("1") => panic!(
            "MDP_TEST_REQUIRE_SQLGLOT=1 but MDP_TEST_SQLGLOT_PYTHON is not set: point it at a Python with sqlglot \
             (`pip install sqlglot`), or unset MDP_TEST_REQUIRE_SQLGLOT to skip"
        ),
        _ => {
            eprintln!("NOTICE: skipping the sqlglot check: MDP_TEST_SQLGLOT_PYTHON is not set (.ci/run sets it)");
            return;
        }
    };
    let dialects: [(&str, &dyn Dialect); 4] = [
        ("bigquery", &BigQueryDialect),
        ("snowflake", &SnowflakeDialect),
        ("duckdb", &DuckDbDialect),
        ("postgres", &PostgresDialect),
    ];
    let mut statements = Vec::new();
    for (name, dialect) in dialects {
        assert_eq!(dialect.name(), name);
        statements.extend(corpus(dialect).into_iter().map(|sql| (name, sql)));
    }
    assert!(statements.len() >= 60, "the corpus covers every dialect");
    let failures = unparsed(&python, &statements);
    assert!(failures.is_empty(), "sqlglot cannot parse {} statement(s):\n{}", failures.len(), failures.join("\n"));
    // The check can fail: a statement that is not SQL in any dialect is reported.
    assert_eq!(unparsed(&python, &[("bigquery", "SELECT FROM WHERE (".into())]).len(), 1);
}
