//! Every connector passes the same compliance suite, over real HTTP against the sandbox:
//! it reads accounts, entities and daily performance, and its rows add up to the sandbox's ground
//! truth exactly; it survives or clearly reports each fault; no token appears in an error.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use chrono::{Days, NaiveDate};
use mdp_core::{DateWindow, Platform};
use mdp_sandbox::{Fault, FaultKind, Sandbox};
use mdp_sources::record::PerformanceRecord;
use mdp_sources::{configure, Credential, ReadContext, Source, SourceError, SourceSettings, StreamKind};
use rust_decimal::Decimal;

mod common;

use common::{collect_daily, collect_entities, context, start_sandbox, today};

const TOKEN: &str = "sandbox-token-DO-NOT-LEAK-8c1f";

fn settings(platform: Platform, addr: SocketAddr, sandbox: &Sandbox) -> SourceSettings {
    let kind = mdp_sources::kind(platform);
    let credentials: BTreeMap<String, Credential> =
        // A fixed access token (refreshing tokens have their own tests, in oauth.rs).
        kind.credentials
            .iter()
            // (A credential the platform requires for itself, Amazon's client_id, is set too.)
            .filter(|c| c.required || ![mdp_core::CLIENT_ID, mdp_core::CLIENT_SECRET, mdp_core::REFRESH_TOKEN, mdp_core::SERVICE_ACCOUNT_KEY]
                .contains(&c.name))
            // A signing secret is the sandbox's secret of the key (X's OAuth 1.0a: `<key>-secret`).
            .map(|c| {
                let value = if c.name.ends_with("_secret") { format!("{TOKEN}-secret") } else { TOKEN.to_string() };
                (c.name.to_string(), Credential::new(value))
            })
            .collect();
    SourceSettings {
        name: platform.as_str().to_string(),
        platform,
        base_url: format!("http://{addr}"),
        api_version: kind.default_api_version.to_string(),
        accounts: sandbox.world.accounts(platform).map(|a| a.id.clone()).collect(),
        credentials,
        token_url: None,
        options: mdp_sources::SourceOptions::defaults(platform),
    }
}

/// The daily streams whose rows together cover all of an account's spend: the finest one, plus the
/// campaign-level stream for campaigns that have no ad-level rows (Google Performance Max).
fn sum_by_day(rows: &[PerformanceRecord]) -> HashMap<NaiveDate, (i64, i64, Decimal, Decimal, Decimal)> {
    let mut by_day: HashMap<NaiveDate, (i64, i64, Decimal, Decimal, Decimal)> = HashMap::new();
    for r in rows {
        let e = by_day.entry(r.date.unwrap()).or_default();
        e.0 += r.impressions;
        e.1 += r.clicks;
        e.2 += r.spend;
        e.3 += r.conversions;
        e.4 += r.conversion_value;
    }
    by_day
}

fn micros(m: i64) -> Decimal {
    Decimal::new(m, 6)
}

/// Rows of every daily stream, deduplicated so each delivering unit counts once per day: ad-level
/// rows, plus campaign-level rows of campaigns that have no ad-level rows that day.
async fn all_spend_rows(
    source: &dyn Source,
    account: &mdp_sources::AccountInfo,
    window: DateWindow,
    ctx: &ReadContext,
) -> Vec<PerformanceRecord> {
    let mut ad_rows = Vec::new();
    let mut campaign_rows = Vec::new();
    for stream in source.streams().iter().filter(|s| s.kind == StreamKind::Daily) {
        let rows = collect_daily(source, stream.name, account, window, ctx).await.unwrap();
        if stream.name == "campaign_daily" {
            campaign_rows = rows;
        } else {
            ad_rows.extend(rows);
        }
    }
    let covered: std::collections::HashSet<(NaiveDate, String)> =
        ad_rows.iter().map(|r| (r.date.unwrap(), r.campaign_id.clone().unwrap_or_default())).collect();
    ad_rows.extend(
        campaign_rows
            .into_iter()
            .filter(|r| !covered.contains(&(r.date.unwrap(), r.campaign_id.clone().unwrap_or_default()))),
    );
    ad_rows
}

