//! SQL dialects: how each warehouse spells identifiers, literals, types, upserts and date maths.
//!
//! The layers above (loader, transformation engine, checks) never write engine-specific SQL
//! themselves; they ask the [`Dialect`] of the warehouse they run on.

use chrono::{NaiveDate, NaiveDateTime};

use crate::error::{Result, WarehouseError};
use crate::types::{ColumnDef, ColumnType, TableSchema};

/// A table or view, always addressed as schema + name. Both parts are quoted whenever rendered.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableRef {
    pub schema: String,
    pub name: String,
}

impl TableRef {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableRef { schema: schema.into(), name: name.into() }
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Date parts accepted by [`Dialect::date_trunc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl DatePart {
    fn as_str(self) -> &'static str {
        match self {
            DatePart::Day => "day",
            DatePart::Week => "week",
            DatePart::Month => "month",
            DatePart::Quarter => "quarter",
            DatePart::Year => "year",
        }
    }
}

/// A literal value rendered into SQL by a dialect (metadata statements, filters).
#[derive(Debug, Clone, PartialEq)]
pub enum Literal<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Text(&'a str),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
}

/// What the layers above need to know about a warehouse's SQL.
///
/// Required methods are the few that really differ; everything else has a standard-SQL default.
pub trait Dialect: Send + Sync + std::fmt::Debug {
    /// Short engine name: `duckdb`, `postgres`.
    fn name(&self) -> &'static str;

    /// The DDL spelling of a column type.
    fn column_type(&self, ty: ColumnType) -> String;

    /// `expr + days` as a date.
    fn date_add_days(&self, date_expr: &str, days: i64) -> String;

    /// Quote an identifier so that any name, even `a"; DROP TABLE x; --`, is one identifier.
    fn quote_identifier(&self, ident: &str) -> Result<String> {
        if ident.is_empty() || ident.contains('\0') {
            return Err(WarehouseError::InvalidIdentifier(ident.to_string()));
        }
        Ok(format!("\"{}\"", ident.replace('"', "\"\"")))
    }

    /// `"schema"."name"`.
    fn qualified(&self, table: &TableRef) -> Result<String> {
        Ok(format!("{}.{}", self.quote_identifier(&table.schema)?, self.quote_identifier(&table.name)?))
    }

    /// A single-quoted string literal. Both engines use standard-conforming strings (mdp enforces it
    /// on Postgres connections), so only `'` needs doubling. NUL bytes cannot be stored and are refused.
    fn string_literal(&self, value: &str) -> Result<String> {
        if value.contains('\0') {
            return Err(WarehouseError::Internal("string literal contains a NUL byte".into()));
        }
        Ok(format!("'{}'", value.replace('\'', "''")))
    }

    /// Any literal.
    fn literal(&self, value: &Literal<'_>) -> Result<String> {
        Ok(match value {
            Literal::Null => "NULL".to_string(),
            Literal::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Literal::Int(i) => i.to_string(),
            Literal::Text(s) => self.string_literal(s)?,
            Literal::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            Literal::Timestamp(t) => format!("TIMESTAMP '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
        })
    }

    /// The sum of an exact (integer or decimal) column `expr` of type `ty`, exact: engines that could sum through
    /// a float cast the argument first (dbt-snowflake's advice; fakesnow sums an uncast `NUMBER` as
    /// `DOUBLE`). The default is plain `sum(expr)`.
    fn sum_exact(&self, expr: &str, _ty: ColumnType) -> String {
        format!("sum({expr})")
    }

    /// `numerator / denominator`, NULL when the denominator is 0 or NULL (KPIs: CTR, CPC, CPA, ROAS…).
    fn safe_divide(&self, numerator: &str, denominator: &str) -> String {
        format!("(({numerator}) / NULLIF(({denominator}), 0))")
    }

    /// The median of `expr` over a group, as an aggregate (an ordered-set aggregate in standard SQL).
    fn median(&self, expr: &str) -> String {
        format!("percentile_cont(0.5) WITHIN GROUP (ORDER BY {expr})")
    }

    /// The names of the top-level keys of a JSON object `expr`, one row per key: a set-returning
    /// expression for a `SELECT` list. `expr` must be an object (filter with [`Dialect::json_type`]).
    fn json_object_keys(&self, expr: &str) -> String;

    /// A JSON value with the keys of `expr` (at every level) whose leaves may differ from `expr`'s, so
    /// that `DISTINCT` over shapes is cheaper than over values (DuckDB: `json_structure`, whose leaves
    /// are type names). The default is `expr` itself.
    fn json_shape(&self, expr: &str) -> String {
        expr.to_string()
    }

    /// The member `key` (an SQL string expression) of the JSON object `expr`, as JSON.
    fn json_member(&self, expr: &str, key: &str) -> String {
        format!("(({expr}) -> ({key}))")
    }

    /// The JSON type of `expr` in lower case: `object`, `array`, `string`, `number`, `boolean`, `null`
    /// (DuckDB spells some numbers `bigint`, `double`, `ubigint`).
    fn json_type(&self, expr: &str) -> String;

    /// Truncate a date or timestamp to the start of `part`.
    fn date_trunc(&self, part: DatePart, expr: &str) -> String {
        format!("CAST(date_trunc('{}', {expr}) AS DATE)", part.as_str())
    }

    /// Whole days from `start` to `end` (dates).
    fn date_diff_days(&self, start: &str, end: &str) -> String {
        format!("(({end}) - ({start}))")
    }

    /// `CREATE TABLE IF NOT EXISTS` for a schema mdp declares.
    fn create_table_sql(&self, table: &TableRef, schema: &TableSchema) -> Result<String> {
        let mut parts = Vec::with_capacity(schema.columns.len() + 1);
        for column in &schema.columns {
            let null = if column.nullable { "" } else { " NOT NULL" };
            parts.push(format!("{} {}{}", self.quote_identifier(&column.name)?, self.column_type(column.ty), null));
        }
        if !schema.primary_key.is_empty() {
            parts.push(format!("PRIMARY KEY ({})", self.quote_list(&schema.primary_key)?));
        }
        Ok(format!("CREATE TABLE IF NOT EXISTS {} ({})", self.qualified(table)?, parts.join(", ")))
    }

    /// Add a nullable `column` to an existing table (rows already there get NULL).
    fn add_column_sql(&self, table: &TableRef, column: &ColumnDef) -> Result<String> {
        Ok(format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            self.qualified(table)?,
            self.quote_identifier(&column.name)?,
            self.column_type(column.ty)
        ))
    }

    /// `CREATE SCHEMA IF NOT EXISTS`.
    fn create_schema_sql(&self, schema: &str) -> Result<String> {
        Ok(format!("CREATE SCHEMA IF NOT EXISTS {}", self.quote_identifier(schema)?))
    }

    /// Comma-separated quoted identifiers.
    fn quote_list(&self, idents: &[String]) -> Result<String> {
        let quoted: Result<Vec<String>> = idents.iter().map(|i| self.quote_identifier(i)).collect();
        Ok(quoted?.join(", "))
    }

    /// Upsert the rows of `source` (a table or a parenthesised query) into `target`, matching on `key`
    /// and updating `update_columns`. Both engines speak standard `MERGE` (Postgres ≥ 15, DuckDB ≥ 1.4).
    fn merge_sql(&self, target: &TableRef, source: &str, key: &[String], update_columns: &[String]) -> Result<String> {
        if key.is_empty() {
            return Err(WarehouseError::Internal("merge needs at least one key column".into()));
        }
        let on: Result<Vec<String>> = key
            .iter()
            .map(|k| {
                let q = self.quote_identifier(k)?;
                Ok(format!("t.{q} = s.{q}"))
            })
            .collect();
        let set: Result<Vec<String>> = update_columns
            .iter()
            .map(|c| {
                let q = self.quote_identifier(c)?;
                Ok(format!("{q} = s.{q}"))
            })
            .collect();
        let all_columns: Vec<String> = key.iter().chain(update_columns).cloned().collect();
        let insert_values: Result<Vec<String>> =
            all_columns.iter().map(|c| Ok(format!("s.{}", self.quote_identifier(c)?))).collect();
        let mut sql =
            format!("MERGE INTO {} AS t USING {} AS s ON {}", self.qualified(target)?, source, on?.join(" AND "));
        let set = set?;
        if !set.is_empty() {
            sql.push_str(&format!(" WHEN MATCHED THEN UPDATE SET {}", set.join(", ")));
        }
        sql.push_str(&format!(
            " WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
            self.quote_list(&all_columns)?,
            insert_values?.join(", ")
        ));
        Ok(sql)
    }

    // Materializations. mdp-transform plans a model's build from these: what the engine replaces
    // atomically by itself, what takes part in a transaction, and how it spells the statements
    // that differ between engines (as dbt-adapters' per-adapter macros).

    /// Whether `CREATE OR REPLACE VIEW` replaces any view, whatever its columns, atomically by
    /// itself (DuckDB, BigQuery, Snowflake). Standard SQL has no such statement and Postgres's only
    /// appends columns: there the old view is dropped and the new one created in one transaction.
    fn supports_create_or_replace_view(&self) -> bool {
        false
    }

    /// Whether `CREATE OR REPLACE TABLE … AS` replaces a table atomically by itself (DuckDB,
    /// BigQuery, Snowflake). Otherwise a table is built beside the old one and renamed over it in one
    /// transaction.
    fn supports_create_or_replace_table(&self) -> bool {
        false
    }

    /// Whether DDL (`CREATE`, `DROP`, `ALTER`) takes part in a multi-statement transaction and rolls
    /// back with it (DuckDB, Postgres). BigQuery has no multi-statement transaction outside a script
    /// and Snowflake commits before every DDL statement: there each statement of a build stands alone.
    fn transactional_ddl(&self) -> bool {
        true
    }

    /// How the adapter reads a seed CSV, as its dbt adapter does: which fields are NULL, how blank
    /// lines and ISO timestamps with offsets read (see [`SeedCsv`]).
    fn seed_csv(&self) -> SeedCsv {
        SeedCsv::Agate
    }

    /// Whether the engine runs [`Dialect::merge_sql`] (standard `MERGE`: DuckDB ≥ 1.4, Postgres ≥ 15,
    /// BigQuery, Snowflake), and so the `merge` incremental strategy.
    fn supports_merge(&self) -> bool {
        true
    }

    /// `CREATE TABLE … AS (query)`.
    fn create_table_as_sql(&self, table: &TableRef, query: &str) -> Result<String> {
        Ok(format!("create table {} as (\n{query}\n)", self.qualified(table)?))
    }

    /// `CREATE OR REPLACE TABLE … AS (query)`, for engines that
    /// [support it](Dialect::supports_create_or_replace_table) (Snowflake would say `TRANSIENT`).
    fn create_or_replace_table_as_sql(&self, table: &TableRef, query: &str) -> Result<String> {
        Ok(format!("create or replace table {} as (\n{query}\n)", self.qualified(table)?))
    }

    /// `CREATE VIEW … AS (query)`.
    fn create_view_as_sql(&self, view: &TableRef, query: &str) -> Result<String> {
        Ok(format!("create view {} as (\n{query}\n)", self.qualified(view)?))
    }

    /// `CREATE OR REPLACE VIEW … AS (query)`, for engines that
    /// [support it](Dialect::supports_create_or_replace_view).
    fn create_or_replace_view_as_sql(&self, view: &TableRef, query: &str) -> Result<String> {
        Ok(format!("create or replace view {} as (\n{query}\n)", self.qualified(view)?))
    }

    /// Whether dropping a relation must say `CASCADE` so that the views built on it go too (Postgres
    /// binds views to the tables they read; DuckDB binds them when they are queried). dbt-postgres does
    /// the same: those views are built again when their models run.
    fn drop_needs_cascade(&self) -> bool {
        false
    }

    /// Drop a relation that may have views built on it, if it exists.
    fn drop_relation_sql(&self, relation: &TableRef, kind: crate::RelationKind) -> Result<String> {
        let kind = match kind {
            crate::RelationKind::View => "view",
            crate::RelationKind::Table => "table",
        };
        let cascade = if self.drop_needs_cascade() { " cascade" } else { "" };
        Ok(format!("drop {kind} if exists {}{cascade}", self.qualified(relation)?))
    }

    /// The columns of a table or view in order, as three text columns: `column_name`, `data_type` (the
    /// engine's spelling) and `is_nullable` (`YES` / `NO`). Also sees tables created earlier in the
    /// transaction it runs in.
    fn columns_query(&self, table: &TableRef) -> Result<String> {
        Ok(format!(
            "SELECT CAST(column_name AS VARCHAR) AS column_name, CAST(data_type AS VARCHAR) AS data_type, \
             CAST(is_nullable AS VARCHAR) AS is_nullable FROM information_schema.columns \
             WHERE table_schema = {} AND table_name = {} ORDER BY ordinal_position",
            self.string_literal(&table.schema)?,
            self.string_literal(&table.name)?
        ))
    }

    /// `CAST(expr AS <type>)`, the type spelled as this engine's DDL spells it.
    fn cast(&self, expr: &str, ty: ColumnType) -> String {
        format!("CAST({expr} AS {})", self.column_type(ty))
    }

    /// `expr` as text, spelled as the engine prints the value (dates `2026-06-30`, timestamps
    /// `2026-06-30 10:00:00.5`, decimals exact): how small results are read back as strings.
    fn cast_to_text(&self, expr: &str) -> String {
        self.cast(expr, ColumnType::Text)
    }

    /// The time a snapshot records for a change it cannot date from the data (check strategy
    /// without `updated_at`, hard deletes): dbt's `snapshot_get_time()` of the adapter, a
    /// timestamp without time zone.
    fn snapshot_get_time(&self) -> String {
        "current_timestamp".into()
    }

    /// dbt's `snapshot_hash_arguments(args)`: the hash that identifies a snapshot row version
    /// (`dbt_scd_id`) from its unique key and its time, as the adapter computes it.
    fn snapshot_hash_sql(&self, args: &[String]) -> String {
        let parts: Vec<String> = args.iter().map(|a| format!("coalesce(cast({a} as varchar), '')")).collect();
        format!("md5({})", parts.join(" || '|' || "))
    }

    /// `numerator × scale / denominator` computed in floating point, NULL when the denominator is 0
    /// or NULL: the marts' KPI ratios (CTR, CPC, CPM, …) as [`Dialect::safe_divide`] of doubles.
    fn ratio(&self, numerator: &str, denominator: &str, scale: u32) -> String {
        let numerator = self.cast(numerator, ColumnType::Float64);
        let numerator = if scale == 1 { numerator } else { format!("{numerator} * {scale}") };
        self.safe_divide(&numerator, &self.cast(denominator, ColumnType::Float64))
    }

    /// `expr` as a double-precision float (durations, display ratios; never money).
    fn cast_to_double(&self, expr: &str) -> String {
        self.cast(expr, ColumnType::Float64)
    }

    /// Seconds from the timestamp `start` to the timestamp `end`, as a double.
    fn seconds_between(&self, start: &str, end: &str) -> String {
        self.cast_to_double(&format!("EXTRACT(EPOCH FROM {end}) - EXTRACT(EPOCH FROM {start})"))
    }

    /// The conditions joined by `AND` (`TRUE` when there are none), columns quoted, values literals.
    fn conditions_sql(&self, conditions: &[Condition<'_>]) -> Result<String> {
        if conditions.is_empty() {
            return Ok("TRUE".to_string());
        }
        let rendered: Result<Vec<String>> = conditions
            .iter()
            .map(|c| Ok(format!("{} {} {}", self.quote_identifier(c.column)?, c.op.as_str(), self.literal(&c.value)?)))
            .collect();
        Ok(rendered?.join(" AND "))
    }

    /// `DELETE FROM table WHERE …`: the first half of a replace-where write (a window of one account).
    fn delete_where_sql(&self, table: &TableRef, conditions: &[Condition<'_>]) -> Result<String> {
        if conditions.is_empty() {
            return Err(WarehouseError::Internal(format!("refusing to render a DELETE of all of {table}")));
        }
        Ok(format!("DELETE FROM {} WHERE {}", self.qualified(table)?, self.conditions_sql(conditions)?))
    }

    /// `DROP TABLE IF EXISTS`.
    fn drop_table_if_exists_sql(&self, table: &TableRef) -> Result<String> {
        Ok(format!("DROP TABLE IF EXISTS {}", self.qualified(table)?))
    }

    /// `DROP SCHEMA IF EXISTS … CASCADE`: the schema and everything in it.
    fn drop_schema_cascade_sql(&self, schema: &str) -> Result<String> {
        Ok(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.quote_identifier(schema)?))
    }
}

/// How a [`Condition`] compares its column with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Comparison {
    fn as_str(self) -> &'static str {
        match self {
            Comparison::Eq => "=",
            Comparison::Lt => "<",
            Comparison::Le => "<=",
            Comparison::Gt => ">",
            Comparison::Ge => ">=",
        }
    }
}

