//! An in-memory, recording [`Microsoft`] for tests and simulations of the domain (no I/O). It
//! keeps recipients and delegations per tenant, applies changes for real in its memory, and logs
//! every `apply` call so tests can check what reached "Microsoft". Knobs inject transient errors.
//! The faithful stand-in for real Microsoft is the `m365-emulator` crate; this is for unit-level
//! tests of the rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::action::{CanonicalAction, OperationKind, Permission, Presence};
use crate::model::{
    ExchangeAdminState, IdentityInput, IdentityInputKind, RecipientKind, ResolvedIdentity, TenantId,
};
use crate::ports::{
    ApplyOutcome, DirectoryEntry, ListedGrant, ListedMailbox, MailboxDetails, Microsoft, MsError,
    Pages, PermissionEntry, ReadLimits, StatusCheck, TenantOrganization,
};

/// Rows per page of the fake's lists: small, so a sweep of a few mailboxes reads several pages.
pub const FAKE_PAGE: usize = 2;

#[derive(Default)]
struct Tenant {
    state: Option<ExchangeAdminState>,
    recipients: Vec<ResolvedIdentity>,
    /// (permission, mailbox object id, trustee object id)
    grants: BTreeSet<(&'static str, String, String)>,
    /// Direct members (object ids) by group object id.
    members: BTreeMap<String, Vec<String>>,
}

impl Tenant {
    /// The recipient a value names: object id, address or display name (case-insensitive).
    fn find(&self, value: &str) -> Vec<&ResolvedIdentity> {
        self.recipients
            .iter()
            .filter(|r| {
                r.object_id.eq_ignore_ascii_case(value)
                    || r.primary_address.eq_ignore_ascii_case(value)
                    || r.display_name.eq_ignore_ascii_case(value)
            })
            .collect()
    }

    fn one(&self, value: &str) -> Result<&ResolvedIdentity, MsError> {
        match self.find(value).as_slice() {
            [one] => Ok(one),
            [] => Err(MsError::NotFound {
                identity: value.to_owned(),
            }),
            many => Err(MsError::Ambiguous {
                identity: value.to_owned(),
                candidates: many.len(),
            }),
        }
    }

    /// A trustee as Exchange prints it: the address of a recipient it knows, else the value
    /// stored (a SID of a deleted principal, say).
    fn printed(&self, trustee: &str) -> (String, Option<ResolvedIdentity>) {
        let resolved = self
            .recipients
            .iter()
            .find(|r| r.object_id == trustee)
            .cloned();
        let printed = resolved
            .as_ref()
            .map_or_else(|| trustee.to_owned(), |r| r.primary_address.clone());
        (printed, resolved)
    }

    /// The explicit grants of `permission` (mailbox object id, trustee as printed).
    fn grants_of(&self, permission: Permission) -> impl Iterator<Item = (&str, String)> + '_ {
        let key = perm_key(permission);
        self.grants
            .iter()
            .filter(move |(p, _, _)| *p == key)
            .map(|(_, m, t)| (m.as_str(), self.printed(t).0))
    }

    fn listed(&self, mailbox: &str, permission: Permission) -> Vec<ListedGrant> {
        self.grants_of(permission)
            .filter(|(m, _)| *m == mailbox)
            .map(|(m, trustee)| ListedGrant {
                mailbox: m.to_owned(),
                trustee,
                sid: None,
            })
            .collect()
    }

    fn is_mailbox(r: &ResolvedIdentity) -> bool {
        !matches!(
            r.kind,
            RecipientKind::Group | RecipientKind::MailUser | RecipientKind::Other
        )
    }
}

fn entry(r: &ResolvedIdentity) -> DirectoryEntry {
    DirectoryEntry {
        identity: r.clone(),
        names: vec![
            r.object_id.clone(),
            r.primary_address.clone(),
            r.display_name.clone(),
        ],
        weak_names: r
            .primary_address
            .split_once('@')
            .map(|(alias, _)| alias.to_owned())
            .into_iter()
            .collect(),
    }
}

