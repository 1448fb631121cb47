//! The audit log: append-only events in one hash chain. Each event's `hash` is the SHA-256 of
//! its predecessor's hash and a length-prefixed canonical encoding of the event including its
//! `seq`, so [`verify`] detects a modified, deleted, inserted or reordered row and names the
//! first bad `seq`. Someone who can rewrite the whole table can also recompute the chain; only
//! comparing the head with an exported checkpoint catches that.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::model::{Actor, CompanyId, RequestId, Timestamp};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Event kinds (stable strings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditKind {
    CompanyAdded,
    CompanySettingsChanged,
    Connected,
    Disconnected,
    StatusChecked,
    ReadTool,
    RequestCreated,
    RequestApproved,
    RequestRejected,
    RequestCancelled,
    RequestExpired,
    ExecutionClaimed,
    ExecutionAttempt,
    ExecutionStep,
    ExecutionRetry,
    ExecutionFinished,
    ExecutionRefused,
    Login,
    LoginFailed,
    UserAdded,
    UserChanged,
    TokenCreated,
    TokenRevoked,
    InventorySweepStarted,
    InventorySweepFinished,
    InventorySweepFailed,
    ConsentRefused,
    TenantMoved,
    OAuthGrantCreated,
    OAuthGrantRevoked,
    OAuthFamilyRevoked,
    // (notify)
    NotifySettingsChanged,
    WebhookAdded,
    WebhookRemoved,
    // (drift)
    DriftFound,
    DriftAcknowledged,
    // (timed-grants)
    /// A timed grant's removal was scheduled (system-created, covered by the grant's approval).
    GrantEndScheduled,
    /// A timed grant's scheduled removal failed after its retries: the one alert.
    GrantEndFailed,
    // (reviews)
    ReviewCreated,
    ReviewLinkIssued,
    ReviewLinkRevoked,
    ReviewDecided,
    ReviewClosed,
    ReviewReportCreated,
    ReviewReminded,
}

