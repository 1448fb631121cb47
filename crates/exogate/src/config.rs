//! Configuration: TOML plus `EXOGATE_` environment variables, read once at start and validated
//! into [`Config`]. Nothing else reads the environment. `Debug` never shows a secret.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// The documented example, also printed by `exogate config example`.
pub const EXAMPLE: &str = include_str!("../../../config/example.toml");

/// What went wrong reading the configuration. Each names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Read(String),
    #[error("invalid setting `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl ConfigError {
    /// Stable code for machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Read(_) => "config_unreadable",
            Self::Invalid { .. } => "config_invalid",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
    #[serde(default)]
    database_url: String,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    microsoft: RawMicrosoft,
    #[serde(default)]
    approvals: RawApprovals,
    #[serde(default)]
    status: RawStatus,
    #[serde(default)]
    mcp: RawMcp,
    #[serde(default)]
    inventory: RawInventory,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    login: RawLogin,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    oauth: RawOAuth,
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    worker: RawWorker,
    // (msft-signin)
    #[serde(default)]
    signin: crate::signin::RawSignin,
    // (notify)
    #[serde(default)]
    notifications: crate::notify_settings::RawNotifications,
    // (cli-requests)
    /// `as = "tech"`: the person CLI commands act for when `--as` is not given.
    #[serde(default, rename = "as")]
    default_as: Option<String>,
}

/// `[oauth]`: sign-in of remote MCP clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawOAuth {
    access_token_minutes: u32,
    refresh_token_days: u32,
    code_seconds: u32,
    metadata_timeout_seconds: u32,
    metadata_max_bytes: u32,
    metadata_allow_loopback_http: bool,
    // (hardening)
    registrations_per_minute: u32,
    max_unused_clients: u32,
    unused_client_hours: u32,
}

impl Default for RawOAuth {
    fn default() -> Self {
        Self {
            access_token_minutes: 60,
            refresh_token_days: 30,
            code_seconds: 60,
            metadata_timeout_seconds: 5,
            metadata_max_bytes: 5 * 1024,
            metadata_allow_loopback_http: false,
            // (hardening)
            registrations_per_minute: 10,
            max_unused_clients: 1000,
            unused_client_hours: 24,
        }
    }
}

/// The database pool (`[database]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    /// 0: the backend's default (4 for SQLite, 10 for PostgreSQL).
    max_connections: u32,
    acquire_timeout_seconds: u32,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            max_connections: 0,
            acquire_timeout_seconds: 5,
        }
    }
}

/// How the OAuth authorization server behaves (`[oauth]`).
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub lifetimes: exogate_core::oauth::Lifetimes,
    /// Time limit for fetching a Client ID Metadata Document.
    pub metadata_timeout: std::time::Duration,
    /// Size limit of a Client ID Metadata Document.
    pub metadata_max_bytes: usize,
    /// Also accept `http` client metadata URLs on loopback hosts (tests; never in production).
    pub metadata_allow_loopback_http: bool,
    // (hardening)
    /// Dynamic Client Registrations per client address per minute.
    pub registrations_per_minute: u32,
    /// Bounds on registrations that never completed an authorization.
    pub registration: exogate_core::ops::oauth::RegistrationLimits,
}

impl Default for OAuthSettings {
    fn default() -> Self {
        oauth_settings(&RawOAuth::default()).unwrap_or_else(|_| unreachable!())
    }
}

