//! Client-credentials tokens from Entra: one cache entry per (tenant, resource), refreshed 5
//! minutes before expiry, single-flight (concurrent callers share one request), forced refresh
//! and per-tenant invalidation. Token errors are classified from `error` / `error_codes`, never
//! from the description text.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::claims::TokenClaims;
use crate::clock::Clock;
use crate::config::{AppConfig, AppCredential, Endpoints, Limits};
use crate::retry::{backoff_delay, parse_retry_after};

/// Which service a token is for. Exchange tokens come from the Exchange app, Graph tokens from
/// the connect app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Exchange,
    Graph,
}

/// Refresh this long before `exp`.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// An access token with its decoded claims. `Debug` never shows the token.
pub struct AccessToken {
    secret: SecretString,
    pub claims: TokenClaims,
    pub expires_at: OffsetDateTime,
    pub issued_at: OffsetDateTime,
}

impl AccessToken {
    /// The bearer value. Only for building an `Authorization` header.
    pub fn bearer(&self) -> &str {
        self.secret.expose_secret()
    }

    fn fresh_at(&self, now: OffsetDateTime) -> bool {
        now + REFRESH_MARGIN < self.expires_at
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("claims", &self.claims)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a token could not be had, from the token endpoint's `error` and `error_codes`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenError {
    /// AADSTS90002 / 900023: the tenant does not exist (deleted, typo, other cloud).
    #[error("tenant not found (AADSTS{code})")]
    TenantNotFound { code: u64 },
    /// AADSTS700016: our app has no service principal in that tenant (never consented).
    #[error("the app is not present in the tenant (AADSTS700016)")]
    AppNotInTenant,
    /// AADSTS7000215 / 7000222 / 700027: our own secret or certificate is wrong or expired.
    #[error("the app's credentials were rejected (AADSTS{code})")]
    CredentialsRejected { code: u64 },
    /// 429 from the token endpoint (retried before this is returned).
    #[error("the token endpoint is throttling")]
    Throttled {
        #[serde(skip)]
        retry_after: Option<Duration>,
    },
    /// 5xx or a network failure (retried before this is returned).
    #[error("the token endpoint is unavailable: {message}")]
    Transient {
        status: Option<u16>,
        message: String,
    },
    /// Anything else, as Entra described it.
    #[error("token request failed: {error} {codes:?}: {description}")]
    Other {
        status: u16,
        error: String,
        codes: Vec<u64>,
        description: String,
    },
}

impl TokenError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    /// Classifies a non-200 answer of the token endpoint.
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_codes: Vec<u64>,
            #[serde(default)]
            error_description: String,
        }
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        if let Some(b) = &parsed {
            for &code in &b.error_codes {
                match code {
                    90002 | 900023 => return Self::TenantNotFound { code },
                    700016 => return Self::AppNotInTenant,
                    7000215 | 7000222 | 700027 => return Self::CredentialsRejected { code },
                    _ => {}
                }
            }
        }
        if status == 429 {
            return Self::Throttled { retry_after };
        }
        if status >= 500 {
            return Self::Transient {
                status: Some(status),
                message: format!("HTTP {status}"),
            };
        }
        match parsed {
            Some(b) => Self::Other {
                status,
                error: b.error,
                codes: b.error_codes,
                description: b.error_description,
            },
            None => Self::Other {
                status,
                error: String::new(),
                codes: Vec::new(),
                description: String::from_utf8_lossy(&body[..body.len().min(512)])
                    .replace('\0', ""),
            },
        }
    }
}

/// One (tenant, resource) cache entry. `fetches` counts completed fetches so that callers who
/// queued behind a fetch share its outcome, failures included (no stampede on a failing tenant).
#[derive(Default)]
struct SlotInner {
    fetches: AtomicU64,
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    token: Option<Arc<AccessToken>>,
    last_error: Option<TokenError>,
}

type Slot = Arc<SlotInner>;

