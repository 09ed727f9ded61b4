//! KPI targets from `checks.kpi_targets`: each campaign (account, platform) whose KPI over the last
//! `window_days` complete days breaches `max` or `min`. KPIs are computed from the window's summed
//! components in the reporting currency (never averaged ratios), as the marts compute theirs.

use mdp_marketing::kpi::{Component, Currency, Kpi};
use mdp_project::checks::{KpiLevel, KpiMetric, KpiTarget};
use mdp_warehouse::rows::{FromRow, Row};
use mdp_warehouse::{Dialect, TableRef, Warehouse, WarehouseError};

use super::{
    complete_days, date, existing, exists, num, q, text, CheckContext, CheckKind, CheckOutcome, CheckStatus, Marts,
};

/// The summed components of an entity over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Components {
    pub spend: f64,
    pub conversion_value: f64,
    pub conversions: f64,
    pub clicks: f64,
    pub impressions: f64,
}

/// A KPI's value: a number, infinite (something over nothing: spend without a conversion is an
/// infinite CPA), or undefined (nothing over nothing).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KpiValue {
    Value(f64),
    Infinite,
    Undefined,
}

impl Components {
    /// One component's sum.
    pub fn get(&self, component: Component) -> f64 {
        match component {
            Component::Spend => self.spend,
            Component::ConversionValue => self.conversion_value,
            Component::Conversions => self.conversions,
            Component::Clicks => self.clicks,
            Component::Impressions => self.impressions,
        }
    }
}

impl FromRow for Components {
    fn from_row(row: &Row<'_>) -> Result<Self, WarehouseError> {
        let sum = |c: Component| -> Result<f64, WarehouseError> { Ok(row.opt_f64(c.name())?.unwrap_or(0.0)) };
        Ok(Components {
            spend: sum(Component::Spend)?,
            conversion_value: sum(Component::ConversionValue)?,
            conversions: sum(Component::Conversions)?,
            clicks: sum(Component::Clicks)?,
            impressions: sum(Component::Impressions)?,
        })
    }
}

/// The marketing package's KPI a configured metric names.
pub fn kpi_of(metric: KpiMetric) -> Kpi {
    match metric {
        KpiMetric::Cpa => Kpi::Cpa,
        KpiMetric::Roas => Kpi::Roas,
        KpiMetric::Ctr => Kpi::Ctr,
        KpiMetric::Cpc => Kpi::Cpc,
        KpiMetric::Cpm => Kpi::Cpm,
        KpiMetric::ConversionRate => Kpi::Cvr,
    }
}

/// A KPI from its components, by the marketing package's definition of it.
pub fn kpi_value(metric: KpiMetric, c: &Components) -> KpiValue {
    let formula = kpi_of(metric).formula();
    match formula.evaluate(|component| c.get(component)) {
        Some(v) => KpiValue::Value(v),
        None if c.get(formula.numerator) > 0.0 => KpiValue::Infinite,
        None => KpiValue::Undefined,
    }
}

/// Whether a value breaches a target: above `max` (an infinite value does) or below `min` (an
/// infinite value never does). An undefined value breaches nothing: there is nothing to judge.
pub fn breaches(value: KpiValue, min: Option<f64>, max: Option<f64>) -> bool {
    match value {
        KpiValue::Undefined => false,
        KpiValue::Infinite => max.is_some(),
        KpiValue::Value(v) => max.is_some_and(|m| v > m) || min.is_some_and(|m| v < m),
    }
}

fn relation(marts: &Marts, level: KpiLevel) -> &TableRef {
    match level {
        KpiLevel::Campaign => &marts.campaign_daily,
        KpiLevel::Account => &marts.account_daily,
        KpiLevel::Platform => &marts.platform_daily,
    }
}

