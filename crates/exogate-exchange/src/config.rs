//! Configuration: where Microsoft lives (per cloud, or one emulator URL), who we are (the
//! Exchange app and the connect app, each with a secret or a certificate), and the client's
//! limits (timeouts, concurrency, retries, the role-propagation window).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;
use uuid::Uuid;

/// A configuration mistake found before anything is sent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} is not a valid URL: {url}")]
    BadUrl { what: &'static str, url: String },
    #[error("{what} uses http:// for a host that is not loopback ({url}); only https is allowed")]
    InsecureUrl { what: &'static str, url: String },
    #[error("the certificate could not be read: {0}")]
    BadCertificate(String),
    #[error("the private key could not be read: {0}")]
    BadPrivateKey(String),
    #[error("the HTTP client could not be built: {0}")]
    Http(String),
}

/// Microsoft clouds with their well-known endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Worldwide (commercial) Microsoft 365.
    Global,
    /// US Government GCC High.
    GccHigh,
    /// US Government DoD.
    Dod,
    /// Microsoft 365 operated by 21Vianet (China).
    China,
}

/// Base URLs of the three services, and the resource identifiers tokens are requested for.
///
/// The resource (token audience) stays Microsoft's own identifier even when the base URL
/// points at an emulator: `https://outlook.office365.com/.default` is what the Exchange app asks
/// for, wherever the token endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Entra login authority, e.g. `https://login.microsoftonline.com`.
    pub login: Url,
    /// Microsoft Graph, e.g. `https://graph.microsoft.com`.
    pub graph: Url,
    /// Exchange Online, e.g. `https://outlook.office365.com`.
    pub exchange: Url,
    /// Resource URI for Exchange tokens (scope is this + `/.default`).
    pub exchange_resource: String,
    /// Resource URI for Graph tokens.
    pub graph_resource: String,
}

/// Only called with the literal URLs below (checked by a unit test).
fn url(s: &str) -> Url {
    Url::parse(s).expect("preset URLs are valid literals")
}

impl Endpoints {
    /// Microsoft's endpoints for `cloud`.
    ///
    /// The hosts are listed in `docs/MICROSOFT.md#clouds`. The worldwide hosts and the Exchange
    /// hosts of the sovereign clouds (`outlook.office365.us` GCC High, `outlook-dod.office365.us`
    /// DoD, `outlook.office365.cn` 21Vianet) are documented for the Exchange admin API; the EXO
    /// PowerShell module's China environment is also seen as `partner.outlook.cn`, which
    /// [`Endpoints::with_exchange`] can set. The sovereign login and Graph hosts
    /// (`login.microsoftonline.us`, `graph.microsoft.us`, `dod-graph.microsoft.us`,
    /// `login.chinacloudapi.cn`, `microsoftgraph.chinacloudapi.cn`) are Microsoft's published
    /// national-cloud hosts, untested here.
    pub fn cloud(cloud: Cloud) -> Self {
        match cloud {
            Cloud::Global => Self {
                login: url("https://login.microsoftonline.com"),
                graph: url("https://graph.microsoft.com"),
                exchange: url("https://outlook.office365.com"),
                exchange_resource: "https://outlook.office365.com".into(),
                graph_resource: "https://graph.microsoft.com".into(),
            },
            Cloud::GccHigh => Self {
                login: url("https://login.microsoftonline.us"),
                graph: url("https://graph.microsoft.us"),
                exchange: url("https://outlook.office365.us"),
                exchange_resource: "https://outlook.office365.us".into(),
                graph_resource: "https://graph.microsoft.us".into(),
            },
            Cloud::Dod => Self {
                login: url("https://login.microsoftonline.us"),
                graph: url("https://dod-graph.microsoft.us"),
                exchange: url("https://outlook-dod.office365.us"),
                exchange_resource: "https://outlook-dod.office365.us".into(),
                graph_resource: "https://dod-graph.microsoft.us".into(),
            },
            Cloud::China => Self {
                login: url("https://login.chinacloudapi.cn"),
                graph: url("https://microsoftgraph.chinacloudapi.cn"),
                exchange: url("https://outlook.office365.cn"),
                exchange_resource: "https://outlook.office365.cn".into(),
                graph_resource: "https://microsoftgraph.chinacloudapi.cn".into(),
            },
        }
    }

    /// All three services at one base URL (the emulator), with the worldwide resource ids.
    pub fn single(base: &str) -> Result<Self, ConfigError> {
        let base = parse_base("emulator URL", base)?;
        Ok(Self {
            login: base.clone(),
            graph: base.clone(),
            exchange: base,
            ..Self::cloud(Cloud::Global)
        })
    }

    /// Replaces the Exchange base URL.
    pub fn with_exchange(mut self, base: &str) -> Result<Self, ConfigError> {
        self.exchange = parse_base("Exchange URL", base)?;
        Ok(self)
    }

