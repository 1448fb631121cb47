//! Entra fidelity tests.
