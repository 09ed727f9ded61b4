//! "Add a platform in an afternoon", tested: the README's connector spec for a platform the binary does
//! not know (Acme Ads), served by a tiny local server written here from that API's description, is
//! ingested with `mdp ingest` and built into the marts with `mdp build`, without recompiling; the
//! marts equal what the server served, to the cent. `mdp connector test` prints the requests and the
//! records; a spec mistake is reported at its line.

mod common;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{Datelike, NaiveDate};
use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const KEY: &str = "acme-key-7d1f0c";
const ACCOUNT: &str = "1001";
const START: &str = "2026-06-01";
const ADS: usize = 60;

/// The README's walkthrough spec, as written there.
fn readme_spec() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme.find("<!-- walkthrough: connectors/acme_ads.yml -->").expect("the README has the walkthrough");
    let block = &readme[start..];
    let body = &block[block.find("```yaml\n").unwrap() + 8..];
    body[..body.find("```").unwrap()].to_string()
}

/// Ad `n`: (id, name, ad group id, campaign id). Three campaigns, one ad group each.
fn ad(n: usize) -> (String, String, String, String) {
    let campaign = n % 3;
    (format!("a{n}"), format!("Ad {n}"), format!("g{campaign}"), format!("c{campaign}"))
}

/// One ad-day as Acme reports it: (impressions, link clicks, other clicks, spend micros, purchases, value cents).
fn metrics(n: usize, day: NaiveDate) -> (i64, i64, i64, i64, i64, i64) {
    let h = (n as i64 * 7919 + i64::from(day.ordinal()) * 104_729) % 1_000_003;
    let purchases = h % 4;
    (100 + h % 900, h % 17, h % 5, 1_234_567 * (1 + h % 7), purchases, purchases * 2599)
}

#[derive(Default)]
struct Seen {
    attribution: Vec<String>,
    requests: usize,
}

type Shared = Arc<Mutex<Seen>>;

fn authorized(headers: &HeaderMap) -> Result<(), (StatusCode, Json<Value>)> {
    if headers.get("x-api-key").and_then(|v| v.to_str().ok()) == Some(KEY) {
        Ok(())
    } else {
        Err((StatusCode::UNAUTHORIZED, Json(json!({"error": {"code": "BAD_KEY", "message": "invalid API key"}}))))
    }
}

fn no_access(id: &str) -> Option<Json<Value>> {
    (id != ACCOUNT)
        .then(|| Json(json!({"error": {"code": "NO_ACCESS", "message": format!("this key cannot read account {id}")}})))
}

type Answer = Result<Json<Value>, (StatusCode, Json<Value>)>;

async fn account(State(seen): State<Shared>, headers: HeaderMap, UrlPath(id): UrlPath<String>) -> Answer {
    seen.lock().unwrap().requests += 1;
    authorized(&headers)?;
    if let Some(error) = no_access(&id) {
        return Ok(error);
    }
    Ok(Json(
        json!({"account": {"id": id, "name": "Acme Shop", "currency": "USD", "time_zone": "Europe/Berlin", "status": "ACTIVE"}}),
    ))
}

