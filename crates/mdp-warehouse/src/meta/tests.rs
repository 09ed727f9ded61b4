use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::dialect::{Dialect, DuckDbDialect, PostgresDialect};
use crate::{BatchStream, Transaction};

/// A warehouse that answers every query with no rows and remembers the SQL it was given.
struct Recorder {
    dialect: Box<dyn Dialect>,
    sql: Mutex<Vec<String>>,
}

#[async_trait]
impl Warehouse for Recorder {
    fn dialect(&self) -> &dyn Dialect {
        self.dialect.as_ref()
    }
    fn describe(&self) -> String {
        "recorder".into()
    }
    fn metadata_schema(&self) -> &str {
        "mdp_meta"
    }
    async fn session(&self) -> Result<std::sync::Arc<dyn Warehouse>> {
        unreachable!("the metadata layer never asks for a second handle")
    }
    async fn execute(&self, sql: &str) -> Result<()> {
        self.sql.lock().unwrap().push(sql.to_string());
        Ok(())
    }
    async fn query(&self, sql: &str) -> Result<BatchStream> {
        self.sql.lock().unwrap().push(sql.to_string());
        Ok(crate::batch_stream(Vec::new()))
    }
    async fn begin(&self) -> Result<Box<dyn Transaction>> {
        Err(WarehouseError::Internal("the recorder has no transactions".into()))
    }
    async fn close(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

/// The statements a metadata read sends, on DuckDB and on Postgres.
fn rendered<F>(read: F) -> [Vec<String>; 2]
where
    F: for<'a, 'w> Fn(&'a Metadata<'w>) -> futures::future::BoxFuture<'a, ()>,
{
    [Box::new(DuckDbDialect) as Box<dyn Dialect>, Box::new(PostgresDialect)].map(|dialect| {
        let recorder = Recorder { dialect, sql: Mutex::new(Vec::new()) };
        futures::executor::block_on(read(&Metadata::new(&recorder)));
        recorder.sql.into_inner().unwrap()
    })
}

#[test]
fn stream_freshness_casts_with_each_engines_text_type() {
    let [duckdb, postgres] =
        rendered(|m| Box::pin(async move { assert!(m.stream_freshness().await.unwrap().is_empty()) }));
    let expected = |text: &str| {
        format!(
            "SELECT \"source\" AS \"source\", \"stream\" AS \"stream\", count(*) AS \"accounts\", \
             CAST(min(\"cursor_date\") AS {text}) AS \"oldest_cursor\", CAST(max(\"updated_at\") AS {text}) AS \"last_loaded_at\", \
             sum(\"rows_loaded\") AS \"last_window_rows\" FROM \"mdp_meta\".\"stream_state\" \
             GROUP BY \"source\", \"stream\" ORDER BY \"source\", \"stream\""
        )
    };
    assert_eq!(duckdb, [expected("VARCHAR")]);
    assert_eq!(postgres, [expected("text")]);
}

#[test]
fn task_durations_bucket_seconds_computed_by_the_dialect() {
    let [duckdb, postgres] =
        rendered(|m| Box::pin(async move { assert!(m.task_durations(&[0.5, 60.0]).await.unwrap().is_empty()) }));
    let expected = |double: &str| {
        format!(
            "SELECT \"k\" AS \"kind\", count(*) AS \"tasks\", sum(\"d\") AS \"total_seconds\", \
             count(CASE WHEN \"d\" <= 0.5 THEN 1 END) AS \"le_0\", count(CASE WHEN \"d\" <= 60 THEN 1 END) AS \"le_1\" \
             FROM (SELECT \"kind\" AS \"k\", CAST(EXTRACT(EPOCH FROM \"finished_at\") - EXTRACT(EPOCH FROM \"started_at\") AS {double}) AS \"d\" \
             FROM \"mdp_meta\".\"task_instances\" WHERE \"started_at\" IS NOT NULL AND \"finished_at\" IS NOT NULL) t \
             GROUP BY \"k\" ORDER BY \"k\""
        )
    };
    assert_eq!(duckdb, [expected("DOUBLE")]);
    assert_eq!(postgres, [expected("double precision")]);
    let [refused, _] = rendered(|m| Box::pin(async move { assert!(m.task_durations(&[f64::NAN]).await.is_err()) }));
    assert!(refused.is_empty(), "nothing is sent for a bound that is not a number");
}

#[test]
fn check_history_filters_are_literals_never_spliced_text() {
    let [duckdb, postgres] = rendered(|m| {
        Box::pin(async move {
            let filter = CheckHistoryFilter { status: Some("fail' OR '1'='1"), kind: Some("volume"), limit: 50 };
            assert!(m.check_history(&filter).await.unwrap().is_empty());
        })
    });
    let expected = |text: &str| {
        format!(
            "SELECT c.\"run_id\" AS \"run_id\", c.\"check_name\" AS \"check_name\", c.\"check_kind\" AS \"check_kind\", \
             c.\"relation\" AS \"relation\", c.\"status\" AS \"status\", c.\"observed\" AS \"observed\", \
             c.\"expected\" AS \"expected\", c.\"failing_rows\" AS \"failing_rows\", c.\"message\" AS \"message\", \
             c.\"sample_query\" AS \"sample_query\", CAST(c.\"executed_at\" AS {text}) AS \"executed_at\" \
             FROM \"mdp_meta\".\"check_results\" c WHERE \"status\" = 'fail'' OR ''1''=''1' AND \"check_kind\" = 'volume' \
             ORDER BY c.\"executed_at\" DESC, c.\"check_name\" LIMIT 50"
        )
    };
    assert_eq!(duckdb, [expected("VARCHAR")]);
    assert_eq!(postgres, [expected("text")]);
}