/// `items` in pages of [`FAKE_PAGE`], or the one error.
fn pages<T: Send + 'static>(items: Result<Vec<T>, MsError>) -> Pages<'static, T> {
    let pages: Vec<Result<Vec<T>, MsError>> = match items {
        Ok(mut items) => {
            let mut pages = Vec::new();
            while !items.is_empty() {
                let rest = items.split_off(items.len().min(FAKE_PAGE));
                pages.push(Ok(std::mem::replace(&mut items, rest)));
            }
            pages
        }
        Err(e) => vec![Err(e)],
    };
    Box::pin(futures::stream::iter(pages))
}

/// One recorded `apply` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedCall {
    pub tenant: TenantId,
    pub action: CanonicalAction,
    pub outcome: ApplyOutcome,
}

#[derive(Default)]
struct Inner {
    tenants: BTreeMap<TenantId, Tenant>,
    applied: Vec<AppliedCall>,
    fail_next_apply: u32,
    fail_next_current_state: u32,
    calls: u64,
}

/// See the module docs.
#[derive(Default)]
pub struct FakeMicrosoft {
    inner: Mutex<Inner>,
}

fn perm_key(p: Permission) -> &'static str {
    p.as_str()
}

impl FakeMicrosoft {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a tenant in state `configured` with mailboxes `alice`, `bob`, `carol` (users) and
    /// `sales`, `support` (shared) at `domain`. Object ids are derived from the tenant id.
    pub fn add_demo_tenant(&self, tenant: TenantId, domain: &str) {
        let mut g = self.lock();
        let t = g.tenants.entry(tenant).or_default();
        t.state = Some(ExchangeAdminState::Configured);
        for (i, (name, kind)) in [
            ("alice", RecipientKind::UserMailbox),
            ("bob", RecipientKind::UserMailbox),
            ("carol", RecipientKind::UserMailbox),
            ("sales", RecipientKind::SharedMailbox),
            ("support", RecipientKind::SharedMailbox),
        ]
        .into_iter()
        .enumerate()
        {
            let tid = tenant.to_string();
            let object_id = format!("{}-{:012}", &tid[..23], i + 1);
            let mut display = name.to_owned();
            display[..1].make_ascii_uppercase();
            t.recipients.push(ResolvedIdentity {
                object_id,
                primary_address: format!("{name}@{domain}"),
                display_name: display,
                kind,
            });
        }
    }

    /// Adds a recipient (a mail user, a group, another mailbox) to a tenant.
    pub fn add_recipient(&self, tenant: TenantId, recipient: ResolvedIdentity) {
        self.lock()
            .tenants
            .entry(tenant)
            .or_default()
            .recipients
            .push(recipient);
    }

    /// Sets a group's direct members (object ids; a member may be a group itself).
    pub fn set_members(&self, tenant: TenantId, group: &str, members: &[String]) {
        self.lock()
            .tenants
            .entry(tenant)
            .or_default()
            .members
            .insert(group.to_owned(), members.to_vec());
    }

    /// Every recipient of a tenant.
    pub fn recipients(&self, tenant: TenantId) -> Vec<ResolvedIdentity> {
        self.lock()
            .tenants
            .get(&tenant)
            .map(|t| t.recipients.clone())
            .unwrap_or_default()
    }

    /// Every grant of a tenant: (permission, mailbox object id, trustee object id or SID).
    pub fn grants(&self, tenant: TenantId) -> Vec<(Permission, String, String)> {
        let g = self.lock();
        let Some(t) = g.tenants.get(&tenant) else {
            return Vec::new();
        };
        t.grants
            .iter()
            .filter_map(|(p, m, tr)| {
                [
                    Permission::FullAccess,
                    Permission::SendAs,
                    Permission::SendOnBehalf,
                ]
                .into_iter()
                .find(|x| x.as_str() == *p)
                .map(|p| (p, m.clone(), tr.clone()))
            })
            .collect()
    }

    pub fn set_state(&self, tenant: TenantId, state: ExchangeAdminState) {
        self.lock().tenants.entry(tenant).or_default().state = Some(state);
    }

