//! Access reviews (recertification): a campaign copies the inventory's rows of its scope at its
//! start into items; reviewers decide keep or remove for each; closing turns each company's
//! removals into ONE approval request through the normal gate; the report says who decided
//! what and when, and what became of the removals.
//!
//! Reviewers without an exogate account use a signed, single-purpose, expiring link
//! ([`sign_link`], [`check_link_mac`]): a random secret the store keeps only as a hash, plus an
//! HMAC over (campaign, company, expiry, secret hash) with the server's key, so a tampered,
//! expired or transplanted link is refused before the store is asked.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::action::Permission;
use crate::error::CoreError;
use crate::inventory::{InventoryRow, TrusteeClass};
use crate::model::{CompanyId, RecipientKind, RequestId, Timestamp, UserId};

/// A campaign's id (UUID).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CampaignId(Uuid);

impl CampaignId {
    pub const fn from_uuid(u: Uuid) -> Self {
        Self(u)
    }
    pub fn parse(s: &str) -> Result<Self, CoreError> {
        Uuid::parse_str(s.trim())
            .map(Self)
            .map_err(|_| CoreError::invalid("campaign", "not a campaign id (a UUID)".to_owned()))
    }
}

impl fmt::Display for CampaignId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// Where a campaign is: deciding (`open`), being closed (`closing`: no more decisions, the
/// requests are being made), or done (`closed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CampaignState {
    Open,
    Closing,
    Closed,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Open => "open",
            CampaignState::Closing => "closing",
            CampaignState::Closed => "closed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Closing, Self::Closed]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

/// A reviewer's answer for one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Keep,
    Remove,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Keep => "keep",
            Verdict::Remove => "remove",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "keep" => Some(Verdict::Keep),
            "remove" => Some(Verdict::Remove),
            _ => None,
        }
    }
}

/// How often a campaign repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Schedule {
    Monthly,
    Quarterly,
    Yearly,
}

impl Schedule {
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Monthly => "monthly",
            Schedule::Quarterly => "quarterly",
            Schedule::Yearly => "yearly",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Monthly, Self::Quarterly, Self::Yearly]
            .into_iter()
            .find(|x| x.as_str() == s.trim())
    }
    /// Days between two starts.
    pub fn days(self) -> i64 {
        match self {
            Schedule::Monthly => 30,
            Schedule::Quarterly => 91,
            Schedule::Yearly => 365,
        }
    }
}

/// What a campaign covers. Empty `kinds` or `rights` mean all.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Scope {
    pub companies: Vec<CompanyId>,
    pub kinds: Vec<RecipientKind>,
    pub rights: Vec<Permission>,
    /// (review-age) Only grants first seen at least this many days before the campaign's
    /// start (rows never stamped, from before first-seen times were kept, count as old).
    pub older_than_days: Option<u32>,
}

/// (review-age) The bounds of [`Scope::older_than_days`].
pub const OLDER_THAN_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// (review-age) Checks an "older than N days" scope: 1 to 3650 days.
pub fn check_older_than_days(days: Option<u32>) -> Result<Option<u32>, CoreError> {
    match days {
        Some(d) if !OLDER_THAN_DAYS.contains(&d) => Err(CoreError::invalid(
            "older_than_days",
            format!(
                "older than how many days: {} to {}",
                OLDER_THAN_DAYS.start(),
                OLDER_THAN_DAYS.end()
            ),
        )),
        d => Ok(d),
    }
}

impl Scope {
    /// Whether an inventory row is in scope (its company is checked by the caller).
    pub fn covers(&self, row: &InventoryRow) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&row.mailbox.kind))
            && (self.rights.is_empty() || self.rights.contains(&row.right))
    }
}

/// One company of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignCompany {
    pub company: CompanyId,
    /// exogate users named as this company's reviewers (besides managers and admins).
    pub reviewers: Vec<UserId>,
    /// The request closing made for this company's removals (None: not closed, or nothing
    /// to remove).
    pub request: Option<RequestId>,
    /// Items, and how many have a decision.
    pub items: u64,
    pub decided: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: String,
    pub scope: Scope,
    pub due_at: Timestamp,
    pub schedule: Option<Schedule>,
    pub state: CampaignState,
    pub created_by: UserId,
    pub created_by_name: String,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub closed_by_name: Option<String>,
    /// The campaign this one repeats (a scheduled start).
    pub previous: Option<CampaignId>,
    pub companies: Vec<CampaignCompany>,
}

impl Campaign {
    /// (review-age) The latest first-seen time an item may have: the start less
    /// `older_than_days` (None: no age limit).
    pub fn first_seen_cutoff(&self) -> Option<Timestamp> {
        self.scope.older_than_days.map(|d| {
            Timestamp::from_unix_millis(self.created_at.unix_millis() - i64::from(d) * 86_400_000)
        })
    }
}

