//! Time-boxed grants over the real store (both backends) with the fake Microsoft and a driven
//! clock: the end is in the digest, a verified timed grant schedules its removal, the removal
//! waits for the end, runs once, records a right already gone, backs off and raises one alert
//! when it keeps failing; a new end replaces the old one only through approval; the company's
//! rule for ends; misuse.

use exogate_core::action::{Presence, digest_actions};
use exogate_core::ops;
use exogate_core::ops::requests::{EndInput, WriteInput};
use exogate_core::request::{ApprovalRequest, RequestState};
use exogate_core::timed::GrantEndPolicy;
use exogate_core::tools::ToolName;
use exogate_core::*;

use crate::support::*;

const HOUR: i64 = 3600;

async fn timed(
    w: &World,
    actor: &Actor,
    company: &str,
    tool: ToolName,
    duration: Option<&str>,
    until: Option<&str>,
) -> Result<ApprovalRequest, CoreError> {
    ops::requests::request_timed_write(
        w.ctx(),
        actor,
        WriteInput {
            id: new_request_id(),
            company: cid(company),
            tool,
            mailbox: IdentityInput::parse("sales").unwrap(),
            trustee: IdentityInput::parse("bob").unwrap(),
            automapping: None,
        },
        EndInput {
            duration: duration.map(str::to_owned),
            until: until.map(str::to_owned),
        },
    )
    .await
}

async fn grant_for(w: &World, duration: &str) -> ApprovalRequest {
    let r = timed(
        w,
        &w.tech_a,
        "contoso",
        ToolName::GrantFullAccess,
        Some(duration),
        None,
    )
    .await
    .unwrap();
    ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None)
        .await
        .unwrap();
    let done = ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
    assert_eq!(done.id, r.id);
    done
}

async fn removal_of(w: &World, grant: &ApprovalRequest) -> ApprovalRequest {
    w.store
        .get_request(ops::timed::removal_id(grant.id))
        .await
        .unwrap()
        .expect("the scheduled removal exists")
}

fn holds(w: &World, r: &ApprovalRequest) -> bool {
    let a = &r.actions[0];
    w.ms.holds(
        a.tenant,
        a.operation.permission,
        &a.mailbox.object_id,
        &a.trustee.object_id,
    )
}

async fn count_kind(w: &World, kind: &str) -> usize {
    w.store
        .recent_audit(None, None, 5000)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event.kind == kind)
        .count()
}

