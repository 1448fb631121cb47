//! The OAuth flows over the `Store` (rules in [`crate::oauth`]): client registration, consent
//! (a code for the signed-in person), the token endpoint's two grants, access-token checks on
//! `/mcp`, and the person's list and revocation of their grants. Secrets and ids come from the
//! edge; only hashes are stored. Every grant and every revocation is audited.

use serde_json::json;

use super::Ctx;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{CoreError, Denial, Entity};
use crate::model::{Actor, ApiTokenId, Channel, Timestamp, User, hash_token_secret, parse_label};
use crate::oauth::{
    Lifetimes, OAuthClient, OAuthCode, OAuthError, OAuthGrant, OAuthToken, TokenKind,
    challenge_well_formed, pkce_s256_ok, redirect_uri_acceptable, redirect_uri_matches,
    resource_matches,
};

/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;

/// What a client says about itself (a registration request or a metadata document).
#[derive(Clone, Debug)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Vec<String>,
}

/// Checks client metadata: 1 to [`MAX_REDIRECT_URIS`] acceptable redirect URIs and a name (the
/// client id when none is given), returning the name and the URIs.
pub fn check_client_metadata(
    client_id: &str,
    m: &ClientMetadata,
) -> Result<(String, Vec<String>), OAuthError> {
    if m.redirect_uris.is_empty() || m.redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(OAuthError::InvalidClient(format!(
            "a client needs 1 to {MAX_REDIRECT_URIS} redirect URIs"
        )));
    }
    if let Some(bad) = m.redirect_uris.iter().find(|u| !redirect_uri_acceptable(u)) {
        return Err(OAuthError::InvalidClient(format!(
            "redirect URI `{}` is neither https nor http on a loopback host",
            crate::model::clip(bad)
        )));
    }
    let name = m
        .client_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(client_id);
    let name = crate::text::tenant_text(
        &parse_label("client_name", name, 100)
            .map_err(|e| OAuthError::InvalidClient(e.to_string()))?,
    );
    Ok((name, m.redirect_uris.clone()))
}

/// (hardening) Bounds on registered clients that never completed an authorization (`[oauth]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationLimits {
    /// At most this many unused registrations at once; more are refused.
    pub max_unused: u64,
    /// An unused registration older than this is deleted.
    pub unused_secs: i64,
}

/// Registers a client (RFC 7591) under the id the edge chose. Unused registrations older than
/// `limits.unused_secs` are deleted first; when `limits.max_unused` remain, it is refused
/// ([`OAuthError::TooManyClients`]).
pub async fn register_client(
    ctx: Ctx<'_>,
    client_id: &str,
    m: &ClientMetadata,
    limits: RegistrationLimits,
) -> Result<OAuthClient, OAuthError> {
    let (name, redirect_uris) = check_client_metadata(client_id, m)?;
    let now = ctx.clock.now();
    ctx.store
        .oauth_prune_unused_clients(now.plus_secs(-limits.unused_secs))
        .await?;
    if ctx.store.oauth_count_unused_clients().await? >= limits.max_unused {
        return Err(OAuthError::TooManyClients);
    }
    let client = OAuthClient {
        client_id: client_id.to_owned(),
        name,
        redirect_uris,
        created_at: ctx.clock.now(),
    };
    ctx.store.oauth_insert_client(&client).await?;
    Ok(client)
}

/// An authorization request (the query of `/oauth/authorize`).
#[derive(Clone, Debug, Default)]
pub struct AuthorizeRequest {
    pub response_type: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub resource: Option<String>,
}

