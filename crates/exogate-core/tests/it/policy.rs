use exogate_core::policy::*;
use exogate_core::request::RequestState;
use exogate_core::tools::RiskLevel;
use exogate_core::*;
use uuid::Uuid;

use crate::support::*;

fn decide(
    approver: &User,
    channel: Channel,
    company: &Company,
    req: &exogate_core::request::ApprovalRequest,
    now: Timestamp,
) -> Result<(), &'static str> {
    can_decide(&actor(approver, channel), company, req, now).map_err(|e| e.code())
}

#[test]
fn technician_cannot_approve_high() {
    let requester = user("tech1", Role::Technician, &["contoso"]);
    let tech = user("tech2", Role::Technician, &["contoso"]);
    let mgr = user("mgr", Role::Manager, &["contoso"]);
    let admin = user("adm", Role::Admin, &["*"]);
    let req = request_for("contoso", &requester);
    let c = company("contoso", false);
    assert_eq!(req.risk, RiskLevel::High);
    assert_eq!(
        decide(&tech, Channel::Web, &c, &req, t(1)),
        Err("role_too_low")
    );
    assert_eq!(decide(&mgr, Channel::Web, &c, &req, t(1)), Ok(()));
    assert_eq!(decide(&admin, Channel::Api, &c, &req, t(1)), Ok(()));
    // Medium risk: a technician may approve.
    let mut medium = req.clone();
    medium.risk = RiskLevel::Medium;
    assert_eq!(decide(&tech, Channel::Web, &c, &medium, t(1)), Ok(()));
    assert_eq!(role_to_approve(RiskLevel::High), Role::Manager);
    assert_eq!(role_to_approve(RiskLevel::Low), Role::Technician);
}

#[test]
fn separate_approver_forbids_own_request_including_own_agent() {
    let mgr = user("mgr", Role::Manager, &["contoso"]);
    let mut req = request_for("contoso", &mgr);
    let strict = company("contoso", true);
    let lax = company("contoso", false);
    assert_eq!(
        decide(&mgr, Channel::Web, &strict, &req, t(1)),
        Err("own_request")
    );
    // The request came from the manager's agent through MCP; approving in the web app is still refused.
    req.requester.channel = Channel::Mcp {
        token: ApiTokenId::from_uuid(Uuid::new_v4()),
        agent: Some("claude".into()),
    };
    assert_eq!(
        decide(&mgr, Channel::Web, &strict, &req, t(1)),
        Err("own_request")
    );
    // Another manager may.
    let other = user("mgr2", Role::Manager, &["contoso"]);
    assert_eq!(decide(&other, Channel::Web, &strict, &req, t(1)), Ok(()));
    // Without the setting the requester may approve.
    assert_eq!(decide(&mgr, Channel::Web, &lax, &req, t(1)), Ok(()));
}

#[test]
fn not_entitled_cannot_see_or_decide() {
    let requester = user("tech", Role::Technician, &["contoso"]);
    let outsider = user("mgr-f", Role::Manager, &["fabrikam"]);
    let req = request_for("contoso", &requester);
    assert_eq!(can_view(&outsider, &req.company), Err(Denial::NotEntitled));
    assert_eq!(
        decide(
            &outsider,
            Channel::Web,
            &company("contoso", false),
            &req,
            t(1)
        ),
        Err("not_entitled")
    );
    assert_eq!(
        can_cancel(&actor(&outsider, Channel::Web), &req).map_err(|e| e.code()),
        Err("not_entitled")
    );
    assert_eq!(
        can_request(&outsider, &req.company),
        Err(Denial::NotEntitled)
    );
}

#[test]
fn expired_cannot_be_approved() {
    let requester = user("tech", Role::Technician, &["contoso"]);
    let mgr = user("mgr", Role::Manager, &["*"]);
    let req = request_for("contoso", &requester);
    let c = company("contoso", false);
    let expiry = 24 * 3600;
    assert_eq!(decide(&mgr, Channel::Web, &c, &req, t(expiry - 1)), Ok(()));
    assert_eq!(
        decide(&mgr, Channel::Web, &c, &req, t(expiry)),
        Err("request_expired")
    );
    assert_eq!(
        decide(&mgr, Channel::Web, &c, &req, t(expiry + 1)),
        Err("request_expired")
    );
}

#[test]
fn disabled_users_cannot_act_and_mcp_cannot_decide() {
    let requester = user("tech", Role::Technician, &["contoso"]);
    let mut mgr = user("mgr", Role::Manager, &["*"]);
    let req = request_for("contoso", &requester);
    let c = company("contoso", false);
    let mcp = Channel::Mcp {
        token: ApiTokenId::from_uuid(Uuid::new_v4()),
        agent: None,
    };
    assert_eq!(decide(&mgr, mcp, &c, &req, t(1)), Err("decision_via_mcp"));
    mgr.disabled = true;
    assert_eq!(
        decide(&mgr, Channel::Web, &c, &req, t(1)),
        Err("user_disabled")
    );
    assert_eq!(can_view(&mgr, &req.company), Err(Denial::UserDisabled));
    assert_eq!(can_admin(&mgr), Err(Denial::UserDisabled));
}

#[test]
fn decided_requests_cannot_be_decided_again_and_cancel_rules() {
    let requester = user("tech", Role::Technician, &["contoso"]);
    let other_tech = user("tech2", Role::Technician, &["contoso"]);
    let mgr = user("mgr", Role::Manager, &["*"]);
    let mut req = request_for("contoso", &requester);
    let c = company("contoso", false);
    assert_eq!(
        can_cancel(&actor(&requester, Channel::Cli), &req).map_err(|e| e.code()),
        Ok(())
    );
    assert_eq!(
        can_cancel(&actor(&other_tech, Channel::Web), &req).map_err(|e| e.code()),
        Err("not_requester")
    );
    assert_eq!(
        can_cancel(&actor(&mgr, Channel::Web), &req).map_err(|e| e.code()),
        Ok(())
    );
    req.state = RequestState::Rejected;
    assert_eq!(
        decide(&mgr, Channel::Web, &c, &req, t(1)),
        Err("already_decided")
    );
    assert_eq!(
        can_cancel(&actor(&requester, Channel::Cli), &req).map_err(|e| e.code()),
        Err("already_decided")
    );
}

#[test]
fn viewers_see_but_cannot_request() {
    let v = user("viewer", Role::Viewer, &["contoso"]);
    assert_eq!(can_view(&v, &cid("contoso")), Ok(()));
    assert_eq!(
        can_request(&v, &cid("contoso")),
        Err(Denial::RoleTooLow {
            needed: Role::Technician
        })
    );
    assert_eq!(
        can_manage_company(&user("t", Role::Technician, &["*"]), &cid("contoso")),
        Err(Denial::RoleTooLow {
            needed: Role::Manager
        })
    );
}
