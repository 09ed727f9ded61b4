//! The static description of a platform's connector: the credentials and options it takes, its
//! defaults, and the streams it reads. Pure data, so the project file can be validated (and `mdp doctor`
//! can explain a source) without the HTTP crate; `mdp-sources` builds connectors on top of it.

use chrono::NaiveDate;
use serde::Serialize;

use crate::Platform;

/// One credential a platform's connector can use. The project file names where each is found
/// (`{ env: VAR }` or `{ file: path }`); the value itself never appears in configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CredentialSpec {
    /// The key under `credentials:` in `mdp.yml`, snake_case.
    pub name: &'static str,
    /// Whether an enabled source must configure it.
    pub required: bool,
    /// What it is and how it is sent, for `mdp doctor` and error messages.
    pub description: &'static str,
}

/// One key a platform accepts under a source's `options:` (parsed into the platform's typed options,
/// see [`SourceOptions`](crate::SourceOptions)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OptionSpec {
    /// The key under `options:` in `mdp.yml`, snake_case.
    pub name: &'static str,
    /// What it does, its form and its default, for `mdp doctor` and error messages.
    pub description: &'static str,
    /// A declared platform's default value (its templates always see a value); `None` on built-in
    /// platforms, whose typed options hold their own defaults.
    pub default: Option<&'static str>,
}

/// The credential names of OAuth 2.0 (the same under every platform's `credentials:`).
pub const ACCESS_TOKEN: &str = "access_token";
pub const CLIENT_ID: &str = "client_id";
pub const CLIENT_SECRET: &str = "client_secret";
pub const REFRESH_TOKEN: &str = "refresh_token";
/// The refresh-token set, described alike on every platform with [`OAuthSpec`].
pub const CLIENT_ID_SPEC: CredentialSpec = CredentialSpec {
    name: CLIENT_ID,
    required: false,
    description: "OAuth 2.0 client id of your app, for refreshing access tokens (with client_secret and refresh_token)",
};
pub const CLIENT_SECRET_SPEC: CredentialSpec = CredentialSpec {
    name: CLIENT_SECRET,
    required: false,
    description: "OAuth 2.0 client secret of your app, for refreshing access tokens",
};
pub const REFRESH_TOKEN_SPEC: CredentialSpec = CredentialSpec {
    name: REFRESH_TOKEN,
    required: false,
    description: "OAuth 2.0 refresh token (`mdp auth` writes it); mdp keeps a file reference current when the \
                  platform rotates it",
};

/// A Google service account's JSON key file (the JWT-bearer grant, RFC 7523).
pub const SERVICE_ACCOUNT_KEY: &str = "service_account_key";

/// How a source on a platform with [`OAuthSpec`] obtains its access tokens, as its credentials say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenGrant {
    /// A fixed `access_token`, sent as configured.
    AccessToken,
    /// `client_id`, `client_secret` and `refresh_token`: refreshed at the token endpoint.
    RefreshToken,
    /// `service_account_key`: a JWT signed with the key, exchanged at the key's token endpoint.
    ServiceAccount,
}

/// How a platform issues short-lived access tokens from a long-lived refresh token (OAuth 2.0, RFC 6749
/// §6), and where a user authorizes mdp to get one (`mdp auth`, the authorization-code flow with a
/// loopback redirect). A platform with it takes either `access_token` or the three credentials
/// `client_id`, `client_secret` and `refresh_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OAuthSpec {
    /// Where refresh and authorization-code grants are posted (form-encoded).
    pub token_url: &'static str,
    /// Where a user's browser is sent to consent.
    pub authorize_url: &'static str,
    /// The scopes mdp asks for (space-separated when sent).
    pub scopes: &'static [&'static str],
    /// Extra query parameters of the consent URL (Google issues a refresh token only with
    /// `access_type=offline`, and again for a user who consented before only with `prompt=consent`).
    pub authorize_params: &'static [(&'static str, &'static str)],
    /// How long the platform's tokens live, for help text.
    pub lifetimes: &'static str,
    /// Whether the consent flow adds PKCE (RFC 7636, S256): Google recommends it for installed apps;
    /// LinkedIn documents it for native clients only, so a web app's flow goes without.
    pub pkce: bool,
    /// Whether the token endpoint takes the client's id and secret as HTTP Basic authentication (RFC 6749
    /// §2.3.1: Reddit, Pinterest) rather than as form fields (Google, LinkedIn).
    pub client_auth_basic: bool,
    /// Whether the platform takes a service account's key instead (Google: the JWT-bearer grant with the
    /// key file the Cloud console downloads; the service account is a user of the ads account, or acts
    /// as a Workspace user through domain-wide delegation).
    pub service_account: bool,
}

