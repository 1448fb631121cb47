//! HTTP transport of the Exchange admin API (`docs/MICROSOFT.md#authorization`, `#invokecommand`,
//! `#envelope`, `#paging`, `#batch`): authorization from the token's claims, the `CmdletInput`
//! envelope, the success envelope and headers, paging with opaque self-authenticating skiptokens
//! (a cursor, never a copy of the result), `$batch`, and the fault knobs (latency, concurrency
//! cap, rate budget, 5xx, apply-then-drop, replication lag, role propagation delay).

// Handlers bail out with a ready HTTP response; it is built once per failed request.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode, header};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::{Uuid, uuid};

use super::cmdlets::{self, Cmdlet, Ctx, Cursor};
use super::errors::{self, CmdletError, ErrorKind};
use super::params::Params;
use crate::state::{ApplyEntry, Knobs, Shared, ids};

/// Most sub-requests per `$batch` (Microsoft's limit is unknown; CIPP sends 10).
pub const MAX_BATCH: usize = 20;
/// Largest page `Prefer: odata.maxpagesize` may ask for.
pub const MAX_PAGE: usize = 1000;

const COMPLIANCE_ADMINISTRATOR: Uuid = uuid!("17315797-102d-40b4-93e0-432062caca18");
const HELPDESK_ADMINISTRATOR: Uuid = uuid!("729827e3-9c14-49f7-bb1b-9608f156bbb8");
const SECURITY_ADMINISTRATOR: Uuid = uuid!("194ae4cb-b126-40b2-bd5b-6091b380977d");
/// Directory roles that may run every cmdlet here.
pub const WRITE_ROLES: [Uuid; 3] = [
    ids::EXCHANGE_ADMINISTRATOR,
    ids::GLOBAL_ADMINISTRATOR,
    ids::EXCHANGE_RECIPIENT_ADMINISTRATOR,
];
/// Directory roles Microsoft supports for app-only Exchange access that may only run `Get-*`
/// cmdlets here (an assumption: `docs/MICROSOFT.md#authorization`).
pub const READ_ROLES: [Uuid; 5] = [
    ids::GLOBAL_READER,
    ids::SECURITY_READER,
    COMPLIANCE_ADMINISTRATOR,
    HELPDESK_ADMINISTRATOR,
    SECURITY_ADMINISTRATOR,
];

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/adminapi/beta/{tenant}/InvokeCommand", post(invoke))
        .route("/adminapi/beta/{tenant}/$batch", post(batch))
}

/// What the token allows, after the role-propagation window.
#[derive(Debug, Clone)]
struct Authorized {
    tenant_id: Uuid,
    tenant_ref: String,
    appid: Uuid,
    can_write: bool,
    can_read: bool,
}

fn www_authenticate(shared: &Shared) -> String {
    format!(
        "Bearer client_id=\"{}\", trusted_issuers=\"00000001-0000-0000-c000-000000000000@*\", token_types=\"app_asserted_user_v1 service_asserted_app_v1\", authorization_uri=\"{}/common/oauth2/authorize\", error=\"invalid_token\"",
        ids::EXCHANGE_RESOURCE_APP_ID,
        shared.base_url
    )
}

fn unauthorized(shared: &Shared, diagnostics: String) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&www_authenticate(shared)) {
        h.insert(header::WWW_AUTHENTICATE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&diagnostics) {
        h.insert("x-ms-diagnostics", v);
    }
    r
}

fn diag(code: u32, reason: &str, category: &str) -> String {
    format!("{code};reason=\"{reason}\";error_category=\"{category}\"")
}

/// Most verified tokens remembered; the cache is emptied when it grows past this.
const TOKEN_CACHE: usize = 4096;

/// [`crate::entra::verify_access_token`] with a cache of tokens whose signature, issuer and
/// audience verified; `nbf`/`exp` are re-checked against the emulator clock on every call.
fn verify_cached(
    shared: &Shared,
    auth: Option<&str>,
) -> Result<crate::entra::AccessClaims, crate::entra::TokenRejection> {
    use crate::entra::TokenRejection as R;
    let token = auth.map(str::trim).unwrap_or_default();
    if !token.is_empty() {
        let cached = shared
            .world
            .read()
            .exchange
            .verified_tokens
            .lock()
            .get(token)
            .cloned();
        if let Some(claims) = cached {
            let now = shared.clock.now().unix_timestamp();
            if now >= claims.exp {
                return Err(R::Expired {
                    exp: claims.exp,
                    now,
                });
            }
            if now < claims.nbf {
                return Err(R::NotYetValid {
                    nbf: claims.nbf,
                    now,
                });
            }
            return Ok(claims);
        }
    }
    let claims = crate::entra::verify_access_token(shared, auth, ids::EXCHANGE_AUDIENCE)?;
    let world = shared.world.read();
    let mut cache = world.exchange.verified_tokens.lock();
    if cache.len() >= TOKEN_CACHE {
        cache.clear();
    }
    cache.insert(token.to_owned(), claims.clone());
    Ok(claims)
}

