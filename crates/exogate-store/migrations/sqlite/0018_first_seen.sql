-- exogate schema v18 (sqlite): when a grant was first seen, for access reviews scoped to "grants
-- older than N days". A finished sweep gives each row of its generation the first_seen_at of
-- the same row (company, mailbox, trustee key, right) in the previous current generation, or
-- the sweep's own time if it had none; a patch after an executed request stamps the row it
-- adds. NULL (rows written before this migration) means "seen since at least the first sweep
-- we kept" and counts as old. Review items keep the time they were copied with; a campaign
-- keeps its "older than" scope. Keep in step with the other backend's 0018_first_seen.sql.
ALTER TABLE inventory_rows ADD COLUMN first_seen_at BIGINT;
ALTER TABLE review_items ADD COLUMN first_seen_at BIGINT;
ALTER TABLE review_campaigns ADD COLUMN older_than_days BIGINT;
