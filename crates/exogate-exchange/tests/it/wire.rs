//! Narrow wire-level edge cases against wiremock: NUL bodies declared gzip, fractional
//! `Retry-After`, foreign nextLinks, `$batch` fallback and sub-request retries, plain-text
//! throttling, Graph answering for another tenant, and writes that are re-read, not replayed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine as _;
use exogate_exchange::{
    AppConfig, ClientConfig, CmdletRequest, ConnectionError, Endpoints, EnsureOutcome,
    ExchangeError, Limits, M365Client, ManualClock, Right,
};
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::support::{change, id};

const T: Uuid = uuid::uuid!("55555555-5555-4555-8555-555555555555");

fn fake_jwt(claims: Value) -> String {
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2ln",
        e.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(claims.to_string())
    )
}

async fn server(tid: Uuid) -> MockServer {
    let s = MockServer::start().await;
    let token = fake_jwt(json!({
        "tid": tid.to_string(), "roles": ["Exchange.ManageAsApp"],
        "wids": ["29232cdf-9323-42fd-ade2-1d097af3e4de"], "exp": 4102444800i64
    }));
    Mock::given(method("POST"))
        .and(path_regex(r"^/[^/]+/oauth2/v2\.0/token$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "token_type": "Bearer", "expires_in": 3599, "access_token": token
        })))
        .mount(&s)
        .await;
    s
}

fn client(s: &MockServer, clock: &ManualClock) -> M365Client {
    let mut c = ClientConfig::new(
        Endpoints::single(&s.uri()).unwrap(),
        AppConfig::with_secret(Uuid::nil(), "s"),
    );
    c.limits = Limits {
        backoff_base: Duration::from_millis(10),
        ..Limits::default()
    };
    M365Client::with_clock(c, Arc::new(clock.clone())).unwrap()
}

fn invoke_path() -> String {
    format!("/adminapi/beta/{T}/InvokeCommand")
}

fn ok(value: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "@odata.context": "x", "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": [], "value": value
    }))
}

#[tokio::test]
async fn nul_body_declared_gzip_is_forbidden_not_a_decode_error() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("Content-Encoding", "gzip")
                .set_body_bytes(vec![0u8; 4096]),
        )
        .mount(&s)
        .await;
    let c = client(&s, &ManualClock::starting_now());
    let e = c
        .invoke(T, &CmdletRequest::new("Get-OrganizationConfig"))
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::Forbidden { .. }), "{e:?}");
}

#[tokio::test]
async fn fractional_retry_after_is_honoured() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0.35"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ok(json!([{"Identity": "org"}])))
        .with_priority(2)
        .mount(&s)
        .await;
    let clock = ManualClock::starting_now();
    let c = client(&s, &clock);
    let out = c
        .invoke(T, &CmdletRequest::new("Get-OrganizationConfig"))
        .await
        .unwrap();
    assert_eq!(out.value.len(), 1);
    assert_eq!(clock.sleeps(), vec![Duration::from_millis(350)]);
}

#[tokio::test]
async fn plain_text_concurrency_message_is_throttling_and_retried() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ResponseTemplate::new(503).set_body_string(
            "You have reached the maximum number of concurrent requests per tenant. Please wait and try again",
        ))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&s)
        .await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ok(json!([])))
        .with_priority(2)
        .mount(&s)
        .await;
    let clock = ManualClock::starting_now();
    client(&s, &clock)
        .invoke(T, &CmdletRequest::new("Get-Mailbox"))
        .await
        .unwrap();
    assert_eq!(clock.sleeps().len(), 2);
}

#[tokio::test]
async fn next_link_to_another_host_is_an_error() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "value": [{"Guid": "1"}],
            "@odata.nextLink": format!("https://evil.example/adminapi/beta/{T}/InvokeCommand?$skiptoken=abc")
        })))
        .mount(&s)
        .await;
    let c = client(&s, &ManualClock::starting_now());
    let e = c
        .list_all(T, &CmdletRequest::new("Get-Mailbox").unlimited())
        .await
        .unwrap_err();
    match e {
        ExchangeError::IncompleteList {
            pages_read: 1,
            reason,
        } => assert!(reason.contains("another host"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let posts = s
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == invoke_path())
        .count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn headers_and_body_follow_the_reference() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ok(json!([])))
        .mount(&s)
        .await;
    let c = client(&s, &ManualClock::starting_now());
    c.invoke(
        T,
        &CmdletRequest::new("Get-Mailbox")
            .param("Identity", "alice")
            .unlimited(),
    )
    .await
    .unwrap();
    let reqs = s.received_requests().await.unwrap();
    let r = reqs.iter().find(|r| r.url.path() == invoke_path()).unwrap();
    let h = |n: &str| {
        r.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert!(h("authorization").starts_with("Bearer "));
    assert_eq!(h("content-type"), "application/json");
    assert_eq!(
        h("x-anchormailbox"),
        format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{T}")
    );
    assert_eq!(h("prefer"), "odata.maxpagesize=1000");
    assert_eq!(h("x-responseformat"), "json");
    assert_eq!(h("x-cmdletname"), "Get-Mailbox");
    assert!(Uuid::parse_str(&h("client-request-id")).is_ok());
    assert!(h("accept-encoding").is_empty(), "no compression negotiated");
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        body,
        json!({"CmdletInput": {"CmdletName": "Get-Mailbox", "Parameters": {"Identity": "alice", "ResultSize": "Unlimited"}}})
    );
}

