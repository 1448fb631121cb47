//! One view layer: the JSON shapes of exogate's values (identity, company with its Exchange
//! Admin status, permission entry, mailbox details, request with its actions and results, audit
//! event, user, token, inventory). Plain `Serialize` structs built from core types (core types do
//! not derive `Serialize`: the domain never becomes a wire format).
//!
//! The JSON API and the CLI's `--json` serialise these views, the pages render them, and MCP
//! builds its own schema types from them (`crate::mcp::wire`), so each value is computed once.
//! Every string that came from a tenant (display names, addresses, object ids, Exchange
//! messages, the tenant's display name and domain) goes through the core's one sanitizer
//! ([`exogate_core::text`]) here: hidden characters (controls, bidi, zero-width, tag
//! characters, U+2028/2029…) are written out as `<U+XXXX>` and long text is capped, so every
//! reader sees exactly what the bytes say.
//!
//! The free functions below give the CLI's `--json` its values.

mod audit;
mod company;
mod drift;
mod identity;
mod inventory;
mod mailbox;
mod request;
mod user;
// (notify)
pub mod notify;
// (reviews)
pub mod review;

use exogate_core::action::CanonicalAction;
use exogate_core::audit::AuditEvent;
use exogate_core::model::{ApiToken, Company, ResolvedIdentity, User};
use exogate_core::ops::inventory::CompanyInventory;
use exogate_core::ports::{MailboxDetails, PermissionEntry};
use exogate_core::request::ApprovalRequest;
use exogate_core::{Actor, CoreError, Timestamp, text};
use serde::Serialize;
use serde_json::Value;

pub use audit::{AuditEventView, audit_summary};
pub use company::{CompanyView, NEVER_CHECKED, StatusView};
pub use drift::{DriftAckView, DriftFindingView};
pub use identity::{IdentityView, MeView};
pub use inventory::{
    CompanyInventoryView, InventoryRowView, InventoryStatusView, InventoryTrusteeView, SweepView,
    inventory_warning, via,
};
pub use mailbox::{MailboxDetailsView, PermissionView, PropertyView, hidden_from_address_lists};
pub use request::{ActionView, RequestView, ResultView, request_for};
pub use user::{TokenView, UserView};

use crate::app::App;

/// Tenant text as shown everywhere: hidden characters escaped as `<U+XXXX>` and capped, by the
/// core's one sanitizer.
pub fn shown(s: &str) -> String {
    text::tenant_text(s)
}

/// One of exogate's own sentences that may quote tenant text (an Exchange error): hidden
/// characters escaped, capped at a few lines.
pub fn shown_message(s: &str) -> String {
    text::capped(s, text::MESSAGE_MAX_CHARS)
}

/// An identity with every tenant string sanitized.
pub fn shown_identity(i: &ResolvedIdentity) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: shown(&i.object_id),
        primary_address: shown(&i.primary_address),
        display_name: shown(&i.display_name),
        kind: i.kind,
    }
}

/// An action with its identities sanitized, so texts built from it (the summary) carry no raw
/// tenant text.
pub fn shown_action(a: &CanonicalAction) -> CanonicalAction {
    let mut a = a.clone();
    a.mailbox = shown_identity(&a.mailbox);
    a.trustee = shown_identity(&a.trustee);
    a
}

/// Every string in a JSON value sanitized like tenant text (audit details quote tenant names,
/// e.g. in a request's summary and encoded actions; the audit log itself keeps them whole).
pub fn shown_json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(shown(s)),
        Value::Array(a) => Value::Array(a.iter().map(shown_json).collect()),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (text::escape_hidden(k), shown_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Warnings about a tenant-sourced name shown to an approver.
pub fn name_warnings(what: &str, id: &ResolvedIdentity) -> Vec<String> {
    let mut w = Vec::new();
    let name = &id.display_name;
    if text::first_hidden(name).is_some() {
        w.push(format!(
            "The {what}'s display name contains invisible or bidi control characters (shown as <U+…>). Check the address and object id."
        ));
    }
    if name.chars().any(|c| !c.is_ascii() && c.is_alphabetic()) {
        w.push(format!(
            "The {what}'s display name contains non-Latin letters that may imitate others. Check the address and object id."
        ));
    }
    let len = name.chars().count();
    if len > text::MAX_CHARS {
        w.push(format!(
            "The {what}'s display name is {len} characters long; only the start is shown."
        ));
    }
    if name.contains('<') || name.contains('>') {
        w.push(format!(
            "The {what}'s display name contains markup characters."
        ));
    }
    w
}

/// A time as every view writes it (RFC 3339, milliseconds, UTC).
pub fn ts(t: Timestamp) -> String {
    t.to_string()
}

// ---------------------------------------------------------------------------------------------
// The CLI's `--json` values
// ---------------------------------------------------------------------------------------------

fn value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// What the `--json` inventory commands say about a company that was never swept.
pub const NEVER_SWEPT_CLI: &str = "unknown: not swept yet; run `exogate inventory sync`";

pub fn identity(i: &ResolvedIdentity) -> Value {
    value(IdentityView::of(i))
}

pub fn company(c: &Company) -> Value {
    value(CompanyView::of(c))
}

pub fn user(u: &User) -> Value {
    value(UserView::of(u))
}

pub fn token(t: &ApiToken) -> Value {
    value(TokenView::of(t))
}

pub fn permission(p: &PermissionEntry) -> Value {
    value(PermissionView::of(p))
}

pub fn mailbox_details(d: &MailboxDetails) -> Value {
    value(MailboxDetailsView::of(d))
}

pub fn audit(e: &AuditEvent) -> Value {
    value(AuditEventView::of(e))
}

/// One company's inventory part, with the CLI's advice for a company never swept.
pub fn inventory_company(c: &CompanyInventory) -> Value {
    value(CompanyInventoryView::of(c, NEVER_SWEPT_CLI))
}

pub fn inventory_row(r: &exogate_core::inventory::InventoryRow) -> Value {
    value(InventoryRowView::of(r))
}

/// A request as `actor` sees it now (what they may do with it included).
pub async fn request(app: &App, actor: &Actor, r: &ApprovalRequest) -> Result<Value, CoreError> {
    Ok(value(request_for(app, actor, r).await?))
}

/// Requests as `actor` sees them now.
pub async fn requests(
    app: &App,
    actor: &Actor,
    list: &[ApprovalRequest],
) -> Result<Value, CoreError> {
    let companies = app.store.list_companies().await?;
    let now = app.clock.now();
    Ok(value(
        list.iter()
            .map(|r| {
                let c = companies.iter().find(|c| c.id == r.company);
                RequestView::of(r, c, actor, now)
            })
            .collect::<Vec<_>>(),
    ))
}
