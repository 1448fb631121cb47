//! Test vocabulary:
//! - `both! { async fn name(db: Db) { … } }` makes `name::sqlite` and `name::postgres`.
//! - `TestDb::sqlite()` / `TestDb::postgres()`: a migrated, empty database of its own.
//! - `World::new(db)`: clock, recording fake Microsoft (contoso + fabrikam tenants), users
//!   `admin`, `mgr_a`, `mgr_a2`, `tech_a`, `mgr_b`, `tech_b`, `viewer`, companies `contoso`
//!   (tenant 1) and `fabrikam` (tenant 2), both connected and configured; `w.ctx()`.
//! - `w.write(actor, company, tool, mailbox, trustee)` asks for a change; `w.exec(sql)` runs raw SQL.

use std::sync::Arc;

use exogate_core::fake::FakeMicrosoft;
use exogate_core::ops::{self, Ctx, Settings};
pub use exogate_core::ports::{Clock, ManualClock, Store};
use exogate_core::request::ApprovalRequest;
use exogate_core::tools::ToolName;
use exogate_core::*;
pub use exogate_store::Db;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

macro_rules! both {
    ($(async fn $name:ident($db:ident: Db) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($db: exogate_store::Db) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    let t = $crate::support::TestDb::sqlite().await;
                    run(t.db.clone()).await;
                    t.finish().await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    let Some(t) = $crate::support::TestDb::postgres().await else { return };
                    run(t.db.clone()).await;
                    t.finish().await;
                }
            }
        )*
    };
}
pub(crate) use both;

pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("exogate.db").display());
        let db = Db::connect(&url).await.expect("open sqlite");
        db.migrate().await.expect("migrate sqlite");
        TestDb {
            db,
            _dir: Some(dir),
            pg: None,
        }
    }

    /// None (after printing why) when `EXOGATE_TEST_PG_URL` is unset, unless
    /// `EXOGATE_REQUIRE_ALL_SUITES=1`, which makes it fail.
    pub async fn postgres() -> Option<TestDb> {
        let (admin_url, name, url) = empty_postgres().await?;
        let db = Db::connect_with(&url, Some(12))
            .await
            .expect("open postgres");
        db.migrate().await.expect("migrate postgres");
        Some(TestDb {
            db,
            _dir: None,
            pg: Some((admin_url, name)),
        })
    }

    pub async fn finish(mut self) {
        self.db.close().await;
        if let Some((admin_url, name)) = self.pg.take() {
            drop_pg(&admin_url, &name).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // A failed test still drops its database.
        if let Some((admin_url, name)) = self.pg.take() {
            std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(drop_pg(&admin_url, &name));
                }
            })
            .join()
            .ok();
        }
    }
}

/// A new, empty (not migrated) PostgreSQL database: (admin URL, name, URL). None (after
/// printing why) when `EXOGATE_TEST_PG_URL` is unset, unless `EXOGATE_REQUIRE_ALL_SUITES=1`.
pub async fn empty_postgres() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var("EXOGATE_TEST_PG_URL") else {
        if std::env::var("EXOGATE_REQUIRE_ALL_SUITES").as_deref() == Ok("1") {
            panic!("EXOGATE_TEST_PG_URL not set and EXOGATE_REQUIRE_ALL_SUITES=1");
        }
        println!("skipped: EXOGATE_TEST_PG_URL not set");
        return None;
    };
    let name = format!("t_{}", Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to EXOGATE_TEST_PG_URL");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.ok();
    let url = with_db_name(&admin_url, &name);
    Some((admin_url, name, url))
}

