//! The parsed project: every node (model, seed, test, source) with its resolved config and edges.
//!
//! Built by [`crate::parse`], read by the DAG, the selector, the compiler and the runner, and written
//! to `target/manifest.json` in a shape close to dbt's (see [`crate::artifacts`]).

use std::collections::BTreeMap;
use std::path::PathBuf;

use indexmap::IndexMap;
use serde::Serialize;

use crate::config::NodeConfig;

/// What kind of resource a node is (dbt's `resource_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceType {
    Model,
    Seed,
    Test,
    Source,
    /// A `{% snapshot %}` block: a type-2 history table of a query.
    Snapshot,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Model => "model",
            ResourceType::Seed => "seed",
            ResourceType::Test => "test",
            ResourceType::Source => "source",
            ResourceType::Snapshot => "snapshot",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "model" => ResourceType::Model,
            "seed" => ResourceType::Seed,
            "test" | "data_test" => ResourceType::Test,
            "source" => ResourceType::Source,
            "snapshot" => ResourceType::Snapshot,
            _ => return None,
        })
    }
}

/// Where a relation lives in the warehouse. `database` is informational (dbt's three-part name);
/// SQL addresses relations as `"schema"."identifier"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct RelationName {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
}

/// A column as documented in a properties file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ColumnDoc {
    pub name: String,
    pub description: String,
    pub data_type: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub meta: IndexMap<String, serde_json::Value>,
}

/// A generic test's identity: which macro, which arguments (dbt's `test_metadata`).
#[derive(Debug, Clone, Serialize)]
pub struct TestMetadata {
    /// `unique`, `not_null`, `accepted_values`, `relationships` or a user-defined test's name.
    pub name: String,
    /// Package that defines the test macro, when given as `package.test_name`.
    pub namespace: Option<String>,
    /// Arguments as written in YAML (`column_name`, `values`, `to`, `field`, …), `model` excluded.
    pub kwargs: IndexMap<String, serde_json::Value>,
}

/// One node of the project graph.
#[derive(Debug, Clone)]
pub struct Node {
    /// dbt-style id: `model.<package>.<name>`, `seed.<package>.<name>`, `test.<package>.<name>.<hash>`,
    /// `source.<package>.<source>.<table>`.
    pub unique_id: String,
    pub name: String,
    pub resource_type: ResourceType,
    pub package: String,
    /// File that defines the node, relative to the project root (`models/staging/stg_x.sql`).
    pub original_file_path: PathBuf,
    /// Path within its resource folder (`staging/stg_x.sql`), dbt's `path`.
    pub path: PathBuf,
    /// Fully qualified name: package, folders, name.
    pub fqn: Vec<String>,
    /// The file's text as written (models, singular tests) or the synthesized Jinja (generic tests).
    pub raw_code: String,
    pub config: NodeConfig,
    /// Relation the node builds (models other than ephemeral, seeds) or reads (sources).
    pub relation: Option<RelationName>,
    /// `ref()` calls: (package, name) as written.
    pub refs: Vec<(Option<String>, String)>,
    /// `source()` calls: (source name, table name).
    pub sources: Vec<(String, String)>,
    /// Unique ids this node depends on (resolved from `refs` and `sources`), in first-use order.
    pub depends_on: Vec<String>,
    pub description: String,
    pub columns: IndexMap<String, ColumnDoc>,
    pub meta: IndexMap<String, serde_json::Value>,
    /// For generic tests: the test macro and its arguments.
    pub test_metadata: Option<TestMetadata>,
    /// For generic tests: the column the test is attached to.
    pub column_name: Option<String>,
    /// For generic tests: the unique id of the node the test is attached to.
    pub attached_node: Option<String>,
    /// For sources: `source_name`, `loaded_at_field` and `freshness` as written.
    pub source: Option<SourceDetails>,
    /// Checksum of `raw_code` (sha-like hex), for `state:modified`-style tooling.
    pub checksum: String,
    /// The macros its render called directly (`macro.<package>.<name>`), for `state:modified.macros`.
    pub depends_on_macros: Vec<String>,
    /// A dbt unit test (`unit_tests:`; a node of type test, id `unit_test.<package>.<model>.<name>`):
    /// what it gives the model and what it expects.
    pub unit_test: Option<Box<crate::unit::UnitTestDef>>,
    /// Its Jinja may query the warehouse (`run_query`, `adapter.get_columns_in_relation`, …, itself,
    /// through a macro, or through an ephemeral model it inlines): compiled when it runs.
    pub introspective: bool,
}

