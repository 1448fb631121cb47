//! Helpers shared by the fidelity tests: start an emulator with a scenario, a plain reqwest
//! client (no redirects followed, so consent redirects can be inspected), token helpers and
//! control-API shortcuts. Everything goes through HTTP; nothing here knows the emulator's types
//! beyond `start` and `Scenario`.

#![allow(dead_code)]

use base64::Engine as _;
use m365_emulator::{Emulator, Scenario};
use serde_json::{Value, json};

pub const EXCHANGE_APP: &str = "e0e0e0e0-0000-4000-8000-000000000001";
pub const CONNECT_APP: &str = "e0e0e0e0-0000-4000-8000-000000000002";
pub const EXCHANGE_SECRET: &str = "demo-client-secret";
pub const CONNECT_SECRET: &str = "demo-connect-secret";
pub const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
pub const FABRIKAM: &str = "22222222-2222-4222-8222-222222222222";
pub const NORTHWIND: &str = "33333333-3333-4333-8333-333333333333";
pub const TAILSPIN: &str = "44444444-4444-4444-8444-444444444444";
pub const EXCHANGE_SCOPE: &str = "https://outlook.office365.com/.default";
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
pub const EXCHANGE_ADMIN_ROLE: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";
pub const IMPLICIT_WIDS: &str = "0997a1d0-0d1d-4acb-b408-d5ca73121e90";

/// A running emulator plus an HTTP client that never follows redirects.
pub struct Env {
    pub emu: Emulator,
    pub http: reqwest::Client,
}

impl Env {
    /// Starts the emulator with the built-in demo world.
    pub async fn demo() -> Self {
        Self::start(Scenario::demo()).await
    }

    /// Starts the emulator with `scenario`.
    pub async fn start(scenario: Scenario) -> Self {
        let emu = m365_emulator::start(scenario)
            .await
            .expect("emulator starts");
        Self {
            emu,
            http: client(),
        }
    }

    /// Starts the emulator with a scenario given as JSON.
    pub async fn from_json(scenario: Value) -> Self {
        let scenario = Scenario::from_json(&scenario.to_string()).expect("test scenario is valid");
        Self::start(scenario).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.emu.base_url, path)
    }

    /// `POST /{tenant}/oauth2/v2.0/token` with `form`; returns status and JSON body.
    pub async fn token_raw(&self, tenant: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let resp = self
            .http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .form(form)
            .send()
            .await
            .expect("token request is sent");
        let status = resp.status().as_u16();
        let body = resp.json::<Value>().await.expect("token answer is JSON");
        (status, body)
    }

    /// A client-credentials request by secret.
    pub async fn token_secret(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> (u16, Value) {
        self.token_raw(
            tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", scope),
            ],
        )
        .await
    }

    /// An access token (panics unless the request succeeds).
    pub async fn access_token(
        &self,
        tenant: &str,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> String {
        let (status, body) = self.token_secret(tenant, client_id, secret, scope).await;
        assert_eq!(status, 200, "token request failed: {body}");
        body["access_token"]
            .as_str()
            .expect("access_token is a string")
            .to_owned()
    }

    /// The demo Exchange app's Exchange token for `tenant`.
    pub async fn exchange_token(&self, tenant: &str) -> String {
        self.access_token(tenant, EXCHANGE_APP, EXCHANGE_SECRET, EXCHANGE_SCOPE)
            .await
    }

    /// The demo connect app's Graph token for `tenant`.
    pub async fn graph_token(&self, tenant: &str) -> String {
        self.access_token(tenant, CONNECT_APP, CONNECT_SECRET, GRAPH_SCOPE)
            .await
    }

    /// A control-API call; returns status and JSON body (`Null` when empty).
    pub async fn control(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("valid method");
        let mut req = self
            .http
            .request(method, self.url(&format!("/_emulator{path}")));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("control request is sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("control answer is read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// Freezes the emulator clock at its current time.
    pub async fn freeze_clock(&self) {
        let (s, b) = self
            .control("POST", "/clock", Some(json!({"freeze": true})))
            .await;
        assert_eq!(s, 200, "{b}");
    }

    /// Moves the emulator clock forward.
    pub async fn advance_clock(&self, secs: f64) {
        let (s, b) = self
            .control("POST", "/clock", Some(json!({"advance_secs": secs})))
            .await;
        assert_eq!(s, 200, "{b}");
    }
}

/// A reqwest client for loopback that never follows redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("reqwest client builds")
}

/// The header and payload of a JWT, decoded without checking anything.
pub fn decode_jwt(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut part = || {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts.next().expect("JWT has three parts"))
            .expect("JWT part is base64url");
        serde_json::from_slice::<Value>(&b).expect("JWT part is JSON")
    };
    let header = part();
    let payload = part();
    (header, payload)
}

