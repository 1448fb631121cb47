//! The JSON API under `/api/v1/` (documented in `docs/API.md`). Authenticated by the session
//! cookie (changes then need the `x-csrf-token` header) or `Authorization: Bearer <api token>`.
//! A bearer token acts like its owner's agent (channel `mcp`), so it can read and ask for
//! changes but never approve or reject: decisions need a person's session.
//! Tenant text in every answer is sanitized by the core's one sanitizer (see [`crate::views`]).
//! Errors: `{"error":{"code","message"}}` with the stable codes of `CoreError::code` and
//! [`super::error::WEB_CODES`].

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use exogate_core::model::IdentityInput;
use exogate_core::ops::{companies, reads, requests};
use exogate_core::request::{RequestFilter, RequestState};
use exogate_core::tools::ToolName;
use exogate_core::{CompanyId, CoreError, RequestId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::auth::{Auth, Peer, Session, check_login, session_cookie};
use super::common::{
    AuditQuery, chain_check, company_map, consent_problem, filtered_audit, new_request_id,
};
use super::error::{ApiError, ApiResult, HttpError};
use crate::views::{
    CompanyView, IdentityView, MailboxDetailsView, MeView, PermissionView, RequestView, StatusView,
    shown,
};

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/companies", get(list_companies))
        .route(
            "/api/v1/companies/{id}",
            get(get_company).patch(patch_company),
        )
        .route("/api/v1/companies/{id}/status", get(get_status))
        .route("/api/v1/companies/{id}/status/check", post(check_status))
        .route("/api/v1/companies/{id}/disconnect", post(disconnect))
        .route(
            "/api/v1/companies/{id}/mailboxes/{mailbox}/full-access",
            get(full_access),
        )
        .route(
            "/api/v1/companies/{id}/mailboxes/{mailbox}/send-as",
            get(send_as),
        )
        .route(
            "/api/v1/companies/{id}/mailboxes/{mailbox}/details",
            get(details),
        )
        .route("/api/v1/requests", get(list_requests).post(create_request))
        .route("/api/v1/requests/{id}", get(get_request))
        .route("/api/v1/requests/{id}/approve", post(decision::<true>))
        .route("/api/v1/requests/{id}/reject", post(decision::<false>))
        .route("/api/v1/requests/{id}/cancel", post(cancel))
        .route("/api/v1/requests/{id}/revert", post(revert))
        .route("/api/v1/audit", get(audit_list))
        .route("/api/v1/audit/verify", get(audit_verify))
}

/// The API's view of the caller; rejections are JSON.
pub struct ApiAuth(pub Auth);

impl axum::extract::FromRequestParts<WebState> for ApiAuth {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &WebState,
    ) -> Result<Self, ApiError> {
        Ok(ApiAuth(Auth::from_request_parts(parts, st).await?))
    }
}

impl ApiAuth {
    /// For changes: session callers must send `x-csrf-token`.
    pub(crate) fn change(&self, headers: &HeaderMap) -> Result<exogate_core::Actor, ApiError> {
        let t = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        self.0.check_csrf(t)?;
        Ok(self.0.api_actor())
    }
}

/// A JSON body, with malformed JSON answered as `bad_request` in the API's error shape.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, st: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, st).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(e) => Err(HttpError::bad_request(e.body_text()).into()),
        }
    }
}

/// The company a call names. An API token's call also draws from that company's budget
/// (`crate::limits`), shared with MCP.
pub(crate) async fn company_named(
    st: &WebState,
    actor: &exogate_core::Actor,
    raw: &str,
) -> Result<CompanyId, ApiError> {
    let id = exogate_core::ops::companies::resolve(st.app.ctx(), actor, raw).await?;
    st.app.limits.check_company(actor, &id)?;
    Ok(id)
}

/// (cli-requests) A request id, or a unique prefix of at least 8 of its characters among the
/// requests `actor` may see.
async fn request_id(
    st: &WebState,
    actor: &exogate_core::Actor,
    s: &str,
) -> Result<RequestId, ApiError> {
    Ok(requests::resolve_id(st.app.ctx(), actor, s).await?)
}

