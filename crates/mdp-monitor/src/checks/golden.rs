//! Golden SQL: every statement the monitors send, rendered by each dialect, compared in full. A
//! change here is a change of what runs in the warehouse; review it as such.

use chrono::NaiveDate;
use mdp_project::checks::{ChecksConfig, KpiLevel, KpiMetric, KpiTarget, Severity};
use mdp_warehouse::{Dialect, DuckDbDialect, PostgresDialect, TableRef};

use super::*;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn ctx() -> CheckContext {
    let mut config = ChecksConfig::default();
    config.spend_anomaly.days = 2;
    config.spend_anomaly.window_days = 28;
    config.zero_spend.days = 2;
    config.zero_spend.window_days = 28;
    CheckContext {
        config,
        sources: Vec::new(),
        marts: Some(marts()),
        today: Some(day("2026-07-01")),
        reporting_timezone: chrono_tz::UTC,
        reporting_currency: "EUR".into(),
        now: day("2026-07-01").and_hms_opt(6, 0, 0).unwrap(),
    }
}

fn marts() -> Marts {
    Marts {
        account_daily: TableRef::new("marts", "fct_account_performance_daily"),
        campaign_daily: TableRef::new("marts", "fct_campaign_performance_daily"),
        platform_daily: TableRef::new("marts", "fct_platform_performance_daily"),
    }
}

fn raw() -> TableRef {
    TableRef::new("raw", "google_ads__ad_daily")
}

const DUCK: &dyn Dialect = &DuckDbDialect;
const PG: &dyn Dialect = &PostgresDialect;

/// Join the lines of an expected statement with single spaces (the statements are one line).
fn one_line(lines: &[&str]) -> String {
    lines.join(" ")
}

#[test]
fn freshness_statements() {
    for d in [DUCK, PG] {
        assert_eq!(
            freshness::latest_sql(d, &raw(), None).unwrap(),
            one_line(&[
                "SELECT account_id, max(\"date\") AS latest_date, max(_mdp_extracted_at) AS last_loaded_at,",
                "count(*) AS row_count FROM \"raw\".\"google_ads__ad_daily\" GROUP BY account_id",
            ])
        );
        assert_eq!(
            freshness::latest_sql(d, &raw(), Some("o'k")).unwrap(),
            one_line(&[
                "SELECT account_id, max(\"date\") AS latest_date, max(_mdp_extracted_at) AS last_loaded_at,",
                "count(*) AS row_count FROM \"raw\".\"google_ads__ad_daily\" WHERE account_id = 'o''k' GROUP BY account_id",
            ])
        );
        assert_eq!(
            freshness::timezones_sql(d, &TableRef::new("raw", "google_ads__accounts")).unwrap(),
            "SELECT account_id, max(timezone) AS timezone FROM \"raw\".\"google_ads__accounts\" \
             WHERE timezone IS NOT NULL GROUP BY account_id"
        );
    }
}

#[test]
fn volume_statements() {
    for d in [DUCK, PG] {
        assert_eq!(
            volume::counts_sql(d, &raw(), day("2026-05-20"), day("2026-07-01")).unwrap(),
            one_line(&[
                "SELECT account_id, \"date\" AS day, count(*) AS row_count FROM \"raw\".\"google_ads__ad_daily\"",
                "WHERE \"date\" >= DATE '2026-05-20' AND \"date\" < DATE '2026-07-01' GROUP BY account_id, \"date\"",
            ])
        );
        assert_eq!(
            volume::starts_sql(d, &raw()).unwrap(),
            "SELECT account_id, min(\"date\") AS first_day FROM \"raw\".\"google_ads__ad_daily\" GROUP BY account_id"
        );
        assert_eq!(
            volume::account_days_sql(d, &raw(), "123", day("2026-05-20")).unwrap(),
            one_line(&[
                "SELECT \"date\" AS date, count(*) AS row_count FROM \"raw\".\"google_ads__ad_daily\"",
                "WHERE account_id = '123' AND \"date\" >= DATE '2026-05-20' GROUP BY \"date\" ORDER BY \"date\"",
            ])
        );
    }
}

/// The account mart's daily spend CTE as each engine spells its double type.
fn daily(double: &str, since: &str) -> String {
    one_line(&[
        &format!("SELECT platform, account_id, \"date\" AS day, CAST(sum(spend) AS {double}) AS spend"),
        "FROM \"marts\".\"fct_account_performance_daily\"",
        &format!(
            "WHERE \"date\" >= DATE '{since}' AND \"date\" < DATE '2026-07-01' GROUP BY platform, account_id, \"date\""
        ),
    ])
}

