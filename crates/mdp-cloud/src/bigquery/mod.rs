//! BigQuery's REST API v2: a thin client for what the warehouse adapter needs.
//!
//! - Auth ([`auth`]): an access token from a service account's key (the JWT-bearer grant at the key's
//!   `token_uri`), from gcloud's application default credentials (a refresh token), or given as is.
//! - Queries: `jobs.query` (`POST /projects/{p}/queries`) with standard SQL, a `requestId` (so a retry
//!   after a lost answer does not run the statement twice) and `formatOptions.useInt64Timestamp`; an answer with `jobComplete: false` is polled with `jobs.getQueryResults`, and
//!   further pages are read with its `pageToken` as the caller reads on. A script (several statements)
//!   answers with its last statement's result.
//! - Errors: a non-2xx answer is Google's error envelope; a 200 answer may still carry `errors` or a
//!   job's `status.errorResult`: both are failures. `invalidQuery`, `notFound`, `duplicate`, `invalid`
//!   are statement errors; 401 and 403 (but rate limits) are auth errors; 429, 5xx, `backendError` and
//!   `rateLimitExceeded` are retried, then reported as unavailable.
//! - Loads ([`BigQuery::load`]): a load job of newline-delimited JSON through a resumable upload sent
//!   in 8 MiB chunks as the caller produces rows, so any size loads in one job in bounded memory.
//! - Tables: `tables.get` (schema; `None` when missing), `datasets.list`, `tables.list`, `tables.delete`.
//!
//! Every int64 in BigQuery's JSON is a string; NUMERIC values are read from their decimal text,
//! never through a float ([`rows`]).

pub mod auth;
pub mod rows;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use serde::Deserialize;
use serde_json::{json, Value};

pub use auth::BigQueryAuth;
pub use rows::FieldSchema;

use crate::error::CloudError;

const SERVICE: &str = "BigQuery";

/// Google's API host.
pub const DEFAULT_BASE_URL: &str = "https://bigquery.googleapis.com";

/// Rows per page of a query's answer.
const PAGE_ROWS: u32 = 10_000;

/// How long one `jobs.query`/`getQueryResults` request waits for the job before answering.
const WAIT_MS: u64 = 10_000;

/// A resumable upload's chunk (a multiple of 256 KiB, as the upload protocol requires).
pub const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

/// Attempts of a request that failed for a reason worth retrying.
const ATTEMPTS: u32 = 4;

/// Where and as whom to connect.
#[derive(Clone)]
pub struct BigQueryConfig {
    /// The project jobs run in (and billed to), and the default project of table names.
    pub project: String,
    /// The dataset mdp's tables go to by default (statements name every table with its dataset, as
    /// dbt-bigquery's do, so no default dataset is sent: a dataset that does not exist yet is no error).
    pub dataset: String,
    /// Where datasets are created and jobs run (`US`, `EU`, `europe-west1`); the dataset's own when unset.
    pub location: Option<String>,
    pub auth: BigQueryAuth,
    /// The API's address; [`DEFAULT_BASE_URL`] when unset (set it for a local stand-in).
    pub base_url: Option<String>,
    /// How long a query job may run before mdp stops waiting (and cancels it).
    pub job_timeout: Duration,
}

impl std::fmt::Debug for BigQueryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryConfig")
            .field("project", &self.project)
            .field("dataset", &self.dataset)
            .field("location", &self.location)
            .field("auth", &self.auth)
            .field("base_url", &self.base_url)
            .field("job_timeout", &self.job_timeout)
            .finish()
    }
}

impl BigQueryConfig {
    pub fn new(project: impl Into<String>, dataset: impl Into<String>, auth: BigQueryAuth) -> Self {
        BigQueryConfig {
            project: project.into(),
            dataset: dataset.into(),
            location: None,
            auth,
            base_url: None,
            job_timeout: Duration::from_secs(3600),
        }
    }
}

