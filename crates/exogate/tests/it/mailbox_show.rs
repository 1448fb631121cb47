//! (inventory-truth) One mailbox, one command: `mailbox show` lists Full Access, Send As and Send
//! on Behalf together with each trustee's kind; `mailbox details` labels its Send on Behalf
//! table and says so when nobody has it. Through the built binary against the demo world.

use crate::support::TestApp;

#[tokio::test]
async fn mailbox_show_lists_the_three_rights_with_kinds() {
    let t = TestApp::start().await;
    // support: Sales Team (carol) Full Access, dave's orphaned SID Full Access, bob Send As.
    let out = t
        .cli(&[
            "mailbox",
            "show",
            "support",
            "--company",
            "Contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let text = &out.stdout;
    assert!(text.contains("RIGHT") && text.contains("KIND"), "{text}");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle} in {text}"))
            .to_owned()
    };
    let team = line("salesteam@");
    assert!(
        team.contains("Full Access") && team.contains("group (1 members)"),
        "{team}"
    );
    let orphan = line("S-1-5-21-");
    assert!(
        orphan.contains("Full Access") && orphan.contains("orphan SID"),
        "{orphan}"
    );
    let bob = line("bob@");
    assert!(bob.contains("Send As") && bob.contains("user"), "{bob}");

    // sales: alice Full Access and Send As, carol Send on Behalf; --json in the API's shapes.
    let out = t
        .cli(&[
            "--json",
            "mailbox",
            "show",
            "sales",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let v = out.json();
    assert_eq!(
        v["mailbox"]["address"], "sales@contoso.onmicrosoft.com",
        "{v}"
    );
    let addrs = |k: &str| -> Vec<String> {
        v[k].as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["resolved"]["address"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        addrs("full_access").contains(&"alice@contoso.onmicrosoft.com".to_owned()),
        "{v}"
    );
    assert!(
        addrs("send_as").contains(&"alice@contoso.onmicrosoft.com".to_owned()),
        "{v}"
    );
    assert_eq!(
        addrs("send_on_behalf"),
        ["carol@contoso.onmicrosoft.com"],
        "{v}"
    );
    assert_eq!(v["send_on_behalf"][0]["kind"], "user", "{v}");

    // A typo: not found, in a person's words.
    let out = t
        .cli(&[
            "mailbox",
            "show",
            "suport",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("mailbox 'suport' not found in Contoso"),
        "{}",
        out.stderr
    );
    t.stop().await;
}

#[tokio::test]
async fn mailbox_details_labels_send_on_behalf_and_says_when_nobody_has_it() {
    let t = TestApp::start().await;
    let out = t
        .cli(&[
            "mailbox",
            "details",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(
        out.stdout.contains("nobody has Send on Behalf"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("TRUSTEE"),
        "no empty table: {}",
        out.stdout
    );
    let out = t
        .cli(&[
            "mailbox",
            "details",
            "sales",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(out.stdout.contains("Send on Behalf:\n"), "{}", out.stdout);
    assert!(out.stdout.contains("carol@"), "{}", out.stdout);
    t.stop().await;
}

async fn api(t: &TestApp, body: Option<serde_json::Value>, path: &str) -> (u16, serde_json::Value) {
    let req = match body {
        Some(b) => t.http.post(t.url(path)).json(&b),
        None => t.http.get(t.url(path)),
    };
    let r = req.bearer_auth(&t.mcp_token).send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or_default())
}

fn remove(tool: &str, trustee: &str) -> serde_json::Value {
    serde_json::json!({"company": "contoso", "tool": tool, "mailbox": "support", "trustee": trustee})
}

/// An orphaned SID (dave, deleted, still holds Full Access on support) is removed through the
/// normal request: asked, approved, executed, verified against the emulator, and the inventory
/// follows. The SID is accepted only for a removal of a right it holds on that mailbox.
#[tokio::test]
async fn an_orphaned_sid_is_removed_through_the_normal_request() {
    use exogate_core::model::RequestId;
    use exogate_core::request::RequestState;
    let t = TestApp::start().await;
    let synced = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "tech"])
        .await;
    assert!(synced.success, "{synced:?}");
    let (s, v) = api(
        &t,
        None,
        "/api/v1/companies/contoso/mailboxes/support/full-access",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let sid = v["full_access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "orphan")
        .and_then(|e| e["trustee"].as_str())
        .expect("dave's orphaned SID")
        .to_owned();
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");

    // Not for a grant, nor for a right the SID does not hold there.
    for (tool, code) in [
        ("grant_full_access", "trustee_not_found"),
        ("remove_send_as", "trustee_not_found"),
    ] {
        let (s, e) = api(&t, Some(remove(tool, &sid)), "/api/v1/requests").await;
        assert_eq!(
            (s, e["error"]["code"].as_str().unwrap_or("?")),
            (404, code),
            "{tool}: {e}"
        );
    }
    // A SID that is not on the mailbox.
    let (s, e) = api(
        &t,
        Some(remove("remove_full_access", "S-1-5-21-1-2-3-4242")),
        "/api/v1/requests",
    )
    .await;
    assert_eq!(s, 404, "{e}");
    assert_eq!(e["error"]["code"], "trustee_not_found", "{e}");

    let (s, r) = api(
        &t,
        Some(remove("remove_full_access", &sid)),
        "/api/v1/requests",
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let id = RequestId::parse(r["id"].as_str().unwrap()).unwrap();
    assert!(
        t.apply_log().await.is_empty(),
        "nothing runs before approval"
    );
    t.approve("manager", id).await;
    let done = t
        .wait_terminal(id, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    assert!(done.results.iter().all(|r| r.verified), "{done:?}");
    let log = t.apply_log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["cmdlet"], "Remove-MailboxPermission", "{log:?}");
    // Exchange no longer lists it, and neither does the inventory.
    let (_, v) = api(
        &t,
        None,
        "/api/v1/companies/contoso/mailboxes/support/full-access",
    )
    .await;
    assert!(!v.to_string().contains(&sid), "{v}");
    let (_, v) = api(
        &t,
        None,
        "/api/v1/inventory/companies/contoso/mailboxes/support",
    )
    .await;
    assert!(!v.to_string().contains(&sid), "{v}");
    assert_eq!(
        v["companies"][0]["rows"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    t.stop().await;
}

/// Automapping is shown where exogate knows it: from its own executed Full Access grant; a
/// right granted outside exogate shows none.
#[tokio::test]
async fn mailbox_show_gives_automapping_where_exogate_granted_it() {
    use exogate_core::model::RequestId;
    use exogate_core::request::RequestState;
    let t = TestApp::start().await;
    let (s, r) = api(
        &t,
        Some(
            serde_json::json!({"company": "contoso", "tool": "grant_full_access",
            "mailbox": "support", "trustee": "bob", "automapping": false}),
        ),
        "/api/v1/requests",
    )
    .await;
    assert_eq!(s, 201, "{r}");
    let id = RequestId::parse(r["id"].as_str().unwrap()).unwrap();
    t.approve("manager", id).await;
    let done = t
        .wait_terminal(id, std::time::Duration::from_secs(30))
        .await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    let out = t
        .cli(&[
            "--json",
            "mailbox",
            "show",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let v = out.json();
    let bob = v["full_access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resolved"]["address"] == "bob@contoso.onmicrosoft.com")
        .unwrap_or_else(|| panic!("bob in {v}"))
        .clone();
    assert_eq!(bob["automapping"], false, "{bob}");
    let out = t
        .cli(&[
            "mailbox",
            "show",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("Full Access") && l.contains("bob@"))
        .unwrap()
        .to_owned();
    assert!(line.trim_end().ends_with("off"), "{line}");
    // alice's Full Access on sales was granted outside exogate: unknown.
    let out = t
        .cli(&[
            "--json",
            "mailbox",
            "show",
            "sales",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    let v = out.json();
    assert!(
        v["full_access"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.get("automapping").is_none()),
        "{v}"
    );
    t.stop().await;
}
