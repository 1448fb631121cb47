//! Running several replicas: `/readyz`, the database going away under a running server (503
//! `database_unavailable`, nothing half-written, the worker resumes), and SIGTERM on the real
//! binary (the execution in flight finishes, then the process exits cleanly).

use std::time::Duration;

use exogate_core::model::RequestId;
use m365_emulator::Scenario;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::support::{TestApp, eventually};

async fn get_json(http: &reqwest::Client, url: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = http.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let r = req.send().await.expect("answers");
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A person signed in through the API: the session cookie and its CSRF token.
struct Person {
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Person {
    async fn login(base: &str, name: &str, password: &str) -> Person {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("{base}/api/v1/login"))
            .json(&json!({"user": name, "password": password}))
            .send()
            .await
            .expect("login answers");
        assert_eq!(r.status(), StatusCode::OK);
        let cookie = r
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("session cookie")
            .to_owned();
        let body: Value = r.json().await.expect("login json");
        let csrf = body["csrf_token"].as_str().expect("csrf token").to_owned();
        Person { http, cookie, csrf }
    }

    /// `POST {url}` with the session: status and body.
    async fn approve(&self, url: &str, reason: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(url)
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .expect("approve answers");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// Asks for Full Access for bob on sales (Contoso) with the agent's token; the request's id.
async fn ask_full_access_for_bob(http: &reqwest::Client, base: &str, token: &str) -> String {
    let r = http
        .post(format!("{base}/api/v1/requests"))
        .bearer_auth(token)
        .json(&json!({"company": "contoso", "tool": "grant_full_access", "mailbox": "sales", "trustee": "bob"}))
        .send()
        .await
        .expect("ask answers");
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.expect("request json");
    body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn readyz_needs_an_answering_database_with_every_migration_applied() {
    let t = TestApp::start().await;
    let (status, body) = get_json(&t.http, &t.url("/readyz"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"status": "ready"}));

    // Take the newest migration off the record, as a database restored from an older backup.
    let db = format!("sqlite://{}", t.data_dir().join("exogate.db").display());
    let mut conn = sqlx::SqliteConnection::connect(&db).await.expect("open");
    sqlx::query(AssertSqlSafe(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    ))
    .execute(&mut conn)
    .await
    .expect("delete");
    conn.close().await.ok();

    let (status, body) = get_json(&t.http, &t.url("/readyz"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"status": "not_ready", "reason": "migrations_pending"})
    );
    // Liveness is another question: the process is fine.
    let (status, _) = get_json(&t.http, &t.url("/healthz"), None).await;
    assert_eq!(status, StatusCode::OK);
    t.stop().await;
}

/// A TCP relay to PostgreSQL that can be cut: while cut, every open connection is closed and
/// new ones are refused (a database crash or a network partition, as the server sees it).
struct Cuttable {
    addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
    stop: CancellationToken,
}

impl Cuttable {
    async fn start(upstream: std::net::SocketAddr) -> Cuttable {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (cut, cut_rx) = tokio::sync::watch::channel(false);
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = stopped.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((mut client, _)) = accepted else {
                    continue;
                };
                if *cut_rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut cut_rx = cut_rx.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_rx.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Cuttable { addr, cut, stop }
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn while_the_database_is_down_the_api_answers_503_database_unavailable_and_the_worker_resumes_after()
 {
    let Some((admin_url, name, _)) = crate::attacks::audit_chain::pg_database().await else {
        return;
    };
    let upstream = url::Url::parse(&admin_url).expect("pg url");
    let upstream_addr = tokio::net::lookup_host((
        upstream.host_str().expect("host"),
        upstream.port().unwrap_or(5432),
    ))
    .await
    .expect("resolve")
    .next()
    .expect("an address");
    let relay = Cuttable::start(upstream_addr).await;
    let mut via_relay = upstream.clone();
    via_relay.set_host(Some("127.0.0.1")).expect("host");
    via_relay.set_port(Some(relay.addr.port())).expect("port");
    via_relay.set_path(&format!("/{name}"));
    let db_url = via_relay.to_string();

    let t = TestApp::start_with_config(Scenario::demo(), move |text| {
        let text: String = text
            .lines()
            .map(|l| {
                if l.starts_with("database_url") {
                    format!("database_url = {db_url:?}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        text + "[database]\nacquire_timeout_seconds = 1\n"
    })
    .await;
    let id = ask_full_access_for_bob(&t.http, &t.base_url, &t.mcp_token).await;
    let manager = Person::login(&t.base_url, "manager", &t.password("manager")).await;
    let audit_before = t.app.store.audit_head().await.expect("head");
    // An agent's MCP session, opened while the database answers.
    let agent = crate::mcp_http::client(&t).await;

    relay.set_cut(true);
    // MCP over HTTP: every call is authenticated again, so a tool call in the open session gets
    // the same 503 with Retry-After as the API (the client sees a transport error it can retry),
    // and a new session gets the stable code and a fixed message, never the driver's text.
    let args = json!({ "request_id": id.to_string() });
    let r = agent
        .call_tool(
            rmcp::model::CallToolRequestParams::new("get_approval_status")
                .with_arguments(args.as_object().cloned().expect("object")),
        )
        .await;
    let e = format!("{:?}", r.expect_err("no answer while the database is down"));
    assert!(
        e.contains("status: 503") && e.contains("retry_after: Some"),
        "{e}"
    );
    let r = t
        .http
        .post(t.url("/mcp"))
        .bearer_auth(&t.mcp_token)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "outage", "version": "0"}}}),
        )
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        !message.contains("127.0.0.1") && !message.contains(&name),
        "{message}"
    );
    // Reads and decisions: 503 with the stable code, a Retry-After, and no driver text.
    let r = t
        .http
        .get(t.url(&format!("/api/v1/requests/{id}")))
        .bearer_auth(&t.mcp_token)
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        !message.contains("127.0.0.1") && !message.contains(&name),
        "{message}"
    );
    let (status, body) = manager
        .approve(
            &t.url(&format!("/api/v1/requests/{id}/approve")),
            "during the outage",
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let (status, body) = get_json(&t.http, &t.url("/readyz"), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["reason"], "database_unavailable");

    relay.set_cut(false);
    // Back: the refused decision left nothing behind (still pending, no audit event).
    // The relay lets new connections through at once; the pool drops the connections the cut
    // killed when it checks them out, and opens new ones.
    let (status, body) = get_json(
        &t.http,
        &t.url(&format!("/api/v1/requests/{id}")),
        Some(&t.mcp_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["state"], "pending");
    assert_eq!(t.app.store.audit_head().await.expect("head"), audit_before);

    // The worker went through the outage and executes what is approved now.
    let (status, body) = manager
        .approve(
            &t.url(&format!("/api/v1/requests/{id}/approve")),
            "after the outage",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rid = RequestId::parse(&id).expect("request id");
    let done = t.wait_terminal(rid, Duration::from_secs(60)).await;
    assert_eq!(done.state.as_str(), "succeeded");
    assert_eq!(t.apply_log().await.len(), 1, "exactly one change applied");
    let (status, _) = get_json(&t.http, &t.url("/readyz"), None).await;
    assert_eq!(status, StatusCode::OK);

    t.stop().await;
    relay.stop.cancel();
    crate::attacks::audit_chain::drop_pg(&admin_url, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_new_work_and_lets_the_execution_in_flight_finish_before_exiting() {
    let emulator = m365_emulator::start(Scenario::demo())
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let text = exogate::demo::config_text(
        dir.path(),
        None,
        &format!("127.0.0.1:{port}"),
        &base,
        &emulator.base_url,
    ) + "[worker]\npoll_milliseconds = 50\nshutdown_grace_seconds = 60\n";
    std::fs::write(dir.path().join("exogate.toml"), &text).expect("config");
    let config = exogate::config::Config::from_toml(&text).expect("config parses");
    let (users, token) = {
        let app = exogate::server::build_app(&config).await.expect("app");
        let seeded = exogate::demo::seed(&app).await.expect("seed");
        app.db.close().await;
        seeded
    };
    let manager_password = users
        .iter()
        .find(|u| u.name == "manager")
        .expect("manager")
        .password
        .clone();
    // Exchange takes its time over the write, so the execution is in flight at SIGTERM.
    let http = reqwest::Client::new();
    let r = http
        .put(format!("{}/_emulator/knobs", emulator.base_url))
        .json(&json!({"latency_ms": {"Add-MailboxPermission": 1500}}))
        .send()
        .await
        .expect("knobs");
    assert!(r.status().is_success());

    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
        .arg("--data-dir")
        .arg(dir.path())
        .arg("serve")
        .env("EXOGATE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("exogate serve starts");
    eventually("the server is ready", Duration::from_secs(60), || {
        let http = http.clone();
        let url = format!("{base}/readyz");
        async move {
            let r = http.get(&url).send().await.ok()?;
            (r.status() == StatusCode::OK).then_some(())
        }
    })
    .await;

    let id = ask_full_access_for_bob(&http, &base, &token).await;
    let manager = Person::login(&base, "manager", &manager_password).await;
    let (status, body) = manager
        .approve(
            &format!("{base}/api/v1/requests/{id}/approve"),
            "before the shutdown",
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the worker is executing", Duration::from_secs(30), || {
        let http = http.clone();
        let url = format!("{base}/api/v1/requests/{id}");
        let token = token.clone();
        async move {
            let (_, body) = get_json(&http, &url, Some(&token)).await;
            (body["state"] == "executing").then_some(())
        }
    })
    .await;

    let pid = server.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    // No new work: the listener closes while the execution is still running.
    eventually("the listener closes", Duration::from_secs(30), || {
        let addr = format!("127.0.0.1:{port}");
        async move { TcpStream::connect(addr).await.is_err().then_some(()) }
    })
    .await;
    let status = tokio::time::timeout(Duration::from_secs(60), server.wait())
        .await
        .expect("exits within the grace period")
        .expect("exit status");
    assert!(status.success(), "a clean exit on SIGTERM: {status:?}");

    // The execution in flight finished: succeeded, lease released, one change in Exchange.
    let db = exogate_store::Db::connect(&config.database_url)
        .await
        .expect("open");
    let request = exogate_core::ports::Store::get_request(&db, RequestId::parse(&id).expect("id"))
        .await
        .expect("store")
        .expect("request");
    assert_eq!(request.state.as_str(), "succeeded");
    let log: Value = http
        .get(format!("{}/_emulator/apply-log", emulator.base_url))
        .send()
        .await
        .expect("apply log")
        .json()
        .await
        .expect("json");
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(1), "{log}");
    db.close().await;
    emulator.shutdown().await.expect("emulator stops");
}
