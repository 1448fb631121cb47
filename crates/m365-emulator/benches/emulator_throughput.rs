//! Emulator throughput and memory benchmark.
//!
//! Starts the emulator in-process (demo world, zero latency), then:
//! * memory: RSS of the demo world, then RSS and peak after loading one big tenant
//!   (100,000 mailboxes with `--full`, 2,000 with `--smoke`);
//! * throughput: `Get-MailboxPermission` through `InvokeCommand` on loopback, driven by a
//!   concurrent reqwest load generator in the same process, so the CPU figure counts both the
//!   emulator and the generator.
//!
//! `--smoke`: a couple of seconds and a small tenant. `--full` (default): real figures. Other
//! arguments (cargo passes `--bench`) are ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use m365_emulator::Scenario;
use m365_emulator::exchange::{Directory, demo_directory_seed, generated_directory_seed};
use serde_json::{Value, json};

const CONTOSO: &str = "11111111-1111-4111-8111-111111111111";
const DOMAIN: &str = "contoso.onmicrosoft.com";

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command name: state is index 0; utime = 11, stime = 12.
    (ticks(11) + ticks(12)) / 100.0
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (big_tenant, duration, connections) = if smoke {
        (2_000usize, Duration::from_secs(2), 32usize)
    } else {
        (100_000usize, Duration::from_secs(10), 64usize)
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(smoke, big_tenant, duration, connections))
}

async fn run(
    smoke: bool,
    big_tenant: usize,
    duration: Duration,
    connections: usize,
) -> anyhow::Result<()> {
    println!(
        "emulator_throughput ({})",
        if smoke { "smoke" } else { "full" }
    );
    let emu = m365_emulator::start(Scenario::demo()).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections * 2)
        .build()?;
    // Make sure Contoso holds the demo directory whatever the scenario wiring does.
    {
        let dir = Directory::from_seed(&demo_directory_seed(DOMAIN), DOMAIN, 1)?;
        let id = uuid::Uuid::parse_str(CONTOSO)?;
        if let Some(t) = emu.shared.world.write().tenants.get_mut(&id) {
            t.directory = dir;
        }
    }
    let demo_rss = status_kb("VmRSS:");
    println!(
        "memory: demo world RSS {:.1} MB (target < 50 MB)",
        mb(demo_rss)
    );

    let seed = generated_directory_seed(DOMAIN, big_tenant, 42);
    let dir = Directory::from_seed(&seed, DOMAIN, 42)?;
    drop(seed);
    let identities: Vec<String> = dir
        .live()
        .filter(|(_, o)| o.kind.is_mailbox())
        .filter_map(|(_, o)| o.upn.as_deref().map(str::to_owned))
        .take(4096)
        .collect();
    let mailboxes = dir.mailbox_count();
    {
        let id = uuid::Uuid::parse_str(CONTOSO)?;
        if let Some(t) = emu.shared.world.write().tenants.get_mut(&id) {
            t.directory = dir;
        }
    }
    println!(
        "memory: with a {mailboxes}-mailbox tenant RSS {:.1} MB, peak (VmHWM) {:.1} MB (target < 1024 MB)",
        mb(status_kb("VmRSS:")),
        mb(status_kb("VmHWM:"))
    );

    let token: Value = http
        .post(format!("{}/{CONTOSO}/oauth2/v2.0/token", emu.base_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "e0e0e0e0-0000-4000-8000-000000000001"),
            ("client_secret", "demo-client-secret"),
            ("scope", "https://outlook.office365.com/.default"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no token: {token}"))?
        .to_owned();
    let url = format!("{}/adminapi/beta/{CONTOSO}/InvokeCommand", emu.base_url);
    let bodies: Arc<Vec<String>> = Arc::new(
        identities
            .iter()
            .map(|i| {
                json!({"CmdletInput":{"CmdletName":"Get-MailboxPermission","Parameters":{"Identity":i}}})
                    .to_string()
            })
            .collect(),
    );

    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Warm-up: open the connections.
    let mut tasks = Vec::new();
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    for c in 0..connections {
        let (http, url, token, bodies) = (http.clone(), url.clone(), token.clone(), bodies.clone());
        let (done, errors, stop) = (done.clone(), errors.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let body = bodies[i % bodies.len()].clone();
                i += connections;
                let ok = match http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .header("prefer", "odata.maxpagesize=1000")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu0;
    for t in tasks {
        t.await?;
    }
    let n = done.load(Ordering::Relaxed);
    println!(
        "throughput: Get-MailboxPermission via InvokeCommand, {connections} connections, {elapsed:.1} s: {n} calls, {:.0} calls/s (target >= 10000), errors {}",
        n as f64 / elapsed,
        errors.load(Ordering::Relaxed)
    );
    println!(
        "cpu: emulator + load generator used {cpu:.1} CPU-s in {elapsed:.1} s ({:.0}% of 2 cores), {:.0} calls per CPU-second",
        100.0 * cpu / (2.0 * elapsed),
        n as f64 / cpu.max(0.001)
    );
    println!(
        "memory: after the run RSS {:.1} MB, peak {:.1} MB",
        mb(status_kb("VmRSS:")),
        mb(status_kb("VmHWM:"))
    );
    emu.shutdown().await?;
    Ok(())
}
