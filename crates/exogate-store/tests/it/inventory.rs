//! The delegation inventory on both backends: atomic generation switch, resume of a crashed
//! sweep, failure keeping the last good inventory, patches, and the by-mailbox / by-trustee
//! queries.

use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{
    GroupMember, InventoryRow, InventoryTrustee, SweepBegin, SweepLease, SweepStart, SweepState,
    TrusteeClass,
};
use exogate_core::ports::Store;
use exogate_core::*;

use crate::support::*;

const T1: &str = "11111111-1111-4111-8111-111111111111";
const T2: &str = "22222222-2222-4222-8222-222222222222";

fn ident(id: &str, addr: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: id.into(),
        primary_address: addr.into(),
        display_name: addr.split('@').next().unwrap_or(addr).to_uppercase(),
        kind,
    }
}

fn row(company: &str, mailbox: &str, trustee: &str, right: Permission) -> InventoryRow {
    let trustee = match trustee {
        t if t.starts_with("S-1-5-21-") => InventoryTrustee {
            raw: t.into(),
            sid: Some(t.into()),
            class: TrusteeClass::Orphan,
            identity: None,
        },
        t if t.starts_with("group") => InventoryTrustee {
            raw: t.into(),
            sid: None,
            class: TrusteeClass::Group,
            identity: Some(ident(
                &format!("id-{t}"),
                &format!("{t}@c.com"),
                RecipientKind::Group,
            )),
        },
        t => InventoryTrustee::resolved(ident(
            &format!("id-{t}"),
            &format!("{t}@c.com"),
            RecipientKind::UserMailbox,
        )),
    };
    InventoryRow {
        company: cid(company),
        mailbox: ident(
            &format!("id-{mailbox}"),
            &format!("{mailbox}@c.com"),
            RecipientKind::SharedMailbox,
        ),
        trustee,
        right,
    }
}

async fn company(s: &dyn Store, id: &str) {
    let c = Company {
        id: cid(id),
        name: id.into(),
        connection: None,
        exchange_status: None,
        separate_approver: false,
        created_at: start(),
    };
    s.insert_company(&c, NewAuditEvent::system(start(), AuditKind::CompanyAdded))
        .await
        .unwrap();
}

fn keys(rows: &[InventoryRow]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{}:{}:{}",
                r.mailbox.primary_address,
                r.trustee.label(),
                r.right.as_str()
            )
        })
        .collect();
    v.sort();
    v
}

fn lease(owner: &str, until: Timestamp) -> SweepLease {
    SweepLease {
        owner: owner.into(),
        until,
    }
}

fn started(at: Timestamp) -> NewAuditEvent {
    NewAuditEvent::system(at, AuditKind::InventorySweepStarted)
}

/// Begins a sweep owned by `owner` with a minute's lease; it must start.
async fn begin(
    s: &dyn Store,
    c: &CompanyId,
    t: TenantId,
    at: Timestamp,
    owner: &str,
) -> SweepStart {
    match s
        .inventory_begin_sweep(
            c,
            t,
            at,
            &lease(owner, at.plus_secs(60)),
            started(at).company(c),
        )
        .await
        .unwrap()
    {
        SweepBegin::Started(st) => st,
        busy => panic!("{owner} could not start: {busy:?}"),
    }
}

async fn finish(
    s: &dyn Store,
    c: &CompanyId,
    generation: i64,
    owner: &str,
    at: Timestamp,
    mailboxes: u64,
) -> bool {
    s.inventory_finish_sweep(
        c,
        generation,
        owner,
        at,
        mailboxes,
        NewAuditEvent::system(at, AuditKind::InventorySweepFinished).company(c),
    )
    .await
    .unwrap()
}

async fn fail(
    s: &dyn Store,
    c: &CompanyId,
    generation: i64,
    owner: &str,
    at: Timestamp,
    error: &str,
) -> bool {
    s.inventory_fail_sweep(
        c,
        generation,
        owner,
        at,
        error,
        NewAuditEvent::system(at, AuditKind::InventorySweepFailed).company(c),
    )
    .await
    .unwrap()
}

