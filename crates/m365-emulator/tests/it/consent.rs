//! Admin consent (`docs/MICROSOFT.md#admin-consent`): the consent page and every outcome, for v1
//! and v2, with the exact redirect parameters.

use serde_json::Value;

use crate::support::*;

const REDIRECT: &str = "http://127.0.0.1:4567/integrations/microsoft/callback";

#[derive(Clone, Copy, Debug, PartialEq)]
enum V {
    V1,
    V2,
}

const VERSIONS: [V; 2] = [V::V1, V::V2];

fn consent_path(v: V, tenant: &str) -> String {
    match v {
        V::V1 => format!("/{tenant}/adminconsent"),
        V::V2 => format!("/{tenant}/v2.0/adminconsent"),
    }
}

/// Opens the consent page; returns status, `Location` (if any) and body.
async fn open(
    env: &Env,
    v: V,
    tenant: &str,
    client_id: &str,
    redirect: &str,
    state: &str,
) -> (u16, Option<String>, String) {
    let mut query = vec![
        ("client_id", client_id),
        ("redirect_uri", redirect),
        ("state", state),
    ];
    if v == V::V2 {
        query.push(("scope", EXCHANGE_SCOPE));
    }
    let resp = env
        .http
        .get(env.url(&consent_path(v, tenant)))
        .query(&query)
        .send()
        .await
        .expect("sent");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_owned());
    (status, location, resp.text().await.expect("body"))
}

/// Opens the page, picks `account`, presses `action`; returns status, Location and body.
async fn consent(
    env: &Env,
    v: V,
    tenant: &str,
    client_id: &str,
    account: &str,
    action: &str,
) -> (u16, Option<String>, String) {
    let (status, _, page) = open(env, v, tenant, client_id, REDIRECT, "st-123").await;
    assert_eq!(status, 200, "{page}");
    let options = attribute_values(&page, "<option ", "value");
    assert!(
        options.contains(&account.to_owned()),
        "{account} offered in {options:?}"
    );
    assert!(page.contains("id=\"accept\"") && page.contains("id=\"cancel\""));
    assert!(page.contains("<select id=\"account\""));
    let mut form = hidden_inputs(&page);
    form.push(("account".to_owned(), account.to_owned()));
    form.push(("action".to_owned(), action.to_owned()));
    let resp = env
        .http
        .post(env.url(&form_action(&page)))
        .form(&form)
        .send()
        .await
        .expect("sent");
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|l| l.to_str().expect("ascii").to_owned());
    (status, location, resp.text().await.expect("body"))
}

