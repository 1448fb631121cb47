//! The Exchange half of the control API (nested under `/_emulator`):
//!
//! | route | what |
//! |---|---|
//! | `POST /exchange/{tenant}/objects` | create a user, mailbox or group ([`NewObject`] JSON) |
//! | `DELETE /exchange/{tenant}/objects/{identity}` | delete a principal (its ACL rows become orphans) |
//! | `POST /exchange/{tenant}/grants` | grant a right directly ([`Grant`] JSON; no apply-log entry) |
//! | `PUT /exchange/{tenant}/directory` | replace the directory: a [`DirectorySeed`], or `{"generate":{"mailboxes":N,"seed":S}}` |
//! | `GET /exchange/{tenant}/objects/{identity}` | ground truth of one object: ids and every ACL row, automapping included |
//! | `GET /exchange/{tenant}/permissions` | the tenant's whole ground-truth permission set |
//! | `GET/PUT /knobs` | global knobs (PUT merges the given fields) |
//! | `GET/PUT/DELETE /knobs/{tenant}` | per-tenant knobs (PUT merges over the tenant's current knobs) |
//! | `GET/DELETE /counters` | request counters; DELETE resets them |
//! | `GET /apply-log?tenant=&since=` | applied changes; `since` is a seq (exclusive) or an RFC 3339 time |

// Handlers bail out with a ready HTTP response; it is built once per failed request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::directory::{Directory, INHERITANCE, NewObject, ObjId, Resolved, rights_string};
use super::seed::{DirectorySeed, Grant, generated_directory_seed};
use crate::state::{Knobs, Shared, Tenant, World};

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/exchange/{tenant}/objects", post(create_object))
        .route(
            "/exchange/{tenant}/objects/{identity}",
            get(object_truth).delete(delete_object),
        )
        .route("/exchange/{tenant}/grants", post(grant))
        .route("/exchange/{tenant}/directory", put(replace_directory))
        .route("/exchange/{tenant}/permissions", get(permissions))
        .route("/knobs", get(knobs_get).put(knobs_put))
        .route(
            "/knobs/{tenant}",
            get(tenant_knobs_get)
                .put(tenant_knobs_put)
                .delete(tenant_knobs_delete),
        )
        .route("/counters", get(counters_get).delete(counters_reset))
        .route("/apply-log", get(apply_log))
}

fn err(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

fn tenant_id(world: &World, reference: &str) -> Result<Uuid, Response> {
    world
        .tenant_by_ref(reference)
        .filter(|t| !t.deleted)
        .map(|t| t.id)
        .ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                format!("no live tenant '{reference}'"),
            )
        })
}

/// Gives a tenant whose directory was created empty (`Directory::default()`) its domain SID.
fn ensure_directory(tenant: &mut Tenant, shared: &Shared) {
    if tenant.directory.domain_sid.is_empty() {
        let mut rng = shared.rng.lock();
        let fresh = Directory::new(tenant.initial_domain(), &mut *rng);
        let objects = std::mem::take(&mut tenant.directory.objects);
        tenant.directory = fresh;
        debug_assert!(objects.is_empty());
    }
}

fn object_json(dir: &Directory, id: ObjId) -> Value {
    let Some(o) = dir.get(id) else {
        return Value::Null;
    };
    let p = o.perms();
    json!({
        "type": o.kind,
        "name": &*o.name,
        "alias": &*o.alias,
        "display_name": &*o.display_name,
        "upn": o.upn.as_deref(),
        "primary_smtp": o.primary_smtp.as_deref(),
        "email_addresses": o.secondary_smtp.iter().map(|s| &**s).collect::<Vec<_>>(),
        "recipient_type_details": o.kind.recipient_type_details(),
        "guid": o.guid,
        "exchange_object_id": o.exchange_object_id,
        "external_directory_object_id": o.external_directory_object_id,
        "sid": dir.sid_string(&super::directory::Sid::Tenant(o.rid)),
        "hidden_from_address_lists": o.hidden_from_address_lists,
        "message_copy_for_sent_as": o.message_copy_for_sent_as,
        "message_copy_for_send_on_behalf": o.message_copy_for_send_on_behalf,
        "full_access": p.full_access.iter().map(|r| json!({
            "user": dir.principal_display(&r.principal),
            "sid": dir.sid_string(&r.principal),
            "rights": rights_string(r.rights),
            "deny": r.deny,
            "inheritance": INHERITANCE[r.inheritance as usize],
            "inherited": r.inherited,
            "automapping": r.automapping,
        })).collect::<Vec<_>>(),
        "send_as": p.send_as.iter().map(|r| json!({
            "trustee": dir.principal_display(&r.trustee),
            "sid": dir.sid_string(&r.trustee),
            "inherited": r.inherited,
        })).collect::<Vec<_>>(),
        "send_on_behalf": p.send_on_behalf.iter().filter_map(|d| dir.get(*d)).map(|d| json!({
            "name": &*d.name,
            "upn": d.upn.as_deref(),
            "primary_smtp": d.primary_smtp.as_deref(),
            "external_directory_object_id": d.external_directory_object_id,
        })).collect::<Vec<_>>(),
    })
}

