//! Who may address this server, checked in front of every route (pages, API, `/mcp`, the
//! consent callback, `/healthz`, `/metrics`, assets) before any handler runs:
//!
//! - `Host`: the public URL's `host[:port]`, or one of `[server] allowed_hosts` (`host`: any
//!   port; `host:port`: that port), plus `localhost`, `127.0.0.1` and `[::1]` on any port when
//!   `[server] loopback_hosts` is on (the demo). Anything else, a DNS-rebinding page included,
//!   gets `421 host_not_allowed`.
//! - Cross-site requests (CSRF), for every method but `GET`, `HEAD` and `OPTIONS`: an `Origin`,
//!   when sent, must be the public URL's origin (or a loopback origin when `loopback_hosts` is
//!   on); it is never compared with `Host`, which the caller chooses. Without `Origin`, or with
//!   `Origin: null` (what browsers send for the pages' own forms under
//!   `Referrer-Policy: no-referrer`), `Sec-Fetch-Site` must be `same-origin` or `none`; `null`
//!   without it is refused. Requests with neither header are not from a browser (scripts, the
//!   CLI) and pass. Refusals are `403 origin_not_allowed`.
//!   Session-authenticated changes carry the session's CSRF token as well (`web::auth`).
//!
//! `/mcp`'s own rmcp checks get the same lists ([`EdgePolicy::rmcp_hosts`],
//! [`EdgePolicy::rmcp_origins`]).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::web::error::{ApiError, HttpError, PageError};

/// A host name (lowercase, IPv6 without brackets) and an optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `host`, `host:port`, `[v6]` or `[v6]:port` (no scheme, path or user info).
pub fn parse_authority(value: &str) -> Option<Authority> {
    let value = value.trim();
    if value.is_empty() || value.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let a: axum::http::uri::Authority = value.parse().ok()?;
    // (fuzz-scale) Brackets come off an IPv6 literal as a pair; anywhere else they are no host.
    // Between brackets only an IPv6 address.
    let host = a.host();
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
        Some(_) => return None,
        None => host,
    };
    if host.contains(['[', ']']) {
        return None;
    }
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    // (fuzz-scale) One final dot names the root; a second one is an empty label, no host.
    if host.is_empty() || host.ends_with('.') {
        return None;
    }
    Some(Authority {
        host,
        port: a.port_u16(),
    })
}

const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The hosts and origins this server answers to, built once from the configuration.
#[derive(Debug, Clone)]
pub struct EdgePolicy {
    /// The public URL's host and port (the scheme's default when the URL names none).
    public: Authority,
    /// The public URL's origin, `scheme://host[:port]`.
    public_origin: String,
    /// `[server] allowed_hosts` (a missing port matches any).
    extra: Vec<Authority>,
    /// Loopback hosts and origins on any port (the demo).
    loopback: bool,
}

impl EdgePolicy {
    /// The policy for `public_url`, the configured extra hosts, and the demo's loopback switch.
    /// Extra hosts that do not parse are skipped (the configuration refuses them).
    pub fn new(public_url: &Url, allowed_hosts: &[String], loopback: bool) -> Self {
        let host = public_url
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        Self {
            public: Authority {
                host,
                port: public_url.port_or_known_default(),
            },
            public_origin: public_url.origin().ascii_serialization(),
            extra: allowed_hosts
                .iter()
                .filter_map(|h| parse_authority(h))
                .collect(),
            loopback,
        }
    }

    /// Whether a request's `Host` (or `:authority`) names this server.
    pub fn host_allowed(&self, value: &str) -> bool {
        let Some(a) = parse_authority(value) else {
            return false;
        };
        let public_port = a.port.or_else(|| {
            // A Host without a port means the default port of the scheme the client used; the
            // public URL's scheme is the one it should have used.
            if self.public_origin.starts_with("https:") {
                Some(443)
            } else {
                Some(80)
            }
        });
        (a.host == self.public.host && public_port == self.public.port)
            || self
                .extra
                .iter()
                .any(|e| e.host == a.host && (e.port.is_none() || e.port == a.port))
            || (self.loopback && LOOPBACK.contains(&a.host.as_str()))
    }

