//! TikTok API for Business (`/open_api/{version}/…`), one file per role: `api.rs` (requests, pages and the
//! `code` envelope), `rows.rs` (typed report rows, entity rows), `connector.rs` (what each stream reads,
//! the [`Source`](crate::Source)).

mod api;
mod connector;
mod rows;

pub use connector::TikTokAds;
pub use mdp_core::platforms::tiktok_ads::{AD_DAILY, KIND, STREAMS};

const PLATFORM: mdp_core::Platform = mdp_core::Platform::TikTokAds;