async fn create_object(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(new): Json<NewObject>,
) -> Response {
    let mut world = shared.world.write();
    let id = match tenant_id(&world, &tenant) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(t) = world.tenants.get_mut(&id) else {
        return err(StatusCode::NOT_FOUND, "tenant vanished");
    };
    ensure_directory(t, &shared);
    let domain = t.initial_domain().to_owned();
    let mut rng = shared.rng.lock();
    match t.directory.create(&new, &domain, &mut *rng) {
        Ok(oid) => (StatusCode::CREATED, Json(object_json(&t.directory, oid))).into_response(),
        Err(e) => err(StatusCode::CONFLICT, e),
    }
}

fn find(dir: &Directory, identity: &str) -> Result<ObjId, Response> {
    match dir.resolve(identity, |_| true) {
        Resolved::Found(id) => Ok(id),
        Resolved::NotFound => Err(err(
            StatusCode::NOT_FOUND,
            format!("no object '{identity}'"),
        )),
        Resolved::Ambiguous(_) => Err(err(
            StatusCode::CONFLICT,
            format!("'{identity}' matches several objects"),
        )),
    }
}

async fn delete_object(
    State(shared): State<Arc<Shared>>,
    Path((tenant, identity)): Path<(String, String)>,
) -> Response {
    let mut world = shared.world.write();
    let id = match tenant_id(&world, &tenant) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(t) = world.tenants.get_mut(&id) else {
        return err(StatusCode::NOT_FOUND, "tenant vanished");
    };
    match find(&t.directory, &identity) {
        Ok(oid) => {
            t.directory.delete(oid);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn object_truth(
    State(shared): State<Arc<Shared>>,
    Path((tenant, identity)): Path<(String, String)>,
) -> Response {
    let world = shared.world.read();
    let id = match tenant_id(&world, &tenant) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(t) = world.tenants.get(&id) else {
        return err(StatusCode::NOT_FOUND, "tenant vanished");
    };
    match find(&t.directory, &identity) {
        Ok(oid) => Json(object_json(&t.directory, oid)).into_response(),
        Err(r) => r,
    }
}

async fn grant(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(g): Json<Grant>,
) -> Response {
    let mut world = shared.world.write();
    let id = match tenant_id(&world, &tenant) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(t) = world.tenants.get_mut(&id) else {
        return err(StatusCode::NOT_FOUND, "tenant vanished");
    };
    ensure_directory(t, &shared);
    match t.directory.grant(&g) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DirectoryBody {
    Generate { generate: GenerateSpec },
    Seed(Box<DirectorySeed>),
}

#[derive(Deserialize)]
struct GenerateSpec {
    mailboxes: usize,
    #[serde(default)]
    seed: u64,
}

async fn replace_directory(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(body): Json<DirectoryBody>,
) -> Response {
    let (id, domain) = {
        let world = shared.world.read();
        let id = match tenant_id(&world, &tenant) {
            Ok(id) => id,
            Err(r) => return r,
        };
        let domain = world
            .tenants
            .get(&id)
            .map(|t| t.initial_domain().to_owned())
            .unwrap_or_default();
        (id, domain)
    };
    let (seed, rng_seed) = match body {
        DirectoryBody::Generate { generate } => (
            generated_directory_seed(&domain, generate.mailboxes, generate.seed),
            generate.seed,
        ),
        DirectoryBody::Seed(s) => (*s, rand::Rng::random(&mut *shared.rng.lock())),
    };
    let dir = match Directory::from_seed(&seed, &domain, rng_seed) {
        Ok(d) => d,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let count = dir.mailbox_count();
    let mut world = shared.world.write();
    match world.tenants.get_mut(&id) {
        Some(t) => {
            t.directory = dir;
            Json(json!({"mailboxes": count})).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "tenant vanished"),
    }
}

/// Every permission row of the tenant, flattened (SELF and inherited rows included).
async fn permissions(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    let world = shared.world.read();
    let id = match tenant_id(&world, &tenant) {
        Ok(id) => id,
        Err(r) => return r,
    };
    let Some(t) = world.tenants.get(&id) else {
        return err(StatusCode::NOT_FOUND, "tenant vanished");
    };
    let dir = &t.directory;
    let mut out = Vec::new();
    for (_, o) in dir.live() {
        let p = o.perms();
        let base = |right: &str, user: String, sid: String| {
            json!({
                "mailbox": &*o.name,
                "mailbox_address": o.primary_smtp.as_deref(),
                "mailbox_object_id": o.external_directory_object_id,
                "right": right,
                "trustee": user,
                "trustee_sid": sid,
            })
        };
        for r in &p.full_access {
            let mut v = base(
                &rights_string(r.rights),
                dir.principal_display(&r.principal),
                dir.sid_string(&r.principal),
            );
            if let Some(m) = v.as_object_mut() {
                m.insert("deny".into(), json!(r.deny));
                m.insert("inherited".into(), json!(r.inherited));
                m.insert("automapping".into(), json!(r.automapping));
            }
            out.push(v);
        }
        for r in &p.send_as {
            out.push(base(
                "SendAs",
                dir.principal_display(&r.trustee),
                dir.sid_string(&r.trustee),
            ));
        }
        for d in p.send_on_behalf.iter().filter_map(|d| dir.get(*d)) {
            out.push(base(
                "SendOnBehalf",
                d.name.to_string(),
                dir.sid_string(&super::directory::Sid::Tenant(d.rid)),
            ));
        }
    }
    Json(json!({ "permissions": out })).into_response()
}

fn merge(base: &Knobs, patch: Value) -> Result<Knobs, Response> {
    let mut v =
        serde_json::to_value(base).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let Value::Object(patch) = patch else {
        return Err(err(StatusCode::BAD_REQUEST, "knobs must be a JSON object"));
    };
    if let Value::Object(m) = &mut v {
        for (k, x) in patch {
            if !m.contains_key(&k) {
                return Err(err(StatusCode::BAD_REQUEST, format!("unknown knob '{k}'")));
            }
            m.insert(k, x);
        }
    }
    serde_json::from_value(v).map_err(|e| err(StatusCode::BAD_REQUEST, e))
}

async fn knobs_get(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.world.read().knobs.clone()).into_response()
}

async fn knobs_put(State(shared): State<Arc<Shared>>, Json(patch): Json<Value>) -> Response {
    let mut world = shared.world.write();
    match merge(&world.knobs, patch) {
        Ok(k) => {
            world.knobs = k.clone();
            Json(k).into_response()
        }
        Err(r) => r,
    }
}

async fn tenant_knobs_get(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let world = shared.world.read();
    match tenant_id(&world, &tenant) {
        Ok(id) => Json(world.knobs_for(id).clone()).into_response(),
        Err(r) => r,
    }
}

async fn tenant_knobs_put(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(patch): Json<Value>,
) -> Response {
    let mut world = shared.world.write();
    let id = match tenant_id(&world, &tenant) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match merge(world.knobs_for(id), patch) {
        Ok(k) => {
            world.tenant_knobs.insert(id, k.clone());
            Json(k).into_response()
        }
        Err(r) => r,
    }
}

async fn tenant_knobs_delete(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let mut world = shared.world.write();
    match tenant_id(&world, &tenant) {
        Ok(id) => {
            world.tenant_knobs.remove(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(r) => r,
    }
}

async fn counters_get(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.world.read().counters.clone()).into_response()
}

async fn counters_reset(State(shared): State<Arc<Shared>>) -> Response {
    let mut world = shared.world.write();
    let in_flight = std::mem::take(&mut world.counters.in_flight);
    world.counters = Default::default();
    world.counters.in_flight = in_flight;
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct LogQuery {
    tenant: Option<String>,
    since: Option<String>,
}

async fn apply_log(State(shared): State<Arc<Shared>>, Query(q): Query<LogQuery>) -> Response {
    let world = shared.world.read();
    let tenant = match q.tenant.as_deref() {
        Some(t) => match world.tenant_by_ref(t) {
            Some(t) => Some(t.id),
            None => return err(StatusCode::NOT_FOUND, format!("no tenant '{t}'")),
        },
        None => None,
    };
    let since_seq = q.since.as_deref().and_then(|s| s.parse::<u64>().ok());
    let since_time = q.since.as_deref().and_then(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    });
    if q.since.is_some() && since_seq.is_none() && since_time.is_none() {
        return err(
            StatusCode::BAD_REQUEST,
            "since must be a sequence number or an RFC 3339 time",
        );
    }
    let entries: Vec<_> = world
        .apply_log
        .iter()
        .filter(|e| tenant.is_none_or(|t| e.tenant == t))
        .filter(|e| since_seq.is_none_or(|s| e.seq > s))
        .filter(|e| since_time.is_none_or(|t| e.at > t))
        .collect();
    Json(json!({ "entries": entries })).into_response()
}
