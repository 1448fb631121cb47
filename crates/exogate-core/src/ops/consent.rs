//! Admin consent: starting a consent for a company and deciding what the callback may do.
//!
//! A `state` is issued for one user, company and purpose, and for the tenant the consent must
//! land in; it is valid at most ten minutes and single use. Only its SHA-256 is stored. The edge
//! generates the random value, sends it to Microsoft and hands it back here from the callback,
//! with what Microsoft's redirect said ([`CallbackAnswer`]).
//!
//! The rules:
//! - Authorize and reconnect start for the company's current tenant; the callback can only
//!   confirm that tenant.
//! - A first connect names the tenant typed up front, or none (`organizations`: the admin picks
//!   it at Microsoft); the tenant that comes back must not be linked to another company (also
//!   enforced by a unique index on the tenant id).
//! - Moving a connected company to another tenant is its own purpose: manager or above, the new
//!   tenant typed up front, audited as `company.tenant_moved`.
//! - A web state is bound to the browser session that started it; a state of another session is
//!   not used up (the store checks the session in the statement that consumes it). A state
//!   issued without a session (the CLI's `company connect-url`) is accepted from any browser, and
//!   still only confirms what it was issued for, on behalf of the user who issued it.
//! - Every refused callback appends one `consent.refused` event (the reason, the company when
//!   known, the tenants involved; never the state or anything Microsoft returned as a secret)
//!   and changes nothing else.

use serde_json::json;

use super::Ctx;
use super::companies::{self, ConnectInput, another_tenant, load, tenant_holder};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{ConflictReason, CoreError, Denial};
use crate::model::{
    Actor, Channel, Company, CompanyId, ConsentPurpose, ConsentState, StatusRecord, TenantId,
    hash_token_secret,
};
use crate::policy;
use crate::ports::MsError;

/// The longest a consent `state` lives.
pub const MAX_TTL_SECS: i64 = 600;

/// What a consent is started for.
#[derive(Clone, Debug)]
pub struct ConsentRequest<'a> {
    pub purpose: ConsentPurpose,
    /// The tenant typed up front: optional for a first connect, required for a move, and when
    /// given for a reconnect or an authorize it must be the company's tenant.
    pub tenant: Option<TenantId>,
    /// The browser session the callback must come back to; None for a state handed out of band
    /// (the CLI), which any browser may bring back.
    pub session_id: Option<&'a str>,
    /// The random value sent to Microsoft (at least 32 characters); only its hash is stored.
    pub state: &'a str,
    pub ttl_secs: i64,
}

/// Who may start (and complete) a consent of this purpose.
fn allowed(actor: &Actor, company: &CompanyId, purpose: ConsentPurpose) -> Result<(), Denial> {
    match purpose {
        ConsentPurpose::Move => policy::can_manage_company(&actor.user, company),
        ConsentPurpose::Connect | ConsentPurpose::Authorize => {
            policy::can_connect(&actor.user, company)
        }
    }
}

/// Records a new `state` before redirecting to Microsoft. The returned state's
/// `expected_tenant` is the tenant to put in the consent URL's authority (None:
/// `organizations`).
pub async fn begin(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    req: &ConsentRequest<'_>,
) -> Result<ConsentState, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    allowed(actor, company, req.purpose).map_err(CoreError::forbidden)?;
    if req.state.len() < 32 {
        return Err(CoreError::invalid(
            "state",
            "the consent state must have at least 32 characters".to_owned(),
        ));
    }
    let c = load(ctx, company).await?;
    let current = c.connection.as_ref().map(|c| c.tenant_id);
    let not_connected = || CoreError::conflict(ConflictReason::NotConnected);
    let expected_tenant = match req.purpose {
        ConsentPurpose::Authorize | ConsentPurpose::Connect => match (current, req.tenant) {
            (Some(cur), Some(t)) if t != cur => return Err(another_tenant(cur)),
            (Some(cur), _) => Some(cur),
            (None, _) if req.purpose == ConsentPurpose::Authorize => return Err(not_connected()),
            (None, typed) => typed,
        },
        ConsentPurpose::Move => {
            let cur = current.ok_or_else(not_connected)?;
            let Some(to) = req.tenant else {
                return Err(CoreError::invalid(
                    "tenant",
                    "type the id of the tenant to move the company to".to_owned(),
                ));
            };
            if to == cur {
                return Err(CoreError::invalid(
                    "tenant",
                    format!("the company is already connected to tenant {cur}"),
                ));
            }
            Some(to)
        }
    };
    if let Some(t) = expected_tenant
        && tenant_holder(ctx, t, company).await?.is_some()
    {
        return Err(CoreError::conflict(ConflictReason::TenantLinked));
    }
    let now = ctx.clock.now();
    let st = ConsentState {
        state_hash: hash_token_secret(req.state),
        company: company.clone(),
        user: actor.user.id,
        session_id: req.session_id.map(str::to_owned),
        purpose: req.purpose,
        expected_tenant,
        created_at: now,
        expires_at: now.plus_secs(req.ttl_secs.clamp(1, MAX_TTL_SECS)),
        used_at: None,
    };
    ctx.store.insert_consent_state(&st).await?;
    Ok(st)
}

