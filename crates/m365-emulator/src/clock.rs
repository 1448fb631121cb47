//! The emulator's clock. Real time by default; tests can freeze it and move it by hand
//! (`POST /_emulator/clock`), so expiry, propagation delays and replication lag are driven
//! without sleeping.

use parking_lot::Mutex;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Default)]
pub struct Clock {
    /// `None`: wall clock plus `offset`. `Some(t)`: frozen at `t`.
    frozen: Mutex<Option<OffsetDateTime>>,
    offset: Mutex<Duration>,
}

impl Clock {
    pub fn now(&self) -> OffsetDateTime {
        match *self.frozen.lock() {
            Some(t) => t,
            None => OffsetDateTime::now_utc() + *self.offset.lock(),
        }
    }

    /// Freezes the clock at `at`.
    pub fn freeze(&self, at: OffsetDateTime) {
        *self.frozen.lock() = Some(at);
    }

    /// Moves the clock forward (frozen or not).
    pub fn advance(&self, by: Duration) {
        let mut frozen = self.frozen.lock();
        match frozen.as_mut() {
            Some(t) => *t += by,
            None => *self.offset.lock() += by,
        }
    }

    /// Back to the wall clock with no offset.
    pub fn unfreeze(&self) {
        *self.frozen.lock() = None;
        *self.offset.lock() = Duration::ZERO;
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.lock().is_some()
    }
}
