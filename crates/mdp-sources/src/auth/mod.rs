//! OAuth 2.0 for the connectors.
//!
//! - [`OAuthTokens`]: access tokens from a refresh token (RFC 6749 §6) or from a service account's
//!   signed JWT ([`mdp_core::google_key`], RFC 7523), cached in memory for the run, renewed shortly before
//!   they expire and once more when the platform refuses one mid-run (the HTTP driver asks, see
//!   `http::Endpoint`); a refresh token the platform rotates is saved back to its file. Concurrent
//!   requests wait for one renewal instead of each starting their own.
//! - [`consent_url`] and [`exchange_code`]: the authorization-code grant behind `mdp auth`.
//!
//! Secrets: tokens are held as [`Credential`]s (printed as `***`), sent only in form bodies and headers
//! marked sensitive, never logged; error messages quote the platform's error code and description, which
//! carry no token.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use mdp_core::{OAuthSpec, Platform, TokenGrant, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, SERVICE_ACCOUNT_KEY};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::error::SourceError;
use crate::source::{Credential, SourceSettings};

pub mod oauth1;

use mdp_core::google_key::{ServiceAccountKey, JWT_BEARER};

/// How often a token request is tried when the token endpoint fails on its side.
const TOKEN_ATTEMPTS: u32 = 4;

/// A token is refreshed this long before it expires (a quarter of its lifetime when that is shorter),
/// so that a request sent with it does not arrive after the expiry.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A source's renewing access token (one per connector, shared by all its requests).
pub struct OAuthTokens {
    platform: Platform,
    source_name: String,
    token_url: String,
    authority: Authority,
    state: tokio::sync::Mutex<State>,
    refreshes: AtomicU64,
}

/// Who vouches for the source when it asks for an access token.
enum Authority {
    /// The app's client credentials, with the user's refresh token (kept in [`State`], it may rotate).
    User { client_id: Credential, client_secret: Credential },
    /// A service account's key, acting as itself or (domain-wide delegation) as `subject`.
    ServiceAccount { key: Box<ServiceAccountKey>, scope: String, subject: Option<String> },
}

impl std::fmt::Debug for OAuthTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthTokens")
            .field("source", &self.source_name)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

struct State {
    /// The user's refresh token (`None` for a service account).
    refresh_token: Option<Credential>,
    access: Option<Access>,
}

/// An access token and when to stop using it.
struct Access {
    token: Credential,
    /// Refresh from this instant on (the expiry less a margin).
    refresh_at: Option<Instant>,
    expires_at: Option<DateTime<Utc>>,
}

/// What a token endpoint answers (RFC 6749 §5.1); LinkedIn adds `refresh_token_expires_in`.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    #[serde(default, deserialize_with = "seconds")]
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    #[serde(default, deserialize_with = "seconds")]
    refresh_token_expires_in: Option<u64>,
}

/// The error answer of a token endpoint (RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenError {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// The tokens of a grant (refresh or authorization code).
#[derive(Debug)]
pub struct Grant {
    pub access_token: Credential,
    /// Seconds the access token lives, as the platform said.
    pub expires_in: Option<u64>,
    /// Sent on an authorization-code grant, and on a refresh where the platform rotates it (or repeats it).
    pub refresh_token: Option<Credential>,
    pub refresh_token_expires_in: Option<u64>,
}

