//! Properties of the client's parsers of outside input, checked on any input.
//!
//! One function per fuzz target of `fuzz/` (coverage-guided, nightly, `scripts/fuzz.sh`); the
//! proptest tests of `tests/it/fuzz_props.rs` call the same functions on stable. Each panics
//! when a property breaks.

use serde_json::Value;
use uuid::Uuid;

use crate::claims::TokenClaims;
use crate::consent::{ConsentError, parse_consent_callback};
use crate::delegation::{MailboxPermissionRow, MailboxRecord, Recipient, RecipientPermissionRow};
use crate::error::{ErrorHeaders, classify, parse_error_value};
use crate::exchange::parse_page;
use crate::identity::Identity;
use crate::retry::parse_retry_after_value;

/// The consent redirect's query, checked against `expected_state`: nothing is granted unless
/// the query carries exactly that state, a GUID tenant and `admin_consent=True`; no refusal
/// panics.
pub fn consent_callback(query: &str, expected_state: &str) {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    match parse_consent_callback(query, expected_state) {
        Ok(g) => {
            assert_eq!(g.state, expected_state);
            assert_eq!(get("state").unwrap_or(""), expected_state);
            assert!(get("error").is_none());
            assert!(get("admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true")));
            let tenant = get("tenant").expect("a grant names its tenant");
            assert_eq!(Uuid::parse_str(tenant).ok(), Some(g.tenant));
        }
        Err(ConsentError::StateMismatch) => {
            assert_ne!(get("state").unwrap_or(""), expected_state);
        }
        Err(e) => {
            // Only a redirect carrying our state gets past the state check.
            assert_eq!(get("state").unwrap_or(""), expected_state, "{e:?}");
            let _ = e.to_string();
        }
    }
}

/// A well-formed redirect built from its parts is read back as exactly those parts, and the
/// same redirect with another state is refused.
pub fn consent_round_trip(state: &str, tenant: Uuid, scope: Option<&str>, other_state: &str) {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("admin_consent", "True")
        .append_pair("tenant", &tenant.to_string())
        .append_pair("state", state);
    if let Some(s) = scope {
        q.append_pair("scope", s);
    }
    let query = q.finish();
    let g = parse_consent_callback(&query, state).expect("a well-formed grant parses");
    assert_eq!(g.tenant, tenant);
    assert_eq!(g.state, state);
    assert_eq!(g.scope.as_deref(), scope);
    if other_state != state {
        assert_eq!(
            parse_consent_callback(&query, other_state),
            Err(ConsentError::StateMismatch)
        );
    }
    consent_callback(&query, state);
}

/// Identities sent to Exchange: what is accepted has no whitespace, control, wildcard or quote
/// character, and parses back to itself.
pub fn identity(s: &str) {
    if let Ok(i) = Identity::parse(s) {
        let kept = i.as_str();
        assert!(!kept.is_empty());
        assert!(
            !kept.chars().any(|c| c.is_whitespace() || c.is_control()),
            "{kept:?}"
        );
        assert!(
            !kept.contains([
                '*', '?', '"', '`', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}'
            ]),
            "{kept:?}"
        );
        let again = Identity::parse(kept).expect("an accepted identity parses again");
        assert_eq!(again.as_str(), kept);
    }
}

/// Whatever Exchange (or something in between) answers, with any status: the envelope, error
/// and row parsers return a value or a typed error, and a `Retry-After` is never negative or
/// beyond a day.
pub fn exchange_answer(status: u16, body: &[u8]) {
    match parse_page(body) {
        Ok(page) => {
            for v in &page.value {
                let _ = Recipient::from_value(v);
                let _ = MailboxRecord::from_value(v);
                let _ = MailboxPermissionRow::from_value(v);
                let _ = RecipientPermissionRow::from_value(v);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let err = classify(status, &ErrorHeaders::default(), body);
    let _ = (err.to_string(), err.is_retryable());
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let _ = parse_error_value(&v);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(d) = parse_retry_after_value(text.trim()) {
            assert!(
                d <= std::time::Duration::from_secs(86_400),
                "{text:?}: {d:?}"
            );
        }
        // A token's claims are read without a signature check; any text is refused or read.
        let _ = TokenClaims::decode(text);
    }
}
