//! Placeholder: this platform's API imitation is being written.

use std::sync::Arc;

use axum::Router;

use crate::Sandbox;

pub fn routes() -> Router<Arc<Sandbox>> {
    Router::new()
}
