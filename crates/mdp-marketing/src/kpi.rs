//! The KPIs, defined once: each is a ratio of two summed components (numerator × scale /
//! denominator, undefined on a zero denominator), never an average of ratios.
//!
//! Everything that computes a KPI reads [`Kpi::formula`]: the marts' `mdp_kpis` macro is generated
//! from it ([`macros_sql`]), the monitors and the web server render it as SQL through the warehouse's
//! [`Dialect`] ([`Kpi::sql`]) or evaluate it on summed values ([`Formula::evaluate`]).

use mdp_warehouse::Dialect;
use rust_decimal::Decimal;

/// A summed component of performance rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    Impressions,
    Clicks,
    Conversions,
    /// Money.
    Spend,
    /// Money.
    ConversionValue,
}

/// Which currency a money column is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Currency {
    /// The account's own currency (`spend`, `cpa`).
    Account,
    /// The project's reporting currency (`spend_reporting`, `cpa_reporting`).
    Reporting,
}

impl Currency {
    /// The suffix of the marts' money columns in this currency.
    pub fn suffix(self) -> &'static str {
        match self {
            Currency::Account => "",
            Currency::Reporting => "_reporting",
        }
    }
}

impl Component {
    /// The marts' column of the component, without a currency suffix.
    pub fn name(self) -> &'static str {
        match self {
            Component::Impressions => "impressions",
            Component::Clicks => "clicks",
            Component::Conversions => "conversions",
            Component::Spend => "spend",
            Component::ConversionValue => "conversion_value",
        }
    }

    /// Whether the component is an amount of money (its columns come per currency).
    pub fn is_money(self) -> bool {
        matches!(self, Component::Spend | Component::ConversionValue)
    }

    /// The marts' column of the component in a currency (`spend_reporting`; `clicks` in any).
    pub fn column(self, currency: Currency) -> String {
        if self.is_money() {
            format!("{}{}", self.name(), currency.suffix())
        } else {
            self.name().to_string()
        }
    }
}

/// A KPI's definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Formula {
    pub numerator: Component,
    pub denominator: Component,
    /// The numerator is multiplied by this (CPM: per thousand impressions).
    pub scale: u32,
}

impl Formula {
    /// The value from summed components; `None` when the denominator is zero (undefined).
    pub fn evaluate<T>(&self, component: impl Fn(Component) -> T) -> Option<T>
    where
        T: Copy + PartialEq + Default + std::ops::Mul<Output = T> + std::ops::Div<Output = T> + From<u32>,
    {
        let denominator = component(self.denominator);
        if denominator == T::default() {
            return None;
        }
        Some(component(self.numerator) * T::from(self.scale) / denominator)
    }

    /// The value on exact decimals (`None` on a zero denominator or an overflow).
    pub fn evaluate_decimal(&self, component: impl Fn(Component) -> Decimal) -> Option<Decimal> {
        let denominator = component(self.denominator);
        if denominator.is_zero() {
            return None;
        }
        component(self.numerator).checked_mul(Decimal::from(self.scale))?.checked_div(denominator)
    }
}

/// The KPIs of the marts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kpi {
    /// Click-through rate: clicks / impressions.
    Ctr,
    /// Conversion rate: conversions / clicks.
    Cvr,
    /// Cost per click: spend / clicks.
    Cpc,
    /// Cost per thousand impressions: spend × 1000 / impressions.
    Cpm,
    /// Cost per acquisition: spend / conversions.
    Cpa,
    /// Return on ad spend: conversion value / spend.
    Roas,
}

impl Kpi {
    /// Every KPI, in the marts' column order (those without money first, see [`macros_sql`]).
    pub const ALL: [Kpi; 6] = [Kpi::Ctr, Kpi::Cvr, Kpi::Cpc, Kpi::Cpm, Kpi::Cpa, Kpi::Roas];

    /// The definition.
    pub fn formula(self) -> Formula {
        use Component::*;
        let (numerator, denominator, scale) = match self {
            Kpi::Ctr => (Clicks, Impressions, 1),
            Kpi::Cvr => (Conversions, Clicks, 1),
            Kpi::Cpc => (Spend, Clicks, 1),
            Kpi::Cpm => (Spend, Impressions, 1000),
            Kpi::Cpa => (Spend, Conversions, 1),
            Kpi::Roas => (ConversionValue, Spend, 1),
        };
        Formula { numerator, denominator, scale }
    }

