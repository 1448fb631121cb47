//! Time-boxed grants (the rules are in [`crate::timed`]): the end a write asks for, checked
//! against the company's rule; the removal a verified timed grant schedules (and the earlier
//! removal of the same right it replaces); the checks a scheduled removal passes before it runs;
//! the one alert when it fails; the company's rule for ends.

use serde_json::json;

use super::Ctx;
use super::companies::load;
use crate::action::{OperationKind, digest_actions};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::CoreError;
use crate::model::{Actor, CompanyId, RequestId, Timestamp};
use crate::policy;
use crate::request::{ApprovalRequest, Cancellation, RequestFilter, RequestState, Transition};
use crate::timed::{self, GrantEndPolicy};
use crate::tools::ToolName;

/// The first retry of a failing scheduled removal waits this long; each further one doubles it.
pub const RETRY_BASE_SECS: i64 = 2;
/// The longest wait between two tries of a scheduled removal.
pub const RETRY_MAX_SECS: i64 = 120;

/// When a scheduled removal that failed transiently on claim `attempt` is tried again.
pub fn retry_at(ctx: Ctx<'_>, attempt: u32) -> Timestamp {
    let exp = attempt.saturating_sub(1).min(16);
    let wait = (RETRY_BASE_SECS << exp).min(RETRY_MAX_SECS);
    ctx.clock.now().plus_secs(wait)
}

/// The end a write to `company` asks for (`duration` or `until`), checked against the
/// company's rule. Removals carry no end.
pub async fn end_for_write(
    ctx: Ctx<'_>,
    company: &CompanyId,
    tool: ToolName,
    duration: Option<&str>,
    until: Option<&str>,
) -> Result<Option<Timestamp>, CoreError> {
    let now = ctx.clock.now();
    let end = timed::parse_end(duration, until, now)?;
    match tool.operation().map(|o| o.kind) {
        Some(OperationKind::Grant) => {
            let policy = ctx.store.grant_end_policy(company).await?;
            timed::check_policy(&policy, end, now)?;
            Ok(end)
        }
        _ if end.is_some() => Err(CoreError::invalid(
            "duration",
            "only a grant can have an end".to_owned(),
        )),
        _ => Ok(None),
    }
}

