#![no_main]
//! Company ids, user names, roles, entitlements, labels, UUID ids, mailbox/trustee identities
//! (the core's parsers and the Exchange client's).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| {
    exogate_core::fuzz_checks::identities(s);
    exogate_exchange::fuzz_checks::identity(s);
});