/// An API version of a platform and the day the platform announced it stops serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ApiVersion {
    pub version: &'static str,
    /// `YYYY-MM-DD`, the first day requests fail; `None` while no date is announced.
    pub sunset: Option<&'static str>,
    /// Where the date was announced.
    pub source: &'static str,
}

/// How many days before a sunset `mdp doctor` and the checks start warning.
pub const SUNSET_WARNING_DAYS: i64 = 60;

/// What the version watch says of a source's `api_version` on a given day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionWatch {
    /// Served, and no sunset within [`SUNSET_WARNING_DAYS`] (the date, if announced).
    Current { sunset: Option<NaiveDate> },
    /// Sunset within [`SUNSET_WARNING_DAYS`].
    Soon { sunset: NaiveDate, days_left: i64 },
    /// The platform stopped serving it on that day.
    Sunset { sunset: NaiveDate },
    /// mdp knows nothing of this version (newer than mdp, or a typo).
    Unknown,
}

/// What mdp knows about a platform before any configuration: one entry of [`REGISTRY`](crate::REGISTRY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SourceKind {
    pub platform: Platform,
    pub credentials: &'static [CredentialSpec],
    /// How the platform refreshes access tokens, if it does (then `access_token` is not required when
    /// `client_id`, `client_secret` and `refresh_token` are configured).
    pub oauth: Option<OAuthSpec>,
    /// The keys of `options:` this platform reads; any other key is refused when mdp.yml loads.
    pub options: &'static [OptionSpec],
    /// Days re-read on every incremental run, because the platform restates recent days.
    pub default_lookback_days: u32,
    /// Days before the account's today whose data the platform does not have yet: daily windows end that
    /// many days back (0: today, provisional and re-read).
    pub lag_days: u32,
    pub default_api_version: &'static str,
    /// The versions mdp knows, oldest first, with their announced sunsets (the API version watch).
    pub api_versions: &'static [ApiVersion],
    /// Scheme and host without a trailing slash; a source's `base_url` overrides it (sandbox, proxy).
    pub default_base_url: &'static str,
    pub docs_url: &'static str,
    /// The streams its connector reads (every source also loads `accounts`).
    #[serde(skip)]
    pub streams: &'static [StreamSpec],
    /// A declared platform's conversion definition label, `{option}` replaced by the option's value
    /// (see [`SourceOptions::conversion_definition`](crate::SourceOptions::conversion_definition));
    /// `None` on built-in platforms, which compose theirs from their typed options.
    pub conversion_label: Option<&'static str>,
}

