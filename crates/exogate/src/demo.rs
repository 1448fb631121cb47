//! The demo world (DESIGN §5): the emulator in-process, a SQLite data directory, demo users,
//! the four companies linked to the emulated tenants, and an MCP token. `exogate demo` runs it;
//! the test suite seeds the same world.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use exogate_core::model::{
    Actor, ApiTokenId, Channel, CompanyId, Entitlement, PasswordHash, Role, TenantId, UserId,
    UserName,
};
use exogate_core::ops;
use exogate_core::ops::companies::ConnectInput;
use exogate_core::ops::users::{Admin, NewUser};
use m365_emulator::scenario::{
    DEMO_CONNECT_APP, DEMO_CONNECT_SECRET, DEMO_CONTOSO, DEMO_EXCHANGE_APP, DEMO_EXCHANGE_SECRET,
    DEMO_FABRIKAM, DEMO_NORTHWIND, DEMO_TAILSPIN,
};
use serde::Serialize;

use crate::app::App;
use crate::config::Config;

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

/// The demo's users: one per role. Passwords are fixed so a person can type them; the demo
/// listens on loopback only.
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
"#,
        data_dir = data_dir.display().to_string(),
    )
}

/// The local operator acting through the CLI, as an admin actor for seeding.
fn operator(admin: exogate_core::User) -> Actor {
    Actor {
        user: admin,
        channel: Channel::Cli,
    }
}

/// Seeds users, companies (connected to the emulated tenants) and an MCP token into a fresh
/// store, then checks every company's status once so the badges show at start.
pub async fn seed(app: &App) -> anyhow::Result<(Vec<DemoUser>, String)> {
    let ctx = app.ctx();
    let mut users = Vec::new();
    let mut admin = None;
    for (name, password, role) in USERS {
        let hash = crate::passwords::hash_password_async(password.to_owned()).await?;
        let user = ops::users::add_user(
            ctx,
            Admin::LocalOperator,
            NewUser {
                id: UserId::from_uuid(uuid::Uuid::now_v7()),
                name: UserName::parse(name)?,
                role,
                entitlement: Entitlement::All,
                password_hash: Some(PasswordHash::new(hash)),
            },
        )
        .await
        .with_context(|| format!("cannot add demo user `{name}`"))?;
        if role == Role::Admin {
            admin = Some(user);
        }
        users.push(DemoUser {
            name: name.to_owned(),
            password: password.to_owned(),
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

/// Removes a previous demo database in `data_dir`, so each run starts from the same world.
pub fn reset_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory `{}`", data_dir.display()))?;
    for name in [
        "exogate.db",
        "exogate.db-wal",
        "exogate.db-shm",
        "demo.json",
    ] {
        let path = data_dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove `{}`", path.display()))?;
        }
    }
    Ok(())
}

/// Writes `demo.json` for scripts.
pub fn write_info(data_dir: &Path, info: &DemoInfo) -> anyhow::Result<PathBuf> {
    let path = data_dir.join("demo.json");
    std::fs::write(&path, serde_json::to_vec_pretty(info)?)
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    Ok(path)
}

/// `exogate demo`: starts everything, prints how to use it, serves until Ctrl-C.
pub async fn run(
    data_dir: Option<PathBuf>,
    args: &crate::cli::DemoArgs,
    json: bool,
) -> anyhow::Result<()> {
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from("exogate-demo"));
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
    std::fs::write(data_dir.join("exogate.toml"), &text)
        .context("cannot write the demo configuration")?;
    let config = Config::from_toml(&text)?;
    let app = crate::server::build_app(&config).await?;
    let (users, mcp_token) = seed(&app).await?;
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
            println!("    {:<8} {:<18} {}", u.name, u.password, u.role);
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
