-- exogate schema v9 (postgres): time-boxed grants. Keep in step with the other backend's
-- 0009_timed_grants.sql. A request may wait until `not_before` (a timed grant's scheduled
-- removal; the backoff of a failing removal); `ends_grant` links a removal to the timed grant
-- whose approval covers it, at most one removal per grant. A company may require grants to end
-- and cap how long they last.
ALTER TABLE approval_requests ADD COLUMN not_before BIGINT;
ALTER TABLE approval_requests ADD COLUMN ends_grant TEXT;
CREATE UNIQUE INDEX approval_requests_one_end ON approval_requests (ends_grant)
    WHERE ends_grant IS NOT NULL;
CREATE TABLE grant_end_policies (
    company_id   TEXT PRIMARY KEY REFERENCES companies(id),
    end_required BOOLEAN NOT NULL,
    max_secs     BIGINT
);
