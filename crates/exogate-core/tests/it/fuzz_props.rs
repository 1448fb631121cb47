//! The fuzz targets' properties (`exogate_core::fuzz_checks`, also run by `fuzz/` on nightly),
//! checked here with proptest on every CI run, plus the inputs the fuzzer once found.

use exogate_core::fuzz_checks::{client_metadata, identities, time_bound};
use proptest::prelude::*;

/// Text shaped like what people and agents type: ids, addresses, UUIDs, dates, plus hostile
/// characters (quotes, wildcards, controls, invisible formatting) and arbitrary Unicode.
pub fn outside_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9-]{0,70}",
        "[A-Za-z0-9._@-]{0,70}",
        "[ -~]{0,80}",
        "[a-z]{1,10}@[a-z]{1,10}\\.(com|onmicrosoft\\.com)",
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))?",
        "[ \t]{0,2}[a-z*?'\"`;|&$=#!~^<>\u{200B}\u{202E}\u{FEFF}\u{0}\u{7F}, ]{0,20}[ \t]{0,2}",
        "(\\*|[a-z0-9-]{1,8})(,[ ]?[a-z0-9-]{1,8}){0,4}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn identity_parsers_keep_their_properties(s in outside_text()) {
        identities(&s);
    }

    #[test]
    fn time_bounds_keep_their_properties(s in outside_text()) {
        time_bound(&s);
    }

    #[test]
    fn client_metadata_keeps_its_properties(
        client_id in outside_text(),
        name in proptest::option::of(outside_text()),
        uris in proptest::collection::vec(prop_oneof![
            any::<String>(),
            "(https?|ftp)://(127\\.0\\.0\\.1|localhost|\\[::1\\]|[a-z]{1,8}\\.com|@evil)(:[0-9]{0,6})?(/[ -~]{0,20})?",
        ], 0..12),
    ) {
        client_metadata(&client_id, name.as_deref(), &uris);
    }
}

/// Hand-picked edges the properties must hold on.
#[test]
fn edge_inputs_keep_the_properties() {
    for s in [
        "",
        " ",
        "-",
        "a-",
        "*",
        ",,,",
        "contoso, ,fabrikam",
        "0000-01-01",
        "9999-12-31",
        "-9999-01-01",
        "2026-12-03T23:59:60Z",
        "2026-12-03T09:00:00.123456789+14:00",
        "\u{202E}admin",
        "alice@\u{200B}contoso.com",
        "00000000-0000-0000-0000-000000000000",
        "{00000000-0000-0000-0000-000000000000}",
        "urn:uuid:00000000-0000-0000-0000-000000000000",
    ] {
        identities(s);
        time_bound(s);
    }
    client_metadata("x", None, &["http://[::1]:/".to_owned()]);
    client_metadata("x", Some(" "), &["https://a/".to_owned()]);
}

/// Found by proptest on this harness: the end of the last representable day (`until` =
/// 9999-12-31) overflowed the date and panicked (a 500 on the audit search).
#[test]
fn the_end_of_the_last_day_is_a_bound_not_a_panic() {
    use exogate_core::audit::{DayEnd, parse_time_bound};
    let end = parse_time_bound("until", "9999-12-31", DayEnd::End)
        .unwrap()
        .unwrap();
    assert_eq!(end.to_string(), "9999-12-31T23:59:59.999Z");
    let start = parse_time_bound("since", "9999-12-31", DayEnd::Start)
        .unwrap()
        .unwrap();
    assert_eq!(start.to_string(), "9999-12-31T00:00:00Z");
}