fn oauth_settings(raw: &RawOAuth) -> Result<OAuthSettings, ConfigError> {
    let range = |key: &'static str, value: u32, min: u32, max: u32| {
        if (min..=max).contains(&value) {
            Ok(i64::from(value))
        } else {
            Err(ConfigError::Invalid {
                key,
                reason: format!("must be between {min} and {max}"),
            })
        }
    };
    Ok(OAuthSettings {
        lifetimes: exogate_core::oauth::Lifetimes {
            code_secs: range("oauth.code_seconds", raw.code_seconds, 10, 600)?,
            access_secs: range(
                "oauth.access_token_minutes",
                raw.access_token_minutes,
                1,
                1440,
            )? * 60,
            refresh_secs: range("oauth.refresh_token_days", raw.refresh_token_days, 1, 365)?
                * 86_400,
        },
        metadata_timeout: std::time::Duration::from_secs(range(
            "oauth.metadata_timeout_seconds",
            raw.metadata_timeout_seconds,
            1,
            30,
        )? as u64),
        metadata_max_bytes: range(
            "oauth.metadata_max_bytes",
            raw.metadata_max_bytes,
            512,
            65_536,
        )? as usize,
        metadata_allow_loopback_http: raw.metadata_allow_loopback_http,
        // (hardening)
        registrations_per_minute: range(
            "oauth.registrations_per_minute",
            raw.registrations_per_minute,
            1,
            10_000,
        )? as u32,
        registration: exogate_core::ops::oauth::RegistrationLimits {
            max_unused: range(
                "oauth.max_unused_clients",
                raw.max_unused_clients,
                1,
                1_000_000,
            )? as u64,
            unused_secs: range("oauth.unused_client_hours", raw.unused_client_hours, 1, 720)?
                * 3600,
        },
    })
}

/// The background worker (`[worker]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawWorker {
    lease_seconds: u32,
    poll_milliseconds: u32,
    shutdown_grace_seconds: u32,
    database_backoff_max_seconds: u32,
}

