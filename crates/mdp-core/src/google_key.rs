//! Google service accounts: the JSON key file the Cloud console downloads, and the signed JWT that is
//! exchanged for an access token (the JWT-bearer grant, RFC 7523; Google's "OAuth 2.0 for server to
//! server applications").
//!
//! The assertion is `base64url(header) . base64url(claims) . base64url(RS256 signature)` with
//! `{"alg":"RS256","typ":"JWT","kid":private_key_id}` and the claims `iss` (the service account's
//! email), `scope`, `aud` (the key's `token_uri`), `iat`, `exp` (an hour at most: Google refuses
//! longer) and, for domain-wide delegation, `sub` (the Workspace user to act as). Signing is ring's
//! RSASSA-PKCS1-v1_5 with SHA-256, the TLS stack's own crypto (no new C build).
//!
//! A credentials file may also hold a person's OAuth client and refresh token (`type:
//! authorized_user`, what `gcloud auth application-default login` writes): [`GoogleCredentials`] reads
//! either kind, for clients (the BigQuery adapter) that take both.
//!
//! Nothing here speaks HTTP: the grant is posted by the crate that talks to Google (`mdp-sources`'
//! OAuth tokens, `mdp-cloud`'s BigQuery client). Nothing here prints a private key, secret or token:
//! errors name the file's fields, never their values.

use crate::jwt::RsaKey;
use serde::Deserialize;

/// The grant type of RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// How long an assertion is valid (Google's maximum).
const ASSERTION_LIFETIME_SECS: i64 = 3600;

/// A service account's key, read from its JSON key file.
pub struct ServiceAccountKey {
    /// The service account's email: the JWT's issuer, and what a Google Ads admin adds as a user.
    pub client_email: String,
    /// The OAuth client id of the service account (what a Workspace admin grants domain-wide delegation to).
    pub client_id: Option<String>,
    /// Which of the account's keys this is (the JWT header's `kid`).
    pub private_key_id: Option<String>,
    /// Where the grant is posted, and the JWT's audience.
    pub token_uri: String,
    key: RsaKey,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// The fields of a key file mdp reads (Google writes more: project_id, auth_uri, cert URLs).
#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: Option<String>,
    client_email: Option<String>,
    client_id: Option<String>,
    private_key_id: Option<String>,
    private_key: Option<String>,
    token_uri: Option<String>,
}

/// Google's token endpoint, for key files that do not name one (older downloads).
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

impl ServiceAccountKey {
    /// Read a key file's text. The error says which field is wrong and what the file should be.
    pub fn parse(text: &str) -> Result<ServiceAccountKey, String> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| {
            format!("is not a service account key file (JSON as the Cloud console's \"Create key\" downloads it): {e}")
        })?;
        match file.kind.as_deref() {
            Some("service_account") => {}
            Some("authorized_user") => {
                return Err("holds a user's credentials (type authorized_user, as `gcloud auth application-default \
                            login` writes), not a service account's: configure its client_id, client_secret and \
                            refresh_token credentials instead"
                    .into())
            }
            Some(other) => return Err(format!("is a {other:?} credential, not a service account key")),
            None => return Err("has no \"type\": a service account key file says \"type\": \"service_account\"".into()),
        }
        let client_email = file
            .client_email
            .filter(|email| email.contains('@'))
            .ok_or("has no client_email (the service account's email)")?;
        let pem = file.private_key.ok_or("has no private_key")?;
        let key = RsaKey::from_pem(&pem).map_err(|e| format!("has a private_key that {e}"))?;
        let token_uri = file.token_uri.filter(|uri| !uri.trim().is_empty()).unwrap_or(GOOGLE_TOKEN_URI.to_string());
        check_token_uri(&token_uri)?;
        Ok(ServiceAccountKey {
            client_email,
            client_id: file.client_id,
            private_key_id: file.private_key_id.filter(|id| !id.is_empty()),
            token_uri,
            key,
        })
    }

    /// A signed assertion for `scope` (space-separated scopes), valid from `now` (Unix seconds) for an
    /// hour, acting as `subject` when given (domain-wide delegation).
    pub fn assertion(&self, scope: &str, subject: Option<&str>, now: i64) -> Result<String, String> {
        let mut header = serde_json::json!({});
        if let Some(kid) = &self.private_key_id {
            header["kid"] = kid.as_str().into();
        }
        let mut claims = serde_json::json!({
            "iss": self.client_email,
            "scope": scope,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        if let Some(subject) = subject {
            claims["sub"] = subject.into();
        }
        self.key.sign(header, &claims).map_err(|e| format!("{e} (the token request)"))
    }
}

/// `token_uri` must be an http(s) address (a typo would otherwise post the grant nowhere useful).
fn check_token_uri(uri: &str) -> Result<(), String> {
    let rest = uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') && !uri.contains(char::is_whitespace) => Ok(()),
        _ => Err(format!("has a token_uri that is not an http(s) URL ({uri:?})")),
    }
}

/// A person's OAuth client and refresh token, as `gcloud auth application-default login` writes them.
pub struct AuthorizedUser {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// Where the refresh grant is posted.
    pub token_uri: String,
}

