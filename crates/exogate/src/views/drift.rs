//! Drift findings: rights added or removed outside exogate, as sweeps found them.

use exogate_core::drift::DriftFinding;
use serde::Serialize;

use super::{IdentityView, InventoryRowView, InventoryTrusteeView, shown, ts};

/// Who acknowledged a finding, when and why (the reason sanitized like tenant text).
#[derive(Clone, Debug, Serialize)]
pub struct DriftAckView {
    pub by: String,
    pub at: String,
    pub reason: String,
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct DriftFindingView {
    pub id: String,
    pub company: String,
    pub mailbox: IdentityView,
    /// `full_access`, `send_as` or `send_on_behalf`.
    pub right: &'static str,
    pub trustee: InventoryTrusteeView,
    /// `added` or `removed` (outside exogate).
    pub change: &'static str,
    /// `open`, `acknowledged` or `revert_requested`.
    pub state: &'static str,
    pub first_seen_at: String,
    pub last_seen_at: String,
    /// When exogate last saw the earlier state (the previous sweep).
    pub earlier_seen_at: Option<String>,
    pub acknowledged: Option<DriftAckView>,
    /// The approval request that reverts it.
    pub revert_request: Option<String>,
}

impl DriftFindingView {
    pub fn of(f: &DriftFinding) -> Self {
        let row = InventoryRowView::of(&f.row);
        Self {
            id: f.id.to_string(),
            company: f.row.company.to_string(),
            mailbox: row.mailbox,
            right: row.right,
            trustee: row.trustee,
            change: f.change.as_str(),
            state: f.state.as_str(),
            first_seen_at: ts(f.first_seen_at),
            last_seen_at: ts(f.last_seen_at),
            earlier_seen_at: f.earlier_seen_at.map(ts),
            acknowledged: f.acknowledged.as_ref().map(|a| DriftAckView {
                by: shown(&a.by_name),
                at: ts(a.at),
                reason: shown(&a.reason),
            }),
            revert_request: f.revert_request.map(|r| r.to_string()),
        }
    }
}