impl OAuthTokens {
    /// The renewing token of `settings`, when it configures `client_id`, `client_secret` and
    /// `refresh_token`, or a `service_account_key`, on a platform that takes them; `None` when it sends
    /// a fixed `access_token`.
    pub fn from_settings(settings: &SourceSettings) -> Result<Option<OAuthTokens>, SourceError> {
        let kind = mdp_core::kind(settings.platform);
        let grant =
            kind.token_grant(|name| settings.credentials.contains_key(name)).map_err(|e| settings.config_error(e))?;
        let (authority, refresh_token, default_url) = match grant {
            None | Some(TokenGrant::AccessToken) => return Ok(None),
            Some(TokenGrant::RefreshToken) => {
                let spec = kind.oauth.expect("a refresh grant implies an OAuth spec");
                let authority = Authority::User {
                    client_id: settings.credential(CLIENT_ID)?.clone(),
                    client_secret: settings.credential(CLIENT_SECRET)?.clone(),
                };
                (authority, Some(settings.credential(REFRESH_TOKEN)?.clone()), spec.token_url.to_string())
            }
            Some(TokenGrant::ServiceAccount) => {
                let spec = kind.oauth.expect("a service account grant implies an OAuth spec");
                let credential = settings.credential(SERVICE_ACCOUNT_KEY)?;
                let key = ServiceAccountKey::parse(credential.expose()).map_err(|e| {
                    let from = credential.file().map(|p| format!(" ({})", p.display())).unwrap_or_default();
                    settings.config_error(format!("the credential `{SERVICE_ACCOUNT_KEY}`{from} {e}"))
                })?;
                let subject = settings.options.google_ads().and_then(|google| google.impersonated_email.clone());
                let token_uri = key.token_uri.clone();
                let authority = Authority::ServiceAccount { key: Box::new(key), scope: spec.scopes.join(" "), subject };
                (authority, None, token_uri)
            }
        };
        let token_url = settings.token_url.clone().unwrap_or(default_url);
        reqwest::Url::parse(&token_url)
            .map_err(|e| settings.config_error(format!("oauth.token_url {token_url:?} is not a valid URL ({e})")))?;
        Ok(Some(OAuthTokens {
            platform: settings.platform,
            source_name: settings.name.clone(),
            token_url,
            authority,
            state: tokio::sync::Mutex::new(State { refresh_token, access: None }),
            refreshes: AtomicU64::new(0),
        }))
    }

    /// Where access tokens come from, for `mdp doctor`: "the refresh token" or the service account.
    pub fn grant_description(&self) -> String {
        match &self.authority {
            Authority::User { .. } => "refreshed from the refresh token".to_string(),
            Authority::ServiceAccount { key, subject: None, .. } => {
                format!("signed by the service account {}", key.client_email)
            }
            Authority::ServiceAccount { key, subject: Some(subject), .. } => {
                format!(
                    "signed by the service account {} acting as {subject} (domain-wide delegation)",
                    key.client_email
                )
            }
        }
    }

    /// A current access token: the cached one while it is fresh, else a new one from the token endpoint.
    pub async fn token(&self, client: &reqwest::Client) -> Result<Credential, SourceError> {
        let mut state = self.state.lock().await;
        if let Some(access) = &state.access {
            if access.refresh_at.is_none_or(|at| Instant::now() < at) {
                return Ok(access.token.clone());
            }
        }
        self.refresh(&mut state, client).await
    }

    /// The platform refused `refused`: a new token, unless another request already replaced it.
    pub async fn refused(&self, client: &reqwest::Client, refused: &Credential) -> Result<Credential, SourceError> {
        let mut state = self.state.lock().await;
        if let Some(access) = &state.access {
            if access.token.expose() != refused.expose() {
                return Ok(access.token.clone());
            }
        }
        tracing::info!(source = %self.source_name, "the platform refused the access token; refreshing it once");
        self.refresh(&mut state, client).await
    }

