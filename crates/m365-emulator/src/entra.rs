//! Microsoft Entra: OpenID configuration, JWKS, admin consent (v1 and v2), and the
//! client-credentials token endpoint (secret and certificate assertion), as
//! `docs/MICROSOFT.md#admin-consent` and `#tokens` describe them.
//!
//! The Exchange and Graph halves authorize requests with [`verify_access_token`], which checks
//! a bearer token exactly as a resource server would: RS256 signature with the emulator's key,
//! issuer, audience, and `nbf`/`exp` against the emulator's clock (never the wall clock).

mod consent;
pub mod html;
mod token;

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::KeyPair as _;
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::state::{Shared, ids};

pub use token::TokenRequestKey;
// (msft-signin)
pub(crate) use consent::redirect_uri_allowed;
pub(crate) use token::is_dns_name;

/// The emulator's RS256 signing key, generated at start, and its JWKS form.
pub struct SigningKeys {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    n: String,
    e: String,
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("kid", &self.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl SigningKeys {
    /// Generates a fresh RSA-2048 key pair.
    pub fn generate() -> anyhow::Result<Self> {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("RSA key generation failed"))?;
        let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair)
            .map_err(|_| anyhow::anyhow!("RSA key export failed"))?;
        let pem = pem_wrap("PRIVATE KEY", der.as_ref());
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes())?;
        let components: PublicKeyComponents<Vec<u8>> = pair.public_key().into();
        let decoding = DecodingKey::from_rsa_raw_components(&components.n, &components.e);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &components.n);
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..20]);
        Ok(Self {
            kid,
            encoding,
            decoding,
            n: URL_SAFE_NO_PAD.encode(&components.n),
            e: URL_SAFE_NO_PAD.encode(&components.e),
        })
    }

    /// The key id (`kid` and `x5t` of issued tokens).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The JWKS document (`{"keys":[…]}`) served at `/{tenant}/discovery/v2.0/keys`.
    pub fn jwks(&self, issuer: &str) -> serde_json::Value {
        json!({
            "keys": [{
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": self.kid,
                "x5t": self.kid,
                "n": self.n,
                "e": self.e,
                "issuer": issuer,
            }]
        })
    }

    /// Signs `claims` as an RS256 JWT with this key.
    pub(crate) fn sign<T: Serialize>(
        &self,
        claims: &T,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(self.kid.clone());
        header.x5t = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }

    // (msft-signin)
    /// Signs `claims` with this key under the key id `kid` (another key's id only to forge a
    /// bad signature for tests).
    pub(crate) fn sign_as<T: Serialize>(
        &self,
        claims: &T,
        kid: &str,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding)
    }
}

fn pem_wrap(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The payload of an access token the emulator issues (v1.0 claims,
/// `docs/MICROSOFT.md#token-claims`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The resource: `https://outlook.office365.com` or `https://graph.microsoft.com`.
    pub aud: String,
    /// `https://sts.windows.net/{tid}/`
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default)]
    pub aio: String,
    #[serde(default)]
    pub app_displayname: String,
    /// The client id of the app.
    pub appid: Uuid,
    /// `"1"` client secret, `"2"` certificate.
    pub appidacr: String,
    pub idp: String,
    pub idtyp: String,
    /// The service principal's object id in the tenant.
    pub oid: Uuid,
    #[serde(default)]
    pub rh: String,
    /// Granted application permissions on this resource; absent when none are granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    pub sub: Uuid,
    pub tid: Uuid,
    #[serde(default)]
    pub uti: String,
    pub ver: String,
    /// Directory role template ids held by the service principal, plus the implicit
    /// `0997a1d0-…` value.
    #[serde(default)]
    pub wids: Vec<Uuid>,
}

