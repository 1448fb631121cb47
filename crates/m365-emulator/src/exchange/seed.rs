//! Directory seeds: the JSON shape scenarios use to describe a tenant's Exchange directory, the
//! demo directory (`docs/DOMAIN.md#demo-world`), and a generator of large random directories for
//! benchmarks and property tests.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::directory::{
    AclRow, CreateError, Directory, INHERIT_ALL, IdSource, Kind, MembershipError, NewObject, ObjId,
    Resolved, SendAsRow, Sid, parse_right,
};

/// A tenant's Exchange directory as scenario JSON describes it.
///
/// ```json
/// {
///   "domain": "contoso.onmicrosoft.com",
///   "objects": [
///     {"type": "user_mailbox", "name": "alice", "display_name": "Alice Anders"},
///     {"type": "shared_mailbox", "name": "sales"},
///     {"type": "mail_enabled_security_group", "name": "Sales Team", "alias": "salesteam",
///      "members": ["alice", "carol@contoso.onmicrosoft.com"]},
///     {"type": "user", "name": "dave"}
///   ],
///   "grants": [
///     {"mailbox": "sales", "trustee": "alice", "right": "FullAccess", "automapping": true},
///     {"mailbox": "support", "trustee": "bob", "right": "SendAs"},
///     {"mailbox": "sales", "trustee": "carol", "right": "SendOnBehalf"}
///   ],
///   "deleted": ["dave"]
/// }
/// ```
///
/// A group's `members` (its direct members: users, mailboxes, other groups) name any identity
/// of objects of the same seed; they are resolved once every object exists, before the grants.
/// `deleted` objects leave every group they were in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DirectorySeed {
    /// Domain of derived UPNs and SMTP addresses; defaults to the tenant's initial domain.
    pub domain: Option<String>,
    pub objects: Vec<NewObject>,
    pub grants: Vec<Grant>,
    /// Names of principals deleted after the grants are applied (their ACL rows become orphans).
    pub deleted: Vec<String>,
}

/// A permission granted directly (set-up, no apply-log entry).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Any identity of the mailbox (or recipient, for Send As).
    pub mailbox: String,
    /// Any identity of the trustee, or a raw SID string.
    pub trustee: String,
    /// `FullAccess` (or any mailbox right, comma-separated), `SendAs` or `SendOnBehalf`.
    pub right: String,
    /// Full Access only; default true (false for groups, where it never applies).
    #[serde(default)]
    pub automapping: Option<bool>,
    #[serde(default)]
    pub deny: bool,
    #[serde(default)]
    pub inherited: bool,
}

/// Why a seed or a direct grant could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Create(#[from] CreateError),
    #[error("no object matches '{0}'")]
    NotFound(String),
    #[error("'{0}' matches several objects")]
    Ambiguous(String),
    #[error("'{0}' is not a valid right (FullAccess, SendAs, SendOnBehalf or a mailbox right)")]
    BadRight(String),
    #[error("'{0}' cannot hold this permission")]
    WrongKind(String),
    #[error("invalid directory seed: {0}")]
    Invalid(String),
    #[error("member '{member}' of '{group}': no object matches it")]
    UnknownMember { group: String, member: String },
    #[error("member '{member}' of '{group}' matches several objects")]
    AmbiguousMember { group: String, member: String },
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

fn find(
    dir: &Directory,
    id: &str,
    accept: impl Fn(&super::directory::Object) -> bool,
) -> Result<ObjId, SeedError> {
    match dir.resolve(id, accept) {
        Resolved::Found(o) => Ok(o),
        Resolved::NotFound => Err(SeedError::NotFound(id.to_owned())),
        Resolved::Ambiguous(_) => Err(SeedError::Ambiguous(id.to_owned())),
    }
}

