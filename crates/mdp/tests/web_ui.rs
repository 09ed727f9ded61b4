//! `mdp serve` end to end: a project loaded from the sandbox, the server as a child process, and
//! - over plain HTTP: a server bound beyond loopback refuses actions without its token and runs them
//!   with it, `/metrics` has every family, user data is escaped, the token never reaches the output;
//! - in headless Chromium driven through chromedriver's W3C WebDriver API: the overview loads, the
//!   lineage graph shows the marts and links to their docs, the KPI chart renders with data, and
//!   clicking "Run pipeline" makes a new run appear with its outcome.
//!
//! The browser test needs Debian's `chromium` and `chromium-driver` (`MDP_TEST_CHROMIUM`,
//! `MDP_TEST_CHROMEDRIVER`, default `/usr/bin/...`); without them it is skipped with a message,
//! unless `MDP_TEST_REQUIRE_BROWSER=1` (as `.ci/run` sets when it installed them).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// A running `mdp serve` and everything it printed.
struct Server {
    child: Child,
    url: String,
    output: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(project: &Path, bind: &str, env: &[(&str, &str)]) -> Server {
        let mut command = mdp();
        command.args(["-v", "serve", "--bind", bind]).current_dir(project).env_remove("MDP_SERVE_TOKEN");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start mdp serve");
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        output.lock().unwrap().push_str(&first);
        let port = first
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("mdp serve prints its address first, got {first:?}"));
        let url = format!("http://127.0.0.1:{port}");
        for mut stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Server { child, url, output }
    }

    fn stop(&mut self) -> String {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(200));
        self.output.lock().unwrap().clone()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// (status, body) of a request.
fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, String) {
    runtime().block_on(async {
        let client = reqwest::Client::new();
        let mut r = client.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    })
}

