//! OpenLineage run events (spec 2-0-2) for every ingest and model run, to a file and/or an HTTP
//! endpoint (Marquez's `POST /api/v1/lineage`).
//!
//! Each task of a run is an OpenLineage *job* (`ingest.<source>.<account>`, a node's unique id such
//! as `model.mdp_marketing.fct_ad_performance_daily`) in the project's namespace, with its own run id
//! and a `parent` facet naming the mdp run (itself the job `mdp.<command>`, with mdp's run id). A task
//! sends `START` when its first attempt starts and `COMPLETE` or `FAIL` (with an `errorMessage` facet)
//! when it ends. Datasets:
//!
//! - an ingest reads the ad account — namespace the API's `scheme://host`, name `<platform>/<account>`
//!   — and writes the raw tables `raw.<source>__<stream>`;
//! - a model or seed reads the relations of its `depends_on` (ephemeral models seen through) and writes
//!   its relation.
//!
//! Tables are named in the warehouse's namespace (`duckdb:///abs/path.duckdb`, `postgres://host:port`
//! with `database.schema.table` names, never credentials) and carry a `schema` facet: the columns the
//! warehouse reports once the task completed, else the documented columns.
//!
//! Sending never holds a run up: [`Emitter::emit`] queues the event for a background task that appends
//! to the file and POSTs with a timeout; after three failed POSTs in a row the endpoint is given up for
//! the run. [`Emitter::finish`] waits a bounded time for the queue to drain. Problems are warnings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use mdp_project::alerts::redact_url;
use mdp_project::Secret;
use mdp_transform::manifest::ResourceType;
use mdp_transform::Parsed;
use mdp_warehouse::{ConnectOptions, TableRef, Warehouse};
use serde_json::{json, Value};
use uuid::Uuid;

/// The `schemaURL` of every event: the RunEvent definition of spec 2-0-2.
pub const SCHEMA_URL: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const SCHEMA_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const PARENT_FACET_URL: &str = "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json#/$defs/ParentRunFacet";
const ERROR_FACET_URL: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const JOB_TYPE_FACET_URL: &str = "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";

/// The `producer` (and every facet's `_producer`): mdp and its version.
pub fn producer() -> String {
    format!("https://github.com/mdp-data/mdp/tree/v{}", env!("CARGO_PKG_VERSION"))
}

/// The transitions mdp reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Start,
    Complete,
    Fail,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Start => "START",
            EventType::Complete => "COMPLETE",
            EventType::Fail => "FAIL",
        }
    }
}

/// A dataset: where it lives, its name, and its columns (name, type) when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    pub fields: Vec<(String, String)>,
}

/// A job: `namespace` + `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub namespace: String,
    pub name: String,
}

/// One OpenLineage `RunEvent`.
#[derive(Debug, Clone)]
pub struct RunEvent {
    pub event_type: EventType,
    pub event_time: DateTime<Utc>,
    pub run_id: Uuid,
    pub job: JobRef,
    /// `JOB` for an mdp run, `TASK` for its tasks (the `jobType` facet).
    pub job_type: &'static str,
    /// The mdp run a task belongs to.
    pub parent: Option<(Uuid, JobRef)>,
    pub inputs: Vec<Dataset>,
    pub outputs: Vec<Dataset>,
    /// For `FAIL`: the error (the `errorMessage` facet).
    pub error: Option<String>,
}

fn facet(schema_url: &str, mut body: Value) -> Value {
    body["_producer"] = json!(producer());
    body["_schemaURL"] = json!(schema_url);
    body
}

fn dataset_json(dataset: &Dataset) -> Value {
    let mut value = json!({"namespace": dataset.namespace, "name": dataset.name, "facets": {}});
    if !dataset.fields.is_empty() {
        let fields: Vec<Value> = dataset
            .fields
            .iter()
            .map(|(name, ty)| match ty.is_empty() {
                true => json!({ "name": name }),
                false => json!({"name": name, "type": ty}),
            })
            .collect();
        value["facets"]["schema"] = facet(SCHEMA_FACET_URL, json!({ "fields": fields }));
    }
    value
}

