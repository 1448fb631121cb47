//! Execution of approved requests by workers: claim with a lease, re-check everything, run
//! exactly the frozen actions, read back, record. A worker whose lease was taken over cannot
//! complete: every write it makes is fenced on its attempt number.

use serde_json::json;

use super::Ctx;
use crate::action::{Presence, digest_actions};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{ConflictReason, CoreError};
use crate::model::Role;
use crate::policy;
use crate::ports::{ApplyOutcome, MsError};
use crate::request::{
    ApprovalRequest, Claim, Lease, OpOutcome, OperationResult, RequestState, Transition,
};

/// Claims the next approved request (or one whose lease expired) for `worker`.
pub async fn claim_next(ctx: Ctx<'_>, worker: &str) -> Result<Option<Claim>, CoreError> {
    let now = ctx.clock.now();
    Ok(ctx
        .store
        .claim_next(worker, now, now.plus_secs(ctx.settings.lease_secs))
        .await?)
}

/// Claims and executes at most one request. Returns the request in its new state.
pub async fn run_once(ctx: Ctx<'_>, worker: &str) -> Result<Option<ApprovalRequest>, CoreError> {
    let Some(claim) = claim_next(ctx, worker).await? else {
        return Ok(None);
    };
    execute(ctx, &claim).await.map(Some)
}

fn event(ctx: Ctx<'_>, kind: AuditKind, req: &ApprovalRequest, attempt: u32) -> NewAuditEvent {
    NewAuditEvent::system(ctx.clock.now(), kind)
        .company(&req.company)
        .request(req.id)
        .detail(json!({ "attempt": attempt }))
}

/// Fenced final write. `Err(lease_lost)` when another worker took the request over. A timed
/// grant that took effect schedules its removal in the same transaction; a scheduled removal
/// that failed raises its one `grant.end_failed` alert in it (see [`super::timed`]).
async fn finish(
    ctx: Ctx<'_>,
    claim: &Claim,
    next: ApprovalRequest,
    ev: NewAuditEvent,
) -> Result<ApprovalRequest, CoreError> {
    let t = Transition {
        next: next.clone(),
        expected_state: RequestState::Executing,
        expected_attempt: Some(claim.attempt),
    };
    // (timed-grants)
    let done = match super::timed::on_finish(ctx, &next).await? {
        Some(extra) => {
            ctx.store
                .transition_with(&t, ev, extra.more, extra.also, extra.insert)
                .await?
        }
        None => ctx.store.transition(&t, ev).await?,
    };
    if !done {
        return Err(CoreError::conflict(ConflictReason::LeaseLost));
    }
    Ok(next)
}

/// Refuses to run: marks the request failed with `reason` (fenced) and audits why.
async fn refuse(
    ctx: Ctx<'_>,
    claim: &Claim,
    code: &str,
    message: String,
) -> Result<ApprovalRequest, CoreError> {
    let req = &claim.request;
    let mut next = req.clone();
    next.state = RequestState::Failed;
    next.lease = None;
    next.finished_at = Some(ctx.clock.now());
    next.message = Some(message.clone());
    let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::ExecutionRefused)
        .company(&req.company)
        .request(req.id)
        .detail(json!({ "attempt": claim.attempt, "code": code, "message": message }));
    finish(ctx, claim, next, ev).await
}

