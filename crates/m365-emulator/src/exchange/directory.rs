//! The per-tenant Exchange directory, what the cmdlets of `docs/MICROSOFT.md#cmdlets` read and
//! change: recipients and security principals, their identifiers, Full Access ACL rows, Send As
//! rows, Send on Behalf delegates and group membership (each group's direct members), with
//! case-insensitive identity resolution and a short history of permission changes so reads can
//! lag writes (replication lag).
//!
//! Kept compact on purpose: a 100,000-mailbox tenant must fit well under 1 GB.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The SID of `NT AUTHORITY\SELF`, on every mailbox's ACL.
pub const SELF_SID: &str = "S-1-5-10";
/// The display form of the SELF principal.
pub const SELF_NAME: &str = "NT AUTHORITY\\SELF";
/// Most ACEs a mailbox's Full Access ACL may hold (`docs/MICROSOFT.md#limits`).
pub const MAX_ACES: usize = 500;
/// The fake forest name used in distinguished names and built-in principals.
pub const FOREST: &str = "EMUPR01A001";

/// Index of an object in [`Directory::objects`].
pub type ObjId = u32;

/// What kind of directory object this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A user with a mailbox (`UserMailbox`).
    UserMailbox,
    /// A shared mailbox (`SharedMailbox`).
    SharedMailbox,
    /// A room mailbox (`RoomMailbox`).
    RoomMailbox,
    /// A user without a mailbox: a security principal, not a recipient.
    User,
    /// A mail-enabled security group (`MailUniversalSecurityGroup`).
    MailEnabledSecurityGroup,
    /// A security group that is not mail-enabled: a principal, not a recipient.
    SecurityGroup,
}

impl Kind {
    pub fn is_mailbox(self) -> bool {
        matches!(
            self,
            Kind::UserMailbox | Kind::SharedMailbox | Kind::RoomMailbox
        )
    }
    /// Mail-enabled objects (they appear in Get-Recipient and may be Send on Behalf delegates).
    pub fn is_recipient(self) -> bool {
        self.is_mailbox() || self == Kind::MailEnabledSecurityGroup
    }
    pub fn is_group(self) -> bool {
        matches!(self, Kind::MailEnabledSecurityGroup | Kind::SecurityGroup)
    }
    /// `RecipientTypeDetails` as Exchange spells it.
    pub fn recipient_type_details(self) -> &'static str {
        match self {
            Kind::UserMailbox => "UserMailbox",
            Kind::SharedMailbox => "SharedMailbox",
            Kind::RoomMailbox => "RoomMailbox",
            Kind::User => "User",
            Kind::MailEnabledSecurityGroup => "MailUniversalSecurityGroup",
            Kind::SecurityGroup => "UniversalSecurityGroup",
        }
    }
    /// `RecipientType` as Exchange spells it.
    pub fn recipient_type(self) -> &'static str {
        match self {
            Kind::UserMailbox | Kind::SharedMailbox | Kind::RoomMailbox => "UserMailbox",
            Kind::User => "User",
            Kind::MailEnabledSecurityGroup => "MailUniversalSecurityGroup",
            Kind::SecurityGroup => "Group",
        }
    }
}

/// A security identifier, stored compactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Sid {
    /// `S-1-5-10`, `NT AUTHORITY\SELF`.
    SelfSid,
    /// `{tenant domain SID}-{rid}`.
    Tenant(u32),
    /// A built-in forest principal (inherited admin ACEs), index into [`BUILTINS`].
    Builtin(u8),
    /// Any other SID string (orphans from elsewhere).
    Raw(Box<str>),
}

/// Built-in forest principals that appear on inherited ACEs: (RID suffix, display name).
pub const BUILTINS: &[(&str, &str)] = &[
    ("512", "Domain Admins"),
    ("519", "Enterprise Admins"),
    ("1107", "Organization Management"),
];

/// Mailbox rights, in the order .NET prints the `[Flags]` enum (ascending value).
pub const RIGHTS: &[(u8, &str)] = &[
    (1, "FullAccess"),
    (2, "ExternalAccount"),
    (4, "DeleteItem"),
    (8, "ReadPermission"),
    (16, "ChangePermission"),
    (32, "ChangeOwner"),
];
pub const FULL_ACCESS: u8 = 1;
pub const EXTERNAL_ACCOUNT: u8 = 2;
pub const READ_PERMISSION: u8 = 8;

