//! Admin consent, v1 `GET /{tenant}/adminconsent` and v2 `GET /{tenant}/v2.0/adminconsent`
//! (`docs/MICROSOFT.md#admin-consent`).
//!
//! The GET shows a consent page naming the app and its permissions, where the person picks who
//! signs in (`select#account`: `admin:<tenant>` is that tenant's Global Administrator,
//! `user:<tenant>` a user without admin rights) and presses `button#accept` or
//! `button#cancel`; the form POSTs back to the same path. Outcomes
//! (`docs/MICROSOFT.md#consent-errors`):
//!
//! | case | answer |
//! |---|---|
//! | unknown/deleted tenant, unknown app, unregistered `redirect_uri` | HTML error page, no redirect |
//! | admin of the tenant accepts | SP created, permissions granted (never a role); 302 `admin_consent=True&tenant=…&state=…` (v2 adds `scope`) |
//! | cancel | 302 `error=access_denied` (AADSTS65004), `admin_consent=True`, no `tenant` |
//! | non-admin user | "Need admin approval" page, no redirect |
//! | admin of another tenant, path names a tenant | 302 `error=access_denied` (AADSTS50020), no `tenant` |
//! | admin of any tenant, path is `common`/`organizations` | consent in the signer's tenant |

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use uuid::Uuid;

use super::html::{escape, page};
use super::new_id;
use super::token::{TenantInfo, TenantRef, aad_timestamp, resolve_tenant};
use crate::state::{AppRegistration, Shared, ids};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/{tenant}/adminconsent", endpoint(Version::V1))
        .route("/{tenant}/v2.0/adminconsent", endpoint(Version::V2))
}

