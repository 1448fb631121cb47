//! (scale2) A company's CSV export written as its rows are read: `GET
//! /api/v1/inventory/companies/{id}?format=csv` streams a chunked body built from
//! [`exogate_core::ops::inventory::export::company_rows_stream`], line by line with the same
//! functions as every other CSV ([`crate::inventory_view`]), so the bytes are those of
//! `inventory_view::csv` and the memory held does not grow with the company's size.
//!
//! A failure after the response started (the database gone mid-way, a row that does not
//! decode) ends the body with an error: the connection is cut before the chunked body's last
//! chunk, so the client sees a failed transfer, never a file that looks complete.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exogate_core::inventory::InventoryRow;
use exogate_core::ops::inventory::CompanyInventory;
use exogate_core::ops::inventory::export::ExportRows;
use futures::StreamExt as _;

use super::view;
use crate::inventory_view;

/// Rows written out together, at most (what is ready is taken, up to this many).
const ROWS_PER_WRITE: usize = 256;

struct Export {
    rows: futures::stream::ReadyChunks<ExportRows>,
    part: CompanyInventory,
    head: [String; 3],
    seen: bool,
    ended: bool,
}

/// The streamed CSV of one company's `part` (tenant text already as shown: `web::inventory`'s `shown_part`) and its `rows`.
pub fn csv_stream(name: &str, part: CompanyInventory, rows: ExportRows) -> Response {
    let head = inventory_view::csv_head(&part);
    let state = Export {
        rows: rows.ready_chunks(ROWS_PER_WRITE),
        part,
        head,
        seen: false,
        ended: false,
    };
    let lines = futures::stream::unfold(state, |mut st| async move {
        if st.ended {
            return None;
        }
        let Some(batch) = st.rows.next().await else {
            // No row at all: the company's line with empty row fields, as `csv` writes it.
            st.ended = true;
            return (!st.seen).then(|| {
                let line = inventory_view::csv_no_rows(&st.part, &st.head, "");
                (Ok(line), st)
            });
        };
        st.seen = true;
        let mut out = String::new();
        for row in batch {
            match row {
                Ok(mut r) => {
                    shown_row(&mut r);
                    out.push_str(&inventory_view::csv_row(&st.head, &r, ""));
                }
                Err(e) => {
                    tracing::error!(error = %e, company = %st.part.company, "inventory export failed mid-way");
                    st.ended = true;
                    return Some((
                        Err(std::io::Error::other("the inventory export failed")),
                        st,
                    ));
                }
            }
        }
        Some((Ok(out), st))
    });
    let header = futures::stream::once(async { Ok(inventory_view::csv_header()) });
    let body = Body::from_stream(header.chain(lines));
    csv_headers((StatusCode::OK, body).into_response(), name)
}

/// A row's tenant text as shown (what `web::inventory`'s `shown_part` does to each row).
pub(super) fn shown_row(r: &mut InventoryRow) {
    r.mailbox = view::shown_identity(&r.mailbox);
    r.trustee.raw = view::shown(&r.trustee.raw);
    r.trustee.sid = r.trustee.sid.as_deref().map(view::shown);
    r.trustee.identity = r.trustee.identity.as_ref().map(view::shown_identity);
}

/// A CSV download's content type and file name (`inventory-NAME.csv`).
pub(super) fn csv_headers(mut r: Response, name: &str) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let file: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"inventory-{file}.csv\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
