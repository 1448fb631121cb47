//! Attacks: edge. API tokens draw from one budget on MCP and the JSON API, per token and per
//! company; every route refuses a `Host` that is not this server's (DNS rebinding), and a
//! browser change must come from the configured public origin, never from whatever origin
//! matches the `Host` the attacker chose; the pages' CSP lets forms go only to this server and
//! the Microsoft login host.

use std::sync::Arc;

use exogate_core::CompanyId;
use exogate_core::Timestamp;
use exogate_core::ports::ManualClock;
use m365_emulator::Scenario;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp_http::{call, client, client_at, err, ok, token_for};
use crate::support::TestApp;

/// The demo world with `limits` (a `[limits]` table body) on a clock that stands still.
async fn start_limited(limits: &str) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_unix_secs(1_900_000_000)));
    let limits = limits.to_owned();
    let t = TestApp::start_with_clock(
        Scenario::demo(),
        move |text| format!("{text}[limits]\n{limits}\n"),
        clock.clone(),
    )
    .await;
    (t, clock)
}

async fn get_bearer(t: &TestApp, token: &str, path: &str) -> reqwest::Response {
    t.http
        .get(t.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("answers")
}

/// Asserts a `429 rate_limited` with a `Retry-After` of at least a second; returns the message.
async fn assert_limited(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_making_200_api_calls_is_limited_like_on_mcp() {
    // The default budget (120 a minute), on a clock that does not move.
    let (t, clock) = start_limited("").await;
    let mut codes = Vec::new();
    let mut refused = None;
    for _ in 0..200 {
        let r = get_bearer(&t, &t.mcp_token, "/api/v1/companies").await;
        codes.push(r.status());
        if r.status() == StatusCode::TOO_MANY_REQUESTS && refused.is_none() {
            refused = Some(r);
        }
    }
    let served = codes.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(served, 120, "{codes:?}");
    let message = assert_limited(refused.expect("some calls refused")).await;
    assert!(message.contains("API token"), "{message}");
    // The same token is out of budget on MCP too: one budget for both surfaces.
    let mcp = client(&t).await;
    let (e, _) = err(&call(&mcp, "list_companies", json!({})).await);
    assert_eq!(
        (e["code"].as_str(), e["scope"].as_str()),
        (Some("rate_limited"), Some("token"))
    );
    // A person is not token-limited.
    let session = login_api(&t, "tech").await;
    for _ in 0..130 {
        let r = t
            .http
            .get(t.url("/api/v1/companies"))
            .header("cookie", &session.0)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The budget refills with the app's clock.
    clock.advance_secs(60);
    assert_eq!(
        get_bearer(&t, &t.mcp_token, "/api/v1/companies")
            .await
            .status(),
        StatusCode::OK
    );
    ok(&call(&mcp, "list_companies", json!({})).await);
    mcp.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn mcp_calls_spend_the_api_budget_of_the_same_token() {
    let (t, _clock) = start_limited("token_per_minute = 4").await;
    let token = token_for(&t, "tech").await;
    let mcp = client_at(&t.base_url, &token).await;
    for _ in 0..2 {
        ok(&call(&mcp, "list_companies", json!({})).await);
    }
    for _ in 0..2 {
        assert_eq!(
            get_bearer(&t, &token, "/api/v1/me").await.status(),
            StatusCode::OK
        );
    }
    assert_limited(get_bearer(&t, &token, "/api/v1/me").await).await;
    let (e, _) = err(&call(&mcp, "list_companies", json!({})).await);
    assert_eq!(e["code"], "rate_limited");
    // Another token has its own budget.
    assert_eq!(
        get_bearer(&t, &t.mcp_token, "/api/v1/me").await.status(),
        StatusCode::OK
    );
    mcp.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test]
async fn many_tokens_against_one_company_hit_the_company_limit() {
    let (t, _clock) = start_limited("company_per_minute = 5").await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        tokens.push(token_for(&t, "tech").await);
    }
    // Three tokens, each well inside its own budget, five calls naming contoso between them.
    let paths = [
        "/api/v1/companies/contoso",
        "/api/v1/companies/contoso/status",
        "/api/v1/companies/contoso/mailboxes/sales/full-access",
        "/api/v1/inventory/companies/contoso",
        "/api/v1/requests?company=contoso",
    ];
    for (i, path) in paths.iter().enumerate() {
        let r = get_bearer(&t, &tokens[i % 3], path).await;
        assert_ne!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    // The sixth, from any token and either surface, is refused.
    let message =
        assert_limited(get_bearer(&t, &tokens[2], "/api/v1/companies/contoso").await).await;
    assert!(message.contains("company `contoso`"), "{message}");
    let r = t
        .http
        .post(t.url("/api/v1/requests"))
        .bearer_auth(&tokens[0])
        .json(&json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": "carol"}))
        .send()
        .await
        .unwrap();
    assert_limited(r).await;
    let mcp = client_at(&t.base_url, &tokens[1]).await;
    let (e, _) = err(&call(
        &mcp,
        "view_mailbox_permissions",
        json!({"company": "contoso", "mailbox": "sales"}),
    )
    .await);
    assert_eq!(
        (e["code"].as_str(), e["scope"].as_str()),
        (Some("rate_limited"), Some("company"))
    );
    // Nothing was asked of contoso's tenant on their behalf.
    let asked = t
        .app
        .store
        .list_requests(&Default::default())
        .await
        .unwrap();
    assert!(asked.is_empty(), "{asked:?}");
    // Another company has its own budget, and people are not limited.
    assert_eq!(
        get_bearer(&t, &tokens[0], "/api/v1/companies/fabrikam")
            .await
            .status(),
        StatusCode::OK
    );
    let r = call(
        &mcp,
        "find_user_access",
        json!({"company": "fabrikam", "user": "alice"}),
    )
    .await;
    if r.is_error == Some(true) {
        assert_ne!(err(&r).0["code"], "rate_limited");
    }
    let session = login_api(&t, "tech").await;
    let r = t
        .http
        .get(t.url("/api/v1/companies/contoso"))
        .header("cookie", &session.0)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    mcp.cancel().await.unwrap();
    t.stop().await;
}

/// Signs in through the API with the right `Host`: (cookie, CSRF token).
async fn login_api(t: &TestApp, name: &str) -> (String, String) {
    let r = t
        .http
        .post(t.url("/api/v1/login"))
        .json(&json!({"user": name, "password": t.password(name)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = session_cookie(&r).expect("session cookie");
    let body: Value = r.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("exogate_session=") && !v.starts_with("exogate_session=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

fn port(t: &TestApp) -> String {
    t.base_url.rsplit(':').next().unwrap().to_owned()
}

async fn connected(t: &TestApp, id: &str) -> bool {
    t.app
        .store
        .get_company(&CompanyId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap()
        .connection
        .is_some()
}

#[tokio::test]
async fn a_rebinding_host_with_a_matching_origin_can_neither_log_in_nor_disconnect() {
    let t = TestApp::start().await;
    let host = format!("evil.example:{}", port(&t));
    let origin = format!("http://{host}");
    // Sign-in, page and API, from the rebound name.
    let r = t
        .http
        .post(t.url("/login"))
        .header("host", &host)
        .header("origin", &origin)
        .header("sec-fetch-site", "same-origin")
        .form(&[("user", "tech"), ("password", t.password("tech").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(session_cookie(&r).is_none());
    let r = t
        .http
        .post(t.url("/api/v1/login"))
        .header("host", &host)
        .header("origin", &origin)
        .json(&json!({"user": "tech", "password": t.password("tech")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(session_cookie(&r).is_none());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "host_not_allowed");
    // Even with a session the browser holds for this address, no disconnect goes through.
    let (cookie, csrf) = login_api(&t, "admin").await;
    let r = t
        .http
        .post(t.url("/companies/contoso/disconnect"))
        .header("host", &host)
        .header("origin", &origin)
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    let r = t
        .http
        .post(t.url("/api/v1/companies/contoso/disconnect"))
        .header("host", &host)
        .header("origin", &origin)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    assert!(connected(&t, "contoso").await, "contoso was disconnected");
    // Every route, read-only ones and bearer ones too.
    for path in [
        "/",
        "/login",
        "/companies",
        "/consent/callback?state=x&tenant=y",
        "/healthz",
        "/metrics",
        "/assets/app.css",
        "/api/v1/me",
        "/api/v1/companies",
        "/nowhere",
    ] {
        let r = t
            .http
            .get(t.url(path))
            .header("host", &host)
            .bearer_auth(&t.mcp_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{path}");
    }
    // The demo answers to loopback names on any port, and to its public URL.
    for host in [format!("localhost:{}", port(&t)), "127.0.0.1:1".to_owned()] {
        let r = t
            .http
            .get(t.url("/healthz"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{host}");
    }
    t.stop().await;
}

#[tokio::test]
async fn a_wrong_origin_with_the_right_host_is_refused_for_changes() {
    let t = TestApp::start().await;
    let (cookie, csrf) = login_api(&t, "admin").await;
    // A forged Sec-Fetch-Site does not make a foreign Origin acceptable.
    for (origin, site) in [
        ("http://evil.example", Some("same-origin")),
        ("http://evil.example", None),
        ("null", None),
        ("null", Some("cross-site")),
        ("null", Some("same-site")),
    ] {
        let mut req = t
            .http
            .post(t.url("/api/v1/companies/contoso/disconnect"))
            .header("origin", origin)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin} {site:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "origin_not_allowed");
        let mut req = t.http.post(t.url("/login")).header("origin", origin);
        if let Some(site) = site {
            req = req.header("sec-fetch-site", site);
        }
        let r = req
            .form(&[("user", "tech"), ("password", t.password("tech").as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin}");
        assert!(session_cookie(&r).is_none());
    }
    // A cross-site fetch without Origin is refused too.
    let r = t
        .http
        .post(t.url("/companies/contoso/disconnect"))
        .header("sec-fetch-site", "cross-site")
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(connected(&t, "contoso").await, "contoso was disconnected");
    // The pages' own forms: browsers send `Origin: null` (no-referrer) with same-origin.
    let r = t
        .http
        .post(t.url("/login"))
        .header("origin", "null")
        .header("sec-fetch-site", "same-origin")
        .form(&[("user", "tech"), ("password", t.password("tech").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Reads from anywhere, and changes from the public origin, work.
    let r = t
        .http
        .get(t.url("/api/v1/companies/contoso"))
        .header("origin", "http://evil.example")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = t
        .http
        .post(t.url("/api/v1/companies/contoso/disconnect"))
        .header("origin", t.app.public_url.origin().ascii_serialization())
        .header("sec-fetch-site", "same-origin")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!connected(&t, "contoso").await);
    t.stop().await;
}

#[tokio::test]
async fn the_csp_lets_forms_go_only_to_this_server_and_the_login_host() {
    let t = TestApp::start().await;
    let r = t.http.get(t.url("/login")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    let login = url::Url::parse(&t.emulator.base_url)
        .unwrap()
        .origin()
        .ascii_serialization();
    let form_action = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action"))
        .expect("a form-action directive");
    assert_eq!(form_action, format!("form-action 'self' {login}"));
    t.stop().await;
}
