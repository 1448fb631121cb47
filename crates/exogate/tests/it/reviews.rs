//! (reviews) Access reviews through the real router: the JSON API and pages (start, items,
//! decisions, close into one request per company, report as JSON, CSV and attestation), every
//! decision / close / report in the audit log, misuse (another company's manager, a technician
//! closing, a hostile name), and the reviewer link's boundary: tampered, expired, revoked, for
//! another company or campaign, a bad CSRF value, and that it opens nothing else.

use exogate_core::model::{CompanyId, Entitlement, Role, UserName};
use exogate_core::ops;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::web::{Browser, WebApp, sign_in};

pub(crate) async fn sync(w: &WebApp, companies: &[&str]) {
    let admin = exogate_core::Actor {
        user: ops::users::find_user(w.app.ctx(), &UserName::parse("admin").unwrap())
            .await
            .unwrap(),
        channel: exogate_core::model::Channel::Cli,
    };
    for c in companies {
        exogate::inventory::sync_company(
            &w.app,
            &admin,
            &CompanyId::parse(c).unwrap(),
            &ops::inventory::no_progress(),
        )
        .await
        .expect("sweep");
    }
}

async fn fabrikam_manager(w: &WebApp) -> Browser {
    exogate::local_users::add_with_password(
        w.app.ctx(),
        UserName::parse("fabmgr").unwrap(),
        Role::Manager,
        Entitlement::parse("fabrikam").unwrap(),
        "fabrikam-manager-pass",
    )
    .await
    .unwrap();
    sign_in(&w.http, &w.base, "fabmgr", "fabrikam-manager-pass").await
}

async fn kinds_since(w: &WebApp, seq: i64) -> Vec<(String, String)> {
    w.app
        .store
        .list_audit(seq, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.detail))
        .collect()
}

const HOSTILE: &str = "<script>alert(1)</script> =HYPERLINK(\"x\")";

async fn start(m: &Browser, body: Value) -> Value {
    let (s, c) = m.api_post("/api/v1/reviews", body).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    c
}

fn item<'a>(items: &'a [Value], mailbox: &str, right: &str, trustee: &str) -> &'a Value {
    items
        .iter()
        .find(|i| {
            i["mailbox"]["address"]
                .as_str()
                .unwrap()
                .starts_with(mailbox)
                && i["right"] == right
                && (i["trustee"]["address"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(trustee)
                    || i["trustee"]["raw"].as_str().unwrap().starts_with(trustee))
        })
        .unwrap_or_else(|| panic!("no item {mailbox} {right} {trustee} in {items:?}"))
}

