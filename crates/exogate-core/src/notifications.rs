//! Notifications: who hears about which audit event, and what the message says.
//!
//! [`route`] is a pure function of one stored audit event and the [`Facts`] the store reads in
//! the same transaction (the users with their e-mail settings, the webhook endpoints, the
//! request, the company's four-eyes rule, a failing sweep's history). The store writes what it
//! returns into the outbox in that transaction, so an event and its notifications are committed
//! together or not at all. The delivery worker renders each [`Message`] for its channel
//! ([`render_generic`], [`render_teams`], [`render_slack`], [`render_mail`]).
//!
//! Messages link to the request page and never carry a token or a decision link: deciding
//! still needs the signed-in person. Tenant text is sanitized ([`crate::text`]) when the
//! message is made, and escaped again for the markup of each channel.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditEvent, AuditKind};
use crate::error::CoreError;
use crate::model::{CompanyId, Entitlement, Role, Timestamp, UserId};
use crate::policy::role_to_approve;
use crate::text;
use crate::tools::RiskLevel;

/// Audit kinds added by other parts of issue 15, matched by their stable strings.
pub const KIND_DRIFT_FOUND: &str = "drift.found";
pub const KIND_GRANT_END_FAILED: &str = "grant.end_failed";
/// A company's sweeps failing this long (since the last good sweep, or the first failure)
/// raise an admin alert, once until a sweep succeeds again.
pub const SWEEP_FAILING_ALERT_AFTER_MS: i64 = 24 * 60 * 60 * 1000;

/// What a notification is about; users choose which topics they want by e-mail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A request the recipient may decide is waiting.
    ApprovalWaiting,
    /// The recipient's own request was decided, executed or failed.
    RequestOutcome,
    /// Drift, a failed timed removal, sweeps failing for more than a day (admins).
    AdminAlert,
}

impl Topic {
    pub const ALL: [Topic; 3] = [
        Topic::ApprovalWaiting,
        Topic::RequestOutcome,
        Topic::AdminAlert,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::ApprovalWaiting => "approval_waiting",
            Topic::RequestOutcome => "request_outcome",
            Topic::AdminAlert => "admin_alert",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Topic::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| {
                CoreError::invalid(
                    "topics",
                    format!(
                        "`{}` is not one of approval_waiting, request_outcome, admin_alert",
                        text::capped(s, 40)
                    ),
                )
            })
    }
}

/// A set of topics, stored as their names joined by `,`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Topics(pub BTreeSet<Topic>);

impl Topics {
    pub fn all() -> Self {
        Topics(Topic::ALL.into_iter().collect())
    }
    pub fn contains(&self, t: Topic) -> bool {
        self.0.contains(&t)
    }
    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
    /// Inverse of [`Topics::encode`]; `all` means every topic, an empty string none.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::all());
        }
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Topic::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(Topics)
    }
}

/// The body a webhook endpoint receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    Generic,
    Teams,
    Slack,
}

impl WebhookFormat {
    pub const ALL: [WebhookFormat; 3] = [
        WebhookFormat::Generic,
        WebhookFormat::Teams,
        WebhookFormat::Slack,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Generic => "generic",
            WebhookFormat::Teams => "teams",
            WebhookFormat::Slack => "slack",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        WebhookFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                CoreError::invalid(
                    "format",
                    format!(
                        "`{}` is not one of generic, teams, slack",
                        text::capped(s, 40)
                    ),
                )
            })
    }
}

/// A user as routing sees them.
#[derive(Clone, Debug)]
pub struct UserFacts {
    pub id: UserId,
    pub role: Role,
    pub entitlement: Entitlement,
    pub disabled: bool,
    /// Where their e-mail goes (None: they get none).
    pub email: Option<String>,
    pub topics: Topics,
}

/// A webhook endpoint as routing sees it: one company's, or global (every company).
#[derive(Clone, Debug)]
pub struct EndpointFacts {
    pub id: String,
    pub company: Option<CompanyId>,
}

/// The request an event is about.
#[derive(Clone, Debug)]
pub struct RequestFacts {
    pub requester: UserId,
    pub requester_name: String,
    pub risk: RiskLevel,
    pub summary: String,
}

