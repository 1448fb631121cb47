//! The second factor of local accounts (TOTP, RFC 6238, with recovery codes), required for
//! managers and admins when `[signin] second_factor` is on: at the router and in Chromium.

use exogate_core::UserName;
use exogate_core::totp::{code_at, step_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::web::WebApp;

async fn login(w: &WebApp, user: &str, code: &str) -> (StatusCode, Value) {
    let r = w
        .http
        .post(w.url("/api/v1/login"))
        .json(&json!({"user": user, "password": WebApp::password(user), "code": code}))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Enrols `name` as the local operator; returns the secret and the recovery codes.
async fn enrol(w: &WebApp, name: &str) -> (Vec<u8>, Vec<String>) {
    let user = exogate_core::ops::users::find_user(w.app.ctx(), &UserName::parse(name).unwrap())
        .await
        .unwrap();
    let e = exogate::local_users::enrol_second_factor(w.app.ctx(), &user)
        .await
        .unwrap();
    assert!(e.uri.starts_with("otpauth://totp/exogate:") && e.uri.contains(&e.secret));
    let factor = w.app.store.totp_get(user.id).await.unwrap().unwrap();
    (factor.secret.expose().to_vec(), e.recovery_codes)
}

fn code_now(w: &WebApp, secret: &[u8]) -> String {
    format!("{:06}", code_at(secret, step_of(w.app.clock.now())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_reused_code_is_refused_and_a_recovery_code_works_once() {
    let w = WebApp::start_with(|c| c.signin.second_factor = true).await;
    // Required for a manager, who has none yet.
    let (s, b) = login(&w, "manager", "").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("second_factor_not_enrolled"))
    );
    // A technician is not required to have one.
    assert_eq!(login(&w, "tech", "").await.0, StatusCode::OK);

    let (secret, recovery) = enrol(&w, "manager").await;
    assert_eq!(recovery.len(), 10);
    let (s, b) = login(&w, "manager", "").await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("second_factor_failed"))
    );
    assert_eq!(
        login(&w, "manager", "000000").await.0,
        StatusCode::UNAUTHORIZED
    );
    let code = code_now(&w, &secret);
    assert_eq!(login(&w, "manager", &code).await.0, StatusCode::OK);
    let (s, b) = login(&w, "manager", &code).await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("second_factor_failed")),
        "a code is used once"
    );
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    // The next step's code works once the clock moves on.
    w.clock.advance_secs(30);
    assert_eq!(
        login(&w, "manager", &code_now(&w, &secret)).await.0,
        StatusCode::OK
    );
    // A recovery code works once (with or without its dashes, any case).
    assert_eq!(
        login(&w, "manager", &recovery[3].to_uppercase()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        login(&w, "manager", &recovery[3]).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&w, "manager", &recovery[4].replace('-', "")).await.0,
        StatusCode::OK
    );
    // A right code with a wrong password gets nothing.
    w.clock.advance_secs(30);
    let r = w
        .http
        .post(w.url("/api/v1/login"))
        .json(&json!({"user": "manager", "password": "wrong-password", "code": code_now(&w, &secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Refusals are audited with their reason; no secret or code in the audit log.
    let reasons: Vec<String> = w
        .app
        .store
        .list_audit(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.kind == "auth.login_failed")
        .filter_map(|e| super::web::extract(&e.event.detail, "\"reason\":\"", "\""))
        .collect();
    assert_eq!(
        reasons,
        [
            "second_factor_not_enrolled",
            "second_factor_failed",
            "second_factor_failed",
            "second_factor_failed",
            "second_factor_failed"
        ]
    );
    for e in w.app.store.list_audit(0, 10_000).await.unwrap() {
        let row = format!("{:?}", e.event);
        assert!(!row.contains(&exogate_core::totp::base32(&secret)));
        assert!(recovery.iter().all(|c| !row.contains(c.as_str())));
    }
    w.stop().await;
}

async fn fill(c: &super::browser::Chrome, login: &str, code: &str) {
    c.client.goto(login).await.unwrap();
    c.wait_css("#user")
        .await
        .send_keys("manager")
        .await
        .unwrap();
    c.wait_css("#password")
        .await
        .send_keys(WebApp::password("manager"))
        .await
        .unwrap();
    if !code.is_empty() {
        c.wait_css("#code").await.send_keys(code).await.unwrap();
    }
    c.wait_css("#login").await.click().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_manager_signs_in_with_the_totp_code_and_without_it_is_refused() {
    let w = WebApp::start_with(|c| c.signin.second_factor = true).await;
    let (secret, _) = enrol(&w, "manager").await;
    let c = super::browser::Chrome::start("second-factor").await;
    fill(&c, &w.url("/login"), "").await;
    let err = c.wait_css("#login-error").await.text().await.unwrap();
    assert!(err.contains("authenticator"), "{err}");
    fill(&c, &w.url("/login"), &code_now(&w, &secret)).await;
    c.wait_css("#companies").await;
    c.shot("signed-in").await;
    c.stop().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_enrols_on_the_page_with_a_code_from_the_app() {
    let w = WebApp::start_with(|c| c.signin.second_factor = true).await;
    let tech = w.login("tech").await;
    let (s, page) = tech.get("/account/second-factor").await;
    assert_eq!(s, StatusCode::OK);
    let hex_secret = super::web::extract(&page, "name=\"secret\" value=\"", "\"").unwrap();
    assert!(page.contains("otpauth://totp/exogate:tech?secret="));
    let secret = hex::decode(&hex_secret).unwrap();
    // Without the CSRF token, or with a wrong code, nothing is stored.
    let r = tech
        .form(
            "/account/second-factor",
            &[
                ("csrf", "forged"),
                ("secret", &hex_secret),
                ("code", &code_now(&w, &secret)),
            ],
        )
        .await;
    assert_ne!(r.status(), StatusCode::OK);
    let r = tech
        .form(
            "/account/second-factor",
            &[
                ("csrf", &tech.csrf),
                ("secret", &hex_secret),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let user = exogate_core::ops::users::find_user(w.app.ctx(), &UserName::parse("tech").unwrap())
        .await
        .unwrap();
    assert_eq!(w.app.store.totp_get(user.id).await.unwrap(), None);
    let code = code_now(&w, &secret);
    let r = tech
        .form(
            "/account/second-factor",
            &[
                ("csrf", &tech.csrf),
                ("secret", &hex_secret),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let done = r.text().await.unwrap();
    assert!(done.contains("id=\"recovery-codes\""));
    assert!(w.app.store.totp_get(user.id).await.unwrap().is_some());
    // Now the technician's sign-in needs a code too; the enrolment's code is already spent.
    assert_eq!(login(&w, "tech", "").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&w, "tech", &code).await.0, StatusCode::UNAUTHORIZED);
    w.clock.advance_secs(30);
    assert_eq!(
        login(&w, "tech", &code_now(&w, &secret)).await.0,
        StatusCode::OK
    );
    w.stop().await;
}
