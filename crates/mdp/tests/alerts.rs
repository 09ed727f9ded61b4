//! Alerts and lineage end to end: a pipeline that fails on one platform notifies a webhook, a Slack
//! hook and a command once, stays silent while it stays red, notifies once when it recovers; webhook
//! secrets appear nowhere (output, files, metadata tables); the lineage file holds START / COMPLETE /
//! FAIL events with datasets and schema facets. On Postgres, `mdp ingest` does the same.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use serde_json::Value;

const WEBHOOK_SECRET: &str = "whsec-7c1d0a9e-HOOK";
const SLACK_SECRET: &str = "T0SLACK/B0SLACK/xoxsecret42";
const DEAD_SECRET: &str = "dead-endpoint-secret-99";

/// What the receiver got: (path, JSON body) per POST.
type Posts = Arc<Mutex<Vec<(String, Value)>>>;

/// A local HTTP receiver that records every POST.
struct Receiver {
    url: String,
    posts: Posts,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        use axum::extract::State;
        use axum::http::Uri;
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let posts: Posts = Arc::default();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(|State(posts): State<Posts>, uri: Uri, axum::Json(body): axum::Json<Value>| async move {
                posts.lock().unwrap().push((uri.path().to_string(), body));
                "ok"
            })
            .with_state(posts.clone());
        runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, posts, _runtime: runtime }
    }

    fn posts_to(&self, prefix: &str) -> Vec<Value> {
        self.posts.lock().unwrap().iter().filter(|(p, _)| p.starts_with(prefix)).map(|(_, b)| b.clone()).collect()
    }
}

fn append(project: &Path, text: &str) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{config}{text}")).unwrap();
}

/// Point one platform's source at another sandbox (the fix for its failure).
fn repoint(project: &Path, platform: &str, from: &str, to: &str) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    let start = config.find(&format!("platform: {platform}")).unwrap();
    let at = start + config[start..].find(&format!("base_url: {from}")).unwrap();
    let fixed = format!("{}base_url: {to}{}", &config[..at], &config[at + "base_url: ".len() + from.len()..]);
    std::fs::write(&file, fixed).unwrap();
}

const NOTIFIERS: &str = "alerts:
  notifiers:
    - name: hook
      type: webhook
      url: { env: MDP_TEST_WEBHOOK_URL }
    - name: slack
      type: slack
      url: { env: MDP_TEST_SLACK_URL }
      on: [run_failed, recovered]
    - name: script
      type: command
      command: [sh, -c, 'cat >> alerts.jsonl && echo >> alerts.jsonl && echo \"$MDP_ALERT_EVENT $MDP_ALERT_KEY\" >> alerts.log']
    - name: dead
      type: webhook
      url: { env: MDP_TEST_DEAD_URL }
      timeout_seconds: 2
lineage:
  file: target/lineage.jsonl
# The sandbox's spend has days a robust z-score warns about; this test is about run incidents (check
# incidents: crates/mdp-monitor/tests/incidents.rs).
checks:
  spend_anomaly:
    enabled: false
";

