//! `mdp sql`: run SQL against the project's warehouse and print the result as a table.

use anyhow::Result;
use futures::TryStreamExt;
use mdp_warehouse::Warehouse;

use crate::cli::{GlobalArgs, SqlArgs};
use crate::context::ProjectContext;

pub async fn run(global: &GlobalArgs, args: SqlArgs) -> Result<()> {
    let context = ProjectContext::load(global)?;
    if args.read_only {
        let warehouse = context.open_reader().await?;
        let outcome = print_result(warehouse.as_ref(), &args).await;
        warehouse.close().await?;
        return outcome;
    }
    let session = context.start_run("sql").await?;
    let outcome = print_result(session.warehouse.as_ref(), &args).await;
    session.finish(outcome.as_ref().err().map(|e| format!("{e:#}")).as_deref()).await?;
    outcome
}

/// Statements that return rows go through `query`; everything else through `execute`.
fn returns_rows(sql: &str) -> bool {
    let first =
        sql.trim_start().trim_start_matches('(').split(|c: char| c.is_whitespace() || c == '(').next().unwrap_or("");
    ["select", "with", "values", "show", "describe", "explain", "table", "from", "pragma", "summarize"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
}

async fn print_result(warehouse: &dyn Warehouse, args: &SqlArgs) -> Result<()> {
    if !returns_rows(&args.sql) {
        warehouse.execute(&args.sql).await?;
        println!("ok");
        return Ok(());
    }
    let mut stream = warehouse.query(&args.sql).await?;
    let mut shown = Vec::new();
    let (mut rows, mut total) = (0usize, 0usize);
    while let Some(batch) = stream.try_next().await? {
        total += batch.num_rows();
        if rows < args.limit {
            let take = (args.limit - rows).min(batch.num_rows());
            shown.push(batch.slice(0, take));
            rows += take;
        }
    }
    println!("{}", arrow::util::pretty::pretty_format_batches(&shown)?);
    if total > rows {
        println!("({rows} of {total} rows shown; --limit to see more)");
    } else {
        println!("({total} rows)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_are_told_from_statements() {
        for q in ["SELECT 1", "  with x as (select 1) select * from x", "(SELECT 1)", "values (1)"] {
            assert!(super::returns_rows(q), "{q}");
        }
        for s in ["CREATE TABLE t (x int)", "insert into t values (1)", "DROP TABLE t"] {
            assert!(!super::returns_rows(s), "{s}");
        }
    }
}
