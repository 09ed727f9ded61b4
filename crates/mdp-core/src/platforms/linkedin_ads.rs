//! LinkedIn Marketing API: `/rest/…` finders and `adAnalytics`.

use crate::source_kind::{CredentialSpec, SourceKind, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS};
use crate::Platform;

/// Creative × UTC day. LinkedIn sets no day limit on DAILY reports, but one answer is unpaged and capped
/// (15,000 elements), and a window's partial answers are held until merged, so windows stay at 10 days.
pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: 10,
    description: "creative × UTC day: spend, impressions, clicks, website conversions and value, video views, likes, comments, shares",
};

pub const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY];

pub const KIND: SourceKind = SourceKind {
    platform: Platform::LinkedInAds,
    credentials: &[CredentialSpec {
        name: "access_token",
        required: true,
        description: "OAuth 2.0 access token with the r_ads_reporting scope, sent as `Authorization: Bearer <token>`",
    }],
    options: &[],
    default_lookback_days: 30,
    // Sent as the `LinkedIn-Version` header (YYYYMM); LinkedIn retires versions after about a year.
    default_api_version: "202510",
    default_base_url: "https://api.linkedin.com",
    docs_url: "https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting",
    streams: STREAMS,
};
