//! Access reviews: start a campaign over the inventory, decide keep or remove (signed-in
//! reviewers or a signed link), close it into one approval request per company, report.
//! The rules live here; pages, API, MCP and CLI render them.

use std::collections::BTreeMap;

use serde_json::json;

use super::Ctx;
use super::companies::{connection, load};
use crate::action::{CanonicalAction, Operation, OperationKind, Presence};
use crate::audit::{AuditKind, NewAuditEvent};
use crate::error::{ConflictReason, CoreError, Denial, Entity};
use crate::inventory::{InventoryRow, TrusteeClass};
use crate::model::{
    Actor, CompanyId, RecipientKind, RequestId, ResolvedIdentity, Timestamp, UserId, parse_label,
};
use crate::policy;
use crate::request::{OpOutcome, RequestState};
use crate::review::*;
use crate::tools::ToolName;

/// What starting a campaign asks for.
#[derive(Clone, Debug)]
pub struct CreateInput {
    /// New id chosen by the caller.
    pub id: CampaignId,
    pub name: String,
    pub scope: Scope,
    /// Reviewers per company (exogate users).
    pub reviewers: Vec<(CompanyId, Vec<UserId>)>,
    pub due_at: Timestamp,
    pub schedule: Option<Schedule>,
}

/// Who decides: a signed-in user, or the holder of a reviewer link.
#[derive(Clone, Debug)]
pub enum Reviewer<'a> {
    User(&'a Actor),
    Link(&'a ReviewLink),
}

fn check_manager(actor: &Actor, companies: &[CompanyId]) -> Result<(), CoreError> {
    for c in companies {
        policy::can_manage_company(&actor.user, c).map_err(CoreError::forbidden)?;
    }
    Ok(())
}

/// Starts a campaign: manager or admin, entitled to every company of its scope; every company
/// must have a finished inventory sweep. Its items are the inventory's current rows in scope,
/// copied (later sweeps do not change them); orphaned SIDs start as `remove`.
pub async fn create(
    ctx: Ctx<'_>,
    actor: &Actor,
    input: CreateInput,
) -> Result<Campaign, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    create_inner(ctx, Some(actor), input, None).await
}

async fn create_inner(
    ctx: Ctx<'_>,
    actor: Option<&Actor>,
    input: CreateInput,
    previous: Option<(CampaignId, UserId, String)>,
) -> Result<Campaign, CoreError> {
    let name = parse_label("name", &input.name, MAX_NAME_CHARS)?;
    let mut companies = input.scope.companies.clone();
    companies.sort();
    companies.dedup();
    if companies.is_empty() {
        return Err(CoreError::invalid(
            "companies",
            "name at least one company".to_owned(),
        ));
    }
    if let Some(a) = actor {
        check_manager(a, &companies)?;
    }
    // (review-age)
    check_older_than_days(input.scope.older_than_days)?;
    let now = ctx.clock.now();
    if input.due_at <= now {
        return Err(CoreError::invalid(
            "due",
            "the due date must be in the future".to_owned(),
        ));
    }
    let mut parts = Vec::new();
    for c in &companies {
        let company = load(ctx, c).await?;
        connection(&company)?;
        let status = ctx.store.inventory_status(c).await?;
        if !super::inventory::lookup::swept(status.as_ref()) {
            return Err(super::inventory::lookup::not_swept(&company));
        }
        let reviewers = input
            .reviewers
            .iter()
            .filter(|(rc, _)| rc == c)
            .flat_map(|(_, u)| u.iter().copied())
            .collect();
        parts.push(CampaignCompany {
            company: c.clone(),
            reviewers,
            request: None,
            items: 0,
            decided: 0,
        });
    }
    let (created_by, created_by_name) = match (actor, &previous) {
        (Some(a), _) => (a.user.id, a.user.name.to_string()),
        (None, Some((_, u, n))) => (*u, n.clone()),
        (None, None) => return Err(CoreError::internal("a campaign needs a creator")),
    };
    let campaign = Campaign {
        id: input.id,
        name,
        scope: Scope {
            companies: companies.clone(),
            ..input.scope
        },
        due_at: input.due_at,
        schedule: input.schedule,
        state: CampaignState::Open,
        created_by,
        created_by_name,
        created_at: now,
        closed_at: None,
        closed_by_name: None,
        previous: previous.as_ref().map(|p| p.0),
        companies: parts,
    };
    let mut detail = audience(&campaign);
    let mut ev = NewAuditEvent::new(now, AuditKind::ReviewCreated, actor).detail(json!({
        "campaign": campaign.id.to_string(),
        "name": campaign.name,
        "companies": companies.iter().map(CompanyId::as_str).collect::<Vec<_>>(),
        "kinds": campaign.scope.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "rights": campaign.scope.rights.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "due_at": campaign.due_at.unix_millis(),
        "schedule": campaign.schedule.map(Schedule::as_str),
        "repeats": campaign.previous.map(|p| p.to_string()),
        "older_than_days": campaign.scope.older_than_days,
    }));
    // (the reviewers and companies the start is announced to)
    if let (Some(d), Ok(mut v)) = (
        detail.as_object_mut(),
        serde_json::from_str::<serde_json::Value>(&ev.detail),
    ) {
        for (k, x) in d.iter_mut() {
            v[k.as_str()] = x.take();
        }
        ev.detail = v.to_string();
    }
    if companies.len() == 1 {
        ev = ev.company(&companies[0]);
    }
    let orphan_default = ItemDecision {
        verdict: Verdict::Remove,
        reason: Some("orphaned SID: the principal was deleted".to_owned()),
        by_user: None,
        by: "default (orphan)".to_owned(),
        at: now,
    };
    ctx.store
        .review_create(&campaign, &orphan_default, ev)
        .await?;
    ctx.store
        .review_get(campaign.id)
        .await?
        .ok_or_else(|| CoreError::internal("a campaign just created is missing"))
}

