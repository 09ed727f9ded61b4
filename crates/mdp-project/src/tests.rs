//! Loading whole project files: every error a user can make, and the message they get.

use std::path::Path;

use crate::{parse, Project, ProjectError, SecretRef, TargetConfig};

/// A valid project; tests replace or append lines to break it.
const VALID: &str = "\
name: demo
reporting:
  currency: EUR
  timezone: Europe/Berlin
warehouse:
  default: local
  targets:
    local:
      type: duckdb
      path: warehouse.duckdb
    prod:
      type: postgres
      url: ${PG_URL}
      password: { env: PGPASSWORD }
sources:
  - name: google_ads
    platform: google_ads
    accounts: [\"1234567890\"]
    credentials:
      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }
";

fn env(name: &str) -> Option<String> {
    match name {
        "PG_URL" => Some("postgres://mdp@db.example.com:5432/analytics".to_owned()),
        "LOOKBACK" => Some("9".to_owned()),
        _ => None,
    }
}

fn load(yaml: &str) -> Result<crate::ProjectConfig, ProjectError> {
    parse(Path::new("mdp.yml"), yaml, &env)
}

/// Parses `yaml` and asserts the error's text contains `expected` (`mdp.yml:LINE:COLUMN: key: message`).
fn check(yaml: &str, expected: &str) {
    match load(yaml) {
        Ok(_) => panic!("expected an error containing {expected:?}, but the file loaded:\n{yaml}"),
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains(expected), "expected {expected:?} in:\n{text}\n--- input:\n{yaml}");
        }
    }
}

fn replace(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from}");
    VALID.replacen(from, to, 1)
}

#[test]
fn the_valid_project_loads_with_defaults_filled_in() {
    let config = load(VALID).unwrap_or_else(|error| panic!("{error}"));
    let source = &config.sources[0];
    assert!(source.enabled);
    assert_eq!(source.lookback_days, 30);
    assert_eq!(source.base_url, "https://googleads.googleapis.com");
    assert_eq!(source.api_version, "v26");
    assert_eq!(source.credentials["access_token"], SecretRef::Env("GOOGLE_ADS_ACCESS_TOKEN".into()));
    assert_eq!(config.warehouse.metadata_schema.as_str(), "mdp_meta");
    assert_eq!(config.warehouse.targets["local"].schema().as_str(), "main");
    let TargetConfig::Postgres(prod) = &config.warehouse.targets["prod"] else { panic!() };
    assert_eq!(prod.schema.as_str(), "public");
    assert_eq!(prod.display_redacted(), "postgres://mdp:***@db.example.com:5432/analytics");
}