async fn campaigns(
    State(seen): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Answer {
    seen.lock().unwrap().requests += 1;
    authorized(&headers)?;
    assert_eq!(query.get("page_size").map(String::as_str), Some("2"));
    let all: Vec<Value> =
        (0..3).map(|c| json!({"id": format!("c{c}"), "name": format!("Campaign {c}"), "state": "ACTIVE"})).collect();
    Ok(Json(match (no_access(&id), query.get("page_token").map(String::as_str)) {
        (Some(error), _) => error.0,
        (None, None) => json!({"campaigns": all[..2], "next_page_token": "p2"}),
        (None, Some("p2")) => json!({"campaigns": all[2..], "next_page_token": null}),
        (None, Some(other)) => panic!("unknown page token {other}"),
    }))
}

async fn ad_groups(State(seen): State<Shared>, headers: HeaderMap, UrlPath(_id): UrlPath<String>) -> Answer {
    seen.lock().unwrap().requests += 1;
    authorized(&headers)?;
    let groups: Vec<Value> = (0..3)
        .map(|c| json!({"id": format!("g{c}"), "name": format!("Group {c}"), "state": "PAUSED", "campaign_id": format!("c{c}")}))
        .collect();
    Ok(Json(json!({"data": groups})))
}

async fn ads(State(seen): State<Shared>, headers: HeaderMap, UrlPath(_id): UrlPath<String>) -> Answer {
    seen.lock().unwrap().requests += 1;
    authorized(&headers)?;
    let ads: Vec<Value> = (0..ADS)
        .map(|n| {
            let (id, name, group, campaign) = ad(n);
            json!({"id": id, "name": name, "state": "ACTIVE", "ad_group_id": group, "campaign_id": campaign})
        })
        .collect();
    Ok(Json(json!({"data": ads})))
}

async fn report(
    State(seen): State<Shared>,
    headers: HeaderMap,
    UrlPath(_id): UrlPath<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Answer {
    authorized(&headers)?;
    {
        let mut seen = seen.lock().unwrap();
        seen.requests += 1;
        seen.attribution.push(body["attribution"].as_str().unwrap_or_default().to_string());
    }
    let day = |key: &str| NaiveDate::from_str(body[key].as_str().expect("a date")).expect("YYYY-MM-DD");
    let (start, end) = (day("start_date"), day("end_date"));
    assert!((end - start).num_days() < 14, "windows are at most 14 days");
    let page: usize = query["page"].parse().unwrap();
    let size: usize = query["page_size"].parse().unwrap();
    let rows: Vec<Value> = (0..ADS)
        .skip((page - 1) * size)
        .take(size)
        .map(|n| {
            let (id, _, group, campaign) = ad(n);
            let days: Vec<Value> = start
                .iter_days()
                .take_while(|d| *d <= end)
                .map(|d| {
                    let (impressions, link, other, spend, purchases, value) = metrics(n, d);
                    json!({
                        "date": d.to_string(), "impressions": impressions, "link_clicks": link, "other_clicks": other,
                        "spend_micros": spend.to_string(), "purchase_value_cents": value,
                        "actions": [{"type": "lead", "count": 1}, {"type": "purchase", "count": purchases.to_string()}],
                    })
                })
                .collect();
            json!({"ad_id": id, "ad_group_id": group, "campaign_id": campaign, "days": days})
        })
        .collect();
    Ok(Json(json!({"rows": rows})))
}

/// The Acme API on 127.0.0.1: (base URL, what it saw).
fn serve_acme() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v2/accounts/{id}", get(account))
        .route("/v2/accounts/{id}/campaigns", get(campaigns))
        .route("/v2/accounts/{id}/ad_groups", get(ad_groups))
        .route("/v2/accounts/{id}/ads", get(ads))
        .route("/v2/accounts/{id}/report", post(report))
        .with_state(seen.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (url, seen)
}

/// A new project with the README's spec in connectors/ and one Acme source.
fn acme_project(root: &Path, url: &str, accounts: &str) -> PathBuf {
    let dir = root.join("project");
    let out = mdp().args(["init"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::create_dir_all(dir.join("connectors")).unwrap();
    std::fs::write(dir.join("connectors/acme_ads.yml"), readme_spec()).unwrap();
    let file = dir.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    let head = &config[..config.find("sources:").unwrap()];
    let sources = format!(
        "sources:\n  - platform: acme_ads\n    accounts: [{accounts}]\n    base_url: {url}\n    start_date: {START}\n    \
         credentials:\n      api_key: {{ env: ACME_API_KEY }}\n    options:\n      attribution: 28d_click\n"
    );
    std::fs::write(&file, format!("{head}{sources}")).unwrap();
    dir
}

fn acme(project: &Path, args: &[&str]) -> std::process::Output {
    mdp().args(args).env("ACME_API_KEY", KEY).current_dir(project).output().unwrap()
}

fn dec(value: &Option<String>) -> Decimal {
    Decimal::from_str(value.as_deref().expect("a value")).unwrap().normalize()
}

#[test]
fn a_yaml_platform_is_ingested_and_built_into_the_marts_without_recompiling() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, seen) = serve_acme();
    let project = acme_project(tmp.path(), &url, "\"1001\"");

    let out = acme(&project, &["ingest"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = acme(&project, &["build"]);
    assert!(out.status.success(), "{}", text(&out));

    // The truth: every ad and day the server served, from the start date to today.
    let (start, today) = (NaiveDate::from_str(START).unwrap(), NaiveDate::from_str(TODAY).unwrap());
    let (mut impressions, mut clicks, mut spend_micros, mut purchases, mut cents, mut rows) = (0, 0, 0, 0, 0, 0);
    for n in 0..ADS {
        for day in start.iter_days().take_while(|d| *d <= today) {
            let m = metrics(n, day);
            impressions += m.0;
            clicks += m.1 + m.2;
            spend_micros += m.3;
            purchases += m.4;
            cents += m.5;
            rows += 1;
        }
    }
    let marts = query(
        &project,
        "SELECT count(*), sum(impressions), sum(clicks), sum(spend), sum(conversions), sum(conversion_value), \
         sum(spend_reporting), count(DISTINCT ad_name), min(account_name) \
         FROM main_marts.fct_ad_performance_daily WHERE platform = 'acme_ads'",
    );
    let m = &marts[0];
    assert_eq!(m[0].as_deref(), Some(rows.to_string().as_str()), "one row per ad and day");
    assert_eq!(m[1].as_deref(), Some(impressions.to_string().as_str()));
    assert_eq!(m[2].as_deref(), Some(clicks.to_string().as_str()), "clicks are link + other clicks");
    assert_eq!(dec(&m[3]), Decimal::new(spend_micros, 6), "spend in micros, divided exactly");
    assert_eq!(dec(&m[4]), Decimal::from(purchases), "conversions are the purchase actions only");
    assert_eq!(dec(&m[5]), Decimal::new(cents, 2), "value in cents, divided exactly");
    assert_eq!(dec(&m[6]), Decimal::new(spend_micros, 6), "USD account in a USD report: rate 1");
    assert_eq!(m[7].as_deref(), Some(ADS.to_string().as_str()), "every ad named from the ads stream");
    assert_eq!(m[8].as_deref(), Some("Acme Shop"));

    // The campaign mart too (from ad_daily summed), with campaign names from the paged campaigns stream.
    let campaigns = query(
        &project,
        "SELECT count(DISTINCT campaign_name), sum(spend) FROM main_marts.fct_campaign_performance_daily WHERE platform = 'acme_ads'",
    );
    assert_eq!(campaigns[0][0].as_deref(), Some("3"));
    assert_eq!(dec(&campaigns[0][1]), Decimal::new(spend_micros, 6));

    // Raw rows say which conversion definition counted them (the source's option), and keep the API's record
    // with the ad's fields next to the day's.
    let raw = query(
        &project,
        "SELECT DISTINCT _mdp_conversion_definition, json_extract_string(_mdp_payload, '$.ad_group_id') IS NOT NULL, \
         json_extract_string(_mdp_payload, '$.days') IS NULL FROM raw.acme_ads__ad_daily",
    );
    assert_eq!(
        raw,
        vec![vec![
            Some("purchases / purchase_value_cents (28d_click)".into()),
            Some("true".into()),
            Some("true".into())
        ]]
    );
    assert!(seen.lock().unwrap().attribution.iter().all(|a| a == "28d_click"), "the option reached the request body");

    // Idempotent: a second ingest re-reads the look-back and changes no total.
    let out = acme(&project, &["ingest"]);
    assert!(out.status.success(), "{}", text(&out));
    let again = query(&project, "SELECT count(*), sum(spend) FROM raw.acme_ads__ad_daily");
    assert_eq!(again[0][0].as_deref(), Some(rows.to_string().as_str()));
    assert_eq!(dec(&again[0][1]), Decimal::new(spend_micros, 6));

    // The key never reaches the warehouse.
    let hits = query(
        &project,
        &format!("SELECT count(*) FROM raw.acme_ads__ad_daily WHERE CAST(_mdp_payload AS VARCHAR) LIKE '%{KEY}%'"),
    );
    assert_eq!(hits[0][0].as_deref(), Some("0"));
}

#[test]
fn connector_test_prints_requests_and_records_and_errors_point_at_the_spec() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _seen) = serve_acme();
    let project = acme_project(tmp.path(), &url, "\"1001\", \"2002\"");

    let out = acme(&project, &["connector", "test", "acme_ads", "--from", "2026-06-28", "--to", "2026-06-29"]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("→ GET /v2/accounts/1001/campaigns?page_size=2"), "{log}");
    assert!(
        log.contains("→ GET /v2/accounts/1001/campaigns?page_size=2&page_token=p2"),
        "the cursor is followed:\n{log}"
    );
    assert!(log.contains("→ POST /v2/accounts/1001/report?page=2&page_size=50"), "pages are followed:\n{log}");
    assert!(
        log.contains(
            r#"body: {"level": "AD", "start_date": "2026-06-28", "end_date": "2026-06-29", "attribution": "28d_click"}"#
        ),
        "{log}"
    );
    assert!(log.contains("← 200"), "{log}");
    assert!(log.contains("3 record(s)") && log.contains(&format!("{} record(s)", ADS * 2)), "{log}");
    let (_, _, _, spend, _, _) = metrics(0, NaiveDate::from_ymd_opt(2026, 6, 28).unwrap());
    assert!(
        log.contains("2026-06-28 ad a0 (campaign c0, ad group g0)")
            && log.contains(&Decimal::new(spend, 6).normalize().to_string()),
        "{log}"
    );
    assert!(!log.contains(KEY), "the key is never printed");

    // The other account: the API's own error envelope (HTTP 200 + error), matched by the spec's rule.
    let out = acme(&project, &["connector", "test", "acme_ads", "--account", "2002"]);
    let log = text(&out);
    assert!(!out.status.success());
    assert!(log.contains("NO_ACCESS") && log.contains("this key cannot read account 2002"), "{log}");

    // A mapping that cannot read the answer: the error names the spec's line.
    let spec = readme_spec().replace("impressions: impressions", "impressions: actions");
    std::fs::write(project.join("connectors/acme_ads.yml"), &spec).unwrap();
    let out = acme(&project, &["connector", "test", "acme_ads", "--from", "2026-06-28", "--to", "2026-06-28"]);
    let log = text(&out);
    let line = spec.lines().position(|l| l.contains("impressions: actions")).unwrap() + 1;
    assert!(!out.status.success());
    assert!(log.contains("impressions (from `actions`, mapped at ") && log.contains("not a number"), "{log}");
    assert!(log.contains(&format!("connectors/acme_ads.yml:{line})")), "{log}");

    // A mistake in the spec stops every command at load, at its line.
    let spec = readme_spec().replace("    records: rows\n", "    recods: rows\n");
    std::fs::write(project.join("connectors/acme_ads.yml"), &spec).unwrap();
    let out = acme(&project, &["ingest"]);
    let log = text(&out);
    let line_bad = spec.lines().position(|l| l.contains("recods: rows")).unwrap() + 1;
    assert!(!out.status.success());
    assert!(log.contains(&format!("acme_ads.yml:{line_bad}:")) && log.contains("unknown field `recods`"), "{log}");
}

/// A built-in spec's platform from `mdp init` to the marts against the sandbox's imitation: the raw rows
/// equal the truth, `mdp build` passes every test (reconciliation included), and every row and ad has its
/// named campaign and ad group, also where the report names only the ad.
fn a_built_in_spec_reconciles_with_the_sandbox_through_the_marts(platform: &str, more_credentials: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let dir = tmp.path().join("project");
    let out = mdp().args(["init"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let file = dir.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    let head = &config[..config.find("sources:").unwrap()];
    let sources = format!(
        "sources:\n  - platform: {platform}\n    accounts: [{}]\n    base_url: {}\n    start_date: 2026-05-16\n    \
         credentials:\n      access_token: {{ env: PLATFORM_ACCESS_TOKEN }}\n{more_credentials}",
        account_ids(&sandbox, platform),
        sandbox.url
    );
    std::fs::write(&file, format!("{head}{sources}")).unwrap();
    // The sandbox's secret of a key or token `K` is `K-secret` (X's OAuth 1.0a signatures).
    let run = |args: &[&str]| {
        let secret = format!("{TOKEN}-secret");
        let mut command = mdp();
        command.args(args).env("PLATFORM_ACCESS_TOKEN", TOKEN).env("PLATFORM_SECRET", secret);
        command.current_dir(&dir).output().unwrap()
    };

    let out = run(&["ingest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_matches_truth(&dir, &sandbox, &[platform]);
    let out = run(&["build"]);
    assert!(out.status.success(), "the marts build and every test passes, reconciliation included:\n{}", text(&out));

    let raw = query(
        &dir,
        &format!(
            "SELECT CAST(sum(spend) AS VARCHAR), CAST(sum(conversion_value) AS VARCHAR) FROM raw.{platform}__ad_daily"
        ),
    );
    let marts = query(
        &dir,
        &format!(
            "SELECT CAST(sum(spend) AS VARCHAR), CAST(sum(conversion_value) AS VARCHAR), count(DISTINCT campaign_key) FILTER (WHERE campaign_name IS NOT NULL), \
             count(DISTINCT ad_group_key) FILTER (WHERE ad_group_name IS NOT NULL), count(*) FILTER (WHERE campaign_id IS NULL) \
             FROM main_marts.fct_ad_performance_daily WHERE platform = '{platform}'"
        ),
    );
    assert_eq!(
        (dec(&marts[0][0]), dec(&marts[0][1])),
        (dec(&raw[0][0]), dec(&raw[0][1])),
        "{platform}: the ad mart holds every raw row"
    );
    assert_eq!(marts[0][2].as_deref(), Some("6"), "{platform}: 3 named campaigns per account");
    assert_eq!(marts[0][3].as_deref(), Some("12"), "{platform}: 6 named ad groups per account");
    assert_eq!(
        marts[0][4].as_deref(),
        Some("0"),
        "{platform}: every report row has its campaign (its own, or its ad's)"
    );
    let campaigns = query(
        &dir,
        &format!("SELECT CAST(sum(spend) AS VARCHAR) FROM main_marts.fct_campaign_performance_daily WHERE platform = '{platform}'"),
    );
    assert_eq!(dec(&campaigns[0][0]), dec(&raw[0][0]));
    let ads = query(
        &dir,
        &format!("SELECT count(*), count(campaign_id) FROM main_marts.dim_ads WHERE platform = '{platform}'"),
    );
    assert_eq!(ads[0][0].as_deref(), Some("24"), "{platform}: 12 ads per account");
    assert_eq!(ads[0][1], ads[0][0], "{platform}: every ad knows its campaign");
}

#[test]
fn reddit_a_built_in_spec_reconciles_with_the_sandbox_through_the_marts() {
    a_built_in_spec_reconciles_with_the_sandbox_through_the_marts("reddit_ads", "");
}

/// Snapchat's stats nest days in ads, are bounded by local midnights (New York, Sydney), and name the ad
/// only; its ads name their ad squad only.
#[test]
fn snapchat_a_built_in_spec_reconciles_with_the_sandbox_through_the_marts() {
    a_built_in_spec_reconciles_with_the_sandbox_through_the_marts("snapchat_ads", "");
}

/// Pinterest's report is an asynchronous job whose JSON file keys rows by ad (`records: "*"`); its days
/// are UTC days.
#[test]
fn pinterest_a_built_in_spec_reconciles_with_the_sandbox_through_the_marts() {
    a_built_in_spec_reconciles_with_the_sandbox_through_the_marts("pinterest_ads", "");
}

/// Microsoft Advertising: three hosts served by the sandbox at the source's base_url, ad groups and ads
/// listed per parent, a zipped CSV report; its developer token is a second credential.
#[test]
fn microsoft_a_built_in_spec_reconciles_with_the_sandbox_through_the_marts() {
    a_built_in_spec_reconciles_with_the_sandbox_through_the_marts(
        "microsoft_ads",
        "      developer_token: { env: PLATFORM_ACCESS_TOKEN }\n",
    );
}

/// X: every request signed with OAuth 1.0a (four credentials), stats asked for 20 active promoted tweets
/// at a time, days bounded by midnights with the zone's offset of today, metrics as arrays by day.
#[test]
fn x_a_built_in_spec_reconciles_with_the_sandbox_through_the_marts() {
    a_built_in_spec_reconciles_with_the_sandbox_through_the_marts(
        "x_ads",
        "      consumer_key: { env: PLATFORM_ACCESS_TOKEN }\n      consumer_secret: { env: PLATFORM_SECRET }\n      \
         access_token_secret: { env: PLATFORM_SECRET }\n",
    );
}

/// A platform whose data lags (`lag_days: 2`): the windows end two days before the account's today, and
/// the cursor stops there, so the next run asks for those days once they exist.
#[test]
fn a_lagging_platform_is_read_up_to_its_latest_day() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = serve_acme();
    let project = acme_project(tmp.path(), &url, "\"1001\"");
    let spec = readme_spec().replace("lookback_days: 7\n", "lookback_days: 7\nlag_days: 2\n");
    assert!(spec.contains("lag_days: 2"));
    std::fs::write(project.join("connectors/acme_ads.yml"), spec).unwrap();
    let out = acme(&project, &["ingest"]);
    assert!(out.status.success(), "{}", text(&out));
    let latest =
        query(&project, "SELECT CAST(max(date) AS VARCHAR), CAST(min(date) AS VARCHAR) FROM raw.acme_ads__ad_daily");
    let today = NaiveDate::from_str(TODAY).unwrap();
    assert_eq!(latest[0][0].as_deref(), Some((today - chrono::Days::new(2)).to_string().as_str()));
    assert_eq!(latest[0][1].as_deref(), Some(START));
}

/// Amazon Ads: each profile's report jobs (two windows of at most 31 days, in flight together) created,
/// polled after the spec's 15 s, downloaded from storage without credentials and gunzipped; its
/// `Amazon-Advertising-API-ClientId` is a second credential.
#[test]
fn amazon_a_built_in_spec_reconciles_with_the_sandbox_through_the_marts() {
    a_built_in_spec_reconciles_with_the_sandbox_through_the_marts(
        "amazon_ads",
        "      client_id: { env: PLATFORM_ACCESS_TOKEN }\n",
    );
}
