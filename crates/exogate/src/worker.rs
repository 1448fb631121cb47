//! The background worker: executes approved requests (each claimed with a lease, so several
//! workers or replicas never run one twice), expires pending requests, and re-checks every
//! company's Exchange Admin status on a schedule. After each executed request it patches the
//! delegation inventory. It stops cleanly when `shutdown` fires.

use std::sync::Arc;
use std::time::Duration;

use exogate_core::ops;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppEvent};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Unique per process: recorded on claims and in the audit log.
    pub worker_id: String,
    /// How often to look for work when nothing wakes it (other replicas or the CLI may have
    /// approved something).
    pub poll: Duration,
    /// How often each company's status is re-checked.
    pub recheck_interval: time::Duration,
}

impl WorkerSettings {
    pub fn new(recheck_interval: time::Duration) -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
            poll: Duration::from_millis(500),
            recheck_interval,
        }
    }
}

/// Runs until `shutdown` is cancelled. Errors are logged and retried on the next round; the
/// worker never dies on one bad request.
pub async fn run(app: Arc<App>, settings: WorkerSettings, shutdown: CancellationToken) {
    tracing::info!(worker = %settings.worker_id, "worker started");
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        round(&app, &settings, &shutdown).await;
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = app.worker_wake.notified() => {}
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
    tracing::info!(worker = %settings.worker_id, "worker stopped");
}

/// One pass: execute everything claimable, expire what is due, re-check stale statuses.
pub async fn round(app: &App, settings: &WorkerSettings, shutdown: &CancellationToken) {
    let ctx = app.ctx();
    while !shutdown.is_cancelled() {
        match ops::execute::run_once(ctx, &settings.worker_id).await {
            Ok(Some(request)) => {
                tracing::info!(request = %request.id, state = request.state.as_str(), "request executed");
                // Keep the delegation inventory true without waiting for the next sweep.
                if let Err(err) = ops::inventory::patch_after_execution(ctx, &request).await {
                    tracing::warn!(request = %request.id, code = err.code(), error = %err, "patching the inventory failed");
                }
                app.publish(AppEvent::RequestChanged {
                    id: request.id,
                    state: request.state.as_str(),
                });
            }
            Ok(None) => break,
            Err(err) => {
                tracing::warn!(code = err.code(), error = %err, "execution round failed");
                break;
            }
        }
    }
    if let Err(err) = ops::requests::expire_due(ctx, 500).await {
        tracing::warn!(code = err.code(), error = %err, "expiring requests failed");
    }
    recheck_statuses(app, settings, shutdown).await;
}

async fn recheck_statuses(app: &App, settings: &WorkerSettings, shutdown: &CancellationToken) {
    let ctx = app.ctx();
    let companies = match app.store.list_companies().await {
        Ok(companies) => companies,
        Err(err) => {
            tracing::warn!(error = %err, "listing companies for status re-check failed");
            return;
        }
    };
    let now = app.clock.now();
    for company in companies {
        if shutdown.is_cancelled() {
            return;
        }
        if company.connection.is_none() {
            continue;
        }
        let due = match &company.exchange_status {
            None => true,
            Some(status) => {
                let age_ms = now.unix_millis() - status.checked_at.unix_millis();
                age_ms >= settings.recheck_interval.whole_milliseconds() as i64
            }
        };
        if !due {
            continue;
        }
        match ops::companies::check_status(ctx, None, &company.id).await {
            Ok(status) => {
                tracing::info!(company = %company.id, state = status.state.as_str(), "status re-checked");
                app.publish(AppEvent::StatusChecked {
                    company: company.id.as_str().to_owned(),
                    state: status.state.as_str(),
                });
            }
            Err(err) => {
                tracing::warn!(company = %company.id, code = err.code(), error = %err, "status re-check failed")
            }
        }
    }
}
