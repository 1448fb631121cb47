//! The demo world: the emulator in-process, a SQLite data directory, demo users, the four
//! companies linked to the emulated tenants (Contoso configured, Fabrikam with the role missing,
//! Northwind not yet authorized, Tailspin deleted), and an MCP token. `exogate demo` runs it;
//! the test suite seeds the same world.
//!
//! The demo listens on loopback unless `--allow-remote` is given, and then its users get random
//! passwords. Its data directory is private (0700; an existing one is tightened to 0700) and
//! `demo.json`, `exogate.toml` and the SQLite database are created 0600 (SQLite gives its `-wal`
//! and `-shm` files the database's mode), so no other local user reads the passwords, the MCP
//! token or the database.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use exogate_core::model::{
    Actor, ApiTokenId, Channel, CompanyId, Entitlement, Role, TenantId, UserName,
};
use exogate_core::ops;
use exogate_core::ops::companies::ConnectInput;
use exogate_core::ops::users::Admin;
use m365_emulator::scenario::{
    DEMO_CONNECT_APP, DEMO_CONNECT_SECRET, DEMO_CONTOSO, DEMO_EXCHANGE_APP, DEMO_EXCHANGE_SECRET,
    DEMO_FABRIKAM, DEMO_NORTHWIND, DEMO_TAILSPIN,
};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;

// The flags of `exogate demo`.
#[derive(clap::Args, Debug)]
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

/// A demo user and the password it signs in with.
#[derive(Debug, Clone, Serialize)]
pub struct DemoUser {
    pub name: String,
    pub password: String,
    pub role: String,
}

/// What `exogate demo` prints and writes to `<data-dir>/demo.json`.
#[derive(Debug, Clone, Serialize)]
pub struct DemoInfo {
    pub web_url: String,
    pub mcp_url: String,
    pub emulator_url: String,
    pub users: Vec<DemoUser>,
    /// API token of the technician, for an MCP client.
    pub mcp_token: String,
}

/// Why `exogate demo` refused to start (nothing was started or written).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(
        "`{listen}` is not a loopback address: the demo listens on loopback only. Pass --allow-remote to serve it on the network (its users then get random passwords)"
    )]
    NotLoopback { listen: String },
    #[error("`{listen}` is not an address to listen on: {reason}")]
    BadListen { listen: String, reason: String },
    #[error("the data directory `{path}` is not a directory")]
    NotADirectory { path: String },
}

impl DemoError {
    /// Stable code for machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotLoopback { .. } => "demo_not_loopback",
            Self::BadListen { .. } => "demo_bad_listen",
            Self::NotADirectory { .. } => "demo_data_dir_invalid",
        }
    }
}

/// Checks the demo's listen address before anything starts: every address it names must be
/// loopback unless `allow_remote`.
pub async fn check_listen(listen: &str, allow_remote: bool) -> Result<(), DemoError> {
    let bad = |reason: String| DemoError::BadListen {
        listen: listen.to_owned(),
        reason,
    };
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| bad(e.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(bad("it names no address".to_owned()));
    }
    if !allow_remote && addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(DemoError::NotLoopback {
            listen: listen.to_owned(),
        });
    }
    Ok(())
}

/// Whether the demo users' passwords are the fixed ones (loopback) or drawn at random.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPasswords {
    Fixed,
    Random,
}

/// The demo's users: one per role. Passwords are fixed so a person can type them while the
/// demo listens on loopback; with `--allow-remote` they are random instead.
pub const USERS: [(&str, &str, Role); 4] = [
    ("admin", "demo-admin-pass", Role::Admin),
    ("manager", "demo-manager-pass", Role::Manager),
    ("tech", "demo-tech-pass", Role::Technician),
    ("viewer", "demo-viewer-pass", Role::Viewer),
];

/// The companies: id, name, tenant and its initial domain.
pub const COMPANIES: [(&str, &str, uuid::Uuid, &str); 4] = [
    (
        "contoso",
        "Contoso",
        DEMO_CONTOSO,
        "contoso.onmicrosoft.com",
    ),
    (
        "fabrikam",
        "Fabrikam",
        DEMO_FABRIKAM,
        "fabrikam.onmicrosoft.com",
    ),
    (
        "northwind",
        "Northwind",
        DEMO_NORTHWIND,
        "northwind.onmicrosoft.com",
    ),
    (
        "tailspin",
        "Tailspin",
        DEMO_TAILSPIN,
        "tailspin.onmicrosoft.com",
    ),
];

