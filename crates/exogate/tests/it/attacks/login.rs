//! Attacks: login. Floods of failed sign-ins (per address, per user name, concurrent bursts),
//! the audit rows a flood may write, the argon2 checks running at once, open redirects through
//! `next`, and sessions kept alive past their absolute lifetime. The clock is the app's manual
//! clock; other client addresses are other loopback addresses (127.0.0.N).

use std::net::{IpAddr, Ipv4Addr};

use exogate::config::Config;
use futures::future::join_all;
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::web::{Browser, WebApp, session_cookie};

/// An HTTP client whose connections come from 127.0.0.`n`.
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)))
        .build()
        .expect("client")
}

/// `POST /login` (the form) from `client`.
async fn form_login(
    w: &WebApp,
    client: &reqwest::Client,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(w.url("/login"))
        .form(&[("user", user), ("password", password)])
        .send()
        .await
        .expect("login")
}

/// `POST /api/v1/login` from `client`: status, `Retry-After` and body.
async fn api_login(
    w: &WebApp,
    client: &reqwest::Client,
    user: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let r = client
        .post(w.url("/api/v1/login"))
        .json(&json!({ "user": user, "password": password }))
        .send()
        .await
        .expect("api login");
    let status = r.status();
    let retry = retry_after(&r);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

fn retry_after(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned())
}

/// The `auth.login_failed` rows in the audit log.
async fn failed_login_rows(w: &WebApp) -> Vec<exogate_core::audit::AuditEvent> {
    let events = w.app.store.recent_audit(None, None, 10_000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.event.kind == "auth.login_failed")
        .collect()
}

