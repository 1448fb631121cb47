//! Errors in a person's words: a typo'd mailbox is `mailbox 'suport' not found in Contoso`
//! (Exchange's text, which names its servers, never reaches the user), a trustee that does not
//! resolve is an input error, not `rejected_by_exchange` (nothing reached Exchange), and an
//! error about a company that is not set up carries its fix.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;

async fn api(t: &TestApp, post: Option<Value>, path: &str) -> (StatusCode, Value) {
    let req = match post {
        Some(body) => t.http.post(t.url(path)).json(&body),
        None => t.http.get(t.url(path)),
    };
    let r = req
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .send()
        .await
        .expect("request");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// What Exchange's own not-found text carries: a server name and its phrasing.
fn assert_no_exchange_text(text: &str) {
    for leak in [
        "couldn't be found on",
        "Couldn't find object",
        "ManagementObject",
        ".PROD.OUTLOOK.COM",
    ] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }
}

#[tokio::test]
async fn a_typod_mailbox_is_not_found_in_the_company_without_exchanges_text() {
    let t = TestApp::start().await;
    // CLI read.
    let out = t
        .cli(&[
            "mailbox",
            "permissions",
            "suport",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert!(out.stderr.contains("[mailbox_not_found]"), "{}", out.stderr);
    assert!(
        out.stderr.contains("mailbox 'suport' not found in Contoso"),
        "{}",
        out.stderr
    );
    assert_no_exchange_text(&out.stderr);
    // API read and request.
    let (s, v) = api(
        &t,
        None,
        "/api/v1/companies/contoso/mailboxes/suport/full-access",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "mailbox_not_found");
    assert_eq!(
        v["error"]["message"],
        "mailbox 'suport' not found in Contoso"
    );
    let (s, v) = api(
        &t,
        Some(json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "suport", "trustee": "bob"})),
        "/api/v1/requests",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(
        v["error"]["message"],
        "mailbox 'suport' not found in Contoso"
    );
    // A typo'd trustee likewise.
    let (s, v) = api(
        &t,
        Some(json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "support", "trustee": "bbo"})),
        "/api/v1/requests",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "trustee_not_found");
    assert_eq!(v["error"]["message"], "trustee 'bbo' not found in Contoso");
    assert_no_exchange_text(&v.to_string());
    t.stop().await;
}

#[tokio::test]
async fn a_display_name_trustee_that_does_not_resolve_is_an_input_error() {
    let t = TestApp::start().await;
    for trustee in ["Nobody Here", "Bob Bergg"] {
        let (s, v) = api(
            &t,
            Some(json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "support", "trustee": trustee})),
            "/api/v1/requests",
        )
        .await;
        let code = v["error"]["code"].as_str().unwrap_or("?");
        assert_ne!(code, "rejected_by_exchange", "{trustee}: {v}");
        assert!(
            matches!(
                (s, code),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_input" | "ambiguous_identity"
                ) | (StatusCode::NOT_FOUND, "trustee_not_found")
            ),
            "{trustee}: {s} {v}"
        );
        assert_no_exchange_text(&v.to_string());
    }
    // Nothing was asked of Exchange's write side.
    assert!(t.apply_log().await.is_empty());
    t.stop().await;
}

#[tokio::test]
async fn an_error_about_a_company_not_set_up_carries_its_fix() {
    let t = TestApp::start().await;
    // Fabrikam: the Exchange role is missing.
    let out = t
        .cli(&[
            "mailbox",
            "permissions",
            "sales",
            "--company",
            "fabrikam",
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("[exchange_role_missing]"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("fix: Step 2: assign the Exchange Administrator role"),
        "{}",
        out.stderr
    );
    let (s, v) = api(
        &t,
        Some(json!({"company": "fabrikam", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"})),
        "/api/v1/requests",
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fix: Step 2"),
        "{v}"
    );
    t.stop().await;
}