async fn service_principal(env: &Env, tenant: &str, app: &str) -> Option<Value> {
    let (_, b) = env
        .control(
            "GET",
            &format!("/tenants/{tenant}/service-principals"),
            None,
        )
        .await;
    b["value"]
        .as_array()?
        .iter()
        .find(|sp| sp["app_id"] == app)
        .cloned()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn page_names_the_app_its_permissions_and_the_accounts() {
    let env = Env::demo().await;
    let (s, loc, page) = open(&env, V::V1, NORTHWIND, EXCHANGE_APP, REDIRECT, "x").await;
    assert_eq!(s, 200);
    assert!(loc.is_none());
    assert!(page.contains("exogate Exchange"));
    assert!(page.contains("Exchange.ManageAsApp"));
    assert!(page.contains("Office 365 Exchange Online"));
    assert!(
        !page.contains("<link") && !page.contains("<script") && !page.contains("src="),
        "no external assets"
    );
    let options = attribute_values(&page, "<option ", "value");
    assert_eq!(options[0], format!("admin:{NORTHWIND}"));
    assert_eq!(options[1], format!("user:{NORTHWIND}"));
    assert!(options.contains(&format!("admin:{CONTOSO}")));
    assert!(
        !options.contains(&format!("admin:{TAILSPIN}")),
        "deleted tenants cannot sign in"
    );
}

#[tokio::test]
async fn admin_accept_creates_the_sp_grants_permissions_and_no_role() {
    for v in VERSIONS {
        let env = Env::demo().await;
        assert!(
            service_principal(&env, NORTHWIND, EXCHANGE_APP)
                .await
                .is_none()
        );
        let (s, loc, _) = consent(
            &env,
            v,
            NORTHWIND,
            EXCHANGE_APP,
            &format!("admin:{NORTHWIND}"),
            "accept",
        )
        .await;
        assert_eq!(s, 302, "{v:?}");
        let (base, params) = split_location(&loc.expect("redirects"));
        assert_eq!(base, REDIRECT);
        let mut expected = vec![("admin_consent", "True"), ("tenant", NORTHWIND)];
        if v == V::V2 {
            expected.push(("scope", EXCHANGE_SCOPE));
        }
        expected.push(("state", "st-123"));
        assert_eq!(params, pairs(&expected), "{v:?}");
        let sp = service_principal(&env, NORTHWIND, EXCHANGE_APP)
            .await
            .expect("service principal created");
        assert_eq!(sp["app_roles"], serde_json::json!(["Exchange.ManageAsApp"]));
        assert_eq!(
            sp["directory_roles"],
            serde_json::json!([]),
            "consent never assigns a role"
        );
        // The token now works, with the permission and without a role.
        let (_, c) = decode_jwt(&env.exchange_token(NORTHWIND).await);
        assert_eq!(c["roles"], serde_json::json!(["Exchange.ManageAsApp"]));
        assert_eq!(c["wids"], serde_json::json!([IMPLICIT_WIDS]));
        assert_eq!(c["oid"], sp["object_id"]);
    }
}

#[tokio::test]
async fn reconsent_keeps_the_service_principal_and_its_roles() {
    let env = Env::demo().await;
    let before = service_principal(&env, CONTOSO, EXCHANGE_APP)
        .await
        .expect("sp");
    let (s, _, _) = consent(
        &env,
        V::V1,
        CONTOSO,
        EXCHANGE_APP,
        &format!("admin:{CONTOSO}"),
        "accept",
    )
    .await;
    assert_eq!(s, 302);
    let after = service_principal(&env, CONTOSO, EXCHANGE_APP)
        .await
        .expect("sp");
    assert_eq!(before["object_id"], after["object_id"]);
    assert_eq!(before["directory_roles"], after["directory_roles"]);
}

#[tokio::test]
async fn cancel_redirects_with_access_denied_65004_and_no_tenant() {
    for v in VERSIONS {
        let env = Env::demo().await;
        let (s, loc, _) = consent(
            &env,
            v,
            NORTHWIND,
            EXCHANGE_APP,
            &format!("admin:{NORTHWIND}"),
            "cancel",
        )
        .await;
        assert_eq!(s, 302, "{v:?}");
        let (base, params) = split_location(&loc.expect("redirects"));
        assert_eq!(base, REDIRECT);
        let keys: Vec<&str> = params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "error",
                "error_description",
                "error_uri",
                "admin_consent",
                "state"
            ],
            "{v:?}"
        );
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("error"), Some("access_denied"));
        let d = get("error_description").expect("description");
        assert!(
            d.starts_with("AADSTS65004: User declined to consent to access the app.\r\nTrace ID: "),
            "{d:?}"
        );
        assert!(d.contains("\r\nCorrelation ID: ") && d.contains("\r\nTimestamp: "));
        assert!(get("error_uri").is_some_and(|u| u.ends_with("error?code=65004")));
        assert_eq!(get("admin_consent"), Some("True"));
        assert_eq!(get("state"), Some("st-123"));
        assert!(
            service_principal(&env, NORTHWIND, EXCHANGE_APP)
                .await
                .is_none()
        );
    }
}

