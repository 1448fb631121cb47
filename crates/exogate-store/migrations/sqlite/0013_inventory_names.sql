-- exogate schema v13 (sqlite): the inventory's own directory. Every name a sweep saw for a listed
-- mailbox or mail-enabled group (alias, UPN, primary and proxy addresses, object id, Exchange
-- names, display name), lowercase, per sweep generation, so the inventory resolves what a
-- person types without asking Exchange. Keep in step with the other backend's
-- 0013_inventory_names.sql.
CREATE TABLE inventory_names (
    company_id   TEXT NOT NULL,
    generation   BIGINT NOT NULL,
    name         TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    address      TEXT NOT NULL,
    display_name TEXT NOT NULL,
    kind         TEXT NOT NULL,
    PRIMARY KEY (company_id, generation, name, object_id)
);
