-- exogate schema v4 (postgres): one pending request per requester, company and action digest (an
-- agent that retries gets its pending request back instead of a second one). Keep in step
-- with the other backend's 0004_one_pending_request.sql.
CREATE UNIQUE INDEX approval_requests_one_pending
    ON approval_requests (company_id, requester_id, digest)
    WHERE state = 'pending';
