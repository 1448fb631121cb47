//! The readiness check behind the "Exchange Admin" badge (`docs/MICROSOFT.md#readiness`), mapped
//! onto the states of `docs/DOMAIN.md#exchange-admin-status`. Every check drops the cached token
//! first (roles are frozen into a token when it is issued), classifies the token's `roles`/`wids`,
//! then probes `Get-OrganizationConfig`. A 403 while the token already carries a role is retried
//! with fresh tokens; if it persists the tenant is `propagating` until the configured window
//! (counted from the first such 403) has passed, and `role_missing` after it.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::M365Client;
use crate::claims::RoleClass;
use crate::error::ExchangeError;
use crate::exchange::CmdletRequest;
use crate::retry::backoff_delay;
use crate::token::{Resource, TokenError};

/// The badge states (`docs/DOMAIN.md#exchange-admin-status`) that a readiness check can produce
/// (`wrong_tenant` comes from the consent callback instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadinessState {
    NotConfigured,
    RoleMissing,
    Propagating,
    Configured,
    TenantNotFound,
    AppCredentialsInvalid,
    CheckFailed,
}

impl ReadinessState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::RoleMissing => "role_missing",
            Self::Propagating => "propagating",
            Self::Configured => "configured",
            Self::TenantNotFound => "tenant_not_found",
            Self::AppCredentialsInvalid => "app_credentials_invalid",
            Self::CheckFailed => "check_failed",
        }
    }
}

/// Why the state was chosen (for the page text and the audit log).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum ReadinessReason {
    /// Probe answered 200 with a managing role in the token.
    Ok,
    /// AADSTS700016: the Exchange app was never consented in this tenant.
    AppNotConsented,
    /// The token has no `Exchange.ManageAsApp` (consent predates the permission: re-consent).
    ExchangePermissionMissing,
    /// The probe answered 401.
    ProbeUnauthorized,
    /// `wids` holds no directory role.
    NoDirectoryRole,
    /// `wids` holds only Global Reader: Exchange reads work, delegation changes would not.
    ReadOnlyRole,
    /// The role is in the token but Exchange still answers 403, inside the window.
    WaitingForRole {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        window_ends: OffsetDateTime,
    },
    /// The role is in the token but Exchange kept answering 403 past the window.
    RoleRefused {
        #[serde(with = "time::serde::rfc3339")]
        since: OffsetDateTime,
    },
    /// AADSTS90002 / 900023.
    TenantNotFound { code: u64 },
    /// AADSTS7000215 / 7000222 / 700027.
    CredentialsRejected { code: u64 },
    /// Token endpoint error that fits nothing above.
    TokenFailed { error: TokenError },
    /// Probe failed for a reason that says nothing about set-up (429, 5xx, network, …).
    ProbeFailed { error: ExchangeError },
}

/// What the check saw, for the audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReadinessEvidence {
    pub tenant: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// `tid` of the token that was issued.
    pub token_tenant: Option<String>,
    pub app_id: Option<String>,
    pub service_principal_id: Option<String>,
    pub roles: Vec<String>,
    pub wids: Vec<String>,
    /// HTTP status of the last probe, if one was sent.
    pub probe_status: Option<u16>,
    pub probe_attempts: u32,
    pub token_requests: u32,
}

/// Result of [`M365Client::check_readiness`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub state: ReadinessState,
    #[serde(flatten)]
    pub reason: ReadinessReason,
    pub evidence: ReadinessEvidence,
}

fn probe_status(e: &ExchangeError) -> Option<u16> {
    match e {
        ExchangeError::Unauthorized { .. } => Some(401),
        ExchangeError::Forbidden { .. } => Some(403),
        ExchangeError::NotFound { .. } => Some(404),
        ExchangeError::Throttled { .. } => Some(429),
        ExchangeError::Transient { status, .. } => *status,
        ExchangeError::Rejected { status, .. } => Some(*status),
        _ => None,
    }
}

