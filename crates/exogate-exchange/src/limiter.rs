//! Concurrency limits for Exchange calls: a semaphore per tenant plus a global one. A permit
//! is held only while a request is on the wire, never during a backoff sleep.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

pub(crate) struct Limiter {
    per_tenant: usize,
    global: Arc<Semaphore>,
    tenants: parking_lot::Mutex<HashMap<Uuid, Arc<Semaphore>>>,
}

/// Both permits; dropped when the request finishes.
pub(crate) struct Permits {
    _tenant: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Limiter {
    pub(crate) fn new(per_tenant: usize, global: usize) -> Self {
        Self {
            per_tenant: per_tenant.max(1),
            global: Arc::new(Semaphore::new(global.max(1))),
            tenants: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    pub(crate) async fn acquire(&self, tenant: Uuid) -> Permits {
        let sem = self
            .tenants
            .lock()
            .entry(tenant)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_tenant)))
            .clone();
        // The semaphores are never closed, so acquisition cannot fail.
        let tenant_permit = match sem.acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("tenant semaphore closed"),
        };
        let global_permit = match self.global.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => unreachable!("global semaphore closed"),
        };
        Permits {
            _tenant: tenant_permit,
            _global: global_permit,
        }
    }
}
