//! The crate dependency rules of ARCHITECTURE.md, enforced (as DataFusion's `depcheck` does).
//!
//! Reads the workspace's dependency graph from `cargo metadata` and fails when a crate depends on a
//! workspace crate its layer must not see, or on a third-party crate that belongs to another layer (a
//! database driver outside the warehouse layer, an HTTP client in a crate that must stay pure).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// Per workspace crate: the workspace crates it may depend on (normal and build dependencies; dev
/// dependencies are free, tests may wire anything together).
const ALLOWED: &[(&str, &[&str])] = &[
    // Pure vocabulary: no I/O, no other mdp crate.
    ("mdp-core", &[]),
    // The only crate that runs SQL; knows nothing of platforms, projects or models.
    ("mdp-warehouse", &["mdp-core", "mdp-cloud"]),
    // The warehouse layer's HTTP clients to cloud warehouses (no DuckDB, so it builds on its own).
    ("mdp-cloud", &["mdp-core"]),
    // The only crate that speaks HTTP to platforms; never runs SQL, never reads mdp.yml.
    ("mdp-sources", &["mdp-core", "mdp-spec"]),
    // Connector specs: pure data (YAML → a validated spec and its platform's kind).
    ("mdp-spec", &["mdp-core"]),
    // Must share no code with the connectors (it must not agree with their mistakes).
    ("mdp-sandbox", &["mdp-core"]),
    // Reads files and environment variables only: static platform descriptions come from mdp-core.
    ("mdp-project", &["mdp-core", "mdp-spec"]),
    ("mdp-transform", &["mdp-core", "mdp-warehouse"]),
    ("mdp-marketing", &["mdp-core", "mdp-warehouse", "mdp-transform"]),
    ("mdp-monitor", &["mdp-core", "mdp-project", "mdp-warehouse", "mdp-transform", "mdp-marketing"]),
    // Runs tasks; the checks task is injected by the CLI, so it never depends on the monitor.
    ("mdp-orchestrator", &["mdp-core", "mdp-warehouse", "mdp-sources", "mdp-transform"]),
    // A reader of the warehouse: never speaks to platforms, never runs pipelines itself.
    ("mdp-server", &["mdp-core", "mdp-project", "mdp-warehouse", "mdp-transform", "mdp-monitor", "mdp-marketing"]),
];

/// Third-party crates that only some layers may use (normal dependencies).
const LAYERED: &[(&str, &[&str])] = &[
    ("duckdb", &["mdp-warehouse"]),
    ("tokio-postgres", &["mdp-warehouse"]),
    ("tokio-postgres-rustls", &["mdp-warehouse"]),
    ("postgres-types", &["mdp-warehouse"]),
    // An HTTP client: the connectors, the monitor's notifiers and lineage endpoint, and the cloud
    // warehouses' clients.
    ("reqwest", &["mdp-sources", "mdp-monitor", "mdp-cloud"]),
    // An HTTP server: the sandbox's imitated APIs and the web UI.
    ("axum", &["mdp-sandbox", "mdp-server"]),
];

/// The binary wires everything together and may depend on every crate.
const TOP: &str = "mdp";

#[derive(serde::Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Package {
    id: String,
    name: String,
    dependencies: Vec<Dependency>,
}

#[derive(serde::Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
}

fn metadata() -> Metadata {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(&root)
        .output()
        .expect("run cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON")
}

/// Normal and build dependencies of each workspace member (dev dependencies are left out).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let meta = metadata();
    let members: BTreeSet<&String> = meta.workspace_members.iter().collect();
    meta.packages
        .iter()
        .filter(|p| members.contains(&p.id))
        .map(|p| {
            let deps =
                p.dependencies.iter().filter(|d| d.kind.as_deref() != Some("dev")).map(|d| d.name.clone()).collect();
            (p.name.clone(), deps)
        })
        .collect()
}

#[test]
fn every_crate_keeps_to_the_dependency_rules_of_its_layer() {
    let graph = graph();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for (krate, deps) in &graph {
        if krate == TOP {
            continue;
        }
        let Some(may) = allowed.get(krate.as_str()) else {
            problems.push(format!(
                "{krate}: a new workspace crate; add its allowed dependencies to ALLOWED in \
                 crates/mdp/tests/dependencies.rs and its layer to ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in deps.iter().filter(|d| graph.contains_key(*d)) {
            if !may.contains(&dep.as_str()) {
                problems.push(format!("{krate} depends on {dep}, which its layer must not see (ARCHITECTURE.md)"));
            }
        }
        for (third, users) in LAYERED {
            if deps.contains(*third) && !users.contains(&krate.as_str()) {
                problems.push(format!("{krate} depends on {third}, which belongs to {}", users.join(", ")));
            }
        }
    }
    assert!(problems.is_empty(), "dependency rules broken:\n  {}", problems.join("\n  "));
}

#[test]
fn the_rules_name_only_crates_that_exist() {
    // A renamed or removed crate must not leave a rule that silently checks nothing.
    let graph = graph();
    for (krate, may) in ALLOWED {
        assert!(graph.contains_key(*krate), "ALLOWED names {krate}, which is not a workspace crate");
        for dep in *may {
            assert!(graph.contains_key(*dep), "ALLOWED lets {krate} use {dep}, which is not a workspace crate");
        }
    }
    assert!(graph.contains_key(TOP));
}
