//! Consent URLs against the emulator's consent page, and verifying a new connection.

use exogate_exchange::{
    ConnectionError, ConsentError, ReadinessState, TokenError, parse_consent_callback,
};

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

/// Submits the emulator's consent form the way a person would, returning the redirect's query.
async fn consent(url: &url::Url, account: &str, action: &str) -> String {
    let mut form: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    form.push(("account".into(), account.into()));
    form.push(("action".into(), action.into()));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut post = url.clone();
    post.set_query(None);
    let resp = http.post(post).form(&form).send().await.unwrap();
    assert_eq!(resp.status(), 302, "consent answered {}", resp.status());
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("http://127.0.0.1/cb"), "{location}");
    url::Url::parse(&location)
        .unwrap()
        .query()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn authorize_flow_end_to_end_with_every_outcome() {
    let w = World::demo().await;
    let client = w.client();
    let cb = "http://127.0.0.1/cb";

    // Cancel: an error with admin_consent=True is not success.
    let u = client.exchange_consent_url(NORTHWIND, cb, "s-cancel");
    let q = consent(&u, &format!("admin:{NORTHWIND}"), "cancel").await;
    assert!(q.contains("admin_consent=True"), "{q}");
    assert!(matches!(
        parse_consent_callback(&q, "s-cancel"),
        Err(ConsentError::Declined { .. })
    ));

    // An admin of another directory signs in.
    let u = client.exchange_consent_url(NORTHWIND, cb, "s-other");
    let q = consent(&u, &format!("admin:{CONTOSO}"), "accept").await;
    assert!(
        matches!(
            parse_consent_callback(&q, "s-other"),
            Err(ConsentError::OtherDirectory { .. })
        ),
        "{q}"
    );
    assert_eq!(
        client.check_readiness(NORTHWIND).await.state,
        ReadinessState::NotConfigured
    );

    // The tenant's admin accepts: consented, but no directory role yet.
    let u = client.exchange_consent_url(NORTHWIND, cb, "s-ok");
    let q = consent(&u, &format!("admin:{NORTHWIND}"), "accept").await;
    let grant = parse_consent_callback(&q, "s-ok").expect("success");
    assert_eq!(grant.tenant, NORTHWIND);
    assert_eq!(
        grant.scope.as_deref(),
        Some("https://outlook.office365.com/.default")
    );
    assert_eq!(
        client.check_readiness(NORTHWIND).await.state,
        ReadinessState::RoleMissing
    );

    // A forged or replayed answer does not belong to this request.
    assert_eq!(
        parse_consent_callback(&q, "another-state"),
        Err(ConsentError::StateMismatch)
    );
}

#[tokio::test]
async fn connect_flow_with_organizations_lands_in_the_signers_tenant() {
    let w = World::demo().await;
    let client = w.client();
    let u = client.connect_consent_url(None, "http://127.0.0.1/cb", "c1");
    let q = consent(&u, &format!("admin:{FABRIKAM}"), "accept").await;
    let grant = parse_consent_callback(&q, "c1").expect("success");
    assert_eq!(grant.tenant, FABRIKAM);
    assert_eq!(grant.scope, None, "v1 answers carry no scope");
    let org = client.verify_connection(grant.tenant).await.unwrap();
    assert_eq!(org.display_name, "Fabrikam");
}
