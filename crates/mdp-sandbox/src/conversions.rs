//! What each platform reports as conversions, from the world's two conversion actions: purchases (the
//! primary action: click-through, view-through and late-attributed) and leads (a secondary action, a
//! form sent after a click). Google names them conversion actions, LinkedIn conversion rules.
//!
//! The platform modules render their fields from these functions and [`definition_truth`] sums the
//! same functions for a source's conversion definition, so the truth of any definition a connector can
//! be configured with is known exactly.

use mdp_core::{GoogleConversionMetric, SourceOptions};

use crate::world::Metrics;

const MICROS: i64 = 1_000_000;

/// Meta's action types for the world's purchases (a pixel purchase is also a `purchase` and an
/// `omni_purchase`: overlapping types, never to be summed together).
pub const META_PURCHASE_TYPES: &[&str] = &["offsite_conversion.fb_pixel_purchase", "omni_purchase", "purchase"];
/// Meta's action types for the world's leads.
pub const META_LEAD_TYPES: &[&str] = &["offsite_conversion.fb_pixel_lead", "lead"];

/// Whole click-through purchases (every platform but Google counts whole conversions).
fn click_purchases(m: &Metrics) -> i64 {
    m.conversions_micros / MICROS - m.view_through_conversions
}

/// A Meta action's count and value in one attribution window, or (`None`) under each ad set's own
/// setting (7-day click or 1-day view). Purchases: a late-attributed one is not within 1 day of the
/// click; one in ten more arrives between 7 and 28 days. Leads follow clicks within a day.
pub fn meta_action(m: &Metrics, action_type: &str, window: Option<&str>) -> (i64, i64) {
    let purchases = META_PURCHASE_TYPES.contains(&action_type);
    let leads = META_LEAD_TYPES.contains(&action_type);
    let click = click_purchases(m);
    let count = match (purchases, leads, window) {
        (true, _, None) => click + m.view_through_conversions,
        (true, _, Some("1d_click")) => click - m.late_conversions_micros / MICROS,
        (true, _, Some("7d_click")) => click,
        (true, _, Some("28d_click")) => click + click / 10,
        (true, _, Some("1d_view")) => m.view_through_conversions,
        (_, true, None | Some("1d_click" | "7d_click" | "28d_click")) => m.leads,
        _ => 0,
    };
    let value = if purchases {
        count * m.price_micros
    } else if leads && m.leads > 0 {
        m.lead_value_micros
    } else {
        0
    };
    (count, if count == 0 { 0 } else { value })
}

/// A TikTok report metric of the world's conversions (in micros: counts and money alike), or `None`
/// when the sandbox does not serve it.
pub fn tiktok_metric(m: &Metrics, metric: &str) -> Option<i64> {
    Some(match metric {
        "conversion" | "real_time_conversion" => m.conversions_micros,
        "total_purchase_value" => m.conversion_value_micros,
        // Web "Complete payment" events, attributed by click (TikTok's pixel default).
        "complete_payment" => click_purchases(m) * MICROS,
        "total_complete_payment_rate" => click_purchases(m) * m.price_micros,
        "form" => m.leads * MICROS,
        "total_sales_lead_value" => m.lead_value_micros,
        _ => return None,
    })
}

/// A LinkedIn adAnalytics conversion field of the world (whole counts) over every conversion rule of
/// the account, as LinkedIn's totals count them, or `None` when not one.
pub fn linkedin_metric(m: &Metrics, field: &str) -> Option<i64> {
    if let Some(count) = LinkedInRule::ALL.into_iter().map(|rule| rule.metric(m, field)).sum::<Option<i64>>() {
        return Some(count);
    }
    Some(match field {
        // Lead Gen Form submissions on LinkedIn itself (not a website conversion rule).
        "oneClickLeads" => m.leads,
        "qualifiedLeads" => m.leads / 2,
        _ => return None,
    })
}

/// LinkedIn's `conversionValueInLocalCurrency` in micros over `rules`.
pub fn linkedin_value(m: &Metrics, rules: &[LinkedInRule]) -> i64 {
    rules.iter().map(|rule| rule.value(m)).sum()
}

/// The website conversion rules of every sandbox LinkedIn account (`/rest/conversions`): purchases and
/// leads (a form sent on the site after a click), each with its own value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkedInRule {
    Purchase,
    Lead,
}

impl LinkedInRule {
    pub const ALL: [LinkedInRule; 2] = [LinkedInRule::Purchase, LinkedInRule::Lead];

