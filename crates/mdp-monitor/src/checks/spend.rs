//! Spend per account and day, from the account mart (`fct_account_performance_daily`):
//!
//! - **spend anomalies**: the robust z-score 0.6745·(x − median)/MAD of each checked day's spend
//!   against the account's trailing window (median and MAD computed by the warehouse);
//! - **zero-spend days**: an account that spent on at least `min_share` of its trailing days and spent
//!   nothing (or has no row) on a checked day.
//!
//! Spend is in the account's currency (each account bills in one), so no FX rate moves the numbers.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use mdp_warehouse::rows::{FromRow, Row};
use mdp_warehouse::{ColumnType, Dialect, Warehouse, WarehouseError};

use super::{
    complete_days, date, existing, exists, num, q, rows, CheckContext, CheckKind, CheckOutcome, CheckStatus, Marts,
};

/// The consistency constant of the MAD for normally distributed data (Φ⁻¹(0.75)).
pub const MAD_SCALE: f64 = 0.6745;
/// When the MAD is 0, the mean absolute deviation scaled by this stands in (IBM SPSS's rule:
/// 1.253314 ≈ √(π/2) makes it consistent with the standard deviation).
pub const MEAN_AD_SCALE: f64 = 1.253314;

/// The robust z-score of `x` against a window with `median`, `mad` (median absolute deviation) and
/// `mean_ad` (mean absolute deviation). When more than half of the window is equal, the MAD is 0 and
/// the mean absolute deviation stands in; when that is 0 too (a constant window), any other value is
/// infinitely far (±∞) and the median itself is 0.
pub fn robust_z(x: f64, median: f64, mad: f64, mean_ad: f64) -> f64 {
    let diff = x - median;
    if diff == 0.0 {
        return 0.0;
    }
    if mad > 0.0 {
        MAD_SCALE * diff / mad
    } else if mean_ad > 0.0 {
        diff / (MEAN_AD_SCALE * mean_ad)
    } else {
        diff.signum() * f64::INFINITY
    }
}

/// The band of a z-score: |z| at or beyond `fail` fails, at or beyond `warn` warns.
pub fn z_status(z: f64, warn: f64, fail: f64) -> CheckStatus {
    if z.abs() >= fail {
        CheckStatus::Fail
    } else if z.abs() >= warn {
        CheckStatus::Warn
    } else {
        CheckStatus::Pass
    }
}

/// Whether a checked day is a zero-spend day of an account that usually spends. `spend_days`: days
/// with spend > 0 among the `history_days` trailing days the account has data for (at most the
/// window). `None` when there is too little history to say.
pub fn zero_spend_day(
    day_spend: Option<f64>,
    spend_days: i64,
    history_days: i64,
    min_share: f64,
    min_history: u32,
) -> Option<bool> {
    if history_days < i64::from(min_history) || history_days <= 0 {
        return None;
    }
    let usual = spend_days as f64 / history_days as f64 >= min_share;
    Some(usual && day_spend.unwrap_or(0.0) <= 0.0)
}

fn marts_or_skip(ctx: &CheckContext, kind: CheckKind) -> Result<&Marts, Box<CheckOutcome>> {
    ctx.marts.as_ref().ok_or_else(|| {
        Box::new(CheckOutcome::new(
            kind,
            kind.as_str(),
            CheckStatus::Skipped,
            "the project has no marketing marts (no enabled source); nothing to check",
        ))
    })
}

async fn mart_exists(wh: &dyn Warehouse, marts: &Marts, kind: CheckKind) -> Result<(), Box<CheckOutcome>> {
    let found = existing(wh)
        .await
        .map_err(|e| Box::new(CheckOutcome::error(kind, kind.as_str(), Some(&marts.account_daily), &e)))?;
    if exists(&found, &marts.account_daily) {
        return Ok(());
    }
    let mut o = CheckOutcome::new(
        kind,
        kind.as_str(),
        CheckStatus::Skipped,
        format!("{} is not built yet: run `mdp build` (or `mdp pipeline`), then `mdp check`", marts.account_daily),
    );
    o.relation = Some(marts.account_daily.to_string());
    Err(Box::new(o))
}