/// A metric's value from `/metrics`.
async fn metric(w: &WebApp, name: &str) -> Option<u64> {
    let text = w
        .http
        .get(w.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn failed_logins_from_one_address_are_refused_with_429_and_retry_after() {
    let w = WebApp::start_with(|c: &mut Config| {
        c.login.free_failures_per_address = 4;
        c.login.free_failures_per_user = 100;
    })
    .await;
    let attacker = client_from(1);
    // Four free failures, each at another user name (existing or not).
    for user in ["ghost1", "ghost2", "tech", "ghost3"] {
        let r = form_login(&w, &attacker, user, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{user}");
    }
    // Then the address is locked out: the page says so with 429 and Retry-After, whatever the
    // user name, even with the right password (no password is checked), and whatever
    // X-Forwarded-For claims.
    let r = form_login(&w, &attacker, "ghost4", "wrong password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry_after(&r).as_deref(), Some("1"));
    let body = r.text().await.unwrap();
    assert!(body.contains("id=\"login-error\""), "{body}");
    assert!(body.contains("too many failed sign-ins"), "{body}");
    let r = form_login(&w, &attacker, "tech", WebApp::password("tech")).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(session_cookie(&r).is_none());
    let r = attacker
        .post(w.url("/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-real-ip", "203.0.113.9")
        .form(&[("user", "ghost5"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // The JSON API shares the limiter and answers the stable code.
    let (s, retry, body) = api_login(&w, &attacker, "ghost6", "x").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
    // Another address is not affected.
    let r = form_login(&w, &client_from(2), "tech", WebApp::password("tech")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(metric(&w, "exogate_password_checks_total").await, Some(5));
    w.stop().await;
}

#[tokio::test]
async fn a_user_name_is_locked_out_across_addresses_with_growing_delays_until_a_success() {
    let w = WebApp::start_with(|c: &mut Config| {
        c.login.free_failures_per_user = 3;
        c.login.free_failures_per_address = 1000;
    })
    .await;
    // Every attempt from another address: the user name's count still grows.
    let mut n = 10u8;
    let mut next_client = || {
        n += 1;
        client_from(n)
    };
    for _ in 0..3 {
        let r = form_login(&w, &next_client(), "tech", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // Each further failure doubles the lock-out: 1 s, 2 s, 4 s, 8 s.
    for wait in [1i64, 2, 4, 8] {
        let r = form_login(&w, &next_client(), "tech", "wrong password").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&r), Some(wait.to_string()));
        let (s, retry, body) = api_login(&w, &next_client(), "TECH ", "wrong password").await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(retry, Some(wait.to_string()));
        // Not yet, even with the right password.
        w.clock.advance_secs(wait - 1);
        let r = form_login(&w, &next_client(), "tech", WebApp::password("tech")).await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&r).as_deref(), Some("1"));
        w.clock.advance_secs(1);
        if wait < 8 {
            let r = form_login(&w, &next_client(), "tech", "wrong password").await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
    }
    // Once the lock-out has passed, the right password works, and clears the count.
    let r = form_login(&w, &next_client(), "tech", WebApp::password("tech")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(session_cookie(&r).is_some());
    for _ in 0..3 {
        let r = form_login(&w, &next_client(), "tech", "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    // A user name that does not exist is limited the same way.
    for _ in 0..3 {
        let r = form_login(&w, &next_client(), "nobody-here", "guess").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = form_login(&w, &next_client(), "nobody-here", "guess").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    w.stop().await;
}

#[tokio::test]
async fn a_concurrent_burst_gets_only_the_free_attempts_checked() {
    let w = WebApp::start_with(|c: &mut Config| {
        c.login.free_failures_per_user = 3;
        c.login.free_failures_per_address = 1000;
    })
    .await;
    // 40 attempts at once, from 40 addresses, at one user name (the clock stands still).
    let attempts = (0..40u8).map(|i| {
        let client = client_from(100 + i);
        let w = &w;
        async move {
            form_login(w, &client, "manager", "wrong password")
                .await
                .status()
        }
    });
    let statuses = join_all(attempts).await;
    let count = |s| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count(StatusCode::UNAUTHORIZED), 3, "{statuses:?}");
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 37, "{statuses:?}");
    assert_eq!(metric(&w, "exogate_password_checks_total").await, Some(3));
    assert_eq!(metric(&w, "exogate_login_refused_total").await, Some(37));
    w.stop().await;
}

#[tokio::test]
async fn password_checks_run_at_most_hash_concurrency_at_once() {
    let w = WebApp::start_with(|c: &mut Config| {
        c.login.hash_concurrency = 1;
        c.login.free_failures_per_user = 1000;
        c.login.free_failures_per_address = 1000;
    })
    .await;
    assert_eq!(metric(&w, "exogate_password_checks_limit").await, Some(1));
    let attempts = (0..8).map(|i| {
        let w = &w;
        async move {
            form_login(w, &w.http, &format!("flood{i}"), "wrong password")
                .await
                .status()
        }
    });
    let statuses = join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED));
    // All eight were checked, never two at once.
    assert_eq!(metric(&w, "exogate_password_checks_total").await, Some(8));
    assert_eq!(metric(&w, "exogate_password_checks_peak").await, Some(1));
    assert_eq!(metric(&w, "exogate_password_checks_running").await, Some(0));
    assert_eq!(metric(&w, "exogate_password_checks_waiting").await, Some(0));
    w.stop().await;
}

#[tokio::test]
async fn the_audit_rows_a_flood_writes_are_bounded_and_every_attempt_is_counted() {
    let w = WebApp::start_with(|c: &mut Config| {
        c.login.audited_failures_per_minute = 3;
        c.login.free_failures_per_address = 6;
        c.login.free_failures_per_user = 1000;
    })
    .await;
    let before = failed_login_rows(&w).await.len();
    assert_eq!(before, 0);
    // 50 failed attempts within one minute: 6 checked (401), 44 refused (429).
    let attacker = client_from(7);
    let mut statuses = Vec::new();
    for i in 0..50 {
        statuses.push(
            form_login(&w, &attacker, &format!("user{i}"), "x")
                .await
                .status(),
        );
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        6
    );
    let rows = failed_login_rows(&w).await;
    assert_eq!(rows.len(), 3, "at most 3 failures a minute are written");
    // A minute later the next attempt writes the summary of the 47 unwritten ones first.
    w.clock.advance_secs(60);
    let r = form_login(&w, &attacker, "user50", "x").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let rows = failed_login_rows(&w).await;
    assert_eq!(rows.len(), 5, "{rows:#?}");
    let summary = rows
        .iter()
        .find(|e| e.event.detail.contains("unrecorded_failures"))
        .expect("a summary row");
    let detail: Value = serde_json::from_str(&summary.event.detail).unwrap();
    assert_eq!(detail["unrecorded_failures"], 47);
    assert_eq!(summary.event.channel, "system");
    // The chain still verifies.
    let verified = exogate_core::ops::audit::verify(w.app.ctx()).await;
    assert!(verified.is_ok(), "{verified:?}");
    w.stop().await;
}

/// Signs in through the form with `next` and returns the status and `Location`.
async fn login_with_next(w: &WebApp, next: &str) -> (StatusCode, Option<String>) {
    let r = w
        .http
        .post(w.url("/login"))
        .form(&[
            ("user", "viewer"),
            ("password", WebApp::password("viewer")),
            ("next", next),
        ])
        .send()
        .await
        .expect("login");
    let location = r
        .headers()
        .get("location")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    (r.status(), location)
}

#[tokio::test]
async fn next_after_login_is_only_a_path_on_this_origin_and_never_a_500() {
    let w = WebApp::start().await;
    let kept = [
        "/companies/contoso/integrations",
        "/approvals?state=pending&x=%41",
        "/requests/0192e6c3-0000-7000-8000-000000000000",
        "/.//evil.example",
    ];
    for next in kept {
        assert_eq!(
            login_with_next(&w, next).await,
            (StatusCode::SEE_OTHER, Some(next.to_owned())),
            "{next}"
        );
    }
    let refused = [
        "/\t/evil.example",
        "/%09/evil.example",
        "/%2509/evil.example",
        "/\n/evil.example",
        "/\r\nSet-Cookie: x=1",
        "/%0d%0aSet-Cookie:%20x=1",
        "https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%5Cevil.example",
        "/%2F/evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        " /companies",
        "/comp anies",
        "/caf\u{e9}",
        "/\u{7f}",
        "",
    ];
    for next in refused {
        assert_eq!(
            login_with_next(&w, next).await,
            (StatusCode::SEE_OTHER, Some("/companies".to_owned())),
            "{next:?}"
        );
    }
    // The login page does not carry a refused `next` into its form either.
    let page = w
        .http
        .get(w.url("/login?next=https%3A%2F%2Fevil.example"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("evil.example"), "{page}");
    w.stop().await;
}

/// Whether a browser at `http://exogate.test/login` following `Location: loc` stays there.
fn same_origin(loc: &str) -> bool {
    let base = url::Url::parse("http://exogate.test/login").unwrap();
    base.join(loc)
        .is_ok_and(|u| u.origin() == base.origin() && u.path().starts_with('/'))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any string: `next` is kept as it is, and then a browser stays on this origin, or it is
    /// `/companies`.
    #[test]
    fn safe_next_keeps_a_same_origin_path_or_falls_back(
        next in prop_oneof![
            any::<String>(),
            "[/\\\\%0-9a-fA-F\t\n\r .:@?#a-z]{0,12}",
            "/[/\\\\%0-9a-fA-F\t\n\r .:@?#a-z]{0,12}",
        ],
    ) {
        let out = exogate::web::pages::safe_next(&next);
        prop_assert!(out == next || out == "/companies", "{next:?} -> {out:?}");
        prop_assert!(same_origin(out), "{next:?} -> {out:?} leaves the origin");
        prop_assert!(axum::http::HeaderValue::from_str(out).is_ok(), "{out:?}");
    }
}

#[tokio::test]
async fn random_next_values_through_the_login_form_redirect_on_this_origin() {
    let w = WebApp::start_with(|c: &mut Config| c.login.hash_concurrency = 2).await;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = prop_oneof![any::<String>(), "/[/\\\\%0-9a-fA-F\t\n\r .:@a-z]{0,10}",];
    let mut cases = Vec::new();
    for _ in 0..24 {
        cases.push(
            proptest::strategy::ValueTree::current(&strategy.new_tree(&mut runner).unwrap())
                .clone(),
        );
    }
    for next in cases {
        let (status, location) = login_with_next(&w, &next).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{next:?}");
        let location = location.expect("a Location");
        assert!(
            location == next || location == "/companies",
            "{next:?} -> {location:?}"
        );
        assert!(same_origin(&location), "{next:?} -> {location:?}");
    }
    w.stop().await;
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_however_recently_used() {
    let w = WebApp::start_with(|c: &mut Config| c.login.session_absolute_secs = 12 * 3600).await;
    let b: Browser = w.login("tech").await;
    // Used every 4 hours (well within the 8 h idle expiry): alive for 12 hours.
    for _ in 0..2 {
        w.clock.advance_secs(4 * 3600);
        assert_eq!(b.api_get("/api/v1/me").await.0, StatusCode::OK);
    }
    w.clock.advance_secs(4 * 3600 - 60);
    assert_eq!(b.api_get("/api/v1/me").await.0, StatusCode::OK);
    // Used a minute ago, but 12 hours old: refused, on pages too.
    w.clock.advance_secs(60);
    assert_eq!(b.api_get("/api/v1/me").await.0, StatusCode::UNAUTHORIZED);
    let r = b.get_raw("/companies").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    // Signing in again gives a fresh session with its own 12 hours.
    let again = w.login("tech").await;
    for _ in 0..2 {
        w.clock.advance_secs(5 * 3600);
        assert_eq!(again.api_get("/api/v1/me").await.0, StatusCode::OK);
    }
    w.stop().await;
}