/// The configuration of a demo server whose Microsoft is the emulator at `emulator_url`.
pub fn config(
    data_dir: &Path,
    database_url: Option<&str>,
    listen: &str,
    public_url: &str,
    emulator_url: &str,
) -> anyhow::Result<Config> {
    Ok(Config::from_toml(&config_text(
        data_dir,
        database_url,
        listen,
        public_url,
        emulator_url,
    ))?)
}

/// [`config`] as TOML text, written to `<data-dir>/exogate.toml` so CLI commands find it.
pub fn config_text(
    data_dir: &Path,
    database_url: Option<&str>,
    listen: &str,
    public_url: &str,
    emulator_url: &str,
) -> String {
    let database_url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("exogate.db").display()));
    format!(
        r#"# Written by `exogate demo`: the demo server's configuration (Microsoft is the emulator).
data_dir = {data_dir:?}
database_url = {database_url:?}
[server]
listen = {listen:?}
public_url = {public_url:?}
secure_cookies = false
loopback_hosts = true
[microsoft]
login_url = {emulator_url:?}
graph_url = {emulator_url:?}
exchange_url = {emulator_url:?}
[microsoft.exchange_app]
client_id = "{DEMO_EXCHANGE_APP}"
client_secret = "{DEMO_EXCHANGE_SECRET}"
[microsoft.connect_app]
client_id = "{DEMO_CONNECT_APP}"
client_secret = "{DEMO_CONNECT_SECRET}"
[status]
propagation_window_seconds = 20
{signin}"#,
        data_dir = data_dir.display().to_string(),
        signin = signin_text(),
    )
}

// (msft-signin)
/// The demo's `[signin]`: local accounts on (the demo users), and Sign in with Microsoft
/// against the emulator's demo sign-in tenant, its groups mapped to roles and companies.
pub fn signin_text() -> String {
    use m365_emulator::signin::demo;
    format!(
        r#"[signin]
# The demo's local users sign in with their fixed passwords alone (one command, no phone);
# production keeps the second factor for managers and admins on.
local_accounts = true
second_factor = false
[signin.microsoft]
client_id = "{app}"
client_secret = "{secret}"
tenants = ["{tenant}"]
session_hours = 8
[signin.microsoft.roles]
admin = ["{admins}"]
manager = ["{managers}"]
technician = ["{techs}"]
[signin.microsoft.companies]
"{admins}" = "*"
"{managers}" = "*"
"{techs}" = "contoso,fabrikam"
"#,
        app = demo::APP,
        secret = demo::SECRET,
        tenant = demo::TENANT,
        admins = demo::ADMINS,
        managers = demo::MANAGERS,
        techs = demo::TECHNICIANS,
    )
}

/// The local operator acting through the CLI, as an admin actor for seeding.
fn operator(admin: exogate_core::User) -> Actor {
    Actor {
        user: admin,
        channel: Channel::Cli,
    }
}

/// Seeds users (with the fixed passwords), companies (connected to the emulated tenants) and an
/// MCP token into a fresh store, then checks every company's status once so the badges show at
/// start.
pub async fn seed(app: &App) -> anyhow::Result<(Vec<DemoUser>, String)> {
    seed_with(app, DemoPasswords::Fixed).await
}

/// [`seed`], with the users' passwords fixed or random.
pub async fn seed_with(
    app: &App,
    passwords: DemoPasswords,
) -> anyhow::Result<(Vec<DemoUser>, String)> {
    let ctx = app.ctx();
    let mut users = Vec::new();
    let mut admin = None;
    for (name, fixed, role) in USERS {
        let password = match passwords {
            DemoPasswords::Fixed => fixed.to_owned(),
            DemoPasswords::Random => crate::passwords::random_secret(18),
        };
        let user = crate::local_users::add_with_password(
            ctx,
            UserName::parse(name)?,
            role,
            Entitlement::All,
            &password,
        )
        .await
        .with_context(|| format!("cannot add demo user `{name}`"))?;
        if role == Role::Admin {
            admin = Some(user);
        }
        users.push(DemoUser {
            name: name.to_owned(),
            password,
            role: role.as_str().to_owned(),
        });
    }
    let admin = operator(admin.context("the demo has an admin")?);
    for (id, name, tenant, domain) in COMPANIES {
        let id = CompanyId::parse(id)?;
        ops::companies::add_company(ctx, &admin, id.clone(), name).await?;
        let input = ConnectInput {
            tenant_id: TenantId::from_uuid(tenant),
            display_name: name.to_owned(),
            default_domain: domain.to_owned(),
        };
        ops::companies::connect(ctx, &admin, &id, &input).await?;
        if let Err(err) = ops::companies::check_status(ctx, Some(&admin), &id).await {
            tracing::warn!(company = %id, error = %err, "initial status check failed");
        }
    }
    let secret = crate::passwords::new_api_token_secret();
    ops::users::create_token(
        ctx,
        Admin::LocalOperator,
        ApiTokenId::from_uuid(uuid::Uuid::now_v7()),
        &UserName::parse("tech")?,
        "demo agent",
        &secret,
    )
    .await?;
    Ok((users, secret))
}