/// The account × day spend of the mart as a CTE body (summed, in case of several currencies). The
/// statistics are computed on doubles (medians need them); amounts shown come from the mart itself.
fn daily_sql(d: &dyn Dialect, marts: &Marts, since: NaiveDate, until: NaiveDate) -> Result<String, WarehouseError> {
    let col = q(d, "date")?;
    Ok(format!(
        "SELECT platform, account_id, {col} AS day, {spend} AS spend FROM {} \
         WHERE {col} >= {} AND {col} < {} GROUP BY platform, account_id, {col}",
        d.qualified(&marts.account_daily)?,
        date(d, since)?,
        date(d, until)?,
        spend = d.cast("sum(spend)", ColumnType::Float64),
    ))
}

pub(super) async fn run_anomaly(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    on_account_mart(wh, ctx, CheckKind::SpendAnomaly, anomaly).await
}

/// The account's daily rows of the account mart from `since`: what a spend result is about.
fn account_days_query(
    d: &dyn Dialect,
    marts: &Marts,
    platform: &str,
    account: &str,
    since: NaiveDate,
) -> Result<String, WarehouseError> {
    let col = q(d, "date")?;
    Ok(format!(
        "SELECT {col}, spend, currency, campaigns FROM {} WHERE platform = {} AND account_id = {} AND {col} >= {} \
         ORDER BY {col}",
        d.qualified(&marts.account_daily)?,
        super::text(d, platform)?,
        super::text(d, account)?,
        date(d, since)?
    ))
}

/// Run a monitor of the account mart: `skipped` without marts, `error` when its query fails.
async fn on_account_mart<'a, Fut>(
    wh: &'a dyn Warehouse,
    ctx: &'a CheckContext,
    kind: CheckKind,
    monitor: impl FnOnce(&'a dyn Warehouse, &'a CheckContext, &'a Marts) -> Fut,
) -> Vec<CheckOutcome>
where
    Fut: std::future::Future<Output = Result<Vec<CheckOutcome>, WarehouseError>>,
{
    let marts = match marts_or_skip(ctx, kind) {
        Ok(m) => m,
        Err(o) => return vec![*o],
    };
    if let Err(o) = mart_exists(wh, marts, kind).await {
        return vec![*o];
    }
    match monitor(wh, ctx, marts).await {
        Ok(o) => o,
        Err(e) => vec![CheckOutcome::error(kind, kind.as_str(), Some(&marts.account_daily), &e)],
    }
}

/// Per account and checked day: spend, and the window's size, median, MAD and mean absolute deviation.
pub fn anomaly_sql(d: &dyn Dialect, ctx: &CheckContext, marts: &Marts) -> Result<String, WarehouseError> {
    let cfg = &ctx.config.spend_anomaly;
    let today = ctx.reference_today();
    let days = complete_days(today, cfg.days);
    let since = days[0] - Duration::days(i64::from(cfg.window_days));
    let window_start = d.date_add_days("e.day", -i64::from(cfg.window_days));
    Ok(format!(
        "WITH daily AS ({daily}), \
         checked AS (SELECT * FROM daily WHERE day >= {first}), \
         history AS (SELECT e.platform, e.account_id, e.day, h.spend FROM checked e JOIN daily h \
           ON h.platform = e.platform AND h.account_id = e.account_id AND h.day >= {window_start} AND h.day < e.day), \
         centre AS (SELECT platform, account_id, day, count(*) AS n, {median} AS med FROM history \
           GROUP BY platform, account_id, day), \
         spread AS (SELECT h.platform, h.account_id, h.day, {mad} AS mad, avg(abs(h.spend - c.med)) AS mean_ad \
           FROM history h JOIN centre c ON c.platform = h.platform AND c.account_id = h.account_id AND c.day = h.day \
           GROUP BY h.platform, h.account_id, h.day) \
         SELECT e.platform, e.account_id, e.day, e.spend, c.n, c.med, s.mad, s.mean_ad \
         FROM checked e LEFT JOIN centre c ON c.platform = e.platform AND c.account_id = e.account_id AND c.day = e.day \
         LEFT JOIN spread s ON s.platform = e.platform AND s.account_id = e.account_id AND s.day = e.day \
         ORDER BY e.platform, e.account_id, e.day",
        daily = daily_sql(d, marts, since, today)?,
        first = date(d, days[0])?,
        median = d.median("spend"),
        mad = d.median("abs(h.spend - c.med)"),
    ))
}

