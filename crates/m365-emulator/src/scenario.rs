//! Scenarios: the starting world, as JSON (`--scenario FILE`) or built in (`demo`, the world of
//! `docs/DOMAIN.md#demo-world`).
//!
//! ```json
//! {
//!   "seed": 7,
//!   "knobs": { "token_lifetime_secs": 3599 },
//!   "apps": [{ "client_id": "…", "display_name": "…",
//!              "secrets": [{ "value": "…", "expires_at": "2030-01-01T00:00:00Z" }],
//!              "certificates": ["-----BEGIN CERTIFICATE-----…"],
//!              "redirect_uris": ["http://127.0.0.1/*"],
//!              "required_permissions": [{ "resource": "00000002-0000-0ff1-ce00-000000000000",
//!                                         "role": "Exchange.ManageAsApp" }],
//!              "disabled": false }],
//!   "tenants": [{ "id": "…", "display_name": "Contoso", "domains": ["contoso.onmicrosoft.com"],
//!                 "deleted": false,
//!                 "consents": ["<client id>"],
//!                 "roles": [{ "client_id": "<client id>", "role": "Exchange Administrator" }],
//!                 "directory": { … the Exchange half's seed … },
//!                 "knobs": { … replaces the global knobs for this tenant … } }]
//! }
//! ```
//!
//! A `role` is a directory role template id or a name from [`crate::entra::DIRECTORY_ROLES`].

use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;
use time::OffsetDateTime;
use uuid::{Uuid, uuid};

use crate::state::{AppRegistration, AppSecret, Knobs, RequiredPermission, Tenant, World, ids};

/// The demo's Exchange app (`docs/DOMAIN.md#demo-world`).
pub const DEMO_EXCHANGE_APP: Uuid = uuid!("e0e0e0e0-0000-4000-8000-000000000001");
/// The demo's connect app (`docs/DOMAIN.md#demo-world`).
pub const DEMO_CONNECT_APP: Uuid = uuid!("e0e0e0e0-0000-4000-8000-000000000002");
pub const DEMO_EXCHANGE_SECRET: &str = "demo-client-secret";
pub const DEMO_CONNECT_SECRET: &str = "demo-connect-secret";
pub const DEMO_CONTOSO: Uuid = uuid!("11111111-1111-4111-8111-111111111111");
pub const DEMO_FABRIKAM: Uuid = uuid!("22222222-2222-4222-8222-222222222222");
pub const DEMO_NORTHWIND: Uuid = uuid!("33333333-3333-4333-8333-333333333333");
pub const DEMO_TAILSPIN: Uuid = uuid!("44444444-4444-4444-8444-444444444444");

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("scenario is inconsistent: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Fixes all randomness (object ids, trace ids, fault injection).
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub knobs: Knobs,
    #[serde(default)]
    pub apps: Vec<AppRegistration>,
    #[serde(default)]
    pub tenants: Vec<TenantSpec>,
}

/// One tenant of a scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSpec {
    pub id: Uuid,
    pub display_name: String,
    /// The first is the initial `*.onmicrosoft.com` domain.
    pub domains: Vec<String>,
    #[serde(default)]
    pub deleted: bool,
    /// Client ids of apps this tenant has admin-consented to.
    #[serde(default)]
    pub consents: Vec<Uuid>,
    /// Directory roles held by consented apps' service principals.
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    /// The tenant's Exchange directory, in the Exchange half's seed format.
    #[serde(default)]
    pub directory: Option<serde_json::Value>,
    /// Knobs for this tenant only (they replace the global knobs for it).
    #[serde(default)]
    pub knobs: Option<Knobs>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub client_id: Uuid,
    /// Template id or name (e.g. `Exchange Administrator`).
    pub role: String,
}

