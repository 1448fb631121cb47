//! The delegation inventory on both backends: atomic generation switch, resume of a crashed
//! sweep, failure keeping the last good inventory, patches, and the by-mailbox / by-trustee
//! queries.

use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{InventoryRow, InventoryTrustee, SweepState, TrusteeClass};
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

both! {
    async fn sweep_switches_generations_atomically_and_resumes(db: Db) {
        let s: &dyn Store = &db;
        company(s, "contoso").await;
        let c = cid("contoso");
        let t1 = TenantId::parse(T1).unwrap();
        assert!(s.inventory_status(&c).await.unwrap().is_none());
        let g1 = s.inventory_begin_sweep(&c, t1, start()).await.unwrap();
        assert_eq!((g1.generation, g1.resumed), (1, false));
        let first = [row("contoso", "sales", "alice", Permission::FullAccess), row("contoso", "sales", "group1", Permission::SendAs)];
        assert!(s.inventory_write_chunk(&c, 1, &first, &["fa:0".into()]).await.unwrap());
        // Rows of a running sweep are invisible until it finishes.
        assert!(s.inventory_rows(&c).await.unwrap().is_empty());
        // A crash: the next begin continues generation 1 with its finished chunk.
        let again = s.inventory_begin_sweep(&c, t1, start().plus_secs(1)).await.unwrap();
        assert_eq!((again.generation, again.resumed, again.done.clone()), (1, true, vec!["fa:0".to_owned()]));
        // Rewriting a row is harmless.
        assert!(s.inventory_write_chunk(&c, 1, &first[..1], &["fa:0".into(), "fa:1".into()]).await.unwrap());
        let orphan = row("contoso", "support", "S-1-5-21-1-2-3-99", Permission::FullAccess);
        assert!(s.inventory_write_chunk(&c, 1, std::slice::from_ref(&orphan), &[]).await.unwrap());
        assert!(s.inventory_finish_sweep(&c, 1, start().plus_secs(2), 2).await.unwrap());
        let st = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((st.current_generation, st.as_of, st.mailboxes, st.rows, st.sweep_state), (Some(1), Some(start().plus_secs(2)), 2, 3, SweepState::Ok));
        assert_eq!(keys(&s.inventory_rows(&c).await.unwrap()), ["sales@c.com:alice@c.com:full_access", "sales@c.com:group1@c.com:send_as", "support@c.com:S-1-5-21-1-2-3-99:full_access"]);
        // Finishing twice does nothing.
        assert!(!s.inventory_finish_sweep(&c, 1, start().plus_secs(3), 2).await.unwrap());

        // Generation 2 replaces generation 1 in one step; a write to the old one is refused.
        let g2 = s.inventory_begin_sweep(&c, t1, start().plus_secs(10)).await.unwrap();
        assert_eq!((g2.generation, g2.resumed), (2, false));
        assert!(!s.inventory_write_chunk(&c, 1, &first, &[]).await.unwrap());
        assert!(s.inventory_write_chunk(&c, 2, &[row("contoso", "sales", "bob", Permission::SendOnBehalf)], &[]).await.unwrap());
        assert_eq!(s.inventory_rows(&c).await.unwrap().len(), 3, "readers still see generation 1");
        let running = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((running.sweep_state, running.current_generation), (SweepState::Running, Some(1)));
        assert!(s.inventory_finish_sweep(&c, 2, start().plus_secs(11), 1).await.unwrap());
        assert_eq!(keys(&s.inventory_rows(&c).await.unwrap()), ["sales@c.com:bob@c.com:send_on_behalf"]);

        // A failed sweep keeps the last good inventory and says why.
        let g3 = s.inventory_begin_sweep(&c, t1, start().plus_secs(20)).await.unwrap();
        assert!(s.inventory_write_chunk(&c, g3.generation, &first, &[]).await.unwrap());
        assert!(s.inventory_fail_sweep(&c, g3.generation, start().plus_secs(21), "403 role missing").await.unwrap());
        let st = s.inventory_status(&c).await.unwrap().unwrap();
        assert_eq!((st.sweep_state, st.sweep_error.as_deref(), st.current_generation, st.rows), (SweepState::Failed, Some("403 role missing"), Some(2), 1));
        // The next sweep after a failure starts afresh.
        let g4 = s.inventory_begin_sweep(&c, t1, start().plus_secs(30)).await.unwrap();
        assert_eq!((g4.generation, g4.resumed), (4, false));

        // Another tenant: the old inventory is dropped at once.
        let g5 = s.inventory_begin_sweep(&c, TenantId::parse(T2).unwrap(), start().plus_secs(40)).await.unwrap();
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
        let g = s.inventory_begin_sweep(&c, t1, start()).await.unwrap();
        let rows = [
            bob_fa.clone(),
            row("contoso", "support", "bob", Permission::SendAs),
            row("contoso", "support", "alice", Permission::FullAccess),
            row("contoso", "hr", "group1", Permission::FullAccess),
        ];
        s.inventory_write_chunk(&c, g.generation, &rows, &[]).await.unwrap();
        s.inventory_finish_sweep(&c, g.generation, start(), 3).await.unwrap();
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
        let g2 = s.inventory_begin_sweep(&c, t1, start().plus_secs(5)).await.unwrap();
        s.inventory_write_chunk(&c, g2.generation, &rows, &[]).await.unwrap();
        let carol = row("contoso", "hr", "carol", Permission::SendOnBehalf);
        assert!(s.inventory_patch(&carol, true).await.unwrap());
        assert!(s.inventory_patch(&carol, true).await.unwrap());
        assert!(s.inventory_patch(&rows[1], false).await.unwrap());
        assert_eq!(s.inventory_by_trustee(&c, "carol").await.unwrap().len(), 1);
        s.inventory_finish_sweep(&c, g2.generation, start().plus_secs(6), 3).await.unwrap();
        // The sweep's own rows (read before the patches) win for bob's Full Access, the patches
        // made during it are kept.
        assert_eq!(keys(&s.inventory_by_trustee(&c, "bob").await.unwrap()), ["sales@c.com:bob@c.com:full_access"]);
        assert_eq!(s.inventory_by_trustee(&c, "carol").await.unwrap().len(), 1);
        assert_eq!(s.inventory_status(&c).await.unwrap().unwrap().rows, 4);
    }
}
