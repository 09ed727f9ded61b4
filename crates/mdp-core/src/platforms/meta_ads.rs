//! Meta Marketing API: the Graph API's ad account edges and `/insights`.

use serde::{Deserialize, Deserializer};

use crate::source_kind::{
    ApiVersion, CredentialSpec, OptionSpec, SourceKind, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
};
use crate::Platform;

/// Daily insights; window parts stay within 10 days: large daily ranges time out or are refused, and
/// a part's records are held until its paging completes.
pub const AD_DAILY: StreamSpec = StreamSpec {
    name: "ad_daily",
    kind: StreamKind::Daily,
    max_window_days: 10,
    description: "ad × day: spend, impressions, clicks, conversions and value (configured action types), video views, reactions, comments, shares",
};

pub const STREAMS: &[StreamSpec] = &[CAMPAIGNS, AD_GROUPS, ADS, AD_DAILY];

/// Rows per page (`limit`) unless `options.page_size` lowers it (Meta suggests smaller pages on timeouts).
pub const MAX_PAGE_SIZE: u32 = 500;

/// The action types counted as conversions when `options.conversion_action_types` is not set
/// (Fivetran's defaults).
pub const DEFAULT_CONVERSION_ACTION_TYPES: &[&str] = &[
    "onsite_conversion.purchase",
    "onsite_conversion.lead_grouped",
    "offsite_conversion.fb_pixel_purchase",
    "offsite_conversion.fb_pixel_lead",
    "offsite_conversion.fb_pixel_custom",
];

/// The attribution windows Meta still returns per action (7d_view and 28d_view ended on 2026-01-12).
pub const ATTRIBUTION_WINDOWS: &[&str] = &["1d_click", "7d_click", "28d_click", "1d_view", "1d_ev"];

/// Where Meta lists each version's Marketing API expiry.
const CHANGELOG: &str = "https://developers.facebook.com/docs/marketing-api/marketing-api-changelog/versions";

pub const KIND: SourceKind = SourceKind {
    platform: Platform::MetaAds,
    credentials: &[CredentialSpec {
        name: "access_token",
        required: true,
        description:
            "Marketing API access token (a system-user token is best), sent as `Authorization: Bearer <token>`",
    }],
    // Long-lived tokens, no refresh grant: Meta system-user tokens (optionally never expiring), TikTok
    // for Business tokens that stay valid until the advertiser revokes them.
    oauth: None,
    options: &[
        OptionSpec {
            name: "conversion_action_types",
            description: "the action types whose `actions` / `action_values` count as conversions, a list such as \
                          [offsite_conversion.fb_pixel_purchase] (default: Fivetran's five purchase and lead types)",
            default: None,
        },
        OptionSpec {
            name: "attribution_windows",
            description: "the attribution windows summed into conversions, e.g. [7d_click, 1d_view], sent as \
                          `action_attribution_windows`: at most one of 1d_click / 7d_click / 28d_click, plus \
                          1d_view and 1d_ev (default: each ad set's own attribution setting)",
            default: None,
        },
        OptionSpec {
            name: "page_size",
            description: "rows per page, 1 to 500 (default 500); lower it if Meta times out",
            default: None,
        },
        OptionSpec {
            name: "skip_fields",
            description:
                "optional report fields not to request, e.g. [inline_post_engagement] (mdp drops one the API refuses \
                          by itself, with a warning naming it; listing it here silences that)",
            default: None,
        },
    ],
    // Meta attributes conversions up to 28 days after the click (its longest attribution window).
    default_lookback_days: 28,
    lag_days: 0,
    // The Marketing API's own expiry dates (shorter than the Graph API's for the same version).
    default_api_version: "v27.0",
    api_versions: &[
        ApiVersion { version: "v22.0", sunset: Some("2026-02-19"), source: CHANGELOG },
        ApiVersion { version: "v23.0", sunset: Some("2026-06-09"), source: CHANGELOG },
        ApiVersion { version: "v24.0", sunset: Some("2026-11-10"), source: CHANGELOG },
        ApiVersion { version: "v25.0", sunset: Some("2027-02-23"), source: CHANGELOG },
        ApiVersion { version: "v26.0", sunset: None, source: CHANGELOG },
        ApiVersion { version: "v27.0", sunset: None, source: CHANGELOG },
    ],
    default_base_url: "https://graph.facebook.com",
    docs_url: "https://developers.facebook.com/docs/marketing-api/insights",
    streams: STREAMS,
    conversion_label: None,
};