impl AuditKind {
    pub const ALL: [AuditKind; 45] = [
        AuditKind::CompanyAdded,
        AuditKind::CompanySettingsChanged,
        AuditKind::Connected,
        AuditKind::Disconnected,
        AuditKind::StatusChecked,
        AuditKind::ReadTool,
        AuditKind::RequestCreated,
        AuditKind::RequestApproved,
        AuditKind::RequestRejected,
        AuditKind::RequestCancelled,
        AuditKind::RequestExpired,
        AuditKind::ExecutionClaimed,
        AuditKind::ExecutionAttempt,
        AuditKind::ExecutionStep,
        AuditKind::ExecutionRetry,
        AuditKind::ExecutionFinished,
        AuditKind::ExecutionRefused,
        AuditKind::Login,
        AuditKind::LoginFailed,
        AuditKind::UserAdded,
        AuditKind::UserChanged,
        AuditKind::TokenCreated,
        AuditKind::TokenRevoked,
        AuditKind::InventorySweepStarted,
        AuditKind::InventorySweepFinished,
        AuditKind::InventorySweepFailed,
        AuditKind::ConsentRefused,
        AuditKind::TenantMoved,
        AuditKind::OAuthGrantCreated,
        AuditKind::OAuthGrantRevoked,
        AuditKind::OAuthFamilyRevoked,
        // (notify)
        AuditKind::NotifySettingsChanged,
        AuditKind::WebhookAdded,
        AuditKind::WebhookRemoved,
        // (drift)
        AuditKind::DriftFound,
        AuditKind::DriftAcknowledged,
        // (timed-grants)
        AuditKind::GrantEndScheduled,
        AuditKind::GrantEndFailed,
        // (reviews)
        AuditKind::ReviewCreated,
        AuditKind::ReviewLinkIssued,
        AuditKind::ReviewLinkRevoked,
        AuditKind::ReviewDecided,
        AuditKind::ReviewClosed,
        AuditKind::ReviewReportCreated,
        AuditKind::ReviewReminded,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::CompanyAdded => "company.added",
            AuditKind::CompanySettingsChanged => "company.settings_changed",
            AuditKind::Connected => "company.connected",
            AuditKind::Disconnected => "company.disconnected",
            AuditKind::StatusChecked => "company.status_checked",
            AuditKind::ReadTool => "tool.read",
            AuditKind::RequestCreated => "request.created",
            AuditKind::RequestApproved => "request.approved",
            AuditKind::RequestRejected => "request.rejected",
            AuditKind::RequestCancelled => "request.cancelled",
            AuditKind::RequestExpired => "request.expired",
            AuditKind::ExecutionClaimed => "execution.claimed",
            AuditKind::ExecutionAttempt => "execution.attempt",
            AuditKind::ExecutionStep => "execution.step",
            AuditKind::ExecutionRetry => "execution.retry",
            AuditKind::ExecutionFinished => "execution.finished",
            AuditKind::ExecutionRefused => "execution.refused",
            AuditKind::Login => "auth.login",
            AuditKind::LoginFailed => "auth.login_failed",
            AuditKind::UserAdded => "user.added",
            AuditKind::UserChanged => "user.changed",
            AuditKind::TokenCreated => "token.created",
            AuditKind::TokenRevoked => "token.revoked",
            AuditKind::InventorySweepStarted => "inventory.sweep_started",
            AuditKind::InventorySweepFinished => "inventory.sweep_finished",
            AuditKind::InventorySweepFailed => "inventory.sweep_failed",
            AuditKind::ConsentRefused => "consent.refused",
            AuditKind::TenantMoved => "company.tenant_moved",
            AuditKind::OAuthGrantCreated => "oauth.grant_created",
            AuditKind::OAuthGrantRevoked => "oauth.grant_revoked",
            AuditKind::OAuthFamilyRevoked => "oauth.family_revoked",
            // (notify)
            AuditKind::NotifySettingsChanged => "notify.settings_changed",
            AuditKind::WebhookAdded => "notify.webhook_added",
            AuditKind::WebhookRemoved => "notify.webhook_removed",
            // (drift)
            AuditKind::DriftFound => "drift.found",
            AuditKind::DriftAcknowledged => "drift.acknowledged",
            // (timed-grants)
            AuditKind::GrantEndScheduled => "grant.end_scheduled",
            AuditKind::GrantEndFailed => "grant.end_failed",
            // (reviews)
            AuditKind::ReviewCreated => "review.created",
            AuditKind::ReviewLinkIssued => "review.link_issued",
            AuditKind::ReviewLinkRevoked => "review.link_revoked",
            AuditKind::ReviewDecided => "review.decided",
            AuditKind::ReviewClosed => "review.closed",
            AuditKind::ReviewReportCreated => "review.report_created",
            AuditKind::ReviewReminded => "review.reminded",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event before it is appended. Plain strings, so stored rows round-trip exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at: Timestamp,
    pub kind: String,
    /// User id of the person acting (None for the system, e.g. the worker or expiry).
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    /// `web`, `api`, `cli`, `mcp(token=…, agent=…)`, or `system`.
    pub channel: String,
    pub company: Option<String>,
    pub request: Option<String>,
    /// A JSON object with the details (never a secret).
    pub detail: String,
}

impl NewAuditEvent {
    pub fn new(at: Timestamp, kind: AuditKind, actor: Option<&Actor>) -> Self {
        Self {
            at,
            kind: kind.as_str().to_owned(),
            actor_id: actor.map(|a| a.user.id.to_string()),
            actor_name: actor.map(|a| a.user.name.to_string()),
            channel: actor.map_or_else(|| "system".to_owned(), |a| a.channel.to_string()),
            company: None,
            request: None,
            detail: "{}".to_owned(),
        }
    }
    /// A system event (worker, scheduler).
    pub fn system(at: Timestamp, kind: AuditKind) -> Self {
        Self::new(at, kind, None)
    }
    #[must_use]
    pub fn company(mut self, c: &CompanyId) -> Self {
        self.company = Some(c.to_string());
        self
    }
    #[must_use]
    pub fn request(mut self, r: RequestId) -> Self {
        self.request = Some(r.to_string());
        self
    }
    #[must_use]
    pub fn detail(mut self, v: serde_json::Value) -> Self {
        self.detail = v.to_string();
        self
    }
    /// Sets the actor name for events where only a name is known (e.g. a failed login).
    #[must_use]
    pub fn actor_name(mut self, name: &str, channel: &str) -> Self {
        self.actor_name = Some(name.to_owned());
        self.channel = channel.to_owned();
        self
    }
}

/// A stored event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEvent {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub event: NewAuditEvent,
}

