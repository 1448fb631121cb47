#![no_main]
//! The CSV export's cell sanitizer (formula injection, quotes, line breaks).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|s: &str| exogate::fuzz_checks::csv_export_cell(s));
