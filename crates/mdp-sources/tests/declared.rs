//! The declared engine against an imitation it was not written for: TikTok's reporting API described
//! as a connector spec (`fixtures/tiktok_spec_ads.yml`), read from the sandbox's TikTok over HTTP. Its
//! rows equal the sandbox's truth and the hand-written TikTok connector's records field by field; the
//! platform's HTTP-200 error envelopes are retried or reported as its spec's rules say.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use chrono::Days;
use mdp_core::{DateWindow, Platform};
use mdp_sandbox::{Fault, FaultKind, Sandbox};
use mdp_sources::record::PerformanceRecord;
use mdp_sources::{configure, Credential, ReadContext, Source, SourceError, SourceSettings};
use rust_decimal::Decimal;

mod common;

use common::{collect_daily, collect_entities, context, start_sandbox, today};

const TOKEN: &str = "sandbox-token-DO-NOT-LEAK-d41e";

/// The spec, registered (once per test process; the same text each time).
fn spec_platform() -> Platform {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiktok_spec_ads.yml");
    let text = std::fs::read_to_string(&file).unwrap();
    let (spec, lines) = mdp_spec::parse(&file, &text).unwrap_or_else(|e| panic!("{e}"));
    mdp_spec::register(spec, file, lines).platform()
}

fn settings(platform: Platform, addr: SocketAddr, sandbox: &Sandbox) -> SourceSettings {
    SourceSettings {
        name: platform.as_str().to_string(),
        platform,
        base_url: format!("http://{addr}"),
        api_version: "v1.3".into(),
        accounts: sandbox.world.accounts(Platform::TikTokAds).map(|a| a.id.clone()).collect(),
        credentials: BTreeMap::from([("access_token".to_string(), Credential::new(TOKEN))]),
        token_url: None,
        options: mdp_sources::SourceOptions::defaults(platform),
    }
}

async fn daily(
    source: &dyn Source,
    account: &mdp_sources::AccountInfo,
    window: DateWindow,
    ctx: &ReadContext,
) -> Result<Vec<PerformanceRecord>, SourceError> {
    collect_daily(source, "ad_daily", account, window, ctx).await
}

async fn entities(source: &dyn Source, name: &str, account: &mdp_sources::AccountInfo, ctx: &ReadContext) -> usize {
    let rows = collect_entities(source, name, account, ctx).await.unwrap();
    assert!(rows.iter().all(|e| e.account_id == account.id && !e.id.is_empty() && e.name.is_some()));
    rows.len()
}

#[tokio::test]
async fn a_spec_reads_the_same_rows_as_the_hand_written_connector_and_matches_the_truth() {
    let platform = spec_platform();
    let (sandbox, addr) = start_sandbox().await;
    let declared = configure(settings(platform, addr, &sandbox)).unwrap();
    let mut handwritten_settings = settings(Platform::TikTokAds, addr, &sandbox);
    handwritten_settings.options = mdp_sources::SourceOptions::defaults(Platform::TikTokAds);
    let handwritten = configure(handwritten_settings).unwrap();
    let ctx = context();
    // Longer than the API's 30-day limit: split into windows by the engine.
    let window = DateWindow::new(today() - Days::new(44), today()).unwrap();
    for account_id in &declared.settings().accounts {
        let account = declared.account(account_id, &ctx).await.unwrap();
        let truth_account = sandbox.world.account(Platform::TikTokAds, account_id).unwrap();
        assert_eq!(
            (account.currency.as_str(), account.timezone.as_str()),
            (truth_account.currency, truth_account.timezone)
        );
        let reference = handwritten.account(account_id, &ctx).await.unwrap();
        for stream in ["campaigns", "ad_groups", "ads"] {
            assert_eq!(
                entities(declared.as_ref(), stream, &account, &ctx).await,
                entities(handwritten.as_ref(), stream, &reference, &ctx).await,
                "{stream}"
            );
        }

        let mut rows = daily(declared.as_ref(), &account, window, &ctx).await.unwrap();
        let mut expected = daily(handwritten.as_ref(), &reference, window, &ctx).await.unwrap();
        let key = |r: &PerformanceRecord| (r.date, r.ad_id.clone());
        rows.sort_by_key(key);
        expected.sort_by_key(key);
        assert!(!rows.is_empty());
        assert_eq!(rows.len(), expected.len());
        for (got, want) in rows.iter().zip(&expected) {
            // Field by field, payload included (both keep the API's own row text).
            assert_eq!(got, want);
        }

        // And the truth, day by day.
        let truth = sandbox.truth(Platform::TikTokAds, account_id, window.start(), window.end()).unwrap();
        for (day, m) in truth {
            let day_rows: Vec<&PerformanceRecord> = rows.iter().filter(|r| r.date == Some(day)).collect();
            let spend: Decimal = day_rows.iter().map(|r| r.spend).sum();
            let impressions: i64 = day_rows.iter().map(|r| r.impressions).sum();
            assert_eq!((impressions, spend), (m.impressions, Decimal::new(m.spend_micros, 6)), "{account_id} {day}");
        }
    }
}

