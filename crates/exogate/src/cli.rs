//! The command line: `exogate demo | serve | mcp | migrate | user | token | company | mailbox |
//! approvals | audit | config | inventory | offboard`. Each command finds the configuration through `--config FILE` or
//! `--data-dir DIR` (a demo's data directory works too), calls core operations, and prints a
//! table or, with `--json`, JSON. Commands that act for a person name them with `--as USER`;
//! the audit log records that person with the `cli` channel.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use exogate_core::model::{
    Actor, ApiTokenId, Channel, CompanyId, Entitlement, IdentityInput, PasswordHash, RequestId,
    Role, TenantId, UserId, UserName,
};
use exogate_core::ops;
use exogate_core::ops::users::{Admin, NewUser, UserUpdate};
use exogate_core::request::{RequestFilter, RequestState};
use exogate_core::{CoreError, Denial};
use serde_json::{Value, json};

use crate::app::App;
use crate::config::Config;
use crate::wire;

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
}

#[derive(Subcommand, Debug)]
pub enum InventoryCommand {
    /// Sweep tenants now (with a progress bar on a terminal).
    Sync {
        /// Only this company.
        #[arg(long, conflicts_with = "all")]
        company: Option<String>,
        /// Every connected company you may sweep (the default).
        #[arg(long)]
        all: bool,
        /// Tenants swept at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
        #[command(flatten)]
        who: AsUser,
    },
    /// What a user (UPN, address, alias, object id or SID) can open, across your companies.
    User {
        identity: String,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Who can open a mailbox (address or object id).
    Mailbox {
        mailbox: String,
        #[arg(long)]
        company: String,
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Export the whole inventory of a company, or of all your companies (CSV or `--json`).
    Export {
        #[arg(long)]
        company: Option<String>,
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Each company's inventory: as of when, how many rows, whether the last sweep failed.
    Status {
        #[command(flatten)]
        who: AsUser,
    },
}

#[derive(Args, Debug)]
pub struct OffboardArgs {
    #[arg(long)]
    pub company: String,
    /// The leaver: UPN, address, alias or object id.
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub who: AsUser,
}

#[cfg(feature = "demo")]
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Address of the web app, API and MCP.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Port of the Microsoft emulator (0: any free port).
    #[arg(long, default_value_t = 0)]
    pub emulator_port: u16,
    /// Allow a --listen address that is not loopback; the users then get random passwords.
    #[arg(long)]
    pub allow_remote: bool,
}

#[derive(Args, Debug)]
pub struct AsUser {
    /// The person this command acts for (recorded in the audit log).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: String,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input (one line).
    Add {
        name: String,
        #[arg(long, value_parser = ["viewer", "technician", "manager", "admin"])]
        role: String,
        /// Comma-separated company ids, or `all`.
        #[arg(long, default_value = "all")]
        companies: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    Disable {
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user; the secret is printed once.
    Create {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "agent")]
        name: String,
    },
    List {
        #[arg(long)]
        user: Option<String>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum CompanyCommand {
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        who: AsUser,
    },
    List {
        #[command(flatten)]
        who: AsUser,
    },
    Show {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Print the admin-consent URL that connects the company (single-use, 10 minutes). Not
    /// bound to a browser session: whoever opens it can finish the consent, which still only
    /// connects the tenant it was issued for (the company's own when connected).
    ConnectUrl {
        id: String,
        /// The customer's tenant id, for a company not connected yet (recommended).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Check the Exchange Admin status now.
    Check {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    Disconnect {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Change a company's settings (admin).
    Set {
        id: String,
        /// Four eyes: whether the person who asked for a change (through any channel or token
        /// of theirs) is refused as its approver.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set, required = true)]
        separate_approver: bool,
        #[command(flatten)]
        who: AsUser,
    },
}

#[derive(Subcommand, Debug)]
pub enum MailboxCommand {
    /// Who has Full Access.
    Permissions(MailboxArgs),
    /// Who can Send As.
    SendAs(MailboxArgs),
    /// Mailbox settings and Send on Behalf delegates.
    Details(MailboxArgs),
}

#[derive(Args, Debug)]
pub struct MailboxArgs {
    /// UPN, SMTP address, GUID or alias.
    pub mailbox: String,
    #[arg(long)]
    pub company: String,
    #[command(flatten)]
    pub who: AsUser,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    List {
        /// Only this state (pending, approved, succeeded, …).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    Show {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    Approve {
        id: String,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    Reject {
        id: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: AsUser,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Audit events, newest first; the filters run in the database before --limit.
    List {
        /// One company (needed unless you are a manager entitled to all companies).
        #[arg(long)]
        company: Option<String>,
        /// An event kind such as `request.approved`.
        #[arg(long)]
        kind: Option<String>,
        /// One approval request's events.
        #[arg(long)]
        request: Option<String>,
        /// The acting user's name.
        #[arg(long)]
        actor: Option<String>,
        /// From this date (`2026-12-03`, its start in UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Up to this date (`2026-12-03`, its end in UTC) or RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        who: AsUser,
    },
    /// Walk the hash chain and report the first break; with --checkpoints, also compare it with
    /// signed checkpoints and name the first one it contradicts (a rewritten chain).
    Verify {
        /// A checkpoint file (JSON lines) written by the worker.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The public key (`ed25519 <base64>`) to verify checkpoints with; default: the `.pub`
        /// file beside `[audit] checkpoint_key_file`. Use a copy the server cannot write.
        #[arg(long, requires = "checkpoints")]
        public_key: Option<PathBuf>,
    },
    /// Create the checkpoint signing key (`[audit] checkpoint_key_file`, or --out) and print its
    /// public key.
    Keygen {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a documented example configuration.
    Example,
    /// Validate the configuration.
    Check,
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

impl From<crate::config::ConfigError> for CliError {
    fn from(e: crate::config::ConfigError) -> Self {
        CliError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

type CliResult<T> = Result<T, CliError>;

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
        Command::Config(ConfigCommand::Example) => {
            print!("{}", crate::config::EXAMPLE);
            return Ok(());
        }
        Command::Config(ConfigCommand::Check) => {
            let cfg = load_config(&cli)?;
            return out(
                &cli,
                json!({"ok": true, "listen": cfg.listen.to_string(), "database": exogate_store::redact_url(&cfg.database_url)}),
                || {
                    format!(
                        "configuration OK: listening on {}, database {}",
                        cfg.listen,
                        exogate_store::redact_url(&cfg.database_url)
                    )
                },
            );
        }
        #[cfg(feature = "demo")]
        Command::Demo(args) => {
            return crate::demo::run(cli.data_dir.clone(), args, cli.json)
                .await
                .map_err(Into::into);
        }
        _ => {}
    }
    let config = load_config(&cli)?;
    let app = crate::server::build_app(&config).await?;
    match &cli.command {
        Command::Serve => serve(&config, app).await,
        Command::Migrate => out(&cli, json!({"migrated": true}), || {
            "database is up to date".to_owned()
        }),
        Command::Mcp { token } => crate::mcp::serve_stdio(app, token)
            .await
            .map_err(Into::into),
        Command::User(cmd) => user(&cli, &app, cmd).await,
        Command::Token(cmd) => token(&cli, &app, cmd).await,
        Command::Company(cmd) => company(&cli, &app, cmd).await,
        Command::Mailbox(cmd) => mailbox(&cli, &app, cmd).await,
        Command::Approvals(cmd) => approvals(&cli, &app, cmd).await,
        Command::Audit(cmd) => audit(&cli, &app, &config, cmd).await,
        Command::Inventory(cmd) => inventory(&cli, &app, cmd).await,
        Command::Offboard(args) => offboard(&cli, &app, args).await,
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
fn out(cli: &Cli, value: Value, human: impl FnOnce() -> String) -> CliResult<()> {
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        println!("{}", human());
    }
    Ok(())
}

async fn actor(app: &App, who: &AsUser) -> CliResult<Actor> {
    let name = UserName::parse(&who.as_user)?;
    let user = ops::users::find_user(app.ctx(), &name).await?;
    Ok(Actor {
        user,
        channel: Channel::Cli,
    })
}

fn table(rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The lines of [`table`], for other renderers.
pub(crate) fn table_lines(rows: &[Vec<String>]) -> Vec<String> {
    table(rows.to_vec()).lines().map(str::to_owned).collect()
}

fn read_password_line() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.chars().count() < 12 {
        return Err(CliError {
            code: "invalid_password",
            message: "passwords need at least 12 characters".to_owned(),
        });
    }
    Ok(password)
}

async fn user(cli: &Cli, app: &App, cmd: &UserCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        UserCommand::Add {
            name,
            role,
            companies,
            password_stdin,
        } => {
            let (password, generated) = if *password_stdin {
                (read_password_line()?, false)
            } else {
                (crate::passwords::random_secret(15), true)
            };
            let hash = crate::passwords::hash_password_async(password.clone()).await?;
            let user = ops::users::add_user(
                ctx,
                Admin::LocalOperator,
                NewUser {
                    id: UserId::from_uuid(uuid::Uuid::now_v7()),
                    name: UserName::parse(name)?,
                    role: Role::parse(role)?,
                    entitlement: Entitlement::parse(companies)?,
                    password_hash: Some(PasswordHash::new(hash)),
                },
            )
            .await?;
            let mut value = wire::user(&user);
            if generated {
                value["password"] = json!(password);
            }
            out(cli, value, || {
                let mut text = format!("added {} ({})", user.name.as_str(), user.role.as_str());
                if generated {
                    text.push_str(&format!("\npassword (shown once): {password}"));
                }
                text
            })
        }
        UserCommand::List => {
            let users = ops::users::list_users(ctx, Admin::LocalOperator).await?;
            let value = json!(users.iter().map(wire::user).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "NAME".into(),
                    "ROLE".into(),
                    "COMPANIES".into(),
                    "DISABLED".into(),
                ]];
                rows.extend(users.iter().map(|u| {
                    vec![
                        u.name.as_str().to_owned(),
                        u.role.as_str().to_owned(),
                        u.entitlement.encode(),
                        u.disabled.to_string(),
                    ]
                }));
                table(rows)
            })
        }
        UserCommand::Disable { name } => {
            let user = ops::users::update_user(
                ctx,
                Admin::LocalOperator,
                &UserName::parse(name)?,
                UserUpdate {
                    role: None,
                    entitlement: None,
                    disabled: Some(true),
                    password_hash: None,
                },
            )
            .await?;
            out(cli, wire::user(&user), || {
                format!("disabled {}", user.name.as_str())
            })
        }
    }
}

async fn token(cli: &Cli, app: &App, cmd: &TokenCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        TokenCommand::Create { user, name } => {
            let secret = crate::passwords::new_api_token_secret();
            let token = ops::users::create_token(
                ctx,
                Admin::LocalOperator,
                ApiTokenId::from_uuid(uuid::Uuid::now_v7()),
                &UserName::parse(user)?,
                name,
                &secret,
            )
            .await?;
            let mut value = wire::token(&token);
            value["secret"] = json!(secret);
            out(cli, value, || {
                format!(
                    "token {} for {user}\nsecret (shown once): {secret}",
                    token.id
                )
            })
        }
        TokenCommand::List { user } => {
            let owner = user.as_deref().map(UserName::parse).transpose()?;
            let tokens = ops::users::list_tokens(ctx, Admin::LocalOperator, owner.as_ref()).await?;
            let value = json!(tokens.iter().map(wire::token).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "ID".into(),
                    "NAME".into(),
                    "CREATED".into(),
                    "LAST USED".into(),
                    "REVOKED".into(),
                ]];
                rows.extend(tokens.iter().map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        t.created_at.to_string(),
                        t.last_used_at.map(|x| x.to_string()).unwrap_or_default(),
                        t.revoked_at.map(|x| x.to_string()).unwrap_or_default(),
                    ]
                }));
                table(rows)
            })
        }
        TokenCommand::Revoke { id } => {
            let token =
                ops::users::revoke_token(ctx, Admin::LocalOperator, ApiTokenId::parse(id)?).await?;
            out(cli, wire::token(&token), || format!("revoked {}", token.id))
        }
    }
}

fn company_line(c: &exogate_core::model::Company) -> Vec<String> {
    let (badge, checked) = match &c.exchange_status {
        Some(s) => (s.shown_state().badge().to_owned(), s.checked_at.to_string()),
        None if c.connection.is_some() => ("(not checked)".to_owned(), String::new()),
        None => ("(not connected)".to_owned(), String::new()),
    };
    vec![
        c.id.as_str().to_owned(),
        c.name.clone(),
        c.connection
            .as_ref()
            .map(|x| x.tenant_id.to_string())
            .unwrap_or_default(),
        badge,
        checked,
    ]
}

async fn company(cli: &Cli, app: &App, cmd: &CompanyCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        CompanyCommand::Add { id, name, who } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::add_company(ctx, &actor, CompanyId::parse(id)?, name).await?;
            out(cli, wire::company(&c), || {
                format!("added {}", c.id.as_str())
            })
        }
        CompanyCommand::List { who } => {
            let actor = actor(app, who).await?;
            let companies = ops::companies::list_companies(ctx, &actor).await?;
            let value = json!(companies.iter().map(wire::company).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "ID".into(),
                    "NAME".into(),
                    "TENANT".into(),
                    "EXCHANGE ADMIN".into(),
                    "CHECKED".into(),
                ]];
                rows.extend(companies.iter().map(company_line));
                table(rows)
            })
        }
        CompanyCommand::Show { id, who } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::get_company(ctx, &actor, &CompanyId::parse(id)?).await?;
            out(cli, wire::company(&c), || {
                let mut text = table(vec![company_line(&c)]);
                if let Some(s) = &c.exchange_status {
                    let fix = s.shown_state().fix();
                    if !fix.is_empty() {
                        text.push_str(&format!("\nfix: {fix}"));
                    }
                }
                text
            })
        }
        CompanyCommand::ConnectUrl { id, tenant, who } => {
            let actor = actor(app, who).await?;
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            let url = connect_url(app, &actor, &CompanyId::parse(id)?, tenant).await?;
            out(cli, json!({"url": url}), || {
                format!(
                    "{url}\n(single use, valid 10 minutes; give it to an admin of the customer's tenant)"
                )
            })
        }
        CompanyCommand::Check { id, who } => {
            let actor = actor(app, who).await?;
            let id = CompanyId::parse(id)?;
            ops::companies::check_status(ctx, Some(&actor), &id).await?;
            let c = ops::companies::get_company(ctx, &actor, &id).await?;
            out(cli, wire::company(&c), || table(vec![company_line(&c)]))
        }
        CompanyCommand::Disconnect { id, who } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::disconnect(ctx, &actor, &CompanyId::parse(id)?).await?;
            out(cli, wire::company(&c), || {
                format!("disconnected {}", c.id.as_str())
            })
        }
        CompanyCommand::Set {
            id,
            separate_approver,
            who,
        } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::set_separate_approver(
                ctx,
                &actor,
                &CompanyId::parse(id)?,
                *separate_approver,
            )
            .await?;
            out(cli, wire::company(&c), || {
                format!(
                    "{}: separate approver {}",
                    c.id.as_str(),
                    if c.separate_approver { "on" } else { "off" }
                )
            })
        }
    }
}

