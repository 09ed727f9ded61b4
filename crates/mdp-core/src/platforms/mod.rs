//! Every platform's static description ([`REGISTRY`]) and its typed `options:` ([`SourceOptions`]), one
//! module per platform. Pure data and parsing: the connectors that use it live in `mdp-sources`.

pub mod google_ads;
pub mod linkedin_ads;
pub mod meta_ads;
pub mod tiktok_ads;

use std::fmt;

use serde::Deserializer;

pub use google_ads::{GoogleAdsOptions, GoogleConversionMetric};
pub use linkedin_ads::LinkedInAdsOptions;
pub use meta_ads::MetaAdsOptions;
pub use tiktok_ads::TikTokAdsOptions;

use crate::source_kind::SourceKind;
use crate::Platform;

/// Every platform mdp can ingest from, one entry per [`Platform`], in [`Platform::ALL`] order.
/// Help text and `mdp doctor` are generated from this list.
pub const REGISTRY: &[SourceKind] = &[google_ads::KIND, meta_ads::KIND, tiktok_ads::KIND, linkedin_ads::KIND];

/// The registry entry for `platform`.
///
/// A declared platform is only ever made by parsing a registered name or by the spec loader that
/// registers it, so its entry exists; one that does not is a bug and panics naming it.
pub fn kind(platform: Platform) -> &'static SourceKind {
    if let Platform::Declared(name) = platform {
        return declared()
            .into_iter()
            .find(|kind| kind.platform == platform)
            .unwrap_or_else(|| panic!("the connector spec of {} was not registered", name.as_str()));
    }
    REGISTRY
        .iter()
        .find(|kind| kind.platform == platform)
        .expect("REGISTRY has an entry for every Platform (checked by a test)")
}

/// The declared platforms (connector specs) registered so far, by name.
static DECLARED: std::sync::RwLock<Vec<&'static SourceKind>> = std::sync::RwLock::new(Vec::new());

/// Every registered declared platform's entry, by name.
pub fn declared() -> Vec<&'static SourceKind> {
    DECLARED.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// Make a declared platform known (its `platform` must be [`Platform::Declared`]): from now on its name
/// parses, [`kind`] answers for it and project files may use it. Registering a name again replaces its
/// entry (a project's own spec over a built-in one of the same name; a test's spec over an earlier one).
/// The entry is leaked: a few hundred bytes per registration, for the process's life.
pub fn register(kind: SourceKind) -> &'static SourceKind {
    assert!(kind.platform.is_declared(), "only declared platforms are registered, not {}", kind.platform);
    let leaked: &'static SourceKind = Box::leak(Box::new(kind));
    let mut declared = DECLARED.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    declared.retain(|known| known.platform != leaked.platform);
    declared.push(leaked);
    declared.sort_by_key(|known| known.platform.as_str());
    leaked
}

/// A source's `options:`, typed per platform. Parsed (and refused with a message per key) when the
/// project file loads, so a connector only ever sees valid options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceOptions {
    GoogleAds(GoogleAdsOptions),
    MetaAds(MetaAdsOptions),
    TikTokAds(TikTokAdsOptions),
    LinkedInAds(LinkedInAdsOptions),
    Declared(DeclaredOptions),
}

/// The `options:` of a source on a declared platform: the values of the options its spec declares
/// (each with a default, so every one has a value), as text for its request templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredOptions {
    pub platform: Platform,
    pub values: std::collections::BTreeMap<String, String>,
    /// Always empty: a declared platform has no optional fields (its spec requests what it maps).
    pub skip_fields: Vec<String>,
}

impl DeclaredOptions {
    fn defaults(kind: &SourceKind) -> DeclaredOptions {
        let values = kind
            .options
            .iter()
            .map(|option| (option.name.to_string(), option.default.unwrap_or_default().to_string()))
            .collect();
        DeclaredOptions { platform: kind.platform, values, skip_fields: Vec::new() }
    }