/// Checks that still hold at execution time; returns the refusal code and message otherwise.
async fn precheck(
    ctx: Ctx<'_>,
    req: &ApprovalRequest,
) -> Result<Result<(), (&'static str, String)>, CoreError> {
    let digest = digest_actions(&req.actions);
    let decided_on = req
        .decision
        .as_ref()
        .filter(|d| d.approved)
        .map(|d| d.digest.as_str());
    if digest != req.digest || decided_on != Some(digest.as_str()) {
        return Ok(Err((
            "digest_mismatch",
            ConflictReason::DigestMismatch.to_string(),
        )));
    }
    if req
        .actions
        .iter()
        .any(|a| a.tenant != req.tenant || a.company != req.company)
    {
        return Ok(Err((
            "digest_mismatch",
            "an action names another company or tenant than its request".to_owned(),
        )));
    }
    // Defence in depth: the approval's own audit event (hash-checked) must name this digest, so
    // rewriting the request row alone, even consistently, does not pass.
    if !super::on_record::approved_on_record(ctx, req, &digest).await? {
        return Ok(Err((
            "digest_mismatch",
            "no intact approval of this exact action is on record in the audit log".to_owned(),
        )));
    }
    if let Some(d) = &req.decision
        && ctx.clock.now() > d.at.plus_secs(ctx.settings.approval_ttl_secs)
    {
        return Ok(Err((
            "approval_expired",
            "the approval expired before the change could run; ask again".to_owned(),
        )));
    }
    let Some(company) = ctx.store.get_company(&req.company).await? else {
        return Ok(Err((
            "company_not_found",
            "the company no longer exists".to_owned(),
        )));
    };
    match &company.connection {
        Some(c) if c.tenant_id == req.tenant => {}
        Some(_) => {
            return Ok(Err((
                "company_not_connected",
                "the company is now connected to another tenant".to_owned(),
            )));
        }
        None => {
            return Ok(Err((
                "company_not_connected",
                "the company was disconnected".to_owned(),
            )));
        }
    }
    let requester = ctx.store.get_user(req.requester.user).await?;
    match requester
        .as_ref()
        .map(|u| policy::can_request(u, &req.company))
    {
        Some(Ok(())) => {}
        Some(Err(d)) => {
            return Ok(Err((
                d.code(),
                format!("the requester may no longer ask for this: {d}"),
            )));
        }
        None => {
            return Ok(Err((
                "user_not_found",
                "the requester no longer exists".to_owned(),
            )));
        }
    }
    let Some(decision) = &req.decision else {
        return Ok(Err((
            "not_approved",
            "the request has no approval".to_owned(),
        )));
    };
    let approver = ctx.store.get_user(decision.by).await?;
    let needed: Role = policy::role_to_approve(req.risk);
    match approver {
        Some(u) => {
            if let Err(d) = policy::can_view(&u, &req.company) {
                return Ok(Err((
                    d.code(),
                    format!("the approver may no longer approve this: {d}"),
                )));
            }
            if u.role < needed {
                return Ok(Err((
                    "role_too_low",
                    format!("the approver no longer holds the `{needed}` role"),
                )));
            }
            if company.separate_approver && u.id == req.requester.user {
                return Ok(Err((
                    "own_request",
                    "the approver is the requester and the company requires a separate approver"
                        .to_owned(),
                )));
            }
        }
        None => {
            return Ok(Err((
                "user_not_found",
                "the approver no longer exists".to_owned(),
            )));
        }
    }
    Ok(Ok(()))
}

enum Step {
    Done(OperationResult),
    /// Transient Microsoft failure: try again later.
    Retry(String),
}

async fn run_action(ctx: Ctx<'_>, req: &ApprovalRequest, idx: usize) -> Step {
    let action = &req.actions[idx];
    let desired = action.operation.desired();
    // Throttling, outages and role propagation pass; anything else is permanent for this request.
    let transient = |e: &MsError| {
        matches!(
            e,
            MsError::Unavailable { .. }
                | MsError::NotConfigured {
                    state: crate::model::ExchangeAdminState::Propagating,
                    ..
                }
        )
    };
    let failed = |before: Option<Presence>, msg: String| {
        Step::Done(OperationResult {
            outcome: OpOutcome::Failed,
            before,
            after: None,
            verified: false,
            message: msg,
        })
    };
    let before = match ctx.ms.current_state(req.tenant, action).await {
        Ok(p) => p,
        Err(e) if transient(&e) => return Step::Retry(e.to_string()),
        Err(e) => return failed(None, e.to_string()),
    };
    if before == desired {
        return Step::Done(OperationResult {
            outcome: OpOutcome::AlreadyInState,
            before: Some(before),
            after: Some(before),
            verified: true,
            message: format!("already {}: nothing to change", desired.as_str()),
        });
    }
    let applied = match ctx.ms.apply(req.tenant, action).await {
        Ok(o) => o,
        Err(e) if transient(&e) => return Step::Retry(e.to_string()),
        Err(e) => return failed(Some(before), e.to_string()),
    };
    match ctx.ms.verify(req.tenant, action).await {
        Ok(true) => {
            let outcome = match applied {
                ApplyOutcome::Changed => OpOutcome::Changed,
                ApplyOutcome::AlreadyInState => OpOutcome::AlreadyInState,
            };
            Step::Done(OperationResult { outcome, before: Some(before), after: Some(desired), verified: true, message: action.summary() })
        }
        Ok(false) => Step::Done(OperationResult {
            outcome: OpOutcome::Failed,
            before: Some(before),
            after: Some(before),
            verified: false,
            message: "Exchange accepted the change but reading it back did not show it within the replication window".to_owned(),
        }),
        Err(e) if transient(&e) => Step::Retry(format!("read-back failed: {e}")),
        Err(e) => failed(Some(before), format!("read-back failed: {e}")),
    }
}

