//! exogate-core tests: the rules, through the crate's public API.

mod action;
mod audit;
mod fuzz_props;
mod model;
// (notify)
mod notifications;
mod policy;
mod request;
mod rules;
mod support;
mod text;
mod tools;