/// One consent endpoint: GET shows the page, POST takes the person's decision.
fn endpoint(version: Version) -> MethodRouter<Arc<Shared>> {
    get(
        move |State(shared): State<Arc<Shared>>,
              Path(tenant): Path<String>,
              RawQuery(query): RawQuery| async move {
            show(&shared, version, &tenant, query.as_deref().unwrap_or(""))
        },
    )
    .post(
        move |State(shared): State<Arc<Shared>>, Path(tenant): Path<String>, body: Bytes| async move {
            decide(&shared, version, &tenant, &body)
        },
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn path(self, tenant: &str) -> String {
        let tenant = urlencode_segment(tenant);
        match self {
            Version::V1 => format!("/{tenant}/adminconsent"),
            Version::V2 => format!("/{tenant}/v2.0/adminconsent"),
        }
    }
}

fn urlencode_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Parameters of a consent request, from the query (GET) or the form (POST).
struct Params(BTreeMap<String, String>);

impl Params {
    fn parse(raw: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(raw).unwrap_or_default();
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            map.entry(k).or_insert(v);
        }
        Self(map)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Which tenant(s) the path lets sign in.
enum Audience {
    /// `common` / `organizations`: any tenant's admin consents for their own tenant.
    Any,
    Specific(TenantInfo),
}

/// A validated consent request.
struct Request {
    version: Version,
    path_tenant: String,
    audience: Audience,
    app: AppRegistration,
    redirect_uri: String,
    state: Option<String>,
    scope: Option<String>,
}

/// An error shown on Microsoft's page (no redirect).
struct PageError {
    status: StatusCode,
    code: u32,
    title: &'static str,
    message: String,
}

impl PageError {
    fn render(&self, shared: &Shared) -> Response {
        let trace = new_id(shared);
        let correlation = new_id(shared);
        let stamp = aad_timestamp(shared.clock.now());
        let body = format!(
            "<div class=\"brand\">Microsoft</div><h1>{title}</h1>\
<div class=\"error\" id=\"error\" data-code=\"AADSTS{code}\"><p id=\"error-message\">AADSTS{code}: {message}</p></div>\
<p class=\"code\">Request Id: {trace}\nCorrelation Id: {correlation}\nTimestamp: {stamp}</p>",
            title = escape(self.title),
            code = self.code,
            message = escape(&self.message),
        );
        let mut response = (self.status, Html(page(self.title, &body))).into_response();
        no_cache(&mut response);
        response
    }
}

fn no_cache(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn validate(
    shared: &Shared,
    version: Version,
    tenant: &str,
    params: &Params,
) -> Result<Request, PageError> {
    let audience = match tenant.to_ascii_lowercase().as_str() {
        "common" | "organizations" => Audience::Any,
        _ => match resolve_tenant(shared, tenant) {
            TenantRef::Found(t) => Audience::Specific(t),
            TenantRef::NotFound => {
                return Err(PageError {
                    status: StatusCode::BAD_REQUEST,
                    code: 90002,
                    title: "Sorry, but we're having trouble signing you in.",
                    message: format!(
                        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
                    ),
                });
            }
            TenantRef::Malformed => {
                return Err(PageError {
                    status: StatusCode::BAD_REQUEST,
                    code: 900023,
                    title: "Sorry, but we're having trouble signing you in.",
                    message: format!(
                        "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
                    ),
                });
            }
        },
    };
    let directory_name = match &audience {
        Audience::Any => tenant.to_owned(),
        Audience::Specific(t) => t.display_name.clone(),
    };
    let client_text = params.get("client_id").ok_or_else(|| PageError {
        status: StatusCode::BAD_REQUEST,
        code: 900144,
        title: "Sorry, but we're having trouble signing you in.",
        message: "The request body must contain the following parameter: 'client_id'.".to_owned(),
    })?;
    let unknown_app = || PageError {
        status: StatusCode::BAD_REQUEST,
        code: 700016,
        title: "Sorry, but we're having trouble signing you in.",
        message: format!(
            "Application with identifier '{client_text}' was not found in the directory '{directory_name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
        ),
    };
    let app = shared
        .world
        .read()
        .app_by_client_id(client_text)
        .cloned()
        .ok_or_else(unknown_app)?;
    let client_id = app.client_id;
    let redirect_uri = params.get("redirect_uri").unwrap_or("");
    if !redirect_uri_allowed(&app.redirect_uris, redirect_uri) {
        return Err(PageError {
            status: StatusCode::BAD_REQUEST,
            code: 50011,
            title: "Sorry, but we're having trouble signing you in.",
            message: format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this."
            ),
        });
    }
    Ok(Request {
        version,
        path_tenant: tenant.to_owned(),
        audience,
        app,
        redirect_uri: redirect_uri.to_owned(),
        state: params.get("state").map(str::to_owned),
        scope: params.get("scope").map(str::to_owned),
    })
}

/// Whether `uri` matches a registered redirect URI. An entry ending in `*` matches any URI
/// that starts with the rest; for `http` loopback hosts (`127.0.0.1`, `localhost`, `[::1]`) the
/// port is ignored, as Entra does.
pub fn redirect_uri_allowed(registered: &[String], uri: &str) -> bool {
    let Ok(wanted) = url::Url::parse(uri) else {
        return false;
    };
    if wanted.fragment().is_some() {
        return false;
    }
    registered.iter().any(|entry| {
        let (pattern, prefix) = match entry.strip_suffix('*') {
            Some(p) => (p, true),
            None => (entry.as_str(), false),
        };
        let Ok(reg) = url::Url::parse(pattern) else {
            return false;
        };
        if reg.scheme() != wanted.scheme() || reg.host_str() != wanted.host_str() {
            return false;
        }
        let loopback = reg.scheme() == "http"
            && matches!(reg.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if !loopback && reg.port_or_known_default() != wanted.port_or_known_default() {
            return false;
        }
        let reg_rest = &reg[url::Position::BeforePath..];
        let wanted_rest = &wanted[url::Position::BeforePath..];
        if prefix {
            wanted_rest.starts_with(reg_rest)
        } else {
            wanted_rest == reg_rest
        }
    })
}

fn resource_name(resource: Uuid) -> String {
    if resource == ids::EXCHANGE_RESOURCE_APP_ID {
        "Office 365 Exchange Online".to_owned()
    } else if resource == ids::GRAPH_RESOURCE_APP_ID {
        "Microsoft Graph".to_owned()
    } else {
        resource.to_string()
    }
}

fn permission_description(role: &str) -> &'static str {
    match role {
        "Exchange.ManageAsApp" => "Manage Exchange As Application",
        "Organization.Read.All" => "Read organization information",
        _ => "Application permission",
    }
}

fn show(shared: &Shared, version: Version, tenant: &str, query: &str) -> Response {
    let params = Params::parse(query.as_bytes());
    let req = match validate(shared, version, tenant, &params) {
        Ok(r) => r,
        Err(e) => return e.render(shared),
    };
    if let Some(response) = missing_v2_scope(shared, &req) {
        return response;
    }
    let live: Vec<TenantInfo> = shared
        .world
        .read()
        .tenants
        .values()
        .filter(|t| !t.deleted)
        .map(TenantInfo::of)
        .collect();
    let mut options = String::new();
    let mut option = |value: String, label: String, selected: bool| {
        options.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            escape(&value),
            if selected { " selected" } else { "" },
            escape(&label)
        ));
    };
    match &req.audience {
        Audience::Specific(t) => {
            option(
                format!("admin:{}", t.id),
                format!(
                    "admin@{} (Global Administrator of {})",
                    t.initial_domain(),
                    t.display_name
                ),
                true,
            );
            option(
                format!("user:{}", t.id),
                format!(
                    "megan@{} (user of {}, not an administrator)",
                    t.initial_domain(),
                    t.display_name
                ),
                false,
            );
            for o in live.iter().filter(|o| o.id != t.id) {
                option(
                    format!("admin:{}", o.id),
                    format!(
                        "admin@{} (Global Administrator of another tenant: {})",
                        o.initial_domain(),
                        o.display_name
                    ),
                    false,
                );
            }
        }
        Audience::Any => {
            for (i, o) in live.iter().enumerate() {
                option(
                    format!("admin:{}", o.id),
                    format!(
                        "admin@{} (Global Administrator of {})",
                        o.initial_domain(),
                        o.display_name
                    ),
                    i == 0,
                );
                option(
                    format!("user:{}", o.id),
                    format!(
                        "megan@{} (user of {}, not an administrator)",
                        o.initial_domain(),
                        o.display_name
                    ),
                    false,
                );
            }
        }
    }
    let mut perms = String::new();
    for p in &req.app.required_permissions {
        perms.push_str(&format!(
            "<li><strong>{}</strong> <code>{}</code> ({}) <em>Application</em></li>",
            escape(permission_description(&p.role)),
            escape(&p.role),
            escape(&resource_name(p.resource)),
        ));
    }
    if perms.is_empty() {
        perms.push_str("<li>No permissions (sign in only)</li>");
    }
    let hidden = |name: &str, value: Option<&str>| match value {
        Some(v) => format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(v)
        ),
        None => String::new(),
    };
    let target = match &req.audience {
        Audience::Specific(t) => format!("your organization ({})", t.display_name),
        Audience::Any => "your organization".to_owned(),
    };
    let body = format!(
        "<div class=\"brand\">Microsoft</div><h1>Permissions requested</h1>\
<p>Review for your organization</p>\
<p><strong id=\"app-name\">{app}</strong> <span>unverified</span><br><span class=\"code\">App id {client}</span></p>\
<p>This app would like to:</p><ul class=\"perms\" id=\"permissions\">{perms}</ul>\
<p>If you accept, this app will get access to the specified resources for all users in {target}. No one else will be prompted to review these permissions.</p>\
<form method=\"post\" action=\"{action}\" id=\"consent-form\">\
{h_client}{h_redirect}{h_state}{h_scope}\
<label for=\"account\">Signed in as</label><select id=\"account\" name=\"account\">{options}</select>\
<div class=\"buttons\"><button type=\"submit\" id=\"cancel\" name=\"action\" value=\"cancel\">Cancel</button>\
<button type=\"submit\" id=\"accept\" name=\"action\" value=\"accept\" class=\"primary\">Accept</button></div></form>",
        app = escape(&req.app.display_name),
        client = escape(&req.app.client_id.to_string()),
        target = escape(&target),
        action = escape(&version.path(&req.path_tenant)),
        h_client = hidden("client_id", Some(&req.app.client_id.to_string())),
        h_redirect = hidden("redirect_uri", Some(&req.redirect_uri)),
        h_state = hidden("state", req.state.as_deref()),
        h_scope = hidden("scope", req.scope.as_deref()),
    );
    let mut response = Html(page("Permissions requested", &body)).into_response();
    no_cache(&mut response);
    response
}

