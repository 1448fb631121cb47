//! Attacks: consent.
