//! TikTok API for Business: `/open_api/{version}/…`, the report at `report/integrated/get/`.

use serde::{Deserialize, Deserializer};

use crate::source_kind::{
    ApiVersion, CredentialSpec, OptionSpec, SourceKind, StreamKind, StreamSpec, ADS, AD_GROUPS, CAMPAIGNS,
};
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
    options: &[
        OptionSpec {
            name: "conversion_metric",
            description: "the report metric counted as conversions: conversion (default: each ad group's \
                          optimization event), real_time_conversion, complete_payment or form",
            default: None,
        },
        OptionSpec {
            name: "conversion_value_metric",
            description: "the report metric read as conversion value: total_purchase_value (default), \
                          total_complete_payment_rate (TikTok's name for the complete payments' value), \
                          total_sales_lead_value or none",
            default: None,
        },
        OptionSpec {
            name: "skip_fields",
            description:
                "optional report fields not to request, e.g. [video_play_actions] (mdp drops one the API refuses \
                          by itself, with a warning naming it; listing it here silences that)",
            default: None,
        },
    ],
    // TikTok restates the last few days; a week covers it with margin.
    default_lookback_days: 7,
    lag_days: 0,
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
    conversion_label: None,
};

/// The report metrics a TikTok source may count as conversions.
pub const CONVERSION_METRICS: &[&str] = &["conversion", "real_time_conversion", "complete_payment", "form"];
/// The report metrics a TikTok source may read as conversion value (`total_complete_payment_rate` is
/// TikTok's name for the total value of complete payments).
pub const CONVERSION_VALUE_METRICS: &[&str] =
    &["total_purchase_value", "total_complete_payment_rate", "total_sales_lead_value"];

/// The `options:` of a TikTok source: which report metrics are conversions and their value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TikTokAdsOptions {
    /// Optional report fields not to request (from [`OPTIONAL_FIELDS`]).
    pub skip_fields: Vec<String>,
    pub conversion_metric: String,
    /// `None`: the definition has no value (conversion value is 0).
    pub conversion_value_metric: Option<String>,
}

impl Default for TikTokAdsOptions {
    fn default() -> Self {
        TikTokAdsOptions {
            skip_fields: Vec::new(),
            conversion_metric: "conversion".to_string(),
            conversion_value_metric: Some("total_purchase_value".to_string()),
        }
    }
}

impl TikTokAdsOptions {
    pub(crate) fn set<'de, V: Deserializer<'de>>(&mut self, key: &str, value: V) -> Result<(), String> {
        let name = Option::<String>::deserialize(value)
            .map_err(|e| format!("expected a TikTok report metric name such as complete_payment ({e})"))?;
        let name = name.as_deref().map(str::trim);
        match key {
            "conversion_metric" => {
                self.conversion_metric = match name {
                    None => TikTokAdsOptions::default().conversion_metric,
                    Some(metric) => one_of(metric, CONVERSION_METRICS)?,
                };
                Ok(())
            }
            "conversion_value_metric" => {
                self.conversion_value_metric = match name {
                    None => TikTokAdsOptions::default().conversion_value_metric,
                    Some("none") => None,
                    Some(metric) => Some(one_of(metric, CONVERSION_VALUE_METRICS)?),
                };
                Ok(())
            }
            other => Err(format!("tiktok_ads has no option '{other}'")),
        }
    }
}

fn one_of(metric: &str, known: &[&str]) -> Result<String, String> {
    if known.contains(&metric) {
        Ok(metric.to_string())
    } else {
        Err(format!("{metric:?} is not one of the metrics mdp reads here: {}", known.join(", ")))
    }
}

/// Report metrics a TikTok source can do without (their columns are then NULL).
pub const OPTIONAL_FIELDS: &[&str] = &["video_play_actions", "likes", "comments", "shares"];
