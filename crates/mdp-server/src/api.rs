//! The JSON API: everything the pages show, and the actions (credentials in headers only:
//! `Authorization: Bearer <token>`, or `X-MDP-CSRF` on a loopback server without a token).
//!
//! Errors are `{"error": "..."}` with a status: 503 (and `Retry-After`) while a run writes to the
//! warehouse, 404 when there is nothing yet, 401/403 for refused actions, 409 when an action runs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::actions::ActionRequest;
use crate::auth::Offered;
use crate::data::{CheckFilter, DataError, Reader};
use crate::pages::{backfill_request, chart_data, kpi_data, retry_request, KpiQuery, Kpis};
use crate::AppState;

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn data_error(e: DataError) -> Response {
    match e {
        DataError::Busy(why) => {
            let body = Json(json!({ "error": format!("a run is writing to the warehouse: {why}"), "busy": true }));
            (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "3")], body).into_response()
        }
        DataError::Empty(why) => (StatusCode::NOT_FOUND, Json(json!({ "error": why, "empty": true }))).into_response(),
        DataError::Failed(why) => error(StatusCode::INTERNAL_SERVER_ERROR, &why),
    }
}

fn respond(result: Result<serde_json::Value, DataError>) -> Response {
    match result {
        Ok(v) => Json(v).into_response(),
        Err(e) => data_error(e),
    }
}

fn to_json<T: serde::Serialize>(value: T) -> Result<serde_json::Value, DataError> {
    serde_json::to_value(value).map_err(|e| DataError::Failed(e.to_string()))
}

/// `GET /api/session`: what a client needs to post actions.
pub async fn session(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({
        "csrf": state.policy.csrf(),
        "token_required": state.policy.token_required(),
        "actions_enabled": state.policy.actions_enabled() && state.actions.is_some(),
        "exposed": state.policy.exposed(),
    }))
    .into_response()
}

/// `GET /api/overview`.
pub async fn overview(State(state): State<Arc<AppState>>) -> Response {
    respond(
        async {
            let r = Reader::open(&state.config.warehouse).await?;
            let runs = r.recent_runs(10).await?;
            let checks = r.latest_checks().await?;
            let freshness = r.freshness(state.today()).await?;
            let attention: Vec<_> = checks.iter().filter(|c| crate::data::status_rank(&c.status) < 2).collect();
            Ok(json!({
                "runs": to_json(&runs)?,
                "checks_needing_attention": to_json(&attention)?,
                "checks_total": checks.len(),
                "freshness": to_json(&freshness)?,
                "running_action": to_json(state.actions.as_ref().and_then(|a| a.running()))?,
            }))
        }
        .await,
    )
}

#[derive(Debug, Deserialize)]
pub struct Limit {
    limit: Option<usize>,
}

/// `GET /api/runs?limit=`.
pub async fn runs(State(state): State<Arc<AppState>>, Query(q): Query<Limit>) -> Response {
    respond(
        async {
            let r = Reader::open(&state.config.warehouse).await?;
            to_json(r.recent_runs(q.limit.unwrap_or(50).clamp(1, 1000)).await?)
        }
        .await,
    )
}

/// `GET /api/runs/{id}`: the run and its tasks.
pub async fn run_detail(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let result = async { Reader::open(&state.config.warehouse).await?.run(&id).await }.await;
    match result {
        Ok(Some((run, tasks))) => Json(json!({ "run": run, "tasks": tasks })).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no run {id}")),
        Err(e) => data_error(e),
    }
}

/// `GET /api/checks?status=&kind=&limit=`: the latest result per check, and the filtered history.
pub async fn checks(State(state): State<Arc<AppState>>, Query(filter): Query<CheckFilter>) -> Response {
    respond(
        async {
            let r = Reader::open(&state.config.warehouse).await?;
            Ok(json!({ "latest": to_json(r.latest_checks().await?)?, "history": to_json(r.check_history(&filter).await?)? }))
        }
        .await,
    )
}

/// `GET /api/freshness`.
pub async fn freshness(State(state): State<Arc<AppState>>) -> Response {
    respond(async { to_json(Reader::open(&state.config.warehouse).await?.freshness(state.today()).await?) }.await)
}

/// `GET /api/kpis?from=&to=&sort=&dir=`: chart series, totals and campaigns.
pub async fn kpis(State(state): State<Arc<AppState>>, Query(q): Query<KpiQuery>) -> Response {
    respond(
        async {
            let r = Reader::open(&state.config.warehouse).await?;
            let Kpis { range, days, totals, campaigns } = kpi_data(&state, &r, &q).await?;
            Ok(json!({
                "from": range.from,
                "to": range.to,
                "sort": range.sort,
                "charts": chart_data(&days),
                "platform_days": to_json(&days)?,
                "totals": to_json(&totals)?,
                "campaigns": to_json(&campaigns)?,
            }))
        }
        .await,
    )
}

/// `GET /api/lineage`: nodes (models, seeds, sources) with their dependencies and docs links.
pub async fn lineage(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({ "nodes": state.config.catalog.lineage })).into_response()
}

/// `GET /api/actions`.
pub async fn actions(State(state): State<Arc<AppState>>) -> Response {
    Json(json!({ "actions": state.actions.as_ref().map(|a| a.list()).unwrap_or_default() })).into_response()
}

/// `GET /api/actions/{id}`.
pub async fn action(State(state): State<Arc<AppState>>, Path(id): Path<u64>) -> Response {
    match state.actions.as_ref().and_then(|a| a.get(id)) {
        Some(a) => Json(a).into_response(),
        None => error(StatusCode::NOT_FOUND, &format!("no action {id}")),
    }
}

fn start(state: &AppState, headers: &HeaderMap, request: Result<ActionRequest, String>) -> Response {
    match state.start_action(headers, Offered::default(), request) {
        Ok(id) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "status": format!("/api/actions/{id}"), "page": format!("/actions/{id}") })),
        )
            .into_response(),
        Err((status, message)) => error(status, &message),
    }
}

fn body_json<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, String> {
    let text = if body.is_empty() { "{}".as_bytes() } else { body.as_ref() };
    serde_json::from_slice(text).map_err(|e| format!("the request body is not the expected JSON: {e}"))
}

/// `POST /api/actions/pipeline`.
pub async fn post_pipeline(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    start(&state, &headers, Ok(ActionRequest::Pipeline))
}

#[derive(Debug, Deserialize)]
struct BackfillBody {
    from: Option<String>,
    to: Option<String>,
    #[serde(default)]
    sources: Vec<String>,
}

/// `POST /api/actions/backfill` with `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD", "sources": [..]}`.
pub async fn post_backfill(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = body_json::<BackfillBody>(&body)
        .and_then(|b| backfill_request(&state, b.from.as_deref(), b.to.as_deref(), b.sources));
    start(&state, &headers, request)
}

#[derive(Debug, Deserialize)]
struct RetryBody {
    task_id: Option<String>,
}

/// `POST /api/actions/retry` with `{"task_id": "..."}`.
pub async fn post_retry(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let request = body_json::<RetryBody>(&body).and_then(|b| retry_request(b.task_id.as_deref()));
    start(&state, &headers, request)
}
