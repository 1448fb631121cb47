//! The core's `Microsoft` port over the real client (`exogate_exchange::M365Client`).
//!
//! This is the only place that turns the client's types into the core's: recipients into
//! `ResolvedIdentity` (and, for the inventory sweep, `DirectoryEntry`), permission rows into
//! `ListedGrant`, readiness into `ExchangeAdminState`, client errors into `MsError`.

use async_trait::async_trait;
use exogate_core::action::{CanonicalAction, OperationKind, Permission, Presence};
use exogate_core::model::{
    ExchangeAdminState, IdentityInput, RecipientKind, ResolvedIdentity, TenantId,
};
use exogate_core::ports::{
    ApplyOutcome, DirectoryEntry, ListedGrant, ListedMailbox, MailboxDetails, Microsoft, MsError,
    Pages, PermissionEntry, ReadLimits, StatusCheck, TenantOrganization,
};
use exogate_exchange::batch::MAX_BATCH;
use exogate_exchange::consent::ConnectionError;
use exogate_exchange::delegation::{
    MailboxPermissionRow, MailboxRecord, PermissionHolder, RecipientPermissionRow,
};
use exogate_exchange::{
    EnsureOutcome, ExchangeError, Identity, M365Client, ReadinessState, Recipient, Right,
    TokenError, TrusteeResolution, VerifyOutcome,
};
use futures::StreamExt as _;
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

/// A recipient with every name Exchange may print for it: what it prints for a trustee or a
/// mailbox (object name, name, UPN, address, object id), then the alias and Exchange guid.
fn directory_entry(r: &Recipient) -> DirectoryEntry {
    let names = |list: [Option<&String>; 5]| -> Vec<String> {
        list.into_iter()
            .flatten()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect()
    };
    DirectoryEntry {
        identity: resolved(r),
        names: names([
            Some(&r.identity),
            r.name.as_ref(),
            r.user_principal_name.as_ref(),
            r.primary_smtp_address.as_ref(),
            r.external_directory_object_id.as_ref(),
        ]),
        weak_names: names([r.alias.as_ref(), r.guid.as_ref(), None, None, None])
            .into_iter()
            // (inventory-truth) Proxy addresses, without their `smtp:` prefix.
            .chain(r.email_addresses.iter().filter_map(|a| {
                a.split_once(':')
                    .filter(|(p, _)| p.eq_ignore_ascii_case("smtp"))
                    .map(|(_, a)| a.to_owned())
            }))
            .collect(),
    }
}

fn listed_mailbox(m: MailboxRecord) -> ListedMailbox {
    let entry = directory_entry(&m.recipient);
    let r = m.recipient;
    let handle = r
        .user_principal_name
        .or(r.primary_smtp_address)
        .unwrap_or_else(|| entry.identity.object_id.clone());
    ListedMailbox {
        entry,
        handle,
        send_on_behalf: m.grant_send_on_behalf_to,
    }
}

fn send_as_grant(r: RecipientPermissionRow) -> Option<ListedGrant> {
    r.is_explicit_send_as().then_some(ListedGrant {
        mailbox: r.identity,
        trustee: r.trustee,
        sid: r.trustee_sid,
    })
}

fn full_access_grant(r: MailboxPermissionRow) -> Option<ListedGrant> {
    r.is_explicit_full_access().then_some(ListedGrant {
        mailbox: r.identity,
        trustee: r.user,
        sid: r.user_sid,
    })
}

/// The holders of a right as permission entries; with `right`, each entry lists only that
/// right instead of its row's rights.
fn holder_entries(
    holders: Result<Vec<PermissionHolder>, ExchangeError>,
    right: Option<&str>,
) -> Result<Vec<PermissionEntry>, MsError> {
    Ok(holders
        .map_err(ms_error)?
        .into_iter()
        .map(|h| {
            let rights = right.map_or(h.rights, |r| vec![r.to_owned()]);
            entry(h.trustee, h.kind, h.recipient.as_ref(), rights)
        })
        .collect())
}

/// A client page stream as the port's pages, each row mapped by `map` (None: left out).
fn pages<T, U: 'static>(
    rows: exogate_exchange::delegation::RowPages<T>,
    map: fn(T) -> Option<U>,
) -> Pages<'static, U>
where
    T: Send + 'static,
{
    Box::pin(rows.map(move |page| {
        page.map(|rows| rows.into_iter().filter_map(map).collect())
            .map_err(ms_error)
    }))
}

