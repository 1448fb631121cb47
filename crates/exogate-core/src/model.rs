//! Value types of the domain. Every newtype is parsed at construction and has no setters, so a
//! value that exists is valid. None of them derive `Serialize`: wire types live at the edges.

use std::collections::BTreeSet;
use std::fmt;

use uuid::Uuid;

use crate::error::CoreError;

// ---------------------------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------------------------

/// A point in time, in whole milliseconds since the Unix epoch (UTC). Time is always an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_unix_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn from_unix_secs(s: i64) -> Self {
        Self(s.saturating_mul(1000))
    }
    pub const fn unix_millis(self) -> i64 {
        self.0
    }
    pub const fn unix_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub fn from_offset_date_time(t: time::OffsetDateTime) -> Self {
        let ms = t.unix_timestamp_nanos() / 1_000_000;
        Self(i64::try_from(ms).unwrap_or(i64::MAX))
    }
    pub fn to_offset_date_time(self) -> time::OffsetDateTime {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    }
    #[must_use]
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }
    #[must_use]
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339, UTC.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.to_offset_date_time();
        match t.format(&time::format_description::well_known::Rfc3339) {
            Ok(s) => f.write_str(&s),
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------------

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident, $field:literal) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);
        impl $name {
            pub const fn from_uuid(u: Uuid) -> Self {
                Self(u)
            }
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
            /// Parses the hyphenated form (any case).
            pub fn parse(s: &str) -> Result<Self, CoreError> {
                Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| CoreError::invalid($field, format!("`{}` is not a UUID", clip(s))))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }
        impl std::str::FromStr for $name {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self, CoreError> {
                Self::parse(s)
            }
        }
    };
}

uuid_id!(
    /// A local user.
    UserId,
    "user_id"
);
uuid_id!(
    /// An approval request; a UUIDv7 chosen by the caller so ids sort by creation time.
    RequestId,
    "request_id"
);
uuid_id!(
    /// An API token (the id, never the secret).
    ApiTokenId,
    "token_id"
);
uuid_id!(
    /// A Microsoft Entra tenant (directory) id.
    TenantId,
    "tenant_id"
);

/// Cuts user input down for error messages.
pub(crate) fn clip(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .filter(|c| !crate::text::is_hidden(*c))
        .take(64)
        .collect();
    if s.chars().count() > 64 {
        format!("{cleaned}…")
    } else {
        cleaned
    }
}

/// A company (customer of the MSP): a lowercase slug, `[a-z0-9][a-z0-9-]{0,62}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompanyId(String);

