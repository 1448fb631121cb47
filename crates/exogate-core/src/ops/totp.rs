//! The second factor of local accounts (TOTP with recovery codes, `crate::totp`): enrolment and
//! the check at sign-in. The edge draws the secret and the recovery codes; only the recovery
//! codes' hashes are stored, and each accepted TOTP step and recovery code is spent in the store
//! with a compare-and-set, so two replicas cannot both accept the same code.

use serde_json::json;

use super::Ctx;
use super::users::Admin;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::CoreError;
use crate::model::{Role, User};
use crate::totp::{self, CodeRefusal, TotpFactor, TotpSecret};

/// Whether `user` must give a second factor when `[signin] second_factor` is on: managers and
/// admins (who decide approvals and manage users).
pub fn required(policy_on: bool, user: &User) -> bool {
    policy_on && user.role >= Role::Manager
}

/// The outcome of the second-factor step of a local sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The user has no second factor.
    NotEnrolled,
    /// A TOTP code was accepted (its step is now spent).
    Totp,
    /// A recovery code was accepted (it is now spent).
    Recovery,
    Refused(CodeRefusal),
}

/// Checks `code` (a TOTP code, or a recovery code) for `user`.
pub async fn verify(ctx: Ctx<'_>, user: &User, code: &str) -> Result<Outcome, CoreError> {
    let Some(factor) = ctx.store.totp_get(user.id).await? else {
        return Ok(Outcome::NotEnrolled);
    };
    if code.trim().is_empty() {
        return Ok(Outcome::Refused(CodeRefusal::Malformed));
    }
    if totp::is_recovery_code(code) {
        let spent = ctx
            .store
            .totp_use_recovery(user.id, &totp::hash_recovery_code(code), ctx.clock.now())
            .await?;
        return Ok(if spent {
            Outcome::Recovery
        } else {
            Outcome::Refused(CodeRefusal::Wrong)
        });
    }
    match totp::check(
        factor.secret.expose(),
        code,
        ctx.clock.now(),
        factor.last_step,
    ) {
        Err(r) => Ok(Outcome::Refused(r)),
        // Another replica (or a replayed request) may have spent the step meanwhile.
        Ok(step) if ctx.store.totp_use_step(user.id, step).await? => Ok(Outcome::Totp),
        Ok(_) => Ok(Outcome::Refused(CodeRefusal::Reused)),
    }
}

/// Enrols (or re-enrols) `user` with `secret` and the recovery codes whose hashes are given.
/// `confirm` is a code from the person's app proving it holds the secret; the local operator
/// (the CLI on the server) enrols without one, showing the secret once.
pub async fn enrol(
    ctx: Ctx<'_>,
    by: Admin<'_>,
    user: &User,
    secret: TotpSecret,
    recovery_hashes: &[String],
    confirm: Option<&str>,
) -> Result<(), CoreError> {
    let last_step = match (by, confirm) {
        (Admin::User(a), Some(code)) if a.user.id == user.id => Some(
            totp::check(secret.expose(), code, ctx.clock.now(), None).map_err(|e| {
                CoreError::invalid("code", format!("{e}: enter the code your app shows now"))
            })?,
        ),
        (Admin::LocalOperator, None) => None,
        _ => {
            return Err(CoreError::invalid(
                "code",
                "enrol yourself with a code from your app, or ask the operator (`exogate user second-factor`)".to_owned(),
            ));
        }
    };
    let now = ctx.clock.now();
    let factor = TotpFactor {
        user: user.id,
        secret,
        last_step,
        created_at: now,
    };
    let ev = match by {
        Admin::User(a) => NewAuditEvent::new(now, AuditKind::UserChanged, Some(a)),
        Admin::LocalOperator => {
            NewAuditEvent::system(now, AuditKind::UserChanged).actor_name("local-operator", "cli")
        }
    }
    .detail(json!({
        "user": user.id.to_string(), "name": user.name.as_str(),
        "second_factor": "totp", "recovery_codes": recovery_hashes.len(),
    }));
    ctx.store.totp_enrol(&factor, recovery_hashes, ev).await?;
    Ok(())
}
