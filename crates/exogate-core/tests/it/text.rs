//! The one sanitizer of tenant text: whatever comes in, what goes out has no hidden character,
//! fits the cap, and equals the input when the input was clean and short.

use exogate_core::text::{MAX_CHARS, capped, is_hidden, tenant_text};
use proptest::prelude::*;

/// Strings mixing plain text with every kind of hidden character, some of them long.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-zA-Z0-9 @._-]{0,8}",
        "\\PC{0,4}",
        prop::sample::select(vec![
            "\u{202E}",
            "\u{2066}",
            "\u{200B}",
            "\u{2028}",
            "\u{2029}",
            "\u{85}",
            "\u{1B}",
            "\n",
            "\u{FEFF}",
            "\u{FE0F}",
            "\u{E0041}",
            "\u{E0001}",
            "\u{E007F}",
            "\u{E0100}",
            "\u{3164}",
            "\u{FFF9}",
            "\u{AD}",
        ])
        .prop_map(str::to_owned),
        Just("x".repeat(300)),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn output_has_no_hidden_character_and_fits(s in hostile()) {
        let out = tenant_text(&s);
        prop_assert!(!out.chars().any(is_hidden), "{:?}", out);
        prop_assert!(out.chars().count() <= MAX_CHARS);
        // Sanitizing twice changes nothing.
        prop_assert_eq!(tenant_text(&out), out.clone());
    }

    #[test]
    fn any_string_comes_out_clean_and_capped(s in any::<String>()) {
        let out = tenant_text(&s);
        prop_assert!(out.chars().count() <= MAX_CHARS);
        prop_assert!(!out.chars().any(is_hidden), "{:?}", out);
        if s.chars().count() <= MAX_CHARS && !s.chars().any(is_hidden) {
            prop_assert_eq!(out, s);
        }
    }

    #[test]
    fn clean_short_text_is_unchanged(s in "[^\\p{C}\\p{Z}]{0,40}( [^\\p{C}\\p{Z}]{1,40}){0,4}") {
        prop_assume!(!s.chars().any(is_hidden));
        prop_assert_eq!(tenant_text(&s), s);
    }

    #[test]
    fn any_cap_holds(s in hostile(), max in 0usize..400) {
        let out = capped(&s, max);
        prop_assert!(out.chars().count() <= max);
        prop_assert!(!out.chars().any(is_hidden));
        if s.chars().count() <= max && !s.chars().any(is_hidden) {
            prop_assert_eq!(out, s);
        }
    }
}
