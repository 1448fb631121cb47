//! InvokeCommand transport against the emulator: paging, continuations, throttling with the
//! concurrency limiter, `$batch` correlation.

use std::collections::HashSet;
use std::time::Duration;

use exogate_exchange::{CmdletRequest, ExchangeError, Limits};
use futures::StreamExt as _;
use serde_json::json;

use crate::support::*;

async fn big_tenant(w: &World, n: usize) {
    w.control(
        reqwest::Method::PUT,
        &format!("/exchange/{CONTOSO}/directory"),
        Some(json!({
            "objects": (0..n)
                .map(|i| json!({"type": if i % 5 == 0 { "shared_mailbox" } else { "user_mailbox" }, "name": format!("mbx{i:05}")}))
                .collect::<Vec<_>>()
        })),
    )
    .await;
}

#[tokio::test]
async fn paging_2500_mailboxes_at_page_size_100_returns_all() {
    let w = World::demo().await;
    big_tenant(&w, 2500).await;
    let client = w.client_with(Limits {
        page_size: 100,
        ..Limits::default()
    });
    let pages: Vec<_> = client.mailbox_pages(CONTOSO).collect().await;
    let mut seen = HashSet::new();
    for p in &pages {
        let p = p.as_ref().expect("page");
        assert!(p.len() <= 100, "page of {}", p.len());
        for m in p {
            assert!(
                seen.insert(m.recipient.guid.clone().expect("guid selected")),
                "duplicate {m:?}"
            );
        }
    }
    assert_eq!(seen.len(), 2500);
    assert_eq!(pages.len(), 25);
    let c = w.counters().await;
    let get_mailbox: u64 = c["exchange_requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("Get-Mailbox|"))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    assert_eq!(get_mailbox, 25, "one POST per page: {c}");
}

#[tokio::test]
async fn expired_continuation_is_an_error_not_a_shorter_list() {
    let w = World::demo().await;
    big_tenant(&w, 300).await;
    w.freeze_emulator_clock().await;
    w.knobs(Some(CONTOSO), json!({"skiptoken_ttl_secs": 60}))
        .await;
    let client = w.client_with(Limits {
        page_size: 100,
        ..Limits::default()
    });
    let mut pages = client.mailbox_pages(CONTOSO);
    let first = pages
        .next()
        .await
        .expect("a first page")
        .expect("first page ok");
    assert_eq!(first.len(), 100);
    w.advance_emulator_clock(Duration::from_secs(120)).await;
    match pages.next().await {
        Some(Err(ExchangeError::IncompleteList { pages_read: 1, .. })) => {}
        other => panic!("expected IncompleteList, got {other:?}"),
    }
    assert!(
        pages.next().await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test]
async fn broken_continuation_fails_the_whole_list() {
    let w = World::demo().await;
    big_tenant(&w, 250).await;
    w.knobs(Some(CONTOSO), json!({"paging_continuation_broken": true}))
        .await;
    let client = w.client_with(Limits {
        page_size: 100,
        ..Limits::default()
    });
    let req = CmdletRequest::new("Get-Mailbox").unlimited();
    let e = client.list_all(CONTOSO, &req).await.unwrap_err();
    assert!(matches!(e, ExchangeError::IncompleteList { .. }), "{e:?}");
}

#[tokio::test]
async fn truncation_warning_is_an_error() {
    let w = World::demo().await;
    big_tenant(&w, 1100).await;
    let client = w.client();
    // Without ResultSize Unlimited Exchange stops at 1000 and warns.
    let req = CmdletRequest::new("Get-Mailbox").select(&["Guid"]);
    let e = client.list_all(CONTOSO, &req).await.unwrap_err();
    assert!(matches!(e, ExchangeError::IncompleteList { .. }), "{e:?}");
}

#[tokio::test]
async fn throttle_storm_stays_within_the_limiter_and_honours_retry_after() {
    let w = World::demo().await;
    w.freeze_emulator_clock().await;
    w.knobs(
        Some(CONTOSO),
        json!({
            "tenant_concurrency_cap": 4,
            "tenant_rate_per_sec": 10.0,
            "tenant_rate_burst": 4.0,
            "retry_after_secs": 0.2,
            "latency_ms": {"*": 3},
        }),
    )
    .await;
    let limits = Limits {
        per_tenant_concurrency: 4,
        backoff_base: Duration::from_millis(1),
        max_read_attempts: 200,
        max_throttled_attempts: 200,
        ..Limits::default()
    };
    let client = w.linked_client(limits);
    let names = ["alice", "bob", "sales", "support"];
    let calls = (0..48).map(|i| {
        let c = client.clone();
        let name = names[i % names.len()];
        async move {
            let req = CmdletRequest::new("Get-Mailbox").param("Identity", name);
            c.invoke(CONTOSO, &req).await
        }
    });
    let results = futures::future::join_all(calls).await;
    for r in &results {
        assert_eq!(r.as_ref().expect("finished").value.len(), 1);
    }
    let c = w.counters().await;
    let max = c["max_in_flight"][CONTOSO.to_string()]
        .as_u64()
        .unwrap_or(0);
    let throttled = c["throttled"][CONTOSO.to_string()].as_u64().unwrap_or(0);
    assert!(max <= 4, "emulator saw {max} in flight");
    assert!(throttled > 0, "the storm happened: {c}");
    let sleeps = w.clock.sleeps();
    assert!(!sleeps.is_empty());
    assert!(
        sleeps.iter().all(|s| *s >= Duration::from_millis(200)),
        "every wait honours Retry-After (>= 0.2 s): {sleeps:?}"
    );
    println!(
        "storm: {throttled} x 429, max in flight {max}, {} waits",
        sleeps.len()
    );
}

#[tokio::test]
async fn batch_maps_every_result_to_its_own_operation() {
    let w = World::demo().await;
    let client = w.client();
    let names = [
        "alice", "nobody1", "bob", "carol", "sales", "support", "nobody2", "alice", "bob",
        "nobody3", "support", "sales",
    ];
    let reqs: Vec<_> = names
        .iter()
        .map(|n| CmdletRequest::new("Get-Mailbox").param("Identity", *n))
        .chain([CmdletRequest::new("Get-MailboxPermission").param("Identity", "sales")])
        .collect();
    let results = client.batch_read(CONTOSO, reqs).await;
    assert_eq!(results.len(), names.len() + 1);
    for (n, r) in names.iter().zip(&results) {
        if n.starts_with("nobody") {
            assert!(
                matches!(r, Err(ExchangeError::NotFound { .. })),
                "{n}: {r:?}"
            );
        } else {
            let out = r.as_ref().unwrap_or_else(|e| panic!("{n}: {e}"));
            assert_eq!(out.value.len(), 1, "{n}");
            assert_eq!(
                out.value[0]["Alias"],
                json!(n),
                "{n} got {}",
                out.value[0]["Alias"]
            );
        }
    }
    let perms = results.last().unwrap().as_ref().expect("permissions");
    assert!(
        perms
            .value
            .iter()
            .any(|r| r["UserSid"] == json!("S-1-5-10"))
    );
    let c = w.counters().await;
    let batches: u64 = c["exchange_requests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().contains("batch"))
        .filter_map(|(_, v)| v.as_u64())
        .sum();
    assert_eq!(batches, 2, "13 sub-requests go out as 2 batches: {c}");
}

#[tokio::test]
async fn every_error_body_variant_the_emulator_can_produce_parses_the_same() {
    let w = World::demo().await;
    let client = w.client();
    for status in [404, 400] {
        for format in ["id_type_message", "empty_id_type_message", "nested_json"] {
            for message in ["Error executing cmdlet", "Invalid Operation"] {
                w.knobs(
                    Some(CONTOSO),
                    json!({"not_found_status": status, "details_format": format, "error_message": message,
                           "strict_anchor": true, "rate_limit_headers": true,
                           "recipient_permission_is_inherited": false}),
                )
                .await;
                let req = CmdletRequest::new("Get-Mailbox")
                    .param("Identity", "nobody@contoso.onmicrosoft.com");
                let e = client.invoke(CONTOSO, &req).await.unwrap_err();
                assert!(
                    matches!(e, ExchangeError::NotFound { ref message } if message.contains("nobody@contoso.onmicrosoft.com")),
                    "{status} {format} {message}: {e:?}"
                );
            }
        }
    }
    // The other knobs set above change nothing for a well-behaved client.
    let sa = client
        .send_as_holders(CONTOSO, &crate::support::id("support"))
        .await
        .unwrap();
    assert_eq!(sa.len(), 1);
    let e = client
        .invoke(
            CONTOSO,
            &CmdletRequest::new("Get-Mailbox").param("Bogus", 1),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::InvalidParameter { .. }), "{e:?}");
}

#[tokio::test]
async fn a_tenant_that_allows_fewer_calls_than_configured_is_asked_at_its_pace() {
    // Exchange takes 2 calls at once for Contoso; the client is configured for 8. The limiter
    // halves on each 429 and creeps back up, so most calls are answered the first time.
    let w = World::demo().await;
    w.knobs(
        Some(CONTOSO),
        json!({
            "tenant_concurrency_cap": 2,
            "retry_after_secs": 0.01,
            "latency_ms": {"*": 2},
        }),
    )
    .await;
    let client = w.linked_client(Limits {
        per_tenant_concurrency: 8,
        ..Limits::default()
    });
    let names = ["alice", "bob", "sales", "support"];
    let calls = (0..200).map(|i| {
        let c = client.clone();
        let name = names[i % names.len()];
        async move {
            let req = CmdletRequest::new("Get-Mailbox").param("Identity", name);
            c.invoke(CONTOSO, &req).await
        }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(Result::is_ok), "every call finished");
    let c = w.counters().await;
    let throttled = c["throttled"][CONTOSO.to_string()].as_u64().unwrap_or(0);
    // Without adapting, 6 of every 8 calls in flight would be refused, again and again.
    assert!(throttled < 60, "{throttled} x 429 for 200 calls");
    assert!(client.tenant_concurrency(CONTOSO) < 8);
    println!(
        "{throttled} x 429 for 200 calls; limit now {}",
        client.tenant_concurrency(CONTOSO)
    );
}
