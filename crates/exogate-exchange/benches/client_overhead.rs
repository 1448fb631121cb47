//! Per-call overhead of the `exogate-exchange` client over a bare reqwest POST of the same
//! InvokeCommand request to the in-process emulator (zero latency, token cached).
//!
//! `cargo bench -p exogate-exchange --bench client_overhead -- --smoke` (a few seconds) or
//! `--full` (default). Other arguments are ignored. Prints p50/p99 for both paths and the
//! overhead at p50 (target < 50 µs).

use std::time::{Duration, Instant};

use exogate_exchange::{AppConfig, ClientConfig, CmdletRequest, Endpoints, M365Client, Resource};
use uuid::uuid;

const CONTOSO: uuid::Uuid = uuid!("11111111-1111-4111-8111-111111111111");
const EXCHANGE_APP: uuid::Uuid = uuid!("e0e0e0e0-0000-4000-8000-000000000001");

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let iterations = if smoke { 400 } else { 5000 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(iterations, smoke))
}

async fn run(iterations: usize, smoke: bool) -> anyhow::Result<()> {
    let emu = m365_emulator::start(m365_emulator::Scenario::demo()).await?;
    let cfg = ClientConfig::new(
        Endpoints::single(&emu.base_url)?,
        AppConfig::with_secret(EXCHANGE_APP, "demo-client-secret"),
    );
    let client = M365Client::new(cfg)?;
    let token = client.tokens().get(CONTOSO, Resource::Exchange).await?;
    let req = CmdletRequest::new("Get-OrganizationConfig");
    let url = client.endpoints().invoke_url(CONTOSO);
    let body = bytes::Bytes::from(serde_json::to_vec(&req.body())?);
    let bearer = format!("Bearer {}", token.bearer());
    let anchor = format!("APP:SystemMailbox{{bb558c35-97f1-4cb9-8ff7-d53741dc928c}}@{CONTOSO}");
    let bare = reqwest::Client::new();

    let bare_call = || async {
        let r = bare
            .post(&url)
            .header("Authorization", &bearer)
            .header("Content-Type", "application/json")
            .header("X-AnchorMailbox", &anchor)
            .body(body.clone())
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "bare call got {}", r.status());
        let b = r.bytes().await?;
        anyhow::ensure!(!b.is_empty());
        Ok(())
    };
    let client_call = || async {
        let out = client.invoke(CONTOSO, &req).await?;
        anyhow::ensure!(out.value.len() == 1);
        Ok::<_, anyhow::Error>(())
    };

    for _ in 0..(iterations / 10).max(50) {
        bare_call().await?;
        client_call().await?;
    }
    let mut bare_t = Vec::with_capacity(iterations);
    let mut client_t = Vec::with_capacity(iterations);
    for i in 0..iterations {
        // Alternate the order so neither path always runs on a warmer connection.
        if i % 2 == 0 {
            let t = Instant::now();
            bare_call().await?;
            bare_t.push(t.elapsed());
            let t = Instant::now();
            client_call().await?;
            client_t.push(t.elapsed());
        } else {
            let t = Instant::now();
            client_call().await?;
            client_t.push(t.elapsed());
            let t = Instant::now();
            bare_call().await?;
            bare_t.push(t.elapsed());
        }
    }
    bare_t.sort();
    client_t.sort();
    let (b50, b99) = (pct(&bare_t, 0.5), pct(&bare_t, 0.99));
    let (c50, c99) = (pct(&client_t, 0.5), pct(&client_t, 0.99));
    println!(
        "client_overhead ({} mode, {iterations} calls each, Get-OrganizationConfig, emulator latency 0)",
        if smoke { "smoke" } else { "full" }
    );
    println!(
        "  bare reqwest POST   p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(b50),
        us(b99)
    );
    println!(
        "  exogate client      p50 {:>8.1} µs   p99 {:>8.1} µs",
        us(c50),
        us(c99)
    );
    let overhead = us(c50) - us(b50);
    println!(
        "  overhead at p50     {:>8.1} µs   (target < 50 µs: {})",
        overhead,
        if overhead < 50.0 { "met" } else { "NOT met" }
    );
    println!("  overhead at p99     {:>8.1} µs", us(c99) - us(b99));
    emu.shutdown().await?;
    Ok(())
}
