//! Snowflake's connector protocol: the REST endpoints its official drivers use.
//!
//! - Sign in: `POST /session/v1/login-request` with a password, or with a key-pair JWT
//!   (`AUTHENTICATOR: SNOWFLAKE_JWT`; claims `iss = ACCOUNT.USER.SHA256:<fingerprint>`,
//!   `sub = ACCOUNT.USER`, an hour at most). The answer's session token authorizes every request after
//!   (`Authorization: Snowflake Token="…"`); the token is never logged.
//! - Run: `POST /queries/v1/query-request`, **one statement** per request (Snowflake refuses several
//!   unless told how many; split with [`crate::split_statements`]). A query still running after
//!   the request's wait answers code 333333 with a `getResultUrl`, polled until it finishes.
//! - Errors: a rejected statement is HTTP 200 with `success: false` and Snowflake's code, SQL state and
//!   message; 401/403 and codes 390xxx are sign-in or session errors; 429 and 5xx are worth a retry.
//! - Results: [`result`] reads the `rowtype`, the inline row set (Arrow IPC in `rowsetBase64`, or JSON
//!   in `rowset`) and the `chunks` a large result is split into, into Arrow batches.
//!
//! A [`Session`] runs one request at a time: a session is Snowflake's unit of transaction, and a
//! driver that interleaved statements of several callers on one would mix their transactions.

pub mod result;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mdp_core::jwt::RsaKey;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::CloudError;
pub use result::QueryResult;

/// Rows one `VALUES` clause may hold (Snowflake's limit).
pub const MAX_VALUES_ROWS: usize = 16_384;

const SERVICE: &str = "Snowflake";

/// How to sign in.
#[derive(Clone)]
pub enum SnowflakeAuth {
    /// A user's password (Snowflake is deprecating single-factor passwords for people; fine for
    /// service users and the local stand-in).
    Password(String),
    /// Key-pair authentication: the PEM text of the user's unencrypted RSA private key, whose public
    /// key is set on the user (`ALTER USER … SET RSA_PUBLIC_KEY = '…'`).
    KeyPair(String),
}

/// Where and as whom to connect.
#[derive(Clone)]
pub struct SnowflakeConfig {
    /// The account identifier (`myorg-myaccount`, or a locator such as `xy12345.eu-west-1`).
    pub account: String,
    pub user: String,
    pub auth: SnowflakeAuth,
    pub database: String,
    pub schema: Option<String>,
    pub warehouse: Option<String>,
    pub role: Option<String>,
    /// The API's address; `https://<account>.snowflakecomputing.com` when unset (set it for a
    /// private-link host or a local stand-in).
    pub base_url: Option<String>,
}

impl std::fmt::Debug for SnowflakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnowflakeConfig")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("warehouse", &self.warehouse)
            .field("role", &self.role)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SnowflakeConfig {
    /// The account name as tokens and the login body spell it: upper case, without the region and
    /// cloud of a locator (`xy12345.eu-west-1.aws` → `XY12345`).
    pub fn account_name(&self) -> String {
        self.account.split('.').next().unwrap_or_default().to_ascii_uppercase()
    }
}

/// A Snowflake account to open sessions on. Cheap to clone.
#[derive(Clone)]
pub struct Snowflake {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: reqwest::Url,
    config: SnowflakeConfig,
    key: Option<RsaKey>,
}

impl std::fmt::Debug for Snowflake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snowflake").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// How long a key-pair token is valid (Snowflake's maximum is an hour).
const JWT_LIFETIME_SECS: i64 = 3540;

