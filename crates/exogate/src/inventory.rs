//! The delegation inventory sweep: reads one tenant's delegation with the fewest Exchange
//! calls and writes it to the store as a new generation of the company's inventory.
//!
//! Per tenant it makes one `Get-Mailbox -ResultSize Unlimited` stream (mailboxes and their Send
//! on Behalf delegates) and, at the same time, one `Get-Recipient` stream of the mail-enabled
//! groups; then `Get-MailboxPermission` for every mailbox through `$batch` (Full Access) while
//! the tenant-wide `Get-RecipientPermission` stream (Send As) is read alongside. Every call goes
//! through the client's per-tenant and global limiters with its 429 backoff, so many tenants
//! can be swept at once. Only a compact index of the tenant's mailboxes and groups (to resolve
//! trustees) is held in memory; permission rows are written chunk by chunk, each chunk together
//! with the marker that it is done, so a sweep that crashed continues where it stopped. SELF,
//! inherited and deny rows are dropped; groups are kept as groups and deleted principals as
//! orphans. One run sweeps a company at a time, under a lease in the store that it renews.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use exogate_core::CoreError;
use exogate_core::action::Permission;
use exogate_core::audit::{AuditKind, NewAuditEvent};
use exogate_core::inventory::{
    GroupMember, InventoryRow, InventoryTrustee, SweepBegin, SweepLease, TrusteeClass,
};
use exogate_core::model::{Actor, CompanyId, RecipientKind, ResolvedIdentity, TenantId, Timestamp};
use exogate_core::ops;
use exogate_core::ports::{Clock, Store, StoreError};
use exogate_exchange::batch::MAX_BATCH;
use exogate_exchange::delegation::{
    MailboxPermissionRow, MailboxRecord, ORPHAN_SID_PREFIX, RecipientPermissionRow,
};
use exogate_exchange::{ExchangeError, M365Client, Recipient};
use futures::{StreamExt as _, TryStreamExt as _};

use crate::app::App;
use crate::microsoft::resolved;

/// Mailboxes per Full Access chunk (one store transaction, ten `$batch` requests).
pub const FA_CHUNK: usize = 100;

/// How long a sweep holds its company without renewing its lease, by default: another server
/// (or run) takes over a crashed sweep once this has passed since its last renewal. A running
/// sweep renews it every quarter of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Exchange refused or failed (after the client's retries): try again later or fix the
    /// tenant's Exchange Admin status.
    #[error("Exchange: {0}")]
    Exchange(#[from] ExchangeError),
    /// The database failed: retry later.
    #[error("database: {0}")]
    Store(#[from] StoreError),
    /// Another sweep of the same company took over (or finished) this generation.
    #[error("another sweep of this company took over")]
    Superseded,
    /// Another sweep of the company (on this server or another) holds its lease: wait for it.
    #[error(
        "a sweep of this company is already running (started {started_at}); try again when it has finished"
    )]
    Busy {
        started_at: Timestamp,
        lease_until: Timestamp,
    },
    /// Not allowed, not connected, or not found.
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub company: CompanyId,
    pub generation: i64,
    /// It continued a sweep that had crashed.
    pub resumed: bool,
    pub mailboxes: u64,
    /// Rows written by this run (a resumed run does not count what was written before).
    pub rows: u64,
    /// Mailboxes whose Full Access was already read by the crashed run.
    pub skipped: u64,
    pub elapsed: Duration,
}

/// Where a sweep is, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Mailboxes,
    FullAccess,
    SendAs,
    SendOnBehalf,
    GroupMembers,
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Mailboxes => "mailboxes",
            Phase::FullAccess => "full access",
            Phase::SendAs => "send as",
            Phase::SendOnBehalf => "send on behalf",
            Phase::GroupMembers => "group members",
            Phase::Done => "done",
        }
    }
}

/// A progress report: `done` of `total` mailboxes in `phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub done: u64,
    pub total: u64,
}

/// Receives progress; called from the sweeping task.
pub type ProgressFn = Arc<dyn Fn(&CompanyId, Progress) + Send + Sync>;

/// A progress sink that ignores everything.
pub fn no_progress() -> ProgressFn {
    Arc::new(|_, _| {})
}

