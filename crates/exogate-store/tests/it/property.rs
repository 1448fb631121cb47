//! Property test: random sequences of operations by random actors. Oracle: the fake Microsoft's
//! apply log joined with the stored requests. No apply without an approved request; every
//! approved request is applied exactly once (or found already in state).

use std::collections::HashMap;

use exogate_core::action::CanonicalAction;
use exogate_core::ops;
use exogate_core::request::{RequestFilter, RequestState};
use exogate_core::tools::ToolName;
use exogate_core::{Actor, RequestId};
use proptest::prelude::*;

use crate::support::*;

#[derive(Clone, Debug)]
enum Op {
    Write {
        actor: usize,
        company: usize,
        tool: usize,
        mailbox: usize,
        trustee: usize,
    },
    Approve {
        actor: usize,
        req: usize,
    },
    Reject {
        actor: usize,
        req: usize,
    },
    Cancel {
        actor: usize,
        req: usize,
    },
    Revert {
        actor: usize,
        req: usize,
    },
    Work,
    FailNextApply,
    AdvanceHours(u8),
    Expire,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..8usize, 0..2usize, 0..6usize, 0..5usize, 0..5usize).prop_map(|(actor, company, tool, mailbox, trustee)| Op::Write { actor, company, tool, mailbox, trustee }),
        4 => (0..8usize, 0..64usize).prop_map(|(actor, req)| Op::Approve { actor, req }),
        // Mostly the managers who may approve, so that many requests get executed.
        6 => (prop_oneof![Just(0usize), Just(1usize), Just(2usize), Just(4usize)], 0..64usize).prop_map(|(actor, req)| Op::Approve { actor, req }),
        1 => (0..8usize, 0..64usize).prop_map(|(actor, req)| Op::Reject { actor, req }),
        1 => (0..8usize, 0..64usize).prop_map(|(actor, req)| Op::Cancel { actor, req }),
        1 => (0..8usize, 0..64usize).prop_map(|(actor, req)| Op::Revert { actor, req }),
        3 => Just(Op::Work),
        1 => Just(Op::FailNextApply),
        1 => prop_oneof![4 => 1..4u8, 1 => 20..30u8].prop_map(Op::AdvanceHours),
        1 => Just(Op::Expire),
    ]
}

const WRITES: [ToolName; 6] = [
    ToolName::GrantFullAccess,
    ToolName::GrantSendAs,
    ToolName::GrantSendOnBehalf,
    ToolName::RemoveFullAccess,
    ToolName::RemoveSendAs,
    ToolName::RemoveSendOnBehalf,
];
const MAILBOXES: [&str; 5] = ["alice", "bob", "carol", "sales", "support"];

