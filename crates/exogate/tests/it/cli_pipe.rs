//! (hardening) `exogate … | head`: when the reader of stdout stops after one line, the CLI ends
//! quietly (status 0, nothing on stderr about a panic) instead of panicking on the broken pipe.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};

use exogate_core::audit::{AuditKind, NewAuditEvent};
use serde_json::json;

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_that_closes_after_one_line_ends_the_cli_quietly() {
    let t = TestApp::start().await;
    // Enough audit events that the listing is far larger than a pipe's buffer (64 KiB), so the
    // CLI is still writing when the reader goes away.
    let now = t.app.clock.now();
    for i in 0..400 {
        let ev = NewAuditEvent::system(now, AuditKind::LoginFailed)
            .detail(json!({ "n": i, "pad": "x".repeat(400) }));
        t.app.store.append_audit(ev).await.unwrap();
    }
    for args in [
        &[
            "--json", "audit", "list", "--as", "admin", "--limit", "1000",
        ][..],
        &["audit", "list", "--as", "admin", "--limit", "1000"][..],
    ] {
        let dir = t.data_dir().to_owned();
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let (first, status, stderr) = tokio::task::spawn_blocking(move || {
            let mut child = Command::new(env!("CARGO_BIN_EXE_exogate"))
                .arg("--data-dir")
                .arg(&dir)
                .args(&args)
                .env("EXOGATE_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("exogate runs");
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            out.read_line(&mut first).unwrap();
            // The reader closes after one line, as `head -1` does.
            drop(out);
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            (first, child.wait().unwrap(), stderr)
        })
        .await
        .unwrap();
        assert!(!first.is_empty(), "one line was read");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{stderr}");
        assert!(status.success(), "{status:?}: {stderr}");
    }
    t.stop().await;
}
