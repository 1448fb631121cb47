//! View models shared by the pages and the JSON API: plain `Serialize` structs built from core
//! types. Text that came from a tenant (display names) is also given in a *visible* form where
//! bidi controls, zero-width and other invisible or control characters are written out as
//! `\u{…}`, with warnings, so an approver sees exactly what the bytes say.

use exogate_core::action::{CanonicalAction, Presence};
use exogate_core::audit::AuditEvent;
use exogate_core::policy;
use exogate_core::request::{ApprovalRequest, RequestState};
use exogate_core::{Actor, Company, ExchangeAdminState, ResolvedIdentity, Timestamp};
use serde::Serialize;

/// Invisible formatting characters (bidi controls, zero-width, soft hyphen, BOM…).
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// `s` with every control and invisible character written as `\u{XXXX}` (visible, inert text).
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() || is_invisible(c) {
            out.push_str(&format!("\\u{{{:04X}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Warnings about a tenant-sourced name shown to an approver.
pub fn name_warnings(what: &str, id: &ResolvedIdentity) -> Vec<String> {
    let mut w = Vec::new();
    let name = &id.display_name;
    if name.chars().any(|c| c.is_control() || is_invisible(c)) {
        w.push(format!(
            "The {what}'s display name contains invisible or bidi control characters (shown as \\u{{…}}). Check the address and object id."
        ));
    }
    if name.chars().any(|c| !c.is_ascii() && c.is_alphabetic()) {
        w.push(format!(
            "The {what}'s display name contains non-Latin letters that may imitate others. Check the address and object id."
        ));
    }
    if name.contains('<') || name.contains('>') {
        w.push(format!(
            "The {what}'s display name contains markup characters."
        ));
    }
    w
}

pub fn ts(t: Timestamp) -> String {
    t.to_string()
}

/// "3 min", "2 h", "5 d".
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let secs = (now.unix_millis() - then.unix_millis()).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

fn colour_name(s: ExchangeAdminState) -> &'static str {
    match s.colour() {
        exogate_core::BadgeColour::Red => "red",
        exogate_core::BadgeColour::Amber => "amber",
        exogate_core::BadgeColour::Green => "green",
    }
}

/// The Exchange Admin badge of a company, as shown.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    /// `not_connected` or an Exchange Admin state (`configured`, `role_missing`, …).
    pub state: String,
    pub badge: String,
    /// `red`, `amber`, `green` or `grey`.
    pub colour: String,
    /// What to do about it.
    pub fix: String,
    /// Troubleshooting hints for this state.
    pub help: Vec<String>,
    pub checked_at: Option<String>,
    pub checked_at_ms: Option<i64>,
    /// The last check failed (429/5xx/network); the badge shows the last good state.
    pub check_failed: bool,
    pub last_good_at: Option<String>,
    /// Evidence of the last check (AADSTS code, HTTP status, roles).
    pub detail: String,
    /// Set when the latest consent attempt in this session went wrong (e.g. `wrong_tenant`).
    pub consent_problem: Option<String>,
}

/// Troubleshooting text per state (the fixes of `docs/DOMAIN.md#exchange-admin-status`, and more).
pub fn help_for(state: &str) -> Vec<String> {
    let v: &[&str] = match state {
        "not_connected" => &[
            "Connect Microsoft 365 first: sign in as a Global Administrator of the customer's tenant and accept the connect app's permissions.",
        ],
        "not_configured" => &[
            "Click Authorize. A new tab opens on Microsoft's admin consent page.",
            "Sign in as a Global Administrator of the customer's tenant, not of your own (MSP) tenant.",
            "Review and accept the permissions (they include Exchange.ManageAsApp), then switch back to this tab: it re-checks by itself.",
        ],
        "role_missing" => &[
            "Badge stays red after authorizing: the Exchange Administrator role is not assigned yet (Step 2).",
            "In the customer's Entra admin centre: Identity > Roles & admins > Exchange Administrator (or, least privilege, Exchange Recipient Administrator) > Add assignments > select the exogate Exchange app > Add.",
            "Wait 1-2 minutes for the permission to propagate, then click Re-check.",
            "Delegation tools return errors until this is done.",
        ],
        "propagating" => &[
            "The role is assigned, but Microsoft has not propagated it to Exchange yet. This usually takes 1-2 minutes (sometimes up to an hour).",
            "The page re-checks by itself; you can also click Re-check.",
        ],
        "configured" => &[
            "Exchange Admin works: the app holds Exchange.ManageAsApp and a directory role, and a probe cmdlet answered.",
        ],
        "tenant_not_found" => &[
            "\"Tenant ID not found\": Microsoft does not know this tenant any more (deleted, or the ID is wrong).",
            "Disconnect and reconnect the Microsoft 365 integration, then try again.",
        ],
        "wrong_tenant" => &[
            "Consent went to another tenant: the person who signed in is an administrator of a different directory (often the MSP's own tenant).",
            "Click Authorize again and sign in as a Global Administrator of the customer's tenant, not your own.",
            "Delegation tools return errors while the admin consent is granted in the wrong tenant.",
        ],
        "app_credentials_invalid" => &[
            "Microsoft rejected exogate's own app credentials (AADSTS7000215 / 7000222 / 700027).",
            "An administrator of the MSP must renew the app's client secret or certificate in exogate's configuration.",
        ],
        "check_failed" => &[
            "Microsoft could not be reached or throttled the check (429, 5xx or network). It is retried; the badge shows the last good result.",
        ],
        _ => &[],
    };
    v.iter().map(|s| (*s).to_owned()).collect()
}

impl StatusView {
    pub fn of(company: &Company) -> Self {
        if company.connection.is_none() {
            return Self {
                state: "not_connected".into(),
                badge: "Not connected".into(),
                colour: "grey".into(),
                fix: "Connect Microsoft 365 first.".into(),
                help: help_for("not_connected"),
                checked_at: None,
                checked_at_ms: None,
                check_failed: false,
                last_good_at: None,
                detail: String::new(),
                consent_problem: None,
            };
        }
        match &company.exchange_status {
            None => Self {
                state: "unknown".into(),
                badge: "Not checked yet".into(),
                colour: "grey".into(),
                fix: "Click Re-check.".into(),
                help: Vec::new(),
                checked_at: None,
                checked_at_ms: None,
                check_failed: false,
                last_good_at: None,
                detail: String::new(),
                consent_problem: None,
            },
            Some(rec) => {
                let shown = rec.shown_state();
                Self {
                    state: shown.as_str().into(),
                    badge: shown.badge().into(),
                    colour: colour_name(shown).into(),
                    fix: shown.fix().into(),
                    help: help_for(shown.as_str()),
                    checked_at: Some(ts(rec.checked_at)),
                    checked_at_ms: Some(rec.checked_at.unix_millis()),
                    check_failed: rec.check_failed(),
                    last_good_at: rec.last_good_at.map(ts),
                    detail: rec.detail.clone(),
                    consent_problem: None,
                }
            }
        }
    }

    /// Shows the wrong-tenant state when the latest consent attempt in this session went to
    /// another tenant and the stored check does not show a working setup.
    pub fn with_consent_problem(mut self, problem: Option<&str>) -> Self {
        if let Some(p) = problem {
            self.consent_problem = Some(p.to_owned());
            if p == "wrong_tenant" && self.state != "configured" {
                let s = ExchangeAdminState::WrongTenant;
                self.state = s.as_str().into();
                self.badge = s.badge().into();
                self.colour = colour_name(s).into();
                self.fix = s.fix().into();
                self.help = help_for(s.as_str());
            }
        }
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct CompanyView {
    pub id: String,
    pub name: String,
    pub connected: bool,
    pub tenant_id: Option<String>,
    pub tenant_name: Option<String>,
    pub default_domain: Option<String>,
    pub connected_at: Option<String>,
    pub separate_approver: bool,
    pub status: StatusView,
}

impl CompanyView {
    pub fn of(c: &Company) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.clone(),
            connected: c.connection.is_some(),
            tenant_id: c.connection.as_ref().map(|x| x.tenant_id.to_string()),
            tenant_name: c.connection.as_ref().map(|x| x.display_name.clone()),
            default_domain: c.connection.as_ref().map(|x| x.default_domain.clone()),
            connected_at: c.connection.as_ref().map(|x| ts(x.connected_at)),
            separate_approver: c.separate_approver,
            status: StatusView::of(c),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct IdentityView {
    pub display_name: String,
    /// The display name with invisible characters written out.
    pub display_name_visible: String,
    pub address: String,
    pub object_id: String,
    pub kind: String,
}

impl IdentityView {
    pub fn of(i: &ResolvedIdentity) -> Self {
        Self {
            display_name: i.display_name.clone(),
            display_name_visible: visible(&i.display_name),
            address: i.primary_address.clone(),
            object_id: i.object_id.clone(),
            kind: i.kind.as_str().into(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ActionView {
    /// Tool name of the operation, e.g. `grant_full_access`.
    pub operation: String,
    /// e.g. "grant Full Access".
    pub verb: String,
    pub permission: String,
    pub mailbox: IdentityView,
    pub trustee: IdentityView,
    pub automapping: Option<bool>,
    /// `present` / `absent` when the request was made.
    pub state_at_request: String,
    /// The current state in words.
    pub state_text: String,
    pub summary: String,
    pub warnings: Vec<String>,
}

impl ActionView {
    pub fn of(a: &CanonicalAction) -> Self {
        let mut warnings = name_warnings("mailbox", &a.mailbox);
        warnings.extend(name_warnings("trustee", &a.trustee));
        let p = a.operation.permission.label();
        let state_text = match a.state_at_request {
            Presence::Present => format!(
                "{} has {p} on {} at request time",
                a.trustee.primary_address, a.mailbox.primary_address
            ),
            Presence::Absent => format!(
                "{} has no {p} on {} at request time",
                a.trustee.primary_address, a.mailbox.primary_address
            ),
        };
        Self {
            operation: a.operation.as_str().into(),
            verb: a.operation.to_string(),
            permission: p.into(),
            mailbox: IdentityView::of(&a.mailbox),
            trustee: IdentityView::of(&a.trustee),
            automapping: a.options.automapping,
            state_at_request: a.state_at_request.as_str().into(),
            state_text,
            summary: visible(&a.summary()),
            warnings,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ResultView {
    pub outcome: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub verified: bool,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct RequestView {
    pub id: String,
    pub company: String,
    pub company_name: String,
    pub tenant: String,
    pub tool: String,
    pub risk: String,
    pub state: String,
    pub summary: String,
    pub requester: String,
    /// `web`, `api`, `cli` or `mcp`.
    pub channel: String,
    /// The agent's name when an AI agent made the request through MCP.
    pub agent: Option<String>,
    pub created_at: String,
    pub expires_at: String,
    pub age: String,
    pub role_needed: String,
    pub digest: String,
    pub actions: Vec<ActionView>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub decision: Option<String>,
    pub reason: Option<String>,
    pub cancelled_by: Option<String>,
    pub results: Vec<ResultView>,
    pub finished_at: Option<String>,
    pub message: Option<String>,
    pub revert_of: Option<String>,
    pub attempt: u32,
    /// Whether the caller may approve/reject, cancel, revert it now.
    pub can_decide: bool,
    pub can_cancel: bool,
    pub can_revert: bool,
    /// Why the caller may not decide (when pending).
    pub decide_denied: Option<String>,
}

impl RequestView {
    pub fn of(
        r: &ApprovalRequest,
        company: Option<&Company>,
        actor: &Actor,
        now: Timestamp,
    ) -> Self {
        let (can_decide, decide_denied) = match company {
            Some(c) => match policy::can_decide(actor, c, r, now) {
                Ok(()) => (true, None),
                Err(e) if r.state == RequestState::Pending => (false, Some(e.to_string())),
                Err(_) => (false, None),
            },
            None => (false, None),
        };
        let agent = match &r.requester.channel {
            exogate_core::Channel::Mcp { agent, .. } => {
                Some(agent.clone().unwrap_or_else(|| "AI agent".into()))
            }
            _ => None,
        };
        Self {
            id: r.id.to_string(),
            company: r.company.to_string(),
            company_name: company.map_or_else(|| r.company.to_string(), |c| c.name.clone()),
            tenant: r.tenant.to_string(),
            tool: r.tool.as_str().into(),
            risk: r.risk.as_str().into(),
            state: r.state.as_str().into(),
            summary: visible(&r.summary()),
            requester: r.requester.user_name.to_string(),
            channel: r.requester.channel.kind().into(),
            agent,
            created_at: ts(r.created_at),
            expires_at: ts(r.expires_at),
            age: age(now, r.created_at),
            role_needed: policy::role_to_approve(r.risk).as_str().into(),
            digest: r.digest.clone(),
            actions: r.actions.iter().map(ActionView::of).collect(),
            decided_by: r.decision.as_ref().map(|d| d.by_name.to_string()),
            decided_at: r.decision.as_ref().map(|d| ts(d.at)),
            decision: r
                .decision
                .as_ref()
                .map(|d| if d.approved { "approved" } else { "rejected" }.to_owned()),
            reason: r.decision.as_ref().and_then(|d| d.reason.clone()),
            cancelled_by: r.cancellation.as_ref().map(|c| c.by_name.to_string()),
            results: r
                .results
                .iter()
                .map(|x| ResultView {
                    outcome: x.outcome.as_str().into(),
                    before: x.before.map(|p| p.as_str().to_owned()),
                    after: x.after.map(|p| p.as_str().to_owned()),
                    verified: x.verified,
                    message: visible(&x.message),
                })
                .collect(),
            finished_at: r.finished_at.map(ts),
            message: r.message.as_deref().map(visible),
            revert_of: r.revert_of.map(|x| x.to_string()),
            attempt: r.attempt,
            can_decide,
            can_cancel: policy::can_cancel(actor, r).is_ok(),
            can_revert: r.state == RequestState::Succeeded
                && policy::can_request(&actor.user, &r.company).is_ok(),
            decide_denied,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditView {
    pub seq: i64,
    pub at: String,
    pub at_ms: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub channel: String,
    pub company: Option<String>,
    pub request: Option<String>,
    pub detail: serde_json::Value,
    /// `detail` as compact text with invisible characters written out (for pages).
    pub detail_text: String,
    pub hash: String,
}

impl AuditView {
    pub fn of(e: &AuditEvent) -> Self {
        let detail: serde_json::Value =
            serde_json::from_str(&e.event.detail).unwrap_or(serde_json::Value::Null);
        Self {
            seq: e.seq,
            at: ts(e.event.at),
            at_ms: e.event.at.unix_millis(),
            kind: e.event.kind.clone(),
            actor: e.event.actor_name.clone(),
            channel: e.event.channel.clone(),
            company: e.event.company.clone(),
            request: e.event.request.clone(),
            detail_text: visible(&e.event.detail),
            detail,
            hash: e.hash.clone(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MeView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub entitlement: String,
    pub channel: String,
}

impl MeView {
    pub fn of(a: &Actor) -> Self {
        Self {
            id: a.user.id.to_string(),
            name: a.user.name.to_string(),
            role: a.user.role.as_str().into(),
            entitlement: a.user.entitlement.encode(),
            channel: a.channel.kind().into(),
        }
    }
}
