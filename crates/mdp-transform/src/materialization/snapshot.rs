//! Snapshot plans: dbt-core 1.10's snapshot materialization (its `build_snapshot_table`,
//! `snapshot_staging_table` and dbt-postgres / dbt-duckdb's `snapshot_merge_sql`), with the same
//! expressions so that the tables equal dbt's row for row.
//!
//! - First run (no table yet): `create table … as select *, <scd id>, <updated_at> as
//!   dbt_updated_at, … as dbt_valid_from, null as dbt_valid_to from (<query>)`.
//! - Later runs, in one transaction: the query's rows into `<name>__mdp_src` (the query runs once,
//!   where dbt's staging query runs it three times, with the same result), then the changes into
//!   `<name>__dbt_tmp` (inserts of new or changed keys, updates closing their current version,
//!   deletes closing versions whose key left the source), then columns the query gained are
//!   added to the table, the closed versions get their `dbt_valid_to` and the new versions are
//!   inserted. Which columns `check_cols: all` compares, and which are new, is read from the
//!   warehouse mid-transaction ([`Step::Snapshot`]).
//!
//! A killed run leaves the table as it was (the transaction); scratch tables of a run that
//! died on an engine without transactional DDL are dropped by the next run.

use mdp_warehouse::{ColumnInfo, Dialect, RelationKind, TableRef};

use super::{beside, count_rows, drop_scratch, MaterializeError, Plan, Report, Result, Statement, Step};
use crate::compile::CompiledNode;
use crate::snapshot::{CheckCols, HardDeletes, SnapshotSpec, Strategy};

/// What a snapshot's plan is made from.
#[derive(Debug, Clone)]
pub struct Snapshot<'a> {
    pub name: &'a str,
    pub spec: &'a SnapshotSpec,
    /// The table it keeps.
    pub relation: TableRef,
    pub compiled: &'a CompiledNode,
    /// What exists under the table's name now.
    pub existing: Option<RelationKind>,
}

/// The statements of a snapshot run: pre-hooks, the first build or the merge, post-hooks.
pub fn plan_snapshot(snap: &Snapshot<'_>, d: &dyn Dialect) -> Result<Plan> {
    let mut steps: Vec<Step> = snap.compiled.pre_hooks.iter().map(|h| Step::Run(Statement::alone(h))).collect();
    let tx = d.transactional_ddl();
    let target = &snap.relation;
    match snap.existing {
        Some(RelationKind::View) => {
            return Err(MaterializeError::Rule(format!(
                "snapshot `{}`: {} is a view; a snapshot keeps its history in a table. Drop the view or give the \
                 snapshot another name (alias)",
                snap.name, target
            )))
        }
        None => {
            let build = build_sql(snap.spec, d, &snap.compiled.sql);
            steps.push(Step::Run(Statement::change(d.create_table_as_sql(target, &build)?, tx)));
            steps.push(Step::Run(count_rows(d, target, tx)?));
        }
        Some(RelationKind::Table) => {
            let source = beside(target, "mdp_src");
            steps.push(Step::Run(Statement::change(drop_scratch(d, &source)?, tx)));
            steps.push(Step::Run(Statement::change(d.create_table_as_sql(&source, &snap.compiled.sql)?, tx)));
            let staging = beside(target, "dbt_tmp");
            steps.push(Step::Run(Statement::change(drop_scratch(d, &staging)?, tx)));
            steps.push(Step::Snapshot(Box::new(SnapshotMerge {
                name: snap.name.to_string(),
                spec: snap.spec.clone(),
                target: target.clone(),
                source,
                staging,
                in_transaction: tx,
            })));
        }
    }
    steps.extend(snap.compiled.post_hooks.iter().map(|h| Step::Run(Statement::alone(h))));
    Ok(Plan { steps, report: Report::Snapshot })
}

/// The time a version records: `updated_at`, or (check strategy without it) the run's time.
fn updated_at(spec: &SnapshotSpec, d: &dyn Dialect) -> String {
    match &spec.strategy {
        Strategy::Timestamp { updated_at } | Strategy::Check { updated_at: Some(updated_at), .. } => updated_at.clone(),
        Strategy::Check { updated_at: None, .. } => d.snapshot_get_time(),
    }
}

