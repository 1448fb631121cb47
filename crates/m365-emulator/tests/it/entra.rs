//! Entra fidelity tests: the token endpoint (every error of `docs/MICROSOFT.md#token-errors` we
//! implement, by secret and by certificate), the tokens' claims (`docs/MICROSOFT.md#token-claims`),
//! OpenID configuration and JWKS.

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::support::*;

/// How a test request proves the client: by secret or by certificate assertion.
#[derive(Clone, Copy, Debug)]
enum Cred {
    Secret,
    Cert,
}

const BOTH: [Cred; 2] = [Cred::Secret, Cred::Cert];

/// The demo world with a certificate registered on the Exchange app (secret kept).
async fn env_with_cert() -> (Env, TestCert) {
    let env = Env::demo().await;
    let cert = TestCert::generate();
    register_exchange_app(&env, &cert, json!({})).await;
    (env, cert)
}

/// Replaces the demo Exchange app registration, keeping its secret, adding `cert`, and
/// overriding fields with `extra`.
async fn register_exchange_app(env: &Env, cert: &TestCert, extra: Value) {
    let mut app = json!({
        "client_id": EXCHANGE_APP,
        "display_name": "exogate Exchange",
        "secrets": [{"value": EXCHANGE_SECRET}],
        "certificates": [cert.cert_pem],
        "redirect_uris": ["http://127.0.0.1/*"],
        "required_permissions": [{"resource": "00000002-0000-0ff1-ce00-000000000000", "role": "Exchange.ManageAsApp"}],
        "disabled": false,
    });
    for (k, v) in extra.as_object().expect("extra is an object") {
        app[k] = v.clone();
    }
    let (s, b) = env.control("POST", "/apps", Some(app)).await;
    assert!(s == 200 || s == 201, "{s} {b}");
}

async fn now(env: &Env) -> i64 {
    let (_, b) = env.control("GET", "/clock", None).await;
    b["unix"].as_i64().expect("clock unix")
}

/// A token request for `client_id` in `tenant` with `cred`, asking for `scope`.
async fn request(
    env: &Env,
    cert: &TestCert,
    tenant: &str,
    client_id: &str,
    scope: &str,
    cred: Cred,
) -> (u16, Value) {
    match cred {
        Cred::Secret => {
            env.token_secret(tenant, client_id, EXCHANGE_SECRET, scope)
                .await
        }
        Cred::Cert => {
            let aud = format!("{}/{tenant}/oauth2/v2.0/token", env.emu.base_url);
            let claims = assertion_claims(client_id, &aud, now(env).await);
            let assertion = cert.assertion(Algorithm::PS256, "x5t#S256", None, &claims);
            assertion_request(env, tenant, client_id, scope, &assertion).await
        }
    }
}

async fn assertion_request(
    env: &Env,
    tenant: &str,
    client_id: &str,
    scope: &str,
    assertion: &str,
) -> (u16, Value) {
    env.token_raw(
        tenant,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", scope),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ],
    )
    .await
}

// ---- token errors (docs/MICROSOFT.md#token-errors), by secret and by certificate ----

#[tokio::test]
async fn success_by_secret_and_by_certificate() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        let (s, b) = request(&env, &cert, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, cred).await;
        assert_eq!(s, 200, "{cred:?}: {b}");
        assert_eq!(b["token_type"], "Bearer");
        assert_eq!(b["expires_in"], 3599);
        assert_eq!(b["ext_expires_in"], 3599);
        let (_, claims) = decode_jwt(b["access_token"].as_str().expect("token"));
        let acr = match cred {
            Cred::Secret => "1",
            Cred::Cert => "2",
        };
        assert_eq!(claims["appidacr"], acr, "{cred:?}");
    }
}

#[tokio::test]
async fn unknown_tenant_guid_is_90002() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        let tenant = "99999999-9999-4999-8999-999999999999";
        let (s, b) = request(&env, &cert, tenant, EXCHANGE_APP, EXCHANGE_SCOPE, cred).await;
        assert_eq!(s, 400, "{cred:?}");
        assert_aad_error(&b, "invalid_request", 90002);
        assert!(
            b["error_description"]
                .as_str()
                .unwrap_or("")
                .contains(tenant)
        );
    }
}

