//! LinkedIn Marketing API (`/rest/adAnalytics`).

use mdp_core::Platform;

use crate::{Source, SourceError, SourceSettings};

/// Build this platform's connector (placeholder until the connector lands).
pub(crate) fn connector(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    Err(SourceError::Config { source_name: settings.name.clone(), message: format!("the {} connector is not built yet", settings.platform) })
}

use crate::{CredentialSpec, SourceKind};

pub(crate) const KIND: SourceKind = SourceKind {
    platform: Platform::LinkedInAds,
    credentials: &[CredentialSpec {
        name: "access_token",
        required: true,
        description: "OAuth 2.0 access token with the r_ads_reporting scope, sent as `Authorization: Bearer <token>`",
    }],
    default_lookback_days: 30,
    // Sent as the `LinkedIn-Version` header (YYYYMM); LinkedIn retires versions after about a year.
    default_api_version: "202510",
    default_base_url: "https://api.linkedin.com",
    docs_url: "https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting",
};

#[cfg(test)]
mod tests {
    #[test]
    fn api_version_is_a_yyyymm_month() {
        let version = super::KIND.default_api_version;
        assert_eq!(version.len(), 6);
        assert!(version.chars().all(|character| character.is_ascii_digit()));
        let month: u32 = version[4..].parse().unwrap();
        assert!((1..=12).contains(&month));
    }
}