/// Checks the bearer token against the URL's tenant (`docs/MICROSOFT.md#authorization`).
fn authorize(
    shared: &Shared,
    tenant_ref: &str,
    headers: &HeaderMap,
) -> Result<Authorized, Response<Body>> {
    use crate::entra::TokenRejection as R;
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let claims = verify_cached(shared, auth).map_err(|e| {
        let d = match &e {
            R::Missing => diag(
                2000000,
                "The Authorization header is missing or is not a Bearer token.",
                "invalid_token",
            ),
            R::Expired { .. } | R::NotYetValid { .. } => diag(
                2000003,
                "The access token has expired or is not yet valid.",
                "invalid_lifetime",
            ),
            R::WrongAudience { found, .. } => diag(
                2000002,
                &format!("The audience claim value '{found}' is invalid."),
                "invalid_resource",
            ),
            _ => diag(2000001, "The token is invalid.", "invalid_token"),
        };
        unauthorized(shared, d)
    })?;
    if !claims.has_role(ids::EXCHANGE_MANAGE_AS_APP) {
        return Err(unauthorized(
            shared,
            diag(
                2000008,
                "The token contains no permissions, or permissions can not be understood.",
                "invalid_grant",
            ),
        ));
    }
    let now = shared.clock.now();
    let world = shared.world.read();
    let tenant = world
        .tenant_by_ref(tenant_ref)
        .filter(|t| t.id == claims.tid && !t.deleted);
    let Some(tenant) = tenant else {
        return Err(unauthorized(
            shared,
            diag(
                2000004,
                "The token's tenant does not match the tenant in the request URL.",
                "invalid_tenant",
            ),
        ));
    };
    let delay = time::Duration::seconds(
        i64::try_from(world.knobs_for(tenant.id).role_propagation_delay_secs).unwrap_or(i64::MAX),
    );
    let sp = tenant.service_principals.get(&claims.appid);
    // A role counts once it has propagated; the token's claims are authoritative otherwise.
    let effective = |role: &Uuid| {
        claims.has_directory_role(*role)
            && sp
                .and_then(|sp| sp.directory_roles.get(role))
                .is_none_or(|at| *at + delay <= now)
    };
    let can_write = WRITE_ROLES.iter().any(effective);
    let can_read = can_write || READ_ROLES.iter().any(effective);
    Ok(Authorized {
        tenant_id: tenant.id,
        tenant_ref: tenant_ref.to_owned(),
        appid: claims.appid,
        can_write,
        can_read,
    })
}

/// Decrements a tenant's in-flight count when the request ends (or is dropped).
struct InFlight {
    shared: Arc<Shared>,
    tenant: Uuid,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut w = self.shared.world.write();
        if let Some(n) = w.counters.in_flight.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Enters the concurrency cap; `Err` is the family-C 429.
fn enter(shared: &Arc<Shared>, tenant: Uuid) -> Result<InFlight, Response<Body>> {
    let mut w = shared.world.write();
    let cap = w.knobs_for(tenant).tenant_concurrency_cap;
    let retry_after = w.knobs_for(tenant).retry_after_secs;
    let current = w.counters.in_flight.get(&tenant).copied().unwrap_or(0);
    if cap.is_some_and(|c| current >= c) {
        *w.counters.throttled.entry(tenant).or_default() += 1;
        drop(w);
        let mut r = errors::plain_text(StatusCode::TOO_MANY_REQUESTS, errors::CONCURRENCY_MESSAGE);
        if let Ok(v) = HeaderValue::from_str(&fmt_secs(retry_after)) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Err(r);
    }
    w.counters.in_flight.insert(tenant, current + 1);
    let max = w.counters.max_in_flight.entry(tenant).or_default();
    *max = (*max).max(current + 1);
    Ok(InFlight {
        shared: shared.clone(),
        tenant,
    })
}

fn fmt_secs(s: f64) -> String {
    if s.fract() == 0.0 {
        format!("{}", s as u64)
    } else {
        format!("{s:.3}")
    }
}

fn count(shared: &Shared, cmdlet: &str, status: u16) {
    let mut w = shared.world.write();
    *w.counters
        .exchange_requests
        .entry(format!("{cmdlet}|{status}"))
        .or_default() += 1;
}

/// The body of one answered cmdlet.
#[derive(Debug)]
enum ItemBody {
    Json(Value),
    Nul,
    Text(&'static str),
}

#[derive(Debug)]
struct ItemResult {
    status: StatusCode,
    headers: Vec<(HeaderName, String)>,
    body: ItemBody,
    /// Apply-then-drop: abort the connection instead of answering.
    drop_connection: bool,
    cmdlet: String,
}

impl ItemResult {
    fn error(e: &CmdletError, knobs: &Knobs, cmdlet: &str) -> Self {
        ItemResult {
            status: e.status(knobs),
            headers: vec![(
                HeaderName::from_static("x-exceptiontype"),
                e.short_type().to_owned(),
            )],
            body: ItemBody::Json(e.body(knobs)),
            drop_connection: false,
            cmdlet: cmdlet.to_owned(),
        }
    }

