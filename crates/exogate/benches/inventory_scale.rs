//! `inventory_scale` benchmark: the delegation inventory at MSP scale on PostgreSQL.
//!
//! Generates C companies × M mailboxes of inventory rows written directly through the store
//! (one sweep per company, rows in chunks, a few companies at a time), then prints:
//! - the time the generation took and rows/s;
//! - "what can X open" across all of a user's companies (`ops::inventory::by_user`, what the
//!   API's `/api/v1/inventory/users/{user}` and MCP's `find_user_access` call) p50/p99 over
//!   many lookups of users holding rights in every company;
//!   and where a lookup's time goes (the store's two calls alone, p50/p99);
//! - a company's CSV export as the API streams it (`ops::inventory::export::company_rows_stream`
//!   and `inventory_view`'s line functions, as `web/inventory_export.rs` writes them) for one
//!   company of 2,050 rows and one big company (`BIG` rows; 5,000 in smoke mode): time, bytes,
//!   and the process's peak resident memory growth while it runs (`/proc/self/clear_refs`
//!   resets the peak first), then the big one held whole (`company_rows` + `csv`) to compare;
//! - (review-age) the big company swept again: its finish (the first-seen carry of migration
//!   0018, one UPDATE of every row) and the whole sweep;
//! - the size on disk of the inventory tables and the database (`pg_total_relation_size`).
//!
//! Needs `EXOGATE_TEST_PG_URL` (a fresh database is created and dropped); without it, prints
//! that it skipped. `--smoke`: 20 × 200 (seconds). `--full` (default): 1,000 × 2,000.
//! `--keep`: the database is not dropped (its name is printed); `--reuse NAME`: measure on the
//! database a `--keep` run left (migrated to this build first; nothing is generated again).

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
/// Rows of the big company the export is measured on (full mode).
const BIG: usize = 100_000;

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
fn rows(c: usize, mailboxes: usize, looked_up: usize) -> Vec<InventoryRow> {
    let cid = company(c);
    let domain = format!("co{c}.onmicrosoft.com");
    let mailbox = |m: usize| {
        ident(
            format!("{:08x}-0000-4000-8000-{:012x}", c, m),
            format!("mbx{m}@{domain}"),
            RecipientKind::SharedMailbox,
        )
    };
    let mut out = Vec::with_capacity(mailboxes + looked_up * HELD_PER_COMPANY);
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
    for u in 0..looked_up {
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

async fn sweep_company(
    db: &Db,
    c: usize,
    mailboxes: usize,
    looked_up: usize,
    now: Timestamp,
) -> usize {
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
    let rows = rows(c, mailboxes, looked_up);
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

/// (review-age) Sweeps company `c` again with the same rows, a day later: the time of its
/// finish, which carries every row's first-seen time over from the previous generation in one
/// statement, and of the whole sweep.
async fn resweep(db: &Db, c: usize, mailboxes: usize, now: Timestamp) -> (Duration, Duration) {
    let cid = company(c);
    let owner = format!("bench-again-{c}");
    let at = now.plus_secs(86_400);
    let lease = SweepLease {
        owner: owner.clone(),
        until: at.plus_secs(3_600),
    };
    let all = Instant::now();
    let started = NewAuditEvent::system(at, AuditKind::InventorySweepStarted).company(&cid);
    let generation = match db
        .inventory_begin_sweep(&cid, tenant(c), at, &lease, started)
        .await
        .unwrap()
    {
        SweepBegin::Started(s) => s.generation,
        busy => panic!("{cid}: {busy:?}"),
    };
    for chunk in rows(c, mailboxes, 0).chunks(ROWS_PER_CHUNK) {
        assert!(
            db.inventory_write_chunk(&cid, generation, &owner, chunk, &[])
                .await
                .unwrap()
        );
    }
    let done = NewAuditEvent::system(at, AuditKind::InventorySweepFinished).company(&cid);
    let finish = Instant::now();
    assert!(
        db.inventory_finish_sweep(&cid, generation, &owner, at, mailboxes as u64, done)
            .await
            .unwrap()
    );
    (finish.elapsed(), all.elapsed())
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

/// The peak resident memory growth since `before` (taken after a reset of the peak).
fn growth(before: Option<(u64, u64)>) -> String {
    match (before, rss_kib()) {
        (Some((rss, _)), Some((_, hwm))) => format!("{} KiB", hwm.saturating_sub(rss)),
        _ => "n/a (no /proc)".to_owned(),
    }
}

/// (scale2) A company's CSV written as `web/inventory_export.rs` writes it, into a byte count:
/// rows, bytes, time, peak resident memory growth.
async fn export_streamed(
    ctx: Ctx<'_>,
    admin: &Actor,
    id: &CompanyId,
) -> (usize, usize, Duration, String) {
    use exogate::inventory_view as v;
    use futures::StreamExt as _;
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss_kib();
    let t = Instant::now();
    let (part, mut rows) = ops::inventory::export::company_rows_stream(ctx, admin, id)
        .await
        .unwrap();
    let head = v::csv_head(&part);
    let (mut n, mut bytes) = (0, v::csv_header().len());
    while let Some(r) = rows.next().await {
        bytes += v::csv_row(&head, &r.unwrap(), "").len();
        n += 1;
    }
    (n, bytes, t.elapsed(), growth(before))
}

/// How much is generated and measured.
struct Shape {
    companies: usize,
    mailboxes: usize,
    lookups: usize,
    big: usize,
}

async fn bench(
    db: Db,
    admin_url: &str,
    db_name: &str,
    Shape {
        companies,
        mailboxes,
        lookups,
        big,
    }: Shape,
    reuse: bool,
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
            // A new name on a reused database, whose earlier run's admin exists.
            name: UserName::parse(&format!("admin{}", Uuid::now_v7().simple())).unwrap(),
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

    // Companies, connected (and the big one of the export, `companies`).
    let t = Instant::now();
    for c in (0..=companies).filter(|_| !reuse) {
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
    let total: usize = if reuse {
        companies * (mailboxes + LOOKED_UP * HELD_PER_COMPANY.min(mailboxes))
    } else {
        use futures::StreamExt as _;
        futures::stream::iter(0..companies)
            .map(|c| sweep_company(&db, c, mailboxes, LOOKED_UP, now))
            .buffer_unordered(PARALLEL_COMPANIES)
            .fold(0, |acc, n| async move { acc + n })
            .await
    };
    let gen_t = t.elapsed();
    if reuse {
        println!("postgres: reused {db_name} ({total} inventory rows)");
    } else {
        println!(
            "postgres: generated {total} inventory rows ({companies} companies × {mailboxes} mailboxes) in {:.1} s = {:.0} rows/s",
            gen_t.as_secs_f64(),
            total as f64 / gen_t.as_secs_f64()
        );
        // (scale2) The big company the export is measured on; nobody looked up holds rights there.
        sweep_company(&db, companies, big, 0, now).await;
    }
    // (scale2) Planner statistics, as autovacuum keeps them.
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    let mut conn = sqlx::PgConnection::connect(&format!("{base}/{db_name}"))
        .await
        .unwrap();
    sqlx::query("ANALYZE").execute(&mut conn).await.unwrap();

    // "What can X open" across every company the admin sees: right after the sweeps wrote
    // their rows (their pages not yet marked all-visible, so the index-only scan still reads
    // the table), then on a settled database (after the VACUUM autovacuum would have run).
    let admin_ref = &admin;
    let looked = |n: usize| async move {
        let mut lat = Vec::with_capacity(n);
        let deadline = Instant::now() + Duration::from_secs(120);
        for i in 0..n {
            let user = IdentityInput::parse(&format!("tech{}@msp.example", i % LOOKED_UP)).unwrap();
            let t = Instant::now();
            let parts = ops::inventory::by_user(ctx, admin_ref, &user)
                .await
                .unwrap();
            lat.push(t.elapsed());
            let found: usize = parts.iter().map(|p| p.rows.len()).sum();
            assert_eq!(found, companies * HELD_PER_COMPANY.min(mailboxes), "{user}");
            if Instant::now() > deadline && lat.len() >= 10 {
                break;
            }
        }
        lat
    };
    let mut lat = looked(lookups / 4).await;
    println!(
        "postgres: what can X open, right after the sweeps ({} lookups): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        lat.len(),
        ms(pct(&mut lat, 0.5)),
        ms(pct(&mut lat, 0.99)),
        ms(pct(&mut lat, 1.0)),
    );
    sqlx::query("VACUUM (ANALYZE) inventory_rows")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut lat = looked(lookups).await;
    let n = lat.len();
    println!(
        "postgres: what can X open, across {companies} companies ({n} lookups): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms (target: p99 < 50 ms)",
        ms(pct(&mut lat, 0.5)),
        ms(pct(&mut lat, 0.99)),
        ms(pct(&mut lat, 1.0)),
    );

    // (scale2) Where a lookup's time goes: the store's two calls alone (statement, transfer,
    // decoding), the rest being the ops layer (companies, entitlement, assembly).
    let ids: Vec<CompanyId> = (0..=companies).map(company).collect();
    let (mut st_lat, mut m_lat) = (Vec::new(), Vec::new());
    for i in 0..n.min(100) {
        let t = Instant::now();
        db.inventory_statuses(&ids).await.unwrap();
        st_lat.push(t.elapsed());
        let t = Instant::now();
        let m = db
            .inventory_user_matches(&ids, &format!("tech{}@msp.example", i % LOOKED_UP))
            .await
            .unwrap();
        m_lat.push(t.elapsed());
        assert_eq!(m.len(), companies);
    }
    println!(
        "postgres: of which the store: inventory_statuses p50 {:.1} ms p99 {:.1} ms; inventory_user_matches p50 {:.1} ms p99 {:.1} ms",
        ms(pct(&mut st_lat, 0.5)),
        ms(pct(&mut st_lat, 0.99)),
        ms(pct(&mut m_lat, 0.5)),
        ms(pct(&mut m_lat, 0.99)),
    );

    // (scale2) One company's CSV export as the API streams it: a company of the grid, then the
    // big one; then the big one held whole, as it was before it streamed.
    for (label, c) in [("one company", 0), ("the big company", companies)] {
        let (rows_n, bytes, t, peak) = export_streamed(ctx, &admin, &company(c)).await;
        println!(
            "postgres: export of {label} as CSV, streamed: {rows_n} rows, {bytes} bytes in {:.1} ms; peak resident memory growth {peak}",
            ms(t)
        );
    }
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss_kib();
    let t = Instant::now();
    let part = ops::inventory::company_rows(ctx, &admin, &company(companies))
        .await
        .unwrap();
    let rows_n = part.rows.len();
    let csv = exogate::inventory_view::csv(std::slice::from_ref(&part));
    let export_t = t.elapsed();
    let bytes = csv.len();
    drop((csv, part));
    println!(
        "postgres: export of the big company as CSV, held whole (before streaming): {rows_n} rows, {bytes} bytes in {:.1} ms; peak resident memory growth {}",
        ms(export_t),
        growth(before)
    );

    // (review-age) The big company swept again: its finish carries first-seen times over.
    let (finish, all) = resweep(&db, companies, big, now).await;
    println!(
        "postgres: the big company swept again ({big} rows): finish with the first-seen carry {:.1} ms, whole sweep {:.1} ms",
        ms(finish),
        ms(all)
    );

    // Size on disk.
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
    let keep = args.iter().any(|a| a == "--keep");
    let reuse = args
        .iter()
        .position(|a| a == "--reuse")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let (companies, mailboxes, lookups, big) = if smoke {
        (20, 200, 20, 5_000)
    } else {
        (1_000, 2_000, 200, BIG)
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
        let name = reuse
            .clone()
            .unwrap_or_else(|| format!("bench_scale_{}", Uuid::new_v4().simple()));
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "--reuse: a database name"
        );
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        if reuse.is_none() {
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let db = Db::connect_with(
            &format!("{base}/{name}"),
            Some(PARALLEL_COMPANIES as u32 + 2),
        )
        .await
        .unwrap();
        bench(
            db,
            &admin_url,
            &name,
            Shape {
                companies,
                mailboxes,
                lookups,
                big,
            },
            reuse.is_some(),
        )
        .await;
        if keep || reuse.is_some() {
            println!(
                "inventory_scale: kept database {name} (`--reuse {name}` measures on it again)"
            );
        } else {
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    });
}
