//! Defences of the password login (pages and JSON API alike): a limiter of failed attempts per
//! client address and per user name with growing lock-outs, the [`PasswordGate`] that bounds the
//! argon2 checks running at once, and a budget of the audit rows failures may write.
//!
//! - **Client address**: the TCP peer address of the connection (`ConnectInfo`), IPv6 taken per
//!   /64 (one host usually holds a whole /64). `X-Forwarded-For` and the like are never read:
//!   behind a reverse proxy every client shares the proxy's address, so the per-address limit
//!   then acts as one global limit and the per-user limit still holds.
//! - **Where**: the per-address table is this process's memory (a first line, before the
//!   database is asked); (hardening) the per-user-name record is in the store
//!   (`Store::login_user_begin`, rule `exogate_core::lockout`), so every replica and every CLI
//!   process (`approvals approve/reject --password-stdin`) counts the same failures, and the
//!   first refusal of a stretch of lock-outs is audited once (`auth.login_failed`,
//!   `detail.reason = "locked_out"`).
//! - **Lock-outs**: a key (an address, or a user name as typed, existing or not) may fail `free`
//!   times; from then on each failure locks it for `first_lockout`, doubling with every further
//!   failure up to `max_lockout`. While either key of an attempt is locked, the attempt is
//!   answered `429` with `Retry-After` and no password is checked. An attempt counts as a
//!   failure from the moment it starts (so a burst of concurrent attempts cannot all slip in
//!   before the first one fails); a success takes it back, and clears the user name's record.
//!   The address's earlier failures stay: logging in to one's own account must not reset the
//!   address's count of guesses at others. A key with no failure for `forget_after` starts over.
//! - **Memory**: each table tracks at most `tracked_keys` keys; beyond that the least recently
//!   failed key is forgotten (an attacker chooses the keys, so nothing here grows with them).
//! - **Audit rows**: per clock minute at most `audited_failures_per_minute` failed logins are
//!   written one by one; every further failure, and every refused (`429`) attempt, is only
//!   counted. The first login attempt of a later minute writes the count as one summarising
//!   `auth.login_failed` event (`unrecorded_failures`, `first_at`, `last_at`), which takes one
//!   of that minute's places. So a flood writes at most `audited_failures_per_minute` rows a
//!   minute, and every attempt is still accounted for.
//!
//! Time is the app's clock (tests drive it).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use exogate_core::Timestamp;
use exogate_core::lockout::{Begin, LockoutRule};
use exogate_core::ports::{Store, StoreError};
use parking_lot::Mutex;

use crate::passwords::PasswordGate;

/// The `[login]` settings (see `config/example.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSettings {
    /// Failures a user name may have before lock-outs start.
    pub free_failures_per_user: u32,
    /// Failures an address may have before lock-outs start.
    pub free_failures_per_address: u32,
    /// The first lock-out, in seconds; each further failure doubles it.
    pub first_lockout_secs: u32,
    /// The longest lock-out, in seconds.
    pub max_lockout_secs: u32,
    /// A key with no failure for this many seconds starts over.
    pub forget_after_secs: u32,
    /// Keys tracked per table (addresses, user names); the least recently failed go first.
    pub tracked_keys: usize,
    /// Password checks (argon2) running at once.
    pub hash_concurrency: usize,
    /// Failed logins written to the audit log one by one per minute.
    pub audited_failures_per_minute: u32,
    /// A web session's absolute lifetime in seconds (idle or not).
    pub session_absolute_secs: i64,
}

impl Default for LoginSettings {
    fn default() -> Self {
        Self {
            free_failures_per_user: 5,
            free_failures_per_address: 20,
            first_lockout_secs: 1,
            max_lockout_secs: 15 * 60,
            forget_after_secs: 60 * 60,
            tracked_keys: 10_000,
            hash_concurrency: default_hash_concurrency(),
            audited_failures_per_minute: 20,
            session_absolute_secs: 12 * 60 * 60,
        }
    }
}

