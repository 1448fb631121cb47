//! The companies list and a company's integrations page (connection, Exchange Admin status,
//! the separate-approver setting).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use exogate_core::ops::companies;
use serde::Deserialize;

use crate::web::WebState;
use crate::web::common::consent_problem;
use crate::web::error::{HttpError, PageResult};
use crate::web::layout::{Nav, PageAuth, parse_company};
use crate::web::view::{self, CompanyView};

#[derive(Template, WebTemplate)]
#[template(path = "companies.html")]
pub struct CompaniesPage {
    nav: Option<Nav>,
    companies: Vec<CompanyView>,
    // (cli-help) When the page was made, for relative times.
    now: exogate_core::Timestamp,
}

pub async fn companies(State(st): State<WebState>, auth: PageAuth) -> PageResult<CompaniesPage> {
    let list = companies::list_companies(st.app.ctx(), &auth.0.actor).await?;
    Ok(CompaniesPage {
        nav: auth.nav(),
        companies: list.iter().map(CompanyView::of).collect(),
        now: st.app.clock.now(),
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
    // (cli-help) When the page was made, for relative times.
    now: exogate_core::Timestamp,
    // (timed-grants)
    /// The company's rule for grant ends: required, and the cap ("7days", empty for none).
    grant_end_required: bool,
    grant_max_duration: String,
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
    // (timed-grants)
    let ends = exogate_core::ops::timed::grant_end_policy(st.app.ctx(), &auth.0.actor, &id).await?;
    Ok(IntegrationsPage {
        grant_end_required: ends.end_required,
        grant_max_duration: ends
            .max_secs
            .map(exogate_core::timed::format_secs)
            .unwrap_or_default(),
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
        now: st.app.clock.now(),
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