#[test]
fn errors_from_parsing_point_at_the_line() {
    // Unknown keys, with the closest known one.
    check(
        &replace("    platform: google_ads\n", "    platform: google_ads\n    lookback: 3\n"),
        "mdp.yml:18:5: sources[0].lookback: unknown field `lookback`, expected one of",
    );
    check(
        &replace("    platform: google_ads\n", "    platform: google_ads\n    lookback: 3\n"),
        "(did you mean `lookback_days`?)",
    );
    check(
        &replace("      path: warehouse.duckdb\n", "      path: warehouse.duckdb\n      paht: x\n"),
        "mdp.yml:11:7: warehouse.targets.local.paht: unknown field `paht`",
    );
    check(&format!("{VALID}colour: blue\n"), "mdp.yml:21:1: colour: unknown field `colour`");
    // Wrong types.
    check(
        &replace("    platform: google_ads\n", "    platform: google_ads\n    lookback_days: thirty\n"),
        "mdp.yml:18:20: sources[0].lookback_days: invalid type: string \"thirty\", expected u32",
    );
    check(
        &replace("    platform: google_ads\n", "    platform: google_ads\n    enabled: 1\n"),
        "mdp.yml:18:14: sources[0].enabled: invalid type",
    );
    // Bad values, with the message of their newtype.
    check(
        &replace("currency: EUR", "currency: euro"),
        "mdp.yml:3:13: reporting.currency: expected a 3-letter ISO 4217 currency code such as EUR, got 'euro'",
    );
    check(
        &replace("timezone: Europe/Berlin", "timezone: Berlin"),
        "mdp.yml:4:13: reporting.timezone: expected an IANA time zone name such as Europe/Berlin or UTC, got 'Berlin'",
    );
    check(&replace("    platform: google_ads", "    platform: googel_ads"),
        "mdp.yml:17:15: sources[0].platform: unknown platform 'googel_ads' (did you mean 'google_ads'?); expected one of google_ads, meta_ads, tiktok_ads, linkedin_ads");
    check(&replace("name: demo", "name: My-Demo"), "mdp.yml:1:7: name: expected a lowercase name such as google_ads");
    check(
        &replace("type: duckdb", "type: sqlite"),
        "mdp.yml:9:13: warehouse.targets.local.type: unknown variant `sqlite`, expected one of `duckdb`, `postgres`, `snowflake`, `bigquery`",
    );
    check(
        &replace("    platform: google_ads\n", "    platform: google_ads\n    start_date: 2026-13-01\n"),
        "mdp.yml:18:17: sources[0].start_date: expected a date as YYYY-MM-DD such as 2026-01-01, got '2026-13-01'",
    );
    check(
        &replace("    accounts: [\"1234567890\"]\n", ""),
        "mdp.yml:16:3: sources[0].accounts: an enabled source needs at least one account id",
    );
    check("name: demo\n", "missing field `reporting`");
    check(
        "name: x\nreporting: 3\n",
        "mdp.yml:2:12: reporting: invalid type: integer `3`, expected a mapping of keys to values",
    );
    check(&replace("      path: warehouse.duckdb\n", ""), "mdp.yml:9:7: warehouse.targets.local: missing field `path`");
    check(
        &replace("      path: warehouse.duckdb\n", "      path: warehouse.duckdb\n      url: x\n"),
        "mdp.yml:11:7: warehouse.targets.local.url: unknown field `url`, expected one of `type`, `path`, `schema`",
    );
    check(
        &replace("type: postgres", "type: postgres\n      schema: Analytics"),
        "mdp.yml:13:15: warehouse.targets.prod.schema: expected a lowercase name",
    );
    check("# nothing yet\n\n", "mdp.yml:1:1: the project file is empty");
    check("name: demo\nreporting: {currency: EUR\n", "mdp.yml:3:1: did not find expected");
}

#[test]
fn inline_secrets_are_rejected_without_echoing_them() {
    let yaml = replace("access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }", "access_token: ya29.a0AfB_secret");
    check(&yaml, "mdp.yml:20:21: sources[0].credentials.access_token: credentials are never written inline; reference them as { env: VAR_NAME } or { file: path }");
    assert!(!load(&yaml).unwrap_err().to_string().contains("ya29"));
    check(
        &replace("password: { env: PGPASSWORD }", "password: hunter2"),
        "mdp.yml:14:17: warehouse.targets.prod.password: credentials are never written inline",
    );
    check(
        &replace("url: ${PG_URL}", "url: postgres://mdp:hunter2@db/analytics"),
        "mdp.yml:13:7: warehouse.targets.prod.url: the url contains a password written inline",
    );
}

