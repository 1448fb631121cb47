-- exogate schema v12 (sqlite): Sign in with Microsoft. Keep in step with the other backend's
-- 0012_signin.sql. A Microsoft identity (tenant id + object id) is linked to one user; a pending
-- sign-in is kept by the SHA-256 of its state, bound to the SHA-256 of the browser's cookie.
CREATE TABLE signin_identities (
    tenant_id  TEXT NOT NULL,
    object_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL UNIQUE REFERENCES users(id),
    suspended  BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, object_id)
);
CREATE TABLE signin_states (
    state_hash   TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    nonce        TEXT NOT NULL,
    verifier     TEXT NOT NULL,
    next         TEXT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX signin_states_expiry ON signin_states(expires_at);
-- The second factor of local accounts: a TOTP secret with the last step used (a code is
-- accepted once), and recovery codes stored only as SHA-256 hex, each usable once.
CREATE TABLE totp_factors (
    user_id    TEXT PRIMARY KEY REFERENCES users(id),
    secret     TEXT NOT NULL,
    last_step  BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE totp_recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id),
    code_hash TEXT NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