impl Snowflake {
    /// Check the settings (the key parses, the address is a URL); no request is made.
    pub fn new(config: SnowflakeConfig) -> Result<Snowflake, CloudError> {
        let base_text = match &config.base_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("https://{}.snowflakecomputing.com", config.account.to_ascii_lowercase()),
        };
        let base = reqwest::Url::parse(&base_text)
            .map_err(|e| CloudError::Config(format!("the Snowflake address {base_text:?} is not a URL ({e})")))?;
        if config.account.trim().is_empty() || config.user.trim().is_empty() {
            return Err(CloudError::Config("a Snowflake target needs an account and a user".into()));
        }
        let key = match &config.auth {
            SnowflakeAuth::KeyPair(pem) => {
                Some(RsaKey::from_pem(pem).map_err(|e| CloudError::Config(format!("the Snowflake private key {e}")))?)
            }
            SnowflakeAuth::Password(_) => None,
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("mdp/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| CloudError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Snowflake { inner: Arc::new(Inner { http, base, config, key }) })
    }

    pub fn config(&self) -> &SnowflakeConfig {
        &self.inner.config
    }

    /// The API's address (no secret in it).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The key-pair token for a login at `now` (Unix seconds).
    pub fn key_pair_jwt(&self, now: i64) -> Result<Option<String>, CloudError> {
        let Some(key) = &self.inner.key else { return Ok(None) };
        let subject = format!("{}.{}", self.inner.config.account_name(), self.inner.config.user.to_ascii_uppercase());
        let claims = json!({
            "iss": format!("{subject}.{}", key.public_key_fingerprint()),
            "sub": subject,
            "iat": now,
            "exp": now + JWT_LIFETIME_SECS,
        });
        key.sign(json!({}), &claims).map(Some).map_err(CloudError::Config)
    }

    /// Sign in and open a session in the configured database, schema, warehouse and role.
    pub async fn login(&self) -> Result<Session, CloudError> {
        let token = self.sign_in().await?;
        Ok(Session {
            account: self.clone(),
            token: std::sync::Mutex::new(token),
            renews: false,
            expired: std::sync::atomic::AtomicBool::new(false),
            sequence: AtomicU64::new(0),
            turn: tokio::sync::Mutex::new(()),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A new session token.
    async fn sign_in(&self) -> Result<String, CloudError> {
        let c = &self.inner.config;
        let mut url = self.endpoint("/session/v1/login-request")?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("databaseName", &c.database);
            // mdp names every table with its schema; a session still gets a current schema (the
            // database's PUBLIC unless told), which statements without one need.
            query.append_pair("schemaName", c.schema.as_deref().unwrap_or("PUBLIC"));
            if let Some(warehouse) = &c.warehouse {
                query.append_pair("warehouse", warehouse);
            }
            if let Some(role) = &c.role {
                query.append_pair("roleName", role);
            }
            query.append_pair("requestId", &uuid::Uuid::new_v4().to_string());
        }
        let mut data = json!({
            "CLIENT_APP_ID": "mdp",
            "CLIENT_APP_VERSION": env!("CARGO_PKG_VERSION"),
            "SVN_REVISION": "",
            "ACCOUNT_NAME": c.account_name(),
            "LOGIN_NAME": c.user,
            "CLIENT_ENVIRONMENT": {"APPLICATION": "mdp", "OS": std::env::consts::OS},
            // Dates and times come back in UTC; mdp writes UTC into its timestamps.
            "SESSION_PARAMETERS": {"TIMEZONE": "UTC"},
        });
        match &c.auth {
            SnowflakeAuth::Password(password) => data["PASSWORD"] = password.as_str().into(),
            SnowflakeAuth::KeyPair(_) => {
                data["AUTHENTICATOR"] = "SNOWFLAKE_JWT".into();
                data["TOKEN"] = self.key_pair_jwt(chrono::Utc::now().timestamp())?.unwrap_or_default().into();
            }
        }
        let response = self
            .inner
            .http
            .post(url)
            .header("Accept", "application/snowflake")
            .json(&json!({ "data": data }))
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| unreachable_error("signing in", &e))?;
        let body: Envelope = read_envelope(response, "signing in").await?;
        if !body.success {
            let code = body.code.unwrap_or_default();
            let message = body.message.unwrap_or_default();
            return Err(CloudError::Auth(format!(
                "Snowflake refused to sign in user {} on account {} (code {code}): {message}",
                c.user, c.account
            )));
        }
        let token = body
            .data
            .as_ref()
            .and_then(|d| d.get("token"))
            .and_then(Value::as_str)
            .ok_or_else(|| protocol("the sign-in answer has no session token"))?
            .to_string();
        Ok(token)
    }

    fn endpoint(&self, path: &str) -> Result<reqwest::Url, CloudError> {
        let base = self.inner.base.as_str().trim_end_matches('/');
        reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| CloudError::Config(format!("cannot build the URL of {path}: {e}")))
    }
}

/// A signed-in session: runs one statement at a time; its transaction (after `BEGIN`) is its own.
pub struct Session {
    account: Snowflake,
    token: std::sync::Mutex<String>,
    /// Whether an expired session signs in again by itself (see [`Session::renewing`]).
    renews: bool,
    /// Set when the last request found the session expired.
    expired: std::sync::atomic::AtomicBool,
    sequence: AtomicU64,
    turn: tokio::sync::Mutex<()>,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("account", &self.account.inner.config.account).finish_non_exhaustive()
    }
}

