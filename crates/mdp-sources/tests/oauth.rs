//! Refreshing access tokens against the sandbox's token endpoints, over real HTTP: tokens that expire
//! mid-read, a token the platform refuses early, a revoked refresh token, and a rotated one saved back
//! to its file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Instant;

use chrono::Days;
use mdp_core::{DateWindow, Platform};
use mdp_sandbox::{Fault, FaultKind, OAuthSettings, Sandbox};
use mdp_sources::record::PerformanceRecord;
use mdp_sources::{configure, Credential, Source, SourceError, SourceSettings};
use rust_decimal::Decimal;

const CLIENT_ID: &str = "mdp-test-client.apps.example";
mod common;

use common::{context, start_sandbox, today};

const CLIENT_SECRET: &str = "client-secret-7c1d";

/// A source that refreshes its token at the sandbox; the refresh token is read from `refresh_file`
/// when given (as the CLI passes a `{ file: }` credential).
fn settings(platform: Platform, addr: SocketAddr, sandbox: &Sandbox, refresh: Credential) -> SourceSettings {
    let kind = mdp_sources::kind(platform);
    let token_path = match platform {
        Platform::GoogleAds => "/token",
        _ => "/oauth/v2/accessToken",
    };
    let credentials: BTreeMap<String, Credential> = [
        ("client_id", Credential::new(CLIENT_ID)),
        ("client_secret", Credential::new(CLIENT_SECRET)),
        ("refresh_token", refresh),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    SourceSettings {
        name: format!("{platform}_refreshing"),
        platform,
        base_url: format!("http://{addr}"),
        api_version: kind.default_api_version.to_string(),
        accounts: sandbox.world.accounts(platform).map(|a| a.id.clone()).collect(),
        credentials,
        token_url: Some(format!("http://{addr}{token_path}")),
        options: mdp_sources::SourceOptions::defaults(platform),
    }
}

/// The stream whose rows add up to an account's totals.
fn total_stream(platform: Platform) -> &'static str {
    match platform {
        Platform::GoogleAds => "campaign_daily",
        _ => "ad_daily",
    }
}

/// Read every account's `days` days up to today in 10-day windows, and compare each day's spend,
/// impressions and clicks with the sandbox's truth.
async fn read_and_reconcile(source: &dyn Source, sandbox: &Sandbox, days: u64) -> Result<usize, SourceError> {
    let ctx = context();
    let platform = source.settings().platform;
    let stream = source.streams().iter().find(|s| s.name == total_stream(platform)).unwrap();
    let mut rows_read = 0;
    for account_id in &source.settings().accounts {
        let account = source.account(account_id, &ctx).await?;
        let first = today() - Days::new(days - 1);
        let mut start = first;
        while start <= today() {
            let end = (start + Days::new(9)).min(today());
            let window = DateWindow::new(start, end).unwrap();
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<PerformanceRecord>>(16);
            // The reader owns the sender: when it is done, the collector sees the end of the pages.
            let reader = async {
                let tx = tx;
                source.read_daily(stream, &account, window, &ctx, &tx).await
            };
            let collector = async {
                let mut all = Vec::new();
                while let Some(page) = rx.recv().await {
                    all.extend(page);
                }
                all
            };
            let (result, rows) = tokio::join!(reader, collector);
            result?;
            rows_read += rows.len();
            let truth = sandbox.truth(platform, account_id, start, end).unwrap();
            for (date, metrics) in truth {
                let day: Vec<&PerformanceRecord> = rows.iter().filter(|r| r.date == Some(date)).collect();
                let spend: Decimal = day.iter().map(|r| r.spend).sum();
                let impressions: i64 = day.iter().map(|r| r.impressions).sum();
                let clicks: i64 = day.iter().map(|r| r.clicks).sum();
                assert_eq!(spend, Decimal::new(metrics.spend_micros, 6), "{platform} {account_id} {date} spend");
                assert_eq!(impressions, metrics.impressions, "{platform} {account_id} {date} impressions");
                assert_eq!(clicks, metrics.clicks, "{platform} {account_id} {date} clicks");
            }
            start = end + Days::new(1);
        }
    }
    Ok(rows_read)
}