/// What [`route`] needs besides the event. The store reads it in the event's transaction.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub request: Option<RequestFacts>,
    pub company_name: Option<String>,
    /// The company's separate-approver rule (the requester may not decide their own request).
    pub separate_approver: bool,
    pub users: Vec<UserFacts>,
    pub endpoints: Vec<EndpointFacts>,
    /// For `inventory.sweep_failed`: since when the company's sweeps fail (the last good
    /// sweep's end, else its first failure), and whether this failing stretch already alerted.
    pub sweep_failing_since: Option<Timestamp>,
    pub sweep_already_alerted: bool,
}

/// Whether [`route`] may return anything for an event of this kind (the store reads the
/// [`Facts`] only then).
pub fn may_notify(kind: &str) -> bool {
    [
        AuditKind::RequestCreated.as_str(),
        AuditKind::RequestApproved.as_str(),
        AuditKind::RequestRejected.as_str(),
        AuditKind::ExecutionFinished.as_str(),
        AuditKind::ExecutionRefused.as_str(),
        AuditKind::InventorySweepFailed.as_str(),
        KIND_DRIFT_FOUND,
        KIND_GRANT_END_FAILED,
        // (reviews)
        AuditKind::ReviewClosed.as_str(),
        AuditKind::ReviewCreated.as_str(),
        AuditKind::ReviewReminded.as_str(),
    ]
    .contains(&kind)
}

/// Where one notification goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Email { user: UserId, address: String },
    Webhook { endpoint: String },
}

/// What a notification says, channel-neutral and already sanitized.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub topic: Topic,
    /// The audit kind that caused it.
    pub event: String,
    pub audit_seq: i64,
    pub at: i64,
    pub title: String,
    pub text: String,
    pub company: Option<String>,
    pub request: Option<String>,
    /// The page to open, relative to the public URL (`/requests/ID`), if any.
    pub link_path: Option<String>,
}

/// One outbox row to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxItem {
    /// `ntf_{audit seq}_{n}`: unique, and the idempotency key receivers see.
    pub id: String,
    pub target: Target,
    pub message: Message,
}

fn detail_str(detail: &Value, key: &str) -> Option<String> {
    detail.get(key).and_then(|v| match v {
        Value::String(s) => Some(text::tenant_text(s)),
        Value::Null => None,
        other => Some(text::tenant_text(&other.to_string())),
    })
}