both! {
    async fn sweep_switches_generations_atomically_and_resumes(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        let c = cid("contoso");
        let t1 = TenantId::parse(T1).unwrap();
        assert!(s.inventory_status(&c).await.unwrap().is_none());
        let g1 = begin(s, &c, t1, start(), "a").await;
        assert_eq!((g1.generation, g1.resumed), (1, false));
        let first = [row("contoso", "sales", "alice", Permission::FullAccess), row("contoso", "sales", "group1", Permission::SendAs)];
        assert!(s.inventory_write_chunk(&c, 1, "a", &first, &["fa:0".into()]).await.unwrap());
        // Rows of a running sweep are invisible until it finishes.
        assert!(s.inventory_rows(&c).await.unwrap().is_empty());
        // A crash: once its lease has passed, the next begin continues generation 1 with its
        // finished chunk, and the crashed run can no longer write.
        let again = begin(s, &c, t1, start().plus_secs(61), "b").await;
        assert_eq!((again.generation, again.resumed, again.done.clone()), (1, true, vec!["fa:0".to_owned()]));
        assert!(!s.inventory_write_chunk(&c, 1, "a", &first, &[]).await.unwrap());
        // Rewriting a row is harmless.
        assert!(s.inventory_write_chunk(&c, 1, "b", &first[..1], &["fa:0".into(), "fa:1".into()]).await.unwrap());
        let orphan = row("contoso", "support", "S-1-5-21-1-2-3-99", Permission::FullAccess);
        assert!(s.inventory_write_chunk(&c, 1, "b", std::slice::from_ref(&orphan), &[]).await.unwrap());
        assert!(!finish(s, &c, 1, "a", start().plus_secs(62), 2).await, "only the lease holder finishes");
        assert!(finish(s, &c, 1, "b", start().plus_secs(62), 2).await);
        let st = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((st.current_generation, st.as_of, st.mailboxes, st.rows, st.sweep_state, st.lease_until), (Some(1), Some(start().plus_secs(62)), 2, 3, SweepState::Ok, None));
        assert_eq!(keys(&s.inventory_rows(&c).await.unwrap()), ["sales@c.com:alice@c.com:full_access", "sales@c.com:group1@c.com:send_as", "support@c.com:S-1-5-21-1-2-3-99:full_access"]);
        // Finishing twice does nothing.
        assert!(!finish(s, &c, 1, "b", start().plus_secs(63), 2).await);

        // Generation 2 replaces generation 1 in one step; a write to the old one is refused.
        let g2 = begin(s, &c, t1, start().plus_secs(100), "a").await;
        assert_eq!((g2.generation, g2.resumed), (2, false));
        assert!(!s.inventory_write_chunk(&c, 1, "a", &first, &[]).await.unwrap());
        assert!(s.inventory_write_chunk(&c, 2, "a", &[row("contoso", "sales", "bob", Permission::SendOnBehalf)], &[]).await.unwrap());
        assert_eq!(s.inventory_rows(&c).await.unwrap().len(), 3, "readers still see generation 1");
        let running = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((running.sweep_state, running.current_generation), (SweepState::Running, Some(1)));
        assert!(finish(s, &c, 2, "a", start().plus_secs(101), 1).await);
        assert_eq!(keys(&s.inventory_rows(&c).await.unwrap()), ["sales@c.com:bob@c.com:send_on_behalf"]);

        // A failed sweep keeps the last good inventory and says why.
        let g3 = begin(s, &c, t1, start().plus_secs(200), "a").await;
        assert!(s.inventory_write_chunk(&c, g3.generation, "a", &first, &[]).await.unwrap());
        assert!(fail(s, &c, g3.generation, "a", start().plus_secs(201), "403 role missing").await);
        let st = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((st.sweep_state, st.sweep_error.as_deref(), st.current_generation, st.rows), (SweepState::Failed, Some("403 role missing"), Some(2), 1));
        // The next sweep after a failure starts afresh.
        let g4 = begin(s, &c, t1, start().plus_secs(300), "a").await;
        assert_eq!((g4.generation, g4.resumed), (4, false));

        // Another tenant: the old inventory is dropped at once.
        let g5 = begin(s, &c, TenantId::parse(T2).unwrap(), start().plus_secs(400), "a").await;
        assert!(!g5.resumed);
        let st = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((st.current_generation, st.as_of), (None, None));
        assert!(s.inventory_rows(&c).await.unwrap().is_empty());
    }

    async fn patches_and_queries(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        company(s, "fabrikam").await;
        let c = cid("contoso");
        let t1 = TenantId::parse(T1).unwrap();
        let bob_fa = row("contoso", "sales", "bob", Permission::FullAccess);
        // No inventory yet: a patch is a no-op.
        assert!(!s.inventory_patch(&bob_fa, true).await.unwrap());
        let g = begin(s, &c, t1, start(), "a").await;
        let rows = [
            bob_fa.clone(),
            row("contoso", "support", "bob", Permission::SendAs),
            row("contoso", "support", "alice", Permission::FullAccess),
            row("contoso", "hr", "group1", Permission::FullAccess),
        ];
        s.inventory_write_chunk(&c, g.generation, "a", &rows, &[]).await.unwrap();
        finish(s, &c, g.generation, "a", start(), 3).await;
        // By trustee: object id, address, raw value and alias (local part), any case.
        for needle in ["id-bob", "BOB@c.com", "bob"] {
            assert_eq!(keys(&s.inventory_by_trustee(&c, needle).await.unwrap()), ["sales@c.com:bob@c.com:full_access", "support@c.com:bob@c.com:send_as"], "{needle}");
        }
        assert!(s.inventory_by_trustee(&c, "bo").await.unwrap().is_empty());
        assert!(s.inventory_by_trustee(&c, "b_b").await.unwrap().is_empty(), "`_` is not a wildcard");
        assert!(s.inventory_by_trustee(&cid("fabrikam"), "bob").await.unwrap().is_empty());
        let g1 = s.inventory_by_trustee(&c, "group1").await.unwrap();
        assert_eq!(g1[0].trustee.class, TrusteeClass::Group);
        // By mailbox: object id or address.
        assert_eq!(s.inventory_by_mailbox(&c, "SUPPORT@c.com").await.unwrap().len(), 2);
        assert_eq!(s.inventory_by_mailbox(&c, "id-support").await.unwrap().len(), 2);
        // Patches: remove, add, idempotent both ways; a patch during a sweep lands in both.
        assert!(s.inventory_patch(&bob_fa, false).await.unwrap());
        assert!(s.inventory_patch(&bob_fa, false).await.unwrap());
        assert_eq!(s.inventory_by_trustee(&c, "bob").await.unwrap().len(), 1);
        let g2 = begin(s, &c, t1, start().plus_secs(5), "b").await;
        s.inventory_write_chunk(&c, g2.generation, "b", &rows, &[]).await.unwrap();
        let carol = row("contoso", "hr", "carol", Permission::SendOnBehalf);
        assert!(s.inventory_patch(&carol, true).await.unwrap());
        assert!(s.inventory_patch(&carol, true).await.unwrap());
        assert!(s.inventory_patch(&rows[1], false).await.unwrap());
        assert_eq!(s.inventory_by_trustee(&c, "carol").await.unwrap().len(), 1);
        finish(s, &c, g2.generation, "b", start().plus_secs(6), 3).await;
        // The sweep's own rows (read before the patches) win for bob's Full Access, the patches
        // made during it are kept.
        assert_eq!(keys(&s.inventory_by_trustee(&c, "bob").await.unwrap()), ["sales@c.com:bob@c.com:full_access"]);
        assert_eq!(s.inventory_by_trustee(&c, "carol").await.unwrap().len(), 1);
        assert_eq!(s.inventory_status(&c).await.unwrap().unwrap().rows, 4);
    }

    async fn one_sweep_per_company_holds_the_lease_and_records_start_and_end(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        let c = cid("contoso");
        let t1 = TenantId::parse(T1).unwrap();
        // Eight runs (two replicas' schedulers, Sync now, …) begin the first sweep at once:
        // exactly one starts.
        let results = futures::future::join_all((0..8).map(|i| {
            let db = db.clone();
            let c = c.clone();
            async move {
                db.inventory_begin_sweep(&c, t1, start(), &lease(&format!("run{i}"), start().plus_secs(60)), started(start()).company(&c))
                    .await
                    .unwrap()
            }
        }))
        .await;
        let winners: Vec<usize> = results.iter().enumerate().filter(|(_, r)| matches!(r, SweepBegin::Started(_))).map(|(i, _)| i).collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        let owner = format!("run{}", winners[0]);
        for r in &results {
            if let SweepBegin::Busy { generation, started_at, lease_until } = r {
                assert_eq!((*generation, *started_at, *lease_until), (1, start(), start().plus_secs(60)));
            }
        }
        let head = s.audit_head().await.unwrap();
        // While the lease holds, nobody else starts, writes, renews or ends it, and a refused
        // begin changes nothing (not even the audit log).
        let other = s.inventory_begin_sweep(&c, t1, start().plus_secs(59), &lease("late", start().plus_secs(119)), started(start())).await.unwrap();
        assert!(matches!(other, SweepBegin::Busy { generation: 1, .. }), "{other:?}");
        assert_eq!(s.audit_head().await.unwrap(), head);
        assert!(!s.inventory_write_chunk(&c, 1, "late", &[row("contoso", "sales", "bob", Permission::FullAccess)], &["fa:x".into()]).await.unwrap());
        assert!(!s.inventory_renew_lease(&c, 1, &lease("late", start().plus_secs(500))).await.unwrap());
        assert!(!finish(s, &c, 1, "late", start().plus_secs(59), 0).await);
        assert!(!fail(s, &c, 1, "late", start().plus_secs(59), "x").await);
        // The holder renews: the lease now holds past its first end.
        assert!(s.inventory_renew_lease(&c, 1, &lease(&owner, start().plus_secs(180))).await.unwrap());
        assert_eq!(s.inventory_status(&c).await.unwrap().unwrap().lease_until, Some(start().plus_secs(180)));
        let other = s.inventory_begin_sweep(&c, t1, start().plus_secs(120), &lease("late", start().plus_secs(180)), started(start())).await.unwrap();
        assert!(matches!(other, SweepBegin::Busy { .. }), "{other:?}");
        assert!(s.inventory_write_chunk(&c, 1, &owner, &[row("contoso", "sales", "bob", Permission::FullAccess)], &["fa:0".into()]).await.unwrap());
        // The holder stops renewing (it crashed): after the lease, another run takes over.
        let took = begin(s, &c, t1, start().plus_secs(181), "next").await;
        assert_eq!((took.generation, took.resumed, took.done), (1, true, vec!["fa:0".to_owned()]));
        assert!(!s.inventory_renew_lease(&c, 1, &lease(&owner, start().plus_secs(500))).await.unwrap());
        assert!(!finish(s, &c, 1, &owner, start().plus_secs(182), 1).await);
        assert!(finish(s, &c, 1, "next", start().plus_secs(182), 1).await);
        assert_eq!(s.inventory_rows(&c).await.unwrap().len(), 1);
        // A finished sweep holds no lease: the next one starts at once.
        assert_eq!(begin(s, &c, t1, start().plus_secs(183), "again").await.generation, 2);

        // The audit log has each start (with its generation and whether it resumed) and end.
        let events = s.list_audit(0, 100).await.unwrap();
        let sweeps: Vec<(String, serde_json::Value)> = events
            .iter()
            .filter(|e| e.event.kind.starts_with("inventory."))
            .map(|e| (e.event.kind.clone(), serde_json::from_str(&e.event.detail).unwrap()))
            .collect();
        let kinds: Vec<&str> = sweeps.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["inventory.sweep_started", "inventory.sweep_started", "inventory.sweep_finished", "inventory.sweep_started"]);
        assert_eq!(sweeps[0].1, serde_json::json!({"generation": 1, "resumed": false}));
        assert_eq!(sweeps[1].1, serde_json::json!({"generation": 1, "resumed": true}));
        assert_eq!(sweeps[3].1, serde_json::json!({"generation": 2, "resumed": false}));
        assert!(events.iter().filter(|e| e.event.kind.starts_with("inventory.")).all(|e| e.event.company.as_deref() == Some("contoso")));
    }

    async fn rights_held_through_groups_are_found_by_member(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        let c = cid("contoso");
        let t1 = TenantId::parse(T1).unwrap();
        let member = |group: &str, who: &str| GroupMember {
            group: format!("id-{group}"),
            member: ident(&format!("id-{who}"), &format!("{who}@c.com"), if who.starts_with("group") { RecipientKind::Group } else { RecipientKind::UserMailbox }),
        };
        let g = begin(s, &c, t1, start(), "a").await;
        let rows = [
            row("contoso", "sales", "group1", Permission::FullAccess),
            row("contoso", "hr", "group2", Permission::SendAs),
            row("contoso", "support", "carol", Permission::SendAs),
        ];
        assert!(s.inventory_write_chunk(&c, g.generation, "a", &rows, &[]).await.unwrap());
        assert_eq!(s.inventory_group_trustees(&c, g.generation).await.unwrap(), [("id-group1".to_owned(), "group1@c.com".to_owned()), ("id-group2".to_owned(), "group2@c.com".to_owned())]);
        // group2 is inside group1 (flattened: dave is recorded under both); carol is in group1.
        let members = [member("group1", "carol"), member("group1", "group2"), member("group2", "dave"), member("group1", "dave"), member("group1", "dave")];
        assert!(!s.inventory_write_members(&c, g.generation, "someone-else", &members, &[]).await.unwrap(), "only the lease holder writes");
        assert!(s.inventory_write_members(&c, g.generation, "a", &members, &["members".into()]).await.unwrap());
        // Not visible before the sweep finishes.
        assert!(s.inventory_by_trustee(&c, "carol").await.unwrap().is_empty());
        assert!(finish(s, &c, g.generation, "a", start().plus_secs(1), 3).await);
        // carol: her own right and group1's, by alias, address or object id, any case.
        for needle in ["carol", "CAROL@c.com", "id-carol"] {
            assert_eq!(keys(&s.inventory_by_trustee(&c, needle).await.unwrap()), ["sales@c.com:group1@c.com:full_access", "support@c.com:carol@c.com:send_as"], "{needle}");
        }
        // dave: through group2 (direct) and group1 (nested), each row once.
        assert_eq!(keys(&s.inventory_by_trustee(&c, "dave").await.unwrap()), ["hr@c.com:group2@c.com:send_as", "sales@c.com:group1@c.com:full_access"]);
        let via = s.inventory_by_trustee(&c, "dave").await.unwrap();
        assert!(via.iter().all(|r| r.trustee.class == TrusteeClass::Group));
        assert!(s.inventory_by_trustee(&c, "car").await.unwrap().is_empty());
        // A new generation without those members: carol keeps only her own right.
        let g2 = begin(s, &c, t1, start().plus_secs(10), "a").await;
        assert!(s.inventory_write_chunk(&c, g2.generation, "a", &rows, &[]).await.unwrap());
        assert!(finish(s, &c, g2.generation, "a", start().plus_secs(11), 3).await);
        assert_eq!(keys(&s.inventory_by_trustee(&c, "carol").await.unwrap()), ["support@c.com:carol@c.com:send_as"]);
        assert!(s.inventory_by_trustee(&c, "dave").await.unwrap().is_empty());
    }
}