/// Issues a single-use consent state for connecting `company` and returns the v1 admin-consent
/// URL. The state is bound to the company, the user and the tenant (the company's own when it
/// is connected), not to a browser session: the callback accepts it from any browser.
async fn connect_url(
    app: &App,
    actor: &Actor,
    company: &CompanyId,
    tenant: Option<TenantId>,
) -> CliResult<String> {
    let secret = crate::passwords::random_secret(32);
    let req = ops::consent::ConsentRequest {
        purpose: exogate_core::model::ConsentPurpose::Connect,
        tenant,
        session_id: None,
        state: &secret,
        ttl_secs: crate::web::consent::CONSENT_STATE_TTL_SECS,
    };
    let state = ops::consent::begin(app.ctx(), actor, company, &req).await?;
    let redirect = app.url(crate::web::consent::CALLBACK_PATH);
    let tenant = state.expected_tenant.map(|t| t.as_uuid());
    Ok(app
        .m365
        .connect_consent_url(tenant, &redirect, &secret)
        .to_string())
}

fn permissions_text(
    mailbox: &exogate_core::model::ResolvedIdentity,
    entries: &[exogate_core::ports::PermissionEntry],
) -> String {
    let mut rows = vec![vec!["TRUSTEE".into(), "NAME".into(), "RIGHTS".into()]];
    rows.extend(entries.iter().map(|p| {
        let (who, name) = match &p.resolved {
            Some(r) => (r.primary_address.clone(), r.display_name.clone()),
            None if p.trustee.starts_with("S-1-5-21-") => {
                (p.trustee.clone(), "(orphaned SID)".to_owned())
            }
            None => (p.trustee.clone(), "(unresolved)".to_owned()),
        };
        vec![who, name, p.access_rights.join(", ")]
    }));
    format!(
        "{} <{}>\n{}",
        mailbox.display_name,
        mailbox.primary_address,
        table(rows)
    )
}

