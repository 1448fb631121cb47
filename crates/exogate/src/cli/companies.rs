//! `exogate company`: companies and their Microsoft 365 connection.

use clap::Subcommand;
use exogate_core::model::{Actor, CompanyId, ConsentPurpose, TenantId};
use exogate_core::ops;
use serde_json::json;

use super::{AsUser, Cli, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum CompanyCommand {
    /// Add a company (admin); connect its tenant next with `company connect-url`.
    Add {
        /// A short id for the company (such as `contoso`), used in every command.
        id: String,
        /// The company's display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// List your companies: tenant, Exchange Admin status, when checked, and the FIX command.
    List {
        #[command(flatten)]
        who: AsUser,
    },
    /// Show one company: its connection, Exchange Admin status and what to do next.
    Show {
        /// The company: its id (such as `contoso`) or its name.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Print the admin-consent URL that connects the company (single-use, 10 minutes). Not
    /// bound to a browser session: whoever opens it can finish the consent, which still only
    /// connects the tenant it was issued for (the company's own when connected).
    ConnectUrl {
        /// The company: its id (such as `contoso`) or its name.
        id: String,
        /// The customer's tenant id, for a company not connected yet (recommended).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Print the Exchange app's admin-consent URL of a connected company (the web app's
    /// Authorize button): a Global Administrator of the customer's tenant opens it to let exogate
    /// manage Exchange. Single use, valid 10 minutes, for the company's own tenant only.
    AuthorizeUrl {
        /// The company: its id (such as `contoso`) or its name.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Check the Exchange Admin status now.
    Check {
        /// The company: its id (such as `contoso`) or its name.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Disconnect the company from its Microsoft 365 tenant.
    Disconnect {
        /// The company: its id (such as `contoso`) or its name.
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Change a company's settings (admin).
    Set {
        /// The company: its id (such as `contoso`) or its name.
        id: String,
        /// Four eyes: whether the person who asked for a change (through any channel or token
        /// of theirs) is refused as its approver.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set, required = true)]
        separate_approver: bool,
        #[command(flatten)]
        who: AsUser,
    },
    // (timed-grants)
    /// Set a company's rule for grant ends (admin): whether every grant must end, and the
    /// longest a grant may last.
    GrantEnds {
        /// The company (its id or its name).
        id: String,
        /// Whether every grant must carry an end (`duration` or `until`).
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set, required = true)]
        require_end: bool,
        /// The longest a grant may last, e.g. `7d`; leave it out for no cap.
        #[arg(long, value_name = "DURATION")]
        max_duration: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
}

fn company_line(c: &exogate_core::model::Company, now: exogate_core::Timestamp) -> Vec<String> {
    let (badge, checked) = match &c.exchange_status {
        Some(s) => (
            s.shown_state().badge().to_owned(),
            crate::local_time::cell(now, s.checked_at),
        ),
        None if c.connection.is_some() => ("(not checked)".to_owned(), String::new()),
        None => ("(not connected)".to_owned(), String::new()),
    };
    vec![
        c.id.as_str().to_owned(),
        c.name.clone(),
        c.connection
            .as_ref()
            .map(|x| x.tenant_id.to_string())
            .unwrap_or_default(),
        badge,
        checked,
    ]
}

/// The next command to run before exogate can work in the company ("" when nothing): the
/// `FIX` column of `company list`.
fn fix(c: &exogate_core::model::Company) -> String {
    use exogate_core::model::ExchangeAdminState as S;
    let id = c.id.as_str();
    match (
        &c.connection,
        c.exchange_status.as_ref().map(|s| s.shown_state()),
    ) {
        (None, _) | (Some(_), Some(S::TenantNotFound)) => {
            format!("exogate company connect-url {id}")
        }
        (Some(_), Some(S::NotConfigured | S::WrongTenant)) => {
            format!("exogate company authorize-url {id}")
        }
        (Some(_), Some(S::Configured)) => String::new(),
        (Some(_), Some(S::AppCredentialsInvalid)) => {
            "renew exogate's app secret or certificate (MSP administrator)".to_owned()
        }
        (Some(_), None | Some(S::RoleMissing | S::Propagating | S::CheckFailed)) => {
            format!("exogate company check {id}")
        }
    }
}

pub(super) async fn company(cli: &Cli, app: &App, cmd: &CompanyCommand) -> CliResult<()> {
    let ctx = app.ctx();
    match cmd {
        CompanyCommand::Add { id, name, who } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::add_company(ctx, &actor, CompanyId::parse(id)?, name).await?;
            out(cli, views::company(&c), || {
                format!("added {}", c.id.as_str())
            })
        }
        CompanyCommand::List { who } => {
            let actor = actor(app, who).await?;
            let companies = ops::companies::list_companies(ctx, &actor).await?;
            let value = json!(companies.iter().map(views::company).collect::<Vec<_>>());
            out(cli, value, || {
                let mut rows = vec![vec![
                    "ID".into(),
                    "NAME".into(),
                    "TENANT".into(),
                    "EXCHANGE ADMIN".into(),
                    "CHECKED".into(),
                    "FIX".into(),
                ]];
                rows.extend(companies.iter().map(|c| {
                    let mut row = company_line(c, app.clock.now());
                    row.push(fix(c));
                    row
                }));
                table(rows)
            })
        }
        CompanyCommand::Show { id, who } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::get_company(
                ctx,
                &actor,
                &ops::companies::resolve(ctx, &actor, id).await?,
            )
            .await?;
            out(cli, views::company(&c), || {
                company_text(&c, app.clock.now())
            })
        }
        CompanyCommand::ConnectUrl { id, tenant, who } => {
            let actor = actor(app, who).await?;
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            let url = consent_url(
                app,
                &actor,
                &ops::companies::resolve(ctx, &actor, id).await?,
                ConsentPurpose::Connect,
                tenant,
            )
            .await?;
            out(cli, json!({"url": url}), || {
                format!(
                    "{url}\n(single use, valid 10 minutes; give it to an admin of the customer's tenant)"
                )
            })
        }
        CompanyCommand::AuthorizeUrl { id, who } => {
            let actor = actor(app, who).await?;
            let id = ops::companies::resolve(ctx, &actor, id).await?;
            let url = consent_url(app, &actor, &id, ConsentPurpose::Authorize, None).await?;
            out(cli, json!({"url": url}), || {
                format!(
                    "{url}\n(single use, valid 10 minutes; a Global Administrator of the customer's tenant opens it, then run: exogate company check {id})"
                )
            })
        }
        CompanyCommand::Check { id, who } => {
            let actor = actor(app, who).await?;
            let id = ops::companies::resolve(ctx, &actor, id).await?;
            ops::companies::check_status(ctx, Some(&actor), &id).await?;
            let c = ops::companies::get_company(ctx, &actor, &id).await?;
            out(cli, views::company(&c), || {
                company_text(&c, app.clock.now())
            })
        }
        CompanyCommand::Disconnect { id, who } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::disconnect(
                ctx,
                &actor,
                &ops::companies::resolve(ctx, &actor, id).await?,
            )
            .await?;
            out(cli, views::company(&c), || {
                format!("disconnected {}", c.id.as_str())
            })
        }
        CompanyCommand::Set {
            id,
            separate_approver,
            who,
        } => {
            let actor = actor(app, who).await?;
            let c = ops::companies::set_separate_approver(
                ctx,
                &actor,
                &ops::companies::resolve(ctx, &actor, id).await?,
                *separate_approver,
            )
            .await?;
            out(cli, views::company(&c), || {
                format!(
                    "{}: separate approver {}",
                    c.id.as_str(),
                    if c.separate_approver { "on" } else { "off" }
                )
            })
        }
        // (timed-grants)
        CompanyCommand::GrantEnds {
            id,
            require_end,
            max_duration,
            who,
        } => {
            let actor = actor(app, who).await?;
            let company = ops::companies::resolve(ctx, &actor, id).await?;
            let max_secs = match max_duration.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(d) => Some(exogate_core::timed::parse_duration_secs("max_duration", d)?),
            };
            let rule = exogate_core::timed::GrantEndPolicy {
                end_required: *require_end,
                max_secs,
            };
            let p = ops::timed::set_grant_end_policy(ctx, &actor, &company, rule).await?;
            let json = serde_json::json!({
                "company": company.as_str(), "end_required": p.end_required,
                "max_duration": p.max_secs.map(exogate_core::timed::format_secs),
                "max_secs": p.max_secs,
            });
            out(cli, json, || {
                format!(
                    "{}: grants must end: {}; longest: {}",
                    company.as_str(),
                    if p.end_required { "yes" } else { "no" },
                    p.max_secs
                        .map_or_else(|| "no cap".to_owned(), exogate_core::timed::format_secs)
                )
            })
        }
    }
}

/// Issues a single-use consent state for connecting `company` and returns the v1 admin-consent
/// URL. The state is bound to the company, the user and the tenant (the company's own when it
/// is connected), not to a browser session: the callback accepts it from any browser.
/// A consent URL not bound to a browser session: `Connect` (the connect app, any tenant the
/// company may take) or `Authorize` (the Exchange app, in the company's own tenant).
async fn consent_url(
    app: &App,
    actor: &Actor,
    company: &CompanyId,
    purpose: ConsentPurpose,
    tenant: Option<TenantId>,
) -> CliResult<String> {
    let secret = crate::passwords::random_secret(32);
    let req = ops::consent::ConsentRequest {
        purpose,
        tenant,
        session_id: None,
        state: &secret,
        ttl_secs: crate::web::consent::CONSENT_STATE_TTL_SECS,
    };
    let state = ops::consent::begin(app.ctx(), actor, company, &req).await?;
    let redirect = app.url(crate::web::consent::CALLBACK_PATH);
    let tenant = state.expected_tenant.map(|t| t.as_uuid());
    let url = match (purpose, tenant) {
        (ConsentPurpose::Authorize, Some(t)) => {
            app.m365.exchange_consent_url(t, &redirect, &secret)
        }
        _ => app.m365.connect_consent_url(tenant, &redirect, &secret),
    };
    Ok(url.to_string())
}

/// A company as a one-row table, then what to do (the badge's advice) and the command for it.
fn company_text(c: &exogate_core::model::Company, now: exogate_core::Timestamp) -> String {
    let mut text = table(vec![company_line(c, now)]);
    if let Some(s) = &c.exchange_status {
        let advice = s.shown_state().fix();
        if !advice.is_empty() {
            text.push_str(&format!("\nfix: {advice}"));
        }
    }
    let next = fix(c);
    if !next.is_empty() {
        text.push_str(&format!("\nnext: {next}"));
    }
    text
}