impl std::fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizedUser")
            .field("client_id", &self.client_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

/// Either kind of Google credentials file: a service account's key, or a person's refresh token.
#[derive(Debug)]
pub enum GoogleCredentials {
    ServiceAccount(Box<ServiceAccountKey>),
    AuthorizedUser(AuthorizedUser),
}

#[derive(Deserialize)]
struct UserFile {
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    token_uri: Option<String>,
}

impl GoogleCredentials {
    /// Read a credentials file's text (its `type` says which kind it is).
    pub fn parse(text: &str) -> Result<GoogleCredentials, String> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: Option<String>,
        }
        let kind: Kind = serde_json::from_str(text)
            .map_err(|e| format!("is not a Google credentials file (a service account key or gcloud's application default credentials): {e}"))?;
        if kind.kind.as_deref() != Some("authorized_user") {
            return ServiceAccountKey::parse(text).map(|key| GoogleCredentials::ServiceAccount(Box::new(key)));
        }
        let file: UserFile =
            serde_json::from_str(text).map_err(|e| format!("is not valid authorized_user credentials: {e}"))?;
        let field = |value: Option<String>, name: &str| {
            value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                format!("has no {name} (run `gcloud auth application-default login` again to write a complete file)")
            })
        };
        let token_uri = file.token_uri.filter(|uri| !uri.trim().is_empty()).unwrap_or(GOOGLE_TOKEN_URI.to_string());
        check_token_uri(&token_uri)?;
        Ok(GoogleCredentials::AuthorizedUser(AuthorizedUser {
            client_id: field(file.client_id, "client_id")?,
            client_secret: field(file.client_secret, "client_secret")?,
            refresh_token: field(file.refresh_token, "refresh_token")?,
            token_uri,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    /// The sandbox's published test key (not a secret: it signs for the local imitation only).
    const PEM: &str = include_str!("../../mdp-sandbox/keys/service_account.pem");

    fn key_file(extra: serde_json::Value) -> String {
        let mut file = serde_json::json!({
            "type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": PEM,
            "client_email": "reader@p.iam.gserviceaccount.com", "client_id": "1234",
            "token_uri": "https://oauth2.googleapis.com/token",
        });
        for (k, v) in extra.as_object().unwrap() {
            file[k] = v.clone();
        }
        file.to_string()
    }

    #[test]
    fn an_assertion_is_a_verifiable_rs256_jwt_with_googles_claims() {
        let key = ServiceAccountKey::parse(&key_file(serde_json::json!({}))).unwrap();
        let jwt =
            key.assertion("https://www.googleapis.com/auth/adwords", Some("ads@example.com"), 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"iss": "reader@p.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/adwords",
                "aud": "https://oauth2.googleapis.com/token", "iat": 1_700_000_000, "exp": 1_700_003_600,
                "sub": "ads@example.com"})
        );
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.key.public_key_der().to_vec());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &b64.decode(parts[2]).unwrap()).expect("the signature verifies");
        assert!(public.verify(b"x.y", &b64.decode(parts[2]).unwrap()).is_err(), "and binds the content");
    }

    #[test]
    fn bad_key_files_are_named_by_what_is_wrong() {
        let error = |extra: serde_json::Value| ServiceAccountKey::parse(&key_file(extra)).unwrap_err();
        assert!(error(serde_json::json!({"type": "authorized_user"}))
            .contains("client_id, client_secret and refresh_token"));
        assert!(error(serde_json::json!({"client_email": null})).contains("has no client_email"));
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
        assert!(error(serde_json::json!({"private_key": not_a_key})).contains("not a usable RSA private key"));
        assert!(error(serde_json::json!({"private_key": "abc"})).contains("not a PEM block"));
        assert!(ServiceAccountKey::parse("{").unwrap_err().contains("not a service account key file"));
        let old = ServiceAccountKey::parse(&key_file(serde_json::json!({"token_uri": null}))).unwrap();
        assert_eq!(old.token_uri, GOOGLE_TOKEN_URI, "older key files name no token_uri");
        assert!(!format!("{old:?}").contains("PRIVATE"), "Debug never shows the key");
        assert!(error(serde_json::json!({"token_uri": "oauth2.googleapis.com/token"})).contains("not an http(s) URL"));
    }

    #[test]
    fn credentials_files_of_either_kind_are_read() {
        let key = GoogleCredentials::parse(&key_file(serde_json::json!({}))).unwrap();
        assert!(matches!(key, GoogleCredentials::ServiceAccount(k) if k.client_email.starts_with("reader@")));
        let user = r#"{"type": "authorized_user", "client_id": "c.apps.googleusercontent.com",
            "client_secret": "s3cret", "refresh_token": "1//r3fresh", "quota_project_id": "p"}"#;
        let GoogleCredentials::AuthorizedUser(user) = GoogleCredentials::parse(user).unwrap() else {
            panic!("an authorized_user file is a person's credentials")
        };
        assert_eq!(
            (user.client_id.as_str(), user.token_uri.as_str()),
            ("c.apps.googleusercontent.com", GOOGLE_TOKEN_URI)
        );
        let shown = format!("{user:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("r3fresh"), "Debug shows no secret: {shown}");
        let incomplete = GoogleCredentials::parse(r#"{"type": "authorized_user", "client_id": "c"}"#).unwrap_err();
        assert!(
            incomplete.contains("no client_secret") && incomplete.contains("gcloud auth application-default login")
        );
    }
}
