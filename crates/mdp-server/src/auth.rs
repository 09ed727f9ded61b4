//! Who may start actions, and which requests the server answers at all.
//!
//! Rules (also in the README):
//! - With a token configured (`--token-file` or `MDP_SERVE_TOKEN`), every action needs it:
//!   `Authorization: Bearer <token>`, or the `token` field of the UI's forms.
//! - Bound beyond loopback without a token, actions are refused (403) and the read-only pages still
//!   work: exposing a button that runs commands to the network without a secret is never right.
//! - On loopback without a token, an action needs the per-process CSRF token that the pages embed
//!   (`csrf` form field or `X-MDP-CSRF` header; API clients read it from `GET /api/session`), so a
//!   web page in the user's browser cannot post to the server behind their back.
//! - A request whose `Origin` differs from its `Host` is refused, and on loopback the `Host` must be
//!   a loopback name (a DNS-rebinding page cannot then read or post as "same origin").

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use mdp_project::Secret;

use crate::AppState;

/// The header API clients send the CSRF token in.
pub const CSRF_HEADER: &str = "x-mdp-csrf";

/// The action rules of one server.
pub struct Policy {
    bind: SocketAddr,
    token: Option<Secret>,
    csrf: String,
}

/// Why an action request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

/// What a request offers as credentials.
#[derive(Debug, Default, Clone, Copy)]
pub struct Offered<'a> {
    /// `token` field of a form.
    pub form_token: Option<&'a str>,
    /// `csrf` field of a form.
    pub form_csrf: Option<&'a str>,
}

/// Compare secrets without an early exit (no timing hint of how much of a guess was right).
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

impl Policy {
    pub fn new(bind: SocketAddr, token: Option<Secret>) -> Policy {
        let csrf = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Policy { bind, token: token.filter(|t| !t.expose_secret().is_empty()), csrf }
    }

    /// Whether the server listens beyond loopback.
    pub fn exposed(&self) -> bool {
        !self.bind.ip().is_loopback()
    }

    pub fn token_required(&self) -> bool {
        self.token.is_some()
    }

    /// Whether any action can be allowed at all.
    pub fn actions_enabled(&self) -> bool {
        self.token.is_some() || !self.exposed()
    }

    /// The per-process CSRF token the pages embed.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Decide whether a request may start an action.
    pub fn check_action(&self, headers: &HeaderMap, offered: Offered<'_>) -> Result<(), Refusal> {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            if origin != "null" && origin_host != host {
                return Err(Refusal {
                    status: StatusCode::FORBIDDEN,
                    message: format!("cross-origin request refused: Origin {origin} is not this server ({host})"),
                });
            }
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        match &self.token {
            Some(token) => {
                let offered_token = bearer.or(offered.form_token).filter(|t| !t.is_empty());
                match offered_token {
                    Some(t) if same(t, token.expose_secret()) => Ok(()),
                    Some(_) => Err(Refusal {
                        status: StatusCode::UNAUTHORIZED,
                        message: "wrong token: actions need the token this server was started with \
                                  (--token-file or MDP_SERVE_TOKEN)"
                            .into(),
                    }),
                    None => Err(Refusal {
                        status: StatusCode::UNAUTHORIZED,
                        message: "this action needs the server's token: send `Authorization: Bearer <token>` \
                                  or enter it in the form (the token is set by --token-file or MDP_SERVE_TOKEN)"
                            .into(),
                    }),
                }
            }
            None if self.exposed() => Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "actions are disabled: this server listens on {} (beyond loopback) without a token; \
                     restart it with --token-file FILE or MDP_SERVE_TOKEN set, or bind 127.0.0.1",
                    self.bind
                ),
            }),
            None => {
                let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).or(offered.form_csrf);
                match csrf {
                    Some(c) if same(c, &self.csrf) => Ok(()),
                    _ => Err(Refusal {
                        status: StatusCode::FORBIDDEN,
                        message: format!(
                            "missing or wrong CSRF token: use the web UI's buttons, or send the header \
                             {CSRF_HEADER} with the `csrf` value of GET /api/session"
                        ),
                    }),
                }
            }
        }
    }

    /// Whether a `Host` header names this server acceptably (loopback binds accept loopback names only).
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.exposed() {
            return true;
        }
        let Some(host) = host else { return false };
        let name = if let Some(rest) = host.strip_prefix('[') {
            rest.split(']').next().unwrap_or("")
        } else {
            host.rsplit_once(':').map_or(host, |(name, port)| if port.parse::<u16>().is_ok() { name } else { host })
        };
        name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// Middleware: refuse requests addressed to an unexpected host name (DNS rebinding).