    fn nul(cmdlet: &str) -> Self {
        ItemResult {
            status: StatusCode::FORBIDDEN,
            headers: Vec::new(),
            body: ItemBody::Nul,
            drop_connection: false,
            cmdlet: cmdlet.to_owned(),
        }
    }
}

/// Query parameters of an InvokeCommand URL.
#[derive(Debug, Default, Clone)]
struct Query {
    select: Option<String>,
    skiptoken: Option<String>,
}

fn parse_query(raw: Option<&str>) -> Query {
    let mut q = Query::default();
    let pairs: Vec<(String, String)> = raw
        .and_then(|r| serde_urlencoded::from_str(r).ok())
        .unwrap_or_default();
    for (k, v) in pairs {
        if k.eq_ignore_ascii_case("$select") {
            q.select = Some(v);
        } else if k.eq_ignore_ascii_case("$skiptoken") {
            q.skiptoken = Some(v);
        }
    }
    q
}

/// `Prefer: odata.maxpagesize=N` (spaces tolerated), clamped to 1..=1000.
fn page_size(prefer: &[&str]) -> Option<usize> {
    for p in prefer {
        for part in p.split([';', ',']) {
            let part = part.trim();
            if let Some((k, v)) = part.split_once('=')
                && k.trim().eq_ignore_ascii_case("odata.maxpagesize")
                && let Ok(n) = v.trim().trim_matches('"').parse::<usize>()
            {
                return Some(n.clamp(1, MAX_PAGE));
            }
        }
    }
    None
}

fn fingerprint(tenant: Uuid, cmdlet: Cmdlet, params: Option<&Value>) -> [u8; 8] {
    let mut h = Sha256::new();
    h.update(tenant.as_bytes());
    h.update(cmdlet.name().as_bytes());
    h.update(params.map(Value::to_string).unwrap_or_default().as_bytes());
    let d = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&d[..8]);
    out
}

fn skiptoken_key(shared: &Shared) -> [u8; 32] {
    if let Some(k) = shared.world.read().exchange.skiptoken_key {
        return k;
    }
    let mut key = [0u8; 32];
    shared.rng.lock().fill(&mut key[..]);
    let mut w = shared.world.write();
    *w.exchange.skiptoken_key.get_or_insert(key)
}

fn mac(key: &[u8; 32], payload: &[u8]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(key);
    h.update(payload);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

fn encode_skiptoken(
    key: &[u8; 32],
    fp: [u8; 8],
    cursor: Cursor,
    issued: i64,
    select: Option<&str>,
) -> String {
    let mut p = Vec::with_capacity(48);
    p.extend_from_slice(&fp);
    p.extend_from_slice(&cursor.obj.to_le_bytes());
    p.extend_from_slice(&cursor.row.to_le_bytes());
    p.extend_from_slice(&cursor.emitted.to_le_bytes());
    p.extend_from_slice(&issued.to_le_bytes());
    p.extend_from_slice(select.unwrap_or("").as_bytes());
    let m = mac(key, &p);
    p.extend_from_slice(&m);
    URL_SAFE_NO_PAD.encode(p)
}

/// Decodes a skiptoken: (cursor, issued unix seconds, select).
fn decode_skiptoken(
    key: &[u8; 32],
    fp: [u8; 8],
    token: &str,
) -> Option<(Cursor, i64, Option<String>)> {
    let raw = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
    if raw.len() < 32 + 16 {
        return None;
    }
    let (p, m) = raw.split_at(raw.len() - 16);
    if mac(key, p) != m || p[..8] != fp {
        return None;
    }
    let u32_at = |i: usize| u32::from_le_bytes(p[i..i + 4].try_into().unwrap_or_default());
    let u64_at = |i: usize| u64::from_le_bytes(p[i..i + 8].try_into().unwrap_or_default());
    let cursor = Cursor {
        obj: u32_at(8),
        row: u32_at(12),
        emitted: u64_at(16),
    };
    let issued = u64_at(24) as i64;
    let select = std::str::from_utf8(&p[32..]).ok()?;
    Some((
        cursor,
        issued,
        (!select.is_empty()).then(|| select.to_owned()),
    ))
}

fn apply_select(rows: &mut [serde_json::Map<String, Value>], select: &str) {
    let wanted: Vec<String> = select
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    if wanted.is_empty() {
        return;
    }
    for row in rows {
        row.retain(|k, _| {
            let base = k.split('@').next().unwrap_or(k).to_ascii_lowercase();
            wanted.contains(&base)
        });
    }
}

fn latency(knobs: &Knobs, cmdlet: Cmdlet) -> u64 {
    knobs
        .latency_ms
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(cmdlet.name()))
        .or_else(|| knobs.latency_ms.get_key_value("*"))
        .map_or(0, |(_, v)| *v)
}

/// Takes one token from the tenant's bucket; `Err(wait)` when it is empty.
fn take_token(shared: &Shared, tenant: Uuid, knobs: &Knobs) -> Result<(), f64> {
    let Some(rate) = knobs.tenant_rate_per_sec.filter(|r| *r > 0.0) else {
        return Ok(());
    };
    let burst = knobs.tenant_rate_burst.unwrap_or(rate.max(1.0)).max(1.0);
    let now = shared.clock.now();
    let mut w = shared.world.write();
    let (tokens, last) = w.exchange.buckets.entry(tenant).or_insert((burst, now));
    let elapsed = (now - *last).as_seconds_f64().max(0.0);
    *tokens = (*tokens + elapsed * rate).min(burst);
    *last = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        Ok(())
    } else {
        let wait = (1.0 - *tokens) / rate;
        *w.counters.throttled.entry(tenant).or_default() += 1;
        Err(wait)
    }
}

