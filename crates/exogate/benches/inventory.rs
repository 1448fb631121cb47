//! `inventory` benchmark: sweeps N tenants × M mailboxes on the emulator with latency L per
//! cmdlet and a per-tenant concurrency cap C, and prints the elapsed time, mailboxes/s, the
//! count of 429s, the lower bound the emulator's cost model allows (every cmdlet costs L, at
//! most C in flight per tenant, tenants in parallel) and our ratio to it, also with the group
//! member reads counted; the same workload the
//! PowerShell way (one call at a time, mailbox after mailbox; measured on a sample of mailboxes
//! and scaled to the workload) and the speed-up; the L = 0 throughput; and the peak RSS of a
//! process sweeping one large tenant (the sweep runs in a child process, the emulator in this
//! one, so the figure is the sweep's own).
//!
//! It also sweeps with the client set to twice what Exchange allows (the client adapts to the
//! 429s) and prints the share of 429s and the ratio to the bound.
//!
//! `--smoke`: a few seconds. `--full` (default): 20 × 2,000 at L = 50 ms, C = 4; 4 × 1,000
//! with the client at 2C; 4 × 5,000 at L = 0; a 100,000-mailbox tenant for RSS. Other
//! arguments are ignored.

use std::time::{Duration, Instant};

use exogate::inventory::{no_progress, sweep};
use exogate::microsoft::ExchangeAdapter;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::model::{Company, CompanyId, TenantId, Timestamp};
use exogate_core::ops::{Ctx, Settings};
use exogate_core::ports::{Clock, Store};
use exogate_exchange::{AppConfig, ClientConfig, CmdletRequest, Endpoints, M365Client};
use exogate_store::Db;
use m365_emulator::Scenario;
use m365_emulator::scenario::{DEMO_EXCHANGE_APP, DEMO_EXCHANGE_SECRET};
use uuid::Uuid;

struct Wall;
impl Clock for Wall {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
    }
}

fn tenant_id(i: usize) -> Uuid {
    Uuid::from_u128(0x5000_0000_0000_4000_8000_0000_0000_0000 + i as u128)
}

fn scenario(n: usize, m: usize, latency_ms: u64, cap: u32) -> Scenario {
    let mut s = Scenario::demo();
    let template = s.tenants[0].clone();
    s.tenants =
        (0..n)
            .map(|i| {
                let mut t = template.clone();
                let domain = format!("bench{i}.onmicrosoft.com");
                t.id = tenant_id(i);
                t.display_name = format!("Bench {i}");
                t.domains = vec![domain.clone()];
                t.directory = serde_json::to_value(
                    m365_emulator::exchange::generated_directory_seed(&domain, m, i as u64 + 1),
                )
                .ok();
                t
            })
            .collect();
    if latency_ms > 0 {
        s.knobs.latency_ms.insert("*".to_owned(), latency_ms);
    }
    s.knobs.tenant_concurrency_cap = Some(cap);
    s
}

fn client(base: &str, per_tenant: usize) -> M365Client {
    let mut c = ClientConfig::new(
        Endpoints::single(base).expect("emulator URL"),
        AppConfig::with_secret(DEMO_EXCHANGE_APP, DEMO_EXCHANGE_SECRET),
    );
    c.limits.per_tenant_concurrency = per_tenant;
    c.limits.global_concurrency = 256;
    M365Client::new(c).expect("client")
}

async fn store(dir: &std::path::Path, n: usize) -> Db {
    let db = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display()))
        .await
        .expect("db");
    db.migrate().await.expect("migrate");
    for i in 0..n {
        let c = Company {
            id: CompanyId::parse(&format!("bench{i}")).expect("id"),
            name: format!("Bench {i}"),
            connection: None,
            exchange_status: None,
            separate_approver: false,
            created_at: Wall.now(),
        };
        db.insert_company(
            &c,
            NewAuditEvent::system(Wall.now(), AuditKind::CompanyAdded),
        )
        .await
        .expect("company");
    }
    db
}

/// (429s, calls, Get-DistributionGroupMember calls) from the emulator's counters.
async fn counters(base: &str) -> (u64, u64, u64) {
    let v: serde_json::Value = reqwest::get(format!("{base}/_emulator/counters"))
        .await
        .expect("counters")
        .json()
        .await
        .expect("json");
    let sum = |k: &str| {
        v[k].as_object().map_or(0, |m| {
            m.values().filter_map(serde_json::Value::as_u64).sum()
        })
    };
    let members = v["exchange_requests"].as_object().map_or(0, |m| {
        m.iter()
            .filter(|(k, _)| k.starts_with("Get-DistributionGroupMember|"))
            .filter_map(|(_, v)| v.as_u64())
            .sum()
    });
    (sum("throttled"), sum("exchange_requests"), members)
}