/// Starts the next campaign of every scheduled campaign whose period is over (the worker,
/// on every replica: the store's unique link to the previous campaign lets one win). `ids`
/// gives new ids. Returns the campaigns started.
pub async fn start_due_repeats(
    ctx: Ctx<'_>,
    ids: &(dyn Fn() -> CampaignId + Sync),
) -> Result<Vec<Campaign>, CoreError> {
    let now = ctx.clock.now();
    let mut out = Vec::new();
    for prev in ctx.store.review_due_repeats(now).await? {
        let Some(schedule) = prev.schedule else {
            continue;
        };
        let length = prev.due_at.unix_millis() - prev.created_at.unix_millis();
        let input = CreateInput {
            id: ids(),
            name: prev.name.clone(),
            scope: prev.scope.clone(),
            reviewers: prev
                .companies
                .iter()
                .map(|c| (c.company.clone(), c.reviewers.clone()))
                .collect(),
            due_at: Timestamp::from_unix_millis(now.unix_millis() + length.max(86_400_000)),
            schedule: Some(schedule),
        };
        match create_inner(
            ctx,
            None,
            input,
            Some((prev.id, prev.created_by, prev.created_by_name.clone())),
        )
        .await
        {
            Ok(c) => out.push(c),
            // Another replica started it.
            Err(CoreError::Conflict {
                reason: ConflictReason::AlreadyExists,
            }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// How long before the due date reviewers are reminded.
pub const REMIND_BEFORE_SECS: i64 = 2 * 86_400;

/// The detail naming who a campaign's notifications go to: its reviewers (user ids) and
/// companies (managers and admins of those hear too).
fn audience(c: &Campaign) -> serde_json::Value {
    json!({
        "reviewers": c.companies.iter().flat_map(|p| p.reviewers.iter().map(ToString::to_string)).collect::<Vec<_>>(),
        "companies": c.companies.iter().map(|p| p.company.as_str()).collect::<Vec<_>>(),
    })
}

/// Reminds the reviewers of every open campaign due within [`REMIND_BEFORE_SECS`], once (a
/// `review.reminded` event, which the notifications route): the store marks the campaign in
/// the event's transaction, so several replicas remind once. Returns how many were reminded.
pub async fn send_reminders(ctx: Ctx<'_>) -> Result<u32, CoreError> {
    let now = ctx.clock.now();
    let mut n = 0;
    for c in ctx
        .store
        .review_due_reminders(now, now.plus_secs(REMIND_BEFORE_SECS))
        .await?
    {
        let undecided: u64 = c.companies.iter().map(|p| p.items - p.decided).sum();
        let mut detail = audience(&c);
        detail["campaign"] = json!(c.id.to_string());
        detail["name"] = json!(c.name);
        detail["due_at"] = json!(c.due_at.unix_millis());
        detail["undecided"] = json!(undecided);
        let mut ev = NewAuditEvent::system(now, AuditKind::ReviewReminded).detail(detail);
        if c.companies.len() == 1 {
            ev = ev.company(&c.companies[0].company);
        }
        if ctx.store.review_mark_reminded(c.id, now, ev).await? {
            n += 1;
        }
    }
    Ok(n)
}

/// The campaign, with only the companies `actor` may see (`review_not_found` when none).
pub async fn get(ctx: Ctx<'_>, actor: &Actor, id: CampaignId) -> Result<Campaign, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let mut c = ctx
        .store
        .review_get(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::Review, id))?;
    c.companies
        .retain(|p| policy::can_view(&actor.user, &p.company).is_ok());
    if c.companies.is_empty() {
        return Err(CoreError::not_found(Entity::Review, id));
    }
    c.scope.companies = c.companies.iter().map(|p| p.company.clone()).collect();
    Ok(c)
}

/// The campaigns with a company `actor` may see, newest first.
pub async fn list(ctx: Ctx<'_>, actor: &Actor) -> Result<Vec<Campaign>, CoreError> {
    let actor = super::refresh_actor(ctx, actor).await?;
    let mut out = Vec::new();
    for mut c in ctx.store.review_list(500).await? {
        c.companies
            .retain(|p| policy::can_view(&actor.user, &p.company).is_ok());
        if !c.companies.is_empty() {
            c.scope.companies = c.companies.iter().map(|p| p.company.clone()).collect();
            out.push(c);
        }
    }
    Ok(out)
}

fn page_filter(mut f: ItemFilter) -> ItemFilter {
    if f.limit == 0 || f.limit > PAGE_ITEMS {
        f.limit = PAGE_ITEMS;
    }
    f
}

/// One page of a company's items (filter by mailbox or trustee), for a signed-in reviewer.
pub async fn items(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CampaignId,
    company: &CompanyId,
    filter: ItemFilter,
) -> Result<(Campaign, Vec<ReviewItem>), CoreError> {
    let c = get(ctx, actor, id).await?;
    if !c.companies.iter().any(|p| &p.company == company) {
        return Err(CoreError::not_found(Entity::Review, id));
    }
    let f = page_filter(ItemFilter {
        company: Some(company.clone()),
        ..filter
    });
    let items = ctx.store.review_items(id, &f).await?;
    Ok((c, items))
}

/// As [`items`], for a review's page: `company` defaults to the campaign's first one the
/// actor may see. Reads the campaign once.
pub async fn page(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CampaignId,
    company: Option<&CompanyId>,
    filter: ItemFilter,
) -> Result<(Campaign, CompanyId, Vec<ReviewItem>), CoreError> {
    let c = get(ctx, actor, id).await?;
    let company = match company {
        Some(co) if c.companies.iter().any(|p| &p.company == co) => co.clone(),
        Some(_) => return Err(CoreError::not_found(Entity::Review, id)),
        None => c.companies[0].company.clone(),
    };
    let f = page_filter(ItemFilter {
        company: Some(company.clone()),
        ..filter
    });
    let items = ctx.store.review_items(id, &f).await?;
    Ok((c, company, items))
}

/// Checks a reviewer link for `campaign` × `company`: its MAC and expiry first (no store),
/// then that the store knows it for exactly that campaign and company and it is not revoked.
pub async fn open_link(
    ctx: Ctx<'_>,
    key: &[u8],
    campaign: CampaignId,
    company: &CompanyId,
    token: &str,
) -> Result<ReviewLink, LinkRefusal> {
    let now = ctx.clock.now();
    let hash = check_link_mac(key, campaign, company, token, now)?;
    let link = ctx
        .store
        .review_link_by_hash(&hash)
        .await
        .map_err(|_| LinkRefusal::Unknown)?
        .filter(|l| l.campaign == campaign && &l.company == company)
        .ok_or(LinkRefusal::Unknown)?;
    if link.revoked_at.is_some() {
        return Err(LinkRefusal::Revoked);
    }
    if now >= link.expires_at {
        return Err(LinkRefusal::Expired);
    }
    Ok(link)
}

/// One page of the link's company's items, for the holder of a checked link.
pub async fn link_items(
    ctx: Ctx<'_>,
    link: &ReviewLink,
    filter: ItemFilter,
) -> Result<(Campaign, Vec<ReviewItem>), CoreError> {
    let mut c = ctx
        .store
        .review_get(link.campaign)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::Review, link.campaign))?;
    c.companies.retain(|p| p.company == link.company);
    c.scope.companies = vec![link.company.clone()];
    let f = page_filter(ItemFilter {
        company: Some(link.company.clone()),
        ..filter
    });
    let items = ctx.store.review_items(link.campaign, &f).await?;
    Ok((c, items))
}

/// Which items a decision is about: numbered items, or every item of a mailbox or of a
/// trustee (bulk).
#[derive(Clone, Debug)]
pub enum Selection {
    Items(Vec<i64>),
    Mailbox(String),
    Trustee(String),
}

/// Records keep or remove for the selected items of `company`, with an optional reason, by
/// `reviewer`. A signed-in reviewer needs the company and either to be one of its named
/// reviewers or technician or higher; a link only its own campaign and company. Refused with `review_closed` once closing started. One
/// `review.decided` event names the items.
pub async fn decide(
    ctx: Ctx<'_>,
    reviewer: Reviewer<'_>,
    id: CampaignId,
    company: &CompanyId,
    selection: Selection,
    verdict: Verdict,
    reason: Option<&str>,
) -> Result<u64, CoreError> {
    let reason = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(parse_label("reason", r, MAX_REASON_CHARS)?),
        None => None,
    };
    let (actor, by_user, by) = match reviewer {
        Reviewer::User(a) => {
            let a = super::refresh_actor(ctx, a).await?;
            policy::can_view(&a.user, company).map_err(CoreError::forbidden)?;
            let c = get(ctx, &a, id).await?;
            let Some(part) = c.companies.iter().find(|p| &p.company == company) else {
                return Err(CoreError::not_found(Entity::Review, id));
            };
            // A named reviewer of the company decides with the role they have; anyone else
            // needs technician or higher.
            if !part.reviewers.contains(&a.user.id) {
                policy::can_request(&a.user, company).map_err(CoreError::forbidden)?;
            }
            let name = a.user.name.to_string();
            (Some(a.clone()), Some(a.user.id), name)
        }
        Reviewer::Link(l) => {
            if l.campaign != id || &l.company != company {
                return Err(CoreError::forbidden(Denial::NotEntitled));
            }
            (None, None, format!("link: {}", l.label))
        }
    };
    let filter = match &selection {
        Selection::Items(v) => {
            if v.is_empty() || v.len() > 10_000 {
                return Err(CoreError::invalid(
                    "items",
                    "select between 1 and 10000 items".to_owned(),
                ));
            }
            ItemFilter {
                items: Some(v.clone()),
                ..ItemFilter::default()
            }
        }
        Selection::Mailbox(m) => ItemFilter {
            mailbox: Some(parse_label("mailbox", m, 320)?),
            exact: true,
            ..ItemFilter::default()
        },
        Selection::Trustee(t) => ItemFilter {
            trustee: Some(parse_label("trustee", t, 320)?),
            exact: true,
            ..ItemFilter::default()
        },
    };
    let targets = ctx
        .store
        .review_items(
            id,
            &ItemFilter {
                company: Some(company.clone()),
                ..filter
            },
        )
        .await?;
    if targets.is_empty() {
        return Err(CoreError::invalid(
            "items",
            "no item of this review matches".to_owned(),
        ));
    }
    let nos: Vec<i64> = targets.iter().map(|i| i.no).collect();
    let now = ctx.clock.now();
    let decision = ItemDecision {
        verdict,
        reason: reason.clone(),
        by_user,
        by: by.clone(),
        at: now,
    };
    let mut ev = NewAuditEvent::new(now, AuditKind::ReviewDecided, actor.as_ref())
        .company(company)
        .detail(json!({
            "campaign": id.to_string(),
            "decision": verdict.as_str(),
            "reason": reason,
            "by": by,
            "count": nos.len(),
            "items": targets.iter().take(200).map(|i| json!({
                "item": i.no,
                "mailbox": i.row.mailbox.primary_address,
                "right": i.row.right.as_str(),
                "trustee": i.row.trustee.label(),
            })).collect::<Vec<_>>(),
        }));
    if let Reviewer::Link(l) = reviewer {
        ev = ev.actor_name(&format!("link: {}", l.label), "review_link");
    }
    match ctx
        .store
        .review_decide(id, company, &nos, &decision, ev)
        .await?
    {
        Some(n) => Ok(n),
        None => Err(CoreError::conflict(ConflictReason::ReviewClosed)),
    }
}

