#![no_main]
//! The TOML configuration file, parsed and validated from text (no environment, no disk).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| exogate::fuzz_checks::config_text(s));
