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
// (notify)
mod notify;
// (scale)
mod scale;
// (hardening)
mod hardening;
// (scale2)
mod export;

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
        Self::connect_pool(
            url,
            &PoolSettings {
                max_connections,
                ..PoolSettings::default()
            },
        )
        .await
    }

    /// Like [`Db::connect`] with the pool's settings.
    pub async fn connect_pool(url: &str, pool: &PoolSettings) -> Result<Db, OpenError> {
        let max_connections = pool.max_connections;
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
                .acquire_timeout(pool.acquire_timeout)
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

    /// Whether this database can serve: it answers, and every migration this build knows is
    /// applied (a replica started before a newer one migrated, or a database restored from an
    /// old backup, is not ready).
    pub async fn readiness(&self) -> Readiness {
        const APPLIED: &str = "SELECT version FROM _sqlx_migrations WHERE success";
        let (applied, known): (Result<Vec<(i64,)>, sqlx::Error>, &Migrator) = match self {
            Db::Sqlite(p) => (
                sqlx::query_as(APPLIED).fetch_all(p).await,
                &SQLITE_MIGRATIONS,
            ),
            Db::Postgres(p) => (sqlx::query_as(APPLIED).fetch_all(p).await, &PG_MIGRATIONS),
        };
        let applied: Vec<i64> = match applied {
            Ok(rows) => rows.into_iter().map(|(v,)| v).collect(),
            // No migrations table: nothing was ever migrated.
            Err(sqlx::Error::Database(d)) if d.code().is_some_and(|c| c == "42P01") => Vec::new(),
            Err(sqlx::Error::Database(d)) if d.message().contains("no such table") => Vec::new(),
            Err(e) => return Readiness::Unreachable(db_err(e).to_string()),
        };
        let missing = known
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .filter(|m| !applied.contains(&m.version))
            .count();
        if missing == 0 {
            Readiness::Ready
        } else {
            Readiness::MigrationsPending { missing }
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

/// The connection pool's settings.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Most connections open at once (None: 4 for SQLite, 10 for PostgreSQL).
    pub max_connections: Option<u32>,
    /// How long a query waits for a connection (PostgreSQL) before it fails as unavailable.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: None,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// What [`Db::readiness`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// The database did not answer (the driver's text, for the log only).
    Unreachable(String),
    /// This many migrations of this build are not applied.
    MigrationsPending {
        missing: usize,
    },
}

/// PostgreSQL error codes that mean "the server is going away, restarting or full; try again":
/// connection exceptions (class 08), too many connections, admin/crash shutdown, cannot connect
/// now (starting up), serialization failure and deadlock.
fn pg_transient(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "53300" | "57P01" | "57P02" | "57P03" | "40001" | "40P01"
        )
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
            if d.code()
                .is_some_and(|c| c == "5" || c == "517" || c == "6" || pg_transient(&c)) =>
        {
            StoreError::Unavailable(d.message().to_owned())
        }
        // A connection cut mid-answer (the server was killed) shows as a protocol error or a
        // crashed connection worker.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt(e.to_string()),
        _ => StoreError::Internal(Box::new(e)),
    }
}