async fn mailbox(cli: &Cli, app: &App, cmd: &MailboxCommand) -> CliResult<()> {
    let ctx = app.ctx();
    let (MailboxCommand::Permissions(args)
    | MailboxCommand::SendAs(args)
    | MailboxCommand::Details(args)) = cmd;
    let actor = actor(app, &args.who).await?;
    let company = CompanyId::parse(&args.company)?;
    let input = IdentityInput::parse(&args.mailbox)?;
    match cmd {
        MailboxCommand::Permissions(_) => {
            let (mbx, entries) =
                ops::reads::view_mailbox_permissions(ctx, &actor, &company, &input).await?;
            let value = json!({"mailbox": wire::identity(&mbx), "full_access": entries.iter().map(wire::permission).collect::<Vec<_>>()});
            out(cli, value, || permissions_text(&mbx, &entries))
        }
        MailboxCommand::SendAs(_) => {
            let (mbx, entries) =
                ops::reads::view_send_as_permissions(ctx, &actor, &company, &input).await?;
            let value = json!({"mailbox": wire::identity(&mbx), "send_as": entries.iter().map(wire::permission).collect::<Vec<_>>()});
            out(cli, value, || permissions_text(&mbx, &entries))
        }
        MailboxCommand::Details(_) => {
            let details = ops::reads::view_mailbox_details(ctx, &actor, &company, &input).await?;
            out(cli, wire::mailbox_details(&details), || {
                let mut text = permissions_text(&details.mailbox, &details.send_on_behalf);
                for (k, v) in &details.properties {
                    text.push_str(&format!("\n{k}: {v}"));
                }
                text
            })
        }
    }
}