/// One password check per CPU core.
pub fn default_hash_concurrency() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The limiter's key for a client: its IP (IPv4-mapped IPv6 as IPv4; other IPv6 per /64), or a
/// fixed key when the connection's address is unknown (a router served without connect info).
pub fn address_key(peer: Option<SocketAddr>) -> String {
    match peer.map(|p| p.ip()) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The limiter's key for a user name as typed: trimmed, lowercased, at most 64 characters.
pub fn user_key(name: &str) -> String {
    name.trim()
        .chars()
        .take(64)
        .collect::<String>()
        .to_lowercase()
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// When the last failure (or started attempt) was counted, in ms.
    last: i64,
    /// Position in the eviction order.
    seq: u64,
}

/// A bounded map of failure counts: at most `cap` keys, the least recently failed evicted.
#[derive(Debug, Default)]
struct Table {
    map: HashMap<String, Entry>,
    order: BTreeMap<u64, String>,
    next_seq: u64,
    cap: usize,
}

impl Table {
    fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            ..Self::default()
        }
    }

    /// The failures that still count at `now` and when the last was counted.
    fn current(&self, key: &str, now: i64, forget_ms: i64) -> (u32, i64) {
        match self.map.get(key) {
            Some(e) if now.saturating_sub(e.last) < forget_ms => (e.failures, e.last),
            _ => (0, now),
        }
    }

    /// Counts one more failure of `key` at `now`.
    fn bump(&mut self, key: &str, now: i64, forget_ms: i64) {
        let (failures, _) = self.current(key, now, forget_ms);
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = Entry {
            failures: failures.saturating_add(1),
            last: now,
            seq,
        };
        if let Some(old) = self.map.insert(key.to_owned(), entry) {
            self.order.remove(&old.seq);
        }
        self.order.insert(seq, key.to_owned());
        while self.map.len() > self.cap {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.map.remove(&oldest);
        }
    }

    /// Takes back one counted failure of `key` (an attempt that succeeded).
    fn undo(&mut self, key: &str) {
        if let Some(e) = self.map.get_mut(key) {
            e.failures = e.failures.saturating_sub(1);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The lock-out after `failures` failures with `free` free ones, in ms (0: not locked).
fn lockout_ms(failures: u32, free: u32, first_secs: u32, max_secs: u32) -> i64 {
    exogate_core::lockout::lockout_ms(failures, free, first_secs, max_secs)
}

/// An attempt let through by [`LoginGuard::begin`]: already counted as a failure of both keys
/// until [`LoginGuard::succeeded`] takes it back.
#[derive(Debug)]
pub struct Attempt {
    address: String,
    user: String,
}

/// (hardening) Why [`LoginGuard::begin_shared`] refused an attempt.
#[derive(Debug)]
pub enum Refused {
    /// The address or the user name is locked out for `wait_secs`; `audit`: the first refusal
    /// of the user name's stretch of lock-outs, to be audited.
    Locked { wait_secs: u64, audit: bool },
    /// The store could not be asked.
    Store(StoreError),
}

/// A failure count the audit log has not recorded one by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unrecorded {
    pub count: u64,
    pub first: Timestamp,
    pub last: Timestamp,
}

#[derive(Debug, Default)]
struct AuditBudget {
    /// The clock minute the counts below belong to.
    minute: i64,
    written: u32,
    unrecorded: u64,
    first: i64,
    last: i64,
}

impl AuditBudget {
    /// Moves to `now`'s minute; returns the count left over from earlier minutes to summarise.
    fn roll(&mut self, now: i64, per_minute: u32) -> Option<Unrecorded> {
        let minute = now.div_euclid(60_000);
        if minute == self.minute {
            return None;
        }
        self.minute = minute;
        self.written = 0;
        if self.unrecorded == 0 {
            return None;
        }
        let summary = Unrecorded {
            count: self.unrecorded,
            first: Timestamp::from_unix_millis(self.first),
            last: Timestamp::from_unix_millis(self.last),
        };
        self.unrecorded = 0;
        // The summary takes one of this minute's places.
        self.written = 1.min(per_minute);
        Some(summary)
    }

    fn count(&mut self, now: i64) {
        if self.unrecorded == 0 {
            self.first = now;
        }
        self.unrecorded += 1;
        self.last = now;
    }

    /// Whether one more row may be written in the current minute (and takes its place).
    fn take(&mut self, per_minute: u32) -> bool {
        if self.written < per_minute {
            self.written += 1;
            true
        } else {
            false
        }
    }
}

/// A budget of audit rows per clock minute for refusals that anyone on the network can cause
/// without signing in (the consent callback with an unknown `state`): the first `per_minute`
/// each minute get their own row, the rest are counted and summarised in one row at the next
/// refusal of a later minute, as failed logins are.
#[derive(Debug)]
pub struct RowBudget {
    per_minute: u32,
    inner: Mutex<AuditBudget>,
}

impl RowBudget {
    pub fn per_minute(per_minute: u32) -> Self {
        Self {
            per_minute,
            inner: Mutex::new(AuditBudget::default()),
        }
    }

    /// The audit rows for one more refusal at `now`.
    pub fn plan(&self, now: Timestamp) -> AuditPlan {
        let mut b = self.inner.lock();
        let summary = b.roll(now.unix_millis(), self.per_minute);
        let write = b.take(self.per_minute);
        if !write {
            b.count(now.unix_millis());
        }
        AuditPlan { summary, write }
    }

    /// The audit rows for an event at `now` that is only counted, never its own row.
    pub fn counted(&self, now: Timestamp) -> AuditPlan {
        let mut b = self.inner.lock();
        let summary = b.roll(now.unix_millis(), self.per_minute);
        b.count(now.unix_millis());
        AuditPlan {
            summary,
            write: false,
        }
    }

    /// The audit rows for an event at `now` that always gets its own row (outside the budget).
    pub fn recorded(&self, now: Timestamp) -> AuditPlan {
        let summary = self.inner.lock().roll(now.unix_millis(), self.per_minute);
        AuditPlan {
            summary,
            write: true,
        }
    }
}

/// What the audit log gets for one login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditPlan {
    /// Write the summary of earlier unrecorded failures first.
    pub summary: Option<Unrecorded>,
    /// Write this attempt's own row.
    pub write: bool,
}