/// `column <op> value`, rendered by [`Dialect::conditions_sql`] with the column quoted and the value
/// a dialect literal, so a filter never formats a name or a value into SQL by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition<'a> {
    pub column: &'a str,
    pub op: Comparison,
    pub value: Literal<'a>,
}

impl<'a> Condition<'a> {
    pub fn new(column: &'a str, op: Comparison, value: Literal<'a>) -> Self {
        Condition { column, op, value }
    }
    pub fn eq(column: &'a str, value: Literal<'a>) -> Self {
        Condition::new(column, Comparison::Eq, value)
    }
    pub fn ge(column: &'a str, value: Literal<'a>) -> Self {
        Condition::new(column, Comparison::Ge, value)
    }
    pub fn le(column: &'a str, value: Literal<'a>) -> Self {
        Condition::new(column, Comparison::Le, value)
    }
}

/// DuckDB's dialect.
#[derive(Debug, Default, Clone, Copy)]
pub struct DuckDbDialect;

impl Dialect for DuckDbDialect {
    fn name(&self) -> &'static str {
        "duckdb"
    }
    fn column_type(&self, ty: ColumnType) -> String {
        match ty {
            ColumnType::Text => "VARCHAR".into(),
            ColumnType::Int32 => "INTEGER".into(),
            ColumnType::Int64 => "BIGINT".into(),
            ColumnType::Float64 => "DOUBLE".into(),
            ColumnType::Decimal(p, s) => format!("DECIMAL({p},{s})"),
            ColumnType::Boolean => "BOOLEAN".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::Timestamp => "TIMESTAMP".into(),
            ColumnType::Json => "JSON".into(),
        }
    }
    fn date_add_days(&self, date_expr: &str, days: i64) -> String {
        format!("CAST(({date_expr}) + INTERVAL ({days}) DAY AS DATE)")
    }
    fn date_diff_days(&self, start: &str, end: &str) -> String {
        format!("date_diff('day', {start}, {end})")
    }
    fn median(&self, expr: &str) -> String {
        format!("median({expr})")
    }
    fn json_object_keys(&self, expr: &str) -> String {
        format!("unnest(json_keys({expr}))")
    }
    fn json_shape(&self, expr: &str) -> String {
        format!("json_structure({expr})")
    }
    fn json_type(&self, expr: &str) -> String {
        format!("lower(json_type({expr}))")
    }
    fn supports_create_or_replace_view(&self) -> bool {
        true
    }
    fn supports_create_or_replace_table(&self) -> bool {
        true
    }
    fn seed_csv(&self) -> SeedCsv {
        SeedCsv::DuckDb
    }
    fn snapshot_get_time(&self) -> String {
        // dbt-duckdb: `now()::timestamp` (the session's time zone, without it).
        "now()::timestamp".into()
    }
}

