//! `dbt_project.yml`: the project's name, folders, vars and folder-level configs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde_json::Value;

use crate::config::{NodeConfig, KNOWN_CONFIG_KEYS};
use crate::error::{Result, TransformError};

/// A loaded `dbt_project.yml`.
#[derive(Debug, Clone)]
pub struct DbtProject {
    pub root: PathBuf,
    pub name: String,
    pub version: Option<String>,
    pub profile: Option<String>,
    pub model_paths: Vec<String>,
    pub seed_paths: Vec<String>,
    pub macro_paths: Vec<String>,
    pub test_paths: Vec<String>,
    pub docs_paths: Vec<String>,
    /// `snapshot-paths`: where `{% snapshot %}` blocks live.
    pub snapshot_paths: Vec<String>,
    pub target_path: String,
    /// `packages-install-path`: where `dbt deps` installs packages (default `dbt_packages`).
    pub packages_install_path: String,
    /// `dispatch:`: macro namespace → the packages `adapter.dispatch` searches, in order.
    pub dispatch: HashMap<String, Vec<String>>,
    pub vars: IndexMap<String, Value>,
    /// Config trees: `models:`, `seeds:`, `data_tests:` (or `tests:`), `sources:`.
    pub model_configs: Value,
    pub seed_configs: Value,
    /// The `snapshots:` config tree.
    pub snapshot_configs: Value,
    pub test_configs: Value,
    pub source_configs: Value,
    pub on_run_start: Vec<String>,
    pub on_run_end: Vec<String>,
}

impl DbtProject {
    /// Read `dbt_project.yml` in `root`.
    pub fn load(root: &Path) -> Result<DbtProject> {
        Self::load_with_vars(root, &IndexMap::new())
    }

    /// Read `dbt_project.yml` in `root`, rendering its Jinja as dbt does (`env_var()`, `var()` of
    /// `cli_vars`) in every value but `vars:`, the run hooks and `pre-hook`/`post-hook` configs,
    /// which are rendered when they are used.
    pub fn load_with_vars(root: &Path, cli_vars: &IndexMap<String, Value>) -> Result<DbtProject> {
        let file = root.join("dbt_project.yml");
        let text = std::fs::read_to_string(&file).map_err(|e| TransformError::io(&file, e))?;
        let mut value = yaml_to_json(&file, &text)?;
        if text.contains("{{") || text.contains("{%") {
            let env = crate::jinja::JinjaEnv::new();
            let vars = std::sync::Arc::new(cli_vars.clone());
            let label = file.display().to_string();
            let render = |s: &str| -> Result<String> {
                let scope = crate::jinja::RenderScope::before_target(
                    crate::jinja::Phase::Compile,
                    "",
                    Default::default(),
                    vars.clone(),
                );
                env.render_str(&label, s, minijinja::Value::UNDEFINED, scope).map(|(s, _)| s)
            };
            render_project_strings(&mut value, None, &render)?;
        }
        Self::from_value(root, &file, value)
    }

    /// A project from the text of its `dbt_project.yml` (an embedded package's).
    pub fn from_yaml(root: &Path, text: &str) -> Result<DbtProject> {
        let file = root.join("dbt_project.yml");
        let value = yaml_to_json(&file, text)?;
        Self::from_value(root, &file, value)
    }

    /// A project with dbt's defaults, for a folder that has models but no `dbt_project.yml`.
    pub fn implicit(root: &Path, name: &str) -> DbtProject {
        Self::from_value(root, &root.join("dbt_project.yml"), serde_json::json!({ "name": name }))
            .expect("defaults are valid")
    }

