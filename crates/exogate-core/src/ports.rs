//! The ports: what the domain needs from storage ([`Store`]), from Microsoft ([`Microsoft`]) and
//! from the clock ([`Clock`]), with the data they return. Implementations live elsewhere:
//! `exogate-store` (SQLite/PostgreSQL) and the `exogate` binary's adapter over `exogate-exchange`.

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

use crate::action::{CanonicalAction, Presence};
use crate::audit::{AuditEvent, NewAuditEvent};
use crate::error::Entity;
use crate::inventory::{GroupMember, InventoryRow, InventoryStatus, SweepBegin, SweepLease};
use crate::model::{
    ApiToken, ApiTokenId, Company, CompanyId, Connection, ConsentState, ExchangeAdminState,
    IdentityInput, ResolvedIdentity, SessionRecord, StatusRecord, TenantId, Timestamp, User,
    UserId, UserName,
};
use crate::oauth::{OAuthClient, OAuthCode, OAuthGrant, OAuthToken};
use crate::request::{ApprovalRequest, Claim, RequestFilter, Transition};

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// The only source of time in the domain.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A clock that stands still until moved (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(std::sync::atomic::AtomicI64::new(at.unix_millis()))
    }
    pub fn set(&self, at: Timestamp) {
        self.0
            .store(at.unix_millis(), std::sync::atomic::Ordering::SeqCst);
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(
            secs.saturating_mul(1000),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Waiting, which the domain cannot do by itself: the edge's runtime timer (operations that
/// renew a lease while they work).
#[async_trait]
pub trait Timer: Send + Sync {
    async fn sleep(&self, duration: std::time::Duration);
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique key exists already.
    #[error("duplicate")]
    Duplicate,
    /// A row the update needs does not exist.
    #[error("{} `{id}` not found", what.as_str())]
    NotFound { what: Entity, id: String },
    /// The database cannot be reached or is busy; retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A stored value does not parse.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("database error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Persistence. Every method that changes state takes the audit event that records the change
/// and appends it to the hash chain in the SAME transaction; if the append fails, nothing changes.
/// Compare-and-set methods return `Ok(false)` when the row was not in the expected state (and
/// then append nothing).
#[async_trait]
pub trait Store: Send + Sync {
    // Companies.
    async fn insert_company(&self, company: &Company, audit: NewAuditEvent) -> StoreResult<()>;
    async fn get_company(&self, id: &CompanyId) -> StoreResult<Option<Company>>;
    /// All companies, ordered by id.
    async fn list_companies(&self) -> StoreResult<Vec<Company>>;
    /// Sets (connect / reconnect) or clears (disconnect) the connection. Clearing also clears the
    /// Exchange status. `NotFound` if the company does not exist.
    async fn set_connection(
        &self,
        id: &CompanyId,
        connection: Option<&Connection>,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Stores a status check result if the company is still connected to `tenant`; `Ok(false)`
    /// otherwise (the connection changed while the check ran).
    async fn set_status(
        &self,
        id: &CompanyId,
        tenant: TenantId,
        status: &StatusRecord,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Changes only the name.
    async fn rename_company(
        &self,
        id: &CompanyId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Sets the separate-approver rule to `to` if it is `from`, recording `audit` with it;
    /// `Ok(false)` (nothing written) when it is not `from` any more, `NotFound` without the
    /// company.
    async fn set_separate_approver(
        &self,
        id: &CompanyId,
        from: bool,
        to: bool,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;

    // Users.
    async fn insert_user(&self, user: &User, audit: NewAuditEvent) -> StoreResult<()>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn get_user_by_name(&self, name: &UserName) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// Replaces role, entitlement, disabled flag and password hash of an existing user.
    async fn update_user(&self, user: &User, audit: NewAuditEvent) -> StoreResult<()>;

    // API tokens.
    async fn insert_token(&self, token: &ApiToken, audit: NewAuditEvent) -> StoreResult<()>;
    async fn get_token(&self, id: ApiTokenId) -> StoreResult<Option<ApiToken>>;
    async fn get_token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiToken>>;
    /// Tokens of one owner, or all tokens.
    async fn list_tokens(&self, owner: Option<UserId>) -> StoreResult<Vec<ApiToken>>;
    /// `Ok(false)` if already revoked.
    async fn revoke_token(
        &self,
        id: ApiTokenId,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Records use; no audit event (logins are audited by the edge through [`Store::append_audit`]).
    async fn touch_token(&self, id: ApiTokenId, at: Timestamp) -> StoreResult<()>;

    // Approval requests.
    async fn insert_request(
        &self,
        request: &ApprovalRequest,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn get_request(
        &self,
        id: crate::model::RequestId,
    ) -> StoreResult<Option<ApprovalRequest>>;
    async fn list_requests(&self, filter: &RequestFilter) -> StoreResult<Vec<ApprovalRequest>>;
    /// How many requests are in each state (states with none are left out).
    async fn count_requests_by_state(
        &self,
    ) -> StoreResult<Vec<(crate::request::RequestState, u64)>>;
    /// Compare-and-set of the mutable fields (state, decision, cancellation, attempt, lease,
    /// results, finished_at, message) WHERE id AND state = expected_state (AND attempt =
    /// expected_attempt). Appends `audit` in the same transaction. Frozen fields are never written.
    async fn transition(&self, transition: &Transition, audit: NewAuditEvent) -> StoreResult<bool>;
    /// Claims one request for execution: the oldest `approved` one, or an `executing` one whose
    /// lease expired before `now`. Sets state `executing`, attempt + 1 and the lease, and appends
    /// an `execution.claimed` event, in one transaction. On PostgreSQL uses `FOR UPDATE SKIP LOCKED`.
    async fn claim_next(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Claim>>;
    /// Ids of pending requests with `expires_at <= now`.
    async fn due_for_expiry(
        &self,
        now: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<crate::model::RequestId>>;

    // Audit.
    /// Appends one event (not tied to a state change: logins, reads, execution steps).
    async fn append_audit(&self, audit: NewAuditEvent) -> StoreResult<AuditEvent>;
    /// Events with `seq > after_seq`, ascending, at most `limit`.
    async fn list_audit(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>>;
    /// The newest events first, optionally for one company or request.
    async fn recent_audit(
        &self,
        company: Option<&CompanyId>,
        request: Option<crate::model::RequestId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// The events matching every set field of `filter`, newest first (by `seq`), at most
    /// `filter.limit`. The filters run before the limit.
    async fn search_audit(
        &self,
        filter: &crate::audit::AuditFilter,
    ) -> StoreResult<Vec<AuditEvent>>;
    /// The chain head `(seq, hash)` kept beside the log (None when empty).
    async fn audit_head(&self) -> StoreResult<Option<(i64, String)>>;

    // Web sessions.
    async fn put_session(&self, session: &SessionRecord) -> StoreResult<()>;
    /// A session that has not expired at `now`.
    async fn get_session(&self, id: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>>;
    async fn delete_session(&self, id: &str) -> StoreResult<()>;
    /// Deletes expired sessions; returns how many.
    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64>;

    // Delegation inventory (see [`crate::inventory`]). A cache of Exchange: rows and patches
    // have no audit events; a sweep's start, end and failure do.
    /// Starts a sweep of `company`'s inventory from `tenant` under `lease`. While another run
    /// holds an unexpired lease, answers [`SweepBegin::Busy`] and changes nothing. If the
    /// latest sweep is `running` for the same tenant with its lease passed (it crashed), it is
    /// continued: same generation, with the chunk markers it finished. Otherwise a new
    /// generation is allocated, any rows of an unfinished generation are deleted, and the
    /// sweep is marked `running`. `audit` is appended when the sweep starts, its detail object
    /// completed with `generation` and `resumed`.
    async fn inventory_begin_sweep(
        &self,
        company: &CompanyId,
        tenant: TenantId,
        now: Timestamp,
        lease: &SweepLease,
        audit: NewAuditEvent,
    ) -> StoreResult<SweepBegin>;
    /// Extends the lease of `owner`'s running sweep. `Ok(false)` if `owner` no longer runs it.
    async fn inventory_renew_lease(
        &self,
        company: &CompanyId,
        generation: i64,
        lease: &SweepLease,
    ) -> StoreResult<bool>;
    /// Writes rows of `owner`'s running sweep and records `done` chunk markers, in one
    /// transaction (a row already written is kept). `Ok(false)` if `owner` no longer runs
    /// that sweep.
    async fn inventory_write_chunk(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        rows: &[InventoryRow],
        done: &[String],
    ) -> StoreResult<bool>;
    /// The groups among the trustees of a sweep's generation (running or not): their trustee
    /// key and address, once each.
    async fn inventory_group_trustees(
        &self,
        company: &CompanyId,
        generation: i64,
    ) -> StoreResult<Vec<(String, String)>>;
    /// Records members of groups that hold rights, for `owner`'s running sweep (a member
    /// already recorded is kept). `Ok(false)` if `owner` no longer runs that sweep.
    async fn inventory_write_members(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        members: &[GroupMember],
        done: &[String],
    ) -> StoreResult<bool>;
    /// Finishes `owner`'s running sweep: in one transaction makes `generation` the current one
    /// (as of `now`, with `mailboxes` counted), deletes every other generation's rows and the
    /// chunk markers, and appends `audit`. `Ok(false)` if `owner` no longer runs that sweep.
    async fn inventory_finish_sweep(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        now: Timestamp,
        mailboxes: u64,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Marks `owner`'s running sweep failed, deletes its rows and appends `audit`; the current
    /// generation stays. `Ok(false)` if `owner` no longer runs that sweep.
    async fn inventory_fail_sweep(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        now: Timestamp,
        error: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Adds (`present`) or removes a row of the current generation, and of a running sweep's
    /// generation too, so a sweep in flight does not undo it. `Ok(false)` when the company has
    /// no inventory yet.
    async fn inventory_patch(&self, row: &InventoryRow, present: bool) -> StoreResult<bool>;
    /// The company's inventory status (None before its first sweep started).
    async fn inventory_status(&self, company: &CompanyId) -> StoreResult<Option<InventoryStatus>>;
    /// Current rows of one mailbox, matched case-insensitively on object id or address.
    async fn inventory_by_mailbox(
        &self,
        company: &CompanyId,
        mailbox: &str,
    ) -> StoreResult<Vec<InventoryRow>>;
    /// Current rows whose trustee matches `needle` case-insensitively: trustee key (object id
    /// or SID), address, raw value, or the address's local part; and the rows of every group
    /// `needle` is a member of (directly or through nested groups), matched the same way on the
    /// member's object id or address. Those rows name the group as their trustee.
    async fn inventory_by_trustee(
        &self,
        company: &CompanyId,
        needle: &str,
    ) -> StoreResult<Vec<InventoryRow>>;
    /// Every current row of the company, ordered by mailbox address, right and trustee.
    async fn inventory_rows(&self, company: &CompanyId) -> StoreResult<Vec<InventoryRow>>;

    // OAuth consent states.
    async fn insert_consent_state(&self, state: &ConsentState) -> StoreResult<()>;
    /// Marks the state used if it is unused, unexpired and bound to no session or to
    /// `session_id`, in one statement; returns it then, else None. A state of another session
    /// is neither returned nor used up.
    async fn consume_consent_state(
        &self,
        state_hash: &str,
        session_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<ConsentState>>;

    // OAuth clients, codes, grants and tokens (`crate::oauth`), appended.
    async fn oauth_insert_client(&self, client: &OAuthClient) -> StoreResult<()>;
    async fn oauth_get_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>>;
    async fn oauth_insert_code(&self, code: &OAuthCode) -> StoreResult<()>;
    /// Marks the code used if it is unused, in one statement, and returns it then (expired or
    /// not: the caller checks); else None. A code is never returned twice.
    async fn oauth_use_code(
        &self,
        code_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<OAuthCode>>;
    /// Inserts the grant and its first tokens with the audit event, in one transaction.
    async fn oauth_insert_grant(
        &self,
        grant: &OAuthGrant,
        tokens: &[OAuthToken],
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn oauth_get_grant(&self, id: ApiTokenId) -> StoreResult<Option<OAuthGrant>>;
    /// A person's grants, newest first.
    async fn oauth_list_grants(&self, user: UserId) -> StoreResult<Vec<OAuthGrant>>;
    /// The token with this hash, with its grant.
    async fn oauth_get_token(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(OAuthToken, OAuthGrant)>>;
    /// Marks the refresh token used if it is unused and its grant unrevoked, and inserts its
    /// successors, in one transaction; `Ok(false)` and nothing written otherwise.
    async fn oauth_rotate(
        &self,
        refresh_hash: &str,
        now: Timestamp,
        successors: &[OAuthToken],
    ) -> StoreResult<bool>;
    /// Sets the grant's `revoked_at` if unset, with the audit event; `Ok(false)` otherwise.
    async fn oauth_revoke_grant(
        &self,
        id: ApiTokenId,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    async fn oauth_touch_grant(&self, id: ApiTokenId, at: Timestamp) -> StoreResult<()>;
    /// The grant made from the code with this hash, if any.
    async fn oauth_grant_by_code(&self, code_hash: &str) -> StoreResult<Option<OAuthGrant>>;

    // (msft-signin) Sign in with Microsoft: pending sign-ins and linked identities.
    /// Stores a pending sign-in (and drops expired ones).
    async fn signin_put_state(&self, state: &crate::signin::PendingSignin) -> StoreResult<()>;
    /// Removes and returns the pending sign-in with this state hash (single use), expired or not.
    async fn signin_take_state(
        &self,
        state_hash: &str,
    ) -> StoreResult<Option<crate::signin::PendingSignin>>;
    /// The user linked to the Microsoft identity `tid`+`oid`, and whether sign-in suspended it.
    async fn signin_identity(&self, tid: &str, oid: &str) -> StoreResult<Option<(UserId, bool)>>;
    /// Creates `user` linked to `tid`+`oid`, with its audit event, in one transaction.
    async fn signin_insert_user(
        &self,
        user: &User,
        tid: &str,
        oid: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Updates a linked user and its `suspended` mark, with its audit event, in one transaction.
    async fn signin_update_user(
        &self,
        user: &User,
        tid: &str,
        oid: &str,
        suspended: bool,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// The user's TOTP factor, if enrolled.
    async fn totp_get(&self, user: UserId) -> StoreResult<Option<crate::totp::TotpFactor>>;
    /// Replaces the user's factor and recovery codes (hashes), with its audit event.
    async fn totp_enrol(
        &self,
        factor: &crate::totp::TotpFactor,
        recovery_hashes: &[String],
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Spends TOTP step `step`: true only if it is later than the last spent one.
    async fn totp_use_step(&self, user: UserId, step: i64) -> StoreResult<bool>;
    /// Spends an unused recovery code: true only the first time.
    async fn totp_use_recovery(
        &self,
        user: UserId,
        code_hash: &str,
        at: Timestamp,
    ) -> StoreResult<bool>;
    // (notify) Notifications. The outbox rows themselves are written by every audit append
    // (`crate::notifications::route`), in its transaction.
    /// A user's e-mail settings, if they were ever set.
    async fn notify_get_user(
        &self,
        user: UserId,
    ) -> StoreResult<Option<crate::notifications::UserNotify>>;
    /// Sets a user's e-mail settings, with its audit event.
    async fn notify_set_user(
        &self,
        settings: &crate::notifications::UserNotify,
        now: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    /// Adds a webhook endpoint (`Duplicate` for a taken id).
    async fn webhook_insert(
        &self,
        webhook: &crate::notifications::Webhook,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn webhook_get(&self, id: &str) -> StoreResult<Option<crate::notifications::Webhook>>;
    /// Every endpoint, oldest first.
    async fn webhook_list(&self) -> StoreResult<Vec<crate::notifications::Webhook>>;
    /// Removes an endpoint; whether it existed. Its pending deliveries fail when claimed.
    async fn webhook_delete(&self, id: &str, audit: NewAuditEvent) -> StoreResult<bool>;
    /// Claims up to `limit` deliveries due at `now` (pending or retrying, no live lease) for
    /// `owner` until `lease_until`, counting an attempt each. Replicas never claim one row
    /// together; a row whose lease lapsed is due again.
    async fn outbox_claim(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<crate::notifications::Delivery>>;
    /// Records how an attempt ended, if `owner` still holds the row's lease.
    async fn outbox_finish(
        &self,
        id: &str,
        owner: &str,
        now: Timestamp,
        outcome: &crate::notifications::SendOutcome,
    ) -> StoreResult<bool>;
    /// The newest deliveries, in one state or all.
    async fn outbox_list(
        &self,
        state: Option<crate::notifications::DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<crate::notifications::Delivery>>;

    // (drift) Drift findings (`crate::drift`), appended.
    /// The rows of generation `to` missing from generation `from` (`Added`) and of `from`
    /// missing from `to` (`Removed`), compared in the database on (mailbox, trustee key,
    /// right): only the differences are returned.
    async fn drift_diff(
        &self,
        company: &CompanyId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<crate::drift::DriftCandidate>>;
    /// The requests of `company` that finished at or after `since` in `succeeded`,
    /// `already_in_state` or `failed` (their verified actions changed Exchange).
    async fn drift_executed_since(
        &self,
        company: &CompanyId,
        since: Timestamp,
    ) -> StoreResult<Vec<ApprovalRequest>>;
    /// When the sweep that produced the current generation started, if recorded.
    async fn drift_baseline(&self, company: &CompanyId) -> StoreResult<Option<Timestamp>>;
    /// Records what a sweep's comparison found, in one transaction: every finding that is not
    /// acknowledged-and-gone whose changed state the sweep's generation still shows gets its
    /// last-seen moved on; each candidate that matches such a finding (same right and direction)
    /// moves its last-seen too; every other candidate becomes a new open finding. The company's
    /// baseline becomes `swept_from`. `audit` is appended, its detail object completed with
    /// `count` and `findings` (ids), only when there are new findings. Returns the new findings.
    async fn drift_record(
        &self,
        company: &CompanyId,
        observation: &crate::drift::DriftObservation,
        audit: NewAuditEvent,
    ) -> StoreResult<Vec<crate::drift::DriftFinding>>;
    async fn drift_get(
        &self,
        id: crate::drift::DriftId,
    ) -> StoreResult<Option<crate::drift::DriftFinding>>;
    /// The company's findings, newest first, at most `limit`.
    async fn drift_list(
        &self,
        company: &CompanyId,
        limit: u32,
    ) -> StoreResult<Vec<crate::drift::DriftFinding>>;
    /// Acknowledges an open finding, with `audit`; `Ok(false)` if it is not open.
    async fn drift_acknowledge(
        &self,
        id: crate::drift::DriftId,
        ack: &crate::drift::DriftAck,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// Links a finding that is not reverted yet to the request that reverts it;
    /// `Ok(false)` otherwise.
    async fn drift_set_revert(
        &self,
        id: crate::drift::DriftId,
        request: crate::model::RequestId,
    ) -> StoreResult<bool>;

    // (timed-grants)
    /// As [`Store::transition`] (which writes `not_before` too), in one transaction with: the
    /// further events `more`, each of the `also` transitions that still applies (one that does
    /// not is skipped, with its event), and `insert` (a new request with its event). Nothing is
    /// written, and false answered, if `t` does not apply.
    async fn transition_with(
        &self,
        t: &Transition,
        audit: NewAuditEvent,
        more: Vec<NewAuditEvent>,
        also: Vec<(Transition, NewAuditEvent)>,
        insert: Option<(ApprovalRequest, NewAuditEvent)>,
    ) -> StoreResult<bool>;
    /// The company's rule for grant ends (the default when none was set).
    async fn grant_end_policy(
        &self,
        company: &crate::model::CompanyId,
    ) -> StoreResult<crate::timed::GrantEndPolicy>;
    /// Sets the company's rule for grant ends, with its audit event.
    async fn set_grant_end_policy(
        &self,
        company: &crate::model::CompanyId,
        policy: &crate::timed::GrantEndPolicy,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;

    // (inventory-truth) The inventory's own directory (`crate::inventory::DirectoryName`).
    /// Records names of listed recipients for `owner`'s running sweep (a name already recorded
    /// is kept). `Ok(false)` if `owner` no longer runs that sweep. Finishing the sweep drops
    /// other generations' names; failing it drops its own.
    async fn inventory_write_names(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        names: &[crate::inventory::DirectoryName],
    ) -> StoreResult<bool>;
    /// The recipients of the company's current inventory generation that carry `name`
    /// (matched case-insensitively), each once, ordered by address. Empty when none does, or
    /// when the company has no inventory.
    async fn inventory_lookup(
        &self,
        company: &CompanyId,
        name: &str,
    ) -> StoreResult<Vec<ResolvedIdentity>>;
    // (cli-requests)
    /// Ids of the requests whose id starts with `prefix` (compared as written: ids are
    /// lowercase), in id order, at most `limit`; only of `companies` when given.
    async fn request_ids_by_prefix(
        &self,
        prefix: &str,
        companies: Option<&[CompanyId]>,
        limit: u32,
    ) -> StoreResult<Vec<crate::model::RequestId>>;
    // (scale) Inventory answers across many companies in a fixed number of statements.
    /// The inventory status of each of `companies` that has one (in no particular order).
    async fn inventory_statuses(
        &self,
        companies: &[CompanyId],
    ) -> StoreResult<Vec<InventoryStatus>>;
    /// For each of `companies` with a current inventory generation: how many recipients carry
    /// `name` ([`Store::inventory_lookup`]'s count) and, when exactly one does, the rows
    /// [`Store::inventory_by_trustee`] gives for its object id; when none does, the rows it
    /// gives for `name` (except that a name holding `@` is not also tried as the local part of
    /// an address with two `@`s); when several do, no rows. Companies with no inventory, or with no name
    /// and no rows, are left out. Ordered by company, then as `inventory_by_trustee`.
    async fn inventory_user_matches(
        &self,
        companies: &[CompanyId],
        name: &str,
    ) -> StoreResult<Vec<crate::inventory::UserMatch>>;
    // (hardening) Registered OAuth clients that never completed an authorization (no code, no
    // grant), and the per-user-name login lock-out shared by every process.
    /// Deletes the unused registered clients created before `created_before`; returns how many.
    async fn oauth_prune_unused_clients(&self, created_before: Timestamp) -> StoreResult<u64>;
    /// How many registered clients are unused.
    async fn oauth_count_unused_clients(&self) -> StoreResult<u64>;
    /// Decides a password attempt on user name `key` at `now` under `rule`
    /// ([`crate::lockout::LockoutRule::begin`]) and stores the outcome, atomically: concurrent
    /// attempts from any process see each other's failures. Records quiet for the rule's
    /// `forget_secs` are deleted on the way.
    async fn login_user_begin(
        &self,
        key: &str,
        now: Timestamp,
        rule: &crate::lockout::LockoutRule,
    ) -> StoreResult<crate::lockout::Begin>;
    /// The attempt on `key` succeeded: its record is cleared.
    async fn login_user_succeeded(&self, key: &str) -> StoreResult<()>;
    /// The stored record of `key`, if any.
    async fn login_user_record(
        &self,
        key: &str,
    ) -> StoreResult<Option<crate::lockout::FailureRecord>>;
    // (scale2) A company's export, read as it is written out.
    /// [`Store::inventory_rows`] as a stream: the same rows in the same order, read from one
    /// statement (one snapshot) as the consumer takes them, so an export holds a bounded number
    /// of rows whatever the company's size. A failure mid-way is the stream's last item (an
    /// `Err`); dropping the stream stops the read.
    fn inventory_rows_stream(&self, company: &CompanyId) -> RowStream;
    // (reviews) Access reviews (`crate::review`).
    /// Inserts the campaign and its companies, and copies into items, in the database, the
    /// rows of each company's current inventory generation that its scope covers (mailbox
    /// kinds and rights; empty lists cover all), numbered from 1 across the companies in
    /// order, each company's ordered by mailbox address, right and trustee (case-insensitive);
    /// orphaned SIDs get `orphan_default` as their decision. Appends `audit`, its detail
    /// object completed with `items` (how many), in the same transaction. Returns the number
    /// of items per company.
    async fn review_create(
        &self,
        campaign: &crate::review::Campaign,
        orphan_default: &crate::review::ItemDecision,
        audit: NewAuditEvent,
    ) -> StoreResult<Vec<u64>>;
    /// The campaign with its companies and their item and decision counts.
    async fn review_get(
        &self,
        id: crate::review::CampaignId,
    ) -> StoreResult<Option<crate::review::Campaign>>;
    /// Every campaign, newest first, at most `limit`.
    async fn review_list(&self, limit: u32) -> StoreResult<Vec<crate::review::Campaign>>;
    /// Items matching `filter`, by number, at most `filter.limit` (0: no limit).
    async fn review_items(
        &self,
        id: crate::review::CampaignId,
        filter: &crate::review::ItemFilter,
    ) -> StoreResult<Vec<crate::review::ReviewItem>>;
    /// Sets `decision` on the items of `company` numbered `items`, only while the campaign is
    /// `open`, with `audit`, in one transaction. `Ok(None)` (nothing written) when the campaign
    /// is not open; else how many items were set.
    async fn review_decide(
        &self,
        id: crate::review::CampaignId,
        company: &CompanyId,
        items: &[i64],
        decision: &crate::review::ItemDecision,
        audit: NewAuditEvent,
    ) -> StoreResult<Option<u64>>;
    /// Moves an `open` campaign to `closing` (no more decisions). `Ok(false)` when it is
    /// `closed` already; `Ok(true)` when it is (now) `closing`.
    async fn review_begin_close(&self, id: crate::review::CampaignId) -> StoreResult<bool>;
    /// Finishes closing, exactly once: if the campaign is `closing`, inserts each request with
    /// its event and links it to its company, marks the campaign `closed` by `by_name` at
    /// `at`, and appends `audit`, in one transaction. `Ok(false)` and nothing written
    /// otherwise.
    async fn review_finish_close(
        &self,
        id: crate::review::CampaignId,
        at: Timestamp,
        by_name: &str,
        requests: Vec<(ApprovalRequest, NewAuditEvent)>,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    async fn review_link_insert(
        &self,
        link: &crate::review::ReviewLink,
        audit: NewAuditEvent,
    ) -> StoreResult<()>;
    async fn review_link_by_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<Option<crate::review::ReviewLink>>;
    /// The links of a campaign, oldest first.
    async fn review_links(
        &self,
        id: crate::review::CampaignId,
    ) -> StoreResult<Vec<crate::review::ReviewLink>>;
    /// Revokes a link of `campaign` if not revoked, with `audit`; `Ok(false)` otherwise.
    async fn review_link_revoke(
        &self,
        campaign: crate::review::CampaignId,
        id: &str,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    /// The key reviewer links are signed with: the stored one, or `candidate` stored now if
    /// none is (the first replica to ask wins; every replica gets the same key).
    async fn review_link_key(&self, candidate: &str) -> StoreResult<String>;
    /// Open campaigns with a schedule whose next start (`due_at`-independent: created_at plus
    /// the schedule's days) is at or before `now` and that no later campaign repeats yet.
    async fn review_due_repeats(&self, now: Timestamp)
    -> StoreResult<Vec<crate::review::Campaign>>;
    /// Open campaigns due at or before `by` (and not yet past `now`) whose reviewers were not
    /// reminded yet.
    async fn review_due_reminders(
        &self,
        now: Timestamp,
        by: Timestamp,
    ) -> StoreResult<Vec<crate::review::Campaign>>;
    /// Marks the campaign reminded at `at` if it was not, with `audit`, in one transaction;
    /// `Ok(false)` (nothing written) otherwise.
    async fn review_mark_reminded(
        &self,
        id: crate::review::CampaignId,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool>;
    // (review-age)
    /// [`Store::inventory_patch`], and a row it adds to the current generation is first seen
    /// at `now` (the grant a request just made is new, not old).
    async fn inventory_patch_at(
        &self,
        row: &InventoryRow,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<bool>;
}

/// (scale2) Rows read as they are consumed ([`Store::inventory_rows_stream`]).
pub type RowStream = Pin<Box<dyn Stream<Item = StoreResult<InventoryRow>> + Send + 'static>>;

// ---------------------------------------------------------------------------------------------
// Microsoft
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsError {
    /// The identity or mailbox does not exist in the tenant.
    #[error("`{identity}` was not found")]
    NotFound { identity: String },
    /// The identity matches several recipients.
    #[error("`{identity}` matches {candidates} recipients")]
    Ambiguous { identity: String, candidates: usize },
    /// Exchange Admin is not usable in this tenant.
    #[error("Exchange Admin is not ready: {}", state.as_str())]
    NotConfigured {
        state: ExchangeAdminState,
        detail: String,
    },
    /// Throttled or temporarily failing (429, 5xx, network): retry later.
    #[error("Microsoft is unavailable: {detail}")]
    Unavailable {
        detail: String,
        retry_after_secs: Option<u64>,
    },
    /// Exchange refused the change permanently (e.g. the 500-ACE limit).
    #[error("Exchange refused: {code}: {message}")]
    Rejected { code: String, message: String },
}

/// The result of an Exchange Admin status check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusCheck {
    pub state: ExchangeAdminState,
    /// What proved it: AADSTS code, HTTP status, roles in the token. Never a secret.
    pub evidence: String,
}

/// One permission entry on a mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionEntry {
    /// The trustee as Exchange reports it (name, address, SID or object id).
    pub trustee: String,
    /// Resolved, when Exchange or the client could resolve it.
    pub resolved: Option<ResolvedIdentity>,
    pub access_rights: Vec<String>,
    pub inherited: bool,
    pub deny: bool,
}

/// What `view_mailbox_details` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxDetails {
    pub mailbox: ResolvedIdentity,
    pub email_addresses: Vec<String>,
    pub send_on_behalf: Vec<PermissionEntry>,
    /// Further Exchange properties worth showing, as name/value text.
    pub properties: Vec<(String, String)>,
}

/// The outcome of a successful apply call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    Changed,
    AlreadyInState,
}

/// A tenant's organization as Graph describes it, after a token for the tenant was had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantOrganization {
    pub display_name: String,
    /// The default (or else the initial) domain, when Graph names one.
    pub default_domain: Option<String>,
}

/// A recipient as a tenant-wide list shows it, with the names Exchange may print for it in a
/// permission entry or a Send on Behalf list (so the inventory sweep resolves those without a
/// lookup each).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryEntry {
    pub identity: ResolvedIdentity,
    /// Names that identify it (object name, UPN, address, object id): these win over another
    /// recipient's weak name.
    pub names: Vec<String>,
    /// Names that may clash with another recipient's (alias, Exchange guid).
    pub weak_names: Vec<String>,
}

/// A mailbox as the tenant's mailbox list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedMailbox {
    pub entry: DirectoryEntry,
    /// What to name it by when asking for its Full Access.
    pub handle: String,
    /// Its Send on Behalf delegates as listed (names or object ids).
    pub send_on_behalf: Vec<String>,
}

/// One explicit, allowing grant as Exchange lists it (SELF, inherited and deny entries are
/// left out by the port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedGrant {
    /// The mailbox as printed (Send As lists name it; a Full Access answer is about the
    /// mailbox asked for).
    pub mailbox: String,
    /// The trustee as printed (name, address, object id or SID).
    pub trustee: String,
    pub sid: Option<String>,
}

/// A paged read: one item per page, ending after the last page or the first error.
pub type Pages<'a, T> = Pin<Box<dyn Stream<Item = Result<Vec<T>, MsError>> + Send + 'a>>;

/// How many reads the inventory sweep groups into one call, and how many such calls it keeps
/// in flight per tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    pub batch: usize,
    pub in_flight: usize,
}

/// Microsoft: Entra tokens, Graph and the Exchange admin API, for one tenant per call.
#[async_trait]
pub trait Microsoft: Send + Sync {
    /// Fresh check of the Exchange Admin status (drops any cached token first).
    async fn check_status(&self, tenant: TenantId) -> Result<StatusCheck, MsError>;
    async fn resolve(
        &self,
        tenant: TenantId,
        identity: &IdentityInput,
    ) -> Result<ResolvedIdentity, MsError>;
    async fn full_access_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError>;
    async fn send_as_holders(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<Vec<PermissionEntry>, MsError>;
    async fn mailbox_details(
        &self,
        tenant: TenantId,
        mailbox: &ResolvedIdentity,
    ) -> Result<MailboxDetails, MsError>;
    /// Whether the action's trustee holds the action's permission on its mailbox now.
    async fn current_state(
        &self,
        tenant: TenantId,
        action: &CanonicalAction,
    ) -> Result<Presence, MsError>;
    /// Runs exactly this action (convergent: add-if-absent / remove-if-present; Send on Behalf
    /// always with the add/remove form, never replacing the list).
    async fn apply(
        &self,
        tenant: TenantId,
        action: &CanonicalAction,
    ) -> Result<ApplyOutcome, MsError>;
    /// Reads back and reports whether the wanted state holds, polling within the implementation's
    /// replication-lag window before answering false.
    async fn verify(&self, tenant: TenantId, action: &CanonicalAction) -> Result<bool, MsError>;
    /// Proves a consent landed in `tenant`: a fresh token for it and Graph's `organization`
    /// both name `tenant` (else `NotConfigured { state: WrongTenant }`). This proves only that
    /// the connect app may act there; which company it belongs to is the core's decision.
    async fn verify_connection(&self, tenant: TenantId) -> Result<TenantOrganization, MsError>;

    // The reads of the inventory sweep (`crate::ops::inventory::sweep`): tenant-wide lists as pages, and
    // per-recipient reads for many recipients at once (each answer in the order asked).
    /// How the sweep may use `tenant`.
    fn read_limits(&self, tenant: TenantId) -> ReadLimits;
    /// Every mailbox of the tenant.
    fn mailboxes(&self, tenant: TenantId) -> Pages<'static, ListedMailbox>;
    /// Every mail-enabled group (nothing, should Exchange refuse to list them: they are then
    /// looked up like any other name).
    fn groups(&self, tenant: TenantId) -> Pages<'static, DirectoryEntry>;
    /// Every Send As grant of the tenant.
    fn send_as_grants(&self, tenant: TenantId) -> Pages<'static, ListedGrant>;
    /// The Full Access grants of each mailbox (by [`ListedMailbox::handle`]);
    /// `MsError::NotFound` for one deleted since it was listed.
    async fn full_access_many(
        &self,
        tenant: TenantId,
        mailboxes: &[String],
    ) -> Vec<Result<Vec<ListedGrant>, MsError>>;
    /// The direct members of each group (by address); `NotFound` or `Ambiguous` for a group
    /// Exchange does not expand.
    async fn group_members_many(
        &self,
        tenant: TenantId,
        groups: &[String],
    ) -> Vec<Result<Vec<ResolvedIdentity>, MsError>>;
    /// Looks each value up (mailboxes, groups and mail users alike); `NotFound` or
    /// `Ambiguous` for a value that names none or several.
    async fn resolve_many(
        &self,
        tenant: TenantId,
        values: &[String],
    ) -> Vec<Result<ResolvedIdentity, MsError>>;
}