/// Who decided an item, when, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemDecision {
    pub verdict: Verdict,
    pub reason: Option<String>,
    /// The exogate user, when one decided.
    pub by_user: Option<UserId>,
    /// Their name, `link: LABEL` for a link reviewer, or `default (orphan)`.
    pub by: String,
    pub at: Timestamp,
}

/// One item: a row of the inventory at the campaign's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewItem {
    /// Its number within the campaign (ordered by company, mailbox, right, trustee).
    pub no: i64,
    pub row: InventoryRow,
    pub decision: Option<ItemDecision>,
    /// (review-age) When the inventory first saw the grant (None: before first-seen times
    /// were kept).
    pub first_seen: Option<Timestamp>,
}

impl ReviewItem {
    pub fn orphan(&self) -> bool {
        self.row.trustee.class == TrusteeClass::Orphan
    }
}

/// Which items of one company a page or a decision is about.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ItemFilter {
    pub company: Option<CompanyId>,
    /// Mailbox address or object id contains (case-insensitive).
    pub mailbox: Option<String>,
    /// Trustee address, raw value or key contains (case-insensitive).
    pub trustee: Option<String>,
    /// Only these item numbers.
    pub items: Option<Vec<i64>>,
    /// `mailbox` and `trustee` match exactly (address, object id, raw value or key, any case)
    /// instead of "contains" (bulk decisions).
    pub exact: bool,
    /// Only items without a decision, or only with a `remove` decision.
    pub undecided: bool,
    pub removals: bool,
    /// Items numbered after this (paging).
    pub after: i64,
    pub limit: u32,
}

/// A reviewer link as the store keeps it (the secret only as its hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewLink {
    pub id: String,
    pub secret_hash: String,
    pub campaign: CampaignId,
    pub company: CompanyId,
    pub label: String,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub created_by_name: String,
}

/// The token of a reviewer link: `v1.EXPIRES.SECRET.MAC`. Redacts itself in `Debug`; only
/// [`LinkToken::expose`] gives the text (to put it in the URL handed to the reviewer).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkToken(String);

impl LinkToken {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LinkToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkToken(***)")
    }
}

/// Hash under which the store keeps a link's secret.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn mac(
    key: &[u8],
    campaign: CampaignId,
    company: &CompanyId,
    expires: i64,
    hash: &str,
) -> hmac::Hmac<sha2_11::Sha256> {
    let mut m =
        hmac::Hmac::<sha2_11::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for part in [
        b"exogate-review-link-v1".as_slice(),
        campaign.to_string().as_bytes(),
        company.as_str().as_bytes(),
        expires.to_string().as_bytes(),
        hash.as_bytes(),
    ] {
        m.update(&(part.len() as u64).to_be_bytes());
        m.update(part);
    }
    m
}

/// The token for a link to `campaign` × `company` expiring at `expires`, from a random
/// `secret` (URL-safe text) the caller drew.
pub fn sign_link(
    key: &[u8],
    campaign: CampaignId,
    company: &CompanyId,
    expires: Timestamp,
    secret: &str,
) -> LinkToken {
    let e = expires.unix_millis();
    let m = mac(key, campaign, company, e, &secret_hash(secret)).finalize();
    LinkToken(format!(
        "v1.{e}.{secret}.{}",
        URL_SAFE_NO_PAD.encode(m.into_bytes())
    ))
}

/// Why a link was refused (shown to nobody in detail: the page says only "not valid").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkRefusal {
    Malformed,
    /// The MAC does not match this campaign and company (tampered or transplanted).
    BadMac,
    Expired,
    /// The store does not know it, or it was revoked.
    Unknown,
    Revoked,
}

impl LinkRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkRefusal::Malformed => "malformed",
            LinkRefusal::BadMac => "bad_mac",
            LinkRefusal::Expired => "expired",
            LinkRefusal::Unknown => "unknown",
            LinkRefusal::Revoked => "revoked",
        }
    }
}

