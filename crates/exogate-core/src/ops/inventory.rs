//! The delegation inventory's use-cases: who can open a mailbox, what a user can open across
//! every company the viewer is entitled to, the inventory status of each company, keeping the
//! inventory true after an executed write, and offboarding (one request removing every right a
//! user holds in a company), and the sweep that reads a tenant's delegation through the
//! [`crate::ports::Microsoft`] port into the store ([`sweep`]).

use serde_json::json;

use super::Ctx;
use super::companies::{connection, load, load_visible, ms_error};
use crate::action::{CanonicalAction, Operation, OperationKind, Presence};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{ConflictReason, CoreError, Entity};
use crate::inventory::{
    DEFAULT_STALE_SECS, Freshness, InventoryRow, InventoryStatus, InventoryTrustee, TrusteeClass,
};
use crate::model::{Actor, Company, CompanyId, IdentityInput, RequestId};
use crate::policy;
use crate::request::{ApprovalRequest, OpOutcome, RequestState};
use crate::tools::ToolName;

pub mod lookup;
pub mod sweep;
// (scale2)
pub mod export;

pub use sweep::{
    DEFAULT_LEASE, FA_CHUNK, Phase, Progress, ProgressFn, SweepError, SweepOptions, SweepReport,
    no_progress, sweep,
};

/// One company's part of a view: its inventory status and the rows that matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompanyInventory {
    pub company: CompanyId,
    pub company_name: String,
    pub status: Option<InventoryStatus>,
    pub freshness: Freshness,
    pub rows: Vec<InventoryRow>,
}

async fn company_part(
    ctx: Ctx<'_>,
    company: &Company,
    rows: Vec<InventoryRow>,
) -> Result<CompanyInventory, CoreError> {
    let status = ctx.store.inventory_status(&company.id).await?;
    let freshness = status.as_ref().map_or(Freshness::Never, |s| {
        s.freshness(ctx.clock.now(), DEFAULT_STALE_SECS)
    });
    Ok(CompanyInventory {
        company: company.id.clone(),
        company_name: company.name.clone(),
        status,
        freshness,
        rows,
    })
}

/// Who can open a mailbox (alias, address, proxy address, object id or display name when
/// unique), from the inventory of one company: `not_swept_yet` before its first sweep
/// finished, `mailbox_not_found` when its inventory knows no such mailbox.
pub async fn by_mailbox(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    mailbox: &IdentityInput,
) -> Result<CompanyInventory, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let company = load_visible(ctx, &actor, company).await?;
    if !lookup::swept(ctx.store.inventory_status(&company.id).await?.as_ref()) {
        return Err(lookup::not_swept(&company));
    }
    let found = lookup::mailbox(ctx, &company, mailbox).await?;
    let rows = ctx
        .store
        .inventory_by_mailbox(&company.id, &found.object_id)
        .await?;
    company_part(ctx, &company, rows).await
}