/// Every name Exchange may print for a recipient (lowercase) → its position in a list.
#[derive(Default)]
struct Keys(HashMap<Box<str>, (u32, bool)>);

impl Keys {
    fn add(&mut self, r: &Recipient, idx: u32) {
        // What Exchange prints for a trustee or a mailbox (name, UPN, address, object id) wins
        // over the Exchange `Guid` and the alias, should one object's Guid equal another's name.
        let strong = [
            Some(r.identity.as_str()),
            r.name.as_deref(),
            r.user_principal_name.as_deref(),
            r.primary_smtp_address.as_deref(),
            r.external_directory_object_id.as_deref(),
        ];
        let weak = [r.alias.as_deref(), r.guid.as_deref()];
        for (k, is_strong) in strong
            .into_iter()
            .map(|k| (k, true))
            .chain(weak.into_iter().map(|k| (k, false)))
        {
            let Some(k) = k.filter(|k| !k.is_empty()) else {
                continue;
            };
            match self.0.entry(k.to_lowercase().into()) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((idx, is_strong));
                }
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    if is_strong && !o.get().1 {
                        o.insert((idx, true));
                    }
                }
            }
        }
    }

    /// `raw` as printed, or its last `DOMAIN\name` segment.
    fn get(&self, raw: &str) -> Option<u32> {
        let raw = raw.trim();
        let short = raw.rsplit('\\').next().unwrap_or(raw);
        self.0
            .get(raw.to_lowercase().as_str())
            .or_else(|| self.0.get(short.to_lowercase().as_str()))
            .map(|k| k.0)
    }
}

/// The tenant's mail-enabled groups, listed once.
#[derive(Default)]
struct Groups {
    idents: Vec<ResolvedIdentity>,
    keys: Keys,
}

impl Groups {
    fn add(&mut self, r: &Recipient) {
        let idx = u32::try_from(self.idents.len()).unwrap_or(u32::MAX);
        self.keys.add(r, idx);
        self.idents.push(resolved(r));
    }
}

/// The tenant's mailboxes and groups, and every other recipient resolved on the way. Shared by
/// the Full Access and Send As phases, which run at the same time.
struct Index {
    mailboxes: Vec<ResolvedIdentity>,
    /// Identity to send to Get-MailboxPermission, per mailbox.
    handles: Vec<String>,
    /// Raw Send on Behalf values, per mailbox (usually empty).
    sob: Vec<Vec<String>>,
    keys: Keys,
    groups: Groups,
    /// Recipients in neither list (mail users, groups the list missed) resolved on demand;
    /// None: does not resolve. Never locked across an await.
    others: parking_lot::Mutex<HashMap<Box<str>, Option<ResolvedIdentity>>>,
    /// Groups seen holding a right go to the sender (trustee key, address), so their members
    /// are read while the Full Access phase still runs. No sender once those phases are done.
    group_seen: parking_lot::Mutex<(HashSet<String>, Option<GroupSender>)>,
}

type GroupSender = tokio::sync::mpsc::UnboundedSender<(String, String)>;

impl Index {
    fn new() -> Self {
        Self {
            mailboxes: Vec::new(),
            handles: Vec::new(),
            sob: Vec::new(),
            keys: Keys::default(),
            groups: Groups::default(),
            others: parking_lot::Mutex::new(HashMap::new()),
            group_seen: parking_lot::Mutex::new((HashSet::new(), None)),
        }
    }

    fn add(&mut self, m: MailboxRecord) {
        let idx = u32::try_from(self.mailboxes.len()).unwrap_or(u32::MAX);
        let r = &m.recipient;
        self.keys.add(r, idx);
        let ident = resolved(r);
        self.handles.push(
            r.user_principal_name
                .clone()
                .or_else(|| r.primary_smtp_address.clone())
                .unwrap_or_else(|| ident.object_id.clone()),
        );
        self.mailboxes.push(ident);
        self.sob.push(m.grant_send_on_behalf_to);
    }

    fn mailbox(&self, raw: &str) -> Option<u32> {
        self.keys.get(raw)
    }