#[test]
fn environment_variables_are_interpolated() {
    check(&replace("url: ${PG_URL}", "url: ${MDP_POSTGRES_URL}"),
        "mdp.yml:13:12: warehouse.targets.prod.url: environment variable MDP_POSTGRES_URL is not set; export it, or give a default with `${MDP_POSTGRES_URL:-default}`");
    let config = load(&replace(
        "    platform: google_ads\n",
        "    platform: google_ads\n    lookback_days: ${LOOKBACK:-5}\n    base_url: ${BASE:-http://127.0.0.1:8080}\n",
    ))
    .unwrap();
    assert_eq!(config.sources[0].lookback_days, 9);
    assert_eq!(config.sources[0].base_url, "http://127.0.0.1:8080");
    let config = load(&replace(
        "    platform: google_ads\n",
        "    platform: meta_ads\n    options: { conversion_action_types: [\"costs $$5 # not a comment\"] }\n",
    ))
    .unwrap();
    let meta = config.sources[0].options.meta_ads().unwrap();
    assert_eq!(meta.conversion_action_types, ["costs $5 # not a comment"]);
    // A parse error after a substitution on the same line is located in the raw text.
    check(
        &replace("    platform: google_ads\n", "    platform: google_ads\n    options: { a: ${LOOKBACK}, b: [ }\n"),
        "mdp.yml:18:37: did not find expected node content",
    );
}

#[test]
fn cross_field_problems_are_all_reported_at_once() {
    let duplicate = replace(
        "sources:\n",
        "sources:\n  - platform: google_ads\n    accounts: [1]\n    credentials: { access_token: { env: T } }\n",
    );
    check(&duplicate, "mdp.yml:16:3: sources[0].name: duplicate source name 'google_ads' (the default: the platform's name), also used by sources[1]");
    check(&duplicate, "mdp.yml:19:5: sources[1].name: duplicate source name 'google_ads', also used by sources[0]");

    check(
        &replace("default: local", "default: prd"),
        "mdp.yml:6:3: warehouse.default: no target named 'prd'; did you mean 'prod'? the targets are: local, prod",
    );

    let many = replace("default: local", "default: nowhere").replace(
        "      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
        "      acess_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
    ) + "  - platform: tiktok_ads\n    lookback_days: 500\n";
    let error = load(&many).unwrap_err();
    let ProjectError::Invalid { diagnostics, .. } = &error else { panic!("{error}") };
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert_eq!(lines, [
        "mdp.yml:6:3: warehouse.default: no target named 'nowhere'; the targets are: local, prod",
        "mdp.yml:19:5: sources[0].credentials: google_ads needs either 'access_token' or 'client_id', 'client_secret' and 'refresh_token' (a refresh token is what `mdp auth` writes), or 'service_account_key' (a service account's JSON key file); add them under `credentials:` as { env: VAR } or { file: path }",
        "mdp.yml:20:7: sources[0].credentials.acess_token: google_ads has no credential 'acess_token'; did you mean 'access_token'? its credentials are: access_token, client_id, client_secret, refresh_token, service_account_key, developer_token",
        "mdp.yml:21:3: sources[1].accounts: an enabled source needs at least one account id, e.g. `accounts: [\"1234567890\"]`, or set `enabled: false`",
        "mdp.yml:21:3: sources[1].credentials: tiktok_ads needs the credential 'access_token' (TikTok for Business long-term access token, sent as the `Access-Token` header); add `access_token: { env: TIKTOK_ADS_ACCESS_TOKEN }` under `credentials:`",
        "mdp.yml:22:5: sources[1].lookback_days: expected a number of days between 0 and 400, got 500; use `mdp backfill` to reload older data",
    ], "{error}");
    let text = error.to_string();
    assert!(text.starts_with("6 problems in mdp.yml:\n  mdp.yml:6:3: "), "{text}");
    assert!(text.lines().last().unwrap().starts_with("hint: "), "{text}");
}

#[test]
fn disabled_sources_need_neither_accounts_nor_credentials() {
    let config = load(&format!("{VALID}  - platform: linkedin_ads\n    enabled: false\n")).unwrap();
    assert_eq!(config.sources[1].name.as_str(), "linkedin_ads");
    assert!(!config.sources[1].enabled);
}

