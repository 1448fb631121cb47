//! (reviews) Access reviews on both backends: a campaign copies the inventory at its start;
//! pages and filters; decisions only while open; closing makes one request per company
//! exactly once, even when two close at the same moment; links by hash and revocation; the
//! link key's first writer wins; a scheduled repeat starts once.

use exogate_core::action::Permission;
use exogate_core::inventory::{InventoryRow, InventoryTrustee, TrusteeClass};
use exogate_core::ops::reviews::{self, CreateInput, Reviewer, Selection};
use exogate_core::ports::Store;
use exogate_core::review::*;
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

fn ident(name: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: format!("id-{name}"),
        primary_address: format!("{name}@contoso.com"),
        display_name: name.to_uppercase(),
        kind,
    }
}

fn row(
    company: &str,
    mailbox: &str,
    kind: RecipientKind,
    trustee: &str,
    right: Permission,
) -> InventoryRow {
    InventoryRow {
        company: cid(company),
        mailbox: ident(mailbox, kind),
        trustee: InventoryTrustee::resolved(ident(trustee, RecipientKind::UserMailbox)),
        right,
    }
}

fn orphan(company: &str, mailbox: &str) -> InventoryRow {
    let sid = "S-1-5-21-1-2-3-500".to_owned();
    InventoryRow {
        company: cid(company),
        mailbox: ident(mailbox, RecipientKind::SharedMailbox),
        trustee: InventoryTrustee {
            raw: sid.clone(),
            sid: Some(sid),
            class: TrusteeClass::Orphan,
            identity: None,
        },
        right: Permission::FullAccess,
    }
}

async fn seed(s: &dyn Store, company: &str, tenant: &str, rows: &[InventoryRow]) {
    swept(s, company, tenant, start(), rows, 3).await;
}

fn new_id() -> CampaignId {
    CampaignId::from_uuid(Uuid::now_v7())
}

async fn world_with_inventory(db: Db) -> World {
    let w = World::new(db).await;
    seed(
        w.store.as_ref(),
        "contoso",
        T1,
        &[
            row(
                "contoso",
                "sales",
                RecipientKind::SharedMailbox,
                "bob",
                Permission::FullAccess,
            ),
            row(
                "contoso",
                "sales",
                RecipientKind::SharedMailbox,
                "carol",
                Permission::SendAs,
            ),
            row(
                "contoso",
                "ceo",
                RecipientKind::UserMailbox,
                "bob",
                Permission::FullAccess,
            ),
            orphan("contoso", "support"),
        ],
    )
    .await;
    seed(
        w.store.as_ref(),
        "fabrikam",
        T2,
        &[row(
            "fabrikam",
            "info",
            RecipientKind::SharedMailbox,
            "dave",
            Permission::FullAccess,
        )],
    )
    .await;
    w
}

fn input(companies: &[&str], kinds: Vec<RecipientKind>) -> CreateInput {
    CreateInput {
        id: new_id(),
        name: "Q1 <shared>".to_owned(),
        scope: Scope {
            companies: companies.iter().map(|c| cid(c)).collect(),
            kinds,
            rights: Vec::new(),
            older_than_days: None,
        },
        reviewers: Vec::new(),
        due_at: start().plus_secs(7 * 86400),
        schedule: None,
    }
}

