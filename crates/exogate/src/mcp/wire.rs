//! What MCP tools take and return: serde + JSON Schema types, built from core values. Every string
//! that came from a tenant goes through [`tenant_text`] here, and nowhere else builds output.

use exogate_core::action::{CanonicalAction, Presence};
use exogate_core::policy::role_to_approve;
use exogate_core::ports::{MailboxDetails, PermissionEntry};
use exogate_core::request::{ApprovalRequest, OperationResult, RequestState};
use exogate_core::{Company, ResolvedIdentity};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use exogate_core::text::{tenant_list, tenant_text};

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
}

impl From<ChangeArgs> for WriteArgs {
    fn from(a: ChangeArgs) -> Self {
        WriteArgs {
            company: a.company,
            mailbox: a.mailbox,
            trustee: a.trustee,
            automapping: None,
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
        }
    }
}

/// An approval request id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestIdArgs {
    /// The `request_id` a write tool returned (a UUID).
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
    /// One of not_configured, role_missing, propagating, configured, tenant_not_found,
    /// wrong_tenant, app_credentials_invalid, check_failed, never_checked.
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
// Conversions
// ---------------------------------------------------------------------------------------------

pub fn identity(id: &ResolvedIdentity) -> IdentityOut {
    IdentityOut {
        display_name: tenant_text(&id.display_name),
        address: tenant_text(&id.primary_address),
        object_id: tenant_text(&id.object_id),
        kind: id.kind.as_str().to_owned(),
    }
}

pub fn permission(e: &PermissionEntry) -> PermissionOut {
    PermissionOut {
        trustee: tenant_text(&e.trustee),
        trustee_identity: e.resolved.as_ref().map(identity),
        access_rights: tenant_list(&e.access_rights),
        inherited: e.inherited,
        deny: e.deny,
    }
}

pub fn exchange_status(c: &Company) -> ExchangeAdminStatus {
    match &c.exchange_status {
        Some(s) => {
            let shown = s.shown_state();
            ExchangeAdminStatus {
                state: shown.as_str().to_owned(),
                badge: shown.badge().to_owned(),
                ready: shown.allows_changes(),
                fix: if s.check_failed() {
                    exogate_core::ExchangeAdminState::CheckFailed
                        .fix()
                        .to_owned()
                } else {
                    shown.fix().to_owned()
                },
                checked_at: Some(s.checked_at.to_string()),
                last_check_failed: s.check_failed(),
            }
        }
        None if c.connection.is_none() => ExchangeAdminStatus {
            state: "not_connected".to_owned(),
            badge: "Not connected".to_owned(),
            ready: false,
            fix: "Connect the company's Microsoft 365 tenant on its integrations page in exogate."
                .to_owned(),
            checked_at: None,
            last_check_failed: false,
        },
        None => ExchangeAdminStatus {
            state: "never_checked".to_owned(),
            badge: "Not checked yet".to_owned(),
            ready: false,
            fix: "Open the company's integrations page in exogate and press Re-check.".to_owned(),
            checked_at: None,
            last_check_failed: false,
        },
    }
}

pub fn company(c: &Company) -> CompanyOut {
    CompanyOut {
        id: c.id.as_str().to_owned(),
        name: tenant_text(&c.name),
        connected: c.connection.is_some(),
        tenant_id: c.connection.as_ref().map(|x| x.tenant_id.to_string()),
        tenant_name: c.connection.as_ref().map(|x| tenant_text(&x.display_name)),
        default_domain: c
            .connection
            .as_ref()
            .map(|x| tenant_text(&x.default_domain)),
        exchange_admin: exchange_status(c),
    }
}

pub fn permissions(
    company: &str,
    perm: &str,
    mbx: &ResolvedIdentity,
    list: &[PermissionEntry],
) -> PermissionsOut {
    PermissionsOut {
        company: company.to_owned(),
        mailbox: identity(mbx),
        permission: perm.to_owned(),
        entries: list.iter().map(permission).collect(),
        count: list.len(),
    }
}