/// Formats a rights set the way Exchange does: one comma-joined string.
pub fn rights_string(rights: u8) -> String {
    let mut out = String::new();
    for (bit, name) in RIGHTS {
        if rights & bit != 0 {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(name);
        }
    }
    out
}

/// Parses one right name (case-insensitive).
pub fn parse_right(name: &str) -> Option<u8> {
    RIGHTS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(b, _)| *b)
}

/// `InheritanceType` values.
pub const INHERITANCE: &[&str] = &["None", "All", "Children", "Descendents", "SelfAndChildren"];
pub const INHERIT_NONE: u8 = 0;
pub const INHERIT_ALL: u8 = 1;

/// One Full Access ACL row (an ACE as Get-MailboxPermission shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRow {
    pub principal: Sid,
    pub rights: u8,
    pub deny: bool,
    /// Index into [`INHERITANCE`].
    pub inheritance: u8,
    pub inherited: bool,
    /// Stored, never returned by any cmdlet.
    pub automapping: bool,
}

/// One Send As row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendAsRow {
    pub trustee: Sid,
    pub inherited: bool,
}

/// Permissions held on a recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perms {
    pub full_access: Vec<AclRow>,
    pub send_as: Vec<SendAsRow>,
    /// Send on Behalf delegates (`GrantSendOnBehalfTo`), as object references.
    pub send_on_behalf: Vec<ObjId>,
}

/// A directory object: a recipient and/or security principal.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: Kind,
    pub deleted: bool,
    pub hidden_from_address_lists: bool,
    pub message_copy_for_sent_as: bool,
    pub message_copy_for_send_on_behalf: bool,
    pub rid: u32,
    /// `Identity` / `Id` / `Name`; GUID-like for some objects.
    pub name: Box<str>,
    pub alias: Box<str>,
    pub display_name: Box<str>,
    pub upn: Option<Box<str>>,
    pub primary_smtp: Option<Box<str>>,
    /// Secondary SMTP addresses (without the `smtp:` prefix).
    pub secondary_smtp: Vec<Box<str>>,
    pub guid: Uuid,
    pub exchange_object_id: Uuid,
    /// The Entra object id.
    pub external_directory_object_id: Uuid,
    pub exchange_guid: Uuid,
    pub perms: Option<Box<Perms>>,
    /// Direct members of a group (users, mailboxes, other groups), in the order they were
    /// added; empty for every other kind. Deleted objects leave every list (as in Entra).
    pub members: Vec<ObjId>,
}

impl Object {
    /// How the object is shown as a trustee (`User` / `Trustee`): UPN for users, else the name.
    pub fn trustee_display(&self) -> &str {
        match (&self.upn, self.kind.is_group()) {
            (Some(upn), false) => upn,
            _ => &self.name,
        }
    }
    pub fn perms(&self) -> &Perms {
        static EMPTY: Perms = Perms {
            full_access: Vec::new(),
            send_as: Vec::new(),
            send_on_behalf: Vec::new(),
        };
        self.perms.as_deref().unwrap_or(&EMPTY)
    }
}

#[derive(Debug, Clone)]
enum Hits {
    One(ObjId),
    Many(Vec<ObjId>),
}

impl Hits {
    /// Adds `id` unless it is there already.
    fn add(&mut self, id: ObjId) {
        match self {
            Hits::One(existing) if *existing == id => {}
            Hits::One(existing) => {
                let existing = *existing;
                *self = Hits::Many(vec![existing, id]);
            }
            Hits::Many(v) => {
                if !v.contains(&id) {
                    v.push(id);
                }
            }
        }
    }
}

/// Records that `key` finds `id`.
fn hits_insert<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Hits>, key: K, id: ObjId) {
    match map.get_mut(&key) {
        None => {
            map.insert(key, Hits::One(id));
        }
        Some(h) => h.add(id),
    }
}

/// Forgets that `key` finds `id` (the key goes when it finds nothing else).
fn hits_remove<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Hits>, key: K, id: ObjId) {
    let remove = match map.get_mut(&key) {
        Some(Hits::One(existing)) => *existing == id,
        Some(Hits::Many(v)) => {
            v.retain(|x| *x != id);
            if let [only] = v[..] {
                map.insert(key, Hits::One(only));
                return;
            }
            false
        }
        None => false,
    };
    if remove {
        map.remove(&key);
    }
}

