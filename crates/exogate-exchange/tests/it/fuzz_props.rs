//! The fuzz targets' properties (`exogate_exchange::fuzz_checks`, also run by `fuzz/` on
//! nightly), checked here with proptest on every CI run.

use exogate_exchange::fuzz_checks::{
    consent_callback, consent_round_trip, exchange_answer, identity,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,60}",
        "[a-z]{1,10}@[a-z]{1,10}\\.com",
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[a-z \t*?\"`\u{200B}\u{2028}\u{FEFF}\u{0}]{0,20}",
    ]
}

/// Queries shaped like Microsoft's redirects: known keys with odd values, duplicates, escapes.
fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("state"),
        Just("tenant"),
        Just("admin_consent"),
        Just("error"),
        Just("error_description"),
        Just("error_uri"),
        Just("scope"),
        Just("x"),
    ];
    let value = prop_oneof![
        text(),
        Just("True".to_owned()),
        Just("AADSTS50020: other directory".to_owned()),
        Just("https://login.microsoftonline.com/error?code=65004".to_owned()),
        "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "(%[0-9A-Fa-f]{0,2}|[&=+?#])*",
    ];
    prop_oneof![
        any::<String>(),
        proptest::collection::vec((key, value), 0..8).prop_map(|kv| {
            let mut q = url::form_urlencoded::Serializer::new("?".to_owned());
            for (k, v) in kv {
                q.append_pair(k, &v);
            }
            q.finish()
        }),
    ]
}

/// Bodies shaped like Exchange's: envelopes with odd `value`s, error objects, and raw bytes.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        text().prop_map(serde_json::Value::from),
    ];
    let json = leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            proptest::collection::vec(
                (
                    prop_oneof![
                        Just("value".to_owned()),
                        Just("error".to_owned()),
                        Just("code".to_owned()),
                        Just("message".to_owned()),
                        Just("@odata.nextLink".to_owned()),
                        Just("@adminapi.warnings".to_owned()),
                        Just("Identity".to_owned()),
                        Just("User".to_owned()),
                        Just("AccessRights".to_owned()),
                        Just("Trustee".to_owned()),
                        Just("IsInherited".to_owned()),
                        Just("details".to_owned()),
                        text(),
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![
        any::<Vec<u8>>(),
        json.prop_map(|v| serde_json::to_vec(&v).unwrap()),
        "[0-9.eE+-]{0,12}( GMT)?".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn consent_callbacks_keep_their_properties(q in query(), state in text()) {
        consent_callback(&q, &state);
    }

    #[test]
    fn well_formed_grants_round_trip(state in text(), tenant in any::<u128>(), scope in proptest::option::of(text()), other in text()) {
        consent_round_trip(&state, uuid::Uuid::from_u128(tenant), scope.as_deref(), &other);
    }

    #[test]
    fn exchange_identities_keep_their_properties(s in text()) {
        identity(&s);
    }

    #[test]
    fn exchange_answers_are_parsed_or_refused(status in prop_oneof![Just(200u16), Just(400), Just(403), Just(429), Just(500), any::<u16>()], b in body()) {
        exchange_answer(status, &b);
    }
}
