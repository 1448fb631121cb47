//! Audit log: list and verify.

use super::Ctx;
use crate::audit::{AuditEvent, ChainBreak, ChainVerifier, VerifyReport};
use crate::error::{CoreError, Denial};
use crate::model::{Actor, CompanyId, RequestId, Role};
use crate::policy;

/// The outcome of verifying the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    Intact(VerifyReport),
    Broken(ChainBreak),
}

/// Verifies the whole chain, paging through the store.
pub async fn verify(ctx: Ctx<'_>) -> Result<Verification, CoreError> {
    let mut v = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = ctx.store.list_audit(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(Verification::Broken(b));
            }
        }
    }
    let head = ctx.store.audit_head().await?;
    Ok(
        match v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str()))) {
            Ok(r) => Verification::Intact(r),
            Err(b) => Verification::Broken(b),
        },
    )
}

/// Newest events first. For one company or request: anyone entitled to it. Everything: managers
/// and admins with entitlement to all companies.
pub async fn list(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: Option<&CompanyId>,
    request: Option<RequestId>,
    limit: u32,
) -> Result<Vec<AuditEvent>, CoreError> {
    let limit = limit.clamp(1, 1000);
    if let Some(r) = request {
        let req = super::requests::get_request(ctx, actor, r).await?;
        return Ok(ctx
            .store
            .recent_audit(Some(&req.company), Some(r), limit)
            .await?);
    }
    if let Some(c) = company {
        policy::can_view(&actor.user, c).map_err(CoreError::forbidden)?;
        return Ok(ctx.store.recent_audit(Some(c), None, limit).await?);
    }
    if actor.user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    if actor.user.entitlement != crate::model::Entitlement::All {
        return Err(CoreError::forbidden(Denial::NotEntitled));
    }
    if actor.user.role < Role::Manager {
        return Err(CoreError::forbidden(Denial::RoleTooLow {
            needed: Role::Manager,
        }));
    }
    Ok(ctx.store.recent_audit(None, None, limit).await?)
}

/// The outcome of verifying the chain against signed checkpoints (whose signatures the caller
/// has checked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckedVerification {
    /// The chain is intact and agrees with every checkpoint (`checkpoints` of them).
    Intact {
        report: VerifyReport,
        checkpoints: usize,
    },
    /// The chain itself is broken.
    Broken(ChainBreak),
    /// The chain verifies on its own but contradicts a checkpoint: it was rewritten.
    Contradicted(crate::checkpoint::Contradicted),
}

/// Verifies the whole chain and compares it with `checkpoints`, paging through the store. The
/// first problem in `seq` order is reported.
pub async fn verify_with_checkpoints(
    ctx: Ctx<'_>,
    checkpoints: Vec<crate::checkpoint::Checkpoint>,
) -> Result<CheckedVerification, CoreError> {
    let mut v = ChainVerifier::default();
    let mut m = crate::checkpoint::CheckpointMatcher::new(checkpoints);
    let mut after = 0;
    loop {
        let page = ctx.store.list_audit(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(CheckedVerification::Broken(b));
            }
            if let Err(c) = m.push(e) {
                return Ok(CheckedVerification::Contradicted(c));
            }
        }
    }
    let head = ctx.store.audit_head().await?;
    let report = match v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str()))) {
        Ok(r) => r,
        Err(b) => return Ok(CheckedVerification::Broken(b)),
    };
    Ok(match m.finish() {
        Ok(checkpoints) => CheckedVerification::Intact {
            report,
            checkpoints,
        },
        Err(c) => CheckedVerification::Contradicted(c),
    })
}
