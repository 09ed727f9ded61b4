//! One adapter test suite, run against every warehouse adapter.
//!
//! DuckDB always runs. Postgres runs when `MDP_TEST_POSTGRES_URL` names a server (`.ci/run` starts
//! one and sets it); without it each Postgres test prints a notice and passes vacuously, unless
//! `MDP_TEST_REQUIRE_POSTGRES=1` (`.ci/run` sets it too) makes the missing server a failure. Every
//! test works in its own schemas, so the suite runs in parallel against one server.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray,
};
use futures::StreamExt;
use mdp_warehouse::meta::{self, CheckResult, Metadata, RunStatus, StreamCursor, TaskRecord};
use mdp_warehouse::{
    batch_stream, connect, string_rows, Access, ColumnDef, ColumnType, Condition, ConnectOptions, DatePart, Literal,
    LockHolder, Opened, RelationKind, TableRef, TableSchema, TableTotals, Warehouse, WarehouseError,
};

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

/// A local stand-in's address from `url_var` (`.ci/run` starts the stand-in and sets it), or `None`
/// (with a notice) to skip; a failure instead when `require_var` is `1`, so that a machine with the
/// stand-in never passes these tests vacuously.
fn stand_in_url(url_var: &str, require_var: &str, what: &str, how: &str) -> Option<String> {
    match std::env::var(url_var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var(require_var).as_deref() == Ok("1") => panic!(
            "{require_var}=1 but {url_var} is not set, so the {what} cannot run: {how}, or unset {require_var} to \
             skip these variants"
        ),
        _ => {
            eprintln!("NOTICE: skipping the {what}: {url_var} is not set (.ci/run sets it)");
            None
        }
    }
}

fn snowflake_url(what: &str) -> Option<String> {
    stand_in_url(
        "MDP_TEST_SNOWFLAKE_URL",
        "MDP_TEST_REQUIRE_SNOWFLAKE",
        what,
        "start fakesnow (`fakesnow -s -p 18616`) and set it to http://127.0.0.1:18616",
    )
}

fn bigquery_url(what: &str) -> Option<String> {
    stand_in_url(
        "MDP_TEST_BIGQUERY_URL",
        "MDP_TEST_REQUIRE_BIGQUERY",
        what,
        "start bqemulator (`python .ci/bqemulator_offline.py start --rest-port 19050 --project mdp-test`) and set \
         it to http://127.0.0.1:19050",
    )
}

struct Harness {
    options: ConnectOptions,
    /// The schema this test creates its tables in.
    schema: String,
    _dir: Option<tempfile::TempDir>,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl Harness {
    fn duckdb() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let options = ConnectOptions::duckdb(dir.path().join("warehouse.duckdb"));
        Harness { options, schema: unique("t"), _dir: Some(dir) }
    }

    fn postgres() -> Option<Harness> {
        let url = postgres_url("Postgres adapter test")?;
        let options = ConnectOptions::postgres(url, "test server").with_metadata_schema(unique("mdp_meta_t"));
        Some(Harness { options, schema: unique("t"), _dir: None })
    }

    fn snowflake() -> Option<Harness> {
        let url = snowflake_url("Snowflake adapter test")?;
        let config = mdp_warehouse::SnowflakeConfig {
            account: "mdp_test".into(),
            user: "mdp".into(),
            auth: mdp_warehouse::SnowflakeAuth::Password("any".into()),
            database: "mdp_test".into(),
            schema: None,
            warehouse: None,
            role: None,
            base_url: Some(url),
        };
        // A short lease, so the killed-writer test sees it run out within seconds.
        let options = ConnectOptions::snowflake(config)
            .with_metadata_schema(unique("mdp_meta_t"))
            .with_lease(std::time::Duration::from_secs(2));
        Some(Harness { options, schema: unique("t"), _dir: None })
    }

    fn bigquery() -> Option<Harness> {
        let url = bigquery_url("BigQuery adapter test")?;
        let schema = unique("t");
        let mut config =
            mdp_warehouse::BigQueryConfig::new("mdp-test", schema.clone(), mdp_warehouse::BigQueryAuth::None);
        config.base_url = Some(url);
        // A short lease, so the killed-writer test sees it run out within seconds.
        let options = ConnectOptions::bigquery(config)
            .with_metadata_schema(unique("mdp_meta_t"))
            .with_lease(std::time::Duration::from_secs(2));
        Some(Harness { options, schema, _dir: None })
    }

    async fn writer(&self, run_id: &str) -> Opened {
        connect(&self.options, Access::Write(LockHolder::current(run_id, "test"))).await.expect("open writer")
    }

    /// A table and a column name that try to end the statement and start another. fakesnow's SQL
    /// translator (sqlglot) cannot parse a `;`, a `'` or a `--` inside a quoted name, which Snowflake
    /// itself accepts: there the names only try to break out of their quotes (what quoting must
    /// prevent either way).
    fn evil_names(&self) -> (&'static str, &'static str) {
        match self.options {
            ConnectOptions::Snowflake { .. } => ("evil\" DROP TABLE keep", "x\"y z"),
            // BigQuery's table names hold letters, digits, `_`, `-` and spaces (bqemulator: no spaces), never a
            // backquote: only the column can try.
            ConnectOptions::BigQuery { .. } => ("evil-DROP-TABLE-keep", "x'y; -- z"),
            _ => ("evil\"; DROP TABLE keep; --", "x\"y'; --"),
        }
    }

    /// Whether a transaction runs as one script at commit, so that a read inside it first commits the
    /// writes before it (BigQuery: no transaction spans requests outside a session).
    fn commits_before_a_read(&self) -> bool {
        matches!(self.options, ConnectOptions::BigQuery { .. })
    }

