//! Typed delegation operations (`docs/MICROSOFT.md#cmdlets`, `#identities`): mailbox details with
//! Send on Behalf delegates resolved to UPN and display name, Full Access and Send As holders
//! (SELF, inherited and deny rows filtered by SID; comma-joined rights split; orphaned SIDs and
//! groups marked), and "ensure" grant/remove operations for the three rights that report `Changed`
//! or `AlreadyInState`. Send on Behalf is only ever changed through the add/remove hashtable, never
//! by overwriting the list. Also the inventory helpers (all mailboxes as pages, tenant-wide Send
//! As, Full Access of many mailboxes through `$batch`).

use std::collections::HashMap;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::M365Client;
use crate::error::ExchangeError;
use crate::exchange::{CmdletOutput, CmdletRequest, prop, prop_bool, prop_list};
use crate::identity::Identity;
use crate::retry::backoff_delay;

/// `NT AUTHORITY\SELF`, present on every mailbox ACL.
pub const SELF_SID: &str = "S-1-5-10";
/// Prefix of a domain SID: a trustee shown this way no longer resolves (orphan).
pub const ORPHAN_SID_PREFIX: &str = "S-1-5-21-";

/// The three delegation rights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Right {
    FullAccess,
    SendAs,
    SendOnBehalf,
}

/// Result of an ensure-operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsureOutcome {
    /// Exchange changed the mailbox.
    Changed,
    /// The mailbox was already as asked (read first, or said so by Exchange's warning).
    AlreadyInState,
}

/// What an ensure-operation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnsureReport {
    pub outcome: EnsureOutcome,
    /// Every warning Exchange returned.
    pub warnings: Vec<String>,
    /// Write attempts made (0 when the read-first showed the state already held).
    pub write_attempts: u32,
    /// The identities actually sent.
    pub mailbox: Recipient,
    pub trustee: Recipient,
}

/// A recipient as Exchange describes it (Get-Recipient / Get-Mailbox).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Exchange `Identity` (the object name; often not the UPN).
    pub identity: String,
    pub name: Option<String>,
    pub alias: Option<String>,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub primary_smtp_address: Option<String>,
    /// Entra object id.
    pub external_directory_object_id: Option<String>,
    pub guid: Option<String>,
    pub exchange_object_id: Option<String>,
    pub recipient_type: Option<String>,
    pub recipient_type_details: Option<String>,
    /// (inventory-truth) Proxy addresses as Exchange lists them (`SMTP:` primary, `smtp:` others).
    pub email_addresses: Vec<String>,
}

impl Recipient {
    pub fn from_value(v: &Value) -> Self {
        let s = |k: &str| prop(v, k).map(str::to_owned);
        Self {
            identity: s("Identity")
                .or_else(|| s("Id"))
                .or_else(|| s("Name"))
                .unwrap_or_default(),
            name: s("Name"),
            alias: s("Alias"),
            display_name: s("DisplayName"),
            user_principal_name: s("UserPrincipalName")
                .or_else(|| s("WindowsLiveID"))
                .or_else(|| s("MicrosoftOnlineServicesID")),
            primary_smtp_address: s("PrimarySmtpAddress").or_else(|| s("WindowsEmailAddress")),
            external_directory_object_id: s("ExternalDirectoryObjectId"),
            guid: s("Guid"),
            exchange_object_id: s("ExchangeObjectId"),
            recipient_type: s("RecipientType"),
            recipient_type_details: s("RecipientTypeDetails"),
            email_addresses: crate::exchange::prop_list(v, "EmailAddresses"),
        }
    }

    /// True for groups (mail-enabled security groups, distribution groups, role groups).
    pub fn is_group(&self) -> bool {
        [&self.recipient_type, &self.recipient_type_details]
            .iter()
            .any(|t| {
                t.as_deref()
                    .is_some_and(|t| t.to_ascii_lowercase().contains("group"))
            })
    }

    /// The identity to send back to Exchange: UPN, else primary SMTP, else object GUID, else
    /// the Exchange identity (`docs/MICROSOFT.md#identities`).
    pub fn canonical(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .or(self.primary_smtp_address.as_deref())
            .or(self.guid.as_deref())
            .or(self.external_directory_object_id.as_deref())
            .unwrap_or(&self.identity)
    }

    /// Does a value Exchange printed for a trustee or delegate (UPN, name, GUID, `DOMAIN\name`)
    /// denote this recipient? Case-insensitive.
    pub fn matches(&self, value: &str) -> bool {
        let value = value.trim();
        let short = value.rsplit('\\').next().unwrap_or(value);
        let candidates = [
            Some(self.identity.as_str()),
            self.name.as_deref(),
            self.alias.as_deref(),
            self.user_principal_name.as_deref(),
            self.primary_smtp_address.as_deref(),
            self.external_directory_object_id.as_deref(),
            self.guid.as_deref(),
            self.exchange_object_id.as_deref(),
        ];
        candidates
            .into_iter()
            .flatten()
            .filter(|c| !c.is_empty())
            .any(|c| c.eq_ignore_ascii_case(value) || c.eq_ignore_ascii_case(short))
    }
}