/// The acceptance case, scaled down in time (a 30 s token over a 2-minute ingest has the same shape as
/// a 1 s token over a read of several seconds): every request is slowed, tokens expire many times
/// during the read, and the platform also refuses a still-valid token once; everything reconciles.
#[tokio::test]
async fn tokens_that_expire_during_a_read_are_refreshed_and_everything_reconciles() {
    let (sandbox, addr) = start_sandbox().await;
    sandbox.oauth.set(OAuthSettings { access_token_ttl_secs: 1, rotate_refresh_tokens: false, ..Default::default() });
    for platform in [Platform::GoogleAds, Platform::LinkedInAds] {
        let issued_before = sandbox.oauth.issued();
        let refresh = Credential::new(sandbox.oauth.grant(platform, CLIENT_ID));
        let source = configure(settings(platform, addr, &sandbox, refresh)).unwrap();
        // Every request slowed; the sixth refused as if the token had been revoked early.
        let slow = |count| Fault { platform: Some(platform), kind: FaultKind::Slow { millis: 200 }, count };
        sandbox.faults.push(slow(5));
        sandbox.faults.push(Fault { platform: Some(platform), kind: FaultKind::Unauthorized, count: 1 });
        sandbox.faults.push(slow(1000));
        let started = Instant::now();
        let rows = read_and_reconcile(source.as_ref(), &sandbox, 60).await.unwrap();
        let elapsed = started.elapsed();
        assert!(rows > 100, "{platform}: {rows} rows");
        let issued = sandbox.oauth.issued() - issued_before;
        // One token per second of reading at least (each is refreshed at 3/4 of its life), plus the one
        // that replaced the token refused early.
        assert!(
            issued as f64 >= elapsed.as_secs_f64().floor(),
            "{platform}: {issued} tokens over {elapsed:?}: expired tokens were not refreshed"
        );
        assert!(issued >= 3, "{platform}: only {issued} tokens over {elapsed:?}");
        assert!(
            sandbox.faults.injected().contains(&(platform, FaultKind::Unauthorized)),
            "{platform}: the early refusal was served (and survived)"
        );
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_fails_with_a_message_to_run_mdp_auth() {
    let (sandbox, addr) = start_sandbox().await;
    for platform in [Platform::GoogleAds, Platform::LinkedInAds] {
        let refresh = sandbox.oauth.grant(platform, CLIENT_ID);
        sandbox.oauth.revoke(Some(&refresh));
        let source = configure(settings(platform, addr, &sandbox, Credential::new(refresh.clone()))).unwrap();
        let account = sandbox.world.accounts(platform).next().unwrap().id.clone();
        let error = source.account(&account, &context()).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, SourceError::Reauthorize { .. }), "{platform}: {text}");
        assert!(text.contains(&format!("run `mdp auth {platform}_refreshing`")), "{platform}: {text}");
        assert!(!text.contains(&refresh) && !text.contains(CLIENT_SECRET), "{platform}: a secret leaked: {text}");
        assert!(!error.is_retryable(), "waiting does not bring a revoked token back");
    }

    // A client the platform does not know is a configuration problem, not a reauthorization.
    let refresh = Credential::new(sandbox.oauth.grant(Platform::GoogleAds, CLIENT_ID));
    let mut wrong_client = settings(Platform::GoogleAds, addr, &sandbox, refresh);
    wrong_client.credentials.insert("client_secret".into(), Credential::new(""));
    let source = configure(wrong_client).unwrap();
    let account = sandbox.world.accounts(Platform::GoogleAds).next().unwrap().id.clone();
    let error = source.account(&account, &context()).await.unwrap_err().to_string();
    assert!(error.contains("check the client_id and client_secret"), "{error}");
}

