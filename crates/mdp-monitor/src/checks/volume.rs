//! Volume: rows per daily stream, account and reporting day, against the median of the same weekday
//! over the trailing weeks (ad delivery has a weekly rhythm: a Sunday is compared with Sundays).
//!
//! The warehouse counts rows per account and day (one `GROUP BY`); the baseline and the bands are
//! the pure functions below.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDate};
use mdp_project::checks::VolumeConfig;
use mdp_warehouse::rows::{FromRow, Row};
use mdp_warehouse::{Dialect, TableRef, Warehouse, WarehouseError};

use super::{
    complete_days, date, existing, exists, num, q, rows, text, CheckContext, CheckKind, CheckOutcome, CheckStatus,
    SourceInfo, StreamInfo,
};

/// The same-weekday baseline of `day`: the median of the row counts of `day − 7k` for k = 1..=weeks,
/// counting a day without rows as 0, but leaving out days before the stream's history began
/// (`history_start`: its first day with rows). `None` when fewer than `min_history` days qualify.
pub fn weekday_baseline(
    counts: &BTreeMap<NaiveDate, i64>,
    day: NaiveDate,
    weeks: u32,
    history_start: NaiveDate,
    min_history: u32,
) -> Option<(f64, usize)> {
    let samples: Vec<f64> = (1..=i64::from(weeks))
        .map(|k| day - Duration::days(7 * k))
        .filter(|d| *d >= history_start)
        .map(|d| counts.get(&d).copied().unwrap_or(0) as f64)
        .collect();
    if samples.len() < min_history as usize || samples.is_empty() {
        return None;
    }
    Some((median(samples.clone()), samples.len()))
}

/// The median of a list of numbers (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The relative deviation of `observed` from `baseline` (0.5: half again or half as many), and its
/// band: at or beyond `fail` fails, at or beyond `warn` warns. A baseline of 0 with rows today is an
/// infinite deviation; 0 against 0 is none.
pub fn band(observed: f64, baseline: f64, warn: f64, fail: f64) -> (CheckStatus, f64) {
    let deviation = if baseline == 0.0 {
        if observed == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (observed - baseline).abs() / baseline
    };
    let status = if deviation >= fail {
        CheckStatus::Fail
    } else if deviation >= warn {
        CheckStatus::Warn
    } else {
        CheckStatus::Pass
    };
    (status, deviation)
}

pub(super) async fn run(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    let found = match existing(wh).await {
        Ok(f) => f,
        Err(e) => return vec![CheckOutcome::error(CheckKind::Volume, "volume", None, &e)],
    };
    let mut out = Vec::new();
    for source in &ctx.sources {
        for stream in source.streams.iter().filter(|s| s.daily) {
            if !exists(&found, &stream.table) {
                let mut o = CheckOutcome::new(
                    CheckKind::Volume,
                    format!("volume.{}.{}", source.name, stream.name),
                    CheckStatus::Skipped,
                    format!("{} does not exist yet: run `mdp ingest --source {}`", stream.table, source.name),
                );
                o.relation = Some(stream.table.to_string());
                out.push(o);
                continue;
            }
            match stream_outcomes(wh, ctx, source, stream).await {
                Ok(o) => out.extend(o),
                Err(e) => out.push(CheckOutcome::error(
                    CheckKind::Volume,
                    format!("volume.{}.{}", source.name, stream.name),
                    Some(&stream.table),
                    &e,
                )),
            }
        }
    }
    out
}

/// Rows of an account on a day.
struct DayCount {
    account_id: String,
    day: NaiveDate,
    row_count: i64,
}

impl FromRow for DayCount {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(DayCount { account_id: row.text("account_id")?, day: row.date("day")?, row_count: row.i64("row_count")? })
    }
}

/// The first day an account has rows.
struct HistoryStart {
    account_id: String,
    first_day: NaiveDate,
}

impl FromRow for HistoryStart {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(HistoryStart { account_id: row.text("account_id")?, first_day: row.date("first_day")? })
    }
}

