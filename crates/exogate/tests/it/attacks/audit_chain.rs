//! Attacks: audit_chain.
