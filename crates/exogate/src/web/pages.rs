//! Server-rendered pages (askama templates in `templates/`, compiled and HTML-escaped): login,
//! companies, a company's integrations, a mailbox's delegation, approvals, a request, audit.
//! Every form posts the session's CSRF token; every change goes through a core operation.

use std::collections::HashMap;

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use exogate_core::audit::AuditKind;
use exogate_core::model::IdentityInput;
use exogate_core::ops::{audit as audit_ops, companies, reads, requests};
use exogate_core::request::{RequestFilter, RequestState};
use exogate_core::tools::ToolName;
use exogate_core::{Company, CompanyId, CoreError, RequestId};
use serde::Deserialize;

use super::WebState;
use super::auth::{Auth, Peer, Session, session_cookie};
use super::error::{HttpError, PageError, PageResult};
use super::layout::{Nav, PageAuth, parse_company, parse_request};
use super::view::{self, AuditView, CompanyView, IdentityView, RequestView};

/// A new request id: UUIDv7, so ids sort by creation time.
pub(crate) fn new_request_id() -> RequestId {
    RequestId::from_uuid(uuid::Uuid::now_v7())
}

// ---------------------------------------------------------------------------------------------
// Login / logout
// ---------------------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub struct LoginPage {
    nav: Option<Nav>,
    error: Option<String>,
    user: String,
    next: String,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Where to go after login: `next` when it is a path on this origin, else `/companies`.
///
/// Accepted: a single `/` followed by a path (and query), all printable ASCII with no space,
/// no backslash, not `//` or `/\` (which browsers take for another host), and the same after
/// percent-decoding (`/%09/evil.example` decodes to a tab, which browsers strip, leaving
/// `//evil.example`). Anything else (empty, a scheme, control characters, non-ASCII, over 2,048
/// bytes) falls back, so the `Location` header is always valid.
pub fn safe_next(next: &str) -> &str {
    const FALLBACK: &str = "/companies";
    fn plain(s: &[u8]) -> bool {
        s.first() == Some(&b'/')
            && !matches!(s.get(1), Some(b'/' | b'\\'))
            && s.iter().all(|b| b.is_ascii_graphic() && *b != b'\\')
    }
    if next.len() > 2048 || !plain(next.as_bytes()) {
        return FALLBACK;
    }
    // Decode every `%XX` (once, then again for double encoding) and check the result too.
    let mut decoded = next.as_bytes().to_vec();
    for _ in 0..2 {
        decoded = percent_decode(&decoded);
        if !plain(&decoded) {
            return FALLBACK;
        }
    }
    next
}

fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && let (Some(h), Some(l)) = (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    out
}

