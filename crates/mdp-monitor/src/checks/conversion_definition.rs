//! Whether each daily stream's rows were all loaded with the source's current conversion definition
//! (`SourceOptions::conversion_definition`, recorded on every raw row as `_mdp_conversion_definition`).
//!
//! Changing what counts as a conversion (Meta's action types or attribution windows, Google's
//! `all_conversions`, TikTok's or LinkedIn's metric) applies to the windows loaded from then on; the
//! days loaded before keep the old definition until they are loaded again. This warns per account with
//! the old definition's date range and the backfill that makes the history consistent. Rows loaded
//! before mdp recorded definitions (NULL) are not judged.

use chrono::NaiveDate;
use mdp_warehouse::rows::{FromRow, Row};
use mdp_warehouse::{Dialect, TableRef, Warehouse, WarehouseError};

use super::{existing, exists, q, rows, CheckContext, CheckKind, CheckOutcome, CheckStatus, SourceInfo, StreamInfo};

/// The raw column holding a row's conversion definition.
pub const COLUMN: &str = "_mdp_conversion_definition";

/// The rows of one account under one definition.
#[derive(Debug, Clone, PartialEq)]
pub struct DefinitionRange {
    pub account_id: String,
    /// `None`: rows loaded before mdp recorded definitions.
    pub definition: Option<String>,
    pub first_date: NaiveDate,
    pub last_date: NaiveDate,
    pub row_count: i64,
}

impl FromRow for DefinitionRange {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(DefinitionRange {
            account_id: row.text("account_id")?,
            definition: row.opt_text("conversion_definition")?,
            first_date: row.date("first_date")?,
            last_date: row.date("last_date")?,
            row_count: row.i64("row_count")?,
        })
    }
}

/// Per account and definition: the dates and rows of a raw daily table.
pub fn ranges_sql(d: &dyn Dialect, raw: &TableRef) -> Result<String, WarehouseError> {
    Ok(format!(
        "SELECT account_id, {column} AS conversion_definition, min({date}) AS first_date, max({date}) AS last_date, \
         count(*) AS row_count FROM {raw} GROUP BY account_id, {column}",
        column = q(d, COLUMN)?,
        date = q(d, "date")?,
        raw = d.qualified(raw)?
    ))
}

/// Judge one account's ranges against the source's current definition: pass when every recorded
/// definition is the current one, warn (with the backfill to run) when older ones remain.
pub fn judge(source: &str, account: &str, current: &str, ranges: &[&DefinitionRange]) -> (CheckStatus, String) {
    let stale: Vec<&&DefinitionRange> =
        ranges.iter().filter(|r| r.definition.as_deref().is_some_and(|d| d != current)).collect();
    if stale.is_empty() {
        let unrecorded = ranges.iter().any(|r| r.definition.is_none());
        let note = if unrecorded { " (older rows were loaded before mdp recorded definitions)" } else { "" };
        return (CheckStatus::Pass, format!("every recorded row counts conversions as `{current}`{note}"));
    }
    let first = stale.iter().map(|r| r.first_date).min().expect("not empty");
    let last = stale.iter().map(|r| r.last_date).max().expect("not empty");
    let rows: i64 = stale.iter().map(|r| r.row_count).sum();
    let mut old: Vec<&str> = stale.iter().filter_map(|r| r.definition.as_deref()).collect();
    old.dedup();
    (
        CheckStatus::Warn,
        format!(
            "{rows} rows from {first} to {last} count conversions as `{}`, not as the configured `{current}`: \
             conversions are not comparable across that date; reload them with \
             `mdp ingest --source {source} --account {account} --from {first} --to {last}`",
            old.join("`, `")
        ),
    )
}

pub(super) async fn run(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    let found = match existing(wh).await {
        Ok(f) => f,
        Err(e) => return vec![CheckOutcome::error(CheckKind::ConversionDefinition, "conversion_definition", None, &e)],
    };
    let mut out = Vec::new();
    for source in &ctx.sources {
        for stream in source.streams.iter().filter(|s| s.daily && exists(&found, &s.table)) {
            match stream_outcomes(wh, source, stream).await {
                Ok(outcomes) => out.extend(outcomes),
                Err(e) => out.push(CheckOutcome::error(
                    CheckKind::ConversionDefinition,
                    format!("conversion_definition.{}.{}", source.name, stream.name),
                    Some(&stream.table),
                    &e,
                )),
            }
        }
    }
    out
}

