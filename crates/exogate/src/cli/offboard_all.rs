//! `exogate offboard --all-companies --user U`: the offboarding request of every connected
//! company the person is entitled to, one request per company that has anything to remove,
//! printed together; the companies with nothing to remove, without an inventory or where the
//! user is unknown are listed as such.

use exogate_core::model::{Actor, IdentityInput, RequestId};
use exogate_core::request::ApprovalRequest;
use exogate_core::{ConflictReason, CoreError, ops};
use serde_json::json;

use super::{Cli, CliResult, out};
use crate::app::App;
use crate::table::table;
use crate::views;

/// What offboarding found in one company.
enum Outcome {
    Asked(Box<ApprovalRequest>),
    /// Nothing was asked there; why, in words.
    Nothing {
        state: &'static str,
        why: String,
    },
}

pub(super) async fn offboard_all(cli: &Cli, app: &App, actor: &Actor, user: &str) -> CliResult<()> {
    let ctx = app.ctx();
    let leaver = IdentityInput::parse(user)?;
    let mut found = Vec::new();
    for part in ops::inventory::statuses(ctx, actor).await? {
        let input = ops::inventory::OffboardInput {
            id: RequestId::from_uuid(uuid::Uuid::now_v7()),
            company: part.company.clone(),
            user: leaver.clone(),
        };
        let outcome = match ops::inventory::request_offboard(ctx, actor, input).await {
            Ok(r) => Outcome::Asked(Box::new(r)),
            Err(e) => nothing(e)?,
        };
        found.push((part.company, outcome));
    }
    let mut companies = Vec::new();
    let mut requests = Vec::new();
    for (company, o) in &found {
        match o {
            Outcome::Asked(r) => {
                companies.push(json!({"company": company.as_str(), "outcome": "requested",
                    "request": r.id.to_string(), "actions": r.actions.len()}));
                requests.push(views::request(app, actor, r).await?);
            }
            Outcome::Nothing { state, why } => companies.push(json!({
                "company": company.as_str(), "outcome": state, "message": why,
            })),
        }
    }
    let value = json!({"companies": companies, "requests": requests});
    out(cli, value, || {
        let mut rows = vec![vec![
            "COMPANY".to_owned(),
            "OUTCOME".to_owned(),
            "DETAIL".to_owned(),
        ]];
        let mut next = Vec::new();
        for (company, o) in &found {
            match o {
                Outcome::Asked(r) => {
                    rows.push(vec![
                        company.to_string(),
                        format!("request {} (risk {})", r.id, r.risk.as_str()),
                        r.actions
                            .iter()
                            .map(|a| {
                                format!(
                                    "remove {} on {}",
                                    a.operation.permission.label(),
                                    a.mailbox.primary_address
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    ]);
                    next.push(format!("  exogate approvals approve {} --as MANAGER", r.id));
                }
                Outcome::Nothing { state, why } => {
                    rows.push(vec![company.to_string(), (*state).to_owned(), why.clone()]);
                }
            }
        }
        let mut text = table(rows);
        if next.is_empty() {
            text.push_str(&format!("\nnothing to remove for {user} in any company"));
        } else {
            text.push_str(&format!(
                "\n{} request(s) pending approval; a manager other than {} approves each with:\n{}",
                next.len(),
                actor.user.name.as_str(),
                next.join("\n")
            ));
        }
        text
    })
}

/// A company where offboarding asks nothing, or the error that stops the whole run (a role too
/// low or a database failure stops it; the company's own state does not).
fn nothing(e: CoreError) -> Result<Outcome, CoreError> {
    let (state, why) = match &e {
        CoreError::Invalid {
            field: "company", ..
        } => ("no_inventory", format!("unknown: not swept yet ({e})")),
        CoreError::Invalid { field: "user", .. } => ("nothing_to_remove", e.to_string()),
        CoreError::Conflict {
            reason: ConflictReason::AlreadyInState { .. },
        } => ("nothing_to_remove", e.to_string()),
        CoreError::NotFound { .. } => ("user_not_found", e.to_string()),
        CoreError::NotConfigured { .. }
        | CoreError::Conflict {
            reason: ConflictReason::NotConnected,
        } => ("not_ready", e.to_string()),
        _ => return Err(e),
    };
    Ok(Outcome::Nothing { state, why })
}
