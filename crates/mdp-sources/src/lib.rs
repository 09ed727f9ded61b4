//! Ad-platform connectors: the [`Source`] trait, the shared HTTP driver ([`http`]: the [`http::ReportApi`]
//! shape each platform describes its API in, one paging loop, retries), the record shapes every platform
//! emits ([`record`]), and one module per platform. [`REGISTRY`] (from `mdp-core`) is the static
//! description of each platform (credentials, options, default look-back, API version, base URL, streams)
//! that the project file and `mdp doctor` use; [`configure`] builds a platform's connector from its settings.
//!
//! **Architecture invariant:** only `mdp-sources` speaks HTTP to ad platforms. It never talks to the
//! warehouse and never reads the project file: it receives configuration already validated.
//!
//! ```
//! use mdp_core::Platform;
//!
//! let meta = mdp_sources::kind(Platform::MetaAds);
//! assert_eq!(meta.default_lookback_days, 28);
//! assert!(meta.credential("access_token").unwrap().required);
//! // Google access tokens live an hour: a source may configure a refresh token instead.
//! assert!(mdp_sources::kind(Platform::GoogleAds).oauth.is_some());
//! ```

pub mod auth;
pub mod declared;
pub mod error;
pub mod google_ads;
pub mod http;
mod json;
pub mod linkedin_ads;
pub mod meta_ads;
pub mod optional;
pub mod record;
pub mod source;
pub mod tiktok_ads;

pub use error::SourceError;
/// The static platform descriptions live in `mdp-core` (pure data the project file validates against);
/// re-exported here so connector code and its callers name them in one place.
pub use mdp_core::{kind, CredentialSpec, OptionSpec, SourceKind, SourceOptions, REGISTRY};
pub use source::{AccountInfo, Credential, ReadContext, Sink, Source, SourceSettings, StreamKind, StreamSpec};

use mdp_core::Platform;

/// Build the connector for a source's settings.
pub fn configure(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    if settings.options.platform() != settings.platform {
        return Err(settings.config_error(format!(
            "internal: {} options given to a {} source",
            settings.options.platform(),
            settings.platform
        )));
    }
    match settings.platform {
        Platform::GoogleAds => Ok(Box::new(google_ads::GoogleAds::new(settings)?)),
        Platform::MetaAds => Ok(Box::new(meta_ads::MetaAds::new(settings)?)),
        Platform::TikTokAds => Ok(Box::new(tiktok_ads::TikTokAds::new(settings)?)),
        Platform::LinkedInAds => Ok(Box::new(linkedin_ads::LinkedInAds::new(settings)?)),
        Platform::Declared(_) => Ok(Box::new(declared::DeclaredSource::new(settings)?)),
    }
}
