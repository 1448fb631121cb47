//! Graph fidelity tests: `GET /v1.0/organization`.

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn organization_answers_with_the_token_tenant() {
    let env = Env::from_json(json!({
        "apps": [{"client_id": CONNECT_APP, "display_name": "Connect", "secrets": [{"value": CONNECT_SECRET}],
                  "required_permissions": [{"resource": "00000003-0000-0000-c000-000000000000", "role": "Organization.Read.All"}]}],
        "tenants": [{"id": CONTOSO, "display_name": "Contoso Ltd", "domains": ["contoso.onmicrosoft.com", "contoso.com"],
                     "consents": [CONNECT_APP]}],
    }))
    .await;
    let token = env.graph_token("contoso.com").await;
    let resp = env
        .http
        .get(env.url("/v1.0/organization"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.expect("json");
    assert!(
        b["@odata.context"]
            .as_str()
            .is_some_and(|c| c.ends_with("/v1.0/$metadata#organization"))
    );
    let org = &b["value"][0];
    assert_eq!(b["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(org["id"], CONTOSO);
    assert_eq!(org["displayName"], "Contoso Ltd");
    assert_eq!(org["tenantType"], "AAD");
    let domains = org["verifiedDomains"].as_array().expect("verifiedDomains");
    assert_eq!(domains.len(), 2);
    assert_eq!(domains[0]["name"], "contoso.onmicrosoft.com");
    assert_eq!(domains[0]["isInitial"], true);
    assert_eq!(domains[0]["isDefault"], false);
    assert_eq!(domains[0]["type"], "Managed");
    assert!(domains[0]["capabilities"].is_string());
    assert_eq!(domains[1]["name"], "contoso.com");
    assert_eq!(domains[1]["isDefault"], true);
    assert_eq!(domains[1]["isInitial"], false);
    let counters = env.emu.shared.world.read().counters.graph_requests.clone();
    assert_eq!(counters.get("/v1.0/organization|200"), Some(&1));
}

#[tokio::test]
async fn organization_without_the_permission_is_403() {
    let env = Env::demo().await;
    // The Exchange app has no Graph permission.
    let token = env
        .access_token(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, GRAPH_SCOPE)
        .await;
    let resp = env
        .http
        .get(env.url("/v1.0/organization"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 403);
    let b: Value = resp.json().await.expect("json");
    assert_eq!(b["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        b["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    let counters = env.emu.shared.world.read().counters.graph_requests.clone();
    assert_eq!(counters.get("/v1.0/organization|403"), Some(&1));
}

#[tokio::test]
async fn demo_connect_app_reads_each_connected_tenant() {
    let env = Env::demo().await;
    for (tenant, name) in [
        (CONTOSO, "Contoso"),
        (FABRIKAM, "Fabrikam"),
        (NORTHWIND, "Northwind Traders"),
    ] {
        let token = env.graph_token(tenant).await;
        let b: Value = env
            .http
            .get(env.url("/v1.0/organization"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        assert_eq!(b["value"][0]["id"], tenant);
        assert_eq!(b["value"][0]["displayName"], name);
    }
}
