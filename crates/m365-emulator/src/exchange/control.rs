//! The Exchange half of the control API (nested under `/_emulator`):
//!
//! | route | what |
//! |---|---|
//! | `POST /exchange/{tenant}/objects` | create a user, mailbox or group ([`NewObject`] JSON; a group's `members` must exist) |
//! | `DELETE /exchange/{tenant}/objects/{identity}` | delete a principal (its ACL rows become orphans) |
//! | `POST /exchange/{tenant}/grants` | grant a right directly ([`Grant`] JSON; no apply-log entry) |
//! | `DELETE /exchange/{tenant}/grants` | remove a right directly ([`Grant`] JSON; no apply-log entry; 204 also when absent) |
//! | `PUT /exchange/{tenant}/directory` | replace the directory: a [`DirectorySeed`], or `{"generate":{"mailboxes":N,"seed":S}}` |
//! | `GET /exchange/{tenant}/objects/{identity}` | ground truth of one object: ids and every ACL row, automapping included |
//! | `GET /exchange/{tenant}/permissions` | the tenant's whole ground-truth permission set |
//! | `GET /exchange/{tenant}/groups` | every live group with its direct members: `{"groups":[{"name","object_id","mail_enabled","members":[{"name","object_id","kind"}]}]}` |
//! | `POST /exchange/{tenant}/groups/{group}/members` | `{"member":"<identity>"}`: add a direct member (201; 404 unknown group or member; 409 already a member) |
//! | `DELETE /exchange/{tenant}/groups/{group}/members/{member}` | remove a direct member (204; 404 not a member) |
//! | `GET/PUT /knobs` | global knobs (PUT merges the given fields) |
//! | `GET/PUT/DELETE /knobs/{tenant}` | per-tenant knobs (PUT merges over the tenant's current knobs) |
//! | `GET/DELETE /counters` | request counters; DELETE resets them |
//! | `GET /apply-log?tenant=&since=` | applied changes; `since` is a seq (exclusive) or an RFC 3339 time |
//!
//! Membership changes are directory set-up, not Exchange writes: they never enter the apply log.

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
    // One tenant's directory, nested under `/exchange/{tenant}`: path, then its methods.
    let directory = [
        ("/objects", post(create_object)),
        (
            "/objects/{identity}",
            get(object_truth).delete(delete_object),
        ),
        ("/grants", post(grant).delete(revoke)),
        ("/directory", put(replace_directory)),
        ("/permissions", get(permissions)),
        ("/groups", get(groups)),
        ("/groups/{group}/members", post(add_member)),
        (
            "/groups/{group}/members/{member}",
            axum::routing::delete(remove_member),
        ),
    ]
    .into_iter()
    .fold(Router::new(), |router, (path, methods)| {
        router.route(path, methods)
    });
    Router::new()
        .nest("/exchange/{tenant}", directory)
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

/// A handler's answer: the error arm is the response to send as it is.
type Reply = Result<Response, Response>;

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

/// The live tenant `reference` names, or the 404 to answer.
fn live_tenant<'w>(world: &'w World, reference: &str) -> Result<&'w Tenant, Response> {
    let id = tenant_id(world, reference)?;
    world
        .tenants
        .get(&id)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "tenant vanished"))
}

/// As [`live_tenant`], to change it.
fn live_tenant_mut<'w>(world: &'w mut World, reference: &str) -> Result<&'w mut Tenant, Response> {
    let id = tenant_id(world, reference)?;
    world
        .tenants
        .get_mut(&id)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "tenant vanished"))
}

/// As [`live_tenant_mut`], for a handler that adds to the tenant's directory: one created empty
/// is given its domain SID first.
fn directory_tenant<'w>(
    world: &'w mut World,
    reference: &str,
    shared: &Shared,
) -> Result<&'w mut Tenant, Response> {
    let t = live_tenant_mut(world, reference)?;
    ensure_directory(t, shared);
    Ok(t)
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
        "members": members_json(dir, id),
    })
}

