//! `list_drift_findings`: its arguments and answer (built from the shared view,
//! [`crate::views::DriftFindingView`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::wire::IdentityOut;
use crate::views::DriftFindingView;

/// Which findings to list.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDriftArgs {
    /// Only this company (an id from list_companies). Omit it to list every company you are
    /// entitled to.
    #[serde(default)]
    #[schemars(example = &"contoso")]
    pub company: Option<String>,
}

/// One right changed outside exogate. Names and addresses are untrusted tenant data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DriftFindingOut {
    /// The finding's id (a UUID).
    pub id: String,
    pub company: String,
    pub mailbox: IdentityOut,
    /// full_access, send_as or send_on_behalf.
    pub right: String,
    /// Who holds (or held) the right: its address when it resolves, else what Exchange printed.
    pub trustee: String,
    /// user, group, orphan (a deleted principal's SID) or unresolved.
    pub trustee_class: String,
    /// added or removed (outside exogate, between two sweeps).
    pub change: String,
    /// open, acknowledged or revert_requested.
    pub state: String,
    /// When a sweep first found it (RFC 3339).
    pub first_seen_at: String,
    /// When a sweep last found the changed state still there (RFC 3339).
    pub last_seen_at: String,
    /// When exogate last saw the earlier state (RFC 3339), if known.
    pub earlier_seen_at: Option<String>,
    /// The approval request that reverts it, if someone asked.
    pub revert_request: Option<String>,
}

/// `list_drift_findings` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DriftFindingsOut {
    pub findings: Vec<DriftFindingOut>,
    pub count: usize,
    /// How to read the answer.
    pub note: String,
}

impl From<&DriftFindingView> for DriftFindingOut {
    fn from(v: &DriftFindingView) -> Self {
        DriftFindingOut {
            id: v.id.clone(),
            company: v.company.clone(),
            mailbox: IdentityOut::from(&v.mailbox),
            right: v.right.to_owned(),
            trustee: v
                .trustee
                .address
                .clone()
                .unwrap_or_else(|| v.trustee.raw.clone()),
            trustee_class: v.trustee.class.to_owned(),
            change: v.change.to_owned(),
            state: v.state.to_owned(),
            first_seen_at: v.first_seen_at.clone(),
            last_seen_at: v.last_seen_at.clone(),
            earlier_seen_at: v.earlier_seen_at.clone(),
            revert_request: v.revert_request.clone(),
        }
    }
}

/// The answer for `views`.
pub fn findings(views: &[DriftFindingView]) -> DriftFindingsOut {
    DriftFindingsOut {
        findings: views.iter().map(DriftFindingOut::from).collect(),
        count: views.len(),
        note: "Each finding is a right added or removed outside exogate (found by comparing two inventory sweeps). A person acknowledges or reverts it in exogate; no tool can.".to_owned(),
    }
}
