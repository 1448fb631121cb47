//! Connecting a company and the seed's "Authorize" step, through Microsoft's admin consent.
//!
//! - `POST /companies/{id}/connect`: v1 admin consent for the connect app (connect / reconnect).
//! - `POST /companies/{id}/authorize`: v2 admin consent with the Exchange scope, opened by the
//!   page in a NEW tab (`target=_blank`).
//! - `GET /consent/callback`: Microsoft's redirect back.
//!
//! Each consent gets a random 256-bit `state`, stored only as its SHA-256 with the company, the
//! user, the session and the expected tenant, valid 10 minutes and consumed atomically at the
//! callback (`Store::consume_consent_state`), so a replay, an expired state or a state from
//! another session finds nothing and changes nothing. An `error` (even with
//! `admin_consent=True`) changes nothing; AADSTS50020 or a tenant other than the expected one is
//! reported as `wrong_tenant`. A new connection is proven with a token for the tenant and Graph's
//! `organization` before it is stored (reliability §3).

use axum::Form;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use exogate_core::ops::companies::{self, ConnectInput};
use exogate_core::{Actor, Channel, CompanyId, ConsentPurpose, ConsentState, CoreError, TenantId};
use exogate_exchange::consent::{ConnectionError, ConsentError, parse_consent_callback};
use serde::Deserialize;

use super::WebState;
use super::auth::{ConsentOutcome, Session, now_ms, random_token, sha256_hex};
use super::error::{PageError, PageResult};
use super::pages::{Nav, PageAuth};
use super::view::StatusView;

/// How long a consent `state` is valid.
pub const CONSENT_STATE_TTL_SECS: i64 = 10 * 60;

/// The callback path registered with Microsoft (the redirect URI is `public_url` + this).
pub const CALLBACK_PATH: &str = "/consent/callback";

#[derive(Deserialize)]
pub struct ConnectForm {
    #[serde(default)]
    csrf: String,
    /// Optional expected tenant id (GUID) for the consent URL's authority.
    #[serde(default)]
    tenant: String,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Issues and stores a new consent state; returns the value to send to Microsoft.
async fn issue_state(
    st: &WebState,
    auth: &PageAuth,
    company: &CompanyId,
    purpose: ConsentPurpose,
    expected_tenant: Option<TenantId>,
) -> Result<String, CoreError> {
    let value = random_token(32);
    let now = st.app.clock.now();
    let cs = ConsentState {
        state_hash: sha256_hex(&value),
        company: company.clone(),
        user: auth.0.actor.user.id,
        session_id: auth.0.session.as_ref().map(|s| s.id_hash.clone()),
        purpose,
        expected_tenant,
        created_at: now,
        expires_at: now.plus_secs(CONSENT_STATE_TTL_SECS),
        used_at: None,
    };
    st.app.store.insert_consent_state(&cs).await?;
    Ok(value)
}

fn redirect_uri(st: &WebState) -> String {
    st.app.url(CALLBACK_PATH)
}

/// `POST /companies/{id}/connect`: starts (re)connecting Microsoft 365.
pub async fn connect(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<ConnectForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf))?;
    let id = CompanyId::parse(&id)?;
    let actor = &auth.0.actor;
    exogate_core::policy::can_connect(&actor.user, &id).map_err(CoreError::forbidden)?;
    let _ = companies::get_company(st.app.ctx(), actor, &id).await?;
    let expected = match f.tenant.trim() {
        "" => None,
        t => Some(TenantId::parse(t)?),
    };
    let state = issue_state(&st, &auth, &id, ConsentPurpose::Connect, expected).await?;
    let url =
        st.app
            .m365
            .connect_consent_url(expected.map(|t| t.as_uuid()), &redirect_uri(&st), &state);
    Ok(Redirect::to(url.as_str()))
}

/// `POST /companies/{id}/authorize`: the seed's Step 1 (opened in a new tab by the page).
pub async fn authorize(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf))?;
    let id = CompanyId::parse(&id)?;
    let actor = &auth.0.actor;
    exogate_core::policy::can_connect(&actor.user, &id).map_err(CoreError::forbidden)?;
    let company = companies::get_company(st.app.ctx(), actor, &id).await?;
    let tenant = company
        .connection
        .as_ref()
        .ok_or_else(|| CoreError::conflict(exogate_core::ConflictReason::NotConnected))?
        .tenant_id;
    let state = issue_state(&st, &auth, &id, ConsentPurpose::Authorize, Some(tenant)).await?;
    let url = st
        .app
        .m365
        .exchange_consent_url(tenant.as_uuid(), &redirect_uri(&st), &state);
    Ok(Redirect::to(url.as_str()))
}

