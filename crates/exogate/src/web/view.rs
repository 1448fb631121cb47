//! View models shared by the pages and the JSON API: plain `Serialize` structs built from core
//! types. Every string that came from a tenant (display names, addresses, object ids, Exchange
//! messages, the tenant's display name and domain) goes through the core's one sanitizer
//! ([`exogate_core::text::tenant_text`], the same as MCP): hidden characters (controls, bidi,
//! zero-width, tag characters, U+2028/2029…) are written out as `<U+XXXX>` and long text is
//! capped, with warnings, so an approver sees exactly what the bytes say. Pages and every JSON
//! API caller (session or token) get the same sanitized text.

use exogate_core::action::{CanonicalAction, Presence};
use exogate_core::audit::AuditEvent;
use exogate_core::policy;
use exogate_core::request::{ApprovalRequest, RequestState};
use exogate_core::text;
use exogate_core::{Actor, Company, ExchangeAdminState, ResolvedIdentity, Timestamp};
use serde::Serialize;

/// Tenant text as shown on pages and in the JSON API: hidden characters escaped as `<U+XXXX>`
/// and capped, by the core's one sanitizer (the same as MCP).
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

/// The request's summary built from sanitized actions.
fn shown_summary(r: &ApprovalRequest) -> String {
    r.actions
        .iter()
        .map(|a| shown_action(a).summary())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Every string in a JSON value sanitized like tenant text (audit details quote tenant names,
/// e.g. in a request's summary and encoded actions; the audit log itself keeps them whole).
pub fn shown_json(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
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
                    detail: shown_message(&rec.detail),
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
            name: shown(&c.name),
            connected: c.connection.is_some(),
            tenant_id: c.connection.as_ref().map(|x| x.tenant_id.to_string()),
            tenant_name: c.connection.as_ref().map(|x| shown(&x.display_name)),
            default_domain: c.connection.as_ref().map(|x| shown(&x.default_domain)),
            connected_at: c.connection.as_ref().map(|x| ts(x.connected_at)),
            separate_approver: c.separate_approver,
            status: StatusView::of(c),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct IdentityView {
    /// Sanitized (hidden characters written out as `<U+XXXX>`, capped).
    pub display_name: String,
    /// The same as `display_name` (kept for clients that read this field).
    pub display_name_visible: String,
    pub address: String,
    pub object_id: String,
    pub kind: String,
}

impl IdentityView {
    pub fn of(i: &ResolvedIdentity) -> Self {
        Self {
            display_name: shown(&i.display_name),
            display_name_visible: shown(&i.display_name),
            address: shown(&i.primary_address),
            object_id: shown(&i.object_id),
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
        let raw = a;
        let a = &shown_action(raw);
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
            mailbox: IdentityView::of(&raw.mailbox),
            trustee: IdentityView::of(&raw.trustee),
            automapping: a.options.automapping,
            state_at_request: a.state_at_request.as_str().into(),
            state_text,
            summary: a.summary(),
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
                Some(agent.as_deref().map_or_else(|| "AI agent".into(), shown))
            }
            _ => None,
        };
        Self {
            id: r.id.to_string(),
            company: r.company.to_string(),
            company_name: company.map_or_else(|| r.company.to_string(), |c| shown(&c.name)),
            tenant: r.tenant.to_string(),
            tool: r.tool.as_str().into(),
            risk: r.risk.as_str().into(),
            state: r.state.as_str().into(),
            summary: shown_summary(r),
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
            reason: r
                .decision
                .as_ref()
                .and_then(|d| d.reason.as_deref().map(text::escape_hidden)),
            cancelled_by: r.cancellation.as_ref().map(|c| c.by_name.to_string()),
            results: r
                .results
                .iter()
                .map(|x| ResultView {
                    outcome: x.outcome.as_str().into(),
                    before: x.before.map(|p| p.as_str().to_owned()),
                    after: x.after.map(|p| p.as_str().to_owned()),
                    verified: x.verified,
                    message: shown(&x.message),
                })
                .collect(),
            finished_at: r.finished_at.map(ts),
            message: r.message.as_deref().map(shown),
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
    /// `detail` (sanitized) as compact text, for pages.
    pub detail_text: String,
    pub hash: String,
}

impl AuditView {
    pub fn of(e: &AuditEvent) -> Self {
        let detail: serde_json::Value =
            serde_json::from_str(&e.event.detail).unwrap_or(serde_json::Value::Null);
        let detail = shown_json(&detail);
        Self {
            seq: e.seq,
            at: ts(e.event.at),
            at_ms: e.event.at.unix_millis(),
            kind: e.event.kind.clone(),
            actor: e.event.actor_name.clone(),
            channel: e.event.channel.clone(),
            company: e.event.company.clone(),
            request: e.event.request.clone(),
            detail_text: if detail.is_null() {
                shown(&e.event.detail)
            } else {
                detail.to_string()
            },
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
