//! The Jinja environment of a project: dbt's context (`ref`, `source`, `config`, `var`, `env_var`,
//! `is_incremental`, `this`, `target`, `doc`, `log`, `return`, `exceptions`, `adapter`, …) on
//! minijinja, with the project's macros callable from every template.
//!
//! One [`JinjaEnv`] holds every template (models, tests, macro files) so errors carry the file name.
//! Per-render state (which node, which phase, what it called) lives in a thread-local [`RenderScope`]
//! for the duration of one [`JinjaEnv::render`]: the functions read and record through it, so a
//! macro called from a model records the model's `ref()`s too.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use indexmap::IndexMap;
use mdp_warehouse::{Dialect, TableRef};
use minijinja::value::{from_args, Enumerator, Kwargs, Object, ObjectRepr, Rest};
use minijinja::{AutoEscape, Environment, Error, ErrorKind, State, UndefinedBehavior, Value};

use crate::error::{Result, TransformError};
use crate::introspect::{may_introspect, AgateTable, ColumnObject, Introspector, QueryTable};
use crate::manifest::RelationName;
use crate::namespace::{MacroEntry, MacroRegistry, BUILTIN_PACKAGE};

const BUILTIN_MACROS: &str = include_str!("../assets/builtin_macros.sql");
const BUILTIN_MACROS_NAME: &str = "<mdp builtin macros>";

/// Parse renders a node to learn what it calls; compile renders it to SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Parse,
    Compile,
}

/// What `ref()` resolves to.
#[derive(Debug, Clone)]
pub struct RefTarget {
    pub unique_id: String,
    pub relation: Option<RelationName>,
    pub ephemeral: bool,
}

/// Names the functions resolve during compile: models, seeds, sources, docs.
#[derive(Debug, Default, Clone)]
pub struct Resolver {
    /// (package, name) → target.
    pub refs: HashMap<(String, String), RefTarget>,
    /// (source, table) → relation.
    pub sources: HashMap<(String, String), RelationName>,
    /// doc block name → contents.
    pub docs: HashMap<String, String>,
    pub root_package: String,
}

impl Resolver {
    fn find_ref(&self, from_package: &str, package: Option<&str>, name: &str) -> Option<&RefTarget> {
        if let Some(p) = package {
            return self.refs.get(&(p.to_string(), name.to_string()));
        }
        self.refs
            .get(&(from_package.to_string(), name.to_string()))
            .or_else(|| self.refs.get(&(self.root_package.clone(), name.to_string())))
            .or_else(|| self.refs.iter().find(|((_, n), _)| n == name).map(|(_, t)| t))
    }
}

/// The state of one render: inputs the functions read, and what the template called.
#[derive(Debug)]
pub struct RenderScope {
    pub phase: Phase,
    pub package: String,
    pub resolver: Arc<Resolver>,
    pub vars: Arc<IndexMap<String, serde_json::Value>>,
    /// The node's config as known before the render (for `config.get`).
    pub config: serde_json::Map<String, serde_json::Value>,
    pub is_incremental: bool,
    /// The target's SQL dialect: `adapter.type` is its name, identifiers and relations are quoted by
    /// it. `None` while `profiles.yml` is rendered, before a target is chosen (as in dbt, no
    /// `adapter` there).
    pub dialect: Option<&'static dyn Dialect>,
    /// The template context, handed on to macros.
    pub ctx: Value,
    // What the render recorded.
    pub refs: Vec<(Option<String>, String)>,
    pub sources: Vec<(String, String)>,
    pub config_calls: Vec<IndexMap<String, serde_json::Value>>,
    /// Ephemeral models the SQL references, by unique id, in first-use order.
    pub ephemerals: Vec<String>,
    /// The warehouse, for `run_query`, `statement`, `adapter.get_relation`, … while a node is
    /// compiled just before it runs. `None`: parsing, or compiling without the warehouse.
    pub introspector: Option<Arc<dyn Introspector>>,
    /// The render called an introspective function, or a macro of a file that names one: the node
    /// is compiled when it runs, with the warehouse.
    pub introspective: bool,
    /// A unit test's given inputs: `ref`/`source` of one of them renders as its CTE's name.
    pub fixtures: Vec<crate::unit::Input>,
    /// `{% call statement('name') %}` results, for `load_result('name')`.
    results: HashMap<String, Value>,
    /// The macros called while parsing (`macro.<package>.<name>`), in first-call order.
    pub macros_called: Vec<String>,
    pending_return: Option<Value>,
}

impl RenderScope {
    pub fn new(
        phase: Phase,
        package: &str,
        resolver: Arc<Resolver>,
        vars: Arc<IndexMap<String, serde_json::Value>>,
        dialect: &'static dyn Dialect,
    ) -> Self {
        RenderScope { dialect: Some(dialect), ..RenderScope::before_target(phase, package, resolver, vars) }
    }

    /// A scope for rendering `profiles.yml`, where the target (and so the warehouse) is not known yet.
    pub fn before_target(
        phase: Phase,
        package: &str,
        resolver: Arc<Resolver>,
        vars: Arc<IndexMap<String, serde_json::Value>>,
    ) -> Self {
        RenderScope {
            phase,
            package: package.to_string(),
            resolver,
            vars,
            config: Default::default(),
            is_incremental: false,
            dialect: None,
            ctx: Value::UNDEFINED,
            refs: Vec::new(),
            sources: Vec::new(),
            config_calls: Vec::new(),
            ephemerals: Vec::new(),
            introspector: None,
            introspective: false,
            fixtures: Vec::new(),
            results: HashMap::new(),
            macros_called: Vec::new(),
            pending_return: None,
        }
    }
}

thread_local! {
    static SCOPE: RefCell<Option<RenderScope>> = const { RefCell::new(None) };
}

fn with_scope<T>(f: impl FnOnce(&mut RenderScope) -> Result<T, Error>) -> Result<T, Error> {
    SCOPE.with(|cell| match cell.borrow_mut().as_mut() {
        Some(scope) => f(scope),
        None => Err(Error::new(ErrorKind::InvalidOperation, "called outside of a node render")),
    })
}

/// The target's dialect, or why there is none.
fn scope_dialect(s: &RenderScope, what: &str) -> Result<&'static dyn Dialect, Error> {
    s.dialect.ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{what} is not available in profiles.yml: the warehouse is not known until a target is chosen"),
        )
    })
}

/// The project's templates and macros.
pub struct JinjaEnv {
    env: Environment<'static>,
    sources: HashMap<String, String>,
    /// Every macro by name and package; the global functions and package namespaces resolve through it.
    registry: Arc<RwLock<MacroRegistry>>,
}

impl fmt::Debug for JinjaEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JinjaEnv").field("templates", &self.sources.len()).finish()
    }
}