    /// Whether a browser's `Origin` is this server's.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim();
        if origin == self.public_origin {
            return true;
        }
        if !self.loopback {
            return false;
        }
        let Some(rest) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        parse_authority(rest).is_some_and(|a| LOOPBACK.contains(&a.host.as_str()))
    }

    /// The same hosts in the form rmcp's `allowed_hosts` takes.
    pub fn rmcp_hosts(&self) -> Vec<String> {
        let show = |a: &Authority| {
            let host = if a.host.contains(':') {
                format!("[{}]", a.host)
            } else {
                a.host.clone()
            };
            match a.port {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        };
        let mut hosts = vec![show(&self.public)];
        // A Host header without the default port.
        if matches!(self.public.port, Some(80 | 443)) {
            hosts.push(show(&Authority {
                host: self.public.host.clone(),
                port: None,
            }));
        }
        hosts.extend(self.extra.iter().map(show));
        if self.loopback {
            hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
        }
        hosts
    }

    /// The same origins in the form rmcp's `allowed_origins` takes.
    pub fn rmcp_origins(&self) -> Vec<String> {
        let mut origins = vec![self.public_origin.clone()];
        if self.loopback {
            for scheme in ["http", "https"] {
                for host in ["localhost", "127.0.0.1", "[::1]"] {
                    origins.push(format!("{scheme}://{host}:*"));
                }
            }
        }
        origins
    }
}

/// Errors of this layer answer as JSON on the API, `/mcp`, `/healthz` and `/metrics`, and as an
/// error page elsewhere.
fn refuse(path: &str, e: HttpError) -> Response {
    let json = ["/api/", "/mcp", "/healthz", "/metrics"]
        .iter()
        .any(|p| path.starts_with(p));
    if json {
        ApiError(e).into_response()
    } else {
        PageError(e).into_response()
    }
}

/// The `Host` the request names: the request target's authority (HTTP/2, absolute form), else
/// the `Host` header.
fn request_host(req: &Request) -> Option<&str> {
    match req.uri().authority() {
        Some(a) => Some(a.as_str()),
        None => req.headers().get(header::HOST)?.to_str().ok(),
    }
}

/// Middleware: `421 host_not_allowed` unless the request names this server.
pub async fn check_host(
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
    next: Next,
) -> Response {
    if request_host(&req).is_some_and(|h| policy.host_allowed(h)) {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "request refused: Host is not this server's");
    refuse(req.uri().path(), HttpError::host_not_allowed())
}

/// Middleware: `403 origin_not_allowed` for a browser's cross-site change.
pub async fn check_origin(
    State(policy): State<Arc<EdgePolicy>>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    let site = headers
        .get("sec-fetch-site")
        .map(|s| matches!(s.to_str(), Ok("same-origin" | "none")));
    let allowed = match (origin, site) {
        // `Origin: null`: browsers send it for this server's own forms too, because its pages
        // are served with `Referrer-Policy: no-referrer`; then only Sec-Fetch-Site can tell.
        (Some("null"), Some(same)) => same,
        (Some("null"), None) => false,
        (Some(origin), _) => policy.origin_allowed(origin),
        (None, Some(same)) => same,
        (None, None) => true,
    };
    if allowed {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "request refused: cross-origin change");
    refuse(req.uri().path(), HttpError::origin_not_allowed())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(url: &str, extra: &[&str], loopback: bool) -> EdgePolicy {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        EdgePolicy::new(&Url::parse(url).unwrap(), &extra, loopback)
    }

    #[test]
    fn hosts() {
        let p = policy("https://exogate.example.com", &["internal:8443"], false);
        for ok in [
            "exogate.example.com",
            "EXOGATE.example.com:443",
            "exogate.example.com.",
            "internal:8443",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "exogate.example.com:8443",
            "internal",
            "internal:80",
            "localhost",
            "127.0.0.1:443",
            "",
            "exogate.example.com/x",
            "user@exogate.example.com",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        let demo = policy("http://127.0.0.1:8080", &[], true);
        for ok in ["127.0.0.1:8080", "localhost:1", "[::1]:9", "127.0.0.1"] {
            assert!(demo.host_allowed(ok), "{ok}");
        }
        assert!(!demo.host_allowed("evil.example:8080"));
        let strict = policy("http://127.0.0.1:8080", &[], false);
        assert!(strict.host_allowed("127.0.0.1:8080"));
        assert!(!strict.host_allowed("localhost:8080"));
        assert!(!strict.host_allowed("127.0.0.1:8081"));
    }

    #[test]
    fn origins() {
        let p = policy("https://exogate.example.com", &["internal:8443"], false);
        assert!(p.origin_allowed("https://exogate.example.com"));
        for bad in [
            "http://exogate.example.com",
            "https://exogate.example.com:8443",
            "https://internal:8443",
            "https://evil.example",
            "null",
            "http://localhost:8080",
        ] {
            assert!(!p.origin_allowed(bad), "{bad}");
        }
        let demo = policy("http://127.0.0.1:8080", &[], true);
        assert!(demo.origin_allowed("http://127.0.0.1:8080"));
        assert!(demo.origin_allowed("http://localhost:5173"));
        assert!(!demo.origin_allowed("http://evil.example:8080"));
    }
}
