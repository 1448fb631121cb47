//! The CLI through the real binary against a running app: reads and decisions act for the person
//! named with `--as` (and the audit log says so), `--json` is machine-readable everywhere, and
//! every failure is a clear message with a stable code and a non-zero exit.

use std::time::Duration;

use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::ops::requests::WriteInput;
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;
use serde_json::Value;

use crate::support::TestApp;

async fn pending_send_as(t: &TestApp) -> RequestId {
    let tech = t.actor("tech").await;
    let request = ops::requests::request_write(
        t.app.ctx(),
        &tech,
        WriteInput {
            id: RequestId::from_uuid(uuid::Uuid::now_v7()),
            company: CompanyId::parse("contoso").unwrap(),
            tool: ToolName::GrantSendAs,
            mailbox: IdentityInput::parse("support@contoso.onmicrosoft.com").unwrap(),
            trustee: IdentityInput::parse("carol@contoso.onmicrosoft.com").unwrap(),
            automapping: None,
        },
    )
    .await
    .expect("request");
    request.id
}

#[tokio::test]
async fn approvals_act_for_the_named_person_and_are_audited() {
    let t = TestApp::start().await;
    let id = pending_send_as(&t).await;

    let list = t
        .cli(&[
            "--json",
            "approvals",
            "list",
            "--state",
            "pending",
            "--as",
            "manager",
        ])
        .await;
    assert!(list.success, "{list:?}");
    let items = list.json();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["id"], id.to_string());
    assert_eq!(items[0]["requester"], "tech");
    assert_eq!(items[0]["risk"], "high");

    // A technician cannot approve a High-risk request: refused with a stable code.
    let denied = t
        .cli_with_stdin(
            &[
                "--json",
                "approvals",
                "approve",
                &id.to_string(),
                "--as",
                "tech",
                "--yes",
                "--password-stdin",
            ],
            &format!("{}\n", t.password("tech")),
        )
        .await;
    assert!(!denied.success);
    assert_eq!(denied.json()["error"]["code"], "role_too_low", "{denied:?}");

    let approved = t
        .cli_with_stdin(
            &[
                "approvals",
                "approve",
                &id.to_string(),
                "--as",
                "manager",
                "--reason",
                "ticket 42",
                "--yes",
                "--password-stdin",
            ],
            &format!("{}\n", t.password("manager")),
        )
        .await;
    assert!(approved.success, "{approved:?}");
    let done = t.wait_terminal(id, Duration::from_secs(30)).await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    let log = t.apply_log().await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["cmdlet"], "Add-RecipientPermission");

    let shown = t
        .cli(&[
            "--json",
            "approvals",
            "show",
            &id.to_string(),
            "--as",
            "manager",
        ])
        .await;
    let shown = shown.json();
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(shown["decided_by"], "manager");
    assert_eq!(shown["decision"], "approved");
    assert_eq!(shown["results"][0]["after"], "present");
    assert_eq!(shown["results"][0]["verified"], true);

    let audit = t
        .cli(&[
            "--json",
            "audit",
            "list",
            "--company",
            "contoso",
            "--as",
            "manager",
        ])
        .await
        .json();
    let decided = audit
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["request"] == id.to_string() && e["kind"].as_str().unwrap().contains("approved")
        })
        .unwrap_or_else(|| panic!("no approval event in {audit}"));
    assert_eq!(decided["actor"], "manager");
    assert_eq!(decided["channel"], "cli");
    t.stop().await;
}

