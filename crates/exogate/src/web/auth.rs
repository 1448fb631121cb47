//! Who is calling: password checks (argon2 via `crate::passwords`), web sessions kept through
//! the core `Store`, the per-session CSRF token, and the [`Auth`] extractor (session cookie or
//! `Authorization: Bearer <api token>`).
//!
//! A session id is 256 random bits, sent only in an `HttpOnly`, `SameSite=Lax` cookie (`Secure`
//! and `__Host-` prefixed when `App::secure_cookies`); the store keeps its SHA-256, so a copy of
//! the database does not hold live session ids. Login always issues a NEW id (no fixation).

use std::collections::BTreeMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use exogate_core::ops::users;
use exogate_core::{Actor, Channel, SessionRecord, Timestamp, User, UserId};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::error::HttpError;

/// Idle lifetime of a web session.
pub const SESSION_IDLE_SECS: i64 = 8 * 60 * 60;
/// A session's expiry is pushed forward at most this often (saves a write per request).
const SESSION_TOUCH_SECS: i64 = 5 * 60;

/// Draws `n` random bytes and encodes them base64url without padding.
pub(crate) fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::fill(&mut buf[..]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Constant-time comparison of two strings.
pub(crate) fn same(a: &str, b: &str) -> bool {
    crate::passwords::same_bytes(a.as_bytes(), b.as_bytes())
}

/// The last outcome of a consent attempt in this session, per company.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsentOutcome {
    /// `connected`, `authorized`, `wrong_tenant`, `declined`, `failed`, `refused`.
    pub outcome: String,
    pub message: String,
    pub at: i64,
}

/// What a session row holds (JSON in `SessionRecord.data`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SessionData {
    pub user: String,
    pub csrf: String,
    pub touched: i64,
    #[serde(default)]
    pub consent: BTreeMap<String, ConsentOutcome>,
    /// When the session was created (ms). A session stored without it (made before it was
    /// recorded) counts as created at the epoch, so it is past its absolute lifetime.
    #[serde(default)]
    pub created: i64,
    // (msft-signin)
    /// A shorter absolute lifetime in seconds (Microsoft users: `[signin.microsoft]
    /// session_hours`, so a person removed from the mapped groups is out within it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cap_secs: Option<i64>,
}

/// A live session: the stored id (the hash of the cookie value) and its data.
#[derive(Clone, Debug)]
pub struct Session {
    pub id_hash: String,
    pub data: SessionData,
}

/// The session cookie's name for these settings.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-exogate_session"
    } else {
        "exogate_session"
    }
}