    fn known(&self, raw: &str) -> Option<ResolvedIdentity> {
        if let Some(i) = self.mailbox(raw) {
            return self.mailboxes.get(i as usize).cloned();
        }
        if let Some(i) = self.groups.keys.get(raw) {
            return self.groups.idents.get(i as usize).cloned();
        }
        self.others
            .lock()
            .get(raw.to_lowercase().as_str())
            .cloned()
            .flatten()
    }

    /// Whether `raw` still needs a directory lookup.
    fn unknown(&self, raw: &str) -> bool {
        !raw.starts_with(ORPHAN_SID_PREFIX)
            && self.mailbox(raw).is_none()
            && self.groups.keys.get(raw).is_none()
            && !self.others.lock().contains_key(raw.to_lowercase().as_str())
    }

    fn trustee(&self, raw: &str, sid: Option<&str>) -> InventoryTrustee {
        let sid = sid.filter(|s| !s.is_empty()).map(str::to_owned);
        if raw.starts_with(ORPHAN_SID_PREFIX) {
            return InventoryTrustee {
                raw: raw.to_owned(),
                sid: sid.or_else(|| Some(raw.to_owned())),
                class: TrusteeClass::Orphan,
                identity: None,
            };
        }
        let identity = self.known(raw);
        let class = match &identity {
            Some(i) if i.kind == RecipientKind::Group => TrusteeClass::Group,
            Some(_) => TrusteeClass::User,
            None => TrusteeClass::Unresolved,
        };
        if let Some(g) = identity.as_ref().filter(|i| i.kind == RecipientKind::Group) {
            let key = g.object_id.to_ascii_lowercase();
            let mut seen = self.group_seen.lock();
            if !key.is_empty()
                && seen.0.insert(key.clone())
                && let Some(tx) = &seen.1
            {
                let _ = tx.send((key, g.primary_address.clone()));
            }
        }
        InventoryTrustee {
            raw: raw.to_owned(),
            sid,
            class,
            identity,
        }
    }

    /// Resolves values found in neither list (mail users, groups the list missed) through
    /// `$batch` Get-Recipient, once each.
    async fn resolve_unknown(
        &self,
        client: &M365Client,
        tenant: TenantId,
        raws: impl IntoIterator<Item = String>,
    ) -> Result<(), ExchangeError> {
        let mut seen = HashSet::new();
        let todo: Vec<String> = raws
            .into_iter()
            .filter(|r| self.unknown(r) && seen.insert(r.to_lowercase()))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let results = client.recipients_many(tenant.as_uuid(), &todo).await;
        let mut found = Vec::with_capacity(todo.len());
        for (raw, r) in todo.into_iter().zip(results) {
            let ident = match r {
                Ok(recipient) => Some(resolved(&recipient)),
                Err(ExchangeError::NotFound { .. } | ExchangeError::Ambiguous { .. }) => None,
                Err(e) => return Err(e),
            };
            found.push((raw.to_lowercase().into_boxed_str(), ident));
        }
        self.others.lock().extend(found);
        Ok(())
    }
}

fn row(
    company: &CompanyId,
    mailbox: &ResolvedIdentity,
    trustee: InventoryTrustee,
    right: Permission,
) -> InventoryRow {
    InventoryRow {
        company: company.clone(),
        mailbox: mailbox.clone(),
        trustee,
        right,
    }
}

const MARK_SEND_AS: &str = "send_as";
const MARK_SOB: &str = "send_on_behalf";
const MARK_MEMBERS: &str = "members";

fn fa_mark(object_id: &str) -> String {
    format!("fa:{object_id}")
}

