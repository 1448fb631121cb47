//! Attacks: four_eyes. The separate-approver rule can be turned on (admins only, in person, on
//! every surface, audited), and while it is on nobody approves what they asked for, whichever
//! channel or token of theirs asked and whichever surface they decide on. New companies take the
//! configured default. The demo refuses a non-loopback listen address unless told, then uses
//! random passwords, and keeps its files private.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use exogate_core::model::RequestId;
use exogate_core::request::RequestState;
use m365_emulator::Scenario;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp_http::{call, client_at, ok, token_for};
use crate::support::TestApp;
use crate::web::{Browser, sign_in};

/// Signs `name` in through the login form; the CSRF token comes from a page.
async fn login(t: &TestApp, name: &str) -> Browser {
    sign_in(&t.http, &t.base_url, name, &t.password(name)).await
}

/// `PATCH /api/v1/companies/{id}` with a session (and its CSRF token unless `csrf` is false).
async fn patch_session(b: &Browser, company: &str, body: Value, csrf: bool) -> (StatusCode, Value) {
    let mut rq = b
        .http
        .patch(format!("{}/api/v1/companies/{company}", b.base))
        .header("cookie", &b.cookie)
        .json(&body);
    if csrf {
        rq = rq.header("x-csrf-token", &b.csrf);
    }
    let r = rq.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// An API call with `Authorization: Bearer token`.
async fn bearer(
    t: &TestApp,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let r = t
        .http
        .request(method, t.url(path))
        .header("authorization", format!("Bearer {token}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The web app's approvals-form toggle, as an admin's browser posts it.
async fn web_set(b: &Browser, company: &str, on: bool) -> reqwest::Response {
    let mut fields = vec![("csrf", b.csrf.as_str())];
    if on {
        fields.push(("separate_approver", "true"));
    }
    b.form(&format!("/companies/{company}/settings"), &fields)
        .await
}

async fn separate_approver(t: &TestApp, company: &str) -> bool {
    t.app
        .store
        .get_company(&exogate_core::CompanyId::parse(company).unwrap())
        .await
        .unwrap()
        .unwrap()
        .separate_approver
}

/// Approving `id` as `who` on each surface a person decides on: the web form, the JSON API
/// with a session, the CLI. Returns the error code each gave (None for success).
async fn approve_everywhere(
    t: &TestApp,
    who: &Browser,
    name: &str,
    id: &str,
) -> [Option<String>; 3] {
    let (_, shown) = who.api_get(&format!("/api/v1/requests/{id}")).await;
    let digest = shown["digest"].as_str().expect("digest").to_owned();
    let r = who
        .form(
            &format!("/requests/{id}/decide"),
            &[
                ("csrf", who.csrf.as_str()),
                ("decision", "approve"),
                ("digest", digest.as_str()),
            ],
        )
        .await;
    let web = match r.status() {
        StatusCode::SEE_OTHER => None,
        s => {
            let body = r.text().await.unwrap();
            assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
            Some(
                ["own_request", "role_too_low", "decision_via_mcp"]
                    .into_iter()
                    .find(|c| body.contains(c))
                    .unwrap_or("other")
                    .to_owned(),
            )
        }
    };
    let (s, v) = who
        .api_post(&format!("/api/v1/requests/{id}/approve"), json!({}))
        .await;
    let api = (s != StatusCode::OK).then(|| v["error"]["code"].as_str().unwrap_or("").to_owned());
    let out = t
        .cli_with_stdin(
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
            &format!("{}\n", t.password(name)),
        )
        .await;
    let cli = (!out.success).then(|| out.json()["error"]["code"].as_str().unwrap().to_owned());
    [web, api, cli]
}

fn own() -> [Option<String>; 3] {
    std::array::from_fn(|_| Some("own_request".to_owned()))
}

#[tokio::test]
async fn while_on_the_asker_approves_nothing_they_asked_for_through_any_channel_or_token() {
    let t = TestApp::start().await;
    let admin = login(&t, "admin").await;
    let manager = login(&t, "manager").await;
    let (s, c) = patch_session(&admin, "contoso", json!({"separate_approver": true}), true).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(c["separate_approver"], true);

    // The manager asks four ways: the web form, the API with a session, the API with their
    // token (an agent), and MCP with their token.
    let r = manager
        .form(
            "/companies/contoso/requests",
            &[
                ("csrf", manager.csrf.as_str()),
                ("tool", "grant_send_as"),
                ("mailbox", "support"),
                ("trustee", "carol"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let by_web = r.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/requests/")
        .to_owned();
    let (s, v) = manager
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let by_session = v["id"].as_str().unwrap().to_owned();
    let token = token_for(&t, "manager").await;
    let (s, v) = bearer(
        &t,
        reqwest::Method::POST,
        &token,
        "/api/v1/requests",
        json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "carol"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["channel"], "mcp");
    let by_token = v["id"].as_str().unwrap().to_owned();
    let mcp = client_at(&t.base_url, &token).await;
    let v = ok(&call(
        &mcp,
        "grant_send_as",
        json!({"company": "contoso", "mailbox": "support", "trustee": "alice"}),
    )
    .await);
    let by_mcp = v["request_id"].as_str().unwrap().to_owned();

    // None of them can be approved (or rejected) by the manager on any surface.
    for id in [&by_web, &by_session, &by_token, &by_mcp] {
        assert_eq!(
            approve_everywhere(&t, &manager, "manager", id).await,
            own(),
            "{id}"
        );
        let (s, e) = manager
            .api_post(&format!("/api/v1/requests/{id}/reject"), json!({}))
            .await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("own_request"))
        );
        let r = t
            .app
            .store
            .get_request(RequestId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((r.state, r.decision), (RequestState::Pending, None));
    }
    assert!(t.apply_log().await.is_empty());

    // Another person can: the admin approves one and it runs.
    let (s, v) = admin
        .api_post(&format!("/api/v1/requests/{by_mcp}/approve"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let done = t
        .wait_terminal(
            RequestId::parse(&by_mcp).unwrap(),
            std::time::Duration::from_secs(20),
        )
        .await;
    assert_eq!(done.state, RequestState::Succeeded);
    mcp.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn off_by_default_and_turning_it_on_later_applies_at_decision_time() {
    let t = TestApp::start().await;
    assert!(!separate_approver(&t, "contoso").await);
    let admin = login(&t, "admin").await;
    let manager = login(&t, "manager").await;
    let token = token_for(&t, "manager").await;
    let ask = |trustee: &'static str| {
        let t = &t;
        let token = token.clone();
        async move {
            let (s, v) = bearer(
                t,
                reqwest::Method::POST,
                &token,
                "/api/v1/requests",
                json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": trustee}),
            )
            .await;
            assert_eq!(s, StatusCode::CREATED, "{v}");
            v["id"].as_str().unwrap().to_owned()
        }
    };
    // While off, the manager may approve what their own agent asked for.
    let first = ask("bob").await;
    let (s, v) = manager
        .api_post(&format!("/api/v1/requests/{first}/approve"), json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Asked while off; an admin turns the rule on (CLI) before anyone decides.
    let second = ask("carol").await;
    let out = t
        .cli(&[
            "--json",
            "company",
            "set",
            "contoso",
            "--separate-approver",
            "true",
            "--as",
            "admin",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.json()["separate_approver"], true);
    assert_eq!(
        approve_everywhere(&t, &manager, "manager", &second).await,
        own()
    );
    // Turned off again (web), the manager may decide it.
    assert_eq!(
        web_set(&admin, "contoso", false).await.status(),
        StatusCode::SEE_OTHER
    );
    assert!(!separate_approver(&t, "contoso").await);
    let out = t
        .cli_with_stdin(
            &[
                "--json",
                "approvals",
                "approve",
                &second,
                "--as",
                "manager",
                "--yes",
                "--password-stdin",
            ],
            &format!("{}\n", t.password("manager")),
        )
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.json()["state"], "approved");
    t.stop().await;
}

/// The `company.settings_changed` events for `company`, oldest first, as the API shows them.
async fn settings_events(admin: &Browser, company: &str) -> Vec<Value> {
    let (s, v) = admin
        .api_get(&format!(
            "/api/v1/audit?company={company}&kind=company.settings_changed"
        ))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut events = v["events"].as_array().unwrap().clone();
    events.reverse();
    events
}

#[tokio::test]
async fn only_an_admin_in_person_changes_it_on_every_surface_and_every_change_is_audited() {
    let t = TestApp::start().await;
    let admin = login(&t, "admin").await;
    for name in ["tech", "manager"] {
        let b = login(&t, name).await;
        let r = web_set(&b, "contoso", true).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{name}");
        assert!(r.text().await.unwrap().contains("role_too_low"));
        let (s, e) = patch_session(&b, "contoso", json!({"separate_approver": true}), true).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("role_too_low")),
            "{name}"
        );
        let out = t
            .cli(&[
                "--json",
                "company",
                "set",
                "contoso",
                "--separate-approver",
                "true",
                "--as",
                name,
            ])
            .await;
        assert!(!out.success);
        assert_eq!(out.json()["error"]["code"], "role_too_low", "{name}");
        // They see the value, not the form.
        let (_, page) = b.get("/companies/contoso/integrations").await;
        assert!(!page.contains("id=\"settings-form\""), "{name}");
        assert!(
            page.contains("id=\"separate-approver-value\">off<"),
            "{name}"
        );
    }
    // Not even an admin's token (an agent) can waive the rule.
    let admin_token = token_for(&t, "admin").await;
    let (s, e) = bearer(
        &t,
        reqwest::Method::PATCH,
        &admin_token,
        "/api/v1/companies/contoso",
        json!({"separate_approver": true}),
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("decision_via_mcp"))
    );
    // A session without its CSRF token, and a form without it, are refused.
    let (s, e) = patch_session(&admin, "contoso", json!({"separate_approver": true}), false).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );
    let r = admin
        .form(
            "/companies/contoso/settings",
            &[("separate_approver", "true")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Bad input is a clear 400, never a partial write.
    let (s, e) = patch_session(&admin, "contoso", json!({"separate_approver": "yes"}), true).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (s, e) = patch_session(
        &admin,
        "contoso",
        json!({"separate_approver": true, "name": "x"}),
        true,
    )
    .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let (s, e) = patch_session(&admin, "nope", json!({"separate_approver": true}), true).await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("company_not_found"))
    );
    assert!(!separate_approver(&t, "contoso").await);
    assert!(settings_events(&admin, "contoso").await.is_empty());

    // The admin sees the form and changes it on each surface.
    let (_, page) = admin.get("/companies/contoso/integrations").await;
    assert!(page.contains("id=\"settings-form\""));
    assert!(!page.contains("id=\"separate-approver\" checked"));
    let r = web_set(&admin, "contoso", true).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(separate_approver(&t, "contoso").await);
    let (_, page) = admin.get("/companies/contoso/integrations").await;
    assert!(page.contains("id=\"separate-approver\" checked"));
    let (s, c) = patch_session(&admin, "contoso", json!({"separate_approver": false}), true).await;
    assert_eq!(s, StatusCode::OK, "{c}");
    assert_eq!(
        (c["id"].as_str(), c["separate_approver"].as_bool()),
        (Some("contoso"), Some(false))
    );
    for _ in 0..2 {
        // The second run sets what is already set: no change, nothing recorded.
        let out = t
            .cli(&[
                "--json",
                "company",
                "set",
                "contoso",
                "--separate-approver",
                "true",
                "--as",
                "admin",
            ])
            .await;
        assert!(out.success, "{out:?}");
        assert_eq!(out.json()["separate_approver"], true);
    }
    let out = t
        .cli(&[
            "company",
            "set",
            "contoso",
            "--separate-approver",
            "maybe",
            "--as",
            "admin",
        ])
        .await;
    assert!(!out.success);
    assert!(separate_approver(&t, "contoso").await);

    let events = settings_events(&admin, "contoso").await;
    let seen: Vec<(&str, &str, &Value)> = events
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["channel"].as_str().unwrap(),
                &e["detail"],
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "admin",
                "web",
                &json!({"setting": "separate_approver", "old": false, "new": true})
            ),
            (
                "admin",
                "api",
                &json!({"setting": "separate_approver", "old": true, "new": false})
            ),
            (
                "admin",
                "cli",
                &json!({"setting": "separate_approver", "old": false, "new": true})
            ),
        ]
    );
    t.stop().await;
}

#[tokio::test]
async fn new_companies_take_the_configured_default() {
    let t = TestApp::start_with_config(Scenario::demo(), |text| {
        format!("{text}[approvals]\nseparate_approver = true\n")
    })
    .await;
    // The demo world's companies were added under this configuration.
    assert!(separate_approver(&t, "contoso").await);
    let out = t
        .cli(&[
            "--json", "company", "add", "acme", "--name", "Acme", "--as", "admin",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.json()["separate_approver"], true);
    assert!(separate_approver(&t, "acme").await);
    // And it holds: the manager cannot approve their own request there.
    let manager = login(&t, "manager").await;
    let (s, v) = manager
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, e) = manager
        .api_post(
            &format!("/api/v1/requests/{}/approve", v["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("own_request"))
    );
    t.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------------

/// A running `exogate demo`, killed when dropped.
struct Demo {
    child: tokio::process::Child,
    info: Value,
}

/// Starts `exogate --json demo ARGS` in `data_dir` and waits for the JSON it prints once it
/// serves (no sleeping: it reads the demo's own output).
async fn start_demo(data_dir: &Path, args: &[&str]) -> Demo {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
        .arg("--json")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("demo")
        .args(args)
        .env("EXOGATE_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("exogate demo runs");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut text = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            text.push_str(&line);
            text.push('\n');
            if line == "}" {
                return;
            }
        }
        panic!("the demo stopped before it printed its details: {text}");
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), read)
        .await
        .expect("the demo starts within 2 minutes");
    let info: Value = serde_json::from_str(&text).expect("demo JSON");
    Demo { child, info }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

async fn run_demo_expecting_failure(data_dir: &Path, listen: &str) -> (Value, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
        .arg("--json")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["demo", "--listen", listen])
        .env("EXOGATE_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success(), "{listen}: {out:?}");
    (
        serde_json::from_slice(&out.stdout).expect("JSON error"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn demo_refuses_a_non_loopback_address_unless_allowed_and_then_uses_random_passwords() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    for listen in ["0.0.0.0:0", "[::]:0", "192.0.2.1:8080"] {
        let (e, stderr) = run_demo_expecting_failure(&dir, listen).await;
        assert_eq!(e["error"]["code"], "demo_not_loopback", "{listen}: {e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("--allow-remote"),
            "{e}"
        );
        assert!(stderr.contains("demo_not_loopback"), "{stderr}");
        // Nothing was started or written.
        assert!(!dir.exists(), "{listen}");
    }

    let mut demo = start_demo(&dir, &["--listen", "0.0.0.0:0", "--allow-remote"]).await;
    let users = demo.info["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 4);
    let mut seen = std::collections::HashSet::new();
    for u in &users {
        let name = u["name"].as_str().unwrap();
        let password = u["password"].as_str().unwrap();
        let fixed = exogate::demo::USERS.iter().find(|f| f.0 == name).unwrap().1;
        assert_ne!(password, fixed, "{name}");
        assert!(password.len() >= 20, "{name}: {password}");
        assert!(seen.insert(password.to_owned()), "passwords repeat");
    }
    // demo.json holds the same passwords, and they are the ones that work.
    let written: Value =
        serde_json::from_slice(&std::fs::read(dir.join("demo.json")).unwrap()).unwrap();
    assert_eq!(written["users"], Value::Array(users.clone()));
    let port = url::Url::parse(demo.info["web_url"].as_str().unwrap())
        .unwrap()
        .port()
        .unwrap();
    let http = reqwest::Client::new();
    let try_login = |password: String| {
        let http = http.clone();
        async move {
            http.post(format!("http://127.0.0.1:{port}/api/v1/login"))
                .json(&json!({"user": "admin", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let admin = users.iter().find(|u| u["name"] == "admin").unwrap();
    assert_eq!(
        try_login(admin["password"].as_str().unwrap().to_owned()).await,
        StatusCode::OK
    );
    assert_eq!(
        try_login("demo-admin-pass".to_owned()).await,
        StatusCode::UNAUTHORIZED
    );
    demo.child.kill().await.unwrap();
}

#[tokio::test]
async fn demo_files_are_private_in_a_private_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    // A directory left world-readable, with a world-readable configuration from an earlier run.
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("exogate.toml"), "old").unwrap();
    std::fs::set_permissions(
        dir.join("exogate.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let mut demo = start_demo(&dir, &["--listen", "127.0.0.1:0"]).await;
    assert_eq!(mode(&dir), 0o700);
    let mut checked = Vec::new();
    for name in [
        "demo.json",
        "exogate.toml",
        "exogate.db",
        "exogate.db-wal",
        "exogate.db-shm",
    ] {
        let p = dir.join(name);
        if (name.ends_with("-wal") || name.ends_with("-shm")) && !p.exists() {
            continue;
        }
        assert_eq!(mode(&p), 0o600, "{name}");
        checked.push(name);
    }
    assert!(checked.len() >= 3, "{checked:?}");
    // The fixed passwords on loopback, as before.
    assert_eq!(demo.info["users"][0]["password"], exogate::demo::USERS[0].1);
    demo.child.kill().await.unwrap();

    // A fresh directory is created private.
    let fresh = tmp.path().join("fresh");
    let mut demo = start_demo(&fresh, &["--listen", "127.0.0.1:0"]).await;
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&fresh.join("demo.json")), 0o600);
    assert_eq!(mode(&fresh.join("exogate.db")), 0o600);
    demo.child.kill().await.unwrap();
}
