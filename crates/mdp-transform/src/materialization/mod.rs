//! Materializations as plans: which statements build a node, in which order, and which of them run
//! in the node's transaction — decided from the node, the target's [`Dialect`] and what exists, with
//! no I/O. [`crate::materialize`] runs a plan through the `Warehouse` trait.
//!
//! - `view`: one `CREATE OR REPLACE VIEW` where the engine replaces any view by itself; otherwise
//!   drop what was there and create, in one transaction.
//! - `table`: one `CREATE OR REPLACE TABLE … AS` where the engine supports it (over a view: drop it
//!   and create, in one transaction); otherwise build `<name>__dbt_tmp` and rename it over the old
//!   relation, in one transaction.
//! - `incremental`: the first run or `--full-refresh` as `table`; later runs build the new rows into
//!   `<name>__dbt_tmp`, read its columns and the target's ([`Reconcile`]), reconcile them
//!   (`on_schema_change`), then `append`, `delete+insert` or `merge` on `unique_key`, all in one
//!   transaction.
//! - `ephemeral`: nothing to build; the compiler inlined it.
//! - seeds ([`plan_seed`]): empty and refill a table of the same columns, else replace it; load the
//!   rows (through a text staging table when columns need a cast), in one transaction.
//! - tests ([`plan_test`]): count the failing rows and compare with `warn_if` / `error_if`.
//! - snapshots ([`plan_snapshot`]): dbt's type-2 history table, see [`snapshot`].
//!
//! Engine differences are the dialect's capabilities (`supports_create_or_replace_view`,
//! `supports_create_or_replace_table`, `transactional_ddl`, `supports_merge`, `drop_needs_cascade`)
//! and templates (`create_table_as_sql`, `create_view_as_sql`, `drop_relation_sql`, `merge_sql`, …);
//! nothing here asks which engine it is. With transactional DDL a failed statement leaves the
//! previous relation in place: every replacement is one transaction or one atomic statement.

use mdp_warehouse::{ColumnInfo, ColumnType, Dialect, RelationKind, TableRef, WarehouseError};

use crate::compile::CompiledNode;
use crate::config::NodeConfig;
use crate::manifest::RelationName;
use crate::seed::SeedColumn;

pub mod snapshot;
#[cfg(test)]
mod tests;

pub use snapshot::{plan_snapshot, Snapshot, SnapshotMerge};

/// Errors of a materialization: the database's, or a rule of the materialization.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error("{0}")]
    Rule(String),
    /// Loading a seed's rows failed (`file` is the CSV, as shown to the user).
    #[error("{file}: {source}")]
    Load { file: String, source: WarehouseError },
}

type Result<T> = std::result::Result<T, MaterializeError>;

/// The table or view a relation name addresses.
pub(crate) fn table_ref(rel: &RelationName) -> TableRef {
    TableRef::new(rel.schema.clone(), rel.identifier.clone())
}

/// How a model is built (its `materialized` config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Materialization {
    View,
    Table,
    Incremental,
    Ephemeral,
}

impl Materialization {
    /// The materialization a node's config names.
    pub fn of(config: &NodeConfig) -> Result<Self> {
        Ok(match config.materialized.as_str() {
            "view" => Materialization::View,
            "table" => Materialization::Table,
            "incremental" => Materialization::Incremental,
            "ephemeral" => Materialization::Ephemeral,
            other => {
                return Err(MaterializeError::Rule(format!(
                    "unknown materialization `{other}`; mdp builds view, table, incremental and ephemeral models"
                )))
            }
        })
    }

    /// What the relation is once this materialization built it.
    pub fn builds(self) -> RelationKind {
        match self {
            Materialization::View => RelationKind::View,
            _ => RelationKind::Table,
        }
    }

