//! (cli-requests) Asking, deciding, reverting and cancelling from the CLI, through the built
//! binary against the demo world: a grant for two trustees as one request, approval only with the
//! approver's password (a wrong one refused and audited), the result line saying what was read
//! back, revert and cancel (not by someone else), request ids by unique prefix in the CLI, the API
//! and MCP, `EXOGATE_AS` as the default actor, and the misuse a technician could try.

use std::time::Duration;

use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::ops::requests::WriteInput;
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;
use serde_json::{Value, json};

use crate::support::{CliOutput, TestApp};

const SUPPORT: &str = "support@contoso.onmicrosoft.com";
const ALICE: &str = "alice@contoso.onmicrosoft.com";
const CAROL: &str = "carol@contoso.onmicrosoft.com";
const BOB: &str = "bob@contoso.onmicrosoft.com";

/// The error code of a failed `--json` run (and that it failed).
fn code(out: &CliOutput) -> String {
    assert!(!out.success, "expected a failure: {out:?}");
    out.json()["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code in {out:?}"))
        .to_owned()
}

async fn approve_with(t: &TestApp, id: &str, name: &str, password: &str) -> CliOutput {
    t.cli_with_stdin(
        &[
            "--json",
            "approvals",
            "approve",
            id,
            "--as",
            name,
            "--yes",
            "--password-stdin",
        ],
        &format!("{password}\n"),
    )
    .await
}

async fn state_of(t: &TestApp, id: RequestId) -> RequestState {
    t.app.store.get_request(id).await.unwrap().unwrap().state
}

async fn pending_count(t: &TestApp) -> usize {
    let list = t
        .cli(&[
            "--json",
            "approvals",
            "list",
            "--state",
            "pending",
            "--as",
            "admin",
        ])
        .await;
    list.json().as_array().unwrap().len()
}

