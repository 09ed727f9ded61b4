//! Node configuration and dbt's inheritance rules.
//!
//! A node's config is layered, later layers winning key by key (dbt's precedence):
//! 1. `dbt_project.yml` folder configs (`models: <project>: staging: +materialized: view`), outer
//!    folders first;
//! 2. the node's properties file entry (`config:` under the model in `schema.yml`);
//! 3. the node's own `{{ config(...) }}` call.
//!
//! `tags`, `pre-hook` and `post-hook` accumulate across layers instead of replacing.

use indexmap::IndexMap;
use serde_json::Value;

/// A resolved config. Typed fields for what the engine acts on; `extra` keeps everything else
/// (`meta`, `persist_docs`, adapter-specific keys) for `config.get()` and `manifest.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    pub enabled: bool,
    pub materialized: String,
    pub schema: Option<String>,
    pub database: Option<String>,
    pub alias: Option<String>,
    pub tags: Vec<String>,
    pub pre_hook: Vec<String>,
    pub post_hook: Vec<String>,
    pub unique_key: Vec<String>,
    pub incremental_strategy: Option<String>,
    pub on_schema_change: String,
    /// `Some(false)` pins a model so `--full-refresh` does not rebuild it.
    pub full_refresh: Option<bool>,
    // Tests.
    pub severity: String,
    pub warn_if: String,
    pub error_if: String,
    pub where_: Option<String>,
    pub limit: Option<u64>,
    // Seeds.
    pub column_types: IndexMap<String, String>,
    pub delimiter: String,
    pub quote_columns: Option<bool>,
    pub extra: IndexMap<String, Value>,
}

impl NodeConfig {
    /// Defaults per resource type: models are views, seeds are tables, tests are `test`.
    pub fn defaults(materialized: &str) -> Self {
        NodeConfig {
            enabled: true,
            materialized: materialized.to_string(),
            schema: None,
            database: None,
            alias: None,
            tags: Vec::new(),
            pre_hook: Vec::new(),
            post_hook: Vec::new(),
            unique_key: Vec::new(),
            incremental_strategy: None,
            on_schema_change: "ignore".to_string(),
            full_refresh: None,
            severity: "ERROR".to_string(),
            warn_if: "!= 0".to_string(),
            error_if: "!= 0".to_string(),
            where_: None,
            limit: None,
            column_types: IndexMap::new(),
            delimiter: ",".to_string(),
            quote_columns: None,
            extra: IndexMap::new(),
        }
    }

    /// Apply one layer of settings (keys without a leading `+`). Returns the keys it did not
    /// understand the value of, as `(key, reason)`.
    pub fn apply(&mut self, layer: &IndexMap<String, Value>) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (key, value) in layer {
            let key = key.trim_start_matches('+');
            let key_norm = key.replace('-', "_");
            let mut bad = |why: &str| problems.push((key.to_string(), why.to_string()));
            match key_norm.as_str() {
                "enabled" => match as_bool(value) {
                    Some(b) => self.enabled = b,
                    None => bad("expected true or false"),
                },
                "materialized" => match value.as_str() {
                    Some(s) => self.materialized = s.to_string(),
                    None => bad("expected a materialization name"),
                },
                "schema" => self.schema = opt_string(value),
                "database" => self.database = opt_string(value),
                "alias" => self.alias = opt_string(value),
                "tags" | "tag" => {
                    for t in string_list(value) {
                        if !self.tags.contains(&t) {
                            self.tags.push(t);
                        }
                    }
                }
                "pre_hook" => self.pre_hook.extend(hook_list(value)),
                "post_hook" => self.post_hook.extend(hook_list(value)),
                "unique_key" => self.unique_key = string_list(value),
                "incremental_strategy" => self.incremental_strategy = opt_string(value),
                "on_schema_change" => match value.as_str() {
                    Some(s @ ("ignore" | "fail" | "append_new_columns" | "sync_all_columns")) => {
                        self.on_schema_change = s.to_string()
                    }
                    _ => bad("expected one of ignore, fail, append_new_columns, sync_all_columns"),
                },
                "full_refresh" => self.full_refresh = as_bool(value),
                "severity" => match value.as_str().map(|s| s.to_ascii_uppercase()) {
                    Some(s) if s == "ERROR" || s == "WARN" => self.severity = s,
                    _ => bad("expected error or warn"),
                },
                "warn_if" => self.warn_if = scalar_string(value),
                "error_if" => self.error_if = scalar_string(value),
                "where" => self.where_ = opt_string(value),
                "limit" => self.limit = value.as_u64(),
                "column_types" => {
                    if let Value::Object(map) = value {
                        for (k, v) in map {
                            self.column_types.insert(k.clone(), scalar_string(v));
                        }
                    } else {
                        bad("expected a mapping of column name to type");
                    }
                }
                "delimiter" => self.delimiter = scalar_string(value),
                "quote_columns" => self.quote_columns = as_bool(value),
                "meta" => {
                    // meta merges key by key, like dbt.
                    let entry =
                        self.extra.entry("meta".to_string()).or_insert_with(|| Value::Object(Default::default()));
                    if let (Value::Object(target), Value::Object(src)) = (entry, value) {
                        for (k, v) in src {
                            target.insert(k.clone(), v.clone());
                        }
                    }
                }
                _ => {
                    self.extra.insert(key.to_string(), value.clone());
                }
            }
        }
        problems
    }

    /// The config as a JSON object, as `manifest.json` and `config.get()` see it.
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("enabled".into(), Value::Bool(self.enabled));
        m.insert("materialized".into(), Value::String(self.materialized.clone()));
        m.insert("schema".into(), self.schema.clone().map(Value::String).unwrap_or(Value::Null));
        m.insert("database".into(), self.database.clone().map(Value::String).unwrap_or(Value::Null));
        m.insert("alias".into(), self.alias.clone().map(Value::String).unwrap_or(Value::Null));
        m.insert("tags".into(), Value::from(self.tags.clone()));
        let hooks = |h: &[String]| {
            Value::from(h.iter().map(|s| serde_json::json!({"sql": s, "transaction": true})).collect::<Vec<_>>())
        };
        m.insert("pre-hook".into(), hooks(&self.pre_hook));
        m.insert("post-hook".into(), hooks(&self.post_hook));
        m.insert(
            "unique_key".into(),
            match self.unique_key.len() {
                0 => Value::Null,
                1 => Value::String(self.unique_key[0].clone()),
                _ => Value::from(self.unique_key.clone()),
            },
        );
        m.insert(
            "incremental_strategy".into(),
            self.incremental_strategy.clone().map(Value::String).unwrap_or(Value::Null),
        );
        m.insert("on_schema_change".into(), Value::String(self.on_schema_change.clone()));
        m.insert("full_refresh".into(), self.full_refresh.map(Value::Bool).unwrap_or(Value::Null));
        if self.materialized == "test" {
            m.insert("severity".into(), Value::String(self.severity.clone()));
            m.insert("warn_if".into(), Value::String(self.warn_if.clone()));
            m.insert("error_if".into(), Value::String(self.error_if.clone()));
            m.insert("where".into(), self.where_.clone().map(Value::String).unwrap_or(Value::Null));
            m.insert("limit".into(), self.limit.map(Value::from).unwrap_or(Value::Null));
        }
        if self.materialized == "seed" {
            m.insert("column_types".into(), serde_json::to_value(&self.column_types).unwrap_or(Value::Null));
            m.insert("delimiter".into(), Value::String(self.delimiter.clone()));
            m.insert("quote_columns".into(), self.quote_columns.map(Value::Bool).unwrap_or(Value::Null));
        }
        if !m.contains_key("meta") {
            m.insert("meta".into(), Value::Object(Default::default()));
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m)
    }
}

