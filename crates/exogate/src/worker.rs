//! The background worker: executes approved requests (each claimed with a lease, so several
//! workers or replicas never run one twice), expires pending requests, and re-checks every
//! company's Exchange Admin status on a schedule. After each executed request it patches the
//! delegation inventory, and it sweeps each configured company's inventory on a schedule (in
//! tasks of their own, so a long sweep never holds up an approved change). Every ten minutes it
//! deletes expired web sessions. It stops cleanly when `shutdown` fires; an interrupted sweep
//! resumes on the next start (once its lease has passed). With `[audit] checkpoint_interval_minutes`
//! set it signs the audit chain's head on that schedule (see [`crate::checkpoint`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use exogate_core::inventory::SweepState;
use exogate_core::model::{CompanyId, ExchangeAdminState, Timestamp};
use exogate_core::ops;
use exogate_core::ports::StoreError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::{App, AppEvent};
use crate::config::Config;

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
    /// How often each configured company's inventory is swept (None: never on a schedule).
    pub sweep_interval: Option<time::Duration>,
    /// Signed audit checkpoints (None: none are written).
    pub checkpoints: Option<Arc<crate::checkpoint::Checkpointer>>,
    /// While the database is down, the pause between rounds doubles from one second up to this.
    pub database_backoff_max: Duration,
}

/// A sweep still marked running this long after it started is taken as crashed and resumed.
const RESUME_RUNNING_SWEEP_AFTER_SECS: i64 = 15 * 60;
/// How often the worker looks for inventories due for a sweep.
const SWEEP_CHECK_EVERY: Duration = Duration::from_secs(30);

/// How often expired web sessions are deleted (they are refused as soon as they expire; this
/// only keeps the table small).
const SESSION_PURGE_EVERY: Duration = Duration::from_secs(600);
/// A failed sweep is tried again after at most this long.
const RETRY_FAILED_SWEEP_AFTER_SECS: i64 = 60 * 60;

impl WorkerSettings {
    pub fn new(recheck_interval: time::Duration) -> Self {
        Self {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
            poll: Duration::from_millis(500),
            recheck_interval,
            sweep_interval: None,
            checkpoints: None,
            database_backoff_max: Duration::from_secs(30),
        }
    }

    /// The schedule the configuration asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            sweep_interval: config.inventory_sweep_interval,
            poll: config.worker_poll,
            database_backoff_max: config.database_backoff_max,
            ..Self::new(config.recheck_interval)
        }
    }

    /// As [`WorkerSettings::from_config`], with the audit checkpoints the configuration asks for
    /// (reading their key, creating it on first use).
    pub fn from_config_with_checkpoints(
        config: &Config,
    ) -> Result<Self, crate::checkpoint::CheckpointError> {
        Ok(Self {
            checkpoints: crate::checkpoint::Checkpointer::from_config(config)?,
            ..Self::from_config(config)
        })
    }
}

