//! Google Ads API: reports through `GoogleAdsService.SearchStream`.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::source_kind::{
    ApiVersion, CredentialSpec, OAuthSpec, OptionSpec, SourceKind, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
    CLIENT_ID_SPEC, CLIENT_SECRET_SPEC, REFRESH_TOKEN_SPEC,
};
use crate::Platform;

/// The API has no hard limit on a report's date range, but a searchStream answer is one JSON body read
/// whole: 10-day windows keep each answer to a few megabytes at ad level.
const MAX_WINDOW_DAYS: u32 = 10;

pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: MAX_WINDOW_DAYS,
    description: "ad × day (ad_group_ad): spend, impressions, clicks, conversions, conversion value, video views",
};

/// Campaign × day: the only grain at which Performance Max campaigns report (they have no ad rows).
pub const CAMPAIGN_DAILY: StreamSpec = StreamSpec {
    name: "campaign_daily",
    kind: StreamKind::Daily,
    max_window_days: MAX_WINDOW_DAYS,
    description: "campaign × day: all of a campaign's spend, including Performance Max campaigns that have no ad rows",
};

pub const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY, CAMPAIGN_DAILY];

pub const KIND: SourceKind = SourceKind {
    platform: Platform::GoogleAds,
    credentials: &[
        CredentialSpec {
            name: "access_token",
            required: false,
            description: "OAuth 2.0 access token (lives an hour), sent as `Authorization: Bearer <token>`; for \
                          scheduled runs configure client_id, client_secret and refresh_token instead",
        },
        CLIENT_ID_SPEC,
        CLIENT_SECRET_SPEC,
        REFRESH_TOKEN_SPEC,
        CredentialSpec {
            name: "service_account_key",
            required: false,
            description: "a service account's JSON key file (`{ file: key.json }`), instead of client_id, client_secret \
                          and refresh_token: mdp signs a JWT with it for each hour's access token; add the service \
                          account's email as a user of the Google Ads account (or set impersonated_email)",
        },
        CredentialSpec {
            name: "developer_token",
            required: false,
            description: "Google Ads API developer token, sent as the `developer-token` header",
        },
    ],
    oauth: Some(OAuthSpec {
        token_url: "https://oauth2.googleapis.com/token",
        authorize_url: "https://accounts.google.com/o/oauth2/v2/auth",
        scopes: &["https://www.googleapis.com/auth/adwords"],
        authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        lifetimes: "access tokens live 1 hour; refresh tokens until revoked (7 days for apps in testing)",
        pkce: true,
        client_auth_basic: false,
        service_account: true,
    }),
    options: &[
        OptionSpec {
            name: "login_customer_id",
            description: "the manager (MCC) account to act through, e.g. \"123-456-7890\", sent as the \
                          `login-customer-id` header (default: none, the token's own access)",
            default: None,
        },
        OptionSpec {
            name: "impersonated_email",
            description: "with service_account_key: the Google Workspace user the service account acts as, through \
                          domain-wide delegation of the adwords scope (the JWT's `sub`; default: none, the service \
                          account's own access, which Google recommends)",
            default: None,
        },
        OptionSpec {
            name: "conversion_actions",
            description: "only these conversion actions count, by name or id, e.g. [Purchase, 123456789] \
                          (read segmented by `segments.conversion_action`; default: every action the \
                          conversion_metric counts)",
            default: None,
        },
        OptionSpec {
            name: "conversion_metric",
            description: "which conversions count: `conversions` (the actions marked primary, Google's \
                          Conversions column; default) or `all_conversions` (every conversion action, \
                          secondary ones too), with the matching value column",
            default: None,
        },
        OptionSpec {
            name: "skip_fields",
            description: "optional report fields not to request, e.g. [metrics.video_trueview_views] (mdp drops one the API refuses \
                          by itself, with a warning naming it; listing it here silences that)",
            default: None,
        },
    ],
    // Google's default click-through conversion window is 30 days: conversions keep arriving that long.
    default_lookback_days: 30,
    lag_days: 0,
    // Google sunsets a version about a year after its release. v23–v26 have no announced date yet
    // (Google's projections: v23 Feb 2027, v24 May 2027, v25 Aug 2027, v26 Nov 2027).
    default_api_version: "v26",
    api_versions: &[
        ApiVersion {
            version: "v20",
            sunset: Some("2026-06-10"),
            source: "https://developers.google.com/ads/blog/posts/2026/04/google-ads-api-v20-sunset-reminder",
        },
        ApiVersion {
            version: "v21",
            sunset: Some("2026-08-05"),
            source: "https://developers.google.com/ads/blog/posts/2026/06/google-ads-api-v21-sunset-reminder",
        },
        ApiVersion {
            version: "v22",
            sunset: Some("2026-10-07"),
            source: "https://developers.google.com/ads/blog/posts/2026/09/google-ads-api-v22-sunset-reminder",
        },
        ApiVersion {
            version: "v23",
            sunset: None,
            source: "https://developers.google.com/google-ads/api/docs/sunset-dates",
        },
        ApiVersion {
            version: "v24",
            sunset: None,
            source: "https://developers.google.com/google-ads/api/docs/sunset-dates",
        },
        ApiVersion {
            version: "v25",
            sunset: None,
            source: "https://developers.google.com/google-ads/api/docs/sunset-dates",
        },
        ApiVersion {
            version: "v26",
            sunset: None,
            source: "https://developers.google.com/google-ads/api/docs/sunset-dates",
        },
    ],
    default_base_url: "https://googleads.googleapis.com",
    docs_url: "https://developers.google.com/google-ads/api/docs/start",
    streams: STREAMS,
    conversion_label: None,
};

