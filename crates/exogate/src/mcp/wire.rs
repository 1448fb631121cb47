//! What MCP tools take and return: serde + JSON Schema types (their doc comments are the output
//! schemas agents read). Outputs are built from the shared views ([`crate::views`]), so every
//! value, and every sanitized tenant string, is computed once for API, CLI and MCP alike; only
//! the agent's hints (`next`, `note`, the fixes worded for an agent) are MCP's own.

use exogate_core::action::{CanonicalAction, OperationKind, Presence};
use exogate_core::ops::inventory::CompanyInventory;
use exogate_core::policy::role_to_approve;
use exogate_core::ports::{MailboxDetails, PermissionEntry};
use exogate_core::request::{ApprovalRequest, RequestState};
use exogate_core::{Company, ExchangeAdminState, ResolvedIdentity};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::views::{
    ActionView, CompanyInventoryView, CompanyView, IdentityView, InventoryRowView,
    MailboxDetailsView, PermissionView, RequestView, ResultView, StatusView,
};

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A mailbox of one company.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxArgs {
    /// The company id, exactly as `list_companies` returns it in `companies[].id`.
    #[schemars(example = &"contoso")]
    pub company: String,
    /// The mailbox: its email address or UPN (best), its Entra object id, or its alias.
    #[schemars(example = &"sales@contoso.onmicrosoft.com", example = &"sales")]
    pub mailbox: String,
}

/// A grant or removal of a permission: who (trustee) gets or loses it on which mailbox.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeArgs {
    /// The company id, exactly as `list_companies` returns it in `companies[].id`.
    #[schemars(example = &"contoso")]
    pub company: String,
    /// The mailbox whose permission changes: email address or UPN (best), Entra object id, or alias.
    #[schemars(example = &"support@contoso.onmicrosoft.com", example = &"support")]
    pub mailbox: String,
    /// The user or group that gains or loses the permission: email address or UPN (best), Entra
    /// object id, or alias.
    #[schemars(example = &"carol@contoso.onmicrosoft.com", example = &"carol")]
    pub trustee: String,
    // (cli-requests)
    /// Optional: the PSA ticket the change belongs to, shown to the approver (at most 64
    /// letters, digits, spaces and `# - _ . / :`).
    #[serde(default)]
    #[schemars(example = &"#4711")]
    pub ticket: Option<String>,
}

/// A Full Access grant, with the Outlook automapping option.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantFullAccessArgs {
    /// The company id, exactly as `list_companies` returns it in `companies[].id`.
    #[schemars(example = &"contoso")]
    pub company: String,
    /// The mailbox to open up: email address or UPN (best), Entra object id, or alias.
    #[schemars(example = &"sales@contoso.onmicrosoft.com", example = &"sales")]
    pub mailbox: String,
    /// The user or group that gets Full Access: email address or UPN (best), Entra object id, or alias.
    #[schemars(example = &"bob@contoso.onmicrosoft.com", example = &"bob")]
    pub trustee: String,
    /// Whether Outlook adds the mailbox to the trustee's folder list by itself.
    #[serde(default = "yes")]
    #[schemars(example = true, example = false)]
    pub automapping: bool,
    /// How long the access lasts, e.g. `8h` or `7d`; exogate removes it then (the approval
    /// covers the end). Omit both `duration` and `until` for access that stays.
    #[serde(default)]
    #[schemars(example = &"8h", example = &"7d")]
    pub duration: Option<String>,
    /// When the access ends: RFC 3339 (`2026-12-10T17:00:00Z`) or a date (`2026-12-10`, midnight
    /// UTC). Not together with `duration`.
    #[serde(default)]
    #[schemars(example = &"2026-12-10")]
    pub until: Option<String>,
    // (cli-requests)
    /// Optional: the PSA ticket the change belongs to, shown to the approver (at most 64
    /// letters, digits, spaces and `# - _ . / :`).
    #[serde(default)]
    #[schemars(example = &"#4711")]
    pub ticket: Option<String>,
}

