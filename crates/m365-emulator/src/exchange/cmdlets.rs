//! The delegation cmdlets of `docs/MICROSOFT.md#cmdlets` as pure functions over a [`Directory`]:
//! reads produce a page of rows from a cursor (so paging never copies a result set), writes
//! mutate the directory and report the applied changes for the apply log.
//!
//! Reads: Get-Mailbox, Get-MailboxPermission, Get-RecipientPermission, Get-Recipient,
//! Get-DistributionGroupMember (a mail-enabled group's direct members, as Get-Recipient rows)
//! and Get-OrganizationConfig. Writes: Set-Mailbox, Add-/Remove-MailboxPermission and
//! Add-/Remove-RecipientPermission.

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::directory::{
    AclRow, Directory, FULL_ACCESS, INHERIT_ALL, INHERITANCE, MAX_ACES, ObjId, Object, Perms,
    RIGHTS, Resolved, SELF_NAME, SendAsRow, Sid, rights_string,
};
use super::errors::CmdletError;
use super::params::{PSpec, PType, PVal, Params, p};

type Row = Map<String, Value>;

const MAILBOX_RIGHTS: &[&str] = &[
    "ChangeOwner",
    "ChangePermission",
    "DeleteItem",
    "ExternalAccount",
    "FullAccess",
    "ReadPermission",
];
const RTD: &[&str] = &[
    "UserMailbox",
    "SharedMailbox",
    "RoomMailbox",
    "EquipmentMailbox",
    "SchedulingMailbox",
    "GroupMailbox",
    "DiscoveryMailbox",
    "TeamMailbox",
    "LinkedMailbox",
    "LinkedRoomMailbox",
    "LegacyMailbox",
    "MailUniversalSecurityGroup",
    "MailUniversalDistributionGroup",
    "MailUser",
    "MailContact",
];

/// The truncation warning (`docs/MICROSOFT.md#paging`).
pub const RESULT_SIZE_WARNING: &str = "There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.";

/// A cmdlet's declared parameters as `Name: type` pairs, in declaration order.
macro_rules! params {
    ($($name:ident: $ty:expr),* $(,)?) => {{
        const L: &[PSpec] = &[$(p(stringify!($name), $ty)),*];
        L
    }};
}

/// The cmdlets the emulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cmdlet {
    GetMailbox,
    SetMailbox,
    GetMailboxPermission,
    AddMailboxPermission,
    RemoveMailboxPermission,
    GetRecipientPermission,
    AddRecipientPermission,
    RemoveRecipientPermission,
    GetRecipient,
    GetDistributionGroupMember,
    GetOrganizationConfig,
}

impl Cmdlet {
    pub const ALL: &[Cmdlet] = &[
        Cmdlet::GetMailbox,
        Cmdlet::SetMailbox,
        Cmdlet::GetMailboxPermission,
        Cmdlet::AddMailboxPermission,
        Cmdlet::RemoveMailboxPermission,
        Cmdlet::GetRecipientPermission,
        Cmdlet::AddRecipientPermission,
        Cmdlet::RemoveRecipientPermission,
        Cmdlet::GetRecipient,
        Cmdlet::GetDistributionGroupMember,
        Cmdlet::GetOrganizationConfig,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cmdlet::GetMailbox => "Get-Mailbox",
            Cmdlet::SetMailbox => "Set-Mailbox",
            Cmdlet::GetMailboxPermission => "Get-MailboxPermission",
            Cmdlet::AddMailboxPermission => "Add-MailboxPermission",
            Cmdlet::RemoveMailboxPermission => "Remove-MailboxPermission",
            Cmdlet::GetRecipientPermission => "Get-RecipientPermission",
            Cmdlet::AddRecipientPermission => "Add-RecipientPermission",
            Cmdlet::RemoveRecipientPermission => "Remove-RecipientPermission",
            Cmdlet::GetRecipient => "Get-Recipient",
            Cmdlet::GetDistributionGroupMember => "Get-DistributionGroupMember",
            Cmdlet::GetOrganizationConfig => "Get-OrganizationConfig",
        }
    }

    /// Case-insensitive lookup.
    pub fn from_name(name: &str) -> Option<Cmdlet> {
        Cmdlet::ALL
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    pub fn is_read(self) -> bool {
        self.name().starts_with("Get-")
    }

    pub fn spec(self) -> &'static [PSpec] {
        const S: PType = PType::Str;
        const SW: PType = PType::Switch;
        const B: PType = PType::Bool;
        const RS: PType = PType::ResultSize;
        const RTD_T: PType = PType::EnumArray("RecipientTypeDetails", RTD);
        const RIGHTS_T: PType = PType::EnumArray("MailboxRights", MAILBOX_RIGHTS);
        const SEND_AS: PType = PType::EnumArray("RecipientAccessRight", &["SendAs"]);
        const INH: PType = PType::Enum("ActiveDirectorySecurityInheritance", INHERITANCE);
        match self {
            Cmdlet::GetMailbox => params![
                Identity: S, ResultSize: RS, RecipientTypeDetails: RTD_T,
                IncludeGrantSendOnBehalfToWithDisplayNames: SW, ReadFromDomainController: SW,
            ],
            Cmdlet::GetRecipient => params![
                Identity: S, ResultSize: RS, RecipientTypeDetails: RTD_T,
                ReadFromDomainController: SW,
            ],
            Cmdlet::GetDistributionGroupMember => params![
                Identity: S, ResultSize: RS, ReadFromDomainController: SW,
            ],
            Cmdlet::SetMailbox => params![
                Identity: S, GrantSendOnBehalfTo: PType::MultiValued,
                HiddenFromAddressListsEnabled: B, MessageCopyForSentAsEnabled: B,
                MessageCopyForSendOnBehalfEnabled: B, WhatIf: SW, Force: SW,
            ],
            Cmdlet::GetMailboxPermission => params![
                Identity: S, User: S, Owner: SW, ResultSize: RS, GroupMailbox: SW,
                IncludeSoftDeletedUserPermissions: SW, IncludeUnresolvedPermissions: SW,
                IncludeUserWithDisplayName: SW, SoftDeletedMailbox: SW,
                ReadFromDomainController: SW,
            ],
            Cmdlet::AddMailboxPermission => params![
                Identity: S, User: S, AccessRights: RIGHTS_T, InheritanceType: INH,
                AutoMapping: B, Deny: SW, GroupMailbox: SW, IgnoreDefaultScope: SW, WhatIf: SW,
            ],
            Cmdlet::RemoveMailboxPermission => params![
                Identity: S, User: S, AccessRights: RIGHTS_T, InheritanceType: INH, Deny: SW,
                ClearAutoMapping: SW, ResetDefault: SW, BypassMasterAccountSid: SW,
                GroupMailbox: SW, SoftDeletedMailbox: SW, IgnoreDefaultScope: SW, WhatIf: SW,
            ],
            Cmdlet::GetRecipientPermission => params![
                Identity: S, Trustee: S, AccessRights: SEND_AS, ResultSize: RS,
                IncludeTrusteeWithPrimarySmtpAddress: SW, ReadFromDomainController: SW,
            ],
            Cmdlet::AddRecipientPermission => params![
                Identity: S, Trustee: S, AccessRights: SEND_AS, WhatIf: SW,
            ],
            Cmdlet::RemoveRecipientPermission => params![
                Identity: S, Trustee: S, AccessRights: SEND_AS, Deny: SW, MultiTrustees: SW,
                SkipDomainValidationForMailContact: SW, SkipDomainValidationForMailUser: SW,
                SkipDomainValidationForSharedMailbox: SW, WhatIf: SW,
            ],
            Cmdlet::GetOrganizationConfig => params![Identity: S],
        }
    }
}