/// A `Set-Cookie` value for a session id (or an expired one to clear it when `value` is None).
pub fn session_cookie(secure: bool, value: Option<&str>) -> HeaderValue {
    let mut c = Cookie::build((cookie_name(secure), value.unwrap_or("").to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build();
    if value.is_none() {
        c.make_removal();
    }
    HeaderValue::from_str(&c.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl Session {
    /// When this session ends whatever happens: its creation plus the absolute lifetime.
    fn absolute_end(&self, st: &WebState) -> Timestamp {
        let secs = st.app.login.settings.session_absolute_secs;
        // (msft-signin)
        let secs = self.data.cap_secs.map_or(secs, |cap| cap.min(secs));
        Timestamp::from_unix_millis(self.data.created).plus_secs(secs)
    }

    /// Saves the session with a fresh idle expiry (never past its absolute end).
    pub async fn save(&mut self, st: &WebState) -> Result<(), HttpError> {
        let now = st.app.clock.now();
        self.data.touched = now.unix_millis();
        let rec = SessionRecord {
            id: self.id_hash.clone(),
            data: serde_json::to_string(&self.data)
                .map_err(|e| HttpError::from(exogate_core::CoreError::internal(e.to_string())))?,
            expires_at: now.plus_secs(SESSION_IDLE_SECS).min(self.absolute_end(st)),
        };
        st.app
            .store
            .put_session(&rec)
            .await
            .map_err(|e| HttpError::from(exogate_core::CoreError::from(e)))
    }

    /// Creates a new session for `user` and returns it with the cookie value to send.
    pub async fn create(st: &WebState, user: UserId) -> Result<(Session, String), HttpError> {
        Self::create_capped(st, user, None).await
    }

    // (msft-signin)
    /// [`Session::create`] with an absolute lifetime of at most `cap_secs`.
    pub async fn create_capped(
        st: &WebState,
        user: UserId,
        cap_secs: Option<i64>,
    ) -> Result<(Session, String), HttpError> {
        let value = random_token(32);
        let mut s = Session {
            id_hash: sha256_hex(&value),
            data: SessionData {
                user: user.to_string(),
                csrf: random_token(32),
                touched: 0,
                consent: BTreeMap::new(),
                created: st.app.clock.now().unix_millis(),
                cap_secs,
            },
        };
        s.save(st).await?;
        Ok((s, value))
    }

    /// Loads the session named by the request's cookie, if live (None also when the database
    /// fails; [`Session::load`] tells the two apart).
    pub async fn from_headers(st: &WebState, headers: &HeaderMap) -> Option<Session> {
        Self::load(st, headers).await.ok().flatten()
    }

    /// Loads the session named by the request's cookie: None when there is no live one, an
    /// error when the database cannot say (a signed-in person is not signed out by an outage).
    pub async fn load(
        st: &WebState,
        headers: &HeaderMap,
    ) -> Result<Option<Session>, exogate_core::ports::StoreError> {
        let jar = CookieJar::from_headers(headers);
        let Some(cookie) = jar.get(cookie_name(st.app.secure_cookies)) else {
            return Ok(None);
        };
        let value = cookie.value().to_owned();
        if value.is_empty() || value.len() > 128 {
            return Ok(None);
        }
        let id_hash = sha256_hex(&value);
        let now = st.app.clock.now();
        let Some(rec) = st.app.store.get_session(&id_hash, now).await? else {
            return Ok(None);
        };
        let Ok(data) = serde_json::from_str::<SessionData>(&rec.data) else {
            return Ok(None);
        };
        let mut s = Session { id_hash, data };
        if now >= s.absolute_end(st) {
            // Past its absolute lifetime, however recently used: gone for good.
            let _ = st.app.store.delete_session(&s.id_hash).await;
            return Ok(None);
        }
        if now.unix_millis() - s.data.touched > SESSION_TOUCH_SECS * 1000 {
            let _ = s.save(st).await;
        }
        Ok(Some(s))
    }

    /// Whether `token` is this session's CSRF token.
    pub fn csrf_ok(&self, token: &str) -> bool {
        same(&self.data.csrf, token)
    }
}

/// The caller: a signed-in person (session) or an API token's owner.
#[derive(Clone, Debug)]
pub struct Auth {
    pub actor: Actor,
    /// Present for cookie sessions, absent for bearer tokens.
    pub session: Option<Session>,
}

impl Auth {
    /// The actor as seen by the JSON API: sessions act through `api`, tokens keep their `mcp`
    /// channel (so an agent's token can never approve or reject).
    pub fn api_actor(&self) -> Actor {
        let mut a = self.actor.clone();
        if self.session.is_some() {
            a.channel = Channel::Api;
        }
        a
    }

    /// The CSRF token to put into forms.
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map_or("", |s| s.data.csrf.as_str())
    }

    /// Checks a CSRF token sent with a session-authenticated change. Bearer calls need none.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), HttpError> {
        match &self.session {
            None => Ok(()),
            Some(s) if token.is_some_and(|t| s.csrf_ok(t)) => Ok(()),
            Some(_) => Err(HttpError::csrf()),
        }
    }
}

/// The session's user, if it still exists and is enabled; an error when the database cannot say.
async fn user_of(st: &WebState, id: &str) -> Result<Option<User>, HttpError> {
    let Ok(id) = UserId::parse(id) else {
        return Ok(None);
    };
    let user = st.app.store.get_user(id).await.map_err(store_failed)?;
    Ok(user.filter(|u| !u.disabled))
}

/// A store failure while authenticating: `database_unavailable` when the database is down.
fn store_failed(e: exogate_core::ports::StoreError) -> HttpError {
    HttpError::from(exogate_core::CoreError::from(e))
}

impl FromRequestParts<WebState> for Auth {
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, st: &WebState) -> Result<Self, HttpError> {
        if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
            let v = v.to_str().map_err(|_| HttpError::unauthenticated())?;
            let Some(secret) = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
            else {
                return Err(HttpError::unauthenticated());
            };
            let agent = parts
                .headers
                .get("x-exogate-agent")
                .and_then(|a| a.to_str().ok());
            let actor = users::authenticate_token(st.app.ctx(), secret.trim(), agent).await?;
            // The same per-token budget as MCP tool calls.
            st.app.limits.check_token(&actor)?;
            return Ok(Auth {
                actor,
                session: None,
            });
        }
        let session = Session::load(st, &parts.headers)
            .await
            .map_err(store_failed)?
            .ok_or_else(HttpError::unauthenticated)?;
        let user = user_of(st, &session.data.user)
            .await?
            .ok_or_else(HttpError::unauthenticated)?;
        Ok(Auth {
            actor: Actor {
                user,
                channel: Channel::Web,
            },
            session: Some(session),
        })
    }
}

impl axum::response::IntoResponse for HttpError {
    fn into_response(self) -> axum::response::Response {
        super::error::ApiError(self).into_response()
    }
}

