//! The core's inventory sweep against the core's fake Microsoft, writing through the real
//! store: the inventory it leaves equals the fake tenant's grants (groups kept as groups and
//! their members expanded, nested groups too; deleted principals as orphans; recipients in
//! neither list looked up), and its start, end or failure is in the audit log.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use exogate_core::action::Permission;
use exogate_core::audit::AuditKind;
use exogate_core::inventory::{SweepState, TrusteeClass};
use exogate_core::ops::inventory::{
    DEFAULT_LEASE, SweepError, SweepOptions, SweepReport, no_progress, sweep,
};
use exogate_core::ports::{MsError, Timer};
use exogate_core::*;

use crate::support::*;

/// A timer that never fires: the sweeps here end long before a lease needs renewing.
struct Never;

impl Timer for Never {
    fn sleep<'a, 'b>(
        &'a self,
        _: std::time::Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(std::future::pending())
    }
}

async fn sweep_company(w: &World, company: &str, tenant: &str) -> Result<SweepReport, SweepError> {
    let options = SweepOptions {
        actor: Some(&w.tech_a),
        tenant: TenantId::parse(tenant).unwrap(),
        owner: format!("run-{company}"),
        lease: DEFAULT_LEASE,
        timer: &Never,
    };
    sweep(w.ctx(), &cid(company), options, &no_progress()).await
}

fn recipient(tenant: TenantId, n: u32, name: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: format!("{}-{n:012}", &tenant.to_string()[..23]),
        primary_address: format!("{name}@contoso.onmicrosoft.com"),
        display_name: name.to_owned(),
        kind,
    }
}

/// (mailbox object id, trustee key, right) of every current row.
type Key = (String, String, Permission);

/// A trustee's key as the inventory keeps it: a SID as printed, anything else lowercase.
fn key(trustee: &str) -> String {
    if trustee.starts_with("S-1-5-21-") {
        trustee.to_owned()
    } else {
        trustee.to_lowercase()
    }
}

const ORPHAN: &str = "S-1-5-21-1000-2000-3000-4444";
const GHOST: &str = "ghost-of-a-name";

both! {
    async fn a_sweep_through_the_fake_reads_the_tenant_to_its_ground_truth(db: Db) {
        let w = World::new(db).await;
        let t1 = TenantId::parse(T1).unwrap();
        let by_name = |name: &str| {
            w.ms.recipients(t1)
                .into_iter()
                .find(|r| r.primary_address.starts_with(&format!("{name}@")))
                .unwrap()
        };
        let (alice, bob, carol, sales, support) = (
            by_name("alice"),
            by_name("bob"),
            by_name("carol"),
            by_name("sales"),
            by_name("support"),
        );
        // Sales Team holds Full Access on support; carol is in it, and so is Helpdesk, where
        // bob is. The mail user is in neither list the sweep reads.
        let team = recipient(t1, 101, "sales-team", RecipientKind::Group);
        let helpdesk = recipient(t1, 102, "helpdesk", RecipientKind::Group);
        let partner = recipient(t1, 103, "partner", RecipientKind::MailUser);
        for r in [&team, &helpdesk, &partner] {
            w.ms.add_recipient(t1, r.clone());
        }
        w.ms.set_members(t1, &team.object_id, &[carol.object_id.clone(), helpdesk.object_id.clone()]);
        w.ms.set_members(t1, &helpdesk.object_id, std::slice::from_ref(&bob.object_id));
        for (right, mailbox, trustee) in [
            (Permission::FullAccess, &sales, alice.object_id.as_str()),
            (Permission::SendAs, &sales, &alice.object_id),
            (Permission::SendAs, &support, &bob.object_id),
            (Permission::SendOnBehalf, &sales, &carol.object_id),
            (Permission::FullAccess, &support, &team.object_id),
            (Permission::FullAccess, &alice, ORPHAN),
            (Permission::SendAs, &bob, &partner.object_id),
            (Permission::FullAccess, &carol, GHOST),
        ] {
            w.ms.grant_directly(t1, right, &mailbox.object_id, trustee);
        }

        let report = sweep_company(&w, "contoso", T1).await.expect("the sweep finishes");
        assert_eq!(report.mailboxes, 5, "{report:?}");
        assert_eq!(report.rows, 8, "{report:?}");
        assert!(!report.resumed);

        // Every row is one of the fake's grants and every grant is a row, each trustee
        // classed as what it is.
        let truth: HashSet<Key> = w
            .ms
            .grants(t1)
            .into_iter()
            .map(|(right, mailbox, trustee)| (mailbox, key(&trustee), right))
            .collect();
        let rows = w.store.inventory_rows(&cid("contoso")).await.unwrap();
        let swept: HashSet<Key> = rows.iter().map(|r| r.key()).collect();
        assert_eq!(swept, truth);
        let class = |trustee: &str| {
            rows.iter()
                .find(|r| r.trustee.key() == key(trustee))
                .map(|r| r.trustee.class)
        };
        assert_eq!(class(&team.object_id), Some(TrusteeClass::Group));
        assert_eq!(class(ORPHAN), Some(TrusteeClass::Orphan));
        assert_eq!(class(&partner.object_id), Some(TrusteeClass::User));
        assert_eq!(class(GHOST), Some(TrusteeClass::Unresolved));
        assert_eq!(class(&carol.object_id), Some(TrusteeClass::User));

        // The group's members, nested ones too, open support through it; nobody else does.
        for (who, through_team) in [
            (&carol, true),
            (&bob, true),
            (&helpdesk, true),
            (&alice, false),
            (&partner, false),
        ] {
            let found = w
                .store
                .inventory_by_trustee(&cid("contoso"), &who.primary_address)
                .await
                .unwrap();
            let via_team = found
                .iter()
                .any(|r| r.trustee.key() == team.object_id && r.mailbox == support);
            assert_eq!(via_team, through_team, "{}: {found:?}", who.primary_address);
        }

        let status = w.store.inventory_status(&cid("contoso")).await.unwrap().unwrap();
        assert_eq!(status.sweep_state, SweepState::Ok);
        assert_eq!(status.current_generation, Some(report.generation));
        assert_eq!(status.mailboxes, 5);
        let kinds: Vec<String> = w
            .store
            .recent_audit(Some(&cid("contoso")), None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event.kind)
            .filter(|k| k.starts_with("inventory."))
            .collect();
        assert_eq!(
            kinds,
            [
                AuditKind::InventorySweepFinished.as_str(),
                AuditKind::InventorySweepStarted.as_str()
            ],
        );
    }

    async fn a_sweep_microsoft_refuses_is_recorded_failed_and_keeps_the_last_inventory(db: Db) {
        let w = World::new(db).await;
        let t2 = TenantId::parse(T2).unwrap();
        let first = sweep_company(&w, "fabrikam", T2).await.expect("the first sweep finishes");
        w.ms.set_state(t2, ExchangeAdminState::RoleMissing);
        let second = sweep_company(&w, "fabrikam", T2).await;
        assert!(
            matches!(
                second,
                Err(SweepError::Microsoft(MsError::NotConfigured {
                    state: ExchangeAdminState::RoleMissing,
                    ..
                }))
            ),
            "{second:?}"
        );
        let status = w.store.inventory_status(&cid("fabrikam")).await.unwrap().unwrap();
        assert_eq!(status.sweep_state, SweepState::Failed);
        assert_eq!(status.current_generation, Some(first.generation));
        let latest = w
            .store
            .recent_audit(Some(&cid("fabrikam")), None, 1)
            .await
            .unwrap();
        assert_eq!(latest[0].event.kind, AuditKind::InventorySweepFailed.as_str());
    }
}