/// What a cmdlet needs to know besides the directory.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub now: OffsetDateTime,
    /// Reads see the directory as of this time (replication lag); None: current.
    pub as_of: Option<OffsetDateTime>,
    /// Writes keep history for this long (the lag), so lagged reads can be answered.
    pub lag: Option<time::Duration>,
    pub tenant_id: Uuid,
    pub tenant_display_name: &'a str,
    pub recipient_permission_is_inherited: bool,
    pub add_mailbox_permission_duplicate_warning: bool,
}

/// Where a paged read continues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    pub obj: u32,
    pub row: u32,
    /// Rows already returned (counts against `ResultSize`).
    pub emitted: u64,
}

/// One page of a read.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
    pub next: Option<Cursor>,
}

/// The result of a write.
#[derive(Debug, Default)]
pub struct WriteOutcome {
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
    /// Applied changes (one per right and trustee), for the apply log.
    pub changes: Vec<Value>,
}

fn resolve_identity(
    dir: &Directory,
    identity: &str,
    accept: impl Fn(&Object) -> bool,
) -> Result<ObjId, CmdletError> {
    match dir.resolve(identity, accept) {
        Resolved::Found(id) => Ok(id),
        Resolved::NotFound => Err(CmdletError::not_found(identity)),
        Resolved::Ambiguous(_) => Err(CmdletError::ambiguous(identity)),
    }
}

/// Checks that a write has its `mandatory` parameters, then resolves the object its `Identity`
/// names.
fn write_target<'p>(
    dir: &Directory,
    params: &'p Params,
    mandatory: &[&str],
    accept: impl Fn(&Object) -> bool,
) -> Result<(&'p str, ObjId), CmdletError> {
    params.require(mandatory)?;
    let identity = params.str("Identity").unwrap_or_default();
    Ok((identity, resolve_identity(dir, identity, accept)?))
}

/// Resolves a `User`/`Trustee` value to a SID: any principal, `NT AUTHORITY\SELF`, or (when
/// `allow_orphan`) a raw SID string that no live object holds.
fn resolve_principal(
    dir: &Directory,
    identity: &str,
    allow_orphan: bool,
) -> Result<Sid, CmdletError> {
    let t = identity.trim();
    if t.eq_ignore_ascii_case(SELF_NAME) || t == super::directory::SELF_SID {
        return Ok(Sid::SelfSid);
    }
    match dir.resolve(t, |_| true) {
        Resolved::Found(id) => Ok(Sid::Tenant(dir.get(id).map(|o| o.rid).unwrap_or_default())),
        Resolved::Ambiguous(_) => Err(CmdletError::ambiguous_principal(t)),
        Resolved::NotFound if allow_orphan && t.starts_with("S-1-") => Ok(dir.parse_sid(t)),
        Resolved::NotFound => Err(CmdletError::recipient_not_found(t)),
    }
}

fn guid(row: &mut Row, key: &str, g: Uuid) {
    row.insert(format!("{key}@odata.type"), json!("#Guid"));
    row.insert(key.to_owned(), json!(g.to_string()));
}

fn strings(row: &mut Row, key: &str, v: Vec<String>) {
    row.insert(format!("{key}@odata.type"), json!("#Collection(String)"));
    row.insert(key.to_owned(), json!(v));
}

fn email_addresses(o: &Object) -> Vec<String> {
    let mut v = Vec::with_capacity(1 + o.secondary_smtp.len());
    if let Some(p) = &o.primary_smtp {
        v.push(format!("SMTP:{p}"));
    }
    v.extend(o.secondary_smtp.iter().map(|s| format!("smtp:{s}")));
    v
}