/// Issues a reviewer link for `company` of an open campaign: manager or admin of the company.
/// `secret` is random URL-safe text the caller drew; only its hash is stored. The token is
/// returned once, to be put in the URL; the `review.link_issued` event holds its label and
/// expiry, never the token.
#[allow(clippy::too_many_arguments)]
pub async fn issue_link(
    ctx: Ctx<'_>,
    actor: &Actor,
    key: &[u8],
    id: CampaignId,
    company: &CompanyId,
    label: &str,
    expires_at: Timestamp,
    link_id: String,
    secret: &str,
) -> Result<(ReviewLink, LinkToken), CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    policy::can_manage_company(&actor.user, company).map_err(CoreError::forbidden)?;
    let c = get(ctx, actor, id).await?;
    if !c.companies.iter().any(|p| &p.company == company) {
        return Err(CoreError::not_found(Entity::Review, id));
    }
    if c.state != CampaignState::Open {
        return Err(CoreError::conflict(ConflictReason::ReviewClosed));
    }
    let label = parse_label("label", label, 120)?;
    let now = ctx.clock.now();
    if expires_at <= now {
        return Err(CoreError::invalid(
            "expires",
            "the link must expire in the future".to_owned(),
        ));
    }
    if expires_at.unix_millis() - now.unix_millis() > 90 * 86_400_000 {
        return Err(CoreError::invalid(
            "expires",
            "a link lasts at most 90 days".to_owned(),
        ));
    }
    let token = sign_link(key, id, company, expires_at, secret);
    let link = ReviewLink {
        id: link_id,
        secret_hash: secret_hash(secret),
        campaign: id,
        company: company.clone(),
        label,
        expires_at,
        revoked_at: None,
        created_at: now,
        created_by_name: actor.user.name.to_string(),
    };
    let ev = NewAuditEvent::new(now, AuditKind::ReviewLinkIssued, Some(actor))
        .company(company)
        .detail(json!({
            "campaign": id.to_string(), "link": link.id, "label": link.label,
            "expires_at": expires_at.unix_millis(),
        }));
    ctx.store.review_link_insert(&link, ev).await?;
    Ok((link, token))
}