/// The cmdlet a `CmdletInput` body names, its raw parameters and the parameters bound to its
/// spec; or the answer refusing it (missing anchor, malformed body, unknown cmdlet, a role
/// that may not run it, a parameter that does not bind).
fn parse_input<'b>(
    auth: &Authorized,
    body: &'b Value,
    knobs: &Knobs,
    has_anchor: bool,
) -> Result<(Cmdlet, Option<&'b Value>, Params), ItemResult> {
    if knobs.strict_anchor && !has_anchor {
        let e = CmdletError::bad_request(
            errors::ODATA_TYPE,
            "The request must carry an X-AnchorMailbox header.",
        );
        return Err(ItemResult::error(&e, knobs, "?"));
    }
    let input = body.get("CmdletInput").filter(|v| v.is_object());
    let name = input
        .and_then(|i| i.get("CmdletName"))
        .and_then(Value::as_str);
    let Some(name) = name else {
        let e = CmdletError::bad_request(
            errors::ODATA_TYPE,
            "The request body must be {\"CmdletInput\":{\"CmdletName\":…,\"Parameters\":{…}}}.",
        );
        return Err(ItemResult::error(&e, knobs, "?"));
    };
    let Some(cmdlet) = Cmdlet::from_name(name) else {
        return Err(ItemResult::nul(name));
    };
    let label = cmdlet.name();
    if !(auth.can_write || (auth.can_read && cmdlet.is_read())) {
        return Err(ItemResult::nul(label));
    }
    let raw_params = input.and_then(|i| i.get("Parameters"));
    match Params::bind(raw_params, cmdlet.spec()) {
        Ok(params) => Ok((cmdlet, raw_params, params)),
        Err(e) => Err(ItemResult::error(&e, knobs, label)),
    }
}

/// The answer to a call over the tenant's rate budget: a ThrottlingException with Retry-After.
fn throttled(knobs: &Knobs, label: &str, wait: f64) -> ItemResult {
    let e = CmdletError {
        kind: ErrorKind::Throttled,
        exception_type: "Microsoft.Exchange.Admin.OData.Core.ThrottlingException",
        message: format!(
            "The request was throttled: the tenant's cmdlet budget is spent. Retry after {} seconds.",
            fmt_secs(wait.max(knobs.retry_after_secs))
        ),
        details_code: "Client",
    };
    let mut r = ItemResult::error(&e, knobs, label);
    r.headers.push((
        header::RETRY_AFTER,
        fmt_secs(wait.max(knobs.retry_after_secs)),
    ));
    r
}

/// Rolls the 5xx and apply-then-drop fault knobs: (answer 503, drop the connection after a
/// write).
fn fault_rolls(shared: &Shared, knobs: &Knobs) -> (bool, bool) {
    if knobs.error_5xx_rate > 0.0 || knobs.apply_then_drop_rate > 0.0 {
        let mut rng = shared.rng.lock();
        (
            knobs.error_5xx_rate > 0.0 && rng.random_bool(knobs.error_5xx_rate.clamp(0.0, 1.0)),
            knobs.apply_then_drop_rate > 0.0
                && rng.random_bool(knobs.apply_then_drop_rate.clamp(0.0, 1.0)),
        )
    } else {
        (false, false)
    }
}