/// Checks a token against the campaign and company of the URL it came with, without the
/// store: its form, its MAC (constant time) and its expiry. Answers the secret's hash to look
/// up.
pub fn check_link_mac(
    key: &[u8],
    campaign: CampaignId,
    company: &CompanyId,
    token: &str,
    now: Timestamp,
) -> Result<String, LinkRefusal> {
    let mut parts = token.trim().split('.');
    let (Some("v1"), Some(e), Some(secret), Some(m), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(LinkRefusal::Malformed);
    };
    let e: i64 = e.parse().map_err(|_| LinkRefusal::Malformed)?;
    if secret.is_empty() || secret.len() > 128 {
        return Err(LinkRefusal::Malformed);
    }
    let given = URL_SAFE_NO_PAD
        .decode(m)
        .map_err(|_| LinkRefusal::Malformed)?;
    let hash = secret_hash(secret);
    mac(key, campaign, company, e, &hash)
        .verify_slice(&given)
        .map_err(|_| LinkRefusal::BadMac)?;
    if now.unix_millis() >= e {
        return Err(LinkRefusal::Expired);
    }
    Ok(hash)
}

/// The CSRF value of a link's form: bound to the link (its secret's hash) and the key.
pub fn link_csrf(key: &[u8], secret_hash: &str) -> String {
    let mut m =
        hmac::Hmac::<sha2_11::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"exogate-review-link-csrf-v1");
    m.update(secret_hash.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Constant-time comparison of two CSRF values.
pub fn csrf_matches(key: &[u8], secret_hash: &str, given: &str) -> bool {
    let mut m =
        hmac::Hmac::<sha2_11::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(b"exogate-review-link-csrf-v1");
    m.update(secret_hash.as_bytes());
    match URL_SAFE_NO_PAD.decode(given.trim()) {
        Ok(g) => m.verify_slice(&g).is_ok(),
        Err(_) => false,
    }
}

/// What became of one item, as the report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Kept by a reviewer.
    Kept,
    /// Marked remove; the campaign is still open.
    ToRemove,
    /// In the closing request, which has not executed yet (or was not approved).
    RemovalRequested,
    /// Removed, and the read-back confirmed it.
    RemovedVerified,
    /// The removal's request failed, was rejected, expired or was cancelled.
    RemovalNotDone,
    /// Nobody decided (never counted as kept).
    Undecided,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Kept => "kept",
            Outcome::ToRemove => "to_remove",
            Outcome::RemovalRequested => "removal_requested",
            Outcome::RemovedVerified => "removed_verified",
            Outcome::RemovalNotDone => "removal_not_done",
            Outcome::Undecided => "undecided",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportLine {
    pub item: ReviewItem,
    pub outcome: Outcome,
}

/// The report of one company of a campaign.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub campaign: Campaign,
    pub company: CompanyId,
    pub company_name: String,
    pub request: Option<crate::request::ApprovalRequest>,
    pub lines: Vec<ReportLine>,
    pub created_at: Timestamp,
}

impl Report {
    pub fn count(&self, o: Outcome) -> usize {
        self.lines.iter().filter(|l| l.outcome == o).count()
    }
}

/// Most characters of a campaign name, and of a reason.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 500;
/// Most items on one page.
pub const PAGE_ITEMS: u32 = 200;

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> CompanyId {
        CompanyId::parse(s).unwrap()
    }

    #[test]
    fn link_round_trips_and_refuses_transplants_tampering_and_expiry() {
        let key = b"k".repeat(32);
        let id = CampaignId::from_uuid(Uuid::from_u128(1));
        let other = CampaignId::from_uuid(Uuid::from_u128(2));
        let at = Timestamp::from_unix_millis(1_000_000);
        let t = sign_link(&key, id, &c("contoso"), at.plus_secs(60), "s3cret");
        let ok = check_link_mac(&key, id, &c("contoso"), t.expose(), at).unwrap();
        assert_eq!(ok, secret_hash("s3cret"));
        assert_eq!(
            check_link_mac(&key, other, &c("contoso"), t.expose(), at),
            Err(LinkRefusal::BadMac)
        );
        assert_eq!(
            check_link_mac(&key, id, &c("fabrikam"), t.expose(), at),
            Err(LinkRefusal::BadMac)
        );
        assert_eq!(
            check_link_mac(&key, id, &c("contoso"), t.expose(), at.plus_secs(60)),
            Err(LinkRefusal::Expired)
        );
        let longer = t.expose().replacen(
            &at.plus_secs(60).unix_millis().to_string(),
            &at.plus_secs(6000).unix_millis().to_string(),
            1,
        );
        assert_eq!(
            check_link_mac(&key, id, &c("contoso"), &longer, at),
            Err(LinkRefusal::BadMac)
        );
        assert_eq!(
            check_link_mac(&b"x".repeat(32), id, &c("contoso"), t.expose(), at),
            Err(LinkRefusal::BadMac)
        );
        assert!(format!("{t:?}").contains("***") && !format!("{t:?}").contains("s3cret"));
        let csrf = link_csrf(&key, &ok);
        assert!(csrf_matches(&key, &ok, &csrf));
        assert!(!csrf_matches(&key, &secret_hash("other"), &csrf));
    }
}