/// The links of a campaign in the companies the actor manages.
pub async fn links(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CampaignId,
) -> Result<Vec<ReviewLink>, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    get(ctx, actor, id).await?;
    Ok(ctx
        .store
        .review_links(id)
        .await?
        .into_iter()
        .filter(|l| policy::can_manage_company(&actor.user, &l.company).is_ok())
        .collect())
}

/// Revokes a link: manager or admin of its company.
pub async fn revoke_link(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CampaignId,
    link: &str,
) -> Result<(), CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let found = ctx
        .store
        .review_links(id)
        .await?
        .into_iter()
        .find(|l| l.id == link)
        .ok_or_else(|| CoreError::not_found(Entity::ReviewLink, link))?;
    if policy::can_view(&actor.user, &found.company).is_err() {
        return Err(CoreError::not_found(Entity::ReviewLink, link));
    }
    policy::can_manage_company(&actor.user, &found.company).map_err(CoreError::forbidden)?;
    let now = ctx.clock.now();
    let ev = NewAuditEvent::new(now, AuditKind::ReviewLinkRevoked, Some(actor))
        .company(&found.company)
        .detail(json!({"campaign": id.to_string(), "link": found.id, "label": found.label}));
    ctx.store.review_link_revoke(id, link, now, ev).await?;
    Ok(())
}