/// Where a read starts and the `$select` it keeps: from the skiptoken when the query carries
/// one (`None` when it is forged, expired, for another call or paging is broken), else from the
/// start with the query's `$select`.
fn resume(
    shared: &Shared,
    knobs: &Knobs,
    cmdlet: Cmdlet,
    fp: [u8; 8],
    query: &Query,
    now: time::OffsetDateTime,
) -> Option<(Cursor, Option<String>)> {
    let mut select = query.select.clone();
    let Some(token) = &query.skiptoken else {
        return Some((Cursor::default(), select));
    };
    let key = skiptoken_key(shared);
    let ttl = i64::try_from(knobs.skiptoken_ttl_secs).unwrap_or(i64::MAX);
    match decode_skiptoken(&key, fp, token) {
        Some((cursor, issued, sel))
            if cmdlet.is_read()
                && !knobs.paging_continuation_broken
                && now.unix_timestamp() - issued <= ttl =>
        {
            if select.is_none() {
                select = sel;
            }
            Some((cursor, select))
        }
        _ => None,
    }
}

/// What a cmdlet produced, before the envelope.
struct Ran {
    rows: Vec<serde_json::Map<String, Value>>,
    warnings: Vec<String>,
    next_link: Option<String>,
}

/// One admitted cmdlet call, run against the tenant's directory.
struct Call<'a> {
    shared: &'a Shared,
    auth: &'a Authorized,
    knobs: &'a Knobs,
    cmdlet: Cmdlet,
    params: &'a Params,
    now: time::OffsetDateTime,
    /// The replication lag knob, if any.
    lag: Option<time::Duration>,
}

impl Call<'_> {
    fn ctx<'t>(
        &self,
        tenant_id: Uuid,
        tenant_display_name: &'t str,
        as_of: Option<time::OffsetDateTime>,
    ) -> Ctx<'t> {
        Ctx {
            now: self.now,
            as_of,
            lag: self.lag,
            tenant_id,
            tenant_display_name,
            recipient_permission_is_inherited: self.knobs.recipient_permission_is_inherited,
            add_mailbox_permission_duplicate_warning: self
                .knobs
                .add_mailbox_permission_duplicate_warning,
        }
    }

    /// A read from `start`, on the directory as it was `lag` ago, with the next page's link.
    fn read(
        &self,
        start: Cursor,
        size: usize,
        fp: [u8; 8],
        select: Option<&str>,
    ) -> Result<Ran, CmdletError> {
        let page = {
            let world = self.shared.world.read();
            let Some(tenant) = world.tenants.get(&self.auth.tenant_id) else {
                return Err(CmdletError::not_found(&self.auth.tenant_ref));
            };
            let ctx = self.ctx(
                tenant.id,
                &tenant.display_name,
                self.lag.map(|l| self.now - l),
            );
            cmdlets::read(
                &tenant.directory,
                &ctx,
                self.cmdlet,
                self.params,
                start,
                size,
            )?
        };
        // The world lock is released: the skiptoken key may need to be created.
        let next_link = page.next.map(|next| {
            let key = skiptoken_key(self.shared);
            let token = encode_skiptoken(&key, fp, next, self.now.unix_timestamp(), select);
            format!(
                "{}/adminapi/beta/{}/InvokeCommand?$skiptoken={token}",
                self.shared.base_url, self.auth.tenant_ref
            )
        });
        Ok(Ran {
            rows: page.rows,
            warnings: page.warnings,
            next_link,
        })
    }

    /// A write, its applied changes appended to the apply log.
    fn write(&self) -> Result<Ran, CmdletError> {
        let mut world = self.shared.world.write();
        let world = &mut *world;
        let Some(tenant) = world.tenants.get_mut(&self.auth.tenant_id) else {
            return Err(CmdletError::not_found(&self.auth.tenant_ref));
        };
        let ctx = self.ctx(tenant.id, &tenant.display_name, None);
        let out = cmdlets::write(&mut tenant.directory, &ctx, self.cmdlet, self.params)?;
        for change in out.changes {
            let seq = world.apply_log.len() as u64 + 1;
            world.apply_log.push(ApplyEntry {
                seq,
                at: self.now,
                tenant: self.auth.tenant_id,
                cmdlet: self.cmdlet.name().to_owned(),
                change,
            });
        }
        Ok(Ran {
            rows: out.rows,
            warnings: out.warnings,
            next_link: None,
        })
    }
}

