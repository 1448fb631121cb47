#![no_main]
//! The `Host` header the edge checks in front of every route.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| exogate::fuzz_checks::host_header(s));