impl M365Client {
    /// Runs the readiness check for `tenant` with the Exchange app.
    pub async fn check_readiness(&self, tenant: Uuid) -> Readiness {
        let clock = &self.inner.clock;
        let mut ev = ReadinessEvidence {
            tenant,
            checked_at: clock.now(),
            token_tenant: None,
            app_id: None,
            service_principal_id: None,
            roles: Vec::new(),
            wids: Vec::new(),
            probe_status: None,
            probe_attempts: 0,
            token_requests: 0,
        };
        let done = |state, reason, ev: ReadinessEvidence| Readiness {
            state,
            reason,
            evidence: ev,
        };
        self.inner.tokens.invalidate(tenant);
        let limits = self.inner.limits.clone();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            ev.token_requests += 1;
            let token = match self
                .inner
                .tokens
                .force_refresh(tenant, Resource::Exchange)
                .await
            {
                Ok(t) => t,
                Err(e) => {
                    let (state, reason) = match e {
                        TokenError::TenantNotFound { code } => (
                            ReadinessState::TenantNotFound,
                            ReadinessReason::TenantNotFound { code },
                        ),
                        TokenError::AppNotInTenant => (
                            ReadinessState::NotConfigured,
                            ReadinessReason::AppNotConsented,
                        ),
                        TokenError::CredentialsRejected { code } => (
                            ReadinessState::AppCredentialsInvalid,
                            ReadinessReason::CredentialsRejected { code },
                        ),
                        error => (
                            ReadinessState::CheckFailed,
                            ReadinessReason::TokenFailed { error },
                        ),
                    };
                    if state != ReadinessState::CheckFailed {
                        self.inner.role_seen_since.lock().remove(&tenant);
                    }
                    return done(state, reason, ev);
                }
            };
            let c = &token.claims;
            ev.token_tenant = c.tid.clone();
            ev.app_id = c.appid.clone();
            ev.service_principal_id = c.oid.clone();
            ev.roles = c.roles.clone();
            ev.wids = c.wids.clone();
            if !c.has_exchange_permission() {
                self.inner.role_seen_since.lock().remove(&tenant);
                return done(
                    ReadinessState::NotConfigured,
                    ReadinessReason::ExchangePermissionMissing,
                    ev,
                );
            }
            match c.role_class() {
                RoleClass::CanManage => {}
                class => {
                    self.inner.role_seen_since.lock().remove(&tenant);
                    let reason = if class == RoleClass::ReadOnly {
                        ReadinessReason::ReadOnlyRole
                    } else {
                        ReadinessReason::NoDirectoryRole
                    };
                    return done(ReadinessState::RoleMissing, reason, ev);
                }
            }
            ev.probe_attempts += 1;
            let probe = CmdletRequest::new("Get-OrganizationConfig").select(&["Identity", "Name"]);
            match self.invoke(tenant, &probe).await {
                Ok(_) => {
                    ev.probe_status = Some(200);
                    self.inner.role_seen_since.lock().remove(&tenant);
                    return done(ReadinessState::Configured, ReadinessReason::Ok, ev);
                }
                Err(ExchangeError::Unauthorized { .. }) => {
                    ev.probe_status = Some(401);
                    return done(
                        ReadinessState::NotConfigured,
                        ReadinessReason::ProbeUnauthorized,
                        ev,
                    );
                }
                Err(ExchangeError::Forbidden { .. }) => {
                    ev.probe_status = Some(403);
                    if attempt <= limits.readiness_probe_retries {
                        clock.sleep(backoff_delay(&limits, attempt, None)).await;
                        continue;
                    }
                    let now = clock.now();
                    let since = *self
                        .inner
                        .role_seen_since
                        .lock()
                        .entry(tenant)
                        .or_insert(now);
                    let window_ends = since + limits.role_propagation_window;
                    return if now < window_ends {
                        done(
                            ReadinessState::Propagating,
                            ReadinessReason::WaitingForRole { since, window_ends },
                            ev,
                        )
                    } else {
                        done(
                            ReadinessState::RoleMissing,
                            ReadinessReason::RoleRefused { since },
                            ev,
                        )
                    };
                }
                Err(e) => {
                    ev.probe_status = probe_status(&e);
                    return done(
                        ReadinessState::CheckFailed,
                        ReadinessReason::ProbeFailed { error: e },
                        ev,
                    );
                }
            }
        }
    }
}
