//! LinkedIn Marketing API (`/rest/adAnalytics`).
//!
//! Hierarchy mapping (LinkedIn → mdp): campaign group → **campaign**, campaign → **ad group**,
//! creative → **ad**. Ids are the numeric part of LinkedIn's URNs everywhere (entities and performance
//! rows alike): `urn:li:sponsoredCreative:123` is ad `123`; the full records keep the URNs in the payload.
//! Report dates are UTC days, whatever the account (LinkedIn ad accounts carry no reporting time zone).
//! See [`LinkedInAds`] for the requests and the traps handled; `api.rs` has the requests, finder pages
//! and error classification, `report.rs` the `adAnalytics` queries and merging.

mod api;
mod connector;
mod report;

pub use connector::LinkedInAds;
pub use mdp_core::platforms::linkedin_ads::{AD_DAILY, KIND, STREAMS};

const PLATFORM: mdp_core::Platform = mdp_core::Platform::LinkedInAds;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use chrono::NaiveDate;
    use mdp_core::SourceOptions;
    use mdp_sandbox::{Sandbox, Scale, World};

    use super::*;
    use crate::http::{HttpDriver, RetryPolicy};
    use crate::{Credential, ReadContext, Source, SourceError, SourceSettings};

    async fn connect(api_version: &str) -> (LinkedInAds, String, ReadContext) {
        let sandbox = Sandbox::new(World::new(3, NaiveDate::from_ymd_opt(2026, 6, 30).unwrap(), Scale::default()));
        let (addr, _) = mdp_sandbox::serve(sandbox.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let account = sandbox.world.accounts(PLATFORM).next().unwrap().id.clone();
        let settings = SourceSettings {
            name: "linkedin".into(),
            platform: PLATFORM,
            base_url: format!("http://{addr}"),
            api_version: api_version.into(),
            accounts: vec![account.clone()],
            credentials: BTreeMap::from([("access_token".to_string(), Credential::new("secret-token"))]),
            token_url: None,
            options: SourceOptions::defaults(PLATFORM),
        };
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            request_timeout: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_millis(50),
        };
        (LinkedInAds::new(settings).unwrap(), account, ReadContext { http: HttpDriver::new(policy).unwrap() })
    }

    #[tokio::test]
    async fn the_version_header_decides_what_linkedin_serves() {
        let (source, account, ctx) = connect(KIND.default_api_version).await;
        assert_eq!(source.account(&account, &ctx).await.unwrap().id, account);

        let (retired, account, ctx) = connect("202001").await;
        match retired.account(&account, &ctx).await.unwrap_err() {
            SourceError::SunsetVersion { version, message, .. } => {
                assert_eq!(version, "202001");
                assert!(!message.is_empty(), "LinkedIn's own words are kept");
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn an_unknown_account_is_not_found_not_a_sunset() {
        let (source, _, ctx) = connect(KIND.default_api_version).await;
        let error = source.account("999999", &ctx).await.unwrap_err();
        assert!(matches!(error, SourceError::NotFound { .. }), "{error:?}");
        let text = error.to_string();
        assert!(text.contains("/rest/adAccounts/999999"), "the path: {text}");
        assert!(text.contains("check the account id"), "what to check: {text}");
        assert!(!text.contains("secret-token") && !text.contains("sunset"), "{text}");
    }
}
