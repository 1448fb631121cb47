//! The official TypeScript MCP SDK (`@modelcontextprotocol/sdk` 1.x, installed in `tests/mcp-ts`
//! by `scripts/provision.sh`) against a TestApp over streamable HTTP with the bearer token. That
//! SDK checks `structuredContent` against each tool's output schema and warns about schema
//! formats it does not know: a tool error (unknown company) must reach it as a readable
//! `isError` result, not an exception, and listing and calling tools must print no warning.
//!
//! Without node or the package the test says so and passes, unless
//! `EXOGATE_REQUIRE_ALL_SUITES=1` (CI), where it fails.

use std::path::Path;

use serde_json::Value;

use crate::support::TestApp;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp-ts");

/// Whether node and the installed SDK are there; fails the test when the suite is required.
fn ts_sdk_available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let sdk = Path::new(DIR)
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists();
    if !(node && sdk) {
        let required = std::env::var("EXOGATE_REQUIRE_ALL_SUITES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "node and @modelcontextprotocol/sdk in tests/mcp-ts are required (EXOGATE_REQUIRE_ALL_SUITES=1); run scripts/provision.sh"
        );
        eprintln!("SKIPPED: node or @modelcontextprotocol/sdk (tests/mcp-ts) is not installed");
    }
    node && sdk
}

#[tokio::test]
async fn typescript_sdk_reads_a_tool_error_instead_of_throwing() {
    if !ts_sdk_available() {
        return;
    }
    let t = TestApp::start().await;
    let out = tokio::process::Command::new("node")
        .current_dir(DIR)
        .args(["e2e.mjs", &t.base_url, &t.mcp_token])
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {stderr}"));
    assert_eq!(v["ok"], true, "{v} {stderr}");
    assert!(out.status.success(), "{v} {stderr}");
    assert_eq!(v["tools"], 12, "{v}");
    assert_eq!(v["is_error"], true, "{v}");
    assert_eq!(v["code"], "company_not_found", "{v}");
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with("[company_not_found] unknown company `wingtip`"),
        "{text}"
    );
    assert!(text.contains("contoso"), "{text}");
}