impl RunEvent {
    /// The event as the spec's JSON.
    pub fn to_json(&self) -> Value {
        let mut run_facets = serde_json::Map::new();
        if let Some((parent_run, parent_job)) = &self.parent {
            run_facets.insert(
                "parent".into(),
                facet(
                    PARENT_FACET_URL,
                    json!({
                        "run": {"runId": parent_run.to_string()},
                        "job": {"namespace": parent_job.namespace, "name": parent_job.name},
                    }),
                ),
            );
        }
        if let Some(error) = &self.error {
            run_facets.insert(
                "errorMessage".into(),
                facet(ERROR_FACET_URL, json!({"message": error, "programmingLanguage": "Rust"})),
            );
        }
        json!({
            "eventType": self.event_type.as_str(),
            "eventTime": self.event_time.to_rfc3339_opts(SecondsFormat::Millis, true),
            "producer": producer(),
            "schemaURL": SCHEMA_URL,
            "run": {"runId": self.run_id.to_string(), "facets": run_facets},
            "job": {
                "namespace": self.job.namespace,
                "name": self.job.name,
                "facets": {
                    "jobType": facet(JOB_TYPE_FACET_URL, json!({
                        "processingType": "BATCH", "integration": "MDP", "jobType": self.job_type,
                    })),
                },
            },
            "inputs": self.inputs.iter().map(dataset_json).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(dataset_json).collect::<Vec<_>>(),
        })
    }
}

/// Where events go (from `mdp.yml`'s `lineage:`, paths resolved, the key read).
#[derive(Clone, Default)]
pub struct Sink {
    /// Appended to, one JSON object per line.
    pub file: Option<PathBuf>,
    /// POSTed to (the full url, e.g. `http://localhost:5000/api/v1/lineage`).
    pub url: Option<String>,
    /// `Authorization: Bearer …`.
    pub api_key: Option<Secret>,
    pub timeout: Duration,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("file", &self.file)
            .field("url", &self.url.as_deref().map(redact_url))
            .field("api_key", &self.api_key)
            .finish()
    }
}

/// Counters of what the emitter did.
#[derive(Debug, Default)]
pub struct EmitterStats {
    pub queued: AtomicU64,
    pub written: AtomicU64,
    pub posted: AtomicU64,
    pub failed: AtomicU64,
}

/// Sends events in the background, in order.
pub struct Emitter {
    tx: Option<tokio::sync::mpsc::UnboundedSender<Value>>,
    worker: tokio::task::JoinHandle<()>,
    pub stats: Arc<EmitterStats>,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter").field("stats", &self.stats).finish_non_exhaustive()
    }
}

/// POSTs given up after this many failures in a row.
const MAX_CONSECUTIVE_POST_FAILURES: u32 = 3;

