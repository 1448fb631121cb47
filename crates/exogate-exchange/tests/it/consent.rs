//! Consent URLs against the emulator's consent page, and verifying a new connection.

use exogate_exchange::{ConnectionError, TokenError, parse_consent_callback};

use crate::support::*;

#[tokio::test]
async fn consent_urls_point_at_the_emulator_pages() {
    let w = World::demo().await;
    let client = w.client();
    let v1 = client.connect_consent_url(None, "http://127.0.0.1/callback", "st1");
    assert_eq!(v1.path(), "/organizations/adminconsent");
    assert!(
        v1.query_pairs()
            .any(|(k, v)| k == "client_id" && v == CONNECT_APP.to_string())
    );
    assert!(!v1.query_pairs().any(|(k, _)| k == "scope"));
    let v2 = client.exchange_consent_url(NORTHWIND, "http://127.0.0.1/callback", "st2");
    assert_eq!(v2.path(), format!("/{NORTHWIND}/v2.0/adminconsent"));
    assert!(
        v2.query_pairs()
            .any(|(k, v)| k == "scope" && v == "https://outlook.office365.com/.default")
    );
    assert!(
        v2.query_pairs()
            .any(|(k, v)| k == "client_id" && v == EXCHANGE_APP.to_string())
    );
    for u in [v1, v2] {
        let resp = w.http.get(u.clone()).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{u}");
    }
}

#[tokio::test]
async fn callback_parsing_and_verification_of_a_connection() {
    let w = World::demo().await;
    let client = w.client();
    let q = format!("admin_consent=True&tenant={CONTOSO}&state=abc");
    let grant = parse_consent_callback(&q, "abc").unwrap();
    let org = client
        .verify_connection(grant.tenant)
        .await
        .expect("verified");
    assert_eq!(org.tenant_id, CONTOSO);
    assert_eq!(org.display_name, "Contoso");
    assert_eq!(
        org.initial_domain.as_deref(),
        Some("contoso.onmicrosoft.com")
    );
    assert!(org.default_domain.is_some());

    // Northwind consented to the connect app only: connecting works.
    let org = client
        .verify_connection(NORTHWIND)
        .await
        .expect("northwind connected");
    assert_eq!(org.tenant_id, NORTHWIND);

    assert!(matches!(
        client.verify_connection(TAILSPIN).await,
        Err(ConnectionError::Token(TokenError::TenantNotFound { .. }))
    ));
}
