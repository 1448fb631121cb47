//! OAuth sign-in for remote MCP clients: exogate is the resource server (`/mcp`) and its own
//! authorization server (rules in `exogate_core::oauth`, flows in `exogate_core::ops::oauth`).
//!
//! - Discovery: `/.well-known/oauth-protected-resource[/mcp]` (RFC 9728) and
//!   `/.well-known/oauth-authorization-server` (RFC 8414).
//! - Clients: a Client ID Metadata Document (the `client_id` is an https URL; the document is
//!   fetched here with time and size limits, no redirects, and must name that URL as its
//!   `client_id`), or Dynamic Client Registration at `/oauth/register` (RFC 7591) for older
//!   clients. All clients are public: PKCE S256 is required, no client secret is issued.
//! - `/oauth/authorize`: after the normal sign-in, a consent page names the client and what it
//!   may do; the decision is a form with the session's CSRF token, so only the signed-in
//!   person's own page can give it. Approving sends a single-use code to the redirect URI.
//! - `/oauth/token`: the `authorization_code` and `refresh_token` grants (rotation; a reused
//!   refresh token revokes its family).
//! - `/agents`: the person's grants with their last use; revoking one stops it at once.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use exogate_core::ApiTokenId;
use exogate_core::oauth::{GRANT_ABILITIES, OAuthClient, OAuthError, SCOPE};
use exogate_core::ops::oauth::{self as flows, AuthorizeRequest, ClientMetadata, NewTokens};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::WebState;
use super::auth::random_token;
use super::error::{HttpError, PageError, PageResult};
use super::layout::{CsrfForm, Nav, PageAuth};
use crate::app::App;

/// The MCP endpoint's URL: the resource every token is bound to.
pub fn resource(app: &App) -> String {
    app.url("/mcp")
}

/// The issuer: the public URL without a trailing `/`.
fn issuer(app: &App) -> String {
    app.url("")
}

