//! The web app and JSON API: server-rendered pages, `/api/v1/`, the consent callback,
//! `/healthz` and `/metrics`.
//!
//! Layout: [`auth`] (passwords, sessions, the `Auth` extractor), [`pages`] (HTML pages over
//! askama templates in `templates/`), [`consent`] (connect / move / authorize / callback), [`api`] (JSON
//! API), [`inventory`] (the delegation inventory's pages and API), [`view`] (view models shared by pages and API), [`ops`] (health and metrics),
//! [`error`] (the one mapping of errors to HTTP). Assets under `assets/` are embedded.
//!
//! CSRF: every change from a browser must come from the public origin (`crate::edge`, in front
//! of every route, with the `Host` check), and every form and every session-authenticated API
//! change also carries the session's CSRF token.

pub mod api;
pub mod auth;
pub mod common;
pub mod consent;
pub mod drift;
pub mod error;
pub mod inventory;
// (scale2)
pub mod inventory_export;
pub mod layout;
// (notify)
pub mod notify;
pub mod oauth;
// (msft-signin)
pub mod oidc;
pub mod ops;
pub mod pages;
// (reviews)
pub mod review_link;
pub mod reviews;
// (timed-grants)
pub mod timed;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rust_embed::RustEmbed;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::{App, AppEvent};

/// State of every web handler: the app and the web layer's metrics.
#[derive(Clone)]
pub struct WebState {
    pub app: Arc<App>,
    pub metrics: Arc<ops::Metrics>,
    /// Inventory sweeps this server runs, for live progress.
    pub sync: Arc<inventory::SyncBoard>,
    /// Audit rows for consent callbacks with an unknown `state` (anyone can send those).
    pub unknown_consents: Arc<crate::login::RowBudget>,
}

/// Tells live views and waiting tests that a request changed state.
pub(crate) fn request_changed(app: &App, r: &exogate_core::request::ApprovalRequest) {
    app.publish(AppEvent::RequestChanged {
        id: r.id,
        state: r.state.as_str(),
    });
}

/// Tells live views that a company's status was checked.
pub(crate) fn status_checked(app: &App, company: &exogate_core::CompanyId, state: &'static str) {
    app.publish(AppEvent::StatusChecked {
        company: company.to_string(),
        state,
    });
}

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

async fn asset(Path(path): Path<String>) -> Response {
    match Assets::get(&path) {
        Some(file) => {
            let mime = file.metadata.mimetype().to_owned();
            let mut r = (StatusCode::OK, file.data.into_owned()).into_response();
            if let Ok(v) = HeaderValue::from_str(&mime) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            r
        }
        None => error::ApiError(error::HttpError::not_found()).into_response(),
    }
}

async fn root() -> axum::response::Redirect {
    axum::response::Redirect::to("/companies")
}

async fn fallback(State(_): State<WebState>, req: axum::extract::Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        error::ApiError(error::HttpError::not_found()).into_response()
    } else {
        error::PageError(error::HttpError::not_found()).into_response()
    }
}

/// The pages' Content-Security-Policy. Forms post to this server only; the consent forms'
/// answers redirect to the Microsoft login host, so `form-action` names that origin too.
pub fn content_security_policy(app: &App) -> HeaderValue {
    let login = app.m365.endpoints().login.origin().ascii_serialization();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self' {login}; base-uri 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
    })
}

