//! Entra signing people in: OpenID Connect, authorization code with PKCE
//! (`docs/MICROSOFT.md#sign-in`).
//!
//! - `GET /{tenant}/oauth2/v2.0/authorize`: checks the client and its redirect URI, then shows
//!   the accounts that may sign in there (one tenant's, or every tenant's for `organizations`
//!   and `common`), each a button; `POST` the same path picks one and redirects back with a
//!   single-use `code` and the `state`.
//! - The token endpoint (`grant_type=authorization_code`, in `entra/token.rs`) calls
//!   [`redeem`]: client secret, redirect URI, PKCE `S256` verifier, a code used once and within
//!   10 minutes; answers with an RS256 `id_token` (v2.0 claims) signed by the current sign-in key.
//! - The sign-in keys rotate (`POST /_emulator/signin/rotate`); the JWKS publishes the current and
//!   the previous one.
//! - Control API (`/_emulator/signin`): `GET` (apps, accounts, tamper), `POST /accounts` (an
//!   [`Account`], replaced by `oid`), `PUT /accounts/{oid}/groups` (`[group ids]`), `POST /apps`
//!   (a [`SigninApp`]), `POST /rotate`, `POST /tamper` (a [`Tamper`]: the next id tokens get a
//!   wrong signature, nonce, audience or issuer tenant until reset with `{}`).
//!
//! Every emulator starts with the demo sign-in tenant ([`demo`]): staff accounts in groups.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::entra::html::{escape, page};
use crate::entra::{SigningKeys, new_id, redirect_uri_allowed};
use crate::state::Shared;

/// The demo world's sign-in tenant, app and groups.
pub mod demo {
    use uuid::{Uuid, uuid};
    /// The MSP's own tenant (its staff sign in here).
    pub const TENANT: Uuid = uuid!("5a1e5000-0000-4000-8000-000000000001");
    /// Another organisation's tenant (its users must be refused).
    pub const OTHER_TENANT: Uuid = uuid!("5a1e5000-0000-4000-8000-0000000000ff");
    /// The sign-in app registered in the MSP's tenant.
    pub const APP: Uuid = uuid!("5a1e5000-0000-4000-8000-00000000a990");
    pub const SECRET: &str = "demo-signin-secret-not-for-production";
    pub const ADMINS: Uuid = uuid!("5a1e5000-0000-4000-8000-00000000e001");
    pub const MANAGERS: Uuid = uuid!("5a1e5000-0000-4000-8000-00000000e002");
    pub const TECHNICIANS: Uuid = uuid!("5a1e5000-0000-4000-8000-00000000e003");
}

/// An app people sign in to (a web app with a client secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigninApp {
    pub client_id: Uuid,
    pub secret: String,
    /// Registered redirect URIs (`*` suffix and loopback ports as for consent).
    pub redirect_uris: Vec<String>,
}

/// A person who can sign in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Account {
    pub tenant: Uuid,
    pub oid: Uuid,
    pub name: String,
    pub preferred_username: String,
    #[serde(default)]
    pub groups: Vec<Uuid>,
    /// App roles assigned to the person in the sign-in app.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Signed in with MFA (`amr` holds `mfa`).
    #[serde(default)]
    pub mfa: bool,
}

/// What the next id tokens get wrong, for tests of the relying party.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tamper {
    /// Signed by a key that is not in the JWKS (under the current `kid`).
    pub bad_signature: bool,
    /// A `nonce` other than the one the authorize request carried.
    pub wrong_nonce: bool,
    /// An `aud` other than the client id.
    pub wrong_audience: bool,
    /// `iss` names this tenant while `tid` stays the account's.
    pub issuer_tenant: Option<Uuid>,
}

struct Code {
    client_id: Uuid,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    oid: Uuid,
    expires: i64,
    used: bool,
}

struct Inner {
    /// Oldest first; the last signs.
    keys: Vec<Arc<SigningKeys>>,
    apps: BTreeMap<Uuid, SigninApp>,
    accounts: Vec<Account>,
    codes: BTreeMap<String, Code>,
    tamper: Tamper,
    rogue: Option<Arc<SigningKeys>>,
}

/// The sign-in half's state (its own lock, never held across an `.await`).
pub struct Signin(Mutex<Inner>);

