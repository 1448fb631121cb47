//! Attacks: audit_chain. Someone who can write the database deletes a request's events and
//! recomputes every hash and the head, so the chain verifies on its own; the checkpoints the
//! worker signed with a key outside the database contradict it. A forged or altered checkpoint
//! line is refused. The `/audit` page shows the chain status to managers only, and never walks
//! the whole chain unless asked. `/healthz` never echoes the database's error text.

use std::sync::Arc;
use std::time::Duration;

use exogate::app::{App, AppEvent};
use exogate_core::Timestamp;
use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::ops::requests::WriteInput;
use exogate_core::ports::ManualClock;
use exogate_core::tools::ToolName;
use m365_emulator::{Emulator, Scenario};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection as _};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::support::CliOutput;

#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The demo world on either backend, with a manual clock and a worker that signs checkpoints
/// every ten minutes of that clock.
struct Chained {
    app: Arc<App>,
    clock: Arc<ManualClock>,
    events: tokio::sync::broadcast::Receiver<AppEvent>,
    base_url: String,
    db_url: String,
    pg: Option<(String, String)>,
    emulator: Emulator,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: tempfile::TempDir,
}

fn with_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// A fresh PostgreSQL database (admin URL, name, URL), or None when `EXOGATE_TEST_PG_URL` is
/// unset (a failure with `EXOGATE_REQUIRE_ALL_SUITES=1`).
pub(crate) async fn pg_database() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var("EXOGATE_TEST_PG_URL") else {
        if std::env::var("EXOGATE_REQUIRE_ALL_SUITES").as_deref() == Ok("1") {
            panic!("EXOGATE_TEST_PG_URL not set and EXOGATE_REQUIRE_ALL_SUITES=1");
        }
        println!("skipped: EXOGATE_TEST_PG_URL not set");
        return None;
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to EXOGATE_TEST_PG_URL");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.ok();
    let url = with_db_name(&admin_url, &name);
    Some((admin_url, name, url))
}

pub(crate) async fn drop_pg(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .ok();
        admin.close().await.ok();
    }
}

impl Chained {
    async fn start(backend: Backend) -> Option<Chained> {
        Self::start_with(backend, "").await
    }

