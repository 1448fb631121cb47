//! (reviews) `exogate review create | list | show | link | close | report`: access reviews
//! (recertification campaigns) from the command line, over `exogate_core::ops::reviews`.

use clap::Subcommand;
use exogate_core::model::RequestId;
use exogate_core::ops::reviews;
use exogate_core::review::{CampaignId, ItemFilter};
use serde_json::json;

use super::{AsUser, Cli, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views::review::{CampaignView, ReportView, ReviewItemView};

#[derive(Subcommand, Debug)]
pub enum ReviewCommand {
    /// Start an access review (manager or admin of every company): its items are the
    /// inventory's rows of the scope now.
    Create {
        /// The review's name.
        #[arg(long)]
        name: String,
        /// Company ids, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        companies: Vec<String>,
        /// Only these mailbox kinds (user_mailbox, shared_mailbox, room_mailbox,
        /// equipment_mailbox), comma-separated; default all.
        #[arg(long, value_delimiter = ',')]
        kinds: Vec<String>,
        /// Only these rights (full_access, send_as, send_on_behalf), comma-separated; default all.
        #[arg(long, value_delimiter = ',')]
        rights: Vec<String>,
        /// How long until it is due ("14d").
        #[arg(long, default_value = "14d")]
        due_in: String,
        /// Repeat it: monthly, quarterly or yearly.
        #[arg(long)]
        schedule: Option<String>,
        #[command(flatten)]
        who: AsUser,
        // (review-age)
        /// Only grants first seen at least this many days ago (1 to 3650); default all.
        #[arg(long)]
        older_than_days: Option<u32>,
    },
    /// The reviews you may see, newest first.
    List {
        #[command(flatten)]
        who: AsUser,
    },
    /// One review: its companies, counts, and one company's first items.
    Show {
        /// The review's id.
        id: String,
        /// Whose items to list (default: the first company).
        #[arg(long)]
        company: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Issue a reviewer link for a company (manager or admin); prints its URL once.
    Link {
        /// The review's id.
        id: String,
        /// The company the link is for.
        #[arg(long)]
        company: String,
        /// Who will use it (a name or role, shown on the page and in the audit log).
        #[arg(long)]
        label: String,
        /// How long it is valid ("7d", at most 90 days).
        #[arg(long, default_value = "7d")]
        expires_in: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Close a review: each company's removals become one approval request.
    Close {
        /// The review's id.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// One company's report: who decided what, what was removed and verified.
    Report {
        /// The review's id.
        id: String,
        /// The company.
        #[arg(long)]
        company: String,
        /// Print CSV instead of a table.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
}

fn campaigns_text(list: &[CampaignView]) -> String {
    if list.is_empty() {
        return "no access reviews".to_owned();
    }
    let mut rows = vec![
        [
            "ID",
            "NAME",
            "STATE",
            "COMPANIES",
            "ITEMS",
            "UNDECIDED",
            "DUE",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    ];
    for c in list {
        rows.push(vec![
            c.id.clone(),
            c.name.clone(),
            c.state.to_owned(),
            c.companies
                .iter()
                .map(|p| p.company.clone())
                .collect::<Vec<_>>()
                .join(","),
            c.companies.iter().map(|p| p.items).sum::<u64>().to_string(),
            c.companies
                .iter()
                .map(|p| p.undecided)
                .sum::<u64>()
                .to_string(),
            c.due_at.clone(),
        ]);
    }
    table(rows)
}

fn items_text(items: &[ReviewItemView]) -> String {
    let mut rows = vec![
        [
            "#", "MAILBOX", "RIGHT", "TRUSTEE", "VIA", "DECISION", "BY", "SINCE",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect::<Vec<_>>(),
    ];
    for i in items {
        let d = i.decision.as_ref();
        rows.push(vec![
            i.item.to_string(),
            i.mailbox.address.clone(),
            i.right.to_owned(),
            i.trustee_label().to_owned(),
            i.via.to_owned(),
            d.map_or_else(|| "undecided".to_owned(), |d| d.decision.to_owned()),
            d.map_or_else(String::new, |d| d.by.clone()),
            // (review-age) when the inventory first saw the grant
            i.first_seen.as_deref().map_or_else(String::new, since),
        ]);
    }
    table(rows)
}

/// (review-age) A first-seen time (RFC 3339, as the view carries it) as a table cell.
fn since(at: &str) -> String {
    match time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) {
        Ok(t) => crate::local_time::cell(
            crate::local_time::system_now(),
            exogate_core::Timestamp::from_offset_date_time(t),
        ),
        Err(_) => at.to_owned(),
    }
}

pub(super) async fn review(cli: &Cli, app: &App, cmd: &ReviewCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        ReviewCommand::Create {
            name,
            companies,
            kinds,
            rights,
            due_in,
            schedule,
            who,
            older_than_days,
        } => {
            let actor = actor(app, who).await?;
            let mut body = crate::web::reviews::CreateBody::new(
                name,
                companies,
                kinds,
                rights,
                due_in,
                schedule.as_deref(),
            );
            body.older_than_days = *older_than_days;
            let input = crate::web::reviews::create_input_at(app, &body)?;
            let c = reviews::create(ctx, &actor, input).await?;
            let v = CampaignView::of(&c);
            out(cli, json!(v), || {
                format!(
                    "review {} started: {} items",
                    v.id,
                    v.companies.iter().map(|p| p.items).sum::<u64>()
                )
            })
        }
        ReviewCommand::List { who } => {
            let actor = actor(app, who).await?;
            let list: Vec<CampaignView> = reviews::list(ctx, &actor)
                .await?
                .iter()
                .map(CampaignView::of)
                .collect();
            out(cli, json!({ "reviews": list }), || campaigns_text(&list))
        }
        ReviewCommand::Show { id, company, who } => {
            let actor = actor(app, who).await?;
            let id = CampaignId::parse(id)?;
            let c = reviews::get(ctx, &actor, id).await?;
            let company = match company {
                Some(raw) => exogate_core::ops::companies::resolve(ctx, &actor, raw).await?,
                None => c.companies[0].company.clone(),
            };
            let (c, items) =
                reviews::items(ctx, &actor, id, &company, ItemFilter::default()).await?;
            let v = CampaignView::of(&c);
            let items: Vec<ReviewItemView> = items.iter().map(ReviewItemView::of).collect();
            out(cli, json!({"review": v, "items": items}), || {
                format!(
                    "{}\n\n{}",
                    campaigns_text(std::slice::from_ref(&v)),
                    items_text(&items)
                )
            })
        }
        ReviewCommand::Link {
            id,
            company,
            label,
            expires_in,
            who,
        } => {
            let actor = actor(app, who).await?;
            let (link, url) = crate::web::reviews::issue_link_at(
                app,
                &actor,
                CampaignId::parse(id)?,
                company,
                label,
                expires_in,
            )
            .await?;
            out(
                cli,
                json!({"link": crate::views::review::ReviewLinkView::of(&link), "url": url}),
                || format!("send this link to {} (shown only now):\n{url}", link.label),
            )
        }
        ReviewCommand::Close { id, who } => {
            let actor = actor(app, who).await?;
            let ids = || RequestId::from_uuid(uuid::Uuid::now_v7());
            let c = reviews::close(ctx, &actor, CampaignId::parse(id)?, &ids).await?;
            app.worker_wake.notify_one();
            let v = CampaignView::of(&c);
            out(cli, json!(v), || {
                let made: Vec<String> = v
                    .companies
                    .iter()
                    .filter_map(|p| {
                        p.request
                            .as_ref()
                            .map(|r| format!("{}: request {r}", p.company))
                    })
                    .collect();
                if made.is_empty() {
                    format!("review {} closed; nothing to remove", v.id)
                } else {
                    format!(
                        "review {} closed; waiting for approval:\n{}",
                        v.id,
                        made.join("\n")
                    )
                }
            })
        }
        ReviewCommand::Report {
            id,
            company,
            csv,
            who,
        } => {
            let actor = actor(app, who).await?;
            let company = exogate_core::ops::companies::resolve(ctx, &actor, company).await?;
            let format = if *csv { "csv" } else { "cli" };
            let r = reviews::report(ctx, &actor, CampaignId::parse(id)?, &company, format).await?;
            if *csv {
                print!("{}", crate::web::reviews::report_csv(&r));
                return Ok(());
            }
            let v = ReportView::of(&r);
            out(cli, json!(v), || {
                let items: Vec<ReviewItemView> = v.lines.iter().map(|l| l.item.clone()).collect();
                format!(
                    "{} kept · {} removed and verified · {} removal requested · {} removal not done · {} undecided\n\n{}",
                    v.kept,
                    v.removed_verified,
                    v.removal_requested,
                    v.removal_not_done,
                    v.undecided,
                    items_text(&items)
                )
            })
        }
    }
}