/// Rows per account and day of a raw table, from `since` to before `until`.
pub fn counts_sql(
    d: &dyn Dialect,
    raw: &TableRef,
    since: NaiveDate,
    until: NaiveDate,
) -> Result<String, WarehouseError> {
    let col = q(d, "date")?;
    Ok(format!(
        "SELECT account_id, {col} AS day, count(*) AS row_count FROM {} WHERE {col} >= {} AND {col} < {} \
         GROUP BY account_id, {col}",
        d.qualified(raw)?,
        date(d, since)?,
        date(d, until)?
    ))
}

/// Each account's first day with rows in a raw table.
pub fn starts_sql(d: &dyn Dialect, raw: &TableRef) -> Result<String, WarehouseError> {
    Ok(format!("SELECT account_id, min({}) AS first_day FROM {} GROUP BY account_id", q(d, "date")?, d.qualified(raw)?))
}

/// One account's rows per day since `since` (the sample query).
pub fn account_days_sql(
    d: &dyn Dialect,
    raw: &TableRef,
    account: &str,
    since: NaiveDate,
) -> Result<String, WarehouseError> {
    let col = q(d, "date")?;
    Ok(format!(
        "SELECT {col} AS date, count(*) AS row_count FROM {} WHERE account_id = {} AND {col} >= {} \
         GROUP BY {col} ORDER BY {col}",
        d.qualified(raw)?,
        text(d, account)?,
        date(d, since)?
    ))
}

async fn stream_outcomes(
    wh: &dyn Warehouse,
    ctx: &CheckContext,
    source: &SourceInfo,
    stream: &StreamInfo,
) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let cfg: &VolumeConfig = &ctx.config.volume;
    let d = wh.dialect();
    let days = complete_days(ctx.reference_today(), cfg.days);
    let first_checked = days[0];
    let since = first_checked - Duration::days(7 * i64::from(cfg.weeks));
    let mut counts: HashMap<String, BTreeMap<NaiveDate, i64>> = HashMap::new();
    let found: Vec<DayCount> = rows(wh, &counts_sql(d, &stream.table, since, ctx.reference_today())?).await?;
    for c in found {
        counts.entry(c.account_id).or_default().insert(c.day, c.row_count);
    }
    let found: Vec<HistoryStart> = rows(wh, &starts_sql(d, &stream.table)?).await?;
    let starts: HashMap<String, NaiveDate> = found.into_iter().map(|s| (s.account_id, s.first_day)).collect();

    let mut out = Vec::new();
    for account in &source.accounts {
        let name = format!("volume.{}.{}.{}", source.name, stream.name, account);
        let sample_query = account_days_sql(d, &stream.table, account, since)?;
        let mut o = CheckOutcome::new(CheckKind::Volume, name, CheckStatus::Pass, String::new());
        o.relation = Some(stream.table.to_string());
        o.sample_query = Some(sample_query);
        let Some(start) = starts.get(account).copied() else {
            o.status = CheckStatus::Skipped;
            o.message = format!(
                "{} {} of account {account} has no rows; nothing to compare (see the freshness check)",
                source.name, stream.name
            );
            out.push(o);
            continue;
        };
        let empty = BTreeMap::new();
        let account_counts = counts.get(account).unwrap_or(&empty);
        let mut judged = 0;
        let mut breaches = 0i64;
        // The worst day: (status, deviation, day, observed, baseline, samples).
        let mut worst: Option<(CheckStatus, f64, NaiveDate, i64, f64, usize)> = None;
        for &day in days.iter().filter(|d| **d >= start) {
            let Some((baseline, samples)) = weekday_baseline(account_counts, day, cfg.weeks, start, cfg.min_history)
            else {
                continue;
            };
            judged += 1;
            let observed = account_counts.get(&day).copied().unwrap_or(0);
            let (status, deviation) = band(observed as f64, baseline, cfg.warn, cfg.fail);
            if status != CheckStatus::Pass {
                breaches += 1;
            }
            let replace = match &worst {
                None => true,
                Some(w) => status.rank() > w.0.rank() || (status.rank() == w.0.rank() && deviation > w.1),
            };
            if replace {
                worst = Some((status, deviation, day, observed, baseline, samples));
            }
        }
        match worst {
            None => {
                o.status = CheckStatus::Skipped;
                o.message = format!(
                    "{} {} of account {account}: history starts {start}, fewer than {} same-weekday days before \
                     each checked day; volume is judged once there is more history",
                    source.name, stream.name, cfg.min_history
                );
            }
            Some((status, deviation, day, observed, baseline, samples)) => {
                o.status = status;
                o.failing_rows = Some(breaches);
                let weekday = day.format("%A");
                o.observed = Some(format!("{day} ({weekday}): {observed} rows ({} from the baseline)", pct(deviation)));
                o.expected = Some(format!(
                    "≈ {} rows (median of {samples} earlier {weekday}s); warn at ±{}, fail at ±{}",
                    num(baseline),
                    pct(cfg.warn),
                    pct(cfg.fail)
                ));
                o.message = if status == CheckStatus::Pass {
                    format!(
                        "{} {} of account {account}: rows per day within ±{} of the same weekday's median on all \
                         {judged} checked days",
                        source.name,
                        stream.name,
                        pct(cfg.warn)
                    )
                } else {
                    format!(
                        "{} {} of account {account}: {breaches} of {judged} checked days are outside the band; worst \
                         {day}: {observed} rows against ≈ {} on earlier {weekday}s. A drop usually means a partial \
                         load (re-run `mdp backfill --source {} --from {day} --to {day}`), a jump duplicated or \
                         newly launched ads",
                        source.name,
                        stream.name,
                        num(baseline),
                        source.name
                    )
                };
            }
        }
        out.push(o);
    }
    Ok(out)
}