pub fn details(company: &str, d: &MailboxDetails) -> MailboxDetailsOut {
    MailboxDetailsOut {
        company: company.to_owned(),
        mailbox: identity(&d.mailbox),
        email_addresses: tenant_list(&d.email_addresses),
        send_on_behalf: d.send_on_behalf.iter().map(permission).collect(),
        properties: d
            .properties
            .iter()
            .map(|(n, v)| PropertyOut {
                name: tenant_text(n),
                value: tenant_text(v),
            })
            .collect(),
    }
}

/// The one-line summary, built from sanitized parts (the core's summary would carry raw names).
pub fn action_summary(a: &CanonicalAction) -> String {
    let trustee = tenant_text(&a.trustee.primary_address);
    let mailbox = tenant_text(&a.mailbox.primary_address);
    let prep = match a.operation.kind {
        exogate_core::action::OperationKind::Grant => "to",
        exogate_core::action::OperationKind::Remove => "from",
    };
    let am = match a.options.automapping {
        Some(true) => ", with automapping",
        Some(false) => ", without automapping",
        None => "",
    };
    format!("{} {prep} {trustee} on {mailbox}{am}", a.operation)
}

pub fn action(a: &CanonicalAction) -> ActionOut {
    ActionOut {
        operation: a.operation.as_str().to_owned(),
        permission: a.operation.permission.as_str().to_owned(),
        kind: match a.operation.kind {
            exogate_core::action::OperationKind::Grant => "grant",
            exogate_core::action::OperationKind::Remove => "remove",
        }
        .to_owned(),
        tenant_id: a.tenant.to_string(),
        mailbox: identity(&a.mailbox),
        trustee: identity(&a.trustee),
        automapping: a.options.automapping,
        summary: action_summary(a),
    }
}

pub fn current_state(a: &CanonicalAction) -> CurrentStateOut {
    let who = tenant_text(&a.trustee.display_name);
    let what = a.operation.permission.label();
    let on = tenant_text(&a.mailbox.display_name);
    let description = match a.state_at_request {
        Presence::Present => format!("{who} has {what} on {on} today"),
        Presence::Absent => format!("{who} has no {what} on {on} today"),
    };
    CurrentStateOut {
        presence: a.state_at_request.as_str().to_owned(),
        description,
        already_in_wanted_state: a.state_at_request == a.operation.desired(),
    }
}

pub fn pending(
    req: &ApprovalRequest,
    approve_url: String,
    already_asked: bool,
) -> PendingApprovalOut {
    let first = &req.actions[0];
    let state = current_state(first);
    let mut next = String::new();
    if already_asked {
        next.push_str("You had already asked for exactly this change: this is that pending request; no new one was made. ");
    }
    next += &format!(
        "Nothing has changed yet. Show the user the approve_url: a person with the `{}` role must approve this request in exogate. Then call get_approval_status with request_id `{}` until `finished` is true.",
        role_to_approve(req.risk),
        req.id
    );
    if state.already_in_wanted_state {
        next.push_str(
            " Note: Exchange already has the wanted state, so running it would change nothing.",
        );
    }
    PendingApprovalOut {
        status: "pending_approval".to_owned(),
        request_id: req.id.to_string(),
        company: req.company.as_str().to_owned(),
        action: action(first),
        current_state: state,
        risk: req.risk.as_str().to_owned(),
        required_role: role_to_approve(req.risk).as_str().to_owned(),
        approve_url,
        expires_at: req.expires_at.to_string(),
        digest: req.digest.clone(),
        already_asked,
        next,
    }
}

fn result(a: &CanonicalAction, r: &OperationResult) -> OperationResultOut {
    OperationResultOut {
        summary: action_summary(a),
        outcome: r.outcome.as_str().to_owned(),
        before: r.before.map(|p| p.as_str().to_owned()),
        after: r.after.map(|p| p.as_str().to_owned()),
        verified: r.verified,
        message: tenant_text(&r.message),
    }
}

