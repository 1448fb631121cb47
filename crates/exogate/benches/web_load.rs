//! Load benchmark of the JSON API with `wrk` (Debian's package): exogate on SQLite with the
//! demo world, Microsoft played by the in-process emulator with zero latency, real HTTP on
//! 127.0.0.1. Prints requests/s and the p50/p99 latency per endpoint.
//!
//! `cargo bench -p exogate --bench web_load -- --smoke` (3 s per endpoint) or `--full`
//! (default, 15 s per endpoint). Target: ≥ 2,000 req/s with p99 < 50 ms for a read endpoint on
//! a 2-core machine (wrk shares the cores).

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    non_2xx: u64,
}

fn parse_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

fn parse_wrk(out: &str) -> anyhow::Result<Figures> {
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut non_2xx = 0;
    for line in out.lines() {
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = t.strip_prefix("50%") {
            p50 = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("99%") {
            p99 = parse_ms(v);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = v.trim().parse().unwrap_or(0);
        } else if t.contains(" requests in ") {
            requests = t.split_whitespace().next().and_then(|n| n.parse().ok());
        }
    }
    match (rps, p50, p99, requests) {
        (Some(rps), Some(p50_ms), Some(p99_ms), Some(requests)) => Ok(Figures {
            rps,
            p50_ms,
            p99_ms,
            requests,
            non_2xx,
        }),
        _ => bail!("cannot parse wrk output:\n{out}"),
    }
}

fn wrk(url: &str, header: &str, secs: u64, connections: u32) -> anyhow::Result<Figures> {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            "-H",
            header,
            url,
        ])
        .output()
        .context("running wrk (apt install wrk)")?;
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let secs = if smoke { 3 } else { 15 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let emulator = m365_emulator::start(m365_emulator::Scenario::demo()).await?;
        let dir = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let base = format!("http://{addr}");
        let mut config =
            exogate::demo::config(dir.path(), None, &addr.to_string(), &base, &emulator.base_url)?;
        // The load test makes far more calls with one token than an agent may: lift the
        // per-token and per-company limits.
        config.token_per_minute = 100_000_000;
        config.company_per_minute = 100_000_000;
        let app = exogate::server::build_app(&config).await?;
        let (_users, token) = exogate::demo::seed(&app).await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(exogate::server::serve(
            app.clone(),
            listener,
            None,
            shutdown.clone(),
        ));
        // A session for the cookie-authenticated run.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let password = exogate::demo::USERS
            .iter()
            .find(|u| u.0 == "tech")
            .map(|u| u.1)
            .context("demo user tech")?;
        let login = http
            .post(format!("{base}/login"))
            .form(&[("user", "tech"), ("password", password)])
            .send()
            .await?;
        let cookie = login
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("exogate_session="))
            .and_then(|v| v.split(';').next())
            .context("session cookie")?
            .to_owned();
        let bearer = format!("Authorization: Bearer {token}");
        let session = format!("Cookie: {cookie}");
        let runs = [
            ("GET /api/v1/companies (session cookie)", "/api/v1/companies", session.as_str()),
            ("GET /api/v1/companies (API token)", "/api/v1/companies", bearer.as_str()),
            ("GET /api/v1/companies/contoso (API token)", "/api/v1/companies/contoso", bearer.as_str()),
            (
                "GET …/mailboxes/sales/full-access (API token; emulator round trip + audit write)",
                "/api/v1/companies/contoso/mailboxes/sales/full-access",
                bearer.as_str(),
            ),
        ];
        println!("web_load: exogate on SQLite, zero-latency emulator, wrk -t2 -c32, {secs} s per endpoint");
        for (name, path, header) in runs {
            // Warm up and check the endpoint answers 200.
            let (k, v) = header.split_once(": ").context("header")?;
            let r = http.get(format!("{base}{path}")).header(k, v).send().await?;
            if !r.status().is_success() {
                bail!("{path} answered {}", r.status());
            }
            let url = format!("{base}{path}");
            let header = header.to_owned();
            let f = tokio::task::spawn_blocking(move || wrk(&url, &header, secs, 32)).await??;
            let verdict = if f.rps >= 2000.0 && f.p99_ms < 50.0 { "meets" } else { "below" };
            println!(
                "{name}: {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} requests, {} non-2xx ({verdict} target ≥ 2000 req/s, p99 < 50 ms)",
                f.rps, f.p50_ms, f.p99_ms, f.requests, f.non_2xx
            );
            if f.non_2xx > 0 {
                bail!("{path}: {} non-2xx answers", f.non_2xx);
            }
        }
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), server).await???;
        emulator.shutdown().await?;
        anyhow::Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_wrk_output() {
        let out = "Running 3s test @ http://127.0.0.1:1/x\n  2 threads and 32 connections\n  Latency Distribution\n     50%    1.20ms\n     75%    2.00ms\n     90%    3.00ms\n     99%  850.00us\n  12345 requests in 3.00s, 1.00MB read\nRequests/sec:   4115.00\nTransfer/sec:      1.00MB\n";
        let f = super::parse_wrk(out).unwrap();
        assert_eq!(f.requests, 12345);
        assert!((f.p99_ms - 0.85).abs() < 1e-9);
        assert!((f.rps - 4115.0).abs() < 1e-9);
    }
}
