-- exogate schema v15 (sqlite): access reviews. A campaign copies the inventory's rows of its scope
-- into items at its start; decisions are set on items; closing links one request per company.
-- Keep in step with the other backend's 0015_reviews.sql (same tables, columns and meaning).
CREATE TABLE review_campaigns (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    kinds           TEXT NOT NULL,
    rights          TEXT NOT NULL,
    due_at          BIGINT NOT NULL,
    schedule        TEXT,
    state           TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_by_name TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    closed_at       BIGINT,
    closed_by_name  TEXT,
    previous        TEXT UNIQUE,
    -- When reviewers were reminded of the due date (once).
    reminded_at     BIGINT
);
CREATE INDEX review_campaigns_created ON review_campaigns (created_at);

CREATE TABLE review_companies (
    campaign_id TEXT NOT NULL REFERENCES review_campaigns(id) ON DELETE CASCADE,
    company_id  TEXT NOT NULL,
    reviewers   TEXT NOT NULL,
    request_id  TEXT,
    PRIMARY KEY (campaign_id, company_id)
);

CREATE TABLE review_items (
    campaign_id     TEXT NOT NULL REFERENCES review_campaigns(id) ON DELETE CASCADE,
    item_no         BIGINT NOT NULL,
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
    verdict         TEXT,
    reason          TEXT,
    decided_by      TEXT,
    decided_by_name TEXT,
    decided_at      BIGINT,
    PRIMARY KEY (campaign_id, item_no)
);
CREATE INDEX review_items_company ON review_items (campaign_id, company_id, item_no);

CREATE TABLE review_links (
    id              TEXT PRIMARY KEY,
    secret_hash     TEXT NOT NULL UNIQUE,
    campaign_id     TEXT NOT NULL REFERENCES review_campaigns(id) ON DELETE CASCADE,
    company_id      TEXT NOT NULL,
    label           TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    created_at      BIGINT NOT NULL,
    created_by_name TEXT NOT NULL
);
CREATE INDEX review_links_campaign ON review_links (campaign_id, created_at);

-- The key reviewer links are signed with (one row; the first replica to need it stores it).
CREATE TABLE review_link_key (
    id  INTEGER PRIMARY KEY,
    key TEXT NOT NULL
);
