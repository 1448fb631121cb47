//! The delegation inventory: every explicit Full Access, Send As and Send on Behalf grant of
//! every mailbox of a company, as the last sweep of its tenant found it and as executed writes
//! have patched it since. It answers "who can open this mailbox?" and, across companies, "what
//! can this user open?" without asking Exchange.
//!
//! A sweep writes its rows under a new *generation* of the company's inventory and, once done,
//! switches the company's current generation in one transaction: readers see either the old or
//! the new inventory, never a mix. A sweep records which chunks it finished, so a sweep that
//! crashed continues where it stopped.

use crate::action::Permission;
use crate::model::{CompanyId, RecipientKind, ResolvedIdentity, TenantId, Timestamp};

/// How Exchange prints a trustee that no longer resolves: the bare domain SID of a deleted
/// principal (`S-1-5-21-…`).
pub const ORPHAN_SID_PREFIX: &str = "S-1-5-21-";

/// How a trustee was identified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TrusteeClass {
    /// A user (or another non-group recipient) that resolved.
    User,
    /// A group: its members hold the right through it.
    Group,
    /// A bare `S-1-5-21-…` SID: the principal was deleted.
    Orphan,
    /// A value Exchange printed that did not resolve to a recipient.
    Unresolved,
}

impl TrusteeClass {
    pub const ALL: [TrusteeClass; 4] = [
        TrusteeClass::User,
        TrusteeClass::Group,
        TrusteeClass::Orphan,
        TrusteeClass::Unresolved,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            TrusteeClass::User => "user",
            TrusteeClass::Group => "group",
            TrusteeClass::Orphan => "orphan",
            TrusteeClass::Unresolved => "unresolved",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// The trustee of an inventory row: what Exchange printed, and what it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InventoryTrustee {
    /// As Exchange printed it (UPN, name, object id or SID).
    pub raw: String,
    /// The SID when Exchange reported one.
    pub sid: Option<String>,
    pub class: TrusteeClass,
    /// The recipient it resolved to (users and groups).
    pub identity: Option<ResolvedIdentity>,
}

impl InventoryTrustee {
    /// The stable key of the trustee within a company: its object id when resolved, its SID
    /// for an orphan, the lowercase raw value otherwise.
    pub fn key(&self) -> String {
        if let Some(id) = self.identity.as_ref().filter(|i| !i.object_id.is_empty()) {
            return id.object_id.to_ascii_lowercase();
        }
        if self.class == TrusteeClass::Orphan {
            return self.sid.clone().unwrap_or_else(|| self.raw.clone());
        }
        self.raw.to_ascii_lowercase()
    }

    /// A trustee known by its resolved identity (used when patching after a write).
    pub fn resolved(identity: ResolvedIdentity) -> Self {
        let class = if identity.kind == RecipientKind::Group {
            TrusteeClass::Group
        } else {
            TrusteeClass::User
        };
        Self {
            raw: identity.primary_address.clone(),
            sid: None,
            class,
            identity: Some(identity),
        }
    }

    /// What to show: the address when resolved, else the raw value.
    pub fn label(&self) -> &str {
        self.identity
            .as_ref()
            .map_or(self.raw.as_str(), |i| i.primary_address.as_str())
    }
}

/// One grant: `trustee` holds `right` on `mailbox` in `company`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InventoryRow {
    pub company: CompanyId,
    pub mailbox: ResolvedIdentity,
    pub trustee: InventoryTrustee,
    pub right: Permission,
}

impl InventoryRow {
    /// The identity of a row within its company: (mailbox object id, trustee key, right).
    pub fn key(&self) -> (String, String, Permission) {
        (
            self.mailbox.object_id.to_ascii_lowercase(),
            self.trustee.key(),
            self.right,
        )
    }
}

/// A member of a group that holds rights, as the sweep found it: direct, or through nested
/// groups (membership is stored flattened, so one lookup answers "which groups is X in").
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupMember {
    /// The group's trustee key (its lowercase object id), as on the group's rows.
    pub group: String,
    pub member: ResolvedIdentity,
}

/// State of a company's latest sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SweepState {
    Running,
    Ok,
    Failed,
}

