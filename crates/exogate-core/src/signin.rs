//! Sign in with Microsoft: the rules for an id token whose signature the edge has verified
//! (issuer, audience, nonce, lifetime, allowed tenants), and how Entra groups and app roles map
//! to an exogate role and company entitlement. No I/O: the time and the expected nonce are inputs.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::model::{CompanyId, Entitlement, Role, Timestamp};

/// Clock skew tolerated on `iat`, `nbf` and `exp`.
pub const SKEW_SECS: i64 = 300;

/// The claims of a Microsoft identity platform v2.0 id token that exogate reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct IdClaims {
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub tid: String,
    #[serde(default)]
    pub oid: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub nbf: Option<i64>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub preferred_username: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub amr: Vec<String>,
}

/// A sign-in sent to Microsoft and not yet answered. `state` and the browser's cookie value are
/// kept only as SHA-256 hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSignin {
    pub state_hash: String,
    pub browser_hash: String,
    pub nonce: String,
    /// The PKCE code verifier (short-lived, single use).
    pub verifier: String,
    /// Where to go after signing in (a checked local path).
    pub next: String,
    pub expires_at: Timestamp,
}

/// Why a Microsoft sign-in was refused. [`Refusal::code`] is what the audit log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the sign-in request is unknown, used or expired")]
    UnknownState,
    #[error("the sign-in was started in another browser")]
    ForeignState,
    #[error("Microsoft refused the sign-in")]
    ProviderError,
    #[error("the code could not be redeemed")]
    CodeRejected,
    #[error("the id token's signature is not valid")]
    BadSignature,
    #[error("the id token's issuer does not match its tenant")]
    WrongIssuer,
    #[error("the account's organisation is not allowed to sign in")]
    TenantNotAllowed,
    #[error("the id token was issued to another app")]
    WrongAudience,
    #[error("the id token does not answer this sign-in request")]
    WrongNonce,
    #[error("the id token has expired or is not valid yet")]
    Expired,
    #[error("the id token lacks a claim exogate needs")]
    MissingClaim,
    #[error("the account is in none of the groups that give access to exogate")]
    NotEntitled,
    #[error("the account was disabled in exogate")]
    Disabled,
}

impl Refusal {
    /// Stable reason code (audit log, error pages).
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnknownState => "unknown_state",
            Refusal::ForeignState => "foreign_state",
            Refusal::ProviderError => "provider_error",
            Refusal::CodeRejected => "code_rejected",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongIssuer => "wrong_issuer",
            Refusal::TenantNotAllowed => "tenant_not_allowed",
            Refusal::WrongAudience => "wrong_audience",
            Refusal::WrongNonce => "wrong_nonce",
            Refusal::Expired => "expired",
            Refusal::MissingClaim => "missing_claim",
            Refusal::NotEntitled => "not_entitled",
            Refusal::Disabled => "disabled",
        }
    }
}

/// One mapping entry: an Entra group object id or an app role value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Group(String),
    AppRole(String),
}

impl Source {
    /// A GUID names a group; anything else an app role value.
    pub fn parse(s: &str) -> Source {
        let s = s.trim();
        if uuid::Uuid::parse_str(s).is_ok() {
            Source::Group(s.to_ascii_lowercase())
        } else {
            Source::AppRole(s.to_owned())
        }
    }

    fn held_by(&self, claims: &IdClaims) -> bool {
        match self {
            Source::Group(g) => claims.groups.iter().any(|c| c.eq_ignore_ascii_case(g)),
            Source::AppRole(r) => claims.roles.iter().any(|c| c == r),
        }
    }
}

/// The sign-in policy from configuration.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The sign-in app's client id (the id token's `aud`).
    pub client_id: String,
    /// The login base URL, e.g. `https://login.microsoftonline.com` (no trailing slash).
    pub authority: String,
    /// Tenant ids whose people may sign in (lowercase GUIDs).
    pub tenants: Vec<String>,
    /// Who gets which role; the highest role any entry gives wins.
    pub roles: Vec<(Role, Vec<Source>)>,
    /// Companies given by groups or app roles. Empty: entitlements stay local.
    pub companies: Vec<(Source, Entitlement)>,
}

