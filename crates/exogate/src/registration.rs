//! (hardening) `POST /oauth/register` is open to anyone (Dynamic Client Registration), so it is
//! bounded twice: per client address here (`[oauth] registrations_per_minute`, the TCP peer as
//! the login limiter keys it, answered `429 rate_limited` with `Retry-After`), and across the
//! server by the core (`exogate_core::ops::oauth::register_client`: unused registrations expire
//! after `[oauth] unused_client_hours`, at most `[oauth] max_unused_clients` wait at once,
//! `429 too_many_registrations`). Time is the app's clock (tests drive it); keys whose budget
//! is full again are dropped every [`crate::limits::HOUSEKEEPING_EVERY`] checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use exogate_core::ports::Clock;

use crate::limits::{AppClock, HOUSEKEEPING_EVERY, Keyed, keyed, secs};

/// Registrations per client address.
pub struct RegistrationLimiter {
    addresses: Keyed<String>,
    clock: AppClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for RegistrationLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationLimiter")
            .finish_non_exhaustive()
    }
}

impl RegistrationLimiter {
    /// `per_minute` registrations per address (a burst of that many; 0 counts as 1).
    pub fn new(per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        let clock = AppClock(clock);
        Self {
            addresses: keyed(per_minute, &clock),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one registration from `address`'s budget: `Err(seconds)` to wait when it is spent.
    pub fn check(&self, address: &str) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY
            == HOUSEKEEPING_EVERY - 1
        {
            self.addresses.retain_recent();
            self.addresses.shrink_to_fit();
        }
        self.addresses
            .check_key(&address.to_owned())
            .map_err(|not_until| {
                use governor::clock::Clock as _;
                secs(not_until.wait_time_from(self.clock.now()))
            })
    }

    /// Addresses tracked (tests, metrics).
    pub fn tracked(&self) -> usize {
        self.addresses.len()
    }
}