/// How a dbt adapter turns a seed CSV into rows; seeds load the same values as dbt on each engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedCsv {
    /// dbt-core's agate (dbt-postgres, dbt-bigquery, dbt-snowflake, …): an empty field or `null` is
    /// NULL, a blank line is a row of NULLs, a timestamp with an offset is converted to UTC.
    Agate,
    /// dbt-duckdb's `read_csv`: only an empty field is NULL, blank lines are skipped (but in a
    /// one-column file), a timestamp keeps its wall-clock time.
    DuckDb,
}

/// PostgreSQL's dialect (version 15 or later: `MERGE`).
#[derive(Debug, Default, Clone, Copy)]
pub struct PostgresDialect;

impl Dialect for PostgresDialect {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn column_type(&self, ty: ColumnType) -> String {
        match ty {
            ColumnType::Text => "text".into(),
            ColumnType::Int32 => "integer".into(),
            ColumnType::Int64 => "bigint".into(),
            ColumnType::Float64 => "double precision".into(),
            ColumnType::Decimal(p, s) => format!("numeric({p},{s})"),
            ColumnType::Boolean => "boolean".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp => "timestamp".into(),
            ColumnType::Json => "jsonb".into(),
        }
    }
    fn date_add_days(&self, date_expr: &str, days: i64) -> String {
        format!("(CAST(({date_expr}) AS date) + ({days}))")
    }
    fn json_object_keys(&self, expr: &str) -> String {
        format!("jsonb_object_keys(CAST({expr} AS jsonb))")
    }
    fn json_member(&self, expr: &str, key: &str) -> String {
        format!("(CAST({expr} AS jsonb) -> ({key}))")
    }
    fn json_type(&self, expr: &str) -> String {
        format!("jsonb_typeof(CAST({expr} AS jsonb))")
    }
    fn drop_needs_cascade(&self) -> bool {
        true
    }
    fn snapshot_get_time(&self) -> String {
        // dbt-postgres' snapshot_get_time.
        "now()::timestamp without time zone".into()
    }
}