#[derive(Deserialize)]
pub struct LoginBody {
    user: String,
    password: String,
    // (msft-signin)
    #[serde(default)]
    code: Option<String>,
}

/// `POST /api/v1/login`: starts a session (cookie) and returns the CSRF token for changes.
async fn login(
    State(st): State<WebState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Body(b): Body<LoginBody>,
) -> ApiResult<Response> {
    let user = check_login(&st, &b.user, &b.password, b.code.as_deref(), peer).await?;
    if let Some(old) = Session::from_headers(&st, &headers).await {
        let _ = st.app.store.delete_session(&old.id_hash).await;
    }
    let (s, value) = Session::create(&st, user.id).await?;
    let mut r = Json(json!({
        "user": user.name.as_str(), "role": user.role.as_str(), "csrf_token": s.data.csrf,
    }))
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(st.app.secure_cookies, Some(&value)),
    );
    Ok(r)
}

async fn logout(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
) -> ApiResult<Response> {
    auth.change(&headers)?;
    let clear = super::common::end_session(&st, &auth.0).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(header::SET_COOKIE, clear);
    Ok(r)
}

async fn me(auth: ApiAuth) -> Json<Value> {
    Json(json!({ "user": MeView::of(&auth.0.api_actor()) }))
}

async fn list_companies(State(st): State<WebState>, auth: ApiAuth) -> ApiResult<Json<Value>> {
    let list = companies::list_companies(st.app.ctx(), &auth.0.api_actor()).await?;
    let v: Vec<CompanyView> = list.iter().map(CompanyView::of).collect();
    Ok(Json(json!({ "companies": v })))
}

async fn get_company(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<CompanyView>> {
    let id = company_named(&st, &auth.0.api_actor(), &id).await?;
    let c = companies::get_company(st.app.ctx(), &auth.0.api_actor(), &id).await?;
    let mut v = CompanyView::of(&c);
    v.status = v
        .status
        .with_consent_problem(consent_problem(&auth.0, &id).as_deref());
    Ok(Json(v))
}

/// `PATCH /api/v1/companies/{id}` body: the settings to change.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    separate_approver: bool,
}

/// `PATCH /api/v1/companies/{id}`: turns the separate-approver rule on or off (admin, in
/// person: a bearer token gets `decision_via_mcp`). Answers the `Company`.
async fn patch_company(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<CompanyPatch>,
) -> ApiResult<Json<CompanyView>> {
    let actor = auth.change(&headers)?;
    let id = company_named(&st, &actor, &id).await?;
    let c =
        companies::set_separate_approver(st.app.ctx(), &actor, &id, b.separate_approver).await?;
    let mut v = CompanyView::of(&c);
    v.status = v
        .status
        .with_consent_problem(consent_problem(&auth.0, &id).as_deref());
    Ok(Json(v))
}

