//! Run a node's [plan](crate::materialization) through the warehouse layer: statements in order,
//! those marked so in one transaction (begun at the first, committed after the last), a seed's
//! rows bulk-loaded where the plan says, an incremental run's columns read mid-transaction.
//!
//! A failed statement drops the transaction: with transactional DDL the previous relation stays.

use mdp_warehouse::{string_rows, BatchStream, ColumnInfo, RelationKind, TableRef, Transaction, Warehouse};

use crate::compile::CompiledNode;
use crate::manifest::Node;
pub use crate::materialization::MaterializeError;
use crate::materialization::{self, Effect, Materialization, Model, Plan, Seed, Statement, Step};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestStatus {
    Pass,
    Warn,
    Fail,
}

type Result<T> = std::result::Result<T, MaterializeError>;

/// Build a model. `existing`: what exists under its relation's name now.
pub async fn materialize(
    wh: &dyn Warehouse,
    node: &Node,
    compiled: &CompiledNode,
    existing: Option<RelationKind>,
) -> Result<Outcome> {
    let model = Model { name: &node.name, config: &node.config, relation: relation_of(node)?, compiled, existing };
    let plan = Materialization::of(&node.config)?.plan(&model, wh.dialect())?;
    execute(wh, &plan, None).await
}

/// The table or view a node builds.
fn relation_of(node: &Node) -> Result<TableRef> {
    let rel = node
        .relation
        .as_ref()
        .ok_or_else(|| MaterializeError::Rule(format!("{} has no relation to build", node.unique_id)))?;
    Ok(materialization::table_ref(rel))
}

/// Snapshot a query into its history table (see [`materialization::snapshot`]).
pub async fn snapshot(
    wh: &dyn Warehouse,
    node: &Node,
    compiled: &CompiledNode,
    existing: Option<RelationKind>,
) -> Result<Outcome> {
    let spec = crate::snapshot::SnapshotSpec::of(&node.config)
        .map_err(|e| MaterializeError::Rule(format!("snapshot `{}`: {e}", node.name)))?;
    let snap =
        materialization::Snapshot { name: &node.name, spec: &spec, relation: relation_of(node)?, compiled, existing };
    let plan = materialization::plan_snapshot(&snap, wh.dialect())?;
    execute(wh, &plan, None).await
}

/// Load a seed's rows (read from its file) into its table.
pub async fn load_seed(wh: &dyn Warehouse, seed: &Seed<'_>, batches: BatchStream) -> Result<Outcome> {
    let plan = materialization::plan_seed(seed, wh.dialect())?;
    execute(wh, &plan, Some(batches)).await
}

/// Run a plan. `load`: the rows of its `Load` step.
pub async fn execute(wh: &dyn Warehouse, plan: &Plan, mut load: Option<BatchStream>) -> Result<Outcome> {
    let d = wh.dialect();
    let mut run = Execution { wh, tx: None, statements: Vec::new(), rows: None };
    for step in &plan.steps {
        match step {
            Step::Run(statement) => run.statement(statement).await?,
            Step::Reconcile(reconcile) => {
                run.enter(reconcile.in_transaction).await?;
                let new_cols = run.columns(&reconcile.new_rows).await?;
                let old_cols = run.columns(&reconcile.target).await?;
                for statement in reconcile.statements(d, &new_cols, &old_cols)? {
                    run.statement(&statement).await?;
                }
            }
            Step::Snapshot(merge) => {
                run.enter(merge.in_transaction).await?;
                let source_cols = run.columns(&merge.source).await?;
                let target_cols = run.columns(&merge.target).await?;
                for statement in merge.stage(d, &source_cols, &target_cols)? {
                    run.statement(&statement).await?;
                }
                let staging_cols = run.columns(&merge.staging).await?;
                for statement in merge.merge(d, &staging_cols, &target_cols)? {
                    run.statement(&statement).await?;
                }
            }
            Step::Load { into, file, in_transaction } => {
                let batches = load
                    .take()
                    .ok_or_else(|| MaterializeError::Rule(format!("internal error: no rows to load from {file}")))?;
                run.enter(*in_transaction).await?;
                let loaded = match run.tx.as_mut() {
                    Some(tx) => tx.bulk_load(into, batches).await,
                    None => wh.bulk_load(into, batches).await,
                };
                run.rows = Some(loaded.map_err(|source| MaterializeError::Load { file: file.clone(), source })?);
            }
        }
    }
    if let Some(tx) = run.tx.take() {
        tx.commit().await?;
    }
    Ok(Outcome {
        message: plan.report.message(run.rows),
        rows_affected: run.rows,
        statements: run.statements,
        ..Outcome::default()
    })
}

