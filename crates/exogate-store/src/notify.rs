//! The notification outbox (`0011_notifications.sql`). [`Outbox::enqueue_notifications`] runs
//! inside the transaction that appends an audit event: it reads the facts
//! [`exogate_core::notifications::route`] needs and writes the rows it returns, so an event and
//! its notifications commit together or not at all. The rest is plain SQL for the settings
//! and the delivery worker's claims (a lease per row; `SKIP LOCKED` on PostgreSQL).

use exogate_core::action::{CanonicalAction, decode_actions};
use exogate_core::audit::AuditEvent;
use exogate_core::model::*;
use exogate_core::notifications::{
    self, Delivery, DeliveryState, EndpointFacts, Facts, Message, RequestFacts, Target, Topics,
    UserFacts, UserNotify, Webhook, WebhookFormat,
};
use exogate_core::ports::{StoreError, StoreResult};
use exogate_core::tools::RiskLevel;

use crate::db_err;

const FACT_USERS: &str = "SELECT u.id, u.role, u.entitlement, u.disabled, n.email, n.topics FROM users u JOIN notify_users n ON n.user_id = u.id WHERE n.email IS NOT NULL";
const FACT_ENDPOINTS: &str = "SELECT id, company_id FROM notify_webhooks";
const FACT_REQUEST: &str =
    "SELECT requester_id, requester_name, risk, actions FROM approval_requests WHERE id = $1";
const FACT_COMPANY: &str = "SELECT name, separate_approver FROM companies WHERE id = $1";
const FACT_LAST_GOOD_SWEEP: &str = "SELECT as_of FROM inventory_state WHERE company_id = $1";
const FACT_FIRST_FAILURE: &str = "SELECT MIN(at) FROM audit_log WHERE company_id = $1 AND kind = 'inventory.sweep_failed' AND at > $2";
const FACT_ALERTED: &str = "SELECT COUNT(*) FROM notify_outbox WHERE company_id = $1 AND event = 'inventory.sweep_failed' AND created_at > $2";
pub(crate) const INSERT_OUTBOX: &str = "INSERT INTO notify_outbox (id, audit_seq, event, created_at, channel, user_id, address, endpoint_id, company_id, message, state, attempts, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', 0, $4)";

macro_rules! outbox_cols {
    () => {
        "id, created_at, channel, user_id, address, endpoint_id, company_id, message, state, attempts, next_attempt_at, last_error, sent_at"
    };
}

pub(crate) const OUTBOX_CLAIM_SQLITE: &str = concat!(
    "UPDATE notify_outbox SET attempts = attempts + 1, lease_owner = $2, lease_expires_at = $3 WHERE id IN (SELECT id FROM notify_outbox WHERE state IN ('pending', 'retrying') AND next_attempt_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at <= $1) ORDER BY next_attempt_at, id LIMIT $4) RETURNING ",
    outbox_cols!()
);
pub(crate) const OUTBOX_CLAIM_PG: &str = concat!(
    "UPDATE notify_outbox SET attempts = attempts + 1, lease_owner = $2, lease_expires_at = $3 WHERE id IN (SELECT id FROM notify_outbox WHERE state IN ('pending', 'retrying') AND next_attempt_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at <= $1) ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING ",
    outbox_cols!()
);
/// $1 id, $2 owner, $3 state, $4 next attempt, $5 last error, $6 sent at.
pub(crate) const OUTBOX_FINISH: &str = "UPDATE notify_outbox SET state = $3, next_attempt_at = $4, last_error = $5, sent_at = $6, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2";
pub(crate) const OUTBOX_LIST: &str = concat!(
    "SELECT ",
    outbox_cols!(),
    " FROM notify_outbox WHERE ($1 IS NULL OR state = $1) ORDER BY created_at DESC, id DESC LIMIT $2"
);

pub(crate) const GET_USER_NOTIFY: &str =
    "SELECT user_id, email, topics FROM notify_users WHERE user_id = $1";
pub(crate) const UPSERT_USER_NOTIFY: &str = "INSERT INTO notify_users (user_id, email, topics, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, topics = excluded.topics, updated_at = excluded.updated_at";

macro_rules! webhook_cols {
    () => {
        "id, company_id, name, url, format, secret, created_at"
    };
}
pub(crate) const INSERT_WEBHOOK: &str = concat!(
    "INSERT INTO notify_webhooks (",
    webhook_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
pub(crate) const GET_WEBHOOK: &str = concat!(
    "SELECT ",
    webhook_cols!(),
    " FROM notify_webhooks WHERE id = $1"
);
pub(crate) const LIST_WEBHOOKS: &str = concat!(
    "SELECT ",
    webhook_cols!(),
    " FROM notify_webhooks ORDER BY created_at, id"
);
pub(crate) const DELETE_WEBHOOK: &str = "DELETE FROM notify_webhooks WHERE id = $1";

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} `{v}`"))
}

