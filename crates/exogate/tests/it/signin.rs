//! Sign in with Microsoft through the emulator's sign-in tenant (`m365_emulator::signin`), at
//! the router level (a person's browser is a reqwest client carrying its cookies) and once in
//! Chromium: the group mapping gives the role, other tenants and tampered id tokens are refused,
//! removal from the groups refuses the next sign-in and ends sessions, `state` misuse is refused,
//! and every outcome is audited without a token in the log.

use exogate_core::UserName;
use m365_emulator::signin::demo;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::web::{Browser, WebApp, extract, session_cookie};

/// What the callback answered and what was sent there.
struct Outcome {
    status: StatusCode,
    body: String,
    /// The session cookie, when signed in.
    session: Option<String>,
    /// The callback URL Microsoft sent the browser to (code and state).
    callback: String,
    /// The browser's sign-in cookie.
    browser: String,
}

fn cookie_named(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

async fn account_oid(w: &WebApp, user: &str) -> String {
    let v: Value = w
        .http
        .get(format!("{}/_emulator/signin", w.emulator.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| {
            a["preferred_username"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{user}@"))
        })
        .map(|a| a["oid"].as_str().unwrap().to_owned())
        .expect("emulator account")
}

/// Starts a sign-in: the browser cookie and Microsoft's authorize URL.
async fn start(w: &WebApp, browser: Option<&str>) -> (String, url::Url) {
    let mut req = w.http.get(w.url("/login/microsoft"));
    if let Some(b) = browser {
        req = req.header("cookie", b);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = cookie_named(&r, "exogate_signin")
        .or_else(|| browser.map(str::to_owned))
        .expect("browser cookie");
    (cookie, url::Url::parse(&location(&r)).unwrap())
}

/// Picks `user` on the emulator's authorize page (with `client` instead of exogate's app when
/// given); returns the callback URL it redirects to.
async fn pick(w: &WebApp, authorize: &url::Url, user: &str, client: Option<&str>) -> String {
    let page = w.http.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains(&format!("id=\"pick-{user}\""))
    );
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    if let Some(c) = client {
        for (k, v) in &mut form {
            if k == "client_id" {
                *v = c.to_owned();
            }
        }
    }
    form.push(("account".into(), account_oid(w, user).await));
    let mut post = authorize.clone();
    post.set_query(None);
    let r = w.http.post(post).form(&form).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "{}",
        r.text().await.unwrap_or_default()
    );
    location(&r)
}

async fn callback(w: &WebApp, url: &str, browser: &str) -> (StatusCode, String, Option<String>) {
    let r = w
        .http
        .get(url)
        .header("cookie", browser)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let session = session_cookie(&r);
    (status, r.text().await.unwrap(), session)
}

/// The whole round trip for `user` in a fresh browser.
async fn sign_in(w: &WebApp, user: &str) -> Outcome {
    let (browser, authorize) = start(w, None).await;
    let cb = pick(w, &authorize, user, None).await;
    assert!(cb.starts_with(&w.url("/login/microsoft/callback?")), "{cb}");
    let (status, body, session) = callback(w, &cb, &browser).await;
    Outcome {
        status,
        body,
        session,
        callback: cb,
        browser,
    }
}

async fn browser_of(w: &WebApp, session: &str) -> Browser {
    let mut b = Browser {
        http: w.http.clone(),
        base: w.base.clone(),
        cookie: session.to_owned(),
        csrf: String::new(),
    };
    let page = b.get("/companies").await;
    assert_eq!(page.0, StatusCode::OK);
    b.csrf = extract(&page.1, "name=\"csrf\" value=\"", "\"").unwrap_or_default();
    b
}

async fn emulator_post(w: &WebApp, path: &str, body: Value) {
    let r = w
        .http
        .post(format!("{}/_emulator/signin{path}", w.emulator.base_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

/// Every audit row as one string per row.
async fn audit_rows(w: &WebApp) -> Vec<String> {
    w.app
        .store
        .list_audit(0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e.event.kind,
                e.event.actor_name.unwrap_or_default(),
                e.event.channel,
                e.event.detail
            )
        })
        .collect()
}

/// The reasons of refused Microsoft sign-ins, oldest first.
async fn refusals(w: &WebApp) -> Vec<String> {
    audit_rows(w)
        .await
        .iter()
        .filter(|r| r.starts_with("auth.login_failed") && r.contains("\"method\":\"microsoft\""))
        .map(|r| extract(r, "\"reason\":\"", "\"").unwrap())
        .collect()
}

fn assert_no_secrets(rows: &[String], outcomes: &[&Outcome]) {
    for row in rows {
        assert!(!row.contains("eyJ"), "a JWT in the audit log: {row}");
        assert!(
            !row.contains(demo::SECRET),
            "the client secret in the audit log"
        );
        for o in outcomes {
            let url = url::Url::parse(&o.callback).unwrap();
            for (k, v) in url.query_pairs() {
                assert!(!row.contains(v.as_ref()), "the {k} in the audit log: {row}");
            }
            let b = o.browser.split('=').nth(1).unwrap();
            assert!(!row.contains(b), "the browser cookie in the audit log");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsoft_signin_lands_with_the_mapped_role_and_is_audited() {
    let w = WebApp::start().await;
    let ada = sign_in(&w, "ada").await;
    assert_eq!(ada.status, StatusCode::SEE_OTHER, "{}", ada.body);
    let b = browser_of(&w, ada.session.as_deref().unwrap()).await;
    let user = w
        .app
        .store
        .get_user_by_name(&UserName::parse("ada@msp.example").unwrap())
        .await
        .unwrap()
        .expect("created at first sign-in");
    assert_eq!(user.role.as_str(), "admin");
    assert_eq!(user.entitlement.encode(), "*");
    assert!(
        user.password_hash.is_none(),
        "no password: cannot use the login form"
    );
    assert_eq!(b.get("/audit").await.0, StatusCode::OK, "an admin page");

    let tess = sign_in(&w, "tess").await;
    assert_eq!(tess.status, StatusCode::SEE_OTHER);
    let tech = w
        .app
        .store
        .get_user_by_name(&UserName::parse("tess@msp.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tech.role.as_str(), "technician");
    assert_eq!(tech.entitlement.encode(), "contoso,fabrikam");

    // A second sign-in finds the same user (linked by tenant + object id), no new one.
    let again = sign_in(&w, "ada").await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    let users = w.app.store.list_users().await.unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.name.as_str().starts_with("ada@"))
            .count(),
        1
    );

    // Keys rotate: a token under a new key id is accepted once the JWKS is fetched again.
    emulator_post(&w, "/rotate", json!({})).await;
    assert_eq!(sign_in(&w, "ada").await.status, StatusCode::SEE_OTHER);

    let rows = audit_rows(&w).await;
    let logins: Vec<_> = rows
        .iter()
        .filter(|r| r.starts_with("auth.login ") && r.contains(" microsoft "))
        .collect();
    assert_eq!(logins.len(), 4, "{rows:#?}");
    assert!(logins[0].contains("ada@msp.example") && logins[0].contains("\"mfa\":true"));
    assert!(logins[1].contains("tess@msp.example") && logins[1].contains("\"mfa\":false"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.starts_with("user.added") && r.contains(" microsoft "))
            .count(),
        2,
        "ada and tess created at their first sign-in"
    );
    assert_no_secrets(&rows, &[&ada, &tess, &again]);
    w.stop().await;
}

/// Two allowed tenants (the MSP's and a second one): exogate sends people to `organizations`,
/// where Microsoft lets anyone of any tenant sign in, so exogate's own `tid` check decides.
fn two_tenants(c: &mut exogate::config::Config) {
    c.signin
        .microsoft
        .as_mut()
        .unwrap()
        .tenants
        .push("5a1e5000-0000-4000-8000-0000000000aa".to_owned());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tenants_and_unmapped_people_are_refused() {
    let w = WebApp::start_with(two_tenants).await;
    let eve = sign_in(&w, "eve").await;
    assert_eq!(eve.status, StatusCode::FORBIDDEN);
    assert!(eve.body.contains("not allowed"), "{}", eve.body);
    assert!(eve.session.is_none());
    let otto = sign_in(&w, "otto").await;
    assert_eq!(otto.status, StatusCode::FORBIDDEN);
    assert!(otto.session.is_none());
    let users = w.app.store.list_users().await.unwrap();
    assert!(
        !users
            .iter()
            .any(|u| u.name.as_str().contains("eve") || u.name.as_str().contains("otto"))
    );
    assert_eq!(refusals(&w).await, ["tenant_not_allowed", "not_entitled"]);
    let rows = audit_rows(&w).await;
    assert_no_secrets(&rows, &[&eve, &otto]);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_id_tokens_are_refused() {
    let w = WebApp::start().await;
    let cases = [
        (json!({"bad_signature": true}), "bad_signature"),
        (json!({"wrong_nonce": true}), "wrong_nonce"),
        (json!({"wrong_audience": true}), "wrong_audience"),
        // `iss` names the other tenant while `tid` is the MSP's.
        (json!({"issuer_tenant": demo::OTHER_TENANT}), "wrong_issuer"),
    ];
    let mut outcomes = Vec::new();
    for (tamper, _) in &cases {
        emulator_post(&w, "/tamper", tamper.clone()).await;
        let o = sign_in(&w, "ada").await;
        assert_eq!(o.status, StatusCode::FORBIDDEN, "{tamper}: {}", o.body);
        assert!(o.session.is_none());
        outcomes.push(o);
    }
    let expected: Vec<&str> = cases.iter().map(|c| c.1).collect();
    assert_eq!(refusals(&w).await, expected);
    assert!(
        w.app
            .store
            .list_users()
            .await
            .unwrap()
            .iter()
            .all(|u| !u.name.as_str().starts_with("ada@"))
    );
    // Untampered, the same person gets in.
    emulator_post(&w, "/tamper", json!({})).await;
    assert_eq!(sign_in(&w, "ada").await.status, StatusCode::SEE_OTHER);
    let rows = audit_rows(&w).await;
    assert_no_secrets(&rows, &outcomes.iter().collect::<Vec<_>>());
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_from_the_group_is_refused_at_the_next_signin_and_sessions_end() {
    let w = WebApp::start().await;
    let max = sign_in(&w, "max").await;
    assert_eq!(max.status, StatusCode::SEE_OTHER);
    let b = browser_of(&w, max.session.as_deref().unwrap()).await;
    let oid = account_oid(&w, "max").await;
    let r = w
        .http
        .put(format!(
            "{}/_emulator/signin/accounts/{oid}/groups",
            w.emulator.base_url
        ))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let refused = sign_in(&w, "max").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refusals(&w).await, ["not_entitled"]);
    // The session from before is no longer honoured (the user is suspended).
    assert_ne!(b.get("/companies").await.0, StatusCode::OK);
    // Back in the group: in again, with the role.
    let r = w
        .http
        .put(format!(
            "{}/_emulator/signin/accounts/{oid}/groups",
            w.emulator.base_url
        ))
        .json(&json!([demo::MANAGERS]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let back = sign_in(&w, "max").await;
    assert_eq!(back.status, StatusCode::SEE_OTHER);
    browser_of(&w, back.session.as_deref().unwrap()).await;
    // A Microsoft user's session ends after `session_hours` (8) however active.
    w.clock.advance_secs(8 * 3600 + 60);
    let b = Browser {
        cookie: back.session.unwrap(),
        ..b
    };
    assert_ne!(
        b.get("/companies").await.0,
        StatusCode::OK,
        "capped at 8 hours"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_misuse_is_refused() {
    let w = WebApp::start().await;
    // A forged state.
    let (browser, _) = start(&w, None).await;
    let (s, _, session) = callback(
        &w,
        &w.url("/login/microsoft/callback?code=x&state=forged"),
        &browser,
    )
    .await;
    assert_eq!((s, session), (StatusCode::FORBIDDEN, None));

    // Replayed: a completed sign-in's callback again.
    let ok = sign_in(&w, "ada").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let (s, _, session) = callback(&w, &ok.callback, &ok.browser).await;
    assert_eq!((s, session), (StatusCode::FORBIDDEN, None));

    // Another browser's state: the victim's callback URL with the attacker's cookie.
    let (victim, authorize) = start(&w, None).await;
    let cb = pick(&w, &authorize, "ada", None).await;
    let (attacker, _) = start(&w, None).await;
    assert_ne!(victim, attacker);
    let (s, _, session) = callback(&w, &cb, &attacker).await;
    assert_eq!((s, session), (StatusCode::FORBIDDEN, None));
    // ... and the state is spent: the victim cannot finish with it either.
    let (s, _, _) = callback(&w, &cb, &victim).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A code issued to another client (registered with the same redirect URIs).
    let other = "5a1e5000-0000-4000-8000-00000000b0b0";
    emulator_post(
        &w,
        "/apps",
        json!({"client_id": other, "secret": "other-secret", "redirect_uris": ["http://127.0.0.1/*"]}),
    )
    .await;
    let (browser, authorize) = start(&w, None).await;
    let cb = pick(&w, &authorize, "ada", Some(other)).await;
    let (s, _, session) = callback(&w, &cb, &browser).await;
    assert_eq!((s, session), (StatusCode::FORBIDDEN, None));

    assert_eq!(
        refusals(&w).await,
        [
            "unknown_state",
            "unknown_state",
            "foreign_state",
            "unknown_state",
            "code_rejected"
        ]
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_accounts_can_be_switched_off() {
    let w = WebApp::start_with(|c| c.signin.local_accounts = false).await;
    let r = w
        .http
        .post(w.url("/login"))
        .form(&[("user", "admin"), ("password", WebApp::password("admin"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("local accounts are switched off")
    );
    let r = w
        .http
        .post(w.url("/api/v1/login"))
        .json(&json!({"user": "admin", "password": WebApp::password("admin")}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    insta::assert_json_snapshot!("api_local_accounts_off", r.json::<Value>().await.unwrap());
    let page = w
        .http
        .get(w.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("signin-microsoft") && !page.contains("id=\"password\""));
    assert_eq!(sign_in(&w, "ada").await.status, StatusCode::SEE_OTHER);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_with_microsoft_through_the_emulator() {
    let w = WebApp::start_with(two_tenants).await;
    let c = super::browser::Chrome::start("signin-microsoft").await;
    c.client.goto(&w.url("/login")).await.unwrap();
    c.wait_css("#signin-microsoft").await.click().await.unwrap();
    c.wait_css("#pick-max").await.click().await.unwrap();
    c.wait_css("#companies").await;
    c.shot("landed").await;
    let user = w
        .app
        .store
        .get_user_by_name(&UserName::parse("max@msp.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.role.as_str(), "manager");
    // Removed from the managers' group: the next sign-in is refused, and the open session ends.
    let oid = account_oid(&w, "max").await;
    let r = w
        .http
        .put(format!(
            "{}/_emulator/signin/accounts/{oid}/groups",
            w.emulator.base_url
        ))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    c.client.goto(&w.url("/login/microsoft")).await.unwrap();
    c.wait_css("#pick-max").await.click().await.unwrap();
    let err = c.wait_css("#login-error").await.text().await.unwrap();
    assert!(err.contains("none of the groups"), "{err}");
    c.client.goto(&w.url("/companies")).await.unwrap();
    c.wait_css("#user").await;
    // A person of another organisation is refused, in the browser too.
    c.client.goto(&w.url("/login/microsoft")).await.unwrap();
    c.wait_css("#pick-eve").await.click().await.unwrap();
    let err = c.wait_css("#login-error").await.text().await.unwrap();
    assert!(err.contains("not allowed"), "{err}");
    c.stop().await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_signin_and_an_admin_disabled_user_are_refused() {
    let w = WebApp::start().await;
    // A sign-in answered after its 10 minutes is refused.
    let (browser, authorize) = start(&w, None).await;
    let cb = pick(&w, &authorize, "ada", None).await;
    w.clock.advance_secs(11 * 60);
    let (s, _, session) = callback(&w, &cb, &browser).await;
    assert_eq!((s, session), (StatusCode::FORBIDDEN, None));
    // An admin disables a Microsoft user: being in the groups does not re-enable it.
    assert_eq!(sign_in(&w, "tess").await.status, StatusCode::SEE_OTHER);
    let r = w
        .app
        .store
        .get_user_by_name(&UserName::parse("tess@msp.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    let actor = exogate_core::Actor {
        user: w
            .app
            .store
            .get_user_by_name(&UserName::parse("admin").unwrap())
            .await
            .unwrap()
            .unwrap(),
        channel: exogate_core::Channel::Web,
    };
    exogate_core::ops::users::update_user(
        w.app.ctx(),
        exogate_core::ops::users::Admin::User(&actor),
        &r.name,
        exogate_core::ops::users::UserUpdate {
            disabled: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let again = sign_in(&w, "tess").await;
    assert_eq!(again.status, StatusCode::FORBIDDEN);
    assert!(w.app.store.get_user(r.id).await.unwrap().unwrap().disabled);
    assert_eq!(refusals(&w).await, ["unknown_state", "disabled"]);
    w.stop().await;
}