    /// Checks every URL (https, or http on a loopback host).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (what, u) in [
            ("login URL", &self.login),
            ("Graph URL", &self.graph),
            ("Exchange URL", &self.exchange),
        ] {
            check_scheme(what, u)?;
        }
        Ok(())
    }

    pub(crate) fn exchange_scope(&self) -> String {
        format!("{}/.default", self.exchange_resource.trim_end_matches('/'))
    }

    pub(crate) fn graph_scope(&self) -> String {
        format!("{}/.default", self.graph_resource.trim_end_matches('/'))
    }

    /// `{login}/{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> String {
        format!("{}/{}/oauth2/v2.0/token", trim(&self.login), tenant)
    }

    /// `{exchange}/adminapi/beta/{tenant}/InvokeCommand`.
    pub fn invoke_url(&self, tenant: Uuid) -> String {
        format!(
            "{}/adminapi/beta/{}/InvokeCommand",
            trim(&self.exchange),
            tenant
        )
    }

    /// `{exchange}/adminapi/beta/{tenant}/$batch`.
    pub fn batch_url(&self, tenant: Uuid) -> String {
        format!("{}/adminapi/beta/{}/$batch", trim(&self.exchange), tenant)
    }
}

impl Default for Endpoints {
    fn default() -> Self {
        Self::cloud(Cloud::Global)
    }
}

pub(crate) fn trim(u: &Url) -> &str {
    u.as_str().trim_end_matches('/')
}

fn parse_base(what: &'static str, s: &str) -> Result<Url, ConfigError> {
    let u = Url::parse(s).map_err(|_| ConfigError::BadUrl {
        what,
        url: s.to_owned(),
    })?;
    check_scheme(what, &u)?;
    Ok(u)
}

fn check_scheme(what: &'static str, u: &Url) -> Result<(), ConfigError> {
    match u.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(u) => Ok(()),
        "http" => Err(ConfigError::InsecureUrl {
            what,
            url: u.to_string(),
        }),
        _ => Err(ConfigError::BadUrl {
            what,
            url: u.to_string(),
        }),
    }
}

fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// How an app proves who it is to Entra.
pub enum AppCredential {
    /// A client secret.
    Secret(SecretString),
    /// A certificate: the client sends a signed `client_assertion` (PS256, `x5t#S256`).
    Certificate(CertificateCredential),
}

impl fmt::Debug for AppCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.write_str("Secret([redacted])"),
            Self::Certificate(c) => f
                .debug_struct("Certificate")
                .field("x5t#S256", &c.thumbprint_s256)
                .field("private_key", &"[redacted]")
                .finish(),
        }
    }
}

/// A certificate and its private key, parsed once.
pub struct CertificateCredential {
    /// base64url SHA-256 of the certificate DER.
    pub(crate) thumbprint_s256: String,
    pub(crate) key: jsonwebtoken::EncodingKey,
}

impl CertificateCredential {
    /// Reads a PEM certificate and a PEM RSA private key (PKCS#8 or PKCS#1).
    pub fn from_pem(
        certificate_pem: &str,
        private_key_pem: &SecretString,
    ) -> Result<Self, ConfigError> {
        use base64::Engine as _;
        use sha2::Digest as _;
        let (_, pem) = x509_parser::pem::parse_x509_pem(certificate_pem.as_bytes())
            .map_err(|e| ConfigError::BadCertificate(e.to_string()))?;
        if pem.label != "CERTIFICATE" {
            return Err(ConfigError::BadCertificate(format!(
                "expected a CERTIFICATE PEM block, found {}",
                pem.label
            )));
        }
        pem.parse_x509()
            .map_err(|e| ConfigError::BadCertificate(e.to_string()))?;
        let digest = sha2::Sha256::digest(&pem.contents);
        let thumbprint_s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        let key =
            jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes())
                .map_err(|e| ConfigError::BadPrivateKey(e.to_string()))?;
        Ok(Self {
            thumbprint_s256,
            key,
        })
    }

    /// The `x5t#S256` header value.
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint_s256)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

/// One app registration in the MSP's tenant.
#[derive(Debug)]
pub struct AppConfig {
    pub client_id: Uuid,
    pub credential: AppCredential,
}

impl AppConfig {
    pub fn with_secret(client_id: Uuid, secret: impl Into<String>) -> Self {
        Self {
            client_id,
            credential: AppCredential::Secret(SecretString::from(secret.into())),
        }
    }

    pub fn with_certificate(client_id: Uuid, certificate: CertificateCredential) -> Self {
        Self {
            client_id,
            credential: AppCredential::Certificate(certificate),
        }
    }
}

