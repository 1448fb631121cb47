//! `exogate inventory` (sweep, who can open a mailbox, what a user can open, export, status)
//! and `exogate offboard`.

use std::sync::Arc;

use clap::{Args, Subcommand};
use exogate_core::model::{CompanyId, IdentityInput, RequestId};
use exogate_core::ops;
use serde_json::{Value, json};

use super::{AsUser, Cli, CliError, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum InventoryCommand {
    /// Sweep tenants now (with a progress bar on a terminal).
    Sync {
        /// Only this company.
        #[arg(long, conflicts_with = "all")]
        company: Option<String>,
        /// Every connected company you may sweep (the default).
        #[arg(long)]
        all: bool,
        /// Tenants swept at once.
        #[arg(long, default_value_t = 8)]
        parallel: usize,
        #[command(flatten)]
        who: AsUser,
    },
    /// What a user (UPN, address, proxy address, alias, object id, SID, or display name when
    /// unique) can open, across your companies or in one. Exits non-zero with `user_not_found`
    /// when no inventory knows them, `not_swept_yet` when the company was never swept.
    User {
        /// The user: UPN, address, alias, object id, SID or unique display name.
        identity: String,
        /// Only this company (id or name); without it, every company you are entitled to.
        #[arg(long)]
        company: Option<String>,
        /// CSV instead of a table (with `via` and `searched_for` columns).
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Who can open a mailbox (alias, address, proxy address, object id, or display name when
    /// unique). Exits non-zero with `mailbox_not_found` when the company's inventory knows no
    /// such mailbox, `not_swept_yet` when the company was never swept.
    Mailbox {
        /// The mailbox: alias, address, object id or unique display name.
        mailbox: String,
        /// The company (id or name).
        #[arg(long)]
        company: String,
        /// CSV instead of a table (with `via` and `searched_for` columns).
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Export the whole inventory of a company, or of all your companies (CSV or `--json`).
    Export {
        /// Only this company (its id or its name); without it, every company you may see.
        #[arg(long)]
        company: Option<String>,
        /// CSV instead of a table.
        #[arg(long)]
        csv: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Each company's inventory: as of when, how many rows, whether the last sweep failed.
    Status {
        #[command(flatten)]
        who: AsUser,
    },
}

#[derive(Args, Debug)]
pub struct OffboardArgs {
    /// The company (its id or its name).
    #[arg(long, required_unless_present = "all_companies")]
    pub company: Option<String>,
    // (cli-requests)
    /// Every connected company you are entitled to: one request per company with something to
    /// remove, printed together.
    #[arg(long, conflicts_with = "company")]
    pub all_companies: bool,
    /// The leaver: UPN, address, alias or object id.
    #[arg(long)]
    pub user: String,
    #[command(flatten)]
    pub who: AsUser,
}

/// Progress bars (one per company) on a terminal; nothing otherwise.
fn sweep_progress() -> (
    crate::inventory::ProgressFn,
    Option<indicatif::MultiProgress>,
) {
    use std::io::IsTerminal as _;
    if !std::io::stderr().is_terminal() {
        return (crate::inventory::no_progress(), None);
    }
    let multi = indicatif::MultiProgress::new();
    let bars: parking_lot::Mutex<std::collections::HashMap<String, indicatif::ProgressBar>> =
        parking_lot::Mutex::new(std::collections::HashMap::new());
    let m = multi.clone();
    let style = indicatif::ProgressStyle::with_template(
        "{prefix:>16} {bar:30} {pos}/{len} {msg} ({elapsed})",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let f: crate::inventory::ProgressFn = Arc::new(move |company, p| {
        let mut bars = bars.lock();
        let bar = bars.entry(company.to_string()).or_insert_with(|| {
            let b = m.add(indicatif::ProgressBar::new(0));
            b.set_style(style.clone());
            b.set_prefix(company.to_string());
            b
        });
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(p.phase.as_str());
        if p.phase == crate::inventory::Phase::Done {
            bar.finish();
        }
    });
    (f, Some(multi))
}

fn sweep_json(
    company: &CompanyId,
    r: &Result<crate::inventory::SweepReport, crate::inventory::SweepError>,
) -> Value {
    match r {
        Ok(r) => json!({
            "company": company.as_str(), "ok": true, "swept": true, "generation": r.generation,
            "resumed": r.resumed, "mailboxes": r.mailboxes, "rows": r.rows,
            "skipped": r.skipped, "elapsed_ms": r.elapsed.as_millis() as u64,
            "drift_found": r.drift_found,
        }),
        Err(e) => json!({
            "company": company.as_str(), "ok": false, "error": e.to_string(),
            "code": CliError::from_sweep_ref(e).code,
        }),
    }
}

fn sweep_text(
    company: &CompanyId,
    r: &Result<crate::inventory::SweepReport, crate::inventory::SweepError>,
) -> String {
    match r {
        Ok(r) => format!(
            "{company}: {} mailboxes, {} rows in {:.1} s{}",
            r.mailboxes,
            r.rows,
            r.elapsed.as_secs_f64(),
            if r.resumed {
                format!(
                    " (continued an interrupted sweep; {} mailboxes were done)",
                    r.skipped
                )
            } else {
                String::new()
            }
        ),
        Err(e) => format!("{company}: FAILED: {e}"),
    }
}

fn inventory_out(
    cli: &Cli,
    csv: Option<Option<&str>>,
    value: Value,
    parts: &[exogate_core::ops::inventory::CompanyInventory],
    empty: &str,
) -> CliResult<()> {
    if let Some(searched) = csv {
        super::stdout::text(&crate::inventory_view::csv_for(parts, searched));
        return Ok(());
    }
    out(cli, value, || {
        crate::inventory_view::text(parts, empty, crate::local_time::system_now())
    })
}

pub(super) async fn inventory(cli: &Cli, app: &App, cmd: &InventoryCommand) -> CliResult<()> {
    use crate::views::inventory_company as company_json;
    let ctx = app.ctx();
    match cmd {
        InventoryCommand::Sync {
            company,
            all: _,
            parallel,
            who,
        } => {
            let actor = actor(app, who).await?;
            let (progress, bars) = sweep_progress();
            let results = match company {
                Some(c) => {
                    let c = ops::companies::resolve(ctx, &actor, c).await?;
                    let r = crate::inventory::sync_company(app, &actor, &c, &progress).await;
                    if let Err(
                        e @ (crate::inventory::SweepError::Core(_)
                        | crate::inventory::SweepError::Busy { .. }),
                    ) = r
                    {
                        return Err(e.into());
                    }
                    vec![(c, r)]
                }
                None => crate::inventory::sync_all(app, &actor, *parallel, &progress).await?,
            };
            drop(bars);
            // (drift) With every company: those whose Exchange Admin is not configured are
            // listed as skipped with their state, and do not count as failures.
            let skipped = if company.is_none() {
                crate::inventory::skipped(app, &actor).await?
            } else {
                Vec::new()
            };
            let failed = results.iter().filter(|r| r.1.is_err()).count();
            out(
                cli,
                json!(
                    results
                        .iter()
                        .map(|(c, r)| sweep_json(c, r))
                        .chain(skipped.iter().map(|(c, why)| json!({
                            "company": c.as_str(), "ok": true, "swept": false, "state": why,
                        })))
                        .collect::<Vec<_>>()
                ),
                || {
                    results
                        .iter()
                        .map(|(c, r)| sweep_text(c, r))
                        .chain(
                            skipped
                                .iter()
                                .map(|(c, why)| format!("{c}: skipped (Exchange Admin: {why})")),
                        )
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )?;
            if failed > 0 {
                return Err(CliError {
                    code: "sweep_failed",
                    message: format!("{failed} of {} sweeps failed", results.len()),
                });
            }
            Ok(())
        }
        InventoryCommand::User {
            identity,
            company,
            csv,
            who,
        } => {
            let actor = actor(app, who).await?;
            let user = IdentityInput::parse(identity)?;
            let parts = match company {
                Some(c) => {
                    let c = ops::companies::resolve(ctx, &actor, c).await?;
                    vec![ops::inventory::by_user_in(ctx, &actor, &c, &user).await?]
                }
                None => ops::inventory::by_user(ctx, &actor, &user).await?,
            };
            let value = json!({
                "user": user.as_str(),
                "companies": parts.iter().map(company_json).collect::<Vec<_>>(),
            });
            let csv = csv.then_some(Some(user.as_str()));
            inventory_out(cli, csv, value, &parts, "nothing")
        }
        InventoryCommand::Mailbox {
            mailbox,
            company,
            csv,
            who,
        } => {
            let actor = actor(app, who).await?;
            let mailbox = IdentityInput::parse(mailbox)?;
            let part = ops::inventory::by_mailbox(
                ctx,
                &actor,
                &ops::companies::resolve(ctx, &actor, company).await?,
                &mailbox,
            )
            .await?;
            let value = json!({"mailbox": mailbox.as_str(), "company": company_json(&part)});
            let csv = csv.then_some(Some(mailbox.as_str()));
            inventory_out(cli, csv, value, std::slice::from_ref(&part), "nobody")
        }
        InventoryCommand::Export { company, csv, who } => {
            let actor = actor(app, who).await?;
            let parts = match company {
                Some(c) => {
                    vec![
                        ops::inventory::company_rows(
                            ctx,
                            &actor,
                            &ops::companies::resolve(ctx, &actor, c).await?,
                        )
                        .await?,
                    ]
                }
                None => {
                    let mut parts = Vec::new();
                    for s in ops::inventory::statuses(ctx, &actor).await? {
                        parts.push(ops::inventory::company_rows(ctx, &actor, &s.company).await?);
                    }
                    parts
                }
            };
            let value = json!({"companies": parts.iter().map(company_json).collect::<Vec<_>>()});
            inventory_out(cli, csv.then_some(None), value, &parts, "no rows")
        }
        InventoryCommand::Status { who } => {
            let actor = actor(app, who).await?;
            let parts = ops::inventory::statuses(ctx, &actor).await?;
            let value = json!(parts.iter().map(company_json).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "COMPANY".to_owned(),
                    "AS OF".to_owned(),
                    "MAILBOXES".to_owned(),
                    "ROWS".to_owned(),
                    "STATE".to_owned(),
                ]];
                for p in &parts {
                    let s = p.status.as_ref();
                    rows.push(vec![
                        p.company.to_string(),
                        s.and_then(|s| s.as_of).map_or_else(
                            || "never".to_owned(),
                            |t| crate::local_time::cell(app.clock.now(), t),
                        ),
                        s.map_or(0, |s| s.mailboxes).to_string(),
                        s.map_or(0, |s| s.rows).to_string(),
                        crate::inventory_view::warning(p)
                            .unwrap_or_else(|| p.freshness.as_str().to_owned()),
                    ]);
                }
                table(rows)
            })
        }
    }
}

pub(super) async fn offboard(cli: &Cli, app: &App, args: &OffboardArgs) -> CliResult<()> {
    let actor = actor(app, &args.who).await?;
    // (cli-requests)
    let Some(company) = args.company.as_deref().filter(|_| !args.all_companies) else {
        return super::offboard_all::offboard_all(cli, app, &actor, &args.user).await;
    };
    let input = ops::inventory::OffboardInput {
        id: RequestId::from_uuid(uuid::Uuid::now_v7()),
        company: ops::companies::resolve(app.ctx(), &actor, company).await?,
        user: IdentityInput::parse(&args.user)?,
    };
    let r = ops::inventory::request_offboard(app.ctx(), &actor, input).await?;
    // What the user also opens through groups stays: removing that is a membership change.
    let mut through_groups = Vec::new();
    if let Some(a) = r.actions.first() {
        let user = IdentityInput::parse(&a.trustee.object_id)?;
        let part = ops::inventory::by_user_in(app.ctx(), &actor, &r.company, &user).await?;
        through_groups.extend(
            ops::inventory::offboard_lists(&part.rows)
                .through_groups
                .into_iter()
                .cloned(),
        );
    }
    let mut v = views::request(app, &actor, &r).await?;
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "held_through_groups".into(),
            json!(
                through_groups
                    .iter()
                    .map(crate::views::inventory_row)
                    .collect::<Vec<_>>()
            ),
        );
    }
    out(cli, v, || {
        let mut text = format!(
            "{} holds {} right(s) directly in {}; asked for their removal as ONE request:\n",
            args.user,
            r.actions.len(),
            r.company
        );
        for a in &r.actions {
            text.push_str(&format!(
                "  remove {} on {}\n",
                a.operation.permission.label(),
                a.mailbox.primary_address
            ));
        }
        if !through_groups.is_empty() {
            text.push_str(
                "Not part of it (held through a group; remove the user from the group instead):\n",
            );
            for row in &through_groups {
                text.push_str(&format!(
                    "  {} on {} through {}\n",
                    row.right.label(),
                    row.mailbox.primary_address,
                    exogate_core::text::capped(row.trustee.label(), 80)
                ));
            }
        }
        text.push_str(&format!(
            "request {} is pending approval (risk {}); a manager other than {} approves it with `exogate approvals approve {} --as MANAGER`",
            r.id,
            r.risk.as_str(),
            r.requester.user_name.as_str(),
            r.id
        ));
        text
    })
}
