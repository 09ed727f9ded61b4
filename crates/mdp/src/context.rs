//! What most commands start from: the loaded project and its selected warehouse target.

use anyhow::{Context, Result};
use mdp_orchestrator::RunSession;
use mdp_project::{Project, TargetConfig};
use mdp_warehouse::{connect, Access, ConnectOptions, Warehouse};

use crate::cli::GlobalArgs;

pub struct ProjectContext {
    pub project: Project,
    pub target_name: String,
    pub options: ConnectOptions,
}

impl ProjectContext {
    /// Load `mdp.yml` from `--project-dir` and resolve `--target` (or the default target).
    pub fn load(global: &GlobalArgs) -> Result<ProjectContext> {
        Self::load_with_env(global, &mdp_project::ProcessEnv)
    }

    /// [`ProjectContext::load`] with `${VAR}` values from `env` (the demo supplies the sandbox's address).
    pub fn load_with_env(global: &GlobalArgs, env: &dyn mdp_project::EnvLookup) -> Result<ProjectContext> {
        let project = Project::load_with_env(&global.project_dir, env)?;
        let (target_name, target) = project.target(global.target.as_deref())?;
        let options = connect_options(&project, target)
            .with_context(|| format!("cannot use warehouse target '{target_name}'"))?;
        Ok(ProjectContext { target_name: target_name.to_string(), options, project })
    }

    /// Start a writing run: take the writer lock, migrate metadata, record the run.
    pub async fn start_run(&self, command: &str) -> Result<RunSession> {
        let session = RunSession::start(&self.options, command)
            .await
            .with_context(|| format!("cannot open warehouse target '{}' for writing", self.target_name))?;
        if let Some(stale) = &session.recovered_stale_lock {
            eprintln!(
                "warning: found a stale writer lock: run {} (`mdp {}`, pid {} on {}, since {}) stopped without \
                 finishing; it is now marked failed in the run history",
                stale.run_id,
                stale.command,
                stale.pid,
                stale.host,
                stale.since.format("%Y-%m-%d %H:%M:%S UTC")
            );
        }
        Ok(session)
    }

    /// Open the warehouse for reading only.
    pub async fn open_reader(&self) -> Result<Box<dyn Warehouse>> {
        let opened = connect(&self.options, Access::Read)
            .await
            .with_context(|| format!("cannot open warehouse target '{}'", self.target_name))?;
        Ok(opened.warehouse)
    }
}

/// Turn a project target into connection options (resolving the Postgres password, if any).
pub fn connect_options(project: &Project, target: &TargetConfig) -> Result<ConnectOptions> {
    let metadata_schema = project.config.warehouse.metadata_schema.as_str();
    Ok(match target {
        TargetConfig::DuckDb(duckdb) => {
            let options =
                ConnectOptions::duckdb(duckdb.resolved_path(&project.root)).with_metadata_schema(metadata_schema);
            match &duckdb.memory_limit {
                Some(limit) => options.with_memory_limit(limit),
                None => options,
            }
        }
        TargetConfig::Postgres(postgres) => {
            let connection_string = postgres.connection_string(&project.root)?;
            ConnectOptions::postgres(connection_string.expose_secret(), postgres.display_redacted())
                .with_metadata_schema(metadata_schema)
        }
        TargetConfig::Snowflake(snowflake) => {
            let secret = |reference: &mdp_project::SecretRef, what: &str| {
                reference.resolve(&project.root).map_err(|source| mdp_project::ProjectError::Secret {
                    what: format!("the Snowflake {what} ({})", reference.describe()),
                    source,
                })
            };
            let auth = match (&snowflake.private_key, &snowflake.password) {
                (Some(key), _) => {
                    mdp_warehouse::SnowflakeAuth::KeyPair(secret(key, "private key")?.expose_secret().to_string())
                }
                (None, Some(password)) => {
                    mdp_warehouse::SnowflakeAuth::Password(secret(password, "password")?.expose_secret().to_string())
                }
                (None, None) => anyhow::bail!("the Snowflake target has neither a private_key nor a password"),
            };
            ConnectOptions::snowflake(mdp_warehouse::SnowflakeConfig {
                account: snowflake.account.clone(),
                user: snowflake.user.clone(),
                auth,
                database: snowflake.database.clone(),
                schema: Some(snowflake.schema.as_str().to_string()),
                warehouse: snowflake.warehouse.clone(),
                role: snowflake.role.clone(),
                base_url: snowflake.url.clone(),
            })
            .with_metadata_schema(metadata_schema)
        }
        TargetConfig::BigQuery(bigquery) => {
            let secret = |reference: &mdp_project::SecretRef, what: &str| {
                reference.resolve(&project.root).map_err(|source| mdp_project::ProjectError::Secret {
                    what: format!("the BigQuery {what} ({})", reference.describe()),
                    source,
                })
            };
            let auth = match (&bigquery.keyfile, &bigquery.token, &bigquery.url) {
                (Some(keyfile), _, _) => {
                    mdp_warehouse::BigQueryAuth::Credentials(secret(keyfile, "keyfile")?.expose_secret().to_string())
                }
                (None, Some(token), _) => {
                    mdp_warehouse::BigQueryAuth::AccessToken(secret(token, "token")?.expose_secret().to_string())
                }
                // A local stand-in (an address of its own, no credentials) takes none.
                (None, None, Some(_)) => mdp_warehouse::BigQueryAuth::None,
                (None, None, None) => {
                    mdp_warehouse::BigQueryAuth::application_default(|name| std::env::var(name).ok())?
                }
            };
            let mut config = mdp_warehouse::BigQueryConfig::new(&bigquery.project, bigquery.dataset.as_str(), auth);
            config.location = bigquery.location.clone();
            config.base_url = bigquery.url.clone();
            ConnectOptions::bigquery(config).with_metadata_schema(metadata_schema)
        }
    })
}
