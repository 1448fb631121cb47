//! exogate's integration tests, through the front door. One binary; modules per feature.

mod config;
