//! Approvals and a request: the lists, one request with its audit trail, and the decide,
//! cancel and revert forms.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use exogate_core::CoreError;
use exogate_core::ops::{audit as audit_ops, requests};
use exogate_core::request::{ApprovalRequest, RequestFilter, RequestState};
use serde::Deserialize;

use crate::web::WebState;
use crate::web::common::{company_map, new_request_id};
use crate::web::error::{HttpError, PageError, PageResult};
use crate::web::layout::{CsrfForm, Nav, PageAuth, parse_request};
use crate::web::view::{AuditView, RequestView};

#[derive(Template, WebTemplate)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    nav: Option<Nav>,
    csrf: String,
    pending: Vec<RequestView>,
    history: Vec<RequestView>,
    // (cli-help) When the page was made, for relative times.
    now: exogate_core::Timestamp,
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
        now,
    })
}

#[derive(Template, WebTemplate)]
#[template(path = "request.html")]
pub struct RequestPage {
    nav: Option<Nav>,
    csrf: String,
    r: RequestView,
    events: Vec<AuditView>,
    // (cli-help) When the page was made, for relative times.
    now: exogate_core::Timestamp,
}

pub async fn request_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult<RequestPage> {
    let ctx = st.app.ctx();
    let actor = &auth.0.actor;
    // A whole id, or a unique prefix of at least 8 characters among the caller's companies.
    let id = requests::resolve_id(ctx, actor, &id).await?;
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
        now: st.app.clock.now(),
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
    requests::check_reviewed(&req, &f.digest).map_err(|_| {
        PageError(HttpError::new(
            StatusCode::CONFLICT,
            "digest_mismatch",
            "the request changed since the page was shown; reload and decide again",
        ))
    })?;
    let reason = Some(f.reason.as_str()).filter(|r| !r.trim().is_empty());
    let approve = match f.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return Err(HttpError::bad_request("decision must be approve or reject").into()),
    };
    let r = if approve {
        requests::approve(ctx, actor, id, reason).await?
    } else {
        requests::reject(ctx, actor, id, reason).await?
    };
    let to = show_changed(&st, &r);
    if approve {
        st.app.worker_wake.notify_one();
    }
    Ok(to)
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
    Ok(show_changed(&st, &r))
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
    Ok(show_changed(&st, &new))
}

/// Tells live views that `r` changed, and sends the browser to its page.
pub(super) fn show_changed(st: &WebState, r: &ApprovalRequest) -> Redirect {
    crate::web::request_changed(&st.app, r);
    Redirect::to(&format!("/requests/{}", r.id))
}
