//! Fail-closed: when the audit append fails, the state change it belongs to rolls back and
//! Microsoft is not called.

use exogate_core::ops;
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;

use crate::support::*;

async fn break_audit(w: &World) {
    match &w.db {
        Db::Sqlite(_) => {
            w.exec("CREATE TRIGGER audit_down BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit down'); END".into()).await;
        }
        Db::Postgres(_) => {
            w.exec("CREATE FUNCTION audit_down() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$ LANGUAGE plpgsql".into()).await;
            w.exec("CREATE TRIGGER audit_down BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_down()".into()).await;
        }
    }
}

async fn repair_audit(w: &World) {
    w.exec("DROP TRIGGER audit_down ON audit_log".replace(
        " ON audit_log",
        if matches!(w.db, Db::Postgres(_)) {
            " ON audit_log"
        } else {
            ""
        },
    ))
    .await;
}

both! {
    async fn audit_failure_rolls_back_every_transition(db: Db) {
        let w = World::new(db).await;
        let pending = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "sales", "bob").await.unwrap();
        let approved = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "sales", "carol").await.unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_a, approved.id, None).await.unwrap();
        let head = w.store.audit_head().await.unwrap();
        break_audit(&w).await;
        let mut refused = 0;
        // Decision, cancellation, request creation, claim, status check: all refused, nothing changed.
        refused += u32::from(ops::requests::approve(w.ctx(), &w.mgr_a, pending.id, None).await.is_err());
        refused += u32::from(ops::requests::reject(w.ctx(), &w.mgr_a, pending.id, None).await.is_err());
        refused += u32::from(ops::requests::cancel(w.ctx(), &w.tech_a, pending.id).await.is_err());
        refused += u32::from(w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "support", "bob").await.is_err());
        refused += u32::from(ops::execute::run_once(w.ctx(), "w").await.is_err());
        refused += u32::from(ops::companies::check_status(w.ctx(), None, &cid("contoso")).await.is_err());
        refused += u32::from(ops::companies::disconnect(w.ctx(), &w.admin, &cid("contoso")).await.is_err());
        assert_eq!(refused, 7);
        assert_eq!(w.store.get_request(pending.id).await.unwrap().unwrap().state, RequestState::Pending);
        let a = w.store.get_request(approved.id).await.unwrap().unwrap();
        assert_eq!((a.state, a.attempt), (RequestState::Approved, 0));
        assert!(w.ms.applied().is_empty(), "Microsoft called while the audit log was down");
        assert!(w.store.get_company(&cid("contoso")).await.unwrap().unwrap().connection.is_some());
        assert_eq!(w.store.audit_head().await.unwrap(), head);
        assert_eq!(w.store.list_requests(&Default::default()).await.unwrap().len(), 2);
        println!("figure: transitions tried while audit failing 7, committed 0, Microsoft calls 0");
        // Recovery resumes from persisted state.
        repair_audit(&w).await;
        let done = ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
        assert_eq!(done.state, RequestState::Succeeded);
        assert_eq!(w.ms.applied().len(), 1);
    }

    async fn consent_state_flow(db: Db) {
        use exogate_core::ops::consent::{CallbackAnswer, Completion, ConsentRequest, Refusal, complete};
        use exogate_core::ConsentPurpose;
        let w = World::new(db).await;
        let c = cid("contoso");
        let t1 = exogate_core::TenantId::parse(T1).unwrap();
        let t2 = exogate_core::TenantId::parse(T2).unwrap();
        let req = |purpose, session_id, state, ttl_secs| ConsentRequest { purpose, tenant: None, session_id, state, ttl_secs };
        let granted = |tenant| CallbackAnswer::Granted { tenant };
        let refused = |done: &exogate_core::ops::consent::Completed| match &done.completion {
            Completion::Refused { reason, .. } => Some(*reason),
            _ => None,
        };
        let secret = "c".repeat(43);
        let st = ops::consent::begin(w.ctx(), &w.tech_a, &c, &req(ConsentPurpose::Authorize, Some("sess-a"), &secret, 3600)).await.unwrap();
        assert_eq!(st.expires_at, w.clock.now().plus_secs(600), "capped at ten minutes");
        assert_eq!(st.expected_tenant, Some(t1), "authorize names the company's tenant");
        assert_ne!(st.state_hash, secret);
        // Another session cannot use it, and that attempt does not burn it.
        let done = complete(w.ctx(), Some("sess-b"), &secret, granted(t1)).await.unwrap();
        assert_eq!(refused(&done), Some(Refusal::StateNotAccepted));
        let done = complete(w.ctx(), Some("sess-a"), &secret, granted(t1)).await.unwrap();
        assert!(matches!(done.completion, Completion::Authorized { .. }), "{done:?}");
        assert_eq!(refused(&complete(w.ctx(), Some("sess-a"), &secret, granted(t1)).await.unwrap()), Some(Refusal::StateNotAccepted), "replay");
        // Expired at 10:00.
        let s3 = "e".repeat(43);
        ops::consent::begin(w.ctx(), &w.tech_a, &c, &req(ConsentPurpose::Authorize, None, &s3, 600)).await.unwrap();
        w.clock.advance_secs(600);
        assert_eq!(refused(&complete(w.ctx(), None, &s3, granted(t1)).await.unwrap()), Some(Refusal::StateNotAccepted));
        // Consent in another tenant: refused, audited, nothing else changes.
        let s4 = "f".repeat(43);
        ops::consent::begin(w.ctx(), &w.tech_a, &c, &req(ConsentPurpose::Connect, None, &s4, 600)).await.unwrap();
        let before = w.store.get_company(&c).await.unwrap().unwrap();
        let done = complete(w.ctx(), None, &s4, granted(t2)).await.unwrap();
        assert_eq!(refused(&done), Some(Refusal::WrongTenant));
        assert_eq!(w.store.get_company(&c).await.unwrap().unwrap(), before);
        let last = w.store.recent_audit(None, None, 1).await.unwrap().remove(0).event;
        assert_eq!((last.kind.as_str(), last.company.as_deref()), ("consent.refused", Some("contoso")));
        assert!(!last.detail.contains(&s4), "{}", last.detail);
        // Not entitled: no state is issued; a move needs a manager and a typed tenant.
        let (g, h) = ("g".repeat(40), "h".repeat(40));
        assert_eq!(ops::consent::begin(w.ctx(), &w.tech_b, &c, &req(ConsentPurpose::Connect, None, &g, 600)).await.unwrap_err().code(), "not_entitled");
        assert_eq!(ops::consent::begin(w.ctx(), &w.tech_a, &c, &req(ConsentPurpose::Move, None, &g, 600)).await.unwrap_err().code(), "role_too_low");
        assert_eq!(ops::consent::begin(w.ctx(), &w.mgr_a, &c, &req(ConsentPurpose::Move, None, &g, 600)).await.unwrap_err().code(), "invalid_input");
        // A move to a tenant another company holds is refused up front.
        let to_t2 = ConsentRequest { tenant: Some(t2), ..req(ConsentPurpose::Move, None, &h, 600) };
        assert_eq!(ops::consent::begin(w.ctx(), &w.mgr_a, &c, &to_t2).await.unwrap_err().code(), "tenant_already_linked");
    }
}