async fn stream_outcomes(
    wh: &dyn Warehouse,
    source: &SourceInfo,
    stream: &StreamInfo,
) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let name = |account: &str| format!("conversion_definition.{}.{}.{account}", source.name, stream.name);
    // A table made by an older mdp gains the column on its next ingest.
    if !wh.columns(&stream.table).await?.iter().any(|c| c.name == COLUMN) {
        return Ok(source
            .accounts
            .iter()
            .map(|account| {
                let mut o = CheckOutcome::new(
                    CheckKind::ConversionDefinition,
                    name(account),
                    CheckStatus::Skipped,
                    "loaded before mdp recorded conversion definitions: run `mdp ingest` once".to_string(),
                );
                o.relation = Some(stream.table.to_string());
                o
            })
            .collect());
    }
    let ranges: Vec<DefinitionRange> = rows(wh, &ranges_sql(wh.dialect(), &stream.table)?).await?;
    let current = &source.conversion_definition;
    Ok(source
        .accounts
        .iter()
        .filter_map(|account| {
            let mine: Vec<&DefinitionRange> = ranges.iter().filter(|r| &r.account_id == account).collect();
            if mine.is_empty() {
                return None; // nothing loaded: freshness says so
            }
            let (status, message) = judge(&source.name, account, current, &mine);
            let mut o = CheckOutcome::new(CheckKind::ConversionDefinition, name(account), status, message);
            o.relation = Some(stream.table.to_string());
            o.expected = Some(current.clone());
            o.observed = Some(
                mine.iter().map(|r| r.definition.as_deref().unwrap_or("(unrecorded)")).collect::<Vec<_>>().join(" | "),
            );
            Some(o)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(definition: Option<&str>, first: &str, last: &str, rows: i64) -> DefinitionRange {
        let day = |d: &str| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        DefinitionRange {
            account_id: "1".into(),
            definition: definition.map(str::to_string),
            first_date: day(first),
            last_date: day(last),
            row_count: rows,
        }
    }

    #[test]
    fn an_old_definition_left_in_the_history_warns_with_the_backfill_to_run() {
        let old = range(Some("actions[purchase] @ ad set setting"), "2026-05-01", "2026-06-20", 400);
        let new = range(Some("actions[purchase] @ 7d_click"), "2026-06-21", "2026-06-30", 80);
        let current = "actions[purchase] @ 7d_click";
        let (status, message) = judge("meta", "1", current, &[&old, &new]);
        assert_eq!(status, CheckStatus::Warn);
        assert!(
            message.starts_with(
                "400 rows from 2026-05-01 to 2026-06-20 count conversions as `actions[purchase] @ ad set setting`"
            ),
            "{message}"
        );
        assert!(
            message.contains("`mdp ingest --source meta --account 1 --from 2026-05-01 --to 2026-06-20`"),
            "{message}"
        );

        assert_eq!(judge("meta", "1", current, &[&new]).0, CheckStatus::Pass);
        let unrecorded = range(None, "2026-01-01", "2026-04-30", 900);
        let (status, message) = judge("meta", "1", current, &[&unrecorded, &new]);
        assert_eq!(status, CheckStatus::Pass, "rows from before the column are not judged");
        assert!(message.contains("before mdp recorded definitions"), "{message}");
    }

    #[test]
    fn the_ranges_are_one_grouped_query() {
        let sql = ranges_sql(&mdp_warehouse::DuckDbDialect, &TableRef::new("raw", "meta__ad_daily")).unwrap();
        assert_eq!(
            sql,
            "SELECT account_id, \"_mdp_conversion_definition\" AS conversion_definition, min(\"date\") AS first_date, \
             max(\"date\") AS last_date, count(*) AS row_count FROM \"raw\".\"meta__ad_daily\" GROUP BY account_id, \
             \"_mdp_conversion_definition\""
        );
    }
}
