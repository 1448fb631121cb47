//! The delegation inventory through the front door: a generated random tenant swept with the
//! CLI equals the emulator's ground truth (users, groups, orphaned SIDs, Send on Behalf
//! delegates reported by object id; SELF, inherited and deny rows filtered), an executed write
//! keeps it equal without a sweep, the views across companies, and offboarding through one
//! approval.

use std::collections::BTreeSet;
use std::time::Duration;

use exogate::app::AppEvent;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{SweepBegin, SweepLease, TrusteeClass};
use exogate_core::model::{CompanyId, IdentityInput, RecipientKind, RequestId};
use exogate_core::ops;
use exogate_core::request::{ApprovalRequest, OpOutcome, RequestState};
use exogate_core::tools::ToolName;
use serde_json::{Value, json};

use crate::support::{CliOutput, TestApp};

const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";

type Key = (String, String, String, Option<String>);

/// The emulator's ground truth, filtered the way a report must be.
async fn truth(t: &TestApp) -> BTreeSet<Key> {
    let body: Value = t
        .http
        .get(t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/permissions")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = BTreeSet::new();
    for p in body["permissions"].as_array().unwrap() {
        let sid = p["trustee_sid"].as_str().unwrap_or_default();
        let right = p["right"].as_str().unwrap();
        let (right, sid) = if right.contains("FullAccess") {
            if p["deny"] == json!(true) || p["inherited"] == json!(true) || sid == "S-1-5-10" {
                continue;
            }
            ("full_access", Some(sid.to_owned()))
        } else if right == "SendAs" {
            if sid == "S-1-5-10" {
                continue;
            }
            ("send_as", Some(sid.to_owned()))
        } else if right == "SendOnBehalf" {
            ("send_on_behalf", None)
        } else {
            continue;
        };
        out.insert((
            p["mailbox_object_id"].as_str().unwrap().to_lowercase(),
            right.to_owned(),
            p["trustee"].as_str().unwrap().to_lowercase(),
            sid,
        ));
    }
    out
}

async fn inventory_keys(t: &TestApp) -> BTreeSet<Key> {
    let rows = t
        .app
        .store
        .inventory_rows(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (
                r.mailbox.object_id.clone(),
                r.right.as_str().to_owned(),
                r.trustee.raw.to_lowercase(),
                (r.right != exogate_core::action::Permission::SendOnBehalf)
                    .then(|| r.trustee.sid.clone().unwrap_or_default()),
            )
        })
        .collect()
}

/// The inventory equals the ground truth; on failure, shows only the differences.
async fn same(t: &TestApp) {
    let want = truth(t).await;
    let got = inventory_keys(t).await;
    let extra: Vec<_> = got.difference(&want).collect();
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "inventory differs from the ground truth ({} rows): extra {extra:?}, missing {missing:?}",
        want.len()
    );
}