fn put(h: &mut Sha256, field: &[u8]) {
    h.update((field.len() as u64).to_be_bytes());
    h.update(field);
}

fn put_opt(h: &mut Sha256, field: Option<&str>) {
    match field {
        None => h.update([0u8]),
        Some(s) => {
            h.update([1u8]);
            put(h, s.as_bytes());
        }
    }
}

/// `hash = SHA-256(prev_hash ‖ enc(seq, event))`, lowercase hex.
pub fn chain_hash(prev_hash: &str, seq: i64, e: &NewAuditEvent) -> String {
    let mut h = Sha256::new();
    put(&mut h, b"exogate-audit-v1");
    put(&mut h, prev_hash.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(e.at.unix_millis().to_be_bytes());
    put(&mut h, e.kind.as_bytes());
    put_opt(&mut h, e.actor_id.as_deref());
    put_opt(&mut h, e.actor_name.as_deref());
    put(&mut h, e.channel.as_bytes());
    put_opt(&mut h, e.company.as_deref());
    put_opt(&mut h, e.request.as_deref());
    put(&mut h, e.detail.as_bytes());
    hex::encode(h.finalize())
}

/// Builds the stored form of the event that follows `(head_seq, head_hash)`.
pub fn next_event(head: Option<(i64, &str)>, event: NewAuditEvent) -> AuditEvent {
    let (seq, prev_hash) = match head {
        Some((s, h)) => (s + 1, h.to_owned()),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let hash = chain_hash(&prev_hash, seq, &event);
    AuditEvent {
        seq,
        prev_hash,
        hash,
        event,
    }
}

/// Why the chain is broken at `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BreakKind {
    /// The row's content does not match its hash (modified, or moved to another seq).
    HashMismatch,
    /// The row does not link to its predecessor (a row before it was deleted or inserted).
    BrokenLink,
    /// Sequence numbers are not consecutive (deleted or inserted row).
    SeqGap { expected: i64 },
    /// Rows are missing at the end: the chain head says more rows existed.
    Truncated { head_seq: i64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub kind: BreakKind,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BreakKind::HashMismatch => write!(
                f,
                "audit event {} was modified (its hash does not match its content)",
                self.seq
            ),
            BreakKind::BrokenLink => write!(
                f,
                "audit event {} does not link to the event before it (an event was deleted or inserted)",
                self.seq
            ),
            BreakKind::SeqGap { expected } => write!(
                f,
                "audit event {} follows event {} (an event was deleted, inserted or reordered)",
                self.seq,
                expected - 1
            ),
            BreakKind::Truncated { head_seq } => write!(
                f,
                "the log ends at event {} but its head records event {head_seq} (events were deleted at the end)",
                self.seq
            ),
        }
    }
}

/// Incremental verifier, fed events in `seq` order (the store pages through the log).
#[derive(Clone, Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    checked: u64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
        }
    }
}

