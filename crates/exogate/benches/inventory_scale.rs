//! `inventory_scale` benchmark: the delegation inventory at MSP scale on PostgreSQL.
//!
//! Generates C companies × M mailboxes of inventory rows written directly through the store
//! (one sweep per company, rows in chunks, a few companies at a time), then prints:
//! - the time the generation took and rows/s;
//! - "what can X open" across all of a user's companies (`ops::inventory::by_user`, what the
//!   API's `/api/v1/inventory/users/{user}` and MCP's `find_user_access` call) p50/p99 over
//!   many lookups of users holding rights in every company;
//! - a company's CSV export as the API builds it (`ops::inventory::company_rows` +
//!   `inventory_view::csv`): time, bytes, and the process's peak resident memory growth while
//!   it runs (`/proc/self/clear_refs` resets the peak first);
//! - the size on disk of the inventory tables and the database (`pg_total_relation_size`).
//!
//! Needs `EXOGATE_TEST_PG_URL` (a fresh database is created and dropped); without it, prints
//! that it skipped. `--smoke`: 20 × 200 (seconds). `--full` (default): 1,000 × 2,000.

use std::time::{Duration, Instant};

use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::fake::FakeMicrosoft;
use exogate_core::inventory::{InventoryRow, InventoryTrustee, SweepBegin, SweepLease};
use exogate_core::ops::{self, Ctx, Settings};
use exogate_core::ports::{ManualClock, Store};
use exogate_core::*;
use exogate_store::Db;
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

/// Users that hold Full Access on `HELD_PER_COMPANY` mailboxes of every company.
const LOOKED_UP: usize = 5;
const HELD_PER_COMPANY: usize = 10;
/// Distinct ordinary trustees per company.
const STAFF: usize = 50;
const ROWS_PER_CHUNK: usize = 2_000;
const PARALLEL_COMPANIES: usize = 4;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn company(i: usize) -> CompanyId {
    CompanyId::parse(&format!("co-{i:04}")).unwrap()
}

fn tenant(i: usize) -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(
        0x7000_0000_0000_4000_8000_0000_0000_0000 + i as u128,
    ))
}

fn ident(id: String, address: String, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: id,
        display_name: address.clone(),
        primary_address: address,
        kind,
    }
}

/// The rows of company `c`: one Full Access grant per mailbox to one of `STAFF` people, and
/// the looked-up users' grants on the first mailboxes.
fn rows(c: usize, mailboxes: usize) -> Vec<InventoryRow> {
    let cid = company(c);
    let domain = format!("co{c}.onmicrosoft.com");
    let mailbox = |m: usize| {
        ident(
            format!("{:08x}-0000-4000-8000-{:012x}", c, m),
            format!("mbx{m}@{domain}"),
            RecipientKind::SharedMailbox,
        )
    };
    let mut out = Vec::with_capacity(mailboxes + LOOKED_UP * HELD_PER_COMPANY);
    for m in 0..mailboxes {
        let s = m % STAFF;
        out.push(InventoryRow {
            company: cid.clone(),
            mailbox: mailbox(m),
            trustee: InventoryTrustee::resolved(ident(
                format!("{:08x}-1111-4000-8000-{:012x}", c, s),
                format!("staff{s}@{domain}"),
                RecipientKind::UserMailbox,
            )),
            right: Permission::FullAccess,
        });
    }
    for u in 0..LOOKED_UP {
        for m in 0..HELD_PER_COMPANY.min(mailboxes) {
            out.push(InventoryRow {
                company: cid.clone(),
                mailbox: mailbox(m),
                trustee: InventoryTrustee::resolved(ident(
                    format!("{:08x}-2222-4000-8000-{:012x}", c, u),
                    format!("tech{u}@msp.example"),
                    RecipientKind::UserMailbox,
                )),
                right: Permission::SendAs,
            });
        }
    }
    out
}

async fn sweep_company(db: &Db, c: usize, mailboxes: usize, now: Timestamp) -> usize {
    let cid = company(c);
    let owner = format!("bench-{c}");
    let lease = SweepLease {
        owner: owner.clone(),
        until: now.plus_secs(3_600),
    };
    let started = NewAuditEvent::system(now, AuditKind::InventorySweepStarted).company(&cid);
    let generation = match db
        .inventory_begin_sweep(&cid, tenant(c), now, &lease, started)
        .await
        .unwrap()
    {
        SweepBegin::Started(s) => s.generation,
        busy => panic!("{cid}: {busy:?}"),
    };
    let rows = rows(c, mailboxes);
    for chunk in rows.chunks(ROWS_PER_CHUNK) {
        assert!(
            db.inventory_write_chunk(&cid, generation, &owner, chunk, &[])
                .await
                .unwrap()
        );
    }
    let done = NewAuditEvent::system(now, AuditKind::InventorySweepFinished).company(&cid);
    assert!(
        db.inventory_finish_sweep(&cid, generation, &owner, now, mailboxes as u64, done)
            .await
            .unwrap()
    );
    rows.len()
}

/// Resident memory now and its peak since the last reset, in KiB (Linux `/proc`).
fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

