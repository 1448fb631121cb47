//! A mailbox's delegation, and the form that asks for a change.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Redirect;
use exogate_core::model::IdentityInput;
use exogate_core::ops::{companies, reads, requests};
use exogate_core::tools::ToolName;
use serde::Deserialize;

use crate::web::WebState;
use crate::web::common::new_request_id;
use crate::web::error::{HttpError, PageResult};
use crate::web::layout::{Nav, PageAuth, parse_company};
use crate::web::view::{self, IdentityView};

pub struct EntryView {
    pub name_visible: String,
    pub address: String,
    pub rights: String,
    pub inherited: bool,
    pub deny: bool,
    // (timed-grants)
    /// "until 2026-12-10T17:00:00Z (ends in 3 d)" for a timed grant.
    pub ends: Option<String>,
}

pub struct SectionView {
    pub key: &'static str,
    pub title: &'static str,
    pub remove_tool: &'static str,
    pub entries: Vec<EntryView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "mailbox.html")]
pub struct MailboxPage {
    nav: Option<Nav>,
    csrf: String,
    company_id: String,
    company_name: String,
    mailbox: IdentityView,
    warnings: Vec<String>,
    hidden: bool,
    sections: Vec<SectionView>,
    may_request: bool,
}

fn entry_view(e: &exogate_core::ports::PermissionEntry) -> EntryView {
    match &e.resolved {
        Some(r) => EntryView {
            name_visible: view::shown(&r.display_name),
            address: view::shown(&r.primary_address),
            rights: rights(&e.access_rights),
            inherited: e.inherited,
            deny: e.deny,
            ends: None,
        },
        None => EntryView {
            name_visible: view::shown(&e.trustee),
            address: String::new(),
            rights: rights(&e.access_rights),
            inherited: e.inherited,
            deny: e.deny,
            ends: None,
        },
    }
}

// (timed-grants)
/// The entry with its end, when a timed grant's removal is scheduled for it.
fn with_end(
    mut v: EntryView,
    e: &exogate_core::ports::PermissionEntry,
    ends: &Ends<'_>,
    permission: exogate_core::action::Permission,
) -> EntryView {
    if let Some(r) = &e.resolved
        && let Some(end) =
            exogate_core::ops::timed::end_of(ends.removals, ends.mailbox, &r.object_id, permission)
    {
        v.ends = Some(format!(
            "until {end} ({})",
            exogate_core::timed::ends_in(end, ends.now)
        ));
    }
    v
}

struct Ends<'a> {
    removals: &'a [exogate_core::request::ApprovalRequest],
    mailbox: &'a str,
    now: exogate_core::Timestamp,
}

/// Access rights as shown: each one sanitized.
fn rights(list: &[String]) -> String {
    exogate_core::text::tenant_list(list).join(", ")
}

#[derive(Deserialize)]
pub struct MailboxQuery {
    identity: String,
}

pub async fn mailbox(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(q): Query<MailboxQuery>,
) -> PageResult<MailboxPage> {
    let id = parse_company(&id)?;
    let ident = IdentityInput::parse(&q.identity)?;
    let ctx = st.app.ctx();
    let actor = &auth.0.actor;
    let company = companies::get_company(ctx, actor, &id).await?;
    let (fa, sa, det) = tokio::join!(
        reads::view_mailbox_permissions(ctx, actor, &id, &ident),
        reads::view_send_as_permissions(ctx, actor, &id, &ident),
        reads::view_mailbox_details(ctx, actor, &id, &ident),
    );
    let (mbx, fa) = fa?;
    let (_, sa) = sa?;
    let det = det?;
    // (timed-grants)
    let removals = exogate_core::ops::timed::scheduled_removals(ctx, &id).await?;
    let ends = Ends {
        removals: &removals,
        mailbox: &mbx.object_id,
        now: st.app.clock.now(),
    };
    use exogate_core::action::Permission;
    let entries = |list: &[exogate_core::ports::PermissionEntry], p: Permission| {
        list.iter()
            .map(|e| with_end(entry_view(e), e, &ends, p))
            .collect()
    };
    let sections = vec![
        SectionView {
            key: "full-access",
            title: "Full Access",
            remove_tool: "remove_full_access",
            entries: entries(&fa, Permission::FullAccess),
        },
        SectionView {
            key: "send-as",
            title: "Send As",
            remove_tool: "remove_send_as",
            entries: entries(&sa, Permission::SendAs),
        },
        SectionView {
            key: "send-on-behalf",
            title: "Send on Behalf",
            remove_tool: "remove_send_on_behalf",
            entries: entries(&det.send_on_behalf, Permission::SendOnBehalf),
        },
    ];
    Ok(MailboxPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        company_id: id.to_string(),
        company_name: view::shown(&company.name),
        warnings: view::name_warnings("mailbox", &mbx),
        mailbox: IdentityView::of(&mbx),
        hidden: reads::hidden_from_address_lists(&det),
        sections,
        may_request: exogate_core::policy::can_request(&actor.user, &id).is_ok(),
    })
}

#[derive(Deserialize)]
pub struct ChangeForm {
    #[serde(default)]
    csrf: String,
    tool: String,
    mailbox: String,
    trustee: String,
    #[serde(default)]
    automapping: Option<String>,
    // (timed-grants)
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    until: Option<String>,
    // (cli-requests)
    #[serde(default)]
    ticket: Option<String>,
}

pub async fn request_change(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<ChangeForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let company = parse_company(&id)?;
    let tool = ToolName::parse(&f.tool)
        .filter(|t| t.is_write())
        .ok_or_else(|| {
            HttpError::bad_request(format!("`{}` is not a write tool", view::shown(&f.tool)))
        })?;
    // (cli-requests) With the optional ticket reference.
    let input = requests::WriteManyInput {
        id: new_request_id(),
        company,
        tool,
        mailbox: IdentityInput::parse(&f.mailbox)?,
        trustees: vec![IdentityInput::parse(&f.trustee)?],
        automapping: Some(f.automapping.as_deref() == Some("true")),
        ticket: f.ticket,
        end: requests::EndInput {
            duration: f.duration,
            until: f.until,
        },
    };
    let req = requests::request_write_many(st.app.ctx(), &auth.0.actor, input).await?;
    Ok(super::requests::show_changed(&st, &req))
}
