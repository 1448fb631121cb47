//! A small "Entra admin centre" page per tenant: assign or remove the Exchange Administrator
//! role (and, for tests, Exchange Recipient Administrator and Global Reader) for a service
//! principal (Step 2 of `docs/DOMAIN.md#exchange-admin-status`).
//!
//! - `GET /_admin/` lists the tenants.
//! - `GET /_admin/{tenant}/roles` lists the tenant's service principals (app display name, app
//!   id, object id) and their directory roles, with one form per role:
//!   `button#assign-<role>-<appid>` / `button#remove-<role>-<appid>`, where `<role>` is
//!   `exchange-admin`, `exchange-recipient-admin` or `global-reader`.
//! - `POST /_admin/{tenant}/roles` (form `client_id`, `role`, `op` = `assign`|`remove`) applies
//!   the change at the emulator clock's time and answers 303 back to the page.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use uuid::Uuid;

use crate::entra::html::{escape, page};
use crate::entra::{DIRECTORY_ROLES, directory_role_by_name, directory_role_name};
use crate::state::{Shared, ids};

/// The roles the page offers, by short name.
const PAGE_ROLES: &[(&str, Uuid)] = &[
    ("exchange-admin", ids::EXCHANGE_ADMINISTRATOR),
    (
        "exchange-recipient-admin",
        ids::EXCHANGE_RECIPIENT_ADMINISTRATOR,
    ),
    ("global-reader", ids::GLOBAL_READER),
];

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_admin", get(index))
        .route("/_admin/", get(index))
        .route("/_admin/{tenant}/roles", get(roles_page).post(roles_change))
}

fn not_found(what: &str) -> Response {
    let body = format!(
        "<h1>Not found</h1><p id=\"error-message\">{}</p>",
        escape(what)
    );
    (StatusCode::NOT_FOUND, Html(page("Not found", &body))).into_response()
}

async fn index(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.world.read();
    let mut rows = String::new();
    for t in world.tenants.values() {
        rows.push_str(&format!(
            "<tr><td>{name}</td><td><code>{id}</code></td><td>{domain}</td><td>{state}</td><td>{link}</td></tr>",
            name = escape(&t.display_name),
            id = t.id,
            domain = escape(t.initial_domain()),
            state = if t.deleted { "deleted" } else { "active" },
            link = if t.deleted {
                String::new()
            } else {
                format!(
                    "<a id=\"roles-{}\" href=\"/_admin/{}/roles\">Roles and administrators</a>",
                    t.id, t.id
                )
            },
        ));
    }
    let body = format!(
        "<div class=\"brand\">Microsoft Entra admin center</div><h1>Tenants</h1>\
<table><thead><tr><th>Name</th><th>Tenant id</th><th>Domain</th><th>State</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
    );
    Html(page("Microsoft Entra admin center", &body)).into_response()
}

