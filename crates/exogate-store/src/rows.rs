//! Row types (plain columns, decoded the same way on both backends) and their conversion to and
//! from the domain types. Parsing failures become `StoreError::Corrupt`.

use exogate_core::action::{Presence, decode_actions};
use exogate_core::audit::{AuditEvent, NewAuditEvent};
use exogate_core::model::*;
use exogate_core::oauth::{OAuthClient, OAuthCode, OAuthGrant, OAuthToken, TokenKind};
use exogate_core::ports::StoreError;
use exogate_core::request::{
    ApprovalRequest, Cancellation, Decision, Lease, OpOutcome, OperationResult, RequestState,
};
use exogate_core::tools::{RiskLevel, ToolName};

fn corrupt(what: &str, v: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} `{v}`"))
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_unix_millis)
}

macro_rules! company_cols {
    () => {
        "id, name, separate_approver, created_at, tenant_id, tenant_display_name, tenant_default_domain, connected_at, status_state, status_checked_at, status_last_good_at, status_last_good_state, status_detail"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct CompanyRow {
    id: String,
    name: String,
    separate_approver: bool,
    created_at: i64,
    tenant_id: Option<String>,
    tenant_display_name: Option<String>,
    tenant_default_domain: Option<String>,
    connected_at: Option<i64>,
    status_state: Option<String>,
    status_checked_at: Option<i64>,
    status_last_good_at: Option<i64>,
    status_last_good_state: Option<String>,
    status_detail: Option<String>,
}

impl TryFrom<CompanyRow> for Company {
    type Error = StoreError;
    fn try_from(r: CompanyRow) -> Result<Self, StoreError> {
        let id = CompanyId::parse(&r.id).map_err(|_| corrupt("company id", &r.id))?;
        let connection = match r.tenant_id {
            Some(t) => Some(Connection {
                tenant_id: TenantId::parse(&t).map_err(|_| corrupt("tenant id", &t))?,
                display_name: r.tenant_display_name.unwrap_or_default(),
                default_domain: r.tenant_default_domain.unwrap_or_default(),
                connected_at: Timestamp::from_unix_millis(r.connected_at.unwrap_or(0)),
            }),
            None => None,
        };
        let exchange_status = match r.status_state {
            Some(s) => Some(StatusRecord {
                state: ExchangeAdminState::parse(&s).ok_or_else(|| corrupt("status", &s))?,
                checked_at: Timestamp::from_unix_millis(r.status_checked_at.unwrap_or(0)),
                last_good_at: ts(r.status_last_good_at),
                last_good_state: match r.status_last_good_state {
                    Some(g) => {
                        Some(ExchangeAdminState::parse(&g).ok_or_else(|| corrupt("status", &g))?)
                    }
                    None => None,
                },
                detail: r.status_detail.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(Company {
            id,
            name: r.name,
            connection,
            exchange_status,
            separate_approver: r.separate_approver,
            created_at: Timestamp::from_unix_millis(r.created_at),
        })
    }
}

macro_rules! user_cols {
    () => {
        "id, name, role, entitlement, disabled, password_hash, created_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    name: String,
    role: String,
    entitlement: String,
    disabled: bool,
    password_hash: Option<String>,
    created_at: i64,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: UserId::parse(&r.id).map_err(|_| corrupt("user id", &r.id))?,
            name: UserName::parse(&r.name).map_err(|_| corrupt("user name", &r.name))?,
            role: Role::parse(&r.role).map_err(|_| corrupt("role", &r.role))?,
            entitlement: Entitlement::parse(&r.entitlement)
                .map_err(|_| corrupt("entitlement", &r.entitlement))?,
            disabled: r.disabled,
            password_hash: r.password_hash.map(PasswordHash::new),
            created_at: Timestamp::from_unix_millis(r.created_at),
        })
    }
}

macro_rules! token_cols {
    () => {
        "id, owner_id, name, secret_hash, created_at, last_used_at, revoked_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct TokenRow {
    id: String,
    owner_id: String,
    name: String,
    secret_hash: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<TokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(r: TokenRow) -> Result<Self, StoreError> {
        Ok(ApiToken {
            id: ApiTokenId::parse(&r.id).map_err(|_| corrupt("token id", &r.id))?,
            owner: UserId::parse(&r.owner_id).map_err(|_| corrupt("user id", &r.owner_id))?,
            name: r.name,
            secret_hash: r.secret_hash,
            created_at: Timestamp::from_unix_millis(r.created_at),
            last_used_at: ts(r.last_used_at),
            revoked_at: ts(r.revoked_at),
        })
    }
}

macro_rules! request_cols {
    () => {
        "id, company_id, tenant_id, tool, risk, requester_id, requester_name, channel, channel_token_id, channel_agent, actions, digest, state, created_at, expires_at, decided_by, decided_by_name, decided_at, decision_approved, decision_reason, decision_digest, cancelled_by, cancelled_by_name, cancelled_at, attempt, lease_worker, lease_expires_at, results, finished_at, message, revert_of, not_before, ends_grant, ticket"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct RequestRow {
    id: String,
    company_id: String,
    tenant_id: String,
    tool: String,
    risk: String,
    requester_id: String,
    requester_name: String,
    channel: String,
    channel_token_id: Option<String>,
    channel_agent: Option<String>,
    actions: String,
    digest: String,
    state: String,
    created_at: i64,
    expires_at: i64,
    decided_by: Option<String>,
    decided_by_name: Option<String>,
    decided_at: Option<i64>,
    decision_approved: Option<bool>,
    decision_reason: Option<String>,
    decision_digest: Option<String>,
    cancelled_by: Option<String>,
    cancelled_by_name: Option<String>,
    cancelled_at: Option<i64>,
    attempt: i64,
    lease_worker: Option<String>,
    lease_expires_at: Option<i64>,
    results: String,
    finished_at: Option<i64>,
    message: Option<String>,
    revert_of: Option<String>,
    // (timed-grants)
    not_before: Option<i64>,
    ends_grant: Option<String>,
    // (cli-requests)
    ticket: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct ResultJson {
    outcome: String,
    before: Option<String>,
    after: Option<String>,
    verified: bool,
    message: String,
}

pub(crate) fn encode_results(results: &[OperationResult]) -> String {
    let list: Vec<ResultJson> = results
        .iter()
        .map(|r| ResultJson {
            outcome: r.outcome.as_str().to_owned(),
            before: r.before.map(|p| p.as_str().to_owned()),
            after: r.after.map(|p| p.as_str().to_owned()),
            verified: r.verified,
            message: r.message.clone(),
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_owned())
}

fn decode_results(s: &str) -> Result<Vec<OperationResult>, StoreError> {
    let list: Vec<ResultJson> = serde_json::from_str(s).map_err(|_| corrupt("results", s))?;
    let presence = |p: Option<String>| -> Result<Option<Presence>, StoreError> {
        match p {
            Some(v) => Presence::parse(&v)
                .map(Some)
                .ok_or_else(|| corrupt("presence", &v)),
            None => Ok(None),
        }
    };
    list.into_iter()
        .map(|r| {
            Ok(OperationResult {
                outcome: OpOutcome::parse(&r.outcome)
                    .ok_or_else(|| corrupt("outcome", &r.outcome))?,
                before: presence(r.before)?,
                after: presence(r.after)?,
                verified: r.verified,
                message: r.message,
            })
        })
        .collect()
}

pub(crate) fn channel_columns(c: &Channel) -> (&'static str, Option<String>, Option<String>) {
    match c {
        Channel::Mcp { token, agent } => ("mcp", Some(token.to_string()), agent.clone()),
        other => (other.kind(), None, None),
    }
}

impl TryFrom<RequestRow> for ApprovalRequest {
    type Error = StoreError;
    fn try_from(r: RequestRow) -> Result<Self, StoreError> {
        let uid = |s: &str| UserId::parse(s).map_err(|_| corrupt("user id", s));
        let channel = match r.channel.as_str() {
            "web" => Channel::Web,
            "api" => Channel::Api,
            "cli" => Channel::Cli,
            "mcp" => {
                let t = r.channel_token_id.as_deref().unwrap_or("");
                Channel::Mcp {
                    token: ApiTokenId::parse(t).map_err(|_| corrupt("token id", t))?,
                    agent: r.channel_agent,
                }
            }
            other => return Err(corrupt("channel", other)),
        };
        let decision = match (r.decided_by, r.decided_at) {
            (Some(by), Some(at)) => Some(Decision {
                by: uid(&by)?,
                by_name: UserName::parse(r.decided_by_name.as_deref().unwrap_or("")).map_err(
                    |_| corrupt("user name", r.decided_by_name.as_deref().unwrap_or("")),
                )?,
                at: Timestamp::from_unix_millis(at),
                approved: r.decision_approved.unwrap_or(false),
                reason: r.decision_reason,
                digest: r.decision_digest.unwrap_or_default(),
            }),
            _ => None,
        };
        let cancellation = match (r.cancelled_by, r.cancelled_at) {
            (Some(by), Some(at)) => Some(Cancellation {
                by: uid(&by)?,
                by_name: UserName::parse(r.cancelled_by_name.as_deref().unwrap_or("")).map_err(
                    |_| corrupt("user name", r.cancelled_by_name.as_deref().unwrap_or("")),
                )?,
                at: Timestamp::from_unix_millis(at),
            }),
            _ => None,
        };
        let lease = match (r.lease_worker, r.lease_expires_at) {
            (Some(worker), Some(at)) => Some(Lease {
                worker,
                expires_at: Timestamp::from_unix_millis(at),
            }),
            _ => None,
        };
        Ok(ApprovalRequest {
            id: RequestId::parse(&r.id).map_err(|_| corrupt("request id", &r.id))?,
            company: CompanyId::parse(&r.company_id)
                .map_err(|_| corrupt("company id", &r.company_id))?,
            tenant: TenantId::parse(&r.tenant_id)
                .map_err(|_| corrupt("tenant id", &r.tenant_id))?,
            tool: ToolName::parse(&r.tool).ok_or_else(|| corrupt("tool", &r.tool))?,
            risk: RiskLevel::parse(&r.risk).ok_or_else(|| corrupt("risk", &r.risk))?,
            requester: Requester {
                user: uid(&r.requester_id)?,
                user_name: UserName::parse(&r.requester_name)
                    .map_err(|_| corrupt("user name", &r.requester_name))?,
                channel,
            },
            actions: decode_actions(&r.actions).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            digest: r.digest,
            state: RequestState::parse(&r.state).ok_or_else(|| corrupt("state", &r.state))?,
            created_at: Timestamp::from_unix_millis(r.created_at),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            decision,
            cancellation,
            attempt: u32::try_from(r.attempt)
                .map_err(|_| corrupt("attempt", &r.attempt.to_string()))?,
            lease,
            results: decode_results(&r.results)?,
            finished_at: ts(r.finished_at),
            message: r.message,
            revert_of: match r.revert_of {
                Some(s) => Some(RequestId::parse(&s).map_err(|_| corrupt("request id", &s))?),
                None => None,
            },
            // (timed-grants)
            not_before: ts(r.not_before),
            ends_grant: match r.ends_grant {
                Some(s) => Some(RequestId::parse(&s).map_err(|_| corrupt("request id", &s))?),
                None => None,
            },
            // (cli-requests)
            ticket: r.ticket,
        })
    }
}

macro_rules! audit_cols {
    () => {
        "seq, prev_hash, hash, at, kind, actor_id, actor_name, channel, company_id, request_id, detail"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    seq: i64,
    prev_hash: String,
    hash: String,
    at: i64,
    kind: String,
    actor_id: Option<String>,
    actor_name: Option<String>,
    channel: String,
    company_id: Option<String>,
    request_id: Option<String>,
    detail: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            seq: r.seq,
            prev_hash: r.prev_hash,
            hash: r.hash,
            event: NewAuditEvent {
                at: Timestamp::from_unix_millis(r.at),
                kind: r.kind,
                actor_id: r.actor_id,
                actor_name: r.actor_name,
                channel: r.channel,
                company: r.company_id,
                request: r.request_id,
                detail: r.detail,
            },
        }
    }
}

macro_rules! consent_cols {
    () => {
        "state_hash, company_id, user_id, session_id, purpose, expected_tenant, created_at, expires_at, used_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConsentRow {
    state_hash: String,
    company_id: String,
    user_id: String,
    session_id: Option<String>,
    purpose: String,
    expected_tenant: Option<String>,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<ConsentRow> for ConsentState {
    type Error = StoreError;
    fn try_from(r: ConsentRow) -> Result<Self, StoreError> {
        Ok(ConsentState {
            state_hash: r.state_hash,
            company: CompanyId::parse(&r.company_id)
                .map_err(|_| corrupt("company id", &r.company_id))?,
            user: UserId::parse(&r.user_id).map_err(|_| corrupt("user id", &r.user_id))?,
            session_id: r.session_id,
            purpose: ConsentPurpose::parse(&r.purpose)
                .ok_or_else(|| corrupt("purpose", &r.purpose))?,
            expected_tenant: match r.expected_tenant {
                Some(t) => Some(TenantId::parse(&t).map_err(|_| corrupt("tenant id", &t))?),
                None => None,
            },
            created_at: Timestamp::from_unix_millis(r.created_at),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            used_at: ts(r.used_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub id: String,
    pub data: String,
    pub expires_at: i64,
}

macro_rules! inventory_cols {
    () => {
        "company_id, generation, mailbox_id, mailbox_address, mailbox_name, mailbox_kind, trustee_key, trustee_raw, trustee_sid, trustee_class, trustee_id, trustee_address, trustee_name, trustee_kind, permission"
    };
}

/// Columns of [`inventory_cols!`] per row.
pub(crate) const INVENTORY_COLS: usize = 15;

pub(crate) fn permission_str(p: exogate_core::action::Permission) -> &'static str {
    p.as_str()
}

fn parse_permission(s: &str) -> Option<exogate_core::action::Permission> {
    use exogate_core::action::Permission;
    [
        Permission::FullAccess,
        Permission::SendAs,
        Permission::SendOnBehalf,
    ]
    .into_iter()
    .find(|p| p.as_str() == s)
}

#[derive(sqlx::FromRow)]
pub(crate) struct InventoryRowDb {
    company_id: String,
    #[allow(
        dead_code,
        reason = "selected with the other columns; the generation is implied"
    )]
    generation: i64,
    mailbox_id: String,
    mailbox_address: String,
    mailbox_name: String,
    mailbox_kind: String,
    #[allow(dead_code, reason = "derived from the trustee on the way in")]
    trustee_key: String,
    trustee_raw: String,
    trustee_sid: Option<String>,
    trustee_class: String,
    trustee_id: Option<String>,
    trustee_address: Option<String>,
    trustee_name: Option<String>,
    trustee_kind: Option<String>,
    permission: String,
}

impl TryFrom<InventoryRowDb> for exogate_core::inventory::InventoryRow {
    type Error = StoreError;
    fn try_from(r: InventoryRowDb) -> Result<Self, StoreError> {
        use exogate_core::inventory::{InventoryTrustee, TrusteeClass};
        let kind = |s: &str| RecipientKind::parse(s).ok_or_else(|| corrupt("recipient kind", s));
        let identity = match (r.trustee_id, r.trustee_kind) {
            (Some(object_id), Some(k)) => Some(ResolvedIdentity {
                object_id,
                primary_address: r.trustee_address.unwrap_or_default(),
                display_name: r.trustee_name.unwrap_or_default(),
                kind: kind(&k)?,
            }),
            _ => None,
        };
        Ok(Self {
            company: CompanyId::parse(&r.company_id)
                .map_err(|_| corrupt("company id", &r.company_id))?,
            mailbox: ResolvedIdentity {
                object_id: r.mailbox_id,
                primary_address: r.mailbox_address,
                display_name: r.mailbox_name,
                kind: kind(&r.mailbox_kind)?,
            },
            trustee: InventoryTrustee {
                raw: r.trustee_raw,
                sid: r.trustee_sid,
                class: TrusteeClass::parse(&r.trustee_class)
                    .ok_or_else(|| corrupt("trustee class", &r.trustee_class))?,
                identity,
            },
            right: parse_permission(&r.permission)
                .ok_or_else(|| corrupt("permission", &r.permission))?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct InventoryStateDb {
    company_id: String,
    tenant_id: String,
    current_gen: Option<i64>,
    as_of: Option<i64>,
    current_mailboxes: i64,
    sweep_gen: i64,
    sweep_state: String,
    sweep_started_at: i64,
    sweep_finished_at: Option<i64>,
    sweep_error: Option<String>,
    sweep_lease_until: Option<i64>,
    rows: i64,
}

impl TryFrom<InventoryStateDb> for exogate_core::inventory::InventoryStatus {
    type Error = StoreError;
    fn try_from(r: InventoryStateDb) -> Result<Self, StoreError> {
        use exogate_core::inventory::SweepState;
        Ok(Self {
            company: CompanyId::parse(&r.company_id)
                .map_err(|_| corrupt("company id", &r.company_id))?,
            tenant: TenantId::parse(&r.tenant_id)
                .map_err(|_| corrupt("tenant id", &r.tenant_id))?,
            current_generation: r.current_gen,
            as_of: ts(r.as_of),
            mailboxes: u64::try_from(r.current_mailboxes).unwrap_or(0),
            rows: u64::try_from(r.rows).unwrap_or(0),
            sweep_generation: r.sweep_gen,
            sweep_state: SweepState::parse(&r.sweep_state)
                .ok_or_else(|| corrupt("sweep state", &r.sweep_state))?,
            sweep_started_at: Timestamp::from_unix_millis(r.sweep_started_at),
            sweep_finished_at: ts(r.sweep_finished_at),
            sweep_error: r.sweep_error,
            lease_until: ts(r.sweep_lease_until),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OAuthClientRow {
    client_id: String,
    name: String,
    redirect_uris: String,
    created_at: i64,
}

impl TryFrom<OAuthClientRow> for OAuthClient {
    type Error = StoreError;
    fn try_from(r: OAuthClientRow) -> Result<Self, StoreError> {
        Ok(OAuthClient {
            client_id: r.client_id,
            name: r.name,
            redirect_uris: r.redirect_uris.split('\n').map(str::to_owned).collect(),
            created_at: Timestamp::from_unix_millis(r.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OAuthCodeRow {
    code_hash: String,
    client_id: String,
    client_name: String,
    user_id: String,
    redirect_uri: String,
    code_challenge: String,
    resource: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<OAuthCodeRow> for OAuthCode {
    type Error = StoreError;
    fn try_from(r: OAuthCodeRow) -> Result<Self, StoreError> {
        Ok(OAuthCode {
            code_hash: r.code_hash,
            client_id: r.client_id,
            client_name: r.client_name,
            user: UserId::parse(&r.user_id).map_err(|_| corrupt("user id", &r.user_id))?,
            redirect_uri: r.redirect_uri,
            code_challenge: r.code_challenge,
            resource: r.resource,
            created_at: Timestamp::from_unix_millis(r.created_at),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            used_at: ts(r.used_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OAuthGrantRow {
    id: String,
    user_id: String,
    client_id: String,
    client_name: String,
    resource: String,
    code_hash: String,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl TryFrom<OAuthGrantRow> for OAuthGrant {
    type Error = StoreError;
    fn try_from(r: OAuthGrantRow) -> Result<Self, StoreError> {
        Ok(OAuthGrant {
            id: ApiTokenId::parse(&r.id).map_err(|_| corrupt("grant id", &r.id))?,
            user: UserId::parse(&r.user_id).map_err(|_| corrupt("user id", &r.user_id))?,
            client_id: r.client_id,
            client_name: r.client_name,
            resource: r.resource,
            code_hash: r.code_hash,
            created_at: Timestamp::from_unix_millis(r.created_at),
            last_used_at: ts(r.last_used_at),
            revoked_at: ts(r.revoked_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OAuthTokenRow {
    token_hash: String,
    grant_id: String,
    kind: String,
    created_at: i64,
    expires_at: i64,
    used_at: Option<i64>,
}

impl TryFrom<OAuthTokenRow> for OAuthToken {
    type Error = StoreError;
    fn try_from(r: OAuthTokenRow) -> Result<Self, StoreError> {
        Ok(OAuthToken {
            token_hash: r.token_hash,
            grant: ApiTokenId::parse(&r.grant_id).map_err(|_| corrupt("grant id", &r.grant_id))?,
            kind: TokenKind::parse(&r.kind).ok_or_else(|| corrupt("token kind", &r.kind))?,
            created_at: Timestamp::from_unix_millis(r.created_at),
            expires_at: Timestamp::from_unix_millis(r.expires_at),
            used_at: ts(r.used_at),
        })
    }
}

// (drift)
mod drift;
pub(crate) use drift::*;

// (reviews)
mod reviews;
pub(crate) use reviews::*;
