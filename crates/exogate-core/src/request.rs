//! Approval requests and their state machine.
//!
//! ```text
//! pending ─┬─> approved ──> executing ─┬─> succeeded | already_in_state | failed
//!          │       │            │      └─> approved   (transient Microsoft error: retried later)
//!          │       └─> cancelled└─> executing (lease expired: taken over with attempt + 1)
//!          └─> rejected | expired | cancelled
//! ```
//! A request holds one or more actions (today one; offboarding will put several in one request)
//! and one digest over all of them; results are kept per action.

use crate::action::{CanonicalAction, Presence};
use crate::model::{CompanyId, RequestId, Requester, TenantId, Timestamp, UserId, UserName};
use crate::tools::{RiskLevel, ToolName};

/// Default lifetime of a pending request.
pub const DEFAULT_REQUEST_TTL_SECS: i64 = 24 * 60 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestState {
    Pending,
    Approved,
    Executing,
    Succeeded,
    AlreadyInState,
    Failed,
    Rejected,
    Expired,
    Cancelled,
}

impl RequestState {
    pub const ALL: [RequestState; 9] = [
        RequestState::Pending,
        RequestState::Approved,
        RequestState::Executing,
        RequestState::Succeeded,
        RequestState::AlreadyInState,
        RequestState::Failed,
        RequestState::Rejected,
        RequestState::Expired,
        RequestState::Cancelled,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Approved => "approved",
            RequestState::Executing => "executing",
            RequestState::Succeeded => "succeeded",
            RequestState::AlreadyInState => "already_in_state",
            RequestState::Failed => "failed",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
            RequestState::Cancelled => "cancelled",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RequestState::Succeeded
                | RequestState::AlreadyInState
                | RequestState::Failed
                | RequestState::Rejected
                | RequestState::Expired
                | RequestState::Cancelled
        )
    }
    /// Whether `self → to` is a transition of the state machine.
    pub fn can_become(self, to: RequestState) -> bool {
        use RequestState::*;
        matches!(
            (self, to),
            (Pending, Approved | Rejected | Expired | Cancelled)
                | (Approved, Executing | Cancelled)
                | (
                    Executing,
                    Succeeded | AlreadyInState | Failed | Approved | Executing
                )
        )
    }
}

/// A human decision on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub by: UserId,
    pub by_name: UserName,
    pub at: Timestamp,
    pub approved: bool,
    pub reason: Option<String>,
    /// The digest the decision was made on (equals the request's digest).
    pub digest: String,
}

/// Who cancelled a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancellation {
    pub by: UserId,
    pub by_name: UserName,
    pub at: Timestamp,
}

/// A worker's hold on an executing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub worker: String,
    pub expires_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpOutcome {
    /// exogate changed Exchange and read the change back.
    Changed,
    /// Exchange already had the wanted state; nothing was changed.
    AlreadyInState,
    /// The change was not made (or could not be confirmed).
    Failed,
}

impl OpOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            OpOutcome::Changed => "changed",
            OpOutcome::AlreadyInState => "already_in_state",
            OpOutcome::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            OpOutcome::Changed,
            OpOutcome::AlreadyInState,
            OpOutcome::Failed,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// The result of one action of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationResult {
    pub outcome: OpOutcome,
    pub before: Option<Presence>,
    pub after: Option<Presence>,
    /// The read-back confirmed the wanted state.
    pub verified: bool,
    pub message: String,
}

/// An approval request. Fields other than those the state machine changes are frozen at creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRequest {
    pub id: RequestId,
    pub company: CompanyId,
    pub tenant: TenantId,
    pub tool: ToolName,
    pub risk: RiskLevel,
    pub requester: Requester,
    pub actions: Vec<CanonicalAction>,
    /// Lowercase hex SHA-256 of the canonical encoding of `actions`, taken when frozen.
    pub digest: String,
    pub state: RequestState,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub decision: Option<Decision>,
    pub cancellation: Option<Cancellation>,
    /// Number of execution claims so far (the fencing token of the current claim).
    pub attempt: u32,
    pub lease: Option<Lease>,
    pub results: Vec<OperationResult>,
    pub finished_at: Option<Timestamp>,
    /// The last execution message (error or summary).
    pub message: Option<String>,
    /// The succeeded request this one reverts.
    pub revert_of: Option<RequestId>,
    // (timed-grants)
    /// Not claimed for execution before this time (a timed grant's scheduled removal; the
    /// backoff after a transient failure).
    pub not_before: Option<Timestamp>,
    /// This request is the scheduled removal of that timed grant: created by exogate when the
    /// grant was verified, approved by the grant's approval.
    pub ends_grant: Option<RequestId>,
    // (cli-requests)
    /// The PSA ticket the change belongs to ([`crate::ops::requests::parse_ticket`]): shown to
    /// the approver, not part of the digest.
    pub ticket: Option<String>,
}

impl ApprovalRequest {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.state == RequestState::Pending && now >= self.expires_at
    }
    /// A short summary of all actions.
    pub fn summary(&self) -> String {
        self.actions
            .iter()
            .map(CanonicalAction::summary)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A compare-and-set update of a request: the store writes the mutable fields of `next` only if
/// the stored row still has `expected_state` (and `expected_attempt`, when given), in one
/// transaction with the audit event.
#[derive(Clone, Debug)]
pub struct Transition {
    pub next: ApprovalRequest,
    pub expected_state: RequestState,
    pub expected_attempt: Option<u32>,
}

/// A request a worker claimed for execution (state `executing`, its `attempt` is the fence).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub request: ApprovalRequest,
    pub worker: String,
    pub attempt: u32,
}

/// Filter for listing requests.
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// Only these companies (None: all). Ops pass the actor's entitlement here.
    pub companies: Option<Vec<CompanyId>>,
    pub states: Option<Vec<RequestState>>,
    pub requester: Option<UserId>,
    /// Newest first; at most this many (default 100, max 1000).
    pub limit: Option<u32>,
}