/// Sweeps one company's tenant into the store (see the module docs) for `actor` (None: the
/// scheduler). Many sweeps of different companies may run at once (the client's limiters pace
/// them); one company is swept by one run at a time, across servers: the run holds a lease it
/// renews, and a second run meanwhile gets [`SweepError::Busy`]. The start, end or failure
/// goes into the audit log.
#[allow(clippy::too_many_arguments)]
pub async fn sweep(
    store: &dyn Store,
    client: &M365Client,
    clock: &dyn Clock,
    lease_for: Duration,
    actor: Option<&Actor>,
    company: &CompanyId,
    tenant: TenantId,
    progress: &ProgressFn,
) -> Result<SweepReport, SweepError> {
    let started = Instant::now();
    let owner = uuid::Uuid::new_v4().to_string();
    let lease_ms = i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX);
    let lease = |now: Timestamp| SweepLease {
        owner: owner.clone(),
        until: now.plus_millis(lease_ms),
    };
    let event = |kind: AuditKind, detail: serde_json::Value| {
        NewAuditEvent::new(clock.now(), kind, actor)
            .company(company)
            .detail(detail)
    };
    let now = clock.now();
    let begin = store
        .inventory_begin_sweep(
            company,
            tenant,
            now,
            &lease(now),
            event(
                AuditKind::InventorySweepStarted,
                serde_json::json!({ "tenant": tenant.to_string() }),
            ),
        )
        .await?;
    let start = match begin {
        SweepBegin::Started(s) => s,
        SweepBegin::Busy {
            started_at,
            lease_until,
            ..
        } => {
            return Err(SweepError::Busy {
                started_at,
                lease_until,
            });
        }
    };
    let generation = start.generation;
    let to = Target {
        company,
        generation,
        owner: &owner,
    };
    let work = run(store, client, to, tenant, &start.done, progress);
    // Renews the lease while the work runs; ends only if another run took the sweep over.
    let heartbeat = async {
        let mut tick = tokio::time::interval(lease_for / 4);
        tick.tick().await;
        loop {
            tick.tick().await;
            match store
                .inventory_renew_lease(company, generation, &lease(clock.now()))
                .await
            {
                Ok(true) => {}
                Ok(false) => return SweepError::Superseded,
                Err(e) => {
                    tracing::warn!(company = %company, error = %e, "renewing the sweep's lease failed; retrying");
                }
            }
        }
    };
    let result = tokio::select! {
        r = work => r,
        e = heartbeat => Err(e),
    };
    match result {
        Ok((mailboxes, rows, skipped)) => {
            let elapsed = started.elapsed();
            let done = event(
                AuditKind::InventorySweepFinished,
                serde_json::json!({
                    "generation": generation,
                    "resumed": start.resumed,
                    "mailboxes": mailboxes,
                    "rows": rows,
                    "skipped": skipped,
                    "elapsed_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                }),
            );
            if !store
                .inventory_finish_sweep(company, generation, &owner, clock.now(), mailboxes, done)
                .await?
            {
                return Err(SweepError::Superseded);
            }
            progress(
                company,
                Progress {
                    phase: Phase::Done,
                    done: mailboxes,
                    total: mailboxes,
                },
            );
            Ok(SweepReport {
                company: company.clone(),
                generation,
                resumed: start.resumed,
                mailboxes,
                rows,
                skipped,
                elapsed,
            })
        }
        Err(SweepError::Superseded) => Err(SweepError::Superseded),
        Err(e) => {
            let message = e.to_string();
            let failed = event(
                AuditKind::InventorySweepFailed,
                serde_json::json!({ "generation": generation, "error": message }),
            );
            if let Err(err) = store
                .inventory_fail_sweep(company, generation, &owner, clock.now(), &message, failed)
                .await
            {
                tracing::warn!(company = %company, error = %err, "recording the failed sweep failed");
            }
            Err(e)
        }
    }
}

/// Where a sweep writes: its company, generation and lease owner.
#[derive(Clone, Copy)]
struct Target<'a> {
    company: &'a CompanyId,
    generation: i64,
    owner: &'a str,
}

async fn write(
    store: &dyn Store,
    to: Target<'_>,
    rows: &[InventoryRow],
    done: &[String],
) -> Result<(), SweepError> {
    if store
        .inventory_write_chunk(to.company, to.generation, to.owner, rows, done)
        .await?
    {
        Ok(())
    } else {
        Err(SweepError::Superseded)
    }
}

/// Full Access results of one `$batch`: mailbox positions and one answer per mailbox.
type FaBatch = (
    Vec<usize>,
    Vec<Result<Vec<MailboxPermissionRow>, ExchangeError>>,
);

