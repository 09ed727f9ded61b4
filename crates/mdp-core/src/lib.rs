//! The shared vocabulary of mdp: which ad platforms exist and what each one's connector needs and
//! reads ([`REGISTRY`]: credentials, typed options, defaults, streams), what a date window is, how a run
//! is named, the status words of runs and tasks, and what a task of an orchestrated run is.
//!
//! Every other mdp crate depends on this one, so it stays small and boring.
//!
//! **Architecture invariant:** `mdp-core` does no I/O. It never reads files or the environment, never
//! touches the network or a database, and never looks at the clock except through [`RunId::new`] (whose
//! UUID v7 embeds a timestamp). Anything that needs "today" takes it as an argument.
//!
//! ```
//! use mdp_core::{DateWindow, Platform};
//! use chrono::NaiveDate;
//!
//! let platform: Platform = "meta_ads".parse().unwrap();
//! assert_eq!(platform, Platform::MetaAds);
//!
//! let january = DateWindow::new(
//!     NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
//!     NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
//! ).unwrap();
//! assert_eq!(january.days(), 31);
//! assert_eq!(january.split(7).len(), 5);
//! assert_eq!(january.to_string(), "2026-01-01..2026-01-31");
//! ```

mod date_window;
pub mod google_key;
pub mod jwt;
pub mod locate;
mod platform;
pub mod platforms;
mod run_id;
mod source_kind;
pub mod status;
pub mod task;

pub use date_window::{DateWindow, DateWindowError};
pub use platform::{DeclaredPlatform, Platform, UnknownPlatformError};
pub use platforms::{
    declared, kind, optional_fields, register, DeclaredOptions, GoogleAdsOptions, GoogleConversionMetric,
    LinkedInAdsOptions, MetaAdsOptions, OptionError, SourceOptions, TikTokAdsOptions, REGISTRY,
};
pub use run_id::RunId;
pub use source_kind::{
    ApiVersion, CredentialSpec, OAuthSpec, OptionSpec, SourceKind, StreamKind, StreamSpec, TokenGrant, VersionWatch,
    ACCESS_TOKEN, ACCOUNTS, ADS, AD_GROUPS, CAMPAIGNS, CLIENT_ID, CLIENT_ID_SPEC, CLIENT_SECRET, CLIENT_SECRET_SPEC,
    REFRESH_TOKEN, REFRESH_TOKEN_SPEC, SERVICE_ACCOUNT_KEY, SUNSET_WARNING_DAYS,
};
pub use status::{RunStatus, TaskState, UnknownWordError};
pub use task::{TaskId, TaskKind};

/// The version of mdp, as written in the workspace's Cargo.toml.
pub const MDP_VERSION: &str = env!("CARGO_PKG_VERSION");