async fn reconciles_with_ground_truth(platform: Platform) {
    let (sandbox, addr) = start_sandbox().await;
    let source = configure(settings(platform, addr, &sandbox)).unwrap();
    let ctx = context();
    let window = DateWindow::new(today() - Days::new(44), today()).unwrap(); // longer than any API's window limit
    for account_id in &source.settings().accounts {
        let account = source.account(account_id, &ctx).await.unwrap();
        let truth_account = sandbox.world.account(platform, account_id).unwrap();
        assert_eq!(account.currency, truth_account.currency, "{platform} currency");
        for stream in source.streams().iter().filter(|s| s.kind == StreamKind::Entity) {
            let entities = collect_entities(source.as_ref(), stream.name, &account, &ctx).await.unwrap();
            assert!(!entities.is_empty(), "{platform} {}: entities", stream.name);
            assert!(entities.iter().all(|e| e.account_id == *account_id && !e.id.is_empty()));
        }
        let rows = all_spend_rows(source.as_ref(), &account, window, &ctx).await;
        let got = sum_by_day(&rows);
        let truth = sandbox.truth(platform, account_id, window.start(), window.end()).unwrap();
        let options = &source.settings().options;
        let conversions = sandbox.conversion_truth(account_id, window.start(), window.end(), options).unwrap();
        for ((day, m), (_, conversions, value)) in truth.into_iter().zip(conversions) {
            let g = got.get(&day).copied().unwrap_or_default();
            let expected = (m.impressions, m.clicks, micros(m.spend_micros), micros(conversions), micros(value));
            assert_eq!(
                g, expected,
                "{platform} account {account_id} on {day}: (impressions, clicks, spend, conversions, value)"
            );
        }
    }
}

async fn survives_transient_faults(platform: Platform) {
    let (sandbox, addr) = start_sandbox().await;
    let source = configure(settings(platform, addr, &sandbox)).unwrap();
    let ctx = context();
    let account_id = source.settings().accounts[0].clone();
    let account = source.account(&account_id, &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(6), today()).unwrap();
    let daily = source.streams().iter().find(|s| s.kind == StreamKind::Daily).unwrap().name;
    let clean = collect_daily(source.as_ref(), daily, &account, window, &ctx).await.unwrap();
    for kind in [
        FaultKind::RateLimit { retry_after_secs: 0 },
        FaultKind::ServerError,
        FaultKind::TruncatedJson,
        FaultKind::Slow { millis: 200 },
    ] {
        sandbox.faults.push(Fault { platform: Some(platform), kind, count: 2 });
        let rows = collect_daily(source.as_ref(), daily, &account, window, &ctx)
            .await
            .unwrap_or_else(|e| panic!("{platform} {kind:?}: {e}"));
        assert_eq!(rows.len(), clean.len(), "{platform} {kind:?}: same rows after recovering");
        assert_eq!(sum_by_day(&rows), sum_by_day(&clean), "{platform} {kind:?}");
    }
    assert!(ctx.http.stats.retries.load(std::sync::atomic::Ordering::Relaxed) >= 6, "{platform}: retries are counted");
}

