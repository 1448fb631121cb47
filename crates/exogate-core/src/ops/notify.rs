//! Notification settings and the delivery list: who may set an e-mail address, manage webhook
//! endpoints and see deliveries. Routing itself is [`crate::notifications::route`].

use base64::Engine as _;
use serde_json::json;

use super::Ctx;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{CoreError, Denial, Entity};
use crate::model::{Actor, CompanyId, Role, UserId};
use crate::notifications::{Delivery, DeliveryState, Topics, UserNotify, Webhook, WebhookFormat};
use crate::policy;
use crate::text;

/// The most deliveries one listing returns.
pub const MAX_LIST: u32 = 500;

/// A user's own settings, or anyone's for an admin.
fn may_manage_user(actor: &Actor, user: UserId) -> Result<(), CoreError> {
    if actor.user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    if actor.user.id != user && actor.user.role < Role::Admin {
        return Err(CoreError::forbidden(Denial::RoleTooLow {
            needed: Role::Admin,
        }));
    }
    Ok(())
}

/// Checks an e-mail address: one `@`, a local part and a dotted domain, no spaces or controls,
/// at most 254 characters.
pub fn parse_email(s: &str) -> Result<String, CoreError> {
    let s = s.trim();
    let bad = || {
        CoreError::invalid(
            "email",
            format!("`{}` is not an e-mail address", text::capped(s, 64)),
        )
    };
    if s.is_empty()
        || s.len() > 254
        || s.chars()
            .any(|c| c.is_whitespace() || text::is_hidden(c) || "<>\"(),;:\\[]".contains(c))
    {
        return Err(bad());
    }
    let (local, domain) = s.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(bad());
    }
    Ok(s.to_owned())
}

/// A user's e-mail settings (none set: no address, every topic).
pub async fn user_settings(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
) -> Result<UserNotify, CoreError> {
    may_manage_user(actor, user)?;
    if ctx.store.get_user(user).await?.is_none() {
        return Err(CoreError::not_found(Entity::User, user));
    }
    Ok(ctx
        .store
        .notify_get_user(user)
        .await?
        .unwrap_or(UserNotify {
            user,
            email: None,
            topics: Topics::all(),
        }))
}

/// Sets a user's e-mail address (None: no mail) and topics: the user themself or an admin.
pub async fn set_user_settings(
    ctx: Ctx<'_>,
    actor: &Actor,
    user: UserId,
    email: Option<&str>,
    topics: Topics,
) -> Result<UserNotify, CoreError> {
    may_manage_user(actor, user)?;
    let target = ctx
        .store
        .get_user(user)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::User, user))?;
    let email = email
        .filter(|e| !e.trim().is_empty())
        .map(parse_email)
        .transpose()?;
    let settings = UserNotify {
        user,
        email,
        topics,
    };
    let ev = NewAuditEvent::new(
        ctx.clock.now(),
        AuditKind::NotifySettingsChanged,
        Some(actor),
    )
    .detail(json!({
        "user": target.name.to_string(),
        "email": settings.email,
        "topics": settings.topics.encode(),
    }));
    ctx.store
        .notify_set_user(&settings, ctx.clock.now(), ev)
        .await?;
    Ok(settings)
}

/// Checks a Standard Webhooks signing secret: `whsec_` and base64 of 24 to 64 bytes.
pub fn parse_secret(s: &str) -> Result<Vec<u8>, CoreError> {
    let bad = || {
        CoreError::invalid(
            "secret",
            "a webhook secret is `whsec_` followed by the base64 of 24 to 64 random bytes"
                .to_owned(),
        )
    };
    let b64 = s.trim().strip_prefix("whsec_").ok_or_else(bad)?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad())?;
    if !(24..=64).contains(&key.len()) {
        return Err(bad());
    }
    Ok(key)
}

/// What adding a webhook takes. `id` and `secret` come from the edge (randomness).
#[derive(Clone)]
pub struct NewWebhook {
    pub id: String,
    pub company: Option<CompanyId>,
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    pub secret: String,
}

fn check_url(url: &str) -> Result<(), CoreError> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2000
        && url.len() > "http://".len()
        && !url.chars().any(|c| c.is_whitespace() || text::is_hidden(c));
    if ok {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "url",
            format!("`{}` is not an http(s) URL", text::capped(url, 64)),
        ))
    }
}