    /// Makes the next `n` apply calls fail with a transient error (before changing anything).
    pub fn fail_next_applies(&self, n: u32) {
        self.lock().fail_next_apply = n;
    }

    /// Makes the next `n` current_state calls fail with a transient error.
    pub fn fail_next_current_states(&self, n: u32) {
        self.lock().fail_next_current_state = n;
    }

    /// Every apply call so far.
    pub fn applied(&self) -> Vec<AppliedCall> {
        self.lock().applied.clone()
    }

    /// Calls of any kind so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Whether `trustee` holds `permission` on `mailbox` (object ids).
    pub fn holds(
        &self,
        tenant: TenantId,
        permission: Permission,
        mailbox: &str,
        trustee: &str,
    ) -> bool {
        self.lock().tenants.get(&tenant).is_some_and(|t| {
            t.grants
                .contains(&(perm_key(permission), mailbox.to_owned(), trustee.to_owned()))
        })
    }

    /// Grants directly (as if done in Exchange outside exogate).
    pub fn grant_directly(
        &self,
        tenant: TenantId,
        permission: Permission,
        mailbox: &str,
        trustee: &str,
    ) {
        if let Some(t) = self.lock().tenants.get_mut(&tenant) {
            t.grants
                .insert((perm_key(permission), mailbox.to_owned(), trustee.to_owned()));
        }
    }

    /// Removes directly (as if done in Exchange outside exogate).
    pub fn remove_directly(
        &self,
        tenant: TenantId,
        permission: Permission,
        mailbox: &str,
        trustee: &str,
    ) {
        if let Some(t) = self.lock().tenants.get_mut(&tenant) {
            t.grants
                .remove(&(perm_key(permission), mailbox.to_owned(), trustee.to_owned()));
        }
    }

    fn ready(g: &mut Inner, tenant: TenantId) -> Result<&mut Tenant, MsError> {
        g.calls += 1;
        let t = g.tenants.get_mut(&tenant).ok_or(MsError::NotConfigured {
            state: ExchangeAdminState::TenantNotFound,
            detail: "AADSTS90002".to_owned(),
        })?;
        match t.state {
            Some(ExchangeAdminState::Configured) => Ok(t),
            Some(state) => Err(MsError::NotConfigured {
                state,
                detail: "fake".to_owned(),
            }),
            None => Err(MsError::NotConfigured {
                state: ExchangeAdminState::NotConfigured,
                detail: "fake".to_owned(),
            }),
        }
    }

    fn holders(
        &self,
        tenant: TenantId,
        permission: Permission,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError> {
        let mut g = self.lock();
        let t = Self::ready(&mut g, tenant)?;
        Ok(Self::entries(t, permission, mailbox))
    }

    /// Whether the action's trustee holds its permission on its mailbox.
    fn presence(t: &Tenant, action: &CanonicalAction) -> Presence {
        let key = (
            perm_key(action.operation.permission),
            action.mailbox.object_id.clone(),
            action.trustee.object_id.clone(),
        );
        if t.grants.contains(&key) {
            Presence::Present
        } else {
            Presence::Absent
        }
    }

    /// Runs `read` over a ready tenant, or gives every one of `n` answers the tenant's error.
    fn each<T>(
        &self,
        tenant: TenantId,
        values: &[String],
        read: impl Fn(&Tenant, &str) -> Result<T, MsError>,
    ) -> Vec<Result<T, MsError>> {
        let mut g = self.lock();
        match Self::ready(&mut g, tenant) {
            Ok(t) => values.iter().map(|v| read(t, v)).collect(),
            Err(e) => values.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// A list of a ready tenant, in pages.
    fn list<T: Send + 'static>(
        &self,
        tenant: TenantId,
        read: impl Fn(&Tenant) -> Vec<T>,
    ) -> Pages<'static, T> {
        let mut g = self.lock();
        pages(Self::ready(&mut g, tenant).map(|t| read(t)))
    }

    fn entries(
        t: &Tenant,
        permission: Permission,
        mailbox: &ResolvedIdentity,
    ) -> Vec<PermissionEntry> {
        let key = perm_key(permission);
        t.grants
            .iter()
            .filter(|(p, m, _)| *p == key && *m == mailbox.object_id)
            .map(|(_, _, tr)| {
                let (trustee, resolved) = t.printed(tr);
                PermissionEntry {
                    trustee,
                    resolved,
                    access_rights: vec![match permission {
                        Permission::FullAccess => "FullAccess".to_owned(),
                        Permission::SendAs => "SendAs".to_owned(),
                        Permission::SendOnBehalf => "GrantSendOnBehalfTo".to_owned(),
                    }],
                    inherited: false,
                    deny: false,
                }
            })
            .collect()
    }
}

#[async_trait]
impl Microsoft for FakeMicrosoft {
    async fn check_status(&self, tenant: TenantId) -> Result<StatusCheck, MsError> {
        let mut g = self.lock();
        g.calls += 1;
        let state = match g.tenants.get(&tenant) {
            None => ExchangeAdminState::TenantNotFound,
            Some(t) => t.state.unwrap_or(ExchangeAdminState::NotConfigured),
        };
        Ok(StatusCheck {
            state,
            evidence: format!("fake: {}", state.as_str()),
        })
    }

