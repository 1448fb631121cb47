//! `POST /{tenant}/oauth2/v2.0/token`: the client-credentials grant by `client_secret` or by
//! `client_assertion`, with the errors of `docs/MICROSOFT.md#token-errors` and the v1 tokens of
//! `docs/MICROSOFT.md#token-claims`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{AccessClaims, EXCHANGE_AUDIENCE_ALT, issuer_v1, new_id};
use crate::state::{AppRegistration, Shared, Tenant, ids};

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/{tenant}/oauth2/v2.0/token", post(token).get(token_get))
}

/// The key under which [`crate::state::Counters::token_requests`] counts a token request:
/// `tenant|client_id|resource`, where `tenant` is the tenant GUID when the path named a known
/// tenant (else the path segment as sent, lowercased), and `resource` is the scope without
/// `/.default`.
pub struct TokenRequestKey;

impl TokenRequestKey {
    pub fn format(tenant: &str, client_id: &str, resource: &str) -> String {
        format!("{tenant}|{client_id}|{resource}")
    }
}

/// `2022-12-09 15:04:13Z`, the timestamp format of Entra error bodies.
pub(crate) fn aad_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// One Entra error (`docs/MICROSOFT.md#token-errors`): the status, the `error` string, the
/// AADSTS code and the description's first sentence(s), without the Trace/Correlation/Timestamp
/// lines.
#[derive(Debug, Clone)]
pub(crate) struct AadError {
    pub status: StatusCode,
    pub error: String,
    pub code: u32,
    pub message: String,
}