both! {
    async fn campaign_copies_the_inventory_and_pages_filter(db: Db) {
        let w = world_with_inventory(db).await;
        let c = reviews::create(w.ctx(), &w.mgr_a, input(&["contoso"], vec![RecipientKind::SharedMailbox]))
            .await
            .unwrap();
        let got = w.store.review_get(c.id).await.unwrap().unwrap();
        assert_eq!(got.name, "Q1 <shared>");
        assert_eq!(got.state, CampaignState::Open);
        assert_eq!(got.companies.len(), 1);
        assert_eq!(got.companies[0].items, 3, "shared mailboxes only: sales ×2 and support");
        assert_eq!(got.companies[0].decided, 1, "the orphan starts as remove");
        let all = w.store.review_items(c.id, &ItemFilter::default()).await.unwrap();
        assert_eq!(all.len(), 3);
        let o = all.iter().find(|i| i.orphan()).unwrap();
        assert_eq!(o.decision.as_ref().unwrap().verdict, Verdict::Remove);
        // Later inventory changes do not change the items.
        w.store.inventory_patch(&row("contoso", "sales", RecipientKind::SharedMailbox, "bob", Permission::FullAccess), false).await.unwrap();
        assert_eq!(w.store.review_items(c.id, &ItemFilter::default()).await.unwrap().len(), 3);
        // Filters and paging.
        let f = ItemFilter { trustee: Some("CAROL".into()), ..ItemFilter::default() };
        assert_eq!(w.store.review_items(c.id, &f).await.unwrap().len(), 1);
        let f = ItemFilter { mailbox: Some("sales@".into()), ..ItemFilter::default() };
        assert_eq!(w.store.review_items(c.id, &f).await.unwrap().len(), 2);
        let f = ItemFilter { mailbox: Some("SALES@CONTOSO.COM".into()), exact: true, ..ItemFilter::default() };
        assert_eq!(w.store.review_items(c.id, &f).await.unwrap().len(), 2, "exact, any case");
        let f = ItemFilter { mailbox: Some("sales@".into()), exact: true, ..ItemFilter::default() };
        assert_eq!(w.store.review_items(c.id, &f).await.unwrap().len(), 0, "exact is not contains");
        let f = ItemFilter { trustee: Some("carol@contoso.com".into()), exact: true, ..ItemFilter::default() };
        assert_eq!(w.store.review_items(c.id, &f).await.unwrap().len(), 1);
        let f = ItemFilter { mailbox: Some("%".into()), ..ItemFilter::default() };
        assert_eq!(w.store.review_items(c.id, &f).await.unwrap().len(), 0, "LIKE wildcards are literal");
        let f = ItemFilter { limit: 2, ..ItemFilter::default() };
        let p1 = w.store.review_items(c.id, &f).await.unwrap();
        let f = ItemFilter { limit: 2, after: p1[1].no, ..ItemFilter::default() };
        let p2 = w.store.review_items(c.id, &f).await.unwrap();
        assert_eq!((p1.len(), p2.len()), (2, 1));
        // Another company's manager does not see it; a technician cannot start one.
        assert!(reviews::get(w.ctx(), &w.mgr_b, c.id).await.is_err());
        let e = reviews::create(w.ctx(), &w.tech_a, input(&["contoso"], vec![])).await.unwrap_err();
        assert_eq!(e.code(), "role_too_low");
        let e = reviews::create(w.ctx(), &w.mgr_a, input(&["contoso", "fabrikam"], vec![])).await.unwrap_err();
        assert_eq!(e.code(), "not_entitled");
    }

    async fn decisions_close_into_one_request_per_company_exactly_once(db: Db) {
        let w = world_with_inventory(db).await;
        let c = reviews::create(w.ctx(), &w.admin, input(&["contoso", "fabrikam"], vec![])).await.unwrap();
        let n = reviews::decide(w.ctx(), Reviewer::User(&w.tech_a), c.id, &cid("contoso"),
            Selection::Mailbox("sales@contoso.com".into()), Verdict::Keep, Some("needed")).await.unwrap();
        assert_eq!(n, 2);
        let n = reviews::decide(w.ctx(), Reviewer::User(&w.tech_a), c.id, &cid("contoso"),
            Selection::Trustee("carol@contoso.com".into()), Verdict::Remove, None).await.unwrap();
        assert_eq!(n, 1);
        // A technician of the other company cannot decide contoso's items.
        let e = reviews::decide(w.ctx(), Reviewer::User(&w.tech_b), c.id, &cid("contoso"),
            Selection::Items(vec![1]), Verdict::Keep, None).await.unwrap_err();
        assert_eq!(e.code(), "not_entitled");
        let e = reviews::close(w.ctx(), &w.tech_a, c.id, &new_request_id).await.unwrap_err();
        assert_eq!(e.code(), "role_too_low");
        // Two closes at once: one set of requests.
        let (a, b) = tokio::join!(
            reviews::close(w.ctx(), &w.admin, c.id, &new_request_id),
            reviews::close(w.ctx(), &w.admin, c.id, &new_request_id),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.state, CampaignState::Closed);
        assert_eq!(b.state, CampaignState::Closed);
        let closed = w.store.review_get(c.id).await.unwrap().unwrap();
        let contoso = closed.companies.iter().find(|p| p.company == cid("contoso")).unwrap();
        let fabrikam = closed.companies.iter().find(|p| p.company == cid("fabrikam")).unwrap();
        assert!(fabrikam.request.is_none(), "no removals, no request");
        let req = w.store.get_request(contoso.request.unwrap()).await.unwrap().unwrap();
        assert_eq!(req.state, exogate_core::request::RequestState::Pending);
        assert_eq!(req.actions.len(), 2, "carol's Send As and the orphan");
        let all = w.store.list_requests(&Default::default()).await.unwrap();
        assert_eq!(all.len(), 1, "closing twice made one request");
        // Closing again changes nothing; deciding after close is refused.
        reviews::close(w.ctx(), &w.admin, c.id, &new_request_id).await.unwrap();
        assert_eq!(w.store.list_requests(&Default::default()).await.unwrap().len(), 1);
        let e = reviews::decide(w.ctx(), Reviewer::User(&w.admin), c.id, &cid("contoso"),
            Selection::Items(vec![1]), Verdict::Keep, None).await.unwrap_err();
        assert_eq!(e.code(), "review_closed");
        // The report lists the undecided item as undecided, never kept.
        let r = reviews::report(w.ctx(), &w.mgr_a, c.id, &cid("contoso"), "json").await.unwrap();
        assert_eq!(r.count(Outcome::Kept), 1, "sales: bob kept; carol changed to remove");
        assert_eq!(r.count(Outcome::RemovalRequested), 2);
        assert_eq!(r.count(Outcome::Undecided), 1, "ceo@ was not decided");
        let kinds: Vec<String> = w.store.list_audit(0, 1000).await.unwrap().into_iter().map(|e| e.event.kind).collect();
        for k in ["review.created", "review.decided", "review.closed", "review.report_created"] {
            assert!(kinds.iter().any(|x| x == k), "{k} audited");
        }
        assert_eq!(kinds.iter().filter(|k| *k == "review.closed").count(), 1);
    }

    async fn links_by_hash_revocation_and_key(db: Db) {
        let w = world_with_inventory(db).await;
        let c = reviews::create(w.ctx(), &w.mgr_a, input(&["contoso"], vec![])).await.unwrap();
        let k1 = w.store.review_link_key("first").await.unwrap();
        let k2 = w.store.review_link_key("second").await.unwrap();
        assert_eq!((k1.as_str(), k2.as_str()), ("first", "first"));
        let key = k1.as_bytes();
        let (link, token) = reviews::issue_link(w.ctx(), &w.mgr_a, key, c.id, &cid("contoso"), "Owner",
            start().plus_secs(3600), "l1".into(), "secret-1").await.unwrap();
        let got = reviews::open_link(w.ctx(), key, c.id, &cid("contoso"), token.expose()).await.unwrap();
        assert_eq!(got, link);
        assert_ne!(link.secret_hash, "secret-1");
        let e = reviews::issue_link(w.ctx(), &w.tech_a, key, c.id, &cid("contoso"), "x",
            start().plus_secs(3600), "l2".into(), "secret-2").await.unwrap_err();
        assert_eq!(e.code(), "role_too_low");
        // Decisions through the link name its label.
        reviews::decide(w.ctx(), Reviewer::Link(&got), c.id, &cid("contoso"), Selection::Items(vec![1]), Verdict::Keep, None).await.unwrap();
        let i = w.store.review_items(c.id, &ItemFilter { items: Some(vec![1]), ..ItemFilter::default() }).await.unwrap();
        assert_eq!(i[0].decision.as_ref().unwrap().by, "link: Owner");
        reviews::revoke_link(w.ctx(), &w.mgr_a, c.id, "l1").await.unwrap();
        assert_eq!(reviews::open_link(w.ctx(), key, c.id, &cid("contoso"), token.expose()).await, Err(LinkRefusal::Revoked));
        w.clock.advance_secs(3600);
        assert_eq!(reviews::open_link(w.ctx(), key, c.id, &cid("contoso"), token.expose()).await, Err(LinkRefusal::Expired));
    }

    async fn a_scheduled_campaign_repeats_once(db: Db) {
        let w = world_with_inventory(db).await;
        let mut i = input(&["contoso"], vec![]);
        i.schedule = Some(Schedule::Monthly);
        let c = reviews::create(w.ctx(), &w.mgr_a, i).await.unwrap();
        assert!(reviews::start_due_repeats(w.ctx(), &new_id).await.unwrap().is_empty());
        w.clock.advance_secs(30 * 86400);
        let (a, b) = tokio::join!(
            reviews::start_due_repeats(w.ctx(), &new_id),
            reviews::start_due_repeats(w.ctx(), &new_id),
        );
        let started = a.unwrap().len() + b.unwrap().len();
        assert_eq!(started, 1, "two replicas start the next campaign once");
        let list = w.store.review_list(10).await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].previous, Some(c.id));
        assert!(reviews::start_due_repeats(w.ctx(), &new_id).await.unwrap().is_empty());
    }
}

