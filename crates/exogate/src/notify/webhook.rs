//! Webhooks signed the Standard Webhooks way (see `docs/OPERATIONS.md`, "Notifications"):
//! headers `webhook-id` (the outbox id, the idempotency key), `webhook-timestamp` (unix
//! seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`,
//! keyed with the bytes of the endpoint's `whsec_<base64>` secret.

use aws_lc_rs::hmac;
use base64::Engine as _;
use exogate_core::notifications::{self, Message, Webhook, WebhookFormat};
use exogate_core::ops::notify::parse_secret;

use super::SendError;

/// The HTTP client webhooks go out on: no redirects (a redirect would carry the body elsewhere),
/// names resolved to checked addresses only (`crate::outbound::CheckedResolver`), no proxy from
/// the environment (it would resolve and connect on its own).
pub fn client(
    timeout: std::time::Duration,
    allow_private: bool,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(crate::outbound::CheckedResolver { allow_private })
        .build()
}

/// `v1,<base64 signature>` of `body` for message `id` at `timestamp`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// The body `hook` receives for `message`.
pub fn body(hook: &Webhook, id: &str, message: &Message, public_url: &str) -> String {
    let v = match hook.format {
        WebhookFormat::Generic => notifications::render_generic(id, message, public_url),
        WebhookFormat::Teams => notifications::render_teams(message, public_url),
        WebhookFormat::Slack => notifications::render_slack(message, public_url),
    };
    v.to_string()
}

/// Sends one signed POST; any 2xx is delivered. An IP literal host is checked here, a name by
/// the client's resolver (`allow_private`: `[notifications] allow_private_targets`).
pub async fn post(
    http: &reqwest::Client,
    allow_private: bool,
    hook: &Webhook,
    id: &str,
    timestamp: i64,
    message: &Message,
    public_url: &str,
) -> Result<(), SendError> {
    let key = parse_secret(&hook.secret)
        .map_err(|_| SendError::Permanent("the endpoint's secret is not valid".to_owned()))?;
    // (hardening) A literal that is this machine or a private network never becomes valid.
    crate::outbound::check_literal_url(&hook.url, allow_private).map_err(|e| {
        SendError::Permanent(crate::outbound::Refused::from(e).describe("the endpoint"))
    })?;
    let body = body(hook, id, message, public_url);
    let sig = signature(&key, id, timestamp, &body);
    let resp = http
        .post(&hook.url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        // The URL may itself be a secret (Slack, Teams): never in the error.
        .map_err(|e| match crate::outbound::refusal_in(&e) {
            // (hardening) The name resolved to an address that is not allowed (now).
            Some(why) => SendError::Failed(why.describe("the endpoint")),
            None => SendError::Failed(format!("cannot reach the endpoint: {}", e.without_url())),
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(SendError::Failed(format!(
            "the endpoint answered HTTP {}",
            status.as_u16()
        )))
    }
}