#[tokio::test]
async fn non_admin_user_gets_need_admin_approval_and_no_redirect() {
    for v in VERSIONS {
        let env = Env::demo().await;
        let (s, loc, page) = consent(
            &env,
            v,
            NORTHWIND,
            EXCHANGE_APP,
            &format!("user:{NORTHWIND}"),
            "accept",
        )
        .await;
        assert_eq!(s, 200, "{v:?}");
        assert!(loc.is_none());
        assert!(page.contains("Need admin approval"));
        assert!(
            service_principal(&env, NORTHWIND, EXCHANGE_APP)
                .await
                .is_none()
        );
    }
}

#[tokio::test]
async fn admin_of_another_tenant_gets_50020_when_the_path_names_a_tenant() {
    for v in VERSIONS {
        let env = Env::demo().await;
        let (s, loc, _) = consent(
            &env,
            v,
            NORTHWIND,
            EXCHANGE_APP,
            &format!("admin:{FABRIKAM}"),
            "accept",
        )
        .await;
        assert_eq!(s, 302, "{v:?}");
        let (base, params) = split_location(&loc.expect("redirects"));
        assert_eq!(base, REDIRECT);
        let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("error"), Some("access_denied"));
        assert!(get("error_description").is_some_and(|d| d.starts_with("AADSTS50020: ")));
        assert_eq!(get("admin_consent"), Some("True"));
        assert_eq!(get("state"), Some("st-123"));
        assert!(get("tenant").is_none(), "no tenant on error redirects");
        assert!(
            service_principal(&env, NORTHWIND, EXCHANGE_APP)
                .await
                .is_none()
        );
    }
}

#[tokio::test]
async fn common_and_organizations_consent_in_the_signers_tenant() {
    for v in VERSIONS {
        for path in ["common", "organizations"] {
            let env = Env::demo().await;
            let (s, loc, _) = consent(
                &env,
                v,
                path,
                EXCHANGE_APP,
                &format!("admin:{NORTHWIND}"),
                "accept",
            )
            .await;
            assert_eq!(s, 302, "{v:?} {path}");
            let (_, params) = split_location(&loc.expect("redirects"));
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
            assert_eq!(get("admin_consent"), Some("True"));
            assert_eq!(get("tenant"), Some(NORTHWIND));
            assert!(get("error").is_none());
            assert!(
                service_principal(&env, NORTHWIND, EXCHANGE_APP)
                    .await
                    .is_some()
            );
        }
    }
}

#[tokio::test]
async fn unknown_app_unregistered_redirect_and_missing_tenant_show_an_error_page() {
    for v in VERSIONS {
        let env = Env::demo().await;
        let cases = [
            (
                NORTHWIND,
                "abcdef00-0000-4000-8000-000000000009",
                REDIRECT,
                "AADSTS700016",
            ),
            (NORTHWIND, "not-a-guid", REDIRECT, "AADSTS700016"),
            (
                NORTHWIND,
                EXCHANGE_APP,
                "https://evil.example.com/callback",
                "AADSTS50011",
            ),
            (
                NORTHWIND,
                EXCHANGE_APP,
                "http://127.0.0.1.evil.example.com/cb",
                "AADSTS50011",
            ),
            (
                NORTHWIND,
                EXCHANGE_APP,
                "https://127.0.0.1/cb",
                "AADSTS50011",
            ),
            (NORTHWIND, EXCHANGE_APP, "", "AADSTS50011"),
            (TAILSPIN, EXCHANGE_APP, REDIRECT, "AADSTS90002"),
            (
                "nosuch.onmicrosoft.com",
                EXCHANGE_APP,
                REDIRECT,
                "AADSTS90002",
            ),
            (
                "99999999-9999-4999-8999-999999999999",
                EXCHANGE_APP,
                REDIRECT,
                "AADSTS90002",
            ),
            ("not_a_tenant", EXCHANGE_APP, REDIRECT, "AADSTS900023"),
        ];
        for (tenant, client, redirect, code) in cases {
            let (s, loc, page) = open(&env, v, tenant, client, redirect, "s").await;
            assert!(
                (400..500).contains(&s),
                "{v:?} {tenant} {client} {redirect}: {s}"
            );
            assert!(loc.is_none(), "no redirect for {code}");
            assert!(
                page.contains(code),
                "{code} in page for {tenant} {client} {redirect}"
            );
        }
    }
}