impl Default for RawWorker {
    fn default() -> Self {
        Self {
            lease_seconds: 300,
            poll_milliseconds: 500,
            shutdown_grace_seconds: 30,
            database_backoff_max_seconds: 30,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAudit {
    checkpoint_interval_minutes: u32,
    checkpoint_key_file: Option<PathBuf>,
    checkpoint_file: Option<PathBuf>,
    checkpoint_webhook_url: Option<String>,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            checkpoint_interval_minutes: 10,
            checkpoint_key_file: None,
            checkpoint_file: None,
            checkpoint_webhook_url: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLogin {
    free_failures_per_user: u32,
    free_failures_per_address: u32,
    first_lockout_seconds: u32,
    max_lockout_seconds: u32,
    forget_after_minutes: u32,
    tracked_keys: u32,
    /// 0: one per CPU core.
    hash_concurrency: u32,
    audited_failures_per_minute: u32,
}

impl Default for RawLogin {
    fn default() -> Self {
        let d = crate::login::LoginSettings::default();
        Self {
            free_failures_per_user: d.free_failures_per_user,
            free_failures_per_address: d.free_failures_per_address,
            first_lockout_seconds: d.first_lockout_secs,
            max_lockout_seconds: d.max_lockout_secs,
            forget_after_minutes: d.forget_after_secs / 60,
            tracked_keys: 10_000,
            hash_concurrency: 0,
            audited_failures_per_minute: d.audited_failures_per_minute,
        }
    }
}

/// Budgets of API-token callers (MCP tool calls and `/api/v1` calls together). `None`: the
/// default (or, for the token budget, the older `[mcp] rate_limit_per_minute`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    token_per_minute: Option<u32>,
    company_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawInventory {
    sweep_interval_hours: u32,
    lease_seconds: u32,
}

impl Default for RawInventory {
    fn default() -> Self {
        Self {
            sweep_interval_hours: 24,
            lease_seconds: 120,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./exogate-data")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    listen: String,
    public_url: String,
    secure_cookies: bool,
    session_absolute_hours: u32,
    allowed_hosts: Vec<String>,
    loopback_hosts: bool,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            secure_cookies: true,
            session_absolute_hours: 12,
            allowed_hosts: Vec::new(),
            loopback_hosts: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMicrosoft {
    cloud: Option<String>,
    login_url: Option<String>,
    graph_url: Option<String>,
    exchange_url: Option<String>,
    exchange_app: RawApp,
    connect_app: RawApp,
    tenant_concurrency: Option<u32>,
    global_concurrency: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApp {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    certificate_file: Option<PathBuf>,
    private_key_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawApprovals {
    pending_expiry_hours: u32,
    separate_approver: bool,
}

impl Default for RawApprovals {
    fn default() -> Self {
        Self {
            pending_expiry_hours: 24,
            separate_approver: false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStatus {
    recheck_interval_minutes: u32,
    propagation_window_seconds: u32,
}

impl Default for RawStatus {
    fn default() -> Self {
        Self {
            recheck_interval_minutes: 60,
            propagation_window_seconds: 180,
        }
    }
}

/// The older names of `[server] allowed_hosts` and `[limits] token_per_minute`, still read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMcp {
    allowed_hosts: Vec<String>,
    rate_limit_per_minute: Option<u32>,
}

/// Which Microsoft cloud the base URLs default to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Global,
    UsGovHigh,
    UsGovDod,
    China,
}

impl Cloud {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "global" => Some(Self::Global),
            "us_gov_high" => Some(Self::UsGovHigh),
            "us_gov_dod" => Some(Self::UsGovDod),
            "china" => Some(Self::China),
            _ => None,
        }
    }
}

/// How an app proves itself to Entra.
pub enum AppCredential {
    Secret(SecretString),
    Certificate {
        certificate_pem: String,
        private_key_pem: SecretString,
    },
}

impl std::fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::Certificate { .. } => f.write_str("Certificate { private_key: [redacted] }"),
        }
    }
}

#[derive(Debug)]
pub struct AppConfig {
    pub client_id: uuid::Uuid,
    pub credential: AppCredential,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub listen: SocketAddr,
    pub public_url: Url,
    pub secure_cookies: bool,
    pub cloud: Cloud,
    pub login_url: Option<Url>,
    pub graph_url: Option<Url>,
    pub exchange_url: Option<Url>,
    pub exchange_app: AppConfig,
    pub connect_app: AppConfig,
    pub pending_expiry: time::Duration,
    pub recheck_interval: time::Duration,
    pub propagation_window: time::Duration,
    /// `Host` values accepted besides the public URL's (`host` or `host:port`), on every route.
    pub allowed_hosts: Vec<String>,
    /// Also accept loopback `Host`s (and origins) on any port: the demo.
    pub loopback_hosts: bool,
    /// Calls per API token per minute, MCP tool calls and `/api/v1` calls together.
    pub token_per_minute: u32,
    /// Calls by API tokens naming one company, per company per minute (all tokens together).
    pub company_per_minute: u32,
    /// How often the worker sweeps each configured company's inventory (None: only on demand).
    pub inventory_sweep_interval: Option<time::Duration>,
    /// How long a sweep holds its company without renewing (it renews every quarter of it).
    pub sweep_lease: std::time::Duration,
    /// Exchange calls in flight at once per tenant, and in all.
    pub tenant_concurrency: usize,
    pub global_concurrency: usize,
    /// How often the worker signs an audit checkpoint (None: never).
    pub audit_checkpoint_interval: Option<time::Duration>,
    /// The Ed25519 private key that signs checkpoints (its public key is beside it, `.pub`).
    pub audit_checkpoint_key_file: PathBuf,
    /// The JSONL file checkpoints are appended to.
    pub audit_checkpoint_file: PathBuf,
    /// Where each checkpoint is also POSTed (best effort).
    pub audit_checkpoint_webhook: Option<Url>,
    /// Login limits, the password-check gate and the session's absolute lifetime.
    pub login: crate::login::LoginSettings,
    /// Whether new companies start with the separate-approver rule (four eyes) on.
    pub default_separate_approver: bool,
    /// OAuth sign-in of remote MCP clients (`[oauth]`).
    pub oauth: OAuthSettings,
    /// The database pool: size and how long a query waits for a connection.
    pub database_pool: exogate_store::PoolSettings,
    /// How long a worker's claim on an approved request holds before another may take it over.
    pub worker_lease: std::time::Duration,
    /// How often the worker looks for work when nothing wakes it.
    pub worker_poll: std::time::Duration,
    /// On SIGTERM or Ctrl-C: how long an execution in flight may take to finish before the
    /// process exits anyway (its lease then lapses and another replica takes over).
    pub shutdown_grace: std::time::Duration,
    /// While the database is down the worker waits longer and longer between rounds, up to this.
    pub database_backoff_max: std::time::Duration,
    // (msft-signin)
    /// Local accounts and Sign in with Microsoft (`[signin]`).
    pub signin: crate::signin::SigninConfig,
    // (notify)
    /// Notification delivery (`[notifications]`).
    pub notifications: crate::notify_settings::NotifySettings,
    // (cli-requests)
    /// `as`: the person CLI commands act for when `--as` is not given (`EXOGATE_AS`).
    pub default_as: Option<String>,
}

/// Calls per API token per minute, by default (MCP and the API together).
pub const DEFAULT_TOKEN_PER_MINUTE: u32 = 120;
/// Calls by API tokens naming one company, per minute, by default.
pub const DEFAULT_COMPANY_PER_MINUTE: u32 = 240;

/// Exchange calls in flight at once per tenant, by default (Exchange throttles above a few).
pub const DEFAULT_TENANT_CONCURRENCY: u32 = 4;
/// Exchange calls in flight at once across all tenants, by default.
pub const DEFAULT_GLOBAL_CONCURRENCY: u32 = 64;

impl Config {
    /// Reads `file` (if given; it must exist), then `EXOGATE_*` variables from `env`.
    pub fn load(file: Option<&Path>, env: &[(String, String)]) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Read(format!(
                    "`{}` does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(env_provider(env));
        let raw: RawConfig = figment
            .extract()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        Self::validate(raw)
    }

    /// Parses TOML text (used by tests and `config check`).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = Figment::new()
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError::Read(e.to_string()))?;
        Self::validate(raw)
    }

    fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let listen = raw
            .server
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::Invalid {
                key: "server.listen",
                reason: format!("`{}` is not host:port ({e})", raw.server.listen),
            })?;
        let public_url = parse_url("server.public_url", &raw.server.public_url)?;
        let cloud = match raw.microsoft.cloud.as_deref() {
            None => Cloud::Global,
            Some(value) => Cloud::parse(value).ok_or_else(|| ConfigError::Invalid {
                key: "microsoft.cloud",
                reason: format!("`{value}` is not one of global, us_gov_high, us_gov_dod, china"),
            })?,
        };
        let optional_url = |key: &'static str, value: Option<String>| match value {
            Some(v) if !v.trim().is_empty() => parse_url(key, &v).map(Some),
            _ => Ok(None),
        };
        let login_url = optional_url("microsoft.login_url", raw.microsoft.login_url)?;
        let graph_url = optional_url("microsoft.graph_url", raw.microsoft.graph_url)?;
        let exchange_url = optional_url("microsoft.exchange_url", raw.microsoft.exchange_url)?;
        let exchange_app = app("microsoft.exchange_app", raw.microsoft.exchange_app)?;
        let connect_app = app("microsoft.connect_app", raw.microsoft.connect_app)?;
        let tenant_concurrency = raw
            .microsoft
            .tenant_concurrency
            .unwrap_or(DEFAULT_TENANT_CONCURRENCY);
        if !(1..=64).contains(&tenant_concurrency) {
            return Err(ConfigError::Invalid {
                key: "microsoft.tenant_concurrency",
                reason: "must be between 1 and 64".to_owned(),
            });
        }
        let global_concurrency = raw
            .microsoft
            .global_concurrency
            .unwrap_or(DEFAULT_GLOBAL_CONCURRENCY);
        if !(1..=4096).contains(&global_concurrency) {
            return Err(ConfigError::Invalid {
                key: "microsoft.global_concurrency",
                reason: "must be between 1 and 4096".to_owned(),
            });
        }
        if !(2..=3600).contains(&raw.inventory.lease_seconds) {
            return Err(ConfigError::Invalid {
                key: "inventory.lease_seconds",
                reason: "must be between 2 and 3600".to_owned(),
            });
        }
        if raw.approvals.pending_expiry_hours == 0 || raw.approvals.pending_expiry_hours > 24 * 30 {
            return Err(ConfigError::Invalid {
                key: "approvals.pending_expiry_hours",
                reason: "must be between 1 and 720".to_owned(),
            });
        }
        if raw.status.recheck_interval_minutes == 0 {
            return Err(ConfigError::Invalid {
                key: "status.recheck_interval_minutes",
                reason: "must be at least 1".to_owned(),
            });
        }
        let token_per_minute = match (raw.limits.token_per_minute, raw.mcp.rate_limit_per_minute) {
            (Some(new), Some(old)) if new != old => {
                return Err(ConfigError::Invalid {
                    key: "limits.token_per_minute",
                    reason: format!(
                        "`mcp.rate_limit_per_minute` (its older name) says {old}: keep only `limits.token_per_minute`"
                    ),
                });
            }
            (Some(n), _) => (n, "limits.token_per_minute"),
            (None, Some(n)) => (n, "mcp.rate_limit_per_minute"),
            (None, None) => (DEFAULT_TOKEN_PER_MINUTE, "limits.token_per_minute"),
        };
        let company_per_minute = raw
            .limits
            .company_per_minute
            .unwrap_or(DEFAULT_COMPANY_PER_MINUTE);
        for (n, key) in [
            token_per_minute,
            (company_per_minute, "limits.company_per_minute"),
        ] {
            if n == 0 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be at least 1".to_owned(),
                });
            }
        }
        let mut allowed_hosts = Vec::new();
        for (key, list) in [
            ("server.allowed_hosts", raw.server.allowed_hosts),
            ("mcp.allowed_hosts", raw.mcp.allowed_hosts),
        ] {
            for host in list {
                let host = host.trim().to_ascii_lowercase();
                if crate::edge::parse_authority(&host).is_none() {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: format!("`{host}` is not a host name or host:port"),
                    });
                }
                if !allowed_hosts.contains(&host) {
                    allowed_hosts.push(host);
                }
            }
        }
        if raw.audit.checkpoint_interval_minutes > 24 * 60 {
            return Err(ConfigError::Invalid {
                key: "audit.checkpoint_interval_minutes",
                reason: "must be between 0 (off) and 1440".to_owned(),
            });
        }
        let audit_checkpoint_webhook = match raw.audit.checkpoint_webhook_url {
            Some(v) if !v.trim().is_empty() => {
                Some(parse_url("audit.checkpoint_webhook_url", v.trim())?)
            }
            _ => None,
        };
        let audit_checkpoint_key_file = raw
            .audit
            .checkpoint_key_file
            .unwrap_or_else(|| raw.data_dir.join("audit-checkpoint.key"));
        let audit_checkpoint_file = raw
            .audit
            .checkpoint_file
            .unwrap_or_else(|| raw.data_dir.join("audit-checkpoints.jsonl"));
        let login = login_settings(&raw.login, raw.server.session_absolute_hours)?;
        let oauth = oauth_settings(&raw.oauth)?;
        // (msft-signin)
        let signin = crate::signin::validate(raw.signin)
            .map_err(|(key, reason)| ConfigError::Invalid { key, reason })?;
        let database_url = if raw.database_url.trim().is_empty() {
            format!("sqlite://{}", raw.data_dir.join("exogate.db").display())
        } else if raw.database_url.starts_with("sqlite:")
            || raw.database_url.starts_with("postgres")
        {
            raw.database_url
        } else {
            return Err(ConfigError::Invalid {
                key: "database_url",
                reason: "must start with sqlite: or postgres://".to_owned(),
            });
        };
        Ok(Self {
            data_dir: raw.data_dir,
            database_url,
            listen,
            public_url,
            secure_cookies: raw.server.secure_cookies,
            cloud,
            login_url,
            graph_url,
            exchange_url,
            exchange_app,
            connect_app,
            pending_expiry: time::Duration::hours(i64::from(raw.approvals.pending_expiry_hours)),
            recheck_interval: time::Duration::minutes(i64::from(
                raw.status.recheck_interval_minutes,
            )),
            propagation_window: time::Duration::seconds(i64::from(
                raw.status.propagation_window_seconds,
            )),
            allowed_hosts,
            loopback_hosts: raw.server.loopback_hosts,
            token_per_minute: token_per_minute.0,
            company_per_minute,
            inventory_sweep_interval: match raw.inventory.sweep_interval_hours {
                0 => None,
                hours => Some(time::Duration::hours(i64::from(hours))),
            },
            sweep_lease: std::time::Duration::from_secs(u64::from(raw.inventory.lease_seconds)),
            tenant_concurrency: tenant_concurrency as usize,
            global_concurrency: global_concurrency as usize,
            audit_checkpoint_interval: match raw.audit.checkpoint_interval_minutes {
                0 => None,
                minutes => Some(time::Duration::minutes(i64::from(minutes))),
            },
            audit_checkpoint_key_file,
            audit_checkpoint_file,
            audit_checkpoint_webhook,
            login,
            default_separate_approver: raw.approvals.separate_approver,
            oauth,
            database_pool: exogate_store::PoolSettings {
                max_connections: match raw.database.max_connections {
                    0 => None,
                    n => Some(n),
                },
                acquire_timeout: secs(
                    "database.acquire_timeout_seconds",
                    raw.database.acquire_timeout_seconds,
                )?,
            },
            worker_lease: secs("worker.lease_seconds", raw.worker.lease_seconds)?,
            worker_poll: match raw.worker.poll_milliseconds {
                0 => {
                    return Err(ConfigError::Invalid {
                        key: "worker.poll_milliseconds",
                        reason: "must be at least 1".to_owned(),
                    });
                }
                ms => std::time::Duration::from_millis(u64::from(ms)),
            },
            shutdown_grace: std::time::Duration::from_secs(u64::from(
                raw.worker.shutdown_grace_seconds,
            )),
            database_backoff_max: secs(
                "worker.database_backoff_max_seconds",
                raw.worker.database_backoff_max_seconds,
            )?,
            signin,
            // (notify)
            notifications: crate::notify_settings::validate(raw.notifications)
                .map_err(|(key, reason)| ConfigError::Invalid { key, reason })?,
            // (cli-requests)
            default_as: raw
                .default_as
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty()),
        })
    }
}