impl JinjaEnv {
    /// An environment with mdp's built-in macros and dbt's global functions.
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_recursion_limit(500);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        let registry = Arc::new(RwLock::new(MacroRegistry::default()));
        register_globals(&mut env, &registry);
        let mut this = JinjaEnv { env, sources: HashMap::new(), registry };
        // One template per built-in macro: a macro call evaluates its whole file, so small files
        // keep the thousands of generic-test calls of a big project cheap.
        for (i, chunk) in BUILTIN_MACROS.split("\n{% macro ").enumerate() {
            let text = if i == 0 { chunk.to_string() } else { format!("{{% macro {chunk}") };
            let name = format!("{BUILTIN_MACROS_NAME}#{i}");
            this.add_macro_file(BUILTIN_PACKAGE, &name, &text).expect("built-in macros parse");
        }
        this
    }

    /// The root project: its macros come before other packages', and `name.macro()` reaches them.
    pub fn set_root_package(&mut self, name: &str) {
        self.registry_mut().set_root(name);
        self.add_namespace(name);
    }

    /// A package beside the root project: its macros are `name.macro()`, and unqualified for its own
    /// nodes (for every node when `visible_everywhere`, as mdp's embedded packages).
    pub fn add_package(&mut self, name: &str, visible_everywhere: bool) {
        self.registry_mut().add_package(name, visible_everywhere);
        self.add_namespace(name);
    }

    /// The root project's `dispatch:` config: macro namespace → package search order.
    pub fn set_dispatch(&mut self, dispatch: HashMap<String, Vec<String>>) {
        self.registry_mut().set_dispatch(dispatch);
    }

    fn add_namespace(&mut self, name: &str) {
        if name != BUILTIN_PACKAGE {
            let namespace = PackageNamespace { package: name.to_string(), registry: self.registry.clone() };
            self.env.add_global(name.to_string(), Value::from_object(namespace));
        }
    }

    fn registry(&self) -> std::sync::RwLockReadGuard<'_, MacroRegistry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner())
    }

    fn registry_mut(&self) -> std::sync::RwLockWriteGuard<'_, MacroRegistry> {
        self.registry.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Add a macro file (`macros/*.sql`, `tests/generic/*.sql`) of `package`: every `{% macro %}`
    /// and `{% test %}` in it becomes callable (see [`crate::namespace`] for who sees it). Returns
    /// the macro names it defines; a name the package already defines in another file is an error.
    pub fn add_macro_file(&mut self, package: &str, name: &str, text: &str) -> Result<Vec<String>> {
        let text = rewrite_mutable_literals(&rewrite_test_blocks(text));
        let names = macro_names(&text);
        // Each macro is defined under a private name, so that a call from a macro of the same file goes
        // through the global function (and its `return()` handling), as each macro is its own
        // template in dbt.
        let text = rename_macro_definitions(&text);
        let own = |macro_name: &str| names.iter().any(|n| n == macro_name).then(|| name.to_string());
        let text = {
            let registry = self.registry();
            rewrite_caller_calls(&text, &|qualifier, m| match qualifier {
                Some(pkg) => registry.in_package(pkg, m).map(|e| e.file.to_string()),
                None => own(m).or_else(|| registry.resolve(m, package).map(|e| e.file.to_string())),
            })
        };
        self.add_template(name, &text)?;
        // Whether its macros may read dbt's `varargs`/`kwargs` (then they are always defined), and may
        // query the warehouse, found once.
        let reads_extras = text.contains("varargs") || text.contains("kwargs");
        let may_introspect = package != BUILTIN_PACKAGE && may_introspect(&text);
        for macro_name in &names {
            let known = self.registry().knows(macro_name);
            let entry = MacroEntry { package: package.into(), file: name.into(), reads_extras, may_introspect };
            if let Some(previous) = self.registry_mut().add(macro_name, entry) {
                if package != BUILTIN_PACKAGE && previous != name {
                    return Err(TransformError::config(
                        name,
                        format!(
                            "macro `{macro_name}` is defined twice in package `{package}`, here and in {previous};                              rename or remove one"
                        ),
                    ));
                }
            }
            if !known {
                let registry = self.registry.clone();
                let mname = macro_name.clone();
                self.env.add_function(macro_name.clone(), move |state: &State, args: Rest<Value>| {
                    call_unqualified(state, &registry, &mname, &args)
                });
            }
        }
        Ok(names)
    }

    /// Add a node's template (model, singular test, synthesized generic test) of `package`.
    pub fn add_node_template(&mut self, package: &str, name: &str, text: &str) -> Result<()> {
        let text = {
            let registry = self.registry();
            rewrite_caller_calls(text, &|qualifier, m| match qualifier {
                Some(pkg) => registry.in_package(pkg, m).map(|e| e.file.to_string()),
                None => registry.resolve(m, package).map(|e| e.file.to_string()),
            })
        };
        self.add_template(name, &text)
    }

    /// Add a template as it is.
    pub fn add_template(&mut self, name: &str, text: &str) -> Result<()> {
        let text = &rewrite_mutable_literals(text);
        self.sources.insert(name.to_string(), text.to_string());
        let sources = &self.sources;
        self.env
            .add_template_owned(name.to_string(), text.to_string())
            .map_err(|e| TransformError::jinja(&e, &|n| sources.get(n).cloned()))
    }

    /// The package whose macro `name` a node of package `from` reaches: unqualified (`package`
    /// None), or as `package.name`.
    pub fn macro_package(&self, package: Option<&str>, name: &str, from: &str) -> Option<String> {
        let registry = self.registry();
        match package {
            None => registry.resolve(name, from),
            Some(p) => registry.in_package(p, name),
        }
        .map(|e| e.package.to_string())
    }

    /// Whether `package` is one macros can be looked up in (root, installed, `dbt`).
    pub fn is_package(&self, package: &str) -> bool {
        self.registry().is_package(package)
    }

    /// Render template `name` with `ctx`; returns the text and the scope with what was recorded.
    pub fn render(&self, name: &str, ctx: Value, mut scope: RenderScope) -> Result<(String, RenderScope)> {
        scope.ctx = ctx.clone();
        SCOPE.with(|cell| *cell.borrow_mut() = Some(scope));
        let result = self.env.get_template(name).and_then(|t| t.render(ctx));
        let scope = SCOPE.with(|cell| cell.borrow_mut().take()).expect("scope set above");
        match result {
            Ok(text) => Ok((text, scope)),
            Err(e) => Err(self.error(&e)),
        }
    }

    /// Render a one-off string (a YAML value, a hook) in the same environment.
    pub fn render_str(
        &self,
        label: &str,
        text: &str,
        ctx: Value,
        mut scope: RenderScope,
    ) -> Result<(String, RenderScope)> {
        if !text.contains("{{") && !text.contains("{%") {
            return Ok((text.to_string(), scope));
        }
        scope.ctx = ctx.clone();
        SCOPE.with(|cell| *cell.borrow_mut() = Some(scope));
        let result = self.env.render_named_str(label, text, ctx);
        let scope = SCOPE.with(|cell| cell.borrow_mut().take()).expect("scope set above");
        match result {
            Ok(out) => Ok((out, scope)),
            Err(e) => {
                let sources = |n: &str| if n == label { Some(text.to_string()) } else { self.sources.get(n).cloned() };
                Err(TransformError::jinja(&e, &sources))
            }
        }
    }

    fn error(&self, e: &Error) -> TransformError {
        TransformError::jinja(e, &|n| self.sources.get(n).cloned())
    }
}

