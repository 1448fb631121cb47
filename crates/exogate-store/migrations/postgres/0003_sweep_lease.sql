-- exogate schema v3 (postgres): who runs a company's inventory sweep, and until when unless it
-- renews its lease. Keep in step with the other backend's 0003_sweep_lease.sql.
ALTER TABLE inventory_state ADD COLUMN sweep_owner TEXT;
ALTER TABLE inventory_state ADD COLUMN sweep_lease_until BIGINT;
