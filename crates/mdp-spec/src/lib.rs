//! Declarative connectors: a reporting API described in a YAML file (`connectors/<name>.yml` in a
//! project, or built into the binary from `specs/`), validated when it loads, with every problem
//! reported at its file and line.
//!
//! A spec says how to authorize, which request describes an account (currency, time zone), and per
//! stream (`campaigns`, `ad_groups`, `ads`, `ad_daily`) the request template, the paginator, where the
//! records are and how each maps into mdp's harmonized record. [`register`] makes its platform known
//! to the rest of mdp ([`mdp_core::Platform::Declared`] with a [`mdp_core::SourceKind`]), so mdp.yml can
//! name it, `mdp doctor` can describe it, the marketing package stages it; `mdp-sources` runs it.
//!
//! **Invariant:** pure. Reads the files it is pointed at, never the network; a spec is data, not code.

pub mod model;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use mdp_core::{
    ApiVersion, CredentialSpec, DeclaredPlatform, OAuthSpec, OptionSpec, Platform, SourceKind, StreamKind, StreamSpec,
};

pub use model::ConnectorSpec;

/// The specs built into the binary (`specs/*.yml`), as (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("amazon_ads.yml", include_str!("../specs/amazon_ads.yml")),
    ("microsoft_ads.yml", include_str!("../specs/microsoft_ads.yml")),
    ("pinterest_ads.yml", include_str!("../specs/pinterest_ads.yml")),
    ("reddit_ads.yml", include_str!("../specs/reddit_ads.yml")),
    ("snapchat_ads.yml", include_str!("../specs/snapchat_ads.yml")),
    ("x_ads.yml", include_str!("../specs/x_ads.yml")),
];

/// The streams a spec defines, entity streams first (the order they are read in).
pub const STREAMS: [&str; 4] = ["campaigns", "ad_groups", "ads", "ad_daily"];

/// One problem of a spec file, at its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    /// 1-based; 0 when the place is unknown.
    pub line: usize,
    pub column: usize,
    /// The key path (`streams.ad_daily.fields.spend`), when the problem is a key's.
    pub key: String,
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one or more spec files.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// A registered spec: what it says, where it was read from, and the platform's kind.
#[derive(Debug)]
pub struct Loaded {
    pub spec: ConnectorSpec,
    /// The file it was read from (`<built-in>/x.yml` for a built-in one).
    pub file: PathBuf,
    /// The key paths' lines in that file, for errors found when the spec runs (`mdp connector test`).
    pub lines: BTreeMap<String, usize>,
    pub kind: &'static SourceKind,
}

impl Loaded {
    pub fn platform(&self) -> Platform {
        self.kind.platform
    }

    /// `file:line` of a key path (or its closest written ancestor), for messages.
    pub fn place(&self, key: &str) -> String {
        let mut path = key;
        loop {
            if let Some(line) = self.lines.get(path) {
                return format!("{}:{line}", self.file.display());
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => return self.file.display().to_string(),
            }
        }
    }
}

static SPECS: RwLock<BTreeMap<&'static str, Arc<Loaded>>> = RwLock::new(BTreeMap::new());

/// Parse and validate a spec's text (`file` names it in errors). Pure.
pub fn parse(file: &Path, text: &str) -> Result<(ConnectorSpec, BTreeMap<String, usize>), SpecErrors> {
    validate::parse(file, text)
}

/// Make a validated spec's platform known to mdp (replacing an earlier spec of the same name).
pub fn register(spec: ConnectorSpec, file: PathBuf, lines: BTreeMap<String, usize>) -> Arc<Loaded> {
    let kind = mdp_core::register(source_kind(&spec));
    let loaded = Arc::new(Loaded { spec, file, lines, kind });
    let mut specs = SPECS.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    specs.insert(kind.platform.as_str(), loaded.clone());
    loaded
}

/// Register the built-in specs (once per process; later calls do nothing).
pub fn register_builtin() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for (name, text) in BUILTIN {
            let file = PathBuf::from(format!("<built-in>/{name}"));
            let (spec, lines) = parse(&file, text).unwrap_or_else(|e| panic!("a built-in spec is valid (tested): {e}"));
            register(spec, file, lines);
        }
    });
}