    async fn resolve(
        &self,
        tenant: TenantId,
        identity: &IdentityInput,
    ) -> Result<ResolvedIdentity, MsError> {
        let mut g = self.lock();
        let t = Self::ready(&mut g, tenant)?;
        let q = identity.as_str().to_ascii_lowercase();
        let found: Vec<&ResolvedIdentity> = t
            .recipients
            .iter()
            .filter(|r| match identity.kind() {
                IdentityInputKind::Guid => r.object_id == q,
                IdentityInputKind::Email => r.primary_address.eq_ignore_ascii_case(&q),
                IdentityInputKind::Alias => {
                    r.primary_address
                        .split('@')
                        .next()
                        .is_some_and(|a| a.eq_ignore_ascii_case(&q))
                        || r.display_name.eq_ignore_ascii_case(&q)
                }
            })
            .collect();
        match found.as_slice() {
            [] => Err(MsError::NotFound {
                identity: identity.to_string(),
            }),
            [one] => Ok((*one).clone()),
            many => Err(MsError::Ambiguous {
                identity: identity.to_string(),
                candidates: many.len(),
            }),
        }
    }

    async fn full_access_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError> {
        self.holders(tenant, Permission::FullAccess, mailbox)
    }

    async fn send_as_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError> {
        self.holders(tenant, Permission::SendAs, mailbox)
    }

