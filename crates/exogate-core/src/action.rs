//! The canonical action: one exact Exchange change, with mailbox and trustee resolved to their
//! Exchange identities and the state found when it was requested. Its canonical encoding is a
//! JSON text with a fixed key order written by hand (it must not depend on serde features
//! unified elsewhere in the build), and the digest is the lowercase hex SHA-256 of that text.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::error::CoreError;
use crate::model::{CompanyId, RecipientKind, ResolvedIdentity, TenantId, Timestamp};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OperationKind {
    Grant,
    Remove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    FullAccess,
    SendAs,
    SendOnBehalf,
}

impl Permission {
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::FullAccess => "full_access",
            Permission::SendAs => "send_as",
            Permission::SendOnBehalf => "send_on_behalf",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Permission::FullAccess => "Full Access",
            Permission::SendAs => "Send As",
            Permission::SendOnBehalf => "Send on Behalf",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Operation {
    pub kind: OperationKind,
    pub permission: Permission,
}

impl Operation {
    pub const ALL: [Operation; 6] = [
        Operation {
            kind: OperationKind::Grant,
            permission: Permission::FullAccess,
        },
        Operation {
            kind: OperationKind::Grant,
            permission: Permission::SendAs,
        },
        Operation {
            kind: OperationKind::Grant,
            permission: Permission::SendOnBehalf,
        },
        Operation {
            kind: OperationKind::Remove,
            permission: Permission::FullAccess,
        },
        Operation {
            kind: OperationKind::Remove,
            permission: Permission::SendAs,
        },
        Operation {
            kind: OperationKind::Remove,
            permission: Permission::SendOnBehalf,
        },
    ];
    /// `grant_full_access`, `remove_send_as`, … (same as the tool name).
    pub fn as_str(self) -> &'static str {
        crate::tools::ToolName::for_operation(self).as_str()
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == s)
    }
    /// The state the trustee's permission has once this operation took effect.
    pub fn desired(self) -> Presence {
        match self.kind {
            OperationKind::Grant => Presence::Present,
            OperationKind::Remove => Presence::Absent,
        }
    }
    #[must_use]
    pub fn inverse(self) -> Operation {
        let kind = match self.kind {
            OperationKind::Grant => OperationKind::Remove,
            OperationKind::Remove => OperationKind::Grant,
        };
        Operation {
            kind,
            permission: self.permission,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            OperationKind::Grant => "grant",
            OperationKind::Remove => "remove",
        };
        write!(f, "{verb} {}", self.permission.label())
    }
}

/// Whether a trustee holds a permission on a mailbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Presence {
    Present,
    Absent,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Present => "present",
            Presence::Absent => "absent",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "present" => Some(Presence::Present),
            "absent" => Some(Presence::Absent),
            _ => None,
        }
    }
}

/// Options of an operation. `automapping` is set only for a Full Access grant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActionOptions {
    pub automapping: Option<bool>,
}

/// One frozen, resolved Exchange change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CanonicalAction {
    pub company: CompanyId,
    pub tenant: TenantId,
    pub operation: Operation,
    pub mailbox: ResolvedIdentity,
    pub trustee: ResolvedIdentity,
    pub options: ActionOptions,
    /// What Exchange said when the request was made.
    pub state_at_request: Presence,
    /// (timed-grants) When a grant ends: its removal is scheduled for then. Only on grants; part
    /// of the canonical encoding (and so of the digest) when set.
    pub ends_at: Option<Timestamp>,
}

impl CanonicalAction {
    /// Builds an action, normalising options: automapping only on Full Access grants (default true).
    pub fn new(
        company: CompanyId,
        tenant: TenantId,
        operation: Operation,
        mailbox: ResolvedIdentity,
        trustee: ResolvedIdentity,
        automapping: Option<bool>,
        state_at_request: Presence,
    ) -> Self {
        let automapping = if operation
            == (Operation {
                kind: OperationKind::Grant,
                permission: Permission::FullAccess,
            }) {
            Some(automapping.unwrap_or(true))
        } else {
            None
        };
        Self {
            company,
            tenant,
            operation,
            mailbox,
            trustee,
            options: ActionOptions { automapping },
            state_at_request,
            ends_at: None,
        }
    }

