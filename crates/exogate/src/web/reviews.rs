//! (reviews) Access reviews over the web: the signed-in pages (`/reviews`, a campaign's page,
//! its report as a printable attestation and as CSV) and the JSON API under `/api/v1/reviews`.
//! The reviewer link's page is [`super::review_link`]. The rules are the core's
//! (`exogate_core::ops::reviews`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use exogate_core::action::Permission;
use exogate_core::model::{CompanyId, RecipientKind, UserId};
use exogate_core::ops::reviews::{self, CreateInput, Reviewer, Selection};
use exogate_core::review::{CampaignId, ItemFilter, Report, Schedule, Scope, Verdict};
use exogate_core::{Actor, CoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::{ApiAuth, OptBody};
use super::common::new_request_id;
use super::error::{ApiResult, PageError, PageResult};
use super::layout::{CsrfForm, Nav, PageAuth, parse_company};
use crate::views::review::{CampaignView, ReportView, ReviewItemView, ReviewLinkView};

pub fn api_routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/reviews", get(api_list).post(api_create))
        .route("/api/v1/reviews/{id}", get(api_get))
        .route("/api/v1/reviews/{id}/items", get(api_items))
        .route("/api/v1/reviews/{id}/decisions", post(api_decide))
        .route("/api/v1/reviews/{id}/close", post(api_close))
        .route("/api/v1/reviews/{id}/links", get(api_links).post(api_link))
        .route(
            "/api/v1/reviews/{id}/links/{link}/revoke",
            post(api_revoke_link),
        )
        .route("/api/v1/reviews/{id}/report", get(api_report))
}

pub(crate) fn campaign_id(s: &str) -> Result<CampaignId, CoreError> {
    CampaignId::parse(s)
}

fn new_campaign_id() -> CampaignId {
    CampaignId::from_uuid(uuid::Uuid::now_v7())
}

fn parse_kinds(v: &[String]) -> Result<Vec<RecipientKind>, CoreError> {
    v.iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .map(|k| {
            RecipientKind::parse(k)
                .filter(|k| k.is_mailbox())
                .ok_or_else(|| {
                    CoreError::invalid(
                        "kinds",
                        "a kind is one of user_mailbox, shared_mailbox, room_mailbox, equipment_mailbox"
                            .to_owned(),
                    )
                })
        })
        .collect()
}

fn parse_rights(v: &[String]) -> Result<Vec<Permission>, CoreError> {
    v.iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .map(|r| {
            [
                Permission::FullAccess,
                Permission::SendAs,
                Permission::SendOnBehalf,
            ]
            .into_iter()
            .find(|p| p.as_str() == r)
            .ok_or_else(|| {
                CoreError::invalid(
                    "rights",
                    "a right is one of full_access, send_as, send_on_behalf".to_owned(),
                )
            })
        })
        .collect()
}

fn parse_companies(v: &[String]) -> Result<Vec<CompanyId>, CoreError> {
    v.iter()
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(CompanyId::parse)
        .collect()
}

fn split(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn secs(field: &'static str, s: Option<&str>, default: &str) -> Result<i64, CoreError> {
    let s = s
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    exogate_core::timed::parse_duration_secs(field, s)
}

#[derive(Deserialize, Default)]
pub struct CreateBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    companies: Vec<String>,
    #[serde(default)]
    kinds: Vec<String>,
    #[serde(default)]
    rights: Vec<String>,
    /// How long until due ("14d"; default 14 days).
    #[serde(default)]
    due_in: Option<String>,
    #[serde(default)]
    schedule: Option<String>,
    /// Reviewers per company: `{"contoso": ["<user id>", …]}`.
    #[serde(default)]
    reviewers: std::collections::BTreeMap<String, Vec<String>>,
    // (review-age)
    /// Only grants first seen at least this many days before the start (1 to 3650).
    #[serde(default)]
    pub older_than_days: Option<u32>,
}