/// The id of the removal scheduled for `grant`: derived from the grant's id, so it can be made
/// only once (the store also holds one removal per grant).
pub fn removal_id(grant: RequestId) -> RequestId {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("exogate timed-grant end {grant}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&h[..16]);
    RequestId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

/// What [`super::execute`]'s final write carries besides the request's own transition.
pub(crate) struct Extra {
    pub more: Vec<NewAuditEvent>,
    pub also: Vec<(Transition, NewAuditEvent)>,
    pub insert: Option<(ApprovalRequest, NewAuditEvent)>,
}

/// The writes that go with `next`, the final state of an executed request: a timed grant that
/// took effect schedules its removal (replacing a removal of the same right still waiting); a
/// scheduled removal that failed raises `grant.end_failed`, once (this write happens once: it
/// is the fenced move to a final state).
pub(crate) async fn on_finish(
    ctx: Ctx<'_>,
    next: &ApprovalRequest,
) -> Result<Option<Extra>, CoreError> {
    let now = ctx.clock.now();
    if next.ends_grant.is_some() && next.state == RequestState::Failed {
        let ev = NewAuditEvent::system(now, AuditKind::GrantEndFailed)
            .company(&next.company)
            .request(next.id)
            .detail(json!({
                "grant": next.ends_grant.map(|g| g.to_string()),
                "summary": next.summary(), "attempt": next.attempt, "message": next.message,
            }));
        return Ok(Some(Extra {
            more: vec![ev],
            also: Vec::new(),
            insert: None,
        }));
    }
    if !matches!(
        next.state,
        RequestState::Succeeded | RequestState::AlreadyInState
    ) {
        return Ok(None);
    }
    let Some(removal) = timed::scheduled_removal(next, removal_id(next.id)) else {
        return Ok(None);
    };
    let end = removal.not_before.unwrap_or(now);
    let ev = NewAuditEvent::system(now, AuditKind::GrantEndScheduled)
        .company(&removal.company)
        .request(removal.id)
        .detail(json!({
            "grant": next.id.to_string(), "approved_by_approval_of": next.id.to_string(),
            "grant_digest": next.digest, "digest": removal.digest,
            "actions": crate::action::encode_actions(&removal.actions),
            "summary": removal.summary(), "not_before": end.unix_millis(),
        }));
    // A removal of the same right still waiting is replaced: only the newest end fires.
    let waiting = ctx
        .store
        .list_requests(&RequestFilter {
            companies: Some(vec![next.company.clone()]),
            states: Some(vec![RequestState::Approved]),
            limit: Some(1000),
            ..RequestFilter::default()
        })
        .await?;
    let mut also = Vec::new();
    for old in waiting {
        if old.ends_grant.is_none()
            || old.id == removal.id
            || !timed::same_right(&old, &removal.actions[0])
        {
            continue;
        }
        let mut cancelled = old.clone();
        cancelled.state = RequestState::Cancelled;
        cancelled.finished_at = Some(now);
        cancelled.message = Some(format!("replaced by the end of request {}", next.id));
        if let Some(d) = &next.decision {
            cancelled.cancellation = Some(Cancellation {
                by: d.by,
                by_name: d.by_name.clone(),
                at: now,
            });
        }
        let cev = NewAuditEvent::system(now, AuditKind::RequestCancelled)
            .company(&old.company)
            .request(old.id)
            .detail(json!({ "from": "approved", "replaced_by": removal.id.to_string(), "grant": next.id.to_string() }));
        also.push((
            Transition {
                next: cancelled,
                expected_state: RequestState::Approved,
                expected_attempt: None,
            },
            cev,
        ));
    }
    Ok(Some(Extra {
        more: Vec::new(),
        also,
        insert: Some((removal, ev)),
    }))
}

/// Checks a scheduled removal before it runs: its digest is its own and its decision's, it is
/// the removal of the timed grant it names (which took effect, whose approval of exactly that
/// grant and end is in the audit log), and the company is still connected to the same tenant.
/// The requester's and approver's roles are not checked again: a removal takes access away.
pub(crate) async fn precheck_removal(
    ctx: Ctx<'_>,
    req: &ApprovalRequest,
) -> Result<Result<(), (&'static str, String)>, CoreError> {
    let mismatch = |m: &str| Ok(Err(("digest_mismatch", m.to_owned())));
    let digest = digest_actions(&req.actions);
    let decided_on = req
        .decision
        .as_ref()
        .filter(|d| d.approved)
        .map(|d| d.digest.as_str());
    if digest != req.digest || decided_on != Some(digest.as_str()) {
        return mismatch("the scheduled removal's action does not match its digest");
    }
    let Some(grant_id) = req.ends_grant else {
        return mismatch("not a scheduled removal");
    };
    let Some(grant) = ctx.store.get_request(grant_id).await? else {
        return mismatch("the timed grant this removal ends does not exist");
    };
    if !timed::is_removal_of(req, &grant)
        || !matches!(
            grant.state,
            RequestState::Succeeded | RequestState::AlreadyInState
        )
        || digest_actions(&grant.actions) != grant.digest
        || !super::on_record::approved_on_record(ctx, &grant, &grant.digest).await?
    {
        return mismatch(
            "the removal is not the end of an approved timed grant on record in the audit log",
        );
    }
    let Some(company) = ctx.store.get_company(&req.company).await? else {
        return Ok(Err((
            "company_not_found",
            "the company no longer exists".to_owned(),
        )));
    };
    match &company.connection {
        Some(c) if c.tenant_id == req.tenant => Ok(Ok(())),
        Some(_) => Ok(Err((
            "company_not_connected",
            "the company is now connected to another tenant".to_owned(),
        ))),
        None => Ok(Err((
            "company_not_connected",
            "the company was disconnected".to_owned(),
        ))),
    }
}

/// The removals scheduled and not yet run in `company` (for showing when grants end).
pub async fn scheduled_removals(
    ctx: Ctx<'_>,
    company: &CompanyId,
) -> Result<Vec<ApprovalRequest>, CoreError> {
    let waiting = ctx
        .store
        .list_requests(&RequestFilter {
            companies: Some(vec![company.clone()]),
            states: Some(vec![RequestState::Approved, RequestState::Executing]),
            limit: Some(1000),
            ..RequestFilter::default()
        })
        .await?;
    Ok(waiting
        .into_iter()
        .filter(|r| r.ends_grant.is_some())
        .collect())
}

/// When the right `(mailbox, trustee, permission)` ends, from `removals` (as
/// [`scheduled_removals`] answers).
pub fn end_of(
    removals: &[ApprovalRequest],
    mailbox_object_id: &str,
    trustee_object_id: &str,
    permission: crate::action::Permission,
) -> Option<Timestamp> {
    removals
        .iter()
        .filter(|r| {
            r.actions.iter().any(|a| {
                a.mailbox.object_id.eq_ignore_ascii_case(mailbox_object_id)
                    && a.trustee.object_id.eq_ignore_ascii_case(trustee_object_id)
                    && a.operation.permission == permission
            })
        })
        .filter_map(|r| r.not_before)
        .min()
}

/// The company's rule for grant ends (anyone who may see the company).
pub async fn grant_end_policy(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
) -> Result<GrantEndPolicy, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_view(&actor.user, company).map_err(CoreError::forbidden)?;
    load(ctx, company).await?;
    Ok(ctx.store.grant_end_policy(company).await?)
}

/// Sets the company's rule for grant ends (admin, in person, like the separate-approver rule).
/// Audited with the old and new rule; setting the rule it already has records nothing.
pub async fn set_grant_end_policy(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    value: GrantEndPolicy,
) -> Result<GrantEndPolicy, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_set_separate_approver(actor, company).map_err(CoreError::forbidden)?;
    load(ctx, company).await?;
    timed::check_new_policy(&value)?;
    let before = ctx.store.grant_end_policy(company).await?;
    if before == value {
        return Ok(before);
    }
    let show =
        |p: &GrantEndPolicy| json!({ "end_required": p.end_required, "max_secs": p.max_secs });
    let ev = NewAuditEvent::new(
        ctx.clock.now(),
        AuditKind::CompanySettingsChanged,
        Some(actor),
    )
    .company(company)
    .detail(json!({ "setting": "grant_ends", "old": show(&before), "new": show(&value) }));
    ctx.store.set_grant_end_policy(company, &value, ev).await?;
    Ok(value)
}
