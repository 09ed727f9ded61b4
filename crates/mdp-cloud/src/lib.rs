//! Thin clients for cloud warehouses' HTTP APIs: part of mdp's warehouse layer, kept apart from the
//! crate that embeds DuckDB so that it builds and tests without it.
//!
//! - [`snowflake`]: Snowflake's connector protocol (what its official drivers speak): sign in with a
//!   password or a key-pair JWT (`/session/v1/login-request`), run one statement per request with
//!   bindings (`/queries/v1/query-request`), follow long-running queries, and read results (Arrow IPC
//!   or JSON row sets, inline or in chunks) as Arrow record batches with exact decimals.
//! - [`split`]: SQL text split into statements, for APIs that take one at a time.
//! - [`text`]: values as exact text both ways (what loaders send, the decimals APIs answer with).
//!
//! **Architecture invariant:** nothing here knows about tables mdp owns, platforms or projects: it
//! takes SQL and settings and gives back batches, like the adapters of `mdp-warehouse` that use it.
//! Secrets (passwords, private keys, session tokens) are never logged nor put in an error message.

pub mod bigquery;
pub mod error;
pub mod snowflake;
pub mod split;
pub mod text;

pub use error::CloudError;
pub use split::split_statements;
