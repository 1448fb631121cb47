//! E-mail over SMTP (`lettre`): STARTTLS, implicit TLS, or plain to a loopback relay. Each
//! message's `Message-ID` is built from its outbox id, so a receiver can drop a repeat.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret as _;

use super::SendError;
use crate::notify_settings::{SmtpSettings, SmtpTls};

pub struct Mailer {
    settings: SmtpSettings,
    timeout: std::time::Duration,
    /// (hardening) `[notifications] allow_private_targets`.
    allow_private: bool,
    /// Why no transport can be built from the settings (checked once).
    broken: Option<String>,
    from: Result<Mailbox, String>,
    /// The domain part of `Message-ID`s.
    id_domain: String,
}

impl Mailer {
    pub fn new(s: &SmtpSettings, timeout: std::time::Duration, allow_private: bool) -> Self {
        let broken = TlsParameters::new(s.host.clone())
            .err()
            .filter(|_| s.tls != SmtpTls::None)
            .map(|e| format!("SMTP settings: {e}"));
        let from: Result<Mailbox, String> = s
            .from
            .parse()
            .map_err(|_| "the From address is not valid".to_owned());
        let id_domain = from
            .as_ref()
            .map(|m| m.email.domain().to_owned())
            .unwrap_or_else(|_| "exogate.invalid".to_owned());
        Self {
            settings: s.clone(),
            timeout,
            allow_private,
            broken,
            from,
            id_domain,
        }
    }

    /// (hardening) A transport to a checked address of the SMTP host: the host is resolved now
    /// and every address checked (`crate::outbound`), the connection goes to one of them, and
    /// TLS still verifies the certificate against the host's name.
    async fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        if let Some(e) = &self.broken {
            return Err(SendError::Permanent(e.clone()));
        }
        let s = &self.settings;
        let addrs = crate::outbound::resolve_checked(&s.host, s.port, self.allow_private)
            .await
            .map_err(|e| {
                SendError::Failed(crate::outbound::Refused::from(e).describe("the SMTP server"))
            })?;
        let addr = addrs
            .first()
            .ok_or_else(|| SendError::Failed("the SMTP server has no address".to_owned()))?;
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|e| SendError::Permanent(format!("SMTP settings: {e}")))
        };
        let b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
            .port(s.port)
            .timeout(Some(self.timeout));
        let b = match s.tls {
            SmtpTls::Tls => b.tls(Tls::Wrapper(tls(&s.host)?)),
            SmtpTls::StartTls => b.tls(Tls::Required(tls(&s.host)?)),
            SmtpTls::None => b,
        };
        Ok(match (&s.user, &s.password) {
            (Some(u), Some(p)) => b
                .credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()))
                .build(),
            _ => b.build(),
        })
    }

    /// Sends one plain-text message to `to`.
    pub async fn send(
        &self,
        id: &str,
        to: &str,
        subject: &str,
        body: String,
    ) -> Result<(), SendError> {
        let from = self
            .from
            .as_ref()
            .map_err(|e| SendError::Permanent(e.clone()))?;
        let to: Mailbox = to
            .parse()
            .map_err(|_| SendError::Permanent("the recipient address is not valid".to_owned()))?;
        let message = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{id}@{}>", self.id_domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        self.transport()
            .await?
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError::Failed(format!("SMTP: {e}")))
    }
}
