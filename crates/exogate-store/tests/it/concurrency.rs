//! Races: concurrent decisions on one request.

use std::sync::Arc;

use exogate_core::ops::{self, Ctx};
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;

use crate::support::*;

both! {
    async fn eight_concurrent_decisions_give_exactly_one(db: Db) {
        let w = Arc::new(World::new(db).await);
        let mut total_wins = 0;
        let mut decisions_total = 0;
        let rounds = 10;
        // Rounds 0..10: 4 approves and 4 rejects. Rounds 10..20: 2 approves, 1 reject, 1 cancel per 4.
        let mut pure_wins = 0;
        for round in 0..2 * rounds {
            let with_cancel = round >= rounds;
            let r = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "sales", "alice").await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..8 {
                let w = w.clone();
                tasks.push(tokio::spawn(async move {
                    let ctx = Ctx::new(w.store.as_ref(), w.ms.as_ref(), w.clock.as_ref(), &w.settings);
                    match if with_cancel { i % 4 } else { i % 2 } {
                        0 | 2 => ops::requests::approve(ctx, &w.mgr_a, r.id, None).await.map(|r| r.state),
                        1 => ops::requests::reject(ctx, &w.mgr_a2, r.id, Some("no")).await.map(|r| r.state),
                        _ => ops::requests::cancel(ctx, &w.tech_a, r.id).await.map(|r| r.state),
                    }
                }));
            }
            let mut wins = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(state) => wins.push(state),
                    Err(e) => assert_eq!(e.code(), "already_decided", "round {round}: {e}"),
                }
            }
            // Exactly one approve-or-reject decision, or a cancel before any decision. A cancel may
            // legitimately follow an approval (approved, not started), never a rejection.
            let decided: Vec<_> = wins.iter().filter(|s| matches!(s, RequestState::Approved | RequestState::Rejected)).collect();
            let cancels = wins.iter().filter(|s| **s == RequestState::Cancelled).count();
            assert!(decided.len() <= 1 && cancels <= 1, "round {round}: {wins:?}");
            assert!(!wins.is_empty(), "round {round}: nobody won");
            if decided.first() == Some(&&RequestState::Rejected) {
                assert_eq!(cancels, 0, "round {round}: cancelled after rejection: {wins:?}");
            }
            if !with_cancel {
                assert_eq!((wins.len(), decided.len()), (1, 1), "round {round}: {wins:?}");
                pure_wins += 1;
            }
            if with_cancel {
                decisions_total += decided.len();
                total_wins += wins.len();
            }
            let stored = w.store.get_request(r.id).await.unwrap().unwrap();
            let expected = if cancels == 1 { RequestState::Cancelled } else { *decided[0] };
            assert_eq!(stored.state, expected, "round {round}");
            assert_eq!(stored.decision.is_some(), !decided.is_empty());
            assert_eq!(stored.cancellation.is_some(), cancels == 1);
            let kinds = w.kinds_for(r.id).await;
            let events = kinds
                .iter()
                .filter(|k| matches!(k.as_str(), "request.approved" | "request.rejected" | "request.cancelled"))
                .count();
            assert_eq!(events, wins.len(), "round {round}: {kinds:?}");
        }
        println!("figure: {rounds} rounds x 8 concurrent approve/reject -> {pure_wins} decisions, exactly 1 per request");
        println!("figure: {rounds} rounds x 8 concurrent approve/reject/cancel -> {decisions_total} approve-or-reject decisions, {total_wins} successful calls ({})", match w.db { Db::Sqlite(_) => "sqlite", Db::Postgres(_) => "postgres" });
        let verdict = ops::audit::verify(w.ctx()).await.unwrap();
        assert!(matches!(verdict, ops::audit::Verification::Intact(_)), "{verdict:?}");
    }

    async fn concurrent_workers_apply_each_request_once(db: Db) {
        let w = Arc::new(World::new(db).await);
        let mut ids = Vec::new();
        for (mbx, trustee) in [("sales", "alice"), ("sales", "bob"), ("support", "carol"), ("support", "alice"), ("alice", "bob"), ("bob", "carol")] {
            let r = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, mbx, trustee).await.unwrap();
            ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None).await.unwrap();
            ids.push(r.id);
        }
        let mut tasks = Vec::new();
        for i in 0..4 {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                let worker = format!("w{i}");
                let mut done = 0;
                loop {
                    let ctx = Ctx::new(w.store.as_ref(), w.ms.as_ref(), w.clock.as_ref(), &w.settings);
                    match ops::execute::run_once(ctx, &worker).await.unwrap() {
                        Some(_) => done += 1,
                        None => break done,
                    }
                }
            }));
        }
        let mut executed = 0;
        for t in tasks {
            executed += t.await.unwrap();
        }
        assert_eq!(executed, ids.len());
        assert_eq!(w.ms.applied().len(), ids.len());
        for id in ids {
            assert_eq!(w.store.get_request(id).await.unwrap().unwrap().state, RequestState::Succeeded);
        }
    }
}
