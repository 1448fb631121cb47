//! Admin consent: the v1 URL that connects a company (connect app), the v2 URL with the Exchange
//! scope for the "Authorize" step (Exchange app), parsing of the redirect back
//! (`docs/MICROSOFT.md#callback`), and verifying a new connection with a token for that tenant plus
//! Graph `GET /v1.0/organization`.

use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use crate::M365Client;
use crate::config::trim;
use crate::retry::{backoff_delay, describe_reqwest, parse_retry_after};
use crate::token::{Resource, TokenError};

/// A successful consent redirect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentGrant {
    /// The consenting tenant (never trusted on its own: verify with a token).
    pub tenant: Uuid,
    pub state: String,
    /// Present on the v2 form.
    pub scope: Option<String>,
}

/// A consent redirect that is not a success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ConsentError {
    /// The `state` is not the one we issued (forged or stale redirect).
    #[error("the consent answer does not belong to this request (state mismatch)")]
    StateMismatch,
    /// The admin pressed Cancel (AADSTS65004, `permission_denied`).
    #[error("the administrator declined consent")]
    Declined { description: String },
    /// AADSTS50020: the person signed in with an account from another directory (often the
    /// MSP's own tenant instead of the customer's).
    #[error(
        "the account used belongs to another directory; sign in as an admin of the customer's tenant"
    )]
    OtherDirectory { description: String },
    /// Any other error redirect.
    #[error("consent failed: {error} (AADSTS{}): {description}", .code.map(|c| c.to_string()).unwrap_or_else(|| "?".into()))]
    Failed {
        error: String,
        code: Option<u64>,
        description: String,
    },
    /// Not a consent answer (no error, but no tenant or no `admin_consent=True`).
    #[error("malformed consent answer: {0}")]
    Malformed(String),
}

/// Why a new connection could not be verified.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum ConnectionError {
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// The token (or Graph) names another tenant than the one consent named.
    #[error("consent went to tenant {actual}, not {expected}")]
    WrongTenant { expected: Uuid, actual: String },
    #[error("Graph answered {status}: {message}")]
    Graph { status: u16, message: String },
    #[error("Graph is unavailable: {0}")]
    Transient(String),
    #[error("unexpected Graph answer: {0}")]
    Protocol(String),
}

/// The customer's organization as Graph describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub tenant_id: Uuid,
    pub display_name: String,
    pub default_domain: Option<String>,
    pub initial_domain: Option<String>,
}