/// What resolving one trustee value Exchange printed (in an ACL row or a Send on Behalf list)
/// found. Not to be confused with `exogate_core::inventory::TrusteeClass`: that is the class an
/// inventory row stores, which `exogate`'s sweep derives from the resolved identity without
/// this type (the core does not depend on this crate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrusteeResolution {
    /// A user (or other non-group recipient) that resolved.
    User,
    /// A group; its members hold the right through it.
    Group,
    /// A bare `S-1-5-21-…` SID: the principal was deleted.
    Orphan,
    /// A name Exchange printed that did not resolve to a recipient.
    Unresolved,
}

/// One row of Get-MailboxPermission, rights split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxPermissionRow {
    pub identity: String,
    pub user: String,
    pub user_sid: Option<String>,
    pub access_rights: Vec<String>,
    pub deny: bool,
    pub is_inherited: bool,
    pub inheritance_type: Option<String>,
}

impl MailboxPermissionRow {
    pub fn from_value(v: &Value) -> Self {
        Self {
            identity: prop(v, "Identity").unwrap_or_default().to_owned(),
            user: prop(v, "User").unwrap_or_default().to_owned(),
            user_sid: prop(v, "UserSid").map(str::to_owned),
            access_rights: split_rights(&prop_list(v, "AccessRights")),
            deny: prop_bool(v, "Deny").unwrap_or(false),
            is_inherited: prop_bool(v, "IsInherited").unwrap_or(false),
            inheritance_type: prop(v, "InheritanceType").map(str::to_owned),
        }
    }

    pub fn is_self(&self) -> bool {
        self.user_sid.as_deref() == Some(SELF_SID)
            || (self.user_sid.is_none() && self.user.eq_ignore_ascii_case("NT AUTHORITY\\SELF"))
    }

    /// An explicit, allowing Full Access grant to someone other than SELF.
    pub fn is_explicit_full_access(&self) -> bool {
        !self.is_self()
            && !self.deny
            && !self.is_inherited
            && self
                .access_rights
                .iter()
                .any(|r| r.eq_ignore_ascii_case("FullAccess"))
    }
}

/// One row of Get-RecipientPermission, rights split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientPermissionRow {
    pub identity: String,
    pub trustee: String,
    pub trustee_sid: Option<String>,
    pub access_rights: Vec<String>,
    pub access_control_type: Option<String>,
    /// Missing on some tenants' rows: treated as false
    /// (`docs/MICROSOFT.md#get-recipientpermission`).
    pub is_inherited: bool,
}

impl RecipientPermissionRow {
    pub fn from_value(v: &Value) -> Self {
        Self {
            identity: prop(v, "Identity").unwrap_or_default().to_owned(),
            trustee: prop(v, "Trustee").unwrap_or_default().to_owned(),
            trustee_sid: prop(v, "TrusteeSidString").map(str::to_owned),
            access_rights: split_rights(&prop_list(v, "AccessRights")),
            access_control_type: prop(v, "AccessControlType").map(str::to_owned),
            is_inherited: prop_bool(v, "IsInherited").unwrap_or(false),
        }
    }

    pub fn is_self(&self) -> bool {
        self.trustee_sid.as_deref() == Some(SELF_SID)
            || (self.trustee_sid.is_none()
                && self.trustee.eq_ignore_ascii_case("NT AUTHORITY\\SELF"))
    }

    /// An explicit, allowing Send As grant to someone other than SELF.
    pub fn is_explicit_send_as(&self) -> bool {
        !self.is_self()
            && !self.is_inherited
            && !self
                .access_control_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("Deny"))
            && self
                .access_rights
                .iter()
                .any(|r| r.eq_ignore_ascii_case("SendAs"))
    }
}

/// A permission row type as the holder views read it: Get-MailboxPermission rows for Full
/// Access, Get-RecipientPermission rows for Send As.
trait PermissionRow: Sized {
    /// The cmdlet that lists these rows for one recipient.
    const CMDLET: &'static str;
    fn from_value(v: &Value) -> Self;
    /// (trustee as printed, SID, rights) when the row is an explicit, allowing grant of the
    /// right its view is about; `None` for SELF, inherited and deny rows.
    fn explicit_grant(self) -> Option<(String, Option<String>, Vec<String>)>;
}

