//! RS256 JSON Web Tokens signed with an RSA key read from PEM: the one home of the signing that
//! Google's service-account grant (connectors, BigQuery) and Snowflake's key-pair login share.
//!
//! A token is `base64url(header) . base64url(claims) . base64url(signature)`, the signature ring's
//! RSASSA-PKCS1-v1_5 with SHA-256 (the TLS stack's own crypto: no new C build). Pure computation: the
//! caller supplies the claims, including the times, and posts the token wherever it goes. Nothing here
//! prints a key: errors say what kind of text was found, never its content.

use base64::Engine;
use ring::signature::{KeyPair, RsaKeyPair, RSA_PKCS1_SHA256};

/// An RSA private key, from a PEM block: PKCS#8 (`BEGIN PRIVATE KEY`, what Google and
/// `openssl genpkey` write) or PKCS#1 (`BEGIN RSA PRIVATE KEY`, what `openssl genrsa` wrote before 3.0).
pub struct RsaKey {
    key: RsaKeyPair,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey").field("bits", &(self.key.public().modulus_len() * 8)).finish_non_exhaustive()
    }
}

impl RsaKey {
    /// Read the first PEM block of `pem`. An encrypted key (`BEGIN ENCRYPTED PRIVATE KEY`) is refused
    /// with what to do: decrypt it with `openssl pkcs8` first.
    pub fn from_pem(pem: &str) -> Result<RsaKey, String> {
        let (label, der) = pem_block(pem).ok_or("is not a PEM block (-----BEGIN PRIVATE KEY-----)")?;
        let parsed = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der),
            "ENCRYPTED PRIVATE KEY" => {
                return Err("is an encrypted private key: write it unencrypted with `openssl pkcs8 -in key.p8 -out \
                            key.pem` and keep that file private"
                    .into())
            }
            other => return Err(format!("is a PEM block of kind {other:?}, not an RSA private key (PRIVATE KEY)")),
        };
        let key = parsed.map_err(|e| format!("is not a usable RSA private key ({e})"))?;
        Ok(RsaKey { key })
    }

    /// A signed token of `header` (its `alg` is set to RS256 and `typ` to JWT) and `claims`.
    pub fn sign(&self, mut header: serde_json::Value, claims: &serde_json::Value) -> Result<String, String> {
        header["alg"] = "RS256".into();
        header["typ"] = "JWT".into();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signed = format!("{}.{}", b64.encode(header.to_string()), b64.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|_| "could not sign the token with the key".to_string())?;
        Ok(format!("{signed}.{}", b64.encode(signature)))
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER (what ring verifies with).
    pub fn public_key_der(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The public key as X.509 `SubjectPublicKeyInfo` DER (what `openssl pkey -pubout -outform DER`
    /// writes, and what Snowflake fingerprints).
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        // SEQUENCE { SEQUENCE { OID 1.2.840.113549.1.1.1 (rsaEncryption), NULL }, BIT STRING { 0, RSAPublicKey } }
        const ALGORITHM: &[u8] =
            &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
        let mut bits = vec![0u8];
        bits.extend_from_slice(self.public_key_der());
        let mut body = ALGORITHM.to_vec();
        body.extend(der_element(0x03, &bits));
        der_element(0x30, &body)
    }

    /// `SHA256:` and the base64 of the SHA-256 of the SubjectPublicKeyInfo: Snowflake's
    /// `RSA_PUBLIC_KEY_FP` of a user, and the issuer suffix of its key-pair tokens.
    pub fn public_key_fingerprint(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.public_key_spki_der());
        format!("SHA256:{}", base64::engine::general_purpose::STANDARD.encode(digest.as_ref()))
    }
}

/// A DER element: its tag, its definite length, its content.
fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
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
    const PEM: &str = include_str!("../../mdp-sandbox/keys/service_account.pem");

    #[test]
    fn a_token_is_a_verifiable_rs256_jwt() {
        let key = RsaKey::from_pem(PEM).unwrap();
        let jwt = key.sign(serde_json::json!({"kid": "k1"}), &serde_json::json!({"iss": "me", "iat": 1})).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "k1"}));
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key_der().to_vec());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &b64.decode(parts[2]).unwrap()).expect("the signature verifies");
        assert!(public.verify(b"x.y", &b64.decode(parts[2]).unwrap()).is_err(), "and binds the content");
    }

    #[test]
    fn the_fingerprint_is_over_the_subject_public_key_info() {
        let key = RsaKey::from_pem(PEM).unwrap();
        let spki = key.public_key_spki_der();
        // A 2048-bit key's SPKI is 294 bytes: 30 82 01 22, the rsaEncryption algorithm, a bit string.
        assert_eq!(spki.len(), 294);
        assert_eq!(&spki[..4], &[0x30, 0x82, 0x01, 0x22]);
        assert_eq!(
            &spki[4..19],
            &[0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]
        );
        assert!(spki.ends_with(key.public_key_der()));
        // `openssl pkey -in key.pem -pubout -outform DER | openssl dgst -sha256 -binary | base64`, as
        // Snowflake's docs compute a user's RSA_PUBLIC_KEY_FP.
        assert_eq!(key.public_key_fingerprint(), "SHA256:5mEn7hwx33VYndRlKb718RXKRzDieGMlKK/T0yMelWc=");
    }

    #[test]
    fn bad_keys_say_what_they_are() {
        assert!(RsaKey::from_pem("abc").unwrap_err().contains("not a PEM block"));
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
        assert!(RsaKey::from_pem(not_a_key).unwrap_err().contains("not a usable RSA private key"));
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(RsaKey::from_pem(encrypted).unwrap_err().contains("openssl pkcs8"));
        assert!(!format!("{:?}", RsaKey::from_pem(PEM).unwrap()).contains("PRIVATE"));
    }
}
