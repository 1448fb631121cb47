//! The emulator's whole world: tenants, app registrations, service principals, directory
//! contents, knobs, counters and the apply log. One `RwLock` guards it; handlers hold it only
//! for short, synchronous sections and never across an `.await`.
//!
//! Ownership while the crate is being built: Entra/Graph/admin-centre/scenario code owns
//! `AppRegistration`, `ServicePrincipal` and the token parts; the Exchange code owns
//! `exchange::Directory`, the Exchange knobs, counters and the apply log.

use std::collections::{BTreeMap, BTreeSet};

use parking_lot::{Mutex, RwLock};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::clock::Clock;
use crate::exchange::Directory;
use crate::scenario::Scenario;

/// Well-known identifiers (`docs/MICROSOFT.md#identifiers`).
pub mod ids {
    use uuid::{Uuid, uuid};
    /// "Office 365 Exchange Online" resource appId.
    pub const EXCHANGE_RESOURCE_APP_ID: Uuid = uuid!("00000002-0000-0ff1-ce00-000000000000");
    /// Microsoft Graph resource appId.
    pub const GRAPH_RESOURCE_APP_ID: Uuid = uuid!("00000003-0000-0000-c000-000000000000");
    pub const EXCHANGE_ADMINISTRATOR: Uuid = uuid!("29232cdf-9323-42fd-ade2-1d097af3e4de");
    pub const GLOBAL_ADMINISTRATOR: Uuid = uuid!("62e90394-69f5-4237-9190-012177145e10");
    pub const GLOBAL_READER: Uuid = uuid!("f2ef992c-3afb-46b9-b7cf-a126ee74c451");
    pub const EXCHANGE_RECIPIENT_ADMINISTRATOR: Uuid =
        uuid!("31392ffb-586c-42d1-9346-e59415a2cc4e");
    pub const SECURITY_READER: Uuid = uuid!("5d6b6bb7-de71-4623-b4af-96380a352509");
    /// Implicit non-role value present in every app-only token's `wids`.
    pub const IMPLICIT_WIDS: Uuid = uuid!("0997a1d0-0d1d-4acb-b408-d5ca73121e90");
    pub const EXCHANGE_MANAGE_AS_APP: &str = "Exchange.ManageAsApp";
    pub const ORGANIZATION_READ_ALL: &str = "Organization.Read.All";
    pub const EXCHANGE_AUDIENCE: &str = "https://outlook.office365.com";
    pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";
}

/// Everything the handlers share.
pub struct Shared {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub base_url: String,
    pub clock: Clock,
    pub world: RwLock<World>,
    /// Seeded randomness for fault injection, ids and skiptokens.
    pub rng: Mutex<ChaCha8Rng>,
    /// RS256 signing key and its JWKS form.
    pub keys: crate::entra::SigningKeys,
    // (msft-signin)
    /// People signing in (OpenID Connect): apps, accounts, codes, rotating keys.
    pub signin: crate::signin::Signin,
}

impl Shared {
    pub fn new(base_url: String, scenario: Scenario) -> anyhow::Result<Self> {
        let seed = scenario.seed();
        let world = scenario.into_world()?;
        Ok(Self {
            base_url,
            clock: Clock::default(),
            world: RwLock::new(world),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            keys: crate::entra::SigningKeys::generate()?,
            signin: crate::signin::Signin::demo()?,
        })
    }
}

#[derive(Debug, Default)]
pub struct World {
    pub tenants: BTreeMap<Uuid, Tenant>,
    /// App registrations in the MSP's home tenant, by client id.
    pub apps: BTreeMap<Uuid, AppRegistration>,
    pub knobs: Knobs,
    /// Per-tenant knob overrides (replace the global knobs for that tenant).
    pub tenant_knobs: BTreeMap<Uuid, Knobs>,
    pub counters: Counters,
    pub apply_log: Vec<ApplyEntry>,
    /// Exchange runtime state (rate buckets, skiptoken key).
    pub exchange: crate::exchange::Runtime,
    /// `client_id|jti` of client assertions seen, with their `exp` (for
    /// `reject_assertion_jti_replay`); expired ones are pruned as new ones arrive.
    pub assertion_jtis: BTreeMap<String, i64>,
}

