//! `/account/second-factor`: a signed-in local user enrols (or replaces) their TOTP second
//! factor. The page shows a fresh secret; the form sends it back with a code from the app, which
//! `exogate_core::ops::totp::enrol` checks before storing it; the recovery codes are shown once.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use exogate_core::ops::users::Admin;
use exogate_core::totp;
use serde::Deserialize;

use crate::web::WebState;
use crate::web::error::PageResult;
use crate::web::layout::{Nav, PageAuth};

#[derive(Template, WebTemplate)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
    uri: String,
    secret_b32: String,
    secret_hex: String,
    recovery_codes: Vec<String>,
}

fn page(auth: &PageAuth, secret: &[u8], error: Option<String>) -> SecondFactorPage {
    SecondFactorPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        error,
        uri: totp::otpauth_uri(auth.0.actor.user.name.as_str(), secret),
        secret_b32: totp::base32(secret),
        secret_hex: hex::encode(secret),
        recovery_codes: Vec::new(),
    }
}

/// `GET /account/second-factor`: a fresh secret to add to an authenticator app.
pub async fn enrol_page(auth: PageAuth) -> SecondFactorPage {
    page(&auth, &crate::local_users::new_totp_secret(), None)
}

#[derive(Deserialize)]
pub struct EnrolForm {
    csrf: String,
    secret: String,
    code: String,
}

/// `POST /account/second-factor`: stores the secret if the code matches it.
pub async fn enrol_submit(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<EnrolForm>,
) -> PageResult<Response> {
    auth.check(&f.csrf)?;
    let secret = match hex::decode(f.secret.trim()) {
        Ok(s) if s.len() == 20 => s,
        _ => {
            let p = page(
                &auth,
                &crate::local_users::new_totp_secret(),
                Some("The form was damaged: start again.".to_owned()),
            );
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response());
        }
    };
    let codes = crate::local_users::new_recovery_codes();
    let hashes: Vec<String> = codes.iter().map(|c| totp::hash_recovery_code(c)).collect();
    let user = auth.0.actor.user.clone();
    match exogate_core::ops::totp::enrol(
        st.app.ctx(),
        Admin::User(&auth.0.actor),
        &user,
        totp::TotpSecret::new(secret.clone()),
        &hashes,
        Some(&f.code),
    )
    .await
    {
        Ok(()) => {
            let mut p = page(&auth, &secret, None);
            p.recovery_codes = codes;
            Ok(p.into_response())
        }
        Err(e) => {
            let p = page(&auth, &secret, Some(e.to_string()));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, p).into_response())
        }
    }
}