impl PermissionRow for MailboxPermissionRow {
    const CMDLET: &'static str = "Get-MailboxPermission";
    fn from_value(v: &Value) -> Self {
        MailboxPermissionRow::from_value(v)
    }
    fn explicit_grant(self) -> Option<(String, Option<String>, Vec<String>)> {
        if self.is_explicit_full_access() {
            Some((self.user, self.user_sid, self.access_rights))
        } else {
            None
        }
    }
}

impl PermissionRow for RecipientPermissionRow {
    const CMDLET: &'static str = "Get-RecipientPermission";
    fn from_value(v: &Value) -> Self {
        RecipientPermissionRow::from_value(v)
    }
    fn explicit_grant(self) -> Option<(String, Option<String>, Vec<String>)> {
        if self.is_explicit_send_as() {
            Some((self.trustee, self.trustee_sid, self.access_rights))
        } else {
            None
        }
    }
}

/// `["FullAccess, ReadPermission"]` → `["FullAccess", "ReadPermission"]`.
pub fn split_rights(raw: &[String]) -> Vec<String> {
    raw.iter()
        .flat_map(|e| e.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn is_orphan(value: &str) -> bool {
    value.starts_with(ORPHAN_SID_PREFIX)
}

/// Someone holding Full Access or Send As on a mailbox (one explicit, allowing ACL row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermissionHolder {
    /// As Exchange printed it (UPN, name or SID).
    pub trustee: String,
    pub sid: Option<String>,
    /// The row's access rights, split (`FullAccess`, `ReadPermission`, `SendAs`, …).
    pub rights: Vec<String>,
    pub kind: TrusteeResolution,
    pub recipient: Option<Recipient>,
}

/// A Send on Behalf delegate: the raw value (a name or GUID) and what it resolved to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendOnBehalfDelegate {
    pub raw: String,
    pub kind: TrusteeResolution,
    pub recipient: Option<Recipient>,
}

impl SendOnBehalfDelegate {
    pub fn upn(&self) -> Option<&str> {
        self.recipient
            .as_ref()
            .and_then(|r| r.user_principal_name.as_deref())
    }
    pub fn display_name(&self) -> Option<&str> {
        self.recipient
            .as_ref()
            .and_then(|r| r.display_name.as_deref())
    }
}

/// A mailbox as listed by Get-Mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxRecord {
    pub recipient: Recipient,
    pub hidden_from_address_lists: bool,
    /// Raw `GrantSendOnBehalfTo` values (names or GUIDs).
    pub grant_send_on_behalf_to: Vec<String>,
}

impl MailboxRecord {
    pub fn from_value(v: &Value) -> Self {
        Self {
            recipient: Recipient::from_value(v),
            hidden_from_address_lists: prop_bool(v, "HiddenFromAddressListsEnabled")
                .unwrap_or(false),
            grant_send_on_behalf_to: prop_list(v, "GrantSendOnBehalfTo"),
        }
    }
}

/// Properties asked for when listing recipients.
pub const RECIPIENT_SELECT: &[&str] = &RECIPIENT_PROPERTIES;

const RECIPIENT_PROPERTIES: [&str; 12] = [
    "Identity",
    "Name",
    "Alias",
    "DisplayName",
    "UserPrincipalName",
    "PrimarySmtpAddress",
    "ExternalDirectoryObjectId",
    "Guid",
    "ExchangeObjectId",
    "RecipientType",
    "RecipientTypeDetails",
    "EmailAddresses",
];

/// Properties asked for when listing mailboxes: a recipient's, then the mailbox's own.
pub const MAILBOX_SELECT: &[&str] = &MAILBOX_PROPERTIES;

const MAILBOX_PROPERTIES: [&str; 14] = {
    let own = ["HiddenFromAddressListsEnabled", "GrantSendOnBehalfTo"];
    let mut all = [""; 14];
    let mut i = 0;
    while i < all.len() {
        all[i] = if i < RECIPIENT_PROPERTIES.len() {
            RECIPIENT_PROPERTIES[i]
        } else {
            own[i - RECIPIENT_PROPERTIES.len()]
        };
        i += 1;
    }
    all
};

/// Recipient types of the mail-enabled groups that can be trustees.
pub const GROUP_TYPES: &[&str] = &[
    "MailUniversalSecurityGroup",
    "MailUniversalDistributionGroup",
];

/// A mailbox with its Send on Behalf delegates resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MailboxDetails {
    pub mailbox: Recipient,
    pub hidden_from_address_lists: bool,
    pub send_on_behalf: Vec<SendOnBehalfDelegate>,
}

/// Outcome of a read-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum VerifyOutcome {
    /// Exchange shows the expected state.
    Confirmed { reads: u32 },
    /// Still not visible when the window closed (replication lag, or the change did not apply).
    NotVisible { reads: u32 },
}

