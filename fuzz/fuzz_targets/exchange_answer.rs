#![no_main]
//! Exchange's answers as the client parses them: envelopes, rows, errors, Retry-After, claims.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|x: (u16, &[u8])| exogate_exchange::fuzz_checks::exchange_answer(x.0, x.1));