async fn roles_page(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let notice: Option<String> = query.as_deref().and_then(|q| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "done")
            .map(|(_, v)| v)
    });
    let world = shared.world.read();
    let Some(t) = world.tenant_by_ref(&tenant).filter(|t| !t.deleted) else {
        return not_found(&format!("Tenant '{tenant}' was not found or is deleted."));
    };
    let mut rows = String::new();
    for sp in t.service_principals.values() {
        let app_name = world
            .apps
            .get(&sp.app_id)
            .map(|a| a.display_name.clone())
            .unwrap_or_else(|| sp.app_id.to_string());
        let held: Vec<String> = sp
            .directory_roles
            .keys()
            .map(|r| directory_role_name(*r))
            .collect();
        let mut forms = String::new();
        for (short, role) in PAGE_ROLES {
            let has = sp.directory_roles.contains_key(role);
            let (op, label) = if has {
                ("remove", format!("Remove {}", directory_role_name(*role)))
            } else {
                ("assign", format!("Assign {}", directory_role_name(*role)))
            };
            forms.push_str(&format!(
                "<form method=\"post\" action=\"/_admin/{tid}/roles\">\
<input type=\"hidden\" name=\"client_id\" value=\"{app}\">\
<input type=\"hidden\" name=\"role\" value=\"{short}\">\
<input type=\"hidden\" name=\"op\" value=\"{op}\">\
<button type=\"submit\" id=\"{op}-{short}-{app}\"{class}>{label}</button></form> ",
                tid = t.id,
                app = sp.app_id,
                class = if op == "assign" && *short == "exchange-admin" {
                    " class=\"primary\""
                } else {
                    ""
                },
                label = escape(&label),
            ));
        }
        rows.push_str(&format!(
            "<tr id=\"sp-{app}\"><td>{name}</td><td><code>{app}</code></td><td><code>{oid}</code></td>\
<td class=\"roles\" id=\"roles-{app}\">{roles}</td><td>{forms}</td></tr>",
            app = sp.app_id,
            name = escape(&app_name),
            oid = sp.object_id,
            roles = if held.is_empty() {
                "None".to_owned()
            } else {
                escape(&held.join(", "))
            },
        ));
    }
    if rows.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">No enterprise applications yet. Grant admin consent first.</td></tr>");
    }
    let notice = notice
        .map(|n| format!("<p id=\"notice\" class=\"notice\">{}</p>", escape(&n)))
        .unwrap_or_default();
    let body = format!(
        "<div class=\"brand\">Microsoft Entra admin center</div>\
<h1>Roles and administrators: {name}</h1><p class=\"code\">Tenant {tid} ({domain})</p>{notice}\
<h2>Enterprise applications</h2>\
<table><thead><tr><th>Application</th><th>Application (client) id</th><th>Object id</th><th>Directory roles</th><th>Actions</th></tr></thead>\
<tbody>{rows}</tbody></table>\
<p>Role changes reach Exchange with the app's next access token.</p>",
        name = escape(&t.display_name),
        tid = t.id,
        domain = escape(t.initial_domain()),
    );
    Html(page("Roles and administrators", &body)).into_response()
}

async fn roles_change(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let bad = |message: String| {
        let body = format!(
            "<h1>Request not valid</h1><p id=\"error-message\">{}</p>",
            escape(&message)
        );
        (
            StatusCode::BAD_REQUEST,
            Html(page("Request not valid", &body)),
        )
            .into_response()
    };
    let Ok(client_id) = Uuid::parse_str(field("client_id")) else {
        return bad("client_id must be an application id".to_owned());
    };
    let Some(role) = directory_role_by_name(field("role")) else {
        return bad(format!("unknown role '{}'", field("role")));
    };
    if !DIRECTORY_ROLES.iter().any(|(r, _, _)| *r == role) {
        return bad(format!("unknown role '{}'", field("role")));
    }
    let tenant_id = {
        let world = shared.world.read();
        match world.tenant_by_ref(&tenant).filter(|t| !t.deleted) {
            Some(t) => t.id,
            None => return not_found(&format!("Tenant '{tenant}' was not found or is deleted.")),
        }
    };
    let now = shared.clock.now();
    let outcome = match field("op") {
        "assign" => shared
            .world
            .write()
            .assign_directory_role(tenant_id, client_id, role, now)
            .map(|()| format!("Assigned {}", directory_role_name(role))),
        "remove" => shared
            .world
            .write()
            .remove_directory_role(tenant_id, client_id, role)
            .map(|_| format!("Removed {}", directory_role_name(role))),
        other => return bad(format!("op must be 'assign' or 'remove', not '{other}'")),
    };
    match outcome {
        Ok(done) => {
            tracing::info!(tenant = %tenant_id, app = %client_id, %done, "directory role change");
            let location = format!(
                "/_admin/{tenant_id}/roles?{}",
                serde_urlencoded::to_string([("done", done)]).unwrap_or_default()
            );
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            response
        }
        Err(e) => not_found(&e.to_string()),
    }
}
