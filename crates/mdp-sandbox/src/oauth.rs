//! The platforms' OAuth 2.0 endpoints: consent (auto-approved, for `mdp auth`), authorization-code and
//! refresh-token grants, with short-lived access tokens, expiry, revocation and refresh-token rotation.
//!
//! - Google: `GET /o/oauth2/v2/auth` (accounts.google.com), `POST /token` (oauth2.googleapis.com).
//!   Answers `{"access_token","expires_in","scope","token_type":"Bearer"}`; a refresh token only on the
//!   code grant (and on refreshes when rotation is on). Errors `{"error","error_description"}`:
//!   `invalid_grant` (400) for an expired, revoked or foreign refresh token or code. The same endpoint
//!   takes a service account's signed JWT ([`crate::service_account`]).
//! - LinkedIn: `GET /oauth/v2/authorization`, `POST /oauth/v2/accessToken` (www.linkedin.com). Answers
//!   also carry `refresh_token` and `refresh_token_expires_in` on every refresh; a bad refresh token is
//!   `invalid_request` (400) "…refresh token is invalid, expired or revoked".
//!
//! Access tokens this module issues start with `sbx-`; the platform guards refuse them once expired
//! (in each platform's own error shape). Other non-empty tokens are accepted as long-lived ones, so the
//! demo runs with fixed tokens.
//!
//! Control (`/_sandbox/oauth…`, not part of any platform): `POST /_sandbox/oauth` sets
//! `{"access_token_ttl_secs", "rotate_refresh_tokens"}`; `POST /_sandbox/oauth/grant`
//! `{"platform","client_id"}` issues a refresh token as a completed consent would;
//! `POST /_sandbox/oauth/revoke` `{"refresh_token"}` (or `{}`: all) revokes; `GET /_sandbox/oauth` counts;
//! `GET /_sandbox/google/service_account_key` is the key file of the sandbox's service account.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use mdp_core::Platform;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Sandbox;

/// The platforms with a refresh grant, their token lifetime defaults and endpoint paths.
const GOOGLE_TOKEN: &str = "/token";
const GOOGLE_CONSENT: &str = "/o/oauth2/v2/auth";
const LINKEDIN_TOKEN: &str = "/oauth/v2/accessToken";
const LINKEDIN_CONSENT: &str = "/oauth/v2/authorization";

/// What the sandbox's token endpoints do.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct OAuthSettings {
    /// Lifetime of issued access tokens (Google: 3,599 s; LinkedIn: 60 days).
    pub access_token_ttl_secs: u64,
    /// Issue a new refresh token on every refresh and revoke the old one (as Microsoft does).
    pub rotate_refresh_tokens: bool,
    /// Meta's `debug_token`: days until the access token expires (`None`: a system-user token that
    /// never does; 0: expired).
    #[serde(default)]
    pub meta_token_expires_in_days: Option<u32>,
    /// Google: a Workspace admin granted the service account domain-wide delegation of the adwords
    /// scope, so it may act as a user (`sub`). Off by default, as for a new service account.
    #[serde(default)]
    pub domain_wide_delegation: bool,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        OAuthSettings {
            access_token_ttl_secs: 3599,
            rotate_refresh_tokens: false,
            meta_token_expires_in_days: None,
            domain_wide_delegation: false,
        }
    }
}

/// What a platform guard makes of a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// Issued here and still valid.
    Valid,
    /// Not issued here: a long-lived token the sandbox accepts (the demo's fixed tokens).
    Fixed,
    /// Issued here and expired (or issued for another platform).
    Expired,
}

#[derive(Debug)]
struct RefreshGrant {
    platform: Platform,
    client_id: String,
    revoked: bool,
}

#[derive(Debug)]
struct Code {
    platform: Platform,
    client_id: String,
    redirect_uri: String,
    /// PKCE: the S256 challenge the consent request carried; the exchange must bring its verifier.
    challenge: Option<String>,
}

/// The token server's state, shared by every platform.
#[derive(Debug, Default)]
pub struct OAuthServer {
    settings: Mutex<OAuthSettings>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
    access_tokens: Mutex<HashMap<String, (Platform, Instant)>>,
    codes: Mutex<HashMap<String, Code>>,
    serial: AtomicU64,
    /// Access tokens issued.
    issued: AtomicU64,
    /// Requests refused because their token had expired.
    refused_expired: AtomicU64,
    /// Access tokens issued to the service account.
    service_account_grants: AtomicU64,
}

