//! Readiness check: every badge state from the matching emulator set-up.

use std::time::Duration;

use exogate_exchange::{AppConfig, Limits, M365Client, ReadinessReason, ReadinessState, Resource};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn demo_tenants_give_their_design_states() {
    let w = World::demo().await;
    let client = w.client();
    let r = client.check_readiness(CONTOSO).await;
    assert_eq!(r.state, ReadinessState::Configured, "{r:?}");
    assert_eq!(r.evidence.probe_status, Some(200));
    assert!(r.evidence.roles.iter().any(|x| x == "Exchange.ManageAsApp"));
    assert!(r.evidence.wids.iter().any(|x| x == EXCHANGE_ADMINISTRATOR));
    assert_eq!(
        r.evidence.token_tenant.as_deref(),
        Some(CONTOSO.to_string().as_str())
    );

    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["state"], "configured");
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["evidence"]["probe_status"], 200);

    let r = client.check_readiness(FABRIKAM).await;
    assert_eq!(r.state, ReadinessState::RoleMissing, "{r:?}");
    assert_eq!(r.reason, ReadinessReason::NoDirectoryRole);

    let r = client.check_readiness(NORTHWIND).await;
    assert_eq!(r.state, ReadinessState::NotConfigured, "{r:?}");
    assert_eq!(r.reason, ReadinessReason::AppNotConsented);

    let r = client.check_readiness(TAILSPIN).await;
    assert_eq!(r.state, ReadinessState::TenantNotFound, "{r:?}");
    assert_eq!(r.state.as_str(), "tenant_not_found");
}

#[tokio::test]
async fn wrong_secret_is_app_credentials_invalid() {
    let w = World::demo().await;
    let mut cfg = w.config(Limits::default());
    cfg.exchange_app = AppConfig::with_secret(EXCHANGE_APP, "expired-or-wrong");
    let client = M365Client::new(cfg).unwrap();
    let r = client.check_readiness(CONTOSO).await;
    assert_eq!(r.state, ReadinessState::AppCredentialsInvalid, "{r:?}");
}

#[tokio::test]
async fn token_without_exchange_permission_is_not_configured() {
    // The connect app is consented in Contoso but holds no Exchange.ManageAsApp: its Exchange
    // token has no `roles`, which is what a consent that predates the permission looks like.
    let w = World::demo().await;
    let mut cfg = w.config(Limits::default());
    cfg.exchange_app = AppConfig::with_secret(CONNECT_APP, CONNECT_SECRET);
    let client = M365Client::new(cfg).unwrap();
    let r = client.check_readiness(CONTOSO).await;
    assert_eq!(r.state, ReadinessState::NotConfigured, "{r:?}");
    assert_eq!(r.reason, ReadinessReason::ExchangePermissionMissing);
    assert_eq!(
        r.evidence.probe_status, None,
        "no probe without the permission"
    );
}

#[tokio::test]
async fn global_reader_is_role_missing_read_only() {
    let w = World::demo().await;
    w.assign_role(FABRIKAM, EXCHANGE_APP, GLOBAL_READER).await;
    let r = w.client().check_readiness(FABRIKAM).await;
    assert_eq!(r.state, ReadinessState::RoleMissing, "{r:?}");
    assert_eq!(r.reason, ReadinessReason::ReadOnlyRole);
}

#[tokio::test]
async fn role_assigned_after_a_token_was_cached_is_seen_on_the_next_check() {
    let w = World::demo().await;
    let client = w.client();
    let cached = client
        .tokens()
        .get(FABRIKAM, Resource::Exchange)
        .await
        .unwrap();
    assert!(
        !cached
            .claims
            .wids
            .iter()
            .any(|x| x == EXCHANGE_ADMINISTRATOR)
    );
    assert_eq!(
        client.check_readiness(FABRIKAM).await.state,
        ReadinessState::RoleMissing
    );
    w.assign_role(FABRIKAM, EXCHANGE_APP, EXCHANGE_ADMINISTRATOR)
        .await;
    let r = client.check_readiness(FABRIKAM).await;
    assert_eq!(r.state, ReadinessState::Configured, "{r:?}");
}

#[tokio::test]
async fn propagating_turns_configured_once_the_delay_passes() {
    let w = World::demo().await;
    w.freeze_emulator_clock().await;
    w.knobs(None, json!({"role_propagation_delay_secs": 120}))
        .await;
    w.assign_role(FABRIKAM, EXCHANGE_APP, EXCHANGE_ADMINISTRATOR)
        .await;
    let client = w.client();

    let r = client.check_readiness(FABRIKAM).await;
    assert_eq!(r.state, ReadinessState::Propagating, "{r:?}");
    assert_eq!(r.evidence.probe_status, Some(403));
    assert!(
        r.evidence.probe_attempts >= 2,
        "403 retried with fresh tokens: {r:?}"
    );
    assert!(matches!(r.reason, ReadinessReason::WaitingForRole { .. }));

    w.advance_emulator_clock(Duration::from_secs(121)).await;
    let r = client.check_readiness(FABRIKAM).await;
    assert_eq!(r.state, ReadinessState::Configured, "{r:?}");
}

#[tokio::test]
async fn propagating_becomes_role_missing_after_the_window() {
    let w = World::demo().await;
    w.freeze_emulator_clock().await;
    w.knobs(None, json!({"role_propagation_delay_secs": 3600}))
        .await;
    w.assign_role(FABRIKAM, EXCHANGE_APP, EXCHANGE_ADMINISTRATOR)
        .await;
    let limits = Limits {
        role_propagation_window: Duration::from_secs(180),
        ..Limits::default()
    };
    let client = w.client_with(limits);
    assert_eq!(
        client.check_readiness(FABRIKAM).await.state,
        ReadinessState::Propagating
    );
    w.clock.advance(Duration::from_secs(60));
    assert_eq!(
        client.check_readiness(FABRIKAM).await.state,
        ReadinessState::Propagating
    );
    w.clock.advance(Duration::from_secs(150));
    let r = client.check_readiness(FABRIKAM).await;
    assert_eq!(r.state, ReadinessState::RoleMissing, "{r:?}");
    assert!(matches!(r.reason, ReadinessReason::RoleRefused { .. }));
}

#[tokio::test]
async fn server_errors_are_check_failed() {
    let w = World::demo().await;
    w.knobs(Some(CONTOSO), json!({"error_5xx_rate": 1.0})).await;
    let r = w.client().check_readiness(CONTOSO).await;
    assert_eq!(r.state, ReadinessState::CheckFailed, "{r:?}");
    assert!(matches!(r.reason, ReadinessReason::ProbeFailed { .. }));
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["state"], "check_failed");
    assert_eq!(v["reason"], "probe_failed");
    assert_eq!(v["error"]["kind"], "transient", "{v}");
    assert!(
        w.clock.sleeps().len() >= 4,
        "retried with backoff: {:?}",
        w.clock.sleeps()
    );
}