impl Directory {
    /// Builds a tenant's directory from a seed. `initial_domain` is the tenant's
    /// `*.onmicrosoft.com` domain; `seed` fixes every generated id.
    pub fn from_seed(
        seed: &DirectorySeed,
        initial_domain: &str,
        rng_seed: u64,
    ) -> Result<Directory, SeedError> {
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed);
        let mut dir = Directory::new(initial_domain, &mut rng);
        dir.reserve_object_ids(seed.objects.iter().filter_map(|o| o.object_id));
        let domain = seed.domain.as_deref().unwrap_or(initial_domain).to_owned();
        let mut created = Vec::with_capacity(seed.objects.len());
        for o in &seed.objects {
            created.push(dir.create(o, &domain, &mut rng)?);
        }
        for (o, &group) in seed.objects.iter().zip(&created) {
            dir.add_members(group, &o.members)?;
        }
        for g in &seed.grants {
            dir.grant(g)?;
        }
        for d in &seed.deleted {
            let id = find(&dir, d, |_| true)?;
            dir.delete(id);
        }
        Ok(dir)
    }

    /// Adds the objects `members` name (any identity) to `group`'s direct members; members it
    /// already has are kept once.
    pub fn add_members(&mut self, group: ObjId, members: &[String]) -> Result<(), SeedError> {
        if members.is_empty() {
            return Ok(());
        }
        let group_name = self
            .get(group)
            .map(|g| g.name.to_string())
            .unwrap_or_default();
        for m in members {
            let member = match self.resolve(m, |_| true) {
                Resolved::Found(id) => id,
                Resolved::NotFound => {
                    return Err(SeedError::UnknownMember {
                        group: group_name,
                        member: m.clone(),
                    });
                }
                Resolved::Ambiguous(_) => {
                    return Err(SeedError::AmbiguousMember {
                        group: group_name,
                        member: m.clone(),
                    });
                }
            };
            self.add_member(group, member)?;
        }
        Ok(())
    }

    /// Applies a grant directly (set-up: no apply-log entry, no lag). Idempotent.
    pub fn grant(&mut self, g: &Grant) -> Result<(), SeedError> {
        let right = g.right.trim();
        if right.eq_ignore_ascii_case("SendOnBehalf") {
            let mb = find(self, &g.mailbox, |o| o.kind.is_mailbox())?;
            let delegate = find(self, &g.trustee, |o| o.kind.is_recipient())?;
            let p = self
                .perms_mut(mb, time::OffsetDateTime::UNIX_EPOCH, None)
                .ok_or_else(|| SeedError::NotFound(g.mailbox.clone()))?;
            if !p.send_on_behalf.contains(&delegate) {
                p.send_on_behalf.push(delegate);
            }
            return Ok(());
        }
        let trustee = if g.trustee.starts_with("S-1-") {
            let sid = self.parse_sid(&g.trustee);
            self.object_by_sid(&sid).map(|_| sid.clone()).unwrap_or(sid)
        } else {
            let t = find(self, &g.trustee, |_| true)?;
            Sid::Tenant(self.get(t).map(|o| o.rid).unwrap_or_default())
        };
        let trustee_is_group = self
            .object_by_sid(&trustee)
            .and_then(|t| self.get(t))
            .is_some_and(|o| o.kind.is_group());
        if right.eq_ignore_ascii_case("SendAs") {
            let mb = find(self, &g.mailbox, |o| o.kind.is_recipient())?;
            let p = self
                .perms_mut(mb, time::OffsetDateTime::UNIX_EPOCH, None)
                .ok_or_else(|| SeedError::NotFound(g.mailbox.clone()))?;
            if !p.send_as.iter().any(|r| r.trustee == trustee) {
                p.send_as.push(SendAsRow {
                    trustee,
                    inherited: g.inherited,
                });
            }
            return Ok(());
        }
        let mut rights = 0u8;
        for r in right.split(',') {
            rights |= parse_right(r).ok_or_else(|| SeedError::BadRight(g.right.clone()))?;
        }
        let mb = find(self, &g.mailbox, |o| o.kind.is_mailbox())?;
        let automapping = !trustee_is_group && g.automapping.unwrap_or(true);
        let p = self
            .perms_mut(mb, time::OffsetDateTime::UNIX_EPOCH, None)
            .ok_or_else(|| SeedError::NotFound(g.mailbox.clone()))?;
        match p.full_access.iter_mut().find(|r| {
            r.principal == trustee
                && r.deny == g.deny
                && r.inherited == g.inherited
                && r.inheritance == INHERIT_ALL
        }) {
            Some(row) => row.rights |= rights,
            None => p.full_access.push(AclRow {
                principal: trustee,
                rights,
                deny: g.deny,
                inheritance: INHERIT_ALL,
                inherited: g.inherited,
                automapping: automapping && rights & super::directory::FULL_ACCESS != 0,
            }),
        }
        Ok(())
    }
}

