//! Attacks replayed through the front door: the real router, the real emulator, SQLite and
//! PostgreSQL where storage is involved. Each test here failed before its fix. `docs/SECURITY.md`
//! lists the trust boundaries and points at these tests.

pub(crate) mod audit_chain;
mod consent;
mod edge;
mod four_eyes;
mod login;
mod oauth;
mod text;