    /// The marts' column name without a currency suffix.
    pub fn name(self) -> &'static str {
        match self {
            Kpi::Ctr => "ctr",
            Kpi::Cvr => "cvr",
            Kpi::Cpc => "cpc",
            Kpi::Cpm => "cpm",
            Kpi::Cpa => "cpa",
            Kpi::Roas => "roas",
        }
    }

    /// Whether the KPI reads money, so that the marts have one column per currency (`cpa`,
    /// `cpa_reporting`).
    pub fn per_currency(self) -> bool {
        let f = self.formula();
        f.numerator.is_money() || f.denominator.is_money()
    }

    /// Whether the KPI is itself an amount of money (CPC, CPM, CPA), rather than a rate or a multiple.
    pub fn is_amount(self) -> bool {
        let f = self.formula();
        f.numerator.is_money() && !f.denominator.is_money()
    }

    /// The marts' column of the KPI in a currency.
    pub fn column(self, currency: Currency) -> String {
        if self.per_currency() {
            format!("{}{}", self.name(), currency.suffix())
        } else {
            self.name().to_string()
        }
    }

    /// The KPI as SQL: `column(component)` gives each component's expression (a quoted column, a
    /// `sum(…)`), divided through the dialect (floating point, NULL on a zero denominator).
    pub fn sql<E>(self, d: &dyn Dialect, column: impl Fn(Component) -> Result<String, E>) -> Result<String, E> {
        let f = self.formula();
        Ok(d.ratio(&column(f.numerator)?, &column(f.denominator)?, f.scale))
    }
}

/// The file of the package's generated KPI macros (beside its own `macros/`).
pub const MACROS_PATH: &str = "macros/_mdp_kpis.sql";

/// The package's KPI macros, generated from [`Kpi::ALL`]: `mdp_kpis(money)` (the KPI columns of a mart
/// row from its summed components through the package's `mdp_ratio`) and `mdp_kpi_formulas(money)`
/// (the definitions as `(kpi column, numerator, denominator, scale)` tuples, for the
/// `kpis_match_components` test). `money`: the currency suffixes to compute money KPIs for.
pub fn macros_sql() -> String {
    let arg = |c: Component| {
        if c.is_money() {
            format!("'{}' ~ m", c.name())
        } else {
            format!("'{}'", c.name())
        }
    };
    let column = |k: Kpi| if k.per_currency() { format!("{} ~ m", quoted(k.name())) } else { quoted(k.name()) };
    let ratio = |k: Kpi| {
        let f = k.formula();
        let scale = if f.scale == 1 { String::new() } else { format!(", {}", f.scale) };
        let suffix = if k.per_currency() { "{{ m }}" } else { "" };
        format!("{{{{ mdp_ratio({}, {}{scale}) }}}} as {}{suffix}", arg(f.numerator), arg(f.denominator), k.name())
    };
    let tuple = |k: Kpi| {
        let f = k.formula();
        format!("({}, {}, {}, {})", column(k), arg(f.numerator), arg(f.denominator), f.scale)
    };
    let (plain, money): (Vec<Kpi>, Vec<Kpi>) = Kpi::ALL.into_iter().partition(|k| !k.per_currency());
    let plain_columns: Vec<String> = plain.iter().map(|k| format!("    {}", ratio(*k))).collect();
    let money_columns: Vec<String> = money.iter().map(|k| format!("    {}", ratio(*k))).collect();
    let plain_tuples: Vec<String> = plain.iter().map(|k| tuple(*k).replace(" ~ m", "")).collect();
    let money_tuples: Vec<String> = money.iter().map(|k| tuple(*k)).collect();
    format!(
        "{{#- Generated by mdp (mdp_marketing::kpi) from its KPI definitions: do not edit. -#}}\n\
         \n\
         {{#- The KPIs of a row from its (already summed) components. `money`: the suffixes of the money\n    \
         columns to compute the money KPIs for, e.g. ['', '_reporting']. -#}}\n\
         {{% macro mdp_kpis(money=['', '_reporting']) -%}}\n\
         {plain}\n\
         {{%- for m in money %}},\n\
         {money}\n\
         {{%- endfor %}}\n\
         {{%- endmacro %}}\n\
         \n\
         {{#- The KPI definitions as (kpi column, numerator, denominator, scale), money KPIs per suffix. -#}}\n\
         {{% macro mdp_kpi_formulas(money=['', '_reporting']) -%}}\n\
         {{%- set formulas = namespace(all=[{plain_tuples}]) %}}\n\
         {{%- for m in money %}}\n\
         {{%- set formulas.all = formulas.all + [{money_tuples}] %}}\n\
         {{%- endfor %}}\n\
         {{{{- return(formulas.all) }}}}\n\
         {{%- endmacro %}}\n",
        plain = plain_columns.join(",\n"),
        money = money_columns.join(",\n"),
        plain_tuples = plain_tuples.join(", "),
        money_tuples = money_tuples.join(", "),
    )
}