// (drift) Removing a right directly, the mirror of `Directory::grant`: a change made outside
// exogate (an admin in another tool), for tests of drift findings.
impl Directory {
    /// Removes a grant directly (set-up: no apply-log entry, no lag). Idempotent: a right that
    /// is not there is no error. Full Access loses the given rights on the trustee's explicit,
    /// non-inherited allow row; Send As and Send on Behalf lose the trustee.
    pub fn revoke(&mut self, g: &Grant) -> Result<(), SeedError> {
        let right = g.right.trim();
        if right.eq_ignore_ascii_case("SendOnBehalf") {
            let mb = find(self, &g.mailbox, |o| o.kind.is_mailbox())?;
            let delegate = find(self, &g.trustee, |o| o.kind.is_recipient())?;
            let p = self
                .perms_mut(mb, time::OffsetDateTime::UNIX_EPOCH, None)
                .ok_or_else(|| SeedError::NotFound(g.mailbox.clone()))?;
            p.send_on_behalf.retain(|d| *d != delegate);
            return Ok(());
        }
        let trustee = if g.trustee.starts_with("S-1-") {
            self.parse_sid(&g.trustee)
        } else {
            let t = find(self, &g.trustee, |_| true)?;
            Sid::Tenant(self.get(t).map(|o| o.rid).unwrap_or_default())
        };
        if right.eq_ignore_ascii_case("SendAs") {
            let mb = find(self, &g.mailbox, |o| o.kind.is_recipient())?;
            let p = self
                .perms_mut(mb, time::OffsetDateTime::UNIX_EPOCH, None)
                .ok_or_else(|| SeedError::NotFound(g.mailbox.clone()))?;
            p.send_as.retain(|r| r.trustee != trustee || r.inherited);
            return Ok(());
        }
        let mut rights = 0u8;
        for r in right.split(',') {
            rights |= parse_right(r).ok_or_else(|| SeedError::BadRight(g.right.clone()))?;
        }
        let mb = find(self, &g.mailbox, |o| o.kind.is_mailbox())?;
        let p = self
            .perms_mut(mb, time::OffsetDateTime::UNIX_EPOCH, None)
            .ok_or_else(|| SeedError::NotFound(g.mailbox.clone()))?;
        for row in p
            .full_access
            .iter_mut()
            .filter(|r| r.principal == trustee && !r.deny && !r.inherited)
        {
            row.rights &= !rights;
        }
        p.full_access.retain(|r| r.rights != 0);
        Ok(())
    }
}

fn obj(kind: Kind, name: &str, display: &str) -> NewObject {
    NewObject {
        kind: Some(kind),
        name: name.to_owned(),
        display_name: Some(display.to_owned()),
        ..NewObject::default()
    }
}

fn grant(mailbox: &str, trustee: &str, right: &str, automapping: Option<bool>) -> Grant {
    Grant {
        mailbox: mailbox.to_owned(),
        trustee: trustee.to_owned(),
        right: right.to_owned(),
        automapping,
        deny: false,
        inherited: false,
    }
}

