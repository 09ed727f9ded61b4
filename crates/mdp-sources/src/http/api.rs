//! The shape every platform's HTTP API is described in: an [`Endpoint`] (where requests go, the headers
//! that authenticate and version them) and a [`ReportApi`] (the request of a page, how a page is read,
//! how an answer is classified). The driver does the sending, retrying and paging.

use std::borrow::Cow;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use mdp_core::Platform;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::Method;
use serde_json::value::RawValue;

use super::{Answer, Verdict};
use crate::auth::OAuthTokens;
use crate::error::SourceError;
use crate::source::{Credential, SourceSettings};

/// One platform's API as the shared driver reads it. A connector implements it once; a declarative
/// connector implements it from its spec.
pub trait ReportApi: Send + Sync + 'static {
    /// What one paged read asks for: an endpoint and its parameters (a GAQL query, an edge, a finder).
    type Query: Clone + Send + Sync + 'static;
    /// Where the next page starts: a token from the body, a page number.
    type Cursor: Clone + Eq + Hash + Debug + Send + Sync + 'static;

    /// Where requests go and the headers every one carries.
    fn endpoint(&self) -> &Endpoint;

    /// The request of the page at `cursor` (`None`: the first page).
    fn request(&self, query: &Self::Query, cursor: Option<&Self::Cursor>) -> HttpRequest;

    /// A data page's rows (borrowed from `body`, read into typed rows by the connector) and the next
    /// page's cursor. `Err` says why `body` is not a data page: an error envelope is then classified
    /// (and retried or reported); a successful answer that is not a page is a malformed answer.
    fn parse_page<'a>(
        &self,
        query: &Self::Query,
        cursor: Option<&Self::Cursor>,
        body: &'a str,
    ) -> Result<Page<'a, Self::Cursor>, String>;

    /// What one answer means: data, retry, or a final error (the platform's error envelope).
    fn classify(&self, answer: Answer<'_>) -> Verdict;
}

/// One page of a paged read.
#[derive(Debug)]
pub struct Page<'a, C> {
    /// The page's rows, as the API's own text.
    pub rows: Vec<&'a RawValue>,
    /// The next page's cursor; `None` on the last page.
    pub next: Option<C>,
}