impl OAuthServer {
    /// The current settings.
    pub fn settings(&self) -> OAuthSettings {
        *self.settings.lock().expect("oauth lock")
    }

    pub fn set(&self, settings: OAuthSettings) {
        *self.settings.lock().expect("oauth lock") = settings;
    }

    /// A refresh token for `client_id`, as a completed consent issues.
    pub fn grant(&self, platform: Platform, client_id: &str) -> String {
        let token = self.mint(platform, "rt");
        self.refresh_tokens
            .lock()
            .expect("oauth lock")
            .insert(token.clone(), RefreshGrant { platform, client_id: client_id.to_string(), revoked: false });
        token
    }

    /// Revoke one refresh token (or all of them with `None`); returns how many were revoked.
    pub fn revoke(&self, refresh_token: Option<&str>) -> usize {
        let mut grants = self.refresh_tokens.lock().expect("oauth lock");
        let mut revoked = 0;
        for (token, grant) in grants.iter_mut() {
            if refresh_token.is_none_or(|t| t == token) && !grant.revoked {
                grant.revoked = true;
                revoked += 1;
            }
        }
        revoked
    }

    /// Whether `refresh_token` may still be used.
    pub fn refresh_token_valid(&self, refresh_token: &str) -> bool {
        self.refresh_tokens.lock().expect("oauth lock").get(refresh_token).is_some_and(|grant| !grant.revoked)
    }

    /// Access tokens issued so far.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    /// Access tokens issued to the service account.
    pub fn service_account_grants(&self) -> u64 {
        self.service_account_grants.load(Ordering::Relaxed)
    }

    /// Requests refused because their access token had expired.
    pub fn refused_expired(&self) -> u64 {
        self.refused_expired.load(Ordering::SeqCst)
    }

    /// What a guard of `platform` makes of `token`.
    pub fn check(&self, platform: Platform, token: &str) -> TokenCheck {
        if !token.starts_with("sbx-") {
            return TokenCheck::Fixed;
        }
        let valid = self
            .access_tokens
            .lock()
            .expect("oauth lock")
            .get(token)
            .is_some_and(|(issued_for, expires)| *issued_for == platform && Instant::now() < *expires);
        if valid {
            TokenCheck::Valid
        } else {
            self.refused_expired.fetch_add(1, Ordering::SeqCst);
            TokenCheck::Expired
        }
    }

    fn mint(&self, platform: Platform, kind: &str) -> String {
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let tag = &platform.as_str()[..2];
        format!("sbx-{tag}-{kind}-{serial:06}-{nanos:08x}")
    }

    fn issue_access(&self, platform: Platform) -> (String, u64) {
        let ttl = self.settings.lock().expect("oauth lock").access_token_ttl_secs;
        let token = self.mint(platform, "at");
        self.access_tokens
            .lock()
            .expect("oauth lock")
            .insert(token.clone(), (platform, Instant::now() + Duration::from_secs(ttl)));
        self.issued.fetch_add(1, Ordering::SeqCst);
        (token, ttl)
    }

    /// A refresh grant: a new access token, and the refresh token to use next (rotated or the same).
    fn refresh(&self, platform: Platform, refresh_token: &str, client_id: &str) -> Result<(String, u64, String), ()> {
        let rotate = self.settings.lock().expect("oauth lock").rotate_refresh_tokens;
        {
            let mut grants = self.refresh_tokens.lock().expect("oauth lock");
            let grant = grants.get_mut(refresh_token).ok_or(())?;
            if grant.revoked || grant.platform != platform || grant.client_id != client_id {
                return Err(());
            }
            if rotate {
                grant.revoked = true;
            }
        }
        let next = if rotate { self.grant(platform, client_id) } else { refresh_token.to_string() };
        let (access, ttl) = self.issue_access(platform);
        Ok((access, ttl, next))
    }

    fn code(&self, platform: Platform, client_id: &str, redirect_uri: &str, challenge: Option<&str>) -> String {
        let code = self.mint(platform, "code");
        self.codes.lock().expect("oauth lock").insert(
            code.clone(),
            Code {
                platform,
                client_id: client_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                challenge: challenge.map(str::to_string),
            },
        );
        code
    }

