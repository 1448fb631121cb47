//! `$batch` (`docs/MICROSOFT.md#batch`): up to 10 read sub-requests per HTTP request, each tagged
//! with its own id and mapped back by it. Sub-requests that are throttled or hit a 5xx are
//! re-batched with backoff; per-item `@odata.nextLink`s are followed with single continuation
//! calls; when the batch itself fails (or an item is missing from the answer) the affected items
//! fall back to single calls. Only reads are batched: a failed batch of writes could not be
//! replayed safely.

use std::collections::HashMap;

use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::M365Client;
use crate::error::{ErrorHeaders, ExchangeError, classify};
use crate::exchange::{
    CmdletOutput, CmdletRequest, Mode, app_anchor, mode_for, parse_page, read_answer, send,
};
use crate::retry::{backoff_delay, parse_retry_after_value};
use crate::token::Resource;

/// Most sub-requests per `$batch` (what CIPP sends; Microsoft's limit is unknown:
/// `docs/MICROSOFT.md#batch`).
pub const MAX_BATCH: usize = 10;

struct SubResponse {
    status: u16,
    headers: ErrorHeaders,
    body: Value,
}

fn body_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::Null => Vec::new(),
        Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap_or_default(),
    }
}

fn sub_headers(v: Option<&Value>) -> ErrorHeaders {
    let mut h = ErrorHeaders::default();
    if let Some(Value::Object(m)) = v {
        for (k, val) in m {
            let Some(s) = val.as_str() else { continue };
            match k.to_ascii_lowercase().as_str() {
                "retry-after" => h.retry_after = parse_retry_after_value(s),
                "x-exceptiontype" => h.exception_type = Some(s.to_owned()),
                "x-ms-diagnostics" => h.diagnostics = Some(s.to_owned()),
                _ => {}
            }
        }
    }
    h
}

impl M365Client {
    /// Runs read cmdlets through `$batch`, 10 per request, and returns one result per request,
    /// in the order given.
    pub async fn batch_read(
        &self,
        tenant: Uuid,
        requests: Vec<CmdletRequest>,
    ) -> Vec<Result<CmdletOutput, ExchangeError>> {
        let n = requests.len();
        let mut slots: Vec<Option<Result<CmdletOutput, ExchangeError>>> =
            (0..n).map(|_| None).collect();
        let mut chunks: Vec<Vec<(usize, CmdletRequest)>> = Vec::new();
        for (i, r) in requests.into_iter().enumerate() {
            if mode_for(&r.cmdlet) != Mode::Read {
                slots[i] = Some(Err(ExchangeError::InvalidParameter {
                    message: format!("only Get- cmdlets are batched, not {}", r.cmdlet),
                }));
                continue;
            }
            if chunks.last().is_none_or(|c| c.len() >= MAX_BATCH) {
                chunks.push(Vec::new());
            }
            if let Some(c) = chunks.last_mut() {
                c.push((i, r));
            }
        }
        let parallel = self.inner.limits.per_tenant_concurrency.max(1);
        let mut done = futures::stream::iter(chunks)
            .map(|chunk| self.run_chunk(tenant, chunk))
            .buffer_unordered(parallel);
        while let Some(results) = done.next().await {
            for (i, r) in results {
                slots[i] = Some(r);
            }
        }
        slots
            .into_iter()
            .map(|s| s.unwrap_or_else(|| Err(ExchangeError::Protocol("batch item lost".into()))))
            .collect()
    }