/// The success envelope: the rows, the warnings and the next page's link.
fn envelope(shared: &Shared, auth: &Authorized, ran: Ran) -> Value {
    let mut env = serde_json::Map::new();
    env.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/adminapi/beta/{}/$metadata#Collection(Exchange.GenericHashTable)",
            shared.base_url, auth.tenant_ref
        )),
    );
    env.insert(
        "adminapi.warnings@odata.type".into(),
        json!("#Collection(String)"),
    );
    env.insert("@adminapi.warnings".into(), json!(ran.warnings));
    env.insert(
        "value".into(),
        Value::Array(ran.rows.into_iter().map(Value::Object).collect()),
    );
    if let Some(link) = ran.next_link {
        env.insert("@odata.nextLink".into(), json!(link));
    }
    Value::Object(env)
}

/// The headers of a successful answer: preference applied, app id, concurrency counts and,
/// when the knob is on, rate-limit headers.
fn success_headers(
    shared: &Shared,
    auth: &Authorized,
    knobs: &Knobs,
    prefer: &[&str],
    now: time::OffsetDateTime,
) -> Vec<(HeaderName, String)> {
    let mut headers = vec![
        (
            HeaderName::from_static("preference-applied"),
            match page_size(prefer) {
                Some(n) => format!("odata.include-annotations=\"*\",odata.maxpagesize={n}"),
                None => "odata.include-annotations=\"*\"".to_owned(),
            },
        ),
        (
            HeaderName::from_static("x-ms-appid"),
            auth.appid.to_string(),
        ),
    ];
    let others = shared
        .world
        .read()
        .counters
        .in_flight
        .get(&auth.tenant_id)
        .copied()
        .unwrap_or(1)
        .saturating_sub(1)
        .to_string();
    headers.push((
        HeaderName::from_static("x-concurrencycount"),
        others.clone(),
    ));
    headers.push((
        HeaderName::from_static("x-combinedapponlyconcurrencycount"),
        others,
    ));
    if knobs.rate_limit_headers {
        let reset = now + time::Duration::minutes(5);
        headers.push((HeaderName::from_static("rate-limit-limit"), "30000".into()));
        headers.push((
            HeaderName::from_static("rate-limit-remaining"),
            "29999".into(),
        ));
        headers.push((
            HeaderName::from_static("rate-limit-reset"),
            reset
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        ));
    }
    headers
}

/// Runs one `CmdletInput` body for an authorized caller.
async fn run_one(
    shared: &Arc<Shared>,
    auth: &Authorized,
    body: &Value,
    query: &Query,
    prefer: &[&str],
    has_anchor: bool,
) -> ItemResult {
    let knobs = shared.world.read().knobs_for(auth.tenant_id).clone();
    let (cmdlet, raw_params, params) = match parse_input(auth, body, &knobs, has_anchor) {
        Ok(input) => input,
        Err(refused) => return refused,
    };
    let label = cmdlet.name();
    if let Err(wait) = take_token(shared, auth.tenant_id, &knobs) {
        return throttled(&knobs, label, wait);
    }
    let (fail, drop_roll) = fault_rolls(shared, &knobs);
    if fail {
        return ItemResult {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: Vec::new(),
            body: ItemBody::Text("The service is temporarily unavailable. Please try again later."),
            drop_connection: false,
            cmdlet: label.to_owned(),
        };
    }
    let delay = latency(&knobs, cmdlet);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fp = fingerprint(auth.tenant_id, cmdlet, raw_params);
    let now = shared.clock.now();
    let Some((start, select)) = resume(shared, &knobs, cmdlet, fp, query, now) else {
        return ItemResult::error(&CmdletError::bad_skiptoken(), &knobs, label);
    };
    let call = Call {
        shared,
        auth,
        knobs: &knobs,
        cmdlet,
        params: &params,
        now,
        lag: (knobs.replication_lag_ms > 0).then(|| {
            time::Duration::milliseconds(i64::try_from(knobs.replication_lag_ms).unwrap_or(0))
        }),
    };
    let ran = if cmdlet.is_read() {
        let size = page_size(prefer).unwrap_or(MAX_PAGE);
        call.read(start, size, fp, select.as_deref())
    } else {
        call.write()
    };
    let mut ran = match ran {
        Ok(ran) => ran,
        Err(e) => return ItemResult::error(&e, &knobs, label),
    };
    if let Some(sel) = &select {
        apply_select(&mut ran.rows, sel);
    }
    ItemResult {
        status: StatusCode::OK,
        headers: success_headers(shared, auth, &knobs, prefer, now),
        body: ItemBody::Json(envelope(shared, auth, ran)),
        drop_connection: drop_roll && !cmdlet.is_read(),
        cmdlet: label.to_owned(),
    }
}

fn request_id(shared: &Shared) -> String {
    let bits: u128 = shared.rng.lock().random();
    uuid::Builder::from_random_bytes(bits.to_le_bytes())
        .into_uuid()
        .to_string()
}