impl AccessClaims {
    /// True when `roles` holds the application permission `role` (e.g. `Exchange.ManageAsApp`).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// True when `wids` holds the directory role template id `role`.
    pub fn has_directory_role(&self, role: Uuid) -> bool {
        self.wids.contains(&role)
    }
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    #[error("no bearer token was sent")]
    Missing,
    #[error("the bearer token is malformed: {0}")]
    Malformed(String),
    #[error("the token's signature does not verify with the emulator's key")]
    BadSignature,
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("the token is not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    #[error("the token's audience '{found}' is not '{expected}'")]
    WrongAudience { expected: String, found: String },
    #[error("the token's issuer '{0}' is not the issuer of its tenant")]
    WrongIssuer(String),
}

/// Verifies the `Authorization` header's bearer token for the resource `expected_audience`
/// (`https://outlook.office365.com` for Exchange, `https://graph.microsoft.com` for Graph).
///
/// Checks the RS256 signature with the emulator's key, the issuer (`https://sts.windows.net/{tid}/`),
/// the audience (a trailing slash is ignored; Exchange also accepts `https://outlook.office.com`),
/// and `nbf`/`exp` against `shared.clock`.
pub fn verify_access_token(
    shared: &Shared,
    authorization_header: Option<&str>,
    expected_audience: &str,
) -> Result<AccessClaims, TokenRejection> {
    let header = authorization_header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(TokenRejection::Missing)?;
    let (scheme, token) = header
        .split_once(' ')
        .ok_or_else(|| TokenRejection::Malformed("expected 'Bearer <token>'".to_owned()))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Malformed(format!(
            "unsupported authorization scheme '{scheme}'"
        )));
    }
    let token = token.trim();
    let jwt_header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenRejection::Malformed(e.to_string()))?;
    if jwt_header.alg != Algorithm::RS256 {
        return Err(TokenRejection::BadSignature);
    }
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<AccessClaims>(token, &shared.keys.decoding, &validation)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::BadSignature,
            _ => TokenRejection::Malformed(e.to_string()),
        })?;
    let claims = data.claims;
    if claims.iss != issuer_v1(claims.tid) {
        return Err(TokenRejection::WrongIssuer(claims.iss));
    }
    if !audience_matches(expected_audience, &claims.aud) {
        return Err(TokenRejection::WrongAudience {
            expected: expected_audience.to_owned(),
            found: claims.aud,
        });
    }
    let now = shared.clock.now().unix_timestamp();
    if now >= claims.exp {
        return Err(TokenRejection::Expired {
            exp: claims.exp,
            now,
        });
    }
    if now < claims.nbf {
        return Err(TokenRejection::NotYetValid {
            nbf: claims.nbf,
            now,
        });
    }
    Ok(claims)
}

fn audience_matches(expected: &str, found: &str) -> bool {
    let expected = expected.trim_end_matches('/');
    let found = found.trim_end_matches('/');
    if expected.eq_ignore_ascii_case(found) {
        return true;
    }
    expected.eq_ignore_ascii_case(ids::EXCHANGE_AUDIENCE)
        && found.eq_ignore_ascii_case(EXCHANGE_AUDIENCE_ALT)
}

/// The second Exchange resource URI (`https://outlook.office.com/.default`).
pub const EXCHANGE_AUDIENCE_ALT: &str = "https://outlook.office.com";

/// The v1 issuer of tokens for tenant `tid`.
pub fn issuer_v1(tid: Uuid) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// A fresh id from the emulator's seeded randomness (trace ids, object ids, `uti`s).
pub(crate) fn new_id(shared: &Shared) -> Uuid {
    use rand::Rng as _;
    let bytes: [u8; 16] = shared.rng.lock().random();
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(jwks))
        .route("/{tenant}/discovery/keys", get(jwks))
        .route("/error", get(error_page))
        .merge(token::routes())
        .merge(consent::routes())
}