impl Emitter {
    /// Start the background sender (call inside a tokio runtime).
    pub fn start(sink: Sink) -> Emitter {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        let stats = Arc::new(EmitterStats::default());
        let counters = stats.clone();
        let worker = tokio::spawn(async move {
            let client = match sink.url {
                Some(_) => reqwest::Client::builder()
                    .timeout(sink.timeout)
                    .connect_timeout(sink.timeout)
                    .build()
                    .map_err(|e| {
                        tracing::warn!("lineage: cannot build an HTTP client: {}", crate::alerts::http_error(e))
                    })
                    .ok(),
                None => None,
            };
            let mut file = match &sink.file {
                Some(path) => open_append(path).await,
                None => None,
            };
            let mut post_failures = 0u32;
            while let Some(event) = rx.recv().await {
                let line = event.to_string();
                if let (Some(handle), Some(path)) = (file.as_mut(), &sink.file) {
                    use tokio::io::AsyncWriteExt;
                    let written = async {
                        handle.write_all(line.as_bytes()).await?;
                        handle.write_all(b"\n").await?;
                        handle.flush().await
                    }
                    .await;
                    match written {
                        Ok(()) => {
                            counters.written.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::warn!("lineage: cannot write to {}: {e}; no more events go there", path.display());
                            file = None;
                        }
                    }
                }
                if let (Some(client), Some(url)) = (&client, &sink.url) {
                    if post_failures >= MAX_CONSECUTIVE_POST_FAILURES {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let mut request = client.post(url).header("content-type", "application/json").body(line);
                    if let Some(key) = &sink.api_key {
                        request = request.bearer_auth(key.expose_secret());
                    }
                    let result = match request.send().await {
                        Ok(response) if response.status().is_success() => Ok(()),
                        Ok(response) => Err(format!("HTTP {}", response.status())),
                        Err(e) => Err(crate::alerts::http_error(e)),
                    };
                    match result {
                        Ok(()) => {
                            post_failures = 0;
                            counters.posted.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            post_failures += 1;
                            counters.failed.fetch_add(1, Ordering::Relaxed);
                            let giving_up = if post_failures >= MAX_CONSECUTIVE_POST_FAILURES {
                                "; giving up on the endpoint for this run"
                            } else {
                                ""
                            };
                            tracing::warn!("lineage: cannot send an event to {}: {error}{giving_up}", redact_url(url));
                        }
                    }
                }
            }
        });
        Emitter { tx: Some(tx), worker, stats }
    }

    /// Queue an event (never blocks).
    pub fn emit(&self, event: &RunEvent) {
        if let Some(tx) = &self.tx {
            if tx.send(event.to_json()).is_ok() {
                self.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Wait up to `wait` for queued events to be sent; what is left is dropped with a warning.
    pub async fn finish(mut self, wait: Duration) -> Arc<EmitterStats> {
        self.tx = None;
        let abort = self.worker.abort_handle();
        if tokio::time::timeout(wait, &mut self.worker).await.is_err() {
            abort.abort();
            let done = self.stats.written.load(Ordering::Relaxed).max(self.stats.posted.load(Ordering::Relaxed));
            tracing::warn!(
                "lineage: {} of {} events were not sent within {wait:?}; the run goes on without them",
                self.stats.queued.load(Ordering::Relaxed).saturating_sub(done),
                self.stats.queued.load(Ordering::Relaxed)
            );
        }
        self.stats.clone()
    }
}

async fn open_append(path: &std::path::Path) -> Option<tokio::fs::File> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let _ = tokio::fs::create_dir_all(parent).await;
    }
    match tokio::fs::OpenOptions::new().create(true).append(true).open(path).await {
        Ok(file) => Some(file),
        Err(e) => {
            tracing::warn!("lineage: cannot open {}: {e}; events are not written there", path.display());
            None
        }
    }
}

/// How the warehouse's tables are named in events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarehouseNamespace {
    /// `duckdb:///abs/path/warehouse.duckdb` or `postgres://host:port`.
    pub namespace: String,
    /// Prefixed to `schema.table` (Postgres: the database).
    pub database: Option<String>,
}

impl WarehouseNamespace {
    /// The namespace of a warehouse, without credentials.
    pub fn of(options: &ConnectOptions) -> WarehouseNamespace {
        match options {
            ConnectOptions::DuckDb { path, .. } => {
                let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
                WarehouseNamespace { namespace: format!("duckdb://{}", path.display()), database: None }
            }
            ConnectOptions::Postgres { connection_string, .. } => postgres_namespace(connection_string),
            // OpenLineage's naming: `snowflake://{organization}-{account}`, datasets `database.schema.table`.
            ConnectOptions::Snowflake { config, .. } => WarehouseNamespace {
                namespace: format!("snowflake://{}", config.account.to_ascii_lowercase()),
                database: Some(config.database.clone()),
            },
            // OpenLineage's naming: namespace `bigquery`, datasets `project.dataset.table`.
            ConnectOptions::BigQuery { config, .. } => {
                WarehouseNamespace { namespace: "bigquery".into(), database: Some(config.project.clone()) }
            }
        }
    }