impl Default for JinjaEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// `{% call(args) m(…) %}` — a block whose `caller` takes arguments — with `m` a project macro: `m` is
/// imported into the template just before the block (`{% from 'file' import m as __mdp_caller_of_m %}`), so it
/// runs in the state the block was written in, where minijinja can call the block back with arguments.
/// `macro_file` finds a macro's file; other call blocks are left alone.
fn rewrite_caller_calls(text: &str, macro_file: &dyn Fn(Option<&str>, &str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("{%") {
        out.push_str(&rest[..pos]);
        let tag = &rest[pos..];
        let end = tag.find("%}").map(|e| e + 2).unwrap_or(tag.len());
        let dash = if tag[2..].starts_with('-') { "-" } else { "" };
        let inner = tag[2..].trim_start_matches('-').trim_start();
        let rewritten = inner.strip_prefix("call").and_then(|after| {
            let after = after.trim_start();
            // The caller's parameter list, then the callee's name.
            let params_end = after.strip_prefix('(').and_then(|p| p.find(')')).map(|i| i + 2)?;
            let callee_text = after[params_end..].trim_start();
            let ident =
                |s: &str| -> String { s.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect() };
            // `m(...)`, or `package.m(...)`.
            let first = ident(callee_text);
            let (qualifier, name) = match callee_text[first.len()..].strip_prefix('.') {
                Some(rest) => (Some(first.as_str()), ident(rest)),
                None => (None, first.clone()),
            };
            let written = qualifier.map_or(name.len(), |q| q.len() + 1 + name.len());
            if name.is_empty() || !callee_text[written..].trim_start().starts_with('(') {
                return None;
            }
            let file = macro_file(qualifier, &name)?;
            let alias = match qualifier {
                Some(q) => format!("__mdp_caller_of_{q}__{name}"),
                None => format!("__mdp_caller_of_{name}"),
            };
            let call_start = pos_of(tag, callee_text);
            Some(format!(
                "{{%{dash} from {file:?} import {LOCAL_MACRO_PREFIX}{name} as {alias} %}}{}{alias}{}",
                &tag[..call_start],
                &tag[call_start + written..end]
            ))
        });
        match rewritten {
            Some(text) => out.push_str(&text),
            None => out.push_str(&tag[..end]),
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of `part` (a subslice) within `whole`.
fn pos_of(whole: &str, part: &str) -> usize {
    part.as_ptr() as usize - whole.as_ptr() as usize
}

/// `{% test name(args) %}…{% endtest %}` is dbt's spelling of a macro called `test_name`.
fn rewrite_test_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("{%") {
        out.push_str(&rest[..pos]);
        let tag = &rest[pos..];
        let end = tag.find("%}").map(|e| e + 2).unwrap_or(tag.len());
        let inner = tag[2..end.saturating_sub(2).max(2)].trim_start_matches('-').trim_start();
        if let Some(after) = inner.strip_prefix("test").filter(|a| a.starts_with(char::is_whitespace)) {
            let dash = if tag[2..].starts_with('-') { "-" } else { "" };
            let close = &tag[..end];
            let close_dash = if close.ends_with("-%}") { "-" } else { "" };
            let after = after.trim().trim_end_matches('-').trim_end();
            out.push_str(&format!("{{%{dash} macro test_{after} {close_dash}%}}"));
        } else if inner.trim_end_matches("%}").trim_end_matches('-').trim() == "endtest" {
            out.push_str(&tag[..end].replace("endtest", "endmacro"));
        } else {
            out.push_str(&tag[..end]);
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    out
}

/// dbt's Jinja is Python's, where lists and dicts are mutable: `{% set cols = [] %}` followed by
/// `{% do cols.append(c) %}` (also inside loops) is everywhere in dbt projects and packages.
/// minijinja's literals are immutable, so `{% set name = [...] %}` and `{% set name = {...} %}` are
/// rewritten to build a [`MutableList`] / [`MutableMap`] instead.
fn rewrite_mutable_literals(text: &str) -> String {
    if !text.contains("set ") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(pos) = rest.find("{%") {
        out.push_str(&rest[..pos]);
        let tag = &rest[pos..];
        let Some(end) = tag.find("%}").map(|e| e + 2) else {
            out.push_str(tag);
            return out;
        };
        let body = &tag[2..end - 2];
        let open_dash = body.starts_with('-');
        let close_dash = body.ends_with('-');
        let inner = body.trim_start_matches('-').trim_end_matches('-').trim();
        let rewritten = inner.strip_prefix("set ").and_then(|assignment| {
            let (name, value) = assignment.split_once('=')?;
            let (name, value) = (name.trim(), value.trim());
            let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let wrapper = match (value.chars().next(), value.chars().last()) {
                (Some('['), Some(']')) => "__mdp_list",
                (Some('{'), Some('}')) => "__mdp_dict",
                _ => return None,
            };
            is_name.then(|| {
                format!(
                    "{{%{} set {name} = {wrapper}({value}) {}%}}",
                    if open_dash { "-" } else { "" },
                    if close_dash { "-" } else { "" }
                )
            })
        });
        out.push_str(rewritten.as_deref().unwrap_or(&tag[..end]));
        rest = &tag[end..];
    }
    out.push_str(rest);
    out
}

/// A list or dict literal as Python's: mutable, also nested (`{'k': []}` then `d['k'].append(x)`);
/// any other value as it is.
fn into_mutable(value: Value) -> Value {
    if let Some(items) = value.downcast_object_ref::<Vec<Value>>() {
        let items = items.iter().cloned().map(into_mutable).collect();
        return Value::from_object(MutableList(std::sync::Mutex::new(items)));
    }
    if let Some(map) = value.downcast_object_ref::<std::collections::BTreeMap<Value, Value>>() {
        let map = map.iter().map(|(k, v)| (k.clone(), into_mutable(v.clone()))).collect();
        return Value::from_object(MutableMap(std::sync::Mutex::new(map)));
    }
    if let Some(map) = value.downcast_object_ref::<IndexMap<Value, Value>>() {
        let map = map.iter().map(|(k, v)| (k.clone(), into_mutable(v.clone()))).collect();
        return Value::from_object(MutableMap(std::sync::Mutex::new(map)));
    }
    value
}

/// A list `append`, `extend`, `insert`, `pop` and `remove` change in place (Python's list methods).
#[derive(Debug, Default)]
pub struct MutableList(std::sync::Mutex<Vec<Value>>);

impl MutableList {
    fn items(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for MutableList {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let items = self.items();
        let index = i64::try_from(key.clone()).ok()?;
        let index = if index < 0 { items.len() as i64 + index } else { index };
        items.get(usize::try_from(index).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Seq(self.items().len())
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let mut items = self.items();
        let bad = |what: &str| Error::new(ErrorKind::InvalidOperation, format!("list.{method}: {what}"));
        match (method, args) {
            ("append", [value]) => items.push(into_mutable(value.clone())),
            ("extend", [values]) => items.extend(values.try_iter()?.map(into_mutable)),
            ("insert", [index, value]) => {
                let i = usize::try_from(i64::try_from(index.clone())?.max(0)).unwrap_or(0).min(items.len());
                items.insert(i, into_mutable(value.clone()));
            }
            ("pop", []) => return items.pop().ok_or_else(|| bad("pop from an empty list")),
            ("pop", [index]) => {
                let i = i64::try_from(index.clone())?;
                let i = if i < 0 { items.len() as i64 + i } else { i };
                let i =
                    usize::try_from(i).ok().filter(|i| *i < items.len()).ok_or_else(|| bad("index out of range"))?;
                return Ok(items.remove(i));
            }
            ("remove", [value]) => {
                let i = items.iter().position(|v| v == value).ok_or_else(|| bad("value not in list"))?;
                items.remove(i);
            }
            ("index", [value]) => {
                return items.iter().position(|v| v == value).map(Value::from).ok_or_else(|| bad("value not in list"))
            }
            ("count", [value]) => return Ok(Value::from(items.iter().filter(|v| *v == value).count())),
            _ => return Err(Error::from(ErrorKind::UnknownMethod)),
        }
        Ok(Value::from(()))
    }
}

/// A dict `update`, `pop` and `setdefault` change in place; other methods (`items`, `keys`, `get`, …)
/// are Python's through minijinja-contrib.
#[derive(Debug, Default)]
pub struct MutableMap(std::sync::Mutex<IndexMap<Value, Value>>);

impl MutableMap {
    fn entries(&self) -> std::sync::MutexGuard<'_, IndexMap<Value, Value>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Object for MutableMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.entries().get(key).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.entries().keys().cloned().collect())
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let mut entries = self.entries();
        match (method, args) {
            ("update", [other]) => {
                for key in other.try_iter()? {
                    let value = other.get_item(&key)?;
                    entries.insert(key, into_mutable(value));
                }
                Ok(Value::from(()))
            }
            ("pop", [key]) => entries
                .shift_remove(key)
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("dict.pop: no key {key}"))),
            ("pop", [key, default]) => Ok(entries.shift_remove(key).unwrap_or_else(|| default.clone())),
            ("setdefault", [key, default]) => {
                Ok(entries.entry(key.clone()).or_insert_with(|| into_mutable(default.clone())).clone())
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// The name a macro is defined under in its file's template (see [`rename_macro_definitions`]).
const LOCAL_MACRO_PREFIX: &str = "__mdp_m_";

/// `{% macro name(` → `{% macro __mdp_m_name(`: calls by the plain name then reach the global function.
fn rename_macro_definitions(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(pos) = rest.find("{%") {
        out.push_str(&rest[..pos + 2]);
        rest = &rest[pos + 2..];
        let tag = rest.trim_start_matches('-');
        let lead = rest.len() - tag.len();
        let trimmed = tag.trim_start();
        let lead = lead + (tag.len() - trimmed.len());
        if let Some(after) = trimmed.strip_prefix("macro").filter(|a| a.starts_with(char::is_whitespace)) {
            let spaces = after.len() - after.trim_start().len();
            out.push_str(&rest[..lead + "macro".len() + spaces]);
            out.push_str(LOCAL_MACRO_PREFIX);
            rest = &rest[lead + "macro".len() + spaces..];
        }
    }
    out.push_str(rest);
    out
}

/// Names of the `{% macro name(...) %}` definitions in a file.
fn macro_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find("{%") {
        let tag = rest[pos + 2..].trim_start_matches('-').trim_start();
        if let Some(after) = tag.strip_prefix("macro").filter(|a| a.starts_with(char::is_whitespace)) {
            let name: String =
                after.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        rest = &rest[pos + 2..];
    }
    names
}

/// Call macro `name` of template `file` with the current node's context, honouring `return()`.
///
/// As in dbt's Jinja (and unlike minijinja's macros): arguments beyond the macro's parameters are
/// `varargs` (positional) and `kwargs` (keywords) inside it, and a `{% call %}` block's `caller`
/// works although the macro runs in a state of its own (the block is rendered in the caller's state,
/// where it was written, and handed in as its text).
fn call_macro(state: &State, entry: &MacroEntry, name: &str, args: &[Value]) -> Result<Value, Error> {
    let (file, reads_extras) = (&*entry.file, entry.reads_extras);
    let mut ctx = SCOPE
        .with(|cell| {
            let mut scope = cell.borrow_mut();
            let scope = scope.as_mut()?;
            scope.introspective |= entry.may_introspect;
            if scope.phase == Phase::Parse {
                let id = format!("macro.{}.{name}", entry.package);
                if !scope.macros_called.contains(&id) {
                    scope.macros_called.push(id);
                }
            }
            Some(scope.ctx.clone())
        })
        .unwrap_or(Value::UNDEFINED);
    let template = state.env().get_template(file)?;
    let mut captured = template.render_captured(ctx.clone())?;
    let local = format!("{LOCAL_MACRO_PREFIX}{name}");
    let Some(mac) = captured.state().lookup(&local) else {
        return Err(Error::new(ErrorKind::UnknownFunction, format!("macro `{name}` not found in {file}")));
    };
    let call = MacroCall::new(state, name, &mac, args)?;
    if reads_extras || !call.varargs.is_empty() || !call.kwargs.is_empty() {
        // The macro reads them as free names, resolved in its file's context (empty when none came).
        let varargs = Value::from(call.varargs.clone());
        let kwargs = Value::from_iter(call.kwargs.clone());
        ctx = minijinja::context! { varargs => varargs, kwargs => kwargs, ..ctx };
        captured = template.render_captured(ctx)?;
    }
    let macro_state = captured.state();
    let mac = macro_state.lookup(&local).expect("found above");
    let saved = SCOPE.with(|cell| cell.borrow_mut().as_mut().and_then(|s| s.pending_return.take()));
    let result = mac.call(macro_state, &call.args);
    let returned =
        SCOPE.with(|cell| cell.borrow_mut().as_mut().and_then(|s| std::mem::replace(&mut s.pending_return, saved)));
    match (result, returned) {
        (_, Some(value)) => Ok(value),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(e),
    }
}

/// An unqualified macro call: the definition the rendering node's package reaches.
fn call_unqualified(
    state: &State,
    registry: &RwLock<MacroRegistry>,
    name: &str,
    args: &[Value],
) -> Result<Value, Error> {
    let from = SCOPE.with(|cell| cell.borrow().as_ref().map(|s| s.package.clone())).unwrap_or_default();
    let entry = {
        let registry = registry.read().unwrap_or_else(|e| e.into_inner());
        match registry.resolve(name, &from) {
            Some(entry) => entry.clone(),
            None => {
                let packages = registry.packages_defining(name);
                return Err(Error::new(
                    ErrorKind::UnknownFunction,
                    format!(
                        "macro `{name}` is defined in package {} and package `{from}` cannot call it unqualified: \
                         call it as {}.{name}(...)",
                        packages.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "),
                        packages.first().map(String::as_str).unwrap_or("package")
                    ),
                ));
            }
        }
    };
    call_macro(state, &entry, name, args)
}

/// A macro as a value (`dbt_utils.star`, what `adapter.dispatch` returns).
fn macro_value(name: String, entry: &MacroEntry) -> Value {
    let entry = entry.clone();
    Value::from_function(move |state: &State, args: Rest<Value>| call_macro(state, &entry, &name, &args))
}

/// `package.macro(...)`: a package's macros by name (`dbt_utils.star(...)`, `{{ my_project.m }}`).
#[derive(Debug)]
struct PackageNamespace {
    package: String,
    registry: Arc<RwLock<MacroRegistry>>,
}

impl PackageNamespace {
    fn entry(&self, name: &str) -> Option<MacroEntry> {
        self.registry.read().unwrap_or_else(|e| e.into_inner()).in_package(&self.package, name).cloned()
    }
}

impl Object for PackageNamespace {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        self.entry(name).map(|entry| macro_value(name.to_string(), &entry))
    }

    fn call_method(self: &Arc<Self>, state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match self.entry(method) {
            Some(entry) => call_macro(state, &entry, method, args),
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("{}.{method}: package `{}` has no macro `{method}`", self.package, self.package),
            )),
        }
    }
}

/// A macro call's arguments sorted out for minijinja: the ones its parameters take, and the rest.
struct MacroCall {
    /// What the macro is called with (parameters only, `caller` as the block's text).
    args: Vec<Value>,
    varargs: Vec<Value>,
    kwargs: Vec<(String, Value)>,
}

impl MacroCall {
    fn new(state: &State, name: &str, mac: &Value, args: &[Value]) -> Result<MacroCall, Error> {
        let params: Vec<String> = mac
            .get_attr("arguments")
            .ok()
            .and_then(|a| a.try_iter().ok().map(|it| it.filter_map(|v| v.as_str().map(str::to_string)).collect()))
            .unwrap_or_default();
        let (positional, keywords) = match args.split_last() {
            Some((last, rest)) if last.is_kwargs() => (rest, Some(last)),
            _ => (args, None),
        };
        let mut call_args: Vec<Value> = positional.iter().take(params.len()).cloned().collect();
        let varargs: Vec<Value> = positional.iter().skip(params.len()).cloned().collect();
        let mut taken: Vec<(String, Value)> = Vec::new();
        let mut kwargs = Vec::new();
        if let Some(keywords) = keywords {
            for key in keywords.try_iter()? {
                let Some(key_name) = key.as_str() else { continue };
                let value = keywords.get_item(&key)?;
                if key_name == "caller" {
                    taken.push((key_name.to_string(), caller_text(state, name, &value)?));
                } else if params.iter().any(|p| p == key_name) {
                    taken.push((key_name.to_string(), value));
                } else {
                    kwargs.push((key_name.to_string(), value));
                }
            }
        }
        if !taken.is_empty() {
            call_args.push(Value::from(Kwargs::from_iter(taken)));
        }
        Ok(MacroCall { args: call_args, varargs, kwargs })
    }
}

/// A `{% call %}` block's body, rendered in the state it was written in; handed to the macro as a
/// `caller()` that returns it. A block that takes arguments (`{% call(row) m() %}`) needs the caller's
/// state while the macro runs: [`rewrite_caller_calls`] imports `m` for that when it is a project
/// macro; any other is refused with a clear error.
fn caller_text(state: &State, name: &str, caller: &Value) -> Result<Value, Error> {
    let takes_arguments = caller.get_attr("arguments").ok().and_then(|a| a.len()).unwrap_or(0) > 0;
    if takes_arguments {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "`{{% call(...) {name}(...) %}}`: call blocks whose caller takes arguments work with project macros \
                 mdp read before this file, and `{name}` is not one (a package's macro, or one read later); pass the \
                 values to the macro instead"
            ),
        ));
    }
    let body = caller.call(state, &[])?;
    Ok(Value::from_function(move |_: Rest<Value>| body.clone()))
}

fn register_globals(env: &mut Environment<'static>, registry: &Arc<RwLock<MacroRegistry>>) {
    env.add_function("ref", ref_fn);
    env.add_function("source", source_fn);
    env.add_global("config", Value::from_object(ConfigObject));
    env.add_function("var", var_fn);
    env.add_function("env_var", env_var_fn);
    env.add_function("is_incremental", || with_scope(|s| Ok(s.is_incremental)));
    env.add_function("doc", doc_fn);
    env.add_function("log", log_fn);
    env.add_function("return", |value: Value| -> Result<Value, Error> {
        with_scope(|s| {
            s.pending_return = Some(value);
            Ok(())
        })?;
        Err(Error::new(ErrorKind::InvalidOperation, "return() used outside of a macro"))
    });
    // dbt's YAML-rendering filters: values are already native here.
    for name in ["as_number", "as_bool", "as_native", "as_text"] {
        env.add_filter(name, |v: Value| v);
    }
    env.add_global("exceptions", Value::from_object(Exceptions));
    env.add_global("adapter", Value::from_object(Adapter { registry: registry.clone() }));
    env.add_global("dbt", Value::from_object(DbtNamespace));
    env.add_function("__mdp_list", |items: Value| -> Result<Value, Error> { Ok(into_mutable(items)) });
    env.add_function("__mdp_dict", |entries: Value| -> Result<Value, Error> { Ok(into_mutable(entries)) });
    // dbt's lenient undefined has length 0 (`{{ results | length }}` on a macro's `{}` at parse).
    env.add_filter("length", |v: &Value| -> Result<usize, Error> {
        if v.is_undefined() || v.is_none() {
            return Ok(0);
        }
        minijinja::filters::length(v)
    });
    env.add_function("tojson", |v: Value| {
        serde_json::to_string(&v).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_function("fromjson", |s: String| -> Result<Value, Error> {
        let v: serde_json::Value =
            serde_json::from_str(&s).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fromjson: {e}")))?;
        Ok(Value::from_serialize(v))
    });
    env.add_function("fromyaml", |s: String| -> Result<Value, Error> {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&s).map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("fromyaml: {e}")))?;
        Ok(Value::from_serialize(v))
    });
    env.add_function("run_query", run_query_fn);
    env.add_function("statement", statement_fn);
    env.add_function("load_result", |name: String| -> Result<Value, Error> {
        with_scope(|s| Ok(s.results.get(&name).cloned().unwrap_or(Value::from(()))))
    });
    env.add_global("api", Value::from_object(Api));
    env.add_global("modules", Value::from_object(crate::modules::Modules));
}

/// The warehouse when the node is compiled to run, `None` while parsing (then the render is marked
/// introspective); an error when compiling without one (a bug: such nodes compile when they run).
fn introspector(what: &str) -> Result<Option<Arc<dyn Introspector>>, Error> {
    with_scope(|s| {
        s.introspective = true;
        match (s.phase, &s.introspector) {
            (Phase::Parse, _) => Ok(None),
            (Phase::Compile, Some(i)) => Ok(Some(i.clone())),
            (Phase::Compile, None) => Err(invalid(format!(
                "{what} needs the warehouse, and this render has none (nodes that query the warehouse are compiled \
                 when they run, by `mdp run`, `build` or `compile`)"
            ))),
        }
    })
}

/// `run_query(sql)`: the result as a table; `none` while parsing (`execute` is false), as in dbt.
fn run_query_fn(sql: String) -> Result<Value, Error> {
    let Some(warehouse) = introspector("run_query()")? else { return Ok(Value::from(())) };
    let table = warehouse.query(&sql, true).map_err(|e| invalid(format!("run_query(): {e}")))?;
    Ok(Value::from_object(AgateTable(Arc::new(table))))
}

/// `{% call statement('name', fetch_result=True) %}sql{% endcall %}`: runs the block's SQL and keeps
/// the result for `load_result('name')`; nothing while parsing.
fn statement_fn(state: &State, args: Rest<Value>) -> Result<Value, Error> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Some(last.clone())),
        _ => (&args[..], None),
    };
    let kwarg = |key: &str| kwargs.as_ref().and_then(|k| k.get_attr(key).ok()).filter(|v| !v.is_undefined());
    let name = positional.first().cloned().or_else(|| kwarg("name")).filter(|v| !v.is_none());
    let fetch = positional.get(1).cloned().or_else(|| kwarg("fetch_result")).is_some_and(|v| v.is_true());
    let Some(caller) = kwarg("caller") else {
        return Err(invalid("statement() is a call block: {% call statement('name') %}select …{% endcall %}".into()));
    };
    let Some(warehouse) = introspector("statement()")? else { return Ok(Value::from("")) };
    let sql = caller.call(state, &[])?.to_string();
    let table = warehouse.query(&sql, fetch).map_err(|e| invalid(format!("statement(): {e}")))?;
    if let Some(name) = name {
        let result = query_result(table);
        with_scope(|s| {
            s.results.insert(name.to_string(), result);
            Ok(())
        })?;
    }
    Ok(Value::from(""))
}