/// A project with a month and a half of data from the sandbox, built by one `mdp pipeline`.
fn loaded_project(root: &Path, sandbox: &SandboxProcess) -> PathBuf {
    let project = project(root, sandbox);
    let out = mdp().args(["pipeline", "--retry-delay", "0"]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    project
}

fn wait_for_action(server: &Server, id: u64, headers: &[(&str, &str)]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (status, body) = request("GET", &format!("{}/api/actions/{id}", server.url), headers, None);
        assert_eq!(status, 200, "{body}");
        let action: Value = serde_json::from_str(&body).unwrap();
        if action["state"] != "running" {
            return action;
        }
        assert!(Instant::now() < deadline, "the action did not finish: {action}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn beyond_loopback_actions_need_the_token_metrics_answer_and_the_token_never_shows() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = loaded_project(tmp.path(), &sandbox);

    // A check whose name is markup: pages must show it as text.
    runtime().block_on(async {
        let options = mdp_warehouse::ConnectOptions::duckdb(project.join("warehouse.duckdb"));
        let holder = mdp_warehouse::LockHolder::current("test-check-run", "check");
        let opened = mdp_warehouse::connect(&options, mdp_warehouse::Access::Write(holder)).await.unwrap();
        mdp_warehouse::meta::Metadata::new(opened.warehouse.as_ref())
            .record_check(&mdp_warehouse::meta::CheckResult {
                run_id: "test-check-run",
                check_name: "<script>alert('pwned')</script>",
                check_kind: "volume",
                relation: Some("raw.google_ads__campaign_daily"),
                status: "fail",
                observed: Some("3 rows"),
                expected: Some(">= 100 rows"),
                failing_rows: Some(3),
                message: Some("volume dropped <b>97%</b>"),
                sample_query: Some("select * from raw.google_ads__campaign_daily"),
            })
            .await
            .unwrap();
        opened.warehouse.close().await.unwrap();
    });

    // Bound beyond loopback without a token: reads work, actions are refused.
    let mut open_server = Server::start(&project, "0.0.0.0:0", &[]);
    let (status, body) = request("GET", &format!("{}/api/session", open_server.url), &[], None);
    assert_eq!(status, 200);
    let session: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(session["exposed"], true);
    assert_eq!(session["actions_enabled"], false);
    let csrf = session["csrf"].as_str().unwrap().to_string();
    let (status, body) =
        request("POST", &format!("{}/api/actions/pipeline", open_server.url), &[("x-mdp-csrf", &csrf)], None);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("without a token"), "the refusal says why: {body}");
    let (status, page) = request("GET", &format!("{}/", open_server.url), &[], None);
    assert_eq!(status, 200);
    assert!(
        page.contains("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;")
            || page.contains("&lt;script&gt;alert('pwned')"),
        "{page}"
    );
    assert!(!page.contains("<script>alert"), "user data is escaped");
    assert!(page.contains("volume dropped &lt;b&gt;97%&lt;/b&gt;"));
    // The open incidents (what the alerts announced and is still red) are listed, no more, no less.
    let open: Vec<String> = query(
        &project,
        "SELECT incident_key FROM mdp_meta.incidents WHERE status = 'open' ORDER BY opened_at, incident_id",
    )
    .into_iter()
    .filter_map(|r| r[0].clone())
    .collect();
    let listed: Vec<&str> = page.split("data-incident=\"").skip(1).filter_map(|rest| rest.split('"').next()).collect();
    assert_eq!(listed, open, "the overview's open incidents are the incidents table's");
    assert_eq!(page.contains("Open incidents"), !open.is_empty());
    open_server.stop();

    // With a token: refused without it or with a wrong one, accepted with it.
    let token = "srv-TOKEN-7c1d9e4b2a-must-not-leak";
    let mut server = Server::start(&project, "0.0.0.0:0", &[("MDP_SERVE_TOKEN", token)]);
    let pipeline = format!("{}/api/actions/pipeline", server.url);
    let (status, body) = request("POST", &pipeline, &[], None);
    assert_eq!(status, 401, "{body}");
    let (status, _) = request("POST", &pipeline, &[("x-mdp-csrf", &csrf)], None);
    assert_eq!(status, 401, "the CSRF token is no substitute for the token");
    let (status, body) = request("POST", &pipeline, &[("authorization", "Bearer wrong-token")], None);
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains(token));
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let (status, body) = request(
        "POST",
        &format!("{}/api/actions/backfill", server.url),
        &auth,
        Some(json!({"from": "2026-06-20", "to": "2026-06-10"})),
    );
    assert_eq!(status, 400, "a backfill with from after to is refused: {body}");
    assert!(body.contains("is after"), "{body}");
    let (status, body) = request("POST", &pipeline, &auth, None);
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_u64().unwrap();
    let action = wait_for_action(&server, id, &[]);
    assert_eq!(action["state"], "succeeded", "{action}");
    let run_id = action["run_id"].as_str().expect("the action names its run").to_string();
    let (_, runs) = request("GET", &format!("{}/api/runs", server.url), &[], None);
    let runs: Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs[0]["run_id"], run_id.as_str(), "the newest run is the action's: {runs}");
    assert_eq!(runs[0]["status"], "success");
    assert_eq!(runs.as_array().unwrap().len(), 2);

    // Re-run one task: a run with that task only.
    let task = "model.mdp_marketing.fct_platform_performance_daily";
    let (status, body) =
        request("POST", &format!("{}/api/actions/retry", server.url), &auth, Some(json!({ "task_id": task })));
    assert_eq!(status, 202, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["id"].as_u64().unwrap();
    let action = wait_for_action(&server, id, &[]);
    assert_eq!(action["state"], "succeeded", "{action}");
    assert!(action["command"].as_str().unwrap().ends_with(&format!("pipeline --task={task}")), "{action}");
    let retry_run = action["run_id"].as_str().expect("the re-run names its run");
    let (_, detail) = request("GET", &format!("{}/api/runs/{retry_run}", server.url), &[], None);
    let detail: Value = serde_json::from_str(&detail).unwrap();
    // The named task, and no other model, test or ingest (the pipeline's closing `checks` task may follow).
    let tasks: Vec<&Value> = detail["tasks"].as_array().unwrap().iter().filter(|t| t["kind"] != "checks").collect();
    assert_eq!(tasks.len(), 1, "only the named task ran: {detail}");
    assert_eq!(tasks[0]["task_id"], task);
    assert_eq!(tasks[0]["state"], "success");

    let (status, metrics) = request("GET", &format!("{}/metrics", server.url), &[], None);
    assert_eq!(status, 200);
    for expected in [
        "mdp_warehouse_readable 1",
        "mdp_runs{status=\"success\"} 3",
        "# TYPE mdp_task_instances gauge",
        "mdp_task_instances{kind=\"ingest\",state=\"success\"}",
        "mdp_task_duration_seconds_bucket{kind=\"model\",le=\"+Inf\"}",
        "mdp_ingested_rows_total{source=\"google_ads\"}",
        "mdp_stream_freshness_lag_seconds{source=\"meta_ads\"",
        "mdp_stream_days_behind{source=\"tiktok_ads\"",
        "# TYPE mdp_checks gauge",
        "mdp_check_status{check=\"<script>alert('pwned')</script>\",kind=\"volume\",status=\"fail\"} 1",
        "# TYPE mdp_last_successful_run_timestamp_seconds gauge",
    ] {
        assert!(metrics.contains(expected), "{expected} missing from /metrics:\n{metrics}");
    }
    let output = server.stop();
    assert!(output.contains("started an action"), "the server logs at -v: {output}");
    assert!(!output.contains(token), "the token never appears in the server's output:\n{output}");
}

