//! `impl Store for Db`. Each method is one SQL text run on whichever pool the `Db` holds; state
//! changes run in one transaction with their audit append (see the crate docs).

use async_trait::async_trait;
use exogate_core::Entity;
use exogate_core::audit::{AuditEvent, NewAuditEvent, next_event};
use exogate_core::inventory::{
    GroupMember, InventoryRow, InventoryStatus, SweepBegin, SweepLease, SweepStart,
};
use exogate_core::model::*;
use exogate_core::oauth::{OAuthClient, OAuthCode, OAuthGrant, OAuthToken};
use exogate_core::ports::{Store, StoreError, StoreResult};
use exogate_core::request::{ApprovalRequest, Claim, RequestFilter, Transition};
use exogate_core::timed::GrantEndPolicy;
use sqlx::AssertSqlSafe;

use crate::rows::*;
use crate::{Db, db_err};

/// Runs `$body` with `$p` bound to the concrete pool.
macro_rules! with_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            Db::Sqlite($p) => $body,
            Db::Postgres($p) => $body,
        }
    };
}

/// Runs `$sql` with the `$arg`s bound (in placeholder order) on the pool, reading its rows
/// with `$how` (`fetch_optional`, `fetch_all`); a database failure becomes a `StoreError`.
macro_rules! fetch {
    ($db:expr, $how:ident, $sql:expr $(, $arg:expr)* $(,)?) => {
        with_pool!($db, p => sqlx::query_as($sql)$(.bind($arg))*.$how(p).await).map_err(db_err)
    };
}

/// The row `$sql` finds (read as `$row`, converted to its core type), if any.
macro_rules! read_opt {
    ($db:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let row: Option<$row> = fetch!($db, fetch_optional, $sql $(, $arg)*)?;
        to_opt(row)
    }};
}

/// Every row `$sql` finds (read as `$row`, converted to its core type).
macro_rules! read_all {
    ($db:expr, $row:ty, $sql:expr $(, $arg:expr)* $(,)?) => {{
        let rows: Vec<$row> = fetch!($db, fetch_all, $sql $(, $arg)*)?;
        to_vec(rows)
    }};
}

/// Runs `$body` in a write transaction (`BEGIN IMMEDIATE` on SQLite) and commits it if `$body`
/// completes. `?` inside `$body` returns early and the dropped transaction rolls back.
/// `$head` is bound to the SQL that reads (and on PostgreSQL locks) the audit chain head.
macro_rules! in_tx {
    ($db:expr, $tx:ident, $head:ident => $body:expr) => {
        match $db {
            Db::Sqlite(p) => {
                let mut $tx = p.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
                let $head: &'static str = HEAD_SQLITE;
                let out = $body;
                $tx.commit().await.map_err(db_err)?;
                out
            }
            Db::Postgres(p) => {
                let mut $tx = p.begin().await.map_err(db_err)?;
                let $head: &'static str = HEAD_PG;
                let out = $body;
                $tx.commit().await.map_err(db_err)?;
                out
            }
        }
    };
}

/// Whether `$owner` runs the sweep of company `$c`, generation `$g`, inside the transaction
/// `$tx` (PostgreSQL: the state row is share-locked until the transaction ends, so a take-over
/// waits for it).
macro_rules! owner_runs {
    ($db:expr, $tx:ident, $c:expr, $g:expr, $owner:expr) => {{
        let check = match $db {
            Db::Sqlite(_) => INV_RUNNING_SQLITE,
            Db::Postgres(_) => INV_RUNNING_PG,
        };
        let running: Option<(i64,)> = sqlx::query_as(check)
            .bind($c)
            .bind($g)
            .bind($owner)
            .fetch_optional(&mut *$tx)
            .await
            .map_err(db_err)?;
        running.is_some()
    }};
}

/// Appends one audit event inside the transaction `$tx`; evaluates to the stored `AuditEvent`.
/// Always the last statement of a transaction, so the head lock is held as briefly as possible
/// and never before a row lock (no lock-order cycles).
macro_rules! append_audit {
    ($tx:ident, $head:ident, $ev:expr) => {{
        let (seq, hash): (i64, String) = sqlx::query_as($head)
            .fetch_one(&mut *$tx)
            .await
            .map_err(db_err)?;
        let head = if seq == 0 {
            None
        } else {
            Some((seq, hash.as_str()))
        };
        let e: AuditEvent = next_event(head, $ev);
        sqlx::query(INSERT_AUDIT)
            .bind(e.seq)
            .bind(&e.prev_hash)
            .bind(&e.hash)
            .bind(e.event.at.unix_millis())
            .bind(&e.event.kind)
            .bind(&e.event.actor_id)
            .bind(&e.event.actor_name)
            .bind(&e.event.channel)
            .bind(&e.event.company)
            .bind(&e.event.request)
            .bind(&e.event.detail)
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        sqlx::query(UPDATE_HEAD)
            .bind(e.seq)
            .bind(&e.hash)
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        // (notify) The event's notifications, in its transaction.
        crate::notify::Outbox::enqueue_notifications(&mut $tx, &e).await?;
        e
    }};
}

/// Binds a request's progress columns, `decided_by` through `message` (in [`request_cols!`]
/// order; `INSERT_REQUEST` and `TRANSITION` both list them so).
macro_rules! bind_request_progress {
    ($q:expr, $r:expr) => {{
        let r: &ApprovalRequest = $r;
        let d = r.decision.as_ref();
        let c = r.cancellation.as_ref();
        let l = r.lease.as_ref();
        $q.bind(d.map(|d| d.by.to_string()))
            .bind(d.map(|d| d.by_name.to_string()))
            .bind(d.map(|d| d.at.unix_millis()))
            .bind(d.map(|d| d.approved))
            .bind(d.and_then(|d| d.reason.clone()))
            .bind(d.map(|d| d.digest.clone()))
            .bind(c.map(|c| c.by.to_string()))
            .bind(c.map(|c| c.by_name.to_string()))
            .bind(c.map(|c| c.at.unix_millis()))
            .bind(i64::from(r.attempt))
            .bind(l.map(|l| l.worker.clone()))
            .bind(l.map(|l| l.expires_at.unix_millis()))
            .bind(encode_results(&r.results))
            .bind(opt_ts(r.finished_at))
            .bind(r.message.clone())
    }};
}

/// Inserts one request row with every column bound (in [`request_cols!`] order), in the
/// caller's transaction `$tx`; `$actions` is the request's encoded actions. Both
/// `insert_request` and a transition that schedules a timed grant's removal write rows so.
macro_rules! insert_request_row {
    ($tx:expr, $r:expr, $actions:expr) => {{
        let r: &ApprovalRequest = $r;
        let (channel, token, agent) = channel_columns(&r.requester.channel);
        let q = sqlx::query(INSERT_REQUEST)
            .bind(r.id.to_string())
            .bind(r.company.as_str())
            .bind(r.tenant.to_string())
            .bind(r.tool.as_str())
            .bind(r.risk.as_str())
            .bind(r.requester.user.to_string())
            .bind(r.requester.user_name.as_str())
            .bind(channel)
            .bind(token)
            .bind(agent)
            .bind($actions)
            .bind(&r.digest)
            .bind(r.state.as_str())
            .bind(r.created_at.unix_millis())
            .bind(r.expires_at.unix_millis());
        bind_request_progress!(q, r)
            .bind(r.revert_of.map(|x| x.to_string()))
            .bind(opt_ts(r.not_before))
            .bind(r.ends_grant.map(|x| x.to_string()))
            .bind(r.ticket.clone())
            .execute(&mut *$tx)
            .await
            .map_err(db_err)
    }};
}

/// Ends sweep `$gen` of `$company` if `$owner` still runs it, in one transaction: `$end` (bound to
/// company, generation, `$now`, `$value`, owner) sets the sweep's outcome, the `$drop`
/// statements (bound to company, generation) delete the rows the outcome leaves stale, the
/// sweep's progress markers go and `$audit` is appended. Evaluates to whether it ended it.
macro_rules! end_sweep {
    ($db:expr, $company:expr, $gen:expr, $owner:expr, $now:expr, $audit:expr,
     $end:ident($value:expr), $(first $first:ident,)? drop [$($drop:ident),*]) => {{
        let c = $company.as_str();
        let out = in_tx!($db, tx, head => {
            // (review-age) `$first` (bound to company, generation, `$now`) runs while the
            // previous generation is still current; an ended sweep's rollback undoes it.
            $(sqlx::query($first).bind(c).bind($gen).bind($now.unix_millis()).execute(&mut *tx).await.map_err(db_err)?;)?
            let r = sqlx::query($end)
                .bind(c)
                .bind($gen)
                .bind($now.unix_millis())
                .bind($value)
                .bind($owner)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            $(sqlx::query($drop).bind(c).bind($gen).execute(&mut *tx).await.map_err(db_err)?;)*
            sqlx::query(INV_DELETE_PROGRESS).bind(c).execute(&mut *tx).await.map_err(db_err)?;
            append_audit!(tx, head, $audit);
            true
        });
        Ok(out)
    }};
}

/// Adds `$items` to sweep `$gen` of company `$company` (its id) in multi-row INSERTs (`$sql(n)` for `n` items,
/// `$q = $bind` binding `$item`) and records the `$done` progress markers, in one transaction,
/// if `$owner` still runs the sweep. Evaluates to whether it did.
macro_rules! add_to_sweep {
    ($db:expr, $company:expr, $gen:expr, $owner:expr; $items:expr, $done:expr; $sql:expr,
     |$q:ident, $item:ident| $bind:expr) => {{
        let c: &str = $company;
        let generation = $gen;
        let out = in_tx!($db, tx, _head => {
            if !owner_runs!($db, tx, c, generation, $owner) {
                return Ok(false);
            }
            for chunk in $items.chunks(INSERT_ROWS_PER_STATEMENT) {
                let mut $q = sqlx::query(AssertSqlSafe($sql(chunk.len())));
                for $item in chunk {
                    $q = $bind;
                }
                $q.execute(&mut *tx).await.map_err(db_err)?;
            }
            for d in $done {
                sqlx::query(INV_INSERT_PROGRESS).bind(c).bind(generation).bind(d).execute(&mut *tx).await.map_err(db_err)?;
            }
            true
        });
        Ok(out)
    }};
}

/// Binds a user's columns `id` through `password_hash` (`$1`…`$6` of `INSERT_USER` and
/// `UPDATE_USER`).
macro_rules! bind_user {
    ($q:expr, $u:expr) => {{
        let u: &User = $u;
        $q.bind(u.id.to_string())
            .bind(u.name.as_str())
            .bind(u.role.as_str())
            .bind(u.entitlement.encode())
            .bind(u.disabled)
            .bind(u.password_hash.as_ref().map(|h| h.expose().to_owned()))
    }};
}

const HEAD_SQLITE: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";
const HEAD_PG: &str = "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE";
const UPDATE_HEAD: &str = "UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1";
const INSERT_AUDIT: &str = concat!(
    "INSERT INTO audit_log (",
    audit_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
);

const INSERT_COMPANY: &str =
    "INSERT INTO companies (id, name, separate_approver, created_at) VALUES ($1, $2, $3, $4)";
const GET_COMPANY: &str = concat!("SELECT ", company_cols!(), " FROM companies WHERE id = $1");
const LIST_COMPANIES: &str = concat!("SELECT ", company_cols!(), " FROM companies ORDER BY id");
const SET_CONNECTION: &str = "UPDATE companies SET tenant_id = $2, tenant_display_name = $3, tenant_default_domain = $4, connected_at = $5, status_state = NULL, status_checked_at = NULL, status_last_good_at = NULL, status_last_good_state = NULL, status_detail = NULL WHERE id = $1";
const SET_STATUS: &str = "UPDATE companies SET status_state = $3, status_checked_at = $4, status_last_good_at = $5, status_last_good_state = $6, status_detail = $7 WHERE id = $1 AND tenant_id = $2";
const RENAME_COMPANY: &str = "UPDATE companies SET name = $2 WHERE id = $1";
const SET_SEPARATE_APPROVER: &str =
    "UPDATE companies SET separate_approver = $3 WHERE id = $1 AND separate_approver = $2";
