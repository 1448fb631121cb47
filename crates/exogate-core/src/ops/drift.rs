//! Drift findings: what a sweep's comparison with the previous generation found that no
//! executed exogate request explains ([`observe`], called by the sweep before it finishes), and
//! what people do with them: list, acknowledge with a reason, or revert through an approval
//! request with the inverse action.

use std::collections::HashSet;

use serde_json::json;

use super::Ctx;
use super::companies::{connection, load, load_visible, ms_error};
use crate::action::{CanonicalAction, Operation, OperationKind, Permission, Presence};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::drift::{
    DriftAck, DriftCandidate, DriftChange, DriftFinding, DriftId, DriftObservation, DriftState,
    MAX_REASON_CHARS,
};
use crate::error::{ConflictReason, CoreError, Entity};
use crate::inventory::{InventoryRow, InventoryTrustee, TrusteeClass};
use crate::model::{Actor, CompanyId, RequestId, Role, Timestamp, parse_label};
use crate::policy;
use crate::ports::StoreError;
use crate::request::{ApprovalRequest, OpOutcome, RequestState};
use crate::tools::ToolName;

/// Most findings listed per company.
pub const LIST_LIMIT: u32 = 500;

/// (mailbox object id, trustee key, right) of a row, as the inventory keys it.
type Key = (String, String, Permission);

/// The changes `req` made in Exchange, keyed like inventory rows, with their direction: every
/// action of a request that succeeded or was already in state, and the verified actions of one
/// that failed part-way.
fn explained_by(req: &ApprovalRequest) -> Vec<(Key, DriftChange)> {
    let all = matches!(
        req.state,
        RequestState::Succeeded | RequestState::AlreadyInState
    );
    req.actions
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            all || req
                .results
                .get(*i)
                .is_some_and(|r| r.verified && r.outcome != OpOutcome::Failed)
        })
        .map(|(_, a)| {
            let row = InventoryRow {
                company: a.company.clone(),
                mailbox: a.mailbox.clone(),
                trustee: InventoryTrustee::resolved(a.trustee.clone()),
                right: a.operation.permission,
            };
            let change = match a.operation.desired() {
                Presence::Present => DriftChange::Added,
                Presence::Absent => DriftChange::Removed,
            };
            (row.key(), change)
        })
        .collect()
}

/// Compares sweep `generation` of `company` (written, not finished yet) with the current
/// generation, drops what requests executed since the previous sweep started explain (in the
/// same direction), and records the rest as findings (a `drift.found` event for new ones).
/// The diff runs in the store: only differing rows come back. `started` is when this run
/// started; the next comparison counts requests from the sweep's start (the crashed run's, when
/// this one continued it).
pub async fn observe(
    ctx: Ctx<'_>,
    company: &CompanyId,
    actor: Option<&Actor>,
    generation: i64,
    started: Timestamp,
) -> Result<Vec<DriftFinding>, StoreError> {
    let store = ctx.store;
    let status = store.inventory_status(company).await?;
    let previous = status
        .as_ref()
        .and_then(|s| s.current_generation)
        .filter(|g| *g != generation);
    let earlier_seen_at = status.as_ref().and_then(|s| s.as_of);
    let mut candidates: Vec<DriftCandidate> = Vec::new();
    if let Some(prev) = previous {
        let diff = store.drift_diff(company, prev, generation).await?;
        if !diff.is_empty() {
            let since = match store.drift_baseline(company).await? {
                Some(t) => t,
                None => earlier_seen_at.unwrap_or(Timestamp::from_unix_millis(0)),
            };
            let explained: HashSet<(Key, DriftChange)> = store
                .drift_executed_since(company, since)
                .await?
                .iter()
                .flat_map(explained_by)
                .collect();
            candidates = diff
                .into_iter()
                .filter(|c| !explained.contains(&(c.row.key(), c.change)))
                .collect();
        }
    }
    let now = ctx.clock.now();
    // A sweep that continued a crashed one started when the crashed one did.
    let swept_from = status
        .as_ref()
        .filter(|s| s.sweep_generation == generation)
        .map_or(started, |s| s.sweep_started_at.min(started));
    let observation = DriftObservation {
        generation,
        previous_generation: previous,
        seen_at: now,
        earlier_seen_at,
        swept_from,
        candidates,
    };
    let audit = NewAuditEvent::new(now, AuditKind::DriftFound, actor)
        .company(company)
        .detail(json!({ "generation": generation, "previous_generation": previous }));
    store.drift_record(company, &observation, audit).await
}