#[tokio::test]
async fn unknown_tenant_domain_is_90002() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        let (s, b) = request(
            &env,
            &cert,
            "nosuch.onmicrosoft.com",
            EXCHANGE_APP,
            EXCHANGE_SCOPE,
            cred,
        )
        .await;
        assert_eq!(s, 400, "{cred:?}");
        assert_aad_error(&b, "invalid_request", 90002);
    }
}

#[tokio::test]
async fn deleted_tenant_is_90002_with_the_knobbed_error_string() {
    let env = Env::from_json(json!({
        "knobs": {"tenant_not_found_error": "invalid_tenant"},
        "apps": [{"client_id": EXCHANGE_APP, "display_name": "x", "secrets": [{"value": EXCHANGE_SECRET}]}],
        "tenants": [{"id": TAILSPIN, "display_name": "Tailspin", "domains": ["tailspin.onmicrosoft.com"],
                     "deleted": true, "consents": [EXCHANGE_APP]}],
    }))
    .await;
    for tenant in [TAILSPIN, "tailspin.onmicrosoft.com"] {
        let (s, b) = env
            .token_secret(tenant, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
            .await;
        assert_eq!(s, 400);
        assert_aad_error(&b, "invalid_tenant", 90002);
    }
}

#[tokio::test]
async fn malformed_tenant_is_900023() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        for tenant in ["not_a_tenant", "contoso", "a..b"] {
            let (s, b) = request(&env, &cert, tenant, EXCHANGE_APP, EXCHANGE_SCOPE, cred).await;
            assert_eq!(s, 400, "{cred:?} {tenant}");
            assert_aad_error(&b, "invalid_request", 900023);
        }
    }
}

#[tokio::test]
async fn app_not_consented_in_tenant_is_700016() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        let (s, b) = request(&env, &cert, NORTHWIND, EXCHANGE_APP, EXCHANGE_SCOPE, cred).await;
        assert_eq!(s, 400, "{cred:?}");
        assert_aad_error(&b, "unauthorized_client", 700016);
        let d = b["error_description"].as_str().unwrap_or("");
        assert!(d.contains(EXCHANGE_APP) && d.contains("Northwind"), "{d}");
    }
}

#[tokio::test]
async fn unknown_client_id_is_700016() {
    let env = Env::demo().await;
    for client in ["abcdef00-0000-4000-8000-000000000009", "not-a-guid"] {
        let (s, b) = env
            .token_secret(CONTOSO, client, EXCHANGE_SECRET, EXCHANGE_SCOPE)
            .await;
        assert_eq!(s, 400, "{client}");
        assert_aad_error(&b, "unauthorized_client", 700016);
    }
}

#[tokio::test]
async fn fresh_consent_answers_700016_until_propagated() {
    let env = Env::from_json(json!({
        "knobs": {"consent_propagation_secs": 30},
        "apps": [{"client_id": EXCHANGE_APP, "display_name": "x", "secrets": [{"value": EXCHANGE_SECRET}],
                  "required_permissions": [{"resource": "00000002-0000-0ff1-ce00-000000000000", "role": "Exchange.ManageAsApp"}]}],
        "tenants": [{"id": NORTHWIND, "display_name": "Northwind", "domains": ["northwind.onmicrosoft.com"]}],
    }))
    .await;
    env.freeze_clock().await;
    consent_then_wait(&env).await;
}

