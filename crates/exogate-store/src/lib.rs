//! exogate's storage: [`Db`], an enum over a SQLite pool (the default, a file next to the data)
//! and a PostgreSQL pool (several replicas), implementing [`exogate_core::ports::Store`].
//!
//! This is the only crate with SQL. One SQL text serves both backends (`$1` placeholders work
//! on SQLite too); where the backends differ there are two strings. Every state change runs in
//! one transaction together with its audit-chain append (SQLite: `BEGIN IMMEDIATE`; PostgreSQL:
//! the one-row `audit_head` is locked `FOR UPDATE`), so if the audit append fails nothing changes.
//! Ids are TEXT and times BIGINT unix milliseconds in both schemas.

use std::str::FromStr;
use std::time::Duration;

use exogate_core::ports::StoreError;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

#[macro_use]
mod rows;
mod store;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static PG_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The database: SQLite or PostgreSQL, chosen by URL. `Debug` names the backend only (the pool's
/// options hold the connection password).
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Db::Sqlite(_) => f.write_str("Db::Sqlite"),
            Db::Postgres(_) => f.write_str("Db::Postgres"),
        }
    }
}

/// Which backend a [`Db`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Errors opening or migrating the database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://…")]
    BadUrl(String),
    #[error("cannot open the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("migrating the database failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
}

impl Db {
    /// Opens `sqlite://path` (created if missing; WAL, synchronous NORMAL, foreign keys, busy
    /// timeout 5 s) or `postgres://…` / `postgresql://…`.
    pub async fn connect(url: &str) -> Result<Db, OpenError> {
        Self::connect_with(url, None).await
    }

    /// Like [`Db::connect`] with a pool size (default: 4 for SQLite, 10 for PostgreSQL).
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Db, OpenError> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(OpenError::Connect)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            // An in-memory database exists per connection, so it gets exactly one.
            let max = if url.contains(":memory:") || url.contains("mode=memory") {
                1
            } else {
                max_connections.unwrap_or(4)
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .connect_with(opts)
                .await
                .map_err(OpenError::Connect)?;
            return Ok(Db::Sqlite(pool));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(OpenError::Connect)?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.unwrap_or(10))
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await
                .map_err(OpenError::Connect)?;
            return Ok(Db::Postgres(pool));
        }
        Err(OpenError::BadUrl(redact_url(url)))
    }

    /// Runs the migrations of this backend (idempotent; on PostgreSQL sqlx holds an advisory
    /// lock, so replicas starting together are safe).
    pub async fn migrate(&self) -> Result<(), OpenError> {
        match self {
            Db::Sqlite(p) => SQLITE_MIGRATIONS.run(p).await.map_err(OpenError::Migrate),
            Db::Postgres(p) => PG_MIGRATIONS.run(p).await.map_err(OpenError::Migrate),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Migration versions of each backend, for the test that they are identical.
    pub fn migration_versions() -> (Vec<i64>, Vec<i64>) {
        let v = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        (v(&SQLITE_MIGRATIONS), v(&PG_MIGRATIONS))
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
        }
    }
}

/// Hides a password in a database URL.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{}{user}:***{}", &url[..s + 3], &url[at..])
            } else {
                url.to_owned()
            }
        }
        _ => url.to_owned(),
    }
}

/// Maps sqlx errors to what the caller can do.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate,
        sqlx::Error::Database(d)
            if d.code().is_some_and(|c| {
                c == "5" || c == "517" || c == "6" || c == "40001" || c == "40P01" || c == "57P01"
            }) =>
        {
            StoreError::Unavailable(d.message().to_owned())
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Internal(Box::new(e)),
    }
}