/// Every web and API route, with security headers and request metrics (the `Host` and CSRF
/// origin checks wrap them in `crate::server::router`).
pub fn routes(app: Arc<App>) -> Router {
    let per_minute = app.login.settings.audited_failures_per_minute;
    let st = WebState {
        app,
        metrics: Arc::new(ops::Metrics::default()),
        sync: Arc::new(inventory::SyncBoard::default()),
        unknown_consents: Arc::new(crate::login::RowBudget::per_minute(per_minute)),
    };
    let pages = Router::new()
        .route("/", get(root))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        // (msft-signin)
        .route("/login/microsoft", get(oidc::start))
        .route("/login/microsoft/callback", get(oidc::callback))
        .route(
            "/account/second-factor",
            get(pages::second_factor::enrol_page).post(pages::second_factor::enrol_submit),
        )
        .route("/companies", get(pages::companies))
        .route("/companies/{id}/integrations", get(pages::integrations))
        .route("/companies/{id}/mailbox", get(pages::mailbox))
        .route("/companies/{id}/requests", post(pages::request_change))
        .route("/companies/{id}/connect", post(consent::connect))
        .route("/companies/{id}/authorize", post(consent::authorize))
        .route("/companies/{id}/disconnect", post(consent::disconnect))
        .route("/companies/{id}/move", post(consent::move_tenant))
        .route("/companies/{id}/settings", post(pages::company_settings))
        // (timed-grants)
        .route("/companies/{id}/grant-ends", post(timed::page_set_rule))
        .route("/consent/callback", get(consent::callback))
        .route("/approvals", get(pages::approvals))
        .route("/requests/{id}", get(pages::request_page))
        .route("/requests/{id}/decide", post(pages::decide))
        .route("/requests/{id}/cancel", post(pages::cancel))
        .route("/requests/{id}/revert", post(pages::revert))
        .route("/audit", get(pages::audit))
        .route("/inventory", get(inventory::page))
        .route("/inventory/sync", post(inventory::page_sync))
        .route(
            "/inventory/offboard",
            get(inventory::offboard_page).post(inventory::offboard_submit),
        )
        .route("/companies/{id}/inventory", get(inventory::mailbox_page))
        // (drift)
        .route("/drift", get(drift::page))
        .route("/companies/{id}/drift", get(drift::company_page))
        .route("/drift/{id}/acknowledge", post(drift::page_acknowledge))
        .route("/drift/{id}/revert", post(drift::page_revert))
        .route("/assets/{*path}", get(asset))
        .route(
            "/oauth/authorize",
            get(oauth::authorize_page).post(oauth::authorize_decide),
        )
        .route("/agents", get(oauth::agents))
        .route("/agents/{id}/revoke", post(oauth::revoke))
        // (notify)
        .route("/notifications", get(pages::notify::page))
        .route("/notifications/email", post(pages::notify::set_email))
        .route("/notifications/webhooks", post(pages::notify::add_webhook))
        .route(
            "/notifications/webhooks/{id}/remove",
            post(pages::notify::remove_webhook),
        )
        // (reviews)
        .route("/reviews", get(reviews::page).post(reviews::page_create))
        .route("/reviews/{id}", get(reviews::campaign_page))
        .route("/reviews/{id}/decide", post(reviews::page_decide))
        .route("/reviews/{id}/close", post(reviews::page_close))
        .route("/reviews/{id}/links", post(reviews::page_link))
        .route(
            "/reviews/{id}/links/{link}/revoke",
            post(reviews::page_revoke_link),
        )
        .route("/reviews/{id}/report/{company}", get(reviews::attestation))
        .route(
            "/reviews/{id}/report/{company}/csv",
            get(reviews::report_csv_page),
        )
        .route(
            "/review/{campaign}/{company}",
            get(review_link::page).post(review_link::decide),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            content_security_policy(&st.app),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ));
    Router::new()
        .merge(pages)
        .merge(api::routes())
        .merge(inventory::api_routes())
        // (notify)
        .merge(notify::api_routes())
        .merge(drift::api_routes())
        // (timed-grants)
        .merge(timed::api_routes())
        // (reviews)
        .merge(reviews::api_routes())
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route(
            "/.well-known/oauth-protected-resource",
            get(oauth::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(oauth::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::authorization_server),
        )
        .route("/oauth/register", post(oauth::register))
        .route("/oauth/token", post(oauth::token))
        .route("/readyz", get(ops::readyz))
        .fallback(fallback)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(axum::middleware::from_fn_with_state(st.clone(), ops::track))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(60),
        ))
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .with_state(st)
}
