//! Throughput of the approval pipeline over the real store with the in-memory fake Microsoft:
//! request → approve → claim + execute (+ the audit appends of each), then `audit verify`.
//! SQLite always; PostgreSQL too when `EXOGATE_TEST_PG_URL` is set (a fresh database, dropped
//! after). `--smoke` runs a few seconds (CI), `--full` (default) more; other arguments are ignored.

use std::time::{Duration, Instant};

use exogate_core::fake::FakeMicrosoft;
use exogate_core::ops::{self, Ctx, Settings};
use exogate_core::ports::ManualClock;
use exogate_core::tools::ToolName;
use exogate_core::*;
use exogate_store::Db;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

const T1: &str = "11111111-1111-4111-8111-111111111111";

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

async fn bench(db: Db, label: &str, n: usize) {
    db.migrate().await.expect("migrate");
    let ms = FakeMicrosoft::new();
    ms.add_demo_tenant(TenantId::parse(T1).unwrap(), "contoso.onmicrosoft.com");
    let clock = ManualClock::new(Timestamp::from_unix_secs(1_800_000_000));
    let settings = Settings {
        max_pending_per_user: u32::MAX,
        ..Settings::default()
    };
    let ctx = Ctx::new(&db, &ms, &clock, &settings);
    let mk = |name: &str, role: Role| ops::users::NewUser {
        id: UserId::from_uuid(Uuid::now_v7()),
        name: UserName::parse(name).unwrap(),
        role,
        entitlement: Entitlement::All,
        password_hash: None,
    };
    let admin = ops::users::add_user(
        ctx,
        ops::users::Admin::LocalOperator,
        mk("admin", Role::Admin),
    )
    .await
    .unwrap();
    let tech = ops::users::add_user(
        ctx,
        ops::users::Admin::LocalOperator,
        mk("tech", Role::Technician),
    )
    .await
    .unwrap();
    let admin = Actor {
        user: admin,
        channel: Channel::Web,
    };
    let tech = Actor {
        user: tech,
        channel: Channel::Cli,
    };
    let c = CompanyId::parse("contoso").unwrap();
    ops::companies::add_company(ctx, &admin, c.clone(), "Contoso")
        .await
        .unwrap();
    let input = ops::companies::ConnectInput {
        tenant_id: TenantId::parse(T1).unwrap(),
        display_name: "Contoso".into(),
        default_domain: "contoso.onmicrosoft.com".into(),
    };
    ops::companies::connect(ctx, &admin, &c, &input)
        .await
        .unwrap();
    let tools = [ToolName::GrantFullAccess, ToolName::RemoveFullAccess];
    let (mut req_t, mut appr_t, mut exec_t) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for i in 0..n {
        let t0 = Instant::now();
        let r = ops::requests::request_write(
            ctx,
            &tech,
            ops::requests::WriteInput {
                id: RequestId::from_uuid(Uuid::now_v7()),
                company: c.clone(),
                tool: tools[i % 2],
                mailbox: IdentityInput::parse("sales").unwrap(),
                trustee: IdentityInput::parse("bob").unwrap(),
                automapping: None,
            },
        )
        .await
        .unwrap();
        let t1 = Instant::now();
        ops::requests::approve(ctx, &admin, r.id, None)
            .await
            .unwrap();
        let t2 = Instant::now();
        let done = ops::execute::run_once(ctx, "bench").await.unwrap().unwrap();
        let t3 = Instant::now();
        assert!(done.state.is_terminal());
        req_t.push(t1 - t0);
        appr_t.push(t2 - t1);
        exec_t.push(t3 - t2);
    }
    let total = started.elapsed();
    let t = Instant::now();
    let verdict = ops::audit::verify(ctx).await.unwrap();
    let verify_t = t.elapsed();
    let events = match verdict {
        ops::audit::Verification::Intact(r) => r.events,
        ops::audit::Verification::Broken(b) => panic!("chain broken: {b}"),
    };
    println!(
        "{label}: {n} requests end to end in {:.2} s = {:.0} requests/s (each: 1 request, 1 approval, 1 execution, {} audit events in all)",
        total.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        events
    );
    for (name, v) in [
        ("request_write", &mut req_t),
        ("approve", &mut appr_t),
        ("claim+execute", &mut exec_t),
    ] {
        println!(
            "{label}:   {name:<14} p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms",
            pct(v, 0.5).as_secs_f64() * 1e3,
            pct(v, 0.95).as_secs_f64() * 1e3,
            pct(v, 0.99).as_secs_f64() * 1e3
        );
    }
    println!(
        "{label}: audit verify of {events} events in {:.1} ms = {:.0} events/s",
        verify_t.as_secs_f64() * 1e3,
        events as f64 / verify_t.as_secs_f64()
    );
    db.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let n = if smoke { 100 } else { 2000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        bench(Db::connect(&url).await.unwrap(), "sqlite", n).await;
        if let Ok(admin_url) = std::env::var("EXOGATE_TEST_PG_URL") {
            let name = format!("bench_{}", Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
            let base = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            bench(
                Db::connect(&format!("{base}/{name}")).await.unwrap(),
                "postgres",
                n,
            )
            .await;
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .unwrap();
        } else {
            println!("postgres: skipped (EXOGATE_TEST_PG_URL not set)");
        }
    });
}