impl SweepState {
    pub fn as_str(self) -> &'static str {
        match self {
            SweepState::Running => "running",
            SweepState::Ok => "ok",
            SweepState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [SweepState::Running, SweepState::Ok, SweepState::Failed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// The inventory of one company: the current generation and the latest sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryStatus {
    pub company: CompanyId,
    pub tenant: TenantId,
    /// The generation readers see (None before the first sweep finished).
    pub current_generation: Option<i64>,
    /// When the sweep that produced the current generation finished.
    pub as_of: Option<Timestamp>,
    /// Mailboxes and rows in the current generation (rows follow patches).
    pub mailboxes: u64,
    pub rows: u64,
    /// The latest sweep.
    pub sweep_generation: i64,
    pub sweep_state: SweepState,
    pub sweep_started_at: Timestamp,
    pub sweep_finished_at: Option<Timestamp>,
    pub sweep_error: Option<String>,
    /// Until when the running sweep's owner holds it unless it renews its lease (None when no
    /// sweep runs). A running sweep whose lease has passed has crashed: the next sweep
    /// continues it.
    pub lease_until: Option<Timestamp>,
}

/// A sweep's claim on its company: who runs it, and until when unless renewed. A sweep whose
/// lease has passed has crashed, and another may take over; before that, nobody can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepLease {
    /// Unique per sweep run (not per process: two sweeps in one process exclude each other).
    pub owner: String,
    pub until: Timestamp,
}

/// What [`crate::ports::Store::inventory_begin_sweep`] answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SweepBegin {
    /// This run holds the lease.
    Started(SweepStart),
    /// Another run holds an unexpired lease on the company's sweep.
    Busy {
        generation: i64,
        started_at: Timestamp,
        lease_until: Timestamp,
    },
}

/// A started sweep (see [`SweepBegin::Started`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepStart {
    pub generation: i64,
    /// A crashed sweep of the same tenant is continued.
    pub resumed: bool,
    /// Chunk markers the continued sweep already finished.
    pub done: Vec<String>,
}

/// How fresh a company's inventory is, for views.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Freshness {
    /// Swept successfully within the staleness window.
    Fresh,
    /// The last good sweep is older than the staleness window.
    Stale,
    /// The latest sweep failed (rows shown are from the last good sweep, if any).
    Failed,
    /// A sweep is running (rows shown are from the last good sweep, if any).
    Running,
    /// Never swept.
    Never,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Fresh => "fresh",
            Freshness::Stale => "stale",
            Freshness::Failed => "failed",
            Freshness::Running => "running",
            Freshness::Never => "never",
        }
    }
    /// Whether a view must warn about this company.
    pub fn warns(self) -> bool {
        self != Freshness::Fresh
    }
}

/// Default age after which an inventory is shown as stale (26 h: a nightly sweep plus slack).
pub const DEFAULT_STALE_SECS: i64 = 26 * 60 * 60;

impl InventoryStatus {
    /// How fresh the inventory is at `now`.
    pub fn freshness(&self, now: Timestamp, stale_secs: i64) -> Freshness {
        match (self.sweep_state, self.as_of) {
            (SweepState::Failed, _) => Freshness::Failed,
            (SweepState::Running, _) => Freshness::Running,
            (SweepState::Ok, None) => Freshness::Never,
            (SweepState::Ok, Some(at)) if now > at.plus_secs(stale_secs) => Freshness::Stale,
            (SweepState::Ok, Some(_)) => Freshness::Fresh,
        }
    }
}

// (inventory-truth)
/// One name of a recipient the sweep listed (a mailbox or a mail-enabled group): what a person
/// may type for it. The inventory resolves identities from these, like Exchange would, without
/// asking Exchange.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DirectoryName {
    /// Lowercase.
    pub name: String,
    pub identity: ResolvedIdentity,
}

/// Every name of a listed recipient: the names Exchange prints for it, its alias, Exchange
/// guid, proxy addresses (without their `smtp:` prefix), its address's local part and its
/// display name; lowercase, each once.
pub fn directory_names(e: &crate::ports::DirectoryEntry) -> Vec<DirectoryName> {
    let id = &e.identity;
    let local = id.primary_address.split('@').next().unwrap_or_default();
    let mut seen = std::collections::BTreeSet::new();
    e.names
        .iter()
        .chain(&e.weak_names)
        .map(String::as_str)
        .chain([
            id.object_id.as_str(),
            id.primary_address.as_str(),
            id.display_name.as_str(),
            local,
        ])
        .map(|n| {
            let n = n.trim();
            n.split_once(':')
                .filter(|(p, _)| p.eq_ignore_ascii_case("smtp"))
                .map_or(n, |(_, a)| a)
                .to_lowercase()
        })
        .filter(|n| !n.is_empty() && n.chars().count() <= 256 && seen.insert(n.clone()))
        .map(|name| DirectoryName {
            name,
            identity: id.clone(),
        })
        .collect()
}

// (scale)
/// What one company's current inventory knows of a name a person typed for a user (see
/// [`crate::ports::Store::inventory_user_matches`]): how many listed recipients carry the name,
/// and the rows held by the one recipient that does (or, when none does, by trustees and group
/// members matching the name itself), directly or through groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMatch {
    pub company: crate::model::CompanyId,
    pub names: usize,
    pub rows: Vec<InventoryRow>,
}
