//! Companies: add, list, show, rename, the separate-approver rule, connect / reconnect / disconnect, Exchange Admin status.

use serde_json::json;

use super::Ctx;
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{ConflictReason, CoreError, Entity};
use crate::model::{
    Actor, Company, CompanyId, Connection, ExchangeAdminState, StatusRecord, TenantId, parse_label,
};
use crate::policy;
use crate::ports::{MsError, StoreError};

/// Loads a company or fails with `company_not_found`.
pub(crate) async fn load(ctx: Ctx<'_>, id: &CompanyId) -> Result<Company, CoreError> {
    ctx.store
        .get_company(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::Company, id))
}

/// Loads a company the actor may see (entitlement first, so a foreign id reveals nothing).
pub(crate) async fn load_visible(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
) -> Result<Company, CoreError> {
    policy::can_view(&actor.user, id).map_err(CoreError::forbidden)?;
    load(ctx, id).await
}

/// The connection of a company, or `company_not_connected`.
pub(crate) fn connection(company: &Company) -> Result<&Connection, CoreError> {
    company
        .connection
        .as_ref()
        .ok_or_else(|| CoreError::conflict(ConflictReason::NotConnected))
}

/// Maps a Microsoft error to what the caller can do. `what` names the identity being resolved.
pub(crate) fn ms_error(e: MsError, what: Entity) -> CoreError {
    match e {
        MsError::NotFound { identity } => CoreError::not_found(what, identity),
        MsError::Ambiguous { candidates, .. } => {
            CoreError::conflict(ConflictReason::Ambiguous { candidates })
        }
        MsError::NotConfigured { state, .. } => CoreError::NotConfigured { state },
        MsError::Unavailable { detail, .. } => CoreError::Unavailable {
            what: format!("Microsoft ({detail})"),
        },
        MsError::Rejected { code, message } => CoreError::conflict(ConflictReason::Rejected {
            message: format!("{code}: {message}"),
        }),
    }
}

/// (inventory-truth) [`ms_error`] for resolving what a person typed (`typed`) in `company`:
/// Exchange's not-found becomes `mailbox 'suport' not found in Contoso` (Exchange's own text,
/// which names its servers, is dropped), and a refusal to resolve (nothing was written) an
/// input error (`invalid_input`), not `rejected_by_exchange`.
pub(crate) fn resolve_error(e: MsError, what: Entity, typed: &str, company: &Company) -> CoreError {
    match e {
        MsError::NotFound { .. } => CoreError::not_found_in(what, typed, &company.name),
        MsError::Rejected { .. } => CoreError::invalid(
            what.as_str(),
            format!(
                "'{}' cannot be looked up as one recipient in {}; use the email address, alias or object id",
                crate::text::capped(typed.trim(), 80),
                company.name
            ),
        ),
        other => ms_error(other, what),
    }
}

/// Adds a company (admin). Its separate-approver rule starts as the configured default.
pub async fn add_company(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CompanyId,
    name: &str,
) -> Result<Company, CoreError> {
    policy::can_admin(&actor.user).map_err(CoreError::forbidden)?;
    let name = parse_label("name", name, 200)?;
    let now = ctx.clock.now();
    let company = Company {
        id: id.clone(),
        name,
        connection: None,
        exchange_status: None,
        separate_approver: ctx.settings.default_separate_approver,
        created_at: now,
    };
    let ev = NewAuditEvent::new(now, AuditKind::CompanyAdded, Some(actor))
        .company(&id)
        .detail(json!({ "name": company.name, "separate_approver": company.separate_approver }));
    ctx.store.insert_company(&company, ev).await?;
    Ok(company)
}

/// The companies the actor is entitled to, by id.
pub async fn list_companies(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Company>, CoreError> {
    if actor.user.disabled {
        return Err(CoreError::forbidden(crate::Denial::UserDisabled));
    }
    let all = ctx.store.list_companies().await?;
    Ok(all
        .into_iter()
        .filter(|c| actor.user.entitlement.covers(&c.id))
        .collect())
}

pub async fn get_company(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
) -> Result<Company, CoreError> {
    load_visible(ctx, actor, id).await
}

/// Renames a company (manager+). Touches only the name: the separate-approver rule is
/// [`set_separate_approver`]'s, and a rename never writes it back.
pub async fn rename(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
    name: &str,
) -> Result<Company, CoreError> {
    policy::can_manage_company(&actor.user, id).map_err(CoreError::forbidden)?;
    let name = parse_label("name", name, 200)?;
    let before = load(ctx, id).await?;
    let ev = NewAuditEvent::new(
        ctx.clock.now(),
        AuditKind::CompanySettingsChanged,
        Some(actor),
    )
    .company(id)
    .detail(json!({ "setting": "name", "old": before.name, "new": name }));
    ctx.store.rename_company(id, &name, ev).await?;
    load(ctx, id).await
}

/// Turns the company's separate-approver rule (four eyes) on or off (admin only). While it is
/// on, nobody may approve a request they asked for, through any channel or token of theirs;
/// the rule is read again at decision and at execution time. A change is audited with the old
/// and new value; setting the value it already has changes and records nothing.
pub async fn set_separate_approver(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
    value: bool,
) -> Result<Company, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_set_separate_approver(actor, id).map_err(CoreError::forbidden)?;
    let before = load(ctx, id).await?;
    if before.separate_approver == value {
        return Ok(before);
    }
    let ev = NewAuditEvent::new(
        ctx.clock.now(),
        AuditKind::CompanySettingsChanged,
        Some(actor),
    )
    .company(id)
    .detail(json!({ "setting": "separate_approver", "old": !value, "new": value }));
    // Written only if the value is still the old one, so the audited old value is the real
    // one; if it is not, someone else made the same change meanwhile (and recorded it).
    ctx.store
        .set_separate_approver(id, !value, value, ev)
        .await?;
    load(ctx, id).await
}

