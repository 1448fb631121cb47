//! `exogate-exchange`: the only crate that knows Microsoft's URLs and JSON.
//!
//! It gets client-credentials tokens from Entra (secret or certificate), checks whether a tenant is
//! ready for Exchange administration (`docs/MICROSOFT.md#readiness` → the badge states of
//! `docs/DOMAIN.md#exchange-admin-status`), builds and parses admin-consent redirects, verifies a
//! new connection through Graph, and runs the Exchange admin API (`InvokeCommand`, `$batch`) with
//! paging, retries, per-tenant concurrency limits and typed errors. On top of that it offers typed
//! delegation operations (Full Access, Send As, Send on Behalf) as "ensure" operations that report
//! `Changed` or `AlreadyInState`.
//!
//! Written from `docs/MICROSOFT.md`; it shares no types with the emulator.
//!
//! Entry point: [`M365Client`] (one per process, cheap to clone), built from a
//! [`ClientConfig`] (endpoints per [`Cloud`] or one emulator URL, the Exchange app and the
//! connect app, [`Limits`]) and optionally a [`Clock`].
//!
//! | what the core needs | call |
//! |---|---|
//! | badge / status check | [`M365Client::check_readiness`] → [`Readiness`] (state, reason, evidence) |
//! | connect a company | [`M365Client::connect_consent_url`], [`parse_consent_callback`], [`M365Client::verify_connection`] → [`Organization`] |
//! | Authorize (Exchange app) | [`M365Client::exchange_consent_url`] |
//! | disconnect | [`M365Client::forget_tenant`] |
//! | resolve identities for an approval | [`Identity::parse`], [`M365Client::resolve_recipient`], [`M365Client::mailbox`] |
//! | views | [`M365Client::mailbox_details`], [`M365Client::full_access_holders`], [`M365Client::send_as_holders`] |
//! | writes | [`M365Client::ensure`] with a [`Change`] → [`EnsureReport`] |
//! | read-back after a write | [`M365Client::holds`], [`M365Client::verify`] → [`VerifyOutcome`] |
//! | inventory | [`M365Client::mailbox_pages`], [`M365Client::recipient_permission_pages`], [`M365Client::mailbox_permissions_many`] |
//! | anything else | [`M365Client::invoke`], [`M365Client::pages`], [`M365Client::batch_read`] with a [`CmdletRequest`] |
//!
//! Every Exchange failure is an [`ExchangeError`]; token failures a [`TokenError`].

pub mod assertion;
pub mod batch;
pub mod claims;
pub mod clock;
pub mod config;
pub mod consent;
pub mod delegation;
pub mod error;
pub mod exchange;
// (fuzz-scale) Property checks shared by the fuzz targets and the stable proptest tests.
#[doc(hidden)]
pub mod fuzz_checks;
pub mod identity;
pub mod limiter;
pub mod readiness;
pub mod retry;
// (msft-signin)
pub mod signin;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

pub use claims::{RoleClass, TokenClaims};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{
    AppConfig, AppCredential, CertificateCredential, ClientConfig, Cloud, ConfigError, Endpoints,
    Limits,
};
pub use consent::{
    ConnectionError, ConsentError, ConsentGrant, Organization, parse_consent_callback,
};
pub use delegation::{
    Change, EnsureOutcome, EnsureReport, MailboxDetails, MailboxPermissionRow, MailboxRecord,
    PermissionHolder, Recipient, RecipientPermissionRow, Right, SendOnBehalfDelegate,
    TrusteeResolution, VerifyOutcome,
};
pub use error::ExchangeError;
pub use exchange::{CmdletOutput, CmdletRequest, Page};
pub use identity::{Identity, IdentityError, IdentityKind};
pub use readiness::{Readiness, ReadinessEvidence, ReadinessReason, ReadinessState};
pub use token::{AccessToken, Resource, TokenError, TokenProvider};

/// The Microsoft client. Cheap to clone (one `Arc`); share one per process.
#[derive(Clone)]
pub struct M365Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) endpoints: config::Endpoints,
    pub(crate) exchange_app_id: Uuid,
    pub(crate) connect_app_id: Uuid,
    pub(crate) tokens: TokenProvider,
    pub(crate) limiter: limiter::Limiter,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) limits: config::Limits,
    /// When the readiness check first saw "role in token, probe 403" per tenant.
    pub(crate) role_seen_since: parking_lot::Mutex<HashMap<Uuid, OffsetDateTime>>,
}

impl std::fmt::Debug for M365Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("M365Client")
            .field("endpoints", &self.inner.endpoints)
            .field("exchange_app", &self.inner.exchange_app_id)
            .field("connect_app", &self.inner.connect_app_id)
            .finish_non_exhaustive()
    }
}

impl M365Client {
    /// A client on the real clock.
    pub fn new(config: ClientConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client whose time (token expiry, propagation window, backoff sleeps) comes from `clock`.
    pub fn with_clock(config: ClientConfig, clock: Arc<dyn Clock>) -> Result<Self, ConfigError> {
        config.endpoints.validate()?;
        let limits = config.limits.clone();
        // No gzip/brotli features are enabled on reqwest, so bodies are never auto-decompressed:
        // a 403 that claims `Content-Encoding: gzip` over NUL bytes is read as raw bytes.
        let http = reqwest::Client::builder()
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.request_timeout)
            .pool_idle_timeout(std::time::Duration::from_secs(90))
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Http(e.to_string()))?;
        let exchange_app = Arc::new(config.exchange_app);
        let connect_app = config
            .connect_app
            .map(Arc::new)
            .unwrap_or_else(|| exchange_app.clone());
        let tokens = TokenProvider::new(
            http.clone(),
            config.endpoints.clone(),
            exchange_app.clone(),
            connect_app.clone(),
            clock.clone(),
            limits.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints: config.endpoints,
                exchange_app_id: exchange_app.client_id,
                connect_app_id: connect_app.client_id,
                tokens,
                limiter: limiter::Limiter::new(
                    limits.per_tenant_concurrency,
                    limits.global_concurrency,
                ),
                clock,
                limits,
                role_seen_since: parking_lot::Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The token provider (cache, single-flight, invalidation).
    pub fn tokens(&self) -> &TokenProvider {
        &self.inner.tokens
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Calls `tenant` may have in flight now: the configured limit, lowered while its Exchange
    /// answers 429 (see [`limiter`]).
    pub fn tenant_concurrency(&self, tenant: Uuid) -> usize {
        self.inner.limiter.tenant_limit(tenant)
    }

    /// Drops cached tokens and readiness memory for a tenant (disconnect).
    pub fn forget_tenant(&self, tenant: Uuid) {
        self.inner.tokens.invalidate(tenant);
        self.inner.role_seen_since.lock().remove(&tenant);
    }
}