fn read_token(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[tokio::test]
async fn a_rotated_refresh_token_is_saved_to_its_file_and_the_next_run_uses_it() {
    let (sandbox, addr) = start_sandbox().await;
    sandbox.oauth.set(OAuthSettings { access_token_ttl_secs: 1, rotate_refresh_tokens: true, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets/google_refresh_token");
    let first = sandbox.oauth.grant(Platform::GoogleAds, CLIENT_ID);
    mdp_sources::auth::write_secret_file(&file, &first).unwrap();

    // Two runs, as two scheduled ingests: each reads the file, as the CLI does.
    for run in 0..2 {
        let refresh = Credential::new(read_token(&file)).with_file(file.clone());
        let source = configure(settings(Platform::GoogleAds, addr, &sandbox, refresh)).unwrap();
        sandbox.faults.push(Fault {
            platform: Some(Platform::GoogleAds),
            kind: FaultKind::Slow { millis: 100 },
            count: 25,
        });
        read_and_reconcile(source.as_ref(), &sandbox, 20).await.unwrap_or_else(|e| panic!("run {run}: {e}"));
    }
    let saved = read_token(&file);
    assert_ne!(saved, first, "the rotated token replaced the first");
    assert!(sandbox.oauth.refresh_token_valid(&saved), "the file holds the current refresh token");
    assert!(!sandbox.oauth.refresh_token_valid(&first), "the first was rotated away");

    // A rotated token from an environment variable cannot be saved: this run still completes with it.
    let held = Credential::new(saved.clone());
    let source = configure(settings(Platform::GoogleAds, addr, &sandbox, held)).unwrap();
    read_and_reconcile(source.as_ref(), &sandbox, 10).await.unwrap();
    assert!(!sandbox.oauth.refresh_token_valid(&saved), "rotated during the run (kept in memory only)");
}

/// A Google source that authenticates with the sandbox's service account key, acting as `subject`
/// when given; the key file is fetched from the sandbox as a user downloads it from the Cloud console.
async fn service_account_settings(addr: SocketAddr, sandbox: &Sandbox, subject: Option<&str>) -> SourceSettings {
    let key =
        reqwest::get(format!("http://{addr}/_sandbox/google/service_account_key")).await.unwrap().text().await.unwrap();
    let mut settings = settings(Platform::GoogleAds, addr, sandbox, Credential::new("unused"));
    settings.credentials.clear();
    settings.credentials.insert("service_account_key".into(), Credential::new(key));
    // The key names its token endpoint; no override needed.
    settings.token_url = None;
    settings.name = "google_service_account".into();
    if let Some(subject) = subject {
        let options = serde_json::json!({ "impersonated_email": subject });
        settings.options =
            mdp_sources::SourceOptions::parse(Platform::GoogleAds, options.as_object().unwrap().clone()).unwrap();
    }
    settings
}

/// A service account's tokens expire mid-read like a user's; each new one comes from a newly signed
/// JWT (there is no refresh token), and everything reconciles.
#[tokio::test]
async fn a_service_account_signs_for_new_tokens_as_they_expire() {
    let (sandbox, addr) = start_sandbox().await;
    sandbox.oauth.set(OAuthSettings { access_token_ttl_secs: 1, ..Default::default() });
    let source = configure(service_account_settings(addr, &sandbox, None).await).unwrap();
    sandbox.faults.push(Fault {
        platform: Some(Platform::GoogleAds),
        kind: FaultKind::Slow { millis: 200 },
        count: 1000,
    });
    let started = Instant::now();
    let rows = read_and_reconcile(source.as_ref(), &sandbox, 60).await.unwrap();
    let elapsed = started.elapsed();
    let grants = sandbox.oauth.service_account_grants();
    assert!(rows > 100, "{rows} rows");
    assert!(grants >= 3 && grants as f64 >= elapsed.as_secs_f64().floor(), "{grants} JWT grants over {elapsed:?}");
}

/// Impersonation works only once a Workspace admin granted domain-wide delegation; before, the error
/// says what to grant to whom, or how to do without.
#[tokio::test]
async fn impersonation_needs_domain_wide_delegation_and_says_so() {
    let (sandbox, addr) = start_sandbox().await;
    let account = sandbox.world.accounts(Platform::GoogleAds).next().unwrap().id.clone();
    let source = configure(service_account_settings(addr, &sandbox, Some("ads@example.com")).await).unwrap();
    let error = source.account(&account, &context()).await.unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, SourceError::Config { .. }) && !error.is_retryable(), "{text}");
    assert!(text.contains("unauthorized_client") && text.contains("domain-wide delegation"), "{text}");
    assert!(text.contains(mdp_sandbox::service_account::CLIENT_ID), "names the client id to grant: {text}");
    assert!(text.contains("remove `impersonated_email`"), "{text}");
    assert!(!text.contains("PRIVATE KEY") && !text.contains("mdp auth"), "{text}");

    sandbox.oauth.set(OAuthSettings { domain_wide_delegation: true, ..Default::default() });
    let account = source.account(&account, &context()).await.unwrap();
    assert!(!account.currency.is_empty(), "read as the impersonated user");
    assert_eq!(sandbox.oauth.service_account_grants(), 1);
}

/// A key the platform does not hold (deleted in the Cloud console, or another project's) is refused
/// by its signature; the error says to download a current key, and never shows the key.
#[tokio::test]
async fn a_key_the_platform_does_not_hold_is_refused_by_its_signature() {
    let (sandbox, addr) = start_sandbox().await;
    let mut settings = service_account_settings(addr, &sandbox, None).await;
    let mut key: serde_json::Value =
        serde_json::from_str(settings.credentials["service_account_key"].expose()).unwrap();
    key["private_key"] = include_str!("fixtures/other_service_account.pem").into();
    settings.credentials.insert("service_account_key".into(), Credential::new(key.to_string()));
    let source = configure(settings).unwrap();
    let account = sandbox.world.accounts(Platform::GoogleAds).next().unwrap().id.clone();
    let text = source.account(&account, &context()).await.unwrap_err().to_string();
    assert!(text.contains("Invalid JWT Signature") && text.contains("download a new one"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");

    // And a file that is not a key at all fails when the source is configured, naming the credential.
    let mut settings = service_account_settings(addr, &sandbox, None).await;
    settings.credentials.insert("service_account_key".into(), Credential::new(r#"{"type":"authorized_user"}"#));
    let Err(error) = configure(settings) else { panic!("a user's credentials are not a service account key") };
    let error = error.to_string();
    assert!(error.contains("service_account_key") && error.contains("authorized_user"), "{error}");
}