/// What the consent callback learnt about the tenant (after the edge verified it with a token).
#[derive(Clone, Debug)]
pub struct ConnectInput {
    pub tenant_id: TenantId,
    pub display_name: String,
    pub default_domain: String,
}

/// A name the tenant chose (its display name or domain): tenant text, so it is kept in the
/// sanitizer's escaped and capped form rather than refused. A customer whose tenant is called
/// "Contoso ❤️" (a variation selector) or carries a bidi mark can still be connected, and every
/// reader (pages, API, MCP, CLI) sees the same inert text.
fn tenant_label(field: &'static str, s: &str) -> Result<String, CoreError> {
    parse_label(
        field,
        &crate::text::tenant_text(s.trim()),
        crate::text::MAX_CHARS * 2,
    )
}

fn new_connection(ctx: Ctx<'_>, input: &ConnectInput) -> Result<Connection, CoreError> {
    Ok(Connection {
        tenant_id: input.tenant_id,
        display_name: tenant_label("display_name", &input.display_name)?,
        default_domain: tenant_label("default_domain", &input.default_domain)?,
        connected_at: ctx.clock.now(),
    })
}

/// The company other than `except` that is linked to `tenant`, if any.
pub(crate) async fn tenant_holder(
    ctx: Ctx<'_>,
    tenant: TenantId,
    except: &CompanyId,
) -> Result<Option<CompanyId>, CoreError> {
    Ok(ctx
        .store
        .list_companies()
        .await?
        .into_iter()
        .find(|c| &c.id != except && c.connection.as_ref().is_some_and(|k| k.tenant_id == tenant))
        .map(|c| c.id))
}

/// Stores a connection; a tenant another company holds (the unique index on the tenant id, also
/// when two callbacks race) is `tenant_already_linked`.
async fn store_connection(
    ctx: Ctx<'_>,
    id: &CompanyId,
    conn: &Connection,
    ev: NewAuditEvent,
) -> Result<(), CoreError> {
    if tenant_holder(ctx, conn.tenant_id, id).await?.is_some() {
        return Err(CoreError::conflict(ConflictReason::TenantLinked));
    }
    match ctx.store.set_connection(id, Some(conn), ev).await {
        Err(StoreError::Duplicate) => Err(CoreError::conflict(ConflictReason::TenantLinked)),
        r => Ok(r?),
    }
}

/// Records a first connection (technician+). Refused if the company is already connected, or
/// if another company holds the tenant.
pub async fn connect(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
    input: &ConnectInput,
) -> Result<Company, CoreError> {
    link_tenant(ctx, actor, id, input, false).await
}

/// Runs the flow again for the company's own tenant: replaces the connection (technician+),
/// dropping the old status. Another tenant is refused: that is [`move_tenant`] (manager+).
pub async fn reconnect(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
    input: &ConnectInput,
) -> Result<Company, CoreError> {
    link_tenant(ctx, actor, id, input, true).await
}

/// [`connect`] (`reconnect` false) and [`reconnect`]: the same link to the tenant, audited as
/// `company.connected` with the `reconnect` flag, and for a reconnect the previous tenant.
async fn link_tenant(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
    input: &ConnectInput,
    reconnect: bool,
) -> Result<Company, CoreError> {
    policy::can_connect(&actor.user, id).map_err(CoreError::forbidden)?;
    let company = load(ctx, id).await?;
    let previous = company.connection.map(|c| c.tenant_id);
    match previous {
        Some(_) if !reconnect => return Err(CoreError::conflict(ConflictReason::AlreadyExists)),
        Some(p) if p != input.tenant_id => return Err(another_tenant(p)),
        _ => {}
    }
    let conn = new_connection(ctx, input)?;
    let mut detail = json!({
        "tenant": conn.tenant_id.to_string(), "display_name": conn.display_name,
        "default_domain": conn.default_domain, "reconnect": reconnect,
    });
    if reconnect {
        detail["previous_tenant"] = json!(previous.map(|t| t.to_string()));
    }
    let ev = NewAuditEvent::new(conn.connected_at, AuditKind::Connected, Some(actor))
        .company(id)
        .detail(detail);
    // The same update drops the old status, so it never shows beside the new tenant.
    store_connection(ctx, id, &conn, ev).await?;
    load(ctx, id).await
}

