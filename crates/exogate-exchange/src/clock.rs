//! Time as the client sees it: "now" for token expiry and the role-propagation window, and
//! "sleep" for retry backoff. Real time by default ([`SystemClock`]); tests inject a
//! [`ManualClock`] whose sleeps move its own time forward instead of waiting.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use time::OffsetDateTime;

/// The client's source of time. Every wait the client does goes through [`Clock::sleep`].
pub trait Clock: Send + Sync + 'static {
    /// Current time (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Waits `duration` (backoff, `Retry-After`).
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Wall-clock time and `tokio::time::sleep` (so tokio's paused time also drives it).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock for tests: time stands still until [`ManualClock::advance`] or a sleep moves it.
/// A sleep returns at once after moving the time forward and is recorded, so tests can check
/// that a `Retry-After` was honoured without waiting for it.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualInner>>,
}

#[derive(Debug)]
struct ManualInner {
    now: OffsetDateTime,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock frozen at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ManualInner {
                now: start,
                sleeps: Vec::new(),
            })),
        }
    }

    /// A clock frozen at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        self.inner.lock().now += by;
    }

    /// Sets the time.
    pub fn set(&self, at: OffsetDateTime) {
        self.inner.lock().now = at;
    }

    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.lock().sleeps.clone()
    }

    /// Sum of every sleep requested so far.
    pub fn slept(&self) -> Duration {
        self.inner.lock().sleeps.iter().sum()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.inner.lock().now
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        {
            let mut inner = self.inner.lock();
            inner.now += duration;
            inner.sleeps.push(duration);
        }
        Box::pin(tokio::task::yield_now())
    }
}