/// Register the built-in specs, then every `*.yml` / `*.yaml` of `dir` (a project's `connectors/`; a
/// missing folder has none). A project's spec may replace a built-in one of the same name. Every
/// problem of every file is reported; the valid files are registered all the same.
pub fn load_dir(dir: &Path) -> Result<Vec<Platform>, SpecErrors> {
    register_builtin();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml" || ext == "yaml"))
        .collect();
    files.sort();
    let mut errors = Vec::new();
    let mut platforms = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) => {
                errors.extend(io_error(&file, e).0);
                continue;
            }
        };
        match parse(&file, &text) {
            Ok((spec, lines)) => {
                let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
                if stem != spec.name {
                    errors.push(SpecError {
                        file: file.clone(),
                        line: lines.get("name").copied().unwrap_or(0),
                        column: 1,
                        key: "name".into(),
                        message: format!("the file of the spec named '{}' must be named {}.yml", spec.name, spec.name),
                    });
                    continue;
                }
                platforms.push(register(spec, file, lines).platform());
            }
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() {
        Ok(platforms)
    } else {
        Err(SpecErrors(errors))
    }
}

fn io_error(path: &Path, e: std::io::Error) -> SpecErrors {
    SpecErrors(vec![SpecError {
        file: path.to_path_buf(),
        line: 0,
        column: 0,
        key: String::new(),
        message: format!("cannot be read: {e}"),
    }])
}

/// The registered spec of a declared platform.
pub fn get(platform: Platform) -> Option<Arc<Loaded>> {
    SPECS.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(platform.as_str()).cloned()
}

/// The platform a spec declares, by name, if registered.
pub fn platform(name: &str) -> Option<Platform> {
    SPECS.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(name).map(|loaded| loaded.platform())
}

fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

fn leak_slice<T>(items: Vec<T>) -> &'static [T] {
    Box::leak(items.into_boxed_slice())
}

/// The platform's static description, as mdp's other crates read every platform's.
fn source_kind(spec: &ConnectorSpec) -> SourceKind {
    let platform = Platform::Declared(DeclaredPlatform::intern(&spec.name));
    let mut credentials: Vec<CredentialSpec> = spec
        .credentials
        .iter()
        .map(|c| CredentialSpec { name: leak(&c.name), required: c.required, description: leak(&c.description) })
        .collect();
    let oauth = match &spec.auth {
        model::Auth::Bearer { oauth: Some(oauth), .. } => {
            // A refreshing platform takes either a fixed access token or the refresh set.
            for credential in &mut credentials {
                if credential.name == mdp_core::ACCESS_TOKEN {
                    credential.required = false;
                }
            }
            for set in [mdp_core::CLIENT_ID_SPEC, mdp_core::CLIENT_SECRET_SPEC, mdp_core::REFRESH_TOKEN_SPEC] {
                if !credentials.iter().any(|c| c.name == set.name) {
                    credentials.push(set);
                }
            }
            Some(OAuthSpec {
                token_url: leak(&oauth.token_url),
                authorize_url: leak(&oauth.authorize_url),
                scopes: leak_slice(oauth.scopes.iter().map(|s| leak(s)).collect()),
                authorize_params: leak_slice(
                    oauth.authorize_params.iter().map(|(name, value)| (leak(name), leak(value))).collect(),
                ),
                lifetimes: "as the platform documents",
                pkce: false,
                client_auth_basic: oauth.client_auth == model::ClientAuth::Basic,
                service_account: false,
            })
        }
        _ => None,
    };
    let options = spec
        .options
        .iter()
        .map(|o| OptionSpec { name: leak(&o.name), description: leak(&o.description), default: Some(leak(&o.default)) })
        .collect();
    let daily = &spec.streams["ad_daily"];
    let streams = vec![
        mdp_core::CAMPAIGNS,
        mdp_core::AD_GROUPS,
        mdp_core::ADS,
        StreamSpec {
            name: "ad_daily",
            kind: StreamKind::Daily,
            max_window_days: daily.max_window_days.unwrap_or(1),
            description: "ad × day: spend, impressions, clicks, conversions, conversion value",
        },
    ];
    SourceKind {
        platform,
        credentials: leak_slice(credentials),
        oauth,
        options: leak_slice(options),
        default_lookback_days: spec.lookback_days,
        lag_days: spec.lag_days,
        default_api_version: leak(&spec.api_version),
        api_versions: leak_slice(vec![ApiVersion {
            version: leak(&spec.api_version),
            sunset: None,
            source: leak(&spec.docs_url),
        }]),
        default_base_url: leak(spec.base_url.trim_end_matches('/')),
        docs_url: leak(&spec.docs_url),
        streams: leak_slice(streams),
        conversion_label: spec.conversion_label.as_deref().map(leak),
    }
}