impl CompanyId {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if !ok {
            return Err(CoreError::invalid(
                "company_id",
                format!(
                    "`{}` is not a company id: use 1 to 63 lowercase letters, digits and inner hyphens",
                    clip(s)
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name: `[A-Za-z0-9._@-]`, 1..=64 characters, stored lowercase.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if !ok {
            return Err(CoreError::invalid(
                "user_name",
                format!(
                    "`{}` is not a user name: use 1 to 64 letters, digits, `.`, `_`, `-`, `@`",
                    clip(s)
                ),
            ));
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A short free-text label (company name, token name, agent name, reasons): trimmed, no control
/// or invisible formatting characters, at most `max` characters.
pub fn parse_label(field: &'static str, s: &str, max: usize) -> Result<String, CoreError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(CoreError::invalid(field, "must not be empty".to_owned()));
    }
    if t.chars().count() > max {
        return Err(CoreError::invalid(
            field,
            format!("longer than {max} characters"),
        ));
    }
    if crate::text::first_hidden(t).is_some() {
        return Err(CoreError::invalid(
            field,
            "contains control or invisible characters".to_owned(),
        ));
    }
    Ok(t.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Roles and entitlements
// ---------------------------------------------------------------------------------------------

/// What a user may do, ordered: viewer < technician < manager < admin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Technician,
    Manager,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Technician, Role::Manager, Role::Admin];
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Technician => "technician",
            Role::Manager => "manager",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                CoreError::invalid(
                    "role",
                    format!(
                        "`{}` is not one of viewer, technician, manager, admin",
                        clip(s)
                    ),
                )
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which companies a user (and the user's agents) may see and act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entitlement {
    All,
    Companies(BTreeSet<CompanyId>),
}

impl Entitlement {
    pub fn covers(&self, company: &CompanyId) -> bool {
        match self {
            Entitlement::All => true,
            Entitlement::Companies(set) => set.contains(company),
        }
    }
    /// `*` for all, otherwise company ids joined by `,` (sorted). Used for storage and the CLI.
    pub fn encode(&self) -> String {
        match self {
            Entitlement::All => "*".to_owned(),
            Entitlement::Companies(set) => set
                .iter()
                .map(CompanyId::as_str)
                .collect::<Vec<_>>()
                .join(","),
        }
    }
    /// Inverse of [`Entitlement::encode`]; an empty string means no company.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        if s == "*" {
            return Ok(Entitlement::All);
        }
        let mut set = BTreeSet::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            set.insert(CompanyId::parse(part)?);
        }
        Ok(Entitlement::Companies(set))
    }
}

// ---------------------------------------------------------------------------------------------
// Mailbox / trustee identities
// ---------------------------------------------------------------------------------------------

/// What a person or agent typed to name a mailbox or trustee, before Exchange resolves it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdentityInput {
    raw: String,
    kind: IdentityInputKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentityInputKind {
    /// Contains `@`: a UPN or an SMTP address (Exchange accepts either).
    Email,
    /// An object id (GUID).
    Guid,
    /// An alias or display name.
    Alias,
}

impl IdentityInput {
    pub const MAX_LEN: usize = 256;

    /// Accepts a UPN, SMTP address, GUID or alias. Rejects wildcards, quotes, control and
    /// invisible characters, characters with meaning to PowerShell or filters, and over-long input.
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        let field = "identity";
        let t = s.trim();
        if t.is_empty() {
            return Err(CoreError::invalid(field, "must not be empty".to_owned()));
        }
        if t.chars().count() > Self::MAX_LEN {
            return Err(CoreError::invalid(
                field,
                format!("longer than {} characters", Self::MAX_LEN),
            ));
        }
        if let Some(c) = crate::text::first_hidden(t) {
            return Err(CoreError::invalid(
                field,
                format!(
                    "contains the control or invisible character U+{:04X}",
                    c as u32
                ),
            ));
        }
        const FORBIDDEN: &[char] = &[
            '*', '?', '%', '"', '\'', '`', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', ';',
            '|', '&', '$', '{', '}', '(', ')', '[', ']', '<', '>', '\\', '/', ',', '=', '#', '!',
            '~', '^',
        ];
        if let Some(c) = t.chars().find(|c| FORBIDDEN.contains(c)) {
            return Err(CoreError::invalid(
                field,
                format!("`{c}` is not allowed in a mailbox or user identity"),
            ));
        }
        let kind = if Uuid::parse_str(t).is_ok() && t.len() == 36 {
            IdentityInputKind::Guid
        } else if t.contains('@') {
            let mut parts = t.split('@');
            let (local, domain) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            if local.is_empty()
                || domain.is_empty()
                || parts.next().is_some()
                || !domain.contains('.')
                || t.chars().any(char::is_whitespace)
            {
                return Err(CoreError::invalid(
                    field,
                    format!("`{}` is not a valid address", clip(t)),
                ));
            }
            IdentityInputKind::Email
        } else {
            IdentityInputKind::Alias
        };
        let raw = if kind == IdentityInputKind::Guid {
            t.to_ascii_lowercase()
        } else {
            t.to_owned()
        };
        Ok(Self { raw, kind })
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn kind(&self) -> IdentityInputKind {
        self.kind
    }
}

impl fmt::Display for IdentityInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// The kind of Exchange recipient an identity resolved to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    UserMailbox,
    SharedMailbox,
    RoomMailbox,
    EquipmentMailbox,
    Group,
    MailUser,
    Other,
}

impl RecipientKind {
    pub const ALL: [RecipientKind; 7] = [
        RecipientKind::UserMailbox,
        RecipientKind::SharedMailbox,
        RecipientKind::RoomMailbox,
        RecipientKind::EquipmentMailbox,
        RecipientKind::Group,
        RecipientKind::MailUser,
        RecipientKind::Other,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientKind::UserMailbox => "user_mailbox",
            RecipientKind::SharedMailbox => "shared_mailbox",
            RecipientKind::RoomMailbox => "room_mailbox",
            RecipientKind::EquipmentMailbox => "equipment_mailbox",
            RecipientKind::Group => "group",
            RecipientKind::MailUser => "mail_user",
            RecipientKind::Other => "other",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Whether the recipient is a mailbox (a valid target for delegation).
    pub fn is_mailbox(self) -> bool {
        matches!(
            self,
            RecipientKind::UserMailbox
                | RecipientKind::SharedMailbox
                | RecipientKind::RoomMailbox
                | RecipientKind::EquipmentMailbox
        )
    }
}

/// A mailbox or trustee as Exchange knows it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResolvedIdentity {
    /// Entra object id (ExternalDirectoryObjectId), lowercase.
    pub object_id: String,
    /// UPN, or primary SMTP address for recipients without a UPN.
    pub primary_address: String,
    pub display_name: String,
    pub kind: RecipientKind,
}

// ---------------------------------------------------------------------------------------------
// Companies, connections, Exchange Admin status
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Company {
    pub id: CompanyId,
    pub name: String,
    pub connection: Option<Connection>,
    pub exchange_status: Option<StatusRecord>,
    /// When on, nobody can approve a request that they (or their agent) made.
    pub separate_approver: bool,
    pub created_at: Timestamp,
}

/// The Microsoft 365 link of a company, made through admin consent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub tenant_id: TenantId,
    pub display_name: String,
    pub default_domain: String,
    pub connected_at: Timestamp,
}

/// The last Exchange Admin status check of a connected company.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRecord {
    pub state: ExchangeAdminState,
    pub checked_at: Timestamp,
    /// When the state was last determined without a `check_failed` (None if never).
    pub last_good_at: Option<Timestamp>,
    /// The state of the last check that did not fail (shown while `state` is `check_failed`).
    pub last_good_state: Option<ExchangeAdminState>,
    /// The evidence (AADSTS code, HTTP status, missing role), never a secret.
    pub detail: String,
}

