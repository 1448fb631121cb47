//! Read tools: entitlement first, then the connection, then Microsoft. Each read is audited.

use serde_json::json;

use super::Ctx;
use super::companies::{connection, load_visible, ms_error, resolve_error};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{CoreError, Entity};
use crate::model::{Actor, CompanyId, IdentityInput, ResolvedIdentity, TenantId};
use crate::ports::{MailboxDetails, MsError, PermissionEntry};
use crate::tools::ToolName as Tool;

/// A read tool under way: the actor may see the company, it is connected, and the mailbox
/// is resolved in its tenant.
struct Read<'a> {
    ctx: Ctx<'a>,
    actor: &'a Actor,
    company: &'a CompanyId,
    tool: Tool,
    tenant: TenantId,
    mailbox: ResolvedIdentity,
}

/// Starts the read tool `tool`: entitlement first, then the connection, then the mailbox.
async fn begin<'a>(
    ctx: Ctx<'a>,
    actor: &'a Actor,
    company: &'a CompanyId,
    mailbox: &IdentityInput,
    tool: Tool,
) -> Result<Read<'a>, CoreError> {
    let c = load_visible(ctx, actor, company).await?;
    let tenant = connection(&c)?.tenant_id;
    let mailbox = ctx
        .ms
        .resolve(tenant, mailbox)
        .await
        .map_err(|e| resolve_error(e, Entity::Mailbox, mailbox.as_str(), &c))?;
    Ok(Read {
        ctx,
        actor,
        company,
        tool,
        tenant,
        mailbox,
    })
}

impl Read<'_> {
    /// Ends the read with what Microsoft answered: audited with the number of `entries` in it.
    async fn answer<T>(
        self,
        answer: Result<T, MsError>,
        entries: impl FnOnce(&T) -> usize,
    ) -> Result<(ResolvedIdentity, T), CoreError> {
        let answer = answer.map_err(|e| ms_error(e, Entity::Mailbox))?;
        let ev = NewAuditEvent::new(self.ctx.clock.now(), AuditKind::ReadTool, Some(self.actor))
            .company(self.company)
            .detail(json!({
                "tool": self.tool.as_str(),
                "mailbox": self.mailbox.primary_address,
                "entries": entries(&answer),
            }));
        self.ctx.store.append_audit(ev).await?;
        Ok((self.mailbox, answer))
    }
}

/// `view_mailbox_permissions`: who holds Full Access.
pub async fn view_mailbox_permissions(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<(ResolvedIdentity, Vec<PermissionEntry>), CoreError> {
    let read = begin(ctx, actor, company, mailbox, Tool::ViewMailboxPermissions).await?;
    let holders = ctx.ms.full_access_holders(read.tenant, &read.mailbox).await;
    read.answer(holders, Vec::len).await
}

/// `view_send_as_permissions`: who may Send As.
pub async fn view_send_as_permissions(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<(ResolvedIdentity, Vec<PermissionEntry>), CoreError> {
    let read = begin(ctx, actor, company, mailbox, Tool::ViewSendAsPermissions).await?;
    let holders = ctx.ms.send_as_holders(read.tenant, &read.mailbox).await;
    read.answer(holders, Vec::len).await
}

/// `view_mailbox_details`, including Send on Behalf delegates.
pub async fn view_mailbox_details(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<MailboxDetails, CoreError> {
    let read = begin(ctx, actor, company, mailbox, Tool::ViewMailboxDetails).await?;
    let details = ctx.ms.mailbox_details(read.tenant, &read.mailbox).await;
    let (_, details) = read.answer(details, |d| d.send_on_behalf.len()).await?;
    Ok(details)
}

/// Whether Exchange's properties say the mailbox is hidden from the address lists (a property
/// whose name mentions `hidden`, set to `true`).
pub fn hidden_from_address_lists(d: &MailboxDetails) -> bool {
    d.properties.iter().any(|(k, v)| {
        k.to_ascii_lowercase().contains("hidden") && v.trim().eq_ignore_ascii_case("true")
    })
}

/// What the trustee of a permission entry is, as people are shown it: a resolved group or user,
/// a bare `S-1-5-21-…` SID (an orphan: the principal was deleted), or a value that did not
/// resolve.
pub fn trustee_class(e: &PermissionEntry) -> crate::inventory::TrusteeClass {
    use crate::inventory::TrusteeClass;
    match &e.resolved {
        Some(r) if r.kind == crate::model::RecipientKind::Group => TrusteeClass::Group,
        Some(_) => TrusteeClass::User,
        None if e.trustee.starts_with("S-1-5-21-") => TrusteeClass::Orphan,
        None => TrusteeClass::Unresolved,
    }
}
