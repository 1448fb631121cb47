//! Notifications through the front door: webhooks to a receiver this test starts (axum on a
//! loopback port) that checks every Standard Webhooks signature with its own verifier (and
//! with Python's `standardwebhooks` when it is installed), the receiver down and back, e-mail to
//! a real SMTP server (`aiosmtpd`), and the misuse of each new route.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use m365_emulator::Scenario;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::web::{Browser, CONTOSO, sign_in};

const HOSTILE: &str =
    "<script>alert(1)</script>*bold* [x](http://evil.example) Bo\u{202E}gnikcah\u{200B}b";

/// Fast retries, so "down for a minute" is a few hundred milliseconds of failed attempts. The
/// receivers listen on loopback, so private targets are allowed here
/// (`outbound::private_targets_are_refused_at_save_and_at_send` runs with it off).
const FAST: &str = "\n[notifications]\nallow_private_targets = true\nbackoff_base_milliseconds = 20\nbackoff_max_milliseconds = 150\npoll_milliseconds = 20\nlease_seconds = 5\nmax_attempts = 100\n";

fn secret(seed: u8) -> (String, Vec<u8>) {
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect();
    (
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(&key)
        ),
        key,
    )
}

#[derive(Clone, Debug)]
struct Got {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

#[derive(Default)]
struct Receiver {
    down: AtomicBool,
    refused: std::sync::atomic::AtomicU32,
    got: parking_lot::Mutex<Vec<Got>>,
    /// (hardening) Woken at every request the receiver answers.
    changed: tokio::sync::Notify,
}

impl Receiver {
    /// (hardening) Waits until `done` holds, woken by each request the receiver answers (no
    /// polling); fails after 30 s.
    async fn wait_for(&self, what: &str, done: impl Fn(&Receiver) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let woken = self.changed.notified();
            tokio::pin!(woken);
            // Registered before the check, so a request answered in between is not missed.
            woken.as_mut().enable();
            if done(self) {
                return;
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                panic!("the receiver never saw {what} within 30 s");
            }
        }
    }
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    if r.down.load(Ordering::SeqCst) {
        r.refused.fetch_add(1, Ordering::SeqCst);
        r.changed.notify_waiters();
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    r.got.lock().push(Got {
        path,
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body,
    });
    r.changed.notify_waiters();
    StatusCode::NO_CONTENT
}

async fn start_receiver() -> (String, Arc<Receiver>) {
    start_receiver_on(0).await
}

async fn start_receiver_on(port: u16) -> (String, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/{path}", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), r)
}

/// The test's own Standard Webhooks check: HMAC-SHA256 over `id.timestamp.body`, base64, `v1,`.
fn verify(key: &[u8], g: &Got) -> bool {
    use aws_lc_rs::hmac;
    let Some(sig) = g.signature.strip_prefix("v1,") else {
        return false;
    };
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig) else {
        return false;
    };
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(
        &k,
        format!("{}.{}.{}", g.id, g.timestamp, g.body).as_bytes(),
        &sig,
    )
    .is_ok()
}

/// Checks each message with Python's `standardwebhooks` if it is installed: `true` for each
/// message it accepts.
fn python_verify(items: &[(String, &Got)]) -> Option<Vec<bool>> {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import standardwebhooks"])
        .output()
        .ok()?
        .status
        .success();
    if !ok {
        eprintln!("python standardwebhooks not installed: the Rust verifier alone checks");
        return None;
    }
    let input: Vec<Value> = items
        .iter()
        .map(|(s, g)| json!({"secret": s, "id": g.id, "ts": g.timestamp, "sig": g.signature, "body": g.body}))
        .collect();
    let script = r#"
import json, sys
from standardwebhooks.webhooks import Webhook
out = []
for m in json.load(sys.stdin):
    try:
        Webhook(m["secret"]).verify(m["body"], {"webhook-id": m["id"], "webhook-timestamp": m["ts"], "webhook-signature": m["sig"]})
        out.append(True)
    except Exception:
        out.append(False)
print(json.dumps(out))
"#;
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(input).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().ok()?;
    serde_json::from_slice(&out.stdout).ok()
}

