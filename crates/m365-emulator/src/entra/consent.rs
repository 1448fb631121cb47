//! Admin consent, v1 `GET /{tenant}/adminconsent` and v2 `GET /{tenant}/v2.0/adminconsent`
//! (reference §2).

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
