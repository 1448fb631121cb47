//! (cli-requests) Request ids by prefix: the store finds the ids starting with a prefix, in the
//! database and only among the companies asked for; the core's `resolve_id` turns a unique
//! prefix into its request, and refuses a short, malformed, ambiguous or foreign one. A
//! request's ticket reference and several trustees in one request round-trip on both backends.

use exogate_core::ops::{self, requests::WriteInput};
use exogate_core::tools::ToolName;
use exogate_core::*;

use crate::support::*;

async fn ask(w: &World, actor: &Actor, id: &str, company: &str, mailbox: &str, trustee: &str) {
    ops::requests::request_write(
        w.ctx(),
        actor,
        WriteInput {
            id: RequestId::parse(id).unwrap(),
            company: cid(company),
            tool: ToolName::GrantSendAs,
            mailbox: IdentityInput::parse(mailbox).unwrap(),
            trustee: IdentityInput::parse(trustee).unwrap(),
            automapping: None,
        },
    )
    .await
    .unwrap();
}

const A1: &str = "0190aaaa-1111-7000-8000-000000000001";
const A2: &str = "0190aaaa-2222-7000-8000-000000000002";
const B1: &str = "0190bbbb-1111-7000-8000-000000000003";

both! {
    async fn request_ids_resolve_by_unique_prefix_within_the_callers_companies(db: Db) {
        let w = World::new(db).await;
        ask(&w, &w.tech_a, A1, "contoso", "sales", "bob").await;
        ask(&w, &w.tech_a, A2, "contoso", "support", "bob").await;
        ask(&w, &w.tech_b, B1, "fabrikam", "sales", "bob").await;
        let id = |s: &str| RequestId::parse(s).unwrap();

        // The store: by prefix, in id order, bounded, filtered by company.
        let s = &w.store;
        assert_eq!(s.request_ids_by_prefix("0190aaaa", None, 10).await.unwrap(), vec![id(A1), id(A2)]);
        assert_eq!(s.request_ids_by_prefix("0190aaaa", None, 1).await.unwrap(), vec![id(A1)]);
        assert_eq!(s.request_ids_by_prefix("0190aaaa-2", None, 10).await.unwrap(), vec![id(A2)]);
        assert_eq!(s.request_ids_by_prefix("0190", Some(&[cid("fabrikam")]), 10).await.unwrap(), vec![id(B1)]);
        assert_eq!(s.request_ids_by_prefix("0190", Some(&[]), 10).await.unwrap(), vec![]);
        // LIKE's wildcards match only themselves.
        assert_eq!(s.request_ids_by_prefix("0190%", None, 10).await.unwrap(), vec![]);
        assert_eq!(s.request_ids_by_prefix("0190aaa_", None, 10).await.unwrap(), vec![]);

        // The core: a unique prefix, a whole id, an ambiguous, short, malformed or foreign one.
        let ctx = w.ctx();
        assert_eq!(ops::requests::resolve_id(ctx, &w.tech_a, "0190aaaa-2").await.unwrap(), id(A2));
        assert_eq!(ops::requests::resolve_id(ctx, &w.tech_a, "0190AAAA-1").await.unwrap(), id(A1));
        assert_eq!(ops::requests::resolve_id(ctx, &w.tech_a, A1).await.unwrap(), id(A1));
        let code = |r: Result<RequestId, CoreError>| r.unwrap_err().code();
        assert_eq!(code(ops::requests::resolve_id(ctx, &w.tech_a, "0190aaaa").await), "ambiguous_request");
        assert_eq!(code(ops::requests::resolve_id(ctx, &w.tech_a, "0190aaa").await), "invalid_input");
        assert_eq!(code(ops::requests::resolve_id(ctx, &w.tech_a, "0190aaaa%").await), "invalid_input");
        // fabrikam's request does not exist for contoso's technician, while the admin finds it
        // and sees the ambiguity across both companies.
        assert_eq!(code(ops::requests::resolve_id(ctx, &w.tech_a, "0190bbbb").await), "request_not_found");
        assert_eq!(ops::requests::resolve_id(ctx, &w.tech_b, "0190bbbb").await.unwrap(), id(B1));
        assert_eq!(ops::requests::resolve_id(ctx, &w.tech_b, "0190").await.unwrap_err().code(), "invalid_input");
        assert_eq!(code(ops::requests::resolve_id(ctx, &w.tech_b, "0190aaaa").await), "request_not_found");
        assert_eq!(ops::requests::resolve_id(ctx, &w.admin, "0190aaaa-1").await.unwrap(), id(A1));
        assert_eq!(ops::requests::resolve_id(ctx, &w.admin, "0190bbbb").await.unwrap(), id(B1));
    }
}

both! {
    async fn a_ticket_and_several_trustees_round_trip(db: Db) {
        let w = World::new(db).await;
        let r = ops::requests::request_write_many(
            w.ctx(),
            &w.tech_a,
            ops::requests::WriteManyInput {
                id: new_request_id(),
                company: cid("contoso"),
                tool: ToolName::GrantSendAs,
                mailbox: IdentityInput::parse("support").unwrap(),
                trustees: vec![IdentityInput::parse("alice").unwrap(), IdentityInput::parse("carol").unwrap()],
                automapping: None,
                ticket: Some("  #4711 ".to_owned()),
                end: Default::default(),
            },
        )
        .await
        .unwrap();
        assert_eq!(r.ticket.as_deref(), Some("#4711"));
        assert_eq!(r.actions.len(), 2);
        let stored = w.store.get_request(r.id).await.unwrap().unwrap();
        assert_eq!(stored, r);
        let listed = w.store.list_requests(&exogate_core::request::RequestFilter::default()).await.unwrap();
        assert_eq!(listed.iter().find(|x| x.id == r.id), Some(&r));
        // Without a ticket it stays none; a hostile one is refused before anything is stored.
        let plain = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "sales", "bob").await.unwrap();
        assert_eq!(w.store.get_request(plain.id).await.unwrap().unwrap().ticket, None);
        let bad = ops::requests::request_write_many(
            w.ctx(),
            &w.tech_a,
            ops::requests::WriteManyInput {
                id: new_request_id(),
                company: cid("contoso"),
                tool: ToolName::GrantSendAs,
                mailbox: IdentityInput::parse("support").unwrap(),
                trustees: vec![IdentityInput::parse("bob").unwrap()],
                automapping: None,
                ticket: Some("<b>1</b>".to_owned()),
                end: Default::default(),
            },
        )
        .await;
        assert_eq!(bad.unwrap_err().code(), "invalid_input");
        // The same trustee twice is refused too.
        let twice = ops::requests::request_write_many(
            w.ctx(),
            &w.tech_a,
            ops::requests::WriteManyInput {
                id: new_request_id(),
                company: cid("contoso"),
                tool: ToolName::GrantSendAs,
                mailbox: IdentityInput::parse("sales").unwrap(),
                trustees: vec![IdentityInput::parse("carol").unwrap(), IdentityInput::parse("carol").unwrap()],
                automapping: None,
                ticket: None,
                end: Default::default(),
            },
        )
        .await;
        assert_eq!(twice.unwrap_err().code(), "invalid_input");
    }
}
