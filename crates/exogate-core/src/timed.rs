//! Time-boxed grants: when a grant ends (`duration` or `until`), a company's rule for ends, and
//! the scheduled removal a verified timed grant leaves behind. No I/O: `now` is an input.
//!
//! A grant's end is part of its canonical action ([`crate::action::CanonicalAction::ends_at`]),
//! so one approval covers the grant and its end. When the grant is verified, the worker records
//! the removal as a request of its own ([`scheduled_removal`]): approved by that approval,
//! linked to the grant (`ends_grant`), not claimed before the end (`not_before`).

use crate::action::{CanonicalAction, Presence};
use crate::error::CoreError;
use crate::model::{RequestId, Timestamp};
use crate::request::{ApprovalRequest, Decision, RequestState};
use crate::tools::{self, ToolName};

/// The shortest end accepted: a minute from now.
pub const MIN_GRANT_SECS: i64 = 60;
/// The longest end accepted at all (a company may cap lower): 366 days.
pub const MAX_GRANT_SECS: i64 = 366 * 24 * 60 * 60;

/// A company's rule for grant ends (stored per company, set by an admin).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GrantEndPolicy {
    /// Every grant must carry an end.
    pub end_required: bool,
    /// The longest a grant may last, in seconds (None: up to [`MAX_GRANT_SECS`]).
    pub max_secs: Option<i64>,
}

/// "8h", "7d", "1h 30m" as seconds (humantime's syntax).
pub fn parse_duration_secs(field: &'static str, s: &str) -> Result<i64, CoreError> {
    let d = humantime::parse_duration(s.trim()).map_err(|e| {
        CoreError::invalid(
            field,
            format!(
                "`{}` is not a duration like `8h` or `7d`: {}",
                short(s),
                crate::text::capped(&e.to_string(), 80)
            ),
        )
    })?;
    i64::try_from(d.as_secs())
        .map_err(|_| CoreError::invalid(field, format!("`{}` is far too long", short(s))))
}

/// Formats seconds the way [`parse_duration_secs`] reads them ("7days", "8h").
pub fn format_secs(secs: i64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(secs.max(0).unsigned_abs()))
        .to_string()
}

/// The end a grant asks for: `duration` from `now`, or `until` (RFC 3339, or a date `2026-12-10`
/// meaning midnight UTC). Blank values count as absent. At most one of them; the end must be at
/// least [`MIN_GRANT_SECS`] and at most [`MAX_GRANT_SECS`] away.
pub fn parse_end(
    duration: Option<&str>,
    until: Option<&str>,
    now: Timestamp,
) -> Result<Option<Timestamp>, CoreError> {
    let duration = duration.map(str::trim).filter(|s| !s.is_empty());
    let until = until.map(str::trim).filter(|s| !s.is_empty());
    let (field, end) = match (duration, until) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(CoreError::invalid(
                "until",
                "give either `duration` or `until`, not both".to_owned(),
            ));
        }
        (Some(d), None) => {
            let secs = parse_duration_secs("duration", d)?;
            if secs > MAX_GRANT_SECS {
                return Err(too_long("duration"));
            }
            ("duration", now.plus_secs(secs))
        }
        (None, Some(u)) => ("until", parse_until(u)?),
    };
    let secs = (end.unix_millis() - now.unix_millis()).div_euclid(1000);
    if end.unix_millis() <= now.unix_millis() {
        return Err(CoreError::invalid(
            field,
            format!("the end ({end}) is not in the future"),
        ));
    }
    if secs < MIN_GRANT_SECS {
        return Err(CoreError::invalid(
            field,
            "a grant must last at least a minute".to_owned(),
        ));
    }
    if secs > MAX_GRANT_SECS {
        return Err(too_long(field));
    }
    Ok(Some(end))
}

fn too_long(field: &'static str) -> CoreError {
    CoreError::invalid(
        field,
        format!(
            "a grant may last at most {} (leave the end out for a grant that stays)",
            format_secs(MAX_GRANT_SECS)
        ),
    )
}

fn parse_until(s: &str) -> Result<Timestamp, CoreError> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(Timestamp::from_offset_date_time(t));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &date_format) {
        return Ok(Timestamp::from_offset_date_time(d.midnight().assume_utc()));
    }
    Err(CoreError::invalid(
        "until",
        format!(
            "`{}` is not a time like `2026-12-10T17:00:00Z` or a date like `2026-12-10`",
            short(s)
        ),
    ))
}

fn short(s: &str) -> String {
    crate::text::capped(s, 40)
}

