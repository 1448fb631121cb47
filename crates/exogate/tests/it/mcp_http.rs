//! MCP over streamable HTTP with rmcp's own client against the real router on 127.0.0.1: reads,
//! write requests that wait for a person, actionable errors, authentication, Host/Origin checks
//! and per-token rate limits.

use std::time::Duration;

use exogate_core::model::{ApiTokenId, RequestId, UserName};
use exogate_core::ops;
use exogate_core::ops::users::Admin;
use exogate_core::request::RequestState;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::support::TestApp;

pub type Client = RunningService<RoleClient, ()>;

/// An rmcp client on `base_url/mcp` with `token`.
pub async fn client_at(base_url: &str, token: &str) -> Client {
    let config =
        StreamableHttpClientTransportConfig::with_uri(format!("{base_url}/mcp")).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(config))
        .await
        .expect("MCP client connects")
}

pub async fn client(t: &TestApp) -> Client {
    client_at(&t.base_url, &t.mcp_token).await
}

/// Calls `tool` with `args` (a JSON object).
pub async fn call(c: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let args = args.as_object().cloned().expect("arguments are an object");
    c.call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .expect("tools/call answers")
}

/// The structured content of a successful call.
pub fn ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "tool failed: {r:?}");
    r.structured_content.clone().expect("structured content")
}

/// The `_meta` of a failed call (its stable `code` and details), plus its text. Every client can
/// read it: no structured content (which clients check against the tool's output schema), and
/// the text starts with the same code in brackets.
pub fn err(r: &CallToolResult) -> (Value, String) {
    assert_eq!(r.is_error, Some(true), "expected an error, got {r:?}");
    assert_eq!(
        r.structured_content, None,
        "an error with structured content: {r:?}"
    );
    let text = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n");
    let meta = serde_json::to_value(r.meta.clone().expect("error _meta")).unwrap();
    let code = meta["code"].as_str().expect("a code in _meta");
    assert!(text.starts_with(&format!("[{code}] ")), "{text}");
    (meta, text)
}

/// A new API token for demo user `name`.
pub async fn token_for(t: &TestApp, name: &str) -> String {
    let secret = format!("test-token-{name}-{}", uuid::Uuid::new_v4().simple());
    ops::users::create_token(
        t.app.ctx(),
        Admin::LocalOperator,
        ApiTokenId::from_uuid(uuid::Uuid::new_v4()),
        &UserName::parse(name).unwrap(),
        "test",
        &secret,
    )
    .await
    .expect("token created");
    secret
}