/// What Microsoft's redirect said, as parsed by the edge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallbackAnswer {
    /// `admin_consent=True` with this `tenant` (not trusted on its own).
    Granted { tenant: TenantId },
    /// AADSTS50020: an account of another directory signed in.
    OtherDirectory,
    /// The admin declined.
    Declined,
    /// Any other error, or not a consent answer; `detail` is Microsoft's description.
    Failed { detail: String },
}

/// Why a callback was refused (stable codes, in the `consent.refused` event's `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The state is unknown, used, expired, or belongs to another browser session.
    StateNotAccepted,
    /// The user who started the consent is disabled or gone.
    UserInactive,
    /// The user who started the consent may no longer do it (entitlement or role).
    NotAllowed,
    /// The callback names another tenant than the one the consent was started for.
    WrongTenant,
    /// AADSTS50020.
    OtherDirectory,
    Declined,
    /// Microsoft answered with another error, or not with a consent answer.
    ConsentFailed,
    /// The company is not connected (anymore) to the tenant the consent was started for.
    ConnectionChanged,
    /// Another company is linked to the tenant.
    TenantLinked,
    /// No token or Graph answer could be had for the tenant.
    VerificationFailed,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::StateNotAccepted => "state_not_accepted",
            Refusal::UserInactive => "user_inactive",
            Refusal::NotAllowed => "not_allowed",
            Refusal::WrongTenant => "wrong_tenant",
            Refusal::OtherDirectory => "other_directory",
            Refusal::Declined => "declined",
            Refusal::ConsentFailed => "consent_failed",
            Refusal::ConnectionChanged => "connection_changed",
            Refusal::TenantLinked => "tenant_already_linked",
            Refusal::VerificationFailed => "verification_failed",
        }
    }
}

/// How a connection was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectKind {
    First,
    Reconnect,
    Moved { from: TenantId },
}

/// What the callback concluded.
#[derive(Debug)]
pub enum Completion {
    /// A connection was stored; then the Exchange Admin status was checked.
    Connected {
        company: Company,
        kind: ConnectKind,
        status: Result<StatusRecord, CoreError>,
    },
    /// Exchange app consent landed in the company's tenant; the status was re-checked.
    Authorized {
        company: Company,
        status: Result<StatusRecord, CoreError>,
    },
    /// Nothing changed but the `consent.refused` event (and the state being used up, when it
    /// was this session's).
    Refused { reason: Refusal, message: String },
}

/// The callback's result: the state (when it was accepted), the user it was issued to (when
/// still active) and the conclusion.
#[derive(Debug)]
pub struct Completed {
    pub state: Option<ConsentState>,
    pub actor: Option<Actor>,
    pub completion: Completion,
}

struct Refused {
    reason: Refusal,
    message: String,
    got: Option<TenantId>,
}

fn refuse(reason: Refusal, message: impl Into<String>) -> Refused {
    Refused {
        reason,
        message: message.into(),
        got: None,
    }
}

/// At most this many characters of Microsoft's error text go into the audit log.
const MAX_DETAIL: usize = 300;

/// Completes a consent from Microsoft's redirect. `session_id` is the browser session the
/// callback came with (None without one). Errors are only infrastructure failures (the store);
/// a refusal is an `Ok` [`Completion::Refused`], already audited.
pub async fn complete(
    ctx: Ctx<'_>,
    session_id: Option<&str>,
    state: &str,
    answer: CallbackAnswer,
) -> Result<Completed, CoreError> {
    complete_with(ctx, session_id, state, answer, true).await
}

