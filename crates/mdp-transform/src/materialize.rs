//! Materializations: turn a compiled node into relations, through the warehouse layer.
//!
//! - `view`: replace the view in one transaction (drop what was there, create).
//! - `table`: build into `<name>__dbt_tmp`, then swap it in, in one transaction (DuckDB:
//!   `CREATE OR REPLACE TABLE`, atomic by itself).
//! - `incremental`: first run or `--full-refresh` as `table`; later runs build the new rows into a
//!   temporary table, reconcile columns (`on_schema_change`), then `append`, `delete+insert` or
//!   `merge` on `unique_key`, all in one transaction.
//! - `ephemeral`: nothing to build; the compiler inlined it.
//! - tests: count the failing rows and compare with `warn_if` / `error_if`.
//!
//! A failed statement leaves the previous relation in place: every replacement is transactional.

use mdp_warehouse::{string_rows, Dialect, TableRef, Transaction, Warehouse, WarehouseError};

use crate::compile::CompiledNode;
use crate::manifest::{Node, RelationName};

/// What a materialization did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// A short dbt-style message: `CREATE VIEW`, `INSERT 42`, `PASS`, …
    pub message: String,
    pub rows_affected: Option<u64>,
    /// Every statement run, in order, for `target/run/`.
    pub statements: Vec<String>,
    /// Test results.
    pub failures: Option<u64>,
    pub test_status: Option<TestStatus>,
    /// The first failing rows of a failed or warned test, as `column=value, …` (what to look at).
    pub failing_rows: Vec<String>,
}

/// Failing rows shown with a failed test.
const FAILING_ROWS_SHOWN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    Pass,
    Warn,
    Fail,
}

/// Errors of a materialization: the database's, or a rule of the materialization.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("{0}")]
    Rule(String),
}

type Result<T> = std::result::Result<T, MaterializeError>;

pub(crate) fn table_ref(rel: &RelationName) -> TableRef {
    TableRef::new(rel.schema.clone(), rel.identifier.clone())
}

/// `existing`: `Some(true)` when a view of that name exists, `Some(false)` a table, `None` nothing.
pub async fn materialize(
    wh: &dyn Warehouse,
    node: &Node,
    compiled: &CompiledNode,
    existing: Option<bool>,
) -> Result<Outcome> {
    let rel = node
        .relation
        .as_ref()
        .ok_or_else(|| MaterializeError::Rule(format!("{} has no relation to build", node.unique_id)))?;
    let target = table_ref(rel);
    let d = wh.dialect();
    let mut out = Outcome::default();
    for hook in &compiled.pre_hooks {
        run(wh, &mut out, hook).await?;
    }
    match node.config.materialized.as_str() {
        "view" if d.name() == "duckdb" && existing != Some(false) => {
            // One statement, atomic by itself: the fast path for the embedded warehouse.
            run(wh, &mut out, &format!("create or replace view {} as (\n{}\n)", d.qualified(&target)?, compiled.sql))
                .await?;
            out.message = "CREATE VIEW".into();
        }
        "view" => {
            let mut tx = wh.begin().await?;
            if let Some(is_view) = existing {
                tx_run(tx.as_mut(), &mut out, &drop_sql(d, &target, is_view)?).await?;
            }
            tx_run(tx.as_mut(), &mut out, &format!("create view {} as (\n{}\n)", d.qualified(&target)?, compiled.sql))
                .await?;
            tx.commit().await?;
            out.message = "CREATE VIEW".into();
        }
        "table" => build_table(wh, &mut out, &target, &compiled.sql, existing).await?,
        "incremental" if !compiled.is_incremental => {
            build_table(wh, &mut out, &target, &compiled.sql, existing).await?
        }
        "incremental" => incremental(wh, node, &mut out, &target, &compiled.sql).await?,
        other => {
            return Err(MaterializeError::Rule(format!(
                "unknown materialization `{other}`; mdp builds view, table, incremental and ephemeral models"
            )))
        }
    }
    for hook in &compiled.post_hooks {
        run(wh, &mut out, hook).await?;
    }
    Ok(out)
}

