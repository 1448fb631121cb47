//! The notification outbox on both backends: rows written in the transaction of the audit
//! event that causes them (and never without it), claims under a lease that replicas never
//! share, fenced completion, retry schedules, and the settings tables.

use exogate_core::model::{Actor, Timestamp};
use exogate_core::notifications::{DeliveryState, SendOutcome, Target, Topics, WebhookFormat};
use exogate_core::ops::notify::{self as notify_ops, NewWebhook};
use exogate_core::tools::ToolName;

use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn set_email(w: &World, who: &Actor, email: &str) {
    notify_ops::set_user_settings(w.ctx(), who, who.user.id, Some(email), Topics::all())
        .await
        .expect("own e-mail");
}

/// (hardening) Webhook addresses are the edge's to check (`exogate::outbound`); these rows
/// point at a loopback port nothing is sent to.
struct AnyTarget;

#[async_trait::async_trait]
impl notify_ops::TargetCheck for AnyTarget {
    async fn check_url(&self, _: &str) -> Result<(), exogate_core::CoreError> {
        Ok(())
    }
}

async fn add_hook(w: &World, id: &str, company: Option<&str>) {
    notify_ops::add_webhook(
        w.ctx(),
        &w.admin,
        NewWebhook {
            id: id.to_owned(),
            company: company.map(cid),
            name: id.to_owned(),
            url: "http://127.0.0.1:9/hook".to_owned(),
            format: WebhookFormat::Generic,
            secret: SECRET.to_owned(),
        },
        &AnyTarget,
    )
    .await
    .expect("add webhook");
}

