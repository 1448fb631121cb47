//! The demo world (`docs/DOMAIN.md#demo-world`), through the front door.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn demo_tenants_answer_as_designed() {
    let env = Env::demo().await;
    // Contoso: configured (permission and Exchange Administrator).
    let (_, c) = decode_jwt(&env.exchange_token(CONTOSO).await);
    assert_eq!(c["roles"], json!(["Exchange.ManageAsApp"]));
    assert_eq!(c["wids"], json!([EXCHANGE_ADMIN_ROLE, IMPLICIT_WIDS]));
    // By domain too.
    env.exchange_token("contoso.onmicrosoft.com").await;
    // Fabrikam: consented, no role.
    let (_, c) = decode_jwt(&env.exchange_token(FABRIKAM).await);
    assert_eq!(c["wids"], json!([IMPLICIT_WIDS]));
    // Northwind: connect app only.
    env.graph_token(NORTHWIND).await;
    let (s, b) = env
        .token_secret(NORTHWIND, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "unauthorized_client", 700016);
    // Tailspin: deleted.
    for app in [
        (EXCHANGE_APP, EXCHANGE_SECRET),
        (CONNECT_APP, CONNECT_SECRET),
    ] {
        let (s, b) = env
            .token_secret(TAILSPIN, app.0, app.1, EXCHANGE_SCOPE)
            .await;
        assert_eq!(s, 400);
        assert_aad_error(&b, "invalid_request", 90002);
    }
}

