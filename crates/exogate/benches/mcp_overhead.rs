//! The latency MCP adds to `view_mailbox_permissions`: the same read through the MCP server
//! (rmcp client → streamable HTTP on 127.0.0.1 → bearer-token check → tool → core op) and
//! directly (the core operation the tool calls), against the emulator on loopback, alternating
//! call by call so both see the same conditions. Prints p50, p99 and mean of each, and the
//! difference (target: under 2 ms added at p99).
//!
//! `--full` (default): 10,000 calls each. `--smoke`: 200. Other arguments are ignored.

use std::time::{Duration, Instant};

use exogate_core::model::{Actor, CompanyId, IdentityInput};
use exogate_core::ops;
use rmcp::ServiceExt as _;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Stats {
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort_unstable();
    let total: Duration = v.iter().sum();
    Stats {
        p50: percentile(&v, 0.50),
        p99: percentile(&v, 0.99),
        mean: total / v.len() as u32,
    }
}

fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let calls: usize = if smoke { 200 } else { 10_000 };
    let warmup: usize = if smoke { 20 } else { 200 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(run(calls, warmup))
}

async fn run(calls: usize, warmup: usize) -> anyhow::Result<()> {
    let emulator = m365_emulator::start(m365_emulator::Scenario::demo()).await?;
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let mut text = exogate::demo::config_text(
        dir.path(),
        None,
        &addr.to_string(),
        &base_url,
        &emulator.base_url,
    );
    // The benchmark makes far more calls than an agent may: lift the per-token and per-company
    // limits.
    text.push_str("[limits]\ntoken_per_minute = 100000000\ncompany_per_minute = 100000000\n");
    let config = exogate::config::Config::from_toml(&text)?;
    let app = exogate::server::build_app(&config).await?;
    let (_users, token) = exogate::demo::seed(&app).await?;
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(exogate::server::serve(
        app.clone(),
        listener,
        None,
        shutdown.clone(),
    ));

    let client_config = StreamableHttpClientTransportConfig::with_uri(format!("{base_url}/mcp"))
        .auth_header(token.clone());
    let client = ().serve(StreamableHttpClientTransport::from_config(client_config)).await?;
    let args = json!({"company": "contoso", "mailbox": "sales@contoso.onmicrosoft.com"})
        .as_object()
        .cloned()
        .unwrap_or_default();

    // The direct path: the core operation the tool runs, as the token's user.
    let actor: Actor = ops::users::authenticate_token(app.ctx(), &token, None).await?;
    let company = CompanyId::parse("contoso")?;
    let mailbox = IdentityInput::parse("sales@contoso.onmicrosoft.com")?;

    let mcp_call = || {
        let client = &client;
        let args = args.clone();
        async move {
            let r = client
                .call_tool(
                    CallToolRequestParams::new("view_mailbox_permissions").with_arguments(args),
                )
                .await?;
            anyhow::ensure!(r.is_error != Some(true), "MCP call failed: {r:?}");
            anyhow::Ok(())
        }
    };
    let direct_call = || {
        let app = &app;
        let actor = &actor;
        let company = &company;
        let mailbox = &mailbox;
        async move {
            ops::reads::view_mailbox_permissions(app.ctx(), actor, company, mailbox).await?;
            anyhow::Ok(())
        }
    };

    for _ in 0..warmup {
        mcp_call().await?;
        direct_call().await?;
    }
    let mut via_mcp = Vec::with_capacity(calls);
    let mut direct = Vec::with_capacity(calls);
    let started = Instant::now();
    for i in 0..calls {
        // Alternate which goes first so neither always runs on a warmer cache.
        if i % 2 == 0 {
            let t = Instant::now();
            mcp_call().await?;
            via_mcp.push(t.elapsed());
            let t = Instant::now();
            direct_call().await?;
            direct.push(t.elapsed());
        } else {
            let t = Instant::now();
            direct_call().await?;
            direct.push(t.elapsed());
            let t = Instant::now();
            mcp_call().await?;
            via_mcp.push(t.elapsed());
        }
    }
    let wall = started.elapsed();
    // Where the difference goes: the per-request token check, and a bare MCP round trip.
    let parts = calls.min(2_000);
    let mut auth = Vec::with_capacity(parts);
    let mut list = Vec::with_capacity(parts);
    for _ in 0..parts {
        let t = Instant::now();
        ops::users::authenticate_token(app.ctx(), &token, None).await?;
        auth.push(t.elapsed());
        let t = Instant::now();
        client.list_tools(None).await?;
        list.push(t.elapsed());
    }
    let auth = stats(auth);
    let list = stats(list);
    let m = stats(via_mcp);
    let d = stats(direct);
    println!(
        "mcp_overhead: view_mailbox_permissions, {calls} calls each on loopback (emulator + SQLite), {:.1} s",
        wall.as_secs_f64()
    );
    println!(
        "  direct (core op):  p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms",
        ms(d.p50),
        ms(d.p99),
        ms(d.mean)
    );
    println!(
        "  via MCP over HTTP: p50 {:.3} ms  p99 {:.3} ms  mean {:.3} ms",
        ms(m.p50),
        ms(m.p99),
        ms(m.mean)
    );
    let added_p50 = ms(m.p50) - ms(d.p50);
    let added_p99 = ms(m.p99) - ms(d.p99);
    println!(
        "  added by MCP:      p50 {added_p50:.3} ms  p99 {added_p99:.3} ms  mean {:.3} ms  (target p99 < 2 ms: {})",
        ms(m.mean) - ms(d.mean),
        if added_p99 < 2.0 { "met" } else { "NOT met" }
    );

    println!(
        "  parts ({parts} calls): token check p50 {:.3} ms p99 {:.3} ms; MCP tools/list round trip p50 {:.3} ms p99 {:.3} ms",
        ms(auth.p50),
        ms(auth.p99),
        ms(list.p50),
        ms(list.p99)
    );

    client.cancel().await?;
    shutdown.cancel();
    server.await??;
    emulator.shutdown().await?;
    Ok(())
}
