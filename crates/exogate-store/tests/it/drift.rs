//! Drift findings on both backends: the comparison of two generations in SQL, recording
//! findings once (a re-sweep moves last-seen on), acknowledging and linking a revert once,
//! and the executed requests that explain a change.

use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::drift::{DriftAck, DriftChange, DriftObservation, DriftState};
use exogate_core::inventory::{InventoryRow, InventoryTrustee, SweepBegin, SweepLease};
use exogate_core::ports::Store;
use exogate_core::tools::ToolName;
use exogate_core::*;

use crate::support::*;

const T1: &str = "11111111-1111-4111-8111-111111111111";

fn ident(name: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: format!("id-{name}"),
        primary_address: format!("{name}@c.com"),
        display_name: name.to_uppercase(),
        kind,
    }
}

fn row(mailbox: &str, trustee: &str, right: Permission) -> InventoryRow {
    InventoryRow {
        company: cid("contoso"),
        mailbox: ident(mailbox, RecipientKind::SharedMailbox),
        trustee: InventoryTrustee::resolved(ident(trustee, RecipientKind::UserMailbox)),
        right,
    }
}

async fn sweep(s: &dyn Store, at: Timestamp, rows: &[InventoryRow]) -> i64 {
    let c = cid("contoso");
    let t = TenantId::parse(T1).unwrap();
    let lease = SweepLease {
        owner: format!("o{}", at.unix_millis()),
        until: at.plus_secs(60),
    };
    let SweepBegin::Started(st) = s
        .inventory_begin_sweep(
            &c,
            t,
            at,
            &lease,
            NewAuditEvent::system(at, AuditKind::InventorySweepStarted),
        )
        .await
        .unwrap()
    else {
        panic!("busy")
    };
    assert!(
        s.inventory_write_chunk(&c, st.generation, &lease.owner, rows, &[])
            .await
            .unwrap()
    );
    st.generation
}

async fn finish(s: &dyn Store, g: i64, at: Timestamp) {
    // The owner is derived from the sweep's start (see `sweep`).
    let st = s.inventory_status(&cid("contoso")).await.unwrap().unwrap();
    let o = format!("o{}", st.sweep_started_at.unix_millis());
    assert!(
        s.inventory_finish_sweep(
            &cid("contoso"),
            g,
            &o,
            at,
            2,
            NewAuditEvent::system(at, AuditKind::InventorySweepFinished)
        )
        .await
        .unwrap()
    );
}

fn obs(
    g: i64,
    prev: Option<i64>,
    at: Timestamp,
    candidates: Vec<exogate_core::drift::DriftCandidate>,
) -> DriftObservation {
    DriftObservation {
        generation: g,
        previous_generation: prev,
        seen_at: at,
        earlier_seen_at: Some(start()),
        swept_from: at,
        candidates,
    }
}

fn found(at: Timestamp) -> NewAuditEvent {
    NewAuditEvent::system(at, AuditKind::DriftFound).company(&cid("contoso"))
}