pub async fn login_page(Query(q): Query<NextQuery>) -> LoginPage {
    LoginPage {
        nav: None,
        error: None,
        user: String::new(),
        next: safe_next(&q.next).to_owned(),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn login_submit(
    State(st): State<WebState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    match super::auth::check_login(&st, &f.user, &f.password, peer).await {
        Ok(user) => {
            // Never reuse an id the browser brought along: drop it and issue a new one.
            if let Some(old) = Session::from_headers(&st, &headers).await {
                let _ = st.app.store.delete_session(&old.id_hash).await;
            }
            match Session::create(&st, user.id).await {
                Ok((_, value)) => {
                    let mut r = Redirect::to(safe_next(&f.next)).into_response();
                    r.headers_mut().insert(
                        header::SET_COOKIE,
                        session_cookie(st.app.secure_cookies, Some(&value)),
                    );
                    r
                }
                Err(e) => PageError(e).into_response(),
            }
        }
        Err(e) => {
            // 401 for a wrong name or password, 429 (with Retry-After) when locked out.
            let mut r = (
                e.status,
                LoginPage {
                    nav: None,
                    error: Some(e.message.clone()),
                    user: f.user.chars().take(64).collect(),
                    next: safe_next(&f.next).to_owned(),
                },
            )
                .into_response();
            e.add_retry_after(&mut r);
            r
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn logout(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<CsrfForm>,
) -> PageResult<Response> {
    auth.check(&f.csrf)?;
    if let Some(s) = &auth.0.session {
        st.app
            .store
            .delete_session(&s.id_hash)
            .await
            .map_err(CoreError::from)?;
    }
    let mut r = Redirect::to("/login").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(st.app.secure_cookies, None),
    );
    Ok(r)
}

// ---------------------------------------------------------------------------------------------
// Companies and integrations
// ---------------------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "companies.html")]
pub struct CompaniesPage {
    nav: Option<Nav>,
    companies: Vec<CompanyView>,
}

pub async fn companies(State(st): State<WebState>, auth: PageAuth) -> PageResult<CompaniesPage> {
    let list = companies::list_companies(st.app.ctx(), &auth.0.actor).await?;
    Ok(CompaniesPage {
        nav: auth.nav(),
        companies: list.iter().map(CompanyView::of).collect(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "integrations.html")]
pub struct IntegrationsPage {
    nav: Option<Nav>,
    c: CompanyView,
    csrf: String,
    flash: Option<String>,
    may_connect: bool,
    may_disconnect: bool,
    /// Whether the viewer may turn the separate-approver rule on or off (admins).
    may_set_separate_approver: bool,
    /// Where the customer's admin assigns the directory role (Step 2).
    roles_url: String,
}

/// The "Roles & admins" page of the customer's Entra admin centre: Microsoft's portal, or the
/// emulator's admin-centre page when Microsoft is the emulator.
pub(crate) fn roles_url(st: &WebState, tenant: Option<&str>) -> String {
    let login = &st.app.m365.endpoints().login;
    let host = login.host_str().unwrap_or("");
    if host.starts_with("login.microsoftonline.") || host.starts_with("login.chinacloudapi.") {
        "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/RolesManagementMenuBlade/~/AllRoles"
            .to_owned()
    } else {
        format!(
            "{}/_admin/{}/roles",
            login.as_str().trim_end_matches('/'),
            tenant.unwrap_or("")
        )
    }
}

/// The consent problem recorded in this session for `company`, if any (e.g. `wrong_tenant`).
pub(crate) fn consent_problem(auth: &Auth, company: &CompanyId) -> Option<String> {
    let s = auth.session.as_ref()?;
    let o = s.data.consent.get(company.as_str())?;
    (o.outcome == "wrong_tenant").then(|| o.outcome.clone())
}

pub async fn integrations(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult<IntegrationsPage> {
    let id = parse_company(&id)?;
    let c = companies::get_company(st.app.ctx(), &auth.0.actor, &id).await?;
    let mut view = CompanyView::of(&c);
    view.status = view
        .status
        .with_consent_problem(consent_problem(&auth.0, &id).as_deref());
    let flash = auth
        .0
        .session
        .as_ref()
        .and_then(|s| s.data.consent.get(id.as_str()))
        .map(|o| view::shown_message(&o.message));
    let user = &auth.0.actor.user;
    Ok(IntegrationsPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        flash,
        may_connect: exogate_core::policy::can_connect(user, &id).is_ok(),
        may_disconnect: exogate_core::policy::can_manage_company(user, &id).is_ok(),
        may_set_separate_approver: exogate_core::policy::can_set_separate_approver(
            &auth.0.actor,
            &id,
        )
        .is_ok(),
        roles_url: roles_url(&st, view.tenant_id.as_deref()),
        c: view,
    })
}

#[derive(Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    csrf: String,
    /// The checkbox: present (`true`) when ticked, absent when not.
    #[serde(default)]
    separate_approver: Option<String>,
}

/// `POST /companies/{id}/settings`: the integrations page's approvals form (admins).
pub async fn company_settings(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<SettingsForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = parse_company(&id)?;
    let on = match f.separate_approver.as_deref() {
        None => false,
        Some("true" | "on") => true,
        Some(_) => return Err(HttpError::bad_request("separate_approver must be true").into()),
    };
    companies::set_separate_approver(st.app.ctx(), &auth.0.actor, &id, on).await?;
    Ok(Redirect::to(&format!("/companies/{id}/integrations")))
}

// ---------------------------------------------------------------------------------------------
// Mailbox
// ---------------------------------------------------------------------------------------------

pub struct EntryView {
    pub name_visible: String,
    pub address: String,
    pub rights: String,
    pub inherited: bool,
    pub deny: bool,
}

pub struct SectionView {
    pub key: &'static str,
    pub title: &'static str,
    pub remove_tool: &'static str,
    pub entries: Vec<EntryView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "mailbox.html")]
pub struct MailboxPage {
    nav: Option<Nav>,
    csrf: String,
    company_id: String,
    company_name: String,
    mailbox: IdentityView,
    warnings: Vec<String>,
    hidden: bool,
    sections: Vec<SectionView>,
    may_request: bool,
}

fn entry_view(e: &exogate_core::ports::PermissionEntry) -> EntryView {
    match &e.resolved {
        Some(r) => EntryView {
            name_visible: view::shown(&r.display_name),
            address: view::shown(&r.primary_address),
            rights: rights(&e.access_rights),
            inherited: e.inherited,
            deny: e.deny,
        },
        None => EntryView {
            name_visible: view::shown(&e.trustee),
            address: String::new(),
            rights: rights(&e.access_rights),
            inherited: e.inherited,
            deny: e.deny,
        },
    }
}

/// Access rights as shown: each one sanitized.
fn rights(list: &[String]) -> String {
    exogate_core::text::tenant_list(list).join(", ")
}

/// Whether Exchange's properties say the mailbox is hidden from the address lists.
pub(crate) fn hidden_from_gal(d: &exogate_core::ports::MailboxDetails) -> bool {
    d.properties.iter().any(|(k, v)| {
        k.to_ascii_lowercase().contains("hidden") && v.trim().eq_ignore_ascii_case("true")
    })
}

#[derive(Deserialize)]
pub struct MailboxQuery {
    identity: String,
}

pub async fn mailbox(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(q): Query<MailboxQuery>,
) -> PageResult<MailboxPage> {
    let id = parse_company(&id)?;
    let ident = IdentityInput::parse(&q.identity)?;
    let ctx = st.app.ctx();
    let actor = &auth.0.actor;
    let company = companies::get_company(ctx, actor, &id).await?;
    let (fa, sa, det) = tokio::join!(
        reads::view_mailbox_permissions(ctx, actor, &id, &ident),
        reads::view_send_as_permissions(ctx, actor, &id, &ident),
        reads::view_mailbox_details(ctx, actor, &id, &ident),
    );
    let (mbx, fa) = fa?;
    let (_, sa) = sa?;
    let det = det?;
    let sections = vec![
        SectionView {
            key: "full-access",
            title: "Full Access",
            remove_tool: "remove_full_access",
            entries: fa.iter().map(entry_view).collect(),
        },
        SectionView {
            key: "send-as",
            title: "Send As",
            remove_tool: "remove_send_as",
            entries: sa.iter().map(entry_view).collect(),
        },
        SectionView {
            key: "send-on-behalf",
            title: "Send on Behalf",
            remove_tool: "remove_send_on_behalf",
            entries: det.send_on_behalf.iter().map(entry_view).collect(),
        },
    ];
    Ok(MailboxPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        company_id: id.to_string(),
        company_name: view::shown(&company.name),
        warnings: view::name_warnings("mailbox", &mbx),
        mailbox: IdentityView::of(&mbx),
        hidden: hidden_from_gal(&det),
        sections,
        may_request: exogate_core::policy::can_request(&actor.user, &id).is_ok(),
    })
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    tool: String,
    mailbox: String,
    trustee: String,
    #[serde(default)]
    automapping: Option<String>,
}

pub async fn request_change(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<ChangeForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let company = parse_company(&id)?;
    let tool = ToolName::parse(&f.tool)
        .filter(|t| t.is_write())
        .ok_or_else(|| {
            HttpError::bad_request(format!("`{}` is not a write tool", view::shown(&f.tool)))
        })?;
    let input = requests::WriteInput {
        id: new_request_id(),
        company,
        tool,
        mailbox: IdentityInput::parse(&f.mailbox)?,
        trustee: IdentityInput::parse(&f.trustee)?,
        automapping: Some(f.automapping.as_deref() == Some("true")),
    };
    let req = requests::request_write(st.app.ctx(), &auth.0.actor, input).await?;
    super::request_changed(&st.app, &req);
    Ok(Redirect::to(&format!("/requests/{}", req.id)))
}

// ---------------------------------------------------------------------------------------------
// Approvals and requests
// ---------------------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    nav: Option<Nav>,
    csrf: String,
    pending: Vec<RequestView>,
    history: Vec<RequestView>,
}

pub(crate) async fn company_map(st: &WebState) -> Result<HashMap<CompanyId, Company>, CoreError> {
    Ok(st
        .app
        .store
        .list_companies()
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect())
}

pub async fn approvals(State(st): State<WebState>, auth: PageAuth) -> PageResult<ApprovalsPage> {
    let ctx = st.app.ctx();
    let actor = &auth.0.actor;
    let now = st.app.clock.now();
    let companies = company_map(&st).await?;
    let pending = requests::list_requests(
        ctx,
        actor,
        RequestFilter {
            states: Some(vec![RequestState::Pending]),
            limit: Some(200),
            ..RequestFilter::default()
        },
    )
    .await?;
    let history = requests::list_requests(
        ctx,
        actor,
        RequestFilter {
            states: Some(
                RequestState::ALL
                    .into_iter()
                    .filter(|s| *s != RequestState::Pending)
                    .collect(),
            ),
            limit: Some(100),
            ..RequestFilter::default()
        },
    )
    .await?;
    let v = |r: &exogate_core::request::ApprovalRequest| {
        RequestView::of(r, companies.get(&r.company), actor, now)
    };
    Ok(ApprovalsPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        pending: pending.iter().map(v).collect(),
        history: history.iter().map(v).collect(),
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "request.html")]
pub struct RequestPage {
    nav: Option<Nav>,
    csrf: String,
    r: RequestView,
    events: Vec<AuditView>,
}

pub async fn request_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult<RequestPage> {
    let id = parse_request(&id)?;
    let ctx = st.app.ctx();
    let actor = &auth.0.actor;
    let req = requests::get_request(ctx, actor, id).await?;
    let company = ctx
        .store
        .get_company(&req.company)
        .await
        .map_err(CoreError::from)?;
    let events = audit_ops::list(ctx, actor, None, Some(id), 200).await?;
    Ok(RequestPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        r: RequestView::of(&req, company.as_ref(), actor, st.app.clock.now()),
        events: events.iter().map(AuditView::of).collect(),
    })
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    reason: String,
    /// The digest of the action the person saw; the decision binds to it.
    #[serde(default)]
    digest: String,
}

pub async fn decide(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = parse_request(&id)?;
    let ctx = st.app.ctx();
    let actor = &auth.0.actor;
    let req = requests::get_request(ctx, actor, id).await?;
    if !super::auth::same(&req.digest, f.digest.trim()) {
        return Err(PageError(HttpError::new(
            StatusCode::CONFLICT,
            "digest_mismatch",
            "the request changed since the page was shown; reload and decide again",
        )));
    }
    let reason = Some(f.reason.as_str()).filter(|r| !r.trim().is_empty());
    match f.decision.as_str() {
        "approve" => {
            let r = requests::approve(ctx, actor, id, reason).await?;
            super::request_changed(&st.app, &r);
            st.app.worker_wake.notify_one();
        }
        "reject" => {
            let r = requests::reject(ctx, actor, id, reason).await?;
            super::request_changed(&st.app, &r);
        }
        _ => return Err(HttpError::bad_request("decision must be approve or reject").into()),
    }
    Ok(Redirect::to(&format!("/requests/{id}")))
}

pub async fn cancel(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = parse_request(&id)?;
    let r = requests::cancel(st.app.ctx(), &auth.0.actor, id).await?;
    super::request_changed(&st.app, &r);
    Ok(Redirect::to(&format!("/requests/{id}")))
}

pub async fn revert(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = parse_request(&id)?;
    let new = requests::revert(st.app.ctx(), &auth.0.actor, id, new_request_id()).await?;
    super::request_changed(&st.app, &new);
    Ok(Redirect::to(&format!("/requests/{}", new.id)))
}

// ---------------------------------------------------------------------------------------------
// Audit
// ---------------------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
pub struct AuditPage {
    nav: Option<Nav>,
    /// Managers and above may verify the chain (the API's rule).
    can_verify: bool,
    /// Whether a verification was asked for with `verify=1` (never run on a plain view), and
    /// its result.
    chain_checked: bool,
    chain_ok: bool,
    chain_text: String,
    f_company: String,
    f_actor: String,
    f_kind: String,
    f_from: String,
    f_to: String,
    filter_error: Option<String>,
    events: Vec<AuditView>,
}

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    pub company: String,
    #[serde(default)]
    pub actor: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, alias = "since")]
    pub from: String,
    #[serde(default, alias = "until")]
    pub to: String,
    #[serde(default)]
    pub request: String,
    #[serde(default)]
    pub limit: Option<u32>,
    /// Keyset paging: only events with a smaller `seq` (the `next` of the previous page).
    #[serde(default)]
    pub before: Option<i64>,
    /// `1`: verify the whole chain on this view (managers and above).
    #[serde(default)]
    pub verify: String,
}

