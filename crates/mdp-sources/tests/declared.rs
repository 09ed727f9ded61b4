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

/// Reddit Ads, a built-in spec, against the sandbox's Reddit imitation.
fn reddit(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    mdp_spec::register_builtin();
    let platform: Platform = "reddit_ads".parse().expect("a built-in spec");
    let settings = SourceSettings {
        name: "reddit_ads".into(),
        platform,
        base_url: format!("http://{addr}"),
        api_version: "v3".into(),
        accounts: sandbox.world.accounts(platform).map(|a| a.id.clone()).collect(),
        credentials: BTreeMap::from([("access_token".to_string(), Credential::new(TOKEN))]),
        token_url: None,
        options: mdp_sources::SourceOptions::defaults(platform),
    };
    (platform, settings)
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

        let rows = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
        assert!(!rows.is_empty());
        for row in &rows {
            let ad = row.ad_id.as_ref().unwrap();
            assert_eq!(
                (row.campaign_id.clone(), row.ad_group_id.clone()),
                parents[ad],
                "parents of {ad} from the ads stream"
            );
        }
        assert_days_match_truth(&sandbox, source.as_ref(), account_id, window, &rows);
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
    let (platform, mut settings) = reddit(addr, &sandbox);
    let refresh_token = sandbox.oauth.grant(platform, "reddit-app-id");
    settings.credentials = BTreeMap::from([
        ("client_id".to_string(), Credential::new("reddit-app-id")),
        ("client_secret".to_string(), Credential::new("reddit-app-secret")),
        ("refresh_token".to_string(), Credential::new(refresh_token)),
    ]);
    // The sandbox's token endpoint refuses a client that is not in the Basic header.
    settings.token_url = Some(format!("http://{addr}/api/v1/access_token"));
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

/// Amazon Ads, a built-in spec whose report is an asynchronous job, against the sandbox's Amazon. Its
/// tokens are renewed at Login with Amazon's endpoint (the client in the form body).
fn amazon(addr: SocketAddr, sandbox: &Sandbox) -> (Platform, SourceSettings) {
    mdp_spec::register_builtin();
    let platform: Platform = "amazon_ads".parse().expect("a built-in spec");
    let refresh_token = sandbox.oauth.grant(platform, "amzn1.application-oa2-client.sandbox");
    let settings = SourceSettings {
        name: "amazon_ads".into(),
        platform,
        base_url: format!("http://{addr}"),
        api_version: "v3".into(),
        accounts: sandbox.world.accounts(platform).map(|a| a.id.clone()).collect(),
        credentials: BTreeMap::from([
            ("client_id".to_string(), Credential::new("amzn1.application-oa2-client.sandbox")),
            ("client_secret".to_string(), Credential::new("amazon-app-secret")),
            ("refresh_token".to_string(), Credential::new(refresh_token)),
        ]),
        token_url: Some(format!("http://{addr}/auth/o2/token")),
        options: mdp_sources::SourceOptions::defaults(platform),
    };
    (platform, settings)
}

/// A driver whose waits (retries and report polls alike) are short: Amazon's 15 s between polls would
/// make a test of minutes.
fn quick_polls() -> ReadContext {
    let policy = mdp_sources::http::RetryPolicy {
        max_attempts: 4,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(40),
        request_timeout: std::time::Duration::from_secs(10),
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

        let rows = daily(source.as_ref(), &account, window, &ctx).await.unwrap();
        assert!(!rows.is_empty());
        for row in &rows {
            // The report's numeric ids read as the entity lists' string ids.
            let ad = row.ad_id.as_ref().unwrap();
            assert_eq!((row.campaign_id.clone(), row.ad_group_id.clone()), parents[ad], "ids of ad {ad}");
        }
        assert_days_match_truth(&sandbox, source.as_ref(), account_id, window, &rows);
    }
    assert_eq!(sandbox.amazon.created(), 4, "two reports a profile");
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
    assert!(!message.contains("amazon-app-secret") && !message.contains("X-Amz-Signature"), "{message}");
}
