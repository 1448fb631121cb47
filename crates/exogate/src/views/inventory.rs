//! The delegation inventory: who holds which right on which mailbox, per company, with each
//! company's as-of time and sweep state.

use exogate_core::inventory::{Freshness, InventoryRow, InventoryStatus, TrusteeClass};
use exogate_core::ops::inventory::CompanyInventory;
use serde::Serialize;

use super::{IdentityView, shown, shown_message, ts};

/// How the looked-up identity holds a right: `direct`, `group` (through a group it is a member
/// of) or `orphan` (the grant belongs to a deleted principal's SID).
pub fn via(class: TrusteeClass) -> &'static str {
    exogate_core::ops::inventory::held_via(class)
}

/// What to warn about a company, if anything (sanitized); `never` is the advice for a company
/// that was never swept, worded for the reader (web, CLI or agent).
pub fn inventory_warning(c: &CompanyInventory, never: &str) -> Option<String> {
    if c.freshness == Freshness::Never {
        Some(never.to_owned())
    } else {
        crate::inventory_view::warning(c).map(|w| shown_message(&w))
    }
}

/// Who holds a right, as the inventory holds it. All strings are tenant text, sanitized.
#[derive(Clone, Debug, Serialize)]
pub struct InventoryTrusteeView {
    /// `user`, `group`, `orphan` (a deleted principal's SID) or `unresolved`.
    pub class: &'static str,
    /// As Exchange printed it (UPN, name, object id or SID).
    pub raw: String,
    /// The SID when Exchange reported one.
    pub sid: Option<String>,
    pub object_id: Option<String>,
    pub address: Option<String>,
    pub display_name: Option<String>,
    pub kind: Option<&'static str>,
}

/// One inventory row: a right on a mailbox and who holds it.
#[derive(Clone, Debug, Serialize)]
pub struct InventoryRowView {
    pub mailbox: IdentityView,
    /// `full_access`, `send_as` or `send_on_behalf`.
    pub right: &'static str,
    /// See [`via`].
    pub via: &'static str,
    pub trustee: InventoryTrusteeView,
    // (timed-grants)
    /// When a timed grant ends (RFC 3339): its removal is scheduled. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

impl InventoryRowView {
    pub fn of(r: &InventoryRow) -> Self {
        let t = &r.trustee;
        let id = t.identity.as_ref();
        Self {
            mailbox: IdentityView::of(&r.mailbox),
            right: r.right.as_str(),
            via: via(t.class),
            trustee: InventoryTrusteeView {
                class: t.class.as_str(),
                raw: shown(&t.raw),
                sid: t.sid.as_deref().map(shown),
                object_id: id.map(|i| shown(&i.object_id)),
                address: id.map(|i| shown(&i.primary_address)),
                display_name: id.map(|i| shown(&i.display_name)),
                kind: id.map(|i| i.kind.as_str()),
            },
            ends_at: None,
        }
    }
}

/// The latest sweep of a company.
#[derive(Clone, Debug, Serialize)]
pub struct SweepView {
    /// `running`, `ok` or `failed`.
    pub state: &'static str,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// Why it failed (sanitized).
    pub error: Option<String>,
}

/// A company's inventory state: the generation readers see and the latest sweep.
#[derive(Clone, Debug, Serialize)]
pub struct InventoryStatusView {
    pub generation: Option<i64>,
    pub as_of: Option<String>,
    pub mailboxes: u64,
    pub rows: u64,
    pub sweep: SweepView,
}

impl InventoryStatusView {
    pub fn of(s: &InventoryStatus) -> Self {
        Self {
            generation: s.current_generation,
            as_of: s.as_of.map(ts),
            mailboxes: s.mailboxes,
            rows: s.rows,
            sweep: SweepView {
                state: s.sweep_state.as_str(),
                started_at: ts(s.sweep_started_at),
                finished_at: s.sweep_finished_at.map(ts),
                error: s.sweep_error.as_deref().map(shown_message),
            },
        }
    }
}

/// One company's part of an inventory answer.
#[derive(Clone, Debug, Serialize)]
pub struct CompanyInventoryView {
    pub company: String,
    pub name: String,
    /// When the sweep behind the rows finished; null if never swept.
    pub as_of: Option<String>,
    /// `fresh`, `stale`, `failed`, `running` or `never`.
    pub freshness: &'static str,
    pub warning: Option<String>,
    pub status: Option<InventoryStatusView>,
    /// Left out where only the status is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<InventoryRowView>>,
}

impl CompanyInventoryView {
    /// `never` is the advice for a company never swept (see [`inventory_warning`]).
    pub fn of(c: &CompanyInventory, never: &str) -> Self {
        Self {
            rows: Some(c.rows.iter().map(InventoryRowView::of).collect()),
            ..Self::status_of(c, never)
        }
    }

    /// The company's state without its rows.
    pub fn status_of(c: &CompanyInventory, never: &str) -> Self {
        Self {
            company: c.company.as_str().to_owned(),
            name: shown(&c.company_name),
            as_of: c.status.as_ref().and_then(|s| s.as_of).map(ts),
            freshness: c.freshness.as_str(),
            warning: inventory_warning(c, never),
            status: c.status.as_ref().map(InventoryStatusView::of),
            rows: None,
        }
    }
}
