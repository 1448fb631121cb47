//! Every repository function of the Store, on both backends.

use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::ports::{Store, StoreError};
use exogate_core::request::{RequestFilter, RequestState, Transition};
use exogate_core::tools::ToolName;
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

fn ev(kind: AuditKind) -> NewAuditEvent {
    NewAuditEvent::system(start(), kind)
}

#[test]
fn migrations_have_identical_versions_on_both_backends() {
    let (sqlite, pg) = exogate_store::Db::migration_versions();
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, pg);
    let names = |dir: &str| {
        let mut v: Vec<String> =
            std::fs::read_dir(format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

#[tokio::test]
async fn bad_urls_are_refused_clearly() {
    let e = exogate_store::Db::connect("mysql://root:hunter2@x/db")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unsupported database URL"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

both! {
    async fn companies(db: Db) {
        let s: &dyn Store = &db;
        let c = Company { id: cid("contoso"), name: "Contoso".into(), connection: None, exchange_status: None, separate_approver: false, created_at: start() };
        s.insert_company(&c, ev(AuditKind::CompanyAdded)).await.unwrap();
        assert!(matches!(s.insert_company(&c, ev(AuditKind::CompanyAdded)).await, Err(StoreError::Duplicate)));
        assert_eq!(s.get_company(&c.id).await.unwrap(), Some(c.clone()));
        assert_eq!(s.get_company(&cid("nope")).await.unwrap(), None);
        let conn = Connection { tenant_id: TenantId::parse(T1).unwrap(), display_name: "Contoso Ltd".into(), default_domain: "contoso.onmicrosoft.com".into(), connected_at: start().plus_secs(5) };
        s.set_connection(&c.id, Some(&conn), ev(AuditKind::Connected)).await.unwrap();
        let status = StatusRecord { state: ExchangeAdminState::RoleMissing, checked_at: start().plus_secs(6), last_good_at: Some(start().plus_secs(6)), last_good_state: Some(ExchangeAdminState::RoleMissing), detail: "wids empty".into() };
        assert!(s.set_status(&c.id, conn.tenant_id, &status, ev(AuditKind::StatusChecked)).await.unwrap());
        // A status for another tenant (the connection changed meanwhile) is not stored.
        assert!(!s.set_status(&c.id, TenantId::parse(T2).unwrap(), &status, ev(AuditKind::StatusChecked)).await.unwrap());
        let got = s.get_company(&c.id).await.unwrap().unwrap();
        assert_eq!(got.connection, Some(conn));
        assert_eq!(got.exchange_status, Some(status));
        s.rename_company(&c.id, "Contoso Group", ev(AuditKind::CompanySettingsChanged)).await.unwrap();
        // The separate-approver rule is compare-and-set: written only from the stated old value.
        assert!(!s.set_separate_approver(&c.id, true, false, ev(AuditKind::CompanySettingsChanged)).await.unwrap());
        assert!(s.set_separate_approver(&c.id, false, true, ev(AuditKind::CompanySettingsChanged)).await.unwrap());
        assert!(!s.set_separate_approver(&c.id, false, true, ev(AuditKind::CompanySettingsChanged)).await.unwrap());
        // Disconnect drops connection and status.
        s.set_connection(&c.id, None, ev(AuditKind::Disconnected)).await.unwrap();
        let got = s.get_company(&c.id).await.unwrap().unwrap();
        assert_eq!((got.connection, got.exchange_status, got.name.as_str(), got.separate_approver), (None, None, "Contoso Group", true));
        assert!(matches!(s.set_connection(&cid("nope"), None, ev(AuditKind::Disconnected)).await, Err(StoreError::NotFound { .. })));
        assert!(matches!(s.rename_company(&cid("nope"), "x", ev(AuditKind::CompanySettingsChanged)).await, Err(StoreError::NotFound { .. })));
        assert!(matches!(s.set_separate_approver(&cid("nope"), false, true, ev(AuditKind::CompanySettingsChanged)).await, Err(StoreError::NotFound { .. })));
        let mut b = c.clone();
        b.id = cid("abc");
        s.insert_company(&b, ev(AuditKind::CompanyAdded)).await.unwrap();
        let ids: Vec<_> = s.list_companies().await.unwrap().into_iter().map(|c| c.id.to_string()).collect();
        assert_eq!(ids, ["abc", "contoso"]);
        // Seven successful changes, seven audit events (a refused compare-and-set writes none).
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, 7);
    }

    async fn users_and_tokens(db: Db) {
        let s: &dyn Store = &db;
        let u = User { id: UserId::from_uuid(Uuid::now_v7()), name: UserName::parse("alice").unwrap(), role: Role::Technician, entitlement: Entitlement::parse("contoso,fabrikam").unwrap(), disabled: false, password_hash: Some(PasswordHash::new("$argon2id$x".into())), created_at: start() };
        s.insert_user(&u, ev(AuditKind::UserAdded)).await.unwrap();
        let mut dup = u.clone();
        dup.id = UserId::from_uuid(Uuid::now_v7());
        assert!(matches!(s.insert_user(&dup, ev(AuditKind::UserAdded)).await, Err(StoreError::Duplicate)));
        assert_eq!(s.get_user(u.id).await.unwrap(), Some(u.clone()));
        assert_eq!(s.get_user_by_name(&u.name).await.unwrap(), Some(u.clone()));
        let mut changed = u.clone();
        changed.role = Role::Manager;
        changed.disabled = true;
        changed.entitlement = Entitlement::All;
        changed.password_hash = None;
        s.update_user(&changed, ev(AuditKind::UserChanged)).await.unwrap();
        assert_eq!(s.list_users().await.unwrap(), vec![changed.clone()]);
        let t = ApiToken { id: ApiTokenId::from_uuid(Uuid::now_v7()), owner: u.id, name: "claude".into(), secret_hash: hash_token_secret("x".repeat(40).as_str()), created_at: start(), last_used_at: None, revoked_at: None };
        s.insert_token(&t, ev(AuditKind::TokenCreated)).await.unwrap();
        assert_eq!(s.get_token(t.id).await.unwrap(), Some(t.clone()));
        assert_eq!(s.get_token_by_hash(&t.secret_hash).await.unwrap(), Some(t.clone()));
        assert_eq!(s.list_tokens(Some(u.id)).await.unwrap().len(), 1);
        assert_eq!(s.list_tokens(Some(UserId::from_uuid(Uuid::nil()))).await.unwrap().len(), 0);
        assert_eq!(s.list_tokens(None).await.unwrap().len(), 1);
        s.touch_token(t.id, start().plus_secs(9)).await.unwrap();
        assert!(s.revoke_token(t.id, start().plus_secs(10), ev(AuditKind::TokenRevoked)).await.unwrap());
        assert!(!s.revoke_token(t.id, start().plus_secs(11), ev(AuditKind::TokenRevoked)).await.unwrap());
        let got = s.get_token(t.id).await.unwrap().unwrap();
        assert_eq!((got.last_used_at, got.revoked_at), (Some(start().plus_secs(9)), Some(start().plus_secs(10))));
        assert!(matches!(s.revoke_token(ApiTokenId::from_uuid(Uuid::nil()), start(), ev(AuditKind::TokenRevoked)).await, Err(StoreError::NotFound { .. })));
        // user added, user changed, token created, token revoked (once).
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, 4);
    }

    async fn requests(db: Db) {
        let w = World::new(db).await;
        let s = w.store.as_ref();
        let r1 = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales", "bob").await.unwrap();
        w.clock.advance_secs(1);
        let r2 = w.write(&w.tech_b, "fabrikam", ToolName::GrantSendAs, "sales@fabrikam.onmicrosoft.com", "carol").await.unwrap();
        assert_eq!(s.get_request(r1.id).await.unwrap(), Some(r1.clone()));
        assert_eq!(s.get_request(new_request_id()).await.unwrap(), None);
        let all = s.list_requests(&RequestFilter::default()).await.unwrap();
        assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![r2.id, r1.id], "newest first");
        let only_a = s.list_requests(&RequestFilter { companies: Some(vec![cid("contoso")]), ..Default::default() }).await.unwrap();
        assert_eq!(only_a, vec![r1.clone()]);
        let none = s.list_requests(&RequestFilter { companies: Some(vec![]), ..Default::default() }).await.unwrap();
        assert!(none.is_empty());
        let by_state = s.list_requests(&RequestFilter { states: Some(vec![RequestState::Pending]), requester: Some(w.tech_b.user.id), limit: Some(5), ..Default::default() }).await.unwrap();
        assert_eq!(by_state, vec![r2.clone()]);
        // CAS: a transition from the wrong state does nothing and appends nothing.
        let head = s.audit_head().await.unwrap();
        let mut next = r1.clone();
        next.state = RequestState::Executing;
        let t = Transition { next, expected_state: RequestState::Approved, expected_attempt: None };
        assert!(!s.transition(&t, ev(AuditKind::ExecutionClaimed)).await.unwrap());
        assert_eq!(s.audit_head().await.unwrap(), head);
        // A transition the state machine forbids is refused before SQL.
        let mut bad = r1.clone();
        bad.state = RequestState::Succeeded;
        assert!(s.transition(&Transition { next: bad, expected_state: RequestState::Pending, expected_attempt: None }, ev(AuditKind::ExecutionFinished)).await.is_err());
        // Expiry and claims.
        assert!(s.due_for_expiry(w.clock.now(), 10).await.unwrap().is_empty());
        let later = r1.expires_at;
        assert_eq!(s.due_for_expiry(later, 10).await.unwrap(), vec![r1.id]);
        assert_eq!(s.claim_next("w1", w.clock.now(), w.clock.now().plus_secs(60)).await.unwrap(), None);
        exogate_core::ops::requests::approve(w.ctx(), &w.mgr_a, r1.id, Some("ok")).await.unwrap();
        let claim = s.claim_next("w1", w.clock.now(), w.clock.now().plus_secs(60)).await.unwrap().unwrap();
        assert_eq!((claim.request.id, claim.attempt, claim.request.state), (r1.id, 1, RequestState::Executing));
        assert_eq!(claim.request.lease.as_ref().map(|l| l.worker.as_str()), Some("w1"));
        // Nothing else is claimable until the lease expires; then it is taken over with attempt 2.
        assert_eq!(s.claim_next("w2", w.clock.now(), w.clock.now().plus_secs(60)).await.unwrap(), None);
        let takeover = s.claim_next("w2", w.clock.now().plus_secs(60), w.clock.now().plus_secs(120)).await.unwrap().unwrap();
        assert_eq!((takeover.attempt, takeover.worker.as_str()), (2, "w2"));
    }

    async fn audit_log(db: Db) {
        let s: &dyn Store = &db;
        assert_eq!(s.audit_head().await.unwrap(), None);
        let c = cid("contoso");
        let r = new_request_id();
        for i in 0..5 {
            let mut e = ev(AuditKind::ReadTool).detail(serde_json::json!({ "i": i }));
            if i % 2 == 0 {
                e = e.company(&c);
            }
            if i == 4 {
                e = e.request(r);
            }
            let stored = s.append_audit(e).await.unwrap();
            assert_eq!(stored.seq, i + 1);
        }
        let page = s.list_audit(0, 3).await.unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(s.list_audit(3, 10).await.unwrap().len(), 2);
        let recent = s.recent_audit(Some(&c), None, 10).await.unwrap();
        assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5, 3, 1]);
        assert_eq!(s.recent_audit(None, Some(r), 10).await.unwrap().len(), 1);
        assert_eq!(s.recent_audit(None, None, 2).await.unwrap().len(), 2);
        let head = s.audit_head().await.unwrap().unwrap();
        assert_eq!(head.0, 5);
        let all = s.list_audit(0, 100).await.unwrap();
        assert!(exogate_core::audit::verify(&all, Some((head.0, head.1.as_str()))).is_ok());
        assert_eq!(all[4].event.detail, r#"{"i":4}"#);
    }

    async fn sessions(db: Db) {
        let s: &dyn Store = &db;
        let rec = SessionRecord { id: "sess-1".into(), data: "{\"user\":\"alice\"}".into(), expires_at: start().plus_secs(100) };
        s.put_session(&rec).await.unwrap();
        assert_eq!(s.get_session("sess-1", start()).await.unwrap(), Some(rec.clone()));
        let updated = SessionRecord { data: "{}".into(), ..rec.clone() };
        s.put_session(&updated).await.unwrap();
        assert_eq!(s.get_session("sess-1", start()).await.unwrap(), Some(updated));
        assert_eq!(s.get_session("sess-1", start().plus_secs(100)).await.unwrap(), None, "expired");
        s.put_session(&SessionRecord { id: "sess-2".into(), data: "{}".into(), expires_at: start().plus_secs(500) }).await.unwrap();
        assert_eq!(s.delete_expired_sessions(start().plus_secs(200)).await.unwrap(), 1);
        s.delete_session("sess-2").await.unwrap();
        assert_eq!(s.get_session("sess-2", start()).await.unwrap(), None);
    }

    async fn consent_states_are_single_use(db: Db) {
        let w = World::new(db).await;
        let s = w.store.clone();
        let mk = |hash: &str, expires: i64| ConsentState {
            state_hash: hash.into(), company: cid("contoso"), user: w.tech_a.user.id, session_id: Some("sess".into()),
            purpose: ConsentPurpose::Authorize, expected_tenant: Some(TenantId::parse(T1).unwrap()),
            created_at: start(), expires_at: start().plus_secs(expires), used_at: None,
        };
        s.insert_consent_state(&mk("h1", 600)).await.unwrap();
        let used = s.consume_consent_state("h1", Some("sess"), start().plus_secs(1)).await.unwrap().unwrap();
        assert_eq!(used.used_at, Some(start().plus_secs(1)));
        assert_eq!(used.expected_tenant, Some(TenantId::parse(T1).unwrap()));
        assert_eq!(s.consume_consent_state("h1", Some("sess"), start().plus_secs(2)).await.unwrap(), None, "replay");
        assert_eq!(s.consume_consent_state("unknown", Some("sess"), start()).await.unwrap(), None);
        // Expiry boundary: usable at 599 s, not at 600 s.
        s.insert_consent_state(&mk("h2", 600)).await.unwrap();
        assert_eq!(s.consume_consent_state("h2", Some("sess"), start().plus_secs(600)).await.unwrap(), None);
        s.insert_consent_state(&mk("h3", 600)).await.unwrap();
        assert!(s.consume_consent_state("h3", Some("sess"), start().plus_secs(599)).await.unwrap().is_some());
        // Two parallel consumes, many times: exactly one wins each time.
        for i in 0..10 {
            let h = format!("p{i}");
            s.insert_consent_state(&mk(&h, 600)).await.unwrap();
            let (a, b) = tokio::join!(
                { let s = s.clone(); let h = h.clone(); tokio::spawn(async move { s.consume_consent_state(&h, Some("sess"), start()).await.unwrap() }) },
                { let s = s.clone(); let h = h.clone(); tokio::spawn(async move { s.consume_consent_state(&h, Some("sess"), start()).await.unwrap() }) },
            );
            let wins = [a.unwrap(), b.unwrap()].iter().filter(|x| x.is_some()).count();
            assert_eq!(wins, 1, "round {i}");
        }
        // Another session (or none) neither gets a session's state nor uses it up.
        s.insert_consent_state(&mk("h4", 600)).await.unwrap();
        assert_eq!(s.consume_consent_state("h4", Some("other"), start()).await.unwrap(), None);
        assert_eq!(s.consume_consent_state("h4", None, start()).await.unwrap(), None);
        assert!(s.consume_consent_state("h4", Some("sess"), start()).await.unwrap().is_some(), "still usable by its session");
        // A state issued without a session (the CLI) is taken from any session, once.
        s.insert_consent_state(&ConsentState { session_id: None, ..mk("h5", 600) }).await.unwrap();
        assert!(s.consume_consent_state("h5", Some("any"), start()).await.unwrap().is_some());
        assert_eq!(s.consume_consent_state("h5", None, start()).await.unwrap(), None, "replay");
    }

    async fn one_company_per_tenant(db: Db) {
        let w = World::new(db).await;
        let s = w.store.clone();
        let fabrikam = s.get_company(&cid("fabrikam")).await.unwrap().unwrap();
        let head = s.audit_head().await.unwrap();
        // Linking fabrikam to contoso's tenant violates the unique index: nothing changes.
        let conn = Connection { tenant_id: TenantId::parse(T1).unwrap(), display_name: "x".into(), default_domain: "x.com".into(), connected_at: start() };
        let ev = NewAuditEvent::new(start(), AuditKind::Connected, Some(&w.admin)).company(&cid("fabrikam"));
        assert!(matches!(s.set_connection(&cid("fabrikam"), Some(&conn), ev.clone()).await, Err(StoreError::Duplicate)));
        assert_eq!(s.get_company(&cid("fabrikam")).await.unwrap().unwrap(), fabrikam);
        assert_eq!(s.audit_head().await.unwrap(), head);
        // Through the core: a clear error, on connect and on a move alike.
        let input = ops::companies::ConnectInput { tenant_id: TenantId::parse(T1).unwrap(), display_name: "x".into(), default_domain: "x.com".into() };
        assert_eq!(ops::companies::move_tenant(w.ctx(), &w.admin, &cid("fabrikam"), &input).await.unwrap_err().code(), "tenant_already_linked");
        ops::companies::disconnect(w.ctx(), &w.admin, &cid("fabrikam")).await.unwrap();
        assert_eq!(ops::companies::connect(w.ctx(), &w.admin, &cid("fabrikam"), &input).await.unwrap_err().code(), "tenant_already_linked");
        // Unlinked companies do not collide (NULL tenants), and a freed tenant can be taken.
        ops::companies::disconnect(w.ctx(), &w.admin, &cid("contoso")).await.unwrap();
        s.set_connection(&cid("fabrikam"), Some(&conn), ev).await.unwrap();
    }
}