async fn reports_hard_failures_clearly(platform: Platform) {
    let (sandbox, addr) = start_sandbox().await;
    let source = configure(settings(platform, addr, &sandbox)).unwrap();
    let ctx = context();
    let account_id = source.settings().accounts[0].clone();
    let account = source.account(&account_id, &ctx).await.unwrap();
    let window = DateWindow::new(today() - Days::new(3), today()).unwrap();
    let daily = source.streams().iter().find(|s| s.kind == StreamKind::Daily).unwrap().name;

    sandbox.faults.push(Fault { platform: Some(platform), kind: FaultKind::Unauthorized, count: 1 });
    let error = collect_daily(source.as_ref(), daily, &account, window, &ctx).await.unwrap_err();
    assert!(matches!(error, SourceError::Auth { .. }), "{platform}: an expired token is an auth error, got {error}");
    assert!(!error.to_string().contains(TOKEN) && !format!("{error:?}").contains(TOKEN), "{platform}: token leaked");

    sandbox.faults.push(Fault {
        platform: Some(platform),
        kind: FaultKind::RateLimit { retry_after_secs: 0 },
        count: 10,
    });
    let error = collect_daily(source.as_ref(), daily, &account, window, &ctx).await.unwrap_err();
    assert!(
        matches!(error, SourceError::RateLimited { attempts: 4, .. }),
        "{platform}: gives up after the attempts: {error}"
    );
    while sandbox.faults.pending() > 0 {
        let _ = source.account(&account_id, &ctx).await;
    }

    let mut old = settings(platform, addr, &sandbox);
    old.api_version = match versions(platform) {
        Versions::Sunset(retired) => retired,
        _ => "v0",
    }
    .into();
    let answer = configure(old).unwrap().account(&account_id, &ctx).await;
    match versions(platform) {
        Versions::Sunset(_) => {
            let error = answer.err().unwrap_or_else(|| panic!("{platform}: a sunset version must fail"));
            assert!(matches!(error, SourceError::SunsetVersion { .. }), "{platform}: sunset version is said: {error}");
        }
        Versions::OneServed => {
            let error = answer.err().unwrap_or_else(|| panic!("{platform}: a version never served must fail"));
            assert!(matches!(error, SourceError::NotFound { .. }), "{platform}: {error}");
            assert!(error.to_string().contains("v0"), "{platform}: the version is named: {error}");
        }
        Versions::InPaths => assert!(answer.is_ok(), "{platform}: api_version only names the report API"),
    }

    // An account the token cannot see is the platform's "not found" or its own error, never a sunset.
    let error = match source.account("987654321", &ctx).await {
        Err(e) => e,
        Ok(_) => panic!("{platform}: an unknown account must fail"),
    };
    assert!(
        matches!(error, SourceError::NotFound { .. } | SourceError::Platform { .. }),
        "{platform}: an unknown account is not a sunset: {error}"
    );
    assert!(!error.to_string().contains(TOKEN), "{platform}: no token in {error}");
}

