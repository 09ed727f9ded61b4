//! The web server of `mdp serve`: the UI (overview, runs, lineage, checks, KPI dashboard), its JSON
//! API, Prometheus `/metrics`, the project's docs site under `/docs/`, and actions (run the
//! pipeline, a backfill, re-run a task) started as child `mdp` processes.
//!
//! - [`app`] builds the axum `Router` from a [`ServerConfig`]; [`serve`] runs it on a listener.
//! - [`catalog::Catalog`] is what the server knows of the project, taken once at start-up from the
//!   parsed project (the marts' relations, the lineage graph, the docs site).
//! - [`data`] reads the warehouse: it is opened **per request** for reading and dropped at the end of
//!   it, because DuckDB lets one process write a file and a reader holding it open would block runs.
//!   While a run writes, pages answer "a run is writing" (auto-refresh) and the API 503.
//! - [`auth`] decides who may start actions: the token (`Authorization: Bearer`, or the form field),
//!   a per-process CSRF token on loopback, and a `Host` check against DNS rebinding.
//! - [`metrics`] renders the Prometheus text exposition at scrape time from the metadata.
//!
//! **Invariant:** the server never writes to the warehouse itself (actions run as separate `mdp`
//! processes, which take the writer lock as any run does), and SQL reaches the database only through
//! `mdp_warehouse`'s `Warehouse` trait with identifiers quoted by its `Dialect`.

pub mod actions;
pub mod api;
pub mod auth;
pub mod catalog;
pub mod data;
pub mod html;
pub mod metrics;
pub mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::NaiveDate;
use mdp_project::Secret;
use mdp_warehouse::ConnectOptions;

pub use crate::actions::{ActionRunner, ActionsConfig};
pub use crate::catalog::Catalog;

/// Everything `mdp serve` configures.
pub struct ServerConfig {
    /// The warehouse, opened read-only per request.
    pub warehouse: ConnectOptions,
    /// The address the server listens on (decides whether actions need the token).
    pub bind: SocketAddr,
    /// The token actions need (required when bound beyond loopback). Never logged.
    pub token: Option<Secret>,
    pub catalog: Catalog,
    /// How to start actions; `None` disables them.
    pub actions: Option<ActionsConfig>,
    /// "Today" for freshness (tests pin it; default: the UTC date).
    pub today: Option<NaiveDate>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("warehouse", &self.warehouse)
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("today", &self.today)
            .finish_non_exhaustive()
    }
}

/// Shared state of every request.
pub struct AppState {
    pub config: ServerConfig,
    pub policy: auth::Policy,
    pub actions: Option<ActionRunner>,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Arc<AppState> {
        let policy = auth::Policy::new(config.bind, config.token.clone());
        let actions = config.actions.clone().map(ActionRunner::new);
        Arc::new(AppState { config, policy, actions })
    }

    /// Today's date for freshness and the dashboard's default range.
    pub fn today(&self) -> NaiveDate {
        self.config.today.unwrap_or_else(|| chrono::Utc::now().date_naive())
    }

    /// What every action goes through, for the API and the pages alike: the token / CSRF policy, then
    /// the request's own validation, then the start. The action's id, or the status and message to
    /// answer with.
    pub(crate) fn start_action(
        &self,
        headers: &axum::http::HeaderMap,
        offered: auth::Offered,
        request: Result<actions::ActionRequest, String>,
    ) -> Result<u64, (axum::http::StatusCode, String)> {
        use axum::http::StatusCode;
        self.policy.check_action(headers, offered).map_err(|refusal| (refusal.status, refusal.message))?;
        let runner = self
            .actions
            .as_ref()
            .ok_or((StatusCode::FORBIDDEN, "this server was started without actions".to_string()))?;
        let request = request.map_err(|message| (StatusCode::BAD_REQUEST, message))?;
        runner.start(&request).map_err(|e| match e {
            actions::StartError::Busy(_) => (StatusCode::CONFLICT, e.to_string()),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        })
    }
}

/// The router: pages, API, metrics, assets and docs.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/runs", get(pages::runs))
        .route("/runs/{id}", get(pages::run_detail))
        .route("/lineage", get(pages::lineage))
        .route("/checks", get(pages::checks))
        .route("/kpis", get(pages::kpis))
        .route("/actions", get(pages::actions))
        .route("/actions/{id}", get(pages::action_detail))
        .route("/actions/pipeline", post(pages::post_pipeline))
        .route("/actions/backfill", post(pages::post_backfill))
        .route("/actions/retry", post(pages::post_retry))
        .route("/api/session", get(api::session))
        .route("/api/overview", get(api::overview))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run_detail))
        .route("/api/checks", get(api::checks))
        .route("/api/freshness", get(api::freshness))
        .route("/api/kpis", get(api::kpis))
        .route("/api/lineage", get(api::lineage))
        .route("/api/actions", get(api::actions))
        .route("/api/actions/{id}", get(api::action))
        .route("/api/actions/pipeline", post(api::post_pipeline))
        .route("/api/actions/backfill", post(api::post_backfill))
        .route("/api/actions/retry", post(api::post_retry))
        .route("/metrics", get(metrics::handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/assets/{*path}", get(asset))
        .route("/docs", get(|| async { axum::response::Redirect::permanent("/docs/") }))
        .route("/docs/", get(docs_index))
        .route("/docs/{*path}", get(docs_file))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::host_guard))
        .with_state(state)
}

/// Serve until `shutdown` resolves.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}

