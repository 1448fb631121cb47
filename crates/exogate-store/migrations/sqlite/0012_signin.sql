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