/// What a source asking for an API version the platform does not serve meets.
enum Versions {
    /// The platform answers a version it retired (this one) as such (the built-ins' sandboxes answer any
    /// older one so; Reddit's v2: 410).
    Sunset(&'static str),
    /// The platform serves one version: another is a path it does not know (Snapchat's v1, Pinterest's v5).
    OneServed,
    /// The paths carry their own versions (Amazon's /v2/profiles, sp v3 media types): `api_version`
    /// names the report API and changes no request.
    InPaths,
}

fn versions(platform: Platform) -> Versions {
    match platform.as_str() {
        "snapchat_ads" | "pinterest_ads" | "microsoft_ads" => Versions::OneServed,
        "amazon_ads" => Versions::InPaths,
        "reddit_ads" => Versions::Sunset("v2"),
        // X answers a version before 11 as "not available".
        "x_ads" => Versions::Sunset("10"),
        _ => Versions::Sunset("v0"),
    }
}

/// Definitions other than the default, per platform: each must load exactly its own truth, and differ
/// from the default on some day (so a connector that ignored the option could not pass).
fn definitions(platform: Platform) -> Vec<serde_json::Value> {
    use serde_json::json;
    match platform {
        Platform::GoogleAds => vec![
            json!({"conversion_metric": "all_conversions"}),
            // One action, by name and by id: segmented by conversion action, merged into delivery rows.
            json!({"conversion_metric": "all_conversions", "conversion_actions": ["Lead form"]}),
            json!({"conversion_metric": "all_conversions", "conversion_actions": [900000002u64, "Purchase"]}),
            // A secondary action is not in `conversions`: nothing counts.
            json!({"conversion_actions": ["Lead form"]}),
        ],
        Platform::MetaAds => vec![
            json!({"conversion_action_types": ["omni_purchase"], "attribution_windows": ["7d_click", "1d_view"]}),
            json!({"conversion_action_types": ["offsite_conversion.fb_pixel_purchase"], "attribution_windows": ["1d_click"]}),
            json!({"conversion_action_types": ["purchase", "lead"], "attribution_windows": ["28d_click"]}),
            json!({"conversion_action_types": ["offsite_conversion.fb_pixel_lead"]}),
        ],
        Platform::TikTokAds => vec![
            json!({"conversion_metric": "complete_payment", "conversion_value_metric": "total_complete_payment_rate"}),
            json!({"conversion_metric": "form", "conversion_value_metric": "none"}),
        ],
        Platform::LinkedInAds => vec![
            json!({"conversion_metric": "externalWebsitePostClickConversions", "conversion_value_metric": "none"}),
            json!({"conversion_metric": "oneClickLeads", "conversion_value_metric": "none"}),
            // Named conversion rules, by name and by id: the CONVERSION pivot, merged into creative rows.
            json!({"conversion_rules": ["Purchase"]}),
            json!({"conversion_rules": [7310002u64], "conversion_metric": "externalWebsitePostClickConversions"}),
            json!({"conversion_rules": ["Website lead", "Purchase"], "conversion_metric": "externalWebsitePostViewConversions"}),
        ],
        // A connector spec's options are its own (the declared suite tests them).
        Platform::Declared(_) => vec![],
    }
}

async fn each_conversion_definition_reconciles_with_its_truth(platform: Platform) {
    let (sandbox, addr) = start_sandbox().await;
    sandbox.restate(); // late-attributed conversions: outside a 1-day click window
    let ctx = context();
    let window = DateWindow::new(today() - Days::new(20), today()).unwrap();
    let defaults = mdp_sources::SourceOptions::defaults(platform);
    for written in definitions(platform) {
        let serde_json::Value::Object(map) = written.clone() else { unreachable!() };
        let options = mdp_sources::SourceOptions::parse(platform, map).unwrap();
        let label = options.conversion_definition();
        let mut settings = settings(platform, addr, &sandbox);
        settings.options = options.clone();
        let source = configure(settings).unwrap();
        let mut differs = false;
        for account_id in &source.settings().accounts {
            let account = source.account(account_id, &ctx).await.unwrap();
            let got = sum_by_day(&all_spend_rows(source.as_ref(), &account, window, &ctx).await);
            let truth = sandbox.conversion_truth(account_id, window.start(), window.end(), &options).unwrap();
            let default = sandbox.conversion_truth(account_id, window.start(), window.end(), &defaults).unwrap();
            for ((day, conversions, value), (_, default_conversions, default_value)) in truth.into_iter().zip(default) {
                let g = got.get(&day).copied().unwrap_or_default();
                assert_eq!(
                    (g.3, g.4),
                    (micros(conversions), micros(value)),
                    "{platform} `{label}` account {account_id} on {day}: (conversions, value)"
                );
                differs |= (conversions, value) != (default_conversions, default_value);
            }
        }
        assert!(differs, "{platform} `{label}`: the test data tells this definition from the default");
    }
}

/// A named conversion (Google's conversion action, LinkedIn's conversion rule) the account does not
/// have would count nothing, silently: it is refused, listing what the account has.
#[tokio::test]
async fn a_named_conversion_the_account_lacks_is_refused_listing_what_it_has() {
    use serde_json::json;
    let cases = [
        (
            Platform::GoogleAds,
            json!({"conversion_actions": ["Purchase", "Purchases"]}),
            "Purchase (900000001), Lead form (900000002)",
        ),
        (
            Platform::LinkedInAds,
            json!({"conversion_rules": ["Purchase", "Purchases"]}),
            "Purchase (7310001), Website lead (7310002)",
        ),
    ];
    let (sandbox, addr) = start_sandbox().await;
    let ctx = context();
    let window = DateWindow::new(today() - Days::new(3), today()).unwrap();
    for (platform, written, listed) in cases {
        let serde_json::Value::Object(map) = written else { unreachable!() };
        let mut settings = settings(platform, addr, &sandbox);
        settings.options = mdp_sources::SourceOptions::parse(platform, map).unwrap();
        let source = configure(settings).unwrap();
        let account = source.account(&source.settings().accounts[0], &ctx).await.unwrap();
        let stream = source.streams().iter().find(|s| s.kind == StreamKind::Daily).unwrap();
        let error = collect_daily(source.as_ref(), stream.name, &account, window, &ctx).await.unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, SourceError::Config { .. }), "{platform}: {text}");
        assert!(text.contains("\"Purchases\" (by name or id)") && text.contains(listed), "{platform}: {text}");
    }
}

/// (an optional field, a required one) of each platform's report, as its API names them.
fn fields_to_retire(platform: Platform) -> (&'static str, &'static str) {
    match platform {
        Platform::GoogleAds => ("metrics.video_trueview_views", "metrics.cost_micros"),
        Platform::MetaAds => ("inline_post_engagement", "spend"),
        Platform::TikTokAds => ("likes", "spend"),
        Platform::LinkedInAds => ("videoViews", "costInLocalCurrency"),
        Platform::Declared(declared) => panic!("{} has no optional fields", declared.as_str()),
    }
}