fn request_text(r: &exogate_core::request::ApprovalRequest) -> String {
    let mut text = format!(
        "{}  {}  {}  risk {}  by {} via {}\n  {}",
        r.id,
        r.state.as_str(),
        r.company.as_str(),
        r.risk.as_str(),
        r.requester.user_name.as_str(),
        r.requester.channel,
        r.summary()
    );
    if let Some(d) = &r.decision {
        text.push_str(&format!(
            "\n  {} by {} at {}{}",
            if d.approved { "approved" } else { "rejected" },
            d.by_name.as_str(),
            d.at,
            d.reason
                .as_deref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        ));
    }
    for res in &r.results {
        text.push_str(&format!(
            "\n  result: {} (before {}, after {}, verified {}) {}",
            res.outcome.as_str(),
            res.before.map_or("?", |p| p.as_str()),
            res.after.map_or("?", |p| p.as_str()),
            res.verified,
            res.message
        ));
    }
    text
}

async fn approvals(cli: &Cli, app: &App, cmd: &ApprovalsCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        ApprovalsCommand::List { state, who } => {
            let actor = actor(app, who).await?;
            let states = match state {
                Some(s) => Some(vec![RequestState::parse(s).ok_or_else(|| CliError {
                    code: "invalid_input",
                    message: format!("`{s}` is not a request state"),
                })?]),
                None => None,
            };
            let requests = ops::requests::list_requests(
                ctx,
                &actor,
                RequestFilter {
                    states,
                    ..RequestFilter::default()
                },
            )
            .await?;
            let value = json!(requests.iter().map(wire::request).collect::<Vec<_>>());
            out(cli, value, || {
                if requests.is_empty() {
                    return "no requests".to_owned();
                }
                requests
                    .iter()
                    .map(request_text)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ApprovalsCommand::Show { id, who } => {
            let actor = actor(app, who).await?;
            let r = ops::requests::get_request(ctx, &actor, RequestId::parse(id)?).await?;
            out(cli, wire::request(&r), || request_text(&r))
        }
        ApprovalsCommand::Approve { id, reason, who } => {
            let actor = actor(app, who).await?;
            let r = ops::requests::approve(ctx, &actor, RequestId::parse(id)?, reason.as_deref())
                .await?;
            out(cli, wire::request(&r), || {
                format!("approved {}; a running exogate server executes it", r.id)
            })
        }
        ApprovalsCommand::Reject { id, reason, who } => {
            let actor = actor(app, who).await?;
            let r = ops::requests::reject(ctx, &actor, RequestId::parse(id)?, Some(reason)).await?;
            out(cli, wire::request(&r), || format!("rejected {}", r.id))
        }
    }
}

async fn audit(cli: &Cli, app: &App, config: &Config, cmd: &AuditCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        AuditCommand::List {
            company,
            kind,
            request,
            actor: by,
            since,
            until,
            limit,
            who,
        } => {
            use exogate_core::audit::{AuditFilter, DayEnd, parse_time_bound};
            let actor = actor(app, who).await?;
            let filter = AuditFilter {
                company: company.as_deref().map(CompanyId::parse).transpose()?,
                request: request.as_deref().map(RequestId::parse).transpose()?,
                kind: kind.clone(),
                actor: by.clone(),
                since: parse_time_bound("since", since.as_deref().unwrap_or(""), DayEnd::Start)?,
                until: parse_time_bound("until", until.as_deref().unwrap_or(""), DayEnd::End)?,
                before_seq: None,
                limit: *limit,
            };
            let scoped = filter.company.is_some() || filter.request.is_some();
            let events = match ops::audit::search(ctx, &actor, filter).await {
                Ok(page) => page.events,
                Err(
                    e @ CoreError::Forbidden {
                        reason: Denial::NotEntitled | Denial::RoleTooLow { .. },
                    },
                ) if !scoped => {
                    return Err(CliError {
                        code: e.code(),
                        message: format!(
                            "the audit log of every company needs a manager entitled to all companies; add --company COMPANY (or --request ID) ({e})"
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let value = json!(events.iter().map(wire::audit).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "SEQ".into(),
                    "AT".into(),
                    "KIND".into(),
                    "ACTOR".into(),
                    "COMPANY".into(),
                    "SUMMARY".into(),
                ]];
                rows.extend(events.iter().map(|e| {
                    vec![
                        e.seq.to_string(),
                        e.event.at.to_string(),
                        e.event.kind.clone(),
                        format!(
                            "{} ({})",
                            e.event.actor_name.as_deref().unwrap_or("system"),
                            e.event.channel
                        ),
                        e.event.company.clone().unwrap_or_default(),
                        wire::audit_summary(e),
                    ]
                }));
                table(rows)
            })
        }
        AuditCommand::Keygen { out: file } => {
            let path = file
                .clone()
                .unwrap_or_else(|| config.audit_checkpoint_key_file.clone());
            let key = crate::checkpoint::SigningKey::generate(&path)?;
            let public_path = crate::checkpoint::public_key_path(&path);
            out(
                cli,
                json!({"key_file": path.display().to_string(), "public_key_file": public_path.display().to_string(), "public_key": key.public().to_line(), "key_id": key.public().key_id()}),
                || {
                    format!(
                        "created {} (key id {})\npublic key, also in {}: keep a copy where the server cannot write\n{}",
                        path.display(),
                        key.public().key_id(),
                        public_path.display(),
                        key.public().to_line()
                    )
                },
            )
        }
        AuditCommand::Verify {
            checkpoints: Some(file),
            public_key,
        } => verify_checkpoints(cli, app, config, file, public_key.as_deref()).await,
        AuditCommand::Verify {
            checkpoints: None, ..
        } => match ops::audit::verify(ctx).await? {
            ops::audit::Verification::Intact(report) => out(
                cli,
                json!({"intact": true, "events": report.events, "last_seq": report.last_seq, "last_hash": report.last_hash}),
                || {
                    format!(
                        "audit chain intact: {} events, head {} {}",
                        report.events, report.last_seq, report.last_hash
                    )
                },
            ),
            ops::audit::Verification::Broken(b) => Err(chain_broken(cli, &b)),
        },
    }
}

/// `audit verify` found the chain itself broken: said on stdout for `--json`, and the error.
fn chain_broken(cli: &Cli, b: &exogate_core::audit::ChainBreak) -> CliError {
    if cli.json {
        println!(
            "{}",
            json!({"intact": false, "first_bad_seq": b.seq, "problem": b.to_string()})
        );
    }
    CliError {
        code: "audit_chain_broken",
        message: format!("audit chain broken: {b}"),
    }
}

/// `audit verify --checkpoints FILE`: every line's signature, then the chain against them.
async fn verify_checkpoints(
    cli: &Cli,
    app: &App,
    config: &Config,
    file: &std::path::Path,
    public_key: Option<&std::path::Path>,
) -> CliResult<()> {
    use crate::checkpoint::{PublicKey, SigningKey, parse_signed, public_key_path};
    let key = match public_key {
        Some(path) => PublicKey::read(path)?,
        None => {
            let key_file = &config.audit_checkpoint_key_file;
            let beside = public_key_path(key_file);
            if beside.exists() {
                PublicKey::read(&beside)?
            } else if key_file.exists() {
                SigningKey::read(key_file)?.public().clone()
            } else {
                return Err(
                    crate::checkpoint::CheckpointError::NoPublicKey { path: beside }.into(),
                );
            }
        }
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::checkpoint::CheckpointError::FileUnreadable {
            path: file.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let signed = match parse_signed(&text, &key) {
        Ok(signed) => signed,
        Err(forged) => {
            if cli.json {
                println!(
                    "{}",
                    json!({"intact": false, "key_id": key.key_id(), "forged_checkpoint": {"line": forged.line, "seq": forged.seq, "at": forged.at, "problem": forged.reason}})
                );
            }
            return Err(CliError {
                code: "audit_checkpoint_forged",
                message: format!("{}: {forged}", file.display()),
            });
        }
    };
    let lines: Vec<usize> = signed.iter().map(|(line, _)| *line).collect();
    let checkpoints = signed.into_iter().map(|(_, c)| c).collect();
    match ops::audit::verify_with_checkpoints(app.ctx(), checkpoints).await? {
        ops::audit::CheckedVerification::Intact {
            report,
            checkpoints,
        } => out(
            cli,
            json!({"intact": true, "events": report.events, "last_seq": report.last_seq, "last_hash": report.last_hash, "checkpoints": checkpoints, "key_id": key.key_id()}),
            || {
                format!(
                    "audit chain intact and agrees with {checkpoints} signed checkpoints (key {}): {} events, head {} {}",
                    key.key_id(),
                    report.events,
                    report.last_seq,
                    report.last_hash
                )
            },
        ),
        ops::audit::CheckedVerification::Broken(b) => Err(chain_broken(cli, &b)),
        ops::audit::CheckedVerification::Contradicted(c) => {
            let line = lines.get(c.index).copied().unwrap_or_default();
            if cli.json {
                println!(
                    "{}",
                    json!({"intact": false, "contradicted_checkpoint": {"line": line, "seq": c.checkpoint.seq, "at": c.checkpoint.at.to_string(), "head": c.checkpoint.head, "problem": c.to_string()}})
                );
            }
            Err(CliError {
                code: "audit_checkpoint_contradicted",
                message: format!(
                    "audit chain contradicts the checkpoint on line {line} of {}: {c}",
                    file.display()
                ),
            })
        }
    }
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
    fn from_sweep_ref(e: &crate::inventory::SweepError) -> CliError {
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

/// Progress bars (one per company) on a terminal; nothing otherwise.
fn sweep_progress() -> (
    crate::inventory::ProgressFn,
    Option<indicatif::MultiProgress>,
) {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return (crate::inventory::no_progress(), None);
    }
    let multi = indicatif::MultiProgress::new();
    let bars: parking_lot::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>> =
        parking_lot::Mutex::new(std::collections::HashMap::new());
    let m = multi.clone();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>16} {bar:30} {pos}/{len} {msg} ({elapsed})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let f: crate::inventory::ProgressFn = Arc::new(move |company, p| {
        let mut bars = bars.lock();
        let bar = bars.entry(company.to_string()).or_insert_with(|| {
            let b = m.add(indicatif::ProgressBar::new(0));
            b.set_style(style.clone());
            b.set_prefix(company.to_string());
            b
        });
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(p.phase.as_str());
        if p.phase == crate::inventory::Phase::Done {
            bar.finish();
        }
    });
    (f, Some(multi))
}

fn sweep_json(
    company: &CompanyId,
    r: &Result<crate::inventory::SweepReport, crate::inventory::SweepError>,
) -> Value {
    match r {
        Ok(r) => json!({
            "company": company.as_str(), "ok": true, "generation": r.generation,
            "resumed": r.resumed, "mailboxes": r.mailboxes, "rows": r.rows,
            "skipped": r.skipped, "elapsed_ms": r.elapsed.as_millis() as u64,
        }),
        Err(e) => json!({
            "company": company.as_str(), "ok": false, "error": e.to_string(),
            "code": CliError::from_sweep_ref(e).code,
        }),
    }
}

fn sweep_text(
    company: &CompanyId,
    r: &Result<crate::inventory::SweepReport, crate::inventory::SweepError>,
) -> String {
    match r {
        Ok(r) => format!(
            "{company}: {} mailboxes, {} rows in {:.1} s{}",
            r.mailboxes,
            r.rows,
            r.elapsed.as_secs_f64(),
            if r.resumed {
                format!(
                    " (continued an interrupted sweep; {} mailboxes were done)",
                    r.skipped
                )
            } else {
                String::new()
            }
        ),
        Err(e) => format!("{company}: FAILED: {e}"),
    }
}

fn inventory_out(
    cli: &Cli,
    csv: bool,
    value: Value,
    parts: &[exogate_core::ops::inventory::CompanyInventory],
    empty: &str,
) -> CliResult<()> {
    if csv {
        print!("{}", crate::inventory_view::csv(parts));
        return Ok(());
    }
    out(cli, value, || crate::inventory_view::text(parts, empty))
}

async fn inventory(cli: &Cli, app: &App, cmd: &InventoryCommand) -> CliResult<()> {
    use crate::inventory_view::company_json;
    let ctx = app.ctx();
    match cmd {
        InventoryCommand::Sync {
            company,
            all: _,
            parallel,
            who,
        } => {
            let actor = actor(app, who).await?;
            let (progress, bars) = sweep_progress();
            let results = match company {
                Some(c) => {
                    let c = CompanyId::parse(c)?;
                    let r = crate::inventory::sync_company(app, &actor, &c, &progress).await;
                    if let Err(
                        e @ (crate::inventory::SweepError::Core(_)
                        | crate::inventory::SweepError::Busy { .. }),
                    ) = r
                    {
                        return Err(e.into());
                    }
                    vec![(c, r)]
                }
                None => crate::inventory::sync_all(app, &actor, *parallel, &progress).await?,
            };
            drop(bars);
            let failed = results.iter().filter(|r| r.1.is_err()).count();
            out(
                cli,
                json!(
                    results
                        .iter()
                        .map(|(c, r)| sweep_json(c, r))
                        .collect::<Vec<_>>()
                ),
                || {
                    results
                        .iter()
                        .map(|(c, r)| sweep_text(c, r))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )?;
            if failed > 0 {
                return Err(CliError {
                    code: "sweep_failed",
                    message: format!("{failed} of {} sweeps failed", results.len()),
                });
            }
            Ok(())
        }
        InventoryCommand::User { identity, csv, who } => {
            let actor = actor(app, who).await?;
            let user = IdentityInput::parse(identity)?;
            let parts = ops::inventory::by_user(ctx, &actor, &user).await?;
            let value = json!({
                "user": user.as_str(),
                "companies": parts.iter().map(company_json).collect::<Vec<_>>(),
            });
            inventory_out(cli, *csv, value, &parts, "nothing")
        }
        InventoryCommand::Mailbox {
            mailbox,
            company,
            csv,
            who,
        } => {
            let actor = actor(app, who).await?;
            let mailbox = IdentityInput::parse(mailbox)?;
            let part =
                ops::inventory::by_mailbox(ctx, &actor, &CompanyId::parse(company)?, &mailbox)
                    .await?;
            let value = json!({"mailbox": mailbox.as_str(), "company": company_json(&part)});
            inventory_out(cli, *csv, value, std::slice::from_ref(&part), "nobody")
        }
        InventoryCommand::Export { company, csv, who } => {
            let actor = actor(app, who).await?;
            let parts = match company {
                Some(c) => {
                    vec![ops::inventory::company_rows(ctx, &actor, &CompanyId::parse(c)?).await?]
                }
                None => {
                    let mut parts = Vec::new();
                    for s in ops::inventory::statuses(ctx, &actor).await? {
                        parts.push(ops::inventory::company_rows(ctx, &actor, &s.company).await?);
                    }
                    parts
                }
            };
            let value = json!({"companies": parts.iter().map(company_json).collect::<Vec<_>>()});
            inventory_out(cli, *csv, value, &parts, "no rows")
        }
        InventoryCommand::Status { who } => {
            let actor = actor(app, who).await?;
            let parts = ops::inventory::statuses(ctx, &actor).await?;
            let value = json!(parts.iter().map(company_json).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "COMPANY".to_owned(),
                    "AS OF".to_owned(),
                    "MAILBOXES".to_owned(),
                    "ROWS".to_owned(),
                    "STATE".to_owned(),
                ]];
                for p in &parts {
                    let s = p.status.as_ref();
                    rows.push(vec![
                        p.company.to_string(),
                        s.and_then(|s| s.as_of)
                            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
                        s.map_or(0, |s| s.mailboxes).to_string(),
                        s.map_or(0, |s| s.rows).to_string(),
                        crate::inventory_view::warning(p)
                            .unwrap_or_else(|| p.freshness.as_str().to_owned()),
                    ]);
                }
                table(rows)
            })
        }
    }
}

async fn offboard(cli: &Cli, app: &App, args: &OffboardArgs) -> CliResult<()> {
    let actor = actor(app, &args.who).await?;
    let input = ops::inventory::OffboardInput {
        id: RequestId::from_uuid(uuid::Uuid::now_v7()),
        company: CompanyId::parse(&args.company)?,
        user: IdentityInput::parse(&args.user)?,
    };
    let r = ops::inventory::request_offboard(app.ctx(), &actor, input).await?;
    // What the user also opens through groups stays: removing that is a membership change.
    let mut through_groups = Vec::new();
    if let Some(a) = r.actions.first() {
        let user = IdentityInput::parse(&a.trustee.object_id)?;
        let part = ops::inventory::by_user_in(app.ctx(), &actor, &r.company, &user).await?;
        through_groups.extend(
            part.rows
                .into_iter()
                .filter(|row| row.trustee.class == exogate_core::inventory::TrusteeClass::Group),
        );
    }
    let mut v = wire::request(&r);
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "held_through_groups".into(),
            json!(
                through_groups
                    .iter()
                    .map(crate::inventory_view::row_json)
                    .collect::<Vec<_>>()
            ),
        );
    }
    out(cli, v, || {
        let mut text = format!(
            "{} holds {} right(s) directly in {}; asked for their removal as ONE request:\n",
            args.user,
            r.actions.len(),
            r.company
        );
        for a in &r.actions {
            text.push_str(&format!(
                "  remove {} on {}\n",
                a.operation.permission.label(),
                a.mailbox.primary_address
            ));
        }
        if !through_groups.is_empty() {
            text.push_str(
                "Not part of it (held through a group; remove the user from the group instead):\n",
            );
            for row in &through_groups {
                text.push_str(&format!(
                    "  {} on {} through {}\n",
                    row.right.label(),
                    row.mailbox.primary_address,
                    exogate_core::text::capped(row.trustee.label(), 80)
                ));
            }
        }
        text.push_str(&format!(
            "request {} is pending approval (risk {}); approve it with `exogate approvals approve {}`",
            r.id,
            r.risk.as_str(),
            r.id
        ));
        text
    })
}