both! {
    async fn the_end_is_part_of_the_digest(db: Db) {
        let w = World::new(db).await;
        let r = timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, Some("8h"), None).await.unwrap();
        let end = w.clock.now().plus_secs(8 * HOUR);
        assert_eq!(r.actions[0].ends_at, Some(end));
        assert_eq!(r.digest, digest_actions(&r.actions));
        let mut moved = r.actions.clone();
        moved[0].ends_at = Some(end.plus_secs(1));
        assert_ne!(digest_actions(&moved), r.digest, "moving the end changes the digest");
        let mut endless = r.actions.clone();
        endless[0].ends_at = None;
        assert_ne!(digest_actions(&endless), r.digest, "dropping the end changes the digest");
        // The stored encoding keeps the end: read back, the digest is the same.
        let stored = w.store.get_request(r.id).await.unwrap().unwrap();
        assert_eq!(stored.actions[0].ends_at, Some(end));
        assert_eq!(digest_actions(&stored.actions), r.digest);
        // A grant without an end keeps the digest it always had (no `ends_at` in the encoding).
        assert!(!exogate_core::action::encode_actions(&endless).contains("ends_at"));
        // A tampered end in the row (the approval was on the original) is refused at execution.
        ops::requests::approve(w.ctx(), &w.mgr_a, r.id, None).await.unwrap();
        let tampered = exogate_core::action::encode_actions(&moved);
        w.exec(format!("UPDATE approval_requests SET actions = '{}' WHERE id = '{}'", tampered.replace('\'', "''"), r.id)).await;
        let out = ops::execute::run_once(w.ctx(), "w").await;
        assert_eq!(out.unwrap_err().code(), "digest_mismatch");
        assert!(w.ms.applied().is_empty());
    }

    async fn a_timed_grant_ends_by_itself_once(db: Db) {
        let w = World::new(db).await;
        let grant = grant_for(&w, "8h").await;
        assert_eq!(grant.state, RequestState::Succeeded);
        assert!(holds(&w, &grant));
        let removal = removal_of(&w, &grant).await;
        let end = grant.actions[0].ends_at.unwrap();
        assert_eq!(removal.state, RequestState::Approved);
        assert_eq!((removal.ends_grant, removal.not_before), (Some(grant.id), Some(end)));
        assert_eq!(removal.tool, ToolName::RemoveFullAccess);
        assert_eq!(removal.actions[0].state_at_request, Presence::Present);
        assert_eq!(removal.decision.as_ref().unwrap().by, w.mgr_a.user.id, "approved by the grant's approval");
        assert_eq!(w.kinds_for(removal.id).await, ["grant.end_scheduled"]);
        // Nothing runs before the end.
        w.clock.advance_secs(8 * HOUR - 1);
        assert!(ops::execute::run_once(w.ctx(), "w").await.unwrap().is_none());
        assert!(holds(&w, &grant));
        // At the end the worker removes it and reads it back.
        w.clock.advance_secs(1);
        let done = ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
        assert_eq!((done.id, done.state), (removal.id, RequestState::Succeeded));
        assert!(done.results[0].verified);
        assert!(!holds(&w, &grant));
        assert!(ops::execute::run_once(w.ctx(), "w").await.unwrap().is_none(), "it runs once");
        assert_eq!(w.ms.applied().len(), 2, "one grant, one removal");
        // A scheduled removal cannot be cancelled (that would keep the access without approval).
        let again = grant_for(&w, "8h").await;
        let r2 = removal_of(&w, &again).await;
        let e = ops::requests::cancel(w.ctx(), &w.mgr_a, r2.id).await.unwrap_err();
        assert_eq!(e.code(), "invalid_input", "{e}");
        assert!(matches!(ops::audit::verify(w.ctx()).await.unwrap(), ops::audit::Verification::Intact(_)));
    }

    async fn a_right_already_gone_at_the_end_is_recorded(db: Db) {
        let w = World::new(db).await;
        let grant = grant_for(&w, "1h").await;
        let a = &grant.actions[0];
        w.ms.remove_directly(a.tenant, a.operation.permission, &a.mailbox.object_id, &a.trustee.object_id);
        w.clock.advance_secs(HOUR);
        let done = ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
        assert_eq!(done.state, RequestState::AlreadyInState);
        assert_eq!(count_kind(&w, "grant.end_failed").await, 0);
    }

    async fn a_removal_that_keeps_failing_raises_one_alert(db: Db) {
        let w = World::new(db).await;
        let grant = grant_for(&w, "1h").await;
        let removal = removal_of(&w, &grant).await;
        w.ms.fail_next_applies(1000);
        w.clock.advance_secs(HOUR);
        let mut tries = 0;
        let last = loop {
            match ops::execute::run_once(w.ctx(), "w").await.unwrap() {
                Some(r) if r.state.is_terminal() => break r,
                Some(r) => {
                    tries += 1;
                    assert_eq!(r.state, RequestState::Approved);
                    let wait = r.not_before.unwrap().unix_millis() - w.clock.now().unix_millis();
                    assert!(wait > 0, "a retry backs off");
                    // Not before its backoff.
                    assert!(ops::execute::run_once(w.ctx(), "w").await.unwrap().is_none());
                    w.clock.advance_secs(wait / 1000);
                }
                None => panic!("the removal must be claimable at its time"),
            }
            assert!(tries < 50);
        };
        assert_eq!((last.id, last.state), (removal.id, RequestState::Failed));
        assert_eq!(tries + 1, w.settings.max_attempts as usize);
        assert_eq!(count_kind(&w, "grant.end_failed").await, 1, "one alert, not one per retry");
        assert_eq!(count_kind(&w, "execution.retry").await, tries);
        assert!(holds(&w, &grant), "it failed, and says so");
    }

    async fn a_new_end_replaces_the_old_only_through_approval(db: Db) {
        let w = World::new(db).await;
        let grant = grant_for(&w, "8h").await;
        let first = removal_of(&w, &grant).await;
        // The right is held: asking again with an end asks to move the end.
        let ext = timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, Some("2d"), None).await.unwrap();
        assert_eq!((ext.state, ext.actions[0].state_at_request), (RequestState::Pending, Presence::Present));
        // Until approved, the old end stands.
        w.clock.advance_secs(HOUR);
        assert!(ops::execute::run_once(w.ctx(), "w").await.unwrap().is_none());
        ops::requests::approve(w.ctx(), &w.mgr_a, ext.id, None).await.unwrap();
        let done = ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
        assert_eq!(done.state, RequestState::AlreadyInState);
        let old = w.store.get_request(first.id).await.unwrap().unwrap();
        assert_eq!(old.state, RequestState::Cancelled, "the old removal must not also fire");
        let new = removal_of(&w, &ext).await;
        assert_eq!(new.not_before, ext.actions[0].ends_at);
        // Past the old end: nothing happens; at the new end, the removal.
        w.clock.advance_secs(8 * HOUR);
        assert!(ops::execute::run_once(w.ctx(), "w").await.unwrap().is_none());
        assert!(holds(&w, &grant));
        w.clock.advance_secs(2 * 24 * HOUR);
        let gone = ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
        assert_eq!((gone.id, gone.state), (new.id, RequestState::Succeeded));
        assert!(!holds(&w, &grant));
        // Without an end, asking for a right already held is still refused as a no-op.
        let e = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "support", "carol").await.unwrap();
        ops::requests::approve(w.ctx(), &w.mgr_a, e.id, None).await.unwrap();
        ops::execute::run_once(w.ctx(), "w").await.unwrap().unwrap();
        let again = w.write(&w.tech_a, "contoso", ToolName::GrantSendAs, "support", "carol").await.unwrap_err();
        assert_eq!(again.code(), "already_in_state");
    }

    async fn the_company_rule_for_ends(db: Db) {
        let w = World::new(db).await;
        let contoso = cid("contoso");
        assert_eq!(w.store.grant_end_policy(&contoso).await.unwrap(), GrantEndPolicy::default());
        let rule = GrantEndPolicy { end_required: true, max_secs: Some(24 * HOUR) };
        // Only an admin sets it.
        let e = ops::timed::set_grant_end_policy(w.ctx(), &w.mgr_a, &contoso, rule).await.unwrap_err();
        assert_eq!(e.code(), "role_too_low");
        let bad = GrantEndPolicy { end_required: false, max_secs: Some(0) };
        assert_eq!(ops::timed::set_grant_end_policy(w.ctx(), &w.admin, &contoso, bad).await.unwrap_err().code(), "invalid_input");
        ops::timed::set_grant_end_policy(w.ctx(), &w.admin, &contoso, rule).await.unwrap();
        assert_eq!(ops::timed::grant_end_policy(w.ctx(), &w.viewer, &contoso).await.unwrap(), rule);
        assert_eq!(ops::timed::grant_end_policy(w.ctx(), &w.tech_b, &contoso).await.unwrap_err().code(), "not_entitled");
        let e = timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, None, None).await.unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        assert!(e.to_string().contains("requires every grant to end"), "{e}");
        let e = timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, Some("2d"), None).await.unwrap_err();
        assert!(e.to_string().contains("at most 1day"), "{e}");
        timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, Some("8h"), None).await.unwrap();
        // Removals need no end; another company is not bound by this rule.
        w.write(&w.tech_b, "fabrikam", ToolName::GrantFullAccess, "sales@fabrikam.onmicrosoft.com", "bob").await.unwrap();
        let changed = w.store.recent_audit(Some(&contoso), None, 1000).await.unwrap();
        assert_eq!(changed.iter().filter(|e| e.event.kind == "company.settings_changed").count(), 1);
    }

    async fn misuse_of_ends(db: Db) {
        let w = World::new(db).await;
        let now = w.clock.now();
        let long = "x".repeat(5000);
        let cases: Vec<(Option<&str>, Option<&str>)> = vec![
            (Some("0s"), None),
            (Some("-5h"), None),
            (Some("30s"), None),
            (Some("400d"), None),
            (Some("99999999999999999999d"), None),
            (Some("soon"), None),
            (Some("8h\u{202e}"), None),
            (None, Some("2020-01-01")),
            (None, Some(&long)),
            (None, Some("2027-13-45")),
            (Some("8h"), Some("2099-01-01")),
        ];
        for (d, u) in cases {
            let e = timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, d, u).await.unwrap_err();
            assert_eq!(e.code(), "invalid_input", "{d:?} {u:?}: {e}");
            assert!(e.to_string().len() < 400, "the message stays short: {e}");
        }
        let past = Timestamp::from_unix_secs(now.unix_secs() - 60).to_string();
        assert_eq!(timed(&w, &w.tech_a, "contoso", ToolName::GrantFullAccess, None, Some(&past)).await.unwrap_err().code(), "invalid_input");
        // A removal has no end.
        let e = timed(&w, &w.tech_a, "contoso", ToolName::RemoveFullAccess, Some("8h"), None).await.unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        // Another company's mailbox: refused before anything.
        let e = timed(&w, &w.tech_b, "contoso", ToolName::GrantFullAccess, Some("8h"), None).await.unwrap_err();
        assert_eq!(e.code(), "not_entitled");
        // A date and an RFC 3339 time both work.
        let date = (now.plus_secs(3 * 24 * HOUR)).to_offset_date_time().date().to_string();
        let r = timed(&w, &w.tech_a, "contoso", ToolName::GrantSendAs, None, Some(&date)).await.unwrap();
        assert_eq!(r.actions[0].ends_at.unwrap().unix_secs() % 86400, 0, "midnight UTC");
        let at = now.plus_secs(5 * HOUR).to_string();
        let r = timed(&w, &w.tech_a, "contoso", ToolName::GrantSendOnBehalf, None, Some(&at)).await.unwrap();
        assert_eq!(r.actions[0].ends_at, Some(now.plus_secs(5 * HOUR)));
        assert_eq!(w.ms.applied().len(), 0);
    }
}
