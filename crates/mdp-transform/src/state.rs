//! State comparison for CI: `--state DIR` reads the `manifest.json` (and `run_results.json`) of an
//! earlier run — production's, usually — so that `state:modified`, `state:new` and `result:error`
//! select what a pull request changed or what failed, and `--defer` resolves the refs of what is not
//! built to production's relations.
//!
//! As dbt: a node is `new` when the state manifest lacks it; `modified.body` when its file's
//! sha256 differs; `modified.configs` when a config both manifests carry differs;
//! `modified.relation` when its `database`, `schema` or `alias` config differs (as written, not as
//! rendered for the target: a dev run compares with production's state); `modified.macros` when a macro
//! it calls (directly) has different text; `modified` is any of these, or new. The comparison reads
//! manifests written by mdp or by dbt-core (v12): checksums are sha256 of the file as in dbt.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, TransformError};
use crate::manifest::{Manifest, Node, RelationName, ResourceType};

/// One node as the state manifest has it.
#[derive(Debug, Clone, Default)]
pub struct StateNode {
    pub checksum: String,
    pub config: serde_json::Map<String, Value>,
    pub relation: Option<RelationName>,
    pub macros: Vec<String>,
}

/// What `--state DIR` holds.
#[derive(Debug, Clone, Default)]
pub struct State {
    pub dir: PathBuf,
    pub nodes: HashMap<String, StateNode>,
    /// Macro unique id → its text (`macro_sql`).
    pub macros: HashMap<String, String>,
    /// Node unique id → status of the state's `run_results.json` (`success`, `error`, `fail`, …).
    pub results: HashMap<String, String>,
}

/// Which `state:` comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateCheck {
    New,
    Old,
    Modified,
    Unmodified,
    Body,
    Configs,
    Relation,
    Macros,
}

impl StateCheck {
    pub fn parse(value: &str) -> Option<StateCheck> {
        Some(match value {
            "new" => StateCheck::New,
            "old" => StateCheck::Old,
            "modified" => StateCheck::Modified,
            "unmodified" => StateCheck::Unmodified,
            "modified.body" => StateCheck::Body,
            "modified.configs" => StateCheck::Configs,
            "modified.relation" => StateCheck::Relation,
            "modified.macros" => StateCheck::Macros,
            _ => return None,
        })
    }

    pub const NAMES: &'static [&'static str] = &[
        "new",
        "old",
        "modified",
        "unmodified",
        "modified.body",
        "modified.configs",
        "modified.relation",
        "modified.macros",
    ];
}

/// Config keys whose change does not make a node modified (dbt ignores them too, or they are
/// bookkeeping).
const IGNORED_CONFIG_KEYS: &[&str] = &["meta", "docs", "description", "tags", "group", "grants", "access", "packages"];

impl State {
    /// Read `dir/manifest.json` (required) and `dir/run_results.json` (if there).
    pub fn load(dir: &Path) -> Result<State> {
        let manifest_file = dir.join("manifest.json");
        let text = std::fs::read_to_string(&manifest_file).map_err(|e| {
            TransformError::config(
                &manifest_file,
                format!("--state {}: cannot read manifest.json ({e}); point --state at the target/ folder of the run to compare with", dir.display()),
            )
        })?;
        let manifest: Value = serde_json::from_str(&text)
            .map_err(|e| TransformError::config(&manifest_file, format!("not a dbt manifest: {e}")))?;
        let mut nodes = HashMap::new();
        for section in ["nodes", "sources", "seeds"] {
            if let Some(Value::Object(entries)) = manifest.get(section) {
                for (id, node) in entries {
                    nodes.insert(id.clone(), state_node(node));
                }
            }
        }
        let macros = match manifest.get("macros") {
            Some(Value::Object(entries)) => entries
                .iter()
                .map(|(id, m)| (id.clone(), m.get("macro_sql").and_then(Value::as_str).unwrap_or("").to_string()))
                .collect(),
            _ => HashMap::new(),
        };
        let mut results = HashMap::new();
        let results_file = dir.join("run_results.json");
        if let Ok(text) = std::fs::read_to_string(&results_file) {
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| TransformError::config(&results_file, format!("not dbt run results: {e}")))?;
            for r in value.get("results").and_then(Value::as_array).into_iter().flatten() {
                if let (Some(id), Some(status)) =
                    (r.get("unique_id").and_then(Value::as_str), r.get("status").and_then(Value::as_str))
                {
                    results.insert(id.to_string(), status.to_string());
                }
            }
        }
        Ok(State { dir: dir.to_path_buf(), nodes, macros, results })
    }

    /// Whether `node` (of the current `manifest`) passes `check`.
    pub fn check(&self, check: StateCheck, node: &Node, manifest: &Manifest) -> bool {
        let old = self.nodes.get(&node.unique_id);
        match (check, old) {
            (StateCheck::New, old) => old.is_none(),
            (StateCheck::Old, old) => old.is_some(),
            (StateCheck::Modified, None) => true,
            (StateCheck::Unmodified, None) => false,
            (_, None) => false,
            (StateCheck::Modified, Some(old)) => self.modified(node, old, manifest),
            (StateCheck::Unmodified, Some(old)) => !self.modified(node, old, manifest),
            (StateCheck::Body, Some(old)) => body_modified(node, old),
            (StateCheck::Configs, Some(old)) => configs_modified(node, old),
            (StateCheck::Relation, Some(old)) => relation_modified(node, old),
            (StateCheck::Macros, Some(_)) => self.macros_modified(node, manifest),
        }
    }

    fn modified(&self, node: &Node, old: &StateNode, manifest: &Manifest) -> bool {
        // A source has no body; dbt compares its properties, which mdp does not keep.
        if node.resource_type == ResourceType::Source {
            return false;
        }
        body_modified(node, old)
            || configs_modified(node, old)
            || relation_modified(node, old)
            || self.macros_modified(node, manifest)
    }

    /// A macro the node calls is new or has other text than in the state.
    fn macros_modified(&self, node: &Node, manifest: &Manifest) -> bool {
        node.depends_on_macros.iter().any(|id| match (manifest.macros.get(id), self.macros.get(id)) {
            (Some(now), Some(then)) => now.macro_sql != *then,
            (Some(_), None) => true,
            _ => false,
        })
    }

    /// The relation the state's run built `unique_id` into, for `--defer`.
    pub fn relation(&self, unique_id: &str) -> Option<&RelationName> {
        self.nodes.get(unique_id).and_then(|n| n.relation.as_ref())
    }
}

