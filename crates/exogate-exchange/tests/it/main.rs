//! Integration tests of `exogate-exchange`: the client against the `m365-emulator` over real
//! HTTP on 127.0.0.1, plus wiremock for narrow wire-level edge cases.

mod consent;
mod delegation;
mod fuzz_props;
mod identity;
mod invoke;
mod readiness;
mod support;
mod tokens;
mod wire;