/// What connecting a connected company to another tenant answers.
pub(crate) fn another_tenant(current: TenantId) -> CoreError {
    CoreError::invalid(
        "tenant",
        format!(
            "the company is connected to tenant {current}; moving it to another tenant is its own action (a manager types the new tenant)"
        ),
    )
}

/// Moves a connected company to another tenant (manager+), audited as `company.tenant_moved`
/// with both tenants. Refused if another company holds the new tenant.
pub async fn move_tenant(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: &CompanyId,
    input: &ConnectInput,
) -> Result<Company, CoreError> {
    policy::can_manage_company(&actor.user, id).map_err(CoreError::forbidden)?;
    let company = load(ctx, id).await?;
    let from = connection(&company)?.tenant_id;
    if from == input.tenant_id {
        return Err(CoreError::invalid(
            "tenant",
            format!("the company is already connected to tenant {from}"),
        ));
    }
    let conn = new_connection(ctx, input)?;
    let ev = NewAuditEvent::new(conn.connected_at, AuditKind::TenantMoved, Some(actor))
        .company(id)
        .detail(json!({
            "from_tenant": from.to_string(), "tenant": conn.tenant_id.to_string(),
            "display_name": conn.display_name, "default_domain": conn.default_domain,
        }));
    store_connection(ctx, id, &conn, ev).await?;
    load(ctx, id).await
}

/// Drops the link and the status (manager+); history stays in the audit log and requests.
pub async fn disconnect(ctx: Ctx<'_>, actor: &Actor, id: &CompanyId) -> Result<Company, CoreError> {
    policy::can_manage_company(&actor.user, id).map_err(CoreError::forbidden)?;
    let company = load(ctx, id).await?;
    let conn = connection(&company)?;
    let ev = NewAuditEvent::new(ctx.clock.now(), AuditKind::Disconnected, Some(actor))
        .company(id)
        .detail(json!({ "tenant": conn.tenant_id.to_string() }));
    ctx.store.set_connection(id, None, ev).await?;
    load(ctx, id).await
}

/// Checks the Exchange Admin status now and stores it. `actor` is None for the scheduler.
pub async fn check_status(
    ctx: Ctx<'_>,
    actor: Option<&Actor>,
    id: &CompanyId,
) -> Result<StatusRecord, CoreError> {
    let company = match actor {
        Some(a) => load_visible(ctx, a, id).await?,
        None => load(ctx, id).await?,
    };
    let tenant = connection(&company)?.tenant_id;
    let result = ctx.ms.check_status(tenant).await;
    let now = ctx.clock.now();
    let previous = company.exchange_status.as_ref();
    let record = match result {
        Ok(check) if check.state != ExchangeAdminState::CheckFailed => StatusRecord {
            state: check.state,
            checked_at: now,
            last_good_at: Some(now),
            last_good_state: Some(check.state),
            detail: check.evidence,
        },
        Ok(check) => StatusRecord {
            state: ExchangeAdminState::CheckFailed,
            checked_at: now,
            last_good_at: previous.and_then(|p| p.last_good_at),
            last_good_state: previous.and_then(|p| p.last_good_state),
            detail: check.evidence,
        },
        Err(MsError::NotConfigured { state, detail }) => StatusRecord {
            state,
            checked_at: now,
            last_good_at: Some(now),
            last_good_state: Some(state),
            detail,
        },
        Err(e) => StatusRecord {
            state: ExchangeAdminState::CheckFailed,
            checked_at: now,
            last_good_at: previous.and_then(|p| p.last_good_at),
            last_good_state: previous.and_then(|p| p.last_good_state),
            detail: e.to_string(),
        },
    };
    let ev = NewAuditEvent::new(now, AuditKind::StatusChecked, actor)
        .company(id)
        .detail(json!({
            "tenant": tenant.to_string(), "state": record.state.as_str(), "detail": record.detail,
            "previous": previous.map(|p| p.state.as_str()),
        }));
    if !ctx.store.set_status(id, tenant, &record, ev).await? {
        return Err(CoreError::conflict(ConflictReason::NotConnected));
    }
    Ok(record)
}