pub async fn host_guard(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if !state.policy.host_allowed(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this server listens on loopback and answers requests for localhost, 127.0.0.1 or [::1] only",
        )
            .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn policy(bind: &str, token: Option<&str>) -> Policy {
        Policy::new(bind.parse().unwrap(), token.map(|t| Secret::new(t.to_string())))
    }

    #[test]
    fn exposed_without_token_refuses_every_action() {
        let p = policy("0.0.0.0:8080", None);
        assert!(p.exposed() && !p.actions_enabled());
        let csrf = p.csrf().to_string();
        let refusal = p.check_action(&headers(&[("x-mdp-csrf", &csrf)]), Offered::default()).unwrap_err();
        assert_eq!(refusal.status, StatusCode::FORBIDDEN);
        assert!(refusal.message.contains("without a token"), "{}", refusal.message);
    }

    #[test]
    fn exposed_with_token_needs_the_token_by_header_or_form() {
        let p = policy("0.0.0.0:8080", Some("s3cret-token"));
        assert!(p.actions_enabled());
        let none = p.check_action(&headers(&[]), Offered::default()).unwrap_err();
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        let wrong = p.check_action(&headers(&[("authorization", "Bearer nope")]), Offered::default()).unwrap_err();
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert!(!wrong.message.contains("s3cret"), "a refusal never echoes the token");
        // The CSRF token alone is not enough once a token is configured.
        let csrf = p.csrf().to_string();
        assert!(p.check_action(&headers(&[("x-mdp-csrf", &csrf)]), Offered::default()).is_err());
        assert!(p.check_action(&headers(&[("authorization", "Bearer s3cret-token")]), Offered::default()).is_ok());
        let form = Offered { form_token: Some("s3cret-token"), form_csrf: None };
        assert!(p.check_action(&headers(&[]), form).is_ok());
    }

    #[test]
    fn loopback_without_token_needs_the_csrf_token() {
        let p = policy("127.0.0.1:8080", None);
        assert!(!p.exposed() && p.actions_enabled());
        assert_eq!(p.check_action(&headers(&[]), Offered::default()).unwrap_err().status, StatusCode::FORBIDDEN);
        let wrong = Offered { form_token: None, form_csrf: Some("guess") };
        assert!(p.check_action(&headers(&[]), wrong).is_err());
        let csrf = p.csrf().to_string();
        assert!(p.check_action(&headers(&[]), Offered { form_token: None, form_csrf: Some(&csrf) }).is_ok());
        assert!(p.check_action(&headers(&[("x-mdp-csrf", &csrf)]), Offered::default()).is_ok());
        // Another process has another CSRF token.
        assert_ne!(policy("127.0.0.1:8080", None).csrf(), csrf);
    }

    #[test]
    fn cross_origin_posts_are_refused_even_with_the_token() {
        let p = policy("0.0.0.0:8080", Some("tok"));
        let h =
            headers(&[("host", "10.0.0.5:8080"), ("origin", "http://evil.example"), ("authorization", "Bearer tok")]);
        let refusal = p.check_action(&h, Offered::default()).unwrap_err();
        assert!(refusal.message.contains("cross-origin"), "{}", refusal.message);
        let same_origin =
            headers(&[("host", "10.0.0.5:8080"), ("origin", "http://10.0.0.5:8080"), ("authorization", "Bearer tok")]);
        assert!(p.check_action(&same_origin, Offered::default()).is_ok());
    }

    #[test]
    fn loopback_answers_loopback_host_names_only() {
        let p = policy("127.0.0.1:8080", None);
        for ok in ["localhost:8080", "127.0.0.1:8080", "127.0.0.1", "[::1]:8080", "LOCALHOST"] {
            assert!(p.host_allowed(Some(ok)), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8080", "10.0.0.5:8080", ""] {
            assert!(!p.host_allowed(Some(bad)), "{bad}");
        }
        assert!(!p.host_allowed(None));
        assert!(policy("0.0.0.0:8080", Some("t")).host_allowed(Some("dashboard.internal:8080")));
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd") && !same("abc", "ab") && !same("", "a"));
    }
}