impl StatusRecord {
    /// The badge to show: for `check_failed`, the last good state when there is one.
    pub fn shown_state(&self) -> ExchangeAdminState {
        match (self.state, self.last_good_state) {
            (ExchangeAdminState::CheckFailed, Some(s)) => s,
            (s, _) => s,
        }
    }
    /// Whether the last check failed (show a warning with `last_good_at`).
    pub fn check_failed(&self) -> bool {
        self.state == ExchangeAdminState::CheckFailed
    }
}

/// The Exchange Admin badge (`docs/DOMAIN.md#exchange-admin-status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExchangeAdminState {
    NotConfigured,
    RoleMissing,
    Propagating,
    Configured,
    TenantNotFound,
    WrongTenant,
    AppCredentialsInvalid,
    CheckFailed,
}

/// How a badge looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadgeColour {
    Red,
    Amber,
    Green,
}

impl ExchangeAdminState {
    pub const ALL: [ExchangeAdminState; 8] = [
        ExchangeAdminState::NotConfigured,
        ExchangeAdminState::RoleMissing,
        ExchangeAdminState::Propagating,
        ExchangeAdminState::Configured,
        ExchangeAdminState::TenantNotFound,
        ExchangeAdminState::WrongTenant,
        ExchangeAdminState::AppCredentialsInvalid,
        ExchangeAdminState::CheckFailed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeAdminState::NotConfigured => "not_configured",
            ExchangeAdminState::RoleMissing => "role_missing",
            ExchangeAdminState::Propagating => "propagating",
            ExchangeAdminState::Configured => "configured",
            ExchangeAdminState::TenantNotFound => "tenant_not_found",
            ExchangeAdminState::WrongTenant => "wrong_tenant",
            ExchangeAdminState::AppCredentialsInvalid => "app_credentials_invalid",
            ExchangeAdminState::CheckFailed => "check_failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Badge text. `check_failed` shows the last known badge plus a warning; this is the warning.
    pub fn badge(self) -> &'static str {
        match self {
            ExchangeAdminState::NotConfigured => "Not configured",
            ExchangeAdminState::RoleMissing => "Role missing",
            ExchangeAdminState::Propagating => "Waiting for Microsoft",
            ExchangeAdminState::Configured => "Exchange Admin",
            ExchangeAdminState::TenantNotFound => "Tenant ID not found",
            ExchangeAdminState::WrongTenant => "Consent went to another tenant",
            ExchangeAdminState::AppCredentialsInvalid => "exogate credentials rejected",
            ExchangeAdminState::CheckFailed => "Check failed",
        }
    }
    pub fn colour(self) -> BadgeColour {
        match self {
            ExchangeAdminState::Configured => BadgeColour::Green,
            ExchangeAdminState::Propagating | ExchangeAdminState::CheckFailed => BadgeColour::Amber,
            _ => BadgeColour::Red,
        }
    }
    /// What the user is told to do (empty for `configured`).
    pub fn fix(self) -> &'static str {
        match self {
            ExchangeAdminState::NotConfigured => {
                "Step 1: Authorize. Sign in as a Global Administrator of the customer's tenant and grant consent to the exogate Exchange app."
            }
            ExchangeAdminState::RoleMissing => {
                "Step 2: assign the Exchange Administrator role (or, least privilege, Exchange Recipient Administrator) to the exogate Exchange app in the customer's tenant, wait 1-2 minutes, then Re-check."
            }
            ExchangeAdminState::Propagating => {
                "Permissions are propagating at Microsoft. This page re-checks by itself."
            }
            ExchangeAdminState::Configured => "",
            ExchangeAdminState::TenantNotFound => {
                "Microsoft does not know this tenant any more. Disconnect and reconnect Microsoft 365."
            }
            ExchangeAdminState::WrongTenant => {
                "Consent was given in another tenant. Sign in as an administrator of the customer's tenant, not your own."
            }
            ExchangeAdminState::AppCredentialsInvalid => {
                "Microsoft rejected exogate's own app credentials. An administrator of the MSP must renew the app secret or certificate."
            }
            ExchangeAdminState::CheckFailed => {
                "Microsoft could not be reached or throttled the check. It is retried; the badge shows the last good result."
            }
        }
    }
    /// Whether write tools may run.
    pub fn allows_changes(self) -> bool {
        self == ExchangeAdminState::Configured
    }
}

