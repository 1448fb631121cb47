//! Connecting a company, moving it to another tenant, and the "Authorize" step (`docs/DOMAIN.md#exchange-admin-status`), through
//! Microsoft's admin consent. The rules live in `exogate_core::ops::consent`; this module parses
//! the forms and the redirect, calls the core and renders.
//!
//! - `POST /companies/{id}/connect`: v1 admin consent for the connect app (first connect, or
//!   reconnect of the company's own tenant).
//! - `POST /companies/{id}/move`: v1 admin consent in the tenant a manager typed (moves the
//!   company there).
//! - `POST /companies/{id}/authorize`: v2 admin consent with the Exchange scope in the company's
//!   tenant, opened by the page in a NEW tab (`target=_blank`).
//! - `GET /consent/callback`: Microsoft's redirect back.
//!
//! Each consent gets a random 256-bit `state`, stored only as its SHA-256 with the company, the
//! user, the session and the tenant the consent must land in, valid 10 minutes and single use.
//! A state of another browser session is refused without being used up. Every refusal is
//! audited (`consent.refused`) and changes nothing else.

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use exogate_core::ops::companies;
use exogate_core::ops::consent::{
    self as core_consent, CallbackAnswer, Completion, ConnectKind, ConsentRequest, Refusal,
};
use exogate_core::{CompanyId, ConsentPurpose, CoreError, TenantId};
use exogate_exchange::consent::{ConsentError, parse_consent_callback};
use serde::Deserialize;

use super::WebState;
use super::auth::{ConsentOutcome, Session, now_ms, random_token};
use super::error::PageResult;
use super::layout::{CsrfForm, Nav, PageAuth};
use super::view::StatusView;

/// How long a consent `state` is valid.
pub const CONSENT_STATE_TTL_SECS: i64 = 10 * 60;

/// The callback path registered with Microsoft (the redirect URI is `public_url` + this).
pub const CALLBACK_PATH: &str = "/consent/callback";

#[derive(Deserialize)]
pub struct ConnectForm {
    #[serde(default)]
    csrf: String,
    /// The tenant id (GUID) for the consent URL's authority: optional for a first connect,
    /// required for a move.
    #[serde(default)]
    tenant: String,
}

fn typed_tenant(text: &str) -> Result<Option<TenantId>, CoreError> {
    match text.trim() {
        "" => Ok(None),
        t => Ok(Some(TenantId::parse(t)?)),
    }
}

/// Issues a state through the core and returns the consent URL to send the browser to.
async fn start(
    st: &WebState,
    auth: &PageAuth,
    id: &str,
    purpose: ConsentPurpose,
    tenant: Option<TenantId>,
) -> PageResult<Redirect> {
    let id = CompanyId::parse(id)?;
    let value = random_token(32);
    let session_id = auth.0.session.as_ref().map(|s| s.id_hash.as_str());
    let req = ConsentRequest {
        purpose,
        tenant,
        session_id,
        state: &value,
        ttl_secs: CONSENT_STATE_TTL_SECS,
    };
    let cs = core_consent::begin(st.app.ctx(), &auth.0.actor, &id, &req).await?;
    let redirect = redirect_uri(st);
    let expected = cs.expected_tenant.map(|t| t.as_uuid());
    let url = match (purpose, expected) {
        (ConsentPurpose::Authorize, Some(t)) => {
            st.app.m365.exchange_consent_url(t, &redirect, &value)
        }
        _ => st.app.m365.connect_consent_url(expected, &redirect, &value),
    };
    Ok(Redirect::to(url.as_str()))
}

fn redirect_uri(st: &WebState) -> String {
    st.app.url(CALLBACK_PATH)
}

/// `POST /companies/{id}/connect`: starts connecting Microsoft 365, or reconnecting the
/// company's own tenant (technician+).
pub async fn connect(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<ConnectForm>,
) -> PageResult<Redirect> {
    start_typed(&st, &auth, &id, &f, ConsentPurpose::Connect).await
}