async fn run(
    store: &dyn Store,
    client: &M365Client,
    to: Target<'_>,
    tenant: TenantId,
    done: &[String],
    progress: &ProgressFn,
) -> Result<(u64, u64, u64), SweepError> {
    let company = to.company;
    let tid = tenant.as_uuid();
    let done: HashSet<&str> = done.iter().map(String::as_str).collect();
    // 1. Mailboxes (with their Send on Behalf delegates) and mail-enabled groups: two paged
    //    streams read at the same time.
    let mailboxes = async {
        let mut pages = client.mailbox_pages(tid);
        let mut index = Index::new();
        while let Some(page) = pages.try_next().await? {
            for m in page {
                index.add(m);
            }
            let n = index.mailboxes.len() as u64;
            progress(
                company,
                Progress {
                    phase: Phase::Mailboxes,
                    done: n,
                    total: n,
                },
            );
        }
        Ok::<_, ExchangeError>(index)
    };
    let (mut index, groups) = tokio::try_join!(mailboxes, list_groups(client, tid))?;
    index.groups = groups;
    let index = index;
    let total = index.mailboxes.len() as u64;

    // 2. and 3. Full Access (Get-MailboxPermission per mailbox through `$batch`) and the
    //    tenant-wide Send As stream, at the same time: the Send As pages take a permit of the
    //    tenant's limit like any batch, so the tenant stays busy until the last batch.
    //    Groups seen holding a right have their members read meanwhile, a batch at a time.
    let (group_tx, group_rx) = tokio::sync::mpsc::unbounded_channel();
    index.group_seen.lock().1 = Some(group_tx);
    let rights = async {
        let r = tokio::try_join!(
            full_access(store, client, to, tenant, &done, &index, progress),
            send_as(store, client, to, tenant, &done, &index),
        );
        // No more groups to read: the reader ends once it has read what it was sent.
        index.group_seen.lock().1 = None;
        r
    };
    let (rights, mut prefetched) = tokio::join!(rights, prefetch_members(client, tenant, group_rx));
    let (fa, sa) = rights?;
    let (fa_rows, skipped) = fa;
    let mut rows_written = fa_rows + sa;
    progress(
        company,
        Progress {
            phase: Phase::SendAs,
            done: total,
            total,
        },
    );

    // 4. Send on Behalf: from the mailbox list; delegates come back as names or object ids.
    if !done.contains(MARK_SOB) {
        let raws: Vec<String> = index.sob.iter().flatten().cloned().collect();
        index.resolve_unknown(client, tenant, raws).await?;
        let mut rows = Vec::new();
        for (m, delegates) in index.sob.iter().enumerate() {
            for raw in delegates {
                let t = index.trustee(raw, None);
                rows.push(row(
                    company,
                    &index.mailboxes[m],
                    t,
                    Permission::SendOnBehalf,
                ));
            }
        }
        for chunk in rows.chunks(1000) {
            write(store, to, chunk, &[]).await?;
        }
        write(store, to, &[], &[MARK_SOB.to_owned()]).await?;
        rows_written += rows.len() as u64;
        progress(
            company,
            Progress {
                phase: Phase::SendOnBehalf,
                done: total,
                total,
            },
        );
    }
    // 5. Members of the groups that hold rights (nested groups expanded), so "what can X
    //    open" finds what X holds through a group.
    if !done.contains(MARK_MEMBERS) {
        let groups = store
            .inventory_group_trustees(company, to.generation)
            .await?;
        progress(
            company,
            Progress {
                phase: Phase::GroupMembers,
                done: 0,
                total: groups.len() as u64,
            },
        );
        let members = group_members(client, tenant, &groups, &mut prefetched).await?;
        let mut chunks = members.chunks(1000).peekable();
        if chunks.peek().is_none() {
            write_members(store, to, &[], &[MARK_MEMBERS.to_owned()]).await?;
        }
        while let Some(chunk) = chunks.next() {
            let done: &[String] = if chunks.peek().is_none() {
                &[MARK_MEMBERS.to_owned()]
            } else {
                &[]
            };
            write_members(store, to, chunk, done).await?;
        }
        progress(
            company,
            Progress {
                phase: Phase::GroupMembers,
                done: groups.len() as u64,
                total: groups.len() as u64,
            },
        );
    }
    Ok((total, rows_written, skipped))
}

async fn write_members(
    store: &dyn Store,
    to: Target<'_>,
    members: &[GroupMember],
    done: &[String],
) -> Result<(), SweepError> {
    if store
        .inventory_write_members(to.company, to.generation, to.owner, members, done)
        .await?
    {
        Ok(())
    } else {
        Err(SweepError::Superseded)
    }
}

