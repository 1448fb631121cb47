//! (hardening) The per-user-name lock-out lives in the database, so it holds across replicas
//! and CLI processes: failures spread over two routers on one database lock the user on both;
//! the CLI's `approvals approve --password-stdin` is refused after too many wrong passwords,
//! even with the right one, until the lock-out passes; each stretch of lock-outs is audited
//! once, not once per refused attempt.

use std::net::SocketAddr;
use std::sync::Arc;

use exogate_core::ports::{Clock, ManualClock};
use exogate_core::request::RequestState;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::support::TestApp;

/// A second replica: an app built from the first one's configuration (the same database), on
/// the same clock, serving its router on a loopback port of its own.
async fn second_replica(t: &TestApp, clock: Arc<ManualClock>) -> (String, CancellationToken) {
    let text = std::fs::read_to_string(t.data_dir().join("exogate.toml")).unwrap();
    let config = exogate::config::Config::from_toml(&text).unwrap();
    let app = exogate::server::build_app_with_clock(&config, clock as Arc<dyn Clock>)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let router = exogate::server::router(app);
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { s.cancelled().await })
        .await
    });
    (format!("http://{addr}"), stop)
}

async fn login(base: &str, user: &str, password: &str) -> (StatusCode, Option<String>) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/login"))
        .json(&json!({ "user": user, "password": password }))
        .send()
        .await
        .unwrap();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (r.status(), retry)
}

/// The `auth.login_failed` rows that audit a lock-out of `user`.
async fn lockout_rows(t: &TestApp, user: &str) -> Vec<Value> {
    t.app
        .store
        .list_audit(0, 100_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.event.kind == "auth.login_failed" && e.event.actor_name.as_deref() == Some(user)
        })
        .map(|e| serde_json::from_str::<Value>(&e.event.detail).unwrap())
        .filter(|d| d["reason"] == "locked_out")
        .collect()
}

fn on_clock(text: String) -> String {
    // Lock-outs long enough that a slow CLI run cannot outlast one; addresses never lock here.
    format!("{text}\n[login]\nfirst_lockout_seconds = 600\nfree_failures_per_address = 1000\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_spread_over_two_replicas_lock_the_user_on_both_and_are_audited_once() {
    let (t, clock) = crate::oauth::start_on_clock(on_clock).await;
    let (other, stop) = second_replica(&t, clock.clone()).await;
    let one = t.base_url.clone();
    // Five wrong passwords (the free ones), alternating replicas: each sees only some of them.
    for base in [&one, &other, &one, &other, &one] {
        assert_eq!(
            login(base, "tech", "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Both refuse now, the right password too, without checking it.
    for base in [&other, &one, &other] {
        let (s, retry) = login(base, "tech", &t.password("tech")).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{base}");
        assert_eq!(retry.as_deref(), Some("600"));
    }
    let rows = lockout_rows(&t, "tech").await;
    assert_eq!(
        rows.len(),
        1,
        "one row for the stretch, not one per refusal: {rows:?}"
    );
    // Another user name is not locked.
    assert_eq!(
        login(&other, "manager", &t.password("manager")).await.0,
        StatusCode::OK
    );
    // Once the lock-out has passed, the right password works on either, and clears the count.
    clock.advance_secs(600);
    assert_eq!(
        login(&other, "tech", &t.password("tech")).await.0,
        StatusCode::OK
    );
    assert_eq!(t.app.store.login_user_record("tech").await.unwrap(), None);
    assert_eq!(
        login(&one, "tech", "wrong").await.0,
        StatusCode::UNAUTHORIZED
    );
    stop.cancel();
    t.stop().await;
}

async fn approve(t: &TestApp, id: &str, password: &str) -> crate::support::CliOutput {
    t.cli_with_stdin(
        &[
            "--json",
            "approvals",
            "approve",
            id,
            "--as",
            "manager",
            "--yes",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_clis_approve_is_locked_out_after_wrong_passwords_even_with_the_right_one() {
    let (t, clock) = crate::oauth::start_on_clock(on_clock).await;
    let r = t
        .http
        .post(t.url("/api/v1/requests"))
        .bearer_auth(&t.mcp_token)
        .json(&json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id: Value = r.json().await.unwrap();
    let id = id["id"].as_str().unwrap().to_owned();
    let rid: exogate_core::model::RequestId = id.parse().unwrap();
    // Five wrong passwords, each its own process.
    for _ in 0..5 {
        let out = approve(&t, &id, "not-the-password").await;
        assert_eq!(out.json()["error"]["code"], "login_failed", "{out:?}");
    }
    // The sixth is refused before any check, with the right password too, and decides nothing.
    for _ in 0..2 {
        let out = approve(&t, &id, &t.password("manager")).await;
        assert!(!out.success);
        assert_eq!(out.json()["error"]["code"], "too_many_attempts", "{out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
    let state = t.app.store.get_request(rid).await.unwrap().unwrap().state;
    assert_eq!(state, RequestState::Pending);
    // The web login, another process's view of the same record, is locked too.
    let (s, _) = login(&t.base_url, "manager", &t.password("manager")).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let rows = lockout_rows(&t, "manager").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    // The CLI runs on the system clock: the lock-out passes when the stored failures are that
    // old, so the record's times are moved back by the lock-out (the test's clock, driven).
    let record = t
        .app
        .store
        .login_user_record("manager")
        .await
        .unwrap()
        .unwrap();
    let db = t.data_dir().join("exogate.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE login_failures SET last_at = last_at - 600000 WHERE user_key = 'manager'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(record.failures, 5);
    let out = approve(&t, &id, &t.password("manager")).await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        t.app.store.login_user_record("manager").await.unwrap(),
        None
    );
    let _ = clock;
    t.stop().await;
}