/// Runs until `shutdown` is cancelled. Errors are logged and retried on the next round; the
/// worker never dies on one bad request.
pub async fn run(app: Arc<App>, settings: WorkerSettings, shutdown: CancellationToken) {
    tracing::info!(worker = %settings.worker_id, "worker started");
    let mut sweeps: JoinSet<CompanyId> = JoinSet::new();
    let mut sweeping: HashSet<CompanyId> = HashSet::new();
    // The schedule is in hours; looking at every company's inventory status on every 500 ms
    // round would be one query per company per round for nothing.
    let mut next_sweep_check = tokio::time::Instant::now();
    let mut next_session_purge = tokio::time::Instant::now();
    let mut checkpoint_state = crate::checkpoint::CheckpointState::default();
    let mut backoff = Duration::ZERO;
    // (reviews)
    let mut review_schedule = crate::review_jobs::ReviewSchedule::default();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        // One cheap query first: while the database is down (restarting, failing over) every
        // step of a round would fail and log; wait longer and longer instead.
        if let Err(StoreError::Unavailable(reason)) = app.store.audit_head().await {
            backoff = (backoff * 2).clamp(
                Duration::from_secs(1),
                settings.database_backoff_max.max(Duration::from_secs(1)),
            );
            tracing::warn!(worker = %settings.worker_id, %reason, retry_in_ms = backoff.as_millis() as u64, "database unavailable: the worker waits");
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = app.worker_wake.notified() => {}
                () = tokio::time::sleep(backoff) => {}
            }
            continue;
        }
        if !backoff.is_zero() {
            tracing::info!(worker = %settings.worker_id, "database answers again: the worker resumes");
            backoff = Duration::ZERO;
        }
        round(&app, &settings, &shutdown).await;
        while let Some(done) = sweeps.try_join_next() {
            if let Ok(company) = done {
                sweeping.remove(&company);
            }
        }
        if let Some(interval) = settings.sweep_interval
            && tokio::time::Instant::now() >= next_sweep_check
        {
            schedule_sweeps(&app, interval, &mut sweeps, &mut sweeping).await;
            next_sweep_check = tokio::time::Instant::now() + SWEEP_CHECK_EVERY;
        }
        if let Some(checkpoints) = &settings.checkpoints {
            checkpoints.tick(&app, &mut checkpoint_state).await;
        }
        // (reviews)
        review_schedule.tick(&app).await;
        if tokio::time::Instant::now() >= next_session_purge {
            match app.store.delete_expired_sessions(app.clock.now()).await {
                Ok(count) => app.publish(AppEvent::SessionsPurged { count }),
                Err(err) => tracing::warn!(error = %err, "deleting expired sessions failed"),
            }
            next_session_purge = tokio::time::Instant::now() + SESSION_PURGE_EVERY;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = app.worker_wake.notified() => {}
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
    // An interrupted sweep keeps its progress and resumes on the next start.
    sweeps.abort_all();
    while sweeps.join_next().await.is_some() {}
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

/// Whether a company's inventory is due for a sweep at `now`.
fn sweep_due(
    status: Option<&exogate_core::inventory::InventoryStatus>,
    now: Timestamp,
    interval: time::Duration,
) -> bool {
    let Some(status) = status else { return true };
    let older_than = |at: Timestamp, secs: i64| now.unix_millis() - at.unix_millis() >= secs * 1000;
    match status.sweep_state {
        SweepState::Running => older_than(status.sweep_started_at, RESUME_RUNNING_SWEEP_AFTER_SECS),
        SweepState::Ok => older_than(
            status.sweep_finished_at.unwrap_or(status.sweep_started_at),
            interval.whole_seconds(),
        ),
        SweepState::Failed => older_than(
            status.sweep_finished_at.unwrap_or(status.sweep_started_at),
            interval.whole_seconds().min(RETRY_FAILED_SWEEP_AFTER_SECS),
        ),
    }
}

/// Starts a sweep, in a task of its own, for every configured company whose inventory is due.
async fn schedule_sweeps(
    app: &Arc<App>,
    interval: time::Duration,
    sweeps: &mut JoinSet<CompanyId>,
    sweeping: &mut HashSet<CompanyId>,
) {
    let companies = match app.store.list_companies().await {
        Ok(companies) => companies,
        Err(err) => {
            tracing::warn!(error = %err, "listing companies for inventory sweeps failed");
            return;
        }
    };
    let now = app.clock.now();
    for company in companies {
        let Some(connection) = &company.connection else {
            continue;
        };
        let configured = company
            .exchange_status
            .as_ref()
            .is_some_and(|s| s.shown_state() == ExchangeAdminState::Configured);
        if !configured || sweeping.contains(&company.id) {
            continue;
        }
        let status = match app.store.inventory_status(&company.id).await {
            Ok(status) => status,
            Err(err) => {
                tracing::warn!(company = %company.id, error = %err, "reading the inventory status failed");
                continue;
            }
        };
        if !sweep_due(status.as_ref(), now, interval) {
            continue;
        }
        sweeping.insert(company.id.clone());
        let app = app.clone();
        let tenant = connection.tenant_id;
        let id = company.id.clone();
        sweeps.spawn(async move {
            let progress = crate::inventory::no_progress();
            let ok = match crate::inventory::sweep(app.ctx(), app.sweep_lease, None, &id, tenant, &progress).await {
                Ok(report) => {
                    tracing::info!(company = %id, report = ?report, "scheduled inventory sweep finished");
                    true
                }
                Err(err @ crate::inventory::SweepError::Busy { .. }) => {
                    tracing::info!(company = %id, reason = %err, "scheduled inventory sweep skipped");
                    false
                }
                Err(err) => {
                    tracing::warn!(company = %id, error = %err, "scheduled inventory sweep failed");
                    false
                }
            };
            app.publish(AppEvent::InventorySwept { company: id.as_str().to_owned(), ok });
            id
        });
    }
}
