//! Microsoft Entra: OpenID configuration, JWKS, admin consent (v1 and v2), and the
//! client-credentials token endpoint (secret and certificate assertion). Reference §2–§3.

use std::sync::Arc;

use axum::Router;

use crate::state::Shared;

/// The emulator's RS256 signing key.
pub struct SigningKeys {}

impl SigningKeys {
    pub fn generate() -> anyhow::Result<Self> {
        Ok(Self {})
    }
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
}