fn pct(v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else {
        format!("{}%", num(v * 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn the_baseline_is_the_median_of_the_same_weekday() {
        // 2026-06-29 is a Monday; the four Mondays before it had 100, 110, 90 and 300 rows.
        let counts: BTreeMap<NaiveDate, i64> = [
            ("2026-06-22", 100),
            ("2026-06-15", 110),
            ("2026-06-08", 90),
            ("2026-06-01", 300),
            ("2026-06-28", 5), // a Sunday: not part of Monday's baseline
        ]
        .into_iter()
        .map(|(s, n)| (d(s), n))
        .collect();
        assert_eq!(weekday_baseline(&counts, d("2026-06-29"), 4, d("2026-05-01"), 2), Some((105.0, 4)));
    }

    #[test]
    fn a_missing_day_inside_the_history_counts_as_zero_but_days_before_it_are_left_out() {
        let counts: BTreeMap<NaiveDate, i64> =
            [("2026-06-22", 100), ("2026-06-08", 100)].into_iter().map(|(s, n)| (d(s), n)).collect();
        // History starts 2026-06-08: 06-15 is a gap (0 rows), 06-01 is before the history.
        assert_eq!(weekday_baseline(&counts, d("2026-06-29"), 4, d("2026-06-08"), 2), Some((100.0, 3)));
        // With history from 2026-06-20 only one Monday qualifies: not enough.
        assert_eq!(weekday_baseline(&counts, d("2026-06-29"), 4, d("2026-06-20"), 2), None);
    }

    #[test]
    fn bands_are_relative_deviations() {
        assert_eq!(band(100.0, 100.0, 0.5, 0.8), (CheckStatus::Pass, 0.0));
        assert_eq!(band(140.0, 100.0, 0.5, 0.8).0, CheckStatus::Pass);
        assert_eq!(band(50.0, 100.0, 0.5, 0.8), (CheckStatus::Warn, 0.5));
        assert_eq!(band(160.0, 100.0, 0.5, 0.8).0, CheckStatus::Warn);
        assert_eq!(band(0.0, 100.0, 0.5, 0.8), (CheckStatus::Fail, 1.0));
        assert_eq!(band(250.0, 100.0, 0.5, 0.8).0, CheckStatus::Fail);
        assert_eq!(band(0.0, 0.0, 0.5, 0.8), (CheckStatus::Pass, 0.0));
        assert_eq!(band(3.0, 0.0, 0.5, 0.8).0, CheckStatus::Fail);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
