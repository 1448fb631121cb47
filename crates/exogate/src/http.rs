//! The whole HTTP surface: web pages and JSON API (`web`), and MCP (`mcp`), on one router.

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// Builds the router for `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(crate::mcp::routes(app.clone()))
        .merge(crate::web::routes(app))
}