impl SourceKind {
    /// The source's name in configuration, e.g. `"google_ads"`.
    pub const fn name(&self) -> &'static str {
        self.platform.as_str()
    }

    pub fn credential(&self, name: &str) -> Option<&'static CredentialSpec> {
        self.credentials.iter().find(|credential| credential.name == name)
    }

    pub fn required_credentials(&self) -> impl Iterator<Item = &'static CredentialSpec> {
        self.credentials.iter().filter(|credential| credential.required)
    }

    /// On a platform with [`OAuthSpec`]: which grant a source whose credentials `configured` says it
    /// has uses (`None` on a platform without OAuth), or what is missing or contradictory. The
    /// refresh-token set wins over a fixed `access_token` written beside it; a service account key and
    /// a refresh token are two identities, so both at once are refused. Required credentials are
    /// checked apart.
    pub fn token_grant(&self, configured: impl Fn(&str) -> bool) -> Result<Option<TokenGrant>, String> {
        let Some(oauth) = self.oauth else {
            return Ok(None);
        };
        let refresh = [CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN];
        let absent: Vec<&str> = refresh.iter().copied().filter(|name| !configured(name)).collect();
        let service_account = oauth.service_account && configured(SERVICE_ACCOUNT_KEY);
        if service_account && configured(REFRESH_TOKEN) {
            return Err(format!(
                "{} authenticates either as a user (client_id, client_secret, refresh_token) or as a service account \
                 (service_account_key), not both; remove one",
                self.name()
            ));
        }
        if service_account {
            return Ok(Some(TokenGrant::ServiceAccount));
        }
        // A credential of the set the platform needs for itself (Amazon's client_id, also a header of
        // every call) is there whatever the grant: only the others say a refresh set was meant.
        let needed_anyway = |name: &str| self.credentials.iter().any(|c| c.name == name && c.required);
        let chosen = refresh.iter().any(|name| configured(name) && !needed_anyway(name));
        if !absent.is_empty() && chosen {
            return Err(format!(
                "{} refreshes access tokens with client_id, client_secret and refresh_token together; '{}' {} missing",
                self.name(),
                absent.join("', '"),
                if absent.len() == 1 { "is" } else { "are" }
            ));
        }
        if absent.is_empty() {
            return Ok(Some(TokenGrant::RefreshToken));
        }
        if configured(ACCESS_TOKEN) {
            return Ok(Some(TokenGrant::AccessToken));
        }
        Err(format!(
            "{} needs either 'access_token' or 'client_id', 'client_secret' and 'refresh_token' (a refresh token \
             is what `mdp auth` writes){}; add them under `credentials:` as {{ env: VAR }} or {{ file: path }}",
            self.name(),
            if oauth.service_account { ", or 'service_account_key' (a service account's JSON key file)" } else { "" }
        ))
    }

    pub fn option(&self, name: &str) -> Option<&'static OptionSpec> {
        self.options.iter().find(|option| option.name == name)
    }

    /// The version watch of `version` on `today`.
    pub fn version_watch(&self, version: &str, today: NaiveDate) -> VersionWatch {
        let Some(known) = self.api_versions.iter().find(|known| known.version == version) else {
            return VersionWatch::Unknown;
        };
        let sunset = known.sunset.map(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("checked by a test"));
        match sunset {
            Some(sunset) if sunset <= today => VersionWatch::Sunset { sunset },
            Some(sunset) if (sunset - today).num_days() <= SUNSET_WARNING_DAYS => {
                VersionWatch::Soon { sunset, days_left: (sunset - today).num_days() }
            }
            sunset => VersionWatch::Current { sunset },
        }
    }

    /// The watch in words, for `mdp doctor`, the checks and ingest warnings: `None` when all is well.
    pub fn version_warning(&self, version: &str, today: NaiveDate) -> Option<String> {
        let name = self.name();
        let default = self.default_api_version;
        match self.version_watch(version, today) {
            VersionWatch::Current { .. } => None,
            VersionWatch::Unknown => Some(format!(
                "{name} API version {version} is not one mdp knows (it knows {}); check it is current, or remove \
                 `api_version` to use {default}",
                self.api_versions.iter().map(|v| v.version).collect::<Vec<_>>().join(", ")
            )),
            VersionWatch::Soon { sunset, days_left } => Some(format!(
                "{name} API version {version} is sunset on {sunset} ({days_left} days left); set `api_version: {default}`{}",
                if version == default { " once mdp is upgraded (this mdp's default is that version)" } else { "" }
            )),
            VersionWatch::Sunset { sunset } => Some(format!(
                "{name} API version {version} was sunset on {sunset}: every request fails; set `api_version: {default}`{}",
                if version == default { " of a newer mdp (this mdp's default is that version: upgrade mdp)" } else { "" }
            )),
        }
    }

    pub fn stream(&self, name: &str) -> Option<&'static StreamSpec> {
        self.streams.iter().find(|stream| stream.name == name)
    }
}

/// Whether a stream is a snapshot of entities or a series of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Today's state of entities (names, statuses); stored as a daily snapshot, so history accrues.
    Entity,
    /// Daily performance, read by date window.
    Daily,
}

/// One stream of a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: &'static str,
    pub kind: StreamKind,
    /// The longest date window one read may cover (the API's limit, or what keeps one answer small),
    /// for daily streams.
    pub max_window_days: u32,
    pub description: &'static str,
}

/// The standard entity streams every platform has (the `accounts` stream is read per account).
pub const ACCOUNTS: StreamSpec = StreamSpec {
    name: "accounts",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "ad accounts: name, currency, time zone",
};
pub const CAMPAIGNS: StreamSpec = StreamSpec {
    name: "campaigns",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "campaigns: name, status",
};
pub const AD_GROUPS: StreamSpec = StreamSpec {
    name: "ad_groups",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "ad groups (Meta ad sets, LinkedIn campaigns): name, status, campaign",
};
pub const ADS: StreamSpec = StreamSpec {
    name: "ads",
    kind: StreamKind::Entity,
    max_window_days: 0,
    description: "ads (LinkedIn creatives): name, status, parents",
};
