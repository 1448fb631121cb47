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