/// (hardening) Whether a webhook URL's host may be sent to: the edge resolves it and checks
/// every address with [`crate::outbound::check`] (no I/O here).
#[async_trait::async_trait]
pub trait TargetCheck: Send + Sync {
    async fn check_url(&self, url: &str) -> Result<(), CoreError>;
}

/// Adds a webhook endpoint: an admin, entitled to its company (a global one needs every
/// company), in person or through the API, never through MCP. Its URL must pass `targets`
/// (after the caller's rights are checked, so nobody else can make exogate resolve names).
pub async fn add_webhook(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: NewWebhook,
    targets: &dyn TargetCheck,
) -> Result<Webhook, CoreError> {
    policy::can_admin(&actor.user).map_err(CoreError::forbidden)?;
    if actor.channel.is_mcp() {
        return Err(CoreError::forbidden(Denial::DecisionViaMcp));
    }
    match &input.company {
        Some(c) => {
            policy::can_view(&actor.user, c).map_err(CoreError::forbidden)?;
            if ctx.store.get_company(c).await?.is_none() {
                return Err(CoreError::not_found(Entity::Company, c));
            }
        }
        None => {
            if actor.user.entitlement != crate::model::Entitlement::All {
                return Err(CoreError::forbidden(Denial::NotEntitled));
            }
        }
    }
    check_url(&input.url)?;
    parse_secret(&input.secret)?;
    targets.check_url(&input.url).await?;
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 || text::first_hidden(name).is_some() {
        return Err(CoreError::invalid(
            "name",
            "a webhook name is 1 to 100 visible characters".to_owned(),
        ));
    }
    let w = Webhook {
        id: input.id,
        company: input.company,
        name: name.to_owned(),
        url: input.url,
        format: input.format,
        secret: input.secret,
        created_at: ctx.clock.now(),
    };
    let mut ev = NewAuditEvent::new(ctx.clock.now(), AuditKind::WebhookAdded, Some(actor)).detail(
        json!({ "webhook": w.id, "name": w.name, "url": w.url, "format": w.format.as_str() }),
    );
    if let Some(c) = &w.company {
        ev = ev.company(c);
    }
    ctx.store.webhook_insert(&w, ev).await?;
    Ok(w)
}

/// The endpoints an admin may see: global ones and those of companies they are entitled to.
pub async fn list_webhooks(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Webhook>, CoreError> {
    policy::can_admin(&actor.user).map_err(CoreError::forbidden)?;
    Ok(ctx
        .store
        .webhook_list()
        .await?
        .into_iter()
        .filter(|w| {
            w.company
                .as_ref()
                .is_none_or(|c| actor.user.entitlement.covers(c))
        })
        .collect())
}

/// Removes an endpoint (an admin entitled to its company, not through MCP).
pub async fn remove_webhook(ctx: Ctx<'_>, actor: &Actor, id: &str) -> Result<(), CoreError> {
    policy::can_admin(&actor.user).map_err(CoreError::forbidden)?;
    if actor.channel.is_mcp() {
        return Err(CoreError::forbidden(Denial::DecisionViaMcp));
    }
    let w = ctx
        .store
        .webhook_get(id)
        .await?
        .filter(|w| {
            w.company
                .as_ref()
                .is_none_or(|c| actor.user.entitlement.covers(c))
        })
        .ok_or_else(|| CoreError::not_found(Entity::Webhook, text::capped(id, 64)))?;
    let mut ev = NewAuditEvent::new(ctx.clock.now(), AuditKind::WebhookRemoved, Some(actor))
        .detail(json!({ "webhook": w.id, "name": w.name }));
    if let Some(c) = &w.company {
        ev = ev.company(c);
    }
    ctx.store.webhook_delete(&w.id, ev).await?;
    Ok(())
}

/// The newest deliveries (admins only), limited to companies the admin is entitled to.
pub async fn list_deliveries(
    ctx: Ctx<'_>,
    actor: &Actor,
    state: Option<DeliveryState>,
    limit: u32,
) -> Result<Vec<Delivery>, CoreError> {
    policy::can_admin(&actor.user).map_err(CoreError::forbidden)?;
    Ok(ctx
        .store
        .outbox_list(state, limit.clamp(1, MAX_LIST))
        .await?
        .into_iter()
        .filter(|d| {
            d.company.as_deref().is_none_or(|c| {
                CompanyId::parse(c).is_ok_and(|c| actor.user.entitlement.covers(&c))
            })
        })
        .collect())
}