// (timed-grants)
/// A Send As or Send on Behalf grant, which may end by itself.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantArgs {
    /// The company id, exactly as `list_companies` returns it in `companies[].id`.
    #[schemars(example = &"contoso")]
    pub company: String,
    /// The mailbox whose permission changes: email address or UPN (best), Entra object id, or alias.
    #[schemars(example = &"support@contoso.onmicrosoft.com", example = &"support")]
    pub mailbox: String,
    /// The user or group that gains the permission: email address or UPN (best), Entra object
    /// id, or alias.
    #[schemars(example = &"carol@contoso.onmicrosoft.com", example = &"carol")]
    pub trustee: String,
    /// How long the access lasts, e.g. `8h` or `7d`; exogate removes it then (the approval
    /// covers the end). Omit both `duration` and `until` for access that stays.
    #[serde(default)]
    #[schemars(example = &"8h", example = &"7d")]
    pub duration: Option<String>,
    /// When the access ends: RFC 3339 (`2026-12-10T17:00:00Z`) or a date (`2026-12-10`, midnight
    /// UTC). Not together with `duration`.
    #[serde(default)]
    #[schemars(example = &"2026-12-10")]
    pub until: Option<String>,
    // (cli-requests)
    /// Optional: the PSA ticket the change belongs to, shown to the approver (at most 64
    /// letters, digits, spaces and `# - _ . / :`).
    #[serde(default)]
    #[schemars(example = &"#4711")]
    pub ticket: Option<String>,
}

impl From<GrantArgs> for WriteArgs {
    fn from(a: GrantArgs) -> Self {
        WriteArgs {
            company: a.company,
            mailbox: a.mailbox,
            trustee: a.trustee,
            automapping: None,
            duration: a.duration,
            until: a.until,
            ticket: a.ticket,
        }
    }
}

fn yes() -> bool {
    true
}

/// What every write tool takes, whichever its argument type.
pub struct WriteArgs {
    pub company: String,
    pub mailbox: String,
    pub trustee: String,
    /// Full Access grants only.
    pub automapping: Option<bool>,
    // (timed-grants)
    pub duration: Option<String>,
    pub until: Option<String>,
    // (cli-requests)
    pub ticket: Option<String>,
}

impl From<ChangeArgs> for WriteArgs {
    fn from(a: ChangeArgs) -> Self {
        WriteArgs {
            company: a.company,
            mailbox: a.mailbox,
            trustee: a.trustee,
            automapping: None,
            duration: None,
            until: None,
            // (cli-requests)
            ticket: a.ticket,
        }
    }
}

impl From<GrantFullAccessArgs> for WriteArgs {
    fn from(a: GrantFullAccessArgs) -> Self {
        WriteArgs {
            company: a.company,
            mailbox: a.mailbox,
            trustee: a.trustee,
            automapping: Some(a.automapping),
            duration: a.duration,
            until: a.until,
            // (cli-requests)
            ticket: a.ticket,
        }
    }
}

/// An approval request id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestIdArgs {
    /// The `request_id` a write tool returned (a UUID), or a unique prefix of at least 8 of its
    /// characters.
    #[schemars(example = &"0192f0c4-7d3e-7a51-8e2b-3c4d5e6f7a8b")]
    pub request_id: String,
}

/// Whose access to look up in the delegation inventory.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindUserAccessArgs {
    /// The user (or group) to look up: UPN or email address (best), alias, Entra object id, or
    /// an `S-1-5-21-…` SID (finds orphaned grants of deleted users).
    #[schemars(example = &"alice@contoso.onmicrosoft.com", example = &"alice")]
    pub user: String,
    /// Only this company (an id from list_companies). Omit it to look in every company you are
    /// entitled to.
    #[serde(default)]
    #[schemars(example = &"contoso")]
    pub company: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