/// Counters of the limiter (exported on `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterStats {
    pub tracked_addresses: usize,
    /// Attempts refused with `429` so far.
    pub refused: u64,
}

struct Tables {
    addresses: Table,
    refused: u64,
}

/// The login defences of one server (shared by pages and JSON API).
pub struct LoginGuard {
    pub settings: LoginSettings,
    /// Every password check runs through this.
    pub gate: PasswordGate,
    tables: Mutex<Tables>,
    audit: RowBudget,
}

impl LoginGuard {
    pub fn new(settings: LoginSettings) -> Self {
        Self {
            gate: PasswordGate::new(settings.hash_concurrency),
            tables: Mutex::new(Tables {
                addresses: Table::new(settings.tracked_keys),
                refused: 0,
            }),
            audit: RowBudget::per_minute(settings.audited_failures_per_minute),
            settings,
        }
    }

    fn forget_ms(&self) -> i64 {
        i64::from(self.settings.forget_after_secs) * 1000
    }

    /// Starts an attempt by `address` at `user` at `now`, on this process's address table
    /// only: `Err(seconds)` to wait when the address is locked out, otherwise the attempt,
    /// counted against the address as a failure until it succeeds. [`LoginGuard::begin_shared`]
    /// adds the user name's record in the store.
    pub fn begin(&self, address: &str, user: &str, now: Timestamp) -> Result<Attempt, u64> {
        let now = now.unix_millis();
        let s = &self.settings;
        let forget = self.forget_ms();
        let mut t = self.tables.lock();
        let (failures, last) = t.addresses.current(address, now, forget);
        let until = last.saturating_add(lockout_ms(
            failures,
            s.free_failures_per_address,
            s.first_lockout_secs,
            s.max_lockout_secs,
        ));
        let wait_ms = until.saturating_sub(now);
        if wait_ms > 0 {
            t.refused += 1;
            let secs = u64::try_from(wait_ms).unwrap_or(0).div_ceil(1000).max(1);
            return Err(secs);
        }
        t.addresses.bump(address, now, forget);
        Ok(Attempt {
            address: address.to_owned(),
            user: user.to_owned(),
        })
    }

    /// (hardening) The per-user-name rule the store applies.
    pub fn user_rule(&self) -> LockoutRule {
        let s = &self.settings;
        LockoutRule {
            free: s.free_failures_per_user,
            first_secs: s.first_lockout_secs,
            max_secs: s.max_lockout_secs,
            forget_secs: s.forget_after_secs,
        }
    }

    /// (hardening) Starts an attempt on both keys: the address here first (no database work
    /// for a locked-out address), then the user name's record in `store`, shared by every
    /// process. A refusal by the store takes the address's count back (no password is checked).
    pub async fn begin_shared(
        &self,
        store: &dyn Store,
        address: &str,
        user: &str,
        now: Timestamp,
    ) -> Result<Attempt, Refused> {
        let attempt = self
            .begin(address, user, now)
            .map_err(|wait_secs| Refused::Locked {
                wait_secs,
                audit: false,
            })?;
        match store.login_user_begin(user, now, &self.user_rule()).await {
            Ok(Begin::Counted) => Ok(attempt),
            Ok(Begin::Refused { wait_secs, audit }) => {
                let mut t = self.tables.lock();
                t.addresses.undo(&attempt.address);
                t.refused += 1;
                Err(Refused::Locked { wait_secs, audit })
            }
            Err(e) => {
                self.tables.lock().addresses.undo(&attempt.address);
                Err(Refused::Store(e))
            }
        }
    }

    /// The attempt succeeded: take it back from the address (the user name's record is cleared
    /// by [`LoginGuard::succeeded_shared`]).
    pub fn succeeded(&self, attempt: &Attempt) {
        self.tables.lock().addresses.undo(&attempt.address);
    }

    /// (hardening) The attempt succeeded: take it back from the address and clear the user
    /// name's record in `store`.
    pub async fn succeeded_shared(&self, store: &dyn Store, attempt: Attempt) {
        self.succeeded(&attempt);
        if let Err(e) = store.login_user_succeeded(&attempt.user).await {
            tracing::warn!(error = %e, "cannot clear a user name's failed logins");
        }
    }

