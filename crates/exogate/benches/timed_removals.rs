//! `timed_removals` benchmark (timed-grants): N timed grants across T tenants, all ending in
//! the same second, removed by W workers while the emulator injects 5xx answers and 429s
//! (a per-tenant concurrency cap C and a rate limit). Each grant goes the whole way: asked
//! (`request_timed_write`), approved by a manager, executed and verified, its removal scheduled;
//! then the clock jumps to the end and the workers run the removals under the normal lease,
//! compare-and-set and retry machinery. Prints the verified removals (must be N), the lost ones
//! (removals not done, or rights the emulator still holds: must be 0), the elapsed time, the
//! 429s and 5xx the emulator sent, and the most calls in flight per tenant the emulator saw
//! against its cap.
//!
//! `--smoke`: 40 grants in 2 tenants. `--full` (default): 200 grants in 5 tenants, C = 4,
//! 10% 5xx.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use exogate::microsoft::ExchangeAdapter;
use exogate_core::model::{
    Actor, Channel, CompanyId, Entitlement, IdentityInput, RequestId, Role, TenantId, Timestamp,
    UserId, UserName,
};
use exogate_core::ops::{self, Ctx, Settings};
use exogate_core::ports::{Clock, Microsoft, Store};
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;
use exogate_exchange::{AppConfig, ClientConfig, Endpoints, M365Client};
use exogate_store::Db;
use m365_emulator::Scenario;
use m365_emulator::exchange::directory::Kind;
use m365_emulator::scenario::{DEMO_EXCHANGE_APP, DEMO_EXCHANGE_SECRET};
use uuid::Uuid;

/// The wall clock plus an offset the benchmark moves (to jump to the end).
struct Jump(AtomicI64);
impl Clock for Jump {
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc())
            .plus_millis(self.0.load(Ordering::SeqCst))
    }
}

fn tenant_id(i: usize) -> Uuid {
    Uuid::from_u128(0x7000_0000_0000_4000_8000_0000_0000_0000 + i as u128)
}

fn domain(i: usize) -> String {
    format!("timed{i}.onmicrosoft.com")
}

const MAILBOXES: usize = 800;

fn scenario(n: usize) -> Scenario {
    let mut s = Scenario::demo();
    let template = s.tenants[0].clone();
    s.tenants = (0..n)
        .map(|i| {
            let mut t = template.clone();
            t.id = tenant_id(i);
            t.display_name = format!("Timed {i}");
            t.domains = vec![domain(i)];
            t.directory = serde_json::to_value(m365_emulator::exchange::generated_directory_seed(
                &domain(i),
                MAILBOXES,
                i as u64 + 11,
            ))
            .ok();
            t
        })
        .collect();
    s
}

/// Object ids of user mailboxes of tenant `i` that hold no seeded rights and are not deleted.
fn users(i: usize) -> Vec<String> {
    let seed =
        m365_emulator::exchange::generated_directory_seed(&domain(i), MAILBOXES, i as u64 + 11);
    let busy: std::collections::HashSet<String> = seed
        .grants
        .iter()
        .flat_map(|g| [g.mailbox.clone(), g.trustee.clone()])
        .chain(seed.deleted.iter().cloned())
        .collect();
    seed.objects
        .iter()
        .filter(|o| o.kind == Some(Kind::UserMailbox))
        .filter(|o| !busy.contains(&o.name) && o.alias.as_ref().is_none_or(|a| !busy.contains(a)))
        .filter_map(|o| o.object_id.map(|u| u.to_string()))
        .collect()
}

fn client(base: &str) -> M365Client {
    let mut c = ClientConfig::new(
        Endpoints::single(base).expect("emulator URL"),
        AppConfig::with_secret(DEMO_EXCHANGE_APP, DEMO_EXCHANGE_SECRET),
    );
    c.limits.per_tenant_concurrency = 4;
    c.limits.global_concurrency = 64;
    M365Client::new(c).expect("client")
}

async fn put_knobs(base: &str, knobs: serde_json::Value) {
    let r = reqwest::Client::new()
        .put(format!("{base}/_emulator/knobs"))
        .json(&knobs)
        .send()
        .await
        .expect("knobs");
    assert!(r.status().is_success(), "knobs: {}", r.status());
}

async fn counters(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/_emulator/counters"))
        .await
        .expect("counters")
        .json()
        .await
        .expect("json")
}

async fn reset_counters(base: &str) {
    let _ = reqwest::Client::new()
        .delete(format!("{base}/_emulator/counters"))
        .send()
        .await;
}

async fn user(ctx: Ctx<'_>, name: &str, role: Role) -> Actor {
    let user = ops::users::add_user(
        ctx,
        ops::users::Admin::LocalOperator,
        ops::users::NewUser {
            id: UserId::from_uuid(Uuid::now_v7()),
            name: UserName::parse(name).expect("name"),
            role,
            entitlement: Entitlement::All,
            password_hash: None,
        },
    )
    .await
    .expect("user");
    Actor {
        user,
        channel: Channel::Cli,
    }
}

