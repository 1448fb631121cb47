//! Who: a mailbox or trustee as Exchange identifies it, and the caller.

use exogate_core::{Actor, ResolvedIdentity};
use serde::Serialize;

use super::shown;

/// A mailbox, user or group, every string sanitized.
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

/// The signed-in caller (`GET /api/v1/me`).
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
