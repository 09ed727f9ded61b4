//! What the server knows of the project, taken once at start-up from the parsed project: where the
//! KPI marts are (never hard-coded schema names), the lineage graph, the docs site, the sources.

use std::collections::HashMap;

use mdp_marketing::marts::{is_mart, Mart};
use mdp_transform::docs::{self, DocsOptions};
use mdp_transform::manifest::ResourceType;
use mdp_transform::Parsed;
use mdp_warehouse::TableRef;
use serde::Serialize;

/// The mart with one row per platform and day.
pub const PLATFORM_MART: &str = Mart::PlatformDaily.model_name();
/// The mart with one row per campaign and day.
pub const CAMPAIGN_MART: &str = Mart::CampaignDaily.model_name();

/// A node of the lineage graph, for `/api/lineage`.
#[derive(Debug, Clone, Serialize)]
pub struct LineageNode {
    pub unique_id: String,
    pub name: String,
    pub resource_type: String,
    /// `schema.identifier` of what the node builds or reads.
    pub relation: Option<String>,
    pub depends_on: Vec<String>,
    /// The node's docs page on this server.
    pub docs: String,
    /// Whether the node is a mart (a model in a `marts` folder).
    pub mart: bool,
}

/// The project as the server shows it.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub title: String,
    pub platform_daily: Option<TableRef>,
    pub campaign_daily: Option<TableRef>,
    /// Models, seeds and sources (tests left out), in manifest order.
    pub lineage: Vec<LineageNode>,
    /// The lineage graph as SVG, each node linking to its docs page.
    pub lineage_svg: String,
    /// The docs site: path under `/docs/` → content.
    pub docs: HashMap<String, Vec<u8>>,
    /// The project's source names (for the backfill form).
    pub sources: Vec<String>,
}

/// Where the docs page of a node is served.
pub fn docs_href(unique_id: &str) -> String {
    format!("/docs/{}", docs::node_page_path(unique_id))
}

impl Catalog {
    /// Read the catalog from a parsed project. `sources` are the names of mdp.yml's enabled sources.
    pub fn from_parsed(parsed: &Parsed, title: &str, sources: Vec<String>) -> Result<Catalog, docs::DocsError> {
        let manifest = &parsed.manifest;
        let lineage = manifest
            .nodes
            .values()
            .filter(|n| {
                matches!(
                    n.resource_type,
                    ResourceType::Model | ResourceType::Seed | ResourceType::Source | ResourceType::Snapshot
                )
            })
            .map(|n| LineageNode {
                unique_id: n.unique_id.clone(),
                name: n.name.clone(),
                resource_type: n.resource_type.as_str().to_string(),
                relation: n.relation.as_ref().map(|r| format!("{}.{}", r.schema, r.identifier)),
                depends_on: n.depends_on.clone(),
                docs: docs_href(&n.unique_id),
                mart: is_mart(n),
            })
            .collect();
        let options = DocsOptions { base_href: "/docs/".into(), project_title: title.to_string() };
        let docs = docs::render_site(parsed, &options)?.into_iter().map(|f| (f.path, f.content)).collect();
        Ok(Catalog {
            title: title.to_string(),
            platform_daily: Mart::PlatformDaily.relation(parsed),
            campaign_daily: Mart::CampaignDaily.relation(parsed),
            lineage,
            lineage_svg: docs::lineage_svg(parsed, &docs_href),
            docs,
            sources,
        })
    }

    /// The marts, for the lineage page's list.
    pub fn marts(&self) -> impl Iterator<Item = &LineageNode> {
        self.lineage.iter().filter(|n| n.mart)
    }
}