/// A plan being run: the open transaction, what ran, the rows counted.
struct Execution<'w> {
    wh: &'w dyn Warehouse,
    tx: Option<Box<dyn Transaction>>,
    statements: Vec<String>,
    rows: Option<u64>,
}

impl Execution<'_> {
    /// Begin the node's transaction, or commit it before a statement that runs on its own.
    async fn enter(&mut self, in_transaction: bool) -> Result<()> {
        if in_transaction {
            if self.tx.is_none() {
                self.tx = Some(self.wh.begin().await?);
            }
        } else if let Some(tx) = self.tx.take() {
            tx.commit().await?;
        }
        Ok(())
    }

    async fn statement(&mut self, statement: &Statement) -> Result<()> {
        self.enter(statement.in_transaction).await?;
        let sql = statement.sql.as_str();
        match statement.effect {
            Effect::Change => {
                self.statements.push(sql.to_string());
                match self.tx.as_mut() {
                    Some(tx) => tx.execute(sql).await?,
                    None => self.wh.execute(sql).await?,
                }
            }
            Effect::ChangeCountingRows => {
                self.statements.push(sql.to_string());
                self.rows = first_number(&self.query(sql).await?)?;
            }
            Effect::CountRows => self.rows = Some(first_number(&self.query(sql).await?)?.unwrap_or(0)),
        }
        Ok(())
    }

    async fn query(&mut self, sql: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        Ok(match self.tx.as_mut() {
            Some(tx) => tx.query_all(sql).await?,
            None => self.wh.query_all(sql).await?,
        })
    }

    /// The columns of `table`, read where the plan runs (so a table created in the transaction counts).
    async fn columns(&mut self, table: &TableRef) -> Result<Vec<ColumnInfo>> {
        let sql = self.wh.dialect().columns_query(table)?;
        columns_of(&self.query(&sql).await?)
    }
}

/// The answer of [`mdp_warehouse::Dialect::columns_query`] as columns.
fn columns_of(batches: &[arrow::array::RecordBatch]) -> Result<Vec<ColumnInfo>> {
    let Some(schema) = batches.first().map(|b| b.schema()) else { return Ok(Vec::new()) };
    let index = |name: &str| {
        schema.fields().iter().position(|f| f.name().eq_ignore_ascii_case(name)).ok_or_else(|| {
            MaterializeError::Rule(format!("internal error: the columns query answered no `{name}` column"))
        })
    };
    let (name, data_type, nullable) = (index("column_name")?, index("data_type")?, index("is_nullable")?);
    Ok(string_rows(batches)?
        .into_iter()
        .map(|r| {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            ColumnInfo { name: cell(name), data_type: cell(data_type), nullable: cell(nullable) == "YES" }
        })
        .collect())
}

/// A unit test, resolved against the project: its inputs with the relations they stand for.
#[derive(Debug, Clone)]
pub struct UnitRun<'a> {
    pub name: &'a str,
    pub model: &'a str,
    /// (CTE name, rows, the relation it replaces when it has one).
    pub inputs: Vec<(String, &'a crate::unit::Rows, Option<TableRef>)>,
    pub expect: &'a crate::unit::Rows,
    /// A view name for the model's output (created and rolled back).
    pub scratch: TableRef,
}

/// Run a unit test (see [`crate::unit`]): in a transaction that is rolled back, build the inputs'
/// rows, read the types of the model's output, and compare it with the expected rows.
pub async fn run_unit_test(wh: &dyn Warehouse, unit: &UnitRun<'_>, model_sql: &str) -> Result<Outcome> {
    let mut tx = wh.begin().await?;
    let outcome = unit_test_in(tx.as_mut(), wh.dialect(), unit, model_sql).await;
    // Nothing a unit test creates is kept.
    let _ = tx.rollback().await;
    outcome
}