/// Applies the company's rule to a grant's end (`None`: no end) asked at `now`.
pub fn check_policy(
    policy: &GrantEndPolicy,
    end: Option<Timestamp>,
    now: Timestamp,
) -> Result<(), CoreError> {
    match (end, policy.max_secs) {
        (None, _) if policy.end_required => Err(CoreError::invalid(
            "duration",
            "this company requires every grant to end: give `duration` or `until`".to_owned(),
        )),
        (Some(end), Some(max)) if end.unix_millis() - now.unix_millis() > max * 1000 => {
            Err(CoreError::invalid(
                "duration",
                format!("this company allows grants of at most {}", format_secs(max)),
            ))
        }
        _ => Ok(()),
    }
}

/// Checks a policy an admin sets: a cap between a minute and [`MAX_GRANT_SECS`].
pub fn check_new_policy(policy: &GrantEndPolicy) -> Result<(), CoreError> {
    match policy.max_secs {
        Some(m) if !(MIN_GRANT_SECS..=MAX_GRANT_SECS).contains(&m) => Err(CoreError::invalid(
            "max_duration",
            format!(
                "the cap must be between a minute and {}",
                format_secs(MAX_GRANT_SECS)
            ),
        )),
        _ => Ok(()),
    }
}

/// The removal a verified timed grant leaves: the inverse of its one timed action, already
/// approved by the grant's approval, not claimed before the end. `None` if `grant` is not a
/// timed grant that took effect.
pub fn scheduled_removal(grant: &ApprovalRequest, id: RequestId) -> Option<ApprovalRequest> {
    let [action] = grant.actions.as_slice() else {
        return None;
    };
    let end = action.ends_at?;
    let decision = grant.decision.as_ref().filter(|d| d.approved)?;
    let removal_action = removal_of(action);
    let actions = vec![removal_action];
    let digest = crate::action::digest_actions(&actions);
    let tool = ToolName::for_operation(actions[0].operation);
    Some(ApprovalRequest {
        id,
        company: grant.company.clone(),
        tenant: grant.tenant,
        tool,
        risk: tools::spec(tool).risk,
        requester: grant.requester.clone(),
        actions,
        digest: digest.clone(),
        state: RequestState::Approved,
        created_at: decision.at.max(grant.created_at),
        // A removal is never pending, so this is only informative: the end itself.
        expires_at: end,
        decision: Some(Decision {
            by: decision.by,
            by_name: decision.by_name.clone(),
            at: decision.at,
            approved: true,
            reason: Some(format!("the end of timed grant {}", grant.id)),
            digest,
        }),
        cancellation: None,
        attempt: 0,
        lease: None,
        results: Vec::new(),
        finished_at: None,
        message: None,
        revert_of: None,
        not_before: Some(end),
        ends_grant: Some(grant.id),
        ticket: grant.ticket.clone(),
    })
}

/// The removal action of a timed grant's action (no end of its own; the state found when
/// asking is the grant's goal).
pub fn removal_of(grant_action: &CanonicalAction) -> CanonicalAction {
    let mut inv = grant_action.inverse();
    inv.state_at_request = Presence::Present;
    inv
}

/// Whether `removal` is the removal of `grant`'s timed action (same company, tenant, mailbox,
/// trustee and permission, an end set): what the worker checks before running one.
pub fn is_removal_of(removal: &ApprovalRequest, grant: &ApprovalRequest) -> bool {
    match (removal.actions.as_slice(), grant.actions.as_slice()) {
        ([r], [g]) => {
            g.ends_at.is_some()
                && removal.ends_grant == Some(grant.id)
                && removal.company == grant.company
                && removal.tenant == grant.tenant
                && *r == removal_of(g)
        }
        _ => false,
    }
}

/// Whether a scheduled removal (approved, not yet run) removes the same right as `action`.
pub fn same_right(removal: &ApprovalRequest, action: &CanonicalAction) -> bool {
    removal.actions.iter().any(|a| {
        a.company == action.company
            && a.mailbox.object_id == action.mailbox.object_id
            && a.trustee.object_id == action.trustee.object_id
            && a.operation.permission == action.operation.permission
    })
}

/// "ends in 3 d", "ends in 5 h", "ends in 12 min", "ended" — the end relative to `now`.
pub fn ends_in(end: Timestamp, now: Timestamp) -> String {
    let secs = (end.unix_millis() - now.unix_millis()).div_euclid(1000);
    if secs <= 0 {
        "ended".to_owned()
    } else if secs >= 2 * 24 * 3600 {
        format!("ends in {} d", secs / (24 * 3600))
    } else if secs >= 2 * 3600 {
        format!("ends in {} h", secs / 3600)
    } else {
        format!("ends in {} min", (secs + 59) / 60)
    }
}
