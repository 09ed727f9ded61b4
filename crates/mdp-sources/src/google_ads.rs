//! Google Ads API (reports through `GoogleAdsService.SearchStream`), one file per role:
//! `api.rs` (the request and the answer's batches), `classify.rs` (Google's error envelope), `rows.rs`
//! (typed report rows, entity rows), `connector.rs` (the queries each stream runs, the [`Source`](crate::Source)).

mod api;
mod classify;
mod connector;
mod rows;

pub use connector::GoogleAds;
pub use mdp_core::platforms::google_ads::{AD_DAILY, CAMPAIGN_DAILY, KIND, STREAMS};

const PLATFORM: mdp_core::Platform = mdp_core::Platform::GoogleAds;
