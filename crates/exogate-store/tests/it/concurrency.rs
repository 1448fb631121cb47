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
        let rounds = 5;
        for round in 0..rounds {
            let r = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "sales", "alice").await.unwrap();
            let mut tasks = Vec::new();
            for i in 0..8 {
                let w = w.clone();
                tasks.push(tokio::spawn(async move {
                    let ctx = Ctx::new(w.store.as_ref(), w.ms.as_ref(), w.clock.as_ref(), &w.settings);
                    if i % 2 == 0 {
                        ops::requests::approve(ctx, &w.mgr_a, r.id, None).await.map(|r| r.state)
                    } else {
                        ops::requests::reject(ctx, &w.mgr_a2, r.id, Some("no")).await.map(|r| r.state)
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
            assert_eq!(wins.len(), 1, "round {round}: {wins:?}");
            total_wins += wins.len();
            let stored = w.store.get_request(r.id).await.unwrap().unwrap();
            assert_eq!(stored.state, wins[0]);
            let d = stored.decision.unwrap();
            assert_eq!(d.approved, wins[0] == RequestState::Approved);
            let kinds = w.kinds_for(r.id).await;
            let decisions = kinds.iter().filter(|k| *k == "request.approved" || *k == "request.rejected").count();
            assert_eq!(decisions, 1, "round {round}: {kinds:?}");
        }
        println!("figure: {rounds} rounds x 8 concurrent approve/reject -> {total_wins} decisions ({})", match w.db { Db::Sqlite(_) => "sqlite", Db::Postgres(_) => "postgres" });
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