fn recipient_common(dir: &Directory, o: &Object) -> Row {
    let mut r = Row::new();
    r.insert("Identity".into(), json!(&*o.name));
    r.insert("Id".into(), json!(&*o.name));
    r.insert("Name".into(), json!(&*o.name));
    r.insert("Alias".into(), json!(&*o.alias));
    r.insert("DisplayName".into(), json!(&*o.display_name));
    r.insert(
        "PrimarySmtpAddress".into(),
        json!(o.primary_smtp.as_deref().unwrap_or("")),
    );
    strings(&mut r, "EmailAddresses", email_addresses(o));
    r.insert("RecipientType".into(), json!(o.kind.recipient_type()));
    r.insert(
        "RecipientTypeDetails".into(),
        json!(o.kind.recipient_type_details()),
    );
    r.insert(
        "ExternalDirectoryObjectId".into(),
        json!(o.external_directory_object_id.to_string()),
    );
    guid(&mut r, "ExchangeObjectId", o.exchange_object_id);
    guid(&mut r, "Guid", o.guid);
    r.insert("DistinguishedName".into(), json!(dir.distinguished_name(o)));
    r.insert(
        "HiddenFromAddressListsEnabled".into(),
        json!(o.hidden_from_address_lists),
    );
    r.insert("IsValid".into(), json!(true));
    r.insert("ObjectState".into(), json!("Unchanged"));
    r
}

fn mailbox_row(dir: &Directory, o: &Object, perms: &Perms, with_display_names: bool) -> Row {
    let mut r = recipient_common(dir, o);
    let upn = o.upn.as_deref().unwrap_or("");
    r.insert("UserPrincipalName".into(), json!(upn));
    r.insert("WindowsLiveID".into(), json!(upn));
    r.insert("MicrosoftOnlineServicesID".into(), json!(upn));
    r.insert(
        "WindowsEmailAddress".into(),
        json!(o.primary_smtp.as_deref().unwrap_or("")),
    );
    guid(&mut r, "ExchangeGuid", o.exchange_guid);
    r.insert(
        "IsShared".into(),
        json!(o.kind == super::directory::Kind::SharedMailbox),
    );
    let delegates: Vec<&Object> = perms
        .send_on_behalf
        .iter()
        .filter_map(|d| dir.get(*d))
        .collect();
    strings(
        &mut r,
        "GrantSendOnBehalfTo",
        delegates.iter().map(|d| d.name.to_string()).collect(),
    );
    if with_display_names {
        strings(
            &mut r,
            "GrantSendOnBehalfToWithDisplayNames",
            delegates
                .iter()
                .map(|d| d.display_name.to_string())
                .collect(),
        );
    }
    r.insert(
        "MessageCopyForSentAsEnabled".into(),
        json!(o.message_copy_for_sent_as),
    );
    r.insert(
        "MessageCopyForSendOnBehalfEnabled".into(),
        json!(o.message_copy_for_send_on_behalf),
    );
    r
}

fn mailbox_permission_row(dir: &Directory, mailbox: &Object, row: &AclRow, rights: u8) -> Row {
    let mut r = Row::new();
    r.insert("Identity".into(), json!(&*mailbox.name));
    r.insert("User".into(), json!(dir.principal_display(&row.principal)));
    r.insert("UserSid".into(), json!(dir.sid_string(&row.principal)));
    strings(&mut r, "AccessRights", vec![rights_string(rights)]);
    r.insert("Deny".into(), json!(row.deny));
    r.insert(
        "InheritanceType".into(),
        json!(INHERITANCE[row.inheritance as usize]),
    );
    r.insert("IsInherited".into(), json!(row.inherited));
    r.insert("IsValid".into(), json!(true));
    r.insert("ObjectState".into(), json!("Unchanged"));
    r
}

fn recipient_permission_row(
    dir: &Directory,
    ctx: &Ctx,
    recipient: &Object,
    row: &SendAsRow,
    with_smtp: bool,
) -> Row {
    let mut r = Row::new();
    r.insert("Identity".into(), json!(&*recipient.name));
    r.insert("Trustee".into(), json!(dir.principal_display(&row.trustee)));
    r.insert("AccessControlType".into(), json!("Allow"));
    strings(&mut r, "AccessRights", vec!["SendAs".to_owned()]);
    if ctx.recipient_permission_is_inherited {
        r.insert("IsInherited".into(), json!(row.inherited));
    }
    r.insert("InheritanceType".into(), json!("None"));
    r.insert(
        "TrusteeSidString".into(),
        json!(dir.sid_string(&row.trustee)),
    );
    let smtp = if with_smtp {
        dir.object_by_sid(&row.trustee)
            .and_then(|t| dir.get(t))
            .and_then(|t| t.primary_smtp.as_deref())
            .unwrap_or("")
    } else {
        ""
    };
    r.insert("PrimarySmtpAddress".into(), json!(""));
    r.insert("TrusteeWithPrimarySmtpAddress".into(), json!(smtp));
    r.insert("IsValid".into(), json!(true));
    r.insert("ObjectState".into(), json!("Unchanged"));
    r
}

/// Where a read's page starts, how many rows it holds, and the `ResultSize` cap.
#[derive(Debug, Clone, Copy)]
struct Paging {
    start: Cursor,
    result_size: Option<u64>,
    page_size: usize,
}

