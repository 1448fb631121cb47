//! Concurrency limits for Exchange calls: a gate per tenant plus a global semaphore. A permit
//! is held only while a request is on the wire, never during a backoff sleep.
//!
//! The per-tenant gate adapts: a 429 cuts the calls the tenant may have in flight by a quarter
//! (at least one, never below one), once per round (429s of calls sent before the cut are
//! the same news); clean answers let one more through again, slowly near the level that last
//! drew a 429, up to the configured limit. So a tenant whose Exchange allows fewer calls than
//! configured is asked at about the pace it allows instead of answering 429 again and again.

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
    /// Counts cuts; a permit taken before the latest cut does not cut again.
    epoch: u64,
    /// The limit at which Exchange last answered 429.
    ceiling: Option<usize>,
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
                epoch: 0,
                ceiling: None,
            }),
        }
    }

    fn epoch(&self) -> u64 {
        self.state.lock().epoch
    }

    /// A 429 on a call sent in `epoch`: cut the limit, unless a cut since then already
    /// answered it. Free permits are withdrawn now, the rest as they come back.
    fn throttled(&self, epoch: u64) {
        let mut s = self.state.lock();
        s.clean = 0;
        if epoch < s.epoch {
            return;
        }
        s.ceiling = Some(s.limit);
        let target = (s.limit * 3 / 4).min(s.limit - 1).max(1);
        let cut = s.limit - target;
        s.epoch += 1;
        if cut == 0 {
            return;
        }
        s.limit = target;
        let now = self.sem.forget_permits(cut);
        s.debt += cut - now;
    }

    /// An answer without a 429: after enough of them in a row (`limit × 4`, or `limit × 32`
    /// to reach the level that last drew a 429 again), allow one more.
    fn answered(&self) {
        let mut s = self.state.lock();
        if s.limit >= s.max {
            return;
        }
        s.clean += 1;
        let near_ceiling = s.ceiling == Some(s.limit + 1);
        let need = s.limit * if near_ceiling { 32 } else { 4 };
        if s.clean < need {
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
    /// The gate's epoch when the call was let through.
    epoch: u64,
    _global: OwnedSemaphorePermit,
}

impl Permits {
    /// Reports how the request went: `throttled` for a 429 (of the request or of a batch's
    /// sub-request), otherwise an answer.
    pub(crate) fn report(&self, throttled: bool) {
        if throttled {
            self.gate.throttled(self.epoch);
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
        let epoch = gate.epoch();
        Permits {
            tenant: Some(tenant_permit),
            gate,
            epoch,
            _global: global_permit,
        }
    }

    /// Calls the tenant may have in flight now.
    pub(crate) fn tenant_limit(&self, tenant: Uuid) -> usize {
        self.gate(tenant).limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(l: &Limiter, t: Uuid) -> usize {
        l.gate(t).sem.available_permits()
    }

    #[tokio::test]
    async fn a_429_cuts_once_per_round_and_clean_answers_restore_the_limit() {
        let l = Limiter::new(8, 100);
        let t = Uuid::nil();
        let held: Vec<Permits> = futures::future::join_all((0..8).map(|_| l.acquire(t))).await;
        // All 8 out, 4 of them refused: one cut (to 6), owed and paid as permits come back.
        for p in &held[..4] {
            p.report(true);
        }
        assert_eq!(l.tenant_limit(t), 6);
        drop(held);
        assert_eq!(free(&l, t), 6);
        // A call let through after the cut and refused cuts again; free permits go at once.
        let p = l.acquire(t).await;
        p.report(true);
        assert_eq!(l.tenant_limit(t), 4);
        drop(p);
        assert_eq!(free(&l, t), 4);
        for _ in 0..3 {
            let p = l.acquire(t).await;
            p.report(true);
        }
        assert_eq!(l.tenant_limit(t), 1, "4 → 3 → 2 → 1");
        let p = l.acquire(t).await;
        // Clean answers: limit × 4 in a row add one, but limit × 32 to reach the level that
        // last drew a 429 (here 1 → 2 is that level).
        for _ in 0..4 {
            p.report(false);
        }
        assert_eq!(l.tenant_limit(t), 1);
        for _ in 4..32 {
            p.report(false);
        }
        assert_eq!(l.tenant_limit(t), 2);
        for _ in 0..(8 + 12 + 16 + 20 + 24 + 28) {
            p.report(false);
        }
        assert_eq!(l.tenant_limit(t), 8, "back to the configured limit");
        for _ in 0..100 {
            p.report(false);
        }
        assert_eq!(l.tenant_limit(t), 8, "never beyond it");
        drop(p);
        assert_eq!(free(&l, t), 8);

        // Never below one.
        let l = Limiter::new(1, 100);
        let p = l.acquire(t).await;
        p.report(true);
        drop(p);
        assert_eq!((l.tenant_limit(t), free(&l, t)), (1, 1));
    }
}
