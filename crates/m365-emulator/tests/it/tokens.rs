//! Access tokens (`docs/MICROSOFT.md#token-claims`): claims, `roles` only when granted, `wids`
//! from directory roles, lifetime knob, and `verify_access_token` rejecting forged, expired,
//! tampered and wrong-audience tokens.

use m365_emulator::entra::{TokenRejection, verify_access_token};
use serde_json::{Value, json};

use crate::support::*;

async fn sp_object_id(env: &Env, tenant: &str, app: &str) -> String {
    let (s, b) = env
        .control(
            "GET",
            &format!("/tenants/{tenant}/service-principals"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["value"]
        .as_array()
        .expect("list")
        .iter()
        .find(|sp| sp["app_id"] == app)
        .and_then(|sp| sp["object_id"].as_str())
        .expect("service principal exists")
        .to_owned()
}

#[tokio::test]
async fn exchange_token_carries_the_v1_claims() {
    let env = Env::demo().await;
    env.freeze_clock().await;
    let (_, clock) = env.control("GET", "/clock", None).await;
    let now = clock["unix"].as_i64().expect("unix");
    let token = env.exchange_token(CONTOSO).await;
    let (header, c) = decode_jwt(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert!(header["kid"].is_string());
    let oid = sp_object_id(&env, CONTOSO, EXCHANGE_APP).await;
    assert_eq!(c["aud"], "https://outlook.office365.com");
    assert_eq!(c["iss"], format!("https://sts.windows.net/{CONTOSO}/"));
    assert_eq!(c["idp"], format!("https://sts.windows.net/{CONTOSO}/"));
    assert_eq!(c["iat"], now);
    assert_eq!(c["nbf"], now);
    assert_eq!(c["exp"], now + 3599);
    assert_eq!(c["appid"], EXCHANGE_APP);
    assert_eq!(c["appidacr"], "1");
    assert_eq!(c["idtyp"], "app");
    assert_eq!(c["oid"], oid);
    assert_eq!(c["sub"], oid);
    assert_eq!(c["tid"], CONTOSO);
    assert_eq!(c["ver"], "1.0");
    assert_eq!(c["app_displayname"], "exogate Exchange");
    assert_eq!(c["roles"], json!(["Exchange.ManageAsApp"]));
    assert_eq!(c["wids"], json!([EXCHANGE_ADMIN_ROLE, IMPLICIT_WIDS]));
    for field in ["aio", "rh", "uti"] {
        assert!(c[field].as_str().is_some_and(|s| !s.is_empty()), "{field}");
    }
}

#[tokio::test]
async fn consent_without_role_gives_roles_but_only_the_implicit_wids() {
    let env = Env::demo().await;
    let (_, c) = decode_jwt(&env.exchange_token(FABRIKAM).await);
    assert_eq!(c["roles"], json!(["Exchange.ManageAsApp"]));
    assert_eq!(c["wids"], json!([IMPLICIT_WIDS]));
}

#[tokio::test]
async fn roles_appear_only_for_the_resource_whose_permission_was_granted() {
    let env = Env::demo().await;
    // The Exchange app holds no Graph permission; the connect app no Exchange permission.
    let graph_from_exchange_app = env
        .access_token(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, GRAPH_SCOPE)
        .await;
    let (_, c) = decode_jwt(&graph_from_exchange_app);
    assert!(c.get("roles").is_none(), "no roles claim at all: {c}");
    let exchange_from_connect_app = env
        .access_token(CONTOSO, CONNECT_APP, CONNECT_SECRET, EXCHANGE_SCOPE)
        .await;
    let (_, c) = decode_jwt(&exchange_from_connect_app);
    assert!(c.get("roles").is_none(), "no roles claim at all: {c}");
    let (_, c) = decode_jwt(&env.graph_token(CONTOSO).await);
    assert_eq!(c["roles"], json!(["Organization.Read.All"]));
    assert_eq!(c["aud"], "https://graph.microsoft.com");
}

#[tokio::test]
async fn wids_follow_directory_roles_and_are_frozen_into_issued_tokens() {
    let env = Env::demo().await;
    let before = env.exchange_token(FABRIKAM).await;
    let (s, b) = env
        .control(
            "PUT",
            &format!("/tenants/{FABRIKAM}/service-principals/{EXCHANGE_APP}/roles/Global%20Reader"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = env
        .control(
            "PUT",
            &format!(
                "/tenants/{FABRIKAM}/service-principals/{EXCHANGE_APP}/roles/{EXCHANGE_ADMIN_ROLE}"
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let after = env.exchange_token(FABRIKAM).await;
    let (_, c) = decode_jwt(&after);
    let wids: Vec<&str> = c["wids"]
        .as_array()
        .expect("wids")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(wids.contains(&EXCHANGE_ADMIN_ROLE), "{wids:?}");
    assert!(
        wids.contains(&"f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
        "{wids:?}"
    );
    assert!(wids.contains(&IMPLICIT_WIDS), "{wids:?}");
    let (_, old) = decode_jwt(&before);
    assert_eq!(
        old["wids"],
        json!([IMPLICIT_WIDS]),
        "issued tokens keep their roles"
    );
    // Removing the role takes it out of the next token.
    let (s, _) = env
        .control(
            "DELETE",
            &format!("/tenants/{FABRIKAM}/service-principals/{EXCHANGE_APP}/roles/exchange-admin"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let (_, c) = decode_jwt(&env.exchange_token(FABRIKAM).await);
    assert!(
        !c["wids"]
            .as_array()
            .expect("wids")
            .contains(&json!(EXCHANGE_ADMIN_ROLE))
    );
}

#[tokio::test]
async fn token_lifetime_is_a_knob() {
    let env = Env::from_json(json!({
        "knobs": {"token_lifetime_secs": 600},
        "apps": [{"client_id": EXCHANGE_APP, "display_name": "x", "secrets": [{"value": EXCHANGE_SECRET}]}],
        "tenants": [{"id": CONTOSO, "display_name": "Contoso", "domains": ["contoso.onmicrosoft.com"],
                     "consents": [EXCHANGE_APP]}],
    }))
    .await;
    let (s, b) = env
        .token_secret(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["expires_in"], 600);
    let (_, c) = decode_jwt(b["access_token"].as_str().expect("token"));
    assert_eq!(
        c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat"),
        600
    );
    // No permission was required, so no roles claim.
    assert!(c.get("roles").is_none());
}

/// Re-signs `payload` with a key that is not the emulator's, keeping the emulator's header.
fn forge(token: &str, payload: &Value) -> String {
    let (header, _) = decode_jwt(token);
    let other = TestCert::generate();
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = header["kid"].as_str().map(str::to_owned);
    h.typ = Some("JWT".to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(other.key_pem.as_bytes()).expect("key");
    jsonwebtoken::encode(&h, payload, &key).expect("sign")
}

fn tamper(token: &str, payload: &Value) -> String {
    use base64::Engine as _;
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
    parts.join(".")
}

#[tokio::test]
async fn verify_access_token_accepts_good_tokens_and_says_why_it_rejects_bad_ones() {
    let env = Env::demo().await;
    env.freeze_clock().await;
    let shared = env.emu.shared.clone();
    let exchange = env.exchange_token(CONTOSO).await;
    let graph = env.graph_token(CONTOSO).await;
    let bearer = |t: &str| format!("Bearer {t}");

    for aud in [
        "https://outlook.office365.com",
        "https://outlook.office365.com/",
    ] {
        let claims = verify_access_token(&shared, Some(&bearer(&exchange)), aud)
            .expect("a fresh Exchange token verifies");
        assert_eq!(claims.tid.to_string(), CONTOSO);
        assert!(claims.has_role("Exchange.ManageAsApp"));
    }
    verify_access_token(
        &shared,
        Some(&bearer(&graph)),
        "https://graph.microsoft.com",
    )
    .expect("a fresh Graph token verifies");

    assert_eq!(
        verify_access_token(&shared, None, "https://outlook.office365.com"),
        Err(TokenRejection::Missing)
    );
    assert!(matches!(
        verify_access_token(&shared, Some("Basic abc"), "https://outlook.office365.com"),
        Err(TokenRejection::Malformed(_))
    ));
    assert!(matches!(
        verify_access_token(
            &shared,
            Some("Bearer not.a.jwt"),
            "https://outlook.office365.com"
        ),
        Err(TokenRejection::Malformed(_))
    ));
    assert!(matches!(
        verify_access_token(
            &shared,
            Some(&bearer(&graph)),
            "https://outlook.office365.com"
        ),
        Err(TokenRejection::WrongAudience { .. })
    ));
    assert!(matches!(
        verify_access_token(
            &shared,
            Some(&bearer(&exchange)),
            "https://graph.microsoft.com"
        ),
        Err(TokenRejection::WrongAudience { .. })
    ));

    let (_, payload) = decode_jwt(&exchange);
    let forged = forge(&exchange, &payload);
    assert_eq!(
        verify_access_token(
            &shared,
            Some(&bearer(&forged)),
            "https://outlook.office365.com"
        ),
        Err(TokenRejection::BadSignature)
    );
    let mut escalated = payload.clone();
    escalated["wids"] = json!(["62e90394-69f5-4237-9190-012177145e10"]);
    let tampered = tamper(&exchange, &escalated);
    assert_eq!(
        verify_access_token(
            &shared,
            Some(&bearer(&tampered)),
            "https://outlook.office365.com"
        ),
        Err(TokenRejection::BadSignature)
    );

    // Expiry follows the emulator clock.
    env.advance_clock(3598.0).await;
    verify_access_token(
        &shared,
        Some(&bearer(&exchange)),
        "https://outlook.office365.com",
    )
    .expect("still valid one second before exp");
    env.advance_clock(1.0).await;
    assert!(matches!(
        verify_access_token(
            &shared,
            Some(&bearer(&exchange)),
            "https://outlook.office365.com"
        ),
        Err(TokenRejection::Expired { .. })
    ));
}

#[tokio::test]
async fn graph_rejects_missing_forged_expired_and_wrong_audience_tokens() {
    let env = Env::demo().await;
    env.freeze_clock().await;
    let graph = env.graph_token(CONTOSO).await;
    let exchange = env.exchange_token(CONTOSO).await;
    let (_, payload) = decode_jwt(&graph);
    let forged = forge(&graph, &payload);
    let url = env.url("/v1.0/organization");
    let cases: Vec<(&str, Option<String>)> = vec![
        ("missing", None),
        ("garbage", Some("Bearer garbage".to_owned())),
        ("forged", Some(format!("Bearer {forged}"))),
        ("exchange audience", Some(format!("Bearer {exchange}"))),
    ];
    for (why, auth) in cases {
        let mut req = env.http.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("sent");
        assert_eq!(resp.status(), 401, "{why}");
        assert!(resp.headers().contains_key("www-authenticate"), "{why}");
        let b: Value = resp.json().await.expect("json");
        assert_eq!(b["error"]["code"], "InvalidAuthenticationToken", "{why}");
        assert!(b["error"]["message"].is_string());
    }
    env.advance_clock(3600.0).await;
    let resp = env
        .http
        .get(&url)
        .bearer_auth(&graph)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401, "expired");
    let b: Value = resp.json().await.expect("json");
    assert_eq!(b["error"]["code"], "InvalidAuthenticationToken");
}