#[tokio::test]
async fn the_platforms_error_envelopes_follow_the_specs_rules() {
    let platform = spec_platform();
    let (sandbox, addr) = start_sandbox().await;
    let source = configure(settings(platform, addr, &sandbox)).unwrap();
    let ctx = context();
    let account_id = source.settings().accounts[0].clone();
    let account = source.account(&account_id, &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(6), today()).unwrap();
    let clean = daily(source.as_ref(), &account, window, &ctx).await.unwrap();

    // HTTP 200 + code 40100 (rate limit) and 50000 (system error), a cut-off body: retried.
    for kind in [FaultKind::RateLimit { retry_after_secs: 0 }, FaultKind::ServerError, FaultKind::TruncatedJson] {
        sandbox.faults.push(Fault { platform: Some(Platform::TikTokAds), kind, count: 2 });
        let rows = daily(source.as_ref(), &account, window, &ctx).await.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(rows.len(), clean.len(), "{kind:?}: the same rows after recovering");
    }
    let retried = ctx.http.stats.retries.load(std::sync::atomic::Ordering::Relaxed);
    assert!(retried >= 6, "each fault retried: {retried}");

    // HTTP 200 + code 40105 (expired token): an auth error, not retried, no token in it.
    sandbox.faults.push(Fault { platform: Some(Platform::TikTokAds), kind: FaultKind::Unauthorized, count: 1 });
    let requests = ctx.http.stats.requests.load(std::sync::atomic::Ordering::Relaxed);
    let error = daily(source.as_ref(), &account, window, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Auth { ref code, .. } if code == "40105"), "{error}");
    assert!(!error.to_string().contains(TOKEN));
    assert_eq!(ctx.http.stats.requests.load(std::sync::atomic::Ordering::Relaxed), requests + 1, "not retried");

    // An account the token cannot see: the platform's own message (code 40002), final.
    let error = source.account("999", &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Platform { ref code, .. } if code == "40002"), "{error}");
    assert!(error.to_string().contains("does not exist or you have no permission"), "{error}");
}

/// An account as the source describes it (its currency and time zone checked against the sandbox's),
/// with each ad's campaign and ad group from the ads stream; the campaigns stream is read too.
async fn account_and_ad_parents(
    sandbox: &Sandbox,
    source: &dyn Source,
    account_id: &str,
    ctx: &ReadContext,
) -> (mdp_sources::AccountInfo, std::collections::HashMap<String, (Option<String>, Option<String>)>) {
    let account = source.account(account_id, ctx).await.unwrap();
    let truth = sandbox.world.account(source.settings().platform, account_id).unwrap();
    assert_eq!((account.currency.as_str(), account.timezone.as_str()), (truth.currency, truth.timezone));
    let ads = collect_entities(source, "ads", &account, ctx).await.unwrap();
    let parents = ads.into_iter().map(|ad| (ad.id, (ad.campaign_id, ad.ad_group_id))).collect();
    assert!(entities(source, "campaigns", &account, ctx).await > 0);
    (account, parents)
}

/// Each day's totals of `rows` (an account's daily records over `window`) equal the sandbox's truth, with
/// conversions counted as the source is configured to count them.
fn assert_days_match_truth(
    sandbox: &Sandbox,
    source: &dyn Source,
    account_id: &str,
    window: DateWindow,
    rows: &[PerformanceRecord],
) {
    let platform = source.settings().platform;
    let truth = sandbox.truth(platform, account_id, window.start(), window.end()).unwrap();
    let options = &source.settings().options;
    let conversions = sandbox.conversion_truth(account_id, window.start(), window.end(), options).unwrap();
    for ((day, m), (_, count, value)) in truth.into_iter().zip(conversions) {
        let day_rows: Vec<&PerformanceRecord> = rows.iter().filter(|r| r.date == Some(day)).collect();
        let got = (
            day_rows.iter().map(|r| r.impressions).sum::<i64>(),
            day_rows.iter().map(|r| r.clicks).sum::<i64>(),
            day_rows.iter().map(|r| r.spend).sum::<Decimal>(),
            day_rows.iter().map(|r| r.conversions).sum::<Decimal>(),
            day_rows.iter().map(|r| r.conversion_value).sum::<Decimal>(),
        );
        let expected =
            (m.impressions, m.clicks, Decimal::new(m.spend_micros, 6), Decimal::new(count, 6), Decimal::new(value, 6));
        assert_eq!(got, expected, "{platform} {account_id} on {day}: (impressions, clicks, spend, conversions, value)");
    }
}

