//! Who hears what (`notifications::route`), the once-a-day sweep alert, admin alerts matched by
//! kind string, and how hostile tenant text comes out in each channel's markup.

use std::collections::BTreeSet;

use exogate_core::audit::{AuditEvent, NewAuditEvent};
use exogate_core::model::{CompanyId, Entitlement, Role, Timestamp, UserId};
use exogate_core::notifications::*;
use exogate_core::tools::RiskLevel;
use serde_json::json;

fn uid(n: u128) -> UserId {
    UserId::from_uuid(uuid::Uuid::from_u128(n))
}

fn user(n: u128, role: Role, ent: &str) -> UserFacts {
    UserFacts {
        id: uid(n),
        role,
        entitlement: Entitlement::parse(ent).unwrap(),
        disabled: false,
        email: Some(format!("u{n}@msp.example")),
        topics: Topics::all(),
    }
}

fn event(
    kind: &str,
    company: Option<&str>,
    actor: Option<u128>,
    detail: serde_json::Value,
    at: i64,
) -> AuditEvent {
    AuditEvent {
        seq: 7,
        prev_hash: String::new(),
        hash: String::new(),
        event: NewAuditEvent {
            at: Timestamp::from_unix_millis(at),
            kind: kind.to_owned(),
            actor_id: actor.map(|a| uid(a).to_string()),
            actor_name: actor.map(|a| format!("u{a}")),
            channel: "web".into(),
            company: company.map(str::to_owned),
            request: Some("01a23dbb-21b8-77cb-8d84-b0f8f69f7ff7".into()),
            detail: detail.to_string(),
        },
    }
}

fn emails(items: &[OutboxItem]) -> BTreeSet<String> {
    items
        .iter()
        .filter_map(|i| match &i.target {
            Target::Email { address, .. } => Some(address.clone()),
            Target::Webhook { .. } => None,
        })
        .collect()
}

fn world() -> Facts {
    let mut disabled = user(6, Role::Admin, "*");
    disabled.disabled = true;
    let mut no_alerts = user(7, Role::Admin, "*");
    no_alerts.topics = Topics::parse("approval_waiting").unwrap();
    Facts {
        request: Some(RequestFacts {
            requester: uid(2),
            requester_name: "u2".into(),
            risk: RiskLevel::High,
            summary: "grant".into(),
        }),
        company_name: Some("Contoso".into()),
        separate_approver: false,
        users: vec![
            user(1, Role::Admin, "*"),
            user(2, Role::Manager, "contoso"),
            user(3, Role::Manager, "contoso"),
            user(4, Role::Technician, "contoso"),
            user(5, Role::Manager, "fabrikam"),
            disabled,
            no_alerts,
        ],
        endpoints: vec![
            EndpointFacts {
                id: "all".into(),
                company: None,
            },
            EndpointFacts {
                id: "fab".into(),
                company: Some(CompanyId::parse("fabrikam").unwrap()),
            },
        ],
        ..Facts::default()
    }
}

fn set(v: &[u128]) -> BTreeSet<String> {
    v.iter().map(|n| format!("u{n}@msp.example")).collect()
}

#[test]
fn approvers_entitled_with_the_role_hear_of_a_waiting_request_and_four_eyes_leaves_out_the_requester()
 {
    let ev = event("request.created", Some("contoso"), Some(2), json!({}), 0);
    let mut f = world();
    let out = route(&ev, &f);
    assert_eq!(emails(&out), set(&[1, 2, 3, 7]));
    let hooks: Vec<_> = out
        .iter()
        .filter(|i| matches!(i.target, Target::Webhook { .. }))
        .collect();
    assert_eq!(hooks.len(), 1, "the global endpoint, not fabrikam's");
    assert!(out.iter().all(|i| i.id.starts_with("ntf_7_")));
    f.separate_approver = true;
    assert_eq!(emails(&route(&ev, &f)), set(&[1, 3, 7]));
    f.request.as_mut().unwrap().risk = RiskLevel::Low;
    assert_eq!(emails(&route(&ev, &f)), set(&[1, 3, 4, 7]));
}

