//! Reading an access token's claims WITHOUT verifying its signature. The client only uses them
//! to classify (roles, directory roles, tenant, expiry); the service verifies the token.

use base64::Engine as _;
use serde::Deserialize;
use uuid::{Uuid, uuid};

/// App role that lets an app run Exchange cmdlets (`docs/MICROSOFT.md#identifiers`).
pub const EXCHANGE_MANAGE_AS_APP: &str = "Exchange.ManageAsApp";
/// Directory role template ids (`docs/MICROSOFT.md#identifiers`; Exchange Recipient
/// Administrator from Entra's built-in role list).
pub const EXCHANGE_ADMINISTRATOR: Uuid = uuid!("29232cdf-9323-42fd-ade2-1d097af3e4de");
pub const GLOBAL_ADMINISTRATOR: Uuid = uuid!("62e90394-69f5-4237-9190-012177145e10");
pub const EXCHANGE_RECIPIENT_ADMINISTRATOR: Uuid = uuid!("31392ffb-586c-42d1-9346-e59415a2cc4e");
pub const GLOBAL_READER: Uuid = uuid!("f2ef992c-3afb-46b9-b7cf-a126ee74c451");
/// Present in every app-only token's `wids`; not a role.
pub const IMPLICIT_WIDS: Uuid = uuid!("0997a1d0-0d1d-4acb-b408-d5ca73121e90");

/// The claims the client looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TokenClaims {
    #[serde(default)]
    pub tid: Option<String>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub wids: Vec<String>,
    #[serde(default)]
    pub oid: Option<String>,
    /// v1 tokens: `appid`; v2 tokens: `azp`.
    #[serde(default, alias = "azp")]
    pub appid: Option<String>,
    #[serde(default)]
    pub aud: Option<String>,
}

/// What the token's directory roles allow for delegation work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleClass {
    /// Exchange Administrator, Global Administrator or Exchange Recipient Administrator.
    CanManage,
    /// Only a read-only role (Global Reader): can read, cannot grant.
    ReadOnly,
    /// No usable directory role.
    None,
}

impl TokenClaims {
    /// Decodes the payload of a compact JWT (no signature check).
    pub fn decode(token: &str) -> Result<Self, ClaimsError> {
        let mut parts = token.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ClaimsError("not a compact JWT".into()));
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .map_err(|e| ClaimsError(format!("payload is not base64url: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ClaimsError(format!("payload is not a JSON claims object: {e}")))
    }

    pub fn tenant_id(&self) -> Option<Uuid> {
        self.tid.as_deref().and_then(|t| Uuid::parse_str(t).ok())
    }

    pub fn has_exchange_permission(&self) -> bool {
        self.roles.iter().any(|r| r == EXCHANGE_MANAGE_AS_APP)
    }

    fn wids_ids(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.wids.iter().filter_map(|w| Uuid::parse_str(w).ok())
    }

    pub fn role_class(&self) -> RoleClass {
        let manage = [
            EXCHANGE_ADMINISTRATOR,
            GLOBAL_ADMINISTRATOR,
            EXCHANGE_RECIPIENT_ADMINISTRATOR,
        ];
        if self.wids_ids().any(|w| manage.contains(&w)) {
            RoleClass::CanManage
        } else if self.wids_ids().any(|w| w == GLOBAL_READER) {
            RoleClass::ReadOnly
        } else {
            RoleClass::None
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("the access token could not be read: {0}")]
pub struct ClaimsError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &serde_json::Value) -> String {
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            e.encode(br#"{"alg":"RS256"}"#),
            e.encode(payload.to_string())
        )
    }

    #[test]
    fn classifies_roles() {
        let c = TokenClaims::decode(&jwt(&serde_json::json!({
            "tid": "11111111-1111-4111-8111-111111111111",
            "roles": ["Exchange.ManageAsApp"],
            "wids": ["f2ef992c-3afb-46b9-b7cf-a126ee74c451", "0997a1d0-0d1d-4acb-b408-d5ca73121e90"],
            "exp": 10
        })))
        .unwrap();
        assert!(c.has_exchange_permission());
        assert_eq!(c.role_class(), RoleClass::ReadOnly);
        let c = TokenClaims::decode(&jwt(&serde_json::json!({
            "wids": ["29232cdf-9323-42fd-ade2-1d097af3e4de"]
        })))
        .unwrap();
        assert!(!c.has_exchange_permission());
        assert_eq!(c.role_class(), RoleClass::CanManage);
        assert_eq!(TokenClaims::default().role_class(), RoleClass::None);
        assert!(TokenClaims::decode("a.b").is_err());
        assert!(TokenClaims::decode("a.!!!.c").is_err());
    }
}
