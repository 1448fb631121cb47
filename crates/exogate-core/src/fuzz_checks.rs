//! Properties of the core's parsers of outside input, checked on any input.
//!
//! One function per fuzz target of `fuzz/` (coverage-guided, nightly, `scripts/fuzz.sh`); the
//! proptest tests of `tests/it/fuzz_props.rs` call the same functions on stable, so CI checks
//! the same properties on every run. Each function panics when a property breaks; returning
//! means the input was fine (accepted with the promised shape, or refused with a clean error).

use crate::audit::{DayEnd, parse_time_bound};
use crate::error::CoreError;
use crate::model::{
    ApiTokenId, CompanyId, Entitlement, IdentityInput, RequestId, Role, TenantId, UserId, UserName,
    parse_label,
};
use crate::oauth::{redirect_uri_acceptable, redirect_uri_matches};
use crate::ops::oauth::{ClientMetadata, check_client_metadata};
use crate::text::first_hidden;

/// Characters [`IdentityInput::parse`] refuses anywhere in an identity.
const IDENTITY_FORBIDDEN: &[char] = &[
    '*', '?', '%', '"', '\'', '`', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', ';', '|', '&',
    '$', '{', '}', '(', ')', '[', ']', '<', '>', '\\', '/', ',', '=', '#', '!', '~', '^',
];

/// A refusal is an `invalid_input` error whose message shows no control or invisible character
/// (the input is echoed clipped and cleaned) and stays short.
fn clean_refusal(what: &str, e: &CoreError) {
    assert_eq!(e.code(), "invalid_input", "{what}: {e:?}");
    let msg = e.to_string();
    assert!(
        first_hidden(&msg).is_none(),
        "{what}: hidden char in {msg:?}"
    );
    assert!(
        msg.chars().count() <= 400,
        "{what}: message too long: {msg:?}"
    );
}

/// Company ids, user names, roles, entitlements, labels, UUID ids and mailbox/trustee
/// identities, all parsed from `s`.
pub fn identities(s: &str) {
    // Company id: accepted exactly as typed, only `[a-z0-9-]`, 1..=63, no outer hyphen; its
    // display parses back to itself.
    match CompanyId::parse(s) {
        Ok(c) => {
            assert_eq!(c.as_str(), s);
            assert!((1..=63).contains(&s.len()));
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
            assert!(!s.starts_with('-') && !s.ends_with('-'));
            assert_eq!(CompanyId::parse(&c.to_string()).ok().as_ref(), Some(&c));
        }
        Err(e) => clean_refusal("company_id", &e),
    }
    // User name: stored lowercase, parsing is idempotent.
    match UserName::parse(s) {
        Ok(u) => {
            assert_eq!(u.as_str(), s.trim().to_ascii_lowercase());
            assert!((1..=64).contains(&u.as_str().len()));
            assert_eq!(UserName::parse(u.as_str()).ok().as_ref(), Some(&u));
        }
        Err(e) => clean_refusal("user_name", &e),
    }
    match Role::parse(s) {
        Ok(r) => assert_eq!(Role::parse(r.as_str()).ok(), Some(r)),
        Err(e) => clean_refusal("role", &e),
    }
    // Entitlement: encode is the inverse of parse.
    match Entitlement::parse(s) {
        Ok(ent) => assert_eq!(Entitlement::parse(&ent.encode()).ok().as_ref(), Some(&ent)),
        Err(e) => clean_refusal("entitlement", &e),
    }
    // Labels: trimmed, bounded, nothing hidden, idempotent.
    match parse_label("label", s, 100) {
        Ok(l) => {
            assert_eq!(l, s.trim());
            assert!(!l.is_empty() && l.chars().count() <= 100);
            assert!(first_hidden(&l).is_none());
            assert_eq!(parse_label("label", &l, 100).ok().as_ref(), Some(&l));
        }
        Err(e) => clean_refusal("label", &e),
    }
    // UUID ids (request ids, user ids, token ids, tenant ids): the display parses back.
    macro_rules! uuid_round_trip {
        ($($t:ty),*) => {$(
            match <$t>::parse(s) {
                Ok(id) => assert_eq!(<$t>::parse(&id.to_string()).ok().as_ref(), Some(&id)),
                Err(e) => clean_refusal(stringify!($t), &e),
            }
        )*};
    }
    uuid_round_trip!(RequestId, UserId, ApiTokenId, TenantId);
    // Mailbox and trustee identities: trimmed, bounded, nothing hidden or forbidden; parsing
    // what was kept gives the same identity.
    match IdentityInput::parse(s) {
        Ok(i) => {
            let kept = i.as_str();
            assert!(!kept.is_empty() && kept.chars().count() <= IdentityInput::MAX_LEN);
            assert_eq!(kept, kept.trim());
            assert!(first_hidden(kept).is_none(), "{kept:?}");
            assert!(!kept.contains(IDENTITY_FORBIDDEN), "{kept:?}");
            assert_eq!(IdentityInput::parse(kept).ok().as_ref(), Some(&i));
        }
        Err(e) => clean_refusal("identity", &e),
    }
}

/// The audit search's time bounds (`since`, `until`): a text is accepted as both or neither,
/// the start of its span is never after its end, and a time given in full parses back from its
/// display.
pub fn time_bound(s: &str) {
    let start = parse_time_bound("since", s, DayEnd::Start);
    let end = parse_time_bound("until", s, DayEnd::End);
    match (start, end) {
        (Ok(None), Ok(None)) => assert!(s.trim().is_empty()),
        (Ok(Some(a)), Ok(Some(b))) => {
            assert!(a <= b, "{s:?}: {a} > {b}");
            let shown = a.to_string();
            if !shown.ends_with("ms") {
                let back = parse_time_bound("since", &shown, DayEnd::Start);
                assert_eq!(back.ok().flatten(), Some(a), "{s:?} shown as {shown:?}");
            }
        }
        (Err(a), Err(b)) => {
            clean_refusal("since", &a);
            clean_refusal("until", &b);
        }
        (a, b) => panic!("{s:?}: since {a:?} but until {b:?}"),
    }
}

/// OAuth client metadata (a registration request or a metadata document): what is accepted is
/// a clean name and acceptable redirect URIs, and every accepted URI matches itself.
pub fn client_metadata(client_id: &str, name: Option<&str>, uris: &[String]) {
    for u in uris {
        if redirect_uri_acceptable(u) {
            assert!(u.len() <= 2048 && !u.contains('#'), "{u:?}");
            assert!(u.bytes().all(|b| b.is_ascii_graphic()), "{u:?}");
            assert!(
                u.starts_with("https://") || u.starts_with("http://"),
                "{u:?}"
            );
            assert!(redirect_uri_matches(std::slice::from_ref(u), u), "{u:?}");
        } else {
            assert!(!redirect_uri_matches(std::slice::from_ref(u), u), "{u:?}");
        }
    }
    let m = ClientMetadata {
        client_name: name.map(str::to_owned),
        redirect_uris: uris.to_vec(),
    };
    match check_client_metadata(client_id, &m) {
        Ok((shown, kept)) => {
            assert_eq!(kept, uris);
            assert!(kept.iter().all(|u| redirect_uri_acceptable(u)));
            assert!(!shown.trim().is_empty());
            assert!(first_hidden(&shown).is_none(), "{shown:?}");
        }
        Err(e) => {
            assert_eq!(e.code(), "invalid_client", "{e:?}");
            assert!(first_hidden(&e.to_string()).is_none(), "{e}");
        }
    }
}
