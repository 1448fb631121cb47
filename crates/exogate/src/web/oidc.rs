//! Sign in with Microsoft, the web half (`/login/microsoft`, `/login/microsoft/callback`).
//!
//! Start: a random `state`, `nonce` and PKCE verifier; the pending sign-in is stored by the
//! SHA-256 of `state` with the SHA-256 of a random browser cookie (`HttpOnly`, `SameSite=Lax`,
//! ten minutes), then the browser goes to Microsoft's authorize endpoint.
//!
//! Callback: the pending sign-in is taken (single use, expired or not); it must be this
//! browser's (the cookie), then the code is redeemed with the verifier, the id token's
//! signature checked against the tenant keys (`exogate_exchange::signin`), and its claims,
//! tenant and group mapping decided by `exogate_core::ops::signin`, which also audits every
//! outcome. A signed-in Microsoft user's session ends after `session_hours` whatever happens.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine as _;
use exogate_core::ops::signin as core_signin;
use exogate_core::signin::{IdClaims, PendingSignin, Refusal};
use exogate_core::{UserId, ops::users};
use serde::Deserialize;

use super::WebState;
use super::auth::{Session, random_token, same, session_cookie, sha256_hex};
use super::pages::login::{LoginPage, safe_next};

/// How long a started sign-in may take.
const PENDING_SECS: i64 = 600;

fn browser_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-exogate_signin"
    } else {
        "exogate_signin"
    }
}

fn browser_cookie(secure: bool, value: Option<&str>) -> HeaderValue {
    let mut c = Cookie::build((browser_cookie_name(secure), value.unwrap_or("").to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::seconds(PENDING_SECS))
        .build();
    if value.is_none() {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn redirect_uri(st: &WebState) -> String {
    st.app.url("/login/microsoft/callback")
}

fn refused_page(st: &WebState, status: StatusCode, message: &str) -> Response {
    let mut r = (
        status,
        LoginPage {
            nav: None,
            error: Some(message.to_owned()),
            user: String::new(),
            next: "/companies".to_owned(),
            microsoft: st.app.microsoft_signin.is_some(),
            local: st.app.local_accounts,
        },
    )
        .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        browser_cookie(st.app.secure_cookies, None),
    );
    r
}

#[derive(Deserialize, Default)]
pub struct StartQuery {
    #[serde(default)]
    next: String,
}

/// `GET /login/microsoft`: off to Microsoft.
pub async fn start(
    State(st): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<StartQuery>,
) -> Response {
    let Some(ms) = st.app.microsoft_signin.clone() else {
        return super::error::PageError(super::error::HttpError::not_found()).into_response();
    };
    // Keep the browser's value if it has one (two tabs), else make one.
    let jar = CookieJar::from_headers(&headers);
    let browser = jar
        .get(browser_cookie_name(st.app.secure_cookies))
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 43)
        .unwrap_or_else(|| random_token(32));
    let state = random_token(32);
    let nonce = random_token(32);
    let verifier = random_token(48);
    let challenge = {
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let pending = PendingSignin {
        state_hash: sha256_hex(&state),
        browser_hash: sha256_hex(&browser),
        nonce: nonce.clone(),
        verifier,
        next: safe_next(&q.next).to_owned(),
        expires_at: st.app.clock.now().plus_secs(PENDING_SECS),
    };
    if let Err(e) = st.app.store.signin_put_state(&pending).await {
        return super::error::PageError(exogate_core::CoreError::from(e).into()).into_response();
    }
    let url = match ms.client.authorize_url(
        &ms.tenant_segment,
        &redirect_uri(&st),
        &state,
        &nonce,
        &challenge,
    ) {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!(error = %e, "cannot build the Microsoft authorize URL");
            return refused_page(
                &st,
                StatusCode::BAD_GATEWAY,
                "Microsoft sign-in is misconfigured",
            );
        }
    };
    let mut r = Redirect::to(url.as_str()).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        browser_cookie(st.app.secure_cookies, Some(&browser)),
    );
    r
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
}

