//! Exchange fidelity tests: raw reqwest + `serde_json::Value` against the emulator's
//! `InvokeCommand` and `$batch`, one test per row of the authorization matrix and the status
//! table (`docs/MICROSOFT.md#authorization`, `#status-codes`), per no-op case
//! (`#no-op-warnings`), and per quirk of `#cmdlets`, `#paging` and `#identities`. Worlds are
//! built through the control API.

use serde_json::{Value, json};

use crate::support::{
    CONNECT_APP, CONNECT_SECRET, CONTOSO, EXCHANGE_APP, EXCHANGE_SCOPE, Env, FABRIKAM,
};

pub const CONTOSO_DOMAIN: &str = "contoso.onmicrosoft.com";

/// A raw HTTP answer.
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    /// `@adminapi.warnings` of a 200 envelope.
    pub fn warnings(&self) -> Vec<String> {
        let v = self.json();
        v["@adminapi.warnings"]
            .as_array()
            .unwrap_or_else(|| panic!("@adminapi.warnings is an array: {v}"))
            .iter()
            .map(|w| w.as_str().expect("warning is a string").to_owned())
            .collect()
    }
    pub fn value(&self) -> Vec<Value> {
        let v = self.json();
        v["value"]
            .as_array()
            .unwrap_or_else(|| panic!("value is an array: {v}"))
            .clone()
    }
}

/// An emulator running the demo world, with the demo directory in Contoso and a Contoso token.
pub struct Ex {
    pub env: Env,
    pub token: String,
}

pub fn demo_seed() -> Value {
    serde_json::to_value(m365_emulator::exchange::demo_directory_seed(CONTOSO_DOMAIN))
        .expect("seed serializes")
}