/// Asserts an Entra error body: `error`, `error_codes == [code]`, and the description's shape.
pub fn assert_aad_error(body: &Value, error: &str, code: u64) {
    assert_eq!(body["error"], error, "error string in {body}");
    assert_eq!(body["error_codes"], json!([code]), "error_codes in {body}");
    let description = body["error_description"]
        .as_str()
        .expect("error_description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "description starts with the code: {description}"
    );
    assert!(description.contains("\r\nTrace ID: "), "{description}");
    assert!(
        description.contains("\r\nCorrelation ID: "),
        "{description}"
    );
    assert!(description.contains("\r\nTimestamp: "), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
    assert!(
        body["error_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("error?code={code}"))),
        "error_uri in {body}"
    );
}

/// A self-signed RSA certificate and its key, as an app registration would hold it.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestCert {
    pub fn generate() -> Self {
        Self::generate_valid_until(None)
    }

    /// A certificate whose validity ends at `not_after` (unix seconds), or rcgen's default.
    pub fn generate_valid_until(not_after: Option<i64>) -> Self {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let mut params = rcgen::CertificateParams::new(vec!["exogate-test.example".to_owned()])
            .expect("cert params");
        if let Some(t) = not_after {
            params.not_before =
                time::OffsetDateTime::from_unix_timestamp(t - 86_400 * 30).expect("time");
            params.not_after = time::OffsetDateTime::from_unix_timestamp(t).expect("time");
        }
        let cert = params.self_signed(&key).expect("self-signed cert");
        Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// base64url SHA-256 of the certificate DER (`x5t#S256`).
    pub fn x5t_s256(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
    }

    /// base64url SHA-1 of the certificate DER (`x5t`).
    pub fn x5t_sha1(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
    }

    /// A client assertion signed with this certificate's key.
    /// `thumbprint`: `"x5t#S256"` or `"x5t"`; the header names `named_by` (defaults to self).
    pub fn assertion(
        &self,
        alg: jsonwebtoken::Algorithm,
        thumbprint: &str,
        named_by: Option<&TestCert>,
        claims: &Value,
    ) -> String {
        let named = named_by.unwrap_or(self);
        let mut header = jsonwebtoken::Header::new(alg);
        header.typ = Some("JWT".to_owned());
        match thumbprint {
            "x5t" => header.x5t = Some(named.x5t_sha1()),
            _ => header.x5t_s256 = Some(named.x5t_s256()),
        }
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.key_pem.as_bytes())
            .expect("test key loads");
        jsonwebtoken::encode(&header, claims, &key).expect("assertion signs")
    }
}

/// Standard assertion claims for `client_id` against `aud`, valid for 10 minutes from `now`.
pub fn assertion_claims(client_id: &str, aud: &str, now: i64) -> Value {
    json!({
        "aud": aud,
        "iss": client_id,
        "sub": client_id,
        "jti": uuid_like(now),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

fn uuid_like(seed: i64) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("{seed:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Undoes the HTML escaping of the emulator's pages.
pub fn html_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The value of attribute `attr` in each tag of `html` that starts with `tag_start`
/// (e.g. `<option ` → every option's `value`).
pub fn attribute_values(html: &str, tag_start: &str, attr: &str) -> Vec<String> {
    let needle = format!("{attr}=\"");
    html.match_indices(tag_start)
        .filter_map(|(i, _)| {
            let tag = &html[i..i + html[i..].find('>')?];
            let start = tag.find(&needle)? + needle.len();
            let end = start + tag[start..].find('"')?;
            Some(html_unescape(&tag[start..end]))
        })
        .collect()
}

/// The hidden `<input>`s of `html` as `(name, value)` pairs.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.match_indices("<input type=\"hidden\"")
        .filter_map(|(i, _)| {
            let tag = &html[i..i + html[i..].find('>')?];
            let get = |attr: &str| {
                let needle = format!("{attr}=\"");
                let start = tag.find(&needle)? + needle.len();
                let end = start + tag[start..].find('"')?;
                Some(html_unescape(&tag[start..end]))
            };
            Some((get("name")?, get("value")?))
        })
        .collect()
}

/// The `action` of the first `<form>` in `html`.
pub fn form_action(html: &str) -> String {
    attribute_values(html, "<form ", "action")
        .into_iter()
        .next()
        .expect("page has a form")
}

/// Splits a redirect `Location` into its URL without query and its query pairs, in order.
pub fn split_location(location: &str) -> (String, Vec<(String, String)>) {
    let url = url::Url::parse(location).expect("Location is an absolute URL");
    let pairs = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut base = url.clone();
    base.set_query(None);
    (base.to_string(), pairs)
}
