//! The control API under `/_emulator/`: set up tenants and apps, drive the clock, read and set
//! knobs, read counters and the apply log.

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().merge(crate::exchange::control_routes())
}