/// Makes `data_dir` the demo's private directory (created 0700; an existing one is tightened to
/// 0700) and removes a previous demo's files, so each run starts from the same world. The
/// database file is created empty here, 0600, so SQLite never creates it with a wider mode.
pub fn reset_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(data_dir) {
        Ok(m) if m.is_dir() => {
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make `{}` private (0700)", data_dir.display()))?
        }
        Ok(_) => {
            return Err(DemoError::NotADirectory {
                path: data_dir.display().to_string(),
            }
            .into());
        }
        Err(_) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?,
    }
    for name in [
        "exogate.db",
        "exogate.db-wal",
        "exogate.db-shm",
        "exogate.db-journal",
        "demo.json",
        "exogate.toml",
    ] {
        let path = data_dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove `{}`", path.display()))?;
        }
    }
    write_private(&data_dir.join("exogate.db"), b"")?;
    Ok(())
}

/// Creates `path` (which must not exist) with mode 0600 and writes `bytes`: the file is never
/// readable by anyone else, not even for a moment.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(())
}

/// Writes `demo.json` for scripts (0600: it holds the passwords and the MCP token).
pub fn write_info(data_dir: &Path, info: &DemoInfo) -> anyhow::Result<PathBuf> {
    let path = data_dir.join("demo.json");
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
    }
    write_private(&path, &serde_json::to_vec_pretty(info)?)?;
    Ok(path)
}

/// `exogate demo`: starts everything, prints how to use it, serves until Ctrl-C.
pub async fn run(data_dir: Option<PathBuf>, args: &DemoArgs, json: bool) -> anyhow::Result<()> {
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("exogate-demo"));
    // Refused before anything starts or is written.
    check_listen(&args.listen, args.allow_remote).await?;
    reset_data_dir(&data_dir)?;
    let data_dir = data_dir.canonicalize().unwrap_or(data_dir);
    let emulator_listener = tokio::net::TcpListener::bind(("127.0.0.1", args.emulator_port))
        .await
        .with_context(|| {
            format!(
                "cannot bind the emulator to 127.0.0.1:{}",
                args.emulator_port
            )
        })?;
    let emulator =
        m365_emulator::start_on(emulator_listener, m365_emulator::Scenario::demo()).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (choose another with --listen)",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    let web_url = format!("http://{addr}");
    let text = config_text(
        &data_dir,
        None,
        &addr.to_string(),
        &web_url,
        &emulator.base_url,
    );
    write_private(&data_dir.join("exogate.toml"), text.as_bytes())
        .context("cannot write the demo configuration")?;
    let config = Config::from_toml(&text)?;
    let app = crate::server::build_app(&config).await?;
    let passwords = if args.allow_remote {
        DemoPasswords::Random
    } else {
        DemoPasswords::Fixed
    };
    let (users, mcp_token) = seed_with(&app, passwords).await?;
    let info = DemoInfo {
        web_url: web_url.clone(),
        mcp_url: format!("{web_url}/mcp"),
        emulator_url: emulator.base_url.clone(),
        users,
        mcp_token,
    };
    let path = write_info(&data_dir, &info)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("exogate demo is running.");
        println!("  web app:   {}", info.web_url);
        println!(
            "  MCP:       {}  (Authorization: Bearer {})",
            info.mcp_url, info.mcp_token
        );
        println!(
            "  emulator:  {}  (Microsoft stand-in; consent and role pages)",
            info.emulator_url
        );
        println!("  users:");
        for u in &info.users {
            println!("    {:<8} {:<24} {}", u.name, u.password, u.role);
        }
        println!("  details:   {}", path.display());
        println!(
            "  CLI:       exogate --data-dir {} company list --as tech",
            data_dir.display()
        );
        println!("Press Ctrl-C to stop.");
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
    let worker = crate::worker::WorkerSettings::from_config_with_checkpoints(&config)?;
    let served = crate::server::serve(app.clone(), listener, Some(worker), shutdown).await;
    emulator.shutdown().await?;
    served
}
