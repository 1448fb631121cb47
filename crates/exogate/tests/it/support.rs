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
        let emulator = m365_emulator::start(scenario)
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base_url = format!("http://{addr}");
        let config = demo::config(
            dir.path(),
            None,
            &addr.to_string(),
            &base_url,
            &emulator.base_url,
        )
        .expect("demo config");
        let app = exogate::server::build_app(&config)
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
