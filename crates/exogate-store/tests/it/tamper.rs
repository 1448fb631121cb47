//! Changes made behind the server's back: a stored action, audit rows.

use exogate_core::ops::{self, audit::Verification};
use exogate_core::request::RequestState;
use exogate_core::tools::ToolName;

use crate::support::*;

async fn broken_at(w: &World) -> i64 {
    match ops::audit::verify(w.ctx()).await.unwrap() {
        Verification::Broken(b) => {
            println!("verifier: {b}");
            b.seq
        }
        Verification::Intact(r) => panic!("tampering not detected: {r:?}"),
    }
}

async fn world_with_history(db: Db) -> World {
    let w = World::new(db).await;
    for trustee in ["alice", "bob", "carol"] {
        let r = w
            .write(
                &w.tech_a,
                "contoso",
                ToolName::GrantSendAs,
                "support",
                trustee,
            )
            .await
            .unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None)
            .await
            .unwrap();
    }
    w.drain("w").await;
    assert!(matches!(
        ops::audit::verify(w.ctx()).await.unwrap(),
        Verification::Intact(_)
    ));
    w
}

both! {
    async fn changed_action_is_refused_at_execution(db: Db) {
        let w = World::new(db).await;
        let r = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales", "bob").await.unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None).await.unwrap();
        // Swap the trustee for carol in the stored action, keeping the JSON well-formed.
        let bob = &r.actions[0].trustee;
        let carol_id = format!("{}-000000000003", &T1[..23]);
        let n = w.exec(format!(
            "UPDATE approval_requests SET actions = REPLACE(REPLACE(actions, '{}', '{carol_id}'), '{}', 'carol@contoso.onmicrosoft.com') WHERE id = '{}'",
            bob.object_id, bob.primary_address, r.id
        )).await;
        assert_eq!(n, 1);
        let err = ops::execute::run_once(w.ctx(), "w").await.unwrap_err();
        assert_eq!(err.code(), "digest_mismatch");
        assert!(w.ms.applied().is_empty(), "nothing reached Microsoft");
        let stored = w.store.get_request(r.id).await.unwrap().unwrap();
        assert_eq!(stored.state, RequestState::Failed);
        assert!(stored.message.unwrap().contains("digest"));
        assert!(w.kinds_for(r.id).await.contains(&"execution.refused".to_owned()));
        // Changing the stored digest too does not help: the approval was given on the old digest.
        let r2 = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales", "alice").await.unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_a, r2.id, None).await.unwrap();
        let mut forged = r2.actions.clone();
        forged[0].trustee.object_id = carol_id.clone();
        let forged_digest = exogate_core::action::digest_actions(&forged);
        let forged_text = exogate_core::action::encode_actions(&forged);
        w.exec(format!("UPDATE approval_requests SET actions = '{forged_text}', digest = '{forged_digest}' WHERE id = '{}'", r2.id)).await;
        assert_eq!(ops::execute::run_once(w.ctx(), "w").await.unwrap_err().code(), "digest_mismatch");
        assert!(w.ms.applied().is_empty());
    }

    async fn audit_verify_detects_modified_row(db: Db) {
        let w = world_with_history(db).await;
        w.exec("UPDATE audit_log SET detail = '{\"forged\":true}' WHERE seq = 20".into()).await;
        assert_eq!(broken_at(&w).await, 20);
    }

    async fn audit_verify_detects_deleted_row(db: Db) {
        let w = world_with_history(db).await;
        w.exec("DELETE FROM audit_log WHERE seq = 15".into()).await;
        assert_eq!(broken_at(&w).await, 16);
    }

    async fn audit_verify_detects_deleted_tail(db: Db) {
        let w = world_with_history(db).await;
        let head = w.store.audit_head().await.unwrap().unwrap().0;
        w.exec(format!("DELETE FROM audit_log WHERE seq >= {}", head - 2)).await;
        assert_eq!(broken_at(&w).await, head - 3);
    }

    async fn audit_verify_detects_inserted_row(db: Db) {
        let w = world_with_history(db).await;
        // Make room after seq 10 and insert a forged copy of row 10 there.
        w.exec("UPDATE audit_log SET seq = seq + 100000 WHERE seq > 10".into()).await;
        w.exec("UPDATE audit_log SET seq = seq - 100000 + 1 WHERE seq > 100000".into()).await;
        w.exec("INSERT INTO audit_log SELECT 11, hash, hash, at, 'auth.login', actor_id, 'mallory', channel, company_id, request_id, detail FROM audit_log WHERE seq = 10".into()).await;
        assert_eq!(broken_at(&w).await, 11);
    }

    async fn audit_verify_detects_reordered_rows(db: Db) {
        let w = world_with_history(db).await;
        w.exec("UPDATE audit_log SET seq = -1 WHERE seq = 12".into()).await;
        w.exec("UPDATE audit_log SET seq = 12 WHERE seq = 13".into()).await;
        w.exec("UPDATE audit_log SET seq = 13 WHERE seq = -1".into()).await;
        assert_eq!(broken_at(&w).await, 12);
    }
}

