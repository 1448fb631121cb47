//! (reviews) `reviews` benchmark: an access review over C companies × M mailboxes of generated
//! inventory (each mailbox: one Full Access and one Send As grant), exogate on SQLite with the
//! demo world and the real router on 127.0.0.1. Prints:
//! - the time to generate the inventory and to start the campaign (`POST /api/v1/reviews`,
//!   copying every row into items);
//! - opening a company's review page (`GET /reviews/{id}?company=…`, a signed-in manager;
//!   paginated, 200 items a page) and the reviewer link's page, p50/p99;
//! - deciding in bulk (a tenth of the items marked remove, per trustee);
//! - closing the campaign (`POST /api/v1/reviews/{id}/close`: one request per company).
//!
//! `--smoke`: 2 × 200. `--full` (default): 20 × 2,000. Targets: page p50 < 200 ms, close < 10 s.
//! `--pg`: on PostgreSQL instead, in a fresh database made from `EXOGATE_TEST_PG_URL` and
//! dropped at the end (`scripts/bench.sh` runs both backends).

use std::time::{Duration, Instant};

use anyhow::Context;
use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{InventoryRow, InventoryTrustee, SweepBegin, SweepLease};
use exogate_core::ops;
use exogate_core::*;
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection};
use uuid::Uuid;

const STAFF: usize = 50;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn company(i: usize) -> CompanyId {
    CompanyId::parse(&format!("rv-{i:03}")).unwrap()
}

fn tenant(i: usize) -> TenantId {
    TenantId::from_uuid(Uuid::from_u128(
        0x7100_0000_0000_4000_8000_0000_0000_0000 + i as u128,
    ))
}

fn ident(id: String, address: String, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: id,
        display_name: address.clone(),
        primary_address: address,
        kind,
    }
}

fn rows(c: usize, mailboxes: usize) -> Vec<InventoryRow> {
    let cid = company(c);
    let domain = format!("rv{c}.onmicrosoft.com");
    let mut out = Vec::with_capacity(mailboxes * 2);
    for m in 0..mailboxes {
        let mailbox = ident(
            format!("{c:08x}-0000-4000-8000-{m:012x}"),
            format!("mbx{m}@{domain}"),
            RecipientKind::SharedMailbox,
        );
        for (k, right) in [(0, Permission::FullAccess), (1, Permission::SendAs)] {
            let s = (m + k * 7) % STAFF;
            out.push(InventoryRow {
                company: cid.clone(),
                mailbox: mailbox.clone(),
                trustee: InventoryTrustee::resolved(ident(
                    format!("{c:08x}-1111-4000-8000-{s:012x}"),
                    format!("staff{s}@{domain}"),
                    RecipientKind::UserMailbox,
                )),
                right,
            });
        }
    }
    out
}

async fn seed_company(app: &exogate::app::App, admin: &Actor, c: usize, mailboxes: usize) {
    let cid = company(c);
    let ctx = app.ctx();
    ops::companies::add_company(ctx, admin, cid.clone(), &format!("Review Co {c}"))
        .await
        .unwrap();
    let input = ops::companies::ConnectInput {
        tenant_id: tenant(c),
        display_name: format!("Review Co {c}"),
        default_domain: format!("rv{c}.onmicrosoft.com"),
    };
    ops::companies::connect(ctx, admin, &cid, &input)
        .await
        .unwrap();
    let now = app.clock.now();
    let owner = format!("bench-{c}");
    let lease = SweepLease {
        owner: owner.clone(),
        until: now.plus_secs(3_600),
    };
    let store = app.store.as_ref();
    let started = NewAuditEvent::system(now, AuditKind::InventorySweepStarted).company(&cid);
    let generation = match store
        .inventory_begin_sweep(&cid, tenant(c), now, &lease, started)
        .await
        .unwrap()
    {
        SweepBegin::Started(s) => s.generation,
        busy => panic!("{cid}: {busy:?}"),
    };
    for chunk in rows(c, mailboxes).chunks(2_000) {
        assert!(
            store
                .inventory_write_chunk(&cid, generation, &owner, chunk, &[])
                .await
                .unwrap()
        );
    }
    let done = NewAuditEvent::system(now, AuditKind::InventorySweepFinished).company(&cid);
    assert!(
        store
            .inventory_finish_sweep(&cid, generation, &owner, now, mailboxes as u64, done)
            .await
            .unwrap()
    );
}

