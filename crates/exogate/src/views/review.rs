//! (reviews) Access reviews: campaigns, items with their decisions, reviewer links (never the
//! token), and the per-company report.

use exogate_core::review::{
    Campaign, CampaignCompany, ItemDecision, Report, ReportLine, ReviewItem, ReviewLink,
};
use serde::Serialize;

use super::{IdentityView, InventoryRowView, InventoryTrusteeView, shown, ts};

#[derive(Clone, Debug, Serialize)]
pub struct CampaignCompanyView {
    pub company: String,
    pub reviewers: Vec<String>,
    pub items: u64,
    pub decided: u64,
    pub undecided: u64,
    /// The approval request closing made for this company's removals.
    pub request: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CampaignView {
    pub id: String,
    /// Sanitized like tenant text.
    pub name: String,
    /// `open`, `closing` or `closed`.
    pub state: &'static str,
    pub kinds: Vec<&'static str>,
    pub rights: Vec<&'static str>,
    pub due_at: String,
    pub schedule: Option<&'static str>,
    pub created_by: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub closed_by: Option<String>,
    pub repeats: Option<String>,
    pub companies: Vec<CampaignCompanyView>,
    // (review-age)
    /// Only grants first seen at least this many days before the start.
    pub older_than_days: Option<u32>,
}

impl CampaignView {
    pub fn of(c: &Campaign) -> Self {
        Self {
            id: c.id.to_string(),
            name: shown(&c.name),
            state: c.state.as_str(),
            kinds: c.scope.kinds.iter().map(|k| k.as_str()).collect(),
            rights: c.scope.rights.iter().map(|r| r.as_str()).collect(),
            due_at: ts(c.due_at),
            schedule: c.schedule.map(|s| s.as_str()),
            created_by: shown(&c.created_by_name),
            created_at: ts(c.created_at),
            closed_at: c.closed_at.map(ts),
            closed_by: c.closed_by_name.as_deref().map(shown),
            repeats: c.previous.map(|p| p.to_string()),
            companies: c.companies.iter().map(company).collect(),
            older_than_days: c.scope.older_than_days,
        }
    }
}

fn company(p: &CampaignCompany) -> CampaignCompanyView {
    CampaignCompanyView {
        company: p.company.to_string(),
        reviewers: p.reviewers.iter().map(ToString::to_string).collect(),
        items: p.items,
        decided: p.decided,
        undecided: p.items.saturating_sub(p.decided),
        request: p.request.map(|r| r.to_string()),
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DecisionView {
    /// `keep` or `remove`.
    pub decision: &'static str,
    pub reason: Option<String>,
    /// The user's name, `link: LABEL`, or `default (orphan)`.
    pub by: String,
    pub at: String,
}

impl DecisionView {
    pub fn of(d: &ItemDecision) -> Self {
        Self {
            decision: d.verdict.as_str(),
            reason: d.reason.as_deref().map(shown),
            by: shown(&d.by),
            at: ts(d.at),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReviewItemView {
    pub item: i64,
    pub company: String,
    pub mailbox: IdentityView,
    pub right: &'static str,
    /// `direct`, `group` or `orphan`.
    pub via: &'static str,
    pub trustee: InventoryTrusteeView,
    pub decision: Option<DecisionView>,
    // (review-age)
    /// When the inventory first saw the grant (none: before first-seen times were kept).
    pub first_seen: Option<String>,
}

impl ReviewItemView {
    pub fn of(i: &ReviewItem) -> Self {
        let r = InventoryRowView::of(&i.row);
        Self {
            item: i.no,
            company: i.row.company.to_string(),
            mailbox: r.mailbox,
            right: r.right,
            via: r.via,
            trustee: r.trustee,
            decision: i.decision.as_ref().map(DecisionView::of),
            first_seen: i.first_seen.map(ts),
        }
    }
    /// The trustee as a person reads it: its address, else what Exchange printed.
    pub fn trustee_label(&self) -> &str {
        self.trustee
            .address
            .as_deref()
            .unwrap_or(self.trustee.raw.as_str())
    }
}

/// A reviewer link as listed (the token is shown once, when issued, and never again).
#[derive(Clone, Debug, Serialize)]
pub struct ReviewLinkView {
    pub id: String,
    pub company: String,
    pub label: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

impl ReviewLinkView {
    pub fn of(l: &ReviewLink) -> Self {
        Self {
            id: l.id.clone(),
            company: l.company.to_string(),
            label: shown(&l.label),
            expires_at: ts(l.expires_at),
            revoked_at: l.revoked_at.map(ts),
            created_at: ts(l.created_at),
            created_by: shown(&l.created_by_name),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportLineView {
    #[serde(flatten)]
    pub item: ReviewItemView,
    /// `kept`, `to_remove`, `removal_requested`, `removed_verified`, `removal_not_done` or
    /// `undecided`.
    pub outcome: &'static str,
}

impl ReportLineView {
    pub fn of(l: &ReportLine) -> Self {
        Self {
            item: ReviewItemView::of(&l.item),
            outcome: l.outcome.as_str(),
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct ReportView {
    pub campaign: CampaignView,
    pub company: String,
    pub company_name: String,
    /// The closing request, with its state.
    pub request: Option<String>,
    pub request_state: Option<&'static str>,
    pub kept: usize,
    pub removed_verified: usize,
    pub removal_requested: usize,
    pub removal_not_done: usize,
    pub undecided: usize,
    pub lines: Vec<ReportLineView>,
    pub created_at: String,
}

impl ReportView {
    pub fn of(r: &Report) -> Self {
        use exogate_core::review::Outcome;
        Self {
            campaign: CampaignView::of(&r.campaign),
            company: r.company.to_string(),
            company_name: shown(&r.company_name),
            request: r.request.as_ref().map(|q| q.id.to_string()),
            request_state: r.request.as_ref().map(|q| q.state.as_str()),
            kept: r.count(Outcome::Kept),
            removed_verified: r.count(Outcome::RemovedVerified),
            removal_requested: r.count(Outcome::RemovalRequested),
            removal_not_done: r.count(Outcome::RemovalNotDone),
            undecided: r.count(Outcome::Undecided),
            lines: r.lines.iter().map(ReportLineView::of).collect(),
            created_at: ts(r.created_at),
        }
    }
}