/// `POST /companies/{id}/move`: starts moving a connected company to the tenant typed in the
/// form (manager+); the consent URL's authority is that tenant.
pub async fn move_tenant(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<ConnectForm>,
) -> PageResult<Redirect> {
    start_typed(&st, &auth, &id, &f, ConsentPurpose::Move).await
}

/// The connect and move forms: the CSRF token, then the typed tenant, then [`start`].
async fn start_typed(
    st: &WebState,
    auth: &PageAuth,
    id: &str,
    f: &ConnectForm,
    purpose: ConsentPurpose,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf))?;
    let tenant = typed_tenant(&f.tenant)?;
    start(st, auth, id, purpose, tenant).await
}

/// `POST /companies/{id}/authorize`: Step 1 of the setup (opened in a new tab by the page).
pub async fn authorize(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf))?;
    start(&st, &auth, &id, ConsentPurpose::Authorize, None).await
}

/// `POST /companies/{id}/disconnect` (manager+).
pub async fn disconnect(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf))?;
    let id = CompanyId::parse(&id)?;
    let before = companies::get_company(st.app.ctx(), &auth.0.actor, &id).await?;
    companies::disconnect(st.app.ctx(), &auth.0.actor, &id).await?;
    if let Some(c) = before.connection {
        st.app.m365.forget_tenant(c.tenant_id.as_uuid());
    }
    Ok(Redirect::to(&format!("/companies/{id}/integrations")))
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "consent_done.html")]
pub struct ConsentDonePage {
    nav: Option<Nav>,
    company_id: String,
    outcome: String,
    title: String,
    message: String,
    status: Option<StatusView>,
}

/// What the page shows as the outcome (`data-outcome`).
fn outcome(c: &Completion) -> &'static str {
    match c {
        Completion::Connected { .. } => "connected",
        Completion::Authorized { .. } => "authorized",
        Completion::Refused { reason, .. } => match reason {
            Refusal::WrongTenant | Refusal::OtherDirectory => "wrong_tenant",
            Refusal::TenantLinked => "tenant_linked",
            Refusal::Declined => "declined",
            Refusal::StateNotAccepted | Refusal::UserInactive | Refusal::NotAllowed => "refused",
            Refusal::ConsentFailed | Refusal::ConnectionChanged | Refusal::VerificationFailed => {
                "failed"
            }
        },
    }
}

fn title(c: &Completion) -> &'static str {
    match c {
        Completion::Connected {
            kind: ConnectKind::Moved { .. },
            ..
        } => "Company moved to the new tenant",
        Completion::Connected { .. } => "Microsoft 365 connected",
        Completion::Authorized { .. } => "Consent received",
        Completion::Refused { reason, .. } => match reason {
            Refusal::StateNotAccepted | Refusal::UserInactive | Refusal::NotAllowed => {
                "This consent answer cannot be used"
            }
            Refusal::WrongTenant | Refusal::OtherDirectory => "Consent went to another tenant",
            Refusal::TenantLinked => "This tenant belongs to another company",
            Refusal::Declined => "Consent was declined",
            _ => "Consent did not complete",
        },
    }
}

fn message(c: &Completion) -> String {
    let badge = |s: &Result<exogate_core::StatusRecord, CoreError>| match s {
        Ok(r) => r.shown_state().badge().to_owned(),
        Err(e) => format!("check failed: {e}"),
    };
    match c {
        Completion::Connected {
            company,
            kind,
            status,
        } => {
            let (name, tenant) = company
                .connection
                .as_ref()
                .map(|k| (k.display_name.clone(), k.tenant_id.to_string()))
                .unwrap_or_default();
            let moved = match kind {
                ConnectKind::Moved { from } => format!(" (moved from tenant {from})"),
                _ => String::new(),
            };
            format!(
                "Connected to {name} ({tenant}){moved}. Exchange Admin: {}.",
                badge(status)
            )
        }
        Completion::Authorized { status, .. } => match status {
            Ok(rec) => format!(
                "Consent received from the customer's tenant. Exchange Admin now reads \"{}\". {}",
                rec.shown_state().badge(),
                rec.shown_state().fix()
            ),
            Err(e) => format!("Consent received; the status check failed: {e}"),
        },
        Completion::Refused { message, .. } => message.clone(),
    }
}

