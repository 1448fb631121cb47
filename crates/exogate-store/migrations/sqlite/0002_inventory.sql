-- exogate schema v2 (sqlite): the delegation inventory. Keep in step with the other backend's
-- 0002_inventory.sql (same tables, columns and meaning).

-- One row per company: the generation readers see and the latest sweep.
CREATE TABLE inventory_state (
    company_id        TEXT PRIMARY KEY REFERENCES companies(id) ON DELETE CASCADE,
    tenant_id         TEXT NOT NULL,
    current_gen       BIGINT,
    as_of             BIGINT,
    current_mailboxes BIGINT NOT NULL DEFAULT 0,
    sweep_gen         BIGINT NOT NULL,
    sweep_state       TEXT NOT NULL,
    sweep_started_at  BIGINT NOT NULL,
    sweep_finished_at BIGINT,
    sweep_error       TEXT
);

-- One row per grant and generation. Object ids and trustee keys are lowercase.
CREATE TABLE inventory_rows (
    company_id      TEXT NOT NULL,
    generation      BIGINT NOT NULL,
    mailbox_id      TEXT NOT NULL,
    mailbox_address TEXT NOT NULL,
    mailbox_name    TEXT NOT NULL,
    mailbox_kind    TEXT NOT NULL,
    trustee_key     TEXT NOT NULL,
    trustee_raw     TEXT NOT NULL,
    trustee_sid     TEXT,
    trustee_class   TEXT NOT NULL,
    trustee_id      TEXT,
    trustee_address TEXT,
    trustee_name    TEXT,
    trustee_kind    TEXT,
    permission      TEXT NOT NULL,
    PRIMARY KEY (company_id, generation, mailbox_id, trustee_key, permission)
);

CREATE INDEX inventory_rows_by_trustee ON inventory_rows (company_id, generation, trustee_key);

-- Chunks a running sweep has finished (so a crashed sweep continues where it stopped).
CREATE TABLE inventory_progress (
    company_id TEXT NOT NULL,
    generation BIGINT NOT NULL,
    marker     TEXT NOT NULL,
    PRIMARY KEY (company_id, generation, marker)
);