/// The `options:` of a Meta source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaAdsOptions {
    /// Optional report fields not to request (from [`OPTIONAL_FIELDS`]).
    pub skip_fields: Vec<String>,
    /// The action types summed into conversions and conversion value, without duplicates, never empty.
    pub conversion_action_types: Vec<String>,
    /// The windows whose values are summed (from [`ATTRIBUTION_WINDOWS`], at most one click window);
    /// empty: each ad set's unified attribution setting (the actions' `value`).
    pub attribution_windows: Vec<String>,
    /// Rows per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

impl Default for MetaAdsOptions {
    fn default() -> Self {
        MetaAdsOptions {
            skip_fields: Vec::new(),
            conversion_action_types: DEFAULT_CONVERSION_ACTION_TYPES.iter().map(|t| t.to_string()).collect(),
            attribution_windows: Vec::new(),
            page_size: MAX_PAGE_SIZE,
        }
    }
}

impl MetaAdsOptions {
    pub(crate) fn set<'de, V: Deserializer<'de>>(&mut self, key: &str, value: V) -> Result<(), String> {
        match key {
            "conversion_action_types" => {
                let Some(items) = Option::<Vec<String>>::deserialize(value)
                    .map_err(|e| format!("expected a list of action types such as [omni_purchase] ({e})"))?
                else {
                    self.conversion_action_types = MetaAdsOptions::default().conversion_action_types;
                    return Ok(());
                };
                let mut types: Vec<String> = Vec::new();
                for item in items {
                    let name = item.trim();
                    if name.is_empty() {
                        return Err("an action type name cannot be empty".into());
                    }
                    if !types.iter().any(|known| known == name) {
                        types.push(name.to_string());
                    }
                }
                if types.is_empty() {
                    return Err("the list is empty: list the action types that count as conversions, or leave \
                                the option out for the defaults"
                        .into());
                }
                self.conversion_action_types = types;
                Ok(())
            }
            "attribution_windows" => {
                let items = Option::<Vec<String>>::deserialize(value)
                    .map_err(|e| format!("expected a list of windows such as [7d_click, 1d_view] ({e})"))?
                    .unwrap_or_default();
                let mut windows: Vec<String> = Vec::new();
                for item in items {
                    let window = item.trim();
                    if matches!(window, "7d_view" | "28d_view") {
                        return Err(format!(
                            "Meta stopped returning {window} on 2026-01-12; use 1d_view (or leave the option out \
                             for each ad set's own setting)"
                        ));
                    }
                    if !ATTRIBUTION_WINDOWS.contains(&window) {
                        return Err(format!(
                            "{window:?} is not a window Meta returns; use {}",
                            ATTRIBUTION_WINDOWS.join(", ")
                        ));
                    }
                    if !windows.iter().any(|known| known == window) {
                        windows.push(window.to_string());
                    }
                }
                let clicks: Vec<&str> = windows.iter().map(String::as_str).filter(|w| w.ends_with("_click")).collect();
                if clicks.len() > 1 {
                    return Err(format!(
                        "{} overlap (a 1-day click is also a 7-day click): keep one click window",
                        clicks.join(" and ")
                    ));
                }
                self.attribution_windows = windows;
                Ok(())
            }
            "page_size" => {
                let size = Option::<u64>::deserialize(value)
                    .map_err(|e| format!("expected a number from 1 to {MAX_PAGE_SIZE} ({e})"))?
                    .unwrap_or(u64::from(MAX_PAGE_SIZE));
                self.page_size = u32::try_from(size)
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| format!("expected a number from 1 to {MAX_PAGE_SIZE}, got {size}"))?;
                Ok(())
            }
            other => Err(format!("meta_ads has no option '{other}'")),
        }
    }
}

/// `123` or `act_123` → `123`; `None` when it is not an ad account id.
pub fn normalize_account_id(id: &str) -> Option<String> {
    let id = id.trim();
    let digits = id.strip_prefix("act_").unwrap_or(id);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.to_string())
}

/// Insights fields a Meta source can do without (kept in the payload only).
pub const OPTIONAL_FIELDS: &[&str] = &["inline_link_clicks", "inline_post_engagement"];