const COMPANY_EXISTS: &str = "SELECT COUNT(*) FROM companies WHERE id = $1";

const INSERT_USER: &str = concat!(
    "INSERT INTO users (",
    user_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
const GET_USER: &str = concat!("SELECT ", user_cols!(), " FROM users WHERE id = $1");
const GET_USER_BY_NAME: &str = concat!("SELECT ", user_cols!(), " FROM users WHERE name = $1");
const LIST_USERS: &str = concat!("SELECT ", user_cols!(), " FROM users ORDER BY name");
const UPDATE_USER: &str = "UPDATE users SET name = $2, role = $3, entitlement = $4, disabled = $5, password_hash = $6 WHERE id = $1";

// (msft-signin)
/// Pending sign-ins this long past their expiry are dropped when a new one is stored.
const SIGNIN_PRUNE_MS: i64 = 3_600_000;
const SIGNIN_PRUNE_STATES: &str = "DELETE FROM signin_states WHERE expires_at < $1";
const SIGNIN_PUT_STATE: &str = "INSERT INTO signin_states (state_hash, browser_hash, nonce, verifier, next, expires_at) VALUES ($1, $2, $3, $4, $5, $6)";
const SIGNIN_TAKE_STATE: &str = "DELETE FROM signin_states WHERE state_hash = $1 RETURNING state_hash, browser_hash, nonce, verifier, next, expires_at";
const SIGNIN_IDENTITY: &str =
    "SELECT user_id, suspended FROM signin_identities WHERE tenant_id = $1 AND object_id = $2";
const SIGNIN_LINK: &str = "INSERT INTO signin_identities (tenant_id, object_id, user_id, suspended, created_at) VALUES ($1, $2, $3, 0, $4)";
const SIGNIN_SUSPEND: &str = "UPDATE signin_identities SET suspended = $4 WHERE tenant_id = $1 AND object_id = $2 AND user_id = $3";

const TOTP_GET: &str = "SELECT secret, last_step, created_at FROM totp_factors WHERE user_id = $1";
const TOTP_DELETE: &str = "DELETE FROM totp_factors WHERE user_id = $1";
const TOTP_DELETE_CODES: &str = "DELETE FROM totp_recovery_codes WHERE user_id = $1";
const TOTP_INSERT: &str =
    "INSERT INTO totp_factors (user_id, secret, last_step, created_at) VALUES ($1, $2, $3, $4)";
const TOTP_INSERT_CODE: &str =
    "INSERT INTO totp_recovery_codes (user_id, code_hash, used_at) VALUES ($1, $2, NULL)";
const TOTP_USE_STEP: &str = "UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND (last_step IS NULL OR last_step < $2)";
const TOTP_USE_CODE: &str = "UPDATE totp_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";

const INSERT_TOKEN: &str = concat!(
    "INSERT INTO api_tokens (",
    token_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
);
const GET_TOKEN: &str = concat!("SELECT ", token_cols!(), " FROM api_tokens WHERE id = $1");
const GET_TOKEN_BY_HASH: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM api_tokens WHERE secret_hash = $1"
);
const LIST_TOKENS: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM api_tokens ORDER BY created_at, id"
);
const LIST_TOKENS_OF: &str = concat!(
    "SELECT ",
    token_cols!(),
    " FROM api_tokens WHERE owner_id = $1 ORDER BY created_at, id"
);
const REVOKE_TOKEN: &str =
    "UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const TOUCH_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1";

const INSERT_REQUEST: &str = concat!(
    "INSERT INTO approval_requests (",
    request_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)"
);
const GET_REQUEST: &str = concat!(
    "SELECT ",
    request_cols!(),
    " FROM approval_requests WHERE id = $1"
);
const TRANSITION: &str = "UPDATE approval_requests SET state = $2, decided_by = $3, decided_by_name = $4, decided_at = $5, decision_approved = $6, decision_reason = $7, decision_digest = $8, cancelled_by = $9, cancelled_by_name = $10, cancelled_at = $11, attempt = $12, lease_worker = $13, lease_expires_at = $14, results = $15, finished_at = $16, message = $17 WHERE id = $1 AND state = $18";
const TRANSITION_FENCED: &str = "UPDATE approval_requests SET state = $2, decided_by = $3, decided_by_name = $4, decided_at = $5, decision_approved = $6, decision_reason = $7, decision_digest = $8, cancelled_by = $9, cancelled_by_name = $10, cancelled_at = $11, attempt = $12, lease_worker = $13, lease_expires_at = $14, results = $15, finished_at = $16, message = $17 WHERE id = $1 AND state = $18 AND attempt = $19";
const CLAIM_SQLITE: &str = "UPDATE approval_requests SET state = 'executing', attempt = attempt + 1, lease_worker = $1, lease_expires_at = $2 \
    WHERE id = (SELECT id FROM approval_requests WHERE (state = 'approved' AND (not_before IS NULL OR not_before <= $3)) OR (state = 'executing' AND lease_expires_at <= $3) ORDER BY created_at, id LIMIT 1) \
    AND ((state = 'approved' AND (not_before IS NULL OR not_before <= $3)) OR (state = 'executing' AND lease_expires_at <= $3)) RETURNING id";
const CLAIM_PG: &str = "UPDATE approval_requests SET state = 'executing', attempt = attempt + 1, lease_worker = $1, lease_expires_at = $2 \
    WHERE id = (SELECT id FROM approval_requests WHERE (state = 'approved' AND (not_before IS NULL OR not_before <= $3)) OR (state = 'executing' AND lease_expires_at <= $3) ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
    AND ((state = 'approved' AND (not_before IS NULL OR not_before <= $3)) OR (state = 'executing' AND lease_expires_at <= $3)) RETURNING id";
// (timed-grants)
const SET_NOT_BEFORE: &str = "UPDATE approval_requests SET not_before = $2 WHERE id = $1";
const GET_GRANT_END_POLICY: &str =
    "SELECT end_required, max_secs FROM grant_end_policies WHERE company_id = $1";
const PUT_GRANT_END_POLICY: &str = "INSERT INTO grant_end_policies (company_id, end_required, max_secs) VALUES ($1, $2, $3) \
    ON CONFLICT (company_id) DO UPDATE SET end_required = excluded.end_required, max_secs = excluded.max_secs";
const DUE_FOR_EXPIRY: &str = "SELECT id FROM approval_requests WHERE state = 'pending' AND expires_at <= $1 ORDER BY expires_at, id LIMIT $2";

const LIST_AUDIT: &str = concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
);
const RECENT_AUDIT: &str = concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit_log WHERE ($1 IS NULL OR company_id = $1) AND ($2 IS NULL OR request_id = $2) ORDER BY seq DESC LIMIT $3"
);
const SEARCH_AUDIT: &str = concat!(
    "SELECT ",
    audit_cols!(),
    " FROM audit_log WHERE ($1 IS NULL OR company_id = $1) AND ($2 IS NULL OR request_id = $2)",
    " AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR LOWER(actor_name) = $4)",
    " AND ($5 IS NULL OR at >= $5) AND ($6 IS NULL OR at <= $6) AND ($7 IS NULL OR seq < $7)",
    " ORDER BY seq DESC LIMIT $8"
);
const GET_HEAD: &str = "SELECT seq, hash FROM audit_head WHERE id = 1";

const PUT_SESSION: &str = "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at";
const GET_SESSION: &str =
    "SELECT id, data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2";
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

const INSERT_CONSENT: &str = concat!(
    "INSERT INTO consent_states (",
    consent_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const CONSUME_CONSENT: &str = concat!(
    "UPDATE consent_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL AND expires_at > $2 \
    AND (session_id IS NULL OR session_id = $3) RETURNING ",
    consent_cols!()
);

fn opt_ts(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::unix_millis)
}

fn not_found(what: Entity, id: impl std::fmt::Display) -> StoreError {
    StoreError::NotFound {
        what,
        id: id.to_string(),
    }
}

fn to_vec<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> StoreResult<Vec<T>> {
    rows.into_iter().map(T::try_from).collect()
}

fn to_opt<R, T: TryFrom<R, Error = StoreError>>(row: Option<R>) -> StoreResult<Option<T>> {
    row.map(T::try_from).transpose()
}

/// Builds the request-list query. Only placeholders are generated; every value is bound.
fn list_requests_sql(filter: &RequestFilter) -> String {
    let mut sql = String::from(concat!(
        "SELECT ",
        request_cols!(),
        " FROM approval_requests WHERE 1 = 1"
    ));
    let mut n = 0;
    let mut placeholders = |count: usize| {
        let list: Vec<String> = (0..count)
            .map(|_| {
                n += 1;
                format!("${n}")
            })
            .collect();
        list.join(", ")
    };
    if let Some(c) = &filter.companies {
        if c.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            sql.push_str(&format!(" AND company_id IN ({})", placeholders(c.len())));
        }
    }
    if let Some(s) = &filter.states {
        if s.is_empty() {
            sql.push_str(" AND 1 = 0");
        } else {
            sql.push_str(&format!(" AND state IN ({})", placeholders(s.len())));
        }
    }
    if filter.requester.is_some() {
        sql.push_str(&format!(" AND requester_id = {}", placeholders(1)));
    }
    sql.push_str(&format!(
        " ORDER BY created_at DESC, id DESC LIMIT {}",
        placeholders(1)
    ));
    sql
}