    /// How many access tokens this run obtained.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// When the current access token expires, if one was obtained and the platform said.
    pub async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.state.lock().await.access.as_ref().and_then(|access| access.expires_at)
    }

    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    /// Obtain an access token now with a client of its own (`mdp doctor`): the token's expiry, if the
    /// platform said.
    pub async fn check(&self) -> Result<Option<DateTime<Utc>>, SourceError> {
        self.token(&token_client()?).await?;
        Ok(self.expires_at().await)
    }

    async fn refresh(&self, state: &mut State, client: &reqwest::Client) -> Result<Credential, SourceError> {
        let grant = match (&self.authority, &state.refresh_token) {
            (Authority::User { client_id, client_secret }, Some(refresh_token)) => {
                let (client_fields, basic) = client_authentication(self.platform, client_id, client_secret);
                let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())];
                form.extend(client_fields);
                let refuse = |status, body: &[u8]| refusal(self.platform, &self.source_name, status, body);
                post_grant(client, self.platform, &self.token_url, &form, basic, refuse).await
            }
            (Authority::ServiceAccount { key, scope, subject }, _) => {
                let assertion = key
                    .assertion(scope, subject.as_deref(), Utc::now().timestamp())
                    .map_err(|e| SourceError::Config { source_name: self.source_name.clone(), message: e })?;
                let form = [("grant_type", JWT_BEARER), ("assertion", assertion.as_str())];
                let refuse = |status, body: &[u8]| self.service_account_refusal(status, body, key, subject.as_deref());
                post_grant(client, self.platform, &self.token_url, &form, None, refuse).await
            }
            (Authority::User { .. }, None) => unreachable!("a user's grant is built with its refresh token"),
        }?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        if let (Some(rotated), Some(current)) = (grant.refresh_token, &state.refresh_token) {
            if rotated.expose() != current.expose() {
                let rotated = match current.file() {
                    Some(path) => rotated.with_file(path.to_path_buf()),
                    None => rotated,
                };
                self.keep_rotated(&rotated);
                state.refresh_token = Some(rotated);
            }
        }
        let lifetime = grant.expires_in.map(Duration::from_secs);
        let margin = lifetime.map_or(REFRESH_MARGIN, |lifetime| REFRESH_MARGIN.min(lifetime / 4));
        state.access = Some(Access {
            token: grant.access_token.clone(),
            refresh_at: lifetime.map(|lifetime| Instant::now() + lifetime.saturating_sub(margin)),
            expires_at: lifetime.and_then(|lifetime| chrono::Duration::from_std(lifetime).ok()).map(|d| Utc::now() + d),
        });
        Ok(grant.access_token)
    }

    /// A token endpoint's refusal of a service account, worded for it: no refresh token to renew with
    /// `mdp auth`; the key, the clock, the delegation or the account's access is what to fix.
    fn service_account_refusal(
        &self,
        status: StatusCode,
        body: &[u8],
        key: &ServiceAccountKey,
        subject: Option<&str>,
    ) -> SourceError {
        let message = match serde_json::from_slice::<TokenError>(body) {
            Ok(TokenError { error, error_description: Some(description) }) => format!("{error}: {description}"),
            Ok(TokenError { error, error_description: None }) => error,
            Err(_) => format!("HTTP {status}: {}", snippet(body)),
        };
        let email = &key.client_email;
        let advice = match subject {
            Some(subject) if message.starts_with("unauthorized_client") => format!(
                "the service account may not act as {subject}: a Google Workspace admin must grant domain-wide \
                 delegation of the scope https://www.googleapis.com/auth/adwords to its client id {} (Security > API \
                 controls), or remove `impersonated_email` and add {email} as a user of the Google Ads account",
                key.client_id.as_deref().unwrap_or("(the key file's client_id)")
            ),
            _ if message.contains("Signature") || message.contains("account not found") => format!(
                "check that `{SERVICE_ACCOUNT_KEY}` is a current key of {email} (a key deleted in the Cloud console \
                 stops working; download a new one)"
            ),
            _ if message.contains("iat") || message.contains("exp") => {
                "the token request's time was refused: check this machine's clock".to_string()
            }
            _ => format!("check the service account {email} and its key"),
        };
        SourceError::Config {
            source_name: self.source_name.clone(),
            message: format!("{} refused the service account's token request ({message}); {advice}", self.platform),
        }
    }

    /// Save a rotated refresh token where the old one was read from: its file, atomically. A token from
    /// an environment variable cannot be updated: it is used for this run and the user is told.
    fn keep_rotated(&self, rotated: &Credential) {
        match rotated.file() {
            Some(path) => match write_secret_file(path, rotated.expose()) {
                Ok(()) => tracing::info!(
                    source = %self.source_name,
                    file = %path.display(),
                    "the platform rotated the refresh token; saved the new one to its file"
                ),
                Err(e) => tracing::warn!(
                    source = %self.source_name,
                    file = %path.display(),
                    error = %e,
                    "the platform rotated the refresh token but it could not be saved: this run uses it, the next \
                     run will be refused; run `mdp auth {}` then",
                    self.source_name
                ),
            },
            None => tracing::warn!(
                source = %self.source_name,
                "the platform rotated the refresh token, which is read from an environment variable mdp cannot \
                 update: this run uses the new one; keep it in a file (`refresh_token: {{ file: path }}`) so mdp \
                 saves rotations, or run `mdp auth {}` before the next run",
                self.source_name
            ),
        }
    }
}