/// Checks an authorization request for `client` against this server's `resource`. The redirect
/// URI is checked first: until it is known to be the client's, nothing may be sent there.
pub fn check_authorize(
    client: &OAuthClient,
    req: &AuthorizeRequest,
    resource: &str,
) -> Result<(), OAuthError> {
    if !redirect_uri_matches(&client.redirect_uris, &req.redirect_uri) {
        return Err(OAuthError::RedirectUriNotRegistered);
    }
    if req.response_type != "code" {
        return Err(OAuthError::InvalidRequest(
            "response_type must be `code`".into(),
        ));
    }
    if req.code_challenge_method != "S256" || !challenge_well_formed(&req.code_challenge) {
        return Err(OAuthError::InvalidRequest(
            "PKCE with code_challenge_method=S256 and a 43-character code_challenge is required"
                .into(),
        ));
    }
    if let Some(r) = &req.resource
        && !resource_matches(resource, r)
    {
        return Err(OAuthError::InvalidTarget);
    }
    Ok(())
}

/// The signed-in person consented: stores a code for them (`code` is the random secret the
/// edge sends to the redirect URI). The request must pass [`check_authorize`] again.
pub async fn consent(
    ctx: Ctx<'_>,
    person: &Actor,
    client: &OAuthClient,
    req: &AuthorizeRequest,
    resource: &str,
    code: &str,
    lifetimes: Lifetimes,
) -> Result<(), OAuthError> {
    check_authorize(client, req, resource)?;
    if person.user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled).into());
    }
    let now = ctx.clock.now();
    ctx.store
        .oauth_insert_code(&OAuthCode {
            code_hash: hash_token_secret(code),
            client_id: client.client_id.clone(),
            client_name: client.name.clone(),
            user: person.user.id,
            redirect_uri: req.redirect_uri.clone(),
            code_challenge: req.code_challenge.clone(),
            resource: resource.to_owned(),
            created_at: now,
            expires_at: now.plus_secs(lifetimes.code_secs),
            used_at: None,
        })
        .await?;
    Ok(())
}

/// The secrets of a new token pair (made at the edge) and the new grant's id. `Debug` redacts
/// the secrets.
#[derive(Clone)]
pub struct NewTokens<'a> {
    pub grant: ApiTokenId,
    pub access: &'a str,
    pub refresh: &'a str,
}

impl std::fmt::Debug for NewTokens<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTokens")
            .field("grant", &self.grant)
            .field("access", &"<redacted>")
            .field("refresh", &"<redacted>")
            .finish()
    }
}

/// What the token endpoint answers.
#[derive(Clone, Debug)]
pub struct Issued {
    pub grant: ApiTokenId,
    pub expires_in: i64,
}

fn token_pair(
    grant: ApiTokenId,
    new: &NewTokens<'_>,
    now: Timestamp,
    l: Lifetimes,
) -> [OAuthToken; 2] {
    [
        OAuthToken {
            token_hash: hash_token_secret(new.access),
            grant,
            kind: TokenKind::Access,
            created_at: now,
            expires_at: now.plus_secs(l.access_secs),
            used_at: None,
        },
        OAuthToken {
            token_hash: hash_token_secret(new.refresh),
            grant,
            kind: TokenKind::Refresh,
            created_at: now,
            expires_at: now.plus_secs(l.refresh_secs),
            used_at: None,
        },
    ]
}