fn common_headers(shared: &Shared, h: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&request_id(shared)) {
        h.insert("request-id", v);
    }
    h.insert(
        "x-calculatedbetarget",
        HeaderValue::from_static("EMUPR01MB0001.EMUPRD01.PROD.OUTLOOK.COM"),
    );
    h.insert(
        "x-exchangeversion",
        HeaderValue::from_static("Version 15.20 (Build 9999.1)"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

const JSON_CT: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// A response whose body fails at once, so hyper aborts the connection without an answer.
fn dropped_connection() -> Response<Body> {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("apply-then-drop fault"))
    });
    Response::new(Body::from_stream(stream))
}

fn into_response(shared: &Shared, r: ItemResult, knobs_gzip: bool) -> Response<Body> {
    if r.drop_connection {
        return dropped_connection();
    }
    let mut resp = match r.body {
        ItemBody::Nul => errors::nul_forbidden(knobs_gzip),
        ItemBody::Text(t) => errors::plain_text(r.status, t),
        ItemBody::Json(v) => {
            let mut resp = Response::new(Body::from(serde_json::to_vec(&v).unwrap_or_default()));
            *resp.status_mut() = r.status;
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT));
            resp.headers_mut()
                .insert("odata-version", HeaderValue::from_static("4.0"));
            resp
        }
    };
    for (k, v) in r.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            resp.headers_mut().insert(k, v);
        }
    }
    common_headers(shared, resp.headers_mut());
    resp
}

fn prefer_values(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

async fn read_body(body: Body) -> Result<bytes::Bytes, Response<Body>> {
    axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
        .await
        .map_err(|_| {
            errors::plain_text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is larger than the 10 MB limit.",
            )
        })
}

fn body_error(knobs: &Knobs, message: String) -> ItemResult {
    ItemResult::error(
        &CmdletError::bad_request(errors::ODATA_TYPE, message),
        knobs,
        "?",
    )
}

/// Authorizes the caller, reads the body and takes an in-flight slot; a refusal is counted
/// under `label` (401, 413, 429) and is the answer.
async fn admit(
    shared: &Arc<Shared>,
    tenant: &str,
    headers: &HeaderMap,
    body: Body,
    label: &str,
) -> Result<(Authorized, bytes::Bytes, InFlight), Response<Body>> {
    let refused = |status: u16| {
        move |r: Response<Body>| {
            count(shared, label, status);
            r
        }
    };
    let auth = authorize(shared, tenant, headers).map_err(refused(401))?;
    let bytes = read_body(body).await.map_err(refused(413))?;
    let in_flight = enter(shared, auth.tenant_id).map_err(refused(429))?;
    Ok((auth, bytes, in_flight))
}

async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let (auth, bytes, _in_flight) = match admit(&shared, &tenant, &headers, body, "?").await {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let knobs = shared.world.read().knobs_for(auth.tenant_id).clone();
    let result = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => {
            let q = parse_query(raw_query.as_deref());
            let anchor = headers.contains_key("x-anchormailbox");
            run_one(&shared, &auth, &v, &q, &prefer_values(&headers), anchor).await
        }
        Ok(_) => body_error(&knobs, "The request body must be a JSON object.".into()),
        Err(e) => body_error(&knobs, format!("The request body is not valid JSON: {e}.")),
    };
    count(&shared, &result.cmdlet, result.status.as_u16());
    into_response(&shared, result, knobs.forbidden_body_declares_gzip)
}

/// Splits a sub-request URL into the tenant segment, the resource and its query.
fn parse_sub_url(url: &str) -> Option<(Option<String>, String, Option<String>)> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (url, None),
    };
    if let Some(i) = path.find("/adminapi/beta/") {
        let rest = &path[i + "/adminapi/beta/".len()..];
        let (tenant, resource) = rest.split_once('/')?;
        return Some((Some(tenant.to_owned()), resource.to_owned(), query));
    }
    Some((None, path.trim_start_matches('/').to_owned(), query))
}

