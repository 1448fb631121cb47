//! The delivery worker: claims due outbox rows under a lease (`Store::outbox_claim`), sends each
//! through its channel (e-mail over SMTP, or a signed webhook POST), and records the outcome:
//! sent, retrying at a backoff that doubles per attempt, or failed after the last attempt.
//! Every message carries its outbox id as the idempotency key (`webhook-id`, `Message-ID`), so a
//! row sent again after a crash mid-send (its lease lapsed) is recognisable as the same message.

pub mod mail;
pub mod webhook;

use std::sync::Arc;

use exogate_core::Timestamp;
use exogate_core::notifications::{self, Delivery, SendOutcome, Target};
use tokio_util::sync::CancellationToken;

use crate::app::App;

/// Rows claimed per round.
const BATCH: u32 = 20;

/// Why one attempt failed (the text is stored on the row and shown to admins: never a secret
/// nor a webhook URL).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Failed(String),
    /// Nothing can make it succeed (the endpoint was removed, no SMTP server is configured).
    #[error("{0}")]
    Permanent(String),
}

/// Runs until `shutdown` fires (returns at once when `[notifications] enabled = false`).
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    let settings = app.notify.clone();
    if !settings.enabled {
        return;
    }
    run_with(
        app,
        settings,
        format!("notify-{}", uuid::Uuid::new_v4()),
        shutdown,
    )
    .await;
}

/// As [`run`], with these settings and lease owner, whatever `[notifications] enabled` says.
pub async fn run_with(
    app: Arc<App>,
    settings: Arc<crate::notify_settings::NotifySettings>,
    owner: String,
    shutdown: CancellationToken,
) {
    let http = match webhook::client(settings.send_timeout, settings.allow_private_targets) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "notifications: cannot build the HTTP client; no webhooks are sent");
            return;
        }
    };
    let mailer = settings
        .smtp
        .as_ref()
        .map(|s| mail::Mailer::new(s, settings.send_timeout, settings.allow_private_targets));
    tracing::info!(owner = %owner, "notification delivery started");
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let now = app.clock.now();
        let lease_until =
            Timestamp::from_unix_millis(now.unix_millis() + settings.lease.as_millis() as i64);
        let claimed = match app
            .store
            .outbox_claim(now, &owner, lease_until, BATCH)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "notifications: cannot claim deliveries");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH as usize;
        for d in claimed {
            let result = send(
                &app,
                &http,
                settings.allow_private_targets,
                mailer.as_ref(),
                &d,
            )
            .await;
            let now = app.clock.now();
            let outcome = match result {
                Ok(()) => SendOutcome::Sent,
                Err(SendError::Permanent(error)) => SendOutcome::Failed { error },
                Err(SendError::Failed(error)) if d.attempts >= settings.max_attempts => {
                    SendOutcome::Failed { error }
                }
                Err(SendError::Failed(error)) => {
                    let wait = notifications::backoff_ms(
                        d.attempts,
                        settings.backoff_base.as_millis() as u64,
                        settings.backoff_max.as_millis() as u64,
                    );
                    SendOutcome::Retry {
                        next_at: Timestamp::from_unix_millis(now.unix_millis() + wait as i64),
                        error,
                    }
                }
            };
            match &outcome {
                SendOutcome::Sent => tracing::info!(id = %d.id, "notification sent"),
                SendOutcome::Retry { error, .. } => {
                    tracing::warn!(id = %d.id, attempts = d.attempts, %error, "notification not delivered; will retry")
                }
                SendOutcome::Failed { error } => {
                    tracing::error!(id = %d.id, attempts = d.attempts, %error, "notification failed for good")
                }
            }
            if let Err(e) = app.store.outbox_finish(&d.id, &owner, now, &outcome).await {
                tracing::warn!(id = %d.id, error = %e, "notifications: cannot record an outcome (the lease will lapse and it is sent again)");
            }
        }
        if full {
            continue;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = app.notify_wake.notified() => {}
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
}

async fn send(
    app: &App,
    http: &reqwest::Client,
    allow_private: bool,
    mailer: Option<&mail::Mailer>,
    d: &Delivery,
) -> Result<(), SendError> {
    let public_url = app.public_url.as_str();
    match &d.target {
        Target::Email { address, .. } => {
            let Some(mailer) = mailer else {
                return Err(SendError::Permanent(
                    "no SMTP server is configured ([notifications.smtp])".to_owned(),
                ));
            };
            let (subject, body) = notifications::render_mail(&d.message, public_url);
            mailer.send(&d.id, address, &subject, body).await
        }
        Target::Webhook { endpoint } => {
            let hook = app
                .store
                .webhook_get(endpoint)
                .await
                .map_err(|e| SendError::Failed(format!("database: {e}")))?
                .ok_or_else(|| {
                    SendError::Permanent("the webhook endpoint was removed".to_owned())
                })?;
            let timestamp = app.clock.now().unix_millis() / 1000;
            webhook::post(
                http,
                allow_private,
                &hook,
                &d.id,
                timestamp,
                &d.message,
                public_url,
            )
            .await
        }
    }
}
