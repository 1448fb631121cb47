//! A technician's everyday jobs, one test each, through the BUILT `exogate` binary against the
//! demo world (`TestApp`, as in `cli.rs`): see the companies and their fixes, see every right on
//! a mailbox, check a company, find what a user opens (with CSV), read the audit log with its
//! filters, verify the audit log. Each asserts what the technician relies on: the printed lines
//! and the exit code.

use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::ops::requests::WriteInput;
use exogate_core::tools::ToolName;
use serde_json::Value;

use crate::support::TestApp;

/// One run of the binary: its exit code and what it printed.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
    /// The lines of stdout after the header, split on runs of two or more spaces (the table's
    /// column gap).
    fn rows(&self) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .skip(1)
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }
    fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{self:?}");
        self
    }
    /// Failed with exit status 1 and `error [CODE]: …` on stderr; the message.
    fn failed_with(&self, code: &str) -> String {
        assert_eq!(self.code, Some(1), "{self:?}");
        let prefix = format!("error [{code}]: ");
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {self:?}"));
        line[prefix.len()..].to_owned()
    }
}

/// Runs the built binary on the app's data directory, in UTC (so local times are stable).
async fn run(t: &TestApp, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
        .arg("--data-dir")
        .arg(t.data_dir())
        .args(args)
        .env("EXOGATE_LOG", "warn")
        .env("TZ", "UTC")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("exogate binary runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A time cell of a table: relative, then the local time to the second, never milliseconds.
fn assert_human_time(cell: &str) {
    let (relative, absolute) = cell
        .split_once(" (")
        .unwrap_or_else(|| panic!("not `relative (absolute)`: {cell}"));
    assert!(
        relative == "just now" || relative.ends_with(" ago") || relative.starts_with("in "),
        "{cell}"
    );
    // "2026-12-03 20:56:00 +00:00)"
    assert_eq!(
        absolute.len(),
        "2026-12-03 20:56:00 +00:00)".len(),
        "{cell}"
    );
    assert!(absolute.ends_with(" +00:00)"), "{cell}");
    assert!(
        !cell.contains('Z') && !cell.contains('T'),
        "raw RFC 3339 in {cell}"
    );
}

#[tokio::test]
async fn job_see_the_companies_and_their_fixes() {
    let t = TestApp::start().await;
    let list = run(&t, &["company", "list", "--as", "tech"]).await;
    list.ok();
    let header = list.stdout.lines().next().unwrap();
    for col in ["ID", "NAME", "TENANT", "EXCHANGE ADMIN", "CHECKED", "FIX"] {
        assert!(header.contains(col), "{header}");
    }
    let rows = list.rows();
    let row = |id: &str| {
        rows.iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("no {id} in {}", list.stdout))
            .clone()
    };
    // Configured: nothing to fix, so the row ends at the time it was checked.
    let contoso = row("contoso");
    assert_eq!(contoso[3], "Exchange Admin", "{contoso:?}");
    assert_eq!(contoso.len(), 5, "{contoso:?}");
    assert_human_time(&contoso[4]);
    // Each other state names the complete command that moves it on.
    for (id, badge, fix) in [
        ("fabrikam", "Role missing", "exogate company check fabrikam"),
        (
            "northwind",
            "Not configured",
            "exogate company authorize-url northwind",
        ),
        (
            "tailspin",
            "Tenant ID not found",
            "exogate company connect-url tailspin",
        ),
    ] {
        let r = row(id);
        assert_eq!(r[3], badge, "{r:?}");
        assert_human_time(&r[4]);
        assert_eq!(r[5], fix, "{r:?}");
    }
    // The same as JSON, with the exact time in both forms.
    let json = run(&t, &["--json", "company", "list", "--as", "tech"]).await;
    json.ok();
    let fabrikam = json
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "fabrikam")
        .cloned()
        .unwrap();
    let checked = fabrikam["status"]["checked_at"].as_str().unwrap();
    let ms = fabrikam["status"]["checked_at_ms"].as_i64().unwrap();
    assert_eq!(
        checked,
        exogate_core::Timestamp::from_unix_millis(ms).to_string()
    );
    t.stop().await;
}

