//! The protocol paths the local stand-in (fakesnow) never takes, against a scripted server: key-pair
//! tokens, a query still running (333333 → getResultUrl), results split into chunks (JSON, gzipped
//! Arrow), and the error shapes of a refused sign-in and an expired session.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::{Decimal128Type, Int64Type};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

use super::*;

const PEM: &str = include_str!("../../../mdp-sandbox/keys/service_account.pem");

#[derive(Default)]
struct Seen {
    logins: Mutex<Vec<Value>>,
    polls: AtomicUsize,
    auth_headers: Mutex<Vec<String>>,
}

/// An Arrow IPC stream of one Int64 column `N` with `values`, as Snowflake's chunks carry them.
fn arrow_ints(values: &[i64]) -> Vec<u8> {
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![Field::new("N", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap();
    let mut out = Vec::new();
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(&mut out, &schema).unwrap();
    writer.write(&batch).unwrap();
    writer.finish().unwrap();
    drop(writer);
    out
}

async fn serve(seen: Arc<Seen>) -> String {
    async fn login(State(seen): State<Arc<Seen>>, Json(body): Json<Value>) -> Json<Value> {
        let n = {
            let mut logins = seen.logins.lock().unwrap();
            logins.push(body["data"].clone());
            logins.len()
        };
        if body["data"]["PASSWORD"] == "wrong" {
            return Json(
                json!({"success": false, "code": "390100", "message": "Incorrect username or password was specified.", "data": null}),
            );
        }
        Json(json!({"success": true, "data": {"token": format!("session-token-{n}")}}))
    }
    async fn query(
        State(seen): State<Arc<Seen>>,
        headers: HeaderMap,
        Json(body): Json<Value>,
    ) -> (StatusCode, Json<Value>) {
        let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        seen.auth_headers.lock().unwrap().push(auth.clone());
        let sql = body["sqlText"].as_str().unwrap_or_default();
        let port = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        match sql {
            "select 1" if auth == "Snowflake Token=\"session-token-1\"" => (
                StatusCode::OK,
                Json(
                    json!({"success": false, "code": "390112", "message": "Your session has expired. Please login again.", "data": null}),
                ),
            ),
            "select 1" => (
                StatusCode::OK,
                Json(
                    json!({"success": true, "data": {"rowtype": [{"name": "ONE", "type": "fixed", "scale": 0, "precision": 1}],
                            "queryResultFormat": "json", "rowset": [["1"]]}}),
                ),
            ),
            "slow" => (
                StatusCode::OK,
                Json(json!({"success": false, "code": "333333", "message": "Query execution in progress",
                            "data": {"getResultUrl": "/queries/q-slow/result"}})),
            ),
            "big" => (
                StatusCode::OK,
                Json(json!({"success": true, "data": {
                    "rowtype": [{"name": "N", "type": "fixed", "scale": 0, "precision": 18}],
                    "queryResultFormat": "arrow",
                    "rowsetBase64": base64::engine::general_purpose::STANDARD.encode(arrow_ints(&[1, 2])),
                    "chunks": [{"url": format!("http://{port}/chunks/1"), "rowCount": 3}],
                    "chunkHeaders": {"x-test-chunk-key": "k1"},
                }})),
            ),
            "money" => (
                StatusCode::OK,
                Json(json!({"success": true, "data": {
                    "rowtype": [{"name": "SPEND", "type": "fixed", "scale": 9, "precision": 38}],
                    "queryResultFormat": "json",
                    "rowset": [["0.000000001"]],
                    "chunks": [{"url": format!("http://{port}/chunks/json"), "rowCount": 2}],
                    "qrmk": "customer-key",
                }})),
            ),
            "expired" => (
                StatusCode::OK,
                Json(
                    json!({"success": false, "code": "390112", "message": "Your session has expired. Please login again.", "data": null}),
                ),
            ),
            _ => (
                StatusCode::OK,
                Json(
                    json!({"success": false, "code": "001003", "message": "SQL compilation error: syntax error line 1 at position 0 unexpected 'selec'.",
                            "data": {"sqlState": "42000", "errorCode": "001003"}}),
                ),
            ),
        }
    }
    async fn result(State(seen): State<Arc<Seen>>) -> Json<Value> {
        if seen.polls.fetch_add(1, Ordering::SeqCst) < 2 {
            return Json(
                json!({"success": false, "code": "333333", "data": {"getResultUrl": "/queries/q-slow/result"}}),
            );
        }
        Json(
            json!({"success": true, "data": {"rowtype": [{"name": "DONE", "type": "text"}], "queryResultFormat": "json", "rowset": [["yes"]]}}),
        )
    }
    async fn chunk(headers: HeaderMap) -> (StatusCode, Vec<u8>) {
        if headers.get("x-test-chunk-key").and_then(|v| v.to_str().ok()) != Some("k1") {
            return (StatusCode::FORBIDDEN, Vec::new());
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&arrow_ints(&[3, 4, 5])).unwrap();
        (StatusCode::OK, gz.finish().unwrap())
    }
    async fn json_chunk(headers: HeaderMap) -> (StatusCode, String) {
        if headers.get("x-amz-server-side-encryption-customer-key").and_then(|v| v.to_str().ok())
            != Some("customer-key")
        {
            return (StatusCode::FORBIDDEN, String::new());
        }
        (StatusCode::OK, r#"["12.5"],[null]"#.to_string())
    }
    async fn close(Query(q): Query<std::collections::HashMap<String, String>>) -> Json<Value> {
        Json(json!({"success": q.contains_key("delete"), "data": null}))
    }
    let app = Router::new()
        .route("/session/v1/login-request", post(login))
        .route("/queries/v1/query-request", post(query))
        .route("/queries/q-slow/result", get(result))
        .route("/chunks/1", get(chunk))
        .route("/chunks/json", get(json_chunk))
        .route("/session", post(close))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

fn config(base_url: String, auth: SnowflakeAuth) -> SnowflakeConfig {
    SnowflakeConfig {
        account: "xy12345.eu-west-1".into(),
        user: "mdp_loader".into(),
        auth,
        database: "ANALYTICS".into(),
        schema: Some("RAW".into()),
        warehouse: Some("LOAD_WH".into()),
        role: None,
        base_url: Some(base_url),
    }
}

#[tokio::test]
async fn key_pair_sign_in_sends_a_jwt_naming_account_user_and_key_fingerprint() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let account = Snowflake::new(config(base, SnowflakeAuth::KeyPair(PEM.into()))).unwrap();
    let session = account.login().await.unwrap();
    let login = seen.logins.lock().unwrap()[0].clone();
    assert_eq!(login["AUTHENTICATOR"], "SNOWFLAKE_JWT");
    assert_eq!(login["ACCOUNT_NAME"], "XY12345", "a locator's region is not part of the account name");
    assert!(login.get("PASSWORD").is_none());
    let token = login["TOKEN"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "XY12345.MDP_LOADER");
    assert_eq!(claims["iss"], "XY12345.MDP_LOADER.SHA256:5mEn7hwx33VYndRlKb718RXKRzDieGMlKK/T0yMelWc=");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert!(lifetime > 0 && lifetime <= 3600, "Snowflake refuses tokens valid for more than an hour");
    assert!(!format!("{session:?}").contains("session-token-1"), "Debug never shows the token");
    session.close().await.unwrap();
}

#[tokio::test]
async fn a_running_query_is_polled_until_its_result_is_ready() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let session = Snowflake::new(config(base, SnowflakeAuth::Password("pw".into()))).unwrap().login().await.unwrap();
    let batches = session.execute("slow").await.unwrap().collect().await.unwrap();
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "yes");
    assert_eq!(seen.polls.load(Ordering::SeqCst), 3, "asked until it was done");
    assert!(seen.auth_headers.lock().unwrap().iter().all(|h| h == "Snowflake Token=\"session-token-1\""));
}

#[tokio::test]
async fn chunked_results_are_fetched_with_their_headers_and_read_in_order() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let session = Snowflake::new(config(base, SnowflakeAuth::Password("pw".into()))).unwrap().login().await.unwrap();
    let batches = session.execute("big").await.unwrap().collect().await.unwrap();
    let values: Vec<i64> =
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
    assert_eq!(values, [1, 2, 3, 4, 5], "the inline rows, then the gzipped Arrow chunk");
    let money = session.execute("money").await.unwrap().collect().await.unwrap();
    let spend: Vec<Option<i128>> =
        money.iter().flat_map(|b| b.column(0).as_primitive::<Decimal128Type>().iter().collect::<Vec<_>>()).collect();
    assert_eq!(spend, [Some(1), Some(12_500_000_000), None], "JSON chunks (encrypted with qrmk) read exactly");
}

