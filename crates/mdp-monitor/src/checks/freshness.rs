//! Source freshness per daily stream and account, two ways: the **reporting date lag** (days the
//! latest `date` in the raw table is behind the account's today) and the **load age** (hours since the
//! stream last loaded, from `stream_state.updated_at` or the raw rows' `_mdp_extracted_at`).

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use mdp_project::checks::FreshnessThresholds;
use mdp_warehouse::meta::{Metadata, StreamState};
use mdp_warehouse::rows::{FromRow, Row};
use mdp_warehouse::{Dialect, TableRef, Warehouse, WarehouseError};

use super::{
    existing, exists, num, q, rows, text, CheckContext, CheckKind, CheckOutcome, CheckStatus, Existing, SourceInfo,
    StreamInfo,
};

/// The judgement of one stream of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct FreshnessVerdict {
    pub status: CheckStatus,
    /// Why it is not a pass, one phrase per reason.
    pub reasons: Vec<String>,
}

/// Judge a date lag (days; `None`: no rows) and a load age (hours; `None`: never loaded) against
/// thresholds: beyond `warn_after` warns, beyond `error_after` fails.
pub fn judge(lag_days: Option<i64>, age_hours: Option<f64>, t: &FreshnessThresholds) -> FreshnessVerdict {
    let mut status = CheckStatus::Pass;
    let mut reasons = Vec::new();
    match age_hours {
        None => {
            status = CheckStatus::Fail;
            reasons.push("never loaded".to_string());
        }
        Some(age) if age > f64::from(t.error_after_hours) => {
            status = status.worst(CheckStatus::Fail);
            reasons.push(format!("last loaded {} h ago, more than {} h", num(age), t.error_after_hours));
        }
        Some(age) if age > f64::from(t.warn_after_hours) => {
            status = status.worst(CheckStatus::Warn);
            reasons.push(format!("last loaded {} h ago, more than {} h", num(age), t.warn_after_hours));
        }
        Some(_) => {}
    }
    match lag_days {
        None if age_hours.is_some() => {
            status = status.worst(CheckStatus::Warn);
            reasons.push("loaded, but no rows at all (an account without delivery, or a wrong account id)".into());
        }
        None => {}
        Some(lag) if lag > i64::from(t.error_after_days) => {
            status = status.worst(CheckStatus::Fail);
            reasons.push(format!("latest reporting date is {lag} days behind, more than {}", t.error_after_days));
        }
        Some(lag) if lag > i64::from(t.warn_after_days) => {
            status = status.worst(CheckStatus::Warn);
            reasons.push(format!("latest reporting date is {lag} days behind, more than {}", t.warn_after_days));
        }
        Some(_) => {}
    }
    FreshnessVerdict { status, reasons }
}

/// An account's time zone, from its source's `accounts` snapshot.
struct AccountTimezone {
    account_id: String,
    timezone: String,
}

impl FromRow for AccountTimezone {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(AccountTimezone { account_id: row.text("account_id")?, timezone: row.text("timezone")? })
    }
}

/// The latest reporting date and load of an account in a raw table.
struct Latest {
    account_id: String,
    latest_date: Option<NaiveDate>,
    last_loaded_at: Option<NaiveDateTime>,
    row_count: i64,
}

impl FromRow for Latest {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(Latest {
            account_id: row.text("account_id")?,
            latest_date: row.opt_date("latest_date")?,
            last_loaded_at: row.opt_timestamp("last_loaded_at")?,
            row_count: row.i64("row_count")?,
        })
    }
}

/// Each account's time zone in an `accounts` snapshot table.
pub fn timezones_sql(d: &dyn Dialect, accounts: &TableRef) -> Result<String, WarehouseError> {
    Ok(format!(
        "SELECT account_id, max(timezone) AS timezone FROM {} WHERE timezone IS NOT NULL GROUP BY account_id",
        d.qualified(accounts)?
    ))
}