/// Write a secret to `path` atomically (a temporary file beside it, then a rename), readable only by
/// its owner, ending with a newline as editors write files.
pub fn write_secret_file(path: &Path, value: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temporary, format!("{value}\n").as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        temporary.as_file().set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The URL a user opens to let mdp read their ads data: the platform's consent page with the scopes,
/// `redirect_uri` (a loopback address `mdp auth` listens on) and `state` (checked on the way back).
pub fn consent_url(
    spec: &OAuthSpec,
    authorize_url: &str,
    client_id: &Credential,
    redirect_uri: &str,
    state: &str,
    code_verifier: Option<&str>,
) -> Result<String, String> {
    let mut url =
        reqwest::Url::parse(authorize_url).map_err(|e| format!("oauth.authorize_url {authorize_url:?}: {e}"))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id.expose())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &spec.scopes.join(" "))
            .append_pair("state", state);
        for (name, value) in spec.authorize_params {
            query.append_pair(name, value);
        }
        if let Some(verifier) = code_verifier {
            query.append_pair("code_challenge", &pkce_challenge(verifier)).append_pair("code_challenge_method", "S256");
        }
    }
    Ok(url.into())
}

/// PKCE's S256 challenge of a code verifier (RFC 7636 §4.2): BASE64URL(SHA256(verifier)), unpadded.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Exchange an authorization code (from the consent page's redirect) for tokens.
#[allow(clippy::too_many_arguments, reason = "the grant's fields, each named at the one call site")]
pub async fn exchange_code(
    platform: Platform,
    source_name: &str,
    token_url: &str,
    client_id: &Credential,
    client_secret: &Credential,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> Result<Grant, SourceError> {
    let (client_fields, basic) = client_authentication(platform, client_id, client_secret);
    let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)];
    form.extend(client_fields);
    form.extend(code_verifier.map(|verifier| ("code_verifier", verifier)));
    let refuse = |status, body: &[u8]| refusal(platform, source_name, status, body);
    post_grant(&token_client()?, platform, token_url, &form, basic, refuse).await
}

/// How the client proves itself at the token endpoint, as the platform takes it: its id and secret as
/// form fields, or (`OAuthSpec::client_auth_basic`) as HTTP Basic credentials.
#[allow(clippy::type_complexity, reason = "the form's fields and the Basic pair, used side by side")]
fn client_authentication<'a>(
    platform: Platform,
    client_id: &'a Credential,
    client_secret: &'a Credential,
) -> (Vec<(&'static str, &'a str)>, Option<(&'a str, &'a str)>) {
    if mdp_core::kind(platform).oauth.is_some_and(|oauth| oauth.client_auth_basic) {
        (Vec::new(), Some((client_id.expose(), client_secret.expose())))
    } else {
        (vec![("client_id", client_id.expose()), ("client_secret", client_secret.expose())], None)
    }
}

/// A client for one-off token requests (`mdp auth`, `mdp doctor`); runs share the HTTP driver's.
fn token_client() -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("mdp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SourceError::Transport { platform: Platform::GoogleAds, attempts: 0, message: e.to_string() })
}

/// What the browser brought back to `mdp auth`'s loopback listener.
#[derive(Debug, PartialEq, Eq)]
pub enum Redirect {
    /// This flow's authorization code.
    Code(String),
    /// The platform's refusal (the user declined, a wrong scope): its `error` and description.
    Refused(String),
    /// Not this flow's redirect (a favicon request, a stale tab of an earlier flow).
    Other,
}

