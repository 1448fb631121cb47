-- (hardening) Unused OAuth registrations are found by client id (no code, no grant) and pruned
-- by age; the per-user-name login lock-out lives here so every replica and CLI process shares
-- it. Keep in step with the other backend's 0016_hardening.sql.
CREATE INDEX oauth_clients_by_created ON oauth_clients (created_at);
CREATE INDEX oauth_codes_by_client ON oauth_codes (client_id);
CREATE INDEX oauth_grants_by_client ON oauth_grants (client_id);
CREATE TABLE login_failures (
    user_key        TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_at         BIGINT NOT NULL,
    lockout_audited BIGINT NOT NULL
);
CREATE INDEX login_failures_by_last ON login_failures (last_at);