fn keys(level: KpiLevel) -> (&'static [&'static str], &'static str) {
    match level {
        KpiLevel::Campaign => (&["platform", "account_id", "campaign_id"], "max(campaign_name)"),
        KpiLevel::Account => (&["platform", "account_id"], "max(account_name)"),
        KpiLevel::Platform => (&["platform"], "max(platform)"),
    }
}

/// An entity's summed components over a target's window.
struct EntityTotals {
    /// The entity's key values, joined by `:`.
    id: String,
    label: Option<String>,
    components: Components,
}

impl EntityTotals {
    fn decode(row: &Row<'_>, level: KpiLevel) -> Result<Self, WarehouseError> {
        let (key_columns, _) = keys(level);
        let id = key_columns
            .iter()
            .map(|k| Ok(row.opt_text(k)?.unwrap_or_default()))
            .collect::<Result<Vec<_>, WarehouseError>>()?;
        Ok(EntityTotals { id: id.join(":"), label: row.opt_text("label")?, components: Components::from_row(row)? })
    }
}

/// The components of each entity over the target's window; `breaching_only` adds the KPI and keeps
/// the breaching entities (the sample query).
pub fn target_sql(
    d: &dyn Dialect,
    ctx: &CheckContext,
    marts: &Marts,
    target: &KpiTarget,
    breaching_only: bool,
) -> Result<String, WarehouseError> {
    let days = complete_days(ctx.reference_today(), target.window_days);
    let (key_columns, label) = keys(target.level);
    let key_list = key_columns.iter().map(|k| q(d, k)).collect::<Result<Vec<_>, _>>()?.join(", ");
    let col = q(d, "date")?;
    let mut filter =
        format!("{col} >= {} AND {col} <= {}", date(d, days[0])?, date(d, *days.last().expect("days ≥ 1"))?);
    if let Some(p) = target.platform {
        filter.push_str(&format!(" AND platform = {}", text(d, p.as_str())?));
    }
    // Reporting-currency sums, exact; each as the component's name.
    let mut sums = Vec::new();
    for c in [
        Component::Spend,
        Component::ConversionValue,
        Component::Conversions,
        Component::Clicks,
        Component::Impressions,
    ] {
        sums.push(format!("sum({}) AS {}", q(d, &c.column(Currency::Reporting))?, q(d, c.name())?));
    }
    let inner = format!(
        "SELECT {key_list}, {label} AS label, {} FROM {} WHERE {filter} GROUP BY {key_list}",
        sums.join(", "),
        d.qualified(relation(marts, target.level))?
    );
    if !breaching_only {
        return Ok(format!("{inner} ORDER BY {key_list}"));
    }
    let kpi = kpi_of(target.metric);
    let formula = kpi.formula();
    let component = |c: Component| q(d, c.name());
    let (numerator, denominator) = (component(formula.numerator)?, component(formula.denominator)?);
    let value = kpi.sql(d, component)?;
    let mut conditions = Vec::new();
    if let Some(max) = target.max {
        conditions.push(format!("({denominator} = 0 AND {numerator} > 0) OR {value} > {max}"));
    }
    if let Some(min) = target.min {
        conditions.push(format!("{value} < {min}"));
    }
    Ok(format!(
        "SELECT *, {value} AS {metric} FROM ({inner}) AS totals WHERE {} ORDER BY {metric} DESC",
        conditions.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(" OR "),
        metric = q(d, target.metric.as_str())?
    ))
}