/// The demo directory (`docs/DOMAIN.md#demo-world`) for a live tenant whose domain is `domain`:
/// user mailboxes alice, bob, carol (carol's Exchange `Name` is her object id, so Exchange
/// reports her as a Send on Behalf delegate by GUID), shared mailboxes sales and support, a
/// mail-enabled security group "Sales Team" whose only member is carol, a non-mail-enabled
/// group "All Staff" whose members are alice, bob and carol (bob is in no mail-enabled group),
/// and:
///
/// * alice: Full Access on sales (automapping on); Sales Team: Full Access on support;
/// * bob: Send As on support; alice: Send As on sales;
/// * carol: Send on Behalf on sales;
/// * a deleted user (dave) whose Full Access on support remains as an orphan SID row.
pub fn demo_directory_seed(domain: &str) -> DirectorySeed {
    let mut carol = obj(Kind::UserMailbox, "carol", "Carol Chen");
    carol.name_is_object_id = true;
    carol.alias = Some("carol".into());
    let mut sales = obj(Kind::SharedMailbox, "sales", "Sales");
    sales.self_external_account_row = true;
    sales.message_copy_for_sent_as = true;
    let mut team = obj(Kind::MailEnabledSecurityGroup, "Sales Team", "Sales Team");
    team.alias = Some("salesteam".into());
    team.members = vec!["carol".into()];
    let mut staff = obj(Kind::SecurityGroup, "All Staff", "All Staff");
    staff.alias = Some("allstaff".into());
    staff.members = vec!["alice".into(), "bob".into(), "carol".into()];
    DirectorySeed {
        domain: Some(domain.to_owned()),
        objects: vec![
            obj(Kind::UserMailbox, "alice", "Alice Anders"),
            obj(Kind::UserMailbox, "bob", "Bob Berg"),
            carol,
            sales,
            obj(Kind::SharedMailbox, "support", "Support"),
            team,
            staff,
            obj(Kind::UserMailbox, "dave", "Dave Dunn"),
        ],
        grants: vec![
            grant("sales", "alice", "FullAccess", Some(true)),
            grant("support", "salesteam", "FullAccess", Some(false)),
            grant("support", "dave", "FullAccess", Some(false)),
            grant("support", "bob", "SendAs", None),
            grant("sales", "alice", "SendAs", None),
            grant("sales", "carol", "SendOnBehalf", None),
        ],
        deleted: vec!["dave".into()],
    }
}

/// The ChaCha stream [`generated_directory_seed`] draws object ids from ("objid").
const OBJECT_ID_STREAM: u64 = 0x006f_626a_6964;
/// The ChaCha stream [`generated_directory_seed`] draws group members from ("member"), so adding
/// members left every object, name, kind, grant and deletion of a seed as it was.
const MEMBER_STREAM: u64 = 0x6d65_6d62_6572;

