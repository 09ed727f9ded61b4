//! Meta Marketing API (the Graph API's ad account edges and `/insights`), one file per role: `api.rs`
//! (requests and cursor pages), `classify.rs` (the Graph API's error envelope), `rows.rs` (typed insights
//! rows, entity rows), `connector.rs` (what each stream reads, the [`Source`](crate::Source)).

mod api;
mod classify;
mod connector;
mod rows;

pub use connector::{MetaAds, TokenInfo};
pub use mdp_core::platforms::meta_ads::{
    normalize_account_id, AD_DAILY, DEFAULT_CONVERSION_ACTION_TYPES, KIND, STREAMS,
};

const PLATFORM: mdp_core::Platform = mdp_core::Platform::MetaAds;
