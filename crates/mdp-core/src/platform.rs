//! The ad platforms mdp can ingest from.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An advertising platform. Its string form (`google_ads`, …) is the one used everywhere: in `mdp.yml`,
/// in the `platform` column of harmonized tables, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    GoogleAds,
    MetaAds,
    TikTokAds,
    LinkedInAds,
    /// A platform described by a connector spec (YAML, built into the binary or in the project's
    /// `connectors/` folder), known once its spec is registered ([`crate::platforms::register`]).
    Declared(DeclaredPlatform),
}

/// The name of a platform a connector spec declares: interned once per process, so that [`Platform`]
/// stays `Copy` and its name `&'static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeclaredPlatform(&'static str);

impl DeclaredPlatform {
    /// The interned name `name` (the same value for the same name, whoever asks). Does not register a
    /// spec: a platform is usable in mdp.yml only once [`crate::platforms::register`] saw its kind.
    pub fn intern(name: &str) -> DeclaredPlatform {
        use std::collections::BTreeSet;
        use std::sync::Mutex;
        static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
        let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = names.get(name) {
            return DeclaredPlatform(known);
        }
        // Leaked on purpose: one short string per declared platform name, for the process's life.
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(leaked);
        DeclaredPlatform(leaked)
    }

    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl Platform {
    /// Every platform, in the order mdp lists them.
    pub const ALL: [Platform; 4] = [Platform::GoogleAds, Platform::MetaAds, Platform::TikTokAds, Platform::LinkedInAds];

    /// The stable snake_case name, e.g. `"tiktok_ads"`.
    ///
    /// Written out by hand rather than derived: serde's `snake_case` would spell `TikTokAds` as
    /// `tik_tok_ads`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Platform::GoogleAds => "google_ads",
            Platform::MetaAds => "meta_ads",
            Platform::TikTokAds => "tiktok_ads",
            Platform::LinkedInAds => "linkedin_ads",
            Platform::Declared(declared) => declared.as_str(),
        }
    }

    /// Whether a connector spec describes it (rather than Rust code).
    pub const fn is_declared(self) -> bool {
        matches!(self, Platform::Declared(_))
    }

    /// The built-in platforms, then every declared one registered so far, by name.
    pub fn known() -> Vec<Platform> {
        let mut all = Platform::ALL.to_vec();
        all.extend(crate::platforms::declared().iter().map(|kind| kind.platform));
        all
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A platform name that mdp does not know. Its message lists the valid names and the closest one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown platform '{given}'{suggestion}; expected one of {valid}, or a connector spec of your own in connectors/{given}.yml", suggestion = did_you_mean(.given), valid = valid_names())]
pub struct UnknownPlatformError {
    pub given: String,
}

fn valid_names() -> String {
    Platform::known().into_iter().map(Platform::as_str).collect::<Vec<_>>().join(", ")
}

fn did_you_mean(given: &str) -> String {
    Platform::known()
        .iter()
        .map(|platform| (strsim::jaro_winkler(given, platform.as_str()), platform))
        .filter(|(similarity, _)| *similarity > 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, platform)| format!(" (did you mean '{platform}'?)"))
        .unwrap_or_default()
}

impl FromStr for Platform {
    type Err = UnknownPlatformError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|platform| platform.as_str() == name)
            .or_else(|| crate::platforms::declared().iter().map(|kind| kind.platform).find(|p| p.as_str() == name))
            .ok_or_else(|| UnknownPlatformError { given: name.to_owned() })
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

// Through `FromStr` so a config file gets the same helpful message as the command line. The error is
// raised inside the visitor so that formats which track positions (serde_yaml) attach it to the value.
impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PlatformVisitor;
        impl serde::de::Visitor<'_> for PlatformVisitor {
            type Value = Platform;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(formatter, "a platform name, one of {}", valid_names())
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Platform, E> {
                name.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(PlatformVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for platform in Platform::ALL {
            assert_eq!(platform.as_str().parse::<Platform>(), Ok(platform));
            assert_eq!(platform.to_string(), platform.as_str());
        }
        assert_eq!(Platform::TikTokAds.as_str(), "tiktok_ads");
        assert_eq!(Platform::LinkedInAds.as_str(), "linkedin_ads");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones_and_suggests_the_closest() {
        let error = "googel_ads".parse::<Platform>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown platform 'googel_ads' (did you mean 'google_ads'?); \
             expected one of google_ads, meta_ads, tiktok_ads, linkedin_ads, or a connector spec of your own in \
             connectors/googel_ads.yml"
        );
        let error = "myspace".parse::<Platform>().unwrap_err();
        assert!(!error.to_string().contains("did you mean"), "{error}");
    }

    #[test]
    fn serde_uses_the_snake_case_names() {
        let json = serde_json::to_string(&Platform::ALL).unwrap();
        assert_eq!(json, r#"["google_ads","meta_ads","tiktok_ads","linkedin_ads"]"#);
        let parsed: Vec<Platform> = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, Platform::ALL);
        let error = serde_json::from_str::<Platform>(r#""tik_tok_ads""#).unwrap_err();
        assert!(error.to_string().contains("did you mean 'tiktok_ads'"), "{error}");
    }
}