fn body_modified(node: &Node, old: &StateNode) -> bool {
    node.resource_type != ResourceType::Source && node.checksum != old.checksum
}

fn configs_modified(node: &Node, old: &StateNode) -> bool {
    let Value::Object(now) = node.config.to_json() else { return false };
    now.iter().filter(|(k, _)| !IGNORED_CONFIG_KEYS.contains(&k.as_str()) && !test_relation_key(node, k)).any(
        |(k, v)| {
            old.config.get(k).is_some_and(|then| match (k.as_str(), v, then) {
                // dbt writes `error`, mdp `ERROR`.
                ("severity", Value::String(a), Value::String(b)) => !a.eq_ignore_ascii_case(b),
                _ => !same_config_value(v, then),
            })
        },
    )
}

/// A test's schema/alias/database only name where failures are stored (dbt writes its
/// `dbt_test__audit` default): not a change.
fn test_relation_key(node: &Node, key: &str) -> bool {
    node.resource_type == ResourceType::Test && matches!(key, "schema" | "alias" | "database")
}

/// Config values compare as dbt writes them: `null` and a missing list are alike, hooks by their SQL.
fn same_config_value(now: &Value, then: &Value) -> bool {
    match (now, then) {
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_config_value(x, y))
        }
        (Value::Object(a), Value::String(s)) | (Value::String(s), Value::Object(a)) => {
            a.get("sql").and_then(Value::as_str) == Some(s.as_str())
        }
        (Value::Object(a), Value::Object(b)) if a.contains_key("sql") || b.contains_key("sql") => {
            a.get("sql") == b.get("sql")
        }
        _ => now == then,
    }
}

/// As dbt: the `database`, `schema` and `alias` configs as written, not the relation they render to,
/// so that a dev target compared with production's state is not all modified.
fn relation_modified(node: &Node, old: &StateNode) -> bool {
    let Value::Object(now) = node.config.to_json() else { return false };
    if node.resource_type == ResourceType::Test {
        return false;
    }
    ["database", "schema", "alias"].iter().any(|key| {
        let value = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
        value(now.get(*key)) != value(old.config.get(*key))
    })
}

fn state_node(node: &Value) -> StateNode {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let relation = match (text(node.get("schema")), text(node.get("alias")).or_else(|| text(node.get("identifier")))) {
        (Some(schema), Some(identifier)) if node.get("relation_name").is_some_and(|r| !r.is_null()) => {
            Some(RelationName { database: text(node.get("database")), schema, identifier })
        }
        _ => None,
    };
    StateNode {
        checksum: node.pointer("/checksum/checksum").and_then(Value::as_str).unwrap_or("").to_string(),
        config: node.get("config").and_then(Value::as_object).cloned().unwrap_or_default(),
        relation,
        macros: node
            .pointer("/depends_on/macros")
            .and_then(Value::as_array)
            .map(|m| m.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default(),
    }
}

/// `--defer`: `ref()`s to nodes outside `selected` resolve to the relations the state's run built,
/// where this target has not built them (`favor_state`: always). Returns the nodes deferred.
pub fn defer(
    parsed: &mut crate::parse::Parsed,
    state: &State,
    selected: &[String],
    existing: &crate::compile::Existing,
    favor_state: bool,
) -> Vec<String> {
    let selected: std::collections::HashSet<&str> = selected.iter().map(String::as_str).collect();
    let mut resolver = (*parsed.resolver).clone();
    let mut deferred = Vec::new();
    for target in resolver.refs.values_mut() {
        if target.ephemeral || selected.contains(target.unique_id.as_str()) {
            continue;
        }
        let built_here =
            target.relation.as_ref().is_some_and(|r| existing.contains_key(&(r.schema.clone(), r.identifier.clone())));
        if built_here && !favor_state {
            continue;
        }
        if let Some(relation) = state.relation(&target.unique_id) {
            target.relation = Some(relation.clone());
            deferred.push(target.unique_id.clone());
        }
    }
    parsed.resolver = std::sync::Arc::new(resolver);
    deferred.sort();
    deferred
}
