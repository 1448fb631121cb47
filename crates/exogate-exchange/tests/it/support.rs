//! Test support: an emulator on 127.0.0.1:0 with the demo world, a client pointed at it, and a
//! thin helper for the emulator's control API (`/_emulator/`).

use std::sync::Arc;
use std::time::Duration;

use exogate_exchange::{AppConfig, ClientConfig, Endpoints, Limits, M365Client, ManualClock};
use m365_emulator::Emulator;
use serde_json::{Value, json};
use uuid::{Uuid, uuid};

pub const EXCHANGE_APP: Uuid = uuid!("e0e0e0e0-0000-4000-8000-000000000001");
pub const CONNECT_APP: Uuid = uuid!("e0e0e0e0-0000-4000-8000-000000000002");
pub const EXCHANGE_SECRET: &str = "demo-client-secret";
pub const CONNECT_SECRET: &str = "demo-connect-secret";
pub const CONTOSO: Uuid = uuid!("11111111-1111-4111-8111-111111111111");
pub const FABRIKAM: Uuid = uuid!("22222222-2222-4222-8222-222222222222");
pub const NORTHWIND: Uuid = uuid!("33333333-3333-4333-8333-333333333333");
pub const TAILSPIN: Uuid = uuid!("44444444-4444-4444-8444-444444444444");
pub const EXCHANGE_ADMINISTRATOR: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
pub const GLOBAL_READER: &str = "f2ef992c-3afb-46b9-b7cf-a126ee74c451";

pub struct World {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub clock: ManualClock,
}

impl World {
    pub async fn demo() -> World {
        let emu = m365_emulator::start(m365_emulator::Scenario::demo())
            .await
            .expect("emulator starts");
        let w = World {
            emu,
            http: reqwest::Client::new(),
            clock: ManualClock::starting_now(),
        };
        for t in [CONTOSO, FABRIKAM] {
            w.control(
                reqwest::Method::PUT,
                &format!("/exchange/{t}/directory"),
                Some(demo_directory()),
            )
            .await;
        }
        w
    }

    pub fn base(&self) -> &str {
        &self.emu.base_url
    }

    pub fn config(&self, limits: Limits) -> ClientConfig {
        let mut c = ClientConfig::new(
            Endpoints::single(self.base()).expect("loopback URL"),
            AppConfig::with_secret(EXCHANGE_APP, EXCHANGE_SECRET),
        );
        c.connect_app = Some(AppConfig::with_secret(CONNECT_APP, CONNECT_SECRET));
        c.limits = limits;
        c
    }

    /// A client on this world's manual clock.
    pub fn client_with(&self, limits: Limits) -> M365Client {
        M365Client::with_clock(self.config(limits), Arc::new(self.clock.clone())).expect("client")
    }

    pub fn client(&self) -> M365Client {
        self.client_with(Limits::default())
    }

    pub async fn control(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/_emulator{}", self.base(), path);
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("control API reachable");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path} -> {status}: {text}");
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    pub async fn knobs(&self, tenant: Option<Uuid>, knobs: Value) {
        let path = match tenant {
            Some(t) => format!("/knobs/{t}"),
            None => "/knobs".to_owned(),
        };
        self.control(reqwest::Method::PUT, &path, Some(knobs)).await;
    }

    pub async fn counters(&self) -> Value {
        self.control(reqwest::Method::GET, "/counters", None).await
    }

    /// Sum of Exchange requests counted by the emulator (all cmdlets and statuses).
    pub async fn exchange_requests(&self) -> u64 {
        sum_map(&self.counters().await["exchange_requests"])
    }

    /// Token requests for one tenant and app.
    pub async fn token_requests(&self, tenant: Uuid, client_id: Uuid) -> u64 {
        let c = self.counters().await;
        c["token_requests"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        let k = k.to_ascii_lowercase();
                        k.contains(&tenant.to_string()) && k.contains(&client_id.to_string())
                    })
                    .filter_map(|(_, v)| v.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    }

    pub async fn assign_role(&self, tenant: Uuid, client_id: Uuid, role: &str) {
        self.control(
            reqwest::Method::PUT,
            &format!("/tenants/{tenant}/service-principals/{client_id}/roles/{role}"),
            None,
        )
        .await;
    }

    pub async fn freeze_emulator_clock(&self) {
        self.control(
            reqwest::Method::POST,
            "/clock",
            Some(json!({"freeze": true})),
        )
        .await;
    }

