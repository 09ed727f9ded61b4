//! Source freshness per daily stream and account, two ways: the **reporting date lag** (days the
//! latest `date` in the raw table is behind the account's today) and the **load age** (hours since the
//! stream last loaded, from `stream_state.updated_at` or the raw rows' `_mdp_extracted_at`).

use std::collections::HashMap;

use mdp_project::checks::FreshnessThresholds;
use mdp_warehouse::{TableRef, Warehouse, WarehouseError};

use super::{
    existing, exists, num, parse_date, parse_i64, parse_ts, q, rows, text, CheckContext, CheckKind, CheckOutcome,
    CheckStatus, SourceInfo, StreamInfo,
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

pub(super) async fn run(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    let found = match existing(wh).await {
        Ok(f) => f,
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
            match stream_outcomes(wh, ctx, source, stream, &found, &timezones).await {
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
    found: &HashMap<(String, String), ()>,
) -> Result<HashMap<String, String>, WarehouseError> {
    let Some(table) = source.accounts_table.as_ref().filter(|t| exists(found, t)) else {
        return Ok(HashMap::new());
    };
    let d = wh.dialect();
    let sql = format!(
        "SELECT account_id, max(timezone) FROM {} WHERE timezone IS NOT NULL GROUP BY account_id",
        d.qualified(table)?
    );
    Ok(rows(wh, &sql).await?.into_iter().filter_map(|r| Some((r[0].clone()?, r[1].clone()?))).collect())
}

async fn stream_outcomes(
    wh: &dyn Warehouse,
    ctx: &CheckContext,
    source: &SourceInfo,
    stream: &StreamInfo,
    found: &HashMap<(String, String), ()>,
    timezones: &HashMap<String, String>,
) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let d = wh.dialect();
    let raw = d.qualified(&stream.table)?;
    let table_exists = exists(found, &stream.table);
    // Per account: the latest reporting date and load in the raw table.
    let mut latest: HashMap<String, (Option<chrono::NaiveDate>, Option<chrono::NaiveDateTime>, i64)> = HashMap::new();
    if table_exists {
        let sql = format!(
            "SELECT account_id, CAST(max({date}) AS VARCHAR), CAST(max(_mdp_extracted_at) AS VARCHAR), count(*) \
             FROM {raw} GROUP BY account_id",
            date = q(d, "date")?
        );
        for r in rows(wh, &sql).await? {
            if let Some(account) = r[0].clone() {
                latest.insert(account, (parse_date(&r[1]), parse_ts(&r[2]), parse_i64(&r[3]).unwrap_or(0)));
            }
        }
    }
    // Per account: when the stream's state last moved (a load that found no rows still counts).
    let state_table = TableRef::new(wh.metadata_schema(), mdp_warehouse::meta::STREAM_STATE);
    let sql = format!(
        "SELECT account_id, CAST(updated_at AS VARCHAR) FROM {} WHERE source = {} AND stream = {}",
        d.qualified(&state_table)?,
        text(d, &source.name)?,
        text(d, &stream.name)?
    );
    let updated: HashMap<String, chrono::NaiveDateTime> = if exists(found, &state_table) {
        rows(wh, &sql).await?.into_iter().filter_map(|r| Some((r[0].clone()?, parse_ts(&r[1])?))).collect()
    } else {
        HashMap::new()
    };

    let thresholds = ctx.config.freshness.thresholds(&source.name, &stream.name);
    let mut out = Vec::new();
    for account in &source.accounts {
        let name = format!("freshness.{}.{}.{}", source.name, stream.name, account);
        let (max_date, extracted, row_count) = latest.get(account).cloned().unwrap_or((None, None, 0));
        let last_load = match (updated.get(account).copied(), extracted) {
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
        let sample_query = if table_exists {
            Some(format!(
                "SELECT account_id, max({date}) AS latest_date, max(_mdp_extracted_at) AS last_loaded_at, count(*) AS row_count \
                 FROM {raw} WHERE account_id = {} GROUP BY account_id",
                text(d, account)?,
                date = q(d, "date")?
            ))
        } else {
            None
        };
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
