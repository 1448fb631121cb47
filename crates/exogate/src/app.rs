//! The running application: the store, Microsoft, the clock and the settings every adapter
//! (pages, JSON API, MCP, CLI, worker) shares. Built once from the validated [`Config`].

use std::sync::Arc;

use exogate_core::Timestamp;
use exogate_core::ops::{Ctx, Settings};
use exogate_core::ports::{Clock, Microsoft, Store};
use exogate_exchange::M365Client;
use tokio::sync::Notify;
use url::Url;

use crate::config::Config;

/// The wall clock, for production. Tests pass a manual clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
    }
}

/// Something changed that a live view or a waiting test may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// A request moved to a new state (the worker executed it, someone decided it).
    RequestChanged {
        id: exogate_core::model::RequestId,
        state: &'static str,
    },
    /// A company's Exchange Admin status was checked.
    StatusChecked {
        company: String,
        state: &'static str,
    },
    /// A scheduled inventory sweep of a company ended (`ok` false: it failed).
    InventorySwept { company: String, ok: bool },
    /// The worker deleted `count` expired web sessions.
    SessionsPurged { count: u64 },
    /// The worker appended a signed audit checkpoint of event `seq`.
    AuditCheckpointWritten { seq: i64 },
    /// The worker found the audit chain contradicting its last checkpoint and signed nothing.
    AuditCheckpointRefused,
}

/// Everything a request handler, tool or command needs. Share it as `Arc<App>`.
pub struct App {
    pub store: Arc<dyn Store>,
    /// Microsoft behind the core's port (the adapter over `m365`).
    pub ms: Arc<dyn Microsoft>,
    /// The Microsoft client itself, for what is not a core operation: consent URLs, parsing
    /// consent callbacks and verifying a new connection.
    pub m365: M365Client,
    pub clock: Arc<dyn Clock>,
    pub settings: Settings,
    /// The URL people and agents use to reach this server.
    pub public_url: Url,
    pub secure_cookies: bool,
    /// The hosts and origins every route accepts (`crate::edge`).
    pub edge: crate::edge::EdgePolicy,
    /// Budgets of API-token callers, shared by MCP and the JSON API (`crate::limits`).
    pub limits: crate::limits::Limits,
    /// How long an inventory sweep holds its company without renewing.
    pub sweep_lease: std::time::Duration,
    /// Wakes the background worker (a request was approved, a check was asked for).
    pub worker_wake: Arc<Notify>,
    /// Live events; receivers that lag simply miss old ones.
    pub events: tokio::sync::broadcast::Sender<AppEvent>,
    /// Login limits, the password-check gate and the session lifetime.
    pub login: Arc<crate::login::LoginGuard>,
    /// The OAuth authorization server's settings (`[oauth]`).
    pub oauth: crate::config::OAuthSettings,
    /// The database itself (the same one `store` is), for `/readyz`.
    pub db: exogate_store::Db,
    // (msft-signin)
    /// Local accounts (passwords) may sign in.
    pub local_accounts: bool,
    /// Sign in with Microsoft, when configured.
    pub microsoft_signin: Option<Arc<crate::signin::MicrosoftSignin>>,
    /// Local managers and admins need a second factor (`[signin] second_factor`).
    pub second_factor: bool,
    // (notify)
    /// Notification delivery (`[notifications]`).
    pub notify: Arc<crate::notify_settings::NotifySettings>,
    /// Wakes the delivery worker.
    pub notify_wake: Arc<Notify>,
    // (hardening)
    /// `POST /oauth/register` per client address (`crate::registration`).
    pub registrations: crate::registration::RegistrationLimiter,
    // (reviews)
    /// The key reviewer links are signed with (read from the store once).
    pub review_key: crate::review_key::ReviewKey,
}

impl App {
    /// The context core operations run in.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&*self.store, &*self.ms, &*self.clock, &self.settings)
    }

    /// Publishes an event; nobody listening is fine.
    pub fn publish(&self, event: AppEvent) {
        let _ = self.events.send(event);
    }

    /// The URL of a path on this server (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}{path}")
    }

    /// Core settings derived from the configuration.
    pub fn settings_from(config: &Config) -> Settings {
        Settings {
            request_ttl_secs: config.pending_expiry.whole_seconds(),
            default_separate_approver: config.default_separate_approver,
            ..Settings::default()
        }
    }
}
