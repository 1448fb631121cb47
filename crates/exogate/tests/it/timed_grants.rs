//! Time-boxed grants through the front door: the JSON API asks for a timed grant, a manager
//! approves it, the worker runs it against the emulator and schedules its removal; the end
//! shows on the request (API and page) and on the mailbox page; after the end (the app's clock
//! driven, no sleeping) the worker removes the right, once, and the mailbox page shows it gone.
//! The company rule for ends over the API, with its misuse. MCP's grant tools take the end too.

use exogate_core::RequestId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::web::WebApp;

const MAILBOX: &str = "sales@contoso.onmicrosoft.com";

fn removals_of(log: &[Value], trustee_hint: &str) -> usize {
    log.iter()
        .filter(|e| {
            let s = e.to_string().to_lowercase();
            s.contains("remove") && s.contains(trustee_hint)
        })
        .count()
}

async fn apply_log(w: &WebApp) -> Vec<Value> {
    let body: Value = w
        .http
        .get(format!("{}/_emulator/apply-log", w.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match body {
        Value::Array(a) => a,
        Value::Object(mut m) => match m.remove("entries") {
            Some(Value::Array(a)) => a,
            other => panic!("apply log: {other:?}"),
        },
        other => panic!("apply log: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_grant_is_approved_shown_with_its_end_and_removed_at_the_end() {
    let w = WebApp::start().await;
    let tech = w.login("tech").await;
    let mgr = w.login("manager").await;
    // An inventory to show the end in (the worker keeps it true after each change).
    let (s, v) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let mut version = 0;
    for _ in 0..10_000 {
        let (_, v) = tech
            .api_get(&format!("/api/v1/inventory/status?after={version}"))
            .await;
        version = v["version"].as_u64().expect("version");
        if v["running"] == json!(false) {
            break;
        }
    }
    let (s, r) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_full_access", "mailbox": MAILBOX,
                   "trustee": "bob", "duration": "8h"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let ends_at = r["ends_at"]
        .as_str()
        .expect("the request shows its end")
        .to_owned();
    assert_eq!(r["actions"][0]["ends_at"], r["ends_at"]);
    assert_eq!(r["ends_in"], "ends in 8 h");
    assert!(r["summary"].as_str().unwrap().contains(", until "), "{r}");
    let id = RequestId::parse(r["id"].as_str().unwrap()).unwrap();
    let digest = r["digest"].as_str().unwrap().to_owned();
    let (s, a) = mgr
        .api_post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({"digest": digest}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let done = w.wait_terminal(id).await;
    assert_eq!(done.state.as_str(), "succeeded");
    let (_, v) = tech.api_get(&format!("/api/v1/requests/{id}")).await;
    let removal = v["end_request"]
        .as_str()
        .expect("the scheduled removal is named")
        .to_owned();
    let (s, rv) = tech.api_get(&format!("/api/v1/requests/{removal}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (rv["state"].as_str(), rv["ends_grant"].as_str()),
        (Some("approved"), Some(id.to_string().as_str()))
    );
    assert_eq!(rv["not_before"].as_str(), Some(ends_at.as_str()));
    // The request page and the mailbox page show the end.
    let (_, page) = tech.get(&format!("/requests/{id}")).await;
    assert!(
        page.contains("id=\"request-ends\"") && page.contains(&ends_at),
        "request page shows the end"
    );
    let (_, page) = tech
        .get(&format!("/companies/contoso/mailbox?identity={MAILBOX}"))
        .await;
    assert!(
        page.contains("grant-end") && page.contains("ends in 8 h"),
        "mailbox page shows the end"
    );
    // The inventory (who has access to what) shows it too.
    let (_, page) = tech.get("/inventory?user=bob&company=contoso").await;
    assert!(
        page.contains("grant-end") && page.contains("ends in 8 h"),
        "inventory shows the end: {page}"
    );
    let (_, inv) = tech
        .api_get("/api/v1/inventory/users/bob?company=contoso")
        .await;
    let timed_rows: Vec<&Value> = inv["companies"][0]["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["ends_at"].as_str() == Some(ends_at.as_str()))
        .collect();
    assert_eq!(
        timed_rows.len(),
        1,
        "the API's inventory shows the end once: {inv}"
    );
    assert_eq!(timed_rows[0]["mailbox"]["address"], MAILBOX);
    // The scheduled removal cannot be cancelled through the API.
    let (s, e) = mgr
        .api_post(&format!("/api/v1/requests/{removal}/cancel"), json!({}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
        "{e}"
    );
    // After the end the worker removes it (clock driven), once.
    w.clock.advance_secs(8 * 3600);
    let gone = w.wait_terminal(RequestId::parse(&removal).unwrap()).await;
    assert_eq!(gone.state.as_str(), "succeeded");
    assert!(gone.results[0].verified);
    // (The session from before the end has lapsed on the driven clock: sign in again.)
    let tech = w.login("tech").await;
    let (_, page) = tech
        .get(&format!("/companies/contoso/mailbox?identity={MAILBOX}"))
        .await;
    assert!(page.contains("id=\"section-full-access\""), "{page}");
    assert!(!page.contains("grant-end"), "no end left to show");
    let section = page
        .split("id=\"section-full-access\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(
        !section.to_lowercase().contains("bob@"),
        "bob no longer has Full Access: {section}"
    );
    assert_eq!(
        removals_of(&apply_log(&w).await, "bob"),
        1,
        "removed exactly once"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_company_rule_for_ends_over_the_api_and_its_misuse() {
    let w = WebApp::start().await;
    let admin = w.login("admin").await;
    let mgr = w.login("manager").await;
    let tech = w.login("tech").await;
    let put = |b: &crate::web::Browser, body: Value| {
        let b = b.clone();
        async move {
            let r = b
                .http
                .put(format!("{}/api/v1/companies/contoso/grant-ends", b.base))
                .header("cookie", &b.cookie)
                .header("x-csrf-token", &b.csrf)
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = tech.api_get("/api/v1/companies/contoso/grant-ends").await;
    assert_eq!(
        (s, v["end_required"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    // Lower roles, hostile values and bearer tokens are refused.
    let (s, v) = put(&mgr, json!({"end_required": true, "max_duration": "1d"})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low"))
    );
    for bad in [
        "0s",
        "-1d",
        "999999999999999999999d",
        "soon\u{202e}",
        "400d",
    ] {
        let (s, v) = put(&admin, json!({"end_required": true, "max_duration": bad})).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{bad}: {v}"
        );
    }
    let r = w
        .http
        .put(w.url("/api/v1/companies/contoso/grant-ends"))
        .header("authorization", format!("Bearer {}", w.mcp_token))
        .json(&json!({"end_required": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (s, v) = put(&admin, json!({"end_required": true, "max_duration": "1d"})).await;
    assert_eq!(
        (s, v["max_secs"].as_i64()),
        (StatusCode::OK, Some(86400)),
        "{v}"
    );
    // Another company's admin view is its own: fabrikam keeps no rule.
    let (_, f) = admin.api_get("/api/v1/companies/fabrikam/grant-ends").await;
    assert_eq!(f["end_required"].as_bool(), Some(false));
    // Grants now need an end within a day.
    let ask = |extra: Value| {
        let tech = tech.clone();
        async move {
            let mut body = json!({"company": "contoso", "tool": "grant_send_as", "mailbox": MAILBOX, "trustee": "bob"});
            for (k, v) in extra.as_object().unwrap() {
                body[k] = v.clone();
            }
            tech.api_post("/api/v1/requests", body).await
        }
    };
    let (s, v) = ask(json!({})).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requires every grant to end"),
        "{v}"
    );
    let (s, v) = ask(json!({"duration": "2d"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    for (d, u) in [
        (Some("0h"), None),
        (None, Some("2001-01-01")),
        (Some("1h"), Some("2099-01-01")),
        (Some("x".repeat(3000).as_str()), None),
    ] {
        let mut extra = json!({});
        if let Some(d) = d {
            extra["duration"] = json!(d);
        }
        if let Some(u) = u {
            extra["until"] = json!(u);
        }
        let (s, v) = ask(extra).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{v}"
        );
        assert!(v["error"]["message"].as_str().unwrap().len() < 400);
    }
    let (s, v) = ask(json!({"duration": "8h"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A viewer cannot ask, end or no end.
    let viewer = w.login("viewer").await;
    let (s, v) = viewer
        .api_post("/api/v1/requests", json!({"company": "contoso", "tool": "grant_send_as", "mailbox": MAILBOX, "trustee": "bob", "duration": "8h"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low")),
        "{v}"
    );
    // The integrations page's form: an admin sets it, a manager may not, everyone sees it.
    let r = mgr
        .form(
            "/companies/contoso/grant-ends",
            &[("csrf", mgr.csrf.as_str()), ("max_duration", "9d")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = admin
        .form(
            "/companies/contoso/grant-ends",
            &[
                ("csrf", admin.csrf.as_str()),
                ("end_required", "true"),
                ("max_duration", "3d"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = tech.get("/companies/contoso/integrations").await;
    let shown = page
        .split("id=\"grant-ends-value\"")
        .nth(1)
        .expect("the rule is shown");
    assert!(shown.contains("yes") && shown.contains("3days"), "{shown}");
    let (_, page) = admin.get("/companies/contoso/integrations").await;
    assert!(page.contains("id=\"grant-ends-form\"") && page.contains("value=\"3days\""));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_company_rule_for_ends_from_the_cli() {
    let t = crate::support::TestApp::start().await;
    let contoso = exogate_core::CompanyId::parse("contoso").unwrap();
    let set = t
        .cli(&[
            "--json",
            "company",
            "grant-ends",
            "contoso",
            "--require-end",
            "true",
            "--max-duration",
            "2d",
            "--as",
            "admin",
        ])
        .await;
    assert!(set.success, "{set:?}");
    let v = set.json();
    assert_eq!(
        (v["end_required"].as_bool(), v["max_secs"].as_i64()),
        (Some(true), Some(172_800))
    );
    let rule = t.app.store.grant_end_policy(&contoso).await.unwrap();
    assert_eq!(rule.max_secs, Some(172_800));
    // A manager may not; a hostile cap is refused with a clear message and changes nothing.
    let mgr = t
        .cli(&[
            "company",
            "grant-ends",
            "contoso",
            "--require-end",
            "false",
            "--as",
            "manager",
        ])
        .await;
    assert!(!mgr.success && mgr.stderr.contains("role"), "{mgr:?}");
    let bad = t
        .cli(&[
            "company",
            "grant-ends",
            "contoso",
            "--require-end",
            "false",
            "--max-duration=-3d\u{202e}",
            "--as",
            "admin",
        ])
        .await;
    assert!(
        !bad.success && bad.stderr.contains("max_duration"),
        "{bad:?}"
    );
    assert!(
        !bad.stderr.contains('\u{202e}'),
        "hostile text is escaped: {bad:?}"
    );
    let still = t.app.store.grant_end_policy(&contoso).await.unwrap();
    assert_eq!(still, rule);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_grant_tools_take_an_end_and_show_it() {
    use crate::mcp_http::{call, client, err, ok};
    let t = crate::support::TestApp::start().await;
    let c = client(&t).await;
    let r = call(
        &c,
        "grant_send_as",
        json!({"company": "contoso", "mailbox": "support", "trustee": "bob", "duration": "7d"}),
    )
    .await;
    let v = ok(&r);
    assert_eq!(v["status"], "pending_approval", "{v}");
    let ends = v["action"]["ends_at"].as_str().expect("the end is shown");
    assert!(
        v["action"]["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("until {ends}")),
        "{v}"
    );
    // Approved and run, the grant's end shows in find_user_access (the inventory).
    let swept = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "admin"])
        .await;
    assert!(swept.success, "{swept:?}");
    let id = exogate_core::RequestId::parse(v["request_id"].as_str().unwrap()).unwrap();
    t.approve("manager", id).await;
    let done = t
        .wait_terminal(id, std::time::Duration::from_secs(30))
        .await;
    assert!(
        matches!(done.state.as_str(), "succeeded" | "already_in_state"),
        "{done:?}"
    );
    let r = call(
        &c,
        "find_user_access",
        json!({"user": "bob", "company": "contoso"}),
    )
    .await;
    let found = ok(&r);
    let timed: Vec<&Value> = found["companies"][0]["access"]
        .as_array()
        .expect("access")
        .iter()
        .filter(|a| a["ends_at"].as_str() == Some(ends))
        .collect();
    assert_eq!(timed.len(), 1, "{found}");
    assert_eq!(timed[0]["right"], "send_as");
    // The live read shows the end too, on bob's entry only.
    let r = call(
        &c,
        "view_send_as_permissions",
        json!({"company": "contoso", "mailbox": "support"}),
    )
    .await;
    let live = ok(&r);
    let entries = live["entries"].as_array().expect("entries");
    let with_end: Vec<&Value> = entries
        .iter()
        .filter(|e| e.get("ends_at").is_some())
        .collect();
    assert_eq!(with_end.len(), 1, "{live}");
    assert_eq!(with_end[0]["ends_at"], ends, "{live}");
    assert!(
        with_end[0]["trustee_identity"]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("bob@")),
        "{live}"
    );
    let r = call(
        &c,
        "grant_full_access",
        json!({"company": "contoso", "mailbox": "support", "trustee": "carol", "until": "2001-01-01"}),
    )
    .await;
    let (meta, text) = err(&r);
    assert_eq!(meta["code"], "invalid_input", "{text}");
    // Removal tools take no end (their schema has none).
    let r = c
        .call_tool(
            rmcp::model::CallToolRequestParams::new("remove_send_as").with_arguments(
                json!({"company": "contoso", "mailbox": "support", "trustee": "bob", "duration": "1h"})
                    .as_object()
                    .cloned()
                    .unwrap(),
            ),
        )
        .await;
    assert!(
        r.is_err() || r.unwrap().is_error == Some(true),
        "an end on a removal is refused"
    );
    let _ = c.cancel().await;
    t.stop().await;
}