    fn set<'de, V: Deserializer<'de>>(&mut self, key: &str, value: V) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Scalar {
            Text(String),
            Integer(i64),
            Float(f64),
            Bool(bool),
        }
        let text = match <Scalar as serde::Deserialize>::deserialize(value)
            .map_err(|_| "expected a single value (text, number or true/false)".to_string())?
        {
            Scalar::Text(text) => text,
            Scalar::Integer(n) => n.to_string(),
            Scalar::Float(x) => x.to_string(),
            Scalar::Bool(b) => b.to_string(),
        };
        self.values.insert(key.to_string(), text);
        Ok(())
    }

    /// The spec's conversion label with each `{option}` replaced by its value.
    fn label(&self) -> String {
        let mut label = kind(self.platform).conversion_label.unwrap_or("conversions").to_string();
        for (name, value) in &self.values {
            label = label.replace(&format!("{{{name}}}"), value);
        }
        label
    }
}

/// One `options:` key that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionError {
    /// The key as written under `options:`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for OptionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "options.{}: {}", self.key, self.message)
    }
}

impl SourceOptions {
    /// The options of a source that sets none.
    pub fn defaults(platform: Platform) -> SourceOptions {
        match platform {
            Platform::GoogleAds => SourceOptions::GoogleAds(GoogleAdsOptions::default()),
            Platform::MetaAds => SourceOptions::MetaAds(MetaAdsOptions::default()),
            Platform::TikTokAds => SourceOptions::TikTokAds(TikTokAdsOptions::default()),
            Platform::LinkedInAds => SourceOptions::LinkedInAds(LinkedInAdsOptions::default()),
            Platform::Declared(_) => SourceOptions::Declared(DeclaredOptions::defaults(kind(platform))),
        }
    }

    pub fn platform(&self) -> Platform {
        match self {
            SourceOptions::GoogleAds(_) => Platform::GoogleAds,
            SourceOptions::MetaAds(_) => Platform::MetaAds,
            SourceOptions::TikTokAds(_) => Platform::TikTokAds,
            SourceOptions::LinkedInAds(_) => Platform::LinkedInAds,
            SourceOptions::Declared(declared) => declared.platform,
        }
    }

    /// Parse the written `options:` of a `platform` source, key by key, from any serde value (YAML from
    /// the project file, JSON in tests). Every bad key is reported, each with its own message; a key
    /// the platform does not read is refused (with the closest known key), not silently ignored.
    pub fn parse<'de, V: Deserializer<'de>>(
        platform: Platform,
        entries: impl IntoIterator<Item = (String, V)>,
    ) -> Result<SourceOptions, Vec<OptionError>> {
        let kind = kind(platform);
        let mut options = SourceOptions::defaults(platform);
        let mut errors = Vec::new();
        for (key, value) in entries {
            let result = if kind.option(&key).is_none() {
                Err(unknown_option(kind, &key))
            } else if key == "skip_fields" {
                skip_fields(platform, value).map(|fields| *options.skip_fields_mut() = fields)
            } else {
                match &mut options {
                    SourceOptions::GoogleAds(google) => google.set(&key, value),
                    SourceOptions::MetaAds(meta) => meta.set(&key, value),
                    SourceOptions::TikTokAds(tiktok) => tiktok.set(&key, value),
                    SourceOptions::LinkedInAds(linkedin) => linkedin.set(&key, value),
                    SourceOptions::Declared(declared) => declared.set(&key, value),
                }
            };
            if let Err(message) = result {
                errors.push(OptionError { key, message });
            }
        }
        if let (true, SourceOptions::LinkedInAds(linkedin)) = (errors.is_empty(), &options) {
            if let Err((key, message)) = linkedin.check() {
                errors.push(OptionError { key: key.to_string(), message });
            }
        }
        if errors.is_empty() {
            Ok(options)
        } else {
            Err(errors)
        }
    }

    /// Optional report fields the source does not request (`skip_fields`).
    pub fn skip_fields(&self) -> &[String] {
        match self {
            SourceOptions::GoogleAds(o) => &o.skip_fields,
            SourceOptions::MetaAds(o) => &o.skip_fields,
            SourceOptions::TikTokAds(o) => &o.skip_fields,
            SourceOptions::LinkedInAds(o) => &o.skip_fields,
            SourceOptions::Declared(o) => &o.skip_fields,
        }
    }

    fn skip_fields_mut(&mut self) -> &mut Vec<String> {
        match self {
            SourceOptions::GoogleAds(o) => &mut o.skip_fields,
            SourceOptions::MetaAds(o) => &mut o.skip_fields,
            SourceOptions::TikTokAds(o) => &mut o.skip_fields,
            SourceOptions::LinkedInAds(o) => &mut o.skip_fields,
            SourceOptions::Declared(o) => &mut o.skip_fields,
        }
    }

