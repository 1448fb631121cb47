//! (hardening) Unused OAuth registrations (pruned by age, counted for the global cap) and the
//! per-user-name login lock-out, stored so that every replica and CLI process shares it
//! (migration 0016). The lock-out's rule is `exogate_core::lockout`; this file only keeps its
//! records, one transaction per attempt (`BEGIN IMMEDIATE` on SQLite; the row locked `FOR
//! UPDATE` on PostgreSQL), so concurrent attempts count each other's failures.

use exogate_core::lockout::{Begin, FailureRecord, LockoutRule};
use exogate_core::model::Timestamp;
use exogate_core::ports::StoreResult;

use crate::{Db, db_err};

/// "Unused": no code was ever issued to it, so no authorization got as far as consent.
const UNUSED: &str = "NOT EXISTS (SELECT 1 FROM oauth_codes c WHERE c.client_id = oauth_clients.client_id) \
     AND NOT EXISTS (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)";

const LOGIN_FORGET: &str = "DELETE FROM login_failures WHERE last_at < $1";
const LOGIN_ENSURE: &str = "INSERT INTO login_failures (user_key, failures, last_at, lockout_audited) \
     VALUES ($1, 0, $2, 0) ON CONFLICT (user_key) DO NOTHING";
const LOGIN_GET: &str =
    "SELECT failures, last_at, lockout_audited FROM login_failures WHERE user_key = $1";
const LOGIN_PUT: &str = "UPDATE login_failures SET failures = $2, last_at = $3, lockout_audited = $4 WHERE user_key = $1";
const LOGIN_CLEAR: &str = "DELETE FROM login_failures WHERE user_key = $1";

fn record(row: (i64, i64, i64)) -> FailureRecord {
    FailureRecord {
        failures: u32::try_from(row.0.max(0)).unwrap_or(u32::MAX),
        last_at: Timestamp::from_unix_millis(row.1),
        lockout_audited: row.2 != 0,
    }
}

/// The statements of one attempt, on the transaction `$tx`; `$get` reads (and locks) the row.
macro_rules! begin_in {
    ($tx:ident, $get:expr, $key:expr, $now:expr, $rule:expr) => {{
        let forget_before = $now.unix_millis() - i64::from($rule.forget_secs) * 1000;
        sqlx::query(LOGIN_FORGET)
            .bind(forget_before)
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        sqlx::query(LOGIN_ENSURE)
            .bind($key)
            .bind($now.unix_millis())
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        let row: (i64, i64, i64) = sqlx::query_as($get)
            .bind($key)
            .fetch_one(&mut *$tx)
            .await
            .map_err(db_err)?;
        let stored = record(row);
        // A fresh row (no failure yet) is no record.
        let stored = (stored.failures > 0).then_some(stored);
        let (begin, next) = $rule.begin(stored, $now);
        sqlx::query(LOGIN_PUT)
            .bind($key)
            .bind(i64::from(next.failures))
            .bind(next.last_at.unix_millis())
            .bind(i64::from(next.lockout_audited))
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        begin
    }};
}

impl Db {
    pub(crate) async fn hardening_prune_unused_clients(
        &self,
        created_before: Timestamp,
    ) -> StoreResult<u64> {
        let sql = format!("DELETE FROM oauth_clients WHERE created_at < $1 AND {UNUSED}");
        let sql = sqlx::AssertSqlSafe(sql);
        let done = match self {
            Db::Sqlite(p) => sqlx::query(sql)
                .bind(created_before.unix_millis())
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
            Db::Postgres(p) => sqlx::query(sql)
                .bind(created_before.unix_millis())
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        done.map_err(db_err)
    }

    pub(crate) async fn hardening_count_unused_clients(&self) -> StoreResult<u64> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM oauth_clients WHERE {UNUSED}"));
        let (n,): (i64,) = match self {
            Db::Sqlite(p) => sqlx::query_as(sql).fetch_one(p).await,
            Db::Postgres(p) => sqlx::query_as(sql).fetch_one(p).await,
        }
        .map_err(db_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(crate) async fn hardening_login_begin(
        &self,
        key: &str,
        now: Timestamp,
        rule: &LockoutRule,
    ) -> StoreResult<Begin> {
        match self {
            Db::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                let begin = begin_in!(tx, LOGIN_GET, key, now, rule);
                tx.commit().await.map_err(db_err)?;
                Ok(begin)
            }
            Db::Postgres(p) => {
                let mut tx = p.begin().await.map_err(db_err)?;
                let begin = begin_in!(tx, LOGIN_GET_FOR_UPDATE, key, now, rule);
                tx.commit().await.map_err(db_err)?;
                Ok(begin)
            }
        }
    }

    pub(crate) async fn hardening_login_clear(&self, key: &str) -> StoreResult<()> {
        match self {
            Db::Sqlite(p) => sqlx::query(LOGIN_CLEAR)
                .bind(key)
                .execute(p)
                .await
                .map(|_| ()),
            Db::Postgres(p) => sqlx::query(LOGIN_CLEAR)
                .bind(key)
                .execute(p)
                .await
                .map(|_| ()),
        }
        .map_err(db_err)
    }

    pub(crate) async fn hardening_login_record(
        &self,
        key: &str,
    ) -> StoreResult<Option<FailureRecord>> {
        let row: Option<(i64, i64, i64)> = match self {
            Db::Sqlite(p) => sqlx::query_as(LOGIN_GET).bind(key).fetch_optional(p).await,
            Db::Postgres(p) => sqlx::query_as(LOGIN_GET).bind(key).fetch_optional(p).await,
        }
        .map_err(db_err)?;
        Ok(row.map(record).filter(|r| r.failures > 0))
    }
}

/// The row read under a lock on PostgreSQL.
const LOGIN_GET_FOR_UPDATE: &str =
    "SELECT failures, last_at, lockout_audited FROM login_failures WHERE user_key = $1 FOR UPDATE";
