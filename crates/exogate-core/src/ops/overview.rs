//! (inventory-truth) One mailbox, one answer: Full Access, Send As and Send on Behalf read from
//! Exchange together (each read audited as its own read tool), each trustee with its kind
//! (user, group with its direct members' count, orphaned SID, unresolved).

use super::Ctx;
use super::companies::{connection, load_visible};
use crate::action::Permission;
use crate::error::CoreError;
use crate::inventory::TrusteeClass;
use crate::model::{Actor, CompanyId, IdentityInput, ResolvedIdentity};
use crate::ports::PermissionEntry;

/// One holder of one right on the mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldRight {
    pub right: Permission,
    pub entry: PermissionEntry,
    /// What the trustee is ([`super::reads::trustee_class`]).
    pub class: TrusteeClass,
    /// For a group: how many direct members Exchange lists (None when it did not say).
    pub members: Option<usize>,
    /// For Full Access: whether Outlook maps the mailbox automatically, when exogate knows it
    /// (its own latest executed change of this right for this trustee was a grant); Exchange
    /// does not say.
    pub automapping: Option<bool>,
}

/// Every right on one mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxOverview {
    pub mailbox: ResolvedIdentity,
    /// Full Access, then Send As, then Send on Behalf.
    pub rights: Vec<HeldRight>,
}

/// Reads Full Access, Send As and Send on Behalf of one mailbox, and the member count of each
/// group among the trustees.
pub async fn mailbox_overview(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<MailboxOverview, CoreError> {
    let (mbx, fa) = super::reads::view_mailbox_permissions(ctx, actor, company, mailbox).await?;
    // The rest by object id: the mailbox is resolved once.
    let by_id = IdentityInput::parse(&mbx.object_id).unwrap_or_else(|_| mailbox.clone());
    let (_, sa) = super::reads::view_send_as_permissions(ctx, actor, company, &by_id).await?;
    let details = super::reads::view_mailbox_details(ctx, actor, company, &by_id).await?;
    let mut rights: Vec<HeldRight> = [
        (Permission::FullAccess, fa),
        (Permission::SendAs, sa),
        (Permission::SendOnBehalf, details.send_on_behalf),
    ]
    .into_iter()
    .flat_map(|(right, entries)| {
        entries
            .into_iter()
            .filter(|e| !e.inherited)
            .map(move |entry| HeldRight {
                right,
                class: super::reads::trustee_class(&entry),
                entry,
                members: None,
                automapping: None,
            })
    })
    .collect();
    let groups: Vec<String> = rights
        .iter()
        .filter(|r| r.class == TrusteeClass::Group)
        .filter_map(|r| r.entry.resolved.as_ref().map(|g| g.primary_address.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !groups.is_empty() {
        let c = load_visible(ctx, actor, company).await?;
        let tenant = connection(&c)?.tenant_id;
        let counts = ctx.ms.group_members_many(tenant, &groups).await;
        for (group, count) in groups.iter().zip(counts) {
            let Ok(members) = count else { continue };
            for r in rights.iter_mut().filter(|r| {
                r.entry
                    .resolved
                    .as_ref()
                    .is_some_and(|g| &g.primary_address == group)
            }) {
                r.members = Some(members.len());
            }
        }
    }
    // Automapping, from exogate's own executed Full Access changes (newest first).
    let done = ctx
        .store
        .list_requests(&crate::request::RequestFilter {
            companies: Some(vec![company.clone()]),
            states: Some(vec![crate::request::RequestState::Succeeded]),
            requester: None,
            limit: Some(1000),
        })
        .await?;
    for r in rights
        .iter_mut()
        .filter(|r| r.right == Permission::FullAccess)
    {
        let Some(trustee) = r.entry.resolved.as_ref() else {
            continue;
        };
        let latest = done.iter().flat_map(|req| req.actions.iter()).find(|a| {
            a.operation.permission == Permission::FullAccess
                && a.mailbox.object_id.eq_ignore_ascii_case(&mbx.object_id)
                && a.trustee.object_id.eq_ignore_ascii_case(&trustee.object_id)
        });
        r.automapping = latest.and_then(|a| {
            (a.operation.kind == crate::action::OperationKind::Grant)
                .then_some(a.options.automapping)
                .flatten()
        });
    }
    Ok(MailboxOverview {
        mailbox: mbx,
        rights,
    })
}

/// The trustee of a removal named by an orphaned SID (`S-1-5-21-…`, a deleted principal):
/// accepted only when that SID holds `right` on `mailbox` now, as Exchange lists it; then it
/// stands for itself (no object id, the SID as its address). `trustee_not_found` otherwise.
pub(crate) async fn orphan_trustee(
    ctx: Ctx<'_>,
    tenant: crate::model::TenantId,
    mailbox: &ResolvedIdentity,
    right: Permission,
    sid: &str,
    company: &crate::model::Company,
) -> Result<ResolvedIdentity, CoreError> {
    use super::companies::ms_error;
    use crate::error::Entity;
    let entries = match right {
        Permission::FullAccess => ctx.ms.full_access_holders(tenant, mailbox).await,
        Permission::SendAs => ctx.ms.send_as_holders(tenant, mailbox).await,
        Permission::SendOnBehalf => ctx
            .ms
            .mailbox_details(tenant, mailbox)
            .await
            .map(|d| d.send_on_behalf),
    }
    .map_err(|e| ms_error(e, Entity::Mailbox))?;
    let sid = sid.trim();
    entries
        .into_iter()
        .find(|e| {
            !e.inherited
                && super::reads::trustee_class(e) == TrusteeClass::Orphan
                && e.trustee.trim().eq_ignore_ascii_case(sid)
        })
        .map(|e| ResolvedIdentity {
            object_id: String::new(),
            primary_address: e.trustee.trim().to_owned(),
            display_name: "orphaned SID (deleted principal)".to_owned(),
            kind: crate::model::RecipientKind::Other,
        })
        .ok_or_else(|| CoreError::not_found_in(Entity::Trustee, sid, &company.name))
}
