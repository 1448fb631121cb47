//! Notification settings, webhook endpoints and deliveries. A webhook's secret is never part of
//! a view, and its URL is shown only as scheme and host (Slack and Teams URLs are bearer
//! secrets themselves).

use exogate_core::notifications::{Delivery, Target, UserNotify, Webhook};
use serde::Serialize;

use super::ts;

#[derive(Clone, Debug, Serialize)]
pub struct NotifySettingsView {
    pub user: String,
    pub email: Option<String>,
    pub topics: Vec<&'static str>,
}

impl NotifySettingsView {
    pub fn of(n: &UserNotify) -> Self {
        Self {
            user: n.user.to_string(),
            email: n.email.clone(),
            topics: n.topics.0.iter().map(|t| t.as_str()).collect(),
        }
    }
}

/// `https://host/…`: what of a webhook URL may be shown.
pub fn url_shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(invalid URL)".to_owned(),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WebhookView {
    pub id: String,
    /// None: every company.
    pub company: Option<String>,
    pub name: String,
    pub url: String,
    pub format: &'static str,
    pub created_at: String,
}

impl WebhookView {
    pub fn of(w: &Webhook) -> Self {
        Self {
            id: w.id.clone(),
            company: w.company.as_ref().map(ToString::to_string),
            name: w.name.clone(),
            url: url_shown(&w.url),
            format: w.format.as_str(),
            created_at: ts(w.created_at),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DeliveryView {
    /// The idempotency key receivers see.
    pub id: String,
    pub created_at: String,
    pub channel: &'static str,
    /// The e-mail address, or the webhook endpoint's id.
    pub to: String,
    pub company: Option<String>,
    pub event: String,
    pub topic: &'static str,
    pub title: String,
    pub request: Option<String>,
    pub state: &'static str,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
}

impl DeliveryView {
    pub fn of(d: &Delivery) -> Self {
        let (channel, to) = match &d.target {
            Target::Email { address, .. } => ("email", address.clone()),
            Target::Webhook { endpoint } => ("webhook", endpoint.clone()),
        };
        let waiting = matches!(
            d.state,
            exogate_core::notifications::DeliveryState::Pending
                | exogate_core::notifications::DeliveryState::Retrying
        );
        Self {
            id: d.id.clone(),
            created_at: ts(d.created_at),
            channel,
            to,
            company: d.company.clone(),
            event: d.message.event.clone(),
            topic: d.message.topic.as_str(),
            title: d.message.title.clone(),
            request: d.message.request.clone(),
            state: d.state.as_str(),
            attempts: d.attempts,
            next_attempt_at: waiting.then(|| ts(d.next_attempt_at)),
            last_error: d.last_error.clone(),
            sent_at: d.sent_at.map(ts),
        }
    }
}