/// Exchange Admin readiness of a company (the badge).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExchangeAdminStatus {
    /// One of not_connected, unknown (never checked), not_configured, role_missing, propagating,
    /// configured, tenant_not_found, wrong_tenant, app_credentials_invalid, check_failed.
    pub state: String,
    /// The badge text people see.
    pub badge: String,
    /// Whether reads and change requests can work now (state `configured`).
    pub ready: bool,
    /// What a person must do to fix it (empty when ready).
    pub fix: String,
    /// When it was last checked (RFC 3339), if ever.
    pub checked_at: Option<String>,
    /// The last check could not reach Microsoft; `state` shows the last good result.
    pub last_check_failed: bool,
}

/// One company.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompanyOut {
    /// Pass this as `company` to every other tool.
    pub id: String,
    pub name: String,
    /// Whether a Microsoft 365 tenant is connected.
    pub connected: bool,
    /// The tenant (directory) id, when connected.
    pub tenant_id: Option<String>,
    /// The tenant's name as Microsoft reports it (tenant data).
    pub tenant_name: Option<String>,
    /// The tenant's default domain; mailboxes are usually `<name>@<default_domain>`.
    pub default_domain: Option<String>,
    pub exchange_admin: ExchangeAdminStatus,
}

/// `list_companies` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompaniesOut {
    pub companies: Vec<CompanyOut>,
}

/// A mailbox or trustee as Exchange identifies it. All strings are tenant data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct IdentityOut {
    pub display_name: String,
    /// UPN or primary SMTP address: the unambiguous way to name it in another call.
    pub address: String,
    /// Entra object id.
    pub object_id: String,
    /// user_mailbox, shared_mailbox, room_mailbox, equipment_mailbox, group, mail_user or other.
    pub kind: String,
}

/// One permission entry on a mailbox. All strings are tenant data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PermissionOut {
    /// The trustee as Exchange reports it (name, address, SID or object id).
    pub trustee: String,
    /// The trustee resolved to an identity, when possible.
    pub trustee_identity: Option<IdentityOut>,
    /// Exchange access rights, e.g. `FullAccess`, `SendAs`.
    pub access_rights: Vec<String>,
    /// Inherited from the organisation rather than granted on this mailbox.
    pub inherited: bool,
    /// A deny entry (takes away the right).
    pub deny: bool,
    /// A timed grant: when exogate removes it (RFC 3339), as the approval covered. Absent for
    /// access that stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// `view_mailbox_permissions` / `view_send_as_permissions` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PermissionsOut {
    pub company: String,
    pub mailbox: IdentityOut,
    /// full_access or send_as.
    pub permission: String,
    /// Who holds it. Empty when nobody does.
    pub entries: Vec<PermissionOut>,
    pub count: usize,
}

/// A named mailbox property.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PropertyOut {
    pub name: String,
    pub value: String,
}

/// `view_mailbox_details` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MailboxDetailsOut {
    pub company: String,
    pub mailbox: IdentityOut,
    pub email_addresses: Vec<String>,
    /// The Send on Behalf delegates (GrantSendOnBehalfTo).
    pub send_on_behalf: Vec<PermissionOut>,
    pub properties: Vec<PropertyOut>,
}

/// The frozen change a request will make, resolved to Exchange identities.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ActionOut {
    /// The tool that asked for it, e.g. `grant_send_as`.
    pub operation: String,
    /// full_access, send_as or send_on_behalf.
    pub permission: String,
    /// grant or remove.
    pub kind: String,
    pub tenant_id: String,
    pub mailbox: IdentityOut,
    pub trustee: IdentityOut,
    /// Outlook automapping; only for Full Access grants.
    pub automapping: Option<bool>,
    /// One English line (tenant names inside are sanitized).
    pub summary: String,
    // (timed-grants)
    /// When a timed grant ends (RFC 3339): exogate removes the access then. The approval covers
    /// the grant and its end together. Absent for access that stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// What Exchange said when the request was made.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CurrentStateOut {
    /// Whether the trustee held the permission when the request was made: present or absent.
    pub presence: String,
    /// e.g. "Carol has no Send As on Support today".
    pub description: String,
    /// The request would change nothing: the trustee already is in the wanted state.
    pub already_in_wanted_state: bool,
}