impl Scenario {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// `demo` (the built-in world) or a path to a JSON scenario file.
    pub fn parse(name_or_path: &str) -> Result<Self, ScenarioError> {
        match name_or_path {
            "demo" => Ok(Self::demo()),
            "empty" => Ok(Self::empty()),
            path => Self::from_file(Path::new(path)),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        Ok(serde_json::from_str(text)?)
    }

    /// The demo world (`docs/DOMAIN.md#demo-world`).
    pub fn demo() -> Self {
        let loopback = vec![
            "http://127.0.0.1/*".to_owned(),
            "http://localhost/*".to_owned(),
        ];
        let apps = vec![
            AppRegistration {
                client_id: DEMO_EXCHANGE_APP,
                display_name: "exogate Exchange".to_owned(),
                secrets: vec![AppSecret {
                    value: DEMO_EXCHANGE_SECRET.to_owned(),
                    expires_at: None,
                }],
                certificates: Vec::new(),
                redirect_uris: loopback.clone(),
                required_permissions: vec![RequiredPermission {
                    resource: ids::EXCHANGE_RESOURCE_APP_ID,
                    role: ids::EXCHANGE_MANAGE_AS_APP.to_owned(),
                }],
                disabled: false,
            },
            AppRegistration {
                client_id: DEMO_CONNECT_APP,
                display_name: "exogate Connect".to_owned(),
                secrets: vec![AppSecret {
                    value: DEMO_CONNECT_SECRET.to_owned(),
                    expires_at: None,
                }],
                certificates: Vec::new(),
                redirect_uris: loopback,
                required_permissions: vec![RequiredPermission {
                    resource: ids::GRAPH_RESOURCE_APP_ID,
                    role: ids::ORGANIZATION_READ_ALL.to_owned(),
                }],
                disabled: false,
            },
        ];
        let tenant = |id: Uuid, name: &str, domain: &str, consents: Vec<Uuid>| TenantSpec {
            id,
            display_name: name.to_owned(),
            domains: vec![domain.to_owned()],
            deleted: false,
            consents,
            roles: Vec::new(),
            directory: serde_json::to_value(crate::exchange::demo_directory_seed(domain)).ok(),
            knobs: None,
        };
        let mut contoso = tenant(
            DEMO_CONTOSO,
            "Contoso",
            "contoso.onmicrosoft.com",
            vec![DEMO_EXCHANGE_APP, DEMO_CONNECT_APP],
        );
        contoso.roles.push(RoleSpec {
            client_id: DEMO_EXCHANGE_APP,
            role: ids::EXCHANGE_ADMINISTRATOR.to_string(),
        });
        let fabrikam = tenant(
            DEMO_FABRIKAM,
            "Fabrikam",
            "fabrikam.onmicrosoft.com",
            vec![DEMO_EXCHANGE_APP, DEMO_CONNECT_APP],
        );
        let northwind = tenant(
            DEMO_NORTHWIND,
            "Northwind Traders",
            "northwind.onmicrosoft.com",
            vec![DEMO_CONNECT_APP],
        );
        let mut tailspin = tenant(
            DEMO_TAILSPIN,
            "Tailspin Toys",
            "tailspin.onmicrosoft.com",
            vec![DEMO_EXCHANGE_APP, DEMO_CONNECT_APP],
        );
        tailspin.deleted = true;
        tailspin.directory = None;

        Self {
            seed: 2026,
            knobs: Knobs::default(),
            apps,
            tenants: vec![contoso, fabrikam, northwind, tailspin],
        }
    }

    /// Builds the world. Consents and roles are dated a day before now, so no propagation knob
    /// holds them back at start.
    pub fn into_world(self) -> Result<World, ScenarioError> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5eed_0fe4_7a00);
        let mut world = World {
            knobs: self.knobs,
            ..World::default()
        };
        for app in self.apps {
            if world.apps.insert(app.client_id, app.clone()).is_some() {
                return Err(ScenarioError::Invalid(format!(
                    "app {} is listed twice",
                    app.client_id
                )));
            }
        }
        let long_ago = OffsetDateTime::now_utc() - time::Duration::days(1);
        for spec in self.tenants {
            if spec.domains.is_empty() {
                return Err(ScenarioError::Invalid(format!(
                    "tenant {} has no domain",
                    spec.id
                )));
            }
            if world.tenants.contains_key(&spec.id) {
                return Err(ScenarioError::Invalid(format!(
                    "tenant {} is listed twice",
                    spec.id
                )));
            }
            let tenant = new_tenant(
                spec.id,
                &spec.display_name,
                spec.domains.clone(),
                spec.directory.as_ref(),
                crate::exchange::seed::tenant_rng_seed(self.seed, spec.id),
            )?;
            world.tenants.insert(spec.id, tenant);
            if let Some(knobs) = spec.knobs.clone() {
                world.tenant_knobs.insert(spec.id, knobs);
            }
            for client_id in &spec.consents {
                let oid = random_uuid(&mut rng);
                world
                    .grant_admin_consent(spec.id, *client_id, long_ago, oid)
                    .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
                if let Some(sp) = world
                    .tenants
                    .get_mut(&spec.id)
                    .and_then(|t| t.service_principals.get_mut(client_id))
                {
                    sp.consented_at = None;
                }
            }
            for role in &spec.roles {
                let role_id =
                    crate::entra::directory_role_by_name(&role.role).ok_or_else(|| {
                        ScenarioError::Invalid(format!("unknown directory role '{}'", role.role))
                    })?;
                world
                    .assign_directory_role(spec.id, role.client_id, role_id, long_ago)
                    .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
            }
            if spec.deleted
                && let Some(t) = world.tenants.get_mut(&spec.id)
            {
                t.deleted = true;
            }
        }
        Ok(world)
    }
}

/// A new live tenant with an Exchange directory built from `directory` (an
/// [`crate::exchange::DirectorySeed`] in JSON), or an empty one. `rng_seed` fixes the
/// directory's generated ids.
pub fn new_tenant(
    id: Uuid,
    display_name: &str,
    domains: Vec<String>,
    directory: Option<&serde_json::Value>,
    rng_seed: u64,
) -> Result<Tenant, ScenarioError> {
    let initial = domains.first().cloned().unwrap_or_default();
    let directory = crate::exchange::directory_from_json(directory, &initial, rng_seed)
        .map_err(|e| ScenarioError::Invalid(format!("tenant {id}: {e}")))?;
    Ok(Tenant {
        id,
        display_name: display_name.to_owned(),
        domains,
        deleted: false,
        service_principals: Default::default(),
        directory,
    })
}

fn random_uuid(rng: &mut ChaCha8Rng) -> Uuid {
    use rand::Rng as _;
    uuid::Builder::from_random_bytes(rng.random()).into_uuid()
}
