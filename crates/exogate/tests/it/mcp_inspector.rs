//! The MCP Inspector's CLI mode (npm `@modelcontextprotocol/inspector`, installed in
//! `tests/mcp-inspector` by `scripts/provision.sh`) starts `exogate mcp` itself over stdio, as a
//! desktop host does, and lists the tools and calls a read. A client nobody here wrote.
//!
//! Without node or the package the test says so and passes, unless
//! `EXOGATE_REQUIRE_ALL_SUITES=1` (CI), where it fails.

use std::path::Path;

use serde_json::Value;

use crate::mcp_http::token_for;
use crate::support::TestApp;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp-inspector");

fn inspector_available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let cli = Path::new(DIR)
        .join("node_modules/@modelcontextprotocol/inspector/package.json")
        .exists();
    if !(node && cli) {
        let required = std::env::var("EXOGATE_REQUIRE_ALL_SUITES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "node and @modelcontextprotocol/inspector in tests/mcp-inspector are required (EXOGATE_REQUIRE_ALL_SUITES=1); run scripts/provision.sh"
        );
        eprintln!("SKIPPED: node or @modelcontextprotocol/inspector is not installed");
    }
    node && cli
}

/// The Inspector's CLI starting `exogate mcp` for `t`'s data directory with `token`, with
/// `args` after the server command.
fn inspector(t: &TestApp, token: &str, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("node");
    cmd.current_dir(DIR)
        .arg("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js")
        .arg("--cli")
        .arg("-e")
        .arg(format!("EXOGATE_DATA_DIR={}", t.data_dir().display()))
        .arg("-e")
        .arg(format!("EXOGATE_MCP_TOKEN={token}"))
        .arg("-e")
        .arg("EXOGATE_LOG=warn")
        .arg(env!("CARGO_BIN_EXE_exogate"))
        .arg("mcp")
        .args(args)
        // The Inspector keeps its catalogue in the home directory: give it the test's own.
        .env("HOME", t.data_dir())
        .env(
            "MCP_CATALOG_PATH",
            t.data_dir().join("inspector-catalog.json"),
        )
        .kill_on_drop(true);
    cmd
}

/// Runs [`inspector`]; returns whether it succeeded, its JSON answer and its stderr.
async fn inspect(t: &TestApp, token: &str, args: &[&str]) -> (bool, Value, String) {
    let out = inspector(t, token, args).output().await.expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {stderr}"));
    (out.status.success(), v, stderr)
}

#[tokio::test]
async fn the_mcp_inspector_cli_lists_the_tools_and_reads_over_stdio() {
    if !inspector_available() {
        return;
    }
    let t = TestApp::start().await;
    let token = token_for(&t, "tech").await;

    let (ok, tools, stderr) = inspect(&t, &token, &["--method", "tools/list"]).await;
    assert!(ok, "{tools} {stderr}");
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{tools}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 14, "{names:?}");
    assert!(names.contains(&"view_mailbox_permissions"), "{names:?}");

    let (ok, read, stderr) = inspect(
        &t,
        &token,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "view_mailbox_permissions",
            "--tool-arg",
            "company=Contoso",
            "mailbox=sales@contoso.onmicrosoft.com",
        ],
    )
    .await;
    assert!(ok, "{read} {stderr}");
    assert_ne!(read["isError"], true, "{read}");
    let s = &read["structuredContent"];
    assert_eq!(s["permission"], "full_access", "{read}");
    assert!(
        s["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |e| e["trustee_identity"]["address"] == "alice@contoso.onmicrosoft.com"
                    || e["trustee"].as_str().is_some_and(|t| t.contains("alice"))
            ),
        "{read}"
    );

    // A token that is not valid: the server refuses to start the session, and the Inspector
    // reports a failure rather than a result.
    let out = inspector(&t, "not-a-token", &["--method", "tools/list"])
        .output()
        .await
        .expect("node runs");
    assert!(!out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("view_mailbox_permissions"),
        "{out:?}"
    );
    t.stop().await;
}