    /// A code grant: single use, for the client and redirect it was issued to, and with the verifier of
    /// its PKCE challenge when it had one.
    fn redeem(
        &self,
        platform: Platform,
        code: &str,
        client_id: &str,
        redirect_uri: &str,
        verifier: Option<&str>,
    ) -> Result<(), &'static str> {
        let issued = self.codes.lock().expect("oauth lock").remove(code).ok_or("Malformed auth code.")?;
        if issued.platform != platform || issued.client_id != client_id || issued.redirect_uri != redirect_uri {
            return Err("Malformed auth code.");
        }
        match (issued.challenge.as_deref(), verifier) {
            (None, _) => Ok(()),
            (Some(_), None) => Err("Missing code verifier."),
            (Some(challenge), Some(verifier)) if s256(verifier) == challenge => Ok(()),
            (Some(_), Some(_)) => Err("Invalid code verifier."),
        }
    }
}

/// RFC 7636's S256 transform: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))).
fn s256(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
        .route(GOOGLE_TOKEN, post(google_token))
        .route(GOOGLE_CONSENT, get(google_consent))
        .route(LINKEDIN_TOKEN, post(linkedin_token))
        .route(LINKEDIN_CONSENT, get(linkedin_consent))
        .route(REDDIT_TOKEN, post(reddit_token))
        .route(AMAZON_TOKEN, post(amazon_token))
        .route(SNAPCHAT_TOKEN, post(snapchat_token))
        .route(PINTEREST_TOKEN, post(pinterest_token))
        .route(MICROSOFT_TOKEN, post(microsoft_token))
        .route("/_sandbox/oauth", get(stats).post(configure))
        .route("/_sandbox/oauth/grant", post(control_grant))
        .route("/_sandbox/oauth/revoke", post(control_revoke))
        .route("/_sandbox/google/service_account_key", get(service_account_key))
}

/// This sandbox's address as the client reached it (`http://host:port`).
fn origin(headers: &HeaderMap) -> String {
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

async fn service_account_key(headers: HeaderMap) -> Json<serde_json::Value> {
    Json(crate::service_account::key_file(&format!("{}{GOOGLE_TOKEN}", origin(&headers))))
}

/// A token request's form fields.
#[derive(Debug, Default, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    code_verifier: Option<String>,
    assertion: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

/// The checks both platforms' token endpoints share; `Err` is the answer to send.
fn read_form(body: &str) -> Result<(TokenForm, String), Response> {
    let form: TokenForm = serde_urlencoded::from_str(body).map_err(|_| {
        oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be application/x-www-form-urlencoded")
    })?;
    let client_id = form.client_id.clone().filter(|c| !c.is_empty());
    let secret = form.client_secret.as_deref().filter(|c| !c.is_empty());
    match (client_id, secret) {
        (Some(client_id), Some(_)) => Ok((form, client_id)),
        _ => Err(oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed")),
    }
}

async fn google_token(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: String) -> Response {
    let platform = Platform::GoogleAds;
    if let Ok(TokenForm { grant_type: Some(grant), assertion, .. }) = serde_urlencoded::from_str::<TokenForm>(&body) {
        if grant == crate::service_account::JWT_BEARER {
            return service_account_grant(&sandbox, &headers, assertion.as_deref().unwrap_or(""));
        }
    }
    let (form, client_id) = match read_form(&body) {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    let scope = "https://www.googleapis.com/auth/adwords";
    match form.grant_type.as_deref() {
        Some("refresh_token") => {
            let Some(refresh_token) = form.refresh_token.as_deref() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                );
            };
            match sandbox.oauth.refresh(platform, refresh_token, &client_id) {
                Ok((access, ttl, next)) => {
                    let mut answer =
                        json!({"access_token": access, "expires_in": ttl, "scope": scope, "token_type": "Bearer"});
                    if next != refresh_token {
                        answer["refresh_token"] = next.into();
                    }
                    Json(answer).into_response()
                }
                Err(()) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked."),
            }
        }
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri)) = (form.code.as_deref(), form.redirect_uri.as_deref()) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: code");
            };
            if let Err(why) =
                sandbox.oauth.redeem(platform, code, &client_id, redirect_uri, form.code_verifier.as_deref())
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
            }
            let (access, ttl) = sandbox.oauth.issue_access(platform);
            let refresh = sandbox.oauth.grant(platform, &client_id);
            Json(json!({"access_token": access, "expires_in": ttl, "refresh_token": refresh, "scope": scope, "token_type": "Bearer"}))
                .into_response()
        }
        other => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {}", other.unwrap_or("")),
        ),
    }
}

