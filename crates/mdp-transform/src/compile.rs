//! Compile: render each node to the SQL that runs, with real relation names, `is_incremental()`
//! decided, and ephemeral models inlined as CTEs (`__dbt__cte__<name>`), as dbt does.
//!
//! No database I/O: which relations exist is an input ([`Existing`]); a node whose Jinja queries the
//! warehouse gets it as an [`Introspector`] ([`Compiler::with_introspector`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use mdp_warehouse::RelationKind;
use minijinja::Value;

use crate::error::{Result, TransformError};
use crate::introspect::Introspector;
use crate::jinja::{Phase, Relation, RenderScope};
use crate::manifest::{Node, ResourceType};
use crate::parse::Parsed;

/// Relations that exist in the warehouse before the run: (schema, name) → table or view.
pub type Existing = HashMap<(String, String), RelationKind>;

/// A node's SQL, ready to materialize.
#[derive(Debug, Clone)]
pub struct CompiledNode {
    pub unique_id: String,
    /// The model's select (with ephemeral CTEs) or the test's failing-rows query; empty for seeds.
    pub sql: String,
    pub is_incremental: bool,
    pub pre_hooks: Vec<String>,
    pub post_hooks: Vec<String>,
}

/// Compile options from the command line.
#[derive(Debug, Clone, Default)]
pub struct CompileOptions {
    pub full_refresh: bool,
    /// The command compiling (`run`, `build`, …): dbt's `flags.WHICH`. `None`: `run`.
    pub which: Option<&'static str>,
}

/// Compiles nodes of one parsed project, memoizing ephemeral bodies.
pub struct Compiler<'a> {
    parsed: &'a Parsed,
    existing: &'a Existing,
    options: CompileOptions,
    /// The warehouse for introspective nodes (see [`crate::introspect`]).
    introspector: Option<Arc<dyn Introspector>>,
    /// Ephemeral unique id → (rendered body, ephemerals it uses).
    ephemerals: HashMap<String, (String, Vec<String>)>,
}

impl<'a> Compiler<'a> {
    pub fn new(parsed: &'a Parsed, existing: &'a Existing, options: CompileOptions) -> Self {
        Compiler { parsed, existing, options, introspector: None, ephemerals: HashMap::new() }
    }

    /// Compile with the warehouse at hand: introspective nodes can be compiled.
    pub fn with_introspector(mut self, introspector: Arc<dyn Introspector>) -> Self {
        self.introspector = Some(introspector);
        self
    }

    /// Whether `node` runs as an incremental update this time.
    pub fn is_incremental(&self, node: &Node) -> bool {
        if node.config.materialized != "incremental" {
            return false;
        }
        let full_refresh = self.options.full_refresh && node.config.full_refresh != Some(false);
        let exists_as_table = node
            .relation
            .as_ref()
            .and_then(|r| self.existing.get(&(r.schema.clone(), r.identifier.clone())))
            .is_some_and(|kind| *kind == RelationKind::Table);
        exists_as_table && !full_refresh
    }

    /// Compile one node.
    pub fn compile(&mut self, id: &str) -> Result<CompiledNode> {
        let node = self
            .parsed
            .manifest
            .nodes
            .get(id)
            .ok_or_else(|| TransformError::config("", format!("unknown node {id}")))?;
        if let Some(def) = &node.unit_test {
            return self.compile_unit_test(node, def);
        }
        let is_incremental = self.is_incremental(node);
        if matches!(node.resource_type, ResourceType::Seed | ResourceType::Source) {
            return Ok(CompiledNode {
                unique_id: id.to_string(),
                sql: String::new(),
                is_incremental,
                pre_hooks: self.hooks(node, &node.config.pre_hook)?,
                post_hooks: self.hooks(node, &node.config.post_hook)?,
            });
        }
        let (body, used) = self.render(node, is_incremental)?;
        let sql = self.inject(&body, &used)?;
        Ok(CompiledNode {
            unique_id: id.to_string(),
            sql,
            is_incremental,
            pre_hooks: self.hooks(node, &node.config.pre_hook)?,
            post_hooks: self.hooks(node, &node.config.post_hook)?,
        })
    }

