//! The mdp project file, `mdp.yml`: its typed configuration, `${VAR}` interpolation, and validation
//! that reports every problem at once with `file:line:column: key: message`.
//!
//! Loading goes through fixed phases, each in its own module:
//! raw text → `interpolate` `${VAR}` line by line → serde into the typed [`ProjectConfig`] (newtypes
//! reject bad values with their own message) → cross-field `validate` → [`Project`]. Problems become
//! [`Diagnostic`]s; positions of those found after parsing come from `locate`, a small
//! indentation-aware scan of the raw text.
//!
//! **Architecture invariant:** this crate reads files and environment variables, and writes files only
//! in [`scaffold`]. It never connects to anything: no network, no database. Secrets are only ever
//! *referenced* in configuration ([`SecretRef`]); resolved values are [`Secret`]s, which print as `***`.
//!
//! ```
//! use std::path::Path;
//!
//! let yaml = "
//! name: demo
//! reporting: { currency: EUR, timezone: Europe/Berlin }
//! warehouse:
//!   default: local
//!   targets:
//!     local: { type: duckdb, path: warehouse.duckdb }
//! sources:
//!   - platform: meta_ads
//!     accounts: [\"act_1\"]
//!     lookback_days: ${LOOKBACK:-14}
//!     credentials:
//!       access_token: { env: META_ACCESS_TOKEN }
//! ";
//! let config = mdp_project::parse(Path::new("mdp.yml"), yaml, &|_: &str| None).unwrap();
//! assert_eq!(config.sources[0].name.as_str(), "meta_ads");
//! assert_eq!(config.sources[0].lookback_days, 14);
//! assert_eq!(config.sources[0].api_version, "v27.0");
//! ```

pub mod alerts;
pub mod checks;
mod config;
mod diagnostic;
mod env;
mod error;
mod interpolate;
use mdp_core::locate;
mod project;
mod scaffold;
mod secret;
mod target;
mod validate;
mod values;

pub use config::{JobConfig, OAuthUrls, ProjectConfig, ReportingConfig, ScheduleConfig, SourceConfig, WarehouseConfig};
pub use diagnostic::Diagnostic;
pub use env::{EnvLookup, ProcessEnv};
pub use error::ProjectError;
pub use project::{parse, Project, CONNECTORS_DIR, PROJECT_FILE_NAME};
pub use scaffold::{project_name_for, scaffold};
pub use secret::{Secret, SecretError, SecretRef};
pub use target::{BigQueryTarget, DuckDbTarget, PostgresTarget, SnowflakeTarget, TargetConfig};
pub use validate::LOOKBACK_DAYS_RANGE;
pub use values::{Currency, Identifier, InvalidCurrency, InvalidIdentifier, InvalidTimeZone};

#[cfg(test)]
mod tests;
