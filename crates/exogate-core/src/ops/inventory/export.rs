//! (scale2) A company's export as a stream: what [`super::company_rows`] answers, with the rows
//! read as the caller writes them out ([`crate::ports::Store::inventory_rows_stream`]), so an
//! export of any size holds a bounded number of rows.

use std::pin::Pin;

use futures::{Stream, StreamExt as _};

use super::{Ctx, company_part};
use crate::error::CoreError;
use crate::inventory::InventoryRow;
use crate::model::{Actor, CompanyId};
use crate::ops::companies::load_visible;

use super::CompanyInventory;

/// The rows of an export, in [`crate::ports::Store::inventory_rows`]'s order; a failure
/// mid-way is the last item.
pub type ExportRows = Pin<Box<dyn Stream<Item = Result<InventoryRow, CoreError>> + Send>>;

/// Every row of one company, streamed: the company's part without rows (name, status,
/// freshness) and its rows. The same checks as [`super::company_rows`] (`company_not_found`,
/// `not_entitled`) come before any row is read.
pub async fn company_rows_stream(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
) -> Result<(CompanyInventory, ExportRows), CoreError> {
    let actor = crate::ops::refresh_actor(ctx, actor).await?;
    let company = load_visible(ctx, &actor, company).await?;
    let part = company_part(ctx, &company, Vec::new()).await?;
    let rows = ctx
        .store
        .inventory_rows_stream(&company.id)
        .map(|r| r.map_err(CoreError::from));
    Ok((part, Box::pin(rows)))
}
