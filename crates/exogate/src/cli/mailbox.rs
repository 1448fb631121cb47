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
    // (inventory-truth)
    /// Every right on the mailbox in one table: Full Access, Send As and Send on Behalf, each
    /// trustee with its kind (user, group with its members' count, orphaned SID). `--json`
    /// gives the API's shapes.
    Show(MailboxArgs),
}

#[derive(Args, Debug)]
pub struct MailboxArgs {
    /// UPN, SMTP address, GUID or alias.
    pub mailbox: String,
    /// The company (id or name).
    #[arg(long)]
    pub company: String,
    #[command(flatten)]
    pub who: AsUser,
}

fn permissions_text(
    mailbox: &exogate_core::model::ResolvedIdentity,
    entries: &[exogate_core::ports::PermissionEntry],
) -> String {
    labelled_text(mailbox, entries, None)
}

/// (inventory-truth) The mailbox's line, then `label` (if any) and a table of `entries`, or
/// a sentence when there are none.
fn labelled_text(
    mailbox: &exogate_core::model::ResolvedIdentity,
    entries: &[exogate_core::ports::PermissionEntry],
    label: Option<&str>,
) -> String {
    if entries.is_empty() {
        return format!(
            "{} <{}>\nnobody has {}",
            mailbox.display_name,
            mailbox.primary_address,
            label.unwrap_or("this right")
        );
    }
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
        "{} <{}>\n{}{}",
        mailbox.display_name,
        mailbox.primary_address,
        label.map_or_else(String::new, |l| format!("{l}:\n")),
        table(rows)
    )
}

/// (inventory-truth) `mailbox show`: one table of every right.
fn overview_text(o: &ops::overview::MailboxOverview) -> String {
    let head = format!("{} <{}>", o.mailbox.display_name, o.mailbox.primary_address);
    if o.rights.is_empty() {
        return format!("{head}\nnobody has Full Access, Send As or Send on Behalf");
    }
    let mut rows = vec![vec![
        "RIGHT".to_owned(),
        "TRUSTEE".to_owned(),
        "NAME".to_owned(),
        "KIND".to_owned(),
        "AUTOMAPPING".to_owned(),
    ]];
    for r in &o.rights {
        let p = &r.entry;
        let (who, name) = match &p.resolved {
            Some(i) => (i.primary_address.clone(), i.display_name.clone()),
            None => (p.trustee.clone(), String::new()),
        };
        let kind = match (r.class, r.members) {
            (TrusteeClass::Group, Some(n)) => format!("group ({n} members)"),
            (TrusteeClass::Orphan, _) => "orphan SID (deleted principal)".to_owned(),
            (c, _) => c.as_str().to_owned(),
        };
        rows.push(vec![
            r.right.label().to_owned(),
            exogate_core::text::capped(&who, 80),
            exogate_core::text::capped(&name, 80),
            kind,
            match r.automapping {
                Some(true) => "on",
                Some(false) => "off",
                None => "",
            }
            .to_owned(),
        ]);
    }
    format!("{head}\n{}", table(rows))
}

pub(super) async fn mailbox(cli: &Cli, app: &App, cmd: &MailboxCommand) -> CliResult<()> {
    let ctx = app.ctx();
    let (MailboxCommand::Permissions(args)
    | MailboxCommand::SendAs(args)
    | MailboxCommand::Details(args)
    | MailboxCommand::Show(args)) = cmd;
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
                let mut text = labelled_text(
                    &details.mailbox,
                    &details.send_on_behalf,
                    Some("Send on Behalf"),
                );
                for (k, v) in &details.properties {
                    text.push_str(&format!("\n{k}: {v}"));
                }
                text
            })
        }
        // (inventory-truth)
        MailboxCommand::Show(_) => {
            let o = ops::overview::mailbox_overview(ctx, &actor, &company, &input).await?;
            let of = |right| {
                o.rights
                    .iter()
                    .filter(|r| r.right == right)
                    .map(|r| {
                        let mut v = views::permission(&r.entry);
                        if let (Some(obj), Some(n)) = (v.as_object_mut(), r.members) {
                            obj.insert("members".into(), json!(n));
                        }
                        if let (Some(obj), Some(a)) = (v.as_object_mut(), r.automapping) {
                            obj.insert("automapping".into(), json!(a));
                        }
                        v
                    })
                    .collect::<Vec<_>>()
            };
            use exogate_core::action::Permission as P;
            let value = json!({
                "mailbox": views::identity(&o.mailbox),
                "full_access": of(P::FullAccess),
                "send_as": of(P::SendAs),
                "send_on_behalf": of(P::SendOnBehalf),
            });
            out(cli, value, || overview_text(&o))
        }
    }
}
