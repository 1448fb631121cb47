//! `exogate approvals`: list, show, approve and reject approval requests.

use clap::Subcommand;
use exogate_core::model::{RequestId, Timestamp};
use exogate_core::ops;
use exogate_core::request::{RequestFilter, RequestState};
use exogate_core::when;

use super::{AsUser, Cli, CliError, CliResult, actor, out};
use crate::app::App;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// List requests, newest first: state, company, risk, who asked, how long ago and when a
    /// pending one expires.
    List {
        /// Only this state (pending, approved, succeeded, …).
        #[arg(long)]
        state: Option<String>,
        /// Only this company (its id or its name).
        #[arg(long)]
        company: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Show one request: the exact change, the decision and the verified result.
    Show {
        /// The request's id.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Approve a pending request (manager or higher, never your own request).
    Approve {
        /// The request's id.
        id: String,
        /// Why you approve (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Reject a pending request, with a reason.
    Reject {
        /// The request's id.
        id: String,
        /// Why you reject it (recorded in the audit log; the requester sees it).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: AsUser,
    },
}

fn request_text(r: &exogate_core::request::ApprovalRequest, now: Timestamp) -> String {
    let mut when = format!("asked {}", when::relative(now, r.created_at));
    if r.state == RequestState::Pending {
        if r.expires_at > now {
            when.push_str(&format!(", expires {}", when::relative(now, r.expires_at)));
        } else {
            when.push_str(", expired");
        }
    }
    let mut text = format!(
        "{}  {}  {}  risk {}  by {} via {}  {when}\n  {}",
        r.id,
        r.state.as_str(),
        r.company.as_str(),
        r.risk.as_str(),
        r.requester.user_name.as_str(),
        r.requester.channel,
        r.summary()
    );
    if let Some(d) = &r.decision {
        text.push_str(&format!(
            "\n  {} by {} {}{}",
            if d.approved { "approved" } else { "rejected" },
            d.by_name.as_str(),
            crate::local_time::cell(now, d.at),
            d.reason
                .as_deref()
                .map(|x| format!(": {x}"))
                .unwrap_or_default()
        ));
    }
    for res in &r.results {
        text.push_str(&format!(
            "\n  result: {} (before {}, after {}, verified {}) {}",
            res.outcome.as_str(),
            res.before.map_or("?", |p| p.as_str()),
            res.after.map_or("?", |p| p.as_str()),
            res.verified,
            res.message
        ));
    }
    text
}

pub(super) async fn approvals(cli: &Cli, app: &App, cmd: &ApprovalsCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        ApprovalsCommand::List {
            state,
            company,
            who,
        } => {
            let actor = actor(app, who).await?;
            let states = match state {
                Some(s) => Some(vec![RequestState::parse(s).ok_or_else(|| CliError {
                    code: "invalid_input",
                    message: format!("`{s}` is not a request state"),
                })?]),
                None => None,
            };
            let companies = match company {
                Some(c) => Some(vec![ops::companies::resolve(ctx, &actor, c).await?]),
                None => None,
            };
            let requests = ops::requests::list_requests(
                ctx,
                &actor,
                RequestFilter {
                    states,
                    companies,
                    ..RequestFilter::default()
                },
            )
            .await?;
            let value = views::requests(app, &actor, &requests).await?;
            let now = app.clock.now();
            out(cli, value, || {
                if requests.is_empty() {
                    return "no requests".to_owned();
                }
                requests
                    .iter()
                    .map(|r| request_text(r, now))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        ApprovalsCommand::Show { id, who } => {
            let actor = actor(app, who).await?;
            let r = ops::requests::get_request(ctx, &actor, RequestId::parse(id)?).await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                request_text(&r, app.clock.now())
            })
        }
        ApprovalsCommand::Approve { id, reason, who } => {
            let actor = actor(app, who).await?;
            let r = ops::requests::approve(ctx, &actor, RequestId::parse(id)?, reason.as_deref())
                .await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                format!("approved {}; a running exogate server executes it", r.id)
            })
        }
        ApprovalsCommand::Reject { id, reason, who } => {
            let actor = actor(app, who).await?;
            let r = ops::requests::reject(ctx, &actor, RequestId::parse(id)?, Some(reason)).await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                format!("rejected {}", r.id)
            })
        }
    }
}