    pub fn id(self) -> &'static str {
        match self {
            LinkedInRule::Purchase => "7310001",
            LinkedInRule::Lead => "7310002",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LinkedInRule::Purchase => "Purchase",
            LinkedInRule::Lead => "Website lead",
        }
    }

    /// The rule's `type` in `/rest/conversions`.
    pub fn kind(self) -> &'static str {
        match self {
            LinkedInRule::Purchase => "PURCHASE",
            LinkedInRule::Lead => "LEAD",
        }
    }

    /// Whether a configured entry (an id or a name) names this rule.
    pub fn is(self, entry: &str) -> bool {
        entry == self.id() || entry == self.name()
    }

    /// This rule's count of an externalWebsite* field (`None`: not a per-rule field).
    pub fn metric(self, m: &Metrics, field: &str) -> Option<i64> {
        let purchases = m.conversions_micros / MICROS;
        Some(match (self, field) {
            (LinkedInRule::Purchase, "externalWebsiteConversions") => purchases,
            (LinkedInRule::Purchase, "externalWebsitePostClickConversions") => purchases - m.view_through_conversions,
            (LinkedInRule::Purchase, "externalWebsitePostViewConversions") => m.view_through_conversions,
            (LinkedInRule::Lead, "externalWebsiteConversions" | "externalWebsitePostClickConversions") => m.leads,
            (LinkedInRule::Lead, "externalWebsitePostViewConversions") => 0,
            _ => return None,
        })
    }

    /// This rule's conversion value in micros.
    pub fn value(self, m: &Metrics) -> i64 {
        match self {
            LinkedInRule::Purchase => m.conversion_value_micros,
            LinkedInRule::Lead if m.leads > 0 => m.lead_value_micros,
            LinkedInRule::Lead => 0,
        }
    }
}

/// Google's conversion columns in micros: (conversions, value) of the primary action, or of every
/// action for `all_conversions`.
pub fn google_conversions(m: &Metrics, metric: GoogleConversionMetric) -> (i64, i64) {
    match metric {
        GoogleConversionMetric::Conversions => (m.conversions_micros, m.conversion_value_micros),
        GoogleConversionMetric::AllConversions => {
            (m.conversions_micros + m.leads * MICROS, m.conversion_value_micros + m.lead_value_micros)
        }
    }
}

/// Google's conversion actions in every sandbox account: a primary one (purchases, counted in
/// `conversions`) and a secondary one (leads, only in `all_conversions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversionAction {
    Purchase,
    Lead,
}

impl ConversionAction {
    pub const ALL: [ConversionAction; 2] = [ConversionAction::Purchase, ConversionAction::Lead];

    pub fn id(self) -> &'static str {
        match self {
            ConversionAction::Purchase => "900000001",
            ConversionAction::Lead => "900000002",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ConversionAction::Purchase => "Purchase",
            ConversionAction::Lead => "Lead form",
        }
    }

    /// Its `conversion_action.category`.
    pub fn category(self) -> &'static str {
        match self {
            ConversionAction::Purchase => "PURCHASE",
            ConversionAction::Lead => "SUBMIT_LEAD_FORM",
        }
    }

    /// Whether it counts in `metrics.conversions` (a primary action), not only in `all_conversions`.
    pub fn primary(self) -> bool {
        self == ConversionAction::Purchase
    }

    /// A unit-day's metrics as this action's row shows them: its conversions only, no delivery.
    pub fn part(self, m: &Metrics) -> Metrics {
        match self {
            ConversionAction::Purchase => Metrics {
                conversions_micros: m.conversions_micros,
                conversion_value_micros: m.conversion_value_micros,
                ..Default::default()
            },
            ConversionAction::Lead => {
                Metrics { leads: m.leads, lead_value_micros: m.lead_value_micros, ..Default::default() }
            }
        }
    }

    /// Whether a configured entry (an id or a name) names this action.
    pub fn is(self, entry: &str) -> bool {
        entry == self.id() || entry == self.name()
    }
}

