//! Sign in with Microsoft, after the edge verified the id token's signature: the claim checks
//! and mapping of [`crate::signin`], then the linked user (by `tid`+`oid`, never by name or
//! e-mail) is created, updated to the mapped role and companies, or refused and suspended
//! (disabled, so its sessions and API tokens stop working at once). Every outcome is audited
//! (`auth.login` / `auth.login_failed`, channel `microsoft`, with the reason); no token is.

use serde_json::json;

use super::Ctx;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::CoreError;
use crate::model::{Entitlement, User, UserId, UserName, clip};
use crate::signin::{IdClaims, Policy, Refusal, check_claims, entitlement_of, role_of};

/// The audit channel of Microsoft sign-ins.
pub const CHANNEL: &str = "microsoft";

fn who(claims: Option<&IdClaims>) -> String {
    claims
        .map(|c| clip(&c.preferred_username))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Records a refused Microsoft sign-in with its reason (and the account, when known).
pub async fn record_refusal(
    ctx: Ctx<'_>,
    refusal: Refusal,
    claims: Option<&IdClaims>,
) -> Result<(), CoreError> {
    let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::LoginFailed)
        .actor_name(&who(claims), CHANNEL)
        .detail(json!({
            "method": "microsoft",
            "reason": refusal.code(),
            "tid": claims.map(|c| clip(&c.tid)),
            "oid": claims.map(|c| clip(&c.oid)),
        }));
    ctx.store.append_audit(ev).await?;
    Ok(())
}

/// Signs in the person `claims` (signature verified by the edge) describe. `new_id` is the id a
/// first sign-in gives the new user. The inner `Err` is a refusal, already audited.
pub async fn sign_in(
    ctx: Ctx<'_>,
    policy: &Policy,
    claims: &IdClaims,
    expected_nonce: &str,
    new_id: UserId,
) -> Result<Result<User, Refusal>, CoreError> {
    let outcome = decide(ctx, policy, claims, expected_nonce, new_id).await?;
    match &outcome {
        Ok(user) => {
            let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::Login)
                .actor_name(user.name.as_str(), CHANNEL)
                .detail(json!({
                    "method": "microsoft",
                    "user": user.id.to_string(),
                    "role": user.role.as_str(),
                    "tid": clip(&claims.tid),
                    "oid": clip(&claims.oid),
                    "mfa": claims.amr.iter().any(|a| a == "mfa"),
                }));
            ctx.store.append_audit(ev).await?;
        }
        Err(r) => record_refusal(ctx, *r, Some(claims)).await?,
    }
    Ok(outcome)
}

async fn decide(
    ctx: Ctx<'_>,
    policy: &Policy,
    claims: &IdClaims,
    expected_nonce: &str,
    new_id: UserId,
) -> Result<Result<User, Refusal>, CoreError> {
    if let Err(r) = check_claims(policy, claims, expected_nonce, ctx.clock.now()) {
        return Ok(Err(r));
    }
    let tid = claims.tid.to_ascii_lowercase();
    let oid = claims.oid.to_ascii_lowercase();
    let role = role_of(policy, claims);
    let companies = entitlement_of(policy, claims);
    let linked = ctx.store.signin_identity(&tid, &oid).await?;
    let existing = match linked {
        Some((id, suspended)) => ctx.store.get_user(id).await?.map(|u| (u, suspended)),
        None => None,
    };
    let now = ctx.clock.now();
    match (existing, role) {
        (None, Err(r)) => Ok(Err(r)),
        (None, Ok(role)) => {
            let user = User {
                id: new_id,
                name: user_name(claims, &oid, false),
                role,
                entitlement: companies.unwrap_or(Entitlement::Companies(Default::default())),
                disabled: false,
                password_hash: None,
                created_at: now,
            };
            let ev = |u: &User| {
                NewAuditEvent::system(now, AuditKind::UserAdded)
                    .actor_name("microsoft-signin", CHANNEL)
                    .detail(json!({
                        "user": u.id.to_string(), "name": u.name.as_str(), "role": u.role.as_str(),
                        "entitlement": u.entitlement.encode(), "tid": tid, "oid": oid,
                    }))
            };
            match ctx
                .store
                .signin_insert_user(&user, &tid, &oid, ev(&user))
                .await
            {
                Ok(()) => Ok(Ok(user)),
                Err(crate::ports::StoreError::Duplicate) => {
                    // The name is taken (a local user, or another tenant's person): keep it
                    // apart with the object id.
                    let user = User {
                        name: user_name(claims, &oid, true),
                        ..user
                    };
                    ctx.store
                        .signin_insert_user(&user, &tid, &oid, ev(&user))
                        .await?;
                    Ok(Ok(user))
                }
                Err(e) => Err(e.into()),
            }
        }
        (Some((user, suspended)), _) if user.disabled && !suspended => Ok(Err(Refusal::Disabled)),
        (Some((mut user, _)), Err(r)) => {
            // Removed from every mapped group: refused, and suspended until mapped again.
            if !user.disabled {
                user.disabled = true;
                let ev = changed(now, &user, "removed from the mapped groups");
                ctx.store
                    .signin_update_user(&user, &tid, &oid, true, ev)
                    .await?;
            }
            Ok(Err(r))
        }
        (Some((mut user, suspended)), Ok(role)) => {
            let before = (user.role, user.entitlement.clone(), user.disabled);
            user.role = role;
            if let Some(c) = companies {
                user.entitlement = c;
            }
            user.disabled = false;
            if before != (user.role, user.entitlement.clone(), user.disabled) || suspended {
                let ev = changed(now, &user, "mapped groups changed");
                ctx.store
                    .signin_update_user(&user, &tid, &oid, false, ev)
                    .await?;
            }
            Ok(Ok(user))
        }
    }
}

fn changed(now: crate::model::Timestamp, user: &User, why: &str) -> NewAuditEvent {
    NewAuditEvent::system(now, AuditKind::UserChanged)
        .actor_name("microsoft-signin", CHANNEL)
        .detail(json!({
            "user": user.id.to_string(), "name": user.name.as_str(), "role": user.role.as_str(),
            "entitlement": user.entitlement.encode(), "disabled": user.disabled, "why": why,
        }))
}

/// The new user's name: the `preferred_username` when it is a valid name (else `ms-` and the
/// object id), or with `-` and the object id's first 8 characters when `apart`.
fn user_name(claims: &IdClaims, oid: &str, apart: bool) -> UserName {
    let short: String = oid
        .chars()
        .filter(char::is_ascii_hexdigit)
        .take(8)
        .collect();
    let fallback = || {
        UserName::parse(&format!("ms-{short}"))
            .unwrap_or_else(|_| UserName::parse("ms-user").unwrap_or_else(|_| unreachable!()))
    };
    let base: String = claims.preferred_username.chars().take(50).collect();
    let name = if apart {
        format!("{base}-{short}")
    } else {
        base
    };
    UserName::parse(&name).unwrap_or_else(|_| fallback())
}
