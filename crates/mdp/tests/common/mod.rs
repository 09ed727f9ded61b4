//! What the end-to-end tests share: the `mdp` binary with test tokens, a sandbox process, a project
//! pointed at it, and reading the warehouse.
#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::str::FromStr;

use rust_decimal::Decimal;

use mdp_warehouse::{connect, string_rows, Access, ConnectOptions};

pub const TODAY: &str = "2026-06-30";
pub const TOKEN: &str = "tok-SANDBOX-SECRET-5f2c9e";
pub const PLATFORMS: [&str; 4] = ["google_ads", "meta_ads", "tiktok_ads", "linkedin_ads"];

pub struct SandboxProcess {
    pub child: Child,
    pub url: String,
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn mdp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mdp"));
    command.env_remove("MDP_PROJECT_DIR").env_remove("MDP_TARGET").env_remove("MDP_LOG").env("MDP_TODAY", TODAY);
    for var in [
        "GOOGLE_ADS_ACCESS_TOKEN",
        "GOOGLE_ADS_DEVELOPER_TOKEN",
        "META_ACCESS_TOKEN",
        "TIKTOK_ACCESS_TOKEN",
        "LINKEDIN_ACCESS_TOKEN",
    ] {
        command.env(var, TOKEN);
    }
    command
}

pub fn start_sandbox() -> SandboxProcess {
    let mut child = mdp()
        .args(["sandbox", "--port", "0", "--today", TODAY, "--seed", "7"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the sandbox");
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    // Keep draining: a closed pipe would kill the sandbox at its next line of output.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the sandbox prints its address")
        .to_string();
    SandboxProcess { child, url }
}

pub fn get_json(url: &str) -> serde_json::Value {
    tokio::runtime::Runtime::new().unwrap().block_on(async { reqwest::get(url).await.unwrap().json().await.unwrap() })
}

pub fn post_json(url: &str, body: serde_json::Value) {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let status = reqwest::Client::new().post(url).json(&body).send().await.unwrap().status();
        assert!(status.is_success());
    });
}

/// A project with all four platforms pointed at the sandbox, history from 45 days back.
pub fn project(root: &Path, sandbox: &SandboxProcess) -> PathBuf {
    let dir = root.join("project");
    let out = mdp().args(["init"]).arg(&dir).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mut sources = String::from("sources:\n");
    for platform in PLATFORMS {
        let ids = account_ids(sandbox, platform);
        let env = match platform {
            "google_ads" => "GOOGLE_ADS_ACCESS_TOKEN",
            "meta_ads" => "META_ACCESS_TOKEN",
            "tiktok_ads" => "TIKTOK_ACCESS_TOKEN",
            _ => "LINKEDIN_ACCESS_TOKEN",
        };
        let developer =
            if platform == "google_ads" { "      developer_token: { env: GOOGLE_ADS_DEVELOPER_TOKEN }\n" } else { "" };
        sources.push_str(&format!(
            "  - platform: {platform}\n    accounts: [{}]\n    base_url: {}\n    start_date: 2026-05-16\n    credentials:\n      access_token: {{ env: {env} }}\n{developer}",
            ids,
            sandbox.url
        ));
    }
    let file = dir.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    let head = &config[..config.find("sources:").unwrap()];
    std::fs::write(&file, format!("{head}{sources}")).unwrap();
    dir
}

/// A platform's sandbox account ids as a YAML flow list's items: `"1", "2"`.
pub fn account_ids(sandbox: &SandboxProcess, platform: &str) -> String {
    let accounts = get_json(&format!("{}/_sandbox/accounts", sandbox.url));
    let ids: Vec<String> = accounts["accounts"][platform]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("\"{}\"", a["id"].as_str().unwrap()))
        .collect();
    ids.join(", ")
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The run id an orchestrated command prints (`details: mdp runs show <id>`).
pub fn run_id(out: &Output) -> String {
    let log = text(out);
    log.lines()
        .find_map(|l| l.strip_prefix("details: mdp runs show "))
        .unwrap_or_else(|| panic!("no run id in:\n{log}"))
        .trim()
        .to_string()
}

pub fn ingest(project: &Path, extra: &[&str]) -> Output {
    mdp().arg("ingest").args(extra).current_dir(project).output().unwrap()
}