#[test]
fn the_requester_hears_of_decisions_and_outcomes_unless_they_acted_themself() {
    let f = world();
    for (kind, detail) in [
        ("request.approved", json!({})),
        ("request.rejected", json!({"reason": "no"})),
        ("execution.finished", json!({"state": "succeeded"})),
        (
            "execution.finished",
            json!({"state": "failed", "message": "boom"}),
        ),
        ("execution.refused", json!({"code": "x"})),
    ] {
        let out = route(&event(kind, Some("contoso"), Some(3), detail, 0), &f);
        assert_eq!(emails(&out), set(&[2]), "{kind}");
        assert_eq!(out[0].message.topic, Topic::RequestOutcome);
    }
    assert!(
        emails(&route(
            &event("request.approved", Some("contoso"), Some(2), json!({}), 0),
            &f
        ))
        .is_empty()
    );
    assert!(
        route(
            &event("execution.step", Some("contoso"), None, json!({}), 0),
            &f
        )
        .is_empty()
    );
}

#[test]
fn admins_hear_of_drift_and_failed_timed_removals_by_kind_string() {
    let f = world();
    for kind in [KIND_DRIFT_FOUND, KIND_GRANT_END_FAILED] {
        let out = route(
            &event(
                kind,
                Some("contoso"),
                None,
                json!({"mailbox": "sales", "trustee": "bob"}),
                0,
            ),
            &f,
        );
        assert_eq!(
            emails(&out),
            set(&[1]),
            "{kind}: admins only, not the disabled one or one without alerts"
        );
        assert!(out[0].message.text.contains("mailbox: sales"));
    }
}

#[test]
fn a_failing_sweep_alerts_once_after_a_day() {
    let day = SWEEP_FAILING_ALERT_AFTER_MS;
    let mut f = world();
    f.request = None;
    f.sweep_failing_since = Some(Timestamp::from_unix_millis(1_000));
    let ev = |at| {
        event(
            "inventory.sweep_failed",
            Some("contoso"),
            None,
            json!({"error": "403"}),
            at,
        )
    };
    assert!(
        route(&ev(1_000 + day - 1), &f).is_empty(),
        "less than a day"
    );
    assert_eq!(emails(&route(&ev(1_000 + day), &f)), set(&[1]));
    f.sweep_already_alerted = true;
    assert!(
        route(&ev(1_000 + 2 * day), &f).is_empty(),
        "once per failing stretch"
    );
}

#[test]
fn hostile_tenant_text_is_escaped_for_each_channel() {
    let hostile = "<b>x</b> *y* [z](http://evil.example) a\u{202E}b\r\nBcc: c";
    let mut f = world();
    f.request.as_mut().unwrap().summary = hostile.into();
    f.company_name = Some(hostile.into());
    let out = route(
        &event("request.created", Some("contoso"), Some(2), json!({}), 0),
        &f,
    );
    let m = &out[0].message;
    assert!(!m.text.contains('\u{202E}') && !m.text.contains('\r') && !m.text.contains('\n'));
    let (subject, body) = render_mail(m, "https://x.example");
    assert!(
        !subject.contains('\r') && !subject.contains('\n'),
        "no header injection: {subject:?}"
    );
    assert!(body.contains("<U+202E>"));
    let teams = render_teams(m, "https://x.example").to_string();
    assert!(
        !teams.contains("<b>") && !teams.contains("[z](") && teams.contains("\\\\*y\\\\*"),
        "{teams}"
    );
    let slack = render_slack(m, "https://x.example").to_string();
    assert!(
        !slack.contains("<b>") && slack.contains("&lt;b&gt;"),
        "{slack}"
    );
    assert!(
        !slack.contains("<http"),
        "no Slack link markup from tenant text"
    );
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    assert_eq!(
        (1..=6)
            .map(|a| backoff_ms(a, 100, 1_000))
            .collect::<Vec<_>>(),
        [100, 200, 400, 800, 1_000, 1_000]
    );
}