    /// The statements that build `model` on an engine speaking `d`: pre-hooks, the build, post-hooks.
    pub fn plan(self, model: &Model<'_>, d: &dyn Dialect) -> Result<Plan> {
        let mut steps: Vec<Step> = model.compiled.pre_hooks.iter().map(|h| Step::Run(Statement::alone(h))).collect();
        let sql = &model.compiled.sql;
        let report = match self {
            Materialization::Ephemeral => return Ok(Plan { steps: Vec::new(), report: Report::Ephemeral }),
            Materialization::View => {
                view(&mut steps, d, &model.relation, sql, model.existing)?;
                Report::CreateView
            }
            Materialization::Incremental if model.compiled.is_incremental => {
                incremental(&mut steps, d, model)?;
                Report::Insert
            }
            Materialization::Table | Materialization::Incremental => {
                table(&mut steps, d, &model.relation, sql, model.existing)?;
                Report::Select
            }
        };
        steps.extend(model.compiled.post_hooks.iter().map(|h| Step::Run(Statement::alone(h))));
        Ok(Plan { steps, report })
    }
}

/// What a model's plan is made from; all of it is known before anything runs.
#[derive(Debug, Clone)]
pub struct Model<'a> {
    /// The model's name, for messages.
    pub name: &'a str,
    pub config: &'a NodeConfig,
    /// The relation it builds.
    pub relation: TableRef,
    pub compiled: &'a CompiledNode,
    /// What exists under the relation's name now.
    pub existing: Option<RelationKind>,
}

/// The statements that build a node, in order.
#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// What the outcome reports when the plan ran.
    pub report: Report,
}

/// One step of a plan.
#[derive(Debug, Clone)]
pub enum Step {
    Run(Statement),
    /// Incremental runs: read the columns of the new rows and of the target, then run what
    /// [`Reconcile::statements`] plans from them.
    Reconcile(Reconcile),
    /// Snapshots: read the columns of the query's rows and of the table, build the changes, read
    /// their columns, then run what [`SnapshotMerge::merge`] plans.
    Snapshot(Box<SnapshotMerge>),
    /// Seeds: bulk-load the file's rows into `into`.
    Load {
        into: TableRef,
        /// The seed file as shown to the user (in errors).
        file: String,
        in_transaction: bool,
    },
}

/// One SQL statement and how the executor runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sql: String,
    /// Runs in the node's transaction: begun before the first such statement, committed before the
    /// next statement that is not, or at the end. Otherwise the statement runs on its own.
    pub in_transaction: bool,
    pub effect: Effect,
}

/// What a statement does, and what its answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Changes the warehouse (written to `target/run`).
    Change,
    /// Changes the warehouse and answers with the number of rows it wrote, when the engine says so
    /// (DuckDB's `CREATE OR REPLACE TABLE … AS`).
    ChangeCountingRows,
    /// Reads the number of rows built: the outcome's row count (not written to `target/run`).
    CountRows,
}

impl Statement {
    /// A statement that changes the warehouse, on its own (hooks, atomic replacements).
    fn alone(sql: &str) -> Self {
        Statement { sql: sql.to_string(), in_transaction: false, effect: Effect::Change }
    }

    fn change(sql: String, in_transaction: bool) -> Self {
        Statement { sql, in_transaction, effect: Effect::Change }
    }
}

/// What the outcome of a plan says (dbt's messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// `CREATE VIEW`.
    CreateView,
    /// `SELECT <rows>` (`CREATE TABLE` when the engine did not say how many).
    Select,
    /// `INSERT <rows>`.
    Insert,
    /// `EPHEMERAL`: nothing was built.
    Ephemeral,
    /// `SNAPSHOT <rows>`: the versions written (first run) or the changes found.
    Snapshot,
}

impl Report {
    /// The message for `rows` rows built.
    pub fn message(self, rows: Option<u64>) -> String {
        match self {
            Report::CreateView => "CREATE VIEW".into(),
            Report::Select => rows.map(|c| format!("SELECT {c}")).unwrap_or_else(|| "CREATE TABLE".into()),
            Report::Insert => format!("INSERT {}", rows.unwrap_or(0)),
            Report::Ephemeral => "EPHEMERAL".into(),
            Report::Snapshot => format!("SNAPSHOT {}", rows.unwrap_or(0)),
        }
    }
}