/// A group's live direct members: `[{"name","object_id","kind"}]`.
fn members_json(dir: &Directory, group: ObjId) -> Vec<Value> {
    dir.members(group)
        .filter_map(|m| dir.get(m))
        .map(|m| {
            json!({
                "name": &*m.name,
                "object_id": m.external_directory_object_id,
                "kind": m.kind,
            })
        })
        .collect()
}

async fn create_object(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(new): Json<NewObject>,
) -> Reply {
    let mut world = shared.world.write();
    let t = directory_tenant(&mut world, &tenant, &shared)?;
    let domain = t.initial_domain().to_owned();
    // Members must exist already; check them before creating anything.
    let members = new
        .members
        .iter()
        .map(|m| find(&t.directory, m))
        .collect::<Result<Vec<_>, _>>()?;
    if !members.is_empty() && !new.kind.is_some_and(|k| k.is_group()) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            format!("'{}' is not a group, so it has no members", new.name),
        ));
    }
    let mut rng = shared.rng.lock();
    let oid = t
        .directory
        .create(&new, &domain, &mut *rng)
        .map_err(|e| err(StatusCode::CONFLICT, e))?;
    for m in members {
        t.directory
            .add_member(oid, m)
            .map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    }
    Ok((StatusCode::CREATED, Json(object_json(&t.directory, oid))).into_response())
}

/// The one object (of the kind `what` names) `resolved` found for `identity`: 404 when none,
/// 409 when several.
fn found(resolved: Resolved, identity: &str, what: &str) -> Result<ObjId, Response> {
    match resolved {
        Resolved::Found(id) => Ok(id),
        Resolved::NotFound => Err(err(
            StatusCode::NOT_FOUND,
            format!("no {what} '{identity}'"),
        )),
        Resolved::Ambiguous(_) => Err(err(
            StatusCode::CONFLICT,
            format!("'{identity}' matches several {what}s"),
        )),
    }
}

fn find(dir: &Directory, identity: &str) -> Result<ObjId, Response> {
    found(dir.resolve(identity, |_| true), identity, "object")
}