/// `POST /companies/{id}/disconnect` (manager+).
pub async fn disconnect(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
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

/// What the callback concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// A new or renewed connection was stored.
    Connected,
    /// Exchange app consent landed in the expected tenant; the status was re-checked.
    Authorized,
    /// Consent went to another tenant (AADSTS50020 or a tenant mismatch).
    WrongTenant,
    /// The admin declined.
    Declined,
    /// Any other failure; nothing changed.
    Failed,
    /// The state is unknown, used, expired or belongs to another session: nothing done.
    Refused,
}

impl CallbackOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            CallbackOutcome::Connected => "connected",
            CallbackOutcome::Authorized => "authorized",
            CallbackOutcome::WrongTenant => "wrong_tenant",
            CallbackOutcome::Declined => "declined",
            CallbackOutcome::Failed => "failed",
            CallbackOutcome::Refused => "refused",
        }
    }
}

fn refused(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        ConsentDonePage {
            nav: None,
            company_id: String::new(),
            outcome: CallbackOutcome::Refused.as_str().into(),
            title: "This consent answer cannot be used".into(),
            message: message.into(),
            status: None,
        },
    )
        .into_response()
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
    if state_value.is_empty() || state_value.len() > 200 {
        return refused(
            "The answer from Microsoft carries no valid `state`. Start again from the company's integrations page.",
        );
    }
    let now = st.app.clock.now();
    // Atomic single use: one caller gets the row, replays (also concurrent ones) get None.
    let cs = match st
        .app
        .store
        .consume_consent_state(&sha256_hex(&state_value), now)
        .await
    {
        Ok(Some(cs)) => cs,
        Ok(None) => {
            return refused(
                "This consent link is unknown, was already used, or is older than 10 minutes. Nothing was changed. Start again from the company's integrations page.",
            );
        }
        Err(e) => return PageError::from(CoreError::from(e)).into_response(),
    };
    // Bound to the browser session and the user that started it.
    let Some(mut session) = Session::from_headers(&st, &headers).await else {
        return refused(
            "This consent was started in another browser session (or you signed out). Nothing was changed. Sign in and start again.",
        );
    };
    if cs.session_id.as_deref() != Some(session.id_hash.as_str())
        || session.data.user != cs.user.to_string()
    {
        return refused(
            "This consent was started in another browser session. Nothing was changed. Start again from the company's integrations page.",
        );
    }
    let user = match st.app.store.get_user(cs.user).await {
        Ok(Some(u)) if !u.disabled => u,
        _ => {
            return refused(
                "The user who started this consent is no longer active. Nothing was changed.",
            );
        }
    };
    let actor = Actor {
        user,
        channel: Channel::Web,
    };
    let nav = Some(Nav {
        user: actor.user.name.to_string(),
        role: actor.user.role.as_str().into(),
        csrf: session.data.csrf.clone(),
    });
    let (outcome, message) = process(&st, &actor, &cs, &query, &state_value).await;
    // The message may quote the tenant's display name: shown through the core's sanitizer.
    let message = super::view::shown_message(&message);
    let company = companies::get_company(st.app.ctx(), &actor, &cs.company)
        .await
        .ok();
    let status = company.as_ref().map(|c| {
        let problem = (outcome == CallbackOutcome::WrongTenant).then_some("wrong_tenant");
        StatusView::of(c).with_consent_problem(problem)
    });
    session.data.consent.insert(
        cs.company.to_string(),
        ConsentOutcome {
            outcome: outcome.as_str().into(),
            message: message.clone(),
            at: now_ms(&st),
        },
    );
    let _ = session.save(&st).await;
    let title = match outcome {
        CallbackOutcome::Connected => "Microsoft 365 connected",
        CallbackOutcome::Authorized => "Consent received",
        CallbackOutcome::WrongTenant => "Consent went to another tenant",
        CallbackOutcome::Declined => "Consent was declined",
        CallbackOutcome::Failed | CallbackOutcome::Refused => "Consent did not complete",
    };
    let code = match outcome {
        CallbackOutcome::Connected | CallbackOutcome::Authorized => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    (
        code,
        ConsentDonePage {
            nav,
            company_id: cs.company.to_string(),
            outcome: outcome.as_str().into(),
            title: title.into(),
            message,
            status,
        },
    )
        .into_response()
}