    /// A table as a dataset (no columns yet).
    pub fn dataset(&self, schema: &str, table: &str) -> Dataset {
        let name = match &self.database {
            Some(db) => format!("{db}.{schema}.{table}"),
            None => format!("{schema}.{table}"),
        };
        Dataset { namespace: self.namespace.clone(), name, fields: Vec::new() }
    }
}

fn postgres_namespace(connection_string: &str) -> WarehouseNamespace {
    if let Ok(url) = reqwest::Url::parse(connection_string) {
        if matches!(url.scheme(), "postgres" | "postgresql") {
            let host = url.host_str().unwrap_or("localhost");
            let port = url.port().unwrap_or(5432);
            let database = url.path().trim_start_matches('/');
            return WarehouseNamespace {
                namespace: format!("postgres://{host}:{port}"),
                database: (!database.is_empty()).then(|| database.to_string()),
            };
        }
    }
    // key=value form: `host=h port=p dbname=d user=u password=…`.
    let mut host = "localhost".to_string();
    let mut port = "5432".to_string();
    let mut database = None;
    for pair in connection_string.split_whitespace() {
        match pair.split_once('=') {
            Some(("host", v)) => host = v.to_string(),
            Some(("port", v)) => port = v.to_string(),
            Some(("dbname", v)) => database = Some(v.to_string()),
            _ => {}
        }
    }
    WarehouseNamespace { namespace: format!("postgres://{host}:{port}"), database }
}

/// An ingest task as lineage sees it: what it reads and which raw tables it writes.
#[derive(Debug, Clone)]
pub struct IngestJob {
    pub source: String,
    /// `google_ads`, …
    pub platform: String,
    /// The API's base url (shown as `scheme://host` only).
    pub base_url: String,
    pub accounts: Vec<String>,
    /// The raw tables it writes: `(schema, table)`.
    pub tables: Vec<(String, String)>,
}

/// The lineage of one mdp run and its tasks.
pub struct RunLineage<'a> {
    emitter: &'a Emitter,
    warehouse: &'a dyn Warehouse,
    tables: WarehouseNamespace,
    namespace: String,
    parent: (Uuid, JobRef),
    parsed: Option<&'a Parsed>,
    ingest: HashMap<String, IngestJob>,
    /// Task id → its OpenLineage run id (one per task, across retries).
    runs: Mutex<HashMap<String, Uuid>>,
    /// Columns of the tables written so far in this run (dataset name → fields).
    columns: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl std::fmt::Debug for RunLineage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLineage").field("namespace", &self.namespace).field("parent", &self.parent).finish()
    }
}

impl<'a> RunLineage<'a> {
    /// `run_id` is mdp's run id (a UUID v7), `command` the run's subject (`pipeline`, `build`, …).
    pub fn new(
        emitter: &'a Emitter,
        warehouse: &'a dyn Warehouse,
        tables: WarehouseNamespace,
        namespace: impl Into<String>,
        run_id: &str,
        command: &str,
    ) -> Self {
        let namespace = namespace.into();
        let parent_id = Uuid::parse_str(run_id).unwrap_or_else(|_| Uuid::new_v4());
        let parent_job = JobRef { namespace: namespace.clone(), name: format!("mdp.{command}") };
        RunLineage {
            emitter,
            warehouse,
            tables,
            namespace,
            parent: (parent_id, parent_job),
            parsed: None,
            ingest: HashMap::new(),
            runs: Mutex::new(HashMap::new()),
            columns: Mutex::new(HashMap::new()),
        }
    }

    /// The transform project whose models and seeds are tasks.
    pub fn with_project(mut self, parsed: &'a Parsed) -> Self {
        self.parsed = Some(parsed);
        self
    }

    /// An ingest task, by its task id.
    pub fn with_ingest(mut self, task_id: impl Into<String>, job: IngestJob) -> Self {
        self.ingest.insert(task_id.into(), job);
        self
    }

    fn event(&self, event_type: EventType, at: DateTime<Utc>, job: JobRef, run_id: Uuid) -> RunEvent {
        RunEvent {
            event_type,
            event_time: at,
            run_id,
            job,
            job_type: "TASK",
            parent: Some(self.parent.clone()),
            inputs: Vec::new(),
            outputs: Vec::new(),
            error: None,
        }
    }

    /// The mdp run itself started.
    pub fn run_started(&self, at: DateTime<Utc>) {
        let mut event = self.event(EventType::Start, at, self.parent.1.clone(), self.parent.0);
        event.job_type = "JOB";
        event.parent = None;
        self.emitter.emit(&event);
    }

    /// The mdp run ended (`error`: it failed).
    pub fn run_finished(&self, at: DateTime<Utc>, error: Option<&str>) {
        let kind = if error.is_some() { EventType::Fail } else { EventType::Complete };
        let mut event = self.event(kind, at, self.parent.1.clone(), self.parent.0);
        event.job_type = "JOB";
        event.parent = None;
        event.error = error.map(str::to_string);
        self.emitter.emit(&event);
    }

    /// Whether a task has lineage (ingest tasks, models and seeds; not tests).
    pub fn covers(&self, task_id: &str) -> bool {
        self.ingest.contains_key(task_id) || (self.is_task_node(task_id) && self.node_relation(task_id).is_some())
    }

