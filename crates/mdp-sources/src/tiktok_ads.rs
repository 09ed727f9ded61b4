//! TikTok API for Business (`/open_api/v1.3/report/integrated/get/`).

mod connector;

pub use connector::{TikTokAds, AD_DAILY};

use mdp_core::Platform;

use crate::{CredentialSpec, SourceKind};

pub(crate) const KIND: SourceKind = SourceKind {
    platform: Platform::TikTokAds,
    credentials: &[CredentialSpec {
        name: "access_token",
        required: true,
        description: "TikTok for Business long-term access token, sent as the `Access-Token` header",
    }],
    // TikTok restates the last few days; a week covers it with margin.
    default_lookback_days: 7,
    default_api_version: "v1.3",
    default_base_url: "https://business-api.tiktok.com",
    docs_url: "https://business-api.tiktok.com/portal/docs",
    streams: connector::STREAMS,
};

#[cfg(test)]
mod tests {
    #[test]
    fn api_version_is_part_of_the_path_not_a_header() {
        assert!(super::KIND.default_api_version.starts_with('v'));
    }
}
