//! "Who can open X" and "what can Y open" never answer wrongly with success: identities resolve
//! from the inventory's own directory (alias, address, object id, display name, orphan SID), an
//! unknown mailbox or user is `mailbox_not_found` / `user_not_found` (404, non-zero exit), a
//! company never swept is `not_swept_yet` (409), never "nobody" or "nothing". Through the built
//! binary (as `cli.rs` runs it) and the JSON API against the demo world.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{CliOutput, TestApp};

const SUPPORT: &str = "support@contoso.onmicrosoft.com";

async fn api_get(t: &TestApp, path: &str) -> (StatusCode, Value, String) {
    let r = t
        .http
        .get(t.url(path))
        .header("authorization", format!("Bearer {}", t.mcp_token))
        .send()
        .await
        .expect("get");
    let s = r.status();
    let text = r.text().await.unwrap_or_default();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

/// `--json` CLI run as `who`: its exit status and its JSON.
async fn cli_json(t: &TestApp, who: &str, args: &[&str]) -> (CliOutput, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", who]);
    let out = t.cli(&all).await;
    let v = out.json();
    (out, v)
}

async fn sync_contoso(t: &TestApp) {
    let out = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "tech"])
        .await;
    assert!(out.success, "{out:?}");
}

/// `(mailbox address, right, trustee class)` of each row of a company part, sorted.
fn rights(part: &Value) -> Vec<String> {
    let mut v: Vec<String> = part["rows"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["mailbox"]["address"].as_str().unwrap_or("?"),
                r["right"].as_str().unwrap_or("?"),
                r["trustee"]["class"].as_str().unwrap_or("?")
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_company_never_swept_is_unknown_not_nobody() {
    let t = TestApp::start().await;
    // CLI: non-zero exit, a stable code, "unknown: not swept yet" (it said "nobody", exit 0).
    let out = t
        .cli(&[
            "inventory",
            "mailbox",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert!(out.stderr.contains("[not_swept_yet]"), "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown: Contoso is not swept yet"),
        "{}",
        out.stderr
    );
    assert!(!out.stdout.contains("nobody"), "{}", out.stdout);
    // `inventory user` with and without --company: no company was swept, so unknown.
    for args in [
        &["inventory", "user", "bob"][..],
        &["inventory", "user", "bob", "--company", "Contoso"][..],
    ] {
        let (out, v) = cli_json(&t, "tech", args).await;
        assert!(!out.success, "{args:?}: {out:?}");
        assert_eq!(v["error"]["code"], "not_swept_yet", "{args:?}: {v}");
    }
    // API: 409 not_swept_yet (it answered 200 with `"rows": []`).
    let (s, v, _) = api_get(&t, "/api/v1/inventory/companies/contoso/mailboxes/support").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "not_swept_yet", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exogate inventory sync --company contoso"),
        "{v}"
    );
    let (s, v, _) = api_get(&t, "/api/v1/inventory/users/bob").await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["error"]["code"], "not_swept_yet", "{v}");
    t.stop().await;
}

#[tokio::test]
async fn mailboxes_resolve_by_alias_address_object_id_and_display_name() {
    let t = TestApp::start().await;
    sync_contoso(&t).await;
    // The alias: support's three rights (Sales Team's Full Access, dave's orphaned Full
    // Access, bob's Send As). It said "nobody".
    let (out, v) = cli_json(
        &t,
        "tech",
        &["inventory", "mailbox", "support", "--company", "contoso"],
    )
    .await;
    assert!(out.success, "{out:?}");
    let want = [
        format!("{SUPPORT} full_access group"),
        format!("{SUPPORT} full_access orphan"),
        format!("{SUPPORT} send_as user"),
    ];
    assert_eq!(rights(&v["company"]), want, "{v}");
    let object_id = v["company"]["rows"][0]["mailbox"]["object_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The address in another case, the object id, the display name: the same three.
    for name in ["SUPPORT@contoso.onmicrosoft.com", &object_id, "Support"] {
        let (out, v) = cli_json(
            &t,
            "tech",
            &["inventory", "mailbox", name, "--company", "Contoso"],
        )
        .await;
        assert!(out.success, "{name}: {out:?}");
        assert_eq!(rights(&v["company"]), want, "{name}: {v}");
    }
    // The text form lists them too.
    let out = t
        .cli(&[
            "inventory",
            "mailbox",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(!out.stdout.contains("nobody"), "{}", out.stdout);
    assert!(out.stdout.contains("salesteam@"), "{}", out.stdout);
    // The API by alias.
    let (s, v, _) = api_get(&t, "/api/v1/inventory/companies/contoso/mailboxes/support").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(rights(&v["companies"][0]), want, "{v}");
    // A mailbox without delegation is "nobody", truthfully: bob's own mailbox.
    let out = t
        .cli(&[
            "inventory",
            "mailbox",
            "bob",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(out.stdout.contains("nobody"), "{}", out.stdout);
    t.stop().await;
}

#[tokio::test]
async fn an_unknown_mailbox_or_user_is_not_found_in_a_persons_words() {
    let t = TestApp::start().await;
    sync_contoso(&t).await;
    // A typo'd mailbox: non-zero exit, mailbox_not_found, worded for a person.
    let out = t
        .cli(&[
            "inventory",
            "mailbox",
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
    let (s, v, _) = api_get(&t, "/api/v1/inventory/companies/contoso/mailboxes/suport").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "mailbox_not_found", "{v}");
    assert_eq!(
        v["error"]["message"], "mailbox 'suport' not found in Contoso",
        "{v}"
    );
    // A typo'd user, in one company and across all: user_not_found (it said "nothing").
    let out = t
        .cli(&[
            "inventory",
            "user",
            "carl",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert!(
        out.stderr.contains("[user_not_found]")
            && out.stderr.contains("'carl' not found in Contoso"),
        "{}",
        out.stderr
    );
    let (out, v) = cli_json(&t, "tech", &["inventory", "user", "carl"]).await;
    assert!(!out.success, "{out:?}");
    assert_eq!(v["error"]["code"], "user_not_found", "{v}");
    // Fabrikam was never swept (its sweep failed): the answer says it is unknown there.
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("unknown in Fabrikam"), "{msg}");
    let (s, v, _) = api_get(&t, "/api/v1/inventory/users/carl?company=contoso").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "user_not_found", "{v}");
    let (s, v, _) = api_get(&t, "/api/v1/inventory/users/carl").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "user_not_found", "{v}");
    t.stop().await;
}

#[tokio::test]
async fn inventory_user_takes_company_and_its_csv_names_the_search_and_the_way() {
    let t = TestApp::start().await;
    sync_contoso(&t).await;
    // carol: Send on Behalf on sales directly, Full Access on support through Sales Team.
    let out = t
        .cli(&[
            "inventory",
            "user",
            "carol",
            "--company",
            "Contoso",
            "--csv",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let mut lines = out.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (via, searched, right, mailbox) = (
        col("via"),
        col("searched_for"),
        col("right"),
        col("mailbox_address"),
    );
    let mut rows: Vec<(String, String, String)> = lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{l}");
            assert_eq!(cells[searched], "carol", "{l}");
            (
                cells[mailbox].to_owned(),
                cells[right].to_owned(),
                cells[via].to_owned(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            (
                "sales@contoso.onmicrosoft.com".to_owned(),
                "send_on_behalf".to_owned(),
                "direct".to_owned()
            ),
            (
                SUPPORT.to_owned(),
                "full_access".to_owned(),
                "salesteam@contoso.onmicrosoft.com".to_owned()
            ),
        ],
        "{}",
        out.stdout
    );
    // --company restricts to that company; by display name too.
    let (out, v) = cli_json(
        &t,
        "tech",
        &["inventory", "user", "Bob Berg", "--company", "contoso"],
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(v["companies"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        rights(&v["companies"][0]),
        [format!("{SUPPORT} send_as user")],
        "{v}"
    );
    // An orphaned SID is found by its SID.
    let (_, v) = cli_json(
        &t,
        "tech",
        &["inventory", "mailbox", "support", "--company", "contoso"],
    )
    .await;
    let sid = v["company"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["trustee"]["class"] == "orphan")
        .and_then(|r| r["trustee"]["raw"].as_str())
        .unwrap()
        .to_owned();
    assert!(sid.starts_with("S-1-5-21-"), "{sid}");
    let (out, v) = cli_json(
        &t,
        "tech",
        &["inventory", "user", &sid, "--company", "contoso"],
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(
        rights(&v["companies"][0]),
        [format!("{SUPPORT} full_access orphan")],
        "{v}"
    );
    // The API's CSV names the search and the way too.
    let (s, _, text) = api_get(
        &t,
        "/api/v1/inventory/users/carol?company=contoso&format=csv",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    assert!(
        text.lines().next().unwrap().ends_with(",via,searched_for"),
        "{text}"
    );
    assert!(
        text.contains(",salesteam@contoso.onmicrosoft.com,carol"),
        "{text}"
    );
    t.stop().await;
}

/// Misuse: names resolve only within companies the caller may see, and hostile identities are
/// refused as input (422 / invalid_input), never a 500.
#[tokio::test]
async fn names_resolve_only_in_entitled_companies_and_hostile_identities_are_invalid() {
    let t = TestApp::start().await;
    sync_contoso(&t).await;
    let added = t
        .cli_with_stdin(
            &[
                "user",
                "add",
                "fab-tech",
                "--role",
                "technician",
                "--companies",
                "fabrikam",
                "--password-stdin",
            ],
            "a-long-enough-password\n",
        )
        .await;
    assert!(added.success, "{added:?}");
    // Contoso's support, asked by a technician of Fabrikam only: refused, nothing shown.
    let (out, v) = cli_json(
        &t,
        "fab-tech",
        &["inventory", "mailbox", "support", "--company", "contoso"],
    )
    .await;
    assert!(!out.success, "{out:?}");
    assert_eq!(v["error"]["code"], "not_entitled", "{v}");
    let (out, v) = cli_json(
        &t,
        "fab-tech",
        &["inventory", "mailbox", "support", "--company", "Contoso"],
    )
    .await;
    assert!(!out.success, "{out:?}");
    assert_eq!(v["error"]["code"], "company_not_found", "{v}");
    // bob is known in Contoso only; fab-tech sees Fabrikam (never swept): unknown, not bob's
    // rights in Contoso.
    let (out, v) = cli_json(&t, "fab-tech", &["inventory", "user", "bob"]).await;
    assert!(!out.success, "{out:?}");
    assert_eq!(v["error"]["code"], "not_swept_yet", "{v}");
    assert!(!v.to_string().contains("contoso.onmicrosoft.com"), "{v}");

    // Hostile identities: control characters, very long.
    let long = "a".repeat(5000);
    for bad in ["sup\u{7}port", "sup\u{202e}port", long.as_str()] {
        let (out, v) = cli_json(
            &t,
            "tech",
            &["inventory", "mailbox", bad, "--company", "contoso"],
        )
        .await;
        assert!(!out.success, "{out:?}");
        assert_eq!(v["error"]["code"], "invalid_input", "{v}");
        let (out, v) = cli_json(&t, "tech", &["inventory", "user", bad]).await;
        assert!(!out.success, "{out:?}");
        assert_eq!(v["error"]["code"], "invalid_input", "{v}");
    }
    for path in [
        "/api/v1/inventory/companies/contoso/mailboxes/sup%07port".to_owned(),
        format!("/api/v1/inventory/companies/contoso/mailboxes/{long}"),
        "/api/v1/inventory/users/bob%00".to_owned(),
        format!("/api/v1/inventory/users/{long}"),
    ] {
        let (s, v, _) = api_get(&t, &path).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{}: {v}", &path[..60]);
        assert_eq!(v["error"]["code"], "invalid_input", "{v}");
    }
    t.stop().await;
}

/// A mailbox and a user are found by a proxy address (a secondary SMTP address the sweep read
/// from Exchange's `EmailAddresses`).
#[tokio::test]
async fn proxy_addresses_resolve_mailboxes_and_users() {
    const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
    let t = TestApp::start().await;
    let resp = t
        .http
        .post(t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/objects")))
        .json(
            &serde_json::json!({"type": "shared_mailbox", "name": "helpdesk", "alias": "helpdesk",
            "display_name": "Helpdesk", "email_addresses": ["it@old.contoso.com"]}),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let resp = t
        .http
        .post(t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/objects")))
        .json(
            &serde_json::json!({"type": "user_mailbox", "name": "erin", "alias": "erin",
            "display_name": "Erin Ek", "upn": "erin@contoso.onmicrosoft.com",
            "email_addresses": ["erin.ek@old.contoso.com"]}),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    let resp = t
        .http
        .post(t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/grants")))
        .json(&serde_json::json!({"mailbox": "helpdesk", "trustee": "erin", "right": "FullAccess"}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
    sync_contoso(&t).await;
    let (out, v) = cli_json(
        &t,
        "tech",
        &[
            "inventory",
            "mailbox",
            "IT@old.contoso.com",
            "--company",
            "contoso",
        ],
    )
    .await;
    assert!(out.success, "{out:?}");
    let rows = v["company"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(
        rows[0]["trustee"]["address"], "erin@contoso.onmicrosoft.com",
        "{v}"
    );
    let (out, v) = cli_json(
        &t,
        "tech",
        &[
            "inventory",
            "user",
            "erin.ek@old.contoso.com",
            "--company",
            "contoso",
        ],
    )
    .await;
    assert!(out.success, "{out:?}");
    assert_eq!(v["companies"][0]["rows"][0]["right"], "full_access", "{v}");
    t.stop().await;
}