/// Runs migration 0006 again on a database whose index was dropped and that holds two
/// companies on one tenant (the state the review's attack left behind).
async fn rerun_0006(w: &World, one: &mut OneConnection) {
    let sql = match &w.db {
        Db::Sqlite(_) => include_str!("../../migrations/sqlite/0006_one_company_per_tenant.sql"),
        Db::Postgres(_) => {
            include_str!("../../migrations/postgres/0006_one_company_per_tenant.sql")
        }
    };
    for statement in sql.split(";\n").filter(|s| {
        s.lines()
            .any(|l| !l.trim().is_empty() && !l.starts_with("--"))
    }) {
        one.exec(statement.to_owned()).await;
    }
}

both! {
    async fn migration_0006_keeps_the_first_company_of_a_shared_tenant(db: Db) {
        let w = World::new(db).await;
        // The index is dropped and made again on one connection (see `OneConnection`).
        let mut one = OneConnection::of(&w.db).await;
        one.exec("DROP INDEX companies_one_per_tenant".into()).await;
        // Fabrikam moved onto contoso's tenant after contoso was linked to it.
        w.exec(format!("UPDATE companies SET tenant_id = '{T1}', connected_at = connected_at + 1000 WHERE id = 'fabrikam'")).await;
        let contoso = w.store.get_company(&cid("contoso")).await.unwrap().unwrap();
        assert!(contoso.exchange_status.is_some());
        rerun_0006(&w, &mut one).await;
        assert_eq!(w.store.get_company(&cid("contoso")).await.unwrap().unwrap(), contoso, "the first link stays as it was");
        let fabrikam = w.store.get_company(&cid("fabrikam")).await.unwrap().unwrap();
        assert_eq!((fabrikam.connection, fabrikam.exchange_status), (None, None), "the later link is disconnected");
        // The index is back.
        let conn = Connection { tenant_id: TenantId::parse(T1).unwrap(), display_name: "x".into(), default_domain: "x.com".into(), connected_at: start() };
        let ev = NewAuditEvent::new(start(), AuditKind::Connected, Some(&w.admin)).company(&cid("fabrikam"));
        assert!(matches!(w.store.set_connection(&cid("fabrikam"), Some(&conn), ev).await, Err(StoreError::Duplicate)));
    }
}
