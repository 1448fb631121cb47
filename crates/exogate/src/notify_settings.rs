//! `[notifications]` and `[notifications.smtp]`: how the delivery worker (`crate::notify`)
//! sends. Read by `crate::config`; `Debug` never shows the SMTP password.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// `[notifications]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNotifications {
    enabled: bool,
    max_attempts: u32,
    backoff_base_milliseconds: u64,
    backoff_max_milliseconds: u64,
    lease_seconds: u64,
    poll_milliseconds: u64,
    send_timeout_seconds: u64,
    smtp: Option<RawSmtp>,
    // (hardening)
    allow_private_targets: bool,
}

impl Default for RawNotifications {
    fn default() -> Self {
        Self {
            enabled: true,
            max_attempts: 10,
            backoff_base_milliseconds: 30_000,
            backoff_max_milliseconds: 3_600_000,
            lease_seconds: 60,
            poll_milliseconds: 1_000,
            send_timeout_seconds: 20,
            smtp: None,
            // (hardening)
            allow_private_targets: false,
        }
    }
}

/// `[notifications.smtp]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSmtp {
    host: String,
    port: Option<u16>,
    #[serde(default = "default_tls")]
    tls: String,
    from: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    password: Option<SecretString>,
}

fn default_tls() -> String {
    "starttls".to_owned()
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (port 587 by default); refused if the server
    /// does not offer it.
    StartTls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption: only to a loopback host (tests, a local relay).
    None,
}

/// The SMTP server mail goes through.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// The `From` mailbox (`Name <address>` or `address`).
    pub from: String,
    pub user: Option<String>,
    pub password: Option<SecretString>,
}

/// What the delivery worker does.
#[derive(Clone, Debug)]
pub struct NotifySettings {
    /// Whether this process delivers (every replica may; claims keep them apart).
    pub enabled: bool,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// The wait after the first failed attempt, doubled per attempt up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How long a claimed delivery is held before another sender may take it over.
    pub lease: Duration,
    pub poll: Duration,
    pub send_timeout: Duration,
    pub smtp: Option<SmtpSettings>,
    // (hardening)
    /// Whether webhooks and the SMTP server may be this machine or a private network
    /// (`crate::outbound`); off by default.
    pub allow_private_targets: bool,
}

impl Default for NotifySettings {
    fn default() -> Self {
        validate(RawNotifications::default()).expect("the defaults are valid")
    }
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Checks `[notifications]`; an error names the key and why.
pub fn validate(raw: RawNotifications) -> Result<NotifySettings, (&'static str, String)> {
    if !(1..=100).contains(&raw.max_attempts) {
        return Err((
            "notifications.max_attempts",
            "must be between 1 and 100".to_owned(),
        ));
    }
    if raw.backoff_base_milliseconds == 0
        || raw.backoff_max_milliseconds < raw.backoff_base_milliseconds
    {
        return Err((
            "notifications.backoff_base_milliseconds",
            "must be at least 1 and at most backoff_max_milliseconds".to_owned(),
        ));
    }
    if !(1..=3600).contains(&raw.lease_seconds) {
        return Err((
            "notifications.lease_seconds",
            "must be between 1 and 3600".to_owned(),
        ));
    }
    if raw.poll_milliseconds == 0 {
        return Err((
            "notifications.poll_milliseconds",
            "must be at least 1".to_owned(),
        ));
    }
    if !(1..=300).contains(&raw.send_timeout_seconds) {
        return Err((
            "notifications.send_timeout_seconds",
            "must be between 1 and 300".to_owned(),
        ));
    }
    let smtp = match raw.smtp {
        None => None,
        Some(s) => {
            let tls = match s.tls.trim().to_ascii_lowercase().as_str() {
                "starttls" => SmtpTls::StartTls,
                "tls" => SmtpTls::Tls,
                "none" => SmtpTls::None,
                other => {
                    return Err((
                        "notifications.smtp.tls",
                        format!("`{other}` is not one of starttls, tls, none"),
                    ));
                }
            };
            if s.host.trim().is_empty() {
                return Err(("notifications.smtp.host", "must be set".to_owned()));
            }
            if tls == SmtpTls::None && !is_loopback(s.host.trim()) {
                return Err((
                    "notifications.smtp.tls",
                    "`none` (no encryption) is allowed only to a loopback host".to_owned(),
                ));
            }
            // (hardening) A literal address is checked now; a name when mail is sent.
            let literal = s
                .host
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>();
            if let Err(e) = literal.map_or(Ok(()), |ip| {
                exogate_core::outbound::check(s.host.trim(), &[ip], raw.allow_private_targets)
            }) {
                return Err(("notifications.smtp.host", e.to_string()));
            }
            if s.from.parse::<lettre::message::Mailbox>().is_err() {
                return Err((
                    "notifications.smtp.from",
                    "is not a mailbox (`address` or `Name <address>`)".to_owned(),
                ));
            }
            if s.password.is_some() != s.user.is_some() {
                return Err((
                    "notifications.smtp.user",
                    "user and password are set together".to_owned(),
                ));
            }
            Some(SmtpSettings {
                port: s.port.unwrap_or(match tls {
                    SmtpTls::Tls => 465,
                    SmtpTls::StartTls => 587,
                    SmtpTls::None => 25,
                }),
                host: s.host.trim().to_owned(),
                tls,
                from: s.from,
                user: s.user,
                password: s.password,
            })
        }
    };
    Ok(NotifySettings {
        enabled: raw.enabled,
        max_attempts: raw.max_attempts,
        backoff_base: Duration::from_millis(raw.backoff_base_milliseconds),
        backoff_max: Duration::from_millis(raw.backoff_max_milliseconds),
        lease: Duration::from_secs(raw.lease_seconds),
        poll: Duration::from_millis(raw.poll_milliseconds),
        send_timeout: Duration::from_secs(raw.send_timeout_seconds),
        smtp,
        allow_private_targets: raw.allow_private_targets,
    })
}