async fn unit_test_in(
    tx: &mut dyn Transaction,
    d: &dyn mdp_warehouse::Dialect,
    unit: &UnitRun<'_>,
    model_sql: &str,
) -> Result<Outcome> {
    use crate::unit::Rows;
    // The columns of a relation, read in the transaction (so the scratch views count).
    async fn columns(
        tx: &mut dyn Transaction,
        d: &dyn mdp_warehouse::Dialect,
        table: &TableRef,
    ) -> Result<Vec<ColumnInfo>> {
        columns_of(&tx.query_all(&d.columns_query(table)?).await?)
    }
    let mut ctes = Vec::new();
    for (cte, rows, relation) in &unit.inputs {
        let columns = match relation {
            Some(table) => columns(tx, d, table).await?,
            None => Vec::new(),
        };
        ctes.push((cte.clone(), crate::unit::rows_sql(d, rows, &columns)?));
    }
    let sql = crate::compile::inject_ctes(model_sql, &ctes);
    tx.execute(&d.create_schema_sql(&unit.scratch.schema)?).await?;
    tx.execute(&d.create_view_as_sql(&unit.scratch, &sql)?).await?;
    let actual = columns(tx, d, &unit.scratch).await?;
    let expected_names: Vec<String> = match unit.expect {
        Rows::Sql(query) => {
            let view = TableRef::new(unit.scratch.schema.clone(), format!("{}_expected", unit.scratch.name));
            tx.execute(&d.create_view_as_sql(&view, query)?).await?;
            columns(tx, d, &view).await?.into_iter().map(|c| c.name).collect()
        }
        rows => rows.columns(),
    };
    let mut typed = Vec::new();
    for name in &expected_names {
        let column = actual.iter().find(|c| c.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
            let returns: Vec<&str> = actual.iter().map(|c| c.name.as_str()).collect();
            MaterializeError::Rule(format!(
                "unit test `{}`: the expected rows name column `{name}`, which model `{}` does not return (it returns: {})",
                unit.name,
                unit.model,
                returns.join(", ")
            ))
        })?;
        typed.push(column.clone());
    }
    let view = d.qualified(&unit.scratch)?;
    let (only_expected, only_actual, names) = if typed.is_empty() {
        // `expect: {rows: []}`: the model returns no rows.
        let count = tx.query_all(&format!("select cast(count(*) as varchar) from {view}")).await?;
        let n = first_number(&count)?.unwrap_or(0);
        (Vec::new(), vec![vec![Some(format!("{n} rows"))]; usize::from(n > 0)], vec!["rows".to_string()])
    } else {
        let expected_sql = match unit.expect {
            Rows::Sql(query) => query.clone(),
            rows => crate::unit::rows_sql(d, rows, &typed)?,
        };
        let list = |alias: &str| -> Result<String> {
            Ok(typed
                .iter()
                .map(|c| Ok(d.cast_to_text(&format!("{alias}.{}", d.quote_identifier(&c.name)?))))
                .collect::<std::result::Result<Vec<_>, mdp_warehouse::WarehouseError>>()?
                .join(", "))
        };
        let compare = format!(
            "select 'actual' as mdp_side, {} from {view} as a
union all
select 'expected' as mdp_side, {} from (
{expected_sql}
) as e",
            list("a")?,
            list("e")?
        );
        let rows = string_rows(&tx.query_all(&compare).await?)?;
        let side = |which: &str| -> Vec<Vec<Option<String>>> {
            rows.iter()
                .filter(|r| r.first().cloned().flatten().as_deref() == Some(which))
                .map(|r| r[1..].to_vec())
                .collect()
        };
        let (missing, extra) = crate::unit::diff(&side("expected"), &side("actual"));
        (missing, extra, typed.iter().map(|c| c.name.clone()).collect())
    };
    let show = |sign: &str, row: &Vec<Option<String>>| {
        let cells: Vec<String> =
            names.iter().zip(row).map(|(n, v)| format!("{n}={}", v.as_deref().unwrap_or("NULL"))).collect();
        format!("{sign} {}", cells.join(", "))
    };
    let mut failing_rows: Vec<String> = only_expected.iter().map(|r| show("- expected, missing:", r)).collect();
    failing_rows.extend(only_actual.iter().map(|r| show("+ returned, not expected:", r)));
    let failures = failing_rows.len() as u64;
    let status = if failures == 0 { TestStatus::Pass } else { TestStatus::Fail };
    Ok(Outcome {
        message: if failures == 0 { "PASS".into() } else { format!("FAIL {failures}") },
        rows_affected: None,
        statements: vec![sql],
        failures: Some(failures),
        test_status: Some(status),
        failing_rows,
    })
}

/// The first cell of a result as a number (a row count), if it is one.
fn first_number(batches: &[arrow::array::RecordBatch]) -> Result<Option<u64>> {
    let rows = string_rows(batches)?;
    Ok(rows.first().and_then(|r| r.first().cloned().flatten()).and_then(|s| s.parse().ok()))
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
    let queries = materialization::plan_test(c, &compiled.sql)?;
    let rows = string_rows(&wh.query_all(&queries.count).await?)?;
    let row = rows.first().ok_or_else(|| MaterializeError::Rule("the test query returned no row".into()))?;
    let cell = |i: usize| row.get(i).cloned().flatten();
    let failures: u64 = cell(0).and_then(|s| s.parse().ok()).unwrap_or(0);
    let should_warn = cell(1).as_deref() == Some("1");
    let should_error = cell(2).as_deref() == Some("1");
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
        match wh.query_all(&queries.sample).await {
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
        statements: vec![queries.count],
        failures: Some(failures),
        test_status: Some(status),
    })
}
