//! The delegation inventory sweep: reads one tenant's delegation through the [`Microsoft`]
//! port with the fewest reads and writes it to the store as a new generation of the company's
//! inventory.
//!
//! Per tenant it reads the mailbox list (mailboxes and their Send on Behalf delegates) and, at
//! the same time, the list of mail-enabled groups; then the Full Access of every mailbox, many
//! to a call and several calls in flight ([`ReadLimits`]), while the tenant-wide Send As list
//! is read alongside. Only a compact index of the tenant's mailboxes and groups (to resolve
//! trustees) is held in memory; permission rows are written chunk by chunk, each chunk together
//! with the marker that it is done, so a sweep that crashed continues where it stopped. Groups
//! are kept as groups (their members, nested groups expanded, are recorded too) and deleted
//! principals as orphans. One run sweeps a company at a time, under a lease in the store that
//! it renews; its start, end or failure goes into the audit log with the store's writes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::channel::mpsc;
use futures::future::Either;
use futures::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use serde_json::json;

use crate::action::Permission;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::CoreError;
use crate::inventory::{
    GroupMember, InventoryRow, InventoryTrustee, ORPHAN_SID_PREFIX, SweepBegin, SweepLease,
    TrusteeClass,
};
use crate::model::{Actor, CompanyId, RecipientKind, ResolvedIdentity, TenantId, Timestamp};
use crate::ops::Ctx;
use crate::ports::{
    DirectoryEntry, ListedGrant, ListedMailbox, Microsoft, MsError, ReadLimits, Store, StoreError,
    Timer,
};

/// Mailboxes per Full Access chunk (one store transaction).
pub const FA_CHUNK: usize = 100;

