//! `profiles.yml`: which warehouse a dbt project runs on.
//!
//! Found like dbt-core finds it: `--profiles-dir`, then `DBT_PROFILES_DIR`, then the project folder,
//! then `~/.dbt/`. Strings may use `{{ env_var('NAME') }}`; passwords are taken from there and never
//! written to artifacts or logs.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Result, TransformError};

/// The warehouse a target points at.
#[derive(Clone)]
pub enum TargetKind {
    DuckDb {
        path: PathBuf,
    },
    Postgres {
        host: String,
        port: u16,
        user: String,
        password: Option<String>,
        dbname: String,
        sslmode: Option<String>,
        /// dbt-postgres' `sslrootcert`: the CA file that `verify-ca` / `verify-full` trust.
        sslrootcert: Option<String>,
    },
    /// A warehouse given directly (mdp.yml's target, when the project has no profiles.yml).
    Preset(mdp_warehouse::ConnectOptions),
}

impl std::fmt::Debug for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetKind::DuckDb { path } => write!(f, "duckdb {}", path.display()),
            TargetKind::Postgres { host, port, user, dbname, .. } => {
                write!(f, "postgres {user}@{host}:{port}/{dbname}")
            }
            TargetKind::Preset(mdp_warehouse::ConnectOptions::DuckDb { path, .. }) => {
                write!(f, "duckdb {}", path.display())
            }
            TargetKind::Preset(mdp_warehouse::ConnectOptions::Postgres { display, .. }) => write!(f, "{display}"),
            TargetKind::Preset(mdp_warehouse::ConnectOptions::Snowflake { config, .. }) => {
                write!(f, "snowflake {}/{} as {}", config.account, config.database, config.user)
            }
            TargetKind::Preset(mdp_warehouse::ConnectOptions::BigQuery { config, .. }) => {
                write!(f, "bigquery {}.{}", config.project, config.dataset)
            }
        }
    }
}

/// A resolved target of a profile.
#[derive(Debug, Clone)]
pub struct Target {
    pub profile_name: String,
    pub name: String,
    pub schema: String,
    pub database: String,
    pub threads: usize,
    pub kind: TargetKind,
}

impl Target {
    /// `duckdb`, `postgres`, `snowflake` or `bigquery`: dbt's adapter type, the name of the target's dialect.
    pub fn type_name(&self) -> &'static str {
        self.dialect().name()
    }

    /// The SQL dialect of the target's warehouse, known without connecting (the parser and compiler
    /// quote identifiers with it).
    pub fn dialect(&self) -> &'static dyn mdp_warehouse::Dialect {
        match &self.kind {
            TargetKind::DuckDb { .. } => &mdp_warehouse::DuckDbDialect,
            TargetKind::Postgres { .. } => &mdp_warehouse::PostgresDialect,
            TargetKind::Preset(options) => options.dialect(),
        }
    }

    /// How to connect. DuckDB paths are relative to the current directory, as in dbt-duckdb.
    pub fn connect_options(&self) -> mdp_warehouse::ConnectOptions {
        match &self.kind {
            TargetKind::DuckDb { path } => mdp_warehouse::ConnectOptions::duckdb(path.clone()),
            TargetKind::Postgres { host, port, user, password, dbname, sslmode, sslrootcert } => {
                let q = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
                let mut conn = format!("host={} port={port} user={} dbname={}", q(host), q(user), q(dbname));
                if let Some(p) = password {
                    conn.push_str(&format!(" password={}", q(p)));
                }
                if let Some(mode) = sslmode {
                    conn.push_str(&format!(" sslmode={}", q(mode)));
                }
                if let Some(ca) = sslrootcert {
                    conn.push_str(&format!(" sslrootcert={}", q(ca)));
                }
                mdp_warehouse::ConnectOptions::postgres(conn, format!("postgres {user}@{host}:{port}/{dbname}"))
            }
            TargetKind::Preset(options) => options.clone(),
        }
    }

    /// The `target` variable of the Jinja context (no secrets).
    pub fn to_context(&self) -> Value {
        let mut m = serde_json::json!({
            "profile_name": self.profile_name,
            "name": self.name,
            "target_name": self.name,
            "schema": self.schema,
            "database": self.database,
            "type": self.type_name(),
            "threads": self.threads,
        });
        if let TargetKind::Postgres { host, port, user, .. } = &self.kind {
            m["host"] = Value::from(host.clone());
            m["port"] = Value::from(*port);
            m["user"] = Value::from(user.clone());
        }
        if let TargetKind::DuckDb { path } = &self.kind {
            m["path"] = Value::from(path.display().to_string());
        }
        if let TargetKind::Preset(mdp_warehouse::ConnectOptions::Snowflake { config, .. }) = &self.kind {
            m["account"] = Value::from(config.account.clone());
            m["user"] = Value::from(config.user.clone());
            m["warehouse"] = config.warehouse.clone().map(Value::from).unwrap_or(Value::Null);
            m["role"] = config.role.clone().map(Value::from).unwrap_or(Value::Null);
        }
        if let TargetKind::Preset(mdp_warehouse::ConnectOptions::BigQuery { config, .. }) = &self.kind {
            // dbt-bigquery's target: `project`/`dataset` beside `database`/`schema`.
            m["project"] = Value::from(config.project.clone());
            m["dataset"] = Value::from(config.dataset.clone());
            m["location"] = config.location.clone().map(Value::from).unwrap_or(Value::Null);
        }
        m
    }
}