#[tokio::test]
async fn job_see_every_right_on_a_mailbox() {
    let t = TestApp::start().await;
    // Full Access, Send As and Send on Behalf of `sales`, one command each, by alias.
    let full = run(
        &t,
        &[
            "mailbox",
            "permissions",
            "sales",
            "--company",
            "contoso",
            "--as",
            "tech",
        ],
    )
    .await;
    full.ok();
    assert!(
        full.stdout
            .starts_with("Sales <sales@contoso.onmicrosoft.com>\n"),
        "{full:?}"
    );
    let rows = Run {
        stdout: full.stdout.lines().skip(1).collect::<Vec<_>>().join("\n"),
        ..full
    }
    .rows();
    assert_eq!(
        rows,
        [[
            "alice@contoso.onmicrosoft.com",
            "Alice Anders",
            "FullAccess"
        ]]
    );

    let send_as = run(
        &t,
        &[
            "mailbox",
            "send-as",
            "sales",
            "--company",
            "Contoso",
            "--as",
            "tech",
        ],
    )
    .await;
    send_as.ok();
    assert!(
        send_as
            .stdout
            .lines()
            .any(|l| l.starts_with("alice@contoso.onmicrosoft.com") && l.ends_with("SendAs")),
        "{send_as:?}"
    );

    let details = run(
        &t,
        &[
            "mailbox",
            "details",
            "sales@contoso.onmicrosoft.com",
            "--company",
            "contoso",
            "--as",
            "tech",
        ],
    )
    .await;
    details.ok();
    assert!(
        details
            .stdout
            .lines()
            .any(|l| l.starts_with("carol@contoso.onmicrosoft.com") && l.ends_with("SendOnBehalf")),
        "{details:?}"
    );
    assert!(
        details
            .stdout
            .contains("RecipientTypeDetails: SharedMailbox"),
        "{details:?}"
    );

    // `support`: a group's Full Access and an orphaned SID's, each labelled.
    let support = run(
        &t,
        &[
            "mailbox",
            "permissions",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ],
    )
    .await;
    support.ok();
    let lines: Vec<&str> = support.stdout.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("salesteam@contoso.onmicrosoft.com") && l.contains("Sales Team")),
        "{support:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("S-1-5-21-") && l.contains("(orphaned SID)")),
        "{support:?}"
    );
    let bob = run(
        &t,
        &[
            "mailbox",
            "send-as",
            "support",
            "--company",
            "contoso",
            "--as",
            "tech",
        ],
    )
    .await;
    bob.ok();
    assert!(
        bob.stdout
            .lines()
            .any(|l| l.starts_with("bob@contoso.onmicrosoft.com") && l.ends_with("SendAs")),
        "{bob:?}"
    );

    // A typo is an error with its code and a non-zero exit, never an empty table.
    let typo = run(
        &t,
        &[
            "mailbox",
            "permissions",
            "suport",
            "--company",
            "contoso",
            "--as",
            "tech",
        ],
    )
    .await;
    typo.failed_with("mailbox_not_found");
    assert!(typo.stdout.is_empty(), "{typo:?}");
    // Another company's mailbox is not found in this one.
    let elsewhere = run(
        &t,
        &[
            "mailbox",
            "permissions",
            "sales@contoso.onmicrosoft.com",
            "--company",
            "fabrikam",
            "--as",
            "tech",
        ],
    )
    .await;
    assert_eq!(elsewhere.code, Some(1), "{elsewhere:?}");
    assert!(!elsewhere.stdout.contains("Alice"), "{elsewhere:?}");
    t.stop().await;
}

#[tokio::test]
async fn job_check_a_company() {
    let t = TestApp::start().await;
    let contoso = run(&t, &["company", "check", "contoso", "--as", "tech"]).await;
    contoso.ok();
    let first = contoso.stdout.lines().next().unwrap();
    assert!(
        first.starts_with("contoso") && first.contains("Exchange Admin"),
        "{contoso:?}"
    );
    assert!(!contoso.stdout.contains("fix:"), "{contoso:?}");

    // By name; the role is missing: what to do, and the command to run after.
    let fabrikam = run(&t, &["company", "check", "Fabrikam", "--as", "tech"]).await;
    fabrikam.ok();
    assert!(fabrikam.stdout.contains("Role missing"), "{fabrikam:?}");
    let fix = fabrikam
        .stdout
        .lines()
        .find(|l| l.starts_with("fix: "))
        .unwrap_or_else(|| panic!("{fabrikam:?}"));
    assert!(fix.contains("Exchange Administrator"), "{fix}");
    assert!(
        fabrikam
            .stdout
            .lines()
            .any(|l| l == "next: exogate company check fabrikam"),
        "{fabrikam:?}"
    );
    let json = run(
        &t,
        &["--json", "company", "check", "fabrikam", "--as", "tech"],
    )
    .await;
    json.ok();
    assert_eq!(json.json()["status"]["state"], "role_missing", "{json:?}");

    // A company that does not exist: its code and a non-zero exit.
    let missing = run(&t, &["company", "check", "nosuchco", "--as", "tech"]).await;
    missing.failed_with("company_not_found");
    t.stop().await;
}