pub async fn drop_pg(admin_url: &str, name: &str) {
    if let Ok(mut admin) = sqlx::PgConnection::connect(admin_url).await {
        sqlx::query(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .ok();
        admin.close().await.ok();
    }
}

fn with_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

/// One connection held out of the pool, for raw SQL that changes the schema and then relies on
/// it: SQLite checks a DDL statement (`CREATE INDEX`, `DROP INDEX`) against the schema the
/// connection preparing it has cached, so a `DROP` on one pooled connection and a `CREATE` on
/// another that has not read since can fail with "already exists".
pub enum OneConnection {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
    Postgres(sqlx::pool::PoolConnection<sqlx::Postgres>),
}

impl OneConnection {
    pub async fn of(db: &Db) -> Self {
        match db {
            Db::Sqlite(p) => Self::Sqlite(p.acquire().await.expect("a connection")),
            Db::Postgres(p) => Self::Postgres(p.acquire().await.expect("a connection")),
        }
    }

    pub async fn exec(&mut self, sql: String) -> u64 {
        match self {
            Self::Sqlite(c) => sqlx::query(AssertSqlSafe(sql))
                .execute(&mut **c)
                .await
                .expect("raw sql")
                .rows_affected(),
            Self::Postgres(c) => sqlx::query(AssertSqlSafe(sql))
                .execute(&mut **c)
                .await
                .expect("raw sql")
                .rows_affected(),
        }
    }
}

/// Runs raw SQL behind the application's back (tamper tests).
pub async fn exec(db: &Db, sql: String) -> u64 {
    match db {
        Db::Sqlite(p) => sqlx::query(AssertSqlSafe(sql))
            .execute(p)
            .await
            .expect("raw sql")
            .rows_affected(),
        Db::Postgres(p) => sqlx::query(AssertSqlSafe(sql))
            .execute(p)
            .await
            .expect("raw sql")
            .rows_affected(),
    }
}

pub const T1: &str = "11111111-1111-4111-8111-111111111111";
pub const T2: &str = "22222222-2222-4222-8222-222222222222";

pub fn start() -> Timestamp {
    Timestamp::from_unix_secs(1_800_000_000)
}

pub fn cid(s: &str) -> CompanyId {
    CompanyId::parse(s).expect("company id")
}

pub fn new_request_id() -> RequestId {
    RequestId::from_uuid(Uuid::now_v7())
}

pub struct World {
    pub db: Db,
    pub store: Arc<dyn Store>,
    pub ms: Arc<FakeMicrosoft>,
    pub clock: Arc<ManualClock>,
    pub settings: Settings,
    pub admin: Actor,
    pub mgr_a: Actor,
    pub mgr_a2: Actor,
    pub tech_a: Actor,
    pub mgr_b: Actor,
    pub tech_b: Actor,
    pub viewer: Actor,
}

impl World {
    pub async fn new(db: Db) -> World {
        let store: Arc<dyn Store> = Arc::new(db.clone());
        let ms = Arc::new(FakeMicrosoft::new());
        ms.add_demo_tenant(TenantId::parse(T1).unwrap(), "contoso.onmicrosoft.com");
        ms.add_demo_tenant(TenantId::parse(T2).unwrap(), "fabrikam.onmicrosoft.com");
        let clock = Arc::new(ManualClock::new(start()));
        let settings = Settings::default();
        let placeholder = Actor {
            user: User {
                id: UserId::from_uuid(Uuid::nil()),
                name: UserName::parse("x").unwrap(),
                role: Role::Viewer,
                entitlement: Entitlement::All,
                disabled: false,
                password_hash: None,
                created_at: start(),
            },
            channel: Channel::Cli,
        };
        let mut w = World {
            db,
            store,
            ms,
            clock,
            settings,
            admin: placeholder.clone(),
            mgr_a: placeholder.clone(),
            mgr_a2: placeholder.clone(),
            tech_a: placeholder.clone(),
            mgr_b: placeholder.clone(),
            tech_b: placeholder.clone(),
            viewer: placeholder,
        };
        w.admin = w.add_user("admin", Role::Admin, "*").await;
        w.mgr_a = w.add_user("mgr-a", Role::Manager, "contoso").await;
        w.mgr_a2 = w.add_user("mgr-a2", Role::Manager, "contoso").await;
        w.tech_a = w.add_user("tech-a", Role::Technician, "contoso").await;
        w.mgr_b = w.add_user("mgr-b", Role::Manager, "fabrikam").await;
        w.tech_b = w.add_user("tech-b", Role::Technician, "fabrikam").await;
        w.viewer = w.add_user("viewer", Role::Viewer, "*").await;
        for (id, tenant, domain) in [
            ("contoso", T1, "contoso.onmicrosoft.com"),
            ("fabrikam", T2, "fabrikam.onmicrosoft.com"),
        ] {
            ops::companies::add_company(w.ctx(), &w.admin, cid(id), id)
                .await
                .expect("add company");
            let input = ops::companies::ConnectInput {
                tenant_id: TenantId::parse(tenant).unwrap(),
                display_name: id.to_owned(),
                default_domain: domain.to_owned(),
            };
            ops::companies::connect(w.ctx(), &w.admin, &cid(id), &input)
                .await
                .expect("connect");
            ops::companies::check_status(w.ctx(), Some(&w.admin), &cid(id))
                .await
                .expect("check");
        }
        w
    }

    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(
            self.store.as_ref(),
            self.ms.as_ref(),
            self.clock.as_ref(),
            &self.settings,
        )
    }

    pub async fn add_user(&self, name: &str, role: Role, ent: &str) -> Actor {
        let user = ops::users::add_user(
            self.ctx(),
            ops::users::Admin::LocalOperator,
            ops::users::NewUser {
                id: UserId::from_uuid(Uuid::now_v7()),
                name: UserName::parse(name).unwrap(),
                role,
                entitlement: Entitlement::parse(ent).unwrap(),
                password_hash: Some(PasswordHash::new(
                    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                )),
            },
        )
        .await
        .expect("add user");
        Actor {
            user,
            channel: Channel::Web,
        }
    }

    pub async fn write(
        &self,
        actor: &Actor,
        company: &str,
        tool: ToolName,
        mailbox: &str,
        trustee: &str,
    ) -> Result<ApprovalRequest, CoreError> {
        ops::requests::request_write(
            self.ctx(),
            actor,
            ops::requests::WriteInput {
                id: new_request_id(),
                company: cid(company),
                tool,
                mailbox: IdentityInput::parse(mailbox).unwrap(),
                trustee: IdentityInput::parse(trustee).unwrap(),
                automapping: None,
            },
        )
        .await
    }

    pub async fn exec(&self, sql: String) -> u64 {
        exec(&self.db, sql).await
    }

    /// Runs workers until nothing is claimable.
    pub async fn drain(&self, worker: &str) -> Vec<Result<Option<ApprovalRequest>, CoreError>> {
        let mut out = Vec::new();
        for _ in 0..200 {
            let r = ops::execute::run_once(self.ctx(), worker).await;
            let done = matches!(r, Ok(None));
            out.push(r);
            if done {
                break;
            }
        }
        out
    }

    pub async fn kinds_for(&self, request: RequestId) -> Vec<String> {
        let mut ev = self
            .store
            .recent_audit(None, Some(request), 1000)
            .await
            .unwrap();
        ev.reverse();
        ev.into_iter().map(|e| e.event.kind).collect()
    }
}