/// The account's daily rows over `window`: there are some, each has its ad's campaign and ad group as
/// `parents` (the ads stream) has them, and each day's totals equal the sandbox's truth.
async fn daily_rows_reconcile(
    sandbox: &Sandbox,
    source: &dyn Source,
    account: &mdp_sources::AccountInfo,
    parents: &std::collections::HashMap<String, (Option<String>, Option<String>)>,
    window: DateWindow,
    ctx: &ReadContext,
) -> Vec<PerformanceRecord> {
    let rows = daily(source, account, window, ctx).await.unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        let ad = row.ad_id.as_ref().unwrap();
        assert_eq!((row.campaign_id.clone(), row.ad_group_id.clone()), parents[ad], "ids of ad {ad}");
    }
    assert_days_match_truth(sandbox, source, &account.id, window, &rows);
    rows
}

/// A source on the built-in spec `name`, reading every account the sandbox imitates for it with a fixed
/// access token.
fn built_in(name: &str, api_version: &str, addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    mdp_spec::register_builtin();
    let platform: Platform = name.parse().expect("a built-in spec");
    let settings = SourceSettings {
        name: name.into(),
        platform,
        base_url: format!("http://{addr}"),
        api_version: api_version.into(),
        accounts: sandbox.world.accounts(platform).map(|a| a.id.clone()).collect(),
        credentials: BTreeMap::from([("access_token".to_string(), Credential::new(TOKEN))]),
        token_url: None,
        options: mdp_sources::SourceOptions::defaults(platform),
    };
    (platform, settings)
}

/// `settings` renewing their access token at the sandbox's `token_path` from a refresh token the sandbox
/// granted the app `client_id` (kept in memory, or in `file` to be rewritten when it rotates).
fn with_refresh_set(
    mut settings: SourceSettings,
    sandbox: &Sandbox,
    client_id: &str,
    token_path: &str,
    file: Option<&Path>,
) -> SourceSettings {
    let refresh_token = sandbox.oauth.grant(settings.platform, client_id);
    let refresh = match file {
        Some(file) => {
            mdp_sources::auth::write_secret_file(file, &refresh_token).unwrap();
            Credential::new(refresh_token).with_file(file.to_path_buf())
        }
        None => Credential::new(refresh_token),
    };
    settings.credentials = BTreeMap::from([
        ("client_id".to_string(), Credential::new(client_id)),
        ("client_secret".to_string(), Credential::new(format!("{client_id}-secret"))),
        ("refresh_token".to_string(), refresh),
    ]);
    let origin = settings.base_url.clone();
    settings.token_url = Some(format!("{origin}{token_path}"));
    settings
}

/// Reddit Ads, a built-in spec, against the sandbox's Reddit imitation.
fn reddit(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    built_in("reddit_ads", "v3", addr, sandbox)
}

#[tokio::test]
async fn reddit_reconciles_with_the_sandbox_truth_and_takes_parents_from_the_ads() {
    let (sandbox, addr) = start_sandbox().await;
    let (_, settings) = reddit(addr, &sandbox);
    assert_eq!(settings.accounts.len(), 2, "the sandbox imitates two Reddit accounts");
    let source = configure(settings).unwrap();
    let ctx = context();
    // 45 days: two report windows of at most 30 days, each paged by next_url (POSTed again).
    let window = DateWindow::new(today() - Days::new(44), today()).unwrap();
    for account_id in &source.settings().accounts {
        let (account, parents) = account_and_ad_parents(&sandbox, source.as_ref(), account_id, &ctx).await;

        daily_rows_reconcile(&sandbox, source.as_ref(), &account, &parents, window, &ctx).await;
    }
}

#[tokio::test]
async fn reddit_survives_rate_limits_and_reports_auth_and_sunset() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, mut settings) = reddit(addr, &sandbox);
    let source = configure(settings.clone()).unwrap();
    let ctx = context();
    let account = source.account(&source.settings().accounts[0], &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(6), today()).unwrap();
    let clean = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
    for kind in [FaultKind::RateLimit { retry_after_secs: 0 }, FaultKind::ServerError, FaultKind::TruncatedJson] {
        sandbox.faults.push(Fault { platform: Some(platform), kind, count: 2 });
        let rows = daily(source.as_ref(), &account, window, &ctx).await.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(rows.len(), clean.len(), "{kind:?}");
    }
    sandbox.faults.push(Fault { platform: Some(platform), kind: FaultKind::Unauthorized, count: 1 });
    let error = daily(source.as_ref(), &account, window, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Auth { .. }), "{error}");
    assert!(!error.to_string().contains(TOKEN));

    // The v2 API is gone: the spec's rule makes the 410 a sunset, naming the version to use.
    settings.api_version = "v2.0".into();
    let old = configure(settings).unwrap();
    let error = old.account(&old.settings().accounts[0], &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::SunsetVersion { .. }), "{error}");
    assert!(error.to_string().contains("v3") && error.to_string().contains("2025-09-30"), "{error}");
}