async fn consent_then_wait(env: &Env) {
    let (s, b) = env
        .control(
            "POST",
            &format!("/tenants/{NORTHWIND}/consents"),
            Some(json!({"client_id": EXCHANGE_APP})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = env
        .token_secret(NORTHWIND, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 400);
    assert_aad_error(&b, "unauthorized_client", 700016);
    env.advance_clock(29.0).await;
    let (s, _) = env
        .token_secret(NORTHWIND, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 400, "still propagating at 29 s");
    env.advance_clock(1.0).await;
    let (s, b) = env
        .token_secret(NORTHWIND, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn wrong_secret_is_7000215() {
    let env = Env::demo().await;
    let (s, b) = env
        .token_secret(CONTOSO, EXCHANGE_APP, "not-the-secret", EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 7000215);
    // The other app's secret is wrong for this app too.
    let (s, b) = env
        .token_secret(CONTOSO, EXCHANGE_APP, CONNECT_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 7000215);
}

#[tokio::test]
async fn secrets_with_plus_must_be_percent_encoded() {
    let env = Env::from_json(json!({
        "apps": [{"client_id": EXCHANGE_APP, "display_name": "x", "secrets": [{"value": "a+b/c=="}]}],
        "tenants": [{"id": CONTOSO, "display_name": "Contoso", "domains": ["contoso.onmicrosoft.com"],
                     "consents": [EXCHANGE_APP]}],
    }))
    .await;
    let (s, b) = env
        .token_secret(CONTOSO, EXCHANGE_APP, "a+b/c==", EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 200, "percent-encoded by the form encoder: {b}");
    // A raw '+' decodes to a space: the secret no longer matches.
    let raw = format!(
        "grant_type=client_credentials&client_id={EXCHANGE_APP}&client_secret=a+b/c==&scope=https%3A%2F%2Foutlook.office365.com%2F.default"
    );
    let resp = env
        .http
        .post(env.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(raw)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 401);
    let b: Value = resp.json().await.expect("json");
    assert_aad_error(&b, "invalid_client", 7000215);
}

#[tokio::test]
async fn per_tenant_knobs_from_the_scenario_apply_to_that_tenant_only() {
    let env = Env::from_json(json!({
        "apps": [{"client_id": EXCHANGE_APP, "display_name": "x", "secrets": [{"value": EXCHANGE_SECRET}]}],
        "tenants": [
            {"id": CONTOSO, "display_name": "Contoso", "domains": ["contoso.onmicrosoft.com"],
             "consents": [EXCHANGE_APP], "knobs": {"token_lifetime_secs": 120}},
            {"id": FABRIKAM, "display_name": "Fabrikam", "domains": ["fabrikam.onmicrosoft.com"],
             "consents": [EXCHANGE_APP]},
        ],
    }))
    .await;
    let (_, b) = env
        .token_secret(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(b["expires_in"], 120);
    let (_, b) = env
        .token_secret(FABRIKAM, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(b["expires_in"], 3599);
}

#[tokio::test]
async fn expired_secret_is_7000222() {
    let env = Env::demo().await;
    env.freeze_clock().await;
    let (_, clock) = env.control("GET", "/clock", None).await;
    let now = time::OffsetDateTime::from_unix_timestamp(clock["unix"].as_i64().expect("unix"))
        .expect("time");
    let expires = (now + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let cert = TestCert::generate();
    register_exchange_app(
        &env,
        &cert,
        json!({"secrets": [{"value": EXCHANGE_SECRET, "expires_at": expires}]}),
    )
    .await;
    let (s, _) = env
        .token_secret(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 200, "valid before expiry");
    env.advance_clock(3600.0).await;
    let (s, b) = env
        .token_secret(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 7000222);
}

#[tokio::test]
async fn missing_credential_is_7000218() {
    let env = Env::demo().await;
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", EXCHANGE_APP),
            ("scope", EXCHANGE_SCOPE),
        ],
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", EXCHANGE_APP),
            ("scope", EXCHANGE_SCOPE),
            ("client_secret", ""),
        ],
    ] {
        let (s, b) = env.token_raw(CONTOSO, &form).await;
        assert_eq!(s, 401);
        assert_aad_error(&b, "invalid_client", 7000218);
    }
}

#[tokio::test]
async fn disabled_app_is_7000112() {
    let (env, cert) = env_with_cert().await;
    register_exchange_app(&env, &cert, json!({"disabled": true})).await;
    for cred in BOTH {
        let (s, b) = request(&env, &cert, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, cred).await;
        assert_eq!(s, 400, "{cred:?}");
        assert_aad_error(&b, "unauthorized_client", 7000112);
    }
}

#[tokio::test]
async fn bad_scope_is_70011() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        for scope in [
            "https://outlook.office365.com",
            "https://outlook.office365.com/Exchange.ManageAsApp",
            "openid",
            "/.default",
            "api://exogate/.default",
            "https://outlook.office365.com/.default https://graph.microsoft.com/.default",
        ] {
            let (s, b) = request(&env, &cert, CONTOSO, EXCHANGE_APP, scope, cred).await;
            assert_eq!(s, 400, "{cred:?} {scope}");
            assert_aad_error(&b, "invalid_scope", 70011);
        }
    }
}

#[tokio::test]
async fn unknown_resource_is_500011() {
    let (env, cert) = env_with_cert().await;
    for cred in BOTH {
        for scope in [
            "https://example.com/.default",
            "https://vault.azure.net/.default",
            "00000007-0000-0ff1-ce00-000000000000/.default",
        ] {
            let (s, b) = request(&env, &cert, CONTOSO, EXCHANGE_APP, scope, cred).await;
            assert_eq!(s, 400, "{cred:?} {scope}");
            assert_aad_error(&b, "invalid_resource", 500011);
            assert!(
                b["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Contoso")
            );
        }
    }
}

#[tokio::test]
async fn accepted_scopes_give_their_audience() {
    let env = Env::demo().await;
    for (scope, aud) in [
        (
            "https://outlook.office365.com/.default",
            "https://outlook.office365.com",
        ),
        (
            "https://outlook.office.com/.default",
            "https://outlook.office.com",
        ),
        (
            "https://graph.microsoft.com/.default",
            "https://graph.microsoft.com",
        ),
    ] {
        let token = env
            .access_token(CONTOSO, EXCHANGE_APP, EXCHANGE_SECRET, scope)
            .await;
        let (_, claims) = decode_jwt(&token);
        assert_eq!(claims["aud"], aud);
    }
}

// ---- certificate assertions ----

#[tokio::test]
async fn assertion_header_forms_and_algorithms_are_accepted() {
    let (env, cert) = env_with_cert().await;
    let aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
    for (alg, thumb) in [
        (Algorithm::PS256, "x5t#S256"),
        (Algorithm::RS256, "x5t#S256"),
        (Algorithm::PS256, "x5t"),
        (Algorithm::RS256, "x5t"),
    ] {
        let claims = assertion_claims(EXCHANGE_APP, &aud, now(&env).await);
        let a = cert.assertion(alg, thumb, None, &claims);
        let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
        assert_eq!(s, 200, "{alg:?} {thumb}: {b}");
    }
}

#[tokio::test]
async fn assertion_audience_may_name_the_tenant_by_domain() {
    let (env, cert) = env_with_cert().await;
    let aud = format!(
        "{}/contoso.onmicrosoft.com/oauth2/v2.0/token",
        env.emu.base_url
    );
    let a = cert.assertion(
        Algorithm::PS256,
        "x5t#S256",
        None,
        &assertion_claims(EXCHANGE_APP, &aud, now(&env).await),
    );
    let (s, b) = assertion_request(
        &env,
        "contoso.onmicrosoft.com",
        EXCHANGE_APP,
        EXCHANGE_SCOPE,
        &a,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    // The GUID form of the audience is accepted when the path names the domain too.
    let aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
    let a = cert.assertion(
        Algorithm::PS256,
        "x5t#S256",
        None,
        &assertion_claims(EXCHANGE_APP, &aud, now(&env).await),
    );
    let (s, b) = assertion_request(
        &env,
        "contoso.onmicrosoft.com",
        EXCHANGE_APP,
        EXCHANGE_SCOPE,
        &a,
    )
    .await;
    assert_eq!(s, 200, "{b}");
}

#[tokio::test]
async fn assertion_signed_by_another_key_is_700027() {
    let (env, cert) = env_with_cert().await;
    let other = TestCert::generate();
    let aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
    let claims = assertion_claims(EXCHANGE_APP, &aud, now(&env).await);
    // Signed by `other` but naming the registered certificate: the signature fails.
    let forged = other.assertion(Algorithm::PS256, "x5t#S256", Some(&cert), &claims);
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &forged).await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700027);
    // Naming an unregistered certificate.
    let unregistered = other.assertion(Algorithm::PS256, "x5t#S256", None, &claims);
    let (s, b) =
        assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &unregistered).await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700027);
    // Not a JWT at all.
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, "garbage").await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700027);
    // A tampered payload.
    let good = cert.assertion(Algorithm::PS256, "x5t#S256", None, &claims);
    let mut parts: Vec<&str> = good.split('.').collect();
    let other_payload = base64_url(
        &json!({"aud": aud, "iss": EXCHANGE_APP, "sub": EXCHANGE_APP, "exp": i64::MAX / 4, "nbf": 0}),
    );
    parts[1] = &other_payload;
    let tampered = parts.join(".");
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &tampered).await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700027);
}

