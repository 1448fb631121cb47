//! `CoreError`: every error an operation returns, named by what the caller can do about it.
//! [`CoreError::code`] is a stable string the JSON API, MCP and CLI show; it is public contract.

use std::fmt;

use crate::model::{ExchangeAdminState, Role};

/// What was not found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    Company,
    Connection,
    Request,
    User,
    ApiToken,
    Mailbox,
    Trustee,
    Session,
    ConsentState,
    // (notify)
    Webhook,
    // (drift)
    Finding,
    // (reviews)
    Review,
    ReviewLink,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Company => "company",
            Entity::Connection => "connection",
            Entity::Request => "request",
            Entity::User => "user",
            Entity::ApiToken => "token",
            Entity::Mailbox => "mailbox",
            Entity::Trustee => "trustee",
            Entity::Session => "session",
            Entity::ConsentState => "consent_state",
            // (notify)
            Entity::Webhook => "webhook",
            // (drift)
            Entity::Finding => "drift_finding",
            // (reviews)
            Entity::Review => "review",
            Entity::ReviewLink => "review_link",
        }
    }
}

/// Why the policy refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The acting user is disabled.
    UserDisabled,
    /// The user is not entitled to the company.
    NotEntitled,
    /// The user's role is below what the action needs.
    RoleTooLow { needed: Role },
    /// Separate-approver rule: one cannot decide a request one (or one's agent) made.
    OwnRequest,
    /// Decisions (and changes to the separate-approver rule) are never taken through MCP or
    /// an API token.
    DecisionViaMcp,
    /// The API token is unknown or revoked.
    TokenRevoked,
    /// Only the requester or a manager may cancel.
    NotRequester,
}

impl Denial {
    pub fn code(self) -> &'static str {
        match self {
            Denial::UserDisabled => "user_disabled",
            Denial::NotEntitled => "not_entitled",
            Denial::RoleTooLow { .. } => "role_too_low",
            Denial::OwnRequest => "own_request",
            Denial::DecisionViaMcp => "decision_via_mcp",
            Denial::TokenRevoked => "token_revoked",
            Denial::NotRequester => "not_requester",
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::UserDisabled => f.write_str("the user is disabled"),
            Denial::NotEntitled => f.write_str("the user is not entitled to this company"),
            Denial::RoleTooLow { needed } => write!(f, "this needs the `{needed}` role or higher"),
            Denial::OwnRequest => {
                f.write_str("this company requires a separate approver: a request cannot be decided by the person who made it (or whose agent made it)")
            }
            Denial::DecisionViaMcp => f.write_str("requests are approved or rejected (and the separate-approver rule changed) only by a person in the web app, the JSON API or the CLI, never through MCP or an API token"),
            Denial::TokenRevoked => f.write_str("the API token is unknown or revoked"),
            Denial::NotRequester => f.write_str("only the requester or a manager can cancel this request"),
        }
    }
}

