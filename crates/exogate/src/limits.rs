//! Rate limits on API-token callers, one set for the whole server: MCP tool calls (HTTP and
//! stdio) and `/api/v1` calls with `Authorization: Bearer` draw from the same budgets.
//!
//! - Per token: `[limits] token_per_minute` calls (a burst of that many, then one every
//!   `60 / n` seconds).
//! - Per company: calls by API tokens that name a company (a path, query or body `company`, a
//!   tool's `company` argument) draw from that company's budget, `[limits] company_per_minute`,
//!   shared by every token, so many tokens together cannot hammer one customer's tenant. Only
//!   companies the caller is entitled to count: a token cannot spend another customer's budget.
//!
//! People (web sessions, the CLI) are not limited here. Time is the app's clock, so tests drive
//! it. Keys whose budget is full again are dropped every [`HOUSEKEEPING_EVERY`] checks, so memory
//! stays bounded by the keys used within about a minute.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use exogate_core::ports::Clock;
use exogate_core::{Actor, ApiTokenId, Channel, CompanyId};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Stale keys are dropped after this many checks.
pub const HOUSEKEEPING_EVERY: u64 = 1024;

/// A call refused for its budget. `code()` is `rate_limited` either way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    #[error(
        "rate limited: this API token made too many calls (MCP tool calls and API calls count together); retry in {retry_after_secs} s"
    )]
    Token { retry_after_secs: u64 },
    #[error(
        "rate limited: API tokens made too many calls for company `{company}`; retry in {retry_after_secs} s"
    )]
    Company {
        company: CompanyId,
        retry_after_secs: u64,
    },
}

impl Limited {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        "rate_limited"
    }

    /// Whole seconds until the budget has room again (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Self::Token { retry_after_secs }
            | Self::Company {
                retry_after_secs, ..
            } => *retry_after_secs,
        }
    }

    /// `token` or `company`: which budget ran out.
    pub fn scope(&self) -> &'static str {
        match self {
            Self::Token { .. } => "token",
            Self::Company { .. } => "company",
        }
    }
}

/// governor's clock over the app's clock.
#[derive(Clone)]
pub(crate) struct AppClock(pub(crate) Arc<dyn Clock>);

impl governor::clock::Clock for AppClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ms = u64::try_from(self.0.now().unix_millis()).unwrap_or(0);
        Nanos::from(ms.saturating_mul(1_000_000))
    }
}

pub(crate) type Keyed<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, AppClock, NoOpMiddleware<Nanos>>;

pub(crate) fn keyed<K: Hash + Eq + Clone>(per_minute: u32, clock: &AppClock) -> Keyed<K> {
    let n = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    RateLimiter::new(
        Quota::per_minute(n),
        DefaultKeyedStateStore::default(),
        clock.clone(),
    )
}

pub(crate) fn secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The server's budgets for API-token callers.
pub struct Limits {
    token: Keyed<ApiTokenId>,
    company: Keyed<CompanyId>,
    clock: AppClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

impl Limits {
    /// `token_per_minute` calls per token and `company_per_minute` per company (0 counts as 1),
    /// timed by `clock`.
    pub fn new(token_per_minute: u32, company_per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        let clock = AppClock(clock);
        Self {
            token: keyed(token_per_minute, &clock),
            company: keyed(company_per_minute, &clock),
            clock,
            checks: AtomicU64::new(0),
        }
    }

    fn wait<K: Hash + Eq + Clone>(&self, limiter: &Keyed<K>, key: &K) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY
            == HOUSEKEEPING_EVERY - 1
        {
            self.housekeeping();
        }
        limiter.check_key(key).map_err(|not_until| {
            use governor::clock::Clock as _;
            secs(not_until.wait_time_from(self.clock.now()))
        })
    }

    /// Takes one call from the budget of the actor's API token. People pass freely.
    pub fn check_token(&self, actor: &Actor) -> Result<(), Limited> {
        let Channel::Mcp { token, .. } = &actor.channel else {
            return Ok(());
        };
        self.wait(&self.token, token).map_err(|retry_after_secs| {
            tracing::warn!(token = %token, retry_in_secs = retry_after_secs, "API token rate limit hit");
            Limited::Token { retry_after_secs }
        })
    }