#[tokio::test]
async fn ask_from_the_cli_approve_with_the_password_then_revert_and_cancel() {
    let t = TestApp::start().await;

    // Two trustees, one request; the company by its name.
    let asked = t
        .cli(&[
            "request",
            "grant-send-as",
            "--company",
            "Contoso",
            "--mailbox",
            SUPPORT,
            "--trustee",
            ALICE,
            "--trustee",
            CAROL,
            "--as",
            "tech",
        ])
        .await;
    assert!(asked.success, "{asked:?}");
    let id = asked
        .stdout
        .split_whitespace()
        .nth(1)
        .and_then(|w| RequestId::parse(w).ok())
        .unwrap_or_else(|| panic!("no request id in {}", asked.stdout));
    assert!(asked.stdout.contains("risk high"), "{}", asked.stdout);
    assert!(
        asked
            .stdout
            .contains(&format!("exogate approvals approve {id} --as MANAGER")),
        "{}",
        asked.stdout
    );
    let r = t.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(r.actions.len(), 2, "{r:?}");
    let trustees: Vec<&str> = r
        .actions
        .iter()
        .map(|a| a.trustee.primary_address.as_str())
        .collect();
    assert_eq!(trustees, [ALICE, CAROL]);
    // The digest covers both actions.
    assert_eq!(r.digest, exogate_core::action::digest_actions(&r.actions));
    for a in &r.actions {
        assert!(asked.stdout.contains(&a.summary()), "{}", asked.stdout);
    }

    // A wrong password decides nothing and is audited as a failed attempt on the cli channel.
    let prefix = &id.to_string()[..13];
    let wrong = approve_with(&t, prefix, "manager", "not-the-password").await;
    assert_eq!(code(&wrong), "login_failed", "{wrong:?}");
    assert_eq!(state_of(&t, id).await, RequestState::Pending);
    let audit = t.app.store.list_audit(0, 10_000).await.unwrap();
    let failed = audit
        .iter()
        .rfind(|e| e.event.kind == "auth.login_failed")
        .expect("the failed attempt is audited");
    assert_eq!(failed.event.actor_name.as_deref(), Some("manager"));
    assert_eq!(failed.event.channel, "cli");
    assert!(
        !audit
            .iter()
            .any(|e| e.event.detail.contains("not-the-password")),
        "the password is never audited"
    );

    // Without a terminal and without --yes, approve asks nothing and refuses.
    let unasked = t
        .cli_with_stdin(
            &[
                "--json",
                "approvals",
                "approve",
                prefix,
                "--as",
                "manager",
                "--password-stdin",
            ],
            &format!("{}\n", t.password("manager")),
        )
        .await;
    assert_eq!(code(&unasked), "not_confirmed", "{unasked:?}");
    assert!(unasked.stdout.contains("--yes"), "{unasked:?}");
    assert_eq!(state_of(&t, id).await, RequestState::Pending);

    // The right password approves, by id prefix; the decision is audited on the cli channel.
    let ok = approve_with(&t, prefix, "manager", &t.password("manager")).await;
    assert!(ok.success, "{ok:?}");
    assert_eq!(ok.json()["id"], id.to_string());
    let done = t.wait_terminal(id, Duration::from_secs(30)).await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    let log = t.apply_log().await;
    assert_eq!(log.len(), 2, "{log:?}");
    let audit = t.app.store.list_audit(0, 10_000).await.unwrap();
    let approved = audit
        .iter()
        .find(|e| e.event.kind == "request.approved" && e.event.request == Some(id.to_string()))
        .expect("approval audited");
    assert_eq!(approved.event.actor_name.as_deref(), Some("manager"));
    assert_eq!(approved.event.channel, "cli");

    // The result line says what the read-back found.
    let shown = t.cli(&["approvals", "show", prefix, "--as", "tech"]).await;
    assert!(shown.success, "{shown:?}");
    for who in [ALICE, CAROL] {
        assert!(
            shown
                .stdout
                .contains(&format!("verified now: {who} has Send As on {SUPPORT}")),
            "{}",
            shown.stdout
        );
    }

    // Revert: a new pending request with the inverse actions.
    let revert = t
        .cli(&["--json", "approvals", "revert", prefix, "--as", "tech"])
        .await;
    assert!(revert.success, "{revert:?}");
    let rv = revert.json();
    assert_eq!(rv["state"], "pending", "{rv}");
    let rid = RequestId::parse(rv["id"].as_str().unwrap()).unwrap();
    let reverse = t.app.store.get_request(rid).await.unwrap().unwrap();
    assert_eq!(reverse.revert_of, Some(id));
    assert_eq!(reverse.actions.len(), 2);
    assert!(
        reverse
            .actions
            .iter()
            .all(|a| a.operation.kind == exogate_core::action::OperationKind::Remove)
    );

    // Someone else (another technician) cannot cancel it; the requester can.
    let added = t
        .cli_with_stdin(
            &[
                "user",
                "add",
                "tina",
                "--role",
                "technician",
                "--password-stdin",
            ],
            "tina-password-123456\n",
        )
        .await;
    assert!(added.success, "{added:?}");
    let rid_s = rid.to_string();
    let foreign = t
        .cli(&["--json", "approvals", "cancel", &rid_s, "--as", "tina"])
        .await;
    assert_eq!(code(&foreign), "not_requester", "{foreign:?}");
    assert_eq!(state_of(&t, rid).await, RequestState::Pending);
    let cancelled = t
        .cli(&["approvals", "cancel", &rid_s, "--as", "tech"])
        .await;
    assert!(cancelled.success, "{cancelled:?}");
    assert!(cancelled.stdout.contains("cancelled"), "{cancelled:?}");
    assert_eq!(state_of(&t, rid).await, RequestState::Cancelled);

    // Asking for what is already so is refused in words, non-zero, and nothing is pending.
    let before = pending_count(&t).await;
    let same = t
        .cli(&[
            "request",
            "grant-send-as",
            "--company",
            "contoso",
            "--mailbox",
            SUPPORT,
            "--trustee",
            BOB,
            "--as",
            "tech",
        ])
        .await;
    assert!(!same.success, "{same:?}");
    assert!(
        same.stderr.contains("nothing to ask for") && same.stderr.contains("already has Send As"),
        "{same:?}"
    );
    let same_json = t
        .cli(&[
            "--json",
            "request",
            "grant-send-as",
            "--company",
            "contoso",
            "--mailbox",
            SUPPORT,
            "--trustee",
            ALICE,
            "--trustee",
            BOB,
            "--as",
            "tech",
        ])
        .await;
    assert_eq!(code(&same_json), "already_in_state", "{same_json:?}");
    assert_eq!(pending_count(&t).await, before);
    t.stop().await;
}

/// A pending Send As request on `mailbox` for `trustee`, with the given id.
async fn ask_with_id(t: &TestApp, id: &str, mailbox: &str, trustee: &str) -> RequestId {
    let tech = t.actor("tech").await;
    ops::requests::request_write(
        t.app.ctx(),
        &tech,
        WriteInput {
            id: RequestId::parse(id).unwrap(),
            company: CompanyId::parse("contoso").unwrap(),
            tool: ToolName::GrantSendAs,
            mailbox: IdentityInput::parse(mailbox).unwrap(),
            trustee: IdentityInput::parse(trustee).unwrap(),
            automapping: None,
        },
    )
    .await
    .expect("request")
    .id
}