/// Per account (or for one): the latest reporting date, the latest load and the rows of a raw table.
pub fn latest_sql(d: &dyn Dialect, raw: &TableRef, account: Option<&str>) -> Result<String, WarehouseError> {
    let filter = match account {
        Some(a) => format!(" WHERE account_id = {}", text(d, a)?),
        None => String::new(),
    };
    Ok(format!(
        "SELECT account_id, max({date}) AS latest_date, max(_mdp_extracted_at) AS last_loaded_at, count(*) AS row_count \
         FROM {raw}{filter} GROUP BY account_id",
        date = q(d, "date")?,
        raw = d.qualified(raw)?
    ))
}

pub(super) async fn run(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    let found = match existing(wh).await {
        Ok(f) => f,
        Err(e) => return vec![CheckOutcome::error(CheckKind::Freshness, "freshness", None, &e)],
    };
    // When each stream's state last moved, per account (a load that found no rows still counts).
    let states = match Metadata::new(wh).stream_states().await {
        Ok(s) => s,
        Err(e) => return vec![CheckOutcome::error(CheckKind::Freshness, "freshness", None, &e)],
    };
    let mut out = Vec::new();
    for source in &ctx.sources {
        let timezones = match account_timezones(wh, source, &found).await {
            Ok(t) => t,
            Err(e) => {
                out.push(CheckOutcome::error(
                    CheckKind::Freshness,
                    format!("freshness.{}", source.name),
                    source.accounts_table.as_ref(),
                    &e,
                ));
                HashMap::new()
            }
        };
        for stream in source.streams.iter().filter(|s| s.daily) {
            match stream_outcomes(wh, ctx, source, stream, &found, &timezones, &states).await {
                Ok(o) => out.extend(o),
                Err(e) => out.push(CheckOutcome::error(
                    CheckKind::Freshness,
                    format!("freshness.{}.{}", source.name, stream.name),
                    Some(&stream.table),
                    &e,
                )),
            }
        }
    }
    out
}

async fn account_timezones(
    wh: &dyn Warehouse,
    source: &SourceInfo,
    found: &Existing,
) -> Result<HashMap<String, String>, WarehouseError> {
    let Some(table) = source.accounts_table.as_ref().filter(|t| exists(found, t)) else {
        return Ok(HashMap::new());
    };
    let zones: Vec<AccountTimezone> = rows(wh, &timezones_sql(wh.dialect(), table)?).await?;
    Ok(zones.into_iter().map(|z| (z.account_id, z.timezone)).collect())
}