/// The app registrations tokens are asked for: `exchange` for Exchange, `connect` for Graph.
struct Apps {
    exchange: Arc<AppConfig>,
    connect: Arc<AppConfig>,
}

/// Caches and fetches tokens. Cheap to share behind an `Arc`.
pub struct TokenProvider {
    http: reqwest::Client,
    endpoints: Endpoints,
    apps: Apps,
    clock: Arc<dyn Clock>,
    limits: Limits,
    slots: parking_lot::Mutex<HashMap<(Uuid, Resource), Slot>>,
    requests: AtomicU64,
}

impl fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenProvider")
            .field("exchange_app", &self.apps.exchange.client_id)
            .field("connect_app", &self.apps.connect.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenProvider {
    pub(crate) fn new(
        http: reqwest::Client,
        endpoints: Endpoints,
        exchange_app: Arc<AppConfig>,
        connect_app: Arc<AppConfig>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        Self {
            http,
            endpoints,
            apps: Apps {
                exchange: exchange_app,
                connect: connect_app,
            },
            clock,
            limits,
            slots: parking_lot::Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
        }
    }

    /// Token requests this provider has sent (successful or not).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn slot(&self, tenant: Uuid, resource: Resource) -> Slot {
        self.slots
            .lock()
            .entry((tenant, resource))
            .or_default()
            .clone()
    }

    /// A cached token if it is good for 5 more minutes, else a new one. Concurrent callers for
    /// the same (tenant, resource) wait for one request.
    pub async fn get(
        &self,
        tenant: Uuid,
        resource: Resource,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let slot = self.slot(tenant, resource);
        let seen = slot.fetches.load(Ordering::Acquire);
        let mut guard = slot.state.lock().await;
        if let Some(t) = guard.token.as_ref()
            && t.fresh_at(self.clock.now())
        {
            return Ok(t.clone());
        }
        if slot.fetches.load(Ordering::Acquire) != seen
            && let Some(e) = guard.last_error.clone()
        {
            // A fetch finished while we waited and failed: share its answer.
            return Err(e);
        }
        self.fetch_into(tenant, resource, &slot, &mut guard).await
    }

    async fn fetch_into(
        &self,
        tenant: Uuid,
        resource: Resource,
        slot: &SlotInner,
        state: &mut SlotState,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let result = self.fetch(tenant, resource).await.map(Arc::new);
        match &result {
            Ok(t) => {
                state.token = Some(t.clone());
                state.last_error = None;
            }
            Err(e) => {
                state.token = None;
                state.last_error = Some(e.clone());
            }
        }
        slot.fetches.fetch_add(1, Ordering::Release);
        result
    }

    /// Always asks Entra for a new token and caches it.
    pub async fn force_refresh(
        &self,
        tenant: Uuid,
        resource: Resource,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let slot = self.slot(tenant, resource);
        let mut guard = slot.state.lock().await;
        guard.token = None;
        self.fetch_into(tenant, resource, &slot, &mut guard).await
    }

    /// Replaces the cached token only if it is still `stale` (so N callers that all saw the
    /// same 401 cause one refresh).
    pub(crate) async fn refresh_if_same(
        &self,
        tenant: Uuid,
        resource: Resource,
        stale: &Arc<AccessToken>,
    ) -> Result<Arc<AccessToken>, TokenError> {
        let slot = self.slot(tenant, resource);
        let mut guard = slot.state.lock().await;
        if let Some(t) = guard.token.as_ref()
            && !Arc::ptr_eq(t, stale)
            && t.fresh_at(self.clock.now())
        {
            return Ok(t.clone());
        }
        self.fetch_into(tenant, resource, &slot, &mut guard).await
    }

    /// Drops every cached token for `tenant` (disconnect, readiness check).
    pub fn invalidate(&self, tenant: Uuid) {
        self.slots.lock().retain(|(t, _), _| *t != tenant);
    }

    async fn fetch(&self, tenant: Uuid, resource: Resource) -> Result<AccessToken, TokenError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.fetch_once(tenant, resource).await {
                Ok(t) => return Ok(t),
                Err(e) if e.is_retryable() && attempt < self.limits.max_read_attempts => {
                    let hint = match &e {
                        TokenError::Throttled { retry_after } => *retry_after,
                        _ => None,
                    };
                    let delay = backoff_delay(&self.limits, attempt, hint);
                    tracing::debug!(%tenant, ?resource, attempt, ?delay, error = %e, "token request retry");
                    self.clock.sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn fetch_once(
        &self,
        tenant: Uuid,
        resource: Resource,
    ) -> Result<AccessToken, TokenError> {
        let (app, scope) = match resource {
            Resource::Exchange => (&self.apps.exchange, self.endpoints.exchange_scope()),
            Resource::Graph => (&self.apps.connect, self.endpoints.graph_scope()),
        };
        let token_url = self.endpoints.token_url(&tenant.to_string());
        let client_id = app.client_id.to_string();
        let now = self.clock.now();
        let mut form: Vec<(&str, String)> = vec![
            ("client_id", client_id.clone()),
            ("scope", scope),
            ("grant_type", "client_credentials".to_owned()),
        ];
        match &app.credential {
            AppCredential::Secret(s) => form.push(("client_secret", s.expose_secret().to_owned())),
            AppCredential::Certificate(c) => {
                let assertion = crate::assertion::client_assertion(c, &client_id, &token_url, now)
                    .map_err(|e| TokenError::Other {
                        status: 0,
                        error: "client_assertion".into(),
                        codes: Vec::new(),
                        description: e,
                    })?;
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push(("client_assertion", assertion));
            }
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .post(&token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| TokenError::Transient {
                status: None,
                message: crate::retry::describe_reqwest(&e),
            })?;
        let status = resp.status().as_u16();
        let retry_after = parse_retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| TokenError::Transient {
            status: Some(status),
            message: crate::retry::describe_reqwest(&e),
        })?;
        if status != 200 {
            return Err(TokenError::from_response(status, retry_after, &body));
        }
        #[derive(Deserialize)]
        struct Ok200 {
            access_token: String,
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let ok: Ok200 = serde_json::from_slice(&body).map_err(|e| TokenError::Other {
            status,
            error: "invalid_response".into(),
            codes: Vec::new(),
            description: format!("token response is not JSON with access_token: {e}"),
        })?;
        let claims = TokenClaims::decode(&ok.access_token).unwrap_or_default();
        let expires_in = ok
            .expires_in
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .unwrap_or(3599);
        // `expires_in` is measured on our own clock; `exp` is on the issuer's (skew).
        let expires_at = now + time::Duration::seconds(expires_in);
        Ok(AccessToken {
            secret: SecretString::from(ok.access_token),
            claims,
            expires_at,
            issued_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_codes_not_text() {
        let b = br#"{"error":"invalid_client","error_codes":[7000215],"error_description":"AADSTS90002: misleading"}"#;
        assert_eq!(
            TokenError::from_response(401, None, b),
            TokenError::CredentialsRejected { code: 7000215 }
        );
        let b = br#"{"error":"invalid_tenant","error_codes":[90002],"error_description":"x"}"#;
        assert_eq!(
            TokenError::from_response(400, None, b),
            TokenError::TenantNotFound { code: 90002 }
        );
        let b = br#"{"error":"unauthorized_client","error_codes":[700016]}"#;
        assert_eq!(
            TokenError::from_response(400, None, b),
            TokenError::AppNotInTenant
        );
        assert!(TokenError::from_response(503, None, b"oops").is_retryable());
        assert!(TokenError::from_response(429, None, b"").is_retryable());
        match TokenError::from_response(
            400,
            None,
            br#"{"error":"invalid_scope","error_codes":[70011],"error_description":"d"}"#,
        ) {
            TokenError::Other { error, codes, .. } => {
                assert_eq!(error, "invalid_scope");
                assert_eq!(codes, vec![70011]);
            }
            other => panic!("{other:?}"),
        }
    }
}