fn run_with_hooks(project: &Path, receiver: &Receiver, args: &[&str]) -> std::process::Output {
    mdp()
        .args(args)
        .env("MDP_TEST_WEBHOOK_URL", format!("{}/hooks/{WEBHOOK_SECRET}", receiver.url))
        .env("MDP_TEST_SLACK_URL", format!("{}/slack/{SLACK_SECRET}", receiver.url))
        .env("MDP_TEST_DEAD_URL", format!("http://127.0.0.1:9/{DEAD_SECRET}"))
        .current_dir(project)
        .output()
        .unwrap()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

fn assert_no_secret(what: &str, haystack: &str) {
    for secret in [WEBHOOK_SECRET, SLACK_SECRET, "xoxsecret42", DEAD_SECRET] {
        assert!(!haystack.contains(secret), "the secret {secret} leaked into {what}:\n{haystack}");
    }
}

/// Every text value of every metadata table, one string per table.
fn metadata_text(project: &Path, schema: &str) -> Vec<(String, String)> {
    let columns = query(
        project,
        &format!(
            "SELECT CAST(table_name AS VARCHAR), CAST(column_name AS VARCHAR) FROM information_schema.columns \
             WHERE table_schema = '{schema}' ORDER BY table_name, ordinal_position"
        ),
    );
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for row in columns {
        let (table, column) = (row[0].clone().unwrap(), row[1].clone().unwrap());
        match tables.last_mut() {
            Some((t, cols)) if *t == table => cols.push(column),
            _ => tables.push((table, vec![column])),
        }
    }
    assert!(tables.iter().any(|(t, _)| t == "incidents"), "{tables:?}");
    tables
        .into_iter()
        .map(|(table, cols)| {
            let select: Vec<String> = cols.iter().map(|c| format!("CAST(\"{c}\" AS VARCHAR)")).collect();
            let rows = query(project, &format!("SELECT {} FROM {schema}.{table}", select.join(", ")));
            let text: Vec<String> = rows.into_iter().flatten().flatten().collect();
            (table, text.join("\n"))
        })
        .collect()
}

fn incidents(project: &Path, schema: &str) -> Vec<Vec<Option<String>>> {
    query(
        project,
        &format!(
            "SELECT incident_key, status, opened_run_id, last_seen_run_id, CAST(resolved_at IS NULL AS VARCHAR) \
             FROM {schema}.incidents ORDER BY opened_at"
        ),
    )
}

/// The parsed lineage events.
fn events(project: &Path) -> Vec<Value> {
    lines(&project.join("target/lineage.jsonl")).iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn find<'e>(events: &'e [Value], parent_run: &str, job: &str, event_type: &str) -> &'e Value {
    events
        .iter()
        .find(|e| {
            e["job"]["name"] == job
                && e["eventType"] == event_type
                && e["run"]["facets"]["parent"]["run"]["runId"] == parent_run
        })
        .unwrap_or_else(|| panic!("no {event_type} event of {job} in run {parent_run}"))
}

