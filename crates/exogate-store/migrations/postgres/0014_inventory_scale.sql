-- exogate schema v14 (postgres): indexes for "what can X open" across every company at once
-- (exogate-store's scale.rs): each way a trustee or group member can match a typed name is one
-- index probe per company, and the directory is searched by name across companies. Keep in
-- step with the other backend's 0014_inventory_scale.sql (the local-part expression differs).
CREATE INDEX inventory_names_by_name ON inventory_names (name, company_id, generation);
CREATE INDEX inventory_rows_by_trustee_address ON inventory_rows (company_id, generation, lower(trustee_address));
CREATE INDEX inventory_rows_by_trustee_raw ON inventory_rows (company_id, generation, lower(trustee_raw));
CREATE INDEX inventory_rows_by_trustee_local ON inventory_rows (company_id, generation, split_part(lower(trustee_address), '@', 1));
CREATE INDEX inventory_members_by_address ON inventory_members (company_id, generation, lower(member_address));
CREATE INDEX inventory_members_by_local ON inventory_members (company_id, generation, split_part(lower(member_address), '@', 1));
-- The current generation's row count, set when a sweep finishes and kept by patches, so the
-- statuses of many companies are read without counting their rows (NULL: count them).
ALTER TABLE inventory_state ADD COLUMN current_rows BIGINT;
UPDATE inventory_state SET current_rows = (SELECT COUNT(*) FROM inventory_rows r WHERE r.company_id = inventory_state.company_id AND r.generation = inventory_state.current_gen) WHERE current_gen IS NOT NULL;
