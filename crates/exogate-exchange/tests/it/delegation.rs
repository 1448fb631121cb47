//! Typed delegation operations against the emulator's demo directory: reads with identities
//! resolved, ensure-operations, Send on Behalf kept additive, read-back.

use exogate_exchange::{
    Change, EnsureOutcome, ExchangeError, Right, TrusteeResolution, VerifyOutcome,
};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn mailbox_details_resolve_send_on_behalf_to_upn_and_display_name() {
    let w = World::demo().await;
    let client = w.client();
    let d = client
        .mailbox_details(CONTOSO, &id("sales@contoso.onmicrosoft.com"))
        .await
        .unwrap();
    assert_eq!(
        d.mailbox.recipient_type_details.as_deref(),
        Some("SharedMailbox")
    );
    assert!(!d.hidden_from_address_lists);
    assert_eq!(d.send_on_behalf.len(), 1, "{d:?}");
    let carol = &d.send_on_behalf[0];
    assert_eq!(carol.kind, TrusteeResolution::User);
    assert_eq!(carol.upn(), Some("carol@contoso.onmicrosoft.com"));
    assert_eq!(carol.display_name(), Some("Carol Chen"));
    // Exchange reports carol by object id, not by UPN.
    assert_ne!(carol.raw, "carol@contoso.onmicrosoft.com");
}

#[tokio::test]
async fn holders_filter_self_and_mark_groups_and_orphans() {
    let w = World::demo().await;
    let client = w.client();
    let fa = client
        .full_access_holders(CONTOSO, &id("sales"))
        .await
        .unwrap();
    assert_eq!(fa.len(), 1, "{fa:?}");
    assert_eq!(fa[0].kind, TrusteeResolution::User);
    assert!(fa[0].rights.iter().any(|r| r == "FullAccess"));
    assert_eq!(
        fa[0]
            .recipient
            .as_ref()
            .and_then(|r| r.user_principal_name.as_deref()),
        Some("alice@contoso.onmicrosoft.com")
    );
    let fa = client
        .full_access_holders(CONTOSO, &id("support"))
        .await
        .unwrap();
    let kinds: Vec<_> = fa.iter().map(|h| h.kind).collect();
    assert!(kinds.contains(&TrusteeResolution::Group), "{fa:?}");
    assert!(kinds.contains(&TrusteeResolution::Orphan), "{fa:?}");
    assert!(fa.iter().all(|h| h.sid.as_deref() != Some("S-1-5-10")));

    let sa = client
        .send_as_holders(CONTOSO, &id("support"))
        .await
        .unwrap();
    assert_eq!(sa.len(), 1, "{sa:?}");
    assert_eq!(
        sa[0]
            .recipient
            .as_ref()
            .and_then(|r| r.display_name.as_deref()),
        Some("Bob Berg")
    );
}

#[tokio::test]
async fn grant_twice_is_changed_then_already_in_state_for_every_right() {
    let w = World::demo().await;
    let client = w.client();
    let (mbx, who) = (id("support"), id("carol@contoso.onmicrosoft.com"));

    let no_automapping = Change {
        automapping: Some(false),
        ..change(Right::FullAccess, true, &mbx, &who)
    };
    let r = client.ensure(CONTOSO, &no_automapping).await.unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed);
    let r = client.ensure(CONTOSO, &no_automapping).await.unwrap();
    assert_eq!(r.outcome, EnsureOutcome::AlreadyInState);
    assert_eq!(r.write_attempts, 0, "Full Access is read first");
    let truth = w.truth(CONTOSO, "support").await;
    let row = truth["full_access"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["user"].as_str().is_some_and(|u| u.starts_with("carol")))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        row["automapping"],
        json!(false),
        "automapping as asked: {truth}"
    );

    let r = client
        .ensure(CONTOSO, &change(Right::SendAs, true, &mbx, &who))
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed);
    let r = client
        .ensure(CONTOSO, &change(Right::SendAs, true, &mbx, &who))
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::AlreadyInState, "{r:?}");

    let r = client
        .ensure(CONTOSO, &change(Right::SendOnBehalf, true, &mbx, &who))
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed);
    let r = client
        .ensure(CONTOSO, &change(Right::SendOnBehalf, true, &mbx, &who))
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::AlreadyInState, "{r:?}");
}

