//! Drift: delegation changed outside exogate. Each inventory sweep compares its generation with
//! the previous one; every right (mailbox, right, trustee) added or removed that no executed
//! exogate request explains becomes a [`DriftFinding`]. A finding is acknowledged (with a
//! reason) or reverted (an approval request with the inverse action, through the normal gate).

use std::fmt;

use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use crate::error::CoreError;
use crate::inventory::InventoryRow;
use crate::model::{RequestId, Timestamp, UserId, clip};

/// A finding's id: derived from what was found (company, right, direction and the generation
/// that first showed it), so the same observation recorded twice is one finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriftId(Uuid);

impl DriftId {
    pub const fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
    /// Parses the hyphenated form (any case).
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| CoreError::invalid("finding_id", format!("`{}` is not a UUID", clip(s))))
    }
    /// The id of the finding `change` of `row`, first seen by sweep `generation`.
    pub fn derive(row: &InventoryRow, change: DriftChange, generation: i64) -> Self {
        let (mailbox, trustee, right) = row.key();
        let mut h = Sha256::new();
        for part in [
            row.company.as_str(),
            &mailbox,
            &trustee,
            right.as_str(),
            change.as_str(),
            &generation.to_string(),
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        // RFC 9562 version 8 (custom), variant 10.
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        Self(Uuid::from_bytes(b))
    }
}

impl fmt::Display for DriftId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Which way a right changed outside exogate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriftChange {
    /// The sweep found a right the previous generation did not have.
    Added,
    /// The previous generation had a right the sweep no longer found.
    Removed,
}

impl DriftChange {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftChange::Added => "added",
            DriftChange::Removed => "removed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [DriftChange::Added, DriftChange::Removed]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// Where a finding stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriftState {
    /// Nobody has looked at it yet.
    Open,
    /// Someone accepted it, with a reason.
    Acknowledged,
    /// Someone asked to undo it: an approval request with the inverse action exists.
    RevertRequested,
}

impl DriftState {
    pub const ALL: [DriftState; 3] = [
        DriftState::Open,
        DriftState::Acknowledged,
        DriftState::RevertRequested,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DriftState::Open => "open",
            DriftState::Acknowledged => "acknowledged",
            DriftState::RevertRequested => "revert_requested",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Who acknowledged a finding, when and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftAck {
    pub by: UserId,
    pub by_name: String,
    pub at: Timestamp,
    pub reason: String,
}

/// A right changed outside exogate, as sweeps saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftFinding {
    pub id: DriftId,
    /// The company, mailbox, right and trustee (the row that appeared or disappeared).
    pub row: InventoryRow,
    pub change: DriftChange,
    pub state: DriftState,
    /// When a sweep first found it, and the generation that sweep wrote.
    pub first_seen_at: Timestamp,
    pub first_seen_generation: i64,
    /// When a sweep last found the changed state still there.
    pub last_seen_at: Timestamp,
    pub last_seen_generation: i64,
    /// When exogate last saw the earlier state (the previous sweep's end).
    pub earlier_seen_at: Option<Timestamp>,
    pub acknowledged: Option<DriftAck>,
    /// The request that reverts it.
    pub revert_request: Option<RequestId>,
}

/// A change a sweep found, before it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftCandidate {
    pub row: InventoryRow,
    pub change: DriftChange,
}

/// What a sweep's comparison records (see [`crate::ports::Store::drift_record`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftObservation {
    /// The sweep's generation (its rows are still in the store).
    pub generation: i64,
    /// The generation it was compared with (None: nothing to compare, only the baseline is
    /// recorded).
    pub previous_generation: Option<i64>,
    pub seen_at: Timestamp,
    /// When the previous generation was read (its sweep's end).
    pub earlier_seen_at: Option<Timestamp>,
    /// When the sweep started: the next comparison counts requests executed from then on.
    pub swept_from: Timestamp,
    /// Unexplained changes against the previous generation.
    pub candidates: Vec<DriftCandidate>,
}

/// The longest acknowledgement reason kept.
pub const MAX_REASON_CHARS: usize = 500;
