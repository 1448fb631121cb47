//! Tenant isolation: every operation, called by users (and an agent) entitled only to contoso
//! with fabrikam's ids, is refused, and Microsoft is never called for fabrikam.

use exogate_core::ops::{self, companies::ConnectInput, requests::WriteInput};
use exogate_core::request::RequestFilter;
use exogate_core::tools::ToolName;
use exogate_core::*;

use crate::support::*;

both! {
    async fn foreign_company_ids_are_refused_everywhere(db: Db) {
        let w = World::new(db).await;
        let b = cid("fabrikam");
        let b_req = w.write(&w.tech_b, "fabrikam", ToolName::GrantSendAs, "sales", "bob").await.unwrap();
        let b_done = w.write(&w.tech_b, "fabrikam", ToolName::GrantSendAs, "support", "bob").await.unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_b, b_done.id, None).await.unwrap();
        w.drain("w").await;
        let secret = "a".repeat(40);
        ops::users::create_token(w.ctx(), ops::users::Admin::User(&w.mgr_a), ApiTokenId::from_uuid(uuid::Uuid::now_v7()), &w.mgr_a.user.name, "agent", &secret).await.unwrap();
        let agent = ops::users::authenticate_token(w.ctx(), &secret, Some("agent")).await.unwrap();
        let before_calls = w.ms.calls();
        let before_head = w.store.audit_head().await.unwrap();
        let tenant_b = TenantId::parse(T2).unwrap();
        let input = ConnectInput { tenant_id: tenant_b, display_name: "x".into(), default_domain: "x.com".into() };
        let mbx = IdentityInput::parse("sales").unwrap();
        let mut attempts = 0;
        let mut successes = Vec::new();
        for actor in [&w.tech_a, &w.mgr_a, &agent] {
            let ctx = w.ctx();
            let results: Vec<(&str, Result<(), CoreError>)> = vec![
                ("get_company", ops::companies::get_company(ctx, actor, &b).await.map(|_| ())),
                ("check_status", ops::companies::check_status(ctx, Some(actor), &b).await.map(|_| ())),
                ("connect", ops::companies::connect(ctx, actor, &b, &input).await.map(|_| ())),
                ("reconnect", ops::companies::reconnect(ctx, actor, &b, &input).await.map(|_| ())),
                ("disconnect", ops::companies::disconnect(ctx, actor, &b).await.map(|_| ())),
                ("rename", ops::companies::rename(ctx, actor, &b, "x").await.map(|_| ())),
                ("set_separate_approver", ops::companies::set_separate_approver(ctx, actor, &b, true).await.map(|_| ())),
                ("view_mailbox_permissions", ops::reads::view_mailbox_permissions(ctx, actor, &b, &mbx).await.map(|_| ())),
                ("view_send_as_permissions", ops::reads::view_send_as_permissions(ctx, actor, &b, &mbx).await.map(|_| ())),
                ("view_mailbox_details", ops::reads::view_mailbox_details(ctx, actor, &b, &mbx).await.map(|_| ())),
                ("request_write", ops::requests::request_write(ctx, actor, WriteInput { id: new_request_id(), company: b.clone(), tool: ToolName::GrantFullAccess, mailbox: mbx.clone(), trustee: IdentityInput::parse("bob").unwrap(), automapping: None }).await.map(|_| ())),
                ("get_request", ops::requests::get_request(ctx, actor, b_req.id).await.map(|_| ())),
                ("approve", ops::requests::approve(ctx, actor, b_req.id, None).await.map(|_| ())),
                ("reject", ops::requests::reject(ctx, actor, b_req.id, None).await.map(|_| ())),
                ("cancel", ops::requests::cancel(ctx, actor, b_req.id).await.map(|_| ())),
                ("revert", ops::requests::revert(ctx, actor, b_done.id, new_request_id()).await.map(|_| ())),
                ("audit_company", ops::audit::list(ctx, actor, Some(&b), None, 10).await.map(|_| ())),
                ("audit_request", ops::audit::list(ctx, actor, None, Some(b_req.id), 10).await.map(|_| ())),
                ("audit_all", ops::audit::list(ctx, actor, None, None, 10).await.map(|_| ())),
            ];
            for (name, r) in results {
                attempts += 1;
                match r {
                    Ok(()) => successes.push(format!("{name} as {}", actor.user.name)),
                    Err(e) => assert!(
                        matches!(e.code(), "not_entitled" | "decision_via_mcp"),
                        "{name} as {}: {} ({e})", actor.user.name, e.code()
                    ),
                }
            }
            let listed = ops::requests::list_requests(ctx, actor, RequestFilter { companies: Some(vec![b.clone()]), ..Default::default() }).await.unwrap();
            let listed_all = ops::requests::list_requests(ctx, actor, RequestFilter::default()).await.unwrap();
            let companies = ops::companies::list_companies(ctx, actor).await.unwrap();
            attempts += 3;
            assert!(listed.is_empty());
            assert!(listed_all.iter().all(|r| r.company.as_str() == "contoso"));
            assert!(companies.iter().all(|c| c.id.as_str() == "contoso"));
        }
        println!("figure: cross-tenant attempts {attempts}, successes {}", successes.len());
        assert!(successes.is_empty(), "{successes:?}");
        assert_eq!(w.ms.calls(), before_calls, "Microsoft was called for a foreign company");
        assert_eq!(w.store.audit_head().await.unwrap(), before_head, "a refused call wrote to the audit log");
        let still = w.store.get_request(b_req.id).await.unwrap().unwrap();
        assert_eq!(still.state, exogate_core::request::RequestState::Pending);
    }
}
