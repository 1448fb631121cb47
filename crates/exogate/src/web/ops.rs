//! `/healthz` (the store answers) and `/metrics` (Prometheus text format): HTTP requests by
//! route and status with a latency histogram, approval requests by state, companies by Exchange
//! Admin state, the audit chain's length, and the login defences (password checks running,
//! peak, waiting; logins refused; keys tracked).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use exogate_core::request::RequestState;
use parking_lot::Mutex;
use serde_json::json;

use super::WebState;

/// Latency buckets (seconds).
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteStats {
    count: u64,
    sum_secs: f64,
    buckets: [u64; BUCKETS.len()],
}

/// Counters kept by the web layer.
#[derive(Default)]
pub struct Metrics {
    by_route: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, RouteStats>>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, secs: f64) {
        *self
            .by_route
            .lock()
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let mut l = self.latency.lock();
        let s = l.entry(route.to_owned()).or_default();
        s.count += 1;
        s.sum_secs += secs;
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                s.buckets[i] += 1;
            }
        }
    }
}

/// Middleware: counts every request by matched route (never the raw path) and status.
pub async fn track(State(st): State<WebState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    st.metrics.record(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /healthz`: 200 `{"status":"ok"}` when the store answers, else 503 with a fixed body
/// (the driver's error text, which can name hosts, databases and users, goes to the log only).
pub async fn healthz(State(st): State<WebState>) -> Response {
    match st.app.store.audit_head().await {
        Ok(_) => (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: the database did not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({ "status": "unavailable", "error": { "code": "unavailable", "message": "the database is not answering" } })),
            )
                .into_response()
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`: Prometheus text format 0.0.4.
pub async fn metrics(State(st): State<WebState>) -> Response {
    let mut out = String::new();
    out.push_str("# HELP exogate_http_requests_total HTTP requests by method, route and status.\n# TYPE exogate_http_requests_total counter\n");
    for ((m, r, s), n) in st.metrics.by_route.lock().iter() {
        let _ = writeln!(
            out,
            "exogate_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{s}\"}} {n}",
            esc(m),
            esc(r)
        );
    }
    out.push_str("# HELP exogate_http_request_duration_seconds HTTP request latency by route.\n# TYPE exogate_http_request_duration_seconds histogram\n");
    for (r, s) in st.metrics.latency.lock().iter() {
        let r = esc(r);
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "exogate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                s.buckets[i]
            );
        }
        let _ = writeln!(
            out,
            "exogate_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}",
            s.count
        );
        let _ = writeln!(
            out,
            "exogate_http_request_duration_seconds_sum{{route=\"{r}\"}} {}",
            s.sum_secs
        );
        let _ = writeln!(
            out,
            "exogate_http_request_duration_seconds_count{{route=\"{r}\"}} {}",
            s.count
        );
    }
    // Approval requests by state (every state, zero included).
    out.push_str("# HELP exogate_approval_requests Approval requests by state.\n# TYPE exogate_approval_requests gauge\n");
    if let Ok(counts) = st.app.store.count_requests_by_state().await {
        for state in RequestState::ALL {
            let n = counts
                .iter()
                .find(|(s, _)| *s == state)
                .map_or(0, |(_, n)| *n);
            let _ = writeln!(
                out,
                "exogate_approval_requests{{state=\"{}\"}} {n}",
                state.as_str()
            );
        }
    }
    if let Ok(companies) = st.app.store.list_companies().await {
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &companies {
            let s = match (&c.connection, &c.exchange_status) {
                (None, _) => "not_connected",
                (Some(_), None) => "unknown",
                (Some(_), Some(r)) => r.state.as_str(),
            };
            *by.entry(s).or_default() += 1;
        }
        out.push_str("# HELP exogate_companies Companies by Exchange Admin state.\n# TYPE exogate_companies gauge\n");
        for (s, n) in by {
            let _ = writeln!(out, "exogate_companies{{exchange_state=\"{s}\"}} {n}");
        }
    }
    let up = match st.app.store.audit_head().await {
        Ok(Some((seq, _))) => {
            out.push_str("# HELP exogate_audit_events Events in the audit chain.\n# TYPE exogate_audit_events gauge\n");
            let _ = writeln!(out, "exogate_audit_events {seq}");
            1
        }
        Ok(None) => 1,
        Err(_) => 0,
    };
    let gate = st.app.login.gate.stats();
    let limiter = st.app.login.limiter_stats();
    for (name, kind, help, value) in [
        (
            "exogate_password_checks_limit",
            "gauge",
            "Password checks allowed to run at once.",
            gate.concurrency as u64,
        ),
        (
            "exogate_password_checks_running",
            "gauge",
            "Password checks running now.",
            gate.running as u64,
        ),
        (
            "exogate_password_checks_peak",
            "gauge",
            "The most password checks that ever ran at once.",
            gate.peak as u64,
        ),
        (
            "exogate_password_checks_waiting",
            "gauge",
            "Password checks waiting for a slot now.",
            gate.waiting as u64,
        ),
        (
            "exogate_password_checks_waited_total",
            "counter",
            "Password checks that had to wait for a slot.",
            gate.waited,
        ),
        (
            "exogate_password_checks_total",
            "counter",
            "Password checks run.",
            gate.checks,
        ),
        (
            "exogate_login_refused_total",
            "counter",
            "Logins refused (429) while an address or user name was locked out.",
            limiter.refused,
        ),
        (
            "exogate_login_tracked_addresses",
            "gauge",
            "Client addresses the login limiter tracks.",
            limiter.tracked_addresses as u64,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
    out.push_str(
        "# HELP exogate_store_up Whether the store answered.\n# TYPE exogate_store_up gauge\n",
    );
    let _ = writeln!(out, "exogate_store_up {up}");
    let mut r = (StatusCode::OK, out).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// `GET /readyz`: whether this replica should get traffic. 200 `{"status":"ready"}` when the
/// database answers and every migration this build knows is applied; else 503
/// `{"status":"not_ready","reason":"database_unavailable"|"migrations_pending"}`. `/healthz`
/// stays the liveness check.
pub async fn readyz(State(st): State<WebState>) -> Response {
    let reason = match st.app.db.readiness().await {
        exogate_store::Readiness::Ready => {
            return (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response();
        }
        exogate_store::Readiness::Unreachable(error) => {
            tracing::warn!(%error, "readiness: the database did not answer");
            "database_unavailable"
        }
        exogate_store::Readiness::MigrationsPending { missing } => {
            tracing::warn!(
                missing,
                "readiness: migrations are not applied; run `exogate migrate`"
            );
            "migrations_pending"
        }
    };
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "status": "not_ready", "reason": reason })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