impl CreateBody {
    /// A body from the CLI's arguments.
    pub fn new(
        name: &str,
        companies: &[String],
        kinds: &[String],
        rights: &[String],
        due_in: &str,
        schedule: Option<&str>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            companies: companies.to_vec(),
            kinds: kinds.to_vec(),
            rights: rights.to_vec(),
            due_in: Some(due_in.to_owned()),
            schedule: schedule.map(str::to_owned),
            reviewers: Default::default(),
            older_than_days: None,
        }
    }
}

fn create_input(st: &WebState, b: &CreateBody) -> Result<CreateInput, CoreError> {
    create_input_at(&st.app, b)
}

/// What a body asks for, checked (the due time from the app's clock).
pub fn create_input_at(app: &crate::app::App, b: &CreateBody) -> Result<CreateInput, CoreError> {
    let now = app.clock.now();
    let due = secs("due_in", b.due_in.as_deref(), "14d")?;
    let schedule = match b
        .schedule
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None | Some("none") => None,
        Some(s) => Some(Schedule::parse(s).ok_or_else(|| {
            CoreError::invalid(
                "schedule",
                "a schedule is monthly, quarterly or yearly".to_owned(),
            )
        })?),
    };
    let mut reviewers = Vec::new();
    for (c, users) in &b.reviewers {
        let users = users
            .iter()
            .map(|u| UserId::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        reviewers.push((CompanyId::parse(c)?, users));
    }
    Ok(CreateInput {
        id: new_campaign_id(),
        name: b.name.clone(),
        scope: Scope {
            companies: parse_companies(&b.companies)?,
            kinds: parse_kinds(&b.kinds)?,
            rights: parse_rights(&b.rights)?,
            older_than_days: exogate_core::review::check_older_than_days(b.older_than_days)?,
        },
        reviewers,
        due_at: now.plus_secs(due),
        schedule,
    })
}

async fn api_list(State(st): State<WebState>, auth: ApiAuth) -> ApiResult<Json<Value>> {
    let actor = auth.0.api_actor();
    let list = reviews::list(st.app.ctx(), &actor).await?;
    let v: Vec<CampaignView> = list.iter().map(CampaignView::of).collect();
    Ok(Json(json!({ "reviews": v })))
}

async fn api_create(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    OptBody(b): OptBody<CreateBody>,
) -> ApiResult<Response> {
    let actor = auth.change(&headers)?;
    let input = create_input(&st, &b.unwrap_or_default())?;
    let c = reviews::create(st.app.ctx(), &actor, input).await?;
    Ok((StatusCode::CREATED, Json(CampaignView::of(&c))).into_response())
}

async fn api_get(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let actor = auth.0.api_actor();
    let c = reviews::get(st.app.ctx(), &actor, campaign_id(&id)?).await?;
    Ok(Json(CampaignView::of(&c)))
}

#[derive(Deserialize, Default)]
pub struct ItemsQuery {
    #[serde(default)]
    company: String,
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    trustee: String,
    #[serde(default)]
    undecided: String,
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<u32>,
}

impl ItemsQuery {
    fn filter(&self) -> ItemFilter {
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        ItemFilter {
            mailbox: opt(&self.mailbox),
            trustee: opt(&self.trustee),
            undecided: matches!(self.undecided.as_str(), "1" | "true" | "on"),
            after: self.after.unwrap_or(0).max(0),
            limit: self.limit.unwrap_or(0),
            ..ItemFilter::default()
        }
    }
}

async fn api_items(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    Query(q): Query<ItemsQuery>,
) -> ApiResult<Json<Value>> {
    let actor = auth.0.api_actor();
    let company = CompanyId::parse(&q.company)?;
    let (_, items) = reviews::items(
        st.app.ctx(),
        &actor,
        campaign_id(&id)?,
        &company,
        q.filter(),
    )
    .await?;
    let next = (items.len() as u32 >= exogate_core::review::PAGE_ITEMS)
        .then(|| items.last().map(|i| i.no))
        .flatten();
    let v: Vec<ReviewItemView> = items.iter().map(ReviewItemView::of).collect();
    Ok(Json(json!({ "items": v, "next_after": next })))
}