/// A random directory with `mailboxes` mailboxes (about 80% user, 18% shared, 2% room; a third
/// named by object id), `mailboxes / 50 + 2` mail-enabled groups and a few plain security groups,
/// random Full Access / Send As / Send on Behalf grants (shared mailboxes get most), about 1%
/// of users deleted so their grants are orphans (and their memberships gone), and group
/// members: each mail-enabled group holds 0–8 user mailboxes and, about one group in ten, one
/// lower-numbered mail-enabled group (nesting never makes a cycle). Deterministic for a given
/// `seed`; members come from a stream of their own, so everything else is what the generator
/// made before groups had members.
pub fn generated_directory_seed(domain: &str, mailboxes: usize, seed: u64) -> DirectorySeed {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Object ids come from a stream of their own. [`Directory::from_seed`] draws the other ids
    // from stream 0 of a generator seeded the same way (the control API passes the same seed),
    // so ids drawn from this `rng` would reappear there as other objects' Guids.
    let mut id_rng = ChaCha8Rng::seed_from_u64(seed);
    id_rng.set_stream(OBJECT_ID_STREAM);
    let mut object_ids = std::collections::HashSet::new();
    let mut objects = Vec::with_capacity(mailboxes + mailboxes / 40 + 4);
    let mut users = Vec::new();
    let mut shared = Vec::new();
    let mut all_mb = Vec::new();
    for i in 0..mailboxes {
        let roll: u32 = rng.random_range(0..100);
        let (kind, name) = if roll < 80 {
            (Kind::UserMailbox, format!("user{i:06}"))
        } else if roll < 98 {
            (Kind::SharedMailbox, format!("shared{i:06}"))
        } else {
            (Kind::RoomMailbox, format!("room{i:06}"))
        };
        let mut o = obj(kind, &name, &format!("Mailbox {i}"));
        o.name_is_object_id = rng.random_bool(0.33);
        o.alias = Some(name.clone());
        // The shape stream still advances by one id, so a seed keeps the world it always made.
        let _ = super::directory::uuid_from(&mut rng as &mut dyn IdSource);
        let object_id = loop {
            let g = super::directory::uuid_from(&mut id_rng as &mut dyn IdSource);
            if object_ids.insert(g) {
                break g;
            }
        };
        o.object_id = Some(object_id);
        match kind {
            Kind::UserMailbox => users.push(name.clone()),
            Kind::SharedMailbox => shared.push(name.clone()),
            _ => {}
        }
        all_mb.push(name);
        objects.push(o);
    }
    let groups: Vec<String> = (0..mailboxes / 50 + 2)
        .map(|i| format!("group{i:05}"))
        .collect();
    for g in &groups {
        let mut o = obj(Kind::MailEnabledSecurityGroup, g, g);
        o.alias = Some(g.clone());
        objects.push(o);
    }
    for i in 0..3 {
        let mut o = obj(
            Kind::SecurityGroup,
            &format!("secgroup{i}"),
            "Security group",
        );
        o.alias = Some(format!("secgroup{i}"));
        objects.push(o);
    }
    let mut grants = Vec::new();
    let pick = |rng: &mut ChaCha8Rng, v: &Vec<String>| -> Option<String> {
        (!v.is_empty()).then(|| v[rng.random_range(0..v.len())].clone())
    };
    for mb in &all_mb {
        let is_shared = mb.starts_with("shared");
        let n_fa = if is_shared {
            rng.random_range(1..=5)
        } else {
            usize::from(rng.random_bool(0.1))
        };
        for _ in 0..n_fa {
            let trustee = if rng.random_bool(0.15) {
                pick(&mut rng, &groups)
            } else {
                pick(&mut rng, &users)
            };
            if let Some(t) = trustee.filter(|t| t != mb) {
                grants.push(grant(mb, &t, "FullAccess", Some(rng.random_bool(0.7))));
            }
        }
        let n_sa = if is_shared {
            rng.random_range(0..=2)
        } else {
            usize::from(rng.random_bool(0.05))
        };
        for _ in 0..n_sa {
            if let Some(t) = pick(&mut rng, &users).filter(|t| t != mb) {
                grants.push(grant(mb, &t, "SendAs", None));
            }
        }
        let n_sob = if is_shared {
            rng.random_range(0..=2)
        } else {
            usize::from(rng.random_bool(0.03))
        };
        for _ in 0..n_sob {
            if let Some(t) = pick(&mut rng, &users).filter(|t| t != mb) {
                grants.push(grant(mb, &t, "SendOnBehalf", None));
            }
        }
    }
    let mut deleted = Vec::new();
    for u in &users {
        if rng.random_bool(0.01) {
            deleted.push(u.clone());
        }
    }
    let mut member_rng = ChaCha8Rng::seed_from_u64(seed);
    member_rng.set_stream(MEMBER_STREAM);
    let first_group = mailboxes;
    for (i, g) in groups.iter().enumerate() {
        let mut members: Vec<String> = Vec::new();
        let n = member_rng.random_range(0..=8usize).min(users.len());
        while members.len() < n {
            let u = &users[member_rng.random_range(0..users.len())];
            if !members.contains(u) {
                members.push(u.clone());
            }
        }
        if i > 0 && member_rng.random_bool(0.1) {
            members.push(groups[member_rng.random_range(0..i)].clone());
        }
        debug_assert_eq!(&objects[first_group + i].name, g);
        objects[first_group + i].members = members;
    }
    DirectorySeed {
        domain: Some(domain.to_owned()),
        objects,
        grants,
        deleted,
    }
}