/// One whole sweep of `company` (on `tenant`) at `at` that saw `rows` in `mailboxes`
/// mailboxes: begun, written and finished through the store, its generation made current.
pub async fn swept(
    s: &dyn exogate_core::ports::Store,
    company: &str,
    tenant: &str,
    at: Timestamp,
    rows: &[exogate_core::inventory::InventoryRow],
    mailboxes: u64,
) {
    use exogate_core::audit::{AuditKind, NewAuditEvent};
    use exogate_core::inventory::{SweepBegin, SweepLease};
    let c = cid(company);
    let lease = SweepLease {
        owner: format!("sweep-{company}-{}", at.unix_millis()),
        until: at.plus_secs(60),
    };
    let SweepBegin::Started(st) = s
        .inventory_begin_sweep(
            &c,
            TenantId::parse(tenant).unwrap(),
            at,
            &lease,
            NewAuditEvent::system(at, AuditKind::InventorySweepStarted),
        )
        .await
        .unwrap()
    else {
        panic!("busy")
    };
    assert!(
        s.inventory_write_chunk(&c, st.generation, &lease.owner, rows, &[])
            .await
            .unwrap()
    );
    assert!(
        s.inventory_finish_sweep(
            &c,
            st.generation,
            &lease.owner,
            at,
            mailboxes,
            NewAuditEvent::system(at, AuditKind::InventorySweepFinished)
        )
        .await
        .unwrap()
    );
}