/// A BigQuery project to run jobs in. Cheap to clone; requests may run concurrently.
#[derive(Clone)]
pub struct BigQuery {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    config: BigQueryConfig,
    tokens: auth::Tokens,
}

impl std::fmt::Debug for BigQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQuery").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// A table's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableId {
    pub dataset: String,
    pub table: String,
}

impl TableId {
    pub fn new(dataset: impl Into<String>, table: impl Into<String>) -> Self {
        TableId { dataset: dataset.into(), table: table.into() }
    }
}

/// What `tables.get` says of a table or view.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// `TABLE`, `VIEW`, `MATERIALIZED_VIEW`, `EXTERNAL`, `SNAPSHOT`.
    pub kind: String,
    pub fields: Vec<FieldSchema>,
}

/// A table or view found by `tables.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTable {
    pub id: TableId,
    pub kind: String,
}

/// How a load writes into its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteDisposition {
    /// Replace what the table holds.
    Truncate,
    /// Add to it.
    Append,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobReference {
    job_id: String,
    location: Option<String>,
}

/// `jobs.query` and `jobs.getQueryResults` answers (the fields mdp reads).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct QueryAnswer {
    job_reference: Option<JobReference>,
    job_complete: Option<bool>,
    schema: Option<Schema>,
    rows: Vec<Value>,
    page_token: Option<String>,
    num_dml_affected_rows: Option<String>,
    errors: Vec<ErrorProto>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Schema {
    fields: Vec<FieldSchema>,
}

#[derive(Deserialize, Default, Debug, Clone)]
#[serde(default)]
struct ErrorProto {
    reason: Option<String>,
    message: Option<String>,
    location: Option<String>,
}

