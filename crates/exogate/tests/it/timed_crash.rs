//! (timed-grants) The built `exogate serve` SIGKILLed while timed grants' scheduled removals
//! run: after a restart every removal is done, and each right was removed exactly once in
//! effect (the emulator's apply log). The grants are asked, approved and verified in-process on
//! a clock set two minutes back with a one-minute duration, so their ends have passed when the
//! server starts on the wall clock: no waiting for an end.

use std::sync::Arc;
use std::time::Duration;

use exogate_core::model::{Actor, Channel, IdentityInput, RequestId, UserName};
use exogate_core::ops;
use exogate_core::ports::{Clock, ManualClock, Store};
use exogate_core::tools::ToolName;
use m365_emulator::Scenario;
use serde_json::{Value, json};

async fn removals_applied(http: &reqwest::Client, emulator: &str) -> usize {
    let log: Value = http
        .get(format!("{emulator}/_emulator/apply-log"))
        .send()
        .await
        .expect("apply log")
        .json()
        .await
        .expect("json");
    log["entries"].as_array().map_or(0, |e| {
        e.iter()
            .filter(|x| {
                x["cmdlet"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("Remove-MailboxPermission"))
            })
            .count()
    })
}

fn serve(dir: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_exogate"))
        .arg("--data-dir")
        .arg(dir)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("exogate serve starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_timed_removals_then_restart_removes_each_right_once() {
    let emulator = m365_emulator::start(Scenario::demo())
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let text = exogate::demo::config_text(
        dir.path(),
        None,
        &format!("127.0.0.1:{port}"),
        &base,
        &emulator.base_url,
    ) + "[worker]\npoll_milliseconds = 50\nlease_seconds = 2\n";
    std::fs::write(dir.path().join("exogate.toml"), &text).expect("config");
    let config = exogate::config::Config::from_toml(&text).expect("config parses");

    // Setup in-process, two minutes in the past: timed grants of one minute, verified.
    let wall = exogate_core::Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let clock = Arc::new(ManualClock::new(wall.plus_secs(-120)));
    let mut removals: Vec<RequestId> = Vec::new();
    {
        let app = exogate::server::build_app_with_clock(&config, clock.clone() as Arc<dyn Clock>)
            .await
            .expect("app");
        exogate::demo::seed(&app).await.expect("seed");
        let ctx = app.ctx();
        let actor = |name: &'static str| async move {
            Actor {
                user: ops::users::find_user(ctx, &UserName::parse(name).unwrap())
                    .await
                    .unwrap(),
                channel: Channel::Cli,
            }
        };
        let (tech, mgr) = (actor("tech").await, actor("manager").await);
        for m in ["sales", "support", "dave"] {
            for t in ["bob", "carol", "alice"] {
                let input = ops::requests::WriteInput {
                    id: RequestId::from_uuid(uuid::Uuid::now_v7()),
                    company: exogate_core::CompanyId::parse("contoso").unwrap(),
                    tool: ToolName::GrantFullAccess,
                    mailbox: IdentityInput::parse(m).unwrap(),
                    trustee: IdentityInput::parse(t).unwrap(),
                    automapping: Some(false),
                };
                let end = ops::requests::EndInput {
                    duration: Some("1m".to_owned()),
                    until: None,
                };
                let Ok(r) = ops::requests::request_timed_write(ctx, &tech, input, end).await else {
                    continue;
                };
                ops::requests::approve(ctx, &mgr, r.id, None)
                    .await
                    .expect("approve");
                let done = ops::execute::run_once(ctx, "setup")
                    .await
                    .expect("run")
                    .expect("claimed");
                // A right the demo already holds gets an end (`already_in_state`) too.
                assert_eq!(done.id, r.id);
                assert!(
                    matches!(done.state.as_str(), "succeeded" | "already_in_state"),
                    "{:?}",
                    done.message
                );
                removals.push(ops::timed::removal_id(r.id));
            }
        }
        app.db.close().await;
    }
    let n = removals.len();
    assert!(n >= 5, "enough timed grants: {n}");
    let http = reqwest::Client::new();
    assert_eq!(removals_applied(&http, &emulator.base_url).await, 0);
    // Exchange takes its time over each removal, so one is in flight at the kill.
    let r = http
        .put(format!("{}/_emulator/knobs", emulator.base_url))
        .json(&json!({"latency_ms": {"Remove-MailboxPermission": 400}}))
        .send()
        .await
        .expect("knobs");
    assert!(r.status().is_success());

    let mut server = serve(dir.path());
    crate::support::until("a first removal applied", Duration::from_secs(60), || {
        let http = http.clone();
        let emu = emulator.base_url.clone();
        async move { removals_applied(&http, &emu).await >= 1 }
    })
    .await;
    server.start_kill().expect("SIGKILL");
    server.wait().await.expect("killed");
    let applied_at_kill = removals_applied(&http, &emulator.base_url).await;
    assert!(
        applied_at_kill < n,
        "killed while removals were still to run ({applied_at_kill} of {n})"
    );

    // Restart: every removal ends, each right removed exactly once in effect.
    let mut server = serve(dir.path());
    let db = exogate_store::Db::connect(&config.database_url)
        .await
        .expect("open");
    crate::support::until("every removal finished", Duration::from_secs(120), || {
        let db = db.clone();
        let removals = removals.clone();
        async move {
            for id in removals {
                match db.get_request(id).await {
                    Ok(Some(r)) if r.state.is_terminal() => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    for id in &removals {
        let r = db.get_request(*id).await.unwrap().unwrap();
        assert!(
            matches!(r.state.as_str(), "succeeded" | "already_in_state"),
            "{id}: {:?} {:?}",
            r.state,
            r.message
        );
        assert!(r.results.iter().all(|x| x.verified), "{id} verified");
    }
    assert_eq!(
        removals_applied(&http, &emulator.base_url).await,
        n,
        "each right removed once"
    );
    server.start_kill().expect("stop");
    server.wait().await.expect("stopped");
    db.close().await;
    emulator.shutdown().await.expect("emulator stops");
}