/// Read the request target of a redirect (`/?code=…&state=…`) against the flow's `state`.
pub fn read_redirect(target: &str, state: &str) -> Redirect {
    let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
        return Redirect::Other;
    };
    let param = |name: &str| url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned());
    if param("state").as_deref() != Some(state) {
        return Redirect::Other;
    }
    match (param("code"), param("error")) {
        (Some(code), _) if !code.is_empty() => Redirect::Code(code),
        (_, Some(error)) => {
            Redirect::Refused(format!("{error} {}", param("error_description").unwrap_or_default()).trim().to_string())
        }
        _ => Redirect::Other,
    }
}

/// Post a grant to a token endpoint, retrying what fails on the platform's side.
async fn post_grant(
    client: &reqwest::Client,
    platform: Platform,
    token_url: &str,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    refuse: impl Fn(StatusCode, &[u8]) -> SourceError,
) -> Result<Grant, SourceError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = client.post(token_url);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let (retry_after, problem) = match request.form(form).send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after = crate::http::retry_after(response.headers());
                match response.bytes().await {
                    Ok(body) if status.is_success() => return read_grant(platform, &body),
                    Ok(body) if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS => {
                        (retry_after, format!("HTTP {status}: {}", snippet(&body)))
                    }
                    Ok(body) => return Err(refuse(status, &body)),
                    Err(e) => (None, format!("reading the answer failed: {e}")),
                }
            }
            Err(e) => (None, if e.is_timeout() { "timed out".to_string() } else { "could not connect".to_string() }),
        };
        if attempt >= TOKEN_ATTEMPTS {
            return Err(SourceError::Transport {
                platform,
                attempts: attempt,
                message: format!("the token endpoint failed: {problem}"),
            });
        }
        let delay = retry_after.unwrap_or(Duration::from_millis(500 << attempt)).min(Duration::from_secs(30));
        tracing::info!(%platform, attempt, delay_ms = delay.as_millis() as u64, %problem, "retrying the token request");
        tokio::time::sleep(delay).await;
    }
}

fn read_grant(platform: Platform, body: &[u8]) -> Result<Grant, SourceError> {
    let answer: TokenAnswer = serde_json::from_slice(body).map_err(|e| {
        SourceError::malformed(platform, format!("the token endpoint's answer is not a token response ({e})"))
    })?;
    let access_token = answer
        .access_token
        .filter(|token| !token.is_empty())
        .ok_or_else(|| SourceError::malformed(platform, "the token endpoint's answer has no access_token"))?;
    Ok(Grant {
        access_token: Credential::new(access_token),
        expires_in: answer.expires_in,
        refresh_token: answer.refresh_token.filter(|token| !token.is_empty()).map(Credential::new),
        refresh_token_expires_in: answer.refresh_token_expires_in,
    })
}

/// A token endpoint's refusal, worded by who must act.
fn refusal(platform: Platform, source_name: &str, status: StatusCode, body: &[u8]) -> SourceError {
    let Ok(error) = serde_json::from_slice::<TokenError>(body) else {
        return SourceError::Auth {
            platform,
            code: status.as_u16().to_string(),
            message: format!("the token endpoint refused the refresh: {}", snippet(body)),
        };
    };
    let message = match &error.error_description {
        Some(description) => format!("{}: {description}", error.error),
        None => error.error.clone(),
    };
    match error.error.as_str() {
        // The refresh token (or code) is expired, revoked, already used or was issued to another client.
        "invalid_grant" => SourceError::Reauthorize { source_name: source_name.to_string(), platform, message },
        "invalid_client" | "unauthorized_client" => SourceError::Config {
            source_name: source_name.to_string(),
            message: format!(
                "{platform} refused the OAuth client ({message}); check the client_id and client_secret credentials"
            ),
        },
        // LinkedIn answers an expired or revoked refresh token with `invalid_request`.
        "invalid_request" if message.contains("refresh token") || message.contains("revoked") => {
            SourceError::Reauthorize { source_name: source_name.to_string(), platform, message }
        }
        _ => SourceError::Auth { platform, code: error.error, message },
    }
}

fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(200).collect()
}