impl Paging {
    /// Pages over positions `(obj,row)` from `items`, building rows lazily, honouring
    /// `ResultSize`.
    fn page<I, F>(self, items: I, mut build: F) -> Page
    where
        I: Iterator<Item = (u32, u32)>,
        F: FnMut(u32, u32) -> Row,
    {
        let Paging {
            start,
            result_size,
            page_size,
        } = self;
        let mut items = items.peekable();
        let mut page = Page::default();
        let mut emitted = start.emitted;
        while page.rows.len() < page_size && result_size.is_none_or(|rs| emitted < rs) {
            let Some((o, r)) = items.next() else { break };
            page.rows.push(build(o, r));
            emitted += 1;
        }
        if let Some(&(o, r)) = items.peek() {
            if result_size.is_some_and(|rs| emitted >= rs) {
                page.warnings.push(RESULT_SIZE_WARNING.to_owned());
            } else {
                page.next = Some(Cursor {
                    obj: o,
                    row: r,
                    emitted,
                });
            }
        }
        page
    }
}

/// `Identity` of a read that cannot run without it (over REST: 400 "Invalid Operation").
fn required_identity(params: &Params) -> Result<&str, CmdletError> {
    params.str("Identity").ok_or_else(|| {
        CmdletError::invalid_operation(
            "Cannot process command because of one or more missing mandatory parameters: Identity.",
        )
    })
}

fn rtd_filter(params: &Params) -> Option<&[String]> {
    params.strs("RecipientTypeDetails")
}

/// Runs a read cmdlet for one page starting at `start`.
pub fn read(
    dir: &Directory,
    ctx: &Ctx,
    cmdlet: Cmdlet,
    params: &Params,
    start: Cursor,
    page_size: usize,
) -> Result<Page, CmdletError> {
    let paging = Paging {
        start,
        result_size: params.result_size(),
        page_size: page_size.max(1),
    };
    match cmdlet {
        Cmdlet::GetMailbox | Cmdlet::GetRecipient => {
            let mailbox_only = cmdlet == Cmdlet::GetMailbox;
            let accept = |o: &Object| {
                (if mailbox_only {
                    o.kind.is_mailbox()
                } else {
                    o.kind.is_recipient()
                }) && rtd_filter(params)
                    .is_none_or(|f| f.iter().any(|t| t == o.kind.recipient_type_details()))
            };
            let with_names = params
                .flag("IncludeGrantSendOnBehalfToWithDisplayNames")
                .unwrap_or(false);
            let build = |id: u32, _| -> Row {
                let Some(o) = dir.get(id) else {
                    return Row::new();
                };
                if mailbox_only {
                    let perms = dir.perms_at(id, ctx.as_of).unwrap_or(o.perms());
                    mailbox_row(dir, o, perms, with_names)
                } else {
                    recipient_common(dir, o)
                }
            };
            if let Some(identity) = params.str("Identity") {
                let id = resolve_identity(dir, identity, accept)?;
                let items = (start.emitted == 0).then_some((id, 0)).into_iter();
                return Ok(Paging {
                    result_size: None,
                    ..paging
                }
                .page(items, build));
            }
            let items = dir
                .objects
                .iter()
                .enumerate()
                .skip(start.obj as usize)
                .filter(|(_, o)| !o.deleted && accept(o))
                .map(|(i, _)| (i as u32, 0));
            Ok(paging.page(items, build))
        }
        Cmdlet::GetDistributionGroupMember => {
            let identity = required_identity(params)?;
            // Only mail-enabled groups are distribution groups; anything else is not found.
            let group = resolve_identity(dir, identity, |o| {
                o.kind == super::directory::Kind::MailEnabledSecurityGroup
            })?;
            let g = dir
                .get(group)
                .ok_or_else(|| CmdletError::not_found(identity))?;
            let members = &g.members;
            let items = (start.row as usize..members.len())
                .filter(|i| dir.get(members[*i]).is_some())
                .map(|i| (group, i as u32));
            Ok(
                paging.page(items, |_, i| match dir.get(members[i as usize]) {
                    Some(m) => recipient_common(dir, m),
                    None => Row::new(),
                }),
            )
        }
        Cmdlet::GetMailboxPermission => {
            let identity = required_identity(params)?;
            let id = resolve_identity(dir, identity, |o| o.kind.is_mailbox())?;
            let user = match params.str("User") {
                Some(u) => Some(resolve_principal(dir, u, true)?),
                None => None,
            };
            let o = dir
                .get(id)
                .ok_or_else(|| CmdletError::not_found(identity))?;
            let perms = dir.perms_at(id, ctx.as_of).unwrap_or(o.perms());
            let rows = &perms.full_access;
            let items = (start.row as usize..rows.len())
                .filter(|i| user.as_ref().is_none_or(|u| rows[*i].principal == *u))
                .map(|i| (id, i as u32));
            Ok(paging.page(items, |_, i| {
                let row = &rows[i as usize];
                mailbox_permission_row(dir, o, row, row.rights)
            }))
        }
        Cmdlet::GetRecipientPermission => {
            let trustee = match params.str("Trustee") {
                Some(t) => Some(resolve_principal(dir, t, true)?),
                None => None,
            };
            let with_smtp = params
                .flag("IncludeTrusteeWithPrimarySmtpAddress")
                .unwrap_or(false);
            let view = |id: u32| -> &Perms {
                dir.perms_at(id, ctx.as_of)
                    .unwrap_or(super::directory::Object::perms(&dir.objects[id as usize]))
            };
            let matches = |r: &SendAsRow| trustee.as_ref().is_none_or(|t| r.trustee == *t);
            let build = |id: u32, i: u32| {
                let o = &dir.objects[id as usize];
                recipient_permission_row(dir, ctx, o, &view(id).send_as[i as usize], with_smtp)
            };
            if let Some(identity) = params.str("Identity") {
                let id = resolve_identity(dir, identity, |o| o.kind.is_recipient())?;
                let rows = &view(id).send_as;
                let items = (start.row as usize..rows.len())
                    .filter(|i| matches(&rows[*i]))
                    .map(|i| (id, i as u32));
                return Ok(paging.page(items, build));
            }
            let items = (start.obj as usize..dir.objects.len())
                .filter(|i| {
                    let o = &dir.objects[*i];
                    !o.deleted && o.kind.is_recipient()
                })
                .flat_map(|i| {
                    let first = if i == start.obj as usize {
                        start.row as usize
                    } else {
                        0
                    };
                    let rows = &view(i as u32).send_as;
                    (first..rows.len())
                        .filter(move |r| matches(&rows[*r]))
                        .map(move |r| (i as u32, r as u32))
                });
            Ok(paging.page(items, build))
        }
        Cmdlet::GetOrganizationConfig => {
            let mut r = Row::new();
            r.insert("Identity".into(), json!(&*dir.initial_domain));
            r.insert("Name".into(), json!(&*dir.initial_domain));
            r.insert("DisplayName".into(), json!(ctx.tenant_display_name));
            guid(&mut r, "Guid", ctx.tenant_id);
            r.insert("IsDehydrated".into(), json!(false));
            r.insert("IsValid".into(), json!(true));
            r.insert("ObjectState".into(), json!("Unchanged"));
            Ok(Page {
                rows: if start.emitted == 0 { vec![r] } else { vec![] },
                ..Page::default()
            })
        }
        _ => Err(CmdletError::invalid_operation(format!(
            "{} is not a read cmdlet.",
            cmdlet.name()
        ))),
    }
}

