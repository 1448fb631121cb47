//! Use-cases: one async function per operation, over the ports. Every adapter (web, JSON API,
//! MCP, CLI, worker) calls these and nothing else for business rules.
//!
//! Each function takes a [`Ctx`] (store, Microsoft, clock, settings), the acting [`Actor`] where a
//! person acts, and parsed inputs. Ids of new things are inputs too.

use crate::model::Actor;
use crate::ports::{Clock, Microsoft, Store};

pub mod audit;
pub mod companies;
pub mod consent;
pub mod drift;
pub mod execute;
pub mod inventory;
// (notify)
pub mod notify;
pub mod oauth;
mod on_record;
pub mod reads;
pub mod requests;
// (timed-grants)
pub mod timed;
pub mod users;
// (msft-signin)
pub mod signin;
pub mod totp;
// (inventory-truth)
pub mod overview;
// (reviews)
pub mod reviews;

/// Tunables the operations need.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Lifetime of a pending request (default 24 h).
    pub request_ttl_secs: i64,
    /// How long an execution claim holds.
    pub lease_secs: i64,
    /// Claims after which a request that keeps failing transiently is marked failed.
    pub max_attempts: u32,
    /// How long an approval stays valid: an approved request not executed within this time is
    /// refused at execution (default 24 h).
    pub approval_ttl_secs: i64,
    /// Most pending requests one user (with all their agents) may have open (default 50).
    pub max_pending_per_user: u32,
    /// Whether new companies start with the separate-approver rule on (default off).
    pub default_separate_approver: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            request_ttl_secs: crate::request::DEFAULT_REQUEST_TTL_SECS,
            lease_secs: 300,
            max_attempts: 5,
            approval_ttl_secs: 24 * 60 * 60,
            max_pending_per_user: 50,
            default_separate_approver: false,
        }
    }
}

/// What every operation works over.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub ms: &'a dyn Microsoft,
    pub clock: &'a dyn Clock,
    pub settings: &'a Settings,
}

impl<'a> Ctx<'a> {
    pub fn new(
        store: &'a dyn Store,
        ms: &'a dyn Microsoft,
        clock: &'a dyn Clock,
        settings: &'a Settings,
    ) -> Self {
        Self {
            store,
            ms,
            clock,
            settings,
        }
    }
}

/// Re-reads the actor's user from the store, so a disabled or changed user takes effect at once.
pub async fn refresh_actor(ctx: Ctx<'_>, actor: &Actor) -> Result<Actor, crate::CoreError> {
    let user = ctx
        .store
        .get_user(actor.user.id)
        .await?
        .ok_or_else(|| crate::CoreError::not_found(crate::Entity::User, actor.user.id))?;
    Ok(Actor {
        user,
        channel: actor.channel.clone(),
    })
}
