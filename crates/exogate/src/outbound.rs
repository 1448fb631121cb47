//! (hardening) Outbound requests an admin points exogate at (webhooks, the SMTP relay) reach
//! only public addresses unless `[notifications] allow_private_targets` is on. The rule is the
//! core's (`exogate_core::outbound`); here names are resolved and every address checked: when
//! a webhook is saved ([`Targets`]), and again when it is sent, where the HTTP client resolves
//! through [`CheckedResolver`] and so connects only to an address that was checked (a name
//! that changed its address since it was saved, "DNS rebinding", is refused then), and an IP
//! literal is checked by [`check_literal_url`]. Redirects are never followed
//! (`crate::notify::webhook::client`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use exogate_core::CoreError;
use exogate_core::ops::notify::TargetCheck;
use url::Url;

/// How long resolving one name may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The host and port of an http(s) URL, its host an address when it is a literal.
enum Host {
    Literal(IpAddr),
    Name(String),
}

fn host_of(url: &Url) -> Result<Host, CoreError> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => Ok(Host::Literal(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => Ok(Host::Literal(IpAddr::V6(ip))),
        Some(url::Host::Domain(d)) => Ok(Host::Name(d.to_owned())),
        None => Err(CoreError::invalid("url", "the URL has no host".to_owned())),
    }
}

fn parse(url: &str) -> Result<Url, CoreError> {
    Url::parse(url).map_err(|_| CoreError::invalid("url", "the URL cannot be read".to_owned()))
}

/// Resolves `host` (a name) and checks every address it has; returns them.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, CoreError> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        exogate_core::outbound::check(host, &[ip], allow_private)?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if !allow_private && exogate_core::outbound::loopback_name(host) {
        let loopback = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        exogate_core::outbound::check(host, &[loopback], false)?;
    }
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(_)) | Err(_) => Vec::new(),
        };
    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
    if ips.is_empty() && allow_private {
        return Err(CoreError::invalid(
            "url",
            format!(
                "the host `{}` has no address; check the name",
                exogate_core::text::capped(host, 64)
            ),
        ));
    }
    exogate_core::outbound::check(host, &ips, allow_private)?;
    Ok(addrs)
}

/// Checks a URL whose host is an IP literal (a name is checked when it is resolved).
pub fn check_literal_url(url: &str, allow_private: bool) -> Result<(), CoreError> {
    let url = parse(url)?;
    match host_of(&url)? {
        Host::Literal(ip) => {
            exogate_core::outbound::check(url.host_str().unwrap_or_default(), &[ip], allow_private)
        }
        Host::Name(_) => Ok(()),
    }
}

/// The save-time check of webhook URLs: a literal is checked, a name resolved and each of its
/// addresses checked. With `allow_private` nothing is resolved.
pub struct Targets {
    pub allow_private: bool,
}

#[async_trait::async_trait]
impl TargetCheck for Targets {
    async fn check_url(&self, url: &str) -> Result<(), CoreError> {
        if self.allow_private {
            return Ok(());
        }
        let parsed = parse(url)?;
        let port = parsed.port_or_known_default().unwrap_or(443);
        match host_of(&parsed)? {
            Host::Literal(_) => check_literal_url(url, false),
            Host::Name(name) => resolve_checked(&name, port, false).await.map(|_| ()),
        }
    }
}

/// Why the send-time resolver refused a name (found again in the error's sources, so the
/// delivery's error says it in words).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// The address is not allowed (otherwise the name did not resolve).
    pub not_allowed: bool,
    pub message: String,
}

impl Refused {
    /// What a delivery's error says: why, in words, without the URL.
    pub fn describe(&self, what: &str) -> String {
        if self.not_allowed {
            format!("{what}'s address is not allowed: {}", self.message)
        } else {
            format!("cannot resolve {what}: {}", self.message)
        }
    }
}

impl From<CoreError> for Refused {
    fn from(e: CoreError) -> Self {
        Refused {
            not_allowed: e.code() == "target_not_allowed",
            message: match &e {
                CoreError::Invalid { reason, .. } => reason.clone(),
                CoreError::Conflict { reason } => reason.to_string(),
                other => other.to_string(),
            },
        }
    }
}

/// The webhook client's DNS resolver: resolves a name and hands the client only addresses that
/// passed the check, so the connection goes to an address that was checked.
pub struct CheckedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the client puts in the URL's port.
            match resolve_checked(&host, 0, allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(e) => Err(Box::new(Refused::from(e)) as Box<_>),
            }
        })
    }
}

/// The [`Refused`] reason somewhere in `e`'s sources.
pub fn refusal_in<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

impl crate::app::App {
    /// The save-time check under this installation's `[notifications] allow_private_targets`.
    pub fn outbound_targets(&self) -> Targets {
        Targets {
            allow_private: self.notify.allow_private_targets,
        }
    }
}
