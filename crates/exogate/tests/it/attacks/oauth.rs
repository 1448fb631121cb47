//! OAuth attacks refused: a wrong PKCE verifier, a code used twice, a redirect URI not
//! registered, a token for another resource, an expired token, a rotated refresh token used
//! again (the family is revoked), a revoked grant, a consent decision from another session, and
//! client metadata documents that fail validation.

use exogate_core::ApiTokenId;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::model::hash_token_secret;
use exogate_core::oauth::{OAuthGrant, OAuthToken, TokenKind};
use reqwest::StatusCode;
use serde_json::json;

use crate::oauth::*;
use crate::support::TestApp;
use crate::web::{extract, sign_in};

/// Asserts a token endpoint answer is `400` with the OAuth `error` code.
fn refused_with(status: StatusCode, v: &serde_json::Value, error: &str) {
    assert_eq!(
        (status, v["error"].as_str().unwrap_or_default()),
        (StatusCode::BAD_REQUEST, error),
        "{v}"
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_gets_no_token_and_burns_the_code() {
    let t = TestApp::start().await;
    let client_id = register(&t, &[REDIRECT]).await;
    let code = code_for(&t, "tech", &client_id).await;
    let wrong = "another-pkce-verifier-that-is-long-enough-to-be-valid-0123456789";
    let (s, v) = exchange(&t, &client_id, &code, wrong).await;
    refused_with(s, &v, "invalid_grant");
    // The code is gone: the right verifier cannot redeem it after a guess.
    let (s, v) = exchange(&t, &client_id, &code, VERIFIER).await;
    refused_with(s, &v, "invalid_grant");
    t.stop().await;
}

#[tokio::test]
async fn a_code_is_used_once() {
    let t = TestApp::start().await;
    let client_id = register(&t, &[REDIRECT]).await;
    let code = code_for(&t, "tech", &client_id).await;
    let (s, first) = exchange(&t, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&t, access).await, StatusCode::OK);
    let (s, v) = exchange(&t, &client_id, &code, VERIFIER).await;
    refused_with(s, &v, "invalid_grant");
    // The code came back: it may have been stolen, so the grant made from it is revoked.
    assert_eq!(mcp_status(&t, access).await, StatusCode::UNAUTHORIZED);
    let (s, v) = refresh(&t, &client_id, first["refresh_token"].as_str().unwrap()).await;
    refused_with(s, &v, "invalid_grant");
    assert!(
        audit_kinds(&t)
            .await
            .iter()
            .any(|(k, d)| k == "oauth.family_revoked" && d.contains("code_reused")),
        "audited"
    );
    // Nor by another client.
    let other = register(&t, &[REDIRECT]).await;
    let code = code_for(&t, "tech", &client_id).await;
    let (s, v) = exchange(&t, &other, &code, VERIFIER).await;
    refused_with(s, &v, "invalid_grant");
    t.stop().await;
}

#[tokio::test]
async fn a_redirect_uri_not_registered_gets_nothing_sent_to_it() {
    let t = TestApp::start().await;
    let client_id = register(&t, &[REDIRECT]).await;
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    for evil in [
        "https://evil.example/callback",
        "http://127.0.0.1:4711/callback/../steal",
        "http://127.0.0.1:4711/callbackx",
        "http://localhost:4711/callback",
    ] {
        let p = params(&client_id, evil, &t.url("/mcp"));
        let r = b.get_raw(&format!("/oauth/authorize?{}", query(&p))).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{evil}");
        assert!(r.headers().get("location").is_none(), "{evil}");
        let mut fields: Vec<(&str, &str)> =
            p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        fields.push(("csrf", &b.csrf));
        fields.push(("decision", "approve"));
        let r = b.form("/oauth/authorize", &fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{evil}");
        assert!(r.headers().get("location").is_none(), "{evil}");
    }
    // Another loopback port is the exception the spec makes for native clients.
    let p = params(&client_id, "http://127.0.0.1:5999/callback", &t.url("/mcp"));
    let (s, _) = b.get(&format!("/oauth/authorize?{}", query(&p))).await;
    assert_eq!(s, StatusCode::OK);
    // Registration refuses redirect URIs that are neither https nor loopback http.
    let r = t
        .http
        .post(t.url("/oauth/register"))
        .json(&json!({ "redirect_uris": ["http://evil.example/cb"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    t.stop().await;
}

#[tokio::test]
async fn a_token_for_another_resource_is_refused() {
    let t = TestApp::start().await;
    let client_id = register(&t, &[REDIRECT]).await;
    // Asking for another resource is refused at authorization and at the token endpoint.
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    let p = params(&client_id, REDIRECT, "https://other.example/mcp");
    let (s, page) = b.get(&format!("/oauth/authorize?{}", query(&p))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(page.contains("invalid_target"), "{page}");
    let code = code_for(&t, "tech", &client_id).await;
    let (s, v) = token(
        &t,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/mcp"),
        ],
    )
    .await;
    refused_with(s, &v, "invalid_target");
    // A token issued for another resource (another server sharing the database) is not
    // accepted on this one's /mcp.
    let alice = t.actor("tech").await;
    let now = t.app.clock.now();
    let grant = OAuthGrant {
        id: ApiTokenId::from_uuid(uuid::Uuid::now_v7()),
        user: alice.user.id,
        client_id: client_id.clone(),
        client_name: "Test Agent".into(),
        resource: "https://other.example/mcp".into(),
        code_hash: hash_token_secret("a code of the other server"),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    let secret = "a-token-issued-by-another-server-for-its-own-resource";
    let access = OAuthToken {
        token_hash: hash_token_secret(secret),
        grant: grant.id,
        kind: TokenKind::Access,
        created_at: now,
        expires_at: now.plus_secs(3600),
        used_at: None,
    };
    t.app
        .store
        .oauth_insert_grant(
            &grant,
            &[access],
            NewAuditEvent::system(now, AuditKind::OAuthGrantCreated),
        )
        .await
        .unwrap();
    assert_eq!(mcp_status(&t, secret).await, StatusCode::UNAUTHORIZED);
    t.stop().await;
}

#[tokio::test]
async fn an_expired_access_token_is_refused_and_an_expired_code_too() {
    let (t, clock) = start_on_clock(|text| text).await;
    let (client_id, tokens) = signed_in(&t, "tech").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&t, access).await, StatusCode::OK);
    clock.advance_secs(3600);
    assert_eq!(mcp_status(&t, access).await, StatusCode::UNAUTHORIZED);
    // The refresh token still works, and its new access token does.
    let (s, v) = refresh(&t, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        mcp_status(&t, v["access_token"].as_str().unwrap()).await,
        StatusCode::OK
    );
    // A code older than a minute is refused.
    let code = code_for(&t, "tech", &client_id).await;
    clock.advance_secs(60);
    let (s, v) = exchange(&t, &client_id, &code, VERIFIER).await;
    refused_with(s, &v, "invalid_grant");
    t.stop().await;
}

#[tokio::test]
async fn a_rotated_refresh_token_used_again_revokes_the_family() {
    let t = TestApp::start().await;
    let (client_id, first) = signed_in(&t, "tech").await;
    let stolen = first["refresh_token"].as_str().unwrap();
    let (s, second) = refresh(&t, &client_id, stolen).await;
    assert_eq!(s, StatusCode::OK);
    // The thief replays the rotated token: refused, and the whole family goes.
    let (s, v) = refresh(&t, &client_id, stolen).await;
    refused_with(s, &v, "invalid_grant");
    let (s, v) = refresh(&t, &client_id, second["refresh_token"].as_str().unwrap()).await;
    refused_with(s, &v, "invalid_grant");
    assert_eq!(
        mcp_status(&t, second["access_token"].as_str().unwrap()).await,
        StatusCode::UNAUTHORIZED
    );
    let kinds = audit_kinds(&t).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, _)| k == "oauth.family_revoked")
            .count(),
        1,
        "{kinds:?}"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_revoked_grant_stops_its_access_and_refresh_tokens_at_once() {
    let t = TestApp::start().await;
    let (client_id, tokens) = signed_in(&t, "tech").await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&t, access).await, StatusCode::OK);
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    let (_, agents) = b.get("/agents").await;
    let grant = extract(&agents, "action=\"/agents/", "/revoke\"").unwrap();
    // Another person cannot revoke it (nor learn it exists).
    let bob = sign_in(&t.http, &t.base_url, "viewer", &t.password("viewer")).await;
    let r = bob
        .form(&format!("/agents/{grant}/revoke"), &[("csrf", &bob.csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(mcp_status(&t, access).await, StatusCode::OK);
    // Without the session's CSRF token nothing happens.
    let r = b
        .form(&format!("/agents/{grant}/revoke"), &[("csrf", "x")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .form(&format!("/agents/{grant}/revoke"), &[("csrf", &b.csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(mcp_status(&t, access).await, StatusCode::UNAUTHORIZED);
    let (s, v) = refresh(&t, &client_id, tokens["refresh_token"].as_str().unwrap()).await;
    refused_with(s, &v, "invalid_grant");
    t.stop().await;
}

#[tokio::test]
async fn a_consent_decision_from_another_session_issues_no_code() {
    let t = TestApp::start().await;
    let client_id = register(&t, &[REDIRECT]).await;
    let p = params(&client_id, REDIRECT, &t.url("/mcp"));
    // The attacker (bob) opens his own consent page and makes alice's browser post it.
    let bob = sign_in(&t.http, &t.base_url, "viewer", &t.password("viewer")).await;
    let (_, page) = bob.get(&format!("/oauth/authorize?{}", query(&p))).await;
    let bobs_csrf = extract(&page, "name=\"csrf\" value=\"", "\"").unwrap();
    let alice = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    let mut fields: Vec<(&str, &str)> = p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    fields.push(("csrf", &bobs_csrf));
    fields.push(("decision", "approve"));
    let r = alice.form("/oauth/authorize", &fields).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("location").is_none());
    // Without any session: to the login page, no code.
    let r = t
        .http
        .post(t.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    assert!(
        loc.as_deref().is_some_and(|l| l.starts_with("/login")),
        "{loc:?}"
    );
    // A cross-site post with alice's own token is refused by the origin check.
    let mut own = fields.clone();
    own.retain(|(k, _)| *k != "csrf");
    own.push(("csrf", &alice.csrf));
    let r = t
        .http
        .post(t.url("/oauth/authorize"))
        .header("cookie", &alice.cookie)
        .header("origin", "https://evil.example")
        .form(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        !audit_kinds(&t)
            .await
            .iter()
            .any(|(k, _)| k == "oauth.grant_created"),
        "no grant"
    );
    t.stop().await;
}

#[tokio::test]
async fn client_metadata_documents_that_fail_validation_are_refused() {
    // Without the loopback setting, an http metadata URL is refused before any fetch.
    let t = TestApp::start().await;
    let served =
        serve_metadata(|me| json!({ "client_id": me, "redirect_uris": [REDIRECT] }).to_string())
            .await;
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    for client_id in [
        served.as_str(),
        "https://127.0.0.1/client.json",
        "https://10.0.0.5/client.json",
        "https://agent.example/",
        "https://user@agent.example/client.json",
    ] {
        let p = params(client_id, REDIRECT, &t.url("/mcp"));
        let (s, page) = b.get(&format!("/oauth/authorize?{}", query(&p))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(page.contains("invalid_client"), "{client_id}: {page}");
    }
    t.stop().await;

    let (t, _clock) = start_on_clock(loopback_metadata_allowed).await;
    let b = sign_in(&t.http, &t.base_url, "tech", &t.password("tech")).await;
    let wrong_id = serve_metadata(|_| {
        json!({ "client_id": "https://agent.example/client.json", "client_name": "A", "redirect_uris": [REDIRECT] })
            .to_string()
    })
    .await;
    let huge = serve_metadata(|me| {
        json!({ "client_id": me, "client_name": "A", "redirect_uris": [REDIRECT], "pad": "x".repeat(10_000) })
            .to_string()
    })
    .await;
    let no_redirects =
        serve_metadata(|me| json!({ "client_id": me, "client_name": "A" }).to_string()).await;
    let no_name =
        serve_metadata(|me| json!({ "client_id": me, "redirect_uris": [REDIRECT] }).to_string())
            .await;
    let not_json = serve_metadata(|_| "<html>".to_owned()).await;
    let other_redirect = serve_metadata(|me| {
        json!({ "client_id": me, "client_name": "A", "redirect_uris": ["https://agent.example/cb"] }).to_string()
    })
    .await;
    for (client_id, why) in [
        (&wrong_id, "invalid_client"),
        (&huge, "invalid_client"),
        (&no_redirects, "invalid_client"),
        (&no_name, "invalid_client"),
        (&not_json, "invalid_client"),
        (&other_redirect, "invalid_request"),
    ] {
        let p = params(client_id, REDIRECT, &t.url("/mcp"));
        let (s, page) = b.get(&format!("/oauth/authorize?{}", query(&p))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{client_id}: {page}");
        assert!(page.contains(why), "{client_id}: {page}");
    }
    t.stop().await;
}
