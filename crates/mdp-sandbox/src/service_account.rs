//! Google's service-account grant: `POST /token` with
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>` (RFC 7523; Google's "Using
//! OAuth 2.0 for Server to Server Applications").
//!
//! The sandbox has one service account, [`EMAIL`], whose key file it hands out at
//! `GET /_sandbox/google/service_account_key` (as the Cloud console's "Create key" downloads it,
//! with `token_uri` pointing at this sandbox). Its private key is [`PRIVATE_KEY_PEM`], a test key made
//! for the sandbox: it signs for nothing else, so it is published with the code.
//!
//! What Google checks, and answers with the same errors: the signature (RS256 with the key named by
//! `kid`), the issuer, the audience (the token endpoint's own URL), a short lifetime (`exp - iat` at
//! most an hour, `exp` in the future, `iat` not ahead of the clock), the scope, and `sub` (acting as a
//! Workspace user) only when domain-wide delegation was granted
//! ([`OAuthSettings::domain_wide_delegation`](crate::OAuthSettings)). The answer carries an access
//! token and its lifetime, never a refresh token.

use base64::Engine;
use ring::signature::{RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use serde::Deserialize;

/// The sandbox's service account.
pub const EMAIL: &str = "mdp-reader@mdp-sandbox.iam.gserviceaccount.com";
/// Its OAuth client id (what domain-wide delegation is granted to).
pub const CLIENT_ID: &str = "104812233445566778899";
/// The id of its one key.
pub const KEY_ID: &str = "5a4d7e0c9b1f2a3e4d5c6b7a8f9e0d1c2b3a4f5e";
/// Its private key (PKCS#8 PEM): a test key of the sandbox, not a secret.
pub const PRIVATE_KEY_PEM: &str = include_str!("../keys/service_account.pem");

/// The grant type of RFC 7523 §2.1.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The scope Google Ads needs.
const ADWORDS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";

/// The key file of the sandbox's service account, for a sandbox whose token endpoint is `token_uri`.
pub fn key_file(token_uri: &str) -> serde_json::Value {
    serde_json::json!({
        "type": "service_account",
        "project_id": "mdp-sandbox",
        "private_key_id": KEY_ID,
        "private_key": PRIVATE_KEY_PEM,
        "client_email": EMAIL,
        "client_id": CLIENT_ID,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{}", EMAIL.replace('@', "%40")),
        "universe_domain": "googleapis.com",
    })
}

/// A refused assertion: the HTTP status, the OAuth error code and Google's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub error: &'static str,
    pub description: &'static str,
}

const fn refusal(status: u16, error: &'static str, description: &'static str) -> Refusal {
    Refusal { status, error, description }
}

const BAD_SIGNATURE: Refusal = refusal(400, "invalid_grant", "Invalid JWT Signature.");
const BAD_TIME: Refusal = refusal(
    400,
    "invalid_grant",
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and \
     exp values in the JWT claim.",
);

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    scope: Option<String>,
    aud: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
    sub: Option<String>,
}

/// Who an accepted assertion acts as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub service_account: String,
    /// The Workspace user, under domain-wide delegation.
    pub subject: Option<String>,
}

/// Check an assertion posted to the token endpoint at `audience`, at `now` (Unix seconds).
pub fn verify(assertion: &str, audience: &str, now: i64, delegation: bool) -> Result<Principal, Refusal> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = assertion.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(refusal(400, "invalid_request", "Invalid JWT: the assertion is not three dot-separated parts."));
    };
    let decode = |part: &str| b64.decode(part).map_err(|_| BAD_SIGNATURE);
    let header: Header = serde_json::from_slice(&decode(header)?).map_err(|_| BAD_SIGNATURE)?;
    if header.alg.as_deref() != Some("RS256") || header.kid.as_deref().is_some_and(|kid| kid != KEY_ID) {
        return Err(BAD_SIGNATURE);
    }
    let signed = &assertion[..assertion.rfind('.').expect("three parts")];
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_key())
        .verify(signed.as_bytes(), &decode(signature)?)
        .map_err(|_| BAD_SIGNATURE)?;
    let claims: Claims = serde_json::from_slice(&decode(claims)?).map_err(|_| BAD_SIGNATURE)?;
    if claims.iss.as_deref() != Some(EMAIL) {
        return Err(refusal(400, "invalid_grant", "Invalid grant: account not found"));
    }
    if claims.aud.as_deref() != Some(audience) {
        return Err(refusal(400, "invalid_grant", "Invalid JWT: Failed audience check."));
    }
    let (Some(iat), Some(exp)) = (claims.iat, claims.exp) else {
        return Err(BAD_TIME);
    };
    // Google allows a few minutes of clock skew.
    if exp <= now || iat > now + 300 || exp - iat > 3600 || exp <= iat {
        return Err(BAD_TIME);
    }
    if !claims.scope.unwrap_or_default().split(' ').any(|scope| scope == ADWORDS_SCOPE) {
        return Err(refusal(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided."));
    }
    let subject = claims.sub.filter(|sub| !sub.is_empty());
    if let Some(subject) = &subject {
        if !delegation {
            return Err(refusal(
                401,
                "unauthorized_client",
                "Client is unauthorized to retrieve access tokens using this method, or client not authorized for \
                 any of the scopes requested.",
            ));
        }
        if !subject.contains('@') {
            return Err(refusal(400, "invalid_grant", "Invalid email or User ID"));
        }
    }
    Ok(Principal { service_account: EMAIL.to_string(), subject })
}

/// The public half of [`PRIVATE_KEY_PEM`] (DER RSAPublicKey), as Google holds it; derived once.
fn public_key() -> &'static [u8] {
    static KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    KEY.get_or_init(|| {
        let body: String = PRIVATE_KEY_PEM.lines().filter(|line| !line.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).expect("the sandbox's key is base64");
        let pair = RsaKeyPair::from_pkcs8(&der).expect("the sandbox's key is an RSA PKCS#8 key");
        ring::signature::KeyPair::public_key(&pair).as_ref().to_vec()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An assertion signed with the sandbox's key, built here by hand (not by the connector's code).
    fn sign(header: serde_json::Value, claims: serde_json::Value) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let body: String = PRIVATE_KEY_PEM.lines().filter(|line| !line.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
        let pair = RsaKeyPair::from_pkcs8(&der).unwrap();
        let mut signature = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{signed}.{}", b64.encode(signature))
    }

    const AUD: &str = "http://127.0.0.1:9/token";

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut claims =
            serde_json::json!({"iss": EMAIL, "scope": ADWORDS_SCOPE, "aud": AUD, "iat": 1000, "exp": 4600});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        claims
    }

    #[test]
    fn assertions_are_checked_as_google_checks_them() {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": KEY_ID});
        let ok = sign(header.clone(), claims(serde_json::json!({})));
        assert_eq!(verify(&ok, AUD, 1010, false), Ok(Principal { service_account: EMAIL.into(), subject: None }));
        let mut tampered = ok.clone();
        tampered.replace_range(tampered.len() - 6..tampered.len() - 4, "AA");
        assert_eq!(verify(&tampered, AUD, 1010, false), Err(BAD_SIGNATURE));
        let other_kid = sign(serde_json::json!({"alg": "RS256", "kid": "old"}), claims(serde_json::json!({})));
        assert_eq!(verify(&other_kid, AUD, 1010, false), Err(BAD_SIGNATURE));
        assert_eq!(
            verify(&ok, "https://oauth2.googleapis.com/token", 1010, false).unwrap_err().description,
            "Invalid JWT: Failed audience check."
        );
        assert_eq!(verify(&ok, AUD, 4600, false), Err(BAD_TIME), "expired");
        let long = sign(header.clone(), claims(serde_json::json!({"exp": 1000 + 7200})));
        assert_eq!(verify(&long, AUD, 1010, false), Err(BAD_TIME), "longer than an hour");
        let stranger = sign(header.clone(), claims(serde_json::json!({"iss": "x@y.iam.gserviceaccount.com"})));
        assert_eq!(verify(&stranger, AUD, 1010, false).unwrap_err().description, "Invalid grant: account not found");
        let scope = sign(header.clone(), claims(serde_json::json!({"scope": "https://www.googleapis.com/auth/drive"})));
        assert_eq!(verify(&scope, AUD, 1010, false).unwrap_err().error, "invalid_scope");
        let delegated = sign(header, claims(serde_json::json!({"sub": "ads@example.com"})));
        assert_eq!(verify(&delegated, AUD, 1010, false).unwrap_err().error, "unauthorized_client");
        assert_eq!(verify(&delegated, AUD, 1010, true).unwrap().subject.as_deref(), Some("ads@example.com"));
    }
}
