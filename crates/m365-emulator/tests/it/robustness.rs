//! Property tests: whatever a client sends to the Entra, consent, Graph and admin-centre
//! endpoints, the emulator answers with a 4xx it documents (or a success), never a 5xx or a
//! dropped connection.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

use crate::support::*;

fn tenant_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(CONTOSO.to_owned()),
        Just(TAILSPIN.to_owned()),
        Just("contoso.onmicrosoft.com".to_owned()),
        Just("common".to_owned()),
        // `.` and `..` are path segments, not tenant names: URLs normalise them away, so the
        // request would reach another path (a plain 404), not the endpoint under test.
        "[a-zA-Z0-9._-]{1,40}".prop_filter("not a dot segment", |s| s != "." && s != ".."),
        "\\PC{1,20}",
    ]
}

fn field_strategy() -> impl Strategy<Value = (String, String)> {
    let key = prop_oneof![
        Just("grant_type".to_owned()),
        Just("client_id".to_owned()),
        Just("client_secret".to_owned()),
        Just("scope".to_owned()),
        Just("client_assertion".to_owned()),
        Just("client_assertion_type".to_owned()),
        Just("redirect_uri".to_owned()),
        Just("state".to_owned()),
        Just("account".to_owned()),
        Just("action".to_owned()),
        "\\PC{0,12}",
    ];
    let value = prop_oneof![
        Just("client_credentials".to_owned()),
        Just(EXCHANGE_APP.to_owned()),
        Just(EXCHANGE_SECRET.to_owned()),
        Just(EXCHANGE_SCOPE.to_owned()),
        Just("urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
        Just("eyJhbGciOiJQUzI1NiJ9.e30.c2ln".to_owned()),
        Just("http://127.0.0.1:9/cb".to_owned()),
        Just(format!("admin:{CONTOSO}")),
        Just("accept".to_owned()),
        Just("cancel".to_owned()),
        "\\PC{0,40}",
    ];
    (key, value)
}

fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn entra_endpoints_never_answer_5xx() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let env = rt.block_on(Env::demo());
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        tenant_strategy(),
        proptest::collection::vec(field_strategy(), 0..8),
        0usize..5,
    );
    runner
        .run(&strategy, |(tenant, form, endpoint)| {
            let t = segment(&tenant);
            let (status, body) = rt.block_on(async {
                let req = match endpoint {
                    0 => env
                        .http
                        .post(env.url(&format!("/{t}/oauth2/v2.0/token")))
                        .form(&form),
                    1 => env
                        .http
                        .get(env.url(&format!("/{t}/adminconsent")))
                        .query(&form),
                    2 => env
                        .http
                        .post(env.url(&format!("/{t}/v2.0/adminconsent")))
                        .form(&form),
                    3 => env
                        .http
                        .post(env.url(&format!("/_admin/{t}/roles")))
                        .form(&form),
                    _ => env
                        .http
                        .get(env.url("/v1.0/organization"))
                        .header("authorization", format!("Bearer {}", form.len())),
                };
                let resp = req.send().await.expect("the emulator answers");
                let status = resp.status().as_u16();
                (status, resp.text().await.expect("body is read"))
            });
            prop_assert!(
                status < 500,
                "{status} for endpoint {endpoint}, tenant {tenant:?}, form {form:?}: {body}"
            );
            if endpoint == 0 && status >= 400 {
                let json: Value = serde_json::from_str(&body).expect("token errors are JSON");
                let code = json["error_codes"][0].as_u64().expect("an AADSTS code");
                let prefix = format!("AADSTS{code}: ");
                let description = json["error_description"].as_str().unwrap_or("");
                prop_assert!(description.starts_with(&prefix), "{description}");
            }
            Ok(())
        })
        .expect("no input makes the emulator fail");
}
