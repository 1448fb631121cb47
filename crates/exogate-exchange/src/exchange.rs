//! The `InvokeCommand` transport (`docs/MICROSOFT.md#invokecommand`): the request envelope and
//! headers, paging by POSTing the same body to `@odata.nextLink`, warnings, typed errors, read
//! retries (429 with `Retry-After`, 5xx, network), one token refresh on 401, timeouts and
//! concurrency limits.

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::M365Client;
use crate::error::{ErrorHeaders, ExchangeError, classify};
use crate::retry::{backoff_delay, describe_reqwest};
use crate::token::{AccessToken, Resource, TokenError};

/// The routing mailbox for app-only calls (`docs/MICROSOFT.md#request-headers`).
pub const SYSTEM_MAILBOX: &str = "SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}";

/// The warning Exchange gives when `ResultSize` cut a list short (`docs/MICROSOFT.md#paging`).
const TRUNCATION_MARK: &str = "increase the value for the resultsize parameter";

/// `X-AnchorMailbox` for app-only calls to `tenant`.
pub fn app_anchor(tenant: Uuid) -> String {
    format!("APP:{SYSTEM_MAILBOX}@{tenant}")
}

/// One cmdlet call.
#[derive(Debug, Clone, PartialEq)]
pub struct CmdletRequest {
    pub cmdlet: String,
    pub parameters: Map<String, Value>,
    /// Properties for `?$select=` (empty: all).
    pub select: Vec<String>,
}

impl CmdletRequest {
    pub fn new(cmdlet: impl Into<String>) -> Self {
        Self {
            cmdlet: cmdlet.into(),
            parameters: Map::new(),
            select: Vec::new(),
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.parameters.insert(name.to_owned(), value.into());
        self
    }

    /// `ResultSize: Unlimited` (list cmdlets default to 1000 and then warn).
    pub fn unlimited(self) -> Self {
        self.param("ResultSize", "Unlimited")
    }

    /// `Confirm: false` (every write).
    pub fn no_confirm(self) -> Self {
        self.param("Confirm", false)
    }

    pub fn select(mut self, props: &[&str]) -> Self {
        self.select = props.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The JSON body `{"CmdletInput":{"CmdletName":…,"Parameters":{…}}}`.
    pub fn body(&self) -> Value {
        json!({"CmdletInput": {"CmdletName": self.cmdlet, "Parameters": self.parameters}})
    }

    pub(crate) fn url(&self, client: &M365Client, tenant: Uuid) -> String {
        let mut url = client.inner.endpoints.invoke_url(tenant);
        if !self.select.is_empty() {
            url.push_str("?$select=");
            url.push_str(&self.select.join(","));
        }
        url
    }
}

/// One page of a cmdlet's answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Output records (sidecar `@odata.type` keys left in place; read properties by name).
    pub value: Vec<Value>,
    /// `@adminapi.warnings`.
    pub warnings: Vec<String>,
    pub next_link: Option<String>,
}

/// A cmdlet's whole answer (every page).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CmdletOutput {
    pub value: Vec<Value>,
    pub warnings: Vec<String>,
}

/// Whether a failed call may be repeated blindly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Reads: retried on 429/5xx/network.
    Read,
    /// Writes: never repeated here; ensure-operations re-read and decide.
    Write,
}

pub(crate) struct RawResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// Parses a 200 envelope (`docs/MICROSOFT.md#envelope`).
pub(crate) fn parse_page(body: &[u8]) -> Result<Page, ExchangeError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ExchangeError::Protocol(format!("200 body is not JSON: {e}")))?;
    let Value::Object(mut obj) = v else {
        return Err(ExchangeError::Protocol(
            "200 body is not a JSON object".into(),
        ));
    };
    if obj.contains_key("error") {
        return Err(classify(400, &ErrorHeaders::default(), body));
    }
    let value = match obj.remove("value") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
    };
    let warnings = match obj.get("@adminapi.warnings") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|w| w.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let next_link = obj
        .get("@odata.nextLink")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Ok(Page {
        value,
        warnings,
        next_link,
    })
}

