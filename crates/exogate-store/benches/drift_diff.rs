//! `drift_diff` benchmark: the comparison of two inventory generations that every sweep makes
//! before it finishes (`Store::drift_diff`, SQL over both generations) and the recording of its
//! findings (`Store::drift_record`), on a company of M mailboxes with three rights each, K of
//! them added and K removed outside. Prints the rows per generation, the differences returned
//! (only those cross into the process), and the time of each step. SQLite. `--smoke`: 500
//! mailboxes (CI); `--full` (default): 20,000 mailboxes. Other arguments are ignored.

use std::time::Instant;

use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::drift::DriftObservation;
use exogate_core::inventory::{InventoryRow, InventoryTrustee, SweepBegin, SweepLease};
use exogate_core::ports::Store;
use exogate_core::*;
use exogate_store::Db;

const T1: &str = "11111111-1111-4111-8111-111111111111";

fn ident(name: &str, kind: RecipientKind) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: format!("id-{name}"),
        primary_address: format!("{name}@bench.example"),
        display_name: name.to_owned(),
        kind,
    }
}

/// Mailbox `m`'s three rights; with `shift`, the Send As trustee differs (one added, one
/// removed).
fn rows(m: usize, shift: bool) -> Vec<InventoryRow> {
    let c = CompanyId::parse("bench").unwrap();
    let mailbox = ident(&format!("mb{m}"), RecipientKind::SharedMailbox);
    let t = |name: String| InventoryTrustee::resolved(ident(&name, RecipientKind::UserMailbox));
    let send_as = if shift {
        format!("v{m}")
    } else {
        format!("u{m}")
    };
    [
        (Permission::FullAccess, format!("a{m}")),
        (Permission::SendAs, send_as),
        (Permission::SendOnBehalf, format!("d{m}")),
    ]
    .into_iter()
    .map(|(right, trustee)| InventoryRow {
        company: c.clone(),
        mailbox: mailbox.clone(),
        trustee: t(trustee),
        right,
    })
    .collect()
}

async fn generation(db: &Db, at: Timestamp, mailboxes: usize, changed: usize) -> i64 {
    let c = CompanyId::parse("bench").unwrap();
    let owner = format!("o{}", at.unix_millis());
    let lease = SweepLease {
        owner: owner.clone(),
        until: at.plus_secs(3600),
    };
    let SweepBegin::Started(st) = db
        .inventory_begin_sweep(
            &c,
            TenantId::parse(T1).unwrap(),
            at,
            &lease,
            NewAuditEvent::system(at, AuditKind::InventorySweepStarted),
        )
        .await
        .unwrap()
    else {
        panic!("busy")
    };
    for chunk in (0..mailboxes).collect::<Vec<_>>().chunks(100) {
        let batch: Vec<InventoryRow> = chunk.iter().flat_map(|&m| rows(m, m < changed)).collect();
        assert!(
            db.inventory_write_chunk(&c, st.generation, &owner, &batch, &[])
                .await
                .unwrap()
        );
    }
    st.generation
}

async fn finish(db: &Db, g: i64, at: Timestamp, mailboxes: usize) {
    let owner = format!(
        "o{}",
        db.inventory_status(&CompanyId::parse("bench").unwrap())
            .await
            .unwrap()
            .unwrap()
            .sweep_started_at
            .unix_millis()
    );
    assert!(
        db.inventory_finish_sweep(
            &CompanyId::parse("bench").unwrap(),
            g,
            &owner,
            at,
            mailboxes as u64,
            NewAuditEvent::system(at, AuditKind::InventorySweepFinished),
        )
        .await
        .unwrap()
    );
}

#[tokio::main]
async fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (mailboxes, changed) = if smoke { (500, 10) } else { (20_000, 100) };
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&format!(
        "sqlite://{}",
        dir.path().join("drift.db").display()
    ))
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let t0 = Timestamp::from_unix_secs(1_800_000_000);
    db.insert_company(
        &Company {
            id: CompanyId::parse("bench").unwrap(),
            name: "bench".into(),
            connection: None,
            exchange_status: None,
            separate_approver: false,
            created_at: t0,
        },
        NewAuditEvent::system(t0, AuditKind::CompanyAdded),
    )
    .await
    .unwrap();
    let c = CompanyId::parse("bench").unwrap();
    let g1 = generation(&db, t0, mailboxes, 0).await;
    finish(&db, g1, t0.plus_secs(1), mailboxes).await;
    let t2 = t0.plus_secs(100);
    let g2 = generation(&db, t2, mailboxes, changed).await;
    let start = Instant::now();
    let diff = db.drift_diff(&c, g1, g2).await.unwrap();
    let diff_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(diff.len(), changed * 2);
    let observation = DriftObservation {
        generation: g2,
        previous_generation: Some(g1),
        seen_at: t2,
        earlier_seen_at: Some(t0),
        swept_from: t2,
        candidates: diff,
    };
    let start = Instant::now();
    let new = db
        .drift_record(
            &c,
            &observation,
            NewAuditEvent::system(t2, AuditKind::DriftFound),
        )
        .await
        .unwrap();
    let record_ms = start.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(new.len(), changed * 2);
    // The next sweep sees the same: nothing new, last-seen moves on.
    let again = DriftObservation {
        previous_generation: Some(g1),
        candidates: Vec::new(),
        ..observation
    };
    let start = Instant::now();
    db.drift_record(&c, &again, NewAuditEvent::system(t2, AuditKind::DriftFound))
        .await
        .unwrap();
    let again_ms = start.elapsed().as_secs_f64() * 1000.0;
    println!(
        "drift_diff (sqlite{}): {mailboxes} mailboxes, {} rows per generation; {} differences returned; diff {diff_ms:.1} ms, record {record_ms:.1} ms, re-seen {again_ms:.1} ms",
        if smoke { ", smoke: debug build" } else { "" },
        mailboxes * 3,
        changed * 2,
    );
}
