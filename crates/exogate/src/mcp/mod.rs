//! The MCP server: the AI agent's tools over streamable HTTP (`/mcp`) and stdio.

use std::sync::Arc;

use axum::Router;

use crate::app::App;

/// The `/mcp` endpoint, to be merged into the main router.
pub fn routes(app: Arc<App>) -> Router {
    let _ = app;
    Router::new()
}