impl BigQuery {
    /// Check the settings (credentials parse, the address is a URL); no request is made.
    pub fn new(config: BigQueryConfig) -> Result<BigQuery, CloudError> {
        let base = config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_string();
        reqwest::Url::parse(&base)
            .map_err(|e| CloudError::Config(format!("the BigQuery address {base:?} is not a URL ({e})")))?;
        if config.project.trim().is_empty() {
            return Err(CloudError::Config("a BigQuery target needs a project".into()));
        }
        let tokens = auth::Tokens::new(&config.auth)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("mdp/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| CloudError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(BigQuery { inner: Arc::new(Inner { http, base, config, tokens }) })
    }

    pub fn config(&self) -> &BigQueryConfig {
        &self.inner.config
    }

    /// The API's address (no secret in it).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// Who requests are made as (no secret).
    pub fn principal(&self) -> String {
        self.inner.tokens.principal()
    }

    fn project_url(&self, path: &str) -> String {
        format!("{}/bigquery/v2/projects/{}{path}", self.inner.base, segment(&self.inner.config.project))
    }

    /// Send a request built by `build` (again on each attempt), with the token; retry what is worth
    /// retrying. Returns the answer's status and JSON (`Value::Null` for an empty body).
    async fn send(
        &self,
        doing: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Value, reqwest::header::HeaderMap), CloudError> {
        let mut wait = Duration::from_millis(500);
        let mut attempt = 1;
        loop {
            let outcome = self.send_once(doing, &build).await;
            match outcome {
                Err(CloudError::Unavailable(message)) if attempt < ATTEMPTS => {
                    tracing::warn!(attempt, doing, %message, "BigQuery unavailable; retrying");
                }
                Err(CloudError::Auth(message)) if attempt == 1 && message.contains("HTTP 401") => {
                    // A token revoked or expired early: get a new one, once.
                    self.inner.tokens.forget().await;
                }
                other => return other,
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(8));
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        doing: &str,
        build: &impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::StatusCode, Value, reqwest::header::HeaderMap), CloudError> {
        let mut request = build(&self.inner.http);
        if let Some(header) = self.inner.tokens.header(&self.inner.http).await? {
            request = request.header("Authorization", header);
        }
        let response = request.send().await.map_err(|e| unreachable_error(doing, &e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.map_err(|e| unreachable_error(doing, &e))?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(_) if !status.is_success() => Value::String(text.chars().take(300).collect()),
                Err(e) => return Err(protocol(format!("{doing}: the answer is not JSON ({e})"))),
            }
        };
        if status.is_success() || status.as_u16() == 308 {
            return Ok((status, body, headers));
        }
        Err(http_error(status, &body, doing))
    }

    /// Run SQL (one statement or a script) and read its answer's first page.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, CloudError> {
        let c = &self.inner.config;
        let mut body = json!({
            "query": sql,
            "useLegacySql": false,
            "formatOptions": {"useInt64Timestamp": true},
            "maxResults": PAGE_ROWS,
            "timeoutMs": WAIT_MS,
            "requestId": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(location) = &c.location {
            body["location"] = location.as_str().into();
        }
        let url = self.project_url("/queries");
        let (_, answer, _) = self.send("running a query", |http| http.post(&url).json(&body)).await?;
        let mut answer: QueryAnswer = parse(answer, "the query answer")?;
        check_errors(&answer.errors)?;
        let job =
            answer.job_reference.take().ok_or_else(|| protocol("a query answer without a jobReference".into()))?;
        let started = std::time::Instant::now();
        while answer.job_complete != Some(true) {
            if started.elapsed() > c.job_timeout {
                self.cancel(&job).await;
                return Err(CloudError::Unavailable(format!(
                    "BigQuery job {} ran longer than {} s; cancelled",
                    job.job_id,
                    c.job_timeout.as_secs()
                )));
            }
            answer = self.results_page(&job, None).await?;
        }
        let fields = answer.schema.take().map(|s| s.fields).unwrap_or_default();
        let schema = rows::schema_of(&fields);
        Ok(QueryResult {
            client: self.clone(),
            affected: answer.num_dml_affected_rows.as_deref().and_then(|n| n.parse().ok()),
            job,
            fields,
            schema,
            rows: std::mem::take(&mut answer.rows),
            page_token: answer.page_token.take(),
        })
    }

    /// One `getQueryResults` page (which also waits for the job to finish).
    async fn results_page(&self, job: &JobReference, page_token: Option<&str>) -> Result<QueryAnswer, CloudError> {
        let url = self.project_url(&format!("/queries/{}", segment(&job.job_id)));
        let mut query: Vec<(&str, String)> = vec![
            ("maxResults", PAGE_ROWS.to_string()),
            ("timeoutMs", WAIT_MS.to_string()),
            ("formatOptions.useInt64Timestamp", "true".into()),
        ];
        if let Some(location) = &job.location {
            query.push(("location", location.clone()));
        }
        if let Some(token) = page_token {
            query.push(("pageToken", token.to_string()));
        }
        let (_, answer, _) = self.send("reading a query's results", |http| http.get(&url).query(&query)).await?;
        let answer: QueryAnswer = parse(answer, "the query results")?;
        check_errors(&answer.errors)?;
        Ok(answer)
    }

    async fn cancel(&self, job: &JobReference) {
        let url = self.project_url(&format!("/jobs/{}/cancel", segment(&job.job_id)));
        let location: Vec<(&str, String)> = job.location.iter().map(|l| ("location", l.clone())).collect();
        if let Err(e) =
            self.send_once("cancelling a job", &|http: &reqwest::Client| http.post(&url).query(&location)).await
        {
            tracing::warn!(job = %job.job_id, error = %e, "could not cancel a BigQuery job");
        }
    }

    /// A table's or view's kind and schema; `None` when it (or its dataset) does not exist.
    pub async fn table(&self, id: &TableId) -> Result<Option<TableInfo>, CloudError> {
        let url = self.project_url(&format!("/datasets/{}/tables/{}", segment(&id.dataset), segment(&id.table)));
        match self.send("reading a table's schema", |http| http.get(&url)).await {
            Ok((_, body, _)) => {
                let kind = body.get("type").and_then(Value::as_str).unwrap_or("TABLE").to_string();
                let fields = body
                    .get("schema")
                    .and_then(|s| s.get("fields"))
                    .map(|f| serde_json::from_value::<Vec<FieldSchema>>(f.clone()))
                    .transpose()
                    .map_err(|e| protocol(format!("a table's schema does not read: {e}")))?
                    .unwrap_or_default();
                Ok(Some(TableInfo { kind, fields }))
            }
            Err(CloudError::Sql { code, .. }) if code == "notFound" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The project's datasets.
    pub async fn datasets(&self) -> Result<Vec<String>, CloudError> {
        let url = self.project_url("/datasets");
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let query: Vec<(&str, String)> = token.iter().map(|t| ("pageToken", t.clone())).collect();
            let (_, body, _) = self.send("listing datasets", |http| http.get(&url).query(&query)).await?;
            for dataset in body.get("datasets").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                if let Some(name) = dataset.pointer("/datasetReference/datasetId").and_then(Value::as_str) {
                    names.push(name.to_string());
                }
            }
            token = body.get("nextPageToken").and_then(Value::as_str).map(str::to_string);
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    /// The tables and views of a dataset (empty when it does not exist).
    pub async fn tables(&self, dataset: &str) -> Result<Vec<ListedTable>, CloudError> {
        let url = self.project_url(&format!("/datasets/{}/tables", segment(dataset)));
        let mut tables = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query: Vec<(&str, String)> = vec![("maxResults", "1000".into())];
            if let Some(t) = &token {
                query.push(("pageToken", t.clone()));
            }
            let body = match self.send("listing tables", |http| http.get(&url).query(&query)).await {
                Ok((_, body, _)) => body,
                Err(CloudError::Sql { code, .. }) if code == "notFound" => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            for table in body.get("tables").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                if let Some(name) = table.pointer("/tableReference/tableId").and_then(Value::as_str) {
                    let kind = table.get("type").and_then(Value::as_str).unwrap_or("TABLE").to_string();
                    tables.push(ListedTable { id: TableId::new(dataset, name), kind });
                }
            }
            token = body.get("nextPageToken").and_then(Value::as_str).map(str::to_string);
            if token.is_none() {
                return Ok(tables);
            }
        }
    }

    /// Create a table of `fields` (expiring after `expires_in` when given); it must not exist yet.
    pub async fn create_table(
        &self,
        id: &TableId,
        fields: &[FieldSchema],
        expires_in: Option<Duration>,
    ) -> Result<(), CloudError> {
        let c = &self.inner.config;
        let url = self.project_url(&format!("/datasets/{}/tables", segment(&id.dataset)));
        let mut table = json!({
            "tableReference": {"projectId": c.project, "datasetId": id.dataset, "tableId": id.table},
            "schema": {"fields": fields},
        });
        if let Some(after) = expires_in {
            let at = chrono::Utc::now() + chrono::Duration::from_std(after).unwrap_or(chrono::Duration::days(1));
            table["expirationTime"] = at.timestamp_millis().to_string().into();
        }
        self.send("creating a table", |http| http.post(&url).json(&table)).await.map(|_| ())
    }

    /// Set a table's schema (`tables.patch`): the REST API's way to append columns.
    pub async fn patch_schema(&self, id: &TableId, fields: &[FieldSchema]) -> Result<(), CloudError> {
        let url = self.project_url(&format!("/datasets/{}/tables/{}", segment(&id.dataset), segment(&id.table)));
        let body = json!({"schema": {"fields": fields}});
        self.send("updating a table's schema", |http| http.patch(&url).json(&body)).await.map(|_| ())
    }

    /// Delete a table; a missing one is no error.
    pub async fn delete_table(&self, id: &TableId) -> Result<(), CloudError> {
        let url = self.project_url(&format!("/datasets/{}/tables/{}", segment(&id.dataset), segment(&id.table)));
        match self.send("deleting a table", |http| http.delete(&url)).await {
            Ok(_) => Ok(()),
            Err(CloudError::Sql { code, .. }) if code == "notFound" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Start a load job of newline-delimited JSON into `into` (created with `fields` when missing);
    /// write the rows to the returned [`Load`] and [`Load::finish`] it.
    pub async fn load(
        &self,
        into: &TableId,
        fields: &[FieldSchema],
        disposition: WriteDisposition,
    ) -> Result<Load, CloudError> {
        let c = &self.inner.config;
        let job_id = format!("mdp_load_{}", uuid::Uuid::new_v4().simple());
        let mut job_reference = json!({"projectId": c.project, "jobId": job_id});
        if let Some(location) = &c.location {
            job_reference["location"] = location.as_str().into();
        }
        let job = json!({
            "jobReference": job_reference,
            "configuration": {"load": {
                "destinationTable": {"projectId": c.project, "datasetId": into.dataset, "tableId": into.table},
                "sourceFormat": "NEWLINE_DELIMITED_JSON",
                "schema": {"fields": fields},
                "writeDisposition": match disposition {
                    WriteDisposition::Truncate => "WRITE_TRUNCATE",
                    WriteDisposition::Append => "WRITE_APPEND",
                },
                "createDisposition": "CREATE_IF_NEEDED",
                "ignoreUnknownValues": false,
                "maxBadRecords": 0,
            }},
        });
        let url = format!("{}/upload/bigquery/v2/projects/{}/jobs", self.inner.base, segment(&c.project));
        let (_, _, headers) = self
            .send("starting a load", |http| {
                http.post(&url)
                    .query(&[("uploadType", "resumable")])
                    .header("X-Upload-Content-Type", "application/octet-stream")
                    .json(&job)
            })
            .await?;
        let session = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| protocol("a resumable upload started without a Location".into()))?
            .to_string();
        Ok(Load {
            client: self.clone(),
            session,
            table: format!("{}.{}", into.dataset, into.table),
            buffer: Vec::with_capacity(UPLOAD_CHUNK + 64 * 1024),
            sent: 0,
            rows: 0,
        })
    }

    /// Wait for a job to finish; its error is the load's or statement's error.
    async fn wait_job(&self, job: &Value, doing: &str) -> Result<Value, CloudError> {
        let mut job = job.clone();
        let mut wait = Duration::from_millis(200);
        let started = std::time::Instant::now();
        loop {
            if let Some(error) = job.pointer("/status/errorResult") {
                let errors: Vec<ErrorProto> = job
                    .pointer("/status/errors")
                    .and_then(|e| serde_json::from_value(e.clone()).ok())
                    .unwrap_or_default();
                let first: ErrorProto = serde_json::from_value(error.clone()).unwrap_or_default();
                return Err(sql_error(&first, &errors));
            }
            if job.pointer("/status/state").and_then(Value::as_str) == Some("DONE") {
                return Ok(job);
            }
            if started.elapsed() > self.inner.config.job_timeout {
                return Err(CloudError::Unavailable(format!("{doing}: the job did not finish in time")));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            let id = job
                .pointer("/jobReference/jobId")
                .and_then(Value::as_str)
                .ok_or_else(|| protocol(format!("{doing}: a job without a jobId")))?
                .to_string();
            let location: Vec<(&str, String)> = job
                .pointer("/jobReference/location")
                .and_then(Value::as_str)
                .map(|l| ("location", l.to_string()))
                .into_iter()
                .collect();
            let url = self.project_url(&format!("/jobs/{}", segment(&id)));
            job = self.send(doing, |http| http.get(&url).query(&location)).await?.1;
        }
    }
}

/// A load job's upload in progress: rows are buffered and sent in [`UPLOAD_CHUNK`]s.
pub struct Load {
    client: BigQuery,
    session: String,
    table: String,
    buffer: Vec<u8>,
    /// Bytes the server has.
    sent: u64,
    rows: u64,
}

impl Load {
    /// Add one row: a JSON object (one line of newline-delimited JSON, without the newline).
    pub async fn push_row(&mut self, line: &[u8]) -> Result<(), CloudError> {
        self.buffer.extend_from_slice(line);
        self.buffer.push(b'\n');
        self.rows += 1;
        while self.buffer.len() >= UPLOAD_CHUNK {
            let rest = self.buffer.split_off(UPLOAD_CHUNK);
            let chunk = std::mem::replace(&mut self.buffer, rest);
            self.put(chunk, None).await?;
        }
        Ok(())
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Send what is left, wait for the job, and return the rows it loaded.
    pub async fn finish(mut self) -> Result<u64, CloudError> {
        let last = std::mem::take(&mut self.buffer);
        let total = self.sent + last.len() as u64;
        let job = self.put(last, Some(total)).await?;
        let doing = format!("loading into {}", self.table);
        let job = self.client.wait_job(&job, &doing).await?;
        let loaded = job
            .pointer("/statistics/load/outputRows")
            .and_then(Value::as_str)
            .and_then(|n| n.parse().ok())
            .unwrap_or(self.rows);
        if loaded != self.rows {
            return Err(CloudError::Protocol {
                service: SERVICE,
                message: format!("{doing}: {} rows were sent and {loaded} loaded", self.rows),
            });
        }
        Ok(loaded)
    }

    /// Send a chunk (the last one with the total size); returns the job when the upload completed.
    async fn put(&mut self, chunk: Vec<u8>, total: Option<u64>) -> Result<Value, CloudError> {
        let start = self.sent;
        let range = match (chunk.is_empty(), total) {
            (true, Some(total)) => format!("bytes */{total}"),
            (_, total) => format!(
                "bytes {start}-{}/{}",
                start + chunk.len() as u64 - 1,
                total.map(|t| t.to_string()).unwrap_or_else(|| "*".into())
            ),
        };
        // Shared, not copied, by each attempt.
        let body = bytes::Bytes::from(chunk);
        let session = self.session.clone();
        let (status, answer, _) = self
            .client
            .send("uploading rows", |http| {
                http.put(&session).header("Content-Range", &range).body(body.clone()).timeout(Duration::from_secs(300))
            })
            .await?;
        self.sent += body.len() as u64;
        match (status.as_u16(), total) {
            (308, None) => Ok(Value::Null),
            (200 | 201, Some(_)) => Ok(answer),
            (code, _) => Err(protocol(format!("uploading rows into {}: unexpected HTTP {code}", self.table))),
        }
    }
}

/// A query's answer: its schema, and its rows page by page.
pub struct QueryResult {
    client: BigQuery,
    job: JobReference,
    fields: Vec<FieldSchema>,
    schema: SchemaRef,
    rows: Vec<Value>,
    page_token: Option<String>,
    affected: Option<u64>,
}

impl std::fmt::Debug for QueryResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryResult").field("job", &self.job.job_id).field("schema", &self.schema).finish()
    }
}

impl QueryResult {
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The columns as BigQuery typed them.
    pub fn fields(&self) -> &[FieldSchema] {
        &self.fields
    }

    /// Rows a DML statement changed.
    pub fn rows_affected(&self) -> Option<u64> {
        self.affected
    }

    /// The next page of rows; `None` at the end.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, CloudError> {
        loop {
            if !self.rows.is_empty() {
                let rows = std::mem::take(&mut self.rows);
                return rows::decode(&self.fields, &self.schema, &rows).map(Some);
            }
            let Some(token) = self.page_token.take() else { return Ok(None) };
            let mut page = self.client.results_page(&self.job, Some(&token)).await?;
            self.rows = std::mem::take(&mut page.rows);
            self.page_token = page.page_token.take().filter(|t| !t.is_empty() && *t != token);
        }
    }

    /// Every remaining batch.
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>, CloudError> {
        let mut batches = Vec::new();
        while let Some(batch) = self.next_batch().await? {
            batches.push(batch);
        }
        Ok(batches)
    }
}

/// A path segment, percent-encoded (project ids hold `-` and `:`; table names may hold more).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn parse<T: serde::de::DeserializeOwned + Default>(body: Value, what: &str) -> Result<T, CloudError> {
    if body.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(body).map_err(|e| protocol(format!("{what} does not read: {e}")))
}

fn protocol(message: String) -> CloudError {
    CloudError::Protocol { service: SERVICE, message }
}

fn unreachable_error(doing: &str, e: &reqwest::Error) -> CloudError {
    // reqwest's message names the URL, which holds no secret (the token is a header).
    let mut message = format!("cannot reach BigQuery while {doing}: {e}");
    if let Some(source) = std::error::Error::source(e) {
        message.push_str(&format!(" ({source})"));
    }
    CloudError::Unavailable(message)
}

/// Reasons worth a retry.
fn retryable(reason: &str) -> bool {
    matches!(reason, "backendError" | "rateLimitExceeded" | "internalError" | "jobBackendError")
}

/// The error of a statement or job BigQuery rejected (its first error, with the others' messages).
fn sql_error(first: &ErrorProto, all: &[ErrorProto]) -> CloudError {
    let reason = first.reason.clone().unwrap_or_else(|| "error".into());
    let mut message = first.message.clone().unwrap_or_default();
    for other in all.iter().filter(|e| e.message != first.message) {
        if let Some(m) = &other.message {
            message.push_str("; ");
            message.push_str(m);
        }
    }
    if let Some(location) = first.location.as_deref().filter(|l| !l.is_empty() && *l != "query") {
        message.push_str(&format!(" (at {location})"));
    }
    if retryable(&reason) {
        return CloudError::Unavailable(format!("BigQuery: {message} ({reason})"));
    }
    if matches!(reason.as_str(), "accessDenied" | "authError") {
        return CloudError::Auth(format!("BigQuery refused access: {message}"));
    }
    CloudError::Sql { code: reason, sql_state: None, message }
}

fn check_errors(errors: &[ErrorProto]) -> Result<(), CloudError> {
    match errors.first() {
        Some(first) => Err(sql_error(first, errors)),
        None => Ok(()),
    }
}

/// A non-2xx answer as the error of who must act.
fn http_error(status: reqwest::StatusCode, body: &Value, doing: &str) -> CloudError {
    let error = body.get("error");
    let errors: Vec<ErrorProto> =
        error.and_then(|e| e.get("errors")).and_then(|e| serde_json::from_value(e.clone()).ok()).unwrap_or_default();
    let message = error
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.as_str().map(str::to_string).unwrap_or_else(|| body.to_string()));
    let reason = errors.first().and_then(|e| e.reason.clone()).unwrap_or_default();
    match status.as_u16() {
        429 | 500..=599 => CloudError::Unavailable(format!("BigQuery answered HTTP {status} while {doing}: {message}")),
        403 if retryable(&reason) || reason == "quotaExceeded" => {
            CloudError::Unavailable(format!("BigQuery answered HTTP {status} while {doing}: {message} ({reason})"))
        }
        401 | 403 => CloudError::Auth(format!(
            "BigQuery refused the credentials while {doing} (HTTP {}): {message}",
            status.as_u16()
        )),
        _ if !errors.is_empty() => {
            let first = ErrorProto { message: Some(message), ..errors[0].clone() };
            sql_error(&first, &[])
        }
        404 => CloudError::Sql { code: "notFound".into(), sql_state: None, message },
        _ => protocol(format!("HTTP {status} while {doing}: {message}")),
    }
}
