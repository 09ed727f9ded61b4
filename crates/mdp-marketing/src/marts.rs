//! The package's fact marts, defined once: their model names, and where a parsed project builds them
//! (found through the manifest — a project may configure schemas or override a model — never by
//! guessing relation names).

use mdp_transform::manifest::{Node, ResourceType};
use mdp_transform::Parsed;
use mdp_warehouse::TableRef;

/// A fact mart of the package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mart {
    /// Ad × day.
    AdDaily,
    /// Campaign × day.
    CampaignDaily,
    /// Account × day (in the account's currency and the reporting currency).
    AccountDaily,
    /// Platform × day, in the reporting currency.
    PlatformDaily,
}

impl Mart {
    pub const ALL: [Mart; 4] = [Mart::AdDaily, Mart::CampaignDaily, Mart::AccountDaily, Mart::PlatformDaily];

    /// The model's name.
    pub const fn model_name(self) -> &'static str {
        match self {
            Mart::AdDaily => "fct_ad_performance_daily",
            Mart::CampaignDaily => "fct_campaign_performance_daily",
            Mart::AccountDaily => "fct_account_performance_daily",
            Mart::PlatformDaily => "fct_platform_performance_daily",
        }
    }

    /// The relation the parsed project builds the mart into (the project's own model of that name
    /// first, else the package's), if it has the model.
    pub fn relation(self, parsed: &Parsed) -> Option<TableRef> {
        let manifest = &parsed.manifest;
        manifest
            .resolve_ref(&manifest.project_name, None, self.model_name())
            .filter(|n| n.resource_type == ResourceType::Model)
            .and_then(|n| n.relation.as_ref())
            .map(|r| TableRef::new(r.schema.clone(), r.identifier.clone()))
    }
}

/// Whether a node is a mart: a model in a `marts` folder (the package's `fct_*` and `dim_*`, and a
/// project's own marts by the same convention).
pub fn is_mart(node: &Node) -> bool {
    node.resource_type == ResourceType::Model && node.fqn.get(1).is_some_and(|folder| folder == "marts")
}

/// Where the daily marts the monitors read are, in a parsed project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marts {
    pub account_daily: TableRef,
    pub campaign_daily: TableRef,
    pub platform_daily: TableRef,
}

impl Marts {
    /// The marts of a parsed project, if it has all three (it has none without an enabled source).
    pub fn from_parsed(parsed: &Parsed) -> Option<Marts> {
        Some(Marts {
            account_daily: Mart::AccountDaily.relation(parsed)?,
            campaign_daily: Mart::CampaignDaily.relation(parsed)?,
            platform_daily: Mart::PlatformDaily.relation(parsed)?,
        })
    }
}
