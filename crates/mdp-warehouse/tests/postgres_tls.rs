//! Postgres over TLS, against a server that accepts only TLS, with a certificate issued for
//! `localhost` by a CA made for the test (`.ci/run` creates both and starts the server).
//!
//! Environment: `MDP_TEST_POSTGRES_TLS_URL` (e.g. `postgres://postgres@localhost:55433/postgres`,
//! no query string), `MDP_TEST_POSTGRES_TLS_CA` (the CA that signed the server's certificate),
//! `MDP_TEST_POSTGRES_TLS_OTHER_CA` (a CA that signed nothing the server has).
//! `MDP_TEST_REQUIRE_POSTGRES_TLS=1` turns a missing server into a failure.

use mdp_warehouse::rows::{fetch_one, FromRow, Row};
use mdp_warehouse::{connect, Access, ConnectOptions, WarehouseError};

struct Server {
    url: String,
    ca: String,
    other_ca: String,
}

fn server(what: &str) -> Option<Server> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("MDP_TEST_POSTGRES_TLS_URL"), var("MDP_TEST_POSTGRES_TLS_CA"), var("MDP_TEST_POSTGRES_TLS_OTHER_CA")) {
        (Some(url), Some(ca), Some(other_ca)) => Some(Server { url, ca, other_ca }),
        _ if std::env::var("MDP_TEST_REQUIRE_POSTGRES_TLS").as_deref() == Ok("1") => panic!(
            "MDP_TEST_REQUIRE_POSTGRES_TLS=1 but MDP_TEST_POSTGRES_TLS_URL / _CA / _OTHER_CA are not all set, so \
             {what} cannot run (.ci/run sets up the TLS server and these variables)"
        ),
        _ => {
            eprintln!("NOTICE: skipping {what}: no TLS Postgres (MDP_TEST_POSTGRES_TLS_URL; .ci/run sets it up)");
            None
        }
    }
}

impl Server {
    /// The server's URL with `host` instead of the URL's host, and `query` appended.
    fn url(&self, host: Option<&str>, query: &str) -> String {
        let mut url = self.url.clone();
        if let Some(host) = host {
            url = url.replacen("@localhost:", &format!("@{host}:"), 1);
            assert!(url.contains(host), "MDP_TEST_POSTGRES_TLS_URL must name the host `localhost`: {}", self.url);
        }
        if query.is_empty() {
            url
        } else {
            format!("{url}?{query}")
        }
    }
}

/// The error of what must fail (connections and sessions are not `Debug`, so no `unwrap_err`).
trait Refused {
    fn refused(self, why: &str) -> WarehouseError;
}

impl<T> Refused for Result<T, WarehouseError> {
    fn refused(self, why: &str) -> WarehouseError {
        match self {
            Ok(_) => panic!("{why}"),
            Err(e) => e,
        }
    }
}

struct Session {
    ssl: bool,
    version: String,
}

impl FromRow for Session {
    fn from_row(row: &Row<'_>) -> mdp_warehouse::Result<Self> {
        Ok(Session {
            ssl: row.opt_bool("ssl")?.unwrap_or(false),
            version: row.opt_text("version")?.unwrap_or_default(),
        })
    }
}

/// Connect and read whether this session is encrypted.
async fn session(url: &str) -> Result<Session, WarehouseError> {
    let opened = connect(&ConnectOptions::postgres(url, "tls test server"), Access::Read).await?;
    let sql = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
    Ok(fetch_one(opened.warehouse.as_ref(), sql).await?.expect("pg_stat_ssl has this session"))
}

#[tokio::test]
async fn verify_full_trusts_the_servers_ca_and_encrypts() {
    let Some(s) = server("the verify-full test") else { return };
    let url = s.url(None, &format!("sslmode=verify-full&sslrootcert={}", s.ca));
    let opened = connect(&ConnectOptions::postgres(&url, "tls test server"), Access::Read).await.unwrap();
    let described = opened.warehouse.describe();
    assert!(described.contains("sslmode=verify-full") && !described.contains("sslrootcert"), "{described}");
    let got = session(&url).await.unwrap();
    assert!(got.ssl, "the session is encrypted");
    assert!(got.version.starts_with("TLSv1."), "{}", got.version);
}

#[tokio::test]
async fn prefer_by_default_and_require_encrypt_without_checking_the_certificate() {
    let Some(s) = server("the prefer/require test") else { return };
    assert!(session(&s.url(None, "")).await.unwrap().ssl, "libpq's default, prefer, uses TLS when offered");
    assert!(session(&s.url(None, "sslmode=require")).await.unwrap().ssl);
    // require checks no certificate: the host name and the CA do not matter.
    assert!(session(&s.url(Some("127.0.0.1"), "sslmode=require")).await.unwrap().ssl);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_with_the_reason() {
    let Some(s) = server("the unknown-CA test") else { return };
    let e = session(&s.url(None, &format!("sslmode=verify-full&sslrootcert={}", s.other_ca)))
        .await
        .refused("a server whose CA is not trusted must be refused");
    let message = e.to_string();
    assert!(message.contains("UnknownIssuer") || message.contains("certificate"), "{message}");
    assert!(message.contains("sslmode=verify-full"), "the error names the mode: {message}");
    // require with sslrootcert checks the CA too (libpq: as verify-ca).
    let e = session(&s.url(None, &format!("sslmode=require&sslrootcert={}", s.other_ca))).await;
    assert!(e.is_err(), "require + sslrootcert verifies the chain");
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let Some(s) = server("the host-name test") else { return };
    // The certificate names `localhost` only; 127.0.0.1 is the same server under another name.
    let by_ip = |mode: &str| s.url(Some("127.0.0.1"), &format!("sslmode={mode}&sslrootcert={}", s.ca));
    let e = session(&by_ip("verify-full")).await.refused("a name the certificate does not carry is refused");
    assert!(e.to_string().contains("NotValidForName") || e.to_string().contains("name"), "{e}");
    assert!(session(&by_ip("verify-ca")).await.unwrap().ssl, "verify-ca checks the chain, not the name");
}

#[tokio::test]
async fn disable_is_refused_by_a_server_that_requires_tls() {
    let Some(s) = server("the sslmode=disable test") else { return };
    let e = session(&s.url(None, "sslmode=disable")).await.refused("the server accepts only TLS");
    assert!(e.to_string().contains("no encryption") || e.to_string().contains("pg_hba"), "{e}");
}

#[tokio::test]
async fn a_bad_mode_or_a_missing_ca_file_is_a_clear_error_before_connecting() {
    let e = connect(&ConnectOptions::postgres("postgres://localhost:1/x?sslmode=full", "db"), Access::Read)
        .await
        .refused("an unknown sslmode is refused");
    assert!(e.to_string().contains("verify-full"), "the error lists the modes: {e}");
    let e = connect(
        &ConnectOptions::postgres("postgres://localhost:1/x?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem", "db"),
        Access::Read,
    )
    .await
    .refused("a missing CA file is refused");
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}
