//! The core's `Microsoft` port over the real client (`exogate_exchange::M365Client`).
//!
//! This is the only place that turns the client's types into the core's: recipients into
//! `ResolvedIdentity`, readiness into `ExchangeAdminState`, client errors into `MsError`.

use async_trait::async_trait;
use exogate_core::action::{CanonicalAction, OperationKind, Permission, Presence};
use exogate_core::model::{
    ExchangeAdminState, IdentityInput, RecipientKind, ResolvedIdentity, TenantId,
};
use exogate_core::ports::{
    ApplyOutcome, MailboxDetails, Microsoft, MsError, PermissionEntry, StatusCheck,
    TenantOrganization,
};
use exogate_exchange::consent::ConnectionError;
use exogate_exchange::{
    EnsureOutcome, ExchangeError, Identity, M365Client, ReadinessState, Recipient, Right,
    TokenError, TrusteeResolution, VerifyOutcome,
};
use uuid::Uuid;

/// `Microsoft` backed by the real client.
#[derive(Clone, Debug)]
pub struct ExchangeAdapter {
    client: M365Client,
}

impl ExchangeAdapter {
    pub fn new(client: M365Client) -> Self {
        Self { client }
    }
}

fn tenant_uuid(tenant: TenantId) -> Uuid {
    tenant.as_uuid()
}

fn identity(value: &str) -> Result<Identity, MsError> {
    Identity::parse(value).map_err(|e| MsError::Rejected {
        code: "invalid_identity".to_owned(),
        message: e.to_string(),
    })
}

/// The identity to send for a frozen party: its object id when it has one (stable across
/// renames), its address otherwise.
fn frozen_identity(party: &ResolvedIdentity) -> Result<Identity, MsError> {
    if party.object_id.is_empty() {
        identity(&party.primary_address)
    } else {
        identity(&party.object_id)
    }
}

fn right(permission: Permission) -> Right {
    match permission {
        Permission::FullAccess => Right::FullAccess,
        Permission::SendAs => Right::SendAs,
        Permission::SendOnBehalf => Right::SendOnBehalf,
    }
}

fn kind(recipient: &Recipient) -> RecipientKind {
    let details = recipient
        .recipient_type_details
        .as_deref()
        .unwrap_or_default();
    let broad = recipient.recipient_type.as_deref().unwrap_or_default();
    match details {
        "UserMailbox" => RecipientKind::UserMailbox,
        "SharedMailbox" => RecipientKind::SharedMailbox,
        "RoomMailbox" => RecipientKind::RoomMailbox,
        "EquipmentMailbox" => RecipientKind::EquipmentMailbox,
        "MailUser" | "GuestMailUser" => RecipientKind::MailUser,
        d if d.contains("Group") || broad.contains("Group") => RecipientKind::Group,
        _ => RecipientKind::Other,
    }
}

/// A recipient as the core sees it.
pub fn resolved(recipient: &Recipient) -> ResolvedIdentity {
    let object_id = recipient
        .external_directory_object_id
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| recipient.guid.clone())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let primary_address = recipient
        .user_principal_name
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| recipient.primary_smtp_address.clone())
        .unwrap_or_else(|| recipient.identity.clone());
    let display_name = recipient
        .display_name
        .clone()
        .or_else(|| recipient.name.clone())
        .unwrap_or_else(|| primary_address.clone());
    ResolvedIdentity {
        object_id,
        primary_address,
        display_name,
        kind: kind(recipient),
    }
}

fn entry(
    trustee: String,
    kind: TrusteeResolution,
    recipient: Option<&Recipient>,
    rights: Vec<String>,
) -> PermissionEntry {
    let resolved = match kind {
        TrusteeResolution::User | TrusteeResolution::Group => recipient.map(resolved),
        TrusteeResolution::Orphan | TrusteeResolution::Unresolved => None,
    };
    PermissionEntry {
        trustee,
        resolved,
        access_rights: rights,
        inherited: false,
        deny: false,
    }
}

