//! Answers that used to look like success: asking for a change that changes nothing (refused
//! with `409 already_in_state`, nothing stored), and audit filters that lost matching events.

use std::time::Duration;

use exogate_core::model::RequestId;
use exogate_core::request::RequestState;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp_http::{call, client, err};
use crate::support::TestApp;

const WAIT: Duration = Duration::from_secs(30);

async fn api_post(t: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let r = t
        .http
        .post(t.url(path))
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .json(&body)
        .send()
        .await
        .expect("post");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn api_get(t: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = t
        .http
        .get(t.url(path))
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .send()
        .await
        .expect("get");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn ask(t: &TestApp, tool: &str, mailbox: &str, trustee: &str) -> (StatusCode, Value) {
    api_post(
        t,
        "/api/v1/requests",
        json!({"company": "contoso", "tool": tool, "mailbox": mailbox, "trustee": trustee}),
    )
    .await
}

/// Approves `id` as the manager and waits until it ran; returns its final state.
async fn approve_and_run(t: &TestApp, id: &str) -> RequestState {
    let id = RequestId::parse(id).unwrap();
    t.approve("manager", id).await;
    t.wait_terminal(id, WAIT).await.state
}

#[tokio::test]
async fn asking_for_a_change_that_changes_nothing_is_refused_and_nothing_is_pending() {
    let t = TestApp::start().await;
    // Carol gets Send As on support, then it is reverted; Bob gets Full Access on sales.
    let (s, granted) = ask(&t, "grant_send_as", "support", "carol").await;
    assert_eq!(s, StatusCode::CREATED, "{granted}");
    let granted = granted["id"].as_str().unwrap().to_owned();
    assert_eq!(approve_and_run(&t, &granted).await, RequestState::Succeeded);
    let (s, rev) = api_post(&t, &format!("/api/v1/requests/{granted}/revert"), json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{rev}");
    let rev = rev["id"].as_str().unwrap().to_owned();
    assert_eq!(approve_and_run(&t, &rev).await, RequestState::Succeeded);
    let (s, fa) = ask(&t, "grant_full_access", "sales", "bob").await;
    assert_eq!(s, StatusCode::CREATED, "{fa}");
    assert_eq!(
        approve_and_run(&t, fa["id"].as_str().unwrap()).await,
        RequestState::Succeeded
    );

    let head = t.app.store.audit_head().await.unwrap();
    // Granting a right already held.
    let (s, e) = ask(&t, "grant_full_access", "sales", "bob").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "already_in_state", "{e}");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("already has Full Access"), "{msg}");
    // Removing a right not held.
    let (s, e) = ask(&t, "remove_send_as", "support", "carol").await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "already_in_state", "{e}");
    // Reverting a change that is already reverted.
    let (s, e) = api_post(&t, &format!("/api/v1/requests/{granted}/revert"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"]["code"], "already_in_state", "{e}");
    // MCP says so too, as a tool error with the code.
    let c = client(&t).await;
    let (e, text) = err(&call(
        &c,
        "grant_full_access",
        json!({"company": "contoso", "mailbox": "sales", "trustee": "bob"}),
    )
    .await);
    assert_eq!(e["code"], "already_in_state", "{e}");
    assert!(text.contains("nothing to change"), "{text}");
    let _ = c.cancel().await;

    // Nothing pending was made, nothing was audited.
    let (s, pending) = api_get(&t, "/api/v1/requests?state=pending").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(pending["requests"], json!([]), "{pending}");
    assert_eq!(t.app.store.audit_head().await.unwrap(), head);
    t.stop().await;
}
