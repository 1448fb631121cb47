//! Exchange fidelity tests.