    async fn mailbox_details(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<MailboxDetails, MsError> {
        let mut g = self.lock();
        let t = Self::ready(&mut g, tenant)?;
        Ok(MailboxDetails {
            mailbox: mailbox.clone(),
            email_addresses: vec![format!("SMTP:{}", mailbox.primary_address)],
            send_on_behalf: Self::entries(t, Permission::SendOnBehalf, mailbox),
            properties: vec![(
                "RecipientTypeDetails".to_owned(),
                mailbox.kind.as_str().to_owned(),
            )],
        })
    }

    async fn current_state(
        &self,
        tenant: TenantId,
        action: &CanonicalAction,
    ) -> Result<Presence, MsError> {
        let mut g = self.lock();
        if g.fail_next_current_state > 0 {
            g.fail_next_current_state -= 1;
            return Err(MsError::Unavailable {
                detail: "fake 503".to_owned(),
                retry_after_secs: Some(1),
            });
        }
        let t = Self::ready(&mut g, tenant)?;
        Ok(Self::presence(t, action))
    }

    async fn apply(
        &self,
        tenant: TenantId,
        action: &CanonicalAction,
    ) -> Result<ApplyOutcome, MsError> {
        let mut g = self.lock();
        if g.fail_next_apply > 0 {
            g.fail_next_apply -= 1;
            g.calls += 1;
            return Err(MsError::Unavailable {
                detail: "fake 503".to_owned(),
                retry_after_secs: Some(1),
            });
        }
        let t = Self::ready(&mut g, tenant)?;
        let key = (
            perm_key(action.operation.permission),
            action.mailbox.object_id.clone(),
            action.trustee.object_id.clone(),
        );
        let changed = match action.operation.kind {
            OperationKind::Grant => t.grants.insert(key),
            OperationKind::Remove => t.grants.remove(&key),
        };
        let outcome = if changed {
            ApplyOutcome::Changed
        } else {
            ApplyOutcome::AlreadyInState
        };
        g.applied.push(AppliedCall {
            tenant,
            action: action.clone(),
            outcome,
        });
        Ok(outcome)
    }

    async fn verify(&self, tenant: TenantId, action: &CanonicalAction) -> Result<bool, MsError> {
        let p = self.current_state(tenant, action).await?;
        Ok(p == action.operation.desired())
    }

    /// Any tenant the fake knows is verified, named after the domain of its first recipient.
    async fn verify_connection(&self, tenant: TenantId) -> Result<TenantOrganization, MsError> {
        let mut g = self.lock();
        g.calls += 1;
        let Some(t) = g.tenants.get(&tenant) else {
            return Err(MsError::NotConfigured {
                state: ExchangeAdminState::TenantNotFound,
                detail: format!("fake: no tenant {tenant}"),
            });
        };
        let domain = t
            .recipients
            .first()
            .and_then(|r| r.primary_address.split_once('@'))
            .map(|(_, d)| d.to_owned());
        Ok(TenantOrganization {
            display_name: format!("Tenant {tenant}"),
            default_domain: domain,
        })
    }
    fn read_limits(&self, _tenant: TenantId) -> ReadLimits {
        ReadLimits {
            batch: 3,
            in_flight: 2,
        }
    }

    /// Mailboxes with their Send on Behalf delegates (object ids, as Exchange may print them).
    fn mailboxes(&self, tenant: TenantId) -> Pages<'static, ListedMailbox> {
        self.list(tenant, |t| {
            t.recipients
                .iter()
                .filter(|r| Tenant::is_mailbox(r))
                .map(|r| ListedMailbox {
                    entry: entry(r),
                    handle: r.primary_address.clone(),
                    send_on_behalf: t
                        .grants
                        .iter()
                        .filter(|(p, m, _)| {
                            *p == perm_key(Permission::SendOnBehalf) && *m == r.object_id
                        })
                        .map(|(_, _, tr)| tr.clone())
                        .collect(),
                })
                .collect()
        })
    }

    fn groups(&self, tenant: TenantId) -> Pages<'static, DirectoryEntry> {
        self.list(tenant, |t| {
            t.recipients
                .iter()
                .filter(|r| r.kind == RecipientKind::Group)
                .map(entry)
                .collect()
        })
    }

    /// Send As grants, their mailbox by object id.
    fn send_as_grants(&self, tenant: TenantId) -> Pages<'static, ListedGrant> {
        self.list(tenant, |t| {
            t.grants_of(Permission::SendAs)
                .map(|(m, trustee)| ListedGrant {
                    mailbox: m.to_owned(),
                    trustee,
                    sid: None,
                })
                .collect()
        })
    }

    async fn full_access_many(
        &self,
        tenant: TenantId,
        mailboxes: &[String],
    ) -> Vec<Result<Vec<ListedGrant>, MsError>> {
        self.each(tenant, mailboxes, |t, m| {
            let mailbox = t.one(m)?;
            Ok(t.listed(&mailbox.object_id, Permission::FullAccess))
        })
    }

    async fn group_members_many(
        &self,
        tenant: TenantId,
        groups: &[String],
    ) -> Vec<Result<Vec<ResolvedIdentity>, MsError>> {
        self.each(tenant, groups, |t, g| {
            let group = t.one(g)?;
            let members = t.members.get(&group.object_id).ok_or(MsError::NotFound {
                identity: g.to_owned(),
            })?;
            Ok(members.iter().filter_map(|m| t.printed(m).1).collect())
        })
    }

    async fn resolve_many(
        &self,
        tenant: TenantId,
        values: &[String],
    ) -> Vec<Result<ResolvedIdentity, MsError>> {
        self.each(tenant, values, |t, v| t.one(v).cloned())
    }
}