/// Lists audit events for the filters (newest first) through the core operation: the filters
/// run in the store before the limit. Also answers the `before` cursor of the next page.
pub(crate) async fn filtered_audit(
    st: &WebState,
    auth: &Auth,
    q: &AuditQuery,
) -> Result<(Vec<AuditView>, Option<i64>), CoreError> {
    use exogate_core::audit::{AuditFilter, DayEnd, parse_time_bound};
    let ctx = st.app.ctx();
    let company = match q.company.trim() {
        "" => None,
        c => Some(CompanyId::parse(c)?),
    };
    let request = match q.request.trim() {
        "" => None,
        r => Some(RequestId::parse(r)?),
    };
    let kind = q.kind.trim();
    if !kind.is_empty() && AuditKind::parse(kind).is_none() {
        return Err(CoreError::invalid(
            "kind",
            format!("`{}` is not an audit event kind", view::shown(kind)),
        ));
    }
    let actor = q.actor.trim();
    let filter = AuditFilter {
        company,
        request,
        kind: (!kind.is_empty()).then(|| kind.to_owned()),
        actor: (!actor.is_empty()).then(|| actor.to_owned()),
        since: parse_time_bound("from", &q.from, DayEnd::Start)?,
        until: parse_time_bound("to", &q.to, DayEnd::End)?,
        before_seq: q.before,
        limit: q.limit.unwrap_or(1000),
    };
    let page = audit_ops::search(ctx, &auth.actor, filter).await?;
    Ok((page.events.iter().map(AuditView::of).collect(), page.next))
}