async fn generate(t: &TestApp, mailboxes: usize, seed: u64) {
    let r = t
        .http
        .put(t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/directory")))
        .json(&serde_json::json!({"generate": {"mailboxes": mailboxes, "seed": seed}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

/// Waits for the worker's event for `id` in a terminal state: it is published after the
/// inventory was patched.
async fn executed(t: &TestApp, id: RequestId, approve_as: &str) -> ApprovalRequest {
    let mut events = t.app.events.subscribe();
    t.approve(approve_as, id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(AppEvent::RequestChanged { id: got, state }))
                if got == id && RequestState::parse(state).is_some_and(|s| s.is_terminal()) =>
            {
                break;
            }
            Ok(_) => {}
            Err(_) => panic!("request {id} did not finish"),
        }
    }
    t.app.store.get_request(id).await.unwrap().unwrap()
}

/// The emulator's counters.
async fn counters(t: &TestApp) -> Value {
    t.http
        .get(t.emulator_url("/_emulator/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Calls by `Cmdlet|status` from the emulator's counters.
async fn calls(t: &TestApp) -> std::collections::BTreeMap<String, u64> {
    serde_json::from_value(counters(t).await["exchange_requests"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_asks_one_permission_read_per_mailbox_and_lists_everything_else_once() {
    let t = TestApp::start().await;
    generate(&t, 1200, 5).await;
    let r = t
        .http
        .delete(t.emulator_url("/_emulator/counters"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let out = sync_contoso_cli(&t).await;
    assert!(out.success, "{out:?}");
    let mailboxes = out.json()[0]["mailboxes"].as_u64().unwrap();
    assert!(mailboxes > 1100, "{out:?}");
    same(&t).await;
    let calls = calls(&t).await;
    let n = |k: &str| calls.get(k).copied().unwrap_or(0);
    // Full Access: exactly one Get-MailboxPermission per mailbox, ten to a `$batch`.
    assert_eq!(n("Get-MailboxPermission|200"), mailboxes, "{calls:?}");
    // Group members: one Get-DistributionGroupMember per group that holds rights or sits
    // inside one, through `$batch` too.
    let groups = membership(&t).await;
    let rows = t
        .app
        .store
        .inventory_rows(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap();
    let holders: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.trustee.class == TrusteeClass::Group)
        .map(|r| r.trustee.key())
        .collect();
    let expanded: BTreeSet<String> = holders
        .iter()
        .flat_map(|g| inside(&groups, g))
        .filter(|m| groups.contains_key(m))
        .chain(holders.iter().cloned())
        .collect();
    assert_eq!(
        n("Get-DistributionGroupMember|200"),
        expanded.len() as u64,
        "{calls:?}"
    );
    // (They are read as the groups turn up during the Full Access phase, so a batch may
    // carry fewer than ten.)
    let batches = n("$batch|200") - mailboxes.div_ceil(10);
    assert!(
        batches >= (expanded.len() as u64).div_ceil(10) && batches <= expanded.len() as u64,
        "{batches} batches for {} groups: {calls:?}",
        expanded.len()
    );
    // Mailboxes, Send As (a SELF row per mailbox plus the grants) and the groups: each one
    // paged list of 1,000 rows a page; no group is looked up on its own.
    assert_eq!(n("Get-Mailbox|200"), 2, "{calls:?}");
    assert_eq!(n("Get-RecipientPermission|200"), 2, "{calls:?}");
    assert_eq!(n("Get-Recipient|200"), 1, "{calls:?}");
    let other: u64 = calls
        .iter()
        .filter(|(k, _)| {
            ![
                "Get-MailboxPermission|200",
                "Get-DistributionGroupMember|200",
                "$batch|200",
                "Get-Mailbox|200",
                "Get-RecipientPermission|200",
                "Get-Recipient|200",
            ]
            .contains(&k.as_str())
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(other, 0, "no other call, no error: {calls:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_random_tenant_sweeps_to_its_ground_truth_and_writes_keep_it_true() {
    let t = TestApp::start().await;
    generate(&t, 400, 11).await;
    let out = sync_contoso_cli(&t).await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.json()[0]["ok"], json!(true), "{out:?}");
    same(&t).await;

    // Every kind of trustee is there, classified: users with their identity, groups as groups,
    // deleted principals as orphans, Send on Behalf delegates printed by object id resolved.
    let rows = t
        .app
        .store
        .inventory_rows(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap();
    let has = |c: TrusteeClass| rows.iter().any(|r| r.trustee.class == c);
    assert!(
        has(TrusteeClass::User) && has(TrusteeClass::Group),
        "users and groups"
    );
    assert!(!has(TrusteeClass::Unresolved), "every trustee resolves");
    for r in &rows {
        let orphan = r.trustee.raw.starts_with("S-1-5-21-");
        assert_eq!(orphan, r.trustee.class == TrusteeClass::Orphan, "{r:?}");
        if r.trustee.class == TrusteeClass::Group {
            assert_eq!(
                r.trustee.identity.as_ref().unwrap().kind,
                RecipientKind::Group
            );
        }
    }
    assert!(
        rows.iter().any(
            |r| r.right == exogate_core::action::Permission::SendOnBehalf
                && uuid::Uuid::parse_str(&r.trustee.raw).is_ok()
                && r.trustee
                    .identity
                    .as_ref()
                    .is_some_and(|i| i.object_id == r.trustee.raw.to_lowercase())
        ),
        "a Send on Behalf delegate reported by object id is resolved"
    );
    // Orphans: delete a user who holds rights; the next sweep shows its rows as orphans.
    let holder = rows
        .iter()
        .find(|r| {
            r.trustee.class == TrusteeClass::User
                && r.right != exogate_core::action::Permission::SendOnBehalf
        })
        .unwrap()
        .trustee
        .identity
        .clone()
        .unwrap();
    let r = t
        .http
        .delete(t.emulator_url(&format!(
            "/_emulator/exchange/{CONTOSO}/objects/{}",
            holder.primary_address
        )))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let out = sync_contoso_cli(&t).await;
    assert!(out.success, "{out:?}");
    same(&t).await;
    let rows = t
        .app
        .store
        .inventory_rows(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap();
    assert!(
        rows.iter().any(|r| r.trustee.class == TrusteeClass::Orphan),
        "orphans are listed as orphans"
    );

    // A write executes; the inventory matches the ground truth again without a sweep.
    let mailbox = rows
        .iter()
        .find(|r| r.mailbox.kind == RecipientKind::SharedMailbox)
        .unwrap()
        .mailbox
        .clone();
    let trustee = rows
        .iter()
        .filter_map(|r| r.trustee.identity.clone())
        .find(|i| {
            i.kind == RecipientKind::UserMailbox
                && !rows.iter().any(|r| {
                    r.mailbox.object_id == mailbox.object_id && r.trustee.key() == i.object_id
                })
        })
        .unwrap();
    let tech = t.actor("tech").await;
    for tool in [ToolName::GrantFullAccess, ToolName::GrantSendOnBehalf] {
        let req = ops::requests::request_write(
            t.app.ctx(),
            &tech,
            ops::requests::WriteInput {
                id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                company: CompanyId::parse("contoso").unwrap(),
                tool,
                mailbox: IdentityInput::parse(&mailbox.primary_address).unwrap(),
                trustee: IdentityInput::parse(&trustee.primary_address).unwrap(),
                automapping: None,
            },
        )
        .await
        .unwrap();
        let done = executed(&t, req.id, "manager").await;
        assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    }
    let got = inventory_keys(&t).await;
    let want = truth(&t).await;
    // Our rows for the granted trustee carry the address Exchange prints and the SID we did not
    // read; compare on mailbox, right and trustee identity for the patched rows.
    let strip = |s: BTreeSet<Key>| -> BTreeSet<(String, String)> {
        s.into_iter().map(|k| (k.0, k.1)).collect()
    };
    assert_eq!(strip(got.clone()), strip(want.clone()));
    assert_eq!(got.len(), want.len(), "one row per grant");
    let by_user = ops::inventory::by_user(
        t.app.ctx(),
        &tech,
        &IdentityInput::parse(&trustee.primary_address).unwrap(),
    )
    .await
    .unwrap();
    let contoso = by_user
        .iter()
        .find(|c| c.company.as_str() == "contoso")
        .unwrap();
    assert!(
        contoso
            .rows
            .iter()
            .any(|r| r.mailbox.object_id == mailbox.object_id
                && r.right == exogate_core::action::Permission::FullAccess)
    );
    assert!(
        contoso
            .rows
            .iter()
            .any(|r| r.mailbox.object_id == mailbox.object_id
                && r.right == exogate_core::action::Permission::SendOnBehalf)
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn views_show_as_of_warn_about_unswept_companies_and_export() {
    let t = TestApp::start().await;
    let out = t
        .cli(&["inventory", "sync", "--as", "admin", "--json"])
        .await;
    // Fabrikam lacks the Exchange role and Tailspin is gone: a sweep of all skips them
    // (their Exchange Admin is not configured) and Contoso's works.
    assert!(out.success, "{out:?}");
    let json = out.json();
    let swept: Vec<_> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["swept"] == json!(true))
        .map(|r| r["company"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(swept, ["contoso"], "{json}");
    // Asked for by name, Fabrikam's sweep runs and fails.
    let out = t
        .cli(&[
            "inventory",
            "sync",
            "--company",
            "fabrikam",
            "--as",
            "admin",
        ])
        .await;
    assert!(!out.success, "{out:?}");
    let out = t.cli(&["inventory", "user", "bob", "--as", "admin"]).await;
    assert!(out.success, "{out:?}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("contoso (Contoso), as of ") && l.contains(" (20")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("WARNING: the last sweep failed"),
        "{}",
        out.stdout
    );
    let out = t
        .cli(&["inventory", "user", "bob", "--as", "admin", "--json"])
        .await;
    let v = out.json();
    let contoso = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["company"] == "contoso")
        .unwrap();
    assert_eq!(contoso["freshness"], "fresh");
    assert!(contoso["as_of"].is_string());
    assert!(
        !contoso["rows"].as_array().unwrap().is_empty(),
        "bob holds rights in the demo tenant: {v}"
    );
    let fabrikam = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["company"] == "fabrikam")
        .unwrap();
    assert_eq!(fabrikam["freshness"], "failed");
    // Entitlement: the viewer only sees what they are entitled to (the demo's viewer sees Contoso).
    let out = t
        .cli(&[
            "inventory",
            "mailbox",
            "sales@contoso.onmicrosoft.com",
            "--company",
            "contoso",
            "--as",
            "viewer",
            "--csv",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(
        out.stdout
            .starts_with("company,as_of,freshness,mailbox_object_id"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.lines().count() > 1, "{}", out.stdout);
    let out = t
        .cli(&[
            "inventory",
            "export",
            "--company",
            "contoso",
            "--as",
            "admin",
            "--json",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(
        !out.json()["companies"][0]["rows"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offboarding_removes_every_right_through_one_approval() {
    let t = TestApp::start().await;
    generate(&t, 300, 5).await;
    let out = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "tech"])
        .await;
    assert!(out.success, "{out:?}");
    let rows = t
        .app
        .store
        .inventory_rows(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap();
    // The user holding the most direct rights, of at least two kinds ideally.
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in rows
        .iter()
        .filter(|r| r.trustee.class == TrusteeClass::User)
    {
        *counts
            .entry(r.trustee.identity.as_ref().unwrap().primary_address.clone())
            .or_default() += 1;
    }
    // Among those, one who is in no group that holds rights (what a group gives is not the
    // user's to remove; another test covers it).
    let mut ranked: Vec<(String, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen = None;
    for (address, n) in ranked {
        // Named by object id: the address of a generated user may match several recipients.
        let id = rows
            .iter()
            .filter_map(|r| r.trustee.identity.as_ref())
            .find(|i| i.primary_address == address)
            .unwrap()
            .object_id
            .clone();
        let held = t
            .app
            .store
            .inventory_by_trustee(&CompanyId::parse("contoso").unwrap(), &id)
            .await
            .unwrap();
        if held.iter().all(|r| r.trustee.class != TrusteeClass::Group) {
            chosen = Some((id, n));
            break;
        }
    }
    let (bob, n) = chosen.expect("a user in no rights-holding group");
    assert!(n >= 2, "a user with several rights");
    let before = t.apply_log().await.len();
    let out = t
        .cli(&[
            "offboard",
            "--company",
            "contoso",
            "--user",
            &bob,
            "--as",
            "tech",
            "--json",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let req = out.json();
    assert_eq!(req["tool"], "offboard_user", "{req}");
    assert_eq!(req["risk"], "high");
    assert_eq!(req["actions"].as_array().unwrap().len(), n, "{req}");
    assert_eq!(
        t.apply_log().await.len(),
        before,
        "nothing changes before approval"
    );
    let id = RequestId::parse(req["id"].as_str().unwrap()).unwrap();
    let done = executed(&t, id, "manager").await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    assert_eq!(done.results.len(), n);
    assert!(
        done.results
            .iter()
            .all(|r| r.outcome == OpOutcome::Changed && r.verified),
        "{done:?}"
    );
    // The apply log shows each removal exactly once.
    let log: Vec<Value> = t.apply_log().await.into_iter().skip(before).collect();
    assert_eq!(log.len(), n, "{log:?}");
    let distinct: BTreeSet<String> = log.iter().map(|e| e["change"].to_string()).collect();
    assert_eq!(distinct.len(), n, "{log:?}");
    assert!(
        log.iter()
            .all(|e| e["cmdlet"].as_str().unwrap().starts_with("Remove-")
                || e["cmdlet"] == "Set-Mailbox"),
        "{log:?}"
    );
    // Bob has nothing left, in the inventory and in Exchange's ground truth.
    let out = t
        .cli(&["inventory", "user", &bob, "--as", "tech", "--json"])
        .await;
    let v = out.json();
    let contoso = v["companies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["company"] == "contoso")
        .unwrap();
    assert_eq!(contoso["rows"], json!([]), "{v}");
    let bob_lower = bob.to_lowercase();
    let prefix = format!("{}@", bob_lower.split('@').next().unwrap());
    assert!(
        truth(&t)
            .await
            .iter()
            .all(|k| k.2 != bob_lower && !k.2.starts_with(&prefix)),
        "bob holds nothing in Exchange"
    );
    // Offboarding again finds nothing to do.
    let out = t
        .cli(&[
            "offboard",
            "--company",
            "contoso",
            "--user",
            &bob,
            "--as",
            "tech",
        ])
        .await;
    assert!(!out.success);
    assert!(out.stderr.contains("holds no Full Access"), "{out:?}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_running_elsewhere_is_left_alone_and_a_crashed_one_continues_where_it_stopped() {
    let t = TestApp::start().await;
    generate(&t, 250, 3).await;
    let out = t
        .cli(&["inventory", "sync", "--company", "contoso", "--as", "tech"])
        .await;
    assert!(out.success, "{out:?}");
    let contoso = CompanyId::parse("contoso").unwrap();
    let rows = t.app.store.inventory_rows(&contoso).await.unwrap();
    // Another server's sweep wrote the Full Access of some mailboxes and holds its lease.
    let tenant = exogate_core::model::TenantId::parse(CONTOSO).unwrap();
    let other = |until| SweepLease {
        owner: "other-server".into(),
        until,
    };
    let now = t.app.clock.now();
    let begin = t
        .app
        .store
        .inventory_begin_sweep(
            &contoso,
            tenant,
            now,
            &other(now.plus_secs(120)),
            NewAuditEvent::system(now, AuditKind::InventorySweepStarted).company(&contoso),
        )
        .await
        .unwrap();
    let SweepBegin::Started(start) = begin else {
        panic!("{begin:?}")
    };
    let done: BTreeSet<String> = rows
        .iter()
        .filter(|r| r.right == exogate_core::action::Permission::FullAccess)
        .map(|r| r.mailbox.object_id.clone())
        .take(20)
        .collect();
    let written: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.right == exogate_core::action::Permission::FullAccess
                && done.contains(&r.mailbox.object_id)
        })
        .cloned()
        .collect();
    let marks: Vec<String> = done.iter().map(|id| format!("fa:{id}")).collect();
    assert!(
        t.app
            .store
            .inventory_write_chunk(&contoso, start.generation, "other-server", &written, &marks)
            .await
            .unwrap()
    );
    // While its lease holds, a sweep here is refused with a clear code and asks Exchange
    // nothing.
    let calls_before = calls(&t).await;
    let out = sync_contoso_cli(&t).await;
    assert!(!out.success, "{out:?}");
    let error = &out.json()["error"];
    assert_eq!(error["code"], json!("sweep_running"), "{out:?}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("already running"),
        "{out:?}"
    );
    assert_eq!(calls(&t).await, calls_before, "no Exchange call");
    // The other server dies: its lease runs out, and the next sweep continues its generation.
    assert!(
        t.app
            .store
            .inventory_renew_lease(&contoso, start.generation, &other(t.app.clock.now()))
            .await
            .unwrap()
    );
    let out = sync_contoso_cli(&t).await;
    assert!(out.success, "{out:?}");
    let report = &out.json()[0];
    assert_eq!(report["resumed"], json!(true), "{report}");
    assert_eq!(report["generation"], json!(start.generation), "{report}");
    assert_eq!(report["skipped"], json!(done.len()), "{report}");
    same(&t).await;

    // The audit log: each start (by whom, from where) and each end, with what was found.
    let events = t.app.store.list_audit(0, 10_000).await.unwrap();
    let sweeps: Vec<_> = events
        .iter()
        .filter(|e| e.event.kind.starts_with("inventory."))
        .map(|e| &e.event)
        .collect();
    let kinds: Vec<&str> = sweeps.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "inventory.sweep_started",
            "inventory.sweep_finished",
            "inventory.sweep_started",
            "inventory.sweep_started",
            "inventory.sweep_finished"
        ]
    );
    let detail = |i: usize| serde_json::from_str::<Value>(&sweeps[i].detail).unwrap();
    assert_eq!(sweeps[0].actor_name.as_deref(), Some("tech"));
    assert_eq!(sweeps[0].channel, "cli");
    assert_eq!(sweeps[0].company.as_deref(), Some("contoso"));
    assert_eq!(detail(0)["tenant"], json!(CONTOSO));
    assert!(detail(1)["mailboxes"].as_u64().unwrap() > 200);
    assert_eq!(detail(3)["resumed"], json!(true));
    assert_eq!(detail(4)["skipped"], json!(done.len()));
    t.stop().await;
}

/// The emulator's throttle and concurrency counters for Contoso.
async fn contoso_counters(t: &TestApp) -> (u64, u64) {
    let v = counters(t).await;
    (
        v["throttled"][CONTOSO].as_u64().unwrap_or(0),
        v["max_in_flight"][CONTOSO].as_u64().unwrap_or(0),
    )
}

/// `exogate inventory sync --company contoso --as tech --json`.
async fn sync_contoso_cli(t: &TestApp) -> CliOutput {
    t.cli(&[
        "inventory",
        "sync",
        "--company",
        "contoso",
        "--as",
        "tech",
        "--json",
    ])
    .await
}

/// The same, which must succeed; its report.
async fn sync_contoso(t: &TestApp) -> Value {
    let out = sync_contoso_cli(t).await;
    assert!(out.success, "{out:?}");
    out.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweep_backs_off_on_429_and_stays_within_the_configured_limits() {
    // Exchange allows 2 calls in flight per tenant; we are configured for 4: Exchange answers
    // some with 429 (Retry-After 50 ms), the sweep waits and still reads everything.
    let mut scenario = m365_emulator::Scenario::demo();
    scenario.knobs.tenant_concurrency_cap = Some(2);
    scenario.knobs.retry_after_secs = 0.05;
    scenario.knobs.latency_ms.insert("*".to_owned(), 2);
    let t = TestApp::start_with_microsoft(
        scenario.clone(),
        "tenant_concurrency = 4\nglobal_concurrency = 64",
    )
    .await;
    generate(&t, 600, 9).await;
    sync_contoso(&t).await;
    same(&t).await;
    let (throttled, max_in_flight) = contoso_counters(&t).await;
    assert!(throttled > 0, "the 429 path ran ({throttled} throttled)");
    assert!(max_in_flight <= 2, "{max_in_flight}");
    t.stop().await;

    // Configured for at most one call in flight in all: Exchange never sees two at once, so
    // it never throttles.
    let t =
        TestApp::start_with_microsoft(scenario, "tenant_concurrency = 4\nglobal_concurrency = 1")
            .await;
    generate(&t, 600, 9).await;
    sync_contoso(&t).await;
    same(&t).await;
    assert_eq!(contoso_counters(&t).await, (0, 1));
    t.stop().await;
}

/// The emulator's group membership: group object id → direct member object ids (lowercase).
async fn membership(t: &TestApp) -> std::collections::BTreeMap<String, Vec<String>> {
    let v: Value = t
        .http
        .get(t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/groups")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["mail_enabled"] == json!(true))
        .map(|g| {
            (
                g["object_id"].as_str().unwrap().to_lowercase(),
                g["members"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m["object_id"].as_str().unwrap().to_lowercase())
                    .collect(),
            )
        })
        .collect()
}

/// Everyone inside `group`, through nested groups too.
fn inside(
    groups: &std::collections::BTreeMap<String, Vec<String>>,
    group: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![group.to_owned()];
    let mut seen = BTreeSet::from([group.to_owned()]);
    while let Some(g) = stack.pop() {
        for m in groups.get(&g).into_iter().flatten() {
            out.insert(m.clone());
            if groups.contains_key(m) && seen.insert(m.clone()) {
                stack.push(m.clone());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rights_held_through_groups_follow_the_emulators_membership() {
    let t = TestApp::start().await;
    generate(&t, 400, 11).await;
    sync_contoso(&t).await;
    same(&t).await;
    let contoso = CompanyId::parse("contoso").unwrap();
    let groups = membership(&t).await;
    let rows = t.app.store.inventory_rows(&contoso).await.unwrap();
    let group_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.trustee.class == TrusteeClass::Group)
        .collect();
    assert!(!group_rows.is_empty(), "groups hold rights");
    let holders: BTreeSet<String> = group_rows.iter().map(|r| r.trustee.key()).collect();
    let members: BTreeSet<String> = holders
        .iter()
        .flat_map(|g| inside(&groups, g))
        .filter(|m| !groups.contains_key(m))
        .collect();
    assert!(members.len() > 5, "{members:?}");
    let nested = holders
        .iter()
        .any(|g| groups[g].iter().any(|m| groups.contains_key(m)));
    assert!(nested, "a group holding rights has a group inside it");
    // For every member: exactly the rows of the groups they are in, directly or nested.
    for m in &members {
        let want: BTreeSet<_> = group_rows
            .iter()
            .filter(|r| inside(&groups, &r.trustee.key()).contains(m))
            .map(|r| format!("{:?}", r.key()))
            .collect();
        let got: BTreeSet<_> = t
            .app
            .store
            .inventory_by_trustee(&contoso, m)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.trustee.class == TrusteeClass::Group)
            .map(|r| format!("{:?}", r.key()))
            .collect();
        assert_eq!(got, want, "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn carol_opens_support_through_sales_team_until_she_leaves_it() {
    let t = TestApp::start().await;
    sync_contoso(&t).await;
    let through_group = |v: &Value| -> Vec<String> {
        v["companies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["company"] == "contoso")
            .unwrap()["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["trustee"]["class"] == "group")
            .map(|r| {
                format!(
                    "{} {} {}",
                    r["mailbox"]["address"].as_str().unwrap(),
                    r["right"].as_str().unwrap(),
                    r["trustee"]["display_name"].as_str().unwrap()
                )
            })
            .collect()
    };
    let out = t
        .cli(&["inventory", "user", "carol", "--as", "tech", "--json"])
        .await;
    assert_eq!(
        through_group(&out.json()),
        ["support@contoso.onmicrosoft.com full_access Sales Team"],
        "{out:?}"
    );
    // Offboarding carol removes what she holds herself (Send on Behalf on sales) and names
    // what stays because a group gives it.
    let out = t
        .cli(&[
            "offboard",
            "--company",
            "contoso",
            "--user",
            "carol",
            "--as",
            "tech",
            "--json",
        ])
        .await;
    assert!(out.success, "{out:?}");
    let req = out.json();
    let actions = req["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{req}");
    assert_eq!(
        actions[0]["mailbox"]["address"],
        "sales@contoso.onmicrosoft.com"
    );
    let kept = req["held_through_groups"].as_array().unwrap();
    assert_eq!(kept.len(), 1, "{req}");
    assert_eq!(
        kept[0]["mailbox"]["address"],
        "support@contoso.onmicrosoft.com"
    );
    assert_eq!(kept[0]["trustee"]["display_name"], "Sales Team");
    let out = t
        .cli(&[
            "offboard",
            "--company",
            "contoso",
            "--user",
            "carol",
            "--as",
            "tech",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert!(
        out.stdout.contains("Not part of it (held through a group")
            && out
                .stdout
                .contains("on support@contoso.onmicrosoft.com through salesteam@"),
        "{out:?}"
    );
    // Bob is in no mail-enabled group: nothing through groups.
    let out = t
        .cli(&["inventory", "user", "bob", "--as", "tech", "--json"])
        .await;
    assert!(through_group(&out.json()).is_empty(), "{out:?}");
    // Carol leaves the group; the next sweep no longer gives her support.
    let r = t
        .http
        .delete(t.emulator_url(&format!(
            "/_emulator/exchange/{CONTOSO}/groups/salesteam/members/carol"
        )))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    sync_contoso(&t).await;
    let out = t
        .cli(&["inventory", "user", "carol", "--as", "tech", "--json"])
        .await;
    assert!(through_group(&out.json()).is_empty(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_sweep_renews_its_lease_so_nobody_takes_it_over() {
    // A 2-second lease (renewed every half second) and a sweep that needs several seconds:
    // 60 batches of ten reads at 20 ms each, two at a time.
    let mut scenario = m365_emulator::Scenario::demo();
    scenario.knobs.latency_ms.insert("*".to_owned(), 20);
    scenario.knobs.tenant_concurrency_cap = Some(2);
    let t = TestApp::start_with_config(scenario, |text| {
        format!(
            "{}\n[inventory]\nsweep_interval_hours = 0\nlease_seconds = 2\n",
            text.replacen("[microsoft]\n", "[microsoft]\ntenant_concurrency = 2\n", 1)
        )
    })
    .await;
    assert_eq!(t.app.sweep_lease, Duration::from_secs(2));
    generate(&t, 600, 4).await;
    let contoso = CompanyId::parse("contoso").unwrap();
    let tech = t.actor("tech").await;
    let (tx, mut rx) = tokio::sync::watch::channel(0u64);
    let progress: exogate::inventory::ProgressFn = std::sync::Arc::new(move |_, p| {
        if p.phase == exogate::inventory::Phase::FullAccess {
            let _ = tx.send(p.done * 100 / p.total.max(1));
        }
    });
    let started = std::time::Instant::now();
    let first = {
        let app = t.app.clone();
        let tech = tech.clone();
        let contoso = contoso.clone();
        tokio::spawn(async move {
            exogate::inventory::sync_company(&app, &tech, &contoso, &progress).await
        })
    };
    // Most of the Full Access phase done: by the emulator's latency alone, more than twice
    // the lease has passed, so only renewals keep the first sweep's claim alive.
    rx.wait_for(|pct| *pct >= 80).await.unwrap();
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let second = exogate::inventory::sync_company(
        &t.app,
        &tech,
        &contoso,
        &exogate::inventory::no_progress(),
    )
    .await;
    assert!(
        matches!(second, Err(exogate::inventory::SweepError::Busy { .. })),
        "{second:?}"
    );
    let report = first.await.unwrap().expect("the first sweep finishes");
    assert!(!report.resumed);
    same(&t).await;
    t.stop().await;
}
