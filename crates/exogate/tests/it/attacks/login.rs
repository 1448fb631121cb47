//! Attacks: login.
