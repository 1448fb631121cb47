//! (timed-grants) In a real headless Chromium: a technician asks for Full Access for ten
//! minutes on the mailbox page, a manager approves it, the request and mailbox pages show the
//! end; the app's clock is driven past the end and the mailbox page (reloaded until a deadline,
//! no sleeps) shows the right removed.

use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use super::browser::Chrome;
use super::web::WebApp;

#[tokio::test]
async fn browser_timed_grant_is_approved_shown_with_its_end_and_gone_after_it() {
    let w = WebApp::start().await;
    let c = Chrome::start("timed-grant").await;
    c.login(&w.base, "tech").await;
    c.client
        .goto(&w.url("/companies/contoso/mailbox?identity=sales"))
        .await
        .unwrap();
    c.wait_css("#grant-tool")
        .await
        .select_by_value("grant_full_access")
        .await
        .unwrap();
    c.client
        .find(Locator::Css("#grant-trustee"))
        .await
        .unwrap()
        .send_keys("bob")
        .await
        .unwrap();
    c.client
        .find(Locator::Css("#grant-duration"))
        .await
        .unwrap()
        .send_keys("10m")
        .await
        .unwrap();
    c.client
        .find(Locator::Css("#request-change"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let state = c
        .wait_css("#request-state[data-request-state=\"pending\"]")
        .await;
    let id = state.attr("data-request-id").await.unwrap().unwrap();
    let ends = c.wait_css("#request-ends").await.text().await.unwrap();
    assert!(ends.contains("ends in 10 min"), "{ends}");
    c.shot("1-pending-with-end").await;

    c.client
        .find(Locator::Css("#logout"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait_css("#user").await;
    c.login(&w.base, "manager").await;
    c.client.goto(&w.url("/approvals")).await.unwrap();
    let card = c.wait_css(&format!("#pending #request-{id}")).await;
    let text = card.text().await.unwrap();
    assert!(text.contains("until "), "the approver sees the end: {text}");
    card.find(Locator::Css(&format!("#approve-{id}")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait_css("#request-state[data-request-state=\"succeeded\"]")
        .await;
    let ends = c.wait_css("#request-ends").await.text().await.unwrap();
    assert!(ends.contains("Scheduled removal"), "{ends}");
    c.shot("2-approved-with-end").await;

    c.client
        .goto(&w.url("/companies/contoso/mailbox?identity=sales"))
        .await
        .unwrap();
    let end = c
        .wait_css("#section-full-access .grant-end")
        .await
        .text()
        .await
        .unwrap();
    assert!(end.contains("ends in 10 min"), "{end}");
    c.shot("3-mailbox-with-end").await;

    // Past the end: the worker removes the right; reload the page until it shows that.
    w.clock.advance_secs(10 * 60);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        w.app.worker_wake.notify_one();
        c.client
            .goto(&w.url("/companies/contoso/mailbox?identity=sales"))
            .await
            .unwrap();
        if c.client.current_url().await.unwrap().path() == "/login" {
            c.login(&w.base, "manager").await;
            continue;
        }
        let section = c
            .wait_css("#section-full-access")
            .await
            .text()
            .await
            .unwrap();
        if !section.contains("bob@contoso.onmicrosoft.com") {
            assert!(!section.contains("ends in"), "{section}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob still has Full Access after the end: {section}"
        );
    }
    c.shot("4-mailbox-after-end").await;
    let log: Value = w
        .http
        .get(format!("{}/_emulator/apply-log", w.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cmdlets: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["cmdlet"].as_str())
        .collect();
    assert_eq!(
        cmdlets,
        ["Add-MailboxPermission", "Remove-MailboxPermission"],
        "{log}"
    );
    c.stop().await;
    w.stop().await;
}
