//! Renderings of the delegation inventory for people and programs: CSV (spreadsheet-safe: cells
//! that a spreadsheet would run as a formula are prefixed with `'`) and plain text tables (its
//! JSON is a view, [`crate::views::CompanyInventoryView`]). Every rendering states each
//! company's "as of" time and warns about companies whose sweep failed, is running, is stale or
//! never ran.

use exogate_core::inventory::Freshness;
use exogate_core::ops::inventory::CompanyInventory;

/// What to warn about a company, if anything.
pub fn warning(c: &CompanyInventory) -> Option<String> {
    let err = c
        .status
        .as_ref()
        .and_then(|s| s.sweep_error.clone())
        .unwrap_or_default();
    let as_of = c.status.as_ref().and_then(|s| s.as_of);
    // What the rows shown are: the last good sweep's, or nothing yet.
    let shown = as_of.map_or_else(
        || "there is no earlier inventory".to_owned(),
        |t| format!("showing the inventory as of {t}"),
    );
    match c.freshness {
        Freshness::Fresh => None,
        Freshness::Stale => Some(format!(
            "stale: last swept {}",
            as_of.map_or_else(|| "never".to_owned(), |t| t.to_string())
        )),
        Freshness::Failed => Some(format!("the last sweep failed ({err}); {shown}")),
        Freshness::Running => Some(format!("a sweep is running; {shown}")),
        Freshness::Never => Some(format!(
            "{NOT_SWEPT}: run `exogate inventory sync --company {}`",
            c.company
        )),
    }
}

/// (inventory-truth) What a view says for a company whose inventory was never swept.
pub const NOT_SWEPT: &str = "unknown: not swept yet";

const CSV_HEADER: &str = "company,as_of,freshness,mailbox_object_id,mailbox_address,mailbox_display_name,mailbox_kind,right,trustee_class,trustee_raw,trustee_sid,trustee_object_id,trustee_address,trustee_display_name,via,searched_for";

/// A CSV cell: quoted when needed; text a spreadsheet would treat as a formula gets a `'`.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Every row of every company as CSV (with a header). Companies with a warning and no rows get
/// one line with empty row fields, so the export still shows them.
pub fn csv(parts: &[CompanyInventory]) -> String {
    csv_for(parts, None)
}

/// (inventory-truth) How a row's right is held, for the CSV's `via` column: `direct`, the
/// group it comes through (its address), or `orphan`.
pub fn via_label(r: &exogate_core::inventory::InventoryRow) -> String {
    match exogate_core::ops::inventory::held_via(r.trustee.class) {
        "group" => r.trustee.label().to_owned(),
        other => other.to_owned(),
    }
}

/// As [`csv`], naming the identity searched for on every line (`searched_for`).
pub fn csv_for(parts: &[CompanyInventory], searched: Option<&str>) -> String {
    let searched = searched.unwrap_or("");
    let mut out = csv_header();
    for c in parts {
        let head = csv_head(c);
        if c.rows.is_empty() {
            out.push_str(&csv_no_rows(c, &head, searched));
        }
        for r in &c.rows {
            out.push_str(&csv_row(&head, r, searched));
        }
    }
    out
}

// (scale2) The pieces of [`csv_for`], for an export written as its rows are read.

/// The CSV's first line.
pub fn csv_header() -> String {
    format!("{CSV_HEADER}\n")
}

/// The cells every line of a company starts with: company, as of, freshness.
pub fn csv_head(c: &CompanyInventory) -> [String; 3] {
    let as_of = c
        .status
        .as_ref()
        .and_then(|s| s.as_of)
        .map(|t| t.to_string())
        .unwrap_or_default();
    [
        c.company.as_str().to_owned(),
        as_of,
        c.freshness.as_str().to_owned(),
    ]
}

/// The line of a company that has no rows: one with empty row fields when it has a warning,
/// so the export still shows it; else nothing.
pub fn csv_no_rows(c: &CompanyInventory, head: &[String; 3], searched: &str) -> String {
    if !c.freshness.warns() {
        return String::new();
    }
    let mut cells: Vec<String> = head.iter().map(|s| csv_cell(s)).collect();
    cells.extend(std::iter::repeat_n(String::new(), 12));
    cells.push(csv_cell(searched));
    let mut line = cells.join(",");
    line.push('\n');
    line
}

/// One row's line.
pub fn csv_row(
    head: &[String; 3],
    r: &exogate_core::inventory::InventoryRow,
    searched: &str,
) -> String {
    let t = r.trustee.identity.as_ref();
    let via = via_label(r);
    let cells = [
        head[0].as_str(),
        &head[1],
        &head[2],
        &r.mailbox.object_id,
        &r.mailbox.primary_address,
        &r.mailbox.display_name,
        r.mailbox.kind.as_str(),
        r.right.as_str(),
        r.trustee.class.as_str(),
        &r.trustee.raw,
        r.trustee.sid.as_deref().unwrap_or(""),
        t.map_or("", |i| i.object_id.as_str()),
        t.map_or("", |i| i.primary_address.as_str()),
        t.map_or("", |i| i.display_name.as_str()),
        &via,
        searched,
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// A plain-text report: per company a heading with the "as of" time (and any warning), then a
/// table of mailbox, right and trustee. Times as people read them, from `now`.
pub fn text(parts: &[CompanyInventory], empty: &str, now: exogate_core::Timestamp) -> String {
    let mut out = String::new();
    for c in parts {
        let as_of = c
            .status
            .as_ref()
            .and_then(|s| s.as_of)
            .map_or_else(|| "never".to_owned(), |t| crate::local_time::cell(now, t));
        out.push_str(&format!(
            "{} ({}), as of {as_of}\n",
            c.company, c.company_name
        ));
        if let Some(w) = warning(c) {
            out.push_str(&format!("  WARNING: {w}\n"));
        }
        if c.rows.is_empty() {
            // (inventory-truth) Never swept: what it holds is unknown, not empty.
            let said = if c
                .status
                .as_ref()
                .is_some_and(|s| s.current_generation.is_some())
            {
                empty
            } else {
                NOT_SWEPT
            };
            out.push_str(&format!("  {said}\n"));
            continue;
        }
        let mut rows = vec![vec![
            "MAILBOX".to_owned(),
            "RIGHT".to_owned(),
            "TRUSTEE".to_owned(),
            "KIND".to_owned(),
            "VIA".to_owned(),
        ]];
        for r in &c.rows {
            rows.push(vec![
                r.mailbox.primary_address.clone(),
                r.right.label().to_owned(),
                exogate_core::text::capped(r.trustee.label(), 80),
                r.trustee.class.as_str().to_owned(),
                exogate_core::text::capped(&via_label(r), 80),
            ]);
        }
        for line in crate::table::table_lines(&rows) {
            out.push_str("  ");
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.trim_end().to_owned()
}