/// The `options:` of a Google Ads source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoogleAdsOptions {
    /// Optional report fields not to request (from [`OPTIONAL_FIELDS`]).
    pub skip_fields: Vec<String>,
    /// Digits only (`1112223333`), when acting through a manager account.
    pub login_customer_id: Option<String>,
    /// The Workspace user a service account acts as (domain-wide delegation), if any.
    pub impersonated_email: Option<String>,
    /// Which conversion columns are read as conversions and conversion value.
    pub conversion_metric: GoogleConversionMetric,
    /// Only these conversion actions (names or ids) count; empty: all the metric counts.
    pub conversion_actions: Vec<String>,
}

/// Google's two conversion columns: the primary actions' (what bidding optimizes and the UI's
/// "Conversions" shows) or every action's ("All conv.").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GoogleConversionMetric {
    #[default]
    Conversions,
    AllConversions,
}

impl GoogleConversionMetric {
    /// The GAQL fields read as (conversions, conversion value).
    pub fn fields(self) -> (&'static str, &'static str) {
        match self {
            GoogleConversionMetric::Conversions => ("metrics.conversions", "metrics.conversions_value"),
            GoogleConversionMetric::AllConversions => ("metrics.all_conversions", "metrics.all_conversions_value"),
        }
    }

    /// The name written in mdp.yml.
    pub fn name(self) -> &'static str {
        match self {
            GoogleConversionMetric::Conversions => "conversions",
            GoogleConversionMetric::AllConversions => "all_conversions",
        }
    }
}

impl GoogleAdsOptions {
    pub(crate) fn set<'de, V: Deserializer<'de>>(&mut self, key: &str, value: V) -> Result<(), String> {
        match key {
            "login_customer_id" => {
                self.login_customer_id = match value.deserialize_any(IdText).map_err(|e| e.to_string())? {
                    Some(raw) => Some(customer_id(&raw)?),
                    None => None,
                };
                Ok(())
            }
            "impersonated_email" => {
                let email = Option::<String>::deserialize(value)
                    .map_err(|e| format!("expected a user's email such as ads@example.com ({e})"))?
                    .map(|email| email.trim().to_string())
                    .filter(|email| !email.is_empty());
                if let Some(email) = &email {
                    let (user, domain) = email.split_once('@').unwrap_or_default();
                    if user.is_empty() || !domain.contains('.') || email.contains(char::is_whitespace) {
                        return Err(format!("expected a user's email such as ads@example.com, not {email:?}"));
                    }
                }
                self.impersonated_email = email;
                Ok(())
            }
            "conversion_actions" => {
                self.conversion_actions = super::names_or_ids(value, "conversion action")?;
                Ok(())
            }
            "conversion_metric" => {
                self.conversion_metric = match Option::<String>::deserialize(value)
                    .map_err(|e| format!("expected conversions or all_conversions ({e})"))?
                    .as_deref()
                    .map(str::trim)
                {
                    None | Some("conversions") => GoogleConversionMetric::Conversions,
                    Some("all_conversions") => GoogleConversionMetric::AllConversions,
                    Some(other) => {
                        return Err(format!(
                            "expected conversions (primary actions) or all_conversions (every action), not {other:?}"
                        ))
                    }
                };
                Ok(())
            }
            other => Err(format!("google_ads has no option '{other}'")),
        }
    }
}

/// A customer id as the API wants it: digits only (`123-456-7890` → `1234567890`).
pub fn customer_id(raw: &str) -> Result<String, String> {
    let digits: String = raw.chars().filter(|c| *c != '-' && !c.is_whitespace()).collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("a Google Ads customer id is 10 digits like 123-456-7890, not {raw:?}"));
    }
    Ok(digits)
}

/// An id written as text or as a number (YAML reads `1234567890` as a number); null is "not set".
struct IdText;

impl<'de> Visitor<'de> for IdText {
    type Value = Option<String>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a customer id such as \"123-456-7890\"")
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(text.to_string()))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Self::Value, E> {
        Ok(Some(number.to_string()))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Self::Value, E> {
        Ok(Some(number.to_string()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Report fields a Google Ads source can do without (their columns are then NULL).
pub const OPTIONAL_FIELDS: &[&str] = &["metrics.video_trueview_views", "metrics.video_views"];