fn aadsts_code(error_uri: Option<&str>, description: &str) -> Option<u64> {
    if let Some(uri) = error_uri
        && let Ok(u) = Url::parse(uri)
        && let Some((_, c)) = u.query_pairs().find(|(k, _)| k == "code")
        && let Ok(n) = c.parse()
    {
        return Some(n);
    }
    let rest = description.trim_start().strip_prefix("AADSTS")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Parses the query string of the consent redirect. `expected_state` is the value issued with
/// the consent URL; it is compared before anything else.
pub fn parse_consent_callback(
    query: &str,
    expected_state: &str,
) -> Result<ConsentGrant, ConsentError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let state = get("state").unwrap_or("");
    if !constant_time_eq(state.as_bytes(), expected_state.as_bytes()) {
        return Err(ConsentError::StateMismatch);
    }
    if let Some(error) = get("error") {
        let description = get("error_description").unwrap_or("").to_owned();
        let code = aadsts_code(get("error_uri"), &description);
        return Err(match (error, code) {
            (_, Some(50020)) => ConsentError::OtherDirectory { description },
            (_, Some(65004)) | ("permission_denied", _) => ConsentError::Declined { description },
            _ => ConsentError::Failed {
                error: error.to_owned(),
                code,
                description,
            },
        });
    }
    if !get("admin_consent").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(ConsentError::Malformed("admin_consent is not True".into()));
    }
    let tenant = get("tenant").ok_or_else(|| ConsentError::Malformed("no tenant".into()))?;
    let tenant = Uuid::parse_str(tenant)
        .map_err(|_| ConsentError::Malformed(format!("tenant is not a GUID: {tenant}")))?;
    Ok(ConsentGrant {
        tenant,
        state: state.to_owned(),
        scope: get("scope").map(str::to_owned),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl M365Client {
    /// v1 admin-consent URL for the connect app (connect a company). `tenant` `None` lets the
    /// admin's own tenant decide (`organizations`).
    pub fn connect_consent_url(
        &self,
        tenant: Option<Uuid>,
        redirect_uri: &str,
        state: &str,
    ) -> Url {
        let t = tenant.map_or_else(|| "organizations".to_owned(), |t| t.to_string());
        let mut u = self.login_url(&format!("{t}/adminconsent"));
        u.query_pairs_mut()
            .append_pair("client_id", &self.inner.connect_app_id.to_string())
            .append_pair("state", state)
            .append_pair("redirect_uri", redirect_uri);
        u
    }

    /// v2 admin-consent URL for the Exchange app with `scope=https://outlook.office365.com/.default`
    /// (the "Authorize" step, Step 1 of `docs/DOMAIN.md#exchange-admin-status`).
    pub fn exchange_consent_url(&self, tenant: Uuid, redirect_uri: &str, state: &str) -> Url {
        let mut u = self.login_url(&format!("{tenant}/v2.0/adminconsent"));
        u.query_pairs_mut()
            .append_pair("client_id", &self.inner.exchange_app_id.to_string())
            .append_pair("scope", &self.inner.endpoints.exchange_scope())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state);
        u
    }

    fn login_url(&self, path: &str) -> Url {
        let s = format!("{}/{}", trim(&self.inner.endpoints.login), path);
        Url::parse(&s).unwrap_or_else(|_| self.inner.endpoints.login.clone())
    }

    /// Verifies a new connection: a fresh Graph token for `expected_tenant` with the connect
    /// app (its `tid` must be that tenant), then `GET /v1.0/organization`.
    pub async fn verify_connection(
        &self,
        expected_tenant: Uuid,
    ) -> Result<Organization, ConnectionError> {
        let token = self
            .inner
            .tokens
            .force_refresh(expected_tenant, Resource::Graph)
            .await?;
        match token.claims.tenant_id() {
            Some(t) if t == expected_tenant => {}
            _ => {
                return Err(ConnectionError::WrongTenant {
                    expected: expected_tenant,
                    actual: token.claims.tid.clone().unwrap_or_else(|| "(none)".into()),
                });
            }
        }
        let url = format!("{}/v1.0/organization", trim(&self.inner.endpoints.graph));
        let limits = &self.inner.limits;
        let mut attempt = 0;
        let body = loop {
            attempt += 1;
            let r = self
                .inner
                .http
                .get(&url)
                .header(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {}", token.bearer()),
                )
                .header(reqwest::header::ACCEPT, "application/json")
                .header("client-request-id", Uuid::new_v4().to_string())
                .send()
                .await;
            let (status, retry_after, bytes) = match r {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let ra = parse_retry_after(resp.headers());
                    match resp.bytes().await {
                        Ok(b) => (status, ra, b),
                        Err(e) => (0, None, bytes::Bytes::from(describe_reqwest(&e))),
                    }
                }
                Err(e) => (0, None, bytes::Bytes::from(describe_reqwest(&e))),
            };
            if status == 200 {
                break bytes;
            }
            let retryable = status == 0 || status == 429 || status >= 500;
            if retryable && attempt < limits.max_read_attempts {
                self.inner
                    .clock
                    .sleep(backoff_delay(limits, attempt, retry_after))
                    .await;
                continue;
            }
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned()
                });
            return Err(if retryable {
                ConnectionError::Transient(message)
            } else {
                ConnectionError::Graph { status, message }
            });
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Domain {
            name: String,
            #[serde(default)]
            is_default: bool,
            #[serde(default)]
            is_initial: bool,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Org {
            id: String,
            #[serde(default)]
            display_name: String,
            #[serde(default)]
            verified_domains: Vec<Domain>,
        }
        #[derive(Deserialize)]
        struct List {
            value: Vec<Org>,
        }
        let list: List = serde_json::from_slice(&body)
            .map_err(|e| ConnectionError::Protocol(format!("organization list: {e}")))?;
        let org = list
            .value
            .into_iter()
            .next()
            .ok_or_else(|| ConnectionError::Protocol("organization list is empty".into()))?;
        let id = Uuid::parse_str(&org.id).map_err(|_| {
            ConnectionError::Protocol(format!("organization id is not a GUID: {}", org.id))
        })?;
        if id != expected_tenant {
            return Err(ConnectionError::WrongTenant {
                expected: expected_tenant,
                actual: org.id,
            });
        }
        Ok(Organization {
            tenant_id: id,
            display_name: org.display_name,
            default_domain: org
                .verified_domains
                .iter()
                .find(|d| d.is_default)
                .map(|d| d.name.clone()),
            initial_domain: org
                .verified_domains
                .iter()
                .find(|d| d.is_initial)
                .map(|d| d.name.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_v1_and_v2() {
        let g = parse_consent_callback(
            "admin_consent=True&tenant=11111111-1111-4111-8111-111111111111&state=s1",
            "s1",
        )
        .unwrap();
        assert_eq!(g.scope, None);
        let g = parse_consent_callback(
            "?admin_consent=True&tenant=11111111-1111-4111-8111-111111111111&scope=https%3A%2F%2Foutlook.office365.com%2F.default&state=s1",
            "s1",
        )
        .unwrap();
        assert_eq!(
            g.scope.as_deref(),
            Some("https://outlook.office365.com/.default")
        );
    }

    #[test]
    fn errors_serialize() {
        let v = serde_json::to_value(ConsentError::Malformed("x".into())).unwrap();
        assert_eq!(v, serde_json::json!({"kind": "malformed", "detail": "x"}));
        let v = serde_json::to_value(ConnectionError::Token(TokenError::AppNotInTenant)).unwrap();
        assert_eq!(v["detail"]["kind"], "app_not_in_tenant");
        let e = crate::ExchangeError::InvalidIdentity(crate::IdentityError::Empty);
        assert_eq!(serde_json::to_value(e).unwrap()["detail"]["kind"], "empty");
    }

    #[test]
    fn errors_are_not_success() {
        let q = "error=access_denied&error_description=AADSTS65004%3a+User+declined+to+consent+to+access+the+app.%0d%0aTrace+ID%3a+x&error_uri=https%3a%2f%2flogin.microsoftonline.com%2ferror%3fcode%3d65004&admin_consent=True&state=s";
        assert!(matches!(
            parse_consent_callback(q, "s"),
            Err(ConsentError::Declined { .. })
        ));
        let q = "error=access_denied&error_description=AADSTS50020%3a+User+account+from+identity+provider+does+not+exist+in+tenant&admin_consent=True&state=s";
        assert!(matches!(
            parse_consent_callback(q, "s"),
            Err(ConsentError::OtherDirectory { .. })
        ));
        let q = "error=permission_denied&error_description=The+admin+canceled+the+request&state=s";
        assert!(matches!(
            parse_consent_callback(q, "s"),
            Err(ConsentError::Declined { .. })
        ));
        let q =
            "admin_consent=True&error=consent_required&error_description=AADSTS65004...&state=s";
        assert!(matches!(
            parse_consent_callback(q, "s"),
            Err(ConsentError::Declined { .. })
        ));
        let q = "error=server_error&error_description=AADSTS90033%3a+busy&state=s";
        assert!(matches!(
            parse_consent_callback(q, "s"),
            Err(ConsentError::Failed {
                code: Some(90033),
                ..
            })
        ));
        assert_eq!(
            parse_consent_callback("admin_consent=True&tenant=x&state=t", "s"),
            Err(ConsentError::StateMismatch)
        );
        assert!(matches!(
            parse_consent_callback("tenant=11111111-1111-4111-8111-111111111111&state=s", "s"),
            Err(ConsentError::Malformed(_))
        ));
        assert!(matches!(
            parse_consent_callback("admin_consent=True&state=s", "s"),
            Err(ConsentError::Malformed(_))
        ));
    }
}
