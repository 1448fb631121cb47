//! Drift findings (rights changed outside exogate): the page `/drift` (every company the
//! viewer may see, or one with `/companies/{id}/drift`) with acknowledge and revert forms, and
//! the API `GET /api/v1/drift?company=…`, `POST /api/v1/drift/{id}/acknowledge` (`{"reason"}`)
//! and `POST /api/v1/drift/{id}/revert`. The rules are the core's (`exogate_core::ops::drift`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use exogate_core::drift::DriftId;
use exogate_core::ops::drift;
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::{ApiAuth, OptBody, company_named, created_or_existing, request_json};
use super::common::new_request_id;
use super::error::{ApiResult, PageError, PageResult};
use super::layout::{CsrfForm, Nav, PageAuth, parse_company};
use crate::views::DriftFindingView;

pub fn api_routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/drift", get(api_list))
        .route("/api/v1/drift/{id}/acknowledge", post(api_acknowledge))
        .route("/api/v1/drift/{id}/revert", post(api_revert))
}

fn finding_id(s: &str) -> Result<DriftId, exogate_core::CoreError> {
    DriftId::parse(s)
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    company: Option<String>,
}

/// `GET /api/v1/drift[?company=ID or name]`: the findings of every company the caller may
/// see, or of one, newest first.
async fn api_list(
    State(st): State<WebState>,
    auth: ApiAuth,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let actor = auth.0.api_actor();
    let company = match q.company.as_deref().filter(|c| !c.trim().is_empty()) {
        Some(c) => Some(company_named(&st, &actor, c).await?),
        None => None,
    };
    let list = drift::list(st.app.ctx(), &actor, company.as_ref()).await?;
    let findings: Vec<DriftFindingView> = list.iter().map(DriftFindingView::of).collect();
    Ok(Json(json!({ "findings": findings })))
}

#[derive(Deserialize, Default)]
pub struct AckBody {
    #[serde(default)]
    reason: String,
}

/// `POST /api/v1/drift/{id}/acknowledge` with `{"reason": "…"}` (required).
async fn api_acknowledge(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptBody(b): OptBody<AckBody>,
) -> ApiResult<Json<DriftFindingView>> {
    let actor = auth.change(&headers)?;
    let b = b.unwrap_or_default();
    let f = drift::acknowledge(st.app.ctx(), &actor, finding_id(&id)?, &b.reason).await?;
    Ok(Json(DriftFindingView::of(&f)))
}

/// `POST /api/v1/drift/{id}/revert`: a pending request with the inverse action (201).
async fn api_revert(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let actor = auth.change(&headers)?;
    let asked = new_request_id();
    let (f, r) = drift::revert(st.app.ctx(), &actor, finding_id(&id)?, asked).await?;
    super::request_changed(&st.app, &r);
    let v = json!({
        "finding": DriftFindingView::of(&f),
        "request": request_json(&st, &actor, &r).await?,
    });
    Ok((created_or_existing(asked, &r), Json(v)).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "drift.html")]
pub struct DriftPage {
    nav: Option<Nav>,
    csrf: String,
    /// The one company shown, if any.
    company: Option<String>,
    findings: Vec<DriftFindingView>,
}

async fn page_for(
    st: &WebState,
    auth: &PageAuth,
    company: Option<exogate_core::CompanyId>,
) -> PageResult<DriftPage> {
    let list = drift::list(st.app.ctx(), &auth.0.actor, company.as_ref()).await?;
    Ok(DriftPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        company: company.map(|c| c.to_string()),
        findings: list.iter().map(DriftFindingView::of).collect(),
    })
}

/// `GET /drift`: every company's findings.
pub async fn page(State(st): State<WebState>, auth: PageAuth) -> PageResult<DriftPage> {
    page_for(&st, &auth, None).await
}

/// `GET /companies/{id}/drift`: one company's findings.
pub async fn company_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
) -> PageResult<DriftPage> {
    let c = parse_company(&id)?;
    page_for(&st, &auth, Some(c)).await
}

#[derive(Deserialize)]
pub struct AckForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /drift/{id}/acknowledge` (form: `csrf`, `reason`).
pub async fn page_acknowledge(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<AckForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = finding_id(&id).map_err(PageError::from)?;
    drift::acknowledge(st.app.ctx(), &auth.0.actor, id, &f.reason).await?;
    Ok(Redirect::to("/drift"))
}

/// `POST /drift/{id}/revert` (form: `csrf`): to the new request's page.
pub async fn page_revert(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = finding_id(&id).map_err(PageError::from)?;
    let (_, r) = drift::revert(st.app.ctx(), &auth.0.actor, id, new_request_id()).await?;
    super::request_changed(&st.app, &r);
    Ok(Redirect::to(&format!("/requests/{}", r.id)))
}