// (inventory-truth) The inventory's own directory.
fn name(
    n: &str,
    id: &str,
    addr: &str,
    kind: RecipientKind,
) -> exogate_core::inventory::DirectoryName {
    exogate_core::inventory::DirectoryName {
        name: n.into(),
        identity: ident(id, addr, kind),
    }
}

both! {
    async fn directory_names_follow_the_current_generation(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        company(s, "fabrikam").await;
        let c = cid("contoso");
        let t1 = TenantId::parse(T1).unwrap();
        // No inventory: nothing resolves.
        assert!(s.inventory_lookup(&c, "support").await.unwrap().is_empty());
        let g = begin(s, &c, t1, start(), "a").await;
        let names = [
            name("support", "id-support", "support@c.com", RecipientKind::SharedMailbox),
            name("support@c.com", "id-support", "support@c.com", RecipientKind::SharedMailbox),
            name("help@old.c.com", "id-support", "support@c.com", RecipientKind::SharedMailbox),
            // Two recipients share a display name.
            name("sam smith", "id-sam1", "sam1@c.com", RecipientKind::UserMailbox),
            name("sam smith", "id-sam2", "sam2@c.com", RecipientKind::UserMailbox),
        ];
        assert!(!s.inventory_write_names(&c, g.generation, "someone-else", &names).await.unwrap(), "only the lease holder writes");
        assert!(s.inventory_write_names(&c, g.generation, "a", &names).await.unwrap());
        // Written twice (a resumed sweep): kept once.
        assert!(s.inventory_write_names(&c, g.generation, "a", &names).await.unwrap());
        // Invisible until the sweep finishes.
        assert!(s.inventory_lookup(&c, "support").await.unwrap().is_empty());
        assert!(finish(s, &c, g.generation, "a", start().plus_secs(1), 2).await);
        for n in ["support", " SUPPORT@c.com ", "Help@Old.c.com"] {
            let found = s.inventory_lookup(&c, n).await.unwrap();
            assert_eq!(found, [ident("id-support", "support@c.com", RecipientKind::SharedMailbox)], "{n}");
        }
        let sams: Vec<String> = s.inventory_lookup(&c, "Sam Smith").await.unwrap().into_iter().map(|i| i.object_id).collect();
        assert_eq!(sams, ["id-sam1", "id-sam2"]);
        assert!(s.inventory_lookup(&c, "suport").await.unwrap().is_empty());
        // Another company's names are not this one's.
        assert!(s.inventory_lookup(&cid("fabrikam"), "support").await.unwrap().is_empty());
        // A failed sweep drops its own names; the current generation's stay.
        let g2 = begin(s, &c, t1, start().plus_secs(10), "a").await;
        assert!(s.inventory_write_names(&c, g2.generation, "a", &[name("newbox", "id-new", "new@c.com", RecipientKind::UserMailbox)]).await.unwrap());
        assert!(fail(s, &c, g2.generation, "a", start().plus_secs(11), "boom").await);
        assert!(s.inventory_lookup(&c, "newbox").await.unwrap().is_empty());
        assert_eq!(s.inventory_lookup(&c, "support").await.unwrap().len(), 1);
        // A finished sweep replaces them.
        let g3 = begin(s, &c, t1, start().plus_secs(20), "a").await;
        assert!(s.inventory_write_names(&c, g3.generation, "a", &[name("newbox", "id-new", "new@c.com", RecipientKind::UserMailbox)]).await.unwrap());
        assert!(finish(s, &c, g3.generation, "a", start().plus_secs(21), 1).await);
        assert_eq!(s.inventory_lookup(&c, "newbox").await.unwrap().len(), 1);
        assert!(s.inventory_lookup(&c, "support").await.unwrap().is_empty());
    }
}