#[tokio::test]
async fn loopback_redirects_ignore_the_port_and_escape_in_the_page() {
    let env = Env::demo().await;
    for redirect in [
        "http://127.0.0.1:1/cb",
        "http://localhost:65000/deep/path?x=1",
        "http://127.0.0.1/",
    ] {
        let (s, _, page) = open(&env, V::V1, CONTOSO, EXCHANGE_APP, redirect, "<b>\"x\"</b>").await;
        assert_eq!(s, 200, "{redirect}");
        assert!(!page.contains("<b>\"x\"</b>"), "state is escaped");
        let hidden = hidden_inputs(&page);
        assert!(hidden.contains(&("state".to_owned(), "<b>\"x\"</b>".to_owned())));
        assert!(hidden.contains(&("redirect_uri".to_owned(), redirect.to_owned())));
    }
}

#[tokio::test]
async fn tampered_consent_posts_never_500() {
    let env = Env::demo().await;
    let path = consent_path(V::V1, NORTHWIND);
    let bodies: Vec<Vec<(&str, &str)>> = vec![
        vec![],
        vec![("client_id", EXCHANGE_APP)],
        vec![("client_id", EXCHANGE_APP), ("redirect_uri", REDIRECT)],
        vec![
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", REDIRECT),
            ("action", "accept"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", REDIRECT),
            ("action", "accept"),
            ("account", "admin:nope"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", REDIRECT),
            ("action", "accept"),
            ("account", "root:11111111-1111-4111-8111-111111111111"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", REDIRECT),
            ("action", "accept"),
            ("account", "admin:44444444-4444-4444-8444-444444444444"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", "https://evil.example.com/"),
            ("action", "accept"),
            ("account", "admin:33333333-3333-4333-8333-333333333333"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", REDIRECT),
            ("action", "explode"),
            ("account", "admin:33333333-3333-4333-8333-333333333333"),
        ],
    ];
    for form in bodies {
        let resp = env
            .http
            .post(env.url(&path))
            .form(&form)
            .send()
            .await
            .expect("sent");
        let s = resp.status().as_u16();
        assert!((400..500).contains(&s), "{form:?}: {s}");
        assert!(resp.headers().get("location").is_none(), "{form:?}");
    }
    let resp = env
        .http
        .post(env.url(&path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0x00, 0xfe])
        .send()
        .await
        .expect("sent");
    assert!(resp.status().is_client_error());
    assert!(
        service_principal(&env, NORTHWIND, EXCHANGE_APP)
            .await
            .is_none()
    );
}

#[tokio::test]
async fn v2_without_scope_redirects_with_invalid_request() {
    let env = Env::demo().await;
    let resp = env
        .http
        .get(env.url(&consent_path(V::V2, NORTHWIND)))
        .query(&[
            ("client_id", EXCHANGE_APP),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 302);
    let (base, params) = split_location(resp.headers()["location"].to_str().expect("ascii"));
    assert_eq!(base, REDIRECT);
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    assert_eq!(get("error"), Some("invalid_request"));
    assert!(get("error_description").is_some_and(|d| d.starts_with("AADSTS900144: ")));
    assert_eq!(get("state"), Some("s1"));
    assert!(get("tenant").is_none());
    // v1 needs no scope.
    let (s, loc, _) = open(&env, V::V1, NORTHWIND, EXCHANGE_APP, REDIRECT, "s1").await;
    assert_eq!(s, 200);
    assert!(loc.is_none());
}
