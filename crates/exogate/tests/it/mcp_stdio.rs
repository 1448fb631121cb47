//! MCP over a byte stream, as `exogate mcp` serves it on stdio, with rmcp's client in-process:
//! the token is checked when the session starts and again on every call.

use exogate_core::ops;
use exogate_core::ops::users::Admin;
use rmcp::ServiceExt as _;
use serde_json::json;

use crate::mcp_http::{call, err, ok, token_for};
use crate::support::TestApp;

#[tokio::test]
async fn a_stream_session_acts_as_the_token_owner_until_the_token_is_revoked() {
    let t = TestApp::start().await;
    // An unknown token is refused before the session starts.
    let (_client_side, server_side) = tokio::io::duplex(64 * 1024);
    let refused = exogate::mcp::serve_transport(t.app.clone(), "no-such-token", server_side).await;
    assert!(refused.is_err());

    let secret = token_for(&t, "tech").await;
    let (client_side, server_side) = tokio::io::duplex(64 * 1024);
    let app = t.app.clone();
    let token = secret.clone();
    let server =
        tokio::spawn(async move { exogate::mcp::serve_transport(app, &token, server_side).await });
    let c = ().serve(client_side).await.expect("client initializes");
    let info = c.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().map(|i| i.name.as_str()),
        Some("exogate")
    );
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or_default()
            .contains("untrusted data")
    );
    let r = ok(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com"}),
    )
    .await);
    assert_eq!(r["permission"], "full_access");
    let pending = ok(&call(
        &c,
        "grant_send_on_behalf",
        json!({"company": "contoso", "mailbox": "sales", "trustee": "alice"}),
    )
    .await);
    assert_eq!(pending["status"], "pending_approval");
    // The request records the MCP channel and the agent's name from `initialize`.
    let id =
        exogate_core::model::RequestId::parse(pending["request_id"].as_str().unwrap()).unwrap();
    let req = t.app.store.get_request(id).await.unwrap().unwrap();
    assert!(
        req.requester.channel.is_mcp(),
        "{:?}",
        req.requester.channel
    );

    let tokens = ops::users::list_tokens(t.app.ctx(), Admin::LocalOperator, None)
        .await
        .unwrap();
    let token_id = tokens
        .iter()
        .find(|k| k.secret_hash == exogate_core::model::hash_token_secret(&secret))
        .unwrap()
        .id;
    ops::users::revoke_token(t.app.ctx(), Admin::LocalOperator, token_id)
        .await
        .unwrap();
    let (e, text) = err(&call(&c, "list_companies", json!({})).await);
    assert_eq!(e["code"], "unauthenticated", "{e}");
    assert!(text.contains("revoked"), "{text}");
    assert!(t.apply_log().await.is_empty());
    c.cancel().await.unwrap();
    server.await.unwrap().expect("session ends cleanly");
    t.stop().await;
}

#[tokio::test]
async fn exogate_mcp_writes_only_json_rpc_on_stdout() {
    let t = TestApp::start().await;
    let input = [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "smoke", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "list_companies", "arguments": {}}}),
    ]
    .iter()
    .map(|m| format!("{m}\n"))
    .collect::<String>();
    let out = t
        // `=` form: a token may start with `-`.
        .cli_with_stdin(&["mcp", &format!("--token={}", t.mcp_token)], &input)
        .await;
    assert!(out.success, "{}", out.stderr);
    let replies: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {l}")))
        .collect();
    assert_eq!(replies.len(), 3, "{}", out.stdout);
    // Requests are answered as they finish, not in the order they came: match replies by id.
    let reply = |id: i64| {
        replies
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no reply {id}: {}", out.stdout))
    };
    assert_eq!(reply(2)["result"]["tools"].as_array().unwrap().len(), 14);
    assert!(
        reply(3)["result"]["structuredContent"]["companies"].is_array(),
        "{}",
        reply(3)
    );
    // A bad token never starts a session, and says why on stderr.
    let bad = t
        .cli_with_stdin(&["mcp", "--token", "wrong-token"], &input)
        .await;
    assert!(!bad.success);
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert!(bad.stderr.contains("token"), "{}", bad.stderr);
    t.stop().await;
}