#[test]
fn projects_load_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let error = Project::load(dir.path()).unwrap_err().to_string();
    let shown = dir.path().display();
    assert_eq!(
        error,
        format!("no mdp.yml in {shown}: run `mdp init {shown}` to create a project, or pass --project-dir")
    );

    std::fs::write(dir.path().join("mdp.yml"), VALID).unwrap();
    let project = Project::load_with_env(dir.path(), &env).unwrap();
    assert_eq!(project.file, dir.path().join("mdp.yml"));
    assert_eq!(project.enabled_sources().count(), 1);
    assert_eq!(project.source("google_ads").unwrap().accounts, ["1234567890"]);
    assert_eq!(project.target(None).unwrap().0, "local");
    assert_eq!(project.target(Some("prod")).unwrap().1.type_name(), "postgres");
    assert_eq!(
        project.target(Some("prdo")).unwrap_err().to_string(),
        "no warehouse target named 'prdo' (did you mean 'prod'?); the targets in mdp.yml are: local, prod"
    );

    std::fs::write(dir.path().join("mdp.yml"), replace("currency: EUR", "currency: eur")).unwrap();
    let error = Project::load_with_env(dir.path(), &env).unwrap_err().to_string();
    assert!(error.contains(&format!("{}:3:13: reporting.currency", dir.path().join("mdp.yml").display())), "{error}");
}

#[test]
fn a_project_without_checks_gets_default_monitors() {
    let config = load(VALID).unwrap();
    assert!(config.checks.is_none());
    let defaults = crate::checks::ChecksConfig::default();
    assert!(defaults.freshness.enabled && defaults.volume.enabled && defaults.schema_drift.enabled);
    assert_eq!((defaults.volume.weeks, defaults.volume.warn, defaults.volume.fail), (4, 0.5, 0.8));
    assert_eq!(defaults.spend_anomaly.window_days, 28);
    assert!(defaults.kpi_targets.is_empty());
}

#[test]
fn the_checks_section_parses_overrides_and_kpi_targets() {
    let yaml = format!(
        "{VALID}checks:\n  freshness:\n    warn_after_days: 2\n    overrides:\n      - {{ source: google_ads, stream: ad_daily, error_after_days: 5 }}\n  volume: {{ weeks: 3, min_history: 3 }}\n  kpi_targets:\n    - {{ name: cpa_google, metric: cpa, max: 40, level: campaign, platform: google_ads, window_days: 7 }}\n    - {{ metric: roas, min: 2, severity: fail }}\n"
    );
    let config = load(&yaml).unwrap();
    let checks = config.checks.unwrap();
    let t = checks.freshness.thresholds("google_ads", "ad_daily");
    assert_eq!((t.warn_after_days, t.error_after_days, t.warn_after_hours), (2, 5, 36));
    assert_eq!(checks.freshness.thresholds("google_ads", "campaign_daily").error_after_days, 3);
    assert_eq!(checks.volume.weeks, 3);
    assert_eq!(checks.kpi_targets[0].display_name(), "cpa_google");
    assert_eq!(checks.kpi_targets[1].display_name(), "roas_campaign");
    assert_eq!(checks.kpi_targets[1].severity, crate::checks::Severity::Fail);
}

#[test]
fn bad_check_settings_are_reported_where_they_are_written() {
    let with = |section: &str| format!("{VALID}checks:\n{section}");
    check(&with("  volume: { warn: 0.9, fail: 0.5 }\n"), "checks.volume.warn: warn (0.9) is greater than fail (0.5)");
    check(&with("  freshness:\n    overrides:\n      - { source: gogle_ads }\n"), "no source named 'gogle_ads'");
    check(
        &with("  freshness:\n    overrides:\n      - { source: google_ads, stream: daily }\n"),
        "source 'google_ads' has no daily stream 'daily'",
    );
    check(&with("  kpi_targets:\n    - { metric: cpa }\n"), "give `min`, `max` or both");
    check(
        &with("  kpi_targets:\n    - { metric: cpa, max: 40, platform: meta_ads }\n"),
        "no enabled source reads meta_ads",
    );
    check(&with("  kpi_targets:\n    - { metric: cpx, max: 40 }\n"), "cpx");
    check(&with("  spend_anomaly: { window_days: 10, min_history: 20 }\n"), "checks.spend_anomaly.min_history");
    check(
        &with("  kpi_targets:\n    - { metric: cpa, max: 40 }\n    - { metric: cpa, max: 50 }\n"),
        "duplicate KPI target name 'cpa_campaign'",
    );
}

