//! What every page shares: the header bar ([`Nav`]), the signed-in person ([`PageAuth`]), the
//! error page (how a [`PageError`] answers) and parsing the ids in a page's path.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use exogate_core::{CompanyId, RequestId};
use serde::Deserialize;

use super::WebState;
use super::auth::Auth;
use super::error::{HttpError, PageError, shown_message};

/// The header bar: who is signed in, and the CSRF token for the sign-out form.
#[derive(Clone, Debug)]
pub struct Nav {
    pub user: String,
    pub role: String,
    pub csrf: String,
}

/// A signed-in person on a page (redirects to `/login` otherwise).
pub struct PageAuth(pub Auth);

impl FromRequestParts<WebState> for PageAuth {
    type Rejection = PageError;
    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<Self, PageError> {
        let a = Auth::from_request_parts(parts, st).await?;
        if a.session.is_none() {
            // Pages are for people; API tokens use /api/v1/.
            return Err(PageError(HttpError::unauthenticated()));
        }
        Ok(PageAuth(a))
    }
}

impl PageAuth {
    pub(crate) fn nav(&self) -> Option<Nav> {
        Some(Nav {
            user: self.0.actor.user.name.to_string(),
            role: self.0.actor.user.role.as_str().to_owned(),
            csrf: self.0.csrf().to_owned(),
        })
    }
    pub(crate) fn csrf(&self) -> String {
        self.0.csrf().to_owned()
    }
    pub(crate) fn check(&self, token: &str) -> Result<(), PageError> {
        self.0.check_csrf(Some(token)).map_err(PageError)
    }
}

pub(crate) fn parse_company(id: &str) -> Result<CompanyId, PageError> {
    CompanyId::parse(id).map_err(PageError::from)
}

pub(crate) fn parse_request(id: &str) -> Result<RequestId, PageError> {
    RequestId::parse(id).map_err(PageError::from)
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// The error page; a [`PageError`] answers with it.
#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub nav: Option<Nav>,
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.code == "unauthenticated" {
            return Redirect::to("/login").into_response();
        }
        let status = e.status;
        let mut r = (
            status,
            ErrorPage {
                nav: None,
                status: status.as_u16(),
                code: e.code,
                message: shown_message(&e.message),
            },
        )
            .into_response();
        e.add_retry_after(&mut r);
        r
    }
}