fn quoted(s: &str) -> String {
    format!("'{s}'")
}

#[cfg(test)]
mod tests {
    use mdp_warehouse::{DuckDbDialect, PostgresDialect};

    use super::*;

    fn components(c: Component) -> f64 {
        match c {
            Component::Spend => 100.0,
            Component::ConversionValue => 250.0,
            Component::Conversions => 4.0,
            Component::Clicks => 50.0,
            Component::Impressions => 10_000.0,
        }
    }

    #[test]
    fn kpis_are_ratios_of_summed_components() {
        let v = |k: Kpi| k.formula().evaluate(components).unwrap();
        assert_eq!(
            Kpi::ALL.map(v),
            [0.005, 0.08, 2.0, 10.0, 25.0, 2.5],
            "ctr, cvr, cpc, cpm (per thousand), cpa, roas"
        );
        assert_eq!(Kpi::Cpa.formula().evaluate(|c| if c == Component::Conversions { 0.0 } else { 1.0 }), None);
        let exact = Kpi::Cpc.formula().evaluate_decimal(|c| match c {
            Component::Spend => Decimal::new(1, 1),
            _ => Decimal::from(3),
        });
        assert_eq!(exact.unwrap().round_dp(6).to_string(), "0.033333");
    }

    #[test]
    fn columns_carry_the_currency_suffix_only_where_money_is_read() {
        assert_eq!(Kpi::Ctr.column(Currency::Reporting), "ctr");
        assert_eq!(Kpi::Roas.column(Currency::Reporting), "roas_reporting");
        assert_eq!(Kpi::Cpm.column(Currency::Account), "cpm");
        assert!(Kpi::Cpa.is_amount() && !Kpi::Roas.is_amount() && !Kpi::Ctr.is_amount());
    }

    #[test]
    fn the_sql_divides_through_the_dialect() {
        let col = |c: Component| Ok::<_, ()>(format!("sum(\"{}\")", c.column(Currency::Reporting)));
        assert_eq!(
            Kpi::Cpm.sql(&DuckDbDialect, col).unwrap(),
            "((CAST(sum(\"spend_reporting\") AS DOUBLE) * 1000) / NULLIF((CAST(sum(\"impressions\") AS DOUBLE)), 0))"
        );
        assert_eq!(
            Kpi::Roas.sql(&PostgresDialect, col).unwrap(),
            "((CAST(sum(\"conversion_value_reporting\") AS double precision)) / \
             NULLIF((CAST(sum(\"spend_reporting\") AS double precision)), 0))"
        );
    }

    #[test]
    fn the_generated_macro_is_the_marts_kpi_columns() {
        let sql = macros_sql();
        let body = &sql[sql.find("{% macro mdp_kpis").unwrap()..sql.find("{#- The KPI definitions").unwrap()];
        // The columns the marts had when the macro was written by hand, in the same order.
        let expected = "{% macro mdp_kpis(money=['', '_reporting']) -%}\n    \
            {{ mdp_ratio('clicks', 'impressions') }} as ctr,\n    \
            {{ mdp_ratio('conversions', 'clicks') }} as cvr\n\
            {%- for m in money %},\n    \
            {{ mdp_ratio('spend' ~ m, 'clicks') }} as cpc{{ m }},\n    \
            {{ mdp_ratio('spend' ~ m, 'impressions', 1000) }} as cpm{{ m }},\n    \
            {{ mdp_ratio('spend' ~ m, 'conversions') }} as cpa{{ m }},\n    \
            {{ mdp_ratio('conversion_value' ~ m, 'spend' ~ m) }} as roas{{ m }}\n\
            {%- endfor %}\n\
            {%- endmacro %}\n";
        assert_eq!(body.trim_end(), expected.trim_end());
        assert!(
            sql.contains("namespace(all=[('ctr', 'clicks', 'impressions', 1), ('cvr', 'conversions', 'clicks', 1)])")
        );
        assert!(sql.contains("('cpm' ~ m, 'spend' ~ m, 'impressions', 1000)"), "{sql}");
    }
}
