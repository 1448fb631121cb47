//! Helpers shared by the fidelity tests.
