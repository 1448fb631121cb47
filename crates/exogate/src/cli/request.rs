//! `exogate request grant-… | remove-…`: ask for a change from the command line, through the same
//! core operation the API and MCP use. Several `--trustee` make one request with one action per
//! trustee. Prints the request id, its risk, the canonical action(s) and the complete command
//! that approves it.

use clap::{Args, Subcommand};
use exogate_core::model::{IdentityInput, RequestId};
use exogate_core::ops;
use exogate_core::request::ApprovalRequest;
use exogate_core::tools::ToolName;

use super::{AsUser, Cli, CliError, CliResult, actor, out};
use crate::app::App;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum RequestCommand {
    /// Ask to grant Full Access on a mailbox to one or more trustees.
    GrantFullAccess(WriteArgs),
    /// Ask to grant Send As on a mailbox to one or more trustees.
    GrantSendAs(WriteArgs),
    /// Ask to grant Send on Behalf on a mailbox to one or more trustees.
    GrantSendOnBehalf(WriteArgs),
    /// Ask to remove Full Access on a mailbox from one or more trustees.
    RemoveFullAccess(WriteArgs),
    /// Ask to remove Send As on a mailbox from one or more trustees.
    RemoveSendAs(WriteArgs),
    /// Ask to remove Send on Behalf on a mailbox from one or more trustees.
    RemoveSendOnBehalf(WriteArgs),
}

/// What every `request` subcommand takes.
#[derive(Args, Debug)]
pub struct WriteArgs {
    /// The company (its id or its name).
    #[arg(long)]
    pub company: String,
    /// The mailbox (address, UPN, alias or object id).
    #[arg(long)]
    pub mailbox: String,
    /// Who gets or loses the right (address, UPN, alias or object id); repeat for several
    /// trustees in one request.
    #[arg(long = "trustee", required = true, value_name = "TRUSTEE")]
    pub trustees: Vec<String>,
    /// With Full Access: let Outlook add the mailbox automatically (automapping).
    #[arg(long)]
    pub automapping: bool,
    /// The PSA ticket the change belongs to (shown to the approver, not part of the digest).
    #[arg(long, value_name = "REF")]
    pub ticket: Option<String>,
    /// A grant that ends by itself after this long (`8h`, `7d`); exogate removes it then, under
    /// the same approval. One trustee only.
    #[arg(long, value_name = "DURATION", conflicts_with = "until")]
    pub duration: Option<String>,
    /// A grant that ends by itself at this time (RFC 3339, or a date meaning midnight UTC).
    #[arg(long, value_name = "WHEN")]
    pub until: Option<String>,
    #[command(flatten)]
    pub who: AsUser,
}

impl RequestCommand {
    fn parts(&self) -> (ToolName, &WriteArgs) {
        match self {
            RequestCommand::GrantFullAccess(a) => (ToolName::GrantFullAccess, a),
            RequestCommand::GrantSendAs(a) => (ToolName::GrantSendAs, a),
            RequestCommand::GrantSendOnBehalf(a) => (ToolName::GrantSendOnBehalf, a),
            RequestCommand::RemoveFullAccess(a) => (ToolName::RemoveFullAccess, a),
            RequestCommand::RemoveSendAs(a) => (ToolName::RemoveSendAs, a),
            RequestCommand::RemoveSendOnBehalf(a) => (ToolName::RemoveSendOnBehalf, a),
        }
    }
}

pub(super) async fn request(cli: &Cli, app: &App, cmd: &RequestCommand) -> CliResult<()> {
    let (tool, args) = cmd.parts();
    let ctx = app.ctx();
    let actor = actor(app, &args.who).await?;
    if args.automapping && tool != ToolName::GrantFullAccess {
        return Err(CliError {
            code: "invalid_input",
            message: "--automapping goes only with grant-full-access".to_owned(),
        });
    }
    let trustees = args
        .trustees
        .iter()
        .map(|t| IdentityInput::parse(t))
        .collect::<Result<Vec<_>, _>>()?;
    let input = ops::requests::WriteManyInput {
        id: RequestId::from_uuid(uuid::Uuid::now_v7()),
        company: ops::companies::resolve(ctx, &actor, &args.company).await?,
        tool,
        mailbox: IdentityInput::parse(&args.mailbox)?,
        trustees,
        automapping: (tool == ToolName::GrantFullAccess).then_some(args.automapping),
        ticket: args.ticket.clone(),
        end: ops::requests::EndInput {
            duration: args.duration.clone(),
            until: args.until.clone(),
        },
    };
    let r = ops::requests::request_write_many(ctx, &actor, input)
        .await
        .map_err(in_words)?;
    out(cli, views::request(app, &actor, &r).await?, || {
        asked_text(&r)
    })
}

/// A request that would change nothing, said as a person would.
pub(super) fn in_words(e: exogate_core::CoreError) -> CliError {
    let code = e.code();
    match e {
        exogate_core::CoreError::Conflict {
            reason: exogate_core::ConflictReason::AlreadyInState { what },
        } => CliError {
            code,
            message: format!("nothing to ask for: {what}. No request was made."),
        },
        other => other.into(),
    }
}

/// What was asked, and the command that approves it.
pub(super) fn asked_text(r: &ApprovalRequest) -> String {
    let mut text = format!(
        "request {} is pending approval (risk {}, {} action(s), expires {}):\n",
        r.id,
        r.risk.as_str(),
        r.actions.len(),
        r.expires_at
    );
    if let Some(t) = &r.ticket {
        text.push_str(&format!("  ticket {t}\n"));
    }
    for a in &r.actions {
        text.push_str(&format!("  {}\n", a.summary()));
    }
    text.push_str(&format!(
        "a manager other than {} approves it with:\n  exogate approvals approve {} --as MANAGER",
        r.requester.user_name.as_str(),
        r.id
    ));
    text
}