/// The JWT-bearer grant of a service account: an access token, no refresh token.
fn service_account_grant(sandbox: &Sandbox, headers: &HeaderMap, assertion: &str) -> Response {
    let audience = format!("{}{GOOGLE_TOKEN}", origin(headers));
    let delegation = sandbox.oauth.settings().domain_wide_delegation;
    match crate::service_account::verify(assertion, &audience, chrono::Utc::now().timestamp(), delegation) {
        Ok(_principal) => {
            sandbox.oauth.service_account_grants.fetch_add(1, Ordering::Relaxed);
            let (access, ttl) = sandbox.oauth.issue_access(Platform::GoogleAds);
            Json(json!({"access_token": access, "expires_in": ttl, "token_type": "Bearer"})).into_response()
        }
        Err(refused) => oauth_error(
            StatusCode::from_u16(refused.status).unwrap_or(StatusCode::BAD_REQUEST),
            refused.error,
            refused.description,
        ),
    }
}

/// Reddit's token endpoint (www.reddit.com/api/v1/access_token): the client authenticates with HTTP
/// Basic (`client_id:client_secret`), never in the form; a refresh grant answers
/// `{access_token, token_type, expires_in, scope}` (and the refresh token when it rotates).
pub const REDDIT_TOKEN: &str = "/api/v1/access_token";

/// The client id of an HTTP Basic `Authorization` header (`client_id:client_secret`).
fn basic_client(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let pair = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|encoded| base64::engine::general_purpose::STANDARD.decode(encoded).ok())
        .and_then(|decoded| String::from_utf8(decoded).ok())?;
    pair.split_once(':').map(|(id, _)| id.to_string()).filter(|id| !id.is_empty())
}

async fn reddit_token(State(sandbox): State<Arc<Sandbox>>, headers: HeaderMap, body: String) -> Response {
    let platform = crate::reddit::platform();
    let Some(client_id) = basic_client(&headers) else {
        // Reddit answers 401 to a client that is not in the Basic header (form fields do not count).
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "Unauthorized", "error": 401}))).into_response();
    };
    let Ok(form) = serde_urlencoded::from_str::<TokenForm>(&body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be form-encoded");
    };
    match (form.grant_type.as_deref(), form.refresh_token.as_deref()) {
        (Some("refresh_token"), Some(refresh_token)) => {
            match sandbox.oauth.refresh(platform, refresh_token, &client_id) {
                Ok((access, ttl, next)) => {
                    let mut answer =
                        json!({"access_token": access, "token_type": "bearer", "expires_in": ttl, "scope": "adsread"});
                    if next != refresh_token {
                        answer["refresh_token"] = json!(next);
                    }
                    Json(answer).into_response()
                }
                Err(()) => Json(json!({"error": "invalid_grant"})).into_response(),
            }
        }
        _ => Json(json!({"error": "unsupported_grant_type"})).into_response(),
    }
}

/// Login with Amazon's token endpoint (api.amazon.com/auth/o2/token): a refresh grant with the client
/// in the form body answers `{access_token, token_type: bearer, expires_in: 3600, refresh_token}` (the
/// same refresh token: Amazon's do not rotate or expire).
pub const AMAZON_TOKEN: &str = "/auth/o2/token";

async fn amazon_token(State(sandbox): State<Arc<Sandbox>>, body: String) -> Response {
    let (form, client_id) = match read_form(&body) {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    refresh_grant(&sandbox, crate::amazon::platform(), &form, &client_id, |access, ttl, next| {
        json!({"access_token": access, "token_type": "bearer", "expires_in": ttl, "refresh_token": next})
    })
    .unwrap_or_else(|refused| match refused {
        Refused::Grant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        ),
        Refused::GrantType => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be refresh_token")
        }
    })
}

/// Why a refresh grant was refused.
enum Refused {
    /// A refresh token the sandbox did not issue, or revoked.
    Grant,
    /// Not a refresh grant.
    GrantType,
}