    /// (timed-grants) This grant with an end (ignored on removals).
    #[must_use]
    pub fn with_end(mut self, ends_at: Option<Timestamp>) -> Self {
        if self.operation.kind == OperationKind::Grant {
            self.ends_at = ends_at;
        }
        self
    }

    /// The action that undoes this one, as seen after it succeeded.
    #[must_use]
    pub fn inverse(&self) -> CanonicalAction {
        CanonicalAction::new(
            self.company.clone(),
            self.tenant,
            self.operation.inverse(),
            self.mailbox.clone(),
            self.trustee.clone(),
            None,
            self.operation.desired(),
        )
    }

    /// Whether the state read when asking is already this action's goal (asking would change
    /// nothing).
    pub fn is_no_op(&self) -> bool {
        // A grant with an end on a right already held is not a no-op: it sets or moves the end.
        self.state_at_request == self.operation.desired() && self.ends_at.is_none()
    }

    /// "bob@… already has Full Access on sales@…" / "bob@… has no Send As on sales@… already".
    pub fn in_state_phrase(&self) -> String {
        let (t, p, m) = (
            &self.trustee.primary_address,
            self.operation.permission.label(),
            &self.mailbox.primary_address,
        );
        match self.operation.desired() {
            Presence::Present => format!("{t} already has {p} on {m}"),
            Presence::Absent => format!("{t} has no {p} on {m} already"),
        }
    }

    /// A one-line English summary: "grant Full Access to bob@… on sales@… (bob has no Full Access on sales today)".
    pub fn summary(&self) -> String {
        let now = match (self.state_at_request, self.operation.permission) {
            (Presence::Present, p) => format!(
                "{} has {} on {} today",
                self.trustee.display_name,
                p.label(),
                self.mailbox.display_name
            ),
            (Presence::Absent, p) => format!(
                "{} has no {} on {} today",
                self.trustee.display_name,
                p.label(),
                self.mailbox.display_name
            ),
        };
        let prep = match self.operation.kind {
            OperationKind::Grant => "to",
            OperationKind::Remove => "from",
        };
        let am = match self.options.automapping {
            Some(true) => ", with automapping",
            Some(false) => ", without automapping",
            None => "",
        };
        let until = self
            .ends_at
            .map(|t| format!(", until {t}"))
            .unwrap_or_default();
        format!(
            "{} {prep} {} on {}{am}{until} ({now})",
            self.operation, self.trustee.primary_address, self.mailbox.primary_address
        )
    }