fn main() -> anyhow::Result<()> {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let pg = std::env::args().any(|a| a == "--pg");
    let (mut companies, mut mailboxes, opens) = if smoke { (2, 200, 10) } else { (20, 2_000, 60) };
    // `--size CxM` for other sizes.
    if let Some(size) = std::env::args().skip_while(|a| a != "--size").nth(1)
        && let Some((c, m)) = size.split_once('x')
    {
        companies = c.parse()?;
        mailboxes = m.parse()?;
    }
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
        // `--pg`: (the server's URL for the fresh database, its name, the admin URL).
        let pg_db = if pg {
            let admin_url = std::env::var("EXOGATE_TEST_PG_URL")
                .context("--pg needs EXOGATE_TEST_PG_URL")?;
            let name = format!("bench_reviews_{}", Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
            sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await?;
            let root = admin_url
                .rsplit_once('/')
                .map_or(admin_url.as_str(), |(b, _)| b);
            Some((format!("{root}/{name}"), name, admin_url))
        } else {
            None
        };
        println!(
            "reviews: backend {}",
            if pg_db.is_some() { "postgres" } else { "sqlite" }
        );
        let config = exogate::demo::config(
            dir.path(),
            pg_db.as_ref().map(|p| p.0.as_str()),
            &addr.to_string(),
            &base,
            &emulator.base_url,
        )?;
        let app = exogate::server::build_app(&config).await?;
        exogate::demo::seed(&app).await?;
        let shutdown = tokio_util::sync::CancellationToken::new();
        let server = tokio::spawn(exogate::server::serve(
            app.clone(),
            listener,
            None,
            shutdown.clone(),
        ));
        let admin = Actor {
            user: ops::users::find_user(app.ctx(), &UserName::parse("admin")?).await?,
            channel: Channel::Cli,
        };
        let t = Instant::now();
        for c in 0..companies {
            seed_company(&app, &admin, c, mailboxes).await;
        }
        println!(
            "reviews: generated {companies} companies × {mailboxes} mailboxes ({} rows) in {:.1} s",
            companies * mailboxes * 2,
            t.elapsed().as_secs_f64()
        );

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let password = exogate::demo::USERS
            .iter()
            .find(|u| u.0 == "admin")
            .map(|u| u.1)
            .context("demo admin")?;
        let login = http
            .post(format!("{base}/login"))
            .form(&[("user", "admin"), ("password", password)])
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
        let page = http
            .get(format!("{base}/companies"))
            .header("cookie", &cookie)
            .send()
            .await?
            .text()
            .await?;
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("csrf")?
            .to_owned();
        let post = |path: String, body: Value| {
            let (http, cookie, csrf, base) = (http.clone(), cookie.clone(), csrf.clone(), base.clone());
            async move {
                let r = http
                    .post(format!("{base}{path}"))
                    .header("cookie", cookie)
                    .header("x-csrf-token", csrf)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let s = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                assert!(s.is_success(), "{path}: {s} {v}");
                v
            }
        };

        let all: Vec<String> = (0..companies).map(|c| company(c).to_string()).collect();
        let t = Instant::now();
        let campaign = post(
            "/api/v1/reviews".into(),
            json!({"name": "Bench review", "companies": all, "due_in": "14d"}),
        )
        .await;
        let start_took = t.elapsed();
        let id = campaign["id"].as_str().context("id")?.to_owned();
        let items: u64 = campaign["companies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["items"].as_u64().unwrap())
            .sum();
        println!(
            "reviews: started the campaign ({items} items) in {:.2} s",
            start_took.as_secs_f64()
        );

        let mut times = Vec::with_capacity(opens);
        for i in 0..opens {
            let c = company(i % companies);
            let t = Instant::now();
            let r = http
                .get(format!("{base}/reviews/{id}?company={c}"))
                .header("cookie", &cookie)
                .send()
                .await?;
            assert!(r.status().is_success(), "{}", r.status());
            let body = r.text().await?;
            times.push(t.elapsed());
            assert!(body.contains("id=\"review-items\""));
        }
        let (p50, p99) = (pct(&mut times, 0.5), pct(&mut times, 0.99));
        println!(
            "reviews: review page (200 items of {} per company) p50 {:.1} ms, p99 {:.1} ms over {opens} opens (target p50 < 200 ms)",
            mailboxes * 2,
            ms(p50),
            ms(p99)
        );

        let link = post(
            format!("/api/v1/reviews/{id}/links"),
            json!({"company": company(0).to_string(), "label": "owner"}),
        )
        .await;
        let url = link["url"].as_str().context("url")?.to_owned();
        let mut times = Vec::with_capacity(opens);
        for _ in 0..opens {
            let t = Instant::now();
            let r = http.get(&url).send().await?;
            assert!(r.status().is_success());
            r.bytes().await?;
            times.push(t.elapsed());
        }
        println!(
            "reviews: reviewer link page p50 {:.1} ms, p99 {:.1} ms",
            ms(pct(&mut times, 0.5)),
            ms(pct(&mut times, 0.99))
        );

        let t = Instant::now();
        let mut decided = 0;
        for c in 0..companies {
            let domain = format!("rv{c}.onmicrosoft.com");
            for s in 0..STAFF / 10 {
                let v = post(
                    format!("/api/v1/reviews/{id}/decisions"),
                    json!({"company": company(c).to_string(), "trustee": format!("staff{s}@{domain}"), "decision": "remove", "reason": "bench"}),
                )
                .await;
                decided += v["decided"].as_u64().unwrap();
            }
            let v = post(
                format!("/api/v1/reviews/{id}/decisions"),
                json!({"company": company(c).to_string(), "trustee": format!("staff{}@{domain}", STAFF - 1), "decision": "keep"}),
            )
            .await;
            decided += v["decided"].as_u64().unwrap();
        }
        println!(
            "reviews: {decided} items decided in bulk (per trustee) in {:.2} s",
            t.elapsed().as_secs_f64()
        );

        let t = Instant::now();
        let closed = post(format!("/api/v1/reviews/{id}/close"), json!({})).await;
        let close_took = t.elapsed();
        let requests = closed["companies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["request"].is_string())
            .count();
        assert_eq!(closed["state"], "closed");
        assert_eq!(requests, companies, "one request per company");
        println!(
            "reviews: closed into {requests} requests in {:.2} s (target < 10 s)",
            close_took.as_secs_f64()
        );
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), server).await???;
        emulator.shutdown().await?;
        if let Some((_, name, admin_url)) = pg_db {
            drop(app);
            let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
            sqlx::query(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await?;
        }
        Ok(())
    })
}
