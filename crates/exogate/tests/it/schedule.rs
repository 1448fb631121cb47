//! The worker's schedule: each configured company's inventory is swept without anyone asking,
//! and only configured companies are swept.

use std::time::Duration;

use exogate::app::AppEvent;
use exogate_core::inventory::SweepState;
use exogate_core::model::CompanyId;
use tokio_util::sync::CancellationToken;

use crate::support::TestApp;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_companies_are_swept_on_schedule() {
    let t = TestApp::start().await;
    let mut events = t.app.events.subscribe();
    // A second worker with the inventory schedule on (the test app's own worker has it off).
    let mut settings = exogate::worker::WorkerSettings::new(time::Duration::hours(1));
    settings.sweep_interval = Some(time::Duration::hours(24));
    let stop = CancellationToken::new();
    let worker = tokio::spawn(exogate::worker::run(t.app.clone(), settings, stop.clone()));

    let swept = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(AppEvent::InventorySwept { company, ok }) = events.recv().await {
                return (company, ok);
            }
        }
    })
    .await
    .expect("a scheduled sweep within a minute");
    // Only Contoso is configured in the demo world.
    assert_eq!(swept, ("contoso".to_owned(), true));
    let status = t
        .app
        .store
        .inventory_status(&CompanyId::parse("contoso").unwrap())
        .await
        .unwrap()
        .expect("contoso has an inventory");
    assert_eq!(status.sweep_state, SweepState::Ok);
    assert!(status.mailboxes >= 5, "{status:?}");
    for other in ["fabrikam", "northwind", "tailspin"] {
        let status = t
            .app
            .store
            .inventory_status(&CompanyId::parse(other).unwrap())
            .await
            .unwrap();
        assert!(
            status.is_none(),
            "{other} is not configured and must not be swept: {status:?}"
        );
    }
    stop.cancel();
    worker.await.unwrap();
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_deletes_expired_sessions() {
    let t = TestApp::start().await;
    let now = t.app.clock.now();
    let session = |id: &str, expires_at| exogate_core::model::SessionRecord {
        id: id.to_owned(),
        data: "{}".to_owned(),
        expires_at,
    };
    t.app
        .store
        .put_session(&session("expired", now.plus_secs(-60)))
        .await
        .unwrap();
    t.app
        .store
        .put_session(&session("live", now.plus_secs(3600)))
        .await
        .unwrap();
    let mut events = t.app.events.subscribe();
    // A second worker: it purges when it starts (the test app's worker did before the rows
    // existed).
    let stop = CancellationToken::new();
    let settings = exogate::worker::WorkerSettings::new(time::Duration::hours(1));
    let worker = tokio::spawn(exogate::worker::run(t.app.clone(), settings, stop.clone()));
    let purged = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(AppEvent::SessionsPurged { count }) = events.recv().await {
                return count;
            }
        }
    })
    .await
    .expect("a purge when the worker starts");
    assert_eq!(purged, 1);
    // Only the expired one is gone: reading it with a time before its expiry finds nothing.
    let earlier = now.plus_secs(-3600);
    assert!(
        t.app
            .store
            .get_session("expired", earlier)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        t.app
            .store
            .get_session("live", now)
            .await
            .unwrap()
            .is_some()
    );
    stop.cancel();
    worker.await.unwrap();
    t.stop().await;
}
