//! The emulator's fidelity tests: raw HTTP (reqwest + `serde_json::Value`) against a running
//! emulator, never exogate's typed client. One binary; modules per surface.

mod entra;
mod exchange;
mod support;