/// The conversions and conversion value (micros) a source configured with `options` must load for one
/// unit-day: the sandbox's truth for that conversion definition.
pub fn definition_truth(options: &SourceOptions, m: &Metrics) -> (i64, i64) {
    match options {
        SourceOptions::GoogleAds(google) if google.conversion_actions.is_empty() => {
            google_conversions(m, google.conversion_metric)
        }
        SourceOptions::GoogleAds(google) => ConversionAction::ALL
            .into_iter()
            .filter(|action| google.conversion_actions.iter().any(|entry| action.is(entry)))
            .map(|action| google_conversions(&action.part(m), google.conversion_metric))
            .fold((0, 0), |total, (count, value)| (total.0 + count, total.1 + value)),
        SourceOptions::MetaAds(meta) => {
            let windows: Vec<Option<&str>> = if meta.attribution_windows.is_empty() {
                vec![None]
            } else {
                meta.attribution_windows.iter().map(|w| Some(w.as_str())).collect()
            };
            let mut total = (0, 0);
            for action_type in &meta.conversion_action_types {
                for window in &windows {
                    let (count, value) = meta_action(m, action_type, *window);
                    total = (total.0 + count * MICROS, total.1 + value);
                }
            }
            total
        }
        SourceOptions::TikTokAds(tiktok) => (
            tiktok_metric(m, &tiktok.conversion_metric).unwrap_or(0),
            tiktok.conversion_value_metric.as_deref().and_then(|v| tiktok_metric(m, v)).unwrap_or(0),
        ),
        SourceOptions::LinkedInAds(linkedin) => {
            let rules: Vec<LinkedInRule> = LinkedInRule::ALL
                .into_iter()
                .filter(|rule| {
                    linkedin.conversion_rules.is_empty() || linkedin.conversion_rules.iter().any(|entry| rule.is(entry))
                })
                .collect();
            let count = if linkedin.conversion_rules.is_empty() {
                linkedin_metric(m, &linkedin.conversion_metric).unwrap_or(0)
            } else {
                rules.iter().filter_map(|rule| rule.metric(m, &linkedin.conversion_metric)).sum()
            };
            let value = if linkedin.conversion_value_metric.is_some() { linkedin_value(m, &rules) } else { 0 };
            (count * MICROS, value)
        }
        // A platform of a connector spec counts the world's purchases and their value.
        SourceOptions::Declared(_) => (m.conversions_micros, m.conversion_value_micros),
    }
}

#[cfg(test)]
mod tests {
    use mdp_core::Platform;
    use serde_json::json;

    use super::*;

    fn day() -> Metrics {
        Metrics {
            clicks: 200,
            conversions_micros: 11 * MICROS, // 8 by click (2 of them late) + 3 by view
            view_through_conversions: 3,
            late_conversions_micros: 2 * MICROS,
            price_micros: 40 * MICROS,
            conversion_value_micros: 11 * 40 * MICROS,
            leads: 5,
            lead_value_micros: 25 * MICROS,
            ..Default::default()
        }
    }

    fn options(platform: Platform, options: serde_json::Value) -> SourceOptions {
        let serde_json::Value::Object(map) = options else { panic!("an object") };
        SourceOptions::parse(platform, map).unwrap()
    }

    #[test]
    fn defaults_are_each_platforms_primary_purchases_and_meta_adds_its_lead_types() {
        let m = day();
        for platform in [Platform::GoogleAds, Platform::TikTokAds] {
            let truth = definition_truth(&SourceOptions::defaults(platform), &m);
            assert_eq!(truth, (11 * MICROS, 440 * MICROS), "{platform}");
        }
        // LinkedIn's externalWebsiteConversions counts every conversion rule: purchases and website leads.
        let linkedin = definition_truth(&SourceOptions::defaults(Platform::LinkedInAds), &m);
        assert_eq!(linkedin, (16 * MICROS, 465 * MICROS));
        // Meta's default types hold one purchase type and one lead type, each counted once.
        let meta = definition_truth(&SourceOptions::defaults(Platform::MetaAds), &m);
        assert_eq!(meta, (16 * MICROS, 465 * MICROS));
    }

    #[test]
    fn each_definition_counts_what_it_names() {
        let m = day();
        let google = options(Platform::GoogleAds, json!({"conversion_metric": "all_conversions"}));
        assert_eq!(definition_truth(&google, &m), (16 * MICROS, 465 * MICROS));
        let meta = options(
            Platform::MetaAds,
            json!({"conversion_action_types": ["omni_purchase"], "attribution_windows": ["1d_click", "1d_view"]}),
        );
        assert_eq!(definition_truth(&meta, &m), (9 * MICROS, 360 * MICROS), "6 within a day of the click + 3 views");
        let long = options(
            Platform::MetaAds,
            json!({"conversion_action_types": ["purchase"], "attribution_windows": ["28d_click"]}),
        );
        assert_eq!(definition_truth(&long, &m), (8 * MICROS, 320 * MICROS));
        let tiktok = options(
            Platform::TikTokAds,
            json!({"conversion_metric": "complete_payment", "conversion_value_metric": "total_complete_payment_rate"}),
        );
        assert_eq!(definition_truth(&tiktok, &m), (8 * MICROS, 320 * MICROS));
        let leads = options(
            Platform::LinkedInAds,
            json!({"conversion_metric": "oneClickLeads", "conversion_value_metric": "none"}),
        );
        assert_eq!(definition_truth(&leads, &m), (5 * MICROS, 0));
        let purchases = options(Platform::LinkedInAds, json!({"conversion_rules": ["Purchase"]}));
        assert_eq!(definition_truth(&purchases, &m), (11 * MICROS, 440 * MICROS), "the purchase rule only");
        let by_id = options(
            Platform::LinkedInAds,
            json!({"conversion_rules": [7310002], "conversion_metric": "externalWebsitePostClickConversions"}),
        );
        assert_eq!(definition_truth(&by_id, &m), (5 * MICROS, 25 * MICROS), "the lead rule, by id");
    }
}