async fn run_sequence(db: Db, ops_list: Vec<Op>) -> (usize, usize) {
    let w = World::new(db).await;
    let secret = "z".repeat(40);
    ops::users::create_token(
        w.ctx(),
        ops::users::Admin::User(&w.tech_a),
        exogate_core::ApiTokenId::from_uuid(uuid::Uuid::now_v7()),
        &w.tech_a.user.name,
        "agent",
        &secret,
    )
    .await
    .unwrap();
    let agent = ops::users::authenticate_token(w.ctx(), &secret, None)
        .await
        .unwrap();
    let actors: Vec<&Actor> = vec![
        &w.admin, &w.mgr_a, &w.mgr_a2, &w.tech_a, &w.mgr_b, &w.tech_b, &w.viewer, &agent,
    ];
    let mut reqs: Vec<RequestId> = Vec::new();
    for op in ops_list {
        let ctx = w.ctx();
        let pick = |i: usize| reqs.get(i % reqs.len().max(1)).copied();
        let result = match op {
            Op::Write {
                actor,
                company,
                tool,
                mailbox,
                trustee,
            } => {
                let company = ["contoso", "fabrikam"][company];
                let r = w
                    .write(
                        actors[actor],
                        company,
                        WRITES[tool],
                        MAILBOXES[mailbox],
                        MAILBOXES[trustee],
                    )
                    .await;
                r.map(|r| reqs.push(r.id))
            }
            Op::Approve { actor, req } => match pick(req) {
                Some(id) => ops::requests::approve(ctx, actors[actor], id, None)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            Op::Reject { actor, req } => match pick(req) {
                Some(id) => ops::requests::reject(ctx, actors[actor], id, None)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            Op::Cancel { actor, req } => match pick(req) {
                Some(id) => ops::requests::cancel(ctx, actors[actor], id)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            Op::Revert { actor, req } => match pick(req) {
                Some(id) => ops::requests::revert(ctx, actors[actor], id, new_request_id())
                    .await
                    .map(|r| reqs.push(r.id)),
                None => Ok(()),
            },
            Op::Work => ops::execute::run_once(ctx, "worker").await.map(drop),
            Op::FailNextApply => {
                w.ms.fail_next_applies(1);
                Ok(())
            }
            Op::AdvanceHours(h) => {
                w.clock.advance_secs(i64::from(h) * 3600);
                Ok(())
            }
            Op::Expire => ops::requests::expire_due(ctx, 100).await.map(drop),
        };
        if let Err(e) = result {
            assert!(
                !matches!(e.code(), "internal" | "unavailable"),
                "unexpected error: {e:?}"
            );
        }
    }
    // Let the workers finish everything that is approved.
    w.ms.fail_next_applies(0);
    for r in w.drain("final").await {
        r.unwrap();
    }
    let all = w
        .store
        .list_requests(&RequestFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut expected: HashMap<String, usize> = HashMap::new();
    for r in &all {
        assert!(
            !matches!(r.state, RequestState::Approved | RequestState::Executing),
            "left behind: {r:?}"
        );
        if matches!(
            r.state,
            RequestState::Succeeded | RequestState::AlreadyInState | RequestState::Failed
        ) {
            let d = r.decision.as_ref().expect("executed without decision");
            assert!(d.approved, "executed a rejected request");
            // The approver held the role and entitlement when deciding (checked again at execution).
        }
        if r.state == RequestState::Succeeded {
            for a in &r.actions {
                *expected
                    .entry(exogate_core::action::encode_actions(std::slice::from_ref(
                        a,
                    )))
                    .or_default() += 1;
            }
        }
        // Every transition left its audit event: the request's audit trail ends with the event of
        // the state it is in.
        let kinds = w.kinds_for(r.id).await;
        assert_eq!(
            kinds.first().map(String::as_str),
            Some("request.created"),
            "{kinds:?}"
        );
        let last_transition = kinds
            .iter()
            .rev()
            .find(|k| !matches!(k.as_str(), "execution.attempt" | "execution.step"))
            .map(String::as_str);
        let expected_last = match r.state {
            RequestState::Pending => "request.created",
            RequestState::Rejected => "request.rejected",
            RequestState::Cancelled => "request.cancelled",
            RequestState::Expired => "request.expired",
            RequestState::Succeeded | RequestState::AlreadyInState => "execution.finished",
            RequestState::Failed => {
                if kinds.contains(&"execution.refused".to_owned()) {
                    "execution.refused"
                } else {
                    "execution.finished"
                }
            }
            RequestState::Approved | RequestState::Executing => unreachable!(),
        };
        assert_eq!(
            last_transition,
            Some(expected_last),
            "{:?}: {kinds:?}",
            r.state
        );
        let approvals = kinds.iter().filter(|k| *k == "request.approved").count();
        assert_eq!(
            approvals,
            usize::from(r.decision.as_ref().is_some_and(|d| d.approved)),
            "{kinds:?}"
        );
        if r.state == RequestState::AlreadyInState {
            assert!(
                r.results
                    .iter()
                    .all(|x| x.outcome == exogate_core::request::OpOutcome::AlreadyInState)
            );
        }
    }
    let mut applied: HashMap<String, usize> = HashMap::new();
    for call in w.ms.applied() {
        let a: &CanonicalAction = &call.action;
        *applied
            .entry(exogate_core::action::encode_actions(std::slice::from_ref(
                a,
            )))
            .or_default() += 1;
    }
    assert_eq!(
        applied, expected,
        "apply log does not match succeeded requests"
    );
    assert!(matches!(
        ops::audit::verify(w.ctx()).await.unwrap(),
        ops::audit::Verification::Intact(_)
    ));
    (all.len(), w.ms.applied().len())
}

fn check(pg: bool, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if pg
        && rt
            .block_on(TestDb::postgres())
            .map(|t| rt.block_on(t.finish()))
            .is_none()
    {
        return;
    }
    let totals = std::cell::Cell::new((0usize, 0usize, 0u32));
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 10..60), |ops_list| {
            let (requests, applies) = rt.block_on(async {
                let t = if pg {
                    TestDb::postgres().await.unwrap()
                } else {
                    TestDb::sqlite().await
                };
                let out = run_sequence(t.db.clone(), ops_list).await;
                t.finish().await;
                out
            });
            let (r, a, n) = totals.get();
            totals.set((r + requests, a + applies, n + 1));
            Ok(())
        })
        .unwrap();
    let (requests, applies, sequences) = totals.get();
    println!(
        "figure: {sequences} sequences, {requests} requests, {applies} applies, 0 unapproved applies, 0 duplicates"
    );
}

#[test]
fn random_sequences_never_apply_without_approval_sqlite() {
    check(false, 32);
}

#[test]
fn random_sequences_never_apply_without_approval_postgres() {
    check(true, 8);
}