/// A write tool's answer: a pending approval request. Nothing has changed in Exchange yet.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PendingApprovalOut {
    /// Always `pending_approval`.
    pub status: String,
    /// Pass it to `get_approval_status`.
    pub request_id: String,
    pub company: String,
    /// The canonical action a person will approve (and exactly what will run).
    pub action: ActionOut,
    pub current_state: CurrentStateOut,
    /// low, medium or high.
    pub risk: String,
    /// The role a person needs to approve it (manager or admin for high risk).
    pub required_role: String,
    /// Where a person approves or rejects it. Show this link to your user.
    pub approve_url: String,
    /// When it expires if nobody decides (RFC 3339).
    pub expires_at: String,
    /// SHA-256 of the canonical action.
    pub digest: String,
    /// True when you had already asked for exactly this change: this is that pending request.
    pub already_asked: bool,
    /// What to do next.
    pub next: String,
}

/// The decision a person took.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DecisionOut {
    pub approved: bool,
    /// The user who decided.
    pub by: String,
    pub at: String,
    pub reason: Option<String>,
}

/// What happened to one action when it ran.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OperationResultOut {
    pub summary: String,
    /// changed, already_in_state or failed.
    pub outcome: String,
    /// present / absent before the change, when read.
    pub before: Option<String>,
    /// present / absent after the change, when read back.
    pub after: Option<String>,
    /// The read-back confirmed the wanted state.
    pub verified: bool,
    /// Exchange's message (tenant data).
    pub message: String,
}

/// `get_approval_status` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApprovalStatusOut {
    pub request_id: String,
    /// pending, approved, executing, succeeded, already_in_state, failed, rejected, expired
    /// or cancelled.
    pub state: String,
    /// Whether the state will not change any more.
    pub finished: bool,
    pub company: String,
    pub tool: String,
    pub actions: Vec<ActionOut>,
    pub risk: String,
    pub required_role: String,
    /// The user on whose behalf it was asked.
    pub requested_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub decision: Option<DecisionOut>,
    /// Per action, once it ran.
    pub results: Vec<OperationResultOut>,
    /// The state read back from Exchange after running (present / absent), when verified.
    pub verified_after_state: Option<String>,
    pub finished_at: Option<String>,
    /// The last execution message (tenant data).
    pub message: Option<String>,
    pub approve_url: String,
    /// What to do next.
    pub next: String,
}

/// Who holds a right in the inventory. All strings are tenant data.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InventoryTrusteeOut {
    /// user, group, orphan (a deleted principal's SID) or unresolved.
    pub class: String,
    /// As Exchange printed it (UPN, name, object id or SID).
    pub raw: String,
    pub display_name: Option<String>,
    pub address: Option<String>,
    pub object_id: Option<String>,
    /// The SID when Exchange reported one.
    pub sid: Option<String>,
}

/// One mailbox the user can open.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AccessOut {
    pub mailbox: IdentityOut,
    /// full_access, send_as or send_on_behalf.
    pub right: String,
    /// direct (the looked-up identity itself holds it), group (the matching trustee is a group:
    /// its members hold it through the group) or orphan (the grant belongs to a deleted
    /// principal's SID).
    pub via: String,
    /// The trustee as the inventory holds it.
    pub trustee: InventoryTrusteeOut,
    // (timed-grants)
    /// When this right ends by itself (RFC 3339): a timed grant whose removal exogate has
    /// scheduled. Absent for access that stays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
}

/// One company's part of the answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompanyAccessOut {
    pub company: String,
    pub company_name: String,
    /// When the sweep behind this inventory finished (RFC 3339); null if never swept.
    pub as_of: Option<String>,
    /// fresh, stale, failed (the last sweep failed), running (a sweep is running) or never.
    pub freshness: String,
    /// The inventory is older than the staleness window (26 h).
    pub stale: bool,
    /// The latest sweep failed: rows are from the last good sweep, if any.
    pub failed: bool,
    /// What to tell the user about this company's data, if anything.
    pub warning: Option<String>,
    pub access: Vec<AccessOut>,
}

