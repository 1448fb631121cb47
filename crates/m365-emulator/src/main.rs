//! `m365-emulator --scenario demo|FILE --port N`: serves the emulated Microsoft endpoints on
//! 127.0.0.1 until Ctrl-C. Prints its base URL on stdout; logs go to stderr (`RUST_LOG`).

use anyhow::Context as _;
use clap::Parser;
use m365_emulator::Scenario;

/// A local stand-in for Microsoft Entra, Graph and the Exchange admin API.
#[derive(Debug, Parser)]
#[command(name = "m365-emulator", version)]
struct Args {
    /// `demo` (the built-in demo world), `empty`, or a path to a scenario JSON file.
    #[arg(long, default_value = "demo")]
    scenario: String,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let scenario = Scenario::parse(&args.scenario)
        .with_context(|| format!("loading scenario '{}'", args.scenario))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let emulator = m365_emulator::start_on(listener, scenario).await?;
    tracing::info!(base_url = %emulator.base_url, scenario = %args.scenario, "m365-emulator listening");
    println!("{}", emulator.base_url);
    shutdown_signal().await?;
    tracing::info!("shutting down");
    emulator.shutdown().await?;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}