/// The envelope of every answer.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    code: Option<String>,
    message: Option<String>,
    data: Option<Value>,
}

/// Codes that mean "still running, ask again at `getResultUrl`".
const IN_PROGRESS: &[&str] = &["333333", "333334"];

/// Snowflake's code for a session that expired (idle too long, or its token's validity ended).
const SESSION_EXPIRED: &str = "390112";

impl Session {
    /// A session that signs in again by itself when Snowflake expires it, and reruns the statement
    /// that found it expired. Only for a session that holds no transaction (a transaction dies with
    /// its session, and a new one cannot go on with it): the warehouse's own session, not a
    /// transaction's.
    pub fn renewing(mut self) -> Session {
        self.renews = true;
        self
    }

    /// Run one statement; the result's first part is read, its chunks are fetched as the caller
    /// reads on.
    pub async fn execute(&self, sql: &str) -> Result<QueryResult, CloudError> {
        let _turn = self.turn.lock().await;
        let mut renewed = false;
        loop {
            match self.request(sql).await {
                Err(CloudError::Auth(_)) if self.renews && !renewed && self.expired.swap(false, Ordering::SeqCst) => {
                    tracing::info!("the Snowflake session expired; signing in again");
                    let token = self.account.sign_in().await?;
                    *self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = token;
                    renewed = true;
                }
                outcome => return outcome,
            }
        }
    }

    /// One attempt at a statement.
    async fn request(&self, sql: &str) -> Result<QueryResult, CloudError> {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        let mut url = self.account.endpoint("/queries/v1/query-request")?;
        url.query_pairs_mut().append_pair("requestId", &uuid::Uuid::new_v4().to_string());
        let body = json!({
            "sqlText": sql,
            "asyncExec": false,
            "sequenceId": sequence,
            "querySubmissionTime": chrono::Utc::now().timestamp_millis(),
        });
        let response = self
            .authorized(self.account.inner.http.post(url))
            .json(&body)
            .send()
            .await
            .map_err(|e| unreachable_error("running a statement", &e))?;
        let mut envelope = read_envelope(response, "running a statement").await?;
        // A long query: poll its result URL until it is done.
        let mut wait = Duration::from_millis(250);
        while !envelope.success && envelope.code.as_deref().is_some_and(|c| IN_PROGRESS.contains(&c)) {
            let path = envelope
                .data
                .as_ref()
                .and_then(|d| d.get("getResultUrl"))
                .and_then(Value::as_str)
                .ok_or_else(|| protocol("a query in progress came without a getResultUrl"))?
                .to_string();
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            let response = self
                .authorized(self.account.inner.http.get(self.account.endpoint(&path)?))
                .send()
                .await
                .map_err(|e| unreachable_error("waiting for a query", &e))?;
            envelope = read_envelope(response, "waiting for a query").await?;
        }
        if !envelope.success {
            if envelope.code.as_deref() == Some(SESSION_EXPIRED) {
                self.expired.store(true, Ordering::SeqCst);
            }
            return Err(statement_error(envelope));
        }
        let data = envelope.data.ok_or_else(|| protocol("a successful answer without data"))?;
        QueryResult::from_response(data, self.account.inner.http.clone()).await
    }