/// `find_user_access` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UserAccessOut {
    /// The identity that was looked up, as given (sanitized).
    pub user: String,
    /// Every company looked in, with its as-of time, even when it has no match.
    pub companies: Vec<CompanyAccessOut>,
    /// Total rows over all companies.
    pub count: usize,
    /// How to read the answer.
    pub note: String,
}

// ---------------------------------------------------------------------------------------------
// Conversions (from the shared views)
// ---------------------------------------------------------------------------------------------

impl From<&IdentityView> for IdentityOut {
    fn from(v: &IdentityView) -> Self {
        IdentityOut {
            display_name: v.display_name.clone(),
            address: v.address.clone(),
            object_id: v.object_id.clone(),
            kind: v.kind.clone(),
        }
    }
}

impl From<&PermissionView> for PermissionOut {
    fn from(v: &PermissionView) -> Self {
        PermissionOut {
            trustee: v.trustee.clone(),
            trustee_identity: v.resolved.as_ref().map(IdentityOut::from),
            access_rights: v.access_rights.clone(),
            inherited: v.inherited,
            deny: v.deny,
            ends_at: None,
        }
    }
}

impl From<&StatusView> for ExchangeAdminStatus {
    fn from(v: &StatusView) -> Self {
        // The fix worded for an agent, who cannot click: where a person does it.
        let fix = match v.state.as_str() {
            "not_connected" => {
                "Connect the company's Microsoft 365 tenant on its integrations page in exogate."
            }
            crate::views::NEVER_CHECKED => {
                "Open the company's integrations page in exogate and press Re-check."
            }
            _ if v.check_failed => ExchangeAdminState::CheckFailed.fix(),
            _ => &v.fix,
        };
        ExchangeAdminStatus {
            state: v.state.clone(),
            badge: v.badge.clone(),
            ready: v.ready(),
            fix: fix.to_owned(),
            checked_at: v.checked_at.clone(),
            last_check_failed: v.check_failed,
        }
    }
}

impl From<&CompanyView> for CompanyOut {
    fn from(v: &CompanyView) -> Self {
        CompanyOut {
            id: v.id.clone(),
            name: v.name.clone(),
            connected: v.connected,
            tenant_id: v.tenant_id.clone(),
            tenant_name: v.tenant_name.clone(),
            default_domain: v.default_domain.clone(),
            exchange_admin: (&v.status).into(),
        }
    }
}

pub fn company(c: &Company) -> CompanyOut {
    (&CompanyView::of(c)).into()
}

/// `ends` answers when an entry's right ends (a timed grant's scheduled removal), if it does.
pub fn permissions(
    company: &str,
    perm: &str,
    mbx: &ResolvedIdentity,
    list: &[PermissionEntry],
    ends: impl Fn(&PermissionEntry) -> Option<exogate_core::Timestamp>,
) -> PermissionsOut {
    PermissionsOut {
        company: company.to_owned(),
        mailbox: (&IdentityView::of(mbx)).into(),
        permission: perm.to_owned(),
        entries: list
            .iter()
            .map(|e| PermissionOut {
                ends_at: ends(e).map(|t| t.to_string()),
                ..(&PermissionView::of(e)).into()
            })
            .collect(),
        count: list.len(),
    }
}

pub fn details(company: &str, d: &MailboxDetails) -> MailboxDetailsOut {
    let v = MailboxDetailsView::of(d);
    MailboxDetailsOut {
        company: company.to_owned(),
        mailbox: (&v.mailbox).into(),
        email_addresses: v.email_addresses,
        send_on_behalf: v.send_on_behalf.iter().map(PermissionOut::from).collect(),
        properties: v
            .properties
            .into_iter()
            .map(|p| PropertyOut {
                name: p.name,
                value: p.value,
            })
            .collect(),
    }
}