/// Answers `$batch` from the sub-requests' parameters: `Identity` `throttle-once` gets a 429
/// on its first appearance.
struct BatchResponder {
    throttled: AtomicU32,
}

impl Respond for BatchResponder {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let responses: Vec<Value> = body["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let who = r["body"]["CmdletInput"]["Parameters"]["Identity"].as_str().unwrap_or("").to_owned();
                if who == "throttle-once" && self.throttled.fetch_add(1, Ordering::SeqCst) == 0 {
                    return json!({"id": r["id"], "status": 429, "headers": {"Retry-After": "0.5"}, "body": "Too many requests"});
                }
                if who.starts_with("missing") {
                    return json!({"id": r["id"], "status": 404, "body": {"error": {"code": "NotFound", "message": "Error executing cmdlet",
                        "details": [{"code": "Context", "message": format!("Ex1|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object '{who}' couldn't be found on 'X'.")}]}}});
                }
                json!({"id": r["id"], "status": 200, "body": {"@adminapi.warnings": [], "value": [{"Alias": who}]}})
            })
            .rev()
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({ "responses": responses }))
    }
}

#[tokio::test]
async fn batch_correlates_by_id_and_retries_throttled_items() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(format!("/adminapi/beta/{T}/$batch")))
        .respond_with(BatchResponder {
            throttled: AtomicU32::new(0),
        })
        .mount(&s)
        .await;
    let clock = ManualClock::starting_now();
    let c = client(&s, &clock);
    let names: Vec<String> = (0..23)
        .map(|i| match i {
            5 => "throttle-once".to_owned(),
            7 | 15 => format!("missing{i}"),
            _ => format!("user{i}"),
        })
        .collect();
    let reqs = names
        .iter()
        .map(|n| CmdletRequest::new("Get-Mailbox").param("Identity", n.as_str()))
        .collect();
    let results = c.batch_read(T, reqs).await;
    for (n, r) in names.iter().zip(&results) {
        if n.starts_with("missing") {
            assert!(
                matches!(r, Err(ExchangeError::NotFound { .. })),
                "{n}: {r:?}"
            );
        } else {
            assert_eq!(r.as_ref().unwrap().value[0]["Alias"], json!(n));
        }
    }
    assert_eq!(clock.sleeps(), vec![Duration::from_millis(500)]);
    let batches = s
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().ends_with("$batch"))
        .count();
    assert_eq!(
        batches, 4,
        "3 batches of <= 10 plus one re-batch of the throttled item"
    );
}

#[tokio::test]
async fn failed_batch_falls_back_to_single_calls() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(format!("/adminapi/beta/{T}/$batch")))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": "BadRequest", "message": "batch not supported"}}),
        ))
        .mount(&s)
        .await;
    struct Single;
    impl Respond for Single {
        fn respond(&self, req: &Request) -> ResponseTemplate {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let who = body["CmdletInput"]["Parameters"]["Identity"].clone();
            ok(json!([{"Alias": who}]))
        }
    }
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(Single)
        .mount(&s)
        .await;
    let c = client(&s, &ManualClock::starting_now());
    let reqs = (0..4)
        .map(|i| CmdletRequest::new("Get-Mailbox").param("Identity", format!("u{i}")))
        .collect();
    let results = c.batch_read(T, reqs).await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(
            r.as_ref().unwrap().value[0]["Alias"],
            json!(format!("u{i}"))
        );
    }
}

#[tokio::test]
async fn graph_answering_for_another_tenant_is_wrong_tenant() {
    let other = Uuid::new_v4();
    let s = server(other).await;
    let c = client(&s, &ManualClock::starting_now());
    let e = c.verify_connection(T).await.unwrap_err();
    assert!(
        matches!(e, ConnectionError::WrongTenant { expected, .. } if expected == T),
        "{e:?}"
    );
}

/// A tiny Exchange: Send As state in memory; the first write answers 503 after applying
/// (when `apply_first` is set) or without applying.
struct SendAsExchange {
    holds: std::sync::Mutex<bool>,
    writes: AtomicU32,
    apply_first: bool,
}

