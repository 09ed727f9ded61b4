//! Access tokens for BigQuery's API: from a service account's key (the JWT-bearer grant), from a
//! person's refresh token (`gcloud auth application-default login`), or given as is.
//!
//! Tokens are cached until a minute before they expire. Nothing here logs a token, a key or a secret.

use std::time::{Duration, Instant};

use mdp_core::google_key::{GoogleCredentials, JWT_BEARER};
use serde::Deserialize;

use crate::error::CloudError;

/// The scope every BigQuery call needs.
pub const SCOPE: &str = "https://www.googleapis.com/auth/bigquery";

/// How mdp authenticates to BigQuery.
#[derive(Clone)]
pub enum BigQueryAuth {
    /// A credentials file's text: a service account's key (`type: service_account`) or a person's
    /// application default credentials (`type: authorized_user`).
    Credentials(String),
    /// An OAuth access token obtained elsewhere (`gcloud auth print-access-token`); it is not renewed.
    AccessToken(String),
    /// No `Authorization` header: only for a local stand-in.
    None,
}

impl std::fmt::Debug for BigQueryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BigQueryAuth::Credentials(_) => "Credentials(..)",
            BigQueryAuth::AccessToken(_) => "AccessToken(..)",
            BigQueryAuth::None => "None",
        })
    }
}

/// Where gcloud writes application default credentials, under the user's config directory.
pub const GCLOUD_ADC_PATH: &str = "gcloud/application_default_credentials.json";

impl BigQueryAuth {
    /// Google's application default credentials: the file `GOOGLE_APPLICATION_CREDENTIALS` names, else
    /// the one `gcloud auth application-default login` wrote (`$CLOUDSDK_CONFIG` or
    /// `~/.config/gcloud`). `env` reads an environment variable.
    pub fn application_default(env: impl Fn(&str) -> Option<String>) -> Result<BigQueryAuth, CloudError> {
        let path = match env("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.trim().is_empty()) {
            Some(path) => std::path::PathBuf::from(path),
            None => {
                let config = env("CLOUDSDK_CONFIG")
                    .map(std::path::PathBuf::from)
                    .or_else(|| env("HOME").map(|home| std::path::Path::new(&home).join(".config/gcloud")))
                    .ok_or_else(|| CloudError::Config("no HOME to find gcloud's credentials in".into()))?;
                config.join("application_default_credentials.json")
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            CloudError::Config(format!(
                "no application default credentials at {} ({e}): run `gcloud auth application-default login`, \
                 or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, or configure `keyfile`",
                path.display()
            ))
        })?;
        GoogleCredentials::parse(&text).map_err(|e| CloudError::Config(format!("{} {e}", path.display())))?;
        Ok(BigQueryAuth::Credentials(text))
    }
}

/// Tokens for one client: how to get one, and the current one.
pub(super) struct Tokens {
    source: Source,
    current: tokio::sync::Mutex<Option<(String, Instant)>>,
}

enum Source {
    Grant(GoogleCredentials),
    Fixed(String),
    None,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

impl Tokens {
    pub(super) fn new(auth: &BigQueryAuth) -> Result<Tokens, CloudError> {
        let source = match auth {
            BigQueryAuth::Credentials(text) => Source::Grant(
                GoogleCredentials::parse(text)
                    .map_err(|e| CloudError::Config(format!("the BigQuery credentials file {e}")))?,
            ),
            BigQueryAuth::AccessToken(token) if token.trim().is_empty() => {
                return Err(CloudError::Config("the BigQuery access token is empty".into()))
            }
            BigQueryAuth::AccessToken(token) => Source::Fixed(token.trim().to_string()),
            BigQueryAuth::None => Source::None,
        };
        Ok(Tokens { source, current: tokio::sync::Mutex::new(None) })
    }

    /// Who mdp acts as, for messages (no secret).
    pub(super) fn principal(&self) -> String {
        match &self.source {
            Source::Grant(GoogleCredentials::ServiceAccount(key)) => format!("service account {}", key.client_email),
            Source::Grant(GoogleCredentials::AuthorizedUser(user)) => {
                format!("gcloud user credentials ({})", user.client_id)
            }
            Source::Fixed(_) => "an access token".into(),
            Source::None => "no credentials".into(),
        }
    }

    /// The `Authorization` header value, `None` without credentials.
    pub(super) async fn header(&self, http: &reqwest::Client) -> Result<Option<String>, CloudError> {
        let grant = match &self.source {
            Source::None => return Ok(None),
            Source::Fixed(token) => return Ok(Some(format!("Bearer {token}"))),
            Source::Grant(grant) => grant,
        };
        let mut current = self.current.lock().await;
        if let Some((token, until)) = current.as_ref() {
            if Instant::now() < *until {
                return Ok(Some(format!("Bearer {token}")));
            }
        }
        let (token, lifetime) = fetch(http, grant).await?;
        let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(60));
        *current = Some((token.clone(), until));
        Ok(Some(format!("Bearer {token}")))
    }

    /// Forget the current token (the API refused it: it was revoked or expired early).
    pub(super) async fn forget(&self) {
        *self.current.lock().await = None;
    }
}

/// Exchange the credentials for an access token and its lifetime.
async fn fetch(http: &reqwest::Client, grant: &GoogleCredentials) -> Result<(String, Duration), CloudError> {
    let (uri, form, who) = match grant {
        GoogleCredentials::ServiceAccount(key) => {
            let assertion = key
                .assertion(SCOPE, None, chrono::Utc::now().timestamp())
                .map_err(|e| CloudError::Config(format!("cannot sign the token request: {e}")))?;
            let form = vec![("grant_type", JWT_BEARER.to_string()), ("assertion", assertion)];
            (key.token_uri.clone(), form, format!("service account {}", key.client_email))
        }
        GoogleCredentials::AuthorizedUser(user) => {
            let form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", user.client_id.clone()),
                ("client_secret", user.client_secret.clone()),
                ("refresh_token", user.refresh_token.clone()),
            ];
            (user.token_uri.clone(), form, format!("gcloud user credentials of client {}", user.client_id))
        }
    };
    let response = http
        .post(&uri)
        .form(&form)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| CloudError::Unavailable(format!("cannot reach Google's token endpoint {uri}: {e}")))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let answer: Option<TokenAnswer> = serde_json::from_str(&text).ok();
    if !status.is_success() {
        let detail = answer
            .as_ref()
            .map(|a| {
                format!("{}: {}", a.error.as_deref().unwrap_or("error"), a.error_description.as_deref().unwrap_or(""))
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        return Err(match status.as_u16() {
            429 | 500..=599 => CloudError::Unavailable(format!("Google's token endpoint answered {status} ({detail})")),
            _ => CloudError::Auth(format!(
                "Google refused a token to {who} ({detail}): check the key or run `gcloud auth application-default login` again"
            )),
        });
    }
    let answer = answer.ok_or_else(|| CloudError::Protocol {
        service: "Google OAuth",
        message: "the token answer is not JSON".into(),
    })?;
    let token = answer.access_token.filter(|t| !t.is_empty()).ok_or_else(|| CloudError::Protocol {
        service: "Google OAuth",
        message: "the token answer has no access_token".into(),
    })?;
    Ok((token, Duration::from_secs(answer.expires_in.unwrap_or(3600))))
}
