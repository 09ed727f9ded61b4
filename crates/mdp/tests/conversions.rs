//! Conversion definitions end to end: sources configured with their own definitions (Meta pixel
//! purchases by 7-day click or 1-day view, TikTok's complete payments) load exactly the sandbox's truth
//! for those definitions; every raw row and the staging models say which definition produced it; a
//! changed definition makes `mdp check` warn with the backfill to run, and after it the history
//! reconciles with the new definition.

mod common;

use std::path::Path;

use common::*;
use serde_json::{json, Value};

/// A project with a Meta and a TikTok source, each with `options` (JSON, written as YAML flow).
fn configure(project: &Path, sandbox: &SandboxProcess, meta: &Value, tiktok: &Value) {
    let ids = |platform: &str| account_ids(sandbox, platform);
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap();
    let head = &config[..config.find("sources:").unwrap()];
    let sources = format!(
        "sources:\n  - platform: meta_ads\n    accounts: [{}]\n    base_url: {url}\n    start_date: 2026-05-16\n    \
         credentials:\n      access_token: {{ env: META_ACCESS_TOKEN }}\n    options: {meta}\n  \
         - platform: tiktok_ads\n    accounts: [{}]\n    base_url: {url}\n    start_date: 2026-05-16\n    \
         credentials:\n      access_token: {{ env: TIKTOK_ACCESS_TOKEN }}\n    options: {tiktok}\n",
        ids("meta_ads"),
        ids("tiktok_ads"),
        url = sandbox.url,
    );
    std::fs::write(&file, format!("{head}{sources}")).unwrap();
}

fn definitions(project: &Path, relation: &str, column: &str) -> Vec<String> {
    query(project, &format!("SELECT DISTINCT {column} FROM {relation} ORDER BY 1"))
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_else(|| "NULL".into()))
        .collect()
}

fn check(project: &Path) -> (i32, Vec<Value>) {
    let out = mdp().args(["check", "--json", "--kind", "conversion_definition"]).current_dir(project).output().unwrap();
    let report: Value = serde_json::from_str(&String::from_utf8_lossy(&out.stdout))
        .unwrap_or_else(|e| panic!("mdp check --json printed JSON ({e}):\n{}", text(&out)));
    (out.status.code().unwrap(), report["checks"].as_array().unwrap().clone())
}

#[test]
fn each_source_loads_its_own_definition_and_a_change_asks_for_the_backfill() {
    let sandbox = start_sandbox();
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), &sandbox);
    let meta = json!({"conversion_action_types": ["offsite_conversion.fb_pixel_purchase"], "attribution_windows": ["7d_click", "1d_view"]});
    let tiktok =
        json!({"conversion_metric": "complete_payment", "conversion_value_metric": "total_complete_payment_rate"});
    configure(&project, &sandbox, &meta, &tiktok);
    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_matches_definition(&project, &sandbox, "meta_ads", &meta);
    assert_matches_definition(&project, &sandbox, "tiktok_ads", &tiktok);

    // Every raw row, and the staging models built from them, name the definition.
    let meta_label = "actions[offsite_conversion.fb_pixel_purchase] @ 7d_click+1d_view";
    let tiktok_label = "complete_payment / total_complete_payment_rate";
    assert_eq!(definitions(&project, "raw.meta_ads__ad_daily", "_mdp_conversion_definition"), [meta_label]);
    assert_eq!(definitions(&project, "raw.tiktok_ads__ad_daily", "_mdp_conversion_definition"), [tiktok_label]);
    let out = mdp().args(["build", "--select", "stg_meta_ads__ad_daily"]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let staged = query(
        &project,
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'stg_meta_ads__ad_daily'",
    );
    let schema = staged[0][0].clone().unwrap();
    assert_eq!(
        definitions(&project, &format!("{schema}.stg_meta_ads__ad_daily"), "conversion_definition"),
        [meta_label]
    );
    let (code, outcomes) = check(&project);
    assert_eq!(code, 0);
    assert!(!outcomes.is_empty() && outcomes.iter().all(|o| o["status"] == "pass"), "{outcomes:#?}");

    // Meta back to its default definition: the next incremental run reloads only its look-back.
    configure(&project, &sandbox, &json!({}), &tiktok);
    let out = ingest(&project, &["--source", "meta_ads"]);
    assert!(out.status.success(), "{}", text(&out));
    let log = text(&out);
    assert!(
        log.contains("warning: meta_ads.ad_daily.") && log.contains("`mdp ingest --source meta_ads --account "),
        "the ingest says so too:\n{log}"
    );
    let mut labels = definitions(&project, "raw.meta_ads__ad_daily", "_mdp_conversion_definition");
    labels.retain(|l| l != meta_label);
    assert_eq!(labels.len(), 1, "the recent days under the default definition: {labels:?}");
    let (code, outcomes) = check(&project);
    assert_eq!(code, 0, "a warning, not a failure");
    let warned: Vec<&Value> = outcomes.iter().filter(|o| o["status"] == "warn").collect();
    let accounts = get_json(&format!("{}/_sandbox/accounts", sandbox.url));
    assert_eq!(warned.len(), accounts["accounts"]["meta_ads"].as_array().unwrap().len(), "{outcomes:#?}");
    let mut backfills = Vec::new();
    for outcome in &warned {
        let message = outcome["message"].as_str().unwrap();
        assert!(outcome["check_name"].as_str().unwrap().starts_with("conversion_definition.meta_ads.ad_daily."));
        assert!(message.contains(&format!("count conversions as `{meta_label}`")), "{message}");
        assert!(message.contains("from 2026-05-16 to"), "{message}");
        let command = message.split('`').find(|part| part.starts_with("mdp ingest ")).expect("the command to run");
        backfills.push(command.to_string());
    }
    assert!(outcomes
        .iter()
        .filter(|o| o["check_name"].as_str().unwrap().contains("tiktok"))
        .all(|o| o["status"] == "pass"));

    // Running what the check says makes the history consistent and equal to the new truth.
    for command in backfills {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let out = mdp().args(&args).current_dir(&project).output().unwrap();
        assert!(out.status.success(), "{command}: {}", text(&out));
    }
    let (_, outcomes) = check(&project);
    assert!(outcomes.iter().all(|o| o["status"] == "pass"), "{outcomes:#?}");
    assert_matches_definition(&project, &sandbox, "meta_ads", &json!({}));
    assert_eq!(definitions(&project, "raw.meta_ads__ad_daily", "_mdp_conversion_definition"), labels);
}
