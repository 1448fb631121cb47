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
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".to_owned(),
            public_url: "http://127.0.0.1:8080".to_owned(),
            secure_cookies: true,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawMcp {
    allowed_hosts: Vec<String>,
    rate_limit_per_minute: u32,
}

impl Default for RawMcp {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            rate_limit_per_minute: 120,
        }
    }
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
    pub mcp_allowed_hosts: Vec<String>,
    pub mcp_rate_limit_per_minute: u32,
    /// How often the worker sweeps each configured company's inventory (None: only on demand).
    pub inventory_sweep_interval: Option<time::Duration>,
    /// How long a sweep holds its company without renewing (it renews every quarter of it).
    pub sweep_lease: std::time::Duration,
    /// Exchange calls in flight at once per tenant, and in all.
    pub tenant_concurrency: usize,
    pub global_concurrency: usize,
    /// Whether new companies start with the separate-approver rule (four eyes) on.
    pub default_separate_approver: bool,
}

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
        if raw.mcp.rate_limit_per_minute == 0 {
            return Err(ConfigError::Invalid {
                key: "mcp.rate_limit_per_minute",
                reason: "must be at least 1".to_owned(),
            });
        }
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
            mcp_allowed_hosts: raw.mcp.allowed_hosts,
            mcp_rate_limit_per_minute: raw.mcp.rate_limit_per_minute,
            inventory_sweep_interval: match raw.inventory.sweep_interval_hours {
                0 => None,
                hours => Some(time::Duration::hours(i64::from(hours))),
            },
            sweep_lease: std::time::Duration::from_secs(u64::from(raw.inventory.lease_seconds)),
            tenant_concurrency: tenant_concurrency as usize,
            global_concurrency: global_concurrency as usize,
            default_separate_approver: raw.approvals.separate_approver,
        })
    }
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
const TOP_LEVEL_KEYS: [&str; 8] = [
    "data_dir",
    "database_url",
    "server",
    "microsoft",
    "approvals",
    "status",
    "mcp",
    "inventory",
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