fn base64_url(v: &Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn assertion_with_wrong_audience_issuer_or_subject_is_700027() {
    let (env, cert) = env_with_cert().await;
    let good_aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
    let t = now(&env).await;
    let mut cases = Vec::new();
    let mut c = assertion_claims(EXCHANGE_APP, &good_aud, t);
    c["aud"] = json!(format!("{}/{FABRIKAM}/oauth2/v2.0/token", env.emu.base_url));
    cases.push(c);
    let mut c = assertion_claims(EXCHANGE_APP, &good_aud, t);
    c["aud"] = json!("https://login.microsoftonline.com/common/oauth2/v2.0/token");
    cases.push(c);
    let mut c = assertion_claims(EXCHANGE_APP, &good_aud, t);
    c["iss"] = json!(CONNECT_APP);
    cases.push(c);
    let mut c = assertion_claims(EXCHANGE_APP, &good_aud, t);
    c["sub"] = json!(CONNECT_APP);
    cases.push(c);
    let mut c = assertion_claims(EXCHANGE_APP, &good_aud, t);
    c.as_object_mut().expect("object").remove("aud");
    cases.push(c);
    for claims in cases {
        let a = cert.assertion(Algorithm::PS256, "x5t#S256", None, &claims);
        let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
        assert_eq!(s, 401, "{claims}");
        assert_aad_error(&b, "invalid_client", 700027);
    }
}

#[tokio::test]
async fn expired_or_future_assertion_is_rejected_by_the_emulator_clock() {
    let (env, cert) = env_with_cert().await;
    env.freeze_clock().await;
    let aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
    let t = now(&env).await;
    let claims = assertion_claims(EXCHANGE_APP, &aud, t);
    let a = cert.assertion(Algorithm::PS256, "x5t#S256", None, &claims);
    env.advance_clock(600.0).await;
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700024);
    let future = assertion_claims(EXCHANGE_APP, &aud, now(&env).await + 3600);
    let a = cert.assertion(Algorithm::PS256, "x5t#S256", None, &future);
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700024);
}