/// A request relative to an [`Endpoint`]'s root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    /// Relative to the root, without a leading slash; may carry a query string already encoded (Rest.li).
    pub path: String,
    /// Query parameters, percent-encoded when sent.
    pub query: Vec<(Cow<'static, str>, String)>,
    /// A JSON body (sent with `Content-Type: application/json` unless `headers` names another).
    pub json_body: Option<String>,
    /// A form body (`application/x-www-form-urlencoded`), its fields signed with the query by OAuth 1.0a.
    pub form_body: Vec<(Cow<'static, str>, String)>,
    /// Headers of this request only, after the endpoint's (never credentials: those are the endpoint's).
    pub headers: Vec<(Cow<'static, str>, String)>,
}

impl HttpRequest {
    pub fn get(path: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            json_body: None,
            form_body: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn post_json(path: impl Into<String>, body: String) -> HttpRequest {
        HttpRequest {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            json_body: Some(body),
            form_body: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn with_query(mut self, query: Vec<(&'static str, String)>) -> HttpRequest {
        self.query = query.into_iter().map(|(name, value)| (Cow::Borrowed(name), value)).collect();
        self
    }

    /// One more header of this request.
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// One more query parameter.
    pub fn param(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<String>) -> HttpRequest {
        self.query.push((name.into(), value.into()));
        self
    }
}

/// A header every request of an API carries, and where its value comes from.
#[derive(Debug, Clone)]
pub struct ApiHeader {
    pub name: Cow<'static, str>,
    pub value: HeaderSource,
}

#[derive(Debug, Clone)]
pub enum HeaderSource {
    /// A credential after `prefix` (`"Bearer "`), marked sensitive. A credential the registry calls
    /// optional is sent only when configured; a required one missing is a configuration error.
    Credential { name: &'static str, prefix: Cow<'static, str> },
    /// `Basic base64(<username>:<password>)` from two credentials, marked sensitive.
    Basic { username: &'static str, password: &'static str },
    /// An OAuth 1.0a signature of each request (`OAuth oauth_consumer_key=…, oauth_signature=…`), made at
    /// send time from four credentials; sensitive.
    OAuth1 {
        consumer_key: &'static str,
        consumer_secret: &'static str,
        token: &'static str,
        token_secret: &'static str,
    },
    /// The source's `api_version` (LinkedIn's `LinkedIn-Version`).
    ApiVersion,
    /// A fixed value (`X-Restli-Protocol-Version: 2.0.0`) or one from the source's options.
    Text(String),
}

impl ApiHeader {
    /// `Authorization: Bearer <credential>`.
    pub fn bearer(credential: &'static str) -> ApiHeader {
        ApiHeader {
            name: Cow::Borrowed("authorization"),
            value: HeaderSource::Credential { name: credential, prefix: Cow::Borrowed("Bearer ") },
        }
    }

    /// `<name>: <credential>`.
    pub fn credential(name: &'static str, credential: &'static str) -> ApiHeader {
        ApiHeader {
            name: Cow::Borrowed(name),
            value: HeaderSource::Credential { name: credential, prefix: Cow::Borrowed("") },
        }
    }

    pub fn text(name: &'static str, value: impl Into<String>) -> ApiHeader {
        ApiHeader { name: Cow::Borrowed(name), value: HeaderSource::Text(value.into()) }
    }
}

/// Where an API's requests go and the headers each carries: built once per connector, the one place a
/// credential becomes a header.
#[derive(Debug, Clone)]
pub struct Endpoint {
    platform: Platform,
    /// Base URL and the API's path prefix (`https://graph.facebook.com/v23.0`), no trailing slash.
    root: String,
    /// The path part of `root` (`/v23.0`), for error messages.
    root_path: String,
    /// Other roots of the same API (Microsoft Advertising's campaign and customer hosts): their full URLs
    /// are sent as they are, with the endpoint's credentials.
    also: Vec<String>,
    headers: HeaderMap,
    /// The header whose token is refreshed, on a source that refreshes its access token.
    refreshing: Option<RefreshingHeader>,
    /// The keys every request is signed with, on an OAuth 1.0a source.
    oauth1: Option<crate::auth::oauth1::OAuth1Keys>,
    api_version: String,
    /// The platform's rate limit, kept before each request (shared by the endpoint's clones).
    pacer: Option<Arc<super::Pacer>>,
}

/// A credential header whose value comes from an [`OAuthTokens`] at send time.
#[derive(Debug, Clone)]
struct RefreshingHeader {
    name: HeaderName,
    prefix: Cow<'static, str>,
    tokens: Arc<OAuthTokens>,
}

/// The refreshed token a request was sent with (to report it refused).
#[derive(Debug)]
pub(crate) struct SentToken(Credential);

impl Endpoint {
    /// The endpoint of `settings`' API: `prefix` (e.g. `/v21`, `/rest`) after the base URL, `headers` on
    /// every request.
    pub fn new(settings: &SourceSettings, prefix: &str, headers: &[ApiHeader]) -> Result<Endpoint, SourceError> {
        let root = format!("{}{}", settings.base(), prefix.trim_end_matches('/'));
        let root_path = reqwest::Url::parse(&root)
            .map_err(|e| settings.config_error(format!("base_url {:?} is not a valid URL ({e})", settings.base_url)))?
            .path()
            .trim_end_matches('/')
            .to_string();
        let mut map = HeaderMap::new();
        let mut refreshing = None;
        let mut oauth1 = None;
        // Fails when no request could be authorized (neither a fixed token nor a complete grant).
        let mut tokens = OAuthTokens::from_settings(settings)?.map(Arc::new);
        for header in headers {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| settings.config_error(format!("{:?} is not an HTTP header name", header.name)))?;
            let not_allowed = |what: String| {
                settings.config_error(format!("{what} contains characters not allowed in an HTTP header"))
            };
            let value = match &header.value {
                HeaderSource::Credential { name: credential, prefix }
                    if *credential == mdp_core::ACCESS_TOKEN && tokens.is_some() =>
                {
                    let tokens = tokens.take().expect("checked");
                    refreshing = Some(RefreshingHeader { name, prefix: prefix.clone(), tokens });
                    continue;
                }
                HeaderSource::Credential { name: credential, prefix } => {
                    let required = mdp_core::kind(settings.platform).credential(credential).is_none_or(|c| c.required);
                    let secret = match settings.credentials.get(*credential) {
                        Some(secret) => secret,
                        // Missing: the configuration error that names the credential.
                        None if required => settings.credential(credential)?,
                        None => continue,
                    };
                    let mut value = HeaderValue::from_str(&format!("{prefix}{}", secret.expose()))
                        .map_err(|_| not_allowed(credential.to_string()))?;
                    value.set_sensitive(true);
                    value
                }
                HeaderSource::OAuth1 { consumer_key, consumer_secret, token, token_secret } => {
                    oauth1 = Some(crate::auth::oauth1::OAuth1Keys {
                        consumer_key: settings.credential(consumer_key)?.clone(),
                        consumer_secret: settings.credential(consumer_secret)?.clone(),
                        token: settings.credential(token)?.clone(),
                        token_secret: settings.credential(token_secret)?.clone(),
                    });
                    continue;
                }
                HeaderSource::Basic { username, password } => {
                    use base64::Engine;
                    let (username, password) = (settings.credential(username)?, settings.credential(password)?);
                    let pair = format!("{}:{}", username.expose(), password.expose());
                    let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
                    let mut value =
                        HeaderValue::from_str(&format!("Basic {encoded}")).map_err(|_| not_allowed("basic".into()))?;
                    value.set_sensitive(true);
                    value
                }
                HeaderSource::ApiVersion => HeaderValue::from_str(&settings.api_version)
                    .map_err(|_| not_allowed(format!("api_version {:?}", settings.api_version)))?,
                HeaderSource::Text(text) => {
                    HeaderValue::from_str(text).map_err(|_| not_allowed(header.name.to_string()))?
                }
            };
            map.insert(name, value);
        }
        Ok(Endpoint {
            platform: settings.platform,
            root,
            root_path,
            also: Vec::new(),
            headers: map,
            refreshing,
            oauth1,
            api_version: settings.api_version.clone(),
            pacer: None,
        })
    }

    /// The endpoint keeping a rate limit: at most `limit` requests in any `period`.
    pub fn with_rate_limit(mut self, limit: u32, period: std::time::Duration) -> Endpoint {
        self.pacer = Some(Arc::new(super::Pacer::new(limit, period)));
        self
    }

    /// The rate limit each request waits for, on an endpoint that keeps one.
    pub fn pacer(&self) -> Option<&super::Pacer> {
        self.pacer.as_deref()
    }

    /// The refreshing access token of this endpoint's source, if it has one.
    pub fn tokens(&self) -> Option<&Arc<OAuthTokens>> {
        self.refreshing.as_ref().map(|header| &header.tokens)
    }

    /// The current access token for the next request (refreshed first if it is about to expire).
    pub(crate) async fn current_token(&self, client: &reqwest::Client) -> Result<Option<SentToken>, SourceError> {
        match &self.refreshing {
            Some(header) => Ok(Some(SentToken(header.tokens.token(client).await?))),
            None => Ok(None),
        }
    }

    /// The platform refused `sent`: refresh it (once per refused token; see [`OAuthTokens::refused`]).
    pub(crate) async fn token_refused(&self, client: &reqwest::Client, sent: &SentToken) -> Result<(), SourceError> {
        if let Some(header) = &self.refreshing {
            header.tokens.refused(client, &sent.0).await?;
        }
        Ok(())
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The request's URL: its path after the root, or the path itself when it is a full URL under the
    /// root (a next-page URL the API gave; [`Endpoint::under_root`] checked it).
    pub(crate) fn url(&self, request: &HttpRequest) -> String {
        if self.under_root(&request.path) {
            return request.path.clone();
        }
        format!("{}/{}", self.root, request.path.trim_start_matches('/'))
    }

    /// The endpoint with more roots of the same API (hosts a connector spec names), which its credentials
    /// may go to.
    pub fn with_roots(mut self, roots: impl IntoIterator<Item = String>) -> Endpoint {
        let roots = roots.into_iter().map(|root| root.trim_end_matches('/').to_string());
        self.also.extend(roots.filter(|root| *root != self.root));
        self
    }

    /// Whether `url` is a full URL under one of this endpoint's roots (so its requests may carry the
    /// endpoint's credentials).
    pub fn under_root(&self, url: &str) -> bool {
        let under = |root: &String| {
            url.strip_prefix(root.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        };
        under(&self.root) || self.also.iter().any(under)
    }

    /// The URL path of `request`, without host or query string: safe for error messages.
    pub fn path_of(&self, request: &HttpRequest) -> String {
        if let Some(root) = self.also.iter().find(|root| request.path.starts_with(root.as_str())) {
            let path = &request.path[root.len()..];
            return path.split_once('?').map_or(path, |(path, _)| path).to_string();
        }
        let path = request.path.strip_prefix(&self.root).unwrap_or(&request.path);
        let path = path.trim_start_matches('/');
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        format!("{}/{path}", self.root_path)
    }

    pub(crate) fn build(
        &self,
        client: &reqwest::Client,
        url: &str,
        request: &HttpRequest,
        token: Option<&SentToken>,
    ) -> Result<reqwest::RequestBuilder, SourceError> {
        let mut builder = client.request(request.method.clone(), url).headers(self.headers.clone());
        if let (Some(header), Some(SentToken(token))) = (&self.refreshing, token) {
            let mut value = HeaderValue::from_str(&format!("{}{}", header.prefix, token.expose())).map_err(|_| {
                SourceError::malformed(
                    self.platform,
                    "the refreshed access token has characters not allowed in a header",
                )
            })?;
            value.set_sensitive(true);
            builder = builder.header(header.name.clone(), value);
        }
        if let Some(keys) = &self.oauth1 {
            let parsed = reqwest::Url::parse(url).map_err(|e| {
                SourceError::malformed(self.platform, format!("the request URL cannot be signed ({e})"))
            })?;
            // RFC 5849 §3.4.1.3: the query's parameters and a form body's are signed alike.
            let query: Vec<(String, String)> =
                request.query.iter().chain(&request.form_body).map(|(k, v)| (k.to_string(), v.clone())).collect();
            let mut value =
                HeaderValue::from_str(&keys.sign(request.method.as_str(), &parsed, &query)).map_err(|_| {
                    SourceError::malformed(self.platform, "an OAuth 1.0a key has characters not allowed in a header")
                })?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        let mut typed = false;
        for (name, value) in &request.headers {
            let invalid = |what: &str| {
                SourceError::malformed(
                    self.platform,
                    format!("the request header {name} has {what} not allowed in a header"),
                )
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("a name"))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid("characters"))?;
            typed |= name == CONTENT_TYPE;
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.json_body {
            if !typed {
                builder = builder.header(CONTENT_TYPE, "application/json");
            }
            builder = builder.body(body.clone());
        } else if !request.form_body.is_empty() {
            builder = builder.form(&request.form_body);
        }
        Ok(builder)
    }

    /// The one place an API version error becomes [`SourceError::SunsetVersion`].
    pub(crate) fn sunset(&self, message: String) -> SourceError {
        SourceError::SunsetVersion {
            platform: self.platform,
            version: self.api_version.clone(),
            default: mdp_core::kind(self.platform).default_api_version.into(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use mdp_core::{Platform, SourceOptions};

    use super::*;
    use crate::source::Credential;

    /// A form body is sent form-encoded and signed with the query (RFC 5849 §3.4.1.3): the signature the
    /// header carries is the one its own nonce and timestamp give over both.
    #[test]
    fn a_form_body_is_sent_encoded_and_its_fields_are_signed() {
        let credentials: BTreeMap<String, Credential> = ["ck", "cs", "t", "ts"]
            .iter()
            .map(|name| (name.to_string(), Credential::new(format!("{name}-value"))))
            .collect();
        let settings = SourceSettings {
            name: "x".into(),
            platform: Platform::TikTokAds,
            base_url: "https://ads-api.x.com".into(),
            api_version: "12".into(),
            accounts: vec!["1".into()],
            credentials,
            token_url: None,
            options: SourceOptions::defaults(Platform::TikTokAds),
        };
        let signer = ApiHeader {
            name: "authorization".into(),
            value: HeaderSource::OAuth1 { consumer_key: "ck", consumer_secret: "cs", token: "t", token_secret: "ts" },
        };
        let endpoint = Endpoint::new(&settings, "", &[signer]).unwrap();
        let mut request =
            HttpRequest { method: Method::POST, ..HttpRequest::get("12/stats/jobs/accounts/18ce54d4x5t") }
                .param("entity", "PROMOTED_TWEET");
        request.form_body = vec![("entity_ids".into(), "a1,b2".into()), ("placement".into(), "ALL_ON_TWITTER".into())];
        let url = endpoint.url(&request);
        let built = endpoint.build(&reqwest::Client::new(), &url, &request, None).unwrap().build().unwrap();
        assert_eq!(built.headers()[CONTENT_TYPE], "application/x-www-form-urlencoded");
        assert_eq!(built.body().and_then(|b| b.as_bytes()), Some(&b"entity_ids=a1%2Cb2&placement=ALL_ON_TWITTER"[..]));

        let header = built.headers()[reqwest::header::AUTHORIZATION].to_str().unwrap().to_string();
        let fields: HashMap<&str, String> = header
            .trim_start_matches("OAuth ")
            .split(", ")
            .filter_map(|field| field.split_once('='))
            .map(|(k, v)| (k, v.trim_matches('"').to_string()))
            .collect();
        let keys = crate::auth::oauth1::OAuth1Keys {
            consumer_key: Credential::new("ck-value"),
            consumer_secret: Credential::new("cs-value"),
            token: Credential::new("t-value"),
            token_secret: Credential::new("ts-value"),
        };
        let signed = |params: &[(String, String)]| {
            let parsed = reqwest::Url::parse(&url).unwrap();
            keys.header("POST", &parsed, params, &fields["oauth_nonce"], fields["oauth_timestamp"].parse().unwrap())
        };
        let all: Vec<(String, String)> =
            [("entity", "PROMOTED_TWEET"), ("entity_ids", "a1,b2"), ("placement", "ALL_ON_TWITTER")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .to_vec();
        assert_eq!(signed(&all), header, "query and form fields signed");
        assert_ne!(signed(&all[..1]), header, "the form's fields count");
    }
}