/// `GET /login/microsoft/callback`: Microsoft's answer.
pub async fn callback(
    State(st): State<WebState>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let Some(ms) = st.app.microsoft_signin.clone() else {
        return super::error::PageError(super::error::HttpError::not_found()).into_response();
    };
    let ctx = st.app.ctx();
    let refuse = |r: Refusal, claims: Option<IdClaims>| {
        let st = st.clone();
        async move {
            let _ = core_signin::record_refusal(st.app.ctx(), r, claims.as_ref()).await;
            refused_page(
                &st,
                StatusCode::FORBIDDEN,
                &format!("Sign-in refused: {r}."),
            )
        }
    };
    let pending = if q.state.is_empty() || q.state.len() > 128 {
        None
    } else {
        match st.app.store.signin_take_state(&sha256_hex(&q.state)).await {
            Ok(p) => p,
            Err(e) => {
                return super::error::PageError(exogate_core::CoreError::from(e).into())
                    .into_response();
            }
        }
    };
    let now = st.app.clock.now();
    let Some(pending) = pending.filter(|p| p.expires_at > now) else {
        // Anyone can send an unknown state: its audit rows come from a budget.
        let plan = st.unknown_consents.plan(now);
        if let Some(u) = plan.summary {
            let _ = users::record_unrecorded_login_failures(ctx, u.count, u.first, u.last).await;
        }
        if plan.write {
            let _ = core_signin::record_refusal(ctx, Refusal::UnknownState, None).await;
        }
        return refused_page(
            &st,
            StatusCode::FORBIDDEN,
            &format!("Sign-in refused: {}.", Refusal::UnknownState),
        );
    };
    let jar = CookieJar::from_headers(&headers);
    let browser = jar
        .get(browser_cookie_name(st.app.secure_cookies))
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if browser.is_empty() || !same(&sha256_hex(&browser), &pending.browser_hash) {
        return refuse(Refusal::ForeignState, None).await;
    }
    if q.error.is_some() || q.code.is_empty() || q.code.len() > 4096 {
        return refuse(Refusal::ProviderError, None).await;
    }
    let id_token = match ms
        .client
        .redeem(
            &ms.tenant_segment,
            &q.code,
            &redirect_uri(&st),
            &pending.verifier,
        )
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(error = %e, "Microsoft sign-in: code not redeemed");
            return refuse(Refusal::CodeRejected, None).await;
        }
    };
    let claims: IdClaims = match ms.client.verify(&id_token).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "Microsoft sign-in: id token refused");
            return refuse(Refusal::BadSignature, None).await;
        }
    };
    let user = match core_signin::sign_in(
        ctx,
        &ms.policy,
        &claims,
        &pending.nonce,
        UserId::from_uuid(uuid::Uuid::now_v7()),
    )
    .await
    {
        Ok(Ok(user)) => user,
        Ok(Err(r)) => {
            // Already audited by the core.
            return refused_page(
                &st,
                StatusCode::FORBIDDEN,
                &format!("Sign-in refused: {r}."),
            );
        }
        Err(e) => return super::error::PageError(e.into()).into_response(),
    };
    if let Some(old) = Session::from_headers(&st, &headers).await {
        let _ = st.app.store.delete_session(&old.id_hash).await;
    }
    match Session::create_capped(&st, user.id, Some(ms.session_secs)).await {
        Ok((_, value)) => {
            let mut r = Redirect::to(safe_next(&pending.next)).into_response();
            r.headers_mut().append(
                header::SET_COOKIE,
                session_cookie(st.app.secure_cookies, Some(&value)),
            );
            r.headers_mut().append(
                header::SET_COOKIE,
                browser_cookie(st.app.secure_cookies, None),
            );
            r
        }
        Err(e) => super::error::PageError(e).into_response(),
    }
}