fn rights_of(params: &Params, name: &str) -> u8 {
    let mut bits = 0;
    for r in params.strs(name).unwrap_or(&[]) {
        if let Some((b, _)) = RIGHTS.iter().find(|(_, n)| n == r) {
            bits |= b;
        }
    }
    bits
}

fn inheritance_of(params: &Params) -> u8 {
    params
        .str("InheritanceType")
        .and_then(|s| INHERITANCE.iter().position(|n| *n == s))
        .map_or(INHERIT_ALL, |i| i as u8)
}

fn change(
    dir: &Directory,
    mailbox: ObjId,
    trustee: &Sid,
    right: &str,
    op: &str,
    extra: &[(&str, Value)],
) -> Value {
    let mb = dir.get(mailbox);
    let t = dir.object_by_sid(trustee).and_then(|t| dir.get(t));
    let mut v = json!({
        "mailbox": mb.map(|m| &*m.name),
        "mailbox_address": mb.and_then(|m| m.primary_smtp.as_deref()),
        "mailbox_object_id": mb.map(|m| m.external_directory_object_id.to_string()),
        "trustee": dir.principal_display(trustee),
        "trustee_sid": dir.sid_string(trustee),
        "trustee_object_id": t.map(|t| t.external_directory_object_id.to_string()),
        "right": right,
        "op": op,
    });
    if let Some(o) = v.as_object_mut() {
        for (k, x) in extra {
            o.insert((*k).to_owned(), x.clone());
        }
    }
    v
}

/// One change per right in `bits`, in [`RIGHTS`] order; `extra(bit)` adds fields to each.
fn right_changes(
    dir: &Directory,
    mailbox: ObjId,
    principal: &Sid,
    bits: u8,
    op: &str,
    extra: impl Fn(u8) -> Vec<(&'static str, Value)>,
) -> Vec<Value> {
    RIGHTS
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(bit, name)| change(dir, mailbox, principal, name, op, &extra(*bit)))
        .collect()
}

/// The explicit ACE of a principal that `Deny` and `InheritanceType` pick out, and where it
/// stands among the mailbox's current Full Access rows.
struct AceLookup {
    deny: bool,
    inheritance: u8,
    current: Perms,
    position: Option<usize>,
}

fn find_ace(dir: &Directory, mb: ObjId, params: &Params, principal: &Sid) -> AceLookup {
    let deny = params.flag("Deny").unwrap_or(false);
    let inheritance = inheritance_of(params);
    let current = dir.get(mb).map(|o| o.perms().clone()).unwrap_or_default();
    let position = current.full_access.iter().position(|r| {
        r.principal == *principal && r.deny == deny && r.inheritance == inheritance && !r.inherited
    });
    AceLookup {
        deny,
        inheritance,
        current,
        position,
    }
}

/// Runs a write cmdlet.
pub fn write(
    dir: &mut Directory,
    ctx: &Ctx,
    cmdlet: Cmdlet,
    params: &Params,
) -> Result<WriteOutcome, CmdletError> {
    let what_if = params.flag("WhatIf").unwrap_or(false);
    match cmdlet {
        Cmdlet::AddMailboxPermission => add_mailbox_permission(dir, ctx, params, what_if),
        Cmdlet::RemoveMailboxPermission => remove_mailbox_permission(dir, ctx, params, what_if),
        Cmdlet::AddRecipientPermission | Cmdlet::RemoveRecipientPermission => recipient_permission(
            dir,
            ctx,
            params,
            cmdlet == Cmdlet::AddRecipientPermission,
            what_if,
        ),
        Cmdlet::SetMailbox => set_mailbox(dir, ctx, params, what_if),
        _ => Err(CmdletError::invalid_operation(format!(
            "{} is not a write cmdlet.",
            cmdlet.name()
        ))),
    }
}

