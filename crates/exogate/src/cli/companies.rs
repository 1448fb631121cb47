//! `exogate company`: companies and their Microsoft 365 connection.

use clap::Subcommand;
use exogate_core::model::{Actor, CompanyId, TenantId};
use exogate_core::ops;
use serde_json::json;

use super::{AsUser, Cli, CliResult, actor, out};
use crate::app::App;
use crate::table::table;
use crate::views;

#[derive(Subcommand, Debug)]
pub enum CompanyCommand {
    Add {
        id: String,
        #[arg(long)]
        name: String,
        #[command(flatten)]
        who: AsUser,
    },
    List {
        #[command(flatten)]
        who: AsUser,
    },
    Show {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Print the admin-consent URL that connects the company (single-use, 10 minutes). Not
    /// bound to a browser session: whoever opens it can finish the consent, which still only
    /// connects the tenant it was issued for (the company's own when connected).
    ConnectUrl {
        id: String,
        /// The customer's tenant id, for a company not connected yet (recommended).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        who: AsUser,
    },
    /// Check the Exchange Admin status now.
    Check {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    Disconnect {
        id: String,
        #[command(flatten)]
        who: AsUser,
    },
    /// Change a company's settings (admin).
    Set {
        id: String,
        /// Four eyes: whether the person who asked for a change (through any channel or token
        /// of theirs) is refused as its approver.
        #[arg(long, value_name = "true|false", action = clap::ArgAction::Set, required = true)]
        separate_approver: bool,
        #[command(flatten)]
        who: AsUser,
    },
}

fn company_line(c: &exogate_core::model::Company) -> Vec<String> {
    let (badge, checked) = match &c.exchange_status {
        Some(s) => (s.shown_state().badge().to_owned(), s.checked_at.to_string()),
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
                ]];
                rows.extend(companies.iter().map(company_line));
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
                let mut text = table(vec![company_line(&c)]);
                if let Some(s) = &c.exchange_status {
                    let fix = s.shown_state().fix();
                    if !fix.is_empty() {
                        text.push_str(&format!("\nfix: {fix}"));
                    }
                }
                text
            })
        }
        CompanyCommand::ConnectUrl { id, tenant, who } => {
            let actor = actor(app, who).await?;
            let tenant = tenant.as_deref().map(TenantId::parse).transpose()?;
            let url = connect_url(
                app,
                &actor,
                &ops::companies::resolve(ctx, &actor, id).await?,
                tenant,
            )
            .await?;
            out(cli, json!({"url": url}), || {
                format!(
                    "{url}\n(single use, valid 10 minutes; give it to an admin of the customer's tenant)"
                )
            })
        }
        CompanyCommand::Check { id, who } => {
            let actor = actor(app, who).await?;
            let id = ops::companies::resolve(ctx, &actor, id).await?;
            ops::companies::check_status(ctx, Some(&actor), &id).await?;
            let c = ops::companies::get_company(ctx, &actor, &id).await?;
            out(cli, views::company(&c), || table(vec![company_line(&c)]))
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
    }
}

/// Issues a single-use consent state for connecting `company` and returns the v1 admin-consent
/// URL. The state is bound to the company, the user and the tenant (the company's own when it
/// is connected), not to a browser session: the callback accepts it from any browser.
async fn connect_url(
    app: &App,
    actor: &Actor,
    company: &CompanyId,
    tenant: Option<TenantId>,
) -> CliResult<String> {
    let secret = crate::passwords::random_secret(32);
    let req = ops::consent::ConsentRequest {
        purpose: exogate_core::model::ConsentPurpose::Connect,
        tenant,
        session_id: None,
        state: &secret,
        ttl_secs: crate::web::consent::CONSENT_STATE_TTL_SECS,
    };
    let state = ops::consent::begin(app.ctx(), actor, company, &req).await?;
    let redirect = app.url(crate::web::consent::CALLBACK_PATH);
    let tenant = state.expected_tenant.map(|t| t.as_uuid());
    Ok(app
        .m365
        .connect_consent_url(tenant, &redirect, &secret)
        .to_string())
}