impl ChainVerifier {
    /// A verifier that continues a chain already known up to event `seq` with hash `hash`
    /// (for example from a signed checkpoint): the next event must be `seq + 1` and link to it.
    pub fn after(seq: i64, hash: &str) -> Self {
        Self {
            expected_seq: seq + 1,
            prev_hash: hash.to_owned(),
            checked: 0,
        }
    }
    pub fn push(&mut self, e: &AuditEvent) -> Result<(), ChainBreak> {
        if e.seq != self.expected_seq {
            return Err(ChainBreak {
                seq: e.seq,
                kind: BreakKind::SeqGap {
                    expected: self.expected_seq,
                },
            });
        }
        if e.prev_hash != self.prev_hash {
            return Err(ChainBreak {
                seq: e.seq,
                kind: BreakKind::BrokenLink,
            });
        }
        if chain_hash(&e.prev_hash, e.seq, &e.event) != e.hash {
            return Err(ChainBreak {
                seq: e.seq,
                kind: BreakKind::HashMismatch,
            });
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&e.hash);
        self.checked += 1;
        Ok(())
    }
    /// Ends verification, comparing with the chain head the store keeps (if any).
    pub fn finish(self, head: Option<(i64, &str)>) -> Result<VerifyReport, ChainBreak> {
        let last = self.expected_seq - 1;
        if let Some((head_seq, head_hash)) = head {
            if head_seq > last {
                return Err(ChainBreak {
                    seq: last,
                    kind: BreakKind::Truncated { head_seq },
                });
            }
            if head_seq == last && head_hash != self.prev_hash {
                return Err(ChainBreak {
                    seq: last,
                    kind: BreakKind::HashMismatch,
                });
            }
        }
        Ok(VerifyReport {
            events: self.checked,
            last_seq: last,
            last_hash: self.prev_hash,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub events: u64,
    pub last_seq: i64,
    pub last_hash: String,
}

/// Verifies a whole chain held in memory.
pub fn verify<'a>(
    events: impl IntoIterator<Item = &'a AuditEvent>,
    head: Option<(i64, &str)>,
) -> Result<VerifyReport, ChainBreak> {
    let mut v = ChainVerifier::default();
    for e in events {
        v.push(e)?;
    }
    v.finish(head)
}

/// Which audit events to list: every field that is set must match. Events come newest first
/// (by `seq`); `before_seq` continues a listing below the last `seq` seen (keyset paging).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub company: Option<CompanyId>,
    pub request: Option<RequestId>,
    /// An event kind such as `request.approved`.
    pub kind: Option<String>,
    /// The acting user's name, compared without regard to ASCII case.
    pub actor: Option<String>,
    /// Events at or after this time.
    pub since: Option<Timestamp>,
    /// Events at or before this time.
    pub until: Option<Timestamp>,
    /// Only events with a smaller `seq`.
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Which end of a day a bare date stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayEnd {
    /// 00:00:00.000 UTC (for `since`).
    Start,
    /// 23:59:59.999 UTC (for `until`).
    End,
}

/// Parses an RFC 3339 time (`2026-12-03T09:00:00Z`) or a bare date (`2026-12-03`, taken as
/// the start or the end of that day in UTC). Empty text is `None`.
pub fn parse_time_bound(
    field: &'static str,
    text: &str,
    day_end: DayEnd,
) -> Result<Option<Timestamp>, crate::error::CoreError> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = time::OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(Some(Timestamp::from_offset_date_time(t)));
    }
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        crate::error::CoreError::invalid(
            field,
            "use a date such as 2026-12-03 or an RFC 3339 time such as 2026-12-03T09:00:00Z".into(),
        )
    })?;
    // The end of the day is built inside the day: adding a day to 9999-12-31 would overflow.
    let t = match day_end {
        DayEnd::Start => date.midnight(),
        DayEnd::End => date.with_time(time::macros::time!(23:59:59.999)),
    }
    .assume_utc();
    Ok(Some(Timestamp::from_offset_date_time(t)))
}
