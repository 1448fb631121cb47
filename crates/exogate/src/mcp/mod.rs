//! The MCP server: the AI agent's tools over streamable HTTP (`/mcp`) and stdio (`exogate mcp`).
//!
//! - HTTP is stateless (no sessions, plain JSON responses), so any replica can answer. Every
//!   request needs `Authorization: Bearer <API token>`; the `Host` header and a browser
//!   `Origin` are checked against the same lists as every other route (`crate::edge`).
//! - The agent acts as the token's user, with that user's role and company entitlements; the core
//!   operations enforce them. Write tools only create approval requests; no tool approves,
//!   rejects, cancels or executes one.
//! - Everything read from a tenant is sanitized ([`exogate_core::text`]) before it is returned.
//! - Tool calls draw from the server's API-token budgets (`[limits]`, see `crate::limits`),
//!   shared with the JSON API: per token, and per company for calls that name one.
//! - A POST body the transport cannot take gets a JSON-RPC error (`-32700` for malformed JSON),
//!   never plain text ([`body`]).

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use rmcp::ServiceExt as _;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::SecretString;

use crate::app::App;

mod auth;
mod body;
// (drift)
mod drift_wire;
// (reviews)
mod errors;
mod review_wire;
mod tools;
pub mod wire;

pub use tools::{ExogateMcp, INSTRUCTIONS};

use auth::Caller;

/// The `/mcp` endpoint, to be merged into the main router.
pub fn routes(app: Arc<App>) -> Router {
    let tool_router = tools::build_router();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .with_allowed_hosts(app.edge.rmcp_hosts())
        .with_allowed_origins(app.edge.rmcp_origins())
        .enforce_origin_validation();
    let factory_app = app.clone();
    let service = StreamableHttpService::new(
        move || {
            Ok(ExogateMcp::new(
                factory_app.clone(),
                Caller::Http,
                tool_router.clone(),
            ))
        },
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        // Inside authentication: only a signed caller's body is read.
        .layer(axum::middleware::from_fn(body::json_rpc_errors))
        .layer(axum::middleware::from_fn_with_state(
            app,
            auth::authenticate,
        ))
}

/// Serves MCP on any rmcp transport (stdio, a duplex pipe in tests) as the owner of `token`.
/// The token is checked once here (an unknown or revoked token fails at once) and again on every
/// tool call. Returns when the client disconnects.
pub async fn serve_transport<T, E, A>(
    app: Arc<App>,
    token: &str,
    transport: T,
) -> anyhow::Result<()>
where
    T: rmcp::transport::IntoTransport<rmcp::RoleServer, E, A>,
    E: std::error::Error + Send + Sync + 'static,
{
    let actor = exogate_core::ops::users::authenticate_token(app.ctx(), token, None)
        .await
        .map_err(|e| anyhow::anyhow!("the API token was not accepted: {e}"))?;
    tracing::info!(user = %actor.user.name, role = %actor.user.role, "MCP session started");
    let tool_router = tools::build_router();
    let server = ExogateMcp::new(
        app,
        Caller::Token {
            token: Arc::new(SecretString::from(token.to_owned())),
        },
        tool_router,
    );
    let running = server
        .serve(transport)
        .await
        .context("MCP initialization failed")?;
    running.waiting().await.context("MCP session failed")?;
    Ok(())
}

/// `exogate mcp`: MCP over stdin/stdout as the owner of `token`. Everything else (logs) must go
/// to stderr: the caller sets up tracing with a stderr writer before calling this.
pub async fn serve_stdio(app: Arc<App>, token: &str) -> anyhow::Result<()> {
    serve_transport(app, token, rmcp::transport::stdio()).await
}