/// A permission change kept for replication lag: the object's permissions before it.
#[derive(Debug, Clone)]
struct Recent {
    at: OffsetDateTime,
    obj: ObjId,
    before: Perms,
}

/// How an identity string resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Found(ObjId),
    NotFound,
    Ambiguous(Vec<ObjId>),
}

/// A tenant's Exchange directory: recipients, principals and permissions.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// `S-1-5-21-a-b-c`, the tenant's domain SID.
    pub domain_sid: Box<str>,
    /// The tenant's initial (`*.onmicrosoft.com`) domain, used in DNs.
    pub initial_domain: Box<str>,
    pub objects: Vec<Object>,
    keys: HashMap<Box<str>, Hits>,
    guids: HashMap<Uuid, Hits>,
    by_rid: HashMap<u32, ObjId>,
    /// Every GUID ever issued in this tenant (deleted objects' included): Guid,
    /// ExchangeObjectId, ExternalDirectoryObjectId and ExchangeGuid are globally unique in
    /// Exchange, so a drawn id that is already taken is drawn again.
    issued: HashSet<Uuid>,
    /// Object ids a seed gives explicitly to objects not created yet: never drawn for others.
    reserved: HashSet<Uuid>,
    next_rid: u32,
    recent: VecDeque<Recent>,
}

/// Why an object could not be created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    #[error("an object with the {field} '{value}' already exists")]
    AlreadyExists { field: &'static str, value: String },
    #[error("the name must not be empty")]
    EmptyName,
    #[error("the object id '{0}' is already taken by another object")]
    ObjectIdTaken(Uuid),
}

/// The fields of a new object; unset ones are derived.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewObject {
    #[serde(rename = "type")]
    pub kind: Option<Kind>,
    pub name: String,
    pub alias: Option<String>,
    pub display_name: Option<String>,
    pub upn: Option<String>,
    pub primary_smtp: Option<String>,
    /// Extra SMTP addresses.
    pub email_addresses: Vec<String>,
    /// The Entra object id (`ExternalDirectoryObjectId`).
    pub object_id: Option<Uuid>,
    /// Use the object id as the Exchange `Name` (as many cloud-created objects have).
    pub name_is_object_id: bool,
    pub hidden_from_address_lists: bool,
    pub message_copy_for_sent_as: bool,
    pub message_copy_for_send_on_behalf: bool,
    /// Add the second SELF row (`FullAccess, ExternalAccount, ReadPermission`).
    pub self_external_account_row: bool,
    /// Add inherited admin rows (Deny FullAccess for Domain/Enterprise Admins, allow for
    /// Organization Management).
    pub inherited_admin_rows: bool,
    /// Groups only: identities of the direct members (any identity of existing objects).
    /// [`Directory::create`] ignores it; [`Directory::from_seed`] resolves it once every object
    /// of the seed exists, and the control API once the new object exists.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

/// Why a membership change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    #[error("'{0}' is not a group, so it has no members")]
    NotAGroup(String),
    #[error("the group '{0}' cannot be a member of itself")]
    SelfMember(String),
    #[error("no live object {0}")]
    Gone(ObjId),
}

/// Random bits for ids, from a seeded generator.
pub trait IdSource {
    fn next_u128(&mut self) -> u128;
    fn next_u32(&mut self) -> u32;
}

impl<R: rand::RngCore> IdSource for R {
    fn next_u128(&mut self) -> u128 {
        let mut b = [0u8; 16];
        self.fill_bytes(&mut b);
        u128::from_le_bytes(b)
    }
    fn next_u32(&mut self) -> u32 {
        rand::RngCore::next_u32(self)
    }
}

/// A random version-4 UUID from `ids`.
pub fn uuid_from(ids: &mut dyn IdSource) -> Uuid {
    uuid::Builder::from_random_bytes(ids.next_u128().to_le_bytes()).into_uuid()
}