/// Limits and timing of the client.
#[derive(Debug, Clone)]
pub struct Limits {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (send + full body).
    pub request_timeout: Duration,
    /// Exchange requests in flight per tenant, at most: the client lowers it while Exchange
    /// answers 429 and raises it back as answers come without (see [`crate::limiter`]).
    pub per_tenant_concurrency: usize,
    /// Exchange requests in flight across all tenants.
    pub global_concurrency: usize,
    /// Attempts for a read (first try included) on 5xx and network errors.
    pub max_read_attempts: u32,
    /// Attempts for a read (first try included) while Exchange answers 429: throttling says
    /// "later", not "broken", so it gets a longer budget.
    pub max_throttled_attempts: u32,
    /// First backoff delay when no `Retry-After` is given; doubles each time.
    pub backoff_base: Duration,
    /// Largest single backoff or `Retry-After` wait the client accepts.
    pub backoff_max: Duration,
    /// Attempts of an ensure-operation's write (each after re-reading the state).
    pub max_write_attempts: u32,
    /// How long a role present in the token may still be refused (403) before the readiness
    /// check reports `role_missing` instead of `propagating`.
    pub role_propagation_window: Duration,
    /// Quick probe retries (fresh token each time) inside one readiness check.
    pub readiness_probe_retries: u32,
    /// Page size asked for with `Prefer: odata.maxpagesize`.
    pub page_size: u32,
    /// Largest number of pages one list follows (guards against a looping service).
    pub max_pages: u32,
    /// How long [`crate::M365Client::verify`] read-backs poll.
    pub verify_window: Duration,
}

impl Limits {
    /// Whether a read that failed with `e` on attempt number `attempt` (1-based) is tried
    /// again.
    pub fn may_retry(&self, e: &crate::ExchangeError, attempt: u32) -> bool {
        match e {
            crate::ExchangeError::Throttled { .. } => attempt < self.max_throttled_attempts,
            e => e.is_retryable() && attempt < self.max_read_attempts,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            per_tenant_concurrency: 4,
            global_concurrency: 64,
            max_read_attempts: 5,
            max_throttled_attempts: 12,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            max_write_attempts: 3,
            role_propagation_window: Duration::from_secs(180),
            readiness_probe_retries: 2,
            page_size: 1000,
            max_pages: 100_000,
            verify_window: Duration::from_secs(60),
        }
    }
}

/// Everything [`crate::M365Client::new`] needs.
#[derive(Debug)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    /// The app holding `Exchange.ManageAsApp` (the Authorize step consents to it).
    pub exchange_app: AppConfig,
    /// The app holding Graph `Organization.Read.All` (connecting a company consents to it).
    /// `None`: the Exchange app plays both parts.
    pub connect_app: Option<AppConfig>,
    pub limits: Limits,
    /// `User-Agent` sent with every request.
    pub user_agent: String,
}

impl ClientConfig {
    pub fn new(endpoints: Endpoints, exchange_app: AppConfig) -> Self {
        Self {
            endpoints,
            exchange_app,
            connect_app: None,
            limits: Limits::default(),
            user_agent: concat!("exogate/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_are_https() {
        for c in [Cloud::Global, Cloud::GccHigh, Cloud::Dod, Cloud::China] {
            let e = Endpoints::cloud(c);
            e.validate().unwrap();
        }
    }

    #[test]
    fn scopes_follow_the_cloud_and_stay_microsoft_on_the_emulator() {
        assert_eq!(
            Endpoints::cloud(Cloud::Global).exchange_scope(),
            "https://outlook.office365.com/.default"
        );
        assert_eq!(
            Endpoints::cloud(Cloud::GccHigh).exchange_scope(),
            "https://outlook.office365.us/.default"
        );
        assert_eq!(
            Endpoints::cloud(Cloud::Dod).exchange.as_str(),
            "https://outlook-dod.office365.us/"
        );
        assert_eq!(
            Endpoints::cloud(Cloud::China).graph_scope(),
            "https://microsoftgraph.chinacloudapi.cn/.default"
        );
        let emu = Endpoints::single("http://127.0.0.1:9").unwrap();
        assert_eq!(
            emu.exchange_scope(),
            "https://outlook.office365.com/.default"
        );
        assert_eq!(emu.graph_scope(), "https://graph.microsoft.com/.default");
        assert_eq!(emu.token_url("t"), "http://127.0.0.1:9/t/oauth2/v2.0/token");
        assert_eq!(
            emu.invoke_url(Uuid::nil()),
            format!(
                "http://127.0.0.1:9/adminapi/beta/{}/InvokeCommand",
                Uuid::nil()
            )
        );
    }

    #[test]
    fn http_only_for_loopback() {
        assert!(Endpoints::single("http://127.0.0.1:8080").is_ok());
        assert!(Endpoints::single("http://localhost:8080").is_ok());
        assert!(Endpoints::single("http://[::1]:8080").is_ok());
        assert!(matches!(
            Endpoints::single("http://example.com"),
            Err(ConfigError::InsecureUrl { .. })
        ));
        assert!(matches!(
            Endpoints::single("ftp://127.0.0.1"),
            Err(ConfigError::BadUrl { .. })
        ));
    }

    #[test]
    fn secret_debug_is_redacted() {
        let app = AppConfig::with_secret(Uuid::nil(), "hunter2");
        let s = format!("{app:?}");
        assert!(!s.contains("hunter2"), "{s}");
    }
}