    pub fn google_ads(&self) -> Option<&GoogleAdsOptions> {
        match self {
            SourceOptions::GoogleAds(options) => Some(options),
            _ => None,
        }
    }

    pub fn meta_ads(&self) -> Option<&MetaAdsOptions> {
        match self {
            SourceOptions::MetaAds(options) => Some(options),
            _ => None,
        }
    }

    pub fn tiktok_ads(&self) -> Option<&TikTokAdsOptions> {
        match self {
            SourceOptions::TikTokAds(options) => Some(options),
            _ => None,
        }
    }

    pub fn declared(&self) -> Option<&DeclaredOptions> {
        match self {
            SourceOptions::Declared(options) => Some(options),
            _ => None,
        }
    }

    pub fn linkedin_ads(&self) -> Option<&LinkedInAdsOptions> {
        match self {
            SourceOptions::LinkedInAds(options) => Some(options),
            _ => None,
        }
    }

    /// What this source counts as a conversion and its value, in the platform's own field names: the
    /// label written on every raw row (`conversion_definition`), so a mart can say which definition
    /// produced a number and a change of definition is seen (and backfilled) rather than mixed in.
    ///
    /// `metrics.conversions / metrics.conversions_value` (Google), `actions[omni_purchase] @ 7d_click+1d_view`
    /// (Meta; `@ ad set setting` without windows), `complete_payment / total_complete_payment_rate`
    /// (TikTok), `oneClickLeads / none` (LinkedIn).
    pub fn conversion_definition(&self) -> String {
        match self {
            SourceOptions::GoogleAds(google) => {
                let (count, value) = google.conversion_metric.fields();
                if google.conversion_actions.is_empty() {
                    format!("{count} / {value}")
                } else {
                    format!("{count} / {value} @ conversion_action[{}]", google.conversion_actions.join(","))
                }
            }
            SourceOptions::MetaAds(meta) => {
                let windows = if meta.attribution_windows.is_empty() {
                    "ad set setting".to_string()
                } else {
                    meta.attribution_windows.join("+")
                };
                format!("actions[{}] @ {windows}", meta.conversion_action_types.join(","))
            }
            SourceOptions::TikTokAds(tiktok) => {
                format!(
                    "{} / {}",
                    tiktok.conversion_metric,
                    tiktok.conversion_value_metric.as_deref().unwrap_or("none")
                )
            }
            SourceOptions::LinkedInAds(linkedin) => {
                let value = linkedin.conversion_value_metric.as_deref().unwrap_or("none");
                if linkedin.conversion_rules.is_empty() {
                    format!("{} / {value}", linkedin.conversion_metric)
                } else {
                    format!(
                        "{} / {value} @ conversion[{}]",
                        linkedin.conversion_metric,
                        linkedin.conversion_rules.join(",")
                    )
                }
            }
            SourceOptions::Declared(declared) => declared.label(),
        }
    }
}

/// A list of names or numeric ids (conversion actions, conversion rules): trimmed, without repeats;
/// YAML reads a bare id as a number. `what` names an entry in errors, e.g. "conversion action".
pub(crate) fn names_or_ids<'de, V: Deserializer<'de>>(value: V, what: &str) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Text(String),
        Number(u64),
    }
    let entries = <Option<Vec<Entry>> as serde::Deserialize>::deserialize(value)
        .map_err(|e| format!("expected a list of {what} names or ids such as [Purchase] ({e})"))?
        .unwrap_or_default();
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let name = match entry {
            Entry::Text(text) => text.trim().to_string(),
            Entry::Number(id) => id.to_string(),
        };
        if name.is_empty() {
            return Err(format!("a {what} name cannot be empty"));
        }
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(names)
}

/// The report fields a platform's source can do without: a refused one is dropped with a warning; one
/// in `skip_fields` is never requested. Spend, impressions, clicks and conversions are never optional.
pub fn optional_fields(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::GoogleAds => google_ads::OPTIONAL_FIELDS,
        Platform::MetaAds => meta_ads::OPTIONAL_FIELDS,
        Platform::TikTokAds => tiktok_ads::OPTIONAL_FIELDS,
        Platform::LinkedInAds => linkedin_ads::OPTIONAL_FIELDS,
        Platform::Declared(_) => &[],
    }
}