#[tokio::test]
async fn reads_and_company_commands_work_as_json_and_text() {
    let t = TestApp::start().await;
    let companies = t
        .cli(&["--json", "company", "list", "--as", "tech"])
        .await
        .json();
    let states: Vec<(String, String)> = companies
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_owned(),
                c["status"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("contoso".to_owned(), "configured".to_owned()),
            ("fabrikam".to_owned(), "role_missing".to_owned()),
            ("northwind".to_owned(), "not_configured".to_owned()),
            ("tailspin".to_owned(), "tenant_not_found".to_owned()),
        ]
    );
    let perms = t
        .cli(&[
            "mailbox",
            "permissions",
            "sales@contoso.onmicrosoft.com",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    assert!(perms.success, "{perms:?}");
    assert!(
        perms.stdout.contains("alice@contoso.onmicrosoft.com"),
        "{}",
        perms.stdout
    );
    let details = t
        .cli(&[
            "--json",
            "mailbox",
            "details",
            "sales@contoso.onmicrosoft.com",
            "--company",
            "contoso",
            "--as",
            "tech",
        ])
        .await;
    let details = details.json();
    let delegates = details["send_on_behalf"].as_array().unwrap();
    assert!(!delegates.is_empty(), "{details}");
    // Exchange reports this delegate by object id; the CLI shows who it is.
    assert!(
        delegates
            .iter()
            .all(|d| d["resolved"]["address"].is_string()),
        "{details}"
    );
    let check = t
        .cli(&["--json", "company", "check", "contoso", "--as", "tech"])
        .await
        .json();
    assert_eq!(check["status"]["state"], "configured");
    let url = t
        .cli(&[
            "--json",
            "company",
            "connect-url",
            "northwind",
            "--as",
            "tech",
        ])
        .await
        .json();
    let url = url["url"].as_str().unwrap();
    assert!(url.starts_with(&t.emulator.base_url), "{url}");
    assert!(url.contains("/adminconsent?"), "{url}");
    t.stop().await;
}

#[tokio::test]
async fn failures_have_clear_messages_and_stable_codes() {
    let t = TestApp::start().await;
    let cases: [(&[&str], &str); 6] = [
        (
            &["company", "show", "nope", "--as", "tech"],
            "company_not_found",
        ),
        (
            // Not an id, and no company has that name.
            &["company", "show", "Not A Slug", "--as", "tech"],
            "company_not_found",
        ),
        (
            &[
                "mailbox",
                "permissions",
                "*@contoso.onmicrosoft.com",
                "--company",
                "contoso",
                "--as",
                "tech",
            ],
            "invalid_input",
        ),
        (
            &[
                "mailbox",
                "permissions",
                "nobody@contoso.onmicrosoft.com",
                "--company",
                "contoso",
                "--as",
                "tech",
            ],
            "mailbox_not_found",
        ),
        (&["company", "list", "--as", "ghost"], "user_not_found"),
        (
            &[
                "approvals",
                "show",
                "0190b2f4-0000-7000-8000-000000000000",
                "--as",
                "tech",
            ],
            "request_not_found",
        ),
    ];
    for (args, code) in cases {
        let text = t.cli(args).await;
        assert!(!text.success, "{args:?} succeeded: {text:?}");
        assert!(
            text.stderr.contains(&format!("[{code}]")),
            "{args:?}: {}",
            text.stderr
        );
        assert!(
            !text.stderr.contains("panicked"),
            "{args:?}: {}",
            text.stderr
        );
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let json = t.cli(&with_json).await;
        assert_eq!(json.json()["error"]["code"], code, "{args:?}");
    }
    // Configuration problems name the setting.
    let bad = t.data_dir().join("bad.toml");
    std::fs::write(&bad, "[server]\nlisten = \"nowhere\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
        .args(["--config", bad.to_str().unwrap(), "config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[config_invalid]") && stderr.contains("server.listen"),
        "{stderr}"
    );
    t.stop().await;
}

#[tokio::test]
async fn users_and_tokens_round_trip_and_secrets_show_once() {
    let t = TestApp::start().await;
    let added = t
        .cli_with_stdin(
            &[
                "--json",
                "user",
                "add",
                "carl",
                "--role",
                "technician",
                "--companies",
                "contoso",
                "--password-stdin",
            ],
            "a-long-enough-password\n",
        )
        .await;
    assert!(added.success, "{added:?}");
    assert_eq!(added.json()["entitlement"], "contoso");
    let token = t
        .cli(&[
            "--json",
            "token",
            "create",
            "--user",
            "carl",
            "--name",
            "carl's agent",
        ])
        .await
        .json();
    let secret = token["secret"].as_str().unwrap().to_owned();
    let id = token["id"].as_str().unwrap().to_owned();
    let listed = t.cli(&["--json", "token", "list", "--user", "carl"]).await;
    assert!(listed.success);
    assert!(!listed.stdout.contains(&secret), "secrets are never listed");
    assert!(t.cli(&["token", "revoke", &id]).await.success);
    let revoked = t
        .cli(&["--json", "token", "list", "--user", "carl"])
        .await
        .json();
    assert!(revoked[0]["revoked_at"].is_string(), "{revoked}");
    assert!(t.cli(&["user", "disable", "carl"]).await.success);
    let users = t.cli(&["--json", "user", "list"]).await.json();
    let carl = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "carl")
        .unwrap();
    assert_eq!(carl["disabled"], true);
    // Nothing secret reaches the audit log.
    let audit = t
        .cli(&[
            "--json", "audit", "list", "--as", "admin", "--limit", "1000",
        ])
        .await;
    assert!(!audit.stdout.contains(&secret));
    assert!(!audit.stdout.contains("a-long-enough-password"));
    t.stop().await;
}

#[tokio::test]
async fn audit_verify_detects_a_row_edited_in_the_database() {
    let t = TestApp::start().await;
    let ok = t.cli(&["--json", "audit", "verify"]).await;
    assert!(ok.success, "{ok:?}");
    assert_eq!(ok.json()["intact"], true);
    let db = t.data_dir().join("exogate.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let changed = sqlx::query("UPDATE audit_log SET detail = '{\"edited\":true}' WHERE seq = 3")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;
    let broken = t.cli(&["--json", "audit", "verify"]).await;
    assert!(!broken.success, "{broken:?}");
    assert!(
        broken.stderr.contains("[audit_chain_broken]"),
        "{}",
        broken.stderr
    );
    assert!(
        broken.stdout.contains("\"first_bad_seq\":3"),
        "{}",
        broken.stdout
    );
    t.stop().await;
}

/// `value` with what changes from run to run (ids, times, digests, hashes, ages) written as
/// `[id]`, `[time]`, … so a snapshot shows the shape and the stable values.
fn stable(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let fixed = match k.as_str() {
                        "id" | "request" | "owner" | "revert_of"
                            if v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()) =>
                        {
                            Some("[id]")
                        }
                        "tenant" | "tenant_id" if v.is_string() => Some("[tenant]"),
                        "digest" | "hash" if v.is_string() => Some("[hash]"),
                        "age" => Some("[age]"),
                        "seq" => Some("[seq]"),
                        // The detail as text repeats the detail (with its digest and times).
                        "detail_text" => Some("[detail]"),
                        k if (k.ends_with("_at") || k == "at" || k == "as_of") && !v.is_null() => {
                            Some("[time]")
                        }
                        k if k.ends_with("_ms") && v.is_number() => Some("[ms]"),
                        _ => None,
                    };
                    let v = fixed.map_or_else(|| stable(v), |f| Value::String(f.to_owned()));
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(stable).collect()),
        other => other.clone(),
    }
}