    fn is_task_node(&self, id: &str) -> bool {
        self.parsed.and_then(|p| p.manifest.nodes.get(id)).is_some_and(|n| {
            matches!(n.resource_type, ResourceType::Model | ResourceType::Seed | ResourceType::Snapshot)
        })
    }

    fn node_relation(&self, id: &str) -> Option<(String, String)> {
        let node = self.parsed?.manifest.nodes.get(id)?;
        if !matches!(
            node.resource_type,
            ResourceType::Model | ResourceType::Seed | ResourceType::Source | ResourceType::Snapshot
        ) || node.is_ephemeral()
        {
            return None;
        }
        let relation = node.relation.as_ref()?;
        Some((relation.schema.clone(), relation.identifier.clone()))
    }

    /// The relations a node reads, ephemeral models seen through.
    fn node_inputs(&self, id: &str) -> Vec<(String, String)> {
        let Some(parsed) = self.parsed else { return Vec::new() };
        let mut out = Vec::new();
        let mut stack: Vec<&str> = parsed
            .manifest
            .nodes
            .get(id)
            .map(|n| n.depends_on.iter().map(String::as_str).collect())
            .unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        while let Some(dep) = stack.pop() {
            if !seen.insert(dep) {
                continue;
            }
            let Some(node) = parsed.manifest.nodes.get(dep) else { continue };
            if node.is_ephemeral() {
                stack.extend(node.depends_on.iter().map(String::as_str));
            } else if let Some(relation) = self.node_relation(dep) {
                if !out.contains(&relation) {
                    out.push(relation);
                }
            }
        }
        out
    }

    fn documented(&self, id: &str) -> Vec<(String, String)> {
        let Some(node) = self.parsed.and_then(|p| p.manifest.nodes.get(id)) else { return Vec::new() };
        node.columns.values().map(|c| (c.name.clone(), c.data_type.clone().unwrap_or_default())).collect()
    }

    /// A table dataset with the columns known so far (written earlier in this run, or documented).
    fn known(&self, (schema, table): &(String, String), documented: Vec<(String, String)>) -> Dataset {
        let mut dataset = self.tables.dataset(schema, table);
        dataset.fields = self.columns.lock().expect("lock").get(&dataset.name).cloned().unwrap_or(documented);
        dataset
    }

    /// The datasets of a task: (inputs, outputs).
    fn datasets(&self, task_id: &str) -> (Vec<Dataset>, Vec<Dataset>) {
        if let Some(job) = self.ingest.get(task_id) {
            let api = redact_url(&job.base_url);
            let api = api.strip_suffix("/…").unwrap_or(&api).to_string();
            let inputs = job
                .accounts
                .iter()
                .map(|a| Dataset { namespace: api.clone(), name: format!("{}/{a}", job.platform), fields: Vec::new() })
                .collect();
            let outputs = job.tables.iter().map(|t| self.known(t, Vec::new())).collect();
            return (inputs, outputs);
        }
        let Some(output) = self.node_relation(task_id).filter(|_| self.is_task_node(task_id)) else {
            return (Vec::new(), Vec::new());
        };
        let inputs = self
            .node_inputs(task_id)
            .iter()
            .map(|relation| {
                let documented = self
                    .parsed
                    .and_then(|p| {
                        p.manifest.nodes.values().find(|n| {
                            n.relation.as_ref().is_some_and(|r| r.schema == relation.0 && r.identifier == relation.1)
                        })
                    })
                    .map(|n| self.documented(&n.unique_id))
                    .unwrap_or_default();
                self.known(relation, documented)
            })
            .collect();
        (inputs, vec![self.known(&output, self.documented(task_id))])
    }

    /// The tables a task writes: `(schema, table)`.
    fn output_tables(&self, task_id: &str) -> Vec<(String, String)> {
        match self.ingest.get(task_id) {
            Some(job) => job.tables.clone(),
            None => self.node_relation(task_id).into_iter().collect(),
        }
    }

    fn job(&self, task_id: &str) -> JobRef {
        JobRef { namespace: self.namespace.clone(), name: task_id.to_string() }
    }

