-- exogate schema v17 (postgres): "what can X open" across every company in one probe per way of
-- matching (exogate-store's scale.rs). The indexes of 0014 led with the company, so a lookup
-- across 1,000 companies made thousands of probes; these lead with the key a typed name is
-- compared to, so one probe finds that key in every company, and a join with each company's
-- current generation keeps the rows readers see. Per-company reads still find their rows
-- through the primary key (company, generation, ...).
-- The address index carries every column (INCLUDE): a user who holds rights in many companies
-- under one address (an MSP's technician, a guest in each tenant) is answered from that
-- index's adjacent entries alone (an index-only scan), not from one scattered table page per
-- row. The raw-value index holds only rows whose raw value is not their address (the others
-- are found by address). Keep in step with the other backend's 0017_inventory_by_key.sql.
CREATE INDEX inventory_rows_key_first ON inventory_rows (trustee_key, company_id, generation);
CREATE INDEX inventory_rows_address_first ON inventory_rows (lower(trustee_address), company_id, generation)
    INCLUDE (mailbox_id, mailbox_address, mailbox_name, mailbox_kind, trustee_key, trustee_raw, trustee_sid, trustee_class, trustee_id, trustee_address, trustee_name, trustee_kind, permission);
CREATE INDEX inventory_rows_raw_first ON inventory_rows (lower(trustee_raw), company_id, generation)
    WHERE lower(trustee_raw) IS DISTINCT FROM lower(trustee_address);
CREATE INDEX inventory_rows_local_first ON inventory_rows (split_part(lower(trustee_address), '@', 1), company_id, generation);
CREATE INDEX inventory_members_member_first ON inventory_members (member_id, company_id, generation);
CREATE INDEX inventory_members_address_first ON inventory_members (lower(member_address), company_id, generation);
CREATE INDEX inventory_members_local_first ON inventory_members (split_part(lower(member_address), '@', 1), company_id, generation);
-- The company-first indexes of 0014 that these replace.
DROP INDEX inventory_rows_by_trustee_address;
DROP INDEX inventory_rows_by_trustee_raw;
DROP INDEX inventory_rows_by_trustee_local;
DROP INDEX inventory_members_by_address;
DROP INDEX inventory_members_by_local;