/// What a user (object id, address, proxy address, alias, display name when unique, or SID)
/// can open, in every connected company the actor is entitled to where the inventory knows
/// them. Rights held through a group the user is a member of (as the last sweep found it) are
/// listed with the group as trustee; deleted principals are listed as orphans; each company
/// carries its "as of" time and freshness. Companies never swept are listed (no rows:
/// unknown). Known nowhere: `user_not_found` (naming the companies never swept), or
/// `not_swept_yet` when no company was ever swept.
pub async fn by_user(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: &IdentityInput,
) -> Result<Vec<CompanyInventory>, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    // (scale) A fixed number of store statements however many companies: the companies, their
    // statuses, and the matches in all of them at once (see `Store::inventory_user_matches`).
    let companies: Vec<Company> = ctx
        .store
        .list_companies()
        .await?
        .into_iter()
        .filter(|c| policy::can_view(&actor.user, &c.id).is_ok() && c.connection.is_some())
        .collect();
    let ids: Vec<CompanyId> = companies.iter().map(|c| c.id.clone()).collect();
    let mut statuses: std::collections::HashMap<CompanyId, InventoryStatus> = ctx
        .store
        .inventory_statuses(&ids)
        .await?
        .into_iter()
        .map(|s| (s.company.clone(), s))
        .collect();
    let mut matches: std::collections::HashMap<CompanyId, crate::inventory::UserMatch> = ctx
        .store
        .inventory_user_matches(&ids, user.as_str())
        .await?
        .into_iter()
        .map(|m| (m.company.clone(), m))
        .collect();
    let now = ctx.clock.now();
    let part = |company: &Company, status: Option<InventoryStatus>, rows| {
        let freshness = status
            .as_ref()
            .map_or(Freshness::Never, |s| s.freshness(now, DEFAULT_STALE_SECS));
        CompanyInventory {
            company: company.id.clone(),
            company_name: company.name.clone(),
            status,
            freshness,
            rows,
        }
    };
    let mut out = Vec::new();
    let mut unswept = Vec::new();
    let mut searched = Vec::new();
    let mut found = false;
    for company in companies {
        let status = statuses.remove(&company.id);
        if !lookup::swept(status.as_ref()) {
            out.push(part(&company, status, Vec::new()));
            unswept.push(company);
            continue;
        }
        searched.push(company.name.clone());
        if let Some(m) = matches.remove(&company.id) {
            if m.names > 1 {
                return Err(lookup::ambiguous(m.names));
            }
            found = true;
            out.push(part(&company, status, m.rows));
        }
    }
    if found {
        return Ok(out);
    }
    if let (Some(first), true) = (unswept.first(), searched.is_empty()) {
        let mut e = lookup::not_swept(first);
        if let CoreError::Conflict {
            reason: ConflictReason::NotSweptYet { company, .. },
        } = &mut e
        {
            *company = unswept
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
        }
        return Err(e);
    }
    let mut within = if searched.is_empty() {
        "any of your companies".to_owned()
    } else {
        searched.join(", ")
    };
    if !unswept.is_empty() {
        let names: Vec<&str> = unswept.iter().map(|c| c.name.as_str()).collect();
        within.push_str(&format!(
            " (unknown in {}: not swept yet)",
            names.join(", ")
        ));
    }
    Err(CoreError::not_found_in(
        Entity::User,
        user.as_str(),
        &within,
    ))
}

/// As [`by_user`], in one company only (`company_not_connected` without a connection).
pub async fn by_user_in(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    user: &IdentityInput,
) -> Result<CompanyInventory, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let company = load_visible(ctx, &actor, company).await?;
    connection(&company)?;
    if !lookup::swept(ctx.store.inventory_status(&company.id).await?.as_ref()) {
        return Err(lookup::not_swept(&company));
    }
    let rows = lookup::user_rows(ctx, &company, user)
        .await?
        .ok_or_else(|| CoreError::not_found_in(Entity::User, user.as_str(), &company.name))?;
    company_part(ctx, &company, rows).await
}

/// Every row of one company (export).
pub async fn company_rows(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
) -> Result<CompanyInventory, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let company = load_visible(ctx, &actor, company).await?;
    let rows = ctx.store.inventory_rows(&company.id).await?;
    company_part(ctx, &company, rows).await
}

/// The inventory status of every connected company the actor is entitled to.
pub async fn statuses(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<CompanyInventory>, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let mut out = Vec::new();
    for company in ctx.store.list_companies().await? {
        if policy::can_view(&actor.user, &company.id).is_err() || company.connection.is_none() {
            continue;
        }
        out.push(company_part(ctx, &company, Vec::new()).await?);
    }
    Ok(out)
}