/// The `authorization_code` grant: the code is used up whatever follows (single use), then it
/// must be unexpired and match the client, the redirect URI (exactly as sent at authorization),
/// the PKCE verifier and the resource. Creates the grant and its first tokens, audited.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_code(
    ctx: Ctx<'_>,
    code: &str,
    client_id: &str,
    redirect_uri: &str,
    verifier: &str,
    resource: Option<&str>,
    new: &NewTokens<'_>,
    l: Lifetimes,
) -> Result<Issued, OAuthError> {
    let now = ctx.clock.now();
    let code_hash = hash_token_secret(code);
    let Some(c) = ctx.store.oauth_use_code(&code_hash, now).await? else {
        // A code presented again: whoever holds it now may have stolen it, so the grant made
        // from it goes (RFC 6749 §4.1.2).
        if let Some(g) = ctx.store.oauth_grant_by_code(&code_hash).await?
            && g.revoked_at.is_none()
        {
            revoke_family(ctx, &g, now, "code_reused").await?;
        }
        return Err(OAuthError::InvalidGrant("the code is unknown or used"));
    };
    if now >= c.expires_at {
        return Err(OAuthError::InvalidGrant("the code has expired"));
    }
    if c.client_id != client_id {
        return Err(OAuthError::InvalidGrant(
            "the code was issued to another client",
        ));
    }
    if c.redirect_uri != redirect_uri {
        return Err(OAuthError::InvalidGrant(
            "the redirect URI differs from the authorization request's",
        ));
    }
    if !pkce_s256_ok(verifier, &c.code_challenge) {
        return Err(OAuthError::InvalidGrant("the PKCE verifier does not match"));
    }
    if resource.is_some_and(|r| !resource_matches(&c.resource, r)) {
        return Err(OAuthError::InvalidTarget);
    }
    let user = ctx
        .store
        .get_user(c.user)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::User, c.user))?;
    if user.disabled {
        return Err(OAuthError::InvalidGrant(
            "the person who consented is disabled",
        ));
    }
    let grant = OAuthGrant {
        id: new.grant,
        user: c.user,
        client_id: c.client_id.clone(),
        client_name: c.client_name.clone(),
        resource: c.resource.clone(),
        code_hash: c.code_hash.clone(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let ev = person_event(now, AuditKind::OAuthGrantCreated, &user).detail(json!({
        "grant": grant.id.to_string(), "client_id": grant.client_id, "client_name": grant.client_name,
        "resource": grant.resource,
    }));
    ctx.store
        .oauth_insert_grant(&grant, &token_pair(grant.id, new, now, l), ev)
        .await?;
    Ok(Issued {
        grant: grant.id,
        expires_in: l.access_secs,
    })
}

fn person_event(at: Timestamp, kind: AuditKind, user: &User) -> NewAuditEvent {
    NewAuditEvent::system(at, kind).actor_name(user.name.as_str(), "web")
}

/// The `refresh_token` grant: rotates the refresh token. A refresh token presented after it
/// was rotated revokes its whole family (the grant), audited; so does a lost race between two
/// uses of one token.
pub async fn refresh(
    ctx: Ctx<'_>,
    refresh_token: &str,
    client_id: &str,
    resource: Option<&str>,
    new: &NewTokens<'_>,
    l: Lifetimes,
) -> Result<Issued, OAuthError> {
    let now = ctx.clock.now();
    let hash = hash_token_secret(refresh_token);
    let Some((t, grant)) = ctx.store.oauth_get_token(&hash).await? else {
        return Err(OAuthError::InvalidGrant("the refresh token is unknown"));
    };
    if t.kind != TokenKind::Refresh || grant.client_id != client_id {
        return Err(OAuthError::InvalidGrant("the refresh token is unknown"));
    }
    if grant.revoked_at.is_some() {
        return Err(OAuthError::InvalidGrant("the grant was revoked"));
    }
    if resource.is_some_and(|r| !resource_matches(&grant.resource, r)) {
        return Err(OAuthError::InvalidTarget);
    }
    if t.used_at.is_some() {
        revoke_family(ctx, &grant, now, "refresh_token_reused").await?;
        return Err(OAuthError::InvalidGrant(
            "the refresh token was already used; the grant is revoked",
        ));
    }
    if now >= t.expires_at {
        return Err(OAuthError::InvalidGrant("the refresh token has expired"));
    }
    let user = ctx.store.get_user(grant.user).await?;
    if user.is_none_or(|u| u.disabled) {
        return Err(OAuthError::InvalidGrant(
            "the person who consented is disabled",
        ));
    }
    let pair = token_pair(grant.id, new, now, l);
    if !ctx.store.oauth_rotate(&hash, now, &pair).await? {
        revoke_family(ctx, &grant, now, "refresh_token_reused").await?;
        return Err(OAuthError::InvalidGrant(
            "the refresh token was already used; the grant is revoked",
        ));
    }
    Ok(Issued {
        grant: grant.id,
        expires_in: l.access_secs,
    })
}

async fn revoke_family(
    ctx: Ctx<'_>,
    grant: &OAuthGrant,
    now: Timestamp,
    reason: &str,
) -> Result<(), OAuthError> {
    let ev = NewAuditEvent::system(now, AuditKind::OAuthFamilyRevoked).detail(json!({
        "grant": grant.id.to_string(), "client_id": grant.client_id, "user": grant.user.to_string(),
        "reason": reason,
    }));
    ctx.store.oauth_revoke_grant(grant.id, now, ev).await?;
    Ok(())
}

/// How stale a grant's `last_used_at` may get before a call refreshes it.
pub const GRANT_TOUCH_EVERY_MS: i64 = 60_000;

/// Authenticates an OAuth access token for `resource` (this server's MCP endpoint): the token
/// must be an unexpired access token of an unrevoked grant for that resource, its person
/// active. Returns the person acting through MCP, with the grant as the channel's token.
/// `Ok(None)` when no OAuth token has this secret (it may be an API token).
pub async fn authenticate_access(
    ctx: Ctx<'_>,
    secret: &str,
    resource: &str,
) -> Result<Option<Actor>, CoreError> {
    let Some((t, grant)) = ctx
        .store
        .oauth_get_token(&hash_token_secret(secret))
        .await?
    else {
        return Ok(None);
    };
    let now = ctx.clock.now();
    if t.kind != TokenKind::Access
        || now >= t.expires_at
        || grant.revoked_at.is_some()
        || !resource_matches(resource, &grant.resource)
    {
        return Err(CoreError::forbidden(Denial::TokenRevoked));
    }
    let user = ctx
        .store
        .get_user(grant.user)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::User, grant.user))?;
    if user.disabled {
        return Err(CoreError::forbidden(Denial::UserDisabled));
    }
    if grant
        .last_used_at
        .is_none_or(|t| now.unix_millis() - t.unix_millis() >= GRANT_TOUCH_EVERY_MS)
    {
        ctx.store.oauth_touch_grant(grant.id, now).await?;
    }
    Ok(Some(Actor {
        user,
        channel: Channel::Mcp {
            token: grant.id,
            agent: parse_label("agent", &grant.client_name, 100).ok(),
        },
    }))
}

