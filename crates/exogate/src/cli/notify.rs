//! `exogate notify`: a person's e-mail address and topics, webhook endpoints and the delivery
//! list, over `exogate_core::ops::notify` (the same rules as the API).

use base64::Engine as _;
use clap::Subcommand;
use exogate_core::CompanyId;
use exogate_core::model::{Role, UserName};
use exogate_core::notifications::{DeliveryState, Topics, WebhookFormat};
use exogate_core::ops::{self, notify as notify_ops};
use exogate_core::{CoreError, Denial};
use serde_json::json;

use super::{AsUser, Cli, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views::notify::{DeliveryView, NotifySettingsView, WebhookView};

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Show or set a person's e-mail address and topics (your own; an admin may set anyone's).
    Email {
        /// Whose settings (default: the person in --as).
        #[arg(long)]
        user: Option<String>,
        /// The address mail goes to; an empty string removes it.
        #[arg(long)]
        email: Option<String>,
        /// Topics, comma-separated: approval_waiting, request_outcome, admin_alert, or `all`.
        #[arg(long)]
        topics: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Webhook endpoints (admins).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The newest deliveries and their state (admins).
    Deliveries {
        /// pending, retrying, sent or failed.
        #[arg(long)]
        state: Option<String>,
        /// At most this many deliveries, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        who: AsUser,
    },
}

#[derive(Subcommand, Debug)]
pub enum WebhookCommand {
    /// Add an endpoint. Without --secret a new one is generated and printed once: configure it
    /// at the receiver; exogate never shows it again.
    Add {
        /// A name for the endpoint, shown in lists.
        #[arg(long)]
        name: String,
        /// The receiver's https URL (http only to a loopback host).
        #[arg(long)]
        url: String,
        /// generic, teams or slack.
        #[arg(long, default_value = "generic")]
        format: String,
        /// One company's events only (default: every company).
        #[arg(long)]
        company: Option<String>,
        /// `whsec_` and the base64 of 24 to 64 random bytes.
        #[arg(long, env = "EXOGATE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// The endpoints (never their secrets; URLs as origin only).
    List {
        #[command(flatten)]
        who: AsUser,
    },
    /// Remove an endpoint.
    Remove {
        /// The endpoint's id (from `notify webhook list`).
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
}

fn new_secret() -> String {
    use rand::RngCore as _;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

pub(super) async fn notify(cli: &Cli, app: &App, cmd: &NotifyCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        NotifyCommand::Email {
            user,
            email,
            topics,
            who,
        } => {
            let me = actor(app, who).await?;
            let target = match user {
                None => me.user.id,
                Some(name) => {
                    let name = UserName::parse(name)?;
                    if name != me.user.name && me.user.role < Role::Admin {
                        return Err(CoreError::forbidden(Denial::RoleTooLow {
                            needed: Role::Admin,
                        })
                        .into());
                    }
                    ops::users::find_user(ctx, &name).await?.id
                }
            };
            let current = notify_ops::user_settings(ctx, &me, target).await?;
            let settings = if email.is_some() || topics.is_some() {
                let email = email.clone().or(current.email);
                let topics = match topics {
                    Some(t) => Topics::parse(t)?,
                    None => current.topics,
                };
                notify_ops::set_user_settings(ctx, &me, target, email.as_deref(), topics).await?
            } else {
                current
            };
            let v = NotifySettingsView::of(&settings);
            out(cli, json!(v), || {
                format!(
                    "e-mail: {}\ntopics: {}",
                    v.email.as_deref().unwrap_or("(none)"),
                    v.topics.join(", ")
                )
            })
        }
        NotifyCommand::Webhook(WebhookCommand::Add {
            name,
            url,
            format,
            company,
            secret,
            who,
        }) => {
            let me = actor(app, who).await?;
            let generated = secret.is_none();
            let secret = secret.clone().unwrap_or_else(new_secret);
            let w = notify_ops::add_webhook(
                ctx,
                &me,
                notify_ops::NewWebhook {
                    id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
                    company: company.as_deref().map(CompanyId::parse).transpose()?,
                    name: name.clone(),
                    url: url.clone(),
                    format: WebhookFormat::parse(format)?,
                    secret: secret.clone(),
                },
                &app.outbound_targets(),
            )
            .await?;
            let v = WebhookView::of(&w);
            // The secret this command generated, printed once for the receiver's setup.
            let shown = generated.then_some(secret);
            out(cli, json!({"webhook": v, "secret": shown}), || {
                let mut s = format!("added webhook {} ({}, {})", v.id, v.format, v.url);
                if let Some(secret) = &shown {
                    s.push_str(&format!(
                        "\nsigning secret (shown once; configure it at the receiver): {secret}"
                    ));
                }
                s
            })
        }
        NotifyCommand::Webhook(WebhookCommand::List { who }) => {
            let me = actor(app, who).await?;
            let list = notify_ops::list_webhooks(ctx, &me).await?;
            let views: Vec<WebhookView> = list.iter().map(WebhookView::of).collect();
            out(cli, json!({"webhooks": views}), || {
                let mut rows = vec![vec![
                    "ID".to_owned(),
                    "NAME".to_owned(),
                    "FORMAT".to_owned(),
                    "COMPANY".to_owned(),
                    "URL".to_owned(),
                ]];
                rows.extend(views.iter().map(|w| {
                    vec![
                        w.id.clone(),
                        w.name.clone(),
                        w.format.to_owned(),
                        w.company.clone().unwrap_or_else(|| "(all)".to_owned()),
                        w.url.clone(),
                    ]
                }));
                table(rows)
            })
        }
        NotifyCommand::Webhook(WebhookCommand::Remove { id, who }) => {
            let me = actor(app, who).await?;
            notify_ops::remove_webhook(ctx, &me, id).await?;
            out(cli, json!({"removed": id}), || {
                format!("removed webhook {id}")
            })
        }
        NotifyCommand::Deliveries { state, limit, who } => {
            let me = actor(app, who).await?;
            let state = match state.as_deref() {
                None => None,
                Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
                    CoreError::invalid(
                        "state",
                        "use one of pending, retrying, sent, failed".to_owned(),
                    )
                })?),
            };
            let list = notify_ops::list_deliveries(ctx, &me, state, *limit).await?;
            let views: Vec<DeliveryView> = list.iter().map(DeliveryView::of).collect();
            out(cli, json!({"deliveries": views}), || {
                let mut rows = vec![vec![
                    "ID".to_owned(),
                    "STATE".to_owned(),
                    "TRIES".to_owned(),
                    "TO".to_owned(),
                    "EVENT".to_owned(),
                    "LAST ERROR".to_owned(),
                ]];
                rows.extend(views.iter().map(|d| {
                    vec![
                        d.id.clone(),
                        d.state.to_owned(),
                        d.attempts.to_string(),
                        d.to.clone(),
                        d.event.clone(),
                        d.last_error.clone().unwrap_or_default(),
                    ]
                }));
                table(rows)
            })
        }
    }
}