pub fn query(project: &Path, sql: &str) -> Vec<Vec<Option<String>>> {
    // A project configured for Postgres by `use_postgres` leaves a marker with its metadata schema.
    // A project pointed elsewhere by `use_postgres`, `use_bigquery` or `use_snowflake` leaves a marker
    // naming its metadata schema.
    let marker = |name: &str| std::fs::read_to_string(project.join(name)).ok().map(|s| s.trim().to_string());
    let options = if let Some(schema) = marker(".pg-metadata-schema") {
        ConnectOptions::postgres(std::env::var("MDP_TEST_POSTGRES_URL").unwrap(), "test").with_metadata_schema(schema)
    } else if let Some(schema) = marker(".bq-metadata-schema") {
        let mut config = mdp_warehouse::BigQueryConfig::new("mdp-test", "raw", mdp_warehouse::BigQueryAuth::None);
        config.base_url = Some(std::env::var("MDP_TEST_BIGQUERY_URL").unwrap());
        ConnectOptions::bigquery(config).with_metadata_schema(schema)
    } else if let Some(schema) = marker(".sf-metadata-schema") {
        ConnectOptions::snowflake(mdp_warehouse::SnowflakeConfig {
            account: "mdp_test".into(),
            user: "mdp".into(),
            auth: mdp_warehouse::SnowflakeAuth::Password("any".into()),
            database: SNOWFLAKE_TEST_DATABASE.into(),
            schema: None,
            warehouse: None,
            role: None,
            base_url: Some(std::env::var("MDP_TEST_SNOWFLAKE_URL").unwrap()),
        })
        .with_metadata_schema(schema)
    } else {
        ConnectOptions::duckdb(project.join("warehouse.duckdb"))
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let opened = connect(&options, Access::Read).await.unwrap();
        let rows = string_rows(&opened.warehouse.query_all(sql).await.unwrap()).unwrap();
        opened.warehouse.close().await.unwrap();
        rows
    })
}

/// A service's address from `url_var` (`.ci/run` sets it), or `None` (with a notice) to skip; a
/// failure instead when `require_var` is `1`, so that a machine with the service never passes these
/// tests vacuously.
fn service_url(url_var: &str, require_var: &str, what: &str, how: &str) -> Option<String> {
    match std::env::var(url_var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var(require_var).as_deref() == Ok("1") => panic!(
            "{require_var}=1 but {url_var} is not set, so the {what} cannot run: {how}, or unset {require_var} to \
             skip it"
        ),
        _ => {
            eprintln!("NOTICE: skipping the {what}: {url_var} is not set (.ci/run sets it)");
            None
        }
    }
}

/// The test Postgres server's URL, or `None` to skip (see [`service_url`]).
pub fn postgres_url(what: &str) -> Option<String> {
    service_url(
        "MDP_TEST_POSTGRES_URL",
        "MDP_TEST_REQUIRE_POSTGRES",
        what,
        "set it to the test server's URL (e.g. postgres://postgres@127.0.0.1:5432/test)",
    )
}

/// Point a project at the test Postgres server, with its own metadata schema.
pub fn use_postgres(project: &Path, metadata_schema: &str) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("  default: local\n", "  default: pg\n", 1)
        .replacen("  targets:\n", "  targets:\n    pg:\n      type: postgres\n      url: ${MDP_TEST_POSTGRES_URL}\n", 1)
        .replacen("metadata_schema: mdp_meta\n", &format!("metadata_schema: {metadata_schema}\n"), 1);
    std::fs::write(&file, config).unwrap();
    std::fs::write(project.join(".pg-metadata-schema"), metadata_schema).unwrap();
}

/// The BigQuery stand-in's address, or `None` to skip (see [`service_url`]).
pub fn bigquery_url(what: &str) -> Option<String> {
    service_url(
        "MDP_TEST_BIGQUERY_URL",
        "MDP_TEST_REQUIRE_BIGQUERY",
        what,
        "start bqemulator (`python .ci/bqemulator_offline.py start --rest-port 19050 --project mdp-test`) and set it \
         to http://127.0.0.1:19050",
    )
}

/// Point a project at the BigQuery stand-in (project `mdp-test`), with its own metadata dataset.
pub fn use_bigquery(project: &Path, metadata_schema: &str) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("  default: local\n", "  default: bq\n", 1)
        .replacen(
            "  targets:\n",
            "  targets:\n    bq:\n      type: bigquery\n      project: mdp-test\n      dataset: analytics\n      \
             url: ${MDP_TEST_BIGQUERY_URL}\n",
            1,
        )
        .replacen("metadata_schema: mdp_meta\n", &format!("metadata_schema: {metadata_schema}\n"), 1);
    std::fs::write(&file, config).unwrap();
    std::fs::write(project.join(".bq-metadata-schema"), metadata_schema).unwrap();
}

/// The Snowflake stand-in's address, or `None` to skip (see [`service_url`]).
pub fn snowflake_url(what: &str) -> Option<String> {
    service_url(
        "MDP_TEST_SNOWFLAKE_URL",
        "MDP_TEST_REQUIRE_SNOWFLAKE",
        what,
        "start fakesnow (`fakesnow -s -p 18616`) and set it to http://127.0.0.1:18616",
    )
}