impl AadError {
    fn new(status: StatusCode, error: &str, code: u32, message: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            code,
            message: message.into(),
        }
    }

    pub(crate) fn tenant_not_found(shared: &Shared, tenant: &str) -> Self {
        let error = shared.world.read().knobs.tenant_not_found_error.clone();
        Self::new(
            StatusCode::BAD_REQUEST,
            &error,
            90002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    fn malformed_tenant(tenant: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900023,
            format!(
                "Specified tenant identifier '{tenant}' is neither a valid DNS name, nor a valid external domain."
            ),
        )
    }

    pub(crate) fn app_not_found(client_id: &str, tenant_name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant_name}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    fn missing_parameter(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    fn bad_assertion(detail: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation. {detail}")
                .trim_end()
                .to_owned(),
        )
    }

    /// The error body with fresh trace/correlation ids and the emulator clock's timestamp.
    pub(crate) fn body(&self, shared: &Shared) -> serde_json::Value {
        let trace = new_id(shared);
        let correlation = new_id(shared);
        let stamp = aad_timestamp(shared.clock.now());
        json!({
            "error": self.error,
            "error_description": format!(
                "AADSTS{}: {}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}",
                self.code, self.message
            ),
            "error_codes": [self.code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("{}/error?code={}", shared.base_url.trim_end_matches('/'), self.code),
        })
    }

    fn into_response(self, shared: &Shared) -> Response {
        let mut response = (self.status, Json(self.body(shared))).into_response();
        no_store(&mut response);
        response
    }
}

fn no_store(response: &mut Response) {
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// True when `text` is shaped like a DNS name (`a.b`, letters, digits and hyphens).
pub(crate) fn is_dns_name(text: &str) -> bool {
    if text.is_empty() || text.len() > 253 || !text.contains('.') {
        return false;
    }
    text.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// The Entra side of a tenant, without its (possibly large) Exchange directory.
#[derive(Debug, Clone)]
pub(crate) struct TenantInfo {
    pub id: Uuid,
    pub display_name: String,
    pub domains: Vec<String>,
    pub service_principals: BTreeMap<Uuid, crate::state::ServicePrincipal>,
}

impl TenantInfo {
    pub(crate) fn of(t: &Tenant) -> Self {
        Self {
            id: t.id,
            display_name: t.display_name.clone(),
            domains: t.domains.clone(),
            service_principals: t.service_principals.clone(),
        }
    }

    pub(crate) fn initial_domain(&self) -> &str {
        self.domains.first().map(String::as_str).unwrap_or("")
    }
}

/// How a path's `{tenant}` segment resolved.
pub(crate) enum TenantRef {
    Found(TenantInfo),
    /// Unknown or deleted: AADSTS90002.
    NotFound,
    /// Neither a GUID nor a DNS name: AADSTS900023.
    Malformed,
}

/// Resolves a `{tenant}` path segment (GUID or domain). Deleted tenants are not found.
pub(crate) fn resolve_tenant(shared: &Shared, tenant: &str) -> TenantRef {
    if Uuid::parse_str(tenant).is_err() && !is_dns_name(tenant) {
        return TenantRef::Malformed;
    }
    match shared.world.read().tenant_by_ref(tenant) {
        Some(t) if !t.deleted => TenantRef::Found(TenantInfo::of(t)),
        _ => TenantRef::NotFound,
    }
}

/// The resources a client-credentials `scope` may name.
fn resource_for_scope(scope: &str) -> Option<&'static str> {
    let resource = scope.strip_suffix("/.default")?;
    let resource = resource.trim_end_matches('/');
    if resource.eq_ignore_ascii_case(ids::EXCHANGE_AUDIENCE)
        || resource.eq_ignore_ascii_case(&ids::EXCHANGE_RESOURCE_APP_ID.to_string())
    {
        Some(ids::EXCHANGE_AUDIENCE)
    } else if resource.eq_ignore_ascii_case(EXCHANGE_AUDIENCE_ALT) {
        Some(EXCHANGE_AUDIENCE_ALT)
    } else if resource.eq_ignore_ascii_case(ids::GRAPH_AUDIENCE)
        || resource.eq_ignore_ascii_case(&ids::GRAPH_RESOURCE_APP_ID.to_string())
    {
        Some(ids::GRAPH_AUDIENCE)
    } else {
        None
    }
}

/// A well-formed single `<resource>/.default` scope naming a resource this emulator does not
/// host (an absolute `https` URI or an app id): AADSTS500011 rather than 70011.
fn unknown_resource(scope: &str) -> Option<&str> {
    if scope.contains(char::is_whitespace) {
        return None;
    }
    let resource = scope.strip_suffix("/.default")?;
    let is_uri =
        url::Url::parse(resource).is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    (is_uri || Uuid::parse_str(resource).is_ok()).then_some(resource)
}

/// The resource app id behind an audience.
fn resource_app_id(audience: &str) -> Uuid {
    if audience == ids::GRAPH_AUDIENCE {
        ids::GRAPH_RESOURCE_APP_ID
    } else {
        ids::EXCHANGE_RESOURCE_APP_ID
    }
}

/// Which resource an app role value belongs to: the app registration's required permissions
/// say so; otherwise `Exchange.*` roles are Exchange's and the rest Graph's.
pub(crate) fn role_resource(app: Option<&AppRegistration>, role: &str) -> Uuid {
    if let Some(app) = app
        && let Some(p) = app.required_permissions.iter().find(|p| p.role == role)
    {
        return p.resource;
    }
    if role.starts_with("Exchange.") || role == "full_access_as_app" {
        ids::EXCHANGE_RESOURCE_APP_ID
    } else {
        ids::GRAPH_RESOURCE_APP_ID
    }
}

struct Form(BTreeMap<String, String>);

impl Form {
    fn parse(body: &[u8]) -> Option<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).ok()?;
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            map.entry(k).or_insert(v);
        }
        Some(Self(map))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body).unwrap_or(Form(BTreeMap::new()));
    // (msft-signin) people signing in redeem their code here.
    if form.get("grant_type") == Some("authorization_code") {
        return match crate::signin::redeem(&shared, &form.0) {
            Ok(body) => {
                let mut response = (StatusCode::OK, Json(body)).into_response();
                no_store(&mut response);
                response
            }
            Err(r) => AadError::new(StatusCode::BAD_REQUEST, r.error, r.code, r.message)
                .into_response(&shared),
        };
    }
    let client_id = form.get("client_id").unwrap_or("").to_owned();
    let scope = form.get("scope").unwrap_or("").to_owned();
    let resolved = resolve_tenant(&shared, &tenant);
    let tenant_key = match &resolved {
        TenantRef::Found(t) => t.id.to_string(),
        _ => tenant.to_ascii_lowercase(),
    };
    let key = TokenRequestKey::format(
        &tenant_key,
        &client_id,
        scope
            .trim()
            .strip_suffix("/.default")
            .unwrap_or(scope.trim()),
    );
    *shared
        .world
        .write()
        .counters
        .token_requests
        .entry(key)
        .or_insert(0) += 1;
    let outcome = issue(&shared, &tenant, resolved, &form);
    match outcome {
        Ok(body) => {
            let mut response = (StatusCode::OK, Json(body)).into_response();
            no_store(&mut response);
            response
        }
        Err(e) => {
            tracing::debug!(tenant = %tenant, code = e.code, "token request refused");
            e.into_response(&shared)
        }
    }
}

/// `GET` on the token endpoint: AADSTS900561.
async fn token_get(State(shared): State<Arc<Shared>>) -> Response {
    AadError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900561,
        "The endpoint only accepts POST requests. Received a GET request.",
    )
    .into_response(&shared)
}

/// How the client proved itself: `appidacr` "1" (secret) or "2" (certificate).
enum Credential {
    Secret,
    Certificate,
}

