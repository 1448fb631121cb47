//! (hardening) Webhooks and the SMTP server never reach this machine or a private network
//! unless `[notifications] allow_private_targets` is on: refused when saved (API, page, CLI)
//! and again when sent (a name that resolves to loopback now, a literal saved while allowed),
//! and a redirect is never followed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use exogate_core::notifications::{DeliveryState, Target};
use exogate_core::ops::notify::TargetCheck as _;
use m365_emulator::Scenario;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::web::{Browser, sign_in};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Addresses of every refused class, as an admin might type them.
const INTERNAL: &[&str] = &[
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:5432/x",
    "http://10.0.0.5/x",
    "http://172.16.3.4/x",
    "http://192.168.0.1/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[::ffff:169.254.169.254]/x",
    "http://[fd00::1]/x",
    "http://[fe80::1]/x",
    "http://0.0.0.0/x",
    "http://0/x",
    // 127.0.0.1 written as one number and in hex: the URL parser reads them as the address.
    "http://2130706433/x",
    "http://0x7f.1/x",
    // A name that resolves to loopback.
    "http://localhost:9/x",
    "https://LOCALHOST./x",
];

async fn api_post(b: &Browser, path: &str, body: Value) -> (StatusCode, Value) {
    let r = b
        .http
        .post(format!("{}{path}", b.base))
        .header("cookie", &b.cookie)
        .header("x-csrf-token", &b.csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_targets_are_refused_at_save_on_every_surface() {
    // The default configuration: allow_private_targets = false.
    let app = TestApp::start().await;
    assert!(!app.app.notify.allow_private_targets, "off by default");
    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    for url in INTERNAL {
        let (s, v) = api_post(
            &admin,
            "/api/v1/notifications/webhooks",
            json!({"name": "x", "url": url, "format": "generic", "secret": SECRET}),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("target_not_allowed")),
            "{url}: {v}"
        );
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("public addresses") && msg.contains("allow_private_targets"),
            "{url}: a message in words: {msg}"
        );
    }
    // A manager asking about an internal address learns nothing about it: the role is checked
    // first (and nothing is resolved for them).
    let manager = sign_in(
        &app.http,
        &app.base_url,
        "manager",
        &app.password("manager"),
    )
    .await;
    let (s, v) = api_post(
        &manager,
        "/api/v1/notifications/webhooks",
        json!({"name": "x", "url": "http://localhost/x", "format": "generic", "secret": SECRET}),
    )
    .await;
    assert_eq!(v["error"]["code"], "role_too_low", "{s} {v}");
    // The page's form.
    let r = admin
        .form(
            "/notifications/webhooks",
            &[
                ("csrf", admin.csrf.as_str()),
                ("name", "ops"),
                ("url", "http://169.254.169.254/latest/meta-data/"),
                ("format", "generic"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.unwrap();
    assert!(page.contains("link-local address"), "{page}");
    // The CLI.
    let out = app
        .cli(&[
            "--json",
            "notify",
            "webhook",
            "add",
            "--as",
            "admin",
            "--name",
            "ops",
            "--url",
            "http://[::1]:8080/hook",
        ])
        .await;
    assert!(
        !out.success
            && out.stderr.contains("target_not_allowed")
            && !out.stderr.contains("panicked"),
        "{out:?}"
    );
    // Nothing was stored.
    assert!(app.app.store.webhook_list().await.unwrap().is_empty());
    // A public literal passes the check (only the check: nothing is sent).
    let targets = app.app.outbound_targets();
    for url in [
        "https://93.184.215.14/hook",
        "https://[2606:4700:4700::1111]/hook",
        "http://8.8.8.8:8080/x",
    ] {
        targets
            .check_url(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }
    app.stop().await;
}

/// A receiver that counts what reaches it; `/redirect` answers 307 to `/landing`.
async fn counting_receiver() -> (u16, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = hits.clone();
    let app = axum::Router::new()
        .route(
            "/redirect",
            axum::routing::post(|| async {
                (StatusCode::TEMPORARY_REDIRECT, [("location", "/landing")])
            }),
        )
        .fallback(move || {
            let h = h.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                StatusCode::NO_CONTENT
            }
        });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hits)
}

/// Runs one sender with `settings` until every delivery is failed; returns them.
async fn send_all(
    app: &TestApp,
    settings: exogate::notify_settings::NotifySettings,
) -> Vec<exogate_core::notifications::Delivery> {
    let stop = tokio_util::sync::CancellationToken::new();
    let sender = tokio::spawn(exogate::notify::run_with(
        app.app.clone(),
        Arc::new(settings),
        "checked-sender".to_owned(),
        stop.clone(),
    ));
    let store = app.app.store.clone();
    let done = crate::support::eventually("every delivery failed", Duration::from_secs(30), || {
        let store = store.clone();
        async move {
            let all = store.outbox_list(None, 50).await.unwrap();
            (!all.is_empty() && all.iter().all(|d| d.state == DeliveryState::Failed)).then_some(all)
        }
    })
    .await;
    stop.cancel();
    sender.await.unwrap();
    done
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_targets_are_refused_at_send_and_redirects_are_not_followed() {
    // Saved while allowed (as if the name's address changed after it was saved), sent with the
    // switch off: nothing reaches the receiver, nor the loopback mail relay.
    let app = TestApp::start_with_config(Scenario::demo(), |t| {
        format!(
            "{t}\n[notifications]\nenabled = false\nallow_private_targets = true\nmax_attempts = 1\n\
             [notifications.smtp]\nhost = \"localhost\"\nport = 9\ntls = \"none\"\nfrom = \"x@msp.example\"\n"
        )
    })
    .await;
    let (port, hits) = counting_receiver().await;
    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    for (name, url) in [
        ("name", format!("http://localhost:{port}/name")),
        ("literal", format!("http://127.0.0.1:{port}/literal")),
        ("mapped", format!("http://[::ffff:127.0.0.1]:{port}/mapped")),
        ("zero", format!("http://0.0.0.0:{port}/zero")),
        ("v6", format!("http://[::1]:{port}/v6")),
    ] {
        let (s, v) = api_post(
            &admin,
            "/api/v1/notifications/webhooks",
            json!({"name": name, "url": url, "format": "generic", "secret": SECRET}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let manager = sign_in(
        &app.http,
        &app.base_url,
        "manager",
        &app.password("manager"),
    )
    .await;
    let r = manager
        .http
        .put(format!("{}/api/v1/users/me/notifications", manager.base))
        .header("cookie", &manager.cookie)
        .header("x-csrf-token", &manager.csrf)
        .json(&json!({"email": "manager@msp.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    agent_asks(&app, "bob").await;

    let mut off = (*app.app.notify).clone();
    off.enabled = true;
    off.allow_private_targets = false;
    let done = send_all(&app, off).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "nothing reached the receiver"
    );
    let mut mails = 0;
    for d in &done {
        let err = d.last_error.clone().unwrap_or_default();
        assert!(err.contains("is not allowed"), "{:?}: {err}", d.target);
        assert!(
            !err.contains(&port.to_string()),
            "no URL in the error: {err}"
        );
        if matches!(d.target, Target::Email { .. }) {
            mails += 1;
        }
    }
    assert!(mails >= 1 && done.len() >= 6, "{done:#?}");

    // With the switch on, a redirect to the receiver's own landing path is not followed.
    for hook in app.app.store.webhook_list().await.unwrap() {
        let r = admin
            .http
            .delete(format!(
                "{}/api/v1/notifications/webhooks/{}",
                admin.base, hook.id
            ))
            .header("cookie", &admin.cookie)
            .header("x-csrf-token", &admin.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let (s, v) = api_post(
        &admin,
        "/api/v1/notifications/webhooks",
        json!({"name": "r", "url": format!("http://127.0.0.1:{port}/redirect"), "format": "generic", "secret": SECRET}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    agent_asks(&app, "carol").await;
    let mut on = (*app.app.notify).clone();
    on.enabled = true;
    on.smtp = None;
    let done = send_all(&app, on).await;
    let redirected: Vec<_> = done
        .iter()
        .filter(|d| {
            d.last_error
                .as_deref()
                .is_some_and(|e| e.contains("HTTP 307"))
        })
        .collect();
    assert_eq!(redirected.len(), 1, "{done:#?}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect was not followed"
    );
    app.stop().await;
}

async fn agent_asks(app: &TestApp, trustee: &str) {
    let r = app
        .http
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&app.mcp_token)
        .json(&json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": trustee}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn client_metadata_urls_of_internal_addresses_are_not_fetched() {
    // The default configuration: no loopback metadata documents.
    let t = TestApp::start().await;
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    for client_id in [
        "https://[::ffff:7f00:1]/client.json",
        "https://[::ffff:a9fe:a9fe]/client.json",
        "https://100.64.0.1/client.json",
        "https://0.0.0.0/client.json",
        "https://localhost/client.json",
        "https://agent.localhost/client.json",
    ] {
        let p = crate::oauth::params(client_id, crate::oauth::REDIRECT, &t.url("/mcp"));
        let (s, page) = b
            .get(&format!("/oauth/authorize?{}", crate::oauth::query(&p)))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(
            page.contains("invalid_client") && page.contains("a private or loopback address"),
            "{client_id}: {page}"
        );
    }
    t.stop().await;
}
