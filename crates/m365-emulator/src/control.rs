//! The control API under `/_emulator/`: set up tenants and apps, grant consent, assign
//! directory roles, drive the clock (this file), and read and set knobs, directory objects,
//! counters and the apply log (the Exchange half's `exchange::control_routes()`).
//!
//! | route | body | does |
//! |---|---|---|
//! | `GET /health` | | `{"status":"ok"}` |
//! | `GET /clock` | | `{"now","unix","frozen"}` |
//! | `POST /clock` | `{"freeze_at": RFC 3339 or unix}` / `{"freeze":true}` / `{"advance_secs":n}` / `{"unfreeze":true}` | drives the clock; answers like `GET` |
//! | `GET /tenants`, `GET /tenants/{tenant}` | | tenants with their service principals |
//! | `POST /tenants` | `{"id"?, "display_name", "domains":[…], "deleted"?, "directory"?}` | 201; 409 if the id or a domain exists |
//! | `DELETE /tenants/{tenant}` | | marks it deleted (AADSTS90002 from then on) |
//! | `GET /tenants/{tenant}/service-principals` | | `{"value":[{object_id, app_id, display_name, app_roles, directory_roles:[{id,name,assigned_at}], …}]}` |
//! | `POST /tenants/{tenant}/consents` | `{"client_id"}` | admin consent (SP + permissions, no role) |
//! | `DELETE /tenants/{tenant}/consents/{client_id}` | | removes the SP (204) |
//! | `PUT`/`DELETE /tenants/{tenant}/service-principals/{client_id}/roles/{role}` | | assigns/removes a directory role (template id or name, e.g. `exchange-admin`) at the emulator time |
//! | `GET /apps`, `GET /apps/{client_id}` | | app registrations (secrets shown as a 3-character hint) |
//! | `POST /apps` | an `AppRegistration` (see `scenario`) | registers or replaces (201/200) |
//! | `DELETE /apps/{client_id}` | | 204 |
//!
//! `{tenant}` is a GUID or any of the tenant's domains. Errors are
//! `{"error":{"code":…,"message":…}}` with 400 (bad input), 404 (unknown tenant, app or service
//! principal) or 409 (already exists, or the tenant is deleted).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entra::{DirectoryChangeError, directory_role_by_name, directory_role_name, new_id};
use crate::state::{AppRegistration, ServicePrincipal, Shared, Tenant, World};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/health", get(health))
        .route("/clock", get(clock_get).post(clock_set))
        .route("/tenants", get(tenants_list).post(tenant_create))
        .route("/tenants/{tenant}", get(tenant_get).delete(tenant_delete))
        .route(
            "/tenants/{tenant}/service-principals",
            get(service_principals),
        )
        .route("/tenants/{tenant}/consents", post(consent_grant))
        .route(
            "/tenants/{tenant}/consents/{client_id}",
            axum::routing::delete(consent_revoke),
        )
        .route(
            "/tenants/{tenant}/service-principals/{client_id}/roles/{role}",
            put(role_assign).delete(role_remove),
        )
        .route("/apps", get(apps_list).post(app_upsert))
        .route("/apps/{client_id}", get(app_get).delete(app_delete))
        .merge(crate::exchange::control_routes())
        // (msft-signin)
        .merge(crate::signin::control_routes())
}

/// A control-API error.
pub(crate) struct ControlError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ControlError {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
        }
    }

    fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
        }
    }
}

impl From<DirectoryChangeError> for ControlError {
    fn from(e: DirectoryChangeError) -> Self {
        match e {
            DirectoryChangeError::TenantDeleted(_) => Self {
                status: StatusCode::CONFLICT,
                code: "tenant_deleted",
                message: e.to_string(),
            },
            _ => Self::not_found(e.to_string()),
        }
    }
}

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

type Reply = Result<Response, ControlError>;

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ControlError> {
    serde_json::from_slice(body)
        .map_err(|e| ControlError::bad_request(format!("invalid JSON: {e}")))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

fn clock_view(shared: &Shared) -> Value {
    let now = shared.clock.now();
    json!({"now": rfc3339(now), "unix": now.unix_timestamp(), "frozen": shared.clock.is_frozen()})
}

async fn clock_get(State(shared): State<Arc<Shared>>) -> Response {
    Json(clock_view(&shared)).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    /// RFC 3339 time or unix seconds.
    #[serde(default)]
    freeze_at: Option<Value>,
    /// Freeze at the current time.
    #[serde(default)]
    freeze: Option<bool>,
    #[serde(default)]
    advance_secs: Option<f64>,
    #[serde(default)]
    unfreeze: Option<bool>,
}

async fn clock_set(State(shared): State<Arc<Shared>>, body: Bytes) -> Reply {
    let change: ClockChange = parse_json(&body)?;
    if change.unfreeze == Some(true) {
        shared.clock.unfreeze();
    }
    if change.freeze == Some(true) {
        shared.clock.freeze(shared.clock.now());
    }
    if let Some(at) = change.freeze_at {
        let at = match &at {
            Value::String(s) => {
                OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| ControlError::bad_request(format!("freeze_at: {e}")))?
            }
            Value::Number(n) => n
                .as_i64()
                .and_then(|n| OffsetDateTime::from_unix_timestamp(n).ok())
                .ok_or_else(|| ControlError::bad_request("freeze_at: not a unix time"))?,
            _ => {
                return Err(ControlError::bad_request(
                    "freeze_at must be an RFC 3339 string or unix seconds",
                ));
            }
        };
        shared.clock.freeze(at);
    }
    if let Some(secs) = change.advance_secs {
        if !secs.is_finite() || !(0.0..=1e10).contains(&secs) {
            return Err(ControlError::bad_request(
                "advance_secs must be a non-negative number of seconds",
            ));
        }
        shared.clock.advance(time::Duration::seconds_f64(secs));
    }
    Ok(Json(clock_view(&shared)).into_response())
}