    fn table(&self, name: &str) -> TableRef {
        TableRef::new(&self.schema, name)
    }

    /// Drop what the test created (Postgres keeps schemas between runs; DuckDB's temp dir goes anyway).
    async fn cleanup(&self, w: &dyn Warehouse) {
        let d = w.dialect();
        let sql = format!(
            "DROP SCHEMA IF EXISTS {} CASCADE; DROP SCHEMA IF EXISTS {} CASCADE",
            d.quote_identifier(&self.schema).unwrap(),
            d.quote_identifier(w.metadata_schema()).unwrap()
        );
        w.execute(&sql).await.unwrap();
    }
}

macro_rules! adapter_suite {
    ($($test:ident),* $(,)?) => {
        mod duckdb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(super::Harness::duckdb()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(harness) = super::Harness::postgres() {
                        super::$test(harness).await
                    }
                }
            )*
        }
        mod snowflake {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(harness) = super::Harness::snowflake() {
                        super::$test(harness).await
                    }
                }
            )*
        }
        mod bigquery {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    if let Some(harness) = super::Harness::bigquery() {
                        super::$test(harness).await
                    }
                }
            )*
        }
    };
}

adapter_suite!(
    typed_batches_round_trip_exactly,
    large_results_stream_in_batches,
    transactions_commit_together_and_roll_back,
    bad_sql_reports_the_database_message_and_the_sql,
    identifiers_can_never_inject_sql,
    introspection_lists_relations_and_columns,
    loads_with_unknown_columns_fail_clearly,
    metadata_is_created_once_and_records_runs_state_and_checks,
    a_second_writer_is_locked_out_until_the_first_closes,
    a_killed_writer_leaves_a_stale_lock_that_is_detected,
    merge_upserts_without_duplicates,
    dialect_functions_agree_across_engines,
    metadata_summaries_are_read_by_column_name,
    replace_where_deletes_only_the_window_and_totals_are_exact,
    a_table_made_by_an_older_version_gains_new_columns_and_keeps_its_rows,
    a_writer_refused_at_open_leaves_no_lock_behind,
);

/// An ad-performance-like schema that uses every column type.
fn every_type_schema() -> TableSchema {
    use ColumnType::*;
    TableSchema::new(vec![
        ColumnDef::new("ad_id", Text).not_null(),
        ColumnDef::new("impressions", Int64),
        ColumnDef::new("clicks", Int32),
        ColumnDef::new("spend", Decimal(18, 6)),
        ColumnDef::new("score", Float64),
        ColumnDef::new("active", Boolean),
        ColumnDef::new("date", Date),
        ColumnDef::new("extracted_at", Timestamp),
        ColumnDef::new("payload", Json),
    ])
}

fn every_type_batch() -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["ad-1", "ad-'2'", "ad-3"])),
        Arc::new(Int64Array::from(vec![Some(1_000_000_000_000), Some(0), None])),
        Arc::new(Int32Array::from(vec![Some(17), None, Some(-1)])),
        Arc::new(Decimal128Array::from(vec![Some(12_340_000), Some(1), None]).with_precision_and_scale(18, 6).unwrap()),
        Arc::new(Float64Array::from(vec![Some(0.5), None, Some(-2.25)])),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        Arc::new(Date32Array::from(vec![Some(20_454), None, Some(0)])), // 2026-01-01, NULL, 1970-01-01
        Arc::new(TimestampMicrosecondArray::from(vec![Some(1_767_225_600_123_456), None, Some(0)])),
        Arc::new(StringArray::from(vec![Some(r#"{"a": 1, "b": [true, null]}"#), Some("[]"), None])),
    ];
    RecordBatch::try_new(every_type_schema().arrow_schema(), columns).unwrap()
}

async fn typed_batches_round_trip_exactly(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let t = h.table("perf");
    w.create_table(&t, &every_type_schema()).await.unwrap();
    let rows = w.bulk_load(&t, batch_stream(vec![every_type_batch()])).await.unwrap();
    assert_eq!(rows, 3);
    let sql = format!(
        "SELECT ad_id, CAST(impressions AS VARCHAR), CAST(clicks AS VARCHAR), CAST(spend AS VARCHAR), \
         CAST(score AS VARCHAR), CAST(active AS VARCHAR), CAST(date AS VARCHAR), CAST(extracted_at AS VARCHAR), \
         CAST(payload AS VARCHAR) FROM {}",
        w.dialect().qualified(&t).unwrap()
    );
    // Sorted here, byte-wise: a database's collation may ignore the quote in "ad-'2'".
    let mut got = string_rows(&w.query_all(&sql).await.unwrap()).unwrap();
    got.sort();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[0][..8],
        [s("ad-'2'"), s("0"), None, s("0.000001"), None, s("false"), None, None],
        "NULLs and the smallest money unit survive"
    );
    assert_eq!(
        got[1][..8],
        [
            s("ad-1"),
            s("1000000000000"),
            s("17"),
            s("12.340000"),
            s("0.5"),
            s("true"),
            s("2026-01-01"),
            s("2026-01-01 00:00:00.123456")
        ]
    );
    let json: serde_json::Value = serde_json::from_str(got[1][8].as_deref().unwrap()).unwrap();
    assert_eq!(json, serde_json::json!({"a": 1, "b": [true, null]}));
    assert_eq!(got[2][7], s("1970-01-01 00:00:00"));
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

/// `n` rows of (id, spend) where spend is id micros, in batches of `batch` rows.
fn numbered_batches(n: i64, batch: i64) -> Vec<RecordBatch> {
    let schema = TableSchema::new(vec![
        ColumnDef::new("id", ColumnType::Int64),
        ColumnDef::new("spend", ColumnType::Decimal(18, 6)),
    ])
    .arrow_schema();
    (0..n)
        .step_by(batch as usize)
        .map(|start| {
            let ids: Vec<i64> = (start..(start + batch).min(n)).collect();
            let spend = Decimal128Array::from(ids.iter().map(|i| *i as i128).collect::<Vec<_>>())
                .with_precision_and_scale(18, 6)
                .unwrap();
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(ids)), Arc::new(spend)]).unwrap()
        })
        .collect()
}