/// Pages of parsed rows, as the inventory helpers stream them.
pub type RowPages<T> = Pin<Box<dyn Stream<Item = Result<Vec<T>, ExchangeError>> + Send + 'static>>;

/// A change to apply with an ensure-operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub right: Right,
    /// true: grant; false: remove.
    pub grant: bool,
    pub mailbox: Identity,
    pub trustee: Identity,
    /// Full Access grants only; default true.
    #[serde(default)]
    pub automapping: Option<bool>,
}

const ALREADY_MARKS: &[&str] = &[
    "because the ace doesn't exist on the object",
    "the appropriate access control entry is already present",
    "because the ace isn't present",
    "completed successfully but no settings of",
    "an existing permission entry was found",
];

/// Does a warning say the write changed nothing (`docs/MICROSOFT.md#no-op-warnings`)?
pub fn is_already_in_state_warning(w: &str) -> bool {
    let w = w.to_ascii_lowercase();
    ALREADY_MARKS.iter().any(|m| w.contains(m))
}

fn one(out: CmdletOutput, what: &str) -> Result<Value, ExchangeError> {
    let mut v = out.value;
    match v.len() {
        0 => Err(ExchangeError::NotFound {
            message: format!("{what} returned nothing"),
        }),
        1 => Ok(v.remove(0)),
        n => Err(ExchangeError::Ambiguous {
            message: format!("{what} matched {n} objects"),
        }),
    }
}

impl M365Client {
    /// Resolves one identity to its recipient (mailbox, group, mail user).
    pub async fn resolve_recipient(
        &self,
        tenant: Uuid,
        identity: &Identity,
    ) -> Result<Recipient, ExchangeError> {
        self.resolve_raw(tenant, identity.as_str()).await
    }