/// What `load_result` gives: `data` (rows as lists), `table`, `response`.
fn query_result(table: QueryTable) -> Value {
    let data: Vec<Value> = table.rows.iter().map(|r| Value::from_iter(r.iter().map(Value::from_serialize))).collect();
    let rows = table.rows.len();
    let response =
        minijinja::context! { code => "SELECT", rows_affected => rows, _message => format!("SELECT {rows}") };
    minijinja::context! { data => data, table => Value::from_object(AgateTable(Arc::new(table))), response => response }
}

/// `api.Relation.create(database=…, schema=…, identifier=…)`, as dbt_utils builds relations from
/// information_schema rows.
#[derive(Debug)]
struct Api;

impl Object for Api {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "Relation" => Some(Value::from_object(RelationFactory)),
            "Column" => Some(Value::from_object(ColumnFactory)),
            _ => None,
        }
    }
}

/// `api.Column`: `translate_type` (dbt's `TYPE_LABELS`) and `create(name, data_type)`.
#[derive(Debug)]
struct ColumnFactory;

impl Object for ColumnFactory {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "translate_type" => {
                let (dtype,): (String,) = from_args(args)?;
                Ok(Value::from(match dtype.to_ascii_uppercase().as_str() {
                    "STRING" => "TEXT".to_string(),
                    "TIMESTAMP" => "TIMESTAMP".to_string(),
                    "FLOAT" => "FLOAT".to_string(),
                    "INTEGER" => "INT".to_string(),
                    "BOOLEAN" => "BOOLEAN".to_string(),
                    _ => dtype,
                }))
            }
            "create" => {
                let (name, data_type): (String, String) = from_args(args)?;
                let quoted = with_scope(|s| {
                    scope_dialect(s, "api.Column.create()")?.quote_identifier(&name).map_err(|e| invalid(e.to_string()))
                })?;
                Ok(Value::from_object(ColumnObject {
                    column: crate::introspect::ColumnDef { name, data_type },
                    quoted,
                }))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

#[derive(Debug)]
struct RelationFactory;

impl Object for RelationFactory {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        if method != "create" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (database, schema, identifier, kwargs): (Option<String>, Option<String>, Option<String>, Kwargs) =
            from_args(args)?;
        let database = database.or(kwargs.get::<Option<String>>("database")?);
        let schema = schema.or(kwargs.get::<Option<String>>("schema")?).unwrap_or_default();
        let identifier = identifier.or(kwargs.get::<Option<String>>("identifier")?).unwrap_or_default();
        let kind = kwargs.get::<Option<Value>>("type")?.filter(|v| !v.is_none()).map(|v| v.to_string());
        let dialect = with_scope(|s| scope_dialect(s, "api.Relation.create()"))?;
        Ok(Value::from_object(Relation { kind, ..Relation::named(database, &schema, &identifier, dialect) }))
    }
}

fn ref_fn(args: Rest<Value>) -> Result<Value, Error> {
    let positional: Vec<String> = args
        .iter()
        .filter(|a| !a.is_kwargs())
        .map(|a| {
            a.as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "ref() takes model names as strings"))
        })
        .collect::<Result<_, _>>()?;
    let (package, name) = match positional.as_slice() {
        [name] => (None, name.clone()),
        [package, name] => (Some(package.clone()), name.clone()),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "ref() takes a model name, or a package and a model name",
            ))
        }
    };
    with_scope(|s| {
        if !s.refs.iter().any(|(p, n)| p == &package && n == &name) {
            s.refs.push((package.clone(), name.clone()));
        }
        let dialect = scope_dialect(s, "ref()")?;
        if s.phase == Phase::Parse {
            return Ok(Value::from_object(Relation::named(None, "__parse__", &name, dialect)));
        }
        let fixture = s.fixtures.iter().find(|input| {
            matches!(input, crate::unit::Input::Ref { package: p, name: n }
                if n == &name && (p.is_none() || package.is_none() || p == &package))
        });
        if let Some(input) = fixture {
            return Ok(Value::from_safe_string(input.cte_name()));
        }
        let resolver = s.resolver.clone();
        let target = resolver.find_ref(&s.package, package.as_deref(), &name).ok_or_else(|| {
            Error::new(ErrorKind::InvalidOperation, format!("ref('{name}') is not a model or seed of this project"))
        })?;
        if target.ephemeral {
            if !s.ephemerals.contains(&target.unique_id) {
                s.ephemerals.push(target.unique_id.clone());
            }
            return Ok(Value::from_safe_string(format!("__dbt__cte__{name}")));
        }
        let rel = target
            .relation
            .as_ref()
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, format!("ref('{name}') has no relation")))?;
        Ok(Value::from_object(Relation::checked(rel, dialect).map_err(|e| invalid(format!("ref('{name}'): {e}")))?))
    })
}