both! {
    async fn outbox_rows_are_written_with_their_event_and_claimed_under_a_lease(db: Db) {
        let w = World::new(db).await;
        for a in [&w.admin, &w.mgr_a, &w.tech_a, &w.mgr_b, &w.tech_b] {
            let email = format!("{}@msp.example", a.user.name);
            set_email(&w, a, &email).await;
        }
        add_hook(&w, "global", None).await;
        add_hook(&w, "fab", Some("fabrikam")).await;
        let r = w
            .write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales@contoso.onmicrosoft.com", "bob")
            .await
            .unwrap();
        let created = w
            .store
            .recent_audit(None, Some(r.id), 10)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.event.kind == "request.created")
            .expect("request.created");
        let rows = w.store.outbox_list(None, 100).await.unwrap();
        assert!(rows.iter().all(|d| d.message.audit_seq == created.seq), "{rows:?}");
        let mut to: Vec<String> = rows
            .iter()
            .map(|d| match &d.target {
                Target::Email { address, .. } => address.clone(),
                Target::Webhook { endpoint } => format!("hook:{endpoint}"),
            })
            .collect();
        to.sort();
        // Approvers entitled to contoso (admin, mgr-a), and the global endpoint; not the
        // requester's own role, not fabrikam's people or endpoint.
        assert_eq!(to, ["admin@msp.example", "hook:global", "mgr-a@msp.example"]);
        assert!(rows.iter().all(|d| d.state == DeliveryState::Pending && d.attempts == 0));
        assert_eq!(rows[0].message.link_path, Some(format!("/requests/{}", r.id)));

        // Claims: one owner at a time; a lapsed lease makes the row due again.
        let now = w.clock.now();
        let lease = Timestamp::from_unix_millis(now.unix_millis() + 30_000);
        let claimed = w.store.outbox_claim(now, "w1", lease, 100).await.unwrap();
        assert_eq!(claimed.len(), 3);
        assert!(claimed.iter().all(|d| d.attempts == 1));
        assert!(w.store.outbox_claim(now, "w2", lease, 100).await.unwrap().is_empty());
        let first = &claimed[0].id;
        assert!(!w.store.outbox_finish(first, "w2", now, &SendOutcome::Sent).await.unwrap(), "fenced");
        assert!(w.store.outbox_finish(first, "w1", now, &SendOutcome::Sent).await.unwrap());
        let retry_at = Timestamp::from_unix_millis(now.unix_millis() + 60_000);
        let second = &claimed[1].id;
        assert!(w
            .store
            .outbox_finish(second, "w1", now, &SendOutcome::Retry { next_at: retry_at, error: "503".into() })
            .await
            .unwrap());
        let after_lease = Timestamp::from_unix_millis(now.unix_millis() + 30_001);
        let long = Timestamp::from_unix_millis(now.unix_millis() + 3_600_000);
        let again = w.store.outbox_claim(after_lease, "w2", long, 100).await.unwrap();
        assert_eq!(again.len(), 1, "only the row whose lease lapsed: {again:?}");
        assert_eq!(again[0].id, claimed[2].id);
        assert_eq!(again[0].attempts, 2);
        let later = w.store.outbox_claim(retry_at, "w3", Timestamp::from_unix_millis(retry_at.unix_millis() + 1), 100).await.unwrap();
        assert_eq!(later.iter().map(|d| d.id.clone()).collect::<Vec<_>>(), std::slice::from_ref(second));
        assert!(w.store.outbox_finish(second, "w3", retry_at, &SendOutcome::Failed { error: "gave up".into() }).await.unwrap());
        let listed = w.store.outbox_list(Some(DeliveryState::Failed), 10).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].last_error.as_deref(), Some("gave up"));
        assert_eq!(w.store.outbox_list(Some(DeliveryState::Sent), 10).await.unwrap().len(), 1);
    }

    async fn a_failed_event_transaction_leaves_neither_the_event_nor_its_outbox_rows(db: Db) {
        let w = World::new(db).await;
        set_email(&w, &w.mgr_a, "mgr-a@msp.example").await;
        let (seq, _) = w.store.audit_head().await.unwrap().unwrap();
        // Rows already holding the ids the next events' notifications would take make the
        // outbox insert fail inside the event's transaction.
        for s in seq + 1..seq + 6 {
            w.exec(format!(
                "INSERT INTO notify_outbox (id, audit_seq, event, created_at, channel, endpoint_id, message, state, attempts, next_attempt_at) VALUES ('ntf_{s}_1', 0, 'x', 0, 'webhook', 'x', '{{}}', 'sent', 0, 0)"
            ))
            .await;
        }
        let err = w
            .write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales@contoso.onmicrosoft.com", "bob")
            .await;
        assert!(err.is_err(), "{err:?}");
        let events = w.store.list_audit(0, 10_000).await.unwrap();
        assert!(events.iter().all(|e| e.event.kind != "request.created"), "no event without its outbox rows");
        assert!(w.store.list_requests(&Default::default()).await.unwrap().is_empty(), "nor the request");
        let (n,): (i64,) = match &w.db {
            Db::Sqlite(p) => sqlx::query_as("SELECT COUNT(*) FROM notify_outbox").fetch_one(p).await.unwrap(),
            Db::Postgres(p) => sqlx::query_as("SELECT COUNT(*) FROM notify_outbox").fetch_one(p).await.unwrap(),
        };
        assert_eq!(n, 5, "only the planted rows");

        // With the obstacle gone, the event and its row commit together.
        w.exec("DELETE FROM notify_outbox".to_owned()).await;
        let r = w
            .write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales@contoso.onmicrosoft.com", "bob")
            .await
            .unwrap();
        let rows = w.store.outbox_list(None, 100).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].message.request, Some(r.id.to_string()));
        let seq_of_event = w.store.recent_audit(None, Some(r.id), 10).await.unwrap()[0].seq;
        assert_eq!(rows[0].id, format!("ntf_{seq_of_event}_1"));
    }

    async fn settings_and_webhooks_round_trip_and_a_user_cannot_set_another_users_email(db: Db) {
        let w = World::new(db).await;
        set_email(&w, &w.tech_a, "tech@msp.example").await;
        let got = notify_ops::user_settings(w.ctx(), &w.tech_a, w.tech_a.user.id).await.unwrap();
        assert_eq!(got.email.as_deref(), Some("tech@msp.example"));
        let err = notify_ops::set_user_settings(w.ctx(), &w.tech_a, w.mgr_a.user.id, Some("evil@x.example"), Topics::all())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "role_too_low");
        let err = notify_ops::set_user_settings(w.ctx(), &w.tech_a, w.tech_a.user.id, Some("a@b\r\nBcc: x@y.example"), Topics::all())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        notify_ops::set_user_settings(w.ctx(), &w.admin, w.mgr_a.user.id, Some("boss@msp.example"), Topics::parse("approval_waiting").unwrap())
            .await
            .expect("an admin sets anyone's");
        let got = notify_ops::user_settings(w.ctx(), &w.admin, w.mgr_a.user.id).await.unwrap();
        assert_eq!(got.topics.encode(), "approval_waiting");

        add_hook(&w, "fab", Some("fabrikam")).await;
        let hooks = w.store.webhook_list().await.unwrap();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0].secret, SECRET);
        assert!(!format!("{:?}", hooks[0]).contains("whsec_"), "Debug redacts the secret");
        // The audit log never holds the secret.
        let events = w.store.list_audit(0, 10_000).await.unwrap();
        assert!(events.iter().all(|e| !e.event.detail.contains("whsec_")));
        let err = notify_ops::list_webhooks(w.ctx(), &w.mgr_a).await.unwrap_err();
        assert_eq!(err.code(), "role_too_low");
        let err = notify_ops::list_deliveries(w.ctx(), &w.mgr_a, None, 10).await.unwrap_err();
        assert_eq!(err.code(), "role_too_low");
        notify_ops::remove_webhook(w.ctx(), &w.admin, "fab").await.unwrap();
        assert!(w.store.webhook_list().await.unwrap().is_empty());
        assert_eq!(notify_ops::remove_webhook(w.ctx(), &w.admin, "fab").await.unwrap_err().code(), "webhook_not_found");
    }
}