fn sp_view(sp: &ServicePrincipal, app: Option<&AppRegistration>) -> Value {
    json!({
        "object_id": sp.object_id,
        "app_id": sp.app_id,
        "display_name": app.map(|a| a.display_name.as_str()).unwrap_or(""),
        "created_at": rfc3339(sp.created_at),
        "consented_at": sp.consented_at.map(rfc3339),
        "app_roles": sp.app_roles,
        "directory_roles": sp.directory_roles.iter().map(|(id, at)| json!({
            "id": id,
            "name": directory_role_name(*id),
            "assigned_at": rfc3339(*at),
        })).collect::<Vec<_>>(),
    })
}

fn tenant_view(t: &Tenant, apps: &std::collections::BTreeMap<Uuid, AppRegistration>) -> Value {
    json!({
        "id": t.id,
        "display_name": t.display_name,
        "domains": t.domains,
        "deleted": t.deleted,
        "service_principals": t.service_principals.values()
            .map(|sp| sp_view(sp, apps.get(&sp.app_id))).collect::<Vec<_>>(),
    })
}

/// The tenant a `{tenant}` path segment (GUID or domain, live or deleted) names.
fn tenant_ref<'w>(world: &'w World, tenant: &str) -> Result<&'w Tenant, ControlError> {
    world
        .tenant_by_ref(tenant)
        .ok_or_else(|| ControlError::not_found(format!("tenant '{tenant}' does not exist")))
}

/// Resolves a `{tenant}` path segment to its id.
fn tenant_id(shared: &Shared, tenant: &str) -> Result<Uuid, ControlError> {
    tenant_ref(&shared.world.read(), tenant).map(|t| t.id)
}

/// A change to a service principal answered with the principal as it now is.
fn sp_reply(world: &World, tenant: Uuid, client_id: Uuid) -> Reply {
    let sp = world
        .tenants
        .get(&tenant)
        .and_then(|t| t.service_principals.get(&client_id))
        .ok_or_else(|| ControlError::not_found("service principal vanished"))?;
    Ok(Json(sp_view(sp, world.apps.get(&client_id))).into_response())
}

fn parse_client_id(text: &str) -> Result<Uuid, ControlError> {
    Uuid::parse_str(text)
        .map_err(|_| ControlError::bad_request(format!("'{text}' is not a client id")))
}

async fn tenants_list(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.world.read();
    let list: Vec<Value> = world
        .tenants
        .values()
        .map(|t| tenant_view(t, &world.apps))
        .collect();
    Json(json!({"value": list})).into_response()
}

