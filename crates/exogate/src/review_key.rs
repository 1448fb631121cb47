//! (reviews) The key reviewer links are signed with: one per deployment, kept in the database
//! (the first replica to need it stores a random one; every replica reads the same), cached
//! here once read. It redacts itself.

use base64::Engine;
use exogate_core::CoreError;
use exogate_core::ports::Store;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice};

#[derive(Default)]
pub struct ReviewKey(tokio::sync::OnceCell<SecretSlice<u8>>);

impl std::fmt::Debug for ReviewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReviewKey(***)")
    }
}

impl ReviewKey {
    /// The key (read from the store the first time).
    pub async fn get(&self, store: &dyn Store) -> Result<&[u8], CoreError> {
        let k = self
            .0
            .get_or_try_init(|| async {
                let mut b = [0u8; 32];
                rand::rng().fill_bytes(&mut b);
                let candidate = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
                let k = store.review_link_key(&candidate).await?;
                Ok::<_, CoreError>(SecretSlice::from(k.into_bytes()))
            })
            .await?;
        Ok(k.expose_secret())
    }
}

/// A new link secret: 32 random bytes, URL-safe.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}