#[tokio::test]
async fn refusals_say_who_must_act() {
    let seen = Arc::new(Seen::default());
    let base = serve(seen.clone()).await;
    let wrong = Snowflake::new(config(base.clone(), SnowflakeAuth::Password("wrong".into()))).unwrap();
    let error = wrong.login().await.unwrap_err();
    assert!(matches!(error, CloudError::Auth(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("refused to sign in user mdp_loader") && text.contains("390100"), "{text}");
    assert!(!text.contains("wrong"), "the password is never in a message: {text}");

    let session = Snowflake::new(config(base, SnowflakeAuth::Password("pw".into()))).unwrap().login().await.unwrap();
    match session.execute("selec 1").await.unwrap_err() {
        CloudError::Sql { code, sql_state, message } => {
            assert_eq!((code.as_str(), sql_state.as_deref()), ("001003", Some("42000")));
            assert!(message.contains("syntax error"));
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    let expired = session.execute("expired").await.unwrap_err();
    assert!(matches!(expired, CloudError::Auth(_)) && expired.to_string().contains("sign in again"), "{expired}");
}

#[test]
fn settings_that_cannot_work_are_refused_before_any_request() {
    let bad_key = config("http://127.0.0.1:1".into(), SnowflakeAuth::KeyPair("not a key".into()));
    assert!(Snowflake::new(bad_key).unwrap_err().to_string().contains("the Snowflake private key is not a PEM block"));
    let bad_url = config("not a url".into(), SnowflakeAuth::Password("pw".into()));
    assert!(Snowflake::new(bad_url).unwrap_err().to_string().contains("is not a URL"));
    let mut default_host = config(String::new(), SnowflakeAuth::Password("pw".into()));
    default_host.base_url = None;
    default_host.account = "MyOrg-MyAccount".into();
    assert_eq!(Snowflake::new(default_host).unwrap().base_url(), "https://myorg-myaccount.snowflakecomputing.com/");
}

#[tokio::test]
async fn an_expired_session_signs_in_again_only_where_no_transaction_is_lost() {
    // A transaction's session: its expiry is an error (the transaction is gone with it).
    let seen = Arc::new(Seen::default());
    let account = Snowflake::new(config(serve(seen.clone()).await, SnowflakeAuth::Password("pw".into()))).unwrap();
    let error = account.login().await.unwrap().execute("select 1").await.unwrap_err();
    assert!(matches!(error, CloudError::Auth(_)) && error.to_string().contains("390112"), "{error}");
    assert_eq!(seen.logins.lock().unwrap().len(), 1, "no second sign-in");

    // The warehouse's own session signs in again and reruns the statement.
    let seen = Arc::new(Seen::default());
    let account = Snowflake::new(config(serve(seen.clone()).await, SnowflakeAuth::Password("pw".into()))).unwrap();
    let session = account.login().await.unwrap().renewing();
    let batches = session.execute("select 1").await.unwrap().collect().await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<Int64Type>().value(0), 1);
    assert_eq!(seen.logins.lock().unwrap().len(), 2, "signed in once more");
    let headers = seen.auth_headers.lock().unwrap().clone();
    assert_eq!(headers, ["Snowflake Token=\"session-token-1\"", "Snowflake Token=\"session-token-2\""]);
}