async fn reset_counters(base: &str) {
    let _ = reqwest::Client::new()
        .delete(format!("{base}/_emulator/counters"))
        .send()
        .await;
}

struct Run {
    elapsed: Duration,
    mailboxes: u64,
    throttled: u64,
    calls: u64,
    /// Get-DistributionGroupMember calls (expanding the groups that hold rights).
    member_calls: u64,
}

async fn sweep_all(n: usize, m: usize, latency: u64, cap: u32) -> Run {
    sweep_all_with(n, m, latency, cap, cap as usize).await
}

/// As [`sweep_all`], the client configured for `ours` calls in flight per tenant.
async fn sweep_all_with(n: usize, m: usize, latency: u64, cap: u32, ours: usize) -> Run {
    let emu = m365_emulator::start(scenario(n, m, latency, cap))
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("dir");
    let db = store(dir.path(), n).await;
    let ms = ExchangeAdapter::new(client(&emu.base_url, ours));
    let settings = Settings::default();
    let ctx = Ctx::new(&db, &ms, &Wall, &settings);
    reset_counters(&emu.base_url).await;
    let progress = no_progress();
    let started = Instant::now();
    let results = futures::future::join_all((0..n).map(|i| {
        let progress = &progress;
        async move {
            let company = CompanyId::parse(&format!("bench{i}")).expect("id");
            sweep(
                ctx,
                exogate::inventory::DEFAULT_LEASE,
                None,
                &company,
                TenantId::from_uuid(tenant_id(i)),
                progress,
            )
            .await
            .expect("sweep")
        }
    }))
    .await;
    let elapsed = started.elapsed();
    let (throttled, calls, member_calls) = counters(&emu.base_url).await;
    Run {
        elapsed,
        mailboxes: results.iter().map(|r| r.mailboxes).sum(),
        throttled,
        calls,
        member_calls,
    }
}

/// The PowerShell way on `sample` mailboxes of one tenant: Get-Mailbox, then per mailbox
/// Get-MailboxPermission and Get-RecipientPermission, one call at a time. Returns the time per
/// mailbox.
async fn powershell_per_mailbox(m: usize, latency: u64, cap: u32, sample: usize) -> Duration {
    let emu = m365_emulator::start(scenario(1, m, latency, cap))
        .await
        .expect("emulator");
    let client = client(&emu.base_url, 1);
    let tid = tenant_id(0);
    let started = Instant::now();
    let list = client
        .invoke(tid, &CmdletRequest::new("Get-Mailbox").unlimited())
        .await
        .expect("Get-Mailbox");
    for mbx in list.value.iter().take(sample) {
        let id = mbx["UserPrincipalName"]
            .as_str()
            .or_else(|| mbx["PrimarySmtpAddress"].as_str())
            .unwrap_or_default()
            .to_owned();
        for cmdlet in ["Get-MailboxPermission", "Get-RecipientPermission"] {
            client
                .invoke(
                    tid,
                    &CmdletRequest::new(cmdlet).param("Identity", id.as_str()),
                )
                .await
                .expect("per-mailbox read");
        }
    }
    started.elapsed() / sample.max(1) as u32
}

