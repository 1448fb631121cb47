//! A small "Entra admin centre" page per tenant: assign or remove the Exchange Administrator
//! role for a service principal (the seed's Step 2).

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
