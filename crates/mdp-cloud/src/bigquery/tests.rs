//! The API paths the local stand-in (bqemulator) never takes, against a scripted server: the
//! service-account token grant, a job still running (`jobComplete: false`), pages, Google's error
//! envelope and its 200-with-`errors` twin, a retried 503, and a resumable load whose job fails.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::{Decimal128Type, Int64Type};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::*;

const PEM: &str = include_str!("../../../mdp-sandbox/keys/service_account.pem");

#[derive(Default)]
struct Seen {
    grants: Mutex<Vec<std::collections::HashMap<String, String>>>,
    auth: Mutex<Vec<String>>,
    queries: Mutex<Vec<Value>>,
    polls: AtomicUsize,
    flaky: AtomicUsize,
    uploads: Mutex<Vec<(String, usize)>>,
}

type S = State<Arc<Seen>>;

async fn token(State(seen): S, body: String) -> Json<Value> {
    let form = reqwest::Url::parse(&format!("http://form/?{body}")).unwrap().query_pairs().into_owned().collect();
    seen.grants.lock().unwrap().push(form);
    Json(json!({"access_token": "ya29.test-token", "expires_in": 3599, "token_type": "Bearer"}))
}

fn page(rows: &[&str], token: Option<&str>) -> Value {
    let mut answer = json!({
        "kind": "bigquery#getQueryResultsResponse", "jobComplete": true,
        "jobReference": {"projectId": "p", "jobId": "job_1", "location": "EU"},
        "schema": {"fields": [{"name": "n", "type": "INTEGER"}, {"name": "spend", "type": "NUMERIC"}]},
        "rows": rows.iter().map(|n| json!({"f": [{"v": n}, {"v": format!("{n}.000000001")}]})).collect::<Vec<_>>(),
        "totalRows": "5",
    });
    if let Some(t) = token {
        answer["pageToken"] = t.into();
    }
    answer
}

async fn queries(State(seen): S, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    seen.auth.lock().unwrap().push(auth);
    seen.queries.lock().unwrap().push(body.clone());
    match body["query"].as_str().unwrap_or_default() {
        "slow" => Json(json!({"jobComplete": false, "jobReference": {"projectId": "p", "jobId": "job_1", "location": "EU"}}))
            .into_response(),
        "SELEC 1" => Json(json!({"jobComplete": true, "jobReference": {"jobId": "j"},
            "errors": [{"reason": "invalidQuery", "message": "Syntax error: Unexpected identifier \"SELEC\" at [1:1]", "location": "query"}]}))
        .into_response(),
        "missing" => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": 404, "message": "Not found: Table p:raw.nope", "status": "NOT_FOUND",
                "errors": [{"message": "Not found: Table p:raw.nope", "domain": "global", "reason": "notFound"}]}})),
        )
            .into_response(),
        "denied" => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": {"code": 403, "message": "Access Denied: Project p: User does not have bigquery.jobs.create permission",
                "errors": [{"reason": "accessDenied", "message": "Access Denied"}]}})),
        )
            .into_response(),
        "flaky" if seen.flaky.fetch_add(1, Ordering::SeqCst) == 0 => {
            (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error").into_response()
        }
        "flaky" => Json(json!({"jobComplete": true, "jobReference": {"jobId": "j"}, "numDmlAffectedRows": "3",
            "schema": {"fields": []}}))
        .into_response(),
        other => (StatusCode::BAD_REQUEST, format!("unscripted query {other}")).into_response(),
    }
}

