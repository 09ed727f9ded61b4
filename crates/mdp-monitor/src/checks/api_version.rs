//! The API version watch: whether each source's API version is still served, and for how long. The
//! platforms announce sunsets (`mdp_core::SourceKind::api_versions`); from
//! [`SUNSET_WARNING_DAYS`](mdp_core::SUNSET_WARNING_DAYS) before one this warns, and on the day it
//! fails, since every request of that source then fails. Reads no table.

use mdp_core::{Platform, VersionWatch};

use super::{CheckContext, CheckKind, CheckOutcome, CheckStatus};

/// One outcome per source, named `api_version.<source>`.
pub fn run(ctx: &CheckContext) -> Vec<CheckOutcome> {
    let today = ctx.reference_today();
    ctx.sources
        .iter()
        .filter_map(|source| {
            let platform: Platform = source.platform.parse().ok()?;
            let kind = mdp_core::kind(platform);
            let watch = kind.version_watch(&source.api_version, today);
            let status = match watch {
                VersionWatch::Current { .. } => CheckStatus::Pass,
                VersionWatch::Soon { .. } | VersionWatch::Unknown => CheckStatus::Warn,
                VersionWatch::Sunset { .. } => CheckStatus::Fail,
            };
            let message = kind.version_warning(&source.api_version, today).unwrap_or_else(|| match watch {
                VersionWatch::Current { sunset: Some(sunset) } => {
                    format!("{platform} API version {} is served until {sunset}", source.api_version)
                }
                _ => format!("{platform} API version {}: no sunset announced", source.api_version),
            });
            let mut outcome =
                CheckOutcome::new(CheckKind::ApiVersion, format!("api_version.{}", source.name), status, message);
            outcome.observed = Some(source.api_version.clone());
            outcome.expected = match watch {
                VersionWatch::Current { sunset } => sunset.map(|d| format!("served until {d}")),
                VersionWatch::Soon { sunset, .. } | VersionWatch::Sunset { sunset } => Some(format!("sunset {sunset}")),
                VersionWatch::Unknown => None,
            };
            Some(outcome)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use mdp_project::checks::ChecksConfig;

    use super::*;
    use crate::checks::SourceInfo;

    fn source(name: &str, platform: &str, api_version: &str) -> SourceInfo {
        SourceInfo {
            name: name.into(),
            platform: platform.into(),
            api_version: api_version.into(),
            conversion_definition: String::new(),
            accounts: vec!["1".into()],
            streams: Vec::new(),
            accounts_table: None,
        }
    }

    #[test]
    fn each_source_passes_warns_or_fails_by_its_versions_sunset() {
        let today = chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap();
        let ctx = CheckContext {
            config: ChecksConfig::default(),
            sources: vec![
                source("google", "google_ads", "v26"),
                source("google_old", "google_ads", "v22"),
                source("linkedin", "linkedin_ads", "202602"),
                source("meta_new", "meta_ads", "v31.0"),
            ],
            marts: None,
            today: Some(today),
            reporting_timezone: chrono_tz::UTC,
            reporting_currency: "EUR".into(),
            now: today.and_hms_opt(6, 0, 0).unwrap(),
        };
        let outcomes = run(&ctx);
        let status = |name: &str| outcomes.iter().find(|o| o.check_name == name).map(|o| (o.status, o.message.clone()));
        assert_eq!(status("api_version.google").unwrap().0, CheckStatus::Pass);
        let (old, message) = status("api_version.google_old").unwrap();
        assert_eq!(old, CheckStatus::Fail, "{message}");
        assert!(message.contains("was sunset on 2026-10-07") && message.contains("api_version: v26"), "{message}");
        let (soon, message) = status("api_version.linkedin").unwrap();
        assert_eq!(soon, CheckStatus::Warn, "{message}");
        assert!(message.contains("45 days left"), "{message}");
        assert_eq!(status("api_version.meta_new").unwrap().0, CheckStatus::Warn, "unknown to this mdp");
    }
}