fn issue(
    shared: &Shared,
    tenant_text: &str,
    resolved: TenantRef,
    form: &Form,
) -> Result<serde_json::Value, AadError> {
    let tenant = match resolved {
        TenantRef::Malformed => return Err(AadError::malformed_tenant(tenant_text)),
        TenantRef::NotFound => return Err(AadError::tenant_not_found(shared, tenant_text)),
        TenantRef::Found(t) => t,
    };
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| AadError::missing_parameter("grant_type"))?;
    if grant_type != "client_credentials" {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        ));
    }
    let client_text = form
        .get("client_id")
        .ok_or_else(|| AadError::missing_parameter("client_id"))?;
    let not_found = || AadError::app_not_found(client_text, &tenant.display_name);
    let app = shared
        .world
        .read()
        .app_by_client_id(client_text.trim())
        .cloned()
        .ok_or_else(not_found)?;
    let client_id = app.client_id;
    let sp = tenant
        .service_principals
        .get(&client_id)
        .cloned()
        .ok_or_else(not_found)?;
    let now = shared.clock.now();
    let knobs = shared.world.read().knobs_for(tenant.id).clone();
    if let Some(consented) = sp.consented_at {
        let ready = consented + time::Duration::seconds(knobs.consent_propagation_secs as i64);
        if now < ready {
            return Err(not_found());
        }
    }
    if app.disabled {
        return Err(AadError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            7000112,
            format!(
                "Application '{client_id}'({}) is disabled.",
                app.display_name
            ),
        ));
    }
    let credential = if let Some(assertion) = form.get("client_assertion") {
        let assertion_type = form
            .get("client_assertion_type")
            .ok_or_else(|| AadError::missing_parameter("client_assertion_type"))?;
        if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
            return Err(AadError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                70002,
                format!(
                    "The client assertion type '{assertion_type}' is not supported. Use 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'."
                ),
            ));
        }
        verify_assertion(shared, &app, tenant_text, &tenant, assertion, now, &knobs)?;
        Credential::Certificate
    } else if let Some(secret) = form.get("client_secret") {
        check_secret(&app, secret, now)?;
        Credential::Secret
    } else {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    };
    let scope = form
        .get("scope")
        .ok_or_else(|| AadError::missing_parameter("scope"))?;
    let audience = match resource_for_scope(scope.trim()) {
        Some(audience) => audience,
        None => {
            return Err(match unknown_resource(scope.trim()) {
                Some(resource) => AadError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_resource",
                    500011,
                    format!(
                        "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                        tenant.display_name
                    ),
                ),
                None => AadError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    format!(
                        "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
                    ),
                ),
            });
        }
    };
    let resource = resource_app_id(audience);
    let roles: Vec<String> = sp
        .app_roles
        .iter()
        .filter(|r| role_resource(Some(&app), r) == resource)
        .cloned()
        .collect();
    let mut wids: Vec<Uuid> = sp.directory_roles.keys().copied().collect();
    wids.push(ids::IMPLICIT_WIDS);
    let lifetime = knobs.token_lifetime_secs;
    let iat = now.unix_timestamp();
    let claims = AccessClaims {
        aud: audience.to_owned(),
        iss: issuer_v1(tenant.id),
        iat,
        nbf: iat,
        exp: iat + lifetime as i64,
        aio: URL_SAFE_NO_PAD.encode(new_id(shared).as_bytes()),
        app_displayname: app.display_name.clone(),
        appid: client_id,
        appidacr: match credential {
            Credential::Secret => "1".to_owned(),
            Credential::Certificate => "2".to_owned(),
        },
        idp: issuer_v1(tenant.id),
        idtyp: "app".to_owned(),
        oid: sp.object_id,
        rh: format!("0.{}.", URL_SAFE_NO_PAD.encode(new_id(shared).as_bytes())),
        roles,
        sub: sp.object_id,
        tid: tenant.id,
        uti: URL_SAFE_NO_PAD.encode(new_id(shared).as_bytes()),
        ver: "1.0".to_owned(),
        wids,
    };
    let access_token = shared.keys.sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "signing an access token failed");
        AadError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            50000,
            "There was an error issuing a token.",
        )
    })?;
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
}

fn check_secret(app: &AppRegistration, secret: &str, now: OffsetDateTime) -> Result<(), AadError> {
    let matching = app
        .secrets
        .iter()
        .filter(|s| constant_time_eq(s.value.as_bytes(), secret.as_bytes()));
    let mut expired = false;
    for s in matching {
        match s.expires_at {
            Some(at) if at <= now => expired = true,
            _ => return Ok(()),
        }
    }
    if expired {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.",
                app.client_id
            ),
        ));
    }
    Err(AadError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        7000215,
        format!(
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
            app.client_id
        ),
    ))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A certificate registered on an app, with the forms the assertion header may name it by.
