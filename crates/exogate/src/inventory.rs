//! The delegation inventory sweep at the edge: the sweep itself is the core's
//! ([`exogate_core::ops::inventory::sweep`], over the `Microsoft` port, whose adapter streams,
//! `$batch`es and paces the reads per tenant); this module gives it a lease owner and the
//! runtime's timer, and sweeps one company for a person ([`sync_company`]) or every company
//! ([`sync_all`]).

use std::time::Duration;

use exogate_core::model::{Actor, CompanyId, TenantId};
use exogate_core::ops::{self, Ctx};
use exogate_core::ports::Timer;
use futures::StreamExt as _;

pub use exogate_core::ops::inventory::{
    DEFAULT_LEASE, FA_CHUNK, Phase, Progress, ProgressFn, SweepError, SweepReport, no_progress,
};

use crate::app::App;

/// The runtime's timer.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioTimer;

#[async_trait::async_trait]
impl Timer for TokioTimer {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Sweeps one company's tenant into the store for `actor` (None: the scheduler), under a lease
/// of `lease` renewed every quarter of it, as a run of its own.
pub async fn sweep(
    ctx: Ctx<'_>,
    lease: Duration,
    actor: Option<&Actor>,
    company: &CompanyId,
    tenant: TenantId,
    progress: &ProgressFn,
) -> Result<SweepReport, SweepError> {
    let options = ops::inventory::SweepOptions {
        actor,
        tenant,
        owner: uuid::Uuid::new_v4().to_string(),
        lease,
        timer: &TokioTimer,
    };
    ops::inventory::sweep(ctx, company, options, progress).await
}

/// Sweeps one company for `actor` (technician or higher, entitled, company connected).
pub async fn sync_company(
    app: &App,
    actor: &Actor,
    company: &CompanyId,
    progress: &ProgressFn,
) -> Result<SweepReport, SweepError> {
    let (company, tenant) = ops::inventory::authorize_sweep(app.ctx(), actor, company).await?;
    sweep(
        app.ctx(),
        app.sweep_lease,
        Some(actor),
        &company.id,
        tenant,
        progress,
    )
    .await
}

/// Sweeps every company the actor may sweep whose Exchange Admin is configured ([`skipped`]
/// lists the others), `parallel` at a time (the client's
/// global limiter bounds the calls in flight). One result per company, in company order.
pub async fn sync_all(
    app: &App,
    actor: &Actor,
    parallel: usize,
    progress: &ProgressFn,
) -> Result<Vec<(CompanyId, Result<SweepReport, SweepError>)>, SweepError> {
    let companies: Vec<CompanyId> = app
        .store
        .list_companies()
        .await?
        .into_iter()
        .filter(|c| skip_reason(c).is_none())
        .filter(|c| exogate_core::policy::can_request(&actor.user, &c.id).is_ok())
        .map(|c| c.id)
        .collect();
    let results = futures::stream::iter(companies)
        .map(|c| async move {
            let r = sync_company(app, actor, &c, progress).await;
            (c, r)
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    Ok(results)
}

// (drift) Companies a sweep of all leaves out.
/// Why a sweep of every company leaves `company` out: its Exchange Admin state when not
/// configured (`not_connected` without a connection); None when it is swept.
pub fn skip_reason(company: &exogate_core::model::Company) -> Option<&'static str> {
    if company.connection.is_none() {
        return Some("not_connected");
    }
    match company.exchange_status.as_ref().map(|s| s.shown_state()) {
        Some(exogate_core::model::ExchangeAdminState::Configured) => None,
        Some(state) => Some(state.as_str()),
        None => Some("unchecked"),
    }
}

/// The companies the actor may sweep that [`sync_all`] leaves out, with their state.
pub async fn skipped(
    app: &App,
    actor: &Actor,
) -> Result<Vec<(CompanyId, &'static str)>, SweepError> {
    Ok(app
        .store
        .list_companies()
        .await?
        .into_iter()
        .filter(|c| exogate_core::policy::can_request(&actor.user, &c.id).is_ok())
        .filter_map(|c| skip_reason(&c).map(|why| (c.id, why)))
        .collect())
}