/// `dbt_scd_id`: the hash of the key and the time.
fn scd_id(spec: &SnapshotSpec, d: &dyn Dialect) -> String {
    let mut args = spec.unique_key.clone();
    args.push(updated_at(spec, d));
    d.snapshot_hash_sql(&args)
}

/// dbt's `get_dbt_valid_to_current`: NULL (or `dbt_valid_to_current`) of `updated_at`'s type.
fn valid_to_current(spec: &SnapshotSpec, d: &dyn Dialect) -> String {
    let u = updated_at(spec, d);
    let current = spec.valid_to_current.as_deref().unwrap_or("null");
    format!("coalesce(nullif({u}, {u}), {current}) as {}", spec.columns.valid_to)
}

/// dbt's `build_snapshot_table`: the first version of every row.
pub fn build_sql(spec: &SnapshotSpec, d: &dyn Dialect, sql: &str) -> String {
    let c = &spec.columns;
    let u = updated_at(spec, d);
    let deleted = if spec.hard_deletes == HardDeletes::NewRecord {
        format!(",\n    'False' as {}", c.is_deleted)
    } else {
        String::new()
    };
    format!(
        "select *,\n    {scd} as {scd_col},\n    {u} as {upd},\n    {u} as {from},\n    {to}{deleted}\nfrom (\n{sql}\n) sbq",
        scd = scd_id(spec, d),
        scd_col = c.scd_id,
        upd = c.updated_at,
        from = c.valid_from,
        to = valid_to_current(spec, d),
    )
}

/// The key as columns of a CTE (`dbt_unique_key`, or `dbt_unique_key_<n>` for a list).
fn key_fields(keys: &[String]) -> String {
    match keys {
        [one] => format!("{one} as dbt_unique_key"),
        many => many
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} as dbt_unique_key_{}", i + 1))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn key_join(keys: &[String], left: &str, right: &str) -> String {
    match keys {
        [_] => format!("{left}.dbt_unique_key = {right}.dbt_unique_key"),
        many => (1..=many.len())
            .map(|i| format!("{left}.dbt_unique_key_{i} = {right}.dbt_unique_key_{i}"))
            .collect::<Vec<_>>()
            .join(" and "),
    }
}

fn key_is(keys: &[String], who: &str, test: &str) -> String {
    match keys {
        [_] => format!("{who}.dbt_unique_key is {test}"),
        _ => format!("{who}.dbt_unique_key_1 is {test}"),
    }
}

