//! The `exogate` binary: parses the command line and maps failures to a message, a stable code
//! and a non-zero exit status.

use std::process::ExitCode;

use clap::Parser;
use exogate::cli::{Cli, Command, error_json, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to stderr (stdout carries MCP's stdio protocol and --json output).
    let default = if matches!(cli.command, Command::Mcp { .. }) {
        "warn"
    } else {
        "info"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("EXOGATE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default)),
        )
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if json {
                exogate::cli::stdout::line(&error_json(&err).to_string());
            }
            eprintln!("error [{}]: {}", err.code, err.message);
            ExitCode::FAILURE
        }
    }
}
