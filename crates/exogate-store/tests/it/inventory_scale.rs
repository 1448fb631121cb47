//! (scale) "What can X open" across many companies in a fixed number of statements:
//! `inventory_user_matches` gives, company by company, exactly what `inventory_lookup` followed
//! by `inventory_by_trustee` gives (direct rights, rights through nested groups, orphaned SIDs,
//! a name carried by one, none or several recipients), only for the companies asked for and
//! only from current generations; `inventory_statuses` gives what `inventory_status` gives.

use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{
    DirectoryName, GroupMember, InventoryRow, InventoryTrustee, SweepBegin, SweepLease,
    TrusteeClass, UserMatch,
};
use exogate_core::ports::Store;
use exogate_core::*;

use crate::support::*;

fn ident(id: &str, addr: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: id.into(),
        primary_address: addr.into(),
        display_name: addr.split('@').next().unwrap_or(addr).to_uppercase(),
        kind,
    }
}

fn who(t: &str, domain: &str) -> ResolvedIdentity {
    let kind = if t.starts_with("group") {
        RecipientKind::Group
    } else {
        RecipientKind::UserMailbox
    };
    ident(&format!("id-{t}"), &format!("{t}@{domain}"), kind)
}

pub(crate) fn row(
    company: &str,
    domain: &str,
    mailbox: &str,
    trustee: &str,
    right: Permission,
) -> InventoryRow {
    let trustee = if trustee.starts_with("S-1-5-21-") {
        InventoryTrustee {
            raw: trustee.into(),
            sid: Some(trustee.into()),
            class: TrusteeClass::Orphan,
            identity: None,
        }
    } else if trustee.starts_with("group") {
        InventoryTrustee {
            raw: trustee.into(),
            sid: None,
            class: TrusteeClass::Group,
            identity: Some(who(trustee, domain)),
        }
    } else {
        InventoryTrustee::resolved(who(trustee, domain))
    };
    InventoryRow {
        company: cid(company),
        mailbox: ident(
            &format!("id-{mailbox}"),
            &format!("{mailbox}@{domain}"),
            RecipientKind::SharedMailbox,
        ),
        trustee,
        right,
    }
}

