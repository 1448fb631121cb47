-- exogate schema v10 (sqlite): drift findings, rights added or removed outside exogate that a
-- sweep found by comparing its generation with the previous one. Keep in step with the other
-- backend's 0010_drift.sql (same tables, columns and meaning).
CREATE TABLE drift_findings (
    id               TEXT PRIMARY KEY,
    company_id       TEXT NOT NULL REFERENCES companies(id) ON DELETE CASCADE,
    mailbox_id       TEXT NOT NULL,
    mailbox_address  TEXT NOT NULL,
    mailbox_name     TEXT NOT NULL,
    mailbox_kind     TEXT NOT NULL,
    trustee_key      TEXT NOT NULL,
    trustee_raw      TEXT NOT NULL,
    trustee_sid      TEXT,
    trustee_class    TEXT NOT NULL,
    trustee_id       TEXT,
    trustee_address  TEXT,
    trustee_name     TEXT,
    trustee_kind     TEXT,
    permission       TEXT NOT NULL,
    change           TEXT NOT NULL,
    state            TEXT NOT NULL,
    first_seen_at    BIGINT NOT NULL,
    first_seen_gen   BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    last_seen_gen    BIGINT NOT NULL,
    earlier_seen_at  BIGINT,
    ack_by           TEXT,
    ack_by_name      TEXT,
    ack_at           BIGINT,
    ack_reason       TEXT,
    revert_request   TEXT
);
CREATE INDEX drift_findings_company ON drift_findings (company_id, first_seen_at);
CREATE INDEX drift_findings_key ON drift_findings (company_id, mailbox_id, trustee_key, permission);

-- Per company: when the sweep that produced the current generation started, so the next
-- comparison knows since when an executed request may explain a change.
CREATE TABLE drift_baseline (
    company_id TEXT PRIMARY KEY REFERENCES companies(id) ON DELETE CASCADE,
    generation BIGINT NOT NULL,
    swept_from BIGINT NOT NULL
);