/// Runs one large-tenant sweep in a child process and returns its peak RSS in MiB.
async fn rss_of_large_sweep(m: usize) -> f64 {
    let emu = m365_emulator::start(scenario(1, m, 0, 8))
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("dir");
    let exe = std::env::current_exe().expect("exe");
    let out = tokio::process::Command::new(exe)
        .arg("--rss-child")
        .arg(&emu.base_url)
        .arg(dir.path())
        .output()
        .await
        .expect("child runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("peak_rss_kib="))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kib| kib / 1024.0)
        .unwrap_or_else(|| {
            panic!(
                "child failed: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

async fn rss_child(base: &str, dir: &str) {
    let db = store(std::path::Path::new(dir), 1).await;
    let ms = ExchangeAdapter::new(client(base, 8));
    let settings = Settings::default();
    let r = sweep(
        Ctx::new(&db, &ms, &Wall, &settings),
        exogate::inventory::DEFAULT_LEASE,
        None,
        &CompanyId::parse("bench0").expect("id"),
        TenantId::from_uuid(tenant_id(0)),
        &no_progress(),
    )
    .await
    .expect("sweep");
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
        .unwrap_or_default();
    println!("mailboxes={} rows={}", r.mailboxes, r.rows);
    println!("peak_rss_kib={hwm}");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--rss-child") {
        rss_child(&args[i + 1], &args[i + 2]).await;
        return;
    }
    let smoke = args.iter().any(|a| a == "--smoke");
    let (n, m, latency, cap, sample) = if smoke {
        (2, 300, 5, 4, 10)
    } else {
        (20, 2000, 50, 4, 60)
    };
    let (n0, m0) = if smoke { (1, 2000) } else { (4, 5000) };
    let big = if smoke { 5_000 } else { 100_000 };
    println!(
        "inventory benchmark ({})",
        if smoke { "smoke" } else { "full" }
    );

    let run = sweep_all(n, m, latency, cap).await;
    // Generated tenants lose about 1% of their users to deletion (their grants become orphans).
    let total = run.mailboxes as f64;
    let secs = run.elapsed.as_secs_f64();
    // Cost model: each cmdlet takes L, at most C in flight per tenant, tenants in parallel. A
    // sweep needs at least one Get-MailboxPermission per mailbox plus the list pages.
    let pages = m.div_ceil(1000) as f64 * 2.0;
    let bound = (m as f64 + pages) * latency as f64 / 1000.0 / cap as f64;
    println!("sweep: {n} tenants x {m} mailboxes, L = {latency} ms, C = {cap}");
    println!("  elapsed           {secs:.2} s");
    println!("  mailboxes/s       {:.0}", total / secs);
    println!(
        "  429s              {} of {} calls ({:.2}%)",
        run.throttled,
        run.calls,
        100.0 * run.throttled as f64 / run.calls.max(1) as f64
    );
    println!(
        "  lower bound       {bound:.2} s ({:.0} mailboxes/s)",
        total / bound
    );
    println!("  ratio to bound    {:.1}%", 100.0 * bound / secs);
    // The sweep also expands the groups that hold rights (one Get-DistributionGroupMember per
    // group): reads the bound above does not count.
    let per_tenant = run.member_calls as f64 / n as f64;
    let bound_groups = (m as f64 + pages + per_tenant) * latency as f64 / 1000.0 / cap as f64;
    println!(
        "  with group reads  {} Get-DistributionGroupMember calls; bound {bound_groups:.2} s, ratio {:.1}%",
        run.member_calls,
        100.0 * bound_groups / secs
    );

    // The client configured above what Exchange allows: it adapts on the first 429s.
    let (na, ma) = if smoke { (1, 300) } else { (4, 1000) };
    let over = sweep_all_with(na, ma, latency, cap, cap as usize * 2).await;
    let bound_a =
        (ma as f64 + ma.div_ceil(1000) as f64 * 2.0) * latency as f64 / 1000.0 / cap as f64;
    println!(
        "sweep with the client set to {} calls per tenant against Exchange's {cap}: {na} tenants x {ma}",
        cap * 2
    );
    println!(
        "  elapsed           {:.2} s, {:.1}% of the bound ({bound_a:.2} s)",
        over.elapsed.as_secs_f64(),
        100.0 * bound_a / over.elapsed.as_secs_f64()
    );
    println!(
        "  429s              {} of {} calls ({:.2}%)",
        over.throttled,
        over.calls,
        100.0 * over.throttled as f64 / over.calls.max(1) as f64
    );

    let per = powershell_per_mailbox(m.min(sample * 2), latency, cap, sample).await;
    let ps = per.as_secs_f64() * total;
    println!(
        "PowerShell way (one call at a time; {sample} mailboxes measured, scaled to {n} x {m})"
    );
    println!("  per mailbox       {:.1} ms", per.as_secs_f64() * 1000.0);
    println!("  estimated total   {ps:.0} s");
    println!("  speed-up          {:.0}x", ps / secs);

    let run0 = sweep_all(n0, m0, 0, cap).await;
    let secs0 = run0.elapsed.as_secs_f64();
    println!("sweep at L = 0: {n0} tenants x {m0} mailboxes, C = {cap}");
    println!("  elapsed           {secs0:.2} s");
    println!("  mailboxes/s       {:.0}", (n0 * m0) as f64 / secs0);

    let rss = rss_of_large_sweep(big).await;
    println!("peak RSS sweeping one {big}-mailbox tenant: {rss:.0} MiB");
}
