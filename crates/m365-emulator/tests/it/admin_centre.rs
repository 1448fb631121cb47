//! The "Entra admin centre" roles page (Step 2 of `docs/DOMAIN.md#exchange-admin-status`).

use serde_json::json;

use crate::support::*;

async fn page(env: &Env, tenant: &str) -> (u16, String) {
    let resp = env
        .http
        .get(env.url(&format!("/_admin/{tenant}/roles")))
        .send()
        .await
        .expect("sent");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// Submits the form that holds `button#<button_id>`.
async fn press(env: &Env, html: &str, button_id: &str) -> reqwest::Response {
    let at = html
        .find(&format!("id=\"{button_id}\""))
        .unwrap_or_else(|| panic!("button #{button_id} on the page"));
    let form_start = html[..at].rfind("<form ").expect("button is inside a form");
    let form_html = &html[form_start..at];
    let action = form_action(form_html);
    let fields = hidden_inputs(form_html);
    env.http
        .post(env.url(&action))
        .form(&fields)
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn page_lists_service_principals_with_their_roles_and_buttons() {
    let env = Env::demo().await;
    let (s, html) = page(&env, "contoso.onmicrosoft.com").await;
    assert_eq!(s, 200);
    assert!(html.contains("exogate Exchange") && html.contains("exogate Connect"));
    assert!(html.contains(EXCHANGE_APP) && html.contains(CONNECT_APP));
    assert!(html.contains(&format!("id=\"remove-exchange-admin-{EXCHANGE_APP}\"")));
    assert!(html.contains(&format!("id=\"assign-exchange-admin-{CONNECT_APP}\"")));
    assert!(html.contains(&format!(
        "id=\"assign-exchange-recipient-admin-{EXCHANGE_APP}\""
    )));
    assert!(html.contains(&format!("id=\"assign-global-reader-{EXCHANGE_APP}\"")));
    assert!(html.contains("Exchange Administrator"));
    // Object ids are shown.
    let (_, sps) = env
        .control(
            "GET",
            &format!("/tenants/{CONTOSO}/service-principals"),
            None,
        )
        .await;
    for sp in sps["value"].as_array().expect("list") {
        assert!(html.contains(sp["object_id"].as_str().expect("oid")));
    }
}

#[tokio::test]
async fn assigning_exchange_admin_records_the_emulator_time_and_reaches_new_tokens() {
    let env = Env::demo().await;
    env.control(
        "POST",
        "/clock",
        Some(json!({"freeze_at": "2026-03-01T10:00:00Z"})),
    )
    .await;
    let (_, html) = page(&env, FABRIKAM).await;
    let resp = press(
        &env,
        &html,
        &format!("assign-exchange-admin-{EXCHANGE_APP}"),
    )
    .await;
    assert_eq!(resp.status(), 303);
    let back = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(back.starts_with(&format!("/_admin/{FABRIKAM}/roles")));
    let (_, sps) = env
        .control(
            "GET",
            &format!("/tenants/{FABRIKAM}/service-principals"),
            None,
        )
        .await;
    let sp = sps["value"]
        .as_array()
        .expect("list")
        .iter()
        .find(|sp| sp["app_id"] == EXCHANGE_APP)
        .expect("sp")
        .clone();
    assert_eq!(sp["directory_roles"][0]["id"], EXCHANGE_ADMIN_ROLE);
    assert_eq!(
        sp["directory_roles"][0]["assigned_at"],
        "2026-03-01T10:00:00Z"
    );
    let (_, c) = decode_jwt(&env.exchange_token(FABRIKAM).await);
    assert_eq!(c["wids"], json!([EXCHANGE_ADMIN_ROLE, IMPLICIT_WIDS]));
    // The page now offers removal; removing takes the role away again.
    let (_, html) = page(&env, FABRIKAM).await;
    let resp = press(
        &env,
        &html,
        &format!("remove-exchange-admin-{EXCHANGE_APP}"),
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, c) = decode_jwt(&env.exchange_token(FABRIKAM).await);
    assert_eq!(c["wids"], json!([IMPLICIT_WIDS]));
}

#[tokio::test]
async fn page_escapes_text_and_refuses_bad_input() {
    let env = Env::demo().await;
    let (s, _) = env
        .control(
            "POST",
            "/apps",
            Some(json!({"client_id": "abcdef00-0000-4000-8000-0000000000aa",
                        "display_name": "<script>alert(1)</script>"})),
        )
        .await;
    assert_eq!(s, 201);
    env.control(
        "POST",
        &format!("/tenants/{CONTOSO}/consents"),
        Some(json!({"client_id": "abcdef00-0000-4000-8000-0000000000aa"})),
    )
    .await;
    let (_, html) = page(&env, CONTOSO).await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));

    for tenant in [TAILSPIN, "nosuch.onmicrosoft.com", "garbage!!"] {
        let (s, _) = page(&env, tenant).await;
        assert_eq!(s, 404, "{tenant}");
    }
    let url = env.url(&format!("/_admin/{CONTOSO}/roles"));
    for form in [
        vec![],
        vec![
            ("client_id", "x"),
            ("role", "exchange-admin"),
            ("op", "assign"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("role", "king"),
            ("op", "assign"),
        ],
        vec![
            ("client_id", EXCHANGE_APP),
            ("role", "exchange-admin"),
            ("op", "explode"),
        ],
    ] {
        let resp = env.http.post(&url).form(&form).send().await.expect("sent");
        assert_eq!(resp.status(), 400, "{form:?}");
    }
    // A service principal that does not exist in the tenant.
    let resp = env
        .http
        .post(env.url(&format!("/_admin/{NORTHWIND}/roles")))
        .form(&[
            ("client_id", EXCHANGE_APP),
            ("role", "exchange-admin"),
            ("op", "assign"),
        ])
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), 404);
}