/// The one-line summary without the current state (that is `current_state`), from the view's
/// sanitized addresses.
fn action_summary(v: &ActionView, a: &CanonicalAction) -> String {
    let prep = match a.operation.kind {
        OperationKind::Grant => "to",
        OperationKind::Remove => "from",
    };
    let am = match v.automapping {
        Some(true) => ", with automapping",
        Some(false) => ", without automapping",
        None => "",
    };
    let until = v
        .ends_at
        .as_deref()
        .map(|t| format!(", until {t}"))
        .unwrap_or_default();
    format!(
        "{} {prep} {} on {}{am}{until}",
        v.verb, v.trustee.address, v.mailbox.address
    )
}

fn action(v: &ActionView, a: &CanonicalAction) -> ActionOut {
    ActionOut {
        operation: v.operation.clone(),
        permission: a.operation.permission.as_str().to_owned(),
        kind: match a.operation.kind {
            OperationKind::Grant => "grant",
            OperationKind::Remove => "remove",
        }
        .to_owned(),
        tenant_id: a.tenant.to_string(),
        mailbox: (&v.mailbox).into(),
        trustee: (&v.trustee).into(),
        automapping: v.automapping,
        summary: action_summary(v, a),
        ends_at: v.ends_at.clone(),
    }
}

fn current_state(v: &ActionView, a: &CanonicalAction) -> CurrentStateOut {
    let who = &v.trustee.display_name;
    let what = &v.permission;
    let on = &v.mailbox.display_name;
    let description = match a.state_at_request {
        Presence::Present => format!("{who} has {what} on {on} today"),
        Presence::Absent => format!("{who} has no {what} on {on} today"),
    };
    CurrentStateOut {
        presence: v.state_at_request.clone(),
        description,
        already_in_wanted_state: a.is_no_op(),
    }
}

/// A write tool's answer for the request `req` (seen as `view`).
pub fn pending(
    view: &RequestView,
    req: &ApprovalRequest,
    approve_url: String,
    already_asked: bool,
) -> PendingApprovalOut {
    let (first_view, first) = (&view.actions[0], &req.actions[0]);
    let state = current_state(first_view, first);
    let mut next = String::new();
    if already_asked {
        next.push_str("You had already asked for exactly this change: this is that pending request; no new one was made. ");
    }
    next += &format!(
        "Nothing has changed yet. Show the user the approve_url: a person with the `{}` role must approve this request in exogate. Then call get_approval_status with request_id `{}` until `finished` is true.",
        view.role_needed, view.id
    );
    if state.already_in_wanted_state {
        next.push_str(
            " Note: Exchange already has the wanted state, so running it would change nothing.",
        );
    }
    PendingApprovalOut {
        status: "pending_approval".to_owned(),
        request_id: view.id.clone(),
        company: view.company.clone(),
        action: action(first_view, first),
        current_state: state,
        risk: view.risk.clone(),
        required_role: view.role_needed.clone(),
        approve_url,
        expires_at: view.expires_at.clone(),
        digest: view.digest.clone(),
        already_asked,
        next,
    }
}

fn result(action: &ActionView, a: &CanonicalAction, r: &ResultView) -> OperationResultOut {
    OperationResultOut {
        summary: action_summary(action, a),
        outcome: r.outcome.clone(),
        before: r.before.clone(),
        after: r.after.clone(),
        verified: r.verified,
        message: r.message.clone(),
    }
}

