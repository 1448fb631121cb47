//! `exogate audit`: list the audit log, verify its chain (against signed checkpoints too),
//! create the checkpoint signing key.

use std::path::PathBuf;

use clap::Subcommand;
use exogate_core::model::{CompanyId, RequestId};
use exogate_core::ops;
use exogate_core::{CoreError, Denial};
use serde_json::json;

use super::{AsUser, Cli, CliError, CliResult, actor, out};
use crate::app::App;
use crate::config::Config;
use crate::table::table;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Audit events, newest first; the filters run in the database before --limit.
    List {
        /// One company (needed unless you are a manager entitled to all companies).
        #[arg(long)]
        company: Option<String>,
        /// An event kind such as `request.approved`.
        #[arg(long)]
        kind: Option<String>,
        /// One approval request's events.
        #[arg(long)]
        request: Option<String>,
        /// The acting user's name.
        #[arg(long)]
        actor: Option<String>,
        /// From this date (`2026-12-03`, its start in UTC) or RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Up to this date (`2026-12-03`, its end in UTC) or RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// At most this many events (the newest matching ones).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        who: AsUser,
    },
    /// Walk the hash chain and report the first break; with --checkpoints, also compare it with
    /// signed checkpoints and name the first one it contradicts (a rewritten chain).
    Verify {
        /// A checkpoint file (JSON lines) written by the worker.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The public key (`ed25519 <base64>`) to verify checkpoints with; default: the `.pub`
        /// file beside `[audit] checkpoint_key_file`. Use a copy the server cannot write.
        #[arg(long, requires = "checkpoints")]
        public_key: Option<PathBuf>,
        /// The person verifying (managers and above); without it, the local operator.
        #[arg(long = "as", value_name = "USER")]
        as_user: Option<String>,
    },
    /// Create the checkpoint signing key (`[audit] checkpoint_key_file`, or --out) and print its
    /// public key.
    Keygen {
        /// Where to write the private key (its public key goes beside it, as `.pub`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub(super) async fn audit(
    cli: &Cli,
    app: &App,
    config: &Config,
    cmd: &AuditCommand,
) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        AuditCommand::List {
            company,
            kind,
            request,
            actor: by,
            since,
            until,
            limit,
            who,
        } => {
            use exogate_core::audit::{AuditFilter, DayEnd, parse_time_bound};
            let actor = actor(app, who).await?;
            let filter = AuditFilter {
                company: company.as_deref().map(CompanyId::parse).transpose()?,
                request: request.as_deref().map(RequestId::parse).transpose()?,
                kind: kind.clone(),
                actor: by.clone(),
                since: parse_time_bound("since", since.as_deref().unwrap_or(""), DayEnd::Start)?,
                until: parse_time_bound("until", until.as_deref().unwrap_or(""), DayEnd::End)?,
                before_seq: None,
                limit: *limit,
            };
            let scoped = filter.company.is_some() || filter.request.is_some();
            let events = match ops::audit::search(ctx, &actor, filter).await {
                Ok(page) => page.events,
                Err(
                    e @ CoreError::Forbidden {
                        reason: Denial::NotEntitled | Denial::RoleTooLow { .. },
                    },
                ) if !scoped => {
                    return Err(CliError {
                        code: e.code(),
                        message: format!(
                            "the audit log of every company needs a manager entitled to all companies; add --company COMPANY (or --request ID) ({e})"
                        ),
                    });
                }
                Err(e) => return Err(e.into()),
            };
            let value = json!(events.iter().map(views::audit).collect::<Vec<_>>());
            let now = app.clock.now();
            let actions = if cli.json {
                std::collections::HashMap::new()
            } else {
                request_actions(app, &actor, &events).await
            };
            out(cli, value, || {
                let mut rows = vec![vec![
                    "SEQ".into(),
                    "AT".into(),
                    "KIND".into(),
                    "ACTOR".into(),
                    "COMPANY".into(),
                    "SUMMARY".into(),
                ]];
                rows.extend(events.iter().map(|e| {
                    vec![
                        e.seq.to_string(),
                        crate::local_time::cell(now, e.event.at),
                        e.event.kind.clone(),
                        format!(
                            "{} ({})",
                            e.event.actor_name.as_deref().unwrap_or("system"),
                            e.event.channel
                        ),
                        e.event.company.clone().unwrap_or_default(),
                        summary(e, &actions),
                    ]
                }));
                table(rows)
            })
        }
        AuditCommand::Keygen { out: file } => {
            let path = file
                .clone()
                .unwrap_or_else(|| config.audit_checkpoint_key_file.clone());
            let key = crate::checkpoint::SigningKey::generate(&path)?;
            let public_path = crate::checkpoint::public_key_path(&path);
            out(
                cli,
                json!({"key_file": path.display().to_string(), "public_key_file": public_path.display().to_string(), "public_key": key.public().to_line(), "key_id": key.public().key_id()}),
                || {
                    format!(
                        "created {} (key id {})\npublic key, also in {}: keep a copy where the server cannot write\n{}",
                        path.display(),
                        key.public().key_id(),
                        public_path.display(),
                        key.public().to_line()
                    )
                },
            )
        }
        AuditCommand::Verify {
            checkpoints,
            public_key,
            as_user,
        } => {
            let person = match as_user {
                Some(name) => Some(
                    actor(
                        app,
                        &AsUser {
                            as_user: Some(name.clone()),
                        },
                    )
                    .await?,
                ),
                None => None,
            };
            let who = person.as_ref().map_or(
                ops::audit::Verifier::LocalOperator,
                ops::audit::Verifier::Person,
            );
            match checkpoints {
                Some(file) => {
                    verify_checkpoints(cli, app, config, who, file, public_key.as_deref()).await
                }
                None => verify(cli, app, who).await,
            }
        }
    }
}