impl World {
    /// Finds a live or deleted tenant by GUID or by any of its domains (case-insensitive).
    pub fn tenant_by_ref(&self, reference: &str) -> Option<&Tenant> {
        if let Ok(id) = Uuid::parse_str(reference) {
            return self.tenants.get(&id);
        }
        let reference = reference.to_ascii_lowercase();
        self.tenants
            .values()
            .find(|t| t.domains.iter().any(|d| d.eq_ignore_ascii_case(&reference)))
    }

    pub fn knobs_for(&self, tenant: Uuid) -> &Knobs {
        self.tenant_knobs.get(&tenant).unwrap_or(&self.knobs)
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: Uuid,
    pub display_name: String,
    /// Verified domains; the first is the initial `*.onmicrosoft.com` domain.
    pub domains: Vec<String>,
    /// A deleted tenant answers AADSTS90002 everywhere.
    pub deleted: bool,
    /// Service principals of multi-tenant apps, by the app's client id.
    pub service_principals: BTreeMap<Uuid, ServicePrincipal>,
    pub directory: Directory,
}

impl Tenant {
    pub fn initial_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServicePrincipal {
    pub object_id: Uuid,
    pub app_id: Uuid,
    pub created_at: OffsetDateTime,
    /// Granted application permissions (app roles), e.g. `Exchange.ManageAsApp`.
    pub app_roles: BTreeSet<String>,
    /// Directory roles by role template id, with the time each was assigned.
    pub directory_roles: BTreeMap<Uuid, OffsetDateTime>,
    /// When admin consent last granted permissions (token requests answer AADSTS700016 until
    /// `consent_propagation_secs` after it).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub consented_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppRegistration {
    pub client_id: Uuid,
    pub display_name: String,
    #[serde(default)]
    pub secrets: Vec<AppSecret>,
    /// PEM certificates whose keys may sign `client_assertion`s.
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Required application permissions, granted by admin consent.
    #[serde(default)]
    pub required_permissions: Vec<RequiredPermission>,
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct AppSecret {
    pub value: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for AppSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSecret")
            .field("value", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequiredPermission {
    /// Resource app id (Exchange or Graph).
    pub resource: Uuid,
    /// App role value, e.g. `Exchange.ManageAsApp`.
    pub role: String,
}

/// Fidelity knobs and fault injection. Every behaviour of Microsoft that is not certain is a
/// knob (`docs/MICROSOFT.md#certain-and-assumed`); the defaults are the likeliest behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Knobs {
    /// Latency added per cmdlet, in milliseconds; key `*` applies to every cmdlet.
    pub latency_ms: BTreeMap<String, u64>,
    /// Most InvokeCommand requests in flight per tenant; beyond it, 429.
    pub tenant_concurrency_cap: Option<u32>,
    /// Cmdlets per second per tenant (token bucket); beyond it, 429.
    pub tenant_rate_per_sec: Option<f64>,
    /// Bucket size for `tenant_rate_per_sec`.
    pub tenant_rate_burst: Option<f64>,
    /// `Retry-After` seconds sent with 429 (may be fractional).
    pub retry_after_secs: f64,
    /// Probability of a 5xx answer per Exchange request.
    pub error_5xx_rate: f64,
    /// Probability that a write is applied and then the connection is dropped.
    pub apply_then_drop_rate: f64,
    /// Reads lag writes by this long.
    pub replication_lag_ms: u64,
    /// Exchange answers 403 for this long after a directory role is assigned, even with a new token.
    pub role_propagation_delay_secs: u64,
    /// `expires_in` of issued tokens.
    pub token_lifetime_secs: u64,
    /// When true, every `@odata.nextLink` continuation fails with the pagination 400.
    pub paging_continuation_broken: bool,
    /// Skiptoken lifetime.
    pub skiptoken_ttl_secs: u64,
    /// Status for ManagementObjectNotFoundException: 404 (measured) or 400 (reported).
    pub not_found_status: u16,
    /// `error.message` text: "Error executing cmdlet" or "Invalid Operation".
    pub error_message: String,
    /// `details[0].message` format.
    pub details_format: DetailsFormat,
    /// Send `Rate-Limit-*` headers on 200s.
    pub rate_limit_headers: bool,
    /// Emit `IsInherited` on Get-RecipientPermission rows.
    pub recipient_permission_is_inherited: bool,
    /// Re-adding an existing Full Access grant warns (instead of a silent 200).
    pub add_mailbox_permission_duplicate_warning: bool,
    /// Reject a reused client-assertion `jti`.
    pub reject_assertion_jti_replay: bool,
    /// Reject InvokeCommand calls that carry no `X-AnchorMailbox`.
    pub strict_anchor: bool,
    /// Error string returned for AADSTS90002 by the token endpoint.
    pub tenant_not_found_error: String,
    /// Family-B 403 bodies (NUL bytes) declare `Content-Encoding: gzip` although they are not
    /// gzip (observed; `docs/MICROSOFT.md#errors`, family B).
    pub forbidden_body_declares_gzip: bool,
    /// Token requests answer AADSTS700016 for this long after admin consent (Entra creates the
    /// service principal asynchronously).
    pub consent_propagation_secs: u64,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            latency_ms: BTreeMap::new(),
            tenant_concurrency_cap: None,
            tenant_rate_per_sec: None,
            tenant_rate_burst: None,
            retry_after_secs: 1.0,
            error_5xx_rate: 0.0,
            apply_then_drop_rate: 0.0,
            replication_lag_ms: 0,
            role_propagation_delay_secs: 0,
            token_lifetime_secs: 3599,
            paging_continuation_broken: false,
            skiptoken_ttl_secs: 600,
            not_found_status: 404,
            error_message: "Error executing cmdlet".to_owned(),
            details_format: DetailsFormat::IdTypeMessage,
            rate_limit_headers: false,
            recipient_permission_is_inherited: true,
            add_mailbox_permission_duplicate_warning: false,
            reject_assertion_jti_replay: false,
            strict_anchor: false,
            tenant_not_found_error: "invalid_request".to_owned(),
            forbidden_body_declares_gzip: true,
            consent_propagation_secs: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DetailsFormat {
    /// `Ex6F9304|Type|message`
    IdTypeMessage,
    /// `|Type|message`
    EmptyIdTypeMessage,
    /// A JSON string `{"Message":…,"TypeName":…}`
    NestedJson,
}

/// Request counters, read through `GET /_emulator/counters`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counters {
    /// Token requests by `tenant|client_id|resource`, successful or not.
    pub token_requests: BTreeMap<String, u64>,
    /// Exchange requests by `cmdlet|status`.
    pub exchange_requests: BTreeMap<String, u64>,
    /// Graph requests by `path|status`.
    pub graph_requests: BTreeMap<String, u64>,
    /// Current and highest in-flight Exchange requests per tenant.
    pub in_flight: BTreeMap<Uuid, u32>,
    pub max_in_flight: BTreeMap<Uuid, u32>,
    /// HTTP 429s sent, per tenant.
    pub throttled: BTreeMap<Uuid, u64>,
}

/// One change applied to tenant state: the oracle for reliability tests.
#[derive(Debug, Clone, Serialize)]
pub struct ApplyEntry {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub tenant: Uuid,
    pub cmdlet: String,
    /// What changed, e.g. `{"mailbox":…,"trustee":…,"right":"FullAccess","op":"add"}`.
    pub change: serde_json::Value,
}
