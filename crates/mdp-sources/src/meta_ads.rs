//! Meta Marketing API (the Graph API's `/insights` edge).

mod connector;

pub use connector::{MetaAds, AD_DAILY, DEFAULT_CONVERSION_ACTION_TYPES};

use mdp_core::Platform;

use crate::{Source, SourceError, SourceSettings};

/// Build this platform's connector.
pub(crate) fn connector(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(MetaAds::new(settings)?))
}

use crate::{CredentialSpec, SourceKind};

pub(crate) const KIND: SourceKind = SourceKind {
    platform: Platform::MetaAds,
    credentials: &[CredentialSpec {
        name: "access_token",
        required: true,
        description:
            "Marketing API access token (a system-user token is best), sent as `Authorization: Bearer <token>`",
    }],
    // Meta attributes conversions up to 28 days after the click (its longest attribution window).
    default_lookback_days: 28,
    default_api_version: "v23.0",
    default_base_url: "https://graph.facebook.com",
    docs_url: "https://developers.facebook.com/docs/marketing-api/insights",
    streams: connector::STREAMS,
};

#[cfg(test)]
mod tests {
    #[test]
    fn looks_back_over_the_28_day_attribution_window() {
        assert_eq!(super::KIND.default_lookback_days, 28);
    }
}
