//! Google Ads API (reports through `GoogleAdsService.SearchStream`).

mod connector;

pub use connector::{GoogleAds, AD_DAILY, CAMPAIGN_DAILY};

use mdp_core::Platform;

use crate::{Source, SourceError, SourceSettings};

/// Build this platform's connector.
pub(crate) fn connector(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(GoogleAds::new(settings)?))
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
    streams: connector::STREAMS,
};

#[cfg(test)]
mod tests {
    #[test]
    fn access_token_is_required_developer_token_is_not() {
        assert!(super::KIND.credential("access_token").unwrap().required);
        assert!(!super::KIND.credential("developer_token").unwrap().required);
    }
}
