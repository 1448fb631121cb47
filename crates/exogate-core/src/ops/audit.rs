//! Audit log: list and verify.

use super::Ctx;
use crate::audit::{AuditEvent, AuditFilter, AuditKind, ChainBreak, ChainVerifier, VerifyReport};
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
    Ok(
        match walk(ctx, |_| Ok::<(), std::convert::Infallible>(())).await? {
            Ok(r) => Verification::Intact(r),
            Err(Walked::Broken(b)) => Verification::Broken(b),
            Err(Walked::Stopped(never)) => match never {},
        },
    )
}

/// Why a walk over the chain stopped early.
enum Walked<E> {
    /// The chain itself is broken.
    Broken(ChainBreak),
    /// The per-event check refused an event of an intact chain so far.
    Stopped(E),
}

/// Walks the whole chain once, paging through the store: each event goes through the chain
/// verifier, then through `check`; the head must match the last event.
async fn walk<E>(
    ctx: Ctx<'_>,
    mut check: impl FnMut(&AuditEvent) -> Result<(), E>,
) -> Result<Result<VerifyReport, Walked<E>>, CoreError> {
    let mut v = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = ctx.store.list_audit(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(Err(Walked::Broken(b)));
            }
            if let Err(x) = check(e) {
                return Ok(Err(Walked::Stopped(x)));
            }
        }
    }
    let head = ctx.store.audit_head().await?;
    Ok(v.finish(head.as_ref().map(|(s, h)| (*s, h.as_str())))
        .map_err(Walked::Broken))
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
    let filter = AuditFilter {
        company: company.cloned(),
        request,
        limit,
        ..AuditFilter::default()
    };
    Ok(search(ctx, actor, filter).await?.events)
}

/// One page of a filtered audit listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditPage {
    /// Newest first.
    pub events: Vec<AuditEvent>,
    /// When more events match: the `before_seq` that continues the listing.
    pub next: Option<i64>,
}

/// The events matching `filter` (run in the store, before the limit), newest first, with a
/// cursor for the next page. Who may list what is as for [`list`]: a request needs the request
/// to be visible, a company needs entitlement to it, and everything needs a manager entitled
/// to all companies. `limit` is clamped to 1..=1000.
pub async fn search(
    ctx: Ctx<'_>,
    actor: &Actor,
    mut filter: AuditFilter,
) -> Result<AuditPage, CoreError> {
    let limit = filter.limit.clamp(1, 1000);
    if let Some(kind) = &filter.kind
        && AuditKind::parse(kind).is_none()
    {
        return Err(CoreError::invalid(
            "kind",
            format!("`{}` is not an audit event kind", kind.escape_debug()),
        ));
    }
    if let Some(r) = filter.request {
        let req = super::requests::get_request(ctx, actor, r).await?;
        if filter.company.is_none() {
            filter.company = Some(req.company);
        }
    } else if let Some(c) = &filter.company {
        policy::can_view(&actor.user, c).map_err(CoreError::forbidden)?;
    } else {
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
    }
    filter.limit = limit + 1;
    let mut events = ctx.store.search_audit(&filter).await?;
    let next = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(AuditPage { events, next })
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
    let mut m = crate::checkpoint::CheckpointMatcher::new(checkpoints);
    let report = match walk(ctx, |e| m.push(e)).await? {
        Ok(r) => r,
        Err(Walked::Broken(b)) => return Ok(CheckedVerification::Broken(b)),
        Err(Walked::Stopped(c)) => return Ok(CheckedVerification::Contradicted(c)),
    };
    Ok(match m.finish() {
        Ok(checkpoints) => CheckedVerification::Intact {
            report,
            checkpoints,
        },
        Err(c) => CheckedVerification::Contradicted(c),
    })
}

/// Whether `user` may verify the audit chain: managers and above.
pub fn may_verify(user: &crate::model::User) -> Result<(), Denial> {
    if user.role < Role::Manager {
        return Err(Denial::RoleTooLow {
            needed: Role::Manager,
        });
    }
    Ok(())
}

/// Who asks for the chain to be verified: a person (see [`may_verify`]), or the local operator
/// (the CLI on the server, with the database at hand).
#[derive(Clone, Copy, Debug)]
pub enum Verifier<'a> {
    Person(&'a Actor),
    LocalOperator,
}

impl Verifier<'_> {
    fn check(self) -> Result<(), CoreError> {
        match self {
            Verifier::Person(a) => may_verify(&a.user).map_err(CoreError::forbidden),
            Verifier::LocalOperator => Ok(()),
        }
    }
}

/// [`verify`] for `who`: a person below manager gets `forbidden` and nothing is walked.
pub async fn verify_as(ctx: Ctx<'_>, who: Verifier<'_>) -> Result<Verification, CoreError> {
    who.check()?;
    verify(ctx).await
}

/// [`verify_with_checkpoints`] for `who`, under the same rule as [`verify_as`].
pub async fn verify_with_checkpoints_as(
    ctx: Ctx<'_>,
    who: Verifier<'_>,
    checkpoints: Vec<crate::checkpoint::Checkpoint>,
) -> Result<CheckedVerification, CoreError> {
    who.check()?;
    verify_with_checkpoints(ctx, checkpoints).await
}