pub fn status(req: &ApprovalRequest, approve_url: String) -> ApprovalStatusOut {
    let finished = req.state.is_terminal();
    let verified_after_state = if !req.results.is_empty() && req.results.iter().all(|r| r.verified)
    {
        req.results
            .last()
            .and_then(|r| r.after)
            .map(|p| p.as_str().to_owned())
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
    ApprovalStatusOut {
        request_id: req.id.to_string(),
        state: req.state.as_str().to_owned(),
        finished,
        company: req.company.as_str().to_owned(),
        tool: req.tool.as_str().to_owned(),
        actions: req.actions.iter().map(action).collect(),
        risk: req.risk.as_str().to_owned(),
        required_role: role_to_approve(req.risk).as_str().to_owned(),
        requested_by: req.requester.user_name.as_str().to_owned(),
        created_at: req.created_at.to_string(),
        expires_at: req.expires_at.to_string(),
        decision: req.decision.as_ref().map(|d| DecisionOut {
            approved: d.approved,
            by: d.by_name.as_str().to_owned(),
            at: d.at.to_string(),
            reason: d.reason.as_deref().map(tenant_text),
        }),
        results: req
            .actions
            .iter()
            .zip(req.results.iter())
            .map(|(a, r)| result(a, r))
            .collect(),
        verified_after_state,
        finished_at: req.finished_at.map(|t| t.to_string()),
        message: req.message.as_deref().map(tenant_text),
        approve_url,
        next,
    }
}

/// `via` of an inventory row: how the looked-up identity holds the right.
pub fn via(class: exogate_core::inventory::TrusteeClass) -> &'static str {
    use exogate_core::inventory::TrusteeClass;
    match class {
        TrusteeClass::User | TrusteeClass::Unresolved => "direct",
        TrusteeClass::Group => "group",
        TrusteeClass::Orphan => "orphan",
    }
}

fn access(r: &exogate_core::inventory::InventoryRow) -> AccessOut {
    let t = &r.trustee;
    let id = t.identity.as_ref();
    AccessOut {
        mailbox: identity(&r.mailbox),
        right: r.right.as_str().to_owned(),
        via: via(t.class).to_owned(),
        trustee: InventoryTrusteeOut {
            class: t.class.as_str().to_owned(),
            raw: tenant_text(&t.raw),
            display_name: id.map(|i| tenant_text(&i.display_name)),
            address: id.map(|i| tenant_text(&i.primary_address)),
            object_id: id.map(|i| tenant_text(&i.object_id)),
            sid: t.sid.as_deref().map(tenant_text),
        },
    }
}

/// One company's inventory part, sanitized.
pub fn company_access(c: &exogate_core::ops::inventory::CompanyInventory) -> CompanyAccessOut {
    use exogate_core::inventory::Freshness;
    CompanyAccessOut {
        company: c.company.as_str().to_owned(),
        company_name: tenant_text(&c.company_name),
        as_of: c
            .status
            .as_ref()
            .and_then(|s| s.as_of)
            .map(|t| t.to_string()),
        freshness: c.freshness.as_str().to_owned(),
        stale: c.freshness == Freshness::Stale,
        failed: c.freshness == Freshness::Failed,
        warning: if c.freshness == Freshness::Never {
            Some(
                "never swept: nothing is known about this company yet; a person can press Sync now on exogate's Inventory page"
                    .to_owned(),
            )
        } else {
            crate::inventory_view::warning(c).map(|w| tenant_text_long(&w))
        },
        access: c.rows.iter().map(access).collect(),
    }
}

/// Exogate's own sentence that may quote an Exchange error: hidden characters escaped, capped
/// at a few lines.
fn tenant_text_long(s: &str) -> String {
    exogate_core::text::capped(s, exogate_core::text::MESSAGE_MAX_CHARS)
}

/// `find_user_access` answer.
pub fn user_access(
    user: &str,
    parts: &[exogate_core::ops::inventory::CompanyInventory],
) -> UserAccessOut {
    let companies: Vec<CompanyAccessOut> = parts.iter().map(company_access).collect();
    let count = companies.iter().map(|c| c.access.len()).sum();
    UserAccessOut {
        user: tenant_text(user),
        companies,
        count,
        note: "Read from exogate's delegation inventory, not live from Exchange: each company's data is as of its `as_of` time; when `stale` or `failed` is true, or `freshness` is not `fresh`, say so and suggest a person syncs the inventory in exogate (Inventory page, Sync now). `via: group` rows are rights the user holds through a mail-enabled group they are a member of (directly or through nested groups); `trustee` is that group, and removing the user's own rights does not remove them (a person removes the user from the group). To remove access, use the remove_* tools (each needs human approval).".to_owned(),
    }
}
