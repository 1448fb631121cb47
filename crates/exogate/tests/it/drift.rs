//! Drift findings through the front door: rights changed through the emulator's control API
//! (outside exogate) become exactly those findings after the next sweep; exogate's own executed
//! changes (approved ones and a system-created removal) never do; a re-sweep moves last-seen
//! on without duplicates; acknowledging needs a reason, a manager and is audited; reverting asks
//! for the inverse through the approval gate; misuse (another company's finding, a viewer, a
//! hostile reason). And `inventory sync --all` skipping companies that are not set up.

use std::time::Duration;

use exogate_core::action::{CanonicalAction, Operation, OperationKind, Permission, Presence};
use exogate_core::audit::{AuditFilter, AuditKind};
use exogate_core::model::{CompanyId, Entitlement, IdentityInput, RequestId, Role, UserName};
use exogate_core::ops;
use exogate_core::request::{ApprovalRequest, Decision, RequestState};
use exogate_core::tools::ToolName;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::TestApp;
use crate::web::{Browser, sign_in};

const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";

async fn control(t: &TestApp, method: reqwest::Method, body: Value) {
    let r = t
        .http
        .request(
            method,
            t.emulator_url(&format!("/_emulator/exchange/{CONTOSO}/grants")),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

/// Changes made outside exogate: Full Access for bob on sales added, alice's Send As on sales
/// removed.
async fn outside_changes(t: &TestApp) {
    control(
        t,
        reqwest::Method::POST,
        json!({"mailbox": "sales", "trustee": "bob", "right": "FullAccess"}),
    )
    .await;
    control(
        t,
        reqwest::Method::DELETE,
        json!({"mailbox": "sales", "trustee": "alice", "right": "SendAs"}),
    )
    .await;
}

async fn sync(t: &TestApp) -> Value {
    let out = t
        .cli(&[
            "inventory",
            "sync",
            "--company",
            "contoso",
            "--as",
            "tech",
            "--json",
        ])
        .await;
    assert!(out.success, "{out:?}");
    out.json()
}

async fn findings(t: &TestApp) -> Vec<Value> {
    let out = t
        .cli(&[
            "drift",
            "list",
            "--company",
            "contoso",
            "--as",
            "manager",
            "--json",
        ])
        .await;
    assert!(out.success, "{out:?}");
    out.json()["findings"].as_array().unwrap().clone()
}

/// (mailbox, right, trustee, change) of each finding, sorted.
fn shapes(list: &[Value]) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = list
        .iter()
        .map(|f| {
            (
                f["mailbox"]["address"].as_str().unwrap().to_owned(),
                f["right"].as_str().unwrap().to_owned(),
                f["trustee"]["address"].as_str().unwrap_or("?").to_owned(),
                f["change"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn drift_events(t: &TestApp, kind: AuditKind) -> Vec<exogate_core::audit::AuditEvent> {
    t.app
        .store
        .search_audit(&AuditFilter {
            kind: Some(kind.as_str().to_owned()),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap()
}

fn finding<'a>(list: &'a [Value], change: &str) -> &'a Value {
    list.iter().find(|f| f["change"] == change).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outside_changes_become_exactly_those_findings_once() {
    let t = TestApp::start().await;
    let first = sync(&t).await;
    assert_eq!(first[0]["drift_found"], 0, "{first}");
    outside_changes(&t).await;
    let second = sync(&t).await;
    assert_eq!(second[0]["drift_found"], 2, "{second}");
    let list = findings(&t).await;
    assert_eq!(
        shapes(&list),
        [
            (
                "sales@contoso.onmicrosoft.com".to_owned(),
                "full_access".to_owned(),
                "bob@contoso.onmicrosoft.com".to_owned(),
                "added".to_owned()
            ),
            (
                "sales@contoso.onmicrosoft.com".to_owned(),
                "send_as".to_owned(),
                "alice@contoso.onmicrosoft.com".to_owned(),
                "removed".to_owned()
            ),
        ],
        "{list:?}"
    );
    for f in &list {
        assert_eq!(f["state"], "open");
        assert_eq!(f["first_seen_at"], f["last_seen_at"]);
        assert!(f["earlier_seen_at"].is_string(), "{f}");
    }
    // One `drift.found` event for the sweep's batch.
    let found = drift_events(&t, AuditKind::DriftFound).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].event.detail.contains("\"count\":2"), "{found:?}");

    // Swept again without change: the same two findings, last seen later, no new event.
    let third = sync(&t).await;
    assert_eq!(third[0]["drift_found"], 0, "{third}");
    let again = findings(&t).await;
    assert_eq!(shapes(&again), shapes(&list));
    for f in &again {
        let before = list.iter().find(|b| b["id"] == f["id"]).expect("same id");
        assert_eq!(f["first_seen_at"], before["first_seen_at"]);
        assert!(
            f["last_seen_at"].as_str().unwrap() > before["last_seen_at"].as_str().unwrap(),
            "{f} vs {before}"
        );
    }
    assert_eq!(drift_events(&t, AuditKind::DriftFound).await.len(), 1);
    t.stop().await;
}

/// A removal the system asked for itself (as scheduled removals of timed grants are): a
/// request row already approved, run by the worker like any other.
async fn system_removal(t: &TestApp, mailbox: &str, trustee: &str, right: Permission) -> RequestId {
    let ctx = t.app.ctx();
    let company = ctx
        .store
        .get_company(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap()
        .unwrap();
    let tenant = company.connection.unwrap().tenant_id;
    let resolve = |s: &str| IdentityInput::parse(s).unwrap();
    let mailbox = ctx.ms.resolve(tenant, &resolve(mailbox)).await.unwrap();
    let trustee = ctx.ms.resolve(tenant, &resolve(trustee)).await.unwrap();
    let action = CanonicalAction::new(
        company.id.clone(),
        tenant,
        Operation {
            kind: OperationKind::Remove,
            permission: right,
        },
        mailbox,
        trustee,
        None,
        Presence::Present,
    );
    let admin = t.actor("admin").await;
    let id = RequestId::from_uuid(uuid::Uuid::now_v7());
    let mut req = ApprovalRequest {
        revert_of: None,
        ..test_request(t, &admin, id, company.id.clone(), tenant, vec![action])
    };
    let now = t.app.clock.now();
    req.state = RequestState::Approved;
    req.decision = Some(Decision {
        by: admin.user.id,
        by_name: admin.user.name.clone(),
        at: now,
        approved: true,
        reason: Some("scheduled removal".into()),
        digest: req.digest.clone(),
    });
    // Recorded as approved by the system, naming the digest (the worker checks the trail).
    let ev = exogate_core::audit::NewAuditEvent::system(now, AuditKind::RequestApproved)
        .company(&company.id)
        .request(id)
        .detail(json!({ "digest": req.digest, "reason": "scheduled removal" }));
    t.app.store.insert_request(&req, ev).await.unwrap();
    t.app.worker_wake.notify_one();
    id
}

fn test_request(
    t: &TestApp,
    actor: &exogate_core::model::Actor,
    id: RequestId,
    company: CompanyId,
    tenant: exogate_core::model::TenantId,
    actions: Vec<CanonicalAction>,
) -> ApprovalRequest {
    let now = t.app.clock.now();
    ApprovalRequest {
        id,
        company,
        tenant,
        tool: ToolName::for_operation(actions[0].operation),
        risk: exogate_core::tools::RiskLevel::High,
        requester: exogate_core::model::Requester {
            user: actor.user.id,
            user_name: actor.user.name.clone(),
            channel: actor.channel.clone(),
        },
        digest: exogate_core::action::digest_actions(&actions),
        actions,
        state: RequestState::Pending,
        created_at: now,
        expires_at: now.plus_secs(3600),
        decision: None,
        cancellation: None,
        attempt: 0,
        lease: None,
        results: Vec::new(),
        finished_at: None,
        message: None,
        revert_of: None,
        not_before: None,
        ends_grant: None,
        ticket: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exogates_own_changes_and_system_removals_are_never_drift() {
    let t = TestApp::start().await;
    sync(&t).await;
    let tech = t.actor("tech").await;
    let mut ids = Vec::new();
    for (tool, mailbox, trustee) in [
        (ToolName::GrantSendAs, "support", "carol"),
        (ToolName::RemoveSendAs, "support", "bob"),
        (ToolName::GrantSendOnBehalf, "support", "alice"),
    ] {
        let r = ops::requests::request_write(
            t.app.ctx(),
            &tech,
            ops::requests::WriteInput {
                id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                company: CompanyId::parse("contoso").unwrap(),
                tool,
                mailbox: IdentityInput::parse(mailbox).unwrap(),
                trustee: IdentityInput::parse(trustee).unwrap(),
                automapping: None,
            },
        )
        .await
        .unwrap();
        t.approve("manager", r.id).await;
        ids.push(r.id);
    }
    ids.push(system_removal(&t, "sales", "alice", Permission::FullAccess).await);
    for id in ids {
        let r = t.wait_terminal(id, Duration::from_secs(60)).await;
        assert_eq!(r.state, RequestState::Succeeded, "{r:?}");
    }
    let report = sync(&t).await;
    assert_eq!(report[0]["drift_found"], 0, "{report}");
    assert!(findings(&t).await.is_empty());
    assert!(drift_events(&t, AuditKind::DriftFound).await.is_empty());
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executed_requests_explain_changes_even_when_the_inventory_patch_missed_them() {
    // A sweep that read a mailbox just before a change ran can write the old state after the
    // worker patched the inventory; the comparison must still see that exogate made the change.
    // Simulated by undoing the patches of the executed requests before the next sweep.
    let t = TestApp::start().await;
    sync(&t).await;
    let tech = t.actor("tech").await;
    let mut ids = Vec::new();
    for (tool, mailbox, trustee) in [
        (ToolName::GrantFullAccess, "support", "bob"),
        (ToolName::RemoveSendAs, "sales", "alice"),
    ] {
        let r = ops::requests::request_write(
            t.app.ctx(),
            &tech,
            ops::requests::WriteInput {
                id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                company: CompanyId::parse("contoso").unwrap(),
                tool,
                mailbox: IdentityInput::parse(mailbox).unwrap(),
                trustee: IdentityInput::parse(trustee).unwrap(),
                automapping: None,
            },
        )
        .await
        .unwrap();
        t.approve("manager", r.id).await;
        ids.push(r.id);
    }
    ids.push(system_removal(&t, "sales", "carol", Permission::SendOnBehalf).await);
    for id in ids {
        let r = t.wait_terminal(id, Duration::from_secs(60)).await;
        assert_eq!(r.state, RequestState::Succeeded, "{r:?}");
        for a in &r.actions {
            let row = exogate_core::inventory::InventoryRow {
                company: a.company.clone(),
                mailbox: a.mailbox.clone(),
                trustee: exogate_core::inventory::InventoryTrustee::resolved(a.trustee.clone()),
                right: a.operation.permission,
            };
            let undo = a.operation.desired() != Presence::Present;
            assert!(t.app.store.inventory_patch(&row, undo).await.unwrap());
        }
    }
    let report = sync(&t).await;
    assert_eq!(report[0]["drift_found"], 0, "{report}");
    assert!(findings(&t).await.is_empty());
    // The same differences made outside exogate are found.
    control(
        &t,
        reqwest::Method::DELETE,
        json!({"mailbox": "support", "trustee": "bob", "right": "FullAccess"}),
    )
    .await;
    let report = sync(&t).await;
    assert_eq!(report[0]["drift_found"], 1, "{report}");
    t.stop().await;
}

/// A demo user signed in (session cookie and CSRF token).
async fn session(t: &TestApp, name: &str) -> Browser {
    sign_in(&t.http, &t.base_url, name, &t.password(name)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledge_needs_a_reason_and_a_manager_and_revert_asks_for_the_inverse() {
    let t = TestApp::start().await;
    sync(&t).await;
    outside_changes(&t).await;
    sync(&t).await;
    let manager = session(&t, "manager").await;
    let (s, body) = manager.api_get("/api/v1/drift?company=contoso").await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let list = body["findings"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{body}");
    let added = finding(&list, "added")["id"].as_str().unwrap().to_owned();
    let removed = finding(&list, "removed")["id"].as_str().unwrap().to_owned();
    let ack = format!("/api/v1/drift/{added}/acknowledge");

    // No reason, an empty one, or one with hidden characters: 422, nothing written.
    let before = t.app.store.audit_head().await.unwrap();
    for body in [
        json!({}),
        json!({"reason": "   "}),
        json!({"reason": "ok\u{202E}txt.exe"}),
        json!({"reason": "x".repeat(501)}),
    ] {
        let (s, b) = manager.api_post(&ack, body.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body} → {b}");
        assert_eq!(b["error"]["code"], "invalid_input", "{b}");
    }
    assert_eq!(t.app.store.audit_head().await.unwrap(), before);

    // A viewer may read findings but not acknowledge them.
    let viewer = session(&t, "viewer").await;
    let (s, b) = viewer.api_get("/api/v1/drift?company=contoso").await;
    assert_eq!(
        (s, b["findings"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let (s, b) = viewer.api_post(&ack, json!({"reason": "looks fine"})).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    assert_eq!(b["error"]["code"], "role_too_low", "{b}");
    // So may a technician not: accepting an unapproved change is a manager's decision.
    let tech = session(&t, "tech").await;
    let (s, b) = tech.api_post(&ack, json!({"reason": "looks fine"})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low"))
    );

    // A manager of another company: the finding does not exist for them (404, like an
    // unknown id), on every route.
    exogate::local_users::add_with_password(
        t.app.ctx(),
        UserName::parse("fabmgr").unwrap(),
        Role::Manager,
        Entitlement::parse("fabrikam").unwrap(),
        "fabrikam-manager-pass",
    )
    .await
    .unwrap();
    let other = sign_in(&t.http, &t.base_url, "fabmgr", "fabrikam-manager-pass").await;
    for path in [ack.clone(), format!("/api/v1/drift/{added}/revert")] {
        let (s, b) = other.api_post(&path, json!({"reason": "mine now"})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{path} → {b}");
        assert_eq!(b["error"]["code"], "drift_finding_not_found", "{b}");
    }
    let unknown = "00000000-0000-8000-8000-000000000000";
    let (s, b) = manager
        .api_post(
            &format!("/api/v1/drift/{unknown}/acknowledge"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("drift_finding_not_found"))
    );
    let (s, b) = other.api_get("/api/v1/drift").await;
    assert_eq!(
        (s, b["findings"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{b}"
    );
    let (s, _) = other.api_get("/api/v1/drift?company=contoso").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // The manager acknowledges with a hostile-looking but printable reason: stored as given,
    // audited, escaped on the page.
    let reason = "<script>alert(1)</script> ticket #42";
    let (s, b) = manager.api_post(&ack, json!({ "reason": reason })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (
            b["state"].as_str(),
            b["acknowledged"]["reason"].as_str(),
            b["acknowledged"]["by"].as_str()
        ),
        (Some("acknowledged"), Some(reason), Some("manager"))
    );
    let acked = drift_events(&t, AuditKind::DriftAcknowledged).await;
    assert_eq!(acked.len(), 1);
    assert_eq!(acked[0].event.actor_name.as_deref(), Some("manager"));
    let detail: Value = serde_json::from_str(&acked[0].event.detail).unwrap();
    assert_eq!(
        (detail["finding"].as_str(), detail["reason"].as_str()),
        (Some(added.as_str()), Some(reason))
    );
    // Twice: a conflict, not a second event.
    let (s, b) = manager.api_post(&ack, json!({"reason": "again"})).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("bad_transition")),
        "{b}"
    );
    assert_eq!(
        drift_events(&t, AuditKind::DriftAcknowledged).await.len(),
        1
    );
    let (s, one) = manager.get("/companies/contoso/drift").await;
    assert_eq!(s, StatusCode::OK);
    assert!(one.contains(&format!("finding-{added}")), "{one}");
    let (s, _) = other.get("/companies/contoso/drift").await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, page) = manager.get("/drift").await;
    assert_eq!(s, StatusCode::OK);
    let at = page.find("ticket #42").expect("the reason is shown");
    let shown = &page[at.saturating_sub(60)..at];
    assert!(shown.contains("&#60;script&#62;alert(1)"), "{shown}");
    assert!(!page.contains("<script>alert(1)"));

    // Revert (a technician may ask): the removal outside is undone by a grant, the addition by
    // a removal; both pending, through the normal gate.
    let (s, b) = tech
        .api_post(&format!("/api/v1/drift/{removed}/revert"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["request"]["state"], "pending", "{b}");
    assert_eq!(b["request"]["tool"], "grant_send_as", "{b}");
    assert_eq!(b["finding"]["state"], "revert_requested");
    assert_eq!(b["finding"]["revert_request"], b["request"]["id"]);
    let (s, b2) = tech
        .api_post(&format!("/api/v1/drift/{added}/revert"), json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b2}");
    assert_eq!(b2["request"]["tool"], "remove_full_access", "{b2}");
    // A viewer cannot ask.
    let (s, b3) = viewer
        .api_post(&format!("/api/v1/drift/{added}/revert"), json!({}))
        .await;
    assert_eq!(
        (s, b3["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_too_low")),
        "{b3}"
    );
    // The revert runs once approved, and the next sweep finds no new drift.
    let id = RequestId::parse(b["request"]["id"].as_str().unwrap()).unwrap();
    t.approve("manager", id).await;
    let done = t.wait_terminal(id, Duration::from_secs(60)).await;
    assert_eq!(done.state, RequestState::Succeeded, "{done:?}");
    let report = sync(&t).await;
    assert_eq!(report[0]["drift_found"], 0, "{report}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sync_all_skips_companies_not_set_up_and_fails_only_for_a_configured_one() {
    let t = TestApp::start().await;
    let out = t
        .cli(&["inventory", "sync", "--all", "--as", "tech", "--json"])
        .await;
    assert!(out.success, "{out:?}");
    let v = out.json();
    let rows = v.as_array().unwrap();
    let swept: Vec<&str> = rows
        .iter()
        .filter(|r| r["swept"] == true)
        .map(|r| r["company"].as_str().unwrap())
        .collect();
    assert_eq!(swept, ["contoso"], "{v}");
    let skipped: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["swept"] == false)
        .map(|r| (r["company"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped.len(), 3, "{v}");
    assert!(skipped.iter().all(|(_, s)| *s != "configured"), "{v}");
    let text = t.cli(&["inventory", "sync", "--all", "--as", "tech"]).await;
    assert!(text.success, "{text:?}");
    assert!(
        text.stdout.contains("skipped (Exchange Admin: "),
        "{text:?}"
    );

    // Contoso's Exchange now fails every call: the sweep of a configured company fails, and
    // the command exits non-zero.
    let r = t
        .http
        .put(t.emulator_url(&format!("/_emulator/knobs/{CONTOSO}")))
        .json(&json!({"error_5xx_rate": 1.0}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    let out = t
        .cli(&["inventory", "sync", "--all", "--as", "tech", "--json"])
        .await;
    assert!(!out.success, "{out:?}");
    // The report, then the error.
    let v: Value = serde_json::Deserializer::from_str(&out.stdout)
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    assert!(out.stderr.contains("sweep_failed"), "{out:?}");
    let contoso = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["company"] == "contoso")
        .unwrap();
    assert_eq!(contoso["ok"], false, "{v}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mcp_lists_drift_findings_read_only() {
    use crate::mcp_http::{call, client, err, ok};
    let t = TestApp::start().await;
    sync(&t).await;
    outside_changes(&t).await;
    sync(&t).await;
    let c = client(&t).await;
    let tools = c.list_all_tools().await.expect("tools/list");
    let tool = tools
        .iter()
        .find(|x| x.name == "list_drift_findings")
        .expect("listed");
    let meta = tool.meta.as_ref().unwrap();
    assert_eq!(meta.0["exogate/risk"], "low");
    assert_eq!(
        tool.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
    // No tool acknowledges or reverts.
    assert!(
        !tools
            .iter()
            .any(|x| x.name.contains("acknowledge") || x.name.contains("revert")),
        "{:?}",
        tools.iter().map(|x| &x.name).collect::<Vec<_>>()
    );
    let r = ok(&call(&c, "list_drift_findings", json!({"company": "contoso"})).await);
    assert_eq!(r["count"], 2, "{r}");
    let mut changes: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["change"].as_str().unwrap())
        .collect();
    changes.sort();
    assert_eq!(changes, ["added", "removed"]);
    let all = ok(&call(&c, "list_drift_findings", json!({})).await);
    assert_eq!(all["count"], 2, "{all}");
    let (e, _) = err(&call(&c, "list_drift_findings", json!({"company": "nope"})).await);
    assert_eq!(e["code"], "company_not_found", "{e}");
    let (e, _) = err(&call(
        &c,
        "list_drift_findings",
        json!({"company": "contoso", "ack": true}),
    )
    .await);
    assert_eq!(e["code"], "invalid_input", "{e}");
    c.cancel().await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cli_lists_acknowledges_and_reverts_findings() {
    let t = TestApp::start().await;
    sync(&t).await;
    outside_changes(&t).await;
    sync(&t).await;
    let text = t.cli(&["drift", "list", "--as", "viewer"]).await;
    assert!(text.success, "{text:?}");
    assert!(
        text.stdout.contains("bob@contoso.onmicrosoft.com") && text.stdout.contains("added"),
        "{text:?}"
    );
    let list = findings(&t).await;
    let added = finding(&list, "added")["id"].as_str().unwrap().to_owned();
    let removed = finding(&list, "removed")["id"].as_str().unwrap().to_owned();
    let out = t
        .cli(&["drift", "ack", &added, "--reason", "ok", "--as", "viewer"])
        .await;
    assert!(
        !out.success && out.stderr.contains("role_too_low"),
        "{out:?}"
    );
    let out = t
        .cli(&["drift", "ack", &added, "--reason", "", "--as", "manager"])
        .await;
    assert!(
        !out.success && out.stderr.contains("invalid_input"),
        "{out:?}"
    );
    let out = t
        .cli(&[
            "drift",
            "ack",
            &added,
            "--reason",
            "approved by phone, ticket 9",
            "--as",
            "manager",
            "--json",
        ])
        .await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.json()["state"], "acknowledged");
    let out = t
        .cli(&["drift", "revert", &removed, "--as", "tech", "--json"])
        .await;
    assert!(out.success, "{out:?}");
    let v = out.json();
    assert_eq!(
        (
            v["request"]["state"].as_str(),
            v["request"]["tool"].as_str()
        ),
        (Some("pending"), Some("grant_send_as")),
        "{v}"
    );
    let out = t
        .cli(&["drift", "revert", "not-a-uuid", "--as", "tech"])
        .await;
    assert!(
        !out.success && out.stderr.contains("invalid_input"),
        "{out:?}"
    );
    t.stop().await;
}