/// A 302 to `redirect_uri` with `pairs` appended to its query.
fn redirect(redirect_uri: &str, pairs: &[(&str, String)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response();
    };
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(header::LOCATION, location);
    no_cache(&mut response);
    response
}

fn error_redirect(shared: &Shared, req: &Request, code: u32, message: &str) -> Response {
    error_redirect_with(shared, req, "access_denied", code, message, true)
}

/// v2 requires `scope`; without it Entra redirects back with `invalid_request` (AADSTS900144).
fn missing_v2_scope(shared: &Shared, req: &Request) -> Option<Response> {
    (req.version == Version::V2 && req.scope.is_none()).then(|| {
        error_redirect_with(
            shared,
            req,
            "invalid_request",
            900144,
            "The request body must contain the following parameter: 'scope'.",
            false,
        )
    })
}

fn error_redirect_with(
    shared: &Shared,
    req: &Request,
    error: &str,
    code: u32,
    message: &str,
    admin_consent: bool,
) -> Response {
    let trace = new_id(shared);
    let correlation = new_id(shared);
    let stamp = aad_timestamp(shared.clock.now());
    let mut pairs = vec![
        ("error", error.to_owned()),
        (
            "error_description",
            format!(
                "AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}"
            ),
        ),
        (
            "error_uri",
            format!(
                "{}/error?code={code}",
                shared.base_url.trim_end_matches('/')
            ),
        ),
    ];
    if admin_consent {
        pairs.push(("admin_consent", "True".to_owned()));
    }
    if let Some(state) = &req.state {
        pairs.push(("state", state.clone()));
    }
    redirect(&req.redirect_uri, &pairs)
}

