//! Warehouse targets: where a project's tables live.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::env::{EnvLookup, ProcessEnv};
use crate::error::ProjectError;
use crate::secret::{Secret, SecretRef};
use crate::values::Identifier;

/// One named warehouse, selected by `type:`.
#[derive(Debug, Clone)]
pub enum TargetConfig {
    /// An embedded DuckDB file: the default, nothing to install.
    DuckDb(DuckDbTarget),
    Postgres(PostgresTarget),
    Snowflake(SnowflakeTarget),
    BigQuery(BigQueryTarget),
}

impl TargetConfig {
    /// The schema mdp's tables go to by default.
    pub fn schema(&self) -> &Identifier {
        match self {
            TargetConfig::DuckDb(target) => &target.schema,
            TargetConfig::Postgres(target) => &target.schema,
            TargetConfig::Snowflake(target) => &target.schema,
            TargetConfig::BigQuery(target) => &target.dataset,
        }
    }

    /// `"duckdb"`, `"postgres"`, `"snowflake"` or `"bigquery"`, as written after `type:`.
    pub fn type_name(&self) -> &'static str {
        match self {
            TargetConfig::DuckDb(_) => "duckdb",
            TargetConfig::Postgres(_) => "postgres",
            TargetConfig::Snowflake(_) => "snowflake",
            TargetConfig::BigQuery(_) => "bigquery",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DuckDbTarget {
    /// The database file, relative to the project directory.
    pub path: PathBuf,
    /// Default: `main`.
    pub schema: Identifier,
    /// Cap on DuckDB's buffer pool, e.g. `512MB` or `2GB` (DuckDB's default: 80% of RAM).
    pub memory_limit: Option<String>,
}

impl DuckDbTarget {
    /// The database file's path, resolved against the project directory.
    pub fn resolved_path(&self, project_root: &Path) -> PathBuf {
        project_root.join(&self.path)
    }
}

fn default_duckdb_schema() -> Identifier {
    "main".parse().expect("a valid identifier")
}

/// A PostgreSQL database. Its `url` may hold a password (from an environment variable): it is never
/// printed, and `Debug` shows it redacted.
#[derive(Clone)]
pub struct PostgresTarget {
    /// `postgres://user@host:port/database`; write it as `${MDP_POSTGRES_URL}` if it holds a password.
    pub url: String,
    /// The password, when not in the url; it takes precedence over one in the url.
    pub password: Option<SecretRef>,
    /// Default: `public`.
    pub schema: Identifier,
}

fn default_postgres_schema() -> Identifier {
    "public".parse().expect("a valid identifier")
}

impl PostgresTarget {
    /// The url to connect with, with the `password` reference (if any) resolved and merged in.
    /// `project_root` resolves `{ file: ... }` references.
    pub fn connection_string(&self, project_root: &Path) -> Result<Secret, ProjectError> {
        self.connection_string_with_env(project_root, &ProcessEnv)
    }

    /// [`PostgresTarget::connection_string`] with an injected environment.
    pub fn connection_string_with_env(&self, project_root: &Path, env: &dyn EnvLookup) -> Result<Secret, ProjectError> {
        let Some(reference) = &self.password else {
            return Ok(Secret::new(self.url.clone()));
        };
        let password = reference.resolve_with_env(project_root, env).map_err(|source| ProjectError::Secret {
            what: format!("the Postgres password ({})", reference.describe()),
            source,
        })?;
        let url = PostgresUrl::parse(&self.url).ok_or(ProjectError::UnusablePostgresUrl)?;
        Ok(Secret::new(url.with_password(&percent_encode(password.expose_secret()))))
    }

    /// The url with any password replaced by `***`, safe to print.
    pub fn display_redacted(&self) -> String {
        match PostgresUrl::parse(&self.url) {
            Some(url) if url.password.is_some() || self.password.is_some() => {
                redact_query_password(url.with_password("***"))
            }
            Some(url) => redact_query_password(url.with_password_unchanged()),
            // Not a url we understand: it could be anything, so show nothing of it.
            None => "<postgres url>".to_owned(),
        }
    }
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PostgresTarget")
            .field("url", &self.display_redacted())
            .field("password", &self.password)
            .field("schema", &self.schema)
            .finish()
    }
}

/// A Snowflake account. Credentials are references (`{ env: NAME }` or `{ file: path }`), never values.
#[derive(Debug, Clone)]
pub struct SnowflakeTarget {
    /// The account identifier: `myorg-myaccount`, or a locator such as `xy12345.eu-west-1`.
    pub account: String,
    pub user: String,
    /// The user's password (service users; Snowflake is retiring single-factor passwords for people).
    pub password: Option<SecretRef>,
    /// The PEM text of the user's unencrypted RSA private key (key-pair authentication), usually
    /// `{ file: ~/.snowflake/mdp_key.p8 }`.
    pub private_key: Option<SecretRef>,
    pub database: String,
    /// The virtual warehouse that runs the queries; the user's default when unset.
    pub warehouse: Option<String>,
    /// The role to use; the user's default when unset.
    pub role: Option<String>,
    /// Default: `public`. mdp quotes every name, so on Snowflake its schemas keep their lower-case
    /// names (`"public"` is not Snowflake's `PUBLIC`).
    pub schema: Identifier,
    /// The API's address when it is not `https://<account>.snowflakecomputing.com` (a private-link
    /// host, or a local stand-in such as fakesnow).
    pub url: Option<String>,
}

/// A BigQuery project. Credentials are references, never values; with neither `keyfile` nor `token`,
/// Google's application default credentials are used (`GOOGLE_APPLICATION_CREDENTIALS`, or what
/// `gcloud auth application-default login` wrote).
#[derive(Debug, Clone)]
pub struct BigQueryTarget {
    /// The project jobs run in and tables live in.
    pub project: String,
    /// The dataset mdp's tables go to by default (BigQuery's schema).
    pub dataset: Identifier,
    /// Where datasets are created and jobs run (`US`, `EU`, `europe-west1`).
    pub location: Option<String>,
    /// A service account's JSON key (or gcloud's credentials file), usually `{ file: path/to/key.json }`.
    pub keyfile: Option<SecretRef>,
    /// An OAuth access token (`{ env: GOOGLE_OAUTH_ACCESS_TOKEN }`), used as is and not renewed.
    pub token: Option<SecretRef>,
    /// The API's address when it is not `https://bigquery.googleapis.com` (a local stand-in).
    pub url: Option<String>,
}

// By hand, reading one key at a time, rather than serde's internally tagged enum: that buffers the whole
// mapping first, and serde_yaml then loses the line and key of any error inside it.
impl<'de> Deserialize<'de> for TargetConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TargetVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum TargetType {
    DuckDb,
    Postgres,
    Snowflake,
    BigQuery,
}

const DUCKDB_KEYS: &[&str] = &["type", "path", "schema", "memory_limit"];
const POSTGRES_KEYS: &[&str] = &["type", "url", "password", "schema"];
const SNOWFLAKE_KEYS: &[&str] =
    &["type", "account", "user", "password", "private_key", "database", "warehouse", "role", "schema", "url"];
const BIGQUERY_KEYS: &[&str] = &["type", "project", "dataset", "location", "keyfile", "token", "url"];
const ALL_KEYS: &[&str] = &[
    "type",
    "path",
    "url",
    "password",
    "schema",
    "memory_limit",
    "account",
    "user",
    "private_key",
    "database",
    "warehouse",
    "role",
    "project",
    "dataset",
    "location",
    "keyfile",
    "token",
];

/// A size DuckDB accepts for `memory_limit`: a number and a unit, e.g. `512MB`, `1.5GB`, `2GiB`.
fn valid_memory_limit(value: &str) -> bool {
    let value = value.trim();
    let digits = value.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    number.parse::<f64>().is_ok_and(|n| n > 0.0)
        && ["KB", "MB", "GB", "TB", "KIB", "MIB", "GIB", "TIB"].contains(&unit.trim().to_ascii_uppercase().as_str())
}

struct TargetVisitor;

/// Every key a target may have, as read (which ones a type takes is checked after `type` is known).
#[derive(Default)]
struct Keys {
    given: Vec<&'static str>,
    path: Option<PathBuf>,
    url: Option<String>,
    password: Option<SecretRef>,
    schema: Option<Identifier>,
    memory_limit: Option<String>,
    account: Option<String>,
    user: Option<String>,
    private_key: Option<SecretRef>,
    database: Option<String>,
    warehouse: Option<String>,
    role: Option<String>,
    project: Option<String>,
    dataset: Option<Identifier>,
    location: Option<String>,
    keyfile: Option<SecretRef>,
    token: Option<SecretRef>,
}

impl<'de> Visitor<'de> for TargetVisitor {
    type Value = TargetConfig;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a target such as { type: duckdb, path: warehouse.duckdb }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TargetConfig, A::Error> {
        let mut target_type = None;
        let mut k = Keys::default();
        while let Some(key) = map.next_key::<String>()? {
            let known = ALL_KEYS.iter().find(|known| **known == key).copied();
            match key.as_str() {
                "type" => target_type = Some(map.next_value::<TargetType>()?),
                "account" => k.account = Some(map.next_value::<String>()?),
                "user" => k.user = Some(map.next_value::<String>()?),
                "private_key" => k.private_key = Some(map.next_value::<SecretRef>()?),
                "database" => k.database = Some(map.next_value::<String>()?),
                "warehouse" => k.warehouse = Some(map.next_value::<String>()?),
                "role" => k.role = Some(map.next_value::<String>()?),
                "path" => k.path = Some(map.next_value::<PathBuf>()?),
                "url" => k.url = Some(map.next_value::<String>()?),
                "password" => k.password = Some(map.next_value::<SecretRef>()?),
                "schema" => k.schema = Some(map.next_value::<Identifier>()?),
                "project" => k.project = Some(map.next_value::<String>()?),
                "dataset" => k.dataset = Some(map.next_value::<Identifier>()?),
                "location" => k.location = Some(map.next_value::<String>()?),
                "keyfile" => k.keyfile = Some(map.next_value::<SecretRef>()?),
                "token" => k.token = Some(map.next_value::<SecretRef>()?),
                "memory_limit" => {
                    let value = map.next_value::<String>()?;
                    if !valid_memory_limit(&value) {
                        return Err(de::Error::invalid_value(
                            de::Unexpected::Str(&value),
                            &"a size such as 512MB or 2GB",
                        ));
                    }
                    k.memory_limit = Some(value);
                }
                other => return Err(de::Error::unknown_field(other, ALL_KEYS)),
            }
            if let Some(known) = known.filter(|known| *known != "type") {
                k.given.push(known);
            }
        }
        let target_type = target_type.ok_or_else(|| de::Error::missing_field("type"))?;
        let allowed = match target_type {
            TargetType::DuckDb => DUCKDB_KEYS,
            TargetType::Postgres => POSTGRES_KEYS,
            TargetType::Snowflake => SNOWFLAKE_KEYS,
            TargetType::BigQuery => BIGQUERY_KEYS,
        };
        if let Some(key) = k.given.iter().find(|key| !allowed.contains(key)) {
            return Err(de::Error::unknown_field(key, allowed));
        }
        match target_type {
            TargetType::Snowflake => {
                if k.password.is_none() && k.private_key.is_none() {
                    return Err(de::Error::custom(
                        "a snowflake target needs `private_key: { file: path/to/key.p8 }` (key-pair \
                         authentication) or `password: { env: NAME }`",
                    ));
                }
                if k.password.is_some() && k.private_key.is_some() {
                    return Err(de::Error::custom("a snowflake target takes `password` or `private_key`, not both"));
                }
                Ok(TargetConfig::Snowflake(SnowflakeTarget {
                    account: k.account.ok_or_else(|| de::Error::missing_field("account"))?,
                    user: k.user.ok_or_else(|| de::Error::missing_field("user"))?,
                    password: k.password,
                    private_key: k.private_key,
                    database: k.database.ok_or_else(|| de::Error::missing_field("database"))?,
                    warehouse: k.warehouse,
                    role: k.role,
                    schema: k.schema.unwrap_or_else(default_postgres_schema),
                    url: k.url,
                }))
            }
            TargetType::BigQuery => {
                if k.keyfile.is_some() && k.token.is_some() {
                    return Err(de::Error::custom("a bigquery target takes `keyfile` or `token`, not both"));
                }
                Ok(TargetConfig::BigQuery(BigQueryTarget {
                    project: k.project.ok_or_else(|| de::Error::missing_field("project"))?,
                    dataset: k.dataset.ok_or_else(|| de::Error::missing_field("dataset"))?,
                    location: k.location,
                    keyfile: k.keyfile,
                    token: k.token,
                    url: k.url,
                }))
            }
            TargetType::DuckDb => Ok(TargetConfig::DuckDb(DuckDbTarget {
                path: k.path.ok_or_else(|| de::Error::missing_field("path"))?,
                schema: k.schema.unwrap_or_else(default_duckdb_schema),
                memory_limit: k.memory_limit,
            })),
            TargetType::Postgres => Ok(TargetConfig::Postgres(PostgresTarget {
                url: k.url.ok_or_else(|| de::Error::missing_field("url"))?,
                password: k.password,
                schema: k.schema.unwrap_or_else(default_postgres_schema),
            })),
        }
    }
}

/// The parts of `postgres://user:password@host:port/database?options` that matter for credentials.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PostgresUrl<'a> {
    /// `postgres://` or `postgresql://`.
    scheme: &'a str,
    pub(crate) user: Option<&'a str>,
    pub(crate) password: Option<&'a str>,
    /// Host, port, database and query: everything after the `@`.
    rest: &'a str,
}