/// A duration in whole seconds that must be at least one.
fn secs(key: &'static str, value: u32) -> Result<std::time::Duration, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid {
            key,
            reason: "must be at least 1".to_owned(),
        });
    }
    Ok(std::time::Duration::from_secs(u64::from(value)))
}

fn login_settings(
    raw: &RawLogin,
    session_absolute_hours: u32,
) -> Result<crate::login::LoginSettings, ConfigError> {
    let range = |key: &'static str, value: u32, min: u32, max: u32| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                key,
                reason: format!("must be between {min} and {max}"),
            })
        }
    };
    let first = range(
        "login.first_lockout_seconds",
        raw.first_lockout_seconds,
        1,
        3600,
    )?;
    let max = range(
        "login.max_lockout_seconds",
        raw.max_lockout_seconds,
        1,
        86_400,
    )?;
    if max < first {
        return Err(ConfigError::Invalid {
            key: "login.max_lockout_seconds",
            reason: "must be at least login.first_lockout_seconds".to_owned(),
        });
    }
    Ok(crate::login::LoginSettings {
        free_failures_per_user: range(
            "login.free_failures_per_user",
            raw.free_failures_per_user,
            1,
            1000,
        )?,
        free_failures_per_address: range(
            "login.free_failures_per_address",
            raw.free_failures_per_address,
            1,
            100_000,
        )?,
        first_lockout_secs: first,
        max_lockout_secs: max,
        forget_after_secs: range(
            "login.forget_after_minutes",
            raw.forget_after_minutes,
            1,
            7 * 24 * 60,
        )? * 60,
        tracked_keys: range("login.tracked_keys", raw.tracked_keys, 100, 10_000_000)? as usize,
        hash_concurrency: match range("login.hash_concurrency", raw.hash_concurrency, 0, 256)? {
            0 => crate::login::default_hash_concurrency(),
            n => n as usize,
        },
        audited_failures_per_minute: range(
            "login.audited_failures_per_minute",
            raw.audited_failures_per_minute,
            1,
            100_000,
        )?,
        session_absolute_secs: i64::from(range(
            "server.session_absolute_hours",
            session_absolute_hours,
            1,
            24 * 30,
        )?) * 3600,
    })
}

