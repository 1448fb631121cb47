//! The Exchange admin API: `POST /adminapi/beta/{tenant}/InvokeCommand` and `$batch`, with the
//! delegation cmdlets of reference §6, faults and knobs.

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

/// A tenant's Exchange directory: recipients, principals and permissions.
#[derive(Debug, Clone, Default)]
pub struct Directory {}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}

/// Control endpoints for directory objects, knobs, counters and the apply log.
pub fn control_routes() -> Router<Arc<Shared>> {
    Router::new()
}
