//! OAuth sign-in of remote MCP clients, through the front door: discovery, registration (DCR
//! and Client ID Metadata Documents), the sign-in and consent forms, the token endpoint, `/mcp`
//! acting as the person who consented, and the Connected agents page.

use std::sync::Arc;

use exogate_core::ports::{Clock, ManualClock};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp_http::{call, client_at, ok};
use crate::support::TestApp;
use crate::web::{Browser, extract, sign_in};

pub const REDIRECT: &str = "http://127.0.0.1:4711/callback";
pub const VERIFIER: &str = "a-pkce-verifier-that-is-long-enough-to-be-valid-0123456789";

/// The S256 challenge of [`VERIFIER`].
pub fn challenge(verifier: &str) -> String {
    exogate_core::oauth::pkce_challenge(verifier)
}

/// A test app on a clock the test drives.
pub async fn start_on_clock(edit: impl FnOnce(String) -> String) -> (TestApp, Arc<ManualClock>) {
    let now = exogate_core::Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let clock = Arc::new(ManualClock::new(now));
    let t = TestApp::start_with_clock(
        m365_emulator::Scenario::demo(),
        edit,
        clock.clone() as Arc<dyn Clock>,
    )
    .await;
    (t, clock)
}

/// Registers a client through DCR; returns its `client_id`.
pub async fn register(t: &TestApp, redirect_uris: &[&str]) -> String {
    let r = t
        .http
        .post(t.url("/oauth/register"))
        .json(&json!({ "client_name": "Test Agent", "redirect_uris": redirect_uris }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert!(v.get("client_secret").is_none(), "{v}");
    v["client_id"].as_str().unwrap().to_owned()
}

/// The authorization request's parameters.
pub fn params(client_id: &str, redirect: &str, resource: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
        ("resource", resource),
        ("state", "st-1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

pub fn query(p: &[(String, String)]) -> String {
    let mut u = url::Url::parse("http://x/").unwrap();
    u.query_pairs_mut().extend_pairs(p);
    u.query().unwrap().to_owned()
}

/// The signed-in person opens the consent page and answers `decision`; returns the response
/// of the form POST.
pub async fn decide(b: &Browser, p: &[(String, String)], decision: &str) -> reqwest::Response {
    let (status, page) = b.get(&format!("/oauth/authorize?{}", query(p))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let csrf = extract(&page, "name=\"csrf\" value=\"", "\"").expect("csrf on the consent page");
    let mut fields: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    fields.push(("csrf", &csrf));
    fields.push(("decision", decision));
    b.form("/oauth/authorize", &fields).await
}

/// The query of a redirect `Location` as pairs.
pub fn location_query(r: &reqwest::Response) -> Vec<(String, String)> {
    let loc = r.headers()["location"].to_str().unwrap();
    url::Url::parse(loc)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn get<'a>(q: &'a [(String, String)], key: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Signs `user` in and consents for `client_id`; returns the code.
pub async fn code_for(t: &TestApp, user: &str, client_id: &str) -> String {
    let b = sign_in(&t.http, &t.base_url, user, &t.password(user)).await;
    let r = decide(&b, &params(client_id, REDIRECT, &t.url("/mcp")), "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let q = location_query(&r);
    assert_eq!(get(&q, "state"), Some("st-1"));
    assert_eq!(get(&q, "iss"), Some(t.base_url.as_str()));
    get(&q, "code").expect("a code").to_owned()
}

/// POSTs to the token endpoint.
pub async fn token(t: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = t
        .http
        .post(t.url("/oauth/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    let s = r.status();
    (s, r.json().await.unwrap())
}

pub async fn exchange(
    t: &TestApp,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    let resource = t.url("/mcp");
    token(
        t,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", &resource),
        ],
    )
    .await
}

pub async fn refresh(t: &TestApp, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    token(
        t,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// A DCR client signed in as `user`: (client id, token answer).
pub async fn signed_in(t: &TestApp, user: &str) -> (String, Value) {
    let client_id = register(t, &[REDIRECT]).await;
    let code = code_for(t, user, &client_id).await;
    let (s, v) = exchange(t, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    (client_id, v)
}

/// The status of an MCP `initialize` POST with `token`.
pub async fn mcp_status(t: &TestApp, token: &str) -> StatusCode {
    t.http
        .post(t.url("/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"0"}}}))
        .send()
        .await
        .unwrap()
        .status()
}

/// GETs `url` and parses the JSON answer.
pub async fn get_json(t: &TestApp, url: &str) -> Value {
    t.http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Every audit event's kind and detail.
pub async fn audit_kinds(t: &TestApp) -> Vec<(String, String)> {
    t.app
        .store
        .list_audit(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.event.kind, e.event.detail))
        .collect()
}

#[tokio::test]
async fn the_401_and_the_discovery_documents_lead_a_client_to_the_authorization_server() {
    let t = TestApp::start().await;
    let r = t
        .http
        .post(t.url("/mcp"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let prm_url = t.url("/.well-known/oauth-protected-resource/mcp");
    assert!(www.starts_with("Bearer "), "{www}");
    assert!(
        www.contains(&format!("resource_metadata=\"{prm_url}\"")),
        "{www}"
    );

    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let prm = get_json(&t, &t.url(path)).await;
        assert_eq!(prm["resource"], t.url("/mcp"));
        assert_eq!(prm["authorization_servers"], json!([t.base_url]));
    }
    let asm = get_json(&t, &t.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(asm["issuer"], t.base_url);
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(asm["response_types_supported"], json!(["code"]));
    assert_eq!(asm["client_id_metadata_document_supported"], true);
    assert_eq!(asm["token_endpoint"], t.url("/oauth/token"));
    assert_eq!(asm["registration_endpoint"], t.url("/oauth/register"));
    t.stop().await;
}

#[tokio::test]
async fn a_signed_in_agent_acts_as_the_person_and_is_listed_revoked_and_audited() {
    let t = TestApp::start().await;
    // Not signed in: the authorization request goes through the login form and comes back.
    let client_id = register(&t, &[REDIRECT]).await;
    let p = params(&client_id, REDIRECT, &t.url("/mcp"));
    let r = t
        .http
        .get(t.url(&format!("/oauth/authorize?{}", query(&p))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    let next = url::Url::parse(&format!("http://x{login}"))
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    let r = t
        .http
        .post(t.url("/login"))
        .form(&[
            ("user", "tech"),
            ("password", &t.password("tech")),
            ("next", &next),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"].to_str().unwrap(), next);

    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    let (_, page) = b.get(&format!("/oauth/authorize?{}", query(&p))).await;
    assert!(page.contains("Test Agent"), "{page}");
    assert!(page.contains("id=\"redirect-host\">127.0.0.1<"), "{page}");
    assert!(
        page.contains("local-warning"),
        "a loopback redirect is pointed out: {page}"
    );
    assert!(
        page.contains("ask for delegation changes, which a person must approve"),
        "{page}"
    );

    // Deny: nothing but access_denied goes back.
    let r = decide(&b, &p, "deny").await;
    let q = location_query(&r);
    assert_eq!(get(&q, "error"), Some("access_denied"));
    assert_eq!(get(&q, "code"), None);

    let r = decide(&b, &p, "approve").await;
    let code = get(&location_query(&r), "code").unwrap().to_owned();
    let (s, tokens) = exchange(&t, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap();

    // The token acts as alice: Full Access on sales at Contoso is hers to read.
    let c = client_at(&t.base_url, access).await;
    let v = ok(&call(&c, "list_companies", json!({})).await);
    assert!(v.to_string().contains("contoso"), "{v}");
    drop(c);

    // Listed with its last use; revoked from the page, at once.
    let (_, agents) = b.get("/agents").await;
    assert!(agents.contains("Test Agent"), "{agents}");
    assert!(!agents.contains("never"), "last use is shown: {agents}");
    let grant = extract(&agents, "action=\"/agents/", "/revoke\"").unwrap();
    let r = b
        .form(&format!("/agents/{grant}/revoke"), &[("csrf", &b.csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(mcp_status(&t, access).await, StatusCode::UNAUTHORIZED);
    let (_, agents) = b.get("/agents").await;
    assert!(agents.contains("revoked"), "{agents}");

    // Bob cannot see or revoke alice's grant.
    let bob = sign_in(&t.http, &t.base_url, "viewer", &t.password("viewer")).await;
    let (_, bobs) = bob.get("/agents").await;
    assert!(!bobs.contains(&grant), "{bobs}");

    let kinds = audit_kinds(&t).await;
    let created: Vec<_> = kinds
        .iter()
        .filter(|(k, _)| k == "oauth.grant_created")
        .collect();
    assert_eq!(created.len(), 1, "{kinds:?}");
    assert!(created[0].1.contains(&grant), "{created:?}");
    assert!(!created[0].1.contains(access), "no token in the audit log");
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, _)| k == "oauth.grant_revoked")
            .count(),
        1
    );
    t.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_static_api_tokens_keep_working() {
    let t = TestApp::start().await;
    let (client_id, first) = signed_in(&t, "tech").await;
    let (s, second) = refresh(&t, &client_id, first["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(
        mcp_status(&t, second["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    let (s, third) = refresh(&t, &client_id, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{third}");
    // Another client cannot use the refresh token.
    let other = register(&t, &[REDIRECT]).await;
    let (s, v) = refresh(&t, &other, third["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // The demo's static API token still works on /mcp.
    assert_eq!(mcp_status(&t, &t.mcp_token).await, StatusCode::OK);
    t.stop().await;
}

/// Serves `doc` at `/client.json` on 127.0.0.1; returns its URL.
pub async fn serve_metadata(doc: impl FnOnce(&str) -> String) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let body = doc(&url);
    let router = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || {
            let body = body.clone();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

pub fn loopback_metadata_allowed(text: String) -> String {
    format!("{text}\n[oauth]\nmetadata_allow_loopback_http = true\n")
}

#[tokio::test]
async fn a_client_named_by_its_metadata_document_signs_in_without_registering() {
    let (t, _clock) = start_on_clock(loopback_metadata_allowed).await;
    let client_id = serve_metadata(|me| {
        json!({ "client_id": me, "client_name": "Doc Agent", "redirect_uris": [REDIRECT] })
            .to_string()
    })
    .await;
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    let (_, page) = b
        .get(&format!(
            "/oauth/authorize?{}",
            query(&params(&client_id, REDIRECT, &t.url("/mcp")))
        ))
        .await;
    assert!(page.contains("Doc Agent"), "{page}");
    let code = code_for(&t, "tech", &client_id).await;
    let (s, v) = exchange(&t, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        mcp_status(&t, v["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    t.stop().await;
}