/// As [`complete`]; `audit_unknown` says whether a refusal of an unknown, used or foreign
/// `state` gets its own audit row. Anyone on the network can send such callbacks without
/// signing in, so the edge keeps a per-minute budget of those rows and summarises the rest with
/// [`record_unrecorded_refusals`]. A refusal of a known state is always recorded.
pub async fn complete_with(
    ctx: Ctx<'_>,
    session_id: Option<&str>,
    state: &str,
    answer: CallbackAnswer,
    audit_unknown: bool,
) -> Result<Completed, CoreError> {
    let now = ctx.clock.now();
    let consumed = if state.is_empty() || state.len() > 200 {
        None
    } else {
        ctx.store
            .consume_consent_state(&hash_token_secret(state), session_id, now)
            .await?
    };
    let Some(st) = consumed else {
        let message = "This consent link is unknown, was already used, is older than 10 minutes, or was started in another browser session. Nothing was changed. Start again from the company's integrations page.";
        if audit_unknown {
            record_unknown_refusal(ctx, session_id.is_some()).await?;
        }
        return Ok(Completed {
            state: None,
            actor: None,
            completion: Completion::Refused {
                reason: Refusal::StateNotAccepted,
                message: message.to_owned(),
            },
        });
    };
    let actor = match ctx.store.get_user(st.user).await? {
        Some(user) if !user.disabled => Some(Actor {
            user,
            channel: Channel::Web,
        }),
        _ => None,
    };
    let result = match &actor {
        None => Err(refuse(
            Refusal::UserInactive,
            "The user who started this consent is no longer active. Nothing was changed.",
        )),
        Some(actor) => decide(ctx, actor, &st, answer).await?,
    };
    let completion = match result {
        Ok(c) => c,
        Err(r) => {
            let ev = NewAuditEvent::new(now, AuditKind::ConsentRefused, actor.as_ref())
                .company(&st.company)
                .detail(json!({
                    "reason": r.reason.code(),
                    "purpose": st.purpose.as_str(),
                    "expected_tenant": st.expected_tenant.map(|t| t.to_string()),
                    "callback_tenant": r.got.map(|t| t.to_string()),
                    "session_bound": st.session_id.is_some(),
                    "detail": r.message.chars().take(MAX_DETAIL).collect::<String>(),
                }));
            let ev = if actor.is_none() {
                ev.actor_name("(inactive user)", Channel::Web.to_string().as_str())
            } else {
                ev
            };
            ctx.store.append_audit(ev).await?;
            Completion::Refused {
                reason: r.reason,
                message: r.message,
            }
        }
    };
    Ok(Completed {
        state: Some(st),
        actor,
        completion,
    })
}