pub(crate) async fn company(s: &dyn Store, id: &str) {
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

/// One finished sweep of `id` (generation `n`) with those rows, group members and names;
/// `finish: false` leaves it running (nothing current).
pub(crate) async fn sweep(
    s: &dyn Store,
    id: &str,
    tenant: u128,
    rows: &[InventoryRow],
    members: &[GroupMember],
    names: &[DirectoryName],
    finish: bool,
) {
    let c = cid(id);
    let t = TenantId::from_uuid(uuid::Uuid::from_u128(
        0x7000_0000_0000_4000_8000_0000_0000_0000 + tenant,
    ));
    let lease = SweepLease {
        owner: "a".into(),
        until: start().plus_secs(60),
    };
    let g = match s
        .inventory_begin_sweep(
            &c,
            t,
            start(),
            &lease,
            NewAuditEvent::system(start(), AuditKind::InventorySweepStarted).company(&c),
        )
        .await
        .unwrap()
    {
        SweepBegin::Started(st) => st.generation,
        busy => panic!("{busy:?}"),
    };
    assert!(
        s.inventory_write_chunk(&c, g, "a", rows, &[])
            .await
            .unwrap()
    );
    assert!(
        s.inventory_write_members(&c, g, "a", members, &[])
            .await
            .unwrap()
    );
    assert!(s.inventory_write_names(&c, g, "a", names).await.unwrap());
    if finish {
        let done = NewAuditEvent::system(start().plus_secs(1), AuditKind::InventorySweepFinished)
            .company(&c);
        assert!(
            s.inventory_finish_sweep(&c, g, "a", start().plus_secs(1), 3, done)
                .await
                .unwrap()
        );
    }
}

pub(crate) fn member(group: &str, m: &str, domain: &str) -> GroupMember {
    GroupMember {
        group: format!("id-{group}"),
        member: who(m, domain),
    }
}

pub(crate) fn names(id: &str, domain: &str, t: &str) -> Vec<DirectoryName> {
    let i = who(t, domain);
    [
        t.to_owned(),
        format!("{t}@{domain}"),
        i.object_id.clone(),
        i.display_name.to_lowercase(),
    ]
    .into_iter()
    .map(|name| DirectoryName {
        name,
        identity: i.clone(),
    })
    .chain(std::iter::once(DirectoryName {
        name: format!("{id}-shared"),
        identity: i.clone(),
    }))
    .collect()
}

/// What the per-company methods say, in the shape of `inventory_user_matches`.
pub(crate) async fn one_by_one(
    s: &dyn Store,
    companies: &[CompanyId],
    needle: &str,
) -> Vec<UserMatch> {
    let mut out = Vec::new();
    for c in companies {
        if s.inventory_status(c)
            .await
            .unwrap()
            .and_then(|st| st.current_generation)
            .is_none()
        {
            continue;
        }
        let found = s.inventory_lookup(c, needle).await.unwrap();
        let rows = match found.as_slice() {
            [one] => s.inventory_by_trustee(c, &one.object_id).await.unwrap(),
            [] => s.inventory_by_trustee(c, needle).await.unwrap(),
            _ => Vec::new(),
        };
        if found.is_empty() && rows.is_empty() {
            continue;
        }
        out.push(UserMatch {
            company: c.clone(),
            names: found.len(),
            rows,
        });
    }
    out.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
    out
}

both! {
    async fn user_matches_across_companies_equal_the_per_company_answers(db: Db) {
        let s: &dyn Store = &db;
        for c in ["contoso", "fabrikam", "northwind", "tailspin"] {
            company(s, c).await;
        }
        use Permission::*;
        // contoso: carol directly and through group1 (group2 nested in it: dave through both),
        // an orphaned SID, and carol's names in the directory.
        let contoso = [
            row("contoso", "c.com", "sales", "group1", FullAccess),
            row("contoso", "c.com", "hr", "group2", SendAs),
            row("contoso", "c.com", "support", "carol", SendAs),
            row("contoso", "c.com", "support", "carol", FullAccess),
            row("contoso", "c.com", "legal", "S-1-5-21-1-2-3-500", FullAccess),
            row("contoso", "c.com", "it", "erin", SendOnBehalf),
        ];
        let cm = [member("group1", "carol", "c.com"), member("group1", "group2", "c.com"), member("group2", "dave", "c.com"), member("group1", "dave", "c.com")];
        let mut cn = names("contoso", "c.com", "carol");
        cn.extend(names("contoso", "c.com", "erin"));
        sweep(s, "contoso", 1, &contoso, &cm, &cn, true).await;
        // fabrikam: carol again (another tenant, another domain), no names recorded (an
        // inventory swept before names were), dave's address a prefix of another's.
        let fabrikam = [
            row("fabrikam", "f.com", "sales", "carol", FullAccess),
            row("fabrikam", "f.com", "ops", "dave", SendAs),
            row("fabrikam", "f.com", "ops", "davey", SendAs),
            row("fabrikam", "f.com", "ops", "d_ve", FullAccess),
        ];
        sweep(s, "fabrikam", 2, &fabrikam, &[], &[], true).await;
        // northwind: a running sweep only (nothing current), with carol in it.
        sweep(s, "northwind", 3, &[row("northwind", "n.com", "x", "carol", FullAccess)], &[], &names("northwind", "n.com", "carol"), false).await;
        // tailspin: carol too, but tailspin is not asked for below.
        sweep(s, "tailspin", 4, &[row("tailspin", "t.com", "y", "carol", FullAccess)], &[], &names("tailspin", "t.com", "carol"), true).await;

        let asked = [cid("contoso"), cid("fabrikam"), cid("northwind")];
        for needle in [
            "carol", " CAROL@c.com ", "id-carol", "carol@f.com", "dave", "DAVE@f.com", "d_ve", "d%ve", "dav",
            "S-1-5-21-1-2-3-500", "erin", "group1@c.com", "id-group2", "contoso-shared", "nobody", "",
        ] {
            let got = s.inventory_user_matches(&asked, needle).await.unwrap();
            assert_eq!(got, one_by_one(s, &asked, needle).await, "{needle:?}");
            assert!(got.iter().all(|m| m.company.as_str() != "tailspin" && m.company.as_str() != "northwind"), "{needle:?}");
        }
        // Spot checks that the comparison above compares something.
        let carol = s.inventory_user_matches(&asked, "carol").await.unwrap();
        let per: Vec<(&str, usize, usize)> = carol.iter().map(|m| (m.company.as_str(), m.names, m.rows.len())).collect();
        assert_eq!(per, [("contoso", 1, 3), ("fabrikam", 0, 1)]);
        let dave = s.inventory_user_matches(&asked, "dave").await.unwrap();
        let per: Vec<(&str, usize)> = dave.iter().map(|m| (m.company.as_str(), m.rows.len())).collect();
        assert_eq!(per, [("contoso", 2), ("fabrikam", 1)], "through groups once each; `dave` not `davey`");
        let both_names = s.inventory_user_matches(&asked, "contoso-shared").await.unwrap();
        assert_eq!(both_names.len(), 1);
        assert_eq!((both_names[0].names, both_names[0].rows.len()), (2, 0), "ambiguous: counted, no rows");
        assert!(s.inventory_user_matches(&[], "carol").await.unwrap().is_empty());

        // Statuses: what `inventory_status` says (which counts the rows), for the companies
        // asked for only, also after patches (a new row, a removed row, a row already there,
        // a row not there).
        assert!(s.inventory_patch(&row("contoso", "c.com", "new", "carol", FullAccess), true).await.unwrap());
        assert!(s.inventory_patch(&row("contoso", "c.com", "new", "carol", FullAccess), true).await.unwrap());
        assert!(s.inventory_patch(&row("contoso", "c.com", "it", "erin", SendOnBehalf), false).await.unwrap());
        assert!(s.inventory_patch(&row("contoso", "c.com", "gone", "erin", SendAs), false).await.unwrap());
        assert!(s.inventory_patch(&row("fabrikam", "f.com", "x", "zed", SendAs), true).await.unwrap());
        assert!(s.inventory_patch(&row("northwind", "n.com", "x", "zed", SendAs), true).await.is_ok());
        let mut st = s.inventory_statuses(&asked).await.unwrap();
        st.sort_by(|a, b| a.company.as_str().cmp(b.company.as_str()));
        let mut want = Vec::new();
        for c in &asked {
            want.extend(s.inventory_status(c).await.unwrap());
        }
        assert_eq!(st, want);
        assert_eq!(st.len(), 3);
        assert_eq!((st[0].rows, st[1].rows, st[2].rows), (6, 5, 0));
        assert!(s.inventory_statuses(&[]).await.unwrap().is_empty());
    }

    async fn user_matches_cover_more_companies_than_one_statement(db: Db) {
        let s: &dyn Store = &db;
        // More companies than one statement takes (300): every chunk is answered.
        let ids: Vec<String> = (0..610).map(|i| format!("co-{i:04}")).collect();
        for (i, id) in ids.iter().enumerate() {
            company(s, id).await;
            if i % 100 == 7 {
                sweep(s, id, i as u128 + 10, &[row(id, "x.com", "box", "carol", Permission::FullAccess)], &[], &names(id, "x.com", "carol"), true).await;
            }
        }
        let asked: Vec<CompanyId> = ids.iter().map(|i| cid(i)).collect();
        let got: Vec<String> = s.inventory_user_matches(&asked, "carol").await.unwrap().into_iter().map(|m| m.company.as_str().to_owned()).collect();
        assert_eq!(got, ["co-0007", "co-0107", "co-0207", "co-0307", "co-0407", "co-0507", "co-0607"]);
        assert_eq!(s.inventory_statuses(&asked).await.unwrap().len(), 7);
    }
}