#[tokio::test]
async fn job_find_what_a_user_opens_with_csv() {
    let t = TestApp::start().await;
    run(
        &t,
        &["inventory", "sync", "--company", "contoso", "--as", "tech"],
    )
    .await
    .ok();
    let csv = run(
        &t,
        &[
            "inventory",
            "user",
            "carol@contoso.onmicrosoft.com",
            "--csv",
            "--as",
            "tech",
        ],
    )
    .await;
    csv.ok();
    let mut lines = csv.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let contoso: Vec<Vec<&str>> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|r| r[col("company")] == "contoso")
        .collect();
    let mut opens: Vec<(&str, &str, &str)> = contoso
        .iter()
        .map(|r| {
            (
                r[col("mailbox_address")],
                r[col("right")],
                r[col("trustee_class")],
            )
        })
        .collect();
    opens.sort_unstable();
    // Her own Send on Behalf, and Full Access through the Sales Team group.
    assert_eq!(
        opens,
        [
            ("sales@contoso.onmicrosoft.com", "send_on_behalf", "user"),
            ("support@contoso.onmicrosoft.com", "full_access", "group"),
        ],
        "{csv:?}"
    );
    for r in &contoso {
        assert_eq!(r[col("freshness")], "fresh");
        assert!(r[col("as_of")].ends_with('Z'), "exact time in CSV: {r:?}");
    }
    // Companies never swept say so, rather than listing nothing.
    assert!(
        csv.stdout
            .lines()
            .any(|l| l.starts_with("fabrikam,,never,")),
        "{csv:?}"
    );
    // The table form by alias gives the same mailboxes.
    let text = run(&t, &["inventory", "user", "carol", "--as", "tech"]).await;
    text.ok();
    let heading = text
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("contoso (Contoso), as of "))
        .unwrap_or_else(|| panic!("{text:?}"));
    assert_human_time(heading);
    for mailbox in [
        "sales@contoso.onmicrosoft.com",
        "support@contoso.onmicrosoft.com",
    ] {
        assert!(text.stdout.contains(mailbox), "{text:?}");
    }
    assert!(text.stdout.contains("unknown: not swept yet"), "{text:?}");
    t.stop().await;
}

/// A pending Send As request for carol on `support`, asked by tech through the core.
async fn pending_request(t: &TestApp) -> RequestId {
    let tech = t.actor("tech").await;
    ops::requests::request_write(
        t.app.ctx(),
        &tech,
        WriteInput {
            id: RequestId::from_uuid(uuid::Uuid::now_v7()),
            company: CompanyId::parse("contoso").unwrap(),
            tool: ToolName::GrantSendAs,
            mailbox: IdentityInput::parse("support@contoso.onmicrosoft.com").unwrap(),
            trustee: IdentityInput::parse("carol@contoso.onmicrosoft.com").unwrap(),
            automapping: None,
        },
    )
    .await
    .expect("request")
    .id
}