type FactUserRow = (String, String, String, bool, Option<String>, String);

fn user_facts(rows: Vec<FactUserRow>) -> Vec<UserFacts> {
    // A row that does not parse gets no mail; it never fails the event's transaction.
    rows.into_iter()
        .filter_map(|(id, role, ent, disabled, email, topics)| {
            Some(UserFacts {
                id: UserId::parse(&id).ok()?,
                role: Role::parse(&role).ok()?,
                entitlement: Entitlement::parse(&ent).ok()?,
                disabled,
                email,
                topics: Topics::parse(&topics).ok()?,
            })
        })
        .collect()
}

fn request_facts(row: Option<(String, String, String, String)>) -> Option<RequestFacts> {
    let (id, name, risk, actions) = row?;
    let summary = decode_actions(&actions)
        .map(|a| {
            a.iter()
                .map(CanonicalAction::summary)
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    Some(RequestFacts {
        requester: UserId::parse(&id).ok()?,
        requester_name: name,
        risk: RiskLevel::parse(&risk)?,
        summary,
    })
}

/// Reads the facts of `$e` and writes its outbox rows on the connection `$c`.
macro_rules! enqueue_body {
    ($c:expr, $e:expr) => {{
        let e: &AuditEvent = $e;
        let ev = &e.event;
        if !notifications::may_notify(&ev.kind) {
            return Ok(());
        }
        let mut facts = Facts {
            users: user_facts(
                sqlx::query_as(FACT_USERS)
                    .fetch_all(&mut *$c)
                    .await
                    .map_err(db_err)?,
            ),
            endpoints: sqlx::query_as::<_, (String, Option<String>)>(FACT_ENDPOINTS)
                .fetch_all(&mut *$c)
                .await
                .map_err(db_err)?
                .into_iter()
                .map(|(id, company)| EndpointFacts {
                    id,
                    company: company.and_then(|c| CompanyId::parse(&c).ok()),
                })
                .collect(),
            ..Facts::default()
        };
        if facts.users.is_empty() && facts.endpoints.is_empty() {
            return Ok(());
        }
        if let Some(r) = &ev.request {
            let row: Option<(String, String, String, String)> = sqlx::query_as(FACT_REQUEST)
                .bind(r)
                .fetch_optional(&mut *$c)
                .await
                .map_err(db_err)?;
            facts.request = request_facts(row);
        }
        if let Some(company) = &ev.company {
            let row: Option<(String, bool)> = sqlx::query_as(FACT_COMPANY)
                .bind(company)
                .fetch_optional(&mut *$c)
                .await
                .map_err(db_err)?;
            if let Some((name, separate)) = row {
                facts.company_name = Some(name);
                facts.separate_approver = separate;
            }
            if ev.kind == exogate_core::audit::AuditKind::InventorySweepFailed.as_str() {
                let last_good: Option<(Option<i64>,)> = sqlx::query_as(FACT_LAST_GOOD_SWEEP)
                    .bind(company)
                    .fetch_optional(&mut *$c)
                    .await
                    .map_err(db_err)?;
                let last_good = last_good.and_then(|(t,)| t).unwrap_or(i64::MIN);
                let (first,): (Option<i64>,) = sqlx::query_as(FACT_FIRST_FAILURE)
                    .bind(company)
                    .bind(last_good)
                    .fetch_one(&mut *$c)
                    .await
                    .map_err(db_err)?;
                let (alerted,): (i64,) = sqlx::query_as(FACT_ALERTED)
                    .bind(company)
                    .bind(last_good)
                    .fetch_one(&mut *$c)
                    .await
                    .map_err(db_err)?;
                facts.sweep_failing_since = first.map(Timestamp::from_unix_millis);
                facts.sweep_already_alerted = alerted > 0;
            }
        }
        for item in notifications::route(e, &facts) {
            let (channel, user, address, endpoint) = match &item.target {
                Target::Email { user, address } => {
                    ("email", Some(user.to_string()), Some(address.clone()), None)
                }
                Target::Webhook { endpoint } => ("webhook", None, None, Some(endpoint.clone())),
            };
            let message = serde_json::to_string(&item.message)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            sqlx::query(INSERT_OUTBOX)
                .bind(&item.id)
                .bind(e.seq)
                .bind(&ev.kind)
                .bind(ev.at.unix_millis())
                .bind(channel)
                .bind(user)
                .bind(address)
                .bind(endpoint)
                .bind(&ev.company)
                .bind(message)
                .execute(&mut *$c)
                .await
                .map_err(db_err)?;
        }
        Ok(())
    }};
}

/// Writes the outbox rows of a just-appended audit event in its transaction.
pub(crate) async fn enqueue_sqlite(
    c: &mut sqlx::SqliteConnection,
    e: &AuditEvent,
) -> StoreResult<()> {
    enqueue_body!(c, e)
}

/// As [`enqueue_sqlite`] on PostgreSQL.
pub(crate) async fn enqueue_pg(c: &mut sqlx::PgConnection, e: &AuditEvent) -> StoreResult<()> {
    enqueue_body!(c, e)
}

/// Dispatches to the backend of a transaction (`append_audit!` works on either).
pub(crate) trait Outbox {
    fn enqueue_notifications(
        &mut self,
        e: &AuditEvent,
    ) -> impl std::future::Future<Output = StoreResult<()>> + Send;
}

impl Outbox for sqlx::Transaction<'_, sqlx::Sqlite> {
    fn enqueue_notifications(
        &mut self,
        e: &AuditEvent,
    ) -> impl std::future::Future<Output = StoreResult<()>> + Send {
        enqueue_sqlite(self, e)
    }
}

impl Outbox for sqlx::Transaction<'_, sqlx::Postgres> {
    fn enqueue_notifications(
        &mut self,
        e: &AuditEvent,
    ) -> impl std::future::Future<Output = StoreResult<()>> + Send {
        enqueue_pg(self, e)
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxRow {
    id: String,
    created_at: i64,
    channel: String,
    user_id: Option<String>,
    address: Option<String>,
    endpoint_id: Option<String>,
    company_id: Option<String>,
    message: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    sent_at: Option<i64>,
}

impl TryFrom<OutboxRow> for Delivery {
    type Error = StoreError;
    fn try_from(r: OutboxRow) -> Result<Self, StoreError> {
        let target = match r.channel.as_str() {
            "email" => Target::Email {
                user: r
                    .user_id
                    .as_deref()
                    .and_then(|u| UserId::parse(u).ok())
                    .ok_or_else(|| corrupt("outbox user", &r.id))?,
                address: r.address.unwrap_or_default(),
            },
            "webhook" => Target::Webhook {
                endpoint: r
                    .endpoint_id
                    .ok_or_else(|| corrupt("outbox endpoint", &r.id))?,
            },
            other => return Err(corrupt("outbox channel", other)),
        };
        let message: Message =
            serde_json::from_str(&r.message).map_err(|_| corrupt("outbox message", &r.id))?;
        Ok(Delivery {
            state: DeliveryState::parse(&r.state)
                .ok_or_else(|| corrupt("outbox state", &r.state))?,
            id: r.id,
            created_at: Timestamp::from_unix_millis(r.created_at),
            target,
            company: r.company_id,
            message,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            next_attempt_at: Timestamp::from_unix_millis(r.next_attempt_at),
            last_error: r.last_error,
            sent_at: r.sent_at.map(Timestamp::from_unix_millis),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserNotifyRow {
    user_id: String,
    email: Option<String>,
    topics: String,
}

impl TryFrom<UserNotifyRow> for UserNotify {
    type Error = StoreError;
    fn try_from(r: UserNotifyRow) -> Result<Self, StoreError> {
        Ok(UserNotify {
            user: UserId::parse(&r.user_id).map_err(|_| corrupt("user id", &r.user_id))?,
            email: r.email,
            topics: Topics::parse(&r.topics).map_err(|_| corrupt("topics", &r.topics))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct WebhookRow {
    id: String,
    company_id: Option<String>,
    name: String,
    url: String,
    format: String,
    secret: String,
    created_at: i64,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(r: WebhookRow) -> Result<Self, StoreError> {
        Ok(Webhook {
            company: r
                .company_id
                .as_deref()
                .map(|c| CompanyId::parse(c).map_err(|_| corrupt("company id", c)))
                .transpose()?,
            format: WebhookFormat::parse(&r.format).map_err(|_| corrupt("format", &r.format))?,
            id: r.id,
            name: r.name,
            url: r.url,
            secret: r.secret,
            created_at: Timestamp::from_unix_millis(r.created_at),
        })
    }
}
