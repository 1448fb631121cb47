//! Approval requests: ask for a write, show, list, approve, reject, cancel, expire, revert.

use serde_json::json;

use super::Ctx;
use super::companies::{connection, load, load_visible, ms_error, resolve_error};
use crate::action::{CanonicalAction, digest_actions};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{ConflictReason, CoreError, Denial, Entity};
use crate::model::{Actor, CompanyId, IdentityInput, RequestId, Requester, TenantId, parse_label};
use crate::policy;
use crate::ports::StoreError;
use crate::request::{
    ApprovalRequest, Cancellation, Decision, RequestFilter, RequestState, Transition,
};
use crate::tools::{self, ApprovalMode, ToolName};

/// A new pending request for `actions`, asked by `actor` now, expiring after the configured
/// time to live.
pub(crate) fn pending_request(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
    company: CompanyId,
    tenant: TenantId,
    tool: ToolName,
    actions: Vec<CanonicalAction>,
) -> ApprovalRequest {
    let now = ctx.clock.now();
    ApprovalRequest {
        id,
        company,
        tenant,
        tool,
        risk: tools::spec(tool).risk,
        requester: Requester {
            user: actor.user.id,
            user_name: actor.user.name.clone(),
            channel: actor.channel.clone(),
        },
        digest: digest_actions(&actions),
        actions,
        state: RequestState::Pending,
        created_at: now,
        expires_at: now.plus_secs(ctx.settings.request_ttl_secs),
        decision: None,
        cancellation: None,
        attempt: 0,
        lease: None,
        results: Vec::new(),
        finished_at: None,
        message: None,
        revert_of: None,
        not_before: None,
        ends_grant: None,
        // (cli-requests)
        ticket: None,
    }
}

/// Refuses a new request from `actor` while they already have as many pending as the
/// settings allow.
pub(crate) async fn check_pending_limit(ctx: Ctx<'_>, actor: &Actor) -> Result<(), CoreError> {
    let limit = ctx.settings.max_pending_per_user;
    // One more than the limit is enough to know the limit is reached.
    let pending = RequestFilter {
        requester: Some(actor.user.id),
        states: Some(vec![RequestState::Pending]),
        limit: Some(limit.saturating_add(1)),
        ..RequestFilter::default()
    };
    if ctx.store.list_requests(&pending).await?.len() >= limit as usize {
        return Err(CoreError::conflict(ConflictReason::TooManyPending {
            limit,
        }));
    }
    Ok(())
}

/// What a write tool asks for.
#[derive(Clone, Debug)]
pub struct WriteInput {
    /// New request id (UUIDv7) chosen by the caller.
    pub id: RequestId,
    pub company: CompanyId,
    pub tool: ToolName,
    pub mailbox: IdentityInput,
    pub trustee: IdentityInput,
    /// Only for `grant_full_access` (default true); ignored otherwise.
    pub automapping: Option<bool>,
}

// (timed-grants)
/// When a grant asked for ends, as the caller wrote it (checked by the core).
#[derive(Clone, Debug, Default)]
pub struct EndInput {
    /// How long a grant lasts ("8h", "7d"); at most one of `duration` and `until`.
    pub duration: Option<String>,
    /// When a grant ends (RFC 3339, or a date meaning midnight UTC).
    pub until: Option<String>,
}

fn request_event(
    ctx: Ctx<'_>,
    kind: AuditKind,
    actor: Option<&Actor>,
    req: &ApprovalRequest,
) -> NewAuditEvent {
    NewAuditEvent::new(ctx.clock.now(), kind, actor)
        .company(&req.company)
        .request(req.id)
}

/// Creates a pending request for a write tool: resolves mailbox and trustee, reads the current
/// state, freezes the canonical action and its digest. Nothing is changed in Exchange.
pub async fn request_write(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: WriteInput,
) -> Result<ApprovalRequest, CoreError> {
    request_timed_write(ctx, actor, input, EndInput::default()).await
}

/// (timed-grants) As [`request_write`], for a grant that may end by itself: the end is checked
/// (and the company's rule for ends applied) and frozen into the canonical action, so the
/// approval covers it. A grant with an end on a right already held sets or moves its end.
pub async fn request_timed_write(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: WriteInput,
    end: EndInput,
) -> Result<ApprovalRequest, CoreError> {
    request_write_many(
        ctx,
        actor,
        WriteManyInput {
            id: input.id,
            company: input.company,
            tool: input.tool,
            mailbox: input.mailbox,
            trustees: vec![input.trustee],
            automapping: input.automapping,
            ticket: None,
            end,
        },
    )
    .await
}

