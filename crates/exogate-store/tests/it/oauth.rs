//! The OAuth tables on both backends: clients, single-use codes, grants with their tokens,
//! refresh rotation (only once, never on a revoked grant) and revocation with its audit row.

use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::oauth::{OAuthClient, OAuthCode, OAuthGrant, OAuthToken, TokenKind};
use exogate_core::ports::{Store, StoreError};
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

fn token(hash: &str, grant: ApiTokenId, kind: TokenKind) -> OAuthToken {
    OAuthToken {
        token_hash: hash.into(),
        grant,
        kind,
        created_at: start(),
        expires_at: start().plus_secs(3600),
        used_at: None,
    }
}

both! {
    async fn oauth_clients_codes_grants_and_tokens(db: Db) {
        let s: &dyn Store = &db;
        let u = User { id: UserId::from_uuid(Uuid::now_v7()), name: UserName::parse("alice").unwrap(), role: Role::Technician, entitlement: Entitlement::parse("contoso").unwrap(), disabled: false, password_hash: None, created_at: start() };
        s.insert_user(&u, NewAuditEvent::system(start(), AuditKind::UserAdded)).await.unwrap();

        let client = OAuthClient { client_id: "c1".into(), name: "Agent".into(), redirect_uris: vec!["http://127.0.0.1/cb".into(), "https://a.example/cb".into()], created_at: start() };
        s.oauth_insert_client(&client).await.unwrap();
        assert!(matches!(s.oauth_insert_client(&client).await, Err(StoreError::Duplicate)));
        assert_eq!(s.oauth_get_client("c1").await.unwrap(), Some(client.clone()));
        assert_eq!(s.oauth_get_client("c2").await.unwrap(), None);

        let code = OAuthCode { code_hash: "h1".into(), client_id: "c1".into(), client_name: "Agent".into(), user: u.id, redirect_uri: "http://127.0.0.1/cb".into(), code_challenge: "x".repeat(43), resource: "https://g.example/mcp".into(), created_at: start(), expires_at: start().plus_secs(60), used_at: None };
        s.oauth_insert_code(&code).await.unwrap();
        let used = s.oauth_use_code("h1", start().plus_secs(1)).await.unwrap().unwrap();
        assert_eq!(used.used_at, Some(start().plus_secs(1)));
        assert_eq!(OAuthCode { used_at: None, ..used }, code);
        assert_eq!(s.oauth_use_code("h1", start().plus_secs(2)).await.unwrap(), None, "a code is used once");
        assert_eq!(s.oauth_use_code("nope", start()).await.unwrap(), None);

        let gid = ApiTokenId::from_uuid(Uuid::now_v7());
        let grant = OAuthGrant { id: gid, user: u.id, client_id: "c1".into(), client_name: "Agent".into(), resource: "https://g.example/mcp".into(), code_hash: "h1".into(), created_at: start(), last_used_at: None, revoked_at: None };
        let head = s.audit_head().await.unwrap().unwrap().0;
        s.oauth_insert_grant(&grant, &[token("a1", gid, TokenKind::Access), token("r1", gid, TokenKind::Refresh)], NewAuditEvent::system(start(), AuditKind::OAuthGrantCreated)).await.unwrap();
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, head + 1);
        assert_eq!(s.oauth_get_grant(gid).await.unwrap(), Some(grant.clone()));
        assert_eq!(s.oauth_list_grants(u.id).await.unwrap(), vec![grant.clone()]);
        assert_eq!(s.oauth_grant_by_code("h1").await.unwrap(), Some(grant.clone()));
        assert_eq!(s.oauth_grant_by_code("h2").await.unwrap(), None);
        let (t, g) = s.oauth_get_token("a1").await.unwrap().unwrap();
        assert_eq!((t, g), (token("a1", gid, TokenKind::Access), grant.clone()));
        assert_eq!(s.oauth_get_token("zz").await.unwrap(), None);

        // Rotation: once only; the successors exist afterwards.
        let later = start().plus_secs(10);
        assert!(s.oauth_rotate("r1", later, &[token("a2", gid, TokenKind::Access), token("r2", gid, TokenKind::Refresh)]).await.unwrap());
        assert_eq!(s.oauth_get_token("r1").await.unwrap().unwrap().0.used_at, Some(later));
        assert!(!s.oauth_rotate("r1", later, &[token("a3", gid, TokenKind::Access)]).await.unwrap());
        assert_eq!(s.oauth_get_token("a3").await.unwrap(), None, "a refused rotation writes nothing");
        assert!(!s.oauth_rotate("a2", later, &[]).await.unwrap(), "an access token does not rotate");
        assert!(s.oauth_get_token("r2").await.unwrap().is_some());

        s.oauth_touch_grant(gid, later).await.unwrap();
        assert_eq!(s.oauth_get_grant(gid).await.unwrap().unwrap().last_used_at, Some(later));

        // Revocation: once, audited; a revoked grant's refresh token no longer rotates.
        let head = s.audit_head().await.unwrap().unwrap().0;
        assert!(s.oauth_revoke_grant(gid, later, NewAuditEvent::system(later, AuditKind::OAuthGrantRevoked)).await.unwrap());
        assert!(!s.oauth_revoke_grant(gid, later, NewAuditEvent::system(later, AuditKind::OAuthGrantRevoked)).await.unwrap());
        assert_eq!(s.audit_head().await.unwrap().unwrap().0, head + 1);
        assert_eq!(s.oauth_get_token("a2").await.unwrap().unwrap().1.revoked_at, Some(later));
        assert!(!s.oauth_rotate("r2", later, &[]).await.unwrap());
    }
}