/// Decides the notifications of one stored event (see the module docs).
pub fn route(event: &AuditEvent, facts: &Facts) -> Vec<OutboxItem> {
    let ev = &event.event;
    let kind = ev.kind.as_str();
    if !may_notify(kind) {
        return Vec::new();
    }
    let detail: Value = serde_json::from_str(&ev.detail).unwrap_or(Value::Null);
    let company = ev.company.clone();
    let company_name = facts
        .company_name
        .as_deref()
        .or(company.as_deref())
        .map(text::tenant_text)
        .unwrap_or_else(|| "(no company)".to_owned());
    let company_id = company.as_deref().and_then(|c| CompanyId::parse(c).ok());
    let link_path = ev.request.as_ref().map(|r| format!("/requests/{r}"));
    let actor = ev.actor_name.as_deref().map(text::tenant_text);

    // (topic, title, text)
    let (topic, title, body) = match kind {
        k if k == AuditKind::RequestCreated.as_str() => {
            let Some(r) = &facts.request else {
                return Vec::new();
            };
            (
                Topic::ApprovalWaiting,
                format!("Approval waiting: {company_name}"),
                format!(
                    "{} asks for a change ({} risk) in {company_name}: {}. Open the request and sign in to decide.",
                    text::tenant_text(&r.requester_name),
                    r.risk.as_str(),
                    text::capped(&r.summary, text::MESSAGE_MAX_CHARS),
                ),
            )
        }
        k if k == AuditKind::RequestApproved.as_str()
            || k == AuditKind::RequestRejected.as_str() =>
        {
            let Some(r) = &facts.request else {
                return Vec::new();
            };
            let verb = if k == AuditKind::RequestApproved.as_str() {
                "approved"
            } else {
                "rejected"
            };
            let reason = detail_str(&detail, "reason")
                .map(|r| format!(" Reason: {r}"))
                .unwrap_or_default();
            (
                Topic::RequestOutcome,
                format!("Your request was {verb}: {company_name}"),
                format!(
                    "{} {verb} your request in {company_name}: {}.{reason}",
                    actor.clone().unwrap_or_else(|| "Someone".to_owned()),
                    text::capped(&r.summary, text::MESSAGE_MAX_CHARS),
                ),
            )
        }
        k if k == AuditKind::ExecutionFinished.as_str()
            || k == AuditKind::ExecutionRefused.as_str() =>
        {
            let Some(r) = &facts.request else {
                return Vec::new();
            };
            let state = if k == AuditKind::ExecutionRefused.as_str() {
                "failed".to_owned()
            } else {
                detail_str(&detail, "state").unwrap_or_else(|| "finished".to_owned())
            };
            let message = detail_str(&detail, "message")
                .map(|m| format!(" {m}"))
                .unwrap_or_default();
            (
                Topic::RequestOutcome,
                format!("Your request {state}: {company_name}"),
                format!(
                    "Your request in {company_name} ended {state}: {}.{message}",
                    text::capped(&r.summary, text::MESSAGE_MAX_CHARS),
                ),
            )
        }
        k if k == AuditKind::InventorySweepFailed.as_str() => {
            let Some(since) = facts.sweep_failing_since else {
                return Vec::new();
            };
            if facts.sweep_already_alerted
                || ev.at.unix_millis() - since.unix_millis() < SWEEP_FAILING_ALERT_AFTER_MS
            {
                return Vec::new();
            }
            let error = detail_str(&detail, "error").unwrap_or_default();
            (
                Topic::AdminAlert,
                format!("Inventory sweeps failing for over a day: {company_name}"),
                format!(
                    "The delegation sweep of {company_name} has failed since {since}. Last error: {error}"
                ),
            )
        }
        KIND_DRIFT_FOUND => (
            Topic::AdminAlert,
            format!("Change made outside exogate: {company_name}"),
            format!(
                "A delegation change nobody approved in exogate was found in {company_name}. {}",
                text::capped(&detail_summary(&detail), text::MESSAGE_MAX_CHARS)
            ),
        ),
        KIND_GRANT_END_FAILED => (
            Topic::AdminAlert,
            format!("A timed grant could not be removed: {company_name}"),
            format!(
                "The end of a timed grant in {company_name} failed and needs a person. {}",
                text::capped(&detail_summary(&detail), text::MESSAGE_MAX_CHARS)
            ),
        ),
        // (reviews) Closing an access review: its companies' managers and admins (and its
        // reviewers) hear which requests wait for approval.
        k if k == AuditKind::ReviewClosed.as_str() => {
            let name = detail_str(&detail, "name").unwrap_or_default();
            let requests = detail
                .get("requests")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let undecided = detail.get("undecided").and_then(Value::as_u64).unwrap_or(0);
            (
                Topic::ApprovalWaiting,
                format!("Access review closed: {}", text::capped(&name, 120)),
                format!(
                    "{} closed the access review \"{}\": {requests} removal request(s) wait for approval; {undecided} item(s) stayed undecided (not kept, not removed).",
                    actor.clone().unwrap_or_else(|| "Someone".to_owned()),
                    text::capped(&name, 120),
                ),
            )
        }
        // (reviews) A review started, or due soon: its reviewers (and the managers of its
        // companies) are asked to decide.
        k if k == AuditKind::ReviewCreated.as_str() || k == AuditKind::ReviewReminded.as_str() => {
            let name = text::capped(&detail_str(&detail, "name").unwrap_or_default(), 120);
            let due = detail
                .get("due_at")
                .and_then(Value::as_i64)
                .map(|d| Timestamp::from_unix_millis(d).to_string())
                .unwrap_or_default();
            if k == AuditKind::ReviewCreated.as_str() {
                (
                    Topic::ApprovalWaiting,
                    format!("Access review to do: {name}"),
                    format!(
                        "{} started the access review \"{name}\", due {due}. Open it and keep or remove each grant.",
                        actor.clone().unwrap_or_else(|| "Someone".to_owned()),
                    ),
                )
            } else {
                let undecided = detail.get("undecided").and_then(Value::as_u64).unwrap_or(0);
                (
                    Topic::ApprovalWaiting,
                    format!("Access review due soon: {name}"),
                    format!(
                        "The access review \"{name}\" is due {due}; {undecided} item(s) are still undecided. Undecided grants are reported as such, never as kept."
                    ),
                )
            }
        }
        _ => return Vec::new(),
    };
    // (reviews) Who a review's announcements go to: its reviewers, and the managers and admins
    // of its companies.
    let review_audience = (kind == AuditKind::ReviewCreated.as_str()
        || kind == AuditKind::ReviewReminded.as_str()
        || kind == AuditKind::ReviewClosed.as_str())
    .then(|| {
        let list = |key: &str| -> Vec<String> {
            detail
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let companies: Vec<CompanyId> = list("companies")
            .iter()
            .filter_map(|c| CompanyId::parse(c).ok())
            .collect();
        (list("reviewers"), companies)
    });
    // (reviews)
    let link_path = if kind.starts_with("review.") {
        detail_str(&detail, "campaign").map(|c| format!("/reviews/{c}"))
    } else {
        link_path
    };

    let message = Message {
        topic,
        event: kind.to_owned(),
        audit_seq: event.seq,
        at: ev.at.unix_millis(),
        title: text::capped(&title, 200),
        text: body,
        company: company.clone(),
        request: ev.request.clone(),
        link_path: if topic == Topic::AdminAlert && ev.request.is_none() {
            company.as_ref().map(|c| format!("/companies/{c}"))
        } else {
            link_path
        },
    };

    let recipients: Vec<&UserFacts> = facts
        .users
        .iter()
        .filter(|u| !u.disabled && u.email.is_some() && u.topics.contains(topic))
        .filter(|u| company_id.as_ref().is_none_or(|c| u.entitlement.covers(c)))
        .filter(|u| match &review_audience {
            // (reviews)
            Some((reviewers, companies)) => {
                let entitled = companies.iter().any(|c| u.entitlement.covers(c));
                entitled && (reviewers.contains(&u.id.to_string()) || u.role >= Role::Manager)
            }
            None => true,
        })
        .filter(|u| match topic {
            // (reviews) A review's announcements went through its own audience above.
            _ if review_audience.is_some() => true,
            Topic::ApprovalWaiting => facts.request.as_ref().is_some_and(|r| {
                u.role >= role_to_approve(r.risk)
                    && !(facts.separate_approver && u.id == r.requester)
            }),
            Topic::RequestOutcome => facts.request.as_ref().is_some_and(|r| {
                u.id == r.requester && ev.actor_id.as_deref() != Some(&u.id.to_string())
            }),
            Topic::AdminAlert => u.role >= Role::Admin,
        })
        .collect();

    let mut out = Vec::new();
    let mut n = 0usize;
    let mut next_id = || {
        n += 1;
        format!("ntf_{}_{n}", event.seq)
    };
    for u in recipients {
        out.push(OutboxItem {
            id: next_id(),
            target: Target::Email {
                user: u.id,
                address: u.email.clone().unwrap_or_default(),
            },
            message: message.clone(),
        });
    }
    for e in facts.endpoints.iter().filter(|e| {
        e.company.is_none() || e.company.as_ref().map(CompanyId::as_str) == company.as_deref()
    }) {
        out.push(OutboxItem {
            id: next_id(),
            target: Target::Webhook {
                endpoint: e.id.clone(),
            },
            message: message.clone(),
        });
    }
    out
}

/// The string fields of an event's detail, sanitized, as `key: value` pairs.
fn detail_summary(detail: &Value) -> String {
    let Some(obj) = detail.as_object() else {
        return String::new();
    };
    obj.iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some(format!(
                "{}: {}",
                text::tenant_text(k),
                text::tenant_text(s)
            )),
            Value::Number(n) => Some(format!("{}: {n}", text::tenant_text(k))),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The full link of a message, if it has one.
pub fn link(message: &Message, public_url: &str) -> Option<String> {
    message
        .link_path
        .as_ref()
        .map(|p| format!("{}{p}", public_url.trim_end_matches('/')))
}

/// The generic JSON body.
pub fn render_generic(id: &str, message: &Message, public_url: &str) -> Value {
    json!({
        "id": id,
        "type": message.event,
        "topic": message.topic.as_str(),
        "title": message.title,
        "text": message.text,
        "company": message.company,
        "request": message.request,
        "link": link(message, public_url),
        "at": message.at,
    })
}

/// Escapes the Markdown an Adaptive Card `TextBlock` would interpret, and angle brackets.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '`' | '~' | '|' | '!' | '-' | '+' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// A Microsoft Teams Workflows webhook body: a message carrying one Adaptive Card.
pub fn render_teams(message: &Message, public_url: &str) -> Value {
    let mut card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            { "type": "TextBlock", "text": escape_markdown(&message.title), "weight": "Bolder", "size": "Medium", "wrap": true },
            { "type": "TextBlock", "text": escape_markdown(&message.text), "wrap": true },
        ],
        "actions": [],
    });
    if let Some(url) = link(message, public_url) {
        card["actions"] =
            json!([{ "type": "Action.OpenUrl", "title": "Open in exogate", "url": url }]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

/// Escapes the three characters Slack's `mrkdwn` requires escaped.
pub fn escape_slack(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook body: a fallback `text` and blocks whose tenant text is
/// `plain_text` (never formatted).
pub fn render_slack(message: &Message, public_url: &str) -> Value {
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": escape_slack(&text::capped(&message.title, 150)) } }),
        json!({ "type": "section", "text": { "type": "plain_text", "text": escape_slack(&message.text) } }),
    ];
    if let Some(url) = link(message, public_url) {
        blocks.push(json!({
            "type": "actions",
            "elements": [{ "type": "button", "text": { "type": "plain_text", "text": "Open in exogate" }, "url": url }],
        }));
    }
    json!({ "text": escape_slack(&message.title), "blocks": blocks })
}

/// An e-mail's subject and plain-text body.
pub fn render_mail(message: &Message, public_url: &str) -> (String, String) {
    let mut body = format!("{}\n\n{}\n", message.title, message.text);
    if let Some(url) = link(message, public_url) {
        body.push_str(&format!("\nOpen it in exogate: {url}\n"));
    }
    body.push_str(
        "\nThis message cannot approve or reject anything: decisions are made signed in to exogate.\n",
    );
    (message.title.clone(), body)
}

/// When the next attempt of a delivery that failed `attempts` times is due: `base` doubled per
/// attempt, at most `max`.
pub fn backoff_ms(attempts: u32, base_ms: u64, max_ms: u64) -> u64 {
    let shift = attempts.saturating_sub(1).min(30);
    base_ms.saturating_mul(1u64 << shift).min(max_ms)
}

/// The state of one delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Retrying,
    Sent,
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Sent => "sent",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Retrying,
            DeliveryState::Sent,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One outbox row as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
    pub created_at: Timestamp,
    pub target: Target,
    pub company: Option<String>,
    pub message: Message,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub sent_at: Option<Timestamp>,
}

/// How one send attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// Try again at `next_at`.
    Retry {
        next_at: Timestamp,
        error: String,
    },
    /// Given up after the last attempt.
    Failed {
        error: String,
    },
}

/// A user's e-mail settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserNotify {
    pub user: UserId,
    pub email: Option<String>,
    pub topics: Topics,
}

/// A webhook endpoint. `secret` is the `whsec_…` signing secret; it is never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub company: Option<CompanyId>,
    pub name: String,
    pub url: String,
    pub format: WebhookFormat,
    pub secret: String,
    pub created_at: Timestamp,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("company", &self.company)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("format", &self.format)
            .field("secret", &"[redacted]")
            .finish()
    }
}