/// Waits up to 30 s for `f` (see [`crate::support::until`]).
async fn until<F: std::future::Future<Output = bool>>(what: &str, f: impl FnMut() -> F) {
    crate::support::until(what, Duration::from_secs(30), f).await
}

async fn api(
    b: &Browser,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut r = b
        .http
        .request(method, format!("{}{path}", b.base))
        .header("cookie", &b.cookie)
        .header("x-csrf-token", &b.csrf);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn add_hostile_mallory(app: &TestApp) {
    let r = app
        .http
        .post(format!(
            "{}/_emulator/exchange/{CONTOSO}/objects",
            app.emulator.base_url
        ))
        .json(&json!({"type": "user_mailbox", "name": "mallory", "display_name": HOSTILE}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn agent_asks(app: &TestApp, trustee: &str) -> String {
    let r = app
        .http
        .post(app.url("/api/v1/requests"))
        .bearer_auth(&app.mcp_token)
        .json(&json!({"company": "contoso", "tool": "grant_send_as", "mailbox": "sales", "trustee": trustee}))
        .send()
        .await
        .unwrap();
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_are_signed_well_formed_escaped_and_arrive_once_after_an_outage() {
    let app = TestApp::start_with_config(Scenario::demo(), |t| format!("{t}{FAST}")).await;
    add_hostile_mallory(&app).await;
    let (base, rx) = start_receiver().await;
    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    let (good, good_key) = secret(1);
    let (other, _) = secret(2);
    let mut keys: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    for (path, format, company) in [
        ("teams", "teams", Some("contoso")),
        ("slack", "slack", None),
        ("generic", "generic", Some("contoso")),
        ("elsewhere", "generic", Some("fabrikam")),
    ] {
        let (s, v) = api(
            &admin,
            reqwest::Method::POST,
            "/api/v1/notifications/webhooks",
            Some(json!({"name": path, "url": format!("{base}/{path}"), "format": format, "secret": good, "company": company})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert!(
            !v.to_string().contains("whsec_"),
            "no secret in the answer: {v}"
        );
        assert_eq!(v["url"], format!("{base}/…"), "the URL's path is not shown");
        keys.insert(path.to_owned(), (good.clone(), good_key.clone()));
    }
    let (_, listed) = api(
        &admin,
        reqwest::Method::GET,
        "/api/v1/notifications/webhooks",
        None,
    )
    .await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 4);
    assert!(!listed.to_string().contains("whsec_"));

    // The receiver is down while the request is asked for: every attempt gets 503.
    rx.down.store(true, Ordering::SeqCst);
    let id = agent_asks(&app, "mallory").await;
    rx.wait_for("several refused attempts", |r| {
        r.refused.load(Ordering::SeqCst) >= 9
    })
    .await;
    let (s, d) = api(
        &admin,
        reqwest::Method::GET,
        "/api/v1/notifications/deliveries?state=retrying",
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{d}");
    let retrying = d["deliveries"].as_array().unwrap();
    assert!(!retrying.is_empty());
    assert!(
        retrying
            .iter()
            .all(|x| x["last_error"] == "the endpoint answered HTTP 503"),
        "{d}"
    );
    assert!(!d.to_string().contains("whsec_"));

    // Back up: every message arrives, once per idempotency key.
    rx.down.store(false, Ordering::SeqCst);
    rx.wait_for("three deliveries", |r| r.got.lock().len() >= 3)
        .await;
    until("all sent", || async {
        let (_, d) = api(
            &admin,
            reqwest::Method::GET,
            "/api/v1/notifications/deliveries",
            None,
        )
        .await;
        d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "sent")
    })
    .await;
    let got = rx.got.lock().clone();
    let mut paths: Vec<&str> = got.iter().map(|g| g.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["generic", "slack", "teams"],
        "fabrikam's endpoint hears nothing of contoso"
    );
    let mut ids: Vec<&str> = got.iter().map(|g| g.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), got.len(), "each idempotency key arrives once");
    let link = app.url(&format!("/requests/{id}"));
    for g in &got {
        let (_, key) = &keys[&g.path];
        assert!(verify(key, g), "signature of {} checks", g.path);
        let wrong = secret(2).1;
        assert!(!verify(&wrong, g), "a wrong secret fails the check");
        // Teams and Slack interpret markup, so it is escaped there; the generic body is data
        // (like the JSON API): hidden characters escaped, markup left for its reader to escape.
        if g.path != "generic" {
            assert!(
                !g.body.contains("<script>"),
                "markup escaped in {}: {}",
                g.path,
                g.body
            );
        }
        assert!(
            !g.body.contains('\u{202E}') && !g.body.contains('\u{200B}'),
            "hidden characters escaped"
        );
        assert!(!g.body.contains(&app.mcp_token), "no token in a message");
        let v: Value = serde_json::from_str(&g.body).unwrap();
        match g.path.as_str() {
            "teams" => {
                assert_eq!(v["type"], "message");
                let a = &v["attachments"][0];
                assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
                assert_eq!(a["content"]["type"], "AdaptiveCard");
                assert_eq!(a["content"]["version"], "1.4");
                assert!(
                    a["content"]["body"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|b| b["type"] == "TextBlock")
                );
                let text = a["content"]["body"][1]["text"].as_str().unwrap();
                assert!(
                    text.contains("&lt;script&gt;")
                        && text.contains("\\*bold\\*")
                        && text.contains("\\[x\\]"),
                    "{text}"
                );
                assert_eq!(a["content"]["actions"][0]["type"], "Action.OpenUrl");
                assert_eq!(a["content"]["actions"][0]["url"], link);
            }
            "slack" => {
                assert!(v["text"].is_string());
                let blocks = v["blocks"].as_array().unwrap();
                assert_eq!(blocks[0]["type"], "header");
                assert_eq!(blocks[1]["text"]["type"], "plain_text");
                assert!(
                    blocks[1]["text"]["text"]
                        .as_str()
                        .unwrap()
                        .contains("&lt;script&gt;")
                );
                assert_eq!(blocks[2]["elements"][0]["url"], link);
            }
            _ => {
                assert_eq!(v["id"], g.id);
                assert_eq!(v["type"], "request.created");
                assert_eq!(v["topic"], "approval_waiting");
                assert_eq!(v["request"], id);
                assert_eq!(v["link"], link);
            }
        }
    }
    if let Some(results) = python_verify(&got.iter().map(|g| (good.clone(), g)).collect::<Vec<_>>())
    {
        assert!(
            results.iter().all(|ok| *ok),
            "standardwebhooks accepts each: {results:?}"
        );
        let wrong =
            python_verify(&got.iter().map(|g| (other.clone(), g)).collect::<Vec<_>>()).unwrap();
        assert!(wrong.iter().all(|ok| !ok), "and refuses a wrong secret");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_admins_manage_webhooks_and_see_deliveries_and_nobody_sets_anothers_email() {
    let app = TestApp::start_with_config(Scenario::demo(), |t| format!("{t}{FAST}")).await;
    let (good, _) = secret(1);
    let manager = sign_in(
        &app.http,
        &app.base_url,
        "manager",
        &app.password("manager"),
    )
    .await;
    let tech = sign_in(&app.http, &app.base_url, "tech", &app.password("tech")).await;
    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    let hook =
        json!({"name": "x", "url": "http://127.0.0.1:9/x", "format": "generic", "secret": good});
    for who in [&manager, &tech] {
        let (s, v) = api(
            who,
            reqwest::Method::POST,
            "/api/v1/notifications/webhooks",
            Some(hook.clone()),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("role_too_low")),
            "{v}"
        );
        let (s, v) = api(
            who,
            reqwest::Method::GET,
            "/api/v1/notifications/deliveries",
            None,
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("role_too_low")),
            "{v}"
        );
        let (s, _) = api(
            who,
            reqwest::Method::GET,
            "/api/v1/notifications/webhooks",
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    // An API token (an agent) cannot add one even for an admin's account: like decisions,
    // it needs the person. Here the tech's token is refused by role first.
    let r = app
        .http
        .post(app.url("/api/v1/notifications/webhooks"))
        .bearer_auth(&app.mcp_token)
        .json(&hook)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Bad input is a clear 422.
    for bad in [
        json!({"name": "x", "url": "ftp://x", "format": "generic", "secret": good}),
        json!({"name": "x", "url": "http://127.0.0.1:9/x", "format": "carrier-pigeon", "secret": good}),
        json!({"name": "x", "url": "http://127.0.0.1:9/x", "format": "generic", "secret": "hunter2"}),
    ] {
        let (s, v) = api(
            &admin,
            reqwest::Method::POST,
            "/api/v1/notifications/webhooks",
            Some(bad),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
            "{v}"
        );
        assert!(!v.to_string().contains("hunter2"));
    }
    // Own e-mail: yes. Another's: no (and no hint whether the name exists).
    let (s, v) = api(
        &tech,
        reqwest::Method::PUT,
        "/api/v1/users/me/notifications",
        Some(json!({"email": "tech@msp.example"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["email"], "tech@msp.example");
    for target in ["manager", "nobody-at-all"] {
        let (s, v) = api(
            &tech,
            reqwest::Method::PUT,
            &format!("/api/v1/users/{target}/notifications"),
            Some(json!({"email": "evil@x.example"})),
        )
        .await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("role_too_low")),
            "{v}"
        );
    }
    let (s, v) = api(
        &tech,
        reqwest::Method::PUT,
        "/api/v1/users/me/notifications",
        Some(json!({"email": "a@b.example\r\nBcc: all@x.example"})),
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_input")),
        "{v}"
    );
    let (s, v) = api(
        &admin,
        reqwest::Method::PUT,
        "/api/v1/users/manager/notifications",
        Some(json!({"email": "boss@msp.example", "topics": ["approval_waiting"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = api(
        &manager,
        reqwest::Method::GET,
        "/api/v1/users/me/notifications",
        None,
    )
    .await;
    assert_eq!(v["email"], "boss@msp.example");
    assert_eq!(v["topics"], json!(["approval_waiting"]));
    // A webhook's secret appears nowhere: not in the API, not in the audit log.
    let (s, _) = api(
        &admin,
        reqwest::Method::POST,
        "/api/v1/notifications/webhooks",
        Some(hook),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let events = app.app.store.list_audit(0, 100_000).await.unwrap();
    assert!(events.iter().all(|e| !e.event.detail.contains("whsec_")));
    assert!(
        events
            .iter()
            .any(|e| e.event.kind == "notify.webhook_added")
    );
    // Only an admin removes one; an unknown id is a clear 404.
    let (_, list) = api(
        &admin,
        reqwest::Method::GET,
        "/api/v1/notifications/webhooks",
        None,
    )
    .await;
    let id = list["webhooks"][0]["id"].as_str().unwrap().to_owned();
    let (s, _) = api(
        &manager,
        reqwest::Method::DELETE,
        &format!("/api/v1/notifications/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = api(
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/notifications/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = api(
        &admin,
        reqwest::Method::DELETE,
        &format!("/api/v1/notifications/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("webhook_not_found")),
        "{v}"
    );
    app.stop().await;
}

/// A real SMTP server: `aiosmtpd` writing each message into a Maildir. None (after printing
/// why) when it is not installed, unless `EXOGATE_REQUIRE_ALL_SUITES=1` (CI), where it fails.
struct Smtp {
    port: u16,
    maildir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Smtp {
    async fn start() -> Option<Smtp> {
        let ok = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            let required = std::env::var("EXOGATE_REQUIRE_ALL_SUITES").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "python3 with the `aiosmtpd` package is required (EXOGATE_REQUIRE_ALL_SUITES=1); run scripts/provision.sh"
            );
            eprintln!(
                "skipping: python3 -m aiosmtpd is not installed (scripts/provision.sh installs it)"
            );
            return None;
        }
        let port = {
            let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            l.local_addr().unwrap().port()
        };
        let maildir = tempfile::tempdir().unwrap();
        let child = tokio::process::Command::new("python3")
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("md"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        until("the SMTP server answers", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
        })
        .await;
        Some(Smtp {
            port,
            maildir,
            _child: child,
        })
    }

    /// Every message received so far (raw RFC 5322 text, unfolded lines as sent).
    fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("md").join("new");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
            .collect()
    }

    fn to(&self, address: &str) -> Vec<String> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.lines()
                    .any(|l| l.eq_ignore_ascii_case(&format!("To: {address}")))
            })
            .collect()
    }
}

/// Undoes quoted-printable soft line breaks and `=XX` escapes of a plain-text body.
fn unquote(s: &str) -> String {
    let s = s.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'='
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_manager_gets_mail_when_an_agent_asks_and_the_requester_when_it_is_decided() {
    let Some(smtp) = Smtp::start().await else {
        return;
    };
    let port = smtp.port;
    let app = TestApp::start_with_config(Scenario::demo(), move |t| {
        format!("{t}{FAST}\n[notifications.smtp]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"exogate <exogate@msp.example>\"\n")
    })
    .await;
    let manager = sign_in(
        &app.http,
        &app.base_url,
        "manager",
        &app.password("manager"),
    )
    .await;
    let tech = sign_in(&app.http, &app.base_url, "tech", &app.password("tech")).await;
    for (who, email) in [
        (&manager, "manager@msp.example"),
        (&tech, "tech@msp.example"),
    ] {
        let (s, v) = api(
            who,
            reqwest::Method::PUT,
            "/api/v1/users/me/notifications",
            Some(json!({"email": email})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    // The technician's agent asks, with the technician's API token.
    let id = agent_asks(&app, "bob").await;
    let link = app.url(&format!("/requests/{id}"));
    until("the manager's mail", || async {
        !smtp.to("manager@msp.example").is_empty()
    })
    .await;
    let mail = smtp.to("manager@msp.example").remove(0);
    let body = unquote(&mail);
    assert!(body.contains(&link), "the request link: {body}");
    assert!(
        body.contains("Subject: Approval waiting: Contoso"),
        "{body}"
    );
    assert!(
        body.contains("Message-ID: <ntf_"),
        "the outbox id is the Message-ID: {body}"
    );
    assert!(
        body.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{body}"
    );
    assert!(
        !body.contains(&app.mcp_token) && !body.contains("/approve"),
        "no token, no approve-by-link"
    );
    assert!(
        smtp.to("tech@msp.example").is_empty(),
        "the requester gets no approval mail"
    );

    let (_, req) = manager.api_get(&format!("/api/v1/requests/{id}")).await;
    let (s, v) = manager
        .api_post(
            &format!("/api/v1/requests/{id}/approve"),
            json!({"digest": req["digest"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    until(
        "the requester's mails (approved, then succeeded)",
        || async { smtp.to("tech@msp.example").len() >= 2 },
    )
    .await;
    let mails: Vec<String> = smtp
        .to("tech@msp.example")
        .iter()
        .map(|m| unquote(m))
        .collect();
    assert!(
        mails.iter().any(
            |m| m.contains("Subject: Your request was approved: Contoso") && m.contains(&link)
        ),
        "{mails:?}"
    );
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Subject: Your request succeeded: Contoso")),
        "{mails:?}"
    );
    // One message per outbox row: the manager got exactly one.
    assert_eq!(smtp.to("manager@msp.example").len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_sets_emails_and_webhooks_under_the_same_rules() {
    let app = TestApp::start_with_config(Scenario::demo(), |t| format!("{t}{FAST}")).await;
    let added = app
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
            "http://127.0.0.1:9/hook",
            "--format",
            "slack",
        ])
        .await;
    assert!(added.success, "{added:?}");
    let v = added.json();
    let secret = v["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_"),
        "the generated secret, once: {v}"
    );
    assert!(exogate_core::ops::notify::parse_secret(&secret).is_ok());
    let listed = app
        .cli(&["--json", "notify", "webhook", "list", "--as", "admin"])
        .await;
    assert!(
        listed.success && !listed.stdout.contains("whsec_"),
        "{listed:?}"
    );
    assert_eq!(listed.json()["webhooks"][0]["url"], "http://127.0.0.1:9/…");
    let denied = app
        .cli(&[
            "--json",
            "notify",
            "webhook",
            "add",
            "--as",
            "manager",
            "--name",
            "x",
            "--url",
            "http://127.0.0.1:9/x",
        ])
        .await;
    assert!(
        !denied.success && denied.stderr.contains("[role_too_low]"),
        "{denied:?}"
    );
    let denied = app
        .cli(&["--json", "notify", "deliveries", "--as", "tech"])
        .await;
    assert!(
        !denied.success && denied.stderr.contains("[role_too_low]"),
        "{denied:?}"
    );
    let denied = app
        .cli(&[
            "--json",
            "notify",
            "email",
            "--as",
            "tech",
            "--user",
            "manager",
            "--email",
            "evil@x.example",
        ])
        .await;
    assert!(
        !denied.success && denied.stderr.contains("[role_too_low]"),
        "{denied:?}"
    );
    let own = app
        .cli(&[
            "--json",
            "notify",
            "email",
            "--as",
            "tech",
            "--email",
            "tech@msp.example",
            "--topics",
            "request_outcome",
        ])
        .await;
    assert!(own.success, "{own:?}");
    assert_eq!(own.json()["email"], "tech@msp.example");
    assert_eq!(own.json()["topics"], json!(["request_outcome"]));
    let deliveries = app
        .cli(&["--json", "notify", "deliveries", "--as", "admin"])
        .await;
    assert!(deliveries.success, "{deliveries:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_sets_ones_own_email_and_shows_admins_alone_webhooks_and_deliveries() {
    let app = TestApp::start_with_config(Scenario::demo(), |t| format!("{t}{FAST}")).await;
    let tech = sign_in(&app.http, &app.base_url, "tech", &app.password("tech")).await;
    let (s, page) = tech.get("/notifications").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("id=\"my-email\"")
            && !page.contains("id=\"deliveries\"")
            && !page.contains("id=\"webhooks\"")
    );
    let r = tech
        .form(
            "/notifications/email",
            &[
                ("csrf", tech.csrf.as_str()),
                ("email", "tech@msp.example"),
                ("request_outcome", "1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, v) = tech.api_get("/api/v1/users/me/notifications").await;
    assert_eq!(
        (v["email"].as_str(), v["topics"].clone()),
        (Some("tech@msp.example"), json!(["request_outcome"]))
    );
    let r = tech
        .form(
            "/notifications/email",
            &[("csrf", "forged"), ("email", "x@evil.example")],
        )
        .await;
    assert_ne!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a forged CSRF token changes nothing"
    );
    let r = tech
        .form(
            "/notifications/webhooks",
            &[
                ("csrf", tech.csrf.as_str()),
                ("name", "x"),
                ("url", "http://127.0.0.1:9/x"),
                ("format", "generic"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    let r = admin
        .form(
            "/notifications/webhooks",
            &[
                ("csrf", admin.csrf.as_str()),
                ("name", "ops"),
                ("url", "http://127.0.0.1:9/secret-path"),
                ("format", "teams"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.unwrap();
    assert!(
        shown.contains("id=\"new-secret\"") && shown.contains("whsec_"),
        "the generated secret, once"
    );
    let (_, page) = admin.get("/notifications").await;
    assert!(page.contains("id=\"deliveries\"") && page.contains("id=\"webhooks\""));
    assert!(
        !page.contains("whsec_") && !page.contains("secret-path"),
        "no secret, no URL path"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_refusing_connections_gets_every_message_once_when_it_comes_back() {
    let app = TestApp::start_with_config(Scenario::demo(), |t| format!("{t}{FAST}")).await;
    // A port nobody listens on yet.
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    let (good, key) = secret(3);
    let (s, v) = api(
        &admin,
        reqwest::Method::POST,
        "/api/v1/notifications/webhooks",
        Some(json!({"name": "later", "url": format!("http://127.0.0.1:{port}/s3cr3t-path"), "format": "generic", "secret": good})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let first = agent_asks(&app, "bob").await;
    let second = agent_asks(&app, "carol").await;
    until("refused attempts recorded", || async {
        let (_, d) = api(
            &admin,
            reqwest::Method::GET,
            "/api/v1/notifications/deliveries?state=retrying",
            None,
        )
        .await;
        d["deliveries"]
            .as_array()
            .is_some_and(|l| l.len() == 2 && l.iter().all(|x| x["attempts"].as_u64() >= Some(3)))
    })
    .await;
    let (_, d) = api(
        &admin,
        reqwest::Method::GET,
        "/api/v1/notifications/deliveries",
        None,
    )
    .await;
    let text = d.to_string();
    assert!(text.contains("cannot reach the endpoint"), "{text}");
    assert!(
        !text.contains("s3cr3t-path"),
        "the URL is not in the error: {text}"
    );
    let (_, rx) = start_receiver_on(port).await;
    rx.wait_for("both messages", |r| r.got.lock().len() >= 2)
        .await;
    until("all sent", || async {
        let (_, d) = api(
            &admin,
            reqwest::Method::GET,
            "/api/v1/notifications/deliveries",
            None,
        )
        .await;
        d["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["state"] == "sent")
    })
    .await;
    let got = rx.got.lock().clone();
    assert_eq!(got.len(), 2, "once per idempotency key");
    assert_ne!(got[0].id, got[1].id);
    let mut requests: Vec<String> = got
        .iter()
        .map(|g| {
            assert!(verify(&key, g));
            serde_json::from_str::<Value>(&g.body).unwrap()["request"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    requests.sort();
    let mut want = vec![first, second];
    want.sort();
    assert_eq!(requests, want);
    app.stop().await;
}

#[test]
fn smtp_settings_refuse_plain_text_off_loopback_and_never_show_the_password() {
    use exogate::config::{Config, EXAMPLE};
    let with =
        |smtp: &str| Config::from_toml(&format!("{EXAMPLE}\n[notifications.smtp]\n{smtp}\n"));
    let err =
        with("host = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"x@msp.example\"").unwrap_err();
    assert!(err.to_string().contains("notifications.smtp.tls"), "{err}");
    let err =
        with("host = \"smtp.example.com\"\ntls = \"ssl3\"\nfrom = \"x@msp.example\"").unwrap_err();
    assert!(err.to_string().contains("notifications.smtp.tls"), "{err}");
    let err = with("host = \"smtp.example.com\"\nfrom = \"not an address\"").unwrap_err();
    assert!(err.to_string().contains("notifications.smtp.from"), "{err}");
    let c = with("host = \"smtp.example.com\"\nfrom = \"exogate <x@msp.example>\"\nuser = \"x\"\npassword = \"hunter2-smtp\"").unwrap();
    let smtp = c.notifications.smtp.as_ref().unwrap();
    assert_eq!(
        (smtp.port, smtp.tls),
        (587, exogate::notify_settings::SmtpTls::StartTls)
    );
    assert!(
        !format!("{c:?}").contains("hunter2-smtp"),
        "the password never shows"
    );
    // (hardening) A loopback relay is a private target: refused unless allowed.
    let err = with("host = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"x@msp.example\"")
        .unwrap_err();
    assert!(
        err.to_string().contains("notifications.smtp.host")
            && err.to_string().contains("allow_private_targets"),
        "{err}"
    );
    let c = Config::from_toml(&format!(
        "{}\n[notifications.smtp]\nhost = \"127.0.0.1\"\nport = 2525\ntls = \"none\"\nfrom = \"x@msp.example\"\n",
        EXAMPLE.replace("allow_private_targets = false", "allow_private_targets = true")
    ))
    .unwrap();
    assert_eq!(
        c.notifications.smtp.unwrap().tls,
        exogate::notify_settings::SmtpTls::None
    );
    let err =
        Config::from_toml(&EXAMPLE.replace("max_attempts = 10", "max_attempts = 0")).unwrap_err();
    assert!(
        err.to_string().contains("notifications.max_attempts"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sender_that_dies_mid_send_loses_nothing_and_the_receiver_sees_one_key() {
    // No delivery worker runs on its own here: the test plays the replica that dies.
    let app = TestApp::start_with_config(Scenario::demo(), |t| {
        format!("{t}{FAST}").replace("[notifications]\n", "[notifications]\nenabled = false\n")
    })
    .await;
    let (base, rx) = start_receiver().await;
    let admin = sign_in(&app.http, &app.base_url, "admin", &app.password("admin")).await;
    let (good, _) = secret(4);
    let (s, _) = api(
        &admin,
        reqwest::Method::POST,
        "/api/v1/notifications/webhooks",
        Some(json!({"name": "r", "url": format!("{base}/r"), "format": "generic", "secret": good})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    agent_asks(&app, "bob").await;
    // The dying replica claims the row for 300 ms, sends it, and dies before recording it.
    let store = &app.app.store;
    let now = app.app.clock.now();
    let lease = exogate_core::Timestamp::from_unix_millis(now.unix_millis() + 300);
    let claimed = store.outbox_claim(now, "dying", lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let d = &claimed[0];
    let hook = store
        .webhook_get(match &d.target {
            exogate_core::notifications::Target::Webhook { endpoint } => endpoint,
            other => panic!("{other:?}"),
        })
        .await
        .unwrap()
        .unwrap();
    let http = exogate::notify::webhook::client(Duration::from_secs(5), true).unwrap();
    exogate::notify::webhook::post(
        &http,
        true,
        &hook,
        &d.id,
        now.unix_millis() / 1000,
        &d.message,
        &app.base_url,
    )
    .await
    .unwrap();
    // A surviving replica takes the row over once the lease lapses, and sends it again.
    let stop = tokio_util::sync::CancellationToken::new();
    let mut settings = (*app.app.notify).clone();
    settings.enabled = true;
    let survivor = tokio::spawn(exogate::notify::run_with(
        app.app.clone(),
        Arc::new(settings),
        "survivor".to_owned(),
        stop.clone(),
    ));
    until("the row sent by the survivor", || async {
        store
            .outbox_list(Some(exogate_core::notifications::DeliveryState::Sent), 10)
            .await
            .unwrap()
            .len()
            == 1
    })
    .await;
    stop.cancel();
    survivor.await.unwrap();
    let sent = store.outbox_list(None, 10).await.unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].attempts, 2, "the dead claim counted as an attempt");
    let got = rx.got.lock().clone();
    assert_eq!(got.len(), 2, "sent twice (at least once)");
    assert_eq!(
        got[0].id, got[1].id,
        "under one idempotency key, so the receiver keeps one"
    );
    app.stop().await;
}
