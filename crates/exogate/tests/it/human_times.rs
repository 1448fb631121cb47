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