async fn run(wh: &dyn Warehouse, out: &mut Outcome, sql: &str) -> Result<()> {
    out.statements.push(sql.to_string());
    wh.execute(sql).await?;
    Ok(())
}

async fn tx_run(tx: &mut dyn Transaction, out: &mut Outcome, sql: &str) -> Result<()> {
    out.statements.push(sql.to_string());
    tx.execute(sql).await?;
    Ok(())
}

pub(crate) fn drop_sql(
    d: &dyn Dialect,
    table: &TableRef,
    is_view: bool,
) -> std::result::Result<String, WarehouseError> {
    let kind = if is_view { "view" } else { "table" };
    let cascade = if d.name() == "postgres" { " cascade" } else { "" };
    Ok(format!("drop {kind} if exists {}{cascade}", d.qualified(table)?))
}

fn tmp_ref(target: &TableRef, suffix: &str) -> TableRef {
    TableRef::new(target.schema.clone(), format!("{}__{suffix}", target.name))
}

async fn build_table(
    wh: &dyn Warehouse,
    out: &mut Outcome,
    target: &TableRef,
    sql: &str,
    existing: Option<bool>,
) -> Result<()> {
    let d = wh.dialect();
    if d.name() == "duckdb" && existing != Some(true) {
        // `CREATE OR REPLACE TABLE … AS` is atomic in DuckDB and answers with the row count.
        let create = format!("create or replace table {} as (\n{}\n)", d.qualified(target)?, sql);
        out.statements.push(create.clone());
        let rows = string_rows(&wh.query_all(&create).await?)?;
        let count = rows.first().and_then(|r| r.first().cloned().flatten()).and_then(|s| s.parse().ok());
        out.rows_affected = count;
        out.message = count.map(|c| format!("SELECT {c}")).unwrap_or_else(|| "CREATE TABLE".into());
        return Ok(());
    }
    let mut tx = wh.begin().await?;
    if d.name() == "duckdb" {
        tx_run(tx.as_mut(), out, &drop_sql(d, target, true)?).await?;
        tx_run(tx.as_mut(), out, &format!("create table {} as (\n{}\n)", d.qualified(target)?, sql)).await?;
    } else {
        let tmp = tmp_ref(target, "dbt_tmp");
        tx_run(tx.as_mut(), out, &format!("drop table if exists {}", d.qualified(&tmp)?)).await?;
        tx_run(tx.as_mut(), out, &format!("create table {} as (\n{}\n)", d.qualified(&tmp)?, sql)).await?;
        if let Some(is_view) = existing {
            tx_run(tx.as_mut(), out, &drop_sql(d, target, is_view)?).await?;
        }
        tx_run(
            tx.as_mut(),
            out,
            &format!("alter table {} rename to {}", d.qualified(&tmp)?, d.quote_identifier(&target.name)?),
        )
        .await?;
    }
    let rows = count_rows(tx.as_mut(), d, target).await?;
    tx.commit().await?;
    out.rows_affected = Some(rows);
    out.message = format!("SELECT {rows}");
    Ok(())
}

async fn count_rows(tx: &mut dyn Transaction, d: &dyn Dialect, table: &TableRef) -> Result<u64> {
    let batches = tx.query_all(&format!("select cast(count(*) as varchar) from {}", d.qualified(table)?)).await?;
    let rows = string_rows(&batches)?;
    Ok(rows.first().and_then(|r| r[0].as_deref()).and_then(|s| s.parse().ok()).unwrap_or(0))
}