/// The trustee of a removal, as the request freezes it: the resolved recipient, or the
/// orphaned SID itself.
fn removal_trustee(row: &InventoryRow) -> Option<ResolvedIdentity> {
    match (&row.trustee.identity, row.trustee.class) {
        (Some(id), _) => Some(id.clone()),
        (None, TrusteeClass::Orphan) => Some(ResolvedIdentity {
            object_id: String::new(),
            primary_address: row
                .trustee
                .sid
                .clone()
                .unwrap_or_else(|| row.trustee.raw.clone()),
            display_name: "orphaned SID (deleted principal)".to_owned(),
            kind: RecipientKind::Other,
        }),
        (None, _) => None,
    }
}

/// Closes a campaign: manager or admin of every company in it. No decision is taken after
/// closing starts; each company's removals become ONE pending request through the normal
/// gate (none without removals), which a person approves and the worker executes and
/// verifies. Undecided items stay undecided (never kept). Closing again, or on another
/// replica at once, makes no second request. `ids` gives new request ids.
pub async fn close(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CampaignId,
    ids: &(dyn Fn() -> RequestId + Sync),
) -> Result<Campaign, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let stored = ctx
        .store
        .review_get(id)
        .await?
        .ok_or_else(|| CoreError::not_found(Entity::Review, id))?;
    if stored
        .companies
        .iter()
        .all(|p| policy::can_view(&actor.user, &p.company).is_err())
    {
        return Err(CoreError::not_found(Entity::Review, id));
    }
    let companies: Vec<CompanyId> = stored.companies.iter().map(|p| p.company.clone()).collect();
    check_manager(actor, &companies)?;
    if stored.state == CampaignState::Closed || !ctx.store.review_begin_close(id).await? {
        return get(ctx, actor, id).await;
    }
    let removals = ctx
        .store
        .review_items(
            id,
            &ItemFilter {
                removals: true,
                ..ItemFilter::default()
            },
        )
        .await?;
    let mut by_company: BTreeMap<CompanyId, Vec<ReviewItem>> = BTreeMap::new();
    for item in removals {
        by_company
            .entry(item.row.company.clone())
            .or_default()
            .push(item);
    }
    let now = ctx.clock.now();
    let mut requests = Vec::new();
    let mut skipped = Vec::new();
    for (company_id, items) in by_company {
        let company = load(ctx, &company_id).await?;
        let Ok(conn) = connection(&company) else {
            skipped.push(json!({"company": company_id.as_str(), "why": "not connected"}));
            continue;
        };
        let tenant = conn.tenant_id;
        let mut actions = Vec::with_capacity(items.len());
        let mut seen = std::collections::HashSet::new();
        for item in &items {
            let Some(trustee) = removal_trustee(&item.row) else {
                skipped.push(json!({"company": company_id.as_str(), "item": item.no, "why": "unresolved trustee"}));
                continue;
            };
            if !seen.insert(item.row.key()) {
                continue;
            }
            actions.push(CanonicalAction::new(
                company_id.clone(),
                tenant,
                Operation {
                    kind: OperationKind::Remove,
                    permission: item.row.right,
                },
                item.row.mailbox.clone(),
                trustee,
                None,
                Presence::Present,
            ));
        }
        if actions.is_empty() {
            continue;
        }
        let req = super::requests::pending_request(
            ctx,
            actor,
            ids(),
            company_id.clone(),
            tenant,
            ToolName::AccessReviewRemovals,
            actions,
        );
        let ev = NewAuditEvent::new(now, AuditKind::RequestCreated, Some(actor))
            .company(&req.company)
            .request(req.id)
            .detail(json!({
                "tool": req.tool.as_str(), "risk": req.risk.as_str(), "digest": req.digest,
                "actions": crate::action::encode_actions(&req.actions), "summary": req.summary(),
                "expires_at": req.expires_at.unix_millis(), "review": id.to_string(),
            }));
        requests.push((req, ev));
    }
    let made: Vec<_> = requests
        .iter()
        .map(|(r, _)| json!({"company": r.company.as_str(), "request": r.id.to_string(), "removals": r.actions.len()}))
        .collect();
    let undecided: u64 = stored.companies.iter().map(|p| p.items - p.decided).sum();
    let mut detail = audience(&stored);
    for (k, v) in [
        ("campaign", json!(id.to_string())),
        ("name", json!(stored.name)),
        ("requests", json!(made)),
        ("undecided", json!(undecided)),
        ("skipped", json!(skipped)),
    ] {
        detail[k] = v;
    }
    let ev = NewAuditEvent::new(now, AuditKind::ReviewClosed, Some(actor)).detail(detail);
    let ev = if companies.len() == 1 {
        ev.company(&companies[0])
    } else {
        ev
    };
    ctx.store
        .review_finish_close(id, now, actor.user.name.as_str(), requests, ev)
        .await?;
    get(ctx, actor, id).await
}