#[tokio::test]
async fn job_read_the_audit_log_with_filters() {
    let t = TestApp::start().await;
    let id = pending_request(&t).await.to_string();
    // Deciding is a person's act: the manager's password, on stdin here.
    let approved = t
        .cli_with_stdin(
            &[
                "approvals",
                "approve",
                &id,
                "--reason",
                "ticket 4711",
                "--as",
                "manager",
                "--yes",
                "--password-stdin",
            ],
            &format!("{}\n", t.password("manager")),
        )
        .await;
    assert!(approved.success, "{approved:?}");

    // By kind: the one approval, its summary naming the request, the action and the reason.
    let approved = run(
        &t,
        &[
            "audit",
            "list",
            "--company",
            "contoso",
            "--kind",
            "request.approved",
            "--as",
            "tech",
        ],
    )
    .await;
    approved.ok();
    let header = approved.stdout.lines().next().unwrap();
    assert!(header.contains("SUMMARY"), "{header}");
    let rows = approved.rows();
    assert_eq!(rows.len(), 1, "{approved:?}");
    let row = &rows[0];
    assert_eq!(row[2], "request.approved");
    assert_eq!(row[3], "manager (cli)");
    assert_eq!(row[4], "contoso");
    assert_human_time(&row[1]);
    let summary = &row[5];
    assert!(summary.contains(&format!("request {id}")), "{summary}");
    assert!(summary.contains("reason: ticket 4711"), "{summary}");
    assert!(
        summary.contains("support@contoso.onmicrosoft.com"),
        "{summary}"
    );

    // By request: its events only, the asking and the approval among them.
    let by_request = run(
        &t,
        &["--json", "audit", "list", "--request", &id, "--as", "tech"],
    )
    .await;
    by_request.ok();
    let events = by_request.json();
    let events = events.as_array().unwrap();
    assert!(events.iter().all(|e| e["request"] == id), "{events:?}");
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"request.approved"), "{kinds:?}");
    assert!(kinds.len() >= 2, "{kinds:?}");
    // JSON has the exact time both ways.
    for e in events {
        let ms = e["at_ms"].as_i64().unwrap();
        assert_eq!(
            e["at"],
            exogate_core::Timestamp::from_unix_millis(ms).to_string()
        );
    }

    // By actor (any case): only the manager's events.
    let by_actor = run(
        &t,
        &[
            "--json",
            "audit",
            "list",
            "--company",
            "contoso",
            "--actor",
            "Manager",
            "--as",
            "tech",
        ],
    )
    .await;
    by_actor.ok();
    let mine = by_actor.json();
    let mine = mine.as_array().unwrap();
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["actor"] == "manager"), "{mine:?}");

    // By dates: the approval's own day (a bare date) and RFC 3339 bounds around it.
    let at = events
        .iter()
        .find(|e| e["kind"] == "request.approved")
        .unwrap()["at"]
        .as_str()
        .unwrap()
        .to_owned();
    let day = &at[..10];
    let count = |out: &Run| out.json().as_array().unwrap().len();
    let dated = |since: String, until: String| {
        let id = id.clone();
        let t = &t;
        async move {
            let out = run(
                t,
                &[
                    "--json",
                    "audit",
                    "list",
                    "--request",
                    &id,
                    "--kind",
                    "request.approved",
                    "--since",
                    &since,
                    "--until",
                    &until,
                    "--as",
                    "tech",
                ],
            )
            .await;
            out.ok();
            out
        }
    };
    assert_eq!(count(&dated(day.to_owned(), day.to_owned()).await), 1);
    assert_eq!(count(&dated(at.clone(), at.clone()).await), 1);
    let before = exogate_core::Timestamp::from_unix_millis(
        events
            .iter()
            .find(|e| e["kind"] == "request.approved")
            .unwrap()["at_ms"]
            .as_i64()
            .unwrap()
            - 1,
    );
    assert_eq!(
        count(&dated("2000-01-01".to_owned(), before.to_string()).await),
        0
    );
    assert_eq!(
        count(&dated("2999-01-01".to_owned(), "2999-01-02".to_owned()).await),
        0
    );

    // A date that is neither: a clear error, exit 1.
    let bad = run(
        &t,
        &[
            "audit",
            "list",
            "--company",
            "contoso",
            "--since",
            "yesterday",
            "--as",
            "tech",
        ],
    )
    .await;
    let message = bad.failed_with("invalid_input");
    assert!(message.contains("2026-12-03"), "{message}");

    // A technician without --company is told to add it.
    let unscoped = run(&t, &["audit", "list", "--as", "tech"]).await;
    assert_eq!(unscoped.code, Some(1), "{unscoped:?}");
    assert!(unscoped.stderr.contains("add --company"), "{unscoped:?}");
    assert!(unscoped.stdout.is_empty(), "{unscoped:?}");
    // A manager entitled to all companies may read them all.
    run(&t, &["audit", "list", "--as", "manager"]).await.ok();
    t.stop().await;
}

#[tokio::test]
async fn job_verify_the_audit_log() {
    let t = TestApp::start().await;
    pending_request(&t).await;
    let json = run(&t, &["--json", "audit", "verify", "--as", "manager"]).await;
    json.ok();
    let report = json.json();
    assert_eq!(report["intact"], true, "{report}");
    let (events, last_seq) = (
        report["events"].as_i64().unwrap(),
        report["last_seq"].as_i64().unwrap(),
    );
    assert!(events > 0);
    assert_eq!(events, last_seq);
    // The head is the newest event the log lists.
    let newest = run(
        &t,
        &["--json", "audit", "list", "--limit", "1", "--as", "manager"],
    )
    .await;
    newest.ok();
    assert_eq!(newest.json()[0]["seq"], last_seq);
    assert_eq!(newest.json()[0]["hash"], report["last_hash"]);

    let text = run(&t, &["audit", "verify", "--as", "manager"]).await;
    text.ok();
    assert!(
        text.stdout.starts_with(&format!(
            "audit chain intact: {events} events, head {last_seq} "
        )),
        "{text:?}"
    );
    // Verifying is a manager's: a technician is refused with its code.
    run(&t, &["audit", "verify", "--as", "tech"])
        .await
        .failed_with("role_too_low");
    t.stop().await;
}