impl Signin {
    /// The demo sign-in tenant: `ada` (admins, MFA), `max` (managers, MFA), `tess`
    /// (technicians, no MFA), `otto` (no group), and `eve` of another tenant (admins' id).
    pub fn demo() -> anyhow::Result<Self> {
        let acct = |tenant, n: u128, name: &str, user: &str, groups: Vec<Uuid>, mfa| Account {
            tenant,
            oid: Uuid::from_u128(0x5a1e_5000_0000_4000_8000_0000_0000_0000 + n),
            name: name.to_owned(),
            preferred_username: format!("{user}@msp.example"),
            groups,
            roles: Vec::new(),
            mfa,
        };
        let accounts = vec![
            acct(
                demo::TENANT,
                1,
                "Ada Admin",
                "ada",
                vec![demo::ADMINS],
                true,
            ),
            acct(
                demo::TENANT,
                2,
                "Max Manager",
                "max",
                vec![demo::MANAGERS],
                true,
            ),
            acct(
                demo::TENANT,
                3,
                "Tess Tech",
                "tess",
                vec![demo::TECHNICIANS],
                false,
            ),
            acct(demo::TENANT, 4, "Otto Outsider", "otto", vec![], true),
            Account {
                preferred_username: "eve@other.example".to_owned(),
                ..acct(
                    demo::OTHER_TENANT,
                    5,
                    "Eve Elsewhere",
                    "eve",
                    vec![demo::ADMINS],
                    true,
                )
            },
        ];
        let app = SigninApp {
            client_id: demo::APP,
            secret: demo::SECRET.to_owned(),
            redirect_uris: vec![
                "http://127.0.0.1/*".to_owned(),
                "http://localhost/*".to_owned(),
            ],
        };
        Ok(Self(Mutex::new(Inner {
            keys: vec![Arc::new(SigningKeys::generate()?)],
            apps: BTreeMap::from([(app.client_id, app)]),
            accounts,
            codes: BTreeMap::new(),
            tamper: Tamper::default(),
            rogue: None,
        })))
    }

    /// The JWKS entries of the current and the previous sign-in key.
    pub(crate) fn jwks_entries(&self, issuer: &str) -> Vec<Value> {
        let inner = self.0.lock();
        let n = inner.keys.len();
        inner.keys[n.saturating_sub(2)..]
            .iter()
            .filter_map(|k| k.jwks(issuer)["keys"].get(0).cloned())
            .collect()
    }
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route(
        "/{tenant}/oauth2/v2.0/authorize",
        get(authorize_page).post(authorize_pick),
    )
}

/// Mounted under `/_emulator`.
pub fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/signin", get(control_get))
        .route("/signin/accounts", post(control_account))
        .route("/signin/accounts/{oid}/groups", put(control_groups))
        .route("/signin/apps", post(control_app))
        .route("/signin/rotate", post(control_rotate))
        .route("/signin/tamper", post(control_tamper))
}

fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1><p id=\"error-code\">AADSTS{code}: {}</p>",
        escape(message)
    );
    (status, Html(page("Sign in", &body))).into_response()
}

/// Which accounts `tenant` (a GUID, `organizations` or `common`) offers.
fn tenant_filter(tenant: &str) -> Option<Option<Uuid>> {
    match tenant.to_ascii_lowercase().as_str() {
        "organizations" | "common" => Some(None),
        t => Uuid::parse_str(t).ok().map(Some),
    }
}

/// Checks an authorize request's parameters; the error page when they are wrong.
#[allow(clippy::result_large_err, reason = "an error page, built once")]
fn check_authorize(shared: &Shared, q: &BTreeMap<String, String>) -> Result<(), Response> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let Some(app) = Uuid::parse_str(get("client_id"))
        .ok()
        .and_then(|id| shared.signin.0.lock().apps.get(&id).cloned())
    else {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            700016,
            "Application was not found in the directory.",
        ));
    };
    if !redirect_uri_allowed(&app.redirect_uris, get("redirect_uri")) {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            50011,
            "The redirect URI specified in the request does not match the redirect URIs configured for the application.",
        ));
    }
    if get("response_type") != "code" {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            700054,
            "response_type 'code' is required.",
        ));
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() < 43 {
        return Err(error_page(
            StatusCode::BAD_REQUEST,
            501491,
            "Invalid size of code_challenge parameter; an S256 code_challenge is required.",
        ));
    }
    Ok(())
}