/// `<name>__<suffix>` beside `target`.
fn beside(target: &TableRef, suffix: &str) -> TableRef {
    TableRef::new(target.schema.clone(), format!("{}__{suffix}", target.name))
}

/// The statement reading the number of rows of `table`.
fn count_rows(d: &dyn Dialect, table: &TableRef, in_transaction: bool) -> Result<Statement> {
    Ok(Statement {
        sql: format!("select cast(count(*) as varchar) from {}", d.qualified(table)?),
        in_transaction,
        effect: Effect::CountRows,
    })
}

/// `drop table if exists` of a table mdp made for this build (nothing is built on it).
fn drop_scratch(d: &dyn Dialect, table: &TableRef) -> Result<String> {
    Ok(format!("drop table if exists {}", d.qualified(table)?))
}

fn view(
    steps: &mut Vec<Step>,
    d: &dyn Dialect,
    target: &TableRef,
    sql: &str,
    existing: Option<RelationKind>,
) -> Result<()> {
    if d.supports_create_or_replace_view() && existing != Some(RelationKind::Table) {
        // One statement, atomic by itself.
        steps.push(Step::Run(Statement::change(d.create_or_replace_view_as_sql(target, sql)?, false)));
        return Ok(());
    }
    let tx = d.transactional_ddl();
    if let Some(kind) = existing {
        steps.push(Step::Run(Statement::change(d.drop_relation_sql(target, kind)?, tx)));
    }
    steps.push(Step::Run(Statement::change(d.create_view_as_sql(target, sql)?, tx)));
    Ok(())
}

fn table(
    steps: &mut Vec<Step>,
    d: &dyn Dialect,
    target: &TableRef,
    sql: &str,
    existing: Option<RelationKind>,
) -> Result<()> {
    let tx = d.transactional_ddl();
    if d.supports_create_or_replace_table() {
        if existing != Some(RelationKind::View) {
            // Atomic by itself, and (DuckDB) answers with the row count.
            steps.push(Step::Run(Statement {
                sql: d.create_or_replace_table_as_sql(target, sql)?,
                in_transaction: false,
                effect: Effect::ChangeCountingRows,
            }));
            return Ok(());
        }
        // A view of that name: `OR REPLACE` does not replace a view by a table.
        steps.push(Step::Run(Statement::change(d.drop_relation_sql(target, RelationKind::View)?, tx)));
        steps.push(Step::Run(Statement::change(d.create_table_as_sql(target, sql)?, tx)));
    } else {
        let tmp = beside(target, "dbt_tmp");
        steps.push(Step::Run(Statement::change(drop_scratch(d, &tmp)?, tx)));
        steps.push(Step::Run(Statement::change(d.create_table_as_sql(&tmp, sql)?, tx)));
        if let Some(kind) = existing {
            steps.push(Step::Run(Statement::change(d.drop_relation_sql(target, kind)?, tx)));
        }
        let rename = format!("alter table {} rename to {}", d.qualified(&tmp)?, d.quote_identifier(&target.name)?);
        steps.push(Step::Run(Statement::change(rename, tx)));
    }
    steps.push(Step::Run(count_rows(d, target, tx)?));
    Ok(())
}

/// How an incremental run writes its new rows into the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncrementalStrategy {
    /// Insert them.
    Append,
    /// Delete the rows with the same `unique_key`, then insert.
    DeleteInsert,
    /// `MERGE` on `unique_key`: update the rows that match, insert the others.
    Merge,
}