async fn results(
    State(seen): S,
    Path((_, job)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
) -> Json<Value> {
    assert_eq!(job, "job_1");
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    assert_eq!(get("location").as_deref(), Some("EU"), "the job's location is sent back");
    assert_eq!(get("formatOptions.useInt64Timestamp").as_deref(), Some("true"));
    match get("pageToken").as_deref() {
        None if seen.polls.fetch_add(1, Ordering::SeqCst) == 0 => {
            Json(json!({"jobComplete": false, "jobReference": {"projectId": "p", "jobId": "job_1", "location": "EU"}}))
        }
        None => Json(page(&["1", "2"], Some("t2"))),
        Some("t2") => Json(page(&["3", "4"], Some("t3"))),
        Some("t3") => Json(page(&["5"], None)),
        Some(other) => panic!("unknown page token {other}"),
    }
}

async fn upload_start(headers: HeaderMap, Json(job): Json<Value>) -> Response {
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let table = job.pointer("/configuration/load/destinationTable/tableId").and_then(Value::as_str).unwrap_or_default();
    assert_eq!(job.pointer("/configuration/load/sourceFormat"), Some(&json!("NEWLINE_DELIMITED_JSON")));
    ([("Location", format!("http://{host}/upload-session/{table}"))], "").into_response()
}

async fn upload_put(
    State(seen): S,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let range = headers.get("content-range").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    seen.uploads.lock().unwrap().push((range.clone(), body.len()));
    if range.ends_with("/*") {
        return (StatusCode::PERMANENT_REDIRECT, "").into_response();
    }
    let lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    let status = if table == "bad" {
        json!({"state": "DONE", "errorResult": {"reason": "invalid", "message": "Error while reading data, error message: JSON parsing error in row starting at position 0: Could not convert value to integer.", "location": "gs://x"}})
    } else {
        json!({"state": "DONE"})
    };
    Json(json!({"jobReference": {"projectId": "p", "jobId": "mdp_load_x"}, "status": status,
        "statistics": {"load": {"outputRows": lines.to_string()}}}))
    .into_response()
}

async fn serve(seen: Arc<Seen>) -> String {
    let app = Router::new()
        .route("/token", post(token))
        .route("/bigquery/v2/projects/p/queries", post(queries))
        .route("/bigquery/v2/projects/{project}/queries/{job}", get(results))
        .route("/upload/bigquery/v2/projects/p/jobs", post(upload_start))
        .route("/upload-session/{table}", axum::routing::put(upload_put))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn client(base: &str, auth: BigQueryAuth) -> BigQuery {
    let mut config = BigQueryConfig::new("p", "raw", auth);
    config.base_url = Some(base.to_string());
    config.location = Some("EU".into());
    BigQuery::new(config).unwrap()
}

fn key_file(token_uri: &str) -> String {
    json!({"type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": PEM,
        "client_email": "loader@p.iam.gserviceaccount.com", "token_uri": token_uri})
    .to_string()
}

#[tokio::test]
async fn a_service_account_key_buys_a_token_that_every_request_carries() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let bq = client(&base, BigQueryAuth::Credentials(key_file(&format!("{base}/token"))));
    assert_eq!(bq.principal(), "service account loader@p.iam.gserviceaccount.com");
    bq.query("flaky").await.unwrap();
    bq.query("flaky").await.unwrap();
    let grants = seen.grants.lock().unwrap().clone();
    assert_eq!(grants.len(), 1, "the token is cached");
    assert_eq!(grants[0]["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer");
    let claims = grants[0]["assertion"].split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    assert_eq!(claims["scope"], auth::SCOPE);
    assert_eq!(claims["aud"], format!("{base}/token"));
    assert!(seen.auth.lock().unwrap().iter().all(|h| h == "Bearer ya29.test-token"));
    assert!(!format!("{bq:?}").contains("PRIVATE"), "Debug shows no key");
}

#[tokio::test]
async fn a_running_job_is_polled_and_its_pages_are_read_exactly() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let bq = client(&base, BigQueryAuth::None);
    let batches = bq.query("slow").await.unwrap().collect().await.unwrap();
    let n: Vec<i64> = batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    assert_eq!(n, [1, 2, 3, 4, 5], "every page, in order");
    let spend = batches[2].column(1).as_primitive::<Decimal128Type>();
    assert_eq!(spend.value(0), 5_000_000_001, "NUMERIC read exactly");
    assert_eq!(seen.polls.load(Ordering::SeqCst), 2, "polled until jobComplete");
    let sent = seen.queries.lock().unwrap()[0].clone();
    assert_eq!(sent["useLegacySql"], false);
    assert_eq!(sent["formatOptions"]["useInt64Timestamp"], true);
    assert_eq!(sent["location"], "EU");
    assert!(sent["requestId"].as_str().is_some_and(|id| id.len() == 36), "a request id makes retries safe");
}

#[tokio::test]
async fn errors_are_classified_by_who_must_act() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let bq = client(&base, BigQueryAuth::AccessToken("given".into()));
    match bq.query("SELEC 1").await.unwrap_err() {
        CloudError::Sql { code, message, .. } => {
            assert_eq!(code, "invalidQuery");
            assert!(message.contains("Unexpected identifier"), "{message}");
        }
        other => panic!("a 200 answer with errors is a statement error, got {other:?}"),
    }
    match bq.query("missing").await.unwrap_err() {
        CloudError::Sql { code, message, .. } => assert!(code == "notFound" && message.contains("raw.nope")),
        other => panic!("404 is a statement error, got {other:?}"),
    }
    let denied = bq.query("denied").await.unwrap_err();
    assert!(matches!(&denied, CloudError::Auth(m) if m.contains("bigquery.jobs.create")), "{denied:?}");
    let flaky = bq.query("flaky").await.unwrap();
    assert_eq!(flaky.rows_affected(), Some(3), "a 503 is retried");
    let requests = seen.queries.lock().unwrap().clone();
    let flaky: Vec<&Value> = requests.iter().filter(|q| q["query"] == "flaky").collect();
    assert_eq!(flaky.len(), 2);
    assert_eq!(flaky[0]["requestId"], flaky[1]["requestId"], "the retry reuses its request id");
    assert!(seen.auth.lock().unwrap().iter().all(|h| h == "Bearer given"));
}

#[tokio::test]
async fn a_resumable_load_sends_its_rows_and_reports_the_jobs_error() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let bq = client(&base, BigQueryAuth::None);
    let fields = vec![FieldSchema { name: "n".into(), field_type: "INT64".into(), mode: None, fields: vec![] }];
    let mut load = bq.load(&TableId::new("raw", "ok"), &fields, WriteDisposition::Truncate).await.unwrap();
    for n in 0..3 {
        load.push_row(format!("{{\"n\":{n}}}").as_bytes()).await.unwrap();
    }
    assert_eq!(load.finish().await.unwrap(), 3);
    assert_eq!(seen.uploads.lock().unwrap().clone(), [("bytes 0-23/24".to_string(), 24)]);
    let mut load = bq.load(&TableId::new("raw", "bad"), &fields, WriteDisposition::Append).await.unwrap();
    load.push_row(b"{\"n\":\"x\"}").await.unwrap();
    match load.finish().await.unwrap_err() {
        CloudError::Sql { code, message, .. } => {
            assert_eq!(code, "invalid");
            assert!(message.contains("Could not convert value to integer"), "{message}");
        }
        other => panic!("a failed load job is the load's error, got {other:?}"),
    }
}
