//! Companies named by their display name as well as by id, through the CLI, the JSON API and
//! MCP: one resolver in the core (`ops::companies::resolve`) serves all three.

use serde_json::{Value, json};

use crate::mcp_http::{call, client, client_at, err, ok, token_for};
use crate::support::TestApp;

/// The CLI's `--json` error code of a failed command (or "ok").
async fn cli_code(t: &TestApp, args: &[&str]) -> (String, Value) {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let out = t.cli(&with_json).await;
    let v = out.json();
    if out.success {
        ("ok".to_owned(), v)
    } else {
        (v["error"]["code"].as_str().unwrap_or("?").to_owned(), v)
    }
}

async fn api_get(t: &TestApp, token: &str, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(t.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_company_answers_to_its_name_in_any_case_everywhere() {
    let t = TestApp::start().await;

    // CLI: `company check Contoso` (it answered invalid_input before).
    let (code, v) = cli_code(&t, &["company", "check", "Contoso", "--as", "tech"]).await;
    assert_eq!(code, "ok", "{v}");
    assert_eq!(v["id"], "contoso", "{v}");
    let (code, v) = cli_code(
        &t,
        &[
            "mailbox",
            "permissions",
            "sales@contoso.onmicrosoft.com",
            "--company",
            "  CONTOSO ",
            "--as",
            "tech",
        ],
    )
    .await;
    assert_eq!(code, "ok", "{v}");
    assert!(
        v["full_access"].as_array().is_some_and(|a| !a.is_empty()),
        "{v}"
    );

    // JSON API: the path takes the name as well.
    let (status, v) = api_get(&t, &t.mcp_token, "/api/v1/companies/contoso").await;
    assert_eq!(status, 200, "{v}");
    let (status, by_name) = api_get(&t, &t.mcp_token, "/api/v1/companies/Contoso").await;
    assert_eq!(status, 200, "{by_name}");
    assert_eq!(by_name, v);

    // MCP: a tool's `company` argument.
    let c = client(&t).await;
    let r = ok(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com"}),
    )
    .await);
    let by_name = ok(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "cOnToSo", "mailbox": "sales@contoso.onmicrosoft.com"}),
    )
    .await);
    assert_eq!(by_name, r);
    t.stop().await;
}

#[tokio::test]
async fn a_name_two_companies_share_is_an_error_listing_both() {
    let t = TestApp::start().await;
    for (id, name) in [("twin-a", "Twin Co"), ("twin-b", "twin  co")] {
        let out = t
            .cli(&["company", "add", id, "--name", name, "--as", "admin"])
            .await;
        assert!(out.success, "{out:?}");
    }
    let (code, v) = cli_code(&t, &["company", "show", "TWIN CO", "--as", "admin"]).await;
    assert_eq!(code, "ambiguous_company", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("twin-a (Twin Co)") && message.contains("twin-b (twin  co)"),
        "{message}"
    );
    // Each id still works.
    let (code, _) = cli_code(&t, &["company", "show", "twin-b", "--as", "admin"]).await;
    assert_eq!(code, "ok");

    let admin = token_for(&t, "admin").await;
    let (status, v) = api_get(&t, &admin, "/api/v1/companies/twin%20co").await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "ambiguous_company", "{v}");

    let c = client_at(&t.base_url, &admin).await;
    let (e, text) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "Twin Co", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["code"], "ambiguous_company", "{e}");
    assert!(text.contains("twin-a") && text.contains("twin-b"), "{text}");
    t.stop().await;
}

/// Misuse: a name is looked up only among the companies the caller may see, so asking for
/// another customer by name says "not found" and names nothing of it (by id, the answer stays
/// `not_entitled`, as before).
#[tokio::test]
async fn a_name_never_finds_a_company_the_caller_may_not_see() {
    let t = TestApp::start().await;
    let added = t
        .cli_with_stdin(
            &[
                "user",
                "add",
                "fab-tech",
                "--role",
                "technician",
                "--companies",
                "fabrikam",
                "--password-stdin",
            ],
            "a-long-enough-password\n",
        )
        .await;
    assert!(added.success, "{added:?}");
    let (code, v) = cli_code(&t, &["company", "show", "Contoso", "--as", "fab-tech"]).await;
    assert_eq!(code, "company_not_found", "{v}");
    let (code, _) = cli_code(&t, &["company", "show", "contoso", "--as", "fab-tech"]).await;
    assert_eq!(code, "not_entitled");
    let (code, v) = cli_code(&t, &["company", "show", "Fabrikam", "--as", "fab-tech"]).await;
    assert_eq!(code, "ok", "{v}");

    let token = token_for(&t, "fab-tech").await;
    let (status, v) = api_get(&t, &token, "/api/v1/companies/Contoso").await;
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["error"]["code"], "company_not_found");
    assert!(!v.to_string().contains("contoso\""), "{v}");

    let c = client_at(&t.base_url, &token).await;
    let (e, text) = err(&call(
        &c,
        "view_mailbox_permissions",
        json!({"company": "Contoso", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(e["code"], "company_not_found", "{e}");
    // The companies it lists are the caller's own.
    assert!(!text.contains("contoso ("), "{text}");
    t.stop().await;
}