/// Why a request or an update conflicts with the current state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConflictReason {
    /// The request was already decided (or moved on); `state` is its current state.
    AlreadyDecided { state: &'static str },
    /// The request is past its expiry.
    Expired,
    /// The row exists already.
    AlreadyExists,
    /// The company has no Microsoft 365 connection.
    NotConnected,
    /// The stored action no longer matches its digest: it was changed after it was frozen.
    DigestMismatch,
    /// The worker's lease was taken over; it must not complete.
    LeaseLost,
    /// The identity matched several recipients.
    Ambiguous { candidates: usize },
    /// Only a request that succeeded can be reverted.
    NotRevertible,
    /// The requested state transition is not allowed.
    BadTransition {
        from: &'static str,
        to: &'static str,
    },
    /// The change already has the wanted state, or Exchange refused it permanently.
    Rejected { message: String },
    /// The user has too many pending requests open.
    TooManyPending { limit: u32 },
    /// The Microsoft 365 tenant is already linked to another company.
    TenantLinked,
    /// Asking for a change that changes nothing: the goal is the state already. `what` says so
    /// in English ("bob@… already has Full Access on sales@…").
    AlreadyInState { what: String },
    /// A company named by its display name, which several companies the caller may see share.
    /// `candidates` are their ids, each with its name (`contoso (Contoso)`).
    AmbiguousCompany { candidates: Vec<String> },
    // (inventory-truth)
    /// The company's delegation inventory was never swept: what it holds is unknown, not
    /// empty. `company` is its name, `id` its id.
    NotSweptYet { company: String, id: String },
    // (cli-requests)
    /// A request id prefix that several requests the caller may see start with.
    AmbiguousRequest { prefix: String },
    // (hardening)
    /// A webhook or mail server address that is this machine or a private network
    /// (`exogate_core::outbound`); `kind` says which, in a person's words.
    TargetNotAllowed { host: String, kind: &'static str },
    // (reviews)
    /// The access review is closed (or closing): decisions are no longer taken.
    ReviewClosed,
}

impl ConflictReason {
    pub fn code(&self) -> &'static str {
        match self {
            ConflictReason::AlreadyDecided { .. } => "already_decided",
            ConflictReason::Expired => "request_expired",
            ConflictReason::AlreadyExists => "already_exists",
            ConflictReason::NotConnected => "company_not_connected",
            ConflictReason::DigestMismatch => "digest_mismatch",
            ConflictReason::LeaseLost => "lease_lost",
            ConflictReason::Ambiguous { .. } => "ambiguous_identity",
            ConflictReason::NotRevertible => "not_revertible",
            ConflictReason::BadTransition { .. } => "bad_transition",
            ConflictReason::Rejected { .. } => "rejected_by_exchange",
            ConflictReason::TooManyPending { .. } => "too_many_pending",
            ConflictReason::TenantLinked => "tenant_already_linked",
            ConflictReason::AlreadyInState { .. } => "already_in_state",
            ConflictReason::AmbiguousCompany { .. } => "ambiguous_company",
            // (inventory-truth)
            ConflictReason::NotSweptYet { .. } => "not_swept_yet",
            // (cli-requests)
            ConflictReason::AmbiguousRequest { .. } => "ambiguous_request",
            // (hardening)
            ConflictReason::TargetNotAllowed { .. } => "target_not_allowed",
            // (reviews)
            ConflictReason::ReviewClosed => "review_closed",
        }
    }
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::AlreadyDecided { state } => write!(f, "the request is already `{state}`"),
            ConflictReason::Expired => f.write_str("the request has expired"),
            ConflictReason::AlreadyExists => f.write_str("it exists already"),
            ConflictReason::NotConnected => f.write_str("the company is not connected to Microsoft 365; fix: connect it on its Integrations page, or open the URL `exogate company connect-url COMPANY` prints"),
            ConflictReason::DigestMismatch => {
                f.write_str("the stored action does not match its digest: it was changed after it was frozen, so it will not run")
            }
            ConflictReason::LeaseLost => f.write_str("the execution lease was taken over by another worker"),
            ConflictReason::Ambiguous { candidates } => {
                write!(f, "the identity matches {candidates} recipients; use the email address or object id")
            }
            ConflictReason::NotRevertible => f.write_str("only a request that succeeded can be reverted"),
            ConflictReason::BadTransition { from, to } => write!(f, "a request cannot go from `{from}` to `{to}`"),
            ConflictReason::Rejected { message } => write!(f, "Exchange refused the change: {message}"),
            ConflictReason::TooManyPending { limit } => write!(
                f,
                "you already have {limit} requests waiting for approval; wait for decisions or cancel some"
            ),
            ConflictReason::TenantLinked => f.write_str(
                "this Microsoft 365 tenant is already linked to another company; one tenant belongs to one company",
            ),
            ConflictReason::AlreadyInState { what } => {
                write!(f, "nothing to change: {what}; no request was made")
            }
            ConflictReason::AmbiguousCompany { candidates } => write!(
                f,
                "several companies have that name: {}; use the company id",
                candidates.join(", ")
            ),
            // (inventory-truth)
            ConflictReason::NotSweptYet { company, id } => write!(
                f,
                "unknown: {company} is not swept yet; run `exogate inventory sync --company {id}` (or Sync on the Inventory page) first"
            ),
            // (cli-requests)
            ConflictReason::AmbiguousRequest { prefix } => write!(
                f,
                "several requests start with `{prefix}`; give more characters of the id"
            ),
            // (hardening)
            ConflictReason::TargetNotAllowed { host, kind } => write!(
                f,
                "`{host}` is {kind}; exogate sends only to public addresses (an operator can allow private ones with `[notifications] allow_private_targets`)"
            ),
            // (reviews)
            ConflictReason::ReviewClosed => f.write_str(
                "this access review is closed: its decisions are final and no more are taken",
            ),
        }
    }
}

/// How [`CoreError::Unavailable`] names the database (see [`CoreError::is_database_unavailable`]).
const DATABASE: &str = "the database";

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{} `{id}` not found", what.as_str())]
    NotFound { what: Entity, id: String },
    #[error("forbidden: {reason}")]
    Forbidden { reason: Denial },
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("conflict: {reason}")]
    Conflict { reason: ConflictReason },
    #[error("Exchange Admin is not ready for this company: {} ({}); fix: {}", state.badge(), state.as_str(), state.fix().trim_end_matches('.'))]
    NotConfigured { state: ExchangeAdminState },
    #[error("{what} is unavailable, try again later")]
    Unavailable { what: String },
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    // (inventory-truth)
    /// As [`CoreError::NotFound`] (same codes), looked for in one company, worded for a person:
    /// `mailbox 'suport' not found in Contoso`. `id` is what the person typed, `company` the
    /// company's name.
    #[error("{} '{id}' not found in {company}", what.as_str())]
    NotFoundIn {
        what: Entity,
        id: String,
        company: String,
    },
}