fn decide(shared: &Shared, version: Version, tenant: &str, body: &[u8]) -> Response {
    let params = Params::parse(body);
    let req = match validate(shared, version, tenant, &params) {
        Ok(r) => r,
        Err(e) => return e.render(shared),
    };
    if let Some(response) = missing_v2_scope(shared, &req) {
        return response;
    }
    if params.get("action") == Some("cancel") {
        return error_redirect(
            shared,
            &req,
            65004,
            "User declined to consent to access the app.",
        );
    }
    if params.get("action") != Some("accept") {
        return PageError {
            status: StatusCode::BAD_REQUEST,
            code: 900144,
            title: "Sorry, but we're having trouble signing you in.",
            message: "The request body must contain the following parameter: 'action' (accept or cancel).".to_owned(),
        }
        .render(shared);
    }
    let bad_account = || PageError {
        status: StatusCode::BAD_REQUEST,
        code: 50034,
        title: "We couldn't find an account with that username.",
        message: "The user account does not exist in the directory. Pick an account from the list."
            .to_owned(),
    };
    let account = params.get("account").unwrap_or("");
    let Some((kind, signer_text)) = account.split_once(':') else {
        return bad_account().render(shared);
    };
    let Ok(signer_id) = Uuid::parse_str(signer_text) else {
        return bad_account().render(shared);
    };
    let signer = shared
        .world
        .read()
        .tenants
        .get(&signer_id)
        .filter(|t| !t.deleted)
        .map(TenantInfo::of);
    let Some(signer) = signer else {
        return bad_account().render(shared);
    };
    match kind {
        "admin" => {}
        "user" => return need_admin_approval(shared, &req, &signer),
        _ => return bad_account().render(shared),
    }
    let consent_tenant = match &req.audience {
        Audience::Any => signer.id,
        Audience::Specific(t) if t.id == signer.id => t.id,
        Audience::Specific(t) => {
            let message = format!(
                "User account 'admin@{}' from identity provider 'https://sts.windows.net/{}/' does not exist in tenant '{}' and cannot access the application '{}'({}) in that tenant. The account needs to be added as an external user in the tenant first. Sign out and sign in again with a different Azure Active Directory user account.",
                signer.initial_domain(),
                signer.id,
                t.display_name,
                req.app.client_id,
                req.app.display_name
            );
            return error_redirect(shared, &req, 50020, &message);
        }
    };
    let now = shared.clock.now();
    let oid = new_id(shared);
    let granted =
        shared
            .world
            .write()
            .grant_admin_consent(consent_tenant, req.app.client_id, now, oid);
    if let Err(e) = granted {
        tracing::warn!(error = %e, "admin consent could not be recorded");
        return PageError {
            status: StatusCode::BAD_REQUEST,
            code: 90002,
            title: "Sorry, but we're having trouble signing you in.",
            message: format!("Tenant '{consent_tenant}' not found."),
        }
        .render(shared);
    }
    tracing::info!(tenant = %consent_tenant, app = %req.app.client_id, "admin consent granted");
    let mut pairs = vec![
        ("admin_consent", "True".to_owned()),
        ("tenant", consent_tenant.to_string()),
    ];
    if version == Version::V2
        && let Some(scope) = &req.scope
    {
        pairs.push(("scope", scope.clone()));
    }
    if let Some(state) = &req.state {
        pairs.push(("state", state.clone()));
    }
    redirect(&req.redirect_uri, &pairs)
}

fn need_admin_approval(shared: &Shared, req: &Request, signer: &TenantInfo) -> Response {
    let trace = new_id(shared);
    let correlation = new_id(shared);
    let stamp = aad_timestamp(shared.clock.now());
    let body = format!(
        "<div class=\"brand\">Microsoft</div><p>megan@{domain}</p><h1 id=\"need-admin-approval\">Need admin approval</h1>\
<p><strong>{app}</strong></p>\
<p>{app} needs permission to access resources in your organization that only an admin can grant. Please ask an admin to grant permission to this app before you can use it.</p>\
<p><a href=\"{back}\">Have an admin account? Sign in with that account</a></p>\
<p class=\"code\">Request Id: {trace}\nCorrelation Id: {correlation}\nTimestamp: {stamp}</p>",
        domain = escape(signer.initial_domain()),
        app = escape(&req.app.display_name),
        back = escape(&format!(
            "{}?{}",
            req.version.path(&req.path_tenant),
            serde_urlencoded::to_string([
                ("client_id", req.app.client_id.to_string()),
                ("redirect_uri", req.redirect_uri.clone()),
                ("state", req.state.clone().unwrap_or_default()),
                ("scope", req.scope.clone().unwrap_or_default()),
            ])
            .unwrap_or_default()
        )),
    );
    let mut response = Html(page("Need admin approval", &body)).into_response();
    no_cache(&mut response);
    response
}
