//! Property: over random sequences of requests, decisions and cancellations by random actors,
//! no change ever reaches Exchange (the emulator's apply log) without an approved request, and
//! every approved request that changed something reached it exactly once.

use std::collections::HashMap;
use std::time::Duration;

use exogate_core::action::{OperationKind, Permission};
use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::ops::requests::WriteInput;
use exogate_core::request::{OpOutcome, RequestState};
use exogate_core::tools::ToolName;
use proptest::prelude::*;

use crate::support::TestApp;

const ACTORS: [&str; 4] = ["viewer", "tech", "manager", "admin"];
const TOOLS: [ToolName; 6] = [
    ToolName::GrantFullAccess,
    ToolName::GrantSendAs,
    ToolName::GrantSendOnBehalf,
    ToolName::RemoveFullAccess,
    ToolName::RemoveSendAs,
    ToolName::RemoveSendOnBehalf,
];
const MAILBOXES: [&str; 3] = ["sales", "support", "alice"];
const TRUSTEES: [&str; 3] = ["bob", "carol", "alice"];

#[derive(Debug, Clone)]
enum Step {
    Request {
        actor: usize,
        tool: usize,
        mailbox: usize,
        trustee: usize,
    },
    Approve {
        request: usize,
        actor: usize,
    },
    Reject {
        request: usize,
        actor: usize,
    },
    Cancel {
        request: usize,
        actor: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..4usize, 0..6usize, 0..3usize, 0..3usize)
            .prop_map(|(actor, tool, mailbox, trustee)| Step::Request { actor, tool, mailbox, trustee }),
        5 => (0..8usize, 0..4usize).prop_map(|(request, actor)| Step::Approve { request, actor }),
        1 => (0..8usize, 0..4usize).prop_map(|(request, actor)| Step::Reject { request, actor }),
        1 => (0..8usize, 0..4usize).prop_map(|(request, actor)| Step::Cancel { request, actor }),
    ]
}

fn right(p: Permission) -> &'static str {
    match p {
        Permission::FullAccess => "FullAccess",
        Permission::SendAs => "SendAs",
        Permission::SendOnBehalf => "SendOnBehalf",
    }
}

async fn run(steps: Vec<Step>) {
    let t = TestApp::start().await;
    let ctx = t.app.ctx();
    let contoso = CompanyId::parse("contoso").unwrap();
    let mut ids: Vec<RequestId> = Vec::new();
    for step in steps {
        match step {
            Step::Request {
                actor,
                tool,
                mailbox,
                trustee,
            } => {
                let actor = t.actor(ACTORS[actor]).await;
                let input = WriteInput {
                    id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                    company: contoso.clone(),
                    tool: TOOLS[tool],
                    mailbox: IdentityInput::parse(&format!(
                        "{}@contoso.onmicrosoft.com",
                        MAILBOXES[mailbox]
                    ))
                    .unwrap(),
                    trustee: IdentityInput::parse(&format!(
                        "{}@contoso.onmicrosoft.com",
                        TRUSTEES[trustee]
                    ))
                    .unwrap(),
                    automapping: None,
                };
                // Viewers are refused; mailboxes that are not mailboxes may be refused: fine.
                // Asking again for a change that is pending answers that same request: it is
                // one request, counted once.
                if let Ok(r) = ops::requests::request_write(ctx, &actor, input).await
                    && !ids.contains(&r.id)
                {
                    ids.push(r.id);
                }
            }
            Step::Approve { request, actor }
            | Step::Reject { request, actor }
            | Step::Cancel { request, actor }
                if ids.is_empty() =>
            {
                let _ = (request, actor);
            }
            Step::Approve { request, actor } => {
                let actor = t.actor(ACTORS[actor]).await;
                let _ = ops::requests::approve(ctx, &actor, ids[request % ids.len()], None).await;
                t.app.worker_wake.notify_one();
            }
            Step::Reject { request, actor } => {
                let actor = t.actor(ACTORS[actor]).await;
                let _ =
                    ops::requests::reject(ctx, &actor, ids[request % ids.len()], Some("no")).await;
            }
            Step::Cancel { request, actor } => {
                let actor = t.actor(ACTORS[actor]).await;
                let _ = ops::requests::cancel(ctx, &actor, ids[request % ids.len()]).await;
            }
        }
    }
    // Let the worker finish everything approved.
    let mut requests = Vec::new();
    for id in &ids {
        let r = t.app.store.get_request(*id).await.unwrap().unwrap();
        let r = match r.state {
            RequestState::Approved | RequestState::Executing => {
                t.wait_terminal(*id, Duration::from_secs(60)).await
            }
            _ => r,
        };
        requests.push(r);
    }
    // Expected effects per (mailbox, trustee, right, op): one per request that changed it.
    let mut expected: HashMap<(String, String, &str, &str), usize> = HashMap::new();
    for r in &requests {
        let approved = r.decision.as_ref().is_some_and(|d| d.approved);
        if !approved {
            assert!(
                r.results.is_empty(),
                "a request never approved has results: {r:?}"
            );
            assert!(
                !matches!(
                    r.state,
                    RequestState::Succeeded | RequestState::AlreadyInState | RequestState::Failed
                ),
                "{r:?}"
            );
        }
        for (action, result) in r.actions.iter().zip(&r.results) {
            assert!(approved, "executed without approval: {r:?}");
            if result.outcome == OpOutcome::Changed {
                let op = if action.operation.kind == OperationKind::Grant {
                    "add"
                } else {
                    "remove"
                };
                *expected
                    .entry((
                        action.mailbox.object_id.clone(),
                        action.trustee.object_id.clone(),
                        right(action.operation.permission),
                        op,
                    ))
                    .or_default() += 1;
            }
        }
    }
    let mut seen: HashMap<(String, String, &str, &str), usize> = HashMap::new();
    for entry in t.apply_log().await {
        let c = &entry["change"];
        let key_right = match c["right"].as_str().unwrap_or_default() {
            "FullAccess" => "FullAccess",
            "SendAs" => "SendAs",
            "SendOnBehalf" => "SendOnBehalf",
            other => panic!("unexpected change {other}: {entry}"),
        };
        let op = match c["op"].as_str().unwrap_or_default() {
            "add" => "add",
            "remove" => "remove",
            other => panic!("unexpected op {other}: {entry}"),
        };
        let key = (
            c["mailbox_object_id"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            c["trustee_object_id"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            key_right,
            op,
        );
        *seen.entry(key).or_default() += 1;
    }
    assert_eq!(seen, expected, "apply log vs approved, changed requests");
    let approved = requests
        .iter()
        .filter(|r| r.decision.as_ref().is_some_and(|d| d.approved))
        .count();
    println!(
        "property case: {} requests, {approved} approved, {} changes applied, 0 without approval",
        requests.len(),
        seen.values().sum::<usize>()
    );
    t.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn random_operations_never_reach_exchange_without_approval(steps in prop::collection::vec(step(), 4..24)) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(run(steps));
    }
}
