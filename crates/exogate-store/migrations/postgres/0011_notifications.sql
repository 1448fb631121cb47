-- exogate schema v11 (postgres): notifications. Keep in step with the other backend's
-- 0011_notifications.sql (same tables, columns and meaning).

-- A user's e-mail address and the topics they want by e-mail (comma-separated).
CREATE TABLE notify_users (
    user_id    TEXT PRIMARY KEY REFERENCES users(id),
    email      TEXT,
    topics     TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Webhook endpoints: one company's (company_id set) or global (NULL). The secret signs each
-- delivery; it is never shown after it is set.
CREATE TABLE notify_webhooks (
    id         TEXT PRIMARY KEY,
    company_id TEXT REFERENCES companies(id),
    name       TEXT NOT NULL,
    url        TEXT NOT NULL,
    format     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- The outbox: one row per notification and recipient, written in the transaction of the audit
-- event that caused it. The id (ntf_SEQ_N) is the idempotency key receivers see. A row is
-- claimed under a lease; a lease that lapses (the sender died) makes it due again.
CREATE TABLE notify_outbox (
    id               TEXT PRIMARY KEY,
    audit_seq        BIGINT NOT NULL,
    event            TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    channel          TEXT NOT NULL,
    user_id          TEXT,
    address          TEXT,
    endpoint_id      TEXT,
    company_id       TEXT,
    message          TEXT NOT NULL,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    last_error       TEXT,
    sent_at          BIGINT
);
CREATE INDEX notify_outbox_due ON notify_outbox(state, next_attempt_at);
CREATE INDEX notify_outbox_company ON notify_outbox(company_id, event, created_at);