pub(super) async fn run(wh: &dyn Warehouse, ctx: &CheckContext) -> Vec<CheckOutcome> {
    if ctx.config.kpi_targets.is_empty() {
        return Vec::new();
    }
    let Some(marts) = &ctx.marts else {
        return vec![CheckOutcome::new(
            CheckKind::KpiTarget,
            "kpi_target",
            CheckStatus::Skipped,
            "the project has no marketing marts (no enabled source); KPI targets need them",
        )];
    };
    let found = match existing(wh).await {
        Ok(f) => f,
        Err(e) => return vec![CheckOutcome::error(CheckKind::KpiTarget, "kpi_target", None, &e)],
    };
    let mut out = Vec::new();
    for target in &ctx.config.kpi_targets {
        let name = format!("kpi_target.{}", target.display_name());
        let table = relation(marts, target.level);
        if !exists(&found, table) {
            let mut o = CheckOutcome::new(
                CheckKind::KpiTarget,
                name,
                CheckStatus::Skipped,
                format!("{table} is not built yet: run `mdp build` (or `mdp pipeline`), then `mdp check`"),
            );
            o.relation = Some(table.to_string());
            out.push(o);
            continue;
        }
        match target_outcome(wh, ctx, marts, target, name.clone()).await {
            Ok(o) => out.push(o),
            Err(e) => out.push(CheckOutcome::error(CheckKind::KpiTarget, name, Some(table), &e)),
        }
    }
    out
}

fn show(metric: KpiMetric, v: KpiValue, currency: &str) -> String {
    match v {
        KpiValue::Undefined => "undefined".into(),
        KpiValue::Infinite => "∞".into(),
        KpiValue::Value(x) if kpi_of(metric).is_amount() => format!("{} {currency}", num(x)),
        KpiValue::Value(x) if matches!(metric, KpiMetric::Ctr | KpiMetric::ConversionRate) => {
            format!("{}%", num(x * 100.0))
        }
        KpiValue::Value(x) => num(x),
    }
}

