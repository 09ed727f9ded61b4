//! mdp's marketing models end to end: `mdp ingest` from the sandbox over HTTP, then `mdp build` of
//! the built-in package, on DuckDB and on Postgres. The marts must equal the sandbox's ground truth
//! for every platform, account and day (account currency), convert to the reporting currency exactly
//! as the FX table says, follow a restatement after an incremental ingest, and carry KPIs that are
//! ratios of sums (NULL on a zero denominator).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;

use chrono::NaiveDate;
use common::*;
use rust_decimal::Decimal;

/// The reporting currency of `mdp init`'s project file.
const REPORTING: &str = "USD";
const START: &str = "2026-05-16";

fn build(project: &Path, extra: &[&str]) -> std::process::Output {
    mdp().arg("build").args(extra).current_dir(project).output().unwrap()
}

fn dec(s: &Option<String>) -> Decimal {
    Decimal::from_str(s.as_deref().expect("a value")).expect("a decimal").normalize()
}

fn float(s: &Option<String>) -> Option<f64> {
    s.as_deref().map(|v| v.parse().expect("a number"))
}

/// The shipped FX table: (from_currency) → [(rate_date, rate)] into the reporting currency, sorted.
fn fx_table() -> HashMap<String, Vec<(NaiveDate, Decimal)>> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mdp-marketing/package/seeds/mdp_fx_rates.csv");
    let mut table: HashMap<String, Vec<(NaiveDate, Decimal)>> = HashMap::new();
    for line in std::fs::read_to_string(file).unwrap().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f[2] == REPORTING {
            table.entry(f[1].to_string()).or_default().push((f[0].parse().unwrap(), Decimal::from_str(f[3]).unwrap()));
        }
    }
    for rates in table.values_mut() {
        rates.sort();
    }
    table
}

/// The rate a day's money converts at, by hand: the latest rate on or before the day.
fn rate(fx: &HashMap<String, Vec<(NaiveDate, Decimal)>>, currency: &str, day: NaiveDate) -> Decimal {
    if currency == REPORTING {
        return Decimal::ONE;
    }
    fx[currency].iter().rev().find(|(d, _)| *d <= day).map(|(_, r)| *r).expect("the seed covers the test's days")
}

/// One account-day of ground truth.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Day {
    impressions: i64,
    clicks: i64,
    spend: Decimal,
    conversions: Decimal,
    conversion_value: Decimal,
}

/// (platform, account id, day) → that day's totals.
type Truth = BTreeMap<(String, String, String), Day>;

/// The sandbox's ground truth, with each account's currency.
fn truth(sandbox: &SandboxProcess) -> (Truth, HashMap<String, String>) {
    let accounts = get_json(&format!("{}/_sandbox/accounts", sandbox.url));
    let (mut days, mut currencies) = (BTreeMap::new(), HashMap::new());
    for platform in PLATFORMS {
        for account in accounts["accounts"][platform].as_array().unwrap() {
            let id = account["id"].as_str().unwrap();
            currencies.insert(id.to_string(), account["currency"].as_str().unwrap().to_string());
            let t = get_json(&format!(
                "{}/_sandbox/truth?platform={platform}&account_id={id}&start={START}&end={TODAY}",
                sandbox.url
            ));
            for day in t["days"].as_array().unwrap() {
                let d = |k: &str| Decimal::from_str(day[k].as_str().unwrap()).unwrap().normalize();
                let totals = Day {
                    impressions: day["impressions"].as_i64().unwrap(),
                    clicks: day["clicks"].as_i64().unwrap(),
                    spend: d("spend"),
                    conversions: d("conversions"),
                    conversion_value: d("conversion_value"),
                };
                if totals.impressions > 0 || totals.conversions > Decimal::ZERO {
                    days.insert(
                        (platform.to_string(), id.to_string(), day["date"].as_str().unwrap().to_string()),
                        totals,
                    );
                }
            }
        }
    }
    (days, currencies)
}

