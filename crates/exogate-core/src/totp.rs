//! The second factor of local accounts: TOTP (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits)
//! and single-use recovery codes. No I/O: the secret, the time and the last used step are inputs.
//!
//! A code is accepted for the step before, the current one and the one after (clock drift), and
//! only for a step later than the last one used: a code seen once (or an older one) is refused.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;

use crate::model::Timestamp;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps of drift accepted each side of now.
pub const DRIFT_STEPS: i64 = 1;

/// Why a code was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefusal {
    #[error("the code is not six digits")]
    Malformed,
    #[error("the code is wrong or too old")]
    Wrong,
    #[error("the code was already used")]
    Reused,
}

/// The time step of `now`.
pub fn step_of(now: Timestamp) -> i64 {
    now.unix_millis().div_euclid(1000 * STEP_SECS)
}

/// The HOTP value of `secret` at `counter` (RFC 4226, dynamic truncation), `DIGITS` digits.
pub fn code_at(secret: &[u8], counter: i64) -> u32 {
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    bin % 10u32.pow(DIGITS)
}

/// Checks `code` against `secret` at `now`; `last_step` is the step of the last accepted code.
/// Returns the step the code belongs to (to be remembered as the new last step).
pub fn check(
    secret: &[u8],
    code: &str,
    now: Timestamp,
    last_step: Option<i64>,
) -> Result<i64, CodeRefusal> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeRefusal::Malformed);
    }
    let value: u32 = code.parse().map_err(|_| CodeRefusal::Malformed)?;
    let now = step_of(now);
    let matched = (now - DRIFT_STEPS..=now + DRIFT_STEPS).find(|s| code_at(secret, *s) == value);
    match (matched, last_step) {
        (None, _) => Err(CodeRefusal::Wrong),
        (Some(s), Some(last)) if s <= last => Err(CodeRefusal::Reused),
        (Some(s), _) => Ok(s),
    }
}

/// The secret in base32 (no padding), as authenticator apps take it.
pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI an authenticator app scans (issuer `exogate`).
pub fn otpauth_uri(account: &str, secret: &[u8]) -> String {
    let account: String = account
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!(
        "otpauth://totp/exogate:{account}?secret={}&issuer=exogate&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        base32(secret)
    )
}

/// How a recovery code is stored: SHA-256 hex of its normalised form (no dashes or spaces,
/// lowercase), so `abcd-efgh` and `ABCDEFGH` are the same code.
pub fn hash_recovery_code(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(sha2::Sha256::digest(
        format!("exogate-recovery:{norm}").as_bytes(),
    ))
}

/// Whether `code` looks like a recovery code (rather than a six-digit TOTP code).
pub fn is_recovery_code(code: &str) -> bool {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).count() > DIGITS as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8 digits there; the last 6 here).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
        ] {
            assert_eq!(code_at(secret, t / STEP_SECS), code % 1_000_000, "t = {t}");
        }
    }

    #[test]
    fn a_code_is_accepted_once_and_older_codes_never() {
        let secret = b"12345678901234567890";
        let now = Timestamp::from_unix_millis(1_234_567_890_000);
        let code = format!("{:06}", code_at(secret, step_of(now)));
        let step = check(secret, &code, now, None).unwrap();
        assert_eq!(
            check(secret, &code, now, Some(step)),
            Err(CodeRefusal::Reused)
        );
        let before = format!("{:06}", code_at(secret, step_of(now) - 1));
        assert_eq!(
            check(secret, &before, now, Some(step)),
            Err(CodeRefusal::Reused)
        );
        let far = format!("{:06}", code_at(secret, step_of(now) - 5));
        assert_eq!(check(secret, &far, now, None), Err(CodeRefusal::Wrong));
        assert_eq!(
            check(secret, "12345", now, None),
            Err(CodeRefusal::Malformed)
        );
        assert_eq!(
            hash_recovery_code("ABCD-efgh-1234"),
            hash_recovery_code("abcdefgh1234")
        );
        assert!(is_recovery_code("abcd-efgh-1234") && !is_recovery_code("123 456"));
    }
}

/// A TOTP secret (20 random bytes); `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

/// A user's enrolled TOTP factor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpFactor {
    pub user: crate::model::UserId,
    pub secret: TotpSecret,
    /// The step of the last accepted code (None: none yet).
    pub last_step: Option<i64>,
    pub created_at: Timestamp,
}
