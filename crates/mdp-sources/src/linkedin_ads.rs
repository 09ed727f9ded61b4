//! LinkedIn Marketing API (`/rest/adAnalytics`).
//!
//! Hierarchy mapping (LinkedIn → mdp): campaign group → **campaign**, campaign → **ad group**,
//! creative → **ad**. Ids are the numeric part of LinkedIn's URNs everywhere (entities and performance
//! rows alike): `urn:li:sponsoredCreative:123` is ad `123`; the full records keep the URNs in the payload.
//! Report dates are UTC days, whatever the account (LinkedIn ad accounts carry no reporting time zone).
//! See [`LinkedInAds`] for the requests and the traps handled.

mod connector;
mod report;

pub use connector::{LinkedInAds, AD_DAILY};

use mdp_core::Platform;

use crate::{Source, SourceError, SourceSettings};

/// Build this platform's connector.
pub(crate) fn connector(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(LinkedInAds::new(settings)?))
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
    streams: connector::STREAMS,
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
