//! `exogate config`: print the documented example, validate the configuration.

use clap::Subcommand;
use serde_json::json;

use super::{Cli, CliResult, load_config, out};

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a documented example configuration.
    Example,
    /// Validate the configuration.
    Check,
}

/// Runs `exogate config …` (no database, no Microsoft).
pub(super) fn config(cli: &Cli, cmd: &ConfigCommand) -> CliResult<()> {
    match cmd {
        ConfigCommand::Example => {
            super::stdout::text(crate::config::EXAMPLE);
            Ok(())
        }
        ConfigCommand::Check => {
            let cfg = load_config(cli)?;
            out(
                cli,
                json!({"ok": true, "listen": cfg.listen.to_string(), "database": exogate_store::redact_url(&cfg.database_url)}),
                || {
                    format!(
                        "configuration OK: listening on {}, database {}",
                        cfg.listen,
                        exogate_store::redact_url(&cfg.database_url)
                    )
                },
            )
        }
    }
}