#[tokio::test]
async fn expired_certificate_is_700027() {
    let env = Env::demo().await;
    env.freeze_clock().await;
    let t = now(&env).await;
    let cert = TestCert::generate_valid_until(Some(t + 86_400));
    register_exchange_app(&env, &cert, json!({})).await;
    let aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
    let a = cert.assertion(
        Algorithm::PS256,
        "x5t#S256",
        None,
        &assertion_claims(EXCHANGE_APP, &aud, t),
    );
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
    assert_eq!(s, 200, "valid certificate: {b}");
    env.advance_clock(2.0 * 86_400.0).await;
    let a = cert.assertion(
        Algorithm::PS256,
        "x5t#S256",
        None,
        &assertion_claims(EXCHANGE_APP, &aud, now(&env).await),
    );
    let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
    assert_eq!(s, 401);
    assert_aad_error(&b, "invalid_client", 700027);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("expired")
    );
}

#[tokio::test]
async fn reused_jti_is_rejected_only_with_the_knob() {
    for knob in [false, true] {
        let cert = TestCert::generate();
        let env = Env::from_json(json!({
            "knobs": {"reject_assertion_jti_replay": knob},
            "apps": [{"client_id": EXCHANGE_APP, "display_name": "x", "certificates": [cert.cert_pem],
                      "required_permissions": [{"resource": "00000002-0000-0ff1-ce00-000000000000", "role": "Exchange.ManageAsApp"}]}],
            "tenants": [{"id": CONTOSO, "display_name": "Contoso", "domains": ["contoso.onmicrosoft.com"],
                         "consents": [EXCHANGE_APP]}],
        }))
        .await;
        let aud = format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url);
        let a = cert.assertion(
            Algorithm::PS256,
            "x5t#S256",
            None,
            &assertion_claims(EXCHANGE_APP, &aud, now(&env).await),
        );
        let (s, _) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
        assert_eq!(s, 200);
        let (s, b) = assertion_request(&env, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, &a).await;
        if knob {
            assert_eq!(s, 401);
            assert_aad_error(&b, "invalid_client", 700027);
        } else {
            assert_eq!(s, 200, "{b}");
        }
    }
}

// ---- malformed input ----

