//! `target/manifest.json` and `target/run_results.json`, shaped like dbt's (manifest v12, run
//! results v6) so tools that read dbt artifacts keep working. Secrets never appear: the target
//! is described by name, type and schema only.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::manifest::{Node, ResourceType};
use crate::parse::Parsed;
use crate::run::{Command, RunResults};

const MANIFEST_SCHEMA: &str = "https://schemas.getdbt.com/dbt/manifest/v12.json";
const RUN_RESULTS_SCHEMA: &str = "https://schemas.getdbt.com/dbt/run-results/v6.json";

fn metadata(parsed: &Parsed, schema: &str) -> Value {
    json!({
        "dbt_schema_version": schema,
        "dbt_version": "1.10.0",
        "mdp_version": env!("CARGO_PKG_VERSION"),
        "generated_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "invocation_id": parsed.invocation_id,
        "env": {},
        "project_name": parsed.project.name,
        "adapter_type": parsed.target.type_name(),
    })
}

fn node_json(node: &Node, d: &dyn mdp_warehouse::Dialect) -> Value {
    let rel = node.relation.as_ref();
    let mut m = Map::new();
    m.insert("unique_id".into(), json!(node.unique_id));
    m.insert("name".into(), json!(node.name));
    m.insert(
        "resource_type".into(),
        json!(if node.is_unit_test() { "unit_test" } else { node.resource_type.as_str() }),
    );
    m.insert("package_name".into(), json!(node.package));
    m.insert("path".into(), json!(node.path));
    m.insert("original_file_path".into(), json!(node.original_file_path));
    m.insert("fqn".into(), json!(node.fqn));
    m.insert("database".into(), json!(rel.and_then(|r| r.database.clone())));
    m.insert("schema".into(), json!(rel.map(|r| r.schema.clone())));
    m.insert("alias".into(), json!(rel.map(|r| r.identifier.clone()).unwrap_or_else(|| node.name.clone())));
    m.insert("relation_name".into(), json!(rel.map(|r| crate::run::relation_name(d, r))));
    m.insert("checksum".into(), json!({"name": "sha256", "checksum": node.checksum}));
    m.insert("config".into(), node.config.to_json());
    m.insert("tags".into(), json!(node.config.tags));
    m.insert("description".into(), json!(node.description));
    m.insert("columns".into(), serde_json::to_value(&node.columns).unwrap_or(Value::Null));
    m.insert("meta".into(), serde_json::to_value(&node.meta).unwrap_or(Value::Null));
    m.insert("raw_code".into(), json!(node.raw_code));
    m.insert("language".into(), json!("sql"));
    m.insert("depends_on".into(), json!({"nodes": node.depends_on, "macros": node.depends_on_macros}));
    m.insert(
        "refs".into(),
        Value::from(
            node.refs.iter().map(|(p, n)| json!({"name": n, "package": p, "version": null})).collect::<Vec<_>>(),
        ),
    );
    m.insert("sources".into(), Value::from(node.sources.iter().map(|(s, t)| json!([s, t])).collect::<Vec<_>>()));
    if let Some(meta) = &node.test_metadata {
        m.insert("test_metadata".into(), serde_json::to_value(meta).unwrap_or(Value::Null));
        m.insert("column_name".into(), json!(node.column_name));
        m.insert("attached_node".into(), json!(node.attached_node));
    }
    if let Some(unit) = &node.unit_test {
        m.insert("model".into(), json!(unit.model));
        m.insert("given".into(), json!(unit.given.iter().map(|g| json!({"input": g.written})).collect::<Vec<_>>()));
        m.insert("attached_node".into(), json!(node.attached_node));
        for key in
            ["raw_code", "language", "refs", "sources", "checksum", "relation_name", "database", "schema", "alias"]
        {
            m.remove(key);
        }
    }
    if let Some(src) = &node.source {
        m.insert("source_name".into(), json!(src.source_name));
        m.insert("source_description".into(), json!(src.source_description));
        m.insert("loader".into(), json!(src.loader));
        m.insert("loaded_at_field".into(), json!(src.loaded_at_field));
        m.insert("freshness".into(), src.freshness.clone().unwrap_or(Value::Null));
        m.insert("identifier".into(), json!(rel.map(|r| r.identifier.clone())));
        m.remove("raw_code");
        m.remove("language");
        m.remove("depends_on");
        m.remove("refs");
        m.remove("sources");
    }
    Value::Object(m)
}

