//! Sign in with Microsoft on both backends: a pending sign-in is taken once; a Microsoft
//! identity links to one user, created and updated with its audit row in one transaction.

use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::ports::{Store, StoreError};
use exogate_core::signin::PendingSignin;
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

both! {
    async fn signin_states_are_single_use_and_identities_link_once(db: Db) {
        let s: &dyn Store = &db;
        let p = PendingSignin { state_hash: "s1".into(), browser_hash: "b1".into(), nonce: "n".into(), verifier: "v".into(), next: "/companies".into(), expires_at: start().plus_secs(600) };
        s.signin_put_state(&p).await.unwrap();
        assert!(matches!(s.signin_put_state(&p).await, Err(StoreError::Duplicate)));
        assert_eq!(s.signin_take_state("s1").await.unwrap(), Some(p.clone()));
        assert_eq!(s.signin_take_state("s1").await.unwrap(), None, "a state is taken once");
        assert_eq!(s.signin_take_state("nope").await.unwrap(), None);

        let tid = "5a1e5000-0000-4000-8000-000000000001";
        let mut u = User { id: UserId::from_uuid(Uuid::now_v7()), name: UserName::parse("ada@msp.example").unwrap(), role: Role::Admin, entitlement: Entitlement::All, disabled: false, password_hash: None, created_at: start() };
        let head = s.audit_head().await.map(|h| h.map_or(0, |h| h.0)).unwrap();
        s.signin_insert_user(&u, tid, "o1", NewAuditEvent::system(start(), AuditKind::UserAdded)).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, head + 1);
        assert_eq!(s.signin_identity(tid, "o1").await.unwrap(), Some((u.id, false)));
        assert_eq!(s.signin_identity(tid, "o2").await.unwrap(), None);
        assert_eq!(s.signin_identity("other", "o1").await.unwrap(), None, "linked by tenant and object id together");
        assert_eq!(s.get_user(u.id).await.unwrap(), Some(u.clone()));

        // The same identity cannot link a second user; a failed insert writes nothing.
        let u2 = User { id: UserId::from_uuid(Uuid::now_v7()), name: UserName::parse("ada2").unwrap(), ..u.clone() };
        assert!(matches!(s.signin_insert_user(&u2, tid, "o1", NewAuditEvent::system(start(), AuditKind::UserAdded)).await, Err(StoreError::Duplicate)));
        assert_eq!(s.get_user(u2.id).await.unwrap(), None);
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, head + 1);

        u.disabled = true;
        s.signin_update_user(&u, tid, "o1", true, NewAuditEvent::system(start(), AuditKind::UserChanged)).await.unwrap();
        assert_eq!(s.signin_identity(tid, "o1").await.unwrap(), Some((u.id, true)));
        assert!(s.get_user(u.id).await.unwrap().unwrap().disabled);
        // Another identity's row is not this user's: nothing changes.
        assert!(matches!(s.signin_update_user(&u, tid, "o2", false, NewAuditEvent::system(start(), AuditKind::UserChanged)).await, Err(StoreError::NotFound { .. })));
        assert_eq!(s.signin_identity(tid, "o1").await.unwrap(), Some((u.id, true)));
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, head + 2);
    }
}

both! {
    async fn totp_steps_and_recovery_codes_are_spent_once(db: Db) {
        use exogate_core::totp::{TotpFactor, TotpSecret};
        let s: &dyn Store = &db;
        let u = User { id: UserId::from_uuid(Uuid::now_v7()), name: UserName::parse("mgr").unwrap(), role: Role::Manager, entitlement: Entitlement::All, disabled: false, password_hash: None, created_at: start() };
        s.insert_user(&u, NewAuditEvent::system(start(), AuditKind::UserAdded)).await.unwrap();
        assert_eq!(s.totp_get(u.id).await.unwrap(), None);
        let f = TotpFactor { user: u.id, secret: TotpSecret::new(vec![1, 2, 3, 255]), last_step: None, created_at: start() };
        let head = s.audit_head().await.unwrap().unwrap().0;
        s.totp_enrol(&f, &["h1".into(), "h2".into()], NewAuditEvent::system(start(), AuditKind::UserChanged)).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, head + 1);
        assert_eq!(s.totp_get(u.id).await.unwrap(), Some(f.clone()));
        assert!(s.totp_use_step(u.id, 10).await.unwrap());
        assert!(!s.totp_use_step(u.id, 10).await.unwrap(), "a step is spent once");
        assert!(!s.totp_use_step(u.id, 9).await.unwrap(), "never an older one");
        assert!(s.totp_use_step(u.id, 11).await.unwrap());
        assert_eq!(s.totp_get(u.id).await.unwrap().unwrap().last_step, Some(11));
        assert!(s.totp_use_recovery(u.id, "h1", start()).await.unwrap());
        assert!(!s.totp_use_recovery(u.id, "h1", start()).await.unwrap(), "a recovery code works once");
        assert!(!s.totp_use_recovery(u.id, "nope", start()).await.unwrap());
        // Re-enrolling replaces the secret, the last step and the codes.
        let g = TotpFactor { secret: TotpSecret::new(vec![9; 20]), ..f.clone() };
        s.totp_enrol(&g, &["h3".into()], NewAuditEvent::system(start(), AuditKind::UserChanged)).await.unwrap();
        assert_eq!(s.totp_get(u.id).await.unwrap(), Some(g));
        assert!(!s.totp_use_recovery(u.id, "h2", start()).await.unwrap(), "old codes are gone");
        assert!(s.totp_use_recovery(u.id, "h3", start()).await.unwrap());
        assert!(s.totp_use_step(u.id, 5).await.unwrap(), "a new factor starts afresh");
    }
}
