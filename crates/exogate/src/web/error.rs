//! The one place where errors become HTTP: [`CoreError`] and the web layer's own failures map to
//! a status and a stable `code`. The JSON API answers `{"error":{"code","message"}}`
//! ([`ApiError`]); pages answer an error page ([`PageError`]) or, when nobody is signed in, a
//! redirect to the login page.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use exogate_core::{ConflictReason, CoreError, Denial};
use serde_json::json;

/// An HTTP failure: status, stable machine code and a message safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before trying again (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

/// Codes the web layer adds to [`CoreError::ALL_CODES`] (public contract, see `docs/API.md`).
pub const WEB_CODES: &[&str] = &[
    "unauthenticated",
    "csrf_failed",
    "bad_request",
    "route_not_found",
    "login_failed",
    "too_many_attempts",
    "host_not_allowed",
    "origin_not_allowed",
    "rate_limited",
    "database_unavailable",
];

impl HttpError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in, or send `Authorization: Bearer <api token>`",
        )
    }
    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "the form or request is missing its CSRF token, or the token does not match the session; reload the page and try again",
        )
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            "there is nothing at this address",
        )
    }
    /// The request's `Host` is not this server's (DNS rebinding, a wrong virtual host).
    pub fn host_not_allowed() -> Self {
        Self::new(
            StatusCode::MISDIRECTED_REQUEST,
            "host_not_allowed",
            "this server answers only to its configured public host; use the public URL",
        )
    }
    /// A browser change sent from another origin.
    pub fn origin_not_allowed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "cross-origin request refused: changes must come from this server's own pages",
        )
    }
    pub fn login_failed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            "unknown user or wrong password",
        )
    }
    /// Too many failed logins from this address or for this user name; `retry_after` seconds.
    pub fn too_many_attempts(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                format!("too many failed sign-ins; try again in {retry_after} s"),
            )
        }
    }
    /// Adds `Retry-After` to `r` when this error carries one.
    pub fn add_retry_after(&self, r: &mut Response) {
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
    }
}

/// The HTTP status for a core error.
pub fn status_of(e: &CoreError) -> StatusCode {
    match e {
        CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        CoreError::Forbidden {
            reason: Denial::TokenRevoked,
        } => StatusCode::UNAUTHORIZED,
        CoreError::Forbidden { .. } => StatusCode::FORBIDDEN,
        CoreError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        CoreError::Conflict {
            reason: ConflictReason::Ambiguous { .. },
        } => StatusCode::UNPROCESSABLE_ENTITY,
        // (hardening) A refused webhook or mail server address is bad input, not a conflict.
        CoreError::Conflict {
            reason: ConflictReason::TargetNotAllowed { .. },
        } => StatusCode::UNPROCESSABLE_ENTITY,
        CoreError::Conflict { .. } => StatusCode::CONFLICT,
        CoreError::NotConfigured { .. } => StatusCode::CONFLICT,
        CoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        CoreError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // (inventory-truth)
        CoreError::NotFoundIn { .. } => StatusCode::NOT_FOUND,
    }
}

impl HttpError {
    /// The database is down, restarting or out of connections: nothing was changed, try again.
    /// The driver's text (it can name hosts, databases and users) goes to the log only.
    pub fn database_unavailable() -> Self {
        Self {
            retry_after: Some(2),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unavailable; nothing was changed, try again shortly",
            )
        }
    }
}

impl From<CoreError> for HttpError {
    fn from(e: CoreError) -> Self {
        if e.is_database_unavailable() {
            tracing::warn!(error = %e, "database unavailable");
            return Self::database_unavailable();
        }
        let status = status_of(&e);
        let message = match &e {
            // Never leak internals; the log has the source.
            CoreError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                "internal error; the server log has the details".to_owned()
            }
            other => other.to_string(),
        };
        Self {
            status,
            code: e.code(),
            message,
            retry_after: None,
        }
    }
}

impl From<crate::limits::Limited> for HttpError {
    fn from(e: crate::limits::Limited) -> Self {
        Self {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: e.code(),
            message: e.to_string(),
            retry_after: Some(e.retry_after_secs()),
        }
    }
}

/// An error answered as JSON: `{"error":{"code","message"}}`.
#[derive(Debug)]
pub struct ApiError(pub HttpError);

impl<E: Into<HttpError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let body = json!({ "error": { "code": e.code, "message": shown_message(&e.message) } });
        let mut r = (e.status, Json(body)).into_response();
        e.add_retry_after(&mut r);
        if e.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"exogate\""),
            );
        }
        r
    }
}

/// An error answered as an HTML page (or a redirect to `/login` when nobody is signed in).
#[derive(Debug)]
pub struct PageError(pub HttpError);

impl<E: Into<HttpError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

/// An error message as shown: it may quote tenant text (an Exchange message) or the caller's
/// input, so hidden characters are escaped and the length capped by the core's sanitizer.
pub(crate) fn shown_message(m: &str) -> String {
    exogate_core::text::capped(m, exogate_core::text::MESSAGE_MAX_CHARS)
}

pub type ApiResult<T> = Result<T, ApiError>;
pub type PageResult<T> = Result<T, PageError>;