/// Loads a request the actor may see.
pub async fn get_request(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
) -> Result<ApprovalRequest, CoreError> {
    if actor.user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    let req = ctx
        .store
        .get_request(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::Request, id))?;
    policy::can_view(&actor.user, &req.company).map_err(CoreError::forbidden)?;
    Ok(req)
}

/// Lists requests, limited to the companies the actor is entitled to.
pub async fn list_requests(
    ctx: Ctx<'_>,
    actor: &Actor,
    mut filter: RequestFilter,
) -> Result<Vec<ApprovalRequest>, CoreError> {
    if actor.user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    if let crate::model::Entitlement::Companies(set) = &actor.user.entitlement {
        let allowed: Vec<CompanyId> = match filter.companies.take() {
            Some(asked) => asked.into_iter().filter(|c| set.contains(c)).collect(),
            None => set.iter().cloned().collect(),
        };
        filter.companies = Some(allowed);
    }
    Ok(ctx.store.list_requests(&filter).await?)
}

fn clean_reason(reason: Option<&str>) -> Result<Option<String>, CoreError> {
    match reason.map(str::trim) {
        None | Some("") => Ok(None),
        Some(r) => parse_label("reason", r, 1000).map(Some),
    }
}

async fn decide(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
    approve: bool,
    reason: Option<&str>,
) -> Result<ApprovalRequest, CoreError> {
    let reason = clean_reason(reason)?;
    let actor = &super::refresh_actor(ctx, actor).await?;
    let req = get_request(ctx, actor, id).await?;
    let company = load(ctx, &req.company).await?;
    let now = ctx.clock.now();
    policy::can_decide(actor, &company, &req, now)?;
    let mut next = req.clone();
    next.state = if approve {
        RequestState::Approved
    } else {
        RequestState::Rejected
    };
    if !approve {
        next.finished_at = Some(now);
    }
    next.decision = Some(Decision {
        by: actor.user.id,
        by_name: actor.user.name.clone(),
        at: now,
        approved: approve,
        reason: reason.clone(),
        digest: req.digest.clone(),
    });
    let kind = if approve {
        AuditKind::RequestApproved
    } else {
        AuditKind::RequestRejected
    };
    let ev = request_event(ctx, kind, Some(actor), &req)
        .detail(json!({ "digest": req.digest, "reason": reason }));
    store_decision(ctx, next, RequestState::Pending, ev).await
}

/// Stores `next` with `ev` if the request is still `expected`; when someone else changed it
/// first, the conflict names the state it is in now.
async fn store_decision(
    ctx: Ctx<'_>,
    next: ApprovalRequest,
    expected: RequestState,
    ev: NewAuditEvent,
) -> Result<ApprovalRequest, CoreError> {
    let t = Transition {
        next,
        expected_state: expected,
        expected_attempt: None,
    };
    if !ctx.store.transition(&t, ev).await? {
        let state = ctx
            .store
            .get_request(t.next.id)
            .await?
            .map_or("unknown", |r| r.state.as_str());
        return Err(CoreError::conflict(ConflictReason::AlreadyDecided {
            state,
        }));
    }
    Ok(t.next)
}

/// Approves a pending request (web, API or CLI only; never MCP).
pub async fn approve(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
    reason: Option<&str>,
) -> Result<ApprovalRequest, CoreError> {
    decide(ctx, actor, id, true, reason).await
}

/// Rejects a pending request (web, API or CLI only; never MCP).
pub async fn reject(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
    reason: Option<&str>,
) -> Result<ApprovalRequest, CoreError> {
    decide(ctx, actor, id, false, reason).await
}

/// Cancels a pending or approved (not yet started) request: the requester or a manager.
pub async fn cancel(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
) -> Result<ApprovalRequest, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let req = get_request(ctx, actor, id).await?;
    policy::can_cancel(actor, &req)?;
    let now = ctx.clock.now();
    let mut next = req.clone();
    next.state = RequestState::Cancelled;
    next.finished_at = Some(now);
    next.cancellation = Some(Cancellation {
        by: actor.user.id,
        by_name: actor.user.name.clone(),
        at: now,
    });
    let ev = request_event(ctx, AuditKind::RequestCancelled, Some(actor), &req)
        .detail(json!({ "from": req.state.as_str() }));
    store_decision(ctx, next, req.state, ev).await
}

