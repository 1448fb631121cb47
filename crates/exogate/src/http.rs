//! The whole HTTP surface: web pages and JSON API (`web`), and MCP (`mcp`), on one router,
//! behind the checks every route shares (`edge`): the `Host` first, then a browser's `Origin`
//! for changes.

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// Builds the router for `app`.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .merge(crate::mcp::routes(app.clone()))
        .merge(crate::web::routes(app.clone()))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            crate::edge::check_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app,
            crate::edge::check_host,
        ))
}