/// A checked day of an account with its trailing window's statistics.
struct AnomalyDay {
    platform: String,
    account_id: String,
    day: NaiveDate,
    spend: f64,
    /// Days in the window; the statistics are NULL without any.
    n: i64,
    median: f64,
    mad: f64,
    mean_ad: f64,
}

impl FromRow for AnomalyDay {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(AnomalyDay {
            platform: row.text("platform")?,
            account_id: row.text("account_id")?,
            day: row.date("day")?,
            spend: row.opt_f64("spend")?.unwrap_or(0.0),
            n: row.opt_i64("n")?.unwrap_or(0),
            median: row.opt_f64("med")?.unwrap_or(0.0),
            mad: row.opt_f64("mad")?.unwrap_or(0.0),
            mean_ad: row.opt_f64("mean_ad")?.unwrap_or(0.0),
        })
    }
}

async fn anomaly(wh: &dyn Warehouse, ctx: &CheckContext, marts: &Marts) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let cfg = &ctx.config.spend_anomaly;
    let sql = anomaly_sql(wh.dialect(), ctx, marts)?;
    // Per (platform, account): every checked day's (day, spend, z, n, median, mad).
    type Day = (NaiveDate, f64, Option<f64>, i64, f64, f64);
    let mut accounts: BTreeMap<(String, String), Vec<Day>> = BTreeMap::new();
    let found: Vec<AnomalyDay> = rows(wh, &sql).await?;
    for r in found {
        let z = (r.n >= i64::from(cfg.min_history)).then(|| robust_z(r.spend, r.median, r.mad, r.mean_ad));
        accounts.entry((r.platform, r.account_id)).or_default().push((r.day, r.spend, z, r.n, r.median, r.mad));
    }
    let d = wh.dialect();
    let mut out = Vec::new();
    for ((platform, account), days) in accounts {
        let name = format!("spend_anomaly.{platform}.{account}");
        let mut o = CheckOutcome::new(CheckKind::SpendAnomaly, name, CheckStatus::Pass, String::new());
        o.relation = Some(marts.account_daily.to_string());
        let since = days[0].0 - Duration::days(i64::from(cfg.window_days));
        o.sample_query = Some(account_days_query(d, marts, &platform, &account, since)?);
        let judged: Vec<&Day> = days.iter().filter(|x| x.2.is_some()).collect();
        let Some(worst) = judged.iter().max_by(|a, b| {
            let (za, zb) = (a.2.unwrap_or(0.0).abs(), b.2.unwrap_or(0.0).abs());
            za.total_cmp(&zb)
        }) else {
            o.status = CheckStatus::Skipped;
            o.message = format!(
                "{platform} account {account}: fewer than {} days of spend in the {}-day window before the checked \
                 days; anomalies are judged once there is more history",
                cfg.min_history, cfg.window_days
            );
            out.push(o);
            continue;
        };
        let (day, spend, z, n, median, mad) = **worst;
        let z = z.unwrap_or(0.0);
        let breaches = judged.iter().filter(|x| z_status(x.2.unwrap_or(0.0), cfg.warn, cfg.fail).rank() > 0).count();
        o.status = z_status(z, cfg.warn, cfg.fail);
        o.failing_rows = Some(breaches as i64);
        o.observed = Some(format!("{day}: spend {} (robust z = {})", num(spend), num(z)));
        o.expected = Some(format!(
            "|z| < {} around the median {} (MAD {}) of the {n} days before; fail at |z| ≥ {}",
            num(cfg.warn),
            num(median),
            num(mad),
            num(cfg.fail)
        ));
        o.message = if o.status == CheckStatus::Pass {
            format!(
                "{platform} account {account}: daily spend of the last {} checked days is in line with its trailing {} days",
                judged.len(),
                cfg.window_days
            )
        } else {
            format!(
                "{platform} account {account}: spend {} on {day} is {} the median {} of the {n} days before (robust z {}); \
                 {breaches} of {} checked days are anomalous. Check budgets and bids in the platform; if the data is \
                 wrong, reload the day with `mdp backfill --from {day} --to {day}`",
                num(spend),
                if spend > median { "far above" } else { "far below" },
                num(median),
                num(z),
                judged.len()
            )
        };
        out.push(o);
    }
    Ok(out)
}

