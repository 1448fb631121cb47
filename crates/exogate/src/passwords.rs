//! Password hashing for local users: argon2id PHC strings. Hashing is CPU- and memory-heavy, so
//! async callers run it on the blocking pool; login checks go through a [`PasswordGate`], which
//! bounds how many run at once and the memory they use.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version,
};
use parking_lot::Mutex;
use tokio::sync::Semaphore;

/// Hashes `password` into a PHC string (with a fresh salt).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Constant-time comparison of two byte strings (the length is not secret).
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Largest argon2 memory (KiB) a stored hash may ask for when it is checked. Hashes are written
/// by this program (default parameters, 19 MiB); anything far larger is refused rather than
/// allocated.
const MAX_VERIFY_M_COST: u32 = 256 * 1024;

/// Whether `password` matches the PHC string `phc`, computing argon2 in `memory` (grown to the
/// hash's memory cost when smaller, and kept by the caller for the next check). Same answers as
/// [`verify_password`]; a malformed hash never matches.
pub fn verify_password_in(password: &str, phc: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST {
        return false;
    }
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut memory[..blocks],
    );
    computed.is_ok() && same_bytes(&out, expected.as_bytes())
}

/// Runs password checks on the blocking pool, at most `concurrency` at once, each in one of
/// `concurrency` reused argon2 buffers.
///
/// Why: argon2 needs its full memory cost (19 MiB by default) for every check. Unbounded, 128
/// concurrent logins allocate 128 × 19 MiB at once, and the allocator keeps most of it after
/// the flood. Here the memory spent on checks is at most `concurrency` buffers, allocated once
/// and reused; further checks wait for a permit (the wait is cheap: no buffer is held).
pub struct PasswordGate {
    permits: Arc<Semaphore>,
    inner: Arc<GateInner>,
    concurrency: usize,
}

#[derive(Default)]
struct GateInner {
    buffers: Mutex<Vec<Vec<Block>>>,
    running: AtomicUsize,
    peak: AtomicUsize,
    waiting: AtomicUsize,
    waited: AtomicU64,
    checks: AtomicU64,
}

/// Counters of a [`PasswordGate`] (exported on `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateStats {
    /// The configured number of checks that may run at once.
    pub concurrency: usize,
    /// Checks hashing right now.
    pub running: usize,
    /// The most checks that ever hashed at once.
    pub peak: usize,
    /// Checks waiting for a permit right now.
    pub waiting: usize,
    /// Checks that had to wait for a permit, in all.
    pub waited: u64,
    /// Checks run, in all.
    pub checks: u64,
}

impl PasswordGate {
    /// A gate letting `concurrency` (at least 1) checks run at once.
    pub fn new(concurrency: usize) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            inner: Arc::new(GateInner::default()),
            concurrency,
        }
    }

    /// [`verify_password_in`] on the blocking pool, under a permit and in a pooled buffer. The
    /// permit and the buffer travel with the blocking task, so a caller that gives up (a client
    /// that disconnects) does not free a permit while its hash is still running.
    pub async fn verify(&self, password: String, phc: String) -> bool {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.inner.waited.fetch_add(1, Ordering::Relaxed);
                self.inner.waiting.fetch_add(1, Ordering::Relaxed);
                let acquired = self.permits.clone().acquire_owned().await;
                self.inner.waiting.fetch_sub(1, Ordering::Relaxed);
                match acquired {
                    Ok(p) => p,
                    Err(_) => return false,
                }
            }
        };
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let running = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            inner.peak.fetch_max(running, Ordering::SeqCst);
            inner.checks.fetch_add(1, Ordering::Relaxed);
            let mut memory = inner.buffers.lock().pop().unwrap_or_default();
            let ok = verify_password_in(&password, &phc, &mut memory);
            // Leave nothing derived from the password in the idle buffer.
            memory.fill(Block::new());
            inner.buffers.lock().push(memory);
            inner.running.fetch_sub(1, Ordering::SeqCst);
            ok
        })
        .await
        .unwrap_or(false)
    }

    /// The gate's counters.
    pub fn stats(&self) -> GateStats {
        GateStats {
            concurrency: self.concurrency,
            running: self.inner.running.load(Ordering::SeqCst),
            peak: self.inner.peak.load(Ordering::SeqCst),
            waiting: self.inner.waiting.load(Ordering::Relaxed),
            waited: self.inner.waited.load(Ordering::Relaxed),
            checks: self.inner.checks.load(Ordering::Relaxed),
        }
    }
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_async(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await?
}

/// [`verify_password`] on the blocking pool.
pub async fn verify_password_async(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false)
}

/// A random secret of `bytes` random bytes, base64url without padding (API tokens, states).
pub fn random_secret(bytes: usize) -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// A new API token secret: `exo_` and 32 random bytes. The prefix makes leaked tokens easy to
/// recognise and keeps a secret from starting with `-` (which a command line would take for a flag).
pub fn new_api_token_secret() -> String {
    format!("exo_{}", random_secret(32))
}

/// A fixed argon2id hash (this program's parameters) checked when the user name does not exist,
/// so a failed login costs the same time whether or not the name exists. Its password is
/// irrelevant: a login without a stored hash never succeeds.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$l6pwYpM0Oab21fcUVApY6Q$1OxnFreGsE9FtZIpZtF9EENX3drULf454j+IzyaacAs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(
            Params::try_from(&parsed).unwrap().m_cost(),
            Params::DEFAULT_M_COST
        );
        assert_eq!(
            Params::try_from(&parsed).unwrap().t_cost(),
            Params::DEFAULT_T_COST
        );
        let real = hash_password("another password").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.params, real.params);
    }

    #[test]
    fn pooled_checks_answer_like_argon2_and_reuse_the_buffer() {
        let phc = hash_password("correct horse battery").unwrap();
        let mut memory = Vec::new();
        assert!(verify_password_in(
            "correct horse battery",
            &phc,
            &mut memory
        ));
        let len = memory.len();
        assert_eq!(len, Params::DEFAULT_M_COST as usize);
        assert!(!verify_password_in(
            "correct horse batterY",
            &phc,
            &mut memory
        ));
        assert!(!verify_password_in("x", "not a hash", &mut memory));
        assert!(verify_password_in(
            "exogate-dummy-password",
            DUMMY_HASH,
            &mut memory
        ));
        assert_eq!(memory.len(), len);
        assert!(verify_password("correct horse battery", &phc));
    }
}