async fn api(t: &TestApp, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(t.url(path))
        .bearer_auth(&t.mcp_token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn id_prefixes_default_actor_and_misuse() {
    let t = TestApp::start().await;
    let a1 = ask_with_id(&t, "0190aaaa-1111-7000-8000-000000000001", SUPPORT, ALICE).await;
    let _a2 = ask_with_id(&t, "0190aaaa-2222-7000-8000-000000000002", SUPPORT, CAROL).await;

    // CLI: unique prefix, ambiguous prefix, short prefix.
    let shown = t
        .cli(&[
            "--json",
            "approvals",
            "show",
            "0190aaaa-1",
            "--as",
            "manager",
        ])
        .await;
    assert!(shown.success, "{shown:?}");
    assert_eq!(shown.json()["id"], a1.to_string());
    let ambiguous = t
        .cli(&["--json", "approvals", "show", "0190aaaa", "--as", "manager"])
        .await;
    assert_eq!(code(&ambiguous), "ambiguous_request");
    let short = t
        .cli(&["--json", "approvals", "show", "0190aaa", "--as", "manager"])
        .await;
    assert_eq!(code(&short), "invalid_input");

    // API: the same three answers.
    let (s, v) = api(&t, "/api/v1/requests/0190aaaa-1").await;
    assert_eq!((s, v["id"].clone()), (200, json!(a1.to_string())), "{v}");
    let (s, v) = api(&t, "/api/v1/requests/0190aaaa").await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (409, json!("ambiguous_request"))
    );
    let (s, v) = api(&t, "/api/v1/requests/0190aaa").await;
    assert_eq!(
        (s, v["error"]["code"].clone()),
        (422, json!("invalid_input"))
    );

    // MCP get_approval_status: a prefix works, an ambiguous one is a tool error with its code.
    let c = crate::mcp_http::client(&t).await;
    let s = crate::mcp_http::ok(
        &crate::mcp_http::call(
            &c,
            "get_approval_status",
            json!({"request_id": "0190aaaa-1"}),
        )
        .await,
    );
    assert_eq!(s["state"], "pending", "{s}");
    let (meta, _) = crate::mcp_http::err(
        &crate::mcp_http::call(&c, "get_approval_status", json!({"request_id": "0190aaaa"})).await,
    );
    assert_eq!(meta["code"], "ambiguous_request");
    c.cancel().await.ok();

    // EXOGATE_AS names the person when --as is not given; without either, a clear error.
    let as_env = t
        .cli_with_env(
            &["--json", "approvals", "show", "0190aaaa-1"],
            "",
            &[("EXOGATE_AS", "viewer")],
        )
        .await;
    assert!(as_env.success, "{as_env:?}");
    let nobody = t.cli(&["--json", "approvals", "show", "0190aaaa-1"]).await;
    assert_eq!(code(&nobody), "invalid_input");
    assert!(nobody.stdout.contains("EXOGATE_AS"), "{nobody:?}");
    // The default actor still needs their password to decide.
    let decide = t
        .cli_with_env(
            &[
                "--json",
                "approvals",
                "approve",
                "0190aaaa-1",
                "--yes",
                "--password-stdin",
            ],
            "wrong\n",
            &[("EXOGATE_AS", "manager")],
        )
        .await;
    assert_eq!(code(&decide), "login_failed");
    assert_eq!(state_of(&t, a1).await, RequestState::Pending);

    // Misuse: someone entitled only to fabrikam, a viewer asking, another company's prefix.
    let added = t
        .cli_with_stdin(
            &[
                "user",
                "add",
                "fay",
                "--role",
                "technician",
                "--companies",
                "fabrikam",
                "--password-stdin",
            ],
            "fay-password-1234567\n",
        )
        .await;
    assert!(added.success, "{added:?}");
    let grant = |who: &'static str| {
        let t = &t;
        async move {
            t.cli(&[
                "--json",
                "request",
                "grant-full-access",
                "--company",
                "contoso",
                "--mailbox",
                SUPPORT,
                "--trustee",
                BOB,
                "--as",
                who,
            ])
            .await
        }
    };
    let before = pending_count(&t).await;
    let foreign = grant("fay").await;
    assert!(
        ["not_entitled", "company_not_found"].contains(&code(&foreign).as_str()),
        "{foreign:?}"
    );
    let viewer = grant("viewer").await;
    assert_eq!(code(&viewer), "role_too_low", "{viewer:?}");
    assert_eq!(pending_count(&t).await, before);
    for args in [
        &["--json", "approvals", "show", "0190aaaa-1", "--as", "fay"][..],
        &["--json", "approvals", "cancel", "0190aaaa-1", "--as", "fay"][..],
        &["--json", "approvals", "revert", "0190aaaa-1", "--as", "fay"][..],
    ] {
        let out = t.cli(args).await;
        assert_eq!(code(&out), "request_not_found", "{args:?}: {out:?}");
    }
    assert_eq!(state_of(&t, a1).await, RequestState::Pending);
    // A hostile id is invalid input, not a crash or a query.
    let hostile = t
        .cli(&[
            "--json",
            "approvals",
            "show",
            "0190aaaa%' OR 1=1 --",
            "--as",
            "manager",
        ])
        .await;
    assert_eq!(code(&hostile), "invalid_input");

    // `as = "viewer"` in the configuration file is the default too; EXOGATE_AS overrides it.
    let path = t.data_dir().join("exogate.toml");
    let config = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("as = \"viewer\"\n{config}")).unwrap();
    let from_file = t
        .cli(&["--json", "approvals", "revert", "0190aaaa-1"])
        .await;
    // A viewer may not ask for a revert: the command acted as the viewer.
    assert_eq!(code(&from_file), "role_too_low", "{from_file:?}");
    let overridden = t
        .cli_with_env(
            &["--json", "approvals", "revert", "0190aaaa-1"],
            "",
            &[("EXOGATE_AS", "tech")],
        )
        .await;
    // The technician may, but the request has not succeeded.
    assert_eq!(code(&overridden), "not_revertible", "{overridden:?}");
    t.stop().await;
}