fn source_fn(source: String, table: String) -> Result<Value, Error> {
    with_scope(|s| {
        if !s.sources.iter().any(|(a, b)| a == &source && b == &table) {
            s.sources.push((source.clone(), table.clone()));
        }
        let dialect = scope_dialect(s, "source()")?;
        if s.phase == Phase::Parse {
            return Ok(Value::from_object(Relation::named(None, &source, &table, dialect)));
        }
        let fixture = s.fixtures.iter().find(
            |input| matches!(input, crate::unit::Input::Source { source: a, table: b } if a == &source && b == &table),
        );
        if let Some(input) = fixture {
            return Ok(Value::from_safe_string(input.cte_name()));
        }
        let rel = s.resolver.sources.get(&(source.clone(), table.clone())).ok_or_else(|| {
            Error::new(ErrorKind::InvalidOperation, format!("source('{source}', '{table}') is not declared"))
        })?;
        let relation =
            Relation::checked(rel, dialect).map_err(|e| invalid(format!("source('{source}', '{table}'): {e}")))?;
        Ok(Value::from_object(relation))
    })
}

fn var_fn(name: String, default: Option<Value>) -> Result<Value, Error> {
    with_scope(|s| {
        match s.vars.get(&name) {
        Some(v) => Ok(Value::from_serialize(v)),
        None => default.ok_or_else(|| {
            Error::new(ErrorKind::InvalidOperation, format!("required var '{name}' is not set: add it under `vars:` in dbt_project.yml, pass --vars '{{{name}: ...}}', or give var() a default"))
        }),
    }
    })
}

fn env_var_fn(name: String, default: Option<String>) -> Result<String, Error> {
    match std::env::var(&name) {
        Ok(v) => Ok(v),
        Err(_) => default.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("env var `{name}` is not set and env_var() was given no default"),
            )
        }),
    }
}

fn doc_fn(name: String) -> Result<Value, Error> {
    with_scope(|s| match s.resolver.docs.get(&name) {
        Some(text) => Ok(Value::from(text.clone())),
        None if s.phase == Phase::Parse => Ok(Value::from("")),
        None => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("doc('{name}') not found: define it in a {{% docs {name} %}} block in a .md file"),
        )),
    })
}

fn log_fn(message: Value, rest: Rest<Value>) -> String {
    // `log(msg, True)` or `log(msg, info=True)`.
    let info = rest.iter().any(|v| v.is_true() && !v.is_kwargs())
        || rest.iter().filter(|v| v.is_kwargs()).any(|v| v.get_attr("info").map(|i| i.is_true()).unwrap_or(false));
    let in_compile = SCOPE.with(|cell| cell.borrow().as_ref().map(|s| s.phase == Phase::Compile)).unwrap_or(false);
    if in_compile {
        if info {
            tracing::info!(target: "mdp::jinja", "{message}");
        } else {
            tracing::debug!(target: "mdp::jinja", "{message}");
        }
    }
    String::new()
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, message)
}

/// A relation as templates see it: renders as `"schema"."identifier"`, quoted by the target's
/// dialect.
#[derive(Debug, Clone)]
pub struct Relation {
    pub database: Option<String>,
    pub schema: String,
    pub identifier: String,
    /// `table`, `view`, `cte`, … when known (from the warehouse, or `api.Relation.create(type=…)`).
    pub kind: Option<String>,
    dialect: &'static dyn Dialect,
}

impl Relation {
    /// The relation `schema.identifier` on a warehouse speaking `dialect`.
    pub fn named(database: Option<String>, schema: &str, identifier: &str, dialect: &'static dyn Dialect) -> Self {
        Relation { database, schema: schema.to_string(), identifier: identifier.to_string(), kind: None, dialect }
    }

    /// A node's relation; refused when the dialect cannot quote its names (empty, NUL bytes).
    pub fn checked(rel: &RelationName, dialect: &'static dyn Dialect) -> Result<Self, mdp_warehouse::WarehouseError> {
        let relation = Relation::named(rel.database.clone(), &rel.schema, &rel.identifier, dialect);
        relation.render()?;
        Ok(relation)
    }

    fn render(&self) -> Result<String, mdp_warehouse::WarehouseError> {
        self.dialect.qualified(&TableRef::new(self.schema.clone(), self.identifier.clone()))
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.render() {
            Ok(quoted) => f.write_str(&quoted),
            // Only a parse-phase placeholder gets here (compile-phase relations are `checked`), and
            // parse output is never run: `ref('')` is reported when refs are resolved.
            Err(_) => write!(f, "{}.{}", self.schema, self.identifier),
        }
    }
}

