//! (inventory-truth) What a person typed for a mailbox or a user, resolved against the
//! inventory's own directory (the names the last sweep saw: alias, addresses, proxy
//! addresses, object id, display name; see [`crate::inventory::directory_names`]), so the
//! inventory's answers never mistake "not found" or "not swept yet" for "nobody" or "nothing".

use crate::error::{ConflictReason, CoreError, Entity};
use crate::inventory::{InventoryRow, InventoryStatus};
use crate::model::{Company, IdentityInput, ResolvedIdentity};

use super::Ctx;

/// Whether the company has an inventory to answer from (a sweep finished once).
pub fn swept(status: Option<&InventoryStatus>) -> bool {
    status.is_some_and(|s| s.current_generation.is_some())
}

/// `not_swept_yet` for `company`.
pub fn not_swept(company: &Company) -> CoreError {
    CoreError::conflict(ConflictReason::NotSweptYet {
        company: company.name.clone(),
        id: company.id.to_string(),
    })
}

pub(crate) fn ambiguous(n: usize) -> CoreError {
    CoreError::conflict(ConflictReason::Ambiguous { candidates: n })
}

/// The mailbox `input` names in the company's inventory: one listed mailbox carrying that
/// name; else a mailbox of the inventory's rows with that address or object id (an inventory
/// swept before names were recorded). `mailbox_not_found` or `ambiguous_identity` otherwise.
pub async fn mailbox(
    ctx: Ctx<'_>,
    company: &Company,
    input: &IdentityInput,
) -> Result<ResolvedIdentity, CoreError> {
    let found: Vec<ResolvedIdentity> = ctx
        .store
        .inventory_lookup(&company.id, input.as_str())
        .await?
        .into_iter()
        .filter(|i| i.kind.is_mailbox())
        .collect();
    match found.len() {
        1 => Ok(found.into_iter().next().unwrap_or_else(|| unreachable!())),
        0 => ctx
            .store
            .inventory_by_mailbox(&company.id, input.as_str())
            .await?
            .into_iter()
            .next()
            .map(|r| r.mailbox)
            .ok_or_else(|| CoreError::not_found_in(Entity::Mailbox, input.as_str(), &company.name)),
        n => Err(ambiguous(n)),
    }
}

/// The rows a user (or group, or orphaned SID) holds in the company, directly or through
/// groups: resolved by the directory when a listed recipient carries the name, else matched on
/// the rows' trustees and the groups' members. `None` when nothing in the company's inventory
/// knows the name; `ambiguous_identity` when several recipients carry it.
pub async fn user_rows(
    ctx: Ctx<'_>,
    company: &Company,
    input: &IdentityInput,
) -> Result<Option<Vec<InventoryRow>>, CoreError> {
    let found = ctx
        .store
        .inventory_lookup(&company.id, input.as_str())
        .await?;
    match found.as_slice() {
        [one] => Ok(Some(
            ctx.store
                .inventory_by_trustee(&company.id, &one.object_id)
                .await?,
        )),
        [] => {
            let rows = ctx
                .store
                .inventory_by_trustee(&company.id, input.as_str())
                .await?;
            Ok((!rows.is_empty()).then_some(rows))
        }
        many => Err(ambiguous(many.len())),
    }
}
