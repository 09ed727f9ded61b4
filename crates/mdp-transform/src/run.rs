//! Run a selection of nodes on a warehouse: seeds, models and tests in DAG order, up to `threads`
//! at a time; a failed node skips its dependents (in `build`, a failing test skips the models
//! downstream of what it tests, as in dbt).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::stream::{FuturesUnordered, StreamExt};
use mdp_warehouse::{RelationKind, TableRef, Warehouse, WarehouseError};

use crate::compile::{CompileOptions, CompiledNode, Compiler, Existing};
use crate::error::{Result, TransformError};
use crate::graph::Graph;
use crate::introspect::{ColumnDef, Introspector, QueryTable};
use crate::manifest::{Node, ResourceType};
use crate::materialization::{self, Materialization};
use crate::materialize::{self, MaterializeError, Outcome, TestStatus};
use crate::parse::Parsed;
use crate::seed;

/// Which command is running: decides which resource types execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    Test,
    Seed,
    Snapshot,
    Build,
}

impl Command {
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Run => "run",
            Command::Test => "test",
            Command::Seed => "seed",
            Command::Snapshot => "snapshot",
            Command::Build => "build",
        }
    }

    fn executes(self, kind: ResourceType) -> bool {
        match self {
            Command::Run => kind == ResourceType::Model,
            Command::Test => kind == ResourceType::Test,
            Command::Seed => kind == ResourceType::Seed,
            Command::Snapshot => kind == ResourceType::Snapshot,
            Command::Build => kind != ResourceType::Source,
        }
    }
}

/// The final state of a node (dbt's statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Success,
    Error,
    Skipped,
    Pass,
    Warn,
    Fail,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Success => "success",
            NodeStatus::Error => "error",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Pass => "pass",
            NodeStatus::Warn => "warn",
            NodeStatus::Fail => "fail",
        }
    }

    /// Whether dependents may run after this.
    pub fn lets_dependents_run(self) -> bool {
        matches!(self, NodeStatus::Success | NodeStatus::Pass | NodeStatus::Warn)
    }
}

/// The result of one node.
#[derive(Debug, Clone)]
pub struct NodeResult {
    pub unique_id: String,
    pub status: NodeStatus,
    pub message: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub completed_at: chrono::DateTime<chrono::Utc>,
    pub execution_time: f64,
    pub rows_affected: Option<u64>,
    pub failures: Option<u64>,
    pub compiled_code: Option<String>,
    pub compiled_path: Option<PathBuf>,
    pub relation_name: Option<String>,
    /// The error may pass on a later attempt: a lock conflict, a busy or unreachable database (see
    /// `WarehouseError::is_retryable`). SQL the database rejects fails the same way every time.
    pub retryable: bool,
}

/// Progress events for a console or a UI.
pub trait RunObserver: Send + Sync {
    fn started(&self, _index: usize, _total: usize, _node: &Node) {}
    fn finished(&self, _index: usize, _total: usize, _node: &Node, _result: &NodeResult) {}
}

/// An observer that prints nothing.
#[derive(Debug, Default)]
pub struct Quiet;
impl RunObserver for Quiet {}

/// Options of one invocation.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub command: Command,
    pub threads: usize,
    pub full_refresh: bool,
    /// Where compiled SQL is written (`<project>/target`); `None` writes nothing.
    pub target_dir: Option<PathBuf>,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct RunResults {
    pub results: Vec<NodeResult>,
    pub elapsed: f64,
}

impl RunResults {
    /// Whether anything errored or failed (warnings do not count).
    pub fn success(&self) -> bool {
        self.results.iter().all(|r| matches!(r.status, NodeStatus::Success | NodeStatus::Pass | NodeStatus::Warn))
    }

    pub fn count(&self, status: NodeStatus) -> usize {
        self.results.iter().filter(|r| r.status == status).count()
    }
}

/// Read which relations exist (the compiler's one fact about the warehouse).
pub async fn existing_relations(wh: &dyn Warehouse) -> std::result::Result<Existing, WarehouseError> {
    let mut out = HashMap::new();
    for r in wh.relations(None).await? {
        out.insert((r.table.schema, r.table.name), r.kind);
    }
    Ok(out)
}

/// Compile `ids` (and write their SQL under `target/compiled`). Per-node errors are returned per node.
/// Introspective nodes are left out: they compile when they run ([`compile_with_warehouse`]).
pub fn compile_nodes(
    parsed: &Parsed,
    ids: &[String],
    existing: &Existing,
    options: &RunOptions,
) -> HashMap<String, std::result::Result<CompiledNode, String>> {
    let mut compiler = Compiler::new(
        parsed,
        existing,
        CompileOptions { full_refresh: options.full_refresh, which: Some(options.command.as_str()) },
    );
    let mut out = HashMap::new();
    for id in ids {
        let node = &parsed.manifest.nodes[id];
        if node.resource_type == ResourceType::Source || node.introspective {
            continue;
        }
        let result = compiler.compile(id).map_err(|e| e.to_string());
        out.insert(id.clone(), result);
    }
    out
}