/// Seconds as a number or a numeric string (some endpoints quote them).
fn seconds<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Seconds>::deserialize(deserializer)? {
        None => None,
        Some(Seconds::Number(n)) => Some(n),
        Some(Seconds::Float(f)) if f >= 0.0 => Some(f as u64),
        Some(Seconds::Float(_)) => None,
        Some(Seconds::Text(text)) => text.trim().parse().ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_who_must_act() {
        let p = Platform::GoogleAds;
        let revoked = refusal(
            p,
            "google",
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#,
        );
        let text = revoked.to_string();
        assert!(matches!(revoked, SourceError::Reauthorize { .. }), "{text}");
        assert!(text.contains("mdp auth google") && text.contains("Token has been expired or revoked."), "{text}");
        let client = refusal(p, "google", StatusCode::UNAUTHORIZED, br#"{"error":"invalid_client"}"#);
        assert!(client.to_string().contains("check the client_id and client_secret"), "{client}");
        let linkedin = refusal(
            Platform::LinkedInAds,
            "li",
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_request","error_description":"The provided authorization grant or refresh token is invalid, expired or revoked"}"#,
        );
        assert!(matches!(linkedin, SourceError::Reauthorize { .. }), "{linkedin}");
        let html = refusal(p, "google", StatusCode::FORBIDDEN, b"<html>denied</html>");
        assert!(matches!(html, SourceError::Auth { .. }) && html.to_string().contains("denied"), "{html}");
    }

    #[test]
    fn token_answers_are_read_with_their_lifetimes() {
        let grant = read_grant(
            Platform::LinkedInAds,
            br#"{"access_token":"a","expires_in":"5184000","refresh_token":"r","refresh_token_expires_in":31536000}"#,
        )
        .unwrap();
        assert_eq!(grant.access_token.expose(), "a");
        assert_eq!((grant.expires_in, grant.refresh_token_expires_in), (Some(5_184_000), Some(31_536_000)));
        assert_eq!(grant.refresh_token.unwrap().expose(), "r");
        let error = read_grant(Platform::GoogleAds, br#"{"token_type":"Bearer"}"#).unwrap_err();
        assert!(error.to_string().contains("has no access_token"), "{error}");
    }

    #[test]
    fn the_consent_url_carries_scopes_state_and_the_platforms_parameters() {
        let spec = mdp_core::kind(Platform::GoogleAds).oauth.unwrap();
        let url =
            consent_url(&spec, spec.authorize_url, &Credential::new("id 1"), "http://127.0.0.1:9/", "s", None).unwrap();
        assert!(!url.contains("code_challenge"), "no PKCE unless asked");
        let pkce =
            consent_url(&spec, spec.authorize_url, &Credential::new("id 1"), "http://127.0.0.1:9/", "s", Some("v"))
                .unwrap();
        // The expected value computed independently (Python: urlsafe_b64encode(sha256(v)).rstrip("=")).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CKP-1mWjXtY8W5tpsTt2rQsevRnH7c2gZg"),
            "FLYuXILotD3o-l1GdsuYjtZ1dRh-Wb7tAdd3fgd0Pwo"
        );
        assert!(pkce.contains(&format!("code_challenge={}&code_challenge_method=S256", pkce_challenge("v"))), "{pkce}");
        assert!(url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?response_type=code&client_id=id+1&"));
        assert!(url.contains("redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2F"), "{url}");
        assert!(url.contains("scope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fadwords&state=s"), "{url}");
        assert!(url.ends_with("&access_type=offline&prompt=consent"), "{url}");
    }

    #[test]
    fn redirects_are_this_flows_code_or_refusal() {
        assert_eq!(read_redirect("/?code=4%2F0Ab&state=s1&scope=a%20b", "s1"), Redirect::Code("4/0Ab".into()));
        assert_eq!(read_redirect("/?code=x&state=old", "s1"), Redirect::Other, "a stale tab");
        assert_eq!(read_redirect("/favicon.ico", "s1"), Redirect::Other);
        assert_eq!(
            read_redirect("/?error=access_denied&error_description=user+declined&state=s1", "s1"),
            Redirect::Refused("access_denied user declined".into())
        );
    }

    #[test]
    fn secret_files_are_replaced_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/refresh");
        write_secret_file(&path, "one").unwrap();
        write_secret_file(&path, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no temporary file left");
    }
}
