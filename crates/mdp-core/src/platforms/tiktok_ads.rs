//! TikTok API for Business: `/open_api/{version}/…`, the report at `report/integrated/get/`.

use crate::source_kind::{ApiVersion, CredentialSpec, SourceKind, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS};
use crate::Platform;

/// TikTok answers at most 30 days per daily report request.
pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: 30,
    description:
        "ad × day: spend, impressions, clicks, conversions, purchase value, video views, likes, comments, shares",
};

pub const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY];

pub const KIND: SourceKind = SourceKind {
    platform: Platform::TikTokAds,
    credentials: &[CredentialSpec {
        name: "access_token",
        required: true,
        description: "TikTok for Business long-term access token, sent as the `Access-Token` header",
    }],
    // Long-lived tokens, no refresh grant: Meta system-user tokens (optionally never expiring), TikTok
    // for Business tokens that stay valid until the advertiser revokes them.
    oauth: None,
    options: &[],
    // TikTok restates the last few days; a week covers it with margin.
    default_lookback_days: 7,
    // The path segment after `/open_api/`.
    default_api_version: "v1.3",
    // No deprecation of v1.3 is announced (v1.2 ended on 2023-08-15).
    api_versions: &[ApiVersion {
        version: "v1.3",
        sunset: None,
        source: "https://business-api.tiktok.com/portal/docs",
    }],
    default_base_url: "https://business-api.tiktok.com",
    docs_url: "https://business-api.tiktok.com/portal/docs",
    streams: STREAMS,
};