/// How long a sweep holds its company without renewing its lease, by default: another server
/// (or run) takes over a crashed sweep once this has passed since its last renewal. A running
/// sweep renews it every quarter of it.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Microsoft refused or failed (after the client's retries): try again later or fix the
    /// tenant's Exchange Admin status.
    #[error("Exchange: {0}")]
    Microsoft(#[from] MsError),
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
    /// By the context's clock.
    pub elapsed: Duration,
    /// (drift) New drift findings this sweep recorded.
    pub drift_found: u64,
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

/// How one run sweeps.
pub struct SweepOptions<'a> {
    /// Who asked (None: the scheduler).
    pub actor: Option<&'a Actor>,
    /// The tenant to read.
    pub tenant: TenantId,
    /// Names this run in the store's lease: unique per run, chosen by the caller.
    pub owner: String,
    /// How long the lease holds without renewal; renewed every quarter of it.
    pub lease: Duration,
    /// Waits between renewals.
    pub timer: &'a dyn Timer,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every name Exchange may print for a recipient (lowercase) → its position in a list.
#[derive(Default)]
struct Keys(HashMap<Box<str>, (u32, bool)>);

impl Keys {
    fn add(&mut self, e: &DirectoryEntry, idx: u32) {
        // A strong name (what Exchange prints for a trustee or a mailbox) wins over a weak one
        // (the Exchange guid and the alias), should one object's guid equal another's name.
        let names = e.names.iter().map(|k| (k, true));
        for (k, is_strong) in names.chain(e.weak_names.iter().map(|k| (k, false))) {
            if k.is_empty() {
                continue;
            }
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
    fn add(&mut self, e: DirectoryEntry) {
        let idx = u32::try_from(self.idents.len()).unwrap_or(u32::MAX);
        self.keys.add(&e, idx);
        self.idents.push(e.identity);
    }
}

type GroupSender = mpsc::UnboundedSender<(String, String)>;

/// The tenant's mailboxes and groups, and every other recipient resolved on the way. Shared by
/// the Full Access and Send As phases, which run at the same time.
#[derive(Default)]
struct Index {
    mailboxes: Vec<ResolvedIdentity>,
    /// What to ask Full Access with, per mailbox.
    handles: Vec<String>,
    /// Raw Send on Behalf values, per mailbox (usually empty).
    sob: Vec<Vec<String>>,
    keys: Keys,
    groups: Groups,
    /// Recipients in neither list (mail users, groups the list missed) resolved on demand;
    /// None: does not resolve. Never locked across an await.
    others: Mutex<HashMap<Box<str>, Option<ResolvedIdentity>>>,
    /// Groups seen holding a right go to the sender (trustee key, address), so their members
    /// are read while the Full Access phase still runs. No sender once those phases are done.
    group_seen: Mutex<(HashSet<String>, Option<GroupSender>)>,
}

impl Index {
    fn add(&mut self, m: ListedMailbox) {
        let idx = u32::try_from(self.mailboxes.len()).unwrap_or(u32::MAX);
        self.keys.add(&m.entry, idx);
        self.handles.push(m.handle);
        self.mailboxes.push(m.entry.identity);
        self.sob.push(m.send_on_behalf);
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
        lock(&self.others)
            .get(raw.to_lowercase().as_str())
            .cloned()
            .flatten()
    }

    /// Whether `raw` still needs a directory lookup.
    fn unknown(&self, raw: &str) -> bool {
        !raw.starts_with(ORPHAN_SID_PREFIX)
            && self.mailbox(raw).is_none()
            && self.groups.keys.get(raw).is_none()
            && !lock(&self.others).contains_key(raw.to_lowercase().as_str())
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
            let mut seen = lock(&self.group_seen);
            if !key.is_empty()
                && seen.0.insert(key.clone())
                && let Some(tx) = &seen.1
            {
                let _ = tx.unbounded_send((key, g.primary_address.clone()));
            }
        }
        InventoryTrustee {
            raw: raw.to_owned(),
            sid,
            class,
            identity,
        }
    }

    /// Resolves values found in neither list (mail users, groups the list missed) in one
    /// batch lookup, once each.
    async fn resolve_unknown(
        &self,
        ms: &dyn Microsoft,
        tenant: TenantId,
        raws: impl IntoIterator<Item = String>,
    ) -> Result<(), MsError> {
        let mut seen = HashSet::new();
        let todo: Vec<String> = raws
            .into_iter()
            .filter(|r| self.unknown(r) && seen.insert(r.to_lowercase()))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        let results = ms.resolve_many(tenant, &todo).await;
        let mut found = Vec::with_capacity(todo.len());
        for (raw, r) in todo.into_iter().zip(results) {
            let ident = match r {
                Ok(identity) => Some(identity),
                Err(MsError::NotFound { .. } | MsError::Ambiguous { .. }) => None,
                Err(e) => return Err(e),
            };
            found.push((raw.to_lowercase().into_boxed_str(), ident));
        }
        lock(&self.others).extend(found);
        Ok(())
    }

    /// The rows of `grants` (mailbox position, trustee, SID) for `right`.
    fn rows(
        &self,
        company: &CompanyId,
        right: Permission,
        grants: impl IntoIterator<Item = (usize, String, Option<String>)>,
    ) -> Vec<InventoryRow> {
        grants
            .into_iter()
            .map(|(m, trustee, sid)| InventoryRow {
                company: company.clone(),
                mailbox: self.mailboxes[m].clone(),
                trustee: self.trustee(&trustee, sid.as_deref()),
                right,
            })
            .collect()
    }
}

const MARK_SEND_AS: &str = "send_as";
const MARK_SOB: &str = "send_on_behalf";
const MARK_MEMBERS: &str = "members";

fn fa_mark(object_id: &str) -> String {
    format!("fa:{object_id}")
}

/// Sweeps one company's tenant into the store (see the module docs). Many sweeps of different
/// companies may run at once (the port paces the reads); one company is swept by one run at a
/// time, across servers: the run holds a lease it renews, and a second run meanwhile gets
/// [`SweepError::Busy`]. The start, end or failure goes into the audit log. Whether the actor
/// may sweep is the caller's check ([`super::authorize_sweep`]).
pub async fn sweep(
    ctx: Ctx<'_>,
    company: &CompanyId,
    options: SweepOptions<'_>,
    progress: &ProgressFn,
) -> Result<SweepReport, SweepError> {
    let SweepOptions {
        actor,
        tenant,
        owner,
        lease: lease_for,
        timer,
    } = options;
    let store = ctx.store;
    let started = ctx.clock.now();
    let lease_ms = i64::try_from(lease_for.as_millis()).unwrap_or(i64::MAX);
    let lease = |now: Timestamp| SweepLease {
        owner: owner.clone(),
        until: now.plus_millis(lease_ms),
    };
    let event = |kind: AuditKind, detail: serde_json::Value| {
        NewAuditEvent::new(ctx.clock.now(), kind, actor)
            .company(company)
            .detail(detail)
    };
    let begin = store
        .inventory_begin_sweep(
            company,
            tenant,
            started,
            &lease(started),
            event(
                AuditKind::InventorySweepStarted,
                json!({ "tenant": tenant.to_string() }),
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
    let work = std::pin::pin!(run(ctx, to, tenant, &start.done, progress));
    // Renews the lease while the work runs; ends only if another run took the sweep over. A
    // renewal that fails is tried again at the next tick.
    let heartbeat = std::pin::pin!(async {
        loop {
            timer.sleep(lease_for / 4).await;
            let renewed = store
                .inventory_renew_lease(company, generation, &lease(ctx.clock.now()))
                .await;
            if let Ok(false) = renewed {
                return SweepError::Superseded;
            }
        }
    });
    let result = match futures::future::select(work, heartbeat).await {
        Either::Left((r, _)) => r,
        Either::Right((e, _)) => Err(e),
    };
    match result {
        Ok((mailboxes, rows, skipped)) => {
            // (drift) Compare with the previous generation before this one replaces it.
            let drift = crate::ops::drift::observe(ctx, company, actor, generation, started)
                .await?
                .len();
            let now = ctx.clock.now();
            let elapsed_ms = u64::try_from(now.unix_millis() - started.unix_millis()).unwrap_or(0);
            let done = event(
                AuditKind::InventorySweepFinished,
                json!({
                    "generation": generation,
                    "resumed": start.resumed,
                    "mailboxes": mailboxes,
                    "rows": rows,
                    "skipped": skipped,
                    "elapsed_ms": elapsed_ms,
                    "drift_found": drift,
                }),
            );
            if !store
                .inventory_finish_sweep(company, generation, &owner, now, mailboxes, done)
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
                elapsed: Duration::from_millis(elapsed_ms),
                drift_found: drift as u64,
            })
        }
        Err(SweepError::Superseded) => Err(SweepError::Superseded),
        Err(e) => {
            let message = e.to_string();
            let failed = event(
                AuditKind::InventorySweepFailed,
                json!({ "generation": generation, "error": message }),
            );
            // The sweep's own error is what the caller needs; should recording it fail too,
            // the lease runs out and the next sweep starts over.
            let _ = store
                .inventory_fail_sweep(
                    company,
                    generation,
                    &owner,
                    ctx.clock.now(),
                    &message,
                    failed,
                )
                .await;
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

/// What a sweep writes in one transaction, besides its chunk markers.
enum Chunk<'a> {
    Rows(&'a [InventoryRow]),
    Members(&'a [GroupMember]),
}

impl Target<'_> {
    async fn write(
        self,
        store: &dyn Store,
        chunk: Chunk<'_>,
        done: &[String],
    ) -> Result<(), SweepError> {
        let (company, generation, owner) = (self.company, self.generation, self.owner);
        let written = match chunk {
            Chunk::Rows(rows) => {
                store
                    .inventory_write_chunk(company, generation, owner, rows, done)
                    .await?
            }
            Chunk::Members(members) => {
                store
                    .inventory_write_members(company, generation, owner, members, done)
                    .await?
            }
        };
        if written {
            Ok(())
        } else {
            Err(SweepError::Superseded)
        }
    }
}

async fn run(
    ctx: Ctx<'_>,
    to: Target<'_>,
    tenant: TenantId,
    done: &[String],
    progress: &ProgressFn,
) -> Result<(u64, u64, u64), SweepError> {
    let (store, ms) = (ctx.store, ctx.ms);
    let company = to.company;
    let done: HashSet<&str> = done.iter().map(String::as_str).collect();
    // 1. Mailboxes (with their Send on Behalf delegates) and mail-enabled groups: two paged
    //    lists read at the same time.
    let mailboxes = async {
        let mut pages = ms.mailboxes(tenant);
        let mut index = Index::default();
        let mut names = Vec::new();
        while let Some(page) = pages.try_next().await? {
            for m in page {
                names.extend(crate::inventory::directory_names(&m.entry));
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
        Ok::<_, MsError>((index, names))
    };
    let groups = async {
        let mut groups = Groups::default();
        let mut names = Vec::new();
        let mut pages = ms.groups(tenant);
        while let Some(page) = pages.try_next().await? {
            for g in page {
                names.extend(crate::inventory::directory_names(&g));
                groups.add(g);
            }
        }
        Ok::<_, MsError>((groups, names))
    };
    let ((mut index, mut names), (groups, group_names)) = futures::try_join!(mailboxes, groups)?;
    index.groups = groups;
    // (inventory-truth) The inventory's own directory, so views resolve what people type.
    names.extend(group_names);
    for chunk in names.chunks(1000) {
        if !store
            .inventory_write_names(company, to.generation, to.owner, chunk)
            .await?
        {
            return Err(SweepError::Superseded);
        }
    }
    drop(names);
    let index = index;
    let total = index.mailboxes.len() as u64;

    // 2. and 3. Full Access and the tenant-wide Send As list, at the same time, so the
    //    tenant stays busy until the last read. Groups seen holding a right have their
    //    members read meanwhile, a batch at a time.
    let (group_tx, group_rx) = mpsc::unbounded();
    lock(&index.group_seen).1 = Some(group_tx);
    let on = Rights {
        ctx,
        to,
        tenant,
        done: &done,
        index: &index,
    };
    let rights = async {
        let r = futures::try_join!(full_access(on, progress), send_as(on),);
        // No more groups to read: the reader ends once it has read what it was sent.
        lock(&index.group_seen).1 = None;
        r
    };
    let limits = ms.read_limits(tenant);
    let (rights, mut prefetched) =
        futures::join!(rights, prefetch_members(ms, tenant, limits, group_rx));
    let ((fa_rows, skipped), sa) = rights?;
    let mut rows_written = fa_rows + sa;
    progress(
        company,
        Progress {
            phase: Phase::SendAs,
            done: total,
            total,
        },
    );

    // 4. Send on Behalf: from the mailbox list; delegates come as names or object ids.
    if !done.contains(MARK_SOB) {
        let raws: Vec<String> = index.sob.iter().flatten().cloned().collect();
        index.resolve_unknown(ms, tenant, raws).await?;
        let grants = index
            .sob
            .iter()
            .enumerate()
            .flat_map(|(m, delegates)| delegates.iter().map(move |raw| (m, raw.clone(), None)));
        let rows = index.rows(company, Permission::SendOnBehalf, grants);
        for chunk in rows.chunks(1000) {
            to.write(store, Chunk::Rows(chunk), &[]).await?;
        }
        to.write(store, Chunk::Rows(&[]), &[MARK_SOB.to_owned()])
            .await?;
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
        let members = group_members(ms, tenant, &groups, &mut prefetched).await?;
        let mut chunks = members.chunks(1000).peekable();
        if chunks.peek().is_none() {
            to.write(store, Chunk::Members(&[]), &[MARK_MEMBERS.to_owned()])
                .await?;
        }
        while let Some(chunk) = chunks.next() {
            let done: &[String] = if chunks.peek().is_none() {
                &[MARK_MEMBERS.to_owned()]
            } else {
                &[]
            };
            to.write(store, Chunk::Members(chunk), done).await?;
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

/// Direct members by group key.
type DirectMembers = HashMap<String, Vec<ResolvedIdentity>>;

/// One group's members, or none for a group Exchange does not expand (not mail-enabled, or
/// gone since).
fn members_of(
    result: Result<Vec<ResolvedIdentity>, MsError>,
) -> Result<Vec<ResolvedIdentity>, MsError> {
    match result {
        Ok(list) => Ok(list),
        Err(MsError::NotFound { .. } | MsError::Ambiguous { .. }) => Ok(Vec::new()),
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

/// Reads the direct members of the groups sent on `rx` (and of the groups inside them), a
/// batch at a time, until `rx` closes. A group it could not read is left out: the members
/// phase reads it again (and then fails the sweep if Exchange still fails).
async fn prefetch_members(
    ms: &dyn Microsoft,
    tenant: TenantId,
    limits: ReadLimits,
    mut rx: mpsc::UnboundedReceiver<(String, String)>,
) -> DirectMembers {
    let mut direct = DirectMembers::new();
    let mut queued: HashSet<String> = HashSet::new();
    let mut pending: VecDeque<(String, String)> = VecDeque::new();
    loop {
        if pending.is_empty() {
            match rx.next().await {
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
        let n = pending.len().min(limits.batch.max(1));
        let batch: Vec<(String, String)> = pending.drain(..n).collect();
        if batch.is_empty() {
            continue;
        }
        let handles: Vec<String> = batch.iter().map(|g| g.1.clone()).collect();
        let results = ms.group_members_many(tenant, &handles).await;
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
    ms: &dyn Microsoft,
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
            let results = ms.group_members_many(tenant, &handles).await;
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

/// What the Full Access and Send As phases work on.
#[derive(Clone, Copy)]
struct Rights<'a> {
    ctx: Ctx<'a>,
    to: Target<'a>,
    tenant: TenantId,
    /// Chunk markers a crashed run finished.
    done: &'a HashSet<&'a str>,
    index: &'a Index,
}

/// Full Access answers of one call: mailbox positions and one answer per mailbox.
type FaBatch = (Vec<usize>, Vec<Result<Vec<ListedGrant>, MsError>>);

/// Full Access: a reader keeps `2 × in_flight` batched reads going and hands the answers over
/// a bounded channel; the writer resolves the trustees and stores [`FA_CHUNK`] mailboxes per
/// transaction. A slow store write or a directory lookup never leaves the tenant's permits
/// idle, and memory holds at most the channel's batches.
async fn full_access(on: Rights<'_>, progress: &ProgressFn) -> Result<(u64, u64), SweepError> {
    let Rights {
        ctx,
        to,
        tenant,
        done,
        index,
    } = on;
    let (store, ms) = (ctx.store, ctx.ms);
    let company = to.company;
    let total = index.mailboxes.len() as u64;
    let todo: Vec<usize> = (0..index.mailboxes.len())
        .filter(|&i| !done.contains(fa_mark(&index.mailboxes[i].object_id).as_str()))
        .collect();
    let skipped = total - todo.len() as u64;
    let mut finished = skipped;
    let report = move |done| {
        let phase = Phase::FullAccess;
        progress(company, Progress { phase, done, total });
    };
    report(finished);
    let limits = ms.read_limits(tenant);
    let window = limits.in_flight.max(1) * 2;
    let (mut tx, mut rx) = mpsc::channel::<FaBatch>(window * 2);
    let batches: Vec<Vec<usize>> = todo
        .chunks(limits.batch.max(1))
        .map(<[usize]>::to_vec)
        .collect();
    let reader = async move {
        let mut answers = futures::stream::iter(batches)
            .map(|positions| async move {
                let ids: Vec<String> = positions
                    .iter()
                    .map(|&i| index.handles[i].clone())
                    .collect();
                let results = ms.full_access_many(tenant, &ids).await;
                (positions, results)
            })
            .buffer_unordered(window);
        while let Some(answer) = answers.next().await {
            // The writer stopped (it failed): nothing more to read.
            if tx.send(answer).await.is_err() {
                break;
            }
        }
        Ok::<(), SweepError>(())
    };
    let writer = async move {
        let mut rows_written = 0u64;
        let mut found = Vec::new();
        let mut marks = Vec::new();
        loop {
            let next = rx.next().await;
            let end = next.is_none();
            if let Some((positions, results)) = next {
                if results.len() != positions.len() {
                    return Err(SweepError::Microsoft(MsError::Unavailable {
                        detail: format!(
                            "{} Full Access answers for {} mailboxes",
                            results.len(),
                            positions.len()
                        ),
                        retry_after_secs: None,
                    }));
                }
                for (&i, result) in positions.iter().zip(results) {
                    match result {
                        Ok(grants) => {
                            found.extend(grants.into_iter().map(|g| (i, g.trustee, g.sid)));
                        }
                        // Deleted since it was listed: nothing to record.
                        Err(MsError::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    marks.push(fa_mark(&index.mailboxes[i].object_id));
                }
            }
            if marks.len() >= FA_CHUNK || (end && !marks.is_empty()) {
                index
                    .resolve_unknown(ms, tenant, found.iter().map(|f| f.1.clone()))
                    .await?;
                let rows = index.rows(company, Permission::FullAccess, found.drain(..));
                to.write(store, Chunk::Rows(&rows), &marks).await?;
                rows_written += rows.len() as u64;
                finished += marks.len() as u64;
                marks.clear();
                report(finished);
            }
            if end {
                return Ok(rows_written);
            }
        }
    };
    let ((), rows_written) = futures::try_join!(reader, writer)?;
    Ok((rows_written, skipped))
}

/// Send As: one tenant-wide paged list. Rows on recipients that are not mailboxes
/// (distribution groups) are outside a mailbox inventory.
async fn send_as(on: Rights<'_>) -> Result<u64, SweepError> {
    let (store, ms, index, to) = (on.ctx.store, on.ctx.ms, on.index, on.to);
    if on.done.contains(MARK_SEND_AS) {
        return Ok(0);
    }
    let mut rows_written = 0u64;
    let mut pages = ms.send_as_grants(on.tenant);
    while let Some(page) = pages.try_next().await? {
        let found: Vec<_> = page
            .into_iter()
            .filter_map(|g| {
                index
                    .mailbox(&g.mailbox)
                    .map(|m| (m as usize, g.trustee, g.sid))
            })
            .collect();
        index
            .resolve_unknown(ms, on.tenant, found.iter().map(|f| f.1.clone()))
            .await?;
        let rows = index.rows(to.company, Permission::SendAs, found);
        to.write(store, Chunk::Rows(&rows), &[]).await?;
        rows_written += rows.len() as u64;
    }
    to.write(store, Chunk::Rows(&[]), &[MARK_SEND_AS.to_owned()])
        .await?;
    Ok(rows_written)
}