#[async_trait]
impl Store for Db {
    async fn insert_company(&self, c: &Company, audit: NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            sqlx::query(INSERT_COMPANY)
                .bind(c.id.as_str())
                .bind(&c.name)
                .bind(c.separate_approver)
                .bind(c.created_at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if let Some(conn) = &c.connection {
                sqlx::query(SET_CONNECTION)
                    .bind(c.id.as_str())
                    .bind(conn.tenant_id.to_string())
                    .bind(&conn.display_name)
                    .bind(&conn.default_domain)
                    .bind(conn.connected_at.unix_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn get_company(&self, id: &CompanyId) -> StoreResult<Option<Company>> {
        read_opt!(self, CompanyRow, GET_COMPANY, id.as_str())
    }

    async fn list_companies(&self) -> StoreResult<Vec<Company>> {
        read_all!(self, CompanyRow, LIST_COMPANIES)
    }

    async fn set_connection(
        &self,
        id: &CompanyId,
        connection: Option<&Connection>,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            let r = sqlx::query(SET_CONNECTION)
                .bind(id.as_str())
                .bind(connection.map(|c| c.tenant_id.to_string()))
                .bind(connection.map(|c| c.display_name.clone()))
                .bind(connection.map(|c| c.default_domain.clone()))
                .bind(connection.map(|c| c.connected_at.unix_millis()))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Err(not_found(Entity::Company, id));
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn set_status(
        &self,
        id: &CompanyId,
        tenant: TenantId,
        s: &StatusRecord,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        in_tx!(self, tx, head => {
            let r = sqlx::query(SET_STATUS)
                .bind(id.as_str())
                .bind(tenant.to_string())
                .bind(s.state.as_str())
                .bind(s.checked_at.unix_millis())
                .bind(opt_ts(s.last_good_at))
                .bind(s.last_good_state.map(ExchangeAdminState::as_str))
                .bind(&s.detail)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            append_audit!(tx, head, audit);
        });
        Ok(true)
    }

    async fn rename_company(
        &self,
        id: &CompanyId,
        name: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            let r = sqlx::query(RENAME_COMPANY).bind(id.as_str()).bind(name).execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Err(not_found(Entity::Company, id));
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn set_separate_approver(
        &self,
        id: &CompanyId,
        from: bool,
        to: bool,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        in_tx!(self, tx, head => {
            let r = sqlx::query(SET_SEPARATE_APPROVER).bind(id.as_str()).bind(from).bind(to).execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() != 1 {
                let (n,): (i64,) = sqlx::query_as(COMPANY_EXISTS).bind(id.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
                if n == 0 {
                    return Err(not_found(Entity::Company, id));
                }
                return Ok(false);
            }
            append_audit!(tx, head, audit);
        });
        Ok(true)
    }

    async fn insert_user(&self, u: &User, audit: NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            bind_user!(sqlx::query(INSERT_USER), u)
                .bind(u.created_at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        read_opt!(self, UserRow, GET_USER, id.to_string())
    }

    async fn get_user_by_name(&self, name: &UserName) -> StoreResult<Option<User>> {
        read_opt!(self, UserRow, GET_USER_BY_NAME, name.as_str())
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        read_all!(self, UserRow, LIST_USERS)
    }

    async fn update_user(&self, u: &User, audit: NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            let r = bind_user!(sqlx::query(UPDATE_USER), u)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Err(not_found(Entity::User, u.id));
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn insert_token(&self, t: &ApiToken, audit: NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            sqlx::query(INSERT_TOKEN)
                .bind(t.id.to_string())
                .bind(t.owner.to_string())
                .bind(&t.name)
                .bind(&t.secret_hash)
                .bind(t.created_at.unix_millis())
                .bind(opt_ts(t.last_used_at))
                .bind(opt_ts(t.revoked_at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn get_token(&self, id: ApiTokenId) -> StoreResult<Option<ApiToken>> {
        read_opt!(self, TokenRow, GET_TOKEN, id.to_string())
    }

    async fn get_token_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiToken>> {
        read_opt!(self, TokenRow, GET_TOKEN_BY_HASH, secret_hash)
    }

    async fn list_tokens(&self, owner: Option<UserId>) -> StoreResult<Vec<ApiToken>> {
        let rows: Vec<TokenRow> = match owner {
            Some(o) => fetch!(self, fetch_all, LIST_TOKENS_OF, o.to_string()),
            None => fetch!(self, fetch_all, LIST_TOKENS),
        }?;
        to_vec(rows)
    }

    async fn revoke_token(
        &self,
        id: ApiTokenId,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        if self.get_token(id).await?.is_none() {
            return Err(not_found(Entity::ApiToken, id));
        }
        in_tx!(self, tx, head => {
            let r = sqlx::query(REVOKE_TOKEN).bind(id.to_string()).bind(at.unix_millis()).execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            append_audit!(tx, head, audit);
        });
        Ok(true)
    }

    async fn touch_token(&self, id: ApiTokenId, at: Timestamp) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(TOUCH_TOKEN).bind(id.to_string()).bind(at.unix_millis()).execute(p).await.map(|_| ())).map_err(db_err)?;
        Ok(())
    }

    async fn insert_request(&self, r: &ApprovalRequest, audit: NewAuditEvent) -> StoreResult<()> {
        let actions = exogate_core::action::encode_actions(&r.actions);
        in_tx!(self, tx, head => {
            insert_request_row!(tx, r, &actions)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn get_request(&self, id: RequestId) -> StoreResult<Option<ApprovalRequest>> {
        read_opt!(self, RequestRow, GET_REQUEST, id.to_string())
    }

    async fn count_requests_by_state(
        &self,
    ) -> StoreResult<Vec<(exogate_core::request::RequestState, u64)>> {
        let rows: Vec<(String, i64)> = fetch!(self, fetch_all, COUNT_REQUESTS_BY_STATE)?;
        rows.into_iter()
            .map(|(state, n)| {
                exogate_core::request::RequestState::parse(&state)
                    .map(|s| (s, u64::try_from(n).unwrap_or(0)))
                    .ok_or_else(|| StoreError::Corrupt(format!("request state `{state}`")))
            })
            .collect()
    }

    async fn list_requests(&self, filter: &RequestFilter) -> StoreResult<Vec<ApprovalRequest>> {
        let sql = list_requests_sql(filter);
        let limit = i64::from(filter.limit.unwrap_or(100).clamp(1, 1000));
        let rows: Vec<RequestRow> = with_pool!(self, p => {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()));
            for c in filter.companies.iter().flatten() {
                q = q.bind(c.as_str().to_owned());
            }
            for s in filter.states.iter().flatten() {
                q = q.bind(s.as_str());
            }
            if let Some(u) = filter.requester {
                q = q.bind(u.to_string());
            }
            q.bind(limit).fetch_all(p).await
        })
        .map_err(db_err)?;
        to_vec(rows)
    }

    async fn transition(&self, t: &Transition, audit: NewAuditEvent) -> StoreResult<bool> {
        if !t.expected_state.can_become(t.next.state) {
            return Err(StoreError::Corrupt(format!(
                "refused transition `{}` -> `{}`",
                t.expected_state.as_str(),
                t.next.state.as_str()
            )));
        }
        let n = &t.next;
        let sql = if t.expected_attempt.is_some() {
            TRANSITION_FENCED
        } else {
            TRANSITION
        };
        in_tx!(self, tx, head => {
            let q = sqlx::query(sql).bind(n.id.to_string()).bind(n.state.as_str());
            let mut q = bind_request_progress!(q, n).bind(t.expected_state.as_str());
            if let Some(a) = t.expected_attempt {
                q = q.bind(i64::from(a));
            }
            let r = q.execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            // (timed-grants)
            sqlx::query(SET_NOT_BEFORE).bind(n.id.to_string()).bind(opt_ts(n.not_before)).execute(&mut *tx).await.map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(true)
    }

    async fn claim_next(
        &self,
        worker: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> StoreResult<Option<Claim>> {
        let claim_sql = match self {
            Db::Sqlite(_) => CLAIM_SQLITE,
            Db::Postgres(_) => CLAIM_PG,
        };
        let claimed = in_tx!(self, tx, head => {
            let id: Option<(String,)> = sqlx::query_as(claim_sql)
                .bind(worker)
                .bind(lease_until.unix_millis())
                .bind(now.unix_millis())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let Some((id,)) = id else { return Ok(None) };
            let row: RequestRow = sqlx::query_as(GET_REQUEST).bind(&id).fetch_one(&mut *tx).await.map_err(db_err)?;
            let request = ApprovalRequest::try_from(row)?;
            let ev = NewAuditEvent::system(now, exogate_core::audit::AuditKind::ExecutionClaimed)
                .company(&request.company)
                .request(request.id)
                .detail(serde_json::json!({
                    "attempt": request.attempt, "worker": worker, "lease_until": lease_until.unix_millis(),
                }));
            append_audit!(tx, head, ev);
            request
        });
        let attempt = claimed.attempt;
        Ok(Some(Claim {
            request: claimed,
            worker: worker.to_owned(),
            attempt,
        }))
    }

    async fn due_for_expiry(&self, now: Timestamp, limit: u32) -> StoreResult<Vec<RequestId>> {
        let rows: Vec<(String,)> = fetch!(
            self,
            fetch_all,
            DUE_FOR_EXPIRY,
            now.unix_millis(),
            i64::from(limit)
        )?;
        rows.into_iter()
            .map(|(id,)| {
                RequestId::parse(&id).map_err(|_| StoreError::Corrupt(format!("request id `{id}`")))
            })
            .collect()
    }

    async fn append_audit(&self, audit: NewAuditEvent) -> StoreResult<AuditEvent> {
        let e = in_tx!(self, tx, head => append_audit!(tx, head, audit));
        Ok(e)
    }

    async fn list_audit(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let rows: Vec<AuditRow> = fetch!(self, fetch_all, LIST_AUDIT, after_seq, i64::from(limit))?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn recent_audit(
        &self,
        company: Option<&CompanyId>,
        request: Option<RequestId>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEvent>> {
        let c = company.map(|c| c.as_str().to_owned());
        let r = request.map(|r| r.to_string());
        let rows: Vec<AuditRow> = fetch!(self, fetch_all, RECENT_AUDIT, &c, &r, i64::from(limit))?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn search_audit(
        &self,
        f: &exogate_core::audit::AuditFilter,
    ) -> StoreResult<Vec<AuditEvent>> {
        let c = f.company.as_ref().map(|c| c.as_str().to_owned());
        let r = f.request.map(|r| r.to_string());
        let actor = f.actor.as_ref().map(|a| a.to_ascii_lowercase());
        let since = f.since.map(Timestamp::unix_millis);
        let until = f.until.map(Timestamp::unix_millis);
        let rows: Vec<AuditRow> = with_pool!(self, p => sqlx::query_as(SEARCH_AUDIT)
            .bind(&c)
            .bind(&r)
            .bind(&f.kind)
            .bind(&actor)
            .bind(since)
            .bind(until)
            .bind(f.before_seq)
            .bind(i64::from(f.limit))
            .fetch_all(p)
            .await)
        .map_err(db_err)?;
        Ok(rows.into_iter().map(AuditEvent::from).collect())
    }

    async fn audit_head(&self) -> StoreResult<Option<(i64, String)>> {
        let head: Option<(i64, String)> = fetch!(self, fetch_optional, GET_HEAD)?;
        Ok(head.filter(|(seq, _)| *seq > 0))
    }

    async fn put_session(&self, s: &SessionRecord) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(PUT_SESSION).bind(&s.id).bind(&s.data).bind(s.expires_at.unix_millis()).execute(p).await.map(|_| ())).map_err(db_err)?;
        Ok(())
    }

    async fn get_session(&self, id: &str, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let row: Option<SessionRow> =
            fetch!(self, fetch_optional, GET_SESSION, id, now.unix_millis())?;
        Ok(row.map(|r| SessionRecord {
            id: r.id,
            data: r.data,
            expires_at: Timestamp::from_unix_millis(r.expires_at),
        }))
    }

    async fn delete_session(&self, id: &str) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(DELETE_SESSION).bind(id).execute(p).await.map(|_| ()))
            .map_err(db_err)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        let r = with_pool!(self, p => sqlx::query(DELETE_EXPIRED_SESSIONS).bind(now.unix_millis()).execute(p).await.map(|r| r.rows_affected())).map_err(db_err)?;
        Ok(r)
    }

    async fn insert_consent_state(&self, s: &ConsentState) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(INSERT_CONSENT)
            .bind(&s.state_hash)
            .bind(s.company.as_str())
            .bind(s.user.to_string())
            .bind(&s.session_id)
            .bind(s.purpose.as_str())
            .bind(s.expected_tenant.map(|t| t.to_string()))
            .bind(s.created_at.unix_millis())
            .bind(s.expires_at.unix_millis())
            .bind(opt_ts(s.used_at))
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(db_err)?;
        Ok(())
    }

    async fn consume_consent_state(
        &self,
        state_hash: &str,
        session_id: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<Option<ConsentState>> {
        read_opt!(
            self,
            ConsentRow,
            CONSUME_CONSENT,
            state_hash,
            now.unix_millis(),
            session_id
        )
    }

    async fn inventory_begin_sweep(
        &self,
        company: &CompanyId,
        tenant: TenantId,
        now: Timestamp,
        lease: &SweepLease,
        audit: NewAuditEvent,
    ) -> StoreResult<SweepBegin> {
        let c = company.as_str();
        let t = tenant.to_string();
        let lock = match self {
            Db::Sqlite(_) => INV_SWEEP_SQLITE,
            Db::Postgres(_) => INV_SWEEP_PG,
        };
        let until = lease.until.unix_millis();
        let out = in_tx!(self, tx, head => {
            type Row = (String, Option<i64>, i64, String, Option<String>, Option<i64>, i64);
            let state: Option<Row> = sqlx::query_as(lock)
                .bind(c)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let start = match state {
                Some((_, _, sweep_gen, st, owner, Some(lease_until), started))
                    if st == "running"
                        && lease_until > now.unix_millis()
                        && owner.as_deref() != Some(lease.owner.as_str()) =>
                {
                    return Ok(SweepBegin::Busy {
                        generation: sweep_gen,
                        started_at: Timestamp::from_unix_millis(started),
                        lease_until: Timestamp::from_unix_millis(lease_until),
                    });
                }
                Some((tid, _, sweep_gen, st, _, _, _)) if st == "running" && tid == t => {
                    let done: Vec<(String,)> = sqlx::query_as(INV_PROGRESS)
                        .bind(c)
                        .bind(sweep_gen)
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    sqlx::query(INV_TAKE_OVER).bind(c).bind(&lease.owner).bind(until).execute(&mut *tx).await.map_err(db_err)?;
                    SweepStart { generation: sweep_gen, resumed: true, done: done.into_iter().map(|d| d.0).collect() }
                }
                Some((tid, current, sweep_gen, _, _, _, _)) => {
                    // A new tenant invalidates the old inventory entirely.
                    let keep = if tid == t { current.unwrap_or(-1) } else { -1 };
                    sqlx::query(INV_DELETE_OTHER_GENS).bind(c).bind(keep).execute(&mut *tx).await.map_err(db_err)?;
                    sqlx::query(INV_DELETE_OTHER_MEMBERS).bind(c).bind(keep).execute(&mut *tx).await.map_err(db_err)?;
                    sqlx::query(INV_DELETE_OTHER_NAMES).bind(c).bind(keep).execute(&mut *tx).await.map_err(db_err)?;
                    sqlx::query(INV_DELETE_PROGRESS).bind(c).execute(&mut *tx).await.map_err(db_err)?;
                    let next = sweep_gen + 1;
                    sqlx::query(INV_RESTART)
                        .bind(c)
                        .bind(&t)
                        .bind(next)
                        .bind(now.unix_millis())
                        .bind(tid == t)
                        .bind(&lease.owner)
                        .bind(until)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    SweepStart { generation: next, resumed: false, done: Vec::new() }
                }
                None => {
                    let r = sqlx::query(INV_INSERT_STATE)
                        .bind(c)
                        .bind(&t)
                        .bind(now.unix_millis())
                        .bind(&lease.owner)
                        .bind(until)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if r.rows_affected() == 0 {
                        // A first sweep of the company started at the same moment (PostgreSQL:
                        // there was no row to lock yet).
                        let (_, _, sweep_gen, _, _, lease_until, started): Row = sqlx::query_as(lock)
                            .bind(c)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db_err)?;
                        return Ok(SweepBegin::Busy {
                            generation: sweep_gen,
                            started_at: Timestamp::from_unix_millis(started),
                            lease_until: Timestamp::from_unix_millis(lease_until.unwrap_or(started)),
                        });
                    }
                    SweepStart { generation: 1, resumed: false, done: Vec::new() }
                }
            };
            let mut audit = audit;
            let mut detail = serde_json::from_str::<serde_json::Value>(&audit.detail)
                .ok()
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| serde_json::json!({}));
            detail["generation"] = serde_json::json!(start.generation);
            detail["resumed"] = serde_json::json!(start.resumed);
            audit.detail = detail.to_string();
            append_audit!(tx, head, audit);
            SweepBegin::Started(start)
        });
        Ok(out)
    }

    async fn inventory_renew_lease(
        &self,
        company: &CompanyId,
        generation: i64,
        lease: &SweepLease,
    ) -> StoreResult<bool> {
        let n = with_pool!(self, p => sqlx::query(INV_RENEW)
            .bind(company.as_str())
            .bind(generation)
            .bind(&lease.owner)
            .bind(lease.until.unix_millis())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db_err)?;
        Ok(n == 1)
    }

    async fn inventory_write_chunk(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        rows: &[InventoryRow],
        done: &[String],
    ) -> StoreResult<bool> {
        let c = company.as_str();
        add_to_sweep!(self, c, generation, owner; rows, done; insert_rows_sql,
            |q, r| bind_inventory_row!(q, c, generation, r))
    }

    async fn inventory_group_trustees(
        &self,
        company: &CompanyId,
        generation: i64,
    ) -> StoreResult<Vec<(String, String)>> {
        fetch!(
            self,
            fetch_all,
            INV_GROUP_TRUSTEES,
            company.as_str(),
            generation
        )
    }

    async fn inventory_write_members(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        members: &[GroupMember],
        done: &[String],
    ) -> StoreResult<bool> {
        let c = company.as_str();
        add_to_sweep!(self, c, generation, owner; members, done; insert_members_sql, |q, m| q
            .bind(c)
            .bind(generation)
            .bind(m.group.to_ascii_lowercase())
            .bind(m.member.object_id.to_ascii_lowercase())
            .bind(m.member.primary_address.clone())
            .bind(m.member.display_name.clone())
            .bind(m.member.kind.as_str()))
    }

    async fn inventory_finish_sweep(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        now: Timestamp,
        mailboxes: u64,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let mailboxes = i64::try_from(mailboxes).unwrap_or(i64::MAX);
        end_sweep!(self, company, generation, owner, now, audit,
            INV_FINISH(mailboxes), first INV_CARRY_FIRST_SEEN, drop [INV_DELETE_OTHER_GENS, INV_DELETE_OTHER_MEMBERS, INV_DELETE_OTHER_NAMES])
    }

    async fn inventory_fail_sweep(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        now: Timestamp,
        error: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        end_sweep!(self, company, generation, owner, now, audit,
            INV_FAIL(error), drop [INV_DELETE_GEN, INV_DELETE_GEN_MEMBERS, INV_DELETE_GEN_NAMES])
    }

    async fn inventory_patch(&self, row: &InventoryRow, present: bool) -> StoreResult<bool> {
        patch_inventory(self, row, present, None).await
    }

    async fn inventory_status(&self, company: &CompanyId) -> StoreResult<Option<InventoryStatus>> {
        read_opt!(self, InventoryStateDb, INV_STATUS, company.as_str())
    }

    async fn inventory_by_mailbox(
        &self,
        company: &CompanyId,
        mailbox: &str,
    ) -> StoreResult<Vec<InventoryRow>> {
        let m = mailbox.trim().to_lowercase();
        read_all!(self, InventoryRowDb, INV_BY_MAILBOX, company.as_str(), &m)
    }

    async fn inventory_by_trustee(
        &self,
        company: &CompanyId,
        needle: &str,
    ) -> StoreResult<Vec<InventoryRow>> {
        let n = needle.trim().to_lowercase();
        let like = format!(
            "{}@%",
            n.replace('!', "!!").replace('%', "!%").replace('_', "!_")
        );
        read_all!(
            self,
            InventoryRowDb,
            INV_BY_TRUSTEE,
            company.as_str(),
            &n,
            &like
        )
    }

    async fn inventory_rows(&self, company: &CompanyId) -> StoreResult<Vec<InventoryRow>> {
        read_all!(self, InventoryRowDb, INV_ALL, company.as_str())
    }

    async fn oauth_insert_client(&self, c: &OAuthClient) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(OAUTH_INSERT_CLIENT)
            .bind(&c.client_id)
            .bind(&c.name)
            .bind(c.redirect_uris.join("\n"))
            .bind(c.created_at.unix_millis())
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(db_err)
    }

    async fn oauth_get_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        let row: Option<OAuthClientRow> = with_pool!(self, p => sqlx::query_as(OAUTH_GET_CLIENT).bind(client_id).fetch_optional(p).await).map_err(db_err)?;
        to_opt(row)
    }

    async fn oauth_insert_code(&self, c: &OAuthCode) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(OAUTH_INSERT_CODE)
            .bind(&c.code_hash)
            .bind(&c.client_id)
            .bind(&c.client_name)
            .bind(c.user.to_string())
            .bind(&c.redirect_uri)
            .bind(&c.code_challenge)
            .bind(&c.resource)
            .bind(c.created_at.unix_millis())
            .bind(c.expires_at.unix_millis())
            .bind(opt_ts(c.used_at))
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(db_err)
    }

    async fn oauth_use_code(
        &self,
        code_hash: &str,
        now: Timestamp,
    ) -> StoreResult<Option<OAuthCode>> {
        let row: Option<OAuthCodeRow> = with_pool!(self, p => sqlx::query_as(OAUTH_USE_CODE).bind(code_hash).bind(now.unix_millis()).fetch_optional(p).await).map_err(db_err)?;
        to_opt(row)
    }

    async fn oauth_insert_grant(
        &self,
        g: &OAuthGrant,
        tokens: &[OAuthToken],
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            sqlx::query(OAUTH_INSERT_GRANT)
                .bind(g.id.to_string())
                .bind(g.user.to_string())
                .bind(&g.client_id)
                .bind(&g.client_name)
                .bind(&g.resource)
                .bind(&g.code_hash)
                .bind(g.created_at.unix_millis())
                .bind(opt_ts(g.last_used_at))
                .bind(opt_ts(g.revoked_at))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for t in tokens {
                bind_oauth_token!(t).execute(&mut *tx).await.map_err(db_err)?;
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn oauth_get_grant(&self, id: ApiTokenId) -> StoreResult<Option<OAuthGrant>> {
        let row: Option<OAuthGrantRow> = with_pool!(self, p => sqlx::query_as(OAUTH_GET_GRANT).bind(id.to_string()).fetch_optional(p).await).map_err(db_err)?;
        to_opt(row)
    }

    async fn oauth_list_grants(&self, user: UserId) -> StoreResult<Vec<OAuthGrant>> {
        let rows: Vec<OAuthGrantRow> = with_pool!(self, p => sqlx::query_as(OAUTH_LIST_GRANTS).bind(user.to_string()).fetch_all(p).await).map_err(db_err)?;
        to_vec(rows)
    }

    async fn oauth_get_token(
        &self,
        token_hash: &str,
    ) -> StoreResult<Option<(OAuthToken, OAuthGrant)>> {
        let row: Option<OAuthTokenRow> = with_pool!(self, p => sqlx::query_as(OAUTH_GET_TOKEN).bind(token_hash).fetch_optional(p).await).map_err(db_err)?;
        let Some(token) = to_opt::<_, OAuthToken>(row)? else {
            return Ok(None);
        };
        let grant = self
            .oauth_get_grant(token.grant)
            .await?
            .ok_or_else(|| not_found(Entity::ApiToken, token.grant))?;
        Ok(Some((token, grant)))
    }

    async fn oauth_rotate(
        &self,
        refresh_hash: &str,
        now: Timestamp,
        successors: &[OAuthToken],
    ) -> StoreResult<bool> {
        in_tx!(self, tx, _head => {
            let r = sqlx::query(OAUTH_USE_REFRESH)
                .bind(refresh_hash)
                .bind(now.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            for t in successors {
                bind_oauth_token!(t).execute(&mut *tx).await.map_err(db_err)?;
            }
        });
        Ok(true)
    }

    async fn oauth_revoke_grant(
        &self,
        id: ApiTokenId,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        in_tx!(self, tx, head => {
            let r = sqlx::query(OAUTH_REVOKE_GRANT).bind(id.to_string()).bind(at.unix_millis()).execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() != 1 {
                return Ok(false);
            }
            append_audit!(tx, head, audit);
        });
        Ok(true)
    }

    async fn oauth_touch_grant(&self, id: ApiTokenId, at: Timestamp) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(OAUTH_TOUCH_GRANT).bind(id.to_string()).bind(at.unix_millis()).execute(p).await.map(|_| ())).map_err(db_err)
    }

    async fn oauth_grant_by_code(&self, code_hash: &str) -> StoreResult<Option<OAuthGrant>> {
        let row: Option<OAuthGrantRow> = with_pool!(self, p => sqlx::query_as(OAUTH_GRANT_BY_CODE).bind(code_hash).fetch_optional(p).await).map_err(db_err)?;
        to_opt(row)
    }

    // (msft-signin)
    async fn signin_put_state(&self, st: &exogate_core::signin::PendingSignin) -> StoreResult<()> {
        with_pool!(self, p => sqlx::query(SIGNIN_PRUNE_STATES).bind(st.expires_at.unix_millis() - SIGNIN_PRUNE_MS).execute(p).await.map(|_| ()))
            .map_err(db_err)?;
        with_pool!(self, p => sqlx::query(SIGNIN_PUT_STATE)
            .bind(&st.state_hash)
            .bind(&st.browser_hash)
            .bind(&st.nonce)
            .bind(&st.verifier)
            .bind(&st.next)
            .bind(st.expires_at.unix_millis())
            .execute(p)
            .await
            .map(|_| ()))
        .map_err(db_err)?;
        Ok(())
    }

    async fn signin_take_state(
        &self,
        state_hash: &str,
    ) -> StoreResult<Option<exogate_core::signin::PendingSignin>> {
        let row: Option<(String, String, String, String, String, i64)> =
            fetch!(self, fetch_optional, SIGNIN_TAKE_STATE, state_hash)?;
        Ok(row.map(
            |(state_hash, browser_hash, nonce, verifier, next, expires)| {
                exogate_core::signin::PendingSignin {
                    state_hash,
                    browser_hash,
                    nonce,
                    verifier,
                    next,
                    expires_at: Timestamp::from_unix_millis(expires),
                }
            },
        ))
    }

    async fn signin_identity(&self, tid: &str, oid: &str) -> StoreResult<Option<(UserId, bool)>> {
        let row: Option<(String, i64)> = fetch!(self, fetch_optional, SIGNIN_IDENTITY, tid, oid)?;
        match row {
            None => Ok(None),
            Some((id, suspended)) => {
                let id = UserId::parse(&id)
                    .map_err(|_| StoreError::Corrupt(format!("user id `{id}`")))?;
                Ok(Some((id, suspended != 0)))
            }
        }
    }

    async fn signin_insert_user(
        &self,
        u: &User,
        tid: &str,
        oid: &str,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            bind_user!(sqlx::query(INSERT_USER), u)
                .bind(u.created_at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            sqlx::query(SIGNIN_LINK)
                .bind(tid)
                .bind(oid)
                .bind(u.id.to_string())
                .bind(u.created_at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn signin_update_user(
        &self,
        u: &User,
        tid: &str,
        oid: &str,
        suspended: bool,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            let r = bind_user!(sqlx::query(UPDATE_USER), u)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let l = sqlx::query(SIGNIN_SUSPEND)
                .bind(tid)
                .bind(oid)
                .bind(u.id.to_string())
                .bind(i64::from(suspended))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() != 1 || l.rows_affected() != 1 {
                return Err(not_found(Entity::User, u.id));
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn totp_get(&self, user: UserId) -> StoreResult<Option<exogate_core::totp::TotpFactor>> {
        let row: Option<(String, Option<i64>, i64)> =
            fetch!(self, fetch_optional, TOTP_GET, user.to_string())?;
        match row {
            None => Ok(None),
            Some((secret, last_step, created)) => {
                let bytes = hex::decode(&secret)
                    .map_err(|_| StoreError::Corrupt("totp secret".to_owned()))?;
                Ok(Some(exogate_core::totp::TotpFactor {
                    user,
                    secret: exogate_core::totp::TotpSecret::new(bytes),
                    last_step,
                    created_at: Timestamp::from_unix_millis(created),
                }))
            }
        }
    }

    async fn totp_enrol(
        &self,
        f: &exogate_core::totp::TotpFactor,
        recovery_hashes: &[String],
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        let user = f.user.to_string();
        in_tx!(self, tx, head => {
            for sql in [TOTP_DELETE_CODES, TOTP_DELETE] {
                sqlx::query(sql).bind(&user).execute(&mut *tx).await.map_err(db_err)?;
            }
            sqlx::query(TOTP_INSERT)
                .bind(&user)
                .bind(hex::encode(f.secret.expose()))
                .bind(f.last_step)
                .bind(f.created_at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            for h in recovery_hashes {
                sqlx::query(TOTP_INSERT_CODE)
                    .bind(&user)
                    .bind(h)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn totp_use_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let n = with_pool!(self, p => sqlx::query(TOTP_USE_STEP).bind(user.to_string()).bind(step).execute(p).await.map(|r| r.rows_affected())).map_err(db_err)?;
        Ok(n == 1)
    }

    async fn totp_use_recovery(
        &self,
        user: UserId,
        code_hash: &str,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let n = with_pool!(self, p => sqlx::query(TOTP_USE_CODE).bind(user.to_string()).bind(code_hash).bind(at.unix_millis()).execute(p).await.map(|r| r.rows_affected())).map_err(db_err)?;
        Ok(n == 1)
    }

    // (notify)
    async fn notify_get_user(
        &self,
        user: UserId,
    ) -> StoreResult<Option<exogate_core::notifications::UserNotify>> {
        read_opt!(
            self,
            crate::notify::UserNotifyRow,
            crate::notify::GET_USER_NOTIFY,
            user.to_string()
        )
    }

    async fn notify_set_user(
        &self,
        n: &exogate_core::notifications::UserNotify,
        now: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            sqlx::query(crate::notify::UPSERT_USER_NOTIFY)
                .bind(n.user.to_string())
                .bind(&n.email)
                .bind(n.topics.encode())
                .bind(now.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn webhook_insert(
        &self,
        w: &exogate_core::notifications::Webhook,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            sqlx::query(crate::notify::INSERT_WEBHOOK)
                .bind(&w.id)
                .bind(w.company.as_ref().map(CompanyId::as_str))
                .bind(&w.name)
                .bind(&w.url)
                .bind(w.format.as_str())
                .bind(&w.secret)
                .bind(w.created_at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn webhook_get(
        &self,
        id: &str,
    ) -> StoreResult<Option<exogate_core::notifications::Webhook>> {
        read_opt!(
            self,
            crate::notify::WebhookRow,
            crate::notify::GET_WEBHOOK,
            id
        )
    }

    async fn webhook_list(&self) -> StoreResult<Vec<exogate_core::notifications::Webhook>> {
        read_all!(
            self,
            crate::notify::WebhookRow,
            crate::notify::LIST_WEBHOOKS
        )
    }

    async fn webhook_delete(&self, id: &str, audit: NewAuditEvent) -> StoreResult<bool> {
        let out = in_tx!(self, tx, head => {
            let r = sqlx::query(crate::notify::DELETE_WEBHOOK)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            append_audit!(tx, head, audit);
            true
        });
        Ok(out)
    }

    async fn outbox_claim(
        &self,
        now: Timestamp,
        owner: &str,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<exogate_core::notifications::Delivery>> {
        let sql = match self {
            Db::Sqlite(_) => crate::notify::OUTBOX_CLAIM_SQLITE,
            Db::Postgres(_) => crate::notify::OUTBOX_CLAIM_PG,
        };
        let rows: Vec<crate::notify::OutboxRow> = fetch!(
            self,
            fetch_all,
            sql,
            now.unix_millis(),
            owner,
            lease_until.unix_millis(),
            i64::from(limit)
        )?;
        to_vec(rows)
    }

    async fn outbox_finish(
        &self,
        id: &str,
        owner: &str,
        now: Timestamp,
        outcome: &exogate_core::notifications::SendOutcome,
    ) -> StoreResult<bool> {
        use exogate_core::notifications::{DeliveryState, SendOutcome};
        let (state, next, error, sent) = match outcome {
            SendOutcome::Sent => (DeliveryState::Sent, now, None, Some(now.unix_millis())),
            SendOutcome::Retry { next_at, error } => {
                (DeliveryState::Retrying, *next_at, Some(error.clone()), None)
            }
            SendOutcome::Failed { error } => {
                (DeliveryState::Failed, now, Some(error.clone()), None)
            }
        };
        let r = with_pool!(self, p => sqlx::query(crate::notify::OUTBOX_FINISH)
            .bind(id)
            .bind(owner)
            .bind(state.as_str())
            .bind(next.unix_millis())
            .bind(error)
            .bind(sent)
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db_err)?;
        Ok(r == 1)
    }

    async fn outbox_list(
        &self,
        state: Option<exogate_core::notifications::DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<exogate_core::notifications::Delivery>> {
        read_all!(
            self,
            crate::notify::OutboxRow,
            crate::notify::OUTBOX_LIST,
            state.map(|s| s.as_str()),
            i64::from(limit)
        )
    }

    // (drift)
    async fn drift_diff(
        &self,
        company: &CompanyId,
        from: i64,
        to: i64,
    ) -> StoreResult<Vec<exogate_core::drift::DriftCandidate>> {
        read_all!(
            self,
            DriftCandidateDb,
            DRIFT_DIFF,
            company.as_str(),
            from,
            to
        )
    }

    async fn drift_executed_since(
        &self,
        company: &CompanyId,
        since: Timestamp,
    ) -> StoreResult<Vec<ApprovalRequest>> {
        read_all!(
            self,
            RequestRow,
            DRIFT_EXECUTED_SINCE,
            company.as_str(),
            since.unix_millis()
        )
    }

    async fn drift_baseline(&self, company: &CompanyId) -> StoreResult<Option<Timestamp>> {
        let row: Option<(i64,)> = fetch!(self, fetch_optional, DRIFT_BASELINE, company.as_str())?;
        Ok(row.map(|r| Timestamp::from_unix_millis(r.0)))
    }

    async fn drift_record(
        &self,
        company: &CompanyId,
        o: &exogate_core::drift::DriftObservation,
        audit: NewAuditEvent,
    ) -> StoreResult<Vec<exogate_core::drift::DriftFinding>> {
        use exogate_core::drift::{DriftFinding, DriftId, DriftState};
        let c = company.as_str();
        let seen = o.seen_at.unix_millis();
        let out = in_tx!(self, tx, head => {
            let mut new = Vec::new();
            if let Some(prev) = o.previous_generation {
                for cand in &o.candidates {
                    let (mailbox, trustee, right) = cand.row.key();
                    let again = sqlx::query(DRIFT_SEEN_AGAIN)
                        .bind(c)
                        .bind(&mailbox)
                        .bind(&trustee)
                        .bind(permission_str(right))
                        .bind(cand.change.as_str())
                        .bind(prev)
                        .bind(seen)
                        .bind(o.generation)
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if again.rows_affected() > 0 {
                        continue;
                    }
                    let id = DriftId::derive(&cand.row, cand.change, o.generation);
                    let r = &cand.row;
                    let t = r.trustee.identity.as_ref();
                    let inserted = sqlx::query(DRIFT_INSERT)
                        .bind(id.to_string())
                        .bind(c)
                        .bind(&mailbox)
                        .bind(r.mailbox.primary_address.clone())
                        .bind(r.mailbox.display_name.clone())
                        .bind(r.mailbox.kind.as_str())
                        .bind(&trustee)
                        .bind(r.trustee.raw.clone())
                        .bind(r.trustee.sid.clone())
                        .bind(r.trustee.class.as_str())
                        .bind(t.map(|i| i.object_id.to_ascii_lowercase()))
                        .bind(t.map(|i| i.primary_address.clone()))
                        .bind(t.map(|i| i.display_name.clone()))
                        .bind(t.map(|i| i.kind.as_str()))
                        .bind(permission_str(right))
                        .bind(cand.change.as_str())
                        .bind(seen)
                        .bind(o.generation)
                        .bind(opt_ts(o.earlier_seen_at))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                    if inserted.rows_affected() == 0 {
                        continue;
                    }
                    new.push(DriftFinding {
                        id,
                        row: InventoryRow { company: company.clone(), ..r.clone() },
                        change: cand.change,
                        state: DriftState::Open,
                        first_seen_at: o.seen_at,
                        first_seen_generation: o.generation,
                        last_seen_at: o.seen_at,
                        last_seen_generation: o.generation,
                        earlier_seen_at: o.earlier_seen_at,
                        acknowledged: None,
                        revert_request: None,
                    });
                }
                sqlx::query(DRIFT_STILL_SEEN)
                    .bind(c)
                    .bind(seen)
                    .bind(o.generation)
                    .bind(prev)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            sqlx::query(DRIFT_SET_BASELINE)
                .bind(c)
                .bind(o.generation)
                .bind(o.swept_from.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if !new.is_empty() {
                let mut audit = audit;
                let mut detail = serde_json::from_str::<serde_json::Value>(&audit.detail)
                    .ok()
                    .filter(serde_json::Value::is_object)
                    .unwrap_or_else(|| serde_json::json!({}));
                detail["count"] = serde_json::json!(new.len());
                detail["findings"] = serde_json::json!(new.iter().take(100).map(|f| serde_json::json!({
                    "id": f.id.to_string(),
                    "mailbox": f.row.mailbox.primary_address,
                    "trustee": f.row.trustee.label(),
                    "right": f.row.right.as_str(),
                    "change": f.change.as_str(),
                })).collect::<Vec<_>>());
                audit.detail = detail.to_string();
                append_audit!(tx, head, audit);
            }
            new
        });
        Ok(out)
    }

    async fn drift_get(
        &self,
        id: exogate_core::drift::DriftId,
    ) -> StoreResult<Option<exogate_core::drift::DriftFinding>> {
        read_opt!(self, DriftFindingDb, DRIFT_GET, id.to_string())
    }

    async fn drift_list(
        &self,
        company: &CompanyId,
        limit: u32,
    ) -> StoreResult<Vec<exogate_core::drift::DriftFinding>> {
        read_all!(
            self,
            DriftFindingDb,
            DRIFT_LIST,
            company.as_str(),
            i64::from(limit)
        )
    }

    async fn drift_acknowledge(
        &self,
        id: exogate_core::drift::DriftId,
        ack: &exogate_core::drift::DriftAck,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let out = in_tx!(self, tx, head => {
            let r = sqlx::query(DRIFT_ACK)
                .bind(id.to_string())
                .bind(ack.by.to_string())
                .bind(&ack.by_name)
                .bind(ack.at.unix_millis())
                .bind(&ack.reason)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 1 {
                append_audit!(tx, head, audit);
                true
            } else {
                false
            }
        });
        Ok(out)
    }

    async fn drift_set_revert(
        &self,
        id: exogate_core::drift::DriftId,
        request: RequestId,
    ) -> StoreResult<bool> {
        let n = with_pool!(self, p => sqlx::query(DRIFT_SET_REVERT)
            .bind(id.to_string())
            .bind(request.to_string())
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map_err(db_err)?;
        Ok(n == 1)
    }

    // (timed-grants)
    async fn transition_with(
        &self,
        t: &Transition,
        audit: NewAuditEvent,
        more: Vec<NewAuditEvent>,
        also: Vec<(Transition, NewAuditEvent)>,
        insert: Option<(ApprovalRequest, NewAuditEvent)>,
    ) -> StoreResult<bool> {
        for x in std::iter::once(t).chain(also.iter().map(|(x, _)| x)) {
            if !x.expected_state.can_become(x.next.state) {
                return Err(StoreError::Corrupt(format!(
                    "refused transition `{}` -> `{}`",
                    x.expected_state.as_str(),
                    x.next.state.as_str()
                )));
            }
        }
        let insert_actions = insert
            .as_ref()
            .map(|(r, _)| exogate_core::action::encode_actions(&r.actions));
        in_tx!(self, tx, head => {
            // The request's own transition first: if it does not apply, nothing is written.
            let mut first = true;
            let mut steps: Vec<(&Transition, NewAuditEvent)> = vec![(t, audit)];
            steps.extend(also.iter().map(|(x, ev)| (x, ev.clone())));
            for (x, ev) in steps {
                let n = &x.next;
                let sql = if x.expected_attempt.is_some() { TRANSITION_FENCED } else { TRANSITION };
                let q = sqlx::query(sql).bind(n.id.to_string()).bind(n.state.as_str());
                let mut q = bind_request_progress!(q, n).bind(x.expected_state.as_str());
                if let Some(a) = x.expected_attempt {
                    q = q.bind(i64::from(a));
                }
                let r = q.execute(&mut *tx).await.map_err(db_err)?;
                if r.rows_affected() != 1 {
                    if first {
                        return Ok(false);
                    }
                    continue;
                }
                first = false;
                sqlx::query(SET_NOT_BEFORE).bind(n.id.to_string()).bind(opt_ts(n.not_before)).execute(&mut *tx).await.map_err(db_err)?;
                append_audit!(tx, head, ev);
            }
            for ev in more {
                append_audit!(tx, head, ev);
            }
            if let (Some((r, ev)), Some(actions)) = (insert, insert_actions) {
                insert_request_row!(tx, &r, &actions)?;
                append_audit!(tx, head, ev);
            }
        });
        Ok(true)
    }

    async fn grant_end_policy(&self, company: &CompanyId) -> StoreResult<GrantEndPolicy> {
        let row: Option<(bool, Option<i64>)> = with_pool!(self, p => sqlx::query_as(GET_GRANT_END_POLICY).bind(company.as_str()).fetch_optional(p).await).map_err(db_err)?;
        Ok(
            row.map_or_else(GrantEndPolicy::default, |(end_required, max_secs)| {
                GrantEndPolicy {
                    end_required,
                    max_secs,
                }
            }),
        )
    }

    async fn set_grant_end_policy(
        &self,
        company: &CompanyId,
        policy: &GrantEndPolicy,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            let (n,): (i64,) = sqlx::query_as(COMPANY_EXISTS).bind(company.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
            if n == 0 {
                return Err(not_found(Entity::Company, company));
            }
            sqlx::query(PUT_GRANT_END_POLICY)
                .bind(company.as_str())
                .bind(policy.end_required)
                .bind(policy.max_secs)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    // (inventory-truth)
    async fn inventory_write_names(
        &self,
        company: &CompanyId,
        generation: i64,
        owner: &str,
        names: &[exogate_core::inventory::DirectoryName],
    ) -> StoreResult<bool> {
        let c = company.as_str();
        let none: [String; 0] = [];
        add_to_sweep!(self, c, generation, owner; names, none; insert_names_sql, |q, n| q
            .bind(c)
            .bind(generation)
            .bind(n.name.to_lowercase())
            .bind(n.identity.object_id.to_ascii_lowercase())
            .bind(n.identity.primary_address.clone())
            .bind(n.identity.display_name.clone())
            .bind(n.identity.kind.as_str()))
    }

    async fn inventory_lookup(
        &self,
        company: &CompanyId,
        name: &str,
    ) -> StoreResult<Vec<ResolvedIdentity>> {
        let n = name.trim().to_lowercase();
        let rows: Vec<(String, String, String, String)> =
            fetch!(self, fetch_all, INV_LOOKUP, company.as_str(), &n)?;
        rows.into_iter()
            .map(|(object_id, primary_address, display_name, kind)| {
                let kind = RecipientKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("recipient kind `{kind}`")))?;
                Ok(ResolvedIdentity {
                    object_id,
                    primary_address,
                    display_name,
                    kind,
                })
            })
            .collect()
    }

    // (cli-requests)
    async fn request_ids_by_prefix(
        &self,
        prefix: &str,
        companies: Option<&[CompanyId]>,
        limit: u32,
    ) -> StoreResult<Vec<RequestId>> {
        if companies.is_some_and(<[CompanyId]>::is_empty) {
            return Ok(Vec::new());
        }
        // `!` escapes LIKE's wildcards, so the prefix matches as written; the primary key
        // keeps the scan to the ids that start with it.
        let mut pattern = String::with_capacity(prefix.len() + 1);
        for c in prefix.chars() {
            if matches!(c, '!' | '%' | '_') {
                pattern.push('!');
            }
            pattern.push(c);
        }
        pattern.push('%');
        // Placeholders numbered in the order they appear (SQLite binds them in that order).
        let mut sql = String::from("SELECT id FROM approval_requests WHERE id LIKE $1 ESCAPE '!'");
        let mut n = 1;
        if let Some(cs) = companies {
            let marks: Vec<String> = cs
                .iter()
                .map(|_| {
                    n += 1;
                    format!("${n}")
                })
                .collect();
            sql.push_str(&format!(" AND company_id IN ({})", marks.join(", ")));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", n + 1));
        let rows: Vec<(String,)> = with_pool!(self, p => {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone())).bind(pattern.clone());
            for c in companies.into_iter().flatten() {
                q = q.bind(c.as_str().to_owned());
            }
            q.bind(i64::from(limit)).fetch_all(p).await
        })
        .map_err(db_err)?;
        rows.into_iter()
            .map(|(id,)| {
                RequestId::parse(&id).map_err(|_| StoreError::Corrupt(format!("request id `{id}`")))
            })
            .collect()
    }
    // (scale)
    async fn inventory_statuses(
        &self,
        companies: &[CompanyId],
    ) -> StoreResult<Vec<InventoryStatus>> {
        self.scale_statuses(companies).await
    }
    async fn inventory_user_matches(
        &self,
        companies: &[CompanyId],
        name: &str,
    ) -> StoreResult<Vec<exogate_core::inventory::UserMatch>> {
        self.scale_user_matches(companies, name).await
    }
    // (hardening)
    async fn oauth_prune_unused_clients(&self, created_before: Timestamp) -> StoreResult<u64> {
        self.hardening_prune_unused_clients(created_before).await
    }
    async fn oauth_count_unused_clients(&self) -> StoreResult<u64> {
        self.hardening_count_unused_clients().await
    }
    async fn login_user_begin(
        &self,
        key: &str,
        now: Timestamp,
        rule: &exogate_core::lockout::LockoutRule,
    ) -> StoreResult<exogate_core::lockout::Begin> {
        self.hardening_login_begin(key, now, rule).await
    }
    async fn login_user_succeeded(&self, key: &str) -> StoreResult<()> {
        self.hardening_login_clear(key).await
    }
    async fn login_user_record(
        &self,
        key: &str,
    ) -> StoreResult<Option<exogate_core::lockout::FailureRecord>> {
        self.hardening_login_record(key).await
    }
    // (scale2)
    fn inventory_rows_stream(&self, company: &CompanyId) -> exogate_core::ports::RowStream {
        self.rows_stream(company)
    }
    // (reviews)
    async fn review_create(
        &self,
        c: &exogate_core::review::Campaign,
        orphan: &exogate_core::review::ItemDecision,
        audit: NewAuditEvent,
    ) -> StoreResult<Vec<u64>> {
        let id = c.id.to_string();
        let kinds: Vec<&str> = c.scope.kinds.iter().map(|k| k.as_str()).collect();
        let rights: Vec<&str> = c.scope.rights.iter().map(|r| r.as_str()).collect();
        let copy = review_copy_sql(kinds.len(), rights.len());
        let out = in_tx!(self, tx, head => {
            sqlx::query(REVIEW_INSERT_CAMPAIGN)
                .bind(&id)
                .bind(&c.name)
                .bind(list_of(&kinds))
                .bind(list_of(&rights))
                .bind(c.due_at.unix_millis())
                .bind(c.schedule.map(|s| s.as_str()))
                .bind(c.state.as_str())
                .bind(c.created_by.to_string())
                .bind(&c.created_by_name)
                .bind(c.created_at.unix_millis())
                .bind(opt_ts(c.closed_at))
                .bind(c.closed_by_name.clone())
                .bind(c.previous.map(|p| p.to_string()))
                .bind(c.scope.older_than_days.map(i64::from))
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut counts = Vec::with_capacity(c.companies.len());
            let mut before = 0i64;
            for p in &c.companies {
                sqlx::query(REVIEW_INSERT_COMPANY)
                    .bind(&id)
                    .bind(p.company.as_str())
                    .bind(list_of(&p.reviewers))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                let mut q = sqlx::query(AssertSqlSafe(copy.clone()))
                    .bind(&id)
                    .bind(before)
                    .bind(p.company.as_str())
                    .bind(orphan.reason.clone())
                    .bind(orphan.by.clone())
                    .bind(orphan.at.unix_millis())
                    .bind(c.first_seen_cutoff().map(Timestamp::unix_millis));
                for k in kinds.iter().chain(&rights) {
                    q = q.bind(*k);
                }
                let n = q.execute(&mut *tx).await.map_err(db_err)?.rows_affected();
                before += i64::try_from(n).unwrap_or(i64::MAX);
                counts.push(n);
            }
            let mut audit = audit;
            let mut detail = serde_json::from_str::<serde_json::Value>(&audit.detail)
                .ok()
                .filter(serde_json::Value::is_object)
                .unwrap_or_else(|| serde_json::json!({}));
            detail["items"] = serde_json::json!(before);
            audit.detail = detail.to_string();
            append_audit!(tx, head, audit);
            counts
        });
        Ok(out)
    }

    async fn review_get(
        &self,
        id: exogate_core::review::CampaignId,
    ) -> StoreResult<Option<exogate_core::review::Campaign>> {
        let sql = format!("SELECT {REVIEW_CAMPAIGN_COLS} FROM review_campaigns WHERE id = $1");
        let row: Option<CampaignDb> =
            fetch!(self, fetch_optional, AssertSqlSafe(sql), id.to_string())?;
        let Some(row) = row else { return Ok(None) };
        let parts: Vec<exogate_core::review::CampaignCompany> =
            read_all!(self, CampaignCompanyDb, REVIEW_COMPANIES, id.to_string())?;
        row.into_campaign(parts).map(Some)
    }

    async fn review_list(&self, limit: u32) -> StoreResult<Vec<exogate_core::review::Campaign>> {
        let sql = format!(
            "SELECT {REVIEW_CAMPAIGN_COLS} FROM review_campaigns ORDER BY created_at DESC, id LIMIT $1"
        );
        let rows: Vec<CampaignDb> = fetch!(self, fetch_all, AssertSqlSafe(sql), i64::from(limit))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let parts: Vec<exogate_core::review::CampaignCompany> =
                read_all!(self, CampaignCompanyDb, REVIEW_COMPANIES, row_id(&row))?;
            out.push(row.into_campaign(parts)?);
        }
        Ok(out)
    }

    async fn review_items(
        &self,
        id: exogate_core::review::CampaignId,
        filter: &exogate_core::review::ItemFilter,
    ) -> StoreResult<Vec<exogate_core::review::ReviewItem>> {
        let (sql, args) = review_items_sql(filter);
        let rows: Vec<ReviewItemDb> = with_pool!(self, p => {
            let mut q = sqlx::query_as(AssertSqlSafe(sql)).bind(id.to_string());
            for a in args {
                q = match a {
                    ItemArg::Text(t) => q.bind(t),
                    ItemArg::Int(i) => q.bind(i),
                };
            }
            q.fetch_all(p).await
        })
        .map_err(db_err)?;
        to_vec(rows)
    }

    async fn review_decide(
        &self,
        id: exogate_core::review::CampaignId,
        company: &CompanyId,
        items: &[i64],
        d: &exogate_core::review::ItemDecision,
        audit: NewAuditEvent,
    ) -> StoreResult<Option<u64>> {
        let lock = match self {
            Db::Sqlite(_) => REVIEW_STATE.to_owned(),
            Db::Postgres(_) => format!("{REVIEW_STATE} FOR SHARE"),
        };
        let out = in_tx!(self, tx, head => {
            let state: Option<(String,)> = sqlx::query_as(AssertSqlSafe(lock))
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            if state.as_ref().map(|s| s.0.as_str()) != Some("open") {
                None
            } else {
                let mut n = 0u64;
                for chunk in items.chunks(2000) {
                    let marks = (0..chunk.len()).map(|i| format!("${}", i + 8)).collect::<Vec<_>>().join(",");
                    let sql = format!("UPDATE review_items SET verdict = $3, reason = $4, decided_by = $5, decided_by_name = $6, decided_at = $7 WHERE campaign_id = $1 AND company_id = $2 AND item_no IN ({marks})");
                    let mut q = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.to_string())
                        .bind(company.as_str())
                        .bind(d.verdict.as_str())
                        .bind(d.reason.clone())
                        .bind(d.by_user.map(|u| u.to_string()))
                        .bind(d.by.clone())
                        .bind(d.at.unix_millis());
                    for no in chunk {
                        q = q.bind(*no);
                    }
                    n += q.execute(&mut *tx).await.map_err(db_err)?.rows_affected();
                }
                append_audit!(tx, head, audit);
                Some(n)
            }
        });
        Ok(out)
    }

    async fn review_begin_close(&self, id: exogate_core::review::CampaignId) -> StoreResult<bool> {
        with_pool!(self, p => sqlx::query(REVIEW_BEGIN_CLOSE).bind(id.to_string()).execute(p).await.map(|r| r.rows_affected()))
            .map_err(db_err)?;
        let state: Option<(String,)> = fetch!(self, fetch_optional, REVIEW_STATE, id.to_string())?;
        Ok(state.is_some_and(|s| s.0 == "closing"))
    }

    async fn review_finish_close(
        &self,
        id: exogate_core::review::CampaignId,
        at: Timestamp,
        by_name: &str,
        requests: Vec<(ApprovalRequest, NewAuditEvent)>,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let out = in_tx!(self, tx, head => {
            let done = sqlx::query(REVIEW_FINISH_CLOSE)
                .bind(id.to_string())
                .bind(at.unix_millis())
                .bind(by_name)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if done.rows_affected() != 1 {
                false
            } else {
                for (r, _) in &requests {
                    let actions = exogate_core::action::encode_actions(&r.actions);
                    insert_request_row!(tx, r, &actions)?;
                    sqlx::query(REVIEW_SET_REQUEST)
                        .bind(id.to_string())
                        .bind(r.company.as_str())
                        .bind(r.id.to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err)?;
                }
                for (_, ev) in requests {
                    append_audit!(tx, head, ev);
                }
                append_audit!(tx, head, audit);
                true
            }
        });
        Ok(out)
    }

    async fn review_link_insert(
        &self,
        l: &exogate_core::review::ReviewLink,
        audit: NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, tx, head => {
            sqlx::query(REVIEW_LINK_INSERT)
                .bind(&l.id)
                .bind(&l.secret_hash)
                .bind(l.campaign.to_string())
                .bind(l.company.as_str())
                .bind(&l.label)
                .bind(l.expires_at.unix_millis())
                .bind(l.created_at.unix_millis())
                .bind(&l.created_by_name)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            append_audit!(tx, head, audit);
        });
        Ok(())
    }

    async fn review_link_by_hash(
        &self,
        secret_hash: &str,
    ) -> StoreResult<Option<exogate_core::review::ReviewLink>> {
        let sql = format!("SELECT {REVIEW_LINK_COLS} FROM review_links WHERE secret_hash = $1");
        read_opt!(self, ReviewLinkDb, AssertSqlSafe(sql), secret_hash)
    }

    async fn review_links(
        &self,
        id: exogate_core::review::CampaignId,
    ) -> StoreResult<Vec<exogate_core::review::ReviewLink>> {
        let sql = format!(
            "SELECT {REVIEW_LINK_COLS} FROM review_links WHERE campaign_id = $1 ORDER BY created_at, id"
        );
        read_all!(self, ReviewLinkDb, AssertSqlSafe(sql), id.to_string())
    }

    async fn review_link_revoke(
        &self,
        campaign: exogate_core::review::CampaignId,
        id: &str,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let out = in_tx!(self, tx, head => {
            let r = sqlx::query(REVIEW_LINK_REVOKE)
                .bind(campaign.to_string())
                .bind(id)
                .bind(at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 1 {
                append_audit!(tx, head, audit);
                true
            } else {
                false
            }
        });
        Ok(out)
    }

    async fn review_link_key(&self, candidate: &str) -> StoreResult<String> {
        with_pool!(self, p => sqlx::query(REVIEW_KEY_INSERT).bind(candidate).execute(p).await.map(|r| r.rows_affected()))
            .map_err(db_err)?;
        let row: (String,) = fetch!(self, fetch_one, REVIEW_KEY_GET)?;
        Ok(row.0)
    }

    async fn review_due_repeats(
        &self,
        now: Timestamp,
    ) -> StoreResult<Vec<exogate_core::review::Campaign>> {
        let ids: Vec<(String,)> = fetch!(self, fetch_all, REVIEW_DUE_REPEATS, now.unix_millis())?;
        self.reviews_by_ids(ids).await
    }

    async fn review_due_reminders(
        &self,
        now: Timestamp,
        by: Timestamp,
    ) -> StoreResult<Vec<exogate_core::review::Campaign>> {
        let ids: Vec<(String,)> = fetch!(
            self,
            fetch_all,
            REVIEW_DUE_REMINDERS,
            now.unix_millis(),
            by.unix_millis()
        )?;
        self.reviews_by_ids(ids).await
    }

    async fn review_mark_reminded(
        &self,
        id: exogate_core::review::CampaignId,
        at: Timestamp,
        audit: NewAuditEvent,
    ) -> StoreResult<bool> {
        let out = in_tx!(self, tx, head => {
            let r = sqlx::query(REVIEW_MARK_REMINDED)
                .bind(id.to_string())
                .bind(at.unix_millis())
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 1 {
                append_audit!(tx, head, audit);
                true
            } else {
                false
            }
        });
        Ok(out)
    }
    // (review-age)
    async fn inventory_patch_at(
        &self,
        row: &InventoryRow,
        present: bool,
        now: Timestamp,
    ) -> StoreResult<bool> {
        patch_inventory(self, row, present, Some(now.unix_millis())).await
    }
}

// (reviews)
impl Db {
    /// The campaigns whose ids a statement selected, in that order (one gone meanwhile is
    /// left out).
    async fn reviews_by_ids(
        &self,
        ids: Vec<(String,)>,
    ) -> StoreResult<Vec<exogate_core::review::Campaign>> {
        let mut out = Vec::with_capacity(ids.len());
        for (id,) in ids {
            let id = exogate_core::review::CampaignId::parse(&id)
                .map_err(|_| StoreError::Corrupt(format!("campaign id `{id}`")))?;
            if let Some(c) = self.review_get(id).await? {
                out.push(c);
            }
        }
        Ok(out)
    }
}

// (reviews)
fn row_id(r: &CampaignDb) -> String {
    r.id()
}

// (inventory-truth) The inventory's own directory.
const INV_LOOKUP: &str = "SELECT DISTINCT object_id, address, display_name, kind FROM inventory_names WHERE company_id = $1 AND generation = (SELECT current_gen FROM inventory_state WHERE company_id = $1) AND name = $2 ORDER BY address, object_id";
const INV_DELETE_OTHER_NAMES: &str =
    "DELETE FROM inventory_names WHERE company_id = $1 AND generation <> $2";
const INV_DELETE_GEN_NAMES: &str =
    "DELETE FROM inventory_names WHERE company_id = $1 AND generation = $2";

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` for `n` directory names (7 parameters each).
fn insert_names_sql(n: usize) -> String {
    insert_values_sql(
        "INSERT INTO inventory_names (company_id, generation, name, object_id, address, display_name, kind)",
        n,
        7,
    )
}

/// `HEAD VALUES ($1, …, $cols), (…) ON CONFLICT DO NOTHING` for `n` rows of `cols` parameters:
/// the multi-row inserts of a sweep (rows, group members, directory names).
fn insert_values_sql(head: &str, n: usize, cols: usize) -> String {
    let mut sql = String::with_capacity(head.len() + 32 + n * cols * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    for i in 0..n {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for j in 1..=cols {
            if j > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(i * cols + j).to_string());
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

/// Rows per multi-row INSERT (15 parameters each).
const INSERT_ROWS_PER_STATEMENT: usize = 200;

fn insert_rows_sql(n: usize) -> String {
    insert_values_sql(
        concat!("INSERT INTO inventory_rows (", inventory_cols!(), ")"),
        n,
        INVENTORY_COLS,
    )
}

/// Binds one inventory row's 15 columns, in [`inventory_cols!`] order.
macro_rules! bind_inventory_row {
    ($q:expr, $company:expr, $gen:expr, $r:expr) => {{
        let r: &InventoryRow = $r;
        let t = r.trustee.identity.as_ref();
        $q.bind($company)
            .bind($gen)
            .bind(r.mailbox.object_id.to_ascii_lowercase())
            .bind(r.mailbox.primary_address.clone())
            .bind(r.mailbox.display_name.clone())
            .bind(r.mailbox.kind.as_str())
            .bind(r.trustee.key())
            .bind(r.trustee.raw.clone())
            .bind(r.trustee.sid.clone())
            .bind(r.trustee.class.as_str())
            .bind(t.map(|i| i.object_id.to_ascii_lowercase()))
            .bind(t.map(|i| i.primary_address.clone()))
            .bind(t.map(|i| i.display_name.clone()))
            .bind(t.map(|i| i.kind.as_str()))
            .bind(permission_str(r.right))
    }};
}
use bind_inventory_row;

const COUNT_REQUESTS_BY_STATE: &str =
    "SELECT state, COUNT(*) FROM approval_requests GROUP BY state ORDER BY state";
const INV_STATE_LOCK: &str = "SELECT tenant_id, current_gen, sweep_gen, sweep_state FROM inventory_state WHERE company_id = $1";
const INV_SWEEP_SQLITE: &str = "SELECT tenant_id, current_gen, sweep_gen, sweep_state, sweep_owner, sweep_lease_until, sweep_started_at FROM inventory_state WHERE company_id = $1";
const INV_SWEEP_PG: &str = "SELECT tenant_id, current_gen, sweep_gen, sweep_state, sweep_owner, sweep_lease_until, sweep_started_at FROM inventory_state WHERE company_id = $1 FOR UPDATE";
const INV_TAKE_OVER: &str =
    "UPDATE inventory_state SET sweep_owner = $2, sweep_lease_until = $3 WHERE company_id = $1";
const INV_RENEW: &str = "UPDATE inventory_state SET sweep_lease_until = $4 WHERE company_id = $1 AND sweep_gen = $2 AND sweep_state = 'running' AND sweep_owner = $3";
const INV_PROGRESS: &str =
    "SELECT marker FROM inventory_progress WHERE company_id = $1 AND generation = $2";
const INV_DELETE_OTHER_GENS: &str =
    "DELETE FROM inventory_rows WHERE company_id = $1 AND generation <> $2";
const INV_DELETE_GEN: &str = "DELETE FROM inventory_rows WHERE company_id = $1 AND generation = $2";
const INV_GROUP_TRUSTEES: &str = "SELECT DISTINCT trustee_key, COALESCE(trustee_address, trustee_raw) FROM inventory_rows WHERE company_id = $1 AND generation = $2 AND trustee_class = 'group' ORDER BY 1";
const INV_DELETE_OTHER_MEMBERS: &str =
    "DELETE FROM inventory_members WHERE company_id = $1 AND generation <> $2";
const INV_DELETE_GEN_MEMBERS: &str =
    "DELETE FROM inventory_members WHERE company_id = $1 AND generation = $2";

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` for `n` group members (7 parameters each).
fn insert_members_sql(n: usize) -> String {
    insert_values_sql(
        "INSERT INTO inventory_members (company_id, generation, group_id, member_id, member_address, member_name, member_kind)",
        n,
        7,
    )
}
const INV_DELETE_PROGRESS: &str = "DELETE FROM inventory_progress WHERE company_id = $1";
const INV_RESTART: &str = "UPDATE inventory_state SET tenant_id = $2, sweep_gen = $3, sweep_state = 'running', sweep_started_at = $4, sweep_finished_at = NULL, sweep_error = NULL, sweep_owner = $6, sweep_lease_until = $7, current_gen = CASE WHEN $5 THEN current_gen ELSE NULL END, as_of = CASE WHEN $5 THEN as_of ELSE NULL END WHERE company_id = $1";
const INV_INSERT_STATE: &str = "INSERT INTO inventory_state (company_id, tenant_id, current_gen, as_of, current_mailboxes, sweep_gen, sweep_state, sweep_started_at, sweep_owner, sweep_lease_until) VALUES ($1, $2, NULL, NULL, 0, 1, 'running', $3, $4, $5) ON CONFLICT (company_id) DO NOTHING";
const INV_RUNNING_SQLITE: &str = "SELECT sweep_gen FROM inventory_state WHERE company_id = $1 AND sweep_gen = $2 AND sweep_state = 'running' AND sweep_owner = $3";
const INV_RUNNING_PG: &str = "SELECT sweep_gen FROM inventory_state WHERE company_id = $1 AND sweep_gen = $2 AND sweep_state = 'running' AND sweep_owner = $3 FOR SHARE";
const INV_INSERT_PROGRESS: &str = "INSERT INTO inventory_progress (company_id, generation, marker) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const INV_FINISH: &str = "UPDATE inventory_state SET current_gen = $2, as_of = $3, current_mailboxes = $4, sweep_state = 'ok', sweep_finished_at = $3, sweep_error = NULL, sweep_owner = NULL, sweep_lease_until = NULL, current_rows = (SELECT COUNT(*) FROM inventory_rows WHERE company_id = $1 AND generation = $2) WHERE company_id = $1 AND sweep_gen = $2 AND sweep_state = 'running' AND sweep_owner = $5";
const INV_FAIL: &str = "UPDATE inventory_state SET sweep_state = 'failed', sweep_finished_at = $3, sweep_error = $4, sweep_owner = NULL, sweep_lease_until = NULL WHERE company_id = $1 AND sweep_gen = $2 AND sweep_state = 'running' AND sweep_owner = $5";
// (scale) Keeps `inventory_state.current_rows` (migration 0014) in step with a patch.
const INV_COUNT_ROWS: &str = "UPDATE inventory_state SET current_rows = current_rows + $2 WHERE company_id = $1 AND current_rows IS NOT NULL";
/// (review-age) Adds or removes one row in the current generation (and a running sweep's);
/// a row added to the current generation gets `seen` as its first-seen time.
async fn patch_inventory(
    db: &Db,
    row: &InventoryRow,
    present: bool,
    seen: Option<i64>,
) -> StoreResult<bool> {
    let c = row.company.as_str();
    let out = in_tx!(db, tx, _head => {
        let state: Option<(String, Option<i64>, i64, String)> = sqlx::query_as(INV_STATE_LOCK)
            .bind(c)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        let Some((_, current, sweep_gen, sweep_state)) = state else {
            return Ok(false);
        };
        let mut gens: Vec<i64> = current.into_iter().collect();
        if sweep_state == "running" && Some(sweep_gen) != current {
            gens.push(sweep_gen);
        }
        if current.is_none() && gens.is_empty() {
            return Ok(false);
        }
        let (mailbox_id, trustee_key, right) = row.key();
        for g in gens {
            if present {
                let q = sqlx::query(AssertSqlSafe(insert_rows_sql(1)));
                let done = bind_inventory_row!(q, c, g, row).execute(&mut *tx).await.map_err(db_err)?;
                // (scale) The current generation's row count follows the patch.
                if Some(g) == current && done.rows_affected() > 0 {
                    sqlx::query(INV_COUNT_ROWS).bind(c).bind(1_i64).execute(&mut *tx).await.map_err(db_err)?;
                    if let Some(seen) = seen {
                        sqlx::query(INV_STAMP_FIRST_SEEN)
                            .bind(c)
                            .bind(g)
                            .bind(&mailbox_id)
                            .bind(&trustee_key)
                            .bind(permission_str(right))
                            .bind(seen)
                            .execute(&mut *tx)
                            .await
                            .map_err(db_err)?;
                    }
                }
            } else {
                let done = sqlx::query(INV_DELETE_ROW)
                    .bind(c)
                    .bind(g)
                    .bind(&mailbox_id)
                    .bind(&trustee_key)
                    .bind(permission_str(right))
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if Some(g) == current && done.rows_affected() > 0 {
                    sqlx::query(INV_COUNT_ROWS).bind(c).bind(-1_i64).execute(&mut *tx).await.map_err(db_err)?;
                }
            }
        }
        current.is_some()
    });
    Ok(out)
}

/// (review-age) Each row of the new generation `$2` gets the first-seen time of the same row in
/// the current (previous) generation, NULL included (-1 stands for "there, but never
/// stamped"), or `$3`, the sweep's time, when it had none.
const INV_CARRY_FIRST_SEEN: &str = "UPDATE inventory_rows SET first_seen_at = NULLIF(COALESCE((SELECT COALESCE(p.first_seen_at, -1) FROM inventory_rows p WHERE p.company_id = $1 AND p.generation = (SELECT s.current_gen FROM inventory_state s WHERE s.company_id = $1) AND p.mailbox_id = inventory_rows.mailbox_id AND p.trustee_key = inventory_rows.trustee_key AND p.permission = inventory_rows.permission), CAST($3 AS BIGINT)), -1) WHERE company_id = $1 AND generation = $2";
const INV_STAMP_FIRST_SEEN: &str = "UPDATE inventory_rows SET first_seen_at = $6 WHERE company_id = $1 AND generation = $2 AND mailbox_id = $3 AND trustee_key = $4 AND permission = $5";
const INV_DELETE_ROW: &str = "DELETE FROM inventory_rows WHERE company_id = $1 AND generation = $2 AND mailbox_id = $3 AND trustee_key = $4 AND permission = $5";
const INV_STATUS: &str = "SELECT s.company_id, s.tenant_id, s.current_gen, s.as_of, s.current_mailboxes, s.sweep_gen, s.sweep_state, s.sweep_started_at, s.sweep_finished_at, s.sweep_error, s.sweep_lease_until, (SELECT COUNT(*) FROM inventory_rows r WHERE r.company_id = s.company_id AND r.generation = s.current_gen) AS rows FROM inventory_state s WHERE s.company_id = $1";
macro_rules! inv_select {
    ($where:literal) => {
        concat!(
            "SELECT ",
            inventory_cols!(),
            " FROM inventory_rows r WHERE r.company_id = $1 AND r.generation = (SELECT current_gen FROM inventory_state WHERE company_id = $1)",
            $where,
            " ORDER BY r.mailbox_address, r.permission, r.trustee_key"
        )
    };
}
const INV_BY_MAILBOX: &str =
    inv_select!(" AND (r.mailbox_id = $2 OR lower(r.mailbox_address) = $2)");
const INV_BY_TRUSTEE: &str = inv_select!(
    " AND (r.trustee_key = $2 OR lower(r.trustee_address) = $2 OR lower(r.trustee_raw) = $2 OR lower(r.trustee_address) LIKE $3 ESCAPE '!' OR r.trustee_key IN (SELECT m.group_id FROM inventory_members m WHERE m.company_id = r.company_id AND m.generation = r.generation AND (m.member_id = $2 OR lower(m.member_address) = $2 OR lower(m.member_address) LIKE $3 ESCAPE '!')))"
);
pub(crate) const INV_ALL: &str = inv_select!("");

// OAuth (`exogate_core::oauth`).
const OAUTH_INSERT_CLIENT: &str = "INSERT INTO oauth_clients (client_id, name, redirect_uris, created_at) VALUES ($1, $2, $3, $4)";
const OAUTH_GET_CLIENT: &str =
    "SELECT client_id, name, redirect_uris, created_at FROM oauth_clients WHERE client_id = $1";
macro_rules! oauth_code_cols {
    () => {
        "code_hash, client_id, client_name, user_id, redirect_uri, code_challenge, resource, created_at, expires_at, used_at"
    };
}
const OAUTH_INSERT_CODE: &str = concat!(
    "INSERT INTO oauth_codes (",
    oauth_code_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
);
const OAUTH_USE_CODE: &str = concat!(
    "UPDATE oauth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL RETURNING ",
    oauth_code_cols!()
);
macro_rules! oauth_grant_cols {
    () => {
        "id, user_id, client_id, client_name, resource, code_hash, created_at, last_used_at, revoked_at"
    };
}
const OAUTH_INSERT_GRANT: &str = concat!(
    "INSERT INTO oauth_grants (",
    oauth_grant_cols!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
);
const OAUTH_GET_GRANT: &str = concat!(
    "SELECT ",
    oauth_grant_cols!(),
    " FROM oauth_grants WHERE id = $1"
);
const OAUTH_GRANT_BY_CODE: &str = concat!(
    "SELECT ",
    oauth_grant_cols!(),
    " FROM oauth_grants WHERE code_hash = $1"
);
const OAUTH_LIST_GRANTS: &str = concat!(
    "SELECT ",
    oauth_grant_cols!(),
    " FROM oauth_grants WHERE user_id = $1 ORDER BY created_at DESC, id"
);
const OAUTH_REVOKE_GRANT: &str =
    "UPDATE oauth_grants SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL";
const OAUTH_TOUCH_GRANT: &str = "UPDATE oauth_grants SET last_used_at = $2 WHERE id = $1";
const OAUTH_INSERT_TOKEN: &str = "INSERT INTO oauth_tokens (token_hash, grant_id, kind, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6)";
const OAUTH_GET_TOKEN: &str = "SELECT token_hash, grant_id, kind, created_at, expires_at, used_at FROM oauth_tokens WHERE token_hash = $1";
const OAUTH_USE_REFRESH: &str = "UPDATE oauth_tokens SET used_at = $2 WHERE token_hash = $1 AND kind = 'refresh' AND used_at IS NULL \
    AND grant_id IN (SELECT id FROM oauth_grants WHERE revoked_at IS NULL)";

/// The INSERT of one OAuth token, bound (the same on both backends).
macro_rules! bind_oauth_token {
    ($t:expr) => {{
        let t: &OAuthToken = $t;
        sqlx::query(OAUTH_INSERT_TOKEN)
            .bind(t.token_hash.clone())
            .bind(t.grant.to_string())
            .bind(t.kind.as_str())
            .bind(t.created_at.unix_millis())
            .bind(t.expires_at.unix_millis())
            .bind(opt_ts(t.used_at))
    }};
}
use bind_oauth_token;