/// A refresh grant whose client is already authenticated: the platform's answer `issued` builds from
/// (access token, its lifetime, the refresh token: a new one when they rotate).
fn refresh_grant(
    sandbox: &Sandbox,
    platform: Platform,
    form: &TokenForm,
    client_id: &str,
    issued: impl FnOnce(String, u64, String) -> serde_json::Value,
) -> Result<Response, Refused> {
    match (form.grant_type.as_deref(), form.refresh_token.as_deref()) {
        (Some("refresh_token"), Some(refresh_token)) => match sandbox.oauth.refresh(platform, refresh_token, client_id)
        {
            Ok((access, ttl, next)) => Ok(Json(issued(access, ttl, next)).into_response()),
            Err(()) => Err(Refused::Grant),
        },
        _ => Err(Refused::GrantType),
    }
}

/// Snap's token endpoint (accounts.snapchat.com/login/oauth2/access_token): a refresh grant with the
/// client in the form body answers `{access_token, token_type: Bearer, expires_in, refresh_token, scope}`.
pub const SNAPCHAT_TOKEN: &str = "/login/oauth2/access_token";

async fn snapchat_token(State(sandbox): State<Arc<Sandbox>>, body: String) -> Response {
    let (form, client_id) = match read_form(&body) {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    refresh_grant(&sandbox, crate::snapchat::platform(), &form, &client_id, |access, ttl, next| {
        json!({"access_token": access, "token_type": "Bearer", "expires_in": ttl, "refresh_token": next,
               "scope": "snapchat-marketing-api"})
    })
    .unwrap_or_else(|refused| match refused {
        Refused::Grant => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token"),
        Refused::GrantType => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "grant_type must be refresh_token")
        }
    })
}

/// Pinterest's token endpoint (api.pinterest.com/v5/oauth/token): the app authenticates with HTTP Basic;
/// a refresh grant answers `{access_token, refresh_token, response_type, token_type, expires_in,
/// refresh_token_expires_in, scope}` (continuous refresh tokens: a new one each time when rotating).
pub const PINTEREST_TOKEN: &str = "/{version}/oauth/token";

async fn pinterest_token(
    State(sandbox): State<Arc<Sandbox>>,
    axum::extract::Path(version): axum::extract::Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let platform = crate::pinterest::platform();
    if version != "v5" {
        return (StatusCode::NOT_FOUND, Json(json!({"code": 404, "message": "Not found"}))).into_response();
    }
    let Some(client_id) = basic_client(&headers) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"code": 2, "message": "Authentication failed."})))
            .into_response();
    };
    let Ok(form) = serde_urlencoded::from_str::<TokenForm>(&body) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be form-encoded");
    };
    refresh_grant(&sandbox, platform, &form, &client_id, |access, ttl, next| {
        json!({"access_token": access, "refresh_token": next, "response_type": "refresh_token",
               "token_type": "bearer", "expires_in": ttl, "refresh_token_expires_in": 5_184_000, "scope": "ads:read"})
    })
    .unwrap_or_else(|refused| {
        let message = match refused {
            Refused::Grant => "Invalid refresh token.",
            Refused::GrantType => "grant_type must be refresh_token",
        };
        (StatusCode::BAD_REQUEST, Json(json!({"code": 1, "message": message}))).into_response()
    })
}

/// The Microsoft identity platform's token endpoint (login.microsoftonline.com/common/oauth2/v2.0/token;
/// the first segment is the tenant, `common` for Microsoft Advertising): a refresh grant with the client
/// in the form answers `{token_type: Bearer, scope, expires_in, ext_expires_in, access_token,
/// refresh_token}`; Microsoft's refresh tokens rotate.
pub const MICROSOFT_TOKEN: &str = "/{version}/oauth2/v2.0/token";

async fn microsoft_token(State(sandbox): State<Arc<Sandbox>>, body: String) -> Response {
    let (form, client_id) = match read_form(&body) {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    refresh_grant(&sandbox, crate::microsoft::platform(), &form, &client_id, |access, ttl, next| {
        json!({"token_type": "Bearer", "scope": "https://ads.microsoft.com/msads.manage", "expires_in": ttl,
               "ext_expires_in": ttl, "access_token": access, "refresh_token": next})
    })
    .unwrap_or_else(|refused| match refused {
        Refused::Grant => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "AADSTS70000: The provided value for the 'refresh_token' is not valid.",
        ),
        Refused::GrantType => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        ),
    })
}

