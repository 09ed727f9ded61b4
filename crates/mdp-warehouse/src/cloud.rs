//! What the adapters over `mdp-cloud`'s HTTP clients (Snowflake, BigQuery) share: SQL text run one
//! statement per request, the last statement's result streamed page by page, and DDL told apart by
//! its first word (neither engine runs DDL inside a transaction).

use std::future::Future;

use arrow::array::RecordBatch;
use futures::StreamExt;
use mdp_cloud::{split_statements, CloudError};

use crate::error::{Result, WarehouseError};
use crate::BatchStream;

/// A result read page by page.
pub(crate) trait Pages: Send + 'static {
    fn next_page(&mut self) -> impl Future<Output = std::result::Result<Option<RecordBatch>, CloudError>> + Send;
}

impl Pages for mdp_cloud::snowflake::QueryResult {
    fn next_page(&mut self) -> impl Future<Output = std::result::Result<Option<RecordBatch>, CloudError>> + Send {
        self.next_batch()
    }
}

impl Pages for mdp_cloud::bigquery::QueryResult {
    fn next_page(&mut self) -> impl Future<Output = std::result::Result<Option<RecordBatch>, CloudError>> + Send {
        self.next_batch()
    }
}

/// Runs one statement and answers with its result (errors already the warehouse layer's).
pub(crate) trait Runner: Sync {
    type Answer: Pages;
    /// The engine's name, for errors.
    fn engine(&self) -> &'static str;
    /// What is connected to, for errors.
    fn target(&self) -> &str;
    fn run(&self, statement: &str) -> impl Future<Output = Result<Self::Answer>> + Send;
}

/// Run every statement of `sql`, in order.
pub(crate) async fn run_all(runner: &impl Runner, sql: &str) -> Result<()> {
    for statement in split_statements(sql) {
        runner.run(statement).await?;
    }
    Ok(())
}

/// Run the statements of `sql` and stream the last one's result.
pub(crate) async fn query_stream(runner: &impl Runner, sql: &str) -> Result<BatchStream> {
    let statements = split_statements(sql);
    let Some((last, before)) = statements.split_last() else {
        return Err(WarehouseError::sql(runner.engine(), "the query holds no statement", sql));
    };
    for statement in before {
        runner.run(statement).await?;
    }
    let result = runner.run(last).await?;
    let (engine, sql, target) = (runner.engine(), last.to_string(), runner.target().to_string());
    let stream = futures::stream::unfold(Some(result), move |state| {
        let (sql, target) = (sql.clone(), target.clone());
        async move {
            let mut result = state?;
            match result.next_page().await {
                Ok(Some(batch)) => Some((Ok(batch), Some(result))),
                Ok(None) => None,
                Err(e) => Some((Err(crate::cloud_error(engine, e, &sql, &target)), None)),
            }
        }
    });
    Ok(stream.boxed())
}

/// Whether `statement` starts (after blank and comment lines) with one of `keywords` (upper case).
pub(crate) fn starts_with_keyword(statement: &str, keywords: &[&str]) -> bool {
    let first = statement
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with("--"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_default()
        .to_ascii_uppercase();
    keywords.contains(&first.as_str())
}
