//! Test vocabulary, shared by every module:
//!
//! - [`TestApp::start`]: the emulator with the demo scenario, a fresh SQLite database in a temp
//!   dir, the demo world seeded (users `admin`, `manager`, `tech`, `viewer` with the passwords of
//!   `exogate::demo::USERS`; companies `contoso`, `fabrikam`, `northwind`, `tailspin`; an MCP
//!   token for `tech`), and the real router plus worker served on `127.0.0.1:0`.
//! - `app.url(path)`, `app.emulator_url(path)`, `app.actor(name)` (a CLI actor for core ops),
//!   `app.apply_log()` (the emulator's oracle), `app.approve(name, id)`, `app.stop()`.
//!
//! Helpers act through public interfaces only.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the vocabulary"
)]

use std::sync::Arc;

use exogate::app::App;
use exogate::demo::{self, DemoUser};
use exogate_core::model::{Actor, Channel, RequestId, UserName};
use exogate_core::ops;
use exogate_core::request::ApprovalRequest;
use m365_emulator::{Emulator, Scenario};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What a CLI run printed.
#[derive(Debug)]
pub struct CliOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl CliOutput {
    /// Stdout parsed as JSON (for `--json` runs).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

pub struct TestApp {
    pub base_url: String,
    pub app: Arc<App>,
    pub emulator: Emulator,
    pub users: Vec<DemoUser>,
    pub mcp_token: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// The demo world on SQLite.
    pub async fn start() -> TestApp {
        Self::start_with(Scenario::demo()).await
    }

    /// The demo world's users and companies over another emulator scenario.
    pub async fn start_with(scenario: Scenario) -> TestApp {
        Self::start_with_microsoft(scenario, "").await
    }

    /// As [`TestApp::start_with`], with `keys` (TOML lines) added to the configuration's
    /// `[microsoft]` section (the server and every CLI run read them).
    pub async fn start_with_microsoft(scenario: Scenario, keys: &str) -> TestApp {
        let keys = keys.to_owned();
        Self::start_with_config(scenario, move |text| {
            text.replacen("[microsoft]\n", &format!("[microsoft]\n{keys}\n"), 1)
        })
        .await
    }

    /// As [`TestApp::start_with`], with the configuration text passed through `edit` (the
    /// server and every CLI run read the edited text).
    pub async fn start_with_config(
        scenario: Scenario,
        edit: impl FnOnce(String) -> String,
    ) -> TestApp {
        Self::start_with_clock(scenario, edit, Arc::new(exogate::app::SystemClock)).await
    }

    /// As [`TestApp::start_with_config`], on `clock` (a `ManualClock` the test drives).
    pub async fn start_with_clock(
        scenario: Scenario,
        edit: impl FnOnce(String) -> String,
        clock: Arc<dyn exogate_core::ports::Clock>,
    ) -> TestApp {
        let emulator = m365_emulator::start(scenario)
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base_url = format!("http://{addr}");
        // Written like the demo does, so CLI commands find it with `--data-dir`.
        let text = demo::config_text(
            dir.path(),
            None,
            &addr.to_string(),
            &base_url,
            &emulator.base_url,
        );
        let text = edit(text);
        std::fs::write(dir.path().join("exogate.toml"), &text).expect("write config");
        let config = exogate::config::Config::from_toml(&text).expect("demo config");
        let app = exogate::server::build_app_with_clock(&config, clock)
            .await
            .expect("app builds");
        let (users, mcp_token) = demo::seed(&app).await.expect("demo world seeds");
        let shutdown = CancellationToken::new();
        let mut worker = exogate::worker::WorkerSettings::new(config.recheck_interval);
        worker.poll = std::time::Duration::from_millis(50);
        let server = tokio::spawn(exogate::server::serve(
            app.clone(),
            listener,
            Some(worker),
            shutdown.clone(),
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        TestApp {
            base_url,
            app,
            emulator,
            users,
            mcp_token,
            http,
            shutdown,
            server,
            _dir: dir,
        }
    }

    /// The data directory (holds `exogate.toml` and the SQLite database).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Runs the `exogate` binary with `--data-dir` set to this app's directory. Async, so the
    /// app and the emulator (on this test's runtime) keep answering while it runs.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        self.cli_with_stdin(args, "").await
    }

    /// As [`TestApp::cli`], feeding `stdin`.
    pub async fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> CliOutput {
        self.cli_with_env(args, stdin, &[]).await
    }

    // (cli-requests)
    /// As [`TestApp::cli_with_stdin`], with these environment variables set too.
    pub async fn cli_with_env(
        &self,
        args: &[&str],
        stdin: &str,
        env: &[(&str, &str)],
    ) -> CliOutput {
        use tokio::io::AsyncWriteExt as _;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .envs(env.iter().copied())
            .env("EXOGATE_LOG", "warn")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("exogate binary runs");
        let mut input = child.stdin.take().expect("stdin");
        // The command may exit (with an error) before reading its input.
        let _ = input.write_all(stdin.as_bytes()).await;
        drop(input);
        let output = child.wait_with_output().await.expect("exogate finishes");
        CliOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn emulator_url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.base_url)
    }