#[derive(Deserialize, Default)]
pub struct DecideBody {
    #[serde(default)]
    company: String,
    #[serde(default)]
    items: Vec<i64>,
    #[serde(default)]
    mailbox: Option<String>,
    #[serde(default)]
    trustee: Option<String>,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: Option<String>,
}

/// The selection and verdict of a decision (API body or form).
pub(crate) fn selection(
    items: Vec<i64>,
    mailbox: Option<&str>,
    trustee: Option<&str>,
    decision: &str,
) -> Result<(Selection, Verdict), CoreError> {
    let verdict = Verdict::parse(decision).ok_or_else(|| {
        CoreError::invalid("decision", "a decision is `keep` or `remove`".to_owned())
    })?;
    let mailbox = mailbox.map(str::trim).filter(|s| !s.is_empty());
    let trustee = trustee.map(str::trim).filter(|s| !s.is_empty());
    let sel = match (items.is_empty(), mailbox, trustee) {
        (false, None, None) => Selection::Items(items),
        (true, Some(m), None) => Selection::Mailbox(m.to_owned()),
        (true, None, Some(t)) => Selection::Trustee(t.to_owned()),
        _ => {
            return Err(CoreError::invalid(
                "items",
                "give exactly one of `items`, `mailbox` or `trustee`".to_owned(),
            ));
        }
    };
    Ok((sel, verdict))
}

async fn api_decide(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptBody(b): OptBody<DecideBody>,
) -> ApiResult<Json<Value>> {
    let actor = auth.change(&headers)?;
    let b = b.unwrap_or_default();
    let company = CompanyId::parse(&b.company)?;
    let (sel, verdict) = selection(
        b.items,
        b.mailbox.as_deref(),
        b.trustee.as_deref(),
        &b.decision,
    )?;
    let n = reviews::decide(
        st.app.ctx(),
        Reviewer::User(&actor),
        campaign_id(&id)?,
        &company,
        sel,
        verdict,
        b.reason.as_deref(),
    )
    .await?;
    Ok(Json(json!({ "decided": n, "decision": verdict.as_str() })))
}

async fn close_and_wake(
    st: &WebState,
    actor: &Actor,
    id: CampaignId,
) -> Result<exogate_core::review::Campaign, CoreError> {
    let c = reviews::close(st.app.ctx(), actor, id, &new_request_id).await?;
    for p in &c.companies {
        if let Some(r) = p.request
            && let Ok(Some(req)) = st.app.store.get_request(r).await
        {
            super::request_changed(&st.app, &req);
        }
    }
    Ok(c)
}

