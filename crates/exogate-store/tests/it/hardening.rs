//! (hardening) Migration 0016 on both backends: unused OAuth registrations (no code, no grant)
//! are counted and pruned by age, used ones never; the per-user-name login lock-out counts
//! concurrent attempts from many connections exactly, audits its first refusal once, clears on
//! success and forgets quiet records.

use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::lockout::{Begin, LockoutRule};
use exogate_core::oauth::{OAuthClient, OAuthCode, OAuthGrant, OAuthToken, TokenKind};
use exogate_core::ports::Store;
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

fn client(id: &str, at: Timestamp) -> OAuthClient {
    OAuthClient {
        client_id: id.into(),
        name: "Agent".into(),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        created_at: at,
    }
}

fn code(hash: &str, client: &str, user: UserId) -> OAuthCode {
    OAuthCode {
        code_hash: hash.into(),
        client_id: client.into(),
        client_name: "Agent".into(),
        user,
        redirect_uri: "http://127.0.0.1/cb".into(),
        code_challenge: "x".repeat(43),
        resource: "https://g.example/mcp".into(),
        created_at: start(),
        expires_at: start().plus_secs(60),
        used_at: None,
    }
}

const RULE: LockoutRule = LockoutRule {
    free: 5,
    first_secs: 10,
    max_secs: 900,
    forget_secs: 3600,
};

both! {
    async fn unused_oauth_registrations_are_counted_and_pruned_by_age_and_used_ones_never(db: Db) {
        let s: &dyn Store = &db;
        let u = User { id: UserId::from_uuid(Uuid::now_v7()), name: UserName::parse("alice").unwrap(), role: Role::Technician, entitlement: Entitlement::parse("contoso").unwrap(), disabled: false, password_hash: None, created_at: start() };
        s.insert_user(&u, NewAuditEvent::system(start(), AuditKind::UserAdded)).await.unwrap();
        for (id, at) in [("old", start()), ("new", start().plus_secs(36_000)), ("coded", start()), ("granted", start())] {
            s.oauth_insert_client(&client(id, at)).await.unwrap();
        }
        assert_eq!(s.oauth_count_unused_clients().await.unwrap(), 4);
        s.oauth_insert_code(&code("h1", "coded", u.id)).await.unwrap();
        s.oauth_insert_code(&code("h2", "granted", u.id)).await.unwrap();
        let gid = ApiTokenId::from_uuid(Uuid::now_v7());
        let grant = OAuthGrant { id: gid, user: u.id, client_id: "granted".into(), client_name: "Agent".into(), resource: "https://g.example/mcp".into(), code_hash: "h2".into(), created_at: start(), last_used_at: None, revoked_at: None };
        let token = OAuthToken { token_hash: "a1".into(), grant: gid, kind: TokenKind::Access, created_at: start(), expires_at: start().plus_secs(60), used_at: None };
        s.oauth_insert_grant(&grant, &[token], NewAuditEvent::system(start(), AuditKind::OAuthGrantCreated)).await.unwrap();
        assert_eq!(s.oauth_count_unused_clients().await.unwrap(), 2, "old and new");
        // A day later than `old`, earlier than `new`: only `old` goes.
        assert_eq!(s.oauth_prune_unused_clients(start().plus_secs(3600)).await.unwrap(), 1);
        assert_eq!(s.oauth_get_client("old").await.unwrap(), None);
        for kept in ["new", "coded", "granted"] {
            assert!(s.oauth_get_client(kept).await.unwrap().is_some(), "{kept}");
        }
        assert_eq!(s.oauth_count_unused_clients().await.unwrap(), 1);
        // Much later, the used ones still stay.
        assert_eq!(s.oauth_prune_unused_clients(start().plus_secs(10 * 86_400)).await.unwrap(), 1);
        assert!(s.oauth_get_client("coded").await.unwrap().is_some());
        assert!(s.oauth_get_client("granted").await.unwrap().is_some());
        assert_eq!(s.oauth_count_unused_clients().await.unwrap(), 0);
    }

    async fn the_login_lockout_is_shared_counted_exactly_audited_once_and_cleared(db: Db) {
        let s: &dyn Store = &db;
        // 40 attempts at once on fresh connections: exactly `free` are let through (each
        // counted from its start), every other one is refused, and only one refusal is audited.
        let mut tasks = Vec::new();
        for _ in 0..40 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move { db.login_user_begin("alice", start(), &RULE).await.unwrap() }));
        }
        let mut counted = 0;
        let mut audited = 0;
        for t in tasks {
            match t.await.unwrap() {
                Begin::Counted => counted += 1,
                Begin::Refused { wait_secs, audit } => {
                    assert_eq!(wait_secs, 10);
                    audited += u32::from(audit);
                }
            }
        }
        assert_eq!((counted, audited), (5, 1));
        let r = s.login_user_record("alice").await.unwrap().unwrap();
        assert_eq!((r.failures, r.last_at, r.lockout_audited), (5, start(), true));
        // Another name is untouched.
        assert_eq!(s.login_user_begin("bob", start(), &RULE).await.unwrap(), Begin::Counted);
        // After the lock-out, one more failure doubles it; the stretch is not audited again.
        assert_eq!(s.login_user_begin("alice", start().plus_secs(10), &RULE).await.unwrap(), Begin::Counted);
        assert_eq!(
            s.login_user_begin("alice", start().plus_secs(11), &RULE).await.unwrap(),
            Begin::Refused { wait_secs: 19, audit: false }
        );
        // A success clears the record.
        s.login_user_succeeded("alice").await.unwrap();
        assert_eq!(s.login_user_record("alice").await.unwrap(), None);
        assert_eq!(s.login_user_begin("alice", start().plus_secs(12), &RULE).await.unwrap(), Begin::Counted);
        // A quiet record is forgotten (and deleted by the next attempt of anyone).
        let later = start().plus_secs(12 + 3601);
        assert_eq!(s.login_user_begin("carol", later, &RULE).await.unwrap(), Begin::Counted);
        assert_eq!(s.login_user_record("alice").await.unwrap(), None);
        assert_eq!(s.login_user_record("bob").await.unwrap(), None);
        assert!(s.login_user_record("carol").await.unwrap().is_some());
    }
}