/// The signed-in person's grants, newest first (revoked ones included).
pub async fn list_grants(ctx: Ctx<'_>, person: &Actor) -> Result<Vec<OAuthGrant>, CoreError> {
    Ok(ctx.store.oauth_list_grants(person.user.id).await?)
}

/// Revokes one of the person's own grants, at once and audited. Another person's grant is
/// `not_found`, as if it did not exist.
pub async fn revoke_grant(
    ctx: Ctx<'_>,
    person: &Actor,
    id: ApiTokenId,
) -> Result<OAuthGrant, CoreError> {
    let grant = ctx
        .store
        .oauth_get_grant(id)
        .await?
        .filter(|g| g.user == person.user.id)
        .ok_or_else(|| CoreError::not_found(Entity::ApiToken, id))?;
    if grant.revoked_at.is_none() {
        let now = ctx.clock.now();
        let ev = NewAuditEvent::new(now, AuditKind::OAuthGrantRevoked, Some(person)).detail(
            json!({ "grant": id.to_string(), "client_id": grant.client_id, "client_name": grant.client_name }),
        );
        ctx.store.oauth_revoke_grant(id, now, ev).await?;
    }
    ctx.store
        .oauth_get_grant(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::ApiToken, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_token_secrets_are_redacted() {
        let t = NewTokens {
            grant: ApiTokenId::from_uuid(uuid::Uuid::nil()),
            access: "access-secret-value",
            refresh: "refresh-secret-value",
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("secret-value"), "{shown}");
    }
}
