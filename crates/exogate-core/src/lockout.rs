//! (hardening) The per-user-name lock-out of password checks, kept in the store so that every
//! replica and every CLI process counts the same failures (`Store::login_user_begin`). A user
//! name may fail `free` times; from then on each failure locks it for `first_secs`, doubling
//! with every further failure up to `max_secs`. An attempt counts as a failure from the moment
//! it starts (a success clears the record); a record quiet for `forget_secs` starts over. The
//! first attempt refused during a stretch of lock-outs is audited, the next ones are not.

use crate::model::Timestamp;

/// The lock-out rule (`[login]` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutRule {
    pub free: u32,
    pub first_secs: u32,
    pub max_secs: u32,
    pub forget_secs: u32,
}

/// One user name's failures, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureRecord {
    /// Failures counted (started attempts that did not succeed yet included).
    pub failures: u32,
    /// When the last one was counted.
    pub last_at: Timestamp,
    /// Whether a refusal of the current stretch was audited.
    pub lockout_audited: bool,
}

/// What [`LockoutRule::begin`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Begin {
    /// The attempt may check its password; it is counted as a failure until it succeeds.
    Counted,
    /// Locked out: wait `wait_secs`; `audit` for the first refusal of the stretch.
    Refused { wait_secs: u64, audit: bool },
}

/// The lock-out after `failures` failures with `free` free ones, in ms (0: not locked).
pub fn lockout_ms(failures: u32, free: u32, first_secs: u32, max_secs: u32) -> i64 {
    if failures < free.max(1) {
        return 0;
    }
    let doublings = (failures - free.max(1)).min(40);
    let secs = u64::from(first_secs)
        .saturating_mul(1u64 << doublings)
        .min(u64::from(max_secs));
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

impl LockoutRule {
    /// `record` as it stands at `now` (a quiet one is forgotten).
    pub fn current(&self, record: Option<FailureRecord>, now: Timestamp) -> Option<FailureRecord> {
        let forget_ms = i64::from(self.forget_secs) * 1000;
        record.filter(|r| now.unix_millis().saturating_sub(r.last_at.unix_millis()) < forget_ms)
    }

    /// When the lock-out of `record` ends (ms; at or before `last_at` when none).
    pub fn locked_until(&self, record: &FailureRecord) -> i64 {
        record.last_at.unix_millis().saturating_add(lockout_ms(
            record.failures,
            self.free,
            self.first_secs,
            self.max_secs,
        ))
    }

    /// Decides an attempt at `now` on the stored `record`; returns the decision and the record
    /// to store.
    pub fn begin(&self, record: Option<FailureRecord>, now: Timestamp) -> (Begin, FailureRecord) {
        let current = self.current(record, now);
        if let Some(r) = current {
            let wait_ms = self.locked_until(&r).saturating_sub(now.unix_millis());
            if wait_ms > 0 {
                let wait_secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
                let audit = !r.lockout_audited;
                return (
                    Begin::Refused { wait_secs, audit },
                    FailureRecord {
                        lockout_audited: true,
                        ..r
                    },
                );
            }
        }
        let (failures, lockout_audited) =
            current.map_or((0, false), |r| (r.failures, r.lockout_audited));
        (
            Begin::Counted,
            FailureRecord {
                failures: failures.saturating_add(1),
                last_at: now,
                lockout_audited,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(1_800_000_000 + secs)
    }

    #[test]
    fn lockouts_double_up_to_the_cap_and_the_first_refusal_is_audited_once() {
        assert_eq!(lockout_ms(2, 3, 1, 900), 0);
        assert_eq!(lockout_ms(3, 3, 1, 900), 1000);
        assert_eq!(lockout_ms(5, 3, 1, 900), 4000);
        assert_eq!(lockout_ms(u32::MAX, 3, 7, 900), 900_000);
        let rule = LockoutRule {
            free: 2,
            first_secs: 10,
            max_secs: 900,
            forget_secs: 3600,
        };
        let (b, r) = rule.begin(None, at(0));
        assert_eq!(b, Begin::Counted);
        let (b, r) = rule.begin(Some(r), at(0));
        assert_eq!(b, Begin::Counted);
        let (b, r) = rule.begin(Some(r), at(1));
        assert_eq!(
            b,
            Begin::Refused {
                wait_secs: 9,
                audit: true
            }
        );
        let (b, r) = rule.begin(Some(r), at(2));
        assert_eq!(
            b,
            Begin::Refused {
                wait_secs: 8,
                audit: false
            }
        );
        let (b, r) = rule.begin(Some(r), at(10));
        assert_eq!(b, Begin::Counted, "the lock-out passed");
        let (b, r) = rule.begin(Some(r), at(11));
        assert_eq!(
            b,
            Begin::Refused {
                wait_secs: 19,
                audit: false
            },
            "doubled, same stretch"
        );
        let (b, _) = rule.begin(Some(r), at(11 + 3600));
        assert_eq!(b, Begin::Counted, "forgotten after a quiet hour");
    }
}
