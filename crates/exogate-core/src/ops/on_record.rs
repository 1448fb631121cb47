//! What the worker and the scheduled removals both check before they touch Exchange: that a
//! request's approval, on exactly the digest about to run, is in the hash-chained audit log.
//! Its own module, so `execute` and `timed` (which call each other's rules) do not also share
//! this through each other.

use super::Ctx;
use crate::audit::AuditKind;
use crate::error::CoreError;
use crate::request::ApprovalRequest;

/// Whether the approval of `req` on `digest` is in the audit log, its event hash-checked.
pub(crate) async fn approved_on_record(
    ctx: Ctx<'_>,
    req: &ApprovalRequest,
    digest: &str,
) -> Result<bool, CoreError> {
    let trail = ctx
        .store
        .recent_audit(Some(&req.company), Some(req.id), 1000)
        .await?;
    Ok(trail.iter().any(|e| {
        e.event.kind == AuditKind::RequestApproved.as_str()
            && crate::audit::chain_hash(&e.prev_hash, e.seq, &e.event) == e.hash
            && serde_json::from_str::<serde_json::Value>(&e.event.detail)
                .ok()
                .and_then(|v| v.get("digest").and_then(|d| d.as_str().map(str::to_owned)))
                .as_deref()
                == Some(digest)
    }))
}