/// Checks the claims of an id token whose signature verified.
pub fn check_claims(
    policy: &Policy,
    claims: &IdClaims,
    expected_nonce: &str,
    now: Timestamp,
) -> Result<(), Refusal> {
    if claims.tid.is_empty() || claims.oid.is_empty() || claims.iss.is_empty() {
        return Err(Refusal::MissingClaim);
    }
    let tid = claims.tid.to_ascii_lowercase();
    // The v2.0 issuer is the authority plus the tenant: a token must name its own tenant.
    let expected_iss = format!("{}/{tid}/v2.0", policy.authority.trim_end_matches('/'));
    if !claims.iss.eq_ignore_ascii_case(&expected_iss) {
        return Err(Refusal::WrongIssuer);
    }
    if !policy.tenants.iter().any(|t| t.eq_ignore_ascii_case(&tid)) {
        return Err(Refusal::TenantNotAllowed);
    }
    if claims.aud != policy.client_id {
        return Err(Refusal::WrongAudience);
    }
    if claims.nonce.as_deref() != Some(expected_nonce) || expected_nonce.is_empty() {
        return Err(Refusal::WrongNonce);
    }
    let now = now.unix_millis() / 1000;
    if claims.exp + SKEW_SECS <= now
        || claims.iat - SKEW_SECS > now
        || claims.nbf.is_some_and(|n| n - SKEW_SECS > now)
    {
        return Err(Refusal::Expired);
    }
    Ok(())
}

/// The role the claims give (the highest of the mapped ones), or `NotEntitled`.
pub fn role_of(policy: &Policy, claims: &IdClaims) -> Result<Role, Refusal> {
    policy
        .roles
        .iter()
        .filter(|(_, sources)| sources.iter().any(|s| s.held_by(claims)))
        .map(|(r, _)| *r)
        .max()
        .ok_or(Refusal::NotEntitled)
}

/// The companies the claims give, or `None` when entitlements stay local (no mapping).
pub fn entitlement_of(policy: &Policy, claims: &IdClaims) -> Option<Entitlement> {
    if policy.companies.is_empty() {
        return None;
    }
    let mut set: BTreeSet<CompanyId> = BTreeSet::new();
    for (source, ent) in &policy.companies {
        if source.held_by(claims) {
            match ent {
                Entitlement::All => return Some(Entitlement::All),
                Entitlement::Companies(c) => set.extend(c.iter().cloned()),
            }
        }
    }
    Some(Entitlement::Companies(set))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            client_id: "app".into(),
            authority: "https://login.example".into(),
            tenants: vec!["11111111-1111-1111-1111-111111111111".into()],
            roles: vec![
                (
                    Role::Admin,
                    vec![Source::parse("aaaaaaaa-0000-0000-0000-000000000001")],
                ),
                (Role::Technician, vec![Source::parse("Exogate.Tech")]),
            ],
            companies: vec![],
        }
    }

    fn claims() -> IdClaims {
        IdClaims {
            iss: "https://login.example/11111111-1111-1111-1111-111111111111/v2.0".into(),
            aud: "app".into(),
            tid: "11111111-1111-1111-1111-111111111111".into(),
            oid: "o".into(),
            nonce: Some("n".into()),
            exp: 2000,
            iat: 1000,
            ..IdClaims::default()
        }
    }

    #[test]
    fn every_claim_is_checked() {
        let now = Timestamp::from_unix_millis(1_500_000);
        assert_eq!(check_claims(&policy(), &claims(), "n", now), Ok(()));
        let c = |f: fn(&mut IdClaims)| {
            let mut c = claims();
            f(&mut c);
            check_claims(&policy(), &c, "n", now)
        };
        assert_eq!(c(|c| c.aud = "other".into()), Err(Refusal::WrongAudience));
        assert_eq!(c(|c| c.nonce = Some("x".into())), Err(Refusal::WrongNonce));
        assert_eq!(c(|c| c.nonce = None), Err(Refusal::WrongNonce));
        assert_eq!(c(|c| c.exp = 1000), Err(Refusal::Expired));
        assert_eq!(c(|c| c.iat = 2000), Err(Refusal::Expired));
        assert_eq!(
            c(
                |c| c.iss =
                    "https://login.example/22222222-2222-2222-2222-222222222222/v2.0".into()
            ),
            Err(Refusal::WrongIssuer)
        );
        assert_eq!(
            c(|c| {
                c.tid = "22222222-2222-2222-2222-222222222222".into();
                c.iss = "https://login.example/22222222-2222-2222-2222-222222222222/v2.0".into();
            }),
            Err(Refusal::TenantNotAllowed)
        );
        assert_eq!(c(|c| c.oid = String::new()), Err(Refusal::MissingClaim));
    }

    #[test]
    fn the_highest_mapped_role_wins_and_none_refuses() {
        let mut c = claims();
        assert_eq!(role_of(&policy(), &c), Err(Refusal::NotEntitled));
        c.roles = vec!["Exogate.Tech".into()];
        assert_eq!(role_of(&policy(), &c), Ok(Role::Technician));
        c.groups = vec!["AAAAAAAA-0000-0000-0000-000000000001".into()];
        assert_eq!(role_of(&policy(), &c), Ok(Role::Admin));
        assert_eq!(entitlement_of(&policy(), &c), None);
    }
}