/// Maps a client error to what the core can do about it.
pub fn ms_error(e: ExchangeError) -> MsError {
    match e {
        ExchangeError::NotFound { message } => MsError::NotFound { identity: message },
        ExchangeError::Ambiguous { message } => MsError::Ambiguous {
            identity: message,
            candidates: 2,
        },
        ExchangeError::Forbidden { diagnostics } => MsError::NotConfigured {
            state: ExchangeAdminState::RoleMissing,
            detail: diagnostics.unwrap_or_else(|| "Exchange answered 403".to_owned()),
        },
        ExchangeError::Unauthorized { diagnostics } => MsError::NotConfigured {
            state: ExchangeAdminState::NotConfigured,
            detail: diagnostics.unwrap_or_else(|| "Exchange answered 401".to_owned()),
        },
        ExchangeError::Throttled {
            retry_after,
            message,
        } => MsError::Unavailable {
            detail: format!("throttled: {message}"),
            retry_after_secs: retry_after.map(|d| d.as_secs().max(1)),
        },
        ExchangeError::Transient { message, .. } => MsError::Unavailable {
            detail: message,
            retry_after_secs: None,
        },
        ExchangeError::IncompleteList { pages_read, reason } => MsError::Unavailable {
            detail: format!("incomplete list after {pages_read} page(s): {reason}"),
            retry_after_secs: None,
        },
        ExchangeError::Token(t) => token_error(t),
        ExchangeError::InvalidIdentity(e) => MsError::Rejected {
            code: "invalid_identity".to_owned(),
            message: e.to_string(),
        },
        ExchangeError::InvalidParameter { message } => MsError::Rejected {
            code: "invalid_parameter".to_owned(),
            message,
        },
        ExchangeError::Rejected {
            exception_type,
            message,
            ..
        } => MsError::Rejected {
            code: exception_type.unwrap_or_else(|| "rejected".to_owned()),
            message,
        },
        ExchangeError::Protocol(message) => MsError::Unavailable {
            detail: message,
            retry_after_secs: None,
        },
    }
}

fn token_error(e: TokenError) -> MsError {
    let detail = e.to_string();
    match e {
        TokenError::TenantNotFound { .. } => MsError::NotConfigured {
            state: ExchangeAdminState::TenantNotFound,
            detail,
        },
        TokenError::AppNotInTenant => MsError::NotConfigured {
            state: ExchangeAdminState::NotConfigured,
            detail,
        },
        TokenError::CredentialsRejected { .. } => MsError::NotConfigured {
            state: ExchangeAdminState::AppCredentialsInvalid,
            detail,
        },
        TokenError::Throttled { retry_after } => MsError::Unavailable {
            detail,
            retry_after_secs: retry_after.map(|d| d.as_secs().max(1)),
        },
        TokenError::Transient { .. } | TokenError::Other { .. } => MsError::Unavailable {
            detail,
            retry_after_secs: None,
        },
    }
}

fn state(s: ReadinessState) -> ExchangeAdminState {
    match s {
        ReadinessState::NotConfigured => ExchangeAdminState::NotConfigured,
        ReadinessState::RoleMissing => ExchangeAdminState::RoleMissing,
        ReadinessState::Propagating => ExchangeAdminState::Propagating,
        ReadinessState::Configured => ExchangeAdminState::Configured,
        ReadinessState::TenantNotFound => ExchangeAdminState::TenantNotFound,
        ReadinessState::AppCredentialsInvalid => ExchangeAdminState::AppCredentialsInvalid,
        ReadinessState::CheckFailed => ExchangeAdminState::CheckFailed,
    }
}

impl ExchangeAdapter {
    async fn recipients(
        &self,
        tenant: Uuid,
        action: &CanonicalAction,
    ) -> Result<(Recipient, Recipient), MsError> {
        let mailbox = self
            .client
            .resolve_recipient(tenant, &frozen_identity(&action.mailbox)?)
            .await
            .map_err(ms_error)?;
        let trustee = self
            .client
            .resolve_recipient(tenant, &frozen_identity(&action.trustee)?)
            .await
            .map_err(ms_error)?;
        Ok((mailbox, trustee))
    }
}

#[async_trait]
impl Microsoft for ExchangeAdapter {
    async fn check_status(&self, tenant: TenantId) -> Result<StatusCheck, MsError> {
        let readiness = self.client.check_readiness(tenant_uuid(tenant)).await;
        // Evidence is what proved the state: codes, statuses and role ids, never a secret.
        let evidence = serde_json::json!({
            "reason": readiness.reason,
            "roles": readiness.evidence.roles,
            "wids": readiness.evidence.wids,
            "probe_status": readiness.evidence.probe_status,
            "token_tenant": readiness.evidence.token_tenant,
        })
        .to_string();
        Ok(StatusCheck {
            state: state(readiness.state),
            evidence,
        })
    }

    async fn resolve(
        &self,
        tenant: TenantId,
        input: &IdentityInput,
    ) -> Result<ResolvedIdentity, MsError> {
        let recipient = self
            .client
            .resolve_recipient(tenant_uuid(tenant), &identity(input.as_str())?)
            .await
            .map_err(ms_error)?;
        Ok(resolved(&recipient))
    }

    async fn full_access_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError> {
        let holders = self
            .client
            .full_access_holders(tenant_uuid(tenant), &frozen_identity(mailbox)?)
            .await
            .map_err(ms_error)?;
        Ok(holders
            .into_iter()
            .map(|h| entry(h.trustee, h.kind, h.recipient.as_ref(), h.rights))
            .collect())
    }