/// `GET /error?code=N`: where every `error_uri` points.
async fn error_page(axum::extract::RawQuery(query): axum::extract::RawQuery) -> Response {
    let code: String = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v))
        .filter(|c| !c.is_empty() && c.len() <= 10 && c.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_default();
    let body = if code.is_empty() {
        "<h1>Error lookup</h1><p>Give an AADSTS code as <code>?code=N</code>.</p>".to_owned()
    } else {
        format!(
            "<h1>AADSTS{code}</h1><p id=\"error-code\">Error code AADSTS{code}. See the token endpoint's <code>error_description</code> for details.</p>"
        )
    };
    axum::response::Html(html::page("Error lookup", &body)).into_response()
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let issuer = format!(
        "{}/{{tenantid}}/v2.0",
        shared.base_url.trim_end_matches('/')
    );
    let mut doc = shared.keys.jwks(&issuer);
    // (msft-signin) the sign-in keys (current and previous) beside the access-token key.
    if let Some(keys) = doc["keys"].as_array_mut() {
        keys.extend(shared.signin.jwks_entries(&issuer));
    }
    Json(doc).into_response()
}

async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    let resolved = {
        let world = shared.world.read();
        match tenant.as_str() {
            "common" | "organizations" | "consumers" => Ok(None),
            _ => match world.tenant_by_ref(&tenant) {
                Some(t) if !t.deleted => Ok(Some(t.id)),
                _ => Err(()),
            },
        }
    };
    let base = shared.base_url.trim_end_matches('/');
    let (tid_text, path_tenant) = match resolved {
        Ok(Some(id)) => (id.to_string(), id.to_string()),
        Ok(None) => ("{tenantid}".to_owned(), tenant.clone()),
        Err(()) => {
            let now = shared.clock.now();
            let trace = new_id(&shared);
            let correlation = new_id(&shared);
            let stamp = token::aad_timestamp(now);
            let description = format!(
                "AADSTS90002: Tenant '{}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {stamp}",
                tenant
            );
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({
                    "error": "invalid_tenant",
                    "error_description": description,
                    "error_codes": [90002],
                    "timestamp": stamp,
                    "trace_id": trace,
                    "correlation_id": correlation,
                    "error_uri": format!("{base}/error?code=90002"),
                })),
            )
                .into_response();
        }
    };
    Json(json!({
        "token_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
        "jwks_uri": format!("{base}/{path_tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid_text}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "roles", "wids"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// Why a directory change on the emulated tenant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryChangeError {
    #[error("tenant '{0}' does not exist")]
    UnknownTenant(String),
    #[error("tenant '{0}' is deleted")]
    TenantDeleted(Uuid),
    #[error("no app is registered with client id '{0}'")]
    UnknownApp(Uuid),
    #[error("app '{app}' has no service principal in tenant '{tenant}' (no consent yet)")]
    NoServicePrincipal { tenant: Uuid, app: Uuid },
}

impl crate::state::World {
    /// Admin consent: creates the app's service principal in `tenant` if missing (with
    /// `new_object_id`) and grants every required permission of the app. Never assigns a
    /// directory role. Returns the service principal's object id.
    pub fn grant_admin_consent(
        &mut self,
        tenant: Uuid,
        client_id: Uuid,
        now: time::OffsetDateTime,
        new_object_id: Uuid,
    ) -> Result<Uuid, DirectoryChangeError> {
        let app = self
            .apps
            .get(&client_id)
            .cloned()
            .ok_or(DirectoryChangeError::UnknownApp(client_id))?;
        let t = self.live_tenant_mut(tenant)?;
        let sp = t.service_principals.entry(client_id).or_insert_with(|| {
            crate::state::ServicePrincipal {
                object_id: new_object_id,
                app_id: client_id,
                created_at: now,
                app_roles: Default::default(),
                directory_roles: Default::default(),
                consented_at: None,
            }
        });
        for p in &app.required_permissions {
            sp.app_roles.insert(p.role.clone());
        }
        sp.consented_at = Some(now);
        Ok(sp.object_id)
    }

    /// Removes the app's service principal (and with it every grant and role) from `tenant`.
    pub fn revoke_consent(
        &mut self,
        tenant: Uuid,
        client_id: Uuid,
    ) -> Result<(), DirectoryChangeError> {
        let t = self
            .tenants
            .get_mut(&tenant)
            .ok_or_else(|| DirectoryChangeError::UnknownTenant(tenant.to_string()))?;
        t.service_principals.remove(&client_id).map(|_| ()).ok_or(
            DirectoryChangeError::NoServicePrincipal {
                tenant,
                app: client_id,
            },
        )
    }

    /// Assigns directory role `role` (template id) to the app's service principal at `now`.
    /// Re-assigning a held role keeps its original time.
    pub fn assign_directory_role(
        &mut self,
        tenant: Uuid,
        client_id: Uuid,
        role: Uuid,
        now: time::OffsetDateTime,
    ) -> Result<(), DirectoryChangeError> {
        let sp = self.service_principal_mut(tenant, client_id)?;
        sp.directory_roles.entry(role).or_insert(now);
        Ok(())
    }

    /// Removes directory role `role` from the app's service principal. Returns whether it was held.
    pub fn remove_directory_role(
        &mut self,
        tenant: Uuid,
        client_id: Uuid,
        role: Uuid,
    ) -> Result<bool, DirectoryChangeError> {
        let sp = self.service_principal_mut(tenant, client_id)?;
        Ok(sp.directory_roles.remove(&role).is_some())
    }

    /// The app registration whose client id `text` spells (a GUID), if there is one.
    pub(crate) fn app_by_client_id(&self, text: &str) -> Option<&crate::state::AppRegistration> {
        let id = Uuid::parse_str(text).ok()?;
        self.apps.get(&id)
    }

    /// The tenant `tenant`, to change it: an error when it is unknown or deleted.
    fn live_tenant_mut(
        &mut self,
        tenant: Uuid,
    ) -> Result<&mut crate::state::Tenant, DirectoryChangeError> {
        let t = self
            .tenants
            .get_mut(&tenant)
            .ok_or_else(|| DirectoryChangeError::UnknownTenant(tenant.to_string()))?;
        if t.deleted {
            return Err(DirectoryChangeError::TenantDeleted(tenant));
        }
        Ok(t)
    }

    fn service_principal_mut(
        &mut self,
        tenant: Uuid,
        client_id: Uuid,
    ) -> Result<&mut crate::state::ServicePrincipal, DirectoryChangeError> {
        let t = self.live_tenant_mut(tenant)?;
        t.service_principals
            .get_mut(&client_id)
            .ok_or(DirectoryChangeError::NoServicePrincipal {
                tenant,
                app: client_id,
            })
    }
}

/// Directory roles the emulator knows: template id, display name, short name.
pub const DIRECTORY_ROLES: &[(Uuid, &str, &str)] = &[
    (
        ids::EXCHANGE_ADMINISTRATOR,
        "Exchange Administrator",
        "exchange-admin",
    ),
    (
        ids::EXCHANGE_RECIPIENT_ADMINISTRATOR,
        "Exchange Recipient Administrator",
        "exchange-recipient-admin",
    ),
    (
        ids::GLOBAL_ADMINISTRATOR,
        "Global Administrator",
        "global-admin",
    ),
    (ids::GLOBAL_READER, "Global Reader", "global-reader"),
    (ids::SECURITY_READER, "Security Reader", "security-reader"),
];

/// A directory role by template id, display name or short name (case-insensitive; `_`, `-`
/// and spaces are interchangeable).
pub fn directory_role_by_name(name: &str) -> Option<Uuid> {
    if let Ok(id) = Uuid::parse_str(name.trim()) {
        return Some(id);
    }
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let wanted = norm(name);
    DIRECTORY_ROLES
        .iter()
        .find(|(_, display, short)| norm(display) == wanted || norm(short) == wanted)
        .map(|(id, _, _)| *id)
}

/// The display name of a directory role template id (the id itself when unknown).
pub fn directory_role_name(id: Uuid) -> String {
    DIRECTORY_ROLES
        .iter()
        .find(|(r, _, _)| *r == id)
        .map(|(_, display, _)| (*display).to_owned())
        .unwrap_or_else(|| id.to_string())
}
