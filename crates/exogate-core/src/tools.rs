//! The tool catalogue (`docs/DOMAIN.md#tools`): names, descriptions, risk levels and approval
//! modes. Write tools are forced to `ApprovalMode::Always`, whatever the configuration asks for.

use std::collections::BTreeMap;

use crate::action::{Operation, OperationKind, Permission};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApprovalMode {
    None,
    Always,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ToolName {
    ListCompanies,
    ViewMailboxPermissions,
    ViewSendAsPermissions,
    ViewMailboxDetails,
    GrantFullAccess,
    GrantSendAs,
    GrantSendOnBehalf,
    RemoveFullAccess,
    RemoveSendAs,
    RemoveSendOnBehalf,
    GetApprovalStatus,
    /// The delegation inventory, reversed: every mailbox a user can open across the companies
    /// the caller is entitled to (read from exogate's inventory, not from Exchange).
    FindUserAccess,
    /// Offboarding: remove every right a user holds in a company, as one request. Not in
    /// [`ToolName::ALL`] (the MCP catalogue); parsed and specified like the others.
    OffboardUser,
}

impl ToolName {
    pub const ALL: [ToolName; 12] = [
        ToolName::ListCompanies,
        ToolName::ViewMailboxPermissions,
        ToolName::ViewSendAsPermissions,
        ToolName::ViewMailboxDetails,
        ToolName::GrantFullAccess,
        ToolName::GrantSendAs,
        ToolName::GrantSendOnBehalf,
        ToolName::RemoveFullAccess,
        ToolName::RemoveSendAs,
        ToolName::RemoveSendOnBehalf,
        ToolName::GetApprovalStatus,
        ToolName::FindUserAccess,
    ];
    /// The MCP name.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolName::ListCompanies => "list_companies",
            ToolName::ViewMailboxPermissions => "view_mailbox_permissions",
            ToolName::ViewSendAsPermissions => "view_send_as_permissions",
            ToolName::ViewMailboxDetails => "view_mailbox_details",
            ToolName::GrantFullAccess => "grant_full_access",
            ToolName::GrantSendAs => "grant_send_as",
            ToolName::GrantSendOnBehalf => "grant_send_on_behalf",
            ToolName::RemoveFullAccess => "remove_full_access",
            ToolName::RemoveSendAs => "remove_send_as",
            ToolName::RemoveSendOnBehalf => "remove_send_on_behalf",
            ToolName::GetApprovalStatus => "get_approval_status",
            ToolName::FindUserAccess => "find_user_access",
            ToolName::OffboardUser => "offboard_user",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .chain([ToolName::OffboardUser])
            .find(|t| t.as_str() == s)
    }
    /// The Exchange change this tool requests, if it is a write tool.
    pub fn operation(self) -> Option<Operation> {
        use OperationKind::{Grant, Remove};
        use Permission::{FullAccess, SendAs, SendOnBehalf};
        let (kind, permission) = match self {
            ToolName::GrantFullAccess => (Grant, FullAccess),
            ToolName::GrantSendAs => (Grant, SendAs),
            ToolName::GrantSendOnBehalf => (Grant, SendOnBehalf),
            ToolName::RemoveFullAccess => (Remove, FullAccess),
            ToolName::RemoveSendAs => (Remove, SendAs),
            ToolName::RemoveSendOnBehalf => (Remove, SendOnBehalf),
            _ => return None,
        };
        Some(Operation { kind, permission })
    }
    /// The tool for an operation (inverse of [`ToolName::operation`]).
    pub fn for_operation(op: Operation) -> ToolName {
        use OperationKind::{Grant, Remove};
        use Permission::{FullAccess, SendAs, SendOnBehalf};
        match (op.kind, op.permission) {
            (Grant, FullAccess) => ToolName::GrantFullAccess,
            (Grant, SendAs) => ToolName::GrantSendAs,
            (Grant, SendOnBehalf) => ToolName::GrantSendOnBehalf,
            (Remove, FullAccess) => ToolName::RemoveFullAccess,
            (Remove, SendAs) => ToolName::RemoveSendAs,
            (Remove, SendOnBehalf) => ToolName::RemoveSendOnBehalf,
        }
    }
    pub fn is_write(self) -> bool {
        self.operation().is_some() || self == ToolName::OffboardUser
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: ToolName,
    /// Human-readable name ("Grant Full Access").
    pub title: &'static str,
    pub description: &'static str,
    pub risk: RiskLevel,
    pub approval: ApprovalMode,
    /// For MCP annotations.
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
}

/// Per-tool overrides from the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolSettings {
    pub approval: BTreeMap<ToolName, ApprovalMode>,
    pub risk: BTreeMap<ToolName, RiskLevel>,
}