#[tokio::test]
async fn reddit_renews_its_hour_long_token_with_basic_client_authentication() {
    let (sandbox, addr) = start_sandbox().await;
    let (_, settings) = reddit(addr, &sandbox);
    // The sandbox's token endpoint refuses a client that is not in the Basic header.
    let settings = with_refresh_set(settings, &sandbox, "reddit-app-id", "/api/v1/access_token", None);
    let source = configure(settings).unwrap();
    let ctx = context();
    let account = source.account(&source.settings().accounts[0], &ctx).await.unwrap();
    let rows = daily(source.as_ref(), &account, DateWindow::new(today() - Days::new(2), today()).unwrap(), &ctx)
        .await
        .unwrap();
    assert!(!rows.is_empty());
    assert_eq!(sandbox.oauth.issued(), 1, "one access token, renewed from the refresh token and used since");
    assert_eq!(sandbox.oauth.refused_expired(), 0);
}

/// Snapchat Ads, a built-in spec, against the sandbox's Snapchat: its accounts keep days in New York and
/// Sydney, whose offsets change on 2026-03-08 and 2026-04-05.
fn snapchat(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    built_in("snapchat_ads", "v1", addr, sandbox)
}

#[tokio::test]
async fn snapchat_reads_days_at_local_midnights_across_dst_changes_and_reconciles() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, settings) = snapchat(addr, &sandbox);
    assert_eq!(settings.accounts.len(), 2, "the sandbox imitates two Snapchat ad accounts");
    let source = configure(settings).unwrap();
    let ctx = context();
    // 55 days over both accounts' DST changes: two stats windows (31 + 24 days), each bounded by local
    // midnights whose offsets differ from one end to the other.
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let window = DateWindow::new(day(2, 20), day(4, 15)).unwrap();
    for account_id in &source.settings().accounts {
        let (account, parents) = account_and_ad_parents(&sandbox, source.as_ref(), account_id, &ctx).await;
        // An ad names its ad squad only: its campaign comes from the ad squads stream, and is the world's.
        let world = sandbox.world.account(platform, account_id).unwrap();
        for campaign in &world.campaigns {
            for ad in campaign.ad_groups.iter().flat_map(|g| &g.ads) {
                assert_eq!(parents[&ad.id].0.as_deref(), Some(campaign.id.as_str()), "campaign of ad {}", ad.id);
            }
        }
        let rows = daily_rows_reconcile(&sandbox, source.as_ref(), &account, &parents, window, &ctx).await;
        assert!(rows.iter().any(|r| r.date == Some(day(3, 8))) && rows.iter().any(|r| r.date == Some(day(4, 5))));
    }
}

/// The trap the spec's `window.start_at` avoids is real in the imitation: a day bound written with a fixed
/// offset (the one of the window's first day) is 01:00 on the far side of a DST change, and Snap refuses it.
#[tokio::test]
async fn snapchat_refuses_day_bounds_with_another_days_offset() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, _) = snapchat(addr, &sandbox);
    let account = sandbox.world.accounts(platform).find(|a| a.timezone == "America/New_York").unwrap();
    let stats = |start: &str, end: &str| {
        let url = format!("http://{addr}/v1/adaccounts/{}/stats", account.id);
        let query = [
            ("granularity", "DAY"),
            ("breakdown", "ad"),
            ("fields", "spend"),
            ("start_time", start),
            ("end_time", end),
        ];
        let request = reqwest::Client::new().get(url).query(&query).bearer_auth(TOKEN);
        async move {
            let answer = request.send().await.unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        }
    };
    let (status, body) = stats("2026-03-01T00:00:00-05:00", "2026-03-20T00:00:00-05:00").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("start of a day (00:00:00)") && body.contains("America/New_York"), "{body}");
    let (status, body) = stats("2026-03-01T00:00:00-05:00", "2026-03-20T00:00:00-04:00").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = stats("2026-03-01T00:00:00-05:00", "2026-04-03T00:00:00-04:00").await;
    assert_eq!(status, 400, "33 days: {body}");
    assert!(body.contains("more than 32 days"), "{body}");
}

