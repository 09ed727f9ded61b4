//! Snowflake's SQL, where it differs from the standard defaults of [`Dialect`].

use crate::dialect::{Dialect, TableRef};
use crate::error::{Result, WarehouseError};
use crate::types::ColumnType;

/// Snowflake's dialect.
#[derive(Debug, Default, Clone, Copy)]
pub struct SnowflakeDialect;

impl Dialect for SnowflakeDialect {
    fn name(&self) -> &'static str {
        "snowflake"
    }
    fn column_type(&self, ty: ColumnType) -> String {
        match ty {
            ColumnType::Text => "VARCHAR".into(),
            ColumnType::Int32 => "INTEGER".into(),
            ColumnType::Int64 => "BIGINT".into(),
            ColumnType::Float64 => "FLOAT".into(),
            // NUMBER(p, s): exact; Snowflake's DECIMAL and NUMERIC are the same type.
            ColumnType::Decimal(p, s) => format!("NUMBER({p},{s})"),
            ColumnType::Boolean => "BOOLEAN".into(),
            ColumnType::Date => "DATE".into(),
            ColumnType::Timestamp => "TIMESTAMP_NTZ".into(),
            ColumnType::Json => "VARIANT".into(),
        }
    }
    /// Snowflake reads a backslash in a single-quoted string as an escape (`'\''` is a quote), so a
    /// backslash is doubled as well as a quote.
    fn string_literal(&self, value: &str) -> Result<String> {
        if value.contains('\0') {
            return Err(WarehouseError::Internal("string literal contains a NUL byte".into()));
        }
        Ok(format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''")))
    }
    fn sum_exact(&self, expr: &str, ty: ColumnType) -> String {
        match ty {
            ColumnType::Decimal(_, scale) => format!("sum(CAST({expr} AS NUMBER(38,{scale})))"),
            ColumnType::Int32 | ColumnType::Int64 => format!("sum(CAST({expr} AS NUMBER(38,0)))"),
            _ => format!("sum({expr})"),
        }
    }
    fn date_add_days(&self, date_expr: &str, days: i64) -> String {
        format!("CAST(DATEADD(day, {days}, {date_expr}) AS DATE)")
    }
    fn date_diff_days(&self, start: &str, end: &str) -> String {
        format!("DATEDIFF(day, {start}, {end})")
    }
    fn median(&self, expr: &str) -> String {
        format!("median({expr})")
    }
    fn json_object_keys(&self, expr: &str) -> String {
        // OBJECT_KEYS gives an array; the caller's SELECT list wants one row per key.
        format!("OBJECT_KEYS({expr})")
    }
    fn json_member(&self, expr: &str, key: &str) -> String {
        format!("GET({expr}, {key})")
    }
    fn json_type(&self, expr: &str) -> String {
        // TYPEOF spells OBJECT, ARRAY, VARCHAR, INTEGER, DECIMAL, DOUBLE, BOOLEAN, NULL_VALUE.
        format!(
            "CASE lower(TYPEOF({expr})) WHEN 'varchar' THEN 'string' WHEN 'integer' THEN 'number' \
             WHEN 'decimal' THEN 'number' WHEN 'double' THEN 'number' WHEN 'null_value' THEN 'null' \
             ELSE lower(TYPEOF({expr})) END"
        )
    }
    fn supports_create_or_replace_view(&self) -> bool {
        true
    }
    fn supports_create_or_replace_table(&self) -> bool {
        true
    }
    /// Snowflake commits the open transaction before (and after) every DDL statement.
    fn transactional_ddl(&self) -> bool {
        false
    }
    /// dbt-snowflake's default: tables are transient (no Fail-safe storage; dbt rebuilds them).
    fn create_or_replace_table_as_sql(&self, table: &TableRef, query: &str) -> Result<String> {
        Ok(format!("create or replace transient table {} as (\n{query}\n)", self.qualified(table)?))
    }
    fn create_table_as_sql(&self, table: &TableRef, query: &str) -> Result<String> {
        Ok(format!("create transient table {} as (\n{query}\n)", self.qualified(table)?))
    }
    fn snapshot_get_time(&self) -> String {
        // dbt-snowflake's snapshot_get_time.
        "to_timestamp_ntz(convert_timezone('UTC', current_timestamp()))".into()
    }
    fn seconds_between(&self, start: &str, end: &str) -> String {
        self.cast_to_double(&format!("TIMESTAMPDIFF(microsecond, {start}, {end}) / 1000000"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_backslashes_as_well_as_quotes() {
        let d = SnowflakeDialect;
        assert_eq!(d.string_literal(r"it's \' a trap").unwrap(), r"'it''s \\'' a trap'");
        assert_eq!(d.column_type(ColumnType::Decimal(38, 9)), "NUMBER(38,9)");
        assert_eq!(d.column_type(ColumnType::Json), "VARIANT");
        let t = TableRef::new("marts", "daily");
        assert!(d
            .create_or_replace_table_as_sql(&t, "select 1")
            .unwrap()
            .starts_with("create or replace transient table \"marts\".\"daily\""));
    }
}
