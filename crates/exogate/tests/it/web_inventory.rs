//! The delegation inventory in the web app, through the real router: Sync now with live
//! progress (long-polled status), the by-user page with as-of times, failed marks, groups and
//! orphans, exports (CSV and JSON), the by-mailbox page, entitlement limits of the JSON API,
//! and the offboard form creating ONE approval request.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp_http::token_for;
use crate::support::TestApp;
use crate::web::{Browser, extract, sign_in};

/// Signs in through the login form, like a person.
async fn login(t: &TestApp, name: &str) -> Browser {
    sign_in(&t.http, &t.base_url, name, &t.password(name)).await
}

fn company<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["companies"]
        .as_array()
        .expect("companies")
        .iter()
        .find(|c| c["company"] == id)
        .unwrap_or_else(|| panic!("{id} missing: {status}"))
}

/// Follows the status long-poll (each call returns when the progress board changes) until no
/// sweep runs; returns the last status. Also checks progress is reported on the way.
async fn wait_synced(b: &Browser) -> Value {
    let mut version = 0;
    for _ in 0..10_000 {
        let (s, v) = b
            .api_get(&format!("/api/v1/inventory/status?after={version}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let next = v["version"].as_u64().expect("version");
        assert!(next >= version, "{v}");
        version = next;
        if v["running"] == json!(false) {
            return v;
        }
    }
    panic!("the sweep never finished");
}

fn rights(part: &Value, mailbox: &str) -> Vec<String> {
    let mut r: Vec<String> = part["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["mailbox"]["address"] == mailbox)
        .map(|r| {
            format!(
                "{}/{}",
                r["right"].as_str().unwrap(),
                r["via"].as_str().unwrap()
            )
        })
        .collect();
    r.sort();
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_now_views_and_exports() {
    let t = TestApp::start().await;
    let tech = login(&t, "tech").await;
    let (s, page) = tech.get("/inventory").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("id=\"sync-contoso\""), "{page}");
    assert!(page.contains("Sync now") && page.contains("id=\"sync-all\""));
    assert!(page.contains("href=\"/inventory\""), "nav link");

    // Sync now (the page's script calls this API), followed live until done.
    let (s, v) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["started"], json!(["contoso"]));
    let status = wait_synced(&tech).await;
    let contoso = company(&status, "contoso");
    assert_eq!(contoso["freshness"], "fresh", "{status}");
    assert!(contoso["as_of"].as_str().unwrap().starts_with("20"));
    assert_eq!(contoso["sync"]["running"], false);
    assert_eq!(contoso["sync"]["phase"], "done");
    assert!(contoso["sync"]["rows"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(company(&status, "fabrikam")["freshness"], "never");

    // By user: the page and the JSON API.
    let (s, page) = tech
        .get("/inventory?user=alice%40contoso.onmicrosoft.com")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let contoso_part = extract(&page, "id=\"result-contoso\"", "</table>").expect("contoso part");
    assert!(
        contoso_part.contains("sales@contoso.onmicrosoft.com"),
        "{contoso_part}"
    );
    assert!(contoso_part.contains("Full Access") && contoso_part.contains("Send As"));
    assert!(contoso_part.contains("data-freshness=\"fresh\""));
    let fabrikam_part = extract(&page, "id=\"result-fabrikam\"", "</div>").expect("fabrikam part");
    assert!(
        fabrikam_part.contains("unknown: not swept yet"),
        "{fabrikam_part}"
    );
    assert!(page.contains("/api/v1/inventory/users/alice%40contoso.onmicrosoft.com?format=csv"));
    let (s, v) = tech
        .api_get("/api/v1/inventory/users/alice?company=contoso")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["companies"].as_array().unwrap().len(), 1);
    assert_eq!(
        rights(&v["companies"][0], "sales@contoso.onmicrosoft.com"),
        ["full_access/direct", "send_as/direct"],
        "{v}"
    );
    // CSV export, spreadsheet-safe, with its as-of time.
    let r = tech
        .get_raw("/api/v1/inventory/users/alice%40contoso.onmicrosoft.com?format=csv")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("company,as_of,freshness,"), "{csv}");
    assert_eq!(
        csv.lines()
            .filter(|l| l.starts_with("contoso,") && l.contains("sales@contoso.onmicrosoft.com"))
            .count(),
        2,
        "{csv}"
    );
    assert!(
        csv.lines().any(|l| l.starts_with("fabrikam,,never")),
        "{csv}"
    );

    // Groups as groups; orphaned SIDs as orphans (by mailbox, linked from the mailbox page).
    let (_, page) = tech.get("/inventory?user=salesteam&company=contoso").await;
    assert!(page.contains("data-via=\"group\""), "{page}");
    let (s, page) = tech
        .get("/companies/contoso/inventory?identity=support%40contoso.onmicrosoft.com")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("class=\"row-group\""), "{page}");
    assert!(page.contains("class=\"row-orphan\"") && page.contains("Deleted principal"));
    assert!(page.contains("S-1-5-21-"), "{page}");
    let (_, mbx) = tech
        .get("/companies/contoso/mailbox?identity=support%40contoso.onmicrosoft.com")
        .await;
    assert!(mbx.contains("id=\"mailbox-inventory\""), "{mbx}");
    let (s, v) = tech
        .api_get("/api/v1/inventory/companies/contoso/mailboxes/support%40contoso.onmicrosoft.com")
        .await;
    assert_eq!(s, StatusCode::OK);
    let classes: Vec<&str> = v["companies"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trustee"]["class"].as_str().unwrap())
        .collect();
    assert!(
        classes.contains(&"group") && classes.contains(&"orphan"),
        "{v}"
    );
    let (s, v) = tech
        .api_get("/api/v1/inventory/companies/contoso?format=json")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["companies"][0]["rows"].as_array().unwrap().len() >= 5,
        "{v}"
    );

    // Stable errors.
    let (s, v) = tech
        .api_get("/api/v1/inventory/users/alice?format=xml")
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input"))
    );
    let (s, v) = tech
        .api_get("/api/v1/inventory/users/alice?company=nope")
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("company_not_found"))
    );
    let r = t
        .http
        .get(t.url("/api/v1/inventory/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = t
        .http
        .post(t.url("/api/v1/inventory/sync"))
        .header("cookie", &tech.cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let viewer = login(&t, "viewer").await;
    let (s, v) = viewer
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low")),
        "{v}"
    );

    // Sync all: only the companies whose Exchange Admin is configured (the others' badges say
    // what to fix), so it never fails for them; Contoso stays fresh, Fabrikam unknown.
    let (s, v) = tech.api_post("/api/v1/inventory/sync", json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["started"], json!(["contoso"]), "{v}");
    let status = wait_synced(&tech).await;
    assert_eq!(
        company(&status, "contoso")["freshness"],
        "fresh",
        "{status}"
    );
    assert_eq!(company(&status, "fabrikam")["freshness"], "never");
    // Asked for by name, a broken tenant is swept even so, and is marked failed.
    let (s, v) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "fabrikam"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let status = wait_synced(&tech).await;
    let fabrikam = company(&status, "fabrikam");
    assert_eq!(fabrikam["freshness"], "failed", "{status}");
    assert!(fabrikam["sync"]["error"].is_string(), "{status}");
    let (_, page) = tech.get("/inventory?user=alice").await;
    let fabrikam_part = extract(&page, "id=\"result-fabrikam\"", "</div>").expect("fabrikam part");
    assert!(
        fabrikam_part.contains("data-freshness=\"failed\""),
        "{fabrikam_part}"
    );
    assert!(
        fabrikam_part.contains("the last sweep failed"),
        "{fabrikam_part}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_shows_only_entitled_companies() {
    use exogate_core::model::{Entitlement, Role, UserId, UserName};
    use exogate_core::ops;
    let t = TestApp::start().await;
    let tech = login(&t, "tech").await;
    let (s, _) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_synced(&tech).await;
    ops::users::add_user(
        t.app.ctx(),
        ops::users::Admin::LocalOperator,
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
    let token = token_for(&t, "fabtech").await;
    let get = |path: &str| t.http.get(t.url(path)).bearer_auth(&token).send();
    // Fabrikam, the one company it sees, was never swept: unknown there (it used to answer an
    // empty list, "nothing"), and nothing of Contoso's.
    let r = get("/api/v1/inventory/users/alice").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "not_swept_yet", "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("Fabrikam"),
        "{v}"
    );
    assert!(!v.to_string().contains("contoso"), "{v}");
    // Another company: `not_entitled`, like every other per-company route of the API.
    for path in [
        "/api/v1/inventory/users/alice?company=contoso",
        "/api/v1/inventory/companies/contoso",
        "/api/v1/inventory/companies/contoso/mailboxes/sales",
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_entitled", "{path}");
    }
    // A company without a Microsoft 365 connection has no inventory: 409, not an empty part.
    ops::companies::add_company(
        t.app.ctx(),
        &t.actor("admin").await,
        exogate_core::CompanyId::parse("newco").unwrap(),
        "NewCo",
    )
    .await
    .unwrap();
    let admin = login(&t, "admin").await;
    let (s, body) = admin
        .get("/api/v1/inventory/users/alice?company=newco")
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "company_not_connected", "{v}");
    let v: Value = get("/api/v1/inventory/status")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["companies"].as_array().unwrap().len(), 1, "{v}");
    let r = t
        .http
        .post(t.url("/api/v1/inventory/sync"))
        .bearer_auth(&token)
        .json(&json!({"company": "contoso"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offboard_form_asks_once_for_every_removal() {
    let t = TestApp::start().await;
    let tech = login(&t, "tech").await;
    // The page's no-script "Sync now" form.
    let r = tech
        .form(
            "/inventory/sync",
            &[("csrf", tech.csrf.as_str()), ("company", "contoso")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/inventory");
    wait_synced(&tech).await;

    let (s, page) = tech.get("/inventory/offboard").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<option value=\"contoso\""), "{page}");
    let (s, page) = tech
        .get("/inventory/offboard?company=contoso&user=alice%40contoso.onmicrosoft.com")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert_eq!(
        extract(&page, "id=\"offboard-count\">", "<").as_deref(),
        Some("2"),
        "{page}"
    );
    assert!(page.contains("id=\"offboard-form\""));
    let before = t
        .app
        .store
        .list_requests(&Default::default())
        .await
        .unwrap()
        .len();
    let r = tech
        .form(
            "/inventory/offboard",
            &[
                ("csrf", tech.csrf.as_str()),
                ("company", "contoso"),
                ("user", "alice@contoso.onmicrosoft.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let id = loc.strip_prefix("/requests/").expect("request page");
    let all = t
        .app
        .store
        .list_requests(&Default::default())
        .await
        .unwrap();
    assert_eq!(all.len(), before + 1, "exactly one request");
    let (s, v) = tech.api_get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["tool"], "offboard_user");
    assert_eq!(v["state"], "pending");
    assert_eq!(v["actions"].as_array().unwrap().len(), 2, "{v}");
    let (s, page) = tech.get(&loc).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    // The form without its CSRF token changes nothing.
    let r = tech
        .form(
            "/inventory/offboard",
            &[
                ("company", "contoso"),
                ("user", "alice@contoso.onmicrosoft.com"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Approved, every removal runs; the inventory shows alice with nothing left in Contoso.
    let rid = exogate_core::RequestId::parse(id).unwrap();
    t.approve("manager", rid).await;
    let done = t
        .wait_terminal(rid, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(done.state.as_str(), "succeeded", "{done:?}");
    let (_, v) = tech
        .api_get("/api/v1/inventory/users/alice%40contoso.onmicrosoft.com?company=contoso")
        .await;
    assert_eq!(v["companies"][0]["rows"], json!([]), "{v}");
    // Nothing left to remove: a clear error, no request.
    let (s, v) = tech
        .api_post(
            "/api/v1/inventory/offboard",
            json!({"company": "contoso", "user": "alice@contoso.onmicrosoft.com"}),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
        "{v}"
    );
    // The API form creates one too (bob's Send As on support).
    let (s, v) = tech
        .api_post(
            "/api/v1/inventory/offboard",
            json!({"company": "contoso", "user": "bob@contoso.onmicrosoft.com"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["tool"], "offboard_user");
    assert_eq!(v["actions"].as_array().unwrap().len(), 1, "{v}");
    t.stop().await;
}

/// In a real headless Chromium: "Sync now" starts the sweep through the API, the row follows
/// it live, and the page reloads with the fresh as-of time; then a user search and the
/// offboard form end on the request page.
#[tokio::test]
async fn browser_sync_now_follows_progress_and_offboard_ends_on_the_request() {
    use fantoccini::Locator;
    let w = crate::web::WebApp::start().await;
    let c = crate::browser::Chrome::start("inventory").await;
    c.login(&w.base, "tech").await;
    c.client.goto(&w.url("/inventory")).await.unwrap();
    c.wait_css("#sync-contoso .freshness[data-freshness=\"never\"]")
        .await;
    c.shot("1-inventory-never-swept").await;
    c.wait_css("#sync-contoso button.sync-now")
        .await
        .click()
        .await
        .unwrap();
    // The script follows the sweep and reloads once it is done: the server then renders it.
    c.wait_css("#sync-contoso .freshness[data-freshness=\"fresh\"]")
        .await;
    let text = c
        .wait_css("#sync-contoso .progress-text")
        .await
        .text()
        .await
        .unwrap();
    assert!(text.starts_with("done: "), "{text}");
    c.shot("2-inventory-synced").await;

    c.wait_css("#inventory-user")
        .await
        .send_keys("alice@contoso.onmicrosoft.com")
        .await
        .unwrap();
    c.client
        .find(Locator::Css("#inventory-search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rows = c
        .wait_css("#result-contoso table")
        .await
        .text()
        .await
        .unwrap();
    assert!(rows.contains("sales@contoso.onmicrosoft.com"), "{rows}");
    c.shot("3-what-alice-can-open").await;

    c.client
        .goto(&w.url("/inventory/offboard?company=contoso&user=alice%40contoso.onmicrosoft.com"))
        .await
        .unwrap();
    assert_eq!(
        c.wait_css("#offboard-count").await.text().await.unwrap(),
        "2"
    );
    c.shot("4-offboard-preview").await;
    c.client
        .execute("window.confirm = function () { return true; };", vec![])
        .await
        .unwrap();
    c.wait_css("#offboard-submit").await.click().await.unwrap();
    let state = c
        .wait_css("#request-state[data-request-state=\"pending\"]")
        .await;
    assert!(state.attr("data-request-id").await.unwrap().is_some());
    c.shot("5-offboard-request").await;
    c.stop().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_names_render_as_inert_visible_text() {
    let t = TestApp::start().await;
    let tenant = "11111111-1111-4111-8111-111111111111";
    let hostile = "<script>alert(1)</script>Eve \u{202E}nimda";
    let r = t
        .http
        .post(t.emulator_url(&format!("/_emulator/exchange/{tenant}/objects")))
        .json(
            &json!({"type": "user_mailbox", "name": "eve", "alias": "eve",
            "display_name": hostile, "upn": "eve@contoso.onmicrosoft.com"}),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = t
        .http
        .post(t.emulator_url(&format!("/_emulator/exchange/{tenant}/grants")))
        .json(&json!({"mailbox": "sales", "trustee": "eve@contoso.onmicrosoft.com", "right": "FullAccess"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let tech = login(&t, "tech").await;
    let (s, _) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    wait_synced(&tech).await;
    let (s, page) = tech.get("/inventory?user=eve&company=contoso").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains("&#60;script&#62;alert(1)&#60;/script&#62;Eve &#60;U+202E&#62;nimda"),
        "{page}"
    );
    assert!(!page.contains('\u{202E}'));
    t.stop().await;
}

/// With Exchange answering slowly, the long-polled status reports the sweep while it runs, each
/// answer only after something changed, and ends with the sweep's totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_long_poll_reports_a_running_sweep_then_its_totals() {
    let mut scenario = m365_emulator::Scenario::demo();
    scenario.knobs.latency_ms.insert("*".to_owned(), 20);
    let t = TestApp::start_with(scenario).await;
    let r = t
        .http
        .put(t.emulator_url("/_emulator/exchange/11111111-1111-4111-8111-111111111111/directory"))
        .json(&m365_emulator::exchange::generated_directory_seed(
            "contoso.onmicrosoft.com",
            300,
            7,
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let tech = login(&t, "tech").await;
    let (s, v) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    let mut version = v["version"].as_u64().unwrap();
    let mut saw_running = 0;
    let last = loop {
        let (s, v) = tech
            .api_get(&format!("/api/v1/inventory/status?after={version}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let next = v["version"].as_u64().unwrap();
        assert!(
            next > version,
            "a long-poll answers only after a change: {v}"
        );
        version = next;
        let sync = &company(&v, "contoso")["sync"];
        if sync["running"] == json!(true) {
            saw_running += 1;
            continue;
        }
        break v;
    };
    assert!(saw_running >= 1, "the running sweep was never reported");
    let sync = &company(&last, "contoso")["sync"];
    assert_eq!(sync["phase"], "done", "{last}");
    let mailboxes = sync["mailboxes"].as_u64().unwrap();
    assert!(mailboxes >= 250, "{last}");
    assert_eq!(sync["done"], sync["total"]);
    assert!(sync["rows"].as_u64().unwrap() > 0);
    assert_eq!(company(&last, "contoso")["freshness"], "fresh");
    t.stop().await;
}
