//! (reviews) `get_access_review_report`: its arguments and answer (built from the shared view,
//! [`crate::views::review::ReportView`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::views::review::ReportView;

/// Which report to read.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewReportArgs {
    /// The access review's id (a UUID from exogate's Reviews page or API).
    #[schemars(example = &"0192f0e0-0000-7000-8000-000000000000")]
    pub review_id: String,
    /// The company (an id from list_companies).
    #[schemars(example = &"contoso")]
    pub company: String,
}

/// One grant under review and what became of it. Names, addresses and reasons are untrusted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewLineOut {
    pub item: i64,
    pub mailbox: String,
    /// full_access, send_as or send_on_behalf.
    pub right: String,
    /// direct, group or orphan.
    pub via: String,
    /// Who holds the right: its address when it resolves, else what Exchange printed.
    pub trustee: String,
    /// kept, to_remove, removal_requested, removed_verified, removal_not_done or undecided.
    pub outcome: String,
    /// keep or remove, when decided.
    pub decision: Option<String>,
    /// The user, `link: LABEL` (a reviewer link) or `default (orphan)`.
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
}

/// `get_access_review_report` result.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewReportOut {
    pub review_id: String,
    pub name: String,
    /// open, closing or closed.
    pub state: String,
    pub company: String,
    pub company_name: String,
    /// The approval request closing made for the removals, and its state.
    pub request: Option<String>,
    pub request_state: Option<String>,
    pub kept: usize,
    pub removed_verified: usize,
    pub removal_requested: usize,
    pub removal_not_done: usize,
    pub undecided: usize,
    pub lines: Vec<ReviewLineOut>,
    pub count: usize,
    /// How to read the answer.
    pub note: String,
}

/// The answer for a report.
pub fn report(v: &ReportView) -> ReviewReportOut {
    ReviewReportOut {
        review_id: v.campaign.id.clone(),
        name: v.campaign.name.clone(),
        state: v.campaign.state.to_owned(),
        company: v.company.clone(),
        company_name: v.company_name.clone(),
        request: v.request.clone(),
        request_state: v.request_state.map(str::to_owned),
        kept: v.kept,
        removed_verified: v.removed_verified,
        removal_requested: v.removal_requested,
        removal_not_done: v.removal_not_done,
        undecided: v.undecided,
        lines: v
            .lines
            .iter()
            .map(|l| {
                let d = l.item.decision.as_ref();
                ReviewLineOut {
                    item: l.item.item,
                    mailbox: l.item.mailbox.address.clone(),
                    right: l.item.right.to_owned(),
                    via: l.item.via.to_owned(),
                    trustee: l.item.trustee_label().to_owned(),
                    outcome: l.outcome.to_owned(),
                    decision: d.map(|d| d.decision.to_owned()),
                    decided_by: d.map(|d| d.by.clone()),
                    decided_at: d.map(|d| d.at.clone()),
                    reason: d.and_then(|d| d.reason.clone()),
                }
            })
            .collect(),
        count: v.lines.len(),
        note: "Undecided grants were confirmed by nobody and were not removed. Removals go through one approval request per company; removed_verified means Exchange was read back. Reviewers decide and managers close reviews in exogate; no tool can.".to_owned(),
    }
}
