//! (reviews) The reviewer link: `/review/{campaign}/{company}?t=TOKEN`, for a mailbox owner or
//! a customer contact without an exogate account. It shows only that campaign's items for that
//! company and takes only keep/remove decisions (a CSRF value bound to the link). It grants
//! no session: every other page, `/api/v1/*` and `/mcp` still treat its holder as a
//! stranger. A refused link (tampered, expired, revoked, another campaign or company) answers
//! one plain 404 page without saying why. Answers carry `Cache-Control: no-store` and
//! `Referrer-Policy: no-referrer`; the token is never logged, audited or echoed in an error.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use exogate_core::CompanyId;
use exogate_core::ops::reviews::{self, Reviewer};
use exogate_core::review::{ReviewLink, csrf_matches, link_csrf};
use serde::Deserialize;

use super::WebState;
use super::reviews::{campaign_id, selection};
use crate::views::review::{CampaignView, ReviewItemView};

#[derive(Deserialize, Default)]
pub struct LinkQuery {
    #[serde(default)]
    t: String,
    #[serde(default)]
    mailbox: String,
    #[serde(default)]
    trustee: String,
    #[serde(default)]
    after: Option<i64>,
}

#[derive(Template, WebTemplate)]
#[template(path = "review_link.html")]
pub struct LinkPage {
    review: CampaignView,
    company_name: String,
    reviewer: String,
    /// The form's action: this same address, token included.
    action: String,
    csrf: String,
    token: String,
    items: Vec<ReviewItemView>,
    mailbox: String,
    trustee: String,
    next_after: Option<i64>,
    open: bool,
    message: Option<String>,
}

/// Not cached anywhere. (`Referrer-Policy: no-referrer`, which keeps the token out of other
/// sites' logs, is set on every page by `web::router`'s layer.)
fn private(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The one answer for a refused link.
fn refused() -> Response {
    let page = super::layout::ErrorPage {
        nav: None,
        status: 404,
        code: "review_link_invalid",
        message: "This review link is not valid: it may have expired, been revoked or been changed. Ask the person who sent it for a new one.".to_owned(),
    };
    private((StatusCode::NOT_FOUND, page).into_response())
}

async fn check(
    st: &WebState,
    campaign: &str,
    company: &str,
    token: &str,
) -> Result<(ReviewLink, Vec<u8>), Response> {
    let (Ok(campaign), Ok(company)) = (campaign_id(campaign), CompanyId::parse(company)) else {
        return Err(refused());
    };
    let Ok(key) = st.app.review_key.get(st.app.store.as_ref()).await else {
        return Err(refused());
    };
    match reviews::open_link(st.app.ctx(), key, campaign, &company, token).await {
        Ok(link) => Ok((link, key.to_vec())),
        Err(why) => {
            tracing::info!(campaign = %campaign, company = %company, why = why.as_str(), "review link refused");
            Err(refused())
        }
    }
}

async fn render(
    st: &WebState,
    link: &ReviewLink,
    key: &[u8],
    token: &str,
    q: &LinkQuery,
    message: Option<String>,
) -> Response {
    let filter = exogate_core::review::ItemFilter {
        mailbox: Some(q.mailbox.trim().to_owned()).filter(|s| !s.is_empty()),
        trustee: Some(q.trustee.trim().to_owned()).filter(|s| !s.is_empty()),
        after: q.after.unwrap_or(0).max(0),
        ..Default::default()
    };
    let Ok((c, items)) = reviews::link_items(st.app.ctx(), link, filter).await else {
        return refused();
    };
    let company_name = st
        .app
        .store
        .get_company(&link.company)
        .await
        .ok()
        .flatten()
        .map_or_else(
            || link.company.to_string(),
            |c| crate::views::shown(&c.name),
        );
    let next_after = (items.len() as u32 >= exogate_core::review::PAGE_ITEMS)
        .then(|| items.last().map(|i| i.no))
        .flatten();
    let page = LinkPage {
        review: CampaignView::of(&c),
        company_name,
        reviewer: crate::views::shown(&link.label),
        action: format!("/review/{}/{}", link.campaign, link.company),
        csrf: link_csrf(key, &link.secret_hash),
        token: token.to_owned(),
        items: items.iter().map(ReviewItemView::of).collect(),
        mailbox: q.mailbox.clone(),
        trustee: q.trustee.clone(),
        next_after,
        open: c.state == exogate_core::review::CampaignState::Open,
        message,
    };
    private(page.into_response())
}

/// `GET /review/{campaign}/{company}?t=TOKEN[&mailbox=&trustee=&after=]`.
pub async fn page(
    State(st): State<WebState>,
    Path((campaign, company)): Path<(String, String)>,
    Query(q): Query<LinkQuery>,
) -> Response {
    match check(&st, &campaign, &company, &q.t).await {
        Ok((link, key)) => render(&st, &link, &key, &q.t, &q, None).await,
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub struct LinkDecideForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    csrf: String,
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

/// `POST /review/{campaign}/{company}` (form: `t`, `csrf`, `item` or `mailbox` or `trustee`,
/// `decision`, `reason`): records keep or remove and shows the page again.
pub async fn decide(
    State(st): State<WebState>,
    Path((campaign, company)): Path<(String, String)>,
    Form(f): Form<LinkDecideForm>,
) -> Response {
    let (link, key) = match check(&st, &campaign, &company, &f.t).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !csrf_matches(&key, &link.secret_hash, &f.csrf) {
        return refused();
    }
    let q = LinkQuery {
        t: f.t.clone(),
        ..LinkQuery::default()
    };
    let result = match selection(
        f.item.into_iter().collect(),
        Some(&f.mailbox),
        Some(&f.trustee),
        &f.decision,
    ) {
        Ok((sel, verdict)) => reviews::decide(
            st.app.ctx(),
            Reviewer::Link(&link),
            link.campaign,
            &link.company,
            sel,
            verdict,
            Some(&f.reason),
        )
        .await
        .map(|n| format!("Saved: {n} item(s) marked {}.", verdict.as_str())),
        Err(e) => Err(e),
    };
    let message = match result {
        Ok(m) => m,
        Err(e) => {
            let e = super::error::HttpError::from(e);
            let mut r = render(&st, &link, &key, &f.t, &q, Some(e.message)).await;
            *r.status_mut() = e.status;
            return r;
        }
    };
    render(&st, &link, &key, &f.t, &q, Some(message)).await
}