/// What became of an item, given the closing request.
fn outcome(
    item: &ReviewItem,
    state: CampaignState,
    request: Option<&crate::request::ApprovalRequest>,
) -> Outcome {
    let Some(d) = &item.decision else {
        return Outcome::Undecided;
    };
    if d.verdict == Verdict::Keep {
        return Outcome::Kept;
    }
    if state == CampaignState::Open {
        return Outcome::ToRemove;
    }
    let Some(req) = request else {
        return Outcome::RemovalNotDone;
    };
    let idx = req.actions.iter().position(|a| {
        a.mailbox
            .object_id
            .eq_ignore_ascii_case(&item.row.mailbox.object_id)
            && a.operation.permission == item.row.right
            && (removal_trustee(&item.row).is_some_and(|t| {
                t.object_id.eq_ignore_ascii_case(&a.trustee.object_id)
                    && t.primary_address
                        .eq_ignore_ascii_case(&a.trustee.primary_address)
            }))
    });
    let Some(i) = idx else {
        return Outcome::RemovalNotDone;
    };
    match req.state {
        RequestState::Pending | RequestState::Approved | RequestState::Executing => {
            Outcome::RemovalRequested
        }
        RequestState::Succeeded | RequestState::AlreadyInState | RequestState::Failed => {
            match req.results.get(i) {
                Some(r) if r.verified && r.outcome != OpOutcome::Failed => Outcome::RemovedVerified,
                _ => Outcome::RemovalNotDone,
            }
        }
        _ => Outcome::RemovalNotDone,
    }
}

