//! Sign in with Microsoft, configured (`[signin]`): whether local accounts (passwords) remain,
//! and the sign-in app, the allowed tenants and the mapping of Entra groups and app roles to
//! roles and companies. [`MicrosoftSignin`] is what the running app keeps: the wire client
//! (`exogate_exchange::signin`) and the core's policy (`exogate_core::signin`).

use std::collections::BTreeMap;

use exogate_core::signin::{Policy, Source};
use exogate_core::{Entitlement, Role};
use secrecy::SecretString;
use serde::Deserialize;

/// A setting that is wrong: its key and why (`crate::config` turns it into a `ConfigError`).
pub type Invalid = (&'static str, String);

/// `[signin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawSignin {
    local_accounts: bool,
    second_factor: bool,
    microsoft: Option<RawMicrosoftSignin>,
}

impl Default for RawSignin {
    fn default() -> Self {
        Self {
            local_accounts: true,
            second_factor: true,
            microsoft: None,
        }
    }
}

/// `[signin.microsoft]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMicrosoftSignin {
    client_id: String,
    client_secret: SecretString,
    tenants: Vec<String>,
    #[serde(default = "default_session_hours")]
    session_hours: u32,
    #[serde(default)]
    roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    companies: BTreeMap<String, String>,
}

fn default_session_hours() -> u32 {
    8
}

/// The validated `[signin]` section.
#[derive(Debug)]
pub struct SigninConfig {
    /// Local accounts (user name and password) may sign in: break-glass and the demo.
    pub local_accounts: bool,
    /// Local managers and admins must give a TOTP code (or a recovery code) with their password.
    pub second_factor: bool,
    pub microsoft: Option<MicrosoftConfig>,
}

#[derive(Debug)]
pub struct MicrosoftConfig {
    pub client_id: uuid::Uuid,
    pub client_secret: SecretString,
    /// Allowed tenant ids, lowercase.
    pub tenants: Vec<String>,
    /// Sessions of Microsoft users end this long after sign-in, however active.
    pub session_secs: i64,
    pub roles: Vec<(Role, Vec<Source>)>,
    pub companies: Vec<(Source, Entitlement)>,
}

fn invalid(key: &'static str, reason: impl Into<String>) -> Invalid {
    (key, reason.into())
}

pub(crate) fn validate(raw: RawSignin) -> Result<SigninConfig, Invalid> {
    let microsoft = match raw.microsoft {
        None => None,
        Some(m) => {
            let client_id = uuid::Uuid::parse_str(m.client_id.trim())
                .map_err(|_| invalid("signin.microsoft.client_id", "must be a GUID"))?;
            if m.tenants.is_empty() {
                return Err(invalid(
                    "signin.microsoft.tenants",
                    "name at least one tenant id (the MSP's own tenant)",
                ));
            }
            let mut tenants = Vec::new();
            for t in &m.tenants {
                let id = uuid::Uuid::parse_str(t.trim()).map_err(|_| {
                    invalid(
                        "signin.microsoft.tenants",
                        format!(
                            "`{}` is not a tenant id (a GUID)",
                            t.chars().take(64).collect::<String>()
                        ),
                    )
                })?;
                tenants.push(id.to_string());
            }
            if !(1..=24).contains(&m.session_hours) {
                return Err(invalid(
                    "signin.microsoft.session_hours",
                    "must be between 1 and 24",
                ));
            }
            let mut roles = Vec::new();
            for (name, sources) in &m.roles {
                let role = Role::parse(name).map_err(|_| {
                    invalid(
                        "signin.microsoft.roles",
                        "keys are viewer, technician, manager, admin",
                    )
                })?;
                roles.push((role, sources.iter().map(|s| Source::parse(s)).collect()));
            }
            if roles.is_empty() {
                return Err(invalid(
                    "signin.microsoft.roles",
                    "map at least one group or app role to a role, or nobody can sign in",
                ));
            }
            let mut companies = Vec::new();
            for (source, list) in &m.companies {
                let ent = Entitlement::parse(list)
                    .map_err(|e| invalid("signin.microsoft.companies", e.to_string()))?;
                companies.push((Source::parse(source), ent));
            }
            Some(MicrosoftConfig {
                client_id,
                client_secret: m.client_secret,
                tenants,
                session_secs: i64::from(m.session_hours) * 3600,
                roles,
                companies,
            })
        }
    };
    if !raw.local_accounts && microsoft.is_none() {
        return Err(invalid(
            "signin.local_accounts",
            "cannot be false without [signin.microsoft]: nobody could sign in",
        ));
    }
    Ok(SigninConfig {
        local_accounts: raw.local_accounts,
        second_factor: raw.second_factor,
        microsoft,
    })
}

/// Sign in with Microsoft as the running app keeps it.
#[derive(Debug)]
pub struct MicrosoftSignin {
    pub client: exogate_exchange::signin::SigninClient,
    pub policy: Policy,
    /// The tenant segment of the authorize and token URLs: the one tenant, or `organizations`.
    pub tenant_segment: String,
    pub session_secs: i64,
}

impl MicrosoftSignin {
    pub fn new(m365: &exogate_exchange::M365Client, c: &MicrosoftConfig) -> Self {
        let client = m365.signin_client(c.client_id, c.client_secret.clone());
        let policy = Policy {
            client_id: c.client_id.to_string(),
            authority: client.authority(),
            tenants: c.tenants.clone(),
            roles: c.roles.clone(),
            companies: c.companies.clone(),
        };
        let tenant_segment = match c.tenants.as_slice() {
            [one] => one.clone(),
            _ => "organizations".to_owned(),
        };
        Self {
            client,
            policy,
            tenant_segment,
            session_secs: c.session_secs,
        }
    }
}
