//! The approval policy: who may see, ask, decide and cancel. Pure functions returning typed
//! denials; `ops` calls them before touching Microsoft or the store.

use crate::error::{ConflictReason, CoreError, Denial};
use crate::model::{Actor, Company, CompanyId, Role, Timestamp, User};
use crate::request::{ApprovalRequest, RequestState};
use crate::tools::RiskLevel;

/// The role a decision on a request of this risk needs.
pub fn role_to_approve(risk: RiskLevel) -> Role {
    match risk {
        RiskLevel::High => Role::Manager,
        RiskLevel::Medium | RiskLevel::Low => Role::Technician,
    }
}

fn active(user: &User) -> Result<(), Denial> {
    if user.disabled {
        return Err(Denial::UserDisabled);
    }
    Ok(())
}

fn role_at_least(user: &User, needed: Role) -> Result<(), Denial> {
    if user.role < needed {
        return Err(Denial::RoleTooLow { needed });
    }
    Ok(())
}

/// Seeing a company, its status, its read tools and its requests: any active, entitled user.
pub fn can_view(user: &User, company: &CompanyId) -> Result<(), Denial> {
    active(user)?;
    if !user.entitlement.covers(company) {
        return Err(Denial::NotEntitled);
    }
    Ok(())
}

/// Asking for a change: technician or higher, entitled.
pub fn can_request(user: &User, company: &CompanyId) -> Result<(), Denial> {
    can_view(user, company)?;
    role_at_least(user, Role::Technician)
}

/// Connecting, re-checking or reconnecting a company: technician or higher, entitled.
pub fn can_connect(user: &User, company: &CompanyId) -> Result<(), Denial> {
    can_request(user, company)
}

/// Disconnecting or renaming a company: manager or higher, entitled.
pub fn can_manage_company(user: &User, company: &CompanyId) -> Result<(), Denial> {
    can_view(user, company)?;
    role_at_least(user, Role::Manager)
}

/// Turning a company's separate-approver rule (four eyes) on or off: an admin, entitled, in
/// person (not through MCP or an API token: an agent must not waive the rule that keeps its
/// owner from approving what it asked for). A manager cannot waive it either.
pub fn can_set_separate_approver(actor: &Actor, company: &CompanyId) -> Result<(), Denial> {
    active(&actor.user)?;
    if actor.channel.is_mcp() {
        return Err(Denial::DecisionViaMcp);
    }
    can_view(&actor.user, company)?;
    role_at_least(&actor.user, Role::Admin)
}

/// Adding companies, managing users and other people's tokens: admin.
pub fn can_admin(user: &User) -> Result<(), Denial> {
    active(user)?;
    role_at_least(user, Role::Admin)
}

/// Approving or rejecting `req` at `now`. Checks, in order: active user, not through MCP,
/// entitlement, role for the risk, separate approver, the request is pending, not expired.
pub fn can_decide(
    actor: &Actor,
    company: &Company,
    req: &ApprovalRequest,
    now: Timestamp,
) -> Result<(), CoreError> {
    active(&actor.user).map_err(CoreError::forbidden)?;
    if actor.channel.is_mcp() {
        return Err(CoreError::forbidden(Denial::DecisionViaMcp));
    }
    can_view(&actor.user, &req.company).map_err(CoreError::forbidden)?;
    role_at_least(&actor.user, role_to_approve(req.risk)).map_err(CoreError::forbidden)?;
    if company.separate_approver && req.requester.user == actor.user.id {
        return Err(CoreError::forbidden(Denial::OwnRequest));
    }
    if req.state != RequestState::Pending {
        return Err(CoreError::conflict(ConflictReason::AlreadyDecided {
            state: req.state.as_str(),
        }));
    }
    if req.is_expired(now) {
        return Err(CoreError::conflict(ConflictReason::Expired));
    }
    Ok(())
}

/// Cancelling: the requester (any channel, including their agent) or a manager entitled to the
/// company; only while pending or approved-not-started.
pub fn can_cancel(actor: &Actor, req: &ApprovalRequest) -> Result<(), CoreError> {
    can_view(&actor.user, &req.company).map_err(CoreError::forbidden)?;
    if req.requester.user != actor.user.id && actor.user.role < Role::Manager {
        return Err(CoreError::forbidden(Denial::NotRequester));
    }
    if !matches!(req.state, RequestState::Pending | RequestState::Approved) {
        return Err(CoreError::conflict(ConflictReason::AlreadyDecided {
            state: req.state.as_str(),
        }));
    }
    // (timed-grants) A grant's end moves only through a new approved request.
    if req.ends_grant.is_some() {
        return Err(CoreError::invalid(
            "request",
            "this is the scheduled end of a timed grant: to move it, ask for the grant again with a new `duration` or `until` (it needs approval)".to_owned(),
        ));
    }
    Ok(())
}
