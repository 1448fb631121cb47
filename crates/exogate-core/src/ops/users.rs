//! Users and API tokens. Password hashing (argon2) happens at the edge; here the PHC string is
//! only stored. Token secrets are generated at the edge and only their SHA-256 is stored.

use serde_json::json;

use super::Ctx;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{CoreError, Denial, Entity};
use crate::model::{
    Actor, ApiToken, ApiTokenId, Channel, Entitlement, PasswordHash, Role, User, UserId, UserName,
    hash_token_secret, parse_label,
};
use crate::policy;

/// Who performs an administrative change: a user, or the local operator (the CLI run on the
/// server with direct access to the database, e.g. to create the first admin).
#[derive(Clone, Copy, Debug)]
pub enum Admin<'a> {
    User(&'a Actor),
    LocalOperator,
}

impl<'a> Admin<'a> {
    fn check(self) -> Result<Option<&'a Actor>, CoreError> {
        match self {
            Admin::User(a) => {
                policy::can_admin(&a.user).map_err(CoreError::forbidden)?;
                Ok(Some(a))
            }
            Admin::LocalOperator => Ok(None),
        }
    }
}

fn admin_event(ctx: Ctx<'_>, kind: AuditKind, actor: Option<&Actor>) -> NewAuditEvent {
    let ev = NewAuditEvent::new(ctx.clock.now(), kind, actor);
    if actor.is_none() {
        ev.actor_name("local-operator", "cli")
    } else {
        ev
    }
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: UserId,
    pub name: UserName,
    pub role: Role,
    pub entitlement: Entitlement,
    pub password_hash: Option<PasswordHash>,
}

pub async fn add_user(ctx: Ctx<'_>, by: Admin<'_>, input: NewUser) -> Result<User, CoreError> {
    let actor = by.check()?;
    let user = User {
        id: input.id,
        name: input.name,
        role: input.role,
        entitlement: input.entitlement,
        disabled: false,
        password_hash: input.password_hash,
        created_at: ctx.clock.now(),
    };
    let ev = admin_event(ctx, AuditKind::UserAdded, actor).detail(json!({
        "user": user.id.to_string(), "name": user.name.as_str(), "role": user.role.as_str(), "entitlement": user.entitlement.encode(),
    }));
    ctx.store.insert_user(&user, ev).await?;
    Ok(user)
}

pub async fn list_users(ctx: Ctx<'_>, by: Admin<'_>) -> Result<Vec<User>, CoreError> {
    by.check()?;
    Ok(ctx.store.list_users().await?)
}

pub async fn find_user(ctx: Ctx<'_>, name: &UserName) -> Result<User, CoreError> {
    ctx.store
        .get_user_by_name(name)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::User, name))
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserUpdate {
    pub role: Option<Role>,
    pub entitlement: Option<Entitlement>,
    pub disabled: Option<bool>,
    pub password_hash: Option<PasswordHash>,
}

pub async fn update_user(
    ctx: Ctx<'_>,
    by: Admin<'_>,
    name: &UserName,
    change: UserUpdate,
) -> Result<User, CoreError> {
    let actor = by.check()?;
    let mut user = find_user(ctx, name).await?;
    if let Some(r) = change.role {
        user.role = r;
    }
    if let Some(e) = change.entitlement {
        user.entitlement = e;
    }
    if let Some(d) = change.disabled {
        user.disabled = d;
    }
    let password_changed = change.password_hash.is_some();
    if let Some(p) = change.password_hash {
        user.password_hash = Some(p);
    }
    let ev = admin_event(ctx, AuditKind::UserChanged, actor).detail(json!({
        "user": user.id.to_string(), "name": user.name.as_str(), "role": user.role.as_str(),
        "entitlement": user.entitlement.encode(), "disabled": user.disabled, "password_changed": password_changed,
    }));
    ctx.store.update_user(&user, ev).await?;
    Ok(user)
}

/// Records a login attempt (the edge checked the password).
pub async fn record_login(
    ctx: Ctx<'_>,
    name: &str,
    channel: &Channel,
    ok: bool,
) -> Result<(), CoreError> {
    let kind = if ok {
        AuditKind::Login
    } else {
        AuditKind::LoginFailed
    };
    let shown = crate::model::clip(name);
    let ev = NewAuditEvent::system(ctx.clock.now(), kind).actor_name(&shown, &channel.to_string());
    ctx.store.append_audit(ev).await?;
    Ok(())
}

/// Records, as one `auth.login_failed` event of the system, `count` failed or refused logins
/// between `first` and `last` that the edge did not record one by one (it bounds the audit rows
/// a login flood can write).
pub async fn record_unrecorded_login_failures(
    ctx: Ctx<'_>,
    count: u64,
    first: crate::model::Timestamp,
    last: crate::model::Timestamp,
) -> Result<(), CoreError> {
    let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::LoginFailed).detail(json!({
        "unrecorded_failures": count,
        "first_at": first.to_string(),
        "last_at": last.to_string(),
    }));
    ctx.store.append_audit(ev).await?;
    Ok(())
}

