//! Helpers: `user(role, entitlement)`, `company(id)`, `request_for(company, requester)`,
//! `action(company)`, `actor(user, channel)`, `t(secs)`.

use std::collections::BTreeSet;

use exogate_core::action::{
    CanonicalAction, Operation, OperationKind, Permission, Presence, digest_actions,
};
use exogate_core::request::{ApprovalRequest, RequestState};
use exogate_core::tools::{RiskLevel, ToolName};
use exogate_core::*;
use uuid::Uuid;

pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_secs(1_800_000_000 + secs)
}

pub fn cid(s: &str) -> CompanyId {
    CompanyId::parse(s).unwrap()
}

pub fn tenant() -> TenantId {
    TenantId::parse("11111111-1111-4111-8111-111111111111").unwrap()
}

pub fn user(name: &str, role: Role, companies: &[&str]) -> User {
    let entitlement = if companies == ["*"] {
        Entitlement::All
    } else {
        Entitlement::Companies(companies.iter().map(|c| cid(c)).collect::<BTreeSet<_>>())
    };
    User {
        id: UserId::from_uuid(Uuid::new_v4()),
        name: UserName::parse(name).unwrap(),
        role,
        entitlement,
        disabled: false,
        password_hash: None,
        created_at: t(0),
    }
}

pub fn actor(user: &User, channel: Channel) -> Actor {
    Actor {
        user: user.clone(),
        channel,
    }
}

pub fn company(id: &str, separate_approver: bool) -> Company {
    Company {
        id: cid(id),
        name: id.to_owned(),
        connection: None,
        exchange_status: None,
        separate_approver,
        created_at: t(0),
    }
}

pub fn ident(name: &str, n: u32) -> ResolvedIdentity {
    ResolvedIdentity {
        object_id: format!("00000000-0000-4000-8000-{n:012}"),
        primary_address: format!("{name}@contoso.onmicrosoft.com"),
        display_name: name.to_owned(),
        kind: RecipientKind::UserMailbox,
    }
}

pub fn action(company: &str) -> CanonicalAction {
    CanonicalAction::new(
        cid(company),
        tenant(),
        Operation {
            kind: OperationKind::Grant,
            permission: Permission::FullAccess,
        },
        ident("sales", 1),
        ident("bob", 2),
        None,
        Presence::Absent,
    )
}

pub fn request_for(company: &str, requester: &User) -> ApprovalRequest {
    let actions = vec![action(company)];
    ApprovalRequest {
        id: RequestId::from_uuid(Uuid::now_v7()),
        company: cid(company),
        tenant: tenant(),
        tool: ToolName::GrantFullAccess,
        risk: RiskLevel::High,
        requester: Requester {
            user: requester.id,
            user_name: requester.name.clone(),
            channel: Channel::Web,
        },
        digest: digest_actions(&actions),
        actions,
        state: RequestState::Pending,
        created_at: t(0),
        expires_at: t(24 * 3600),
        decision: None,
        cancellation: None,
        attempt: 0,
        lease: None,
        results: vec![],
        finished_at: None,
        message: None,
        revert_of: None,
        not_before: None,
        ends_grant: None,
        ticket: None,
    }
}