fn field_names(dataset: &Value) -> Vec<String> {
    dataset["facets"]["schema"]["fields"]
        .as_array()
        .unwrap_or_else(|| panic!("no schema facet: {dataset}"))
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_failing_pipeline_alerts_once_recovers_once_leaks_no_secret_and_emits_lineage() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let broken = start_sandbox();
    let healthy = start_sandbox();
    let project = project(tmp.path(), &broken);
    append(&project, NOTIFIERS);
    // TikTok rejects the token for good on the first sandbox.
    post_json(
        &format!("{}/_sandbox/faults", broken.url),
        serde_json::json!({"platform": "tiktok_ads", "kind": "unauthorized", "count": 100000}),
    );
    let accounts = get_json(&format!("{}/_sandbox/accounts", broken.url));
    let account = |platform: &str| accounts["accounts"][platform][0]["id"].as_str().unwrap().to_string();

    // Red: one alert on each notifier.
    let first = run_with_hooks(&project, &receiver, &["pipeline", "--retries", "0"]);
    assert!(!first.status.success(), "{}", text(&first));
    let run1 = run_id(&first);
    let hooks = receiver.posts_to("/hooks/");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0]["event"], "run_failed");
    assert_eq!(hooks[0]["incident"]["key"], "run:pipeline");
    assert_eq!(hooks[0]["incident"]["status"], "open");
    assert_eq!(hooks[0]["run_id"], run1.as_str());
    assert_eq!(hooks[0]["status"], "failed");
    let failed_tasks: Vec<&str> =
        hooks[0]["failed_tasks"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert!(
        failed_tasks.iter().all(|t| t.starts_with("ingest.tiktok_ads.")) && failed_tasks.len() == 2,
        "{failed_tasks:?}"
    );
    let slack = receiver.posts_to("/slack/");
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(slack[0]["text"].as_str().unwrap().contains("run pipeline failed"), "{}", slack[0]);
    assert_eq!(slack[0]["blocks"][0]["type"], "section");
    assert_eq!(lines(&project.join("alerts.log")), ["run_failed run:pipeline"]);
    let stdin: Value = serde_json::from_str(&lines(&project.join("alerts.jsonl"))[0]).unwrap();
    assert_eq!(stdin["incident"]["key"], "run:pipeline", "the command hook gets the payload on stdin");
    // The dead endpoint is reported by scheme and host only.
    let log = text(&first);
    assert!(log.contains("alerts: run_failed run:pipeline; 3 delivered, 1 failed"), "{log}");
    assert!(log.contains("notifier dead (http://127.0.0.1:9/…) could not deliver run_failed"), "{log}");

    // Still red: silent.
    let second = run_with_hooks(&project, &receiver, &["pipeline", "--retries", "0"]);
    assert!(!second.status.success(), "{}", text(&second));
    let run2 = run_id(&second);
    assert_eq!(receiver.posts_to("/hooks/").len(), 1);
    assert_eq!(receiver.posts_to("/slack/").len(), 1);
    assert_eq!(lines(&project.join("alerts.log")).len(), 1);
    assert!(!text(&second).contains("alerts:"), "{}", text(&second));

    // Fixed: one recovery each.
    repoint(&project, "tiktok_ads", &broken.url, &healthy.url);
    let third = run_with_hooks(&project, &receiver, &["pipeline", "--retries", "0"]);
    assert!(third.status.success(), "{}", text(&third));
    let run3 = run_id(&third);
    let hooks = receiver.posts_to("/hooks/");
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert_eq!(hooks[1]["event"], "recovered");
    assert_eq!(hooks[1]["incident"]["status"], "resolved");
    assert_eq!(hooks[1]["incident"]["opened_run_id"], run1.as_str());
    assert_eq!(hooks[1]["run_id"], run3.as_str());
    assert_eq!(receiver.posts_to("/slack/").len(), 2);
    assert_eq!(lines(&project.join("alerts.log")), ["run_failed run:pipeline", "recovered run:pipeline"]);
    // Green again: silent.
    let fourth = run_with_hooks(&project, &receiver, &["pipeline", "--retries", "0", "--no-ingest"]);
    assert!(fourth.status.success(), "{}", text(&fourth));
    assert_eq!(receiver.posts_to("/hooks/").len(), 2);

    assert_eq!(
        incidents(&project, "mdp_meta"),
        [vec![
            Some("run:pipeline".to_string()),
            Some("resolved".into()),
            Some(run1.clone()),
            Some(run3.clone()),
            Some("false".into())
        ]]
    );

    // `mdp doctor` says where each notifier delivers, by scheme and host only.
    let doctor = run_with_hooks(&project, &receiver, &["doctor"]);
    let shown = text(&doctor);
    assert!(shown.contains(&format!("webhook to {}/… (env MDP_TEST_WEBHOOK_URL)", receiver.url)), "{shown}");
    assert!(shown.contains("OpenLineage events to file target/lineage.jsonl"), "{shown}");

    // No secret in any output, any file of the project (warehouse, artifacts, lineage), any table.
    for out in [&first, &second, &third, &fourth, &doctor] {
        assert_no_secret("the command's output", &text(out));
    }
    for entry in walk(&project) {
        let bytes = std::fs::read(&entry).unwrap();
        assert_no_secret(&entry.display().to_string(), &String::from_utf8_lossy(&bytes));
    }
    for (table, contents) in metadata_text(&project, "mdp_meta") {
        assert_no_secret(&format!("mdp_meta.{table}"), &contents);
    }

    // Lineage: every task that started ended; ingest and model tasks with datasets and schemas.
    let events = events(&project);
    for e in &events {
        for key in ["eventTime", "producer", "schemaURL"] {
            assert!(e[key].is_string(), "{key} missing: {e}");
        }
        assert!(uuid::Uuid::parse_str(e["run"]["runId"].as_str().unwrap()).is_ok(), "{e}");
        assert!(e["job"]["namespace"].is_string() && e["job"]["name"].is_string(), "{e}");
    }
    for run in [&run1, &run2, &run3] {
        let of_run: Vec<&Value> =
            events.iter().filter(|e| e["run"]["facets"]["parent"]["run"]["runId"] == run.as_str()).collect();
        let count = |t: &str| of_run.iter().filter(|e| e["eventType"] == t).count();
        assert!(count("START") > 10, "run {run}: {} events", of_run.len());
        assert_eq!(count("START"), count("COMPLETE") + count("FAIL"), "run {run}: every started task ended");
        // The run itself, as the parent job.
        assert!(events.iter().any(|e| e["run"]["runId"] == run.as_str()
            && e["job"]["name"] == "mdp.pipeline"
            && e["eventType"] == "START"));
    }
    let google = format!("ingest.google_ads.{}", account("google_ads"));
    find(&events, &run1, &google, "START");
    let done = find(&events, &run1, &google, "COMPLETE");
    assert_eq!(done["inputs"][0]["name"], format!("google_ads/{}", account("google_ads")));
    assert_eq!(done["inputs"][0]["namespace"], broken.url.as_str());
    let raw =
        done["outputs"].as_array().unwrap().iter().find(|d| d["name"] == "raw.google_ads__campaign_daily").unwrap();
    assert!(raw["namespace"].as_str().unwrap().starts_with("duckdb:///"), "{raw}");
    let fields = field_names(raw);
    assert!(fields.contains(&"spend".to_string()) && fields.contains(&"_mdp_run_id".to_string()), "{fields:?}");
    let tiktok = format!("ingest.tiktok_ads.{}", account("tiktok_ads"));
    let failed = find(&events, &run1, &tiktok, "FAIL");
    assert!(failed["run"]["facets"]["errorMessage"]["message"].as_str().unwrap().contains("tiktok"), "{failed}");
    assert_eq!(
        find(&events, &run1, &tiktok, "START")["run"]["runId"],
        failed["run"]["runId"],
        "START and FAIL share the task's run id"
    );
    let model = "model.mdp_marketing.stg_google_ads__campaign_daily";
    find(&events, &run1, model, "START");
    let built = find(&events, &run1, model, "COMPLETE");
    let inputs: Vec<&str> = built["inputs"].as_array().unwrap().iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert!(inputs.contains(&"raw.google_ads__campaign_daily"), "{inputs:?}");
    let raw_input =
        built["inputs"].as_array().unwrap().iter().find(|d| d["name"] == "raw.google_ads__campaign_daily").unwrap();
    assert!(field_names(raw_input).contains(&"spend".to_string()), "inputs carry the columns loaded before");
    assert!(built["outputs"][0]["name"].as_str().unwrap().ends_with(".stg_google_ads__campaign_daily"));
    assert!(field_names(&built["outputs"][0]).contains(&"spend".to_string()));
    let mart = find(&events, &run3, "model.mdp_marketing.fct_account_performance_daily", "COMPLETE");
    assert_eq!(mart["inputs"][0]["name"], "main_marts.fct_campaign_performance_daily", "{mart}");
    assert_eq!(mart["job"]["namespace"], "project", "the project's name by default");
    assert!(
        !events.iter().any(|e| e["job"]["name"].as_str().unwrap().starts_with("test.")),
        "tests are not lineage jobs"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn on_postgres_a_failing_ingest_alerts_once_and_recovers_once() {
    if postgres_url("Postgres alerts test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start();
    let broken = start_sandbox();
    let healthy = start_sandbox();
    let project = project(tmp.path(), &broken);
    let schema = format!("mdp_alerts_{}", std::process::id());
    use_postgres(&project, &schema);
    append(&project, NOTIFIERS);
    post_json(
        &format!("{}/_sandbox/faults", broken.url),
        serde_json::json!({"platform": "google_ads", "kind": "unauthorized", "count": 100000}),
    );
    let ingest = |receiver: &Receiver| run_with_hooks(&project, receiver, &["ingest", "--source", "google_ads"]);
    let first = ingest(&receiver);
    assert!(!first.status.success(), "{}", text(&first));
    assert!(!ingest(&receiver).status.success());
    let hooks = receiver.posts_to("/hooks/");
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(
        (hooks[0]["event"].as_str(), hooks[0]["incident"]["key"].as_str()),
        (Some("run_failed"), Some("run:ingest"))
    );
    repoint(&project, "google_ads", &broken.url, &healthy.url);
    let fixed = ingest(&receiver);
    assert!(fixed.status.success(), "{}", text(&fixed));
    let hooks = receiver.posts_to("/hooks/");
    assert_eq!(hooks.len(), 2, "{hooks:?}");
    assert_eq!(hooks[1]["event"], "recovered");
    assert_eq!(lines(&project.join("alerts.log")), ["run_failed run:ingest", "recovered run:ingest"]);
    let rows = incidents(&project, &schema);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0][0].as_deref(), rows[0][1].as_deref()), (Some("run:ingest"), Some("resolved")));
    for (table, contents) in metadata_text(&project, &schema) {
        assert_no_secret(&format!("{schema}.{table}"), &contents);
    }
    // Standalone ingests emit lineage too: FAIL while broken, COMPLETE once fixed.
    let events = events(&project);
    let job = format!(
        "ingest.google_ads.{}",
        get_json(&format!("{}/_sandbox/accounts", broken.url))["accounts"]["google_ads"][0]["id"].as_str().unwrap()
    );
    let types: Vec<&str> =
        events.iter().filter(|e| e["job"]["name"] == job.as_str()).map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(types, ["START", "FAIL", "START", "FAIL", "START", "COMPLETE"]);
    let complete = events.iter().rfind(|e| e["job"]["name"] == job.as_str()).unwrap();
    let raw = complete["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"].as_str().unwrap().ends_with("raw.google_ads__campaign_daily"))
        .unwrap();
    assert!(raw["namespace"].as_str().unwrap().starts_with("postgres://"), "{raw}");
    assert!(field_names(raw).contains(&"spend".to_string()));
}