#[tokio::test]
async fn snapchat_survives_faults_and_renews_its_half_hour_token() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, settings) = snapchat(addr, &sandbox);
    let settings = with_refresh_set(settings, &sandbox, "snap-app-id", "/login/oauth2/access_token", None);
    let source = configure(settings).unwrap();
    let ctx = context();
    let account = source.account(&source.settings().accounts[0], &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(6), today()).unwrap();
    let clean = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
    assert!(!clean.is_empty());
    assert_eq!(sandbox.oauth.issued(), 1, "one access token, renewed from the refresh token and used since");
    // An access token refused (expired early) is renewed once and the read goes on.
    sandbox.faults.push(Fault { platform: Some(platform), kind: FaultKind::Unauthorized, count: 1 });
    assert_eq!(daily(source.as_ref(), &account, window, &ctx).await.unwrap(), clean);
    assert_eq!(sandbox.oauth.issued(), 2);
    // A day without delivery yet is no ads in the stats (omit_empty): no rows, not an error.
    let tomorrow = DateWindow::new(today() + Days::new(1), today() + Days::new(1)).unwrap();
    assert!(daily(source.as_ref(), &account, tomorrow, &ctx).await.unwrap().is_empty());
    // Snap's 400 envelope is a final error that carries its debug message.
    sandbox.retire_field(platform, "conversion_purchases_value");
    let error = daily(source.as_ref(), &account, window, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Platform { .. }), "{error}");
    assert!(error.to_string().contains("Invalid stats field: conversion_purchases_value"), "{error}");
    assert!(!error.to_string().contains("snap-app-id-secret"), "{error}");
}

/// Pinterest, a built-in spec whose report is an asynchronous job with a JSON file keyed by ad, against
/// the sandbox's Pinterest. Its app authenticates at the token endpoint with HTTP Basic, and its continuous
/// refresh tokens rotate: the new one is saved to the credential's file.
fn pinterest(addr: SocketAddr, sandbox: &Sandbox, refresh_file: &Path) -> (Platform, SourceSettings) {
    let (platform, settings) = built_in("pinterest_ads", "v5", addr, sandbox);
    (platform, with_refresh_set(settings, sandbox, "pinterest-app-id", "/v5/oauth/token", Some(refresh_file)))
}

#[tokio::test]
async fn pinterest_reports_keyed_by_ad_reconcile_and_rotated_refresh_tokens_are_saved() {
    let (sandbox, addr) = start_sandbox().await;
    sandbox.oauth.set(mdp_sandbox::OAuthSettings { rotate_refresh_tokens: true, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pinterest_refresh_token");
    let (_, settings) = pinterest(addr, &sandbox, &file);
    let first = std::fs::read_to_string(&file).unwrap();
    assert_eq!(settings.accounts.len(), 2, "the sandbox imitates two Pinterest ad accounts");
    let source = configure(settings).unwrap();
    let ctx = quick_polls();
    // 45 days: one report per account (Pinterest's reports span up to 186 days), its rows under each ad's key.
    let window = DateWindow::new(today() - Days::new(44), today()).unwrap();
    for account_id in &source.settings().accounts {
        let (account, parents) = account_and_ad_parents(&sandbox, source.as_ref(), account_id, &ctx).await;
        daily_rows_reconcile(&sandbox, source.as_ref(), &account, &parents, window, &ctx).await;
    }
    assert_eq!(sandbox.pinterest.created(), 2, "one report an account");
    assert_eq!(sandbox.pinterest.downloads_with_auth(), 0, "the storage URL is fetched without credentials");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert_ne!(saved.trim(), first.trim(), "the rotated refresh token replaced the first in its file");
    assert!(sandbox.oauth.refresh_token_valid(saved.trim()), "the file holds the current refresh token");
}

#[tokio::test]
async fn pinterest_jobs_survive_expired_urls_and_report_failures() {
    let (sandbox, addr) = start_sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let (platform, settings) = pinterest(addr, &sandbox, &dir.path().join("rt"));
    let source = configure(settings).unwrap();
    let (account, window) = job_faults(&sandbox, platform, source.as_ref(), &sandbox.pinterest, "FAILED").await;
    let ctx = quick_polls();
    // A column Pinterest no longer serves is its 400 {code, message}: final, with the message.
    sandbox.retire_field(platform, "TOTAL_CHECKOUT_VALUE_IN_MICRO_DOLLAR");
    let error = daily(source.as_ref(), &account, window, &ctx).await.unwrap_err();
    assert!(error.to_string().contains("Invalid column: TOTAL_CHECKOUT_VALUE_IN_MICRO_DOLLAR"), "{error}");
    assert!(!error.to_string().contains("pinterest-app-id-secret"), "{error}");
}

/// A report job's faults, on the first account over the last week: an expired storage URL and rate limits
/// are waited out (the same rows as a clean read), and a job the platform fails stops the read naming its
/// status `failed`. Gives the account and the week.
async fn job_faults<J>(
    sandbox: &Sandbox,
    platform: Platform,
    source: &dyn Source,
    jobs: &mdp_sandbox::jobs::Reports<J>,
    failed: &str,
) -> (mdp_sources::AccountInfo, DateWindow) {
    let ctx = quick_polls();
    let account = source.account(&source.settings().accounts[0], &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(6), today()).unwrap();
    let clean = daily(source, &account, window, &ctx).await.unwrap();
    assert!(!clean.is_empty());
    jobs.expire_next_urls(1);
    sandbox.faults.push(Fault {
        platform: Some(platform),
        kind: FaultKind::RateLimit { retry_after_secs: 0 },
        count: 2,
    });
    assert_eq!(daily(source, &account, window, &ctx).await.unwrap(), clean);
    jobs.fail_next(1);
    let error = daily(source, &account, window, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Platform { .. }) && error.to_string().contains(failed), "{error}");
    (account, window)
}

/// Microsoft Advertising, a built-in spec over three hosts (one sandbox serves them all, as a source's own
/// base_url does), ad groups listed per campaign and ads per ad group, and a report job whose file is a
/// zip archive of one CSV file.
fn microsoft(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    let (platform, mut settings) = built_in("microsoft_ads", "v13", addr, sandbox);
    settings.credentials.insert("developer_token".into(), Credential::new("sandbox-developer-token"));
    (platform, settings)
}

#[tokio::test]
async fn microsoft_lists_entities_per_parent_and_its_zipped_csv_reports_reconcile() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, settings) = microsoft(addr, &sandbox);
    assert_eq!(settings.accounts.len(), 2, "the sandbox imitates two Microsoft Advertising accounts");
    let source = configure(settings).unwrap();
    let ctx = quick_polls();
    let window = DateWindow::new(today() - Days::new(44), today()).unwrap();
    for account_id in &source.settings().accounts {
        // The account's Microsoft time zone name maps to its IANA zone.
        let (account, parents) = account_and_ad_parents(&sandbox, source.as_ref(), account_id, &ctx).await;
        // Ad groups name no campaign and ads no ad group: the parent each was asked for fills them.
        let world = sandbox.world.account(platform, account_id).unwrap();
        let groups = collect_entities(source.as_ref(), "ad_groups", &account, &ctx).await.unwrap();
        for campaign in &world.campaigns {
            for group in &campaign.ad_groups {
                let read = groups.iter().find(|g| g.id == group.id).expect("every ad group is listed");
                assert_eq!(read.campaign_id.as_deref(), Some(campaign.id.as_str()));
                for ad in &group.ads {
                    assert_eq!(parents[&ad.id], (Some(campaign.id.clone()), Some(group.id.clone())), "ad {}", ad.id);
                }
            }
        }
        daily_rows_reconcile(&sandbox, source.as_ref(), &account, &parents, window, &ctx).await;
    }
    assert_eq!(sandbox.microsoft.created(), 2, "one report an account (92-day windows)");
    assert_eq!(sandbox.microsoft.downloads_with_auth(), 0, "the storage URL is fetched without credentials");
}

