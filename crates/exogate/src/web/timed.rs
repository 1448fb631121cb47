//! (timed-grants) A company's rule for grant ends over the JSON API:
//! `GET /api/v1/companies/{id}/grant-ends` (anyone who may see the company) and
//! `PUT /api/v1/companies/{id}/grant-ends` (admin, in person: a bearer token gets
//! `decision_via_mcp`), body `{"end_required": bool, "max_duration": "7d" | null}`.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use exogate_core::ops::timed as ops_timed;
use exogate_core::timed::{self, GrantEndPolicy};
use serde::{Deserialize, Serialize};

use super::WebState;
use super::api::{ApiAuth, Body, company_named};
use super::error::{ApiResult, HttpError, PageResult};
use super::layout::{PageAuth, parse_company};

pub fn api_routes() -> Router<WebState> {
    Router::new().route(
        "/api/v1/companies/{id}/grant-ends",
        get(get_rule).put(put_rule),
    )
}

/// The company's rule for grant ends.
#[derive(Serialize)]
pub struct GrantEndsView {
    pub company: String,
    /// Every grant must carry an end (`duration` or `until`).
    pub end_required: bool,
    /// The longest a grant may last ("7days"), or null for no cap below exogate's own year.
    pub max_duration: Option<String>,
    pub max_secs: Option<i64>,
}

impl GrantEndsView {
    fn of(company: &exogate_core::CompanyId, p: &GrantEndPolicy) -> Self {
        Self {
            company: company.to_string(),
            end_required: p.end_required,
            max_duration: p.max_secs.map(timed::format_secs),
            max_secs: p.max_secs,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantEndsBody {
    end_required: bool,
    #[serde(default)]
    max_duration: Option<String>,
}

#[derive(Deserialize)]
pub struct GrantEndsForm {
    #[serde(default)]
    csrf: String,
    /// The checkbox: present (`true`) when ticked, absent when not.
    #[serde(default)]
    end_required: Option<String>,
    #[serde(default)]
    max_duration: Option<String>,
}

/// `POST /companies/{id}/grant-ends`: the integrations page's form for the rule (admins).
pub async fn page_set_rule(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<GrantEndsForm>,
) -> PageResult<axum::response::Redirect> {
    auth.check(&f.csrf)?;
    let id = parse_company(&id)?;
    let end_required = match f.end_required.as_deref() {
        None => false,
        Some("true" | "on") => true,
        Some(_) => return Err(HttpError::bad_request("end_required must be true").into()),
    };
    let max_secs = match f.max_duration.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(timed::parse_duration_secs("max_duration", d)?),
    };
    let rule = GrantEndPolicy {
        end_required,
        max_secs,
    };
    ops_timed::set_grant_end_policy(st.app.ctx(), &auth.0.actor, &id, rule).await?;
    Ok(axum::response::Redirect::to(&format!(
        "/companies/{id}/integrations"
    )))
}

async fn get_rule(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<GrantEndsView>> {
    let actor = auth.0.api_actor();
    let id = company_named(&st, &actor, &id).await?;
    let p = ops_timed::grant_end_policy(st.app.ctx(), &actor, &id).await?;
    Ok(Json(GrantEndsView::of(&id, &p)))
}

async fn put_rule(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Body(b): Body<GrantEndsBody>,
) -> ApiResult<Json<GrantEndsView>> {
    let actor = auth.change(&headers)?;
    let id = company_named(&st, &actor, &id).await?;
    let max_secs = match b.max_duration.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(d) => Some(timed::parse_duration_secs("max_duration", d)?),
    };
    let rule = GrantEndPolicy {
        end_required: b.end_required,
        max_secs,
    };
    let p = ops_timed::set_grant_end_policy(st.app.ctx(), &actor, &id, rule).await?;
    Ok(Json(GrantEndsView::of(&id, &p)))
}