async fn process(
    st: &WebState,
    actor: &Actor,
    cs: &ConsentState,
    query: &str,
    state_value: &str,
) -> (CallbackOutcome, String) {
    let ctx = st.app.ctx();
    let company = match companies::get_company(ctx, actor, &cs.company).await {
        Ok(c) => c,
        Err(e) => return (CallbackOutcome::Failed, e.to_string()),
    };
    let grant = match parse_consent_callback(query, state_value) {
        Ok(g) => g,
        Err(ConsentError::OtherDirectory { .. }) => {
            return (
                CallbackOutcome::WrongTenant,
                "The account that signed in belongs to another directory (AADSTS50020). Sign in as a Global Administrator of the customer's tenant, not your own. Nothing was changed.".into(),
            );
        }
        Err(ConsentError::Declined { .. }) => {
            return (
                CallbackOutcome::Declined,
                "The administrator declined the consent. Nothing was changed.".into(),
            );
        }
        Err(e) => {
            return (
                CallbackOutcome::Failed,
                format!("{e}. Nothing was changed."),
            );
        }
    };
    let got = TenantId::from_uuid(grant.tenant);
    if let Some(expected) = cs.expected_tenant
        && got != expected
    {
        return (
            CallbackOutcome::WrongTenant,
            format!(
                "Consent was given in tenant {got}, but this company's tenant is {expected}. Sign in as an administrator of the customer's tenant. Nothing was changed."
            ),
        );
    }
    match cs.purpose {
        ConsentPurpose::Authorize => {
            // The company must still be connected to the tenant the consent was issued for.
            let current = company.connection.as_ref().map(|c| c.tenant_id);
            if current.is_none() {
                return (
                    CallbackOutcome::Failed,
                    "The company was disconnected while consent was given. Connect Microsoft 365 first. Nothing was changed.".into(),
                );
            }
            if current != Some(got) {
                return (
                    CallbackOutcome::WrongTenant,
                    format!(
                        "Consent was given in tenant {got}, which is not the tenant this company is connected to. Nothing was changed."
                    ),
                );
            }
            st.app.m365.forget_tenant(got.as_uuid());
            match companies::check_status(ctx, Some(actor), &cs.company).await {
                Ok(rec) => {
                    super::status_checked(&st.app, &cs.company, rec.state.as_str());
                    (
                        CallbackOutcome::Authorized,
                        format!(
                            "Consent received from the customer's tenant. Exchange Admin now reads \"{}\". {}",
                            rec.shown_state().badge(),
                            rec.shown_state().fix()
                        ),
                    )
                }
                Err(e) => (
                    CallbackOutcome::Authorized,
                    format!("Consent received; the status check failed: {e}"),
                ),
            }
        }
        ConsentPurpose::Connect => {
            let org = match st.app.m365.verify_connection(got.as_uuid()).await {
                Ok(o) => o,
                Err(ConnectionError::WrongTenant { .. }) => {
                    return (
                        CallbackOutcome::WrongTenant,
                        "The token Microsoft issued names another tenant than the consent did. Nothing was changed.".into(),
                    );
                }
                Err(e) => {
                    return (
                        CallbackOutcome::Failed,
                        format!("The connection could not be verified: {e}. Nothing was changed."),
                    );
                }
            };
            let input = ConnectInput {
                tenant_id: got,
                display_name: org.display_name.clone(),
                default_domain: org
                    .default_domain
                    .clone()
                    .or(org.initial_domain.clone())
                    .unwrap_or_else(|| got.to_string()),
            };
            let r = if company.connection.is_some() {
                companies::reconnect(ctx, actor, &cs.company, &input).await
            } else {
                companies::connect(ctx, actor, &cs.company, &input).await
            };
            if let Err(e) = r {
                return (
                    CallbackOutcome::Failed,
                    format!("{e}. Nothing was changed."),
                );
            }
            st.app.m365.forget_tenant(got.as_uuid());
            let state = companies::check_status(ctx, Some(actor), &cs.company)
                .await
                .map(|r| r.shown_state().badge().to_owned())
                .unwrap_or_else(|e| format!("check failed: {e}"));
            (
                CallbackOutcome::Connected,
                format!(
                    "Connected to {} ({got}). Exchange Admin: {state}.",
                    org.display_name
                ),
            )
        }
    }
}
