//! Schema drift: the fields of the API's own rows (the raw tables' `_mdp_payload`) in the latest load
//! against the rows of up to ten earlier loads still in the table (their newest window per account).
//! A field is a top-level key, or `parent.key` one level down (Google Ads nests `metrics.*`,
//! `segments.*`, `campaign.*`).
//! mdp's own notes in a payload (`_mdp_*` keys, e.g. `_mdp_normalized`) are not API fields and are left out.
//!
//! The warehouse extracts and groups the keys; what comes back is one row per distinct field.

use std::collections::BTreeSet;

use mdp_warehouse::rows::{FromRow, Row};
use mdp_warehouse::{Dialect, Literal, TableRef, Warehouse, WarehouseError};

use super::{existing, exists, rows, CheckContext, CheckKind, CheckOutcome, CheckStatus};

/// The fields that appeared in the latest load and those that vanished from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Drift {
    pub appeared: Vec<String>,
    pub vanished: Vec<String>,
}

/// Compare the fields seen in the latest load with those seen in earlier loads. `None` when there
/// is no earlier load to compare with.
pub fn drift(latest: &BTreeSet<String>, earlier: &BTreeSet<String>) -> Option<Drift> {
    if earlier.is_empty() {
        return None;
    }
    Some(Drift {
        appeared: latest.difference(earlier).cloned().collect(),
        vanished: earlier.difference(latest).cloned().collect(),
    })
}

/// How many earlier loads the latest is compared with.
pub const EARLIER_LOADS: usize = 10;

/// The newest window each of the last [`EARLIER_LOADS`] + 1 loads wrote for each account: `run_id`,
/// `account_id`, `extracted_at` (a [`LoadWindow`]), newest first. A window's rows share their
/// `_mdp_extracted_at`; reading no payload, this query is cheap on any history.
pub fn windows_sql(d: &dyn Dialect, table: &TableRef) -> Result<String, WarehouseError> {
    let t = d.qualified(table)?;
    Ok(format!(
        "SELECT _mdp_run_id AS run_id, account_id, max(_mdp_extracted_at) AS extracted_at FROM {t} WHERE _mdp_run_id IN \
         (SELECT run_id FROM (SELECT _mdp_run_id AS run_id, max(_mdp_extracted_at) AS loaded_at FROM {t} \
         GROUP BY _mdp_run_id ORDER BY loaded_at DESC LIMIT {loads}) AS loads) GROUP BY _mdp_run_id, account_id \
         ORDER BY extracted_at DESC",
        loads = EARLIER_LOADS + 1
    ))
}

/// A load's newest window for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWindow {
    pub run_id: String,
    pub account_id: String,
    pub extracted_at: chrono::NaiveDateTime,
}

impl FromRow for LoadWindow {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(LoadWindow {
            run_id: row.text("run_id")?,
            account_id: row.text("account_id")?,
            extracted_at: row.timestamp("extracted_at")?,
        })
    }
}

/// A payload field and the loads it appears in.
struct Field {
    field: String,
    in_latest: bool,
    in_earlier: bool,
}

impl FromRow for Field {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(Field {
            field: row.text("field")?,
            in_latest: row.i64("in_latest")? == 1,
            in_earlier: row.i64("in_earlier")? == 1,
        })
    }
}

/// One row per field of the payloads in `windows`: `field`, `in_latest` (1 when a row of the
/// `latest_run` has it), `in_earlier` (1 when a row of another load has it). With `only_changed`,
/// the drifted fields only. The windows are literals, so the warehouse skips the rest of the table
/// (zone maps on `_mdp_extracted_at`), and it reduces the rows to their distinct shapes before
/// extracting keys.
pub fn fields_sql(
    d: &dyn Dialect,
    table: &TableRef,
    windows: &[LoadWindow],
    latest_run: &str,
    only_changed: bool,
) -> Result<String, WarehouseError> {
    let t = d.qualified(table)?;
    let payload = d.quote_identifier("_mdp_payload")?;
    let mut picks = Vec::with_capacity(windows.len());
    for w in windows {
        picks.push(format!(
            "(_mdp_run_id = {} AND account_id = {} AND _mdp_extracted_at = {})",
            d.literal(&Literal::Text(&w.run_id))?,
            d.literal(&Literal::Text(&w.account_id))?,
            d.literal(&Literal::Timestamp(w.extracted_at))?
        ));
    }
    if picks.is_empty() {
        picks.push("FALSE".into());
    }
    let having = if only_changed { " HAVING max(is_latest) = 0 OR min(is_latest) = 1" } else { "" };
    Ok(format!(
        "WITH payloads AS (SELECT DISTINCT CASE WHEN _mdp_run_id = {latest} THEN 1 ELSE 0 END AS is_latest, \
           {shape} AS p FROM {t} WHERE ({picks}) AND {ptype} = 'object'), \
         top_keys AS (SELECT is_latest, p, k FROM (SELECT is_latest, p, {keys_p} AS k FROM payloads) AS all_keys \
           WHERE substr(k, 1, 5) <> '_mdp_'), \
         members AS (SELECT is_latest, k, {member} AS v FROM top_keys), \
         nested AS (SELECT is_latest, k, {keys_v} AS k2 FROM members WHERE {vtype} = 'object'), \
         fields AS (SELECT DISTINCT is_latest, k AS field FROM top_keys \
           UNION SELECT DISTINCT is_latest, k || '.' || k2 AS field FROM nested) \
         SELECT field, max(is_latest) AS in_latest, 1 - min(is_latest) AS in_earlier FROM fields \
         GROUP BY field{having} ORDER BY field",
        latest = d.literal(&Literal::Text(latest_run))?,
        picks = picks.join(" OR "),
        shape = d.json_shape(&payload),
        ptype = d.json_type(&payload),
        keys_p = d.json_object_keys("p"),
        member = d.json_member("p", "k"),
        keys_v = d.json_object_keys("v"),
        vtype = d.json_type("v"),
    ))
}

