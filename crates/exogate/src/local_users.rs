//! Adding a local user with a password as the local operator: the CLI's `user add` and the
//! demo's seed.

use exogate_core::CoreError;
use exogate_core::model::{Entitlement, PasswordHash, Role, User, UserId, UserName};
use exogate_core::ops::Ctx;
use exogate_core::ops::users::{Admin, NewUser};

/// Why a local user was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    /// The core refused the user (name taken, …).
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The password could not be hashed.
    #[error(transparent)]
    Hash(anyhow::Error),
}

/// Hashes `password` and adds the user under a new id.
pub async fn add_with_password(
    ctx: Ctx<'_>,
    name: UserName,
    role: Role,
    entitlement: Entitlement,
    password: &str,
) -> Result<User, AddUserError> {
    let hash = crate::passwords::hash_password_async(password.to_owned())
        .await
        .map_err(AddUserError::Hash)?;
    let user = exogate_core::ops::users::add_user(
        ctx,
        Admin::LocalOperator,
        NewUser {
            id: UserId::from_uuid(uuid::Uuid::now_v7()),
            name,
            role,
            entitlement,
            password_hash: Some(PasswordHash::new(hash)),
        },
    )
    .await?;
    Ok(user)
}

// (msft-signin)
/// A second factor just enrolled: what to show once.
pub struct Enrolled {
    pub uri: String,
    pub secret: String,
    pub recovery_codes: Vec<String>,
}

/// Enrols `user`'s TOTP factor as the local operator: a fresh 20-byte secret and ten recovery
/// codes (only their hashes are stored).
pub async fn enrol_second_factor(
    ctx: exogate_core::ops::Ctx<'_>,
    user: &exogate_core::User,
) -> Result<Enrolled, exogate_core::CoreError> {
    use exogate_core::totp;
    let secret = new_totp_secret();
    let recovery_codes = new_recovery_codes();
    let hashes: Vec<String> = recovery_codes
        .iter()
        .map(|c| totp::hash_recovery_code(c))
        .collect();
    let uri = totp::otpauth_uri(user.name.as_str(), &secret);
    let b32 = totp::base32(&secret);
    exogate_core::ops::totp::enrol(
        ctx,
        exogate_core::ops::users::Admin::LocalOperator,
        user,
        totp::TotpSecret::new(secret),
        &hashes,
        None,
    )
    .await?;
    Ok(Enrolled {
        uri,
        secret: b32,
        recovery_codes,
    })
}

/// A fresh TOTP secret: 20 random bytes (160 bits, as RFC 4226 recommends).
pub fn new_totp_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 20];
    rand::fill(&mut secret[..]);
    secret
}

/// Ten fresh recovery codes, 64 random bits each, as `xxxx-xxxx-xxxx-xxxx` (hex).
pub fn new_recovery_codes() -> Vec<String> {
    (0..10)
        .map(|_| {
            let mut b = [0u8; 8];
            rand::fill(&mut b[..]);
            let s = hex::encode(b);
            format!("{}-{}-{}-{}", &s[..4], &s[4..8], &s[8..12], &s[12..])
        })
        .collect()
}
