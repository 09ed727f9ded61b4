//! TLS for the Postgres adapter: libpq's `sslmode` and `sslrootcert`, over rustls.
//!
//! tokio-postgres knows `sslmode=disable|prefer|require` and no certificate settings, so mdp takes
//! libpq's TLS parameters out of the connection string ([`split`]), hands tokio-postgres the mode
//! it knows, and verifies the server's certificate itself as libpq does:
//!
//! | `sslmode`       | encrypted                     | certificate checked                            |
//! |-----------------|-------------------------------|------------------------------------------------|
//! | `disable`       | never                         | -                                              |
//! | `allow`, `prefer` (default) | when the server offers it | no                                  |
//! | `require`       | always                        | no; with `sslrootcert`, as `verify-ca` (libpq) |
//! | `verify-ca`     | always                        | signed by the CA in `sslrootcert`              |
//! | `verify-full`   | always                        | as `verify-ca`, and issued for the host name   |
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the public web CAs (Mozilla's
//! list, built in); for `verify-*` it defaults to `~/.postgresql/root.crt` as in libpq.
//! `allow` is treated as `prefer` (tokio-postgres cannot try plain text first). Client
//! certificates (`sslcert`, `sslkey`) are not supported yet and are refused with a clear error
//! rather than ignored.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?} is not a mode; use disable, allow, prefer, require, verify-ca or verify-full"
                ))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The mode tokio-postgres negotiates with.
    fn negotiation(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow | SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The TLS settings of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// `sslrootcert` as written: a file, or `system`.
    pub root_cert: Option<String>,
}

/// A connection string without libpq's TLS parameters (for tokio-postgres), and those settings.
pub fn split(connection_string: &str) -> Result<(String, TlsSettings), String> {
    let mut settings = TlsSettings { mode: SslMode::Prefer, root_cert: None };
    let mut take = |key: &str, value: &str| -> Result<bool, String> {
        match key {
            "sslmode" => settings.mode = SslMode::parse(value)?,
            "sslrootcert" => settings.root_cert = Some(value.to_string()),
            "sslcert" | "sslkey" | "sslpassword" | "sslcrl" | "sslcrldir" | "sslsni" | "sslcompression" => {
                return Err(format!(
                    "the connection parameter {key} is not supported yet (mdp supports sslmode and sslrootcert); \
                     remove it, or connect with a password over sslmode=verify-full"
                ))
            }
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest = if let Some((base, query)) = url_parts(connection_string) {
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            if !take(&decode(key), &decode(value))? {
                kept.push(pair.to_string());
            }
        }
        kept.push(format!("sslmode={}", settings.mode.negotiation()));
        format!("{base}?{}", kept.join("&"))
    } else {
        let mut kept = Vec::new();
        for (key, value) in key_values(connection_string)? {
            if !take(&key, &value)? {
                kept.push(format!("{key}='{}'", value.replace('\\', "\\\\").replace('\'', "\\'")));
            }
        }
        kept.push(format!("sslmode={}", settings.mode.negotiation()));
        kept.join(" ")
    };
    Ok((rest, settings))
}

/// `(before '?', query)` of a `postgres://` / `postgresql://` URL.
fn url_parts(s: &str) -> Option<(&str, &str)> {
    if !(s.starts_with("postgres://") || s.starts_with("postgresql://")) {
        return None;
    }
    Some(s.split_once('?').unwrap_or((s, "")))
}

/// libpq's `key = value` pairs; a value may be single-quoted with `\'` and `\\` escapes.
fn key_values(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("the connection string has {key:?} without `= value`"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err(format!("the value of {key:?} in the connection string has no closing quote")),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// A URL-safe rendering of a value, for tests and messages that rebuild URLs.
#[cfg(test)]
fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls connector for these settings: what it trusts and what it checks.
pub fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    let verify = match (settings.mode, &settings.root_cert) {
        (SslMode::VerifyFull, _) => Verify::Full,
        (SslMode::VerifyCa, _) | (SslMode::Require, Some(_)) => Verify::Ca,
        _ => Verify::Nothing,
    };
    let config = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptOnly { provider }))
            .with_no_client_auth(),
        Verify::Ca | Verify::Full => {
            let roots = Arc::new(root_store(settings, libpq_default_root())?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| format!("cannot use the CA certificates of sslrootcert: {e}"))?;
            if verify == Verify::Full {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { inner: webpki }))
                    .with_no_client_auth()
            }
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verify {
    Nothing,
    Ca,
    Full,
}

