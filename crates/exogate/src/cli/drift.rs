//! `exogate drift list | ack | revert`: rights changed outside exogate, as sweeps found them.

use clap::Subcommand;
use exogate_core::drift::DriftId;
use exogate_core::model::RequestId;
use exogate_core::ops;
use serde_json::json;

use super::{AsUser, Cli, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views::{self, DriftFindingView};

#[derive(Subcommand, Debug)]
pub enum DriftCommand {
    /// Findings of every company you may see (or of one), newest first.
    List {
        /// Only this company (id or name).
        #[arg(long)]
        company: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Acknowledge a finding (manager or higher): the change stays, with your reason.
    Ack {
        /// The finding's id (from `drift list`).
        id: String,
        /// Why the change is accepted (required).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Ask to undo a finding: a pending approval request with the inverse action.
    Revert {
        /// The finding's id (from `drift list`).
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
}

fn row(f: &DriftFindingView) -> Vec<String> {
    vec![
        f.id.clone(),
        f.company.clone(),
        f.mailbox.address.clone(),
        f.right.to_owned(),
        f.trustee
            .address
            .clone()
            .unwrap_or_else(|| f.trustee.raw.clone()),
        f.change.to_owned(),
        f.first_seen_at.clone(),
        f.last_seen_at.clone(),
        f.state.to_owned(),
    ]
}

fn text(list: &[DriftFindingView]) -> String {
    if list.is_empty() {
        return "no drift found".to_owned();
    }
    let head = [
        "ID",
        "COMPANY",
        "MAILBOX",
        "RIGHT",
        "TRUSTEE",
        "CHANGE",
        "FIRST SEEN",
        "LAST SEEN",
        "STATE",
    ];
    let mut rows = vec![head.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()];
    rows.extend(list.iter().map(row));
    table(rows)
}

pub(super) async fn drift(cli: &Cli, app: &App, cmd: &DriftCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        DriftCommand::List { company, who } => {
            let actor = actor(app, who).await?;
            let company = match company {
                Some(c) => Some(ops::companies::resolve(ctx, &actor, c).await?),
                None => None,
            };
            let list: Vec<DriftFindingView> = ops::drift::list(ctx, &actor, company.as_ref())
                .await?
                .iter()
                .map(DriftFindingView::of)
                .collect();
            out(cli, json!({ "findings": list }), || text(&list))
        }
        DriftCommand::Ack { id, reason, who } => {
            let actor = actor(app, who).await?;
            let f = ops::drift::acknowledge(ctx, &actor, DriftId::parse(id)?, reason).await?;
            let v = DriftFindingView::of(&f);
            out(cli, json!(v), || format!("acknowledged {}", v.id))
        }
        DriftCommand::Revert { id, who } => {
            let actor = actor(app, who).await?;
            let new = RequestId::from_uuid(uuid::Uuid::now_v7());
            let (f, r) = ops::drift::revert(ctx, &actor, DriftId::parse(id)?, new).await?;
            let v = json!({
                "finding": DriftFindingView::of(&f),
                "request": views::request(app, &actor, &r).await?,
            });
            out(cli, v, || {
                format!(
                    "request {} asks to {} (pending approval)",
                    r.id,
                    r.summary()
                )
            })
        }
    }
}
