//! The static description of a platform.

use mdp_core::Platform;
use serde::Serialize;

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

/// What mdp knows about a platform before any configuration: one entry of [`REGISTRY`](crate::REGISTRY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceKind {
    pub platform: Platform,
    pub credentials: &'static [CredentialSpec],
    /// Days re-read on every incremental run, because the platform restates recent days.
    pub default_lookback_days: u32,
    pub default_api_version: &'static str,
    /// Scheme and host without a trailing slash; a source's `base_url` overrides it (sandbox, proxy).
    pub default_base_url: &'static str,
    pub docs_url: &'static str,
    /// The streams its connector reads (every source also loads `accounts`).
    #[serde(skip)]
    pub streams: &'static [crate::StreamSpec],
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
}
