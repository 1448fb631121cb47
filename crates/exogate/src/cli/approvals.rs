//! `exogate approvals`: list, show, approve, reject, revert and cancel approval requests.
//! Wherever an id is taken, a unique prefix of at least 8 of its characters is too. Approving
//! and rejecting are a person's act: they take that person's password (on the terminal, or
//! with `--password-stdin`), and approving on a terminal asks for confirmation.

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
        /// The request id, or a unique prefix of at least 8 characters.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Approve a pending request (manager or higher, never your own request): shows the exact
    /// change, asks `Approve? [y/N]` on a terminal, then the approver's password.
    Approve {
        /// The request id, or a unique prefix of at least 8 characters.
        id: String,
        /// Why it is approved (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
        /// Approve without asking for confirmation (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
        /// Read the approver's password from the first line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        who: AsUser,
    },
    /// Reject a pending request, with a reason (asks for the password like approve).
    Reject {
        /// The request id, or a unique prefix of at least 8 characters.
        id: String,
        /// Why it is rejected (shown to the requester and kept in the audit log).
        #[arg(long)]
        reason: String,
        /// Read the password from the first line of stdin instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        who: AsUser,
    },
    // (cli-requests)
    /// Ask to undo a request that succeeded: a new request with the inverse change, which
    /// needs its own approval.
    Revert {
        /// The request id, or a unique prefix of at least 8 characters.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Cancel a pending (or approved, not yet started) request: its requester or a manager.
    Cancel {
        /// The request id, or a unique prefix of at least 8 characters.
        id: String,
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
        "{}  {}  {}  risk {}  by {} via {}  {when}{}\n  {}",
        r.id,
        r.state.as_str(),
        r.company.as_str(),
        r.risk.as_str(),
        r.requester.user_name.as_str(),
        r.requester.channel,
        // (cli-requests)
        r.ticket
            .as_deref()
            .map(|t| format!("  ticket {t}"))
            .unwrap_or_default(),
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
    for (i, res) in r.results.iter().enumerate() {
        text.push_str(&format!(
            "\n  result: {} (before {}, after {}): {}",
            res.outcome.as_str(),
            res.before.map_or("?", |p| p.as_str()),
            res.after.map_or("?", |p| p.as_str()),
            verified_now(r.actions.get(i), res)
        ));
    }
    text
}

// (cli-requests)
/// What the read-back after execution found, in words: the state verified then, not the
/// text written when the request was made.
fn verified_now(
    action: Option<&exogate_core::action::CanonicalAction>,
    res: &exogate_core::request::OperationResult,
) -> String {
    let (Some(a), Some(after)) = (action, res.after) else {
        return format!("not read back: {}", res.message);
    };
    let has = match after {
        exogate_core::action::Presence::Present => "has",
        exogate_core::action::Presence::Absent => "has no",
    };
    format!(
        "{} {} {} {} on {}",
        if res.verified {
            "verified now:"
        } else {
            "NOT as asked, read back:"
        },
        a.trustee.primary_address,
        has,
        a.operation.permission.label(),
        a.mailbox.primary_address
    )
}

/// Reads the password of the person deciding: the first line of stdin with
/// `--password-stdin`, else from the terminal without echo.
fn read_password(name: &str, from_stdin: bool) -> CliResult<String> {
    use std::io::{BufRead as _, IsTerminal as _};
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError {
                code: "invalid_input",
                message: format!("cannot read the password from stdin: {e}"),
            })?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError {
            code: "invalid_input",
            message: "deciding needs your password: there is no terminal to ask on, so pipe it with --password-stdin".to_owned(),
        });
    }
    rpassword::prompt_password(format!("Password for {name}: ")).map_err(|e| CliError {
        code: "invalid_input",
        message: format!("cannot read the password from the terminal: {e}"),
    })
}