/// The chain check as (intact, text).
pub(crate) async fn chain_check(
    st: &WebState,
) -> Result<(bool, String, serde_json::Value), CoreError> {
    Ok(match audit_ops::verify(st.app.ctx()).await? {
        audit_ops::Verification::Intact(r) => (
            true,
            format!(
                "Audit chain intact: {} events verified, head #{}.",
                r.events, r.last_seq
            ),
            serde_json::json!({ "intact": true, "events": r.events, "last_seq": r.last_seq, "last_hash": r.last_hash }),
        ),
        audit_ops::Verification::Broken(b) => (
            false,
            format!("AUDIT CHAIN BROKEN: {b}"),
            serde_json::json!({ "intact": false, "break": b.to_string() }),
        ),
    })
}

pub async fn audit(
    State(st): State<WebState>,
    auth: PageAuth,
    Query(q): Query<AuditQuery>,
) -> PageResult<AuditPage> {
    let (events, filter_error) = match filtered_audit(&st, &auth.0, &q).await {
        Ok((e, _)) => (e, None),
        Err(e @ (CoreError::Invalid { .. } | CoreError::Forbidden { .. })) => {
            (Vec::new(), Some(e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    // The chain status follows the API's rule (managers and above), and the whole chain is
    // walked only when someone asks for it.
    let can_verify = auth.0.actor.user.role >= exogate_core::Role::Manager;
    let chain_checked = can_verify && q.verify == "1";
    let (chain_ok, chain_text) = if chain_checked {
        let (ok, text, _) = chain_check(&st).await?;
        (ok, text)
    } else {
        (false, String::new())
    };
    Ok(AuditPage {
        nav: auth.nav(),
        can_verify,
        chain_checked,
        chain_ok,
        chain_text,
        f_company: q.company,
        f_actor: q.actor,
        f_kind: q.kind,
        f_from: q.from,
        f_to: q.to,
        filter_error,
        events,
    })
}
