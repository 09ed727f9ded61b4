//! Ad-platform connectors: the [`Source`] trait, the shared HTTP driver ([`http`]), the record shapes
//! every platform emits ([`record`]), and one module per platform. [`REGISTRY`] is the static
//! description of each platform (credentials, default look-back, API version, base URL) that the
//! project file and `mdp doctor` use; [`configure`] builds a platform's connector from its settings.
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
//! ```

pub mod error;
pub mod google_ads;
pub mod http;
mod json;
mod kind;
pub mod linkedin_ads;
pub mod meta_ads;
pub mod record;
pub mod source;
pub mod tiktok_ads;

pub use error::SourceError;
pub use kind::{CredentialSpec, SourceKind};
pub use source::{AccountInfo, Credential, ReadContext, Sink, Source, SourceSettings, StreamKind, StreamSpec};

/// Build the connector for a source's settings.
pub fn configure(settings: SourceSettings) -> Result<Box<dyn Source>, SourceError> {
    match settings.platform {
        Platform::GoogleAds => google_ads::connector(settings),
        Platform::MetaAds => meta_ads::connector(settings),
        Platform::TikTokAds => Ok(Box::new(tiktok_ads::TikTokAds::new(settings)?)),
        Platform::LinkedInAds => linkedin_ads::connector(settings),
    }
}

use mdp_core::Platform;

/// Every platform mdp can ingest from, one entry per [`Platform`], in [`Platform::ALL`] order.
/// Help text and `mdp doctor` are generated from this list.
pub const REGISTRY: &[SourceKind] = &[google_ads::KIND, meta_ads::KIND, tiktok_ads::KIND, linkedin_ads::KIND];

/// The registry entry for `platform`.
pub fn kind(platform: Platform) -> &'static SourceKind {
    REGISTRY
        .iter()
        .find(|kind| kind.platform == platform)
        .expect("REGISTRY has an entry for every Platform (checked by a test)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_has_exactly_one_entry_in_platform_order() {
        let registered: Vec<Platform> = REGISTRY.iter().map(|kind| kind.platform).collect();
        assert_eq!(registered, Platform::ALL);
        for platform in Platform::ALL {
            assert_eq!(kind(platform).platform, platform);
        }
    }

    #[test]
    fn every_entry_is_well_formed() {
        for kind in REGISTRY {
            let platform = kind.platform;
            assert!(kind.default_base_url.starts_with("https://"), "{platform}");
            assert!(!kind.default_base_url.ends_with('/'), "{platform}: base URL without trailing slash");
            assert!(kind.docs_url.starts_with("https://"), "{platform}");
            assert!(!kind.default_api_version.is_empty(), "{platform}");
            assert!((1..=400).contains(&kind.default_lookback_days), "{platform}");
            assert!(kind.credentials.iter().any(|credential| credential.required), "{platform}");
            for (index, credential) in kind.credentials.iter().enumerate() {
                assert!(is_snake_case(credential.name), "{platform}: '{}'", credential.name);
                assert!(!credential.description.is_empty(), "{platform}: {}", credential.name);
                assert!(
                    kind.credentials[..index].iter().all(|earlier| earlier.name != credential.name),
                    "{platform}: credential '{}' is listed twice",
                    credential.name
                );
            }
        }
    }

    fn is_snake_case(name: &str) -> bool {
        name.starts_with(|first: char| first.is_ascii_lowercase())
            && name
                .chars()
                .all(|character| character.is_ascii_lowercase() || character.is_ascii_digit() || character == '_')
            && !name.ends_with('_')
            && !name.contains("__")
    }
}