// ---------------------------------------------------------------------------------------------
// Users, tokens, channels, actors
// ---------------------------------------------------------------------------------------------

/// An argon2 PHC string made by the edge. `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn new(phc: String) -> Self {
        Self(phc)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub name: UserName,
    pub role: Role,
    pub entitlement: Entitlement,
    pub disabled: bool,
    pub password_hash: Option<PasswordHash>,
    pub created_at: Timestamp,
}

/// An API token for MCP or the JSON API. Only the SHA-256 of the secret is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    pub id: ApiTokenId,
    pub owner: UserId,
    pub name: String,
    /// Lowercase hex SHA-256 of the secret ([`hash_token_secret`]).
    pub secret_hash: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// The stored form of an API token secret: lowercase hex SHA-256.
pub fn hash_token_secret(secret: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(secret.as_bytes()))
}

/// How a request reached exogate.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Web,
    Api,
    Cli,
    /// An AI agent through MCP, authenticated with an API token of the user.
    Mcp {
        token: ApiTokenId,
        agent: Option<String>,
    },
}

impl Channel {
    pub fn kind(&self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Api => "api",
            Channel::Cli => "cli",
            Channel::Mcp { .. } => "mcp",
        }
    }
    pub fn is_mcp(&self) -> bool {
        matches!(self, Channel::Mcp { .. })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Channel::Mcp {
                token,
                agent: Some(a),
            } => write!(f, "mcp(token={token}, agent={a})"),
            Channel::Mcp { token, agent: None } => write!(f, "mcp(token={token})"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Who is acting: a user (as currently stored) and the channel they came through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user: User,
    pub channel: Channel,
}

/// Who made a request: recorded on the request and compared by the separate-approver rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requester {
    pub user: UserId,
    pub user_name: UserName,
    pub channel: Channel,
}

/// A web session row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: String,
    pub data: String,
    pub expires_at: Timestamp,
}

/// What an OAuth consent `state` was issued for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentPurpose {
    /// Connect app consent (connect / reconnect Microsoft 365).
    Connect,
    /// Exchange app consent (the Authorize step, `docs/DOMAIN.md#exchange-admin-status`).
    Authorize,
    /// Connect app consent in a new tenant, typed up front by a manager: moves the company.
    Move,
}

impl ConsentPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentPurpose::Connect => "connect",
            ConsentPurpose::Authorize => "authorize",
            ConsentPurpose::Move => "move",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connect" => Some(ConsentPurpose::Connect),
            "authorize" => Some(ConsentPurpose::Authorize),
            "move" => Some(ConsentPurpose::Move),
            _ => None,
        }
    }
}

/// A single-use OAuth `state`, stored as a hash of the value sent to Microsoft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentState {
    pub state_hash: String,
    pub company: CompanyId,
    pub user: UserId,
    pub session_id: Option<String>,
    pub purpose: ConsentPurpose,
    /// The tenant the consent is expected to land in: the company's tenant (reconnect /
    /// authorize), the tenant typed for a first connect or a move; None only for a first connect
    /// where the admin picks the tenant at Microsoft (`organizations`).
    pub expected_tenant: Option<TenantId>,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}