impl CoreError {
    pub fn invalid(field: &'static str, reason: String) -> Self {
        CoreError::Invalid { field, reason }
    }
    pub fn not_found(what: Entity, id: impl fmt::Display) -> Self {
        CoreError::NotFound {
            what,
            id: id.to_string(),
        }
    }
    pub fn forbidden(reason: Denial) -> Self {
        CoreError::Forbidden { reason }
    }
    pub fn conflict(reason: ConflictReason) -> Self {
        CoreError::Conflict { reason }
    }
    /// (inventory-truth) [`CoreError::NotFoundIn`]: `id` (what was typed, capped) in the
    /// company named `company`.
    pub fn not_found_in(what: Entity, id: &str, company: &str) -> Self {
        CoreError::NotFoundIn {
            what,
            id: crate::text::capped(id.trim(), 80),
            company: company.to_owned(),
        }
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        CoreError::Internal(msg.into().into())
    }

    /// Whether this is the database failing (down, restarting, out of connections). Its text
    /// carries the driver's words, which can name hosts, databases and users: adapters show a
    /// fixed message instead (`database_unavailable`) and log this one.
    pub fn is_database_unavailable(&self) -> bool {
        matches!(self, CoreError::Unavailable { what } if what.starts_with(DATABASE))
    }

    /// The stable machine code. The list is public contract (see `docs/API.md`, "Errors").
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::NotFound { what, .. } | CoreError::NotFoundIn { what, .. } => match what {
                Entity::Company => "company_not_found",
                Entity::Connection => "connection_not_found",
                Entity::Request => "request_not_found",
                Entity::User => "user_not_found",
                Entity::ApiToken => "token_not_found",
                Entity::Mailbox => "mailbox_not_found",
                Entity::Trustee => "trustee_not_found",
                Entity::Session => "session_not_found",
                Entity::ConsentState => "consent_state_not_found",
                // (notify)
                Entity::Webhook => "webhook_not_found",
                // (drift)
                Entity::Finding => "drift_finding_not_found",
                // (reviews)
                Entity::Review => "review_not_found",
                Entity::ReviewLink => "review_link_not_found",
            },
            CoreError::Forbidden { reason } => reason.code(),
            CoreError::Invalid { .. } => "invalid_input",
            CoreError::Conflict { reason } => reason.code(),
            CoreError::NotConfigured { state } => match state {
                ExchangeAdminState::NotConfigured => "exchange_not_configured",
                ExchangeAdminState::RoleMissing => "exchange_role_missing",
                ExchangeAdminState::Propagating => "exchange_propagating",
                ExchangeAdminState::Configured => "exchange_configured",
                ExchangeAdminState::TenantNotFound => "exchange_tenant_not_found",
                ExchangeAdminState::WrongTenant => "exchange_wrong_tenant",
                ExchangeAdminState::AppCredentialsInvalid => "exchange_app_credentials_invalid",
                ExchangeAdminState::CheckFailed => "exchange_check_failed",
            },
            CoreError::Unavailable { .. } => "unavailable",
            CoreError::Internal(_) => "internal",
        }
    }

    /// Every code [`CoreError::code`] can return, for documentation and snapshot tests.
    pub const ALL_CODES: &'static [&'static str] = &[
        "company_not_found",
        "connection_not_found",
        "request_not_found",
        "user_not_found",
        "token_not_found",
        "mailbox_not_found",
        "trustee_not_found",
        "session_not_found",
        "consent_state_not_found",
        "user_disabled",
        "not_entitled",
        "role_too_low",
        "own_request",
        "decision_via_mcp",
        "token_revoked",
        "not_requester",
        "invalid_input",
        "already_decided",
        "request_expired",
        "already_exists",
        "company_not_connected",
        "digest_mismatch",
        "lease_lost",
        "ambiguous_identity",
        "not_revertible",
        "bad_transition",
        "too_many_pending",
        "already_in_state",
        "ambiguous_company",
        "not_swept_yet",
        // (cli-requests)
        "ambiguous_request",
        "rejected_by_exchange",
        "tenant_already_linked",
        "exchange_not_configured",
        "exchange_role_missing",
        "exchange_propagating",
        "exchange_configured",
        "exchange_tenant_not_found",
        "exchange_wrong_tenant",
        "exchange_app_credentials_invalid",
        "exchange_check_failed",
        "unavailable",
        "internal",
        // (notify)
        "webhook_not_found",
        // (hardening)
        "target_not_allowed",
        // (reviews)
        "review_not_found",
        "review_link_not_found",
        "review_closed",
    ];
}

impl From<crate::ports::StoreError> for CoreError {
    fn from(e: crate::ports::StoreError) -> Self {
        use crate::ports::StoreError;
        match e {
            StoreError::Duplicate => CoreError::conflict(ConflictReason::AlreadyExists),
            StoreError::NotFound { what, id } => CoreError::NotFound { what, id },
            StoreError::Unavailable(m) => CoreError::Unavailable {
                what: format!("{DATABASE} ({m})"),
            },
            StoreError::Corrupt(m) => CoreError::internal(format!("stored data is corrupt: {m}")),
            StoreError::Internal(b) => CoreError::Internal(b),
        }
    }
}