async fn delete_object(
    State(shared): State<Arc<Shared>>,
    Path((tenant, identity)): Path<(String, String)>,
) -> Reply {
    let mut world = shared.world.write();
    let t = live_tenant_mut(&mut world, &tenant)?;
    let oid = find(&t.directory, &identity)?;
    t.directory.delete(oid);
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn object_truth(
    State(shared): State<Arc<Shared>>,
    Path((tenant, identity)): Path<(String, String)>,
) -> Reply {
    let world = shared.world.read();
    let t = live_tenant(&world, &tenant)?;
    let oid = find(&t.directory, &identity)?;
    Ok(Json(object_json(&t.directory, oid)).into_response())
}

async fn grant(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(g): Json<Grant>,
) -> Reply {
    let mut world = shared.world.write();
    let t = directory_tenant(&mut world, &tenant, &shared)?;
    t.directory
        .grant(&g)
        .map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// (drift) A change made outside exogate: removes a right directly.
async fn revoke(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(g): Json<Grant>,
) -> Reply {
    let mut world = shared.world.write();
    let t = directory_tenant(&mut world, &tenant, &shared)?;
    t.directory
        .revoke(&g)
        .map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
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
) -> Reply {
    let (id, domain) = {
        let world = shared.world.read();
        let id = tenant_id(&world, &tenant)?;
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
    let dir = Directory::from_seed(&seed, &domain, rng_seed)
        .map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    let count = dir.mailbox_count();
    let mut world = shared.world.write();
    let t = world
        .tenants
        .get_mut(&id)
        .ok_or_else(|| err(StatusCode::NOT_FOUND, "tenant vanished"))?;
    t.directory = dir;
    Ok(Json(json!({"mailboxes": count})).into_response())
}

/// Every permission row of the tenant, flattened (SELF and inherited rows included).
async fn permissions(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Reply {
    let world = shared.world.read();
    let t = live_tenant(&world, &tenant)?;
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
    Ok(Json(json!({ "permissions": out })).into_response())
}

/// Every live group with its live direct members.
async fn groups(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Reply {
    let world = shared.world.read();
    let t = live_tenant(&world, &tenant)?;
    let dir = &t.directory;
    let groups: Vec<Value> = dir
        .live()
        .filter(|(_, o)| o.kind.is_group())
        .map(|(gid, g)| {
            json!({
                "name": &*g.name,
                "object_id": g.external_directory_object_id,
                "mail_enabled": g.kind.is_recipient(),
                "members": members_json(dir, gid),
            })
        })
        .collect();
    Ok(Json(json!({ "groups": groups })).into_response())
}

/// Resolves a group (any identity, groups only): 404 when no group has it.
fn find_group(dir: &Directory, identity: &str) -> Result<ObjId, Response> {
    found(
        dir.resolve(identity, |o| o.kind.is_group()),
        identity,
        "group",
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    member: String,
}

async fn add_member(
    State(shared): State<Arc<Shared>>,
    Path((tenant, group)): Path<(String, String)>,
    Json(body): Json<MemberBody>,
) -> Reply {
    let mut world = shared.world.write();
    let dir = &mut live_tenant_mut(&mut world, &tenant)?.directory;
    let gid = find_group(dir, &group)?;
    let mid = find(dir, &body.member)?;
    Ok(match dir.add_member(gid, mid) {
        Ok(true) => (
            StatusCode::CREATED,
            Json(json!({
                "name": dir.get(gid).map(|g| &*g.name),
                "members": members_json(dir, gid),
            })),
        )
            .into_response(),
        Ok(false) => err(
            StatusCode::CONFLICT,
            format!("'{}' is already a member of '{group}'", body.member),
        ),
        Err(e) => err(StatusCode::BAD_REQUEST, e),
    })
}

async fn remove_member(
    State(shared): State<Arc<Shared>>,
    Path((tenant, group, member)): Path<(String, String, String)>,
) -> Reply {
    let mut world = shared.world.write();
    let dir = &mut live_tenant_mut(&mut world, &tenant)?.directory;
    let gid = find_group(dir, &group)?;
    // The member is looked for among the group's members, so an ambiguous identity that names
    // one member only still works.
    let mid = match dir.resolve(&member, |_| true) {
        Resolved::Found(m) => Some(m),
        Resolved::Ambiguous(v) => v.into_iter().find(|m| dir.members(gid).any(|x| x == *m)),
        Resolved::NotFound => None,
    };
    match mid {
        Some(m) if dir.remove_member(gid, m) => Ok(StatusCode::NO_CONTENT.into_response()),
        _ => Err(err(
            StatusCode::NOT_FOUND,
            format!("'{member}' is not a member of '{group}'"),
        )),
    }
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

async fn knobs_put(State(shared): State<Arc<Shared>>, Json(patch): Json<Value>) -> Reply {
    let mut world = shared.world.write();
    let k = merge(&world.knobs, patch)?;
    world.knobs = k.clone();
    Ok(Json(k).into_response())
}

async fn tenant_knobs_get(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Reply {
    let world = shared.world.read();
    let id = tenant_id(&world, &tenant)?;
    Ok(Json(world.knobs_for(id).clone()).into_response())
}

async fn tenant_knobs_put(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    Json(patch): Json<Value>,
) -> Reply {
    let mut world = shared.world.write();
    let id = tenant_id(&world, &tenant)?;
    let k = merge(world.knobs_for(id), patch)?;
    world.tenant_knobs.insert(id, k.clone());
    Ok(Json(k).into_response())
}

async fn tenant_knobs_delete(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Reply {
    let mut world = shared.world.write();
    let id = tenant_id(&world, &tenant)?;
    world.tenant_knobs.remove(&id);
    Ok(StatusCode::NO_CONTENT.into_response())
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