impl IncrementalStrategy {
    /// The strategy of `config`: `incremental_strategy`, else `append` without a `unique_key` and
    /// `delete+insert` with one.
    pub fn of(config: &NodeConfig) -> Result<Self> {
        let key = &config.unique_key;
        let strategy = match config.incremental_strategy.as_deref() {
            Some("append") => IncrementalStrategy::Append,
            Some("delete+insert") => IncrementalStrategy::DeleteInsert,
            Some("merge") => IncrementalStrategy::Merge,
            Some(other) => {
                return Err(MaterializeError::Rule(format!(
                    "invalid incremental strategy `{other}`; expected one of: append, delete+insert, merge"
                )))
            }
            None if key.is_empty() => IncrementalStrategy::Append,
            None => IncrementalStrategy::DeleteInsert,
        };
        if strategy != IncrementalStrategy::Append && key.is_empty() {
            return Err(MaterializeError::Rule(format!(
                "incremental strategy `{}` needs a `unique_key` config",
                strategy.as_str()
            )));
        }
        Ok(strategy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IncrementalStrategy::Append => "append",
            IncrementalStrategy::DeleteInsert => "delete+insert",
            IncrementalStrategy::Merge => "merge",
        }
    }
}

/// What an incremental run does when the new rows' columns differ from the table's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnSchemaChange {
    /// New columns are not loaded; removed ones get NULL.
    Ignore,
    /// Refuse, naming the columns.
    Fail,
    /// Add the new columns to the table.
    AppendNewColumns,
    /// Add the new columns and drop the removed ones.
    SyncAllColumns,
}

impl OnSchemaChange {
    /// The `on_schema_change` config (validated when configs are read; anything else is `ignore`).
    pub fn of(config: &NodeConfig) -> Self {
        match config.on_schema_change.as_str() {
            "fail" => OnSchemaChange::Fail,
            "append_new_columns" => OnSchemaChange::AppendNewColumns,
            "sync_all_columns" => OnSchemaChange::SyncAllColumns,
            _ => OnSchemaChange::Ignore,
        }
    }
}

fn incremental(steps: &mut Vec<Step>, d: &dyn Dialect, model: &Model<'_>) -> Result<()> {
    let strategy = IncrementalStrategy::of(model.config)?;
    if strategy == IncrementalStrategy::Merge && !d.supports_merge() {
        return Err(MaterializeError::Rule(format!(
            "incremental strategy `merge` is not supported on {}; use delete+insert",
            d.name()
        )));
    }
    let tx = d.transactional_ddl();
    let tmp = beside(&model.relation, "dbt_tmp");
    steps.push(Step::Run(Statement::change(drop_scratch(d, &tmp)?, tx)));
    steps.push(Step::Run(Statement::change(d.create_table_as_sql(&tmp, &model.compiled.sql)?, tx)));
    steps.push(Step::Reconcile(Reconcile {
        model: model.name.to_string(),
        target: model.relation.clone(),
        new_rows: tmp,
        strategy,
        unique_key: model.config.unique_key.clone(),
        on_schema_change: OnSchemaChange::of(model.config),
        in_transaction: tx,
    }));
    Ok(())
}

/// The second half of an incremental run, planned once the new rows are in `new_rows` and the
/// columns of both tables are known (read in the transaction, so the uncommitted table counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconcile {
    /// The model's name, for messages.
    pub model: String,
    pub target: TableRef,
    /// The table holding the new rows.
    pub new_rows: TableRef,
    pub strategy: IncrementalStrategy,
    pub unique_key: Vec<String>,
    pub on_schema_change: OnSchemaChange,
    /// Where the columns are read and the statements run.
    pub in_transaction: bool,
}