/// Executes a claimed request. Returns the request in its final (or retry) state; errors with
/// `lease_lost` if another worker took over, or `digest_mismatch` (after marking it failed).
pub async fn execute(ctx: Ctx<'_>, claim: &Claim) -> Result<ApprovalRequest, CoreError> {
    let req = &claim.request;
    if req.state != RequestState::Executing || req.attempt != claim.attempt {
        return Err(CoreError::conflict(ConflictReason::LeaseLost));
    }
    // (timed-grants) A scheduled removal is checked against the approval of its grant.
    let checked = if req.ends_grant.is_some() {
        super::timed::precheck_removal(ctx, req).await?
    } else {
        precheck(ctx, req).await?
    };
    if let Err((code, message)) = checked {
        let refused = refuse(ctx, claim, code, message).await?;
        if code == "digest_mismatch" {
            return Err(CoreError::conflict(ConflictReason::DigestMismatch));
        }
        return Ok(refused);
    }
    let mut results = Vec::with_capacity(req.actions.len());
    for (idx, action) in req.actions.iter().enumerate() {
        // Write-ahead and fenced: the attempt is on record, and the lease still ours and
        // extended, before Microsoft is called. If another worker took over, or the audit write
        // fails, nothing is called.
        let ev = event(ctx, AuditKind::ExecutionAttempt, req, claim.attempt)
            .detail(json!({ "attempt": claim.attempt, "index": idx, "worker": claim.worker, "action": action.summary() }));
        let mut beat = req.clone();
        beat.lease = Some(Lease {
            worker: claim.worker.clone(),
            expires_at: ctx.clock.now().plus_secs(ctx.settings.lease_secs),
        });
        beat.results.clone_from(&results);
        let t = Transition {
            next: beat,
            expected_state: RequestState::Executing,
            expected_attempt: Some(claim.attempt),
        };
        if !ctx.store.transition(&t, ev).await? {
            return Err(CoreError::conflict(ConflictReason::LeaseLost));
        }
        match run_action(ctx, req, idx).await {
            Step::Done(r) => {
                let ev = event(ctx, AuditKind::ExecutionStep, req, claim.attempt).detail(json!({
                    "attempt": claim.attempt, "index": idx, "outcome": r.outcome.as_str(),
                    "before": r.before.map(Presence::as_str), "after": r.after.map(Presence::as_str),
                    "verified": r.verified, "message": r.message,
                }));
                ctx.store.append_audit(ev).await?;
                // Offboarding and an access review's removals run every removal on its own: one
                // failure does not stop the rest.
                let stop = r.outcome == OpOutcome::Failed
                    && !matches!(
                        req.tool,
                        crate::tools::ToolName::OffboardUser
                            | crate::tools::ToolName::AccessReviewRemovals
                    );
                results.push(r);
                if stop {
                    break;
                }
            }
            Step::Retry(msg) => {
                let mut next = req.clone();
                let give_up = claim.attempt >= ctx.settings.max_attempts;
                next.lease = None;
                next.message = Some(msg.clone());
                next.results = results;
                let kind = if give_up {
                    next.state = RequestState::Failed;
                    next.finished_at = Some(ctx.clock.now());
                    AuditKind::ExecutionFinished
                } else {
                    next.state = RequestState::Approved;
                    // (timed-grants) A scheduled removal backs off before its next try.
                    if req.ends_grant.is_some() {
                        next.not_before = Some(super::timed::retry_at(ctx, claim.attempt));
                    }
                    AuditKind::ExecutionRetry
                };
                let ev = event(ctx, kind, req, claim.attempt).detail(json!({
                    "attempt": claim.attempt, "state": next.state.as_str(), "message": msg,
                }));
                return finish(ctx, claim, next, ev).await;
            }
        }
    }
    let state = if results.iter().any(|r| r.outcome == OpOutcome::Failed) {
        RequestState::Failed
    } else if results
        .iter()
        .all(|r| r.outcome == OpOutcome::AlreadyInState)
    {
        RequestState::AlreadyInState
    } else {
        RequestState::Succeeded
    };
    let mut next = req.clone();
    next.state = state;
    next.lease = None;
    next.finished_at = Some(ctx.clock.now());
    next.message = results
        .iter()
        .find(|r| r.outcome == OpOutcome::Failed)
        .map(|r| r.message.clone());
    next.results = results;
    let ev = event(ctx, AuditKind::ExecutionFinished, req, claim.attempt).detail(json!({
        "attempt": claim.attempt, "state": state.as_str(), "message": next.message,
    }));
    finish(ctx, claim, next, ev).await
}
