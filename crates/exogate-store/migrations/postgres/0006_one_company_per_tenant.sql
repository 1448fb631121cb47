-- exogate schema v6 (postgres): a Microsoft 365 tenant is linked to at most one company. Keep in
-- step with the other backend's 0006_one_company_per_tenant.sql.
--
-- Rows that already share a tenant cannot all be right, and two companies on one tenant is the
-- state an attacker leaves behind (a company moved onto another customer's tenant). The company
-- linked to the tenant first (earliest connected_at, then id) keeps the link; every later one
-- is disconnected exactly like a disconnect does (the link and the Exchange status cleared).
-- The audit log keeps the history of how each got there; reconnecting such a company needs the
-- consent of its own tenant, or a move by a manager.
UPDATE companies SET tenant_id = NULL, tenant_display_name = NULL, tenant_default_domain = NULL,
    connected_at = NULL, status_state = NULL, status_checked_at = NULL,
    status_last_good_at = NULL, status_last_good_state = NULL, status_detail = NULL
WHERE tenant_id IS NOT NULL AND EXISTS (
    SELECT 1 FROM companies AS first
    WHERE first.tenant_id = companies.tenant_id
      AND (first.connected_at < companies.connected_at
           OR (first.connected_at = companies.connected_at AND first.id < companies.id))
);
CREATE UNIQUE INDEX companies_one_per_tenant ON companies (tenant_id);