async fn bench(
    db: Db,
    admin_url: &str,
    db_name: &str,
    companies: usize,
    mailboxes: usize,
    lookups: usize,
) {
    db.migrate().await.expect("migrate");
    let ms_fake = FakeMicrosoft::new();
    let now = Timestamp::from_unix_secs(1_800_000_000);
    let clock = ManualClock::new(now);
    let settings = Settings::default();
    let ctx = Ctx::new(&db, &ms_fake, &clock, &settings);
    let admin = ops::users::add_user(
        ctx,
        ops::users::Admin::LocalOperator,
        ops::users::NewUser {
            id: UserId::from_uuid(Uuid::now_v7()),
            name: UserName::parse("admin").unwrap(),
            role: Role::Admin,
            entitlement: Entitlement::All,
            password_hash: None,
        },
    )
    .await
    .unwrap();
    let admin = Actor {
        user: admin,
        channel: Channel::Api,
    };

    // Companies, connected.
    let t = Instant::now();
    for c in 0..companies {
        let id = company(c);
        ops::companies::add_company(ctx, &admin, id.clone(), &format!("Company {c}"))
            .await
            .unwrap();
        let input = ops::companies::ConnectInput {
            tenant_id: tenant(c),
            display_name: format!("Company {c}"),
            default_domain: format!("co{c}.onmicrosoft.com"),
        };
        ops::companies::connect(ctx, &admin, &id, &input)
            .await
            .unwrap();
    }
    println!(
        "postgres: {companies} companies added and connected in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Inventory rows, through the store, a few companies at a time.
    let t = Instant::now();
    let total: usize = {
        use futures::StreamExt as _;
        futures::stream::iter(0..companies)
            .map(|c| sweep_company(&db, c, mailboxes, now))
            .buffer_unordered(PARALLEL_COMPANIES)
            .fold(0, |acc, n| async move { acc + n })
            .await
    };
    let gen_t = t.elapsed();
    println!(
        "postgres: generated {total} inventory rows ({companies} companies × {mailboxes} mailboxes) in {:.1} s = {:.0} rows/s",
        gen_t.as_secs_f64(),
        total as f64 / gen_t.as_secs_f64()
    );

    // "What can X open" across every company the admin sees.
    let mut lat = Vec::with_capacity(lookups);
    let deadline = Instant::now() + Duration::from_secs(120);
    for i in 0..lookups {
        let user = IdentityInput::parse(&format!("tech{}@msp.example", i % LOOKED_UP)).unwrap();
        let t = Instant::now();
        let parts = ops::inventory::by_user(ctx, &admin, &user).await.unwrap();
        lat.push(t.elapsed());
        let found: usize = parts.iter().map(|p| p.rows.len()).sum();
        assert_eq!(found, companies * HELD_PER_COMPANY.min(mailboxes), "{user}");
        if Instant::now() > deadline && lat.len() >= 10 {
            break;
        }
    }
    let n = lat.len();
    println!(
        "postgres: what can X open, across {companies} companies ({n} lookups): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms (target: p99 < 50 ms)",
        ms(pct(&mut lat, 0.5)),
        ms(pct(&mut lat, 0.99)),
        ms(pct(&mut lat, 1.0)),
    );

    // One company's CSV export, as the API builds it.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss_kib();
    let t = Instant::now();
    let part = ops::inventory::company_rows(ctx, &admin, &company(0))
        .await
        .unwrap();
    let rows_n = part.rows.len();
    let csv = exogate::inventory_view::csv(std::slice::from_ref(&part));
    let export_t = t.elapsed();
    let bytes = csv.len();
    drop((csv, part));
    let after = rss_kib();
    let peak = match (before, after) {
        (Some((rss, _)), Some((_, hwm))) => format!("{} KiB", hwm.saturating_sub(rss)),
        _ => "n/a (no /proc)".to_owned(),
    };
    println!(
        "postgres: export of one company as CSV: {rows_n} rows, {bytes} bytes in {:.1} ms; peak resident memory growth {peak} (rows and CSV are held whole, not streamed)",
        ms(export_t)
    );

    // Size on disk.
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/{db_name}"))
        .await
        .unwrap();
    let sizes: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT pg_total_relation_size('inventory_rows'), pg_relation_size('inventory_rows'), \
         pg_indexes_size('inventory_rows'), pg_database_size(current_database())",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let mib = |b: i64| b as f64 / (1024.0 * 1024.0);
    println!(
        "postgres: size on disk: inventory_rows {:.1} MiB in all (table {:.1} MiB, indexes {:.1} MiB) = {:.0} bytes/row; database {:.1} MiB",
        mib(sizes.0),
        mib(sizes.1),
        mib(sizes.2),
        sizes.0 as f64 / total.max(1) as f64,
        mib(sizes.3)
    );
    conn.close().await.ok();
    db.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--smoke");
    let (companies, mailboxes, lookups) = if smoke {
        (20, 200, 20)
    } else {
        (1_000, 2_000, 200)
    };
    let Ok(admin_url) = std::env::var("EXOGATE_TEST_PG_URL") else {
        println!("inventory_scale: skipped (EXOGATE_TEST_PG_URL not set)");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let name = format!("bench_scale_{}", Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let db = Db::connect_with(
            &format!("{base}/{name}"),
            Some(PARALLEL_COMPANIES as u32 + 2),
        )
        .await
        .unwrap();
        bench(db, &admin_url, &name, companies, mailboxes, lookups).await;
        sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut admin)
            .await
            .unwrap();
    });
}