/// Where `profiles.yml` is looked for, in order.
pub fn profile_search_dirs(explicit: Option<&Path>, project_root: &Path) -> Vec<PathBuf> {
    if let Some(dir) = explicit {
        return vec![dir.to_path_buf()];
    }
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("DBT_PROFILES_DIR") {
        return vec![PathBuf::from(dir)];
    }
    dirs.push(project_root.to_path_buf());
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".dbt"));
    }
    dirs
}

/// Find `profiles.yml`, or `None` when no search folder has one.
pub fn find_profiles(explicit: Option<&Path>, project_root: &Path) -> Option<PathBuf> {
    profile_search_dirs(explicit, project_root).into_iter().map(|d| d.join("profiles.yml")).find(|p| p.is_file())
}

/// Load `profile` from `file` and resolve `target` (or the profile's default target).
/// `render` renders `{{ env_var(...) }}` in string values.
pub fn load_target(
    file: &Path,
    profile: &str,
    target: Option<&str>,
    render: &dyn Fn(&str) -> Result<String>,
) -> Result<Target> {
    let text = std::fs::read_to_string(file).map_err(|e| TransformError::io(file, e))?;
    let root = crate::project::yaml_to_json(file, &text)?;
    let Some(profile_value) = root.get(profile) else {
        let known: Vec<&str> = root
            .as_object()
            .map(|m| m.keys().map(String::as_str).filter(|k| *k != "config").collect())
            .unwrap_or_default();
        return Err(TransformError::config(
            file,
            format!("no profile named `{profile}` (profiles here: {})", known.join(", ")),
        ));
    };
    let default_target = profile_value.get("target").and_then(Value::as_str).map(render).transpose()?;
    let target_name = target.map(str::to_string).or(default_target).unwrap_or_else(|| "dev".to_string());
    let outputs = profile_value
        .get("outputs")
        .and_then(Value::as_object)
        .ok_or_else(|| TransformError::config(file, format!("profile `{profile}` has no `outputs:`")))?;
    let Some(Value::Object(out)) = outputs.get(&target_name) else {
        let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
        return Err(TransformError::config(
            file,
            format!("profile `{profile}` has no target `{target_name}` (targets: {})", known.join(", ")),
        ));
    };
    let key = |k: &str| -> Result<Option<String>> {
        match out.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => render(s).map(Some),
            Some(other) => Ok(Some(other.to_string())),
        }
    };
    let where_ = |k: &str| format!("profile `{profile}`, target `{target_name}`: {k}");
    let ty = key("type")?.ok_or_else(|| {
        TransformError::config(
            file,
            format!("{} is required (duckdb, postgres, snowflake or bigquery)", where_("type")),
        )
    })?;
    let threads = key("threads")?
        .map(|t| t.parse::<usize>())
        .transpose()
        .map_err(|_| TransformError::config(file, format!("{} must be a whole number", where_("threads"))))?
        .unwrap_or(1)
        .max(1);
    let (kind, schema, database) = match ty.as_str() {
        "duckdb" => {
            let path = key("path")?.unwrap_or_else(|| ":memory:".to_string());
            if path == ":memory:" || path.starts_with("md:") {
                return Err(TransformError::config(
                    file,
                    format!("{}: `{path}` is not supported; give a file path (e.g. dev.duckdb)", where_("path")),
                ));
            }
            let path = PathBuf::from(path);
            let database = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "main".into());
            let database = key("database")?.unwrap_or(database);
            (TargetKind::DuckDb { path }, key("schema")?.unwrap_or_else(|| "main".to_string()), database)
        }
        "postgres" => {
            let required = |k: &str| -> Result<String> {
                key(k)?.ok_or_else(|| TransformError::config(file, format!("{} is required", where_(k))))
            };
            let port = key("port")?
                .unwrap_or_else(|| "5432".into())
                .parse::<u16>()
                .map_err(|_| TransformError::config(file, format!("{} must be a port number", where_("port"))))?;
            let dbname = key("dbname")?
                .or(key("database")?)
                .ok_or_else(|| TransformError::config(file, format!("{} is required", where_("dbname"))))?;
            let kind = TargetKind::Postgres {
                host: required("host")?,
                port,
                user: required("user")?,
                password: key("password")?.or(key("pass")?),
                dbname: dbname.clone(),
                sslmode: key("sslmode")?,
                sslrootcert: key("sslrootcert")?,
            };
            (kind, required("schema")?, dbname)
        }
        "snowflake" => {
            let required = |k: &str| -> Result<String> {
                key(k)?.ok_or_else(|| TransformError::config(file, format!("{} is required", where_(k))))
            };
            let refuse = |k: &str, why: &str| TransformError::config(file, format!("{}: {why}", where_(k)));
            if let Some(authenticator) = key("authenticator")? {
                if !matches!(authenticator.to_ascii_lowercase().as_str(), "snowflake" | "snowflake_jwt") {
                    return Err(refuse(
                        "authenticator",
                        &format!(
                            "`{authenticator}` is not supported; mdp signs in with a password or a key pair \
                                  (private_key_path)"
                        ),
                    ));
                }
            }
            if key("private_key_passphrase")?.is_some() {
                return Err(refuse(
                    "private_key_passphrase",
                    "encrypted private keys are not supported; write the key unencrypted with `openssl pkcs8 -in \
                     key.p8 -out key.pem` (keep that file private) and give its path as private_key_path",
                ));
            }
            let auth = if let Some(path) = key("private_key_path")? {
                let pem = std::fs::read_to_string(&path).map_err(|e| {
                    refuse("private_key_path", &format!("cannot read the private key file {path}: {e}"))
                })?;
                mdp_warehouse::SnowflakeAuth::KeyPair(pem)
            } else if let Some(pem) = key("private_key")? {
                mdp_warehouse::SnowflakeAuth::KeyPair(pem)
            } else if let Some(password) = key("password")? {
                mdp_warehouse::SnowflakeAuth::Password(password)
            } else {
                return Err(refuse("password", "a snowflake target needs a password or a private_key_path"));
            };
            // dbt-snowflake's `host`/`port`/`protocol` point at another address (a proxy, a stand-in).
            let base_url = match key("host")? {
                Some(host) => {
                    let protocol = key("protocol")?.unwrap_or_else(|| "https".into());
                    let port = key("port")?.map(|p| format!(":{p}")).unwrap_or_default();
                    Some(format!("{protocol}://{host}{port}"))
                }
                None => None,
            };
            let database = required("database")?;
            let schema = required("schema")?;
            let config = mdp_warehouse::SnowflakeConfig {
                account: required("account")?,
                user: required("user")?,
                auth,
                database: database.clone(),
                schema: Some(schema.clone()),
                warehouse: key("warehouse")?,
                role: key("role")?,
                base_url,
            };
            (TargetKind::Preset(mdp_warehouse::ConnectOptions::snowflake(config)), schema, database)
        }
        "bigquery" => {
            let refuse = |k: &str, why: &str| TransformError::config(file, format!("{}: {why}", where_(k)));
            let project = key("project")?
                .or(key("database")?)
                .ok_or_else(|| TransformError::config(file, format!("{} is required", where_("project"))))?;
            let dataset = key("dataset")?
                .or(key("schema")?)
                .ok_or_else(|| TransformError::config(file, format!("{} is required", where_("dataset"))))?;
            // mdp's own key: BigQuery's address, for a local stand-in (Google's client libraries call it
            // apiEndpoint); dbt-bigquery has none.
            let base_url = key("api_endpoint")?;
            let method = key("method")?.unwrap_or_else(|| "oauth".into());
            let auth = match method.as_str() {
                "service-account" => {
                    let path = key("keyfile")?
                        .ok_or_else(|| refuse("keyfile", "method service-account needs the key file's path"))?;
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| refuse("keyfile", &format!("cannot read the key file {path}: {e}")))?;
                    mdp_warehouse::BigQueryAuth::Credentials(text)
                }
                "service-account-json" => mdp_warehouse::BigQueryAuth::Credentials(
                    key("keyfile_json")?
                        .ok_or_else(|| refuse("keyfile_json", "method service-account-json needs the key's fields"))?,
                ),
                "oauth-secrets" => match (key("token")?, key("refresh_token")?) {
                    (Some(token), _) => mdp_warehouse::BigQueryAuth::AccessToken(token),
                    (None, Some(refresh_token)) => {
                        let mut user = serde_json::json!({
                            "type": "authorized_user", "refresh_token": refresh_token,
                            "client_id": key("client_id")?, "client_secret": key("client_secret")?,
                        });
                        if let Some(uri) = key("token_uri")? {
                            user["token_uri"] = uri.into();
                        }
                        mdp_warehouse::BigQueryAuth::Credentials(user.to_string())
                    }
                    (None, None) => return Err(refuse("token", "method oauth-secrets needs a token or a refresh_token")),
                },
                // gcloud's application default credentials, or none for a stand-in at its own address.
                "oauth" if base_url.is_some() => mdp_warehouse::BigQueryAuth::None,
                "oauth" => mdp_warehouse::BigQueryAuth::application_default(|name| std::env::var(name).ok())
                    .map_err(|e| refuse("method", &e.to_string()))?,
                other => {
                    return Err(refuse(
                        "method",
                        &format!("`{other}` is not one of oauth, service-account, service-account-json, oauth-secrets"),
                    ))
                }
            };
            let mut config = mdp_warehouse::BigQueryConfig::new(&project, &dataset, auth);
            config.location = key("location")?;
            config.base_url = base_url;
            if let Some(seconds) = key("job_execution_timeout_seconds")? {
                let seconds = seconds
                    .parse::<u64>()
                    .map_err(|_| refuse("job_execution_timeout_seconds", "must be a whole number of seconds"))?;
                config.job_timeout = std::time::Duration::from_secs(seconds);
            }
            (TargetKind::Preset(mdp_warehouse::ConnectOptions::bigquery(config)), dataset, project)
        }
        other => {
            return Err(TransformError::config(
                file,
                format!(
                    "{}: adapter type `{other}` is not supported; mdp runs duckdb, postgres, snowflake and bigquery targets",
                    where_("type")
                ),
            ))
        }
    };
    Ok(Target { profile_name: profile.to_string(), name: target_name, schema, database, threads, kind })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(outputs: &str) -> Result<Target> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("profiles.yml");
        std::fs::write(&file, format!("p:\n  target: snow\n  outputs:\n    snow:\n{outputs}")).unwrap();
        load_target(&file, "p", None, &|s: &str| Ok(s.to_string()))
    }

    #[test]
    fn a_snowflake_profile_reads_as_dbt_snowflake_writes_it() {
        let t = target(
            "      type: snowflake\n      account: xy12345.eu-west-1\n      user: DBT\n      password: pw\n      \
             database: ANALYTICS\n      warehouse: TRANSFORMING\n      schema: MARTS\n      role: DBT_ROLE\n      \
             host: 127.0.0.1\n      port: 18616\n      protocol: http\n      threads: 4\n",
        )
        .unwrap();
        assert_eq!(
            (t.type_name(), t.database.as_str(), t.schema.as_str(), t.threads),
            ("snowflake", "ANALYTICS", "MARTS", 4)
        );
        let mdp_warehouse::ConnectOptions::Snowflake { config, .. } = t.connect_options() else {
            panic!("not snowflake")
        };
        assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:18616"));
        assert_eq!((config.warehouse.as_deref(), config.role.as_deref()), (Some("TRANSFORMING"), Some("DBT_ROLE")));
        assert!(matches!(config.auth, mdp_warehouse::SnowflakeAuth::Password(ref p) if p == "pw"));
        let context = t.to_context();
        assert_eq!(context["account"], "xy12345.eu-west-1");
        assert!(!context.to_string().contains("pw"), "no secret in the Jinja context");
        assert!(!format!("{:?}", t.kind).contains("pw"), "nor in Debug");
    }

    #[test]
    fn snowflake_sign_ins_mdp_cannot_do_are_refused_with_what_to_do() {
        let base = "      type: snowflake\n      account: a\n      user: u\n      database: d\n      schema: s\n";
        let error = |extra: &str| target(&format!("{base}{extra}")).unwrap_err().to_string();
        assert!(error("      authenticator: externalbrowser\n").contains("`externalbrowser` is not supported"));
        assert!(error("      private_key_path: k.p8\n      private_key_passphrase: x\n").contains("openssl pkcs8"));
        assert!(error("      private_key_path: /nonexistent/k.p8\n").contains("cannot read the private key file"));
        assert!(error("").contains("needs a password or a private_key_path"));
    }

    #[test]
    fn a_bigquery_profile_reads_as_dbt_bigquery_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("sa.json");
        std::fs::write(&key, "{}").unwrap();
        let t = target(&format!(
            "      type: bigquery\n      method: service-account\n      project: my-proj\n      dataset: marts\n      \
             keyfile: {}\n      location: EU\n      job_execution_timeout_seconds: 300\n      threads: 8\n",
            key.display()
        ))
        .unwrap();
        assert_eq!(
            (t.type_name(), t.database.as_str(), t.schema.as_str(), t.threads),
            ("bigquery", "my-proj", "marts", 8)
        );
        let mdp_warehouse::ConnectOptions::BigQuery { config, .. } = t.connect_options() else {
            panic!("not bigquery")
        };
        assert_eq!((config.location.as_deref(), config.job_timeout.as_secs()), (Some("EU"), 300));
        assert!(matches!(config.auth, mdp_warehouse::BigQueryAuth::Credentials(ref text) if text == "{}"));
        assert_eq!(t.to_context()["dataset"], "marts");
        let error = |extra: &str| {
            target(&format!("      type: bigquery\n      project: p\n      dataset: d\n{extra}"))
                .unwrap_err()
                .to_string()
        };
        assert!(error("      method: service-account\n").contains("needs the key file's path"));
        assert!(error("      method: external-oauth\n").contains("`external-oauth` is not one of"));
        assert!(error("      method: oauth-secrets\n").contains("needs a token or a refresh_token"));
        let stand_in = target(
            "      type: bigquery\n      project: p\n      schema: d\n      api_endpoint: http://127.0.0.1:9050\n",
        )
        .unwrap();
        let mdp_warehouse::ConnectOptions::BigQuery { config, .. } = stand_in.connect_options() else { panic!() };
        assert!(matches!(config.auth, mdp_warehouse::BigQueryAuth::None), "a stand-in takes no credentials");
        assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:9050"));
    }
}
