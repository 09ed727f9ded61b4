//! Google Ads API (reports through `GoogleAdsService.SearchStream`).

use mdp_core::Platform;

use crate::{Source, SourceError, SourceSettings};

/// Build this platform's connector (placeholder until the connector lands).
pub(crate) fn connector(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    Err(SourceError::Config { source_name: settings.name.clone(), message: format!("the {} connector is not built yet", settings.platform) })
}

use crate::{CredentialSpec, SourceKind};

pub(crate) const KIND: SourceKind = SourceKind {
    platform: Platform::GoogleAds,
    credentials: &[
        CredentialSpec {
            name: "access_token",
            required: true,
            description: "OAuth 2.0 access token, sent as `Authorization: Bearer <token>`",
        },
        CredentialSpec {
            name: "developer_token",
            required: false,
            description: "Google Ads API developer token, sent as the `developer-token` header",
        },
    ],
    // Google's default click-through conversion window is 30 days: conversions keep arriving that long.
    default_lookback_days: 30,
    default_api_version: "v21",
    default_base_url: "https://googleads.googleapis.com",
    docs_url: "https://developers.google.com/google-ads/api/docs/start",
};

#[cfg(test)]
mod tests {
    #[test]
    fn access_token_is_required_developer_token_is_not() {
        assert!(super::KIND.credential("access_token").unwrap().required);
        assert!(!super::KIND.credential("developer_token").unwrap().required);
    }
}
