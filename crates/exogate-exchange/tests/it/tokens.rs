//! Token provider against the emulator's token endpoint.

use std::time::Duration;

use exogate_exchange::{
    AppConfig, CertificateCredential, Limits, M365Client, Resource, TokenError,
};
use secrecy::SecretString;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn fifty_concurrent_callers_cause_one_token_request() {
    let w = World::demo().await;
    let client = w.client();
    let before = w.token_requests(CONTOSO, EXCHANGE_APP).await;
    let calls = (0..50).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.tokens().get(CONTOSO, Resource::Exchange).await })
    });
    let tokens = futures::future::join_all(calls).await;
    for t in &tokens {
        let t = t.as_ref().expect("task").as_ref().expect("token");
        assert_eq!(t.claims.tid.as_deref(), Some(CONTOSO.to_string().as_str()));
    }
    let after = w.token_requests(CONTOSO, EXCHANGE_APP).await;
    assert_eq!(
        after - before,
        1,
        "emulator saw {} token requests",
        after - before
    );
    assert_eq!(client.tokens().requests_sent(), 1);
}

#[tokio::test]
async fn concurrent_callers_share_a_failure_too() {
    let w = World::demo().await;
    let client = w.client();
    let calls = (0..50).map(|_| {
        let c = client.clone();
        tokio::spawn(async move { c.tokens().get(NORTHWIND, Resource::Exchange).await })
    });
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.expect("task").unwrap_err(), TokenError::AppNotInTenant);
    }
    assert_eq!(w.token_requests(NORTHWIND, EXCHANGE_APP).await, 1);
    // A later call asks again (failures are not cached beyond the callers that waited).
    assert!(
        client
            .tokens()
            .get(NORTHWIND, Resource::Exchange)
            .await
            .is_err()
    );
    assert_eq!(w.token_requests(NORTHWIND, EXCHANGE_APP).await, 2);
}

#[tokio::test]
async fn cached_until_five_minutes_before_expiry_then_refreshed() {
    let w = World::demo().await;
    w.knobs(None, json!({"token_lifetime_secs": 600})).await;
    let client = w.client();
    let t1 = client
        .tokens()
        .get(CONTOSO, Resource::Exchange)
        .await
        .unwrap();
    w.clock.advance(Duration::from_secs(299));
    let t2 = client
        .tokens()
        .get(CONTOSO, Resource::Exchange)
        .await
        .unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&t1, &t2),
        "still inside exp - 5 min: cached"
    );
    assert_eq!(client.tokens().requests_sent(), 1);
    w.clock.advance(Duration::from_secs(2));
    let t3 = client
        .tokens()
        .get(CONTOSO, Resource::Exchange)
        .await
        .unwrap();
    assert!(
        !std::sync::Arc::ptr_eq(&t1, &t3),
        "past exp - 5 min: refreshed"
    );
    assert_eq!(client.tokens().requests_sent(), 2);
    assert_eq!(w.token_requests(CONTOSO, EXCHANGE_APP).await, 2);
}

#[tokio::test]
async fn force_refresh_and_invalidate_fetch_again() {
    let w = World::demo().await;
    let client = w.client();
    client
        .tokens()
        .get(CONTOSO, Resource::Exchange)
        .await
        .unwrap();
    client.tokens().get(CONTOSO, Resource::Graph).await.unwrap();
    client
        .tokens()
        .force_refresh(CONTOSO, Resource::Exchange)
        .await
        .unwrap();
    assert_eq!(client.tokens().requests_sent(), 3);
    client.tokens().invalidate(CONTOSO);
    client
        .tokens()
        .get(CONTOSO, Resource::Exchange)
        .await
        .unwrap();
    client.tokens().get(CONTOSO, Resource::Graph).await.unwrap();
    assert_eq!(client.tokens().requests_sent(), 5);
    assert_eq!(w.token_requests(CONTOSO, EXCHANGE_APP).await, 3);
    assert_eq!(w.token_requests(CONTOSO, CONNECT_APP).await, 2);
}

#[tokio::test]
async fn token_errors_are_typed() {
    let w = World::demo().await;
    let client = w.client();
    assert_eq!(
        client
            .tokens()
            .get(NORTHWIND, Resource::Exchange)
            .await
            .unwrap_err(),
        TokenError::AppNotInTenant
    );
    assert!(matches!(
        client
            .tokens()
            .get(TAILSPIN, Resource::Exchange)
            .await
            .unwrap_err(),
        TokenError::TenantNotFound { code: 90002 }
    ));
    let mut cfg = w.config(Limits::default());
    cfg.exchange_app = AppConfig::with_secret(EXCHANGE_APP, "wrong-secret");
    let bad = M365Client::new(cfg).unwrap();
    assert_eq!(
        bad.tokens()
            .get(CONTOSO, Resource::Exchange)
            .await
            .unwrap_err(),
        TokenError::CredentialsRejected { code: 7000215 }
    );
}

fn rsa_cert() -> (String, String) {
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
        .expect("rsa key");
    let cert = rcgen::CertificateParams::new(vec!["exogate-test".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn certificate_assertion_gets_a_token_and_a_wrong_key_is_rejected() {
    let w = World::demo().await;
    let app_id = uuid::Uuid::new_v4();
    let (cert_pem, key_pem) = rsa_cert();
    let (_, other_key_pem) = rsa_cert();
    w.control(
        reqwest::Method::POST,
        "/apps",
        Some(json!({
            "client_id": app_id,
            "display_name": "cert app",
            "certificates": [cert_pem],
            "required_permissions": [{"resource": "00000002-0000-0ff1-ce00-000000000000", "role": "Exchange.ManageAsApp"}],
        })),
    )
    .await;
    w.control(
        reqwest::Method::POST,
        &format!("/tenants/{CONTOSO}/consents"),
        Some(json!({"client_id": app_id})),
    )
    .await;
    let cred = CertificateCredential::from_pem(&cert_pem, &SecretString::from(key_pem)).unwrap();
    assert!(
        !format!("{cred:?}").contains("PRIVATE"),
        "Debug must not show the key"
    );
    let mut cfg = w.config(Limits::default());
    cfg.exchange_app = AppConfig::with_certificate(app_id, cred);
    let client = M365Client::new(cfg).unwrap();
    let t = client
        .tokens()
        .get(CONTOSO, Resource::Exchange)
        .await
        .expect("token by certificate");
    assert!(t.claims.has_exchange_permission());
    assert!(
        !format!("{t:?}").contains(t.bearer()),
        "Debug must not show the token"
    );

    let wrong =
        CertificateCredential::from_pem(&cert_pem, &SecretString::from(other_key_pem)).unwrap();
    let mut cfg = w.config(Limits::default());
    cfg.exchange_app = AppConfig::with_certificate(app_id, wrong);
    let client = M365Client::new(cfg).unwrap();
    assert_eq!(
        client
            .tokens()
            .get(CONTOSO, Resource::Exchange)
            .await
            .unwrap_err(),
        TokenError::CredentialsRejected { code: 700027 }
    );
}
