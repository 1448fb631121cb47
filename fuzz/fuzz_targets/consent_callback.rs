#![no_main]
//! The consent redirect's query against the state we issued, and well-formed grants.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|x: (&str, &str, u128, Option<&str>, &str)| {
    let (query, state, tenant, scope, other) = x;
    exogate_exchange::fuzz_checks::consent_callback(query, state);
    exogate_exchange::fuzz_checks::consent_round_trip(
        state,
        uuid::Uuid::from_u128(tenant),
        scope,
        other,
    );
});