    /// Resolves a value: Get-Mailbox first (it carries the UPN), Get-Recipient for
    /// recipients without a mailbox (groups, mail users).
    async fn resolve_raw(&self, tenant: Uuid, value: &str) -> Result<Recipient, ExchangeError> {
        let req = CmdletRequest::new("Get-Mailbox").param("Identity", value);
        match self
            .invoke(tenant, &req)
            .await
            .and_then(|o| one(o, "Get-Mailbox"))
        {
            Ok(v) => return Ok(Recipient::from_value(&v)),
            Err(ExchangeError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let req = CmdletRequest::new("Get-Recipient").param("Identity", value);
        let out = self.invoke(tenant, &req).await?;
        Ok(Recipient::from_value(&one(out, "Get-Recipient")?))
    }

    /// Get-Mailbox for one identity (fails with NotFound for non-mailbox recipients).
    pub async fn mailbox(
        &self,
        tenant: Uuid,
        identity: &Identity,
    ) -> Result<MailboxRecord, ExchangeError> {
        let req = CmdletRequest::new("Get-Mailbox").param("Identity", identity.as_str());
        let out = self.invoke(tenant, &req).await?;
        Ok(MailboxRecord::from_value(&one(out, "Get-Mailbox")?))
    }

    /// Resolves many raw values (names/GUIDs Exchange printed) through `$batch`; `None` for
    /// values that do not resolve.
    async fn resolve_many(
        &self,
        tenant: Uuid,
        values: &[String],
    ) -> Result<HashMap<String, Option<Recipient>>, ExchangeError> {
        let mut unique: Vec<String> = Vec::new();
        for v in values {
            if !is_orphan(v) && !unique.iter().any(|u| u.eq_ignore_ascii_case(v)) {
                unique.push(v.clone());
            }
        }
        let mut map = HashMap::new();
        // Get-Mailbox first (it carries the UPN), then Get-Recipient for what is not a mailbox.
        let mut rest = unique;
        for cmdlet in ["Get-Mailbox", "Get-Recipient"] {
            if rest.is_empty() {
                break;
            }
            let reqs = rest
                .iter()
                .map(|v| CmdletRequest::new(cmdlet).param("Identity", v.as_str()))
                .collect();
            let results = self.batch_read(tenant, reqs).await;
            let mut missing = Vec::new();
            for (v, r) in rest.into_iter().zip(results) {
                match r.and_then(|o| one(o, cmdlet)) {
                    Ok(val) => {
                        map.insert(v.to_ascii_lowercase(), Some(Recipient::from_value(&val)));
                    }
                    Err(ExchangeError::NotFound { .. }) => missing.push(v),
                    Err(ExchangeError::Ambiguous { .. }) => {
                        map.insert(v.to_ascii_lowercase(), None);
                    }
                    Err(e) => return Err(e),
                }
            }
            rest = missing;
        }
        for v in rest {
            map.insert(v.to_ascii_lowercase(), None);
        }
        Ok(map)
    }

    fn classify_trustee(
        value: &str,
        resolved: Option<&Option<Recipient>>,
    ) -> (TrusteeResolution, Option<Recipient>) {
        if is_orphan(value) {
            return (TrusteeResolution::Orphan, None);
        }
        match resolved {
            Some(Some(r)) if r.is_group() => (TrusteeResolution::Group, Some(r.clone())),
            Some(Some(r)) => (TrusteeResolution::User, Some(r.clone())),
            _ => (TrusteeResolution::Unresolved, None),
        }
    }

    /// Resolves the values Exchange printed (through `$batch`) and classifies each; one answer
    /// per value, in order.
    async fn classify_trustees(
        &self,
        tenant: Uuid,
        values: &[String],
    ) -> Result<Vec<(TrusteeResolution, Option<Recipient>)>, ExchangeError> {
        let resolved = self.resolve_many(tenant, values).await?;
        Ok(values
            .iter()
            .map(|v| Self::classify_trustee(v, resolved.get(&v.to_ascii_lowercase())))
            .collect())
    }

    /// Mailbox details, with Send on Behalf delegates resolved to UPN and display name.
    pub async fn mailbox_details(
        &self,
        tenant: Uuid,
        identity: &Identity,
    ) -> Result<MailboxDetails, ExchangeError> {
        let mbx = self.mailbox(tenant, identity).await?;
        let classified = self
            .classify_trustees(tenant, &mbx.grant_send_on_behalf_to)
            .await?;
        let send_on_behalf = mbx
            .grant_send_on_behalf_to
            .iter()
            .zip(classified)
            .map(|(raw, (kind, recipient))| SendOnBehalfDelegate {
                raw: raw.clone(),
                kind,
                recipient,
            })
            .collect();
        Ok(MailboxDetails {
            mailbox: mbx.recipient,
            hidden_from_address_lists: mbx.hidden_from_address_lists,
            send_on_behalf,
        })
    }

    /// Every row `R::CMDLET` lists for one recipient (unfiltered, rights split).
    async fn permission_rows<R: PermissionRow>(
        &self,
        tenant: Uuid,
        identity: &str,
    ) -> Result<Vec<R>, ExchangeError> {
        let req = CmdletRequest::new(R::CMDLET)
            .param("Identity", identity)
            .unlimited();
        let out = self.invoke(tenant, &req).await?;
        Ok(out.value.iter().map(R::from_value).collect())
    }

    /// Every Get-MailboxPermission row of one mailbox (unfiltered, rights split).
    pub async fn mailbox_permission_rows(
        &self,
        tenant: Uuid,
        mailbox: &str,
    ) -> Result<Vec<MailboxPermissionRow>, ExchangeError> {
        self.permission_rows(tenant, mailbox).await
    }

    /// Every Get-RecipientPermission row of one recipient (unfiltered, rights split).
    pub async fn recipient_permission_rows(
        &self,
        tenant: Uuid,
        mailbox: &str,
    ) -> Result<Vec<RecipientPermissionRow>, ExchangeError> {
        self.permission_rows(tenant, mailbox).await
    }

    /// The holders of the explicit, allowing `R` rows of `mailbox`, their trustees resolved and
    /// classified.
    async fn holders<R: PermissionRow>(
        &self,
        tenant: Uuid,
        mailbox: &Identity,
    ) -> Result<Vec<PermissionHolder>, ExchangeError> {
        let grants: Vec<_> = self
            .permission_rows::<R>(tenant, mailbox.as_str())
            .await?
            .into_iter()
            .filter_map(R::explicit_grant)
            .collect();
        let names: Vec<String> = grants.iter().map(|(trustee, ..)| trustee.clone()).collect();
        let classified = self.classify_trustees(tenant, &names).await?;
        Ok(grants
            .into_iter()
            .zip(classified)
            .map(
                |((trustee, sid, rights), (kind, recipient))| PermissionHolder {
                    trustee,
                    sid,
                    rights,
                    kind,
                    recipient,
                },
            )
            .collect())
    }

    /// Who holds Full Access on `mailbox` (SELF, inherited and deny rows left out).
    pub async fn full_access_holders(
        &self,
        tenant: Uuid,
        mailbox: &Identity,
    ) -> Result<Vec<PermissionHolder>, ExchangeError> {
        self.holders::<MailboxPermissionRow>(tenant, mailbox).await
    }

    /// Who holds Send As on `mailbox` (SELF, inherited and deny rows left out).
    pub async fn send_as_holders(
        &self,
        tenant: Uuid,
        mailbox: &Identity,
    ) -> Result<Vec<PermissionHolder>, ExchangeError> {
        self.holders::<RecipientPermissionRow>(tenant, mailbox)
            .await
    }

    /// Does `trustee` currently hold `right` on `mailbox` (one read)?
    pub async fn holds(
        &self,
        tenant: Uuid,
        right: Right,
        mailbox: &Recipient,
        trustee: &Recipient,
    ) -> Result<bool, ExchangeError> {
        let mbx = mailbox.canonical();
        Ok(match right {
            Right::FullAccess => self
                .mailbox_permission_rows(tenant, mbx)
                .await?
                .iter()
                .any(|r| {
                    r.is_explicit_full_access()
                        && (trustee.matches(&r.user)
                            || r.user_sid.as_deref().is_some_and(|s| trustee.matches(s)))
                }),
            Right::SendAs => self
                .recipient_permission_rows(tenant, mbx)
                .await?
                .iter()
                .any(|r| r.is_explicit_send_as() && trustee.matches(&r.trustee)),
            Right::SendOnBehalf => {
                let req = CmdletRequest::new("Get-Mailbox").param("Identity", mbx);
                let rec = MailboxRecord::from_value(&one(
                    self.invoke(tenant, &req).await?,
                    "Get-Mailbox",
                )?);
                rec.grant_send_on_behalf_to
                    .iter()
                    .any(|d| trustee.matches(d))
            }
        })
    }

    fn write_request(change: &Change, mailbox: &Recipient, trustee: &Recipient) -> CmdletRequest {
        let mbx = mailbox.canonical();
        let who = trustee.canonical();
        match (change.right, change.grant) {
            (Right::FullAccess, true) => CmdletRequest::new("Add-MailboxPermission")
                .param("Identity", mbx)
                .param("User", who)
                .param("AccessRights", json!(["FullAccess"]))
                .param("InheritanceType", "All")
                .param("AutoMapping", change.automapping.unwrap_or(true))
                .no_confirm(),
            (Right::FullAccess, false) => CmdletRequest::new("Remove-MailboxPermission")
                .param("Identity", mbx)
                .param("User", who)
                .param("AccessRights", json!(["FullAccess"]))
                .param("InheritanceType", "All")
                .no_confirm(),
            (Right::SendAs, grant) => CmdletRequest::new(if grant {
                "Add-RecipientPermission"
            } else {
                "Remove-RecipientPermission"
            })
            .param("Identity", mbx)
            .param("Trustee", who)
            .param("AccessRights", json!(["SendAs"]))
            .no_confirm(),
            (Right::SendOnBehalf, grant) => CmdletRequest::new("Set-Mailbox")
                .param("Identity", mbx)
                .param(
                    "GrantSendOnBehalfTo",
                    json!({
                        "@odata.type": "#Exchange.GenericHashTable",
                        (if grant { "Add" } else { "Remove" }): [who],
                    }),
                )
                .no_confirm(),
        }
    }

    /// Applies `change` if needed. Never blindly repeats a write: after an ambiguous failure it
    /// re-reads the state and only re-issues the write if the state is still not as asked.
    pub async fn ensure(
        &self,
        tenant: Uuid,
        change: &Change,
    ) -> Result<EnsureReport, ExchangeError> {
        let mailbox = self.mailbox(tenant, &change.mailbox).await?.recipient;
        let trustee = if is_orphan(change.trustee.as_str()) {
            // A deleted principal left in an ACL: nothing to resolve, Exchange takes the SID.
            Recipient {
                identity: change.trustee.as_str().to_owned(),
                ..Recipient::default()
            }
        } else {
            self.resolve_recipient(tenant, &change.trustee).await?
        };
        let report = |outcome, warnings, write_attempts| EnsureReport {
            outcome,
            warnings,
            write_attempts,
            mailbox: mailbox.clone(),
            trustee: trustee.clone(),
        };
        // Add-MailboxPermission may be silent on a duplicate: read first.
        if change.right == Right::FullAccess
            && change.grant
            && self.holds(tenant, change.right, &mailbox, &trustee).await?
        {
            return Ok(report(EnsureOutcome::AlreadyInState, Vec::new(), 0));
        }
        let req = Self::write_request(change, &mailbox, &trustee);
        let limits = &self.inner.limits;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.invoke_write(tenant, &req).await {
                Ok(out) => {
                    let already = out.warnings.iter().any(|w| is_already_in_state_warning(w));
                    let outcome = if already {
                        EnsureOutcome::AlreadyInState
                    } else {
                        EnsureOutcome::Changed
                    };
                    return Ok(report(outcome, out.warnings, attempt));
                }
                Err(e) if e.is_retryable() && attempt < limits.max_write_attempts.max(1) => {
                    tracing::info!(%tenant, cmdlet = %req.cmdlet, attempt, error = %e, "write failed ambiguously; re-reading before any retry");
                    self.inner
                        .clock
                        .sleep(backoff_delay(limits, attempt, e.retry_after()))
                        .await;
                    let holds = self.holds(tenant, change.right, &mailbox, &trustee).await?;
                    if holds == change.grant {
                        return Ok(report(EnsureOutcome::Changed, Vec::new(), attempt));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads back until Exchange shows `trustee` holding (`expect_present`) or not holding
    /// `right` on `mailbox`, with backoff, for at most `Limits::verify_window` on the client's
    /// clock (replication lag).
    pub async fn verify(
        &self,
        tenant: Uuid,
        right: Right,
        mailbox: &Recipient,
        trustee: &Recipient,
        expect_present: bool,
    ) -> Result<VerifyOutcome, ExchangeError> {
        let clock = &self.inner.clock;
        let deadline = clock.now() + self.inner.limits.verify_window;
        let mut reads = 0u32;
        let mut delay = Duration::from_millis(500);
        loop {
            reads += 1;
            if self.holds(tenant, right, mailbox, trustee).await? == expect_present {
                return Ok(VerifyOutcome::Confirmed { reads });
            }
            let now = clock.now();
            if now >= deadline {
                return Ok(VerifyOutcome::NotVisible { reads });
            }
            let left: Duration = (deadline - now).try_into().unwrap_or_default();
            clock.sleep(delay.min(left)).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        }
    }

    /// A paged read as a stream of pages, each page's rows parsed with `parse`.
    fn row_pages<T: Send + 'static>(
        &self,
        tenant: Uuid,
        req: CmdletRequest,
        parse: fn(&Value) -> T,
    ) -> RowPages<T> {
        Box::pin(
            self.pages(tenant, req)
                .map(move |p| p.map(|p| p.value.iter().map(parse).collect())),
        )
    }

    /// All mailboxes (Get-Mailbox, `ResultSize: Unlimited`, `$select` of [`MAILBOX_SELECT`]) as
    /// a stream of pages. A failure after the first page ends the stream with an
    /// [`ExchangeError::IncompleteList`].
    pub fn mailbox_pages(&self, tenant: Uuid) -> RowPages<MailboxRecord> {
        let req = CmdletRequest::new("Get-Mailbox")
            .unlimited()
            .select(MAILBOX_SELECT);
        self.row_pages(tenant, req, MailboxRecord::from_value)
    }

    /// Every mail-enabled group (Get-Recipient, `RecipientTypeDetails` of [`GROUP_TYPES`],
    /// `ResultSize: Unlimited`, `$select` of [`RECIPIENT_SELECT`]) as a stream of pages: the
    /// groups that can hold rights on mailboxes, listed once instead of looked up one by one.
    pub fn group_pages(&self, tenant: Uuid) -> RowPages<Recipient> {
        let req = CmdletRequest::new("Get-Recipient")
            .param("RecipientTypeDetails", GROUP_TYPES)
            .unlimited()
            .select(RECIPIENT_SELECT);
        self.row_pages(tenant, req, Recipient::from_value)
    }

    /// Tenant-wide Send As (Get-RecipientPermission without Identity, `ResultSize: Unlimited`),
    /// unfiltered rows as a stream of pages.
    pub fn recipient_permission_pages(&self, tenant: Uuid) -> RowPages<RecipientPermissionRow> {
        let req = CmdletRequest::new("Get-RecipientPermission").unlimited();
        self.row_pages(tenant, req, RecipientPermissionRow::from_value)
    }

    /// One read per request through `$batch`, each answer's rows parsed with `parse`; one
    /// result per request, in order.
    async fn rows_many<T>(
        &self,
        tenant: Uuid,
        reqs: Vec<CmdletRequest>,
        parse: fn(&Value) -> T,
    ) -> Vec<Result<Vec<T>, ExchangeError>> {
        self.batch_read(tenant, reqs)
            .await
            .into_iter()
            .map(|r| r.map(|o| o.value.iter().map(parse).collect()))
            .collect()
    }

    /// The direct members of many mail-enabled groups (Get-DistributionGroupMember,
    /// `ResultSize: Unlimited`) through `$batch`; one result per group, in order. A group
    /// Exchange does not know as a mail-enabled group answers [`ExchangeError::NotFound`].
    pub async fn group_members_many(
        &self,
        tenant: Uuid,
        groups: &[String],
    ) -> Vec<Result<Vec<Recipient>, ExchangeError>> {
        let reqs = groups
            .iter()
            .map(|g| {
                CmdletRequest::new("Get-DistributionGroupMember")
                    .param("Identity", g.as_str())
                    .unlimited()
                    .select(RECIPIENT_SELECT)
            })
            .collect();
        self.rows_many(tenant, reqs, Recipient::from_value).await
    }

    /// Looks many values up at once (one Get-Recipient per value through `$batch`, no
    /// Get-Mailbox round first): mailboxes, groups and mail users alike. One result per value,
    /// in order: the recipient, or [`ExchangeError::NotFound`] / [`ExchangeError::Ambiguous`]
    /// when the value names none or several.
    pub async fn recipients_many(
        &self,
        tenant: Uuid,
        values: &[String],
    ) -> Vec<Result<Recipient, ExchangeError>> {
        let reqs = values
            .iter()
            .map(|v| CmdletRequest::new("Get-Recipient").param("Identity", v.as_str()))
            .collect();
        self.batch_read(tenant, reqs)
            .await
            .into_iter()
            .map(|r| {
                r.and_then(|o| one(o, "Get-Recipient"))
                    .map(|v| Recipient::from_value(&v))
            })
            .collect()
    }

    /// Get-MailboxPermission for many mailboxes through `$batch`; one result per mailbox, in order.
    pub async fn mailbox_permissions_many(
        &self,
        tenant: Uuid,
        mailboxes: &[String],
    ) -> Vec<Result<Vec<MailboxPermissionRow>, ExchangeError>> {
        let reqs = mailboxes
            .iter()
            .map(|m| {
                CmdletRequest::new("Get-MailboxPermission")
                    .param("Identity", m.as_str())
                    .unlimited()
            })
            .collect();
        self.rows_many(tenant, reqs, MailboxPermissionRow::from_value)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_filter_self_inherited_deny() {
        let rows: Vec<MailboxPermissionRow> = [
            json!({"Identity":"s","User":"NT AUTHORITY\\SELF","UserSid":"S-1-5-10","AccessRights":["FullAccess, ReadPermission"],"Deny":false,"IsInherited":false}),
            json!({"Identity":"s","User":"alice@c.com","UserSid":"S-1-5-21-1-2-3-4","AccessRights@odata.type":"#Collection(String)","AccessRights":["FullAccess, ReadPermission"],"Deny":false,"IsInherited":false}),
            json!({"Identity":"s","User":"Domain Admins","AccessRights":["FullAccess"],"Deny":true,"IsInherited":true}),
            json!({"Identity":"s","User":"Org","AccessRights":["FullAccess"],"Deny":false,"IsInherited":true}),
        ]
        .iter()
        .map(MailboxPermissionRow::from_value)
        .collect();
        assert_eq!(rows[1].access_rights, vec!["FullAccess", "ReadPermission"]);
        let kept: Vec<_> = rows
            .iter()
            .filter(|r| r.is_explicit_full_access())
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].user, "alice@c.com");
    }

    #[test]
    fn mailbox_select_is_the_recipient_select_and_the_mailbox_properties() {
        let n = RECIPIENT_SELECT.len();
        assert_eq!(&MAILBOX_SELECT[..n], RECIPIENT_SELECT);
        // (inventory-truth) Proxy addresses, for the inventory's own directory.
        assert!(RECIPIENT_SELECT.contains(&"EmailAddresses"));
        assert_eq!(
            &MAILBOX_SELECT[n..],
            ["HiddenFromAddressListsEnabled", "GrantSendOnBehalfTo"]
        );
    }

    #[test]
    fn warnings() {
        assert!(is_already_in_state_warning(
            "Can't remove the access control entry on the object \"x\" for account \"y\" because the ACE doesn't exist on the object."
        ));
        assert!(is_already_in_state_warning(
            "The command completed successfully but no settings of 'x' have been modified."
        ));
        assert!(!is_already_in_state_warning("Something else"));
    }

    #[test]
    fn sob_write_is_a_hashtable_never_an_array() {
        let m = Recipient {
            identity: "sales".into(),
            user_principal_name: Some("sales@c.com".into()),
            ..Default::default()
        };
        let t = Recipient {
            identity: "alice".into(),
            user_principal_name: Some("alice@c.com".into()),
            ..Default::default()
        };
        let change = Change {
            right: Right::SendOnBehalf,
            grant: true,
            mailbox: Identity::parse("sales").unwrap(),
            trustee: Identity::parse("alice").unwrap(),
            automapping: None,
        };
        let req = M365Client::write_request(&change, &m, &t);
        assert_eq!(
            req.parameters["GrantSendOnBehalfTo"],
            json!({"@odata.type":"#Exchange.GenericHashTable","Add":["alice@c.com"]})
        );
        assert_eq!(req.parameters["Confirm"], json!(false));
    }

    #[test]
    fn recipient_matching() {
        let r = Recipient {
            identity: "7cdbe897-3c7f-4fb6-a369-56408d68081f".into(),
            name: Some("alice".into()),
            user_principal_name: Some("Alice@C.com".into()),
            ..Default::default()
        };
        assert!(r.matches("alice@c.com"));
        assert!(r.matches("CONTOSO\\alice"));
        assert!(r.matches("7CDBE897-3C7F-4FB6-A369-56408D68081F"));
        assert!(!r.matches("bob"));
    }
}
