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