/// Source-only attributes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceDetails {
    pub source_name: String,
    pub source_description: String,
    pub loaded_at_field: Option<String>,
    pub freshness: Option<serde_json::Value>,
    pub loader: String,
}

impl Node {
    /// Whether the node is a model materialized as `ephemeral` (inlined, never built).
    pub fn is_ephemeral(&self) -> bool {
        self.resource_type == ResourceType::Model && self.config.materialized == "ephemeral"
    }

    /// Whether the node is a dbt unit test.
    pub fn is_unit_test(&self) -> bool {
        self.unit_test.is_some()
    }
}

/// A Jinja macro found in the project (`macros/*.sql`, `{% test %}` blocks) or shipped with mdp.
#[derive(Debug, Clone, Serialize)]
pub struct MacroDef {
    pub unique_id: String,
    pub name: String,
    pub package: String,
    pub original_file_path: PathBuf,
    /// The macro's own text, `{% macro … %}` to `{% endmacro %}` (what `state:modified.macros` compares).
    pub macro_sql: String,
}

/// A `{% docs name %}` block.
#[derive(Debug, Clone, Serialize)]
pub struct DocBlock {
    pub unique_id: String,
    pub name: String,
    pub package: String,
    pub original_file_path: PathBuf,
    pub block_contents: String,
}

/// The whole parsed project.
#[derive(Debug, Clone, Default)]
pub struct Manifest {
    /// Root project name (`name:` of `dbt_project.yml`).
    pub project_name: String,
    /// Every enabled node by unique id, in a stable order (files sorted by path).
    pub nodes: IndexMap<String, Node>,
    /// Nodes switched off with `enabled: false`, kept for `manifest.json` and for clear errors.
    pub disabled: IndexMap<String, Node>,
    pub macros: IndexMap<String, MacroDef>,
    pub docs: IndexMap<String, DocBlock>,
    /// Model/seed/snapshot lookup: (package, name) → unique id.
    pub by_name: BTreeMap<(String, String), String>,
}

impl Manifest {
    /// Resolve `ref(name)` or `ref(package, name)` as written in `from_package`: the calling package
    /// first, then the root project, then any package (dbt's search order).
    pub fn resolve_ref(&self, from_package: &str, package: Option<&str>, name: &str) -> Option<&Node> {
        if let Some(p) = package {
            return self.by_name.get(&(p.to_string(), name.to_string())).and_then(|id| self.nodes.get(id));
        }
        let try_pkg = |p: &str| self.by_name.get(&(p.to_string(), name.to_string())).and_then(|id| self.nodes.get(id));
        try_pkg(from_package)
            .or_else(|| try_pkg(&self.project_name))
            .or_else(|| self.by_name.iter().find(|((_, n), _)| n == name).and_then(|(_, id)| self.nodes.get(id)))
    }

    /// The node names closest to `name` among models and seeds, for "did you mean" hints.
    pub fn closest_ref(&self, name: &str) -> Option<String> {
        self.by_name
            .keys()
            .map(|(_, n)| (strsim::jaro_winkler(name, n), n))
            .filter(|(score, _)| *score > 0.75)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, n)| n.clone())
    }

    /// Unique id of a source table.
    pub fn source_id(&self, source: &str, table: &str) -> Option<&str> {
        self.nodes
            .values()
            .find(|n| {
                n.resource_type == ResourceType::Source
                    && n.source.as_ref().is_some_and(|s| s.source_name == source)
                    && n.name == table
            })
            .map(|n| n.unique_id.as_str())
    }
}