/// Add-MailboxPermission.
fn add_mailbox_permission(
    dir: &mut Directory,
    ctx: &Ctx,
    params: &Params,
    what_if: bool,
) -> Result<WriteOutcome, CmdletError> {
    let (identity, mb) = write_target(dir, params, &["Identity", "User", "AccessRights"], |o| {
        o.kind.is_mailbox()
    })?;
    let user_in = params.str("User").unwrap_or_default();
    let principal = resolve_principal(dir, user_in, false)?;
    let rights = rights_of(params, "AccessRights");
    let automapping_param = params.flag("AutoMapping");
    if automapping_param == Some(true) && rights != FULL_ACCESS {
        return Err(CmdletError::invalid_operation(
            "Setting AutoMapping option to true for non-FullAccess rights is not allowed. AutoMapping=true option can only be used together with FullAccess permission.",
        ));
    }
    let is_group = dir
        .object_by_sid(&principal)
        .and_then(|t| dir.get(t))
        .is_some_and(|t| t.kind.is_group());
    let automapping = !is_group && automapping_param.unwrap_or(true);
    let ace = find_ace(dir, mb, params, &principal);
    let (deny, inheritance, existing) = (ace.deny, ace.inheritance, ace.position);
    let out_row = AclRow {
        principal: principal.clone(),
        rights,
        deny,
        inheritance,
        inherited: false,
        automapping,
    };
    let mut outcome = WriteOutcome::default();
    let mbo = dir
        .get(mb)
        .ok_or_else(|| CmdletError::not_found(identity))?;
    outcome
        .rows
        .push(mailbox_permission_row(dir, mbo, &out_row, rights));
    let new_bits = match existing {
        Some(i) => rights & !ace.current.full_access[i].rights,
        None => rights,
    };
    if new_bits == 0 {
        if ctx.add_mailbox_permission_duplicate_warning {
            outcome.warnings.push(format!(
                "The appropriate access control entry is already present on the object \"{}\" for account \"{}\".",
                dir.distinguished_name(mbo),
                dir.principal_display(&principal)
            ));
        }
        return Ok(outcome);
    }
    if existing.is_none() && ace.current.full_access.len() >= MAX_ACES {
        return Err(CmdletError::invalid_operation(format!(
            "The access control list of '{}' already holds {MAX_ACES} access control entries, the most a mailbox may have. Grant access through a mail-enabled security group instead.",
            mbo.name
        )));
    }
    if what_if {
        return Ok(WriteOutcome::default());
    }
    outcome
        .changes
        .extend(right_changes(dir, mb, &principal, new_bits, "add", |bit| {
            let mut extra = vec![
                ("deny", json!(deny)),
                ("inheritance", json!(INHERITANCE[inheritance as usize])),
            ];
            if bit == FULL_ACCESS {
                extra.push(("automapping", json!(automapping)));
            }
            extra
        }));
    let p = dir
        .perms_mut(mb, ctx.now, ctx.lag)
        .ok_or_else(|| CmdletError::not_found(identity))?;
    match existing {
        Some(i) => {
            let row = &mut p.full_access[i];
            row.rights |= new_bits;
            if new_bits & FULL_ACCESS != 0 {
                row.automapping = automapping;
            }
        }
        None => p.full_access.push(AclRow {
            automapping: automapping && rights & FULL_ACCESS != 0,
            ..out_row
        }),
    }
    Ok(outcome)
}

/// Remove-MailboxPermission.
fn remove_mailbox_permission(
    dir: &mut Directory,
    ctx: &Ctx,
    params: &Params,
    what_if: bool,
) -> Result<WriteOutcome, CmdletError> {
    let (identity, mb) = write_target(dir, params, &["Identity"], |o| o.kind.is_mailbox())?;
    let clear = params.flag("ClearAutoMapping").unwrap_or(false);
    let reset = params.flag("ResetDefault").unwrap_or(false);
    if clear || reset {
        return reset_mailbox_permissions(dir, ctx, params, mb, clear, reset, what_if);
    }
    let mut outcome = WriteOutcome::default();
    params.require(&["User", "AccessRights"])?;
    let user_in = params.str("User").unwrap_or_default();
    let principal = resolve_principal(dir, user_in, true)?;
    let rights = rights_of(params, "AccessRights");
    let ace = find_ace(dir, mb, params, &principal);
    let (deny, pos) = (ace.deny, ace.position);
    let removed = pos.map_or(0, |i| ace.current.full_access[i].rights & rights);
    if removed == 0 {
        let mbo = dir
            .get(mb)
            .ok_or_else(|| CmdletError::not_found(identity))?;
        outcome.warnings.push(format!(
            "Can't remove the access control entry on the object \"{}\" for account \"{}\" because the ACE doesn't exist on the object.",
            dir.distinguished_name(mbo),
            dir.principal_display(&principal)
        ));
        return Ok(outcome);
    }
    if what_if {
        return Ok(WriteOutcome::default());
    }
    outcome.changes.extend(right_changes(
        dir,
        mb,
        &principal,
        removed,
        "remove",
        |_| vec![("deny", json!(deny))],
    ));
    if let (Some(i), Some(p)) = (pos, dir.perms_mut(mb, ctx.now, ctx.lag)) {
        p.full_access[i].rights &= !removed;
        if p.full_access[i].rights == 0 {
            p.full_access.remove(i);
        }
    }
    Ok(outcome)
}