fn base(name: ToolName) -> ToolSpec {
    let (title, description) = match name {
        ToolName::ListCompanies => (
            "List Companies",
            "List the companies you are entitled to, with their Microsoft 365 connection and Exchange Admin status.",
        ),
        ToolName::ViewMailboxPermissions => (
            "View Mailbox Permissions",
            "List who holds Full Access on a mailbox.",
        ),
        ToolName::ViewSendAsPermissions => (
            "View Send As Permissions",
            "List who may Send As a mailbox.",
        ),
        ToolName::ViewMailboxDetails => (
            "View Mailbox Details",
            "Show a mailbox's details, including its Send on Behalf delegates.",
        ),
        ToolName::GrantFullAccess => (
            "Grant Full Access",
            "Request Full Access for a trustee on a mailbox (automapping defaults to true). Needs human approval.",
        ),
        ToolName::GrantSendAs => (
            "Grant Send As",
            "Request Send As for a trustee on a mailbox. Needs human approval.",
        ),
        ToolName::GrantSendOnBehalf => (
            "Grant Send on Behalf",
            "Request adding a trustee to a mailbox's Send on Behalf delegates (never replaces the list). Needs human approval.",
        ),
        ToolName::RemoveFullAccess => (
            "Remove Full Access",
            "Request removing a trustee's Full Access on a mailbox. Needs human approval.",
        ),
        ToolName::RemoveSendAs => (
            "Remove Send As",
            "Request removing a trustee's Send As on a mailbox. Needs human approval.",
        ),
        ToolName::RemoveSendOnBehalf => (
            "Remove Send on Behalf",
            "Request removing a trustee from a mailbox's Send on Behalf delegates. Needs human approval.",
        ),
        ToolName::GetApprovalStatus => (
            "Get Approval Status",
            "Show the state of an approval request and its result.",
        ),
        ToolName::FindUserAccess => (
            "Find User Access",
            "List every mailbox a user can open (Full Access, Send As, Send on Behalf) across the companies you are entitled to, from exogate's delegation inventory, with each company's as-of time.",
        ),
        ToolName::OffboardUser => (
            "Offboard User",
            "Request removing every Full Access, Send As and Send on Behalf right a user holds in a company, as one request. Needs human approval.",
        ),
    };
    let write = name.is_write();
    ToolSpec {
        name,
        title,
        description,
        risk: if write {
            RiskLevel::High
        } else {
            RiskLevel::Low
        },
        approval: if write {
            ApprovalMode::Always
        } else {
            ApprovalMode::None
        },
        read_only: !write,
        destructive: matches!(
            name,
            ToolName::RemoveFullAccess
                | ToolName::RemoveSendAs
                | ToolName::RemoveSendOnBehalf
                | ToolName::OffboardUser
        ),
        // Grants and removals converge: running one twice leaves the same state.
        idempotent: true,
    }
}

/// The catalogue with the configuration applied. Whatever `settings` says, a write tool's
/// approval is `Always` and its risk is at least `Medium`.
pub fn catalogue(settings: &ToolSettings) -> Vec<ToolSpec> {
    ToolName::ALL
        .into_iter()
        .map(|n| spec(n, settings))
        .collect()
}

/// One tool's spec with the configuration applied (see [`catalogue`]).
pub fn spec(name: ToolName, settings: &ToolSettings) -> ToolSpec {
    let mut s = base(name);
    if let Some(r) = settings.risk.get(&name) {
        s.risk = *r;
    }
    if let Some(a) = settings.approval.get(&name) {
        s.approval = *a;
    }
    if name.is_write() {
        s.approval = ApprovalMode::Always;
        s.risk = s.risk.max(RiskLevel::Medium);
    }
    s
}
