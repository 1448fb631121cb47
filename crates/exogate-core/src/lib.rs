//! exogate's domain: companies and their Microsoft 365 connection, the Exchange Admin status,
//! the tool catalogue, canonical actions and their digests, approval requests and their state
//! machine, the approval policy, users and API tokens, and the hash-chained audit log.
//!
//! This crate does no I/O. It never reads the clock, never draws randomness and never makes ids:
//! all of those are inputs. Storage, Microsoft and the clock are reached through the traits in
//! [`ports`]; the use-cases in [`ops`] are plain async functions over those traits.

pub mod action;
pub mod audit;
pub mod checkpoint;
pub mod drift;
pub mod error;
pub mod fake;
// (fuzz-scale) Property checks shared by the fuzz targets and the stable proptest tests.
#[doc(hidden)]
pub mod fuzz_checks;
pub mod inventory;
pub mod model;
pub mod notifications;
pub mod oauth;
pub mod ops;
pub mod policy;
pub mod ports;
pub mod request;
// (reviews)
pub mod review;
// (msft-signin)
pub mod signin;
pub mod text;
pub mod timed;
pub mod tools;
pub mod totp;
pub mod when;
// (hardening) Which addresses outbound requests may reach.
pub mod outbound;
// (hardening) The per-user-name lock-out every process shares through the store.
pub mod lockout;

pub use error::{ConflictReason, CoreError, Denial, Entity};
pub use model::*;