/// Expires pending requests past their expiry; returns how many this call expired.
pub async fn expire_due(ctx: Ctx<'_>, limit: u32) -> Result<u32, CoreError> {
    let now = ctx.clock.now();
    let mut n = 0;
    for id in ctx.store.due_for_expiry(now, limit).await? {
        let Some(req) = ctx.store.get_request(id).await? else {
            continue;
        };
        if expire_one(ctx, &req).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// Expires `req` if it is pending and past its expiry; whether this call expired it.
async fn expire_one(ctx: Ctx<'_>, req: &ApprovalRequest) -> Result<bool, CoreError> {
    let now = ctx.clock.now();
    if req.state != RequestState::Pending || !req.is_expired(now) {
        return Ok(false);
    }
    let mut next = req.clone();
    next.state = RequestState::Expired;
    next.finished_at = Some(now);
    let ev = request_event(ctx, AuditKind::RequestExpired, None, req)
        .detail(json!({ "expires_at": req.expires_at.unix_millis() }));
    let t = Transition {
        next,
        expected_state: RequestState::Pending,
        expected_attempt: None,
    };
    Ok(ctx.store.transition(&t, ev).await?)
}

/// Stores a new pending request, unless its requester already has one pending in the same
/// company with the same actions (the same digest): then that one is answered and nothing is
/// written, so an agent that retries does not pile up requests for the approver. The caller
/// tells the two apart by the id. (One pending request per requester, company and digest is
/// also a unique index, so two identical asks at the same moment end the same way.)
pub(crate) async fn insert_or_existing(
    ctx: Ctx<'_>,
    req: ApprovalRequest,
    ev: NewAuditEvent,
) -> Result<ApprovalRequest, CoreError> {
    for _ in 0..2 {
        match ctx.store.insert_request(&req, ev.clone()).await {
            Ok(()) => return Ok(req),
            Err(StoreError::Duplicate) => {}
            Err(e) => return Err(e.into()),
        }
        let pending = ctx
            .store
            .list_requests(&RequestFilter {
                companies: Some(vec![req.company.clone()]),
                states: Some(vec![RequestState::Pending]),
                requester: Some(req.requester.user),
                limit: Some(1000),
            })
            .await?;
        let Some(existing) = pending.into_iter().find(|r| r.digest == req.digest) else {
            return Err(StoreError::Duplicate.into());
        };
        if !existing.is_expired(ctx.clock.now()) {
            return Ok(existing);
        }
        // Past its expiry, not yet expired by the worker: expire it, then store the new one.
        expire_one(ctx, &existing).await?;
    }
    Err(StoreError::Duplicate.into())
}

/// Asks to undo a succeeded request: a new pending request with the inverse actions, reading the
/// current state again. It needs its own approval.
pub async fn revert(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: RequestId,
    new_id: RequestId,
) -> Result<ApprovalRequest, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let orig = get_request(ctx, actor, id).await?;
    policy::can_request(&actor.user, &orig.company).map_err(CoreError::forbidden)?;
    if orig.state != RequestState::Succeeded {
        return Err(CoreError::conflict(ConflictReason::NotRevertible));
    }
    let company = load_visible(ctx, actor, &orig.company).await?;
    let tenant = connection(&company)?.tenant_id;
    if tenant != orig.tenant {
        return Err(CoreError::conflict(ConflictReason::NotConnected));
    }
    let mut actions = Vec::with_capacity(orig.actions.len());
    let mut undone = Vec::new();
    for a in orig.actions.iter().rev() {
        let inv = a.inverse();
        let state = ctx
            .ms
            .current_state(tenant, &inv)
            .await
            .map_err(|e| ms_error(e, Entity::Mailbox))?;
        let action = CanonicalAction {
            state_at_request: state,
            ..inv
        };
        // Already undone (by hand, or by another revert): nothing to ask for this one.
        if action.is_no_op() {
            undone.push(action.in_state_phrase());
        } else {
            actions.push(action);
        }
    }
    if actions.is_empty() {
        return Err(CoreError::conflict(ConflictReason::AlreadyInState {
            what: undone.join("; "),
        }));
    }
    let tool = ToolName::for_operation(actions[0].operation);
    let req = ApprovalRequest {
        revert_of: Some(orig.id),
        ..pending_request(
            ctx,
            actor,
            new_id,
            orig.company.clone(),
            tenant,
            tool,
            actions,
        )
    };
    let ev = request_event(ctx, AuditKind::RequestCreated, Some(actor), &req).detail(json!({
        "tool": req.tool.as_str(), "risk": req.risk.as_str(), "digest": req.digest, "revert_of": orig.id.to_string(),
        "actions": crate::action::encode_actions(&req.actions), "summary": req.summary(),
    }));
    insert_or_existing(ctx, req, ev).await
}

/// The person deciding reviewed another action than the one frozen in the request (it changed
/// since, or they looked at another): they must look at it again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the digest does not match the request's frozen action")]
pub struct ReviewAgain;

/// A decision binds to what was reviewed: `seen`, the digest of the action the approver saw
/// (surrounding spaces ignored), must be the request's. The digest is shown to everyone who may
/// see the request, so comparing it in plain time gives nothing away.
pub fn check_reviewed(req: &ApprovalRequest, seen: &str) -> Result<(), ReviewAgain> {
    if req.digest == seen.trim() {
        Ok(())
    } else {
        Err(ReviewAgain)
    }
}

// (cli-requests) Several trustees in one request; request ids by unique prefix.

/// The most trustees one request may name.
pub const MAX_TRUSTEES: usize = 20;

/// What a write with one or more trustees asks for: one action per trustee, one request, one
/// digest over all of them.
#[derive(Clone, Debug)]
pub struct WriteManyInput {
    /// New request id (UUIDv7) chosen by the caller.
    pub id: RequestId,
    pub company: CompanyId,
    pub tool: ToolName,
    pub mailbox: IdentityInput,
    /// At least one, at most [`MAX_TRUSTEES`], each a different recipient.
    pub trustees: Vec<IdentityInput>,
    /// Only for `grant_full_access` (default true); ignored otherwise.
    pub automapping: Option<bool>,
    /// The PSA ticket, as typed ([`parse_ticket`] checks it).
    pub ticket: Option<String>,
    /// When the grant ends, if it does (timed grants; checked by the core).
    pub end: EndInput,
}

/// The longest ticket reference.
pub const MAX_TICKET: usize = 64;

/// A ticket reference (a PSA ticket number such as `#4711` or `CW-2026-00042`): surrounding
/// spaces trimmed, empty means none; at most [`MAX_TICKET`] characters of ASCII letters, digits,
/// spaces and `# - _ . / :`. Anything else is `invalid_input`: it is shown to approvers and
/// exported, so it carries no markup, control characters or look-alike letters.
pub fn parse_ticket(raw: Option<&str>) -> Result<Option<String>, CoreError> {
    let Some(t) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if t.len() > MAX_TICKET
        || !t
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " #-_./:".contains(c))
    {
        return Err(CoreError::invalid(
            "ticket",
            format!(
                "a ticket reference is at most {MAX_TICKET} characters: letters, digits, spaces and # - _ . / :"
            ),
        ));
    }
    Ok(Some(t.to_owned()))
}