async fn authorize_page(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(filter) = tenant_filter(&tenant) else {
        return error_page(StatusCode::BAD_REQUEST, 90002, "Tenant not found.");
    };
    if let Err(r) = check_authorize(&shared, &q) {
        return r;
    }
    let hidden: String = q
        .iter()
        .filter(|(k, _)| k.as_str() != "account")
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let accounts: Vec<Account> = shared
        .signin
        .0
        .lock()
        .accounts
        .iter()
        .filter(|a| filter.is_none_or(|t| t == a.tenant))
        .cloned()
        .collect();
    let mut rows = String::new();
    for a in &accounts {
        let user = a.preferred_username.split('@').next().unwrap_or("");
        rows.push_str(&format!(
            "<li><form method=\"post\">{hidden}<input type=\"hidden\" name=\"account\" value=\"{oid}\"><button type=\"submit\" id=\"pick-{user}\">{name} ({upn})</button> tenant {tenant}, {mfa}</form></li>",
            oid = a.oid,
            user = escape(user),
            name = escape(&a.name),
            upn = escape(&a.preferred_username),
            tenant = a.tenant,
            mfa = if a.mfa { "MFA" } else { "password only" },
        ));
    }
    let body = format!("<h1>Pick an account</h1><ul id=\"accounts\">{rows}</ul>");
    let mut r = Html(page("Sign in to your account", &body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn authorize_pick(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut q = BTreeMap::new();
    for (k, v) in pairs {
        q.entry(k).or_insert(v);
    }
    let Some(filter) = tenant_filter(&tenant) else {
        return error_page(StatusCode::BAD_REQUEST, 90002, "Tenant not found.");
    };
    if let Err(r) = check_authorize(&shared, &q) {
        return r;
    }
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let Ok(oid) = Uuid::parse_str(&get("account")) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50034,
            "The user account does not exist.",
        );
    };
    let code = format!("{}.{}", new_id(&shared).simple(), new_id(&shared).simple());
    let now = shared.clock.now().unix_timestamp();
    {
        let mut inner = shared.signin.0.lock();
        if !inner
            .accounts
            .iter()
            .any(|a| a.oid == oid && filter.is_none_or(|t| t == a.tenant))
        {
            return error_page(
                StatusCode::BAD_REQUEST,
                50034,
                "The user account does not exist.",
            );
        }
        inner.codes.retain(|_, c| c.expires > now);
        inner.codes.insert(
            code.clone(),
            Code {
                client_id: Uuid::parse_str(&get("client_id")).unwrap_or_default(),
                redirect_uri: get("redirect_uri"),
                challenge: get("code_challenge"),
                nonce: q.get("nonce").cloned(),
                oid,
                expires: now + 600,
                used: false,
            },
        );
    }
    let Ok(mut url) = url::Url::parse(&get("redirect_uri")) else {
        return error_page(StatusCode::BAD_REQUEST, 50011, "Invalid redirect URI.");
    };
    url.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = q.get("state") {
        url.query_pairs_mut().append_pair("state", state);
    }
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(url.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Why a code redemption was refused: the token endpoint's `error`, AADSTS code and message.
pub struct Refused {
    pub error: &'static str,
    pub code: u32,
    pub message: &'static str,
}

fn refused(error: &'static str, code: u32, message: &'static str) -> Refused {
    Refused {
        error,
        code,
        message,
    }
}

/// `grant_type=authorization_code` at the token endpoint: the token response's body.
pub(crate) fn redeem(shared: &Shared, form: &BTreeMap<String, String>) -> Result<Value, Refused> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let now = shared.clock.now().unix_timestamp();
    let mut inner = shared.signin.0.lock();
    let client_id = Uuid::parse_str(get("client_id")).ok();
    let Some(app) = client_id.and_then(|id| inner.apps.get(&id).cloned()) else {
        return Err(refused(
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        ));
    };
    if !same(app.secret.as_bytes(), get("client_secret").as_bytes()) {
        return Err(refused(
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        ));
    }
    let Some(code) = inner.codes.get_mut(get("code")) else {
        return Err(refused(
            "invalid_grant",
            9002313,
            "Invalid request. The authorization code is malformed or invalid.",
        ));
    };
    if code.used {
        return Err(refused(
            "invalid_grant",
            54005,
            "OAuth2 Authorization code was already redeemed.",
        ));
    }
    code.used = true;
    if code.expires <= now {
        return Err(refused(
            "invalid_grant",
            70008,
            "The provided authorization code has expired.",
        ));
    }
    if code.client_id != app.client_id {
        return Err(refused(
            "invalid_grant",
            70000,
            "The authorization code was issued to another client.",
        ));
    }
    if code.redirect_uri != get("redirect_uri") {
        return Err(refused(
            "invalid_grant",
            50148,
            "The redirect_uri does not match the one the code was issued for.",
        ));
    }
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, get("code_verifier").as_bytes());
    if !same(
        URL_SAFE_NO_PAD.encode(digest.as_ref()).as_bytes(),
        code.challenge.as_bytes(),
    ) {
        return Err(refused(
            "invalid_grant",
            501481,
            "The code_verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    let (oid, nonce) = (code.oid, code.nonce.clone());
    let Some(account) = inner.accounts.iter().find(|a| a.oid == oid).cloned() else {
        return Err(refused(
            "invalid_grant",
            50034,
            "The user account does not exist.",
        ));
    };
    let tamper = inner.tamper.clone();
    let base = shared.base_url.trim_end_matches('/');
    let iss_tenant = tamper.issuer_tenant.unwrap_or(account.tenant);
    let sub = {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{}|{}", account.oid, app.client_id).as_bytes(),
        );
        URL_SAFE_NO_PAD.encode(&d.as_ref()[..24])
    };
    let mut claims = json!({
        "aud": if tamper.wrong_audience { Uuid::from_u128(7).to_string() } else { app.client_id.to_string() },
        "iss": format!("{base}/{iss_tenant}/v2.0"),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "sub": sub,
        "oid": account.oid,
        "tid": account.tenant,
        "name": account.name,
        "preferred_username": account.preferred_username,
        "amr": if account.mfa { json!(["pwd", "mfa"]) } else { json!(["pwd"]) },
        "ver": "2.0",
    });
    if let Some(n) = nonce {
        claims["nonce"] = json!(if tamper.wrong_nonce {
            format!("{n}-not")
        } else {
            n
        });
    }
    if !account.groups.is_empty() {
        claims["groups"] = json!(account.groups);
    }
    if !account.roles.is_empty() {
        claims["roles"] = json!(account.roles);
    }
    let current = inner
        .keys
        .last()
        .cloned()
        .ok_or_else(|| refused("server_error", 50000, "No signing key."))?;
    let signer = if tamper.bad_signature {
        if inner.rogue.is_none() {
            inner.rogue = SigningKeys::generate().ok().map(Arc::new);
        }
        inner.rogue.clone().unwrap_or_else(|| current.clone())
    } else {
        current.clone()
    };
    drop(inner);
    let id_token = signer
        .sign_as(&claims, current.kid())
        .map_err(|_| refused("server_error", 50000, "Signing failed."))?;
    Ok(json!({
        "token_type": "Bearer",
        "scope": "openid profile",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": format!("{}{}", new_id(shared).simple(), new_id(shared).simple()),
        "id_token": id_token,
    }))
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn control_get(State(shared): State<Arc<Shared>>) -> Response {
    let inner = shared.signin.0.lock();
    let apps: Vec<Value> = inner
        .apps
        .values()
        .map(|a| json!({"client_id": a.client_id, "redirect_uris": a.redirect_uris}))
        .collect();
    Json(json!({
        "apps": apps,
        "accounts": inner.accounts,
        "tamper": inner.tamper,
        "kids": inner.keys.iter().map(|k| k.kid().to_owned()).collect::<Vec<_>>(),
    }))
    .into_response()
}

fn bad(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "bad_request", "message": e.to_string()}})),
    )
        .into_response()
}