#[test]
fn spend_anomaly_statement() {
    let expected = |double: &str, median: &dyn Fn(&str) -> String, window_start: &str| {
        one_line(&[
            &format!("WITH daily AS ({}),", daily(double, "2026-06-01")),
            "checked AS (SELECT * FROM daily WHERE day >= DATE '2026-06-29'),",
            "history AS (SELECT e.platform, e.account_id, e.day, h.spend FROM checked e JOIN daily h",
            &format!("ON h.platform = e.platform AND h.account_id = e.account_id AND h.day >= {window_start} AND h.day < e.day),"),
            &format!("centre AS (SELECT platform, account_id, day, count(*) AS n, {} AS med FROM history", median("spend")),
            "GROUP BY platform, account_id, day),",
            &format!(
                "spread AS (SELECT h.platform, h.account_id, h.day, {} AS mad, avg(abs(h.spend - c.med)) AS mean_ad",
                median("abs(h.spend - c.med)")
            ),
            "FROM history h JOIN centre c ON c.platform = h.platform AND c.account_id = h.account_id AND c.day = h.day",
            "GROUP BY h.platform, h.account_id, h.day)",
            "SELECT e.platform, e.account_id, e.day, e.spend, c.n, c.med, s.mad, s.mean_ad",
            "FROM checked e LEFT JOIN centre c ON c.platform = e.platform AND c.account_id = e.account_id AND c.day = e.day",
            "LEFT JOIN spread s ON s.platform = e.platform AND s.account_id = e.account_id AND s.day = e.day",
            "ORDER BY e.platform, e.account_id, e.day",
        ])
    };
    assert_eq!(
        spend::anomaly_sql(DUCK, &ctx(), &marts()).unwrap(),
        expected("DOUBLE", &|x| format!("median({x})"), "CAST((e.day) + INTERVAL (-28) DAY AS DATE)")
    );
    assert_eq!(
        spend::anomaly_sql(PG, &ctx(), &marts()).unwrap(),
        expected(
            "double precision",
            &|x| format!("percentile_cont(0.5) WITHIN GROUP (ORDER BY {x})"),
            "(CAST((e.day) AS date) + (-28))"
        )
    );
}

#[test]
fn zero_spend_statement() {
    let expected = |double: &str, window_start: &str| {
        one_line(&[
            &format!("WITH daily AS ({}),", daily(double, "2026-06-01")),
            "accounts AS (SELECT platform, account_id, min(day) AS first_day FROM daily GROUP BY platform, account_id),",
            "calendar AS (SELECT DATE '2026-06-29' AS day UNION ALL SELECT DATE '2026-06-30' AS day),",
            "grid AS (SELECT a.platform, a.account_id, a.first_day, c.day FROM accounts a CROSS JOIN calendar c)",
            "SELECT g.platform, g.account_id, g.day, g.first_day,",
            "(SELECT sum(t.spend) FROM daily t WHERE t.platform = g.platform AND t.account_id = g.account_id AND t.day = g.day) AS spend,",
            "(SELECT count(*) FROM daily h WHERE h.platform = g.platform AND h.account_id = g.account_id",
            &format!("AND h.day >= {window_start} AND h.day < g.day AND h.spend > 0) AS spend_days"),
            "FROM grid g ORDER BY g.platform, g.account_id, g.day",
        ])
    };
    assert_eq!(
        spend::zero_spend_sql(DUCK, &ctx(), &marts()).unwrap(),
        expected("DOUBLE", "CAST((g.day) + INTERVAL (-28) DAY AS DATE)")
    );
    assert_eq!(
        spend::zero_spend_sql(PG, &ctx(), &marts()).unwrap(),
        expected("double precision", "(CAST((g.day) AS date) + (-28))")
    );
}

