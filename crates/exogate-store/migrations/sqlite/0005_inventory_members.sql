-- exogate schema v5 (sqlite): members of the groups that hold rights, per sweep generation,
-- flattened (a member of a nested group is recorded under every group above it), so "what can
-- X open" finds the rights X holds through groups. Keep in step with the other backend's
-- 0005_inventory_members.sql.
CREATE TABLE inventory_members (
    company_id     TEXT NOT NULL,
    generation     BIGINT NOT NULL,
    group_id       TEXT NOT NULL,
    member_id      TEXT NOT NULL,
    member_address TEXT NOT NULL,
    member_name    TEXT NOT NULL,
    member_kind    TEXT NOT NULL,
    PRIMARY KEY (company_id, generation, group_id, member_id)
);

CREATE INDEX inventory_members_by_member ON inventory_members (company_id, generation, member_id);