/// Reads are `Get-*` cmdlets; everything else is a write.
pub(crate) fn mode_for(cmdlet: &str) -> Mode {
    if cmdlet.len() > 4 && cmdlet[..4].eq_ignore_ascii_case("get-") {
        Mode::Read
    } else {
        Mode::Write
    }
}

pub(crate) fn is_truncation_warning(w: &str) -> bool {
    w.to_ascii_lowercase().contains(TRUNCATION_MARK)
}

/// Sends a request; failing to get an answer is transient.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<reqwest::Response, ExchangeError> {
    req.send().await.map_err(|e| ExchangeError::Transient {
        status: None,
        message: describe_reqwest(&e),
    })
}

/// Reads the body of an answer with `status`; failing to read it is transient.
pub(crate) async fn read_answer(
    resp: reqwest::Response,
    status: u16,
) -> Result<Bytes, ExchangeError> {
    resp.bytes().await.map_err(|e| ExchangeError::Transient {
        status: Some(status),
        message: describe_reqwest(&e),
    })
}

impl M365Client {
    /// A POST to the Exchange admin API with the headers every call carries: the bearer token,
    /// JSON in, `accept` out, the anchor mailbox, `prefer`, JSON warnings and a fresh
    /// `client-request-id`.
    pub(crate) fn exchange_post(
        &self,
        url: &str,
        token: &AccessToken,
        accept: &'static str,
        anchor: &str,
        prefer: String,
    ) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(url)
            .header(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", token.bearer()),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, accept)
            .header("X-AnchorMailbox", anchor)
            .header("Prefer", prefer)
            .header("X-ResponseFormat", "json")
            .header("client-request-id", Uuid::new_v4().to_string())
    }

    /// The Exchange token to try again with after a 401: a fresh one, unless another caller
    /// that saw the same 401 already replaced `stale`.
    pub(crate) async fn exchange_token_after_401(
        &self,
        tenant: Uuid,
        stale: &Arc<AccessToken>,
    ) -> Result<Arc<AccessToken>, TokenError> {
        self.inner
            .tokens
            .refresh_if_same(tenant, Resource::Exchange, stale)
            .await
    }

