//! `login_flood` benchmark: the memory a flood of failed sign-ins costs the server. Starts the
//! built `exogate demo` (its own process, SQLite, the emulator inside it, default `[login]`
//! settings) on 127.0.0.1, reads its `VmRSS` from `/proc/<pid>/status`, fires rounds of 128
//! concurrent failed logins, and prints the server's RSS before, its peak (`VmHWM`, which also
//! covers start-up, so the growth printed is an upper bound) and after, and the growth.
//!
//! Each round is the worst case for memory: 128 client addresses never seen before
//! (127.0.R.1–128) at 128 user names that do not exist, so no lock-out stops any of them and
//! every one runs argon2. A last round sends 128 at once from one address at one user name, to
//! show the limiter answering most of them 429 without checking a password.
//!
//! Fails (non-zero exit) when the growth is 100 MB or more.
//!
//! `--smoke`: one round. `--full` (default): five rounds. Other arguments are ignored.

use std::io::BufRead as _;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const CONCURRENT: u8 = 128;
const LIMIT_BYTES: u64 = 100 * 1000 * 1000;

/// The server's memory figures, in bytes.
fn memory(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} in /proc/{pid}/status"))?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("a number")?
            .parse()?;
        Ok(kib * 1024)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The demo server, stopped when dropped.
struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `exogate demo` and returns it with its address (read from its JSON on stdout).
fn start_server() -> anyhow::Result<(Server, SocketAddr)> {
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_exogate"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--json", "demo", "--listen", "127.0.0.1:0"])
        .env("EXOGATE_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting exogate demo")?;
    let stdout = child.stdout.take().context("stdout")?;
    let server = Server { child, _dir: dir };
    // The demo prints one pretty-printed JSON object once it serves.
    let mut text = String::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line?;
        let done = line == "}";
        text.push_str(&line);
        text.push('\n');
        if done {
            break;
        }
    }
    let info: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("demo output: {text}"))?;
    let url = info["web_url"].as_str().context("web_url")?;
    let addr = url
        .trim_start_matches("http://")
        .parse()
        .with_context(|| format!("web_url {url}"))?;
    Ok((server, addr))
}

/// One `POST /login` over a fresh connection from `from`; the answer's status code.
async fn login(server: SocketAddr, from: Ipv4Addr, user: &str) -> anyhow::Result<u16> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::V4(SocketAddrV4::new(from, 0)))?;
    let mut stream = socket.connect(server).await?;
    let body = format!("user={user}&password=not-the-password");
    let request = format!(
        "POST /login HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let head = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    head.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("status line: {head}"))
}

/// Fires `CONCURRENT` logins at once: `(from, user)` for each index. Returns (401s, 429s).
async fn burst(
    server: SocketAddr,
    each: impl Fn(u8) -> (Ipv4Addr, String),
) -> anyhow::Result<(usize, usize)> {
    let tasks: Vec<_> = (0..CONCURRENT)
        .map(|i| {
            let (from, user) = each(i);
            tokio::spawn(async move { login(server, from, &user).await })
        })
        .collect();
    let (mut unauthorized, mut refused) = (0, 0);
    for t in tasks {
        match t.await?? {
            401 => unauthorized += 1,
            429 => refused += 1,
            other => bail!("a failed login answered {other}"),
        }
    }
    Ok((unauthorized, refused))
}

fn main() -> anyhow::Result<()> {
    let full = !std::env::args().any(|a| a == "--smoke");
    let rounds: u8 = if full { 5 } else { 1 };
    let (server, addr) = start_server()?;
    let pid = server.child.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (before, hwm_start) = memory(pid)?;
    println!(
        "login_flood: exogate demo (pid {pid}, default [login]), {rounds} round(s) of {CONCURRENT} concurrent failed logins from {CONCURRENT} new addresses at unknown user names"
    );
    println!(
        "RSS before: {:.1} MB (peak during start-up {:.1} MB)",
        mb(before),
        mb(hwm_start)
    );
    let started = Instant::now();
    for round in 1..=rounds {
        let t = Instant::now();
        let (unauthorized, refused) = rt.block_on(burst(addr, |i| {
            (
                Ipv4Addr::new(127, round, 1 + i / 200, 1 + i % 200),
                format!("flood-{round}-{i}"),
            )
        }))?;
        let (rss, hwm) = memory(pid)?;
        println!(
            "round {round}: {unauthorized} × 401, {refused} × 429 in {:.2} s; RSS {:.1} MB, peak {:.1} MB",
            t.elapsed().as_secs_f64(),
            mb(rss),
            mb(hwm)
        );
    }
    let elapsed = started.elapsed();
    // One address, one user name, 128 at once: the limiter lets the free attempts through.
    let (unauthorized, refused) = rt.block_on(burst(addr, |_| {
        (Ipv4Addr::new(127, 0, 0, 1), "admin".to_owned())
    }))?;
    println!(
        "one address at one user name: {unauthorized} × 401 (password checked), {refused} × 429 (refused unchecked)"
    );
    let (after, peak) = memory(pid)?;
    let growth = peak.saturating_sub(before);
    println!(
        "RSS before {:.1} MB, peak {:.1} MB, after {:.1} MB; growth {:.1} MB at the peak, {:.1} MB after ({} failed logins in {:.1} s; limit 100 MB)",
        mb(before),
        mb(peak),
        mb(after),
        mb(growth),
        mb(after.saturating_sub(before)),
        usize::from(rounds) * usize::from(CONCURRENT),
        elapsed.as_secs_f64()
    );
    if unauthorized > 20 {
        bail!(
            "{unauthorized} attempts from one address were checked; the limiter let too many through"
        );
    }
    if growth >= LIMIT_BYTES {
        bail!(
            "RSS grew by {:.1} MB under the flood (limit 100 MB)",
            mb(growth)
        );
    }
    Ok(())
}
