//! exogate: approval-gated Exchange Online mailbox delegation for MSPs.
//!
//! This crate is the edge: configuration, the CLI, the web app and JSON API, the MCP server and
//! the background worker. Each is a thin adapter over `exogate_core` operations.

pub mod app;
pub mod checkpoint;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod edge;
// (fuzz-scale) Property checks shared by the fuzz targets and the stable proptest tests.
#[doc(hidden)]
pub mod fuzz_checks;
pub mod inventory;
pub mod inventory_view;
pub mod limits;
pub mod local_time;
pub mod local_users;
pub mod login;
pub mod mcp;
pub mod microsoft;
// (notify)
pub mod notify;
pub mod notify_settings;
pub mod passwords;
// (reviews)
pub mod review_jobs;
pub mod review_key;
pub mod server;
// (msft-signin)
pub mod signin;
pub mod table;
pub mod views;
pub mod web;
pub mod worker;
// (hardening) Outbound requests reach only checked, public addresses.
pub mod outbound;
// (hardening) Per-address limit of OAuth client registrations.
pub mod registration;