both! {
    async fn admins_are_alerted_of_drift_and_of_sweeps_failing_for_over_a_day_once(db: Db) {
        use exogate_core::audit::{AuditKind, NewAuditEvent};
        use exogate_core::notifications::SWEEP_FAILING_ALERT_AFTER_MS;
        let w = World::new(db).await;
        set_email(&w, &w.admin, "admin@msp.example").await;
        set_email(&w, &w.mgr_a, "mgr-a@msp.example").await;
        let at = |ms: i64| Timestamp::from_unix_millis(start().unix_millis() + ms);
        let failed = |ms: i64| {
            NewAuditEvent::system(at(ms), AuditKind::InventorySweepFailed)
                .company(&cid("contoso"))
                .detail(serde_json::json!({"generation": 1, "error": "403"}))
        };
        let alerts = || async {
            w.store
                .outbox_list(None, 100)
                .await
                .unwrap()
                .into_iter()
                .filter(|d| d.message.event == "inventory.sweep_failed")
                .map(|d| match d.target {
                    Target::Email { address, .. } => address,
                    Target::Webhook { endpoint } => endpoint,
                })
                .collect::<Vec<_>>()
        };
        w.store.append_audit(failed(0)).await.unwrap();
        w.store.append_audit(failed(SWEEP_FAILING_ALERT_AFTER_MS - 1)).await.unwrap();
        assert!(alerts().await.is_empty(), "less than a day");
        w.store.append_audit(failed(SWEEP_FAILING_ALERT_AFTER_MS)).await.unwrap();
        assert_eq!(alerts().await, ["admin@msp.example"], "a day: the admin, not the manager");
        w.store.append_audit(failed(2 * SWEEP_FAILING_ALERT_AFTER_MS)).await.unwrap();
        assert_eq!(alerts().await.len(), 1, "once per failing stretch");

        // Kinds added on other branches are matched by their strings.
        let mut drift = NewAuditEvent::system(at(5), AuditKind::InventorySweepFinished).company(&cid("contoso"));
        drift.kind = "drift.found".to_owned();
        w.store.append_audit(drift).await.unwrap();
        let rows = w.store.outbox_list(None, 100).await.unwrap();
        let drift_rows: Vec<_> = rows.iter().filter(|d| d.message.event == "drift.found").collect();
        assert_eq!(drift_rows.len(), 1);
        assert_eq!(drift_rows[0].target, Target::Email { user: w.admin.user.id, address: "admin@msp.example".into() });
    }
}

// (reviews)
both! {
    async fn closing_an_access_review_tells_its_companies_managers_with_its_link(db: Db) {
        use exogate_core::audit::{AuditKind, NewAuditEvent};
        let w = World::new(db).await;
        set_email(&w, &w.admin, "admin@msp.example").await;
        set_email(&w, &w.mgr_a, "mgr-a@msp.example").await;
        let ev = NewAuditEvent::new(start(), AuditKind::ReviewClosed, Some(&w.mgr_a))
            .company(&cid("contoso"))
            .detail(serde_json::json!({"campaign": "0192f0e0-0000-7000-8000-000000000000", "name": "Q1 <b>", "requests": [{"company": "contoso"}], "undecided": 3, "companies": ["contoso"], "reviewers": []}));
        set_email(&w, &w.mgr_b, "mgr-b@msp.example").await;
        set_email(&w, &w.tech_a, "tech-a@msp.example").await;
        w.store.append_audit(ev).await.unwrap();
        let rows: Vec<_> = w.store.outbox_list(None, 100).await.unwrap().into_iter().filter(|d| d.message.event == "review.closed").collect();
        let mut to: Vec<String> = rows.iter().filter_map(|d| match &d.target { Target::Email { address, .. } => Some(address.clone()), Target::Webhook { .. } => None }).collect();
        to.sort();
        assert_eq!(to, ["admin@msp.example", "mgr-a@msp.example"], "contoso's manager and the admin; not fabrikam's manager nor a technician");
        let m = &rows[0].message;
        assert_eq!(m.link_path.as_deref(), Some("/reviews/0192f0e0-0000-7000-8000-000000000000"));
        assert!(m.text.contains("1 removal request(s)") && m.text.contains("3 item(s) stayed undecided"), "{}", m.text);
    }
}
