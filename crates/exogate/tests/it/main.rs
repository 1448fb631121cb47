//! exogate's integration tests, through the front door. One binary; modules per feature.
//! Do not add another top-level test file: add a module here.

mod attacks;
mod browser;
mod cli;
mod cli_requests;
mod company_names;
mod config;
mod fleet;
mod flow;
mod inventory;
mod mcp_http;
mod mcp_inspector;
mod mcp_inventory;
mod mcp_python;
mod mcp_safety;
mod mcp_stdio;
mod mcp_tools;
mod mcp_ts;
mod oauth;
mod property;
mod schedule;
mod support;
mod web;
mod web_inventory;
mod wrong_answers;