    /// End the session on the server (an open transaction is rolled back). Safe to call twice.
    pub async fn close(&self) -> Result<(), CloudError> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let mut url = self.account.endpoint("/session")?;
        url.query_pairs_mut().append_pair("delete", "true");
        let response = self
            .authorized(self.account.inner.http.post(url))
            .send()
            .await
            .map_err(|e| unreachable_error("closing the session", &e))?;
        read_envelope(response, "closing the session").await.map(|_| ())
    }

    fn token(&self) -> String {
        self.token.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request
            .header("Authorization", format!("Snowflake Token=\"{}\"", self.token()))
            .header("Accept", "application/snowflake")
    }
}

fn protocol(message: impl Into<String>) -> CloudError {
    CloudError::Protocol { service: SERVICE, message: message.into() }
}

fn unreachable_error(doing: &str, e: &reqwest::Error) -> CloudError {
    // reqwest's message names the URL, which holds no secret (the token is a header).
    let mut message = format!("cannot reach Snowflake while {doing}: {e}");
    if let Some(source) = std::error::Error::source(e) {
        message.push_str(&format!(" ({source})"));
    }
    CloudError::Unavailable(message)
}

/// Read an answer's envelope; HTTP errors become the error of who must act.
async fn read_envelope(response: reqwest::Response, doing: &str) -> Result<Envelope, CloudError> {
    let status = response.status();
    let text = response.text().await.map_err(|e| unreachable_error(doing, &e))?;
    let parsed: Option<Envelope> = serde_json::from_str(&text).ok();
    if status.is_success() {
        return parsed.ok_or_else(|| protocol(format!("{doing}: the answer is not Snowflake's JSON envelope")));
    }
    let detail = parsed
        .as_ref()
        .map(|e| format!("code {}: {}", e.code.as_deref().unwrap_or("-"), e.message.as_deref().unwrap_or("")))
        .unwrap_or_else(|| text.chars().take(300).collect());
    let message = format!("Snowflake answered HTTP {status} while {doing} ({detail})");
    // "Unhandled exception" in running a statement (code 261000): the statement cannot run, and
    // will not on a retry (the local stand-in answers so for SQL it does not implement).
    if let Some(Envelope { code: Some(code), message: Some(text), .. }) = &parsed {
        if code == "261000" {
            return Err(CloudError::Sql { code: code.clone(), sql_state: None, message: text.clone() });
        }
    }
    Err(match status.as_u16() {
        401 | 403 => CloudError::Auth(format!("{message}: the session or the credentials were refused")),
        429 | 500..=599 => CloudError::Unavailable(message),
        // Any other 4xx is a request mdp built wrong.
        _ => protocol(message),
    })
}

/// The error of a statement Snowflake rejected.
fn statement_error(envelope: Envelope) -> CloudError {
    let code = envelope.code.unwrap_or_default();
    let message = envelope.message.unwrap_or_default();
    if code.starts_with("390") {
        return CloudError::Auth(format!("Snowflake ended the session (code {code}): {message}; sign in again"));
    }
    let sql_state = envelope.data.as_ref().and_then(|d| d.get("sqlState")).and_then(Value::as_str).map(str::to_string);
    CloudError::Sql { code, sql_state, message }
}

#[cfg(test)]
mod tests;
