//! exogate-store conformance suite: every test in `both!` runs once on SQLite (temp file) and
//! once on PostgreSQL (a fresh database per test on `EXOGATE_TEST_PG_URL`).

mod support;

mod audit_search;
mod concurrency;
mod drift;
mod failures;
mod fleet;
// (hardening)
mod flows;
mod hardening;
mod inventory;
// (scale)
mod inventory_scale;
// (scale2)
mod inventory_export;
mod isolation;
// (notify)
mod notify;
mod oauth;
mod property;
mod repo;
mod request_prefix;
// (reviews)
mod reviews;
// (review-age)
mod review_age;
mod signin;
mod sweep;
mod tamper;
// (timed-grants)
mod timed;