/// The embedded static files: the UI's stylesheet and script, and uPlot (MIT, vendored: no CDN).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    (
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    ("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../assets/vendor/uplot/uPlot.min.css")),
    ("vendor/uplot/LICENSE", "text/plain; charset=utf-8", include_bytes!("../assets/vendor/uplot/LICENSE")),
];

async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

async fn docs_index(State(state): State<Arc<AppState>>) -> Response {
    docs_response(&state, "index.html")
}

async fn docs_file(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    docs_response(&state, &path)
}

fn docs_response(state: &AppState, path: &str) -> Response {
    let path = if path.is_empty() || path.ends_with('/') { format!("{path}index.html") } else { path.to_string() };
    match state.config.catalog.docs.get(&path) {
        Some(content) => {
            let content_type = match path.rsplit('.').next() {
                Some("html") => "text/html; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("json") => "application/json",
                Some("svg") => "image/svg+xml",
                _ => "application/octet-stream",
            };
            ([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], content.clone()).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no docs page {path}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    fn state(dir: &std::path::Path, bind: &str, token: Option<&str>) -> Arc<AppState> {
        let mut catalog = Catalog { title: "demo".into(), sources: vec!["google_ads".into()], ..Catalog::default() };
        catalog.docs.insert("index.html".into(), b"<h1>docs index</h1>".to_vec());
        AppState::new(ServerConfig {
            warehouse: ConnectOptions::duckdb(dir.join("warehouse.duckdb")),
            bind: bind.parse().unwrap(),
            token: token.map(|t| Secret::new(t.into())),
            catalog,
            actions: None,
            today: None,
        })
    }

    async fn call(state: &Arc<AppState>, method: &str, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(uri).header("host", "127.0.0.1:8080");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = app(state.clone()).oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn assets_docs_and_unknown_paths_are_routed() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path(), "127.0.0.1:8080", None);
        let (status, body) = call(&s, "GET", "/assets/vendor/uplot/uPlot.iife.min.js", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("uPlot"), "the vendored chart library is served");
        assert_eq!(call(&s, "GET", "/assets/../Cargo.toml", &[]).await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&s, "GET", "/docs/", &[]).await.1, "<h1>docs index</h1>");
        assert_eq!(call(&s, "GET", "/docs/nodes/missing.html", &[]).await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&s, "GET", "/no/such/page", &[]).await.0, StatusCode::NOT_FOUND);
        assert_eq!(call(&s, "GET", "/healthz", &[]).await.1, "ok");
    }

    #[tokio::test]
    async fn a_missing_warehouse_is_explained_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path(), "127.0.0.1:8080", None);
        let (status, body) = call(&s, "GET", "/", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("does not exist yet"), "{body}");
        let (status, body) = call(&s, "GET", "/api/runs", &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("\"empty\":true"), "{body}");
        assert!(!dir.path().join("warehouse.duckdb").exists(), "a reader never creates the warehouse");
    }

    #[tokio::test]
    async fn while_a_run_writes_pages_refresh_and_the_api_answers_503() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("warehouse.duckdb");
        std::fs::write(&db, b"").unwrap();
        let holder = mdp_warehouse::LockHolder::current("run-writing", "pipeline");
        let _lock = mdp_warehouse::lock::FileLock::acquire(&mdp_warehouse::lock::lock_file_path(&db), &holder).unwrap();
        let s = state(dir.path(), "127.0.0.1:8080", None);
        let (status, body) = call(&s, "GET", "/runs", &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("http-equiv=\"refresh\"") && body.contains("A run is writing"), "{body}");
        assert!(body.contains("run-writing"), "names the run: {body}");
        let (status, body) = call(&s, "GET", "/api/overview", &[]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("\"busy\":true"), "{body}");
        let (status, body) = call(&s, "GET", "/metrics", &[]).await;
        assert_eq!(status, StatusCode::OK, "a scrape during a run still answers");
        assert!(body.contains("mdp_warehouse_readable 0"), "{body}");
    }

    #[tokio::test]
    async fn actions_are_refused_by_the_rules() {
        let dir = tempfile::tempdir().unwrap();
        let exposed = state(dir.path(), "0.0.0.0:8080", None);
        let (status, body) = call(&exposed, "POST", "/api/actions/pipeline", &[]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("without a token"), "{body}");

        let with_token = state(dir.path(), "0.0.0.0:8080", Some("tok-123"));
        assert_eq!(call(&with_token, "POST", "/api/actions/pipeline", &[]).await.0, StatusCode::UNAUTHORIZED);
        // Right token, but this server has no action runner: refused with the reason.
        let (status, body) =
            call(&with_token, "POST", "/api/actions/pipeline", &[("authorization", "Bearer tok-123")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("without actions"), "{body}");

        let loopback = state(dir.path(), "127.0.0.1:8080", None);
        assert_eq!(call(&loopback, "POST", "/api/actions/pipeline", &[]).await.0, StatusCode::FORBIDDEN);
        let (status, body) = call(&loopback, "GET", "/api/session", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains(loopback.policy.csrf()));
    }

    #[tokio::test]
    async fn a_loopback_server_refuses_other_host_names() {
        let dir = tempfile::tempdir().unwrap();
        let s = state(dir.path(), "127.0.0.1:8080", None);
        let request = Request::builder().uri("/api/session").header("host", "attacker.example").body(Body::empty());
        let response = app(s).oneshot(request.unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);
    }
}
