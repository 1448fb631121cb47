//! An event of the audit log.

use exogate_core::audit::AuditEvent;
use serde::Serialize;
use serde_json::Value;

use super::{shown, shown_json, ts};

/// One audit event; its detail sanitized like tenant text (the log itself keeps it whole).
#[derive(Clone, Debug, Serialize)]
pub struct AuditEventView {
    pub seq: i64,
    pub at: String,
    pub at_ms: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub channel: String,
    pub company: Option<String>,
    pub request: Option<String>,
    pub detail: Value,
    /// `detail` (sanitized) as compact text, for pages.
    pub detail_text: String,
    pub hash: String,
}

impl AuditEventView {
    pub fn of(e: &AuditEvent) -> Self {
        let detail: Value = serde_json::from_str(&e.event.detail).unwrap_or(Value::Null);
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
