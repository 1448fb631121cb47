//! (reviews) The access review in a real headless Chromium, the five steps:
//! 1. a manager starts a review of Contoso's shared mailboxes (Send As) and issues a link;
//! 2. the mailbox owner, signed out, through the link, removes one grant and keeps another;
//! 3. the manager closes the review into one approval request;
//! 4. the manager approves it, and the emulator's apply log holds exactly that removal;
//! 5. the attestation page lists both decisions.

use serde_json::Value;

use super::browser::Chrome;
use super::web::WebApp;

#[tokio::test]
async fn browser_review_link_decisions_close_into_one_request_and_attestation() {
    let w = WebApp::start().await;
    super::reviews::sync(&w, &["contoso"]).await;
    let c = Chrome::start("access-review").await;

    // 1. The manager starts the review in the browser and issues a link for the owner.
    c.login(&w.base, "manager").await;
    c.client.goto(&w.url("/reviews")).await.unwrap();
    c.wait_css("#review-name")
        .await
        .send_keys("Contoso shared mailboxes Q1")
        .await
        .unwrap();
    c.wait_css("#review-company")
        .await
        .select_by_value("contoso")
        .await
        .unwrap();
    c.wait_css("#review-kind")
        .await
        .select_by_value("shared_mailbox")
        .await
        .unwrap();
    c.wait_css("#review-right")
        .await
        .select_by_value("send_as")
        .await
        .unwrap();
    c.wait_css("#review-start").await.click().await.unwrap();
    c.wait_css("#review-items").await;
    let review_url = c.client.current_url().await.unwrap();
    let id = review_url.path().trim_start_matches("/reviews/").to_owned();
    let campaign = exogate_core::review::CampaignId::parse(&id).unwrap();
    c.wait_css("#link-label")
        .await
        .send_keys("Mailbox owner")
        .await
        .unwrap();
    c.wait_css("#link-issue").await.click().await.unwrap();
    let link = c
        .wait_css("#new-link")
        .await
        .prop("value")
        .await
        .unwrap()
        .expect("the link is shown");
    assert!(link.contains(&format!("/review/{id}/contoso?t=")), "{link}");
    c.shot("1-review-started-link-issued").await;
    c.wait_css("#logout").await.click().await.unwrap();
    c.wait_css("#user").await;

    // 2. The owner, with no account and no session, opens the link and decides two grants.
    let items = w
        .app
        .store
        .review_items(campaign, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        items.len(),
        2,
        "Send As on sales (alice) and support (bob): {items:?}"
    );
    let no = |who: &str| {
        items
            .iter()
            .find(|i| i.row.trustee.label().starts_with(who))
            .unwrap()
            .no
    };
    let (bob, alice) = (no("bob@"), no("alice@"));
    c.client.goto(&link).await.unwrap();
    c.wait_css("#reviewer").await;
    c.wait_css(&format!("#reason-{bob}"))
        .await
        .send_keys("bob moved to another team")
        .await
        .unwrap();
    c.wait_css(&format!("#remove-{bob}"))
        .await
        .click()
        .await
        .unwrap();
    c.wait_css(&format!(
        "#item-{bob} td.decision[data-decision=\"remove\"]"
    ))
    .await;
    c.wait_css(&format!("#keep-{alice}"))
        .await
        .click()
        .await
        .unwrap();
    c.wait_css(&format!(
        "#item-{alice} td.decision[data-decision=\"keep\"]"
    ))
    .await;
    let msg = c.wait_css("#review-message").await.text().await.unwrap();
    assert!(msg.contains("marked keep"), "{msg}");
    let row = c
        .wait_css(&format!("#item-{bob} .decision"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        row.contains("remove") && row.contains("link: Mailbox owner"),
        "{row}"
    );
    c.shot("2-owner-decided").await;
    // The link gave no session: the app still asks to sign in.
    c.client.goto(&w.url("/reviews")).await.unwrap();
    c.wait_css("#user").await;

    // 3. The manager closes the review: one approval request.
    c.login(&w.base, "manager").await;
    c.client
        .goto(&w.url(&format!("/reviews/{id}")))
        .await
        .unwrap();
    c.wait_css("#review-close").await.click().await.unwrap();
    c.wait_css("#review-state[data-state=\"closed\"]").await;
    let req = c
        .wait_css("#review-request-contoso")
        .await
        .text()
        .await
        .unwrap();
    let requests = w
        .app
        .store
        .list_requests(&Default::default())
        .await
        .unwrap();
    assert_eq!(requests.len(), 1, "one request");
    assert_eq!(requests[0].id.to_string(), req);
    assert_eq!(requests[0].actions.len(), 1, "only bob's removal");
    c.shot("3-closed-into-one-request").await;

    // 4. The manager approves it; the apply log holds exactly that removal.
    assert!(
        apply_log(&w).await.is_empty(),
        "nothing applied before approval"
    );
    c.client.goto(&w.url("/approvals")).await.unwrap();
    c.wait_css(&format!("#pending #request-{req} #approve-{req}"))
        .await
        .click()
        .await
        .unwrap();
    c.wait_css("#request-state[data-request-state=\"succeeded\"]")
        .await;
    let done = w
        .wait_terminal(exogate_core::RequestId::parse(&req).unwrap())
        .await;
    assert_eq!(done.state.as_str(), "succeeded");
    let log = apply_log(&w).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["cmdlet"], "Remove-RecipientPermission", "{log:?}");
    let entry = log[0].to_string().to_lowercase();
    assert!(
        entry.contains("bob") && entry.contains("support"),
        "{entry}"
    );
    c.shot("4-approved-and-applied").await;

    // 5. The attestation lists both decisions: removed and verified, kept by the owner.
    c.client
        .goto(&w.url(&format!("/reviews/{id}/report/contoso")))
        .await
        .unwrap();
    let removed = c
        .wait_css(&format!("#line-{bob}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        removed.contains("removed_verified") && removed.contains("link: Mailbox owner"),
        "{removed}"
    );
    let kept = c
        .wait_css(&format!("#line-{alice}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        kept.contains("kept") && kept.contains("link: Mailbox owner"),
        "{kept}"
    );
    let summary = c.wait_css("#att-summary").await.text().await.unwrap();
    assert!(
        summary.contains("1 kept") && summary.contains("1 removed and verified"),
        "{summary}"
    );
    c.shot("5-attestation").await;
    c.stop().await;
    w.stop().await;
}

async fn apply_log(w: &WebApp) -> Vec<Value> {
    let log: Value = w
        .http
        .get(format!("{}/_emulator/apply-log", w.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    log["entries"].as_array().cloned().unwrap_or_default()
}