/// Config keys dbt recognises without a `+` prefix in `dbt_project.yml` (so they are not taken for
/// folder names).
pub const KNOWN_CONFIG_KEYS: &[&str] = &[
    "enabled",
    "materialized",
    "schema",
    "database",
    "alias",
    "tags",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "unique_key",
    "incremental_strategy",
    "on_schema_change",
    "full_refresh",
    "severity",
    "warn_if",
    "error_if",
    "where",
    "limit",
    "column_types",
    "delimiter",
    "quote_columns",
    "meta",
    "persist_docs",
    "docs",
    "grants",
    "contract",
    "store_failures",
    "group",
    "access",
    "quoting",
    "sql_header",
    // Snapshots.
    "strategy",
    "updated_at",
    "check_cols",
    "target_schema",
    "target_database",
    "invalidate_hard_deletes",
    "hard_deletes",
    "snapshot_meta_column_names",
    "dbt_valid_to_current",
];

fn as_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" => Some(true),
            "false" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn opt_string(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        other => Some(scalar_string(other)),
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn string_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(scalar_string).collect(),
        other => vec![scalar_string(other)],
    }
}

fn hook_list(v: &Value) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().flat_map(hook_list).collect(),
        Value::Object(m) => m.get("sql").map(scalar_string).into_iter().collect(),
        other => vec![scalar_string(other)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn layer(v: Value) -> IndexMap<String, Value> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn later_layers_win_but_tags_and_hooks_accumulate() {
        let mut c = NodeConfig::defaults("view");
        c.apply(&layer(json!({"+materialized": "table", "+tags": ["a"], "+post-hook": "grant x"})));
        c.apply(&layer(json!({"materialized": "incremental", "tags": "b", "post_hook": ["analyze y"]})));
        assert_eq!(c.materialized, "incremental");
        assert_eq!(c.tags, vec!["a", "b"]);
        assert_eq!(c.post_hook, vec!["grant x", "analyze y"]);
    }

    #[test]
    fn bad_values_are_reported_with_their_key() {
        let mut c = NodeConfig::defaults("view");
        let problems = c.apply(&layer(json!({"on_schema_change": "explode", "enabled": "perhaps"})));
        let mut keys: Vec<_> = problems.iter().map(|p| p.0.as_str()).collect();
        keys.sort();
        assert_eq!(keys, vec!["enabled", "on_schema_change"]);
    }

    #[test]
    fn unique_key_accepts_a_string_or_a_list() {
        let mut c = NodeConfig::defaults("incremental");
        c.apply(&layer(json!({"unique_key": "id"})));
        assert_eq!(c.unique_key, vec!["id"]);
        c.apply(&layer(json!({"unique_key": ["a", "b"]})));
        assert_eq!(c.unique_key, vec!["a", "b"]);
    }
}
