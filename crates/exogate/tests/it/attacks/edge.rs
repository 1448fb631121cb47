//! Attacks: edge.
