//! Drift findings' rows (`drift_findings`) and their SQL, decoded the same way on both backends.

use exogate_core::drift::{
    DriftAck, DriftCandidate, DriftChange, DriftFinding, DriftId, DriftState,
};
use exogate_core::inventory::InventoryRow;
use exogate_core::model::*;
use exogate_core::ports::StoreError;

use super::{InventoryRowDb, corrupt, ts};

/// A row of the comparison of two generations: an inventory row and which way it changed.
#[derive(sqlx::FromRow)]
pub(crate) struct DriftCandidateDb {
    #[sqlx(flatten)]
    row: InventoryRowDb,
    change: String,
}

impl TryFrom<DriftCandidateDb> for DriftCandidate {
    type Error = StoreError;
    fn try_from(r: DriftCandidateDb) -> Result<Self, StoreError> {
        Ok(Self {
            change: DriftChange::parse(&r.change)
                .ok_or_else(|| corrupt("drift change", &r.change))?,
            row: InventoryRow::try_from(r.row)?,
        })
    }
}

macro_rules! drift_cols {
    () => {
        "id, company_id, first_seen_gen AS generation, mailbox_id, mailbox_address, mailbox_name, mailbox_kind, trustee_key, trustee_raw, trustee_sid, trustee_class, trustee_id, trustee_address, trustee_name, trustee_kind, permission, change, state, first_seen_at, first_seen_gen, last_seen_at, last_seen_gen, earlier_seen_at, ack_by, ack_by_name, ack_at, ack_reason, revert_request"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct DriftFindingDb {
    id: String,
    #[sqlx(flatten)]
    row: InventoryRowDb,
    change: String,
    state: String,
    first_seen_at: i64,
    first_seen_gen: i64,
    last_seen_at: i64,
    last_seen_gen: i64,
    earlier_seen_at: Option<i64>,
    ack_by: Option<String>,
    ack_by_name: Option<String>,
    ack_at: Option<i64>,
    ack_reason: Option<String>,
    revert_request: Option<String>,
}

impl TryFrom<DriftFindingDb> for DriftFinding {
    type Error = StoreError;
    fn try_from(r: DriftFindingDb) -> Result<Self, StoreError> {
        let acknowledged = match (r.ack_by, r.ack_at) {
            (Some(by), Some(at)) => Some(DriftAck {
                by: UserId::parse(&by).map_err(|_| corrupt("user id", &by))?,
                by_name: r.ack_by_name.unwrap_or_default(),
                at: Timestamp::from_unix_millis(at),
                reason: r.ack_reason.unwrap_or_default(),
            }),
            _ => None,
        };
        let revert_request = r
            .revert_request
            .as_deref()
            .map(|s| RequestId::parse(s).map_err(|_| corrupt("request id", s)))
            .transpose()?;
        Ok(Self {
            id: DriftId::parse(&r.id).map_err(|_| corrupt("finding id", &r.id))?,
            row: InventoryRow::try_from(r.row)?,
            change: DriftChange::parse(&r.change)
                .ok_or_else(|| corrupt("drift change", &r.change))?,
            state: DriftState::parse(&r.state).ok_or_else(|| corrupt("drift state", &r.state))?,
            first_seen_at: Timestamp::from_unix_millis(r.first_seen_at),
            first_seen_generation: r.first_seen_gen,
            last_seen_at: Timestamp::from_unix_millis(r.last_seen_at),
            last_seen_generation: r.last_seen_gen,
            earlier_seen_at: ts(r.earlier_seen_at),
            acknowledged,
            revert_request,
        })
    }
}

/// The rows of generation `$3` missing from `$2` (added) and of `$2` missing from `$3`
/// (removed), on the primary key's (mailbox, trustee key, right).
pub(crate) const DRIFT_DIFF: &str = concat!(
    "SELECT ",
    inventory_cols!(),
    ", 'added' AS change FROM inventory_rows n WHERE n.company_id = $1 AND n.generation = $3 AND NOT EXISTS (SELECT 1 FROM inventory_rows p WHERE p.company_id = $1 AND p.generation = $2 AND p.mailbox_id = n.mailbox_id AND p.trustee_key = n.trustee_key AND p.permission = n.permission)",
    " UNION ALL SELECT ",
    inventory_cols!(),
    ", 'removed' AS change FROM inventory_rows p WHERE p.company_id = $1 AND p.generation = $2 AND NOT EXISTS (SELECT 1 FROM inventory_rows n WHERE n.company_id = $1 AND n.generation = $3 AND n.mailbox_id = p.mailbox_id AND n.trustee_key = p.trustee_key AND n.permission = p.permission)",
    " ORDER BY mailbox_address, permission, trustee_key"
);

pub(crate) const DRIFT_EXECUTED_SINCE: &str = concat!(
    "SELECT ",
    request_cols!(),
    " FROM approval_requests WHERE company_id = $1 AND finished_at >= $2 AND state IN ('succeeded', 'already_in_state', 'failed') ORDER BY finished_at"
);

pub(crate) const DRIFT_BASELINE: &str =
    "SELECT swept_from FROM drift_baseline WHERE company_id = $1";
pub(crate) const DRIFT_SET_BASELINE: &str = "INSERT INTO drift_baseline (company_id, generation, swept_from) VALUES ($1, $2, $3) ON CONFLICT (company_id) DO UPDATE SET generation = excluded.generation, swept_from = excluded.swept_from";

/// Findings seen without a break up to the previous generation (`$4`) whose changed state
/// generation `$3` still shows: their last-seen moves on to `$2`.
pub(crate) const DRIFT_STILL_SEEN: &str = "UPDATE drift_findings SET last_seen_at = $2, last_seen_gen = $3 WHERE company_id = $1 AND last_seen_gen >= $4 AND last_seen_gen < $3 AND ((change = 'added' AND EXISTS (SELECT 1 FROM inventory_rows r WHERE r.company_id = $1 AND r.generation = $3 AND r.mailbox_id = drift_findings.mailbox_id AND r.trustee_key = drift_findings.trustee_key AND r.permission = drift_findings.permission)) OR (change = 'removed' AND NOT EXISTS (SELECT 1 FROM inventory_rows r WHERE r.company_id = $1 AND r.generation = $3 AND r.mailbox_id = drift_findings.mailbox_id AND r.trustee_key = drift_findings.trustee_key AND r.permission = drift_findings.permission)))";

/// A candidate already recorded: the same right and direction, seen without a break up to
/// the previous generation (`$6`) or by this very generation.
pub(crate) const DRIFT_SEEN_AGAIN: &str = "UPDATE drift_findings SET last_seen_at = $7, last_seen_gen = $8 WHERE company_id = $1 AND mailbox_id = $2 AND trustee_key = $3 AND permission = $4 AND change = $5 AND last_seen_gen >= $6";

pub(crate) const DRIFT_INSERT: &str = "INSERT INTO drift_findings (id, company_id, mailbox_id, mailbox_address, mailbox_name, mailbox_kind, trustee_key, trustee_raw, trustee_sid, trustee_class, trustee_id, trustee_address, trustee_name, trustee_kind, permission, change, state, first_seen_at, first_seen_gen, last_seen_at, last_seen_gen, earlier_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, 'open', $17, $18, $17, $18, $19) ON CONFLICT (id) DO NOTHING";

pub(crate) const DRIFT_GET: &str = concat!(
    "SELECT ",
    drift_cols!(),
    " FROM drift_findings WHERE id = $1"
);
pub(crate) const DRIFT_LIST: &str = concat!(
    "SELECT ",
    drift_cols!(),
    " FROM drift_findings WHERE company_id = $1 ORDER BY first_seen_at DESC, id LIMIT $2"
);
pub(crate) const DRIFT_ACK: &str = "UPDATE drift_findings SET state = 'acknowledged', ack_by = $2, ack_by_name = $3, ack_at = $4, ack_reason = $5 WHERE id = $1 AND state = 'open'";
pub(crate) const DRIFT_SET_REVERT: &str = "UPDATE drift_findings SET state = 'revert_requested', revert_request = $2 WHERE id = $1 AND state <> 'revert_requested'";
