//! mdp's harmonized marketing models, shipped inside the binary as the dbt package `mdp_marketing`.
//!
//! The package (the files under `package/`, embedded at build time) turns the raw layer that the
//! connectors load (`raw.<source>__<stream>`) into staging views per platform and stream,
//! intermediate tables (platforms unioned, entity name history, FX rates per currency and day) and
//! BI-ready marts with KPIs, all tested, plus reconciliation tests of every mart against the raw
//! layer. [`package`] adapts it to a project: the `mdp_raw` sources for the enabled sources' streams,
//! and the vars `mdp_sources` and `mdp_reporting_currency`.
//!
//! Which stream feeds which mart:
//! - `fct_ad_performance_daily` ← each platform's `ad_daily`;
//! - `fct_campaign_performance_daily`, `fct_account_performance_daily`, `fct_platform_performance_daily`
//!   ← the stream that carries all of a platform's spend: Google's `campaign_daily` (Performance Max
//!   has no ad rows), the other platforms' `ad_daily`;
//! - `dim_*` and `dim_*_history` ← the entity snapshot streams (`accounts`, `campaigns`, `ad_groups`, `ads`).
//!
//! The KPIs the marts compute are defined once in [`kpi`] (the package's `mdp_kpis` macro is generated
//! from it); the fact marts other parts of mdp read are named once in [`marts`].

pub mod kpi;
pub mod marts;

pub use marts::{Mart, Marts};

use std::collections::BTreeMap;
use std::path::PathBuf;

use mdp_core::Platform;
use mdp_transform::parse::EmbeddedPackage;
use mdp_transform::{DbtProject, Result};
use serde_json::{json, Value};

include!(concat!(env!("OUT_DIR"), "/package_files.rs"));

/// The package's name: configure it under `mdp_marketing:` in `dbt_project.yml`'s `models:`/`vars:`.
pub const PACKAGE_NAME: &str = "mdp_marketing";

/// The name of the dbt source the package reads raw tables from.
pub const RAW_SOURCE: &str = "mdp_raw";

/// One enabled source of the project, with the raw streams it loads.
#[derive(Debug, Clone)]
pub struct SourceTables {
    /// The source's name in mdp.yml (its raw tables are `raw.<name>__<stream>`).
    pub name: String,
    pub platform: Platform,
    /// Its streams, e.g. `accounts`, `campaigns`, `ad_groups`, `ads`, `ad_daily`, `campaign_daily`.
    pub streams: Vec<String>,
}

/// The package for a project with these enabled sources and reporting currency, or `None` when no
/// source is enabled (there is nothing to model).
pub fn package(
    sources: &[SourceTables],
    reporting_currency: &str,
    raw_schema: &str,
) -> Result<Option<EmbeddedPackage>> {
    if sources.is_empty() {
        return Ok(None);
    }
    let mut files: BTreeMap<PathBuf, String> =
        FILES.iter().map(|(path, text)| (PathBuf::from(path), (*text).to_string())).collect();
    let project_text = files.remove(&PathBuf::from("dbt_project.yml")).expect("the package has a dbt_project.yml");
    let root = PathBuf::from(PACKAGE_NAME);
    let mut project = DbtProject::from_yaml(&root, &project_text)?;

    let mut by_platform: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for source in sources {
        by_platform.entry(source.platform.as_str()).or_default().push(&source.name);
    }
    project.vars.insert("mdp_sources".into(), json!(by_platform));
    project.vars.insert("mdp_reporting_currency".into(), Value::from(reporting_currency.to_ascii_uppercase()));
    files.insert(PathBuf::from("models/staging/_mdp_raw_sources.yml"), sources_yaml(sources, raw_schema));
    let declared = declared_platforms(sources);
    if !declared.is_empty() {
        // The marts' accepted platform values name the declared platforms of this project too.
        let marts = files.get_mut(&PathBuf::from(MARTS_YML)).expect("the package documents its marts");
        let extra: String = declared.iter().map(|p| format!("\n          - {p}")).collect();
        *marts = marts.replace("\n          - linkedin_ads", &format!("\n          - linkedin_ads{extra}"));
    }
    for platform in declared {
        files.extend(declared_staging(platform));
    }
    files.insert(PathBuf::from(kpi::MACROS_PATH), kpi::macros_sql());
    Ok(Some(EmbeddedPackage { project, files }))
}

/// The marts' properties file (its `accepted_values` of `platform` list the built-in platforms).
const MARTS_YML: &str = "models/marts/_marts.yml";

/// The declared platforms (connector specs) among the enabled sources, each once.
fn declared_platforms(sources: &[SourceTables]) -> Vec<Platform> {
    let mut platforms: Vec<Platform> =
        sources.iter().map(|source| source.platform).filter(|platform| platform.is_declared()).collect();
    platforms.sort();
    platforms.dedup();
    platforms
}

/// The staging models of a declared platform, as the built-in platforms' are written: one per
/// stream a spec defines, each a call of the package's staging macros (so a YAML connector's rows
/// flow into the same intermediate models, marts and reconciliation tests).
fn declared_staging(platform: Platform) -> Vec<(PathBuf, String)> {
    let name = platform.as_str();
    let streams = [
        ("accounts", "account snapshots", "mdp_stage_entities"),
        ("campaigns", "campaign snapshots", "mdp_stage_entities"),
        ("ad_groups", "ad group snapshots", "mdp_stage_entities"),
        ("ads", "ad snapshots", "mdp_stage_entities"),
        ("ad_daily", "daily ad performance", "mdp_stage_performance"),
    ];
    streams
        .into_iter()
        .map(|(stream, what, stage)| {
            let path = PathBuf::from(format!("models/staging/{name}/stg_{name}__{stream}.sql"));
            let sql = format!(
                "-- {name} {what}, in the common vocabulary (generated for its connector spec).\n\
                 {{{{ config(enabled=mdp_platform_enabled('{name}')) }}}}\n\
                 {{{{ {stage}('{name}', '{stream}') }}}}\n"
            );
            (path, sql)
        })
        .collect()
}

/// The `mdp_raw` source: one table per enabled source and stream, as the loader names them.
fn sources_yaml(sources: &[SourceTables], raw_schema: &str) -> String {
    let mut tables = Vec::new();
    for source in sources {
        for stream in &source.streams {
            tables.push(json!({
                "name": format!("{}__{stream}", source.name),
                "description": format!("{} `{stream}` rows as the connector loaded them (typed columns plus the API's own record in _mdp_payload).", source.platform.as_str()),
            }));
        }
    }
    let doc = json!({
        "version": 2,
        "sources": [{
            "name": RAW_SOURCE,
            "schema": raw_schema,
            "description": "The raw layer written by `mdp ingest`: one table per source and stream, replaced by date window.",
            "loaded_at_field": "_mdp_extracted_at",
            "tables": tables,
        }],
    });
    // JSON is YAML.
    serde_json::to_string_pretty(&doc).expect("plain JSON")
}