    pub async fn advance_emulator_clock(&self, by: Duration) {
        self.control(
            reqwest::Method::POST,
            "/clock",
            Some(json!({"advance_secs": by.as_secs_f64()})),
        )
        .await;
    }

    pub async fn truth(&self, tenant: Uuid, identity: &str) -> Value {
        self.control(
            reqwest::Method::GET,
            &format!("/exchange/{tenant}/objects/{identity}"),
            None,
        )
        .await
    }

    pub async fn apply_log(&self, tenant: Uuid) -> Vec<Value> {
        let v = self
            .control(
                reqwest::Method::GET,
                &format!("/apply-log?tenant={tenant}"),
                None,
            )
            .await;
        match v {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("entries").or_else(|| o.remove("value")) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

pub fn sum_map(v: &Value) -> u64 {
    v.as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

pub fn id(s: &str) -> exogate_exchange::Identity {
    exogate_exchange::Identity::parse(s).expect("valid identity")
}

/// What `ensure` takes to grant (`grant: true`) or remove `right` for `trustee` on `mailbox`.
pub fn change(
    right: exogate_exchange::Right,
    grant: bool,
    mailbox: &exogate_exchange::Identity,
    trustee: &exogate_exchange::Identity,
) -> exogate_exchange::Change {
    exogate_exchange::Change {
        right,
        grant,
        mailbox: mailbox.clone(),
        trustee: trustee.clone(),
        automapping: None,
    }
}

/// Virtual time shared by the client and the emulator: a client sleep (backoff, Retry-After)
/// moves both clocks, so rate buckets refill exactly as the client waits, with no real waiting.
#[derive(Clone)]
pub struct LinkedClock {
    pub client: ManualClock,
    pub emulator: Arc<m365_emulator::Shared>,
}

impl exogate_exchange::Clock for LinkedClock {
    fn now(&self) -> time::OffsetDateTime {
        self.client.now()
    }

    fn sleep(&self, d: Duration) -> futures::future::BoxFuture<'static, ()> {
        self.emulator
            .clock
            .advance(time::Duration::try_from(d).unwrap_or(time::Duration::ZERO));
        self.client.sleep(d)
    }
}

impl World {
    /// A client whose sleeps also advance the (frozen) emulator clock.
    pub fn linked_client(&self, limits: Limits) -> M365Client {
        let clock = LinkedClock {
            client: self.clock.clone(),
            emulator: self.emu.shared.clone(),
        };
        M365Client::with_clock(self.config(limits), Arc::new(clock)).expect("client")
    }
}

/// The demo directory of `docs/DOMAIN.md#demo-world` (written here so the tests do not depend on
/// what the emulator's built-in demo happens to load): users alice, bob, carol (named by object
/// id), shared mailboxes sales and support, a mail-enabled group, a plain security group, and a
/// deleted user whose grant stays as an orphan SID.
pub fn demo_directory() -> Value {
    json!({
        "objects": [
            {"type": "user_mailbox", "name": "alice", "display_name": "Alice Anders"},
            {"type": "user_mailbox", "name": "bob", "display_name": "Bob Berg"},
            {"type": "user_mailbox", "name": "carol", "alias": "carol", "display_name": "Carol Chen", "name_is_object_id": true},
            {"type": "shared_mailbox", "name": "sales", "display_name": "Sales", "self_external_account_row": true},
            {"type": "shared_mailbox", "name": "support", "display_name": "Support", "inherited_admin_rows": true},
            {"type": "mail_enabled_security_group", "name": "Sales Team", "alias": "salesteam", "display_name": "Sales Team"},
            {"type": "security_group", "name": "All Staff", "alias": "allstaff", "display_name": "All Staff"},
            {"type": "user_mailbox", "name": "dave", "display_name": "Dave Dunn"}
        ],
        "grants": [
            {"mailbox": "sales", "trustee": "alice", "right": "FullAccess", "automapping": true},
            {"mailbox": "support", "trustee": "salesteam", "right": "FullAccess", "automapping": false},
            {"mailbox": "support", "trustee": "dave", "right": "FullAccess", "automapping": false},
            {"mailbox": "support", "trustee": "bob", "right": "SendAs"},
            {"mailbox": "sales", "trustee": "alice", "right": "SendAs"},
            {"mailbox": "sales", "trustee": "carol", "right": "SendOnBehalf"}
        ],
        "deleted": ["dave"]
    })
}