async fn a_retired_optional_field_is_dropped_and_a_required_one_fails_clearly(platform: Platform) {
    let (optional, required) = fields_to_retire(platform);
    let (sandbox, addr) = start_sandbox().await;
    sandbox.retire_field(platform, optional);
    let source = configure(settings(platform, addr, &sandbox)).unwrap();
    let ctx = context();
    let window = DateWindow::new(today() - Days::new(14), today()).unwrap();
    for account_id in &source.settings().accounts {
        let account = source.account(account_id, &ctx).await.unwrap();
        let rows = all_spend_rows(source.as_ref(), &account, window, &ctx).await;
        assert!(!rows.is_empty(), "{platform}: rows were read without `{optional}`");
        let got = sum_by_day(&rows);
        let truth = sandbox.truth(platform, account_id, window.start(), window.end()).unwrap();
        for (day, m) in truth {
            let g = got.get(&day).copied().unwrap_or_default();
            assert_eq!((g.0, g.1, g.2), (m.impressions, m.clicks, micros(m.spend_micros)), "{platform} {day}");
        }
        let dropped = |r: &PerformanceRecord| match optional {
            "likes" => r.likes.is_none(),
            "inline_post_engagement" => !r.payload.contains("inline_post_engagement"),
            _ => r.video_views.is_none(),
        };
        assert!(rows.iter().all(dropped), "{platform}: `{optional}` was not read, so it is NULL (not 0)");
    }

    let (sandbox, addr) = start_sandbox().await;
    sandbox.retire_field(platform, required);
    let source = configure(settings(platform, addr, &sandbox)).unwrap();
    let account_id = &source.settings().accounts[0];
    let account = source.account(account_id, &ctx).await.unwrap();
    let stream = source.streams().iter().find(|s| s.kind == StreamKind::Daily).unwrap();
    let error = collect_daily(source.as_ref(), stream.name, &account, window, &ctx).await.unwrap_err().to_string();
    assert!(error.contains(&format!("`{required}` is a field mdp needs")), "{platform}: {error}");
}

macro_rules! compliance {
    ($($module:ident => $platform:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[tokio::test]
            async fn reconciles_with_ground_truth() { super::reconciles_with_ground_truth($platform).await }
            #[tokio::test]
            async fn survives_transient_faults() { super::survives_transient_faults($platform).await }
            #[tokio::test]
            async fn reports_hard_failures_clearly() { super::reports_hard_failures_clearly($platform).await }
            #[tokio::test]
            async fn a_retired_optional_field_is_dropped_and_a_required_one_fails_clearly() {
                super::a_retired_optional_field_is_dropped_and_a_required_one_fails_clearly($platform).await
            }
            #[tokio::test]
            async fn each_conversion_definition_reconciles_with_its_truth() {
                super::each_conversion_definition_reconciles_with_its_truth($platform).await
            }
        }
    )*};
}

compliance!(tiktok_ads => Platform::TikTokAds, meta_ads => Platform::MetaAds, linkedin_ads => Platform::LinkedInAds, google_ads => Platform::GoogleAds,);

/// The platforms of built-in connector specs pass the same suite; their conversion definitions are their
/// specs' own options (tests/declared.rs).
macro_rules! declared_compliance {
    ($($module:ident => $name:literal),* $(,)?) => {$(
        mod $module {
            use super::*;
            fn platform() -> Platform {
                mdp_spec::register_builtin();
                $name.parse().expect("a built-in spec")
            }
            #[tokio::test]
            async fn reconciles_with_ground_truth() { super::reconciles_with_ground_truth(platform()).await }
            #[tokio::test]
            async fn survives_transient_faults() { super::survives_transient_faults(platform()).await }
            #[tokio::test]
            async fn reports_hard_failures_clearly() { super::reports_hard_failures_clearly(platform()).await }
        }
    )*};
}

declared_compliance!(
    reddit_ads => "reddit_ads",
    snapchat_ads => "snapchat_ads",
    pinterest_ads => "pinterest_ads",
    microsoft_ads => "microsoft_ads",
    amazon_ads => "amazon_ads",
    x_ads => "x_ads",
);