#[tokio::test]
async fn microsoft_jobs_survive_rate_limits_and_expired_urls_and_report_errors_and_empty_reports() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, settings) = microsoft(addr, &sandbox);
    let source = configure(settings.clone()).unwrap();
    // (Its rate limit is 117 CallRateExceeded, a rate limit by the spec's rule.)
    let (account, window) = job_faults(&sandbox, platform, source.as_ref(), &sandbox.microsoft, "Error").await;
    let ctx = quick_polls();
    // A report without rows has no download URL: no rows, no error.
    let tomorrow = DateWindow::new(today() + Days::new(1), today() + Days::new(1)).unwrap();
    assert!(daily(source.as_ref(), &account, tomorrow, &ctx).await.unwrap().is_empty());
    // An operation error is final, with Microsoft's message.
    sandbox.retire_field(platform, "Revenue");
    let error = daily(source.as_ref(), &account, window, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Platform { .. }), "{error}");
    assert!(error.to_string().contains("Invalid column: Revenue"), "{error}");
    // The developer token is required: a source without one is refused at configuration.
    let mut without = settings;
    without.credentials.remove("developer_token");
    let error = configure(without).err().expect("refused without a developer token").to_string();
    assert!(error.contains("developer_token"), "{error}");
}

/// Amazon Ads, a built-in spec whose report is an asynchronous job, against the sandbox's Amazon. Its
/// tokens are renewed at Login with Amazon's endpoint (the client in the form body).
fn amazon(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    let (platform, settings) = built_in("amazon_ads", "v3", addr, sandbox);
    (platform, with_refresh_set(settings, sandbox, "amzn1.application-oa2-client.sandbox", "/auth/o2/token", None))
}

/// A driver whose waits (retries and report polls alike) are short: Amazon's 15 s between polls would
/// make a test of minutes.
fn quick_polls() -> ReadContext {
    let policy = mdp_sources::http::RetryPolicy {
        max_attempts: 4,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(40),
        request_timeout: std::time::Duration::from_secs(10),
        max_rate_limit_wait: std::time::Duration::from_millis(40),
    };
    ReadContext { http: mdp_sources::http::HttpDriver::new(policy).unwrap() }
}