// (reviews) Reminders.
both! {
    async fn reviewers_are_reminded_once_before_the_due_date_and_hear_of_the_start(db: Db) {
        use exogate_core::notifications::Target;
        let w = world_with_inventory(db).await;
        for (a, email) in [(&w.tech_a, "tech-a@msp.example"), (&w.mgr_b, "mgr-b@msp.example"), (&w.mgr_a, "mgr-a@msp.example"), (&w.viewer, "viewer@msp.example")] {
            exogate_core::ops::notify::set_user_settings(w.ctx(), &w.admin, a.user.id, Some(email), exogate_core::notifications::Topics::all()).await.unwrap();
        }
        let mut i = input(&["contoso"], vec![]);
        i.reviewers = vec![(cid("contoso"), vec![w.tech_a.user.id])];
        let c = reviews::create(w.ctx(), &w.mgr_a, i).await.unwrap();
        let heard = |event: &'static str| {
            let w = &w;
            async move {
                let mut v: Vec<String> = w.store.outbox_list(None, 100).await.unwrap().into_iter()
                    .filter(|d| d.message.event == event)
                    .filter_map(|d| match d.target { Target::Email { address, .. } => Some(address), Target::Webhook { .. } => None })
                    .collect();
                v.sort();
                v
            }
        };
        assert_eq!(heard("review.created").await, ["mgr-a@msp.example", "tech-a@msp.example"],
            "its reviewer and contoso's managers; not fabrikam's manager, not a viewer");
        assert_eq!(reviews::send_reminders(w.ctx()).await.unwrap(), 0, "not due within two days");
        w.clock.advance_secs(6 * 86400);
        let (a, b) = tokio::join!(reviews::send_reminders(w.ctx()), reviews::send_reminders(w.ctx()));
        assert_eq!(a.unwrap() + b.unwrap(), 1, "reminded once across replicas");
        assert_eq!(reviews::send_reminders(w.ctx()).await.unwrap(), 0);
        assert_eq!(heard("review.reminded").await, ["mgr-a@msp.example", "tech-a@msp.example"]);
        let m = w.store.outbox_list(None, 100).await.unwrap().into_iter().find(|d| d.message.event == "review.reminded").unwrap().message;
        assert_eq!(m.link_path, Some(format!("/reviews/{}", c.id)));
        assert!(m.text.contains("still undecided"), "{}", m.text);
        // A viewer decides only when named a reviewer of the company.
        let e = reviews::decide(w.ctx(), Reviewer::User(&w.viewer), c.id, &cid("contoso"), Selection::Items(vec![1]), Verdict::Keep, None).await.unwrap_err();
        assert_eq!(e.code(), "role_too_low");
        let mut j = input(&["contoso"], vec![]);
        j.reviewers = vec![(cid("contoso"), vec![w.viewer.user.id])];
        let named = reviews::create(w.ctx(), &w.mgr_a, j).await.unwrap();
        assert_eq!(reviews::decide(w.ctx(), Reviewer::User(&w.viewer), named.id, &cid("contoso"), Selection::Items(vec![1]), Verdict::Keep, None).await.unwrap(), 1);
    }
}