/// The company a person or an agent means by `raw`: its id, or its display name compared without
/// regard to case (and to surrounding spaces) among the companies `actor` may see. People and
/// agents write "Contoso"; every adapter (MCP, JSON API, CLI) resolves through here.
///
/// - An id of an existing company wins, even where a name matches too.
/// - Otherwise exactly one visible company of that name answers; two or more are
///   `ambiguous_company`, naming each (`id (name)`).
/// - Otherwise a well-formed id is returned as it is, so the operation that uses it answers as
///   it always has (`not_entitled` for a company the actor may not see, `company_not_found`);
///   anything else is `company_not_found`.
///
/// Names are searched only among visible companies, so this reveals nothing about others.
pub async fn resolve(ctx: Ctx<'_>, actor: &Actor, raw: &str) -> Result<CompanyId, CoreError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(CoreError::invalid(
            "company",
            "name a company by its id or its name".to_owned(),
        ));
    }
    if let Ok(id) = CompanyId::parse(raw)
        && ctx.store.get_company(&id).await?.is_some()
    {
        return Ok(id);
    }
    let all = ctx.store.list_companies().await?;
    let visible: Vec<&Company> = all
        .iter()
        .filter(|c| actor.user.entitlement.covers(&c.id))
        .collect();
    pick(&all, &visible, raw)
}

/// [`resolve`]'s rule over a list already loaded: `all` to recognise an existing id, `visible`
/// to search by name.
pub fn pick(all: &[Company], visible: &[&Company], raw: &str) -> Result<CompanyId, CoreError> {
    let raw = raw.trim();
    let as_id = CompanyId::parse(raw).ok();
    if let Some(id) = &as_id
        && all.iter().any(|c| &c.id == id)
    {
        return Ok(id.clone());
    }
    let wanted = fold(raw);
    let named: Vec<&&Company> = visible.iter().filter(|c| fold(&c.name) == wanted).collect();
    match named.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => match as_id {
            Some(id) => Ok(id),
            None => Err(CoreError::not_found(
                Entity::Company,
                crate::text::capped(raw, 80),
            )),
        },
        many => Err(CoreError::conflict(ConflictReason::AmbiguousCompany {
            candidates: many
                .iter()
                .map(|c| format!("{} ({})", c.id.as_str(), c.name))
                .collect(),
        })),
    }
}

/// A name as [`pick`] compares it: lower case, inner runs of white space as one space.
fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The CSS colour of an Exchange Admin badge, as the templates use it: the state's colour
/// (`green`, `amber`, `red`), or `grey` when there is no state to show (not connected, not
/// checked yet).
pub fn badge_colour(state: Option<crate::model::ExchangeAdminState>) -> &'static str {
    match state.map(crate::model::ExchangeAdminState::colour) {
        Some(crate::model::BadgeColour::Green) => "green",
        Some(crate::model::BadgeColour::Amber) => "amber",
        Some(crate::model::BadgeColour::Red) => "red",
        None => "grey",
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::model::Timestamp;

    fn company(id: &str, name: &str) -> Company {
        Company {
            id: CompanyId::parse(id).unwrap(),
            name: name.to_owned(),
            connection: None,
            exchange_status: None,
            separate_approver: false,
            created_at: Timestamp::from_unix_secs(0),
        }
    }

    fn code(r: Result<CompanyId, CoreError>) -> String {
        match r {
            Ok(id) => id.as_str().to_owned(),
            Err(e) => format!("{}: {e}", e.code()),
        }
    }

    #[test]
    fn ids_and_names_resolve_as_documented() {
        let all = vec![
            company("contoso", "Contoso"),
            company("fabrikam", "Fabrikam  Ltd"),
            company("tailspin", "Twins"),
            company("tailspin-2", "twins"),
            company("hidden", "Secret Co"),
            company("acme", "fabrikam"),
        ];
        let visible: Vec<&Company> = all.iter().filter(|c| c.id.as_str() != "hidden").collect();
        let pick = |raw: &str| code(pick(&all, &visible, raw));
        assert_eq!(pick("contoso"), "contoso");
        assert_eq!(pick("  CONTOSO "), "contoso");
        assert_eq!(pick("fabrikam ltd"), "fabrikam");
        // An existing id wins over another company's name.
        assert_eq!(pick("fabrikam"), "fabrikam");
        assert_eq!(
            pick("TWINS"),
            "ambiguous_company: conflict: several companies have that name: tailspin (Twins), \
             tailspin-2 (twins); use the company id"
        );
        // A company the actor may not see is not found by name.
        assert_eq!(
            pick("Secret Co"),
            "company_not_found: company `Secret Co` not found"
        );
        // A well-formed id is passed on so the operation answers as before (not_entitled, or
        // not found).
        assert_eq!(pick("hidden"), "hidden");
        assert_eq!(pick("nobody"), "nobody");
        assert_eq!(
            pick("Nobody Inc"),
            "company_not_found: company `Nobody Inc` not found"
        );
    }
}