/// A deterministic per-tenant seed for [`Directory::from_seed`].
pub fn tenant_rng_seed(scenario_seed: u64, tenant: Uuid) -> u64 {
    scenario_seed ^ (tenant.as_u128() as u64) ^ ((tenant.as_u128() >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_builds_with_orphan_and_guid_named_delegate() {
        let d = Directory::from_seed(
            &demo_directory_seed("contoso.onmicrosoft.com"),
            "contoso.onmicrosoft.com",
            1,
        )
        .unwrap();
        assert_eq!(d.mailbox_count(), 5);
        let Resolved::Found(sales) = d.resolve("sales@contoso.onmicrosoft.com", |_| true) else {
            panic!()
        };
        let sob = &d.get(sales).unwrap().perms().send_on_behalf;
        assert_eq!(sob.len(), 1);
        let carol = d.get(sob[0]).unwrap();
        assert_eq!(&*carol.name, carol.external_directory_object_id.to_string());
        let Resolved::Found(support) = d.resolve("support", |_| true) else {
            panic!()
        };
        let rows = &d.get(support).unwrap().perms().full_access;
        assert!(
            rows.iter()
                .any(|r| d.principal_display(&r.principal).starts_with("S-1-5-21-"))
        );
    }

    #[test]
    fn generated_is_deterministic() {
        let a = generated_directory_seed("x.onmicrosoft.com", 300, 5);
        let b = generated_directory_seed("x.onmicrosoft.com", 300, 5);
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        let d = Directory::from_seed(&a, "x.onmicrosoft.com", 5).unwrap();
        assert_eq!(d.mailbox_count(), 300 - a.deleted.len());
    }

    /// A digest of a generated seed (JSON, group members left out) and of the directory built
    /// from it: every live object's ids, RID, address and permission rows.
    fn generated_fingerprint(mailboxes: usize, seed: u64) -> String {
        use sha2::{Digest, Sha256};
        let domain = "fp.onmicrosoft.com";
        let mut s = generated_directory_seed(domain, mailboxes, seed);
        for o in &mut s.objects {
            o.members.clear();
        }
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&s).unwrap());
        let d = Directory::from_seed(&s, domain, seed).unwrap();
        h.update(d.domain_sid.as_bytes());
        for (_, o) in d.live() {
            h.update(
                format!(
                    "{}|{}|{}|{}|{}|{}|{}|{:?}|{:?}|{:?}\n",
                    o.name,
                    o.rid,
                    o.guid,
                    o.exchange_object_id,
                    o.external_directory_object_id,
                    o.exchange_guid,
                    o.primary_smtp.as_deref().unwrap_or(""),
                    o.perms().full_access,
                    o.perms().send_as,
                    o.perms().send_on_behalf,
                )
                .as_bytes(),
            );
        }
        hex::encode(h.finalize())
    }

    /// Group members come from a ChaCha stream of their own: for a given seed the objects,
    /// names, kinds, ids, grants and deletions are exactly what the generator made before
    /// groups had members. The digests were taken from that earlier generator (commit c63b38f).
    #[test]
    fn generated_worlds_are_unchanged_by_members() {
        for (n, s, want) in [
            (
                300usize,
                0u64,
                "c953cac46ea94e0eb5ec86fa85ea5ac249e7545d8a8a5861c2311f59b807ba82",
            ),
            (
                1000,
                5,
                "6d9aadfa21c94736f9897d69b950d81d1340a232bc3ec524a4d2b4940510c050",
            ),
            (
                3000,
                11,
                "7dcda43f98398787993cc51a78873621aa591643521f97b79ec01b5a3ce1f6c7",
            ),
        ] {
            assert_eq!(generated_fingerprint(n, s), want, "generate {n}/{s}");
        }
    }

    #[test]
    fn generated_groups_have_members_nested_lower_into_higher() {
        let domain = "gen.onmicrosoft.com";
        let (mut with_members, mut nested) = (0, 0);
        for seed in 0..4u64 {
            let s = generated_directory_seed(domain, 1000, seed);
            for o in &s.objects {
                if o.kind != Some(Kind::MailEnabledSecurityGroup) {
                    assert!(o.members.is_empty(), "{} has members", o.name);
                    continue;
                }
                let users = o.members.iter().filter(|m| m.starts_with("user")).count();
                assert!(users <= 8, "{}: {users} users", o.name);
                with_members += usize::from(users > 0);
                for m in o.members.iter().filter(|m| m.starts_with("group")) {
                    assert!(m < &o.name, "{m} nested into {}", o.name);
                    nested += 1;
                }
                assert_eq!(
                    o.members.len(),
                    users + o.members.iter().filter(|m| m.starts_with("group")).count()
                );
            }
            let d = Directory::from_seed(&s, domain, seed).unwrap();
            for name in &s.deleted {
                assert_eq!(d.resolve(name, |_| true), Resolved::NotFound);
            }
            for (id, _) in d.live() {
                assert!(d.members(id).all(|m| d.get(m).is_some()));
            }
        }
        assert!(with_members > 50, "{with_members} groups with members");
        assert!(nested > 0, "no nested group");
    }

    #[test]
    fn seed_members_resolve_after_every_object_and_unknown_ones_fail() {
        let domain = "m.onmicrosoft.com";
        let mut seed = demo_directory_seed(domain);
        let d = Directory::from_seed(&seed, domain, 2).unwrap();
        let Resolved::Found(team) = d.resolve("Sales Team", |_| true) else {
            panic!()
        };
        let names: Vec<&str> = d.members(team).map(|m| &*d.get(m).unwrap().alias).collect();
        assert_eq!(names, ["carol"]);
        let Resolved::Found(staff) = d.resolve("allstaff", |_| true) else {
            panic!()
        };
        assert_eq!(d.members(staff).count(), 3);
        // A member created after its group, and an unknown one.
        seed.objects[5].members.push("All Staff".into());
        assert!(Directory::from_seed(&seed, domain, 2).is_ok());
        seed.objects[5].members.push("nobody".into());
        assert_eq!(
            Directory::from_seed(&seed, domain, 2).unwrap_err(),
            SeedError::UnknownMember {
                group: "Sales Team".into(),
                member: "nobody".into()
            }
        );
        seed.objects[5].members.pop();
        seed.objects[0].members.push("bob".into());
        assert!(matches!(
            Directory::from_seed(&seed, domain, 2),
            Err(SeedError::Membership(MembershipError::NotAGroup(_)))
        ));
    }

    /// Every identifier of every generated object resolves to that object alone, and no GUID
    /// is issued twice in a tenant (Guid, ExchangeObjectId, ExternalDirectoryObjectId and
    /// ExchangeGuid are globally unique in Exchange), whatever the seed and size.
    #[test]
    fn generated_ids_are_unique_and_resolve_to_their_object() {
        let domain = "gen.onmicrosoft.com";
        for size in [300, 1000, 3000] {
            for seed in 0..6u64 {
                let s = generated_directory_seed(domain, size, seed);
                let d = Directory::from_seed(&s, domain, seed).unwrap();
                let mut issued = std::collections::HashMap::new();
                for (id, o) in d.live() {
                    let sid = d.sid_string(&Sid::Tenant(o.rid));
                    let mut keys = vec![
                        o.name.to_string(),
                        o.alias.to_string(),
                        o.guid.to_string(),
                        o.exchange_object_id.to_string(),
                        o.external_directory_object_id.to_string(),
                        sid,
                    ];
                    keys.extend(o.upn.as_deref().map(str::to_owned));
                    keys.extend(o.primary_smtp.as_deref().map(str::to_owned));
                    keys.extend(o.secondary_smtp.iter().map(|a| a.to_string()));
                    for k in keys {
                        assert_eq!(
                            d.resolve(&k, |_| true),
                            Resolved::Found(id),
                            "seed {seed}, size {size}: '{k}' of {} does not resolve to it alone",
                            o.name
                        );
                    }
                    let mut guids =
                        vec![o.guid, o.exchange_object_id, o.external_directory_object_id];
                    if o.kind.is_mailbox() {
                        guids.push(o.exchange_guid);
                    }
                    for g in guids {
                        if let Some(other) = issued.insert(g, id) {
                            panic!(
                                "seed {seed}, size {size}: {g} issued to objects {other} and {id}"
                            );
                        }
                    }
                }
            }
        }
    }
}
