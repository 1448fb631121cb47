//! What a live mailbox read answers: permission entries and mailbox details.

use exogate_core::ports::{MailboxDetails, PermissionEntry};
use exogate_core::text::tenant_list;
use serde::Serialize;

use super::{IdentityView, shown};

/// One permission entry on a mailbox (Full Access, Send As or a Send on Behalf delegate).
#[derive(Clone, Debug, Serialize)]
pub struct PermissionView {
    /// The trustee as Exchange reports it (name, address, SID or object id), sanitized.
    pub trustee: String,
    /// The same as `trustee` (kept for clients that read this field).
    pub trustee_visible: String,
    /// The trustee resolved to an identity, when possible.
    pub resolved: Option<IdentityView>,
    /// Exchange access rights, e.g. `FullAccess`, `SendAs`.
    pub access_rights: Vec<String>,
    /// Inherited rather than granted on this mailbox.
    pub inherited: bool,
    /// A deny entry (takes the right away).
    pub deny: bool,
    /// `user`, `group`, `orphan` (a deleted principal's SID) or `unresolved`.
    pub kind: &'static str,
}

impl PermissionView {
    pub fn of(e: &PermissionEntry) -> Self {
        Self {
            trustee: shown(&e.trustee),
            trustee_visible: shown(&e.trustee),
            resolved: e.resolved.as_ref().map(IdentityView::of),
            access_rights: tenant_list(&e.access_rights),
            inherited: e.inherited,
            deny: e.deny,
            kind: exogate_core::ops::reads::trustee_class(e).as_str(),
        }
    }
}

/// A named mailbox property.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyView {
    pub name: String,
    pub value: String,
}

/// Whether Exchange hides the mailbox from the address lists (the GAL): the core's rule.
pub use exogate_core::ops::reads::hidden_from_address_lists;

/// A mailbox's addresses, Send on Behalf delegates and further properties.
#[derive(Clone, Debug, Serialize)]
pub struct MailboxDetailsView {
    pub mailbox: IdentityView,
    pub email_addresses: Vec<String>,
    /// Hidden from the address lists (the GAL).
    pub hidden_from_address_lists: bool,
    /// The Send on Behalf delegates (GrantSendOnBehalfTo).
    pub send_on_behalf: Vec<PermissionView>,
    pub properties: Vec<PropertyView>,
}

impl MailboxDetailsView {
    pub fn of(d: &MailboxDetails) -> Self {
        Self {
            mailbox: IdentityView::of(&d.mailbox),
            email_addresses: tenant_list(&d.email_addresses),
            hidden_from_address_lists: hidden_from_address_lists(d),
            send_on_behalf: d.send_on_behalf.iter().map(PermissionView::of).collect(),
            properties: d
                .properties
                .iter()
                .map(|(k, v)| PropertyView {
                    name: shown(k),
                    value: shown(v),
                })
                .collect(),
        }
    }
}