#[test]
fn on_postgres_every_page_and_the_api_read_the_warehouse() {
    if postgres_url("Postgres web UI test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    // A metadata schema of its own, so the run history holds this test's runs only.
    let metadata_schema = format!("mdp_meta_serve_{}", std::process::id());
    use_postgres(&project, &metadata_schema);
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap().replacen(
        "url: ${MDP_TEST_POSTGRES_URL}\n",
        "url: ${MDP_TEST_POSTGRES_URL}\n      schema: serve_test\n",
        1,
    );
    std::fs::write(&file, config).unwrap();
    let drop = "DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS serve_test_staging CASCADE; \
                DROP SCHEMA IF EXISTS serve_test_intermediate CASCADE; DROP SCHEMA IF EXISTS serve_test_marts CASCADE; \
                DROP SCHEMA IF EXISTS serve_test_reference CASCADE";
    let out = mdp().args(["sql", drop]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = mdp().args(["pipeline", "--retry-delay", "0"]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let server = Server::start(&project, "127.0.0.1:0", &[]);

    for page in
        ["/", "/runs", "/checks", "/checks?status=fail&kind=volume", "/kpis", "/kpis?sort=cpa&dir=asc", "/lineage"]
    {
        let (status, body) = request("GET", &format!("{}{page}", server.url), &[], None);
        assert_eq!(status, 200, "{page}: {body}");
    }
    let (_, runs) = request("GET", &format!("{}/api/runs", server.url), &[], None);
    let runs: Value = serde_json::from_str(&runs).unwrap();
    let run_id = runs[0]["run_id"].as_str().unwrap();
    let (status, detail) = request("GET", &format!("{}/api/runs/{run_id}", server.url), &[], None);
    assert_eq!(status, 200, "{detail}");
    let detail: Value = serde_json::from_str(&detail).unwrap();
    assert!(detail["tasks"].as_array().unwrap().len() > 200, "every task of the run");
    let (status, kpis) = request("GET", &format!("{}/api/kpis?sort=cpa", server.url), &[], None);
    assert_eq!(status, 200, "{kpis}");
    let kpis: Value = serde_json::from_str(&kpis).unwrap();
    assert_eq!(kpis["to"], "2026-06-30", "the range ends at the latest day of data");
    assert!(!kpis["campaigns"].as_array().unwrap().is_empty());
    let cpas: Vec<f64> = kpis["campaigns"].as_array().unwrap().iter().filter_map(|c| c["cpa"].as_f64()).collect();
    assert!(cpas.windows(2).all(|w| w[0] <= w[1]), "sorted by CPA, lowest first: {cpas:?}");
    assert!(kpis["totals"][0]["spend"].as_str().unwrap().parse::<f64>().unwrap() > 0.0);
    let (_, metrics) = request("GET", &format!("{}/metrics", server.url), &[], None);
    // The run history: the `mdp sql` that dropped the schemas, and the pipeline.
    let successes = runs.as_array().unwrap().iter().filter(|r| r["status"] == "success").count();
    assert_eq!(successes, 2, "{runs}");
    assert!(metrics.contains(&format!("mdp_runs{{status=\"success\"}} {successes}\n")), "{metrics}");
    assert!(metrics.contains("mdp_task_duration_seconds_count{kind=\"model\"}"), "{metrics}");
    std::mem::drop(server);
    let _ = mdp()
        .args(["sql", &format!("{drop}; DROP SCHEMA IF EXISTS {metadata_schema} CASCADE")])
        .current_dir(&project)
        .output();
}

// ---------------------------------------------------------------------------------------------
// The browser.

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// chromedriver and one browser session.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.rt.block_on(self.client.delete(url).send());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The browser and driver, or why they are missing.
fn browser_binaries() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from(std::env::var("MDP_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let driver =
        PathBuf::from(std::env::var("MDP_TEST_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()));
    for path in [&chromium, &driver] {
        if !path.is_file() {
            return Err(format!("{} is missing (apt-get install chromium chromium-driver)", path.display()));
        }
    }
    Ok((chromium, driver))
}

impl Browser {
    fn start(chromium: &Path, chromedriver: &Path) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let base = format!("http://127.0.0.1:{port}");
        let rt = runtime();
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = rt.block_on(async {
                let r = client.get(format!("{base}/status")).send().await.ok()?;
                let v: Value = r.json().await.ok()?;
                v["value"]["ready"].as_bool()
            });
            if ready == Some(true) {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium.display().to_string(),
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage", "--window-size=1400,1000",
                        format!("--user-data-dir={}", profile.path().display()),
                    ]
                }
            }}
        });
        let created: Value = rt.block_on(async {
            client.post(format!("{base}/session")).json(&capabilities).send().await.unwrap().json().await.unwrap()
        });
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not create a session: {created}"))
            .to_string();
        Browser { driver, base, session, rt, client, _profile: profile }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        self.rt.block_on(async {
            let mut r = self.client.request(method.parse().unwrap(), url);
            if let Some(b) = body {
                r = r.json(&b);
            } else if method == "POST" {
                r = r.json(&json!({}));
            }
            let v: Value = r.send().await.unwrap().json().await.unwrap();
            v["value"].clone()
        })
    }

    fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    fn elements(&self, css: &str) -> Vec<String> {
        let v = self.call("POST", "/elements", Some(json!({ "using": "css selector", "value": css })));
        v.as_array()
            .unwrap_or_else(|| panic!("find {css}: {v}"))
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_string())
            .collect()
    }

    fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call("GET", &format!("/element/{element}/attribute/{name}"), None).as_str().map(str::to_string)
    }

    fn text(&self, element: &str) -> String {
        self.call("GET", &format!("/element/{element}/text"), None).as_str().unwrap_or("").to_string()
    }

    fn click(&self, element: &str) {
        self.call("POST", &format!("/element/{element}/click"), None);
    }

    fn current_url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap_or("").to_string()
    }

    /// Save a screenshot when `MDP_TEST_SCREENSHOTS` names a folder (for looking at the pages).
    fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("MDP_TEST_SCREENSHOTS") else { return };
        let data = self.call("GET", "/screenshot", None);
        if let Some(b64) = data.as_str() {
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(Path::new(&dir).join(format!("{name}.png.b64")), b64);
        }
    }

    /// Wait until `css` matches at least one element.
    fn wait_for(&self, css: &str, seconds: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let found = self.elements(css);
            if !found.is_empty() {
                return found;
            }
            assert!(Instant::now() < deadline, "nothing matched {css} at {}", self.current_url());
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn the_web_ui_in_headless_chromium() {
    let (chromium, chromedriver) = match browser_binaries() {
        Ok(found) => found,
        Err(why) if std::env::var("MDP_TEST_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("MDP_TEST_REQUIRE_BROWSER=1 but {why}")
        }
        Err(why) => {
            eprintln!("skipped: the browser test needs Chromium and chromedriver: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = loaded_project(tmp.path(), &sandbox);
    let server = Server::start(&project, "127.0.0.1:0", &[]);
    let browser = Browser::start(&chromium, &chromedriver);

    // The overview loads, with the run and the freshness of every source.
    browser.goto(&format!("{}/", server.url));
    let heading = browser.wait_for("main h1", 10);
    assert_eq!(browser.text(&heading[0]), "Overview");
    assert_eq!(browser.elements("table.runs tbody tr").len(), 1, "the pipeline run is listed");
    let freshness = browser.elements("table.freshness tbody tr");
    assert!(freshness.len() >= 4, "a row per source stream: {}", freshness.len());
    browser.screenshot("overview");

    // The lineage graph shows the marts, and a mart links to its docs page.
    browser.goto(&format!("{}/lineage", server.url));
    let marts = browser.wait_for("svg g.node[data-resource-type='model'][data-id*='.fct_']", 10);
    let ids: Vec<String> = marts.iter().filter_map(|m| browser.attribute(m, "data-id")).collect();
    for mart in ["fct_platform_performance_daily", "fct_campaign_performance_daily", "fct_account_performance_daily"] {
        assert!(ids.iter().any(|id| id.ends_with(&format!(".{mart}"))), "{mart} in the graph: {ids:?}");
    }
    assert!(!browser.elements("svg g.node[data-resource-type='source']").is_empty(), "sources are drawn");
    browser.screenshot("lineage");
    let platform_mart = marts
        .iter()
        .find(|m| browser.attribute(m, "data-id").is_some_and(|id| id.ends_with(".fct_platform_performance_daily")))
        .unwrap();
    browser.click(platform_mart);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser.current_url().contains("/docs/") {
        assert!(Instant::now() < deadline, "clicking a node opens its docs: {}", browser.current_url());
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = browser.wait_for("body", 5);
    let docs_text = browser.text(&body[0]);
    assert!(docs_text.contains("fct_platform_performance_daily"), "{docs_text}");
    assert!(docs_text.to_lowercase().contains("spend_reporting"), "the docs page shows columns or SQL: {docs_text}");

    // The KPI dashboard draws the charts with data, and the campaign table is filled.
    browser.goto(&format!("{}/kpis", server.url));
    let chart = browser.wait_for("#chart-spend[data-points]", 15);
    let points: usize = browser.attribute(&chart[0], "data-points").unwrap().parse().unwrap();
    assert!(points > 0, "the spend chart has points");
    assert!(!browser.elements("#chart-spend canvas").is_empty(), "uPlot drew a canvas");
    let roas: usize =
        browser.attribute(&browser.wait_for("#chart-roas[data-points]", 5)[0], "data-points").unwrap().parse().unwrap();
    assert!(roas > 0);
    assert!(browser.elements("table.campaigns tbody tr").len() >= 4, "campaign rows");
    assert!(!browser.elements(".card.total").is_empty(), "reporting-currency totals");
    browser.screenshot("kpis");

    // Clicking "Run pipeline" starts a run; it appears in Runs with its outcome.
    browser.goto(&format!("{}/", server.url));
    let button = browser.wait_for("#run-pipeline", 5);
    browser.click(&button[0]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser.current_url().contains("/actions/") {
        assert!(Instant::now() < deadline, "the button leads to the action's page: {}", browser.current_url());
        std::thread::sleep(Duration::from_millis(100));
    }
    browser.screenshot("action");
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        browser.goto(&format!("{}/runs", server.url));
        std::thread::sleep(Duration::from_millis(300));
        let rows = browser.elements("table.runs tbody tr");
        if rows.len() == 2 {
            let status = browser.attribute(&rows[0], "data-status").unwrap_or_default();
            if status != "running" {
                break status;
            }
        }
        assert!(Instant::now() < deadline, "the triggered run did not finish in time");
        std::thread::sleep(Duration::from_millis(700));
    };
    assert_eq!(status, "success", "the triggered run succeeded");
    browser.screenshot("runs");
    let row = &browser.elements("table.runs tbody tr")[0];
    let text = browser.text(row);
    assert!(text.contains("pipeline") && text.contains("success"), "{text}");
}
