#![no_main]
//! The audit search's `since` / `until` bounds.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| exogate_core::fuzz_checks::time_bound(s));
