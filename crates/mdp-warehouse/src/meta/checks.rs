//! Check outcomes: `check_results`, written by runs and read back by pages, the API and `/metrics`.

use super::*;

/// A row of `check_results`, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResultRecord {
    pub check_name: String,
    pub check_kind: Option<String>,
    pub status: String,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub message: Option<String>,
}

/// One check outcome for `check_results`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult<'a> {
    pub run_id: &'a str,
    pub check_name: &'a str,
    pub check_kind: &'a str,
    pub relation: Option<&'a str>,
    pub status: &'a str,
    pub observed: Option<&'a str>,
    pub expected: Option<&'a str>,
    pub failing_rows: Option<i64>,
    pub message: Option<&'a str>,
    pub sample_query: Option<&'a str>,
}

/// A row of `check_results` with every column, as pages, the API and `/metrics` show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredCheckResult {
    pub run_id: String,
    pub check_name: String,
    pub check_kind: Option<String>,
    pub relation: Option<String>,
    pub status: String,
    pub observed: Option<String>,
    pub expected: Option<String>,
    pub failing_rows: Option<i64>,
    pub message: Option<String>,
    pub sample_query: Option<String>,
    /// As the engine prints the timestamp (UTC), e.g. `2026-06-30 10:00:00.123456`.
    pub executed_at: String,
}

/// Which check results [`Metadata::check_history`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckHistoryFilter<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    /// The newest this many.
    pub limit: usize,
}

/// The distinct check kinds and statuses recorded (the check history's filter menus).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckFacets {
    pub kinds: Vec<String>,
    pub statuses: Vec<String>,
}

