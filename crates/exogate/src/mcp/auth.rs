//! Who is calling, and how often. Over HTTP an axum middleware in front of `/mcp` checks the
//! `Authorization: Bearer <token>` header on every request (an OAuth access token of a grant,
//! `crate::web::oauth`, or a static API token) and puts the acting person's [`Actor`] (channel
//! `mcp`, the grant or API token as its token) into the request; a missing or refused token
//! gets 401 with `WWW-Authenticate: Bearer resource_metadata="…"` for OAuth discovery; tools read it from the HTTP parts rmcp hands them.
//! Over stdio the token given at start is checked again on every call, so a revoked token or a
//! disabled user stops working at once. Tool calls draw from the server's API-token budgets
//! (`crate::limits`), the same ones `/api/v1` bearer calls draw from.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use exogate_core::{Actor, Channel, CoreError, ops};
use rmcp::model::CallToolResult;
use rmcp::service::{RequestContext, RoleServer};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::errors;
use crate::app::App;

/// How a server instance learns its caller.
#[derive(Clone)]
pub(crate) enum Caller {
    /// From the HTTP request (the middleware authenticated it).
    Http,
    /// From the token given when stdio started.
    Token { token: Arc<SecretString> },
}

impl Caller {
    /// The acting user for this call, or an `isError` result.
    pub(crate) async fn actor(
        &self,
        app: &App,
        ctx: &RequestContext<RoleServer>,
    ) -> Result<Actor, CallToolResult> {
        let agent = ctx
            .peer
            .peer_info()
            .map(|i| i.client_info.name.clone())
            .filter(|n| !n.trim().is_empty());
        let mut actor = match self {
            Caller::Http => ctx
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<Actor>())
                .cloned()
                .ok_or_else(|| errors::unauthenticated("no API token on the request"))?,
            Caller::Token { token } => {
                ops::users::authenticate_token(app.ctx(), token.expose_secret(), None)
                    .await
                    .map_err(|e| match e {
                        CoreError::Forbidden { reason } => {
                            errors::unauthenticated(&reason.to_string())
                        }
                        other => errors::core_error(&other, None, &[]),
                    })?
            }
        };
        if let (Some(name), Channel::Mcp { agent: slot, .. }) = (agent, &mut actor.channel)
            && slot.is_none()
        {
            *slot = exogate_core::parse_label("agent", &name, 100).ok();
        }
        Ok(actor)
    }

    /// Counts one tool call against the caller's token and, when the call names a company
    /// (`company` argument), against that company.
    /// A company named by its display name counts against the same budget as its id.
    pub(crate) async fn check_rate(
        app: &App,
        actor: &Actor,
        company: Option<&str>,
    ) -> Result<(), CallToolResult> {
        let company = match company {
            Some(c) => exogate_core::ops::companies::resolve(app.ctx(), actor, c)
                .await
                .ok(),
            None => None,
        };
        app.limits
            .check_token(actor)
            .and_then(|()| match &company {
                Some(c) => app.limits.check_company(actor, c),
                None => Ok(()),
            })
            .map_err(|e| errors::rate_limited(&e))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

fn unauthorized(app: &App, message: &str, token_sent: bool) -> Response {
    let metadata = crate::web::oauth::resource_metadata_url(app);
    let error = if token_sent {
        ", error=\"invalid_token\""
    } else {
        ""
    };
    let challenge = format!(
        "Bearer realm=\"exogate\", resource_metadata=\"{metadata}\", scope=\"{}\"{error}",
        exogate_core::oauth::SCOPE
    );
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_str(&challenge)
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("Bearer")),
        )],
        axum::Json(json!({ "error": { "code": "unauthenticated", "message": message } })),
    )
        .into_response()
}

/// The axum middleware in front of `/mcp`: a valid API token or 401.
pub(crate) async fn authenticate(
    State(app): State<Arc<App>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(token) = bearer(req.headers()) else {
        return unauthorized(
            &app,
            "sign in with OAuth, or send an exogate API token as `Authorization: Bearer <token>` (create one with `exogate token create`)",
            false,
        );
    };
    let resource = crate::web::oauth::resource(&app);
    let found = match ops::oauth::authenticate_access(app.ctx(), token, &resource).await {
        Ok(Some(actor)) => Ok(actor),
        Ok(None) => ops::users::authenticate_token(app.ctx(), token, None).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(actor) => {
            req.extensions_mut().insert(actor);
            next.run(req).await
        }
        Err(CoreError::Forbidden { reason }) => {
            tracing::warn!(reason = reason.code(), "MCP request with a rejected token");
            unauthorized(&app, &format!("the token was not accepted: {reason}"), true)
        }
        Err(CoreError::NotFound { .. }) => unauthorized(&app, "the token was not accepted", true),
        // The API's answer: `database_unavailable` with a fixed message when the database is
        // down (its driver text stays in the log), `unavailable` otherwise; both with Retry-After.
        Err(e @ CoreError::Unavailable { .. }) => {
            crate::web::error::HttpError::from(e).into_response()
        }
        Err(e) => {
            tracing::error!(error = ?e, "MCP authentication failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({ "error": { "code": e.code(), "message": "internal error" } })),
            )
                .into_response()
        }
    }
}