impl Object for Relation {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        Some(match key.as_str()? {
            "database" => Value::from(self.database.clone()),
            "schema" => Value::from(self.schema.clone()),
            "identifier" | "name" | "table" => Value::from(self.identifier.clone()),
            "type" => Value::from(self.kind.clone()),
            "is_table" => Value::from(self.kind.as_deref() == Some("table")),
            "is_view" => Value::from(self.kind.as_deref() == Some("view")),
            "is_cte" => Value::from(self.kind.as_deref() == Some("cte")),
            // What dbt_utils' `_is_relation` checks: `obj.get('metadata', {}).get('type', '').endswith('Relation')`.
            "metadata" => minijinja::context! { type => relation_class(self.dialect.name()) },
            _ => return None,
        })
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    /// Its fields, so that relations hash and compare by what they name (dbt_utils keys dicts by
    /// relation: `relation_columns[relation]`).
    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Str(&["database", "schema", "identifier", "type"])
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "render" => Ok(Value::from(self.to_string())),
            "include" => Ok(Value::from_object((**self).clone())),
            "quote" => Ok(Value::from_object((**self).clone())),
            _ => {
                let _ = args;
                Err(Error::from(ErrorKind::UnknownMethod))
            }
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// The class name dbt's adapters give their relations (`DuckDBRelation`, `PostgresRelation`).
fn relation_class(adapter: &str) -> String {
    let prefix = match adapter {
        "duckdb" => "DuckDB".to_string(),
        "postgres" => "Postgres".to_string(),
        "bigquery" => "BigQuery".to_string(),
        other => other.chars().take(1).flat_map(char::to_uppercase).chain(other.chars().skip(1)).collect(),
    };
    format!("{prefix}Relation")
}

/// `config(...)` records settings during parse; `config.get(key, default)` reads them.
#[derive(Debug)]
struct ConfigObject;

impl Object for ConfigObject {
    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        let mut settings = IndexMap::new();
        for arg in args {
            if arg.is_kwargs() || arg.kind() == minijinja::value::ValueKind::Map {
                let json: serde_json::Value =
                    serde_json::to_value(arg).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
                if let serde_json::Value::Object(map) = json {
                    settings.extend(map);
                }
            } else {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "config() takes keyword arguments, e.g. config(materialized='table')",
                ));
            }
        }
        with_scope(|s| {
            if s.phase == Phase::Parse {
                for (k, v) in &settings {
                    s.config.insert(k.clone(), v.clone());
                }
                s.config_calls.push(settings);
            }
            Ok(Value::from(""))
        })
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "get" | "require" => {
                let (key, default, _kwargs): (String, Option<Value>, Option<Kwargs>) = from_args(args)?;
                let found =
                    with_scope(|s| Ok(s.config.get(&key).or_else(|| s.config.get(&key.replace('_', "-"))).cloned()))?;
                match found {
                    Some(serde_json::Value::Null) | None if method == "require" => Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("config `{key}` is required for this node"),
                    )),
                    Some(serde_json::Value::Null) | None => Ok(default.unwrap_or(Value::from(()))),
                    Some(v) => Ok(Value::from_serialize(v)),
                }
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

#[derive(Debug)]
struct Exceptions;