/// The JSON API's answer to `path` for the demo's `tech` token.
async fn api_get(t: &TestApp, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(t.url(path))
        .bearer_auth(&t.mcp_token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

/// `--json` prints the JSON API's shapes, value for value (the CLI's permission entries had no
/// `inherited` or `deny`, its company no `status`, its request another layout); the snapshots
/// show the shapes a `--json` consumer reads.
#[tokio::test]
async fn json_output_has_the_api_shapes() {
    let t = TestApp::start().await;
    let cli = |args: &'static [&'static str]| {
        let t = &t;
        async move {
            let out = t.cli(args).await;
            assert!(out.success, "{args:?}: {out:?}");
            out.json()
        }
    };
    // `exogate --json mailbox CMD MAILBOX` answers what `GET …/mailboxes/MAILBOX/ROUTE` does.
    let read = |cmd: &'static str, mailbox: &'static str, route: &'static str| {
        let t = &t;
        async move {
            let args = [
                "--json",
                "mailbox",
                cmd,
                mailbox,
                "--company",
                "contoso",
                "--as",
                "tech",
            ];
            let out = t.cli(&args).await;
            assert!(out.success, "{args:?}: {out:?}");
            let path = format!("/api/v1/companies/contoso/mailboxes/{mailbox}/{route}");
            assert_eq!(out.json(), api_get(t, &path).await, "{args:?}");
            out.json()
        }
    };
    let full_access = read(
        "permissions",
        "sales@contoso.onmicrosoft.com",
        "full-access",
    )
    .await;
    let entry = &full_access["full_access"][0];
    assert!(
        entry["inherited"].is_boolean() && entry["deny"].is_boolean(),
        "{full_access}"
    );
    insta::assert_json_snapshot!("cli_json_full_access", stable(&full_access));
    read("send-as", "support@contoso.onmicrosoft.com", "send-as").await;
    let details = read("details", "sales@contoso.onmicrosoft.com", "details").await;
    insta::assert_json_snapshot!("cli_json_mailbox_details", stable(&details));

    let company = cli(&["--json", "company", "show", "contoso", "--as", "tech"]).await;
    assert_eq!(company, api_get(&t, "/api/v1/companies/contoso").await);
    let companies = cli(&["--json", "company", "list", "--as", "tech"]).await;
    assert_eq!(
        companies,
        api_get(&t, "/api/v1/companies").await["companies"]
    );
    insta::assert_json_snapshot!("cli_json_companies", stable(&companies));

    let id = pending_send_as(&t).await.to_string();
    let show = t
        .cli(&["--json", "approvals", "show", &id, "--as", "manager"])
        .await
        .json();
    insta::assert_json_snapshot!("cli_json_request", stable(&show));
    let audit = t
        .cli(&[
            "--json",
            "audit",
            "list",
            "--request",
            &id,
            "--as",
            "manager",
        ])
        .await
        .json();
    insta::assert_json_snapshot!("cli_json_audit", stable(&audit));

    let synced = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "admin"])
        .await;
    assert!(synced.success, "{synced:?}");
    let inventory = cli(&["--json", "inventory", "user", "alice", "--as", "tech"]).await;
    insta::assert_json_snapshot!("cli_json_inventory_user", stable(&inventory));

    let users = cli(&["--json", "user", "list"]).await;
    insta::assert_json_snapshot!("cli_json_users", stable(&users));
    t.stop().await;
}

