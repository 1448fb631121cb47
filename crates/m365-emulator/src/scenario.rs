//! Scenarios: the starting world, as JSON (`--scenario FILE`) or built in (`demo`).

use serde::Deserialize;

use crate::state::World;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Scenario {
    #[serde(default)]
    pub seed: u64,
}

impl Scenario {
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    pub fn into_world(self) -> anyhow::Result<World> {
        Ok(World::default())
    }
}
