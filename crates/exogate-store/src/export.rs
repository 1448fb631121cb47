//! (scale2) A company's export read as it is written out: `Store::inventory_rows_stream`. One
//! statement (`fetch`, one snapshot) runs on a task of its own and hands rows over a bounded
//! channel, so the export holds at most [`BUFFER`] decoded rows (plus the driver's read buffer)
//! whatever the company's size; the consumer's pace holds the read back, and dropping the
//! stream ends the task at its next row (the statement's connection goes back to the pool).

use exogate_core::inventory::InventoryRow;
use exogate_core::model::CompanyId;
use exogate_core::ports::{RowStream, StoreResult};
use futures::{Stream, StreamExt as _};
use tokio::sync::mpsc;

use crate::rows::InventoryRowDb;
use crate::store::INV_ALL;
use crate::{Db, db_err};

/// Decoded rows waiting for the consumer, at most.
pub(crate) const BUFFER: usize = 256;

impl Db {
    pub(crate) fn rows_stream(&self, company: &CompanyId) -> RowStream {
        let (tx, rx) = mpsc::channel::<StoreResult<InventoryRow>>(BUFFER);
        let db = self.clone();
        let company = company.as_str().to_owned();
        tokio::spawn(async move {
            match &db {
                Db::Sqlite(p) => {
                    let rows = sqlx::query_as::<_, InventoryRowDb>(INV_ALL)
                        .bind(company)
                        .fetch(p);
                    forward(rows, &tx).await;
                }
                Db::Postgres(p) => {
                    let rows = sqlx::query_as::<_, InventoryRowDb>(INV_ALL)
                        .bind(company)
                        .fetch(p);
                    forward(rows, &tx).await;
                }
            }
        });
        Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        }))
    }
}

/// Decodes and hands over each row; a failure is sent as the last item. Returns when the rows
/// end, after a failure, or when the consumer is gone.
async fn forward(
    rows: impl Stream<Item = Result<InventoryRowDb, sqlx::Error>>,
    tx: &mpsc::Sender<StoreResult<InventoryRow>>,
) {
    let mut rows = std::pin::pin!(rows);
    while let Some(row) = rows.next().await {
        let row = row.map_err(db_err).and_then(InventoryRow::try_from);
        let failed = row.is_err();
        if tx.send(row).await.is_err() || failed {
            return;
        }
    }
}