#[tokio::test]
async fn amazon_reports_run_as_jobs_and_reconcile_with_the_truth() {
    let (sandbox, addr) = start_sandbox().await;
    let (_, settings) = amazon(addr, &sandbox);
    assert_eq!(settings.accounts.len(), 2, "the sandbox imitates two Amazon profiles");
    let source = configure(settings).unwrap();
    let ctx = quick_polls();
    // 45 days: two reports of at most 31 days per profile, each created, polled, downloaded, gunzipped.
    let window = DateWindow::new(today() - Days::new(44), today()).unwrap();
    for account_id in &source.settings().accounts {
        // Entity lists are POSTed with their media types and paged by a body token.
        let (account, parents) = account_and_ad_parents(&sandbox, source.as_ref(), account_id, &ctx).await;
        assert!(entities(source.as_ref(), "ad_groups", &account, &ctx).await > 0);

        // The report's numeric ids read as the entity lists' string ids.
        daily_rows_reconcile(&sandbox, source.as_ref(), &account, &parents, window, &ctx).await;
    }
    assert_eq!(sandbox.amazon.created(), 4, "two reports a profile");
    // A profile's two reports were in flight together (`concurrency: 3`), never more than a profile's.
    assert_eq!(sandbox.amazon.most_in_flight(), 2, "a profile's windows at once, one profile at a time");
    assert_eq!(sandbox.amazon.downloads_with_auth(), 0, "the storage URL is fetched without credentials");
    assert_eq!(sandbox.oauth.issued(), 1, "one access token, renewed from the refresh token and used since");
}

#[tokio::test]
async fn amazon_jobs_survive_duplicates_expired_urls_rate_limits_and_report_failures() {
    let (sandbox, addr) = start_sandbox().await;
    let (platform, settings) = amazon(addr, &sandbox);
    let source = configure(settings).unwrap();
    let ctx = quick_polls();
    let account = source.account(&source.settings().accounts[0], &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(6), today()).unwrap();
    let clean = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
    assert!(!clean.is_empty());
    assert_eq!(sandbox.amazon.created(), 1);

    // The same report again is refused as a duplicate (425) naming the first: that one is read.
    let again = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
    assert_eq!(again, clean);
    assert_eq!(sandbox.amazon.created(), 1, "no second report was made");

    // An expired storage URL (403) is asked for again; rate limits and server errors are retried.
    sandbox.amazon.expire_next_urls(1);
    sandbox.faults.push(Fault {
        platform: Some(platform),
        kind: FaultKind::RateLimit { retry_after_secs: 0 },
        count: 2,
    });
    sandbox.faults.push(Fault { platform: Some(platform), kind: FaultKind::ServerError, count: 1 });
    let retried = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
    assert_eq!(retried, clean);

    // A report Amazon fails stops the read with its reason; nothing is made up.
    sandbox.amazon.fail_next(1);
    let other = DateWindow::new(today() - Days::new(20), today() - Days::new(14)).unwrap();
    let error = daily(source.as_ref(), &account, other, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Platform { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("FAILED") && message.contains("Report generation failed"), "{message}");
    // The next run makes it again (a failed report is no duplicate) and reads it.
    assert!(!daily(source.as_ref(), &account, other, &ctx).await.unwrap().is_empty());
    // No secret reached an error.
    assert!(
        !message.contains("amzn1.application-oa2-client.sandbox-secret") && !message.contains("X-Amz-Signature"),
        "{message}"
    );
}

/// X Ads, a built-in spec signed with OAuth 1.0a, against the sandbox's X, which checks each signature
/// with its own code (the sandbox's secret of a key `K` is `K-secret`).
fn x(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    let (platform, mut settings) = built_in("x_ads", "12", addr, sandbox);
    settings.credentials = BTreeMap::from([
        ("consumer_key".to_string(), Credential::new("x-app-key")),
        ("consumer_secret".to_string(), Credential::new("x-app-key-secret")),
        ("access_token".to_string(), Credential::new("x-user-token")),
        ("access_token_secret".to_string(), Credential::new("x-user-token-secret")),
    ]);
    (platform, settings)
}

/// A sandbox whose ad groups hold more ads than one stats request may name (X: 20).
async fn start_sandbox_with_many_ads() -> (std::sync::Arc<Sandbox>, SocketAddr) {
    let scale = mdp_sandbox::Scale { campaigns_per_account: 3, ad_groups_per_campaign: 2, ads_per_ad_group: 6 };
    let sandbox = Sandbox::new(mdp_sandbox::World::new(42, today(), scale));
    let (addr, _) = mdp_sandbox::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    (sandbox, addr)
}

#[tokio::test]
async fn x_signs_each_request_batches_its_active_promoted_tweets_and_reconciles_across_dst() {
    let (sandbox, addr) = start_sandbox_with_many_ads().await;
    let (platform, settings) = x(addr, &sandbox);
    let source = configure(settings).unwrap();
    let ctx = context();
    // 41 days over both accounts' spring DST changes (Los Angeles on March 8, Berlin on March 29): six
    // 7-day stats windows whose bounds carry the offset the zone has now, which on one side of each
    // change is not the day's own (the sandbox refuses the day's own there).
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).unwrap();
    let window = DateWindow::new(day(3, 1), day(4, 10)).unwrap();
    for account_id in &source.settings().accounts {
        let (account, parents) = account_and_ad_parents(&sandbox, source.as_ref(), account_id, &ctx).await;
        // 36 promoted tweets, the deleted ones listed too (with_deleted), each with its line item's campaign.
        let world = sandbox.world.account(platform, account_id).unwrap();
        assert_eq!(parents.len(), 36);
        for campaign in &world.campaigns {
            for (group, ad) in campaign.ad_groups.iter().flat_map(|g| g.ads.iter().map(move |ad| (g, ad))) {
                assert_eq!(parents[&ad.id], (Some(campaign.id.clone()), Some(group.id.clone())), "ad {}", ad.id);
            }
        }
        let rows = daily_rows_reconcile(&sandbox, source.as_ref(), &account, &parents, window, &ctx).await;
        // More promoted tweets delivered than one stats request may name (the sandbox refuses more than 20):
        // their ids went in batches.
        let delivered: std::collections::BTreeSet<_> = rows.iter().map(|r| r.ad_id.clone()).collect();
        assert!(delivered.len() > mdp_sandbox::x_ads::MAX_ENTITY_IDS, "{} ads", delivered.len());
        // X's zeros (a day without delivery in an array) are no rows.
        assert!(rows.iter().all(|r| r.impressions > 0 || !r.spend.is_zero() || r.clicks > 0));
        assert!(rows.iter().any(|r| r.date == Some(day(3, 8))) && rows.iter().any(|r| r.date == Some(day(3, 29))));
    }
}