pub(super) async fn run(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    let found = match existing(wh).await {
        Ok(f) => f,
        Err(e) => return vec![CheckOutcome::error(CheckKind::SchemaDrift, "schema_drift", None, &e)],
    };
    let mut out = Vec::new();
    for source in &ctx.sources {
        let tables = source
            .accounts_table
            .iter()
            .map(|t| ("accounts", t))
            .chain(source.streams.iter().map(|s| (s.name.as_str(), &s.table)));
        for (stream, table) in tables {
            let name = format!("schema_drift.{}.{stream}", source.name);
            if !exists(&found, table) {
                let mut o = CheckOutcome::new(
                    CheckKind::SchemaDrift,
                    name,
                    CheckStatus::Skipped,
                    format!("{table} does not exist yet: run `mdp ingest --source {}`", source.name),
                );
                o.relation = Some(table.to_string());
                out.push(o);
                continue;
            }
            match table_outcome(wh, ctx, &source.name, stream, table, name.clone()).await {
                Ok(o) => out.push(o),
                Err(e) => out.push(CheckOutcome::error(CheckKind::SchemaDrift, name, Some(table), &e)),
            }
        }
    }
    out
}

async fn table_outcome(
    wh: &dyn Warehouse,
    ctx: &CheckContext,
    source: &str,
    stream: &str,
    table: &TableRef,
    name: String,
) -> Result<CheckOutcome, WarehouseError> {
    let d = wh.dialect();
    let windows: Vec<LoadWindow> = rows(wh, &windows_sql(d, table)?).await?;
    // Sorted newest first: the first window is the latest load's.
    let latest_run = windows.first().map(|w| w.run_id.clone()).unwrap_or_default();
    let mut latest = BTreeSet::new();
    let mut earlier = BTreeSet::new();
    let fields: Vec<Field> = rows(wh, &fields_sql(d, table, &windows, &latest_run, false)?).await?;
    for f in fields {
        if f.in_latest {
            latest.insert(f.field.clone());
        }
        if f.in_earlier {
            earlier.insert(f.field);
        }
    }
    let mut o = CheckOutcome::new(CheckKind::SchemaDrift, name, CheckStatus::Pass, String::new());
    o.relation = Some(table.to_string());
    o.sample_query = Some(fields_sql(d, table, &windows, &latest_run, true)?);
    let Some(drift) = drift(&latest, &earlier) else {
        o.status = if latest.is_empty() { CheckStatus::Skipped } else { CheckStatus::Pass };
        o.observed = Some(format!("{} fields in the latest load", latest.len()));
        o.message = format!(
            "{source} {stream}: {} fields in the payloads of one load only; drift is judged against earlier loads",
            latest.len()
        );
        return Ok(o);
    };
    let changed = drift.appeared.len() + drift.vanished.len();
    o.failing_rows = Some(changed as i64);
    let list = |v: &[String]| if v.is_empty() { "none".to_string() } else { v.join(", ") };
    o.observed = Some(format!("appeared: {}; vanished: {}", list(&drift.appeared), list(&drift.vanished)));
    o.expected = Some(format!("the {} fields of earlier loads", earlier.len()));
    if changed == 0 {
        o.message =
            format!("{source} {stream}: the latest load has the same {} payload fields as earlier loads", latest.len());
    } else {
        o.status = ctx.config.schema_drift.severity.into();
        o.message = format!(
            "{source} {stream}: the API's rows changed shape in the latest load: {} field(s) appeared ({}), {} \
             vanished ({}). Nothing is lost (the payload keeps every field), but a vanished field the staging \
             models read becomes NULL: check the platform's API changelog and the staging model of this stream",
            drift.appeared.len(),
            list(&drift.appeared),
            drift.vanished.len(),
            list(&drift.vanished)
        );
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn appeared_and_vanished_fields_are_set_differences() {
        let d = drift(&set(&["a", "metrics.clicks", "new"]), &set(&["a", "metrics.clicks", "old"])).unwrap();
        assert_eq!(d.appeared, ["new"]);
        assert_eq!(d.vanished, ["old"]);
        assert_eq!(drift(&set(&["a"]), &set(&["a"])).unwrap(), Drift::default());
        assert_eq!(drift(&set(&["a"]), &set(&[])), None, "a first load has nothing to drift from");
    }

    #[test]
    fn the_fields_query_reads_the_given_windows_and_uses_the_dialects_json_functions() {
        let t = TableRef::new("raw", "x\"y");
        let at = chrono::NaiveDate::from_ymd_opt(2026, 6, 30).unwrap().and_hms_micro_opt(6, 0, 0, 123_456).unwrap();
        let windows = [LoadWindow { run_id: "r2".into(), account_id: "o'k".into(), extracted_at: at }];
        let duck = fields_sql(&mdp_warehouse::DuckDbDialect, &t, &windows, "r2", true).unwrap();
        assert!(duck.contains("\"raw\".\"x\"\"y\"") && duck.contains("json_keys") && duck.contains("HAVING"));
        assert!(duck.contains("account_id = 'o''k' AND _mdp_extracted_at = TIMESTAMP '2026-06-30 06:00:00.123456'"));
        let pg = fields_sql(&mdp_warehouse::PostgresDialect, &t, &windows, "r2", false).unwrap();
        assert!(pg.contains("jsonb_object_keys") && !pg.contains("HAVING"));
        let none = fields_sql(&mdp_warehouse::PostgresDialect, &t, &[], "", false).unwrap();
        assert!(none.contains("WHERE (FALSE)"), "no load: no rows, not every row");
    }
}
