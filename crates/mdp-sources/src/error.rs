//! Connector errors, classified by who must act.

use mdp_core::Platform;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The source's settings are wrong: the user fixes mdp.yml.
    #[error("{source_name}: configuration: {message}")]
    Config { source_name: String, message: String },

    /// The token was refused (expired, revoked, wrong): the user renews the credential.
    #[error("{platform}: the access token was refused ({code}: {message}); renew the token and update its environment variable or file")]
    Auth { platform: Platform, code: String, message: String },

    /// The platform refused the refresh token (expired, revoked, or rotated away): the user authorizes
    /// mdp again.
    #[error("{source_name}: {platform} refused the refresh token ({message}); run `mdp auth {source_name}` to authorize mdp again and store a new refresh token")]
    Reauthorize { source_name: String, platform: Platform, message: String },

    /// The API version is sunset or unknown: the user sets a current `api_version`.
    #[error("{platform}: API version {version} is not available (sunset or unknown): {message}; set `api_version` to a current version (mdp's default is {default})")]
    SunsetVersion { platform: Platform, version: String, default: String, message: String },

    /// The requested path does not exist (HTTP 404, and not the platform's version error): most often an
    /// account id that is wrong or that the token cannot see. `path` is the URL path, never a query
    /// string or a token.
    #[error("{platform}: not found: {path} ({message}); check the account id under `accounts:` in mdp.yml and that the token's user can access that account")]
    NotFound { platform: Platform, path: String, message: String },

    /// The platform refused the request with its own error code and message.
    #[error("{platform} API error {code}: {message}")]
    Platform { platform: Platform, code: String, message: String },

    /// Still rate limited after every retry.
    #[error("{platform}: still rate limited after {attempts} attempts ({code}: {message}); try again later or lower the concurrency")]
    RateLimited { platform: Platform, attempts: u32, code: String, message: String },

    /// Network trouble or server errors that outlasted the retries.
    #[error("{platform}: request failed after {attempts} attempts: {message}")]
    Transport { platform: Platform, attempts: u32, message: String },

    /// The API answered something mdp cannot read (after retries, for bodies cut short).
    #[error("{platform}: malformed response: {message}")]
    Malformed { platform: Platform, message: String },

    /// The loader stopped listening (it failed or was cancelled).
    #[error("ingest cancelled")]
    Cancelled,
}

impl SourceError {
    /// Whether running the read again later may succeed: the platform was rate limiting, unreachable or
    /// failing on its side. Configuration, credentials, a sunset API version and answers mdp cannot read
    /// need someone to act first; a cancelled ingest was stopped on purpose.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::RateLimited { .. } | SourceError::Transport { .. } => true,
            // A platform code its classifier judges transient becomes `Transport` or `RateLimited`; a
            // `Platform` error is the platform refusing this request.
            SourceError::Config { .. }
            | SourceError::Platform { .. }
            | SourceError::Auth { .. }
            | SourceError::Reauthorize { .. }
            | SourceError::SunsetVersion { .. }
            | SourceError::NotFound { .. }
            | SourceError::Malformed { .. }
            | SourceError::Cancelled => false,
        }
    }

    pub fn malformed(platform: Platform, message: impl Into<String>) -> Self {
        SourceError::Malformed { platform, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_passes_by_itself_is_retryable() {
        let p = Platform::MetaAds;
        let retryable = [
            SourceError::RateLimited { platform: p, attempts: 5, code: "17".into(), message: "slow down".into() },
            SourceError::Transport { platform: p, attempts: 5, message: "HTTP 503".into() },
        ];
        let not = [
            SourceError::Config { source_name: "meta".into(), message: "no accounts".into() },
            SourceError::Auth { platform: p, code: "190".into(), message: "expired".into() },
            SourceError::SunsetVersion {
                platform: p,
                version: "v1".into(),
                default: "v2".into(),
                message: "gone".into(),
            },
            SourceError::Platform { platform: p, code: "100".into(), message: "bad field".into() },
            SourceError::malformed(p, "not JSON"),
            SourceError::Cancelled,
        ];
        assert!(retryable.iter().all(SourceError::is_retryable));
        assert!(!not.iter().any(SourceError::is_retryable));
    }
}