/// Column names and types of a table, read inside the transaction so uncommitted tables count.
async fn columns_in(tx: &mut dyn Transaction, d: &dyn Dialect, table: &TableRef) -> Result<Vec<(String, String)>> {
    let sql = format!(
        "select cast(column_name as varchar), cast(data_type as varchar) from information_schema.columns \
         where table_schema = {} and table_name = {} order by ordinal_position",
        d.string_literal(&table.schema)?,
        d.string_literal(&table.name)?
    );
    let rows = string_rows(&tx.query_all(&sql).await?)?;
    Ok(rows.into_iter().map(|r| (r[0].clone().unwrap_or_default(), r[1].clone().unwrap_or_default())).collect())
}

async fn incremental(wh: &dyn Warehouse, node: &Node, out: &mut Outcome, target: &TableRef, sql: &str) -> Result<()> {
    let d = wh.dialect();
    let key = &node.config.unique_key;
    let strategy = match node.config.incremental_strategy.as_deref() {
        Some(s) => s.to_string(),
        None if key.is_empty() => "append".to_string(),
        None => "delete+insert".to_string(),
    };
    if !matches!(strategy.as_str(), "append" | "delete+insert" | "merge") {
        return Err(MaterializeError::Rule(format!(
            "invalid incremental strategy `{strategy}`; expected one of: append, delete+insert, merge"
        )));
    }
    if strategy != "append" && key.is_empty() {
        return Err(MaterializeError::Rule(format!("incremental strategy `{strategy}` needs a `unique_key` config")));
    }
    let tmp = tmp_ref(target, "dbt_tmp");
    let qt = d.qualified(target)?;
    let qtmp = d.qualified(&tmp)?;
    let mut tx = wh.begin().await?;
    tx_run(tx.as_mut(), out, &format!("drop table if exists {qtmp}")).await?;
    tx_run(tx.as_mut(), out, &format!("create table {qtmp} as (\n{sql}\n)")).await?;
    let new_cols = columns_in(tx.as_mut(), d, &tmp).await?;
    let old_cols = columns_in(tx.as_mut(), d, target).await?;
    let has = |cols: &[(String, String)], name: &str| cols.iter().any(|(c, _)| c.eq_ignore_ascii_case(name));
    let added: Vec<&(String, String)> = new_cols.iter().filter(|(c, _)| !has(&old_cols, c)).collect();
    let removed: Vec<&(String, String)> = old_cols.iter().filter(|(c, _)| !has(&new_cols, c)).collect();
    let mut columns: Vec<String> = old_cols.iter().filter(|(c, _)| has(&new_cols, c)).map(|(c, _)| c.clone()).collect();
    if !added.is_empty() || !removed.is_empty() {
        match node.config.on_schema_change.as_str() {
            "fail" => {
                let names = |v: &[&(String, String)]| v.iter().map(|(c, _)| c.as_str()).collect::<Vec<_>>().join(", ");
                return Err(MaterializeError::Rule(format!(
                    "the columns of {} changed (added: [{}], removed: [{}]) and on_schema_change is `fail`; \
                     set on_schema_change to append_new_columns or sync_all_columns, or run with --full-refresh",
                    node.name,
                    names(&added),
                    names(&removed)
                )));
            }
            "append_new_columns" | "sync_all_columns" => {
                for (c, ty) in &added {
                    tx_run(tx.as_mut(), out, &format!("alter table {qt} add column {} {ty}", d.quote_identifier(c)?))
                        .await?;
                    columns.push(c.clone());
                }
                if node.config.on_schema_change == "sync_all_columns" {
                    for (c, _) in &removed {
                        tx_run(tx.as_mut(), out, &format!("alter table {qt} drop column {}", d.quote_identifier(c)?))
                            .await?;
                    }
                }
            }
            _ => {} // ignore: new columns are not loaded, removed ones get NULL
        }
    }
    let cols = d.quote_list(&columns)?;
    match strategy.as_str() {
        "append" => {}
        "delete+insert" => {
            let cond: Vec<String> = key
                .iter()
                .map(|k| d.quote_identifier(k).map(|q| format!("{qtmp}.{q} = {qt}.{q}")))
                .collect::<std::result::Result<_, _>>()?;
            tx_run(
                tx.as_mut(),
                out,
                &format!("delete from {qt} where exists (select 1 from {qtmp} where {})", cond.join(" and ")),
            )
            .await?;
        }
        _ => {
            let update: Vec<String> =
                columns.iter().filter(|c| !key.iter().any(|k| k.eq_ignore_ascii_case(c))).cloned().collect();
            let merge = d.merge_sql(target, &qtmp, key, &update)?;
            tx_run(tx.as_mut(), out, &merge).await?;
        }
    }
    if strategy != "merge" {
        tx_run(tx.as_mut(), out, &format!("insert into {qt} ({cols}) select {cols} from {qtmp}")).await?;
    }
    let rows = count_rows(tx.as_mut(), d, &tmp).await?;
    tx_run(tx.as_mut(), out, &format!("drop table {qtmp}")).await?;
    tx.commit().await?;
    out.rows_affected = Some(rows);
    out.message = format!("INSERT {rows}");
    Ok(())
}

