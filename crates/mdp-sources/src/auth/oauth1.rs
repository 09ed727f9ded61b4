//! OAuth 1.0a request signing (RFC 5849, HMAC-SHA1), as X's Ads API requires: every request carries an
//! `Authorization: OAuth …` header signed over its method, URL and query parameters with the app's
//! consumer secret and the user's token secret. Nothing is exchanged or renewed: the four credentials are
//! long-lived; the signature is made per request, at send time, with a fresh nonce and timestamp.

use base64::Engine;
use ring::hmac;

use crate::source::Credential;

/// The four credentials of a user-context OAuth 1.0a app.
#[derive(Clone)]
pub struct OAuth1Keys {
    pub consumer_key: Credential,
    pub consumer_secret: Credential,
    pub token: Credential,
    pub token_secret: Credential,
}

impl std::fmt::Debug for OAuth1Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OAuth1Keys(***)")
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters, as OAuth 1.0a requires.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The signature of a request: HMAC-SHA1 over `METHOD&url&params` (the URL without its query, the
/// parameters encoded, sorted and joined), keyed with both secrets; base64.
pub(crate) fn signature(
    method: &str,
    url: &reqwest::Url,
    params: &[(String, String)],
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    let mut base_url = url.clone();
    base_url.set_query(None);
    base_url.set_fragment(None);
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (encode(&k), encode(&v)))
        .chain(params.iter().map(|(k, v)| (encode(k), encode(v))))
        .collect();
    pairs.sort();
    let joined: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let base = format!("{}&{}&{}", method.to_ascii_uppercase(), encode(base_url.as_str()), encode(&joined.join("&")));
    let key = hmac::Key::new(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}&{}", encode(consumer_secret), encode(token_secret)).as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(hmac::sign(&key, base.as_bytes()).as_ref())
}

impl OAuth1Keys {
    /// The `Authorization` header of a request to `url` (whose own query string counts) with `query`
    /// parameters added, signed with `nonce` and `timestamp` (seconds since the epoch).
    pub(crate) fn header(
        &self,
        method: &str,
        url: &reqwest::Url,
        query: &[(String, String)],
        nonce: &str,
        timestamp: u64,
    ) -> String {
        let mut oauth = vec![
            ("oauth_consumer_key".to_string(), self.consumer_key.expose().to_string()),
            ("oauth_nonce".to_string(), nonce.to_string()),
            ("oauth_signature_method".to_string(), "HMAC-SHA1".to_string()),
            ("oauth_timestamp".to_string(), timestamp.to_string()),
            ("oauth_token".to_string(), self.token.expose().to_string()),
            ("oauth_version".to_string(), "1.0".to_string()),
        ];
        let params: Vec<(String, String)> = oauth.iter().cloned().chain(query.iter().cloned()).collect();
        let signed = signature(method, url, &params, self.consumer_secret.expose(), self.token_secret.expose());
        oauth.push(("oauth_signature".to_string(), signed));
        oauth.sort();
        let fields: Vec<String> = oauth.iter().map(|(k, v)| format!("{k}=\"{}\"", encode(v))).collect();
        format!("OAuth {}", fields.join(", "))
    }

    /// The header with a fresh nonce (16 random bytes, hex) and the current time.
    pub(crate) fn sign(&self, method: &str, url: &reqwest::Url, query: &[(String, String)]) -> String {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; 16];
        ring::rand::SystemRandom::new().fill(&mut bytes).expect("the system's random source");
        let nonce: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.header(method, url, query, &nonce, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X's own worked example ("Creating a signature", developer.x.com), whose signature its docs give.
    fn example() -> (OAuth1Keys, reqwest::Url, Vec<(String, String)>) {
        let keys = OAuth1Keys {
            consumer_key: Credential::new("xvz1evFS4wEEPTGEFPHBog"),
            consumer_secret: Credential::new("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"),
            token: Credential::new("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
            token_secret: Credential::new("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"),
        };
        let url =
            reqwest::Url::parse("https://api.twitter.com/1.1/statuses/update.json?include_entities=true").unwrap();
        let query = vec![("status".to_string(), "Hello Ladies + Gentlemen, a signed OAuth request!".to_string())];
        (keys, url, query)
    }

    #[test]
    fn the_documented_example_signs_to_its_documented_signature() {
        let (keys, url, query) = example();
        let header = keys.header("post", &url, &query, "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg", 1_318_622_958);
        assert!(header.starts_with("OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\", oauth_nonce="), "{header}");
        assert!(header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""), "{header}");
        assert!(header.contains("oauth_timestamp=\"1318622958\"") && header.contains("oauth_version=\"1.0\""));
        // The secrets sign; they are never sent.
        assert!(!header.contains("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw") && !header.contains("LswwdoUa"));
        assert_eq!(format!("{keys:?}"), "OAuth1Keys(***)");
    }

    #[test]
    fn every_request_gets_its_own_nonce_and_a_changed_parameter_another_signature() {
        let (keys, url, query) = example();
        assert_ne!(keys.sign("GET", &url, &query), keys.sign("GET", &url, &query));
        let a = keys.header("GET", &url, &query, "n", 1);
        let b = keys.header("GET", &url, &[("status".into(), "another".into())], "n", 1);
        assert_ne!(a, b);
        assert_eq!(encode("a b+c/~é"), "a%20b%2Bc%2F~%C3%A9");
    }
}