#[test]
fn kpi_target_statements() {
    let target = KpiTarget {
        name: None,
        metric: KpiMetric::Cpm,
        min: None,
        max: Some(40.0),
        level: KpiLevel::Account,
        platform: Some(mdp_core::Platform::MetaAds),
        window_days: 7,
        severity: Severity::Warn,
    };
    let inner = one_line(&[
        "SELECT \"platform\", \"account_id\", max(account_name) AS label, sum(\"spend_reporting\") AS \"spend\",",
        "sum(\"conversion_value_reporting\") AS \"conversion_value\", sum(\"conversions\") AS \"conversions\",",
        "sum(\"clicks\") AS \"clicks\", sum(\"impressions\") AS \"impressions\"",
        "FROM \"marts\".\"fct_account_performance_daily\"",
        "WHERE \"date\" >= DATE '2026-06-24' AND \"date\" <= DATE '2026-06-30' AND platform = 'meta_ads'",
        "GROUP BY \"platform\", \"account_id\"",
    ]);
    for d in [DUCK, PG] {
        assert_eq!(
            kpi::target_sql(d, &ctx(), &marts(), &target, false).unwrap(),
            format!("{inner} ORDER BY \"platform\", \"account_id\"")
        );
    }
    let breaching = |double: &str| {
        let cpm = format!("((CAST(\"spend\" AS {double}) * 1000) / NULLIF((CAST(\"impressions\" AS {double})), 0))");
        format!(
            "SELECT *, {cpm} AS \"cpm\" FROM ({inner}) AS totals WHERE ((\"impressions\" = 0 AND \"spend\" > 0) OR {cpm} > 40) \
             ORDER BY \"cpm\" DESC"
        )
    };
    assert_eq!(kpi::target_sql(DUCK, &ctx(), &marts(), &target, true).unwrap(), breaching("DOUBLE"));
    assert_eq!(kpi::target_sql(PG, &ctx(), &marts(), &target, true).unwrap(), breaching("double precision"));
}

#[test]
fn schema_drift_statements() {
    for d in [DUCK, PG] {
        assert_eq!(
            schema_drift::windows_sql(d, &raw()).unwrap(),
            one_line(&[
                "SELECT _mdp_run_id AS run_id, account_id, max(_mdp_extracted_at) AS extracted_at",
                "FROM \"raw\".\"google_ads__ad_daily\" WHERE _mdp_run_id IN",
                "(SELECT run_id FROM (SELECT _mdp_run_id AS run_id, max(_mdp_extracted_at) AS loaded_at",
                "FROM \"raw\".\"google_ads__ad_daily\" GROUP BY _mdp_run_id ORDER BY loaded_at DESC LIMIT 11) AS loads)",
                "GROUP BY _mdp_run_id, account_id ORDER BY extracted_at DESC",
            ])
        );
    }
    let at = day("2026-06-30").and_hms_opt(6, 0, 0).unwrap();
    let windows = [schema_drift::LoadWindow { run_id: "r2".into(), account_id: "1".into(), extracted_at: at }];
    let expected = |shape: &str, ptype: &str, keys_p: &str, member: &str, keys_v: &str, vtype: &str| {
        one_line(&[
            "WITH payloads AS (SELECT DISTINCT CASE WHEN _mdp_run_id = 'r2' THEN 1 ELSE 0 END AS is_latest,",
            &format!("{shape} AS p FROM \"raw\".\"google_ads__ad_daily\""),
            "WHERE ((_mdp_run_id = 'r2' AND account_id = '1' AND _mdp_extracted_at = TIMESTAMP '2026-06-30 06:00:00.000000'))",
            &format!("AND {ptype} = 'object'),"),
            &format!("top_keys AS (SELECT is_latest, p, k FROM (SELECT is_latest, p, {keys_p} AS k FROM payloads) AS all_keys"),
            "WHERE substr(k, 1, 5) <> '_mdp_'),",
            &format!("members AS (SELECT is_latest, k, {member} AS v FROM top_keys),"),
            &format!("nested AS (SELECT is_latest, k, {keys_v} AS k2 FROM members WHERE {vtype} = 'object'),"),
            "fields AS (SELECT DISTINCT is_latest, k AS field FROM top_keys",
            "UNION SELECT DISTINCT is_latest, k || '.' || k2 AS field FROM nested)",
            "SELECT field, max(is_latest) AS in_latest, 1 - min(is_latest) AS in_earlier FROM fields",
            "GROUP BY field ORDER BY field",
        ])
    };
    assert_eq!(
        schema_drift::fields_sql(DUCK, &raw(), &windows, "r2", false).unwrap(),
        expected(
            "json_structure(\"_mdp_payload\")",
            "lower(json_type(\"_mdp_payload\"))",
            "unnest(json_keys(p))",
            "((p) -> (k))",
            "unnest(json_keys(v))",
            "lower(json_type(v))"
        )
    );
    assert_eq!(
        schema_drift::fields_sql(PG, &raw(), &windows, "r2", false).unwrap(),
        expected(
            "\"_mdp_payload\"",
            "jsonb_typeof(CAST(\"_mdp_payload\" AS jsonb))",
            "jsonb_object_keys(CAST(p AS jsonb))",
            "(CAST(p AS jsonb) -> (k))",
            "jsonb_object_keys(CAST(v AS jsonb))",
            "jsonb_typeof(CAST(v AS jsonb))"
        )
    );
}