impl Reconcile {
    /// Reconcile the columns, write the new rows, count them, drop their table.
    pub fn statements(
        &self,
        d: &dyn Dialect,
        new_cols: &[ColumnInfo],
        old_cols: &[ColumnInfo],
    ) -> Result<Vec<Statement>> {
        let tx = self.in_transaction;
        let qt = d.qualified(&self.target)?;
        let qtmp = d.qualified(&self.new_rows)?;
        let key = &self.unique_key;
        let has = |cols: &[ColumnInfo], name: &str| cols.iter().any(|c| c.name.eq_ignore_ascii_case(name));
        let added: Vec<&ColumnInfo> = new_cols.iter().filter(|c| !has(old_cols, &c.name)).collect();
        let removed: Vec<&ColumnInfo> = old_cols.iter().filter(|c| !has(new_cols, &c.name)).collect();
        let mut columns: Vec<String> =
            old_cols.iter().filter(|c| has(new_cols, &c.name)).map(|c| c.name.clone()).collect();
        let mut out = Vec::new();
        if !added.is_empty() || !removed.is_empty() {
            match self.on_schema_change {
                OnSchemaChange::Fail => {
                    let names = |v: &[&ColumnInfo]| v.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
                    return Err(MaterializeError::Rule(format!(
                        "the columns of {} changed (added: [{}], removed: [{}]) and on_schema_change is `fail`; \
                         set on_schema_change to append_new_columns or sync_all_columns, or run with --full-refresh",
                        self.model,
                        names(&added),
                        names(&removed)
                    )));
                }
                OnSchemaChange::AppendNewColumns | OnSchemaChange::SyncAllColumns => {
                    for c in &added {
                        let sql =
                            format!("alter table {qt} add column {} {}", d.quote_identifier(&c.name)?, c.data_type);
                        out.push(Statement::change(sql, tx));
                        columns.push(c.name.clone());
                    }
                    if self.on_schema_change == OnSchemaChange::SyncAllColumns {
                        for c in &removed {
                            let sql = format!("alter table {qt} drop column {}", d.quote_identifier(&c.name)?);
                            out.push(Statement::change(sql, tx));
                        }
                    }
                }
                OnSchemaChange::Ignore => {}
            }
        }
        let cols = d.quote_list(&columns)?;
        match self.strategy {
            IncrementalStrategy::Append => {}
            IncrementalStrategy::DeleteInsert => {
                let cond: Vec<String> = key
                    .iter()
                    .map(|k| d.quote_identifier(k).map(|q| format!("{qtmp}.{q} = {qt}.{q}")))
                    .collect::<std::result::Result<_, _>>()?;
                let sql = format!("delete from {qt} where exists (select 1 from {qtmp} where {})", cond.join(" and "));
                out.push(Statement::change(sql, tx));
            }
            IncrementalStrategy::Merge => {
                let update: Vec<String> =
                    columns.iter().filter(|c| !key.iter().any(|k| k.eq_ignore_ascii_case(c))).cloned().collect();
                out.push(Statement::change(d.merge_sql(&self.target, &qtmp, key, &update)?, tx));
            }
        }
        if self.strategy != IncrementalStrategy::Merge {
            out.push(Statement::change(format!("insert into {qt} ({cols}) select {cols} from {qtmp}"), tx));
        }
        out.push(count_rows(d, &self.new_rows, tx)?);
        out.push(Statement::change(format!("drop table {qtmp}"), tx));
        Ok(out)
    }
}

/// What a seed's plan is made from.
#[derive(Debug, Clone)]
pub struct Seed<'a> {
    /// The table it fills.
    pub relation: TableRef,
    /// The file as shown to the user.
    pub file: String,
    /// The columns read from the file.
    pub columns: &'a [SeedColumn],
    /// What exists under the table's name now.
    pub existing: Option<RelationKind>,
    /// The columns of the existing table, when [`Seed::needs_existing_columns`] (else empty).
    pub existing_columns: &'a [String],
    pub full_refresh: bool,
}

impl Seed<'_> {
    /// Whether the plan depends on the existing table's columns (an existing table is reused
    /// when its columns are the file's, unless `--full-refresh`).
    pub fn needs_existing_columns(existing: Option<RelationKind>, full_refresh: bool) -> bool {
        existing == Some(RelationKind::Table) && !full_refresh
    }
}