both! {
    async fn drift_diff_records_once_and_moves_last_seen(db: Db) {
        let w = World::new(db).await;
        let s: &dyn Store = w.store.as_ref();
        let c = cid("contoso");
        let kept = row("sales", "alice", Permission::FullAccess);
        let gone = row("sales", "bob", Permission::SendAs);
        let added = row("support", "carol", Permission::FullAccess);
        let g1 = sweep(s, start(), &[kept.clone(), gone.clone()]).await;
        finish(s, g1, start().plus_secs(1)).await;
        // First sweep: nothing to compare with; only the baseline is recorded.
        assert!(s.drift_record(&c, &obs(g1, None, start(), vec![]), found(start())).await.unwrap().is_empty());
        assert_eq!(s.drift_baseline(&c).await.unwrap(), Some(start()));

        let t2 = start().plus_secs(100);
        let g2 = sweep(s, t2, &[kept.clone(), added.clone()]).await;
        let diff = s.drift_diff(&c, g1, g2).await.unwrap();
        let got: Vec<(String, &str)> = diff.iter().map(|d| (d.row.trustee.label().to_owned(), d.change.as_str())).collect();
        assert_eq!(got, [("bob@c.com".to_owned(), "removed"), ("carol@c.com".to_owned(), "added")]);
        let before = s.audit_head().await.unwrap().unwrap().0;
        let new = s.drift_record(&c, &obs(g2, Some(g1), t2, diff.clone()), found(t2)).await.unwrap();
        assert_eq!(new.len(), 2);
        // One `drift.found` event for the batch, naming both.
        let ev = s.recent_audit(Some(&c), None, 1).await.unwrap();
        assert_eq!(ev[0].seq, before + 1);
        assert_eq!(ev[0].event.kind, "drift.found");
        let detail: serde_json::Value = serde_json::from_str(&ev[0].event.detail).unwrap();
        assert_eq!(detail["count"], 2);
        // Recorded again (a sweep that could not finish, compared once more): no new finding,
        // no new event.
        let t2b = t2.plus_secs(5);
        assert!(s.drift_record(&c, &obs(g2, Some(g1), t2b, diff), found(t2b)).await.unwrap().is_empty());
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, before + 1);
        finish(s, g2, t2.plus_secs(10)).await;

        // A third sweep sees the same rights: nothing new, both findings' last-seen move on.
        let t3 = start().plus_secs(200);
        let g3 = sweep(s, t3, &[kept.clone(), added.clone()]).await;
        assert!(s.drift_diff(&c, g2, g3).await.unwrap().is_empty());
        assert!(s.drift_record(&c, &obs(g3, Some(g2), t3, vec![]), found(t3)).await.unwrap().is_empty());
        let list = s.drift_list(&c, 100).await.unwrap();
        assert_eq!(list.len(), 2);
        for f in &list {
            assert_eq!((f.first_seen_at, f.first_seen_generation, f.last_seen_at, f.last_seen_generation, f.state), (t2, g2, t3, g3, DriftState::Open));
            assert_eq!(f.earlier_seen_at, Some(start()));
        }
        let f = list.iter().find(|f| f.change == DriftChange::Added).unwrap();
        assert_eq!(f.row.key(), added.key());
        assert_eq!(s.drift_get(f.id).await.unwrap().as_ref(), Some(f));

        // Acknowledged once, audited; a second time changes nothing.
        let ack = DriftAck { by: w.mgr_a.user.id, by_name: "mgr-a".into(), at: t3, reason: "ticket 7".into() };
        let ev = NewAuditEvent::new(t3, AuditKind::DriftAcknowledged, Some(&w.mgr_a)).company(&c);
        assert!(s.drift_acknowledge(f.id, &ack, ev.clone()).await.unwrap());
        assert!(!s.drift_acknowledge(f.id, &ack, ev).await.unwrap());
        let f2 = s.drift_get(f.id).await.unwrap().unwrap();
        assert_eq!((f2.state, f2.acknowledged.as_ref()), (DriftState::Acknowledged, Some(&ack)));
        assert_eq!(s.recent_audit(Some(&c), None, 1).await.unwrap()[0].event.kind, "drift.acknowledged");
        // A revert is linked once.
        let r = new_request_id();
        assert!(s.drift_set_revert(f.id, r).await.unwrap());
        assert!(!s.drift_set_revert(f.id, new_request_id()).await.unwrap());
        let f3 = s.drift_get(f.id).await.unwrap().unwrap();
        assert_eq!((f3.state, f3.revert_request), (DriftState::RevertRequested, Some(r)));
        // Unknown ids are None.
        let other = exogate_core::drift::DriftId::derive(&kept, DriftChange::Added, 99);
        assert!(s.drift_get(other).await.unwrap().is_none());
    }

    async fn drift_executed_since_lists_finished_requests(db: Db) {
        let w = World::new(db).await;
        let s: &dyn Store = w.store.as_ref();
        let r = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales@contoso.onmicrosoft.com", "bob").await.unwrap();
        exogate_core::ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None).await.unwrap();
        w.drain("w1").await;
        let done = s.get_request(r.id).await.unwrap().unwrap();
        assert!(done.state.is_terminal(), "{:?}", done.state);
        let at = done.finished_at.unwrap();
        let ids: Vec<_> = s.drift_executed_since(&cid("contoso"), at).await.unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, [r.id]);
        assert!(s.drift_executed_since(&cid("contoso"), at.plus_secs(1)).await.unwrap().is_empty());
        assert!(s.drift_executed_since(&cid("fabrikam"), at).await.unwrap().is_empty());
    }
    async fn drift_a_change_undone_and_done_again_is_a_new_finding(db: Db) {
        let w = World::new(db).await;
        let s: &dyn Store = w.store.as_ref();
        let c = cid("contoso");
        let a = row("sales", "alice", Permission::FullAccess);
        let mut prev = None;
        let mut ids = Vec::new();
        // Present, gone, back, gone again: one finding per change.
        for (i, rows) in [vec![a.clone()], vec![], vec![a.clone()], vec![]].into_iter().enumerate() {
            let at = start().plus_secs(100 * i as i64);
            let g = sweep(s, at, &rows).await;
            let diff = match prev { Some(p) => s.drift_diff(&c, p, g).await.unwrap(), None => vec![] };
            let new = s.drift_record(&c, &obs(g, prev, at, diff), found(at)).await.unwrap();
            ids.extend(new.iter().map(|f| (f.id, f.change)));
            finish(s, g, at.plus_secs(1)).await;
            prev = Some(g);
        }
        let changes: Vec<DriftChange> = ids.iter().map(|x| x.1).collect();
        assert_eq!(changes, [DriftChange::Removed, DriftChange::Added, DriftChange::Removed]);
        assert_ne!(ids[0].0, ids[2].0);
        // The first removal was last seen by the sweep that found it: the right came back.
        let first = s.drift_get(ids[0].0).await.unwrap().unwrap();
        assert_eq!(first.last_seen_at, start().plus_secs(100));
    }
}