fn skip_fields<'de, V: Deserializer<'de>>(platform: Platform, value: V) -> Result<Vec<String>, String> {
    use serde::Deserialize;
    let optional = optional_fields(platform);
    let listed = Option::<Vec<String>>::deserialize(value)
        .map_err(|e| format!("expected a list of field names such as [{}] ({e})", optional[0]))?
        .unwrap_or_default();
    let mut fields: Vec<String> = Vec::new();
    for field in listed {
        let field = field.trim();
        if !optional.contains(&field) {
            return Err(format!(
                "{field:?} is not an optional field of {platform} (spend, impressions, clicks and conversions are \
                 always read); optional: {}",
                optional.join(", ")
            ));
        }
        if !fields.iter().any(|known| known == field) {
            fields.push(field.to_string());
        }
    }
    Ok(fields)
}

fn unknown_option(kind: &SourceKind, key: &str) -> String {
    if kind.options.is_empty() {
        return format!("{} takes no options; remove `{key}`", kind.name());
    }
    let names: Vec<&str> = kind.options.iter().map(|option| option.name).collect();
    let suggestion = names
        .iter()
        .map(|name| (strsim::jaro_winkler(key, name), name))
        .filter(|(similarity, _)| *similarity > 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, name)| format!("did you mean '{name}'? "))
        .unwrap_or_default();
    format!("{} has no option '{key}'; {suggestion}its options are: {}", kind.name(), names.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::VersionWatch;

    fn parse(platform: Platform, options: Value) -> Result<SourceOptions, Vec<OptionError>> {
        let Value::Object(map) = options else { panic!("an object") };
        SourceOptions::parse(platform, map)
    }

    #[test]
    fn every_platform_has_exactly_one_entry_in_platform_order() {
        let registered: Vec<Platform> = REGISTRY.iter().map(|kind| kind.platform).collect();
        assert_eq!(registered, Platform::ALL);
        for platform in Platform::ALL {
            assert_eq!(kind(platform).platform, platform);
            assert_eq!(SourceOptions::defaults(platform).platform(), platform);
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
            match kind.oauth {
                Some(oauth) => {
                    for name in [crate::ACCESS_TOKEN, crate::CLIENT_ID, crate::CLIENT_SECRET, crate::REFRESH_TOKEN] {
                        let credential = kind.credential(name).unwrap_or_else(|| panic!("{platform}: {name}"));
                        assert!(!credential.required, "{platform}: {name} is one of two alternatives");
                    }
                    assert!(oauth.token_url.starts_with("https://") && oauth.authorize_url.starts_with("https://"));
                    assert!(!oauth.scopes.is_empty(), "{platform}");
                    if oauth.service_account {
                        let key =
                            kind.credential(crate::SERVICE_ACCOUNT_KEY).expect("a service account key credential");
                        assert!(!key.required, "{platform}: one of the alternatives");
                    }
                }
                None => assert!(kind.credentials.iter().any(|credential| credential.required), "{platform}"),
            }
            let names = kind
                .credentials
                .iter()
                .map(|c| (c.name, c.description))
                .chain(kind.options.iter().map(|o| (o.name, o.description)));
            let mut seen = Vec::new();
            for (name, description) in names {
                assert!(is_snake_case(name), "{platform}: '{name}'");
                assert!(!description.is_empty(), "{platform}: {name}");
                assert!(!seen.contains(&name), "{platform}: '{name}' is listed twice");
                seen.push(name);
            }
            for stream in kind.streams {
                let daily = stream.kind == crate::StreamKind::Daily;
                assert_eq!(daily, stream.max_window_days > 0, "{platform} {}: a window limit iff daily", stream.name);
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

    #[test]
    fn options_are_typed_per_platform() {
        let google = parse(Platform::GoogleAds, json!({"login_customer_id": "111-222-3333"})).unwrap();
        assert_eq!(google.google_ads().unwrap().login_customer_id.as_deref(), Some("1112223333"));
        let from_number = parse(Platform::GoogleAds, json!({"login_customer_id": 1112223333u64})).unwrap();
        assert_eq!(from_number, google, "YAML reads an unquoted id as a number");
        assert_eq!(parse(Platform::GoogleAds, json!({})).unwrap(), SourceOptions::defaults(Platform::GoogleAds));

        let meta = parse(
            Platform::MetaAds,
            json!({"conversion_action_types": ["purchase", " purchase", "lead"], "page_size": 25}),
        )
        .unwrap();
        let meta = meta.meta_ads().unwrap();
        assert_eq!(meta.conversion_action_types, ["purchase", "lead"], "trimmed and deduplicated");
        assert_eq!(meta.page_size, 25);
        let defaults = parse(Platform::MetaAds, json!({"conversion_action_types": null})).unwrap();
        assert_eq!(defaults.meta_ads().unwrap(), &MetaAdsOptions::default());
        assert_eq!(
            MetaAdsOptions::default().conversion_action_types.len(),
            meta_ads::DEFAULT_CONVERSION_ACTION_TYPES.len()
        );
    }

    #[test]
    fn every_platform_knows_its_versions_and_its_default_among_them() {
        for kind in REGISTRY {
            let platform = kind.platform;
            assert!(kind.api_versions.iter().any(|v| v.version == kind.default_api_version), "{platform}");
            let mut last = None;
            for version in kind.api_versions {
                assert!(version.source.starts_with("https://"), "{platform} {}", version.version);
                if let Some(sunset) = version.sunset {
                    let day = chrono::NaiveDate::parse_from_str(sunset, "%Y-%m-%d").expect("YYYY-MM-DD");
                    assert!(last.is_none_or(|last| last <= day), "{platform}: oldest first, sunsets in order");
                    last = Some(day);
                }
            }
        }
    }

    #[test]
    fn the_version_watch_warns_sixty_days_ahead_and_fails_on_the_day() {
        let day = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
        let linkedin = kind(Platform::LinkedInAds);
        let sunset = day("2027-01-15");
        assert_eq!(linkedin.version_watch("202601", day("2026-11-15")), VersionWatch::Current { sunset: Some(sunset) });
        assert_eq!(linkedin.version_watch("202601", day("2026-11-16")), VersionWatch::Soon { sunset, days_left: 60 });
        assert_eq!(linkedin.version_watch("202601", sunset), VersionWatch::Sunset { sunset });
        assert_eq!(linkedin.version_watch("209912", sunset), VersionWatch::Unknown);
        assert_eq!(linkedin.version_warning("202601", day("2026-11-15")), None);
        let soon = linkedin.version_warning("202601", day("2027-01-05")).unwrap();
        assert!(soon.contains("sunset on 2027-01-15 (10 days left); set `api_version: 202603`"), "{soon}");
        let gone = kind(Platform::GoogleAds).version_warning("v21", day("2026-12-06")).unwrap();
        assert!(gone.contains("was sunset on 2026-08-05: every request fails; set `api_version: v26`"), "{gone}");
        let unknown = kind(Platform::MetaAds).version_warning("v99.0", day("2026-12-06")).unwrap();
        assert!(unknown.contains("is not one mdp knows") && unknown.contains("v27.0"), "{unknown}");
    }

    #[test]
    fn oauth_platforms_take_an_access_token_the_whole_refresh_set_or_a_service_account() {
        use crate::TokenGrant;
        let google = kind(Platform::GoogleAds);
        let with = |names: &'static [&'static str]| move |name: &str| names.contains(&name);
        assert_eq!(google.token_grant(with(&["access_token"])), Ok(Some(TokenGrant::AccessToken)));
        let refresh: &[&str] = &["client_id", "client_secret", "refresh_token"];
        assert_eq!(google.token_grant(with(refresh)), Ok(Some(TokenGrant::RefreshToken)));
        let both: &[&str] = &["access_token", "client_id", "client_secret", "refresh_token"];
        assert_eq!(google.token_grant(with(both)), Ok(Some(TokenGrant::RefreshToken)), "the refresh set wins");
        let partial = google.token_grant(with(&["access_token", "refresh_token"])).unwrap_err();
        assert!(partial.contains("'client_id', 'client_secret' are missing"), "{partial}");
        let none = google.token_grant(with(&["developer_token"])).unwrap_err();
        assert!(none.contains("either 'access_token' or") && none.contains("mdp auth"), "{none}");
        assert!(none.contains("'service_account_key'"), "Google names its third way: {none}");
        assert_eq!(google.token_grant(with(&["service_account_key"])), Ok(Some(TokenGrant::ServiceAccount)));
        let two = google.token_grant(with(&["service_account_key", "client_id", "client_secret", "refresh_token"]));
        assert!(two.unwrap_err().contains("not both"), "two identities are refused");
        // LinkedIn has no service accounts: its error does not offer one, and a key written there is unused.
        let linkedin = kind(Platform::LinkedInAds).token_grant(with(&["service_account_key"])).unwrap_err();
        assert!(!linkedin.contains("service_account_key"), "{linkedin}");
        // Meta and TikTok have long-lived tokens: `access_token` is simply required.
        assert_eq!(kind(Platform::MetaAds).token_grant(with(refresh)), Ok(None));
    }

    #[test]
    fn impersonation_is_a_users_email() {
        let parse = |value: serde_json::Value| {
            SourceOptions::parse(Platform::GoogleAds, [("impersonated_email".to_string(), value)])
        };
        let options = parse(serde_json::json!(" ads@example.com ")).unwrap();
        assert_eq!(options.google_ads().unwrap().impersonated_email.as_deref(), Some("ads@example.com"));
        for bad in ["ads", "@example.com", "ads@localhost", "a b@example.com"] {
            let errors = parse(serde_json::json!(bad)).unwrap_err();
            assert!(errors[0].message.contains("a user's email such as"), "{bad}: {errors:?}");
        }
    }

    #[test]
    fn every_bad_option_is_reported_with_its_key() {
        let errors = parse(
            Platform::MetaAds,
            json!({"conversion_action_types": "purchase", "page_size": 0, "conversion_actions": []}),
        )
        .unwrap_err();
        let by_key = |key: &str| errors.iter().find(|e| e.key == key).map(|e| e.message.clone()).unwrap();
        assert!(by_key("conversion_action_types").contains("expected a list of action types"));
        assert!(by_key("page_size").contains("from 1 to 500, got 0"));
        assert!(by_key("conversion_actions").contains("did you mean 'conversion_action_types'?"));
        assert_eq!(errors.len(), 3);

        let empty = parse(Platform::MetaAds, json!({"conversion_action_types": []})).unwrap_err();
        assert!(empty[0].message.contains("the list is empty"), "{}", empty[0]);
        let google = parse(Platform::GoogleAds, json!({"login_customer_id": "act_1"})).unwrap_err();
        assert!(google[0].message.contains("10 digits like 123-456-7890"), "{}", google[0]);
        let tiktok = parse(Platform::TikTokAds, json!({"page_size": 10})).unwrap_err();
        assert!(
            tiktok[0].to_string().starts_with("options.page_size: tiktok_ads has no option 'page_size'"),
            "{}",
            tiktok[0]
        );
        // LinkedIn's conversion rules count website conversions: not with a lead-form metric.
        let leads = parse(
            Platform::LinkedInAds,
            json!({"conversion_rules": ["Purchase"], "conversion_metric": "oneClickLeads"}),
        )
        .unwrap_err();
        assert_eq!(leads[0].key, "conversion_rules");
        assert!(leads[0].message.contains("use externalWebsiteConversions"), "{}", leads[0]);
        let rules =
            parse(Platform::LinkedInAds, json!({"conversion_rules": ["Purchase", 7310002, " Purchase "]})).unwrap();
        assert_eq!(rules.linkedin_ads().unwrap().conversion_rules, ["Purchase", "7310002"]);
        assert_eq!(
            rules.conversion_definition(),
            "externalWebsiteConversions / conversionValueInLocalCurrency @ conversion[Purchase,7310002]"
        );
    }

    #[test]
    fn only_optional_fields_can_be_skipped() {
        let tiktok = parse(Platform::TikTokAds, json!({"skip_fields": ["likes", "shares", "likes"]})).unwrap();
        assert_eq!(tiktok.skip_fields(), ["likes", "shares"]);
        let required = parse(Platform::TikTokAds, json!({"skip_fields": ["spend"]})).unwrap_err();
        assert!(required[0].message.contains("\"spend\" is not an optional field of tiktok_ads"), "{}", required[0]);
        let google = parse(Platform::GoogleAds, json!({"skip_fields": ["metrics.video_trueview_views"]})).unwrap();
        assert_eq!(google.skip_fields(), ["metrics.video_trueview_views"]);
        assert!(SourceOptions::defaults(Platform::LinkedInAds).skip_fields().is_empty());
    }

    #[test]
    fn each_platform_has_a_default_conversion_definition_and_says_which_it_uses() {
        let label = |platform, options| parse(platform, options).unwrap().conversion_definition();
        assert_eq!(label(Platform::GoogleAds, json!({})), "metrics.conversions / metrics.conversions_value");
        assert_eq!(
            label(Platform::GoogleAds, json!({"conversion_metric": "all_conversions"})),
            "metrics.all_conversions / metrics.all_conversions_value"
        );
        assert!(label(Platform::MetaAds, json!({})).ends_with("offsite_conversion.fb_pixel_custom] @ ad set setting"));
        assert_eq!(
            label(
                Platform::MetaAds,
                json!({"conversion_action_types": ["omni_purchase"], "attribution_windows": ["7d_click", "1d_view"]})
            ),
            "actions[omni_purchase] @ 7d_click+1d_view"
        );
        assert_eq!(
            label(
                Platform::GoogleAds,
                json!({"conversion_metric": "all_conversions", "conversion_actions": ["Lead form", 900000001u64, "Lead form"]})
            ),
            "metrics.all_conversions / metrics.all_conversions_value @ conversion_action[Lead form,900000001]"
        );
        assert_eq!(label(Platform::TikTokAds, json!({})), "conversion / total_purchase_value");
        assert_eq!(
            label(Platform::TikTokAds, json!({"conversion_metric": "form", "conversion_value_metric": "none"})),
            "form / none"
        );
        assert_eq!(
            label(Platform::LinkedInAds, json!({})),
            "externalWebsiteConversions / conversionValueInLocalCurrency"
        );
        assert_eq!(
            label(
                Platform::LinkedInAds,
                json!({"conversion_metric": "oneClickLeads", "conversion_value_metric": "none"})
            ),
            "oneClickLeads / none"
        );
    }

    #[test]
    fn conversion_definitions_that_cannot_be_served_are_refused_with_the_way_out() {
        let message = |platform, options| parse(platform, options).unwrap_err()[0].message.clone();
        let google = message(Platform::GoogleAds, json!({"conversion_metric": "conversion_value"}));
        assert!(google.contains("expected conversions (primary actions) or all_conversions"), "{google}");
        let overlap = message(Platform::MetaAds, json!({"attribution_windows": ["1d_click", "7d_click"]}));
        assert!(overlap.contains("1d_click and 7d_click overlap"), "{overlap}");
        let ended = message(Platform::MetaAds, json!({"attribution_windows": ["7d_view"]}));
        assert!(ended.contains("stopped returning 7d_view on 2026-01-12; use 1d_view"), "{ended}");
        let tiktok = message(Platform::TikTokAds, json!({"conversion_metric": "spend"}));
        assert!(tiktok.contains("\"spend\" is not one of the metrics mdp reads here: conversion,"), "{tiktok}");
        let value = message(Platform::TikTokAds, json!({"conversion_value_metric": "totalPurchaseValue"}));
        assert!(value.contains("total_purchase_value, total_complete_payment_rate"), "{value}");
        let linkedin = message(Platform::LinkedInAds, json!({"conversion_metric": "conversions"}));
        assert!(linkedin.contains("use one of externalWebsiteConversions"), "{linkedin}");
        let value = message(Platform::LinkedInAds, json!({"conversion_value_metric": "costInUsd"}));
        assert!(value.contains("only value field is conversionValueInLocalCurrency"), "{value}");
        // A window list that is repeated or null means what it says.
        let meta =
            parse(Platform::MetaAds, json!({"attribution_windows": ["1d_view", "28d_click", "1d_view"]})).unwrap();
        assert_eq!(meta.meta_ads().unwrap().attribution_windows, ["1d_view", "28d_click"]);
        let unset = parse(Platform::MetaAds, json!({"attribution_windows": null})).unwrap();
        assert_eq!(unset, SourceOptions::defaults(Platform::MetaAds));
    }
}