    fn from_value(root: &Path, file: &Path, value: Value) -> Result<DbtProject> {
        let Value::Object(map) = value else {
            return Err(TransformError::config(file, "expected a mapping with at least `name:`"));
        };
        let name = match map.get("name") {
            Some(Value::String(s)) if is_identifier(s) => s.clone(),
            Some(Value::String(s)) => {
                return Err(TransformError::config(
                    file,
                    format!("name `{s}` must be letters, digits and underscores, starting with a letter"),
                ))
            }
            _ => {
                return Err(TransformError::config(
                    file,
                    "`name:` is required (the project's name, e.g. `name: my_project`)",
                ))
            }
        };
        let paths = |key: &str, default: &str| -> Result<Vec<String>> {
            match map.get(key) {
                None | Some(Value::Null) => Ok(vec![default.to_string()]),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            TransformError::config(file, format!("`{key}` must be a list of folder names"))
                        })
                    })
                    .collect(),
                Some(Value::String(s)) => Ok(vec![s.clone()]),
                Some(_) => Err(TransformError::config(file, format!("`{key}` must be a list of folder names"))),
            }
        };
        let vars = match map.get("vars") {
            Some(Value::Object(v)) => v.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None | Some(Value::Null) => IndexMap::new(),
            Some(_) => return Err(TransformError::config(file, "`vars:` must be a mapping of name to value")),
        };
        let mut dispatch = HashMap::new();
        match map.get("dispatch") {
            None | Some(Value::Null) => {}
            Some(Value::Array(entries)) => {
                for entry in entries {
                    let namespace = entry.get("macro_namespace").and_then(Value::as_str);
                    let order: Option<Vec<String>> = entry
                        .get("search_order")
                        .and_then(Value::as_array)
                        .and_then(|o| o.iter().map(|v| v.as_str().map(str::to_string)).collect());
                    match (namespace, order) {
                        (Some(ns), Some(order)) => {
                            dispatch.insert(ns.to_string(), order);
                        }
                        _ => {
                            return Err(TransformError::config(
                                file,
                                format!(
                                    "`dispatch:` entry {entry}: expected `macro_namespace: <package>` and \
                                     `search_order: [<package>, ...]`"
                                ),
                            ))
                        }
                    }
                }
            }
            Some(_) => {
                return Err(TransformError::config(
                    file,
                    "`dispatch:` must be a list of {macro_namespace: ..., search_order: [...]}",
                ))
            }
        }
        let hooks = |key: &str| -> Vec<String> {
            match map.get(key) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
                _ => Vec::new(),
            }
        };
        Ok(DbtProject {
            root: root.to_path_buf(),
            name,
            version: map.get("version").map(|v| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())),
            profile: map.get("profile").and_then(|v| v.as_str()).map(str::to_string),
            model_paths: paths("model-paths", "models")?,
            seed_paths: paths("seed-paths", "seeds")?,
            macro_paths: paths("macro-paths", "macros")?,
            test_paths: paths("test-paths", "tests")?,
            docs_paths: paths("docs-paths", "models")?,
            snapshot_paths: paths("snapshot-paths", "snapshots")?,
            target_path: map.get("target-path").and_then(|v| v.as_str()).unwrap_or("target").to_string(),
            packages_install_path: map
                .get("packages-install-path")
                .and_then(|v| v.as_str())
                .unwrap_or("dbt_packages")
                .to_string(),
            dispatch,
            vars,
            model_configs: map.get("models").cloned().unwrap_or(Value::Null),
            seed_configs: map.get("seeds").cloned().unwrap_or(Value::Null),
            snapshot_configs: map.get("snapshots").cloned().unwrap_or(Value::Null),
            test_configs: map.get("data_tests").or_else(|| map.get("tests")).cloned().unwrap_or(Value::Null),
            source_configs: map.get("sources").cloned().unwrap_or(Value::Null),
            on_run_start: hooks("on-run-start"),
            on_run_end: hooks("on-run-end"),
        })
    }

    /// Vars visible to nodes of `package`: the global vars, then the package's own block
    /// (`vars: {my_project: {x: 1}}`) on top.
    pub fn vars_for(&self, package: &str) -> IndexMap<String, Value> {
        let mut out: IndexMap<String, Value> = self
            .vars
            .iter()
            .filter(|(k, v)| !(*k == package && v.is_object()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(Value::Object(own)) = self.vars.get(package) {
            out.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        out
    }
}

/// Render the Jinja in `dbt_project.yml`'s string values, in place, except where dbt renders later
/// (`vars:`, `on-run-start`/`on-run-end`, hooks in config trees). An `enabled` config that renders
/// to `True`/`False` becomes a boolean.
fn render_project_strings(value: &mut Value, key: Option<&str>, render: &dyn Fn(&str) -> Result<String>) -> Result<()> {
    match value {
        Value::String(s) if s.contains("{{") || s.contains("{%") => {
            let out = render(s)?;
            let bare = key.map(|k| k.trim_start_matches('+'));
            *value = match (bare, out.trim()) {
                (Some("enabled"), "True" | "true") => Value::Bool(true),
                (Some("enabled"), "False" | "false") => Value::Bool(false),
                _ => Value::String(out),
            };
        }
        Value::Array(items) => {
            for item in items {
                render_project_strings(item, key, render)?;
            }
        }
        Value::Object(map) => {
            let top = key.is_none();
            for (k, v) in map.iter_mut() {
                let later = (top && matches!(k.as_str(), "vars" | "on-run-start" | "on-run-end"))
                    || matches!(k.trim_start_matches('+'), "pre-hook" | "post-hook" | "pre_hook" | "post_hook");
                if !later {
                    render_project_strings(v, Some(k), render)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Apply the folder-level configs of a config tree (`models:` of `dbt_project.yml`) to a node with
/// fully qualified name `fqn` (`[package, folder…, name]`): outer levels first, inner levels win.
pub fn apply_tree(config: &mut NodeConfig, tree: &Value, fqn: &[String]) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut level = tree;
    for part in fqn {
        let Value::Object(map) = level else { break };
        let Some(next) = map.get(part) else { break };
        let Value::Object(next_map) = next else { break };
        problems.extend(config.apply(&level_configs(next_map)));
        level = next;
    }
    problems
}

/// The config entries of one level of a config tree: `+key`s, and known config names.
fn level_configs(map: &serde_json::Map<String, Value>) -> IndexMap<String, Value> {
    map.iter()
        .filter(|(k, v)| k.starts_with('+') || (KNOWN_CONFIG_KEYS.contains(&k.as_str()) && !is_subfolder_block(k, v)))
        .map(|(k, v)| (k.trim_start_matches('+').to_string(), v.clone()))
        .collect()
}

/// `schema:` with a mapping value is a folder called `schema`, not the schema config.
fn is_subfolder_block(key: &str, value: &Value) -> bool {
    matches!(value, Value::Object(_))
        && !matches!(key, "meta" | "column_types" | "persist_docs" | "docs" | "grants" | "contract" | "quoting")
}

/// Parse YAML into JSON values, with file:line:column on syntax errors.
pub fn yaml_to_json(file: &Path, text: &str) -> Result<Value> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        TransformError::Yaml { file: file.to_path_buf(), line, column, message: e.to_string() }
    })?;
    serde_json::to_value(value).map_err(|e| TransformError::config(file, format!("unsupported YAML value: {e}")))
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn folder_configs_apply_outer_to_inner() {
        let tree = json!({"shop": {"+materialized": "view", "+tags": ["all"], "marts": {"+materialized": "table", "finance": {"schema": "finance"}}}});
        let mut c = NodeConfig::defaults("view");
        apply_tree(&mut c, &tree, &["shop".into(), "marts".into(), "finance".into(), "revenue".into()]);
        assert_eq!(c.materialized, "table");
        assert_eq!(c.schema.as_deref(), Some("finance"));
        assert_eq!(c.tags, vec!["all"]);
        let mut s = NodeConfig::defaults("view");
        apply_tree(&mut s, &tree, &["shop".into(), "staging".into(), "stg".into()]);
        assert_eq!(s.materialized, "view");
    }

    #[test]
    fn jinja_in_dbt_project_yml_is_rendered_as_dbt_does() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dbt_project.yml"),
            "name: shop\npackages-install-path: \"{{ env_var('HOME', 'dbt_packages') }}\"\n\
             target-path: \"{{ env_var('MDP_TEST_UNSET_TARGET', 'build') }}\"\n\
             vars:\n  later: \"{{ var('x') }}\"\n\
             models:\n  shop:\n    +schema: \"{{ var('schema_suffix', 'core') }}\"\n    +enabled: \"{{ var('on', true) }}\"\n\
             \x20   +post-hook: \"{{ this }}\"\n",
        )
        .unwrap();
        let cli = IndexMap::from([("schema_suffix".to_string(), serde_json::json!("pr_12"))]);
        let project = DbtProject::load_with_vars(dir.path(), &cli).unwrap();
        assert_eq!(project.packages_install_path, std::env::var("HOME").unwrap());
        assert_eq!(project.target_path, "build");
        assert_eq!(project.model_configs["shop"]["+schema"], "pr_12");
        assert_eq!(project.model_configs["shop"]["+enabled"], true);
        assert_eq!(project.model_configs["shop"]["+post-hook"], "{{ this }}", "hooks render when they run");
        assert_eq!(project.vars["later"], "{{ var('x') }}", "vars render when they are read");
    }

    #[test]
    fn missing_name_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("mdp-proj-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("dbt_project.yml"), "version: 2\n").unwrap();
        let err = DbtProject::load(&dir).unwrap_err().to_string();
        assert!(err.contains("`name:` is required"), "{err}");
        std::fs::write(dir.join("dbt_project.yml"), "name: [unclosed\n").unwrap();
        let err = DbtProject::load(&dir).unwrap_err().to_string();
        assert!(err.contains("dbt_project.yml:"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
