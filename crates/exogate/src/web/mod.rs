//! The web app and JSON API: server-rendered pages, `/api/v1/`, the consent callback,
//! `/healthz` and `/metrics`.

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// Every web and API route.
pub fn routes(app: Arc<App>) -> Router {
    Router::new().with_state(app)
}