#[test]
fn options_are_typed_per_platform_and_checked_where_written() {
    let config = load(&replace(
        "    platform: google_ads\n",
        "    platform: google_ads\n    options:\n      login_customer_id: 111-222-3333\n",
    ))
    .unwrap();
    assert_eq!(config.sources[0].options.google_ads().unwrap().login_customer_id.as_deref(), Some("1112223333"));
    assert_eq!(
        load(VALID).unwrap().sources[0].options,
        mdp_core::SourceOptions::defaults(mdp_core::Platform::GoogleAds),
        "no options: the platform's defaults"
    );

    let bad = replace(
        "    platform: google_ads\n",
        "    platform: google_ads\n    options:\n      login_customer_id: act_1\n      login_customer: 1\n",
    );
    check(&bad, "mdp.yml:19:7: sources[0].options.login_customer_id: a Google Ads customer id is 10 digits like 123-456-7890, not \"act_1\"");
    check(&bad, "mdp.yml:20:7: sources[0].options.login_customer: google_ads has no option 'login_customer'; did you mean 'login_customer_id'? its options are: login_customer_id");
    check(
        &replace("    platform: google_ads\n", "    platform: meta_ads\n    options: { page_size: 5000 }\n"),
        "sources[0].options.page_size: expected a number from 1 to 500, got 5000",
    );
}

#[test]
fn oauth_sources_take_a_refresh_set_and_their_endpoints_can_be_overridden() {
    let refresh = replace(
        "      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
        "      client_id: { env: CID }\n      client_secret: { env: CSECRET }\n      refresh_token: { file: secrets/rt }\n",
    );
    let config = load(&refresh).unwrap();
    let google = &config.sources[0];
    let oauth = google.oauth.as_ref().unwrap();
    assert_eq!(oauth.token_url, "https://oauth2.googleapis.com/token", "the platform's default");
    assert_eq!(oauth.authorize_url, "https://accounts.google.com/o/oauth2/v2/auth");
    assert_eq!(google.credentials["refresh_token"], SecretRef::File("secrets/rt".into()));

    let sandbox = refresh.replace(
        "    credentials:\n      client_id",
        "    oauth:\n      token_url: http://127.0.0.1:8787/token\n    credentials:\n      client_id",
    );
    let oauth = load(&sandbox).unwrap().sources[0].oauth.clone().unwrap();
    assert_eq!(oauth.token_url, "http://127.0.0.1:8787/token");
    assert_eq!(oauth.authorize_url, "https://accounts.google.com/o/oauth2/v2/auth", "left to its default");

    let partial = replace(
        "      access_token: { env: GOOGLE_ADS_ACCESS_TOKEN }\n",
        "      refresh_token: { file: secrets/rt }\n",
    );
    let error = load(&partial).unwrap_err().to_string();
    assert!(error.contains("'client_id', 'client_secret' are missing"), "{error}");

    let typo = sandbox.replace("      token_url:", "      token_uri:");
    let error = load(&typo).unwrap_err().to_string();
    assert!(error.contains("unknown field `token_uri`"), "{error}");
}