#[tokio::test]
async fn removing_what_is_absent_is_already_in_state() {
    let w = World::demo().await;
    let client = w.client();
    let (mbx, who) = (id("support"), id("alice"));
    for right in [Right::FullAccess, Right::SendAs, Right::SendOnBehalf] {
        let r = client
            .ensure(CONTOSO, &change(right, false, &mbx, &who))
            .await
            .unwrap();
        assert_eq!(r.outcome, EnsureOutcome::AlreadyInState, "{right:?}: {r:?}");
    }
    assert!(w.apply_log(CONTOSO).await.is_empty(), "nothing was applied");
    // And removing what is there is Changed.
    let r = client
        .ensure(
            CONTOSO,
            &change(Right::FullAccess, false, &id("sales"), &who),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed);
    let r = client
        .ensure(CONTOSO, &change(Right::SendAs, false, &id("sales"), &who))
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed);
}

#[tokio::test]
async fn adding_a_send_on_behalf_delegate_keeps_every_existing_one() {
    let w = World::demo().await;
    let client = w.client();
    let before = w.truth(CONTOSO, "sales").await["send_on_behalf"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(before, 1);
    client
        .ensure(
            CONTOSO,
            &change(Right::SendOnBehalf, true, &id("sales"), &id("bob")),
        )
        .await
        .unwrap();
    client
        .ensure(
            CONTOSO,
            &change(Right::SendOnBehalf, true, &id("sales"), &id("alice")),
        )
        .await
        .unwrap();
    let truth = w.truth(CONTOSO, "sales").await;
    let names: Vec<String> = truth["send_on_behalf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["upn"].as_str().unwrap_or_default().to_owned())
        .collect();
    for who in ["carol@", "bob@", "alice@"] {
        assert!(
            names.iter().any(|n| n.starts_with(who)),
            "{who} missing from {names:?}"
        );
    }
    let log = w.apply_log(CONTOSO).await;
    assert_eq!(log.len(), 2, "{log:?}");
    assert!(log.iter().all(|e| e["cmdlet"] == json!("Set-Mailbox")));
    // Removing one delegate leaves the others.
    client
        .ensure(
            CONTOSO,
            &change(Right::SendOnBehalf, false, &id("sales"), &id("bob")),
        )
        .await
        .unwrap();
    let after = w.truth(CONTOSO, "sales").await["send_on_behalf"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, 2);
}

#[tokio::test]
async fn verify_reads_back_through_replication_lag() {
    let w = World::demo().await;
    w.freeze_emulator_clock().await;
    w.knobs(Some(CONTOSO), json!({"replication_lag_ms": 5000}))
        .await;
    let client = w.linked_client(Default::default());
    let r = client
        .ensure(
            CONTOSO,
            &change(Right::SendAs, true, &id("support"), &id("alice")),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed);
    let v = client
        .verify(CONTOSO, Right::SendAs, &r.mailbox, &r.trustee, true)
        .await
        .unwrap();
    match v {
        VerifyOutcome::Confirmed { reads } => assert!(reads >= 2, "lag forced a re-read: {reads}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dropped_connection_after_apply_is_reread_not_replayed() {
    let w = World::demo().await;
    w.knobs(Some(CONTOSO), json!({"apply_then_drop_rate": 1.0}))
        .await;
    let client = w.client();
    let r = client
        .ensure(
            CONTOSO,
            &change(Right::SendAs, true, &id("support"), &id("carol")),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed, "{r:?}");
    let log = w.apply_log(CONTOSO).await;
    assert_eq!(log.len(), 1, "applied exactly once: {log:?}");
}

#[tokio::test]
async fn unknown_mailbox_is_not_found() {
    let w = World::demo().await;
    let e = w
        .client()
        .ensure(
            CONTOSO,
            &Change {
                automapping: Some(true),
                ..change(
                    Right::FullAccess,
                    true,
                    &id("nobody@contoso.onmicrosoft.com"),
                    &id("alice"),
                )
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ExchangeError::NotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn an_orphaned_sid_can_be_removed() {
    let w = World::demo().await;
    let client = w.client();
    let holders = client
        .full_access_holders(CONTOSO, &id("support"))
        .await
        .unwrap();
    let orphan = holders
        .iter()
        .find(|h| h.kind == TrusteeResolution::Orphan)
        .expect("dave's orphaned row")
        .trustee
        .clone();
    assert!(orphan.starts_with("S-1-5-21-"), "{orphan}");
    let r = client
        .ensure(
            CONTOSO,
            &change(Right::FullAccess, false, &id("support"), &id(&orphan)),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome, EnsureOutcome::Changed, "{r:?}");
    let holders = client
        .full_access_holders(CONTOSO, &id("support"))
        .await
        .unwrap();
    assert!(
        holders.iter().all(|h| h.kind != TrusteeResolution::Orphan),
        "{holders:?}"
    );
}

#[tokio::test]
async fn recipients_many_answers_each_value_in_order() {
    let w = World::demo().await;
    let client = w.client();
    let values: Vec<String> = [
        "alice@contoso.onmicrosoft.com",
        "nobody",
        "salesteam",
        "sales",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let results = client.recipients_many(CONTOSO, &values).await;
    assert_eq!(results.len(), 4);
    let alice = results[0].as_ref().unwrap();
    assert!(!alice.is_group());
    assert_eq!(alice.alias.as_deref(), Some("alice"));
    assert!(
        matches!(results[1], Err(ExchangeError::NotFound { .. })),
        "{:?}",
        results[1]
    );
    let team = results[2].as_ref().unwrap();
    assert!(team.is_group(), "{team:?}");
    assert_eq!(team.alias.as_deref(), Some("salesteam"));
    let sales = results[3].as_ref().unwrap();
    assert!(!sales.is_group());
    assert_eq!(sales.alias.as_deref(), Some("sales"));
}

#[tokio::test]
async fn inventory_helpers_list_send_as_and_full_access_in_bulk() {
    let w = World::demo().await;
    let client = w.client();
    let mut rows = Vec::new();
    let mut pages = client.recipient_permission_pages(CONTOSO);
    while let Some(p) = futures::StreamExt::next(&mut pages).await {
        rows.extend(p.unwrap());
    }
    let explicit: Vec<_> = rows.iter().filter(|r| r.is_explicit_send_as()).collect();
    assert_eq!(explicit.len(), 2, "{explicit:?}");
    assert!(
        explicit
            .iter()
            .any(|r| r.identity == "support" && r.trustee.starts_with("bob@"))
    );

    let names: Vec<String> = ["sales", "nobody", "support", "alice"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let results = client.mailbox_permissions_many(CONTOSO, &names).await;
    assert!(matches!(results[1], Err(ExchangeError::NotFound { .. })));
    let sales = results[0].as_ref().unwrap();
    assert!(sales.iter().any(|r| r.is_self()));
    assert!(
        sales
            .iter()
            .any(|r| r.is_explicit_full_access() && r.user.starts_with("alice@"))
    );
    let support = results[2].as_ref().unwrap();
    assert_eq!(
        support
            .iter()
            .filter(|r| r.is_explicit_full_access())
            .count(),
        2
    );
    let alice = results[3].as_ref().unwrap();
    assert_eq!(
        alice.iter().filter(|r| r.is_explicit_full_access()).count(),
        0
    );

    let mut all = 0;
    let mut pages = client.mailbox_pages(CONTOSO);
    while let Some(p) = futures::StreamExt::next(&mut pages).await {
        for m in p.unwrap() {
            all += 1;
            if m.recipient.alias.as_deref() == Some("sales") {
                assert_eq!(m.grant_send_on_behalf_to.len(), 1);
            }
        }
    }
    assert_eq!(all, 5, "alice, bob, carol, sales, support");
}

#[tokio::test]
async fn group_pages_list_mail_enabled_groups_and_nothing_else() {
    let w = World::demo().await;
    let client = w.client();
    let mut groups = Vec::new();
    let mut pages = client.group_pages(CONTOSO);
    while let Some(p) = futures::StreamExt::next(&mut pages).await {
        groups.extend(p.unwrap());
    }
    let names: Vec<_> = groups.iter().filter_map(|g| g.name.as_deref()).collect();
    assert_eq!(names, ["Sales Team"], "{groups:?}");
    let team = &groups[0];
    assert_eq!(
        team.recipient_type_details.as_deref(),
        Some("MailUniversalSecurityGroup")
    );
    assert!(team.primary_smtp_address.is_some() && team.guid.is_some());
}