// (cli-help)
/// The action of each request the events name (what `SUMMARY` shows beside the request id when
/// the event itself does not say it, as a decision's does not); requests the person may not see
/// are left out.
async fn request_actions(
    app: &App,
    actor: &exogate_core::model::Actor,
    events: &[exogate_core::audit::AuditEvent],
) -> std::collections::HashMap<String, String> {
    let mut actions = std::collections::HashMap::new();
    for id in events.iter().filter_map(|e| e.event.request.as_deref()) {
        if actions.contains_key(id) {
            continue;
        }
        let Ok(rid) = RequestId::parse(id) else {
            continue;
        };
        if let Ok(r) = ops::requests::get_request(app.ctx(), actor, rid).await {
            actions.insert(id.to_owned(), r.summary());
        }
    }
    actions
}

/// An event's summary (`views::audit_summary`), with its request's action after the request id
/// when the event's detail does not carry it.
fn summary(
    e: &exogate_core::audit::AuditEvent,
    actions: &std::collections::HashMap<String, String>,
) -> String {
    let text = views::audit_summary(e);
    let Some(id) = e.event.request.as_deref() else {
        return text;
    };
    match actions.get(id) {
        Some(action) => {
            let action = exogate_core::text::escape_hidden(action);
            if text.contains(&action) {
                return text;
            }
            let head = format!("request {id}");
            match text.strip_prefix(&head) {
                Some(rest) => format!("{head}; {action}{rest}"),
                None => text,
            }
        }
        None => text,
    }
}

/// `audit verify`: the chain on its own.
async fn verify(cli: &Cli, app: &App, who: ops::audit::Verifier<'_>) -> CliResult<()> {
    match ops::audit::verify_as(app.ctx(), who).await? {
        ops::audit::Verification::Intact(report) => out(
            cli,
            json!({"intact": true, "events": report.events, "last_seq": report.last_seq, "last_hash": report.last_hash}),
            || {
                format!(
                    "audit chain intact: {} events, head {} {}",
                    report.events, report.last_seq, report.last_hash
                )
            },
        ),
        ops::audit::Verification::Broken(b) => Err(chain_broken(cli, &b)),
    }
}

