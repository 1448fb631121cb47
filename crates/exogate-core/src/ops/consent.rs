//! OAuth admin-consent `state` values: issued for one user, session, company and purpose, valid
//! at most ten minutes, single use. Only the SHA-256 of the value is stored. The edge generates
//! the random value, sends it to Microsoft and hands it back here from the callback.

use serde_json::json;

use super::Ctx;
use super::companies::load;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{CoreError, Entity};
use crate::model::{
    Actor, CompanyId, ConsentPurpose, ConsentState, ExchangeAdminState, StatusRecord, TenantId,
    hash_token_secret,
};
use crate::policy;

/// The longest a consent `state` lives.
pub const MAX_TTL_SECS: i64 = 600;

/// Records a new `state` before redirecting to Microsoft. For `Authorize`, and for `Connect` on an
/// already connected company (reconnect), the consent is expected in the company's tenant.
pub async fn begin(
    ctx: Ctx<'_>,
    actor: &Actor,
    company: &CompanyId,
    purpose: ConsentPurpose,
    session_id: Option<&str>,
    state: &str,
    ttl_secs: i64,
) -> Result<ConsentState, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_connect(&actor.user, company).map_err(CoreError::forbidden)?;
    if state.len() < 32 {
        return Err(CoreError::invalid(
            "state",
            "the consent state must have at least 32 characters".to_owned(),
        ));
    }
    let c = load(ctx, company).await?;
    let expected_tenant = c.connection.as_ref().map(|c| c.tenant_id);
    if purpose == ConsentPurpose::Authorize && expected_tenant.is_none() {
        return Err(CoreError::conflict(crate::ConflictReason::NotConnected));
    }
    let now = ctx.clock.now();
    let st = ConsentState {
        state_hash: hash_token_secret(state),
        company: company.clone(),
        user: actor.user.id,
        session_id: session_id.map(str::to_owned),
        purpose,
        expected_tenant,
        created_at: now,
        expires_at: now.plus_secs(ttl_secs.clamp(1, MAX_TTL_SECS)),
        used_at: None,
    };
    ctx.store.insert_consent_state(&st).await?;
    Ok(st)
}

/// Consumes a `state` from the callback. It must be unused, unexpired, issued to this user (and
/// session, when it was bound to one); otherwise `consent_state_not_found`. If Microsoft names a
/// tenant other than the expected one, the company's status becomes `wrong_tenant` and the call
/// fails with `exchange_wrong_tenant`.
pub async fn finish(
    ctx: Ctx<'_>,
    actor: &Actor,
    session_id: Option<&str>,
    state: &str,
    callback_tenant: Option<TenantId>,
) -> Result<ConsentState, CoreError> {
    let now = ctx.clock.now();
    let Some(st) = ctx
        .store
        .consume_consent_state(&hash_token_secret(state), now)
        .await?
    else {
        return Err(CoreError::not_found(Entity::ConsentState, "state"));
    };
    let session_ok = st.session_id.is_none() || st.session_id.as_deref() == session_id;
    if st.user != actor.user.id || !session_ok {
        return Err(CoreError::not_found(Entity::ConsentState, "state"));
    }
    if let (Some(expected), Some(got)) = (st.expected_tenant, callback_tenant)
        && expected != got
    {
        let record = StatusRecord {
            state: ExchangeAdminState::WrongTenant,
            checked_at: now,
            last_good_at: None,
            last_good_state: None,
            detail: format!("consent callback named tenant {got}, expected {expected}"),
        };
        let ev = NewAuditEvent::new(now, AuditKind::StatusChecked, Some(actor)).company(&st.company).detail(json!({
            "tenant": expected.to_string(), "state": record.state.as_str(), "detail": record.detail,
        }));
        ctx.store
            .set_status(&st.company, expected, &record, ev)
            .await?;
        return Err(CoreError::NotConfigured {
            state: ExchangeAdminState::WrongTenant,
        });
    }
    Ok(st)
}