pub(super) async fn run_zero_spend(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    on_account_mart(wh, ctx, CheckKind::ZeroSpend, zero_spend).await
}

/// A checked day of an account: its spend, the days with spend in the window before it, and the
/// account's first day in the mart.
struct ZeroSpendDay {
    platform: String,
    account_id: String,
    day: NaiveDate,
    first_day: NaiveDate,
    /// NULL: no row that day.
    spend: Option<f64>,
    spend_days: i64,
}

impl FromRow for ZeroSpendDay {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        Ok(ZeroSpendDay {
            platform: row.text("platform")?,
            account_id: row.text("account_id")?,
            day: row.date("day")?,
            first_day: row.date("first_day")?,
            spend: row.opt_f64("spend")?,
            spend_days: row.opt_i64("spend_days")?.unwrap_or(0),
        })
    }
}

/// Every known account × every checked day (even days without a row): the day's spend and the
/// days with spend in the window before it.
pub fn zero_spend_sql(d: &dyn Dialect, ctx: &CheckContext, marts: &Marts) -> Result<String, WarehouseError> {
    let cfg = &ctx.config.zero_spend;
    let today = ctx.reference_today();
    let days = complete_days(today, cfg.days);
    let since = days[0] - Duration::days(i64::from(cfg.window_days));
    let calendar = days
        .iter()
        .map(|day| Ok(format!("SELECT {} AS day", date(d, *day)?)))
        .collect::<Result<Vec<_>, WarehouseError>>()?
        .join(" UNION ALL ");
    let window_start = d.date_add_days("g.day", -i64::from(cfg.window_days));
    Ok(format!(
        "WITH daily AS ({daily}), \
         accounts AS (SELECT platform, account_id, min(day) AS first_day FROM daily GROUP BY platform, account_id), \
         calendar AS ({calendar}), \
         grid AS (SELECT a.platform, a.account_id, a.first_day, c.day FROM accounts a CROSS JOIN calendar c) \
         SELECT g.platform, g.account_id, g.day, g.first_day, \
           (SELECT sum(t.spend) FROM daily t WHERE t.platform = g.platform AND t.account_id = g.account_id AND t.day = g.day) AS spend, \
           (SELECT count(*) FROM daily h WHERE h.platform = g.platform AND h.account_id = g.account_id \
              AND h.day >= {window_start} AND h.day < g.day AND h.spend > 0) AS spend_days \
         FROM grid g ORDER BY g.platform, g.account_id, g.day",
        daily = daily_sql(d, marts, since, today)?,
    ))
}

