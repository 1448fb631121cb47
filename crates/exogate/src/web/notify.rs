//! Notification settings over the JSON API: a person's own e-mail address and topics (an admin
//! may set anyone's), webhook endpoints and the delivery list (admins). The rules are the
//! core's (`exogate_core::ops::notify`); webhook secrets go in and never come out.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get};
use axum::{Json, Router};
use exogate_core::model::{Actor, Role, UserId, UserName};
use exogate_core::notifications::{DeliveryState, Topics, WebhookFormat};
use exogate_core::ops::notify as ops;
use exogate_core::{CompanyId, CoreError, Denial, Entity};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebState;
use super::api::{ApiAuth, Body};
use super::error::ApiResult;
use crate::views::notify::{DeliveryView, NotifySettingsView, WebhookView};

pub fn api_routes() -> Router<WebState> {
    Router::new()
        .route(
            "/api/v1/users/{user}/notifications",
            get(get_settings).put(put_settings),
        )
        .route(
            "/api/v1/notifications/webhooks",
            get(list_webhooks).post(add_webhook),
        )
        .route(
            "/api/v1/notifications/webhooks/{id}",
            delete(remove_webhook),
        )
        .route("/api/v1/notifications/deliveries", get(list_deliveries))
}

/// The user a path names: `me`, a user id or a login name. Someone who is not an admin may
/// name only themself (asking about another name says `role_too_low`, whether it exists or not).
pub(crate) async fn user_named(st: &WebState, actor: &Actor, raw: &str) -> ApiResult<UserId> {
    if raw == "me" {
        return Ok(actor.user.id);
    }
    let own = raw == actor.user.id.to_string() || raw == actor.user.name.as_str();
    if !own && actor.user.role < Role::Admin {
        return Err(CoreError::forbidden(Denial::RoleTooLow {
            needed: Role::Admin,
        })
        .into());
    }
    if let Ok(id) = raw.parse::<UserId>() {
        return Ok(id);
    }
    let name = UserName::parse(raw)?;
    let user = st
        .app
        .store
        .get_user_by_name(&name)
        .await
        .map_err(CoreError::from)?
        .ok_or_else(|| CoreError::not_found(Entity::User, name.as_str()))?;
    Ok(user.id)
}

async fn get_settings(
    State(st): State<WebState>,
    auth: ApiAuth,
    Path(user): Path<String>,
) -> ApiResult<Json<NotifySettingsView>> {
    let actor = auth.0.api_actor();
    let id = user_named(&st, &actor, &user).await?;
    let n = ops::user_settings(st.app.ctx(), &actor, id).await?;
    Ok(Json(NotifySettingsView::of(&n)))
}

/// `PUT /api/v1/users/{user}/notifications` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// None or empty: no e-mail.
    email: Option<String>,
    /// Topic names; absent: all.
    topics: Option<Vec<String>>,
}

async fn put_settings(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(user): Path<String>,
    Body(b): Body<SettingsBody>,
) -> ApiResult<Json<NotifySettingsView>> {
    let actor = auth.change(&headers)?;
    let id = user_named(&st, &actor, &user).await?;
    let topics = match b.topics {
        None => Topics::all(),
        Some(list) => Topics::parse(&list.join(","))?,
    };
    let n = ops::set_user_settings(st.app.ctx(), &actor, id, b.email.as_deref(), topics).await?;
    Ok(Json(NotifySettingsView::of(&n)))
}

async fn list_webhooks(State(st): State<WebState>, auth: ApiAuth) -> ApiResult<Json<Value>> {
    let list = ops::list_webhooks(st.app.ctx(), &auth.0.api_actor()).await?;
    let v: Vec<WebhookView> = list.iter().map(WebhookView::of).collect();
    Ok(Json(json!({ "webhooks": v })))
}

/// `POST /api/v1/notifications/webhooks` body. The secret is the caller's (`whsec_` and the
/// base64 of 24 to 64 random bytes): exogate never shows it again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    name: String,
    url: String,
    format: String,
    secret: String,
    /// None: every company.
    company: Option<String>,
}

async fn add_webhook(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Body(b): Body<WebhookBody>,
) -> ApiResult<(axum::http::StatusCode, Json<WebhookView>)> {
    let actor = auth.change(&headers)?;
    let company = match b.company.as_deref() {
        None | Some("") => None,
        Some(c) => Some(CompanyId::parse(c)?),
    };
    let w = ops::add_webhook(
        st.app.ctx(),
        &actor,
        ops::NewWebhook {
            id: format!("wh_{}", uuid::Uuid::new_v4().simple()),
            company,
            name: b.name,
            url: b.url,
            format: WebhookFormat::parse(&b.format)?,
            secret: b.secret,
        },
        &st.app.outbound_targets(),
    )
    .await?;
    Ok((axum::http::StatusCode::CREATED, Json(WebhookView::of(&w))))
}

async fn remove_webhook(
    State(st): State<WebState>,
    auth: ApiAuth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let actor = auth.change(&headers)?;
    ops::remove_webhook(st.app.ctx(), &actor, &id).await?;
    Ok(Json(json!({ "removed": id })))
}

#[derive(Deserialize)]
pub struct DeliveryQuery {
    state: Option<String>,
    limit: Option<u32>,
}

async fn list_deliveries(
    State(st): State<WebState>,
    auth: ApiAuth,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<Json<Value>> {
    let state = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(DeliveryState::parse(s).ok_or_else(|| {
            CoreError::invalid(
                "state",
                "use one of pending, retrying, sent, failed".to_owned(),
            )
        })?),
    };
    let list = ops::list_deliveries(
        st.app.ctx(),
        &auth.0.api_actor(),
        state,
        q.limit.unwrap_or(100),
    )
    .await?;
    let v: Vec<DeliveryView> = list.iter().map(DeliveryView::of).collect();
    Ok(Json(json!({ "deliveries": v })))
}
