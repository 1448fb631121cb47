//! The command line: `exogate demo | serve | mcp | migrate | user | token | company | mailbox |
//! approvals | audit | config | inventory | offboard | notify | drift`. Each command finds the configuration through `--config FILE` or
//! `--data-dir DIR` (a demo's data directory works too), calls core operations, and prints a
//! table or, with `--json`, JSON. Commands that act for a person name them with `--as USER`;
//! the audit log records that person with the `cli` channel.

mod approvals;
mod audit;
mod companies;
mod config;
mod drift;
// (reviews)
mod inventory;
mod mailbox;
mod review;
// (cli-requests)
mod offboard_all;
mod request;
mod users;
// (notify)
mod notify;
// (hardening) stdout that ends quietly on a broken pipe.
pub mod stdout;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use exogate_core::CoreError;
use exogate_core::model::{Actor, Channel, UserName};
use exogate_core::ops;
use serde_json::{Value, json};

use crate::app::App;
use crate::config::Config;
#[cfg(feature = "demo")]
use crate::demo::DemoArgs;

pub use approvals::ApprovalsCommand;
pub use audit::AuditCommand;
pub use companies::CompanyCommand;
pub use config::ConfigCommand;
pub use drift::DriftCommand;
// (reviews)
pub use inventory::{InventoryCommand, OffboardArgs};
pub use mailbox::{MailboxArgs, MailboxCommand};
pub use review::ReviewCommand;
// (cli-requests)
pub use request::RequestCommand;
pub use users::{TokenCommand, UserCommand};
// (notify)
pub use notify::NotifyCommand;

#[derive(Parser, Debug)]
#[command(
    name = "exogate",
    version,
    about = "Approval-gated Exchange Online mailbox delegation for MSPs"
)]
pub struct Cli {
    /// Configuration file (TOML).
    #[arg(long, global = true, env = "EXOGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory holding `exogate.toml` (for example a demo's).
    #[arg(long, global = true, env = "EXOGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the demo world: the Microsoft emulator, a SQLite data directory, users, companies.
    /// Only in builds with the `demo` feature (the default); without it `demo` is no subcommand.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Serve the web app, JSON API and MCP, with the background worker.
    Serve,
    /// Serve MCP over stdio for an agent (the token from --token or EXOGATE_MCP_TOKEN).
    Mcp {
        /// The API token the agent acts with (`exogate token create`).
        #[arg(long, env = "EXOGATE_MCP_TOKEN", hide_env_values = true)]
        token: String,
    },
    /// Create or update the database schema.
    Migrate,
    /// Local users.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens for agents (MCP) and scripts.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Companies and their Microsoft 365 connection.
    #[command(subcommand)]
    Company(CompanyCommand),
    /// Read a mailbox's delegation.
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// Approval requests.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The delegation inventory: sweep tenants; who can open a mailbox; what a user can open.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Offboarding: list everything a user can open in a company and ask for its removal as
    /// one approval request.
    Offboard(OffboardArgs),
    // (notify)
    /// Notifications: your e-mail address and topics, webhook endpoints, deliveries.
    #[command(subcommand)]
    Notify(NotifyCommand),
    // (drift)
    /// Drift: rights added or removed outside exogate, found by the inventory sweeps.
    #[command(subcommand)]
    Drift(DriftCommand),
    // (cli-requests)
    /// Ask for a change (a grant or a removal): it waits for a manager's approval, then runs.
    #[command(subcommand)]
    Request(RequestCommand),
    // (reviews)
    /// Access reviews: recertify who can open which mailbox; close into one approval request
    /// per company; reports.
    #[command(subcommand)]
    Review(ReviewCommand),
}

#[derive(Args, Debug)]
pub struct AsUser {
    /// The person this command acts for (recorded in the audit log); default: EXOGATE_AS or
    /// `as = "USER"` in the configuration file.
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
}

// (cli-requests)
/// The configuration's `as` (or `EXOGATE_AS`): who commands act for without `--as`. Set once
/// per run, after the configuration is loaded.
static DEFAULT_AS: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

impl AsUser {
    /// The person named with `--as`, else the configured default.
    pub(super) fn name(&self) -> CliResult<String> {
        self.as_user
            .clone()
            .or_else(|| DEFAULT_AS.get().cloned().flatten())
            .ok_or_else(|| CliError {
                code: "invalid_input",
                message: "name the person this command acts for: --as USER (or set EXOGATE_AS, or `as = \"USER\"` in the configuration file)".to_owned(),
            })
    }
}

/// A command's failure: a clear message and a stable code.
#[derive(Debug)]
pub struct CliError {
    pub code: &'static str,
    pub message: String,
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        CliError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> Self {
        // Configuration errors keep their own code; anything else is an operational failure.
        let code = e
            .downcast_ref::<crate::config::ConfigError>()
            .map(crate::config::ConfigError::code)
            .or_else(|| e.downcast_ref::<CoreError>().map(CoreError::code));
        #[cfg(feature = "demo")]
        let code = code.or_else(|| {
            e.downcast_ref::<crate::demo::DemoError>()
                .map(crate::demo::DemoError::code)
        });
        let code = code.unwrap_or("failed");
        CliError {
            code,
            message: format!("{e:#}"),
        }
    }
}