/// `audit verify` found the chain itself broken: said on stdout for `--json`, and the error.
fn chain_broken(cli: &Cli, b: &exogate_core::audit::ChainBreak) -> CliError {
    if cli.json {
        super::stdout::line(
            &json!({"intact": false, "first_bad_seq": b.seq, "problem": b.to_string()}).to_string(),
        );
    }
    CliError {
        code: "audit_chain_broken",
        message: format!("audit chain broken: {b}"),
    }
}

/// `audit verify --checkpoints FILE`: every line's signature, then the chain against them.
async fn verify_checkpoints(
    cli: &Cli,
    app: &App,
    config: &Config,
    who: ops::audit::Verifier<'_>,
    file: &std::path::Path,
    public_key: Option<&std::path::Path>,
) -> CliResult<()> {
    use crate::checkpoint::{PublicKey, SigningKey, parse_signed, public_key_path};
    let key = match public_key {
        Some(path) => PublicKey::read(path)?,
        None => {
            let key_file = &config.audit_checkpoint_key_file;
            let beside = public_key_path(key_file);
            if beside.exists() {
                PublicKey::read(&beside)?
            } else if key_file.exists() {
                SigningKey::read(key_file)?.public().clone()
            } else {
                return Err(
                    crate::checkpoint::CheckpointError::NoPublicKey { path: beside }.into(),
                );
            }
        }
    };
    let text = std::fs::read_to_string(file).map_err(|e| {
        crate::checkpoint::CheckpointError::FileUnreadable {
            path: file.to_owned(),
            reason: e.to_string(),
        }
    })?;
    let signed = match parse_signed(&text, &key) {
        Ok(signed) => signed,
        Err(forged) => {
            if cli.json {
                super::stdout::line(
                    &json!({"intact": false, "key_id": key.key_id(), "forged_checkpoint": {"line": forged.line, "seq": forged.seq, "at": forged.at, "problem": forged.reason}}).to_string(),
                );
            }
            return Err(CliError {
                code: "audit_checkpoint_forged",
                message: format!("{}: {forged}", file.display()),
            });
        }
    };
    let lines: Vec<usize> = signed.iter().map(|(line, _)| *line).collect();
    let checkpoints = signed.into_iter().map(|(_, c)| c).collect();
    match ops::audit::verify_with_checkpoints_as(app.ctx(), who, checkpoints).await? {
        ops::audit::CheckedVerification::Intact {
            report,
            checkpoints,
        } => out(
            cli,
            json!({"intact": true, "events": report.events, "last_seq": report.last_seq, "last_hash": report.last_hash, "checkpoints": checkpoints, "key_id": key.key_id()}),
            || {
                format!(
                    "audit chain intact and agrees with {checkpoints} signed checkpoints (key {}): {} events, head {} {}",
                    key.key_id(),
                    report.events,
                    report.last_seq,
                    report.last_hash
                )
            },
        ),
        ops::audit::CheckedVerification::Broken(b) => Err(chain_broken(cli, &b)),
        ops::audit::CheckedVerification::Contradicted(c) => {
            let line = lines.get(c.index).copied().unwrap_or_default();
            if cli.json {
                super::stdout::line(
                    &json!({"intact": false, "contradicted_checkpoint": {"line": line, "seq": c.checkpoint.seq, "at": c.checkpoint.at.to_string(), "head": c.checkpoint.head, "problem": c.to_string()}}).to_string(),
                );
            }
            Err(CliError {
                code: "audit_checkpoint_contradicted",
                message: format!(
                    "audit chain contradicts the checkpoint on line {line} of {}: {c}",
                    file.display()
                ),
            })
        }
    }
}