#[tokio::test]
async fn review_api_decides_closes_into_one_request_reports_and_refuses_misuse() {
    let w = WebApp::start().await;
    sync(&w, &["contoso"]).await;
    let m = w.login("manager").await;
    let seq0 = w.audit_head().await.map_or(0, |h| h.0);
    let c = start(
        &m,
        json!({"name": HOSTILE, "companies": ["contoso"], "kinds": ["shared_mailbox"], "due_in": "14d"}),
    )
    .await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["state"], "open");
    assert_eq!(c["companies"][0]["items"], 6, "{c}");
    assert_eq!(
        c["companies"][0]["decided"], 1,
        "the orphan starts as remove: {c}"
    );

    let (s, page) = m
        .api_get(&format!("/api/v1/reviews/{id}/items?company=contoso"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let items = page["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 6);
    let orphan = items.iter().find(|i| i["via"] == "orphan").unwrap();
    assert_eq!(orphan["decision"]["decision"], "remove");
    let (_, f) = m
        .api_get(&format!(
            "/api/v1/reviews/{id}/items?company=contoso&mailbox=sales"
        ))
        .await;
    assert_eq!(f["items"].as_array().unwrap().len(), 3, "{f}");

    // Decide: bulk per trustee, one item with a hostile reason, the rest stay undecided.
    let bob_sa = item(&items, "support@", "send_as", "bob@")["item"]
        .as_i64()
        .unwrap();
    let (s, d) = m
        .api_post(
            &format!("/api/v1/reviews/{id}/decisions"),
            json!({"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com", "decision": "keep", "reason": "still in sales"}),
        )
        .await;
    assert_eq!((s, d["decided"].as_i64()), (StatusCode::OK, Some(3)), "{d}");
    let (s, d) = m
        .api_post(
            &format!("/api/v1/reviews/{id}/decisions"),
            json!({"company": "contoso", "items": [bob_sa], "decision": "remove", "reason": "=cmd|' /C calc'!A0"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let (s, e) = m
        .api_post(
            &format!("/api/v1/reviews/{id}/decisions"),
            json!({"company": "contoso", "items": [bob_sa], "decision": "maybe"}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input"))
    );

    // Misuse: another company's manager sees nothing; a technician cannot close.
    let fab = fabrikam_manager(&w).await;
    for path in [
        format!("/api/v1/reviews/{id}"),
        format!("/api/v1/reviews/{id}/items?company=contoso"),
        format!("/api/v1/reviews/{id}/report?company=contoso"),
    ] {
        let (s, b) = fab.api_get(&path).await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("review_not_found")),
            "{path}: {b}"
        );
    }
    let (s, b) = fab
        .api_post(
            &format!("/api/v1/reviews/{id}/decisions"),
            json!({"company": "contoso", "items": [1], "decision": "keep"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b) = fab
        .api_post(&format!("/api/v1/reviews/{id}/close"), json!({}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("review_not_found")),
        "{b}"
    );
    let (s, b) = fab
        .api_post(
            "/api/v1/reviews",
            json!({"name": "x", "companies": ["contoso"]}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_entitled")),
        "{b}"
    );
    let tech = w.login("tech").await;
    let (s, b) = tech
        .api_post(&format!("/api/v1/reviews/{id}/close"), json!({}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low")),
        "{b}"
    );
    let (s, b) = tech
        .api_post(
            &format!("/api/v1/reviews/{id}/links"),
            json!({"company": "contoso", "label": "x"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low")),
        "{b}"
    );

    // Close: one request for contoso's two removals; closing again makes no second one.
    let (s, closed) = m
        .api_post(&format!("/api/v1/reviews/{id}/close"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{closed}");
    assert_eq!(closed["state"], "closed");
    let rid = closed["companies"][0]["request"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, again) = m
        .api_post(&format!("/api/v1/reviews/{id}/close"), json!({}))
        .await;
    assert_eq!(again["companies"][0]["request"], rid.as_str());
    let req = w
        .app
        .store
        .get_request(exogate_core::RequestId::parse(&rid).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(req.actions.len(), 2, "bob's Send As and the orphan");
    assert_eq!(req.state, exogate_core::request::RequestState::Pending);
    let (s, b) = m
        .api_post(
            &format!("/api/v1/reviews/{id}/decisions"),
            json!({"company": "contoso", "items": [bob_sa], "decision": "keep"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("review_closed")),
        "{b}"
    );

    // Report: kept by whom, removals requested, undecided listed as undecided.
    let (s, r) = m
        .api_get(&format!("/api/v1/reviews/{id}/report?company=contoso"))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["kept"].as_u64(),
            r["removal_requested"].as_u64(),
            r["undecided"].as_u64()
        ),
        (Some(3), Some(2), Some(1)),
        "{r}"
    );
    assert_eq!(r["request"], rid.as_str());
    let csv = m
        .get_raw(&format!(
            "/api/v1/reviews/{id}/report?company=contoso&format=csv"
        ))
        .await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("'=cmd"), "formula cells are defused: {csv}");
    assert!(
        !csv.contains(",=cmd") && !csv.contains(",=HYPERLINK"),
        "{csv}"
    );
    assert!(csv.contains("undecided"), "{csv}");
    let (s, html) = m.get(&format!("/reviews/{id}/report/contoso")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("<script>alert"), "the name is escaped");
    assert!(
        html.contains("&lt;script&gt;") || html.contains("&#60;script&#62;"),
        "{html}"
    );
    assert!(html.contains("/assets/review.css"));
    let (s, html) = m.get(&format!("/reviews/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("<script>alert"));
    let (s, html) = m.get("/reviews").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!html.contains("<script>alert"));
    // The page's form: one company picked plus more typed; an unswept one is refused whole.
    let r = m
        .form(
            "/reviews",
            &[
                ("csrf", m.csrf.as_str()),
                ("name", "Two"),
                ("companies", "contoso"),
                ("more", "fabrikam"),
                ("kind", ""),
                ("right", ""),
                ("due_in", "7d"),
                ("schedule", "none"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("not_swept_yet"));
    let r = m
        .form(
            "/reviews",
            &[
                ("csrf", m.csrf.as_str()),
                ("name", "One"),
                ("companies", "contoso"),
                ("more", ""),
                ("kind", "shared_mailbox"),
                ("right", "send_as"),
                ("due_in", "7d"),
                ("schedule", "none"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let css = w
        .http
        .get(w.url("/assets/review.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("@media print"));

    // Every decision, the close and each report is audited.
    let events = kinds_since(&w, seq0).await;
    let count = |k: &str| events.iter().filter(|(x, _)| x == k).count();
    assert_eq!(
        count("review.created"),
        2,
        "the API's and the form's (not the refused one)"
    );
    assert_eq!(
        count("review.decided"),
        2,
        "two decisions recorded (the refused ones not)"
    );
    assert_eq!(count("review.closed"), 1, "closed once");
    assert!(
        count("review.report_created") >= 3,
        "json, csv and attestation"
    );
    let closed_ev = events.iter().find(|(k, _)| k == "review.closed").unwrap();
    assert!(closed_ev.1.contains(&rid), "the close names its request");
    let decided = events
        .iter()
        .find(|(k, d)| k == "review.decided" && d.contains("\"remove\""))
        .unwrap();
    assert!(
        decided.1.contains("bob@"),
        "the decision names its items: {}",
        decided.1
    );
    w.stop().await;
}

async fn issue(m: &Browser, id: &str, company: &str) -> (String, String) {
    let (s, l) = m
        .api_post(
            &format!("/api/v1/reviews/{id}/links"),
            json!({"company": company, "label": "Mailbox owner", "expires_in": "2d"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    (
        l["url"].as_str().unwrap().to_owned(),
        l["link"]["id"].as_str().unwrap().to_owned(),
    )
}

fn token_of(url: &str) -> String {
    url.split("?t=").nth(1).unwrap().to_owned()
}

async fn get(w: &WebApp, path_and_query: &str) -> (StatusCode, String, reqwest::header::HeaderMap) {
    let r = w.http.get(w.url(path_and_query)).send().await.unwrap();
    let h = r.headers().clone();
    (r.status(), r.text().await.unwrap(), h)
}

#[tokio::test]
async fn review_link_is_refused_tampered_expired_revoked_transplanted_and_opens_nothing_else() {
    let w = WebApp::start().await;
    sync(&w, &["contoso"]).await;
    let m = w.login("manager").await;
    let c1 = start(&m, json!({"name": "Q1", "companies": ["contoso"]})).await;
    let c2 = start(&m, json!({"name": "Q2", "companies": ["contoso"]})).await;
    let (id1, id2) = (c1["id"].as_str().unwrap(), c2["id"].as_str().unwrap());
    let seq0 = w.audit_head().await.map_or(0, |h| h.0);
    let (url, link_id) = issue(&m, id1, "contoso").await;
    let token = token_of(&url);
    assert!(
        url.starts_with(&w.url(&format!("/review/{id1}/contoso?t="))),
        "{url}"
    );

    // It opens its own page: only contoso's items of campaign 1, no session, private headers.
    let ok_path = format!("/review/{id1}/contoso?t={token}");
    let (s, html, h) = get(&w, &ok_path).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(h.get("set-cookie").is_none(), "the link grants no session");
    assert!(
        html.contains("Mailbox owner") && html.contains("sales@contoso"),
        "{html}"
    );
    assert!(
        !html.contains("fabrikam.onmicrosoft.com"),
        "only its company's items"
    );
    assert!(!html.contains("href=\"/companies\""), "no app navigation");

    // Refused, each with the same plain 404: tampered, other company, other campaign, bad form.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let parts: Vec<&str> = token.split('.').collect();
    let longer = format!(
        "v1.{}.{}.{}",
        parts[1].parse::<i64>().unwrap() + 86_400_000,
        parts[2],
        parts[3]
    );
    for bad in [
        format!("/review/{id1}/contoso?t={tampered}"),
        format!("/review/{id1}/contoso?t={longer}"),
        format!("/review/{id1}/fabrikam?t={token}"),
        format!("/review/{id2}/contoso?t={token}"),
        format!("/review/{id1}/contoso?t="),
        format!("/review/{id1}/contoso"),
        format!("/review/not-a-campaign/contoso?t={token}"),
    ] {
        let (s, html, h) = get(&w, &bad).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}: {html}");
        assert!(html.contains("review_link_invalid"), "{bad}");
        assert!(!html.contains(&token), "the token is not echoed");
        assert_eq!(h["cache-control"], "no-store");
    }

    // Its page posts decisions with the CSRF value bound to the link; others are refused.
    let (_, html, _) = get(&w, &ok_path).await;
    let csrf = super::web::extract(&html, "name=\"csrf\" value=\"", "\"").expect("csrf field");
    let post = |fields: Vec<(&'static str, String)>, path: String| {
        let w = &w;
        async move {
            let r = w
                .http
                .post(w.url(&path))
                .header("origin", &w.base)
                .form(&fields)
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.text().await.unwrap())
        }
    };
    // Campaign 2's items are numbered apart from campaign 1's: not this link's.
    let (_, page) = m
        .api_get(&format!("/api/v1/reviews/{id2}/items?company=contoso"))
        .await;
    let fab_item = page["items"].as_array().unwrap().last().unwrap()["item"]
        .as_i64()
        .unwrap()
        + 1000;
    let (_, page) = m
        .api_get(&format!("/api/v1/reviews/{id1}/items?company=contoso"))
        .await;
    let items = page["items"].as_array().unwrap().clone();
    let alice_fa = item(&items, "sales@", "full_access", "alice@")["item"]
        .as_i64()
        .unwrap();
    let here = format!("/review/{id1}/contoso");
    let (s, _) = post(
        vec![
            ("t", token.clone()),
            ("csrf", "forged".into()),
            ("item", alice_fa.to_string()),
            ("decision", "remove".into()),
        ],
        here.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a forged CSRF value is refused");
    let (s, body) = post(
        vec![
            ("t", token.clone()),
            ("csrf", csrf.clone()),
            ("item", fab_item.to_string()),
            ("decision", "remove".into()),
        ],
        here.clone(),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "an item that is not this link's: {body}"
    );
    let (s, _) = post(
        vec![
            ("t", token.clone()),
            ("csrf", csrf.clone()),
            ("item", alice_fa.to_string()),
            ("decision", "remove".into()),
        ],
        format!("/review/{id1}/fabrikam"),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the link on another company's address"
    );
    let (s, body) = post(
        vec![
            ("t", token.clone()),
            ("csrf", csrf.clone()),
            ("item", alice_fa.to_string()),
            ("decision", "remove".into()),
            ("reason", "left the team".into()),
        ],
        here.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("Saved: 1 item(s) marked remove"), "{body}");
    let (_, page) = m
        .api_get(&format!(
            "/api/v1/reviews/{id1}/items?company=contoso&trustee=alice&mailbox=sales"
        ))
        .await;
    let d = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["item"] == alice_fa)
        .unwrap()["decision"]
        .clone();
    assert_eq!(
        (d["decision"].as_str(), d["by"].as_str()),
        (Some("remove"), Some("link: Mailbox owner")),
        "{d}"
    );

    // It opens nothing else: pages send to the login, the API and MCP answer unauthenticated.
    for path in [
        "/companies",
        "/reviews",
        &format!("/reviews/{id1}"),
        "/approvals",
        "/audit",
    ] {
        let r = w
            .http
            .get(w.url(&format!("{path}?t={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(r.headers()["location"], "/login", "{path}");
    }
    for path in [
        "/api/v1/reviews",
        &format!("/api/v1/reviews/{id1}"),
        &format!("/api/v1/reviews/{id1}/report?company=contoso"),
        "/api/v1/companies",
    ] {
        let r = w
            .http
            .get(w.url(&format!("{path}?t={token}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        let r = w
            .http
            .get(w.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} with the token as bearer"
        );
    }
    let r = w
        .http
        .post(w.url("/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = w
        .http
        .post(w.url(&format!("/api/v1/reviews/{id1}/close?t={token}")))
        .header("origin", &w.base)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Revoked: refused. A second link, then expiry by the app's clock: refused.
    let (s, _) = m
        .api_post(
            &format!("/api/v1/reviews/{id1}/links/{link_id}/revoke"),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(get(&w, &ok_path).await.0, StatusCode::NOT_FOUND, "revoked");
    let (url2, _) = issue(&m, id1, "contoso").await;
    let path2 = format!("/review/{id1}/contoso?t={}", token_of(&url2));
    assert_eq!(get(&w, &path2).await.0, StatusCode::OK);
    w.clock.advance_secs(2 * 86_400);
    assert_eq!(get(&w, &path2).await.0, StatusCode::NOT_FOUND, "expired");

    // The token is in no audit row (the issue and the decision are).
    let events = kinds_since(&w, seq0).await;
    assert!(events.iter().any(|(k, _)| k == "review.link_issued"));
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "review.decided" && d.contains("link: Mailbox owner"))
    );
    assert!(events.iter().any(|(k, _)| k == "review.link_revoked"));
    let secret = token.split('.').nth(2).unwrap();
    for (k, d) in &events {
        assert!(
            !d.contains(secret) && !d.contains(&token),
            "{k} holds the token: {d}"
        );
    }
    w.stop().await;
}

#[tokio::test]
async fn a_quarterly_review_is_started_again_by_the_worker_once_its_period_is_over() {
    let w = WebApp::start().await;
    sync(&w, &["contoso"]).await;
    let m = w.login("manager").await;
    let c = start(
        &m,
        json!({"name": "Quarterly shared", "companies": ["contoso"], "kinds": ["shared_mailbox"], "schedule": "quarterly"}),
    )
    .await;
    assert_eq!(c["schedule"], "quarterly");
    let count = || async { w.app.store.review_list(100).await.unwrap() };
    w.app.worker_wake.notify_one();
    assert_eq!(count().await.len(), 1);
    w.clock.advance_secs(91 * 86_400);
    super::support::until(
        "the next quarter's review",
        std::time::Duration::from_secs(20),
        || async {
            w.app.worker_wake.notify_one();
            count().await.len() == 2
        },
    )
    .await;
    let list = count().await;
    assert_eq!(
        list[0].previous.map(|p| p.to_string()).as_deref(),
        c["id"].as_str()
    );
    assert_eq!(list[0].name, "Quarterly shared");
    assert_eq!(
        list[0].companies[0].items, 6,
        "the inventory as of the new start"
    );
    w.stop().await;
}

#[tokio::test]
async fn mcp_reads_an_access_review_report_and_cannot_decide() {
    use crate::mcp_http::{call, client_at, err, ok};
    let w = WebApp::start().await;
    sync(&w, &["contoso"]).await;
    let m = w.login("manager").await;
    let c = start(
        &m,
        json!({"name": "MCP view", "companies": ["contoso"], "kinds": ["shared_mailbox"]}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let mcp = client_at(&w.base, &w.mcp_token).await;
    let tools = mcp.list_all_tools().await.expect("tools/list");
    let tool = tools
        .iter()
        .find(|t| t.name == "get_access_review_report")
        .expect("listed");
    assert_eq!(tool.meta.as_ref().unwrap().0["exogate/risk"], "low");
    assert_eq!(
        tool.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
    assert!(
        !tools
            .iter()
            .any(|t| t.name.contains("review") && t.name != "get_access_review_report"),
        "no tool decides or closes a review"
    );
    let r = ok(&call(
        &mcp,
        "get_access_review_report",
        json!({"review_id": id, "company": "contoso"}),
    )
    .await);
    assert_eq!(
        (
            r["count"].as_u64(),
            r["undecided"].as_u64(),
            r["state"].as_str()
        ),
        (Some(6), Some(5), Some("open")),
        "{r}"
    );
    let orphan = r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["via"] == "orphan")
        .unwrap();
    assert_eq!(orphan["outcome"], "to_remove");
    let (e, _) = err(&call(
        &mcp,
        "get_access_review_report",
        json!({"review_id": "nope", "company": "contoso"}),
    )
    .await);
    assert_eq!(e["code"], "invalid_input", "{e}");
    let unknown = "0192f0e0-0000-7000-8000-000000000000";
    let (e, _) = err(&call(
        &mcp,
        "get_access_review_report",
        json!({"review_id": unknown, "company": "contoso"}),
    )
    .await);
    assert_eq!(e["code"], "review_not_found", "{e}");
    let (e, _) = err(&call(
        &mcp,
        "get_access_review_report",
        json!({"review_id": id, "company": "contoso", "decision": "keep"}),
    )
    .await);
    assert_eq!(e["code"], "invalid_input", "unknown fields refused: {e}");
    let events = kinds_since(&w, 0).await;
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "review.report_created" && d.contains("\"mcp\""))
    );
    w.stop().await;
}

#[tokio::test]
async fn the_cli_creates_lists_shows_links_closes_and_reports_a_review() {
    let t = super::support::TestApp::start().await;
    let sync = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "admin"])
        .await;
    assert!(sync.success, "{sync:?}");
    let created = t
        .cli(&[
            "--json",
            "review",
            "create",
            "--name",
            "CLI review",
            "--companies",
            "contoso",
            "--kinds",
            "shared_mailbox",
            "--rights",
            "send_as",
            "--as",
            "manager",
        ])
        .await;
    assert!(created.success, "{created:?}");
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let list = t.cli(&["review", "list", "--as", "viewer"]).await;
    assert!(
        list.success && list.stdout.contains("CLI review"),
        "{list:?}"
    );
    let show = t
        .cli(&["--json", "review", "show", &id, "--as", "tech"])
        .await;
    assert!(show.success, "{show:?}");
    let items = show.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2, "{items:?}");
    let link = t
        .cli(&[
            "review",
            "link",
            &id,
            "--company",
            "contoso",
            "--label",
            "Owner",
            "--as",
            "manager",
        ])
        .await;
    assert!(
        link.success && link.stdout.contains(&format!("/review/{id}/contoso?t=v1.")),
        "{link:?}"
    );
    let denied = t
        .cli(&["--json", "review", "close", &id, "--as", "tech"])
        .await;
    assert!(!denied.success);
    assert_eq!(denied.json()["error"]["code"], "role_too_low", "{denied:?}");
    let closed = t.cli(&["review", "close", &id, "--as", "manager"]).await;
    assert!(
        closed.success && closed.stdout.contains("nothing to remove"),
        "{closed:?}"
    );
    let report = t
        .cli(&[
            "review",
            "report",
            &id,
            "--company",
            "contoso",
            "--csv",
            "--as",
            "viewer",
        ])
        .await;
    assert!(report.success, "{report:?}");
    assert!(
        report.stdout.starts_with("campaign,company,item,"),
        "{}",
        report.stdout
    );
    assert_eq!(
        report.stdout.matches(",undecided,").count(),
        2,
        "{}",
        report.stdout
    );
    t.stop().await;
}
