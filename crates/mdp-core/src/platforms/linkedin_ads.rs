//! LinkedIn Marketing API: `/rest/…` finders and `adAnalytics`.

use serde::{Deserialize, Deserializer};

use crate::source_kind::{
    ApiVersion, CredentialSpec, OAuthSpec, OptionSpec, SourceKind, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
    CLIENT_ID_SPEC, CLIENT_SECRET_SPEC, REFRESH_TOKEN_SPEC,
};
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

/// Where LinkedIn lists each version's sunset.
const VERSIONING: &str = "https://learn.microsoft.com/en-us/linkedin/marketing/versioning";

pub const KIND: SourceKind = SourceKind {
    platform: Platform::LinkedInAds,
    credentials: &[
        CredentialSpec {
            name: "access_token",
            required: false,
            description: "OAuth 2.0 access token with the r_ads_reporting scope (lives 60 days), sent as \
                          `Authorization: Bearer <token>`; or configure client_id, client_secret and refresh_token",
        },
        CLIENT_ID_SPEC,
        CLIENT_SECRET_SPEC,
        REFRESH_TOKEN_SPEC,
    ],
    oauth: Some(OAuthSpec {
        token_url: "https://www.linkedin.com/oauth/v2/accessToken",
        authorize_url: "https://www.linkedin.com/oauth/v2/authorization",
        scopes: &["r_ads_reporting", "r_ads"],
        authorize_params: &[],
        lifetimes: "access tokens live 60 days; refresh tokens 365 days from consent (programmatic refresh is \
                    granted to approved Marketing API apps)",
        pkce: false,
        client_auth_basic: false,
        service_account: false,
    }),
    options: &[
        OptionSpec {
            name: "conversion_metric",
            description: "the adAnalytics field counted as conversions: externalWebsiteConversions (default), \
                          externalWebsitePostClickConversions, externalWebsitePostViewConversions, oneClickLeads \
                          or qualifiedLeads",
            default: None,
        },
        OptionSpec {
            name: "conversion_value_metric",
            description: "conversionValueInLocalCurrency (default; LinkedIn values website conversions only) \
                          or none",
            default: None,
        },
        OptionSpec {
            name: "conversion_rules",
            description: "only these conversion rules count, by name or id, e.g. [Purchase, 104512] (read with \
                          the CONVERSION pivot, `q=statistics&pivots=List(CREATIVE,CONVERSION)`, and the rules \
                          of `/rest/conversions`; needs an externalWebsite* conversion_metric; default: every \
                          rule, as LinkedIn's totals count them)",
            default: None,
        },
        OptionSpec {
            name: "skip_fields",
            description: "optional report fields not to request, e.g. [videoViews] (mdp drops one the API refuses \
                          by itself, with a warning naming it; listing it here silences that)",
            default: None,
        },
    ],
    default_lookback_days: 30,
    lag_days: 0,
    // Sent as the `LinkedIn-Version` header (YYYYMM); each version is served for at least a year. 202603 is
    // the newest whose sunset LinkedIn's versioning page confirms; newer monthly versions work when set.
    default_api_version: "202603",
    api_versions: &[
        ApiVersion { version: "202510", sunset: Some("2026-10-15"), source: VERSIONING },
        ApiVersion { version: "202511", sunset: Some("2026-11-16"), source: VERSIONING },
        ApiVersion { version: "202601", sunset: Some("2027-01-15"), source: VERSIONING },
        ApiVersion { version: "202602", sunset: Some("2027-02-15"), source: VERSIONING },
        ApiVersion { version: "202603", sunset: Some("2027-03-16"), source: VERSIONING },
    ],
    default_base_url: "https://api.linkedin.com",
    docs_url: "https://learn.microsoft.com/en-us/linkedin/marketing/integrations/ads-reporting/ads-reporting",
    streams: STREAMS,
    conversion_label: None,
};

/// The adAnalytics fields a LinkedIn source may count as conversions.
pub const CONVERSION_METRICS: &[&str] = &[
    "externalWebsiteConversions",
    "externalWebsitePostClickConversions",
    "externalWebsitePostViewConversions",
    "oneClickLeads",
    "qualifiedLeads",
];

/// The `options:` of a LinkedIn source: which adAnalytics fields are conversions and their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedInAdsOptions {
    /// Optional report fields not to request (from [`OPTIONAL_FIELDS`]).
    pub skip_fields: Vec<String>,
    pub conversion_metric: String,
    /// `None`: the definition has no value (conversion value is 0).
    pub conversion_value_metric: Option<String>,
    /// Only these conversion rules (names or ids) count; empty: every rule.
    pub conversion_rules: Vec<String>,
}

impl Default for LinkedInAdsOptions {
    fn default() -> Self {
        LinkedInAdsOptions {
            skip_fields: Vec::new(),
            conversion_metric: "externalWebsiteConversions".to_string(),
            conversion_value_metric: Some("conversionValueInLocalCurrency".to_string()),
            conversion_rules: Vec::new(),
        }
    }
}

impl LinkedInAdsOptions {
    pub(crate) fn set<'de, V: Deserializer<'de>>(&mut self, key: &str, value: V) -> Result<(), String> {
        if key == "conversion_rules" {
            self.conversion_rules = super::names_or_ids(value, "conversion rule")?;
            return Ok(());
        }
        let name = Option::<String>::deserialize(value)
            .map_err(|e| format!("expected an adAnalytics field name such as oneClickLeads ({e})"))?;
        let name = name.as_deref().map(str::trim);
        match key {
            "conversion_metric" => {
                self.conversion_metric = match name {
                    None => LinkedInAdsOptions::default().conversion_metric,
                    Some(field) if CONVERSION_METRICS.contains(&field) => field.to_string(),
                    Some(field) => {
                        return Err(format!(
                            "{field:?} is not a conversion field; use one of {}",
                            CONVERSION_METRICS.join(", ")
                        ))
                    }
                };
                Ok(())
            }
            "conversion_value_metric" => {
                self.conversion_value_metric = match name {
                    None => LinkedInAdsOptions::default().conversion_value_metric,
                    Some("none") => None,
                    Some("conversionValueInLocalCurrency") => Some("conversionValueInLocalCurrency".to_string()),
                    Some(field) => {
                        return Err(format!(
                            "{field:?}: LinkedIn's only value field is conversionValueInLocalCurrency (or none)"
                        ))
                    }
                };
                Ok(())
            }
            other => Err(format!("linkedin_ads has no option '{other}'")),
        }
    }

    /// What the options say together (each key was checked alone): conversion rules count website
    /// conversions, so they need one of the externalWebsite* fields.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.conversion_rules.is_empty() && !self.conversion_metric.starts_with("externalWebsite") {
            return Err((
                "conversion_rules",
                format!(
                    "conversion rules count website conversions, but conversion_metric is {}; use \
                     externalWebsiteConversions (or its PostClick/PostView part), or remove conversion_rules",
                    self.conversion_metric
                ),
            ));
        }
        Ok(())
    }
}

/// adAnalytics fields a LinkedIn source can do without (video views and engagement columns are then
/// NULL; the others live in the payload only). A field configured as the conversion metric is required.
pub const OPTIONAL_FIELDS: &[&str] = &[
    "costInUsd",
    "videoViews",
    "likes",
    "comments",
    "shares",
    "landingPageClicks",
    "externalWebsitePostClickConversions",
    "externalWebsitePostViewConversions",
    "oneClickLeads",
    "oneClickLeadFormOpens",
    "videoStarts",
    "videoCompletions",
    "reactions",
    "follows",
    "otherEngagements",
    "totalEngagements",
    "companyPageClicks",
];