impl crate::ConnectOptions {
    /// The SQL dialect of the warehouse these options open (known without connecting: a parser or
    /// compiler renders identifiers with it).
    pub fn dialect(&self) -> &'static dyn Dialect {
        match self {
            crate::ConnectOptions::DuckDb { .. } => &DuckDbDialect,
            crate::ConnectOptions::Postgres { .. } => &PostgresDialect,
            crate::ConnectOptions::Snowflake { .. } => &crate::snowflake::SnowflakeDialect,
            crate::ConnectOptions::BigQuery { .. } => &crate::bigquery::BigQueryDialect,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_makes_any_name_one_identifier() {
        let d = DuckDbDialect;
        assert_eq!(d.quote_identifier("spend").unwrap(), "\"spend\"");
        assert_eq!(d.quote_identifier("a\"; DROP TABLE x; --").unwrap(), "\"a\"\"; DROP TABLE x; --\"");
        assert!(d.quote_identifier("").is_err());
        assert!(d.quote_identifier("a\0b").is_err());
        assert_eq!(d.qualified(&TableRef::new("raw", "Meta Ads")).unwrap(), "\"raw\".\"Meta Ads\"");
    }

    #[test]
    fn string_literals_double_single_quotes() {
        assert_eq!(PostgresDialect.string_literal("O'Brien's").unwrap(), "'O''Brien''s'");
        assert_eq!(PostgresDialect.literal(&Literal::Null).unwrap(), "NULL");
        let date = NaiveDate::from_ymd_opt(2026, 2, 3).unwrap();
        assert_eq!(DuckDbDialect.literal(&Literal::Date(date)).unwrap(), "DATE '2026-02-03'");
    }

    #[test]
    fn safe_divide_is_null_on_zero() {
        assert_eq!(PostgresDialect.safe_divide("clicks", "impressions"), "((clicks) / NULLIF((impressions), 0))");
    }

    #[test]
    fn merge_renders_standard_sql() {
        let sql = PostgresDialect
            .merge_sql(&TableRef::new("s", "t"), "(SELECT 1 AS k, 2 AS v)", &["k".into()], &["v".into()])
            .unwrap();
        assert_eq!(
            sql,
            "MERGE INTO \"s\".\"t\" AS t USING (SELECT 1 AS k, 2 AS v) AS s ON t.\"k\" = s.\"k\" \
             WHEN MATCHED THEN UPDATE SET \"v\" = s.\"v\" WHEN NOT MATCHED THEN INSERT (\"k\", \"v\") VALUES (s.\"k\", s.\"v\")"
        );
    }

    #[test]
    fn casts_and_ratios_use_each_engines_type_names() {
        assert_eq!(DuckDbDialect.cast_to_text("max(\"date\")"), "CAST(max(\"date\") AS VARCHAR)");
        assert_eq!(PostgresDialect.cast_to_text("max(\"date\")"), "CAST(max(\"date\") AS text)");
        assert_eq!(
            DuckDbDialect.ratio("spend", "impressions", 1000),
            "((CAST(spend AS DOUBLE) * 1000) / NULLIF((CAST(impressions AS DOUBLE)), 0))"
        );
        assert_eq!(
            PostgresDialect.ratio("clicks", "impressions", 1),
            "((CAST(clicks AS double precision)) / NULLIF((CAST(impressions AS double precision)), 0))"
        );
    }

    #[test]
    fn casts_use_each_engines_type_names() {
        assert_eq!(DuckDbDialect.cast_to_text("\"n\""), "CAST(\"n\" AS VARCHAR)");
        assert_eq!(PostgresDialect.cast_to_text("\"n\""), "CAST(\"n\" AS text)");
        assert_eq!(DuckDbDialect.cast_to_double("x"), "CAST(x AS DOUBLE)");
        assert_eq!(PostgresDialect.cast_to_double("x"), "CAST(x AS double precision)");
        assert_eq!(
            PostgresDialect.seconds_between("s", "f"),
            "CAST(EXTRACT(EPOCH FROM f) - EXTRACT(EPOCH FROM s) AS double precision)"
        );
    }

    #[test]
    fn a_replace_where_delete_quotes_columns_and_renders_literals() {
        let date = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        let conditions = [
            Condition::eq("account_id", Literal::Text("O'Brien")),
            Condition::ge("date", Literal::Date(date)),
            Condition::le("date", Literal::Date(date)),
        ];
        let expected = "DELETE FROM \"raw\".\"google_ads__ad_daily\" WHERE \"account_id\" = 'O''Brien' \
                        AND \"date\" >= DATE '2026-06-01' AND \"date\" <= DATE '2026-06-01'";
        let table = TableRef::new("raw", "google_ads__ad_daily");
        for d in [&DuckDbDialect as &dyn Dialect, &PostgresDialect] {
            assert_eq!(d.delete_where_sql(&table, &conditions).unwrap(), expected, "{}", d.name());
        }
        assert!(DuckDbDialect.delete_where_sql(&table, &[]).is_err(), "no condition would delete every row");
        let injected = [Condition::eq("a\"; DROP TABLE x; --", Literal::Int(1))];
        assert_eq!(DuckDbDialect.conditions_sql(&injected).unwrap(), "\"a\"\"; DROP TABLE x; --\" = 1");
        assert_eq!(PostgresDialect.conditions_sql(&[]).unwrap(), "TRUE");
    }

    #[test]
    fn drops_are_quoted_and_idempotent() {
        let table = TableRef::new("mdp_bench", "ad performance");
        assert_eq!(
            PostgresDialect.drop_table_if_exists_sql(&table).unwrap(),
            "DROP TABLE IF EXISTS \"mdp_bench\".\"ad performance\""
        );
        assert_eq!(
            DuckDbDialect.drop_schema_cascade_sql("mdp_bench").unwrap(),
            "DROP SCHEMA IF EXISTS \"mdp_bench\" CASCADE"
        );
    }
}
