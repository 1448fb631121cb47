//! Times on pages are shown as people read them: how long ago, with the absolute local time on
//! hover (`title`) and the exact instant in `datetime`; the JSON API keeps the exact RFC 3339
//! time (and `at_ms` where a view has it). Through the real router, with the clock driven.

use exogate_core::Timestamp;
use exogate_core::when;
use reqwest::StatusCode;
use serde_json::json;

use crate::web::WebApp;

/// The `<time>` element a page shows for `at` when the page was made at `now`.
fn time_element(now: Timestamp, at: Timestamp) -> String {
    format!(
        r#"<time datetime="{at}" title="{}">{}</time>"#,
        when::absolute(at, exogate::local_time::offset_secs(at)),
        when::relative(now, at)
    )
}

fn parse(rfc3339: &str) -> Timestamp {
    Timestamp::from_offset_date_time(
        time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339"),
    )
}

#[tokio::test]
async fn pages_show_relative_times_with_the_absolute_time_on_hover() {
    let w = WebApp::start().await;
    let tech = w.login("tech").await;
    let (s, req) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "carol"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap().to_owned();
    // The API gives the exact instant, milliseconds included.
    let created = parse(req["created_at"].as_str().unwrap());
    let expires = parse(req["expires_at"].as_str().unwrap());
    assert_eq!(req["created_at"], created.to_string());

    w.clock.advance_secs(3 * 60 + 20);
    let now = exogate_core::ports::Clock::now(&*w.clock);
    let manager = w.login("manager").await;

    let (s, page) = manager.get("/approvals").await;
    assert_eq!(s, StatusCode::OK);
    let asked = time_element(now, created);
    assert!(asked.contains(">3 min ago</time>"), "{asked}");
    assert!(page.contains(&asked), "no {asked} in\n{page}");
    let expiry = time_element(now, expires);
    assert!(expiry.contains(">in "), "{expiry}");
    assert!(page.contains(&expiry), "no {expiry} in\n{page}");

    let (_, page) = manager.get(&format!("/requests/{id}")).await;
    assert!(page.contains(&asked), "no {asked} in\n{page}");

    // The audit page: each event's time, never the raw timestamp as text.
    let (s, events) = manager
        .api_get("/api/v1/audit?company=contoso&limit=5")
        .await;
    assert_eq!(s, StatusCode::OK, "{events}");
    let first = &events["events"].as_array().expect("events")[0];
    let at = Timestamp::from_unix_millis(first["at_ms"].as_i64().unwrap());
    assert_eq!(first["at"], at.to_string());
    let (s, page) = manager.get("/audit?company=contoso").await;
    assert_eq!(s, StatusCode::OK);
    let shown = time_element(now, at);
    assert!(page.contains(&shown), "no {shown} in\n{page}");
    assert!(
        !page.contains(&format!(">{at}<")),
        "a raw timestamp on the page"
    );

    // The companies page and a company's integrations page: when the status was last checked,
    // and when the tenant was connected.
    let contoso = w.company("contoso").await;
    let checked = contoso
        .exchange_status
        .expect("demo Contoso is checked")
        .checked_at;
    let shown = time_element(now, checked);
    let (_, page) = manager.get("/companies").await;
    assert!(page.contains(&shown), "no {shown} in\n{page}");
    let (_, page) = manager.get("/companies/contoso/integrations").await;
    assert!(
        page.contains(&format!(r#"<span id="last-check">{shown}</span>"#)),
        "no {shown} in\n{page}"
    );
    let connected = contoso
        .connection
        .expect("demo Contoso is connected")
        .connected_at;
    let shown = time_element(now, connected);
    assert!(page.contains(&shown), "no {shown} in\n{page}");
    w.stop().await;
}

#[test]
fn a_time_that_is_not_one_is_shown_escaped() {
    let now = Timestamp::from_unix_millis(1_796_329_708_123);
    // What a view carries is its own RFC 3339 text; anything else is shown as text, not markup.
    assert_eq!(
        exogate::local_time::html_text(&now, "<b>\"x\"</b>"),
        "&lt;b&gt;&quot;x&quot;&lt;/b&gt;"
    );
    assert_eq!(exogate::local_time::html_text(&now, ""), "");
    let html = exogate::local_time::html_text(&now, "2026-12-03T20:25:08.123Z");
    assert_eq!(
        html,
        format!(
            r#"<time datetime="2026-12-03T20:25:08.123Z" title="{}">3 min ago</time>"#,
            when::absolute(
                Timestamp::from_unix_millis(1_796_329_508_123),
                exogate::local_time::offset_secs(Timestamp::from_unix_millis(1_796_329_508_123))
            )
        )
    );
}

/// The inventory page says how old each company's inventory is in words, with the exact
/// instant in `datetime`, and "never" for a company not swept; a request's page is found by a
/// unique id prefix of 8 characters too, and only among the caller's companies.
#[tokio::test]
async fn inventory_as_of_is_relative_and_a_request_page_takes_an_id_prefix() {
    let w = WebApp::start().await;
    let tech = w.login("tech").await;
    let (s, body) = tech
        .api_post("/api/v1/inventory/sync", json!({"company": "contoso"}))
        .await;
    assert!(s.is_success(), "{s} {body}");
    // The status long-poll answers when the progress board changes: no sleeping.
    let mut version = 0;
    let mut as_of = None;
    for _ in 0..10_000 {
        let (s, inv) = tech
            .api_get(&format!("/api/v1/inventory/status?after={version}"))
            .await;
        assert_eq!(s, StatusCode::OK, "{inv}");
        version = inv["version"].as_u64().expect("version");
        as_of = inv["companies"]
            .as_array()
            .expect("companies")
            .iter()
            .find(|c| c["company"] == "contoso")
            .and_then(|c| c["as_of"].as_str())
            .map(parse);
        if inv["running"] == json!(false) {
            break;
        }
    }
    let as_of = as_of.expect("contoso swept");
    w.clock.advance_secs(2 * 3600 + 60);
    let now = exogate_core::ports::Clock::now(&*w.clock);
    let (s, page) = tech.get("/inventory").await;
    assert_eq!(s, StatusCode::OK);
    let shown = time_element(now, as_of);
    assert!(shown.contains(">2 h ago</time>"), "{shown}");
    assert!(page.contains(&shown), "no {shown} in\n{page}");
    assert!(!page.contains(&format!(">{as_of}<")), "a raw timestamp");
    assert!(page.contains(">never<"), "an unswept company says never");

    let (s, req) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "carol"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap().to_owned();
    let (s, page) = tech.get(&format!("/requests/{}", &id[..8])).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains(&id), "the page of {id}");
    // Too short, and hostile, are refused; nobody else's request is found by its prefix.
    let (s, _) = tech.get(&format!("/requests/{}", &id[..7])).await;
    assert!(s.is_client_error(), "{s}");
    let (s, _) = tech.get("/requests/%3Cscript%3E0000").await;
    assert!(s.is_client_error(), "{s}");
    exogate::local_users::add_with_password(
        w.app.ctx(),
        exogate_core::model::UserName::parse("fab-tech").unwrap(),
        exogate_core::model::Role::Technician,
        exogate_core::model::Entitlement::Companies(
            [exogate_core::model::CompanyId::parse("fabrikam").unwrap()]
                .into_iter()
                .collect(),
        ),
        "a-long-enough-password",
    )
    .await
    .expect("user added");
    let fabrikam_only =
        crate::web::sign_in(&w.http, &w.base, "fab-tech", "a-long-enough-password").await;
    let (s, _) = fabrikam_only.get(&format!("/requests/{}", &id[..8])).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