/// Checks the actor may start a sweep of `company` (technician or higher, entitled) and
/// returns the company with its tenant.
pub async fn authorize_sweep(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
) -> Result<(Company, crate::model::TenantId), CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    policy::can_request(&actor.user, company).map_err(CoreError::forbidden)?;
    let company = load(ctx, company).await?;
    let tenant = connection(&company)?.tenant_id;
    Ok((company, tenant))
}

/// Keeps the inventory true after the worker finished a request: every action whose result was
/// verified adds (grant) or removes (removal) its row. Returns how many rows were patched.
pub async fn patch_after_execution(ctx: Ctx<'_>, req: &ApprovalRequest) -> Result<u32, CoreError> {
    if !matches!(
        req.state,
        RequestState::Succeeded | RequestState::AlreadyInState | RequestState::Failed
    ) {
        return Ok(0);
    }
    let mut n = 0;
    for (action, result) in req.actions.iter().zip(&req.results) {
        if result.outcome == OpOutcome::Failed || !result.verified {
            continue;
        }
        let t = &action.trustee;
        let trustee = if t.object_id.is_empty()
            && t.primary_address
                .starts_with(crate::inventory::ORPHAN_SID_PREFIX)
        {
            // (inventory-truth) An orphaned SID removed: its row is keyed by the SID.
            InventoryTrustee {
                raw: t.primary_address.clone(),
                sid: Some(t.primary_address.clone()),
                class: TrusteeClass::Orphan,
                identity: None,
            }
        } else {
            InventoryTrustee::resolved(t.clone())
        };
        let row = InventoryRow {
            company: action.company.clone(),
            mailbox: action.mailbox.clone(),
            trustee,
            right: action.operation.permission,
        };
        let present = action.operation.desired() == Presence::Present;
        if ctx
            .store
            .inventory_patch_at(&row, present, ctx.clock.now())
            .await?
        {
            n += 1;
        }
    }
    Ok(n)
}

/// What offboarding asks for.
#[derive(Clone, Debug)]
pub struct OffboardInput {
    /// New request id (UUIDv7) chosen by the caller.
    pub id: RequestId,
    pub company: CompanyId,
    pub user: IdentityInput,
}