    pub fn password(&self, name: &str) -> String {
        self.users
            .iter()
            .find(|u| u.name == name)
            .expect("demo user")
            .password
            .clone()
    }

    /// A demo user acting through the CLI, for calling core operations directly.
    pub async fn actor(&self, name: &str) -> Actor {
        let user = ops::users::find_user(self.app.ctx(), &UserName::parse(name).expect("name"))
            .await
            .expect("user exists");
        Actor {
            user,
            channel: Channel::Cli,
        }
    }

    /// Approves `id` as `name` (through the core operation the CLI uses) and wakes the worker.
    pub async fn approve(&self, name: &str, id: RequestId) -> ApprovalRequest {
        let actor = self.actor(name).await;
        let request = ops::requests::approve(self.app.ctx(), &actor, id, Some("test approval"))
            .await
            .expect("approve");
        self.app.worker_wake.notify_one();
        request
    }

    /// The emulator's apply log: every change applied to any tenant.
    pub async fn apply_log(&self) -> Vec<Value> {
        let body: Value = self
            .http
            .get(self.emulator_url("/_emulator/apply-log"))
            .send()
            .await
            .expect("apply log")
            .json()
            .await
            .expect("apply log json");
        match body {
            Value::Array(entries) => entries,
            Value::Object(mut map) => match map.remove("entries") {
                Some(Value::Array(entries)) => entries,
                other => panic!("unexpected apply log shape: {other:?}"),
            },
            other => panic!("unexpected apply log shape: {other}"),
        }
    }

    /// Waits until request `id` reaches a terminal state, woken by the app's events (no
    /// sleeping); fails after `limit`.
    pub async fn wait_terminal(
        &self,
        id: RequestId,
        limit: std::time::Duration,
    ) -> ApprovalRequest {
        let mut events = self.app.events.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let request = self
                .app
                .store
                .get_request(id)
                .await
                .expect("store")
                .expect("request exists");
            if request.state.is_terminal() {
                return request;
            }
            self.app.worker_wake.notify_one();
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(_) => {}
                Err(_) => panic!("request {id} still {:?} after {limit:?}", request.state),
            }
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server
            .await
            .expect("server task")
            .expect("server stops cleanly");
        self.emulator.shutdown().await.expect("emulator stops");
    }
}

/// Polls `check` until it returns `Some`, failing after `limit`: for state held outside this
/// process (a replica started as a process, an SMTP server, rows a worker writes), which sends
/// no signal to wait on. It waits for a condition, never for a fixed time.
pub async fn eventually<T, F, Fut>(what: &str, limit: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for a condition that is true or not.
pub async fn until<F, Fut>(what: &str, limit: std::time::Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually(what, limit, || {
        let f = check();
        async move { f.await.then_some(()) }
    })
    .await
}