/// Compile one node with the warehouse at hand, for Jinja that queries it (`run_query`,
/// `adapter.get_columns_in_relation`, …): what the nodes built before it hold is what it sees.
/// Needs tokio's multi-threaded runtime (the render blocks its thread on each query).
pub fn compile_with_warehouse(
    parsed: &Parsed,
    wh: &dyn Warehouse,
    id: &str,
    existing: &Existing,
    options: &RunOptions,
) -> std::result::Result<CompiledNode, String> {
    let introspector = WarehouseIntrospector::new(wh)?;
    let mut compiler = Compiler::new(
        parsed,
        existing,
        CompileOptions { full_refresh: options.full_refresh, which: Some(options.command.as_str()) },
    )
    .with_introspector(Arc::new(introspector));
    compiler.compile(id).map_err(|e| e.to_string())
}

/// The warehouse as a render sees it: each call blocks the render's thread on the async query.
struct WarehouseIntrospector {
    wh: Arc<dyn Warehouse>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for WarehouseIntrospector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarehouseIntrospector").field("warehouse", &self.wh.describe()).finish()
    }
}

impl WarehouseIntrospector {
    fn new(wh: &dyn Warehouse) -> std::result::Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "querying the warehouse while compiling needs a tokio runtime".to_string())?;
        if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
            return Err("querying the warehouse while compiling needs tokio's multi-threaded runtime".into());
        }
        let wh = block_on_other_thread(&runtime, wh.session())
            .map_err(|e| format!("could not open a session for the model's queries: {e}"))?;
        Ok(WarehouseIntrospector { wh, runtime })
    }

    fn block<T: Send>(&self, work: impl std::future::Future<Output = T> + Send) -> T {
        block_on_other_thread(&self.runtime, work)
    }
}