/// The connection's peer address, when the server provides it (`ConnectInfo`); `None` for a
/// router called without connect info (then every caller shares one limiter key).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub Option<std::net::SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// Checks a login from `peer` (the connection's address; `None` when unknown) and returns the
/// user on success. Goes through the app's [`crate::login::LoginGuard`]: a locked-out address or
/// user name is answered `too_many_attempts` without checking the password, and the check runs
/// under the password gate. Records the attempt in the audit log, within the guard's budget.
pub async fn check_login(
    st: &WebState,
    name: &str,
    password: &str,
    code: Option<&str>,
    peer: Option<std::net::SocketAddr>,
) -> Result<User, HttpError> {
    // (msft-signin) local accounts switched off: no password is checked.
    if !st.app.local_accounts {
        return Err(HttpError::new(
            axum::http::StatusCode::FORBIDDEN,
            "local_accounts_off",
            "local accounts are switched off: sign in with Microsoft",
        ));
    }
    let guard = &st.app.login;
    // (hardening) The user name's lock-out is in the store, shared by every replica and CLI.
    let attempt = match guard
        .begin_shared(
            &*st.app.store,
            &crate::login::address_key(peer),
            &crate::login::user_key(name),
            st.app.clock.now(),
        )
        .await
    {
        Ok(attempt) => attempt,
        Err(crate::login::Refused::Locked { wait_secs, audit }) => {
            let now = st.app.clock.now();
            if audit {
                // The first refusal of this stretch of lock-outs: its own row (within the
                // budget of failure rows), once whichever process refuses next.
                let plan = guard.audit_failure(now);
                if let Some(u) = plan.summary {
                    let _ = users::record_unrecorded_login_failures(
                        st.app.ctx(),
                        u.count,
                        u.first,
                        u.last,
                    )
                    .await;
                }
                if plan.write {
                    let _ = users::record_locked_out(st.app.ctx(), name, &Channel::Web, wait_secs)
                        .await;
                }
            } else {
                audit_login(st, guard.audit_refused(now), name, false).await;
            }
            return Err(HttpError::too_many_attempts(wait_secs));
        }
        Err(crate::login::Refused::Store(e)) => {
            return Err(HttpError::from(exogate_core::CoreError::from(e)));
        }
    };
    let user = match exogate_core::UserName::parse(name) {
        Ok(n) => st.app.store.get_user_by_name(&n).await.ok().flatten(),
        Err(_) => None,
    };
    let phc = user
        .as_ref()
        .and_then(|u| u.password_hash.as_ref())
        .map_or_else(
            || crate::passwords::DUMMY_HASH.to_owned(),
            |h| h.expose().to_owned(),
        );
    let matched = guard.gate.verify(password.to_owned(), phc).await
        && user.as_ref().is_some_and(|u| u.password_hash.is_some());
    let mut ok = matched && user.as_ref().is_some_and(|u| !u.disabled);
    // (msft-signin) the second factor, checked only after the password; a wrong code counts as a
    // failed attempt (the same lock-outs bound code guessing).
    let mut factor_error = None;
    if ok
        && let Some(u) = user.as_ref()
        && let Err(e) = second_factor(st, u, code.unwrap_or("")).await
    {
        ok = false;
        factor_error = Some(e);
    }
    let now = st.app.clock.now();
    if ok {
        guard.succeeded_shared(&*st.app.store, attempt).await;
        audit_login(st, guard.audit_success(now), name, true).await;
        // Housekeeping: sessions past their idle expiry go at each login.
        let _ = st.app.store.delete_expired_sessions(now).await;
    } else if let Some(e) = &factor_error {
        // (msft-signin) the password was right: the row names the second factor's refusal.
        let plan = guard.audit_failure(now);
        if let Some(u) = plan.summary {
            let _ = users::record_unrecorded_login_failures(st.app.ctx(), u.count, u.first, u.last)
                .await;
        }
        if plan.write {
            let _ = users::record_second_factor_refusal(st.app.ctx(), name, &Channel::Web, e.code)
                .await;
        }
    } else {
        audit_login(st, guard.audit_failure(now), name, false).await;
    }
    match (ok, user) {
        (true, Some(u)) => Ok(u),
        _ => Err(factor_error.unwrap_or_else(HttpError::login_failed)),
    }
}

// (msft-signin)
/// The second factor of a local sign-in whose password was right.
async fn second_factor(st: &WebState, user: &User, code: &str) -> Result<(), HttpError> {
    use exogate_core::ops::totp::{self, Outcome};
    match totp::verify(st.app.ctx(), user, code).await? {
        Outcome::NotEnrolled if totp::required(st.app.second_factor, user) => Err(HttpError::new(
            axum::http::StatusCode::FORBIDDEN,
            "second_factor_not_enrolled",
            "this role needs a second factor: ask the operator to run `exogate user second-factor NAME`",
        )),
        Outcome::NotEnrolled | Outcome::Totp | Outcome::Recovery => Ok(()),
        Outcome::Refused(r) => Err(HttpError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "second_factor_failed",
            format!("a code from your authenticator app (or a recovery code) is required: {r}"),
        )),
    }
}

/// Writes what `plan` says: the summary of unrecorded failures, then this attempt's row.
async fn audit_login(st: &WebState, plan: crate::login::AuditPlan, name: &str, ok: bool) {
    let ctx = st.app.ctx();
    if let Some(u) = plan.summary {
        let _ = users::record_unrecorded_login_failures(ctx, u.count, u.first, u.last).await;
    }
    if plan.write {
        let _ = users::record_login(ctx, name, &Channel::Web, ok).await;
    }
}

/// `now` in milliseconds, for session bookkeeping.
pub(crate) fn now_ms(st: &WebState) -> i64 {
    let t: Timestamp = st.app.clock.now();
    t.unix_millis()
}