/// The findings of every company `actor` may see (or of `company` only), newest first.
pub async fn list(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: Option<&CompanyId>,
) -> Result<Vec<DriftFinding>, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let companies = match company {
        Some(c) => vec![load_visible(ctx, &actor, c).await?.id],
        None => ctx
            .store
            .list_companies()
            .await?
            .into_iter()
            .filter(|c| policy::can_view(&actor.user, &c.id).is_ok())
            .map(|c| c.id)
            .collect(),
    };
    let mut out = Vec::new();
    for c in &companies {
        out.extend(ctx.store.drift_list(c, LIST_LIMIT).await?);
    }
    out.sort_by(|a, b| b.first_seen_at.cmp(&a.first_seen_at).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// One finding the actor may see. A finding of a company they may not see is `not_found`,
/// exactly like one that does not exist.
pub async fn get(ctx: Ctx<'_>, actor: &Actor, id: DriftId) -> Result<DriftFinding, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let f = ctx
        .store
        .drift_get(id)
        .await?
        .filter(|f| policy::can_view(&actor.user, &f.row.company).is_ok())
        .ok_or_else(|| CoreError::not_found(Entity::Finding, id))?;
    Ok(f)
}

/// Who may acknowledge a finding: a manager or higher, entitled (it accepts a change nobody
/// approved, as a decision would).
pub fn may_acknowledge(actor: &Actor, company: &CompanyId) -> Result<(), CoreError> {
    policy::can_view(&actor.user, company).map_err(CoreError::forbidden)?;
    if actor.user.role < Role::Manager {
        return Err(CoreError::forbidden(crate::error::Denial::RoleTooLow {
            needed: Role::Manager,
        }));
    }
    Ok(())
}

/// Acknowledges an open finding with a reason (required; no control or invisible characters;
/// at most [`MAX_REASON_CHARS`]), audited as `drift.acknowledged`.
pub async fn acknowledge(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: DriftId,
    reason: &str,
) -> Result<DriftFinding, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let f = get(ctx, actor, id).await?;
    may_acknowledge(actor, &f.row.company)?;
    let reason = parse_label("reason", reason, MAX_REASON_CHARS)?;
    if f.state != DriftState::Open {
        return Err(CoreError::conflict(ConflictReason::BadTransition {
            from: f.state.as_str(),
            to: DriftState::Acknowledged.as_str(),
        }));
    }
    let now = ctx.clock.now();
    let ack = DriftAck {
        by: actor.user.id,
        by_name: actor.user.name.to_string(),
        at: now,
        reason: reason.clone(),
    };
    let ev = NewAuditEvent::new(now, AuditKind::DriftAcknowledged, Some(actor))
        .company(&f.row.company)
        .detail(json!({
            "finding": id.to_string(),
            "mailbox": f.row.mailbox.primary_address,
            "trustee": f.row.trustee.label(),
            "right": f.row.right.as_str(),
            "change": f.change.as_str(),
            "reason": reason,
        }));
    if !ctx.store.drift_acknowledge(id, &ack, ev).await? {
        let now_state = get(ctx, actor, id).await?.state;
        return Err(CoreError::conflict(ConflictReason::BadTransition {
            from: now_state.as_str(),
            to: DriftState::Acknowledged.as_str(),
        }));
    }
    get(ctx, actor, id).await
}

/// Asks to undo a finding: a new pending request with the inverse action (a right added
/// outside is removed, a right removed outside is granted again), reading the current state
/// first; it needs its own approval. The finding is then `revert_requested`.
pub async fn revert(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: DriftId,
    new_id: RequestId,
) -> Result<(DriftFinding, ApprovalRequest), CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let f = get(ctx, actor, id).await?;
    policy::can_request(&actor.user, &f.row.company).map_err(CoreError::forbidden)?;
    if f.state == DriftState::RevertRequested {
        return Err(CoreError::conflict(ConflictReason::BadTransition {
            from: f.state.as_str(),
            to: DriftState::RevertRequested.as_str(),
        }));
    }
    let trustee = match (&f.row.trustee.identity, f.row.trustee.class) {
        (Some(t), TrusteeClass::User | TrusteeClass::Group) => t.clone(),
        _ => {
            return Err(CoreError::invalid(
                "finding",
                format!(
                    "the trustee `{}` does not resolve to a recipient (deleted or unknown): remove it in Exchange",
                    crate::text::capped(&crate::text::tenant_text(&f.row.trustee.raw), 80)
                ),
            ));
        }
    };
    super::requests::check_pending_limit(ctx, actor).await?;
    let company = load(ctx, &f.row.company).await?;
    let tenant = connection(&company)?.tenant_id;
    let kind = match f.change {
        DriftChange::Added => OperationKind::Remove,
        DriftChange::Removed => OperationKind::Grant,
    };
    let probe = CanonicalAction::new(
        company.id.clone(),
        tenant,
        Operation {
            kind,
            permission: f.row.right,
        },
        f.row.mailbox.clone(),
        trustee,
        None,
        Presence::Present,
    );
    let state = ctx
        .ms
        .current_state(tenant, &probe)
        .await
        .map_err(|e| ms_error(e, Entity::Mailbox))?;
    let action = CanonicalAction {
        state_at_request: state,
        ..probe
    };
    if action.is_no_op() {
        return Err(CoreError::conflict(ConflictReason::AlreadyInState {
            what: action.in_state_phrase(),
        }));
    }
    let tool = ToolName::for_operation(action.operation);
    let req = super::requests::pending_request(
        ctx,
        actor,
        new_id,
        company.id.clone(),
        tenant,
        tool,
        vec![action],
    );
    let ev = NewAuditEvent::new(req.created_at, AuditKind::RequestCreated, Some(actor))
        .company(&req.company)
        .request(req.id)
        .detail(json!({
            "tool": req.tool.as_str(), "risk": req.risk.as_str(), "digest": req.digest,
            "actions": crate::action::encode_actions(&req.actions), "summary": req.summary(),
            "expires_at": req.expires_at.unix_millis(), "drift_finding": id.to_string(),
        }));
    let req = super::requests::insert_or_existing(ctx, req, ev).await?;
    ctx.store.drift_set_revert(id, req.id).await?;
    let f = get(ctx, actor, id).await?;
    Ok((f, req))
}