async fn stream_outcomes(
    wh: &dyn Warehouse,
    ctx: &CheckContext,
    source: &SourceInfo,
    stream: &StreamInfo,
    found: &Existing,
    timezones: &HashMap<String, String>,
    states: &[StreamState],
) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let d = wh.dialect();
    let table_exists = exists(found, &stream.table);
    // Per account: the latest reporting date and load in the raw table.
    let mut latest: HashMap<String, (Option<NaiveDate>, Option<NaiveDateTime>, i64)> = HashMap::new();
    if table_exists {
        let found: Vec<Latest> = rows(wh, &latest_sql(d, &stream.table, None)?).await?;
        for l in found {
            latest.insert(l.account_id, (l.latest_date, l.last_loaded_at, l.row_count));
        }
    }
    let updated: HashMap<&str, NaiveDateTime> = states
        .iter()
        .filter(|s| s.source == source.name && s.stream == stream.name)
        .filter_map(|s| Some((s.account_id.as_str(), s.updated_at?)))
        .collect();

    let thresholds = ctx.config.freshness.thresholds(&source.name, &stream.name);
    let mut out = Vec::new();
    for account in &source.accounts {
        let name = format!("freshness.{}.{}.{}", source.name, stream.name, account);
        let (max_date, extracted, row_count) = latest.get(account).cloned().unwrap_or((None, None, 0));
        let last_load = match (updated.get(account.as_str()).copied(), extracted) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let today = ctx.account_today(timezones.get(account).map(String::as_str));
        let lag = max_date.map(|m| (today - m).num_days());
        let age = last_load.map(|t| (ctx.now - t).num_seconds() as f64 / 3600.0);
        let verdict = judge(lag, age, &thresholds);
        let observed = format!(
            "latest date {}{}; last loaded {}",
            max_date.map_or("none".to_string(), |m| m.to_string()),
            lag.map_or(String::new(), |l| format!(" ({l} day{} behind {today})", if l == 1 { "" } else { "s" })),
            match (last_load, age) {
                (Some(t), Some(a)) => format!("{} UTC ({} h ago)", t.format("%Y-%m-%d %H:%M"), num(a)),
                _ => "never".to_string(),
            }
        );
        let expected = format!(
            "at most {} day{} behind (fail after {}); loaded within {} h (fail after {} h)",
            thresholds.warn_after_days,
            if thresholds.warn_after_days == 1 { "" } else { "s" },
            thresholds.error_after_days,
            thresholds.warn_after_hours,
            thresholds.error_after_hours
        );
        let message = match verdict.status {
            CheckStatus::Pass => {
                format!("{} {} of account {account}: {row_count} rows, fresh ({observed})", source.name, stream.name)
            }
            _ => format!(
                "{} {} of account {account}: {}. Run `mdp ingest --source {}` (or check the schedule with `mdp runs`); \
                 if the platform itself is late, raise `checks.freshness` thresholds for this source",
                source.name,
                stream.name,
                verdict.reasons.join("; "),
                source.name
            ),
        };
        let sample_query = if table_exists { Some(latest_sql(d, &stream.table, Some(account))?) } else { None };
        out.push(CheckOutcome {
            check_name: name,
            check_kind: CheckKind::Freshness,
            relation: Some(stream.table.to_string()),
            status: verdict.status,
            observed: Some(observed),
            expected: Some(expected),
            failing_rows: Some(i64::from(verdict.status.rank() > 0)),
            message,
            sample_query,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: FreshnessThresholds =
        FreshnessThresholds { warn_after_days: 1, error_after_days: 3, warn_after_hours: 36, error_after_hours: 72 };

    #[test]
    fn a_lag_beyond_warn_after_warns_and_beyond_error_after_fails() {
        assert_eq!(judge(Some(0), Some(2.0), &T).status, CheckStatus::Pass);
        assert_eq!(judge(Some(1), Some(2.0), &T).status, CheckStatus::Pass, "at the threshold is fine");
        assert_eq!(judge(Some(2), Some(2.0), &T).status, CheckStatus::Warn);
        assert_eq!(judge(Some(3), Some(2.0), &T).status, CheckStatus::Warn);
        let v = judge(Some(4), Some(2.0), &T);
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.reasons, ["latest reporting date is 4 days behind, more than 3"]);
    }

    #[test]
    fn load_age_is_judged_in_hours_and_the_worse_verdict_wins() {
        assert_eq!(judge(Some(0), Some(36.0), &T).status, CheckStatus::Pass);
        assert_eq!(judge(Some(0), Some(36.5), &T).status, CheckStatus::Warn);
        let v = judge(Some(2), Some(80.0), &T);
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.reasons.len(), 2, "both reasons are told: {:?}", v.reasons);
    }

    #[test]
    fn never_loaded_fails_and_loaded_without_rows_warns() {
        assert_eq!(judge(None, None, &T).status, CheckStatus::Fail);
        assert_eq!(judge(None, None, &T).reasons, ["never loaded"]);
        assert_eq!(judge(None, Some(1.0), &T).status, CheckStatus::Warn);
    }

    #[test]
    fn a_date_ahead_of_today_is_not_late() {
        // LinkedIn reports in UTC: its date can be a day ahead of an account in a western time zone.
        assert_eq!(judge(Some(-1), Some(1.0), &T).status, CheckStatus::Pass);
    }
}
