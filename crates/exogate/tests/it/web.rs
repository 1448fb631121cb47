//! The web app and JSON API through the real router on 127.0.0.1: login and sessions, CSRF, the
//! consent callback's refusals (replay, parallel replay, expiry, another session, another
//! company's tenant, `error` with `admin_consent=True`, AADSTS50020), a real connect through the
//! emulator's consent page, hostile display names, the JSON API and its error shapes (insta
//! snapshots), `/healthz` and `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use exogate::app::App;
use exogate_core::ports::ManualClock;
use exogate_core::request::RequestState;
use exogate_core::{Company, CompanyId, RequestId, Timestamp};
use m365_emulator::{Emulator, Scenario};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub const NORTHWIND: &str = "33333333-3333-4333-8333-333333333333";
pub const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
pub const FABRIKAM: &str = "22222222-2222-4222-8222-222222222222";

/// The demo world served by the real router, with a manual clock the test drives.
pub struct WebApp {
    pub base: String,
    pub app: Arc<App>,
    pub clock: Arc<ManualClock>,
    pub emulator: Emulator,
    pub mcp_token: String,
    pub http: reqwest::Client,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl WebApp {
    pub async fn start() -> WebApp {
        Self::start_with(|_| {}).await
    }

    /// As [`WebApp::start`], with the configuration passed through `edit` first.
    pub async fn start_with(edit: impl FnOnce(&mut exogate::config::Config)) -> WebApp {
        let emulator = m365_emulator::start(Scenario::demo())
            .await
            .expect("emulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let config = exogate::demo::config(
            dir.path(),
            None,
            &addr.to_string(),
            &base,
            &emulator.base_url,
        )
        .expect("config");
        let mut config = config;
        edit(&mut config);
        let now = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
        let clock = Arc::new(ManualClock::new(now));
        let app = exogate::server::build_app_with_clock(&config, clock.clone())
            .await
            .expect("app");
        let (_users, mcp_token) = exogate::demo::seed(&app).await.expect("seed");
        let shutdown = CancellationToken::new();
        let mut worker = exogate::worker::WorkerSettings::new(config.recheck_interval);
        worker.poll = Duration::from_millis(50);
        let server = tokio::spawn(exogate::server::serve(
            app.clone(),
            listener,
            Some(worker),
            shutdown.clone(),
        ));
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        WebApp {
            base,
            app,
            clock,
            emulator,
            mcp_token,
            http,
            shutdown,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn password(name: &str) -> &'static str {
        exogate::demo::USERS
            .iter()
            .find(|u| u.0 == name)
            .map(|u| u.1)
            .expect("demo user")
    }

    /// Signs in through the login form.
    pub async fn login(&self, name: &str) -> Browser {
        sign_in(&self.http, &self.base, name, Self::password(name)).await
    }

    pub async fn company(&self, id: &str) -> Company {
        self.app
            .store
            .get_company(&CompanyId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap()
    }

    pub async fn audit_head(&self) -> Option<(i64, String)> {
        self.app.store.audit_head().await.unwrap()
    }

    /// Waits (woken by the app's events, no sleeping) until a request is terminal.
    pub async fn wait_terminal(&self, id: RequestId) -> exogate_core::request::ApprovalRequest {
        let mut events = self.app.events.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let r = self.app.store.get_request(id).await.unwrap().unwrap();
            if r.state.is_terminal() {
                return r;
            }
            self.app.worker_wake.notify_one();
            if tokio::time::timeout_at(deadline, events.recv())
                .await
                .is_err()
            {
                panic!("request {id} still {:?}", r.state);
            }
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("server").expect("server stops");
        self.emulator.shutdown().await.expect("emulator stops");
    }
}

/// A signed-in person: session cookie and CSRF token.
#[derive(Clone)]
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get");
        (r.status(), r.text().await.unwrap())
    }

    pub async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .expect("get")
    }

    /// A same-origin form POST (what the page's forms do).
    pub async fn form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
            .form(fields)
            .send()
            .await
            .expect("post")
    }

    pub async fn api_post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .send()
            .await
            .expect("post");
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.get_raw(path).await;
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Clicks Authorize: returns the consent URL the browser is sent to and its `state`.
    pub async fn authorize(&self, company: &str) -> (String, String) {
        let r = self
            .form(
                &format!("/companies/{company}/authorize"),
                &[("csrf", self.csrf.as_str())],
            )
            .await;
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

    /// Microsoft's redirect back to the callback with `query`.
    pub async fn callback(&self, query: &str) -> (StatusCode, String) {
        self.get(&format!("/consent/callback?{query}")).await
    }
}

