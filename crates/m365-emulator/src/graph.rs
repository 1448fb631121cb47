//! Microsoft Graph: `GET /v1.0/organization`.

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
