//! (hardening) `POST /oauth/register` cannot fill the database: a budget per client address
//! (`429 rate_limited` with `Retry-After`, another address unaffected, the budget back after a
//! minute of the app's clock), and a global cap on registrations that never reached consent
//! (`429 too_many_registrations`), which expire after `[oauth] unused_client_hours` while a
//! client that signed in is kept.

use std::net::IpAddr;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::oauth::{REDIRECT, signed_in, start_on_clock};
use crate::support::TestApp;

/// Registers from the client `http` (bound to some loopback address).
async fn try_register(t: &TestApp, http: &reqwest::Client) -> (StatusCode, Option<String>, Value) {
    let r = http
        .post(t.url("/oauth/register"))
        .json(&json!({ "client_name": "Flood", "redirect_uris": [REDIRECT] }))
        .send()
        .await
        .unwrap();
    let s = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(r.headers()["cache-control"], "no-store");
    (s, retry, r.json().await.unwrap_or(Value::Null))
}

fn from(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(address.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_are_limited_per_client_address() {
    let (t, clock) =
        start_on_clock(|text| format!("{text}\n[oauth]\nregistrations_per_minute = 3\n")).await;
    let a = from("127.0.0.1");
    for _ in 0..3 {
        let (s, _, v) = try_register(&t, &a).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (s, retry, v) = try_register(&t, &a).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")),
        "{v}"
    );
    let secs: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=20).contains(&secs), "{secs}");
    // A malformed body is refused by the limit too (nothing is parsed past it).
    let r = a
        .post(t.url("/oauth/register"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another address has its own budget.
    let (s, _, v) = try_register(&t, &from("127.0.0.2")).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The budget comes back with time.
    clock.advance_secs(61);
    let (s, _, v) = try_register(&t, &a).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(t.app.registrations.tracked(), 2);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unused_registrations_are_capped_and_expire_and_a_signed_in_client_stays() {
    let (t, clock) = start_on_clock(|text| {
        format!(
            "{text}\n[oauth]\nregistrations_per_minute = 1000\nmax_unused_clients = 3\nunused_client_hours = 24\n"
        )
    })
    .await;
    // One client completes an authorization: it never counts against the cap.
    let (kept, _) = signed_in(&t, "tech").await;
    let a = from("127.0.0.1");
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, _, v) = try_register(&t, &a).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["client_id"].as_str().unwrap().to_owned());
    }
    let (s, _, v) = try_register(&t, &from("127.0.0.3")).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            Some("too_many_registrations")
        ),
        "{v}"
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("try again later")
    );
    assert_eq!(t.app.store.oauth_count_unused_clients().await.unwrap(), 3);
    // Still refused just before they expire; after 24 h they are gone and registering works.
    clock.advance_secs(24 * 3600 - 10);
    let (s, _, _) = try_register(&t, &a).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    clock.advance_secs(11);
    let (s, _, v) = try_register(&t, &a).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    for id in &ids {
        assert_eq!(
            t.app.store.oauth_get_client(id).await.unwrap(),
            None,
            "{id} expired"
        );
    }
    assert!(
        t.app.store.oauth_get_client(&kept).await.unwrap().is_some(),
        "the client that signed in stays"
    );
    assert_eq!(t.app.store.oauth_count_unused_clients().await.unwrap(), 1);
    t.stop().await;
}