/// What Microsoft's redirect said, for the core.
fn answer(query: &str, state: &str) -> CallbackAnswer {
    match parse_consent_callback(query, state) {
        Ok(g) => CallbackAnswer::Granted {
            tenant: TenantId::from_uuid(g.tenant),
        },
        Err(ConsentError::OtherDirectory { .. }) => CallbackAnswer::OtherDirectory,
        Err(ConsentError::Declined { .. }) => CallbackAnswer::Declined,
        Err(e) => CallbackAnswer::Failed {
            detail: e.to_string(),
        },
    }
}

/// `GET /consent/callback`: Microsoft's redirect after admin consent.
pub async fn callback(
    State(st): State<WebState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let state_value = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut session = Session::from_headers(&st, &headers).await;
    let done = match core_consent::complete_with(
        st.app.ctx(),
        session.as_ref().map(|s| s.id_hash.as_str()),
        &state_value,
        answer(&query, &state_value),
        false,
    )
    .await
    {
        Ok(d) => d,
        Err(e) => return super::error::PageError::from(e).into_response(),
    };
    if done.state.is_none() {
        // An unknown state: anyone can send one, so its audit rows come from a budget.
        let plan = st.unknown_consents.plan(st.app.clock.now());
        let ctx = st.app.ctx();
        if let Some(u) = plan.summary {
            let _ = core_consent::record_unrecorded_refusals(ctx, u.count, u.first, u.last).await;
        }
        if plan.write {
            let _ = core_consent::record_unknown_refusal(ctx, session.is_some()).await;
        }
    }
    let company_id = done.state.as_ref().map(|s| s.company.clone());
    let outcome = outcome(&done.completion);
    // The message may quote the tenant's display name: shown through the core's sanitizer.
    let message = super::view::shown_message(&message(&done.completion));
    if let Completion::Connected {
        status: Ok(rec), ..
    }
    | Completion::Authorized {
        status: Ok(rec), ..
    } = &done.completion
        && let Some(c) = &company_id
    {
        super::status_checked(&st.app, c, rec.state.as_str());
    }
    // The page shows the company's status to the person whose session this is, when that is
    // the user the consent was issued to.
    let actor = done.actor.as_ref().filter(|a| {
        session
            .as_ref()
            .is_some_and(|s| s.data.user == a.user.id.to_string())
    });
    let nav = actor.zip(session.as_ref()).map(|(a, s)| Nav {
        user: a.user.name.to_string(),
        role: a.user.role.as_str().into(),
        csrf: s.data.csrf.clone(),
    });
    let status = match (actor, &company_id) {
        (Some(a), Some(c)) => {
            companies::get_company(st.app.ctx(), a, c)
                .await
                .ok()
                .map(|company| {
                    let problem = (outcome == "wrong_tenant").then_some("wrong_tenant");
                    StatusView::of(&company).with_consent_problem(problem)
                })
        }
        _ => None,
    };
    if let (Some(s), Some(c), Some(_)) = (session.as_mut(), &company_id, actor) {
        s.data.consent.insert(
            c.to_string(),
            ConsentOutcome {
                outcome: outcome.into(),
                message: message.clone(),
                at: now_ms(&st),
            },
        );
        let _ = s.save(&st).await;
    }
    let code = match done.completion {
        Completion::Connected { .. } | Completion::Authorized { .. } => StatusCode::OK,
        Completion::Refused { .. } => StatusCode::BAD_REQUEST,
    };
    (
        code,
        ConsentDonePage {
            nav,
            company_id: company_id.map(|c| c.to_string()).unwrap_or_default(),
            outcome: outcome.into(),
            title: title(&done.completion).into(),
            message,
            status,
        },
    )
        .into_response()
}