impl From<crate::local_users::AddUserError> for CliError {
    fn from(e: crate::local_users::AddUserError) -> Self {
        match e {
            crate::local_users::AddUserError::Core(e) => e.into(),
            crate::local_users::AddUserError::Hash(e) => e.into(),
        }
    }
}

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

pub(super) type CliResult<T> = Result<T, CliError>;

/// Finds the configuration: `--config`, else `<data-dir>/exogate.toml`, else `./exogate.toml`.
pub fn config_path(cli: &Cli) -> CliResult<PathBuf> {
    if let Some(path) = &cli.config {
        return Ok(path.clone());
    }
    if let Some(dir) = &cli.data_dir {
        return Ok(dir.join("exogate.toml"));
    }
    let local = PathBuf::from("exogate.toml");
    if local.exists() {
        return Ok(local);
    }
    Err(CliError {
        code: "config_missing",
        message:
            "no configuration: pass --config FILE or --data-dir DIR (see `exogate config example`)"
                .to_owned(),
    })
}

pub fn load_config(cli: &Cli) -> CliResult<Config> {
    let path = config_path(cli)?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    Ok(Config::load(Some(&path), &env)?)
}

/// Runs a parsed command line; the caller prints the error.
pub async fn run(cli: Cli) -> CliResult<()> {
    match &cli.command {
        Command::Config(cmd) => return config::config(&cli, cmd),
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            return crate::demo::run(cli.data_dir.clone(), args, cli.json)
                .await
                .map_err(Into::into);
        }
        _ => {}
    }
    let config = load_config(&cli)?;
    // (cli-requests)
    let _ = DEFAULT_AS.set(config.default_as.clone());
    let app = crate::server::build_app(&config).await?;
    match &cli.command {
        Command::Serve => serve(&config, app).await,
        Command::Migrate => out(&cli, json!({"migrated": true}), || {
            "database is up to date".to_owned()
        }),
        Command::Mcp { token } => crate::mcp::serve_stdio(app, token)
            .await
            .map_err(Into::into),
        Command::User(cmd) => users::user(&cli, &app, cmd).await,
        Command::Token(cmd) => users::token(&cli, &app, cmd).await,
        Command::Company(cmd) => companies::company(&cli, &app, cmd).await,
        Command::Mailbox(cmd) => mailbox::mailbox(&cli, &app, cmd).await,
        Command::Approvals(cmd) => approvals::approvals(&cli, &app, cmd).await,
        Command::Audit(cmd) => audit::audit(&cli, &app, &config, cmd).await,
        Command::Inventory(cmd) => inventory::inventory(&cli, &app, cmd).await,
        Command::Offboard(args) => inventory::offboard(&cli, &app, args).await,
        // (notify)
        Command::Notify(cmd) => notify::notify(&cli, &app, cmd).await,
        // (drift)
        Command::Drift(cmd) => drift::drift(&cli, &app, cmd).await,
        // (cli-requests)
        Command::Request(cmd) => request::request(&cli, &app, cmd).await,
        // (reviews)
        Command::Review(cmd) => review::review(&cli, &app, cmd).await,
        Command::Config(_) => Ok(()),
        #[cfg(feature = "demo")]
        Command::Demo(_) => Ok(()),
    }
}

async fn serve(config: &Config, app: Arc<App>) -> CliResult<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    eprintln!(
        "exogate listening on {} ({})",
        config.listen, config.public_url
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        crate::server::shutdown_signal().await;
        stop.cancel();
    });
    let worker = crate::worker::WorkerSettings::from_config_with_checkpoints(config)?;
    crate::server::serve_with_grace(
        app,
        listener,
        Some(worker),
        shutdown,
        Some(config.shutdown_grace),
    )
    .await?;
    Ok(())
}

/// Prints `value` as JSON with `--json`, else the human text.
pub(super) fn out(cli: &Cli, value: Value, human: impl FnOnce() -> String) -> CliResult<()> {
    if cli.json {
        stdout::line(&serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        stdout::line(&human());
    }
    Ok(())
}

pub(super) async fn actor(app: &App, who: &AsUser) -> CliResult<Actor> {
    let name = UserName::parse(&who.name()?)?;
    let user = ops::users::find_user(app.ctx(), &name).await?;
    Ok(Actor {
        user,
        channel: Channel::Cli,
    })
}

impl From<crate::checkpoint::CheckpointError> for CliError {
    fn from(e: crate::checkpoint::CheckpointError) -> Self {
        CliError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

/// For `--json` errors.
pub fn error_json(e: &CliError) -> Value {
    json!({"error": {"code": e.code, "message": e.message}})
}

impl CliError {
    /// The code and message a sweep error gets, without consuming it.
    pub(super) fn from_sweep_ref(e: &crate::inventory::SweepError) -> CliError {
        match e {
            crate::inventory::SweepError::Core(c) => CliError {
                code: c.code(),
                message: c.to_string(),
            },
            crate::inventory::SweepError::Busy { .. } => CliError {
                code: "sweep_running",
                message: e.to_string(),
            },
            other => CliError {
                code: "sweep_failed",
                message: other.to_string(),
            },
        }
    }
}

impl From<crate::inventory::SweepError> for CliError {
    fn from(e: crate::inventory::SweepError) -> Self {
        CliError::from_sweep_ref(&e)
    }
}
