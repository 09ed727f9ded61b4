//! The static description of a platform's connector: the credentials and options it takes, its
//! defaults, and the streams it reads. Pure data, so the project file can be validated (and `mdp doctor`
//! can explain a source) without the HTTP crate; `mdp-sources` builds connectors on top of it.

use serde::Serialize;

use crate::Platform;

/// One credential a platform's connector can use. The project file names where each is found
/// (`{ env: VAR }` or `{ file: path }`); the value itself never appears in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CredentialSpec {
    /// The key under `credentials:` in `mdp.yml`, snake_case.
    pub name: &'static str,
    /// Whether an enabled source must configure it.
    pub required: bool,
    /// What it is and how it is sent, for `mdp doctor` and error messages.
    pub description: &'static str,
}

/// One key a platform accepts under a source's `options:` (parsed into the platform's typed options,
/// see [`SourceOptions`](crate::SourceOptions)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OptionSpec {
    /// The key under `options:` in `mdp.yml`, snake_case.
    pub name: &'static str,
    /// What it does, its form and its default, for `mdp doctor` and error messages.
    pub description: &'static str,
}

/// What mdp knows about a platform before any configuration: one entry of [`REGISTRY`](crate::REGISTRY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceKind {
    pub platform: Platform,
    pub credentials: &'static [CredentialSpec],
    /// The keys of `options:` this platform reads; any other key is refused when mdp.yml loads.
    pub options: &'static [OptionSpec],
    /// Days re-read on every incremental run, because the platform restates recent days.
    pub default_lookback_days: u32,
    pub default_api_version: &'static str,
    /// Scheme and host without a trailing slash; a source's `base_url` overrides it (sandbox, proxy).
    pub default_base_url: &'static str,
    pub docs_url: &'static str,
    /// The streams its connector reads (every source also loads `accounts`).
    #[serde(skip)]
    pub streams: &'static [StreamSpec],
}

impl SourceKind {
    /// The source's name in configuration, e.g. `"google_ads"`.
    pub const fn name(&self) -> &'static str {
        self.platform.as_str()
    }

    pub fn credential(&self, name: &str) -> Option<&'static CredentialSpec> {
        self.credentials.iter().find(|credential| credential.name == name)
    }

    pub fn required_credentials(&self) -> impl Iterator<Item = &'static CredentialSpec> {
        self.credentials.iter().filter(|credential| credential.required)
    }

    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|option| option.name == name)
    }

    pub fn stream(&self, name: &str) -> Option<&'static StreamSpec> {
        self.streams.iter().find(|stream| stream.name == name)
    }
}

/// Whether a stream is a snapshot of entities or a series of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Today's state of entities (names, statuses); stored as a daily snapshot, so history accrues.
    Entity,
    /// Daily performance, read by date window.
    Daily,
}

/// One stream of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub kind: StreamKind,
    /// The longest date window one read may cover (the API's limit, or what keeps one answer small),
    /// for daily streams.
    pub max_window_days: u32,
    pub description: &'static str,
}

/// The standard entity streams every platform has (the `accounts` stream is read per account).
pub const ACCOUNTS: StreamSpec = StreamSpec {
    name: "accounts",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "ad accounts: name, currency, time zone",
};
pub const CAMPAIGNS: StreamSpec = StreamSpec {
    name: "campaigns",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "campaigns: name, status",
};
pub const AD_GROUPS: StreamSpec = StreamSpec {
    name: "ad_groups",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "ad groups (Meta ad sets, LinkedIn campaigns): name, status, campaign",
};
pub const ADS: StreamSpec = StreamSpec {
    name: "ads",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "ads (LinkedIn creatives): name, status, parents",
};