/// Creates an API token for `owner` (oneself, or anyone for an admin). `secret` is the random
/// value shown once to the user; only its hash is stored.
pub async fn create_token(
    ctx: Ctx<'_>,
    by: Admin<'_>,
    id: ApiTokenId,
    owner: &UserName,
    name: &str,
    secret: &str,
) -> Result<ApiToken, CoreError> {
    let owner_user = find_user(ctx, owner).await?;
    let actor = match by {
        Admin::User(a) if a.user.id == owner_user.id && !a.user.disabled => Some(a),
        other => other.check()?,
    };
    if secret.len() < 32 {
        return Err(CoreError::invalid(
            "secret",
            "API token secrets must have at least 32 characters".to_owned(),
        ));
    }
    let token = ApiToken {
        id,
        owner: owner_user.id,
        name: parse_label("name", name, 100)?,
        secret_hash: hash_token_secret(secret),
        created_at: ctx.clock.now(),
        last_used_at: None,
        revoked_at: None,
    };
    let ev = admin_event(ctx, AuditKind::TokenCreated, actor).detail(
        json!({ "token": id.to_string(), "owner": owner_user.name.as_str(), "name": token.name }),
    );
    ctx.store.insert_token(&token, ev).await?;
    Ok(token)
}

/// Tokens of `owner` (oneself, or anyone for an admin), or all tokens for an admin.
pub async fn list_tokens(
    ctx: Ctx<'_>,
    by: Admin<'_>,
    owner: Option<&UserName>,
) -> Result<Vec<ApiToken>, CoreError> {
    let owner_user = match owner {
        Some(n) => Some(find_user(ctx, n).await?),
        None => None,
    };
    match (by, &owner_user) {
        (Admin::User(a), Some(o)) if a.user.id == o.id => {}
        _ => {
            by.check()?;
        }
    }
    Ok(ctx.store.list_tokens(owner_user.map(|u| u.id)).await?)
}

pub async fn revoke_token(
    ctx: Ctx<'_>,
    by: Admin<'_>,
    id: ApiTokenId,
) -> Result<ApiToken, CoreError> {
    let token = ctx
        .store
        .get_token(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::ApiToken, id))?;
    let actor = match by {
        Admin::User(a) if a.user.id == token.owner => Some(a),
        other => other.check()?,
    };
    let now = ctx.clock.now();
    let ev =
        admin_event(ctx, AuditKind::TokenRevoked, actor).detail(json!({ "token": id.to_string() }));
    ctx.store.revoke_token(id, now, ev).await?;
    ctx.store
        .get_token(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::ApiToken, id))
}

/// How stale an API token's `last_used_at` may get before a call refreshes it.
pub const TOKEN_TOUCH_EVERY_MS: i64 = 60_000;

/// Authenticates an agent by token secret: the token must exist and be unrevoked and its owner
/// active. Returns the owner acting through MCP.
pub async fn authenticate_token(
    ctx: Ctx<'_>,
    secret: &str,
    agent: Option<&str>,
) -> Result<Actor, CoreError> {
    let hash = hash_token_secret(secret);
    let token = ctx.store.get_token_by_hash(&hash).await?;
    let Some(token) = token.filter(|t| t.revoked_at.is_none()) else {
        return Err(CoreError::forbidden(Denial::TokenRevoked));
    };
    let user = ctx
        .store
        .get_user(token.owner)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::User, token.owner))?;
    if user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    // "Last used" to the minute: a busy agent does not write to the database on every call.
    let now = ctx.clock.now();
    if token
        .last_used_at
        .is_none_or(|t| now.unix_millis() - t.unix_millis() >= TOKEN_TOUCH_EVERY_MS)
    {
        ctx.store.touch_token(token.id, now).await?;
    }
    let agent = match agent {
        Some(a) => parse_label("agent", a, 100).ok(),
        None => None,
    };
    Ok(Actor {
        user,
        channel: Channel::Mcp {
            token: token.id,
            agent,
        },
    })
}

// (msft-signin)
/// Records a refused local login whose password was right but whose second factor was not
/// (`reason`: `second_factor_failed` or `second_factor_not_enrolled`).
pub async fn record_second_factor_refusal(
    ctx: Ctx<'_>,
    name: &str,
    channel: &Channel,
    reason: &str,
) -> Result<(), CoreError> {
    let shown = crate::model::clip(name);
    let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::LoginFailed)
        .actor_name(&shown, &channel.to_string())
        .detail(json!({ "reason": crate::model::clip(reason) }));
    ctx.store.append_audit(ev).await?;
    Ok(())
}

// (hardening)
/// Records the first refused attempt of a stretch of lock-outs of the user name `name`
/// (`auth.login_failed` with `detail.reason = "locked_out"` and the seconds left), once per
/// stretch whichever process refused it.
pub async fn record_locked_out(
    ctx: Ctx<'_>,
    name: &str,
    channel: &Channel,
    wait_secs: u64,
) -> Result<(), CoreError> {
    let shown = crate::model::clip(name);
    let ev = NewAuditEvent::system(ctx.clock.now(), AuditKind::LoginFailed)
        .actor_name(&shown, &channel.to_string())
        .detail(json!({ "reason": "locked_out", "retry_after_seconds": wait_secs }));
    ctx.store.append_audit(ev).await?;
    Ok(())
}