/// The rules. `Ok(Err(_))` is a refusal (audited by the caller); `Err` an infrastructure error.
async fn decide(
    ctx: Ctx<'_>,
    actor: &Actor,
    st: &ConsentState,
    answer: CallbackAnswer,
) -> Result<Result<Completion, Refused>, CoreError> {
    let got = match answer {
        CallbackAnswer::Granted { tenant } => tenant,
        CallbackAnswer::OtherDirectory => {
            return Ok(Err(refuse(
                Refusal::OtherDirectory,
                "The account that signed in belongs to another directory (AADSTS50020). Sign in as a Global Administrator of the customer's tenant, not your own. Nothing was changed.",
            )));
        }
        CallbackAnswer::Declined => {
            return Ok(Err(refuse(
                Refusal::Declined,
                "The administrator declined the consent. Nothing was changed.",
            )));
        }
        CallbackAnswer::Failed { detail } => {
            let detail: String = detail.chars().take(MAX_DETAIL).collect();
            return Ok(Err(refuse(
                Refusal::ConsentFailed,
                format!("Consent failed: {detail}. Nothing was changed."),
            )));
        }
    };
    let with_got = |mut r: Refused| {
        r.got = Some(got);
        Ok(Err(r))
    };
    if allowed(actor, &st.company, st.purpose).is_err() {
        return with_got(refuse(
            Refusal::NotAllowed,
            "The user who started this consent may no longer do this for the company. Nothing was changed.",
        ));
    }
    if let Some(expected) = st.expected_tenant
        && got != expected
    {
        return with_got(refuse(
            Refusal::WrongTenant,
            format!(
                "Consent was given in tenant {got}, but it was started for tenant {expected}. Sign in as an administrator of the customer's tenant. Nothing was changed."
            ),
        ));
    }
    let company = load(ctx, &st.company).await?;
    let current = company.connection.as_ref().map(|c| c.tenant_id);
    let changed = |what: &str| {
        refuse(
            Refusal::ConnectionChanged,
            format!(
                "{what} Nothing was changed. Start again from the company's integrations page."
            ),
        )
    };
    let kind = match (st.purpose, current) {
        (ConsentPurpose::Authorize, Some(cur)) if cur == got => None,
        (ConsentPurpose::Authorize, _) => {
            return with_got(changed(
                "The company's connection changed while consent was given.",
            ));
        }
        (ConsentPurpose::Connect, None) => Some(ConnectKind::First),
        (ConsentPurpose::Connect, Some(cur)) if Some(cur) == st.expected_tenant => {
            Some(ConnectKind::Reconnect)
        }
        (ConsentPurpose::Connect, Some(_)) => {
            return with_got(changed(
                "The company was connected to a tenant while consent was given; moving it to another tenant is a manager's action.",
            ));
        }
        (ConsentPurpose::Move, Some(from)) if from != got => Some(ConnectKind::Moved { from }),
        (ConsentPurpose::Move, _) => {
            return with_got(changed(
                "The company's connection changed while consent was given.",
            ));
        }
    };
    let Some(kind) = kind else {
        // Authorize: the Exchange app consent landed in the company's tenant.
        let status = companies::check_status(ctx, Some(actor), &st.company).await;
        let company = load(ctx, &st.company).await?;
        return Ok(Ok(Completion::Authorized { company, status }));
    };
    let linked = || {
        refuse(
            Refusal::TenantLinked,
            format!(
                "Tenant {got} is already linked to another company; one tenant belongs to one company. Nothing was changed."
            ),
        )
    };
    if tenant_holder(ctx, got, &st.company).await?.is_some() {
        return with_got(linked());
    }
    let org = match ctx.ms.verify_connection(got).await {
        Ok(o) => o,
        Err(MsError::NotConfigured {
            state: crate::model::ExchangeAdminState::WrongTenant,
            ..
        }) => {
            return with_got(refuse(
                Refusal::WrongTenant,
                "The token Microsoft issued names another tenant than the consent did. Nothing was changed.",
            ));
        }
        Err(e) => {
            return with_got(refuse(
                Refusal::VerificationFailed,
                format!("The connection could not be verified: {e}. Nothing was changed."),
            ));
        }
    };
    let input = ConnectInput {
        tenant_id: got,
        display_name: org.display_name,
        default_domain: org.default_domain.unwrap_or_else(|| got.to_string()),
    };
    let stored = match kind {
        ConnectKind::First => companies::connect(ctx, actor, &st.company, &input).await,
        ConnectKind::Reconnect => companies::reconnect(ctx, actor, &st.company, &input).await,
        ConnectKind::Moved { .. } => companies::move_tenant(ctx, actor, &st.company, &input).await,
    };
    match stored {
        Ok(_) => {}
        Err(CoreError::Conflict {
            reason: ConflictReason::TenantLinked,
        }) => return with_got(linked()),
        Err(CoreError::Conflict {
            reason: ConflictReason::AlreadyExists,
        }) => {
            return with_got(changed(
                "The company was connected while consent was given.",
            ));
        }
        Err(e @ (CoreError::Invalid { .. } | CoreError::Forbidden { .. })) => {
            return with_got(refuse(
                Refusal::ConsentFailed,
                format!("{e}. Nothing was changed."),
            ));
        }
        Err(e) => return Err(e),
    }
    let status = companies::check_status(ctx, Some(actor), &st.company).await;
    let company = load(ctx, &st.company).await?;
    Ok(Ok(Completion::Connected {
        company,
        kind,
        status,
    }))
}

/// Records one refused callback whose `state` was unknown, used, expired or foreign.
pub async fn record_unknown_refusal(ctx: Ctx<'_>, session: bool) -> Result<(), CoreError> {
    let ev = NewAuditEvent::new(ctx.clock.now(), AuditKind::ConsentRefused, None)
        .actor_name("(unknown)", Channel::Web.to_string().as_str())
        .detail(json!({ "reason": Refusal::StateNotAccepted.code(), "session": session }));
    ctx.store.append_audit(ev).await?;
    Ok(())
}

/// Records, as one `consent.refused` row, `count` refused callbacks with an unknown `state`
/// that were counted instead of recorded one by one (see [`complete_with`]).
pub async fn record_unrecorded_refusals(
    ctx: Ctx<'_>,
    count: u64,
    first: crate::model::Timestamp,
    last: crate::model::Timestamp,
) -> Result<(), CoreError> {
    let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::ConsentRefused).detail(json!({
        "reason": Refusal::StateNotAccepted.code(),
        "unrecorded_refusals": count,
        "first_at": first.to_string(),
        "last_at": last.to_string(),
    }));
    ctx.store.append_audit(ev).await?;
    Ok(())
}