fn env_provider(env: &[(String, String)]) -> figment::providers::Serialized<serde_json::Value> {
    // Build the nested map by hand from the given variables, so tests can pass their own
    // environment and nothing reads the process environment behind the caller's back.
    let mut root = serde_json::Map::new();
    for (key, value) in env {
        let Some(rest) = key.strip_prefix("EXOGATE_") else {
            continue;
        };
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        // Other EXOGATE_ variables (EXOGATE_LOG, EXOGATE_MCP_TOKEN, test switches) are not settings.
        if !TOP_LEVEL_KEYS.contains(&path[0].as_str()) {
            continue;
        }
        insert_path(&mut root, &path, parse_env_value(value));
    }
    figment::providers::Serialized::defaults(serde_json::Value::Object(root))
}

/// The configuration's top-level keys: only `EXOGATE_` variables naming one of them are read.
const TOP_LEVEL_KEYS: [&str; 17] = [
    "data_dir",
    "database_url",
    "server",
    "microsoft",
    "approvals",
    "status",
    "mcp",
    "inventory",
    "audit",
    "login",
    "limits",
    "oauth",
    "database",
    "worker",
    // (notify)
    "notifications",
    "signin",
    // (cli-requests)
    "as",
];

fn insert_path(
    map: &mut serde_json::Map<String, serde_json::Value>,
    path: &[String],
    value: serde_json::Value,
) {
    match path {
        [] => {}
        [last] => {
            map.insert(last.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = map
                .entry(head.clone())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn parse_env_value(value: &str) -> serde_json::Value {
    // Numbers, booleans and TOML-style arrays are typed; everything else is a string.
    if let Ok(n) = value.parse::<i64>() {
        return serde_json::Value::from(n);
    }
    match value {
        "true" => return serde_json::Value::Bool(true),
        "false" => return serde_json::Value::Bool(false),
        _ => {}
    }
    if value.starts_with('[')
        && let Ok(list) = serde_json::from_str::<serde_json::Value>(value)
    {
        return list;
    }
    serde_json::Value::String(value.to_owned())
}

fn parse_url(key: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::Invalid {
        key,
        reason: format!("`{value}` is not a URL ({e})"),
    })?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback || key == "server.public_url" => Ok(url),
        _ => Err(ConfigError::Invalid {
            key,
            reason: format!("`{value}` must use https (http only on loopback)"),
        }),
    }
}

fn app(key: &'static str, raw: RawApp) -> Result<AppConfig, ConfigError> {
    let client_id = raw.client_id.ok_or(ConfigError::Invalid {
        key,
        reason: "client_id is missing".to_owned(),
    })?;
    let client_id = uuid::Uuid::parse_str(client_id.trim()).map_err(|_| ConfigError::Invalid {
        key,
        reason: format!("client_id `{client_id}` is not a GUID"),
    })?;
    let credential = match (
        raw.client_secret,
        raw.certificate_file,
        raw.private_key_file,
    ) {
        (Some(secret), None, None) => AppCredential::Secret(secret),
        (None, Some(cert), Some(key_file)) => {
            let certificate_pem =
                std::fs::read_to_string(&cert).map_err(|e| ConfigError::Invalid {
                    key,
                    reason: format!("cannot read certificate_file `{}`: {e}", cert.display()),
                })?;
            let private_key_pem =
                std::fs::read_to_string(&key_file).map_err(|e| ConfigError::Invalid {
                    key,
                    reason: format!("cannot read private_key_file `{}`: {e}", key_file.display()),
                })?;
            AppCredential::Certificate {
                certificate_pem,
                private_key_pem: SecretString::from(private_key_pem),
            }
        }
        (None, None, None) => {
            return Err(ConfigError::Invalid {
                key,
                reason: "set client_secret, or certificate_file and private_key_file".to_owned(),
            });
        }
        _ => {
            return Err(ConfigError::Invalid {
                key,
                reason: "use either client_secret or certificate_file + private_key_file, not both"
                    .to_owned(),
            });
        }
    };
    Ok(AppConfig {
        client_id,
        credential,
    })
}