async fn target_outcome(
    wh: &dyn Warehouse,
    ctx: &CheckContext,
    marts: &Marts,
    target: &KpiTarget,
    name: String,
) -> Result<CheckOutcome, WarehouseError> {
    let d = wh.dialect();
    let cur = ctx.reporting_currency.as_str();
    let mut judged = 0usize;
    let mut undefined = 0usize;
    let mut breaching: Vec<(String, KpiValue)> = Vec::new();
    let batches = wh.query_all(&target_sql(d, ctx, marts, target, false)?).await?;
    let entities: Vec<EntityTotals> =
        mdp_warehouse::rows::decode_with(&batches, |row| EntityTotals::decode(row, target.level))?;
    for e in entities {
        let value = kpi_value(target.metric, &e.components);
        if value == KpiValue::Undefined {
            undefined += 1;
            continue;
        }
        judged += 1;
        if breaches(value, target.min, target.max) {
            let label = e.label.filter(|l| !l.is_empty() && target.level != KpiLevel::Platform);
            breaching.push((label.map_or(e.id.clone(), |l| format!("{l} ({})", e.id)), value));
        }
    }
    // The worst first: farthest above max, or below min.
    let badness = |v: &KpiValue| match v {
        KpiValue::Infinite => f64::INFINITY,
        KpiValue::Value(x) => match (target.max, target.min) {
            (Some(m), _) if *x > m => x / m.max(f64::MIN_POSITIVE),
            (_, Some(m)) if *x < m => m / x.max(f64::MIN_POSITIVE),
            _ => 0.0,
        },
        KpiValue::Undefined => 0.0,
    };
    breaching.sort_by(|a, b| badness(&b.1).total_cmp(&badness(&a.1)));
    let bound = match (target.min, target.max) {
        (Some(min), Some(max)) => {
            format!(
                "between {} and {}",
                show(target.metric, KpiValue::Value(min), cur),
                show(target.metric, KpiValue::Value(max), cur)
            )
        }
        (Some(min), None) => format!("at least {}", show(target.metric, KpiValue::Value(min), cur)),
        (None, Some(max)) => format!("at most {}", show(target.metric, KpiValue::Value(max), cur)),
        (None, None) => "no bound".into(),
    };
    let scope = format!(
        "{} {} over the {} days to yesterday{}",
        target.metric.as_str().to_uppercase().replace('_', " "),
        match target.level {
            KpiLevel::Campaign => "per campaign",
            KpiLevel::Account => "per account",
            KpiLevel::Platform => "per platform",
        },
        target.window_days,
        target.platform.map_or(String::new(), |p| format!(" on {}", p.as_str()))
    );
    let mut o = CheckOutcome::new(CheckKind::KpiTarget, name, CheckStatus::Pass, String::new());
    o.relation = Some(relation(marts, target.level).to_string());
    o.sample_query = Some(target_sql(d, ctx, marts, target, true)?);
    o.failing_rows = Some(breaching.len() as i64);
    o.expected = Some(format!("{} {bound}", target.metric.as_str()));
    let undefined_note =
        if undefined > 0 { format!(" ({undefined} without the denominator are not judged)") } else { String::new() };
    match breaching.first() {
        None => {
            o.status = if judged == 0 { CheckStatus::Skipped } else { CheckStatus::Pass };
            o.observed = Some(format!("{judged} {}s within target", target.level.as_str()));
            o.message = format!("{scope}: all {judged} {}s are {bound}{undefined_note}", target.level.as_str());
        }
        Some((worst, value)) => {
            o.status = target.severity.into();
            o.observed = Some(format!("{worst}: {} {}", target.metric.as_str(), show(target.metric, *value, cur)));
            o.message = format!(
                "{scope}: {} of {judged} {}s are not {bound}; worst {worst} at {}{undefined_note}. Review bids, \
                 budgets and targeting of these, or adjust the target in mdp.yml `checks.kpi_targets`",
                breaching.len(),
                target.level.as_str(),
                show(target.metric, *value, cur)
            );
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(spend: f64, value: f64, conversions: f64, clicks: f64, impressions: f64) -> Components {
        Components { spend, conversion_value: value, conversions, clicks, impressions }
    }

    #[test]
    fn kpis_are_ratios_of_summed_components() {
        let x = c(100.0, 250.0, 4.0, 50.0, 10_000.0);
        assert_eq!(kpi_value(KpiMetric::Cpa, &x), KpiValue::Value(25.0));
        assert_eq!(kpi_value(KpiMetric::Roas, &x), KpiValue::Value(2.5));
        assert_eq!(kpi_value(KpiMetric::Ctr, &x), KpiValue::Value(0.005));
        assert_eq!(kpi_value(KpiMetric::Cpc, &x), KpiValue::Value(2.0));
        assert_eq!(kpi_value(KpiMetric::Cpm, &x), KpiValue::Value(10.0));
        assert_eq!(kpi_value(KpiMetric::ConversionRate, &x), KpiValue::Value(0.08));
    }

    #[test]
    fn a_zero_denominator_is_infinite_with_a_numerator_and_undefined_without() {
        // Spend without conversions: an infinite CPA breaches any maximum.
        let spent_nothing_converted = c(80.0, 0.0, 0.0, 10.0, 1000.0);
        assert_eq!(kpi_value(KpiMetric::Cpa, &spent_nothing_converted), KpiValue::Infinite);
        assert!(breaches(KpiValue::Infinite, None, Some(40.0)));
        assert!(!breaches(KpiValue::Infinite, Some(2.0), None), "an infinite value is never below a minimum");
        // No spend: ROAS is undefined and judged neither way.
        let idle = c(0.0, 0.0, 0.0, 0.0, 0.0);
        assert_eq!(kpi_value(KpiMetric::Roas, &idle), KpiValue::Undefined);
        assert!(!breaches(KpiValue::Undefined, Some(2.0), Some(40.0)));
    }

    #[test]
    fn bounds_are_exclusive() {
        assert!(!breaches(KpiValue::Value(40.0), None, Some(40.0)));
        assert!(breaches(KpiValue::Value(40.01), None, Some(40.0)));
        assert!(!breaches(KpiValue::Value(2.0), Some(2.0), None));
        assert!(breaches(KpiValue::Value(1.99), Some(2.0), None));
        assert!(breaches(KpiValue::Value(0.5), Some(1.0), Some(3.0)));
    }
}
