//! `exogate mailbox`: a mailbox's delegation, read from Exchange.

use clap::{Args, Subcommand};
use exogate_core::inventory::TrusteeClass;
use exogate_core::model::IdentityInput;
use exogate_core::ops;
use serde_json::json;

use super::{AsUser, Cli, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum MailboxCommand {
    /// Who has Full Access.
    Permissions(MailboxArgs),
    /// Who can Send As.
    SendAs(MailboxArgs),
    /// Mailbox settings and Send on Behalf delegates.
    Details(MailboxArgs),
}

#[derive(Args, Debug)]
pub struct MailboxArgs {
    /// UPN, SMTP address, GUID or alias.
    pub mailbox: String,
    /// The company whose tenant holds the mailbox: its id or its name.
    #[arg(long)]
    pub company: String,
    #[command(flatten)]
    pub who: AsUser,
}

fn permissions_text(
    mailbox: &exogate_core::model::ResolvedIdentity,
    entries: &[exogate_core::ports::PermissionEntry],
) -> String {
    let mut rows = vec![vec!["TRUSTEE".into(), "NAME".into(), "RIGHTS".into()]];
    rows.extend(entries.iter().map(|p| {
        let (who, name) = match (&p.resolved, ops::reads::trustee_class(p)) {
            (Some(r), _) => (r.primary_address.clone(), r.display_name.clone()),
            (None, TrusteeClass::Orphan) => (p.trustee.clone(), "(orphaned SID)".to_owned()),
            (None, _) => (p.trustee.clone(), "(unresolved)".to_owned()),
        };
        vec![who, name, p.access_rights.join(", ")]
    }));
    format!(
        "{} <{}>\n{}",
        mailbox.display_name,
        mailbox.primary_address,
        table(rows)
    )
}

pub(super) async fn mailbox(cli: &Cli, app: &App, cmd: &MailboxCommand) -> CliResult<()> {
    let ctx = app.ctx();
    let (MailboxCommand::Permissions(args)
    | MailboxCommand::SendAs(args)
    | MailboxCommand::Details(args)) = cmd;
    let actor = actor(app, &args.who).await?;
    let company = ops::companies::resolve(ctx, &actor, &args.company).await?;
    let input = IdentityInput::parse(&args.mailbox)?;
    match cmd {
        MailboxCommand::Permissions(_) => {
            let (mbx, entries) =
                ops::reads::view_mailbox_permissions(ctx, &actor, &company, &input).await?;
            let value = json!({"mailbox": views::identity(&mbx), "full_access": entries.iter().map(views::permission).collect::<Vec<_>>()});
            out(cli, value, || permissions_text(&mbx, &entries))
        }
        MailboxCommand::SendAs(_) => {
            let (mbx, entries) =
                ops::reads::view_send_as_permissions(ctx, &actor, &company, &input).await?;
            let value = json!({"mailbox": views::identity(&mbx), "send_as": entries.iter().map(views::permission).collect::<Vec<_>>()});
            out(cli, value, || permissions_text(&mbx, &entries))
        }
        MailboxCommand::Details(_) => {
            let details = ops::reads::view_mailbox_details(ctx, &actor, &company, &input).await?;
            out(cli, views::mailbox_details(&details), || {
                let mut text = permissions_text(&details.mailbox, &details.send_on_behalf);
                for (k, v) in &details.properties {
                    text.push_str(&format!("\n{k}: {v}"));
                }
                text
            })
        }
    }
}