impl Metadata<'_> {
    /// The check results recorded by a run (the last one per check name when a run recorded several).
    pub async fn check_results_of_run(&self, run_id: &str) -> Result<Vec<CheckResultRecord>> {
        let sql = format!(
            "SELECT check_name, check_kind, status, observed, expected, message FROM {} WHERE run_id = {} \
             ORDER BY executed_at, check_name",
            self.qualified(CHECK_RESULTS)?,
            self.lit(Literal::Text(run_id))?
        );
        let records = self.named_rows(&sql).await?.decode(|r| {
            Ok(CheckResultRecord {
                check_name: r.text("check_name")?,
                check_kind: r.opt_text("check_kind")?,
                status: r.text("status")?,
                observed: r.opt_text("observed")?,
                expected: r.opt_text("expected")?,
                message: r.opt_text("message")?,
            })
        })?;
        let mut out: Vec<CheckResultRecord> = Vec::new();
        for record in records {
            out.retain(|earlier| earlier.check_name != record.check_name);
            out.push(record);
        }
        Ok(out)
    }

    /// Store many check outcomes, a few hundred rows per `INSERT` (one round trip each).
    pub async fn record_checks(&self, results: &[CheckResult<'_>]) -> Result<()> {
        let executed_at = self.lit(Literal::Timestamp(now()))?;
        for chunk in results.chunks(250) {
            let mut rows = Vec::with_capacity(chunk.len());
            for r in chunk {
                rows.push(format!(
                    "({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {executed_at})",
                    self.lit(Literal::Text(r.run_id))?,
                    self.lit(Literal::Text(r.check_name))?,
                    self.lit(Literal::Text(r.check_kind))?,
                    self.opt_text(r.relation)?,
                    self.lit(Literal::Text(r.status))?,
                    self.opt_text(r.observed)?,
                    self.opt_text(r.expected)?,
                    self.lit(r.failing_rows.map_or(Literal::Null, Literal::Int))?,
                    self.opt_text(r.message)?,
                    self.opt_text(r.sample_query)?,
                ));
            }
            let sql = format!(
                "INSERT INTO {} (run_id, check_name, check_kind, relation, status, observed, expected, failing_rows, \
                 message, sample_query, executed_at) VALUES {}",
                self.qualified(CHECK_RESULTS)?,
                rows.join(", ")
            );
            self.warehouse.execute(&sql).await?;
        }
        Ok(())
    }

    /// Store one check outcome.
    pub async fn record_check(&self, result: &CheckResult<'_>) -> Result<()> {
        let sql = format!(
            "INSERT INTO {} (run_id, check_name, check_kind, relation, status, observed, expected, failing_rows, \
             message, sample_query, executed_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            self.qualified(CHECK_RESULTS)?,
            self.lit(Literal::Text(result.run_id))?,
            self.lit(Literal::Text(result.check_name))?,
            self.lit(Literal::Text(result.check_kind))?,
            self.opt_text(result.relation)?,
            self.lit(Literal::Text(result.status))?,
            self.opt_text(result.observed)?,
            self.opt_text(result.expected)?,
            self.lit(result.failing_rows.map_or(Literal::Null, Literal::Int))?,
            self.opt_text(result.message)?,
            self.opt_text(result.sample_query)?,
            self.lit(Literal::Timestamp(now()))?
        );
        self.warehouse.execute(&sql).await
    }

    /// The select list of a [`StoredCheckResult`] read from `check_results` under `alias`.
    fn stored_check_columns(&self, alias: &str) -> Result<String> {
        let d = self.warehouse.dialect();
        let mut columns = Vec::new();
        for name in [
            "run_id",
            "check_name",
            "check_kind",
            "relation",
            "status",
            "observed",
            "expected",
            "failing_rows",
            "message",
            "sample_query",
        ] {
            columns.push(self.aliased(&format!("{alias}.{}", self.quoted(name)?), name)?);
        }
        let executed_at = format!("{alias}.{}", self.quoted("executed_at")?);
        columns.push(self.aliased(&d.cast_to_text(&executed_at), "executed_at")?);
        Ok(columns.join(", "))
    }

    fn stored_check(row: &Row<'_>) -> Result<StoredCheckResult> {
        Ok(StoredCheckResult {
            run_id: row.text("run_id")?,
            check_name: row.text("check_name")?,
            check_kind: row.opt_text("check_kind")?,
            relation: row.opt_text("relation")?,
            status: row.text("status")?,
            observed: row.opt_text("observed")?,
            expected: row.opt_text("expected")?,
            failing_rows: row.opt_i64("failing_rows")?,
            message: row.opt_text("message")?,
            sample_query: row.opt_text("sample_query")?,
            executed_at: row.text("executed_at")?,
        })
    }

    /// The latest result of every check (by `check_name`), by check name. Two results of one check
    /// recorded at the same instant are both returned.
    pub async fn latest_check_results(&self) -> Result<Vec<StoredCheckResult>> {
        let table = self.qualified(CHECK_RESULTS)?;
        let (name, at, latest) = (self.quoted("check_name")?, self.quoted("executed_at")?, self.quoted("latest")?);
        let sql = format!(
            "SELECT {columns} FROM {table} c JOIN (SELECT {name}, max({at}) AS {latest} FROM {table} GROUP BY {name}) l \
             ON c.{name} = l.{name} AND c.{at} = l.{latest} ORDER BY c.{name}",
            columns = self.stored_check_columns("c")?
        );
        self.named_rows(&sql).await?.decode(Self::stored_check)
    }

    /// Check results, newest first, filtered by status and kind.
    pub async fn check_history(&self, filter: &CheckHistoryFilter<'_>) -> Result<Vec<StoredCheckResult>> {
        let mut conditions = Vec::new();
        if let Some(status) = filter.status {
            conditions.push(Condition::eq("status", Literal::Text(status)));
        }
        if let Some(kind) = filter.kind {
            conditions.push(Condition::eq("check_kind", Literal::Text(kind)));
        }
        let sql = format!(
            "SELECT {} FROM {} c WHERE {} ORDER BY c.{} DESC, c.{} LIMIT {}",
            self.stored_check_columns("c")?,
            self.qualified(CHECK_RESULTS)?,
            self.warehouse.dialect().conditions_sql(&conditions)?,
            self.quoted("executed_at")?,
            self.quoted("check_name")?,
            filter.limit
        );
        self.named_rows(&sql).await?.decode(Self::stored_check)
    }

    /// The distinct check kinds and statuses recorded, sorted.
    pub async fn check_facets(&self) -> Result<CheckFacets> {
        let table = self.qualified(CHECK_RESULTS)?;
        let mut distinct = Vec::new();
        for column in ["check_kind", "status"] {
            let c = self.quoted(column)?;
            let sql = format!(
                "SELECT DISTINCT {} FROM {table} WHERE {c} IS NOT NULL ORDER BY {}",
                self.aliased(&c, "value")?,
                self.quoted("value")?
            );
            distinct.push(self.named_rows(&sql).await?.decode(|r| r.text("value"))?);
        }
        let statuses = distinct.pop().unwrap_or_default();
        let kinds = distinct.pop().unwrap_or_default();
        Ok(CheckFacets { kinds, statuses })
    }
}