impl<'a> PostgresUrl<'a> {
    pub(crate) fn parse(url: &'a str) -> Option<Self> {
        let scheme_length = ["postgres://", "postgresql://"].into_iter().find(|scheme| url.starts_with(scheme))?.len();
        let (scheme, after_scheme) = url.split_at(scheme_length);
        let authority_end = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
        let (user, password, rest) = match after_scheme[..authority_end].rfind('@') {
            Some(at) => {
                let userinfo = &after_scheme[..at];
                let (user, password) = match userinfo.split_once(':') {
                    Some((user, password)) => (user, Some(password)),
                    None => (userinfo, None),
                };
                (Some(user).filter(|user| !user.is_empty()), password, &after_scheme[at + 1..])
            }
            None => (None, None, after_scheme),
        };
        if rest.is_empty() {
            return None;
        }
        Some(PostgresUrl { scheme, user, password, rest })
    }

    fn with_password(&self, password: &str) -> String {
        format!("{}{}:{password}@{}", self.scheme, self.user.unwrap_or_default(), self.rest)
    }

    fn with_password_unchanged(&self) -> String {
        match self.user {
            Some(user) => format!("{}{user}@{}", self.scheme, self.rest),
            None => format!("{}{}", self.scheme, self.rest),
        }
    }
}