struct RegisteredCert {
    sha1: String,
    sha256: String,
    key: DecodingKey,
    not_before: i64,
    not_after: i64,
}

fn parse_certificate(pem: &str) -> Option<RegisteredCert> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let cert = pem.parse_x509().ok()?;
    let key_bytes = cert.public_key().subject_public_key.data.to_vec();
    let not_before = cert.validity().not_before.timestamp();
    let not_after = cert.validity().not_after.timestamp();
    let der = &pem.contents;
    let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
    let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    Some(RegisteredCert {
        sha1: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
        sha256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        key: DecodingKey::from_rsa_der(&key_bytes),
        not_before,
        not_after,
    })
}

/// The claims of a client assertion (`docs/MICROSOFT.md#certificate-assertion`).
#[derive(Debug, Deserialize)]
struct AssertionClaims {
    #[serde(default)]
    aud: Option<String>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    exp: Option<i64>,
}

fn verify_assertion(
    shared: &Shared,
    app: &AppRegistration,
    tenant_text: &str,
    tenant: &TenantInfo,
    assertion: &str,
    now: OffsetDateTime,
    knobs: &crate::state::Knobs,
) -> Result<(), AadError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| AadError::bad_assertion("The client assertion is not a well-formed JWT."))?;
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(AadError::bad_assertion(
            "The assertion must be signed with RS256 or PS256.",
        ));
    }
    let certs: Vec<RegisteredCert> = app
        .certificates
        .iter()
        .filter_map(|pem| parse_certificate(pem))
        .collect();
    let cert = certs
        .iter()
        .find(|c| {
            header.x5t_s256.as_deref() == Some(c.sha256.as_str())
                || header.x5t.as_deref() == Some(c.sha1.as_str())
        })
        .ok_or_else(|| {
            AadError::bad_assertion(&format!(
                "The certificate used to sign the client assertion is not registered on application '{}'.",
                app.client_id
            ))
        })?;
    let now_ts = now.unix_timestamp();
    if now_ts > cert.not_after || now_ts < cert.not_before {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '{}']",
                cert.sha256
            ),
        ));
    }
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AssertionClaims>(assertion, &cert.key, &validation)
        .map_err(|_| AadError::bad_assertion(""))?;
    let claims = data.claims;
    let client = app.client_id.to_string();
    let same_client = |v: &Option<String>| {
        v.as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(&client))
    };
    if !same_client(&claims.iss) || !same_client(&claims.sub) {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            "Client assertion contains an invalid issuer or subject: both must be the application's client id.",
        ));
    }
    let base = shared.base_url.trim_end_matches('/');
    let audiences = [
        format!("{base}/{tenant_text}/oauth2/v2.0/token"),
        format!("{base}/{}/oauth2/v2.0/token", tenant.id),
    ];
    let aud_ok = claims.aud.as_deref().is_some_and(|aud| {
        audiences.iter().any(|a| a.eq_ignore_ascii_case(aud))
            || tenant
                .domains
                .iter()
                .any(|d| format!("{base}/{d}/oauth2/v2.0/token").eq_ignore_ascii_case(aud))
    });
    if !aud_ok {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected '{}'.",
                audiences[0]
            ),
        ));
    }
    let exp = claims.exp.unwrap_or(i64::MIN);
    let nbf = claims.nbf.unwrap_or(i64::MIN);
    if now_ts >= exp || now_ts < nbf {
        return Err(AadError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                aad_timestamp(now),
                claims
                    .nbf
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                    .map(aad_timestamp)
                    .unwrap_or_default(),
                claims
                    .exp
                    .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
                    .map(aad_timestamp)
                    .unwrap_or_default(),
            ),
        ));
    }
    if let Some(jti) = claims.jti {
        let mut world = shared.world.write();
        if world.assertion_jtis.len() >= 4096 {
            world
                .assertion_jtis
                .retain(|_, seen_exp| *seen_exp > now_ts);
        }
        let fresh = world
            .assertion_jtis
            .insert(format!("{}|{jti}", app.client_id), exp)
            .is_none();
        if !fresh && knobs.reject_assertion_jti_replay {
            return Err(AadError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700027,
                "Client assertion has already been used (its 'jti' was seen before).",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_dns_name;

    #[test]
    fn dns_names() {
        assert!(is_dns_name("contoso.onmicrosoft.com"));
        assert!(!is_dns_name("contoso"));
        assert!(!is_dns_name("bad name.com"));
        assert!(!is_dns_name("-x.com"));
        assert!(!is_dns_name("a..b"));
    }
}