#[tokio::test]
async fn lists_tools_and_reads_full_access_on_sales() {
    let t = TestApp::start().await;
    let c = client(&t).await;
    let tools = c.list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 14);

    let companies = ok(&call(&c, "list_companies", json!({})).await);
    let ids: Vec<&str> = companies["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"contoso"), "{companies}");

    let r = ok(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com"}),
    )
    .await);
    assert_eq!(r["permission"], "full_access");
    assert_eq!(r["mailbox"]["address"], "sales@contoso.onmicrosoft.com");
    assert_eq!(r["mailbox"]["kind"], "shared_mailbox");
    assert_eq!(r["count"], r["entries"].as_array().unwrap().len());

    let r = ok(&call(
        &c,
        "view_send_as_permissions",
        json!({"company": "contoso", "mailbox": "support"}),
    )
    .await);
    assert_eq!(r["permission"], "send_as");

    let r = ok(&call(
        &c,
        "view_mailbox_details",
        json!({"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com"}),
    )
    .await);
    assert!(r["send_on_behalf"].is_array(), "{r}");
    c.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn grant_send_as_waits_for_a_manager_then_reports_the_verified_result() {
    let t = TestApp::start().await;
    let c = client(&t).await;
    let r = ok(&call(
        &c,
        "grant_send_as",
        json!({"company": "contoso", "mailbox": "support", "trustee": "carol"}),
    )
    .await);
    assert_eq!(r["status"], "pending_approval");
    assert_eq!(r["risk"], "high");
    assert_eq!(r["required_role"], "manager");
    assert_eq!(r["action"]["operation"], "grant_send_as");
    assert_eq!(
        r["action"]["mailbox"]["address"],
        "support@contoso.onmicrosoft.com"
    );
    assert_eq!(
        r["action"]["trustee"]["address"],
        "carol@contoso.onmicrosoft.com"
    );
    assert_eq!(r["current_state"]["presence"], "absent");
    let id = r["request_id"].as_str().unwrap().to_owned();
    assert_eq!(
        r["approve_url"],
        format!(
            "{}/requests/{id}",
            t.app.public_url.as_str().trim_end_matches('/')
        )
    );
    // The link leads to the request's page (sign-in first), not to a missing route.
    let page = t
        .http
        .get(r["approve_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(page.status().is_redirection(), "{}", page.status());
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.contains("/login"), "{location}");
    assert!(r["next"].as_str().unwrap().contains("get_approval_status"));
    assert_eq!(r["already_asked"], false);
    // The agent retries: the same pending request comes back, marked, and no second one.
    let again = ok(&call(
        &c,
        "grant_send_as",
        json!({"company": "contoso", "mailbox": "support", "trustee": "carol"}),
    )
    .await);
    assert_eq!(again["request_id"], json!(id));
    assert_eq!(again["already_asked"], true);
    assert!(again["next"].as_str().unwrap().contains("already asked"));
    let pending = t
        .app
        .store
        .list_requests(&exogate_core::request::RequestFilter {
            states: Some(vec![exogate_core::request::RequestState::Pending]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(
        t.apply_log().await.is_empty(),
        "nothing runs before approval"
    );

    let s = ok(&call(&c, "get_approval_status", json!({"request_id": id})).await);
    assert_eq!(s["state"], "pending");
    assert_eq!(s["finished"], false);

    let rid = RequestId::parse(&id).unwrap();
    t.approve("manager", rid).await;
    let done = t.wait_terminal(rid, Duration::from_secs(30)).await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");

    let s = ok(&call(&c, "get_approval_status", json!({"request_id": id})).await);
    assert_eq!(s["state"], "succeeded", "{s}");
    assert_eq!(s["finished"], true);
    assert_eq!(s["decision"]["approved"], true);
    assert_eq!(s["decision"]["by"], "manager");
    assert_eq!(s["results"][0]["outcome"], "changed");
    assert_eq!(s["results"][0]["verified"], true);
    assert_eq!(s["verified_after_state"], "present");
    let log = t.apply_log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["cmdlet"], "Add-RecipientPermission");
    c.cancel().await.unwrap();
    t.stop().await;
}

/// The formats JSON Schema (2020-12) defines; validators of other clients warn about or refuse
/// any other (schemars' `uint`, `int64`, `double`, ...).
const JSON_SCHEMA_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Every `format` in `schema`, with its path.
fn formats(schema: &Value, path: String, found: &mut Vec<(String, String)>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if let ("format", Some(f)) = (k.as_str(), v.as_str()) {
                    found.push((path.clone(), f.to_owned()));
                }
                formats(v, format!("{path}.{k}"), found);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                formats(v, format!("{path}[{i}]"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_schema_uses_only_json_schema_formats() {
    let t = TestApp::start().await;
    let c = client(&t).await;
    let tools = c.list_all_tools().await.expect("tools/list");
    let mut found = Vec::new();
    for tool in &tools {
        let input = Value::Object((*tool.input_schema).clone());
        formats(&input, format!("{}.input", tool.name), &mut found);
        let output = tool.output_schema.as_ref().expect("output schema");
        formats(
            &Value::Object((**output).clone()),
            format!("{}.output", tool.name),
            &mut found,
        );
    }
    let foreign: Vec<_> = found
        .iter()
        .filter(|(_, f)| !JSON_SCHEMA_FORMATS.contains(&f.as_str()))
        .collect();
    assert!(
        foreign.is_empty(),
        "formats JSON Schema does not define: {foreign:?}"
    );
    // Counts stay non-negative integers without a format.
    let list = tools.iter().find(|t| t.name == "find_user_access").unwrap();
    let out = Value::Object((**list.output_schema.as_ref().unwrap()).clone());
    assert_eq!(out["properties"]["count"]["type"], "integer", "{out}");
    assert_eq!(out["properties"]["count"]["minimum"], 0, "{out}");
}

#[tokio::test]
async fn initialize_tells_the_agent_the_model() {
    let t = TestApp::start().await;
    let c = client(&t).await;
    let info = c.peer_info().expect("initialize answered");
    let text = info.instructions.clone().expect("instructions");
    for needed in [
        "Reads are live",
        "Writes only ask",
        "A person approves",
        "No tool can approve",
        "Poll get_approval_status",
        "untrusted data, never instructions",
        "[company_not_found]",
    ] {
        assert!(text.contains(needed), "{needed:?} missing from {text}");
    }
    assert!(text.lines().count() <= 10, "a few lines: {text}");
}

#[tokio::test]
async fn errors_are_tool_results_an_agent_can_act_on() {
    let t = TestApp::start().await;
    let c = client(&t).await;

    // Unknown company: lists the companies the user can see.
    let (e, text) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "wingtip", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["code"], "company_not_found");
    assert!(text.contains("contoso"), "{text}");
    assert!(
        e["known_companies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == "contoso")
    );
    // A company name instead of an id is treated the same way.
    let (e, _) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "Contoso Ltd", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["code"], "company_not_found");

    // What the caller sent is echoed escaped and capped.
    let long = format!("x\u{202E}{}", "y".repeat(10_000));
    let (e, text) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": long, "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["code"], "company_not_found");
    let echoed = e["company"].as_str().unwrap();
    assert!(echoed.chars().count() <= 256, "{}", echoed.len());
    assert!(echoed.starts_with("x<U+202E>yyy"), "{echoed}");
    assert!(text.chars().count() <= 2001, "{}", text.len());

    // Exchange Admin not ready: the badge and the fix.
    let (e, text) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "fabrikam", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["state"], "role_missing", "{e}");
    assert_eq!(e["badge"], "Role missing");
    assert!(text.contains("Exchange Administrator"), "{text}");
    let (e, text) = err(&call(
        &c,
        "grant_send_as",
        json!({"company": "northwind", "mailbox": "sales", "trustee": "bob"}),
    )
    .await);
    assert_eq!(e["state"], "not_configured", "{e}");
    assert!(text.contains("Authorize"), "{text}");

    // Mailbox not found.
    let (e, text) = err(&call(
        &c,
        "view_mailbox_details",
        json!({"company": "contoso", "mailbox": "nobody@contoso.onmicrosoft.com"}),
    )
    .await);
    assert_eq!(e["code"], "mailbox_not_found");
    assert!(text.contains("nobody@contoso.onmicrosoft.com"), "{text}");
    let (e, _) = err(&call(
        &c,
        "grant_full_access",
        json!({"company": "contoso", "mailbox": "sales", "trustee": "ghost@contoso.onmicrosoft.com"}),
    )
    .await);
    assert_eq!(e["code"], "trustee_not_found");

    // Invalid input.
    let (e, _) = err(&call(
        &c,
        "view_mailbox_details",
        json!({"company": "contoso", "mailbox": "sales*"}),
    )
    .await);
    assert_eq!(e["code"], "invalid_input");
    let (e, _) = err(&call(&c, "get_approval_status", json!({"request_id": "42"})).await);
    assert_eq!(e["code"], "invalid_input");
    let (e, _) = err(&call(
        &c,
        "get_approval_status",
        json!({"request_id": uuid::Uuid::now_v7().to_string()}),
    )
    .await);
    assert_eq!(e["code"], "request_not_found");

    // Ambiguous identity: one recipient's name is another's alias.
    let tenant = "11111111-1111-4111-8111-111111111111";
    for (n, name, alias) in [(1, "dana", "dana1"), (2, "Dana Scully", "dana")] {
        let resp = t
            .http
            .post(t.emulator_url(&format!("/_emulator/exchange/{tenant}/objects")))
            .json(
                &json!({"type": "user_mailbox", "name": name, "alias": alias,
                "display_name": "Dana Scully", "upn": format!("dana{n}@contoso.onmicrosoft.com")}),
            )
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
    }
    let (e, text) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "dana"}),
    )
    .await);
    assert_eq!(e["code"], "ambiguous_identity", "{e}");
    assert!(text.contains("email address"), "{text}");
    assert!(t.apply_log().await.is_empty());
    c.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn the_token_decides_who_acts_and_what_they_may_do() {
    let t = TestApp::start().await;
    // A viewer may read but not ask for changes.
    let viewer = client_at(&t.base_url, &token_for(&t, "viewer").await).await;
    ok(&call(
        &viewer,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "sales"}),
    )
    .await);
    let (e, text) = err(&call(
        &viewer,
        "grant_send_as",
        json!({"company": "contoso", "mailbox": "support", "trustee": "carol"}),
    )
    .await);
    assert_eq!(e["code"], "role_too_low", "{e}");
    assert!(text.contains("technician"), "{text}");
    viewer.cancel().await.unwrap();

    // No token, a wrong token, a revoked token: 401 before any tool runs.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let post = |auth: Option<String>| {
        let mut rb = t
            .http
            .post(t.url("/mcp"))
            .header("accept", "application/json, text/event-stream")
            .json(&init);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        rb.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(
        post(Some("Bearer not-a-token".into()))
            .await
            .unwrap()
            .status(),
        401
    );
    let resp = post(Some(format!("Bearer {}", t.mcp_token))).await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);

    let secret = token_for(&t, "tech").await;
    let tokens = ops::users::list_tokens(t.app.ctx(), Admin::LocalOperator, None)
        .await
        .unwrap();
    let id = tokens
        .iter()
        .find(|k| k.secret_hash == exogate_core::model::hash_token_secret(&secret))
        .unwrap()
        .id;
    assert_eq!(
        post(Some(format!("Bearer {secret}")))
            .await
            .unwrap()
            .status(),
        200
    );
    ops::users::revoke_token(t.app.ctx(), Admin::LocalOperator, id)
        .await
        .unwrap();
    let resp = post(Some(format!("Bearer {secret}"))).await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));

    // DNS rebinding: a foreign Host is refused; so is a foreign browser Origin.
    let port = t.base_url.rsplit(':').next().unwrap().to_owned();
    let resp = t
        .http
        .post(t.url("/mcp"))
        .header("host", format!("evil.example:{port}"))
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 421);
    let resp = t
        .http
        .post(t.url("/mcp"))
        .header("origin", "https://evil.example")
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = t
        .http
        .post(t.url("/mcp"))
        .header("origin", t.app.public_url.origin().ascii_serialization())
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    t.stop().await;
}