async fn get_status(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<StatusView>> {
    let id = company_named(&st, &auth.0.api_actor(), &id).await?;
    let c = companies::get_company(st.app.ctx(), &auth.0.api_actor(), &id).await?;
    Ok(Json(StatusView::of(&c).with_consent_problem(
        consent_problem(&auth.0, &id).as_deref(),
    )))
}

/// `POST …/status/check`: a fresh Exchange Admin check (drops the cached token first).
async fn check_status(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<StatusView>> {
    let actor = auth.change(&headers)?;
    let id = company_named(&st, &actor, &id).await?;
    exogate_core::policy::can_view(&actor.user, &id).map_err(CoreError::forbidden)?;
    let rec = companies::check_status(st.app.ctx(), Some(&actor), &id).await?;
    super::status_checked(&st.app, &id, rec.state.as_str());
    let c = companies::get_company(st.app.ctx(), &actor, &id).await?;
    Ok(Json(StatusView::of(&c).with_consent_problem(
        consent_problem(&auth.0, &id).as_deref(),
    )))
}

async fn disconnect(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CompanyView>> {
    let actor = auth.change(&headers)?;
    let id = company_named(&st, &actor, &id).await?;
    let before = companies::get_company(st.app.ctx(), &actor, &id).await?;
    let c = companies::disconnect(st.app.ctx(), &actor, &id).await?;
    if let Some(conn) = before.connection {
        st.app.m365.forget_tenant(conn.tenant_id.as_uuid());
    }
    Ok(Json(CompanyView::of(&c)))
}

async fn full_access(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    permissions(&st, &auth, path, false).await
}

async fn send_as(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(path): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    permissions(&st, &auth, path, true).await
}

/// A mailbox's Full Access (under `full_access`) or Send As (under `send_as`) entries.
async fn permissions(
    st: &WebState,
    auth: &ApiAuth,
    (id, mailbox): (String, String),
    send_as: bool,
) -> ApiResult<Json<Value>> {
    let actor = auth.0.api_actor();
    let id = company_named(st, &actor, &id).await?;
    let mbx = IdentityInput::parse(&mailbox)?;
    let ctx = st.app.ctx();
    let (key, (m, list)) = if send_as {
        let read = reads::view_send_as_permissions(ctx, &actor, &id, &mbx).await?;
        ("send_as", read)
    } else {
        let read = reads::view_mailbox_permissions(ctx, &actor, &id, &mbx).await?;
        ("full_access", read)
    };
    let mut body = json!({ "mailbox": IdentityView::of(&m) });
    body[key] = json!(list.iter().map(PermissionView::of).collect::<Vec<_>>());
    Ok(Json(body))
}

async fn details(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path((id, mailbox)): Path<(String, String)>,
) -> ApiResult<Json<MailboxDetailsView>> {
    let id = company_named(&st, &auth.0.api_actor(), &id).await?;
    let mbx = IdentityInput::parse(&mailbox)?;
    let d = reads::view_mailbox_details(st.app.ctx(), &auth.0.api_actor(), &id, &mbx).await?;
    Ok(Json(MailboxDetailsView::of(&d)))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    company: Option<String>,
    #[serde(default)]
    limit: Option<u32>,
}

async fn list_requests(
    State(st): State<WebState>,
    auth: ApiAuth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let actor = auth.0.api_actor();
    let states = match q.state.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(
            s.split(',')
                .map(|x| {
                    RequestState::parse(x.trim()).ok_or_else(|| {
                        CoreError::invalid(
                            "state",
                            format!("`{}` is not a request state", shown(x)),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let companies_f = match q
        .company
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(c) => Some(vec![company_named(&st, &actor, c).await?]),
    };
    let list = requests::list_requests(
        st.app.ctx(),
        &actor,
        RequestFilter {
            companies: companies_f,
            states,
            requester: None,
            limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
        },
    )
    .await?;
    let map = company_map(&st).await?;
    let now = st.app.clock.now();
    let v: Vec<RequestView> = list
        .iter()
        .map(|r| RequestView::of(r, map.get(&r.company), &actor, now))
        .collect();
    Ok(Json(json!({ "requests": v })))
}

#[derive(Deserialize)]
pub struct CreateBody {
    company: String,
    tool: String,
    mailbox: String,
    trustee: String,
    #[serde(default)]
    automapping: Option<bool>,
    // (timed-grants)
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    until: Option<String>,
    // (cli-requests)
    #[serde(default)]
    ticket: Option<String>,
}

pub(crate) async fn request_json(
    st: &WebState,
    actor: &exogate_core::Actor,
    r: &exogate_core::request::ApprovalRequest,
) -> ApiResult<RequestView> {
    Ok(crate::views::request_for(&st.app, actor, r).await?)
}

async fn create_request(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Body(b): Body<CreateBody>,
) -> ApiResult<Response> {
    let actor = auth.change(&headers)?;
    let tool = ToolName::parse(&b.tool)
        .filter(|t| t.is_write())
        .ok_or_else(|| {
            CoreError::invalid("tool", format!("`{}` is not a write tool", shown(&b.tool)))
        })?;
    let asked = new_request_id();
    // (cli-requests) With the optional ticket reference.
    let input = requests::WriteManyInput {
        id: asked,
        company: company_named(&st, &actor, &b.company).await?,
        tool,
        mailbox: IdentityInput::parse(&b.mailbox)?,
        trustees: vec![IdentityInput::parse(&b.trustee)?],
        automapping: b.automapping,
        ticket: b.ticket,
        end: requests::EndInput {
            duration: b.duration,
            until: b.until,
        },
    };
    let r = requests::request_write_many(st.app.ctx(), &actor, input).await?;
    super::request_changed(&st.app, &r);
    let v = request_json(&st, &actor, &r).await?;
    Ok((created_or_existing(asked, &r), Json(v)).into_response())
}

/// `201` for a new request; `200` when the caller already had this exact request pending and
/// got it back instead.
pub(crate) fn created_or_existing(
    asked: exogate_core::model::RequestId,
    got: &exogate_core::request::ApprovalRequest,
) -> StatusCode {
    if got.id == asked {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

async fn get_request(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    let actor = auth.0.api_actor();
    let id = request_id(&st, &actor, &id).await?;
    let r = requests::get_request(st.app.ctx(), &actor, id).await?;
    Ok(Json(request_json(&st, &actor, &r).await?))
}

#[derive(Deserialize, Default)]
pub struct DecisionBody {
    #[serde(default)]
    reason: Option<String>,
    /// When given, must equal the request's digest (the decision binds to what was reviewed).
    #[serde(default)]
    digest: Option<String>,
}

async fn decide(
    st: &WebState,
    auth: &ApiAuth,
    headers: &HeaderMap,
    id: &str,
    body: Option<DecisionBody>,
    approve: bool,
) -> ApiResult<Json<RequestView>> {
    let actor = auth.change(headers)?;
    let id = request_id(st, &actor, id).await?;
    let body = body.unwrap_or_default();
    let ctx = st.app.ctx();
    if let Some(d) = body.digest.as_deref() {
        let r = requests::get_request(ctx, &actor, id).await?;
        requests::check_reviewed(&r, d).map_err(|_| {
            HttpError::new(
                StatusCode::CONFLICT,
                "digest_mismatch",
                "the digest does not match the request's action; fetch it again and review",
            )
        })?;
    }
    let r = if approve {
        let r = requests::approve(ctx, &actor, id, body.reason.as_deref()).await?;
        st.app.worker_wake.notify_one();
        r
    } else {
        requests::reject(ctx, &actor, id, body.reason.as_deref()).await?
    };
    super::request_changed(&st.app, &r);
    Ok(Json(request_json(st, &actor, &r).await?))
}

/// An optional JSON body (empty body allowed).
pub struct OptBody<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for OptBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, st: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, st)
            .await
            .map_err(|e| HttpError::bad_request(e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptBody(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| OptBody(Some(v)))
            .map_err(|e| HttpError::bad_request(format!("invalid JSON body: {e}")).into())
    }
}

/// `POST /api/v1/requests/{id}/approve` (`APPROVE` true) and `/reject` (false).
async fn decision<const APPROVE: bool>(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptBody(b): OptBody<DecisionBody>,
) -> ApiResult<Json<RequestView>> {
    decide(&st, &auth, &headers, &id, b, APPROVE).await
}

async fn cancel(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<RequestView>> {
    let actor = auth.change(&headers)?;
    let id = request_id(&st, &actor, &id).await?;
    let r = requests::cancel(st.app.ctx(), &actor, id).await?;
    super::request_changed(&st.app, &r);
    Ok(Json(request_json(&st, &actor, &r).await?))
}

async fn revert(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let actor = auth.change(&headers)?;
    let asked = new_request_id();
    let id = request_id(&st, &actor, &id).await?;
    let r = requests::revert(st.app.ctx(), &actor, id, asked).await?;
    super::request_changed(&st.app, &r);
    let v = request_json(&st, &actor, &r).await?;
    Ok((created_or_existing(asked, &r), Json(v)).into_response())
}

async fn audit_list(
    State(st): State<WebState>,
    auth: ApiAuth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<Value>> {
    let mut a = auth.0.clone();
    a.actor = auth.0.api_actor();
    let (events, next) = filtered_audit(&st, &a, &q).await?;
    Ok(Json(json!({ "events": events, "next": next })))
}

async fn audit_verify(State(st): State<WebState>, auth: ApiAuth) -> ApiResult<Json<Value>> {
    let (_, _, v) = chain_check(&st, &auth.0.api_actor()).await?;
    Ok(Json(v))
}