    /// The audit rows for a failed attempt at `now`.
    pub fn audit_failure(&self, now: Timestamp) -> AuditPlan {
        self.audit.plan(now)
    }

    /// The audit rows for a refused (`429`) attempt at `now`: never its own row.
    pub fn audit_refused(&self, now: Timestamp) -> AuditPlan {
        self.audit.counted(now)
    }

    /// The audit rows for a successful login at `now`: always its own row.
    pub fn audit_success(&self, now: Timestamp) -> AuditPlan {
        self.audit.recorded(now)
    }

    pub fn limiter_stats(&self) -> LimiterStats {
        let t = self.tables.lock();
        LimiterStats {
            tracked_addresses: t.addresses.len(),
            refused: t.refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(edit: impl FnOnce(&mut LoginSettings)) -> LoginGuard {
        let mut s = LoginSettings::default();
        edit(&mut s);
        LoginGuard::new(s)
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_secs(1_800_000_000 + secs)
    }

    #[test]
    fn lockouts_double_up_to_the_cap() {
        assert_eq!(lockout_ms(2, 3, 1, 900), 0);
        assert_eq!(lockout_ms(3, 3, 1, 900), 1000);
        assert_eq!(lockout_ms(4, 3, 1, 900), 2000);
        assert_eq!(lockout_ms(5, 3, 1, 900), 4000);
        assert_eq!(lockout_ms(60, 3, 1, 900), 900_000);
        assert_eq!(lockout_ms(u32::MAX, 3, 7, 900), 900_000);
    }

    #[test]
    fn the_table_holds_at_most_tracked_keys_and_forgets_the_oldest() {
        let g = guard(|s| s.tracked_keys = 100);
        for i in 0..1000 {
            let _ = g.begin(
                &format!("10.0.{}.{}", i / 256, i % 256),
                &format!("u{i}"),
                at(0),
            );
        }
        assert_eq!(g.limiter_stats().tracked_addresses, 100);
        // The newest keys are the ones kept.
        let t = g.tables.lock();
        assert!(t.addresses.map.contains_key("10.0.3.231"));
        assert!(!t.addresses.map.contains_key("10.0.0.0"));
        assert_eq!(t.addresses.order.len(), 100);
    }

    #[test]
    fn a_success_takes_the_attempt_back() {
        let g = guard(|s| s.free_failures_per_address = 2);
        let a = g.begin("a", "alice", at(0)).expect("free");
        g.succeeded(&a);
        let _ = g.begin("a", "alice", at(0)).expect("still free");
        let _ = g.begin("a", "bob", at(0)).expect("one failure counted");
        // Two counted now (in flight or failed): locked for the first lock-out.
        assert_eq!(g.begin("a", "carol", at(0)).unwrap_err(), 1);
        assert!(g.begin("a", "carol", at(1)).is_ok());
    }

    #[test]
    fn keys_are_forgotten_after_a_quiet_period() {
        let g = guard(|s| {
            s.free_failures_per_address = 1;
            s.forget_after_secs = 60;
        });
        let _ = g.begin("a", "alice", at(0)).expect("free");
        assert!(g.begin("a", "bob", at(0)).is_err());
        assert!(g.begin("a", "bob", at(61)).is_ok());
    }

    #[test]
    fn audit_rows_per_minute_are_capped_and_the_rest_summarised() {
        let g = guard(|s| s.audited_failures_per_minute = 3);
        let plans: Vec<_> = (0..10).map(|_| g.audit_failure(at(0))).collect();
        assert_eq!(plans.iter().filter(|p| p.write).count(), 3);
        assert!(plans.iter().all(|p| p.summary.is_none()));
        assert_eq!(g.audit_refused(at(1)), AuditPlan::default());
        let next = g.audit_failure(at(60));
        assert_eq!(
            next.summary,
            Some(Unrecorded {
                count: 8,
                first: at(0),
                last: at(1)
            })
        );
        assert!(next.write);
        // The summary took one of the minute's three places.
        assert!(g.audit_failure(at(61)).write);
        assert!(!g.audit_failure(at(62)).write);
    }

    #[test]
    fn address_keys() {
        assert_eq!(address_key(None), "unknown");
        assert_eq!(
            address_key(Some("127.0.0.2:5000".parse().unwrap())),
            "127.0.0.2"
        );
        assert_eq!(
            address_key(Some("[::ffff:10.1.2.3]:1".parse().unwrap())),
            "10.1.2.3"
        );
        assert_eq!(
            address_key(Some("[2001:db8:1:2:3:4:5:6]:1".parse().unwrap())),
            address_key(Some("[2001:db8:1:2:ffff::1]:1".parse().unwrap()))
        );
        assert_eq!(user_key("  Alice "), "alice");
    }
}