/// Checks `password` as the web login does (argon2 under the app's password gate, the same
/// answer for an unknown user, a wrong password or a disabled user) and audits the attempt with
/// the `cli` channel. A wrong one is `login_failed` and nothing is decided.
async fn check_password(app: &App, name: &str, password: String) -> CliResult<()> {
    // (hardening) The user name's lock-out, shared with every replica and CLI process: while it
    // holds, no password is checked, not even the right one.
    let key = crate::login::user_key(name);
    let rule = app.login.user_rule();
    match app
        .store
        .login_user_begin(&key, app.clock.now(), &rule)
        .await
        .map_err(exogate_core::CoreError::from)?
    {
        exogate_core::lockout::Begin::Counted => {}
        exogate_core::lockout::Begin::Refused { wait_secs, audit } => {
            if audit {
                ops::users::record_locked_out(
                    app.ctx(),
                    name,
                    &exogate_core::model::Channel::Cli,
                    wait_secs,
                )
                .await?;
            }
            return Err(CliError {
                code: "too_many_attempts",
                message: format!(
                    "too many wrong passwords for `{name}`; try again in {wait_secs} s; nothing was decided"
                ),
            });
        }
    }
    let user = match exogate_core::UserName::parse(name) {
        Ok(n) => app
            .store
            .get_user_by_name(&n)
            .await
            .map_err(exogate_core::CoreError::from)?,
        Err(_) => None,
    };
    let phc = user
        .as_ref()
        .and_then(|u| u.password_hash.as_ref())
        .map_or_else(
            || crate::passwords::DUMMY_HASH.to_owned(),
            |h| h.expose().to_owned(),
        );
    let matched = app.login.gate.verify(password, phc).await
        && user.as_ref().is_some_and(|u| u.password_hash.is_some());
    let ok = matched && user.as_ref().is_some_and(|u| !u.disabled);
    ops::users::record_login(app.ctx(), name, &exogate_core::model::Channel::Cli, ok).await?;
    if ok {
        // (hardening) A right password clears the user name's failures.
        app.store
            .login_user_succeeded(&key)
            .await
            .map_err(exogate_core::CoreError::from)?;
        Ok(())
    } else {
        Err(CliError {
            code: "login_failed",
            message: format!("wrong password for `{name}` (or no such user); nothing was decided"),
        })
    }
}

/// On a terminal, shows what would be approved and asks; `--yes` skips the question, and
/// without a terminal `--yes` is needed.
fn confirm(r: &exogate_core::request::ApprovalRequest, yes: bool) -> CliResult<()> {
    use std::io::{IsTerminal as _, Write as _};
    if yes {
        return Ok(());
    }
    let refused = CliError {
        code: "not_confirmed",
        message: format!("not approved: {} stays pending", r.id),
    };
    if !std::io::stdin().is_terminal() {
        return Err(CliError {
            message: "stdin is not a terminal, so approve cannot ask for confirmation: add --yes to approve without asking".to_owned(),
            ..refused
        });
    }
    eprintln!(
        "request {} in {} asked by {} (risk {}):",
        r.id,
        r.company.as_str(),
        r.requester.user_name.as_str(),
        r.risk.as_str()
    );
    for a in &r.actions {
        eprintln!("  {}", a.summary());
    }
    eprint!("Approve? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(refused)
    }
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
            let id = ops::requests::resolve_id(ctx, &actor, id).await?;
            let r = ops::requests::get_request(ctx, &actor, id).await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                request_text(&r, app.clock.now())
            })
        }
        ApprovalsCommand::Approve {
            id,
            reason,
            yes,
            password_stdin,
            who,
        } => {
            let actor = actor(app, who).await?;
            let id = ops::requests::resolve_id(ctx, &actor, id).await?;
            let seen = ops::requests::get_request(ctx, &actor, id).await?;
            confirm(&seen, *yes)?;
            let name = actor.user.name.as_str().to_owned();
            check_password(app, &name, read_password(&name, *password_stdin)?).await?;
            let r = ops::requests::approve(ctx, &actor, id, reason.as_deref()).await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                format!("approved {}; a running exogate server executes it", r.id)
            })
        }
        ApprovalsCommand::Reject {
            id,
            reason,
            password_stdin,
            who,
        } => {
            let actor = actor(app, who).await?;
            let id = ops::requests::resolve_id(ctx, &actor, id).await?;
            let name = actor.user.name.as_str().to_owned();
            check_password(app, &name, read_password(&name, *password_stdin)?).await?;
            let r = ops::requests::reject(ctx, &actor, id, Some(reason)).await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                format!("rejected {}", r.id)
            })
        }
        // (cli-requests)
        ApprovalsCommand::Revert { id, who } => {
            let actor = actor(app, who).await?;
            let id = ops::requests::resolve_id(ctx, &actor, id).await?;
            let new_id = RequestId::from_uuid(uuid::Uuid::now_v7());
            let r = ops::requests::revert(ctx, &actor, id, new_id)
                .await
                .map_err(super::request::in_words)?;
            out(cli, views::request(app, &actor, &r).await?, || {
                format!("asked to undo {id}.\n{}", super::request::asked_text(&r))
            })
        }
        ApprovalsCommand::Cancel { id, who } => {
            let actor = actor(app, who).await?;
            let id = ops::requests::resolve_id(ctx, &actor, id).await?;
            let r = ops::requests::cancel(ctx, &actor, id).await?;
            out(cli, views::request(app, &actor, &r).await?, || {
                format!("cancelled {}; nothing will change in Exchange", r.id)
            })
        }
    }
}