#[tokio::test]
async fn audit_verify_as_a_person_needs_a_manager() {
    let t = TestApp::start().await;
    let tech = t.cli(&["--json", "audit", "verify", "--as", "tech"]).await;
    assert!(!tech.success, "{tech:?}");
    assert!(tech.stderr.contains("[role_too_low]"), "{}", tech.stderr);
    assert!(!tech.stdout.contains("intact"), "{}", tech.stdout);
    let manager = t
        .cli(&["--json", "audit", "verify", "--as", "manager"])
        .await;
    assert!(manager.success, "{manager:?}");
    assert_eq!(manager.json()["intact"], true);
    t.stop().await;
}

/// `user add` without `--companies`, or with `all`, entitles every company (it used to entitle
/// a company named "all", so the new user saw nothing).
#[tokio::test]
async fn user_add_with_all_companies_sees_every_company() {
    let t = TestApp::start().await;
    for (name, args) in [
        ("dora", &[][..]),
        ("eve", &["--companies", "ALL"][..]),
        ("finn", &["--companies", "*"][..]),
    ] {
        let mut cmd = vec!["--json", "user", "add", name, "--role", "technician"];
        cmd.extend_from_slice(args);
        let added = t.cli(&cmd).await;
        assert!(added.success, "{added:?}");
        assert_eq!(added.json()["entitlement"], "*", "{name}");
        let listed = t
            .cli(&["--json", "company", "list", "--as", name])
            .await
            .json();
        assert_eq!(listed.as_array().map(Vec::len), Some(4), "{name}: {listed}");
    }
    // A list of ids still entitles just those.
    let added = t
        .cli(&[
            "--json",
            "user",
            "add",
            "gus",
            "--role",
            "viewer",
            "--companies",
            "contoso",
        ])
        .await;
    assert_eq!(added.json()["entitlement"], "contoso");
    t.stop().await;
}

/// `approvals list` says how old each request is and when a pending one expires, and filters by
/// company (id or name).
#[tokio::test]
async fn approvals_list_shows_age_and_expiry_and_filters_by_company() {
    let t = TestApp::start().await;
    let id = pending_send_as(&t).await.to_string();
    let all = t.cli(&["approvals", "list", "--as", "manager"]).await;
    assert!(all.success, "{all:?}");
    let line = all
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{}", all.stdout));
    assert!(
        line.contains("pending") && line.contains("contoso") && line.contains("asked just now"),
        "{line}"
    );
    assert!(line.contains(", expires in "), "{line}");
    let contoso = t
        .cli(&[
            "approvals",
            "list",
            "--company",
            "Contoso",
            "--as",
            "manager",
        ])
        .await;
    assert!(contoso.stdout.contains(&id), "{contoso:?}");
    let fabrikam = t
        .cli(&[
            "approvals",
            "list",
            "--company",
            "fabrikam",
            "--as",
            "manager",
        ])
        .await;
    assert!(fabrikam.success, "{fabrikam:?}");
    assert_eq!(fabrikam.stdout.trim(), "no requests");
    let json = t
        .cli(&[
            "--json",
            "approvals",
            "list",
            "--company",
            "No Such Co",
            "--as",
            "manager",
        ])
        .await;
    assert!(!json.success);
    assert_eq!(json.json()["error"]["code"], "company_not_found");
    t.stop().await;
}
