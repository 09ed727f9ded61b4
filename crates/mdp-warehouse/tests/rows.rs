//! Rows decoded by column name (`mdp_warehouse::rows`) from each engine's own result types: DuckDB's
//! DECIMAL and HUGEINT sums, Postgres' exact NUMERIC text, dates, timestamps and NULLs — and the
//! metadata layer's `stream_state` read built on it.
//!
//! DuckDB always runs. Postgres runs when `MDP_TEST_POSTGRES_URL` names a server; without it the
//! Postgres test prints a notice and passes, unless `MDP_TEST_REQUIRE_POSTGRES=1` makes that a failure.

use chrono::{NaiveDate, NaiveDateTime};
use mdp_warehouse::meta::{Metadata, StreamCursor, StreamState};
use mdp_warehouse::rows::{fetch, FromRow, Row};
use mdp_warehouse::{connect, Access, ConnectOptions, LockHolder, Warehouse, WarehouseError};
use rust_decimal::Decimal;

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

/// One account's day summary, as a monitor reads it.
#[derive(Debug, PartialEq)]
struct Summary {
    account_id: String,
    latest: NaiveDate,
    loaded_at: NaiveDateTime,
    spend: Decimal,
    clicks: i64,
    rows: i64,
    ratio: Option<f64>,
    note: Option<String>,
}

impl FromRow for Summary {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(Summary {
            account_id: row.text("account_id")?,
            latest: row.date("latest")?,
            loaded_at: row.timestamp("loaded_at")?,
            spend: row.decimal("spend")?,
            clicks: row.i64("clicks")?,
            rows: row.i64("rows")?,
            ratio: row.opt_f64("ratio")?,
            note: row.opt_text("note")?,
        })
    }
}

async fn decodes_each_engines_types(options: ConnectOptions) {
    let opened = connect(&options, Access::Write(LockHolder::current("rows-test", "test"))).await.unwrap();
    let w: &dyn Warehouse = opened.warehouse.as_ref();
    let d = w.dialect();
    let schema = unique("rows");
    let t = format!("{}.{}", d.quote_identifier(&schema).unwrap(), d.quote_identifier("daily").unwrap());
    w.execute(&format!(
        "CREATE SCHEMA {s}; CREATE TABLE {t} (account_id {text}, report_date {date}, loaded_at {ts}, spend {money}, clicks {int}, note {text}); \
         INSERT INTO {t} VALUES ('a''1', DATE '2026-06-29', TIMESTAMP '2026-06-30 06:00:00.123456', 0.1, 7, NULL), \
         ('a''1', DATE '2026-06-30', TIMESTAMP '2026-06-30 05:00:00', 0.2, 1, NULL), \
         ('b', DATE '2026-06-30', TIMESTAMP '2026-07-01 00:00:00', 12.345678, 0, 'x')",
        s = d.quote_identifier(&schema).unwrap(),
        text = d.column_type(mdp_warehouse::ColumnType::Text),
        date = d.column_type(mdp_warehouse::ColumnType::Date),
        ts = d.column_type(mdp_warehouse::ColumnType::Timestamp),
        money = d.column_type(mdp_warehouse::ColumnType::Decimal(18, 6)),
        int = d.column_type(mdp_warehouse::ColumnType::Int64),
    ))
    .await
    .unwrap();
    // Sums of DECIMAL and BIGINT, counts, a ratio, a NULL; the columns in another order than the struct's.
    let sql = format!(
        "SELECT max(note) AS note, count(*) AS rows, sum(clicks) AS clicks, \
         sum(spend) AS spend, {ratio} AS ratio, max(loaded_at) AS loaded_at, max(report_date) AS latest, account_id \
         FROM {t} GROUP BY account_id ORDER BY account_id",
        ratio = d.ratio("sum(spend)", "count(*) - 1", 1),
    );
    let got: Vec<Summary> = fetch(w, &sql).await.unwrap();
    assert_eq!(
        got,
        [
            Summary {
                account_id: "a'1".into(),
                latest: date("2026-06-30"),
                loaded_at: at("2026-06-30 06:00:00.123456"),
                spend: Decimal::new(3, 1),
                clicks: 8,
                rows: 2,
                ratio: Some(0.3),
                note: None,
            },
            Summary {
                account_id: "b".into(),
                latest: date("2026-06-30"),
                loaded_at: at("2026-07-01 00:00:00"),
                spend: Decimal::new(12_345_678, 6),
                clicks: 0,
                rows: 1,
                ratio: None,
                note: Some("x".into()),
            },
        ],
        "{}",
        w.describe()
    );
    // Exact money: 0.1 + 0.2 is 0.3, with the column's scale, on both engines.
    assert_eq!(got[0].spend.to_string(), "0.300000", "{}", w.describe());

    // A query that lacks a column the struct needs is an error naming it.
    let err = fetch::<Summary>(w, &format!("SELECT account_id FROM {t}")).await.unwrap_err().to_string();
    assert!(err.contains("\"latest\"") && err.contains("account_id"), "{err}");

    // The metadata layer reads stream_state through the same decoding.
    let meta = Metadata::new(w);
    let cursor = StreamCursor {
        source: "ads".into(),
        stream: "ad_daily".into(),
        account_id: "1".into(),
        cursor_date: Some(date("2026-06-29")),
        last_run_id: Some("rows-test".into()),
    };
    let mut tx = w.begin().await.unwrap();
    tx.execute(&meta.set_cursor_sql(&cursor, (date("2026-06-01"), date("2026-06-30")), 42).unwrap()).await.unwrap();
    tx.commit().await.unwrap();
    let states: Vec<StreamState> = meta.stream_states().await.unwrap();
    assert_eq!(states.len(), 1, "{states:?}");
    let s = &states[0];
    assert_eq!(
        (s.source.as_str(), s.stream.as_str(), s.account_id.as_str(), s.cursor_date, s.rows_loaded),
        ("ads", "ad_daily", "1", Some(date("2026-06-29")), Some(42))
    );
    assert_eq!((s.last_window_start, s.last_window_end), (Some(date("2026-06-01")), Some(date("2026-06-30"))));
    let age = chrono::Utc::now().naive_utc() - s.updated_at.expect("updated_at is set");
    assert!(age.num_seconds().abs() < 300, "updated_at is now (UTC): {:?}", s.updated_at);

    w.execute(&format!(
        "DROP SCHEMA {} CASCADE; DROP SCHEMA {} CASCADE",
        d.quote_identifier(&schema).unwrap(),
        d.quote_identifier(w.metadata_schema()).unwrap()
    ))
    .await
    .unwrap();
    opened.warehouse.close().await.unwrap();
}

#[tokio::test]
async fn duckdb_rows_decode_by_name() {
    let dir = tempfile::tempdir().unwrap();
    decodes_each_engines_types(ConnectOptions::duckdb(dir.path().join("warehouse.duckdb"))).await;
}

#[tokio::test]
async fn postgres_rows_decode_by_name() {
    let Ok(url) = std::env::var("MDP_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("MDP_TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "MDP_TEST_REQUIRE_POSTGRES=1 but MDP_TEST_POSTGRES_URL is not set"
        );
        eprintln!("NOTICE: skipping Postgres rows test: MDP_TEST_POSTGRES_URL is not set (.ci/run sets it)");
        return;
    };
    decodes_each_engines_types(ConnectOptions::postgres(url, "test server").with_metadata_schema(unique("mdp_meta_r")))
        .await;
}