impl Object for Exceptions {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        let message = args.first().map(|v| v.to_string()).unwrap_or_default();
        match method {
            "raise_compiler_error" => {
                Err(Error::new(ErrorKind::InvalidOperation, format!("compilation error: {message}")))
            }
            "raise_not_implemented" => {
                Err(Error::new(ErrorKind::InvalidOperation, format!("not implemented: {message}")))
            }
            "warn" => {
                tracing::warn!(target: "mdp::jinja", "{message}");
                Ok(Value::from(""))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `dbt.<macro>(...)`: dbt-core's namespace for its global macros (`dbt.date_trunc`, …), which are
/// global functions here.
#[derive(Debug)]
struct DbtNamespace;

impl Object for DbtNamespace {
    fn call_method(self: &Arc<Self>, state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match state.lookup(method).filter(|v| !v.is_undefined()) {
            Some(f) => f.call(state, args),
            None => Err(Error::new(
                ErrorKind::UnknownFunction,
                format!("dbt.{method}: no such macro in mdp's built-ins or the project"),
            )),
        }
    }
}

#[derive(Debug)]
struct Adapter {
    registry: Arc<RwLock<MacroRegistry>>,
}

impl Object for Adapter {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "type" => SCOPE.with(|cell| cell.borrow().as_ref().and_then(|s| s.dialect).map(|d| Value::from(d.name()))),
            _ => None,
        }
    }

    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "quote" => {
                let (ident,): (String,) = from_args(args)?;
                let dialect = with_scope(|s| scope_dialect(s, "adapter.quote()"))?;
                let quoted = dialect.quote_identifier(&ident).map_err(|e| invalid(format!("adapter.quote: {e}")))?;
                Ok(Value::from_safe_string(quoted))
            }
            "dispatch" => {
                // dispatch('name', 'namespace') or dispatch(macro_name=..., macro_namespace=...).
                let (name, namespace, kwargs): (Option<String>, Option<Value>, Kwargs) = from_args(args)?;
                let name = match name {
                    Some(name) => name,
                    None => kwargs.get::<String>("macro_name")?,
                };
                let namespace = match namespace {
                    Some(ns) => Some(ns),
                    None => kwargs.get::<Option<Value>>("macro_namespace")?,
                };
                let _ = kwargs.get::<Option<Value>>("packages")?;
                let namespace = match namespace.filter(|ns| !ns.is_none() && !ns.is_undefined()) {
                    None => None,
                    Some(ns) => Some(ns.as_str().map(str::to_string).ok_or_else(|| {
                        invalid(format!(
                            "adapter.dispatch('{name}'): the macro namespace must be a package name (a string)"
                        ))
                    })?),
                };
                let (adapter, from) =
                    with_scope(|s| Ok((scope_dialect(s, "adapter.dispatch()")?.name(), s.package.clone())))?;
                let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
                match registry.dispatch(adapter, &name, namespace.as_deref(), &from) {
                    Ok((found, entry)) => Ok(macro_value(found, entry)),
                    Err(attempts) => Err(Error::new(
                        ErrorKind::UnknownFunction,
                        format!(
                            "In dispatch: No macro named '{name}' found within namespace: '{}'; searched for: {}",
                            namespace.as_deref().unwrap_or("None"),
                            attempts.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
                        ),
                    )),
                }
            }
            "get_relation" => {
                let (database, schema, identifier, kwargs): (Option<Value>, Option<String>, Option<String>, Kwargs) =
                    from_args(args)?;
                let database = database.or(kwargs.get::<Option<Value>>("database")?).filter(|v| !v.is_none());
                let schema = schema.or(kwargs.get::<Option<String>>("schema")?).unwrap_or_default();
                let identifier = identifier.or(kwargs.get::<Option<String>>("identifier")?).unwrap_or_default();
                let Some(warehouse) = introspector("adapter.get_relation()")? else { return Ok(Value::from(())) };
                let found = warehouse
                    .relation_type(&schema, &identifier)
                    .map_err(|e| invalid(format!("adapter.get_relation(): {e}")))?;
                let dialect = with_scope(|s| scope_dialect(s, "adapter.get_relation()"))?;
                Ok(match found {
                    Some(kind) => Value::from_object(Relation {
                        kind: Some(kind.to_string()),
                        ..Relation::named(database.map(|d| d.to_string()), &schema, &identifier, dialect)
                    }),
                    None => Value::from(()),
                })
            }
            "get_columns_in_relation" => {
                let (relation,): (Value,) = from_args(args)?;
                let Some(warehouse) = introspector("adapter.get_columns_in_relation()")? else {
                    return Ok(Value::from(Vec::<Value>::new()));
                };
                let part = |key: &str| relation.get_attr(key).ok().filter(|v| !v.is_undefined() && !v.is_none());
                let (Some(schema), Some(identifier)) = (part("schema"), part("identifier")) else {
                    return Err(invalid(format!(
                        "adapter.get_columns_in_relation({relation}): expected a relation (ref(), source(), \
                         api.Relation.create())"
                    )));
                };
                let columns = warehouse
                    .columns(&schema.to_string(), &identifier.to_string())
                    .map_err(|e| invalid(format!("adapter.get_columns_in_relation(): {e}")))?;
                let dialect = with_scope(|s| scope_dialect(s, "adapter.get_columns_in_relation()"))?;
                columns
                    .into_iter()
                    .map(|column| {
                        let quoted = dialect.quote_identifier(&column.name).map_err(|e| invalid(e.to_string()))?;
                        Ok(Value::from_object(ColumnObject { column, quoted }))
                    })
                    .collect()
            }
            "execute" => {
                // adapter.execute(sql, auto_begin=False, fetch=False) → (response, table)
                let (sql, _auto_begin, fetch, kwargs): (String, Option<bool>, Option<bool>, Kwargs) = from_args(args)?;
                let fetch = fetch.or(kwargs.get::<Option<bool>>("fetch")?).unwrap_or(false);
                let _ = kwargs.get::<Option<bool>>("auto_begin")?;
                let Some(warehouse) = introspector("adapter.execute()")? else { return Ok(Value::from(())) };
                let table = warehouse.query(&sql, fetch).map_err(|e| invalid(format!("adapter.execute(): {e}")))?;
                let result = query_result(table);
                Ok(Value::from(vec![result.get_attr("response")?, result.get_attr("table")?]))
            }
            "get_missing_columns" => Err(Error::new(
                ErrorKind::InvalidOperation,
                "adapter.get_missing_columns() is not supported by mdp yet",
            )),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `run_started_at`: renders like Python's datetime, with `strftime` and `isoformat`.
#[derive(Debug)]
pub struct RunStartedAt(pub chrono::DateTime<chrono::Utc>);

impl Object for RunStartedAt {
    fn call_method(self: &Arc<Self>, _state: &State<'_, '_>, method: &str, args: &[Value]) -> Result<Value, Error> {
        match method {
            "strftime" => {
                let (format,): (String,) = from_args(args)?;
                Ok(Value::from(self.0.format(&format).to_string()))
            }
            "isoformat" => Ok(Value::from(self.0.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string())),
            "timestamp" => Ok(Value::from(self.0.timestamp() as f64)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d %H:%M:%S%.6f+00:00"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdp_warehouse::{DuckDbDialect, PostgresDialect};

    #[test]
    fn lists_and_dicts_change_in_place_as_in_dbt() {
        let mut env = JinjaEnv::new();
        let template = "{% set cols = [] %}{% for c in ['a', 'b'] %}{% do cols.append(c ~ '_x') %}{% endfor %}\
            {{ cols | join(',') }} {{ cols | length }} {{ cols[0] }} {{ cols[-1] }} {{ 'a_x' in cols }}\
            {%- set d = {} %}{% do d.update({'k': 1}) %}{% do d.update({'j': 2}) %} {{ d.k }} {{ d['j'] }}\
            {% for k, v in d.items() %} {{ k }}={{ v }}{% endfor %} {{ cols | tojson }} {{ d | length }}\
            {%- set seeded = ['z'] %}{% do seeded.extend(cols) %} {{ seeded | join('+') }} {{ seeded.pop() }} {{ seeded | length }}\
            {%- set empty = [] %} {{ 'empty' if not empty else 'full' }} {{ (cols + ['c']) | join(',') }}";
        env.add_node_template("p", "t", template).unwrap();
        let scope = RenderScope::new(
            Phase::Compile,
            "p",
            Arc::new(Resolver::default()),
            Arc::new(IndexMap::new()),
            &DuckDbDialect,
        );
        let (out, _) = env.render("t", Value::from(()), scope).unwrap();
        assert_eq!(out, "a_x,b_x 2 a_x b_x True 1 2 k=1 j=2 [\"a_x\",\"b_x\"] 2 z+a_x+b_x b_x 2 empty a_x,b_x,c");
        // A set of anything else is left alone.
        let plain = "{% set x = 1 %}{%- set y -%}[]{%- endset %}{% set z = cols[0] %}";
        assert_eq!(rewrite_mutable_literals(plain), plain);
    }

    #[test]
    fn test_blocks_become_macros() {
        let text = "{% test is_even(model, column_name) %}\nselect 1\n{% endtest %}";
        let out = rewrite_test_blocks(text);
        assert_eq!(out, "{% macro test_is_even(model, column_name) %}\nselect 1\n{% endmacro %}");
        assert_eq!(macro_names(&out), vec!["test_is_even"]);
        let dashed = rewrite_test_blocks("{%- test x(model) -%}a{%- endtest -%}");
        assert_eq!(dashed, "{%- macro test_x(model) -%}a{%- endmacro -%}");
    }

    fn scope(phase: Phase) -> RenderScope {
        RenderScope::new(
            phase,
            "p",
            Arc::new(Resolver { root_package: "p".into(), ..Default::default() }),
            Arc::new(IndexMap::new()),
            &DuckDbDialect,
        )
    }

    #[test]
    fn macros_see_the_node_context_and_return_values() {
        let mut env = JinjaEnv::new();
        env.add_macro_file(
            "p",
            "macros/m.sql",
            "{% macro double(x) %}{{ return(x * 2) }}{% endmacro %}{% macro who() %}{{ this }}{% endmacro %}",
        )
        .unwrap();
        env.add_node_template("p", "models/a.sql", "{{ double(21) }} {{ who() }} {{ double(x=1) }}").unwrap();
        let ctx = minijinja::context! { this => Value::from_object(Relation::named(None, "s", "a", &DuckDbDialect)) };
        let (out, _) = env.render("models/a.sql", ctx, scope(Phase::Compile)).unwrap();
        assert_eq!(out, r#"42 "s"."a" 2"#);
    }

    #[test]
    fn call_blocks_varargs_and_kwargs_work_as_in_dbt() {
        let mut env = JinjaEnv::new();
        env.add_macro_file(
            "p",
            "macros/m.sql",
            "{% macro wrap(alias) %}select {{ caller() }} as {{ alias }}{% endmacro %}\n\
             {% macro count_args(first) %}{{ return([first, varargs | length, kwargs | length, kwargs.get('b', 0)]) }}{% endmacro %}\n\
             {% macro plain(x) %}{{ x }}{% endmacro %}\n\
             {% macro rows() %}{% for r in [1, 2] %}{{ caller(r) }}{% endfor %}{% endmacro %}",
        )
        .unwrap();
        // The block is written in the model: it sees the model's context (`this`, its loop variables).
        env.add_node_template("p", 
            "models/a.sql",
            "{% for n in [7] %}{% call wrap('v') %}{{ n }} + {{ this }}{% endcall %}{% endfor %} | {{ count_args(1, 2, 3, a=4, b=5) }} | {{ count_args(first=9) }} | {{ plain(x=3) }}",
        )
        .unwrap();
        let ctx = minijinja::context! { this => "t" };
        let (out, _) = env.render("models/a.sql", ctx.clone(), scope(Phase::Compile)).unwrap();
        assert_eq!(out, "select 7 + t as v | [1, 2, 2, 5] | [9, 0, 0, 0] | 3");
        // A caller taking arguments: the macro runs in the model's state, and calls the block back.
        env.add_node_template(
            "p",
            "models/b.sql",
            "{% for k in ['x'] %}{%- call(r) rows() -%}[{{ k }}{{ r }}{{ this }}]{%- endcall %}{% endfor %}",
        )
        .unwrap();
        let (out, _) = env.render("models/b.sql", ctx.clone(), scope(Phase::Compile)).unwrap();
        assert_eq!(out, "[x1t][x2t]");
        // …also from another macro file.
        env.add_macro_file(
            "p",
            "macros/n.sql",
            "{% macro listed() %}{% call(r) rows() %}<{{ r }}>{% endcall %}{% endmacro %}",
        )
        .unwrap();
        env.add_node_template("p", "models/c.sql", "{{ listed() }}").unwrap();
        assert_eq!(env.render("models/c.sql", ctx.clone(), scope(Phase::Compile)).unwrap().0, "<1><2>");
        // A callee mdp did not know when the block was read (a macro file read later) is refused by name,
        // not with minijinja's "template state went away".
        env.add_node_template("p", "models/d.sql", "{% call(r) later() %}{{ r }}{% endcall %}").unwrap();
        env.add_macro_file("p", "macros/later.sql", "{% macro later() %}{{ caller(1) }}{% endmacro %}").unwrap();
        let error = env.render("models/d.sql", ctx.clone(), scope(Phase::Compile)).unwrap_err().to_string();
        assert!(error.contains("call blocks whose caller takes arguments work with project macros"), "{error}");
        // A package's macro, called by its package name.
        env.add_macro_file(
            "pkg",
            "dbt_packages/pkg/macros/each.sql",
            "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}",
        )
        .unwrap();
        env.add_node_template("p", "models/e.sql", "{% call(r) pkg.each([3, 4]) %}[{{ r }}]{% endcall %}").unwrap();
        assert_eq!(env.render("models/e.sql", ctx, scope(Phase::Compile)).unwrap().0, "[3][4]");
        assert!(error.contains("models/d.sql:1"), "names the file and line: {error}");
    }

    #[test]
    fn parse_records_refs_sources_and_config() {
        let mut env = JinjaEnv::new();
        env.add_node_template("p", "models/b.sql", "{{ config(materialized='table', tags=['x']) }}select * from {{ ref('a') }} join {{ source('raw', 'events') }}").unwrap();
        let (_, s) = env.render("models/b.sql", Value::UNDEFINED, scope(Phase::Parse)).unwrap();
        assert_eq!(s.refs, vec![(None, "a".to_string())]);
        assert_eq!(s.sources, vec![("raw".to_string(), "events".to_string())]);
        assert_eq!(s.config_calls[0]["materialized"], serde_json::json!("table"));
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let mut env = JinjaEnv::new();
        env.add_node_template("p", "models/c.sql", "select 1\nfrom {{ nope_fn() }}").unwrap();
        let err = env.render("models/c.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap_err().to_string();
        assert!(err.starts_with("models/c.sql:2:"), "{err}");
        let bad = JinjaEnv::new().add_template("models/d.sql", "{% if %}").unwrap_err().to_string();
        assert!(bad.starts_with("models/d.sql:1:"), "{bad}");
        let raised = {
            let mut env = JinjaEnv::new();
            env.add_node_template("p", "models/e.sql", "{{ exceptions.raise_compiler_error('bad input') }}").unwrap();
            env.render("models/e.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap_err().to_string()
        };
        assert!(raised.contains("bad input"), "{raised}");
    }

    #[test]
    fn dbt_context_functions_behave_like_dbt() {
        let mut env = JinjaEnv::new();
        env.add_macro_file(
            "p",
            "macros/dispatch.sql",
            "{% macro cast_text(x) %}{{ return(adapter.dispatch('cast_text')(x)) }}{% endmacro %}\
             {% macro default__cast_text(x) %}cast({{ x }} as text){% endmacro %}\
             {% macro duckdb__cast_text(x) %}cast({{ x }} as varchar){% endmacro %}",
        )
        .unwrap();
        env.add_node_template("p", 
            "models/f.sql",
            "{{ cast_text('a') }}|{{ run_started_at.strftime('%Y') }}|{{ env_var('MDP_SURELY_UNSET_VAR', 'dflt') }}|\
             {{ log('hello', info=True) }}{{ fromjson('{\"k\": [1, 2]}')['k'] | length }}|{{ 'Ab'.upper() }}|\
             {{ is_incremental() }}|{{ var('v', 'x') }}|{{ adapter.quote('c') }}|{{ config.get('materialized', 'view') }}",
        )
        .unwrap();
        let ctx = minijinja::context! { run_started_at => Value::from_object(RunStartedAt(chrono::DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").unwrap().into())) };
        let mut s = scope(Phase::Compile);
        s.is_incremental = true;
        s.config.insert("materialized".into(), serde_json::json!("table"));
        let (out, _) = env.render("models/f.sql", ctx.clone(), s).unwrap();
        assert_eq!(
            out, r#"cast(a as varchar)|2026|dflt|2|AB|True|x|"c"|table"#,
            "booleans render as Python's True, as in dbt"
        );
        let pg = RenderScope::new(
            Phase::Compile,
            "p",
            Arc::new(Resolver::default()),
            Arc::new(IndexMap::new()),
            &PostgresDialect,
        );
        let (out, _) = env.render("models/f.sql", ctx, pg).unwrap();
        assert!(out.starts_with("cast(a as text)|"), "dispatch falls back to default__ on other adapters: {out}");
    }

    #[test]
    fn identifiers_are_quoted_by_the_targets_dialect() {
        let mut env = JinjaEnv::new();
        env.add_node_template("p", "models/q.sql", "{{ adapter.quote('a\"b') }} {{ this }} {{ adapter.type }}")
            .unwrap();
        let this = Relation::named(None, "my schema", "x\"y", &PostgresDialect);
        let ctx = minijinja::context! { this => Value::from_object(this) };
        let pg = RenderScope::new(
            Phase::Compile,
            "p",
            Arc::new(Resolver::default()),
            Arc::new(IndexMap::new()),
            &PostgresDialect,
        );
        let (out, _) = env.render("models/q.sql", ctx, pg).unwrap();
        assert_eq!(out, r#""a""b" "my schema"."x""y" postgres"#);
        // An identifier no quoting makes safe is refused, not rendered.
        env.add_node_template("p", "models/empty.sql", "{{ adapter.quote('') }}").unwrap();
        let err = env.render("models/empty.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap_err().to_string();
        assert!(err.contains("invalid identifier"), "{err}");
        // profiles.yml is rendered before the warehouse is known: no adapter there.
        let before =
            RenderScope::before_target(Phase::Compile, "p", Arc::new(Resolver::default()), Arc::new(IndexMap::new()));
        let err = env.render("models/empty.sql", Value::UNDEFINED, before).unwrap_err().to_string();
        assert!(err.contains("adapter.quote() is not available in profiles.yml"), "{err}");
    }

    /// A warehouse that answers from fixed data, recording what it was asked.
    #[derive(Debug, Default)]
    struct FakeWarehouse {
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl Introspector for FakeWarehouse {
        fn query(&self, sql: &str, fetch: bool) -> Result<QueryTable, String> {
            self.asked.lock().unwrap().push(sql.to_string());
            if sql.contains("boom") {
                return Err("Binder Error: column boom does not exist".into());
            }
            Ok(if fetch {
                QueryTable {
                    columns: vec!["channel".into(), "n".into()],
                    types: vec!["Utf8".into(), "Int64".into()],
                    rows: vec![vec!["search".into(), 2.into()], vec!["video".into(), 1.into()]],
                }
            } else {
                QueryTable::default()
            })
        }

        fn columns(&self, _schema: &str, identifier: &str) -> Result<Vec<crate::introspect::ColumnDef>, String> {
            let column =
                |name: &str, ty: &str| crate::introspect::ColumnDef { name: name.into(), data_type: ty.into() };
            Ok(match identifier {
                "orders" => vec![column("id", "INTEGER"), column("Note", "VARCHAR"), column("amount", "DECIMAL(10,2)")],
                _ => Vec::new(),
            })
        }

        fn relation_type(&self, _schema: &str, identifier: &str) -> Result<Option<&'static str>, String> {
            Ok((identifier == "orders").then_some("table"))
        }
    }

    #[test]
    fn introspection_reads_the_warehouse_at_compile_and_nothing_at_parse() {
        let mut env = JinjaEnv::new();
        env.add_node_template(
            "p",
            "models/q.sql",
            "{% set t = run_query('select channel, count(*) as n from x group by 1') %}\
             {%- call statement('s', fetch_result=True) %}select 1{% endcall -%}\
             {%- set r = load_result('s') -%}\
             {%- set cols = adapter.get_columns_in_relation(api.Relation.create(schema='main', identifier='orders')) -%}\
             {%- set rel = adapter.get_relation(database=none, schema='main', identifier='orders') -%}\
             {{ execute }}|{{ t.columns[0].values() | join(',') if t else 'none' }}|{{ t.rows[1]['n'] if t else '' }}|\
             {{ r['data'][0][0] if r else '' }}|{{ cols | map(attribute='name') | join(',') }}|\
             {{ cols | map(attribute='quoted') | join(',') }}|\
             {%- for c in cols %}{{ 'n' if c.is_number() else 's' if c.is_string() else '?' }}{% endfor %}|\
             {{ rel }}|{{ adapter.get_relation(none, 'main', 'missing') }}",
        )
        .unwrap();
        // Parse: no query, `execute` false, introspection answers none / [] and marks the render.
        let ctx = minijinja::context! { execute => false };
        let (out, parsed) = env.render("models/q.sql", ctx, scope(Phase::Parse)).unwrap();
        assert_eq!(out, "False|none||||||None|None", "none renders as Python's None, as in dbt");
        assert!(parsed.introspective);
        // Compile with the warehouse: real answers.
        let warehouse = Arc::new(FakeWarehouse::default());
        let mut compile = scope(Phase::Compile);
        compile.introspector = Some(warehouse.clone());
        let (out, _) = env.render("models/q.sql", minijinja::context! { execute => true }, compile).unwrap();
        assert_eq!(out, r#"True|search,video|1|search|id,Note,amount|"id","Note","amount"|nsn|"main"."orders"|None"#);
        assert_eq!(warehouse.asked.lock().unwrap().len(), 2, "run_query and the statement block");
        // A failing query names the function and keeps the database's message.
        env.add_node_template("p", "models/bad.sql", "{% set t = run_query('select boom') %}").unwrap();
        let mut compile = scope(Phase::Compile);
        compile.introspector = Some(warehouse);
        let err = env.render("models/bad.sql", Value::UNDEFINED, compile).unwrap_err().to_string();
        assert!(err.contains("run_query(): Binder Error: column boom does not exist"), "{err}");
        // Compiling without the warehouse is refused, not answered with nothing.
        let err = env.render("models/bad.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap_err().to_string();
        assert!(err.contains("run_query() needs the warehouse"), "{err}");
    }

    #[test]
    fn python_modules_and_mutable_nesting_work_as_in_dbt_packages() {
        let mut env = JinjaEnv::new();
        env.add_node_template(
            "p",
            "models/m.sql",
            "{{ modules.re.sub('[^a-z0-9_]+', '', modules.re.sub('[ -]+', '_', 'Big Spend - EU' | lower)) }}|\
             {{ modules.re.sub('^[0-9]', '_9', '9lives') }}|{{ modules.re.match('a(b+)', 'abbc').group(1) }}|\
             {{ modules.re.search('x', 'abc') is none }}|{{ modules.re.findall('[0-9]+', 'a1b22') | join(',') }}|\
             {{ modules.re.compile('B', modules.re.IGNORECASE).sub('-', 'abc') }}|\
             {{ modules.datetime.datetime.now().strftime('%Y') | length }}|\
             {%- set d = {} %}{% do d.update({'k': []}) %}{% do d['k'].append(1) %}{% set l = [[]] %}{% do l[0].append(2) %}\
             {{ d['k'] | length }}{{ l[0][0] }}|{{ undefined_thing | length }}|{{ api.Column.translate_type('string') }}",
        )
        .unwrap();
        let (out, _) = env.render("models/m.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap();
        assert_eq!(out, "big_spend_eu|_9lives|bb|True|1,22|a-c|4|12|0|TEXT");
    }

    #[test]
    fn package_macros_are_reached_through_their_namespace() {
        let mut env = JinjaEnv::new();
        env.set_root_package("p");
        env.add_package("utils", false);
        env.add_macro_file(
            "utils",
            "dbt_packages/utils/macros/u.sql",
            "{% macro shout(x) %}{{ x | upper }}!{% endmacro %}",
        )
        .unwrap();
        env.add_node_template("p", "models/ok.sql", "{{ utils.shout('a') }} {% set f = utils.shout %}{{ f('b') }}")
            .unwrap();
        assert_eq!(env.render("models/ok.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap().0, "A! B!");
        // Unqualified from the root project: not visible, as in dbt, and the error says how to call it.
        env.add_node_template("p", "models/bare.sql", "{{ shout('a') }}").unwrap();
        let err = env.render("models/bare.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap_err().to_string();
        assert!(err.contains("call it as utils.shout(...)"), "{err}");
        env.add_node_template("p", "models/typo.sql", "{{ utils.shoot('a') }}").unwrap();
        let err = env.render("models/typo.sql", Value::UNDEFINED, scope(Phase::Compile)).unwrap_err().to_string();
        assert!(err.contains("package `utils` has no macro `shoot`"), "{err}");
        // A second definition in the same package is refused with both files.
        let err = env
            .add_macro_file("utils", "dbt_packages/utils/macros/v.sql", "{% macro shout(x) %}{% endmacro %}")
            .unwrap_err()
            .to_string();
        assert!(err.contains("defined twice in package `utils`") && err.contains("macros/u.sql"), "{err}");
    }
}
