//! The login page, signing in and out.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::web::WebState;
use crate::web::auth::{Peer, Session, session_cookie};
use crate::web::common::end_session;
use crate::web::error::{PageError, PageResult};
use crate::web::layout::{CsrfForm, Nav, PageAuth};

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) error: Option<String>,
    pub(crate) user: String,
    pub(crate) next: String,
    // (msft-signin)
    /// Offer "Sign in with Microsoft" / the password form.
    pub(crate) microsoft: bool,
    pub(crate) local: bool,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Where to go after login: `next` when it is a path on this origin, else `/companies`.
///
/// Accepted: a single `/` followed by a path (and query), all printable ASCII with no space,
/// no backslash, not `//` or `/\` (which browsers take for another host), and the same after
/// percent-decoding (`/%09/evil.example` decodes to a tab, which browsers strip, leaving
/// `//evil.example`). Anything else (empty, a scheme, control characters, non-ASCII, over 2,048
/// bytes) falls back, so the `Location` header is always valid.
pub fn safe_next(next: &str) -> &str {
    const FALLBACK: &str = "/companies";
    fn plain(s: &[u8]) -> bool {
        s.first() == Some(&b'/')
            && !matches!(s.get(1), Some(b'/' | b'\\'))
            && s.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
    }
    if next.len() > 2048 || !plain(next.as_bytes()) {
        return FALLBACK;
    }
    // Decode every `%XX` (once, then again for double encoding) and check the result too.
    let mut decoded = next.as_bytes().to_vec();
    for _ in 0..2 {
        decoded = percent_decode(&decoded);
        if !plain(&decoded) {
            return FALLBACK;
        }
    }
    next
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

pub async fn login_page(State(st): State<WebState>, Query(q): Query<NextQuery>) -> LoginPage {
    LoginPage {
        nav: None,
        error: None,
        user: String::new(),
        next: safe_next(&q.next).to_owned(),
        microsoft: st.app.microsoft_signin.is_some(),
        local: st.app.local_accounts,
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    next: String,
    // (msft-signin)
    #[serde(default)]
    code: String,
}

pub async fn login_submit(
    State(st): State<WebState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    match crate::web::auth::check_login(&st, &f.user, &f.password, Some(&f.code), peer).await {
        Ok(user) => {
            // Never reuse an id the browser brought along: drop it and issue a new one.
            if let Some(old) = Session::from_headers(&st, &headers).await {
                let _ = st.app.store.delete_session(&old.id_hash).await;
            }
            match Session::create(&st, user.id).await {
                Ok((_, value)) => {
                    let mut r = Redirect::to(safe_next(&f.next)).into_response();
                    r.headers_mut().insert(
                        header::SET_COOKIE,
                        session_cookie(st.app.secure_cookies, Some(&value)),
                    );
                    r
                }
                Err(e) => PageError(e).into_response(),
            }
        }
        Err(e) => {
            // 401 for a wrong name or password, 429 (with Retry-After) when locked out.
            let mut r = (
                e.status,
                LoginPage {
                    nav: None,
                    error: Some(e.message.clone()),
                    user: f.user.chars().take(64).collect(),
                    next: safe_next(&f.next).to_owned(),
                    microsoft: st.app.microsoft_signin.is_some(),
                    local: st.app.local_accounts,
                },
            )
                .into_response();
            e.add_retry_after(&mut r);
            r
        }
    }
}

pub async fn logout(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<CsrfForm>,
) -> PageResult<Response> {
    auth.check(&f.csrf)?;
    let clear = end_session(&st, &auth.0).await?;
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(r)
}