#[tokio::test]
async fn offboard_all_companies_asks_once_per_company_with_something_to_remove() {
    let t = TestApp::start().await;
    let sync = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "tech"])
        .await;
    assert!(sync.success, "{sync:?}");
    let before = t.apply_log().await.len();
    let out = t
        .cli(&[
            "--json",
            "offboard",
            "--all-companies",
            "--user",
            ALICE,
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let v = out.json();
    let outcomes: Vec<(String, String)> = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["company"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Contoso has alice's rights swept: one request; the other connected companies were never
    // swept, which is said, not taken for "nothing".
    assert_eq!(
        outcomes[0],
        ("contoso".to_owned(), "requested".to_owned()),
        "{v}"
    );
    assert!(outcomes.len() > 1, "{v}");
    assert!(
        outcomes[1..]
            .iter()
            .all(|(_, o)| o == "no_inventory" || o == "not_ready"),
        "{v}"
    );
    let requests = v["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{v}");
    assert_eq!(requests[0]["tool"], "offboard_user");
    // alice: Full Access and Send As on sales.
    assert_eq!(requests[0]["actions"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(
        t.apply_log().await.len(),
        before,
        "nothing changes before approval"
    );

    // The text lists every company and the complete approve command.
    let text = t
        .cli(&[
            "offboard",
            "--all-companies",
            "--user",
            CAROL,
            "--as",
            "tech",
        ])
        .await;
    assert!(text.success, "{text:?}");
    for (company, _) in &outcomes {
        assert!(text.stdout.contains(company.as_str()), "{}", text.stdout);
    }
    assert!(
        text.stdout.contains("exogate approvals approve ") && text.stdout.contains("--as MANAGER"),
        "{}",
        text.stdout
    );
    // A viewer may not ask, in any company.
    let viewer = t
        .cli(&[
            "--json",
            "offboard",
            "--all-companies",
            "--user",
            BOB,
            "--as",
            "viewer",
        ])
        .await;
    assert_eq!(code(&viewer), "role_too_low", "{viewer:?}");
    t.stop().await;
}

#[tokio::test]
async fn a_ticket_reference_travels_with_the_request_but_not_in_its_digest() {
    let t = TestApp::start().await;
    // CLI --ticket: stored, in the JSON view, in `approvals list`, in the audit detail.
    let asked = t
        .cli(&[
            "--json",
            "request",
            "grant-send-as",
            "--company",
            "contoso",
            "--mailbox",
            SUPPORT,
            "--trustee",
            ALICE,
            "--ticket",
            "#4711",
            "--as",
            "tech",
        ])
        .await;
    assert!(asked.success, "{asked:?}");
    let v = asked.json();
    assert_eq!(v["ticket"], "#4711", "{v}");
    let id = RequestId::parse(v["id"].as_str().unwrap()).unwrap();
    let r = t.app.store.get_request(id).await.unwrap().unwrap();
    assert_eq!(r.ticket.as_deref(), Some("#4711"));
    // Not part of the digest: the digest is the actions' alone, and asking the same change
    // with another ticket is the same pending request.
    assert_eq!(r.digest, exogate_core::action::digest_actions(&r.actions));
    let again = t
        .cli(&[
            "--json",
            "request",
            "grant-send-as",
            "--company",
            "contoso",
            "--mailbox",
            SUPPORT,
            "--trustee",
            ALICE,
            "--ticket",
            "CW-99",
            "--as",
            "tech",
        ])
        .await;
    assert_eq!(again.json()["id"], id.to_string(), "{again:?}");
    let list = t.cli(&["approvals", "list", "--as", "manager"]).await;
    assert!(list.stdout.contains("ticket #4711"), "{}", list.stdout);
    let shown = t
        .cli(&["approvals", "show", &id.to_string(), "--as", "manager"])
        .await;
    assert!(shown.stdout.contains("ticket #4711"), "{}", shown.stdout);
    let audit = t.app.store.list_audit(0, 10_000).await.unwrap();
    let created = audit
        .iter()
        .find(|e| e.event.kind == "request.created" && e.event.request == Some(id.to_string()))
        .expect("creation audited");
    let detail: Value = serde_json::from_str(&created.event.detail).unwrap();
    assert_eq!(detail["ticket"], "#4711", "{detail}");

    // The API: `ticket` in the body and in the Request view.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let tech = crate::web::sign_in(&http, &t.base_url, "tech", &t.password("tech")).await;
    let (s, v) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": SUPPORT,
                   "trustee": CAROL, "ticket": "PSA-2026/17"}),
        )
        .await;
    assert_eq!(s.as_u16(), 201, "{v}");
    assert_eq!(v["ticket"], "PSA-2026/17", "{v}");
    let api_id = v["id"].as_str().unwrap().to_owned();
    let (s, v) = api(&t, &format!("/api/v1/requests/{api_id}")).await;
    assert_eq!((s, v["ticket"].clone()), (200, json!("PSA-2026/17")));

    // The page: the approval card shows it.
    let manager = crate::web::sign_in(&http, &t.base_url, "manager", &t.password("manager")).await;
    let (s, page) = manager.get(&format!("/requests/{id}")).await;
    assert_eq!(s.as_u16(), 200);
    assert!(
        page.contains(&format!("id=\"ticket-{id}\">#4711<")),
        "{page}"
    );
    let (_, approvals) = manager.get("/approvals").await;
    assert!(approvals.contains("PSA-2026/17"), "{approvals}");

    // MCP write tools take it too.
    let c = crate::mcp_http::client(&t).await;
    let out = crate::mcp_http::ok(
        &crate::mcp_http::call(
            &c,
            "grant_full_access",
            json!({"company": "contoso", "mailbox": SUPPORT, "trustee": BOB, "ticket": "#1"}),
        )
        .await,
    );
    let mcp_id = RequestId::parse(out["request_id"].as_str().unwrap()).unwrap();
    let r = t.app.store.get_request(mcp_id).await.unwrap().unwrap();
    assert_eq!(r.ticket.as_deref(), Some("#1"));

    // Hostile or over-long tickets are invalid input everywhere; nothing is stored.
    let before = pending_count(&t).await;
    for bad in ["<script>x</script>", "a\u{202e}b", &"9".repeat(65)] {
        let out = t
            .cli(&[
                "--json",
                "request",
                "grant-send-as",
                "--company",
                "contoso",
                "--mailbox",
                SUPPORT,
                "--trustee",
                BOB,
                "--ticket",
                bad,
                "--as",
                "manager",
            ])
            .await;
        assert_eq!(code(&out), "invalid_input", "{bad:?}: {out:?}");
        let (s, v) = tech
            .api_post(
                "/api/v1/requests",
                json!({"company": "contoso", "tool": "grant_full_access", "mailbox": SUPPORT,
                       "trustee": CAROL, "ticket": bad}),
            )
            .await;
        assert_eq!(
            (s.as_u16(), v["error"]["code"].clone()),
            (422, json!("invalid_input"))
        );
        let (meta, _) = crate::mcp_http::err(
            &crate::mcp_http::call(
                &c,
                "grant_full_access",
                json!({"company": "contoso", "mailbox": SUPPORT, "trustee": CAROL, "ticket": bad}),
            )
            .await,
        );
        assert_eq!(meta["code"], "invalid_input", "{bad:?}");
    }
    assert_eq!(pending_count(&t).await, before);
    c.cancel().await.ok();
    t.stop().await;
}
