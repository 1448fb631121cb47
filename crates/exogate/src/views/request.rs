//! An approval request: its frozen actions, the decision, and what running it did.

use exogate_core::action::{CanonicalAction, Presence};
use exogate_core::policy;
use exogate_core::request::{ApprovalRequest, OperationResult, RequestState};
use exogate_core::{Actor, Company, CoreError, Timestamp, text};
use serde::Serialize;

use super::{IdentityView, name_warnings, shown, shown_action, ts};
use crate::app::App;
use crate::web::view::age;

/// One frozen action of a request.
#[derive(Clone, Debug, Serialize)]
pub struct ActionView {
    /// Tool name of the operation, e.g. `grant_full_access`.
    pub operation: String,
    /// e.g. "grant Full Access".
    pub verb: String,
    pub permission: String,
    pub mailbox: IdentityView,
    pub trustee: IdentityView,
    pub automapping: Option<bool>,
    /// `present` / `absent` when the request was made.
    pub state_at_request: String,
    /// The current state in words.
    pub state_text: String,
    pub summary: String,
    pub warnings: Vec<String>,
    // (timed-grants)
    /// When a timed grant ends (RFC 3339), covered by its approval.
    pub ends_at: Option<String>,
}

impl ActionView {
    pub fn of(a: &CanonicalAction) -> Self {
        let mut warnings = name_warnings("mailbox", &a.mailbox);
        warnings.extend(name_warnings("trustee", &a.trustee));
        let raw = a;
        let a = &shown_action(raw);
        let p = a.operation.permission.label();
        let state_text = match a.state_at_request {
            Presence::Present => format!(
                "{} has {p} on {} at request time",
                a.trustee.primary_address, a.mailbox.primary_address
            ),
            Presence::Absent => format!(
                "{} has no {p} on {} at request time",
                a.trustee.primary_address, a.mailbox.primary_address
            ),
        };
        Self {
            operation: a.operation.as_str().into(),
            verb: a.operation.to_string(),
            permission: p.into(),
            mailbox: IdentityView::of(&raw.mailbox),
            trustee: IdentityView::of(&raw.trustee),
            automapping: a.options.automapping,
            state_at_request: a.state_at_request.as_str().into(),
            state_text,
            summary: a.summary(),
            warnings,
            ends_at: raw.ends_at.map(ts),
        }
    }
}

/// What running one action did.
#[derive(Clone, Debug, Serialize)]
pub struct ResultView {
    /// `changed`, `already_in_state` or `failed`.
    pub outcome: String,
    /// `present` / `absent` before the change, when read.
    pub before: Option<String>,
    /// `present` / `absent` after the change, when read back.
    pub after: Option<String>,
    /// The read-back confirmed the wanted state.
    pub verified: bool,
    /// Exchange's message (tenant text, sanitized).
    pub message: String,
}

impl ResultView {
    pub fn of(x: &OperationResult) -> Self {
        Self {
            outcome: x.outcome.as_str().into(),
            before: x.before.map(|p| p.as_str().to_owned()),
            after: x.after.map(|p| p.as_str().to_owned()),
            verified: x.verified,
            message: shown(&x.message),
        }
    }
}

/// A request as one caller sees it at one time (`can_*` say what they may do now).
#[derive(Clone, Debug, Serialize)]
pub struct RequestView {
    pub id: String,
    pub company: String,
    pub company_name: String,
    pub tenant: String,
    pub tool: String,
    pub risk: String,
    pub state: String,
    pub summary: String,
    pub requester: String,
    /// `web`, `api`, `cli` or `mcp`.
    pub channel: String,
    /// The agent's name when an AI agent made the request through MCP.
    pub agent: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub age: String,
    pub role_needed: String,
    pub digest: String,
    pub actions: Vec<ActionView>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    /// `approved` or `rejected`, once decided.
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub results: Vec<ResultView>,
    pub finished_at: Option<String>,
    pub message: Option<String>,
    pub revert_of: Option<String>,
    pub attempt: u32,
    /// Whether the caller may approve/reject, cancel, revert it now.
    pub can_decide: bool,
    pub can_cancel: bool,
    pub can_revert: bool,
    /// Why the caller may not decide (when pending).
    pub decide_denied: Option<String>,
    // (timed-grants)
    /// A timed grant: when it ends (RFC 3339) and, in words, how far off that is.
    pub ends_at: Option<String>,
    pub ends_in: Option<String>,
    /// A timed grant that took effect: the id of its scheduled removal.
    pub end_request: Option<String>,
    /// A scheduled removal: the timed grant it ends (the grant's approval covers it).
    pub ends_grant: Option<String>,
    /// Not run before this time (a scheduled removal: the grant's end; then its backoff).
    pub not_before: Option<String>,
    /// `grant.end_failed` when a scheduled removal failed after its retries (the alert raised).
    pub alert: Option<String>,
    // (cli-requests)
    /// The PSA ticket reference given when asking (not part of the digest).
    pub ticket: Option<String>,
}