async fn zero_spend(
    wh: &dyn Warehouse,
    ctx: &CheckContext,
    marts: &Marts,
) -> Result<Vec<CheckOutcome>, WarehouseError> {
    let cfg = &ctx.config.zero_spend;
    let d = wh.dialect();
    // Per (platform, account): each checked day's (day, spend, spend days, history days, flagged).
    type Day = (NaiveDate, Option<f64>, i64, i64, Option<bool>);
    let mut accounts: BTreeMap<(String, String), Vec<Day>> = BTreeMap::new();
    let found: Vec<ZeroSpendDay> = rows(wh, &zero_spend_sql(d, ctx, marts)?).await?;
    for r in found {
        let history_days = (r.day - r.first_day).num_days().clamp(0, i64::from(cfg.window_days));
        let flagged = zero_spend_day(r.spend, r.spend_days, history_days, cfg.min_share, cfg.min_history);
        accounts.entry((r.platform, r.account_id)).or_default().push((
            r.day,
            r.spend,
            r.spend_days,
            history_days,
            flagged,
        ));
    }
    let mut out = Vec::new();
    for ((platform, account), days) in accounts {
        let mut o = CheckOutcome::new(
            CheckKind::ZeroSpend,
            format!("zero_spend.{platform}.{account}"),
            CheckStatus::Pass,
            String::new(),
        );
        o.relation = Some(marts.account_daily.to_string());
        let since = days[0].0 - Duration::days(i64::from(cfg.window_days));
        o.sample_query = Some(account_days_query(d, marts, &platform, &account, since)?);
        let judged: Vec<_> = days.iter().filter(|x| x.4.is_some()).collect();
        if judged.is_empty() {
            o.status = CheckStatus::Skipped;
            o.message = format!(
                "{platform} account {account}: fewer than {} days of history before the checked days",
                cfg.min_history
            );
            out.push(o);
            continue;
        }
        let zero: Vec<_> = judged.iter().filter(|x| x.4 == Some(true)).collect();
        o.failing_rows = Some(zero.len() as i64);
        let last = judged.last().expect("not empty");
        match zero.last() {
            None => {
                o.observed = Some(format!("spend on all {} checked days", judged.len()));
                o.expected = Some(format!("spend every day (it spent on {} of its last {} days)", last.2, last.3));
                o.message = format!("{platform} account {account}: spent on every checked day");
            }
            Some(z) => {
                o.status = cfg.severity.into();
                let list: Vec<String> = zero.iter().map(|x| x.0.to_string()).collect();
                o.observed = Some(format!(
                    "no spend on {} ({})",
                    list.join(", "),
                    if z.1.is_none() { "no row" } else { "spend 0" }
                ));
                o.expected = Some(format!(
                    "spend > 0: the account spent on {} of its {} days before {} (≥ {} usual)",
                    z.2,
                    z.3,
                    z.0,
                    super::num(cfg.min_share * 100.0) + "%"
                ));
                o.message = format!(
                    "{platform} account {account} usually spends but spent nothing on {}. Check in the platform whether \
                     campaigns were paused or billing failed; if it did spend, the data is missing: reload with \
                     `mdp backfill --from {} --to {}`",
                    list.join(", "),
                    zero[0].0,
                    z.0
                );
            }
        }
        out.push(o);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_z_scales_the_distance_from_the_median_by_the_mad() {
        // median 100, MAD 10: 150 is 0.6745 × 50 / 10 = 3.3725.
        assert!((robust_z(150.0, 100.0, 10.0, 12.0) - 3.3725).abs() < 1e-9);
        assert!((robust_z(50.0, 100.0, 10.0, 12.0) + 3.3725).abs() < 1e-9);
        assert_eq!(robust_z(100.0, 100.0, 0.0, 0.0), 0.0);
    }

    #[test]
    fn a_zero_mad_falls_back_to_the_mean_absolute_deviation_then_to_infinity() {
        // 28 days: 20 of exactly 100, 8 of 120 → MAD 0, mean absolute deviation 8×20/28.
        let mean_ad = 8.0 * 20.0 / 28.0;
        let z = robust_z(200.0, 100.0, 0.0, mean_ad);
        assert!((z - 100.0 / (MEAN_AD_SCALE * mean_ad)).abs() < 1e-9);
        assert_eq!(z_status(z, 3.5, 5.0), CheckStatus::Fail);
        // A constant window: any change is infinitely far, the same value is not.
        assert_eq!(robust_z(101.0, 100.0, 0.0, 0.0), f64::INFINITY);
        assert_eq!(robust_z(99.0, 100.0, 0.0, 0.0), f64::NEG_INFINITY);
        assert_eq!(z_status(f64::NEG_INFINITY, 3.5, 5.0), CheckStatus::Fail);
    }

    #[test]
    fn z_bands_are_symmetric() {
        assert_eq!(z_status(3.49, 3.5, 5.0), CheckStatus::Pass);
        assert_eq!(z_status(-3.5, 3.5, 5.0), CheckStatus::Warn);
        assert_eq!(z_status(5.0, 3.5, 5.0), CheckStatus::Fail);
    }

    #[test]
    fn zero_spend_flags_only_accounts_that_usually_spend() {
        assert_eq!(zero_spend_day(Some(0.0), 28, 28, 0.8, 14), Some(true));
        assert_eq!(zero_spend_day(None, 25, 28, 0.8, 14), Some(true), "no row counts as no spend");
        assert_eq!(zero_spend_day(Some(12.5), 28, 28, 0.8, 14), Some(false));
        assert_eq!(zero_spend_day(Some(0.0), 10, 28, 0.8, 14), Some(false), "an occasional spender");
        assert_eq!(zero_spend_day(Some(0.0), 10, 10, 0.8, 14), None, "too little history");
    }
}
