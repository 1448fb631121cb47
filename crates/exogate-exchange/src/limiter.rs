//! Concurrency limits for Exchange calls: a gate per tenant plus a global semaphore. A permit
//! is held only while a request is on the wire, never during a backoff sleep.
//!
//! The per-tenant gate adapts (additive increase, multiplicative decrease): each 429 halves the
//! calls the tenant may have in flight (never below one), and every run of answers without a
//! 429 lets one more through again, up to the configured limit. So a tenant whose Exchange
//! allows fewer calls than configured is asked at the rate it allows, instead of answering
//! most requests with 429.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

/// One tenant's adaptive gate.
struct Gate {
    sem: Arc<Semaphore>,
    state: parking_lot::Mutex<GateState>,
}

struct GateState {
    /// Calls allowed in flight now (1..=max).
    limit: usize,
    max: usize,
    /// Permits to drop as they come back (the limit shrank while they were out).
    debt: usize,
    /// Answers without a 429 since the limit last changed.
    clean: usize,
}

impl Gate {
    fn new(max: usize) -> Self {
        Self {
            sem: Arc::new(Semaphore::new(max)),
            state: parking_lot::Mutex::new(GateState {
                limit: max,
                max,
                debt: 0,
                clean: 0,
            }),
        }
    }

    /// A 429: halve the limit. Permits that are free are withdrawn now; the rest as they
    /// come back.
    fn throttled(&self) {
        let mut s = self.state.lock();
        let target = (s.limit / 2).max(1);
        let cut = s.limit - target;
        if cut == 0 {
            s.clean = 0;
            return;
        }
        s.limit = target;
        s.clean = 0;
        let now = self.sem.forget_permits(cut);
        s.debt += cut - now;
    }

    /// An answer without a 429: after `limit × 4` of them in a row, allow one more.
    fn answered(&self) {
        let mut s = self.state.lock();
        if s.limit >= s.max {
            return;
        }
        s.clean += 1;
        if s.clean < s.limit * 4 {
            return;
        }
        s.clean = 0;
        s.limit += 1;
        if s.debt > 0 {
            s.debt -= 1;
        } else {
            self.sem.add_permits(1);
        }
    }

    /// A permit came back: keep it out if the limit shrank meanwhile.
    fn release(&self, permit: OwnedSemaphorePermit) {
        let mut s = self.state.lock();
        if s.debt > 0 {
            s.debt -= 1;
            permit.forget();
        } else {
            drop(permit);
        }
    }

    fn limit(&self) -> usize {
        self.state.lock().limit
    }
}

pub(crate) struct Limiter {
    per_tenant: usize,
    global: Arc<Semaphore>,
    tenants: parking_lot::Mutex<HashMap<Uuid, Arc<Gate>>>,
}

/// Both permits; given back when the request finishes.
pub(crate) struct Permits {
    tenant: Option<OwnedSemaphorePermit>,
    gate: Arc<Gate>,
    _global: OwnedSemaphorePermit,
}

impl Permits {
    /// Reports how the request went: `throttled` for a 429 (of the request or of a batch's
    /// sub-request), otherwise an answer.
    pub(crate) fn report(&self, throttled: bool) {
        if throttled {
            self.gate.throttled();
        } else {
            self.gate.answered();
        }
    }
}

impl Drop for Permits {
    fn drop(&mut self) {
        if let Some(p) = self.tenant.take() {
            self.gate.release(p);
        }
    }
}

impl Limiter {
    pub(crate) fn new(per_tenant: usize, global: usize) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            global: Arc::new(Semaphore::new(global.max(1))),
            tenants: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, tenant: Uuid) -> Arc<Gate> {
        self.tenants
            .lock()
            .entry(tenant)
            .or_insert_with(|| Arc::new(Gate::new(self.per_tenant)))
            .clone()
    }

    pub(crate) async fn acquire(&self, tenant: Uuid) -> Permits {
        let gate = self.gate(tenant);
        // The semaphores are never closed, so acquisition cannot fail.
        let tenant_permit = match gate.sem.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("tenant semaphore closed"),
        };
        let global_permit = match self.global.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("global semaphore closed"),
        };
        Permits {
            tenant: Some(tenant_permit),
            gate,
            _global: global_permit,
        }
    }

    /// A 429 seen outside a request's own status (a batch's sub-request).
    pub(crate) fn throttled(&self, tenant: Uuid) {
        self.gate(tenant).throttled();
    }

    /// Calls the tenant may have in flight now.
    pub(crate) fn tenant_limit(&self, tenant: Uuid) -> usize {
        self.gate(tenant).limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttling_halves_the_limit_and_clean_answers_restore_it() {
        let l = Limiter::new(8, 100);
        let t = Uuid::nil();
        let held: Vec<Permits> = futures::future::join_all((0..8).map(|_| l.acquire(t))).await;
        // All 8 are out: the cut to 4 is owed and paid as permits come back.
        held[0].report(true);
        assert_eq!(l.tenant_limit(t), 4);
        drop(held);
        assert_eq!(l.gate(t).sem.available_permits(), 4);
        // Free permits are withdrawn at once.
        let p = l.acquire(t).await;
        p.report(true);
        assert_eq!(l.tenant_limit(t), 2);
        drop(p);
        assert_eq!(l.gate(t).sem.available_permits(), 2);
        let p = l.acquire(t).await;
        p.report(true);
        p.report(true);
        assert_eq!(l.tenant_limit(t), 1, "never below one");
        // limit × 4 clean answers in a row add one permit.
        for _ in 0..4 {
            p.report(false);
        }
        assert_eq!(l.tenant_limit(t), 2);
        drop(p);
        assert_eq!(l.gate(t).sem.available_permits(), 2);
        let p = l.acquire(t).await;
        for _ in 0..(8 + 12 + 16 + 20 + 24 + 28 + 100) {
            p.report(false);
        }
        assert_eq!(
            l.tenant_limit(t),
            8,
            "back to the configured limit, not beyond"
        );
        drop(p);
        assert_eq!(l.gate(t).sem.available_permits(), 8);
    }
}