impl Directory {
    /// An empty directory with a random domain SID.
    pub fn new(initial_domain: &str, ids: &mut dyn IdSource) -> Self {
        let a = 1_000_000_000 + ids.next_u32() % 3_000_000_000;
        let b = 1_000_000_000 + ids.next_u32() % 3_000_000_000;
        let c = 1_000_000_000 + ids.next_u32() % 3_000_000_000;
        Self {
            domain_sid: format!("S-1-5-21-{a}-{b}-{c}").into(),
            initial_domain: initial_domain.to_ascii_lowercase().into(),
            next_rid: 10_000_000 + ids.next_u32() % 40_000_000,
            ..Self::default()
        }
    }

    /// Marks object ids as belonging to objects about to be created, so no id drawn in the
    /// meantime takes them ([`Directory::from_seed`] reserves every explicit `object_id` first).
    pub fn reserve_object_ids(&mut self, ids: impl IntoIterator<Item = Uuid>) {
        self.reserved.extend(ids);
    }

    /// A fresh random GUID from `ids`: drawn again while it equals any GUID already issued or
    /// reserved in this tenant, or any name, alias or address (names may be object ids).
    fn fresh_uuid(&mut self, ids: &mut dyn IdSource) -> Uuid {
        loop {
            let g = uuid_from(ids);
            if !self.issued.contains(&g)
                && !self.reserved.contains(&g)
                && !self.keys.contains_key(g.to_string().as_str())
            {
                self.issued.insert(g);
                return g;
            }
        }
    }

    pub fn get(&self, id: ObjId) -> Option<&Object> {
        self.objects.get(id as usize).filter(|o| !o.deleted)
    }

    pub fn get_mut(&mut self, id: ObjId) -> Option<&mut Object> {
        self.objects.get_mut(id as usize).filter(|o| !o.deleted)
    }