    /// A task's first attempt started: `START` (once per task).
    pub fn task_started(&self, task_id: &str, at: DateTime<Utc>) {
        if !self.covers(task_id) {
            return;
        }
        let run_id = {
            let mut runs = self.runs.lock().expect("lock");
            if runs.contains_key(task_id) {
                return; // a retry: the same run
            }
            *runs.entry(task_id.to_string()).or_insert_with(Uuid::now_v7)
        };
        let (inputs, outputs) = self.datasets(task_id);
        let mut event = self.event(EventType::Start, at, self.job(task_id), run_id);
        event.inputs = inputs;
        event.outputs = outputs;
        self.emitter.emit(&event);
    }

    /// A task ended: `COMPLETE`, or `FAIL` with the error. The outputs' columns are read from the
    /// warehouse once it completed.
    pub async fn task_finished(&self, task_id: &str, at: DateTime<Utc>, error: Option<&str>) {
        if !self.covers(task_id) {
            return;
        }
        let known = self.runs.lock().expect("lock").get(task_id).copied();
        let run_id = match known {
            Some(id) => id,
            None => {
                // Never reported as started (a post-hoc report): start it now, at the same time.
                self.task_started(task_id, at);
                self.runs.lock().expect("lock").get(task_id).copied().unwrap_or_else(Uuid::now_v7)
            }
        };
        if error.is_none() {
            for (schema, table) in self.output_tables(task_id) {
                let name = self.tables.dataset(&schema, &table).name;
                match self.warehouse.columns(&TableRef::new(schema, table)).await {
                    Ok(columns) if !columns.is_empty() => {
                        let fields = columns.into_iter().map(|c| (c.name, c.data_type)).collect();
                        self.columns.lock().expect("lock").insert(name, fields);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!("lineage: cannot read the columns of {name}: {e}"),
                }
            }
        }
        let (inputs, outputs) = self.datasets(task_id);
        let kind = if error.is_some() { EventType::Fail } else { EventType::Complete };
        let mut event = self.event(kind, at, self.job(task_id), run_id);
        event.inputs = inputs;
        event.outputs = outputs;
        event.error = error.map(str::to_string);
        self.emitter.emit(&event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType) -> RunEvent {
        RunEvent {
            event_type: kind,
            event_time: "2026-06-30T06:00:00Z".parse().unwrap(),
            run_id: Uuid::now_v7(),
            job: JobRef { namespace: "demo".into(), name: "model.mdp_marketing.fct_x".into() },
            job_type: "TASK",
            parent: Some((Uuid::nil(), JobRef { namespace: "demo".into(), name: "mdp.pipeline".into() })),
            inputs: vec![Dataset {
                namespace: "duckdb:///p/warehouse.duckdb".into(),
                name: "raw.google_ads__ad_daily".into(),
                fields: vec![("spend".into(), "DECIMAL(18,6)".into())],
            }],
            outputs: vec![Dataset {
                namespace: "duckdb:///p/warehouse.duckdb".into(),
                name: "main.x".into(),
                fields: vec![],
            }],
            error: (kind == EventType::Fail).then(|| "boom".into()),
        }
    }

    #[test]
    fn events_have_the_fields_the_spec_requires() {
        let e = event(EventType::Complete).to_json();
        assert_eq!(e["eventType"], "COMPLETE");
        assert_eq!(e["eventTime"], "2026-06-30T06:00:00.000Z");
        assert_eq!(e["schemaURL"], SCHEMA_URL);
        assert!(e["producer"].as_str().unwrap().starts_with("https://"));
        assert!(Uuid::parse_str(e["run"]["runId"].as_str().unwrap()).is_ok());
        assert_eq!(e["job"]["namespace"], "demo");
        assert_eq!(e["job"]["name"], "model.mdp_marketing.fct_x");
        let schema = &e["inputs"][0]["facets"]["schema"];
        assert_eq!(schema["fields"], json!([{"name": "spend", "type": "DECIMAL(18,6)"}]));
        assert_eq!(schema["_schemaURL"], SCHEMA_FACET_URL);
        assert_eq!(schema["_producer"], producer());
        assert_eq!(e["outputs"][0]["name"], "main.x");
        assert!(e["outputs"][0]["facets"].get("schema").is_none(), "no columns, no schema facet");
        let parent = &e["run"]["facets"]["parent"];
        assert_eq!(parent["run"]["runId"], Uuid::nil().to_string());
        assert_eq!(parent["job"]["name"], "mdp.pipeline");
        assert!(parent["_producer"].is_string() && parent["_schemaURL"].is_string());
        assert!(e["run"]["facets"].get("errorMessage").is_none());
        assert_eq!(e["job"]["facets"]["jobType"]["jobType"], "TASK");

        let f = event(EventType::Fail).to_json();
        assert_eq!(f["eventType"], "FAIL");
        assert_eq!(f["run"]["facets"]["errorMessage"]["message"], "boom");
        assert_eq!(f["run"]["facets"]["errorMessage"]["programmingLanguage"], "Rust");
    }

    #[test]
    fn warehouse_namespaces_never_carry_credentials() {
        let pg =
            WarehouseNamespace::of(&ConnectOptions::postgres("postgres://u:s3cr3t@db.example.com:6543/analytics", "x"));
        assert_eq!(pg.namespace, "postgres://db.example.com:6543");
        assert_eq!(pg.dataset("raw", "t").name, "analytics.raw.t");
        let kv = WarehouseNamespace::of(&ConnectOptions::postgres("host=h dbname=d password=s3cr3t", "x"));
        assert_eq!((kv.namespace.as_str(), kv.database.as_deref()), ("postgres://h:5432", Some("d")));
        let duck = WarehouseNamespace::of(&ConnectOptions::duckdb("/nowhere/w.duckdb"));
        assert_eq!(duck.namespace, "duckdb:///nowhere/w.duckdb");
        assert_eq!(duck.dataset("main", "t").name, "main.t");
    }

    #[tokio::test]
    async fn the_file_sink_appends_one_event_per_line_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lineage/events.jsonl");
        for _ in 0..2 {
            let emitter =
                Emitter::start(Sink { file: Some(file.clone()), timeout: Duration::from_secs(1), ..Sink::default() });
            emitter.emit(&event(EventType::Start));
            emitter.emit(&event(EventType::Complete));
            let stats = emitter.finish(Duration::from_secs(5)).await;
            assert_eq!(stats.written.load(Ordering::Relaxed), 2);
        }
        let types: Vec<String> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["eventType"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(types, ["START", "COMPLETE", "START", "COMPLETE"]);
    }

    #[tokio::test]
    async fn events_are_posted_in_order_with_the_bearer_key() {
        type Got = Arc<Mutex<Vec<(Option<String>, Value)>>>;
        let got: Got = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v1/lineage", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route(
                "/api/v1/lineage",
                axum::routing::post(
                    |axum::extract::State(got): axum::extract::State<Got>,
                     headers: axum::http::HeaderMap,
                     axum::Json(body): axum::Json<Value>| async move {
                        let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
                        got.lock().unwrap().push((auth, body));
                        axum::http::StatusCode::CREATED
                    },
                ),
            )
            .with_state(got.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let emitter = Emitter::start(Sink {
            url: Some(url),
            api_key: Some(Secret::new("k3y".into())),
            timeout: Duration::from_secs(5),
            ..Sink::default()
        });
        emitter.emit(&event(EventType::Start));
        emitter.emit(&event(EventType::Fail));
        let stats = emitter.finish(Duration::from_secs(10)).await;
        assert_eq!(stats.posted.load(Ordering::Relaxed), 2);
        let got = got.lock().unwrap();
        assert_eq!(got.iter().map(|(_, e)| e["eventType"].as_str().unwrap()).collect::<Vec<_>>(), ["START", "FAIL"]);
        assert!(got.iter().all(|(auth, _)| auth.as_deref() == Some("Bearer k3y")));
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_given_up_without_holding_the_run() {
        // Nothing listens on port 9: each POST fails fast; after three the endpoint is skipped.
        let emitter = Emitter::start(Sink {
            url: Some("http://127.0.0.1:9/api/v1/lineage".into()),
            timeout: Duration::from_secs(2),
            ..Sink::default()
        });
        for _ in 0..10 {
            emitter.emit(&event(EventType::Start));
        }
        let stats = emitter.finish(Duration::from_secs(30)).await;
        assert_eq!(stats.failed.load(Ordering::Relaxed), 10);
        assert_eq!(stats.posted.load(Ordering::Relaxed), 0);
    }
}