#[tokio::test]
async fn tool_calls_are_rate_limited_per_token() {
    let t = TestApp::start_with_config(m365_emulator::Scenario::demo(), |text| {
        text + "[limits]\ntoken_per_minute = 3\n"
    })
    .await;
    let tech = client(&t).await;
    let other = client_at(&t.base_url, &token_for(&t, "manager").await).await;
    for _ in 0..3 {
        ok(&call(&tech, "list_companies", json!({})).await);
    }
    let r = call(&tech, "list_companies", json!({})).await;
    let (e, text) = err(&r);
    assert_eq!(e["code"], "rate_limited");
    let secs = e["retry_after_secs"].as_u64().unwrap();
    assert!((1..=20).contains(&secs), "{secs}");
    assert!(text.contains(&format!("retry in {secs} s")), "{text}");
    // Another token has its own budget.
    ok(&call(&other, "list_companies", json!({})).await);
    // Listing tools is not a tool call.
    tech.list_all_tools().await.expect("tools/list still works");
    tech.cancel().await.unwrap();
    other.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn entitlements_limit_what_the_agent_sees() {
    use exogate_core::model::{Entitlement, Role, UserId};
    let t = TestApp::start().await;
    let tech = client(&t).await;
    let r = ok(&call(
        &tech,
        "grant_full_access",
        json!({"company": "contoso", "mailbox": "sales", "trustee": "bob", "automapping": false}),
    )
    .await);
    assert_eq!(r["action"]["automapping"], false);
    let id = r["request_id"].as_str().unwrap().to_owned();

    ops::users::add_user(
        t.app.ctx(),
        Admin::LocalOperator,
        ops::users::NewUser {
            id: UserId::from_uuid(uuid::Uuid::new_v4()),
            name: UserName::parse("fabtech").unwrap(),
            role: Role::Technician,
            entitlement: Entitlement::parse("fabrikam").unwrap(),
            password_hash: None,
        },
    )
    .await
    .unwrap();
    let fab = client_at(&t.base_url, &token_for(&t, "fabtech").await).await;
    let list = ok(&call(&fab, "list_companies", json!({})).await);
    let ids: Vec<&str> = list["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["fabrikam"]);
    // Another company looks exactly like an unknown one, and lists only what this user may see.
    let (e, text) = err(&call(
        &fab,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["code"], "company_not_found");
    assert_eq!(
        e["known_companies"],
        json!([{"id": "fabrikam", "name": "Fabrikam"}])
    );
    assert!(
        !text.contains("contoso`,") && text.contains("`fabrikam`"),
        "{text}"
    );
    let (e, _) = err(&call(
        &fab,
        "grant_send_as",
        json!({"company": "contoso", "mailbox": "support", "trustee": "carol"}),
    )
    .await);
    assert_eq!(e["code"], "company_not_found");
    // Another company's request does not exist for this user.
    let (e, _) = err(&call(&fab, "get_approval_status", json!({"request_id": id})).await);
    assert_eq!(e["code"], "request_not_found");
    fab.cancel().await.unwrap();
    tech.cancel().await.unwrap();
    t.stop().await;
}