async fn control_account(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let account: Account = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return bad(e),
    };
    let mut inner = shared.signin.0.lock();
    inner.accounts.retain(|a| a.oid != account.oid);
    inner.accounts.push(account.clone());
    (StatusCode::CREATED, Json(account)).into_response()
}

async fn control_groups(
    State(shared): State<Arc<Shared>>,
    Path(oid): Path<Uuid>,
    body: Bytes,
) -> Response {
    let groups: Vec<Uuid> = match serde_json::from_slice(&body) {
        Ok(g) => g,
        Err(e) => return bad(e),
    };
    let mut inner = shared.signin.0.lock();
    match inner.accounts.iter_mut().find(|a| a.oid == oid) {
        Some(a) => {
            a.groups = groups;
            Json(a.clone()).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "not_found", "message": "no such account"}})),
        )
            .into_response(),
    }
}

async fn control_app(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let app: SigninApp = match serde_json::from_slice(&body) {
        Ok(a) => a,
        Err(e) => return bad(e),
    };
    shared.signin.0.lock().apps.insert(app.client_id, app);
    StatusCode::CREATED.into_response()
}

async fn control_rotate(State(shared): State<Arc<Shared>>) -> Response {
    let key = match SigningKeys::generate() {
        Ok(k) => Arc::new(k),
        Err(e) => return bad(e),
    };
    let kid = key.kid().to_owned();
    shared.signin.0.lock().keys.push(key);
    Json(json!({"kid": kid})).into_response()
}

async fn control_tamper(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let tamper: Tamper = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return bad(e),
    };
    shared.signin.0.lock().tamper = tamper.clone();
    Json(tamper).into_response()
}