/// Creates ONE pending request that removes every Full Access, Send As and Send on Behalf right
/// the user holds directly in the company: the inventory lists the candidates, Exchange confirms
/// each one is present now, and the removals are frozen under one digest. Rights held through a
/// group are not the user's to remove and are left alone. Nothing changes in Exchange here.
pub async fn request_offboard(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: OffboardInput,
) -> Result<ApprovalRequest, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_request(&actor.user, &input.company).map_err(CoreError::forbidden)?;
    super::requests::check_pending_limit(ctx, actor).await?;
    let company = load(ctx, &input.company).await?;
    let tenant = connection(&company)?.tenant_id;
    let Some(status) = ctx.store.inventory_status(&company.id).await? else {
        return Err(CoreError::invalid(
            "company",
            format!(
                "`{}` has no delegation inventory yet: run `exogate inventory sync --company {}` first",
                company.id, company.id
            ),
        ));
    };
    if status.current_generation.is_none() {
        return Err(CoreError::invalid(
            "company",
            format!(
                "`{}` has no finished inventory sweep yet; wait for it or run `exogate inventory sync`",
                company.id
            ),
        ));
    }
    let trustee = ctx
        .ms
        .resolve(tenant, &input.user)
        .await
        .map_err(|e| ms_error(e, Entity::Trustee))?;
    let rows = ctx
        .store
        .inventory_by_trustee(&company.id, &trustee.object_id)
        .await?;
    let mut actions = Vec::new();
    let mut in_state = Vec::new();
    for row in rows {
        if !offboard_removes(&row)
            || row.trustee.key() != trustee.object_id.to_ascii_lowercase()
            || row.mailbox.object_id == trustee.object_id
        {
            continue;
        }
        let probe = CanonicalAction::new(
            company.id.clone(),
            tenant,
            Operation {
                kind: OperationKind::Remove,
                permission: row.right,
            },
            row.mailbox,
            trustee.clone(),
            None,
            Presence::Present,
        );
        let now = ctx
            .ms
            .current_state(tenant, &probe)
            .await
            .map_err(|e| ms_error(e, Entity::Mailbox))?;
        if now == Presence::Present {
            actions.push(probe);
        } else {
            in_state.push(
                CanonicalAction {
                    state_at_request: now,
                    ..probe.clone()
                }
                .in_state_phrase(),
            );
            // The inventory was behind Exchange: bring it up to date.
            let gone = InventoryRow {
                company: company.id.clone(),
                mailbox: probe.mailbox.clone(),
                trustee: InventoryTrustee::resolved(trustee.clone()),
                right: probe.operation.permission,
            };
            ctx.store.inventory_patch(&gone, false).await?;
        }
    }
    if actions.is_empty() && !in_state.is_empty() {
        // The inventory listed rights Exchange no longer has: nothing is left to remove.
        return Err(CoreError::conflict(ConflictReason::AlreadyInState {
            what: in_state.join("; "),
        }));
    }
    if actions.is_empty() {
        return Err(CoreError::invalid(
            "user",
            format!(
                "{} holds no Full Access, Send As or Send on Behalf in `{}` (inventory as of {})",
                trustee.primary_address,
                company.id,
                status
                    .as_of
                    .map_or_else(|| "never".to_owned(), |t| t.to_string())
            ),
        ));
    }
    let req = super::requests::pending_request(
        ctx,
        actor,
        input.id,
        company.id.clone(),
        tenant,
        ToolName::OffboardUser,
        actions,
    );
    let now = req.created_at;
    let ev = NewAuditEvent::new(now, AuditKind::RequestCreated, Some(actor))
        .company(&req.company)
        .request(req.id)
        .detail(json!({
            "tool": req.tool.as_str(), "risk": req.risk.as_str(), "digest": req.digest,
            "actions": crate::action::encode_actions(&req.actions), "summary": req.summary(),
            "expires_at": req.expires_at.unix_millis(), "offboard": trustee.primary_address,
        }));
    super::requests::insert_or_existing(ctx, req, ev).await
}

/// Whether offboarding removes `row`: a right the user holds directly (not through a group),
/// on a mailbox other than their own.
pub fn offboard_removes(row: &InventoryRow) -> bool {
    row.trustee.class == TrusteeClass::User
        && row.mailbox.object_id
            != row
                .trustee
                .identity
                .as_ref()
                .map_or("", |i| i.object_id.as_str())
}

/// What offboarding does with the rows a user can open in a company.
#[derive(Debug, Default)]
pub struct OffboardLists<'a> {
    /// Removed, all in one request (see [`offboard_removes`]).
    pub removable: Vec<&'a InventoryRow>,
    /// Kept: held through a group, so removing them is a membership change.
    pub through_groups: Vec<&'a InventoryRow>,
}

/// Sorts a user's rows into what offboarding removes and what it keeps because a group grants
/// it; other rows (their own mailbox, orphaned or unresolved trustees) are in neither list.
pub fn offboard_lists(rows: &[InventoryRow]) -> OffboardLists<'_> {
    let mut lists = OffboardLists::default();
    for row in rows {
        if offboard_removes(row) {
            lists.removable.push(row);
        } else if row.trustee.class == TrusteeClass::Group {
            lists.through_groups.push(row);
        }
    }
    lists
}

/// How the looked-up identity holds a right, as people are shown it: `direct` (it is the
/// trustee), `group` (through a group it is a member of) or `orphan` (the grant belongs to a
/// deleted principal's SID).
pub fn held_via(class: TrusteeClass) -> &'static str {
    match class {
        TrusteeClass::User | TrusteeClass::Unresolved => "direct",
        TrusteeClass::Group => "group",
        TrusteeClass::Orphan => "orphan",
    }
}
