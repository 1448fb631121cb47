//! The Exchange admin API: `POST /adminapi/beta/{tenant}/InvokeCommand` and `$batch`, with the
//! cmdlets of `docs/MICROSOFT.md#cmdlets` ([`cmdlets::Cmdlet::ALL`] lists them: the delegation
//! cmdlets plus Get-Recipient, Get-DistributionGroupMember and Get-OrganizationConfig), faults and
//! knobs.
//!
//! * [`directory`]: the per-tenant directory model (recipients, principals, ACLs, group
//!   membership).
//! * [`seed`]: [`DirectorySeed`] (scenario JSON), the demo directory and a generator.
//! * [`params`], [`cmdlets`]: parameter binding and the cmdlets as pure functions.
//! * [`errors`]: error families A, B and C.
//! * [`transport`]: HTTP, authorization, paging, `$batch`, throttling and fault injection.
//! * [`control`]: the Exchange half of the control API under `/_emulator/`.

use std::collections::HashMap;

use uuid::Uuid;

pub mod cmdlets;
pub mod control;
pub mod directory;
pub mod errors;
pub mod params;
pub mod seed;
pub mod transport;

pub use directory::Directory;
pub use seed::{DirectorySeed, Grant, SeedError, demo_directory_seed, generated_directory_seed};
pub use transport::routes;

/// Control endpoints for directory objects, knobs, counters and the apply log.
pub fn control_routes() -> axum::Router<std::sync::Arc<crate::state::Shared>> {
    control::routes()
}

/// Builds a tenant's directory from the scenario's `directory` value (a [`DirectorySeed`] in
/// JSON), or an empty directory when it is absent. `rng_seed` fixes every generated id.
pub fn directory_from_json(
    value: Option<&serde_json::Value>,
    initial_domain: &str,
    rng_seed: u64,
) -> Result<Directory, SeedError> {
    let seed: DirectorySeed = match value {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| SeedError::Invalid(e.to_string()))?
        }
        None => DirectorySeed::default(),
    };
    Directory::from_seed(&seed, initial_domain, rng_seed)
}

/// Exchange runtime state that is not tenant data: rate buckets and the skiptoken key.
#[derive(Debug, Default)]
pub struct Runtime {
    /// Per-tenant token buckets for `tenant_rate_per_sec`: (tokens, last refill).
    pub buckets: HashMap<Uuid, (f64, time::OffsetDateTime)>,
    /// Key that authenticates skiptokens (set from the seeded rng on first use).
    pub skiptoken_key: Option<[u8; 32]>,
    /// Bearer tokens whose signature, issuer and audience already verified, with their claims.
    /// Lifetime (`nbf`/`exp`) is still checked against the clock on every use.
    pub verified_tokens: parking_lot::Mutex<HashMap<String, crate::entra::AccessClaims>>,
}