/// `get_approval_status` answer for the request `req` (seen as `view`).
pub fn status(view: &RequestView, req: &ApprovalRequest, approve_url: String) -> ApprovalStatusOut {
    let verified_after_state =
        if !view.results.is_empty() && view.results.iter().all(|r| r.verified) {
            view.results.last().and_then(|r| r.after.clone())
        } else {
            None
        };
    let next = match req.state {
        RequestState::Pending => format!(
            "Waiting for a person with the `{}` role to approve or reject it at approve_url. Call get_approval_status again later; do not ask again with a write tool.",
            role_to_approve(req.risk)
        ),
        RequestState::Approved | RequestState::Executing => {
            "Approved; exogate is running it in Exchange. Call get_approval_status again in a few seconds.".to_owned()
        }
        RequestState::Succeeded => {
            "Done: the change was made and read back from Exchange.".to_owned()
        }
        RequestState::AlreadyInState => {
            "Done: Exchange already had the wanted state; nothing was changed.".to_owned()
        }
        RequestState::Failed => {
            "It failed; see `message` and `results`. A person can look at it in exogate; ask again with a write tool only if the user wants to.".to_owned()
        }
        RequestState::Rejected => "A person rejected it; nothing was changed.".to_owned(),
        RequestState::Expired => {
            "Nobody decided in time; nothing was changed. Ask again with a write tool if it is still wanted.".to_owned()
        }
        RequestState::Cancelled => "It was cancelled; nothing was changed.".to_owned(),
    };
    let decision = match (&view.decision, &view.decided_by, &view.decided_at) {
        (Some(d), Some(by), Some(at)) => Some(DecisionOut {
            approved: d == "approved",
            by: by.clone(),
            at: at.clone(),
            reason: view.reason.clone(),
        }),
        _ => None,
    };
    ApprovalStatusOut {
        request_id: view.id.clone(),
        state: view.state.clone(),
        finished: req.state.is_terminal(),
        company: view.company.clone(),
        tool: view.tool.clone(),
        actions: view
            .actions
            .iter()
            .zip(&req.actions)
            .map(|(v, a)| action(v, a))
            .collect(),
        risk: view.risk.clone(),
        required_role: view.role_needed.clone(),
        requested_by: view.requester.clone(),
        created_at: view.created_at.clone(),
        expires_at: view.expires_at.clone(),
        decision,
        results: view
            .actions
            .iter()
            .zip(&req.actions)
            .zip(&view.results)
            .map(|((v, a), r)| result(v, a, r))
            .collect(),
        verified_after_state,
        finished_at: view.finished_at.clone(),
        message: view.message.clone(),
        approve_url,
        next,
    }
}

impl From<&InventoryRowView> for AccessOut {
    fn from(r: &InventoryRowView) -> Self {
        let t = &r.trustee;
        AccessOut {
            mailbox: (&r.mailbox).into(),
            right: r.right.to_owned(),
            via: r.via.to_owned(),
            trustee: InventoryTrusteeOut {
                class: t.class.to_owned(),
                raw: t.raw.clone(),
                display_name: t.display_name.clone(),
                address: t.address.clone(),
                object_id: t.object_id.clone(),
                sid: t.sid.clone(),
            },
            ends_at: r.ends_at.clone(),
        }
    }
}

/// The agent's advice for a company never swept.
const NEVER_SWEPT: &str = "never swept: nothing is known about this company yet; a person can press Sync now on exogate's Inventory page";

/// One company's inventory part.
pub fn company_access(c: &CompanyInventory) -> CompanyAccessOut {
    let v = CompanyInventoryView::of(c, NEVER_SWEPT);
    CompanyAccessOut {
        stale: v.freshness == "stale",
        failed: v.freshness == "failed",
        access: v.rows.iter().flatten().map(AccessOut::from).collect(),
        company: v.company,
        company_name: v.name,
        as_of: v.as_of,
        freshness: v.freshness.to_owned(),
        warning: v.warning,
    }
}

/// `find_user_access` answer.
pub fn user_access(user: &str, parts: &[CompanyInventory]) -> UserAccessOut {
    let companies: Vec<CompanyAccessOut> = parts.iter().map(company_access).collect();
    let count = companies.iter().map(|c| c.access.len()).sum();
    UserAccessOut {
        user: crate::views::shown(user),
        companies,
        count,
        note: "Read from exogate's delegation inventory, not live from Exchange: each company's data is as of its `as_of` time; when `stale` or `failed` is true, or `freshness` is not `fresh`, say so and suggest a person syncs the inventory in exogate (Inventory page, Sync now). `via: group` rows are rights the user holds through a mail-enabled group they are a member of (directly or through nested groups); `trustee` is that group, and removing the user's own rights does not remove them (a person removes the user from the group). To remove access, use the remove_* tools (each needs human approval).".to_owned(),
    }
}
