//! `docs/DEPLOY.md` stays true: every `toml` block parses through the real configuration loader,
//! and every `exogate …` line of its `sh` blocks runs successfully against a scratch data
//! directory with the guide's main configuration (paths under `/etc/exogate` and
//! `/var/lib/exogate` moved into the scratch directory; the Exchange app's certificate made with
//! the guide's `openssl` command). The systemd unit it names is shipped.

use std::path::Path;

const GUIDE: &str = include_str!("../../../../docs/DEPLOY.md");
const UNIT: &str = include_str!("../../../../deploy/exogate.service");

/// The fenced blocks of `lang`.
fn blocks(lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in GUIDE.lines() {
        match (&mut current, line.trim_start().strip_prefix("```")) {
            (None, Some(l)) if l.trim() == lang => current = Some(String::new()),
            (Some(_), Some("")) => out.push(current.take().unwrap_or_default()),
            (Some(b), None) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn localise(text: &str, dir: &Path) -> String {
    text.replace("/etc/exogate", &dir.join("etc").display().to_string())
        .replace("/var/lib/exogate", &dir.join("data").display().to_string())
}

fn certificate(dir: &Path, name: &str) {
    let out = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:3072",
            "-nodes",
            "-days",
            "730",
            "-subj",
            "/CN=exogate-exchange",
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_config_block_and_command_of_the_deploy_guide_works() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    certificate(&dir.join("etc"), "exchange-app");
    certificate(&dir.join("etc"), "exchange-app-2027");

    let tomls = blocks("toml");
    assert!(tomls.len() >= 3, "the guide has its configuration blocks");
    for (i, block) in tomls.iter().enumerate() {
        let text = localise(block, dir);
        if let Err(e) = exogate::config::Config::from_toml(&text) {
            panic!("DEPLOY.md toml block {i} does not load: {e}\n{text}");
        }
    }
    let main = exogate::config::Config::from_toml(&localise(&tomls[0], dir)).unwrap();
    assert!(main.signin.microsoft.is_some() && main.secure_cookies);
    assert_eq!(main.public_url.as_str(), "https://exogate.msp.example/");
    let config = dir.join("etc/exogate.toml");
    std::fs::write(&config, localise(&tomls[0], dir)).unwrap();

    let mut ran = 0;
    for block in blocks("sh") {
        for line in block
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("exogate "))
        {
            let args: Vec<&str> = line.split_whitespace().skip(1).collect();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
                .args(&args)
                .env("EXOGATE_CONFIG", &config)
                .env("EXOGATE_LOG", "warn")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write as _;
                    if let Some(mut input) = child.stdin.take() {
                        let _ = input.write_all(b"a-long-random-break-glass-password-1\n");
                    }
                    child.wait_with_output()
                })
                .expect("exogate runs");
            assert!(
                out.status.success(),
                "`{line}` failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 6, "the guide's commands ran ({ran})");
    assert!(dir.join("data/exogate.db").exists() && dir.join("data/audit-checkpoint.key").exists());

    // The unit the guide installs runs the commands the guide names.
    assert!(UNIT.contains("ExecStart=/usr/local/bin/exogate serve"));
    assert!(UNIT.contains("ExecStartPre=/usr/local/bin/exogate migrate"));
    assert!(UNIT.contains("EXOGATE_CONFIG=/etc/exogate/exogate.toml"));
    assert!(GUIDE.contains("deploy/exogate.service"));
}
