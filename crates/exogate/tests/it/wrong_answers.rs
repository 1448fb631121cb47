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

#[tokio::test]
async fn audit_filters_find_the_oldest_match_behind_a_thousand_newer_events() {
    use exogate_core::audit::{AuditKind, NewAuditEvent};
    use exogate_core::model::{CompanyId, Timestamp};
    let t = TestApp::start().await;
    let manager = t.actor("manager").await;
    let contoso = CompanyId::parse("contoso").unwrap();
    let (s, asked) = ask(&t, "grant_send_as", "support", "carol").await;
    assert_eq!(s, StatusCode::CREATED, "{asked}");
    let request = RequestId::parse(asked["id"].as_str().unwrap()).unwrap();
    // 2026-12-01T10:00:00Z, then 1,100 newer events on 2026-12-02 that do not match.
    let dec1 = Timestamp::from_unix_millis(1_796_083_200_000 + 10 * 3_600_000);
    let dec2 = Timestamp::from_unix_millis(1_796_083_200_000 + 86_400_000 + 60_000);
    let oldest = t
        .app
        .store
        .append_audit(
            NewAuditEvent::new(dec1, AuditKind::RequestApproved, Some(&manager))
                .company(&contoso)
                .request(request)
                .detail(json!({"digest": "d", "reason": "ticket 99"})),
        )
        .await
        .unwrap();
    for _ in 0..1100 {
        t.app
            .store
            .append_audit(
                NewAuditEvent::new(dec2, AuditKind::ReadTool, Some(&manager)).company(&contoso),
            )
            .await
            .unwrap();
    }
    let admin = format!("Bearer {}", crate::mcp_http::token_for(&t, "admin").await);
    let get = |q: String| {
        let admin = admin.clone();
        let t = &t;
        async move {
            let r = t
                .http
                .get(t.url(&format!("/api/v1/audit?{q}")))
                .header("authorization", admin)
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let seqs = |v: &Value| -> Vec<i64> {
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    };
    // The API: the filters run before the limit.
    let (s, v) = get("company=contoso&kind=request.approved&limit=5".into()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(seqs(&v), [oldest.seq], "{v}");
    assert_eq!(v["next"], Value::Null);
    let (_, v) = get("kind=request.approved&actor=MANAGER&limit=1".into()).await;
    assert_eq!(seqs(&v), [oldest.seq], "{v}");
    // Bare dates: `since` is the day's start, `until` its end (UTC).
    let (_, v) = get("company=contoso&since=2026-12-01&until=2026-12-01".into()).await;
    assert_eq!(seqs(&v), [oldest.seq], "{v}");
    let (_, v) = get("company=contoso&from=2026-11-01&to=2026-11-30T23:59:59Z".into()).await;
    assert_eq!(seqs(&v), Vec::<i64>::new(), "{v}");
    let (s, v) = get("company=contoso&since=2026-13-01".into()).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("invalid_input")),
        "{v}"
    );
    // Keyset paging: `next` continues below the last seq; every match once.
    let (_, p1) = get("company=contoso&kind=tool.read&limit=1000".into()).await;
    let next = p1["next"].as_i64().expect("a next cursor");
    let (_, p2) = get(format!(
        "company=contoso&kind=tool.read&limit=1000&before={next}"
    ))
    .await;
    let mut all = seqs(&p1);
    all.extend(seqs(&p2));
    assert!(all.windows(2).all(|w| w[0] > w[1]));
    assert!(all.len() >= 1100, "{}", all.len());
    assert_eq!(p2["next"], Value::Null);

    // The CLI: the same filters, and a summary column.
    let out = t
        .cli(&[
            "audit",
            "list",
            "--company",
            "contoso",
            "--kind",
            "request.approved",
            "--since",
            "2026-12-01",
            "--until",
            "2026-12-01",
            "--limit",
            "5",
            "--as",
            "admin",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].contains("SUMMARY"), "{}", out.stdout);
    assert!(
        lines[1].starts_with(&oldest.seq.to_string()),
        "{}",
        out.stdout
    );
    assert!(
        lines[1].contains(&format!("request {request}")) && lines[1].contains("reason: ticket 99"),
        "{}",
        out.stdout
    );
    let out = t
        .cli(&[
            "--json",
            "audit",
            "list",
            "--request",
            &request.to_string(),
            "--actor",
            "manager",
            "--limit",
            "1",
            "--as",
            "admin",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.json()[0]["seq"], oldest.seq);
    // A technician without --company is told to add it.
    let out = t.cli(&["audit", "list", "--as", "tech"]).await;
    assert!(!out.success, "{out:?}");
    assert!(out.stderr.contains("add --company"), "{}", out.stderr);
    let out = t
        .cli(&[
            "audit",
            "list",
            "--company",
            "contoso",
            "--since",
            "yesterday",
            "--as",
            "tech",
        ])
        .await;
    assert!(
        !out.success && out.stderr.contains("[invalid_input]"),
        "{out:?}"
    );
    t.stop().await;
}