async fn create_numbered(w: &dyn Warehouse, t: &TableRef) {
    let schema = TableSchema::new(vec![
        ColumnDef::new("id", ColumnType::Int64),
        ColumnDef::new("spend", ColumnType::Decimal(18, 6)),
    ]);
    w.create_table(t, &schema).await.unwrap();
}

async fn a_table_made_by_an_older_version_gains_new_columns_and_keeps_its_rows(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let t = h.table("evolving");
    create_numbered(w, &t).await;
    w.bulk_load(&t, batch_stream(numbered_batches(3, 3))).await.unwrap();
    let newer = TableSchema::new(vec![
        ColumnDef::new("id", ColumnType::Int64),
        ColumnDef::new("spend", ColumnType::Decimal(18, 6)),
        ColumnDef::new("definition", ColumnType::Text),
    ]);
    assert_eq!(w.create_table(&t, &newer).await.unwrap(), ["definition"]);
    assert!(w.create_table(&t, &newer).await.unwrap().is_empty(), "once added, nothing more to add");
    let names: Vec<String> = w.columns(&t).await.unwrap().into_iter().map(|c| c.name).collect();
    assert_eq!(names, ["id", "spend", "definition"], "appended last, so loads by position still line up");
    let q = w.dialect().qualified(&t).unwrap();
    let rows =
        string_rows(&w.query_all(&format!("SELECT count(*), count(definition) FROM {q}")).await.unwrap()).unwrap();
    assert_eq!(rows[0], [Some("3".to_string()), Some("0".to_string())], "old rows kept, NULL in the new column");
    let required = TableSchema::new(vec![
        ColumnDef::new("id", ColumnType::Int64),
        ColumnDef::new("spend", ColumnType::Decimal(18, 6)),
        ColumnDef::new("definition", ColumnType::Text),
        ColumnDef::new("required", ColumnType::Text).not_null(),
    ]);
    let error = w.create_table(&t, &required).await.unwrap_err().to_string();
    assert!(error.contains("lacks the NOT NULL column required"), "{error}");
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn large_results_stream_in_batches(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let t = h.table("numbers");
    create_numbered(w, &t).await;
    let n = 50_000;
    assert_eq!(w.bulk_load(&t, batch_stream(numbered_batches(n, 7_000))).await.unwrap(), n as u64);
    let q = w.dialect().qualified(&t).unwrap();
    let mut stream = w.query(&format!("SELECT id, spend FROM {q}")).await.unwrap();
    let (mut batches, mut rows) = (0, 0);
    while let Some(batch) = stream.next().await {
        batches += 1;
        rows += batch.unwrap().num_rows();
    }
    assert_eq!(rows, n as usize);
    assert!(batches > 1, "50k rows must arrive in several batches, got {batches}");
    // Exact decimal sum: sum of 0..n micros.
    let sum = w.dialect().sum_exact("spend", ColumnType::Decimal(18, 6));
    let total = string_rows(&w.query_all(&format!("SELECT CAST({sum} AS VARCHAR) FROM {q}")).await.unwrap()).unwrap();
    let expected_micros = n * (n - 1) / 2;
    assert_eq!(
        total[0][0].as_deref(),
        Some(format!("{}.{:06}", expected_micros / 1_000_000, expected_micros % 1_000_000).as_str())
    );
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn count(w: &dyn Warehouse, t: &TableRef) -> i64 {
    let sql = format!("SELECT CAST(count(*) AS BIGINT) FROM {}", w.dialect().qualified(t).unwrap());
    string_rows(&w.query_all(&sql).await.unwrap()).unwrap()[0][0].as_deref().unwrap().parse().unwrap()
}

async fn transactions_commit_together_and_roll_back(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let t = h.table("window");
    create_numbered(w, &t).await;
    w.bulk_load(&t, batch_stream(numbered_batches(100, 100))).await.unwrap();
    let q = w.dialect().qualified(&t).unwrap();

    // Replace-by-window, rolled back: nothing changes, also when the load was large enough to be handed
    // to the table in several parts (DuckDB's appender is flushed every 32,768 rows).
    let mut tx = w.begin().await.unwrap();
    tx.execute(&format!("DELETE FROM {q} WHERE id >= 50")).await.unwrap();
    tx.bulk_load(&t, batch_stream(numbered_batches(40_000, 8_192))).await.unwrap();
    if h.commits_before_a_read() {
        // BigQuery: a transaction is one script at commit; a read inside it commits what came before.
        tx.rollback().await.unwrap();
        assert_eq!(count(w, &t).await, 100, "a rollback before any read sends nothing");
        let mut tx = w.begin().await.unwrap();
        tx.execute(&format!("DELETE FROM {q} WHERE id >= 50")).await.unwrap();
        tx.bulk_load(&t, batch_stream(numbered_batches(40_000, 8_192))).await.unwrap();
        let inside = string_rows(&tx.query_all(&format!("SELECT count(*) FROM {q}")).await.unwrap()).unwrap();
        assert_eq!(inside[0][0].as_deref(), Some("40050"), "the transaction sees its own writes");
        tx.commit().await.unwrap();
        assert_eq!(count(w, &t).await, 40_050);
        // Back to the 100 rows the rest of the test starts from.
        w.execute(&format!("DELETE FROM {q} WHERE TRUE")).await.unwrap();
        w.bulk_load(&t, batch_stream(numbered_batches(100, 100))).await.unwrap();
    } else {
        let inside = string_rows(&tx.query_all(&format!("SELECT count(*) FROM {q}")).await.unwrap()).unwrap();
        assert_eq!(inside[0][0].as_deref(), Some("40050"), "the transaction sees its own writes");
        tx.rollback().await.unwrap();
    }
    assert_eq!(count(w, &t).await, 100);

    // Dropped without commit (a crash mid-window): rolled back too.
    let mut tx = w.begin().await.unwrap();
    tx.execute(&format!("DELETE FROM {q} WHERE TRUE")).await.unwrap();
    drop(tx);
    assert_eq!(count(w, &t).await, 100);

    // Committed: delete, load and a statement land together.
    let mut tx = w.begin().await.unwrap();
    tx.execute(&format!("DELETE FROM {q} WHERE id >= 50")).await.unwrap();
    tx.bulk_load(&t, batch_stream(numbered_batches(10, 10))).await.unwrap();
    tx.execute(&format!("INSERT INTO {q} (id, spend) VALUES (-1, 1.5)")).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(w, &t).await, 61);

    // A failing statement inside a transaction is reported, and commit-less drop loses nothing.
    let mut tx = w.begin().await.unwrap();
    tx.execute(&format!("DELETE FROM {q} WHERE TRUE")).await.unwrap();
    let missing = format!("INSERT INTO {} VALUES (1)", w.dialect().qualified(&h.table("no_such_table")).unwrap());
    if h.commits_before_a_read() {
        // BigQuery: the script fails at commit, all or nothing.
        tx.execute(&missing).await.unwrap();
        assert!(tx.commit().await.is_err(), "the failing statement fails the commit");
    } else {
        assert!(tx.execute(&missing).await.is_err());
        drop(tx);
    }
    assert_eq!(count(w, &t).await, 61);
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn bad_sql_reports_the_database_message_and_the_sql(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    match w.execute("SELEC 1 FROM nowhere").await {
        Err(WarehouseError::Sql { message, sql, .. }) => {
            // The database's own words: "syntax error" (DuckDB, Postgres, Snowflake), "unexpected
            // token" (fakesnow's SQL translator).
            let lower = message.to_lowercase();
            assert!(lower.contains("syntax") || lower.contains("unexpected token"), "message: {message}");
            assert_eq!(sql, "SELEC 1 FROM nowhere");
        }
        other => panic!("expected a SQL error, got {other:?}"),
    }
    match w.query("SELECT * FROM missing_table_xyz").await {
        // Snowflake names an unquoted identifier in upper case.
        Err(WarehouseError::Sql { message, .. }) => {
            assert!(message.to_lowercase().contains("missing_table_xyz"), "{message}")
        }
        Err(other) => panic!("expected a SQL error, got {other:?}"),
        Ok(_) => panic!("expected a SQL error"),
    }
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn identifiers_can_never_inject_sql(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let keep = h.table("keep");
    create_numbered(w, &keep).await;
    let (evil_name, evil_column) = h.evil_names();
    let evil = h.table(evil_name);
    let schema = TableSchema::new(vec![ColumnDef::new(evil_column, ColumnType::Text)]);
    w.create_table(&evil, &schema).await.unwrap();
    let batch = RecordBatch::try_new(schema.arrow_schema(), vec![Arc::new(StringArray::from(vec!["v"]))]).unwrap();
    assert_eq!(w.bulk_load(&evil, batch_stream(vec![batch])).await.unwrap(), 1);
    assert!(w.exists(&keep).await.unwrap(), "the table named in the injection attempt survives");
    let names: Vec<String> = w.relations(Some(&h.schema)).await.unwrap().into_iter().map(|r| r.table.name).collect();
    assert_eq!(names, vec![evil_name.to_string(), "keep".to_string()]);
    let columns = w.columns(&evil).await.unwrap();
    assert_eq!(columns[0].name, evil_column);
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn introspection_lists_relations_and_columns(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let t = h.table("perf");
    w.create_table(&t, &every_type_schema()).await.unwrap();
    let d = w.dialect();
    w.execute(&format!(
        "CREATE VIEW {} AS SELECT ad_id FROM {}",
        d.qualified(&h.table("perf_view")).unwrap(),
        d.qualified(&t).unwrap()
    ))
    .await
    .unwrap();
    let relations = w.relations(Some(&h.schema)).await.unwrap();
    let kinds: Vec<(String, RelationKind)> = relations.into_iter().map(|r| (r.table.name, r.kind)).collect();
    assert_eq!(kinds, vec![("perf".into(), RelationKind::Table), ("perf_view".into(), RelationKind::View)]);
    let columns = w.columns(&t).await.unwrap();
    let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        ["ad_id", "impressions", "clicks", "spend", "score", "active", "date", "extracted_at", "payload"]
    );
    assert!(!columns[0].nullable && columns[1].nullable);
    let decimal = match d.name() {
        "duckdb" => "decimal",
        "snowflake" => "number",
        _ => "numeric",
    };
    assert!(columns[3].data_type.to_lowercase().starts_with(decimal), "{}", columns[3].data_type);
    assert!(!w.exists(&h.table("nope")).await.unwrap());
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn loads_with_unknown_columns_fail_clearly(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let t = h.table("numbers");
    create_numbered(w, &t).await;
    let schema = TableSchema::new(vec![ColumnDef::new("not_a_column", ColumnType::Int64)]).arrow_schema();
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    match w.bulk_load(&t, batch_stream(vec![batch])).await {
        Err(WarehouseError::Load { table, message }) => {
            assert_eq!(table, t.to_string());
            assert!(message.contains("not_a_column"), "{message}");
        }
        other => panic!("expected a load error, got {other:?}"),
    }
    assert_eq!(count(w, &t).await, 0, "a failed load leaves nothing behind");
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn metadata_is_created_once_and_records_runs_state_and_checks(h: Harness) {
    let opened = h.writer("run-a").await;
    let w = opened.warehouse.as_ref();
    let m = Metadata::new(w);
    assert_eq!(m.version().await.unwrap(), Some(meta::current_version()));
    assert!(m.migrate().await.unwrap().is_empty(), "a migrated schema is not migrated again");
    for table in [meta::RUNS, meta::STREAM_STATE, meta::CHECK_RESULTS] {
        assert!(w.exists(&TableRef::new(w.metadata_schema(), table)).await.unwrap(), "{table}");
    }

    let holder = LockHolder::current("run-a", "ingest");
    let before = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
    m.start_run(&holder).await.unwrap();
    m.finish_run("run-a", RunStatus::Failed, Some("Meta Ads said: (#17) User request limit reached")).await.unwrap();
    let runs = m.recent_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1);
    let finished = runs[0].finished_at.expect("a finished run has its finish time");
    let after = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(1);
    assert!(before <= runs[0].started_at && runs[0].started_at <= finished && finished <= after, "UTC times: {runs:?}");
    assert_eq!((runs[0].status.as_str(), runs[0].command.as_str()), ("failed", "ingest"));
    assert_eq!(runs[0].error.as_deref(), Some("Meta Ads said: (#17) User request limit reached"));

    let date = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
    let mut cursor = StreamCursor {
        source: "meta_ads".into(),
        stream: "ad_daily".into(),
        account_id: "act_1".into(),
        cursor_date: Some(date("2026-03-01")),
        last_run_id: Some("run-a".into()),
    };
    for cursor_date in ["2026-03-01", "2026-03-05"] {
        cursor.cursor_date = Some(date(cursor_date));
        let mut tx = w.begin().await.unwrap();
        tx.execute(&m.set_cursor_sql(&cursor, (date("2026-02-01"), date(cursor_date)), 42).unwrap()).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(m.cursor("meta_ads", "ad_daily", "act_1").await.unwrap(), Some(cursor));
    assert_eq!(m.cursor("meta_ads", "ad_daily", "act_2").await.unwrap(), None);

    m.record_check(&CheckResult {
        run_id: "run-a",
        check_name: "reconcile_spend",
        check_kind: "reconciliation",
        relation: Some("marts.fct_ad_performance_daily"),
        status: "fail",
        observed: Some("100.01"),
        expected: Some("100.00"),
        failing_rows: Some(1),
        message: Some("spend differs on 2026-03-01"),
        sample_query: Some("SELECT 1"),
    })
    .await
    .unwrap();
    let q = w.dialect().qualified(&TableRef::new(w.metadata_schema(), meta::CHECK_RESULTS)).unwrap();
    let rows =
        string_rows(&w.query_all(&format!("SELECT check_name, status, observed FROM {q}")).await.unwrap()).unwrap();
    assert_eq!(rows, vec![vec![Some("reconcile_spend".into()), Some("fail".into()), Some("100.01".into())]]);
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn a_second_writer_is_locked_out_until_the_first_closes(h: Harness) {
    let first = h.writer("run-first").await;
    match connect(&h.options, Access::Write(LockHolder::current("run-second", "build"))).await {
        Err(e @ WarehouseError::Locked { .. }) => {
            let WarehouseError::Locked { holder } = &e else { unreachable!() };
            assert_eq!(holder.run_id, "run-first");
            assert_eq!(holder.pid, std::process::id());
            let message = e.to_string();
            assert!(message.contains("locked by run run-first since") && message.contains("(pid "), "{message}");
        }
        Err(other) => panic!("expected Locked, got {other}"),
        Ok(_) => panic!("a second writer must be refused"),
    }
    // A reader learns who writes (`mdp doctor` reports it): DuckDB refuses to open the file, Postgres
    // opens and names the holder when asked. The writer itself is no *other* writer.
    let seen_by_reader = match connect(&h.options, Access::Read).await {
        Err(WarehouseError::Locked { holder }) => holder,
        Ok(reader) => {
            let answer = reader.warehouse.check_no_other_writer().await;
            reader.warehouse.close().await.unwrap();
            match answer {
                Err(WarehouseError::Locked { holder }) => holder,
                other => panic!("a reader must see the writer, got {other:?}"),
            }
        }
        Err(other) => panic!("expected Locked, got {other}"),
    };
    assert_eq!(seen_by_reader.run_id, "run-first");
    first.warehouse.check_no_other_writer().await.expect("the writer is not locked out by itself");
    first.warehouse.close().await.unwrap();
    let reader = connect(&h.options, Access::Read).await.expect("a reader opens once the writer is gone");
    reader.warehouse.check_no_other_writer().await.expect("no writer left");
    reader.warehouse.close().await.unwrap();
    let second = h.writer("run-second").await;
    assert!(second.stale_lock.is_none(), "a cleanly closed writer leaves no stale lock");
    h.cleanup(second.warehouse.as_ref()).await;
    second.warehouse.close().await.unwrap();
}

async fn a_killed_writer_leaves_a_stale_lock_that_is_detected(h: Harness) {
    let first = h.writer("run-killed").await;
    Metadata::new(first.warehouse.as_ref()).start_run(&LockHolder::current("run-killed", "ingest")).await.unwrap();
    let dead = LockHolder::current("run-killed", "ingest");
    // Simulate a crash: the connection/handle goes away without `close`. For DuckDB, the OS releases
    // the flock but the holder's details stay in the file, exactly as after `kill -9`.
    drop(first);
    if let ConnectOptions::DuckDb { path, .. } = &h.options {
        let lock = mdp_warehouse::lock::lock_file_path(path);
        std::fs::write(lock, serde_json::to_vec(&dead).unwrap()).unwrap();
    }
    // Postgres notices the closed connection asynchronously; give it a moment to drop the lock.
    let mut attempts = 0;
    let next = loop {
        match connect(&h.options, Access::Write(LockHolder::current("run-next", "ingest"))).await {
            Ok(opened) => break opened,
            Err(WarehouseError::Locked { .. }) if attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(next.stale_lock.as_ref().map(|s| s.run_id.as_str()), Some("run-killed"));
    let runs = Metadata::new(next.warehouse.as_ref()).recent_runs(10).await.unwrap();
    let killed = runs.iter().find(|r| r.run_id == "run-killed").expect("the killed run is recorded");
    assert_eq!(killed.status, "failed");
    assert!(killed.error.as_deref().unwrap().contains("stopped without finishing"));
    h.cleanup(next.warehouse.as_ref()).await;
    next.warehouse.close().await.unwrap();
}

async fn merge_upserts_without_duplicates(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let d = w.dialect();
    let t = h.table("state");
    let schema = TableSchema::new(vec![
        ColumnDef::new("k", ColumnType::Text).not_null(),
        ColumnDef::new("v", ColumnType::Int64),
    ])
    .with_primary_key(&["k"]);
    w.create_table(&t, &schema).await.unwrap();
    for (k, v) in [("a", 1), ("b", 2), ("a", 3)] {
        let source = format!("(SELECT {} AS k, CAST({v} AS BIGINT) AS v)", d.string_literal(k).unwrap());
        w.execute(&d.merge_sql(&t, &source, &["k".into()], &["v".into()]).unwrap()).await.unwrap();
    }
    let rows = string_rows(
        &w.query_all(&format!("SELECT k, CAST(v AS VARCHAR) FROM {} ORDER BY k", d.qualified(&t).unwrap()))
            .await
            .unwrap(),
    )
    .unwrap();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(rows, vec![vec![s("a"), s("3")], vec![s("b"), s("2")]]);
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn dialect_functions_agree_across_engines(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let d = w.dialect();
    let cases = [
        (d.safe_divide("CAST(10 AS DECIMAL(18,2))", "0"), None),
        (format!("CAST({} AS DECIMAL(18,2))", d.safe_divide("CAST(10 AS DECIMAL(18,2))", "4")), Some("2.50")),
        (d.date_add_days("DATE '2026-02-27'", 3), Some("2026-03-02")),
        (d.date_trunc(DatePart::Month, "DATE '2026-02-27'"), Some("2026-02-01")),
        (d.date_diff_days("DATE '2026-02-27'", "DATE '2026-03-02'"), Some("3")),
    ];
    // The same value: decimals as their digits without trailing zeros (BigQuery prints 2.50 as 2.5).
    let value = |text: Option<&str>| {
        text.map(|t| {
            if t.contains('.') {
                t.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                t.to_string()
            }
        })
    };
    for (expr, expected) in cases {
        let rows = string_rows(&w.query_all(&format!("SELECT {}", d.cast_to_text(&expr))).await.unwrap()).unwrap();
        assert_eq!(value(rows[0][0].as_deref()), value(expected), "{} on {}", expr, d.name());
    }
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn metadata_summaries_are_read_by_column_name(h: Harness) {
    let opened = h.writer("run-a").await;
    let w = opened.warehouse.as_ref();
    let m = Metadata::new(w);
    let ts = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap();
    let date = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();

    for (run_id, status) in [("run-a", RunStatus::Success), ("run-b", RunStatus::Failed), ("run-c", RunStatus::Success)]
    {
        m.start_run(&LockHolder::current(run_id, "pipeline")).await.unwrap();
        m.finish_run(run_id, status, None).await.unwrap();
    }
    let counts = m.runs_by_status().await.unwrap();
    let counts: Vec<_> = counts.iter().map(|c| (c.status.as_str(), c.runs)).collect();
    assert_eq!(counts, [("failed", 1), ("success", 2)]);
    let last = m.last_run_finished(RunStatus::Success).await.unwrap().expect("a successful run finished");
    assert!((chrono::Utc::now().naive_utc() - last).num_seconds().abs() < 60, "finished just now: {last}");

    let task = |run_id: &str, task_id: &str, kind: &str, state: &str, seconds: Option<f64>, rows: Option<i64>| {
        let started = ts("2026-06-30 10:00:00");
        TaskRecord {
            run_id: run_id.into(),
            task_id: task_id.into(),
            kind: kind.into(),
            state: state.into(),
            attempts: 1,
            started_at: Some(started),
            finished_at: seconds.map(|s| started + chrono::TimeDelta::milliseconds((s * 1000.0) as i64)),
            rows,
            error: None,
            log: None,
        }
    };
    m.record_tasks(&[
        task("run-a", "ingest.google_ads.1", "ingest", "success", Some(0.5), Some(100)),
        task("run-a", "ingest.meta_ads.2", "ingest", "failed", Some(2.0), Some(7)),
        task("run-a", "model.p.m", "model", "success", Some(30.0), None),
        task("run-c", "ingest.google_ads.1", "ingest", "success", Some(5.0), Some(20)),
        task("run-c", "model.p.m", "model", "running", None, None),
    ])
    .await
    .unwrap();
    let by_state = m.tasks_by_kind_and_state().await.unwrap();
    let by_state: Vec<_> = by_state.iter().map(|t| (t.kind.as_str(), t.state.as_str(), t.tasks)).collect();
    assert_eq!(
        by_state,
        [("ingest", "failed", 1), ("ingest", "success", 2), ("model", "running", 1), ("model", "success", 1)]
    );
    let durations = m.task_durations(&[1.0, 10.0]).await.unwrap();
    assert_eq!(durations.len(), 2, "unfinished tasks have no duration: {durations:?}");
    assert_eq!(
        (durations[0].kind.as_str(), durations[0].tasks, durations[0].at_most.clone()),
        ("ingest", 3, vec![1, 3])
    );
    assert!((durations[0].total_seconds - 7.5).abs() < 1e-9, "{durations:?}");
    assert_eq!(
        (durations[1].kind.as_str(), durations[1].tasks, durations[1].at_most.clone()),
        ("model", 1, vec![0, 0])
    );
    let rows = m.task_rows("ingest", "success").await.unwrap();
    let rows: Vec<_> = rows.iter().map(|t| (t.task_id.as_str(), t.rows)).collect();
    assert_eq!(rows, [("ingest.google_ads.1", 120)], "summed over runs; failed tasks left out");

    for (account, cursor, loaded) in [("act_1", "2026-06-28", 40), ("act_2", "2026-06-25", 2)] {
        let cursor = StreamCursor {
            source: "meta_ads".into(),
            stream: "ad_daily".into(),
            account_id: account.into(),
            cursor_date: Some(date(cursor)),
            last_run_id: Some("run-a".into()),
        };
        let mut tx = w.begin().await.unwrap();
        tx.execute(&m.set_cursor_sql(&cursor, (date("2026-06-20"), date("2026-06-28")), loaded).unwrap())
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let freshness = m.stream_freshness().await.unwrap();
    assert_eq!(freshness.len(), 1);
    let f = &freshness[0];
    assert_eq!((f.source.as_str(), f.stream.as_str(), f.accounts), ("meta_ads", "ad_daily", 2));
    assert_eq!((f.oldest_cursor, f.last_window_rows), (Some(date("2026-06-25")), 42));
    assert!(f.last_loaded_at.is_some());

    let check = |name: &'static str, kind: &'static str, status: &'static str, failing: Option<i64>| CheckResult {
        run_id: "run-a",
        check_name: name,
        check_kind: kind,
        relation: Some("marts.fct"),
        status,
        observed: Some("1"),
        expected: None,
        failing_rows: failing,
        message: Some("it's \"quoted\""),
        sample_query: None,
    };
    m.record_checks(&[check("freshness.x", "freshness", "fail", None), check("volume.y", "volume", "pass", Some(3))])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    m.record_checks(&[check("freshness.x", "freshness", "pass", None)]).await.unwrap();
    let latest = m.latest_check_results().await.unwrap();
    let latest: Vec<_> = latest.iter().map(|c| (c.check_name.as_str(), c.status.as_str(), c.failing_rows)).collect();
    assert_eq!(latest, [("freshness.x", "pass", None), ("volume.y", "pass", Some(3))]);
    let failed =
        m.check_history(&meta::CheckHistoryFilter { status: Some("fail"), kind: None, limit: 10 }).await.unwrap();
    assert_eq!(failed.len(), 1);
    let f = &failed[0];
    assert_eq!(
        (f.check_name.as_str(), f.check_kind.as_deref(), f.relation.as_deref()),
        ("freshness.x", Some("freshness"), Some("marts.fct"))
    );
    assert_eq!(
        (f.message.as_deref(), f.expected.as_deref(), f.run_id.as_str()),
        (Some("it's \"quoted\""), None, "run-a")
    );
    assert!(f.executed_at.starts_with("20") && !f.executed_at.contains('T'), "the engine's text: {}", f.executed_at);
    let newest_first =
        m.check_history(&meta::CheckHistoryFilter { status: None, kind: Some("freshness"), limit: 10 }).await.unwrap();
    let statuses: Vec<_> = newest_first.iter().map(|c| c.status.as_str()).collect();
    assert_eq!(statuses, ["pass", "fail"]);
    let limited = m.check_history(&meta::CheckHistoryFilter { status: None, kind: None, limit: 1 }).await.unwrap();
    assert_eq!(limited.len(), 1);
    let facets = m.check_facets().await.unwrap();
    assert_eq!(
        (facets.kinds, facets.statuses),
        (vec!["freshness".into(), "volume".into()], vec!["fail".into(), "pass".into()])
    );
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

async fn replace_where_deletes_only_the_window_and_totals_are_exact(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let d = w.dialect();
    let t = h.table("daily");
    let schema = TableSchema::new(vec![
        ColumnDef::new("account_id", ColumnType::Text),
        ColumnDef::new("date", ColumnType::Date),
        ColumnDef::new("spend", ColumnType::Decimal(18, 6)),
    ]);
    w.create_table(&t, &schema).await.unwrap();
    assert_eq!(
        w.table_totals(&t, &[("spend", ColumnType::Decimal(18, 6))]).await.unwrap(),
        TableTotals { rows: 0, sums: vec![None] }
    );
    let q = d.qualified(&t).unwrap();
    w.execute(&format!(
        "INSERT INTO {q} VALUES ('a', DATE '2026-06-01', 1.25), ('a', DATE '2026-06-02', 2.5), \
         ('a', DATE '2026-06-03', 4), ('b', DATE '2026-06-02', 8)"
    ))
    .await
    .unwrap();
    let day = |d: u32| chrono::NaiveDate::from_ymd_opt(2026, 6, d).unwrap();
    let delete = d
        .delete_where_sql(
            &t,
            &[
                Condition::eq("account_id", Literal::Text("a")),
                Condition::ge("date", Literal::Date(day(2))),
                Condition::le("date", Literal::Date(day(3))),
            ],
        )
        .unwrap();
    let mut tx = w.begin().await.unwrap();
    tx.execute(&delete).await.unwrap();
    tx.commit().await.unwrap();
    let totals = w
        .table_totals(&t, &[("spend", ColumnType::Decimal(18, 6)), ("spend", ColumnType::Decimal(18, 6))])
        .await
        .unwrap();
    assert_eq!(totals.rows, 2, "only account a's 2nd and 3rd days are gone");
    let sum: rust_decimal::Decimal = totals.sums[0].as_deref().unwrap().parse().unwrap();
    assert_eq!(sum, rust_decimal::Decimal::new(925, 2), "exact: 1.25 + 8 = {:?}", totals.sums);
    assert_eq!(totals.sums[0], totals.sums[1]);
    w.execute(&d.drop_table_if_exists_sql(&t).unwrap()).await.unwrap();
    w.execute(&d.drop_table_if_exists_sql(&t).unwrap()).await.unwrap();
    assert!(!w.exists(&t).await.unwrap());
    h.cleanup(w).await;
    opened.warehouse.close().await.unwrap();
}

/// DuckDB's buffer pool while ingests run (they share the process): capped from the first ingest to
/// the last, then restored; a limit the user set is never overridden.
#[tokio::test]
async fn duckdb_caps_its_memory_while_ingests_run() {
    async fn limit(w: &dyn Warehouse) -> String {
        let rows = string_rows(&w.query_all("SELECT current_setting('memory_limit')").await.unwrap()).unwrap();
        rows[0][0].clone().unwrap()
    }
    let h = Harness::duckdb();
    let opened = h.writer("ingest-mode").await;
    let w = opened.warehouse.as_ref();
    let default = limit(w).await;
    w.ingest_mode(true).await.unwrap();
    w.ingest_mode(true).await.unwrap(); // a second ingest task on the same warehouse
    let capped = limit(w).await;
    assert_ne!(capped, default, "the ingest's cap applies");
    assert!(capped.contains("MiB") || capped.contains("MB"), "{capped}");
    w.ingest_mode(false).await.unwrap();
    assert_eq!(limit(w).await, capped, "the cap stays while another ingest runs");
    w.ingest_mode(false).await.unwrap();
    assert_eq!(limit(w).await, default, "the last ingest lifts the cap");
    opened.warehouse.close().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let options = ConnectOptions::duckdb(dir.path().join("w.duckdb")).with_memory_limit("1GB".to_string());
    let opened = connect(&options, Access::Write(LockHolder::current("ingest-mode-2", "test"))).await.unwrap();
    let w = opened.warehouse.as_ref();
    let users = limit(w).await;
    w.ingest_mode(true).await.unwrap();
    assert_eq!(limit(w).await, users, "the user's memory_limit stands during an ingest");
    w.ingest_mode(false).await.unwrap();
    assert_eq!(limit(w).await, users);
    opened.warehouse.close().await.unwrap();
}

/// A writer refused while opening (here: metadata written by a newer mdp) releases the lock it took,
/// so the next attempt is told the same reason at once instead of finding the warehouse locked (a
/// lease would otherwise keep it out until it runs out).
async fn a_writer_refused_at_open_leaves_no_lock_behind(h: Harness) {
    let opened = h.writer("r1").await;
    let w = opened.warehouse.as_ref();
    let d = w.dialect();
    let version = TableRef::new(w.metadata_schema(), "schema_version");
    w.execute(&format!(
        "INSERT INTO {} (version, description, applied_at, mdp_version) VALUES (9999, {}, {}, {})",
        d.qualified(&version).unwrap(),
        d.literal(&Literal::Text("from the future")).unwrap(),
        d.literal(&Literal::Timestamp(chrono::Utc::now().naive_utc())).unwrap(),
        d.literal(&Literal::Text("99.0.0")).unwrap()
    ))
    .await
    .unwrap();
    opened.warehouse.close().await.unwrap();
    for attempt in ["r2", "r3"] {
        match connect(&h.options, Access::Write(LockHolder::current(attempt, "test"))).await {
            Err(WarehouseError::MetadataTooNew { found: 9999, .. }) => {}
            Err(other) => panic!("attempt {attempt}: expected the newer-metadata refusal, got {other}"),
            Ok(_) => panic!("attempt {attempt}: a writer opened metadata written by a newer mdp"),
        }
    }
    if !matches!(h.options, ConnectOptions::DuckDb { .. }) {
        let reader = connect(&h.options, Access::Read).await.unwrap();
        h.cleanup(reader.warehouse.as_ref()).await;
        reader.warehouse.close().await.unwrap();
    }
}
