//! The Notifications page: everyone sets their own e-mail and topics; admins also see and
//! manage webhook endpoints and see each delivery's state (never a secret, URLs as origin).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use base64::Engine as _;
use exogate_core::CompanyId;
use exogate_core::model::Role;
use exogate_core::notifications::{Topic, Topics, WebhookFormat};
use exogate_core::ops::notify as ops;
use serde::Deserialize;

use crate::views::notify::{DeliveryView, WebhookView};
use crate::web::WebState;
use crate::web::error::{PageError, PageResult};
use crate::web::layout::{CsrfForm, Nav, PageAuth};

#[derive(Template, WebTemplate)]
#[template(path = "notifications.html")]
pub struct NotificationsPage {
    nav: Option<Nav>,
    csrf: String,
    email: String,
    t_approval: bool,
    t_outcome: bool,
    t_alert: bool,
    is_admin: bool,
    new_secret: Option<String>,
    webhooks: Vec<WebhookView>,
    deliveries: Vec<DeliveryView>,
}

async fn render(
    st: &WebState,
    auth: &PageAuth,
    new_secret: Option<String>,
) -> PageResult<NotificationsPage> {
    let actor = &auth.0.actor;
    let mine = ops::user_settings(st.app.ctx(), actor, actor.user.id).await?;
    let is_admin = actor.user.role >= Role::Admin && !actor.user.disabled;
    let (webhooks, deliveries) = if is_admin {
        (
            ops::list_webhooks(st.app.ctx(), actor)
                .await?
                .iter()
                .map(WebhookView::of)
                .collect(),
            ops::list_deliveries(st.app.ctx(), actor, None, 200)
                .await?
                .iter()
                .map(DeliveryView::of)
                .collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(NotificationsPage {
        nav: auth.nav(),
        csrf: auth.csrf(),
        email: mine.email.unwrap_or_default(),
        t_approval: mine.topics.contains(Topic::ApprovalWaiting),
        t_outcome: mine.topics.contains(Topic::RequestOutcome),
        t_alert: mine.topics.contains(Topic::AdminAlert),
        is_admin,
        new_secret,
        webhooks,
        deliveries,
    })
}

/// `GET /notifications`.
pub async fn page(State(st): State<WebState>, auth: PageAuth) -> PageResult<NotificationsPage> {
    render(&st, &auth, None).await
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    approval_waiting: Option<String>,
    request_outcome: Option<String>,
    admin_alert: Option<String>,
}

/// `POST /notifications/email`: the signed-in person's own settings.
pub async fn set_email(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<EmailForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    let mut topics = Topics::default();
    for (on, t) in [
        (&f.approval_waiting, Topic::ApprovalWaiting),
        (&f.request_outcome, Topic::RequestOutcome),
        (&f.admin_alert, Topic::AdminAlert),
    ] {
        if on.is_some() {
            topics.0.insert(t);
        }
    }
    let actor = &auth.0.actor;
    ops::set_user_settings(st.app.ctx(), actor, actor.user.id, Some(&f.email), topics).await?;
    Ok(Redirect::to("/notifications"))
}

#[derive(Deserialize)]
pub struct WebhookForm {
    #[serde(default)]
    csrf: String,
    name: String,
    url: String,
    format: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    secret: String,
}

/// `POST /notifications/webhooks` (admins): answers with the page, showing a generated secret
/// once.
pub async fn add_webhook(
    State(st): State<WebState>,
    auth: PageAuth,
    Form(f): Form<WebhookForm>,
) -> PageResult<NotificationsPage> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    let generated = f.secret.trim().is_empty();
    let secret = if generated {
        use rand::RngCore as _;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(key)
        )
    } else {
        f.secret.trim().to_owned()
    };
    let company = match f.company.trim() {
        "" => None,
        c => Some(CompanyId::parse(c).map_err(PageError::from)?),
    };
    ops::add_webhook(
        st.app.ctx(),
        &auth.0.actor,
        ops::NewWebhook {
            id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
            company,
            name: f.name,
            url: f.url.trim().to_owned(),
            format: WebhookFormat::parse(&f.format).map_err(PageError::from)?,
            secret: secret.clone(),
        },
        &st.app.outbound_targets(),
    )
    .await?;
    render(&st, &auth, generated.then_some(secret)).await
}

/// `POST /notifications/webhooks/{id}/remove` (admins).
pub async fn remove_webhook(
    State(st): State<WebState>,
    auth: PageAuth,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult<Redirect> {
    auth.0.check_csrf(Some(&f.csrf)).map_err(PageError)?;
    ops::remove_webhook(st.app.ctx(), &auth.0.actor, &id).await?;
    Ok(Redirect::to("/notifications"))
}
