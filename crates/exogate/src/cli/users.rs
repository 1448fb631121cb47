//! `exogate user` and `exogate token`: local users and API tokens (secrets shown once).

use anyhow::Context as _;
use clap::Subcommand;
use exogate_core::model::{ApiTokenId, Entitlement, Role, UserName};
use exogate_core::ops;
use exogate_core::ops::users::{Admin, UserUpdate};
use serde_json::json;

use super::{Cli, CliError, CliResult, out};
use crate::app::App;
use crate::table::table;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user. The password is read from standard input (one line).
    Add {
        /// The new user's sign-in name.
        name: String,
        /// What the user may do: view, request (technician), decide (manager) or administer.
        #[arg(long, value_parser = ["viewer", "technician", "manager", "admin"])]
        role: String,
        /// Comma-separated company ids, or `all` (also `*`) for every company.
        #[arg(long, default_value = "all")]
        companies: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the local users: role, companies, whether disabled.
    List,
    /// Disable a user: they can no longer sign in or act.
    Disable {
        /// The user's sign-in name.
        name: String,
    },
    // (msft-signin)
    /// Enrol a local user's second factor (TOTP): prints the secret (as an otpauth:// URI for an
    /// authenticator app) and ten single-use recovery codes, once. Replaces an earlier one.
    SecondFactor {
        /// The local user's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a token for a user; the secret is printed once.
    Create {
        /// The user the token acts as.
        #[arg(long)]
        user: String,
        /// A label for the token (which agent or script holds it).
        #[arg(long, default_value = "agent")]
        name: String,
    },
    /// List API tokens: id, label, when created, last used and revoked.
    List {
        /// Only this user's tokens.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id (from `token list`).
        id: String,
    },
}

fn read_password_line() -> CliResult<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.chars().count() < 12 {
        return Err(CliError {
            code: "invalid_password",
            message: "passwords need at least 12 characters".to_owned(),
        });
    }
    Ok(password)
}

pub(super) async fn user(cli: &Cli, app: &App, cmd: &UserCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        UserCommand::Add {
            name,
            role,
            companies,
            password_stdin,
        } => {
            let (password, generated) = if *password_stdin {
                (read_password_line()?, false)
            } else {
                (crate::passwords::random_secret(15), true)
            };
            let user = crate::local_users::add_with_password(
                ctx,
                UserName::parse(name)?,
                Role::parse(role)?,
                entitlement(companies)?,
                &password,
            )
            .await?;
            let mut value = views::user(&user);
            if generated {
                value["password"] = json!(password);
            }
            out(cli, value, || {
                let mut text = format!("added {} ({})", user.name.as_str(), user.role.as_str());
                if generated {
                    text.push_str(&format!("\npassword (shown once): {password}"));
                }
                text
            })
        }
        UserCommand::List => {
            let users = ops::users::list_users(ctx, Admin::LocalOperator).await?;
            let value = json!(users.iter().map(views::user).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "NAME".into(),
                    "ROLE".into(),
                    "COMPANIES".into(),
                    "DISABLED".into(),
                ]];
                rows.extend(users.iter().map(|u| {
                    vec![
                        u.name.as_str().to_owned(),
                        u.role.as_str().to_owned(),
                        u.entitlement.encode(),
                        u.disabled.to_string(),
                    ]
                }));
                table(rows)
            })
        }
        UserCommand::Disable { name } => {
            let user = ops::users::update_user(
                ctx,
                Admin::LocalOperator,
                &UserName::parse(name)?,
                UserUpdate {
                    role: None,
                    entitlement: None,
                    disabled: Some(true),
                    password_hash: None,
                },
            )
            .await?;
            out(cli, views::user(&user), || {
                format!("disabled {}", user.name.as_str())
            })
        }
        // (msft-signin)
        UserCommand::SecondFactor { name } => {
            let user = ops::users::find_user(ctx, &UserName::parse(name)?).await?;
            let e = crate::local_users::enrol_second_factor(ctx, &user).await?;
            let value = json!({"user": user.name.as_str(), "otpauth_uri": e.uri, "secret": e.secret, "recovery_codes": e.recovery_codes});
            out(cli, value, || {
                format!(
                    "second factor of {}\nadd to an authenticator app: {}\n(secret {})\nrecovery codes, each usable once (shown only now):\n{}",
                    user.name.as_str(),
                    e.uri,
                    e.secret,
                    e.recovery_codes.join("\n")
                )
            })
        }
    }
}

pub(super) async fn token(cli: &Cli, app: &App, cmd: &TokenCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        TokenCommand::Create { user, name } => {
            let secret = crate::passwords::new_api_token_secret();
            let token = ops::users::create_token(
                ctx,
                Admin::LocalOperator,
                ApiTokenId::from_uuid(uuid::Uuid::now_v7()),
                &UserName::parse(user)?,
                name,
                &secret,
            )
            .await?;
            let mut value = views::token(&token);
            value["secret"] = json!(secret);
            out(cli, value, || {
                format!(
                    "token {} for {user}\nsecret (shown once): {secret}",
                    token.id
                )
            })
        }
        TokenCommand::List { user } => {
            let owner = user.as_deref().map(UserName::parse).transpose()?;
            let tokens = ops::users::list_tokens(ctx, Admin::LocalOperator, owner.as_ref()).await?;
            let value = json!(tokens.iter().map(views::token).collect::<Vec<_>>());
            let now = app.clock.now();
            out(cli, value, || {
                let mut rows = vec![vec![
                    "ID".into(),
                    "NAME".into(),
                    "CREATED".into(),
                    "LAST USED".into(),
                    "REVOKED".into(),
                ]];
                rows.extend(tokens.iter().map(|t| {
                    vec![
                        t.id.to_string(),
                        t.name.clone(),
                        crate::local_time::cell(now, t.created_at),
                        t.last_used_at
                            .map(|x| crate::local_time::cell(now, x))
                            .unwrap_or_default(),
                        t.revoked_at
                            .map(|x| crate::local_time::cell(now, x))
                            .unwrap_or_default(),
                    ]
                }));
                table(rows)
            })
        }
        TokenCommand::Revoke { id } => {
            let token =
                ops::users::revoke_token(ctx, Admin::LocalOperator, ApiTokenId::parse(id)?).await?;
            out(cli, views::token(&token), || {
                format!("revoked {}", token.id)
            })
        }
    }
}

/// `--companies`: `all` or `*` for every company, else company ids separated by commas. (The
/// stored form knows only `*`; `all` used to be taken as a company named "all".)
fn entitlement(arg: &str) -> Result<Entitlement, exogate_core::CoreError> {
    if arg.trim().eq_ignore_ascii_case("all") {
        return Ok(Entitlement::All);
    }
    Entitlement::parse(arg)
}