    /// A unit test: its model's SQL with the given inputs as CTE names (the CTEs themselves are
    /// built when it runs, typed by the warehouse), with the test's `vars` and `is_incremental`.
    fn compile_unit_test(&mut self, node: &Node, def: &crate::unit::UnitTestDef) -> Result<CompiledNode> {
        let model_id = node.attached_node.as_deref().unwrap_or_default();
        let model = self.parsed.manifest.nodes.get(model_id).ok_or_else(|| {
            TransformError::config(&node.original_file_path, format!("unit test `{}`: no model {model_id}", node.name))
        })?;
        let is_incremental = def.is_incremental.unwrap_or(false);
        let mut scope = self.scope(model, is_incremental);
        scope.fixtures = def.given.iter().map(|g| g.input.clone()).collect();
        if !def.vars.is_empty() {
            let mut vars = (*scope.vars).clone();
            vars.extend(def.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
            scope.vars = std::sync::Arc::new(vars);
        }
        let mut ctx = self.context_map(model)?;
        if let Some(this) = def.given.iter().find(|g| g.input == crate::unit::Input::This) {
            ctx.insert("this".into(), Value::from_safe_string(this.input.cte_name()));
        }
        let (sql, scope) = self.parsed.jinja.render(&Self::template_name(model), Value::from(ctx), scope)?;
        let sql = self.inject(&sql, &scope.ephemerals)?;
        Ok(CompiledNode {
            unique_id: node.unique_id.clone(),
            sql,
            is_incremental,
            pre_hooks: Vec::new(),
            post_hooks: Vec::new(),
        })
    }

    fn context(&self, node: &Node) -> Result<Value> {
        Ok(Value::from(self.context_map(node)?))
    }

    fn context_map(&self, node: &Node) -> Result<BTreeMap<String, Value>> {
        let mut ctx: BTreeMap<String, Value> = self.parsed.base_context.clone();
        ctx.insert("execute".into(), Value::from(true));
        ctx.insert(
            "flags".into(),
            minijinja::context! { WHICH => self.options.which.unwrap_or("run"), FULL_REFRESH => self.options.full_refresh },
        );
        ctx.insert("model".into(), model_value(node));
        if let Some(rel) = &node.relation {
            let this = Relation::checked(rel, self.parsed.target.dialect())
                .map_err(|e| TransformError::config(&node.original_file_path, format!("`this`: {e}")))?;
            ctx.insert("this".into(), Value::from_object(this));
        }
        if let Some(meta) = &node.test_metadata {
            ctx.insert("__kwargs".into(), Value::from_serialize(&meta.kwargs));
        }
        Ok(ctx)
    }

    fn scope(&self, node: &Node, is_incremental: bool) -> RenderScope {
        let mut scope = RenderScope::new(
            Phase::Compile,
            &node.package,
            self.parsed.resolver.clone(),
            self.parsed.vars_for(&node.package),
            self.parsed.target.dialect(),
        );
        scope.is_incremental = is_incremental;
        scope.introspector = self.introspector.clone();
        if let serde_json::Value::Object(map) = node.config.to_json() {
            scope.config = map;
        }
        scope
    }

    fn template_name(node: &Node) -> String {
        if node.test_metadata.is_some() {
            format!("{} (test {})", node.original_file_path.display(), node.name)
        } else if node.resource_type == ResourceType::Snapshot {
            crate::parse::snapshot_template(&node.original_file_path, &node.name)
        } else {
            node.original_file_path.to_string_lossy().replace('\\', "/")
        }
    }

    /// Render a node's SQL; returns it and the ephemerals it references.
    fn render(&self, node: &Node, is_incremental: bool) -> Result<(String, Vec<String>)> {
        let (sql, scope) = self.parsed.jinja.render(
            &Self::template_name(node),
            self.context(node)?,
            self.scope(node, is_incremental),
        )?;
        Ok((sql, scope.ephemerals))
    }

    fn hooks(&self, node: &Node, hooks: &[String]) -> Result<Vec<String>> {
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let context = self.context(node)?;
        hooks
            .iter()
            .map(|h| {
                self.parsed
                    .jinja
                    .render_str(
                        &format!("{} (hook)", node.original_file_path.display()),
                        h,
                        context.clone(),
                        self.scope(node, self.is_incremental(node)),
                    )
                    .map(|(s, _)| s)
            })
            .collect()
    }

    /// Prefix `sql` with the CTEs of the ephemerals it uses (and theirs), dependencies first.
    fn inject(&mut self, sql: &str, used: &[String]) -> Result<String> {
        if used.is_empty() {
            return Ok(sql.to_string());
        }
        let mut ordered = Vec::new();
        let mut seen = HashSet::new();
        for id in used {
            self.collect_ephemeral(id, &mut ordered, &mut seen, &mut Vec::new())?;
        }
        let ctes: Vec<(String, String)> = ordered
            .iter()
            .map(|id| {
                let name = &self.parsed.manifest.nodes[id].name;
                (format!("__dbt__cte__{name}"), self.ephemerals[id].0.clone())
            })
            .collect();
        Ok(inject_ctes(sql, &ctes))
    }

    fn collect_ephemeral(
        &mut self,
        id: &str,
        ordered: &mut Vec<String>,
        seen: &mut HashSet<String>,
        stack: &mut Vec<String>,
    ) -> Result<()> {
        if seen.contains(id) {
            return Ok(());
        }
        if stack.iter().any(|s| s == id) {
            let mut cycle = stack.clone();
            cycle.push(id.to_string());
            return Err(TransformError::Cycle(crate::graph::Cycle(cycle)));
        }
        if !self.ephemerals.contains_key(id) {
            let node = &self.parsed.manifest.nodes[id];
            let rendered = self.render(node, false)?;
            self.ephemerals.insert(id.to_string(), rendered);
        }
        stack.push(id.to_string());
        let deps = self.ephemerals[id].1.clone();
        for dep in deps {
            self.collect_ephemeral(&dep, ordered, seen, stack)?;
        }
        stack.pop();
        seen.insert(id.to_string());
        ordered.push(id.to_string());
        Ok(())
    }
}

pub(crate) fn model_value(node: &Node) -> Value {
    Value::from_serialize(serde_json::json!({
        "name": node.name,
        "unique_id": node.unique_id,
        "resource_type": node.resource_type.as_str(),
        "package_name": node.package,
        "original_file_path": node.original_file_path,
        "path": node.path,
        "fqn": node.fqn,
        "config": node.config.to_json(),
        "tags": node.config.tags,
        "alias": node.relation.as_ref().map(|r| r.identifier.clone()).unwrap_or_else(|| node.name.clone()),
        "schema": node.relation.as_ref().map(|r| r.schema.clone()),
        "database": node.relation.as_ref().and_then(|r| r.database.clone()),
        "description": node.description,
        "meta": node.meta,
    }))
}

/// Put `ctes` in front of `sql`, merging with the query's own `with` when it has one.
pub fn inject_ctes(sql: &str, ctes: &[(String, String)]) -> String {
    let defs: Vec<String> = ctes.iter().map(|(name, body)| format!("{name} as (\n{}\n)", body.trim())).collect();
    let defs = defs.join(", ");
    let start = skip_space_and_comments(sql);
    let rest = &sql[start..];
    let starts_with_with = rest.len() >= 4
        && rest[..4].eq_ignore_ascii_case("with")
        && rest[4..].starts_with(|c: char| c.is_whitespace() || c == '(');
    if starts_with_with {
        let after = &rest[4..];
        let after_trim = after.trim_start();
        // `with recursive` must stay first.
        if after_trim.len() >= 9 && after_trim[..9].eq_ignore_ascii_case("recursive") {
            return format!("{}with recursive {defs}, {}", &sql[..start], &after_trim[9..].trim_start());
        }
        format!("{}with {defs},{after}", &sql[..start])
    } else {
        format!("{}with {defs}\n{rest}", &sql[..start])
    }
}

/// Byte offset of the first token after whitespace and SQL comments.
fn skip_space_and_comments(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if sql[i..].starts_with("--") {
            i = sql[i..].find('\n').map(|n| i + n + 1).unwrap_or(bytes.len());
        } else if sql[i..].starts_with("/*") {
            i = sql[i..].find("*/").map(|n| i + n + 2).unwrap_or(bytes.len());
        } else {
            return i;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctes_go_in_front_or_merge_with_the_query_s_own_with() {
        let ctes = vec![("__dbt__cte__e".to_string(), "select 1 as id".to_string())];
        assert_eq!(
            inject_ctes("select * from __dbt__cte__e", &ctes),
            "with __dbt__cte__e as (\nselect 1 as id\n)\nselect * from __dbt__cte__e"
        );
        assert_eq!(
            inject_ctes("  -- note\nWITH a as (select * from __dbt__cte__e) select * from a", &ctes),
            "  -- note\nwith __dbt__cte__e as (\nselect 1 as id\n), a as (select * from __dbt__cte__e) select * from a"
        );
        assert_eq!(
            inject_ctes("with\nx as (select 1) select * from x", &ctes),
            "with __dbt__cte__e as (\nselect 1 as id\n),\nx as (select 1) select * from x"
        );
    }
}