async fn linkedin_token(State(sandbox): State<Arc<Sandbox>>, body: String) -> Response {
    let platform = Platform::LinkedInAds;
    let (form, client_id) = match read_form(&body) {
        Ok(read) => read,
        Err(answer) => return answer,
    };
    // LinkedIn counts a refresh token's year from the first consent; the sandbox's never end.
    let refresh_ttl = 31_536_000;
    let invalid = "The provided authorization grant or refresh token is invalid, expired or revoked";
    match form.grant_type.as_deref() {
        Some("refresh_token") => {
            let Some(refresh_token) = form.refresh_token.as_deref() else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "A required parameter \"refresh_token\" is missing",
                );
            };
            match sandbox.oauth.refresh(platform, refresh_token, &client_id) {
                Ok((access, ttl, next)) => Json(json!({
                    "access_token": access, "expires_in": ttl,
                    "refresh_token": next, "refresh_token_expires_in": refresh_ttl,
                    "scope": "r_ads,r_ads_reporting",
                }))
                .into_response(),
                Err(()) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", invalid),
            }
        }
        Some("authorization_code") => {
            let (Some(code), Some(redirect_uri)) = (form.code.as_deref(), form.redirect_uri.as_deref()) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "A required parameter \"code\" is missing",
                );
            };
            if sandbox.oauth.redeem(platform, code, &client_id, redirect_uri, form.code_verifier.as_deref()).is_err() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", invalid);
            }
            let (access, ttl) = sandbox.oauth.issue_access(platform);
            let refresh = sandbox.oauth.grant(platform, &client_id);
            Json(json!({
                "access_token": access, "expires_in": ttl,
                "refresh_token": refresh, "refresh_token_expires_in": refresh_ttl,
                "scope": "r_ads,r_ads_reporting",
            }))
            .into_response()
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Unable to retrieve access token: grant_type is invalid",
        ),
    }
}