/// The columns a staging table carries that the snapshot table does not (dbt's `remove_columns`).
fn is_staging_only(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "dbt_change_type"
        || n == "dbt_unique_key"
        || n.strip_prefix("dbt_unique_key_").is_some_and(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

fn has(cols: &[ColumnInfo], name: &str) -> bool {
    cols.iter().any(|c| c.name.eq_ignore_ascii_case(name))
}

/// The second half of a snapshot run, planned from the columns of the query's rows, of the
/// table, then of the changes (read in the transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMerge {
    /// The snapshot's name, for messages.
    pub name: String,
    pub spec: SnapshotSpec,
    pub target: TableRef,
    /// The query's rows.
    pub source: TableRef,
    /// The changes.
    pub staging: TableRef,
    pub in_transaction: bool,
}

impl SnapshotMerge {
    /// Build the changes table (dbt's `snapshot_staging_table`) from the query's rows.
    pub fn stage(
        &self,
        d: &dyn Dialect,
        source_cols: &[ColumnInfo],
        target_cols: &[ColumnInfo],
    ) -> Result<Vec<Statement>> {
        let spec = &self.spec;
        let c = &spec.columns;
        let keys = &spec.unique_key;
        let u = updated_at(spec, d);
        let now = d.snapshot_get_time();
        let target = d.qualified(&self.target)?;
        let new_record = spec.hard_deletes == HardDeletes::NewRecord;
        let deletes = spec.hard_deletes != HardDeletes::Ignore;
        let current = match &spec.valid_to_current {
            Some(v) => format!("({vt} = {v} or {vt} is null)", vt = c.valid_to),
            None => format!("{} is null", c.valid_to),
        };
        let snapshotted_current = match &spec.valid_to_current {
            Some(v) => format!("snapshotted_data.{} = {v}", c.valid_to),
            None => format!("snapshotted_data.{} is null", c.valid_to),
        };
        let row_changed = self.row_changed(d, source_cols, target_cols)?;
        let or_deleted =
            if new_record { format!(" or snapshotted_data.{} = 'True'", c.is_deleted) } else { String::new() };
        let join = key_join(keys, "snapshotted_data", "source_data");
        let fields = key_fields(keys);
        let mut sql = format!(
            "with snapshot_query as (\n    select * from {source}\n),\n\
             snapshotted_data as (\n    select *, {fields}\n    from {target}\n    where {current}\n),\n\
             insertions_source_data as (\n    select *, {fields},\n        {u} as {upd},\n        {u} as {from},\n        {to},\n        {scd} as {scd_col}\n    from snapshot_query\n),\n\
             updates_source_data as (\n    select *, {fields},\n        {u} as {upd},\n        {u} as {from},\n        {u} as {vto}\n    from snapshot_query\n),\n",
            source = d.qualified(&self.source)?,
            upd = c.updated_at,
            from = c.valid_from,
            to = valid_to_current(spec, d),
            scd = scd_id(spec, d),
            scd_col = c.scd_id,
            vto = c.valid_to,
        );
        if deletes {
            sql.push_str(&format!("deletes_source_data as (\n    select *, {fields}\n    from snapshot_query\n),\n"));
        }
        let not_deleted_flag =
            if new_record { format!(",\n        'False' as {}", c.is_deleted) } else { String::new() };
        let carry_deleted =
            if new_record { format!(",\n        snapshotted_data.{}", c.is_deleted) } else { String::new() };
        sql.push_str(&format!(
            "insertions as (\n    select\n        'insert' as dbt_change_type,\n        source_data.*{not_deleted_flag}\n    \
             from insertions_source_data as source_data\n    left outer join snapshotted_data\n        on {join}\n    \
             where {null} or ({not_null} and ({row_changed}{or_deleted}))\n),\n\
             updates as (\n    select\n        'update' as dbt_change_type,\n        source_data.*,\n        snapshotted_data.{scd_col}{carry_deleted}\n    \
             from updates_source_data as source_data\n    join snapshotted_data\n        on {join}\n    \
             where ({row_changed}{or_deleted})\n)",
            null = key_is(keys, "snapshotted_data", "null"),
            not_null = key_is(keys, "snapshotted_data", "not null"),
            scd_col = c.scd_id,
        ));
        let latest_is_deleted = format!("not (snapshotted_data.{} = 'True' and {snapshotted_current})", c.is_deleted);
        if deletes {
            let also = if new_record { format!("\n        and {latest_is_deleted}") } else { String::new() };
            sql.push_str(&format!(
                ",\ndeletes as (\n    select\n        'delete' as dbt_change_type,\n        source_data.*,\n        \
                 {now} as {from},\n        {now} as {upd},\n        {now} as {vto},\n        snapshotted_data.{scd_col}{carry_deleted}\n    \
                 from snapshotted_data\n    left join deletes_source_data as source_data\n        on {join}\n    \
                 where {src_null}{also}\n)",
                from = c.valid_from,
                upd = c.updated_at,
                vto = c.valid_to,
                scd_col = c.scd_id,
                src_null = key_is(keys, "source_data", "null"),
            ));
        }
        if new_record {
            let mut cols = Vec::new();
            for col in source_cols {
                let side = if has(target_cols, &col.name) { "snapshotted_data" } else { "source_data" };
                cols.push(format!("{side}.{}", d.quote_identifier(&col.name)?));
            }
            match keys.as_slice() {
                [_] => cols.push("snapshotted_data.dbt_unique_key as dbt_unique_key".into()),
                many => cols.extend(
                    many.iter().enumerate().map(|(i, k)| format!("snapshotted_data.{k} as dbt_unique_key_{}", i + 1)),
                ),
            }
            let new_scd = d.snapshot_hash_sql(&[c.scd_id.clone(), now.clone()]);
            sql.push_str(&format!(
                ",\ndeletion_records as (\n    select\n        'insert' as dbt_change_type,\n        {cols},\n        \
                 {now} as {from},\n        {now} as {upd},\n        snapshotted_data.{vto} as {vto},\n        {new_scd} as {scd_col},\n        'True' as {del}\n    \
                 from snapshotted_data\n    left join deletes_source_data as source_data\n        on {join}\n    \
                 where {src_null}\n        and {latest_is_deleted}\n)",
                cols = cols.join(",\n        "),
                from = c.valid_from,
                upd = c.updated_at,
                vto = c.valid_to,
                scd_col = c.scd_id,
                del = c.is_deleted,
                src_null = key_is(keys, "source_data", "null"),
            ));
        }
        sql.push_str("\nselect * from insertions\nunion all\nselect * from updates");
        if deletes {
            sql.push_str("\nunion all\nselect * from deletes");
        }
        if new_record {
            sql.push_str("\nunion all\nselect * from deletion_records");
        }
        Ok(vec![Statement::change(d.create_table_as_sql(&self.staging, &sql)?, self.in_transaction)])
    }

    /// dbt's `row_changed`: a newer `updated_at`, or a difference in the checked columns (any
    /// change at all when the query gained a checked column).
    fn row_changed(&self, d: &dyn Dialect, source_cols: &[ColumnInfo], target_cols: &[ColumnInfo]) -> Result<String> {
        let c = &self.spec.columns;
        let cols: Vec<&str> = match &self.spec.strategy {
            Strategy::Timestamp { updated_at } => {
                return Ok(format!("(snapshotted_data.{} < source_data.{updated_at})", c.valid_from))
            }
            Strategy::Check { cols: CheckCols::All, .. } => source_cols.iter().map(|c| c.name.as_str()).collect(),
            Strategy::Check { cols: CheckCols::These(names), .. } => names
                .iter()
                .map(|n| {
                    source_cols.iter().find(|c| c.name.eq_ignore_ascii_case(n)).map(|c| c.name.as_str()).ok_or_else(
                        || {
                            MaterializeError::Rule(format!(
                                "snapshot `{}`: check_cols names `{n}`, which the snapshot's query does not return",
                                self.name
                            ))
                        },
                    )
                })
                .collect::<Result<_>>()?,
        };
        if cols.iter().any(|col| !has(target_cols, col)) {
            return Ok("(TRUE)".into());
        }
        let tests: Vec<String> = cols
            .iter()
            .map(|col| {
                let q = d.quote_identifier(col)?;
                Ok(format!(
                    "snapshotted_data.{q} != source_data.{q} or ((snapshotted_data.{q} is null and not source_data.{q} is null) \
                     or (not snapshotted_data.{q} is null and source_data.{q} is null))"
                ))
            })
            .collect::<Result<_>>()?;
        Ok(format!("({})", tests.join(" or ")))
    }

    /// Add the columns the query gained, close the changed versions, insert the new ones, count
    /// the changes, drop the scratch tables.
    pub fn merge(
        &self,
        d: &dyn Dialect,
        staging_cols: &[ColumnInfo],
        target_cols: &[ColumnInfo],
    ) -> Result<Vec<Statement>> {
        let tx = self.in_transaction;
        let c = &self.spec.columns;
        let target = d.qualified(&self.target)?;
        let staging = d.qualified(&self.staging)?;
        let mut out = Vec::new();
        let kept: Vec<&ColumnInfo> = staging_cols.iter().filter(|col| !is_staging_only(&col.name)).collect();
        for col in kept.iter().filter(|col| !has(target_cols, &col.name)) {
            let sql = format!("alter table {target} add column {} {}", d.quote_identifier(&col.name)?, col.data_type);
            out.push(Statement::change(sql, tx));
        }
        let current = match &self.spec.valid_to_current {
            Some(v) => format!("(DBT_INTERNAL_TARGET.{vt} = {v} or DBT_INTERNAL_TARGET.{vt} is null)", vt = c.valid_to),
            None => format!("DBT_INTERNAL_TARGET.{} is null", c.valid_to),
        };
        out.push(Statement::change(
            format!(
                "update {target} as DBT_INTERNAL_TARGET\nset {vt} = DBT_INTERNAL_SOURCE.{vt}\nfrom {staging} as DBT_INTERNAL_SOURCE\n\
                 where {src_scd} = {dst_scd}\n  and DBT_INTERNAL_SOURCE.dbt_change_type in ('update', 'delete')\n  and {current}",
                vt = c.valid_to,
                src_scd = d.cast_to_text(&format!("DBT_INTERNAL_SOURCE.{}", c.scd_id)),
                dst_scd = d.cast_to_text(&format!("DBT_INTERNAL_TARGET.{}", c.scd_id)),
            ),
            tx,
        ));
        let names: Vec<String> = kept.iter().map(|col| col.name.clone()).collect();
        let quoted = d.quote_list(&names)?;
        let select: Vec<String> = names
            .iter()
            .map(|n| d.quote_identifier(n).map(|q| format!("DBT_INTERNAL_SOURCE.{q}")))
            .collect::<std::result::Result<_, _>>()?;
        out.push(Statement::change(
            format!(
                "insert into {target} ({quoted})\nselect {}\nfrom {staging} as DBT_INTERNAL_SOURCE\nwhere DBT_INTERNAL_SOURCE.dbt_change_type = 'insert'",
                select.join(", ")
            ),
            tx,
        ));
        out.push(count_rows(d, &self.staging, tx)?);
        out.push(Statement::change(format!("drop table {staging}"), tx));
        out.push(Statement::change(format!("drop table {}", d.qualified(&self.source)?), tx));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use mdp_warehouse::{DuckDbDialect, PostgresDialect};

    use super::*;
    use crate::config::NodeConfig;

    const DUCK: &dyn Dialect = &DuckDbDialect;
    const PG: &dyn Dialect = &PostgresDialect;

    fn spec(pairs: serde_json::Value) -> SnapshotSpec {
        let mut config = NodeConfig::defaults("snapshot");
        let layer = serde_json::from_value(pairs).unwrap();
        assert!(config.apply(&layer).is_empty());
        SnapshotSpec::of(&config).unwrap()
    }

    fn timestamp() -> SnapshotSpec {
        spec(serde_json::json!({"strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at"}))
    }

    fn compiled() -> CompiledNode {
        CompiledNode {
            unique_id: "snapshot.p.s".into(),
            sql: "select id, status, updated_at from src".into(),
            is_incremental: false,
            pre_hooks: Vec::new(),
            post_hooks: Vec::new(),
        }
    }

    fn cols(names: &[&str]) -> Vec<ColumnInfo> {
        names.iter().map(|n| ColumnInfo { name: n.to_string(), data_type: "VARCHAR".into(), nullable: true }).collect()
    }

    fn plan(spec: &SnapshotSpec, d: &dyn Dialect, existing: Option<RelationKind>) -> Result<Plan> {
        let compiled = compiled();
        let snap = Snapshot { name: "s", spec, relation: TableRef::new("h", "s"), compiled: &compiled, existing };
        plan_snapshot(&snap, d)
    }

    fn merge_of(plan: &Plan) -> &SnapshotMerge {
        plan.steps.iter().find_map(|s| if let Step::Snapshot(m) = s { Some(m) } else { None }).unwrap()
    }

    #[test]
    fn the_first_run_creates_the_table_with_dbts_columns() {
        let p = plan(&timestamp(), DUCK, None).unwrap();
        let Step::Run(create) = &p.steps[0] else { panic!() };
        assert_eq!(
            create.sql,
            "create table \"h\".\"s\" as (\nselect *,\n    md5(coalesce(cast(id as varchar), '') || '|' || \
             coalesce(cast(updated_at as varchar), '')) as dbt_scd_id,\n    updated_at as dbt_updated_at,\n    \
             updated_at as dbt_valid_from,\n    coalesce(nullif(updated_at, updated_at), null) as dbt_valid_to\n\
             from (\nselect id, status, updated_at from src\n) sbq\n)"
        );
        assert!(create.in_transaction);
        assert_eq!(p.steps.len(), 2, "create, count");
        let err = plan(&timestamp(), DUCK, Some(RelationKind::View)).unwrap_err().to_string();
        assert!(err.contains("is a view"), "{err}");
    }

    #[test]
    fn a_check_snapshot_without_updated_at_is_dated_by_the_engines_clock() {
        let check = spec(
            serde_json::json!({"strategy": "check", "unique_key": ["id", "region"], "check_cols": "all", "hard_deletes": "new_record"}),
        );
        let pg = build_sql(&check, PG, "select 1");
        assert!(pg.contains("now()::timestamp without time zone as dbt_updated_at"), "{pg}");
        assert!(pg.contains("md5(coalesce(cast(id as varchar), '') || '|' || coalesce(cast(region as varchar), '') || '|' || coalesce(cast(now()::timestamp without time zone as varchar), ''))"), "{pg}");
        assert!(pg.contains("'False' as dbt_is_deleted"), "{pg}");
        assert!(build_sql(&check, DUCK, "select 1").contains("now()::timestamp as dbt_valid_from"));
    }

    #[test]
    fn later_runs_stage_the_changes_then_close_and_insert_versions() {
        let spec = timestamp();
        let p = plan(&spec, PG, Some(RelationKind::Table)).unwrap();
        let m = merge_of(&p);
        assert_eq!((m.source.to_string(), m.staging.to_string()), ("h.s__mdp_src".into(), "h.s__dbt_tmp".into()));
        let target =
            cols(&["id", "status", "updated_at", "dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to"]);
        let stage = m.stage(PG, &cols(&["id", "status", "updated_at"]), &target).unwrap();
        let sql = &stage[0].sql;
        assert!(sql.starts_with("create table \"h\".\"s__dbt_tmp\" as ("), "{sql}");
        assert!(sql.contains("where ((snapshotted_data.dbt_valid_from < source_data.updated_at))"), "{sql}");
        assert!(!sql.contains("deletes"), "hard deletes are ignored by default: {sql}");
        // The query gained `channel`: it is added to the table before the insert names it.
        let mut staging = cols(&["dbt_change_type", "id", "status", "updated_at", "channel", "dbt_unique_key"]);
        staging.extend(cols(&["dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_scd_id"]));
        let merge: Vec<String> = m.merge(PG, &staging, &target).unwrap().into_iter().map(|s| s.sql).collect();
        assert_eq!(
            merge,
            [
                "alter table \"h\".\"s\" add column \"channel\" VARCHAR",
                "update \"h\".\"s\" as DBT_INTERNAL_TARGET\nset dbt_valid_to = DBT_INTERNAL_SOURCE.dbt_valid_to\n\
                 from \"h\".\"s__dbt_tmp\" as DBT_INTERNAL_SOURCE\n\
                 where CAST(DBT_INTERNAL_SOURCE.dbt_scd_id AS text) = CAST(DBT_INTERNAL_TARGET.dbt_scd_id AS text)\n  \
                 and DBT_INTERNAL_SOURCE.dbt_change_type in ('update', 'delete')\n  and DBT_INTERNAL_TARGET.dbt_valid_to is null",
                "insert into \"h\".\"s\" (\"id\", \"status\", \"updated_at\", \"channel\", \"dbt_updated_at\", \"dbt_valid_from\", \
                 \"dbt_valid_to\", \"dbt_scd_id\")\nselect DBT_INTERNAL_SOURCE.\"id\", DBT_INTERNAL_SOURCE.\"status\", \
                 DBT_INTERNAL_SOURCE.\"updated_at\", DBT_INTERNAL_SOURCE.\"channel\", DBT_INTERNAL_SOURCE.\"dbt_updated_at\", \
                 DBT_INTERNAL_SOURCE.\"dbt_valid_from\", DBT_INTERNAL_SOURCE.\"dbt_valid_to\", DBT_INTERNAL_SOURCE.\"dbt_scd_id\"\n\
                 from \"h\".\"s__dbt_tmp\" as DBT_INTERNAL_SOURCE\nwhere DBT_INTERNAL_SOURCE.dbt_change_type = 'insert'",
                "select cast(count(*) as varchar) from \"h\".\"s__dbt_tmp\"",
                "drop table \"h\".\"s__dbt_tmp\"",
                "drop table \"h\".\"s__mdp_src\"",
            ]
        );
    }

    #[test]
    fn check_cols_compare_only_columns_the_table_has_and_a_new_one_changes_every_row() {
        let these = spec(
            serde_json::json!({"strategy": "check", "unique_key": "id", "check_cols": ["STATUS"], "updated_at": "updated_at"}),
        );
        let p = plan(&these, DUCK, Some(RelationKind::Table)).unwrap();
        let m = merge_of(&p);
        let source = cols(&["id", "status", "updated_at"]);
        let target = cols(&["id", "status", "updated_at", "dbt_valid_to"]);
        let sql = &m.stage(DUCK, &source, &target).unwrap()[0].sql;
        assert!(sql.contains("(snapshotted_data.\"status\" != source_data.\"status\" or ((snapshotted_data.\"status\" is null and not source_data.\"status\" is null) or (not snapshotted_data.\"status\" is null and source_data.\"status\" is null)))"), "{sql}");
        let all = spec(serde_json::json!({"strategy": "check", "unique_key": "id", "check_cols": "all"}));
        let p = plan(&all, DUCK, Some(RelationKind::Table)).unwrap();
        let sql = &merge_of(&p).stage(DUCK, &cols(&["id", "status", "channel"]), &target).unwrap()[0].sql;
        assert!(sql.contains("and ((TRUE))"), "a column the table lacks makes every row changed (dbt): {sql}");
        let missing = spec(serde_json::json!({"strategy": "check", "unique_key": "id", "check_cols": ["nope"]}));
        let p = plan(&missing, DUCK, Some(RelationKind::Table)).unwrap();
        let err = merge_of(&p).stage(DUCK, &source, &target).unwrap_err().to_string();
        assert_eq!(err, "snapshot `s`: check_cols names `nope`, which the snapshot's query does not return");
    }

    #[test]
    fn hard_deletes_close_versions_and_new_record_adds_a_deleted_version() {
        let target = cols(&["id", "status", "updated_at", "dbt_scd_id", "dbt_valid_to", "dbt_is_deleted"]);
        let source = cols(&["id", "status", "updated_at"]);
        let invalidate = spec(
            serde_json::json!({"strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at", "hard_deletes": "invalidate"}),
        );
        let p = plan(&invalidate, DUCK, Some(RelationKind::Table)).unwrap();
        let sql = &merge_of(&p).stage(DUCK, &source, &target).unwrap()[0].sql;
        assert!(sql.contains("now()::timestamp as dbt_valid_to"), "{sql}");
        assert!(sql.ends_with("union all\nselect * from deletes\n)"), "{sql}");
        let new_record = spec(
            serde_json::json!({"strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at", "hard_deletes": "new_record", "dbt_valid_to_current": "'9999-12-31'"}),
        );
        let p = plan(&new_record, DUCK, Some(RelationKind::Table)).unwrap();
        let sql = &merge_of(&p).stage(DUCK, &source, &target).unwrap()[0].sql;
        assert!(sql.contains("'True' as dbt_is_deleted"), "{sql}");
        assert!(
            sql.contains(
                "and not (snapshotted_data.dbt_is_deleted = 'True' and snapshotted_data.dbt_valid_to = '9999-12-31')"
            ),
            "{sql}"
        );
        assert!(sql.contains("where (dbt_valid_to = '9999-12-31' or dbt_valid_to is null)"), "{sql}");
        assert!(sql.ends_with("select * from deletes\nunion all\nselect * from deletion_records\n)"), "{sql}");
    }
}