impl RequestView {
    pub fn of(
        r: &ApprovalRequest,
        company: Option<&Company>,
        actor: &Actor,
        now: Timestamp,
    ) -> Self {
        let (can_decide, decide_denied) = match company {
            Some(c) => match policy::can_decide(actor, c, r, now) {
                Ok(()) => (true, None),
                Err(e) if r.state == RequestState::Pending => (false, Some(e.to_string())),
                Err(_) => (false, None),
            },
            None => (false, None),
        };
        let agent = match &r.requester.channel {
            exogate_core::Channel::Mcp { agent, .. } => {
                Some(agent.as_deref().map_or_else(|| "AI agent".into(), shown))
            }
            _ => None,
        };
        let actions: Vec<ActionView> = r.actions.iter().map(ActionView::of).collect();
        Self {
            id: r.id.to_string(),
            company: r.company.to_string(),
            company_name: company.map_or_else(|| r.company.to_string(), |c| shown(&c.name)),
            tenant: r.tenant.to_string(),
            tool: r.tool.as_str().into(),
            risk: r.risk.as_str().into(),
            state: r.state.as_str().into(),
            summary: actions
                .iter()
                .map(|a| a.summary.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            requester: r.requester.user_name.to_string(),
            channel: r.requester.channel.kind().into(),
            agent,
            created_at: ts(r.created_at),
            expires_at: ts(r.expires_at),
            age: age(now, r.created_at),
            role_needed: policy::role_to_approve(r.risk).as_str().into(),
            digest: r.digest.clone(),
            actions,
            decided_by: r.decision.as_ref().map(|d| d.by_name.to_string()),
            decided_at: r.decision.as_ref().map(|d| ts(d.at)),
            decision: r
                .decision
                .as_ref()
                .map(|d| if d.approved { "approved" } else { "rejected" }.to_owned()),
            reason: r
                .decision
                .as_ref()
                .and_then(|d| d.reason.as_deref().map(text::escape_hidden)),
            cancelled_by: r.cancellation.as_ref().map(|c| c.by_name.to_string()),
            results: r.results.iter().map(ResultView::of).collect(),
            finished_at: r.finished_at.map(ts),
            message: r.message.as_deref().map(shown),
            revert_of: r.revert_of.map(|x| x.to_string()),
            attempt: r.attempt,
            can_decide,
            can_cancel: policy::can_cancel(actor, r).is_ok(),
            can_revert: r.state == RequestState::Succeeded
                && policy::can_request(&actor.user, &r.company).is_ok(),
            decide_denied,
            ends_at: r.actions.iter().find_map(|a| a.ends_at).map(ts),
            ends_in: r
                .actions
                .iter()
                .find_map(|a| a.ends_at)
                .map(|e| exogate_core::timed::ends_in(e, now)),
            end_request: (r.actions.iter().any(|a| a.ends_at.is_some())
                && matches!(
                    r.state,
                    RequestState::Succeeded | RequestState::AlreadyInState
                ))
            .then(|| exogate_core::ops::timed::removal_id(r.id).to_string()),
            ends_grant: r.ends_grant.map(|x| x.to_string()),
            not_before: r.not_before.map(ts),
            alert: (r.ends_grant.is_some() && r.state == RequestState::Failed)
                .then(|| "grant.end_failed".to_owned()),
            // (cli-requests)
            ticket: r.ticket.clone(),
        }
    }
}

/// The request as `actor` sees it now, its company read from the store.
pub async fn request_for(
    app: &App,
    actor: &Actor,
    r: &ApprovalRequest,
) -> Result<RequestView, CoreError> {
    let c = app.store.get_company(&r.company).await?;
    Ok(RequestView::of(r, c.as_ref(), actor, app.clock.now()))
}