async fn api_close(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignView>> {
    let actor = auth.change(&headers)?;
    let c = close_and_wake(&st, &actor, campaign_id(&id)?).await?;
    Ok(Json(CampaignView::of(&c)))
}

#[derive(Deserialize, Default)]
pub struct LinkBody {
    #[serde(default)]
    company: String,
    #[serde(default)]
    label: String,
    /// How long the link lasts ("7d"; default 7 days, at most 90).
    #[serde(default)]
    expires_in: Option<String>,
}

/// Issues a link and answers it with the URL holding its token (shown this once).
async fn issue(
    st: &WebState,
    actor: &Actor,
    id: CampaignId,
    b: &LinkBody,
) -> Result<(exogate_core::review::ReviewLink, String), CoreError> {
    issue_link_at(
        &st.app,
        actor,
        id,
        &b.company,
        &b.label,
        b.expires_in.as_deref().unwrap_or(""),
    )
    .await
}

/// Issues a link for `company` (id) valid for `expires_in` ("7d" when blank); answers it with
/// the URL holding its token.
pub async fn issue_link_at(
    app: &crate::app::App,
    actor: &Actor,
    id: CampaignId,
    company: &str,
    label: &str,
    expires_in: &str,
) -> Result<(exogate_core::review::ReviewLink, String), CoreError> {
    let company = CompanyId::parse(company)?;
    let ttl = secs("expires_in", Some(expires_in), "7d")?;
    let key = app.review_key.get(app.store.as_ref()).await?;
    let (link, token) = reviews::issue_link(
        app.ctx(),
        actor,
        key,
        id,
        &company,
        label,
        app.clock.now().plus_secs(ttl),
        uuid::Uuid::now_v7().to_string(),
        &crate::review_key::new_secret(),
    )
    .await?;
    let url = app.url(&format!("/review/{id}/{company}?t={}", token.expose()));
    Ok((link, url))
}

async fn api_link(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
    OptBody(b): OptBody<LinkBody>,
) -> ApiResult<Response> {
    let actor = auth.change(&headers)?;
    let (link, url) = issue(&st, &actor, campaign_id(&id)?, &b.unwrap_or_default()).await?;
    let mut r = (
        StatusCode::CREATED,
        Json(json!({ "link": ReviewLinkView::of(&link), "url": url })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn api_links(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let actor = auth.0.api_actor();
    let links = reviews::links(st.app.ctx(), &actor, campaign_id(&id)?).await?;
    let v: Vec<ReviewLinkView> = links.iter().map(ReviewLinkView::of).collect();
    Ok(Json(json!({ "links": v })))
}

async fn api_revoke_link(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path((id, link)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let actor = auth.change(&headers)?;
    reviews::revoke_link(st.app.ctx(), &actor, campaign_id(&id)?, &link).await?;
    Ok(Json(json!({ "revoked": link })))
}

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    #[serde(default)]
    company: String,
    #[serde(default)]
    format: String,
}

async fn api_report(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> ApiResult<Response> {
    let actor = auth.0.api_actor();
    let company = CompanyId::parse(&q.company)?;
    let csv = q.format == "csv";
    let r = reviews::report(
        st.app.ctx(),
        &actor,
        campaign_id(&id)?,
        &company,
        if csv { "csv" } else { "json" },
    )
    .await?;
    if csv {
        return Ok(csv_response(&r));
    }
    Ok(Json(ReportView::of(&r)).into_response())
}

/// The report as CSV: one line per item, cells safe against formula injection.
pub fn report_csv(r: &Report) -> String {
    use crate::inventory_view::csv_cell;
    let v = ReportView::of(r);
    let mut out = String::from(
        "campaign,company,item,mailbox,right,via,trustee,outcome,decision,reason,decided_by,decided_at,request,request_state\n",
    );
    for l in &v.lines {
        let d = l.item.decision.as_ref();
        let item = l.item.item.to_string();
        let cells = [
            v.campaign.name.as_str(),
            v.company.as_str(),
            item.as_str(),
            l.item.mailbox.address.as_str(),
            l.item.right,
            l.item.via,
            l.item.trustee_label(),
            l.outcome,
            d.map_or("", |d| d.decision),
            d.and_then(|d| d.reason.as_deref()).unwrap_or(""),
            d.map_or("", |d| d.by.as_str()),
            d.map_or("", |d| d.at.as_str()),
            v.request.as_deref().unwrap_or(""),
            v.request_state.unwrap_or(""),
        ];
        out.push_str(
            &cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

fn csv_response(r: &Report) -> Response {
    let body = report_csv(r);
    let name = format!("review-{}-{}.csv", r.campaign.id, r.company);
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

#[derive(Template, WebTemplate)]
#[template(path = "reviews.html")]
pub struct ReviewsPage {
    nav: Option<Nav>,
    csrf: String,
    reviews: Vec<CampaignView>,
    companies: Vec<(String, String)>,
    may_create: bool,
}

/// `GET /reviews`: the campaigns the viewer may see, and (managers) the form to start one.
pub async fn page(State(st): State<WebState>, auth: PageAuth) -> PageResult<ReviewsPage> {
    let actor = &auth.0.actor;
    let list = reviews::list(st.app.ctx(), actor).await?;
    let companies = exogate_core::ops::companies::list_companies(st.app.ctx(), actor)
        .await?
        .into_iter()
        .filter(|c| c.connection.is_some())
        .map(|c| (c.id.to_string(), crate::views::shown(&c.name)))
        .collect();
    Ok(ReviewsPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        reviews: list.iter().map(CampaignView::of).collect(),
        companies,
        may_create: actor.user.role >= exogate_core::model::Role::Manager,
    })
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    /// Company ids, separated by commas or spaces.
    #[serde(default)]
    companies: String,
    /// More company ids (comma-separated), besides the one picked.
    #[serde(default)]
    more: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    right: String,
    #[serde(default)]
    due_in: String,
    #[serde(default)]
    schedule: String,
    // (review-age)
    /// Only grants older than this many days (empty: all).
    #[serde(default)]
    older_than_days: String,
}

/// (review-age) The form's "older than" field: empty for none, else a whole number of days.
fn form_days(s: &str) -> Result<Option<u32>, CoreError> {
    match s.trim() {
        "" => Ok(None),
        d => d.parse::<u32>().map(Some).map_err(|_| {
            CoreError::invalid(
                "older_than_days",
                "older than how many days: a whole number from 1 to 3650".to_owned(),
            )
        }),
    }
}

/// `POST /reviews`: starts a campaign, then its page.
pub async fn page_create(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<CreateForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let body = CreateBody {
        name: f.name,
        companies: split(&f.companies)
            .into_iter()
            .chain(split(&f.more))
            .collect(),
        kinds: split(&f.kind),
        rights: split(&f.right),
        due_in: Some(f.due_in),
        schedule: Some(f.schedule),
        reviewers: Default::default(),
        older_than_days: form_days(&f.older_than_days).map_err(PageError::from)?,
    };
    let input = create_input(&st, &body).map_err(PageError::from)?;
    let c = reviews::create(st.app.ctx(), &auth.0.actor, input).await?;
    Ok(Redirect::to(&format!("/reviews/{}", c.id)))
}

#[derive(Template, WebTemplate)]
#[template(path = "review.html")]
pub struct ReviewPage {
    nav: Option<Nav>,
    csrf: String,
    review: CampaignView,
    company: String,
    items: Vec<ReviewItemView>,
    mailbox: String,
    trustee: String,
    next_after: Option<i64>,
    links: Vec<ReviewLinkView>,
    may_manage: bool,
    /// A link just issued: its URL, shown once.
    new_link: Option<String>,
    message: Option<String>,
    // (review-age)
    now: exogate_core::Timestamp,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    company: String,
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    trustee: String,
    #[serde(default)]
    after: Option<i64>,
}

async fn review_page(
    st: &WebState,
    auth: &PageAuth,
    id: CampaignId,
    q: &PageQuery,
    new_link: Option<String>,
    message: Option<String>,
) -> PageResult<ReviewPage> {
    let actor = &auth.0.actor;
    let company = match q.company.trim() {
        "" => None,
        s => Some(parse_company(s)?),
    };
    let filter = ItemsQuery {
        mailbox: q.mailbox.clone(),
        trustee: q.trustee.clone(),
        after: q.after,
        ..ItemsQuery::default()
    }
    .filter();
    let (c, company, items) =
        reviews::page(st.app.ctx(), actor, id, company.as_ref(), filter).await?;
    let next_after = (items.len() as u32 >= exogate_core::review::PAGE_ITEMS)
        .then(|| items.last().map(|i| i.no))
        .flatten();
    let may_manage = exogate_core::policy::can_manage_company(&actor.user, &company).is_ok();
    let links = if may_manage {
        reviews::links(st.app.ctx(), actor, id).await?
    } else {
        Vec::new()
    };
    Ok(ReviewPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        review: CampaignView::of(&c),
        company: company.to_string(),
        items: items.iter().map(ReviewItemView::of).collect(),
        mailbox: q.mailbox.clone(),
        trustee: q.trustee.clone(),
        next_after,
        links: links.iter().map(ReviewLinkView::of).collect(),
        may_manage,
        new_link,
        message,
        now: st.app.clock.now(),
    })
}

/// `GET /reviews/{id}[?company=&mailbox=&trustee=&after=]`: one company's items, a page at a
/// time, with keep/remove forms, bulk forms, links and closing.
pub async fn campaign_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> PageResult<ReviewPage> {
    let id = campaign_id(&id).map_err(PageError::from)?;
    review_page(&st, &auth, id, &q, None, None).await
}

#[derive(Deserialize)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    item: Option<i64>,
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    trustee: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// `POST /reviews/{id}/decide`: one item, or every item of a mailbox or a trustee.
pub async fn page_decide(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> PageResult<ReviewPage> {
    auth.check(&f.csrf)?;
    let id = campaign_id(&id).map_err(PageError::from)?;
    let company = parse_company(&f.company)?;
    let (sel, verdict) = selection(
        f.item.into_iter().collect(),
        Some(&f.mailbox),
        Some(&f.trustee),
        &f.decision,
    )
    .map_err(PageError::from)?;
    let n = reviews::decide(
        st.app.ctx(),
        Reviewer::User(&auth.0.actor),
        id,
        &company,
        sel,
        verdict,
        Some(&f.reason),
    )
    .await?;
    let q = PageQuery {
        company: company.to_string(),
        ..PageQuery::default()
    };
    let msg = format!("{n} item(s) marked {}.", verdict.as_str());
    review_page(&st, &auth, id, &q, None, Some(msg)).await
}

/// `POST /reviews/{id}/close`: closes the campaign, back to its page.
pub async fn page_close(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = campaign_id(&id).map_err(PageError::from)?;
    close_and_wake(&st, &auth.0.actor, id).await?;
    Ok(Redirect::to(&format!("/reviews/{id}")))
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    expires_in: String,
}

/// `POST /reviews/{id}/links`: issues a reviewer link and shows its URL once.
pub async fn page_link(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<LinkForm>,
) -> PageResult<Response> {
    auth.check(&f.csrf)?;
    let id = campaign_id(&id).map_err(PageError::from)?;
    let b = LinkBody {
        company: f.company.clone(),
        label: f.label,
        expires_in: Some(f.expires_in),
    };
    let (_, url) = issue(&st, &auth.0.actor, id, &b).await?;
    let q = PageQuery {
        company: f.company,
        ..PageQuery::default()
    };
    let page = review_page(&st, &auth, id, &q, Some(url), None).await?;
    let mut r = page.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /reviews/{id}/links/{link}/revoke`.
pub async fn page_revoke_link(
    State(st): State<WebState>,
    auth: PageAuth,
    Path((id, link)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.check(&f.csrf)?;
    let id = campaign_id(&id).map_err(PageError::from)?;
    reviews::revoke_link(st.app.ctx(), &auth.0.actor, id, &link).await?;
    Ok(Redirect::to(&format!("/reviews/{id}")))
}

#[derive(Template, WebTemplate)]
#[template(path = "review_report.html")]
pub struct AttestationPage {
    report: ReportView,
    // (review-age)
    now: exogate_core::Timestamp,
}

/// `GET /reviews/{id}/report/{company}`: the printable attestation for the customer.
pub async fn attestation(
    State(st): State<WebState>,
    auth: PageAuth,
    Path((id, company)): Path<(String, String)>,
) -> PageResult<AttestationPage> {
    let id = campaign_id(&id).map_err(PageError::from)?;
    let company = parse_company(&company)?;
    let r = reviews::report(st.app.ctx(), &auth.0.actor, id, &company, "attestation").await?;
    Ok(AttestationPage {
        report: ReportView::of(&r),
        now: st.app.clock.now(),
    })
}

/// `GET /reviews/{id}/report/{company}/csv`: the report as CSV.
pub async fn report_csv_page(
    State(st): State<WebState>,
    auth: PageAuth,
    Path((id, company)): Path<(String, String)>,
) -> PageResult<Response> {
    let id = campaign_id(&id).map_err(PageError::from)?;
    let company = parse_company(&company)?;
    let r = reviews::report(st.app.ctx(), &auth.0.actor, id, &company, "csv").await?;
    Ok(csv_response(&r))
}