fn assert_close(what: &str, got: Option<f64>, expected: Option<f64>) {
    match (got, expected) {
        (None, None) => {}
        (Some(g), Some(e)) => assert!((g - e).abs() <= 1e-9 * e.abs().max(1.0), "{what}: mart {g}, expected {e}"),
        _ => panic!("{what}: mart {got:?}, expected {expected:?}"),
    }
}

fn ratio(n: Decimal, d: Decimal) -> Option<f64> {
    use rust_decimal::prelude::ToPrimitive;
    (!d.is_zero()).then(|| n.to_f64().unwrap() / d.to_f64().unwrap())
}

/// The marts equal the ground truth per platform, account and day; the reporting currency equals the
/// amounts converted by hand; KPIs at account, platform and campaign grain are ratios of sums.
fn assert_marts_match_truth(project: &Path, sandbox: &SandboxProcess, marts: &str) {
    let (truth, currencies) = truth(sandbox);
    let fx = fx_table();
    let rows = query(
        project,
        &format!(
            "SELECT platform, account_id, CAST(date AS VARCHAR), CAST(impressions AS VARCHAR), CAST(clicks AS VARCHAR), \
             CAST(spend AS VARCHAR), CAST(conversions AS VARCHAR), CAST(conversion_value AS VARCHAR), currency, \
             CAST(spend_reporting AS VARCHAR), CAST(conversion_value_reporting AS VARCHAR), \
             CAST(ctr AS VARCHAR), CAST(cpc AS VARCHAR), CAST(cpm AS VARCHAR), CAST(cvr AS VARCHAR), CAST(cpa AS VARCHAR), \
             CAST(roas AS VARCHAR), CAST(roas_reporting AS VARCHAR) FROM {marts}.fct_account_performance_daily"
        ),
    );
    let mut mart = BTreeMap::new();
    for r in &rows {
        let key = (r[0].clone().unwrap(), r[1].clone().unwrap(), r[2].clone().unwrap());
        let day = Day {
            impressions: r[3].as_deref().unwrap().parse().unwrap(),
            clicks: r[4].as_deref().unwrap().parse().unwrap(),
            spend: dec(&r[5]),
            conversions: dec(&r[6]),
            conversion_value: dec(&r[7]),
        };
        // Reporting currency, by hand with the FX table.
        let (platform, account, date) = &key;
        let currency = &currencies[account];
        assert_eq!(r[8].as_ref(), Some(currency), "{platform} {account}: account currency");
        let fx_rate = rate(&fx, currency, date.parse().unwrap());
        assert_eq!(dec(&r[9]), (day.spend * fx_rate).normalize(), "{key:?} spend_reporting");
        assert_eq!(dec(&r[10]), (day.conversion_value * fx_rate).normalize(), "{key:?} conversion_value_reporting");
        // KPIs at account grain, recomputed from the truth's sums.
        if let Some(t) = truth.get(&key) {
            let (i, c) = (Decimal::from(t.impressions), Decimal::from(t.clicks));
            assert_close(&format!("{key:?} ctr"), float(&r[11]), ratio(c, i));
            assert_close(&format!("{key:?} cpc"), float(&r[12]), ratio(t.spend, c));
            assert_close(&format!("{key:?} cpm"), float(&r[13]), ratio(t.spend * Decimal::from(1000), i));
            assert_close(&format!("{key:?} cvr"), float(&r[14]), ratio(t.conversions, c));
            assert_close(&format!("{key:?} cpa"), float(&r[15]), ratio(t.spend, t.conversions));
            assert_close(&format!("{key:?} roas"), float(&r[16]), ratio(t.conversion_value, t.spend));
            assert_close(
                &format!("{key:?} roas_reporting"),
                float(&r[17]),
                ratio(t.conversion_value * fx_rate, t.spend * fx_rate),
            );
        }
        mart.insert(key, day);
    }
    // Every account-day of the truth is in the mart with the same totals, and nothing else is.
    assert_eq!(mart.len(), truth.len(), "account-days in the mart vs the truth");
    for (key, expected) in &truth {
        assert_eq!(mart.get(key), Some(expected), "{key:?}: (impressions, clicks, spend, conversions, value)");
    }
    for platform in PLATFORMS {
        assert!(truth.keys().filter(|k| k.0 == platform).count() >= 80, "{platform} has account-days to compare");
    }

    // Platform grain: components and KPIs equal the truth summed per platform and day.
    let rows = query(
        project,
        &format!(
            "SELECT platform, CAST(date AS VARCHAR), CAST(impressions AS VARCHAR), CAST(clicks AS VARCHAR), \
             CAST(conversions AS VARCHAR), CAST(spend_reporting AS VARCHAR), CAST(ctr AS VARCHAR), CAST(cvr AS VARCHAR), \
             CAST(cpc_reporting AS VARCHAR), CAST(cpa_reporting AS VARCHAR) FROM {marts}.fct_platform_performance_daily"
        ),
    );
    assert!(!rows.is_empty());
    for r in &rows {
        let (platform, date) = (r[0].clone().unwrap(), r[1].clone().unwrap());
        let day: NaiveDate = date.parse().unwrap();
        let (mut i, mut c, mut conv, mut spend) = (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
        for ((p, account, d), t) in &truth {
            if *p == platform && *d == date {
                i += Decimal::from(t.impressions);
                c += Decimal::from(t.clicks);
                conv += t.conversions;
                spend += t.spend * rate(&fx, &currencies[account], day);
            }
        }
        let what = format!("{platform} {date}");
        assert_eq!((dec(&r[2]), dec(&r[3]), dec(&r[4])), (i, c, conv.normalize()), "{what}: components");
        assert_eq!(dec(&r[5]), spend.normalize(), "{what}: spend_reporting");
        assert_close(&format!("{what} ctr"), float(&r[6]), ratio(c, i));
        assert_close(&format!("{what} cvr"), float(&r[7]), ratio(conv, c));
        assert_close(&format!("{what} cpc_reporting"), float(&r[8]), ratio(spend, c));
        assert_close(&format!("{what} cpa_reporting"), float(&r[9]), ratio(spend, conv));
    }

    // Campaign grain: outside Google (whose Performance Max has no ad rows), a campaign-day is the sum
    // of its ad-days, and its KPIs are the ratios of those sums.
    let ads = query(
        project,
        &format!(
            "SELECT campaign_key, CAST(date AS VARCHAR), CAST(impressions AS VARCHAR), CAST(clicks AS VARCHAR), \
             CAST(spend AS VARCHAR), CAST(conversions AS VARCHAR) FROM {marts}.fct_ad_performance_daily \
             WHERE platform <> 'google_ads'"
        ),
    );
    let mut sums: HashMap<(String, String), [Decimal; 4]> = HashMap::new();
    for r in &ads {
        let s = sums.entry((r[0].clone().unwrap(), r[1].clone().unwrap())).or_default();
        for (k, v) in s.iter_mut().zip([dec(&r[2]), dec(&r[3]), dec(&r[4]), dec(&r[5])]) {
            *k += v;
        }
    }
    let campaigns = query(
        project,
        &format!(
            "SELECT campaign_key, CAST(date AS VARCHAR), CAST(ctr AS VARCHAR), CAST(cpc AS VARCHAR), CAST(cpm AS VARCHAR), \
             CAST(cvr AS VARCHAR), CAST(cpa AS VARCHAR) FROM {marts}.fct_campaign_performance_daily WHERE platform <> 'google_ads'"
        ),
    );
    assert_eq!(campaigns.len(), sums.len(), "campaign-days outside Google");
    for r in &campaigns {
        let key = (r[0].clone().unwrap(), r[1].clone().unwrap());
        let [i, c, spend, conv] = sums[&key];
        assert_close(&format!("{key:?} ctr"), float(&r[2]), ratio(c, i));
        assert_close(&format!("{key:?} cpc"), float(&r[3]), ratio(spend, c));
        assert_close(&format!("{key:?} cpm"), float(&r[4]), ratio(spend * Decimal::from(1000), i));
        assert_close(&format!("{key:?} cvr"), float(&r[5]), ratio(conv, c));
        assert_close(&format!("{key:?} cpa"), float(&r[6]), ratio(spend, conv));
    }
}

/// ingest → build → check; restate → incremental ingest → build → check against the new truth.
fn pipeline(project: &Path, sandbox: &SandboxProcess, marts: &str) {
    let out = ingest(project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = build(project, &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    for test in ["reconcile_account_mart_with_raw", "reconcile_campaign_mart_with_raw", "reconcile_ad_mart_with_raw"] {
        assert!(log.lines().any(|l| l.contains("PASS") && l.contains(test)), "{test} ran and passed:\n{log}");
    }
    assert_marts_match_truth(project, sandbox, marts);

    post_json(&format!("{}/_sandbox/restate", sandbox.url), serde_json::json!({}));
    let out = ingest(project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = build(project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_marts_match_truth(project, sandbox, marts);
}

#[test]
fn duckdb_marts_equal_the_truth_convert_exactly_and_follow_restatements() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    pipeline(&project, &sandbox, "main_marts");

    // Every column of every mart is documented in schema.yml, and nothing documented is missing.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("target/manifest.json")).unwrap()).unwrap();
    let mut marts_seen = 0;
    for node in manifest["nodes"].as_object().unwrap().values() {
        if node["resource_type"] != "model" || node["schema"] != "main_marts" {
            continue;
        }
        marts_seen += 1;
        let name = node["name"].as_str().unwrap();
        let documented: std::collections::BTreeSet<String> = node["columns"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, c)| !c["description"].as_str().unwrap_or("").is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        let actual: std::collections::BTreeSet<String> = query(
            &project,
            &format!(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main_marts' AND table_name = '{name}'"
            ),
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
        assert_eq!(documented, actual, "{name}: documented columns vs the table's");
        assert!(!node["description"].as_str().unwrap_or("").is_empty(), "{name} has a description");
    }
    assert_eq!(marts_seen, 12, "4 facts and 8 dimensions");

    // A day with conversions but no impressions or clicks (late attribution): NULL CTR, CPC, CPM,
    // CVR and ROAS, not an error and not 0; the marts still reconcile with the raw layer.
    let ad = query(
        &project,
        "SELECT account_id, campaign_id, ad_group_id, ad_id FROM raw.meta_ads__ad_daily ORDER BY ad_id LIMIT 1",
    );
    let [account, campaign, group, ad] = [0, 1, 2, 3].map(|i| ad[0][i].clone().unwrap());
    let insert = format!(
        "INSERT INTO raw.meta_ads__ad_daily (date, account_id, campaign_id, ad_group_id, ad_id, impressions, clicks, \
         spend, conversions, conversion_value, _mdp_payload, _mdp_run_id, _mdp_extracted_at, _mdp_window_start, _mdp_window_end) \
         VALUES (DATE '2026-05-01', '{account}', '{campaign}', '{group}', '{ad}', 0, 0, 0, 2, 90, '{{}}', 'test', now(), DATE '2026-05-01', DATE '2026-05-01')"
    );
    let out = mdp().args(["sql", &insert]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = build(&project, &[]);
    assert!(out.status.success(), "a zero-impression day builds and passes every test:\n{}", text(&out));
    for mart in ["fct_ad_performance_daily", "fct_campaign_performance_daily", "fct_account_performance_daily"] {
        let row = query(
            &project,
            &format!(
                "SELECT CAST(ctr AS VARCHAR), CAST(cpc AS VARCHAR), CAST(cpm AS VARCHAR), CAST(cvr AS VARCHAR), \
                 CAST(roas AS VARCHAR), CAST(cpa AS VARCHAR), CAST(conversions AS VARCHAR) FROM main_marts.{mart} \
                 WHERE date = DATE '2026-05-01' AND account_id = '{account}'"
            ),
        );
        assert_eq!(row.len(), 1, "{mart}");
        assert_eq!(row[0][..5], [None, None, None, None, None], "{mart}: ctr, cpc, cpm, cvr, roas are NULL");
        assert_eq!(float(&row[0][5]), Some(0.0), "{mart}: cpa = 0 spend / 2 conversions");
        assert_eq!(dec(&row[0][6]), Decimal::from(2));
    }

    // Reconciliation catches a difference and names platform, account, day, metric and both values.
    let out = mdp()
        .args(["sql", &format!("UPDATE raw.meta_ads__ad_daily SET clicks = clicks + 1 WHERE ad_id = '{ad}' AND date = DATE '2026-06-01'")])
        .current_dir(&project)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out =
        mdp().args(["test", "--select", "reconcile_account_mart_with_raw"]).current_dir(&project).output().unwrap();
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(&format!("platform=meta_ads, account_id={account}, date=2026-06-01, metric=clicks")),
        "the failure names the platform, account, day and metric:\n{log}"
    );
    assert!(log.contains("mart_value=") && log.contains("raw_value="), "{log}");

    // A missing FX rate is an error naming the currency and the day, and the marts are not built.
    let out = build(&project, &["--vars", "{mdp_reporting_currency: CHF}"]);
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("fx_rates_exist") && log.contains("-> CHF rate on or before 2026-0"), "{log}");
    assert!(log.contains("no USD -> CHF") || log.contains("no EUR -> CHF"), "{log}");
    assert!(log.lines().any(|l| l.contains("SKIP") && l.contains("fct_ad_performance_daily")), "{log}");
}

#[test]
fn postgres_marts_equal_the_truth_convert_exactly_and_follow_restatements() {
    if postgres_url("Postgres marketing test").is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    use_postgres(&project, "mdp_meta_marketing_test");
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file).unwrap().replacen(
        "url: ${MDP_TEST_POSTGRES_URL}\n",
        "url: ${MDP_TEST_POSTGRES_URL}\n      schema: mkt_test\n",
        1,
    );
    std::fs::write(&file, config).unwrap();
    let drop = "DROP SCHEMA IF EXISTS raw CASCADE; DROP SCHEMA IF EXISTS mkt_test_staging CASCADE; \
                DROP SCHEMA IF EXISTS mkt_test_intermediate CASCADE; DROP SCHEMA IF EXISTS mkt_test_marts CASCADE; \
                DROP SCHEMA IF EXISTS mkt_test_reference CASCADE";
    let out = mdp().args(["sql", drop]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    pipeline(&project, &sandbox, "mkt_test_marts");
    let _ = mdp()
        .args(["sql", &format!("{drop}; DROP SCHEMA IF EXISTS mdp_meta_marketing_test CASCADE")])
        .current_dir(&project)
        .output();
}

#[test]
fn a_project_builds_with_only_its_enabled_platforms_and_keeps_name_history() {
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = start_sandbox();
    let project = project(tmp.path(), &sandbox);
    // Keep Google Ads and LinkedIn only.
    let file = project.join("mdp.yml");
    let config = std::fs::read_to_string(&file)
        .unwrap()
        .replace("  - platform: meta_ads\n", "  - platform: meta_ads\n    enabled: false\n")
        .replace("  - platform: tiktok_ads\n", "  - platform: tiktok_ads\n    enabled: false\n");
    std::fs::write(&file, config).unwrap();
    let out = ingest(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));

    // A campaign renamed and paused on a later snapshot day (as the next day's ingest would see it).
    let campaign = query(&project, "SELECT id, name FROM raw.google_ads__campaigns ORDER BY id LIMIT 1");
    let (id, old_name) = (campaign[0][0].clone().unwrap(), campaign[0][1].clone().unwrap());
    let rename = format!(
        "INSERT INTO raw.google_ads__campaigns SELECT account_id, id, 'Renamed campaign', 'PAUSED', campaign_id, ad_group_id, \
         currency, timezone, _mdp_payload, _mdp_run_id, _mdp_extracted_at, _mdp_snapshot_date + 1 \
         FROM raw.google_ads__campaigns WHERE id = '{id}'"
    );
    let out = mdp().args(["sql", &rename]).current_dir(&project).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));

    // The project's own rates replace the shipped seed, and the project's own model builds on a mart.
    std::fs::write(
        project.join("seeds/mdp_fx_rates.csv"),
        "rate_date,from_currency,to_currency,rate\n2026-01-01,JPY,USD,0.0070000000\n2026-01-01,EUR,USD,1.1000000000\n",
    )
    .unwrap();
    std::fs::write(
        project.join("models/spend_by_platform.sql"),
        "select platform, sum(spend_reporting) as spend from {{ ref('fct_platform_performance_daily') }} group by platform",
    )
    .unwrap();
    let out = build(&project, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let converted = query(
        &project,
        "SELECT currency, CAST(spend AS VARCHAR), CAST(spend_reporting AS VARCHAR), CAST(fx_rate AS VARCHAR) \
         FROM main_marts.fct_account_performance_daily",
    );
    let mut seen = std::collections::BTreeSet::new();
    for r in &converted {
        let currency = r[0].clone().unwrap();
        let expected_rate = match currency.as_str() {
            "JPY" => Decimal::from_str("0.007").unwrap(),
            "EUR" => Decimal::from_str("1.1").unwrap(),
            _ => Decimal::ONE,
        };
        assert_eq!(dec(&r[3]), expected_rate, "{currency}: the project's rate");
        assert_eq!(dec(&r[2]), (dec(&r[1]) * expected_rate).normalize(), "{currency}: spend_reporting");
        seen.insert(currency);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["EUR", "JPY", "USD"]);
    let totals = query(&project, "SELECT count(*) FROM main.spend_by_platform");
    assert_eq!(totals[0][0].as_deref(), Some("2"));
    let platforms =
        query(&project, "SELECT DISTINCT platform FROM main_marts.fct_platform_performance_daily ORDER BY 1");
    assert_eq!(platforms, vec![vec![Some("google_ads".to_string())], vec![Some("linkedin_ads".to_string())]]);
    let out = mdp().args(["ls", "--output", "name"]).current_dir(&project).output().unwrap();
    let names = text(&out);
    assert!(names.contains("stg_google_ads__campaign_daily") && !names.contains("stg_meta_ads__ad_daily"), "{names}");

    let history = query(
        &project,
        &format!(
            "SELECT campaign_name, status, CAST(valid_from AS VARCHAR), CAST(valid_to AS VARCHAR), is_current \
             FROM main_marts.dim_campaigns_history WHERE campaign_id = '{id}' ORDER BY valid_from"
        ),
    );
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0][0].as_deref(), Some(old_name.as_str()));
    assert_eq!(history[0][3], history[1][2], "the old name is valid until the new one starts");
    assert_eq!(history[1][0].as_deref(), Some("Renamed campaign"));
    assert_eq!(history[1][1].as_deref(), Some("paused"));
    assert_eq!(history[1][3], None);
    let names = query(
        &project,
        &format!(
            "SELECT DISTINCT campaign_name FROM main_marts.fct_campaign_performance_daily WHERE campaign_id = '{id}'"
        ),
    );
    assert_eq!(names, vec![vec![Some("Renamed campaign".to_string())]], "the marts show the latest name");
}