/// Writes one column of a request row with a bound value (behind the server's back).
async fn set_column(w: &World, id: exogate_core::RequestId, column: &str, value: &str) {
    let sql = format!("UPDATE approval_requests SET {column} = $1 WHERE id = $2");
    let n = match &w.db {
        Db::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(id.to_string())
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
        Db::Postgres(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(value)
            .bind(id.to_string())
            .execute(p)
            .await
            .unwrap()
            .rows_affected(),
    };
    assert_eq!(n, 1);
}

both! {
    async fn every_single_field_mutation_is_refused(db: Db) {
        use exogate_core::action::{digest_actions, encode_actions, CanonicalAction, Presence};
        let mut w = World::new(db).await;
        w.settings.max_pending_per_user = 10_000;
        let t2 = exogate_core::TenantId::parse(T2).unwrap();
        type Mutation = fn(&mut Vec<CanonicalAction>, exogate_core::TenantId);
        let mutations: Vec<(&str, Mutation)> = vec![
            ("company", |a, _| a[0].company = cid("fabrikam")),
            ("tenant", |a, t2| a[0].tenant = t2),
            ("operation", |a, _| a[0].operation = a[0].operation.inverse()),
            ("mailbox.object_id", |a, _| a[0].mailbox.object_id = format!("{}-000000000005", &T1[..23])),
            ("mailbox.primary_address", |a, _| a[0].mailbox.primary_address = "support@contoso.onmicrosoft.com".into()),
            ("mailbox.display_name", |a, _| a[0].mailbox.display_name = "Support".into()),
            ("mailbox.kind", |a, _| a[0].mailbox.kind = exogate_core::RecipientKind::UserMailbox),
            ("trustee.object_id", |a, _| a[0].trustee.object_id = format!("{}-000000000003", &T1[..23])),
            ("trustee.primary_address", |a, _| a[0].trustee.primary_address = "carol@contoso.onmicrosoft.com".into()),
            ("trustee.display_name", |a, _| a[0].trustee.display_name = "Carol".into()),
            ("trustee.kind", |a, _| a[0].trustee.kind = exogate_core::RecipientKind::Group),
            ("automapping", |a, _| a[0].options.automapping = Some(false)),
            ("state_at_request", |a, _| a[0].state_at_request = Presence::Present),
            ("extra action", |a, _| {
                let mut extra = a[0].clone();
                extra.trustee.object_id = format!("{}-000000000003", &T1[..23]);
                a.push(extra);
            }),
        ];
        let mut tried = 0;
        // Three ways to tamper: the actions only; actions and digest; actions, digest and the
        // digest recorded with the decision.
        for depth in 0..3 {
            for (name, mutate) in &mutations {
                let r = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales", "bob").await.unwrap();
                ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None).await.unwrap();
                let mut actions = r.actions.clone();
                mutate(&mut actions, t2);
                let text = encode_actions(&actions);
                let digest = digest_actions(&actions);
                set_column(&w, r.id, "actions", &text).await;
                if depth >= 1 {
                    set_column(&w, r.id, "digest", &digest).await;
                }
                if depth >= 2 {
                    set_column(&w, r.id, "decision_digest", &digest).await;
                }
                let out = ops::execute::run_once(w.ctx(), "w").await;
                let state = w.store.get_request(r.id).await.unwrap().unwrap().state;
                assert!(matches!(&out, Err(e) if e.code() == "digest_mismatch"), "{name} depth {depth}: {out:?}");
                assert_eq!(state, RequestState::Failed, "{name} depth {depth}");
                assert!(w.ms.applied().is_empty(), "{name} depth {depth}: reached Microsoft");
                tried += 1;
            }
        }
        // Also change the tenant column only (the action still names tenant 1).
        let r = w.write(&w.tech_a, "contoso", ToolName::GrantFullAccess, "sales", "bob").await.unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None).await.unwrap();
        set_column(&w, r.id, "tenant_id", T2).await;
        assert!(ops::execute::run_once(w.ctx(), "w").await.is_err());
        assert!(w.ms.applied().is_empty());
        tried += 1;
        println!("figure: mutations tried {tried}, executed with a mismatched action 0");
    }
}
