//! The SQL transformation engine: runs dbt-compatible projects on mdp's warehouses.
//!
//! Phases (dbt-fusion's map, at rust-analyzer's granularity):
//! [`project`]/[`profiles`] load `dbt_project.yml` and `profiles.yml` → [`parse`] renders every
//! node once to learn its `ref`/`source`/`config` calls ([`jinja`]) → [`graph`] (DAG, cycles) →
//! [`selector`] → [`compile`] (render again with the real relation names, inline ephemerals) →
//! [`run`] (each node's [`materialization`] planned, then run through `mdp-warehouse` by
//! [`materialize`]; [`seed`] reads CSV files) → [`artifacts`].
//! Beside them, [`docs`] renders the documentation site and the lineage graph from a parsed project.
//!
//! Architecture invariants: loading, parsing and compiling do no database I/O (what they need to
//! know about the warehouse, which relations exist, is passed in); materializations reach the
//! database only through `mdp-warehouse`; nothing here speaks HTTP.

pub mod artifacts;
pub mod compile;
pub mod config;
pub mod docs;
pub mod error;
pub mod graph;
pub mod introspect;
pub mod jinja;
pub mod manifest;
pub mod materialization;
pub mod materialize;
pub mod modules;
pub mod namespace;
pub mod packages;
pub mod parse;
pub mod profiles;
pub mod project;
pub mod run;
pub mod seed;
pub mod selector;
pub mod snapshot;
pub mod state;
pub mod synth;
pub mod unit;

use std::path::PathBuf;

use indexmap::IndexMap;

pub use crate::error::{Result, TransformError};
pub use crate::parse::Parsed;
pub use crate::profiles::{Target, TargetKind};
pub use crate::project::DbtProject;

/// How to find and load a project.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub project_dir: PathBuf,
    pub profiles_dir: Option<PathBuf>,
    /// `--target`: a target of the profile.
    pub target: Option<String>,
    /// `--vars`, already parsed.
    pub vars: IndexMap<String, serde_json::Value>,
    /// A target to use when the project has no `profiles.yml` (mdp.yml's warehouse).
    pub fallback_target: Option<Target>,
    /// The project name to use when there is no `dbt_project.yml` (an mdp project: models/, seeds/,
    /// macros/, tests/ with dbt's defaults). `None`: `dbt_project.yml` is required.
    pub implicit_project_name: Option<String>,
    /// Packages shipped inside the binary, parsed beside the project (mdp's marketing models).
    pub packages: Vec<parse::EmbeddedPackage>,
}

/// Load `dbt_project.yml`, resolve the target from `profiles.yml`, and parse the project.
pub fn load(options: &LoadOptions) -> Result<Parsed> {
    let root = &options.project_dir;
    let project = if root.join("dbt_project.yml").is_file() {
        DbtProject::load_with_vars(root, &options.vars)?
    } else if let Some(name) = &options.implicit_project_name {
        DbtProject::implicit(root, name)
    } else {
        return Err(TransformError::config(
            root.join("dbt_project.yml"),
            "not found: run this in a dbt project folder (one with dbt_project.yml) or an mdp project (mdp.yml), or pass --project-dir",
        ));
    };
    let target = resolve_target(&project, options)?;
    parse::parse_with_packages(project, options.packages.clone(), target, options.vars.clone())
}

/// The target a project runs on: its profile in `profiles.yml`, else the fallback.
pub fn resolve_target(project: &DbtProject, options: &LoadOptions) -> Result<Target> {
    let profile = project.profile.clone().unwrap_or_else(|| project.name.clone());
    match profiles::find_profiles(options.profiles_dir.as_deref(), &project.root) {
        Some(file) => {
            let env = jinja::JinjaEnv::new();
            let vars = std::sync::Arc::new(options.vars.clone());
            let render = |s: &str| -> Result<String> {
                let scope = jinja::RenderScope::before_target(jinja::Phase::Compile, &project.name, Default::default(), vars.clone());
                env.render_str(&file.display().to_string(), s, minijinja::Value::UNDEFINED, scope).map(|(s, _)| s)
            };
            profiles::load_target(&file, &profile, options.target.as_deref(), &render)
        }
        None => options.fallback_target.clone().ok_or_else(|| {
            let searched: Vec<String> = profiles::profile_search_dirs(options.profiles_dir.as_deref(), &project.root).iter().map(|d| d.display().to_string()).collect();
            TransformError::config(
                project.root.join("dbt_project.yml"),
                format!("no profiles.yml found for profile `{profile}` (looked in {}); add one, pass --profiles-dir, or set DBT_PROFILES_DIR", searched.join(", ")),
            )
        }),
    }
}