/// The report of one company of a campaign (any reader of the company), following the
/// closing request's state. Each report made is a `review.report_created` event (`format`:
/// `json`, `csv`, `attestation`, `mcp`).
pub async fn report(
    ctx: Ctx<'_>,
    actor: &Actor,
    id: CampaignId,
    company: &CompanyId,
    format: &str,
) -> Result<Report, CoreError> {
    let actor = &super::refresh_actor(ctx, actor).await?;
    let c = get(ctx, actor, id).await?;
    let Some(part) = c.companies.iter().find(|p| &p.company == company) else {
        return Err(CoreError::not_found(Entity::Review, id));
    };
    let request = match part.request {
        Some(r) => ctx.store.get_request(r).await?,
        None => None,
    };
    let company_name = load(ctx, company).await?.name;
    let items = ctx
        .store
        .review_items(
            id,
            &ItemFilter {
                company: Some(company.clone()),
                ..ItemFilter::default()
            },
        )
        .await?;
    let lines: Vec<ReportLine> = items
        .into_iter()
        .map(|item| ReportLine {
            outcome: outcome(&item, c.state, request.as_ref()),
            item,
        })
        .collect();
    let now = ctx.clock.now();
    let report = Report {
        campaign: c,
        company: company.clone(),
        company_name,
        request,
        lines,
        created_at: now,
    };
    let ev = NewAuditEvent::new(now, AuditKind::ReviewReportCreated, Some(actor))
        .company(company)
        .detail(json!({
            "campaign": id.to_string(), "format": format,
            "items": report.lines.len(),
            "kept": report.count(Outcome::Kept),
            "removed_verified": report.count(Outcome::RemovedVerified),
            "undecided": report.count(Outcome::Undecided),
        }));
    ctx.store.append_audit(ev).await?;
    Ok(report)
}