async fn tenant_get(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Reply {
    let world = shared.world.read();
    let t = tenant_ref(&world, &tenant)?;
    Ok(Json(tenant_view(t, &world.apps)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    #[serde(default)]
    id: Option<Uuid>,
    display_name: String,
    domains: Vec<String>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    directory: Option<Value>,
}

async fn tenant_create(State(shared): State<Arc<Shared>>, body: Bytes) -> Reply {
    let spec: NewTenant = parse_json(&body)?;
    if spec.domains.is_empty() {
        return Err(ControlError::bad_request(
            "a tenant needs at least one domain",
        ));
    }
    for d in &spec.domains {
        if !crate::entra::is_dns_name(d) {
            return Err(ControlError::bad_request(format!(
                "'{d}' is not a domain name"
            )));
        }
    }
    let id = spec.id.unwrap_or_else(|| new_id(&shared));
    let rng_seed: u64 = rand::Rng::random(&mut *shared.rng.lock());
    let mut tenant = crate::scenario::new_tenant(
        id,
        &spec.display_name,
        spec.domains.clone(),
        spec.directory.as_ref(),
        rng_seed,
    )
    .map_err(|e| ControlError::bad_request(e.to_string()))?;
    tenant.deleted = spec.deleted;
    let mut world = shared.world.write();
    if world.tenants.contains_key(&id) {
        return Err(ControlError::conflict(format!(
            "tenant {id} already exists"
        )));
    }
    for d in &spec.domains {
        if world.tenant_by_ref(d).is_some() {
            return Err(ControlError::conflict(format!(
                "domain '{d}' belongs to another tenant"
            )));
        }
    }
    let view = tenant_view(&tenant, &world.apps);
    world.tenants.insert(id, tenant);
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// Marks the tenant deleted: from then on Entra answers AADSTS90002 for it.
async fn tenant_delete(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Reply {
    let id = tenant_id(&shared, &tenant)?;
    let mut world = shared.world.write();
    let apps = world.apps.clone();
    let t = world
        .tenants
        .get_mut(&id)
        .ok_or_else(|| ControlError::not_found("tenant vanished"))?;
    t.deleted = true;
    Ok(Json(tenant_view(t, &apps)).into_response())
}

async fn service_principals(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Reply {
    let world = shared.world.read();
    let t = tenant_ref(&world, &tenant)?;
    let list: Vec<Value> = t
        .service_principals
        .values()
        .map(|sp| sp_view(sp, world.apps.get(&sp.app_id)))
        .collect();
    Ok(Json(json!({"value": list})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentRequest {
    client_id: Uuid,
}

/// Grants admin consent directly (as if the tenant's admin accepted the consent page).
async fn consent_grant(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Reply {
    let req: ConsentRequest = parse_json(&body)?;
    let id = tenant_id(&shared, &tenant)?;
    let now = shared.clock.now();
    let oid = new_id(&shared);
    let mut world = shared.world.write();
    world.grant_admin_consent(id, req.client_id, now, oid)?;
    sp_reply(&world, id, req.client_id)
}

async fn consent_revoke(
    State(shared): State<Arc<Shared>>,
    Path((tenant, client_id)): Path<(String, String)>,
) -> Reply {
    let id = tenant_id(&shared, &tenant)?;
    let client_id = parse_client_id(&client_id)?;
    shared.world.write().revoke_consent(id, client_id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn role_args(
    shared: &Shared,
    tenant: &str,
    client_id: &str,
    role: &str,
) -> Result<(Uuid, Uuid, Uuid), ControlError> {
    let id = tenant_id(shared, tenant)?;
    let client_id = parse_client_id(client_id)?;
    let role = directory_role_by_name(role)
        .ok_or_else(|| ControlError::bad_request(format!("unknown directory role '{role}'")))?;
    Ok((id, client_id, role))
}

async fn role_assign(
    State(shared): State<Arc<Shared>>,
    Path((tenant, client_id, role)): Path<(String, String, String)>,
) -> Reply {
    let (id, client_id, role) = role_args(&shared, &tenant, &client_id, &role)?;
    let now = shared.clock.now();
    let mut world = shared.world.write();
    world.assign_directory_role(id, client_id, role, now)?;
    sp_reply(&world, id, client_id)
}

async fn role_remove(
    State(shared): State<Arc<Shared>>,
    Path((tenant, client_id, role)): Path<(String, String, String)>,
) -> Reply {
    let (id, client_id, role) = role_args(&shared, &tenant, &client_id, &role)?;
    let mut world = shared.world.write();
    world.remove_directory_role(id, client_id, role)?;
    sp_reply(&world, id, client_id)
}

fn app_view(app: &AppRegistration) -> Value {
    json!({
        "client_id": app.client_id,
        "display_name": app.display_name,
        "secrets": app.secrets.iter().map(|s| json!({
            "hint": s.value.chars().take(3).collect::<String>(),
            "expires_at": s.expires_at.map(rfc3339),
        })).collect::<Vec<_>>(),
        "certificates": app.certificates.len(),
        "redirect_uris": app.redirect_uris,
        "required_permissions": app.required_permissions,
        "disabled": app.disabled,
    })
}

async fn apps_list(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.world.read();
    let list: Vec<Value> = world.apps.values().map(app_view).collect();
    Json(json!({"value": list})).into_response()
}

async fn app_get(State(shared): State<Arc<Shared>>, Path(client_id): Path<String>) -> Reply {
    let client_id = parse_client_id(&client_id)?;
    let world = shared.world.read();
    let app = world
        .apps
        .get(&client_id)
        .ok_or_else(|| ControlError::not_found(format!("no app '{client_id}'")))?;
    Ok(Json(app_view(app)).into_response())
}

/// Registers an app, or replaces the registration with the same client id.
async fn app_upsert(State(shared): State<Arc<Shared>>, body: Bytes) -> Reply {
    let app: AppRegistration = parse_json(&body)?;
    for pem in &app.certificates {
        if x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .ok()
            .and_then(|(_, p)| p.parse_x509().ok().map(|_| ()))
            .is_none()
        {
            return Err(ControlError::bad_request(
                "certificates must be PEM X.509 certificates",
            ));
        }
    }
    let view = app_view(&app);
    let replaced = shared
        .world
        .write()
        .apps
        .insert(app.client_id, app)
        .is_some();
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(view)).into_response())
}

async fn app_delete(State(shared): State<Arc<Shared>>, Path(client_id): Path<String>) -> Reply {
    let client_id = parse_client_id(&client_id)?;
    shared
        .world
        .write()
        .apps
        .remove(&client_id)
        .ok_or_else(|| ControlError::not_found(format!("no app '{client_id}'")))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