#[tokio::test]
async fn malformed_token_requests_get_entra_errors_not_500s() {
    let env = Env::demo().await;
    let url = env.url(&format!("/{CONTOSO}/oauth2/v2.0/token"));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("application/x-www-form-urlencoded", b"".to_vec()),
        ("application/x-www-form-urlencoded", b"%%%&&&==".to_vec()),
        (
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, 0x00, 0x80],
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=password&client_id=x".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials".to_vec(),
        ),
    ];
    for (ct, body) in bodies {
        let resp = env
            .http
            .post(&url)
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        let status = resp.status().as_u16();
        let b: Value = resp.json().await.expect("JSON error body");
        assert!((400..500).contains(&status), "{status} for {body:?}");
        let code = b["error_codes"][0].as_u64().expect("error code");
        assert!(
            b["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with(&format!("AADSTS{code}: "))),
            "{b}"
        );
    }
    // Garbage tenant names never 500.
    for tenant in [
        "%20",
        "..",
        "a%2Fb",
        "common",
        "x".repeat(300).as_str(),
        "💥",
    ] {
        let resp = env
            .http
            .post(env.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("sent");
        assert!(
            resp.status().is_client_error(),
            "{tenant}: {}",
            resp.status()
        );
    }
}

#[tokio::test]
async fn get_on_the_token_endpoint_is_900561() {
    let env = Env::demo().await;
    let resp = env
        .http
        .get(env.url(&format!("/{CONTOSO}/oauth2/v2.0/token")))
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 400);
    let b: Value = resp.json().await.expect("json");
    assert_aad_error(&b, "invalid_request", 900561);
}

#[tokio::test]
async fn token_requests_are_counted() {
    let env = Env::demo().await;
    env.exchange_token(CONTOSO).await;
    env.exchange_token(CONTOSO).await;
    let _ = env
        .token_secret(NORTHWIND, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
        .await;
    let counters = env.emu.shared.world.read().counters.token_requests.clone();
    assert_eq!(
        counters.get(&format!(
            "{CONTOSO}|{EXCHANGE_APP}|https://outlook.office365.com"
        )),
        Some(&2)
    );
    assert_eq!(
        counters.get(&format!(
            "{NORTHWIND}|{EXCHANGE_APP}|https://outlook.office365.com"
        )),
        Some(&1)
    );
}

// ---- discovery ----

#[tokio::test]
async fn openid_configuration_by_guid_and_domain_and_unknown_tenant() {
    let env = Env::demo().await;
    for tenant in [CONTOSO, "contoso.onmicrosoft.com"] {
        let resp = env
            .http
            .get(env.url(&format!("/{tenant}/v2.0/.well-known/openid-configuration")))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 200);
        let b: Value = resp.json().await.expect("json");
        assert_eq!(
            b["token_endpoint"],
            format!("{}/{CONTOSO}/oauth2/v2.0/token", env.emu.base_url)
        );
        assert_eq!(b["issuer"], format!("{}/{CONTOSO}/v2.0", env.emu.base_url));
        assert_eq!(
            b["jwks_uri"],
            format!("{}/{CONTOSO}/discovery/v2.0/keys", env.emu.base_url)
        );
    }
    for tenant in [
        "99999999-9999-4999-8999-999999999999",
        TAILSPIN,
        "nosuch.example.com",
    ] {
        let resp = env
            .http
            .get(env.url(&format!("/{tenant}/v2.0/.well-known/openid-configuration")))
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status(), 400, "{tenant}");
        let b: Value = resp.json().await.expect("json");
        assert_eq!(b["error_codes"], json!([90002]));
        assert!(
            b["error_description"]
                .as_str()
                .is_some_and(|d| d.starts_with("AADSTS90002: "))
        );
    }
}

#[tokio::test]
async fn jwks_verifies_issued_tokens() {
    let env = Env::demo().await;
    let token = env.exchange_token(CONTOSO).await;
    for path in [
        "/common/discovery/v2.0/keys",
        &format!("/{CONTOSO}/discovery/v2.0/keys"),
    ] {
        let jwks: Value = env
            .http
            .get(env.url(path))
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        let set: jsonwebtoken::jwk::JwkSet =
            serde_json::from_value(jwks.clone()).expect("a JWK set");
        let (header, _) = decode_jwt(&token);
        let kid = header["kid"].as_str().expect("kid");
        let jwk = set.find(kid).expect("the token's kid is published");
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
        let mut v = jsonwebtoken::Validation::new(Algorithm::RS256);
        v.set_audience(&["https://outlook.office365.com"]);
        jsonwebtoken::decode::<Value>(&token, &key, &v).expect("token verifies with the JWKS");
    }
}