/// Runs `workers` workers until `done` says all is done (or, with `done` None, until nothing is
/// claimable), or the deadline passes.
async fn drain(
    ctx: Ctx<'_>,
    workers: usize,
    done: Option<&(dyn Fn() -> bool + Sync)>,
    deadline: Instant,
) {
    futures::future::join_all((0..workers).map(|w| {
        let done = &done;
        async move {
            let name = format!("bench-worker-{w}");
            while Instant::now() < deadline && !done.is_some_and(|d| d()) {
                match ops::execute::run_once(ctx, &name).await {
                    Ok(Some(_)) => {}
                    Ok(None) if done.is_none() => return,
                    // Removals waiting for their backoff: look again shortly.
                    Ok(None) | Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }))
    .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (tenants, per_tenant, cap, err_5xx, workers): (usize, usize, u32, f64, usize) = if smoke {
        (2, 20, 2, 0.1, 8)
    } else {
        (5, 40, 4, 0.1, 16)
    };
    let n = tenants * per_tenant;
    println!(
        "timed_removals benchmark ({}): {n} timed grants in {tenants} tenants, all ending in the same second; emulator: cap {cap} in flight per tenant, {:.0}% 5xx, 429s at the cap and a rate limit; {workers} workers",
        if smoke { "smoke" } else { "full" },
        err_5xx * 100.0
    );
    let emu = m365_emulator::start(scenario(tenants))
        .await
        .expect("emulator");
    let dir = tempfile::tempdir().expect("dir");
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ))
    .await
    .expect("db");
    db.migrate().await.expect("migrate");
    let ms = ExchangeAdapter::new(client(&emu.base_url));
    let clock = Jump(AtomicI64::new(0));
    let settings = Settings {
        max_attempts: 8,
        max_pending_per_user: 10_000,
        ..Settings::default()
    };
    let ctx = Ctx::new(&db, &ms, &clock, &settings);
    let admin = user(ctx, "admin", Role::Admin).await;
    let tech = user(ctx, "tech", Role::Technician).await;
    let mgr = user(ctx, "manager", Role::Manager).await;
    for i in 0..tenants {
        let id = CompanyId::parse(&format!("timed{i}")).expect("id");
        ops::companies::add_company(ctx, &admin, id.clone(), &format!("Timed {i}"))
            .await
            .expect("company");
        let input = ops::companies::ConnectInput {
            tenant_id: TenantId::from_uuid(tenant_id(i)),
            display_name: format!("Timed {i}"),
            default_domain: domain(i),
        };
        ops::companies::connect(ctx, &admin, &id, &input)
            .await
            .expect("connect");
        ops::companies::check_status(ctx, Some(&admin), &id)
            .await
            .expect("status");
    }
    // Every grant ends at the same second, a few minutes from now.
    let end = Timestamp::from_unix_secs(clock.now().unix_secs() + 600);
    let until = end.to_string();
    let setup = Instant::now();
    let mut grants: Vec<(usize, RequestId)> = Vec::with_capacity(n);
    for i in 0..tenants {
        let ids = users(i);
        let company = CompanyId::parse(&format!("timed{i}")).expect("id");
        let mut made = 0;
        for pair in ids.chunks(2) {
            if made == per_tenant {
                break;
            }
            let [mailbox, trustee] = pair else { break };
            let input = ops::requests::WriteInput {
                id: RequestId::from_uuid(Uuid::now_v7()),
                company: company.clone(),
                tool: ToolName::GrantFullAccess,
                mailbox: IdentityInput::parse(mailbox).expect("id"),
                trustee: IdentityInput::parse(trustee).expect("id"),
                automapping: Some(false),
            };
            let end_input = ops::requests::EndInput {
                duration: None,
                until: Some(until.clone()),
            };
            let Ok(r) = ops::requests::request_timed_write(ctx, &tech, input, end_input).await
            else {
                continue;
            };
            ops::requests::approve(ctx, &mgr, r.id, None)
                .await
                .expect("approve");
            grants.push((i, r.id));
            made += 1;
        }
        assert_eq!(
            made, per_tenant,
            "tenant {i} has enough free user mailboxes"
        );
    }
    // The grants run (no faults yet): each verified, its removal scheduled.
    drain(
        ctx,
        workers,
        None,
        Instant::now() + Duration::from_secs(600),
    )
    .await;
    let mut removals = Vec::with_capacity(n);
    for (i, g) in &grants {
        let r = db.get_request(*g).await.expect("db").expect("grant");
        assert_eq!(
            r.state,
            RequestState::Succeeded,
            "grant {g}: {:?}",
            r.message
        );
        removals.push((*i, r, ops::timed::removal_id(*g)));
    }
    println!(
        "  setup             {n} grants asked, approved, verified in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // Faults on, counters from zero, then the end comes for all of them at once.
    put_knobs(
        &emu.base_url,
        serde_json::json!({
            "tenant_concurrency_cap": cap, "error_5xx_rate": err_5xx,
            "tenant_rate_per_sec": 20.0, "tenant_rate_burst": 10.0, "retry_after_secs": 0.2,
        }),
    )
    .await;
    reset_counters(&emu.base_url).await;
    let jump = end.unix_millis() - clock.now().unix_millis();
    clock.0.fetch_add(jump, Ordering::SeqCst);
    let started = Instant::now();
    let pending = Arc::new(AtomicI64::new(n as i64));
    let finished = || pending.load(Ordering::SeqCst) <= 0;
    let watch = {
        let pending = pending.clone();
        let ids: Vec<RequestId> = removals.iter().map(|(_, _, id)| *id).collect();
        let db = db.clone();
        tokio::spawn(async move {
            loop {
                let mut left = 0;
                for id in &ids {
                    match db.get_request(*id).await {
                        Ok(Some(r)) if r.state.is_terminal() => {}
                        _ => left += 1,
                    }
                }
                pending.store(left, Ordering::SeqCst);
                if left == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    drain(
        ctx,
        workers,
        Some(&finished),
        Instant::now() + Duration::from_secs(900),
    )
    .await;
    watch.abort();
    let elapsed = started.elapsed();
    let c = counters(&emu.base_url).await;
    let mut verified = 0;
    let mut already = 0;
    let mut lost = 0;
    for (i, grant, rid) in &removals {
        let r = db.get_request(*rid).await.expect("db").expect("removal");
        let a = &grant.actions[0];
        let still = ms
            .current_state(TenantId::from_uuid(tenant_id(*i)), a)
            .await
            .map(|p| p == exogate_core::action::Presence::Present)
            .unwrap_or(true);
        // Verified: the removal finished with its read-back confirming the right is gone, and
        // the emulator agrees. `already_in_state` counts too: the client re-reads after an
        // ambiguous write (a 5xx after Exchange applied it) and finds the right gone.
        let ok = matches!(
            r.state,
            RequestState::Succeeded | RequestState::AlreadyInState
        ) && r.results.iter().all(|x| x.verified)
            && !still;
        if !ok {
            lost += 1;
        } else {
            verified += 1;
            if r.state == RequestState::AlreadyInState {
                already += 1;
            }
        }
    }
    let alerts = db
        .recent_audit(None, None, 100_000)
        .await
        .expect("audit")
        .iter()
        .filter(|e| e.event.kind == "grant.end_failed")
        .count();
    let sum = |k: &str| {
        c[k].as_object().map_or(0, |m| {
            m.values()
                .filter_map(serde_json::Value::as_u64)
                .sum::<u64>()
        })
    };
    println!(
        "  removals          {:.2} s from the end to the last one",
        elapsed.as_secs_f64()
    );
    println!(
        "  verified removals {verified} of {n} ({already} of them already_in_state: the write answered 5xx after Exchange applied it, the re-read found the right gone)"
    );
    let log: serde_json::Value = reqwest::get(format!("{}/_emulator/apply-log", emu.base_url))
        .await
        .expect("apply log")
        .json()
        .await
        .expect("json");
    let entries = log
        .as_array()
        .cloned()
        .or_else(|| log["entries"].as_array().cloned())
        .unwrap_or_default();
    let removed = entries
        .iter()
        .filter(|e| {
            e["cmdlet"]
                .as_str()
                .is_some_and(|c| c.starts_with("Remove-MailboxPermission"))
        })
        .count();
    println!(
        "  apply log         {removed} Remove-MailboxPermission applied (each right removed once)"
    );
    println!("  lost              {lost}");
    println!("  end_failed alerts {alerts}");
    println!(
        "  emulator          {} Exchange calls, {} answered 429, {} answered 5xx",
        sum("exchange_requests"),
        sum("throttled"),
        c["exchange_requests"].as_object().map_or(0, |m| m
            .iter()
            .filter(|(k, _)| k.rsplit('|').next().is_some_and(|s| s.starts_with('5')))
            .filter_map(|(_, v)| v.as_u64())
            .sum::<u64>())
    );
    let max = c["max_in_flight"].as_object().cloned().unwrap_or_default();
    let mut worst = 0;
    for i in 0..tenants {
        let v = max
            .get(&tenant_id(i).to_string())
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        worst = worst.max(v);
        println!("  tenant timed{i}     most calls in flight {v} (cap {cap})");
    }
    println!("  max in flight     {worst} per tenant, cap {cap}");
    assert_eq!(verified, n, "every removal done and verified");
    assert_eq!(removed, n, "each right removed exactly once in effect");
    assert_eq!(lost, 0);
    assert!(worst <= u64::from(cap), "no tenant over its cap");
    emu.shutdown().await.expect("emulator stops");
}