/// Aborts a spawned read when the sweep that waits for it stops.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
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
        let t = &action.trustee;
        let trustee = if t.object_id.is_empty()
            && t.primary_address
                .starts_with(exogate_core::inventory::ORPHAN_SID_PREFIX)
        {
            // (inventory-truth) A deleted principal's SID: nothing to resolve; Exchange
            // prints and takes the SID itself.
            Recipient {
                identity: t.primary_address.clone(),
                ..Recipient::default()
            }
        } else {
            self.client
                .resolve_recipient(tenant, &frozen_identity(t)?)
                .await
                .map_err(ms_error)?
        };
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
        let mailbox = frozen_identity(mailbox)?;
        let holders = self
            .client
            .full_access_holders(tenant_uuid(tenant), &mailbox);
        holder_entries(holders.await, None)
    }

    async fn send_as_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError> {
        let mailbox = frozen_identity(mailbox)?;
        let holders = self.client.send_as_holders(tenant_uuid(tenant), &mailbox);
        holder_entries(holders.await, Some("SendAs"))
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
    fn read_limits(&self, _tenant: TenantId) -> ReadLimits {
        ReadLimits {
            batch: MAX_BATCH,
            in_flight: self.client.limits().per_tenant_concurrency.max(1),
        }
    }

    fn mailboxes(&self, tenant: TenantId) -> Pages<'static, ListedMailbox> {
        pages(self.client.mailbox_pages(tenant_uuid(tenant)), |m| {
            Some(listed_mailbox(m))
        })
    }

    /// Should Exchange refuse the list itself (not a throttle or an outage, which the sweep
    /// reports), no groups are listed: the sweep then looks them up like any other name.
    fn groups(&self, tenant: TenantId) -> Pages<'static, DirectoryEntry> {
        let tid = tenant_uuid(tenant);
        Box::pin(self.client.group_pages(tid).filter_map(move |page| {
            futures::future::ready(match page {
                Ok(rows) => Some(Ok(rows.iter().map(directory_entry).collect())),
                Err(
                    e @ (ExchangeError::InvalidParameter { .. }
                    | ExchangeError::NotFound { .. }
                    | ExchangeError::Ambiguous { .. }),
                ) => {
                    tracing::warn!(tenant = %tid, error = %e, "listing groups failed; looking them up one by one");
                    None
                }
                Err(e) => Some(Err(ms_error(e))),
            })
        }))
    }

    fn send_as_grants(&self, tenant: TenantId) -> Pages<'static, ListedGrant> {
        pages(
            self.client.recipient_permission_pages(tenant_uuid(tenant)),
            send_as_grant,
        )
    }

    async fn full_access_many(
        &self,
        tenant: TenantId,
        mailboxes: &[String],
    ) -> Vec<Result<Vec<ListedGrant>, MsError>> {
        let (client, ids) = (self.client.clone(), mailboxes.to_vec());
        let read = async move {
            let answers = client
                .mailbox_permissions_many(tenant_uuid(tenant), &ids)
                .await;
            answers
                .into_iter()
                .map(|a| a.map(|rows| rows.into_iter().filter_map(full_access_grant).collect()))
                .collect()
        };
        self.spawned(mailboxes.len(), read).await
    }

    async fn group_members_many(
        &self,
        tenant: TenantId,
        groups: &[String],
    ) -> Vec<Result<Vec<ResolvedIdentity>, MsError>> {
        let answers = self
            .client
            .group_members_many(tenant_uuid(tenant), groups)
            .await;
        answers
            .into_iter()
            .map(|a| {
                a.map(|list| list.iter().map(resolved).collect())
                    .map_err(ms_error)
            })
            .collect()
    }

    async fn resolve_many(
        &self,
        tenant: TenantId,
        values: &[String],
    ) -> Vec<Result<ResolvedIdentity, MsError>> {
        let answers = self
            .client
            .recipients_many(tenant_uuid(tenant), values)
            .await;
        answers
            .into_iter()
            .map(|a| a.map(|r| resolved(&r)).map_err(ms_error))
            .collect()
    }
}

impl ExchangeAdapter {
    /// Runs one batched read of `n` answers on a task of its own, so the batches the sweep
    /// keeps in flight are parsed on every core.
    async fn spawned<T: Send + 'static>(
        &self,
        n: usize,
        read: impl Future<Output = Vec<Result<T, ExchangeError>>> + Send + 'static,
    ) -> Vec<Result<T, MsError>> {
        let mut task = AbortOnDrop(tokio::spawn(read));
        match (&mut task.0).await {
            Ok(results) => results.into_iter().map(|r| r.map_err(ms_error)).collect(),
            Err(e) => (0..n)
                .map(|_| {
                    Err(MsError::Unavailable {
                        detail: format!("a read task failed: {e}"),
                        retry_after_secs: None,
                    })
                })
                .collect(),
        }
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
