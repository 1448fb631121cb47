//! exogate's own users and API tokens (the CLI's `user` and `token` commands).

use exogate_core::model::{ApiToken, User};
use serde::Serialize;

use super::ts;

/// A user account (never its password hash).
#[derive(Clone, Debug, Serialize)]
pub struct UserView {
    pub id: String,
    pub name: String,
    pub role: String,
    /// `*` or the company ids, comma-separated.
    pub entitlement: String,
    pub disabled: bool,
    pub created_at: String,
}

impl UserView {
    pub fn of(u: &User) -> Self {
        Self {
            id: u.id.to_string(),
            name: u.name.as_str().into(),
            role: u.role.as_str().into(),
            entitlement: u.entitlement.encode(),
            disabled: u.disabled,
            created_at: ts(u.created_at),
        }
    }
}

/// An API token (never its secret or the secret's hash).
#[derive(Clone, Debug, Serialize)]
pub struct TokenView {
    pub id: String,
    /// The owner's user id.
    pub owner: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl TokenView {
    pub fn of(t: &ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            owner: t.owner.to_string(),
            name: t.name.clone(),
            created_at: ts(t.created_at),
            last_used_at: t.last_used_at.map(ts),
            revoked_at: t.revoked_at.map(ts),
        }
    }
}