    /// Takes one call from `company`'s budget when an API token names it. People pass freely,
    /// and so do companies the caller is not entitled to (the call fails on that anyway).
    pub fn check_company(&self, actor: &Actor, company: &CompanyId) -> Result<(), Limited> {
        let Channel::Mcp { token, .. } = &actor.channel else {
            return Ok(());
        };
        if exogate_core::policy::can_view(&actor.user, company).is_err() {
            return Ok(());
        }
        self.wait(&self.company, company)
            .map_err(|retry_after_secs| {
                tracing::warn!(company = %company, token = %token, retry_in_secs = retry_after_secs, "company rate limit hit");
                Limited::Company {
                    company: company.clone(),
                    retry_after_secs,
                }
            })
    }

    /// Drops the keys whose budget is full again.
    pub fn housekeeping(&self) {
        self.token.retain_recent();
        self.company.retain_recent();
        self.token.shrink_to_fit();
        self.company.shrink_to_fit();
    }

    /// How many tokens and companies are tracked (for tests and metrics).
    pub fn tracked(&self) -> (usize, usize) {
        (self.token.len(), self.company.len())
    }
}

#[cfg(test)]
mod tests {
    use exogate_core::Timestamp;
    use exogate_core::model::{Entitlement, Role, User, UserId, UserName};
    use exogate_core::ports::ManualClock;

    use super::*;

    fn agent(token: ApiTokenId) -> Actor {
        Actor {
            user: User {
                id: UserId::from_uuid(uuid::Uuid::now_v7()),
                name: UserName::parse("tech").unwrap(),
                role: Role::Technician,
                entitlement: Entitlement::All,
                disabled: false,
                password_hash: None,
                created_at: Timestamp::from_unix_secs(1_800_000_000),
            },
            channel: Channel::Mcp { token, agent: None },
        }
    }

    fn token() -> ApiTokenId {
        ApiTokenId::from_uuid(uuid::Uuid::now_v7())
    }

    #[test]
    fn only_entitled_companies_and_only_tokens_spend_a_company_budget() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_secs(1_800_000_000)));
        let limits = Limits::new(1000, 2, clock);
        let contoso = CompanyId::parse("contoso").unwrap();
        let mut outsider = agent(token());
        outsider.user.entitlement =
            Entitlement::Companies([CompanyId::parse("fabrikam").unwrap()].into());
        let mut person = agent(token());
        person.channel = Channel::Web;
        for _ in 0..10 {
            limits.check_company(&outsider, &contoso).unwrap();
            limits.check_company(&person, &contoso).unwrap();
            limits.check_token(&person).unwrap();
        }
        // contoso's budget is untouched.
        let a = agent(token());
        limits.check_company(&a, &contoso).unwrap();
        limits.check_company(&a, &contoso).unwrap();
        assert!(limits.check_company(&a, &contoso).is_err());
    }

    #[test]
    fn budgets_refill_with_the_app_clock_and_stale_keys_go() {
        let clock = Arc::new(ManualClock::new(Timestamp::from_unix_secs(1_800_000_000)));
        let limits = Limits::new(2, 3, clock.clone());
        let a = agent(token());
        assert!(limits.check_token(&a).is_ok());
        assert!(limits.check_token(&a).is_ok());
        let e = limits.check_token(&a).unwrap_err();
        assert_eq!(
            (e.code(), e.scope(), e.retry_after_secs()),
            ("rate_limited", "token", 30)
        );
        // Another token has its own budget; the company budget is shared.
        let contoso = CompanyId::parse("contoso").unwrap();
        for _ in 0..3 {
            limits.check_company(&agent(token()), &contoso).unwrap();
        }
        let e = limits.check_company(&a, &contoso).unwrap_err();
        assert_eq!((e.scope(), e.retry_after_secs()), ("company", 20));
        // The clock, not the wall, refills.
        clock.advance_secs(30);
        assert!(limits.check_token(&a).is_ok());
        assert!(limits.check_company(&a, &contoso).is_ok());
        // Thousands of keys, then a quiet minute: housekeeping forgets them.
        for _ in 0..3000 {
            let _ = limits.check_token(&agent(token()));
        }
        assert!(limits.tracked().0 > 1000);
        clock.advance_secs(120);
        limits.housekeeping();
        assert_eq!(limits.tracked(), (0, 0));
    }
}