/// Build `manifest.json`.
pub fn manifest_json(parsed: &Parsed) -> Value {
    let manifest = &parsed.manifest;
    let mut nodes = Map::new();
    let mut sources = Map::new();
    let mut unit_tests = Map::new();
    for (id, node) in &manifest.nodes {
        let v = node_json(node, parsed.target.dialect());
        if node.resource_type == ResourceType::Source {
            sources.insert(id.clone(), v);
        } else if node.is_unit_test() {
            unit_tests.insert(id.clone(), v);
        } else {
            nodes.insert(id.clone(), v);
        }
    }
    let mut disabled = Map::new();
    for (id, node) in &manifest.disabled {
        disabled.insert(id.clone(), Value::from(vec![node_json(node, parsed.target.dialect())]));
    }
    let mut parent_map = Map::new();
    let mut child_map = Map::new();
    for id in manifest.nodes.keys() {
        parent_map.insert(id.clone(), json!(parsed.graph.parents(id)));
        child_map.insert(id.clone(), json!(parsed.graph.children(id)));
    }
    json!({
        "metadata": metadata(parsed, MANIFEST_SCHEMA),
        "nodes": nodes,
        "sources": sources,
        "macros": manifest.macros.iter().map(|(k, m)| (k.clone(), json!({"unique_id": m.unique_id, "name": m.name, "package_name": m.package, "original_file_path": m.original_file_path, "path": m.original_file_path, "resource_type": "macro", "macro_sql": m.macro_sql}))).collect::<Map<_, _>>(),
        "docs": manifest.docs.iter().map(|(k, d)| (k.clone(), json!({"unique_id": d.unique_id, "name": d.name, "package_name": d.package, "original_file_path": d.original_file_path, "path": d.original_file_path, "block_contents": d.block_contents, "resource_type": "doc"}))).collect::<Map<_, _>>(),
        "exposures": {},
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": disabled,
        "parent_map": parent_map,
        "child_map": child_map,
        "group_map": {},
        "saved_queries": {},
        "semantic_models": {},
        "unit_tests": unit_tests,
    })
}

/// Build `run_results.json`.
pub fn run_results_json(parsed: &Parsed, command: Command, results: &RunResults, args: Value) -> Value {
    let items: Vec<Value> = results
        .results
        .iter()
        .map(|r| {
            let mut adapter_response = Map::new();
            if let Some(rows) = r.rows_affected {
                adapter_response.insert("rows_affected".into(), json!(rows));
            }
            adapter_response.insert("_message".into(), json!(r.message));
            json!({
                "unique_id": r.unique_id,
                "status": r.status.as_str(),
                "timing": [{
                    "name": "execute",
                    "started_at": r.started_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    "completed_at": r.completed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                }],
                "thread_id": "Thread-1",
                "execution_time": r.execution_time,
                "adapter_response": adapter_response,
                "message": r.message,
                "failures": r.failures,
                "compiled": r.compiled_code.is_some(),
                "compiled_code": r.compiled_code,
                "relation_name": r.relation_name,
                "batch_results": null,
            })
        })
        .collect();
    let mut args = args;
    if let Value::Object(m) = &mut args {
        m.insert("which".into(), json!(command.as_str()));
    }
    json!({
        "metadata": metadata(parsed, RUN_RESULTS_SCHEMA),
        "results": items,
        "elapsed_time": results.elapsed,
        "args": args,
    })
}

/// Write an artifact as pretty JSON, creating the folder.
pub fn write(dir: &Path, file: &str, value: &Value) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let text = serde_json::to_string(value).map_err(std::io::Error::other)?;
    std::fs::write(dir.join(file), text)
}