    /// As [`Chained::start`], with `audit` (TOML lines) added to the `[audit]` section.
    async fn start_with(backend: Backend, audit: &str) -> Option<Chained> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (db_url, pg) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("exogate.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (admin, name, url) = pg_database().await?;
                (url, Some((admin, name)))
            }
        };
        let emulator = m365_emulator::start(Scenario::demo())
            .await
            .expect("emulator starts");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base_url = format!("http://{addr}");
        let text = exogate::demo::config_text(
            dir.path(),
            Some(&db_url),
            &addr.to_string(),
            &base_url,
            &emulator.base_url,
        );
        let text = format!("{text}[audit]\ncheckpoint_interval_minutes = 10\n{audit}\n");
        std::fs::write(dir.path().join("exogate.toml"), &text).expect("write config");
        let config = exogate::config::Config::from_toml(&text).expect("config");
        let now = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
        let clock = Arc::new(ManualClock::new(now));
        let app = exogate::server::build_app_with_clock(&config, clock.clone())
            .await
            .expect("app builds");
        exogate::demo::seed(&app).await.expect("demo world seeds");
        let events = app.events.subscribe();
        let mut worker = exogate::worker::WorkerSettings::new(config.recheck_interval);
        worker.poll = Duration::from_millis(50);
        worker.checkpoints =
            exogate::checkpoint::Checkpointer::from_config(&config).expect("checkpoint key");
        assert!(worker.checkpoints.is_some());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(exogate::server::serve(
            app.clone(),
            listener,
            Some(worker),
            shutdown.clone(),
        ));
        Some(Chained {
            app,
            clock,
            events,
            base_url,
            db_url,
            pg,
            emulator,
            shutdown,
            server,
            dir,
        })
    }

    /// Signs in through the login form.
    async fn login(&self, name: &str) -> crate::web::Browser {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let password = exogate::demo::USERS
            .iter()
            .find(|u| u.0 == name)
            .map(|u| u.1)
            .expect("demo user");
        let r = http
            .post(format!("{}/login", self.base_url))
            .form(&[("user", name), ("password", password)])
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {name}");
        crate::web::Browser {
            cookie: crate::web::session_cookie(&r).expect("session cookie"),
            http,
            base: self.base_url.clone(),
            csrf: String::new(),
        }
    }

    fn checkpoint_file(&self) -> std::path::PathBuf {
        self.dir.path().join("audit-checkpoints.jsonl")
    }

    /// Waits (woken by the app's events) for the worker's next checkpoint; returns its seq.
    async fn next_checkpoint(&mut self) -> i64 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Ok(AppEvent::AuditCheckpointWritten { seq })) => return seq,
                Ok(Ok(AppEvent::AuditCheckpointRefused)) => panic!("checkpoint refused"),
                Ok(_) => {}
                Err(_) => panic!("no checkpoint within 30 s"),
            }
        }
    }

    /// Advances the clock past the checkpoint interval and wakes the worker.
    fn ten_minutes_later(&self) {
        self.clock.advance_secs(10 * 60);
        self.app.worker_wake.notify_one();
    }

    async fn head(&self) -> (i64, String) {
        self.app.store.audit_head().await.unwrap().unwrap()
    }

    /// Asks for Send As on `mailbox` for `trustee` as `tech`, approves it as `manager` and
    /// waits until it ran.
    async fn executed_change(&mut self, mailbox: &str, trustee: &str) -> RequestId {
        let ctx = self.app.ctx();
        let find = |name: &str| {
            let name = exogate_core::model::UserName::parse(name).unwrap();
            async move { ops::users::find_user(ctx, &name).await.unwrap() }
        };
        let tech = exogate_core::Actor {
            user: find("tech").await,
            channel: exogate_core::Channel::Cli,
        };
        let manager = exogate_core::Actor {
            user: find("manager").await,
            channel: exogate_core::Channel::Cli,
        };
        let request = ops::requests::request_write(
            ctx,
            &tech,
            WriteInput {
                id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                company: CompanyId::parse("contoso").unwrap(),
                tool: ToolName::GrantSendAs,
                mailbox: IdentityInput::parse(mailbox).unwrap(),
                trustee: IdentityInput::parse(trustee).unwrap(),
                automapping: None,
            },
        )
        .await
        .expect("request");
        ops::requests::approve(ctx, &manager, request.id, Some("ticket 7"))
            .await
            .expect("approve");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.app.worker_wake.notify_one();
            let r = self
                .app
                .store
                .get_request(request.id)
                .await
                .unwrap()
                .unwrap();
            if r.state.is_terminal() {
                return request.id;
            }
            if tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .is_err()
            {
                panic!("request still {:?}", r.state);
            }
        }
    }

    async fn cli(&self, args: &[&str]) -> CliOutput {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("EXOGATE_LOG", "warn")
            .kill_on_drop(true)
            .output()
            .await
            .expect("exogate runs");
        CliOutput {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Runs SQL statements in one transaction, behind the application's back.
    async fn exec_all(&self, statements: &[String]) {
        if self.db_url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            for s in statements {
                sqlx::query(AssertSqlSafe(s.clone()))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            c.close().await.ok();
        } else {
            let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
            let mut tx = c.begin().await.unwrap();
            for s in statements {
                sqlx::query(AssertSqlSafe(s.clone()))
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            }
            tx.commit().await.unwrap();
            c.close().await.ok();
        }
    }

    /// The review's rewrite: deletes every event of `request`, renumbers the rest and
    /// recomputes every hash and the head, directly in the database.
    async fn rewrite_without(&self, request: RequestId) -> usize {
        let rows = self.app.store.list_audit(0, 100_000).await.unwrap();
        let wanted = request.to_string();
        let kept: Vec<_> = rows
            .iter()
            .filter(|e| e.event.request.as_deref() != Some(wanted.as_str()))
            .collect();
        let removed = rows.len() - kept.len();
        assert!(removed > 0, "the request has events");
        let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let opt = |s: Option<&str>| s.map_or_else(|| "NULL".to_owned(), q);
        let mut statements = vec!["DELETE FROM audit_log".to_owned()];
        let mut prev = exogate_core::audit::GENESIS_HASH.to_owned();
        let mut seq = 0;
        for e in kept {
            seq += 1;
            let hash = exogate_core::audit::chain_hash(&prev, seq, &e.event);
            let ev = &e.event;
            statements.push(format!(
                "INSERT INTO audit_log (seq, prev_hash, hash, at, kind, actor_id, actor_name, channel, company_id, request_id, detail) VALUES ({seq}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
                q(&prev),
                q(&hash),
                ev.at.unix_millis(),
                q(&ev.kind),
                opt(ev.actor_id.as_deref()),
                opt(ev.actor_name.as_deref()),
                q(&ev.channel),
                opt(ev.company.as_deref()),
                opt(ev.request.as_deref()),
                q(&ev.detail),
            ));
            prev = hash;
        }
        statements.push(format!(
            "UPDATE audit_head SET seq = {seq}, hash = {} WHERE id = 1",
            q(&prev)
        ));
        self.exec_all(&statements).await;
        removed
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.server
            .await
            .expect("server task")
            .expect("server stops");
        self.emulator.shutdown().await.expect("emulator stops");
        if let Some((admin, name)) = &self.pg {
            drop_pg(admin, name).await;
        }
    }
}

/// The first JSON document a CLI run printed (a failing `--json` run prints its result, then
/// the error).
fn first_json(out: &CliOutput) -> Value {
    serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<Value>()
        .next()
        .unwrap_or_else(|| panic!("no JSON: {out:?}"))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

async fn rewritten_chain_contradicts_a_signed_checkpoint(backend: Backend) {
    let Some(mut c) = Chained::start(backend).await else {
        return;
    };
    // The worker signs the seeded chain as soon as it starts.
    let first = c.next_checkpoint().await;
    assert_eq!(first, c.head().await.0);
    let doomed = c
        .executed_change(
            "support@contoso.onmicrosoft.com",
            "carol@contoso.onmicrosoft.com",
        )
        .await;
    c.executed_change(
        "support@contoso.onmicrosoft.com",
        "alice@contoso.onmicrosoft.com",
    )
    .await;
    // Nothing is signed before the interval has passed on the app's clock.
    c.ten_minutes_later();
    let second = c.next_checkpoint().await;
    assert!(second > first);
    // The person keeps the public key where the server cannot write.
    let kept_key = c.dir.path().join("kept.pub");
    std::fs::copy(c.dir.path().join("audit-checkpoint.key.pub"), &kept_key).unwrap();
    let file = c.checkpoint_file();
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    let file_arg = file.to_str().unwrap();
    let key_arg = kept_key.to_str().unwrap();

    // An untouched chain agrees with its checkpoints.
    let ok = c
        .cli(&[
            "--json",
            "audit",
            "verify",
            "--checkpoints",
            file_arg,
            "--public-key",
            key_arg,
        ])
        .await;
    assert!(ok.success, "{ok:?}");
    assert_eq!(ok.json()["intact"], true);
    assert_eq!(ok.json()["checkpoints"], 2);

    // The rewrite: the request's events are gone and every hash and the head recomputed.
    let removed = c.rewrite_without(doomed).await;
    assert!(removed >= 3, "{removed}");
    let plain = c.cli(&["--json", "audit", "verify"]).await;
    assert!(plain.success, "the plain verify is fooled: {plain:?}");
    assert_eq!(plain.json()["intact"], true);

    let caught = c
        .cli(&[
            "--json",
            "audit",
            "verify",
            "--checkpoints",
            file_arg,
            "--public-key",
            key_arg,
        ])
        .await;
    assert!(!caught.success, "{caught:?}");
    assert!(
        caught.stderr.contains("[audit_checkpoint_contradicted]"),
        "{}",
        caught.stderr
    );
    let report = first_json(&caught);
    assert_eq!(report["intact"], false);
    // The first checkpoint predates the request; the second is the first contradicted.
    assert_eq!(report["contradicted_checkpoint"]["line"], 2, "{report}");
    assert_eq!(report["contradicted_checkpoint"]["seq"], second, "{report}");
    let human = c
        .cli(&[
            "audit",
            "verify",
            "--checkpoints",
            file_arg,
            "--public-key",
            key_arg,
        ])
        .await;
    assert!(!human.success);
    assert!(
        human.stderr.contains(&format!("line 2 of {file_arg}"))
            && human
                .stderr
                .contains(&format!("checkpoint of event {second}")),
        "{}",
        human.stderr
    );

    // Nor does the worker sign the rewritten chain (Bob already has Send As on support).
    c.executed_change(
        "sales@contoso.onmicrosoft.com",
        "bob@contoso.onmicrosoft.com",
    )
    .await;
    c.ten_minutes_later();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, c.events.recv()).await {
            Ok(Ok(AppEvent::AuditCheckpointRefused)) => break,
            Ok(Ok(AppEvent::AuditCheckpointWritten { seq })) => {
                panic!("the worker signed the rewritten chain at {seq}")
            }
            Ok(_) => {}
            Err(_) => panic!("the worker neither signed nor refused"),
        }
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        2,
        "nothing appended"
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_chain_contradicts_a_signed_checkpoint_sqlite() {
    rewritten_chain_contradicts_a_signed_checkpoint(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_chain_contradicts_a_signed_checkpoint_postgres() {
    rewritten_chain_contradicts_a_signed_checkpoint(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_or_foreign_checkpoint_lines_are_refused() {
    // A webhook receiver on loopback: each checkpoint is also POSTed there.
    let (tx, mut received) = tokio::sync::mpsc::unbounded_channel::<String>();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body);
                StatusCode::NO_CONTENT
            }
        }),
    );
    let hook_listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let hook_url = format!("http://{}/hook", hook_listener.local_addr().unwrap());
    let hook_server = tokio::spawn(async move { axum::serve(hook_listener, hook).await });
    let mut c = Chained::start_with(
        Backend::Sqlite,
        &format!("checkpoint_webhook_url = {hook_url:?}"),
    )
    .await
    .expect("sqlite");
    let seq = c.next_checkpoint().await;
    let file = c.checkpoint_file();
    let good = std::fs::read_to_string(&file).unwrap();
    let line: Value = serde_json::from_str(good.trim()).unwrap();
    let kept_key = c.dir.path().join("audit-checkpoint.key.pub");
    let key_arg = kept_key.to_str().unwrap().to_owned();
    let verify = |path: std::path::PathBuf| {
        let key_arg = key_arg.clone();
        let c = &c;
        async move {
            c.cli(&[
                "--json",
                "audit",
                "verify",
                "--checkpoints",
                path.to_str().unwrap(),
                "--public-key",
                &key_arg,
            ])
            .await
        }
    };

    // An altered line: the head changed to whatever the rewritten chain has.
    let mut altered = line.clone();
    altered["head"] = Value::String("ab".repeat(32));
    let path = c.dir.path().join("altered.jsonl");
    std::fs::write(&path, format!("{altered}\n")).unwrap();
    let out = verify(path).await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("[audit_checkpoint_forged]"),
        "{}",
        out.stderr
    );
    let report = first_json(&out);
    assert_eq!(report["forged_checkpoint"]["line"], 1, "{report}");
    assert_eq!(report["forged_checkpoint"]["seq"], seq, "{report}");

    // A file the attacker signed with a key of their own (and a matching key_id): the key the
    // person kept does not verify it.
    let attacker =
        exogate::checkpoint::SigningKey::generate(&c.dir.path().join("evil.key")).unwrap();
    let (head_seq, head) = c.head().await;
    let forged = exogate_core::checkpoint::Checkpoint {
        seq: head_seq,
        head,
        at: exogate_core::ports::Clock::now(&*c.clock),
        key_id: attacker.public().key_id().to_owned(),
    };
    let forged_line = exogate::checkpoint::Line::new(&forged, &attacker.sign(&forged));
    let path = c.dir.path().join("foreign.jsonl");
    std::fs::write(
        &path,
        format!("{good}{}\n", serde_json::to_string(&forged_line).unwrap()),
    )
    .unwrap();
    let out = verify(path).await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("[audit_checkpoint_forged]"),
        "{}",
        out.stderr
    );
    assert_eq!(first_json(&out)["forged_checkpoint"]["line"], 2);
    // Its own key_id swapped for the kept key's: the signature then fails.
    let mut swapped = serde_json::to_value(&forged_line).unwrap();
    swapped["key_id"] = line["key_id"].clone();
    let path = c.dir.path().join("swapped.jsonl");
    std::fs::write(&path, format!("{swapped}\n")).unwrap();
    let out = verify(path).await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("signature that does not verify"),
        "{}",
        out.stderr
    );

    // The webhook got the same line as the file.
    let posted = tokio::time::timeout(Duration::from_secs(30), received.recv())
        .await
        .expect("the webhook is called")
        .unwrap();
    assert_eq!(posted.trim(), good.trim());
    hook_server.abort();

    // The private key is 0600, never in a Debug form, and keygen refuses to overwrite it.
    let key_file = c.dir.path().join("audit-checkpoint.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let pem = std::fs::read_to_string(&key_file).unwrap();
    let body_line = pem.lines().nth(1).unwrap();
    let debug = format!(
        "{:?}",
        exogate::checkpoint::SigningKey::read(&key_file).unwrap()
    );
    assert!(
        !debug.contains(body_line) && debug.contains("redacted"),
        "{debug}"
    );
    let again = c.cli(&["--json", "audit", "keygen"]).await;
    assert!(!again.success);
    assert!(
        again.stderr.contains("[checkpoint_key_exists]"),
        "{again:?}"
    );
    let other = c.dir.path().join("other.key");
    let made = c
        .cli(&[
            "--json",
            "audit",
            "keygen",
            "--out",
            other.to_str().unwrap(),
        ])
        .await;
    assert!(made.success, "{made:?}");
    assert!(!made.stdout.contains(body_line));
    let public = std::fs::read_to_string(c.dir.path().join("other.key.pub")).unwrap();
    assert_eq!(made.json()["public_key"], public.trim());

    // The untouched file passes.
    let out = verify(file).await;
    assert!(out.success, "{out:?}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_page_shows_chain_status_to_managers_only_and_verifies_on_demand() {
    let c = Chained::start(Backend::Sqlite).await.expect("sqlite");
    let tech = c.login("tech").await;
    let manager = c.login("manager").await;
    for path in [
        "/audit",
        "/audit?verify=1",
        "/audit?company=contoso&verify=1",
    ] {
        let (s, page) = tech.get(path).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        for status in [
            "id=\"chain\"",
            "Audit chain intact",
            "AUDIT CHAIN BROKEN",
            "Verify the audit chain",
        ] {
            assert!(
                !page.contains(status),
                "a technician sees `{status}` on {path}: {page}"
            );
        }
    }
    // The events a technician may see are still there.
    let (_, page) = tech.get("/audit?company=contoso").await;
    assert!(page.contains("company.status_checked"), "{page}");
    // A manager sees the button, and the result only after asking.
    let (_, page) = manager.get("/audit").await;
    assert!(page.contains("Verify the audit chain"), "{page}");
    assert!(!page.contains("Audit chain intact"), "{page}");
    let (_, page) = manager.get("/audit?verify=1").await;
    assert!(page.contains("Audit chain intact"), "{page}");
    // After an edit behind the server's back, a plain view does not walk the chain (so does
    // not notice); asking does.
    c.exec_all(&["UPDATE audit_log SET detail = '{\"edited\":true}' WHERE seq = 3".to_owned()])
        .await;
    let (_, page) = manager.get("/audit").await;
    assert!(!page.contains("AUDIT CHAIN BROKEN"), "{page}");
    let (_, page) = manager.get("/audit?verify=1").await;
    assert!(page.contains("AUDIT CHAIN BROKEN"), "{page}");
    c.stop().await;
}

async fn healthz_does_not_echo_database_errors(backend: Backend) {
    let Some(c) = Chained::start(backend).await else {
        return;
    };
    let http = reqwest::Client::new();
    let r = http
        .get(format!("{}/healthz", c.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // The database fails behind the server's back. SQLite: the head row holds text where a
    // number belongs (the driver's decode error names columns and types). PostgreSQL: the
    // database is dropped under the open connections.
    match &c.pg {
        Some((admin, name)) => drop_pg(admin, name).await,
        None => {
            c.exec_all(&["UPDATE audit_head SET seq = 'not a number' WHERE id = 1".to_owned()])
                .await;
        }
    }
    let r = http
        .get(format!("{}/healthz", c.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    println!("healthz answered {body}");
    assert_eq!(
        body,
        serde_json::json!({"status": "unavailable", "error": {"code": "unavailable", "message": "the database is not answering"}})
    );
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_does_not_echo_database_errors_sqlite() {
    healthz_does_not_echo_database_errors(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_does_not_echo_database_errors_postgres() {
    healthz_does_not_echo_database_errors(Backend::Postgres).await;
}