#[tokio::test]
async fn x_refuses_a_bad_signature_and_says_which_credentials_to_check() {
    let (sandbox, addr) = start_sandbox().await;
    let (_, mut settings) = x(addr, &sandbox);
    settings.credentials.insert("access_token_secret".into(), Credential::new("not-the-secret-7f3a"));
    let source = configure(settings).unwrap();
    let ctx = context();
    let error = source.account(&source.settings().accounts[0], &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Auth { .. }), "{error}");
    assert!(error.to_string().contains("not properly authenticated"), "{error}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("not-the-secret-7f3a") && !shown.contains("x-app-key-secret"), "{shown}");
}

/// Batching every ad of the ads stream (`of: ads`, five ids a request) reads the same numbers as
/// batching only the ads X lists as active (the built-in spec's twenty): a spec registered from the
/// built-in text with its batch changed, served by the same imitation.
#[tokio::test]
async fn batching_every_ad_reads_what_batching_the_active_ones_reads() {
    let (sandbox, addr) = start_sandbox().await;
    let (_, settings) = x(addr, &sandbox);
    let (_, text) = mdp_spec::BUILTIN.iter().find(|(file, _)| *file == "x_ads.yml").unwrap();
    let batch = text.find("    batch:\n").unwrap();
    let request = batch + text[batch..].find("\n    request:\n").unwrap() + 1;
    let every_ad = format!(
        "{}    batch: {{ size: 5, of: ads }}\n{}",
        &text[..batch].replace("name: x_ads", "name: x_ads_every_ad"),
        &text[request..]
    );
    let file = Path::new("connectors/x_ads_every_ad.yml");
    let (spec, lines) = mdp_spec::parse(file, &every_ad).unwrap_or_else(|e| panic!("{e}"));
    let platform = mdp_spec::register(spec, file.to_path_buf(), lines).platform();
    let active = configure(settings.clone()).unwrap();
    let options = mdp_sources::SourceOptions::defaults(platform);
    let every = configure(SourceSettings { platform, name: "every".into(), options, ..settings }).unwrap();
    let ctx = context();
    let window = DateWindow::new(today() - Days::new(13), today()).unwrap();
    let account = active.account(&active.settings().accounts[1], &ctx).await.unwrap();
    let key = |r: &PerformanceRecord| (r.date, r.ad_id.clone());
    let mut by_active = daily(active.as_ref(), &account, window, &ctx).await.unwrap();
    let mut by_every = daily(every.as_ref(), &account, window, &ctx).await.unwrap();
    by_active.sort_by_key(key);
    by_every.sort_by_key(key);
    assert!(!by_active.is_empty());
    // Ads listed but inactive (deleted ones) have only nulls and zeros: no rows. The same rows, ids and
    // parents included.
    assert_eq!(
        by_every.iter().map(|r| (key(r), r.spend, r.campaign_id.clone())).collect::<Vec<_>>(),
        by_active.iter().map(|r| (key(r), r.spend, r.campaign_id.clone())).collect::<Vec<_>>()
    );
}