/// Remove-MailboxPermission `-ClearAutoMapping` (automapping off on every row) or
/// `-ResetDefault` (every explicit row but SELF removed).
fn reset_mailbox_permissions(
    dir: &mut Directory,
    ctx: &Ctx,
    params: &Params,
    mb: ObjId,
    clear: bool,
    reset: bool,
    what_if: bool,
) -> Result<WriteOutcome, CmdletError> {
    if params.has("User") || params.has("AccessRights") || (clear && reset) {
        return Err(CmdletError::parameter(
            "Parameter set cannot be resolved using the specified named parameters.",
        ));
    }
    let mut outcome = WriteOutcome::default();
    let current = dir.get(mb).map(|o| o.perms().clone()).unwrap_or_default();
    let mut next = current.clone();
    if clear {
        for r in next.full_access.iter_mut() {
            r.automapping = false;
        }
        outcome.changes.push(json!({
            "mailbox": dir.get(mb).map(|m| &*m.name),
            "mailbox_address": dir.get(mb).and_then(|m| m.primary_smtp.as_deref()),
            "right": "FullAccess",
            "op": "clear_automapping",
        }));
    } else {
        for r in &current.full_access {
            if r.principal != Sid::SelfSid && !r.inherited {
                outcome.changes.extend(right_changes(
                    dir,
                    mb,
                    &r.principal,
                    r.rights,
                    "remove",
                    |_| vec![("deny", json!(r.deny))],
                ));
            }
        }
        next.full_access
            .retain(|r| r.principal == Sid::SelfSid || r.inherited);
    }
    if what_if {
        return Ok(WriteOutcome::default());
    }
    if next != current
        && let Some(p) = dir.perms_mut(mb, ctx.now, ctx.lag)
    {
        *p = next;
    }
    Ok(outcome)
}

/// Add-RecipientPermission (`add`) or Remove-RecipientPermission.
fn recipient_permission(
    dir: &mut Directory,
    ctx: &Ctx,
    params: &Params,
    add: bool,
    what_if: bool,
) -> Result<WriteOutcome, CmdletError> {
    let (identity, rid) =
        write_target(dir, params, &["Identity", "Trustee", "AccessRights"], |o| {
            o.kind.is_recipient()
        })?;
    let trustee_in = params.str("Trustee").unwrap_or_default();
    let trustee = resolve_principal(dir, trustee_in, !add)?;
    let present = dir
        .get(rid)
        .map(|o| {
            o.perms()
                .send_as
                .iter()
                .position(|r| r.trustee == trustee && !r.inherited)
        })
        .unwrap_or_default();
    let ro = dir
        .get(rid)
        .ok_or_else(|| CmdletError::not_found(identity))?;
    let mut outcome = WriteOutcome::default();
    let dn = dir.distinguished_name(ro);
    let shown = dir.principal_display(&trustee);
    match (add, present) {
        (true, Some(_)) => {
            outcome.warnings.push(format!(
                "The appropriate access control entry is already present on the object \"{dn}\" for account \"{shown}\"."
            ));
        }
        (false, None) => {
            outcome.warnings.push(format!(
                "Can't remove the access control entry on the object \"{dn}\" for account \"{shown}\" because the ACE isn't present."
            ));
        }
        _ if what_if => {}
        (true, None) => {
            let row = SendAsRow {
                trustee: trustee.clone(),
                inherited: false,
            };
            outcome
                .rows
                .push(recipient_permission_row(dir, ctx, ro, &row, false));
            outcome
                .changes
                .push(change(dir, rid, &trustee, "SendAs", "add", &[]));
            if let Some(p) = dir.perms_mut(rid, ctx.now, ctx.lag) {
                p.send_as.push(row);
            }
        }
        (false, Some(i)) => {
            outcome
                .changes
                .push(change(dir, rid, &trustee, "SendAs", "remove", &[]));
            if let Some(p) = dir.perms_mut(rid, ctx.now, ctx.lag) {
                p.send_as.remove(i);
            }
        }
    }
    Ok(outcome)
}

/// The Send on Behalf list `GrantSendOnBehalfTo` asks for, from the list as it is: unchanged
/// when absent, cleared by null, replaced by a list, edited by an add/remove hashtable.
fn send_on_behalf_after(
    dir: &Directory,
    params: &Params,
    before: &[ObjId],
) -> Result<Vec<ObjId>, CmdletError> {
    let resolve_all = |names: &[String]| -> Result<Vec<ObjId>, CmdletError> {
        names
            .iter()
            .map(|n| match dir.resolve(n, |o| o.kind.is_recipient()) {
                Resolved::Found(id) => Ok(id),
                Resolved::NotFound => Err(CmdletError::recipient_not_found(n)),
                Resolved::Ambiguous(_) => Err(CmdletError::ambiguous_principal(n)),
            })
            .collect()
    };
    let mut after = before.to_vec();
    match params.raw("GrantSendOnBehalfTo") {
        None => {}
        Some(PVal::Null) => after.clear(),
        Some(PVal::Strs(list)) => {
            after.clear();
            for id in resolve_all(list)? {
                if !after.contains(&id) {
                    after.push(id);
                }
            }
        }
        Some(PVal::AddRemove { add, remove }) => {
            let add = resolve_all(add)?;
            let remove = resolve_all(remove)?;
            for id in add {
                if !after.contains(&id) {
                    after.push(id);
                }
            }
            after.retain(|d| !remove.contains(d));
        }
        Some(_) => {}
    }
    Ok(after)
}