    /// Live objects, in creation order.
    pub fn live(&self) -> impl Iterator<Item = (ObjId, &Object)> {
        self.objects
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.deleted)
            .map(|(i, o)| (i as ObjId, o))
    }

    pub fn mailbox_count(&self) -> usize {
        self.live().filter(|(_, o)| o.kind.is_mailbox()).count()
    }

    /// Formats a SID.
    pub fn sid_string(&self, sid: &Sid) -> String {
        match sid {
            Sid::SelfSid => SELF_SID.to_owned(),
            Sid::Tenant(rid) => format!("{}-{rid}", self.domain_sid),
            Sid::Builtin(i) => format!(
                "S-1-5-21-3001002003-1004005006-2007008009-{}",
                BUILTINS[*i as usize].0
            ),
            Sid::Raw(s) => s.to_string(),
        }
    }

    /// Parses a SID string into its compact form.
    pub fn parse_sid(&self, s: &str) -> Sid {
        if s == SELF_SID {
            return Sid::SelfSid;
        }
        if let Some(rest) = s.strip_prefix(&*self.domain_sid)
            && let Some(rid) = rest.strip_prefix('-')
            && let Ok(rid) = rid.parse::<u32>()
        {
            return Sid::Tenant(rid);
        }
        for (i, _) in BUILTINS.iter().enumerate() {
            if self.sid_string(&Sid::Builtin(i as u8)) == s {
                return Sid::Builtin(i as u8);
            }
        }
        Sid::Raw(s.into())
    }

    /// The live object holding `sid`, if any.
    pub fn object_by_sid(&self, sid: &Sid) -> Option<ObjId> {
        match sid {
            Sid::Tenant(rid) => self.by_rid.get(rid).copied(),
            _ => None,
        }
    }

    /// How a principal shows as `User`/`Trustee`: UPN or name; raw SID string for orphans.
    pub fn principal_display(&self, sid: &Sid) -> String {
        match sid {
            Sid::SelfSid => SELF_NAME.to_owned(),
            Sid::Builtin(i) => format!("{FOREST}\\{}", BUILTINS[*i as usize].1),
            Sid::Tenant(_) => match self.object_by_sid(sid).and_then(|o| self.get(o)) {
                Some(o) => o.trustee_display().to_owned(),
                None => self.sid_string(sid),
            },
            Sid::Raw(s) => s.to_string(),
        }
    }

    /// `DistinguishedName` of an object.
    pub fn distinguished_name(&self, o: &Object) -> String {
        format!(
            "CN={},OU={},OU=Microsoft Exchange Hosted Organizations,DC={FOREST},DC=PROD,DC=OUTLOOK,DC=COM",
            o.name, self.initial_domain
        )
    }

    /// What finds an object: its names and addresses (lower-cased), its three GUIDs, its RID.
    fn lookup_keys(o: &Object) -> (Vec<Box<str>>, [Uuid; 3], u32) {
        let mut keys: Vec<&str> = vec![&o.name, &o.alias];
        if let Some(u) = &o.upn {
            keys.push(u);
        }
        if let Some(p) = &o.primary_smtp {
            keys.push(p);
        }
        keys.extend(o.secondary_smtp.iter().map(|s| &**s));
        let keys = keys.into_iter().map(|k| k.to_lowercase().into()).collect();
        let guids = [o.guid, o.exchange_object_id, o.external_directory_object_id];
        (keys, guids, o.rid)
    }

    fn index(&mut self, id: ObjId) {
        let (keys, guids, rid) = Self::lookup_keys(&self.objects[id as usize]);
        for k in keys {
            hits_insert(&mut self.keys, k, id);
        }
        for g in guids {
            hits_insert(&mut self.guids, g, id);
        }
        self.by_rid.insert(rid, id);
    }

    fn unindex(&mut self, id: ObjId) {
        let (keys, guids, rid) = Self::lookup_keys(&self.objects[id as usize]);
        for k in keys {
            hits_remove(&mut self.keys, k, id);
        }
        for g in guids {
            hits_remove(&mut self.guids, g, id);
        }
        self.by_rid.remove(&rid);
    }

    /// Resolves an identity (name, alias, UPN, any SMTP address, with or without an `smtp:`
    /// prefix, Guid, ExchangeObjectId, ExternalDirectoryObjectId, or a SID string),
    /// case-insensitively, among the objects `accept` admits.
    pub fn resolve(&self, identity: &str, accept: impl Fn(&Object) -> bool) -> Resolved {
        let identity = identity.trim();
        let mut hits: Vec<ObjId> = Vec::new();
        let mut push = |h: &Hits| match h {
            Hits::One(id) => hits.push(*id),
            Hits::Many(v) => hits.extend_from_slice(v),
        };
        let bare = identity
            .strip_prefix("smtp:")
            .or_else(|| identity.strip_prefix("SMTP:"))
            .unwrap_or(identity);
        if let Some(h) = self.keys.get(bare.to_lowercase().as_str()) {
            push(h);
        }
        if let Ok(g) = Uuid::parse_str(identity)
            && let Some(h) = self.guids.get(&g)
        {
            push(h);
        }
        if identity.starts_with("S-1-")
            && let Some(id) = self.object_by_sid(&self.parse_sid(identity))
        {
            hits.push(id);
        }
        hits.sort_unstable();
        hits.dedup();
        hits.retain(|id| self.get(*id).is_some_and(&accept));
        match hits.len() {
            0 => Resolved::NotFound,
            1 => Resolved::Found(hits[0]),
            _ => Resolved::Ambiguous(hits),
        }
    }

    fn live_key_matches(&self, key: &str, pred: impl Fn(&Object) -> bool) -> bool {
        match self.keys.get(key.to_lowercase().as_str()) {
            Some(Hits::One(id)) => self.get(*id).is_some_and(&pred),
            Some(Hits::Many(v)) => v.iter().any(|id| self.get(*id).is_some_and(&pred)),
            None => false,
        }
    }

    fn smtp_taken(&self, addr: &str) -> bool {
        matches!(self.keys.get(addr.to_lowercase().as_str()), Some(h) if match h {
            Hits::One(id) => self.smtp_of(*id, addr),
            Hits::Many(v) => v.iter().any(|id| self.smtp_of(*id, addr)),
        })
    }

    fn smtp_of(&self, id: ObjId, addr: &str) -> bool {
        self.get(id).is_some_and(|o| {
            o.primary_smtp
                .as_deref()
                .is_some_and(|p| p.eq_ignore_ascii_case(addr))
                || o.secondary_smtp
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(addr))
        })
    }

    /// Creates an object; derives unset fields from the name and `domain`.
    pub fn create(
        &mut self,
        new: &NewObject,
        domain: &str,
        ids: &mut dyn IdSource,
    ) -> Result<ObjId, CreateError> {
        let kind = new.kind.unwrap_or(Kind::UserMailbox);
        let edoid = match new.object_id {
            Some(oid) if self.issued.contains(&oid) => {
                return Err(CreateError::ObjectIdTaken(oid));
            }
            Some(oid) => oid,
            None => self.fresh_uuid(ids),
        };
        let base = new.name.trim();
        if base.is_empty() {
            return Err(CreateError::EmptyName);
        }
        let name: String = if new.name_is_object_id {
            edoid.to_string()
        } else {
            base.to_owned()
        };
        let alias = new
            .alias
            .clone()
            .unwrap_or_else(|| base.split_whitespace().collect::<String>().to_lowercase());
        let display_name = new.display_name.clone().unwrap_or_else(|| {
            let mut c = base.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        });
        let domain = domain.to_ascii_lowercase();
        let has_upn = matches!(
            kind,
            Kind::UserMailbox | Kind::SharedMailbox | Kind::RoomMailbox | Kind::User
        );
        let upn = has_upn.then(|| {
            new.upn
                .clone()
                .unwrap_or_else(|| format!("{alias}@{domain}"))
        });
        let primary_smtp = kind.is_recipient().then(|| {
            new.primary_smtp
                .clone()
                .or_else(|| upn.clone())
                .unwrap_or_else(|| format!("{alias}@{domain}"))
        });
        let mut secondary: Vec<Box<str>> = Vec::new();
        if kind.is_recipient() {
            let mut onms = format!("{alias}@{}", self.initial_domain);
            let mut n = 1;
            while self.smtp_taken(&onms) {
                n += 1;
                onms = format!("{alias}{n}@{}", self.initial_domain);
            }
            if primary_smtp
                .as_deref()
                .is_some_and(|p| !p.eq_ignore_ascii_case(&onms))
            {
                secondary.push(onms.into());
            }
            for e in &new.email_addresses {
                let e = e
                    .strip_prefix("smtp:")
                    .or_else(|| e.strip_prefix("SMTP:"))
                    .unwrap_or(e);
                if !secondary.iter().any(|s| s.eq_ignore_ascii_case(e))
                    && !primary_smtp
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(e))
                {
                    secondary.push(e.into());
                }
            }
        }
        // Uniqueness: name, UPN and SMTP addresses are unique; aliases need not be.
        let unique: Vec<(&'static str, &str)> = std::iter::once(("name", name.as_str()))
            .chain(upn.as_deref().map(|u| ("UPN", u)))
            .chain(primary_smtp.as_deref().map(|p| ("SMTP address", p)))
            .chain(secondary.iter().map(|s| ("SMTP address", &**s)))
            .collect();
        for (field, value) in unique {
            let taken = match field {
                "name" => self.live_key_matches(value, |o| o.name.eq_ignore_ascii_case(value)),
                "UPN" => self.live_key_matches(value, |o| {
                    o.upn
                        .as_deref()
                        .is_some_and(|u| u.eq_ignore_ascii_case(value))
                }),
                _ => self.smtp_taken(value),
            };
            if taken {
                return Err(CreateError::AlreadyExists {
                    field,
                    value: value.to_owned(),
                });
            }
        }
        if new.object_id.is_some() {
            self.reserved.remove(&edoid);
            self.issued.insert(edoid);
        }
        let rid = self.next_rid;
        self.next_rid += 1 + ids.next_u32() % 7;
        let mut perms = None;
        if kind.is_mailbox() {
            let mut p = Perms::default();
            p.full_access.push(AclRow {
                principal: Sid::SelfSid,
                rights: FULL_ACCESS | READ_PERMISSION,
                deny: false,
                inheritance: INHERIT_ALL,
                inherited: false,
                automapping: false,
            });
            if new.self_external_account_row {
                p.full_access.push(AclRow {
                    principal: Sid::SelfSid,
                    rights: FULL_ACCESS | EXTERNAL_ACCOUNT | READ_PERMISSION,
                    deny: false,
                    inheritance: INHERIT_NONE,
                    inherited: false,
                    automapping: false,
                });
            }
            if new.inherited_admin_rows {
                for (i, deny) in [(0u8, true), (1, true), (2, false)] {
                    p.full_access.push(AclRow {
                        principal: Sid::Builtin(i),
                        rights: FULL_ACCESS,
                        deny,
                        inheritance: INHERIT_ALL,
                        inherited: true,
                        automapping: false,
                    });
                }
            }
            p.send_as.push(SendAsRow {
                trustee: Sid::SelfSid,
                inherited: false,
            });
            perms = Some(Box::new(p));
        } else if kind == Kind::MailEnabledSecurityGroup {
            perms = Some(Box::default());
        }
        let object = Object {
            kind,
            deleted: false,
            hidden_from_address_lists: new.hidden_from_address_lists,
            message_copy_for_sent_as: new.message_copy_for_sent_as,
            message_copy_for_send_on_behalf: new.message_copy_for_send_on_behalf,
            rid,
            name: name.into(),
            alias: alias.into(),
            display_name: display_name.into(),
            upn: upn.map(Into::into),
            primary_smtp: primary_smtp.map(Into::into),
            secondary_smtp: secondary,
            guid: self.fresh_uuid(ids),
            exchange_object_id: self.fresh_uuid(ids),
            external_directory_object_id: edoid,
            exchange_guid: if kind.is_mailbox() {
                self.fresh_uuid(ids)
            } else {
                Uuid::nil()
            },
            perms,
            members: Vec::new(),
        };
        let id = self.objects.len() as ObjId;
        self.objects.push(object);
        self.index(id);
        Ok(id)
    }

    /// Deletes a principal: it disappears from every lookup, its ACL rows elsewhere stay as
    /// orphans (shown as the raw SID), and it leaves every Send on Behalf list and every group's
    /// members (linked attributes in AD and Entra).
    pub fn delete(&mut self, id: ObjId) -> bool {
        if self.get(id).is_none() {
            return false;
        }
        self.unindex(id);
        self.objects[id as usize].deleted = true;
        for o in self.objects.iter_mut() {
            if let Some(p) = o.perms.as_deref_mut() {
                p.send_on_behalf.retain(|d| *d != id);
            }
            if !o.members.is_empty() {
                o.members.retain(|m| *m != id);
            }
        }
        true
    }

    /// Makes `member` a direct member of `group`. `Ok(false)`: it already was one.
    pub fn add_member(&mut self, group: ObjId, member: ObjId) -> Result<bool, MembershipError> {
        let g = self.get(group).ok_or(MembershipError::Gone(group))?;
        if !g.kind.is_group() {
            return Err(MembershipError::NotAGroup(g.name.to_string()));
        }
        if group == member {
            return Err(MembershipError::SelfMember(g.name.to_string()));
        }
        if self.get(member).is_none() {
            return Err(MembershipError::Gone(member));
        }
        let members = &mut self.objects[group as usize].members;
        if members.contains(&member) {
            return Ok(false);
        }
        members.push(member);
        Ok(true)
    }

    /// Removes `member` from `group`'s direct members; false if it was not one.
    pub fn remove_member(&mut self, group: ObjId, member: ObjId) -> bool {
        let Some(g) = self.get_mut(group) else {
            return false;
        };
        let before = g.members.len();
        g.members.retain(|m| *m != member);
        g.members.len() != before
    }

    /// The live direct members of `group`, in the order they were added (empty for a
    /// non-group or a deleted object).
    pub fn members(&self, group: ObjId) -> impl Iterator<Item = ObjId> + '_ {
        self.get(group)
            .map(|g| g.members.as_slice())
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|m| self.get(*m).is_some())
    }

    /// Permissions on `id`, as seen by a read at `as_of` (None: current).
    pub fn perms_at(&self, id: ObjId, as_of: Option<OffsetDateTime>) -> Option<&Perms> {
        let o = self.get(id)?;
        if let Some(cut) = as_of {
            // The oldest change to this object after the cut holds the state before it.
            if let Some(r) = self.recent.iter().find(|r| r.obj == id && r.at > cut) {
                return Some(&r.before);
            }
        }
        Some(o.perms())
    }

    /// Mutable permissions of `id`; records the prior state for lagged reads when `lag` is set.
    pub fn perms_mut(
        &mut self,
        id: ObjId,
        now: OffsetDateTime,
        lag: Option<time::Duration>,
    ) -> Option<&mut Perms> {
        match lag {
            Some(lag) if lag > time::Duration::ZERO => {
                while self.recent.front().is_some_and(|r| r.at < now - lag) {
                    self.recent.pop_front();
                }
                let before = self.get(id)?.perms().clone();
                self.recent.push_back(Recent {
                    at: now,
                    obj: id,
                    before,
                });
            }
            _ => self.recent.clear(),
        }
        let o = self.get_mut(id)?;
        Some(o.perms.get_or_insert_with(Box::default))
    }

    /// Drops the history kept for lagged reads if the last recorded change is older than `lag`.
    pub fn has_recent(&self) -> bool {
        !self.recent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn dir() -> (Directory, rand_chacha::ChaCha8Rng) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        (Directory::new("contoso.onmicrosoft.com", &mut rng), rng)
    }

    #[test]
    fn resolves_by_every_identifier_case_insensitively() {
        let (mut d, mut rng) = dir();
        let id = d
            .create(
                &NewObject {
                    name: "alice".into(),
                    email_addresses: vec!["a.anders@contoso.com".into()],
                    ..Default::default()
                },
                "contoso.com",
                &mut rng,
            )
            .unwrap();
        let o = d.get(id).unwrap().clone();
        for key in [
            "ALICE",
            "alice@contoso.com",
            "alice@CONTOSO.onmicrosoft.com",
            "smtp:a.anders@contoso.com",
            &o.guid.to_string().to_uppercase(),
            &o.exchange_object_id.to_string(),
            &o.external_directory_object_id.to_string(),
            &d.sid_string(&Sid::Tenant(o.rid)),
        ] {
            assert_eq!(d.resolve(key, |_| true), Resolved::Found(id), "{key}");
        }
        assert_eq!(d.resolve("nobody", |_| true), Resolved::NotFound);
    }

    #[test]
    fn object_ids_are_never_issued_twice() {
        let (mut d, mut rng) = dir();
        let mk = |name: &str, oid: Option<Uuid>| NewObject {
            name: name.into(),
            object_id: oid,
            ..Default::default()
        };
        let a = d.create(&mk("a", None), "contoso.com", &mut rng).unwrap();
        let taken = d.get(a).unwrap().guid;
        assert_eq!(
            d.create(&mk("b", Some(taken)), "contoso.com", &mut rng),
            Err(CreateError::ObjectIdTaken(taken))
        );
        // A deleted object's ids stay retired; a reserved id is never drawn for another object.
        assert!(d.delete(a));
        assert!(matches!(
            d.create(&mk("c", Some(taken)), "contoso.com", &mut rng),
            Err(CreateError::ObjectIdTaken(_))
        ));
        let mut replay = rng.clone();
        let next = uuid_from(&mut replay);
        d.reserve_object_ids([next]);
        let e = d.create(&mk("e", None), "contoso.com", &mut rng).unwrap();
        assert_ne!(d.get(e).unwrap().external_directory_object_id, next);
        let f = d
            .create(&mk("f", Some(next)), "contoso.com", &mut rng)
            .unwrap();
        assert_eq!(d.resolve(&next.to_string(), |_| true), Resolved::Found(f));
    }

    #[test]
    fn shared_alias_is_ambiguous_and_delete_orphans() {
        let (mut d, mut rng) = dir();
        let mk = |name: &str, alias: &str, kind: Kind| NewObject {
            name: name.into(),
            alias: Some(alias.into()),
            kind: Some(kind),
            primary_smtp: Some(format!("{}@contoso.com", name.replace(' ', ""))),
            ..Default::default()
        };
        let a = d
            .create(
                &mk("sales", "sales", Kind::SharedMailbox),
                "contoso.com",
                &mut rng,
            )
            .unwrap();
        let b = d
            .create(
                &mk("Sales Team", "sales", Kind::MailEnabledSecurityGroup),
                "contoso.com",
                &mut rng,
            )
            .unwrap();
        assert_eq!(
            d.resolve("SALES", |_| true),
            Resolved::Ambiguous(vec![a, b])
        );
        assert_eq!(
            d.resolve("sales", |o| o.kind.is_mailbox()),
            Resolved::Found(a)
        );
        assert!(matches!(
            d.create(&mk("sales", "x", Kind::User), "contoso.com", &mut rng),
            Err(CreateError::AlreadyExists { field: "name", .. })
        ));
        let rid = d.get(b).unwrap().rid;
        assert!(d.delete(b));
        assert_eq!(d.resolve("sales", |_| true), Resolved::Found(a));
        assert_eq!(
            d.principal_display(&Sid::Tenant(rid)),
            format!("{}-{rid}", d.domain_sid)
        );
    }
}