/// libpq's default CA file, `~/.postgresql/root.crt`, when it exists.
fn libpq_default_root() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".postgresql/root.crt")).filter(|p| p.exists())
}

/// The CA certificates to trust: `sslrootcert`'s file, the public CAs for `system`, or libpq's
/// default file (`default_root`).
fn root_store(settings: &TlsSettings, default_root: Option<PathBuf>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    let path = match settings.root_cert.as_deref() {
        Some("system") => {
            store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            return Ok(store);
        }
        Some(path) => PathBuf::from(path),
        None => match default_root {
            Some(path) => path,
            None => {
                return Err(format!(
                    "sslmode={} checks the server's certificate, so it needs the CA that signed it: set \
                         sslrootcert=/path/to/ca.pem in the connection string (or sslrootcert=system for a \
                         server with a certificate from a public CA)",
                    settings.mode
                ))
            }
        },
    };
    let shown = path.display();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("cannot read sslrootcert {shown}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("sslrootcert {shown} is not a PEM file of certificates: {e}"))?;
    if certs.is_empty() {
        return Err(format!("sslrootcert {shown} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)"));
    }
    for cert in certs {
        store.add(cert).map_err(|e| format!("sslrootcert {shown}: a certificate cannot be used as a CA: {e}"))?;
    }
    Ok(store)
}

/// `prefer` / `require`: encrypted, any certificate (libpq's behaviour). The handshake's
/// signatures are still checked, so the session keys belong to the certificate presented.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted CA; the host name is not checked. webpki checks
/// the chain before the name, so a name mismatch means the chain passed.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(mode: SslMode, root: Option<&str>) -> TlsSettings {
        TlsSettings { mode, root_cert: root.map(String::from) }
    }

    #[test]
    fn urls_lose_the_tls_parameters_and_keep_the_rest() {
        let (rest, tls) = split(&format!(
            "postgresql://u:p%40ss@db.example.com:6432/analytics?application_name=mdp&sslmode=verify-full&sslrootcert={}",
            encode("/etc/ssl/my ca.pem")
        ))
        .unwrap();
        assert_eq!(rest, "postgresql://u:p%40ss@db.example.com:6432/analytics?application_name=mdp&sslmode=require");
        assert_eq!(tls, settings(SslMode::VerifyFull, Some("/etc/ssl/my ca.pem")));

        let (rest, tls) = split("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(rest, "postgres://postgres@127.0.0.1:5432/test?sslmode=prefer", "libpq's default is prefer");
        assert_eq!(tls, settings(SslMode::Prefer, None));
    }

    #[test]
    fn key_value_strings_keep_quoted_values() {
        let (rest, tls) =
            split("host=db port = 5432 password='a \\'quoted\\' p\\\\w' sslmode=verify-ca sslrootcert='/a b/ca.pem'")
                .unwrap();
        assert_eq!(tls, settings(SslMode::VerifyCa, Some("/a b/ca.pem")));
        assert_eq!(rest, "host='db' port='5432' password='a \\'quoted\\' p\\\\w' sslmode=require");
        let parsed: tokio_postgres::Config = rest.parse().expect("tokio-postgres reads what split leaves");
        assert_eq!(parsed.get_password(), Some(&b"a 'quoted' p\\w"[..]));
    }

    #[test]
    fn bad_modes_and_client_certificates_are_refused_by_name() {
        let e = split("postgres://db/x?sslmode=verify_full").unwrap_err();
        assert!(e.contains("verify_full") && e.contains("verify-full"), "{e}");
        let e = split("host=db sslcert=/c.pem").unwrap_err();
        assert!(e.contains("sslcert") && e.contains("not supported"), "{e}");
        let e = split("host=db password='open").unwrap_err();
        assert!(e.contains("no closing quote"), "{e}");
    }

    #[test]
    fn verify_modes_need_a_ca() {
        let e = root_store(&settings(SslMode::VerifyFull, None), None).unwrap_err();
        assert!(e.contains("sslrootcert=/path/to/ca.pem"), "{e}");
        let e = root_store(&settings(SslMode::VerifyCa, Some("/nonexistent/ca.pem")), None).unwrap_err();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let e = root_store(&settings(SslMode::VerifyCa, Some(junk.to_str().unwrap())), None).unwrap_err();
        assert!(e.contains("no certificate"), "{e}");
        assert!(!root_store(&settings(SslMode::VerifyFull, Some("system")), None).unwrap().is_empty());
        assert!(connector(&settings(SslMode::Require, None)).is_ok(), "require alone checks no certificate");
    }
}