#[derive(Debug, Deserialize)]
struct ConsentQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// The consent page, approved at once: a redirect back to `redirect_uri` with a code and the state.
fn consent(sandbox: &Sandbox, platform: Platform, query: ConsentQuery) -> Response {
    let (Some(client_id), Some(redirect_uri)) = (query.client_id.as_deref(), query.redirect_uri.as_deref()) else {
        return (StatusCode::BAD_REQUEST, "client_id and redirect_uri are required").into_response();
    };
    if query.response_type.as_deref() != Some("code") || query.scope.as_deref().unwrap_or("").is_empty() {
        return (StatusCode::BAD_REQUEST, "response_type=code and a scope are required").into_response();
    }
    // Loopback redirects only (RFC 8252 §7.3), as the platforms allow for installed apps.
    if !(redirect_uri.starts_with("http://127.0.0.1:") || redirect_uri.starts_with("http://localhost:")) {
        return (StatusCode::BAD_REQUEST, "redirect_uri must be a loopback address").into_response();
    }
    // PKCE: only S256 (Google refuses `plain` from installed apps too).
    if query.code_challenge.is_some() && query.code_challenge_method.as_deref() != Some("S256") {
        return (StatusCode::BAD_REQUEST, "code_challenge_method must be S256").into_response();
    }
    let code = sandbox.oauth.code(platform, client_id, redirect_uri, query.code_challenge.as_deref());
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &query.state {
        params.push(("state", state));
    }
    let location = format!("{redirect_uri}?{}", serde_urlencoded::to_string(&params).unwrap_or_default());
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn google_consent(State(sandbox): State<Arc<Sandbox>>, Query(query): Query<ConsentQuery>) -> Response {
    consent(&sandbox, Platform::GoogleAds, query)
}

async fn linkedin_consent(State(sandbox): State<Arc<Sandbox>>, Query(query): Query<ConsentQuery>) -> Response {
    consent(&sandbox, Platform::LinkedInAds, query)
}

async fn configure(State(sandbox): State<Arc<Sandbox>>, Json(settings): Json<OAuthSettings>) -> Json<OAuthSettings> {
    sandbox.oauth.set(settings);
    Json(settings)
}

async fn stats(State(sandbox): State<Arc<Sandbox>>) -> Json<serde_json::Value> {
    let settings = *sandbox.oauth.settings.lock().expect("oauth lock");
    Json(json!({
        "settings": settings,
        "issued_access_tokens": sandbox.oauth.issued(),
        "refused_expired": sandbox.oauth.refused_expired(),
        "service_account_grants": sandbox.oauth.service_account_grants(),
    }))
}

#[derive(Deserialize)]
struct GrantRequest {
    platform: Platform,
    client_id: String,
}

async fn control_grant(State(sandbox): State<Arc<Sandbox>>, Json(request): Json<GrantRequest>) -> Response {
    if mdp_core::kind(request.platform).oauth.is_none() {
        return (StatusCode::BAD_REQUEST, format!("{} has no refresh tokens", request.platform)).into_response();
    }
    Json(json!({"refresh_token": sandbox.oauth.grant(request.platform, &request.client_id)})).into_response()
}

#[derive(Deserialize)]
struct RevokeRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

async fn control_revoke(
    State(sandbox): State<Arc<Sandbox>>,
    Json(request): Json<RevokeRequest>,
) -> Json<serde_json::Value> {
    Json(json!({"revoked": sandbox.oauth.revoke(request.refresh_token.as_deref())}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_rotate_and_revoke() {
        let server = OAuthServer::default();
        server.set(OAuthSettings { access_token_ttl_secs: 0, rotate_refresh_tokens: true, ..Default::default() });
        let first = server.grant(Platform::GoogleAds, "app");
        assert!(server.refresh(Platform::GoogleAds, &first, "other-app").is_err(), "bound to its client");
        assert!(server.refresh(Platform::LinkedInAds, &first, "app").is_err(), "bound to its platform");
        let (access, _, second) = server.refresh(Platform::GoogleAds, &first, "app").unwrap();
        assert_ne!(first, second, "rotated");
        assert!(!server.refresh_token_valid(&first) && server.refresh_token_valid(&second));
        assert_eq!(server.check(Platform::GoogleAds, &access), TokenCheck::Expired, "a 0 s lifetime");
        assert_eq!(server.check(Platform::GoogleAds, "demo-token"), TokenCheck::Fixed);

        server.set(OAuthSettings { access_token_ttl_secs: 60, rotate_refresh_tokens: false, ..Default::default() });
        let (access, ttl, third) = server.refresh(Platform::GoogleAds, &second, "app").unwrap();
        assert_eq!((ttl, third.as_str()), (60, second.as_str()), "kept without rotation");
        assert_eq!(server.check(Platform::GoogleAds, &access), TokenCheck::Valid);
        assert_eq!(server.check(Platform::LinkedInAds, &access), TokenCheck::Expired, "not LinkedIn's token");
        assert_eq!(server.revoke(None), 1);
        assert!(server.refresh(Platform::GoogleAds, &second, "app").is_err());
    }

    #[test]
    fn codes_are_single_use_and_bound_to_their_redirect() {
        let server = OAuthServer::default();
        let code = server.code(Platform::LinkedInAds, "app", "http://127.0.0.1:5/", None);
        assert!(server.redeem(Platform::LinkedInAds, &code, "app", "http://127.0.0.1:6/", None).is_err());
        let code = server.code(Platform::LinkedInAds, "app", "http://127.0.0.1:5/", None);
        assert!(server.redeem(Platform::LinkedInAds, &code, "app", "http://127.0.0.1:5/", None).is_ok());
        assert!(server.redeem(Platform::LinkedInAds, &code, "app", "http://127.0.0.1:5/", None).is_err(), "used");
        // PKCE: the code is only for whoever holds the verifier of its challenge.
        let challenge = "FLYuXILotD3o-l1GdsuYjtZ1dRh-Wb7tAdd3fgd0Pwo"; // S256 of the verifier below, by Python's hashlib
        let verifier = "dBjftJeZ4CKP-1mWjXtY8W5tpsTt2rQsevRnH7c2gZg";
        let redirect = "http://127.0.0.1:5/";
        let code = server.code(Platform::GoogleAds, "app", redirect, Some(challenge));
        assert_eq!(server.redeem(Platform::GoogleAds, &code, "app", redirect, None), Err("Missing code verifier."));
        let code = server.code(Platform::GoogleAds, "app", redirect, Some(challenge));
        assert_eq!(
            server.redeem(Platform::GoogleAds, &code, "app", redirect, Some("wrong")),
            Err("Invalid code verifier.")
        );
        let code = server.code(Platform::GoogleAds, "app", redirect, Some(challenge));
        assert_eq!(server.redeem(Platform::GoogleAds, &code, "app", redirect, Some(verifier)), Ok(()));
    }
}