impl Ex {
    pub async fn demo() -> Ex {
        let env = Env::demo().await;
        let (s, b) = env
            .control(
                "PUT",
                &format!("/exchange/{CONTOSO}/directory"),
                Some(demo_seed()),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let token = env.exchange_token(CONTOSO).await;
        Ex { env, token }
    }

    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = self
            .env
            .http
            .post(self.env.url(path))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("request is sent");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.expect("body is read").to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// InvokeCommand on `tenant` with `token`, `query` (e.g. `?$select=Name`) and `headers`.
    pub async fn invoke_as(
        &self,
        tenant: &str,
        token: Option<&str>,
        query: &str,
        cmdlet: &str,
        params: Value,
        headers: &[(&str, &str)],
    ) -> Resp {
        let body = json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}});
        self.post(
            &format!("/adminapi/beta/{tenant}/InvokeCommand{query}"),
            token,
            body.to_string().into_bytes(),
            headers,
        )
        .await
    }

    /// InvokeCommand on Contoso with the Exchange Administrator token.
    pub async fn cmd(&self, cmdlet: &str, params: Value) -> Resp {
        self.invoke_as(CONTOSO, Some(&self.token), "", cmdlet, params, &[])
            .await
    }

    pub async fn knobs(&self, tenant: Option<&str>, patch: Value) {
        let path = match tenant {
            Some(t) => format!("/knobs/{t}"),
            None => "/knobs".to_owned(),
        };
        let (s, b) = self.env.control("PUT", &path, Some(patch)).await;
        assert_eq!(s, 200, "{b}");
    }

    /// Full Access rows (as `User` strings) on `mailbox`, SELF included.
    pub async fn full_access_users(&self, mailbox: &str) -> Vec<String> {
        let r = self
            .cmd("Get-MailboxPermission", json!({"Identity": mailbox}))
            .await;
        assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
        r.value()
            .iter()
            .map(|row| row["User"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn is_nul_body(r: &Resp) -> bool {
    !r.body.is_empty() && r.body.iter().all(|b| *b == 0)
}

fn assert_family_a(r: &Resp, status: u16, exception: &str) {
    assert_eq!(
        r.status,
        status,
        "status; body {}",
        String::from_utf8_lossy(&r.body)
    );
    let v = r.json();
    assert!(v["error"]["code"].is_string(), "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    let details = v["error"]["details"][0]["message"].as_str().unwrap_or("");
    assert!(
        details.contains(exception),
        "details name the exception: {v}"
    );
    assert_eq!(
        v["error"]["innererror"]["internalexception"]["type"], exception,
        "{v}"
    );
    assert!(v["@adminapi.warnings"].is_array(), "{v}");
    let short = exception.rsplit('.').next().unwrap_or_default();
    assert_eq!(r.header("x-exceptiontype"), Some(short));
}

const NOT_FOUND: &str = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException";
const AMBIGUOUS: &str = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException";
const BINDING: &str = "System.Management.Automation.ParameterBindingException";

// ------------------------------------ authorization matrix (docs/MICROSOFT.md#authorization)

#[tokio::test]
async fn token_without_manage_as_app_gets_401_with_diagnostics() {
    let ex = Ex::demo().await;
    // The connect app is consented in Contoso but holds no Exchange permission: a role-less token.
    let token = ex
        .env
        .access_token(CONTOSO, CONNECT_APP, CONNECT_SECRET, EXCHANGE_SCOPE)
        .await;
    let r = ex
        .invoke_as(
            CONTOSO,
            Some(&token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer "));
    assert!(
        r.header("x-ms-diagnostics")
            .unwrap()
            .contains("The token contains no permissions")
    );
}

#[tokio::test]
async fn consent_without_directory_role_gets_403_nul_body() {
    let ex = Ex::demo().await;
    let token = ex.env.exchange_token(FABRIKAM).await;
    let r = ex
        .invoke_as(
            FABRIKAM,
            Some(&token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(is_nul_body(&r), "NUL-byte body");
    assert!(r.header("content-type").is_none());
    assert_eq!(r.header("content-encoding"), Some("gzip"));
}

#[tokio::test]
async fn permission_and_role_get_200_envelope_with_headers() {
    let ex = Ex::demo().await;
    let r = ex.cmd("Get-OrganizationConfig", json!({})).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["adminapi.warnings@odata.type"], "#Collection(String)");
    assert_eq!(v["@adminapi.warnings"], json!([]));
    assert!(
        v["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#Collection(Exchange.GenericHashTable)")
    );
    assert_eq!(v["value"][0]["Identity"], CONTOSO_DOMAIN);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json;odata.metadata=minimal")
    );
    assert_eq!(r.header("odata-version"), Some("4.0"));
    assert!(r.header("request-id").is_some());
    assert_eq!(r.header("x-ms-appid"), Some(EXCHANGE_APP));
    assert_eq!(r.header("x-concurrencycount"), Some("0"));
    assert!(r.header("x-calculatedbetarget").is_some());
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert!(
        r.header("rate-limit-limit").is_none(),
        "Rate-Limit-* only per knob"
    );
    ex.knobs(None, json!({"rate_limit_headers": true})).await;
    let r = ex.cmd("Get-OrganizationConfig", json!({})).await;
    assert_eq!(r.header("rate-limit-limit"), Some("30000"));
    assert!(r.header("rate-limit-reset").is_some());
}

#[tokio::test]
async fn read_only_role_may_only_run_get_cmdlets() {
    let ex = Ex::demo().await;
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/tenants/{FABRIKAM}/service-principals/{EXCHANGE_APP}/roles/f2ef992c-3afb-46b9-b7cf-a126ee74c451"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let token = ex.env.exchange_token(FABRIKAM).await;
    let r = ex
        .invoke_as(
            FABRIKAM,
            Some(&token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    let r = ex
        .invoke_as(
            FABRIKAM,
            Some(&token),
            "",
            "Add-RecipientPermission",
            json!({"Identity":"x","Trustee":"y","AccessRights":["SendAs"],"Confirm":false}),
            &[],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(is_nul_body(&r));
}

#[tokio::test]
async fn missing_garbage_and_wrong_audience_tokens_get_401() {
    let ex = Ex::demo().await;
    let graph = ex.env.graph_token(CONTOSO).await;
    for token in [None, Some("not-a-jwt"), Some(graph.as_str())] {
        let r = ex
            .invoke_as(CONTOSO, token, "", "Get-OrganizationConfig", json!({}), &[])
            .await;
        assert_eq!(r.status, 401, "token {token:?}");
        assert!(r.header("www-authenticate").is_some());
        assert!(r.header("x-ms-diagnostics").is_some());
    }
    // A forged token: Contoso's claims with a tampered signature.
    let mut forged = ex.token.clone();
    forged.pop();
    forged.push(if ex.token.ends_with('A') { 'B' } else { 'A' });
    let r = ex
        .invoke_as(
            CONTOSO,
            Some(&forged),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn expired_token_gets_401() {
    let ex = Ex::demo().await;
    ex.env.freeze_clock().await;
    let token = ex.env.exchange_token(CONTOSO).await;
    ex.env.advance_clock(3600.0).await;
    let r = ex
        .invoke_as(
            CONTOSO,
            Some(&token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("x-ms-diagnostics").unwrap().contains("expired"));
}

#[tokio::test]
async fn token_for_another_tenant_gets_401_and_domain_urls_work() {
    let ex = Ex::demo().await;
    let r = ex
        .invoke_as(
            FABRIKAM,
            Some(&ex.token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = ex
        .invoke_as(
            CONTOSO_DOMAIN,
            Some(&ex.token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn role_propagation_window_gives_403_even_with_a_fresh_token() {
    let ex = Ex::demo().await;
    ex.env.freeze_clock().await;
    ex.knobs(Some(FABRIKAM), json!({"role_propagation_delay_secs": 120}))
        .await;
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/tenants/{FABRIKAM}/service-principals/{EXCHANGE_APP}/roles/exchange-admin"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let token = ex.env.exchange_token(FABRIKAM).await;
    let ex = &ex;
    let probe = |t: String| async move {
        ex.invoke_as(
            FABRIKAM,
            Some(&t),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[],
        )
        .await
    };
    let r = probe(token.clone()).await;
    assert_eq!(r.status, 403);
    assert!(is_nul_body(&r));
    ex.env.advance_clock(121.0).await;
    assert_eq!(probe(token).await.status, 200);
}

// ------------------------------------- status rows and errors (docs/MICROSOFT.md#status-codes)

#[tokio::test]
async fn unknown_cmdlet_gets_403_nul_body() {
    let ex = Ex::demo().await;
    let r = ex.cmd("Get-NoSuchThing", json!({})).await;
    assert_eq!(r.status, 403);
    assert!(is_nul_body(&r));
}

#[tokio::test]
async fn not_found_is_404_family_a_or_400_per_knob() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd("Get-Mailbox", json!({"Identity": "nobody@contoso.com"}))
        .await;
    assert_family_a(&r, 404, NOT_FOUND);
    let v = r.json();
    assert_eq!(v["error"]["code"], "NotFound");
    assert_eq!(v["error"]["message"], "Error executing cmdlet");
    let details = v["error"]["details"][0]["message"].as_str().unwrap();
    assert!(
        details.starts_with("Ex6F9304|"),
        "Id|Type|Message: {details}"
    );
    assert!(details.contains("'nobody@contoso.com' couldn't be found"));
    ex.knobs(
        None,
        json!({"not_found_status": 400, "error_message": "Invalid Operation", "details_format": "empty_id_type_message"}),
    )
    .await;
    let r = ex
        .cmd("Get-Mailbox", json!({"Identity": "nobody@contoso.com"}))
        .await;
    assert_family_a(&r, 400, NOT_FOUND);
    let v = r.json();
    assert_eq!(v["error"]["message"], "Invalid Operation");
    assert!(
        v["error"]["details"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("|{NOT_FOUND}|"))
    );
    ex.knobs(None, json!({"details_format": "nested_json"}))
        .await;
    let r = ex
        .cmd("Get-Mailbox", json!({"Identity": "nobody@contoso.com"}))
        .await;
    let nested: Value =
        serde_json::from_str(r.json()["error"]["details"][0]["message"].as_str().unwrap()).unwrap();
    assert_eq!(nested["TypeName"], NOT_FOUND);
}

#[tokio::test]
async fn unknown_parameter_gets_400_naming_it() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd("Get-Mailbox", json!({"Identity": "alice", "Bogus": 1}))
        .await;
    assert_family_a(&r, 400, BINDING);
    assert_eq!(r.json()["error"]["code"], "BadRequest");
    assert!(r.json().to_string().contains("'Bogus'"));
}

#[tokio::test]
async fn wrong_parameter_types_and_bad_enums_get_400() {
    let ex = Ex::demo().await;
    for (cmdlet, params, named) in [
        ("Get-Mailbox", json!({"Identity": ["a", "b"]}), "Identity"),
        ("Get-Mailbox", json!({"ResultSize": "lots"}), "ResultSize"),
        (
            "Add-MailboxPermission",
            json!({"Identity":"sales","User":"bob","AccessRights":["FullAccess"],"AutoMapping":"yes"}),
            "AutoMapping",
        ),
        (
            "Add-MailboxPermission",
            json!({"Identity":"sales","User":"bob","AccessRights":["Everything"]}),
            "AccessRights",
        ),
        (
            "Set-Mailbox",
            json!({"Identity":"sales","GrantSendOnBehalfTo":{"add":"bob"}}),
            "GrantSendOnBehalfTo",
        ),
    ] {
        let r = ex.cmd(cmdlet, params).await;
        assert_family_a(&r, 400, BINDING);
        assert!(r.json().to_string().contains(named), "{named}");
    }
    let r = ex.cmd("Get-Mailbox", json!("not an object")).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn get_mailbox_permission_without_identity_is_400() {
    let ex = Ex::demo().await;
    let r = ex.cmd("Get-MailboxPermission", json!({})).await;
    assert_family_a(&r, 400, "System.InvalidOperationException");
}

#[tokio::test]
async fn malformed_json_and_missing_cmdlet_input_get_400_not_500() {
    let ex = Ex::demo().await;
    for body in [
        b"{not json".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        br#"{"CmdletInput":{"Parameters":{}}}"#.to_vec(),
        Vec::new(),
    ] {
        let r = ex
            .post(
                &format!("/adminapi/beta/{CONTOSO}/InvokeCommand"),
                Some(&ex.token),
                body.clone(),
                &[],
            )
            .await;
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&body));
        assert!(r.json()["error"]["code"] == "BadRequest");
    }
}

#[tokio::test]
async fn body_over_10_mb_gets_413() {
    let ex = Ex::demo().await;
    let big = vec![b' '; 10 * 1024 * 1024 + 1];
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/InvokeCommand"),
            Some(&ex.token),
            big,
            &[],
        )
        .await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn concurrency_cap_gives_429_family_c_with_retry_after() {
    let ex = Ex::demo().await;
    ex.knobs(
        Some(CONTOSO),
        json!({"tenant_concurrency_cap": 1, "retry_after_secs": 2.5, "latency_ms": {"Get-Mailbox": 400}}),
    )
    .await;
    let slow = ex.cmd("Get-Mailbox", json!({"Identity":"alice"}));
    let check = async {
        // Wait until the slow call is in flight (a signal from the server's counters).
        loop {
            let (_, c) = ex.env.control("GET", "/counters", None).await;
            if c["in_flight"][CONTOSO] == 1 {
                break;
            }
            tokio::task::yield_now().await;
        }
        ex.cmd("Get-OrganizationConfig", json!({})).await
    };
    let (slow, r) = tokio::join!(slow, check);
    assert_eq!(slow.status, 200);
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2.500"));
    assert!(
        String::from_utf8_lossy(&r.body).contains("maximum number of concurrent requests"),
        "family C text"
    );
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let (_, c) = ex.env.control("GET", "/counters", None).await;
    assert_eq!(c["throttled"][CONTOSO], 1);
    assert_eq!(c["max_in_flight"][CONTOSO], 1);
}

#[tokio::test]
async fn rate_budget_gives_429_until_the_clock_refills_it() {
    let ex = Ex::demo().await;
    ex.env.freeze_clock().await;
    ex.knobs(
        Some(CONTOSO),
        json!({"tenant_rate_per_sec": 1.0, "tenant_rate_burst": 2.0}),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(
            ex.cmd("Get-OrganizationConfig", json!({})).await.status,
            200
        );
    }
    let r = ex.cmd("Get-OrganizationConfig", json!({})).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert_eq!(r.json()["error"]["code"], "TooManyRequests");
    ex.env.advance_clock(1.0).await;
    assert_eq!(
        ex.cmd("Get-OrganizationConfig", json!({})).await.status,
        200
    );
}

#[tokio::test]
async fn error_5xx_rate_answers_503_and_applies_nothing() {
    let ex = Ex::demo().await;
    ex.knobs(None, json!({"error_5xx_rate": 1.0})).await;
    let r = ex
        .cmd(
            "Add-RecipientPermission",
            json!({"Identity":"sales","Trustee":"bob","AccessRights":["SendAs"],"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 503);
    let (_, log) = ex.env.control("GET", "/apply-log", None).await;
    assert_eq!(log["entries"], json!([]));
}

#[tokio::test]
async fn apply_then_drop_applies_the_write_and_gives_no_answer() {
    let ex = Ex::demo().await;
    ex.knobs(None, json!({"apply_then_drop_rate": 1.0})).await;
    let body = json!({"CmdletInput":{"CmdletName":"Add-MailboxPermission","Parameters":{
        "Identity":"support","User":"carol@contoso.onmicrosoft.com","AccessRights":["FullAccess"],"AutoMapping":false,"Confirm":false}}});
    let sent = ex
        .env
        .http
        .post(
            ex.env
                .url(&format!("/adminapi/beta/{CONTOSO}/InvokeCommand")),
        )
        .bearer_auth(&ex.token)
        .json(&body)
        .send()
        .await;
    let failed = match sent {
        Err(_) => true,
        Ok(resp) => resp.bytes().await.is_err(),
    };
    assert!(
        failed,
        "the connection is dropped without a complete answer"
    );
    ex.knobs(None, json!({"apply_then_drop_rate": 0.0})).await;
    let users = ex.full_access_users("support").await;
    assert!(users.contains(&"carol@contoso.onmicrosoft.com".to_owned()));
    let (_, log) = ex
        .env
        .control("GET", &format!("/apply-log?tenant={CONTOSO}"), None)
        .await;
    assert_eq!(log["entries"][0]["change"]["op"], "add");
    assert_eq!(log["entries"][0]["change"]["right"], "FullAccess");
}

// ------------------------------------------- idempotency (docs/MICROSOFT.md#no-op-warnings)

#[tokio::test]
async fn add_mailbox_permission_duplicate_is_silent_or_warns_per_knob() {
    let ex = Ex::demo().await;
    let p = json!({"Identity":"sales","User":"alice@contoso.onmicrosoft.com","AccessRights":["FullAccess"],"InheritanceType":"all","AutoMapping":false,"Confirm":false});
    let r = ex.cmd("Add-MailboxPermission", p.clone()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.warnings(), Vec::<String>::new());
    assert_eq!(r.value()[0]["AccessRights"], json!(["FullAccess"]));
    ex.knobs(
        None,
        json!({"add_mailbox_permission_duplicate_warning": true}),
    )
    .await;
    let r = ex.cmd("Add-MailboxPermission", p).await;
    assert_eq!(r.status, 200);
    assert!(r.warnings()[0].contains("already present"));
    // The re-add did not change the stored automapping (alice was granted with automapping on).
    let (_, truth) = ex
        .env
        .control("GET", &format!("/exchange/{CONTOSO}/objects/sales"), None)
        .await;
    let alice = truth["full_access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == "alice@contoso.onmicrosoft.com")
        .unwrap();
    assert_eq!(alice["automapping"], true);
}

#[tokio::test]
async fn remove_mailbox_permission_absent_warns() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Remove-MailboxPermission",
            json!({"Identity":"sales","User":"bob@contoso.onmicrosoft.com","AccessRights":["FullAccess"],"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.value(), Vec::<Value>::new());
    assert!(r.warnings()[0].contains("because the ACE doesn't exist on the object."));
}

#[tokio::test]
async fn add_recipient_permission_duplicate_warns() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Add-RecipientPermission",
            json!({"Identity":"support","Trustee":"bob@contoso.onmicrosoft.com","AccessRights":["SendAs"],"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.warnings()[0].contains("The appropriate access control entry is already present"));
}

#[tokio::test]
async fn remove_recipient_permission_absent_warns() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Remove-RecipientPermission",
            json!({"Identity":"support","Trustee":"carol@contoso.onmicrosoft.com","AccessRights":["SendAs"],"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.warnings()[0].contains("because the ACE isn't present"));
}

#[tokio::test]
async fn send_on_behalf_noop_add_and_remove_warn_not_modified() {
    let ex = Ex::demo().await;
    for params in [
        json!({"Identity":"sales","GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","add":"carol@contoso.onmicrosoft.com"},"Confirm":false}),
        json!({"Identity":"sales","GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","Remove":["bob"]},"Confirm":false}),
    ] {
        let r = ex.cmd("Set-Mailbox", params).await;
        assert_eq!(r.status, 200);
        assert!(r.warnings()[0].contains(
            "The command completed successfully but no settings of 'sales' have been modified."
        ));
    }
}

// ------------------------------------ cmdlet semantics and quirks (docs/MICROSOFT.md#cmdlets)

#[tokio::test]
async fn send_on_behalf_add_keeps_existing_delegates_reported_by_object_id() {
    let ex = Ex::demo().await;
    let before = ex
        .cmd("Get-Mailbox", json!({"Identity":"sales"}))
        .await
        .value();
    let existing = before[0]["GrantSendOnBehalfTo"].clone();
    let carol = ex
        .cmd("Get-Mailbox", json!({"Identity":"carol"}))
        .await
        .value();
    // carol's Exchange Name is her object id, so Exchange reports the delegate as a GUID.
    assert_eq!(existing, json!([carol[0]["ExternalDirectoryObjectId"]]));
    assert_eq!(
        before[0]["GrantSendOnBehalfTo@odata.type"],
        "#Collection(String)"
    );
    let r = ex
        .cmd(
            "Set-Mailbox",
            json!({"Identity":"sales","GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","add":"bob@contoso.onmicrosoft.com"},"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.value(), Vec::<Value>::new());
    let after = ex
        .cmd("Get-Mailbox", json!({"Identity":"sales"}))
        .await
        .value();
    assert_eq!(after[0]["GrantSendOnBehalfTo"], json!([existing[0], "bob"]));
    // An array overwrites; null clears; an unknown delegate is a not-found error.
    let r = ex
        .cmd(
            "Set-Mailbox",
            json!({"Identity":"sales","GrantSendOnBehalfTo":["alice"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = ex
        .cmd("Get-Mailbox", json!({"Identity":"sales"}))
        .await
        .value();
    assert_eq!(v[0]["GrantSendOnBehalfTo"], json!(["alice"]));
    let r = ex
        .cmd(
            "Set-Mailbox",
            json!({"Identity":"sales","GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","add":"ghost@contoso.com"}}),
        )
        .await;
    assert_family_a(&r, 404, NOT_FOUND);
    let r = ex
        .cmd(
            "Set-Mailbox",
            json!({"Identity":"sales","GrantSendOnBehalfTo":null}),
        )
        .await;
    assert_eq!(r.status, 200);
    let v = ex
        .cmd("Get-Mailbox", json!({"Identity":"sales"}))
        .await
        .value();
    assert_eq!(v[0]["GrantSendOnBehalfTo"], json!([]));
}

#[tokio::test]
async fn identity_resolves_every_identifier_case_insensitively() {
    let ex = Ex::demo().await;
    let alice = ex
        .cmd("Get-Mailbox", json!({"Identity":"alice"}))
        .await
        .value()[0]
        .clone();
    for id in [
        "ALICE",
        "Alice@Contoso.OnMicrosoft.com",
        "smtp:alice@contoso.onmicrosoft.com",
        alice["Guid"].as_str().unwrap(),
        &alice["ExchangeObjectId"].as_str().unwrap().to_uppercase(),
        alice["ExternalDirectoryObjectId"].as_str().unwrap(),
    ] {
        let r = ex.cmd("get-mailbox", json!({"identity": id})).await;
        assert_eq!(r.status, 200, "{id}");
        assert_eq!(r.value()[0]["Name"], "alice", "{id}");
        assert_eq!(r.value()[0]["Identity"], "alice");
    }
    assert_eq!(alice["Guid@odata.type"], "#Guid");
    assert_eq!(alice["EmailAddresses@odata.type"], "#Collection(String)");
    assert_eq!(alice["RecipientTypeDetails"], "UserMailbox");
}

#[tokio::test]
async fn ambiguous_identity_is_an_error() {
    let ex = Ex::demo().await;
    let (s, b) = ex
        .env
        .control(
            "POST",
            &format!("/exchange/{CONTOSO}/objects"),
            Some(json!({"type":"user_mailbox","name":"Alice Two","alias":"alice","upn":"alice2@contoso.onmicrosoft.com"})),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let r = ex.cmd("Get-Mailbox", json!({"Identity":"alice"})).await;
    assert_family_a(&r, 400, AMBIGUOUS);
    let r = ex
        .cmd(
            "Add-MailboxPermission",
            json!({"Identity":"sales","User":"alice","AccessRights":["FullAccess"]}),
        )
        .await;
    assert_family_a(&r, 400, AMBIGUOUS);
    // The UPN is still unique.
    let r = ex
        .cmd(
            "Get-Mailbox",
            json!({"Identity":"alice@contoso.onmicrosoft.com"}),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn mailbox_permission_rows_self_first_comma_joined_no_automapping() {
    let ex = Ex::demo().await;
    let rows = ex
        .cmd("Get-MailboxPermission", json!({"Identity":"sales"}))
        .await
        .value();
    assert_eq!(rows[0]["User"], "NT AUTHORITY\\SELF");
    assert_eq!(rows[0]["UserSid"], "S-1-5-10");
    assert_eq!(
        rows[0]["AccessRights"],
        json!(["FullAccess, ReadPermission"])
    );
    assert_eq!(
        rows[1]["AccessRights"],
        json!(["FullAccess, ExternalAccount, ReadPermission"])
    );
    assert_eq!(rows[1]["UserSid"], "S-1-5-10", "SELF can appear twice");
    for row in &rows {
        for key in row.as_object().unwrap().keys() {
            assert!(!key.to_lowercase().contains("automapping"), "{key}");
        }
        assert_eq!(row["AccessRights@odata.type"], "#Collection(String)");
    }
    assert!(
        rows.iter()
            .any(|r| r["User"] == "alice@contoso.onmicrosoft.com")
    );
    // User filter.
    let rows = ex
        .cmd(
            "Get-MailboxPermission",
            json!({"Identity":"sales","User":"alice@contoso.onmicrosoft.com"}),
        )
        .await
        .value();
    assert_eq!(rows.len(), 1);
    // The deleted user's grant on support is an orphan shown by raw SID.
    let users = ex.full_access_users("support").await;
    assert!(
        users.iter().any(|u| u.starts_with("S-1-5-21-")),
        "{users:?}"
    );
    assert!(users.contains(&"Sales Team".to_owned()));
}

#[tokio::test]
async fn automapping_true_with_non_full_access_is_invalid_operation() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Add-MailboxPermission",
            json!({"Identity":"sales","User":"bob","AccessRights":["ReadPermission"],"AutoMapping":true}),
        )
        .await;
    assert_family_a(&r, 400, "System.InvalidOperationException");
    assert!(
        r.json().to_string().contains(
            "AutoMapping=true option can only be used together with FullAccess permission"
        )
    );
}

#[tokio::test]
async fn automapping_is_stored_but_never_returned() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Add-MailboxPermission",
            json!({"Identity":"support","User":"bob","AccessRights":"FullAccess","AutoMapping":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(!r.json().to_string().to_lowercase().contains("automapping"));
    for (cmdlet, params) in [
        ("Get-MailboxPermission", json!({"Identity":"support"})),
        ("Get-Mailbox", json!({"Identity":"support"})),
        ("Get-RecipientPermission", json!({"Identity":"support"})),
    ] {
        let body = ex
            .cmd(cmdlet, params)
            .await
            .json()
            .to_string()
            .to_lowercase();
        assert!(!body.contains("automapping"), "{cmdlet}");
    }
    let (_, truth) = ex
        .env
        .control("GET", &format!("/exchange/{CONTOSO}/objects/support"), None)
        .await;
    let bob = truth["full_access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"] == "bob@contoso.onmicrosoft.com")
        .cloned()
        .unwrap();
    assert_eq!(bob["automapping"], false);
}

#[tokio::test]
async fn five_hundred_ace_limit() {
    let ex = Ex::demo().await;
    let mut objects = vec![json!({"type":"shared_mailbox","name":"big"})];
    for i in 0..500 {
        objects.push(json!({"type":"user","name":format!("limit{i:03}")}));
    }
    let grants: Vec<Value> = (0..499)
        .map(|i| json!({"mailbox":"big","trustee":format!("limit{i:03}"),"right":"FullAccess"}))
        .collect();
    let (s, b) = ex
        .env
        .control(
            "PUT",
            &format!("/exchange/{CONTOSO}/directory"),
            Some(json!({"objects": objects, "grants": grants})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    // SELF + 499 grants = 500 ACEs: the 501st is refused.
    let r = ex
        .cmd(
            "Add-MailboxPermission",
            json!({"Identity":"big","User":"limit499","AccessRights":["FullAccess"]}),
        )
        .await;
    assert_family_a(&r, 400, "System.InvalidOperationException");
    assert!(r.json().to_string().contains("500"));
    // Adding a right to an existing ACE is still allowed.
    let r = ex
        .cmd(
            "Add-MailboxPermission",
            json!({"Identity":"big","User":"limit000","AccessRights":["ReadPermission"],"AutoMapping":false}),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn recipient_permission_tenant_wide_with_trustee_filter_and_is_inherited_knob() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd("Get-RecipientPermission", json!({"ResultSize":"Unlimited"}))
        .await;
    let rows = r.value();
    // SELF on each of the 5 mailboxes + bob on support + alice on sales.
    assert_eq!(rows.len(), 7, "{rows:?}");
    assert!(rows.iter().all(|r| r["IsInherited"] == false));
    assert!(rows.iter().any(|r| r["TrusteeSidString"] == "S-1-5-10"));
    let rows = ex
        .cmd(
            "Get-RecipientPermission",
            json!({"Trustee":"bob@contoso.onmicrosoft.com"}),
        )
        .await
        .value();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Identity"], "support");
    assert_eq!(rows[0]["AccessRights"], json!(["SendAs"]));
    assert_eq!(rows[0]["AccessControlType"], "Allow");
    ex.knobs(None, json!({"recipient_permission_is_inherited": false}))
        .await;
    let rows = ex
        .cmd("Get-RecipientPermission", json!({"Identity":"support"}))
        .await
        .value();
    assert!(rows.iter().all(|r| r.get("IsInherited").is_none()));
}

#[tokio::test]
async fn select_limits_properties() {
    let ex = Ex::demo().await;
    let r = ex
        .invoke_as(
            CONTOSO,
            Some(&ex.token),
            "?$select=UserPrincipalName,Guid",
            "Get-Mailbox",
            json!({"Identity":"bob"}),
            &[],
        )
        .await;
    let row = r.value()[0].as_object().unwrap().clone();
    let mut keys: Vec<&str> = row.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["Guid", "Guid@odata.type", "UserPrincipalName"]);
}

#[tokio::test]
async fn result_size_default_truncates_with_warning_and_unlimited_does_not() {
    let ex = Ex::demo().await;
    let (s, _) = ex
        .env
        .control(
            "PUT",
            &format!("/exchange/{CONTOSO}/directory"),
            Some(json!({"generate":{"mailboxes":1100,"seed":1}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, truth) = ex
        .env
        .control("GET", &format!("/exchange/{CONTOSO}/permissions"), None)
        .await;
    let live = truth["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["trustee_sid"] == "S-1-5-10" && p["right"] == "SendAs")
        .count();
    let r = ex.cmd("Get-Mailbox", json!({})).await;
    assert_eq!(r.value().len(), 1000);
    assert!(r.json().get("@odata.nextLink").is_none());
    let w = r.warnings();
    assert!(
        w[0].ends_with("increase the value for the ResultSize parameter."),
        "{w:?}"
    );
    // Unlimited: no warning; the default page of 1000 continues through nextLink.
    let r = ex
        .cmd("Get-Mailbox", json!({"ResultSize":"unlimited"}))
        .await;
    assert_eq!(r.value().len(), 1000);
    assert!(r.warnings().is_empty());
    let link = r.json()["@odata.nextLink"].as_str().unwrap().to_owned();
    let body =
        json!({"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{"ResultSize":"unlimited"}}});
    let rest = ex
        .post(
            &link[ex.env.url("").len()..],
            Some(&ex.token),
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(rest.value().len(), live - 1000);
    assert!(rest.json().get("@odata.nextLink").is_none());
    let r = ex
        .cmd(
            "Get-Mailbox",
            json!({"ResultSize": 3, "RecipientTypeDetails": ["sharedmailbox"]}),
        )
        .await;
    assert_eq!(r.value().len(), 3);
    assert!(
        r.value()
            .iter()
            .all(|m| m["RecipientTypeDetails"] == "SharedMailbox")
    );
}

#[tokio::test]
async fn paging_returns_every_row_and_skiptokens_expire() {
    let ex = Ex::demo().await;
    let (s, _) = ex
        .env
        .control(
            "PUT",
            &format!("/exchange/{CONTOSO}/directory"),
            Some(json!({"generate":{"mailboxes":2500,"seed":9}})),
        )
        .await;
    assert_eq!(s, 200);
    ex.env.freeze_clock().await;
    let params = json!({"ResultSize":"Unlimited"});
    let prefer = [("Prefer", "odata.maxpagesize=100")];
    let mut path =
        format!("/adminapi/beta/{CONTOSO}/InvokeCommand?$select=Name,ExternalDirectoryObjectId");
    let mut names = std::collections::BTreeSet::new();
    let mut pages = 0;
    let mut first_link = None;
    loop {
        let body = json!({"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":params}});
        let r = ex
            .post(
                &path,
                Some(&ex.token),
                body.to_string().into_bytes(),
                &prefer,
            )
            .await;
        assert_eq!(r.status, 200);
        let v = r.json();
        let page = r.value();
        assert!(page.len() <= 100);
        for m in &page {
            assert!(m.get("Alias").is_none(), "$select survives continuation");
            names.insert(m["Name"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match v["@odata.nextLink"].as_str() {
            Some(link) => {
                let base = ex.env.url("");
                assert!(link.starts_with(&format!(
                    "{base}/adminapi/beta/{CONTOSO}/InvokeCommand?$skiptoken="
                )));
                path = link[base.len()..].to_owned();
                first_link.get_or_insert(path.clone());
            }
            None => break,
        }
    }
    let (_, truth) = ex
        .env
        .control("GET", &format!("/exchange/{CONTOSO}/permissions"), None)
        .await;
    let mailboxes = truth["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["trustee_sid"] == "S-1-5-10" && p["right"] == "SendAs")
        .count();
    assert_eq!(names.len(), mailboxes);
    assert_eq!(pages, mailboxes.div_ceil(100));
    // A skiptoken older than the TTL is refused with the pagination 400.
    ex.env.advance_clock(601.0).await;
    let body = json!({"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":params}});
    let r = ex
        .post(
            first_link.as_deref().unwrap(),
            Some(&ex.token),
            body.to_string().into_bytes(),
            &prefer,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["innererror"]["internalexception"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Expired or Invalid pagination request. Default Expiry time is 00:30:00")
    );
    // A tampered token too.
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/InvokeCommand?$skiptoken=AAAA"),
            Some(&ex.token),
            body.to_string().into_bytes(),
            &prefer,
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn broken_paging_knob_fails_every_continuation() {
    let ex = Ex::demo().await;
    ex.knobs(None, json!({"paging_continuation_broken": true}))
        .await;
    let prefer = [("Prefer", "odata.maxpagesize=2")];
    let body = json!({"CmdletInput":{"CmdletName":"Get-Mailbox","Parameters":{}}});
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/InvokeCommand"),
            Some(&ex.token),
            body.to_string().into_bytes(),
            &prefer,
        )
        .await;
    let link = r.json()["@odata.nextLink"].as_str().unwrap().to_owned();
    let path = &link[ex.env.url("").len()..];
    let r = ex
        .post(
            path,
            Some(&ex.token),
            body.to_string().into_bytes(),
            &prefer,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()
            .to_string()
            .contains("Expired or Invalid pagination request")
    );
}

#[tokio::test]
async fn batch_answers_each_item_with_mixed_failures() {
    let ex = Ex::demo().await;
    let item = |id: &str, cmdlet: &str, params: Value| {
        json!({"id": id, "method": "POST",
               "url": format!("https://outlook.office365.com/adminapi/beta/{CONTOSO}/InvokeCommand"),
               "headers": {"X-CmdletName": cmdlet},
               "body": {"CmdletInput": {"CmdletName": cmdlet, "Parameters": params}}})
    };
    let body = json!({"requests": [
        item("1", "Get-MailboxPermission", json!({"Identity":"sales"})),
        item("2", "Get-Mailbox", json!({"Identity":"nobody"})),
        item("3", "Add-RecipientPermission", json!({"Identity":"sales","Trustee":"carol@contoso.onmicrosoft.com","AccessRights":["SendAs"],"Confirm":false})),
        item("4", "Get-NoSuchThing", json!({})),
        item("5", "Get-Mailbox", json!({"Identity":"alice","Nope":true})),
    ]});
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/$batch"),
            Some(&ex.token),
            body.to_string().into_bytes(),
            &[("Prefer", "odata.maxpagesize = 1;odata.continue-on-error")],
        )
        .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    let responses = v["responses"].as_array().unwrap();
    let status: Vec<(String, u64)> = responses
        .iter()
        .map(|x| {
            (
                x["id"].as_str().unwrap().to_owned(),
                x["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("1".into(), 200),
            ("2".into(), 404),
            ("3".into(), 200),
            ("4".into(), 403),
            ("5".into(), 400)
        ]
    );
    assert_eq!(responses[1]["body"]["error"]["code"], "NotFound");
    // Per-item nextLink (page size 1), continued by re-batching with the url replaced.
    let next = responses[0]["body"]["@odata.nextLink"].as_str().unwrap();
    let cont = json!({"requests":[{"id":"1b","method":"POST","url":next,
        "body":{"CmdletInput":{"CmdletName":"Get-MailboxPermission","Parameters":{"Identity":"sales"}}}}]});
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/$batch"),
            Some(&ex.token),
            cont.to_string().into_bytes(),
            &[("Prefer", "odata.maxpagesize=1")],
        )
        .await;
    let v = r.json();
    assert_eq!(v["responses"][0]["status"], 200);
    assert_eq!(
        v["responses"][0]["body"]["value"][0]["AccessRights"],
        json!(["FullAccess, ExternalAccount, ReadPermission"])
    );
    // More than 20 sub-requests is refused.
    let many: Vec<Value> = (0..21)
        .map(|i| item(&i.to_string(), "Get-OrganizationConfig", json!({})))
        .collect();
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/$batch"),
            Some(&ex.token),
            json!({"requests": many}).to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn replication_lag_hides_fresh_writes_until_the_clock_moves() {
    let ex = Ex::demo().await;
    ex.env.freeze_clock().await;
    ex.knobs(Some(CONTOSO), json!({"replication_lag_ms": 5000}))
        .await;
    let r = ex
        .cmd(
            "Add-RecipientPermission",
            json!({"Identity":"sales","Trustee":"bob","AccessRights":["SendAs"],"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let trustees = |v: Vec<Value>| -> Vec<String> {
        v.iter()
            .map(|r| r["Trustee"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = trustees(
        ex.cmd("Get-RecipientPermission", json!({"Identity":"sales"}))
            .await
            .value(),
    );
    assert!(!before.contains(&"bob@contoso.onmicrosoft.com".to_owned()));
    // The write is applied: a second add warns (writes see the master).
    let r = ex
        .cmd(
            "Add-RecipientPermission",
            json!({"Identity":"sales","Trustee":"bob","AccessRights":["SendAs"],"Confirm":false}),
        )
        .await;
    assert!(!r.warnings().is_empty());
    ex.env.advance_clock(5.0).await;
    let after = trustees(
        ex.cmd("Get-RecipientPermission", json!({"Identity":"sales"}))
            .await
            .value(),
    );
    assert!(after.contains(&"bob@contoso.onmicrosoft.com".to_owned()));
}

#[tokio::test]
async fn counters_and_apply_log_record_cmdlets() {
    let ex = Ex::demo().await;
    let (s, _) = ex.env.control("DELETE", "/counters", None).await;
    assert_eq!(s, 204);
    ex.cmd("Get-Mailbox", json!({"Identity":"alice"})).await;
    ex.cmd("Get-Mailbox", json!({"Identity":"nobody"})).await;
    ex.cmd(
        "Remove-RecipientPermission",
        json!({"Identity":"support","Trustee":"bob","AccessRights":["SendAs"],"Confirm":false}),
    )
    .await;
    let (_, c) = ex.env.control("GET", "/counters", None).await;
    assert_eq!(c["exchange_requests"]["Get-Mailbox|200"], 1);
    assert_eq!(c["exchange_requests"]["Get-Mailbox|404"], 1);
    assert_eq!(c["exchange_requests"]["Remove-RecipientPermission|200"], 1);
    let (_, log) = ex
        .env
        .control("GET", &format!("/apply-log?tenant={CONTOSO}&since=0"), None)
        .await;
    let e = &log["entries"][0];
    assert_eq!(e["seq"], 1);
    assert_eq!(e["cmdlet"], "Remove-RecipientPermission");
    assert_eq!(e["change"]["mailbox"], "support");
    assert_eq!(e["change"]["trustee"], "bob@contoso.onmicrosoft.com");
    assert_eq!(e["change"]["right"], "SendAs");
    assert_eq!(e["change"]["op"], "remove");
    let (_, log) = ex.env.control("GET", "/apply-log?since=1", None).await;
    assert_eq!(log["entries"], json!([]));
}

#[tokio::test]
async fn deleting_a_principal_leaves_orphan_rows_removable_by_sid() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Add-RecipientPermission",
            json!({"Identity":"sales","Trustee":"bob","AccessRights":["SendAs"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let (s, _) = ex
        .env
        .control("DELETE", &format!("/exchange/{CONTOSO}/objects/bob"), None)
        .await;
    assert_eq!(s, 204);
    let rows = ex
        .cmd("Get-RecipientPermission", json!({"Identity":"sales"}))
        .await
        .value();
    let orphan = rows
        .iter()
        .find(|r| r["Trustee"].as_str().unwrap().starts_with("S-1-5-21-"))
        .expect("orphan row");
    assert_eq!(orphan["Trustee"], orphan["TrusteeSidString"]);
    let sid = orphan["Trustee"].as_str().unwrap().to_owned();
    let r = ex
        .cmd(
            "Remove-RecipientPermission",
            json!({"Identity":"sales","Trustee":sid,"AccessRights":["SendAs"]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.warnings().is_empty());
    let r = ex.cmd("Get-Mailbox", json!({"Identity":"bob"})).await;
    assert_family_a(&r, 404, NOT_FOUND);
}

#[tokio::test]
async fn strict_anchor_knob_requires_x_anchor_mailbox() {
    let ex = Ex::demo().await;
    ex.knobs(None, json!({"strict_anchor": true})).await;
    let r = ex.cmd("Get-OrganizationConfig", json!({})).await;
    assert_eq!(r.status, 400);
    let anchor = format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{CONTOSO}");
    let r = ex
        .invoke_as(
            CONTOSO,
            Some(&ex.token),
            "",
            "Get-OrganizationConfig",
            json!({}),
            &[("X-AnchorMailbox", anchor.as_str())],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn batch_without_token_is_401_and_without_role_answers_403_per_item() {
    let ex = Ex::demo().await;
    let body = json!({"requests":[{"id":"a","method":"POST","url":"InvokeCommand",
        "body":{"CmdletInput":{"CmdletName":"Get-OrganizationConfig","Parameters":{}}}}]});
    let r = ex
        .post(
            &format!("/adminapi/beta/{CONTOSO}/$batch"),
            None,
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    let token = ex.env.exchange_token(FABRIKAM).await;
    let r = ex
        .post(
            &format!("/adminapi/beta/{FABRIKAM}/$batch"),
            Some(&token),
            body.to_string().into_bytes(),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["responses"][0]["status"], 403);
    assert_eq!(r.json()["responses"][0]["id"], "a");
}

#[tokio::test]
async fn get_recipient_lists_mail_enabled_objects_only() {
    let ex = Ex::demo().await;
    let rows = ex.cmd("Get-Recipient", json!({})).await.value();
    let mut kinds: Vec<String> = rows
        .iter()
        .map(|r| r["RecipientTypeDetails"].as_str().unwrap().to_owned())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "MailUniversalSecurityGroup",
            "SharedMailbox",
            "SharedMailbox",
            "UserMailbox",
            "UserMailbox",
            "UserMailbox"
        ]
    );
    // The non-mail-enabled group is not a recipient, so it cannot be a Send on Behalf delegate.
    let r = ex
        .cmd(
            "Set-Mailbox",
            json!({"Identity":"sales","GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","add":"allstaff"}}),
        )
        .await;
    assert_family_a(&r, 404, NOT_FOUND);
    let r = ex
        .cmd("Get-Recipient", json!({"Identity":"salesteam"}))
        .await;
    assert_eq!(r.value()[0]["Name"], "Sales Team");
}

#[tokio::test]
async fn null_identity_lists_every_mailbox() {
    let ex = Ex::demo().await;
    let rows = ex
        .cmd("Get-Mailbox", json!({"Identity": null}))
        .await
        .value();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r["Identity"].is_string()));
    let shared = ex
        .cmd(
            "Get-Mailbox",
            json!({"RecipientTypeDetails": "SharedMailbox"}),
        )
        .await
        .value();
    let names: Vec<&str> = shared.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    assert_eq!(names, ["sales", "support"]);
}

#[tokio::test]
async fn clear_automapping_and_reset_default() {
    let ex = Ex::demo().await;
    let r = ex
        .cmd(
            "Remove-MailboxPermission",
            json!({"Identity":"sales","ClearAutoMapping":true,"User":"alice"}),
        )
        .await;
    assert_family_a(&r, 400, BINDING);
    let r = ex
        .cmd(
            "Remove-MailboxPermission",
            json!({"Identity":"sales","ClearAutoMapping":true,"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let (_, truth) = ex
        .env
        .control("GET", &format!("/exchange/{CONTOSO}/objects/sales"), None)
        .await;
    assert!(
        truth["full_access"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["automapping"] == false)
    );
    let r = ex
        .cmd(
            "Remove-MailboxPermission",
            json!({"Identity":"sales","ResetDefault":true,"Confirm":false}),
        )
        .await;
    assert_eq!(r.status, 200);
    let users = ex.full_access_users("sales").await;
    assert_eq!(users, ["NT AUTHORITY\\SELF", "NT AUTHORITY\\SELF"]);
    let (_, log) = ex
        .env
        .control("GET", &format!("/apply-log?tenant={CONTOSO}"), None)
        .await;
    let ops: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["change"]["op"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["clear_automapping", "remove"]);
}

impl Ex {
    /// Every row of `cmdlet` with `ResultSize` Unlimited on Contoso, following `@odata.nextLink`.
    async fn all_rows(&self, cmdlet: &str) -> Vec<Value> {
        let body =
            json!({"CmdletInput":{"CmdletName":cmdlet,"Parameters":{"ResultSize":"Unlimited"}}})
                .to_string()
                .into_bytes();
        let mut path = format!("/adminapi/beta/{CONTOSO}/InvokeCommand");
        let mut rows = Vec::new();
        loop {
            let r = self.post(&path, Some(&self.token), body.clone(), &[]).await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            rows.extend(r.value());
            match r.json()["@odata.nextLink"].as_str() {
                Some(link) => path = link[self.env.url("").len()..].to_owned(),
                None => return rows,
            }
        }
    }
}

/// Generated directories (`PUT …/directory` with `generate`) never give two objects the same
/// identifier: every Name, Alias, Guid, ExchangeObjectId, ExternalDirectoryObjectId, UPN, SMTP
/// address, ExchangeGuid and SID the emulator prints for one object belongs to that object
/// alone, and the control API resolves its Guid, ExchangeObjectId and SID back to it.
#[tokio::test]
async fn generated_directories_give_every_object_its_own_identifiers() {
    let ex = Ex::demo().await;
    for (mailboxes, seed) in [(300, 0), (300, 7), (1500, 3), (3000, 11)] {
        let (s, b) = ex
            .env
            .control(
                "PUT",
                &format!("/exchange/{CONTOSO}/directory"),
                Some(json!({"generate":{"mailboxes":mailboxes,"seed":seed}})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let recipients = ex.all_rows("Get-Recipient").await;
        let mailbox_rows = ex.all_rows("Get-Mailbox").await;
        assert_eq!(b["mailboxes"].as_u64(), Some(mailbox_rows.len() as u64));
        // Objects are told apart by Name (which the emulator keeps unique, like Exchange).
        let mut owner: std::collections::HashMap<String, String> = Default::default();
        let mut claim = |key: &str, name: &str| {
            assert!(!key.is_empty(), "{name} has an empty identifier");
            let key = key.to_lowercase();
            if let Some(other) = owner.insert(key.clone(), name.to_owned()) {
                assert_eq!(
                    other, name,
                    "generate {mailboxes}/{seed}: '{key}' identifies both {other} and {name}"
                );
            }
        };
        for r in &recipients {
            let name = r["Name"].as_str().unwrap();
            for field in [
                "Name",
                "Alias",
                "Guid",
                "ExchangeObjectId",
                "ExternalDirectoryObjectId",
                "PrimarySmtpAddress",
            ] {
                claim(r[field].as_str().unwrap(), name);
            }
            for a in r["EmailAddresses"].as_array().unwrap() {
                claim(&a.as_str().unwrap()[5..], name);
            }
        }
        for m in &mailbox_rows {
            let name = m["Name"].as_str().unwrap();
            claim(m["UserPrincipalName"].as_str().unwrap(), name);
            claim(m["ExchangeGuid"].as_str().unwrap(), name);
        }
        for r in &recipients {
            let name = r["Name"].as_str().unwrap();
            let mut sid = None;
            for field in ["Guid", "ExchangeObjectId", "ExternalDirectoryObjectId"] {
                let id = r[field].as_str().unwrap();
                let (s, truth) = ex
                    .env
                    .control("GET", &format!("/exchange/{CONTOSO}/objects/{id}"), None)
                    .await;
                assert_eq!(
                    s, 200,
                    "generate {mailboxes}/{seed}: {field} {id} of {name}: {truth}"
                );
                assert_eq!(truth["name"], name, "{field} {id}");
                sid = truth["sid"].as_str().map(str::to_owned);
            }
            let sid = sid.expect("ground truth has a SID");
            claim(&sid, name);
            let (s, truth) = ex
                .env
                .control("GET", &format!("/exchange/{CONTOSO}/objects/{sid}"), None)
                .await;
            assert_eq!(s, 200, "{truth}");
            assert_eq!(truth["name"], name, "SID {sid}");
        }
    }
}
