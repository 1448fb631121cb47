//! E-mail over SMTP (`lettre`): STARTTLS, implicit TLS, or plain to a loopback relay. Each
//! message's `Message-ID` is built from its outbox id, so a receiver can drop a repeat.

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret as _;

use super::SendError;
use crate::notify_settings::{SmtpSettings, SmtpTls};

pub struct Mailer {
    transport: Result<AsyncSmtpTransport<Tokio1Executor>, String>,
    from: Result<Mailbox, String>,
    /// The domain part of `Message-ID`s.
    id_domain: String,
}

impl Mailer {
    pub fn new(s: &SmtpSettings, timeout: std::time::Duration) -> Self {
        let builder = match s.tls {
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host),
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host),
            SmtpTls::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                &s.host,
            )),
        };
        let transport = builder
            .map(|b| {
                let b = b.port(s.port).timeout(Some(timeout));
                match (&s.user, &s.password) {
                    (Some(u), Some(p)) => b
                        .credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()))
                        .build(),
                    _ => b.build(),
                }
            })
            .map_err(|e| format!("SMTP settings: {e}"));
        let from: Result<Mailbox, String> = s
            .from
            .parse()
            .map_err(|_| "the From address is not valid".to_owned());
        let id_domain = from
            .as_ref()
            .map(|m| m.email.domain().to_owned())
            .unwrap_or_else(|_| "exogate.invalid".to_owned());
        Self {
            transport,
            from,
            id_domain,
        }
    }

    /// Sends one plain-text message to `to`.
    pub async fn send(
        &self,
        id: &str,
        to: &str,
        subject: &str,
        body: String,
    ) -> Result<(), SendError> {
        let transport = self
            .transport
            .as_ref()
            .map_err(|e| SendError::Permanent(e.clone()))?;
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
        transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError::Failed(format!("SMTP: {e}")))
    }
}