/// Creates one pending request with one action per trustee (the same operation on the same
/// mailbox), with an optional ticket reference and, for grants, an optional end. Every write
/// request is asked here ([`request_write`] and [`request_timed_write`] are its one-trustee
/// forms). Every trustee is resolved and its current state read; when any of them already has
/// the wanted state the whole ask is refused with `already_in_state` naming it, and nothing is
/// stored.
pub async fn request_write_many(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: WriteManyInput,
) -> Result<ApprovalRequest, CoreError> {
    let ticket = parse_ticket(input.ticket.as_deref())?;
    let mut trustees = input.trustees.into_iter();
    let (Some(first), rest) = (trustees.next(), trustees.collect::<Vec<_>>()) else {
        return Err(CoreError::invalid(
            "trustee",
            "name at least one trustee".to_owned(),
        ));
    };
    if rest.len() + 1 > MAX_TRUSTEES {
        return Err(CoreError::invalid(
            "trustee",
            format!("at most {MAX_TRUSTEES} trustees in one request"),
        ));
    }
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_request(&actor.user, &input.company).map_err(CoreError::forbidden)?;
    let Some(operation) = input.tool.operation() else {
        return Err(CoreError::invalid(
            "tool",
            format!("`{}` is not a write tool", input.tool.as_str()),
        ));
    };
    debug_assert_eq!(tools::spec(input.tool).approval, ApprovalMode::Always);
    // (timed-grants) The end is checked before anything is resolved or counted.
    let ends_at = super::timed::end_for_write(
        ctx,
        &input.company,
        input.tool,
        input.end.duration.as_deref(),
        input.end.until.as_deref(),
    )
    .await?;
    if ends_at.is_some() && !rest.is_empty() {
        // A timed grant's removal is the inverse of its one action.
        return Err(CoreError::invalid(
            "trustee",
            "a grant that ends names one trustee: ask once per trustee".to_owned(),
        ));
    }
    check_pending_limit(ctx, actor).await?;
    let company = load(ctx, &input.company).await?;
    let tenant = connection(&company)?.tenant_id;
    let mailbox = ctx
        .ms
        .resolve(tenant, &input.mailbox)
        .await
        .map_err(|e| resolve_error(e, Entity::Mailbox, input.mailbox.as_str(), &company))?;
    if !mailbox.kind.is_mailbox() {
        return Err(CoreError::invalid(
            "mailbox",
            format!(
                "`{}` is a {}, not a mailbox",
                mailbox.primary_address,
                mailbox.kind.as_str()
            ),
        ));
    }
    let mut actions: Vec<CanonicalAction> = Vec::with_capacity(rest.len() + 1);
    let mut in_state = Vec::new();
    for raw in std::iter::once(first).chain(rest) {
        let orphan = operation.kind == crate::action::OperationKind::Remove
            && raw
                .as_str()
                .starts_with(crate::inventory::ORPHAN_SID_PREFIX);
        let trustee = if orphan {
            // (inventory-truth) A deleted principal's SID left on the mailbox: removable, and
            // only when it is there.
            super::overview::orphan_trustee(
                ctx,
                tenant,
                &mailbox,
                operation.permission,
                raw.as_str(),
                &company,
            )
            .await?
        } else {
            ctx.ms
                .resolve(tenant, &raw)
                .await
                .map_err(|e| resolve_error(e, Entity::Trustee, raw.as_str(), &company))?
        };
        if trustee.object_id == mailbox.object_id {
            return Err(CoreError::invalid(
                "trustee",
                "a mailbox cannot be its own trustee".to_owned(),
            ));
        }
        if actions
            .iter()
            .any(|a| a.trustee.object_id == trustee.object_id)
        {
            return Err(CoreError::invalid(
                "trustee",
                format!("`{}` is named twice", trustee.primary_address),
            ));
        }
        let probe = CanonicalAction::new(
            input.company.clone(),
            tenant,
            operation,
            mailbox.clone(),
            trustee,
            input.automapping,
            crate::action::Presence::Absent,
        )
        .with_end(ends_at);
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
            in_state.push(action.in_state_phrase());
        }
        actions.push(action);
    }
    if !in_state.is_empty() {
        // Nothing would change for part of it: refuse now rather than queue a request that can
        // only end "already in state". Nothing is stored or audited; the caller drops those
        // trustees and asks again.
        return Err(CoreError::conflict(ConflictReason::AlreadyInState {
            what: in_state.join("; "),
        }));
    }
    let req = ApprovalRequest {
        ticket,
        ..pending_request(
            ctx,
            actor,
            input.id,
            input.company,
            tenant,
            input.tool,
            actions,
        )
    };
    let mut detail = json!({
        "tool": req.tool.as_str(), "risk": req.risk.as_str(), "digest": req.digest,
        "actions": crate::action::encode_actions(&req.actions), "summary": req.summary(),
        "expires_at": req.expires_at.unix_millis(),
    });
    if let Some(t) = &req.ticket {
        detail["ticket"] = json!(t);
    }
    let ev = request_event(ctx, AuditKind::RequestCreated, Some(actor), &req).detail(detail);
    insert_or_existing(ctx, req, ev).await
}

