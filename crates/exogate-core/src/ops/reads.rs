//! Read tools: entitlement first, then the connection, then Microsoft. Each read is audited.

use serde_json::json;

use super::Ctx;
use super::companies::{connection, load_visible, ms_error};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{CoreError, Entity};
use crate::model::{Actor, CompanyId, IdentityInput, ResolvedIdentity, TenantId};
use crate::ports::{MailboxDetails, PermissionEntry};
use crate::tools::ToolName;

async fn prepare(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<(TenantId, ResolvedIdentity), CoreError> {
    let c = load_visible(ctx, actor, company).await?;
    let tenant = connection(&c)?.tenant_id;
    let mbx = ctx
        .ms
        .resolve(tenant, mailbox)
        .await
        .map_err(|e| ms_error(e, Entity::Mailbox))?;
    Ok((tenant, mbx))
}

async fn audit_read(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    tool: ToolName,
    mailbox: &ResolvedIdentity,
    count: usize,
) -> Result<(), CoreError> {
    let ev = NewAuditEvent::new(ctx.clock.now(), AuditKind::ReadTool, Some(actor))
        .company(company)
        .detail(
            json!({ "tool": tool.as_str(), "mailbox": mailbox.primary_address, "entries": count }),
        );
    ctx.store.append_audit(ev).await?;
    Ok(())
}

/// `view_mailbox_permissions`: who holds Full Access.
pub async fn view_mailbox_permissions(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<(ResolvedIdentity, Vec<PermissionEntry>), CoreError> {
    let (tenant, mbx) = prepare(ctx, actor, company, mailbox).await?;
    let list = ctx
        .ms
        .full_access_holders(tenant, &mbx)
        .await
        .map_err(|e| ms_error(e, Entity::Mailbox))?;
    audit_read(
        ctx,
        actor,
        company,
        ToolName::ViewMailboxPermissions,
        &mbx,
        list.len(),
    )
    .await?;
    Ok((mbx, list))
}

/// `view_send_as_permissions`: who may Send As.
pub async fn view_send_as_permissions(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<(ResolvedIdentity, Vec<PermissionEntry>), CoreError> {
    let (tenant, mbx) = prepare(ctx, actor, company, mailbox).await?;
    let list = ctx
        .ms
        .send_as_holders(tenant, &mbx)
        .await
        .map_err(|e| ms_error(e, Entity::Mailbox))?;
    audit_read(
        ctx,
        actor,
        company,
        ToolName::ViewSendAsPermissions,
        &mbx,
        list.len(),
    )
    .await?;
    Ok((mbx, list))
}

/// `view_mailbox_details`, including Send on Behalf delegates.
pub async fn view_mailbox_details(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<MailboxDetails, CoreError> {
    let (tenant, mbx) = prepare(ctx, actor, company, mailbox).await?;
    let d = ctx
        .ms
        .mailbox_details(tenant, &mbx)
        .await
        .map_err(|e| ms_error(e, Entity::Mailbox))?;
    audit_read(
        ctx,
        actor,
        company,
        ToolName::ViewMailboxDetails,
        &mbx,
        d.send_on_behalf.len(),
    )
    .await?;
    Ok(d)
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
