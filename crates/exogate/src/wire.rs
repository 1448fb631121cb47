//! JSON forms of core types for machine-readable output (`--json` in the CLI). Core types do not
//! derive `Serialize`; the edge converts them by hand so the domain never becomes a wire format.

use exogate_core::action::CanonicalAction;
use exogate_core::audit::AuditEvent;
use exogate_core::model::{ApiToken, Company, ResolvedIdentity, User};
use exogate_core::ports::{MailboxDetails, PermissionEntry};
use exogate_core::request::ApprovalRequest;
use serde_json::{Value, json};

pub fn identity(id: &ResolvedIdentity) -> Value {
    json!({
        "display_name": id.display_name,
        "address": id.primary_address,
        "object_id": id.object_id,
        "kind": id.kind.as_str(),
    })
}

pub fn company(c: &Company) -> Value {
    json!({
        "id": c.id.as_str(),
        "name": c.name,
        "separate_approver": c.separate_approver,
        "connection": c.connection.as_ref().map(|conn| json!({
            "tenant_id": conn.tenant_id.to_string(),
            "display_name": conn.display_name,
            "default_domain": conn.default_domain,
            "connected_at": conn.connected_at.to_string(),
        })),
        "exchange_admin": c.exchange_status.as_ref().map(|s| {
            let shown = s.shown_state();
            json!({
                "state": s.state.as_str(),
                "badge": shown.badge(),
                "colour": match shown.colour() {
                    exogate_core::model::BadgeColour::Red => "red",
                    exogate_core::model::BadgeColour::Amber => "amber",
                    exogate_core::model::BadgeColour::Green => "green",
                },
                "fix": shown.fix(),
                "checked_at": s.checked_at.to_string(),
                "last_good_at": s.last_good_at.map(|t| t.to_string()),
                "detail": s.detail,
            })
        }),
    })
}

pub fn user(u: &User) -> Value {
    json!({
        "id": u.id.to_string(),
        "name": u.name.as_str(),
        "role": u.role.as_str(),
        "entitlement": u.entitlement.encode(),
        "disabled": u.disabled,
        "created_at": u.created_at.to_string(),
    })
}

pub fn token(t: &ApiToken) -> Value {
    json!({
        "id": t.id.to_string(),
        "owner": t.owner.to_string(),
        "name": t.name,
        "created_at": t.created_at.to_string(),
        "last_used_at": t.last_used_at.map(|x| x.to_string()),
        "revoked_at": t.revoked_at.map(|x| x.to_string()),
    })
}

pub fn action(a: &CanonicalAction) -> Value {
    json!({
        "summary": a.summary(),
        "company": a.company.as_str(),
        "tenant": a.tenant.to_string(),
        "operation": a.operation.as_str(),
        "mailbox": identity(&a.mailbox),
        "trustee": identity(&a.trustee),
        "automapping": a.options.automapping,
        "state_at_request": a.state_at_request.as_str(),
    })
}

pub fn request(r: &ApprovalRequest) -> Value {
    json!({
        "id": r.id.to_string(),
        "state": r.state.as_str(),
        "company": r.company.as_str(),
        "tenant": r.tenant.to_string(),
        "tool": r.tool.as_str(),
        "risk": r.risk.as_str(),
        "requester": {
            "user": r.requester.user_name.as_str(),
            "channel": r.requester.channel.to_string(),
        },
        "summary": r.summary(),
        "actions": r.actions.iter().map(action).collect::<Vec<_>>(),
        "digest": r.digest,
        "created_at": r.created_at.to_string(),
        "expires_at": r.expires_at.to_string(),
        "decision": r.decision.as_ref().map(|d| json!({
            "by": d.by_name.as_str(),
            "at": d.at.to_string(),
            "approved": d.approved,
            "reason": d.reason,
        })),
        "results": r.results.iter().map(|res| json!({
            "outcome": res.outcome.as_str(),
            "before": res.before.map(|p| p.as_str()),
            "after": res.after.map(|p| p.as_str()),
            "verified": res.verified,
            "message": res.message,
        })).collect::<Vec<_>>(),
        "finished_at": r.finished_at.map(|t| t.to_string()),
        "message": r.message,
        "revert_of": r.revert_of.map(|id| id.to_string()),
    })
}

pub fn permission(p: &PermissionEntry) -> Value {
    json!({
        "trustee": p.trustee,
        "resolved": p.resolved.as_ref().map(identity),
        "access_rights": p.access_rights,
        "kind": match &p.resolved {
            Some(r) if r.kind.as_str() == "group" => "group",
            Some(_) => "user",
            None if p.trustee.starts_with("S-1-5-21-") => "orphan",
            None => "unresolved",
        },
    })
}

pub fn mailbox_details(d: &MailboxDetails) -> Value {
    json!({
        "mailbox": identity(&d.mailbox),
        "email_addresses": d.email_addresses,
        "send_on_behalf": d.send_on_behalf.iter().map(permission).collect::<Vec<_>>(),
        "properties": d.properties.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
    })
}

/// One line for an audit event: its request id, the action (the request's summary, or its
/// tool), and the decision's reason, as far as the event has them (for `audit list`).
pub fn audit_summary(e: &AuditEvent) -> String {
    let detail = serde_json::from_str::<Value>(&e.event.detail).unwrap_or(Value::Null);
    let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_owned);
    let mut parts = Vec::new();
    if let Some(r) = &e.event.request {
        parts.push(format!("request {r}"));
    }
    if let Some(a) = text("summary").or_else(|| text("tool")) {
        parts.push(a);
    }
    if let Some(r) = text("reason") {
        parts.push(format!("reason: {r}"));
    }
    exogate_core::text::escape_hidden(&parts.join("; "))
}

pub fn audit(e: &AuditEvent) -> Value {
    let ev = &e.event;
    json!({
        "seq": e.seq,
        "at": ev.at.to_string(),
        "kind": ev.kind,
        "actor": ev.actor_name,
        "channel": ev.channel,
        "company": ev.company,
        "request": ev.request,
        "detail": serde_json::from_str::<Value>(&ev.detail).unwrap_or(Value::String(ev.detail.clone())),
        "hash": e.hash,
    })
}
