//! BigQuery's GoogleSQL, where it differs from the standard defaults of [`Dialect`].

use crate::dialect::{DatePart, Dialect, Literal, TableRef};
use crate::error::{Result, WarehouseError};
use crate::types::{ColumnType, TableSchema};

/// BigQuery's dialect.
#[derive(Debug, Default, Clone, Copy)]
pub struct BigQueryDialect;

/// Backslash escapes for the inside of a quoted string or identifier: BigQuery reads `\` as an
/// escape in both, and a single-quoted string cannot hold a raw newline.
fn escaped(value: &str, quote: char) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

impl Dialect for BigQueryDialect {
    fn name(&self) -> &'static str {
        "bigquery"
    }
    fn column_type(&self, ty: ColumnType) -> String {
        match ty {
            ColumnType::Text => "STRING".into(),
            ColumnType::Int32 | ColumnType::Int64 => "INT64".into(),
            ColumnType::Float64 => "FLOAT64".into(),
            // NUMERIC(P, S): exact, at most 9 digits after the point and 29 before; BIGNUMERIC beyond.
            ColumnType::Decimal(p, s) if (0..=9).contains(&s) && i16::from(p) - i16::from(s) <= 29 => {
                format!("NUMERIC({p},{s})")
            }
            ColumnType::Decimal(p, s) => format!("BIGNUMERIC({p},{s})"),
            ColumnType::Boolean => "BOOL".into(),
            ColumnType::Date => "DATE".into(),
            // mdp's timestamps are UTC wall-clock times without a zone: BigQuery's DATETIME.
            ColumnType::Timestamp => "DATETIME".into(),
            ColumnType::Json => "JSON".into(),
        }
    }
    fn quote_identifier(&self, ident: &str) -> Result<String> {
        if ident.is_empty() || ident.contains('\0') {
            return Err(WarehouseError::InvalidIdentifier(ident.to_string()));
        }
        Ok(format!("`{}`", escaped(ident, '`')))
    }
    fn string_literal(&self, value: &str) -> Result<String> {
        if value.contains('\0') {
            return Err(WarehouseError::Internal("string literal contains a NUL byte".into()));
        }
        Ok(format!("'{}'", escaped(value, '\'')))
    }
    fn literal(&self, value: &Literal<'_>) -> Result<String> {
        Ok(match value {
            Literal::Null => "NULL".into(),
            Literal::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
            Literal::Int(i) => i.to_string(),
            Literal::Text(s) => self.string_literal(s)?,
            Literal::Date(d) => format!("DATE '{}'", d.format("%Y-%m-%d")),
            // mdp's timestamps are DATETIME (a TIMESTAMP literal would not compare with them).
            Literal::Timestamp(t) => format!("DATETIME '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f")),
        })
    }
    fn date_add_days(&self, date_expr: &str, days: i64) -> String {
        format!("DATE_ADD(CAST({date_expr} AS DATE), INTERVAL {days} DAY)")
    }
    fn date_diff_days(&self, start: &str, end: &str) -> String {
        format!("DATE_DIFF(CAST({end} AS DATE), CAST({start} AS DATE), DAY)")
    }
    fn date_trunc(&self, part: DatePart, expr: &str) -> String {
        // Weeks start on Monday on every engine mdp supports (BigQuery's WEEK starts on Sunday).
        let part = match part {
            DatePart::Day => "DAY",
            DatePart::Week => "ISOWEEK",
            DatePart::Month => "MONTH",
            DatePart::Quarter => "QUARTER",
            DatePart::Year => "YEAR",
        };
        format!("DATE_TRUNC(CAST({expr} AS DATE), {part})")
    }
    /// BigQuery has no exact median aggregate (PERCENTILE_CONT is analytic only): an approximate
    /// quantile, which the anomaly checks that use it tolerate.
    fn median(&self, expr: &str) -> String {
        format!("APPROX_QUANTILES({expr}, 2)[OFFSET(1)]")
    }
    fn json_object_keys(&self, expr: &str) -> String {
        format!("JSON_KEYS({expr}, 1)")
    }
    fn json_member(&self, expr: &str, key: &str) -> String {
        format!("({expr})[{key}]")
    }
    fn json_type(&self, expr: &str) -> String {
        format!("JSON_TYPE({expr})")
    }
    /// BigQuery declares keys `NOT ENFORCED` only; mdp's keys are upheld by how it writes (replace a
    /// window, merge on the key), so none is declared.
    fn create_table_sql(&self, table: &TableRef, schema: &TableSchema) -> Result<String> {
        let mut parts = Vec::with_capacity(schema.columns.len());
        for column in &schema.columns {
            let null = if column.nullable { "" } else { " NOT NULL" };
            parts.push(format!("{} {}{}", self.quote_identifier(&column.name)?, self.column_type(column.ty), null));
        }
        Ok(format!("CREATE TABLE IF NOT EXISTS {} ({})", self.qualified(table)?, parts.join(", ")))
    }
    fn supports_create_or_replace_view(&self) -> bool {
        true
    }
    fn supports_create_or_replace_table(&self) -> bool {
        true
    }
    /// BigQuery's transactions take DML only: DDL on permanent tables stands alone.
    fn transactional_ddl(&self) -> bool {
        false
    }
    fn columns_query(&self, table: &TableRef) -> Result<String> {
        Ok(format!(
            "SELECT column_name, data_type, is_nullable FROM {}.INFORMATION_SCHEMA.COLUMNS \
             WHERE table_name = {} ORDER BY ordinal_position",
            self.quote_identifier(&table.schema)?,
            self.string_literal(&table.name)?
        ))
    }
    fn cast_to_text(&self, expr: &str) -> String {
        format!("CAST({expr} AS STRING)")
    }
    fn snapshot_get_time(&self) -> String {
        // dbt-bigquery's snapshot_get_time, as the DATETIME mdp's timestamps are.
        "CURRENT_DATETIME()".into()
    }
    fn snapshot_hash_sql(&self, args: &[String]) -> String {
        // dbt-bigquery: to_hex(md5(concat(...))).
        let parts: Vec<String> = args.iter().map(|a| format!("coalesce(cast({a} as string), '')")).collect();
        format!("to_hex(md5(concat({})))", parts.join(", '|', "))
    }
    fn seconds_between(&self, start: &str, end: &str) -> String {
        format!("(DATETIME_DIFF(CAST({end} AS DATETIME), CAST({start} AS DATETIME), MICROSECOND) / 1000000)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_strings_escape_with_backslashes() {
        let d = BigQueryDialect;
        assert_eq!(d.quote_identifier("a`b\\c").unwrap(), r"`a\`b\\c`");
        assert_eq!(d.string_literal("it's\n\\").unwrap(), r"'it\'s\n\\'");
        assert_eq!(d.qualified(&TableRef::new("raw", "t")).unwrap(), "`raw`.`t`");
        assert_eq!(d.column_type(ColumnType::Decimal(38, 9)), "NUMERIC(38,9)");
        assert_eq!(d.column_type(ColumnType::Decimal(18, 6)), "NUMERIC(18,6)");
        assert_eq!(d.column_type(ColumnType::Decimal(40, 12)), "BIGNUMERIC(40,12)");
        assert_eq!(d.column_type(ColumnType::Timestamp), "DATETIME");
    }
}
