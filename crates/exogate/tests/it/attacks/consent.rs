//! Attacks: consent. The consent callback and tenant moves, replayed through the real router
//! and the emulator's consent pages: a callback only confirms the tenant its flow was started
//! for, a tenant belongs to one company, a move is a manager's action with the tenant typed up
//! front, a state of another session is refused without being used up, the CLI's connect URL
//! works without a browser session, and every refusal writes exactly one `consent.refused`
//! event and changes nothing else.

use exogate_core::Company;
use exogate_core::audit::AuditEvent;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::web::{Browser, CONTOSO, FABRIKAM, NORTHWIND, sign_in};

/// Signs `name` in through the login form.
async fn login(app: &TestApp, name: &str, password: &str) -> Browser {
    sign_in(&app.http, &app.base_url, name, password).await
}

async fn demo_login(app: &TestApp, name: &str) -> Browser {
    login(app, name, &app.password(name)).await
}

/// A technician entitled to Fabrikam alone (the review's attacker).
async fn fabrikam_tech(app: &TestApp) -> Browser {
    let password = "fabrikam-only-technician-pw";
    let out = app
        .cli_with_stdin(
            &[
                "user",
                "add",
                "ftech",
                "--role",
                "technician",
                "--companies",
                "fabrikam",
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
        .await;
    assert!(out.success, "{out:?}");
    login(app, "ftech", password).await
}

/// Posts a consent-starting form; returns the response (303 to Microsoft when allowed).
async fn start(b: &Browser, path: &str, tenant: &str) -> reqwest::Response {
    b.form(path, &[("csrf", b.csrf.as_str()), ("tenant", tenant)])
        .await
}

/// The consent URL of a 303 and its `state`.
fn consent_url(r: &reqwest::Response) -> (String, String) {
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let state = url::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state in consent URL");
    (loc, state)
}

fn granted(tenant: &str, state: &str) -> String {
    format!("admin_consent=True&tenant={tenant}&state={state}")
}

/// An admin of `tenant` accepts on the emulator's consent page; returns the callback path.
async fn accept_at_microsoft(app: &TestApp, consent: &str, tenant: &str) -> String {
    let u = url::Url::parse(consent).unwrap();
    let mut fields: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    fields.push(("account".into(), format!("admin:{tenant}")));
    fields.push(("action".into(), "accept".into()));
    let r = app
        .http
        .post(app.emulator_url(u.path()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{}", r.text().await.unwrap());
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&app.url("/consent/callback?")), "{back}");
    back[app.base_url.len()..].to_owned()
}

/// Every company row and the audit log's last sequence number.
async fn snapshot(app: &TestApp) -> (Vec<Company>, i64) {
    let seq = app.app.store.audit_head().await.unwrap().map_or(0, |h| h.0);
    (app.app.store.list_companies().await.unwrap(), seq)
}

/// Asserts that since `before` exactly one event was written, `consent.refused` with `reason`
/// (and `company` when known), and that no company row changed. Returns the event.
async fn only_refusal(
    app: &TestApp,
    before: &(Vec<Company>, i64),
    reason: &str,
    company: Option<&str>,
) -> AuditEvent {
    // (hardening) The background worker keeps working meanwhile: its own status checks and
    // sweeps (system events, no actor) may land between `before` and now, and update a
    // company's Exchange status. They are not the callback's, so they are left out here;
    // everything else the callback could write or change still counts.
    let events: Vec<AuditEvent> = app
        .app
        .store
        .list_audit(before.1, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| !is_background_work(e))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
    assert_eq!(kinds, ["consent.refused"], "{events:#?}");
    let ev = events.into_iter().next().unwrap();
    let detail: Value = serde_json::from_str(&ev.event.detail).unwrap();
    assert_eq!(detail["reason"], reason, "{detail}");
    assert_eq!(ev.event.company.as_deref(), company);
    assert_eq!(
        without_status(app.app.store.list_companies().await.unwrap()),
        without_status(before.0.clone()),
        "a refused callback changed a company"
    );
    ev
}

/// (hardening) An event of the worker's own rounds: a status check or an inventory sweep with
/// no actor.
fn is_background_work(e: &AuditEvent) -> bool {
    e.event.actor_name.is_none()
        && (e.event.kind == "company.status_checked"
            || e.event.kind.starts_with("inventory.sweep_"))
}

/// (hardening) Companies without their Exchange status, which only the worker's checks write.
fn without_status(companies: Vec<Company>) -> Vec<Company> {
    companies
        .into_iter()
        .map(|c| Company {
            exchange_status: None,
            ..c
        })
        .collect()
}

fn tenant_of(companies: &[Company], id: &str) -> Option<String> {
    companies
        .iter()
        .find(|c| c.id.as_str() == id)
        .and_then(|c| c.connection.as_ref())
        .map(|c| c.tenant_id.to_string())
}

async fn company(app: &TestApp, id: &str) -> Company {
    let all = app.app.store.list_companies().await.unwrap();
    all.into_iter().find(|c| c.id.as_str() == id).unwrap()
}

#[tokio::test]
async fn the_reviews_attack_cannot_move_fabrikam_onto_contosos_tenant() {
    let app = TestApp::start().await;
    let attacker = fabrikam_tech(&app).await;
    let before = snapshot(&app).await;
    // Reconnect with no tenant typed: the consent is for Fabrikam's own tenant, not
    // `organizations`.
    let r = start(&attacker, "/companies/fabrikam/connect", "").await;
    let (url, state) = consent_url(&r);
    assert!(url.contains(&format!("/{FABRIKAM}/adminconsent")), "{url}");
    // The callback names Contoso's tenant (a tenant that consented to the connect app).
    let (s, body) = attacker.callback(&granted(CONTOSO, &state)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("data-outcome=\"wrong_tenant\""), "{body}");
    let ev = only_refusal(&app, &before, "wrong_tenant", Some("fabrikam")).await;
    assert!(
        !ev.event.detail.contains(&state),
        "the state is not audited"
    );
    assert_eq!(ev.event.actor_name.as_deref(), Some("ftech"));
    // Typing Contoso's tenant on Fabrikam's connect form is refused before Microsoft.
    let before = snapshot(&app).await;
    let r = start(&attacker, "/companies/fabrikam/connect", CONTOSO).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A move is not a technician's action.
    let r = start(&attacker, "/companies/fabrikam/move", CONTOSO).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(
        tenant_of(&app.app.store.list_companies().await.unwrap(), "fabrikam").as_deref(),
        Some(FABRIKAM)
    );
    // Nothing of Contoso can be read or changed through Fabrikam.
    let (s, body) = attacker
        .api_get("/api/v1/companies/fabrikam/mailboxes/sales@contoso.onmicrosoft.com/full-access")
        .await;
    assert_ne!(s, StatusCode::OK, "{body}");
    assert!(body.get("full_access").is_none(), "{body}");
    let (s, body) = attacker
        .api_post(
            "/api/v1/requests",
            json!({"company": "fabrikam", "tool": "grant_full_access", "mailbox": "sales@contoso.onmicrosoft.com", "trustee": "alice@contoso.onmicrosoft.com"}),
        )
        .await;
    assert!(!s.is_success(), "{body}");
    assert!(app.apply_log().await.is_empty(), "a grant was executed");
    app.stop().await;
}

#[tokio::test]
async fn reconnect_or_authorize_answered_from_another_tenant_is_refused_and_audited() {
    let app = TestApp::start().await;
    let tech = demo_login(&app, "tech").await;
    for path in [
        "/companies/northwind/connect",
        "/companies/northwind/authorize",
    ] {
        let r = start(&tech, path, "").await;
        let (url, state) = consent_url(&r);
        assert!(url.contains(&format!("/{NORTHWIND}/")), "{path}: {url}");
        let before = snapshot(&app).await;
        let (s, body) = tech.callback(&granted(CONTOSO, &state)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body.contains("Consent went to another tenant"), "{body}");
        let ev = only_refusal(&app, &before, "wrong_tenant", Some("northwind")).await;
        let detail: Value = serde_json::from_str(&ev.event.detail).unwrap();
        assert_eq!(detail["expected_tenant"], NORTHWIND);
        assert_eq!(detail["callback_tenant"], CONTOSO);
    }
    // Through Microsoft's page: Contoso's admin signs in on Northwind's reconnect.
    let r = start(&tech, "/companies/northwind/connect", "").await;
    let (url, _) = consent_url(&r);
    let before = snapshot(&app).await;
    let u = url::Url::parse(&url).unwrap();
    let mut fields: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    fields.push(("account".into(), format!("admin:{CONTOSO}")));
    fields.push(("action".into(), "accept".into()));
    let r = app
        .http
        .post(app.emulator_url(u.path()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "Microsoft redirects with AADSTS50020"
    );
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    let (s, _) = tech.get(&back[app.base_url.len()..]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    only_refusal(&app, &before, "other_directory", Some("northwind")).await;
    assert_eq!(
        tenant_of(&app.app.store.list_companies().await.unwrap(), "northwind").as_deref(),
        Some(NORTHWIND)
    );
    app.stop().await;
}

#[tokio::test]
async fn a_first_connect_cannot_take_a_tenant_another_company_holds() {
    let app = TestApp::start().await;
    let manager = demo_login(&app, "manager").await;
    let (s, _) = manager
        .api_post("/api/v1/companies/northwind/disconnect", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let tech = demo_login(&app, "tech").await;
    // Typed up front: refused before Microsoft.
    let before = snapshot(&app).await;
    let r = start(&tech, "/companies/northwind/connect", CONTOSO).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(snapshot(&app).await, before);
    // Not typed (`organizations`): Contoso's admin consents at Microsoft, the callback is
    // refused because Contoso's tenant belongs to Contoso.
    let r = start(&tech, "/companies/northwind/connect", "").await;
    let (url, _) = consent_url(&r);
    assert!(url.contains("/organizations/"), "{url}");
    let back = accept_at_microsoft(&app, &url, CONTOSO).await;
    let before = snapshot(&app).await;
    let (s, body) = tech.get(&back).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("data-outcome=\"tenant_linked\""), "{body}");
    only_refusal(&app, &before, "tenant_already_linked", Some("northwind")).await;
    assert!(company(&app, "northwind").await.connection.is_none());
    // Northwind's own admin: connected.
    let r = start(&tech, "/companies/northwind/connect", "").await;
    let (url, _) = consent_url(&r);
    let back = accept_at_microsoft(&app, &url, NORTHWIND).await;
    let (s, body) = tech.get(&back).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        tenant_of(&app.app.store.list_companies().await.unwrap(), "northwind").as_deref(),
        Some(NORTHWIND)
    );
    app.stop().await;
}

#[tokio::test]
async fn moving_a_company_needs_a_manager_and_the_new_tenant_typed_up_front() {
    let app = TestApp::start().await;
    let tech = demo_login(&app, "tech").await;
    let manager = demo_login(&app, "manager").await;
    // Free Fabrikam's tenant, then move Northwind there.
    let (s, _) = manager
        .api_post("/api/v1/companies/fabrikam/disconnect", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let before = snapshot(&app).await;
    let r = start(&tech, "/companies/northwind/move", FABRIKAM).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "technician");
    let r = start(&manager, "/companies/northwind/move", "").await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no tenant typed"
    );
    let r = start(&manager, "/companies/northwind/move", CONTOSO).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "another company's tenant");
    assert_eq!(snapshot(&app).await, before);
    let r = start(&manager, "/companies/northwind/move", FABRIKAM).await;
    let (url, _) = consent_url(&r);
    assert!(url.contains(&format!("/{FABRIKAM}/adminconsent")), "{url}");
    let back = accept_at_microsoft(&app, &url, FABRIKAM).await;
    let (s, body) = manager.get(&back).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("Company moved to the new tenant"), "{body}");
    assert_eq!(
        tenant_of(&app.app.store.list_companies().await.unwrap(), "northwind").as_deref(),
        Some(FABRIKAM)
    );
    let events = app.app.store.list_audit(before.1, 100).await.unwrap();
    let moved = events
        .iter()
        .find(|e| e.event.kind == "company.tenant_moved")
        .expect("the move is audited");
    let detail: Value = serde_json::from_str(&moved.event.detail).unwrap();
    assert_eq!(detail["from_tenant"], NORTHWIND);
    assert_eq!(detail["tenant"], FABRIKAM);
    assert_eq!(moved.event.actor_name.as_deref(), Some("manager"));
    assert_eq!(moved.event.company.as_deref(), Some("northwind"));
    app.stop().await;
}