/// Load a seed: like dbt, an existing table with the same columns is emptied and refilled (views
/// on it survive); otherwise, or with `--full-refresh`, it is dropped and created again. Columns
/// that need a cast are loaded as text into `<name>__mdp_seed` and cast from there.
pub fn plan_seed(seed: &Seed<'_>, d: &dyn Dialect) -> Result<Plan> {
    let tx = d.transactional_ddl();
    let target = &seed.relation;
    let staging = beside(target, "mdp_seed");
    let any_cast = seed.columns.iter().any(|c| c.cast_needed);
    let mut final_defs = Vec::new();
    let mut staging_defs = Vec::new();
    for c in seed.columns {
        final_defs.push(format!("{} {}", d.quote_identifier(&c.name)?, c.sql_type));
        let ty = if c.cast_needed { d.column_type(ColumnType::Text) } else { c.sql_type.clone() };
        staging_defs.push(format!("{} {ty}", d.quote_identifier(&c.name)?));
    }
    let reuse = Seed::needs_existing_columns(seed.existing, seed.full_refresh)
        && seed.existing_columns.len() == seed.columns.len()
        && seed.existing_columns.iter().zip(seed.columns).all(|(a, b)| a.eq_ignore_ascii_case(&b.name));
    let mut steps = Vec::new();
    let mut run = |sql: String| steps.push(Step::Run(Statement::change(sql, tx)));
    if reuse {
        run(format!("delete from {}", d.qualified(target)?));
    } else {
        if let Some(kind) = seed.existing {
            run(d.drop_relation_sql(target, kind)?);
        }
        run(format!("create table {} ({})", d.qualified(target)?, final_defs.join(", ")));
    }
    if any_cast {
        run(drop_scratch(d, &staging)?);
        run(format!("create table {} ({})", d.qualified(&staging)?, staging_defs.join(", ")));
    }
    let into = if any_cast { staging.clone() } else { target.clone() };
    steps.push(Step::Load { into, file: seed.file.clone(), in_transaction: tx });
    if any_cast {
        let select: Vec<String> = seed
            .columns
            .iter()
            .map(|c| {
                let name = d.quote_identifier(&c.name)?;
                Ok(if c.cast_needed { format!("cast({name} as {})", c.sql_type) } else { name })
            })
            .collect::<Result<_>>()?;
        let insert = format!(
            "insert into {} select {} from {}",
            d.qualified(target)?,
            select.join(", "),
            d.qualified(&staging)?
        );
        steps.push(Step::Run(Statement::change(insert, tx)));
        steps.push(Step::Run(Statement::change(format!("drop table {}", d.qualified(&staging)?), tx)));
    }
    Ok(Plan { steps, report: Report::Insert })
}

/// A test's queries: the count that decides its status, and a sample of the failing rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestQueries {
    /// One row: `failures`, `should_warn`, `should_error` (as text).
    pub count: String,
    /// The first failing rows, to show with a failed or warned test.
    pub sample: String,
}

/// Failing rows shown with a failed test.
pub const FAILING_ROWS_SHOWN: usize = 5;

/// Count a test's failing rows and apply `warn_if` / `error_if` (and `limit`), like dbt.
pub fn plan_test(config: &NodeConfig, sql: &str) -> Result<TestQueries> {
    for cond in [&config.warn_if, &config.error_if] {
        if cond.contains(';') || cond.len() > 64 {
            return Err(MaterializeError::Rule(format!("`{cond}` is not a condition like `!= 0` or `> 10`")));
        }
    }
    let limit = config.limit.map(|l| format!("\nlimit {l}")).unwrap_or_default();
    // `fail_calc` (dbt's default `count(*)`): how the failing rows become the number compared.
    let fail_calc = match config.extra.get("fail_calc") {
        Some(serde_json::Value::String(calc)) if !calc.trim().is_empty() => calc.trim().to_string(),
        _ => "count(*)".to_string(),
    };
    if fail_calc.contains(';') {
        return Err(MaterializeError::Rule(format!("fail_calc `{fail_calc}` must be one SQL expression")));
    }
    let count = format!(
        "select cast({calc} as varchar) as failures, \
         cast(case when {calc} {warn} then 1 else 0 end as varchar) as should_warn, \
         cast(case when {calc} {error} then 1 else 0 end as varchar) as should_error \
         from (\n{sql}{limit}\n) dbt_internal_test",
        calc = fail_calc,
        warn = config.warn_if,
        error = config.error_if,
    );
    let sample = format!("select * from (\n{sql}\n) dbt_internal_test limit {FAILING_ROWS_SHOWN}");
    Ok(TestQueries { count, sample })
}