    /// Sends one HTTP request under the concurrency limits.
    pub(crate) async fn send_raw(
        &self,
        tenant: Uuid,
        url: &str,
        body: Bytes,
        cmdlet: &str,
        token: &AccessToken,
    ) -> Result<RawResponse, ExchangeError> {
        let permits = self.inner.limiter.acquire(tenant).await;
        let resp = self
            .exchange_post(
                url,
                token,
                "application/json",
                &app_anchor(tenant),
                format!("odata.maxpagesize={}", self.inner.limits.page_size),
            )
            .header("X-CmdletName", cmdlet)
            .body(body);
        let resp = send(resp).await?;
        let status = resp.status().as_u16();
        permits.report(status == 429);
        let headers = resp.headers().clone();
        let body = read_answer(resp, status).await?;
        drop(permits);
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// One request to `url` with retries per `mode`. A 401 gets one fresh token.
    pub(crate) async fn execute(
        &self,
        tenant: Uuid,
        url: &str,
        body: &Bytes,
        cmdlet: &str,
        mode: Mode,
    ) -> Result<Page, ExchangeError> {
        let mut attempt = 0u32;
        let mut refreshed = false;
        let mut token = self.inner.tokens.get(tenant, Resource::Exchange).await?;
        loop {
            attempt += 1;
            let result = match self
                .send_raw(tenant, url, body.clone(), cmdlet, &token)
                .await
            {
                Ok(r) if r.status == 200 => parse_page(&r.body),
                Ok(r) => Err(classify(
                    r.status,
                    &ErrorHeaders::from_headers(&r.headers),
                    &r.body,
                )),
                Err(e) => Err(e),
            };
            match result {
                Ok(page) => return Ok(page),
                Err(ExchangeError::Unauthorized { .. }) if !refreshed => {
                    // The request was refused before running: safe for writes too.
                    refreshed = true;
                    token = self.exchange_token_after_401(tenant, &token).await?;
                }
                Err(e) if mode == Mode::Read && self.inner.limits.may_retry(&e, attempt) => {
                    let delay = backoff_delay(&self.inner.limits, attempt, e.retry_after());
                    tracing::debug!(%tenant, cmdlet, attempt, ?delay, error = %e, "exchange read retry");
                    self.inner.clock.sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs a cmdlet and collects every page. `Get-*` cmdlets are retried on 429, 5xx and
    /// network errors; any other cmdlet is sent once and never repeated (use the ensure
    /// operations of [`crate::delegation`] for writes).
    pub async fn invoke(
        &self,
        tenant: Uuid,
        req: &CmdletRequest,
    ) -> Result<CmdletOutput, ExchangeError> {
        self.invoke_mode(tenant, req, mode_for(&req.cmdlet)).await
    }

    /// Runs a write cmdlet exactly once (no blind retry).
    pub(crate) async fn invoke_write(
        &self,
        tenant: Uuid,
        req: &CmdletRequest,
    ) -> Result<CmdletOutput, ExchangeError> {
        self.invoke_mode(tenant, req, Mode::Write).await
    }

    async fn invoke_mode(
        &self,
        tenant: Uuid,
        req: &CmdletRequest,
        mode: Mode,
    ) -> Result<CmdletOutput, ExchangeError> {
        let body = Bytes::from(serde_json::to_vec(&req.body()).unwrap_or_default());
        let url = req.url(self, tenant);
        let first = self.execute(tenant, &url, &body, &req.cmdlet, mode).await?;
        self.follow(tenant, req, &body, first).await
    }

    /// Collects the remaining pages after `first`.
    pub(crate) async fn follow(
        &self,
        tenant: Uuid,
        req: &CmdletRequest,
        body: &Bytes,
        first: Page,
    ) -> Result<CmdletOutput, ExchangeError> {
        let mut out = CmdletOutput::default();
        let mut pages = 0u32;
        let mut page = first;
        loop {
            pages += 1;
            check_truncation(&page, pages)?;
            out.value.append(&mut page.value);
            out.warnings.append(&mut page.warnings);
            let Some(next) = page.next_link.take() else {
                return Ok(out);
            };
            page = self.next_page(tenant, req, body, &next, pages).await?;
        }
    }

    async fn next_page(
        &self,
        tenant: Uuid,
        req: &CmdletRequest,
        body: &Bytes,
        next: &str,
        pages_read: u32,
    ) -> Result<Page, ExchangeError> {
        if pages_read >= self.inner.limits.max_pages {
            return Err(ExchangeError::IncompleteList {
                pages_read,
                reason: format!("more than {} pages", self.inner.limits.max_pages),
            });
        }
        self.check_next_link(tenant, next)
            .map_err(|reason| ExchangeError::IncompleteList { pages_read, reason })?;
        self.execute(tenant, next, body, &req.cmdlet, Mode::Read)
            .await
            .map_err(|e| ExchangeError::IncompleteList {
                pages_read,
                reason: format!("continuation failed: {e}"),
            })
    }

    /// A nextLink must stay on the Exchange origin (scheme, host, port) and under its
    /// `/adminapi/` path: the continuation carries our bearer token, which must never go to
    /// another host. (The tenant segment is left to Exchange, which may spell it as a domain.)
    fn check_next_link(&self, _tenant: Uuid, next: &str) -> Result<(), String> {
        let base = &self.inner.endpoints.exchange;
        let u = url::Url::parse(next).map_err(|_| "the nextLink is not a URL".to_owned())?;
        let same_origin = u.scheme() == base.scheme()
            && u.host_str().map(str::to_ascii_lowercase)
                == base.host_str().map(str::to_ascii_lowercase)
            && u.port_or_known_default() == base.port_or_known_default();
        if !same_origin {
            return Err(format!(
                "the nextLink points to another host ({})",
                u.host_str().unwrap_or("none")
            ));
        }
        let prefix = format!("{}/adminapi/", base.path().trim_end_matches('/'));
        if !u
            .path()
            .to_ascii_lowercase()
            .starts_with(&prefix.to_ascii_lowercase())
        {
            return Err("the nextLink points outside the Exchange admin API".into());
        }
        Ok(())
    }

    /// A list cmdlet as a stream of pages (`ResultSize: Unlimited` is the caller's job; the
    /// typed helpers set it). Any failure after the first page ends the stream with
    /// [`ExchangeError::IncompleteList`].
    pub fn pages(
        &self,
        tenant: Uuid,
        req: CmdletRequest,
    ) -> Pin<Box<dyn Stream<Item = Result<Page, ExchangeError>> + Send + 'static>> {
        struct St {
            client: M365Client,
            tenant: Uuid,
            req: Arc<CmdletRequest>,
            body: Bytes,
            next: Option<String>,
            pages: u32,
            done: bool,
        }
        let body = Bytes::from(serde_json::to_vec(&req.body()).unwrap_or_default());
        let first = req.url(self, tenant);
        let st = St {
            client: self.clone(),
            tenant,
            req: Arc::new(req),
            body,
            next: Some(first),
            pages: 0,
            done: false,
        };
        Box::pin(futures::stream::unfold(st, |mut st| async move {
            if st.done {
                return None;
            }
            let url = st.next.take()?;
            let result = if st.pages == 0 {
                st.client
                    .execute(st.tenant, &url, &st.body, &st.req.cmdlet, Mode::Read)
                    .await
            } else {
                st.client
                    .next_page(st.tenant, &st.req, &st.body, &url, st.pages)
                    .await
            };
            let result = result.and_then(|mut page| {
                st.pages += 1;
                check_truncation(&page, st.pages)?;
                st.next = page.next_link.take();
                Ok(page)
            });
            if result.is_err() || st.next.is_none() {
                st.done = true;
            }
            Some((result, st))
        }))
    }

    /// A list cmdlet, every page collected.
    pub async fn list_all(
        &self,
        tenant: Uuid,
        req: &CmdletRequest,
    ) -> Result<CmdletOutput, ExchangeError> {
        self.invoke(tenant, req).await
    }
}

fn check_truncation(page: &Page, pages_read: u32) -> Result<(), ExchangeError> {
    if let Some(w) = page.warnings.iter().find(|w| is_truncation_warning(w)) {
        return Err(ExchangeError::IncompleteList {
            pages_read,
            reason: format!("Exchange truncated the list: {w}"),
        });
    }
    Ok(())
}

/// Reads a string property (ignores `@odata.type` sidecars by reading the exact name).
pub(crate) fn prop<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Reads a string-or-array property as strings.
pub(crate) fn prop_list(v: &Value, name: &str) -> Vec<String> {
    match v.get(name) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        _ => Vec::new(),
    }
}

pub(crate) fn prop_bool(v: &Value, name: &str) -> Option<bool> {
    match v.get(name) {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => s.parse::<bool>().ok().or(match s.as_str() {
            "True" => Some(true),
            "False" => Some(false),
            _ => None,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_variants() {
        let p = parse_page(br#"{"value":null,"@adminapi.warnings":["w"]}"#).unwrap();
        assert!(p.value.is_empty());
        assert_eq!(p.warnings, vec!["w"]);
        let p = parse_page(br#"{"@odata.nextLink":"http://x/y","value":[{"a":1}]}"#).unwrap();
        assert_eq!(p.next_link.as_deref(), Some("http://x/y"));
        assert_eq!(p.value.len(), 1);
        assert!(parse_page(b"\0\0").is_err());
        assert!(is_truncation_warning(
            "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter."
        ));
    }
}