/// Rows as `column=value, …` lines (`NULL` for nulls).
fn render_rows(batches: &[arrow::array::RecordBatch]) -> Vec<String> {
    let Ok(rows) = string_rows(batches) else { return Vec::new() };
    let Some(schema) = batches.first().map(|b| b.schema()) else { return Vec::new() };
    rows.iter()
        .map(|row| {
            schema
                .fields()
                .iter()
                .zip(row)
                .map(|(f, v)| format!("{}={}", f.name(), v.as_deref().unwrap_or("NULL")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// Run a test: count failing rows and apply `severity`, `warn_if`, `error_if` like dbt.
pub async fn run_test(wh: &dyn Warehouse, node: &Node, compiled: &CompiledNode) -> Result<Outcome> {
    let c = &node.config;
    for cond in [&c.warn_if, &c.error_if] {
        if cond.contains(';') || cond.len() > 64 {
            return Err(MaterializeError::Rule(format!("`{cond}` is not a condition like `!= 0` or `> 10`")));
        }
    }
    let limit = c.limit.map(|l| format!("\nlimit {l}")).unwrap_or_default();
    let sql = format!(
        "select cast(count(*) as varchar) as failures, \
         cast(case when count(*) {warn} then 1 else 0 end as varchar) as should_warn, \
         cast(case when count(*) {error} then 1 else 0 end as varchar) as should_error \
         from (\n{main}{limit}\n) dbt_internal_test",
        warn = c.warn_if,
        error = c.error_if,
        main = compiled.sql,
    );
    let rows = string_rows(&wh.query_all(&sql).await?)?;
    let row = rows.first().ok_or_else(|| MaterializeError::Rule("the test query returned no row".into()))?;
    let failures: u64 = row[0].as_deref().and_then(|s| s.parse().ok()).unwrap_or(0);
    let should_warn = row[1].as_deref() == Some("1");
    let should_error = row[2].as_deref() == Some("1");
    let status = if c.severity == "ERROR" && should_error {
        TestStatus::Fail
    } else if should_warn {
        TestStatus::Warn
    } else {
        TestStatus::Pass
    };
    let failing_rows = if status == TestStatus::Pass || failures == 0 {
        Vec::new()
    } else {
        // Best effort: the count above is the result; the rows only help to read it.
        let sample = format!("select * from (\n{}\n) dbt_internal_test limit {FAILING_ROWS_SHOWN}", compiled.sql);
        match wh.query_all(&sample).await {
            Ok(batches) => render_rows(&batches),
            Err(_) => Vec::new(),
        }
    };
    Ok(Outcome {
        failing_rows,
        message: match status {
            TestStatus::Pass => "PASS".into(),
            TestStatus::Warn => format!("WARN {failures}"),
            TestStatus::Fail => format!("FAIL {failures}"),
        },
        rows_affected: None,
        statements: vec![sql],
        failures: Some(failures),
        test_status: Some(status),
    })
}
