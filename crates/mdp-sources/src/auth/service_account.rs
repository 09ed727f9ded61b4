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
//! Nothing here speaks HTTP: the grant is posted by [`super::OAuthTokens`]. Nothing here prints the
//! private key: errors name the file's fields, never their values.

use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
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
    key: RsaKeyPair,
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
        let key = private_key(&pem)?;
        let token_uri = file.token_uri.filter(|uri| !uri.trim().is_empty()).unwrap_or(GOOGLE_TOKEN_URI.to_string());
        reqwest::Url::parse(&token_uri).map_err(|e| format!("has a token_uri that is not a URL ({e})"))?;
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
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
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
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|_| "could not sign the token request with the key".to_string())?;
        Ok(format!("{signed}.{}", b64.encode(signature)))
    }
}

/// The RSA key of a PEM block: PKCS#8 (`BEGIN PRIVATE KEY`, what Google writes) or PKCS#1
/// (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa` wrote before 3.0).
fn private_key(pem: &str) -> Result<RsaKeyPair, String> {
    let (label, der) =
        pem_block(pem).ok_or("has a private_key that is not a PEM block (-----BEGIN PRIVATE KEY-----)")?;
    let parsed = match label.as_str() {
        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
        other => return Err(format!("has a private_key of kind {other:?}; Google's keys are RSA (PRIVATE KEY)")),
    };
    parsed.map_err(|e| format!("has a private_key that is not a usable RSA key ({e})"))
}

/// The label and the decoded bytes of the first PEM block of `text`.
fn pem_block(text: &str) -> Option<(String, Vec<u8>)> {
    let begin = text.find("-----BEGIN ")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + "-----".len();
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[body_start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).ok()?;
    Some((label, der))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    /// The sandbox's published test key (not a secret: it signs for the local imitation only).
    const PEM: &str = include_str!("../../../mdp-sandbox/keys/service_account.pem");

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
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.key.public().as_ref().to_vec());
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
        assert!(error(serde_json::json!({"private_key": not_a_key})).contains("not a usable RSA key"));
        assert!(error(serde_json::json!({"private_key": "abc"})).contains("not a PEM block"));
        assert!(ServiceAccountKey::parse("{").unwrap_err().contains("not a service account key file"));
        let old = ServiceAccountKey::parse(&key_file(serde_json::json!({"token_uri": null}))).unwrap();
        assert_eq!(old.token_uri, GOOGLE_TOKEN_URI, "older key files name no token_uri");
        assert!(!format!("{old:?}").contains("PRIVATE"), "Debug never shows the key");
    }
}