#[tokio::test]
async fn control_api_lists_the_demo_world_and_manages_tenants() {
    let env = Env::demo().await;
    let (s, b) = env.control("GET", "/health", None).await;
    assert_eq!((s, &b["status"]), (200, &json!("ok")));
    let (_, b) = env.control("GET", "/tenants", None).await;
    let ids: Vec<&str> = b["value"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert_eq!(ids, [CONTOSO, FABRIKAM, NORTHWIND, TAILSPIN]);
    let (_, t) = env
        .control("GET", &format!("/tenants/{TAILSPIN}"), None)
        .await;
    assert_eq!(t["deleted"], true);

    // Create a tenant, register an app, consent, assign a role, get a token, delete the tenant.
    let (s, b) = env
        .control(
            "POST",
            "/tenants",
            Some(
                json!({"id": "55555555-5555-4555-8555-555555555555", "display_name": "Woodgrove",
                        "domains": ["woodgrove.onmicrosoft.com"]}),
            ),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, _) = env
        .control(
            "POST",
            "/tenants",
            Some(json!({"display_name": "Dup", "domains": ["woodgrove.onmicrosoft.com"]})),
        )
        .await;
    assert_eq!(s, 409);
    let (s, b) = env
        .control(
            "POST",
            "/tenants/woodgrove.onmicrosoft.com/consents",
            Some(json!({"client_id": EXCHANGE_APP})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = env
        .control(
            "PUT",
            &format!("/tenants/woodgrove.onmicrosoft.com/service-principals/{EXCHANGE_APP}/roles/exchange-recipient-admin"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, c) = decode_jwt(&env.exchange_token("woodgrove.onmicrosoft.com").await);
    assert_eq!(
        c["wids"],
        json!(["31392ffb-586c-42d1-9346-e59415a2cc4e", IMPLICIT_WIDS])
    );
    let (s, _) = env
        .control(
            "DELETE",
            "/tenants/55555555-5555-4555-8555-555555555555",
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (s, b) = env
        .token_secret(
            "woodgrove.onmicrosoft.com",
            EXCHANGE_APP,
            EXCHANGE_SECRET,
            EXCHANGE_SCOPE,
        )
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "invalid_request", 90002);

    // Revoking consent brings back AADSTS700016.
    let (s, _) = env
        .control(
            "DELETE",
            &format!("/tenants/{FABRIKAM}/consents/{EXCHANGE_APP}"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, b) = env
        .token_secret(FABRIKAM, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "unauthorized_client", 700016);
}

#[tokio::test]
async fn control_api_refuses_bad_input_with_json_errors() {
    let env = Env::demo().await;
    let cases = [
        (
            "POST",
            "/tenants".to_owned(),
            Some(json!({"display_name": "x"})),
        ),
        (
            "POST",
            "/tenants".to_owned(),
            Some(json!({"display_name": "x", "domains": []})),
        ),
        (
            "POST",
            "/tenants".to_owned(),
            Some(json!({"display_name": "x", "domains": ["not a domain"]})),
        ),
        (
            "POST",
            "/apps".to_owned(),
            Some(json!({"client_id": "nope"})),
        ),
        (
            "POST",
            "/apps".to_owned(),
            Some(json!({"client_id": EXCHANGE_APP, "display_name": "x", "certificates": ["junk"]})),
        ),
        (
            "POST",
            "/clock".to_owned(),
            Some(json!({"advance_secs": -5})),
        ),
        (
            "POST",
            "/clock".to_owned(),
            Some(json!({"freeze_at": "yesterday"})),
        ),
        ("POST", "/clock".to_owned(), Some(json!({"warp": 1}))),
        (
            "POST",
            format!("/tenants/{CONTOSO}/consents"),
            Some(json!({"client_id": 5})),
        ),
        (
            "PUT",
            format!("/tenants/{CONTOSO}/service-principals/{EXCHANGE_APP}/roles/emperor"),
            None,
        ),
        (
            "PUT",
            format!("/tenants/{CONTOSO}/service-principals/nope/roles/exchange-admin"),
            None,
        ),
    ];
    for (method, path, body) in cases {
        let (s, b) = env.control(method, &path, body.clone()).await;
        assert_eq!(s, 400, "{method} {path} {body:?}: {b}");
        assert!(b["error"]["message"].is_string(), "{b}");
    }
    let not_found = [
        ("GET", "/tenants/nosuch.onmicrosoft.com".to_owned()),
        (
            "DELETE",
            "/tenants/99999999-9999-4999-8999-999999999999".to_owned(),
        ),
        (
            "PUT",
            format!("/tenants/{NORTHWIND}/service-principals/{EXCHANGE_APP}/roles/exchange-admin"),
        ),
        (
            "GET",
            "/apps/99999999-9999-4999-8999-999999999999".to_owned(),
        ),
    ];
    for (method, path) in not_found {
        let (s, b) = env.control(method, &path, None).await;
        assert_eq!(s, 404, "{method} {path}: {b}");
    }
    let (s, _) = env
        .control(
            "POST",
            &format!("/tenants/{TAILSPIN}/consents"),
            Some(json!({"client_id": EXCHANGE_APP})),
        )
        .await;
    assert_eq!(s, 409, "no consent in a deleted tenant");
}

#[tokio::test]
async fn clock_can_be_frozen_advanced_and_released() {
    let env = Env::demo().await;
    let (s, b) = env
        .control(
            "POST",
            "/clock",
            Some(json!({"freeze_at": "2030-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["now"], "2030-01-01T00:00:00Z");
    assert_eq!(b["frozen"], true);
    let (_, b) = env
        .control("POST", "/clock", Some(json!({"advance_secs": 90})))
        .await;
    assert_eq!(b["now"], "2030-01-01T00:01:30Z");
    let (_, b) = env.control("GET", "/clock", None).await;
    assert_eq!(b["unix"], 1_893_456_090);
    let (_, b) = env
        .control("POST", "/clock", Some(json!({"unfreeze": true})))
        .await;
    assert_eq!(b["frozen"], false);
}

#[test]
fn scenario_files_load_and_bad_ones_are_refused() {
    use m365_emulator::Scenario;
    let dir = std::env::temp_dir().join(format!("m365-emulator-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.json");
    std::fs::write(
        &good,
        json!({"seed": 9, "tenants": [{"id": CONTOSO, "display_name": "C", "domains": ["c.onmicrosoft.com"]}]})
            .to_string(),
    )
    .expect("write");
    let s = Scenario::parse(good.to_str().expect("utf-8")).expect("loads");
    assert_eq!(s.seed, 9);
    assert!(Scenario::parse("demo").is_ok());
    assert!(Scenario::parse(dir.join("missing.json").to_str().expect("utf-8")).is_err());
    for bad in [
        json!({"tenantz": []}),
        json!({"tenants": [{"id": CONTOSO, "display_name": "C", "domains": []}]}),
        json!({"tenants": [{"id": CONTOSO, "display_name": "C", "domains": ["c.x"], "roles": [{"client_id": EXCHANGE_APP, "role": "Exchange Administrator"}]}]}),
        json!({"tenants": [{"id": CONTOSO, "display_name": "C", "domains": ["c.x"], "consents": [EXCHANGE_APP]}]}),
    ] {
        let parsed = Scenario::from_json(&bad.to_string());
        let world = parsed.and_then(|s| s.into_world());
        assert!(world.is_err(), "{bad}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

async fn invoke(env: &Env, tenant: &str, token: &str, cmdlet: &str) -> reqwest::Response {
    env.http
        .post(env.url(&format!("/adminapi/beta/{tenant}/InvokeCommand")))
        .bearer_auth(token)
        .header(
            "X-AnchorMailbox",
            format!("UPN:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{tenant}"),
        )
        .json(&json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": {}}}))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn demo_mailboxes_are_listed_for_contoso_and_fabrikam_is_forbidden() {
    let env = Env::demo().await;
    let token = env.exchange_token(CONTOSO).await;
    let resp = invoke(&env, CONTOSO, &token, "Get-Mailbox").await;
    assert_eq!(resp.status(), 200);
    let b: serde_json::Value = resp.json().await.expect("json");
    let mut names: Vec<String> = b["value"]
        .as_array()
        .expect("value")
        .iter()
        .filter_map(|m| m["PrimarySmtpAddress"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "alice@contoso.onmicrosoft.com",
            "bob@contoso.onmicrosoft.com",
            "carol@contoso.onmicrosoft.com",
            "sales@contoso.onmicrosoft.com",
            "support@contoso.onmicrosoft.com",
        ]
    );
    let token = env.exchange_token(FABRIKAM).await;
    let resp = invoke(&env, FABRIKAM, &token, "Get-Mailbox").await;
    assert_eq!(resp.status(), 403);
    let body = resp.bytes().await.expect("body");
    assert!(
        serde_json::from_slice::<serde_json::Value>(&body).is_err(),
        "not JSON"
    );
}

#[tokio::test]
async fn binary_serves_the_demo_and_prints_its_base_url() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-emulator"))
        .args(["--scenario", "demo", "--port", "0"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .expect("reads the base URL");
    let base = line.trim().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let http = client();
    let health: serde_json::Value = http
        .get(format!("{base}/_emulator/health"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    let resp = http
        .post(format!("{base}/{CONTOSO}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", EXCHANGE_APP),
            ("client_secret", EXCHANGE_SECRET),
            ("scope", EXCHANGE_SCOPE),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let error_page = http
        .get(format!("{base}/error?code=90002"))
        .send()
        .await
        .expect("sent");
    assert_eq!(error_page.status(), 200);
    assert!(
        error_page
            .text()
            .await
            .expect("body")
            .contains("AADSTS90002")
    );
    child.kill().await.expect("stops");
}

#[tokio::test]
async fn binary_refuses_a_missing_scenario_file() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_m365-emulator"))
        .args(["--scenario", "/nonexistent/scenario.json"])
        .output()
        .await
        .expect("binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("scenario"), "{err}");
}

/// The two setup steps for Northwind, through the pages: consent, then the role, then Exchange.
#[tokio::test]
async fn northwind_walks_from_not_configured_to_configured() {
    let env = Env::demo().await;
    let redirect = "http://localhost:8080/companies/3/integrations/microsoft/authorize/callback";
    // Step 1: admin consent for the Exchange app, as Northwind's Global Administrator.
    let page = env
        .http
        .get(env.url(&format!("/{NORTHWIND}/v2.0/adminconsent")))
        .query(&[
            ("client_id", EXCHANGE_APP),
            ("scope", EXCHANGE_SCOPE),
            ("redirect_uri", redirect),
            ("state", "nonce-1"),
        ])
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("page");
    let mut form = hidden_inputs(&page);
    form.push(("account".to_owned(), format!("admin:{NORTHWIND}")));
    form.push(("action".to_owned(), "accept".to_owned()));
    let resp = env
        .http
        .post(env.url(&form_action(&page)))
        .form(&form)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 302);
    let (base, params) = split_location(resp.headers()["location"].to_str().expect("ascii"));
    assert_eq!(base, redirect);
    assert!(params.contains(&("tenant".to_owned(), NORTHWIND.to_owned())));
    // Consented but no role: the token has the permission, Exchange answers 403.
    let token = env.exchange_token(NORTHWIND).await;
    let (_, c) = decode_jwt(&token);
    assert_eq!(c["roles"], json!(["Exchange.ManageAsApp"]));
    assert_eq!(c["wids"], json!([IMPLICIT_WIDS]));
    let resp = invoke(&env, NORTHWIND, &token, "Get-OrganizationConfig").await;
    assert_eq!(resp.status(), 403);
    // Step 2: assign Exchange Administrator on the admin-centre page.
    let html = env
        .http
        .get(env.url(&format!("/_admin/{NORTHWIND}/roles")))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("page");
    let button = format!("id=\"assign-exchange-admin-{EXCHANGE_APP}\"");
    let at = html.find(&button).expect("assign button");
    let form_html = &html[html[..at].rfind("<form ").expect("form")..at];
    let resp = env
        .http
        .post(env.url(&form_action(form_html)))
        .form(&hidden_inputs(form_html))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 303);
    // The old token keeps its frozen roles; a fresh one works.
    let fresh = env.exchange_token(NORTHWIND).await;
    let (_, c) = decode_jwt(&fresh);
    assert_eq!(c["wids"], json!([EXCHANGE_ADMIN_ROLE, IMPLICIT_WIDS]));
    let resp = invoke(&env, NORTHWIND, &fresh, "Get-OrganizationConfig").await;
    assert_eq!(resp.status(), 200);
}