/// Run `work` to its end on a thread of its own and wait for it (the render is synchronous).
///
/// Never `block_on` on the render's own thread: that thread may be the one driving the whole run
/// (`Runtime::block_on` of `mdp build`, of a test), and tokio's `block_on`s on one thread share its
/// parker, so a nested one swallows the wake-ups meant for the outer one. The nodes the run has in
/// flight are woken while the render waits (their answers arrive), the outer `block_on` misses it, and
/// once the render is done the run sleeps forever with every answer in (the hang CI met on the
/// introspection fixture: Postgres sessions idle in transaction, nothing waiting on a lock). The render's
/// thread waits in `join` instead, which leaves tokio's parker alone.
fn block_on_other_thread<T: Send>(
    runtime: &tokio::runtime::Handle,
    work: impl std::future::Future<Output = T> + Send,
) -> T {
    tokio::task::block_in_place(|| {
        std::thread::scope(|scope| {
            scope.spawn(|| runtime.block_on(work)).join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

impl Introspector for WarehouseIntrospector {
    fn query(&self, sql: &str, fetch: bool) -> std::result::Result<QueryTable, String> {
        if !fetch {
            self.block(self.wh.execute(sql)).map_err(|e| e.to_string())?;
            return Ok(QueryTable::default());
        }
        let batches = self.block(self.wh.query_all(sql)).map_err(|e| e.to_string())?;
        query_table(&batches).map_err(|e| e.to_string())
    }

    fn columns(&self, schema: &str, identifier: &str) -> std::result::Result<Vec<ColumnDef>, String> {
        let columns = self
            .block(self.wh.columns(&mdp_warehouse::TableRef::new(schema, identifier)))
            .map_err(|e| e.to_string())?;
        Ok(columns.into_iter().map(|c| ColumnDef { name: c.name, data_type: c.data_type }).collect())
    }

    fn relation_type(&self, schema: &str, identifier: &str) -> std::result::Result<Option<&'static str>, String> {
        let relations = self.block(self.wh.relations(Some(schema))).map_err(|e| e.to_string())?;
        let found = relations
            .iter()
            .find(|r| r.table.name == identifier)
            .or_else(|| relations.iter().find(|r| r.table.name.eq_ignore_ascii_case(identifier)));
        Ok(found.map(|r| match r.kind {
            RelationKind::View => "view",
            _ => "table",
        }))
    }
}

/// A query's batches as a [`QueryTable`]: integers and booleans as such, other numbers as floats
/// (what Jinja arithmetic and rendering need), the rest as text.
fn query_table(batches: &[arrow::array::RecordBatch]) -> std::result::Result<QueryTable, WarehouseError> {
    use arrow::datatypes::DataType;
    let Some(first) = batches.first() else { return Ok(QueryTable::default()) };
    let schema = first.schema();
    let columns = schema.fields().iter().map(|f| f.name().clone()).collect();
    let types: Vec<DataType> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
    let rows = mdp_warehouse::string_rows(batches)?
        .into_iter()
        .map(|row| {
            row.into_iter()
                .zip(&types)
                .map(|(value, ty)| {
                    let Some(text) = value else { return serde_json::Value::Null };
                    match ty {
                        t if t.is_integer() => {
                            text.parse::<i64>().map(Into::into).unwrap_or(serde_json::Value::String(text))
                        }
                        DataType::Boolean => serde_json::Value::Bool(text == "true"),
                        t if t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..)) => {
                            text.parse::<f64>()
                                .ok()
                                .and_then(serde_json::Number::from_f64)
                                .map(serde_json::Value::Number)
                                .unwrap_or(serde_json::Value::String(text))
                        }
                        _ => serde_json::Value::String(text),
                    }
                })
                .collect()
        })
        .collect();
    Ok(QueryTable { columns, types: types.iter().map(|t| t.to_string()).collect(), rows })
}

/// The `target/compiled` files of compiled models, snapshots and tests: (path, SQL).
pub fn compiled_files(
    parsed: &Parsed,
    compiled: &HashMap<String, std::result::Result<CompiledNode, String>>,
    target_dir: &std::path::Path,
) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = compiled
        .iter()
        .filter_map(|(id, c)| {
            let node = &parsed.manifest.nodes[id];
            let sql = c.as_ref().ok()?;
            matches!(node.resource_type, ResourceType::Model | ResourceType::Test | ResourceType::Snapshot)
                .then(|| (compiled_path(target_dir, "compiled", node), sql.sql.clone()))
        })
        .collect();
    files.sort();
    files
}

/// Write files, creating their folders. Artifacts are best-effort: a full disk must not fail a build.
pub fn write_files(files: &[(PathBuf, String)]) {
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        if let Err(e) = std::fs::write(path, text) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

/// `target/<kind>/<package>/<file>` (nodes defined in YAML: `<properties file>/<name>.sql`).
pub fn compiled_path(target_dir: &std::path::Path, kind: &str, node: &Node) -> PathBuf {
    let base = target_dir.join(kind).join(&node.package);
    // An embedded package's files are known as `<package>/…` already.
    let file = node.original_file_path.strip_prefix(&node.package).unwrap_or(&node.original_file_path);
    // Nodes defined in YAML (generic and unit tests, YAML-only snapshots): `<file>/<name>.sql`, as dbt.
    if node.test_metadata.is_some() || file.extension().is_some_and(|e| e != "sql") {
        base.join(file).join(format!("{}.sql", node.name))
    } else {
        base.join(file)
    }
}

/// Execute the selected nodes.
pub async fn execute(
    parsed: &Parsed,
    wh: &dyn Warehouse,
    selected: &[String],
    options: &RunOptions,
    observer: &dyn RunObserver,
) -> Result<RunResults> {
    let started = Instant::now();
    let manifest = &parsed.manifest;
    // What runs (ephemerals are inlined into their dependents) and what each waits for.
    let planned = plan(parsed, selected, options.command);
    let runnable: Vec<String> = planned.iter().map(|(id, _)| id.clone()).collect();
    let deps: HashMap<String, Vec<String>> = planned.into_iter().collect();
    let existing = existing_relations(wh)
        .await
        .map_err(|e| TransformError::config("", format!("cannot list the warehouse's relations: {e}")))?;
    // Like dbt: the schemas of what will be built exist before on-run-start runs.
    let mut schemas_needed: Vec<String> = runnable
        .iter()
        .filter_map(|id| {
            manifest.nodes[id].relation.as_ref().filter(|_| manifest.nodes[id].resource_type != ResourceType::Source)
        })
        .map(|r| r.schema.clone())
        .collect();
    schemas_needed.sort();
    schemas_needed.dedup();
    for schema in &schemas_needed {
        let sql = wh.dialect().create_schema_sql(schema).map_err(|e| TransformError::config("", e.to_string()))?;
        wh.execute(&sql)
            .await
            .map_err(|e| TransformError::config("", format!("cannot create schema {schema}: {e}")))?;
    }
    run_project_hooks(parsed, wh, "on-run-start", &parsed.project.on_run_start, &[]).await?;
    let compiled = compile_nodes(parsed, &runnable, &existing, options);
    // target/compiled is written beside the run, not before it: thousands of small files can take
    // seconds on some file systems.
    let writer = options.target_dir.as_ref().map(|dir| {
        let files = compiled_files(parsed, &compiled, dir);
        std::thread::spawn(move || write_files(&files))
    });

    let mut waiting: HashMap<String, usize> = runnable.iter().map(|id| (id.clone(), deps[id].len())).collect();
    let mut dependents: HashMap<String, Vec<String>> = HashMap::new();
    for (id, ds) in &deps {
        for d in ds {
            dependents.entry(d.clone()).or_default().push(id.clone());
        }
    }
    let order: HashMap<&str, usize> = runnable.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    // Ready nodes by manifest position, smallest first (a heap: thousands of tests become ready at once).
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> =
        runnable.iter().enumerate().filter(|(_, id)| waiting[*id] == 0).map(|(i, _)| std::cmp::Reverse(i)).collect();
    let total = runnable.len();
    let existing = Mutex::new(existing);
    let schemas_done = tokio::sync::Mutex::new(schemas_needed.into_iter().collect::<HashSet<String>>());
    let mut results: HashMap<String, NodeResult> = HashMap::new();
    let mut blocked_by: HashMap<String, String> = HashMap::new();
    let mut in_flight = FuturesUnordered::new();
    let mut started_count = 0usize;
    let threads = options.threads.max(1);

    loop {
        // Start what is ready, in manifest order, up to the thread limit.
        while in_flight.len() < threads {
            let Some(std::cmp::Reverse(position)) = ready.pop() else { break };
            let id = runnable[position].clone();
            let node = &manifest.nodes[&id];
            started_count += 1;
            let index = started_count;
            if let Some(cause) = blocked_by.get(&id) {
                let now = chrono::Utc::now();
                let result = NodeResult {
                    unique_id: id.clone(),
                    status: NodeStatus::Skipped,
                    message: format!("skipped because {cause} did not succeed"),
                    started_at: now,
                    completed_at: now,
                    execution_time: 0.0,
                    rows_affected: None,
                    failures: None,
                    compiled_code: None,
                    compiled_path: None,
                    relation_name: None,
                    retryable: false,
                };
                observer.finished(index, total, node, &result);
                in_flight.push(Box::pin(futures::future::ready(result))
                    as std::pin::Pin<Box<dyn std::future::Future<Output = NodeResult> + Send + '_>>);
                continue;
            }
            observer.started(index, total, node);
            let compiled = compiled.get(&id).cloned();
            let existing = &existing;
            let schemas_done = &schemas_done;
            in_flight.push(Box::pin(async move {
                let result = run_node(wh, node, compiled, existing, schemas_done, options, parsed).await;
                observer.finished(index, total, node, &result);
                result
            }));
        }
        let Some(result) = in_flight.next().await else { break };
        let id = result.unique_id.clone();
        let ok = result.status.lets_dependents_run();
        for dep in dependents.get(&id).cloned().unwrap_or_default() {
            if !ok && !blocked_by.contains_key(&dep) {
                let name = &manifest.nodes[&id].name;
                blocked_by.insert(
                    dep.clone(),
                    if result.status == NodeStatus::Skipped {
                        blocked_by.get(&id).cloned().unwrap_or_else(|| name.clone())
                    } else {
                        name.clone()
                    },
                );
            }
            let w = waiting.get_mut(&dep).expect("dependent is runnable");
            *w -= 1;
            if *w == 0 {
                ready.push(std::cmp::Reverse(order[dep.as_str()]));
            }
        }
        results.insert(id, result);
    }
    let ordered: Vec<NodeResult> = runnable.iter().filter_map(|id| results.remove(id)).collect();
    drop(in_flight);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let mut schemas: Vec<String> = schemas_done.into_inner().into_iter().collect();
    schemas.sort();
    run_project_hooks(parsed, wh, "on-run-end", &parsed.project.on_run_end, &schemas).await?;
    Ok(RunResults { results: ordered, elapsed: started.elapsed().as_secs_f64() })
}

/// `on-run-start` / `on-run-end` of `dbt_project.yml`: rendered with the project context
/// (`on-run-end` also sees `schemas`, the schemas this run built into) and run in order.
async fn run_project_hooks(
    parsed: &Parsed,
    wh: &dyn Warehouse,
    which: &str,
    hooks: &[String],
    schemas: &[String],
) -> Result<()> {
    for (i, hook) in hooks.iter().enumerate() {
        let mut ctx = parsed.base_context.clone();
        ctx.insert("execute".into(), minijinja::Value::from(true));
        ctx.insert("schemas".into(), minijinja::Value::from_serialize(schemas));
        let mut scope = crate::jinja::RenderScope::new(
            crate::jinja::Phase::Compile,
            &parsed.project.name,
            parsed.resolver.clone(),
            parsed.vars.clone(),
            parsed.target.dialect(),
        );
        // Hooks may query the warehouse (`run_query` in on-run-end).
        if crate::introspect::may_introspect(hook) {
            let introspector =
                WarehouseIntrospector::new(wh).map_err(|e| TransformError::config("dbt_project.yml", e))?;
            scope.introspector = Some(Arc::new(introspector));
        }
        let label = format!("dbt_project.yml ({which} hook {})", i + 1);
        let (sql, _) = parsed.jinja.render_str(&label, hook, minijinja::Value::from(ctx), scope)?;
        if sql.trim().is_empty() {
            continue;
        }
        wh.execute(&sql)
            .await
            .map_err(|e| TransformError::config("dbt_project.yml", format!("{which} hook {} failed: {e}", i + 1)))?;
    }
    Ok(())
}

/// Runs nodes one at a time for an outside scheduler (mdp's orchestrator), which owns the order,
/// retries and timeouts: the relations that exist are listed once, each node is compiled when it
/// runs (so `is_incremental()` sees what earlier tasks built), schemas are created as needed.
/// Project hooks (`on-run-start` / `on-run-end`) are not run here.
pub struct NodeRunner<'a> {
    parsed: &'a Parsed,
    options: RunOptions,
    existing: Mutex<Existing>,
    schemas_done: tokio::sync::Mutex<HashSet<String>>,
    /// The results of the tests run so far (for the caller to record as checks).
    test_results: Mutex<Vec<NodeResult>>,
}

impl<'a> NodeRunner<'a> {
    pub async fn new(parsed: &'a Parsed, wh: &dyn Warehouse, options: RunOptions) -> Result<NodeRunner<'a>> {
        let existing = existing_relations(wh)
            .await
            .map_err(|e| TransformError::config("", format!("cannot list the warehouse's relations: {e}")))?;
        Ok(NodeRunner {
            parsed,
            options,
            existing: Mutex::new(existing),
            schemas_done: tokio::sync::Mutex::new(HashSet::new()),
            test_results: Mutex::new(Vec::new()),
        })
    }

    /// The project this runner runs nodes of.
    pub fn parsed(&self) -> &'a Parsed {
        self.parsed
    }

    /// The results of the tests run since the last call (the latest attempt of each), in finishing order.
    pub fn take_test_results(&self) -> Vec<NodeResult> {
        std::mem::take(&mut *self.test_results.lock().expect("lock"))
    }

    /// The plan of `ids` for this runner's command: see [`plan_build`].
    pub fn plan(&self, ids: &[String]) -> Vec<(String, Vec<String>)> {
        plan(self.parsed, ids, self.options.command)
    }

    /// Compile and run one node (its compiled SQL goes to `target/compiled` first, as in `execute`).
    pub async fn run(&self, wh: &dyn Warehouse, id: &str) -> NodeResult {
        let node = &self.parsed.manifest.nodes[id];
        let compiled = {
            let existing = self.existing.lock().expect("lock");
            compile_nodes(self.parsed, &[id.to_string()], &existing, &self.options)
        };
        if let Some(dir) = &self.options.target_dir {
            write_files(&compiled_files(self.parsed, &compiled, dir));
        }
        let compiled = compiled.into_values().next();
        let result = run_node(wh, node, compiled, &self.existing, &self.schemas_done, &self.options, self.parsed).await;
        if node.resource_type == ResourceType::Test {
            let mut tests = self.test_results.lock().expect("lock");
            tests.retain(|r| r.unique_id != result.unique_id);
            tests.push(result.clone());
        }
        result
    }
}

/// The nodes among `ids` that `build` runs (ephemerals are inlined, not run), each with the nodes
/// among them it waits for (parents, and the tests of parents that guard it, as dbt's `build`).
pub fn plan_build(parsed: &Parsed, ids: &[String]) -> Vec<(String, Vec<String>)> {
    plan(parsed, ids, Command::Build)
}

fn plan(parsed: &Parsed, ids: &[String], command: Command) -> Vec<(String, Vec<String>)> {
    let manifest = &parsed.manifest;
    let runnable: Vec<String> = ids
        .iter()
        .filter(|id| command.executes(manifest.nodes[*id].resource_type) && !manifest.nodes[*id].is_ephemeral())
        .cloned()
        .collect();
    let set: HashSet<&str> = runnable.iter().map(String::as_str).collect();
    let mut deps = run_dependencies(parsed, &parsed.graph, &runnable, &set, command == Command::Build);
    runnable.iter().map(|id| (id.clone(), deps.remove(id).unwrap_or_default())).collect()
}

/// For each runnable node, the runnable nodes it must wait for: its nearest runnable ancestors
/// through non-runnable ones (ephemerals, unselected nodes are not waited for), plus in `build`
/// the tests of its parents (dbt's test edges: a test blocks a child that depends on all of the
/// test's parents).
fn run_dependencies(
    parsed: &Parsed,
    graph: &Graph,
    runnable: &[String],
    runnable_set: &HashSet<&str>,
    build: bool,
) -> HashMap<String, Vec<String>> {
    let manifest = &parsed.manifest;
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for id in runnable {
        let mut deps = Vec::new();
        let mut stack: Vec<&str> = graph.parents(id).iter().map(String::as_str).collect();
        let mut seen = HashSet::new();
        while let Some(p) = stack.pop() {
            if !seen.insert(p) {
                continue;
            }
            if runnable_set.contains(p) {
                deps.push(p.to_string());
            } else if manifest.nodes[p].is_ephemeral() {
                stack.extend(graph.parents(p).iter().map(String::as_str));
            }
        }
        out.insert(id.clone(), deps);
    }
    if build {
        // dbt's build runs a model's unit tests before the model: a unit test waits for what its
        // model waits for, and the model for its unit tests (a failing one skips it).
        let units: Vec<(&String, &String)> = runnable
            .iter()
            .filter(|id| manifest.nodes[*id].is_unit_test())
            .filter_map(|test| {
                let model = manifest.nodes[test].attached_node.as_ref()?;
                runnable_set.contains(model.as_str()).then_some((test, model))
            })
            .collect();
        // What the models wait for before their unit tests are added (one unit test's failure
        // does not skip another's).
        let model_deps: HashMap<&String, Vec<String>> = units.iter().map(|(_, m)| (*m, out[*m].clone())).collect();
        for (test, model) in units {
            out.insert(test.clone(), model_deps[model].clone());
            out.get_mut(model).expect("runnable").push(test.clone());
        }
        let mut ancestors_cache: HashMap<String, HashSet<String>> = HashMap::new();
        for test in runnable
            .iter()
            .filter(|id| manifest.nodes[*id].resource_type == ResourceType::Test && !manifest.nodes[*id].is_unit_test())
        {
            let parents: Vec<&String> = graph.parents(test).iter().collect();
            let mut candidates: HashSet<&String> = HashSet::new();
            for p in &parents {
                for c in graph.children(p) {
                    if runnable_set.contains(c.as_str()) && manifest.nodes[c].resource_type != ResourceType::Test {
                        candidates.insert(c);
                    }
                }
            }
            for c in candidates {
                let anc =
                    ancestors_cache.entry(c.clone()).or_insert_with(|| graph.ancestors(c, None).into_iter().collect());
                if parents.iter().all(|p| anc.contains(*p)) {
                    let entry = out.get_mut(c).expect("runnable");
                    if !entry.contains(test) {
                        entry.push(test.clone());
                    }
                }
            }
        }
    }
    out
}

async fn run_node(
    wh: &dyn Warehouse,
    node: &Node,
    compiled: Option<std::result::Result<CompiledNode, String>>,
    existing: &Mutex<Existing>,
    schemas_done: &tokio::sync::Mutex<HashSet<String>>,
    options: &RunOptions,
    parsed: &Parsed,
) -> NodeResult {
    let started_at = chrono::Utc::now();
    let clock = Instant::now();
    let compiled_path = options
        .target_dir
        .as_ref()
        .filter(|_| matches!(node.resource_type, ResourceType::Model | ResourceType::Test | ResourceType::Snapshot))
        .map(|d| compiled_path(d, "compiled", node));
    let relation_name = node.relation.as_ref().map(|r| relation_name(wh.dialect(), r));
    let finish = |status: NodeStatus, message: String, outcome: Option<&Outcome>, code: Option<String>| NodeResult {
        unique_id: node.unique_id.clone(),
        status,
        message,
        started_at,
        completed_at: chrono::Utc::now(),
        execution_time: clock.elapsed().as_secs_f64(),
        rows_affected: outcome.and_then(|o| o.rows_affected),
        failures: outcome.and_then(|o| o.failures),
        compiled_code: code,
        compiled_path: compiled_path.clone(),
        relation_name: relation_name.clone(),
        retryable: false,
    };
    let compiled = match compiled {
        None if node.introspective => {
            let existing = existing.lock().expect("lock").clone();
            let compiled = compile_with_warehouse(parsed, wh, &node.unique_id, &existing, options);
            if let (Some(path), Ok(c)) = (&compiled_path, &compiled) {
                write_files(&[(path.clone(), c.sql.clone())]);
            }
            Some(compiled)
        }
        other => other,
    };
    let compiled = match compiled {
        Some(Ok(c)) => c,
        Some(Err(e)) => return finish(NodeStatus::Error, format!("compilation error: {e}"), None, None),
        None => return finish(NodeStatus::Error, "internal error: node was not compiled".into(), None, None),
    };
    if node.is_ephemeral() {
        return finish(NodeStatus::Success, "EPHEMERAL".into(), None, Some(compiled.sql));
    }
    let error_message = |e: MaterializeError| -> String {
        let mut m = format!("{} `{}` failed: {e}", node.resource_type.as_str(), node.name);
        if let Some(p) = &compiled_path {
            m.push_str(&format!("\n  compiled SQL: {}", p.display()));
        }
        m
    };
    let failed = |e: MaterializeError, code: Option<String>| {
        let retryable = matches!(&e, MaterializeError::Warehouse(w) if w.is_retryable());
        NodeResult { retryable, ..finish(NodeStatus::Error, error_message(e), None, code) }
    };
    if let Some(rel) = &node.relation {
        if node.resource_type != ResourceType::Source {
            // Held across the CREATE SCHEMA so a second node in the same schema waits for it.
            let mut done = schemas_done.lock().await;
            if !done.contains(&rel.schema) {
                let d = wh.dialect();
                let created = match d.create_schema_sql(&rel.schema) {
                    Ok(sql) => wh.execute(&sql).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = created {
                    return failed(e.into(), None);
                }
                done.insert(rel.schema.clone());
            }
        }
    }
    match node.resource_type {
        ResourceType::Test if node.unit_test.is_some() => match run_unit_test(wh, parsed, node, &compiled).await {
            Ok(o) => {
                let (status, message) = if o.test_status == Some(TestStatus::Pass) {
                    (NodeStatus::Pass, "PASS".to_string())
                } else {
                    let model = node.unit_test.as_ref().map_or("", |u| u.model.as_str());
                    (
                        NodeStatus::Fail,
                        format!(
                            "`{model}` did not return the expected rows ({} differ):\n  {}",
                            o.failures.unwrap_or(0),
                            o.failing_rows.join("\n  ")
                        ),
                    )
                };
                finish(status, message, Some(&o), Some(compiled.sql))
            }
            Err(e) => failed(e, Some(compiled.sql)),
        },
        ResourceType::Test => match materialize::run_test(wh, node, &compiled).await {
            Ok(o) => {
                let status = match o.test_status {
                    Some(TestStatus::Pass) => NodeStatus::Pass,
                    Some(TestStatus::Warn) => NodeStatus::Warn,
                    _ => NodeStatus::Fail,
                };
                let mut message = match status {
                    NodeStatus::Pass => "PASS".to_string(),
                    _ => format!(
                        "got {} result{}, configured to {} if {}",
                        o.failures.unwrap_or(0),
                        if o.failures == Some(1) { "" } else { "s" },
                        if status == NodeStatus::Warn { "warn" } else { "fail" },
                        if status == NodeStatus::Warn { &node.config.warn_if } else { &node.config.error_if }
                    ),
                };
                if !o.failing_rows.is_empty() {
                    message.push_str(&format!("; first failing rows:\n  {}", o.failing_rows.join("\n  ")));
                }
                // A test's run SQL is its compiled query in a fixed count wrapper: target/compiled has it.
                // (Skipping 2000 file creations matters on a big project.)
                finish(status, message, Some(&o), Some(compiled.sql))
            }
            Err(e) => failed(e, Some(compiled.sql)),
        },
        ResourceType::Seed => match load_seed(
            wh,
            node,
            existing,
            &parsed.project.root,
            parsed.embedded_file(&node.original_file_path),
            options.full_refresh,
        )
        .await
        {
            Ok(o) => finish(NodeStatus::Success, o.message.clone(), Some(&o), None),
            Err(e) => finish(NodeStatus::Error, format!("seed `{}` failed: {e}", node.name), None, None),
        },
        ResourceType::Model | ResourceType::Snapshot => {
            let rel = node.relation.as_ref().expect("a non-ephemeral model or snapshot has a relation");
            let key = (rel.schema.clone(), rel.identifier.clone());
            let prior = existing.lock().expect("lock").get(&key).copied();
            let (outcome, built) = if node.resource_type == ResourceType::Snapshot {
                (materialize::snapshot(wh, node, &compiled, prior).await, RelationKind::Table)
            } else {
                let built = Materialization::of(&node.config).map_or(RelationKind::Table, |m| m.builds());
                (materialize::materialize(wh, node, &compiled, prior).await, built)
            };
            match outcome {
                Ok(o) => {
                    existing.lock().expect("lock").insert(key, built);
                    write_run_sql(options, node, &o);
                    finish(NodeStatus::Success, o.message.clone(), Some(&o), Some(compiled.sql))
                }
                Err(e) => failed(e, Some(compiled.sql)),
            }
        }
        ResourceType::Source => finish(NodeStatus::Success, String::new(), None, None),
    }
}

fn write_run_sql(options: &RunOptions, node: &Node, outcome: &Outcome) {
    if let Some(dir) = &options.target_dir {
        let path = compiled_path(dir, "run", node);
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let _ = std::fs::write(&path, outcome.statements.join(";\n\n") + ";\n");
    }
}

/// Run a unit test: its inputs resolved to the relations they replace (their columns type the
/// rows), its model's output in a scratch view beside the model.
async fn run_unit_test(
    wh: &dyn Warehouse,
    parsed: &Parsed,
    node: &Node,
    compiled: &CompiledNode,
) -> std::result::Result<Outcome, MaterializeError> {
    use crate::unit::Input;
    let def = node.unit_test.as_deref().expect("a unit test");
    let manifest = &parsed.manifest;
    let model = node.attached_node.as_ref().and_then(|id| manifest.nodes.get(id));
    let model_rel = model.and_then(|m| m.relation.as_ref());
    let inputs = def
        .given
        .iter()
        .map(|g| {
            let relation = match &g.input {
                Input::Ref { package, name } => {
                    manifest.resolve_ref(&node.package, package.as_deref(), name).and_then(|n| n.relation.as_ref())
                }
                Input::Source { source, table } => {
                    manifest.source_id(source, table).and_then(|id| manifest.nodes[id].relation.as_ref())
                }
                Input::This => model_rel,
            };
            (g.input.cte_name(), &g.rows, relation.map(materialization::table_ref))
        })
        .collect();
    let schema = model_rel.map(|r| r.schema.clone()).unwrap_or_else(|| parsed.target.schema.clone());
    let unit = materialize::UnitRun {
        name: &node.name,
        model: &def.model,
        inputs,
        expect: &def.expect,
        scratch: TableRef::new(schema, format!("mdp_unit_{}", crate::parse::short_hash(&node.unique_id))),
    };
    materialize::run_unit_test(wh, &unit, &compiled.sql).await
}

/// Load a seed: read its file, then fill its table (see [`materialization::plan_seed`]).
async fn load_seed(
    wh: &dyn Warehouse,
    node: &Node,
    existing: &Mutex<Existing>,
    root: &std::path::Path,
    embedded: Option<&str>,
    full_refresh: bool,
) -> std::result::Result<Outcome, String> {
    let rel = node.relation.as_ref().ok_or("seed has no relation")?;
    let d = wh.dialect();
    let delimiter = node.config.delimiter.as_bytes().first().copied().unwrap_or(b',');
    let path = root.join(&node.original_file_path);
    let data = seed::read_seed(&path, embedded, delimiter, &node.config.column_types, d.seed_csv())
        .map_err(|e| e.to_string())?;
    let target = materialization::table_ref(rel);
    let key = (rel.schema.clone(), rel.identifier.clone());
    let prior = existing.lock().expect("lock").get(&key).copied();
    let existing_columns: Vec<String> = if materialization::Seed::needs_existing_columns(prior, full_refresh) {
        wh.columns(&target).await.map_err(|e| e.to_string())?.into_iter().map(|c| c.name).collect()
    } else {
        Vec::new()
    };
    let plan = materialization::Seed {
        relation: target,
        file: node.original_file_path.display().to_string(),
        columns: &data.columns,
        existing: prior,
        existing_columns: &existing_columns,
        full_refresh,
    };
    let outcome = materialize::load_seed(wh, &plan, mdp_warehouse::batch_stream(data.batches))
        .await
        .map_err(|e| e.to_string())?;
    existing.lock().expect("lock").insert(key, RelationKind::Table);
    Ok(outcome)
}

/// A relation as `run_results.json` names it: quoted by the target's dialect.
pub(crate) fn relation_name(d: &dyn mdp_warehouse::Dialect, rel: &crate::manifest::RelationName) -> String {
    // A name no quoting makes safe (empty) cannot be built: the node fails; show the name as written.
    d.qualified(&materialization::table_ref(rel)).unwrap_or_else(|_| format!("{}.{}", rel.schema, rel.identifier))
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    use futures::stream::{FuturesUnordered, StreamExt};

    use super::block_on_other_thread;

    /// The run's nodes are futures polled by one task; an introspective node's render blocks that task's
    /// thread on its queries. A node woken meanwhile (its answer arrived) must still be polled, and the
    /// run must still hear of later answers: before the fix the render's nested `block_on` swallowed the
    /// wake-up and the run slept forever with every answer in.
    #[test]
    fn a_blocking_render_loses_no_wake_up_of_the_nodes_in_flight() {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let handle = runtime.handle().clone();
            let finished = runtime.block_on(async move {
                let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
                let (second_tx, second_rx) = tokio::sync::oneshot::channel::<()>();
                let (later_tx, later_rx) = tokio::sync::watch::channel(false);
                let mut in_flight: FuturesUnordered<Pin<Box<dyn Future<Output = &str> + Send>>> =
                    FuturesUnordered::new();
                // Two more nodes in flight, answered later: the task polls fewer nodes than it holds when
                // the render returns, so nothing but the wake-ups brings it back.
                for _ in 0..2 {
                    let mut later = later_rx.clone();
                    in_flight.push(Box::pin(async move {
                        later.wait_for(|answered| *answered).await.unwrap();
                        "later node"
                    }));
                }
                // A node waiting for two answers in turn (a materialization: CREATE, then COMMIT).
                in_flight.push(Box::pin(async {
                    first_rx.await.unwrap();
                    second_rx.await.unwrap();
                    "waiting node"
                }));
                // An introspective node: its render blocks on a query, during which the other node's first
                // answer arrives; then it goes on to its own await.
                in_flight.push(Box::pin(async move {
                    tokio::task::yield_now().await;
                    block_on_other_thread(&handle, async move {
                        first_tx.send(()).unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    });
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        second_tx.send(()).unwrap();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        later_tx.send(true).unwrap();
                    });
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    "rendering node"
                }));
                let mut finished = Vec::new();
                while let Some(name) = in_flight.next().await {
                    finished.push(name);
                }
                finished.sort();
                finished
            });
            let _ = done_tx.send(finished);
        });
        // Nothing else would wake a run that missed its wake-ups: it never ends.
        let finished = done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the run ends: a wake-up that arrived while a render blocked was not lost");
        assert_eq!(finished, ["later node", "later node", "rendering node", "waiting node"]);
    }
}