/// Where the protected resource metadata of `/mcp` is (sent in `WWW-Authenticate`).
pub fn resource_metadata_url(app: &App) -> String {
    app.url("/.well-known/oauth-protected-resource/mcp")
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// RFC 9728 protected resource metadata.
pub async fn protected_resource(State(st): State<WebState>) -> Response {
    Json(json!({
        "resource": resource(&st.app),
        "authorization_servers": [issuer(&st.app)],
        "scopes_supported": [SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "exogate",
    }))
    .into_response()
}

/// RFC 8414 authorization server metadata.
pub async fn authorization_server(State(st): State<WebState>) -> Response {
    let app = &st.app;
    Json(json!({
        "issuer": issuer(app),
        "authorization_endpoint": app.url("/oauth/authorize"),
        "token_endpoint": app.url("/oauth/token"),
        "registration_endpoint": app.url("/oauth/register"),
        "scopes_supported": [SCOPE],
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

/// An OAuth error answer (`{"error","error_description"}`), never cached.
fn oauth_error(e: OAuthError) -> Response {
    let (status, description) = match &e {
        OAuthError::InvalidClient(_) => (StatusCode::UNAUTHORIZED, e.to_string()),
        OAuthError::Core(c) => {
            tracing::warn!(error = %c, "OAuth request failed");
            (super::error::status_of(c), "try again later".to_owned())
        }
        _ => (StatusCode::BAD_REQUEST, e.to_string()),
    };
    no_store(
        (
            status,
            Json(json!({ "error": e.code(), "error_description": description })),
        )
            .into_response(),
    )
}

/// RFC 7591 registration request (unknown fields are ignored, as the RFC asks).
#[derive(Deserialize)]
pub struct RegistrationRequest {
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    client_name: Option<String>,
}

/// `POST /oauth/register`: Dynamic Client Registration for clients without a metadata document.
pub async fn register(
    State(st): State<WebState>,
    super::auth::Peer(peer): super::auth::Peer,
    body: Result<Json<RegistrationRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    // (hardening) A budget per client address, before anything is parsed or stored.
    if let Err(retry_after) = st.app.registrations.check(&crate::login::address_key(peer)) {
        return too_many(
            "rate_limited",
            format!("too many registrations from this address; retry in {retry_after} s"),
            Some(retry_after),
        );
    }
    let Ok(Json(req)) = body else {
        return registration_error("the body must be a JSON client metadata object");
    };
    let client_id = format!("exogate-{}", random_token(16));
    let meta = ClientMetadata {
        client_name: req.client_name,
        redirect_uris: req.redirect_uris,
    };
    match flows::register_client(st.app.ctx(), &client_id, &meta, st.app.oauth.registration).await {
        Ok(c) => no_store(
            (
                StatusCode::CREATED,
                Json(json!({
                    "client_id": c.client_id,
                    "client_id_issued_at": c.created_at.unix_millis() / 1000,
                    "client_name": c.name,
                    "redirect_uris": c.redirect_uris,
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": "none",
                    "scope": SCOPE,
                })),
            )
                .into_response(),
        ),
        Err(OAuthError::InvalidClient(m)) => registration_error(&m),
        // (hardening)
        Err(e @ OAuthError::TooManyClients) => too_many(e.code(), e.to_string(), None),
        Err(e) => oauth_error(e),
    }
}

/// (hardening) `429` with an OAuth-shaped body (and `Retry-After` when known), never cached.
fn too_many(code: &str, description: String, retry_after: Option<u64>) -> Response {
    let mut r = no_store(
        (
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({ "error": code, "error_description": description })),
        )
            .into_response(),
    );
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

fn registration_error(message: &str) -> Response {
    no_store(
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_client_metadata", "error_description": message })),
        )
            .into_response(),
    )
}

/// Whether `client_id` names a Client ID Metadata Document (a URL) rather than a registration.
fn is_metadata_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Checks a client metadata URL before anything is fetched: `https` with a path (or `http` on a
/// loopback host when `[oauth] metadata_allow_loopback_http`), no user info, no fragment, and
/// no IP literal of a private, loopback or link-local network (unless loopback is allowed).
fn check_metadata_url(app: &App, client_id: &str) -> Result<Url, OAuthError> {
    let bad = |why: &str| OAuthError::InvalidClient(format!("client metadata URL: {why}"));
    if client_id.len() > 2048 {
        return Err(bad("longer than 2,048 bytes"));
    }
    let url = Url::parse(client_id).map_err(|_| bad("not a URL"))?;
    if url.as_str() != client_id {
        return Err(bad("not in normal form"));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(bad("user info or a fragment"));
    }
    if url.path() == "/" {
        return Err(bad("no path"));
    }
    let allow_loopback = app.oauth.metadata_allow_loopback_http;
    let host = url.host().ok_or_else(|| bad("no host"))?;
    // (hardening) The rule of `exogate_core::outbound` (IPv4-mapped, shared, reserved … too;
    // `localhost` and names under it); other names are checked when they are resolved.
    let loopback = match &host {
        url::Host::Domain(d) => exogate_core::outbound::loopback_name(d),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    let private = match &host {
        url::Host::Domain(d) => exogate_core::outbound::loopback_name(d),
        url::Host::Ipv4(ip) => exogate_core::outbound::refused((*ip).into()).is_some(),
        url::Host::Ipv6(ip) => exogate_core::outbound::refused((*ip).into()).is_some(),
    };
    match url.scheme() {
        "https" if !private || (loopback && allow_loopback) => Ok(url),
        "http" if loopback && allow_loopback => Ok(url),
        "https" => Err(bad("a private or loopback address")),
        _ => Err(bad("must be https")),
    }
}

#[derive(Deserialize)]
struct MetadataDocument {
    client_id: String,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
}

/// Fetches and checks a Client ID Metadata Document.
async fn fetch_metadata_client(app: &App, client_id: &str) -> Result<OAuthClient, OAuthError> {
    let url = check_metadata_url(app, client_id)?;
    let bad = |why: String| OAuthError::InvalidClient(format!("client metadata document: {why}"));
    // (hardening) The document's host name is resolved through the checking resolver: a name
    // that resolves to this machine or a private network is not fetched (unless loopback
    // metadata is allowed, for tests), and no proxy from the environment is used.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(app.oauth.metadata_timeout)
        .no_proxy()
        .dns_resolver(crate::outbound::CheckedResolver {
            allow_private: app.oauth.metadata_allow_loopback_http,
        })
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut resp = http
        .get(url)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|_| bad("could not be fetched".into()))?;
    if resp.status() != reqwest::StatusCode::OK {
        return Err(bad(format!("answered HTTP {}", resp.status().as_u16())));
    }
    let max = app.oauth.metadata_max_bytes;
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(bad(format!("larger than {max} bytes")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| bad("could not be read".into()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(bad(format!("larger than {max} bytes")));
        }
    }
    let doc: MetadataDocument = serde_json::from_slice(&body)
        .map_err(|_| bad("not a JSON client metadata object".into()))?;
    if doc.client_id != client_id {
        return Err(bad(
            "its client_id is not the URL it was fetched from".into()
        ));
    }
    if doc
        .client_name
        .as_deref()
        .is_none_or(|n| n.trim().is_empty())
    {
        return Err(bad("it has no client_name".into()));
    }
    let meta = ClientMetadata {
        client_name: doc.client_name,
        redirect_uris: doc.redirect_uris,
    };
    let (name, redirect_uris) = flows::check_client_metadata(client_id, &meta)?;
    Ok(OAuthClient {
        client_id: client_id.to_owned(),
        name,
        redirect_uris,
        created_at: app.clock.now(),
    })
}

/// The client named by `client_id`: its metadata document, or its registration.
async fn find_client(app: &App, client_id: &str) -> Result<OAuthClient, OAuthError> {
    if is_metadata_url(client_id) {
        return fetch_metadata_client(app, client_id).await;
    }
    app.store
        .oauth_get_client(client_id)
        .await?
        .ok_or_else(|| OAuthError::InvalidClient("unknown client_id".into()))
}

/// The authorization request's parameters (query of the GET, fields of the POST).
#[derive(Deserialize, Default, Clone)]
pub struct AuthorizeParams {
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
    #[serde(default)]
    resource: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl AuthorizeParams {
    fn request(&self) -> AuthorizeRequest {
        AuthorizeRequest {
            response_type: self.response_type.clone(),
            client_id: self.client_id.clone(),
            redirect_uri: self.redirect_uri.clone(),
            code_challenge: self.code_challenge.clone(),
            code_challenge_method: self.code_challenge_method.clone(),
            resource: self.resource.clone().filter(|r| !r.is_empty()),
        }
    }

    /// The query string of this request, to come back to after sign-in.
    fn query(&self) -> String {
        let mut u = Url::parse("http://x/").unwrap_or_else(|_| unreachable!());
        {
            let mut q = u.query_pairs_mut();
            for (k, v) in [
                ("response_type", Some(&self.response_type)),
                ("client_id", Some(&self.client_id)),
                ("redirect_uri", Some(&self.redirect_uri)),
                ("code_challenge", Some(&self.code_challenge)),
                ("code_challenge_method", Some(&self.code_challenge_method)),
                ("resource", self.resource.as_ref()),
                ("state", self.state.as_ref()),
                ("scope", self.scope.as_ref()),
            ] {
                if let Some(v) = v {
                    q.append_pair(k, v);
                }
            }
        }
        u.query().unwrap_or("").to_owned()
    }
}

/// An authorization request refused before anything is sent to the client: a page.
fn refused(e: OAuthError) -> PageError {
    match e {
        OAuthError::Core(c) => PageError(HttpError::from(c)),
        other => PageError(HttpError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "this sign-in request cannot be accepted ({}): {other}",
                other.code()
            ),
        )),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "oauth_consent.html")]
pub struct ConsentPage {
    nav: Option<Nav>,
    csrf: String,
    client_name: String,
    client_id: String,
    redirect_host: String,
    /// The redirect goes to this computer (`localhost`, `127.0.0.1`, `[::1]`).
    redirect_local: bool,
    person: String,
    abilities: Vec<&'static str>,
    fields: Vec<(&'static str, String)>,
}

/// A CSP for the consent page: its form may also lead (by the redirect that answers it) to
/// the client's redirect URI.
fn consent_csp(app: &App, redirect_uri: &str) -> Option<HeaderValue> {
    let target = Url::parse(redirect_uri)
        .ok()?
        .origin()
        .ascii_serialization();
    let base = super::content_security_policy(app);
    let csp = base.to_str().ok()?.replacen(
        "form-action 'self'",
        &format!("form-action 'self' {target}"),
        1,
    );
    HeaderValue::from_str(&csp).ok()
}

/// `GET /oauth/authorize`: sign in first (coming back here), then the consent page.
pub async fn authorize_page(
    State(st): State<WebState>,
    auth: Result<PageAuth, PageError>,
    Query(p): Query<AuthorizeParams>,
) -> PageResult<Response> {
    let Ok(auth) = auth else {
        let next = format!("/oauth/authorize?{}", p.query());
        let mut login = Url::parse("http://x/login").unwrap_or_else(|_| unreachable!());
        login.query_pairs_mut().append_pair("next", &next);
        let target = format!("/login?{}", login.query().unwrap_or(""));
        return Ok(Redirect::to(&target).into_response());
    };
    let client = find_client(&st.app, &p.client_id).await.map_err(refused)?;
    flows::check_authorize(&client, &p.request(), &resource(&st.app)).map_err(refused)?;
    let redirect_host = Url::parse(&p.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut fields = vec![
        ("response_type", p.response_type.clone()),
        ("client_id", p.client_id.clone()),
        ("redirect_uri", p.redirect_uri.clone()),
        ("code_challenge", p.code_challenge.clone()),
        ("code_challenge_method", p.code_challenge_method.clone()),
    ];
    for (k, v) in [
        ("resource", &p.resource),
        ("state", &p.state),
        ("scope", &p.scope),
    ] {
        if let Some(v) = v {
            fields.push((k, v.clone()));
        }
    }
    let page = ConsentPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        client_name: client.name.clone(),
        client_id: exogate_core::text::tenant_text(&client.client_id),
        redirect_local: matches!(redirect_host.as_str(), "localhost" | "127.0.0.1" | "[::1]"),
        redirect_host,
        person: auth.0.actor.user.name.to_string(),
        abilities: GRANT_ABILITIES.to_vec(),
        fields,
    };
    let mut r = page.into_response();
    if let Some(csp) = consent_csp(&st.app, &p.redirect_uri) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    Ok(no_store(r))
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(flatten)]
    params: AuthorizeParams,
}

/// `redirect_uri` with `pairs` appended to its query.
fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Result<Response, PageError> {
    let mut u = Url::parse(redirect_uri)
        .map_err(|_| PageError(HttpError::bad_request("the redirect URI is not a URL")))?;
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Ok(no_store(Redirect::to(u.as_str()).into_response()))
}

/// `POST /oauth/authorize`: the person's decision on their own consent page (session CSRF
/// token). Approve: a single-use code to the redirect URI; deny: `access_denied`.
pub async fn authorize_decide(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<ConsentForm>,
) -> PageResult<Response> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    let p = f.params;
    let client = find_client(&st.app, &p.client_id).await.map_err(refused)?;
    let req = p.request();
    let res = resource(&st.app);
    flows::check_authorize(&client, &req, &res).map_err(refused)?;
    let iss = issuer(&st.app);
    let state = p.state.clone().unwrap_or_default();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let code;
    if f.decision == "approve" {
        code = random_token(32);
        flows::consent(
            st.app.ctx(),
            &auth.0.actor,
            &client,
            &req,
            &res,
            &code,
            st.app.oauth.lifetimes,
        )
        .await
        .map_err(refused)?;
        pairs.push(("code", &code));
    } else {
        pairs.push(("error", "access_denied"));
    }
    if p.state.is_some() {
        pairs.push(("state", &state));
    }
    pairs.push(("iss", &iss));
    redirect_with(&p.redirect_uri, &pairs)
}

/// The token endpoint's form (both grants).
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    code_verifier: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    refresh_token: String,
    #[serde(default)]
    resource: Option<String>,
}

/// `POST /oauth/token`.
pub async fn token(
    State(st): State<WebState>,
    form: Result<Form<TokenForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return oauth_error(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    };
    if f.client_id.is_empty() {
        return oauth_error(OAuthError::InvalidRequest("client_id is required".into()));
    }
    let access = random_token(32);
    let refresh = random_token(32);
    let new = NewTokens {
        grant: ApiTokenId::from_uuid(uuid::Uuid::now_v7()),
        access: &access,
        refresh: &refresh,
    };
    let ctx = st.app.ctx();
    let l = st.app.oauth.lifetimes;
    let resource = f.resource.as_deref().filter(|r| !r.is_empty());
    let issued = match f.grant_type.as_str() {
        "authorization_code" => {
            flows::exchange_code(
                ctx,
                &f.code,
                &f.client_id,
                &f.redirect_uri,
                &f.code_verifier,
                resource,
                &new,
                l,
            )
            .await
        }
        "refresh_token" => {
            flows::refresh(ctx, &f.refresh_token, &f.client_id, resource, &new, l).await
        }
        _ => Err(OAuthError::UnsupportedGrantType),
    };
    match issued {
        Ok(i) => no_store(
            Json(json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": i.expires_in,
                "refresh_token": refresh,
                "scope": SCOPE,
            }))
            .into_response(),
        ),
        Err(e) => oauth_error(e),
    }
}

/// One row of the Connected agents page.
pub struct GrantRow {
    id: String,
    client_name: String,
    client_id: String,
    created_at: String,
    last_used_at: String,
    revoked_at: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "agents.html")]
pub struct AgentsPage {
    nav: Option<Nav>,
    csrf: String,
    grants: Vec<GrantRow>,
    abilities: Vec<&'static str>,
}

/// `GET /agents`: the person's grants, with their last use.
pub async fn agents(State(st): State<WebState>, auth: PageAuth) -> PageResult<AgentsPage> {
    let grants = flows::list_grants(st.app.ctx(), &auth.0.actor).await?;
    let now = st.app.clock.now();
    Ok(AgentsPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        grants: grants
            .into_iter()
            .map(|g| GrantRow {
                id: g.id.to_string(),
                client_name: g.client_name,
                client_id: exogate_core::text::tenant_text(&g.client_id),
                // (cli-help) Markup: `<time>` elements (`crate::local_time::html`).
                created_at: crate::local_time::html(now, g.created_at),
                last_used_at: g
                    .last_used_at
                    .map_or_else(|| "never".to_owned(), |t| crate::local_time::html(now, t)),
                revoked_at: g.revoked_at.map(|t| crate::local_time::html(now, t)),
            })
            .collect(),
        abilities: GRANT_ABILITIES.to_vec(),
    })
}

/// `POST /agents/{id}/revoke`: revokes one of the person's grants, at once.
pub async fn revoke(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    let id = ApiTokenId::parse(&id).map_err(PageError::from)?;
    flows::revoke_grant(st.app.ctx(), &auth.0.actor, id).await?;
    Ok(Redirect::to("/agents"))
}
