//! Attacks: four_eyes.