/// Signs `name` in through the login form of the server at `base`, like a person; the CSRF
/// token comes from the sign-out form every page carries.
pub async fn sign_in(http: &reqwest::Client, base: &str, name: &str, password: &str) -> Browser {
    let r = http
        .post(format!("{base}/login"))
        .form(&[("user", name), ("password", password)])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {name}");
    let mut b = Browser {
        http: http.clone(),
        base: base.to_owned(),
        cookie: session_cookie(&r).expect("session cookie"),
        csrf: String::new(),
    };
    let page = b.get("/companies").await;
    b.csrf = extract(&page.1, "name=\"csrf\" value=\"", "\"").expect("csrf token in page");
    b
}

pub fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("exogate_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

pub fn extract(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(text[i..j].to_owned())
}

fn success_query(tenant: &str, state: &str) -> String {
    format!(
        "admin_consent=True&tenant={tenant}&scope=https%3A%2F%2Foutlook.office365.com%2F.default&state={state}"
    )
}

// ---------------------------------------------------------------------------------------------
// Login, sessions, CSRF
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_issues_a_new_http_only_lax_session_and_logout_ends_it() {
    let w = WebApp::start().await;
    // Not signed in: pages redirect to the login page, the API answers 401.
    let r = w.http.get(w.url("/companies")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let r = w.http.get(w.url("/api/v1/companies")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Wrong password.
    let r = w
        .http
        .post(w.url("/login"))
        .form(&[("user", "tech"), ("password", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(session_cookie(&r).is_none());
    // A good login sets HttpOnly + SameSite=Lax (no Secure on plain-HTTP loopback).
    let first = w.login("tech").await;
    let r = w
        .http
        .post(w.url("/login"))
        .header("cookie", &first.cookie)
        .form(&[("user", "tech"), ("password", WebApp::password("tech"))])
        .send()
        .await
        .unwrap();
    let raw = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("exogate_session="))
        .unwrap();
    assert!(raw.contains("HttpOnly"), "{raw}");
    assert!(raw.contains("SameSite=Lax"), "{raw}");
    assert!(raw.contains("Path=/"), "{raw}");
    let second = session_cookie(&r).unwrap();
    assert_ne!(second, first.cookie, "login must issue a new session id");
    // The id brought to the login is dead now.
    let (s, _) = first.get("/api/v1/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let b = Browser {
        cookie: second,
        ..first.clone()
    };
    let (s, body) = b.api_get("/api/v1/me").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["user"]["name"], "tech");
    assert_eq!(body["user"]["role"], "technician");
    // Logout with the token from the page ends the session.
    let b = w.login("tech").await;
    let r = b.form("/logout", &[("csrf", b.csrf.as_str())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, _) = b.api_get("/api/v1/me").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Failed and successful logins are audited.
    let events = w.app.store.recent_audit(None, None, 100).await.unwrap();
    assert!(events.iter().any(|e| e.event.kind == "auth.login_failed"));
    assert!(events.iter().any(|e| e.event.kind == "auth.login"));
    w.stop().await;
}

#[tokio::test]
async fn forms_and_session_api_changes_need_the_csrf_token_and_same_origin() {
    let w = WebApp::start().await;
    let b = w.login("tech").await;
    // No token in the form.
    let r = b.form("/companies/northwind/authorize", &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Wrong token.
    let r = b
        .form("/companies/northwind/authorize", &[("csrf", "forged")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Right token, but a cross-site request (CsrfLayer).
    let r = w
        .http
        .post(w.url("/companies/northwind/authorize"))
        .header("cookie", &b.cookie)
        .header("origin", "http://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", b.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Session API change without the header.
    let r = w
        .http
        .post(w.url("/api/v1/companies/contoso/status/check"))
        .header("cookie", &b.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "csrf_failed");
    // No consent state was issued by any of these.
    let (s, _) = b
        .api_post("/api/v1/companies/contoso/status/check", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Consent callback
// ---------------------------------------------------------------------------------------------

/// What must not change when a callback is refused (the audit head moves by the refusal).
async fn snapshot(w: &WebApp) -> (Vec<Company>, Option<(i64, String)>) {
    (
        w.app.store.list_companies().await.unwrap(),
        w.audit_head().await,
    )
}

/// No company changed since `before`, and exactly `n` `consent.refused` events were written.
async fn assert_refused_only(w: &WebApp, before: &(Vec<Company>, Option<(i64, String)>), n: usize) {
    assert_eq!(
        snapshot(w).await.0,
        before.0,
        "a refused callback changed a company"
    );
    assert_eq!(
        audit_kinds_since(w, before).await,
        vec!["consent.refused"; n]
    );
}

/// The kinds of the audit events written since `before`.
async fn audit_kinds_since(
    w: &WebApp,
    before: &(Vec<Company>, Option<(i64, String)>),
) -> Vec<String> {
    let after = before.1.as_ref().map_or(0, |h| h.0);
    let events = w.app.store.list_audit(after, 100).await.unwrap();
    events.into_iter().map(|e| e.event.kind).collect()
}

#[tokio::test]
async fn replayed_consent_state_is_refused_also_in_parallel() {
    let w = WebApp::start().await;
    let b = w.login("tech").await;
    // Two parallel uses of one fresh state: exactly one proceeds.
    let (_, state) = b.authorize("northwind").await;
    let q = success_query(NORTHWIND, &state);
    let (r1, r2) = tokio::join!(b.callback(&q), b.callback(&q));
    let codes = [r1.0, r2.0];
    assert_eq!(
        codes.iter().filter(|c| **c == StatusCode::OK).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes
            .iter()
            .filter(|c| **c == StatusCode::BAD_REQUEST)
            .count(),
        1
    );
    // Replays of the used state, two at once, change nothing.
    let before = snapshot(&w).await;
    let (a, c) = tokio::join!(b.callback(&q), b.callback(&q));
    for (status, body) in [a, c] {
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("already used"), "{body}");
        assert!(body.contains("data-outcome=\"refused\""));
    }
    assert_refused_only(&w, &before, 2).await;
    w.stop().await;
}

#[tokio::test]
async fn expired_consent_state_is_refused() {
    let w = WebApp::start().await;
    let b = w.login("tech").await;
    let (_, state) = b.authorize("northwind").await;
    w.clock.advance_secs(10 * 60 + 1);
    let before = snapshot(&w).await;
    let (s, body) = b.callback(&success_query(NORTHWIND, &state)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("older than 10 minutes"), "{body}");
    assert_refused_only(&w, &before, 1).await;
    // Just inside the limit still works (the boundary is 10 minutes).
    let (_, state) = b.authorize("northwind").await;
    w.clock.advance_secs(10 * 60 - 1);
    let (s, _) = b.callback(&success_query(NORTHWIND, &state)).await;
    assert_eq!(s, StatusCode::OK);
    w.stop().await;
}

#[tokio::test]
async fn consent_state_of_another_session_or_company_is_refused() {
    let w = WebApp::start().await;
    let tech = w.login("tech").await;
    let other = w.login("tech").await; // same user, another browser
    let manager = w.login("manager").await;
    let before = snapshot(&w).await;
    for b in [&other, &manager] {
        let (_, state) = tech.authorize("northwind").await;
        let (s, body) = b.callback(&success_query(NORTHWIND, &state)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(body.contains("another browser session"), "{body}");
    }
    assert_refused_only(&w, &before, 2).await;
    // With no session at all.
    let (_, state) = tech.authorize("northwind").await;
    let r = w
        .http
        .get(w.url(&format!(
            "/consent/callback?{}",
            success_query(NORTHWIND, &state)
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Each refusal is audited and changes nothing else.
    assert_eq!(snapshot(&w).await.0, before.0);
    let kinds = audit_kinds_since(&w, &before).await;
    assert_eq!(kinds, ["consent.refused"; 3]);
    // A state issued for Northwind answered with Fabrikam's (another company's) tenant.
    let before = snapshot(&w).await;
    let (_, state) = tech.authorize("northwind").await;
    let (s, body) = tech.callback(&success_query(FABRIKAM, &state)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("data-outcome=\"wrong_tenant\""), "{body}");
    assert_eq!(snapshot(&w).await.0, before.0);
    assert_eq!(audit_kinds_since(&w, &before).await, ["consent.refused"]);
    w.stop().await;
}

#[tokio::test]
async fn consent_error_even_with_admin_consent_true_changes_nothing() {
    let w = WebApp::start().await;
    let b = w.login("tech").await;
    let before = snapshot(&w).await;
    let (_, state) = b.authorize("northwind").await;
    let q = format!(
        "error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent&admin_consent=True&tenant={NORTHWIND}&state={state}"
    );
    let (s, body) = b.callback(&q).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("data-outcome=\"declined\""), "{body}");
    let (_, state) = b.authorize("northwind").await;
    let q = format!(
        "admin_consent=True&tenant={NORTHWIND}&error=server_error&error_description=AADSTS90033%3a+busy&state={state}"
    );
    let (s, body) = b.callback(&q).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("data-outcome=\"failed\""), "{body}");
    assert_refused_only(&w, &before, 2).await;
    w.stop().await;
}

#[tokio::test]
async fn tenant_mismatch_and_aadsts50020_show_wrong_tenant_and_change_nothing() {
    let w = WebApp::start().await;
    let b = w.login("tech").await;
    let before = snapshot(&w).await;
    // Consent landed in Contoso although Northwind's tenant was asked for.
    let (_, state) = b.authorize("northwind").await;
    let (s, body) = b.callback(&success_query(CONTOSO, &state)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("Consent went to another tenant"), "{body}");
    assert_refused_only(&w, &before, 1).await;
    // An admin of another directory signed in (AADSTS50020).
    let (_, state) = b.authorize("northwind").await;
    let q = format!(
        "error=access_denied&error_description=AADSTS50020%3a+User+account+from+identity+provider+does+not+exist+in+tenant&admin_consent=True&state={state}"
    );
    let (s, body) = b.callback(&q).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("data-outcome=\"wrong_tenant\""), "{body}");
    assert!(body.contains("not your own"), "{body}");
    assert_refused_only(&w, &before, 2).await;
    // The integrations page and the status API of this session show the wrong-tenant state.
    let (_, page) = b.get("/companies/northwind/integrations").await;
    assert!(page.contains("data-state=\"wrong_tenant\""), "{page}");
    let (_, st) = b.api_get("/api/v1/companies/northwind/status").await;
    assert_eq!(st["state"], "wrong_tenant");
    assert_eq!(st["badge"], "Consent went to another tenant");
    w.stop().await;
}

#[tokio::test]
async fn connect_through_the_emulator_consent_page_verifies_and_stores_the_tenant() {
    let w = WebApp::start().await;
    let manager = w.login("manager").await;
    let (s, _) = manager
        .api_post("/api/v1/companies/northwind/disconnect", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(w.company("northwind").await.connection.is_none());
    let tech = w.login("tech").await;
    let r = tech
        .form(
            "/companies/northwind/connect",
            &[("csrf", tech.csrf.as_str()), ("tenant", NORTHWIND)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let consent = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(consent.starts_with(&w.emulator.base_url), "{consent}");
    assert!(
        consent.contains(&format!("/{NORTHWIND}/adminconsent")),
        "{consent}"
    );
    // The customer's admin accepts on "Microsoft's" page.
    let u = url::Url::parse(&consent).unwrap();
    let mut fields: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    fields.push(("account".into(), format!("admin:{NORTHWIND}")));
    fields.push(("action".into(), "accept".into()));
    let r = w
        .http
        .post(format!("{}{}", w.emulator.base_url, u.path()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND, "{}", r.text().await.unwrap());
    let back = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with(&w.url("/consent/callback?")), "{back}");
    let (s, body) = tech.get(&back[w.base.len()..]).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("data-outcome=\"connected\""), "{body}");
    let c = w.company("northwind").await;
    let conn = c.connection.expect("connected");
    assert_eq!(conn.tenant_id.to_string(), NORTHWIND);
    assert_eq!(conn.default_domain, "northwind.onmicrosoft.com");
    // Connected, but the Exchange app is not consented yet.
    assert_eq!(
        c.exchange_status.unwrap().state,
        exogate_core::ExchangeAdminState::NotConfigured
    );
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Hostile strings
// ---------------------------------------------------------------------------------------------

const HOSTILE: &str = "<script>alert(1)</script>Bo\u{202E}gnikcah\u{200B}b";

#[tokio::test]
async fn hostile_display_names_render_as_inert_visible_text() {
    let w = WebApp::start().await;
    let r = w
        .http
        .post(format!(
            "{}/_emulator/exchange/{CONTOSO}/objects",
            w.emulator.base_url
        ))
        .json(&json!({"type": "user_mailbox", "name": "mallory", "display_name": HOSTILE}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let r = w
        .http
        .post(format!(
            "{}/_emulator/exchange/{CONTOSO}/objects",
            w.emulator.base_url
        ))
        .json(&json!({"type": "shared_mailbox", "name": "secret", "display_name": HOSTILE, "hidden_from_address_lists": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let tech = w.login("tech").await;
    let inert = |page: &str| {
        assert!(!page.contains("<script>alert"), "raw markup in page");
        assert!(!page.contains('\u{202E}'), "raw bidi override in page");
        assert!(!page.contains('\u{200B}'), "raw zero-width space in page");
        assert!(
            page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "markup escaped: {}",
            extract(page, "<main>", "</main>").unwrap_or_default()
        );
        assert!(
            page.contains("&#60;U+202E&#62;"),
            "bidi override shown escaped"
        );
        assert!(
            page.contains("&#60;U+200B&#62;"),
            "zero-width space shown escaped"
        );
    };
    let (s, page) = tech
        .get("/companies/contoso/mailbox?identity=secret@contoso.onmicrosoft.com")
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    inert(&page);
    assert!(
        page.contains("id=\"hidden-warning\""),
        "hidden-from-GAL warning"
    );
    // A request naming mallory: the approvals page and the request page stay inert and warn.
    let (s, req) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "mallory"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    // The API gives the name through the same sanitizer as the pages and MCP.
    assert_eq!(
        req["actions"][0]["trustee"]["display_name"],
        exogate_core::text::tenant_text(HOSTILE)
    );
    // Asking again for the same change answers the pending request: 200, same id.
    let (s, again) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "mallory"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["id"], req["id"]);
    let manager = w.login("manager").await;
    let (_, page) = manager.get("/approvals").await;
    inert(&page);
    assert!(page.contains("invisible or bidi control characters"));
    let (_, page) = manager
        .get(&format!("/requests/{}", req["id"].as_str().unwrap()))
        .await;
    inert(&page);
    w.stop().await;
}

// ---------------------------------------------------------------------------------------------
// JSON API
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn api_request_lifecycle_with_token_and_session() {
    let w = WebApp::start().await;
    let bearer = format!("Bearer {}", w.mcp_token);
    // The agent's token reads and asks.
    let r = w
        .http
        .get(w.url("/api/v1/companies"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let ids: Vec<&str> = body["companies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["contoso", "fabrikam", "northwind", "tailspin"]);
    let r = w
        .http
        .get(w.url("/api/v1/companies/contoso/mailboxes/sales/full-access"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let fa: Value = r.json().await.unwrap();
    assert_eq!(fa["mailbox"]["address"], "sales@contoso.onmicrosoft.com");
    let r = w
        .http
        .post(w.url("/api/v1/requests"))
        .header("authorization", &bearer)
        .header("x-exogate-agent", "test-agent")
        .json(&json!({"company": "contoso", "tool": "grant_full_access", "mailbox": "sales", "trustee": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let req: Value = r.json().await.unwrap();
    assert_eq!(req["state"], "pending");
    assert_eq!(req["channel"], "mcp");
    assert_eq!(req["agent"], "test-agent");
    assert_eq!(req["role_needed"], "manager");
    assert_eq!(req["actions"][0]["automapping"], true);
    let id = req["id"].as_str().unwrap().to_owned();
    // The token can never approve.
    let r = w
        .http
        .post(w.url(&format!("/api/v1/requests/{id}/approve")))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "decision_via_mcp");
    // A manager's session approves, binding to the digest.
    let m = w.login("manager").await;
    let (s, e) = m
        .api_post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({"digest": "0".repeat(64)}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "digest_mismatch");
    let (s, a) = m
        .api_post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({"reason": "ticket 42", "digest": req["digest"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert_eq!(a["decision"], "approved");
    let done = w.wait_terminal(RequestId::parse(&id).unwrap()).await;
    assert_eq!(done.state, RequestState::Succeeded);
    let (_, shown) = m.api_get(&format!("/api/v1/requests/{id}")).await;
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(shown["results"][0]["after"], "present");
    assert_eq!(shown["results"][0]["verified"], true);
    assert_eq!(shown["can_revert"], true);
    // A second decision loses.
    let (s, e) = m
        .api_post(&format!("/api/v1/requests/{id}/reject"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(e["error"]["code"], "already_decided");
    // Revert creates a new pending request for the inverse.
    let (s, rev) = m
        .api_post(&format!("/api/v1/requests/{id}/revert"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{rev}");
    assert_eq!(rev["tool"], "remove_full_access");
    assert_eq!(rev["revert_of"], id.as_str());
    // Cancel it (the requester).
    let (s, c) = m
        .api_post(
            &format!("/api/v1/requests/{}/cancel", rev["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["state"], "cancelled");
    // Lists, audit and its verification.
    let (_, list) = m.api_get("/api/v1/requests?state=succeeded").await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 1);
    let (_, audit) = m.api_get(&format!("/api/v1/audit?request={id}")).await;
    let kinds: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"request.created"), "{kinds:?}");
    assert!(kinds.contains(&"request.approved"), "{kinds:?}");
    let (_, audit) = m
        .api_get("/api/v1/audit?kind=request.approved&actor=manager")
        .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 1);
    let (s, v) = m.api_get("/api/v1/audit/verify").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["intact"], true);
    w.stop().await;
}

#[tokio::test]
async fn api_error_bodies_have_stable_codes() {
    let w = WebApp::start().await;
    let tech = w.login("tech").await;
    let viewer = w.login("viewer").await;
    let mut shapes = serde_json::Map::new();
    let mut record = |name: &str, status: StatusCode, body: Value| {
        shapes.insert(
            name.to_owned(),
            json!({"status": status.as_u16(), "body": body}),
        );
    };
    let r = w.http.get(w.url("/api/v1/companies")).send().await.unwrap();
    record("no_credentials", r.status(), r.json().await.unwrap());
    let r = w
        .http
        .get(w.url("/api/v1/companies"))
        .header("authorization", "Bearer not-a-token")
        .send()
        .await
        .unwrap();
    record("unknown_token", r.status(), r.json().await.unwrap());
    let (s, b) = tech.api_get("/api/v1/companies/nosuch").await;
    record("unknown_company", s, b);
    let (s, b) = tech.api_get("/api/v1/companies/Not%20An%20Id").await;
    record("bad_company_id", s, b);
    let (s, b) = tech
        .api_get("/api/v1/requests/00000000-0000-7000-8000-000000000000")
        .await;
    record("unknown_request", s, b);
    let (s, b) = tech
        .api_get("/api/v1/companies/contoso/mailboxes/nobody/full-access")
        .await;
    record("unknown_mailbox", s, b);
    let (s, b) = tech
        .api_get("/api/v1/companies/contoso/mailboxes/a%3Bb/full-access")
        .await;
    record("bad_identity", s, b);
    let (s, b) = tech
        .api_get("/api/v1/companies/tailspin/mailboxes/sales/full-access")
        .await;
    record("tenant_not_found", s, b);
    let (s, b) = tech.api_get("/api/v1/nothing-here").await;
    record("no_route", s, b);
    let (s, b) = tech.api_get("/api/v1/requests?state=done").await;
    record("bad_state_filter", s, b);
    let r = w
        .http
        .post(w.url("/api/v1/requests"))
        .header("cookie", &tech.cookie)
        .header("x-csrf-token", &tech.csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    record("malformed_json", r.status(), r.json().await.unwrap());
    let r = w
        .http
        .post(w.url("/api/v1/requests"))
        .header("cookie", &tech.cookie)
        .json(&json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"}))
        .send()
        .await
        .unwrap();
    record("missing_csrf_header", r.status(), r.json().await.unwrap());
    let (s, b) = viewer
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"}),
        )
        .await;
    record("viewer_asks", s, b);
    let (s, b) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "view_mailbox_permissions", "mailbox": "sales", "trustee": "bob"}),
        )
        .await;
    record("not_a_write_tool", s, b);
    let (s, b) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "fabrikam", "tool": "grant_send_as", "mailbox": "sales", "trustee": "bob"}),
        )
        .await;
    record("role_missing_tenant", s, b);
    let (s, req) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "carol"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{req}");
    let id = req["id"].as_str().unwrap();
    let (s, b) = tech
        .api_post(&format!("/api/v1/requests/{id}/approve"), json!({}))
        .await;
    record("technician_approves_high", s, b);
    let (s, b) = viewer
        .api_post(&format!("/api/v1/requests/{id}/cancel"), json!({}))
        .await;
    record("viewer_cancels", s, b);
    let (s, b) = tech
        .api_post(&format!("/api/v1/requests/{id}/revert"), json!({}))
        .await;
    record("revert_pending", s, b);
    let (s, b) = tech.api_get("/api/v1/audit/verify").await;
    record("technician_verifies_audit", s, b);
    let r = w
        .http
        .post(w.url("/api/v1/login"))
        .json(&json!({"user": "tech", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    record("login_failed", r.status(), r.json().await.unwrap());
    insta::assert_json_snapshot!("api_error_shapes", Value::Object(shapes));
    w.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics() {
    let w = WebApp::start().await;
    let r = w.http.get(w.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let tech = w.login("tech").await;
    let (s, _) = tech
        .api_post(
            "/api/v1/requests",
            json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "carol"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let r = w.http.get(w.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    for line in [
        "exogate_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        "exogate_http_requests_total{method=\"POST\",route=\"/api/v1/requests\",status=\"201\"} 1",
        "exogate_http_requests_total{method=\"POST\",route=\"/login\",status=\"303\"} 1",
        "exogate_approval_requests{state=\"pending\"} 1",
        "exogate_companies{exchange_state=\"configured\"} 1",
        "exogate_store_up 1",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
    assert!(text.contains(
        "exogate_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1"
    ));
    w.stop().await;
}

#[tokio::test]
async fn pages_render_for_each_role() {
    let w = WebApp::start().await;
    let tech = w.login("tech").await;
    let (s, page) = tech.get("/companies").await;
    assert_eq!(s, StatusCode::OK);
    for (id, badge) in [
        ("contoso", "Exchange Admin"),
        ("fabrikam", "Role missing"),
        ("northwind", "Not configured"),
        ("tailspin", "Tenant ID not found"),
    ] {
        let row = extract(&page, &format!("id=\"company-{id}\""), "</tr>").unwrap();
        assert!(row.contains(badge), "{id}: {row}");
    }
    let (s, page) = tech.get("/companies/tailspin/integrations").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Disconnect and reconnect the Microsoft 365 integration"));
    let (s, page) = tech.get("/companies/contoso/mailbox?identity=sales").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"section-full-access\""));
    assert!(page.contains("id=\"section-send-on-behalf\""));
    // A technician asks through the form; the request page shows it pending.
    let r = tech
        .form(
            "/companies/contoso/requests",
            &[
                ("csrf", tech.csrf.as_str()),
                ("tool", "grant_full_access"),
                ("mailbox", "sales"),
                ("trustee", "bob"),
                ("automapping", "true"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let (_, page) = tech.get(&loc).await;
    assert!(page.contains("data-request-state=\"pending\""));
    assert!(
        page.contains("You cannot decide this request"),
        "a technician cannot approve High"
    );
    // Only those who may decide see the buttons.
    let viewer = w.login("viewer").await;
    let (_, page) = viewer.get("/approvals").await;
    assert!(!page.contains("class=\"approve\""));
    let manager = w.login("manager").await;
    let (_, page) = manager.get("/approvals").await;
    assert!(page.contains("class=\"approve\""));
    let (s, page) = manager.get("/audit?kind=request.created&verify=1").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Audit chain intact"), "{page}");
    assert!(page.contains("request.created"));
    let (s, page) = manager.get("/audit?from=yesterday").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("RFC 3339"));
    // Unknown pages answer the error page.
    let (s, page) = manager.get("/nothing").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(page.contains("route_not_found"));
    w.stop().await;
}