impl Respond for SendAsExchange {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let cmdlet = body["CmdletInput"]["CmdletName"].as_str().unwrap_or("");
        match cmdlet {
            "Get-Mailbox" => match body["CmdletInput"]["Parameters"]["Identity"].as_str() {
                Some("shared" | "shared@c.com") => ok(
                    json!([{"Identity": "shared", "Alias": "shared", "UserPrincipalName": "shared@c.com"}]),
                ),
                Some("alice" | "alice@c.com") => ok(
                    json!([{"Identity": "alice", "Alias": "alice", "UserPrincipalName": "alice@c.com", "RecipientTypeDetails": "UserMailbox"}]),
                ),
                _ => ResponseTemplate::new(404).set_body_json(
                    json!({"error": {"code": "NotFound", "message": "Error executing cmdlet"}}),
                ),
            },
            "Get-RecipientPermission" => {
                let mut rows = vec![
                    json!({"Identity": "shared", "Trustee": "NT AUTHORITY\\SELF", "TrusteeSidString": "S-1-5-10", "AccessRights": ["SendAs"], "AccessControlType": "Allow"}),
                ];
                if *self.holds.lock().unwrap() {
                    rows.push(json!({"Identity": "shared", "Trustee": "alice@c.com", "TrusteeSidString": "S-1-5-21-1-2-3-4", "AccessRights": ["SendAs"], "AccessControlType": "Allow", "IsInherited": false}));
                }
                ok(Value::Array(rows))
            }
            "Add-RecipientPermission" => {
                let n = self.writes.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    if self.apply_first {
                        *self.holds.lock().unwrap() = true;
                    }
                    return ResponseTemplate::new(503).set_body_string("Service Unavailable");
                }
                *self.holds.lock().unwrap() = true;
                ok(json!([]))
            }
            other => ResponseTemplate::new(400).set_body_string(format!("unexpected {other}")),
        }
    }
}

#[tokio::test]
async fn ambiguous_write_failures_are_reread_before_any_retry() {
    for apply_first in [true, false] {
        let s = server(T).await;
        let ex = Arc::new(SendAsExchange {
            holds: Default::default(),
            writes: AtomicU32::new(0),
            apply_first,
        });
        struct Shared(Arc<SendAsExchange>);
        impl Respond for Shared {
            fn respond(&self, req: &Request) -> ResponseTemplate {
                self.0.respond(req)
            }
        }
        Mock::given(method("POST"))
            .and(path(invoke_path()))
            .respond_with(Shared(ex.clone()))
            .mount(&s)
            .await;
        let c = client(&s, &ManualClock::starting_now());
        let r = c
            .ensure(T, &change(Right::SendAs, true, &id("shared"), &id("alice")))
            .await
            .unwrap();
        assert_eq!(r.outcome, EnsureOutcome::Changed);
        let expected_writes = if apply_first { 1 } else { 2 };
        assert_eq!(
            ex.writes.load(Ordering::SeqCst),
            expected_writes,
            "apply_first={apply_first}"
        );
    }
}

#[tokio::test]
async fn a_hanging_server_times_out_as_transient() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ok(json!([])).set_delay(Duration::from_secs(5)))
        .mount(&s)
        .await;
    let mut c = ClientConfig::new(
        Endpoints::single(&s.uri()).unwrap(),
        AppConfig::with_secret(Uuid::nil(), "s"),
    );
    c.limits = Limits {
        request_timeout: Duration::from_millis(150),
        max_read_attempts: 2,
        ..Limits::default()
    };
    let clock = ManualClock::starting_now();
    let client = M365Client::with_clock(c, Arc::new(clock.clone())).unwrap();
    let e = client
        .invoke(T, &CmdletRequest::new("Get-Mailbox"))
        .await
        .unwrap_err();
    match e {
        ExchangeError::Transient {
            status: None,
            message,
        } => assert!(message.contains("timed out"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(clock.sleeps().len(), 1, "one retry");
}

#[tokio::test]
async fn writes_are_never_retried_blindly_nor_batched() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
        .mount(&s)
        .await;
    let clock = ManualClock::starting_now();
    let c = client(&s, &clock);
    let write = CmdletRequest::new("Set-Mailbox")
        .param("Identity", "x")
        .no_confirm();
    assert!(matches!(
        c.invoke(T, &write).await,
        Err(ExchangeError::Transient { .. })
    ));
    let posts = s
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == invoke_path())
        .count();
    assert_eq!(posts, 1, "a write is sent once");
    assert!(clock.sleeps().is_empty());
    let r = c.batch_read(T, vec![write]).await;
    assert!(
        matches!(r[0], Err(ExchangeError::InvalidParameter { .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn probe_401_is_not_configured_after_one_token_refresh() {
    let s = server(T).await;
    Mock::given(method("POST"))
        .and(path(invoke_path()))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "x-ms-diagnostics",
            "2000008;reason=\"The token contains no permissions, or permissions can not be understood.\"",
        ))
        .mount(&s)
        .await;
    let c = client(&s, &ManualClock::starting_now());
    let r = c.check_readiness(T).await;
    assert_eq!(
        r.state,
        exogate_exchange::ReadinessState::NotConfigured,
        "{r:?}"
    );
    assert_eq!(
        r.reason,
        exogate_exchange::ReadinessReason::ProbeUnauthorized
    );
    let reqs = s.received_requests().await.unwrap();
    let tokens = reqs
        .iter()
        .filter(|r| r.url.path().ends_with("/token"))
        .count();
    let probes = reqs
        .iter()
        .filter(|r| r.url.path() == invoke_path())
        .count();
    assert_eq!(
        (tokens, probes),
        (2, 2),
        "fresh token for the check, one refresh on 401"
    );
}
