//! (review-age) First-seen times on both backends: a finished sweep carries each row's
//! first-seen time over from the previous generation (or stamps its own time on a new row), a
//! removed-then-re-added row starts again, a patch after a request stamps its time, and a
//! campaign scoped to "older than N days" copies only rows first seen by its start less N days
//! (rows never stamped count as old).

use exogate_core::action::Permission;
use exogate_core::inventory::{InventoryRow, InventoryTrustee};
use exogate_core::ops::reviews::{self, CreateInput};
use exogate_core::ports::Store;
use exogate_core::review::*;
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

const DAY: i64 = 86_400;

fn ident(name: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: format!("id-{name}"),
        primary_address: format!("{name}@contoso.com"),
        display_name: name.to_uppercase(),
        kind,
    }
}

fn row(trustee: &str, right: Permission) -> InventoryRow {
    InventoryRow {
        company: cid("contoso"),
        mailbox: ident("sales", RecipientKind::SharedMailbox),
        trustee: InventoryTrustee::resolved(ident(trustee, RecipientKind::UserMailbox)),
        right,
    }
}

async fn sweep(s: &dyn Store, at: Timestamp, rows: &[InventoryRow]) {
    swept(s, "contoso", T1, at, rows, 1).await;
}

fn input(days: Option<u32>) -> CreateInput {
    CreateInput {
        id: CampaignId::from_uuid(Uuid::now_v7()),
        name: "old grants".to_owned(),
        scope: Scope {
            companies: vec![cid("contoso")],
            kinds: Vec::new(),
            rights: Vec::new(),
            older_than_days: days,
        },
        reviewers: Vec::new(),
        due_at: start().plus_secs(60 * DAY),
        schedule: None,
    }
}

/// (trustee, first seen) of each item of a campaign started now with `days`.
async fn campaign(w: &World, days: Option<u32>) -> Vec<(String, Option<Timestamp>)> {
    let c = reviews::create(w.ctx(), &w.mgr_a, input(days))
        .await
        .unwrap();
    assert_eq!(c.scope.older_than_days, days, "the scope is stored");
    let mut v: Vec<_> = w
        .store
        .review_items(c.id, &ItemFilter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                format!("{}:{}", i.row.trustee.raw, i.row.right.as_str()),
                i.first_seen,
            )
        })
        .collect();
    v.sort();
    v
}

both! {
    async fn sweeps_carry_first_seen_and_campaigns_keep_only_older_rows(db: Db) {
        let w = World::new(db).await;
        let s = w.store.as_ref();
        let (a, b, c) = (row("bob", Permission::FullAccess), row("carol", Permission::SendAs), row("dave", Permission::FullAccess));
        let t0 = start();
        let t10 = t0.plus_secs(10 * DAY);
        let t20 = t0.plus_secs(20 * DAY);
        let t21 = t0.plus_secs(21 * DAY);
        sweep(s, t0, &[a.clone(), b.clone()]).await;
        // b goes, c is new.
        sweep(s, t10, &[a.clone(), c.clone()]).await;
        // b is back: it starts again.
        sweep(s, t20, &[a.clone(), b.clone(), c.clone()]).await;
        w.clock.set(t20);
        let name = |r: &InventoryRow| format!("{}:{}", r.trustee.raw, r.right.as_str());
        assert_eq!(
            campaign(&w, None).await,
            vec![(name(&a), Some(t0)), (name(&b), Some(t20)), (name(&c), Some(t10))],
            "kept since the first sweep, new in the second, re-added in the third"
        );
        // Older than 15 days (cutoff t0 + 5 d): only a. Older than 10 days (cutoff t10): a and c.
        assert_eq!(campaign(&w, Some(15)).await, vec![(name(&a), Some(t0))]);
        assert_eq!(campaign(&w, Some(10)).await, vec![(name(&a), Some(t0)), (name(&c), Some(t10))]);

        // A grant a request made is stamped with the patch's time, so it is new.
        let d = row("erin", Permission::SendOnBehalf);
        assert!(s.inventory_patch_at(&d, true, t21).await.unwrap());
        // A row without a first-seen time (as before migration 0018) counts as old.
        let e = row("frank", Permission::SendAs);
        assert!(s.inventory_patch(&e, true).await.unwrap());
        w.clock.set(t21);
        let all = campaign(&w, None).await;
        assert!(all.contains(&(name(&d), Some(t21))), "{all:?}");
        assert!(all.contains(&(name(&e), None)), "{all:?}");
        assert_eq!(
            campaign(&w, Some(1)).await,
            vec![(name(&a), Some(t0)), (name(&b), Some(t20)), (name(&c), Some(t10)), (name(&e), None)],
        );
        // The next sweep keeps the patched time and the missing one.
        let t30 = t0.plus_secs(30 * DAY);
        sweep(s, t30, &[a.clone(), b.clone(), c.clone(), d.clone(), e.clone()]).await;
        w.clock.set(t30);
        let all = campaign(&w, None).await;
        assert!(all.contains(&(name(&d), Some(t21))), "{all:?}");
        assert!(all.contains(&(name(&e), None)), "{all:?}");

        // Out of range: refused, nothing written.
        for bad in [0, 3651, 99_999] {
            let err = reviews::create(w.ctx(), &w.mgr_a, input(Some(bad))).await.unwrap_err();
            assert!(matches!(err, CoreError::Invalid { .. }), "{bad}: {err:?}");
        }
        assert_eq!(w.store.review_list(100).await.unwrap().len(), 6, "the refused ones wrote nothing");
    }
}