    async fn run_chunk(
        &self,
        tenant: Uuid,
        items: Vec<(usize, CmdletRequest)>,
    ) -> Vec<(usize, Result<CmdletOutput, ExchangeError>)> {
        let mut pending: Vec<(usize, CmdletRequest, String)> = items
            .into_iter()
            .map(|(i, r)| (i, r, Uuid::new_v4().to_string()))
            .collect();
        let mut results = Vec::with_capacity(pending.len());
        let mut singles: Vec<(usize, CmdletRequest)> = Vec::new();
        let mut attempt = 0u32;
        while !pending.is_empty() {
            attempt += 1;
            let answer = self.send_batch(tenant, &pending).await;
            let mut map = match answer {
                Ok(m) => m,
                Err(e) if self.inner.limits.may_retry(&e, attempt) => {
                    let delay = backoff_delay(&self.inner.limits, attempt, e.retry_after());
                    self.inner.clock.sleep(delay).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(%tenant, error = %e, "batch failed; falling back to single calls");
                    singles.extend(pending.drain(..).map(|(i, r, _)| (i, r)));
                    break;
                }
            };
            let mut retry = Vec::new();
            let mut wait = None;
            for (i, req, id) in pending.drain(..) {
                let Some(sub) = map.remove(&id) else {
                    singles.push((i, req));
                    continue;
                };
                if sub.status == 200 {
                    let bytes = body_bytes(&sub.body);
                    let r = match parse_page(&bytes) {
                        Ok(page) => {
                            let body =
                                Bytes::from(serde_json::to_vec(&req.body()).unwrap_or_default());
                            self.follow(tenant, &req, &body, page).await
                        }
                        Err(e) => Err(e),
                    };
                    results.push((i, r));
                    continue;
                }
                let e = classify(sub.status, &sub.headers, &body_bytes(&sub.body));
                if self.inner.limits.may_retry(&e, attempt) {
                    wait = wait.max(e.retry_after());
                    retry.push((i, req, Uuid::new_v4().to_string()));
                } else {
                    results.push((i, Err(e)));
                }
            }
            if !retry.is_empty() {
                let delay = backoff_delay(&self.inner.limits, attempt, wait);
                self.inner.clock.sleep(delay).await;
            }
            pending = retry;
        }
        let single_results = futures::future::join_all(
            singles
                .into_iter()
                .map(|(i, r)| async move { (i, self.invoke(tenant, &r).await) }),
        )
        .await;
        results.extend(single_results);
        results
    }

    async fn send_batch(
        &self,
        tenant: Uuid,
        items: &[(usize, CmdletRequest, String)],
    ) -> Result<HashMap<String, SubResponse>, ExchangeError> {
        let anchor = app_anchor(tenant);
        let requests: Vec<Value> = items
            .iter()
            .map(|(_, r, id)| {
                json!({
                    "id": id,
                    "method": "POST",
                    "url": r.url(self, tenant),
                    "headers": {
                        "Content-Type": "application/json",
                        "X-AnchorMailbox": anchor,
                        "X-CmdletName": r.cmdlet,
                    },
                    "body": r.body(),
                })
            })
            .collect();
        let body =
            Bytes::from(serde_json::to_vec(&json!({ "requests": requests })).unwrap_or_default());
        let url = self.inner.endpoints.batch_url(tenant);
        let mut token = self.inner.tokens.get(tenant, Resource::Exchange).await?;
        let mut refreshed = false;
        loop {
            let resp = {
                let permits = self.inner.limiter.acquire(tenant).await;
                let resp = self
                    .exchange_post(
                        &url,
                        &token,
                        "application/json; odata.metadata=minimal",
                        &anchor,
                        format!(
                            "odata.maxpagesize={};odata.continue-on-error",
                            self.inner.limits.page_size
                        ),
                    )
                    .body(body.clone());
                let resp = send(resp).await?;
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let bytes = read_answer(resp, status).await?;
                (status, headers, bytes, permits)
            };
            // The permits go back once the answer is read; whether Exchange throttled the
            // batch or any of its sub-requests tunes the tenant's limit.
            let (status, headers, bytes, permits) = resp;
            if status == 401 && !refreshed {
                refreshed = true;
                token = self.exchange_token_after_401(tenant, &token).await?;
                continue;
            }
            if status != 200 {
                permits.report(status == 429);
                return Err(classify(
                    status,
                    &ErrorHeaders::from_headers(&headers),
                    &bytes,
                ));
            }
            let v: Value = serde_json::from_slice(&bytes)
                .map_err(|e| ExchangeError::Protocol(format!("$batch answer is not JSON: {e}")))?;
            let responses = v
                .get("responses")
                .and_then(Value::as_array)
                .ok_or_else(|| ExchangeError::Protocol("$batch answer has no responses".into()))?;
            let mut map = HashMap::new();
            for r in responses {
                let Some(id) = r.get("id").and_then(|i| match i {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                }) else {
                    continue;
                };
                // CIPP reads only `id` and `body`; a missing status with a body error means failure.
                let body = r.get("body").cloned().unwrap_or(Value::Null);
                let status = r
                    .get("status")
                    .and_then(Value::as_u64)
                    .map(|s| s as u16)
                    .unwrap_or(if body.get("error").is_some() {
                        400
                    } else {
                        200
                    });
                map.insert(
                    id,
                    SubResponse {
                        status,
                        headers: sub_headers(r.get("headers")),
                        body,
                    },
                );
            }
            permits.report(map.values().any(|s| s.status == 429));
            return Ok(map);
        }
    }
}