#[tokio::test]
async fn a_state_of_another_session_is_refused_without_using_it_up() {
    let app = TestApp::start().await;
    let tech = demo_login(&app, "tech").await;
    let other = demo_login(&app, "tech").await; // same user, another browser
    let manager = demo_login(&app, "manager").await;
    let r = start(&tech, "/companies/northwind/authorize", "").await;
    let (_, state) = consent_url(&r);
    for b in [&other, &manager] {
        let before = snapshot(&app).await;
        let (s, body) = b.callback(&granted(NORTHWIND, &state)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("another browser session"), "{body}");
        let ev = only_refusal(&app, &before, "state_not_accepted", None).await;
        assert!(!ev.event.detail.contains(&state));
    }
    // With no session at all.
    let r = app
        .http
        .get(app.url(&format!("/consent/callback?{}", granted(NORTHWIND, &state))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The rightful session can still use it, once.
    let (s, body) = tech.callback(&granted(NORTHWIND, &state)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("data-outcome=\"authorized\""), "{body}");
    let (s, _) = tech.callback(&granted(NORTHWIND, &state)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "replay");
    app.stop().await;
}

#[tokio::test]
async fn the_cli_connect_url_works_without_a_browser_session_and_only_for_its_tenant() {
    let app = TestApp::start().await;
    let manager = demo_login(&app, "manager").await;
    let (s, _) = manager
        .api_post("/api/v1/companies/northwind/disconnect", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let url_for = |out: crate::support::CliOutput| {
        assert!(out.success, "{out:?}");
        out.json()["url"].as_str().unwrap().to_owned()
    };
    let url = url_for(
        app.cli(&[
            "--json",
            "company",
            "connect-url",
            "northwind",
            "--tenant",
            NORTHWIND,
            "--as",
            "tech",
        ])
        .await,
    );
    assert!(url.contains(&format!("/{NORTHWIND}/adminconsent")), "{url}");
    // The customer's admin consents and lands on the callback in a browser with no session.
    let back = accept_at_microsoft(&app, &url, NORTHWIND).await;
    let r = app.http.get(app.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    assert_eq!(
        tenant_of(&app.app.store.list_companies().await.unwrap(), "northwind").as_deref(),
        Some(NORTHWIND)
    );
    let connected = app
        .app
        .store
        .recent_audit(None, None, 20)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.event.kind == "company.connected")
        .expect("connect audited");
    assert_eq!(connected.event.actor_name.as_deref(), Some("tech"));
    // Single use.
    let before = snapshot(&app).await;
    let r = app.http.get(app.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    only_refusal(&app, &before, "state_not_accepted", None).await;
    // For a connected company it names the company's own tenant, and another tenant's answer
    // is refused.
    let url = url_for(
        app.cli(&[
            "--json",
            "company",
            "connect-url",
            "contoso",
            "--as",
            "tech",
        ])
        .await,
    );
    assert!(url.contains(&format!("/{CONTOSO}/adminconsent")), "{url}");
    let state = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let before = snapshot(&app).await;
    let r = app
        .http
        .get(app.url(&format!("/consent/callback?{}", granted(FABRIKAM, &state))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    only_refusal(&app, &before, "wrong_tenant", Some("contoso")).await;
    // A tenant typed for a connected company's connect URL must be its own.
    let out = app
        .cli(&[
            "company",
            "connect-url",
            "contoso",
            "--tenant",
            FABRIKAM,
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    app.stop().await;
}

/// Tenant text in the connection itself: a tenant whose display name carries an emoji with a
/// variation selector, a right-to-left override and a line separator is still connected (the
/// name is the customer's, not an attack on the connect flow), and is stored in the sanitizer's
/// inert, escaped form, so pages, API, MCP and the CLI all show the same visible text.
#[tokio::test]
async fn a_tenant_with_hidden_characters_in_its_name_connects_and_is_stored_inert() {
    let mut scenario = m365_emulator::Scenario::demo();
    let northwind = scenario
        .tenants
        .iter_mut()
        .find(|t| t.id.to_string() == NORTHWIND)
        .expect("northwind in the demo world");
    northwind.display_name = "Northwind \u{2764}\u{FE0F} \u{202E}sdrawkcab\u{2028}Traders".into();
    let app = TestApp::start_with(scenario).await;
    let manager = demo_login(&app, "manager").await;
    let (s, _) = manager
        .api_post("/api/v1/companies/northwind/disconnect", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let tech = demo_login(&app, "tech").await;
    let r = start(&tech, "/companies/northwind/connect", NORTHWIND).await;
    let (url, _) = consent_url(&r);
    let back = accept_at_microsoft(&app, &url, NORTHWIND).await;
    let (s, body) = tech.get(&back).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let conn = company(&app, "northwind")
        .await
        .connection
        .expect("connected");
    assert_eq!(
        conn.display_name,
        "Northwind \u{2764}<U+FE0F> <U+202E>sdrawkcab<U+2028>Traders"
    );
    assert!(exogate_core::text::first_hidden(&conn.display_name).is_none());
    app.stop().await;
}

/// Anyone can send callbacks with made-up states without signing in. Each is refused and
/// changes nothing, and the audit rows they cause are bounded: the first few a minute get their
/// own `consent.refused` row, the rest are counted into one summary row.
#[tokio::test]
async fn a_flood_of_unknown_states_writes_a_bounded_number_of_audit_rows() {
    let w = crate::web::WebApp::start_with(|c| c.login.audited_failures_per_minute = 3).await;
    let refusals = |events: Vec<exogate_core::audit::AuditEvent>| -> Vec<Value> {
        events
            .into_iter()
            .filter(|e| e.event.kind == "consent.refused")
            .map(|e| serde_json::from_str(&e.event.detail).unwrap())
            .collect()
    };
    let start = w.app.store.audit_head().await.unwrap().map_or(0, |h| h.0);
    let companies = w.app.store.list_companies().await.unwrap();
    for i in 0..40 {
        let r = w
            .http
            .get(format!(
                "{}/consent/callback?admin_consent=True&tenant={CONTOSO}&state=made-up-{i}",
                w.base
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    let rows = refusals(w.app.store.list_audit(start, 1000).await.unwrap());
    assert_eq!(rows.len(), 3, "at most 3 rows a minute: {rows:#?}");
    assert!(rows.iter().all(|d| d["reason"] == "state_not_accepted"));
    // A minute later the next refusal first writes the summary of the 37 counted ones.
    w.clock.advance_secs(60);
    let r = w
        .http
        .get(format!("{}/consent/callback?state=another", w.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let rows = refusals(w.app.store.list_audit(start, 1000).await.unwrap());
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert_eq!(rows[3]["unrecorded_refusals"], 37, "{rows:#?}");
    assert_eq!(w.app.store.list_companies().await.unwrap(), companies);
    assert!(exogate_core::ops::audit::verify(w.app.ctx()).await.is_ok());
    w.stop().await;
}

/// `company authorize-url` (the CLI's Authorize button): the Exchange app's consent in the
/// company's own tenant, single use, then `company check` moves the badge on. `company list`
/// names the command in its FIX column. A company with no connection has no such URL, and a
/// viewer may not ask for one.
#[tokio::test]
async fn the_cli_authorize_url_consents_the_exchange_app_in_the_companys_own_tenant() {
    let app = TestApp::start().await;
    let list = app.cli(&["company", "list", "--as", "tech"]).await;
    assert!(list.success, "{list:?}");
    assert!(
        list.stdout.lines().next().unwrap().contains("FIX"),
        "{}",
        list.stdout
    );
    let northwind_line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("northwind"))
        .unwrap();
    assert!(
        northwind_line.contains("exogate company authorize-url northwind"),
        "{northwind_line}"
    );
    let url_of = |out: crate::support::CliOutput| {
        assert!(out.success, "{out:?}");
        out.json()["url"].as_str().unwrap().to_owned()
    };
    let client_id = |url: &str| {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let url = url_of(
        app.cli(&[
            "--json",
            "company",
            "authorize-url",
            "Northwind",
            "--as",
            "tech",
        ])
        .await,
    );
    assert!(
        url.contains(&format!("/{NORTHWIND}/")) && url.contains("/adminconsent?"),
        "{url}"
    );
    let connect = url_of(
        app.cli(&[
            "--json",
            "company",
            "connect-url",
            "northwind",
            "--as",
            "tech",
        ])
        .await,
    );
    assert_ne!(
        client_id(&url),
        client_id(&connect),
        "the Exchange app, not the connect app"
    );

    let back = accept_at_microsoft(&app, &url, NORTHWIND).await;
    let r = app.http.get(app.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let check = app
        .cli(&["--json", "company", "check", "northwind", "--as", "tech"])
        .await;
    assert!(check.success, "{check:?}");
    assert_ne!(
        check.json()["status"]["state"],
        "not_configured",
        "{}",
        check.stdout
    );
    // Single use.
    let r = app.http.get(app.url(&back)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // No connection, no Exchange consent URL; a viewer may not ask.
    let manager = demo_login(&app, "manager").await;
    let (s, _) = manager
        .api_post("/api/v1/companies/fabrikam/disconnect", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let out = app
        .cli(&[
            "--json",
            "company",
            "authorize-url",
            "fabrikam",
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "company_not_connected");
    let out = app
        .cli(&[
            "--json",
            "company",
            "authorize-url",
            "contoso",
            "--as",
            "viewer",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    assert_eq!(out.json()["error"]["code"], "role_too_low");
    app.stop().await;
}