/// libpq also accepts a password as `?password=...`.
fn redact_query_password(url: String) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url;
    };
    let parameters: Vec<&str> = query
        .split('&')
        .map(|parameter| if parameter.starts_with("password=") { "password=***" } else { parameter })
        .collect();
    format!("{base}?{}", parameters.join("&"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, as a url's userinfo requires.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod memory_limit_tests {
    #[test]
    fn sizes_duckdb_accepts() {
        for ok in ["512MB", "1.5GB", "2GiB", "100 mb"] {
            assert!(super::valid_memory_limit(ok), "{ok}");
        }
        for bad in ["", "512", "lots", "-1GB", "0MB", "5 parsecs"] {
            assert!(!super::valid_memory_limit(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str, password: Option<SecretRef>) -> PostgresTarget {
        PostgresTarget { url: url.to_owned(), password, schema: default_postgres_schema() }
    }

    fn env(name: &str) -> Option<String> {
        (name == "PGPASSWORD").then(|| "p@ss:w/rd".to_owned())
    }

    #[test]
    fn redacts_passwords_wherever_they_are() {
        let check = |url: &str, password: Option<SecretRef>, expected: &str| {
            assert_eq!(target(url, password).display_redacted(), expected, "{url}");
        };
        check("postgres://mdp:hunter2@db:5432/analytics", None, "postgres://mdp:***@db:5432/analytics");
        check("postgres://mdp@db/analytics", None, "postgres://mdp@db/analytics");
        check(
            "postgres://mdp@db/analytics",
            Some(SecretRef::Env("PGPASSWORD".into())),
            "postgres://mdp:***@db/analytics",
        );
        check(
            "postgresql://db/analytics?sslmode=require&password=x",
            None,
            "postgresql://db/analytics?sslmode=require&password=***",
        );
        check("postgres://u:a@b@db/x", None, "postgres://u:***@db/x");
        check("host=db password=hunter2", None, "<postgres url>");
        let debug = format!("{:?}", target("postgres://mdp:hunter2@db/x", None));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn connection_string_merges_the_encoded_password() {
        let root = Path::new(".");
        let with_reference = target("postgres://mdp:old@db:5432/analytics", Some(SecretRef::Env("PGPASSWORD".into())));
        let connection = with_reference.connection_string_with_env(root, &env).unwrap();
        assert_eq!(connection.expose_secret(), "postgres://mdp:p%40ss%3Aw%2Frd@db:5432/analytics");

        let plain = target("postgres://mdp:inline@db/x", None);
        assert_eq!(plain.connection_string_with_env(root, &env).unwrap().expose_secret(), "postgres://mdp:inline@db/x");

        let missing = target("postgres://mdp@db/x", Some(SecretRef::Env("NOPE".into())));
        let error = missing.connection_string_with_env(root, &env).unwrap_err().to_string();
        assert_eq!(error, "the Postgres password (env NOPE): environment variable NOPE is not set");
    }

    #[test]
    fn parses_the_userinfo() {
        let url = PostgresUrl::parse("postgres://mdp:pw@db:5432/x").unwrap();
        assert_eq!((url.user, url.password), (Some("mdp"), Some("pw")));
        let url = PostgresUrl::parse("postgresql://db/x?user=a").unwrap();
        assert_eq!((url.user, url.password), (None, None));
        assert!(PostgresUrl::parse("mysql://db/x").is_none());
        assert!(PostgresUrl::parse("postgres://").is_none());
    }
}