async fn batch(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response<Body> {
    let (auth, bytes, _in_flight) = match admit(&shared, &tenant, &headers, body, "$batch").await {
        Ok(admitted) => admitted,
        Err(r) => return r,
    };
    let knobs = shared.world.read().knobs_for(auth.tenant_id).clone();
    let parsed: Result<Vec<Value>, String> = match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(mut o)) => match o.remove("requests") {
            Some(Value::Array(a)) if a.is_empty() => {
                Err("The batch request must contain at least one request.".into())
            }
            Some(Value::Array(a)) if a.len() > MAX_BATCH => Err(format!(
                "The batch request contains {} requests; at most {MAX_BATCH} are allowed.",
                a.len()
            )),
            Some(Value::Array(a)) => Ok(a),
            _ => Err("The batch body must be {\"requests\":[…]}.".into()),
        },
        Ok(_) => Err("The batch body must be a JSON object.".into()),
        Err(e) => Err(format!("The request body is not valid JSON: {e}.")),
    };
    let requests = match parsed {
        Ok(r) => r,
        Err(m) => {
            let r = body_error(&knobs, m);
            count(&shared, "$batch", r.status.as_u16());
            return into_response(&shared, r, knobs.forbidden_body_declares_gzip);
        }
    };
    let outer_prefer = prefer_values(&headers);
    let outer_anchor = headers.contains_key("x-anchormailbox");
    let mut responses = Vec::with_capacity(requests.len());
    for req in &requests {
        let id = req.get("id").cloned().unwrap_or(Value::Null);
        let method = req.get("method").and_then(Value::as_str).unwrap_or("POST");
        let url = req.get("url").and_then(Value::as_str).unwrap_or("");
        let sub_headers = req.get("headers").and_then(Value::as_object);
        let mut prefer: Vec<&str> = sub_headers
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.eq_ignore_ascii_case("prefer"))
            .filter_map(|(_, v)| v.as_str())
            .collect();
        prefer.extend(outer_prefer.iter().copied());
        let result = match parse_sub_url(url) {
            _ if !method.eq_ignore_ascii_case("POST") => body_error(
                &knobs,
                format!("The method '{method}' is not supported; use POST."),
            ),
            Some((t, resource, query))
                if resource.eq_ignore_ascii_case("InvokeCommand")
                    && t.as_deref().is_none_or(|t| {
                        t.eq_ignore_ascii_case(&auth.tenant_ref)
                            || Uuid::parse_str(t).is_ok_and(|u| u == auth.tenant_id)
                    }) =>
            {
                let q = parse_query(query.as_deref());
                match req.get("body") {
                    Some(b) if b.is_object() => {
                        let anchor = outer_anchor
                            || sub_headers.is_some_and(|h| {
                                h.keys().any(|k| k.eq_ignore_ascii_case("x-anchormailbox"))
                            });
                        run_one(&shared, &auth, b, &q, &prefer, anchor).await
                    }
                    _ => body_error(&knobs, "The sub-request has no JSON object body.".into()),
                }
            }
            _ => body_error(
                &knobs,
                format!("The sub-request URL '{url}' is not supported."),
            ),
        };
        count(&shared, &result.cmdlet, result.status.as_u16());
        if result.drop_connection {
            return dropped_connection();
        }
        let mut hdrs = serde_json::Map::new();
        for (k, v) in &result.headers {
            hdrs.insert(k.as_str().to_owned(), json!(v));
        }
        let body = match result.body {
            ItemBody::Json(v) => {
                hdrs.insert("Content-Type".into(), json!(JSON_CT));
                v
            }
            ItemBody::Nul => json!(""),
            ItemBody::Text(t) => {
                hdrs.insert("Content-Type".into(), json!("text/plain; charset=utf-8"));
                json!(t)
            }
        };
        responses.push(json!({
            "id": id,
            "status": result.status.as_u16(),
            "headers": hdrs,
            "body": body,
        }));
    }
    count(&shared, "$batch", 200);
    let r = ItemResult {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: ItemBody::Json(json!({ "responses": responses })),
        drop_connection: false,
        cmdlet: "$batch".into(),
    };
    into_response(&shared, r, knobs.forbidden_body_declares_gzip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skiptoken_round_trips_and_rejects_tampering() {
        let key = [7u8; 32];
        let fp = [1u8; 8];
        let c = Cursor {
            obj: 5,
            row: 2,
            emitted: 300,
        };
        let t = encode_skiptoken(&key, fp, c, 1000, Some("Name,Alias"));
        let (c2, issued, sel) = decode_skiptoken(&key, fp, &t).unwrap();
        assert_eq!((c2, issued, sel.as_deref()), (c, 1000, Some("Name,Alias")));
        assert!(decode_skiptoken(&key, [2u8; 8], &t).is_none());
        assert!(decode_skiptoken(&key, fp, &format!("A{t}")).is_none());
        assert!(decode_skiptoken(&key, fp, "garbage").is_none());
    }

    #[test]
    fn prefer_parsing_tolerates_spaces_and_clamps() {
        assert_eq!(
            page_size(&["odata.maxpagesize = 1000;odata.continue-on-error"]),
            Some(1000)
        );
        assert_eq!(page_size(&["odata.maxpagesize=5000"]), Some(1000));
        assert_eq!(page_size(&["odata.maxpagesize=100"]), Some(100));
        assert_eq!(page_size(&[]), None);
    }
}