    fn write_canonical(&self, out: &mut String) {
        out.push_str("{\"company\":");
        push_str(out, self.company.as_str());
        out.push_str(",\"tenant\":");
        push_str(out, &self.tenant.to_string());
        out.push_str(",\"operation\":");
        push_str(out, self.operation.as_str());
        out.push_str(",\"mailbox\":");
        write_identity(out, &self.mailbox);
        out.push_str(",\"trustee\":");
        write_identity(out, &self.trustee);
        out.push_str(",\"options\":{\"automapping\":");
        out.push_str(match self.options.automapping {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
        out.push_str("},\"state_at_request\":");
        push_str(out, self.state_at_request.as_str());
        // Written only when set, so the digests of actions without an end are unchanged.
        if let Some(end) = self.ends_at {
            out.push_str(",\"ends_at\":");
            out.push_str(&end.unix_millis().to_string());
        }
        out.push('}');
    }

    fn from_value(v: &serde_json::Value) -> Result<Self, CoreError> {
        let company = CompanyId::parse(get_str(v, "company")?)?;
        let tenant = TenantId::parse(get_str(v, "tenant")?)?;
        let operation =
            Operation::parse(get_str(v, "operation")?).ok_or_else(|| bad("operation"))?;
        let mailbox = read_identity(v.get("mailbox").ok_or_else(|| bad("mailbox"))?)?;
        let trustee = read_identity(v.get("trustee").ok_or_else(|| bad("trustee"))?)?;
        let automapping = match v.get("options").and_then(|o| o.get("automapping")) {
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(serde_json::Value::Null) | None => None,
            Some(_) => return Err(bad("options.automapping")),
        };
        let state_at_request = Presence::parse(get_str(v, "state_at_request")?)
            .ok_or_else(|| bad("state_at_request"))?;
        let ends_at = match v.get("ends_at") {
            None | Some(serde_json::Value::Null) => None,
            Some(e) => Some(Timestamp::from_unix_millis(
                e.as_i64().ok_or_else(|| bad("ends_at"))?,
            )),
        };
        // The options as stored, not normalised again: the digest covers them as they were.
        let action = Self::new(
            company,
            tenant,
            operation,
            mailbox,
            trustee,
            None,
            state_at_request,
        );
        Ok(Self {
            options: ActionOptions { automapping },
            ends_at,
            ..action
        })
    }
}

/// Version of the canonical encoding; part of the encoded text, so a change changes digests.
pub const CANONICAL_VERSION: u32 = 1;

/// The canonical encoding of a request's actions: `{"v":1,"actions":[…]}` with fixed key order,
/// no whitespace and serde_json's string escaping.
pub fn encode_actions(actions: &[CanonicalAction]) -> String {
    let mut out = String::with_capacity(512 * actions.len().max(1));
    out.push_str("{\"v\":");
    out.push_str(&CANONICAL_VERSION.to_string());
    out.push_str(",\"actions\":[");
    for (i, a) in actions.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        a.write_canonical(&mut out);
    }
    out.push_str("]}");
    out
}

/// Parses an encoding made by [`encode_actions`] (any JSON with the same fields is accepted; the
/// digest is always recomputed from the parsed actions).
pub fn decode_actions(text: &str) -> Result<Vec<CanonicalAction>, CoreError> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| CoreError::invalid("actions", format!("not JSON: {e}")))?;
    if v.get("v").and_then(serde_json::Value::as_u64) != Some(u64::from(CANONICAL_VERSION)) {
        return Err(bad("v"));
    }
    let list = v
        .get("actions")
        .and_then(serde_json::Value::as_array)
        .ok_or_else(|| bad("actions"))?;
    if list.is_empty() {
        return Err(bad("actions"));
    }
    list.iter().map(CanonicalAction::from_value).collect()
}

/// Lowercase hex SHA-256 of the canonical encoding.
pub fn digest_actions(actions: &[CanonicalAction]) -> String {
    hex::encode(Sha256::digest(encode_actions(actions).as_bytes()))
}

fn push_str(out: &mut String, s: &str) {
    // serde_json's string escaping is fixed (RFC 8259, minimal escapes), so this is deterministic.
    out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
}

fn write_identity(out: &mut String, id: &ResolvedIdentity) {
    out.push_str("{\"object_id\":");
    push_str(out, &id.object_id);
    out.push_str(",\"primary_address\":");
    push_str(out, &id.primary_address);
    out.push_str(",\"display_name\":");
    push_str(out, &id.display_name);
    out.push_str(",\"kind\":");
    push_str(out, id.kind.as_str());
    out.push('}');
}

fn read_identity(v: &serde_json::Value) -> Result<ResolvedIdentity, CoreError> {
    Ok(ResolvedIdentity {
        object_id: get_str(v, "object_id")?.to_owned(),
        primary_address: get_str(v, "primary_address")?.to_owned(),
        display_name: get_str(v, "display_name")?.to_owned(),
        kind: RecipientKind::parse(get_str(v, "kind")?).ok_or_else(|| bad("kind"))?,
    })
}

fn get_str<'a>(v: &'a serde_json::Value, key: &'static str) -> Result<&'a str, CoreError> {
    v.get(key)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| bad(key))
}

fn bad(field: &'static str) -> CoreError {
    CoreError::invalid(
        "actions",
        format!("stored action has a missing or malformed `{field}`"),
    )
}