    async fn send_as_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError> {
        let holders = self
            .client
            .send_as_holders(tenant_uuid(tenant), &frozen_identity(mailbox)?)
            .await
            .map_err(ms_error)?;
        Ok(holders
            .into_iter()
            .map(|h| {
                entry(
                    h.trustee,
                    h.kind,
                    h.recipient.as_ref(),
                    vec!["SendAs".to_owned()],
                )
            })
            .collect())
    }

    async fn mailbox_details(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<MailboxDetails, MsError> {
        let details = self
            .client
            .mailbox_details(tenant_uuid(tenant), &frozen_identity(mailbox)?)
            .await
            .map_err(ms_error)?;
        let send_on_behalf = details
            .send_on_behalf
            .iter()
            .map(|d| {
                entry(
                    d.raw.clone(),
                    d.kind,
                    d.recipient.as_ref(),
                    vec!["SendOnBehalf".to_owned()],
                )
            })
            .collect();
        let mut properties = vec![
            (
                "HiddenFromAddressListsEnabled".to_owned(),
                details.hidden_from_address_lists.to_string(),
            ),
            (
                "RecipientTypeDetails".to_owned(),
                details
                    .mailbox
                    .recipient_type_details
                    .clone()
                    .unwrap_or_default(),
            ),
        ];
        if let Some(smtp) = &details.mailbox.primary_smtp_address {
            properties.push(("PrimarySmtpAddress".to_owned(), smtp.clone()));
        }
        Ok(MailboxDetails {
            mailbox: resolved(&details.mailbox),
            email_addresses: details
                .mailbox
                .primary_smtp_address
                .iter()
                .cloned()
                .collect(),
            send_on_behalf,
            properties,
        })
    }

    async fn current_state(
        &self,
        tenant: TenantId,
        action: &CanonicalAction,
    ) -> Result<Presence, MsError> {
        let tenant = tenant_uuid(tenant);
        let (mailbox, trustee) = self.recipients(tenant, action).await?;
        let holds = self
            .client
            .holds(
                tenant,
                right(action.operation.permission),
                &mailbox,
                &trustee,
            )
            .await
            .map_err(ms_error)?;
        Ok(if holds {
            Presence::Present
        } else {
            Presence::Absent
        })
    }

    async fn apply(
        &self,
        tenant: TenantId,
        action: &CanonicalAction,
    ) -> Result<ApplyOutcome, MsError> {
        let change = exogate_exchange::delegation::Change {
            right: right(action.operation.permission),
            grant: action.operation.kind == OperationKind::Grant,
            mailbox: frozen_identity(&action.mailbox)?,
            trustee: frozen_identity(&action.trustee)?,
            automapping: action.options.automapping,
        };
        let report = self
            .client
            .ensure(tenant_uuid(tenant), &change)
            .await
            .map_err(ms_error)?;
        Ok(match report.outcome {
            EnsureOutcome::Changed => ApplyOutcome::Changed,
            EnsureOutcome::AlreadyInState => ApplyOutcome::AlreadyInState,
        })
    }

    async fn verify(&self, tenant: TenantId, action: &CanonicalAction) -> Result<bool, MsError> {
        let tenant = tenant_uuid(tenant);
        let (mailbox, trustee) = self.recipients(tenant, action).await?;
        let expect_present = action.operation.kind == OperationKind::Grant;
        let outcome = self
            .client
            .verify(
                tenant,
                right(action.operation.permission),
                &mailbox,
                &trustee,
                expect_present,
            )
            .await
            .map_err(ms_error)?;
        Ok(matches!(outcome, VerifyOutcome::Confirmed { .. }))
    }

    async fn verify_connection(&self, tenant: TenantId) -> Result<TenantOrganization, MsError> {
        let tenant = tenant_uuid(tenant);
        // Whatever was known about the tenant before this consent is stale now.
        self.client.forget_tenant(tenant);
        let org = self
            .client
            .verify_connection(tenant)
            .await
            .map_err(connection_error)?;
        Ok(TenantOrganization {
            display_name: org.display_name,
            default_domain: org.default_domain.or(org.initial_domain),
        })
    }
}

fn connection_error(e: ConnectionError) -> MsError {
    match e {
        ConnectionError::Token(t) => token_error(t),
        ConnectionError::WrongTenant { .. } => MsError::NotConfigured {
            state: ExchangeAdminState::WrongTenant,
            detail: e.to_string(),
        },
        ConnectionError::Graph { status, message } => MsError::Rejected {
            code: format!("graph_{status}"),
            message,
        },
        ConnectionError::Transient(detail) | ConnectionError::Protocol(detail) => {
            MsError::Unavailable {
                detail,
                retry_after_secs: None,
            }
        }
    }
}