/// Set-Mailbox: the Send on Behalf list and the three mailbox flags.
fn set_mailbox(
    dir: &mut Directory,
    ctx: &Ctx,
    params: &Params,
    what_if: bool,
) -> Result<WriteOutcome, CmdletError> {
    let (identity, mb) = write_target(dir, params, &["Identity"], |o| o.kind.is_mailbox())?;
    let o = dir
        .get(mb)
        .ok_or_else(|| CmdletError::not_found(identity))?;
    let before = o.perms().send_on_behalf.clone();
    let after = send_on_behalf_after(dir, params, &before)?;
    let mut outcome = WriteOutcome::default();
    let sid_of = |id: ObjId| Sid::Tenant(dir.get(id).map(|o| o.rid).unwrap_or_default());
    for d in &after {
        if !before.contains(d) {
            outcome
                .changes
                .push(change(dir, mb, &sid_of(*d), "SendOnBehalf", "add", &[]));
        }
    }
    for d in &before {
        if !after.contains(d) {
            outcome
                .changes
                .push(change(dir, mb, &sid_of(*d), "SendOnBehalf", "remove", &[]));
        }
    }
    let mut flags = Vec::new();
    for (param, current) in [
        ("HiddenFromAddressListsEnabled", o.hidden_from_address_lists),
        ("MessageCopyForSentAsEnabled", o.message_copy_for_sent_as),
        (
            "MessageCopyForSendOnBehalfEnabled",
            o.message_copy_for_send_on_behalf,
        ),
    ] {
        if let Some(v) = params.flag(param)
            && v != current
        {
            flags.push((param, v));
            outcome.changes.push(json!({
                "mailbox": &*o.name,
                "mailbox_address": o.primary_smtp.as_deref(),
                "property": param,
                "value": v,
                "op": "set",
            }));
        }
    }
    if outcome.changes.is_empty() {
        outcome.warnings.push(format!(
            "The command completed successfully but no settings of '{}' have been modified.",
            o.name
        ));
        return Ok(outcome);
    }
    if what_if {
        return Ok(WriteOutcome::default());
    }
    if after != before
        && let Some(p) = dir.perms_mut(mb, ctx.now, ctx.lag)
    {
        p.send_on_behalf = after;
    }
    if let Some(o) = dir.get_mut(mb) {
        for (param, v) in flags {
            match param {
                "HiddenFromAddressListsEnabled" => o.hidden_from_address_lists = v,
                "MessageCopyForSentAsEnabled" => o.message_copy_for_sent_as = v,
                _ => o.message_copy_for_send_on_behalf = v,
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::seed::demo_directory_seed;

    fn ctx() -> Ctx<'static> {
        Ctx {
            now: OffsetDateTime::UNIX_EPOCH,
            as_of: None,
            lag: None,
            tenant_id: Uuid::nil(),
            tenant_display_name: "Contoso",
            recipient_permission_is_inherited: true,
            add_mailbox_permission_duplicate_warning: false,
        }
    }

    fn demo() -> Directory {
        Directory::from_seed(
            &demo_directory_seed("contoso.onmicrosoft.com"),
            "contoso.onmicrosoft.com",
            3,
        )
        .unwrap()
    }

    fn bind(c: Cmdlet, v: Value) -> Params {
        Params::bind(Some(&v), c.spec()).unwrap()
    }

    #[test]
    fn full_access_round_trip_with_idempotency_warnings() {
        let mut d = demo();
        let c = Cmdlet::AddMailboxPermission;
        let ps = bind(
            c,
            json!({"Identity":"support","User":"carol@contoso.onmicrosoft.com","AccessRights":["FullAccess"],"AutoMapping":false}),
        );
        let out = write(&mut d, &ctx(), c, &ps).unwrap();
        assert_eq!(out.changes.len(), 1);
        assert!(out.warnings.is_empty());
        let again = write(&mut d, &ctx(), c, &ps).unwrap();
        assert!(again.changes.is_empty() && again.warnings.is_empty());
        let page = read(
            &d,
            &ctx(),
            Cmdlet::GetMailboxPermission,
            &bind(Cmdlet::GetMailboxPermission, json!({"Identity":"support"})),
            Cursor::default(),
            1000,
        )
        .unwrap();
        assert_eq!(page.rows[0]["User"], json!(SELF_NAME));
        assert!(page.rows.iter().all(|r| !r.contains_key("AutoMapping")));
        assert!(
            page.rows
                .iter()
                .any(|r| r["User"] == json!("carol@contoso.onmicrosoft.com"))
        );
        let rm = Cmdlet::RemoveMailboxPermission;
        let rps = bind(
            rm,
            json!({"Identity":"support","User":"carol@contoso.onmicrosoft.com","AccessRights":"FullAccess"}),
        );
        assert_eq!(write(&mut d, &ctx(), rm, &rps).unwrap().changes.len(), 1);
        let w = write(&mut d, &ctx(), rm, &rps).unwrap();
        assert!(w.warnings[0].contains("because the ACE doesn't exist on the object."));
    }

    #[test]
    fn send_on_behalf_add_keeps_existing_and_noop_warns() {
        let mut d = demo();
        let c = Cmdlet::SetMailbox;
        let ps = bind(
            c,
            json!({"Identity":"sales","GrantSendOnBehalfTo":{"@odata.type":"#Exchange.GenericHashTable","add":"bob"}}),
        );
        write(&mut d, &ctx(), c, &ps).unwrap();
        let page = read(
            &d,
            &ctx(),
            Cmdlet::GetMailbox,
            &bind(Cmdlet::GetMailbox, json!({"Identity":"sales"})),
            Cursor::default(),
            10,
        )
        .unwrap();
        assert_eq!(
            page.rows[0]["GrantSendOnBehalfTo"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let w = write(&mut d, &ctx(), c, &ps).unwrap();
        assert!(w.warnings[0].contains("no settings of 'sales' have been modified"));
        let bad = bind(
            c,
            json!({"Identity":"sales","GrantSendOnBehalfTo":["nobody"]}),
        );
        assert_eq!(
            write(&mut d, &ctx(), c, &bad).unwrap_err().exception_type,
            super::super::errors::NOT_FOUND_TYPE
        );
    }
}
