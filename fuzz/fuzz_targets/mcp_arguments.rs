#![no_main]
//! MCP tool arguments (the JSON `arguments` object of every tool) and their validation.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| exogate::fuzz_checks::mcp_arguments(data));