/// The shortest request id prefix accepted in place of a whole id.
pub const MIN_ID_PREFIX: usize = 8;

/// The request `text` names for `actor`: a whole id, or a unique prefix of at least
/// [`MIN_ID_PREFIX`] characters among the requests of the companies the actor may see.
/// A shorter or malformed prefix is `invalid_input`; one matching several requests is
/// `ambiguous_request`; one matching none the actor may see is `request_not_found`
/// (another company's requests do not exist for them).
pub async fn resolve_id(ctx: Ctx<'_>, actor: &Actor, text: &str) -> Result<RequestId, CoreError> {
    let text = text.trim();
    if let Ok(id) = RequestId::parse(text) {
        return Ok(id);
    }
    let prefix = text.to_ascii_lowercase();
    if prefix.len() < MIN_ID_PREFIX
        || prefix.len() >= 36
        || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    {
        return Err(CoreError::invalid(
            "id",
            format!(
                "a request id, or a prefix of at least {MIN_ID_PREFIX} of its characters (0-9, a-f, -)"
            ),
        ));
    }
    if actor.user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    let companies: Option<Vec<CompanyId>> = match &actor.user.entitlement {
        crate::model::Entitlement::Companies(set) => Some(set.iter().cloned().collect()),
        _ => None,
    };
    let found = ctx
        .store
        .request_ids_by_prefix(&prefix, companies.as_deref(), 2)
        .await?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(CoreError::not_found(Entity::Request, &prefix)),
        _ => Err(CoreError::conflict(ConflictReason::AmbiguousRequest {
            prefix,
        })),
    }
}