/// Direct members by group key.
type DirectMembers = HashMap<String, Vec<ResolvedIdentity>>;

/// One group's Get-DistributionGroupMember answer: its members, or none for a group Exchange
/// does not expand (not mail-enabled, or gone since).
fn members_of(
    result: Result<Vec<Recipient>, ExchangeError>,
) -> Result<Vec<ResolvedIdentity>, ExchangeError> {
    match result {
        Ok(list) => Ok(list.iter().map(resolved).collect()),
        Err(ExchangeError::NotFound { .. } | ExchangeError::Ambiguous { .. }) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The groups among `members` not in `seen` yet (key, address); they are added to it.
fn new_groups(members: &[ResolvedIdentity], seen: &mut HashSet<String>) -> Vec<(String, String)> {
    members
        .iter()
        .filter(|m| m.kind == RecipientKind::Group)
        .filter_map(|m| {
            let k = m.object_id.to_ascii_lowercase();
            (!k.is_empty() && seen.insert(k.clone())).then(|| (k, m.primary_address.clone()))
        })
        .collect()
}

/// Reads the direct members of the groups sent on `rx` (and of the groups inside them), up to
/// ten per `$batch`, one batch at a time, until `rx` closes. A group it could not read is left
/// out: the members phase reads it again (and then fails the sweep if Exchange still fails).
async fn prefetch_members(
    client: &M365Client,
    tenant: TenantId,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) -> DirectMembers {
    let mut direct = DirectMembers::new();
    let mut queued: HashSet<String> = HashSet::new();
    let mut pending: std::collections::VecDeque<(String, String)> =
        std::collections::VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.recv().await {
                Some(g) => {
                    if queued.insert(g.0.clone()) {
                        pending.push_back(g);
                    }
                }
                None => break,
            }
        }
        while let Ok(g) = rx.try_recv() {
            if queued.insert(g.0.clone()) {
                pending.push_back(g);
            }
        }
        let n = pending.len().min(MAX_BATCH);
        let batch: Vec<(String, String)> = pending.drain(..n).collect();
        if batch.is_empty() {
            continue;
        }
        let handles: Vec<String> = batch.iter().map(|g| g.1.clone()).collect();
        let results = client.group_members_many(tenant.as_uuid(), &handles).await;
        for ((key, _), result) in batch.into_iter().zip(results) {
            let Ok(members) = members_of(result) else {
                continue;
            };
            pending.extend(new_groups(&members, &mut queued));
            direct.insert(key, members);
        }
    }
    direct
}

/// The members of each group in `groups` (trustee key, address), nested groups expanded:
/// every direct member and every member of a group inside it, once per group. Groups Exchange
/// does not expand (not mail-enabled) have no members recorded. `direct` holds what was read
/// already; the rest is read now, level by level.
async fn group_members(
    client: &M365Client,
    tenant: TenantId,
    groups: &[(String, String)],
    direct: &mut DirectMembers,
) -> Result<Vec<GroupMember>, SweepError> {
    let mut seen: HashSet<String> = groups.iter().map(|g| g.0.clone()).collect();
    let mut level: Vec<(String, String)> = groups.to_vec();
    while !level.is_empty() {
        let fetch: Vec<(String, String)> = level
            .iter()
            .filter(|g| !direct.contains_key(&g.0))
            .cloned()
            .collect();
        if !fetch.is_empty() {
            let handles: Vec<String> = fetch.iter().map(|g| g.1.clone()).collect();
            let results = client.group_members_many(tenant.as_uuid(), &handles).await;
            for ((key, _), result) in fetch.into_iter().zip(results) {
                direct.insert(key, members_of(result)?);
            }
        }
        level = level
            .iter()
            .flat_map(|(key, _)| direct.get(key))
            .flat_map(|members| new_groups(members, &mut seen))
            .collect();
    }
    // Flattened per rights-holding group.
    let mut out = Vec::new();
    for (group, _) in groups {
        let mut visited: HashSet<String> = HashSet::from([group.clone()]);
        let mut stack = vec![group.clone()];
        let mut members: HashMap<String, ResolvedIdentity> = HashMap::new();
        while let Some(g) = stack.pop() {
            for m in direct.get(&g).into_iter().flatten() {
                let k = m.object_id.to_ascii_lowercase();
                if k.is_empty() {
                    continue;
                }
                if m.kind == RecipientKind::Group && visited.insert(k.clone()) {
                    stack.push(k.clone());
                }
                members.entry(k).or_insert_with(|| m.clone());
            }
        }
        let mut members: Vec<_> = members.into_values().collect();
        members.sort_by(|a, b| a.object_id.cmp(&b.object_id));
        out.extend(members.into_iter().map(|member| GroupMember {
            group: group.clone(),
            member,
        }));
    }
    Ok(out)
}

