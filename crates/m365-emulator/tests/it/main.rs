//! The emulator's fidelity tests: raw HTTP (reqwest + `serde_json::Value`) against a running
//! emulator, never exogate's typed client. One binary; modules per surface.

mod admin_centre;
mod consent;
mod demo;
mod entra;
mod exchange;
mod exchange_model;
mod grants;
mod graph;
mod groups;
mod robustness;
mod support;
mod tokens;
