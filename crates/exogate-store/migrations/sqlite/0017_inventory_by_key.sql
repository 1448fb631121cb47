-- exogate schema v17 (sqlite): nothing changes. PostgreSQL's 0017 replaces the company-first
-- indexes of 0014 with key-first ones for its array-bound lookup across every company; SQLite
-- still asks per chunk of companies (scale.rs) and keeps the indexes of 0014, which serve that
-- shape. The number is kept so both backends' schema versions stay in step.
SELECT 1;