#[test]
fn a_snowflake_target_names_its_account_and_refers_to_its_credentials() {
    let snowflake =
        "      password: { env: PGPASSWORD }\n    snow:\n      type: snowflake\n      account: myorg-myaccount\n      \
                     user: MDP_LOADER\n      private_key: { file: keys/mdp.p8 }\n      database: ANALYTICS\n      \
                     warehouse: LOAD_WH\n      role: MDP\n";
    let config = load(&replace("      password: { env: PGPASSWORD }\n", snowflake)).unwrap_or_else(|e| panic!("{e}"));
    let TargetConfig::Snowflake(target) = &config.warehouse.targets["snow"] else { panic!("not a snowflake target") };
    assert_eq!((target.account.as_str(), target.user.as_str()), ("myorg-myaccount", "MDP_LOADER"));
    assert_eq!(target.private_key, Some(SecretRef::File("keys/mdp.p8".into())));
    assert_eq!((target.database.as_str(), target.schema.as_str()), ("ANALYTICS", "public"));
    assert_eq!(target.warehouse.as_deref(), Some("LOAD_WH"));
    assert!(target.password.is_none() && target.url.is_none());

    let no_credentials = snowflake.replace("      private_key: { file: keys/mdp.p8 }\n", "");
    check(&replace("      password: { env: PGPASSWORD }\n", &no_credentials), "needs `private_key: { file:");
    let both = snowflake.replace("role: MDP\n", "role: MDP\n      password: { env: SNOWFLAKE_PASSWORD }\n");
    check(&replace("      password: { env: PGPASSWORD }\n", &both), "takes `password` or `private_key`, not both");
    let no_account = snowflake.replace("      account: myorg-myaccount\n", "");
    check(&replace("      password: { env: PGPASSWORD }\n", &no_account), "missing field `account`");
    let duckdb_with_account =
        replace("      path: warehouse.duckdb\n", "      path: warehouse.duckdb\n      account: x\n");
    check(&duckdb_with_account, "unknown field `account`");
}

#[test]
fn a_bigquery_target_names_its_project_and_dataset_and_refers_to_its_key() {
    let bigquery =
        "      password: { env: PGPASSWORD }\n    bq:\n      type: bigquery\n      project: my-proj-123\n      \
                    dataset: marketing\n      location: EU\n      keyfile: { file: keys/sa.json }\n";
    let config = load(&replace("      password: { env: PGPASSWORD }\n", bigquery)).unwrap_or_else(|e| panic!("{e}"));
    let TargetConfig::BigQuery(target) = &config.warehouse.targets["bq"] else { panic!("not a bigquery target") };
    assert_eq!((target.project.as_str(), target.dataset.as_str()), ("my-proj-123", "marketing"));
    assert_eq!(target.location.as_deref(), Some("EU"));
    assert_eq!(target.keyfile, Some(SecretRef::File("keys/sa.json".into())));
    assert_eq!(config.warehouse.targets["bq"].schema().as_str(), "marketing", "the dataset is the target's schema");
    let adc = bigquery.replace("      keyfile: { file: keys/sa.json }\n", "");
    let config = load(&replace("      password: { env: PGPASSWORD }\n", &adc)).unwrap_or_else(|e| panic!("{e}"));
    let TargetConfig::BigQuery(target) = &config.warehouse.targets["bq"] else { panic!("not a bigquery target") };
    assert!(target.keyfile.is_none() && target.token.is_none(), "neither: application default credentials");
    let both = bigquery.replace("location: EU\n", "location: EU\n      token: { env: GOOGLE_OAUTH_ACCESS_TOKEN }\n");
    check(&replace("      password: { env: PGPASSWORD }\n", &both), "takes `keyfile` or `token`, not both");
    let no_dataset = bigquery.replace("      dataset: marketing\n", "");
    check(&replace("      password: { env: PGPASSWORD }\n", &no_dataset), "missing field `dataset`");
    let with_account = bigquery.replace("location: EU\n", "location: EU\n      account: x\n");
    check(
        &replace("      password: { env: PGPASSWORD }\n", &with_account),
        "unknown field `account`, expected one of `type`, `project`",
    );
}