/// The database the Snowflake end-to-end tests use on the stand-in.
pub const SNOWFLAKE_TEST_DATABASE: &str = "mdp_e2e";

/// Point a project at the Snowflake stand-in, with its own metadata schema.
pub fn use_snowflake(project: &Path, metadata_schema: &str) {
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file)
        .unwrap()
        .replacen("  default: local\n", "  default: sf\n", 1)
        .replacen(
            "  targets:\n",
            &format!(
                "  targets:\n    sf:\n      type: snowflake\n      account: mdp_test\n      user: mdp\n      \
                 password: {{ env: MDP_TEST_SNOWFLAKE_PASSWORD }}\n      database: {SNOWFLAKE_TEST_DATABASE}\n      \
                 url: ${{MDP_TEST_SNOWFLAKE_URL}}\n"
            ),
            1,
        )
        .replacen("metadata_schema: mdp_meta\n", &format!("metadata_schema: {metadata_schema}\n"), 1);
    std::fs::write(&file, config).unwrap();
    std::fs::write(project.join(".sf-metadata-schema"), metadata_schema).unwrap();
}

/// Daily totals per account from the raw layer, from the stream that carries all of a platform's
/// spend (Google: campaign level, which includes Performance Max; others: ad level).
pub fn raw_totals(project: &Path, platform: &str) -> Vec<(String, String, i64, i64, Decimal, Decimal, Decimal)> {
    let stream = if platform == "google_ads" { "campaign_daily" } else { "ad_daily" };
    let rows = query(
        project,
        &format!(
            // Sums cast to exact types inside and out: the Snowflake stand-in sums NUMBER as DOUBLE otherwise.
            "SELECT account_id, CAST(date AS VARCHAR), CAST(sum(impressions) AS BIGINT), CAST(sum(clicks) AS BIGINT), \
             CAST(sum(CAST(spend AS DECIMAL(38,9))) AS VARCHAR), CAST(sum(CAST(conversions AS DECIMAL(38,9))) AS VARCHAR), \
             CAST(sum(CAST(conversion_value AS DECIMAL(38,9))) AS VARCHAR) \
             FROM raw.{platform}__{stream} GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    );
    rows.into_iter()
        .map(|r| {
            let s = |i: usize| r[i].clone().unwrap();
            let d = |i: usize| Decimal::from_str(&s(i)).unwrap().normalize();
            (s(0), s(1), s(2).parse().unwrap(), s(3).parse().unwrap(), d(4), d(5), d(6))
        })
        .collect()
}

/// The raw layer of `platforms` equals the sandbox's truth, account by account and day by day.
pub fn assert_matches_truth(project: &Path, sandbox: &SandboxProcess, platforms: &[&str]) {
    for &platform in platforms {
        assert_matches_definition(project, sandbox, platform, &serde_json::json!({}));
    }
}

/// The raw layer of `platform` equals the sandbox's truth for the conversion definition of a source
/// configured with `options` (its `options:` as JSON), account by account and day by day.
pub fn assert_matches_definition(
    project: &Path,
    sandbox: &SandboxProcess,
    platform: &str,
    options: &serde_json::Value,
) {
    let accounts = get_json(&format!("{}/_sandbox/accounts", sandbox.url));
    let options: String = options
        .to_string()
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    {
        let raw = raw_totals(project, platform);
        let mut compared = 0;
        for account in accounts["accounts"][platform].as_array().unwrap() {
            let id = account["id"].as_str().unwrap();
            let truth = get_json(&format!(
                "{}/_sandbox/truth?platform={platform}&account_id={id}&start=2026-05-16&end={TODAY}&options={options}",
                sandbox.url
            ));
            for day in truth["days"].as_array().unwrap() {
                let date = day["date"].as_str().unwrap();
                let d = |k: &str| Decimal::from_str(day[k].as_str().unwrap()).unwrap().normalize();
                let expected = (
                    day["impressions"].as_i64().unwrap(),
                    day["clicks"].as_i64().unwrap(),
                    d("spend"),
                    d("conversions"),
                    d("conversion_value"),
                );
                let got = raw.iter().find(|r| r.0 == id && r.1 == date).map(|r| (r.2, r.3, r.4, r.5, r.6)).unwrap_or((
                    0,
                    0,
                    Decimal::ZERO,
                    Decimal::ZERO,
                    Decimal::ZERO,
                ));
                assert_eq!(
                    got, expected,
                    "{platform} account {id} on {date}: (impressions, clicks, spend, conversions, value)"
                );
                compared += 1;
            }
        }
        assert!(compared >= 90, "{platform}: compared {compared} account-days");
    }
}