/// The tenant's mail-enabled groups. Should Exchange refuse the list itself (not a throttle or
/// an outage, which the sweep reports), groups are looked up one by one instead.
async fn list_groups(client: &M365Client, tid: uuid::Uuid) -> Result<Groups, ExchangeError> {
    let mut groups = Groups::default();
    let mut pages = client.group_pages(tid);
    loop {
        match pages.try_next().await {
            Ok(Some(page)) => page.iter().for_each(|g| groups.add(g)),
            Ok(None) => return Ok(groups),
            Err(
                e @ (ExchangeError::InvalidParameter { .. }
                | ExchangeError::NotFound { .. }
                | ExchangeError::Ambiguous { .. }),
            ) => {
                tracing::warn!(tenant = %tid, error = %e, "listing groups failed; looking them up one by one");
                return Ok(Groups::default());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Full Access: one reader task keeps `2 × per-tenant concurrency` batches of
/// Get-MailboxPermission in flight (each its own task, so answers are parsed on every core)
/// and hands the answers over a bounded channel; this loop resolves the trustees and stores
/// [`FA_CHUNK`] mailboxes per transaction. A slow store write or a directory lookup never
/// leaves the tenant's permits idle, and memory holds at most the channel's batches.
async fn full_access(
    store: &dyn Store,
    client: &M365Client,
    to: Target<'_>,
    tenant: TenantId,
    done: &HashSet<&str>,
    index: &Index,
    progress: &ProgressFn,
) -> Result<(u64, u64), SweepError> {
    let company = to.company;
    let tid = tenant.as_uuid();
    let total = index.mailboxes.len() as u64;
    let todo: Vec<usize> = (0..index.mailboxes.len())
        .filter(|&i| !done.contains(fa_mark(&index.mailboxes[i].object_id).as_str()))
        .collect();
    let skipped = total - todo.len() as u64;
    let mut finished = skipped;
    progress(
        company,
        Progress {
            phase: Phase::FullAccess,
            done: finished,
            total,
        },
    );
    let expected = todo.len();
    let window = client.limits().per_tenant_concurrency.max(1) * 2;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<FaBatch, String>>(window * 2);
    let batches: Vec<(Vec<usize>, Vec<String>)> = todo
        .chunks(MAX_BATCH)
        .map(|b| {
            (
                b.to_vec(),
                b.iter().map(|&i| index.handles[i].clone()).collect(),
            )
        })
        .collect();
    let reader_client = client.clone();
    let reader = AbortOnDrop(tokio::spawn(async move {
        let mut answers = futures::stream::iter(batches)
            .map(|(positions, ids)| {
                let client = reader_client.clone();
                tokio::spawn(async move {
                    let results = client.mailbox_permissions_many(tid, &ids).await;
                    (positions, results)
                })
            })
            .buffer_unordered(window);
        while let Some(joined) = answers.next().await {
            let item = joined.map_err(|e| format!("a read task failed: {e}"));
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                break;
            }
        }
    }));

    let mut rows_written = 0u64;
    let mut received = 0usize;
    let mut found = Vec::new();
    let mut marks = Vec::new();
    loop {
        let next = rx.recv().await;
        let end = next.is_none();
        if let Some(item) = next {
            let (positions, results) =
                item.map_err(|e| SweepError::Exchange(ExchangeError::Protocol(e)))?;
            received += positions.len();
            for (&i, result) in positions.iter().zip(results) {
                match result {
                    Ok(perms) => found.extend(
                        perms
                            .into_iter()
                            .filter(MailboxPermissionRow::is_explicit_full_access)
                            .map(|p| (i, p.user, p.user_sid)),
                    ),
                    // Deleted since it was listed: nothing to record.
                    Err(ExchangeError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                marks.push(fa_mark(&index.mailboxes[i].object_id));
            }
        }
        if marks.len() >= FA_CHUNK || (end && !marks.is_empty()) {
            index
                .resolve_unknown(client, tenant, found.iter().map(|f| f.1.clone()))
                .await?;
            let rows: Vec<InventoryRow> = found
                .drain(..)
                .map(|(i, user, sid)| {
                    let t = index.trustee(&user, sid.as_deref());
                    row(company, &index.mailboxes[i], t, Permission::FullAccess)
                })
                .collect();
            write(store, to, &rows, &marks).await?;
            rows_written += rows.len() as u64;
            finished += marks.len() as u64;
            marks.clear();
            progress(
                company,
                Progress {
                    phase: Phase::FullAccess,
                    done: finished,
                    total,
                },
            );
        }
        if end {
            break;
        }
    }
    drop(reader);
    if received != expected {
        return Err(SweepError::Exchange(ExchangeError::Protocol(format!(
            "the Full Access reader stopped after {received} of {expected} mailboxes"
        ))));
    }
    Ok((rows_written, skipped))
}

/// Send As: one tenant-wide paged stream. Rows on recipients that are not mailboxes
/// (distribution groups) are outside a mailbox inventory.
async fn send_as(
    store: &dyn Store,
    client: &M365Client,
    to: Target<'_>,
    tenant: TenantId,
    done: &HashSet<&str>,
    index: &Index,
) -> Result<u64, SweepError> {
    let company = to.company;
    if done.contains(MARK_SEND_AS) {
        return Ok(0);
    }
    let mut rows_written = 0u64;
    let mut pages = client.recipient_permission_pages(tenant.as_uuid());
    while let Some(page) = pages.try_next().await? {
        let found: Vec<_> = page
            .into_iter()
            .filter(RecipientPermissionRow::is_explicit_send_as)
            .filter_map(|r| {
                index
                    .mailbox(&r.identity)
                    .map(|m| (m, r.trustee, r.trustee_sid))
            })
            .collect();
        index
            .resolve_unknown(client, tenant, found.iter().map(|f| f.1.clone()))
            .await?;
        let rows: Vec<InventoryRow> = found
            .into_iter()
            .map(|(m, trustee, sid)| {
                let t = index.trustee(&trustee, sid.as_deref());
                row(company, &index.mailboxes[m as usize], t, Permission::SendAs)
            })
            .collect();
        write(store, to, &rows, &[]).await?;
        rows_written += rows.len() as u64;
    }
    write(store, to, &[], &[MARK_SEND_AS.to_owned()]).await?;
    Ok(rows_written)
}

/// Aborts the task when dropped (the sweep stopped or failed).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sweeps one company for `actor` (technician or higher, entitled, company connected).
pub async fn sync_company(
    app: &App,
    actor: &Actor,
    company: &CompanyId,
    progress: &ProgressFn,
) -> Result<SweepReport, SweepError> {
    let (company, tenant) = ops::inventory::authorize_sweep(app.ctx(), actor, company).await?;
    sweep(
        &*app.store,
        &app.m365,
        &*app.clock,
        app.sweep_lease,
        Some(actor),
        &company.id,
        tenant,
        progress,
    )
    .await
}

/// Sweeps every connected company the actor may sweep, `parallel` at a time (the client's
/// global limiter bounds the calls in flight). One result per company, in company order.
pub async fn sync_all(
    app: &App,
    actor: &Actor,
    parallel: usize,
    progress: &ProgressFn,
) -> Result<Vec<(CompanyId, Result<SweepReport, SweepError>)>, SweepError> {
    let companies: Vec<CompanyId> = app
        .store
        .list_companies()
        .await?
        .into_iter()
        .filter(|c| c.connection.is_some())
        .filter(|c| exogate_core::policy::can_request(&actor.user, &c.id).is_ok())
        .map(|c| c.id)
        .collect();
    let results = futures::stream::iter(companies)
        .map(|c| async move {
            let r = sync_company(app, actor, &c, progress).await;
            (c, r)
        })
        .buffered(parallel.max(1))
        .collect()
        .await;
    Ok(results)
}
