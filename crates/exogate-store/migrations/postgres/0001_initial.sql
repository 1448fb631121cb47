-- exogate schema v1 (PostgreSQL). Ids are TEXT, times are BIGINT unix milliseconds.
-- Keep in step with ../sqlite/0001_initial.sql (same tables, columns and meaning).

CREATE TABLE companies (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    separate_approver      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at             BIGINT NOT NULL,
    tenant_id              TEXT,
    tenant_display_name    TEXT,
    tenant_default_domain  TEXT,
    connected_at           BIGINT,
    status_state           TEXT,
    status_checked_at      BIGINT,
    status_last_good_at    BIGINT,
    status_last_good_state TEXT,
    status_detail          TEXT
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    entitlement   TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash TEXT,
    created_at    BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    secret_hash  TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_tokens_owner ON api_tokens(owner_id);

CREATE TABLE approval_requests (
    id                TEXT PRIMARY KEY,
    company_id        TEXT NOT NULL REFERENCES companies(id),
    tenant_id         TEXT NOT NULL,
    tool              TEXT NOT NULL,
    risk              TEXT NOT NULL,
    requester_id      TEXT NOT NULL,
    requester_name    TEXT NOT NULL,
    channel           TEXT NOT NULL,
    channel_token_id  TEXT,
    channel_agent     TEXT,
    actions           TEXT NOT NULL,
    digest            TEXT NOT NULL,
    state             TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    decided_by        TEXT,
    decided_by_name   TEXT,
    decided_at        BIGINT,
    decision_approved BOOLEAN,
    decision_reason   TEXT,
    decision_digest   TEXT,
    cancelled_by      TEXT,
    cancelled_by_name TEXT,
    cancelled_at      BIGINT,
    attempt           BIGINT NOT NULL DEFAULT 0,
    lease_worker      TEXT,
    lease_expires_at  BIGINT,
    results           TEXT NOT NULL DEFAULT '[]',
    finished_at       BIGINT,
    message           TEXT,
    revert_of         TEXT
);
CREATE INDEX approval_requests_state ON approval_requests(state, created_at);
CREATE INDEX approval_requests_company ON approval_requests(company_id, created_at);
CREATE INDEX approval_requests_expiry ON approval_requests(state, expires_at);

CREATE TABLE audit_log (
    seq        BIGINT PRIMARY KEY,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   TEXT,
    actor_name TEXT,
    channel    TEXT NOT NULL,
    company_id TEXT,
    request_id TEXT,
    detail     TEXT NOT NULL
);
CREATE INDEX audit_log_company ON audit_log(company_id, seq);
CREATE INDEX audit_log_request ON audit_log(request_id, seq);

-- One row: the chain head. Appends lock it (PostgreSQL) or run under BEGIN IMMEDIATE (SQLite).
CREATE TABLE audit_head (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE consent_states (
    state_hash      TEXT PRIMARY KEY,
    company_id      TEXT NOT NULL REFERENCES companies(id),
    user_id         TEXT NOT NULL,
    session_id      TEXT,
    purpose         TEXT NOT NULL,
    expected_tenant TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
